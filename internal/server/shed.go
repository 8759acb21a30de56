package server

import (
	"fmt"
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
// until then, up to the write timeout for a client that does not read. A
// request heavier than the whole capacity counts as the whole capacity (it
// runs when nothing else is in flight); the service's configuration keeps
// the capacity at least one maximal batch.
func (s *Server) admit(r *http.Request, weight int64) (release func(), err error) {
	if s.inflight == nil { // no limit
		return func() {}, nil
	}
	weight = min(max(weight, 1), s.cfg.MaxItemsInFlight)
	if !s.inflight.TryAcquire(weight) {
		s.metrics.shed.WithLabelValues(chi.RouteContext(r.Context()).RoutePattern()).Inc() // "" without a route context
		return nil, &apiError{code: codeOverloaded, detail: fmt.Sprintf("the server has too many answer items in flight to take this request's %d; retry shortly", weight)}
	}
	return func() { s.inflight.Release(weight) }, nil
}

// reserveBody reserves a request body's size (its Content-Length;
// BodyLimit for a streamed one) out of Config.MaxBodyBytesInFlight before
// the body is read, until the answer is written; a body that does not fit
// is shed as admit sheds. Bodies are read before any other check, so slow
// uploads would otherwise hold memory without bound (150 connections
// stalled near the end of a 1 MiB body held 210 MB). It runs after
// limitBody, on the routes admit guards; PUT /movies needs the catalogue
// token first.
func (s *Server) reserveBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := r.ContentLength; s.bodies != nil && n != 0 {
			if n < 0 {
				n = s.cfg.BodyLimit
			}
			if !s.bodies.TryAcquire(n) {
				s.metrics.shed.WithLabelValues(chi.RouteContext(r.Context()).RoutePattern()).Inc()
				s.fail(w, r, &apiError{code: codeOverloaded, detail: fmt.Sprintf("the server is reading too many request bodies to take this one's %d bytes; retry shortly", n)})
				return
			}
			defer s.bodies.Release(n)
		}
		next.ServeHTTP(w, r)
	})
}
