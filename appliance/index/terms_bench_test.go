package index

import (
	"fmt"
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
		encodeBlock(1, info, lines, blockVersionNewest, nil)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/line")
}

// BenchmarkTermsOfCJK times the terms of a block of Chinese and Japanese
// application lines (bigrams of every CJK run).
func BenchmarkTermsOfCJK(b *testing.B) {
	tpl := []string{
		"2026-12-01 22:00:%02d INFO 用户%d登录成功，来源IP 10.0.%d.%d",
		"2026-12-01 22:00:%02d ERROR 数据库连接超时，重试第%d次 pool=main-%d shard=%d",
		"2026-12-01 22:00:%02d WARN サーバーへの接続がタイムアウトしました code=%d retry=%d node=%d",
		"2026-12-01 22:00:%02d INFO 订单%d支付完成 金额=%d.%d元",
	}
	lines := make([]storedLine, 1024)
	for i := range lines {
		lines[i] = storedLine{Line: fmt.Sprintf(tpl[i%len(tpl)], i%60, i*7, i%13, i%250), Offset: int64(i * 100), TS: int64(i)}
	}
	b.ResetTimer()
	for range b.N {
		termsOf(lines)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/line")
}
