package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/recall"
)

const jsonCT = "application/json"

func TestEndpoints(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	tests := []struct {
		name, method, path, ct, body string
		want                         int
		check                        func(t *testing.T, body []byte)
	}{
		{name: "recall minimal", method: "POST", path: "/recall", ct: jsonCT, body: `{"user":{}}`, want: 200,
			check: func(t *testing.T, body []byte) {
				var r recallResponse
				mustJSON(t, body, &r)
				if len(r.Items) != 10 || r.Backend != "exact" || !r.KnownUser || r.ModelVersion != "v-test" {
					t.Errorf("response %+v", r)
				}
			}},
		{name: "recall full", method: "POST", path: "/recall", ct: "application/json; charset=UTF-8",
			body: `{"user":{"user_id":123,"gender":"F","age":25,"occupation":"programmer","zip":"94043"},
			        "k":3,"offset":5,"exclude_seen":false,"exclude_movie_ids":[1,2,2],"genres":["Comedy"]}`, want: 200,
			check: func(t *testing.T, body []byte) {
				var r recallResponse
				mustJSON(t, body, &r)
				if len(r.Items) != 3 || r.Items[0].MovieID != 1 || r.Items[0].Year != 1999 {
					t.Errorf("response %+v", r)
				}
			}},
		{name: "recall one item", method: "POST", path: "/recall", ct: jsonCT, body: "\n {\"user\":{\"user_id\":2147483647},\"k\":1} \n", want: 200},
		{name: "recall k max", method: "POST", path: "/recall", ct: jsonCT, body: `{"user":{"age":120},"k":1000,"offset":10000}`, want: 200},
		// maxLength counts characters, as JSON Schema does: 64 two-byte ones are a genre name.
		{name: "recall genre of 64 characters", method: "POST", path: "/recall", ct: jsonCT, body: `{"user":{},"genres":["` + strings.Repeat("é", 64) + `"]}`, want: 200},
		{name: "score", method: "POST", path: "/score", ct: jsonCT, body: `{"user":{"user_id":1,"gender":"M"},"movie_ids":[1,5000,3]}`, want: 200,
			check: func(t *testing.T, body []byte) {
				var r scoreResponse
				mustJSON(t, body, &r)
				if len(r.Scores) != 2 || r.Scores[1].MovieID != 3 || r.Scores[0].Rating == nil ||
					!reflect.DeepEqual(r.UnknownMovieIDs, []movielens.MovieID{5000}) {
					t.Errorf("response %+v", r)
				}
			}},
		{name: "score all known", method: "POST", path: "/score", ct: jsonCT, body: `{"user":{},"movie_ids":[7]}`, want: 200,
			check: func(t *testing.T, body []byte) {
				if !strings.Contains(string(body), `"unknown_movie_ids":[]`) {
					t.Errorf("unknown_movie_ids should be an empty array: %s", body)
				}
			}},
		{name: "model", method: "GET", path: "/model", want: 200,
			check: func(t *testing.T, body []byte) {
				var m modelResponse
				mustJSON(t, body, &m)
				if _, ok := m.Metrics["rmse"]; ok || m.Metrics["recall@10"] != 0.21 {
					t.Errorf("metrics %v: NaN must be dropped", m.Metrics)
				}
				if m.Prior == nil || m.Prior.Now != "2000-12-06T00:00:00Z" || m.Prior.HalfLifeDays != 30 || m.Prior.FeatureShare != 0.75 {
					t.Errorf("prior %+v: /model must state the prior's now and known users' feature share", m.Prior)
				}
				if m.IndexLatency["exact"] != 52.0 || m.IndexLatency["hnsw"] != 12.4 || m.IndexChoice != "hnsw faster and recall ≥ min_recall" || m.IndexEf != 64 {
					t.Errorf("index_latency_us %v, index_choice %q, index_ef_search %d: /model must report auto's measurement", m.IndexLatency, m.IndexChoice, m.IndexEf)
				}
				if m.LoadedAt != "2025-01-02T08:30:00.000000123Z" || m.Vocabularies["empty"] == nil {
					t.Errorf("model %+v", m)
				}
			}},
		{name: "healthz", method: "GET", path: "/healthz", want: 200},
		{name: "readyz", method: "GET", path: "/readyz", want: 200,
			check: func(t *testing.T, body []byte) {
				if !strings.Contains(string(body), `"model_version":"v-test"`) {
					t.Errorf("body %s", body)
				}
			}},
		{name: "metrics", method: "GET", path: "/metrics", want: 200},
		{name: "unknown path", method: "GET", path: "/nope", want: 404},
		{name: "wrong method recall", method: "GET", path: "/recall", want: 405},
		{name: "wrong method healthz", method: "DELETE", path: "/healthz", want: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, Config{})
			w := ts.call(tt.method, tt.path, tt.ct, tt.body)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
			if w.Header().Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
			if w.Code < 300 && tt.body != "" {
				if err := c.requestValid(t, tt.method, tt.path, tt.ct, tt.body); err != nil {
					t.Errorf("the server accepted a request the contract rejects: %v", err)
				}
			}
			if w.Code >= 400 {
				decodeProblemBody(t, w)
			}
			c.checkResponse(t, tt.method, tt.path, tt.ct, tt.body, w)
			if tt.check != nil {
				tt.check(t, w.Body.Bytes())
			}
		})
	}
}

func mustJSON(t *testing.T, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}

// TestRecallRequestMapping checks what reaches the serving core.
func TestRecallRequestMapping(t *testing.T) {
	t.Parallel()
	f, tr := false, true
	tests := []struct {
		name, body string
		want       recall.Request
	}{
		{"defaults", `{"user":{}}`, recall.Request{K: recall.DefaultK}},
		{"full", `{"user":{"user_id":42,"gender":"M","age":31,"occupation":" Programmer ","zip":"55455-1234","recent_movie_ids":[9,4]},"k":7,"offset":3,
		  "exclude_seen":false,"exclude_movie_ids":[3,1],"genres":["Drama","Comedy"]}`,
			recall.Request{
				User: recall.User{UserInput: feature.UserInput{UserID: 42, Gender: "M", Age: 31, Occupation: "programmer", Zip: "55455-1234"}, Recent: []movielens.MovieID{9, 4}},
				K:    7, Offset: 3, ExcludeSeen: &f,
				ExcludeMovieIDs: []movielens.MovieID{3, 1}, Genres: []string{"Drama", "Comedy"},
			}},
		{"alias occupation", `{"user":{"occupation":"student"},"exclude_seen":true,"exclude_movie_ids":[]}`,
			recall.Request{User: recall.User{UserInput: feature.UserInput{Occupation: "college/grad student"}}, K: 10, ExcludeSeen: &tr, ExcludeMovieIDs: []movielens.MovieID{}}},
		{"escaped member names", `{"\u0075ser":{"gender":"F"}}`, recall.Request{User: recall.User{UserInput: feature.UserInput{Gender: "F"}}, K: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, Config{})
			w := ts.call("POST", "/recall", jsonCT, tt.body)
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			got := ts.rec.last()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("request\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestRecallerErrors(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	tests := []struct {
		name      string
		err       error
		notReady  bool
		want      int
		wantField string
		wantCode  code
	}{
		{"client error", &recall.Error{Field: "genres", Message: `unknown genre "Jazz"`}, false, 400, "genres", codeInvalid},
		{"wrapped client error", fmt.Errorf("recall: %w", &recall.Error{Field: "user.zip", Message: "bad"}), false, 400, "user.zip", codeInvalid},
		{"indexed field", &recall.Error{Field: "genres[2]", Message: "unknown genre"}, false, 400, "genres", codeInvalid},
		{"no model", recall.NoModelError{}, true, 503, "", codeUnavailable},
		{"wrapped no model", fmt.Errorf("recall: %w", recall.NoModelError{}), true, 503, "", codeUnavailable},
		{"deadline", fmt.Errorf("ann: %w", context.DeadlineExceeded), false, 504, "", codeTimeout},
		{"canceled", context.Canceled, false, 503, "", codeUnavailable},
		{"internal", errors.New("index corrupted at /secret/path"), false, 500, "", codeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, Config{})
			ts.rec.recallHook = func(context.Context, recall.Request) (recall.Result, error) { return recall.Result{}, tt.err }
			ts.rec.scoreHook = func(context.Context, recall.ScoreRequest) (recall.ScoreResult, error) {
				return recall.ScoreResult{}, tt.err
			}
			ts.rec.setReady(!tt.notReady)
			for _, call := range []struct{ path, body string }{
				{"/recall", `{"user":{}}`},
				{"/score", `{"user":{},"movie_ids":[1]}`},
			} {
				if call.path == "/score" && tt.want == 504 {
					continue // /score has no deadline (handleScore), and no 504 in the contract
				}
				w := ts.call("POST", call.path, jsonCT, call.body)
				if w.Code != tt.want {
					t.Fatalf("%s: status %d, want %d: %s", call.path, w.Code, tt.want, w.Body)
				}
				p := decodeProblemBody(t, w)
				if p.Field != tt.wantField || p.Type != problemTypePrefix+string(tt.wantCode) {
					t.Errorf("%s: problem %+v", call.path, p)
				}
				if strings.Contains(p.Detail, "secret") {
					t.Errorf("internal detail leaked: %q", p.Detail)
				}
				c.checkResponse(t, "POST", call.path, jsonCT, call.body, w)
			}
			if logged := strings.Contains(ts.logs.String(), `"level":"error"`); logged != (tt.want == 500) {
				t.Errorf("error logged = %v for status %d:\n%s", logged, tt.want, ts.logs)
			}
			if warned := strings.Contains(ts.logs.String(), `"level":"warn"`); warned != (tt.want == 504) {
				t.Errorf("warning logged = %v for status %d:\n%s", warned, tt.want, ts.logs)
			}
		})
	}
}

func TestNotReady(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	ts := newTestServer(t, Config{})
	ts.rec.setReady(false)
	for _, tt := range []struct{ method, path, body string }{
		{"GET", "/readyz", ""},
		{"GET", "/model", ""},
		{"POST", "/recall", `{"user":{"user_id":1}}`},
		{"POST", "/score", `{"user":{},"movie_ids":[1]}`},
	} {
		w := ts.call(tt.method, tt.path, jsonCT, tt.body)
		if w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s: status %d: %s", tt.path, w.Code, w.Body)
		}
		decodeProblemBody(t, w)
		if got := w.Header().Get("Retry-After"); got != retryAfter {
			t.Errorf("%s: Retry-After %q, want %q", tt.path, got, retryAfter)
		}
		c.checkResponse(t, tt.method, tt.path, jsonCT, tt.body, w)
	}
	if w := ts.call("GET", "/healthz", "", ""); w.Code != 200 {
		t.Errorf("healthz %d without a model", w.Code)
	}
	// Client mistakes are still reported as such.
	if w := ts.call("POST", "/recall", jsonCT, `{}`); w.Code != 400 {
		t.Errorf("invalid request without a model: %d", w.Code)
	}
}

func TestReadyzDraining(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{})
	for i, step := range []struct {
		draining bool
		want     int
	}{{false, 200}, {true, 503}, {false, 200}} {
		ts.draining.Store(step.draining)
		w := ts.call("GET", "/readyz", "", "")
		if w.Code != step.want {
			t.Fatalf("step %d: draining=%v: status %d, want %d", i, step.draining, w.Code, step.want)
		}
		if step.draining {
			if p := decodeProblemBody(t, w); !strings.Contains(p.Detail, "draining") {
				t.Errorf("detail %q", p.Detail)
			}
			if got := w.Header().Get("Retry-After"); got != retryAfter {
				t.Errorf("Retry-After %q while draining", got)
			}
			// Draining only affects readiness.
			if w := ts.call("POST", "/recall", jsonCT, `{"user":{}}`); w.Code != 200 {
				t.Errorf("recall while draining: %d", w.Code)
			}
		}
	}
}

// TestDrainClosesConnections: once Serve drains, every answer closes its
// connection, so keep-alive clients reconnect (to another instance)
// instead of staying on this one until the listener closes.
func TestDrainClosesConnections(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{DrainDelay: 5 * time.Second, ShutdownTimeout: 10 * time.Second})
	addr, cancel, done := serveLoopback(t, ts)
	url := "http://" + addr + "/healthz"
	get := func() *http.Response {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := get(); resp.Close {
		t.Fatal("a connection closed before draining")
	}
	cancel()
	deadline := time.Now().Add(3 * time.Second)
	for ts.call("GET", "/readyz", "", "").Code != 503 {
		if time.Now().After(deadline) {
			t.Fatal("/readyz not 503 3 s after the drain began")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if resp := get(); resp.StatusCode != 200 || !resp.Close {
		t.Errorf("while draining: status %d, Connection: close %v", resp.StatusCode, resp.Close)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPanicIsContained(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	ts := newTestServer(t, Config{})
	ts.rec.recallHook = func(_ context.Context, req recall.Request) (recall.Result, error) {
		if req.K == 13 {
			panic("boom")
		}
		return fakeResult(req.K), nil
	}
	body := `{"user":{},"k":13}`
	w := ts.call("POST", "/recall", jsonCT, body)
	if w.Code != 500 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	p := decodeProblemBody(t, w)
	if p.Type != problemTypePrefix+"internal" || strings.Contains(p.Detail, "boom") {
		t.Errorf("problem %+v", p)
	}
	c.checkResponse(t, "POST", "/recall", jsonCT, body, w)
	logs := ts.logs.String()
	if !strings.Contains(logs, `"panic":"boom"`) || !strings.Contains(logs, `"stack"`) {
		t.Errorf("panic not logged:\n%s", logs)
	}
	if !strings.Contains(logs, `"status":500`) {
		t.Errorf("access log misses the 500:\n%s", logs)
	}
	// The server keeps serving.
	for range 3 {
		if w := ts.call("POST", "/recall", jsonCT, `{"user":{},"k":2}`); w.Code != 200 {
			t.Fatalf("after panic: %d %s", w.Code, w.Body)
		}
	}
}

func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	ts := newTestServer(t, Config{RequestTimeout: 20 * time.Millisecond})
	ts.rec.recallHook = func(ctx context.Context, _ recall.Request) (recall.Result, error) {
		<-ctx.Done()
		return recall.Result{}, fmt.Errorf("search: %w", ctx.Err())
	}
	body := `{"user":{}}`
	w := ts.call("POST", "/recall", jsonCT, body)
	if w.Code != http.StatusGatewayTimeout {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	decodeProblemBody(t, w)
	c.checkResponse(t, "POST", "/recall", jsonCT, body, w)
}

// TestMetricsApart: with the metrics on a listener of their own, GET
// /metrics on the API's is the 404 problem openapi.yaml lists for it.
func TestMetricsApart(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	ts := newTestServer(t, Config{MetricsApart: true})
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		w := ts.call(method, "/metrics", "", "")
		if w.Code != http.StatusNotFound {
			t.Fatalf("%s /metrics with serve.metrics_addr: %d, want 404", method, w.Code)
		}
		if method == http.MethodGet {
			decodeProblemBody(t, w)
		}
		c.checkResponse(t, method, "/metrics", "", "", w)
	}
}

func TestMetricsExposeRequests(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{})
	ts.call("POST", "/recall", jsonCT, `{"user":{},"k":4}`)
	ts.call("POST", "/recall", jsonCT, `{"user":{},"k":0}`)
	// Each answered batch entry counts as a /recall answer; a refused one not.
	ts.call("POST", "/recall/batch", jsonCT, `{"requests":[{"user":{},"k":20},{"user":{},"k":-1}]}`)
	ts.call("PROPFIND", "/nope/123", "", "")
	ts.call("GET", "/recall", "", "")
	ts.call("DELETE", "/movies/7/similar", "", "")
	big := ts.call("POST", "/score", jsonCT, strings.Repeat(" ", int(testConfig().BodyLimit)+1)) // declared too large: refused before reading
	if big.Code != 413 {
		t.Fatalf("oversized body: %d", big.Code)
	}
	w := ts.call("GET", "/metrics", "", "")
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	text := w.Body.String()
	for _, want := range []string{
		`towerrecall_http_requests_total{method="POST",route="/recall",status="200"} 1`,
		`towerrecall_http_requests_total{method="POST",route="/recall",status="400"} 1`,
		`towerrecall_http_requests_total{method="other",route="unmatched",status="404"} 1`,
		`towerrecall_http_requests_total{method="GET",route="/recall",status="405"} 1`, // labelled by the route it missed
		`towerrecall_http_requests_total{method="DELETE",route="/movies/{movie_id}/similar",status="405"} 1`,
		`towerrecall_http_requests_total{method="POST",route="/score",status="413"} 1`, // counted under its route
		`towerrecall_http_request_duration_seconds_bucket{method="POST",route="/recall",le="1e-05"}`,
		`towerrecall_http_request_duration_seconds_bucket{method="POST",route="/recall",le="0.1"}`, // round bounds: SLO queries find them
		`towerrecall_http_request_duration_seconds_count{method="POST",route="/recall"} 2`,
		`towerrecall_recall_items_bucket{le="5"} 1`,
		`towerrecall_recall_items_bucket{le="20"} 2`,
		`towerrecall_recall_items_count 2`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(text, "/nope/123") {
		t.Error("raw path used as a label")
	}
	// A scraper may negotiate Prometheus' protobuf format.
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	pw := httptest.NewRecorder()
	ts.Handler().ServeHTTP(pw, req)
	if pw.Code != 200 || !strings.HasPrefix(pw.Header().Get("Content-Type"), "application/vnd.google.protobuf") {
		t.Fatalf("metrics in protobuf: %d %q", pw.Code, pw.Header().Get("Content-Type"))
	}
	loadContract(t).checkResponse(t, "GET", "/metrics", "", "", pw)
}

func TestRequestIDAndAccessLog(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{})
	tests := []struct {
		name, sent string
		echoed     bool
	}{
		{"client id kept", "abc-123", true},
		{"generated", "", false},
		{"too long replaced", strings.Repeat("x", 129), false},
		{"control chars replaced", "a b", false},
	}
	for _, tt := range tests {
		req := newRequest("GET", "/healthz", "", "")
		if tt.sent != "" {
			req.Header.Set("X-Request-Id", tt.sent)
		}
		req.RemoteAddr = "192.0.2.7:4242"
		w := newRecorder()
		ts.Handler().ServeHTTP(w, req)
		got := w.Header().Get("X-Request-Id")
		if got == "" || (got == tt.sent) != tt.echoed {
			t.Errorf("%s: X-Request-Id %q", tt.name, got)
		}
	}
	// One JSON line per request with the agreed fields.
	lines := strings.Split(strings.TrimSpace(ts.logs.String()), "\n")
	if len(lines) != len(tests) {
		t.Fatalf("%d log lines for %d requests:\n%s", len(lines), len(tests), ts.logs)
	}
	var entry map[string]any
	mustJSON(t, []byte(lines[0]), &entry)
	for _, k := range []string{"method", "path", "status", "bytes", "duration_ms", "request_id", "route", "remote_ip"} {
		if _, ok := entry[k]; !ok {
			t.Errorf("access log lacks %q: %s", k, lines[0])
		}
	}
	if entry["request_id"] != "abc-123" || entry["remote_ip"] != "192.0.2.7" || entry["status"] != 200.0 {
		t.Errorf("access log %s", lines[0])
	}
}

// TestAccessLogLevels: probes and scrapes that succeed are logged at debug
// (a line every few seconds per replica at info); everything else, and a
// failing probe, at info.
func TestAccessLogLevels(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{})
	for _, tt := range []struct {
		path  string
		ready bool
		level string
	}{
		{"/healthz", true, "debug"}, {"/readyz", true, "debug"}, {"/metrics", true, "debug"},
		{"/readyz", false, "info"}, {"/model", true, "info"}, {"/nope", true, "info"},
	} {
		ts.rec.setReady(tt.ready)
		ts.logs.Reset()
		ts.call("GET", tt.path, "", "")
		var entry map[string]any
		mustJSON(t, []byte(strings.TrimSpace(ts.logs.String())), &entry)
		if entry["level"] != tt.level {
			t.Errorf("GET %s (ready %v): level %v, want %s", tt.path, tt.ready, entry["level"], tt.level)
		}
	}
}

// TestAccessLogEvery: with access_log_every N, one in N reads answered
// below 400 has a line; every request answered 400 or above, and every
// catalogue change, has its own; the request counter counts them all.
func TestAccessLogEvery(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{AccessLogEvery: 4, CatalogToken: testToken})
	for range 10 {
		ts.call("GET", "/model", "", "")
		ts.call("GET", "/nope", "", "")
	}
	for i := range 3 {
		w := newRecorder()
		ts.Handler().ServeHTTP(w, ts.callAuth("PUT", "/movies/7", "Bearer "+testToken, fmt.Sprintf(`{"title":"Take %d","genres":["Drama"],"year":2000}`, i)))
		if w.Code >= 400 {
			t.Fatalf("PUT: %d %s", w.Code, w.Body)
		}
	}
	var ok, missing, puts int
	for _, line := range strings.Split(strings.TrimSpace(ts.logs.String()), "\n") {
		var entry map[string]any
		mustJSON(t, []byte(line), &entry)
		switch {
		case entry["method"] == "PUT":
			puts++
		case entry["status"] == 200.0:
			ok++
		case entry["status"] == 404.0:
			missing++
		}
	}
	if ok != 3 || missing != 10 || puts != 3 { // the 1st, 5th and 9th of ten
		t.Errorf("%d lines of 200s (want 3 of 10), %d of 404s (want 10), %d of PUTs (want 3)", ok, missing, puts)
	}
	if m := ts.call("GET", "/metrics", "", "").Body.String(); !strings.Contains(m, `towerrecall_http_requests_total{method="GET",route="/model",status="200"} 10`+"\n") {
		t.Errorf("/model's 200s not all counted:\n%s", m)
	}
}

// TestLongPathCut: a client's long path is cut in the problem's instance
// and in the access log (a 60 KB path of bytes that are not UTF-8 made a
// 180 KB answer and a 360 KB log line: log lines from others were dropped).
func TestLongPathCut(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{})
	w := ts.call("GET", "/"+strings.Repeat("%FF", 20000), "", "")
	var p struct{ Instance string }
	mustJSON(t, w.Body.Bytes(), &p)
	if w.Code != http.StatusNotFound || len(p.Instance) > maxField+len("…") || !strings.HasPrefix(p.Instance, "/%FF%FF") || w.Body.Len() > 2000 {
		t.Errorf("%d, instance of %d bytes, body of %d bytes", w.Code, len(p.Instance), w.Body.Len())
	}
	if n := len(ts.logs.String()); n > 2000 {
		t.Errorf("a log of %d bytes for one request", n)
	}
}

// TestClientIP: the access log's remote_ip is the TCP peer, or with
// trusted proxies configured the rightmost untrusted X-Forwarded-For entry
// of a request that came through one of them.
func TestClientIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		trusted []string
		peer    string
		xff     string
		want    string
	}{
		{"no proxies: the peer, XFF ignored", nil, "192.0.2.7:4242", "203.0.113.9", "192.0.2.7"},
		{"trusted peer: XFF", []string{"10.0.0.0/8"}, "10.1.2.3:80", "203.0.113.9", "203.0.113.9"},
		{"trusted peer, chain: rightmost untrusted", []string{"10.0.0.0/8"}, "10.1.2.3:80", "198.51.100.1, 203.0.113.9, 10.9.9.9", "203.0.113.9"},
		{"untrusted peer: XFF is a spoof", []string{"10.0.0.0/8"}, "192.0.2.7:4242", "203.0.113.9", "192.0.2.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, Config{TrustedProxies: tt.trusted})
			req := newRequest("GET", "/healthz", "", "")
			req.RemoteAddr = tt.peer
			req.Header.Set("X-Forwarded-For", tt.xff)
			ts.Handler().ServeHTTP(newRecorder(), req)
			var entry map[string]any
			mustJSON(t, []byte(strings.TrimSpace(ts.logs.String())), &entry)
			if entry["remote_ip"] != tt.want {
				t.Errorf("remote_ip %v, want %s", entry["remote_ip"], tt.want)
			}
		})
	}
	if err := (Config{TrustedProxies: []string{"10.0.0.1"}}).Validate(); err == nil {
		t.Error("a proxy without prefix length accepted")
	}
}

func TestMethodNotAllowedListsAllow(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{})
	w := ts.call("PUT", "/recall", jsonCT, `{}`)
	if w.Code != 405 || w.Header().Get("Allow") != "POST" {
		t.Fatalf("status %d Allow %q", w.Code, w.Header().Get("Allow"))
	}
	decodeProblemBody(t, w)
	w = ts.call("POST", "/model", jsonCT, `{}`)
	if w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("status %d Allow %q", w.Code, w.Header().Get("Allow"))
	}
}

func TestServeAndShutdown(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{ShutdownTimeout: 5 * time.Second})
	addr, cancel, done := serveLoopback(t, ts)

	base := "http://" + addr
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	resp, err = http.Post(base+"/recall", jsonCT, strings.NewReader(`{"user":{"user_id":1},"k":2}`))
	if err != nil {
		t.Fatal(err)
	}
	var r recallResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || len(r.Items) != 2 {
		t.Fatalf("recall over TCP: %v %+v", err, r)
	}
	resp.Body.Close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if w := ts.call("GET", "/readyz", "", ""); w.Code != 503 {
		t.Errorf("readyz after shutdown: %d", w.Code)
	}
	if !strings.Contains(ts.logs.String(), `"addr":"`+addr+`"`) {
		t.Errorf("bound address not logged:\n%s", ts.logs)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := testConfig().Validate(); err != nil {
		t.Errorf("test config: %v", err)
	}
	if err := (Config{BodyLimit: 1, BatchMax: 1}).Validate(); err != nil {
		t.Errorf("no timeouts at all: %v", err)
	}
	err := Config{BodyLimit: -1, ReadTimeout: -time.Second, IdleTimeout: -1}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"body limit", "read timeout", "idle timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if err := (Config{BodyLimit: 1, RequestTimeout: time.Minute, WriteTimeout: time.Second}).Validate(); err == nil {
		t.Error("write timeout below request timeout accepted")
	}
	if err := (Config{BodyLimit: 1, WriteTimeout: time.Second}).Validate(); err == nil {
		t.Error("write timeout without a request timeout accepted")
	}
	if err := (Config{BodyLimit: 1, ReadTimeout: 5 * time.Second, RequestTimeout: time.Second, WriteTimeout: 5 * time.Second}).Validate(); err == nil {
		t.Error("write timeout that a slow upload uses up accepted")
	}
	if _, err := New(Config{BodyLimit: -1}, zerologNop(), newFake(), newRegistry()); err == nil {
		t.Error("New accepted a bad config")
	}
	if _, err := New(testConfig(), zerologNop(), nil, newRegistry()); err == nil {
		t.Error("New accepted a nil Recaller")
	}
	reg := newRegistry()
	if _, err := New(testConfig(), zerologNop(), newFake(), reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(testConfig(), zerologNop(), newFake(), reg); err == nil {
		t.Error("a second server on the same registry should fail to register its metrics")
	}
}

// dialServing runs ts.Serve on a loopback port until the test ends and
// returns a connection to it.
func dialServing(t *testing.T, ts *testServer) net.Conn {
	t.Helper()
	addr, cancel, done := serveLoopback(t, ts)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		cancel()
		<-done
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return conn
}

// TestSlowHeadersAreCut checks the slowloris protection of Serve.
func TestSlowHeadersAreCut(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{ReadHeaderTimeout: 100 * time.Millisecond})
	conn := dialServing(t, ts)
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	// 50 times the header timeout: a server that never cuts the
	// connection runs into this deadline, an error.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("the connection was not closed by the server: %v", err)
	}
}

// TestHeadersTooLarge: net/http answers headers over MaxHeaderBytes
// itself, before any handler, with a plain-text 431 the service cannot
// shape; openapi.yaml must say so rather than promise a problem.
func TestHeadersTooLarge(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{MaxHeaderBytes: 1 << 10})
	conn := dialServing(t, ts)
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("status %d, %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if desc := loadContract(t).doc.Info.Description; !strings.Contains(desc, "`431`") {
		t.Error("openapi.yaml does not describe the plain-text 431 of oversized headers")
	}
}

// TestSlowBodyGets408 checks that a body which stops arriving is answered
// 408 Request Timeout with a problem once the read timeout passes, not 400.
func TestSlowBodyGets408(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{ReadTimeout: 300 * time.Millisecond})
	conn := dialServing(t, ts)
	// 50 bytes declared, 10 sent, then silence.
	if _, err := conn.Write([]byte("POST /recall HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{\"user\":{}")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var p problem
	if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("Content-Type") != "application/problem+json" ||
		json.Unmarshal(body, &p) != nil || p.Type != problemTypePrefix+string(codeReadTimeout) || p.Status != 408 {
		t.Fatalf("status %d, %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	// The answer as the contract sees it.
	w := httptest.NewRecorder()
	maps.Copy(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
	loadContract(t).checkResponse(t, "POST", "/recall", jsonCT, `{"user":{}}`, w)
}

// TestRequestIDs: generated ids are chi's (host/random-000001: ten
// random characters, a sequence of at least six digits), grow and never
// repeat; two X-Request-Id headers get a new one.
func TestRequestIDs(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{})
	shape := regexp.MustCompile(`^[^/]+/[A-Za-z0-9]{10}-([0-9]{6,})$`)
	var last int
	for i := range 100 {
		req := newRequest("GET", "/healthz", "", "")
		if i%2 == 1 {
			req.Header["X-Request-Id"] = []string{"a", "b"}
		}
		w := newRecorder()
		ts.Handler().ServeHTTP(w, req)
		id := w.Header().Get("X-Request-Id")
		m := shape.FindStringSubmatch(id)
		if m == nil || !validRequestID(id) {
			t.Fatalf("id %q is not chi-shaped or not loggable", id)
		}
		n, _ := strconv.Atoi(m[1])
		if n <= last {
			t.Fatalf("id %q does not grow past %d", id, last)
		}
		last = n
	}
}

// TestRecallContentLength: over real HTTP every /recall answer states its
// exact length and is never chunked (the body is encoded whole before it
// is written).
func TestRecallContentLength(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 10, 100, 1000} {
		ts := newTestServer(t, Config{})
		res := fakeResult(n)
		ts.rec.recallHook = func(context.Context, recall.Request) (recall.Result, error) { return res, nil }
		conn := dialServing(t, ts)
		body := `{"user":{"gender":"F"},"k":10}`
		if _, err := fmt.Fprintf(conn, "POST /recall HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%d items: %v", n, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var r struct{ Items []json.RawMessage }
		if resp.StatusCode != http.StatusOK || json.Unmarshal(got, &r) != nil || len(r.Items) != n {
			t.Fatalf("%d items: status %d: %.200s", n, resp.StatusCode, got)
		}
		if len(resp.TransferEncoding) != 0 || resp.ContentLength != int64(len(got)) ||
			resp.Header.Get("Content-Length") != strconv.Itoa(len(got)) {
			t.Errorf("%d items (%d bytes): Content-Length %q, transfer encoding %v", n, len(got), resp.Header.Get("Content-Length"), resp.TransferEncoding)
		}
		if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%d items: headers %v", n, resp.Header)
		}
	}
}

// net/http's own error lines reach the log at error level.
func TestHTTPErrorLogLevel(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := log.New(httpErrorLog{zerolog.New(&buf).With().Str("component", "http").Logger()}, "", 0)
	l.Printf("http: Accept error: %s; retrying in 5ms", "too many open files")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%q: %v", buf.String(), err)
	}
	if line["level"] != "error" || line["component"] != "http" || line["message"] != "http: Accept error: too many open files; retrying in 5ms" {
		t.Errorf("logged %v", line)
	}
}

// A collector that fails during a scrape is logged once at error level
// under component "metrics", its message readable ("…: <err>"), and the
// other metrics are still served.
func TestMetricsGatherErrorLogged(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{})
	if err := ts.reg.Register(failingCollector{}); err != nil {
		t.Fatal(err)
	}
	w := ts.call(http.MethodGet, "/metrics", "", "")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "towerrecall_") {
		t.Fatalf("status %d, body without towerrecall_ metrics", w.Code)
	}
	var found int
	for _, raw := range strings.Split(strings.TrimSpace(ts.logs.String()), "\n") {
		var line map[string]any
		if err := json.Unmarshal([]byte(raw), &line); err != nil || line["component"] != "metrics" {
			continue
		}
		found++
		msg, _ := line["message"].(string)
		if line["level"] != "error" || !strings.HasPrefix(msg, "error gathering metrics: ") || !strings.HasSuffix(msg, ": collector broke") {
			t.Errorf("logged %v", line)
		}
	}
	if found != 1 {
		t.Errorf("%d metrics error lines in %q, want 1", found, ts.logs.String())
	}
}

// A scraper that hangs up mid-answer (a scrape timeout) is the client's
// doing: its broken pipe goes to debug, once per remaining metric family,
// and other errors stay errors.
func TestMetricsErrorLogLevels(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err   error
		level string
	}{
		{&net.OpError{Op: "write", Err: os.NewSyscallError("write", syscall.EPIPE)}, "debug"},
		{fmt.Errorf("write: %w", syscall.ECONNRESET), "debug"},
		{errors.New("collector broke"), "error"},
	} {
		var buf bytes.Buffer
		metricsErrorLog{zerolog.New(&buf).Level(zerolog.DebugLevel)}.Println("error encoding and sending metric family:", tt.err)
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatalf("%q: %v", buf.String(), err)
		}
		if line["level"] != tt.level || line["message"] != "error encoding and sending metric family: "+tt.err.Error() {
			t.Errorf("%v: logged %v, want level %s", tt.err, line, tt.level)
		}
	}
}

type failingCollector struct{}

var failingDesc = prometheus.NewDesc("test_failing", "A collector that fails.", nil, nil)

func (failingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- failingDesc }
func (failingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(failingDesc, errors.New("collector broke"))
}

// TestMetricsLabelPreflights: a CORS preflight is answered before routing;
// it is counted under the route it asks about (its path and
// Access-Control-Request-Method), not as "unmatched", the label of
// unknown paths (scanners, typos), which browsers would fill otherwise.
func TestMetricsLabelPreflights(t *testing.T) {
	t.Parallel()
	const origin = "https://app.example.com"
	ts := newTestServer(t, Config{CORSOrigins: []string{origin}})
	for _, p := range []struct{ method, path string }{{"POST", "/recall"}, {"GET", "/movies/7/similar"}, {"POST", "/nope"}} {
		req := httptest.NewRequest(http.MethodOptions, p.path, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", p.method)
		w := httptest.NewRecorder()
		ts.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusNoContent {
			t.Fatalf("preflight %s %s: %d", p.method, p.path, w.Code)
		}
	}
	text := ts.call("GET", "/metrics", "", "").Body.String()
	for _, want := range []string{
		`towerrecall_http_requests_total{method="OPTIONS",route="/recall",status="204"} 1`,
		`towerrecall_http_requests_total{method="OPTIONS",route="/movies/{movie_id}/similar",status="204"} 1`,
		`towerrecall_http_requests_total{method="OPTIONS",route="unmatched",status="204"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestShutdownTimeoutNamed: a shutdown that serve.shutdown_timeout cuts
// short says so (it ended on a bare "context deadline exceeded", with no
// word of the setting or of requests cut off).
func TestShutdownTimeoutNamed(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{ShutdownTimeout: 200 * time.Millisecond})
	addr, cancel, done := serveLoopback(t, ts)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A body that never finishes arriving: the request stays in flight.
	if _, err := io.WriteString(conn, "POST /recall HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"user\":"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the handler is reading it
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "serve.shutdown_timeout") || !strings.Contains(err.Error(), "cut off") {
			t.Fatalf("Serve = %v, want the shutdown timeout named", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}
