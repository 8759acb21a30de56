package server

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/towerrecall/towerrecall/internal/recall"
)

func TestCatalogueEndpoints(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	long := strings.Repeat("a", 201)
	tests := []struct {
		name, method, path string
		notReady           bool
		want               int
		wantField          string
		check              func(t *testing.T, body []byte)
	}{
		{name: "movies default", method: "GET", path: "/movies", want: 200,
			check: func(t *testing.T, body []byte) {
				var r moviesResponse
				mustJSON(t, body, &r)
				if r.Total != 10 || len(r.Movies) != 10 || r.ModelVersion != "v-test" || r.Movies[0].Year != 1999 {
					t.Errorf("response %+v", r)
				}
			}},
		{name: "movies search", method: "GET", path: "/movies?q=MOVIE+b&limit=1", want: 200,
			check: func(t *testing.T, body []byte) {
				var r moviesResponse
				mustJSON(t, body, &r)
				if r.Total != 1 || len(r.Movies) != 1 || r.Movies[0].MovieID != 2 {
					t.Errorf("response %+v", r)
				}
			}},
		{name: "movies empty q", method: "GET", path: "/movies?q=&limit=100", want: 200},
		{name: "movies paged", method: "GET", path: "/movies?limit=3&offset=3", want: 200,
			check: func(t *testing.T, body []byte) {
				var r moviesResponse
				mustJSON(t, body, &r)
				if r.Total != 10 || len(r.Movies) != 3 || r.Movies[0].MovieID != 4 || r.NextOffset != 6 {
					t.Errorf("response %+v, want movies 4 to 6 of 10, next offset 6", r)
				}
			}},
		{name: "movies last page", method: "GET", path: "/movies?limit=3&offset=9", want: 200,
			check: func(t *testing.T, body []byte) {
				if strings.Contains(string(body), "next_offset") {
					t.Errorf("a next offset on the last page: %s", body)
				}
			}},
		{name: "movies offset too large", method: "GET", path: "/movies?offset=10001", want: 400, wantField: "offset"},
		{name: "movies no match", method: "GET", path: "/movies?q=zzz", want: 200,
			check: func(t *testing.T, body []byte) {
				if !strings.Contains(string(body), `"movies":[]`) {
					t.Errorf("movies should be an empty array: %s", body)
				}
			}},
		{name: "movies limit 0", method: "GET", path: "/movies?limit=0", want: 400, wantField: "limit"},
		{name: "movies limit 101", method: "GET", path: "/movies?limit=101", want: 400, wantField: "limit"},
		{name: "movies limit text", method: "GET", path: "/movies?limit=ten", want: 400, wantField: "limit"},
		{name: "movies limit with a sign", method: "GET", path: "/movies?limit=%2B3", want: 400, wantField: "limit"},
		{name: "movies limit with a leading zero", method: "GET", path: "/movies?limit=03", want: 400, wantField: "limit"},
		{name: "similar id with a sign", method: "GET", path: "/movies/+5/similar", want: 400, wantField: "movie_id"},
		{name: "similar id percent-encoded", method: "GET", path: "/movies/%35/similar", want: 200},
		{name: "similar id with a leading zero", method: "GET", path: "/movies/05/similar", want: 400, wantField: "movie_id"},
		{name: "movies limit twice", method: "GET", path: "/movies?limit=1&limit=2", want: 400, wantField: "limit"},
		{name: "movies unknown parameter", method: "GET", path: "/movies?query=toy", want: 400, wantField: "query"},
		{name: "movies q too long", method: "GET", path: "/movies?q=" + long, want: 400, wantField: "q"},
		{name: "movies q of 200 characters", method: "GET", path: "/movies?q=" + strings.Repeat("%C3%A9", 200), want: 200},
		{name: "movies q of 201 characters", method: "GET", path: "/movies?q=" + strings.Repeat("%C3%A9", 201), want: 400, wantField: "q"},
		{name: "movies q not UTF-8", method: "GET", path: "/movies?q=%FF", want: 400, wantField: "q"},
		{name: "movies malformed query", method: "GET", path: "/movies?q=%zz", want: 400, wantField: "q"},
		{name: "movies semicolon in query", method: "GET", path: "/movies?limit=1&q=x;y", want: 400, wantField: "q"},
		{name: "similar malformed k", method: "GET", path: "/movies/5/similar?k=%zz", want: 400, wantField: "k"},
		{name: "movies parameter name not UTF-8", method: "GET", path: "/movies?%FF=1", want: 400, wantField: "\uFFFD"},
		{name: "movies no model", method: "GET", path: "/movies", notReady: true, want: 503},
		{name: "movies POST", method: "POST", path: "/movies", want: 405},
		{name: "similar", method: "GET", path: "/movies/5/similar", want: 200,
			check: func(t *testing.T, body []byte) {
				var r similarResponse
				mustJSON(t, body, &r)
				if r.Movie.MovieID != 5 || len(r.Items) != 10 || r.Items[0].Score != 1 || r.ModelVersion != "v-test" {
					t.Errorf("response %+v", r)
				}
			}},
		{name: "similar k", method: "GET", path: "/movies/7/similar?k=3", want: 200,
			check: func(t *testing.T, body []byte) {
				var r similarResponse
				mustJSON(t, body, &r)
				if len(r.Items) != 3 {
					t.Errorf("response %+v", r)
				}
			}},
		{name: "similar unknown movie", method: "GET", path: "/movies/5000/similar", want: 404, wantField: "movie_id"},
		{name: "similar largest id", method: "GET", path: "/movies/2147483647/similar", want: 404, wantField: "movie_id"},
		{name: "similar id 0", method: "GET", path: "/movies/0/similar", want: 400, wantField: "movie_id"},
		{name: "similar id past int32", method: "GET", path: "/movies/2147483648/similar", want: 400, wantField: "movie_id"},
		{name: "similar id text", method: "GET", path: "/movies/toy/similar", want: 400, wantField: "movie_id"},
		{name: "similar id not UTF-8", method: "GET", path: "/movies/%FF/similar", want: 400, wantField: "movie_id"},
		{name: "no route, path not UTF-8", method: "GET", path: "/%FF", want: 404},
		{name: "no route, encoded", method: "GET", path: "/mov%69es", want: 404, // routes match the path as sent
			check: func(t *testing.T, body []byte) {
				var p problem
				mustJSON(t, body, &p)
				if !strings.Contains(p.Detail, `"/mov%69es"`) {
					t.Errorf("detail %q does not name the path as sent", p.Detail)
				}
			}},
		{name: "similar k 0", method: "GET", path: "/movies/5/similar?k=0", want: 400, wantField: "k"},
		{name: "similar k 101", method: "GET", path: "/movies/5/similar?k=101", want: 400, wantField: "k"},
		{name: "similar unknown parameter", method: "GET", path: "/movies/5/similar?limit=3", want: 400, wantField: "limit"},
		// /model takes no parameter: ?version= would be ignored without
		// a word (it does not pick a version).
		{name: "model unknown parameter", method: "GET", path: "/model?version=v-test", want: 400, wantField: "version"},
		{name: "model empty parameter", method: "GET", path: "/model?verbose", want: 400, wantField: "verbose"},
		{name: "similar no model", method: "GET", path: "/movies/5/similar", notReady: true, want: 503},
		{name: "similar POST", method: "POST", path: "/movies/5/similar", want: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, Config{})
			if tt.notReady {
				ts.rec.setReady(false)
			}
			w := ts.call(tt.method, tt.path, "", "")
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if w.Code >= 400 {
				if p := decodeProblemBody(t, w); p.Field != tt.wantField {
					t.Errorf("problem field %q, want %q: %+v", p.Field, tt.wantField, p)
				}
			} else if err := c.requestValid(t, tt.method, tt.path, "", ""); err != nil {
				t.Errorf("the server accepted a request the contract rejects: %v", err)
			}
			if w.Code == 200 && w.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", w.Header().Get("Cache-Control"))
			}
			c.checkResponse(t, tt.method, tt.path, "", "", w)
			if tt.check != nil {
				tt.check(t, w.Body.Bytes())
			}
		})
	}
}

// The page loads only files the server serves, from its own origin, and
// has no inline script or style, which its Content-Security-Policy would
// block.
func TestExplorerPage(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	ts := newTestServer(t, Config{Explorer: true})
	w := ts.call("GET", "/", "", "")
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	c.checkResponse(t, "GET", "/", "", "", w)
	page := w.Body.String()
	if csp := w.Header().Get("Content-Security-Policy"); csp != explorerCSP || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(\s[^>]*)?>[^<]`), // inline script
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`), // inline event handlers
		regexp.MustCompile(`(src|href)="(https?:)?//`),
	} {
		if m := bad.FindString(page); m != "" {
			t.Errorf("the page has %q, which its CSP blocks or which leaves the origin", m)
		}
	}
	// The title boxes take no longer a text than GET /movies does (a
	// longer one was a 400 and a console error at every keystroke, shown
	// as "q must be valid UTF-8 of at most 200 characters"). maxlength
	// counts UTF-16 units, never fewer than characters.
	for _, id := range []string{"recent-q", "similar-q"} {
		m := regexp.MustCompile(`<input id="` + id + `"[^>]*\smaxlength="(\d+)"`).FindStringSubmatch(page)
		if m == nil || m[1] != strconv.Itoa(recall.MaxMoviesQuery) {
			t.Errorf("the title box #%s has maxlength %v, want GET /movies's %d", id, m, recall.MaxMoviesQuery)
		}
	}
	wantType := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	// Relative to the page (/), so that a gateway's path prefix carries over.
	refs := regexp.MustCompile(`(?:src|href)="(explorer/[^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) != 3 {
		t.Errorf("the page references %v, want the script, the style sheet and the icon", refs)
	}
	for _, ref := range refs {
		path := "/" + ref[1]
		w := ts.call("GET", path, "", "")
		ext := path[strings.LastIndexByte(path, '.'):]
		if w.Code != 200 || w.Header().Get("Content-Type") != wantType[ext] || w.Body.Len() == 0 {
			t.Errorf("GET %s: %d %q, %d bytes", path, w.Code, w.Header().Get("Content-Type"), w.Body.Len())
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: headers %v", path, w.Header())
		}
		c.checkResponse(t, "GET", path, "", "", w)
		// Revalidation: the same ETag answers 304 without a body.
		if ar := w.Header().Get("Accept-Ranges"); ar != "" {
			t.Errorf("GET %s: Accept-Ranges %q for a server that ignores Range", path, ar)
		}
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("If-None-Match", w.Header().Get("ETag"))
		rw := httptest.NewRecorder()
		ts.Handler().ServeHTTP(rw, req)
		if rw.Code != http.StatusNotModified || rw.Body.Len() != 0 {
			t.Errorf("GET %s If-None-Match: %d, %d bytes", path, rw.Code, rw.Body.Len())
		}
		c.checkResponse(t, "GET", path, "", "", rw)
		// Ranges and other preconditions are ignored: the whole file, never
		// a 416 or 412 outside the problem format.
		for k, v := range map[string]string{"Range": "bytes=999999-", "If-Match": `"nope"`, "If-Unmodified-Since": "Mon, 01 Jan 1990 00:00:00 GMT"} {
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set(k, v)
			rw := httptest.NewRecorder()
			ts.Handler().ServeHTTP(rw, req)
			if rw.Code != http.StatusOK || rw.Body.Len() != w.Body.Len() {
				t.Errorf("GET %s %s: %s: %d, %d bytes, want 200 and the file", path, k, v, rw.Code, rw.Body.Len())
			}
			if ar := rw.Header().Get("Accept-Ranges"); ar != "" {
				t.Errorf("GET %s: Accept-Ranges %q for a server that ignores Range", path, ar)
			}
		}
	}
	for _, path := range []string{"/explorer/nope.js", "/explorer/index.html", "/explorer/"} {
		w := ts.call("GET", path, "", "")
		if w.Code != 404 {
			t.Errorf("GET %s: %d, want 404", path, w.Code)
			continue
		}
		decodeProblemBody(t, w)
	}
}

func TestExplorerOff(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	ts := newTestServer(t, Config{Explorer: false})
	for _, path := range []string{"/", "/explorer/app.js"} {
		w := ts.call("GET", path, "", "")
		if w.Code != 404 {
			t.Fatalf("GET %s with the explorer off: %d, want 404", path, w.Code)
		}
		decodeProblemBody(t, w)
		c.checkResponse(t, "GET", path, "", "", w)
	}
	// The catalogue endpoints are part of the API, not of the page.
	if w := ts.call("GET", "/movies?q=movie", "", ""); w.Code != 200 {
		t.Errorf("GET /movies with the explorer off: %d", w.Code)
	}
}

// TestQueryParamsNameTheFirst: of several unknown or repeated parameters,
// the problem names the first in the query string, so the same request
// always gets the same answer (it named a random one: Go's map order).
func TestQueryParamsNameTheFirst(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{})
	for _, tc := range []struct{ path, want string }{
		{"/movies?zz=1&aa=2&mm=3&q=a", "zz"},
		{"/movies?q=1&limit=1&q=2&limit=2", "q"},
		{"/movies?limit=1&limit=2&q=1&q=2", "limit"},
		{"/movies?q=a&bb=1&limit=1&limit=2", "bb"},
		{"/movies/5/similar?k=1&x=1&y=1&z=1", "x"},
	} {
		for range 50 {
			w := ts.call("GET", tc.path, "", "")
			if p := decodeProblemBody(t, w); p.Field != tc.want {
				t.Fatalf("%s: problem field %q, want %q (the first offending parameter)", tc.path, p.Field, tc.want)
			}
		}
	}
}

// TestQueryParamsIgnoredOffTheAPI: the routes that are not the API's take
// no parameter and ignore any, where a refusal would break more than it
// tells: a probe or scraper configured with one (a Kubernetes probe's
// path, a scrape config's params) and a browser's or cache's
// cache-buster on the page and its files.
func TestQueryParamsIgnoredOffTheAPI(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{Explorer: true})
	for _, path := range []string{"/healthz?x=1", "/readyz?verbose", "/metrics?name[]=up", "/?v=2", "/explorer/app.js?v=2", "/explorer/app.css?1"} {
		if w := ts.call("GET", path, "", ""); w.Code != http.StatusOK {
			t.Errorf("GET %s: %d, want 200: %s", path, w.Code, w.Body)
		}
	}
}
