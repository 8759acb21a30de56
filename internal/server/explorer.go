package server

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/recall"
)

// The catalogue endpoints (GET /movies, GET /movies/{movie_id}/similar) and
// the explorer page (GET / and its assets under /explorer/), a small page
// for people to try the model in a browser. The page is plain HTML, CSS
// and JavaScript embedded in the binary: no build step, nothing fetched
// from elsewhere, and a Content-Security-Policy that allows only the
// service's own origin.

// handleMovies answers GET /movies?q=&limit=&offset=: catalogue movies
// whose titles contain q, a page of them.
func (s *Server) handleMovies(w http.ResponseWriter, r *http.Request) error {
	params, aerr := queryParams(r, "q", "limit", "offset")
	if aerr != nil {
		return aerr
	}
	q := params.Get("q")
	if !utf8.ValidString(q) || utf8.RuneCountInString(q) > recall.MaxMoviesQuery {
		return invalid("q", fmt.Sprintf("q must be valid UTF-8 of at most %d characters", recall.MaxMoviesQuery))
	}
	limit, aerr := intParam(params, "limit", recall.DefaultMoviesLimit, 1, recall.MaxMoviesLimit)
	if aerr != nil {
		return aerr
	}
	offset, aerr := intParam(params, "offset", 0, 0, recall.MaxOffset)
	if aerr != nil {
		return aerr
	}
	res, err := s.rec.Movies(q, offset, limit)
	if err != nil {
		return err
	}
	out := moviesResponse{ModelVersion: res.ModelVersion, Total: res.Total, Movies: make([]movieJSON, len(res.Movies)), NextOffset: res.NextOffset}
	for i, m := range res.Movies {
		out.Movies[i] = movieJSON(m)
	}
	return writeJSON(w, r, http.StatusOK, out)
}

// handleSimilar answers GET /movies/{movie_id}/similar?k=: the movie
// tower's nearest neighbours of one movie.
func (s *Server) handleSimilar(w http.ResponseWriter, r *http.Request) error {
	params, aerr := queryParams(r, "k")
	if aerr != nil {
		return aerr
	}
	id, aerr := movieIDParam(r)
	if aerr != nil {
		return aerr
	}
	k, aerr := intParam(params, "k", recall.DefaultSimilarK, 1, recall.MaxSimilarK)
	if aerr != nil {
		return aerr
	}
	ctx, cancel := s.deadline(r)
	defer cancel()
	res, err := s.rec.Similar(ctx, id, k)
	if ue, ok := errors.AsType[*recall.UnknownMovieError](err); ok {
		return &apiError{code: codeNotFound, field: "movie_id", detail: ue.Error() + "; GET /movies lists the catalogue", cause: err}
	}
	if err != nil {
		return err
	}
	return writeJSON(w, r, http.StatusOK, similarResponse{ModelVersion: res.ModelVersion, Movie: movieJSON(res.Movie), Items: newItemsJSON(res.Items)})
}

// queryParams parses the query string and refuses what the contract does
// not list: unknown or repeated parameters are a 400 naming them, as
// unknown or repeated members of a body are. The first such parameter in
// the query string is named, so a request always gets the same answer.
func queryParams(r *http.Request, known ...string) (url.Values, *apiError) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalid(malformedParam(r.URL.RawQuery), "the query string is malformed: "+err.Error())
	}
	for pair := range strings.SplitSeq(r.URL.RawQuery, "&") {
		if pair == "" {
			continue
		}
		name, _, _ := strings.Cut(pair, "=")
		name, _ = url.QueryUnescape(name) // ParseQuery has accepted it
		switch {
		case len(known) == 0:
			return nil, invalid(name, "unknown query parameter "+quote(name)+" (this endpoint takes none)")
		case !slices.Contains(known, name):
			return nil, invalid(name, "unknown query parameter "+quote(name)+" (this endpoint takes "+fmt.Sprint(known)+")")
		case len(v[name]) > 1:
			return nil, invalid(name, "query parameter "+quote(name)+" appears more than once")
		}
	}
	return v, nil
}

// malformedParam names the first parameter of a query string that
// url.ParseQuery refuses (bad percent-encoding, a semicolon): its name,
// decoded where it can be.
func malformedParam(raw string) string {
	for pair := range strings.SplitSeq(raw, "&") {
		if _, err := url.ParseQuery(pair); err != nil {
			name, _, _ := strings.Cut(pair, "=")
			name, _, _ = strings.Cut(name, ";")
			if n, err := url.QueryUnescape(name); err == nil {
				name = n
			}
			return name
		}
	}
	return ""
}

// intParam reads an optional integer query parameter in [lo, hi].
func intParam(v url.Values, name string, def, lo, hi int) (int, *apiError) {
	raw, ok := v[name]
	if !ok {
		return def, nil
	}
	n, err := plainInt(name, raw[0], int64(lo), int64(hi))
	return int(n), err
}

// plainInt parses s, the path or query parameter name, as an integer in
// [lo, hi] written the one way the contract shows: decimal digits, no
// sign, no leading zero ("+260" and "0260" would name the same resource
// as "260" under other URLs).
func plainInt(name, s string, lo, hi int64) (int64, *apiError) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || s[0] == '0' && len(s) > 1 || strings.TrimLeft(s, "0123456789") != "" || n < lo || n > hi {
		return 0, invalid(name, fmt.Sprintf("%s must be an integer between %d and %d, got %s", name, lo, hi, quote(s)))
	}
	return n, nil
}

type movieJSON struct {
	MovieID movielens.MovieID `json:"movie_id"`
	Title   string            `json:"title"`
	Genres  []string          `json:"genres"`
	Year    int               `json:"year,omitzero"`
}

type moviesResponse struct {
	ModelVersion string      `json:"model_version"`
	Total        int         `json:"total"`
	Movies       []movieJSON `json:"movies"`
	NextOffset   int         `json:"next_offset,omitzero"`
}

type similarResponse struct {
	ModelVersion string     `json:"model_version"`
	Movie        movieJSON  `json:"movie"`
	Items        []itemJSON `json:"items"`
}

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
