package esbulk

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"
)

func TestToLine(t *testing.T) {
	ts := time.Date(2024, 3, 5, 10, 11, 12, 345000000, time.UTC)
	type want struct {
		line, host, source string
		ts                 time.Time
		fields             map[string]string
		id, stream         string
	}
	f := func(name, doc, index, id string, w want) {
		t.Helper()
		var p docParser
		l, err := p.toLine([]byte(doc), doc, index, id)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		r := l.Record
		if r.Line != w.line || r.Host != w.host || r.Source != w.source || !r.TS.Equal(w.ts) {
			t.Errorf("%s: line %q host %q source %q ts %v; want %q %q %q %v", name, r.Line, r.Host, r.Source, r.TS, w.line, w.host, w.source, w.ts)
		}
		if !maps.Equal(r.Fields, w.fields) {
			t.Errorf("%s: fields %v\nwant %v", name, r.Fields, w.fields)
		}
		if l.ID != w.id || l.Stream != w.stream {
			t.Errorf("%s: id %q stream %q, want %q %q", name, l.ID, l.Stream, w.id, w.stream)
		}
	}
	f("filebeat", `{"@timestamp":"2024-03-05T10:11:12.345Z","message":"GET /x 200","host":{"name":"web-1","os":{"family":"debian"}},
		"log":{"file":{"path":"/var/log/app.log"},"offset":1234,"level":"warn"},"agent":{"type":"filebeat","version":"8.11.0"},
		"tags":["a","b"],"ok":true,"ratio":0.5,"nothing":null,"empty":{}}`, "filebeat-8.11.0", "",
		want{line: "GET /x 200", host: "web-1", ts: ts, stream: "filebeat-8.11.0\x00web-1\x00/var/log/app.log",
			fields: map[string]string{"log.file.path": "/var/log/app.log", "host.os.family": "debian", "log.offset": "1234", "level": "warn", "agent.type": "filebeat",
				"agent.version": "8.11.0", "tags": `["a","b"]`, "ok": "true", "ratio": "0.5", "index": "filebeat-8.11.0"}})
	f("fluent bit", `{"@timestamp":"2024-03-05T10:11:12.345Z","log":"plain text\n","stream":"stdout","kubernetes":{"pod_name":"p-1","labels":{"app":"x"}}}`,
		"fluent-bit", "abc",
		want{line: "plain text", ts: ts, id: "fluent-bit/abc",
			fields: map[string]string{"stream": "stdout", "kubernetes.pod_name": "p-1", "kubernetes.labels.app": "x", "index": "fluent-bit"}})
	f("msg, host string, epoch millis, level", `{"@timestamp":1709633472345,"msg":"m","host":"h1","level":"error"}`, "i", "",
		want{line: "m", host: "h1", ts: ts, stream: "i\x00h1\x00", fields: map[string]string{"level": "error", "index": "i"}})
	f("epoch millis as a string, hostname", `{"@timestamp":"1709633472345","msg":"m","hostname":"h2"}`, "i", "",
		want{line: "m", host: "h2", ts: ts, stream: "i\x00h2\x00", fields: map[string]string{"index": "i"}})
	f("no text: the document", `{ "a" : {"b": [1, {"c":2}] }, "d":"x\"y" }`, "i", "",
		want{line: `{"a":{"b":[1,{"c":2}]},"d":"x\"y"}`, stream: "i\x00\x00", fields: map[string]string{"a.b": `[1,{"c":2}]`, "d": `x"y`, "index": "i"}})
	f("message before log; escapes; dotted keys", `{"message":"caf\u00e9 \ud83d\ude00","log":"second","host.name":"h","a.b":"1","a":{"c":"2"}}`, "i", "",
		want{line: "café 😀", host: "h", stream: "i\x00h\x00", fields: map[string]string{"log": "second", "a.b": "1", "a.c": "2", "index": "i"}})
	f("a time it cannot read stays a field; a host array is a field", `{"@timestamp":"yesterday","message":"m","host":["a","b"]}`, "i", "",
		want{line: "m", stream: "i\x00\x00", fields: map[string]string{"@timestamp": "yesterday", "host": `["a","b"]`, "index": "i"}})
	f("vector's timestamp", `{"timestamp":"2024-03-05T11:11:12.345+01:00","message":"m"}`, "i", "",
		want{line: "m", ts: ts, stream: "i\x00\x00", fields: map[string]string{"timestamp": "2024-03-05T11:11:12.345+01:00", "index": "i"}})
	f("a time without zone is UTC", `{"@timestamp":"2024-03-05T10:11:12.345","message":"m"}`, "i", "",
		want{line: "m", ts: ts, stream: "i\x00\x00", fields: map[string]string{"index": "i"}})
	f("repeated keys: the last value counts", `{"message":"a","message":"b\n","@timestamp":"bad","@timestamp":"2024-03-05T10:11:12.345Z",`+
		`"host":{"name":""},"host":"h","log":{"level":"warn","file":{"path":"/p"}},"level":"info","index":"x","log.file.path":"/q"}`, "i", "",
		want{line: "b", host: "h", ts: ts, stream: "i\x00h\x00/q",
			fields: map[string]string{"host.name": "", "level": "warn", "log.file.path": "/q", "index": "i"}})
	f("an unreadable last time stays; timestamp is not read then", `{"@timestamp":"2024-03-05T10:11:12.345Z","@timestamp":"bad","timestamp":"2024-03-05T10:11:12.345Z","log":"l","msg":"m"}`, "i", "",
		want{line: "l", stream: "i\x00\x00",
			fields: map[string]string{"@timestamp": "bad", "timestamp": "2024-03-05T10:11:12.345Z", "msg": "m", "index": "i"}})

	for _, bad := range []string{``, `[]`, `"x"`, `{"a":}`, `{"a":1}{`, `{"a":1} x`, strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)} {
		var p docParser
		if _, err := p.toLine([]byte(bad), bad, "i", ""); err == nil {
			t.Errorf("%q: taken, want an error", bad)
		}
	}
}

func TestParseTime(t *testing.T) {
	for v, want := range map[string]time.Time{
		"2024-03-05T10:11:12Z":           time.Date(2024, 3, 5, 10, 11, 12, 0, time.UTC),
		"2024-03-05T10:11:12.123456789Z": time.Date(2024, 3, 5, 10, 11, 12, 123456789, time.UTC),
		"2024-03-05T12:11:12+0200":       time.Date(2024, 3, 5, 10, 11, 12, 0, time.UTC),
		"2024-03-05":                     time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC),
		"2024":                           time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		"1709633472345.5":                time.Date(2024, 3, 5, 10, 11, 12, 345500000, time.UTC),
		"0":                              time.Unix(0, 0),
	} {
		got, ok := parseTime(v)
		if !ok || !got.Equal(want) {
			t.Errorf("%q: %v %v, want %v", v, got, ok, want)
		}
	}
	for _, v := range []string{"", "now", "1e12", "99999999999999999999", "2024-13-01"} {
		if got, ok := parseTime(v); ok {
			t.Errorf("%q: read as %v, want refused", v, got)
		}
	}
}

func TestParseBulk(t *testing.T) {
	body := strings.Join([]string{
		`{"index":{"_index":"a","_id":"1"}}`,
		`{"message":"one"}`,
		``,
		`{"create":{}}`, // the URL's index
		`{"message":"two"}`,
		`{"delete":{"_index":"a","_id":"1"}}`,
		`{"update":{"_index":"a","_id":"1"}}`,
		`{"doc":{"message":"x"}}`,
		`{"index":{"_index":"a"}}`,
		`not json`,
		`{"create":{"_index":"a","_id":"1"}}`, // again in this request
		`{"message":"one again"}`,
		`{"create":{"_index":"","_id":7}}`,
		`{"message":"no index"}`,
		`{"index":{"_index":"b","_id":7}}`,
		"{\"message\":\"three\"}\r",
		`{"index":{"_index":"b","_id":""}}`,
		`{"message":"empty id"}`,
		`{"create":{"_index":"b"}}`,
	}, "\n")
	items, lines, err := parseBulk([]byte(body), "url")
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		action, index, id string
		status            int
		errType, line     string
	}
	wants := []want{
		{"index", "a", "1", 0, "", "one"},
		{"create", "url", "", 0, "", "two"},
		{"delete", "a", "1", 400, typeIllegalArgument, ""},
		{"update", "a", "1", 400, typeIllegalArgument, ""},
		{"index", "a", "", 400, typeMapperParsing, ""},
		{"create", "a", "1", 409, typeConflict, ""},
		{"create", "", "7", 400, typeValidation, ""},
		{"index", "b", "7", 0, "", "three"},
		{"index", "b", "", 400, typeValidation, ""},
		{"create", "b", "", 400, typeValidation, ""},
	}
	if len(items) != len(wants) {
		t.Fatalf("%d items, want %d: %+v", len(items), len(wants), items)
	}
	for i, w := range wants {
		it := items[i]
		if it.action != w.action || it.index != w.index || it.id != w.id || it.status != w.status || it.errType != w.errType {
			t.Errorf("item %d: %+v, want %+v", i, it, w)
		}
		if w.line != "" && (it.line < 0 || lines[it.line].Record.Line != w.line) {
			t.Errorf("item %d: line %d, want %q", i, it.line, w.line)
		}
		if w.line == "" && it.line >= 0 {
			t.Errorf("item %d: taken, want refused", i)
		}
	}
	if len(lines) != 3 || lines[0].ID != "a/1" || lines[2].ID != "b/7" || lines[1].ID != "" {
		t.Errorf("lines %+v", lines)
	}

	for _, bad := range []string{
		`{"index":{}}{"x":1}` + "\n{}",
		`{"index":{},"create":{}}` + "\n{}",
		`{"upsert":{}}` + "\n{}",
		`{"index":[]}` + "\n{}",
		`{"index":{"_index":3}}` + "\n{}",
		`{"index":{"_id":{}}}` + "\n{}",
		`[]`,
	} {
		_, _, err := parseBulk([]byte(bad), "i")
		if re, ok := err.(*requestError); !ok || re.status != 400 {
			t.Errorf("%q: %v, want a 400 for the request", bad, err)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\", "\x00\x01\x1f\n\r\t", "é😀", "bad \xff\xfe utf8", "<&>"} {
		var got string
		if err := json.Unmarshal(appendString(nil, s), &got); err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if strings.Contains(s, "\xff\xfe") {
			want = strings.ReplaceAll(s, "\xff\xfe", "\ufffd\ufffd")
		}
		if got != want {
			t.Errorf("%q: read back %q, want %q", s, got, want)
		}
	}
}

var errCollision = errors.New("two keys flatten to one path")

// refFlatten is flatten written with encoding/json, to check it against;
// errCollision when two keys flatten to one path (flatten keeps the
// later, the reference cannot tell which that is).
func refFlatten(doc []byte, out map[string]string) error {
	var m map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(doc))
	if err := d.Decode(&m); err != nil {
		return err
	}
	if d.More() {
		return errNotObject
	}
	var walk func(prefix string, m map[string]json.RawMessage, depth int) error
	walk = func(prefix string, m map[string]json.RawMessage, depth int) error {
		if depth > maxDepth {
			return errTooDeep
		}
		for k, raw := range m {
			if k == "" {
				continue
			}
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			raw = bytes.TrimSpace(raw)
			if _, held := out[p]; held {
				return errCollision
			}
			switch raw[0] {
			case '{':
				var sub map[string]json.RawMessage
				if err := json.Unmarshal(raw, &sub); err != nil {
					return err
				}
				if err := walk(p, sub, depth+1); err != nil {
					return err
				}
			case '[':
				var b bytes.Buffer
				if err := json.Compact(&b, raw); err != nil {
					return err
				}
				out[p] = b.String()
			case '"':
				var s string
				if err := json.Unmarshal(raw, &s); err != nil {
					return err
				}
				out[p] = s
			case 'n':
			default:
				out[p] = string(raw)
			}
		}
		return nil
	}
	return walk("", m, 1)
}

func FuzzFlatten(f *testing.F) {
	for _, s := range []string{
		`{"@timestamp":"2024-03-05T10:11:12.345Z","message":"m","host":{"name":"h"},"a":[1,{"b":"c"}]}`,
		`{"a":{"b":{"c":"\u00e9\n"}},"d":true,"e":null,"f":-1.5e3,"":1,"g":{"":2}}`,
		`{"a":"\xff"}`, `{}`, `{"a":{}}`, `[1]`, `{"a":1,"a":{"b":2}}`,
		`{"a":"\ud83d\ude00 \ud83d \udc00x \ud83d\u0041 \"\\\/\b\f\n\r\t","b":"caf\u00E9 \xc3"}`,
		`{"a": [ 1 , {"b" : "c d" , "e":[ ]}, "\" x" ] ,"f":{ "g" : [true,false,null,-0.5E+2] }}`,
		`{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`, `{"a":tru}`, `{"a":nul}`, `{"a":[1,]}`, `{"a":{"b":1,}}`,
		`{"a":"\x"}`, `{"a":"\u12"}`, "{\"a\":\"\t\"}", `{"a":[}`, `{"a":{]}`, `{"a" 1}`, `{"a":1 "b":2}`, `{"a":1}}`,
		`{"":{"x":[1,{"y":}]}}`, ` {"a":1} `, "{\"a\":1}\u00a0",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		var p docParser
		// A document before, as of a sender: its keys are the ones
		// flatten tries first.
		prev := `{"a":{"b":"c","d":1},"message":"m","e":[1]}`
		if _, err := p.flatten([]byte(prev), prev); err != nil {
			t.Fatal(err)
		}
		got, err := flattenMap(&p, doc)
		if _, lerr := p.toLine(doc, string(doc), "i", "x"); (lerr == nil) != (err == nil) {
			t.Fatalf("toLine and flatten disagree: %v, %v", lerr, err)
		}
		// flatten checks the document as it walks it: it takes what
		// json.Valid takes, unless its objects nest too deep.
		trimmed := bytes.TrimSpace(doc)
		valid := len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed)
		switch {
		case err == nil && !valid:
			t.Fatalf("flatten took %q, json.Valid refuses it", doc)
		case err != nil && valid && !errors.Is(err, errTooDeep):
			t.Fatalf("flatten refused %q (%v), json.Valid takes it", doc, err)
		case errors.Is(err, errTooDeep) && !valid:
			t.Fatalf("flatten refused %q as too deep, but it is not valid JSON", doc)
		}
		if err != nil {
			return
		}
		// Repeated keys: flatten keeps the last leaf of each path, the
		// reference the last value of each key; they differ only when a
		// key repeats with an object value, which the reference cannot see.
		if hasRepeatedKey(doc) {
			return
		}
		want := map[string]string{}
		err = refFlatten(bytes.TrimSpace(doc), want)
		if errors.Is(err, errCollision) {
			return
		}
		if err != nil {
			t.Fatalf("flatten took %q, the reference refused it: %v", doc, err)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("%q:\nflatten   %v\nreference %v", doc, got, want)
		}
	})
}

// flattenMap is p.flatten as a map, a key's last value kept.
func flattenMap(p *docParser, doc []byte) (map[string]string, error) {
	leaves, err := p.flatten(doc, string(doc))
	m := map[string]string{}
	for _, l := range leaves {
		m[l.k] = l.v
	}
	return m, err
}

// hasRepeatedKey reports whether some object of doc repeats a key.
func hasRepeatedKey(doc []byte) bool {
	d := json.NewDecoder(bytes.NewReader(doc))
	type frame struct {
		obj  bool
		keys map[string]bool
		key  bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.obj {
					top.key = true
				}
				stack = append(stack, &frame{obj: v == '{', keys: map[string]bool{}, key: v == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if top != nil && top.obj && top.key {
				if top.keys[v] {
					return true
				}
				top.keys[v] = true
				top.key = false
				continue
			}
		}
		if top != nil && top.obj {
			top.key = true
		}
	}
}

func FuzzParseBulk(f *testing.F) {
	f.Add([]byte("{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"message\":\"one\"}\n{\"delete\":{\"_id\":\"2\"}}\n{\"create\":{}}\n{\"log\":\"x\"}\n"), "url")
	f.Add([]byte("{\"update\":{\"_id\":1}}\n{\"doc\":{}}\n{\"index\":{}}\nnot json\n"), "")
	f.Fuzz(func(t *testing.T, body []byte, index string) {
		items, lines, err := parseBulk(body, index)
		if err != nil {
			if _, ok := err.(*requestError); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		taken := 0
		for _, it := range items {
			if it.line >= 0 {
				if it.line != taken || it.status != 0 {
					t.Fatalf("item %+v out of order (taken %d)", it, taken)
				}
				taken++
			} else if it.status < 400 || it.errType == "" {
				t.Fatalf("refused item without an error: %+v", it)
			}
		}
		if taken != len(lines) {
			t.Fatalf("%d items taken, %d lines", taken, len(lines))
		}
		var h Handler
		b := h.answerBody(items, time.Now())
		if !json.Valid(b) {
			t.Fatalf("answer is not JSON: %s", b)
		}
	})
}

// TestFlattenNesting: arrays and skipped objects may nest as deeply as
// encoding/json lets them (10 000 levels), not deeper.
func TestFlattenNesting(t *testing.T) {
	for _, c := range []struct {
		open, close string
		n           int
	}{{`[`, `]`, 9999}, {`[`, `]`, 10000}, {`{"":`, `}`, 9999}, {`{"":`, `}`, 10000}, {`[{"b":`, `}]`, 4999}, {`[{"b":`, `}]`, 5000}} {
		doc := `{"a":` + strings.Repeat(c.open, c.n) + `1` + strings.Repeat(c.close, c.n) + `}`
		if c.open == `{"":` {
			doc = `{"":` + doc[len(`{"a":`):]
		}
		var p docParser
		_, err := p.flatten([]byte(doc), doc)
		valid := json.Valid([]byte(doc))
		if (err == nil) != valid {
			t.Errorf("%s×%d: flatten %v, json.Valid %v", c.open, c.n, err, valid)
		}
		// 10 000 levels in all are valid, one more is not.
		if valid != (c.n%1000 == 999) {
			t.Errorf("%s×%d: json.Valid %v", c.open, c.n, valid)
		}
	}
}
