package index

import (
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// Parsers: what a source's parser (Record.Parser) makes of a line.
//
//   - auto (the default): the first bytes say which: "{" a JSON object;
//     "<digits>" syslog (RFC 5424 or 3164); a BSD syslog header without
//     PRI ("Dec  1 22:00:00 host app[123]: ", as /var/log/syslog holds)
//     or rsyslog's RFC 3339 file format ("2026-12-01T22:00:00.123+08:00
//     host app[123]: ") syslog; "host ident user [date] "request" status
//     bytes" an access line; anything else (and a line that starts like
//     one of these but does not parse as one) text with its key=value
//     pairs. A line is never refused: the worst case is text.
//   - nginx, apache: access lines (the same layout: common or combined
//     log format, nginx's "main" with $http_x_forwarded_for, and
//     key=value pairs after it).
//   - syslog, json, logfmt: that format only.
//   - none: no fields from the line; its time and level are still found.
//   - {"regex":"…"}: RE2 named groups are the fields.
//
// A named parser (not auto) that does not fit a line leaves it text
// without parsed fields (time and level are still found) and flags it
// FlagUnparsed, so `flags:unparsed` finds the lines a parser missed.
//
// Field names. Access lines use nginx's variable names: remote_addr,
// remote_user, method, path, protocol (from the request line when it has
// that shape), status, body_bytes_sent, http_referer, http_user_agent,
// http_x_forwarded_for, each left out when "-" (not set); key=value pairs
// after them are fields too, nginx's usual short names spelled out (rt
// request_time, uct upstream_connect_time, uht upstream_header_time, urt
// upstream_response_time; others as written). Syslog lines: facility and
// severity (names as syslog(3): kern … local7, emerg … debug), hostname,
// app_name, procid, msgid, each RFC 5424 structured data parameter as
// <SD-ID>.<name> (origin.ip, exampleSDID@32473.eventSource) and the
// message's key=value pairs; level from the severity. A regex gives its
// named groups; a group named time or timestamp is the event time and one
// named level the level. Every value that is a number is also one
// (num.<name>), so status:>=500 and request_time:>0.5 are ranges.
//
// Time. Access lines take theirs from [date] (its zone as written),
// RFC 5424 and rsyslog lines from their RFC 3339 stamp, BSD syslog lines
// from "Mmm dd hh:mm:ss" in the record's zone (Record.TZ: the source's
// timezone, else the zone of the box that read the line), in the current
// year there unless that is more than a day ahead. A time written without
// a zone anywhere else (2026-12-01 22:00:00, log4j's ,123) is in the
// record's zone too, as Logstash's date filter reads it.

// parserKind says which parser a lineParser is.
type parserKind uint8

const (
	parseAuto parserKind = iota
	parseNone
	parseJSON
	parseLogfmt
	parseAccess // nginx and apache
	parseSyslogLine
	parseRegex
)

// lineParser is a source's parser, ready to run (regex compiled).
type lineParser struct {
	kind parserKind
	re   *regexp.Regexp
	// groups are re's subexpression names ("" for unnamed ones); roles
	// say which of them is the time or the level.
	groups []string
	roles  []groupRole
}

// groupRole is what a regex group's value is besides a field.
type groupRole uint8

const (
	roleField groupRole = iota
	roleTime            // time, timestamp, ts
	roleLevel           // level, severity, lvl
)

// roleOf reads a regex group's name, in any case.
func roleOf(name string) groupRole {
	switch strings.ToLower(name) {
	case "time", "timestamp", "ts":
		return roleTime
	case "level", "severity", "lvl":
		return roleLevel
	}
	return roleField
}

var (
	autoParser   = &lineParser{kind: parseAuto}
	namedParsers = map[string]*lineParser{
		pipeline.ParserAuto:   autoParser,
		pipeline.ParserNone:   {kind: parseNone},
		pipeline.ParserJSON:   {kind: parseJSON},
		pipeline.ParserLogfmt: {kind: parseLogfmt},
		pipeline.ParserNginx:  {kind: parseAccess},
		pipeline.ParserApache: {kind: parseAccess},
		pipeline.ParserSyslog: {kind: parseSyslogLine},
	}
)

// newLineParser builds the parser a Record.Parser names; an unknown name
// or an invalid expression (an event of another producer, a newer agent)
// is auto.
func newLineParser(spec string) *lineParser {
	name, expr, isRegex := pipeline.ParseParserSpec(spec)
	if !isRegex {
		if p := namedParsers[name]; p != nil {
			return p
		}
		return autoParser
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return autoParser
	}
	p := &lineParser{kind: parseRegex, re: re, groups: re.SubexpNames()}
	p.roles = make([]groupRole, len(p.groups))
	for g, name := range p.groups {
		p.roles[g] = roleOf(name)
	}
	return p
}

// parse fills ex from pc.line.
func (p *lineParser) parse(ex *extracted, pc *parseCtx) {
	ok := true
	switch p.kind {
	case parseAuto:
		if !ex.auto(pc) {
			ex.reset(pc)
			ex.text(pc, true)
		}
		return
	case parseNone:
		ex.text(pc, false)
		return
	case parseLogfmt:
		ex.text(pc, true)
		return
	case parseJSON:
		ok = ex.json(pc)
	case parseAccess:
		ok = ex.access(pc, pc.line)
	case parseSyslogLine:
		ok = ex.syslog(pc, pc.line, true)
	case parseRegex:
		ok = ex.regex(pc, p)
	}
	if !ok {
		ex.reset(pc)
		ex.unparsed = true
		ex.text(pc, false)
	}
}

// reset undoes what a parser that gave up put in ex: the record's static
// fields stay.
func (ex *extracted) reset(pc *parseCtx) {
	*ex = extracted{ts: pc.readTS, static: ex.static}
}

// auto recognises a line by its first bytes and parses it; false leaves
// it to text (ex untouched).
func (ex *extracted) auto(pc *parseCtx) bool {
	line := pc.line
	i := 0
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	if i == len(line) {
		return false
	}
	c := line[i]
	switch {
	case c == '{':
		return ex.json(pc)
	case c == '<':
		return ex.syslog(pc, line[i:], false)
	case i > 0:
		return false
	case isDigit(c):
		// An ISO time first: rsyslog's file format, else not an access
		// line (its first word is an address or host name).
		if len(line) > 19 && line[4] == '-' && line[10] == 'T' {
			return ex.syslog(pc, line, false)
		}
		return ex.access(pc, line)
	case c >= 'A' && c <= 'S' && len(line) > 15 && line[3] == ' ':
		if _, ok := months[line[:3]]; ok {
			return ex.syslog(pc, line, false)
		}
	}
	return ex.access(pc, line)
}

// regex parses a line with a regex parser: its named groups that matched
// something are fields.
func (ex *extracted) regex(pc *parseCtx, p *lineParser) bool {
	line := pc.line[:min(len(pc.line), regexBytes)]
	m := p.re.FindStringSubmatchIndex(line)
	if m == nil {
		return false
	}
	for g, name := range p.groups {
		if name == "" || m[2*g] < 0 || m[2*g+1] == m[2*g] {
			continue
		}
		v := line[m[2*g]:m[2*g+1]]
		switch p.roles[g] {
		case roleTime:
			if t, ok := jsonTime(v, pc.now, pc.loc); ok && !ex.parsed {
				ex.ts, ex.parsed = t, true
			}
		case roleLevel:
			if l := NormalizeLevel(v); l != "" && ex.level == "" {
				ex.level = l
			}
		}
		ex.add(pc, name, v)
	}
	if !ex.parsed {
		if t, ok := eventTime(pc.line, pc.now, pc.loc); ok {
			ex.ts, ex.parsed = t, true
		}
	}
	if ex.level == "" {
		ex.level = Level(pc.line)
	}
	return true
}

// regexBytes bounds how much of a line a regex parser reads.
const regexBytes = 16 << 10

// add adds a parsed field (a number too when its value is one), unless
// the source sets that name or the line has its MaxFieldsPerLine.
func (ex *extracted) add(pc *parseCtx, name, v string) {
	if _, ok := pc.static[name]; ok {
		return
	}
	if len(ex.leaves) >= pc.max {
		ex.dropped = true
		return
	}
	if ex.leaves == nil {
		ex.leaves = make([]leaf, 0, 6)
	}
	l := leaf{path: name, str: v}
	if f, ok := number(v); ok {
		l.num, l.isN = f, true
	}
	ex.leaves = append(ex.leaves, l)
}

// addPairs adds the key=value pairs of s (logfmt), names renamed by
// rename when it has them.
func (ex *extracted) addPairs(pc *parseCtx, s string, rename map[string]string) {
	if len(ex.leaves) >= pc.max {
		if strings.IndexByte(s, '=') >= 0 {
			ex.dropped = true
		}
		return
	}
	from := len(ex.leaves)
	var dropped bool
	ex.leaves, dropped = appendLogfmt(ex.leaves, s, pc.static, pc.max)
	ex.dropped = ex.dropped || dropped
	if rename == nil {
		return
	}
	kept := ex.leaves[:from]
	for _, l := range ex.leaves[from:] {
		if n, ok := rename[l.path]; ok {
			if _, static := pc.static[n]; static {
				continue
			}
			l.path = n
		}
		kept = append(kept, l)
	}
	ex.leaves = kept
}

// Caches of what records name, shared by the cores that parse: compiled
// parsers and loaded zones, by their text. Bounded: an event stream that
// names ever new ones (other producers) costs a rebuild, not memory.
type specCache struct {
	mu      sync.RWMutex
	parsers map[string]*lineParser
	zones   map[string]*time.Location
}

// maxCached bounds each map of specCache; a full one is emptied.
const maxCached = 256

// parser returns the parser spec names (Record.Parser).
func (c *specCache) parser(spec string) *lineParser {
	if spec == "" {
		return autoParser
	}
	if p := namedParsers[spec]; p != nil {
		return p
	}
	c.mu.RLock()
	p := c.parsers[spec]
	c.mu.RUnlock()
	if p != nil {
		return p
	}
	p = newLineParser(spec)
	c.mu.Lock()
	if c.parsers == nil || len(c.parsers) >= maxCached {
		c.parsers = map[string]*lineParser{}
	}
	c.parsers[spec] = p
	c.mu.Unlock()
	return p
}

// zone returns the zone tz names (Record.TZ: an IANA name, "Local", "UTC"
// or a UTC offset like +08:00); def when tz is empty or names none.
func (c *specCache) zone(tz string, def *time.Location) *time.Location {
	switch tz {
	case "":
		return def
	case "UTC":
		return time.UTC
	}
	c.mu.RLock()
	z := c.zones[tz]
	c.mu.RUnlock()
	if z != nil {
		return z
	}
	z = loadZone(tz, def)
	c.mu.Lock()
	if c.zones == nil || len(c.zones) >= maxCached {
		c.zones = map[string]*time.Location{}
	}
	c.zones[tz] = z
	c.mu.Unlock()
	return z
}

// loadZone reads a Record.TZ; def when it names no zone.
func loadZone(tz string, def *time.Location) *time.Location {
	if tz[0] == '+' || tz[0] == '-' {
		if z, _, ok := zoneAt(tz, 0, nil); ok && z != nil {
			return z
		}
		return def
	}
	if len(tz) > pipeline.MaxZoneBytes {
		return def
	}
	z, err := time.LoadLocation(tz)
	if err != nil {
		return def
	}
	return z
}
