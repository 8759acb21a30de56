package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/server"
)

// serveDebug serves Go's profiler (net/http/pprof) on addr
// (serve.debug_addr) until stop is called: CPU and heap profiles,
// execution traces and goroutine dumps are for operators, on a listener
// of their own, never on the API's, which faces clients.
func serveDebug(addr string, logger zerolog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // heap, goroutine, allocs, block, mutex, threadcreate
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	logger = logger.With().Str("component", "profiler").Logger()
	stop, at, err := serveAside(addr, "serve.debug_addr", mux, logger)
	if err != nil {
		return nil, err
	}
	if ip, ok := at.(*net.TCPAddr); ok && !ip.IP.IsLoopback() {
		// Profiles and goroutine dumps show the process's memory and code
		// paths to whoever reaches the port.
		logger.Warn().Str("addr", at.String()).Msg("profiler listening on every interface, or a non-loopback one: bind serve.debug_addr to 127.0.0.1 (kubectl port-forward reaches it there)")
	} else {
		logger.Info().Str("addr", at.String()).Msg("profiler listening (serve.debug_addr)")
	}
	return stop, nil
}

// serveMetrics serves GET /metrics (h) on addr (serve.metrics_addr) until
// stop is called, for Prometheus on a port the API's clients need not reach.
func serveMetrics(addr string, h http.Handler, logger zerolog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	logger = logger.With().Str("component", "metrics").Logger()
	stop, at, err := serveAside(addr, "serve.metrics_addr", mux, logger)
	if err == nil {
		logger.Info().Str("addr", at.String()).Msg("metrics listening (serve.metrics_addr)")
	}
	return stop, err
}

// serveAside serves h on a listener of its own at addr (the setting key
// names it in errors) until stop is called, which returns once the
// listener is closed and Serve has returned. There is no write timeout: a
// CPU profile or a trace streams for the seconds asked.
func serveAside(addr, key string, h http.Handler, logger zerolog.Logger) (stop func(), at net.Addr, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", key, err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: server.ErrorLog(logger)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error().Err(err).Msg("stopped serving")
		}
	}()
	return func() { _ = hs.Close(); <-done }, ln.Addr(), nil
}
