package index

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// TestMergeStats: the states of disjoint partitions, each through the
// wire encoding, merge into exactly the answer of the whole index.
func TestMergeStats(t *testing.T) {
	ctx := context.Background()
	ix := openWith(t, Config{Dir: filepath.Join(t.TempDir(), "idx"), BlockLines: 50})
	defer ix.Close()
	base := testNow.Add(-time.Hour)
	parts := []string{"logs/0", "logs/1", "logs/2", ""}
	var rs []pipeline.Record
	for i := range 2000 {
		rs = append(rs, pipeline.Record{
			TS: base.Add(time.Duration(i) * time.Second), Host: fmt.Sprintf("h%d", i%3), Source: "/l/app.log",
			FileID: fmt.Sprintf("f%d", i%7), Offset: int64(i * 100), Part: parts[i%7%4],
			Line: fmt.Sprintf("level=%s status=%d tok=t%d msg=request", []string{"info", "warn", "error"}[i%3], 200+i%5*100, i%37),
		})
	}
	if err := ix.Index(ctx, rs); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"request | stats count() as n, sum(status), avg(status), min(status), max(status), median(status), quantile(0.9, status), count_distinct(tok) by (level)",
		"request | stats by (host, _time:10m) count(), max(status)",
		"request | stats count()",
		"nomatchword | stats count(), sum(status)",
		"request | stats count() by (tok) | sort by (tok) | limit 5",
	} {
		req := pipeline.StatsRequest{Query: q, From: base, To: testNow}
		want, err := ix.StatsQuery(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var states []StatsState
		for _, p := range parts {
			st, err := ix.StatsState(pipeline.WithParts(ctx, []string{p}), req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := EncodeStatsState(st)
			if err != nil {
				t.Fatal(err)
			}
			if st, err = DecodeStatsState(b); err != nil {
				t.Fatal(err)
			}
			states = append(states, st)
		}
		got, err := MergeStats(q, states)
		if err != nil {
			t.Fatalf("%s: merge: %v", q, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\nmerged %+v\nwhole  %+v", q, got, want)
		}
		if want.Total == 0 && q[:7] == "request" {
			t.Fatalf("%s: nothing matched; the test checks nothing", q)
		}
	}
}
