package kafkaout

import (
	"errors"
	"github.com/logbox/logbox/appliance/jsonstr"
	"maps"
	"slices"
	"strconv"
	"time"

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

// appendString appends s as a JSON string the way encoding/json writes it
// (see package jsonstr).
func appendString(dst []byte, s string) []byte { return jsonstr.Append(dst, s) }
