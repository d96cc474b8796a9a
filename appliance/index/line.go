package index

import (
	"unicode"
	"unicode/utf8"
)

// Lines as the block store keeps them, and the log-token rules the index
// and the exact per-line check share.

// storedLine is one indexed line: what its block keeps of it. The fields
// every line of a block shares (host, source, source name, file identity)
// are in its blockInfo.
type storedLine struct {
	TS       int64 // event time, Unix ns (from the line, else the read time)
	Ingested int64 // read time, Unix ns
	Offset   int64 // byte offset in its file
	End      int64 // offset after the line (pipeline.Record.End); not stored per line, see block.cover
	Level    string
	Flags    []string
	Fields   []kv // fields.<K> keyword values (a name may repeat: arrays)
	Nums     []kn // num.<K> numbers
	Line     string
	// low, when set, is Line lowercased (lowerBytes), made for a whole
	// block at once by the reader; the matcher makes it otherwise.
	low []byte
}

type kv struct{ K, V string }

type kn struct {
	K string
	V float64
}

// blockInfo is what every line of a block shares.
type blockInfo struct {
	Host, Source, SourceName, FileID string
}

// Log tokens.
//
// The text of a line is searched by its parts: maximal runs of ASCII
// letters, digits, '_' and bytes >= 0x80 (UTF-8 of other scripts),
// lowercased (see lowerASCII). "GET /api/v1/users?id=42 HTTP/1.1" has the parts get,
// api, v1, users, id, 42, http, 1, 1. A query word with several parts
// ("192.168.1.10", "api/v1", "user-service") matches those parts in a row
// (a phrase of parts), so IPs, paths and ids are found whole.

// isPartByte reports whether c belongs to a part.
func isPartByte(c byte) bool {
	return c >= 0x80 || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// lowerASCII returns s lowercased with the same length: ASCII letters,
// and other letters whose lowercase takes as many bytes in UTF-8 (Ü → ü,
// Σ → σ; the few that would change length, such as the Kelvin sign, stay
// as written), so that byte offsets into s hold for the result.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= 0x80 {
			b := []byte(s)
			lowerBytes(b)
			return string(b)
		}
	}
	return s
}

// lowerBytes lowercases b in place as lowerASCII does.
func lowerBytes(b []byte) {
	high := false
	for j, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[j] = c + 'a' - 'A'
		} else if c >= 0x80 {
			high = true
		}
	}
	if high {
		foldNonASCII(b)
	}
}

// foldNonASCII lowercases in place the non-ASCII letters of b whose
// lowercase has the same UTF-8 length.
func foldNonASCII(b []byte) {
	for i := 0; i < len(b); {
		if b[i] < 0x80 {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if lr := unicode.ToLower(r); lr != r && utf8.RuneLen(lr) == n {
			utf8.EncodeRune(b[i:], lr)
		}
		i += n
	}
}

// eachPart calls fn with the start and end of every part of s.
func eachPart(s string, fn func(start, end int)) {
	for i := 0; i < len(s); {
		if !isPartByte(s[i]) {
			i++
			continue
		}
		j := i + 1
		for j < len(s) && isPartByte(s[j]) {
			j++
		}
		fn(i, j)
		i = j
	}
}

// parts returns the lowercased parts of s.
func parts(s string) []string {
	var out []string
	eachPart(s, func(a, b int) { out = append(out, lowerASCII(s[a:b])) })
	return out
}
