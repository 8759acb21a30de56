package server

import (
	"net/http"
	"strings"
	"testing"
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
