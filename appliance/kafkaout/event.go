package kafkaout

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/logbox/logbox/appliance/pipeline"
)

// appendEvent appends r as the JSON event logbox produces: the same bytes
// encoding/json gives for a pipeline.Record (keys in struct order, map keys
// sorted, HTML-safe escapes, invalid UTF-8 as U+FFFD), without reflection:
// encoding/json was a fifth of the agent's CPU.
//
// It is an eventEncoder's first event: the encoder is the one writer of
// the layout.
func appendEvent(dst []byte, r *pipeline.Record) ([]byte, error) {
	var e eventEncoder
	return e.append(dst, r)
}

// eventEncoder appends events (see appendEvent), encoding once the
// parts consecutive records share (the read time, host, source, file and
// fields of one file's batch). The zero value is ready; it is not safe
// for concurrent use.
type eventEncoder struct {
	ts    time.Time
	tsEnc []byte // `{"ts":"…","host":`, valid when tsOK

	host, source, sourceName, fileID string
	meta                             []byte // `"…","source":…,"offset":`, valid when metaOK

	fields    map[string]string // a copy of what fieldsEnc encodes
	fieldsEnc []byte            // `,"fields":{…}`, valid when fieldsOK

	parser, tz string
	tail       []byte // `,"parser":…,"tz":…}`, valid when tailOK

	tsOK, metaOK, fieldsOK, tailOK bool
}

// append appends r's event to dst.
func (e *eventEncoder) append(dst []byte, r *pipeline.Record) ([]byte, error) {
	// == rather than Equal: the same instant in another location is
	// written differently.
	if !e.tsOK || r.TS != e.ts {
		if y := r.TS.Year(); y < 0 || y > 9999 {
			return dst, errors.New("Time.MarshalJSON: year outside of range [0,9999]")
		}
		e.tsEnc = append(e.tsEnc[:0], `{"ts":"`...)
		e.tsEnc = r.TS.AppendFormat(e.tsEnc, time.RFC3339Nano)
		e.tsEnc = append(e.tsEnc, `","host":`...)
		e.ts, e.tsOK = r.TS, true
	}
	if !e.metaOK || r.Host != e.host || r.Source != e.source || r.SourceName != e.sourceName || r.FileID != e.fileID {
		m := appendString(e.meta[:0], r.Host)
		m = append(m, `,"source":`...)
		m = appendString(m, r.Source)
		if r.SourceName != "" {
			m = append(m, `,"source_name":`...)
			m = appendString(m, r.SourceName)
		}
		m = append(m, `,"file_id":`...)
		m = appendString(m, r.FileID)
		e.meta = append(m, `,"offset":`...)
		e.host, e.source, e.sourceName, e.fileID, e.metaOK = r.Host, r.Source, r.SourceName, r.FileID, true
	}
	dst = append(dst, e.tsEnc...)
	dst = append(dst, e.meta...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	if r.End != 0 {
		dst = append(dst, `,"end":`...)
		dst = strconv.AppendInt(dst, r.End, 10)
	}
	dst = append(dst, `,"line":`...)
	dst = appendString(dst, r.Line)
	if len(r.Fields) > 0 {
		if !e.fieldsOK || !maps.Equal(r.Fields, e.fields) {
			e.fieldsEnc = appendFields(e.fieldsEnc[:0], r.Fields)
			e.fields, e.fieldsOK = maps.Clone(r.Fields), true
		}
		dst = append(dst, e.fieldsEnc...)
	}
	dst = appendFlags(dst, r.Flags)
	if !e.tailOK || r.Parser != e.parser || r.TZ != e.tz {
		// Omitted when empty (auto; the indexer's zone), as encoding/json
		// does, so older indexers and other consumers read the same event.
		t := e.tail[:0]
		if r.Parser != "" {
			t = append(t, `,"parser":`...)
			t = appendString(t, r.Parser)
		}
		if r.TZ != "" {
			t = append(t, `,"tz":`...)
			t = appendString(t, r.TZ)
		}
		e.tail = append(t, '}')
		e.parser, e.tz, e.tailOK = r.Parser, r.TZ, true
	}
	return append(dst, e.tail...), nil
}

// appendFields appends the "fields" member of an event with fields.
func appendFields(dst []byte, fields map[string]string) []byte {
	dst = append(dst, `,"fields":{`...)
	for i, k := range slices.Sorted(maps.Keys(fields)) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendString(dst, fields[k])
	}
	return append(dst, '}')
}

// appendFlags appends the "flags" member of an event, if it has flags.
func appendFlags(dst []byte, flags []string) []byte {
	if len(flags) == 0 {
		return dst
	}
	dst = append(dst, `,"flags":[`...)
	for i, f := range flags {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, f)
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// plain marks the ASCII bytes encoding/json writes as they are.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// Word-at-a-time masks for appendString: lo has 0x01 in every byte, hi
// 0x80.
const (
	lo = 0x0101010101010101
	hi = 0x8080808080808080
)

// plainWord reports whether the 8 bytes of w (one per byte) are all bytes
// encoding/json writes as they are: none is below 0x20 or above 0x7f, none
// is '"', '&' (both are 0x26 with bit 2 set), '<', '>' (both 0x3e with
// bit 1 set) or '\\'. Each test is the exact "has a zero byte" trick.
func plainWord(w uint64) bool {
	a, b, c := (w|0x04*lo)^0x26*lo, (w|0x02*lo)^0x3e*lo, w^0x5c*lo
	return (w|(w-0x20*lo)|(a-lo)&^a|(b-lo)&^b|(c-lo)&^c)&hi == 0
}

// appendString appends s as a JSON string the way encoding/json writes it.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	// Runs of plain ASCII, the common case, are skipped 8 bytes at a time;
	// a word that is not plain is done byte by byte (up to bytewise).
	bytewise := 0
	for i := 0; i < len(s); {
		if i >= bytewise {
			for i+8 <= len(s) {
				w := s[i : i+8]
				if !plainWord(uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
					uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56) {
					break
				}
				i += 8
			}
			bytewise = i + 8
			if i >= len(s) {
				break
			}
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
