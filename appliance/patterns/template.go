package patterns

import (
	"strings"
	"sync"
)

// A template is words separated by single spaces, each of them one of:
//
//	<*>       any one word of the masked line
//	KEY=<*>   any word of the masked line that starts with KEY= (KEY a
//	          letter or _ then letters, digits, _ . -)
//	other     exactly this word of the masked line
//
// A line fits a template when its masked form (Mask) has as many words
// and each of them fits the template's word in its place. A template's
// words that hold no "<*" appear as written in every line that fits it
// (masking changes a word only by putting <*> in it): the index looks for
// them first.

// Template is a parsed template.
type Template struct {
	text string
	toks []tmplTok
}

type tmplTok struct {
	s    string // the word; KEY= for tKey
	kind uint8
}

const (
	tLit uint8 = iota
	tAny
	tKey
)

// ParseTemplate parses a template; white space between words counts as
// one space.
func ParseTemplate(t string) Template {
	words := splitWords(t)
	tp := Template{text: strings.Join(words, " "), toks: make([]tmplTok, len(words))}
	for i, w := range words {
		tp.toks[i] = parseTok(w)
	}
	return tp
}

func parseTok(w string) tmplTok {
	switch {
	case w == Wildcard:
		return tmplTok{s: w, kind: tAny}
	case strings.HasSuffix(w, Wildcard):
		if k := keyPrefix(w); k == len(w)-len(Wildcard) {
			return tmplTok{s: w[:k], kind: tKey}
		}
	}
	return tmplTok{s: w, kind: tLit}
}

// String returns the template's text.
func (t *Template) String() string { return t.text }

// Len returns the number of words.
func (t *Template) Len() int { return len(t.toks) }

// FitsKey reports whether a masked line (Mask's output) fits t.
func (t *Template) FitsKey(key []byte) bool { return fitsKey(t, key) }

func fitsKey[K string | []byte](t *Template, key K) bool {
	if len(t.toks) == 0 {
		return len(key) == 0
	}
	i := 0
	for k := range t.toks {
		if i > len(key) {
			return false
		}
		j := i
		for j < len(key) && key[j] != ' ' {
			j++
		}
		tk := &t.toks[k]
		switch tk.kind {
		case tLit:
			if string(key[i:j]) != tk.s {
				return false
			}
		case tKey:
			if j-i < len(tk.s) || string(key[i:i+len(tk.s)]) != tk.s {
				return false
			}
		}
		i = j + 1
	}
	return i == len(key)+1
}

// maskBufs recycles the buffers Fits masks lines into.
var maskBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Fits reports whether line fits t. It is safe for concurrent use.
func (t *Template) Fits(line string) bool {
	bp := maskBufs.Get().(*[]byte)
	b := Mask((*bp)[:0], line)
	ok := t.FitsKey(b)
	if cap(b) <= 64<<10 {
		*bp = b
		maskBufs.Put(bp)
	}
	return ok
}

// Words returns the words of template t that hold no "<*": every line
// that fits t holds each of them as a whole word, as written.
func Words(t string) []string {
	var out []string
	for _, w := range splitWords(t) {
		if !strings.Contains(w, "<*") {
			out = append(out, w)
		}
	}
	return out
}

// keyPrefix returns the length of the KEY= that word starts with, or 0.
func keyPrefix(w string) int {
	if len(w) == 0 || !(class[w[0]]&cAlpha != 0 && w[0] < 0x80) {
		return 0
	}
	for i := 1; i < len(w); i++ {
		c := w[i]
		switch {
		case c == '=':
			return i + 1
		case c < 0x80 && isWord(c), c == '.', c == '-':
		default:
			return 0
		}
	}
	return 0
}

// splitWords splits s at ASCII white space.
func splitWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r < 0x80 && isBlank(byte(r)) })
}

// Fitter compiles the index's _pattern:"TEMPLATE" filter and masks
// lines as the index writes them: it implements index.TemplateFitter
// and index.Masker.
type Fitter struct{}

// MaskVersion names the rules of Mask, for keys the index stores: bump
// it with every change to what Mask returns, and stored keys of the
// older rules are no longer used (their lines are masked again).
const MaskVersion = 1

// MaskKey is Mask.
func (Fitter) MaskKey(dst []byte, text string) []byte { return Mask(dst, text) }

// MaskVersion returns MaskVersion.
func (Fitter) MaskVersion() uint32 { return MaskVersion }

// FitTemplate returns a check of whether a line's text fits template,
// safe for concurrent use.
func (Fitter) FitTemplate(template string) func(text string) bool {
	t := ParseTemplate(template)
	return t.Fits
}

// QuoteTemplate writes t as a phrase of the query syntax: in double
// quotes, with \ and " escaped.
func QuoteTemplate(t string) string {
	var b strings.Builder
	b.Grow(len(t) + 2)
	b.WriteByte('"')
	for i := 0; i < len(t); i++ {
		if t[i] == '"' || t[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(t[i])
	}
	b.WriteByte('"')
	return b.String()
}

// FilterQuery returns the query that selects the lines of query that fit
// template: query AND _pattern:"template" (just the latter for an empty
// query or *).
func FilterQuery(query, template string) string {
	f := "_pattern:" + QuoteTemplate(template)
	if q := strings.TrimSpace(query); q != "" && q != "*" {
		return "(" + q + ") AND " + f
	}
	return f
}
