package recall

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/artifact"
)

// TestArtifactIndexReport loads the artifact in TOWERRECALL_ARTIFACT as
// `index: auto` does (min_recall 0.99, TOWERRECALL_SELFCHECK_QUERIES
// sampled user vectors, default 100, as the service's default) twice: with
// the HNSW graph the artifact stores, and with a graph built at load by
// this build (the artifact's graph dropped). It reports each one's
// self-check recall, measured latencies, choice and time to load or build,
// so that a graph written by an earlier release can be compared with the
// current build on the same trained vectors and the same queries.
// TOWERRECALL_ANN_EF overrides the search beam (EfSearch).
func TestArtifactIndexReport(t *testing.T) {
	dir := os.Getenv("TOWERRECALL_ARTIFACT")
	if dir == "" {
		t.Skip("TOWERRECALL_ARTIFACT not set")
	}
	b, err := artifact.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Index: "auto", MinRecall: 0.99, SelfCheckQueries: 100, HNSW: ann.DefaultHNSWParams(), Seed: 1}
	if v := os.Getenv("TOWERRECALL_SELFCHECK_QUERIES"); v != "" {
		if _, err := fmt.Sscan(v, &opts.SelfCheckQueries); err != nil {
			t.Fatal(err)
		}
	}
	if v := os.Getenv("TOWERRECALL_ANN_EF"); v != "" {
		if _, err := fmt.Sscan(v, &opts.HNSW.EfSearch); err != nil {
			t.Fatal(err)
		}
	}
	stored := b.Graph
	for _, c := range []struct {
		name  string
		graph []byte
	}{{"stored graph", stored}, {"built at load", nil}} {
		if c.graph == nil && len(stored) == 0 {
			continue
		}
		bc := *b
		bc.Graph = c.graph
		start := time.Now()
		snap, err := newSnapshot(&bc, opts, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s (%d movies): %s in %.1f s; recall %v at beam %d; latency at k = 10 %v µs; backend %s: %s",
			dir, len(b.Movies), c.name, time.Since(start).Seconds(), snap.info.IndexRecall, snap.info.IndexEfSearch, snap.info.IndexLatency,
			snap.info.Backend, snap.info.IndexChoice)
	}
}
