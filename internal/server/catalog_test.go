package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/towerrecall/towerrecall/internal/catalog"
	"github.com/towerrecall/towerrecall/internal/recall"
)

const testToken = "test-catalog-token-0123456789"

// callAuth sends one request with an Authorization header (none if auth
// is "").
func (ts *testServer) callAuth(method, path, auth, body string) *http.Request {
	req := newRequest(method, path, "application/json", body)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return req
}

func TestCatalogRoutes(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	ts := newTestServer(t, Config{CatalogToken: testToken})
	bearer := "Bearer " + testToken
	for _, tc := range []struct {
		name, method, path, auth, body string
		want                           int
		field, challenge               string // problem field; WWW-Authenticate
	}{
		{"new movie", "PUT", "/movies/200001", bearer, `{"title":"Arrival (2016)","genres":["Drama","Sci-Fi"],"year":2016}`, 201, "", ""},
		{"same movie again replaces it", "PUT", "/movies/200001", bearer, `{"title":"Arrival","genres":["Drama"]}`, 200, "", ""},
		{"same movie as it is", "PUT", "/movies/200001", bearer, `{"title":"Arrival","genres":["Drama"]}`, 200, "", ""},
		{"scheme in any case", "PUT", "/movies/200002", "bearer " + testToken, `{"title":"x","genres":["Drama"]}`, 201, "", ""},
		{"spaces after the scheme", "PUT", "/movies/200002", "Bearer   " + testToken, `{"title":"y","genres":["Drama"]}`, 200, "", ""}, // RFC 9110: 1*SP
		{"delete with a query parameter", "DELETE", "/movies/200002?dry_run=true", bearer, "", 400, "dry_run", ""},                     // refused, not ignored
		{"delete with a body", "DELETE", "/movies/200002", bearer, `{"dry_run":true}`, 400, "", ""},                                    // refused, not ignored
		{"delete", "DELETE", "/movies/200002", bearer, "", 200, "", ""},
		{"delete unknown", "DELETE", "/movies/200002", bearer, "", 404, "movie_id", ""},
		{"no token", "PUT", "/movies/1", "", `{"title":"x","genres":["Drama"]}`, 401, "", `Bearer realm="towerrecall catalogue"`},
		{"wrong token", "PUT", "/movies/1", "Bearer " + testToken + "x", `{"title":"x","genres":["Drama"]}`, 401, "", `Bearer realm="towerrecall catalogue", error="invalid_token"`},
		{"basic auth", "DELETE", "/movies/1", "Basic dXNlcjpwYXNz", "", 401, "", `Bearer realm="towerrecall catalogue"`},
		{"auth before the body is read", "PUT", "/movies/1", "", `not json`, 401, "", `Bearer realm="towerrecall catalogue"`},
		{"bad id", "PUT", "/movies/0", bearer, `{"title":"x","genres":["Drama"]}`, 400, "movie_id", ""},
		{"id too large", "DELETE", "/movies/2147483648", bearer, "", 400, "movie_id", ""},
		{"title missing", "PUT", "/movies/5", bearer, `{"genres":["Drama"]}`, 400, "title", ""},
		{"title empty", "PUT", "/movies/5", bearer, `{"title":"","genres":["Drama"]}`, 400, "title", ""},
		{"title blank", "PUT", "/movies/5", bearer, `{"title":"   ","genres":["Drama"]}`, 400, "title", ""},
		{"title only a filler", "PUT", "/movies/5", bearer, `{"title":"\u3164","genres":["Drama"]}`, 400, "title", ""},
		{"title only a combining grapheme joiner", "PUT", "/movies/5", bearer, `{"title":"\u034F","genres":["Drama"]}`, 400, "title", ""},
		{"title word joiner", "PUT", "/movies/5", bearer, `{"title":"\u2060","genres":["Drama"]}`, 400, "title", ""},
		{"title of 200 characters", "PUT", "/movies/200004", bearer, `{"title":"` + strings.Repeat("é", 200) + `","genres":["Drama"]}`, 201, "", ""},
		{"title too long", "PUT", "/movies/5", bearer, `{"title":"` + strings.Repeat("é", 201) + `","genres":["Drama"]}`, 400, "title", ""},
		{"genre of 64 characters", "PUT", "/movies/200005", bearer, `{"title":"x","genres":["` + strings.Repeat("é", 64) + `"]}`, 201, "", ""},
		{"genre too long", "PUT", "/movies/5", bearer, `{"title":"x","genres":["` + strings.Repeat("é", 65) + `"]}`, 400, "genres", ""},
		{"title control character", "PUT", "/movies/5", bearer, `{"title":"a\u0000b","genres":["Drama"]}`, 400, "title", ""},
		{"title right-to-left override", "PUT", "/movies/5", bearer, `{"title":"a\u202Eb","genres":["Drama"]}`, 400, "title", ""},
		{"title isolate", "PUT", "/movies/5", bearer, `{"title":"a\u2067b","genres":["Drama"]}`, 400, "title", ""},
		{"title zero-width space", "PUT", "/movies/5", bearer, `{"title":"Alien\u200B","genres":["Drama"]}`, 400, "title", ""},
		{"title line separator", "PUT", "/movies/5", bearer, `{"title":"a\u2028b","genres":["Drama"]}`, 400, "title", ""},
		{"title byte-order mark", "PUT", "/movies/5", bearer, `{"title":"\uFEFFa","genres":["Drama"]}`, 400, "title", ""},
		{"title with joiner and marks", "PUT", "/movies/200003", bearer, `{"title":"می\u200Cخواهم \u200Fשלום\u200E (2001)","genres":["Drama"]}`, 201, "", ""},
		{"title null", "PUT", "/movies/5", bearer, `{"title":null,"genres":["Drama"]}`, 400, "title", ""},
		{"genres missing", "PUT", "/movies/5", bearer, `{"title":"x"}`, 400, "genres", ""},
		{"genres empty", "PUT", "/movies/5", bearer, `{"title":"x","genres":[]}`, 400, "genres", ""},
		{"genre empty", "PUT", "/movies/5", bearer, `{"title":"x","genres":["Drama",""]}`, 400, "genres", ""},
		{"genre repeated in another case", "PUT", "/movies/5", bearer, `{"title":"x","genres":["Drama","drama"]}`, 400, "genres", ""},
		{"genre with a tab", "PUT", "/movies/5", bearer, `{"title":"x","genres":["Film\tNoir"]}`, 400, "genres", ""},
		{"too many genres", "PUT", "/movies/5", bearer, `{"title":"x","genres":[` + strings.Repeat(`"Drama",`, 16) + `"Drama"]}`, 400, "genres", ""},
		{"unknown genre", "PUT", "/movies/5", bearer, `{"title":"x","genres":["Drama","Western"]}`, 400, "genres", ""},
		{"year too early", "PUT", "/movies/5", bearer, `{"title":"x","genres":["Drama"],"year":1869}`, 400, "year", ""},
		{"year too late", "PUT", "/movies/5", bearer, `{"title":"x","genres":["Drama"],"year":2101}`, 400, "year", ""},
		{"year a string", "PUT", "/movies/5", bearer, `{"title":"x","genres":["Drama"],"year":"1999"}`, 400, "year", ""},
		{"unknown member", "PUT", "/movies/5", bearer, `{"title":"x","genres":["Drama"],"rating":5}`, 400, "rating", ""},
		{"malformed", "PUT", "/movies/5", bearer, `{"title":"x",`, 400, "", ""},
		{"query parameter", "PUT", "/movies/5?year=1999", bearer, `{"title":"x","genres":["Drama"]}`, 400, "year", ""},
		{"get is not allowed", "GET", "/movies/5", "", "", 405, "", ""},
		{"patch is not allowed, id with an encoded slash", "PATCH", "/movies/1%2F2", bearer, "", 405, "", ""}, // routed undecoded
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := ts.callAuth(tc.method, tc.path, tc.auth, tc.body)
			w := newRecorder()
			ts.Handler().ServeHTTP(w, req)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			c.checkResponse(t, tc.method, tc.path, "application/json", tc.body, w)
			if w.Code < 300 && tc.body != "" {
				if err := c.requestValid(t, tc.method, tc.path, "application/json", tc.body); err != nil {
					t.Errorf("the server accepted a request the contract rejects: %v", err)
				}
			} else if strings.HasSuffix(tc.name, "too long") {
				if err := c.requestValid(t, tc.method, tc.path, "application/json", tc.body); err == nil {
					t.Errorf("the server refuses a request that openapi.yaml accepts")
				}
			}
			if tc.method == "PUT" && w.Code < 300 {
				var res putMovieResponse
				if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || res.Created != (w.Code == 201) || res.Changed != (tc.name != "same movie as it is") {
					t.Errorf("created %v, changed %v (%v): %s", res.Created, res.Changed, err, w.Body)
				}
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			if w.Code >= 400 {
				if p := decodeProblemBody(t, w); p.Field != tc.field {
					t.Errorf("field %q, want %q (%s)", p.Field, tc.field, p.Detail)
				}
			}
			if tc.want == 405 && w.Header().Get("Allow") != "PUT, DELETE" {
				t.Errorf("Allow %q", w.Header().Get("Allow"))
			}
		})
	}
	if got := ts.rec.lastPut; got.MovieID != 200001 && got.Title != "x" {
		t.Errorf("last put %+v", got)
	}
	if strings.Contains(ts.logs.String(), testToken) {
		t.Error("the token was logged")
	}
}

// TestDeleteChunkedBody: over a real connection, a DELETE whose body has
// no declared length (chunked) is refused if it holds something, and
// deletes nothing if it cannot be read (malformed chunks, or not sent
// within the read timeout: taken for "no body", the movie was deleted,
// even when the late body was {"dry_run":true}); an empty one is no body.
func TestDeleteChunkedBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		wait       time.Duration
		want       int
	}{
		{"body", "10\r\n{\"dry_run\":true}\r\n0\r\n\r\n", 0, 400},
		{"malformed", "zz\r\n\r\n", 0, 400},
		{"late", "10\r\n{\"dry_run\":true}\r\n0\r\n\r\n", 600 * time.Millisecond, 400},
		{"empty", "0\r\n\r\n", 0, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, Config{CatalogToken: testToken, ReadTimeout: 300 * time.Millisecond})
			put := newRecorder()
			ts.Handler().ServeHTTP(put, ts.callAuth("PUT", "/movies/200003", "Bearer "+testToken, `{"title":"x","genres":["Drama"]}`))
			if put.Code != 201 {
				t.Fatalf("PUT: %d %s", put.Code, put.Body)
			}
			conn := dialServing(t, ts)
			if _, err := io.WriteString(conn, "DELETE /movies/200003 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+testToken+"\r\nTransfer-Encoding: chunked\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(tc.wait)
			_, _ = io.WriteString(conn, tc.body) // the server may have answered and closed
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			ts.rec.mu.Lock()
			_, kept := ts.rec.catalog[200003]
			ts.rec.mu.Unlock()
			if resp.StatusCode != tc.want || kept != (tc.want != 200) {
				t.Errorf("DELETE with chunked body %q after %v: %d, movie kept %v; want %d", tc.body, tc.wait, resp.StatusCode, kept, tc.want)
			}
		})
	}
}

// TestCatalogRoutesOff: without a token the routes do not exist, and the
// 404 says why (it read as a mistyped URL).
func TestCatalogRoutesOff(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{})
	for _, m := range []string{"PUT", "DELETE"} {
		req := ts.callAuth(m, "/movies/5", "Bearer anything-at-all-0123456", `{"title":"x","genres":["Drama"]}`)
		w := newRecorder()
		ts.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "catalogue changes are off on this service") {
			t.Errorf("%s with no token configured: %d %s", m, w.Code, w.Body)
		}
	}
	if w := ts.call("PUT", "/movies/5/x", "", ""); w.Code != http.StatusNotFound || strings.Contains(w.Body.String(), "catalogue") {
		t.Errorf("PUT on another path: %d %s, want a plain 404", w.Code, w.Body)
	}
}

// TestCatalogErrors maps the serving core's failures.
func TestCatalogErrors(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	for _, tc := range []struct {
		name  string
		err   error
		want  int
		retry string // Retry-After: only while the state passes by itself
	}{
		{"no model", recall.NoModelError{}, 503, retryAfter},
		{"read-only", recall.ReadOnlyError{}, 503, ""},
		{"journal", &recall.JournalError{Err: errors.New("disk full")}, 503, ""},
		{"journal in doubt", &recall.JournalError{Err: fmt.Errorf("disk full: %w", catalog.ErrInDoubt)}, 503, ""},
		{"deadline", context.DeadlineExceeded, 504, ""},
	} {
		ts := newTestServer(t, Config{CatalogToken: testToken})
		ts.rec.putHook = func(context.Context, recall.Movie) (recall.PutResult, error) { return recall.PutResult{}, tc.err }
		body := `{"title":"x","genres":["Drama"]}`
		w := newRecorder()
		ts.Handler().ServeHTTP(w, ts.callAuth("PUT", "/movies/5", "Bearer "+testToken, body))
		if w.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, w.Code, tc.want)
		}
		if got := w.Header().Get("Retry-After"); got != tc.retry {
			t.Errorf("%s: Retry-After %q, want %q", tc.name, got, tc.retry)
		}
		c.checkResponse(t, "PUT", "/movies/5", "application/json", body, w)
		if tc.name == "journal" {
			if !strings.Contains(ts.logs.String(), "disk full") {
				t.Errorf("journal failure not logged")
			}
			if !strings.Contains(w.Body.String(), "urn:towerrecall:problem:journal-unavailable") || !strings.Contains(w.Body.String(), "until the server restarts") {
				t.Errorf("journal failure answered %s", w.Body)
			}
		}
		if tc.name == "journal in doubt" && !strings.Contains(w.Body.String(), "may or may not be applied") {
			t.Errorf("a change in doubt answered %s", w.Body)
		}
	}
}
