package journald

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// The journal export format (systemd's JOURNAL_EXPORT_FORMATS), as
// `journalctl -o export` writes it: an entry is a run of fields ended by
// an empty line. A field is `NAME=value\n` when the value is printable
// text on one line, else `NAME\n`, its length as a little-endian uint64,
// the raw bytes and `\n`. A name may repeat within an entry (a field
// given several values). The address fields come first: __CURSOR,
// __REALTIME_TIMESTAMP, __MONOTONIC_TIMESTAMP, _BOOT_ID (and __SEQNUM,
// __SEQNUM_ID from systemd 254 on).

// entry is one journal entry as the reader keeps it.
type entry struct {
	cursor   string
	realtime int64 // __REALTIME_TIMESTAMP in µs; -1 when absent
	// seqnumID and seqnum are __SEQNUM_ID and __SEQNUM (newer journalctl
	// writes them besides the cursor); seqnum -1 when absent.
	seqnumID string
	seqnum   int64
	// message is MESSAGE's bytes (first value), cut at the message limit.
	message    []byte
	hasMessage bool
	truncated  bool // MESSAGE was longer than the limit
	// fields are the entry's other fields, repeated values joined by
	// "\n"; fieldsDropped says a field was left out for its size.
	fields        map[string]string
	fieldsDropped bool
}

// errMalformed: the stream is not the export format (a journalctl that
// wrote something else, a corrupt pipe). The reader restarts journalctl.
var errMalformed = errors.New("journal export stream is malformed")

// exportReader reads entries from a journalctl -o export stream.
type exportReader struct {
	r          *bufio.Reader
	maxMessage int // MESSAGE bytes kept
	maxField   int // longer values of other fields are dropped
	// keys interns field names; last holds each field's last value, so
	// the values that repeat entry after entry (host, unit, boot id)
	// are not allocated again.
	keys map[string]string
	last map[string]string
}

func newExportReader(r io.Reader, maxMessage, maxField int) *exportReader {
	return &exportReader{
		r:          bufio.NewReaderSize(r, 256<<10),
		maxMessage: maxMessage,
		maxField:   maxField,
		keys:       make(map[string]string, 64),
		last:       make(map[string]string, 64),
	}
}

// buffered tells whether the next entry may be read without waiting.
func (x *exportReader) buffered() bool { return x.r.Buffered() > 0 }

// next reads the next entry into e. It returns io.EOF at the end of the
// stream between entries, io.ErrUnexpectedEOF when the stream ends inside
// one (that entry is not returned), errMalformed (wrapped) when the
// stream is not in the export format.
func (x *exportReader) next(e *entry) error {
	*e = entry{realtime: -1, seqnum: -1}
	started := false
	for {
		line, err := x.r.ReadSlice('\n')
		switch {
		case err == nil:
			line = line[:len(line)-1]
		case errors.Is(err, bufio.ErrBufferFull):
			// A text field longer than the buffer.
			if err := x.longField(e, line); err != nil {
				return err
			}
			started = true
			continue
		case errors.Is(err, io.EOF):
			if !started && len(line) == 0 {
				return io.EOF
			}
			return io.ErrUnexpectedEOF
		default:
			return err
		}
		if len(line) == 0 {
			if started {
				return nil
			}
			continue // blank lines between entries
		}
		started = true
		if i := bytes.IndexByte(line, '='); i >= 0 {
			if i == 0 {
				return fmt.Errorf("%w: a field without a name", errMalformed)
			}
			val := line[i+1:]
			if name := x.name(line[:i]); name == "MESSAGE" {
				x.setMessage(e, val, false)
			} else {
				x.setField(e, name, val)
			}
			continue
		}
		if err := x.binaryField(e, x.name(line)); err != nil {
			return err
		}
	}
}

// binaryField reads a length-prefixed value after its name line.
func (x *exportReader) binaryField(e *entry, name string) error {
	var n [8]byte
	if _, err := io.ReadFull(x.r, n[:]); err != nil {
		return unexpected(err)
	}
	size := binary.LittleEndian.Uint64(n[:])
	limit := x.maxField + 1 // one more byte tells "too long"
	if name == "MESSAGE" {
		limit = x.maxMessage
	}
	keep := min(size, uint64(limit))
	buf := make([]byte, keep)
	if _, err := io.ReadFull(x.r, buf); err != nil {
		return unexpected(err)
	}
	if err := x.discard(size - keep); err != nil {
		return err
	}
	switch b, err := x.r.ReadByte(); {
	case err != nil:
		return unexpected(err)
	case b != '\n':
		return fmt.Errorf("%w: binary field %q not followed by a newline", errMalformed, name)
	}
	if name == "MESSAGE" {
		x.setMessage(e, buf, size > keep)
	} else {
		x.setField(e, name, buf)
	}
	return nil
}

// longField reads a text field that does not fit the buffer; first is
// what was read of it.
func (x *exportReader) longField(e *entry, first []byte) error {
	i := bytes.IndexByte(first, '=')
	if i <= 0 {
		return fmt.Errorf("%w: a line of %d bytes without a field name", errMalformed, len(first))
	}
	name := x.name(first[:i])
	limit := x.maxField + 1 // one more byte tells "too long": dropped
	if name == "MESSAGE" {
		limit = x.maxMessage
	}
	val := make([]byte, 0, min(limit, 2*len(first)))
	total := 0
	add := func(chunk []byte) {
		total += len(chunk)
		if room := limit - len(val); room > 0 {
			val = append(val, chunk[:min(room, len(chunk))]...)
		}
	}
	add(first[i+1:])
	for {
		chunk, err := x.r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return unexpected(err)
		}
		if err == nil {
			add(chunk[:len(chunk)-1])
			break
		}
		add(chunk)
	}
	if name == "MESSAGE" {
		x.setMessage(e, val, total > len(val))
	} else {
		x.setField(e, name, val)
	}
	return nil
}

func (x *exportReader) discard(n uint64) error {
	for n > 0 {
		step := int(min(n, 1<<30))
		d, err := x.r.Discard(step)
		n -= uint64(d)
		if err != nil {
			return unexpected(err)
		}
	}
	return nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// name interns a field name.
func (x *exportReader) name(b []byte) string {
	if s, ok := x.keys[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(x.keys) < 4096 {
		x.keys[s] = s
	}
	return s
}

// value returns b as a string, the field's previous value when equal.
func (x *exportReader) value(name string, b []byte) string {
	if s, ok := x.last[name]; ok && s == string(b) {
		return s
	}
	s := string(b)
	if _, ok := x.last[name]; ok || len(x.last) < 4096 {
		x.last[name] = s
	}
	return s
}

func (x *exportReader) setMessage(e *entry, b []byte, truncated bool) {
	if e.hasMessage {
		return // a repeated MESSAGE: the first is the message
	}
	e.hasMessage = true
	if len(b) > x.maxMessage {
		b, truncated = b[:x.maxMessage], true
	}
	e.message = append([]byte(nil), b...)
	e.truncated = truncated
}

// setField keeps a field of e: the address fields in their slots, the
// others in e.fields.
func (x *exportReader) setField(e *entry, name string, b []byte) {
	switch name {
	case "__CURSOR":
		e.cursor = string(b)
		return
	case "__REALTIME_TIMESTAMP":
		if v, err := strconv.ParseInt(string(b), 10, 64); err == nil {
			e.realtime = v
		}
		return
	case "__SEQNUM":
		if v, err := strconv.ParseUint(string(b), 10, 64); err == nil && v <= 1<<63-1 {
			e.seqnum = int64(v)
		}
		return
	case "__SEQNUM_ID":
		e.seqnumID = x.value(name, b)
		return
	}
	if len(name) > 1 && name[0] == '_' && name[1] == '_' || dropped[name] {
		return // other address fields (__MONOTONIC_TIMESTAMP), noise
	}
	if len(b) > x.maxField {
		e.fieldsDropped = true
		return
	}
	v := x.value(name, clean(b))
	if e.fields == nil {
		e.fields = make(map[string]string, 32)
	}
	if old, ok := e.fields[name]; ok {
		v = old + "\n" + v
	}
	e.fields[name] = v
}

// dropped are fields left out of a record: bookkeeping of journald that
// no one searches, or the message again.
var dropped = map[string]bool{
	"_CAP_EFFECTIVE":              true,
	"_SOURCE_MONOTONIC_TIMESTAMP": true,
	"_STREAM_ID":                  true,
	"SYSLOG_RAW":                  true,
}
