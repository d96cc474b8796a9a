package settings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/logbox/logbox/appliance/pipeline"
)

// checkJSON refuses what encoding/json lets pass in a source entry: data
// after the object (a second object, or garbage), and a key given twice
// (encoding/json silently keeps the last). Keys of the source object and of
// its multiline object are compared the way encoding/json matches struct
// fields, ignoring case ("name" and "Name" are the same field); keys in
// fields are map keys and compared exactly. The walk keeps its own stack,
// so deep nesting costs heap, not goroutine stack.
func checkJSON(b []byte) error {
	return checkJSONObject(b, "source", "multiline")
}

// checkJSONObject is checkJSON for an entry of any kind, named what in
// errors: keys of the top object, and of an object under the top-level key
// foldNested, are compared ignoring case; other keys exactly.
func checkJSONObject(b []byte, what, foldNested string) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	syntax := func(err error) error {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return &pipeline.FieldError{Field: "body", Msg: "invalid " + what + " JSON: " + err.Error()}
	}
	type frame struct {
		obj     bool
		fold    bool // keys compared ignoring case
		path    string
		keys    map[string]bool
		wantKey bool
		key     string // the last key read
	}
	tok, err := dec.Token()
	if err != nil {
		return syntax(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return &pipeline.FieldError{Field: "body", Msg: "a " + what + " must be one JSON object"}
	}
	stack := []*frame{{obj: true, fold: true, keys: map[string]bool{}, wantKey: true}}
	for len(stack) > 0 {
		top := stack[len(stack)-1]
		tok, err := dec.Token()
		if err != nil {
			return syntax(err)
		}
		if top.obj && top.wantKey {
			if k, ok := tok.(string); ok {
				id := k
				if top.fold {
					id = foldKey(k)
				}
				if top.keys[id] {
					return &pipeline.FieldError{Field: joinPath(top.path, k), Msg: "given twice in the " + what + " JSON; give each key once"}
				}
				top.keys[id] = true
				top.key, top.wantKey = k, false
				continue
			}
			// Token only returns '}' here: the object ends.
			stack = stack[:len(stack)-1]
			continue
		}
		if top.obj {
			top.wantKey = true
		}
		d, ok := tok.(json.Delim)
		if !ok {
			continue // a scalar value
		}
		switch d {
		case '{', '[':
			path := top.path + "[]"
			if top.obj {
				path = joinPath(top.path, top.key)
			}
			stack = append(stack, &frame{
				obj:  d == '{',
				fold: d == '{' && len(stack) == 1 && foldNested != "" && strings.EqualFold(top.key, foldNested),
				path: path, keys: map[string]bool{}, wantKey: d == '{',
			})
		default: // ']': the array ends
			stack = stack[:len(stack)-1]
		}
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		return &pipeline.FieldError{Field: "body", Msg: fmt.Sprintf("data after the %s object, which ends at byte %d; send exactly one JSON object", what, end)}
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// foldKey maps every rune to the smallest of its case-folding orbit, so
// foldKey(a) == foldKey(b) exactly when strings.EqualFold(a, b), which is
// how encoding/json matches a key to a struct field.
func foldKey(s string) string {
	return strings.Map(func(r rune) rune {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		return m
	}, s)
}
