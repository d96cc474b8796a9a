package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestSourceCaps: Validate caps a source's parts and its whole, naming the
// field, and checks counts before anything per element.
func TestSourceCaps(t *testing.T) {
	n := func(k int, f func(i int) string) []string {
		out := make([]string, k)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	fields := func(k, size int) map[string]string {
		m := map[string]string{}
		for i := range k {
			m[fmt.Sprintf("f%d", i)] = strings.Repeat("v", size)
		}
		return m
	}
	path := func(i int) string { return fmt.Sprintf("/var/log/p%d.log", i) }
	checked := 0
	allow := func(string) error { checked++; return nil }
	cases := []struct {
		src    Source
		field  string // "" = accepted
		errHas string
	}{
		{Source{Name: "a", Paths: n(20000, path)}, "paths", "20000 globs; at most 256"},
		{Source{Name: "a", Paths: n(1, path), Fields: fields(5000, 1)}, "fields", "5000 fields; at most 64"},
		{Source{Name: "a", Paths: n(1, path), Hosts: n(300, func(i int) string { return fmt.Sprint("h", i) })}, "hosts", "300 hosts; at most 256"},
		{Source{Name: "a", Paths: []string{"/var/log/" + strings.Repeat("x", MaxPathBytes)}}, "paths[0]", "4105 bytes; at most 4096"},
		{Source{Name: "a", Paths: n(1, path), Fields: map[string]string{"b": "ok", "a": strings.Repeat("v", 1025)}}, "fields.a", "value is 1025 bytes; at most 1024"},
		{Source{Name: "a", Paths: n(1, path), Hosts: []string{strings.Repeat("h", 254)}}, "hosts[0]", "254 bytes; at most 253"},
		{Source{Name: "a", Paths: n(200, func(i int) string { return path(i) + strings.Repeat("x", 400) })}, "body", "as JSON; at most 65536"},
		{Source{Name: "a", Paths: n(MaxSourcePaths, path), Fields: fields(MaxSourceFields, 200), Hosts: n(MaxSourceHosts, func(i int) string { return fmt.Sprint("host-", i) })}, "", ""},
		{Source{Name: "a", Paths: []string{"/" + strings.Repeat("x", MaxPathBytes-1)}, Fields: fields(1, MaxFieldValueBytes), Hosts: []string{strings.Repeat("h", MaxHostBytes)}}, "", ""},
	}
	for _, c := range cases {
		checked = 0
		err := c.src.Validate(allow)
		var fe *FieldError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("at the caps: refused: %v", err)
		case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Msg, c.errHas)):
			t.Errorf("%v; want a FieldError on %s mentioning %q", err, c.field, c.errHas)
		}
		if c.field == "paths" && checked != 0 {
			t.Errorf("%d paths checked before the count was refused", checked)
		}
	}
}
