package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/towerrecall/towerrecall/internal/loadtest"
)

// runLoad drives the same closed-loop load (connections in flight, no
// pacing) at a bare net/http handler and at the real service, both in this
// process on 127.0.0.1. The attack, the bare handler and the request mix
// are those of internal/loadtest, so the numbers compare with its
// process-separated TestE2ELoopbackLoad.
func runLoad(ctx context.Context, o options, sv *serving, p *progress) (*LoadBench, error) {
	lb := &LoadBench{Tool: "vegeta v12.13.0 through `internal/loadtest` (Attack, BareHandler, RecallMix)", Connections: o.connections, Duration: o.loadDuration}
	mix, err := loadtest.RecallMix(loadtest.CatalogueOf(sv.bundle), 4096, o.seed, 10, 10)
	if err != nil {
		return nil, err
	}
	lb.Mix = "`loadtest.RecallMix` at k = 10 (the issue's request): 40 % known users, 20 % cold-start users, 20 % genre filters, 20 % exclusions"

	bare := &http.Server{Handler: loadtest.BareHandler(), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("load: listen: %w", err)
	}
	bareDone := make(chan error, 1)
	go func() { bareDone <- bare.Serve(ln) }()
	p.logf("load: bare handler on %s, %d connections, %s", ln.Addr(), o.connections, o.loadDuration)
	r, err := attack(ctx, loadtest.Targets("http://"+ln.Addr().String()+"/recall", mix), o)
	_ = bare.Close()
	<-bareDone
	if err != nil {
		return nil, err
	}
	r.Name, r.Detail = "bare net/http handler", "reads the body, answers a fixed 1 KiB JSON (`loadtest.BareHandler`)"
	p.logf("  %.0f req/s, p50 %v, p99 %v, %d errors", r.RPS(), percentile(r.Latencies, 0.5), percentile(r.Latencies, 0.99), r.Errors)
	lb.Runs = append(lb.Runs, r)

	// The served default first ("auto": HNSW when its self-check passes),
	// then the other backend, so both are measured under the same load.
	first, err := loadService(ctx, sv, "auto", mix, o, p)
	if err != nil {
		return nil, err
	}
	lb.Runs = append(lb.Runs, first)
	other := "exact"
	if first.Backend == "exact" {
		other = "hnsw"
	}
	second, err := loadService(ctx, sv, other, mix, o, p)
	if err != nil {
		return nil, err
	}
	lb.Runs = append(lb.Runs, second)
	return lb, nil
}

// loadService starts the real server with the given index backend on
// 127.0.0.1 and attacks POST /recall with mixed users.
func loadService(ctx context.Context, sv *serving, backend string, mix []loadtest.Request, o options, p *progress) (LoadRun, error) {
	reg := prometheus.NewRegistry()
	svc, err := newService(sv, backend, reg)
	if err != nil {
		return LoadRun{}, err
	}
	srv, err := newServer(svc, reg)
	if err != nil {
		return LoadRun{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return LoadRun{}, fmt.Errorf("load: listen: %w", err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	base := "http://" + ln.Addr().String()
	shutdown := func() error {
		stop()
		return <-served
	}
	if err := waitHealthy(ctx, base+"/healthz"); err != nil {
		_ = shutdown()
		return LoadRun{}, err
	}
	targets := loadtest.Targets(base+"/recall", mix)
	info, _ := svc.Info()
	p.logf("load: towerrecall (index %s → %s) on %s", backend, info.Backend, ln.Addr())
	r, err := attack(ctx, targets, o)
	if serr := shutdown(); err == nil && serr != nil {
		err = fmt.Errorf("load: server: %w", serr)
	}
	if err != nil {
		return r, err
	}
	r.Backend = info.Backend
	r.Name = fmt.Sprintf("towerrecall POST /recall, %s index", info.Backend)
	if backend == "auto" {
		r.Name += " (served default)"
	}
	r.Detail = fmt.Sprintf("the full server (middleware, access log encoded to a discard writer, metrics), %s index", info.Backend)
	p.logf("  %.0f req/s, p50 %v, p99 %v, %d errors", r.RPS(), percentile(r.Latencies, 0.5), percentile(r.Latencies, 0.99), r.Errors)
	return r, nil
}

func waitHealthy(ctx context.Context, url string) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("load: server did not become healthy within 10s")
}

// attack runs a short warm-up, then a saturating attack of o.loadDuration
// with o.connections workers, each with one request in flight on its own
// keep-alive connection, and keeps every latency for the percentiles and
// the histogram.
func attack(ctx context.Context, targets []vegeta.Target, o options) (LoadRun, error) {
	warm := loadtest.Settings{Workers: o.connections, Duration: min(time.Second, o.loadDuration/4)}
	loadtest.Attack(ctx, "warm-up", targets, warm, nil)
	var r LoadRun
	set := loadtest.Settings{Workers: o.connections, Duration: o.loadDuration}
	sum := loadtest.Attack(ctx, "load", targets, set, func(res *vegeta.Result) {
		r.Latencies = append(r.Latencies, res.Latency)
	})
	if err := ctx.Err(); err != nil {
		return r, err
	}
	r.Requests, r.Errors, r.Seconds = int(sum.Requests), sum.ErrorCount(), sum.Seconds
	if r.Requests == 0 {
		return r, errors.New("load: no request completed")
	}
	if r.Errors > 0 {
		r.ErrorSample = sum.TopErrors(3)
	}
	return r, nil
}
