// Package server is the HTTP face of towerrecall: routes, strict request
// decoding and validation, RFC 9457 problems, access logs and Prometheus
// metrics. It sits on top of the serving core (package recall), which it
// reaches through the small Recaller interface, and is wired by cmd/.
// openapi.yaml at the repository root is its contract.
package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/recall"
)

// Recaller is what the server needs from the serving core.
//
// Recall and Score report a client's mistake as a *recall.Error (answered
// 400 naming its Field) and a missing model as an error with a method
// NotReady() bool returning true (answered 503; see NotReadyError). Context
// errors are answered 504 (deadline) or 503 (client gone); anything else is
// a 500, or a 503 if Info then reports no model.
type Recaller interface {
	Recall(ctx context.Context, req recall.Request) (recall.Result, error)
	Score(ctx context.Context, req recall.ScoreRequest) (recall.ScoreResult, error)
	// Info describes the live model; false means no model is loaded.
	Info() (recall.ModelInfo, bool)
}

// NotReadyError is an error a Recaller may return when it has no model. The
// server recognises any error with a NotReady() bool method, so the serving
// core can declare its own type instead of importing this package.
type NotReadyError struct {
	Reason string // safe to show to clients, e.g. "no model is loaded"
}

func (e *NotReadyError) Error() string {
	if e.Reason == "" {
		return "not ready"
	}
	return "not ready: " + e.Reason
}

// NotReady reports true; it marks the error as "no model".
func (e *NotReadyError) NotReady() bool { return true }

// Config tunes the HTTP server. Zero fields take the DefaultConfig value.
type Config struct {
	BodyLimit         int64         // largest accepted request body, bytes
	RequestTimeout    time.Duration // time budget of one request's handler (context deadline)
	ReadHeaderTimeout time.Duration // slowloris protection
	ReadTimeout       time.Duration // whole request, body included
	WriteTimeout      time.Duration // must exceed RequestTimeout so a timeout problem can be written
	IdleTimeout       time.Duration // keep-alive connections
	ShutdownTimeout   time.Duration // how long Serve waits for in-flight requests after its context ends
	DrainDelay        time.Duration // how long Serve reports not-ready before it stops accepting (0: none)
	MaxHeaderBytes    int
	// TrustedProxies are CIDR prefixes of proxies in front of the service.
	// A request whose TCP peer is inside one takes its client IP (in the
	// access log) from X-Forwarded-For, the rightmost untrusted entry;
	// empty means the TCP peer is the client.
	TrustedProxies []string
}

// DefaultConfig returns the defaults: 1 MiB bodies, a 2 s request budget and
// conservative connection timeouts.
func DefaultConfig() Config {
	return Config{
		BodyLimit:         1 << 20,
		RequestTimeout:    2 * time.Second,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       120 * time.Second,
		ShutdownTimeout:   15 * time.Second,
		DrainDelay:        0,
		MaxHeaderBytes:    64 << 10,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.BodyLimit == 0 {
		c.BodyLimit = d.BodyLimit
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = d.ReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = d.ShutdownTimeout
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = d.MaxHeaderBytes
	}
	return c
}

// Validate reports every problem of the configuration at once. Zero values
// are valid: they mean "default".
func (c Config) Validate() error {
	var errs []error
	neg := func(name string, d time.Duration) {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %v", name, d))
		}
	}
	if c.BodyLimit < 0 {
		errs = append(errs, fmt.Errorf("body limit must not be negative, got %d", c.BodyLimit))
	}
	if c.MaxHeaderBytes < 0 {
		errs = append(errs, fmt.Errorf("max header bytes must not be negative, got %d", c.MaxHeaderBytes))
	}
	neg("request timeout", c.RequestTimeout)
	neg("read header timeout", c.ReadHeaderTimeout)
	neg("read timeout", c.ReadTimeout)
	neg("write timeout", c.WriteTimeout)
	neg("idle timeout", c.IdleTimeout)
	neg("shutdown timeout", c.ShutdownTimeout)
	neg("drain delay", c.DrainDelay)
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			errs = append(errs, fmt.Errorf("trusted proxy %q is not a CIDR prefix", p))
		}
	}
	if len(errs) == 0 {
		f := c.withDefaults()
		if f.WriteTimeout <= f.RequestTimeout {
			errs = append(errs, fmt.Errorf("write timeout (%v) must exceed request timeout (%v), or timeouts cannot be answered", f.WriteTimeout, f.RequestTimeout))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("server: config: %w", err)
	}
	return nil
}

// Server answers the towerrecall HTTP API. It is safe for concurrent use.
type Server struct {
	cfg     Config
	logger  zerolog.Logger
	rec     Recaller
	reg     *prometheus.Registry
	metrics *metrics
	handler http.Handler
	mux     *chi.Mux // for the Allow header of 405 answers

	draining atomic.Bool
	bufs     sync.Pool // *bytes.Buffer for request bodies and encoded responses
	items    sync.Pool // *[]recall.Item: /recall answers' items, written by the Recaller
	writers  sync.Pool // *statusWriter, for the access log
	ids      *requestIDs
	hdr      headerValues

	// Member names of the request bodies, for strict decoding.
	recallMembers, scoreMembers *memberSet
}

// New builds a server. It registers the HTTP metrics on reg, which /metrics
// exposes together with whatever else is registered there.
func New(cfg Config, logger zerolog.Logger, rec Recaller, reg *prometheus.Registry) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, errors.New("server: nil Recaller")
	}
	if reg == nil {
		return nil, errors.New("server: nil Prometheus registry")
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg.withDefaults(),
		logger:  logger,
		rec:     rec,
		reg:     reg,
		metrics: m,
		bufs:    sync.Pool{New: func() any { return new(bytes.Buffer) }},
		items:   sync.Pool{New: func() any { s := make([]recall.Item, 0, pooledItems); return &s }},
		writers: sync.Pool{New: func() any { return new(statusWriter) }},
		ids:     newRequestIDs(),
		hdr:     headerValues{json: []string{"application/json"}, nosniff: []string{"nosniff"}},

		recallMembers: membersOf(reflect.TypeFor[recallBody]()),
		scoreMembers:  membersOf(reflect.TypeFor[scoreBody]()),
	}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the root handler with every route and middleware.
func (s *Server) Handler() http.Handler { return s.handler }

// SetDraining marks the instance as shutting down (or not): /readyz answers
// 503 while draining so load balancers stop sending traffic, while every
// other route keeps serving.
func (s *Server) SetDraining(draining bool) { s.draining.Store(draining) }

// Listen opens a TCP listener on addr. Port 0 picks a free port; the bound
// address is ln.Addr().
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("server: listen: %w", err)
	}
	return ln, nil
}

// Serve answers requests on ln until ctx is done, then drains: it reports
// not-ready, waits DrainDelay, stops accepting and waits up to
// ShutdownTimeout for in-flight requests. It closes ln and returns nil after
// a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          log.New(s.logger.With().Str("component", "http").Logger(), "", 0),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.logger.Info().Str("addr", ln.Addr().String()).Msg("serving HTTP")

	select {
	case err := <-errc:
		return fmt.Errorf("server: serve: %w", err)
	case <-ctx.Done():
	}

	s.SetDraining(true)
	if d := s.cfg.DrainDelay; d > 0 {
		s.logger.Info().Dur("drain_delay", d).Msg("draining")
		t := time.NewTimer(d)
		<-t.C
	}
	s.logger.Info().Msg("shutting down HTTP")
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
		<-errc
		return fmt.Errorf("server: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: serve: %w", err)
	}
	return nil
}

// getBuf and putBuf recycle buffers; huge ones are dropped so one large
// request does not pin memory.
func (s *Server) getBuf() *bytes.Buffer {
	b := s.bufs.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func (s *Server) putBuf(b *bytes.Buffer) {
	if b.Cap() > 64<<10 {
		return
	}
	s.bufs.Put(b)
}
