package server

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
)

// The explorer page (GET / and its assets under /explorer/), a small page
// for people to try the model in a browser. The page is plain HTML, CSS
// and JavaScript embedded in the binary: no build step, nothing fetched
// from elsewhere, and a Content-Security-Policy that allows only the
// service's own origin.

// explorerFiles are the page and its assets.
//
//go:embed explorer
var explorerFiles embed.FS

// explorerCSP allows the page nothing but its own origin: its script,
// style sheet and icon are files of /explorer/, it calls only this API,
// and it may not be framed.
const explorerCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded file of the page, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// explorerAssets reads the embedded files once (at New): the page at "/",
// the rest by name under /explorer/.
// The files are fixed at build time (TestExplorerPage serves each), so
// reading them cannot fail.
func explorerAssets() map[string]asset {
	types := map[string]string{
		".html": "text/html; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".css":  "text/css; charset=utf-8",
		".svg":  "image/svg+xml",
	}
	entries, _ := explorerFiles.ReadDir("explorer")
	out := make(map[string]asset, len(entries))
	for _, e := range entries {
		body, _ := explorerFiles.ReadFile("explorer/" + e.Name())
		sum := sha256.Sum256(body)
		out[e.Name()] = asset{body: body, contentType: types[path.Ext(e.Name())], etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	// The page lives at /, where the route has no {file}: it is stored
	// under "", so /explorer/index.html is a 404.
	out[""] = out["index.html"]
	delete(out, "index.html")
	return out
}

// handleExplorer serves the page at / and its script, style sheet and icon
// under /explorer/.
func (s *Server) handleExplorer(w http.ResponseWriter, r *http.Request) error {
	a, ok := s.assets[chi.URLParam(r, "file")]
	if !ok {
		return s.handleNotFound(w, r)
	}
	h := w.Header()
	h.Set("Content-Security-Policy", explorerCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Revalidated on every load (the ETag makes that a 304), so a new
	// binary's page is never mixed with an old cached script. Only
	// If-None-Match applies (weak comparison, as RFC 9110 §13.1.2 has it):
	// Range and the other preconditions are ignored, the files are small.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	if inm := r.Header.Get("If-None-Match"); inm == "*" || strings.Contains(inm, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", a.contentType)
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	_, _ = w.Write(a.body)
	return nil
}
