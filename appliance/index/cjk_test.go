package index

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/logbox/logbox/appliance/pipeline"
)

var cjkLines = []string{
	"用户登录失败 user=bob", // 0
	"数据库连接超时",         // 1
	"用户bob登录",         // 2
	`{"level":"error","msg":"数据库连接超时","user":"李雷"}`, // 3
	"サーバーへの接続がタイムアウトしました code=504",                  // 4
	"사용자 로그인 실패 user=kim",                           // 5
	"连接失败，请重试",                                      // 6
	"user bob logged in",                            // 7
	"msg=用户登录失败 level=warn",                         // 8
}

func cjkIndex(t *testing.T, dir string) *Index {
	t.Helper()
	ix := openWith(t, Config{Dir: dir, BlockLines: 2})
	indexCJK(t, ix, testNow)
	return ix
}

// indexCJK indexes cjkLines (file "cjk", offsets 100 apart) from ts on.
func indexCJK(t *testing.T, ix *Index, ts time.Time) {
	t.Helper()
	var rs []pipeline.Record
	for i, l := range cjkLines {
		rs = append(rs, pipeline.Record{TS: ts.Add(time.Duration(i) * time.Second), Host: "h", Source: "/s", FileID: "cjk", Offset: int64(i * 100), Line: l})
	}
	if err := ix.Index(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
}

// TestCJKSearch: Chinese, Japanese and Korean text is found by any part
// of it, in words, phrases and fields, with highlights on the characters.
func TestCJKSearch(t *testing.T) {
	ix := cjkIndex(t, filepath.Join(t.TempDir(), "idx"))
	defer ix.Close()
	checkCJK(t, ix)
}

func checkCJK(t *testing.T, ix *Index) {
	t.Helper()
	ctx := context.Background()
	cases := []struct {
		q    string
		want []int
	}{
		{"登录", []int{0, 2, 8}},
		{"超时", []int{1, 3}},
		{"登录失败", []int{0, 8}},
		{"录失败", []int{0, 8}}, // not starting on a word
		{"据库连", []int{1, 3}},
		{"登", []int{0, 2, 8}},
		{"败", []int{0, 6, 8}},
		{"登失", nil},
		{"录登", nil},
		{"bob", []int{0, 2, 7}},
		{"用户bob登录", []int{2}},
		{`"用户 bob"`, []int{2}},
		{`"连接 超时"`, []int{1, 3}},
		{`"连接 数据"`, nil},
		{`"失败 请重试"`, []int{6}},
		{"接続", []int{4}},
		{"タイムアウト", []int{4}},
		{"サーバー", []int{4}},
		{"로그인", []int{5}},
		{"그인", []int{5}},
		{"실패 AND user:kim", []int{5}},
		{"msg:登录", []int{8}},
		{"msg:连接超时", []int{3}},
		{"msg:接超", []int{3}},
		{`msg:"数据库连接超时"`, []int{3}},
		{"msg:登录失败x", nil},
		{"user:李", []int{3}},
		{"登录 AND NOT bob", []int{8}},
		{"(超时 OR 로그인) AND -level:error", []int{1, 5}},
	}
	for _, c := range cases {
		// Only cjkLines (an index may hold other lines).
		res, err := ix.Search(ctx, pipeline.SearchRequest{Query: "(" + c.q + ") AND file_id:cjk", Limit: 100, ExactTotal: true})
		if err != nil {
			t.Errorf("%s: %v", c.q, err)
			continue
		}
		var got []int
		for _, h := range res.Hits {
			got = append(got, int(h.Offset/100))
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) || int(res.Total) != len(c.want) {
			t.Errorf("%s: lines %v (total %d), want %v", c.q, got, res.Total, c.want)
		}
	}
	// Highlights cover the characters found.
	for _, c := range []struct {
		q, want string
		line    int
	}{
		{"登录", "登录", 0},
		{"录失败", "录失败", 0},
		{`"连接 超时"`, "连接超时", 1},
		{"bob", "bob", 2},
		{"登录", "登录", 2},
		{"タイムアウト", "タイムアウト", 4},
	} {
		res, err := ix.Search(ctx, pipeline.SearchRequest{Query: c.q, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, h := range res.Hits {
			if h.FileID != "cjk" || h.Offset/100 != int64(c.line) {
				continue
			}
			found = true
			var marked []string
			for _, r := range h.Highlights {
				marked = append(marked, h.Line[r.Start:r.End])
			}
			if !slices.Contains(marked, c.want) {
				t.Errorf("%s in %q: highlights %q, want %q", c.q, h.Line, marked, c.want)
			}
		}
		if !found {
			t.Errorf("%s: line %d not found", c.q, c.line)
		}
	}
}

// TestCJKOldLayout: blocks of layout 3 (a CJK run was one term with what
// it was glued to) are read for a CJK query rather than narrowed by
// bigrams they do not have.
func TestCJKOldLayout(t *testing.T) {
	m, err := compile("登录失败 msg:超时 登")
	if err != nil {
		t.Fatal(err)
	}
	var hasCJKTerm func(q query.Query) bool
	hasCJKTerm = func(q query.Query) bool {
		switch q := q.(type) {
		case *query.TermQuery:
			return hasCJK(q.Term)
		case *query.PrefixQuery:
			return hasCJK(q.Prefix)
		case *query.ConjunctionQuery:
			return slices.ContainsFunc(q.Conjuncts, hasCJKTerm)
		case *query.DisjunctionQuery:
			return slices.ContainsFunc(q.Disjuncts, hasCJKTerm)
		case *query.BooleanQuery:
			return hasCJKTerm(q.Must) || hasCJKTerm(q.Should)
		}
		return false
	}
	for v := uint8(1); v <= 4; v++ {
		if got := hasCJKTerm(blockQuery(m.candidate(), v)); got != (v >= 4) {
			t.Errorf("layout %d: block query %s has CJK terms: %v", v, queryJSON(blockQuery(m.candidate(), v)), got)
		}
	}
	// A shard whose file says layout 3 is still searched right (its
	// blocks written in layout 4, whose body is layout 3's).
	dir := filepath.Join(t.TempDir(), "idx")
	ix := openWith(t, Config{Dir: dir, BlockLines: 2})
	ix.newLayout = 4
	indexCJK(t, ix, testNow)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "segments", "*", blockFileName))
	if len(paths) == 0 {
		t.Fatal("no block file")
	}
	for _, p := range paths {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(blockMagic3, 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	ix = openWith(t, Config{Dir: dir, BlockLines: 2})
	defer ix.Close()
	checkCJK(t, ix)
}

// TestCJKInLayout2Shard: CJK lines appended to a shard of layout 2 (the
// fixture testdata/index-layout2), whose Bleve documents hold a CJK run as
// one term, are found as in a new shard.
func TestCJKInLayout2Shard(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "idx")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "testdata", "index-layout2"))); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	ix := openWith(t, Config{Dir: dir, Retention: -1, BlockLines: 2, Now: func() time.Time { return day.Add(30 * time.Hour) }})
	defer ix.Close()
	indexCJK(t, ix, day.Add(time.Hour))
	b, err := os.ReadFile(filepath.Join(dir, "segments", "20261120", blockFileName))
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:8]) != string(blockMagic2) {
		t.Fatalf("the lines went to a shard of layout %q", b[:8])
	}
	checkCJK(t, ix)
}

// TestCJKAgainstBruteForce: random CJK text and random substrings of it
// (1 to 4 characters, any offset): the index finds exactly the lines that
// hold the substring.
func TestCJKAgainstBruteForce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ix := openWith(t, Config{Dir: filepath.Join(t.TempDir(), "idx"), BlockLines: 16})
	defer ix.Close()
	r := rand.New(rand.NewSource(5))
	alphabet := []rune("的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接该么步拉ひらがなカタカナ한국어사용자")
	var lines []string
	var rs []pipeline.Record
	for i := range 400 {
		n := 1 + r.Intn(12)
		var b strings.Builder
		for range n {
			b.WriteRune(alphabet[r.Intn(40)])
		}
		if i%3 == 0 {
			b.WriteString(" x" + fmt.Sprint(i%7) + " ")
			for range 1 + r.Intn(4) {
				b.WriteRune(alphabet[r.Intn(len(alphabet))])
			}
		}
		lines = append(lines, b.String())
		rs = append(rs, pipeline.Record{TS: testNow, Host: "h", Source: "/s", FileID: "f", Offset: int64(i * 100), Line: b.String()})
	}
	if err := ix.Index(ctx, rs); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		l := []rune(lines[r.Intn(len(lines))])
		a := r.Intn(len(l))
		k := 1 + r.Intn(4)
		e := a
		for e < len(l) && e-a < k && isCJK(l[e]) {
			e++
		}
		if e == a {
			continue
		}
		sub := string(l[a:e])
		if r.Intn(4) == 0 {
			sub = string(alphabet[r.Intn(40)]) + string(alphabet[r.Intn(40)]) // often absent
		}
		want := 0
		for _, x := range lines {
			if strings.Contains(x, sub) {
				want++
			}
		}
		res, err := ix.Search(ctx, pipeline.SearchRequest{Query: sub, Limit: 1, ExactTotal: true})
		if err != nil {
			t.Fatalf("%s: %v", sub, err)
		}
		if int(res.Total) != want {
			t.Errorf("%s: %d lines, %d hold it", sub, res.Total, want)
		}
	}
}
