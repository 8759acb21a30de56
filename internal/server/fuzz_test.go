package server

import (
	"encoding/json"
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

// fuzzHandler posts body to path and checks that the answer is a 200 or a
// 4xx problem, matching openapi.yaml, and that a request the server
// answers is one the contract accepts; any 5xx or panic fails.
func fuzzHandler(f *testing.F, path string) {
	cfg := testConfig()
	cfg.BodyLimit = 64 << 10
	ts := newTestServer(f, cfg)
	api := loadContract(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := newRequest("POST", path, jsonCT, string(body))
		w := httptest.NewRecorder()
		ts.Handler().ServeHTTP(w, req)
		api.checkResponse(t, "POST", path, jsonCT, string(body), w)
		switch {
		case w.Code == 200:
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("200 with invalid JSON: %s", w.Body)
			}
			if err := api.requestValid(t, "POST", path, jsonCT, string(body)); err != nil {
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
	fuzzHandler(f, "/recall")
}

func FuzzDecodeScore(f *testing.F) {
	fuzzBodies(f, "/score")
	fuzzHandler(f, "/score")
}
