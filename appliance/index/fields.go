package index

import (
	"encoding/json"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// What Index derives from a line, besides what the record carries, with
// the record's parser (parsers.go; auto by default):
//
//   - ts: the event time found in the line (see EventTime; for a JSON line
//     its @timestamp, timestamp, time or ts; an access or syslog line's
//     own stamp), else the record's TS (the time it was read). A time
//     written without a zone is in the record's zone (Record.TZ, else
//     Config.Zone). The read time is kept as "ingested" either way.
//   - level: ERROR, WARN, INFO or DEBUG (see Level; for a JSON line its
//     level, severity, lvl or log.level, names or pino/bunyan numbers; for
//     a syslog line with PRI its severity).
//   - fields: for a line that is a JSON object, every scalar leaf as
//     fields.<path> (dots join nested keys; arrays give several values);
//     for an access or syslog line, its parts (parsers.go); for a text
//     line, its key=value pairs (see logfmt). Values are
//     keywords (numbers as their text: facets show them as written); every
//     numeric value is also indexed as a number in num.<path>, and so are
//     numeric source fields (Record.Fields), so ranges work. Source fields
//     win over parsed ones of the same name. Bounds: MaxFieldsPerLine
//     parsed fields per line, MaxFieldNames distinct names per shard;
//     what is over is not indexed and the line is flagged fields_dropped.
//
// Query syntax (Bleve query string; see mapFieldNames): status:500,
// fields.status:500, http.method:GET, latency_ms:>500,
// fields.latency_ms:>=500, num.latency_ms:<100, +status:>=500 +user:bob.
// A bare name that is not a top field (line, ts, ingested, offset, host,
// source, source_name, file_id, level, flags) means fields.<name>; a
// numeric range on a field is run on num.<name>.

// headBytes bounds how far into a text line a timestamp may start.
const headBytes = 64

// maxPathBytes bounds a flattened JSON field name; longer ones are dropped.
const maxPathBytes = 200

// maxJSONDepth bounds how deep JSON objects are flattened; deeper leaves
// are dropped.
const maxJSONDepth = 16

// Keys of a JSON line that hold its time and level (top level; the level
// also as ECS log.level).
var (
	jsonTimeKeys  = []string{"@timestamp", "timestamp", "time", "ts"}
	jsonLevelKeys = []string{"level", "severity", "lvl", "log.level"}
)

// maxFuture is how far after now a parsed time may lie; a line stamped
// later than that (a skewed clock, or not a time at all) gets its read time.
const maxFuture = 24 * time.Hour

// EventTime returns the time a text line says it was written, if a known
// format starts within its first 64 bytes: RFC 3339 / ISO 8601
// (2026-11-25T10:00:00.123Z, also with a space for T, a comma before the
// fraction, slashes in the date as nginx and Go's log write it, and no zone
// meaning UTC), common/combined log format ([25/Nov/2026:10:00:00 +0000])
// and BSD syslog (Nov 25 10:00:00: UTC, the current year, or the previous
// one when that would be more than a day after now). Times before 1970 or
// more than a day after now are not accepted.
func EventTime(line string, now time.Time) (time.Time, bool) {
	return eventTime(line, now, time.UTC)
}

// eventTime is EventTime with a time written without a zone read in loc
// (the zone of the box that wrote it) rather than UTC.
func eventTime(line string, now time.Time, loc *time.Location) (time.Time, bool) {
	end := min(len(line), headBytes)
	for i := 0; i < end; i++ {
		c := line[i]
		switch {
		case isDigit(c):
			if i > 0 && isDigit(line[i-1]) {
				continue
			}
			if t, ok := parseISO(line[i:], loc); ok {
				return checkTime(t, now)
			}
			if t, ok := parseCLF(line[i:], loc); ok {
				return checkTime(t, now)
			}
		case c >= 'A' && c <= 'S':
			if i > 0 && isLetter(line[i-1]) {
				continue
			}
			if t, ok := parseSyslog(line[i:], now, loc); ok {
				return checkTime(t, now)
			}
		}
	}
	return time.Time{}, false
}

func checkTime(t time.Time, now time.Time) (time.Time, bool) {
	if t.Year() < 1970 || t.After(now.Add(maxFuture)) {
		return time.Time{}, false
	}
	return t.UTC(), true
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// digits reads exactly n digits at s[i:].
func digits(s string, i, n int) (int, bool) {
	if i+n > len(s) {
		return 0, false
	}
	v := 0
	for _, c := range []byte(s[i : i+n]) {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// date builds a time and rejects fields out of range (time.Date would
// normalize 31 Feb to 3 Mar).
func date(y, mo, d, h, mi, sec, ns int, loc *time.Location) (time.Time, bool) {
	if mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, ns, loc)
	if t.Day() != d && sec < 60 {
		return time.Time{}, false
	}
	return t, true
}

// clock parses hh:mm:ss at s[i:] and returns the index after it.
func clock(s string, i int) (h, m, sec, next int, ok bool) {
	var ok1, ok2, ok3 bool
	h, ok1 = digits(s, i, 2)
	m, ok2 = digits(s, i+3, 2)
	sec, ok3 = digits(s, i+6, 2)
	if !ok1 || !ok2 || !ok3 || s[i+2] != ':' || s[i+5] != ':' {
		return 0, 0, 0, 0, false
	}
	return h, m, sec, i + 8, true
}

// fraction parses [.,]digits at s[i:] into nanoseconds.
func fraction(s string, i int) (ns, next int) {
	if i >= len(s) || (s[i] != '.' && s[i] != ',') || i+1 >= len(s) || !isDigit(s[i+1]) {
		return 0, i
	}
	j := i + 1
	scale := 100_000_000
	for ; j < len(s) && isDigit(s[j]); j++ {
		ns += int(s[j]-'0') * scale
		scale /= 10
	}
	return ns, j
}

// zone parses Z, +hh:mm, +hhmm or +hh at s[i:]; none is loc (the zone
// of the box that wrote the line).
func zone(s string, i int, loc *time.Location) *time.Location {
	z, _, _ := zoneAt(s, i, loc)
	return z
}

// zoneAt is zone that also returns the index after the zone and whether
// one was written.
func zoneAt(s string, i int, loc *time.Location) (*time.Location, int, bool) {
	if i >= len(s) {
		return loc, i, false
	}
	if s[i] == 'Z' {
		return time.UTC, i + 1, true
	}
	if s[i] != '+' && s[i] != '-' {
		return loc, i, false
	}
	h, ok := digits(s, i+1, 2)
	if !ok || h > 14 {
		return loc, i, false
	}
	m := 0
	j := i + 3
	if j < len(s) && s[j] == ':' {
		j++
	}
	if v, ok := digits(s, j, 2); ok && v < 60 {
		m = v
		j += 2
	} else if s[j-1] == ':' {
		j--
	}
	off := h*3600 + m*60
	if s[i] == '-' {
		off = -off
	}
	if off == 0 {
		return time.UTC, j, true
	}
	return fixedZone(off), j, true
}

// fixedZones holds the zones of whole quarter-hour offsets (every zone in
// use), so a parsed offset costs no allocation.
var fixedZones = func() (z [4*28 + 1]*time.Location) {
	for i := range z {
		z[i] = time.FixedZone("", (i-4*14)*900)
	}
	return z
}()

func fixedZone(off int) *time.Location {
	if off%900 == 0 && off >= -14*3600 && off <= 14*3600 {
		return fixedZones[off/900+4*14]
	}
	return time.FixedZone("", off)
}

// parseISO parses yyyy-mm-dd[T ]hh:mm:ss[.frac][zone] (or with / in the
// date) at the start of s; without a zone it is in loc.
func parseISO(s string, loc *time.Location) (time.Time, bool) {
	t, _, _, ok := parseISOAt(s, loc)
	return t, ok
}

// parseISOAt is parseISO that also returns the index after the time and
// whether a zone was written.
func parseISOAt(s string, loc *time.Location) (t time.Time, next int, zoned, ok bool) {
	if len(s) < 19 {
		return time.Time{}, 0, false, false
	}
	sep := s[4]
	if sep != '-' && sep != '/' || s[7] != sep || (s[10] != 'T' && s[10] != ' ') {
		return time.Time{}, 0, false, false
	}
	y, ok1 := digits(s, 0, 4)
	mo, ok2 := digits(s, 5, 2)
	d, ok3 := digits(s, 8, 2)
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, 0, false, false
	}
	h, mi, sec, i, ok := clock(s, 11)
	if !ok {
		return time.Time{}, 0, false, false
	}
	ns, i := fraction(s, i)
	z, next, zoned := zoneAt(s, i, loc)
	t, ok = date(y, mo, d, h, mi, sec, ns, z)
	return t, next, zoned, ok
}

var months = map[string]int{
	"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6,
	"Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12,
}

// parseCLF parses dd/Mon/yyyy:hh:mm:ss [+-]hhmm at the start of s
// (without the zone, in loc).
func parseCLF(s string, loc *time.Location) (time.Time, bool) {
	if len(s) < 20 || s[2] != '/' || s[6] != '/' || s[11] != ':' {
		return time.Time{}, false
	}
	d, ok1 := digits(s, 0, 2)
	mo, ok2 := months[s[3:6]]
	y, ok3 := digits(s, 7, 4)
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, false
	}
	h, mi, sec, i, ok := clock(s, 12)
	if !ok {
		return time.Time{}, false
	}
	ns, i := fraction(s, i)
	if i < len(s) && s[i] == ' ' {
		i++
	}
	return date(y, mo, d, h, mi, sec, ns, zone(s, i, loc))
}

// parseSyslog parses "Mon dd hh:mm:ss" (dd may be space padded) at the
// start of s, in loc, in now's year there unless that is more than a day
// ahead.
func parseSyslog(s string, now time.Time, loc *time.Location) (time.Time, bool) {
	t, _, ok := parseSyslogAt(s, now, loc)
	return t, ok
}

// parseSyslogAt is parseSyslog that also returns the index after the time.
func parseSyslogAt(s string, now time.Time, loc *time.Location) (time.Time, int, bool) {
	if len(s) < 15 || s[3] != ' ' {
		return time.Time{}, 0, false
	}
	mo, ok := months[s[:3]]
	if !ok {
		return time.Time{}, 0, false
	}
	var d int
	i := 4
	switch {
	case s[4] == ' ' && isDigit(s[5]):
		d, i = int(s[5]-'0'), 6
	case isDigit(s[4]) && isDigit(s[5]):
		d, i = int(s[4]-'0')*10+int(s[5]-'0'), 6
	case isDigit(s[4]):
		d, i = int(s[4]-'0'), 5
	default:
		return time.Time{}, 0, false
	}
	if i >= len(s) || s[i] != ' ' || i+9 > len(s) {
		return time.Time{}, 0, false
	}
	h, mi, sec, j, ok := clock(s, i+1)
	if !ok {
		return time.Time{}, 0, false
	}
	ns, j := fraction(s, j)
	now = now.In(loc)
	t, ok := date(now.Year(), mo, d, h, mi, sec, ns, loc)
	if !ok || t.Day() != d {
		// 29 Feb in a year without one: try last year (it may have one).
		t, ok = date(now.Year()-1, mo, d, h, mi, sec, ns, loc)
		return t, j, ok && t.Day() == d
	}
	if t.After(now.Add(maxFuture)) {
		t, ok = date(now.Year()-1, mo, d, h, mi, sec, ns, loc)
	}
	return t, j, ok
}

// jsonTime reads a JSON time value: an RFC 3339 string (or any form
// EventTime knows), or a number of Unix seconds, milliseconds,
// microseconds or nanoseconds (told apart by size).
// unixTime reads an integer of Unix seconds, ms, µs or ns (by size).
func unixTime(n int64, now time.Time) (time.Time, bool) {
	var t time.Time
	switch {
	case n <= 0:
		return time.Time{}, false
	case n >= 1e17:
		t = time.Unix(0, n)
	case n >= 1e14:
		t = time.UnixMicro(n)
	case n >= 1e11:
		t = time.UnixMilli(n)
	default:
		t = time.Unix(n, 0)
	}
	return checkTime(t, now)
}

func jsonTime(v any, now time.Time, loc *time.Location) (time.Time, bool) {
	var f float64
	switch v := v.(type) {
	case string:
		// parseISO first: it reads RFC 3339 as time.Parse does, without
		// the error time.Parse allocates for every other form. A whole
		// value it reads is what time.Parse gives, or one time.Parse
		// refuses (then parseISO's reading was taken anyway).
		if t, next, _, ok := parseISOAt(v, loc); ok && next == len(v) {
			return checkTime(t, now)
		}
		// RFC 3339 has its T at [10]; time.Parse reads nothing else.
		if len(v) > 10 && v[10] == 'T' {
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				return checkTime(t, now)
			}
		}
		if t, ok := parseISO(v, loc); ok {
			return checkTime(t, now)
		}
		x, ok := number(v)
		if !ok {
			return eventTime(v, now, loc)
		}
		f = x
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return unixTime(n, now)
		}
		x, err := v.Float64()
		if err != nil {
			return time.Time{}, false
		}
		f = x
	default:
		return time.Time{}, false
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return unixTime(int64(f), now)
	}
	if f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return time.Time{}, false
	}
	var t time.Time
	switch {
	case f >= 1e17:
		t = time.Unix(0, int64(f))
	case f >= 1e14:
		t = time.UnixMicro(int64(f))
	case f >= 1e11:
		t = time.UnixMilli(int64(f))
	default:
		sec, frac := math.Modf(f)
		// A float64 of Unix seconds is exact to about a microsecond.
		t = time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3)
	}
	return checkTime(t, now)
}

// Level finds the severity named in a line and normalizes it to
// ERROR, WARN, INFO or DEBUG; it returns "" when the line names none.
// In the first 200 bytes, the first word that is either an upper-case
// level word (FATAL CRITICAL ERROR ERR WARNING WARN INFO DEBUG TRACE) or
// a level word in any case in a level slot (level=info, lvl: warn,
// "level":"debug", severity=error, [error], [core:error]) counts.
func Level(line string) string {
	// Look only at the head of a line: levels sit near the start, and this
	// keeps the cost per line bounded. A scanner, not a regexp: it runs on
	// every line and regexps with \b cost microseconds here.
	head := line[:min(len(line), 200)]
	for i := 0; i < len(head); {
		if !isWordByte(head[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(head) && isWordByte(head[j]) {
			j++
		}
		if w := head[i:j]; len(w) >= 3 && len(w) <= 13 {
			if l := upperLevel(w); l != "" {
				return l
			}
			// The slot first: it is cheaper than NormalizeLevel, which
			// lower-cases (and allocates for) every capitalised word.
			if inLevelSlot(head, i) {
				if l := NormalizeLevel(w); l != "" {
					return l
				}
			}
		}
		i = j
	}
	return ""
}

func isWordByte(c byte) bool { return isLetter(c) || isDigit(c) || c == '_' }

func upperLevel(w string) string {
	switch w {
	case "FATAL", "CRITICAL", "ERROR", "ERR":
		return "ERROR"
	case "WARNING", "WARN":
		return "WARN"
	case "INFO":
		return "INFO"
	case "DEBUG", "TRACE":
		return "DEBUG"
	}
	return ""
}

// inLevelSlot says whether the word at head[i:] follows "[", "[module:",
// or a level key and = or : (quotes and blanks allowed around them).
func inLevelSlot(head string, i int) bool {
	k := i
	if k > 0 && head[k-1] == '"' {
		k--
	}
	for k > 0 && head[k-1] == ' ' {
		k--
	}
	if k == 0 {
		return false
	}
	sep := head[k-1]
	switch sep {
	case '[':
		return k == i
	case '=', ':':
	default:
		return false
	}
	k--
	if sep == ':' && k == i-1 {
		// [core:error]
		e := k
		for e > 0 && isWordByte(head[e-1]) {
			e--
		}
		if e > 0 && e < k && head[e-1] == '[' {
			return true
		}
	}
	for k > 0 && head[k-1] == ' ' {
		k--
	}
	if k > 0 && head[k-1] == '"' {
		k--
	}
	e := k
	for e > 0 && isWordByte(head[e-1]) {
		e--
	}
	switch strings.ToLower(head[e:k]) {
	case "level", "lvl", "severity", "loglevel":
		return true
	}
	return false
}

// NormalizeLevel maps a level name (any case) or a numeric level (pino
// and bunyan: 10 trace … 60 fatal; syslog severities 0–7 are not numbers
// here) to ERROR, WARN, INFO or DEBUG; "" when it is not one.
func NormalizeLevel(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "fatal", "critical", "crit", "error", "err", "panic", "alert", "emerg", "emergency", "severe", "dpanic":
		return "ERROR"
	case "warning", "warn":
		return "WARN"
	case "info", "information", "informational", "notice":
		return "INFO"
	case "debug", "trace", "verbose", "fine", "finer", "finest":
		return "DEBUG"
	}
	return ""
}

func jsonLevel(v any) string {
	switch v := v.(type) {
	case string:
		return NormalizeLevel(v)
	case json.Number:
		n, err := v.Int64()
		if err != nil {
			return ""
		}
		switch {
		case n >= 50:
			return "ERROR"
		case n >= 40:
			return "WARN"
		case n >= 30:
			return "INFO"
		case n > 0:
			return "DEBUG"
		}
	}
	return ""
}

// parseJSONObject decodes line when it is a JSON object (leading blanks
// allowed); numbers stay json.Number so their text is kept.
func parseJSONObject(line string) (map[string]any, bool) {
	t := strings.TrimLeft(line, " \t")
	if !strings.HasPrefix(t, "{") {
		return nil, false
	}
	dec := json.NewDecoder(strings.NewReader(t))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, false
	}
	return m, true
}

// lookup returns m[key], or the value at a dotted key through nested
// objects (log.level finds {"log":{"level":…}}).
func lookup(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	head, rest, ok := strings.Cut(key, ".")
	if !ok {
		return nil, false
	}
	sub, ok := m[head].(map[string]any)
	if !ok {
		return nil, false
	}
	return lookup(sub, rest)
}

// fieldNames bounds the distinct flattened field names one Bleve index
// gets, so arbitrary JSON keys cannot blow up its mapping.
type fieldNames struct {
	mu      sync.Mutex
	max     int
	names   map[string]struct{}
	refused uint64 // leaf values not indexed because their name was new and the set full
}

func newFieldNames(max int, existing []string) *fieldNames {
	fn := &fieldNames{max: max, names: map[string]struct{}{}}
	for _, f := range existing {
		if p, ok := strings.CutPrefix(f, "fields."); ok {
			fn.names[p] = struct{}{}
		} else if p, ok := strings.CutPrefix(f, "num."); ok {
			fn.names[p] = struct{}{}
		}
	}
	return fn
}

func (fn *fieldNames) count() int {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return len(fn.names)
}

// extracted is what Index derives from one record.
type extracted struct {
	ts      time.Time
	parsed  bool // ts was found in the line (else it is the read time)
	level   string
	fields  map[string]any // fields.<path>: string or []string
	num     map[string]any // num.<path>: float64 or []float64
	dropped bool           // some JSON leaves were not indexed
	// unparsed: the source's named parser did not fit the line (it is
	// indexed as text; FlagUnparsed).
	unparsed bool
	leaves   []leaf // parsed leaves, until admit (or stored)
	// static are the source's fields (Record.Fields): always indexed,
	// not counted against the bounds, joined to the leaves by stored.
	static map[string]string
}

type leaf struct {
	path string
	str  string
	num  float64
	isN  bool
}

// extract derives ts, level and fields from r's line with the auto
// parser, zone-less times in UTC. static are the source's fields: always
// indexed, and they win over JSON leaves of the same name. names bounds
// the distinct JSON field names.
func extract(line string, readTS time.Time, static map[string]string, now time.Time, maxPerDoc int, names *fieldNames) extracted {
	ex := parseLine(line, readTS, static, now, maxPerDoc)
	ex.admit(names)
	return ex
}

// parseLine is parseRecord with the auto parser and zone-less times in
// UTC.
func parseLine(line string, readTS time.Time, static map[string]string, now time.Time, maxPerDoc int) extracted {
	return parseRecord(line, readTS, static, now, maxPerDoc, autoParser, time.UTC)
}

// parseRecord derives ts, level and fields from a line with parser p,
// reading a time written without a zone in loc. It is extract without
// the field names bound: admit applies it once the index (shard) the
// line goes to is known.
func parseRecord(line string, readTS time.Time, static map[string]string, now time.Time, maxPerDoc int, p *lineParser, loc *time.Location) extracted {
	ex := extracted{ts: readTS, static: static}
	pc := parseCtx{line: line, readTS: readTS, now: now, loc: loc, static: static, max: maxPerDoc}
	p.parse(&ex, &pc)
	// A level the sender gave apart from the line (an OTLP severity, a
	// journal PRIORITY, a Loki level label) wins over one read in it.
	if lv := static["level"]; lv != "" {
		if l := NormalizeLevel(lv); l != "" {
			ex.level = l
		}
	}
	return ex
}

// parseCtx is what a parser reads besides the record it fills.
type parseCtx struct {
	line   string
	readTS time.Time
	now    time.Time
	loc    *time.Location // the zone of a time written without one
	static map[string]string
	max    int // MaxFieldsPerLine
}

// text finds a text line's time and level (EventTime, Level) and, with
// pairs, its key=value pairs.
func (ex *extracted) text(pc *parseCtx, pairs bool) {
	if t, ok := eventTime(pc.line, pc.now, pc.loc); ok {
		ex.ts, ex.parsed = t, true
	}
	ex.level = Level(pc.line)
	if pairs {
		ex.leaves, ex.dropped = logfmt(pc.line, pc.static, pc.max)
	}
}

// json derives time, level and fields from a line that is a JSON object;
// false when it is not one.
func (ex *extracted) json(pc *parseCtx) bool {
	m, isJSON := parseJSONObject(pc.line)
	if !isJSON {
		return false
	}
	now, static, maxPerDoc := pc.now, pc.static, pc.max
	for _, k := range jsonTimeKeys {
		if v, ok := m[k]; ok {
			if t, ok := jsonTime(v, now, pc.loc); ok {
				ex.ts, ex.parsed = t, true
				break
			}
		}
	}
	for _, k := range jsonLevelKeys {
		if v, ok := lookup(m, k); ok {
			if l := jsonLevel(v); l != "" {
				ex.level = l
				break
			}
		}
	}
	if ex.level == "" {
		ex.level = Level(pc.line)
	}
	var leaves []leaf
	over := false
	var walk func(path string, v any, depth int)
	walk = func(path string, v any, depth int) {
		if over {
			return
		}
		if len(path) > maxPathBytes || depth > maxJSONDepth {
			ex.dropped = true
			return
		}
		var l leaf
		switch v := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(p, v[k], depth+1)
			}
			return
		case []any:
			for _, e := range v {
				walk(path, e, depth+1)
			}
			return
		case nil:
			return
		case string:
			l = leaf{path: path, str: v}
		case bool:
			l = leaf{path: path, str: strconv.FormatBool(v)}
		case json.Number:
			l = leaf{path: path, str: v.String()}
			if f, err := v.Float64(); err == nil && !math.IsInf(f, 0) {
				l.num, l.isN = f, true
			}
		default:
			return
		}
		if path == "" || static[path] != "" {
			return
		}
		if len(leaves) >= maxPerDoc {
			over = true
			ex.dropped = true
			return
		}
		leaves = append(leaves, l)
	}
	walk("", m, 0)
	ex.leaves = leaves
	return true
}

// number parses a field value that is a plain decimal number.
func number(s string) (float64, bool) {
	if s == "" || len(s) > 32 {
		return 0, false
	}
	// What ParseFloat would refuse is refused here without its error
	// (an allocation): no digit ("-"), two dots (an IPv4 address).
	if len(s) <= 15 {
		// Digits alone (a count, a status code): the integer, exact in
		// a float64, as ParseFloat reads it.
		var n int64
		i := 0
		for ; i < len(s) && isDigit(s[i]); i++ {
			n = n*10 + int64(s[i]-'0')
		}
		if i == len(s) {
			return float64(n), true
		}
	}
	digit, dots := false, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isDigit(c):
			digit = true
		case c == '.':
			dots++
		case c != '-' && c != '+' && c != 'e' && c != 'E':
			return 0, false
		}
	}
	if !digit || dots > 1 {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil && !math.IsInf(f, 0)
}

// logfmtBytes bounds how much of a text line is scanned for key=value.
const logfmtBytes = 4096

// logfmt finds key=value pairs in a text line (logfmt, as Go's slog,
// logrus and Heroku write them; also key=value words in free text): a key
// starts the line or follows a blank, is a letter or _ then letters,
// digits, _ . -, and is followed by = and a value that is a quoted string
// or runs to the next blank. Numeric values are numbers too (num.KEY).
// At most maxPerDoc pairs are taken, from the first 4 KiB of the line;
// dropped says more were there.
func logfmt(line string, static map[string]string, maxPerDoc int) (leaves []leaf, dropped bool) {
	return appendLogfmt(nil, line, static, maxPerDoc)
}

// appendLogfmt is logfmt appending to leaves, which holds at most
// maxPerDoc leaves in the end.
func appendLogfmt(leaves []leaf, line string, static map[string]string, maxPerDoc int) (_ []leaf, dropped bool) {
	s := line[:min(len(line), logfmtBytes)]
	for i := 0; i < len(s); {
		if i > 0 && s[i-1] != ' ' && s[i-1] != '\t' {
			i++
			continue
		}
		c := s[i]
		if !(isLetter(c) || c == '_') {
			i++
			continue
		}
		j := i + 1
		for j < len(s) && (isLetter(s[j]) || isDigit(s[j]) || s[j] == '_' || s[j] == '.' || s[j] == '-') {
			j++
		}
		if j >= len(s)-1 || s[j] != '=' || j-i > maxPathBytes || s[j+1] == ' ' {
			i = j
			continue
		}
		key := s[i:j]
		k := j + 1
		var val string
		if s[k] == '"' {
			e := k + 1
			for e < len(s) && s[e] != '"' {
				if s[e] == '\\' {
					e++
				}
				e++
			}
			if e >= len(s) {
				return leaves, dropped // unterminated quote: stop
			}
			raw := s[k : e+1]
			if u, err := strconv.Unquote(raw); err == nil {
				val = u
			} else {
				val = raw[1 : len(raw)-1]
			}
			k = e + 1
		} else {
			e := k
			for e < len(s) && s[e] != ' ' && s[e] != '\t' {
				e++
			}
			val = s[k:e]
			k = e
		}
		i = k
		if _, ok := static[key]; ok {
			continue
		}
		if len(leaves) >= maxPerDoc {
			return leaves, true
		}
		l := leaf{path: key, str: val}
		if f, ok := number(val); ok {
			l.num, l.isN = f, true
		}
		leaves = append(leaves, l)
	}
	return leaves, dropped
}

// admit moves the JSON leaves whose names names admits into fields and
// num; the others are counted and set dropped.
func (ex *extracted) admit(names *fieldNames) {
	ex.keepNames(names)
	ex.build()
}

// keepNames keeps the leaves whose names names admits (adding new names
// while it has room) and drops the others, counting them and setting
// dropped. Index calls it line by line in order, so which names fill the
// last places does not depend on timing.
func (ex *extracted) keepNames(names *fieldNames) {
	if len(ex.leaves) == 0 {
		return
	}
	names.mu.Lock()
	defer names.mu.Unlock()
	kept := ex.leaves[:0]
	for _, l := range ex.leaves {
		if _, known := names.names[l.path]; !known {
			if len(names.names) >= names.max {
				names.refused++
				ex.dropped = true
				continue
			}
			// A copy: the path may be a substring of the line.
			names.names[strings.Clone(l.path)] = struct{}{}
		}
		kept = append(kept, l)
	}
	ex.leaves = kept
}

// build moves the leaves keepNames kept into fields and num; lines are
// built on every core.
func (ex *extracted) build() {
	leaves := ex.leaves
	ex.leaves = nil
	if len(ex.static) > 0 {
		leaves = append(staticLeaves(ex.static), leaves...)
	}
	if len(leaves) == 0 {
		return
	}
	if ex.fields == nil {
		ex.fields = make(map[string]any, len(leaves))
	}
	for _, l := range leaves {
		ex.fields[l.path] = appendValue(ex.fields[l.path], l.str)
		if l.isN {
			if ex.num == nil {
				ex.num = map[string]any{}
			}
			ex.num[l.path] = appendNum(ex.num[l.path], l.num)
		}
	}
}

// lineFields returns a line's fields and numbers, sorted by name: the
// source's static fields (numeric ones are numbers too, as staticLeaves
// has them) merged with the parsed leaves, a static value first and a
// name's parsed values in their order. It sorts leaves.
func lineFields(static map[string]string, leaves []leaf) ([]kv, []kn) {
	n := len(static) + len(leaves)
	if n == 0 {
		return nil, nil
	}
	byPath := func(a, b leaf) int { return strings.Compare(a.path, b.path) }
	if !slices.IsSortedFunc(leaves, byPath) {
		slices.SortStableFunc(leaves, byPath)
	}
	fields := make([]kv, n)
	// The static fields, sorted, at the end (their names are distinct),
	// then merged with the leaves into the front: the i-th field written
	// is never a static one not yet read.
	st := fields[len(leaves):]
	sortedStatic(static, st)
	var numBuf [32]kn
	nums := numBuf[:0]
	w, s := 0, 0
	for _, lf := range leaves {
		for s < len(st) && st[s].K <= lf.path {
			f := st[s]
			s++
			if x, ok := number(f.V); ok {
				nums = append(nums, kn{K: f.K, V: x})
			}
			fields[w] = f
			w++
		}
		fields[w] = kv{K: lf.path, V: lf.str}
		w++
		if lf.isN {
			nums = append(nums, kn{K: lf.path, V: lf.num})
		}
	}
	// The static fields after the last leaf are in place already.
	for ; s < len(st); s++ {
		if x, ok := number(st[s].V); ok {
			nums = append(nums, kn{K: st[s].K, V: x})
		}
	}
	if len(nums) == 0 {
		return fields, nil
	}
	return fields, slices.Clone(nums)
}

func byKey(a, b kv) int { return strings.Compare(a.K, b.K) }

// staticOrder is the sorted names of the last static fields one
// goroutine laid out: the lines of a batch mostly come with the same
// names (one sender's), which are then looked up in that order instead
// of gathered and sorted.
type staticOrder struct{ keys []string }

var staticOrders = sync.Pool{New: func() any { return new(staticOrder) }}

// sortedStatic fills st (len(static) long) with static's fields, sorted
// by name.
func sortedStatic(static map[string]string, st []kv) {
	o := staticOrders.Get().(*staticOrder)
	defer staticOrders.Put(o)
	if len(o.keys) == len(st) {
		// The same number of distinct names: the same names if each
		// is there.
		same := true
		for i, k := range o.keys {
			v, ok := static[k]
			if !ok {
				same = false
				break
			}
			st[i] = kv{K: k, V: v}
		}
		if same {
			return
		}
	}
	i := 0
	for k, v := range static {
		st[i] = kv{K: k, V: v}
		i++
	}
	slices.SortFunc(st, byKey)
	// The names are kept while the pool keeps o (it drops it within two
	// garbage collections).
	o.keys = o.keys[:0]
	for _, f := range st {
		o.keys = append(o.keys, f.K)
	}
}

// staticLeaves returns a source's static fields as leaves; numeric ones
// (hostnet counters) are numbers too, so that they answer ranges.
func staticLeaves(static map[string]string) []leaf {
	out := make([]leaf, 0, len(static))
	for k, v := range static {
		l := leaf{path: k, str: v}
		l.num, l.isN = number(v)
		out = append(out, l)
	}
	return out
}

func appendValue(cur any, s string) any {
	switch c := cur.(type) {
	case nil:
		return s
	case string:
		return []string{c, s}
	case []string:
		return append(c, s)
	}
	return s
}

func appendNum(cur any, f float64) any {
	switch c := cur.(type) {
	case nil:
		return f
	case float64:
		return []float64{c, f}
	case []float64:
		return append(c, f)
	}
	return f
}
