package syslog

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

// chunked reads data in pieces of the given sizes (cycled; 0 means 1).
type chunked struct {
	data  []byte
	sizes []byte
	i     int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if len(c.sizes) > 0 {
		n = min(n, max(1, int(c.sizes[c.i%len(c.sizes)])))
		c.i++
	}
	n = copy(p, c.data[:min(n, len(c.data))])
	c.data = c.data[n:]
	return n, nil
}

// framed is everything a framer made of one stream.
type framed struct {
	frames []string
	drops  int
	broken bool
	rest   string
	cut    bool
}

func frameAll(data []byte, maxFrame int, sizes []byte) framed {
	var out framed
	f := newFramer(maxFrame)
	rd := &chunked{data: data, sizes: sizes}
	for {
		for {
			fr, kind, why, err := f.next()
			if err != nil {
				out.broken = true
				return out
			}
			if kind == needMore {
				break
			}
			if kind == dropped {
				if why == "" {
					panic("a drop without a reason")
				}
				out.drops++
				continue
			}
			out.frames = append(out.frames, string(fr))
		}
		if _, err := f.fill(rd); err == io.EOF {
			break
		}
	}
	r, cut := f.rest()
	out.rest, out.cut = string(r), cut
	return out
}

func TestFramer(t *testing.T) {
	long := strings.Repeat("x", 30)
	cases := []struct {
		name string
		in   string
		want framed
	}{
		{"octet", "5 hello3 abc", framed{frames: []string{"hello", "abc"}}},
		{"octet with LF trailers", "5 hello\n3 abc\n", framed{frames: []string{"hello", "abc"}}},
		{"lf", "<13>a\n<13>b\r\n\n\n", framed{frames: []string{"<13>a", "<13>b"}}},
		{"mixed", "5 hello<13>x y\n2 ab", framed{frames: []string{"hello", "<13>x y", "ab"}}},
		{"octet frame holding LF", "6 a\nb\r\nc<1>z\n", framed{frames: []string{"a\nb\r\nc", "<1>z"}}},
		{"digits without space are a line", "2026-01-01T00:00 h x\n", framed{frames: []string{"2026-01-01T00:00 h x"}}},
		{"NUL and CR between frames", "\x00\r\n3 abc\x00\x00<1>q\n", framed{frames: []string{"abc", "<1>q"}}},
		{"exactly the limit", "20 " + strings.Repeat("y", 20) + strings.Repeat("z", 20) + "\r\n", framed{frames: []string{strings.Repeat("y", 20), strings.Repeat("z", 20)}}},
		{"octet over the limit", "30 " + long + "3 abc", framed{frames: []string{"abc"}, drops: 1}},
		{"line over the limit", long + "\n<1>ok\n", framed{frames: []string{"<1>ok"}, drops: 1}},
		{"line one over the limit", strings.Repeat("w", 21) + "\n<1>ok\n", framed{frames: []string{"<1>ok"}, drops: 1}},
		{"long line over the buffer", strings.Repeat(long, 10) + "\n<1>ok\n", framed{frames: []string{"<1>ok"}, drops: 1}},
		{"zero length", "0 3 abc", framed{frames: []string{"abc"}, drops: 1}},
		{"absurd length", "3 abc99999999 xyz", framed{frames: []string{"abc"}, broken: true}},
		{"ten digits", "3 abc1234567890 xyz", framed{frames: []string{"abc"}, broken: true}},
		{"cut octet frame", "3 abc10 abc", framed{frames: []string{"abc"}, cut: true}},
		{"cut length", "3 abc12", framed{frames: []string{"abc"}, cut: true}},
		{"line without LF at the end", "3 abc<13>tail", framed{frames: []string{"abc"}, rest: "<13>tail"}},
		{"dropped frame cut at the end", "25 " + long[:10], framed{drops: 1}},
	}
	for _, c := range cases {
		for _, sizes := range [][]byte{nil, {1}, {3, 7}} {
			t.Run(fmt.Sprintf("%s/%v", c.name, sizes), func(t *testing.T) {
				got := frameAll([]byte(c.in), 20, sizes)
				if !slices.Equal(got.frames, c.want.frames) || got.drops != c.want.drops || got.broken != c.want.broken || got.rest != c.want.rest || got.cut != c.want.cut {
					t.Fatalf("got %+v, want %+v", got, c.want)
				}
			})
		}
	}
}

// FuzzFrames feeds arbitrary streams, read in arbitrary pieces, to the
// framer: it never panics or grows, no frame exceeds the limit, the
// pieces never change what it finds, and messages written with octet
// counting or LF framing come back as written.
func FuzzFrames(f *testing.F) {
	f.Add([]byte("5 hello3 abc"), []byte{1}, uint8(10))
	f.Add([]byte("<13>a\n<13>b\r\n"), []byte{2, 5}, uint8(4))
	f.Add([]byte("30 "+strings.Repeat("x", 30)+"<1>q\n"), []byte{}, uint8(0))
	f.Add([]byte("99999999 x"), []byte{3}, uint8(50))
	f.Add([]byte("12\n\x00\r0 2026-01\xff<1>a\xffb"), []byte{9, 1}, uint8(7))
	f.Fuzz(func(t *testing.T, data, sizes []byte, maxSel uint8) {
		maxFrame := 4 + int(maxSel)%60
		whole := frameAll(data, maxFrame, nil)
		pieces := frameAll(data, maxFrame, sizes)
		if !slices.Equal(whole.frames, pieces.frames) || whole.drops != pieces.drops || whole.broken != pieces.broken || whole.rest != pieces.rest || whole.cut != pieces.cut {
			t.Fatalf("read whole: %+v\nin pieces %v: %+v", whole, sizes, pieces)
		}
		for _, fr := range whole.frames {
			if len(fr) > maxFrame || len(fr) == 0 {
				t.Fatalf("frame of %d bytes (limit %d): %q", len(fr), maxFrame, fr)
			}
		}
		// Round trips: the 0xff-separated pieces of data as messages.
		var msgs []string
		for m := range bytes.SplitSeq(data, []byte{0xff}) {
			if len(m) > 0 && len(m) <= maxFrame {
				msgs = append(msgs, string(m))
			}
		}
		var octet bytes.Buffer
		for _, m := range msgs {
			fmt.Fprintf(&octet, "%d %s", len(m), m)
		}
		if got := frameAll(octet.Bytes(), maxFrame, sizes); !slices.Equal(got.frames, msgs) || got.drops != 0 || got.broken || got.rest != "" || got.cut {
			t.Fatalf("octet counting: sent %q, got %+v", msgs, got)
		}
		var lf bytes.Buffer
		var lines []string
		for _, m := range msgs {
			m = "<" + strings.NewReplacer("\n", "", "\r", "").Replace(m)
			if len(m) <= maxFrame {
				lines = append(lines, m)
				lf.WriteString(m + "\n")
			}
		}
		if got := frameAll(lf.Bytes(), maxFrame, sizes); !slices.Equal(got.frames, lines) || got.drops != 0 || got.broken || got.rest != "" || got.cut {
			t.Fatalf("LF framing: sent %q, got %+v", lines, got)
		}
	})
}

func TestReadHeader(t *testing.T) {
	cases := []struct {
		in        string
		host, app string
		fine      bool
	}{
		{`<156>1 2026-12-02T02:39:33.442274+00:00 vm myapp 42 MID [x@1 a="b"] hi`, "vm", "myapp", true},
		{`<156>1 2026-12-02T02:39:33Z vm myapp 42 MID - hi`, "vm", "myapp", false},
		{`<156>1 - - - - - - hi`, "", "", false},
		{`<156>Dec  2 02:49:57 vm myapp[42]: line one`, "vm", "myapp", false},
		{`<11>Dec 12 02:49:57 host.example.org cron: x`, "host.example.org", "cron", false},
		{`<11>2026-12-02T02:49:43.120192+00:00 vm sshd[1]: x`, "vm", "sshd", true},
		{`<11>Dec  2 02:49:57 sshd[1]: no host`, "", "", false},
		{`<11>Dec  2 02:49:57 vm no tag here`, "vm", "", false},
		{`<13>just a message`, "", "", false},
		{`no pri at all`, "", "", false},
		{`<1`, "", "", false},
	}
	for _, c := range cases {
		h := readHeader(c.in)
		if h.host != c.host || h.app != c.app || !h.ts.IsZero() != c.fine {
			t.Errorf("%q: got %+v, want host %q app %q fine time %v", c.in, h, c.host, c.app, c.fine)
		}
	}
}

func TestMessage(t *testing.T) {
	l := message([]byte("<13>1 - - app - - - a\x00b\xffc\r\n\x00"), "10.0.0.7", nil)
	r := l.Record
	if r.Line != "<13>1 - - app - - - ab\uFFFDc" || r.Host != "10.0.0.7" || r.Fields["peer"] != "10.0.0.7" || r.Parser != "syslog" || r.Source != Name || !r.TS.IsZero() {
		t.Fatalf("record %+v", r)
	}
	if !slices.Equal(r.Flags, []string{"nul_removed", "invalid_utf8"}) || l.Stream != "10.0.0.7 10.0.0.7 app" {
		t.Fatalf("flags %v stream %q", r.Flags, l.Stream)
	}
}
