package server

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/recall"
)

// TestRecallBatch: each entry is answered as /recall answers the same body,
// a bad entry gets its problem without failing the others, and the batch's
// own limits are 400s.
func TestRecallBatch(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	ts := newTestServer(t, Config{BatchMax: 6})
	ts.rec.recallHook = func(_ context.Context, req recall.Request) (recall.Result, error) {
		if slices.Contains(req.Genres, "Opera") {
			return recall.Result{}, &recall.Error{Field: "genres[0]", Message: `unknown genre "Opera"`}
		}
		res := fakeResult(req.K)
		res.Items[0].MovieID = movielens.MovieID(req.User.Age) // tell the entries apart
		return res, nil
	}
	entries := []string{
		`{"user":{"age":20},"k":3}`,
		`{"user":{"gender":"X"}}`,
		`{"user":{"age":30},"genres":["Opera"]}`,
		`{"user":{"age":40}}`,
		`{"user":{"age":50},"k":2,"kk":1}`,
		`{"user":{"gender":"F","gender":"M"}}`,
	}
	body := `{"requests":[` + strings.Join(entries, ",") + `]}`
	w := ts.call("POST", "/recall/batch", jsonCT, body)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if n := ts.rec.pinned.Load(); n != 1 { // one model version for every entry
		t.Errorf("the batch pinned the model %d times, want once", n)
	}
	c.checkResponse(t, "POST", "/recall/batch", jsonCT, body, w)
	var got struct{ Results []json.RawMessage }
	mustJSON(t, w.Body.Bytes(), &got)
	if len(got.Results) != len(entries) {
		t.Fatalf("%d results for %d entries", len(got.Results), len(entries))
	}
	for i, e := range entries {
		single := ts.call("POST", "/recall", jsonCT, e)
		var want, have any
		mustJSON(t, single.Body.Bytes(), &want)
		mustJSON(t, got.Results[i], &have)
		if p, ok := want.(map[string]any); ok && single.Code != 200 {
			delete(p, "request_id") // each request has its own id
			delete(p, "instance")
			delete(have.(map[string]any), "request_id")
			delete(have.(map[string]any), "instance")
		}
		if !reflect.DeepEqual(have, want) {
			t.Errorf("entry %d: batch result\n%s\nsingle /recall (%d)\n%s", i, got.Results[i], single.Code, single.Body)
		}
	}
	for _, bad := range []struct{ body, field string }{
		{`{"requests":null}`, "requests"},
		{`{"requests":[]}`, "requests"},
		{`{}`, "requests"},
		{`{"requests":[` + strings.Repeat(`{"user":{}},`, 6) + `{"user":{}}]}`, "requests"},
		{`{"requests":[{"user":{}}],"requests":[{"user":{}}]}`, "requests"},
		// A repeated name in an entry comes first: the top-level repeat is
		// still the batch's problem.
		{`{"requests":[{"user":{},"k":1,"k":2}],"requests":[{"user":{}}]}`, "requests"},
		{`{"requests":{"user":{}}}`, "requests"},
		{`{"requests":[{"user":{}}],"k":3}`, "k"},
	} {
		w := ts.call("POST", "/recall/batch", jsonCT, bad.body)
		if p := decodeProblemBody(t, w); w.Code != 400 || p.Field != bad.field {
			t.Errorf("%.60s: status %d field %q", bad.body, w.Code, p.Field)
		} else if strings.Contains(bad.body, "null") && !strings.Contains(p.Detail, "null is not allowed") {
			t.Errorf("%.60s: detail %q does not say null is not allowed", bad.body, p.Detail)
		}
	}
	w = ts.call("POST", "/recall/batch", jsonCT, "null") // as /recall answers it
	if p := decodeProblemBody(t, w); w.Code != 400 || p.Type != problemTypePrefix+string(codeMalformed) || p.Field != "" {
		t.Errorf("null batch: status %d, problem %+v", w.Code, p)
	}
}

// TestRecallBatchDeadline: entries left when the deadline passes get a
// timeout problem; those answered before keep their results.
func TestRecallBatchDeadline(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{RequestTimeout: 50 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: time.Second})
	calls := 0
	ts.rec.recallHook = func(ctx context.Context, req recall.Request) (recall.Result, error) {
		calls++
		if calls == 2 {
			<-ctx.Done()
		}
		if err := ctx.Err(); err != nil {
			return recall.Result{}, err
		}
		return fakeResult(req.K), nil
	}
	w := ts.call("POST", "/recall/batch", jsonCT, `{"requests":[{"user":{}},{"user":{}},{"user":{}}]}`)
	var got struct {
		Results []struct {
			Type  string
			Items []any
		}
	}
	mustJSON(t, w.Body.Bytes(), &got)
	if w.Code != 200 || len(got.Results) != 3 || got.Results[0].Items == nil ||
		got.Results[1].Type != problemTypePrefix+string(codeTimeout) || got.Results[2].Type != problemTypePrefix+string(codeTimeout) {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}

	// The deadline passes before the first entry is answered: the batch
	// itself times out (it was a 200 of timeout problems).
	ts.rec.recallHook = func(ctx context.Context, req recall.Request) (recall.Result, error) {
		<-ctx.Done()
		return recall.Result{}, ctx.Err()
	}
	w = ts.call("POST", "/recall/batch", jsonCT, `{"requests":[{"user":{}},{"user":{}}]}`)
	if w.Code != http.StatusGatewayTimeout || w.Header().Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(w.Body.String(), problemTypePrefix+string(codeTimeout)) {
		t.Fatalf("every entry timed out: status %d: %s", w.Code, w.Body)
	}
}

// TestCORS: preflights from a listed origin get 204 with the allow headers,
// other origins get none, actual requests carry the origin back, and
// without configured origins there are no CORS headers at all.
func TestCORS(t *testing.T) {
	t.Parallel()
	const origin = "https://app.example.com"
	ts := newTestServer(t, Config{CORSOrigins: []string{origin}})
	preflightTo := func(s *testServer, from, method, path, headers string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodOptions, path, nil)
		req.Header.Set("Origin", from)
		req.Header.Set("Access-Control-Request-Method", method)
		req.Header.Set("Access-Control-Request-Headers", headers)
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		return w
	}
	preflight := func(s *testServer, from string) *httptest.ResponseRecorder {
		return preflightTo(s, from, "POST", "/recall", "content-type")
	}
	w := preflight(ts, origin)
	h := w.Header()
	if w.Code != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != origin ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "content-type") ||
		h.Get("Access-Control-Max-Age") != "600" {
		t.Errorf("allowed preflight: %d %v", w.Code, h)
	}
	for _, other := range []string{"https://evil.example.com", "http://app.example.com", origin + ":8443"} {
		if w := preflight(ts, other); w.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %s allowed: %v", other, w.Header())
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/recall", strings.NewReader(`{"user":{}}`))
	req.Header.Set("Origin", origin)
	req.Header.Set("Content-Type", "application/json") // a browser's body must be typed JSON (TestContentTypes)
	w = httptest.NewRecorder()
	ts.Handler().ServeHTTP(w, req)
	if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != origin ||
		!strings.Contains(w.Header().Get("Access-Control-Expose-Headers"), requestIDHeader) {
		t.Errorf("actual request: %d %v", w.Code, w.Header())
	}
	// A browser script reads only the response headers it is exposed to:
	// every one the contract declares for the API (the explorer's are
	// same-origin).
	c := loadContract(t)
	exposed := strings.Split(strings.ToLower(w.Header().Get("Access-Control-Expose-Headers")), ", ")
	for path, item := range c.doc.Paths.Map() {
		if path == "/" || strings.HasPrefix(path, "/explorer/") {
			continue
		}
		for method, op := range item.Operations() {
			for status, resp := range op.Responses.Map() {
				for name := range resp.Value.Headers {
					if !slices.Contains(exposed, strings.ToLower(name)) {
						t.Errorf("%s %s %s declares %s, which CORS does not expose (%q)", method, path, status, name, exposed)
					}
				}
			}
		}
	}
	// A preflight is counted under the route its request would reach:
	// chi routes on the escaped path, where /mov%69es is none.
	preflightTo(ts, origin, "GET", "/mov%69es", "")
	metrics := ts.call("GET", "/metrics", "", "").Body.String()
	for _, want := range []string{`method="OPTIONS",route="/recall",status="204"`, `method="OPTIONS",route="unmatched"`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack a preflight counted as %s", want)
		}
	}
	if strings.Contains(metrics, `method="OPTIONS",route="/movies"`) {
		t.Error("a preflight to /mov%69es counted under /movies")
	}
	// The catalogue routes, with their bearer token, only where they exist.
	if w := preflightTo(ts, origin, "PUT", "/movies/5", "authorization,content-type"); w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("catalogue off: PUT preflight allowed: %v", w.Header())
	}
	cat := newTestServer(t, Config{CORSOrigins: []string{origin}, CatalogToken: testToken})
	for _, method := range []string{"PUT", "DELETE"} {
		w := preflightTo(cat, origin, method, "/movies/5", "authorization,content-type")
		if w.Header().Get("Access-Control-Allow-Origin") != origin || !strings.Contains(w.Header().Get("Access-Control-Allow-Methods"), method) ||
			!strings.Contains(strings.ToLower(w.Header().Get("Access-Control-Allow-Headers")), "authorization") {
			t.Errorf("catalogue on: %s preflight %d %v", method, w.Code, w.Header())
		}
	}
	off := newTestServer(t, Config{})
	if w := preflight(off, origin); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS off: preflight %d %v", w.Code, w.Header())
	}
	if err := (Config{BodyLimit: 1, BatchMax: 1, CORSOrigins: []string{"https://*.example.com"}}).Validate(); err == nil {
		t.Error("a wildcard origin was accepted")
	}
}

// TestHead: HEAD is answered wherever GET is (RFC 9110), with GET's status
// and headers; a route without GET answers 405 naming what it allows.
func TestHead(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	ts := newTestServer(t, Config{Explorer: true})
	for _, tt := range []struct {
		path  string
		ready bool
		want  int
		allow string
	}{
		{"/healthz", true, 200, ""}, {"/readyz", true, 200, ""}, {"/readyz", false, 503, ""}, {"/healthz", false, 200, ""},
		{"/model", true, 200, ""}, {"/movies?q=a", true, 200, ""}, {"/metrics", true, 200, ""}, {"/", true, 200, ""},
		{"/explorer/app.js", true, 200, ""}, {"/nope", true, 404, ""}, {"/recall", true, 405, "POST"},
	} {
		ts.rec.setReady(tt.ready)
		w := ts.call(http.MethodHead, tt.path, "", "")
		if w.Code != tt.want || w.Header().Get(requestIDHeader) == "" || w.Header().Get("Allow") != tt.allow {
			t.Errorf("HEAD %s (ready %v): %d %v", tt.path, tt.ready, w.Code, w.Header())
		}
		if item := c.doc.Paths.Find(tt.path); item != nil && item.Head != nil { // the probes' HEAD operations
			c.checkResponse(t, http.MethodHead, tt.path, "", "", w)
		}
	}
}

// TestProblemTypesInContract walks the server's table of problem codes:
// every type it can emit is in openapi.yaml's Problem enum, and every
// status is a response the contract lists for /recall (which can answer
// all of them but 401 and the journal's 503, which only the catalogue
// changes answer).
func TestProblemTypesInContract(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	var enum []string
	for _, v := range c.doc.Components.Schemas["Problem"].Value.Properties["type"].Value.Enum {
		enum = append(enum, fmt.Sprint(v))
	}
	codes := []code{codeMalformed, codeInvalid, codeNotFound, codeMethod, codeTooLarge, codeMediaType, codeInternal, codeUnavailable, codeTimeout, codeReadTimeout, codeUnauthorized, codeJournal, codeOverloaded}
	if len(enum) != len(codes) {
		t.Errorf("openapi.yaml lists %d problem types, the server has %d codes", len(enum), len(codes))
	}
	recallOp := c.doc.Paths.Find("/recall").Post
	for _, cd := range codes {
		if !slices.Contains(enum, problemTypePrefix+string(cd)) {
			t.Errorf("problem type %s is not in openapi.yaml", cd)
		}
		status := problems[cd].status
		op := recallOp
		if cd == codeUnauthorized || cd == codeJournal {
			op = c.doc.Paths.Find("/movies/{movie_id}").Put
		}
		if op.Responses.Status(status) == nil {
			t.Errorf("status %d (%s) is not a /recall response in openapi.yaml", status, cd)
		}
	}
}

// TestProblemExamples: the problems openapi.yaml shows are those the
// server answers to the requests they stand for (request ids aside).
func TestProblemExamples(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	for _, tt := range []struct {
		name, method, path, body string
		ready                    bool
		example                  func() any
	}{
		{"invalid", "POST", "/recall", `{"user":{"gender":"X"}}`, true, func() any {
			return c.doc.Components.Responses["BadRequest"].Value.Content.Get("application/problem+json").Examples["invalid"].Value.Value
		}},
		{"malformed", "POST", "/recall", `{"user":}`, true, func() any {
			return c.doc.Components.Responses["BadRequest"].Value.Content.Get("application/problem+json").Examples["malformed"].Value.Value
		}},
		{"not ready", "GET", "/readyz", "", false, func() any {
			return c.doc.Components.Responses["NotReady"].Value.Content.Get("application/problem+json").Example
		}},
		{"unknown movie", "GET", "/movies/99999/similar", "", true, func() any {
			return c.doc.Paths.Find("/movies/{movie_id}/similar").Get.Responses.Status(404).Value.Content.Get("application/problem+json").Example
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, Config{})
			ts.rec.setReady(tt.ready)
			w := ts.call(tt.method, tt.path, jsonCT, tt.body)
			var got map[string]any
			mustJSON(t, w.Body.Bytes(), &got)
			want, ok := tt.example().(map[string]any)
			if !ok {
				t.Fatalf("no example: %v", tt.example())
			}
			want = maps.Clone(want)
			delete(want, "request_id")
			delete(got, "request_id")
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s %s %s:\nserver   %v\nexample  %v", tt.method, tt.path, tt.body, got, want)
			}
		})
	}
}
