package index

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/logbox/logbox/bench"
)

// TestTermsOfFieldValues checks termsOf's field values against the plain
// reading of its rule: every distinct value's parts (lowercased), words
// (CJK runs as their bigrams and last character) once each in order of
// first appearance, parts with a digit among the Bloom filter's keys.
func TestTermsOfFieldValues(t *testing.T) {
	g := bench.NewGenerator(3, 3000, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	var lines []storedLine
	extra := []kv{{"msg", "用户登录失败 user=Bob"}, {"msg", "数据库连接超时，重试"}, {"svc", "API-Gateway v2"}, {"id", "AbC123"}, {"e", ""}, {"x", "Überweisung ÜBER"}}
	for i := range 3000 {
		ex := parseLine(g.Next(), time.Now(), nil, time.Now(), 64)
		var l storedLine
		for _, f := range ex.leaves {
			l.Fields = append(l.Fields, kv{K: f.path, V: f.str})
		}
		l.Fields = append(l.Fields, extra[i%len(extra)])
		l.Line = fmt.Sprint(i)
		lines = append(lines, l)
	}
	for lo := 0; lo < len(lines); lo += 1024 {
		chunk := lines[lo:min(len(lines), lo+1024)]
		got := termsOf(chunk)
		var want []string
		seenVal, seenWord := map[string]bool{}, map[string]bool{}
		var digits []uint64
		for _, l := range chunk {
			for _, f := range l.Fields {
				if seenVal[f.V] {
					continue
				}
				seenVal[f.V] = true
				for _, p := range parts(f.V) {
					add := func(w string) {
						if !seenWord[w] {
							seenWord[w] = true
							want = append(want, w)
						}
					}
					switch {
					case func() bool { c, _ := classAtS(p, 0); return c == clCJK }():
						cjkGrams(p, add)
					case !hasDigitPart(p):
						add(p)
					default:
						digits = append(digits, xxhash.Sum64String(p))
					}
				}
			}
		}
		if !slices.Equal(got.vals, want) {
			t.Fatalf("block at %d: vals\n%q\nwant\n%q", lo, got.vals, want)
		}
		for _, h := range digits {
			if !slices.Contains(got.hashes, h) {
				t.Fatalf("block at %d: a digit part's hash %x is not a Bloom key", lo, h)
			}
		}
	}
}
