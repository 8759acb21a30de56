package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/loadtest"
)

// loadWorkers is the number of concurrent workers (and keep-alive
// connections) both servers are attacked with.
const loadWorkers = 16

// minLoadRatio is the bar (issue 11 retired the earlier 0.70 for simplicity): towerrecall serves at least this share of
// the bare handler's requests/s in the same run. Reported always; enforced
// with TOWERRECALL_PERF_ASSERT=1 only (the machine's cores are shared).
const minLoadRatio = 0.60

// TestE2ELoopbackLoad attacks, with vegeta and identical settings, (a) a
// bare net/http handler answering a fixed 1 KiB JSON and (b) the real
// binary serving an ml-1m-sized model, each in its own process on
// 127.0.0.1. The bar's workload is the request, /recall at k = 10,
// over a mix of users and options (known and cold-start users, genre
// filters, exclusions). The two cores are shared with the load generator
// and whatever else runs, and throughput drifts by tens of percent within
// seconds, so the two servers are attacked in alternating short rounds
// (the order flips every round) and the bar is the median of the rounds'
// ratios. Then the service is attacked with the same mix at k 10..100
// (bigger answers; reported, no bar), and for TOWERRECALL_LOAD=1 held under
// the k = 10 load for 60 s while its RSS and goroutine count, sampled every
// second, must stay flat from the 10th second on. Every request must get a
// 2xx. It reports requests/s, latency and CPU per request of each server.
//
// TOWERRECALL_E2E=1: 7 rounds of 2 s each. TOWERRECALL_LOAD=1: 15 rounds
// of 4 s, and the 60 s run. The model is TOWERRECALL_MODEL if set, else a
// synthetic ml-1m-sized one.
func TestE2ELoopbackLoad(t *testing.T) {
	e2eOnly(t)
	long := os.Getenv("TOWERRECALL_LOAD") != ""
	rounds, roundDur := 7, 2*time.Second
	if long {
		rounds, roundDur = 15, 4*time.Second
	}
	bin := buildBinary(t)
	model, bundle := loadModel(t)
	cat := loadtest.CatalogueOf(bundle)
	mix10, err := loadtest.RecallMix(cat, 4096, 1, 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	mixK, err := loadtest.RecallMix(cat, 4096, 1, 10, 100)
	if err != nil {
		t.Fatal(err)
	}
	set := loadtest.Settings{Workers: loadWorkers, Duration: roundDur}
	warm := loadtest.Settings{Workers: loadWorkers, Duration: time.Second}
	ctx := context.Background()

	bareAddr, barePid := startBare(t)
	bareTargets := loadtest.Targets("http://"+bareAddr+"/recall", mix10)
	p := startServe(t, bin, "--model", model)
	t.Logf("start to ready: %v ms (model %s)", p.ready["start_to_ready_ms"], model)
	var info modelResp
	p.c.json("GET", "/model", "", 200, &info)
	targets := loadtest.Targets("http://"+p.addr+"/recall", mix10)
	loadtest.Attack(ctx, "warm-up", bareTargets, warm, nil)
	loadtest.Attack(ctx, "warm-up", targets, warm, nil)
	rssWarm, err := loadtest.RSS(p.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}

	bad, checked := 0, 0
	spotCheck := func(r *vegeta.Result) {
		// Every 64th answer: a JSON body naming the live model.
		if r.Seq%64 != 0 || r.Code != 200 {
			return
		}
		checked++
		var resp recallResp
		if json.Unmarshal(r.Body, &resp) != nil || resp.ModelVersion != info.Version || len(resp.Items) == 0 {
			bad++
		}
	}
	var runs []loadtest.Summary
	run := func(name string, targets []vegeta.Target, pid int, s loadtest.Settings, each func(*vegeta.Result)) (loadtest.Summary, cpuMeter) {
		before := startCPU(t, pid)
		sum := loadtest.Attack(ctx, name, targets, s, each)
		after := startCPU(t, pid)
		runs = append(runs, sum)
		return sum, cpuMeter{pid: pid, server: after.server - before.server, client: after.client - before.client}
	}

	// Alternating rounds at k = 10.
	var ratios, bareRPS, trRPS []float64
	var bareCPU, trCPU cpuMeter
	var bareN, trN uint64
	var trLast loadtest.Summary
	for i := range rounds {
		var b, tr loadtest.Summary
		var bc, tc cpuMeter
		if i%2 == 0 {
			b, bc = run(fmt.Sprintf("bare net/http, round %d", i+1), bareTargets, barePid, set, nil)
			tr, tc = run(fmt.Sprintf("towerrecall k=10, round %d", i+1), targets, p.cmd.Process.Pid, set, spotCheck)
		} else {
			tr, tc = run(fmt.Sprintf("towerrecall k=10, round %d", i+1), targets, p.cmd.Process.Pid, set, spotCheck)
			b, bc = run(fmt.Sprintf("bare net/http, round %d", i+1), bareTargets, barePid, set, nil)
		}
		t.Logf("round %d: towerrecall %.0f req/s, bare %.0f req/s = %.0f %%", i+1, tr.RPS, b.RPS, 100*tr.RPS/b.RPS)
		ratios = append(ratios, tr.RPS/b.RPS)
		bareRPS, trRPS = append(bareRPS, b.RPS), append(trRPS, tr.RPS)
		bareCPU.server, bareCPU.client = bareCPU.server+bc.server, bareCPU.client+bc.client
		trCPU.server, trCPU.client = trCPU.server+tc.server, trCPU.client+tc.client
		bareN, trN = bareN+b.Requests, trN+tr.Requests
		trLast = tr
	}
	perReq := func(m cpuMeter, n uint64) cpuPerRequest {
		if n == 0 {
			return cpuPerRequest{}
		}
		return cpuPerRequest{server: m.server / time.Duration(n), client: m.client / time.Duration(n)}
	}
	ratio := median(ratios)

	// Bigger answers, for scale: the same mix at k 10..100.
	wide, wideCPU := run("towerrecall k=10..100", loadtest.Targets("http://"+p.addr+"/recall", mixK), p.cmd.Process.Pid,
		loadtest.Settings{Workers: loadWorkers, Duration: 5 * time.Second}, spotCheck)
	t.Log(wide.Line() + "; " + perReq(wideCPU, wide.Requests).String())

	// Held load: memory and goroutines must stay flat.
	var rss, gor []loadtest.Sample
	if long {
		sampleCtx, stopSampling := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			sc := &http.Client{Timeout: 5 * time.Second}
			start := time.Now()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-sampleCtx.Done():
					return
				case <-tick.C:
				}
				at := time.Since(start)
				if v, err := loadtest.RSS(p.cmd.Process.Pid); err == nil {
					rss = append(rss, loadtest.Sample{At: at, Value: float64(v)})
				}
				if v, err := loadtest.Gauge(sampleCtx, sc, "http://"+p.addr+"/metrics", "go_goroutines"); err == nil {
					gor = append(gor, loadtest.Sample{At: at, Value: v})
				}
			}
		})
		held, _ := run("towerrecall k=10, held 60 s", targets, p.cmd.Process.Pid, loadtest.Settings{Workers: loadWorkers, Duration: time.Minute}, spotCheck)
		stopSampling()
		wg.Wait()
		t.Log(held.Line())
	}
	rssAfter, err := loadtest.RSS(p.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}

	for _, s := range runs {
		if s.Requests == 0 || s.Non2xx != 0 || s.ErrorCount() != 0 {
			t.Errorf("%s: %d requests, %d non-2xx, %d errors: %s", s.Name, s.Requests, s.Non2xx, s.ErrorCount(), s.TopErrors(5))
		}
	}
	if bad > 0 || checked == 0 {
		t.Errorf("%d of %d spot-checked answers are not a recall of model %s", bad, checked, info.Version)
	}
	goroutines := "goroutines sampled with TOWERRECALL_LOAD=1 only"
	if len(gor) > 0 {
		maxG := 0.0
		for _, s := range gor {
			maxG = max(maxG, s.Value)
		}
		goroutines = fmt.Sprintf("goroutines ≤ %.0f", maxG)
	}
	summary := fmt.Sprintf("LOAD %s, %d workers, %d alternating rounds of %v, mixes of %d bodies: towerrecall k=10 median %.0f req/s (last round p50 %v, p99 %v, mean answer %.0f B) vs bare net/http median %.0f req/s (1 KiB answer); median ratio %.0f %% (rounds %s; bar ≥ %.0f %%); k=10..100 %.0f req/s (p50 %v, p99 %v, mean answer %.0f B) = %.0f %% of the bare median; CPU per request: bare %s, towerrecall k=10 %s, k=10..100 %s; service RSS %.1f MiB after warm-up, %.1f MiB at the end; %s; start to ready %v ms",
		info.Backend, loadWorkers, rounds, roundDur, len(mix10), median(trRPS), trLast.P50.Round(time.Microsecond), trLast.P99.Round(time.Microsecond), trLast.MeanBytesIn,
		median(bareRPS), 100*ratio, formatPercents(ratios), 100*minLoadRatio,
		wide.RPS, wide.P50.Round(time.Microsecond), wide.P99.Round(time.Microsecond), wide.MeanBytesIn, 100*wide.RPS/median(bareRPS),
		perReq(bareCPU, bareN), perReq(trCPU, trN), perReq(wideCPU, wide.Requests),
		float64(rssWarm)/(1<<20), float64(rssAfter)/(1<<20), goroutines, p.ready["start_to_ready_ms"])
	t.Log(summary)
	fmt.Println(summary)
	if ratio < minLoadRatio {
		msg := fmt.Sprintf("towerrecall reached a median %.0f %% of the bare handler's requests/s, bar %.0f %%", 100*ratio, 100*minLoadRatio)
		if os.Getenv("TOWERRECALL_PERF_ASSERT") != "" {
			t.Error(msg)
		} else {
			t.Log("BAR MISSED (not enforced without TOWERRECALL_PERF_ASSERT=1): " + msg)
		}
	}
	if long {
		// Flat: nothing grows by more than 20 % (plus 16 MiB of allocator
		// slack for RSS; two goroutines per connection, plus 8, for connection
		// churn) after 10 s.
		if err := loadtest.Flat("RSS", rss, 10*time.Second, 1.2, 16<<20); err != nil {
			t.Error(err)
		}
		if err := loadtest.Flat("goroutines", gor, 10*time.Second, 1.2, 2*loadWorkers+8); err != nil {
			t.Error(err)
		}
		t.Logf("RSS samples (MiB): %s", formatSamples(rss, 1<<20))
		t.Logf("goroutine samples: %s", formatSamples(gor, 1))
	}
	p.stop(t)
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

func formatPercents(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.0f", 100*x)
	}
	return strings.Join(parts, " ")
}

func formatSamples(s []loadtest.Sample, unit float64) string {
	var b strings.Builder
	for _, x := range s {
		fmt.Fprintf(&b, "%d:%.0f ", int(x.At.Seconds()+0.5), x.Value/unit)
	}
	return b.String()
}

// loadModel returns the artifact directory to serve: TOWERRECALL_MODEL, or
// a synthetic ml-1m-sized model saved into a temporary directory.
func loadModel(t *testing.T) (string, *artifact.Bundle) {
	t.Helper()
	if dir := os.Getenv("TOWERRECALL_MODEL"); dir != "" {
		b, err := artifact.Load(dir)
		if err != nil {
			t.Fatalf("TOWERRECALL_MODEL: %v", err)
		}
		return dir, b
	}
	b, err := loadtest.ML1M(1).Bundle()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "model")
	if err := artifact.Save(dir, b); err != nil {
		t.Fatal(err)
	}
	return dir, b
}

// startBare runs the bare handler in a child process (this test binary,
// re-executed into TestBareServerProcess) and returns its address. The
// child ends when the test does.
func startBare(t *testing.T) (addr string, pid int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBareServerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TOWERRECALL_BARE_SERVER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "bare-addr "); ok {
				addrc <- a
			}
		}
	}()
	select {
	case a := <-addrc:
		return a, cmd.Process.Pid
	case <-time.After(time.Minute):
		t.Fatal("bare server did not start")
	}
	return "", 0
}

// cpuMeter holds CPU time of a server process and of this process (the
// load generator): totals from startCPU, or what an attack used.
type cpuMeter struct {
	pid            int
	server, client time.Duration
}

// cpuPerRequest is CPU time per request, server and load generator.
type cpuPerRequest struct{ server, client time.Duration }

func (c cpuPerRequest) String() string {
	return fmt.Sprintf("server %.1f µs + load generator %.1f µs CPU/request",
		float64(c.server.Nanoseconds())/1e3, float64(c.client.Nanoseconds())/1e3)
}

func startCPU(t *testing.T, pid int) cpuMeter {
	t.Helper()
	srv, err := loadtest.CPUTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := loadtest.CPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	return cpuMeter{pid: pid, server: srv, client: cl}
}

// TestBareServerProcess is the bare handler's process for
// TestE2ELoopbackLoad; it does nothing in a normal run.
func TestBareServerProcess(t *testing.T) {
	if os.Getenv("TOWERRECALL_BARE_SERVER") != "1" {
		t.Skip("helper process of TestE2ELoopbackLoad")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: loadtest.BareHandler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("bare-addr %s\n", ln.Addr())
	// Bounded: a forgotten child exits on its own.
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Minute):
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
}
