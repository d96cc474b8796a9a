// Package jsonstr writes JSON strings fast: the Kafka events, the
// Elasticsearch bulk answers and OTLP bodies rendered as JSON all go
// through Append, so they escape alike.
package jsonstr

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// plain marks the ASCII bytes encoding/json writes as they are.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// Word-at-a-time masks for Append: lo has 0x01 in every byte, hi
// 0x80.
const (
	lo = 0x0101010101010101
	hi = 0x8080808080808080
)

// plainWord reports whether the 8 bytes of w (one per byte) are all bytes
// encoding/json writes as they are: none is below 0x20 or above 0x7f, none
// is '"', '&' (both are 0x26 with bit 2 set), '<', '>' (both 0x3e with
// bit 1 set) or '\\'. Each test is the exact "has a zero byte" trick.
func plainWord(w uint64) bool {
	a, b, c := (w|0x04*lo)^0x26*lo, (w|0x02*lo)^0x3e*lo, w^0x5c*lo
	return (w|(w-0x20*lo)|(a-lo)&^a|(b-lo)&^b|(c-lo)&^c)&hi == 0
}

// Append appends s to dst as a JSON string, byte for byte as
// encoding/json writes it: HTML characters escaped, invalid UTF-8 as
// U+FFFD, U+2028 and U+2029 escaped.
func Append(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	// Runs of plain ASCII, the common case, are skipped 8 bytes at a time;
	// a word that is not plain is done byte by byte (up to bytewise).
	bytewise := 0
	for i := 0; i < len(s); {
		if i >= bytewise {
			for i+8 <= len(s) {
				w := s[i : i+8]
				if !plainWord(uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
					uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56) {
					break
				}
				i += 8
			}
			bytewise = i + 8
			if i >= len(s) {
				break
			}
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
