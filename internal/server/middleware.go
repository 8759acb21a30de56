package server

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/rs/zerolog"
)

const requestIDHeader = "X-Request-Id"

// requestID gives every request an id — the client's X-Request-Id if it
// sent exactly one that is fine to log (see validRequestID), else a new one
// from chi's middleware.RequestID (host/random-000042) — which
// middleware.GetReqID finds and the response echoes.
func (s *Server) requestID(next http.Handler) http.Handler {
	echo := middleware.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(requestIDHeader, middleware.GetReqID(r.Context()))
		if s.draining.Load() {
			// Each answer while draining ends its connection, so a
			// keep-alive client reconnects (a load balancer reroutes new
			// connections only) instead of staying until the listener
			// closes. Idle connections are left alone: closing one under
			// a client that is reusing it fails that request.
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if vs := r.Header[requestIDHeader]; len(vs) > 1 || len(vs) == 1 && !validRequestID(vs[0]) {
			r.Header.Del(requestIDHeader) // chi's RequestID makes one
		}
		echo.ServeHTTP(w, r)
	})
}

// validRequestID accepts 1 to 128 printable ASCII characters, nothing that
// could forge a log line.
func validRequestID(id string) bool {
	return id != "" && len(id) <= 128 && !strings.ContainsFunc(id, func(r rune) bool { return r < 0x21 || r > 0x7e })
}

// accessLog writes a JSON line per request (one in cfg.AccessLogEvery of
// the reads answered below 400) and records the request metrics of each,
// labelled by chi's route pattern so that cardinality stays bounded.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		elapsed := time.Since(start)
		status := ww.Status()
		if status == 0 { // nothing written: net/http sends 200
			status = http.StatusOK
		}
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" && r.Method == http.MethodOptions {
			// A CORS preflight, answered before routing: the route it
			// asks about.
			route = s.preflightRoute(r)
		}
		if route == "" {
			route = "unmatched"
		}
		// Route patterns, methodLabel and HTTP codes are bounded, so are the series.
		method := methodLabel(r.Method)
		s.metrics.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		s.metrics.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())
		// One event per request: an event dropped without Msg never goes
		// back to zerolog's pool.
		var ev *zerolog.Event
		switch {
		case status < 400 && (route == "/healthz" || route == "/readyz" || route == "/metrics"):
			// Probes and scrapes (a line every few seconds per replica):
			// debug unless they fail.
			ev = s.logger.Debug()
		case status >= 400 || r.Method == http.MethodPut || r.Method == http.MethodDelete:
			// Failures, and catalogue changes, whose only line this is.
			ev = s.logger.Info()
		default:
			ev = s.answered.Info()
		}
		ev.Str("request_id", middleware.GetReqID(r.Context())).
			Str("method", truncate(r.Method, 32)).
			Str("path", truncate(r.URL.Path, maxField)).
			Str("route", route).
			Int("status", status).
			Int("bytes", ww.BytesWritten()).
			Float64("duration_ms", float64(elapsed.Microseconds())/1000).
			Str("remote_ip", clientIP(r)).
			Msg("request")
	})
}

// preflightRoute is the route pattern a preflight's path and
// Access-Control-Request-Method would reach, "" if none.
func (s *Server) preflightRoute(r *http.Request) string {
	rctx := chi.NewRouteContext()
	// The path chi routes on: the escaped one when the request had one.
	if !s.mux.Match(rctx, r.Header.Get("Access-Control-Request-Method"), cmp.Or(r.URL.RawPath, r.URL.Path)) {
		return ""
	}
	return rctx.RoutePattern()
}

// clientIP is the address chi's ClientIPFromXFF found behind trusted
// proxies, else the peer's.
func clientIP(r *http.Request) string {
	if ip := middleware.GetClientIP(r.Context()); ip != "" {
		return ip
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap().String()
	}
	return ""
}

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
			if ww, ok := w.(middleware.WrapResponseWriter); ok && ww.Status() != 0 {
				// The response has started: abort the connection so the
				// client cannot mistake a truncated body for a whole one.
				panic(http.ErrAbortHandler)
			}
			s.fail(w, r, internalError(nil))
		}()
		next.ServeHTTP(w, r)
	})
}

// deadline is the context of a request's work, once its body is read (the
// read timeout covers the upload): it ends RequestTimeout later. The
// serving core answers context.DeadlineExceeded (504) when it passes before
// the index search, and a batch's remaining entries get that problem.
func (s *Server) deadline(r *http.Request) (context.Context, context.CancelFunc) {
	if s.cfg.RequestTimeout <= 0 {
		return context.WithCancel(r.Context())
	}
	return context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
}

// limitBody caps request bodies: a declared length over the limit is
// refused at once, a longer streamed body fails while it is read.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.BodyLimit {
			s.fail(w, r, tooLarge(s.cfg.BodyLimit))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.BodyLimit)
		next.ServeHTTP(w, r)
	})
}

func tooLarge(limit int64) *apiError {
	return &apiError{code: codeTooLarge, detail: "request body is larger than " + strconv.FormatInt(limit, 10) + " bytes"}
}
