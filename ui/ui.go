// Package ui serves logbox's search page: a static HTML page, one script and
// one stylesheet, embedded in the binary. There is no build step and no
// third-party code; the page talks to the JSON API under /api/ on the same
// origin and never to anything else, which the Content-Security-Policy on
// every response enforces.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"time"
)

//go:embed static
var staticFS embed.FS

// ContentSecurityPolicy is sent with every response of Handler. Log lines are
// untrusted input, so the page allows no inline script or style, no foreign
// origin and no framing: a rendering bug cannot turn into script execution.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; " +
	"base-uri 'none'; form-action 'self'"

// contentTypes is fixed here rather than taken from the system's MIME
// database, which differs between machines (and old ones map .js to
// text/plain, which nosniff then refuses to run).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler returns the handler for the search page. It serves:
//
//	GET /            the page (index.html)
//	GET /static/...  its assets (app.js, app.css)
//
// Every other path is 404, so the caller mounts Handler at "/" and routes
// /api/ elsewhere. Responses carry ContentSecurityPolicy,
// X-Content-Type-Options: nosniff and an ETag; clients revalidate on each
// load (Cache-Control: no-cache), so a new binary's assets are picked up at
// once. The handler holds no state besides the embedded files and is safe
// for concurrent use.
func Handler() http.Handler {
	assets := loadAssets()
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", serveAsset(assets["index.html"]))
	mux.HandleFunc("GET /static/{file}", func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets[r.PathValue("file")]
		if !ok || a.contentType == "" {
			setSecurityHeaders(w.Header())
			http.NotFound(w, r)
			return
		}
		serveAsset(a).ServeHTTP(w, r)
	})
	return mux
}

// loadAssets reads the embedded files once. A failure here means the binary
// was built without its assets, a broken invariant.
func loadAssets() map[string]*asset {
	assets := make(map[string]*asset)
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		assets[path.Base(p)] = &asset{
			body:        body,
			contentType: contentTypes[path.Ext(p)],
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
		return nil
	})
	if err != nil || assets["index.html"] == nil {
		panic("ui: embedded assets missing: " + errString(err))
	}
	return assets
}

func errString(err error) string {
	if err == nil {
		return "index.html"
	}
	return err.Error()
}

func serveAsset(a *asset) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		setSecurityHeaders(h)
		h.Set("Content-Type", a.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		// ServeContent answers If-None-Match from the ETag and handles HEAD
		// and Range.
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
}
