package pipeline

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseTime reads an absolute RFC 3339 time or one relative to now:
// "now", "now-15m", "now-2h", "now-7d", "now-1w" (units s, m, h, d, w).
// Empty gives the zero time (an open end). The API reads from/to with it,
// and a saved search's from/to are checked with it.
func ParseTime(v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if rest, ok := strings.CutPrefix(v, "now"); ok {
		if rest == "" {
			return now, nil
		}
		sign := rest[0]
		if (sign != '-' && sign != '+') || len(rest) < 3 {
			return time.Time{}, fmt.Errorf("%q: want now, now-15m, now-2h, now-7d or RFC 3339", v)
		}
		n, err := strconv.Atoi(rest[1 : len(rest)-1])
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("%q: want now, now-15m, now-2h, now-7d or RFC 3339", v)
		}
		var unit time.Duration
		switch rest[len(rest)-1] {
		case 's':
			unit = time.Second
		case 'm':
			unit = time.Minute
		case 'h':
			unit = time.Hour
		case 'd':
			unit = 24 * time.Hour
		case 'w':
			unit = 7 * 24 * time.Hour
		default:
			return time.Time{}, fmt.Errorf("%q: unit must be s, m, h, d or w", v)
		}
		if int64(n) > math.MaxInt64/int64(unit) {
			return time.Time{}, fmt.Errorf("%q: more than %d years from now", v, math.MaxInt64/int64(365*24*time.Hour))
		}
		d := time.Duration(n) * unit
		if sign == '-' {
			d = -d
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want now, now-15m, now-2h, now-7d or RFC 3339", v)
	}
	return t, nil
}
