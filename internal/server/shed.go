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
// until then, up to the write timeout for a client that does not read.
//
// Requests heavier than recall.MaxK items (batches) hold at most nine
// tenths of the capacity together (s.heavy), so that a tenth always stays
// for /recall and /score: ten clients that sent maximal batches and read
// nothing shed every /recall for the write timeout before (measured: 6.5
// s). A heavy request heavier than its share counts as the share (it runs
// when no other heavy one is in flight); the service's configuration keeps
// the capacity at least one maximal batch.
func (s *Server) admit(r *http.Request, weight int64) (release func(), err error) {
	if s.inflight == nil { // no limit
		return func() {}, nil
	}
	weight = max(weight, 1)
	heavy := weight > recall.MaxK
	if heavy {
		weight = min(weight, s.cfg.MaxItemsInFlight-s.cfg.MaxItemsInFlight/10)
	}
	full := func() error {
		return s.shed(r, fmt.Sprintf("the server has too many answer items in flight to take this request's %d; retry shortly", weight))
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
				s.fail(w, r, s.shed(r, fmt.Sprintf("the server is reading too many request bodies to take this one's %d bytes; retry shortly", n)))
				return
			}
			defer s.bodies.Release(n)
		}
		next.ServeHTTP(w, r)
	})
}

// shed counts a request refused as overloaded under its route and returns
// its problem (503, Retry-After: 1).
func (s *Server) shed(r *http.Request, detail string) error {
	s.metrics.shed.WithLabelValues(chi.RouteContext(r.Context()).RoutePattern()).Inc() // "" without a route context
	return &apiError{code: codeOverloaded, detail: detail}
}
