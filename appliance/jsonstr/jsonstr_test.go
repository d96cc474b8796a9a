package jsonstr

import (
	"encoding/json"
	"testing"
)

// Append writes what encoding/json writes, for every string.
func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "plain ascii words", `"quoted" \back\slash`, "tab\tnl\ncr\r\b\f\x00\x1f", "<a href='x'>&amp;</a>",
		"café 😀", "bad \xff\xfe utf8", "\u2028\u2029", "12345678<2345678", "exactly8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := Append(nil, s); string(got) != string(want) {
			t.Fatalf("Append(%q) = %s, encoding/json writes %s", s, got, want)
		}
	})
}
