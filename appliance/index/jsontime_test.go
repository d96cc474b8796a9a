package index

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// BenchmarkJSONTime: a JSON or regex time value in the forms lines write.
func BenchmarkJSONTime(b *testing.B) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	for _, v := range []string{"2026-12-01T22:00:00.123Z", "2026-12-01 22:00:00,123", "01/Dec/2026:22:00:00 +0800", "1733090400.123"} {
		b.Run(v, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, ok := jsonTime(v, now, time.UTC); !ok {
					b.Fatal(v)
				}
			}
		})
	}
}

// TestJSONTimeStringAsBefore: a time string reads as it did when
// time.Parse was tried first and strconv.ParseFloat last.
func TestJSONTimeStringAsBefore(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	loc := time.FixedZone("", 8*3600)
	before := func(v string) (time.Time, bool) {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return checkTime(t, now)
		}
		if t, ok := parseISO(v, loc); ok {
			return checkTime(t, now)
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return eventTime(v, now, loc)
		}
		return jsonTime(json.Number(strconv.FormatFloat(f, 'f', -1, 64)), now, loc)
	}
	for _, v := range []string{
		"2026-12-01T22:00:00Z", "2026-12-01T22:00:00.123456789Z", "2026-12-01T22:00:00.1234567891234Z",
		"2026-12-01T22:00:00+08:00", "2026-12-01T22:00:00-05:30", "2026-12-01T22:00:00+00:00",
		"2026-12-01T22:00:00+15:00", "2026-12-01T22:00:00+08:60", "2026-12-01T22:00:00+0800", "2026-12-01T22:00:00+08",
		"2026-12-01T22:00:00,5Z", "2026-12-01T22:00:60Z", "2026-02-30T22:00:00Z", "2026-12-01T24:00:00Z",
		"2026-12-01T22:00:00", "2026-12-01 22:00:00", "2026-12-01 22:00:00,123", "2026/12/01 22:00:00",
		"2026-12-01T22:00:00Z trailing", "2026-12-01T22:00:00.Z", "2026-12-01t22:00:00z", "2026-12-01T22:00Z",
		"01/Dec/2026:22:00:00 +0800", "Dec  1 22:00:00", "1733090400", "1733090400.123", "1733090400123",
		"1.7330904e9", "-1", "0", "NaN", "Inf", "", "x", "12", "2026", "at 2026-12-01T22:00:00Z",
	} {
		got, gok := jsonTime(v, now, loc)
		want, wok := before(v)
		if gok != wok || !got.Equal(want) {
			t.Errorf("%q: %v %v, before %v %v", v, got, gok, want, wok)
		}
	}
}
