package index

import (
	"testing"
	"time"

	"github.com/logbox/logbox/bench"
)

// benchBlock is one block of the benchmark mix.
func benchBlock(n int) []storedLine {
	g := bench.NewGenerator(1, n, time.Now().Add(-time.Hour))
	lines := make([]storedLine, n)
	for i := range lines {
		lines[i] = storedLine{Line: g.Next(), Offset: int64(i * 200), TS: int64(i)}
	}
	return lines
}

// BenchmarkTermsOf times finding the terms of a 1024-line block:
//
//	go test ./appliance/index -run '^$' -bench 'TermsOf|EncodeBlock'
func BenchmarkTermsOf(b *testing.B) {
	lines := benchBlock(1024)
	b.ResetTimer()
	for range b.N {
		termsOf(lines)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/line")
}

// BenchmarkEncodeBlock times laying out a 1024-line block (terms, Bloom
// filter, columns, zstd).
func BenchmarkEncodeBlock(b *testing.B) {
	lines := benchBlock(1024)
	info := &blockInfo{Host: "h", FileID: "f"}
	b.ResetTimer()
	for range b.N {
		encodeBlock(1, info, lines, blockVersionNewest)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/line")
}
