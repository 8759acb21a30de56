package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/recall"
)

// BenchmarkRecallHandler measures the HTTP layer around a Recaller that
// answers at once with 10 items: middleware, strict decoding, validation,
// encoding, metrics and (in "log") one JSON access-log line.
func BenchmarkRecallHandler(b *testing.B) {
	body := []byte(`{"user":{"user_id":123,"gender":"F","age":25,"occupation":"programmer","zip":"94043"},"k":10,"exclude_seen":true,"exclude_movie_ids":[1,2,3],"genres":["Comedy","Drama"]}`)
	res := fakeResult(10)
	for _, bc := range []struct {
		name   string
		logger zerolog.Logger
	}{
		{"nolog", zerolog.Nop()},
		{"log", zerolog.New(io.Discard)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rec := newFake()
			rec.recallHook = func(context.Context, recall.Request) (recall.Result, error) { return res, nil }
			s, err := New(testConfig(), bc.logger, rec, prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			h := s.Handler()
			rd := bytes.NewReader(body)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				rd.Reset(body)
				req := httptest.NewRequest(http.MethodPost, "/recall", rd)
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
