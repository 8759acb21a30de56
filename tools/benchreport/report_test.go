package main

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/towerrecall/towerrecall/internal/train"
)

// fakeResults is a complete run with made-up numbers.
func fakeResults() *Results {
	rng := rand.New(rand.NewPCG(1, 2))
	lat := func(n int, scale time.Duration) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = scale + time.Duration(rng.ExpFloat64()*float64(scale))
		}
		return out
	}
	epochs := func(n int, valid bool) []train.EpochStats {
		var es []train.EpochStats
		for e := 1; e <= n; e++ {
			es = append(es, train.EpochStats{Epoch: e, Loss: 7 - 0.1*float64(e), Examples: 1000, Seconds: 1,
				ExamplesPerSec: 2e5, Valid: 0.05 + 0.01*float64(e), HasValid: valid})
		}
		return es
	}
	metrics := map[string]float64{"recall@10": 0.0612, "ndcg@10": 0.13, "recall@100": 0.34,
		"popularity.recall@10": 0.0395, "cold_start.recall@10": 0.04}
	return &Results{
		Machine: Machine{CPU: "Test CPU | 2 GHz", Cores: 2, GOMAXPROCS: 2, GoVersion: "go1.26", GOOS: "linux", GOARCH: "amd64",
			Commit: "abc1234", Dirty: true, Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), LoadStart: "3.50 2.00 1.00", LoadEnd: "0.10 0.20 0.30"},
		Config:  []string{"mode: full"},
		Elapsed: 7 * time.Minute,
		Training: []TrainRun{
			{Dataset: "ml-100k", Split: "user-temporal", Recipe: "softmax", Train: 79619, Test: 20381, Epochs: epochs(5, false),
				TrainSeconds: 4, WallSeconds: 5, ExamplesPerSec: 4e5, PeakRSS: 40 << 20, PeakRSSReset: true, Metrics: metrics},
			{Dataset: "ml-100k", Split: "user-temporal", Recipe: "pointwise", Train: 79619, Test: 20381, Epochs: epochs(3, false),
				Metrics: map[string]float64{"recall@10": 0.033, "rmse": 0.96, "popularity.recall@10": 0.06}},
			{Dataset: "ml-1m", Split: "user-temporal", Recipe: "softmax", Train: 388909, Test: 98741, Epochs: epochs(4, false), Metrics: metrics},
			{Dataset: "ml-1m", Split: "recbole", Recipe: "softmax", Train: 325321, Valid: 38953, Test: 38953, Epochs: epochs(6, true),
				BestEpoch: 4, Metrics: metrics},
		},
		Serving:     "a fake model",
		AutoBackend: "hnsw", AutoRecall: map[string]float64{"recall@100": 0.991, "recall@10": 1},
		Index: []IndexBench{{
			Name: "movies", Label: "fake vectors", N: 3706, Dim: 8, Queries: 300, QueryNote: "fake users",
			Exact10: 10 * time.Microsecond, Exact100: 40 * time.Microsecond,
			Rows: []IndexRow{
				{Build: "served", Search: "cheap", Recall10: 0.5, Recall100: 0.7, Lat10: 20 * time.Microsecond, Lat100: 80 * time.Microsecond, BuildSeconds: 0.3},
				{Build: "served", Search: "dear", Recall10: 0.995, Recall100: 0.992, Lat10: 300 * time.Microsecond, Lat100: 350 * time.Microsecond, Served: true},
				{Build: "other", Search: "dear", Recall10: 1, Recall100: 1, Lat10: 2 * time.Millisecond, Lat100: 2 * time.Millisecond},
			},
		}},
		Handler: []HandlerBench{
			{Backend: "exact", Requests: 500, Latencies: lat(500, 20*time.Microsecond)},
			{Backend: "hnsw", Requests: 500, Latencies: lat(500, 250*time.Microsecond)},
		},
		Load: &LoadBench{Tool: "fake", Connections: 16, Duration: 10 * time.Second, Runs: []LoadRun{
			{Name: "bare", Requests: 1000, Seconds: 0.1, Latencies: lat(1000, 300*time.Microsecond)},
			{Name: "service", Backend: "hnsw", Requests: 200, Errors: 2, Seconds: 0.1, Latencies: lat(200, 5*time.Millisecond)},
		}},
	}
}

func TestRenderMarkdown(t *testing.T) {
	t.Parallel()
	r := fakeResults()
	plots, err := renderPlots(r, false)
	if err != nil {
		t.Fatal(err)
	}
	md := string(renderMarkdown(r, plots))
	for _, want := range []string{
		"# towerrecall benchmarks",
		"`abc1234 (dirty)`",
		"Test CPU \\| 2 GHz", // pipes escaped inside tables
		"**Noisy numbers.**", // load 3.5 on 2 cores
		"| MovieLens-1M, users 1–2,999 · `user-temporal` | softmax (default) | 0.0612 |",
		"| MovieLens-100K · `user-temporal` | pointwise (reference) | 0.0330 |",
		"| MovieLens-100K · `user-temporal` | PyTorch reference (from the issue) | 0.060 | 0.032 | 0.101 |",
		"| MovieLens-1M, users 1–2,999 · `user-temporal` | PyTorch reference (from the issue) | 0.039 | 0.004 | 0.063 |",
		"LightGCN 0.1823",
		"| 6 (4) |", // recbole epochs (best)
		"79,619 / – / 20,381",
		"dear ★",
		"the exact scan is **30.0× faster** at k = 10",
		"| exact | 500 |",
		"chose **hnsw** for this model (HNSW self-check recall against exact: recall@10 1.0000, recall@100 0.9910",
		"![Training loss and validation Recall@10 per epoch](bench-training.svg)",
		"![HNSW recall against exact vs latency per query](bench-index.svg)",
		"![/recall handler latency histogram](bench-handler.svg)",
		"![Loopback load latency histogram](bench-load.svg)",
		"service **19.8 %**",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(md, "<!-- plot:") {
		t.Error("a plot marker was left in the report")
	}
	// Every ml-1m row is labelled with the user range.
	for _, line := range strings.Split(md, "\n") {
		if strings.Contains(line, "MovieLens-1M") && !strings.Contains(line, "MovieLens-1M, users 1–2,999") &&
			!strings.Contains(line, "not the full MovieLens-1M") {
			t.Errorf("unlabelled MovieLens-1M line: %s", line)
		}
	}
}

func TestRenderMarkdownSkippedSections(t *testing.T) {
	t.Parallel()
	r := &Results{Quick: true, Machine: Machine{Cores: 2, LoadStart: "0.00 0.00 0.00", LoadEnd: "0.00 0.00 0.00"}}
	plots, err := renderPlots(r, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(plots) != 0 {
		t.Errorf("%d plots without data", len(plots))
	}
	md := string(renderMarkdown(r, plots))
	if !strings.Contains(md, "**Quick mode.**") || strings.Contains(md, "Noisy numbers") {
		t.Errorf("header notes wrong:\n%s", md)
	}
	if n := strings.Count(md, "Skipped in this run"); n != 4 {
		t.Errorf("%d skipped sections, want 4", n)
	}
}

func TestWritePlots(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	plots, err := writePlots(dir, fakeResults(), true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bench-training.svg", "bench-index.svg", "bench-handler.svg", "bench-load.svg"}
	if len(plots) != len(want) {
		t.Fatalf("%d plots, want %d", len(plots), len(want))
	}
	for i, name := range want {
		if plots[i].File != name {
			t.Errorf("plot %d is %s, want %s", i, plots[i].File, name)
		}
		svg, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(svg, []byte("<svg")) {
			t.Errorf("%s is not an SVG", name)
		}
		png, err := os.ReadFile(filepath.Join(dir, strings.TrimSuffix(name, ".svg")+".png"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Errorf("%s's PNG copy is not a PNG", name)
		}
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	ds := []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {0.5, 5}, {0.9, 9}, {0.99, 10}, {1, 10}} {
		if got := percentile(ds, c.q); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if ds[0] != 5 {
		t.Error("percentile sorted its input")
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median = %v, want 2", got)
	}
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ got, want string }{
		{thousands(0), "0"}, {thousands(999), "999"}, {thousands(1000), "1,000"}, {thousands(-1234567), "-1,234,567"},
		{dur(5837 * time.Nanosecond), "5.84 µs"}, {dur(41178 * time.Nanosecond), "41.2 µs"}, {dur(404915 * time.Nanosecond), "405 µs"},
		{dur(2571702 * time.Nanosecond), "2.57 ms"}, {dur(1500 * time.Millisecond), "1.50 s"}, {dur(0), "—"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestRunFailsClearlyWithoutData(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"--data", t.TempDir(), "--out", t.TempDir()}, io.Discard, &stderr)
	if err == nil {
		t.Fatal("run succeeded without data")
	}
	for _, want := range []string{"missing benchmark data", "ml-1m", filepath.Join("splits", "ml-100k", "user-temporal", "train.dat")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestSyntheticIsSeededAndUnit(t *testing.T) {
	t.Parallel()
	a, b := synthetic(500, 8, 10, 7), synthetic(500, 8, 10, 7)
	if !slices.Equal(a.vectors, b.vectors) || !slices.Equal(a.queries[3], b.queries[3]) {
		t.Fatal("same seed, different vectors")
	}
	for i := range 500 {
		var s float64
		for _, x := range a.vectors[i*8 : (i+1)*8] {
			s += float64(x) * float64(x)
		}
		if s < 0.999 || s > 1.001 {
			t.Fatalf("vector %d has squared norm %v", i, s)
		}
	}
}

func TestSweepHasNoDuplicates(t *testing.T) {
	t.Parallel()
	for _, quick := range []bool{false, true} {
		builds, searches := sweep(quick)
		for i := range builds {
			for j := range i {
				if sameBuild(builds[i].p, builds[j].p) {
					t.Errorf("quick=%v: builds %q and %q are the same graph", quick, builds[i].label, builds[j].label)
				}
			}
		}
		seen := map[searchSetting]bool{}
		served := 0
		for _, s := range searches {
			if seen[s] {
				t.Errorf("quick=%v: search %s twice", quick, s.label())
			}
			seen[s] = true
			for _, b := range builds {
				if isServed(b.p, s) {
					served++
				}
			}
		}
		if served != 1 {
			t.Errorf("quick=%v: %d served settings in the sweep, want 1", quick, served)
		}
	}
}
