package server

import (
	"fmt"
	"io"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/recall"
)

// config.MaxK, which bounds serve.max_items_in_flight from below, mirrors
// recall.MaxK (package config does not import recall): the build fails
// here if they ever differ.
const _ = uint(config.MaxK-recall.MaxK) + uint(recall.MaxK-config.MaxK)

// admit reserves weight answer items (the most an answer can hold: k for
// /recall, the entries' k summed for a batch, the ids for /score) out of
// Config.MaxItemsInFlight, without waiting: when they do not fit, it counts
// the shed request and returns its problem (503 overloaded, with
// Retry-After). The caller calls release once its answer is written (a
// deferred call, so also after a timeout, a panic or a client gone away; a
// failure's small problem is written after it): an answer's memory is held
// until then, up to the write timeout for a client that does not read.
//
// Requests heavier than recall.MaxK items (batches) hold at most nine
// tenths of the capacity together (s.heavy), so that a tenth always stays
// for /recall and /score: clients that send maximal batches and read
// nothing cannot shed every /recall for the write timeout. A request
// heavier than the capacity counts as the capacity, a heavy one heavier
// than its share as the share (it runs when no other heavy one is in
// flight); the service's configuration keeps the capacity at least one
// maximal batch.
func (s *Server) admit(r *http.Request, weight int64) (release func(), err error) {
	if s.inflight == nil { // no limit
		return func() {}, nil
	}
	asked := weight
	weight = min(max(weight, 1), s.cfg.MaxItemsInFlight)
	heavy := weight > recall.MaxK
	if heavy {
		weight = min(weight, s.cfg.heavyShare())
	}
	full := func() error {
		return s.shed(r, fmt.Sprintf("the server has too many answer items in flight to take this request's %d; retry shortly", asked))
	}
	if heavy && !s.heavy.TryAcquire(weight) {
		return nil, full()
	}
	if !s.inflight.TryAcquire(weight) {
		if heavy {
			s.heavy.Release(weight)
		}
		return nil, full()
	}
	return func() {
		s.inflight.Release(weight)
		if heavy {
			s.heavy.Release(weight)
		}
	}, nil
}

// bodyFree is how much of each request body is read without drawing on
// Config.MaxBodyBytesInFlight: a usual /recall or /score body (under
// 1 KiB; a maximal /score about 7 KiB) never waits on large uploads.
const bodyFree = 16 << 10

// reserveBody counts each request body's bytes past its first bodyFree out
// of Config.MaxBodyBytesInFlight as they arrive, and gives them back once
// the answer is written. Bodies are read before any other check, so slow
// uploads would otherwise hold memory without bound. A body whose next bytes
// do not fit is refused mid-read as admit sheds, with Connection: close
// (net/http would otherwise read on to drain it). Counting bytes as they
// arrive, not the declared length, means that holding the budget takes
// uploading it: connections that send headers and stall hold nothing.
func (s *Server) reserveBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.bodies == nil {
			next.ServeHTTP(w, r)
			return
		}
		b := &countedBody{ReadCloser: r.Body, s: s, w: w, r: r}
		r.Body = b
		defer func() { s.bodies.Release(b.held) }()
		next.ServeHTTP(w, r)
	})
}

// countedBody is a request body that reserves its bytes past bodyFree as
// they are read (see reserveBody).
type countedBody struct {
	io.ReadCloser
	s          *Server
	w          http.ResponseWriter
	r          *http.Request
	read, held int64
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.read += int64(n)
	if more := b.read - bodyFree - b.held; more > 0 {
		if !b.s.bodies.TryAcquire(more) {
			b.w.Header().Set("Connection", "close")
			return n, b.s.shed(b.r, "the server is reading too many request bodies to take more of this one; retry shortly")
		}
		b.held += more
	}
	return n, err
}

// shed counts a request refused as overloaded under its route and returns
// its problem (503, Retry-After: 1).
func (s *Server) shed(r *http.Request, detail string) error {
	s.metrics.shed.WithLabelValues(chi.RouteContext(r.Context()).RoutePattern()).Inc() // "" without a route context
	return &apiError{code: codeOverloaded, detail: detail, retry: "1"}
}

// heavyShare is how many answer items heavy requests (batches) may hold
// together: nine tenths of MaxItemsInFlight, so /recall always has room.
func (c Config) heavyShare() int64 { return c.MaxItemsInFlight - c.MaxItemsInFlight/10 }
