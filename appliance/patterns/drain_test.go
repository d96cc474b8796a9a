package patterns

import (
	"slices"
	"testing"
)

func TestMine(t *testing.T) {
	keys := []*mkey{
		{key: "user=alice action=login ok", count: 9},
		{key: "level=info msg=<*> user=alice", count: 8},
		{key: "user=bob action=login ok", count: 7},
		{key: "level=info msg=<*> user=bob", count: 6},
		{key: "level=error msg=<*> user=carol", count: 5},
		{key: "conn opened <*>", count: 4},
		{key: "conn closed <*>", count: 4},
		{key: "a x", count: 3},
		{key: "a y", count: 2},
		{key: "", count: 1},
		{key: "<*> started", count: 1},
		{key: "[<*>] started", count: 1},
	}
	got := map[string]uint64{}
	for _, tp := range mine(keys, 0) {
		got[tp.t.String()] += tp.count
		for _, k := range tp.keys {
			if !tp.t.FitsKey([]byte(k.key)) {
				t.Errorf("key %q does not fit its template %q", k.key, tp.t.String())
			}
		}
	}
	want := map[string]uint64{
		"user=<*> action=login ok":       16,
		"level=info msg=<*> user=<*>":    14,
		"level=error msg=<*> user=carol": 5,
		"conn opened <*>":                4,
		"conn closed <*>":                4,
		"a <*>":                          5,
		"":                               1,
		"<*> started":                    2,
	}
	if len(got) != len(want) {
		t.Errorf("templates %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%q: %d lines, want %d (all: %v)", k, got[k], n, got)
		}
	}
}

func TestTemplateFits(t *testing.T) {
	cases := []struct {
		tmpl, key string
		fits      bool
	}{
		{"", "", true},
		{"", "a", false},
		{"a", "", false},
		{"a <*> c", "a b c", true},
		{"a  <*>\tc", "a b c", true},
		{"a <*> c", "a b", false},
		{"a <*>", "a b c", false},
		{"user=<*> x", "user=bob x", true},
		{"user=<*> x", "user= x", true},
		{"user=<*> x", "users=bob x", false},
		{"user=<*>", "user", false},
		{"[<*>] x", "[<*>] x", true},
		{"[<*>] x", "[y] x", false},
		{"<*>ms", "<*>ms", true},
		{"<*>ms", "5ms", false},
	}
	for _, c := range cases {
		tp := ParseTemplate(c.tmpl)
		if got := tp.FitsKey([]byte(c.key)); got != c.fits {
			t.Errorf("%q fits %q: %v", c.key, c.tmpl, got)
		}
	}
	if w := Words(`a <*> user=<*> b "c" [<*>]`); !slices.Equal(w, []string{"a", "b", `"c"`}) {
		t.Errorf("Words: %q", w)
	}
	if q := FilterQuery(" * ", `say "x\y"`); q != `_pattern:"say \"x\\y\""` {
		t.Errorf("FilterQuery: %s", q)
	}
	if q := FilterQuery("a OR b", "t"); q != `(a OR b) AND _pattern:"t"` {
		t.Errorf("FilterQuery: %s", q)
	}
}

func TestMarkOverlaps(t *testing.T) {
	keys := []*mkey{
		{key: "GET /a done", count: 5},
		{key: "GET /b done", count: 4},
		{key: "<*> /a done", count: 3},
		{key: "[<*>] /c done", count: 2},
		{key: "x", count: 2},
		{key: "y", count: 1},
	}
	ts := mine(keys, 0)
	markOverlaps(ts)
	got := map[string]bool{}
	for _, tp := range ts {
		got[tp.t.String()] = tp.overlap
	}
	// GET /a done fits <*> /a done; nothing else fits another template
	// ([<*>] is a word of its own, x and y are apart).
	want := map[string]bool{"GET <*> done": false, "<*> /a done": true, "[<*>] /c done": false, "x": false, "y": false}
	if len(got) != len(want) {
		t.Fatalf("templates %v", got)
	}
	for k, v := range want {
		if o, ok := got[k]; !ok || o != v {
			t.Errorf("%q: overlap %v (%v), want %v", k, o, ok, v)
		}
	}
}
