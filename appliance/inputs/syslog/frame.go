package syslog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// maxOctetLen is the largest length prefix an octet-counted frame may
// carry before the connection is taken for garbage and closed; frames
// between MaxFrame and this are read and dropped, the connection kept.
const maxOctetLen = 16 << 20

// frameRoom is what the framer's buffer holds beyond MaxFrame: the
// longest length prefix ("16777216 ") and a CR LF trailer.
const frameRoom = 16

// errAbsurdLength closes a connection whose length prefix no sender
// would write: it is not syslog, or the stream lost its framing.
var errAbsurdLength = errors.New("octet-counted frame length over 16 MiB")

// frameKind says what framer.next found.
type frameKind int

const (
	needMore frameKind = iota // no whole frame in the buffer: read more
	gotFrame                  // a frame
	dropped                   // a frame refused (too long, empty length); the stream goes on
)

// framer splits a TCP stream into syslog frames as RFC 6587 defines
// them, deciding per frame: a frame that starts with a digit followed
// by a space is octet-counted ("LEN SP MSG"), any other is
// non-transparent (MSG up to LF; a CR before the LF is dropped). LF, CR
// and NUL bytes between frames are skipped. A frame starting with digits
// not followed by a space (an ISO timestamp without PRI) is LF-framed.
//
// It owns one buffer of MaxFrame+frameRoom bytes and never grows it: a
// frame over MaxFrame is skipped (an octet-counted one by its length, an
// LF-framed one up to its LF) and reported as dropped. State survives a
// read that returned no bytes (a deadline), so frames are never cut by
// the batching timer.
type framer struct {
	buf  []byte
	r, w int // unread bytes are buf[r:w]
	max  int
	// discard counts bytes of an over-long octet-counted frame still to
	// skip; skipLine is set while an over-long LF frame is skipped.
	discard  int
	skipLine bool
}

func newFramer(maxFrame int) *framer {
	return &framer{buf: make([]byte, maxFrame+frameRoom), max: maxFrame}
}

// fill reads once from rd into the buffer's free space, moving unread
// bytes to the front first when little room is left.
func (f *framer) fill(rd io.Reader) (int, error) {
	if f.r == f.w {
		f.r, f.w = 0, 0
	} else if f.r > 0 && len(f.buf)-f.w < len(f.buf)/4 {
		f.w = copy(f.buf, f.buf[f.r:f.w])
		f.r = 0
	}
	if f.w == len(f.buf) {
		// next never leaves a full buffer undecided (see the type doc).
		panic("syslog: framer buffer full without a frame")
	}
	n, err := rd.Read(f.buf[f.w:])
	f.w += n
	return n, err
}

// next returns the next frame in the buffer. The frame aliases the
// buffer and is valid until the next call of fill. why says why a frame
// was dropped. An error (errAbsurdLength) means the stream cannot be
// framed any further.
func (f *framer) next() (frame []byte, kind frameKind, why string, err error) {
	for {
		if f.discard > 0 {
			n := min(f.discard, f.w-f.r)
			f.r += n
			f.discard -= n
			if f.discard > 0 {
				return nil, needMore, "", nil
			}
			continue
		}
		if f.skipLine {
			i := bytes.IndexByte(f.buf[f.r:f.w], '\n')
			if i < 0 {
				f.r = f.w
				return nil, needMore, "", nil
			}
			f.r += i + 1
			f.skipLine = false
			continue
		}
		for f.r < f.w && (f.buf[f.r] == '\n' || f.buf[f.r] == '\r' || f.buf[f.r] == 0) {
			f.r++
		}
		p := f.buf[f.r:f.w]
		if len(p) == 0 {
			return nil, needMore, "", nil
		}
		if isDigit(p[0]) {
			n, i := 0, 0
			for i < len(p) && isDigit(p[i]) {
				if i == 9 {
					return nil, needMore, "", errAbsurdLength
				}
				n = n*10 + int(p[i]-'0')
				i++
			}
			if i == len(p) {
				return nil, needMore, "", nil
			}
			if p[i] == ' ' {
				switch {
				case n > maxOctetLen:
					return nil, needMore, "", errAbsurdLength
				case n == 0:
					f.r += i + 1
					return nil, dropped, "octet-counted frame of length 0", nil
				case n > f.max:
					f.r += i + 1
					f.discard = n
					return nil, dropped, fmt.Sprintf("frame of %d bytes over the %d-byte limit", n, f.max), nil
				case len(p) < i+1+n:
					return nil, needMore, "", nil
				}
				f.r += i + 1 + n
				return p[i+1 : i+1+n], gotFrame, "", nil
			}
			// Digits without a space: not a length, an LF-framed line.
		}
		j := bytes.IndexByte(p, '\n')
		if j < 0 {
			if len(p) > f.max+1 {
				// Over the limit even if a CR LF follows: skip to the LF.
				f.r = f.w
				f.skipLine = true
				return nil, dropped, fmt.Sprintf("line over the %d-byte limit", f.max), nil
			}
			return nil, needMore, "", nil
		}
		f.r += j + 1
		line := p[:j]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) > f.max {
			return nil, dropped, fmt.Sprintf("line over the %d-byte limit", f.max), nil
		}
		return line, gotFrame, "", nil
	}
}

// rest reports what is left when the stream ends: an unfinished
// LF-framed line (frame, complete=false: the sender closed without its
// LF), or octet is true when an octet-counted frame was cut (its header
// or its bytes), which cannot be delivered whole. Both empty: nothing
// was pending (or the pending bytes belonged to a frame already dropped).
func (f *framer) rest() (frame []byte, octet bool) {
	if f.discard > 0 {
		return nil, false // already counted as dropped
	}
	if f.skipLine {
		return nil, false
	}
	for f.r < f.w && (f.buf[f.r] == '\n' || f.buf[f.r] == '\r' || f.buf[f.r] == 0) {
		f.r++
	}
	p := f.buf[f.r:f.w]
	f.r = f.w
	if len(p) == 0 {
		return nil, false
	}
	i := 0
	for i < len(p) && isDigit(p[i]) {
		i++
	}
	if i > 0 && (i == len(p) || p[i] == ' ') {
		return nil, true
	}
	return p, false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
