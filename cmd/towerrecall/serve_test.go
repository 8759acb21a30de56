package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/catalog"
	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/loadtest"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/recall"
)

// serve without a usable model comes up (liveness yes, readiness no) and
// waits for an artifact; only a bad config makes it exit. The console log
// it writes into a buffer, not a terminal, has no ANSI colours.
func TestServeWithoutModel(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, model string)
		args    []string
		wantLog string // a line of the log; "" when run must fail
		wantErr string
	}{
		{"missing model dir", func(*testing.T, string) {}, nil, "waiting for an artifact at ", ""},
		{"empty model dir", func(t *testing.T, model string) {
			if err := os.Mkdir(model, 0o755); err != nil {
				t.Fatal(err)
			}
		}, nil, "waiting for an artifact at ", ""},
		{"corrupt artifact", func(t *testing.T, model string) {
			if err := os.Mkdir(model, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(model, "manifest.json"), []byte("{}"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, nil, "no usable model at start", ""},
		{"files without a manifest, demo on: refused, not trained over", func(t *testing.T, model string) {
			if err := os.Mkdir(model, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(model, "model.bin"), []byte("weights"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"--demo=true"}, "no usable model at start", ""},
		{"console log into a buffer", func(*testing.T, string) {}, []string{"--log-format", "console"}, "waiting for an artifact at ", ""},
		{"bad config exits", func(*testing.T, string) {}, []string{"--index", "fastest"}, "", "serve.index"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			model := filepath.Join(t.TempDir(), "model")
			tt.setup(t, model)
			before := listDir(t, model)
			defer func() {
				if after := listDir(t, model); after != before {
					t.Errorf("the model directory changed:\n%s\nbecame\n%s", before, after)
				}
			}()
			env := []string{"TOWERRECALL_RELOAD_POLL=100ms", "TOWERRECALL_RELOAD_POL=1h"} // the second misspelt
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			logs := &logBuffer{}
			done := make(chan error, 1)
			args := append([]string{"towerrecall", "serve", "--model", model, "--demo=false", "--addr", "127.0.0.1:0"}, tt.args...)
			go func() { done <- run(ctx, args, env, io.Discard, logs) }()

			if tt.wantErr != "" {
				select {
				case err := <-done:
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("run = %v, want an error naming %s", err, tt.wantErr)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("serve with a bad config did not exit")
				}
				return
			}
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(logs.String(), "serving HTTP") || !strings.Contains(logs.String(), tt.wantLog) {
				if time.Now().After(deadline) {
					t.Fatalf("no %q and serving HTTP in the log:\n%s", tt.wantLog, logs.String())
				}
				select {
				case err := <-done:
					t.Fatalf("serve exited (%v) instead of waiting for an artifact; log:\n%s", err, logs.String())
				case <-time.After(10 * time.Millisecond):
				}
			}
			if !strings.Contains(logs.String(), "TOWERRECALL_RELOAD_POL is not a setting") {
				t.Errorf("no warning about the misspelt variable:\n%s", logs.String())
			}
			if strings.Contains(logs.String(), "\x1b[") {
				t.Errorf("ANSI escapes in a log that is not a terminal:\n%q", logs.String())
			}
			time.Sleep(300 * time.Millisecond) // a few polls of a model dir with nothing to load: no exit
			if strings.Contains(logs.String(), "DEMO") {
				t.Errorf("demo training started:\n%s", logs.String())
			}
			// An artifact refused at start is said once, and not loaded
			// again while it stays as it was.
			if strings.Contains(logs.String(), "reload refused") {
				t.Errorf("the poll loaded an unchanged artifact again:\n%s", logs.String())
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run returned %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("no shutdown within 30 s")
			}
		})
	}
}

// TestE2EServeWaitsForArtifact is a replica whose volume the training Job
// has not filled yet: the real binary starts on an empty model directory,
// answers /healthz 200 and /readyz 503 (a problem), and, with no restart,
// answers /readyz 200 and /recall within one reload poll of an artifact
// being published there by artifact.Save's rename.
func TestE2EServeWaitsForArtifact(t *testing.T) {
	e2eOnly(t)
	const poll = 2 * time.Second
	bin := buildBinary(t)
	dir := t.TempDir()
	trained := filepath.Join(dir, "trained")
	trainDemo(t, bin, trained, 1)
	model := filepath.Join(dir, "model")
	if err := os.Mkdir(model, 0o755); err != nil {
		t.Fatal(err)
	}

	logs, logFile := fileLog(t)
	p := &serveProc{logs: logs, exit: make(chan error, 1)}
	p.cmd = exec.Command(bin, "serve", "--model", model, "--demo=false", "--addr", "127.0.0.1:0")
	p.cmd.Env = append(os.Environ(), "TOWERRECALL_RELOAD_POLL="+poll.String())
	p.cmd.Stderr = logFile
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exit <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
		}
	})
	listening := logs.waitLog(t, "listening without a model", time.Minute)
	p.c = client{t: t, base: "http://" + listening["addr"].(string)}
	waiting := logs.logLines("waiting for an artifact at " + model + ": /readyz answers 503 until one is published there; " +
		"it is loaded within serve.reload_poll (2s) of being published, or at once on SIGHUP")
	if len(waiting) != 1 || waiting[0]["level"] != "warn" {
		t.Errorf("no warning that serve waits for an artifact at %s; log:\n%s", model, logs.String())
	}

	notReady := func() {
		t.Helper()
		if status, _, _ := p.c.do("GET", "/healthz", ""); status != http.StatusOK {
			t.Errorf("/healthz %d without a model, want 200", status)
		}
		status, h, body := p.c.do("GET", "/readyz", "")
		var prob struct {
			Type, Detail string
		}
		_ = json.Unmarshal(body, &prob)
		if status != http.StatusServiceUnavailable || h.Get("Content-Type") != "application/problem+json" ||
			prob.Type != "urn:towerrecall:problem:not-ready" || !strings.Contains(prob.Detail, "no model") {
			t.Errorf("/readyz without a model: %d %s %s, want 503 problem+json not-ready saying no model", status, h.Get("Content-Type"), body)
		}
		if status, _, body := p.c.do("POST", "/recall", `{"user":{"gender":"F"},"k":5}`); status != http.StatusServiceUnavailable {
			t.Errorf("/recall without a model: %d %s, want 503", status, body)
		}
	}
	notReady()
	time.Sleep(poll + poll/2) // at least one poll of the empty directory
	notReady()
	select {
	case err := <-p.exit:
		t.Fatalf("serve exited (%v) while waiting for an artifact; log:\n%s", err, logs.String())
	default:
	}

	b := install(t, trained, model) // a sibling directory renamed into place
	published := time.Now()         // the rename, then a sync of the parent: a slight undercount
	var took time.Duration
	for {
		if status, _, _ := p.c.do("GET", "/readyz", ""); status == http.StatusOK {
			took = time.Since(published)
			break
		}
		if time.Since(published) > poll+5*time.Second {
			t.Fatalf("/readyz not 200 within %v of publishing; log:\n%s", poll+5*time.Second, tail(logs.String(), 3000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("published → /readyz 200 in %v (reload poll %v)", took, poll)
	// One poll period, plus what loading a demo model takes on a busy machine.
	if took > poll+2*time.Second {
		t.Errorf("/readyz 200 %v after publishing, more than one poll period (%v) plus 2 s", took, poll)
	}
	var info modelResp
	p.c.json("GET", "/model", "", 200, &info)
	if info.Version != b.Manifest.Version {
		t.Errorf("/model version %q, want the published %q", info.Version, b.Manifest.Version)
	}
	var rec recallResp
	p.c.json("POST", "/recall", `{"user":{"gender":"F","age":25},"k":5}`, 200, &rec)
	if len(rec.Items) != 5 {
		t.Errorf("/recall after publishing: %d items, want 5", len(rec.Items))
	}
	logs.waitLog(t, "reloaded", 10*time.Second) // the log is written in batches, after /readyz turns
	if lines := logs.logLines("reloaded"); len(lines) != 1 || lines[0]["trigger"] != "manifest changed" || lines[0]["first"] != true {
		t.Errorf("want one first reload by the manifest poll, got %v", lines)
	}
	p.signal(t, syscall.SIGTERM)
	p.wait(t)
}

// listDir names dir's files with their sizes ("" when dir is missing).
func listDir(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d\n", e.Name(), info.Size())
	}
	return b.String()
}

// TestServeRestoresArtifactMovedAside: a train killed between the first
// two of the three renames that publish where RENAME_EXCHANGE is missing
// leaves no model directory and the artifact that was there aside, under
// the temporary name. serve puts it back and serves it, saying so, rather
// than wait for one or train a demo one (demo on; its data missing here,
// so that a demo training fails at once).
func TestServeRestoresArtifactMovedAside(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	model := filepath.Join(parent, "model")
	b, err := loadtest.Synthetic{Movies: 40, Users: 30, MaxSeen: 5, Seed: 1, Version: "good"}.Bundle()
	if err != nil {
		t.Fatal(err)
	}
	aside := filepath.Join(parent, ".model.tmp-123.old")
	if err := artifact.Save(aside, b); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Serve.Model, cfg.Serve.Demo = model, true
	cfg.Data.Dir = filepath.Join(parent, "no-data")
	logs := &logBuffer{}
	got, _, err := loadOrTrain(context.Background(), cfg, zerolog.New(logs))
	if err != nil || got.Manifest.Version != "good" {
		t.Fatalf("loadOrTrain = %v; want the artifact put back (log %s)", err, logs.String())
	}
	if !strings.Contains(logs.String(), "put back the artifact") || !strings.Contains(logs.String(), aside) {
		t.Errorf("no warning naming %s:\n%s", aside, logs.String())
	}
	if _, err := os.Stat(aside); !os.IsNotExist(err) {
		t.Errorf("%s is still there (%v)", aside, err)
	}
}

// TestServeStartsDuringPublication: serve starting while a train
// publishes by three renames (no RENAME_EXCHANGE) finds no model
// directory and the artifact aside; Restore waits for the publication's
// lock, and once it ends there is a model directory, the new artifact:
// serve loads it. It reported the model unusable (with the error of the
// missing directory) and served nothing until a poll or a SIGHUP, never
// with serve.reload_poll 0.
func TestServeStartsDuringPublication(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the publication lock is Linux's")
	}
	t.Parallel()
	parent := t.TempDir()
	model := filepath.Join(parent, "model")
	tmp, aside := filepath.Join(parent, ".model.tmp-1"), filepath.Join(parent, ".model.tmp-1.old")
	for dir, v := range map[string]string{aside: "old", tmp: "new"} {
		b, err := loadtest.Synthetic{Movies: 40, Users: 30, MaxSeen: 5, Seed: 1, Version: v}.Bundle()
		if err != nil {
			t.Fatal(err)
		}
		if err := artifact.Save(dir, b); err != nil {
			t.Fatal(err)
		}
	}
	// The train holds the publication lock (artifact's lock) between its
	// first rename, done, and the other two.
	f, err := os.OpenFile(filepath.Join(parent, ".model.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Serve.Model = model
	type loaded struct {
		b   *artifact.Bundle
		err error
	}
	done := make(chan loaded, 1)
	go func() {
		b, _, err := loadOrTrain(context.Background(), cfg, zerolog.Nop())
		done <- loaded{b, err}
	}()
	time.Sleep(300 * time.Millisecond) // serve waits in Restore
	if err := os.Rename(tmp, model); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, tmp); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.err != nil || got.b.Manifest.Version != "new" {
		t.Fatalf("loadOrTrain during a publication = %v; want the artifact it published", got.err)
	}
}

// TestServePortInUse: an address in use fails serve at once, before a demo
// model is trained into the model directory.
func TestServePortInUse(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	model := filepath.Join(t.TempDir(), "model")
	args := []string{"towerrecall", "serve", "--model", model, "--demo=true", "--addr", busy.Addr().String()}
	err = run(context.Background(), args, nil, io.Discard, &logBuffer{})
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("run = %v, want the address in use", err)
	}
	if _, err := os.Stat(model); !os.IsNotExist(err) {
		t.Errorf("the model directory was written (%v): the demo trained before the port was tried", err)
	}
}

// TestServeModelIsAFile: serve.model naming a file fails at start, naming
// the key; serve waited at 503 for an artifact that could never be
// published there.
func TestServeModelIsAFile(t *testing.T) {
	t.Parallel()
	model := filepath.Join(t.TempDir(), "model.yaml")
	if err := os.WriteFile(model, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"towerrecall", "serve", "--model", model, "--demo=false", "--addr", "127.0.0.1:0"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // it served, waiting, until stopped
	defer cancel()
	err := run(ctx, args, nil, io.Discard, &logBuffer{})
	if err == nil || !strings.Contains(err.Error(), "serve.model") || !strings.Contains(err.Error(), "is a file") {
		t.Fatalf("run = %v, want serve.model's file refused", err)
	}
}

// TestPollNotesUnreadableManifest: the reload poll warns once about a
// manifest it cannot read (other than a missing one while it waits for a
// first model), not at every poll.
func TestPollNotesUnreadableManifest(t *testing.T) {
	t.Parallel()
	svc, err := recall.New(recallOptions(config.Default()), zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	rl := &reloader{svc: svc, dir: t.TempDir(), logger: zerolog.New(&logs)}
	rl.notePollError(fs.ErrNotExist) // waiting for a first model: said at start
	if logs.Len() != 0 {
		t.Errorf("a missing manifest while waiting logged %q", logs.String())
	}
	denied := &fs.PathError{Op: "open", Path: "manifest.json", Err: fs.ErrPermission}
	rl.notePollError(denied)
	rl.notePollError(denied)
	if n := strings.Count(logs.String(), "cannot read the model's manifest"); n != 1 {
		t.Errorf("%d warnings for two polls of one unreadable manifest: %q", n, logs.String())
	}
}

// TestReloadOfNothingIsNoRefusal: a SIGHUP while no artifact is published
// logs a warning and counts no failed load (TowerrecallModelRefused
// alerts on those); a published artifact that does not load counts one.
func TestReloadOfNothingIsNoRefusal(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	svc, err := recall.New(recallOptions(config.Default()), zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	failed := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "towerrecall_model_loads_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "error" {
					return m.GetCounter().GetValue()
				}
			}
		}
		t.Fatal("no towerrecall_model_loads_total{result=\"error\"}")
		return 0
	}
	logs := &logBuffer{}
	dir := filepath.Join(t.TempDir(), "model")
	rl := &reloader{svc: svc, dir: dir, logger: zerolog.New(logs)}
	_ = rl.reload("SIGHUP")
	if n := failed(); n != 0 || !strings.Contains(logs.String(), `"level":"warn"`) || !strings.Contains(logs.String(), "still no artifact") {
		t.Errorf("a SIGHUP with nothing published: %v failed loads, log %q", n, logs.String())
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = rl.reload("SIGHUP")
	if n := failed(); n != 1 {
		t.Errorf("a published artifact refused: %v failed loads, want 1", n)
	}
}

// TestPollSkipsUnchangedRefusedArtifact: the poll loads a refused artifact
// again only once its manifest or files change (a large one costs seconds
// of CPU per load), while a SIGHUP always loads.
func TestPollSkipsUnchangedRefusedArtifact(t *testing.T) {
	t.Parallel()
	svc, err := recall.New(recallOptions(config.Default()), zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("manifest.json", "{}")
	logs := &logBuffer{}
	rl := &reloader{svc: svc, dir: dir, logger: zerolog.New(logs)}
	loads := func() int { return strings.Count(logs.String(), "still no model") }
	for i := range 3 {
		rl.pollOnce()
		if n := loads(); n != 1 {
			t.Fatalf("poll %d: %d loads of one refused artifact, want 1:\n%s", i+1, n, logs.String())
		}
	}
	write("manifest.json", "{ }") // a new manifest
	rl.pollOnce()
	rl.pollOnce()
	write("model.bin", "weights") // a file arriving beside it
	rl.pollOnce()
	if n := loads(); n != 3 {
		t.Errorf("%d loads after the manifest changed and a file arrived, want 3:\n%s", n, logs.String())
	}
	_ = rl.reload("SIGHUP")
	if n := loads(); n != 4 {
		t.Errorf("%d loads after a SIGHUP, want 4", n)
	}
	// The SIGHUP's refusal repeats the poll's, and is said all the same:
	// whoever sent it looks for the answer (it was a debug line).
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, `"level":"error"`) || !strings.Contains(last, `"trigger":"SIGHUP"`) {
		t.Errorf("a SIGHUP's repeated refusal logged %s, want an error line", last)
	}
}

// TestPollRetriesArtifactWhosePermissionsChanged: an artifact refused
// because a file could not be read (a replica's uid without permission)
// is loaded again by the poll once the permissions are mended. Mending
// them (chmod, chown) leaves the files' size and modification time as
// they were, so the poll took the artifact for unchanged and the replica
// stayed unready until a SIGHUP or a restart. A file that is a symbolic
// link (Load follows it) is compared by its target: no lstat of the link
// changes.
func TestPollRetriesArtifactWhosePermissionsChanged(t *testing.T) {
	t.Parallel()
	for _, linked := range []bool{false, true} {
		t.Run(fmt.Sprintf("linked=%v", linked), func(t *testing.T) {
			t.Parallel()
			svc, err := recall.New(recallOptions(config.Default()), zerolog.Nop(), prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			target := filepath.Join(dir, "model.bin")
			if linked {
				target = filepath.Join(t.TempDir(), "model.bin")
				if err := os.Symlink(target, filepath.Join(dir, "model.bin")); err != nil {
					t.Fatal(err)
				}
			}
			for path, body := range map[string]string{filepath.Join(dir, "manifest.json"): "{}", target: "weights"} {
				if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			logs := &logBuffer{}
			rl := &reloader{svc: svc, dir: dir, logger: zerolog.New(logs)}
			loads := func() int { return strings.Count(logs.String(), "still no model") }
			rl.pollOnce()
			rl.pollOnce()
			if n := loads(); n != 1 {
				t.Fatalf("%d loads of an unchanged refused artifact, want 1:\n%s", n, logs.String())
			}
			// As root, who reads the file either way, the mode still changes.
			if err := os.Chmod(target, 0o600); err != nil {
				t.Fatal(err)
			}
			rl.pollOnce()
			rl.pollOnce()
			if n := loads(); n != 2 {
				t.Errorf("%d loads after a file's permissions changed, want 2:\n%s", n, logs.String())
			}
		})
	}
}

// TestPollClearsRefusalOnRollback: after a refused artifact is rolled
// back to the one serving, the poll loads that one again, so
// towerrecall_model_refused (and the alert on it) clears. The poll saw
// the manifest it serves and did nothing: the gauge stayed 1, the alert
// fired, until a restart or a SIGHUP.
func TestPollClearsRefusalOnRollback(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	svc, err := recall.New(recallOptions(config.Default()), zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	refused := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "towerrecall_model_refused" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no towerrecall_model_refused")
		return 0
	}
	b, err := loadtest.Synthetic{Movies: 200, Users: 100, MaxSeen: 10, Seed: 1, Version: "v1"}.Bundle()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "model")
	if err := artifact.Save(dir, b); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	rl := &reloader{svc: svc, dir: dir, logger: zerolog.New(logs)}
	rl.pollOnce()
	if info, _ := svc.Info(); info.Version != "v1" || refused() != 0 {
		t.Fatalf("serving %q, refused %v; log:\n%s", info.Version, refused(), logs.String())
	}
	b.Manifest.Version = "v2" // published with a corrupt file (v1 kept as the previous)
	if err := artifact.Save(dir, b); err != nil {
		t.Fatal(err)
	}
	vec := filepath.Join(dir, artifact.VectorsFile)
	raw, err := os.ReadFile(vec)
	if err != nil {
		t.Fatal(err)
	}
	raw[10] ^= 0xff
	if err := os.WriteFile(vec, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	rl.pollOnce()
	rl.pollOnce()
	if info, _ := svc.Info(); info.Version != "v1" || refused() != 1 {
		t.Fatalf("after a refusal: serving %q, refused %v; log:\n%s", info.Version, refused(), logs.String())
	}
	if _, err := artifact.Rollback(dir); err != nil {
		t.Fatal(err)
	}
	rl.pollOnce()
	if info, _ := svc.Info(); info.Version != "v1" || refused() != 0 {
		t.Errorf("after a rollback to the model serving: serving %q, refused %v, want 0; log:\n%s", info.Version, refused(), logs.String())
	}
	n := strings.Count(logs.String(), `"message":"reloaded"`)
	rl.pollOnce()
	if m := strings.Count(logs.String(), `"message":"reloaded"`); m != n {
		t.Errorf("the poll loaded the unchanged artifact again (%d loads, then %d)", n, m)
	}
}

// TestOpenJournalReadOnlyRefusesUnreadable: without a catalogue token an
// existing journal is applied read-only so that its deletes stay deleted;
// only a journal that does not exist is no journal. One serve cannot look
// at (here a symlink loop; in a pod, a directory its user may not enter)
// was taken for none, and the movies it deleted were served again.
func TestOpenJournalReadOnlyRefusesUnreadable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	loop := filepath.Join(dir, "loop.journal")
	if err := os.Symlink(loop, loop); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		wantErr    bool
	}{
		{"missing", filepath.Join(dir, "missing.journal"), false},
		{"unreadable", loop, true},
	} {
		svc, err := recall.New(recallOptions(config.Default()), zerolog.Nop(), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		s := config.Default().Serve
		s.CatalogJournal = tc.path
		j, err := openJournal(s, svc, zerolog.Nop())
		if j != nil || (err != nil) != tc.wantErr {
			t.Errorf("%s: journal %v, error %v; want an error: %v", tc.name, j, err, tc.wantErr)
		}
	}
}

// TestOpenJournalDirectory: a serve.catalog_journal set explicitly is
// refused, naming the key, when its directory does not exist, and nothing
// is created: a mistyped path made the directories and kept the journal
// where no volume does (changes acknowledged, then lost at a restart). The
// default journal, beside serve.model, still has its directory made, as
// publishing the model there does.
func TestOpenJournalDirectory(t *testing.T) {
	t.Parallel()
	token := strings.Repeat("t", config.MinCatalogToken)
	tests := []struct {
		name     string
		journal  string // under the test's directory; "" for the default beside model
		model    string // under the test's directory
		token    string
		wantErr  string
		wantFile string // created, under the test's directory
	}{
		{"explicit, missing directory", "jornal/movies.journal", "model", token, "serve.catalog_journal", ""},
		{"explicit, missing directory, read-only", "jornal/movies.journal", "model", "", "serve.catalog_journal", ""},
		{"explicit, a file for a directory", "file/movies.journal", "model", token, "not a directory", ""},
		{"explicit, existing directory", "movies.journal", "model", token, "", "movies.journal"},
		{"default, missing directory", "", "var/model", token, "", "var/model.journal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			svc, err := recall.New(recallOptions(config.Default()), zerolog.Nop(), prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			s := config.Default().Serve
			s.Model, s.CatalogToken = filepath.Join(dir, tt.model), tt.token
			if tt.journal != "" {
				s.CatalogJournal = filepath.Join(dir, tt.journal)
			}
			j, err := openJournal(s, svc, zerolog.Nop())
			if j != nil {
				defer j.Close()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), s.CatalogJournal) {
					t.Errorf("err = %v, want one naming %s and the path", err, tt.wantErr)
				}
				if _, err := os.Stat(filepath.Join(dir, "jornal")); !os.IsNotExist(err) {
					t.Errorf("the mistyped directory was created (%v)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, tt.wantFile)); err != nil {
				t.Errorf("journal not created: %v", err)
			}
		})
	}
}

// TestServeFatalErrorIsJSON: an error that ends serve once its logger is up
// (an address in use, here) reaches stderr as one JSON log line, not as a
// plain-text line in the middle of the JSON stream a log shipper parses.
func TestServeFatalErrorIsJSON(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	model := filepath.Join(t.TempDir(), "model")
	var stderr logBuffer
	args := []string{"towerrecall", "serve", "--model", model, "--demo=false", "--addr", busy.Addr().String()}
	err = run(context.Background(), args, nil, io.Discard, &stderr)
	if err == nil {
		t.Fatal("run = nil, want the address in use")
	}
	reportError(&stderr, err) // what main writes before it exits 1 (exitCode)
	requireJSONError(t, stderr.String(), "address already in use")
}

// TestOpenJournalLogsItsUnit: the time to read the journal is logged in
// milliseconds under a name that says so, as every other duration is
// (load_ms, start_to_ready_ms); "read": 19.1 left the unit to guess.
func TestOpenJournalLogsItsUnit(t *testing.T) {
	t.Parallel()
	svc, err := recall.New(recallOptions(config.Default()), zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s := config.Default().Serve
	s.CatalogJournal = filepath.Join(t.TempDir(), "movies.journal")
	s.CatalogToken = strings.Repeat("t", config.MinCatalogToken)
	var log bytes.Buffer
	j, err := openJournal(s, svc, zerolog.New(&log))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var m map[string]any
	if err := json.Unmarshal(log.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, log.String())
	}
	if _, ok := m["read_ms"].(float64); !ok || m["read"] != nil {
		t.Errorf("journal opened: want a read_ms number and no unitless read: %s", log.String())
	}
}

// TestOpenJournalCompacts: with a catalogue token, a journal that is
// mostly overwritten lines is compacted before serving, and while serving,
// and the log says by how much; without one (read-only) it is never
// rewritten.
func TestOpenJournalCompacts(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "movies.journal")
	j, _, err := catalog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	write := func(j *catalog.Journal, lines int) (last uint64) {
		t.Helper()
		for i := range lines { // 100 movies, then lines overwriting them
			e, err := j.Write(catalog.Entry{Op: catalog.OpPut, MovieID: 1 + movielens.MovieID(i%100), Title: fmt.Sprint("Take ", i), Genres: []string{"Drama"}})
			if err != nil {
				t.Fatal(err)
			}
			last = e.Seq
		}
		return last
	}
	// A journal left uncompacted (as by a process that stopped first):
	// 1,100 lines synced while a 1,101st waits, which Close cuts, so that
	// no Sync found every line synced and compacted them.
	if err := j.Sync(write(j, 1101) - 1); err != nil {
		t.Fatal(err)
	}
	j.Close()
	before, _ := os.ReadFile(path)
	for _, writable := range []bool{false, true} {
		svc, err := recall.New(recallOptions(config.Default()), zerolog.Nop(), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		s := config.Default().Serve
		s.CatalogJournal = path
		if writable {
			s.CatalogToken = strings.Repeat("t", config.MinCatalogToken)
		}
		var log bytes.Buffer
		j, err := openJournal(s, svc, zerolog.New(&log))
		if err != nil {
			t.Fatal(err)
		}
		after, _ := os.ReadFile(path)
		if !writable {
			if strings.Contains(log.String(), "compacted") || !bytes.Equal(after, before) {
				t.Fatalf("a read-only journal was compacted: %s", log.String())
			}
			continue
		}
		if !strings.Contains(log.String(), `"lines_before":1100,"lines_after":100,"bytes_saved":`+fmt.Sprint(len(before)-len(after))+`,"message":"catalogue journal compacted"`) {
			t.Fatalf("no compaction logged: %s", log.String())
		}
		log.Reset()
		if err := j.Sync(write(j, 1000)); err != nil {
			t.Fatal(err)
		}
		j.Close()
		if !strings.Contains(log.String(), `"lines_before":1100,"lines_after":100,`) {
			t.Fatalf("no compaction while serving logged: %s", log.String())
		}
	}
}

// TestTrainFatalErrorIsJSON: the training Job's logs are JSON to their
// last line: an error that ends train once its logger is up (data that
// cannot be read, here) is a JSON log line too.
func TestTrainFatalErrorIsJSON(t *testing.T) {
	t.Parallel()
	var stderr logBuffer
	args := []string{"towerrecall", "train", "--data", filepath.Join(t.TempDir(), "missing"), "--out", filepath.Join(t.TempDir(), "model")}
	err := run(context.Background(), args, nil, io.Discard, &stderr)
	if err == nil {
		t.Fatal("run = nil, want the missing data")
	}
	reportError(&stderr, err) // what main writes before it exits 1 (exitCode)
	requireJSONError(t, stderr.String(), "missing")
}

// requireJSONError fails t unless every line of stderr is JSON and an
// error-level line's error contains want.
func requireJSONError(t *testing.T, stderr, want string) {
	t.Helper()
	found := false
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("stderr line is not JSON: %q", line)
			continue
		}
		if e, _ := m["error"].(string); m["level"] == "error" && strings.Contains(e, want) {
			found = true
		}
	}
	if !found {
		t.Errorf("no error log line names %q:\n%s", want, stderr)
	}
}
