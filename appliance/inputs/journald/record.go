package journald

import (
	"bytes"
	"hash/fnv"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Name is the input's name: every record's Source and SourceName.
const Name = "journald"

// levels are syslog(3)'s priority names, by PRIORITY (0 to 7).
var levels = [8]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// Level returns the syslog(3) name of a journal PRIORITY ("3" → "err"),
// or "" when p is not one.
func Level(p string) string {
	if len(p) == 1 && p[0] >= '0' && p[0] <= '7' {
		return levels[p[0]-'0']
	}
	return ""
}

// Identity is where a journal entry sits: FileID "journal:<seqnum id>" and
// Offset its sequence number, both read from its cursor.
//
// A journal's sequence numbers only grow within one sequence-number id
// (journald keeps one per journal it writes, archived files included), so
// the index sees offsets that grow, and skips an entry it holds when the
// journal is read again. A cursor without s= or i= (none that journalctl
// writes) falls back to __SEQNUM_ID/__SEQNUM, else to FileID
// "journal:<boot id>" (or "journal:unknown") and an offset hashed from the
// cursor, or from time and text when there is no cursor: deterministic, so
// a replay is still recognised, but not ordered, so the index looks such
// entries up instead of comparing with its high-water mark.
func Identity(cursor, seqnumID string, seqnum int64, fallback string) (fileID string, offset int64) {
	var s, i, b string
	for part := range strings.SplitSeq(cursor, ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		switch k {
		case "s":
			s = v
		case "i":
			i = v
		case "b":
			b = v
		}
	}
	if s != "" {
		if n, err := strconv.ParseUint(i, 16, 64); err == nil && n <= 1<<63-1 {
			return "journal:" + s, int64(n)
		}
	}
	if seqnumID != "" && seqnum >= 0 {
		return "journal:" + seqnumID, seqnum
	}
	if b == "" {
		b = "unknown"
	}
	h := fnv.New64a()
	if cursor != "" {
		h.Write([]byte(cursor))
	} else {
		h.Write([]byte(fallback))
	}
	return "journal:" + b, int64(h.Sum64() >> 1)
}

// counts are what a record's mapping changed, for the reader's stats.
type counts struct{ truncated, sanitized, fieldsDropped bool }

// record maps e to the record the pipeline takes (see the package doc).
func record(e *entry, host string, now time.Time) (pipeline.Record, counts) {
	var c counts
	r := pipeline.Record{Source: Name, SourceName: Name, Host: host, Fields: e.fields}
	if r.Fields == nil {
		r.Fields = map[string]string{}
	}
	if h := r.Fields["_HOSTNAME"]; h != "" && !strings.Contains(h, "\n") {
		r.Host = h
	}
	if e.realtime >= 0 {
		r.TS = time.UnixMicro(e.realtime)
	} else {
		r.TS = now
	}
	if lv := Level(r.Fields["PRIORITY"]); lv != "" {
		r.Fields["level"] = lv
	}
	msg := e.message
	if e.truncated {
		// Cut at a character's start, so the cut adds no U+FFFD.
		msg = trimPartialRune(msg)
		r.Flags = append(r.Flags, pipeline.FlagTruncated)
		c.truncated = true
	}
	if bytes.IndexByte(msg, 0) >= 0 {
		msg = bytes.ReplaceAll(msg, []byte{0}, nil)
		r.Flags = append(r.Flags, pipeline.FlagNUL)
		c.sanitized = true
	}
	if !utf8.Valid(msg) {
		msg = bytes.ToValidUTF8(msg, []byte("\uFFFD"))
		r.Flags = append(r.Flags, pipeline.FlagInvalidUTF8)
		c.sanitized = true
	}
	r.Line = string(msg)
	if e.fieldsDropped {
		r.Flags = append(r.Flags, pipeline.FlagFieldsDropped)
		c.fieldsDropped = true
	}
	fallback := ""
	if e.cursor == "" {
		fallback = strconv.FormatInt(e.realtime, 10) + "\x00" + r.Fields["_BOOT_ID"] + "\x00" + r.Line
	}
	r.FileID, r.Offset = Identity(e.cursor, e.seqnumID, e.seqnum, fallback)
	return r, c
}

// trimPartialRune drops an incomplete UTF-8 sequence at b's end.
func trimPartialRune(b []byte) []byte {
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < 0x80 {
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

// clean returns b without NUL bytes and with invalid UTF-8 replaced, as
// a field value is indexed; b itself when it is clean.
func clean(b []byte) []byte {
	if bytes.IndexByte(b, 0) >= 0 {
		b = bytes.ReplaceAll(b, []byte{0}, nil)
	}
	if !utf8.Valid(b) {
		b = bytes.ToValidUTF8(b, []byte("\uFFFD"))
	}
	return b
}
