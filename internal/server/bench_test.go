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

// TestRecallAllocs counts the allocations of one POST /recall through the
// whole handler chain (the benchmark's body and logger, a Recaller that
// answers at once): request id, access log and metrics, body limits,
// decoding, admission, deadline, encoding and the write. The request and
// the response writer are reused, so the count is the server's own. Not
// parallel: AllocsPerRun counts every goroutine's allocations.
func TestRecallAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	body := []byte(`{"user":{"user_id":123,"gender":"F","age":25,"occupation":"programmer","zip":"94043"},"k":10,"exclude_seen":true,"exclude_movie_ids":[1,2,3],"genres":["Comedy","Drama"]}`)
	res := fakeResult(10)
	rec := newFake()
	rec.recallHook = func(context.Context, recall.Request) (recall.Result, error) { return res, nil }
	s, err := New(testConfig(), zerolog.New(io.Discard), rec, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	rd := bytes.NewReader(body)
	req := httptest.NewRequest(http.MethodPost, "/recall", rd)
	req.Header.Set("Content-Type", "application/json")
	w := &countingWriter{h: http.Header{}}
	allocs := testing.AllocsPerRun(100, func() {
		rd.Reset(body)
		w.reset()
		h.ServeHTTP(w, req)
	})
	if w.code != http.StatusOK {
		t.Fatalf("status %d", w.code)
	}
	const want = 35
	t.Logf("%.0f allocations per /recall", allocs)
	if allocs > want {
		t.Errorf("%.0f allocations per /recall, want at most %d", allocs, want)
	}
}

// countingWriter is a reusable http.ResponseWriter that keeps the status and
// counts the body's bytes.
type countingWriter struct {
	h       http.Header
	code, n int
}

func (w *countingWriter) Header() http.Header { return w.h }
func (w *countingWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *countingWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}
func (w *countingWriter) reset() { clear(w.h); w.code, w.n = 0, 0 }
