package index

import (
	"slices"
	"testing"
)

func TestSplitPipes(t *testing.T) {
	cases := []struct {
		in    string
		q     string
		pipes []string
		at    []int
	}{
		{"error", "error", nil, nil},
		{"a || b", "a || b", nil, nil},
		{`"a | b"`, `"a | b"`, nil, nil},
		{`/a|b/ x`, `/a|b/ x`, nil, nil},
		{`path:/a|b/`, `path:/a|b/`, nil, nil},
		{`a\|b`, `a\|b`, nil, nil},
		{`_id:web1|f1|300`, `_id:web1|f1|300`, nil, nil},
		{`_id:web1|f1|300 | limit 1`, `_id:web1|f1|300 `, []string{"limit 1"}, []int{18}},
		{"status:>=500 | stats count() by (host) |  sort by (n desc) ", "status:>=500 ", []string{"stats count() by (host)", "sort by (n desc)"}, []int{15, 42}},
		{"x/y | limit 3", "x/y ", []string{"limit 3"}, []int{6}},
		{"| stats count()", "", []string{"stats count()"}, []int{2}},
	}
	for _, c := range cases {
		q, pipes, at := splitPipes(c.in)
		if q != c.q || !slices.Equal(pipes, c.pipes) || !slices.Equal(at, c.at) {
			t.Errorf("splitPipes(%q) = %q %q %v, want %q %q %v", c.in, q, pipes, at, c.q, c.pipes, c.at)
		}
		for i, p := range pipes {
			if c.in[at[i]:at[i]+len(p)] != p {
				t.Errorf("%q: pipe %q not at %d", c.in, p, at[i])
			}
		}
	}
}
