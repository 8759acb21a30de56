package main

import (
	"slices"
	"time"

	"github.com/towerrecall/towerrecall/internal/train"
)

// Results is everything one run measured; the report and the plots are
// rendered from it alone, so they can be tested on made-up numbers.
type Results struct {
	Quick    bool
	Command  string // how this report was made
	Machine  Machine
	Config   []string
	Elapsed  time.Duration
	Training []TrainRun
	Serving  string // which model the index/handler/load sections used
	Index    []IndexBench
	Handler  []HandlerBench
	// AutoBackend is the backend `index: auto` (the default) picks for the
	// serving model, with the self-check recall it measured.
	AutoBackend string
	AutoRecall  map[string]float64
	Load        *LoadBench
}

// TrainRun is one training job on one split.
type TrainRun struct {
	Dataset string // "ml-100k" or "ml-1m"
	Split   string // "user-temporal" or "recbole"
	Recipe  string // "softmax" (config.Default) or "pointwise" (config.Reference)
	Train   int    // ratings
	Valid   int
	Test    int

	Epochs         []train.EpochStats
	BestEpoch      int
	TrainSeconds   float64 // the training loop (validation excluded), from the manifest
	WallSeconds    float64 // pipeline.Train end to end: features, training, vectors, HNSW, evaluation
	ExamplesPerSec float64 // median over epochs
	PeakRSS        int64   // bytes, VmHWM; 0 when unknown
	PeakRSSReset   bool    // the peak was reset before this run (else it is the process's peak so far)
	Metrics        map[string]float64
}

// IndexBench is the HNSW sweep on one set of vectors.
type IndexBench struct {
	Name      string // short key for file names
	Label     string // what the vectors are
	N, Dim    int
	Queries   int
	QueryNote string
	Exact10   time.Duration // median per-query latency of the exact scan, k = 10
	Exact100  time.Duration
	Rows      []IndexRow
}

// IndexRow is one HNSW setting: a graph build and a search setting.
type IndexRow struct {
	Build        string // build label
	Search       string // search label
	M, M0        int
	EfConstr     int
	EfSearch     int
	Overfetch    int
	BuildSeconds float64
	Fetch10      int // beam width per query at k = 10
	Fetch100     int
	Recall10     float64 // ann.SelfCheck against exact
	Recall100    float64
	Lat10        time.Duration // median per-query latency, k = 10
	Lat100       time.Duration
	Served       bool // the setting `towerrecall serve` uses by default
}

// HandlerBench is /recall through the full HTTP handler, one backend.
type HandlerBench struct {
	Backend   string // "exact" or "hnsw", as answered
	Requests  int
	Errors    int // non-200 answers
	Latencies []time.Duration
}

// LoadBench is the loopback load test.
type LoadBench struct {
	Tool        string
	Connections int
	Duration    time.Duration
	Mix         string    // the request bodies
	Runs        []LoadRun // bare handler first, then the service
}

// LoadRun is one target of the load test.
type LoadRun struct {
	Name        string
	Detail      string
	Backend     string // index backend of a service run, "" for the bare handler
	Requests    int
	Errors      int
	Seconds     float64 // first request sent to last answer received
	Latencies   []time.Duration
	ErrorSample string // the most frequent errors, if any
}

// RPS is successful requests per second.
func (r LoadRun) RPS() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Requests-r.Errors) / r.Seconds
}

// percentile returns the q-quantile (0..1) of ds by the nearest-rank rule;
// ds need not be sorted and is not modified.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return sortedPercentile(s, q)
}

func sortedPercentile(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s))+0.999999) - 1 // ceil(q·n) − 1
	return s[min(max(i, 0), len(s)-1)]
}

// median of a small sample (upper median for an even count).
func median[T int | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		var zero T
		return zero
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// datasetLabel is how a dataset is named wherever a number about it is shown.
// The shared ml-1m holds only the ratings of users 1–2,999.
func datasetLabel(ds string) string {
	switch ds {
	case "ml-1m":
		return "MovieLens-1M, users 1–2,999"
	case "ml-100k":
		return "MovieLens-100K"
	}
	return ds
}
