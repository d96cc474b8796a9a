package patterns

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMask(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"   \t ", ""},
		{"hello  world\t!", "hello world !"},
		{"user alice logged in from 10.1.2.3", "user alice logged in from <*>"},
		{"connect to 192.168.0.1:5432 failed", "connect to <*> failed"},
		{"net 10.0.0.0/8 allowed", "net <*> allowed"},
		{"version 1.2.3.4.5", "version <*>"},
		{"listening on [::1]:8080 and fe80::1ff:fe23:4567:890a", "listening on [<*>]:<*> and <*>"},
		{"addr 2001:0db8:85a3:0000:0000:8a2e:0370:7334 up", "addr <*> up"},
		{"std::vector a::b", "std::vector a::b"},
		{"mac 00:1a:2b:3c:4d:5e seen, also 00-1A-2B-3C-4D-5E", "mac <*> seen, also <*>"},
		{"req 123e4567-e89b-12d3-a456-426614174000 done", "req <*> done"},
		{"at 2024-01-02T03:04:05.678Z and 2024-01-02 03:04:05,123", "at <*> and <*> <*>"},
		{"ts=2024-01-02T03:04:05+02:00 x", "ts=<*> x"},
		{"[10/Oct/2000:13:55:36 -0700] GET", "[<*> <*>] GET"},
		{"Jan  2 15:04:05 host sshd[1234]: Accepted", "<*> <*> <*> host sshd[<*>]: Accepted"},
		{"Mon Jan 2 15:04:05 MST 2006", "<*> <*> <*> <*> MST <*>"},
		{"Mon is a day, May be", "Mon is a day, May be"},
		{"mail to john.doe+x@example.co.uk now", "mail to <*> now"},
		{"not@mail and a@b.c", "not@mail and a@b.c"},
		{"ptr 0x7ffe12 hash deadbeefcafe1234 sha 9f86d081884c7d65", "ptr <*> hash <*> sha <*>"},
		{"took 200ms and 1.5s for 10GB", "took <*>ms and <*>s for <*>GB"},
		{"count=-5 offset=+3 x-5", "count=<*> offset=<*> x-<*>"},
		{"user=42 name=alice id=req7f3a9 node1 sha256 user1234", "user=<*> name=alice id=<*> node1 sha256 <*>"},
		{"path /var/log/app-3.log and /users/12345/orders", "path /var/log/app-<*>.log and /users/<*>/orders"},
		{`msg="hello world" user='bob smith' don't`, "msg=<*> user=<*> don't"},
		{`say "unterminated and 'x`, `say "unterminated and 'x`},
		{`{"ts":"2024-01-01T00:00:00Z","level":"info","n":12,"ok":true}`, `{"ts":<*>,"level":<*>,"n":<*>,"ok":true}`},
		{`{"a b": 1}`, `{<*>: <*>}`},
		{`"GET /index.html HTTP/1.1" 200 5123 "-" "Mozilla/5.0 (X11)"`, "<*> <*> <*> <*> <*>"},
		{"pod web-5d8f9c-xk2lp ready", "pod web-<*>-xk2lp ready"},
		{"HTTP/1.1 ok", "HTTP/<*> ok"},
		{"12:34 and 1:02:03.5", "<*> and <*>"},
		{"日本語 のログ 123", "日本語 のログ <*>"},
		{"a <*> b", "a <*> b"},
	}
	for _, c := range cases {
		if got := string(Mask(nil, c.in)); got != c.want {
			t.Errorf("Mask(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestMaskBounds(t *testing.T) {
	long := strings.Repeat("w ", MaxTokens+10)
	got := string(Mask(nil, long))
	words := strings.Split(got, " ")
	if len(words) != MaxTokens || words[MaxTokens-1] != RestToken {
		t.Fatalf("%d words, last %q; want %d, last %q", len(words), words[len(words)-1], MaxTokens, RestToken)
	}
	exact := strings.TrimSpace(strings.Repeat("w ", MaxTokens))
	if got := string(Mask(nil, exact)); got != exact {
		t.Fatalf("a line of exactly MaxTokens words changed: %q", got)
	}
	big := "x " + strings.Repeat("a", MaxTokenBytes+1) + " y"
	if got := string(Mask(nil, big)); got != "x <*> y" {
		t.Fatalf("long word: %q", got)
	}
}

// checkMasked checks the invariants of a masked line: words separated by
// single spaces, none empty, at most MaxTokens; a word without "<*" is a
// word of the line as written; masking is idempotent on the words count.
func checkMasked(t *testing.T, line string, key []byte) {
	t.Helper()
	if len(key) == 0 {
		if strings.TrimSpace(strings.Map(func(r rune) rune {
			if r < 0x80 && isBlank(byte(r)) {
				return ' '
			}
			return r
		}, line)) != "" {
			t.Fatalf("%q masked to nothing", line)
		}
		return
	}
	ws := strings.Split(string(key), " ")
	if len(ws) > MaxTokens {
		t.Fatalf("%q: %d words", line, len(ws))
	}
	orig := map[string]bool{}
	for _, w := range splitWords(line) {
		orig[w] = true
	}
	for _, w := range ws {
		if w == "" {
			t.Fatalf("%q masked to %q: an empty word", line, key)
		}
		if !strings.Contains(w, "<*") && !orig[w] {
			t.Fatalf("%q masked to %q: word %q is not a word of the line", line, key, w)
		}
	}
	if utf8.ValidString(line) && !utf8.Valid(key) {
		t.Fatalf("%q masked to invalid UTF-8 %q", line, key)
	}
	// A template made of the key fits the line.
	tp := ParseTemplate(string(key))
	if !tp.Fits(line) {
		t.Fatalf("%q does not fit its own masked form %q", line, key)
	}
}

func FuzzMask(f *testing.F) {
	for _, s := range []string{
		"user alice logged in from 10.1.2.3:22",
		`{"ts":"2024-01-01T00:00:00Z","msg":"a b","n":-1.5e3}`,
		"Jan  2 15:04:05 host app[12]: x=1 y='a b' z=\"c\\\"d\"",
		"fe80::1 ::1 [::]:80 a::b 00:11:22:33:44:55 123e4567-e89b-12d3-a456-426614174000",
		"mail a.b@c.de 0xff deadbeef00 200ms 1.2.3 /p/1/q",
		"\"'\"'=\"=\"", "\xff\xfe 日本 \t\v", "--5 +-3 =-x (-1) [+2]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		key := Mask(nil, line)
		checkMasked(t, line, key)
		if again := Mask([]byte("prefix"), line); string(again[len("prefix"):]) != string(key) {
			t.Fatalf("Mask is not deterministic or ignores dst: %q vs %q", again, key)
		}
	})
}
