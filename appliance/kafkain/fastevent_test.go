package kafkain

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// TestFastEventAsJSON: for events as an agent writes them (encoding/json's
// bytes, which kafkaout's encoder reproduces) and for those events
// mangled at random, fastEvent either declines or decodes exactly what
// encoding/json decodes; and it does not decline the plain ones.
func TestFastEventAsJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"a", "GET /x?q=1 HTTP/1.1", `"quoted"`, `back\slash`, "tab\there", "nl\n", "ctl\x01\x1f", "<b>&amp;</b>",
		"ünïcödé", "日本語", "emoji 😀", "\u2028\u2029", "slash/", "", " ", "\xff\xfe", "\xed\xa0\x80", "\\u0041"}
	str := func() string {
		s := ""
		for range rng.IntN(5) {
			s += pieces[rng.IntN(len(pieces))]
		}
		return s
	}
	slow := func(v []byte) (pipeline.Record, string, bool) {
		var ev event
		if err := json.Unmarshal(v, &ev); err != nil || ev.Line == nil {
			return pipeline.Record{}, "", false
		}
		return ev.Record, *ev.Line, true
	}
	fastOK, plain := 0, 0
	for i := range 20000 {
		r := pipeline.Record{
			TS:     time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In([]*time.Location{time.UTC, time.FixedZone("x", 8*3600), time.FixedZone("y", -3*3600-1800)}[rng.IntN(3)]),
			Host:   str(),
			Source: "/var/log/" + str(),
			FileID: str(),
			Offset: rng.Int64N(1 << 40),
			Line:   str(),
		}
		if rng.IntN(3) == 0 {
			r.SourceName = str()
		}
		if rng.IntN(2) == 0 {
			r.End = r.Offset + rng.Int64N(1000)
		}
		if rng.IntN(4) == 0 {
			r.Fields = map[string]string{str(): str(), "env": str()}
		}
		if rng.IntN(5) == 0 {
			r.Flags = []string{pipeline.FlagTruncated, str()}
		}
		if rng.IntN(3) == 0 {
			r.Parser = "regex:" + str()
		}
		if rng.IntN(3) == 0 {
			r.TZ = str()
		}
		v, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		cases := [][]byte{v}
		for range 3 {
			m := append([]byte(nil), v...)
			switch rng.IntN(4) {
			case 0:
				const junk = " \"\\{}[],:0a\xff"
				m[rng.IntN(len(m))] = junk[rng.IntN(len(junk))]
			case 1:
				m = m[:rng.IntN(len(m))]
			case 2:
				k := rng.IntN(len(m))
				m = append(m[:k], append([]byte(" "), m[k:]...)...)
			case 3:
				k := rng.IntN(len(m))
				m = append(m[:k], m[min(len(m), k+1+rng.IntN(8)):]...)
			}
			cases = append(cases, m)
		}
		for ci, c := range cases {
			fr, fl, fok := fastEvent(c)
			sr, sl, sok := slow(c)
			if ci == 0 && sok {
				plain++
				if fok {
					fastOK++
				}
			}
			if !fok {
				continue
			}
			if !sok {
				t.Fatalf("case %d.%d: fast decoded %q, encoding/json refuses it", i, ci, c)
			}
			if !reflect.DeepEqual(fr, sr) || fl != sl || !fr.TS.Equal(sr.TS) || fr.TS.Location().String() != sr.TS.Location().String() {
				t.Fatalf("case %d.%d: %q\nfast %+v %q\njson %+v %q", i, ci, c, fr, fl, sr, sl)
			}
		}
	}
	// Invalid UTF-8 and lone surrogates are left to encoding/json; the
	// rest must take the fast path.
	if fastOK < plain*6/10 {
		t.Fatalf("fast path took %d of %d plain events", fastOK, plain)
	}
	t.Logf("fast path took %d of %d plain events", fastOK, plain)
}

// BenchmarkDecodeEvent compares the two decoders on a typical event.
func BenchmarkDecodeEvent(b *testing.B) {
	r := pipeline.Record{TS: time.Now().UTC(), Host: "web-1", Source: "/var/log/nginx/access.log", FileID: "2049:1234:abcdef0123456789", Offset: 123456789, End: 123456989,
		Line: `191.242.218.152 - - [30/Nov/2026:17:48:20 +0000] "GET /api/v1/cart/items/16714?page=12&limit=70 HTTP/1.1" 200 41457 "-" "curl/8.5.0" rt=0.961 uct="0.000" urt="0.376"`}
	v, _ := json.Marshal(r)
	b.Run("fast", func(b *testing.B) {
		for range b.N {
			if _, _, ok := fastEvent(v); !ok {
				b.Fatal("declined")
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for range b.N {
			var ev event
			if err := json.Unmarshal(v, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
