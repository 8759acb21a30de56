// Command benchscale runs the whole path at catalogue scale (issue 13,
// item 5): it synthesises an ML-1M-layout catalogue (`towerrecall data
// synth`), trains an artifact on it, serves it, and reports the time and
// peak RSS of each step, the artifact's size, the server's start-to-ready
// time and RSS, and /recall latency (k = 10, 100, 1,000) over loopback. `make
// bench-scale` runs it at 1,000,000 movies; it is not part of any test run.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchscale:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("benchscale", flag.ContinueOnError)
	bin := fs.String("bin", "bin/towerrecall", "towerrecall binary")
	work := fs.String("work", "var/bench-scale", "working directory (data/, model/)")
	movies := fs.Int("movies", 1000000, "catalogue size")
	users := fs.Int("users", 6000, "users")
	ratings := fs.Int("ratings", 600000, "ratings")
	seed := fs.Uint64("seed", 1, "synth seed")
	requests := fs.Int("requests", 3000, "/recall requests timed (after 300 warm-up)")
	index := fs.String("index", "auto", "serve --index")
	reuse := fs.Bool("reuse", false, "serve the model already in --work (skip data synth and train)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	data, model := filepath.Join(*work, "data"), filepath.Join(*work, "model")
	out := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	out("benchscale: %d movies, %d users, %d ratings, seed %d; load %s", *movies, *users, *ratings, *seed, loadAvg())
	if !*reuse {
		if err := build(ctx, *bin, data, model, *movies, *users, *ratings, *seed, out); err != nil {
			return err
		}
	}
	return serve(ctx, *bin, model, *index, *users, *requests, *seed, out)
}

// build synthesises the catalogue and trains the artifact, reporting each
// step and the artifact's size.
func build(ctx context.Context, bin, data, model string, movies, users, ratings int, seed uint64, out func(string, ...any)) error {
	if err := os.RemoveAll(filepath.Dir(data)); err != nil {
		return err
	}

	st, err := step(ctx, bin, "data", "synth", "--dir", data, "--movies", strconv.Itoa(movies),
		"--users", strconv.Itoa(users), "--ratings", strconv.Itoa(ratings), "--seed", strconv.FormatUint(seed, 10))
	if err != nil {
		return err
	}
	out("| step | wall | CPU | peak RSS |\n|---|--:|--:|--:|")
	out("| data synth | %s | %s | %s |", sec(st.wall), sec(st.cpu), mib(st.maxRSS))
	st, err = step(ctx, bin, "train", "--data", data, "--out", model)
	if err != nil {
		return err
	}
	out("| train (features, training, movie vectors, HNSW build, self-check, save) | %s | %s | %s |", sec(st.wall), sec(st.cpu), mib(st.maxRSS))
	sizes, total := dirSizes(model)
	out("\nartifact %s: %s in all; %s", model, mb(total), sizes)
	return nil
}

// serve serves the model and reports its load, its index choice and
// /recall's latency over loopback at k = 10, 100 and 1,000.
func serve(ctx context.Context, bin, model, index string, users, requests int, seed uint64, out func(string, ...any)) error {
	// Serve, and read the log for the load and ready lines.
	cmd := exec.CommandContext(ctx, bin, "serve", "--model", model, "--addr", "127.0.0.1:0", "--demo=false",
		"--log-format", "json", "--index", index)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	ready := make(chan map[string]any, 1)
	var loadLines []string
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			msg, _ := m["message"].(string)
			if _, ok := m["exact_search"]; ok || strings.Contains(msg, "HNSW") {
				loadLines = append(loadLines, sc.Text())
			}
			if msg == "ready" {
				ready <- m
			}
		}
		close(ready)
	}()
	var r map[string]any
	select {
	case r = <-ready:
	case <-time.After(10 * time.Minute):
		return errors.New("serve: not ready after 10 minutes")
	}
	if r == nil {
		return errors.New("serve exited before ready")
	}
	wallReady := time.Since(start)
	addr, _ := r["addr"].(string)
	out("\nserve: start_to_ready %v ms (logged), %s from exec to the ready line; RSS at ready %s", r["start_to_ready_ms"], sec(wallReady), rss(cmd.Process.Pid))
	for _, l := range loadLines {
		out("  load log: %s", l)
	}
	base := "http://" + addr
	raw, err := get(base + "/model")
	if err != nil {
		return err
	}
	var info struct {
		Movies      int                `json:"movies"`
		Users       int                `json:"users"`
		Backend     string             `json:"backend"`
		MaxDepth    int                `json:"hnsw_max_depth"`
		IndexRecall map[string]float64 `json:"index_recall"`
		Latency     map[string]float64 `json:"index_latency_us"`
	}
	if err := json.Unmarshal([]byte(raw), &info); err != nil {
		return fmt.Errorf("/model: %w: %s", err, raw)
	}
	out("  /model: %d movies, %d users, backend %s to depth %d, index recall %v, k = 10 µs per query %v",
		info.Movies, info.Users, info.Backend, info.MaxDepth, info.IndexRecall, info.Latency)

	// /recall: known users (exclude_seen default) and cold starts.
	client := &http.Client{Timeout: 10 * time.Second}
	rng := rand.New(rand.NewPCG(seed, 99))
	body := func(k int) []byte {
		if rng.IntN(4) > 0 {
			return fmt.Appendf(nil, `{"user":{"user_id":%d},"k":%d}`, 1+rng.IntN(users), k)
		}
		g := []string{"M", "F"}[rng.IntN(2)]
		ages := []int{18, 25, 35, 45, 50, 56}
		return fmt.Appendf(nil, `{"user":{"gender":%q,"age":%d,"occupation":"programmer"},"k":%d}`, g, ages[rng.IntN(len(ages))], k)
	}
	for _, k := range []int{10, 100, 1000} {
		var lat []time.Duration
		backends := map[string]int{}
		for i := range 300 + requests {
			b := body(k)
			t0 := time.Now()
			resp, err := client.Post(base+"/recall", "application/json", bytes.NewReader(b))
			if err != nil {
				return err
			}
			rb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			d := time.Since(t0)
			if resp.StatusCode != 200 {
				return fmt.Errorf("/recall %s: %d %s", b, resp.StatusCode, rb)
			}
			var x struct{ Backend string }
			_ = json.Unmarshal(rb, &x)
			backends[x.Backend]++
			if i >= 300 {
				lat = append(lat, d)
			}
		}
		slices.Sort(lat)
		q := func(p float64) string { return us(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
		var sum time.Duration
		for _, d := range lat {
			sum += d
		}
		out("\n/recall k=%d over loopback, %d sequential requests (3 in 4 known users, 1 in 4 cold start), answered by %v: "+
			"p50 %s, p90 %s, p99 %s, max %s, mean %s; server RSS after %s; load %s",
			k, len(lat), backends, q(0.5), q(0.9), q(0.99), us(lat[len(lat)-1]), us(sum/time.Duration(len(lat))), rss(cmd.Process.Pid), loadAvg())
	}
	return nil
}

type stats struct {
	wall, cpu time.Duration
	maxRSS    int64 // bytes
}

// step runs bin with args and returns its wall time, CPU time and peak RSS.
func step(ctx context.Context, bin string, args ...string) (stats, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &errBuf
	t0 := time.Now()
	err := cmd.Run()
	st := stats{wall: time.Since(t0)}
	if err != nil {
		return st, fmt.Errorf("%s %s: %w\n%s", bin, strings.Join(args, " "), err, tail(errBuf.String()))
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		st.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		st.maxRSS = ru.Maxrss * 1024
	}
	return st, nil
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}

func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func dirSizes(dir string) (string, int64) {
	ents, _ := os.ReadDir(dir)
	var parts []string
	var total int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && !e.IsDir() {
			total += fi.Size()
			parts = append(parts, fmt.Sprintf("%s %s", e.Name(), mb(fi.Size())))
		}
	}
	return strings.Join(parts, ", "), total
}

func rss(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	var parts []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") || strings.HasPrefix(l, "VmHWM:") {
			parts = append(parts, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(parts, ", ")
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func sec(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
func us(d time.Duration) string  { return fmt.Sprintf("%.0f µs", float64(d.Nanoseconds())/1e3) }
func mb(b int64) string          { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
func mib(b int64) string         { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
