package esbulk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/logbox/logbox/appliance/jsonstr"
	"strings"
	"unsafe"

	"github.com/logbox/logbox/appliance/ingest"
)

// Item error types, as Elasticsearch names them.
const (
	typeIllegalArgument = "illegal_argument_exception"
	typeMapperParsing   = "mapper_parsing_exception"
	typeValidation      = "action_request_validation_exception"
	typeConflict        = "version_conflict_engine_exception"
)

// maxIDBytes is Elasticsearch's bound on an _id.
const maxIDBytes = 512

// item is one action of a bulk request and its answer.
type item struct {
	action string // "index", "create", "update" or "delete"
	index  string
	id     string // the client's _id, or the one given to the document
	// line is the item's index into the lines handed to the Acceptor;
	// -1 for an item answered with an error.
	line    int
	status  int
	errType string
	reason  string
}

func (it *item) fail(status int, typ, reason string) {
	it.line, it.status, it.errType, it.reason = -1, status, typ, reason
}

// requestError fails a whole bulk request: the pairing of action and
// document lines is lost, so no item can be answered (Elasticsearch does
// the same).
type requestError struct {
	status int
	typ    string
	reason string
}

func (e *requestError) Error() string { return e.reason }

// parseBulk reads a bulk body (NDJSON: an action line, then for index,
// create and update a document line) into its items and the lines of the
// good ones, in order. defIndex is the URL's index ("" for none). A
// malformed action line fails the request (*requestError); a malformed
// document, a missing index, an update or a delete fail only their item.
// An _id given twice in one request is kept once: the later items with it
// are answered 409, as Elasticsearch answers a create of a held _id.
// The items' and lines' strings share body's memory: body must not change
// after the call.
func parseBulk(body []byte, defIndex string) ([]item, []ingest.Line, error) {
	// Most items are an action and a document line.
	guess := bytes.Count(body, []byte{'\n'})/2 + 1
	var (
		items = make([]item, 0, guess)
		lines = make([]ingest.Line, 0, guess)
		ids   map[string]struct{}
		docs  docParser
	)
	// The body as a string, without a copy (it is not changed): the
	// lines' text and values are its substrings.
	var src string
	if len(body) > 0 {
		src = unsafe.String(&body[0], len(body))
	}
	pos, n := 0, 0 // n: line number, from 1, for error messages
	next := func() ([]byte, string, bool) {
		if pos >= len(body) {
			return nil, "", false
		}
		end := len(body)
		if i := bytes.IndexByte(body[pos:], '\n'); i >= 0 {
			end = pos + i
		}
		start := pos
		pos = end + 1
		n++
		if end > start && body[end-1] == '\r' {
			end--
		}
		return body[start:end], src[start:end], true
	}
	for {
		l, ls, ok := next()
		if !ok {
			break
		}
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		it, err := parseAction(l, ls, n, defIndex)
		if err != nil {
			return nil, nil, err
		}
		if it.action == "delete" {
			it.fail(400, typeIllegalArgument, "logbox keeps logs append-only: delete is not supported")
			items = append(items, it)
			continue
		}
		doc, dsrc, ok := next()
		switch {
		case !ok:
			it.fail(400, typeValidation, "Validation Failed: 1: source is missing;")
		case it.action == "update":
			it.fail(400, typeIllegalArgument, "logbox keeps logs append-only: update is not supported")
		case it.status != 0:
			// parseAction failed the item (no index, bad _id).
		default:
			line, err := docs.toLine(doc, dsrc, it.index, it.id)
			if err != nil {
				it.fail(400, typeMapperParsing, fmt.Sprintf("failed to parse document on line [%d]: %v", n, err))
				break
			}
			if line.ID != "" {
				if ids == nil {
					ids = map[string]struct{}{}
				}
				if _, dup := ids[line.ID]; dup {
					it.fail(409, typeConflict, fmt.Sprintf("[%s]: version conflict, document already exists (current version [1])", it.id))
					break
				}
				ids[line.ID] = struct{}{}
			}
			it.line = len(lines)
			lines = append(lines, line)
		}
		items = append(items, it)
	}
	return items, lines, nil
}

// parseAction reads action line l (src as a string; line number n).
// Item-level problems (no index, a bad _id) come back as a failed item.
func parseAction(l []byte, src string, n int, defIndex string) (item, error) {
	malformed := func(why string) error {
		return &requestError{status: 400, typ: typeIllegalArgument,
			reason: fmt.Sprintf("Malformed action/metadata line [%d], %s", n, why)}
	}
	l, src = bytes.TrimSpace(l), strings.TrimSpace(src)
	if len(l) == 0 || l[0] != '{' || len(l) != len(src) || !json.Valid(l) {
		return item{}, malformed("expected a JSON object")
	}
	f := flattener{data: l, src: src, pos: 1}
	f.ws()
	if f.peek() != '"' {
		return item{}, malformed("expected one action, found none")
	}
	it := item{action: f.str(), index: defIndex, line: -1}
	f.ws()
	f.pos++ // ':'
	f.ws()
	switch it.action {
	case "index", "create", "update", "delete":
	default:
		return item{}, malformed(fmt.Sprintf("expected one of [create, delete, index, update] but found [%s]", it.action))
	}
	if f.peek() != '{' {
		return item{}, malformed("expected an object of metadata")
	}
	f.pos++
	hasID := false
	for f.err == nil {
		f.ws()
		c := f.peek()
		if c == '}' {
			f.pos++
			break
		}
		if c == ',' {
			f.pos++
			continue
		}
		key := f.str()
		f.ws()
		f.pos++ // ':'
		f.ws()
		switch key {
		case "_index":
			if f.peek() != '"' {
				return item{}, malformed("[_index] must be a string")
			}
			it.index = f.str()
		case "_id":
			switch c := f.peek(); {
			case c == '"':
				it.id, hasID = f.str(), true
			case c == 'n':
				f.skip(1) // null: none
			case c == '-' || (c >= '0' && c <= '9'):
				start := f.pos
				f.skip(1)
				it.id, hasID = src[start:f.pos], true // a number: its text, as Elasticsearch takes it
			default:
				return item{}, malformed("[_id] must be a string")
			}
		default:
			f.skip(1)
		}
	}
	f.ws()
	if f.err != nil || f.peek() != '}' {
		return item{}, malformed("expected one action")
	}
	switch {
	case it.index == "":
		it.fail(400, typeValidation, "Validation Failed: 1: index is missing;")
	case hasID && it.id == "":
		it.fail(400, typeValidation, "Validation Failed: 1: if _id is specified it must not be empty;")
	case len(it.id) > maxIDBytes:
		it.fail(400, typeValidation, fmt.Sprintf("Validation Failed: 1: id [%s] is too long, must be no longer than 512 bytes but was: %d;", it.id, len(it.id)))
	}
	return it, nil
}

// appendString appends s as a JSON string (invalid UTF-8 as U+FFFD), as
// encoding/json writes it.
func appendString(b []byte, s string) []byte { return jsonstr.Append(b, s) }
