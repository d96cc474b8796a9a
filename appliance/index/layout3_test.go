package index

import (
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// TestLayout3RoundTrip: lines written as a layout-3 block and read back
// (whole, text alone, times alone, one column alone) are the lines that
// went in: times in ns, ms and whole seconds, read times, offsets, flags,
// keyword and number fields (numbers spelled "0.000", "-0", "1e5",
// "007", arrays, a number field without its keyword twin).
func TestLayout3RoundTrip(t *testing.T) {
	now := testNow
	texts := []string{
		`{"level":"warn","msg":"slow","latency_ms":1250.5,"user":{"id":"u-42"},"tags":["a","b"],"n":[1,2.50,"x"]}`,
		`{"zero":0.000,"neg":-0,"big":1e5,"code":"007","id":12345678901234567}`,
		`ts=2026-11-25T09:00:00Z level=error msg="disk full" used=0.97 rt=0.060 upstream=10.0.0.1:80`,
		`plain line with no fields 192.168.1.10`,
		`GET /api/v1/users/42 HTTP/1.1 200`,
	}
	for _, unit := range []time.Duration{1, time.Millisecond, time.Second} {
		t.Run(fmt.Sprint(unit), func(t *testing.T) {
			var in []storedLine
			ix := &Index{}
			names := newFieldNames(100, nil)
			for i := range 300 {
				line := texts[i%len(texts)]
				r := pipeline.Record{TS: now.Add(time.Duration(i) * 7 * time.Millisecond), Offset: int64(i * 300), Line: line}
				if i%7 == 0 {
					r.Flags = []string{pipeline.FlagTruncated}
				}
				if i%11 == 0 {
					r.Fields = map[string]string{"env": "prod", "count": fmt.Sprint(i)}
				}
				ex := parseLine(r.Line, r.TS, r.Fields, now, 64)
				ex.admit(names)
				l := ix.stored(&r, &ex, now)
				l.TS = now.Add(time.Duration(i) * unit * 13).UnixNano()
				if unit == 1 {
					l.TS += int64(i % 3)
				}
				in = append(in, l)
			}
			// A number with no keyword twin.
			in[3].Nums = append(in[3].Nums, kn{K: "zz_only_num", V: math.Pi})
			bf, err := openBlockFile(filepath.Join(t.TempDir(), blockFileName), 0, func([]byte, int64, int) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			defer bf.f.Close()
			sh := &shard{bf: bf, times: newTimesCache(4)}
			body, b := encodeBlock(1, &blockInfo{Host: "h", FileID: "f"}, in, bf.version, nil)
			b.sh = sh
			if err := bf.appendRecords([][]byte{body}, []*block{b}); err != nil {
				t.Fatal(err)
			}
			b.ts, b.levels = nil, nil // as writeBlocks leaves it: read from the record
			raw, err := bf.readPayload(b)
			if err != nil {
				t.Fatal(err)
			}
			out, err := decodeLines(b, raw)
			if err != nil {
				t.Fatal(err)
			}
			for i := range in {
				want, got := in[i], out[i]
				want.End, want.low, got.low = 0, nil, nil
				if len(want.Flags) == 0 {
					want.Flags = nil
				}
				if !reflect.DeepEqual(want, got) {
					t.Fatalf("line %d:\n got %+v\nwant %+v", i, got, want)
				}
			}
			var tr textReader
			text, err := tr.read(b)
			if err != nil {
				t.Fatal(err)
			}
			for i := range in {
				if text[i].Line != in[i].Line || text[i].TS != in[i].TS {
					t.Fatalf("text of line %d: %q at %d", i, text[i].Line, text[i].TS)
				}
			}
			starts, strs, ok, err := bf.readColumn(b, "env")
			if err != nil || !ok {
				t.Fatal(ok, err)
			}
			for i := range in {
				var want []string
				for _, f := range in[i].Fields {
					if f.K == "env" {
						want = append(want, f.V)
					}
				}
				if got := strs[starts[i]:starts[i+1]]; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("env of line %d: %v, want %v", i, got, want)
				}
			}
		})
	}
}

// TestStoredFromLeavesAsFromMaps: a line's fields laid out straight from
// its parsed leaves equal those laid out through build's maps (sorted by
// name, a name's values in turn, numbers beside their keyword).
func TestStoredFromLeavesAsFromMaps(t *testing.T) {
	ix := &Index{}
	lines := []string{
		`{"b":1,"a":"x","c":[3,"y",4.50],"a2":{"z":true,"y":null},"n":-0}`,
		`ts=2026-11-25T09:00:00Z level=error msg="disk full" used=0.97 rt=0.060 rt=0.1 upstream=10.0.0.1:80`,
		`{"k":["p","q"],"k2":"v"}`,
		`plain text without fields`,
	}
	// A source's static fields join the leaves (a numeric one is a
	// number too).
	for _, static := range []map[string]string{nil, {"env": "prod", "zz": "7", "aa": ""}} {
		for _, line := range lines {
			r := pipeline.Record{TS: testNow, Line: line, Fields: static}
			fast := parseLine(line, testNow, static, testNow, 64)
			fast.keepNames(newFieldNames(100, nil))
			viaMaps := parseLine(line, testNow, static, testNow, 64)
			viaMaps.admit(newFieldNames(100, nil))
			if len(fast.leaves) == 0 && len(viaMaps.fields) > len(static) {
				t.Fatalf("%s: no leaves to lay out", line)
			}
			bare := viaMaps // the line without its fields
			bare.leaves, bare.static = nil, nil
			got, want := ix.stored(&r, &fast, testNow), storedFromMaps(ix.stored(&r, &bare, testNow), &viaMaps)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s:\n from leaves %+v %+v\n from maps   %+v %+v", line, got.Fields, got.Nums, want.Fields, want.Nums)
			}
		}
	}
}

// storedFromMaps lays out l's fields from build's maps: names sorted, a
// name's values in turn.
func storedFromMaps(l storedLine, ex *extracted) storedLine {
	for _, k := range slices.Sorted(maps.Keys(ex.fields)) {
		switch v := ex.fields[k].(type) {
		case string:
			l.Fields = append(l.Fields, kv{K: k, V: v})
		case []string:
			for _, s := range v {
				l.Fields = append(l.Fields, kv{K: k, V: s})
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(ex.num)) {
		switch v := ex.num[k].(type) {
		case float64:
			l.Nums = append(l.Nums, kn{K: k, V: v})
		case []float64:
			for _, f := range v {
				l.Nums = append(l.Nums, kn{K: k, V: f})
			}
		}
	}
	return l
}
