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
// of their own, never on the API's, which faces clients. There is no
// write timeout: a CPU profile or a trace streams for the seconds asked.
func serveDebug(addr string, logger zerolog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serve.debug_addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // heap, goroutine, allocs, block, mutex, threadcreate
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	logger = logger.With().Str("component", "profiler").Logger()
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: server.ErrorLog(logger)}
	if ip, ok := ln.Addr().(*net.TCPAddr); ok && !ip.IP.IsLoopback() {
		// Profiles and goroutine dumps show the process's memory and code
		// paths to whoever reaches the port.
		logger.Warn().Str("addr", ln.Addr().String()).Msg("profiler listening on every interface, or a non-loopback one: bind serve.debug_addr to 127.0.0.1 (kubectl port-forward reaches it there)")
	} else {
		logger.Info().Str("addr", ln.Addr().String()).Msg("profiler listening (serve.debug_addr)")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error().Err(err).Msg("profiler stopped")
		}
	}()
	// stop returns once the listener is closed and Serve has returned.
	return func() { _ = hs.Close(); <-done }, nil
}
