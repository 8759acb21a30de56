package server

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes lists the whole API. Handlers are methods of Server.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	s.mux = r

	// Order matters: the request id comes first so every later step can
	// name the request; the access log wraps the recoverer so a panic is
	// logged and counted as the 500 the recoverer answers.
	r.Use(s.requestID)
	if len(s.cfg.TrustedProxies) > 0 {
		r.Use(middleware.ClientIPFromXFF(s.cfg.TrustedProxies...)) // prefixes checked by Validate
	} else {
		r.Use(middleware.ClientIPFromRemoteAddr)
	}
	r.Use(s.accessLog, s.recoverer, s.deadline, s.limitBody)

	r.NotFound(s.handleNotFound)
	r.MethodNotAllowed(s.handleMethodNotAllowed)

	r.Post("/recall", s.handleRecall)
	r.Post("/score", s.handleScore)
	r.Get("/model", s.handleModel)
	r.Get("/healthz", s.handleHealthz)
	r.Get("/readyz", s.handleReadyz)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorLog:      promLogger{s.logger},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	return r
}
