package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// badRequest is a request the server must refuse with a problem.
type badRequest struct {
	name   string
	path   string // default /recall
	ct     string // default application/json; "-" for none
	header map[string]string
	body   string
	stream bool // send without Content-Length

	status int    // default 400
	code   code   // default invalid-request for 400
	field  string // expected problem field ("" for none)
	// schemaBlind marks refusals openapi.yaml cannot express as a schema
	// (the JSON value is schema-valid); every other refused body must also
	// be refused by the contract.
	schemaBlind bool
}

func ids(n int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(i + 1))
	}
	b.WriteByte(']')
	return b.String()
}

func repeatJSON(item string, n int) string {
	return "[" + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + "]"
}

func badRequests() []badRequest {
	big := `{"user":{},"genres":["` + strings.Repeat("a", 2<<20) + `"]}`
	return []badRequest{
		// The body is not one JSON object.
		{name: "empty body", body: "", code: codeMalformed},
		{name: "whitespace body", body: " \n\t ", code: codeMalformed},
		{name: "not JSON", body: "hello", code: codeMalformed},
		{name: "truncated", body: `{"user":{}`, code: codeMalformed},
		{name: "trailing garbage", body: `{"user":{}} x`, code: codeMalformed},
		{name: "two values", body: `{"user":{}}{"user":{}}`, code: codeMalformed},
		{name: "trailing brace", body: `{"user":{}}}`, code: codeMalformed},
		{name: "trailing comma", body: `{"user":{},}`, code: codeMalformed},
		{name: "single quotes", body: `{'user':{}}`, code: codeMalformed},
		{name: "comment", body: `{"user":{} /* hi */}`, code: codeMalformed},
		{name: "a long unknown member, named shortened", body: `{"user":{},"` + strings.Repeat("a", 300) + `":1}`, field: strings.Repeat("a", maxField) + "…"},
		{name: "bare NaN", body: `{"user":{},"k":NaN}`, code: codeMalformed},
		{name: "top-level array", body: `[{"user":{}}]`, code: codeMalformed},
		{name: "top-level null", body: `null`, code: codeMalformed},
		{name: "top-level string", body: `"user"`, code: codeMalformed},
		{name: "invalid UTF-8", body: "{\"user\":{\"zip\":\"9\xff4\"}}", code: codeMalformed},
		{name: "invalid UTF-8 in key", body: "{\"us\xc0er\":{}}", code: codeMalformed},
		// Members.
		{name: "missing user", body: `{}`, field: "user"},
		{name: "missing user with k", body: `{"k":5}`, field: "user"},
		{name: "null user", body: `{"user":null}`, field: "user"},
		{name: "user is a string", body: `{"user":"123"}`, field: "user"},
		{name: "user is an array", body: `{"user":[1]}`, field: "user"},
		{name: "unknown member", body: `{"user":{},"kk":1}`, field: "kk"},
		{name: "unknown nested member", body: `{"user":{"name":"x"}}`, field: "user.name"},
		{name: "unknown member with an empty name", body: `{"":1}`, field: ""}, // an object all the same, not malformed
		{name: "unknown nested member named like an index", body: `{"user":{"5":1}}`, field: "user.5"},
		{name: "member in other case", body: `{"user":{},"K":5}`, field: "K"},
		{name: "nested member in other case", body: `{"user":{"Gender":"F"}}`, field: "user.Gender"},
		{name: "repeated member", body: `{"user":{},"k":1,"k":2}`, field: "k", schemaBlind: true},
		{name: "repeated member via escape", body: `{"user":{},"k":1,"\u006b":2}`, field: "k", schemaBlind: true},
		{name: "repeated nested member", body: `{"user":{"age":20,"age":30}}`, field: "user.age", schemaBlind: true},
		// k and offset.
		{name: "k zero", body: `{"user":{},"k":0}`, field: "k"},
		{name: "k too large", body: `{"user":{},"k":1001}`, field: "k"},
		{name: "k negative", body: `{"user":{},"k":-1}`, field: "k"},
		{name: "k string", body: `{"user":{},"k":"10"}`, field: "k"},
		{name: "k NaN string", body: `{"user":{},"k":"NaN"}`, field: "k"},
		{name: "k fraction", body: `{"user":{},"k":1.5}`, field: "k"},
		{name: "k exponent overflow", body: `{"user":{},"k":1e400}`, field: "k"},
		{name: "k beyond int64", body: `{"user":{},"k":99999999999999999999}`, field: "k"},
		{name: "k null", body: `{"user":{},"k":null}`, field: "k"},
		{name: "k bool", body: `{"user":{},"k":true}`, field: "k"},
		{name: "k object", body: `{"user":{},"k":{"n":1}}`, field: "k"},
		{name: "offset negative", body: `{"user":{},"offset":-1}`, field: "offset"},
		{name: "offset too large", body: `{"user":{},"offset":10001}`, field: "offset"},
		{name: "offset Infinity string", body: `{"user":{},"offset":"Infinity"}`, field: "offset"},
		// exclude_seen, exclude_movie_ids, genres.
		{name: "exclude_seen string", body: `{"user":{},"exclude_seen":"yes"}`, field: "exclude_seen"},
		{name: "exclude_seen number", body: `{"user":{},"exclude_seen":1}`, field: "exclude_seen"},
		{name: "exclude_seen null", body: `{"user":{},"exclude_seen":null}`, field: "exclude_seen"},
		{name: "exclude ids not an array", body: `{"user":{},"exclude_movie_ids":5}`, field: "exclude_movie_ids"},
		{name: "exclude ids strings", body: `{"user":{},"exclude_movie_ids":["1"]}`, field: "exclude_movie_ids"},
		{name: "exclude ids zero", body: `{"user":{},"exclude_movie_ids":[0]}`, field: "exclude_movie_ids"},
		{name: "exclude ids negative", body: `{"user":{},"exclude_movie_ids":[3,-7]}`, field: "exclude_movie_ids"},
		{name: "exclude ids null element", body: `{"user":{},"exclude_movie_ids":[1,null]}`, field: "exclude_movie_ids"},
		{name: "exclude ids beyond int32", body: `{"user":{},"exclude_movie_ids":[2147483648]}`, field: "exclude_movie_ids"},
		{name: "exclude ids fraction", body: `{"user":{},"exclude_movie_ids":[1.0]}`, field: "exclude_movie_ids", schemaBlind: true}, // JSON Schema counts 1.0 as an integer
		{name: "exclude ids too many", body: `{"user":{},"exclude_movie_ids":` + ids(10001) + `}`, field: "exclude_movie_ids"},
		{name: "exclude ids nested arrays", body: `{"user":{},"exclude_movie_ids":[[1]]}`, field: "exclude_movie_ids"},
		{name: "genres numbers", body: `{"user":{},"genres":[1]}`, field: "genres"},
		{name: "genres empty name", body: `{"user":{},"genres":[""]}`, field: "genres"},
		{name: "genres null element", body: `{"user":{},"genres":["Comedy",null]}`, field: "genres"},
		{name: "genres too many", body: `{"user":{},"genres":` + repeatJSON(`"Drama"`, 65) + `}`, field: "genres"},
		{name: "genres deeply nested", body: `{"user":{},"genres":` + strings.Repeat("[", 500) + strings.Repeat("]", 500) + `}`, field: "genres"},
		{name: "genres object", body: `{"user":{},"genres":{"Comedy":true}}`, field: "genres"},
		{name: "genre name too long", body: `{"user":{},"genres":["` + strings.Repeat("é", 65) + `"]}`, field: "genres"},
		// The user's features.
		{name: "user_id string", body: `{"user":{"user_id":"123"}}`, field: "user.user_id"},
		{name: "user_id negative", body: `{"user":{"user_id":-5}}`, field: "user.user_id"},
		{name: "user_id zero", body: `{"user":{"user_id":0}}`, field: "user.user_id"},
		{name: "user_id fraction", body: `{"user":{"user_id":1.5}}`, field: "user.user_id"},
		{name: "user_id beyond int32", body: `{"user":{"user_id":2147483648}}`, field: "user.user_id"},
		{name: "user_id null", body: `{"user":{"user_id":null}}`, field: "user.user_id"},
		{name: "gender unknown", body: `{"user":{"gender":"X"}}`, field: "user.gender"},
		{name: "gender lower case", body: `{"user":{"gender":"f"}}`, field: "user.gender"},
		{name: "gender empty", body: `{"user":{"gender":""}}`, field: "user.gender"},
		{name: "gender number", body: `{"user":{"gender":1}}`, field: "user.gender"},
		{name: "gender null", body: `{"user":{"gender":null}}`, field: "user.gender"},
		{name: "age negative", body: `{"user":{"age":-1}}`, field: "user.age"},
		{name: "age zero", body: `{"user":{"age":0}}`, field: "user.age"},
		{name: "age too old", body: `{"user":{"age":121}}`, field: "user.age"},
		{name: "age huge", body: `{"user":{"age":1e9}}`, field: "user.age"},
		{name: "age string", body: `{"user":{"age":"25"}}`, field: "user.age"},
		{name: "age NaN string", body: `{"user":{"age":"NaN"}}`, field: "user.age"},
		{name: "age object", body: `{"user":{"age":{"years":25}}}`, field: "user.age"},
		{name: "occupation unknown", body: `{"user":{"occupation":"astronaut"}}`, field: "user.occupation", schemaBlind: true},
		{name: "occupation number", body: `{"user":{"occupation":7}}`, field: "user.occupation"},
		{name: "occupation too long", body: `{"user":{"occupation":"` + strings.Repeat("p", 65) + `"}}`, field: "user.occupation"},
		{name: "zip empty", body: `{"user":{"zip":""}}`, field: "user.zip"},
		{name: "zip punctuation", body: `{"user":{"zip":"!!!"}}`, field: "user.zip"},
		{name: "zip number", body: `{"user":{"zip":94043}}`, field: "user.zip"},
		{name: "zip too long", body: `{"user":{"zip":"12345678901234567"}}`, field: "user.zip"},
		{name: "recent ids not an array", body: `{"user":{"recent_movie_ids":7}}`, field: "user.recent_movie_ids"},
		{name: "recent ids zero", body: `{"user":{"recent_movie_ids":[3,0]}}`, field: "user.recent_movie_ids"},
		{name: "recent ids repeated", body: `{"user":{"recent_movie_ids":[3,5,3]}}`, field: "user.recent_movie_ids"},
		{name: "recent ids null element", body: `{"user":{"recent_movie_ids":[3,null]}}`, field: "user.recent_movie_ids"},
		{name: "recent ids too many", body: `{"user":{"recent_movie_ids":` + ids(51) + `}}`, field: "user.recent_movie_ids", schemaBlind: true}, // the limit is configured
		// Transport.
		{name: "text/plain", ct: "text/plain", body: `{"user":{}}`, status: 415, code: codeMediaType},
		{name: "xml content type", ct: "application/xml", body: `{"user":{}}`, status: 415, code: codeMediaType},
		// curl -d sends application/x-www-form-urlencoded: the body is read as JSON, so a form body is malformed JSON.
		{name: "form body under curl's default type", ct: "application/x-www-form-urlencoded", body: `user=1`, status: 400, code: codeMalformed},
		{name: "no content type, form body", ct: "-", body: `user=1`, status: 400, code: codeMalformed},
		{name: "latin1 charset", ct: "application/json; charset=latin1", body: `{"user":{}}`, status: 415, code: codeMediaType},
		{name: "bad media type syntax", ct: "application/json; ;", body: `{"user":{}}`, status: 415, code: codeMediaType},
		{name: "gzip encoded", header: map[string]string{"Content-Encoding": "gzip"}, body: `{"user":{}}`, status: 415, code: codeMediaType},
		{name: "oversized body", body: big, status: 413, code: codeTooLarge},
		{name: "oversized streamed body", body: big, stream: true, status: 413, code: codeTooLarge},
		// /score.
		{name: "score missing movie_ids", path: "/score", body: `{"user":{}}`, field: "movie_ids"},
		{name: "score missing user", path: "/score", body: `{"movie_ids":[1]}`, field: "user"},
		{name: "score empty movie_ids", path: "/score", body: `{"user":{},"movie_ids":[]}`, field: "movie_ids"},
		{name: "score duplicate ids", path: "/score", body: `{"user":{},"movie_ids":[1,2,1]}`, field: "movie_ids"},
		{name: "score too many ids", path: "/score", body: `{"user":{},"movie_ids":` + ids(1001) + `}`, field: "movie_ids"},
		{name: "score ids as string", path: "/score", body: `{"user":{},"movie_ids":"1,2"}`, field: "movie_ids"},
		{name: "score id fraction", path: "/score", body: `{"user":{},"movie_ids":[1.5]}`, field: "movie_ids"},
		{name: "score id negative", path: "/score", body: `{"user":{},"movie_ids":[-1]}`, field: "movie_ids"},
		{name: "score movie_ids null", path: "/score", body: `{"user":{},"movie_ids":null}`, field: "movie_ids"},
		{name: "score unknown member k", path: "/score", body: `{"user":{},"movie_ids":[1],"k":3}`, field: "k"},
		{name: "score bad gender", path: "/score", body: `{"user":{"gender":"x"},"movie_ids":[1]}`, field: "user.gender"},
		{name: "score trailing data", path: "/score", body: `{"user":{},"movie_ids":[1]}]`, code: codeMalformed},
		// The input of these routes is the body: a query parameter (k=3,
		// a misplaced member) would be ignored without a word.
		{name: "query parameter k", path: "/recall?k=3", body: `{"user":{}}`, field: "k", schemaBlind: true},
		{name: "query parameter on a valid body", path: "/recall?user_id=5", body: `{"user":{"user_id":5},"k":2}`, field: "user_id", schemaBlind: true},
		{name: "empty query parameter", path: "/recall?debug", body: `{"user":{}}`, field: "debug", schemaBlind: true},
		{name: "batch query parameter", path: "/recall/batch?k=3", body: `{"requests":[{"user":{}}]}`, field: "k", schemaBlind: true},
		{name: "score query parameter", path: "/score?movie_ids=1", body: `{"user":{},"movie_ids":[1]}`, field: "movie_ids", schemaBlind: true},
		{name: "malformed query on a body route", path: "/recall?k=%zz", body: `{"user":{}}`, field: "k", schemaBlind: true},
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	cases := badRequests()
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	seen := map[string]bool{}
	for _, tt := range cases {
		if seen[tt.name] {
			t.Fatalf("case %q twice", tt.name)
		}
		seen[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path, ct := tt.path, tt.ct
			if path == "" {
				path = "/recall"
			}
			switch ct {
			case "":
				ct = jsonCT
			case "-":
				ct = ""
			}
			status, wantCode := tt.status, tt.code
			if status == 0 {
				status = http.StatusBadRequest
			}
			if wantCode == "" {
				wantCode = codeInvalid
			}

			ts := newTestServer(t, Config{})
			req := newRequest("POST", path, ct, tt.body)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			if tt.stream {
				req.ContentLength = -1
				req.Body = io.NopCloser(strings.NewReader(tt.body))
			}
			w := httptest.NewRecorder()
			ts.Handler().ServeHTTP(w, req)

			if w.Code != status {
				t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body)
			}
			p := decodeProblemBody(t, w)
			if p.Type != problemTypePrefix+string(wantCode) {
				t.Errorf("type %q, want code %q (detail %q)", p.Type, wantCode, p.Detail)
			}
			if p.Field != tt.field {
				t.Errorf("field %q, want %q (detail %q)", p.Field, tt.field, p.Detail)
			}
			if len(p.Detail) > 400 {
				t.Errorf("detail is %d bytes long", len(p.Detail))
			}
			c.checkResponse(t, "POST", path, ct, tt.body, w)

			// The contract must refuse what the server refuses, unless it cannot
			// say so. (kin-openapi reads bodies with encoding/json, so it only
			// judges bodies that are valid JSON with the right media type.)
			if status == 400 && wantCode == codeInvalid {
				err := c.requestValid(t, "POST", path, ct, tt.body)
				if tt.schemaBlind && err != nil {
					t.Errorf("case marked schemaBlind, but the contract refuses it: %v", err)
				}
				if !tt.schemaBlind && err == nil {
					t.Errorf("the server refuses a request that openapi.yaml accepts")
				}
			}
			if n := ts.rec.calls(); n != 0 {
				t.Errorf("a refused request reached the Recaller (%d calls)", n)
			}
		})
	}
}

// TestBadRequestDetails spot-checks that messages point at the problem.
func TestBadRequestDetails(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{})
	tests := []struct{ body, want string }{
		{"{\n  \"user\": {},\n  \"k\": 1,\n}", "line 3, column 9"},
		{`{"user":{},"k":"10"}`, "k: expected integer"},
		{`{"user":{},"k":2.5}`, "k must be an integer written without a fraction or exponent, got 2.5"},
		{`{"user":{"age":25.0}}`, "user.age must be an integer written without a fraction or exponent, got 25.0"},
		{`{"user":{"user_id":3000000000}}`, "user.user_id is out of range (at most 2147483647), got 3000000000"},
		{`{"user":{},"exclude_movie_ids":[1,-3000000000]}`, "exclude_movie_ids[1] is out of range, got -3000000000"},
		// A number past int64 states the contract's range, not int64's.
		{`{"user":{},"k":99999999999999999999}`, "k must be between 1 and 1000, got 99999999999999999999"},
		{`{"user":{},"offset":-99999999999999999999}`, "offset must be between 0 and 10000, got -99999999999999999999"},
		{`{"user":{"age":99999999999999999999}}`, "user.age must be between 1 and 120, got 99999999999999999999"},
		{`{"user":{},"k":1e999}`, "k must be an integer written without a fraction or exponent, got 1e999"},
		{`{"user":{},"exclude_seen":1}`, "exclude_seen: expected boolean, got number"},
		{`{"user":{"5":1}}`, `unknown member "user.5"`},
		{`{"user":{},"exclude_movie_ids":[3,-7]}`, "exclude_movie_ids[1]"},
		{"{\"user\":{\"zip\":\"9\xff\"}}", "not valid UTF-8 at line 1, column 18 (byte 17)"},
		{`{"user":{},"k":1} x`, "at line 1, column 19 (byte 18): invalid character 'x' after top-level value"},
		{`{"user":{"age":null}}`, "user.age: null is not allowed"},
		// A required member's null: the hint said to omit it, and omitting
		// it is the next 400.
		{`{"user":null}`, "user: null is not allowed (send a value, or omit the member if it is optional)"},
		{`{"user":{"gender":"` + strings.Repeat("Q", 1000) + `"}}`, `got "QQQQ`},
	}
	for _, tt := range tests {
		w := ts.call("POST", "/recall", jsonCT, tt.body)
		p := decodeProblemBody(t, w)
		if !strings.Contains(p.Detail, tt.want) {
			t.Errorf("%q: detail %q lacks %q", tt.body, p.Detail, tt.want)
		}
	}
	cat := newTestServer(t, Config{CatalogToken: testToken})
	w := newRecorder()
	cat.Handler().ServeHTTP(w, cat.callAuth("PUT", "/movies/5", "Bearer "+testToken, `{"title":"x","genres":["Drama"],"year":99999999999999999999}`))
	if p := decodeProblemBody(t, w); p.Field != "year" || !strings.Contains(p.Detail, "year must be between 1870 and 2100, got 99999999999999999999") {
		t.Errorf("year past int64: %+v", p)
	}
	// Scores report the repeated index.
	w = ts.call("POST", "/score", jsonCT, `{"user":{},"movie_ids":[4,5,4]}`)
	if p := decodeProblemBody(t, w); !strings.Contains(p.Detail, "movie_ids[2] repeats movie_ids[0]") {
		t.Errorf("detail %q", p.Detail)
	}
}

// TestContentTypes: JSON, and the types that carry it by accident (none,
// and the form type curl -d and jQuery send, with or without a UTF-8
// charset), are read; anything else is a 415. From a browser (an Origin
// header) only JSON: the others need no CORS preflight, so a page of any
// origin could make its visitors' browsers send them.
func TestContentTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ct              string
		ok, okInBrowser bool
	}{
		{"application/json", true, true},
		{"application/json; charset=UTF-8", true, true},
		{"", true, false},
		{"application/x-www-form-urlencoded", true, false},
		{"application/x-www-form-urlencoded; charset=UTF-8", true, false},
		{"application/x-www-form-urlencoded; charset=latin1", false, false},
		{"multipart/form-data; boundary=x", false, false},
		{"text/plain", false, false},
	} {
		h := http.Header{}
		if tc.ct != "" {
			h.Set("Content-Type", tc.ct)
		}
		if err := checkContentType(h); (err == nil) != tc.ok {
			t.Errorf("Content-Type %q: %v, want accepted %v", tc.ct, err, tc.ok)
		}
		h.Set("Origin", "https://elsewhere.example")
		if err := checkContentType(h); (err == nil) != tc.okInBrowser {
			t.Errorf("Content-Type %q from a browser: %v, want accepted %v", tc.ct, err, tc.okInBrowser)
		}
	}
}
