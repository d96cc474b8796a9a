package ui_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/logbox/logbox/ui"
)

const wantCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func TestHandlerServesPage(t *testing.T) {
	h := ui.Handler()
	get := func(t *testing.T, path string, hdr map[string]string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	tests := []struct {
		path     string
		status   int
		ctPrefix string
		body     string
	}{
		{"/", http.StatusOK, "text/html", `<script src="/static/app.js" defer></script>`},
		{"/static/app.js", http.StatusOK, "text/javascript", "textContent"},
		{"/static/app.css", http.StatusOK, "text/css", "prefers-color-scheme: dark"},
		{"/static/missing.js", http.StatusNotFound, "", ""},
		{"/nope", http.StatusNotFound, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			rec := get(t, tc.path, nil)
			if rec.Code != tc.status {
				t.Fatalf("GET %s: status %d, want %d", tc.path, rec.Code, tc.status)
			}
			if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", tc.path, got)
			}
			if tc.status != http.StatusOK {
				return
			}
			if got := rec.Header().Get("Content-Security-Policy"); got != wantCSP {
				t.Errorf("GET %s: CSP\n got %q\nwant %q", tc.path, got, wantCSP)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.ctPrefix) {
				t.Errorf("GET %s: Content-Type %q, want %s", tc.path, ct, tc.ctPrefix)
			}
			if !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("GET %s: body lacks %q", tc.path, tc.body)
			}

			// A revalidation with the ETag gets 304.
			etag := rec.Header().Get("ETag")
			if etag == "" {
				t.Fatalf("GET %s: no ETag", tc.path)
			}
			if rec := get(t, tc.path, map[string]string{"If-None-Match": etag}); rec.Code != http.StatusNotModified {
				t.Errorf("GET %s with If-None-Match: status %d, want 304", tc.path, rec.Code)
			}
		})
	}
}

// TestPageHasNoInlineCode keeps the page compatible with the CSP: no inline
// scripts, event-handler attributes or style attributes.
func TestPageHasNoInlineCode(t *testing.T) {
	html, err := os.ReadFile(filepath.Join("static", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range regexp.MustCompile(`(?i)<script[^>]*>`).FindAll(html, -1) {
		if !strings.Contains(string(tag), `src="/static/`) {
			t.Errorf("index.html: script without a same-origin src: %s", tag)
		}
	}
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script(\s[^>]*)?>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`(?i)\son[a-z]+\s*=`),
		regexp.MustCompile(`(?i)\sstyle\s*=`),
		regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)javascript:`),
		regexp.MustCompile(`(?i)(src|href)\s*=\s*"(https?:)?//`),
	} {
		if loc := re.FindIndex(html); loc != nil {
			t.Errorf("index.html matches %s at %q", re, html[loc[0]:min(loc[1]+20, len(html))])
		}
	}
}

// TestScriptsNeverParseHTML is a grep-level guard for the rule that API data
// reaches the page only as text: no script assigns innerHTML or outerHTML,
// calls insertAdjacentHTML or document.write, or evaluates strings.
func TestScriptsNeverParseHTML(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("static", "*.js"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts found: %v", err)
	}
	forbidden := regexp.MustCompile(`\.(innerHTML|outerHTML)\s*(\+?=[^=])|insertAdjacentHTML|document\.write|\beval\s*\(|new\s+Function\s*\(|createContextualFragment|DOMParser|\bsrcdoc\b`)
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if m := forbidden.FindString(line); m != "" {
				t.Errorf("%s:%d: forbidden %q: %s", f, i+1, m, strings.TrimSpace(line))
			}
		}
	}
}
