package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/towerrecall/towerrecall/internal/artifact"
)

// e2eOnly skips unless TOWERRECALL_E2E is set. Unlike e2eData it needs no
// real data: these tests run on the demo catalogue or a synthetic model.
func e2eOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("TOWERRECALL_E2E") == "" && os.Getenv("TOWERRECALL_LOAD") == "" {
		t.Skip("set TOWERRECALL_E2E=1 to run the real binary (TOWERRECALL_LOAD=1 for the 60 s load test)")
	}
}

// logLines returns the JSON log lines whose message is msg, in order.
func (l *logBuffer) logLines(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// waitLogN waits until there are n log lines with message msg and returns
// the n-th.
func (l *logBuffer) waitLogN(t *testing.T, msg string, n int, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if lines := l.logLines(msg); len(lines) >= n {
			return lines[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d %q log lines within %v; log:\n%s", n, msg, timeout, tail(l.String(), 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveProc is the real binary serving on loopback.
type serveProc struct {
	cmd   *exec.Cmd
	logs  *logBuffer
	addr  string
	c     client
	ready map[string]any
	exit  chan error // receives Wait's result once
}

// startServe runs `bin serve --addr 127.0.0.1:0 --demo=false args...` and
// waits for its "ready" line. The process is killed when the test ends if
// it is still running.
func startServe(t *testing.T, bin string, args ...string) *serveProc {
	t.Helper()
	return startServeUntil(t, bin, "ready", args...)
}

// startServeNotReady is startServe for a process that comes up without a
// model: it waits for "listening without a model".
func startServeNotReady(t *testing.T, bin string, args ...string) *serveProc {
	t.Helper()
	return startServeUntil(t, bin, "listening without a model", args...)
}

func startServeUntil(t *testing.T, bin, msg string, args ...string) *serveProc {
	t.Helper()
	logs, logFile := fileLog(t)
	p := &serveProc{logs: logs, exit: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--demo=false"}, args...)...)
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
	p.ready = p.logs.waitLog(t, msg, 2*time.Minute)
	p.addr = p.ready["addr"].(string)
	p.c = client{t: t, base: "http://" + p.addr}
	return p
}

func (p *serveProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// stop sends SIGTERM and requires a clean exit (status 0) within 30 s.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	p.wait(t)
}

func (p *serveProc) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.exit:
		if err != nil {
			t.Fatalf("serve exited with %v; log:\n%s", err, tail(p.logs.String(), 3000))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not exit within 30 s; log:\n%s", tail(p.logs.String(), 3000))
	}
}

// trainDemo trains a quick demo-catalogue model with the binary.
func trainDemo(t *testing.T, bin, out string, seed int) {
	t.Helper()
	cmd := exec.Command(bin, "train", "--data", "demo", "--out", out, "--seed", strconv.Itoa(seed), "--epochs", "2", "--progress=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("train --seed %d: %v\n%s", seed, err, tail(string(b), 3000))
	}
}

// install copies the artifact at src into dir the way training publishes
// one: artifact.Save writes a sibling and renames it into place.
func install(t *testing.T, src, dir string) *artifact.Bundle {
	t.Helper()
	b, err := artifact.Load(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := artifact.Save(dir, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// dirSums maps every file under dir (relative path) to its content, for
// "untouched" checks.
func dirSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			out[rel+"/"] = "dir"
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out[rel] = string(raw)
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}
