package journald

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

// bin encodes one binary field of the export format.
func bin(name, v string) string {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(v)))
	return name + "\n" + string(n[:]) + v + "\n"
}

func readAll(t *testing.T, s string, maxMsg, maxField int) ([]entry, error) {
	t.Helper()
	x := newExportReader(strings.NewReader(s), maxMsg, maxField)
	var out []entry
	for {
		var e entry
		err := x.next(&e)
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
}

func TestExportFormat(t *testing.T) {
	big := strings.Repeat("b", 300<<10) // longer than the read buffer
	stream := "__CURSOR=s=aa;i=1;b=bb\n__REALTIME_TIMESTAMP=1700000000000001\n__MONOTONIC_TIMESTAMP=5\n_BOOT_ID=bb\n" +
		"MESSAGE=hello=world\n_HOSTNAME=h1\nTAG=a\nTAG=b\n\n" +
		"\n" + // a stray blank line between entries
		"__CURSOR=s=aa;i=2;b=bb\n__REALTIME_TIMESTAMP=1700000000000002\n__SEQNUM=2\n__SEQNUM_ID=aa\n" +
		bin("MESSAGE", "two\nlines\x00") + bin("BLOB", "\xff\x00z") + "\n" +
		"__CURSOR=s=aa;i=3\nMESSAGE=" + big + "\nLONG=" + big + "\n" + bin("LONGBIN", big) + "SHORT=ok\n\n" +
		"__CURSOR=s=aa;i=4\n" + bin("MESSAGE", big) + "\n"
	es, err := readAll(t, stream, 1000, 100)
	if !errors.Is(err, io.EOF) || len(es) != 4 {
		t.Fatalf("%d entries, err %v", len(es), err)
	}
	e := es[0]
	if e.cursor != "s=aa;i=1;b=bb" || e.realtime != 1700000000000001 || string(e.message) != "hello=world" ||
		e.fields["TAG"] != "a\nb" || e.fields["_HOSTNAME"] != "h1" || e.fields["_BOOT_ID"] != "bb" || e.truncated {
		t.Errorf("entry 0: %+v", e)
	}
	if _, ok := e.fields["__MONOTONIC_TIMESTAMP"]; ok {
		t.Error("an address field kept as a field")
	}
	e = es[1]
	if string(e.message) != "two\nlines\x00" || e.fields["BLOB"] != "\uFFFDz" || e.seqnum != 2 || e.seqnumID != "aa" {
		t.Errorf("entry 1: %+v", e)
	}
	e = es[2]
	if len(e.message) != 1000 || !e.truncated || e.fields["SHORT"] != "ok" || e.fields["LONG"] != "" || e.fields["LONGBIN"] != "" || !e.fieldsDropped {
		t.Errorf("entry 2: message %d bytes truncated %v, fields %d, dropped %v", len(e.message), e.truncated, len(e.fields), e.fieldsDropped)
	}
	if e = es[3]; len(e.message) != 1000 || !e.truncated || e.realtime != -1 {
		t.Errorf("entry 3: message %d bytes truncated %v", len(e.message), e.truncated)
	}

	// A stream cut anywhere inside an entry never yields that entry.
	one := "__CURSOR=s=aa;i=1\nMESSAGE=x\n" + bin("B", "yy") + "\n"
	for cut := 1; cut < len(one); cut++ {
		es, err := readAll(t, one[:cut], 1000, 100)
		if len(es) != 0 || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d: %d entries, %v", cut, len(es), err)
		}
	}
	// Not the export format.
	if _, err := readAll(t, "=x\n\n", 10, 10); !errors.Is(err, errMalformed) {
		t.Errorf("nameless field: %v", err)
	}
	if _, err := readAll(t, bin("B", "yy")[:len(bin("B", "yy"))-1]+"Z\n\n", 10, 10); !errors.Is(err, errMalformed) {
		t.Errorf("binary field without its newline: %v", err)
	}
}

func TestTrimPartialRune(t *testing.T) {
	for in, want := range map[string]string{
		"abc": "abc", "ab\xc3": "ab", "ab\xc3\xa9": "ab\xc3\xa9", "a\xe2\x82": "a", "a\xe2\x82\xac": "a\xe2\x82\xac",
		"a\xf0\x9f\x98": "a", "": "", "\xa9": "\xa9",
	} {
		if got := string(trimPartialRune([]byte(in))); got != want {
			t.Errorf("trimPartialRune(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzExport: any stream ends in an error without a panic, and every
// entry read respects the limits.
func FuzzExport(f *testing.F) {
	f.Add([]byte("__CURSOR=s=aa;i=1\nMESSAGE=x\n\n"))
	f.Add([]byte(bin("MESSAGE", "a\nb") + "T=1\nT=2\n\n"))
	f.Add([]byte("MESSAGE\n\xff\xff\xff\xff\xff\xff\xff\xffabc\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		x := newExportReader(bytes.NewReader(b), 64, 16)
		for range len(b) + 1 {
			var e entry
			if err := x.next(&e); err != nil {
				return
			}
			if len(e.message) > 64 {
				t.Fatalf("message of %d bytes", len(e.message))
			}
			for k, v := range e.fields {
				// Values over 16 bytes are dropped; a value kept may grow
				// by its U+FFFD replacements, and repeats join with "\n".
				for _, part := range strings.Split(v, "\n") {
					if len(part) > 3*16 {
						t.Fatalf("field %s of %d bytes", k, len(part))
					}
				}
			}
		}
		t.Fatal("more entries than bytes")
	})
}

func TestTailBuffer(t *testing.T) {
	var got []string
	tb := &tailBuffer{max: 8, lines: 2, line: func(l string) { got = append(got, l) }}
	for _, w := range []string{"Hint: you", " are not\n\nsecond\nthird\n", "0123456789"} {
		if _, err := tb.Write([]byte(w)); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 || got[0] != "Hint: you are not" || got[1] != "second" {
		t.Errorf("lines %q", got)
	}
	if tb.String() != "23456789" {
		t.Errorf("tail %q", tb.String())
	}
}
