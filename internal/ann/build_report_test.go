package ann

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBuildScale measures the graph build that docs/ann.md compares with
// hnswlib's: at each size in TOWERRECALL_ANN_BUILD (e.g. 1000000) on the
// clustered synthetic vectors of TestANNReport (same seeds), and for each
// worker count in TOWERRECALL_ANN_BUILD_WORKERS (default "1,2"), the
// build's wall time, process CPU time, peak heap (sampled every 10 ms, so
// it includes garbage not yet collected) against the final graph and
// vectors, and recall@10 and @100 at the default search. With
// TOWERRECALL_ANN_REPORT set it writes vectors.f32 there (under the size)
// for `hnswlib_bench.py DIR --build-only --threads T`.
func TestBuildScale(t *testing.T) {
	v := os.Getenv("TOWERRECALL_ANN_BUILD")
	if v == "" {
		t.Skip("TOWERRECALL_ANN_BUILD not set")
	}
	workerList := "1,2"
	if w := os.Getenv("TOWERRECALL_ANN_BUILD_WORKERS"); w != "" {
		workerList = w
	}
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		s := newSynth(8, 20, 0.35, true, 71)
		vecs := s.points(n, 72)
		queries := rows(s.points(1000, 73), 8)
		if dir := os.Getenv("TOWERRECALL_ANN_REPORT"); dir != "" {
			sub := filepath.Join(dir, strconv.Itoa(n))
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			writeF32(t, filepath.Join(sub, "vectors.f32"), vecs)
		}
		ex, err := NewExact(vecs, 8)
		if err != nil {
			t.Fatal(err)
		}
		for _, wf := range strings.Split(workerList, ",") {
			workers, err := strconv.Atoi(wf)
			if err != nil {
				t.Fatal(err)
			}
			measureBuild(t, vecs, ex, queries, workers)
		}
	}
}

// measureBuild builds and reports one graph (see TestBuildScale).
func measureBuild(t *testing.T, vecs []float32, ex *Exact, queries [][]float32, workers int) {
	n := ex.Len()
	p := DefaultHNSWParams()
	p.BuildWorkers = workers
	heap0 := heapInUse()
	stop, peak := sampleHeap()
	wall, cpu := time.Now(), cpuTime()
	h, err := NewHNSW(vecs, 8, p)
	if err != nil {
		t.Fatal(err)
	}
	dw, dc := time.Since(wall), cpuTime()-cpu
	stop()
	retained := heapInUse() - heap0
	g := h.g
	graphB := 4*(len(g.base)+len(g.upper)+len(g.upperAt)) + len(g.levels)
	vecB := 4 * (len(h.exact.vecs) + len(h.exact.blocks))
	rec, err := SelfCheck(h, ex, queries, []int{10, 100})
	if err != nil {
		t.Fatal(err)
	}
	load := [3]float64{}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		for i, x := range strings.Fields(string(b))[:3] {
			load[i], _ = strconv.ParseFloat(x, 64)
		}
	}
	t.Logf("n=%d workers=%d GOMAXPROCS=%d: build wall %.1f s, CPU %.1f s; peak heap %.0f MB over %.0f MB before "+
		"(graph %.0f MB + vectors %.0f MB = %.0f MB; retained %.0f MB; peak/(graph+vectors) %.2f); recall@10 %.4f @100 %.4f; load %.1f",
		n, workers, runtime.GOMAXPROCS(0), dw.Seconds(), dc.Seconds(), mb(*peak-heap0), mb(heap0),
		mb(graphB), mb(vecB), mb(graphB+vecB), mb(retained), float64(*peak-heap0)/float64(graphB+vecB),
		rec[10], rec[100], load[0])
	// Loading: the version-1 (coder/hnsw) format against the native one,
	// the median of 3 imports each, wall time.
	for _, f := range []struct {
		name   string
		export func(io.Writer) error
	}{{"version 1 (coder/hnsw format)", h.exportLibrary}, {"native", h.Export}} {
		var buf bytes.Buffer
		if err := f.export(&buf); err != nil {
			t.Fatal(err)
		}
		var ds []time.Duration
		for range 3 {
			start := time.Now()
			if _, err := ImportHNSW(bytes.NewReader(buf.Bytes()), vecs, 8, DefaultHNSWParams()); err != nil {
				t.Fatal(err)
			}
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		t.Logf("n=%d import %s: %.1f MB, %.0f ms (median of 3: %v)", n, f.name, mb(buf.Len()), float64(ds[1].Microseconds())/1e3, ds)
	}
	runtime.KeepAlive(h)
}

// sampleHeap records the largest heap-object bytes seen every 10 ms until
// stop is called.
func sampleHeap() (stop func(), peak *int) {
	peak = new(int)
	done := make(chan struct{})
	var wg sync.WaitGroup
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() {
		metrics.Read(sample)
		*peak = max(*peak, int(sample[0].Value.Uint64()))
	}
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				read()
			}
		}
	})
	return func() { close(done); wg.Wait(); read() }, peak
}

// TestCrossover measures where HNSW starts to beat the exact scan, the
// decision `index: auto` makes at load (recall.chooseBackend: the same 32
// queries on both at k = 10, then 100, then 1,000, the graph serving
// requests as deep as it stays faster, if its recall passes). On the
// clustered synthetic vectors at catalogue sizes from 2,000 to 256,000 it
// reports the process CPU per query (median of 5 passes of 200 queries)
// of each at k = 10 and k = 100 and their sum. Runs when TOWERRECALL_ANN_CROSSOVER is set: to
// a comma-separated list of sizes, or to anything else for 2,000 to
// 256,000 doubling.
func TestCrossover(t *testing.T) {
	env := os.Getenv("TOWERRECALL_ANN_CROSSOVER")
	if env == "" {
		t.Skip("TOWERRECALL_ANN_CROSSOVER not set")
	}
	sizes := []int{2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000}
	if strings.Contains(env, ",") {
		sizes = sizes[:0]
		for _, f := range strings.Split(env, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, n)
		}
	}
	s := newSynth(8, 20, 0.35, true, 71)
	queries := rows(s.points(200, 73), 8)
	t.Logf("| movies | exact k=10 | HNSW k=10 | exact k=100 | HNSW k=100 | exact/HNSW (k=10 + k=100) | recall@10 / @100 |")
	t.Logf("|--:|--:|--:|--:|--:|--:|--:|")
	for _, n := range sizes {
		vecs := s.points(n, 72)
		ex, err := NewExact(vecs, 8)
		if err != nil {
			t.Fatal(err)
		}
		h, err := NewHNSW(vecs, 8, DefaultHNSWParams())
		if err != nil {
			t.Fatal(err)
		}
		rec, err := SelfCheck(h, ex, queries, []int{10, 100})
		if err != nil {
			t.Fatal(err)
		}
		e10, h10 := medianLatency(ex, queries, 10, 5), medianLatency(h, queries, 10, 5)
		e100, h100 := medianLatency(ex, queries, 100, 5), medianLatency(h, queries, 100, 5)
		t.Logf("| %d | %s | %s | %s | %s | %.2f | %.4f / %.4f |", n, us(e10), us(h10), us(e100), us(h100),
			float64(e10+e100)/float64(h10+h100), rec[10], rec[100])
	}
}

// TestDuplicatesReport measures what merging duplicate vectors changes
// (docs/ann.md, "Duplicate vectors"): for each size in
// TOWERRECALL_ANN_DUPS (e.g. 100000,1000000), on dupVectors with n/200
// shared vectors and n/5 unique ones, and for the vectors in
// TOWERRECALL_ANN_DUPS_FILE (flat little-endian float32, such as an
// artifact's movie_vectors.bin, of dimension TOWERRECALL_ANN_DUPS_DIM,
// default 8; queries are noisy items), it builds the graph both ways —
// one node per row (as before: the same build over every row) and one per
// distinct vector — and reports the time to compute the mapping, build
// time (wall, two workers), recall@10 and @100 against exact
// (SelfCheck) and the process CPU per query (median of 5 passes) of
// exact and of both graphs at k = 10 and 100.
func TestDuplicatesReport(t *testing.T) {
	sizes, file := os.Getenv("TOWERRECALL_ANN_DUPS"), os.Getenv("TOWERRECALL_ANN_DUPS_FILE")
	if sizes == "" && file == "" {
		t.Skip("TOWERRECALL_ANN_DUPS and TOWERRECALL_ANN_DUPS_FILE not set")
	}
	type input struct {
		name    string
		vecs    []float32
		dim     int
		queries [][]float32
	}
	var inputs []input
	for _, f := range strings.Split(sizes, ",") {
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		vecs, s := dupVectors(n, n/200, n/5, 81)
		inputs = append(inputs, input{"synthetic " + f, vecs, 8, rows(s.points(500, 82), 8)})
	}
	if file != "" {
		dim := 8
		if d := os.Getenv("TOWERRECALL_ANN_DUPS_DIM"); d != "" {
			dim, _ = strconv.Atoi(d)
		}
		vecs := readVectors(t, file, dim)
		inputs = append(inputs, input{file, vecs, dim, noisyQueries(vecs, dim, 500, 83)})
	}
	for _, in := range inputs {
		n := len(in.vecs) / in.dim
		var ds []time.Duration
		var nodes int
		for range 3 {
			start := time.Now()
			_, m := distinctRows(in.vecs, in.dim)
			ds = append(ds, time.Since(start))
			nodes = m.nodes()
		}
		slices.Sort(ds)
		t.Logf("%s: %d rows, %d distinct; mapping %v (median of 3)", in.name, n, nodes, ds[1])
		ex, err := NewExact(in.vecs, in.dim)
		if err != nil {
			t.Fatal(err)
		}
		p := DefaultHNSWParams()
		p.BuildWorkers = 2
		start := time.Now()
		perRow, err := newHNSWBase(in.vecs, in.dim, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := perRow.useNodes(n); err != nil { // a node per row
			t.Fatal(err)
		}
		perRow.g = buildGraph(perRow.augmenter().all(), in.dim+1, n, p.M, p.M0, p.EfConstruction, p.Ml, buildSeed(p.Seed), p.BuildWorkers)
		tRow := time.Since(start)
		start = time.Now()
		merged, err := NewHNSW(in.vecs, in.dim, p)
		if err != nil {
			t.Fatal(err)
		}
		tMerged := time.Since(start)
		e10, e100 := medianLatency(ex, in.queries, 10, 5), medianLatency(ex, in.queries, 100, 5)
		for _, c := range []struct {
			name  string
			h     *HNSW
			build time.Duration
		}{{"a node per row", perRow, tRow}, {"a node per distinct vector", merged, tMerged}} {
			rec, err := SelfCheck(c.h, ex, in.queries, []int{10, 100})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s, %s: %d nodes, build %.1f s wall; recall@10 %.4f @100 %.4f; k=10 %s (exact %s), k=100 %s (exact %s)",
				in.name, c.name, c.h.g.n, c.build.Seconds(), rec[10], rec[100],
				us(medianLatency(c.h, in.queries, 10, 5)), us(e10), us(medianLatency(c.h, in.queries, 100, 5)), us(e100))
		}
	}
}
