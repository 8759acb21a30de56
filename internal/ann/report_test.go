package ann

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestANNReport measures, in one run, what docs/ann.md reports: on the
// clustered synthetic vectors (20 clusters, spread 0.35, L2-normalised) at
// each size in TOWERRECALL_ANN_SIZES (default 100000), the graph build time
// and heap, and the top-10 and top-100 latency (process CPU per query) and recall of this package's
// search at several beam widths, of coder/hnsw v0.6.1's Search over the same
// graph (up to 100,000 items, unless TOWERRECALL_ANN_LIBRARY=0: at 1M its
// pointer-rich copy of the graph takes most of a GB) and of the exact scan. It writes
// the vectors, queries and exact top-100 ids under TOWERRECALL_ANN_REPORT
// (a directory) for tools/annbench/hnswlib_bench.py, and the table rows to
// go.md there. It only runs when TOWERRECALL_ANN_REPORT is set.
func TestANNReport(t *testing.T) {
	dir := os.Getenv("TOWERRECALL_ANN_REPORT")
	if dir == "" {
		t.Skip("TOWERRECALL_ANN_REPORT not set")
	}
	sizes := []int{100000}
	if v := os.Getenv("TOWERRECALL_ANN_SIZES"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, n)
		}
	}
	const nq, reps = 1000, 5
	for _, n := range sizes {
		sub := filepath.Join(dir, strconv.Itoa(n))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		s := newSynth(8, 20, 0.35, true, 71)
		vecs := s.points(n, 72)
		qflat := s.points(nq, 73)
		queries := rows(qflat, 8)
		writeF32(t, filepath.Join(sub, "vectors.f32"), vecs)
		writeF32(t, filepath.Join(sub, "queries.f32"), qflat)
		ex, err := NewExact(vecs, 8)
		if err != nil {
			t.Fatal(err)
		}
		var truth []byte
		for _, q := range queries {
			res, _ := ex.Search(nil, q, 100, nil)
			for _, r := range res {
				truth = binary.LittleEndian.AppendUint32(truth, uint32(r.ID))
			}
		}
		if err := os.WriteFile(filepath.Join(sub, "truth.i32"), truth, 0o644); err != nil {
			t.Fatal(err)
		}

		var out strings.Builder
		line := func(format string, a ...any) {
			fmt.Fprintf(&out, format+"\n", a...)
			t.Logf(format, a...)
		}
		heap0 := heapInUse()
		start := cpuTime()
		p := DefaultHNSWParams()
		h, err := NewHNSW(vecs, 8, p)
		if err != nil {
			t.Fatal(err)
		}
		build := cpuTime() - start
		heap := heapInUse() - heap0
		line("n = %d, %d queries, GOMAXPROCS %d, %s", n, nq, runtime.GOMAXPROCS(0), runtime.Version())
		line("| index | build | heap | setting | top-10 latency | recall@10 | visited | top-100 latency | recall@100 |")
		line("|---|--:|--:|---|--:|--:|--:|--:|--:|")
		e10, e100 := medianLatency(ex, queries, 10, reps), medianLatency(ex, queries, 100, reps)
		line("| exact scan | — | %.0f MB (vectors ×2) | — | %s | 1 | %d | %s | 1 |", mb(2*4*8*n), us(e10), n, us(e100))
		for i, c := range []struct{ ef, of int }{{16, 1}, {24, 1}, {32, 1}, {32, 2}, {48, 2}, {64, 2}, {96, 2}} {
			h.p.EfSearch, h.p.Overfetch = c.ef, c.of
			rec, err := SelfCheck(h, ex, queries, []int{10, 100})
			if err != nil {
				t.Fatal(err)
			}
			l10, l100 := medianLatency(h, queries, 10, reps), medianLatency(h, queries, 100, reps)
			b, hp := "", ""
			if i == 0 {
				b, hp = fmt.Sprintf("%.1f s", build.Seconds()), fmt.Sprintf("%.0f MB", mb(heap))
			}
			def := ""
			if c.ef == p.EfSearch && c.of == p.Overfetch {
				def = " (default)"
			}
			line("| `ann` HNSW (M %d, M0 %d, efC %d) | %s | %s | ef max(%d, %d·k)%s | %s | %.4f | %.0f | %s | %.4f |",
				p.M, p.M0, p.EfConstruction, b, hp, c.ef, c.of, def, us(l10), rec[10], visited(h, queries, 10), us(l100), rec[100])
		}
		h.p = p
		if n <= 100000 && os.Getenv("TOWERRECALL_ANN_LIBRARY") != "0" {
			heap0 := heapInUse()
			start := time.Now()
			lib, err := newLibraryHNSW(h, 400, 8, 400)
			if err != nil {
				t.Fatal(err)
			}
			load := time.Since(start)
			lheap := heapInUse() - heap0
			for _, c := range []struct{ of, minFetch int }{{1, 1}, {8, 400}} {
				lib.overfetch, lib.minFetch = c.of, c.minFetch
				rec, err := SelfCheck(lib, ex, queries, []int{10, 100})
				if err != nil {
					t.Fatal(err)
				}
				l10, l100 := medianLatency(lib, queries, 10, reps), medianLatency(lib, queries, 100, reps)
				line("| coder/hnsw v0.6.1 Search, same graph | Import %.1f s | %.0f MB | EfSearch 400, fetch max(%d·k, %d) | %s | %.4f | — | %s | %.4f |",
					load.Seconds(), mb(lheap), c.of, c.minFetch, us(l10), rec[10], us(l100), rec[100])
			}
			runtime.KeepAlive(lib)
		}
		runtime.KeepAlive(h)
		if err := os.WriteFile(filepath.Join(sub, "go.md"), []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// cpuTime is the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func writeF32(t *testing.T, path string, v []float32) {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func heapInUse() int {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int(m.HeapAlloc)
}

func mb(b int) float64 { return float64(b) / 1e6 }

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d.Nanoseconds())/1e3) }

// medianLatency runs every query reps times after a warm-up pass and
// returns the median over passes of the mean process CPU time per query
// (on a shared machine, CPU time is what a query costs; wall time also
// counts the time other processes hold the cores).
func medianLatency(idx Index, queries [][]float32, k, reps int) time.Duration {
	dst := make([]Result, 0, k)
	for _, q := range queries {
		dst, _ = idx.Search(dst, q, k, nil)
	}
	per := make([]time.Duration, reps)
	for r := range per {
		start := cpuTime()
		for _, q := range queries {
			dst, _ = idx.Search(dst, q, k, nil)
		}
		per[r] = (cpuTime() - start) / time.Duration(len(queries))
	}
	slices.Sort(per)
	return per[reps/2]
}

// visited returns the mean number of nodes a search of h scores, read
// from the pooled scratch (single goroutine, so the pool hands back the
// scratch the search used).
func visited(h *HNSW, queries [][]float32, k int) float64 {
	var sum int
	dst := make([]Result, 0, k)
	for _, q := range queries {
		dst, _ = h.Search(dst, q, k, nil)
		s := h.pool.Get().(*scratch)
		sum += s.scored
		h.pool.Put(s)
	}
	return float64(sum) / float64(len(queries))
}
