package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/recall"
)

// Fault tests: the real binary on the demo catalogue (no real data needed),
// gated by TOWERRECALL_E2E=1. Every request loop is bounded in count and
// time and talks only to the 127.0.0.1 server the test started.

// fixedRequest is a request whose answer the tests know in advance for
// every model version.
type fixedRequest struct {
	body string
	req  recall.Request
}

func fixedRequests() []fixedRequest {
	return []fixedRequest{
		{`{"user":{"user_id":1,"gender":"F","age":25,"occupation":"programmer","zip":"94043"},"k":20}`,
			recall.Request{User: recall.User{UserInput: feature.UserInput{UserID: 1, Gender: "F", Age: 25, Occupation: "programmer", Zip: "94043"}}, K: 20}},
		{`{"user":{"gender":"M","age":60,"occupation":"retired"},"k":50}`,
			recall.Request{User: recall.User{UserInput: feature.UserInput{Gender: "M", Age: 60, Occupation: "retired"}}, K: 50}},
		{`{"user":{"user_id":7,"gender":"M"},"k":10,"genres":["Comedy"],"exclude_movie_ids":[1,2,3]}`,
			recall.Request{User: recall.User{UserInput: feature.UserInput{UserID: 7, Gender: "M"}}, K: 10, Genres: []string{"Comedy"}, ExcludeMovieIDs: []movielens.MovieID{1, 2, 3}}},
	}
}

// answer is what a /recall response is compared on.
type answer struct {
	IDs    []int
	Scores []float32
}

func answerOf(r recallResp) answer {
	var a answer
	for _, it := range r.Items {
		a.IDs = append(a.IDs, it.MovieID)
		a.Scores = append(a.Scores, it.Score)
	}
	return a
}

// expectedAnswers computes, in process and with the serve defaults, the
// answer to every fixed request under the model at dir.
func expectedAnswers(t *testing.T, dir string) (string, []answer) {
	t.Helper()
	b, err := artifact.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	if err := cfg.ApplyEnv(os.Getenv); err != nil { // as the served binary does
		t.Fatal(err)
	}
	svc, err := recall.New(recallOptions(cfg), zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Load(b); err != nil {
		t.Fatal(err)
	}
	var out []answer
	for _, f := range fixedRequests() {
		res, err := svc.Recall(context.Background(), f.req)
		if err != nil {
			t.Fatal(err)
		}
		var a answer
		for _, it := range res.Items {
			a.IDs = append(a.IDs, int(it.MovieID))
			a.Scores = append(a.Scores, it.Score)
		}
		out = append(out, a)
	}
	return b.Manifest.Version, out
}

// postRecall sends one /recall with hc and decodes a 200 answer.
func postRecall(ctx context.Context, hc *http.Client, base, body string) (int, recallResp, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/recall", strings.NewReader(body))
	if err != nil {
		return 0, recallResp{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, recallResp{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, recallResp{}, err
	}
	var r recallResp
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &r); err != nil {
			return resp.StatusCode, r, fmt.Errorf("decode: %w: %.200s", err, raw)
		}
	} else {
		err = fmt.Errorf("status %d: %.300s", resp.StatusCode, raw)
	}
	return resp.StatusCode, r, err
}

// TestE2EFaultReloadUnderLoad swaps a new artifact into the served
// directory and sends SIGHUP every second while clients send requests:
// no request fails, and every answer is exactly the one the model version
// it names gives.
func TestE2EFaultReloadUnderLoad(t *testing.T) {
	e2eOnly(t)
	fixed := fixedRequests()
	bin := buildBinary(t)
	dir := t.TempDir()
	var srcs []string
	want := map[string][]answer{}
	for seed := 1; seed <= 3; seed++ {
		src := filepath.Join(dir, fmt.Sprintf("a%d", seed))
		trainDemo(t, bin, src, seed)
		v, a := expectedAnswers(t, src)
		if _, dup := want[v]; dup {
			t.Fatalf("two artifacts with version %s", v)
		}
		want[v] = a
		srcs = append(srcs, src)
	}
	model := filepath.Join(dir, "model")
	first := install(t, srcs[0], model)
	p := startServe(t, bin, "--model", model)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
		versions = map[string]int{}
		total    atomic.Int64
	)
	fail := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, s)
		}
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 10 * time.Second}
			for i := w; i < 200_000 && !stop.Load(); i++ {
				f := i % len(fixed)
				status, r, err := postRecall(ctx, hc, "http://"+p.addr, fixed[f].body)
				total.Add(1)
				if err != nil {
					fail(fmt.Sprintf("request %d: status %d: %v", f, status, err))
					continue
				}
				exp, ok := want[r.ModelVersion]
				if !ok {
					fail(fmt.Sprintf("request %d: unknown model_version %q", f, r.ModelVersion))
					continue
				}
				if got := answerOf(r); !slices.Equal(got.IDs, exp[f].IDs) || !slices.Equal(got.Scores, exp[f].Scores) {
					fail(fmt.Sprintf("request %d under %s: items %v, want %v", f, r.ModelVersion, got.IDs, exp[f].IDs))
				}
				mu.Lock()
				versions[r.ModelVersion]++
				mu.Unlock()
			}
		}()
	}
	const reloads = 6
	last := first.Manifest.Version
	for i := 1; i <= reloads; i++ {
		time.Sleep(time.Second)
		b := install(t, srcs[i%len(srcs)], model)
		p.signal(t, syscall.SIGHUP)
		got := p.logs.waitLogN(t, "reloaded", i, 30*time.Second)
		if got["version"] != b.Manifest.Version {
			t.Errorf("reload %d: loaded %v, want %s", i, got["version"], b.Manifest.Version)
		}
		last = b.Manifest.Version
	}
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	var info modelResp
	p.c.json("GET", "/model", "", 200, &info)
	if info.Version != last {
		t.Errorf("/model version %s, want %s", info.Version, last)
	}
	t.Logf("%d requests across %d reloads; answers per version: %v", total.Load(), reloads, versions)
	if len(failures) > 0 {
		t.Errorf("%d+ failed or inconsistent requests, e.g.:\n%s", len(failures), strings.Join(failures, "\n"))
	}
	if len(versions) != len(srcs) {
		t.Errorf("answers came from %d versions, want %d", len(versions), len(srcs))
	}
	if n := len(p.logs.logLines("reload refused; the previous model keeps serving")); n != 0 {
		t.Errorf("%d reloads refused", n)
	}
	p.stop(t)
}

// TestE2EFaultBadArtifact points SIGHUP at broken artifacts: each reload
// is refused and logged with a reason, and the previous model keeps
// answering; a good artifact afterwards is loaded.
func TestE2EFaultBadArtifact(t *testing.T) {
	e2eOnly(t)
	fixed := fixedRequests()
	bin := buildBinary(t)
	dir := t.TempDir()
	model, a1, a2 := twoArtifacts(t, bin, dir)
	v1, want1 := expectedAnswers(t, a1)
	v2, _ := expectedAnswers(t, a2)
	p := startServe(t, bin, "--model", model)

	truncate := func(name string, keep float64) func(t *testing.T) {
		return func(t *testing.T) {
			path := filepath.Join(model, name)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, raw[:int(float64(len(raw))*keep)], 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name   string
		break_ func(t *testing.T) // turns the served directory into a bad artifact
		reason string             // in the refusal's error
	}{
		{"truncated vectors", truncate(artifact.VectorsFile, 0.5), "checksum mismatch"},
		{"truncated model", truncate(artifact.ModelFile, 0.3), "checksum mismatch"},
		{"truncated manifest", truncate(artifact.ManifestFile, 0.5), "manifest.json"},
		{"empty manifest", truncate(artifact.ManifestFile, 0), "manifest.json"},
		{"missing users file", func(t *testing.T) {
			if err := os.Remove(filepath.Join(model, artifact.UsersFile)); err != nil {
				t.Fatal(err)
			}
		}, "users.bin"},
		{"new version, one file corrupt", func(t *testing.T) {
			install(t, a2, model)
			path := filepath.Join(model, artifact.VectorsFile)
			raw, _ := os.ReadFile(path)
			raw[len(raw)/2] ^= 0x40
			if err := os.WriteFile(path, raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "checksum mismatch"},
		{"checksums match, contents do not decode", func(t *testing.T) {
			// A consistent manifest over a bad users.bin: only decoding can
			// tell.
			install(t, a1, model)
			rewriteListed(t, model, artifact.UsersFile, []byte{1, 0, 0, 0, 9, 9})
		}, "users.bin"},
		{"directory gone", func(t *testing.T) {
			if err := os.RemoveAll(model); err != nil {
				t.Fatal(err)
			}
		}, "no such file"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Start each case from the good first artifact on disk.
			if i > 0 {
				install(t, a1, model)
			}
			tt.break_(t)
			p.signal(t, syscall.SIGHUP)
			refused := p.logs.waitLogN(t, "reload refused; the previous model keeps serving", i+1, 30*time.Second)
			if e := fmt.Sprint(refused["error"]); !strings.Contains(e, tt.reason) {
				t.Errorf("refusal %q does not name %q", e, tt.reason)
			}
			var info modelResp
			p.c.json("GET", "/model", "", 200, &info)
			if info.Version != v1 {
				t.Errorf("/model version %s after a refused reload, want %s", info.Version, v1)
			}
			p.c.json("GET", "/readyz", "", 200, nil)
			for f, fr := range fixed {
				var r recallResp
				p.c.json("POST", "/recall", fr.body, 200, &r)
				if got := answerOf(r); r.ModelVersion != v1 || !slices.Equal(got.IDs, want1[f].IDs) {
					t.Errorf("request %d: version %s items %v, want %s %v", f, r.ModelVersion, got.IDs, v1, want1[f].IDs)
				}
			}
		})
	}
	if n := len(p.logs.logLines("reloaded")); n != 0 {
		t.Errorf("%d bad artifacts were loaded", n)
	}
	_, _, metrics := p.c.do("GET", "/metrics", "")
	if !strings.Contains(string(metrics), fmt.Sprintf(`towerrecall_model_loads_total{result="error"} %d`, len(tests))) {
		t.Errorf("/metrics does not count %d failed loads:\n%s", len(tests), grepLines(string(metrics), "towerrecall_model_loads_total"))
	}
	// A good artifact is taken again.
	install(t, a2, model)
	p.signal(t, syscall.SIGHUP)
	p.logs.waitLogN(t, "reloaded", 1, 30*time.Second)
	var info modelResp
	p.c.json("GET", "/model", "", 200, &info)
	if info.Version != v2 {
		t.Errorf("after a good reload: version %s, want %s", info.Version, v2)
	}
	p.stop(t)
}

// rewriteListed replaces file name in the artifact at dir and updates its
// checksum in the manifest, so that only decoding can find the damage.
func rewriteListed(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	mpath := filepath.Join(dir, artifact.ManifestFile)
	raw, err := os.ReadFile(mpath)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["files"].(map[string]any)[name] = sha256Hex(data)
	out, _ := json.Marshal(m)
	if err := os.WriteFile(mpath, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestE2EFaultSIGTERMDrain sends SIGTERM while clients send requests, with
// TestE2EReloadTriggers: a SIGHUP while the model is still loading (here,
// the demo being trained at start) is a reload once the service runs,
// never the end of the process; the reload poll compares the manifest on
// disk with the model serving, whichever trigger loaded it, so a rollback
// right after a SIGHUP reload is noticed and the SIGHUP's model is not
// loaded twice; an artifact refused at start is counted in /metrics, and
// shown as refused.
func TestE2EReloadTriggers(t *testing.T) {
	e2eOnly(t)
	bin := buildBinary(t)
	dir := t.TempDir()

	// SIGHUP during start.
	logs, logFile := fileLog(t)
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--model", filepath.Join(dir, "demo"))
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	// The demo trains for seconds after this line, which serve logs once
	// it handles SIGHUP itself (before, the signal would end it).
	for deadline := time.Now().Add(time.Minute); !strings.Contains(logs.String(), "training on the built-in DEMO catalogue"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no demo training within a minute; log:\n%s", tail(logs.String(), 2000))
		}
	}
	// The hint names the pid to signal: this process's, not that of a
	// go run wrapper around it.
	if want := fmt.Sprintf("kill -HUP %d (this process)", cmd.Process.Pid); !strings.Contains(logs.String(), want) {
		t.Errorf("the demo warning does not say %q; log:\n%s", want, tail(logs.String(), 2000))
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		t.Fatalf("serve exited on a SIGHUP during start: %v; log:\n%s", err, tail(logs.String(), 2000))
	case <-time.After(200 * time.Millisecond):
	}
	logs.waitLog(t, "ready", 2*time.Minute)
	logs.waitLogWhere(t, "reloaded", "trigger", "SIGHUP", 30*time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("serve: %v", err)
	}

	// The poll after a SIGHUP reload.
	model, a1, a2 := twoArtifacts(t, bin, dir)
	v1, _ := expectedAnswers(t, a1)
	v2, _ := expectedAnswers(t, a2)
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte("serve:\n  reload_poll: 3s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, bin, "--model", model, "--config", cfgPath)
	version := func() string {
		var m modelResp
		p.c.json("GET", "/model", "", 200, &m)
		return m.Version
	}
	install(t, a2, model)
	p.signal(t, syscall.SIGHUP)
	p.logs.waitLogN(t, "reloaded", 1, 30*time.Second)
	if got := version(); got != v2 {
		t.Fatalf("after SIGHUP: serving %s, want %s", got, v2)
	}
	install(t, a1, model) // rolled back before the poll looked
	deadline := time.Now().Add(15 * time.Second)
	for version() != v1 {
		if time.Now().After(deadline) {
			t.Fatalf("the poll did not notice the rollback to %s; log:\n%s", v1, tail(p.logs.String(), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i, l := range p.logs.logLines("reloaded") {
		if want := []string{v2, v1}; i >= len(want) || l["version"] != want[i] {
			t.Errorf("reload %d loaded %v; want %s then %s, each once", i+1, l["version"], v2, v1)
		}
	}
	// towerrecall rollback puts back the artifact the last install
	// replaced (v2), and the poll serves it.
	if out, err := exec.Command(bin, "rollback", "--model", model).CombinedOutput(); err != nil || !strings.Contains(string(out), "to version "+v2) {
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	deadline = time.Now().Add(15 * time.Second)
	for version() != v2 {
		if time.Now().After(deadline) {
			t.Fatalf("the poll did not notice the rollback command; log:\n%s", tail(p.logs.String(), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.stop(t)

	// Versions side by side behind a symbolic link (README, Deployment):
	// swapping the link publishes, swapping it back rolls back, each seen
	// by the manifest poll.
	link := filepath.Join(dir, "current")
	swap := func(to string) {
		t.Helper()
		next := link + ".next"
		_ = os.Remove(next)
		if err := os.Symlink(to, next); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(next, link); err != nil { // atomic, as mv -T
			t.Fatal(err)
		}
	}
	swap(a1)
	p = startServe(t, bin, "--model", link, "--config", cfgPath)
	for _, want := range []string{v2, v1} {
		swap(map[string]string{v1: a1, v2: a2}[want])
		deadline := time.Now().Add(15 * time.Second)
		for version() != want {
			if time.Now().After(deadline) {
				t.Fatalf("the poll did not follow the link to %s; log:\n%s", want, tail(p.logs.String(), 3000))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	p.stop(t)

	// An artifact refused at start is counted.
	bad := filepath.Join(dir, "bad")
	install(t, a1, bad)
	if err := os.Truncate(filepath.Join(bad, artifact.ModelFile), 100); err != nil {
		t.Fatal(err)
	}
	q := startServeNotReady(t, bin, "--model", bad)
	_, _, metrics := q.c.do("GET", "/metrics", "")
	if !strings.Contains(string(metrics), `towerrecall_model_loads_total{result="error"} 1`) {
		t.Errorf("a refusal at start is not counted:\n%s", grepLines(string(metrics), "towerrecall_model_loads_total"))
	}
	if !strings.Contains(string(metrics), "\ntowerrecall_model_refused 1\n") { // TowerrecallModelRefused's series
		t.Errorf("a refusal at start does not set towerrecall_model_refused:\n%s", grepLines(string(metrics), "towerrecall_model_refused"))
	}
	q.stop(t)
}

// A second SIGTERM (or Ctrl-C) ends the process at once: here in the
// middle of a 60 s drain that the first one began.
func TestE2EFaultSecondSignal(t *testing.T) {
	e2eOnly(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	trainDemo(t, bin, model, 1)
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte("serve:\n  drain_delay: 60s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, bin, "--model", model, "--config", cfgPath)
	p.signal(t, syscall.SIGTERM)
	p.logs.waitLog(t, "draining", 30*time.Second)
	// The default action comes back on a goroutine of its own, an instant
	// after the line: the second signal is sent until it ends the process.
	giveUp := time.After(15 * time.Second)
	for {
		_ = p.cmd.Process.Signal(syscall.SIGTERM) // fails only once it has ended
		select {
		case err := <-p.exit:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Errorf("serve exited with %v after the second signal, want killed by it", err)
			}
			return
		case <-time.After(500 * time.Millisecond):
		case <-giveUp:
			t.Fatalf("serve still running 15 s after a second SIGTERM; log:\n%s", tail(p.logs.String(), 3000))
		}
	}
}

// serve.drain_delay 1s: /readyz fails before the listener closes, requests
// keep being answered while draining, a request already in flight (its
// body still arriving) completes, and the process exits 0.
func TestE2EFaultSIGTERMDrain(t *testing.T) {
	e2eOnly(t)
	fixed := fixedRequests()
	bin := buildBinary(t)
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	trainDemo(t, bin, model, 1)
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte("serve:\n  drain_delay: 1s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, bin, "--model", model, "--config", cfgPath)
	base := "http://" + p.addr
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	since := func() time.Duration { return time.Since(t0) }

	type outcome struct {
		start, end time.Duration
		status     int
		err        error
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
		wg       sync.WaitGroup
	)
	record := func(o outcome) {
		mu.Lock()
		defer mu.Unlock()
		outcomes = append(outcomes, o)
	}
	// Load: keep-alive clients until their first transport error (as a
	// balancer stops sending to a closed backend), at most 60 s or 100k
	// requests each.
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 10 * time.Second}
			for i := 0; i < 100_000 && ctx.Err() == nil; i++ {
				s := since()
				status, _, err := postRecall(ctx, hc, base, fixed[(w+i)%len(fixed)].body)
				record(outcome{start: s, end: since(), status: status, err: err})
				if err != nil && status == 0 {
					return
				}
			}
		}()
	}
	// Readiness, polled on fresh connections as a balancer would.
	var firstNotReady, firstRefused time.Duration
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for i := 0; i < 3000 && ctx.Err() == nil; i++ {
			resp, err := hc.Get(base + "/readyz")
			now := since()
			if err != nil {
				if firstRefused == 0 {
					firstRefused = now
				}
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable && firstNotReady == 0 {
				firstNotReady = now
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	// In flight across the whole drain: the body arrives over ~2.5 s.
	slow := make(chan outcome, 1)
	go func() {
		pr, pw := io.Pipe()
		go func() {
			body := fixed[0].body
			for i := range len(body) {
				if _, err := pw.Write([]byte{body[i]}); err != nil {
					return
				}
				time.Sleep(2500 * time.Millisecond / time.Duration(len(body)))
			}
			pw.Close()
		}()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/recall", pr)
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = int64(len(fixed[0].body))
		s := since()
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
		o := outcome{start: s, err: err}
		if err == nil {
			var r recallResp
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			o.status = resp.StatusCode
			if json.Unmarshal(raw, &r) != nil || len(r.Items) != 20 {
				o.err = fmt.Errorf("answer: %.200s", raw)
			}
		}
		o.end = since()
		slow <- o
	}()

	time.Sleep(300 * time.Millisecond)
	sigAt := since()
	p.signal(t, syscall.SIGTERM)
	p.wait(t) // exit status 0
	exitAt := since()
	wg.Wait()
	<-pollDone
	so := <-slow

	t.Logf("SIGTERM at %v; /readyz 503 from %v; connections refused from %v; exit at %v; slow request %v → %v",
		sigAt.Round(time.Millisecond), firstNotReady.Round(time.Millisecond), firstRefused.Round(time.Millisecond),
		exitAt.Round(time.Millisecond), so.start.Round(time.Millisecond), so.end.Round(time.Millisecond))
	if firstNotReady == 0 || firstRefused != 0 && firstRefused < firstNotReady {
		t.Errorf("/readyz did not fail before the listener closed (503 at %v, refused at %v)", firstNotReady, firstRefused)
	}
	if so.err != nil || so.status != http.StatusOK {
		t.Errorf("request in flight during shutdown: status %d, %v", so.status, so.err)
	}
	if so.end < firstRefused { // its body takes 2.5 s; the listener closes ~1.3 s in
		t.Errorf("the slow request finished at %v, before the listener closed at %v: in-flight completion was not tested", so.end, firstRefused)
	}
	okDuring, errs := 0, 0
	for _, o := range outcomes {
		switch {
		case o.status != 0 && o.status != http.StatusOK:
			t.Errorf("request at %v: status %d: %v", o.start, o.status, o.err)
		case o.err != nil:
			errs++
			if o.start < firstNotReady {
				t.Errorf("request started at %v, before draining began, failed: %v", o.start, o.err)
			}
		case o.start >= firstNotReady:
			okDuring++
		}
	}
	t.Logf("%d requests: %d answered 200 while draining, %d transport errors after the drain began", len(outcomes), okDuring, errs)
	if okDuring == 0 {
		t.Error("no request was answered while draining")
	}
	if !strings.Contains(p.logs.String(), `"message":"draining"`) {
		t.Error("no draining log line")
	}
}

// TestE2EFaultTrainUnwritableOut makes train's output fail in the ways
// that fail even as root: a regular file where a directory should be, a
// file size limit, a full file system. Each is a clear error, leaves no
// partial artifact, and leaves an existing good artifact as it was.
func TestE2EFaultTrainUnwritableOut(t *testing.T) {
	e2eOnly(t)
	bin := buildBinary(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	trainDemo(t, bin, good, 1)

	train := func(t *testing.T, out string, wrap ...string) (string, error) {
		t.Helper()
		args := append(wrap, bin, "train", "--data", "demo", "--out", out, "--seed", "5", "--epochs", "1", "--progress=false")
		cmd := exec.Command(args[0], args[1:]...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if err != nil {
			t.Logf("train: %v: %s", err, lastLine(stderr.String()))
		}
		return stderr.String(), err
	}
	noTemp := func(t *testing.T, parent string) {
		t.Helper()
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp-") {
				t.Errorf("partial artifact left behind: %s", filepath.Join(parent, e.Name()))
			}
		}
	}

	t.Run("parent is a regular file", func(t *testing.T) {
		file := filepath.Join(dir, "plainfile")
		if err := os.WriteFile(file, []byte("not a directory\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := train(t, filepath.Join(file, "model"))
		if err == nil {
			t.Fatal("train succeeded")
		}
		if !strings.Contains(out, "not a directory") || !strings.Contains(out, "plainfile") {
			t.Errorf("error does not say what is wrong:\n%s", tail(out, 1000))
		}
		if raw, _ := os.ReadFile(file); string(raw) != "not a directory\n" {
			t.Error("the file was changed")
		}
		noTemp(t, dir)
	})

	t.Run("out is a regular file", func(t *testing.T) {
		file := filepath.Join(dir, "notes.txt")
		if err := os.WriteFile(file, []byte("precious\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := train(t, file)
		if raw, rerr := os.ReadFile(file); rerr != nil || string(raw) != "precious\n" {
			t.Errorf("train --out FILE replaced the file (err %v, train err %v):\n%s", rerr, err, tail(out, 600))
		}
		if err == nil {
			t.Error("train --out FILE succeeded")
		}
		noTemp(t, dir)
	})

	t.Run("out is a directory that is not an artifact", func(t *testing.T) {
		other := filepath.Join(dir, "photos")
		if err := os.MkdirAll(other, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(other, "cat.jpg"), []byte("meow"), 0o644); err != nil {
			t.Fatal(err)
		}
		before := dirSums(t, other)
		out, err := train(t, other)
		if err == nil || !strings.Contains(out, "not an artifact") {
			t.Errorf("train into a foreign directory: err %v:\n%s", err, tail(out, 600))
		}
		if !mapsEqual(before, dirSums(t, other)) {
			t.Error("the directory was changed")
		}
		noTemp(t, dir)
	})

	t.Run("file size limit", func(t *testing.T) {
		prlimit, err := exec.LookPath("prlimit")
		if err != nil {
			skipWithoutSystem(t, "no prlimit")
		}
		before := dirSums(t, good)
		// 64 KiB: smaller than the model file, larger than the config.
		out, err := train(t, good, prlimit, "--fsize=65536")
		if err == nil {
			t.Fatal("train succeeded under a 64 KiB file size limit")
		}
		if !strings.Contains(out, "file too large") {
			t.Errorf("error does not say what is wrong:\n%s", tail(out, 1000))
		}
		if !mapsEqual(before, dirSums(t, good)) {
			t.Error("the existing good artifact was changed")
		}
		if _, err := artifact.Load(good); err != nil {
			t.Errorf("the existing artifact no longer loads: %v", err)
		}
		noTemp(t, dir)
	})

	t.Run("file system full", func(t *testing.T) {
		mnt := filepath.Join(dir, "small")
		if err := os.MkdirAll(mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		size := 0
		for _, v := range dirSums(t, good) {
			size += len(v)
		}
		// Room for the good artifact and a little more, not for a second one.
		opt := fmt.Sprintf("size=%d", size+size/4+64<<10)
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opt, "tmpfs", mnt).CombinedOutput(); err != nil {
			skipWithoutSystem(t, fmt.Sprintf("cannot mount a small tmpfs: %v %s", err, out))
		}
		t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
		target := filepath.Join(mnt, "model")
		install(t, good, target)
		before := dirSums(t, target)
		out, err := train(t, target)
		if err == nil {
			t.Fatal("train succeeded on a full file system")
		}
		if !strings.Contains(out, "no space left on device") {
			t.Errorf("error does not say what is wrong:\n%s", tail(out, 1000))
		}
		if !mapsEqual(before, dirSums(t, target)) {
			t.Error("the existing good artifact was changed")
		}
		noTemp(t, mnt)
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestE2EFaultSlowClients sends what a hostile or broken client sends —
// headers a byte at a time, a body a byte at a time, a 100 MB body
// declared and streamed — while normal clients keep sending requests: the
// slow ones are cut off by the server's timeouts, the big ones get 413, and
// every normal request is answered.
func TestE2EFaultSlowClients(t *testing.T) {
	e2eOnly(t)
	fixed := fixedRequests()
	bin := buildBinary(t)
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	trainDemo(t, bin, model, 1)
	// Shorter timeouts than the defaults keep the test quick; the code
	// paths are the same.
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte("serve:\n  read_header_timeout: 1s\n  read_timeout: 2s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, bin, "--model", model, "--config", cfgPath)
	base := "http://" + p.addr
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var (
		stop        atomic.Bool
		wg          sync.WaitGroup
		okN, failed atomic.Int64
		firstFail   atomic.Value
	)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 10 * time.Second}
			for i := 0; i < 100_000 && !stop.Load(); i++ {
				if _, _, err := postRecall(ctx, hc, base, fixed[(w+i)%len(fixed)].body); err != nil {
					failed.Add(1)
					firstFail.CompareAndSwap(nil, err.Error())
					continue
				}
				okN.Add(1)
			}
		}()
	}

	var hostile sync.WaitGroup
	type cut struct {
		name  string
		sent  int
		total int
		after time.Duration
		reply string
	}
	cuts := make(chan cut, 64)
	// trickle writes head, then tail one byte every 100 ms, and reports
	// how much got through before the server closed the connection.
	trickle := func(name string, head, tail string) {
		defer hostile.Done()
		conn, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
		if err != nil {
			cuts <- cut{name: name, reply: "dial: " + err.Error()}
			return
		}
		defer conn.Close()
		start := time.Now()
		closed := make(chan string, 1)
		go func() {
			raw, _ := io.ReadAll(io.LimitReader(conn, 4096)) // until the server closes
			line, _, _ := strings.Cut(string(raw), "\r\n")
			closed <- line
		}()
		if _, err := io.WriteString(conn, head); err != nil {
			cuts <- cut{name: name, reply: "write: " + err.Error()}
			return
		}
		sent := 0
		for sent < len(tail) {
			select {
			case line := <-closed:
				cuts <- cut{name: name, sent: sent, total: len(tail), after: time.Since(start), reply: line}
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := conn.Write([]byte{tail[sent]}); err != nil {
				break
			}
			sent++
		}
		select {
		case line := <-closed:
			cuts <- cut{name: name, sent: sent, total: len(tail), after: time.Since(start), reply: line}
		case <-time.After(5 * time.Second):
			cuts <- cut{name: name, sent: sent, total: len(tail), after: time.Since(start), reply: "(still open)"}
		}
	}
	padding := strings.Repeat("a", 150) // 15 s at 10 bytes/s: far past every timeout
	for i := range 8 {
		hostile.Add(2)
		go trickle(fmt.Sprintf("slow headers %d", i), "POST /recall HTTP/1.1\r\nHost: x\r\n", "X-Slow: "+padding+"\r\n\r\n")
		body := `{"user":{"gender":"F"},"k":10,"genres":["` + padding + `"]}`
		go trickle(fmt.Sprintf("slow body %d", i),
			fmt.Sprintf("POST /recall HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body)), body)
	}

	// 100 MB bodies: declared up front, and streamed chunked.
	const hundredMB = 100 << 20
	bigStatus := map[string]int{}
	{
		conn, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /recall HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"user\":", hundredMB)
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Errorf("declared 100 MB body: %v", err)
		} else {
			bigStatus["declared"] = resp.StatusCode
			resp.Body.Close()
		}
		conn.Close()
	}
	{
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/recall",
			io.MultiReader(strings.NewReader(`{"user":{},"k":10,"genres":["`), io.LimitReader(repeatByte('x'), hundredMB)))
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = -1 // chunked
		resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
		if err != nil {
			t.Errorf("streamed 100 MB body: %v", err)
		} else {
			bigStatus["streamed"] = resp.StatusCode
			resp.Body.Close()
		}
	}
	hostile.Wait()
	close(cuts)
	stop.Store(true)
	wg.Wait()

	for how, status := range bigStatus {
		if status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s 100 MB body: status %d, want 413", how, status)
		}
	}
	if len(bigStatus) != 2 {
		t.Errorf("100 MB bodies answered: %v", bigStatus)
	}
	for c := range cuts {
		switch {
		case c.sent >= c.total || c.reply == "(still open)" || strings.HasPrefix(c.reply, "dial") || strings.HasPrefix(c.reply, "write"):
			t.Errorf("%s: not cut off: sent %d of %d bytes in %v (%s)", c.name, c.sent, c.total, c.after, c.reply)
		case strings.HasPrefix(c.name, "slow body") && !strings.HasPrefix(c.reply, "HTTP/1.1 408"):
			// The headers arrived, so the server answers the stalled body.
			t.Errorf("%s: cut off with %q, want a 408 answer", c.name, c.reply)
		default:
			t.Logf("%s: cut off after %v, %d of %d bytes sent; server said %q", c.name, c.after.Round(10*time.Millisecond), c.sent, c.total, c.reply)
		}
	}
	t.Logf("normal requests meanwhile: %d ok, %d failed; 100 MB bodies: %v", okN.Load(), failed.Load(), bigStatus)
	if failed.Load() != 0 || okN.Load() == 0 {
		t.Errorf("normal requests: %d ok, %d failed (first: %v)", okN.Load(), failed.Load(), firstFail.Load())
	}
	p.c.json("GET", "/readyz", "", 200, nil)
	p.stop(t)
}

// repeatByte is an endless reader of one byte.
type repeatByte byte

func (r repeatByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// twoArtifacts trains demo artifacts dir/a1 and dir/a2 (seeds 1 and 2)
// and installs a1 as the served model, dir/model.
func twoArtifacts(t *testing.T, bin, dir string) (model, a1, a2 string) {
	t.Helper()
	a1, a2 = filepath.Join(dir, "a1"), filepath.Join(dir, "a2")
	trainDemo(t, bin, a1, 1)
	trainDemo(t, bin, a2, 2)
	model = filepath.Join(dir, "model")
	install(t, a1, model)
	return model, a1, a2
}

// skipWithoutSystem skips a check this machine cannot run (no tmpfs
// mount, no prlimit), or fails it when TOWERRECALL_REQUIRE_SYSTEM is set:
// .ci/run sets it where root can mount a tmpfs and prlimit is installed.
func skipWithoutSystem(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("TOWERRECALL_REQUIRE_SYSTEM") != "" {
		t.Fatal(why + ", and TOWERRECALL_REQUIRE_SYSTEM is set")
	}
	t.Skip(why)
}
