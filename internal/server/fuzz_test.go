package server

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fuzzBodies seeds the fuzzers with every bad request and a few good ones.
func fuzzBodies(f *testing.F, path string) {
	for _, tt := range badRequests() {
		if (tt.path == "" && path == "/recall" || tt.path == path) && len(tt.body) < 4096 {
			f.Add([]byte(tt.body))
		}
	}
	f.Add([]byte(`{"user":{"user_id":123,"gender":"F","age":25,"occupation":"programmer","zip":"94043"},"k":10,"offset":0,"exclude_seen":true,"exclude_movie_ids":[1,2],"genres":["Comedy"]}`))
	f.Add([]byte(`{"user":{"user_id":1},"movie_ids":[1,2,3]}`))
	f.Add([]byte(`{"\u0075ser":{"\u0067ender":"M"},"movie_ids":[5]}`))
}

// fuzzHandler sends body to path (with the catalogue's bearer token) and
// checks that the answer is a 2xx or a 4xx problem, matching openapi.yaml,
// and that a request the server carries out is one the contract accepts;
// any 5xx or panic fails.
func fuzzHandler(f *testing.F, method, path string) {
	cfg := testConfig()
	cfg.BodyLimit = 64 << 10
	cfg.CatalogToken = testToken
	ts := newTestServer(f, cfg)
	api := loadContract(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := ts.callAuth(method, path, "Bearer "+testToken, string(body))
		w := httptest.NewRecorder()
		ts.Handler().ServeHTTP(w, req)
		api.checkResponse(t, method, path, jsonCT, string(body), w)
		switch {
		case w.Code == 200 || w.Code == 201:
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%d with invalid JSON: %s", w.Code, w.Body)
			}
			if path == "/recall/batch" && strings.Contains(w.Body.String(), `"type":"`+problemTypePrefix) {
				return // an entry refused on its own: the contract types entries as valid requests
			}
			if err := api.requestValid(t, method, path, jsonCT, string(body)); err != nil {
				t.Fatalf("the server answers a request openapi.yaml refuses: %v\n%s", err, body)
			}
		case w.Code >= 400 && w.Code < 500:
			var p problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != w.Code ||
				!strings.HasPrefix(p.Type, problemTypePrefix) {
				t.Fatalf("bad problem %d: %s", w.Code, w.Body)
			}
		default:
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body)
		}
	})
}

func FuzzDecodeRecall(f *testing.F) {
	fuzzBodies(f, "/recall")
	fuzzHandler(f, "POST", "/recall")
}

func FuzzDecodeScore(f *testing.F) {
	fuzzBodies(f, "/score")
	fuzzHandler(f, "POST", "/score")
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`{"requests":[{"user":{"user_id":1},"k":3},{"user":{"age":30,"recent_movie_ids":[1,2]},"genres":["Drama"]}]}`))
	f.Add([]byte(`{"requests":[]}`))
	f.Add([]byte(`{"requests":[{"user":{"gender":"X"}}]}`))
	f.Add([]byte(`{"requests":[{"user":{}},{"k":0}]}`))
	fuzzHandler(f, "POST", "/recall/batch")
}

func FuzzDecodeMovie(f *testing.F) {
	f.Add([]byte(`{"title":"Arrival (2016)","genres":["Drama","Sci-Fi"],"year":2016}`))
	f.Add([]byte(`{"title":"x","genres":["Drama"]}`))
	f.Add([]byte(`{"title":"a\u0000b","genres":["Drama"]}`))
	f.Add([]byte(`{"title":"x","genres":["Drama"],"year":"1999"}`))
	f.Add([]byte(`{"title":"x","genres":["Drama","Western"],"rating":5}`))
	fuzzHandler(f, "PUT", "/movies/200001")
}

// FuzzRequestTarget sends bodiless requests to any path and query net/http
// parses: every answer is a 2xx, 3xx or 304, or a 4xx problem (no 5xx).
func FuzzRequestTarget(f *testing.F) {
	for _, target := range []string{"/recall", "/movies?q=toy&limit=3", "/movies/5/similar?k=2", "/%FF",
		"/movies?%FF=1", "/movies/%FF/similar", "/movies/1", "/explorer/app.js", "/readyz", "/model?x=1", "//a/../b"} {
		f.Add("GET", target)
		f.Add("DELETE", target)
	}
	cfg := testConfig()
	cfg.CatalogToken = testToken
	cfg.Explorer = true
	ts := newTestServer(f, cfg)
	f.Fuzz(func(t *testing.T, method, target string) {
		raw := method + " " + target + " HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + testToken + "\r\n\r\n"
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return // net/http's server answers 400 itself
		}
		w := httptest.NewRecorder()
		ts.Handler().ServeHTTP(w, req)
		if w.Code < 400 {
			return
		}
		var p problem
		if w.Code >= 500 || w.Header().Get("Content-Type") != "application/problem+json" ||
			json.Unmarshal(w.Body.Bytes(), &p) != nil || p.Status != w.Code || !strings.HasPrefix(p.Type, problemTypePrefix) {
			t.Fatalf("%s %q: %d %q: %s", method, target, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
	})
}
