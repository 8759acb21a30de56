package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/towerrecall/towerrecall/internal/recall"
)

// TestCatalogAuthOneHeader: Authorization is a singleton field (RFC 9110
// §11.6.2). Two of them are refused whichever carries the token: a proxy
// reading the last while the server read the first would disagree about
// who sent the request.
func TestCatalogAuthOneHeader(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	ts := newTestServer(t, Config{CatalogToken: testToken})
	body := `{"title":"x","genres":["Drama"]}`
	for _, auth := range [][]string{
		{"Bearer " + testToken, "Bearer wrong-token-0123456789"},
		{"Bearer wrong-token-0123456789", "Bearer " + testToken},
		{"Bearer " + testToken, "Bearer " + testToken},
	} {
		req := newRequest("PUT", "/movies/300001", "application/json", body)
		req.Header["Authorization"] = auth
		w := newRecorder()
		ts.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%q: status %d, want 401: %s", auth, w.Code, w.Body)
			continue
		}
		c.checkResponse(t, "PUT", "/movies/300001", "application/json", body, w)
		if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, catalogRealm) {
			t.Errorf("%q: WWW-Authenticate %q", auth, got)
		}
		if strings.Contains(w.Body.String(), testToken) {
			t.Errorf("%q: the token is echoed: %s", auth, w.Body)
		}
	}
	if got := ts.rec.lastPut; got.MovieID != 0 {
		t.Errorf("a request with two Authorization headers changed the catalogue: %+v", got)
	}
}

// TestContentEncodingEveryValue: "no Content-Encoding but identity" holds
// for every Content-Encoding field of the request, not only the first.
func TestContentEncodingEveryValue(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{})
	for _, tc := range []struct {
		ce   []string
		want int
	}{
		{[]string{"identity"}, http.StatusOK},
		{[]string{"identity", "identity"}, http.StatusOK},
		{[]string{"identity", "gzip"}, http.StatusUnsupportedMediaType},
		{[]string{"", "gzip"}, http.StatusUnsupportedMediaType},
		{[]string{"identity, gzip"}, http.StatusUnsupportedMediaType},
	} {
		req := newRequest("POST", "/recall", "application/json", `{"user":{}}`)
		req.Header["Content-Encoding"] = tc.ce
		w := newRecorder()
		ts.Handler().ServeHTTP(w, req)
		if w.Code != tc.want {
			t.Errorf("Content-Encoding %q: status %d, want %d: %s", tc.ce, w.Code, tc.want, w.Body)
		}
	}
}

// TestBatchTimeoutLoggedOnce: a batch whose deadline passes writes one
// warning, not one per entry left unanswered; batch_max entries under load
// were as many log lines from one request.
func TestBatchTimeoutLoggedOnce(t *testing.T) {
	t.Parallel()
	entries := `{"requests":[` + strings.Repeat(`{"user":{}},`, 49) + `{"user":{}}]}`
	for _, tc := range []struct {
		name   string
		answer int // entries answered before the deadline passes
		status int
	}{
		{"some entries answered", 1, http.StatusOK},
		{"none answered", 0, http.StatusGatewayTimeout},
	} {
		ts := newTestServer(t, Config{RequestTimeout: 20 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: time.Second})
		calls := 0
		ts.rec.recallHook = func(ctx context.Context, req recall.Request) (recall.Result, error) {
			calls++
			if calls > tc.answer {
				<-ctx.Done()
				return recall.Result{}, ctx.Err()
			}
			return fakeResult(req.K), nil
		}
		w := ts.call("POST", "/recall/batch", jsonCT, entries)
		if w.Code != tc.status {
			t.Fatalf("%s: status %d, want %d: %s", tc.name, w.Code, tc.status, w.Body)
		}
		if n := strings.Count(ts.logs.String(), `"level":"warn"`); n != 1 {
			t.Errorf("%s: %d warnings, want 1:\n%s", tc.name, n, ts.logs)
		}
		if n := strings.Count(ts.logs.String(), `"message":"timeout error"`); n != 1 {
			t.Errorf("%s: %d timeout error lines, want 1:\n%s", tc.name, n, ts.logs)
		}
		if tc.answer > 0 && !strings.Contains(ts.logs.String(), `"timed_out":49,"entries":50`) {
			t.Errorf("%s: the warning does not count the entries:\n%s", tc.name, ts.logs)
		}
		// A 200 batch's timed-out entries show in no status code: they are
		// counted apart (a batch with none answered is the 504 above).
		want := map[int]string{1: "towerrecall_batch_entries_timed_out_total 49", 0: "towerrecall_batch_entries_timed_out_total 0"}[tc.answer]
		if m := ts.call("GET", "/metrics", "", "").Body.String(); !strings.Contains(m, want+"\n") {
			t.Errorf("%s: /metrics lacks %q", tc.name, want)
		}
	}
}
