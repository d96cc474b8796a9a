package tailer

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/logbox/logbox/appliance/pipeline"
)

// splitAll feeds data in chunks of the given sizes and returns the lines.
func splitAll(max int, data []byte, chunk int) []rawLine {
	sp := newSplitter(max, 0)
	var out []rawLine
	emit := func(l rawLine) {
		l.text = append([]byte(nil), l.text...)
		out = append(out, l)
	}
	for len(data) > 0 {
		n := min(chunk, len(data))
		sp.feed(data[:n], emit)
		data = data[n:]
	}
	return out
}

func TestSplitter(t *testing.T) {
	data := []byte("one\r\ntwo\n\nthree is long\nfour")
	for _, chunk := range []int{1, 2, 3, 7, 1000} {
		got := splitAll(8, data, chunk)
		want := []rawLine{
			{text: []byte("one\r"), start: 0, end: 5},
			{text: []byte("two"), start: 5, end: 9},
			{text: []byte(""), start: 9, end: 10},
			{text: []byte("three is"), start: 10, end: 24, truncated: true},
		}
		if len(got) != len(want) {
			t.Fatalf("chunk %d: %d lines, want %d: %+v", chunk, len(got), len(want), got)
		}
		for i := range want {
			g, w := got[i], want[i]
			if !bytes.Equal(g.text, w.text) || g.start != w.start || g.end != w.end || g.truncated != w.truncated {
				t.Errorf("chunk %d line %d = %+v, want %+v", chunk, i, g, w)
			}
		}
	}
}

func TestSanitize(t *testing.T) {
	cases := []struct {
		in    rawLine
		want  string
		flags []string
	}{
		{rawLine{text: []byte("plain")}, "plain", nil},
		{rawLine{text: []byte("crlf\r")}, "crlf", nil},
		{rawLine{text: []byte("lone\rcr")}, "lone\rcr", nil},
		{rawLine{text: []byte("nul\x00byte\x00")}, "nulbyte", []string{pipeline.FlagNUL}},
		{rawLine{text: []byte("bad\xffutf8")}, "bad\uFFFDutf8", []string{pipeline.FlagInvalidUTF8}},
		// Truncation inside a multi-byte rune drops the broken rune only.
		{rawLine{text: []byte("é\xc3"), truncated: true}, "é", []string{pipeline.FlagTruncated}},
		{rawLine{text: []byte("part"), partial: true}, "part", []string{pipeline.FlagPartial}},
	}
	for _, c := range cases {
		got, flags := sanitize(c.in)
		if got != c.want || strings.Join(flags, ",") != strings.Join(c.flags, ",") {
			t.Errorf("sanitize(%q) = %q %v, want %q %v", c.in.text, got, flags, c.want, c.flags)
		}
	}
}

// FuzzSplitter checks, for any input and chunking, that lines cover the
// input without gaps or overlaps, that each line is the input's bytes (cut
// at max), and that sanitized text is valid UTF-8 without NUL.
func FuzzSplitter(f *testing.F) {
	f.Add([]byte("a\nbb\r\nccc\n"), uint8(3), uint8(2))
	f.Add([]byte("\xff\x00\n\n\r\rx"), uint8(1), uint8(1))
	f.Add([]byte(strings.Repeat("long line ", 50)+"\nshort\n"), uint8(16), uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, max8, chunk8 uint8) {
		max, chunk := int(max8)+1, int(chunk8)+1
		lines := splitAll(max, data, chunk)
		var next int64
		for _, l := range lines {
			if l.start != next || l.end <= l.start || l.end > int64(len(data)) {
				t.Fatalf("line range [%d,%d) after %d", l.start, l.end, next)
			}
			raw := data[l.start : l.end-1]
			if data[l.end-1] != '\n' || bytes.IndexByte(raw, '\n') >= 0 {
				t.Fatalf("line [%d,%d) not ended by its only newline", l.start, l.end)
			}
			want := raw
			if len(want) > max {
				want = want[:max]
			}
			if !bytes.Equal(l.text, want) || l.truncated != (len(raw) > max) {
				t.Fatalf("line text %q (trunc %v), want %q", l.text, l.truncated, want)
			}
			s, _ := sanitize(l)
			if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
				t.Fatalf("sanitized %q is not clean", s)
			}
			next = l.end
		}
		if rest := data[next:]; bytes.IndexByte(rest, '\n') >= 0 {
			t.Fatalf("unsplit newline in the rest %q", rest)
		}
	})
}

func joinAll(t *testing.T, m *pipeline.Multiline, maxBytes int, lines []string) []event {
	t.Helper()
	j, err := newJoiner(m, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	var out []event
	var off int64
	for _, l := range lines {
		end := off + int64(len(l)) + 1
		j.push(l, off, end, nil, func(e event) { out = append(out, e) })
		off = end
	}
	j.flush(func(e event) { out = append(out, e) })
	return out
}

func TestJoiner(t *testing.T) {
	trace := []string{
		"2026-11-25 ERROR boom",
		"java.lang.IllegalStateException: x",
		"\tat com.example.A.run(A.java:10)",
		"\tat com.example.B.main(B.java:5)",
		"2026-11-25 INFO next",
	}
	// Start mode: a date starts an event.
	got := joinAll(t, &pipeline.Multiline{Pattern: `^\d{4}-\d{2}-\d{2}`, Match: pipeline.MultilineStart}, 1<<20, trace)
	if len(got) != 2 || got[0].text != strings.Join(trace[:4], "\n") || got[1].text != trace[4] {
		t.Fatalf("start mode: %+v", got)
	}
	if got[0].start != 0 || got[0].end != got[1].start {
		t.Fatalf("start mode ranges: %+v", got)
	}
	// Continuation mode: indented "at" lines continue.
	got = joinAll(t, &pipeline.Multiline{Pattern: `^\s+at `}, 1<<20, trace)
	if len(got) != 3 || got[1].text != strings.Join(trace[1:4], "\n") {
		t.Fatalf("continuation mode: %+v", got)
	}
	// Max lines splits, and says so; nothing is dropped.
	got = joinAll(t, &pipeline.Multiline{Pattern: `^\s+at `, MaxLines: 2}, 1<<20, trace)
	if len(got) != 4 || got[1].text != strings.Join(trace[1:3], "\n") || got[2].text != trace[3] ||
		strings.Join(got[1].flags, ",") != pipeline.FlagMultiSplit {
		t.Fatalf("max lines: %+v", got)
	}
	// Max bytes truncates the event.
	got = joinAll(t, &pipeline.Multiline{Pattern: `^\s+at `}, 40, trace)
	if len(got[1].text) > 40 || strings.Join(got[1].flags, ",") != pipeline.FlagTruncated {
		t.Fatalf("max bytes: %q %v", got[1].text, got[1].flags)
	}
}

// FuzzJoiner checks that events cover the lines in order without gaps,
// for any lines and pattern choice.
func FuzzJoiner(f *testing.F) {
	f.Add("a\n at b\n at c\nd", true, uint8(3), uint8(50))
	f.Add("x\n\n\n", false, uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, text string, start bool, maxLines, maxBytes uint8) {
		m := &pipeline.Multiline{Pattern: `^\s`, MaxLines: int(maxLines) + 1}
		if start {
			m.Match = pipeline.MultilineStart
		}
		lines := strings.Split(strings.ToValidUTF8(text, ""), "\n")
		events := joinAll(t, m, int(maxBytes)+1, lines)
		var next int64
		total := 0
		for _, e := range events {
			if e.start != next || e.end <= e.start {
				t.Fatalf("event [%d,%d) after %d", e.start, e.end, next)
			}
			if len(e.text) > int(maxBytes)+1 || !utf8.ValidString(e.text) {
				t.Fatalf("event text %q too long or invalid", e.text)
			}
			next = e.end
			total++
		}
		if len(lines) > 0 && total == 0 {
			t.Fatal("lines produced no event")
		}
	})
}

// TestLinesAcrossReads: a file many read buffers long, of lines of every
// length (some over the max line size, some to be cleaned), arrives line
// for line: the text a record holds is not a slice of a buffer a later
// read or line overwrites.
func TestLinesAcrossReads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.log")
	rng := rand.New(rand.NewPCG(5, 6))
	const maxLine = 20000
	type want struct {
		line string
		off  int64
	}
	var wants []want
	var file strings.Builder
	for file.Len() < 6*readBufSize {
		n := rng.IntN(3000)
		if rng.IntN(100) == 0 {
			n = maxLine + rng.IntN(2*readBufSize)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		line := string(b)
		raw := line
		switch rng.IntN(40) {
		case 0:
			raw = line + "\r"
		case 1:
			raw = line + "\x00"
		case 2:
			raw, line = line+"\xff", line+"\uFFFD"
		}
		if n > maxLine {
			line = line[:maxLine]
		}
		wants = append(wants, want{line, int64(file.Len())})
		file.WriteString(raw + "\n")
	}
	if err := os.WriteFile(path, []byte(file.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sink, cp := &memSink{}, newCP()
	_, stop := startManager(t, sink, cp, pipeline.Source{Name: "s", Paths: []string{path}, MaxLineBytes: maxLine})
	waitFor(t, "every line", func() bool { return len(sink.lines()) >= len(wants) })
	stop()
	got := sink.lines()
	if len(got) != len(wants) {
		t.Fatalf("%d records, want %d", len(got), len(wants))
	}
	for i, w := range wants {
		if got[i].Line != w.line || got[i].Offset != w.off {
			t.Fatalf("record %d at %d: line of %d bytes %.40q…, want %d bytes at %d %.40q…", i, got[i].Offset, len(got[i].Line), got[i].Line, len(w.line), w.off, w.line)
		}
	}
}
