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
	// Part is the Kafka partition the lines were read from
	// (pipeline.Record.Part); empty for lines that did not come through
	// Kafka. A query scoped with pipeline.WithParts sees only the blocks
	// of its partitions.
	Part string
}

// Log tokens.
//
// The text of a line is searched by its parts: maximal runs of ASCII
// letters, digits, '_' and characters of other scripts, lowercased (see
// lowerASCII). "GET /api/v1/users?id=42 HTTP/1.1" has the parts get,
// api, v1, users, id, 42, http, 1, 1. A query word with several parts
// ("192.168.1.10", "api/v1", "user-service") matches those parts in a row
// (a phrase of parts), so IPs, paths and ids are found whole.
//
// Chinese, Japanese and Korean text (Han, Hiragana, Katakana, Hangul; see
// isCJK) is written without spaces between words, so a run of such
// characters is a part of its own ("用户bob登录" has the parts 用户, bob,
// 登录), its punctuation (，。「」 and the like; isCJKPunct) separates
// parts, and a query's CJK run matches anywhere inside the line's CJK
// text, as if every character were a part of its own (Elasticsearch's
// standard analyzer): 登录 is found in 用户登录失败. The index keeps
// the overlapping bigrams of CJK runs (terms.go) to find candidate blocks.

// isPartByte reports whether c belongs to a part (a byte >= 0x80 may
// still begin a separator or a CJK run: see classAt).
func isPartByte(c byte) bool {
	return c >= 0x80 || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// Character classes of the text.
const (
	clSep  = iota // separates parts
	clWord        // belongs to a part
	clCJK         // belongs to a CJK run
)

// classAt returns the class of the character starting at s[i] and its
// length in bytes.
func classAt(s []byte, i int) (int, int) {
	c := s[i]
	if c < utf8.RuneSelf {
		if isPartByte(c) {
			return clWord, 1
		}
		return clSep, 1
	}
	r, n := utf8.DecodeRune(s[i:])
	return runeClass(r), n
}

// classAtS is classAt on a string.
func classAtS(s string, i int) (int, int) {
	c := s[i]
	if c < utf8.RuneSelf {
		if isPartByte(c) {
			return clWord, 1
		}
		return clSep, 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return runeClass(r), n
}

// classBefore returns the class of the character that ends at s[i].
func classBefore(s []byte, i int) int {
	c := s[i-1]
	if c < utf8.RuneSelf {
		if isPartByte(c) {
			return clWord
		}
		return clSep
	}
	r, _ := utf8.DecodeLastRune(s[:i])
	return runeClass(r)
}

func runeClass(r rune) int {
	switch {
	case r < 0x1100:
		return clWord
	case isCJK(r):
		return clCJK
	case isCJKPunct(r):
		return clSep
	}
	return clWord
}

// isCJK reports whether r is a Han, Hiragana, Katakana or Hangul
// character (with the Japanese prolonged sound mark and the iteration
// marks).
func isCJK(r rune) bool {
	switch {
	case r < 0x1100:
		return false
	case r <= 0x11FF: // Hangul Jamo
		return true
	case r < 0x2E80:
		return false
	case r <= 0x2FDF: // CJK radicals, Kangxi radicals
		return true
	case r < 0x3005:
		return false
	case r <= 0x3007, r >= 0x3021 && r <= 0x3029, r >= 0x3031 && r <= 0x3035, r >= 0x3038 && r <= 0x303C: // 々〆〇, numerals, marks
		return true
	case r >= 0x3041 && r <= 0x30FF && r != 0x30FB: // Hiragana, Katakana (not the middle dot)
		return true
	case r >= 0x3105 && r <= 0x318F, r >= 0x31A0 && r <= 0x31BF, r >= 0x31F0 && r <= 0x31FF: // Bopomofo, Hangul compatibility Jamo, Katakana extensions
		return true
	case r >= 0x3400 && r <= 0x4DBF, r >= 0x4E00 && r <= 0x9FFF: // CJK ideographs
		return true
	case r >= 0xA960 && r <= 0xA97F, r >= 0xAC00 && r <= 0xD7FF: // Hangul
		return true
	case r >= 0xF900 && r <= 0xFAFF: // compatibility ideographs
		return true
	case r >= 0xFF66 && r <= 0xFFDC: // half-width Katakana and Hangul
		return true
	case r >= 0x20000 && r <= 0x323AF: // ideograph extensions
		return true
	}
	return false
}

// isCJKPunct reports whether r is CJK or full-width punctuation, which
// separates parts as ASCII punctuation does.
func isCJKPunct(r rune) bool {
	switch {
	case r >= 0x3000 && r <= 0x303F, r == 0x30FB: // ideographic space, 、。「」… (isCJK takes 々〆〇 first)
		return true
	case r >= 0xFE10 && r <= 0xFE1F, r >= 0xFE30 && r <= 0xFE4F: // vertical and compatibility forms
		return true
	case r >= 0xFF01 && r <= 0xFF0F, r >= 0xFF1A && r <= 0xFF20, r >= 0xFF3B && r <= 0xFF40, r >= 0xFF5B && r <= 0xFF65: // full-width punctuation
		return true
	}
	return false
}

// hasCJK reports whether s holds a CJK character.
func hasCJK(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0xE1 { // every CJK character is 3 or 4 bytes, lead >= 0xE1
			if c, _ := classAtS(s, i); c == clCJK {
				return true
			}
		}
	}
	return false
}

// allCJK reports whether s is one CJK run (and not empty).
func allCJK(s string) bool {
	for i := 0; i < len(s); {
		c, n := classAtS(s, i)
		if c != clCJK {
			return false
		}
		i += n
	}
	return s != ""
}

// partEnd returns the end of the part (or CJK run) starting at s.
func partEnd(low []byte, s int) int {
	if s >= len(low) {
		return s
	}
	// ASCII first: most parts are all ASCII.
	i := s
	for i < len(low) && low[i] < utf8.RuneSelf && isPartByte(low[i]) {
		i++
	}
	if i == len(low) || low[i] < utf8.RuneSelf {
		return i
	}
	return partEndSlow(low, s)
}

func partEndSlow(low []byte, s int) int {
	cls, n := classAt(low, s)
	if cls == clSep {
		return s
	}
	s += n
	for s < len(low) {
		c := low[s]
		if c < utf8.RuneSelf && cls == clWord {
			if !isPartByte(c) {
				break
			}
			s++
			continue
		}
		k, n := classAt(low, s)
		if k != cls {
			break
		}
		s += n
	}
	return s
}

// sepEnd returns the start of the first part (or CJK run) at or after i
// in low, len(low) when there is none.
func sepEnd(low []byte, i int) int {
	for i < len(low) {
		if c := low[i]; c < utf8.RuneSelf {
			// ASCII first: most separators are.
			if isPartByte(c) {
				return i
			}
			i++
			continue
		}
		c, n := classAt(low, i)
		if c != clSep {
			return i
		}
		i += n
	}
	return i
}

// wordBefore reports whether a part (not a CJK run) goes on right
// before s.
func wordBefore(low []byte, s int) bool {
	if s == 0 {
		return false
	}
	if c := low[s-1]; c < utf8.RuneSelf {
		return isPartByte(c)
	}
	return classBefore(low, s) == clWord
}

// cjkGrams calls fn with the overlapping bigrams of the CJK run p and its
// last character alone (so a run of one character gives that character):
// the terms the index keeps of the run.
func cjkGrams(p string, fn func(g string)) {
	prev := -1
	for i := 0; i < len(p); {
		_, n := utf8.DecodeRuneInString(p[i:])
		if prev >= 0 {
			fn(p[prev : i+n])
		}
		prev = i
		i += n
	}
	if prev >= 0 {
		fn(p[prev:])
	}
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

// eachPart calls fn with the start and end of every part of s (a CJK
// run is one part).
func eachPart(s string, fn func(start, end int)) {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf && !isPartByte(c) {
			i++
			continue
		}
		cls, n := classAtS(s, i)
		if cls == clSep {
			i += n
			continue
		}
		j := i + n
		for j < len(s) {
			c := s[j]
			if c < utf8.RuneSelf && cls == clWord {
				if !isPartByte(c) {
					break
				}
				j++
				continue
			}
			k, n := classAtS(s, j)
			if k != cls {
				break
			}
			j += n
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
