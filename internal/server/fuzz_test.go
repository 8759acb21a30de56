package server

import (
	"bytes"
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
// 4xx problem; any 5xx or panic fails.
func fuzzHandler(f *testing.F, path string) {
	ts := newTestServer(f, Config{BodyLimit: 64 << 10})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := newRequest("POST", path, jsonCT, string(body))
		w := httptest.NewRecorder()
		ts.Handler().ServeHTTP(w, req)
		switch {
		case w.Code == 200:
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("200 with invalid JSON: %s", w.Body)
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

// FuzzPresentMatchesEncodingJSON checks that present's direct scalar
// parsing agrees with encoding/json on every valid JSON value.
func FuzzPresentMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{`1`, `-0`, `1.5`, `1e3`, `99999999999999999999`, `"a"`, `"\u00e9\n"`, `"é"`, `true`, `false`, `[1]`, `{}`, `"1"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) || string(bytes.TrimSpace(b)) == "null" {
			return
		}
		b = bytes.TrimSpace(b)
		checkPresent[int64](t, b)
		checkPresent[string](t, b)
		checkPresent[bool](t, b)
	})
}

func checkPresent[T comparable](t *testing.T, b []byte) {
	var want T
	wantErr := json.Unmarshal(b, &want)
	var got present[T]
	gotErr := got.UnmarshalJSON(b)
	if (gotErr == nil) != (wantErr == nil) || (gotErr == nil && (!got.set || got.v != want)) {
		t.Fatalf("%T %q: present gives %v, %v; encoding/json %v, %v", want, b, got.v, gotErr, want, wantErr)
	}
}
