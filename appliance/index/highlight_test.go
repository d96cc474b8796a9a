package index

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logbox/logbox/appliance/pipeline"
)

func TestHighlights(t *testing.T) {
	ctx := context.Background()
	ix := openWith(t, Config{Dir: filepath.Join(t.TempDir(), "idx")})
	defer ix.Close()
	lines := []string{
		"Überweisung fehlgeschlagen: Größe überschritten — ERROR ünïcödé 日本語 error",
		"2026-11-25T10:00:00Z INFO user=josé request ok",
		`{"level":"error","msg":"naïve café error","status":500}`,
	}
	var rs []pipeline.Record
	for i, l := range lines {
		rs = append(rs, pipeline.Record{TS: testNow, Host: "web1", FileID: "f", Offset: int64(i), Line: l})
	}
	if err := ix.Index(ctx, rs); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		q      string
		offset int64
		want   []string // the highlighted text, in order
	}{
		{"error", 0, []string{"ERROR", "error"}},
		{"größe", 0, []string{"Größe"}},
		{"über*", 0, []string{"Überweisung", "überschritten"}},
		{`"fehlgeschlagen größe"`, 0, []string{"fehlgeschlagen: Größe"}}, // ":" is not a part; a phrase is marked whole
		{`"fehlgeschlagen überschritten"`, 0, nil},                       // not adjacent: no match
		{`"größe überschritten"`, 0, []string{"Größe überschritten"}},
		{"日本語", 0, []string{"日本語"}}, // one token per ideograph; adjacent ranges merge
		{"+josé +host:web1", 1, []string{"josé"}},
		{"level:INFO", 1, nil}, // no term on line
		{"café status:500", 2, []string{"café"}},
		{"+erorr~1 +level:error", 2, []string{"error", "error"}}, // the JSON level value is line text too
	}
	for _, c := range cases {
		res, err := ix.Search(ctx, pipeline.SearchRequest{Query: c.q})
		if err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		var h *pipeline.Hit
		for i := range res.Hits {
			if res.Hits[i].Offset == c.offset {
				h = &res.Hits[i]
			}
		}
		if h == nil {
			if c.want != nil {
				t.Errorf("%s: line %d not found", c.q, c.offset)
			}
			continue
		}
		var got []string
		for i, r := range h.Highlights {
			if r.Field != "line" || r.Start < 0 || r.End > len(h.Line) || r.Start >= r.End ||
				(i > 0 && r.Start <= h.Highlights[i-1].End) {
				t.Fatalf("%s: bad ranges %+v", c.q, h.Highlights)
			}
			got = append(got, h.Line[r.Start:r.End])
		}
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s: highlighted %q, want %q (%+v)", c.q, got, c.want, h.Highlights)
		}
	}
	res, err := ix.Search(ctx, pipeline.SearchRequest{Query: "error", NoHighlights: true})
	if err != nil || len(res.Hits) == 0 || res.Hits[0].Highlights != nil {
		t.Fatalf("NoHighlights: %v %+v", err, res.Hits)
	}
	res, err = ix.Search(ctx, pipeline.SearchRequest{Query: "josé"})
	if err != nil || len(res.Hits) != 1 {
		t.Fatal(err, res)
	}
	b, _ := json.Marshal(res.Hits[0].Highlights)
	if string(b) != `[{"field":"line","start":31,"end":36}]` {
		t.Fatalf("json %s", b)
	}
}
