package diskspace

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sizeUnits are the units ParseSize takes, lower case: KB, MB, GB, TB are
// powers of 1000; KiB, MiB, GiB, TiB (also Ki, Mi, Gi, Ti and K, M, G, T)
// powers of 1024.
var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	"ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30, "ti": 1 << 40,
	"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
}

// ParseSize reads a byte size: a whole number of bytes ("1048576") or a
// number with a unit ("512MiB", "2GiB", "1.5GB", "500 MB"; units in any
// case, see sizeUnits). It refuses negative sizes and sizes of 8 EiB or
// more.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("%q: want bytes or a number with a unit, like 512MiB or 2GiB", s)
	}
	if mult == 1 && !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q: want bytes or a number with a unit, like 512MiB or 2GiB", s)
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: want bytes or a number with a unit, like 512MiB or 2GiB", s)
	}
	v := math.Round(f * mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return int64(v), nil
}

// FormatSize writes n bytes in the largest binary unit not above it:
// whole ("512MiB", "1GiB", "512"), else to one decimal ("1.5GiB",
// "37.2MiB"), which ParseSize reads back as about n.
func FormatSize(n int64) string {
	if n < 0 {
		return "-" + FormatSize(-n)
	}
	units := []string{"TiB", "GiB", "MiB", "KiB"}
	for i, u := range units {
		m := int64(1) << (10 * (len(units) - i))
		switch {
		case n >= m && n%m == 0:
			return strconv.FormatInt(n/m, 10) + u
		case n >= m:
			return strconv.FormatFloat(float64(n)/float64(m), 'f', 1, 64) + u
		}
	}
	return strconv.FormatInt(n, 10)
}
