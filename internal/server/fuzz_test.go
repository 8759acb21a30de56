package server

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
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

// FuzzFastDecode checks the fast path against the general decoder: whatever
// fastDecode accepts, the general decoder accepts too, with the same result.
// (When the fast path gives up, decodeJSON runs the general decoder, so its
// refusals need no check here.)
func FuzzFastDecode(f *testing.F) {
	fuzzBodies(f, "/recall")
	fuzzBodies(f, "/score")
	for _, s := range []string{
		`{"user":{}}`, ` { "user" : { "age" : 0 } , "k" : -0 } `, `{"user":{"user_id":1},"genres":[],"exclude_movie_ids":[]}`,
		`{"user":{"zip":"é€"},"k":1e1}`, `{"user":{},"k":1.0}`, `{"user":{},"k":01}`, `{"user":{},"k":9223372036854775808}`,
		`{"user":{},"exclude_seen":true}`, `{"user":{},"exclude_seen":nul}`, `{"user":{"gender":"F","gender":"M"}}`,
		`{"user":{}, "k":10}x`, `{"user":{"Gender":"F"}}`, `{"user":{"gender":"a\tb"}}`, `{"movie_ids":[1,2,-3],"user":{}}`,
	} {
		f.Add([]byte(s))
	}
	recallMembers, scoreMembers := membersOf(reflect.TypeFor[recallBody]()), membersOf(reflect.TypeFor[scoreBody]())
	f.Fuzz(func(t *testing.T, body []byte) {
		if !utf8.Valid(body) { // decodeJSON refuses it before either decoder
			return
		}
		var fr, gr recallBody
		if fastDecode(body, &fr) {
			if err := decodeGeneral(body, &gr, recallMembers); err != nil {
				t.Fatalf("fast path accepted a /recall body the general decoder refuses (%v): %q", err.detail, body)
			}
			if !reflect.DeepEqual(fr, gr) {
				t.Fatalf("/recall %q: fast %+v, general %+v", body, fr, gr)
			}
		}
		var fs, gs scoreBody
		if fastDecode(body, &fs) {
			if err := decodeGeneral(body, &gs, scoreMembers); err != nil {
				t.Fatalf("fast path accepted a /score body the general decoder refuses (%v): %q", err.detail, body)
			}
			if !reflect.DeepEqual(fs, gs) {
				t.Fatalf("/score %q: fast %+v, general %+v", body, fs, gs)
			}
		}
	})
}

// The fast path takes the bodies clients send, and gives up on the rest.
func TestFastDecodeCoverage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		body string
		fast bool
	}{
		{`{"user":{"user_id":123,"gender":"F","age":25,"occupation":"programmer","zip":"94043"},"k":10,"offset":0,"exclude_seen":true,"exclude_movie_ids":[1,2],"genres":["Comedy"]}`, true},
		{"{\n  \"user\": {}\n}\n", true},
		{`{"user":{"gender":"M"},"k":100,"genres":[]}`, true},
		{`{"user":{"gender":"\u004d"}}`, false}, // escape
		{`{"user":null}`, false},
		{`{"user":{},"k":10.0}`, false},
		{`{"user":{},"K":10}`, false},
		{`{"user":{},"k":1,"k":2}`, false},
		{`{"user":{},"extra":1}`, false},
		{`{"user":{}}{}`, false},
	} {
		var b recallBody
		if got := fastDecode([]byte(tt.body), &b); got != tt.fast {
			t.Errorf("fastDecode(%s) = %v, want %v", tt.body, got, tt.fast)
		}
	}
	var s scoreBody
	if !fastDecode([]byte(`{"user":{"user_id":1},"movie_ids":[1,2,3]}`), &s) || len(s.MovieIDs.v) != 3 || s.User.v.UserID.v != 1 {
		t.Errorf("score body: %+v", s)
	}
}
