// Package server is the HTTP face of towerrecall: routes, strict request
// decoding and validation, RFC 9457 problems, access logs and Prometheus
// metrics. It sits on top of the serving core (package recall), which it
// reaches through the small Recaller interface, and is wired by cmd/.
// openapi.yaml at the repository root is its contract.
package server

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/sync/semaphore"

	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/recall"
)

// Recaller is what the server needs from the serving core.
//
// Recall and Score report a request the model cannot answer as a
// *recall.Error (answered 400 naming its field) and a missing model as
// recall.NoModelError (503); context errors are answered 504 (deadline) or
// 503 (client gone); anything else is a 500.
type Recaller interface {
	Recall(ctx context.Context, req recall.Request) (recall.Result, error)
	// Pinned is Recall bound to the model and catalogue live now, for the
	// entries of one batch.
	Pinned() func(context.Context, recall.Request) (recall.Result, error)
	Score(ctx context.Context, req recall.ScoreRequest) (recall.ScoreResult, error)
	// Info describes the live model; false means no model is loaded.
	Info() (recall.ModelInfo, bool)
	// Movies and Similar serve the catalogue endpoints; Similar reports an
	// id the model does not know as a *recall.UnknownMovieError (404).
	Movies(query string, offset, limit int) (recall.MoviesResult, error)
	Similar(ctx context.Context, id movielens.MovieID, k int) (recall.SimilarResult, error)
	// PutMovie and DeleteMovie change the catalogue without retraining
	// and return once the change is durable and visible. A genre the
	// model does not know is a *recall.Error (400), deleting a movie it
	// does not have a *recall.UnknownMovieError (404), a journal failure
	// a *recall.JournalError (503 journal-unavailable, logged).
	PutMovie(ctx context.Context, m recall.Movie) (recall.PutResult, error)
	DeleteMovie(ctx context.Context, id movielens.MovieID) (recall.DeleteResult, error)
}

// Config tunes the HTTP server; config.Default holds the defaults. A zero
// timeout means none, as in net/http.
type Config struct {
	BodyLimit         int64         // largest accepted request body, bytes
	RequestTimeout    time.Duration // time to answer once the body is read; past it the answer is 504
	ReadHeaderTimeout time.Duration // slowloris protection
	ReadTimeout       time.Duration // whole request, body included
	WriteTimeout      time.Duration // must exceed ReadTimeout + RequestTimeout: it starts once the headers are read
	IdleTimeout       time.Duration // keep-alive connections
	ShutdownTimeout   time.Duration // how long Serve waits for in-flight requests after its context ends
	DrainDelay        time.Duration // how long Serve reports not-ready before it stops accepting
	MaxHeaderBytes    int
	// TrustedProxies are CIDR prefixes of proxies in front of the service.
	// A request whose TCP peer is inside one takes its client IP (in the
	// access log) from X-Forwarded-For, the rightmost untrusted entry;
	// empty means the TCP peer is the client.
	TrustedProxies []string
	// CORSOrigins are the exact web origins (https://app.example.com)
	// whose pages may call the API; empty: no CORS headers at all.
	CORSOrigins []string
	BatchMax    int // most entries of one POST /recall/batch
	// MaxItemsInFlight bounds the answer items (recall items, scores)
	// that requests being answered may hold at once; past it a request is
	// shed with 503 overloaded. 0: no limit.
	MaxItemsInFlight int64
	// MaxBodyBytesInFlight bounds the bytes of request bodies (past the
	// first 16 KiB of each) read and held until their answers are
	// written; a body whose next bytes do not fit is shed with 503
	// overloaded. 0: no limit.
	MaxBodyBytesInFlight int64
	MaxRecent            int // most user.recent_movie_ids of one request
	// AccessLogEvery: the access log has one line per this many requests
	// answered below 400 (0 or 1: each); those answered 400 or above, and
	// catalogue changes (PUT, DELETE), have one each.
	AccessLogEvery int
	// Explorer serves the explorer page at / (its assets under
	// /explorer/); off, / is a 404.
	Explorer bool
	// CatalogToken is the bearer token of PUT and DELETE
	// /movies/{movie_id}; empty: those routes do not exist (404).
	CatalogToken string
	// MetricsApart: GET /metrics is served on a listener of its own
	// (MetricsHandler), not among the API's routes.
	MetricsApart bool
}

// ConfigFrom takes the server's settings from the service's configuration
// (config.Default holds their defaults).
func ConfigFrom(s config.Serve) Config {
	return Config{
		BodyLimit: s.BodyLimit, RequestTimeout: s.RequestTimeout,
		ReadHeaderTimeout: s.ReadHeaderTimeout, ReadTimeout: s.ReadTimeout,
		WriteTimeout: s.WriteTimeout, IdleTimeout: s.IdleTimeout,
		ShutdownTimeout: s.ShutdownTimeout, DrainDelay: s.DrainDelay,
		MaxHeaderBytes: s.MaxHeaderBytes, TrustedProxies: s.TrustedProxies,
		CORSOrigins: s.CORSOrigins, BatchMax: s.BatchMax, MaxRecent: s.MaxRecentMovies, AccessLogEvery: s.AccessLogEvery,
		MaxItemsInFlight: s.MaxItemsInFlight, MaxBodyBytesInFlight: s.MaxBodyBytesInFlight,
		Explorer: s.Explorer, CatalogToken: s.CatalogToken, MetricsApart: s.MetricsAddr != "",
	}
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.BodyLimit <= 0 {
		errs = append(errs, fmt.Errorf("body limit must be positive, got %d", c.BodyLimit))
	}
	if c.BatchMax < 1 {
		errs = append(errs, fmt.Errorf("batch max must be positive, got %d", c.BatchMax))
	}
	if c.MaxItemsInFlight < 0 {
		errs = append(errs, fmt.Errorf("max items in flight must not be negative, got %d", c.MaxItemsInFlight))
	}
	if m := c.MaxBodyBytesInFlight; m != 0 && m < c.BodyLimit {
		errs = append(errs, fmt.Errorf("max body bytes in flight must be 0 (no limit) or at least the body limit (%d), got %d", c.BodyLimit, m))
	}
	if c.MaxRecent < 0 {
		errs = append(errs, fmt.Errorf("max recent movies must not be negative, got %d", c.MaxRecent))
	}
	if c.AccessLogEvery < 0 {
		errs = append(errs, fmt.Errorf("access log every must not be negative, got %d", c.AccessLogEvery))
	}
	for _, o := range c.CORSOrigins {
		if o == "" || strings.Contains(o, "*") || strings.Count(o, "/") != 2 {
			errs = append(errs, fmt.Errorf("CORS origin %q is not an exact origin such as https://app.example.com", o))
		}
	}
	if c.MaxHeaderBytes < 0 {
		errs = append(errs, fmt.Errorf("max header bytes must not be negative, got %d", c.MaxHeaderBytes))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"request timeout", c.RequestTimeout}, {"read header timeout", c.ReadHeaderTimeout},
		{"read timeout", c.ReadTimeout}, {"write timeout", c.WriteTimeout}, {"idle timeout", c.IdleTimeout},
		{"shutdown timeout", c.ShutdownTimeout}, {"drain delay", c.DrainDelay},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %v", d.name, d.v))
		}
	}
	if c.WriteTimeout > 0 && (c.RequestTimeout == 0 || c.ReadTimeout == 0 || c.WriteTimeout <= c.ReadTimeout+c.RequestTimeout) {
		// The write deadline starts once the headers are read: it covers
		// the body's upload and the answer.
		errs = append(errs, fmt.Errorf("write timeout (%v) must exceed non-zero read and request timeouts together (%v + %v), or slow uploads and timeouts cannot be answered", c.WriteTimeout, c.ReadTimeout, c.RequestTimeout))
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			errs = append(errs, fmt.Errorf("trusted proxy %q is not a CIDR prefix", p))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("server: config: %w", err)
	}
	return nil
}

// Server answers the towerrecall HTTP API. It is safe for concurrent use.
type Server struct {
	cfg      Config
	logger   zerolog.Logger
	answered zerolog.Logger // the access log of reads answered below 400: one in cfg.AccessLogEvery
	rec      Recaller
	reg      *prometheus.Registry
	metrics  *metrics
	mux      *chi.Mux // every route; also asked for the Allow header of 405 answers
	draining atomic.Bool
	assets   map[string]asset    // the explorer page's files; nil when it is off
	inflight *semaphore.Weighted // answer items in flight (see admit); nil: no limit
	heavy    *semaphore.Weighted // the share of them that heavy requests may hold (see admit)
	bodies   *semaphore.Weighted // request body bytes in flight (see reserveBody); nil: no limit
	answers  sync.Pool           // *[]byte: /recall's answer buffers, reused once written
}

// New builds a server. It registers the HTTP metrics on reg, which /metrics
// exposes together with whatever else is registered there.
func New(cfg Config, logger zerolog.Logger, rec Recaller, reg *prometheus.Registry) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rec == nil || reg == nil {
		return nil, errors.New("server: nil Recaller or Prometheus registry")
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, logger: logger, answered: logger, rec: rec, reg: reg, metrics: m}
	s.answers.New = func() any { return new([]byte) }
	if cfg.AccessLogEvery > 1 {
		s.answered = logger.Sample(&zerolog.BasicSampler{N: uint32(cfg.AccessLogEvery)})
	}
	if cfg.MaxItemsInFlight > 0 {
		s.inflight = semaphore.NewWeighted(cfg.MaxItemsInFlight)
		s.heavy = semaphore.NewWeighted(cfg.heavyShare())
	}
	if cfg.MaxBodyBytesInFlight > 0 {
		s.bodies = semaphore.NewWeighted(cfg.MaxBodyBytesInFlight)
	}
	if cfg.Explorer {
		s.assets = explorerAssets()
	}
	s.mux = s.routes()
	return s, nil
}

// Handler returns the root handler with every route and middleware.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve answers requests on ln until ctx is done, then drains: it reports
// not-ready, waits DrainDelay, stops accepting and waits up to
// ShutdownTimeout for in-flight requests. It closes ln and returns nil after
// a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          ErrorLog(s.logger.With().Str("component", "http").Logger()),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.logger.Info().Str("addr", ln.Addr().String()).Msg("serving HTTP")

	select {
	case err := <-errc:
		return fmt.Errorf("server: serve: %w", err)
	case <-ctx.Done():
	}

	s.draining.Store(true) // /readyz answers 503; every other route keeps serving
	if d := s.cfg.DrainDelay; d > 0 {
		s.logger.Info().Dur("drain_delay_ms", d).Msg("draining")
		time.Sleep(d)
	}
	s.logger.Info().Msg("shutting down HTTP")
	sctx := context.Background()
	if s.cfg.ShutdownTimeout > 0 {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(sctx, s.cfg.ShutdownTimeout)
		defer cancel()
	}
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
		<-errc
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("server: requests still in flight after serve.shutdown_timeout (%v) were cut off: %w", s.cfg.ShutdownTimeout, err)
		}
		return fmt.Errorf("server: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: serve: %w", err)
	}
	return nil
}

// ErrorLog is an error log for an http.Server that writes each of its
// lines (accept failures such as running out of file descriptors, a
// handler's panic) to l at error level: a zerolog.Logger used as an
// io.Writer writes them without one, where alerts on level=error miss them.
func ErrorLog(l zerolog.Logger) *log.Logger { return log.New(httpErrorLog{l}, "", 0) }

type httpErrorLog struct{ l zerolog.Logger }

func (w httpErrorLog) Write(p []byte) (int, error) {
	w.l.Error().Msg(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// metricsErrorLog is promhttp's error log: a scraper that hangs up mid-answer
// (a scrape timeout) makes one error per remaining metric family, which is
// the client's doing, so those go to debug; anything else is an error.
type metricsErrorLog struct{ l zerolog.Logger }

func (m metricsErrorLog) Println(v ...any) {
	ev := m.l.Error()
	for _, x := range v {
		if err, ok := x.(error); ok && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
			ev = m.l.Debug()
		}
	}
	ev.Msg(strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
