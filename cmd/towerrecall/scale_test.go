package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestE2EScale100K runs the whole path on a 100,000-movie synthetic
// catalogue (issue 13, item 5; `make bench-scale` is the 1,000,000-movie
// measurement): data synth → train (movie vectors, HNSW graph saved in the
// artifact) → serve (the graph loaded, not rebuilt) → /recall. It requires
// start-to-ready under 10 s, the whole catalogue in /model, the backend
// auto chose consistent with its self-check, and full answers for known
// and cold-start users. About 30 s of the CI's E2E step.
func TestE2EScale100K(t *testing.T) {
	e2eOnly(t)
	const movies, users, ratings = 100000, 2000, 100000
	bin := buildBinary(t)
	dir := t.TempDir()
	data, model := filepath.Join(dir, "data"), filepath.Join(dir, "model")
	// The path, not the model, is under test: no popularity-prior search
	// (weight 0 alone), which would only lengthen the run.
	cfg := filepath.Join(dir, "scale.yaml")
	if err := os.WriteFile(cfg, []byte("train:\n  prior_weights: [0]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"data", "synth", "--dir", data, "--movies", fmt.Sprint(movies), "--users", fmt.Sprint(users), "--ratings", fmt.Sprint(ratings)},
		{"train", "--config", cfg, "--data", data, "--out", model, "--epochs", "3", "--progress=false"},
	} {
		start := time.Now()
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, tail(string(out), 4000))
		}
		t.Logf("%s: %.1f s", args[0], time.Since(start).Seconds())
	}
	p := startServe(t, bin, "--model", model)
	ms, _ := p.ready["start_to_ready_ms"].(float64)
	t.Logf("SCALE 100k movies: start to ready %.0f ms", ms)
	if ms <= 0 || ms > 10000 {
		t.Errorf("start to ready %.0f ms, want under 10 s", ms)
	}
	if lines := p.logs.logLines("reloaded"); len(lines) > 0 {
		t.Errorf("unexpected reload at start: %v", lines)
	}
	var info struct {
		Movies      int                `json:"movies"`
		Backend     string             `json:"backend"`
		IndexRecall map[string]float64 `json:"index_recall"`
		MaxDepth    int                `json:"hnsw_max_depth"`
	}
	p.c.json("GET", "/model", "", 200, &info)
	t.Logf("SCALE 100k movies: /model backend %s to depth %d, index recall %v", info.Backend, info.MaxDepth, info.IndexRecall)
	// auto serves HNSW only when its self-check passes min_recall (0.99);
	// on this catalogue most movies have no ratings and share the vector of
	// their genres and year, which the graph searches less well (docs/ann.md).
	if info.Movies != movies || len(info.IndexRecall) == 0 ||
		info.Backend == "hnsw" && (info.IndexRecall["recall@10"] < 0.99 || info.IndexRecall["recall@100"] < 0.99) {
		t.Errorf("/model: %+v", info)
	}
	if (info.Backend == "hnsw") != (info.MaxDepth > 0) {
		t.Errorf("/model: backend %s with hnsw_max_depth %d", info.Backend, info.MaxDepth)
	}
	// Each request goes to the graph only as deep (offset + k) as /model says.
	for _, tc := range []struct {
		body  string
		depth int
	}{
		{`{"user":{"user_id":7},"k":10}`, 10},
		{`{"user":{"gender":"F","age":25,"occupation":"writer"},"k":10}`, 10},
		{`{"user":{"user_id":11},"k":100,"genres":["Film-Noir"]}`, 100},
		{`{"user":{"user_id":11},"k":1000}`, 1000},
	} {
		var r recallResp
		p.c.json("POST", "/recall", tc.body, 200, &r)
		want := "exact"
		if tc.depth <= info.MaxDepth {
			want = "hnsw"
		}
		if len(r.Items) != tc.depth || r.Backend != want {
			t.Errorf("%s: %d items from %s, want %d from %s", tc.body, len(r.Items), r.Backend, tc.depth, want)
		}
	}
	p.stop(t)
}
