package tailer

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/logbox/logbox/appliance/pipeline"
)

// rawLine is one line cut from a file: text without its newline, and the
// byte range [start, end) it took in the file (end includes the newline).
// text is only valid until the next call into the splitter.
type rawLine struct {
	text       []byte
	start, end int64
	truncated  bool
	partial    bool // emitted without a newline (idle flush)
	// inData: text is a slice of the bytes given to feed, not of the
	// splitter's own buffer (which the next line may overwrite).
	inData bool
}

// splitter cuts a byte stream into lines at '\n'. It holds at most max
// bytes of an unfinished line: the rest of an over-long line is dropped up
// to its newline, so memory stays bounded and a huge line never stalls the
// file.
type splitter struct {
	max      int
	pending  []byte
	start    int64 // file offset of the current line's first byte
	next     int64 // file offset of the next byte to be fed
	overflow bool
}

func newSplitter(max int, offset int64) *splitter {
	return &splitter{max: max, start: offset, next: offset}
}

// feed takes the next bytes of the file and calls emit for each complete line.
func (s *splitter) feed(data []byte, emit func(rawLine)) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			s.keep(data)
			s.next += int64(len(data))
			return
		}
		s.next += int64(i + 1)
		var text []byte
		inData := len(s.pending) == 0 && !s.overflow
		if inData {
			// The whole line is in data: no copy.
			text = data[:i]
			if len(text) > s.max {
				text, s.overflow = text[:s.max], true
			}
		} else {
			s.keep(data[:i])
			text = s.pending
		}
		emit(rawLine{text: text, start: s.start, end: s.next, truncated: s.overflow, inData: inData})
		s.pending, s.overflow, s.start = s.pending[:0], false, s.next
		data = data[i+1:]
	}
}

func (s *splitter) keep(p []byte) {
	room := s.max - len(s.pending)
	if len(p) > room {
		p, s.overflow = p[:room], true
	}
	s.pending = append(s.pending, p...)
}

// hasPartial reports whether bytes of an unfinished line are held.
func (s *splitter) hasPartial() bool { return s.next > s.start }

// flushPartial emits the unfinished line as it is (used after the idle time).
func (s *splitter) flushPartial(emit func(rawLine)) {
	if !s.hasPartial() {
		return
	}
	emit(rawLine{text: s.pending, start: s.start, end: s.next, truncated: s.overflow, partial: true})
	s.pending, s.overflow, s.start = s.pending[:0], false, s.next
}

// sanitize turns a raw line into valid text: a CR before the newline is
// removed, NUL bytes are removed and invalid UTF-8 is replaced by U+FFFD.
// Each change is reported as a flag. A lone CR inside a line is kept.
func sanitize(l rawLine) (string, []string) {
	text, flags := trimmed(l)
	if bytes.IndexByte(text, 0) >= 0 {
		text = bytes.ReplaceAll(text, []byte{0}, nil)
		flags = append(flags, pipeline.FlagNUL)
	}
	if !utf8.Valid(text) {
		flags = append(flags, pipeline.FlagInvalidUTF8)
		return strings.ToValidUTF8(string(text), "\uFFFD"), flags
	}
	return string(text), flags
}

// trimmed is the first part of sanitize: it drops a CR before the newline
// and an incomplete rune that truncation left, and flags truncated and
// partial lines. The text is a prefix of l.text.
func trimmed(l rawLine) ([]byte, []string) {
	text := l.text
	var flags []string
	if n := len(text); n > 0 && text[n-1] == '\r' && !l.partial {
		text = text[:n-1]
	}
	if l.truncated {
		flags = append(flags, pipeline.FlagTruncated)
		text = trimPartialRune(text)
	}
	if l.partial {
		flags = append(flags, pipeline.FlagPartial)
	}
	return text, flags
}

// clean reports whether text needs no more of sanitize's changes: it has
// no NUL byte and is valid UTF-8.
func clean(text []byte) bool {
	return bytes.IndexByte(text, 0) < 0 && utf8.Valid(text)
}

// trimPartialRune drops an incomplete UTF-8 sequence that truncation left
// at the end, so cutting a line does not also make it invalid.
func trimPartialRune(b []byte) []byte {
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < utf8.RuneSelf {
			return b // ASCII: complete
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			return b
		}
	}
	return b
}
