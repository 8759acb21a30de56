package server

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/cors"
	"github.com/rs/zerolog"
)

// routes lists the whole API. Handlers are methods of Server that return
// their failure, which handle answers.
func (s *Server) routes() *chi.Mux {
	r := chi.NewRouter()

	// Order matters: the request id comes first so every later step can
	// name the request; the access log wraps the recoverer so a panic is
	// logged and counted as the 500 the recoverer answers.
	r.Use(s.requestID)
	if len(s.cfg.TrustedProxies) > 0 {
		// The client's address from X-Forwarded-For (the access log
		// falls back to the peer's address without it).
		r.Use(middleware.ClientIPFromXFF(s.cfg.TrustedProxies...)) // prefixes checked by Validate
	}
	r.Use(s.accessLog)
	if len(s.cfg.CORSOrigins) > 0 {
		// Exact origins only (Validate refuses wildcards). Preflights are
		// answered 204 here and cached by browsers for 10 minutes. The
		// catalogue routes (with their bearer token) only when they exist.
		methods := []string{http.MethodGet, http.MethodHead, http.MethodPost}
		headers := []string{"Content-Type", requestIDHeader}
		if s.cfg.CatalogToken != "" {
			methods = append(methods, http.MethodPut, http.MethodDelete)
			headers = append(headers, "Authorization")
		}
		r.Use(cors.New(cors.Options{
			AllowedOrigins: s.cfg.CORSOrigins,
			AllowedMethods: methods,
			AllowedHeaders: headers,
			// Every header the contract declares for the API, so scripts
			// can read them (Retry-After on a 503 above all).
			ExposedHeaders: []string{requestIDHeader, "Allow", "WWW-Authenticate", "Retry-After", "Accept-Post"},
			MaxAge:         600,
		}).Handler)
	}
	// HEAD is answered wherever GET is (RFC 9110 §9.3.2): GET's handler
	// runs and net/http drops the body.
	r.Use(s.recoverer, middleware.GetHead)

	r.NotFound(s.handle(s.handleNotFound))
	r.MethodNotAllowed(s.handle(s.handleMethodNotAllowed))

	// Routes with a body cap it once routed, so that a 413 is counted
	// under its route. They are the routes admit and reserveBody may shed:
	// their shed count starts at 0, so a rate() over it exists before the
	// first shed.
	body := r.With(s.limitBody, s.reserveBody)
	for pattern, h := range map[string]func(http.ResponseWriter, *http.Request) error{
		"/recall": s.handleRecall, "/recall/batch": s.handleRecallBatch, "/score": s.handleScore,
	} {
		body.Post(pattern, s.handle(h))
		s.metrics.shed.WithLabelValues(pattern)
	}
	r.Get("/model", s.handle(s.handleModel))
	r.Get("/movies", s.handle(s.handleMovies))
	r.Get("/movies/{movie_id}/similar", s.handle(s.handleSimilar))
	if s.cfg.CatalogToken != "" {
		// Catalogue changes: off unless a token is configured, and then
		// only for requests that carry it.
		r.Group(func(r chi.Router) {
			r.Use(s.catalogAuth)
			r.With(s.limitBody).Put("/movies/{movie_id}", s.handle(s.handlePutMovie))
			r.Delete("/movies/{movie_id}", s.handle(s.handleDeleteMovie))
		})
	}
	if s.cfg.Explorer {
		r.Get("/", s.handle(s.handleExplorer))
		r.Get("/explorer/{file}", s.handle(s.handleExplorer))
	}
	r.Get("/healthz", s.handle(s.handleHealthz))
	r.Get("/readyz", s.handle(s.handleReadyz))
	if !s.cfg.MetricsApart {
		r.Method(http.MethodGet, "/metrics", MetricsHandler(s.reg, s.logger))
	}
	return r
}

// MetricsHandler serves reg in Prometheus's formats: GET /metrics among
// the routes, or on a listener of its own (Config.MetricsApart).
func MetricsHandler(reg *prometheus.Registry, logger zerolog.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      metricsErrorLog{logger.With().Str("component", "metrics").Logger()},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// handle adapts a handler that returns its failure instead of answering
// it: fail writes the problem, so a handler must not have written anything
// when it returns an error.
func (s *Server) handle(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.fail(w, r, err)
		}
	}
}
