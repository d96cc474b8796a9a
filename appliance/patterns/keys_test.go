package patterns

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/index"
	"github.com/logbox/logbox/appliance/pipeline"
	"github.com/logbox/logbox/bench"
)

// TestKeysAnswerAsText: answers from the keys the index stores (whole
// blocks as key tables, other blocks as keys per line) are the answers
// of masking every line's text (the miner's textScan), over blocks with
// keys and blocks without (written with no Masker), several shards,
// ranges that cut blocks and sparkline buckets, filtered queries, lines
// sharing their time, the _pattern filter and the "new since"
// comparison.
func TestKeysAnswerAsText(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "idx")
	open := func(mk index.Masker) *index.Index {
		t.Helper()
		ix, err := index.Open(index.Config{Dir: dir, Templates: Fitter{}, Masker: mk, Retention: -1}, quiet)
		if err != nil {
			t.Fatal(err)
		}
		return ix
	}
	// Without keys: the first day and the first half of the second.
	ix := open(nil)
	day := 24 * time.Hour
	load(t, ix, generate(11, 8000, allGens(), base.Add(-day), day), "old.log")
	load(t, ix, generate(12, 4000, allGens()[:12], base, 12*time.Hour), "mixed.log")
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	// With keys: the rest, lines of the benchmark's mix (auto parser:
	// levels), and a burst of lines that share their second.
	ix = open(Fitter{})
	defer ix.Close()
	load(t, ix, generate(13, 6000, allGens(), base.Add(12*time.Hour), 12*time.Hour), "mixed2.log")
	load(t, ix, generate(14, 10000, allGens()[5:], base.Add(day), day), "new.log")
	burst := generate(15, 6000, allGens(), base.Add(day+time.Hour), time.Minute)
	for i := range burst {
		burst[i].ts = burst[i].ts.Truncate(time.Second)
	}
	load(t, ix, burst, "burst.log")
	g := bench.NewGenerator(7, 5000, base.Add(day+2*time.Hour))
	var recs []pipeline.Record
	for i := range 5000 {
		l := g.Next()
		recs = append(recs, pipeline.Record{TS: base.Add(day + 2*time.Hour + time.Duration(i)*time.Second/3).Truncate(time.Second),
			Host: "web3", Source: "/var/log/mix.log", FileID: "mix", Offset: int64(i) * 1000, Line: l})
	}
	if err := ix.Index(context.Background(), recs); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	keys, text := New(ix), New(ix)
	text.textScan = true
	at := func(h float64) time.Time { return base.Add(time.Duration(h * float64(time.Hour))) }
	type rng struct{ from, to time.Time }
	ranges := []rng{{}, {at(-24), at(48)}, {at(-3.3), at(13.7)}, {at(11.99), at(25.01)}, {at(25), at(25 + 1.0/120)}, {at(26), at(27)}}
	queries := []string{"", "host:web1", "failed OR user", "-host:web2 AND deploy", "level:ERROR", "source:\"/var/log/mix.log\"", "GET"}
	compare := func(req pipeline.PatternsRequest) pipeline.PatternsResult {
		t.Helper()
		a, err := keys.Patterns(ctx, req)
		if err != nil {
			t.Fatalf("%+v: %v", req, err)
		}
		b, err := text.Patterns(ctx, req)
		if err != nil {
			t.Fatalf("%+v: %v", req, err)
		}
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Fatalf("%+v:\nkeys %s\ntext %s", req, ja, jb)
		}
		return a
	}
	var filters []string
	for _, q := range queries {
		for _, r := range ranges {
			for _, nb := range []int{0, 1, 7, 30} {
				res := compare(pipeline.PatternsRequest{Query: q, From: r.from, To: r.to, Buckets: nb, Limit: 1000})
				if q == "" && r.from.IsZero() && nb == 0 {
					if res.Total != 8000+4000+6000+10000+6000+5000 {
						t.Fatalf("every line: %d", res.Total)
					}
					for _, p := range res.Patterns[:min(6, len(res.Patterns))] {
						filters = append(filters, p.Query)
					}
				}
			}
		}
	}
	for _, f := range filters {
		compare(pipeline.PatternsRequest{Query: f, From: at(-24), To: at(48), Buckets: 5})
	}
	// "New since": a comparison range of blocks without keys, of both,
	// and one that cuts blocks.
	for i, c := range []struct{ from, to, cfrom, cto time.Time }{
		{at(24), at(48), at(-24), at(12)},
		{at(24), at(48), at(-24), at(24)},
		{at(25), at(26), at(0.5), at(24.3)},
	} {
		for _, q := range []string{"", "host:web1"} {
			res := compare(pipeline.PatternsRequest{Query: q, From: c.from, To: c.to, CompareFrom: c.cfrom, CompareTo: c.cto, Buckets: 3, Limit: 1000})
			if !res.Compared {
				t.Fatal("not compared")
			}
			if i == 0 && q == "" && res.New == 0 {
				t.Errorf("%v–%v against %v–%v: nothing new", c.from, c.to, c.cfrom, c.cto)
			}
		}
	}
	if _, err := keys.Patterns(ctx, pipeline.PatternsRequest{Query: "a AND (", Limit: 1}); err == nil {
		t.Fatal("bad query: no error")
	}
}
