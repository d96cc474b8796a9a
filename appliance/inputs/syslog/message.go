package syslog

import (
	"bytes"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/logbox/logbox/appliance/ingest"
	"github.com/logbox/logbox/appliance/pipeline"
)

// header is what the input reads of a message's header itself: enough
// to name the sender (Record.Host, the stream) and, for a resend to be
// recognised, the sender's time. The fields come from the index's syslog
// parser (Record.Parser), not from here.
type header struct {
	host, app string
	// ts is the header's time when it has a fraction of a second (see
	// the package doc, "Identity"); zero otherwise.
	ts time.Time
}

// readHeader reads the HOSTNAME, APP-NAME (or TAG) and TIMESTAMP of an
// RFC 5424 or RFC 3164 message, as far as they are plainly there; what it
// cannot read it leaves empty.
func readHeader(s string) header {
	var h header
	if len(s) < 4 || s[0] != '<' {
		return h
	}
	i := 1
	for i < len(s) && i < 5 && isDigit(s[i]) {
		i++
	}
	if i == 1 || i >= len(s) || s[i] != '>' {
		return h
	}
	i++
	// RFC 5424: VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP ...
	if j := i; j < len(s) && s[j] >= '1' && s[j] <= '9' {
		for j < len(s) && j < i+3 && isDigit(s[j]) {
			j++
		}
		if j < len(s) && s[j] == ' ' {
			ts, k := word(s, j+1)
			host, k := word(s, k)
			app, _ := word(s, k)
			h.ts = fineTime(ts)
			if host != "-" {
				h.host = host
			}
			if app != "-" {
				h.app = app
			}
			return h
		}
	}
	// RFC 3164: "Mmm dd hh:mm:ss" or an RFC 3339 time (rsyslog's
	// RSYSLOG_ForwardFormat), SP HOSTNAME SP TAG[PID]: or TAG:
	rest := s[i:]
	k := 0
	switch {
	case len(rest) > 16 && rest[3] == ' ' && rest[6] == ' ' && rest[9] == ':' && rest[12] == ':' && rest[15] == ' ':
		k = 16
	case len(rest) > 20 && rest[4] == '-' && rest[10] == 'T':
		ts, next := word(rest, 0)
		h.ts = fineTime(ts)
		k = next
	default:
		return h
	}
	for k < len(rest) && rest[k] == ' ' {
		k++
	}
	host, k := word(rest, k)
	if host == "" || strings.ContainsAny(host, "[]:") {
		// No HOSTNAME: the word is the tag.
		return header{ts: h.ts}
	}
	h.host = host
	tag, _ := word(rest, k)
	if e := strings.IndexAny(tag, "[:"); e > 0 {
		h.app = tag[:e]
	}
	return h
}

// word returns the word of s at i (up to a space or the end, at most
// 255 bytes: longer is no header field) and the index after its space.
func word(s string, i int) (string, int) {
	if i >= len(s) {
		return "", len(s)
	}
	j := strings.IndexByte(s[i:], ' ')
	if j < 0 {
		j = len(s) - i
	}
	if j > 255 {
		return "", i
	}
	return s[i : i+j], min(len(s), i+j+1)
}

// fineTime parses an RFC 3339 time with a fraction of a second; zero when
// ts is none.
func fineTime(ts string) time.Time {
	if len(ts) < 20 || ts[19] != '.' {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || t.Before(pipeline.MinTime) || t.After(pipeline.MaxTime) {
		return time.Time{}
	}
	return t
}

// message turns one frame (or datagram) into the line handed to the
// acceptor: the text as sent without its framing or trailing newline,
// NUL bytes removed and invalid UTF-8 replaced (each flagged as the
// tailer flags them).
func message(frame []byte, peer string, flags []string) ingest.Line {
	for n := len(frame); n > 0 && (frame[n-1] == '\n' || frame[n-1] == '\r' || frame[n-1] == 0); n-- {
		frame = frame[:n-1]
	}
	if bytes.IndexByte(frame, 0) >= 0 {
		frame = bytes.ReplaceAll(frame, []byte{0}, nil)
		flags = append(flags, pipeline.FlagNUL)
	}
	var text string
	if utf8.Valid(frame) {
		text = string(frame)
	} else {
		text = strings.ToValidUTF8(string(frame), "\uFFFD")
		flags = append(flags, pipeline.FlagInvalidUTF8)
	}
	h := readHeader(text)
	host := h.host
	if host == "" {
		host = peer
	}
	return ingest.Line{
		Record: pipeline.Record{
			TS:     h.ts,
			Host:   host,
			Source: Name,
			Line:   text,
			Fields: map[string]string{"peer": peer},
			Flags:  flags,
			Parser: pipeline.ParserSyslog,
		},
		Stream: peer + " " + host + " " + h.app,
	}
}
