package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/rs/zerolog"
)

const requestIDHeader = "X-Request-Id"

// requestContext gives every request its context: an id — the client's
// X-Request-Id if it sent exactly one that is fine to log (see
// validRequestID), else a new one — which chi's middleware.GetReqID finds
// and the response echoes, and the handler's time budget (see budget). One
// context for both: every context layer copies the request. (chi's
// RequestID does the same for the id minus the check, but formats every new
// id with fmt.Sprintf, a measurable share of a request.)
func (s *Server) requestContext(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var id string
		if vs := r.Header[requestIDHeader]; len(vs) == 1 && validRequestID(vs[0]) {
			id = vs[0]
		} else {
			id = s.ids.next()
		}
		w.Header()[requestIDHeader] = []string{id}
		b := newBudget(r.Context(), time.Now().Add(s.cfg.RequestTimeout))
		b.requestID = id // boxed once: GetReqID may ask several times
		defer b.release()
		next.ServeHTTP(w, r.WithContext(b))
	})
}

// requestIDs makes ids for requests that come without one, shaped like
// chi's: host/random-000042, a prefix unique to the process and a sequence
// number.
type requestIDs struct {
	prefix string
	seq    atomic.Uint64
}

func newRequestIDs() *requestIDs {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	random := make([]byte, 10)
	for i := range random {
		random[i] = alphabet[rand.IntN(len(alphabet))] // math/rand/v2: seeded from the OS per process
	}
	return &requestIDs{prefix: host + "/" + string(random) + "-"}
}

func (g *requestIDs) next() string {
	var buf [128]byte
	b := append(buf[:0], g.prefix...)
	n := g.seq.Add(1)
	for p := uint64(100000); p > 1 && n < p; p /= 10 {
		b = append(b, '0') // at least six digits, as chi
	}
	return string(strconv.AppendUint(b, n, 10))
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// accessLog writes one JSON line per request and records the request
// metrics, labelled by chi's route pattern so that cardinality stays bounded.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := s.writers.Get().(*statusWriter)
		ww.ResponseWriter = w
		next.ServeHTTP(ww, r)
		elapsed := time.Since(start)
		status, written := ww.Status(), ww.BytesWritten()
		*ww = statusWriter{} // the handler is done with it; the pool keeps no response
		s.writers.Put(ww)

		if status == 0 { // nothing written: net/http sends 200
			status = http.StatusOK
		}
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		s.metrics.observe(route, methodLabel(r.Method), status, elapsed)

		s.logger.Info().
			Str("request_id", middleware.GetReqID(r.Context())).
			Str("method", r.Method).
			Str("path", r.URL.Path).
			Str("route", route).
			Int("status", status).
			Int("bytes", written).
			Dur("duration", elapsed).
			Str("remote_ip", middleware.GetClientIP(r.Context())).
			Msg("request")
	})
}

// statusWriter records the status and body size of a response for the
// access log (chi's WrapResponseWriter, minus two allocations per request:
// the server pools them). It passes Flush through, and Unwrap gives
// http.ResponseController the writer underneath.
type statusWriter struct {
	http.ResponseWriter
	status  int
	written int
}

// WriteHeader records the first final status; 1xx informational answers
// (except 101 Switching Protocols, which is final) pass through.
func (w *statusWriter) WriteHeader(code int) {
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.status == 0 {
		w.status = code
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += n
	return n, err
}

// Status is the response's status, 0 while none is written.
func (w *statusWriter) Status() int { return w.status }

// BytesWritten is the size of the body written so far.
func (w *statusWriter) BytesWritten() int { return w.written }

// Flush sends what is buffered, when the writer underneath can.
func (w *statusWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap is for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// methodLabel bounds the method label: clients may send any token as a method.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// recoverer turns a panic into a logged 500 problem, so one bad request
// never takes the process down. http.ErrAbortHandler is re-raised: it is
// net/http's way to abort a response on purpose.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.logger.Error().
				Str("request_id", middleware.GetReqID(r.Context())).
				Str("panic", fmt.Sprint(p)).
				Bytes("stack", debug.Stack()).
				Msg("handler panicked")
			if ww, ok := w.(*statusWriter); ok && ww.Status() != 0 {
				// The response has started: abort the connection so the
				// client cannot mistake a truncated body for a whole one.
				panic(http.ErrAbortHandler)
			}
			s.writeProblem(w, r, &apiError{code: codeInternal, detail: "internal error"})
		}()
		next.ServeHTTP(w, r)
	})
}

// budget is a context with a deadline that starts no timer until someone
// waits on Done. Deadline and Err answer from the clock, so code that
// checks them sees the budget; a goroutine that selects on Done gets a
// real timer (context.WithDeadline), made on its first call. A recall takes
// microseconds and never waits, so most requests never start one — a timer
// per request was a measurable share of the handler's time.
//
// It also carries the request id (requestContext makes one context for
// both: each context layer copies the request).
type budget struct {
	context.Context // the request's context: values, cancellation
	deadline        time.Time
	requestID       any // a string for chi's middleware.RequestIDKey, or nil

	once   sync.Once
	done   context.Context // the deadline context, made by the first Done
	cancel context.CancelFunc
}

func newBudget(parent context.Context, deadline time.Time) *budget {
	return &budget{Context: parent, deadline: deadline}
}

// Value answers chi's middleware.RequestIDKey with the request id; other
// keys go to the parent.
func (b *budget) Value(key any) any {
	if key == middleware.RequestIDKey && b.requestID != nil {
		return b.requestID
	}
	return b.Context.Value(key)
}

// Deadline reports the budget's end.
func (b *budget) Deadline() (time.Time, bool) { return b.deadline, true }

// Done closes when the parent is done or the deadline passes.
func (b *budget) Done() <-chan struct{} {
	b.once.Do(func() { b.done, b.cancel = context.WithDeadline(b.Context, b.deadline) })
	return b.done.Done()
}

// Err is the parent's error, else DeadlineExceeded once the deadline has
// passed, else nil.
func (b *budget) Err() error {
	if err := b.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(b.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// release stops the timer, if one was started. After it, Done is the
// parent's.
func (b *budget) release() {
	b.once.Do(func() { b.done, b.cancel = b.Context, func() {} })
	b.cancel()
}

// limitBody caps request bodies: a declared length over the limit is
// refused at once, a longer streamed body fails while it is read.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.BodyLimit {
			s.writeProblem(w, r, tooLarge(s.cfg.BodyLimit))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.BodyLimit)
		next.ServeHTTP(w, r)
	})
}

func tooLarge(limit int64) *apiError {
	return &apiError{code: codeTooLarge, detail: "request body is larger than " + strconv.FormatInt(limit, 10) + " bytes"}
}

// promLogger routes promhttp's errors into the server's logger.
type promLogger struct{ logger zerolog.Logger }

func (l promLogger) Println(v ...any) {
	l.logger.Error().Str("component", "metrics").Msg(fmt.Sprint(v...))
}
