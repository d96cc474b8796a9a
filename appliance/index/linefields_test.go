package index

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// refLineFields is lineFields as the index first wrote it: the static
// leaves before the parsed ones, stably sorted by name.
func refLineFields(static map[string]string, leaves []leaf) ([]kv, []kn) {
	all := append(staticLeaves(static), leaves...)
	slices.SortStableFunc(all, func(a, b leaf) int { return strings.Compare(a.path, b.path) })
	var fields []kv
	var nums []kn
	for _, f := range all {
		fields = append(fields, kv{K: f.path, V: f.str})
		if f.isN {
			nums = append(nums, kn{K: f.path, V: f.num})
		}
	}
	return fields, nums
}

func TestLineFields(t *testing.T) {
	names := []string{"a", "a.b", "a_b", "b", "host.name", "level", "log.offset", "n", "z"}
	values := []string{"x", "1", "-0", "007", "1.5", "8.11.0", "1e3", "", "-", "123456789012345", "1234567890123456"}
	rng := rand.New(rand.NewPCG(1, 2))
	var prevStatic map[string]string
	for i := range 2000 {
		static := map[string]string{}
		if i%2 == 1 {
			// The names of the case before (as a sender's lines have
			// them), or as many others.
			for k := range prevStatic {
				if rng.IntN(4) == 0 {
					k = names[rng.IntN(len(names))]
				}
				static[k] = values[rng.IntN(len(values))]
			}
		} else {
			for range rng.IntN(len(names) + 1) {
				static[names[rng.IntN(len(names))]] = values[rng.IntN(len(values))]
			}
		}
		prevStatic = static
		var leaves []leaf
		for j := range rng.IntN(6) {
			v := values[rng.IntN(len(values))]
			l := leaf{path: names[rng.IntN(len(names))], str: fmt.Sprint(v, j)}
			l.num, l.isN = number(l.str)
			leaves = append(leaves, l)
		}
		wantF, wantN := refLineFields(static, slices.Clone(leaves))
		gotF, gotN := lineFields(static, leaves)
		same := slices.EqualFunc(gotN, wantN, func(a, b kn) bool {
			return a.K == b.K && a.V == b.V && math.Signbit(a.V) == math.Signbit(b.V)
		})
		if !slices.Equal(gotF, wantF) || !same {
			t.Fatalf("case %d: static %v leaves %v:\nfields %v nums %v\nwant   %v nums %v", i, static, leaves, gotF, gotN, wantF, wantN)
		}
	}
	if f, n := lineFields(nil, nil); f != nil || n != nil {
		t.Errorf("no fields: %v %v", f, n)
	}
}

// TestNumberDigits: a string of digits alone is the number ParseFloat
// reads.
func TestNumberDigits(t *testing.T) {
	for _, s := range []string{"0", "007", "200", "123456789012345", "1234567890123456", "99999999999999999999"} {
		got, ok := number(s)
		if !ok || got != mustParse(t, s) {
			t.Errorf("number(%q) = %v %v", s, got, ok)
		}
	}
}

func mustParse(t *testing.T, s string) float64 {
	t.Helper()
	var f float64
	if _, err := fmt.Sscan(s, &f); err != nil {
		t.Fatal(err)
	}
	return f
}
