// Command benchreport measures towerrecall end to end and writes the numbers
// a user reads: docs/benchmarks.md plus SVG plots. It trains the default
// model on the shared MovieLens splits (throughput and quality, beside the
// published reference points), sweeps the HNSW settings against the exact
// scan on the real movie vectors and on a synthetic 100,000-item catalogue,
// times the /recall handler in-process, and drives a loopback load test at
// a bare handler and at the real service. It is its own module, so that the
// product does not depend on its plotting library, and imports the product's
// internal packages (allowed under the module path's prefix), so the numbers
// are those of the product. From the repository root:
//
//	cd tools/benchreport && go run . --data ../../../shared/data --out ../../docs
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

// options are the command-line settings of one run.
type options struct {
	dataDir     string
	outDir      string
	modelDir    string // optional artifact for the index/handler/load sections
	quick       bool
	skipTrain   bool
	skipIndex   bool
	skipHandler bool
	skipLoad    bool
	png         bool
	seed        uint64

	queries      int           // index queries per dataset
	reps         int           // timing repetitions (median reported)
	syntheticN   int           // synthetic catalogue size
	requests     int           // handler requests per backend
	connections  int           // load-test connections
	loadDuration time.Duration // per load target
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.dataDir, "data", "../../../shared/data", "shared data directory (holds ml-100k/, ml-1m/ and splits/)")
	fs.StringVar(&o.outDir, "out", "../../docs", "directory for benchmarks.md and the plots")
	fs.StringVar(&o.modelDir, "model", "", "artifact to benchmark the index, handler and load sections on (default: the model trained here)")
	fs.BoolVar(&o.quick, "quick", false, "CI smoke run: ml-100k only, small sweeps, short load test (< 2 minutes)")
	fs.BoolVar(&o.skipTrain, "skip-train", false, "skip the training section (the serving model is still trained unless --model is given)")
	fs.BoolVar(&o.skipIndex, "skip-index", false, "skip the index section")
	fs.BoolVar(&o.skipHandler, "skip-handler", false, "skip the handler section")
	fs.BoolVar(&o.skipLoad, "skip-load", false, "skip the loopback load section")
	fs.BoolVar(&o.png, "png", false, "also write a PNG copy of every plot")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of every random choice (queries, requests, synthetic vectors)")
	fs.IntVar(&o.queries, "queries", 0, "index queries per dataset (0: 300, quick 100)")
	fs.IntVar(&o.reps, "reps", 0, "timing repetitions, the median is reported (0: 5, quick 3)")
	fs.IntVar(&o.syntheticN, "synthetic", 0, "synthetic catalogue size (0: 100000, quick 10000)")
	fs.IntVar(&o.requests, "requests", 0, "handler requests per backend (0: 20000, quick 2000)")
	fs.IntVar(&o.connections, "connections", 16, "load-test connections (and concurrent requests)")
	fs.DurationVar(&o.loadDuration, "load-duration", 0, "load-test duration per target (0: 10s, quick 2s)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	def := func(dst *int, full, quick int) {
		if *dst <= 0 {
			*dst = full
			if o.quick {
				*dst = quick
			}
		}
	}
	def(&o.queries, 300, 100)
	def(&o.reps, 5, 3)
	def(&o.syntheticN, 100_000, 10_000)
	def(&o.requests, 20_000, 2_000)
	if o.connections < 1 {
		return o, fmt.Errorf("--connections %d: want at least 1", o.connections)
	}
	if o.loadDuration <= 0 {
		o.loadDuration = 10 * time.Second
		if o.quick {
			o.loadDuration = 2 * time.Second
		}
	}
	return o, nil
}

// run is the whole program; main only wires the process to it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	p := newProgress(stderr)
	if err := checkData(o); err != nil {
		return err
	}
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return fmt.Errorf("create --out: %w", err)
	}
	res := &Results{Quick: o.quick, Machine: readMachine(ctx), Config: describeOptions(o),
		Command: strings.TrimSpace("cd tools/benchreport && go run . " + strings.Join(args, " "))}
	p.logf("machine: %s, %d cores, %s %s/%s, commit %s, load %s",
		res.Machine.CPU, res.Machine.Cores, res.Machine.GoVersion, res.Machine.GOOS, res.Machine.GOARCH,
		res.Machine.commitLabel(), res.Machine.LoadStart)
	start := time.Now()

	data := newDataCache(o.dataDir)
	serving, err := runTraining(ctx, o, data, res, p)
	if err != nil {
		return err
	}
	if !o.skipIndex {
		if res.Index, err = runIndex(ctx, o, serving, p); err != nil {
			return err
		}
	}
	if res.AutoBackend, res.AutoRecall, err = autoBackend(serving); err != nil {
		return err
	}
	p.logf("index: auto serves this model from %s (self-check %v)", res.AutoBackend, res.AutoRecall)
	if !o.skipHandler {
		if res.Handler, err = runHandler(ctx, o, serving, p); err != nil {
			return err
		}
	}
	if !o.skipLoad {
		if res.Load, err = runLoad(ctx, o, serving, p); err != nil {
			return err
		}
	}
	res.Machine.LoadEnd = readLoadAvg()
	res.Elapsed = time.Since(start)

	plots, err := writePlots(o.outDir, res, o.png)
	if err != nil {
		return err
	}
	md := renderMarkdown(res, plots)
	path := o.outDir + "/benchmarks.md"
	if err := os.WriteFile(path, md, 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	p.logf("wrote %s and %d plots in %s", path, len(plots), res.Elapsed.Round(time.Second))
	fmt.Fprintln(stdout, path)
	return nil
}

// describeOptions lists the settings that shape the numbers, for the report.
func describeOptions(o options) []string {
	mode := "full"
	if o.quick {
		mode = "quick (CI smoke: ml-100k only, small sweeps — not for publishing)"
	}
	return []string{
		"mode: " + mode,
		fmt.Sprintf("seed %d; %d index queries per dataset; median of %d timing repetitions", o.seed, o.queries, o.reps),
		fmt.Sprintf("synthetic catalogue: %d × 8; handler: %d requests per backend; load: %d connections, %s per target",
			o.syntheticN, o.requests, o.connections, o.loadDuration),
	}
}

// progress prints timestamped lines to stderr.
type progress struct {
	w     io.Writer
	start time.Time
}

func newProgress(w io.Writer) *progress { return &progress{w: w, start: time.Now()} }

func (p *progress) logf(format string, args ...any) {
	fmt.Fprintf(p.w, "[%6.1fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}
