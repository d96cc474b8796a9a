package index

import (
	"strings"
	"time"
)

// Syslog lines:
//
//	RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ID param="v" …]… MSG
//	RFC 3164: <PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG
//	BSD header without PRI (/var/log/syslog, rsyslog's traditional file
//	format): Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG
//	rsyslog's file format: 2026-12-01T22:00:00.123456+08:00 HOSTNAME TAG[PID]: MSG

// syslogFacilities names the facilities as syslog(3) and rsyslog do.
var syslogFacilities = [24]string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert", "clock",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

// syslogSeverities names the severities as syslog(3) does; syslogLevels
// are their levels.
var (
	syslogSeverities = [8]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}
	syslogLevels     = [8]string{"ERROR", "ERROR", "ERROR", "ERROR", "WARN", "INFO", "INFO", "DEBUG"}
)

// syslogBytes bounds how much of a line the syslog parser reads for
// its header and structured data; the message's key=value pairs are read
// from its first logfmtBytes as for text.
const syslogBytes = 16 << 10

// maxSyslogWord bounds the hostname, app name, procid and msgid.
const maxSyslogWord = 255

// syslog parses a syslog line (s is line from its first non-blank byte);
// false (ex untouched) when it is not one. Without a PRI a line must have
// a whole header (time, host, tag and colon) unless named says the
// source is syslog.
func (ex *extracted) syslog(pc *parseCtx, s string, named bool) bool {
	s = s[:min(len(s), syslogBytes)]
	pri := -1
	i := 0
	if len(s) > 2 && s[0] == '<' {
		v, j := 0, 1
		for j < len(s) && j < 5 && isDigit(s[j]) {
			v = v*10 + int(s[j]-'0')
			j++
		}
		if j == 1 || j >= len(s) || s[j] != '>' || v > 191 {
			return false
		}
		pri, i = v, j+1
		// VERSION SP: RFC 5424.
		if v := i; v < len(s) && isDigit(s[v]) && s[v] != '0' {
			e := v + 1
			for e < len(s) && e < v+3 && isDigit(s[e]) {
				e++
			}
			if e < len(s) && s[e] == ' ' {
				return ex.rfc5424(pc, s, pri, e+1)
			}
		}
	}
	return ex.rfc3164(pc, s, pri, i, named)
}

// syslogWord returns s's word at i and the index after it (at the blank
// or the end); ok is false when it is empty or too long.
func syslogWord(s string, i int) (w string, next int, ok bool) {
	j := i
	for j < len(s) && s[j] != ' ' {
		j++
		if j-i > maxSyslogWord {
			return "", i, false
		}
	}
	return s[i:j], j, j > i
}

// setPRI adds facility and severity and sets the level from pri.
func (ex *extracted) setPRI(pc *parseCtx, pri int) {
	if pri < 0 {
		return
	}
	ex.add(pc, "facility", syslogFacilities[pri/8])
	ex.add(pc, "severity", syslogSeverities[pri%8])
	ex.level = syslogLevels[pri%8]
}

// rfc5424 parses the rest of an RFC 5424 line from i (after VERSION SP).
func (ex *extracted) rfc5424(pc *parseCtx, s string, pri, i int) bool {
	var hdr [5]string // TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
	for n := range hdr {
		w, next, ok := syslogWord(s, i)
		if !ok || next >= len(s) {
			return false
		}
		hdr[n], i = w, next+1
	}
	var t time.Time
	haveTime := false
	if hdr[0] != "-" {
		tt, end, _, ok := parseISOAt(hdr[0], pc.loc)
		if !ok || end != len(hdr[0]) {
			return false
		}
		t, haveTime = tt, true
	}
	// STRUCTURED-DATA: "-" or [SD-ID param="value" …]…, checked whole
	// before any field is added.
	if i >= len(s) {
		return false
	}
	sdStart := i
	if s[i] == '-' {
		i++
	} else {
		for i < len(s) && s[i] == '[' {
			e := sdElementEnd(s, i)
			if e < 0 {
				return false
			}
			i = e
		}
		if i == sdStart {
			return false
		}
	}
	if i < len(s) && s[i] != ' ' {
		return false
	}
	sd := s[sdStart:i]
	msg := ""
	if i < len(s) {
		msg = strings.TrimPrefix(s[i+1:], "\ufeff")
	}

	if haveTime {
		if tt, ok := checkTime(t, pc.now); ok {
			ex.ts, ex.parsed = tt, true
		}
	}
	ex.setPRI(pc, pri)
	for n, name := range [...]string{"", "hostname", "app_name", "procid", "msgid"} {
		if n > 0 && hdr[n] != "-" {
			ex.add(pc, name, hdr[n])
		}
	}
	if sd != "-" {
		ex.addSD(pc, sd)
	}
	if msg != "" {
		ex.addPairs(pc, msg[:min(len(msg), logfmtBytes)], nil)
	}
	return true
}

// sdElementEnd returns the index after the SD-ELEMENT at s[i] ("["), or
// -1 when it is not whole.
func sdElementEnd(s string, i int) int {
	j := i + 1
	for j < len(s) && s[j] != ' ' && s[j] != ']' && s[j] != '"' && s[j] != '=' {
		j++
	}
	if j == i+1 || j >= len(s) {
		return -1
	}
	for j < len(s) && s[j] == ' ' {
		// PARAM-NAME="value"
		k := j + 1
		for k < len(s) && s[k] != '=' && s[k] != ' ' && s[k] != ']' && s[k] != '"' {
			k++
		}
		if k == j+1 || k+1 >= len(s) || s[k] != '=' || s[k+1] != '"' {
			return -1
		}
		e := quoted(s, k+2)
		if e < 0 {
			return -1
		}
		j = e + 1
	}
	if j >= len(s) || s[j] != ']' {
		return -1
	}
	return j + 1
}

// addSD adds each parameter of structured data sd (whole, as
// sdElementEnd checked it) as the field <SD-ID>.<PARAM-NAME>.
func (ex *extracted) addSD(pc *parseCtx, sd string) {
	for i := 0; i < len(sd) && sd[i] == '['; {
		j := i + 1
		for sd[j] != ' ' && sd[j] != ']' {
			j++
		}
		id := sd[i+1 : j]
		for sd[j] == ' ' {
			k := j + 1
			for sd[k] != '=' {
				k++
			}
			e := quoted(sd, k+2)
			v := sd[k+2 : e]
			if strings.IndexByte(v, '\\') >= 0 {
				v = unescapeSD(v)
			}
			if name := id + "." + sd[j+1:k]; len(name) <= maxPathBytes {
				ex.add(pc, name, v)
			}
			j = e + 1
		}
		i = j + 1
	}
}

// unescapeSD undoes RFC 5424's escapes in a PARAM-VALUE: \" \\ \].
func unescapeSD(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\' || v[i+1] == ']') {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// rfc3164 parses a BSD syslog line from i (after the PRI, if any; pri is
// -1 without one).
func (ex *extracted) rfc3164(pc *parseCtx, s string, pri, i int, named bool) bool {
	var t time.Time
	haveTime := false
	j := i
	if tt, next, ok := parseSyslogAt(s[i:], pc.now, pc.loc); ok {
		t, haveTime, j = tt, true, i+next
	} else if tt, next, _, ok := parseISOAt(s[i:], pc.loc); ok && s[i+10] == 'T' {
		t, haveTime, j = tt, true, i+next
	}
	if !haveTime {
		if pri < 0 {
			return false
		}
		// <PRI> and a message: what a sender without a clock writes.
		ex.setPRI(pc, pri)
		ex.addPairs(pc, s[i:min(len(s), i+logfmtBytes)], nil)
		if ex.level == "" {
			ex.level = Level(s)
		}
		return true
	}
	// " HOSTNAME"
	if j >= len(s) || s[j] != ' ' {
		return false
	}
	for j < len(s) && s[j] == ' ' {
		j++
	}
	host, k, ok := syslogWord(s, j)
	strict := pri < 0 && !named
	if !ok || (strict && upperLevel(host) != "") {
		return false
	}
	// " TAG[PID]:" or " TAG:"
	app, procid, msgAt := "", "", -1
	if k+1 < len(s) && s[k] == ' ' {
		a := k + 1
		e := a
		for e < len(s) && e-a <= maxSyslogWord && s[e] != '[' && s[e] != ':' && s[e] != ' ' {
			e++
		}
		switch {
		case e == a || e >= len(s):
		case s[e] == ':':
			app, msgAt = s[a:e], e+1
		case s[e] == '[':
			p := e + 1
			for p < len(s) && p-e <= maxSyslogWord && s[p] != ']' && s[p] != ' ' {
				p++
			}
			if p+1 < len(s) && s[p] == ']' && s[p+1] == ':' {
				app, procid, msgAt = s[a:e], s[e+1:p], p+2
			}
		}
	}
	if msgAt < 0 {
		if strict {
			return false
		}
		msgAt = k // no tag: the message follows the host name
	}

	if tt, ok := checkTime(t, pc.now); ok {
		ex.ts, ex.parsed = tt, true
	}
	ex.setPRI(pc, pri)
	if ex.level == "" {
		ex.level = Level(s[msgAt:])
	}
	ex.add(pc, "hostname", host)
	if app != "" {
		ex.add(pc, "app_name", app)
	}
	if procid != "" {
		ex.add(pc, "procid", procid)
	}
	if msgAt < len(s) {
		ex.addPairs(pc, s[msgAt:min(len(s), msgAt+logfmtBytes)], nil)
	}
	return true
}
