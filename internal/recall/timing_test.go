package recall

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/towerrecall/towerrecall/internal/ann"
)

// stallOnce is an index on a fake clock: each search takes 1 µs of it,
// except the n-th, which stalls, as a search does when the scheduler
// preempts it or a GC pause lands in it.
type stallOnce struct {
	ann.Index
	n, calls int
	stall    time.Duration
	clock    time.Time
}

func (s *stallOnce) now() time.Time { return s.clock }

func (s *stallOnce) Search(dst []ann.Result, q []float32, k int, accept ann.Filter) ([]ann.Result, error) {
	s.calls++
	s.clock = s.clock.Add(time.Microsecond)
	if s.calls == s.n {
		s.clock = s.clock.Add(s.stall)
	}
	return s.Index.Search(dst, q, k, accept)
}

// TestTimeSearchIgnoresOneStall: index: auto compares the backends by
// timeSearch, and one stalled search must not decide it. On a 400-movie
// demo catalogue a scan takes ~1 µs, so a single 10 ms pause in the exact
// pass made "auto" serve HNSW, five times slower, while /model reported
// exact as the faster backend.
func TestTimeSearchIgnoresOneStall(t *testing.T) {
	t.Parallel()
	const n, dim = 400, 8
	rng := rand.New(rand.NewPCG(1, 2))
	vecs := make([]float32, n*dim)
	for i := range vecs {
		vecs[i] = rng.Float32()*2 - 1
	}
	exact, err := ann.NewExact(vecs, dim)
	if err != nil {
		t.Fatal(err)
	}
	queries := make([][]float32, 32)
	for i := range queries {
		queries[i] = vecs[i*dim : (i+1)*dim]
	}
	// The stall lands after the warm-up (4 searches), early or late in
	// the first pass, or in a later one (32 searches each): wherever it
	// lands, the measurement leaves it out, and is what the 32 searches
	// took without it.
	for _, at := range []int{5, 6, 20, 36, 41, 68, 100} {
		idx := &stallOnce{Index: exact, n: at, stall: 20 * time.Millisecond}
		d, nq := timeSearch(idx, queries, 10, idx.now)
		if idx.calls < at {
			t.Fatalf("stall at search %d never happened (%d searches)", at, idx.calls)
		}
		if nq != len(queries) {
			t.Errorf("timed %d queries, want %d", nq, len(queries))
		}
		if want := 32 * time.Microsecond; d != want {
			t.Errorf("stall at search %d: measured %v, want %v: one stalled search decided the timing", at, d, want)
		}
	}
}

// costly is an index on a shared fake clock whose searches cost cost(k).
type costly struct {
	ann.Index
	clock *time.Time
	cost  func(k int) time.Duration
}

func (c costly) Search(dst []ann.Result, q []float32, k int, accept ann.Filter) ([]ann.Result, error) {
	*c.clock = c.clock.Add(c.cost(k))
	return c.Index.Search(dst, q, k, accept)
}

// TestRouteDepth: the graph answers up to the deepest measured depth at
// which it was faster than the scan at every depth so far (never deeper
// than timed: it was given every depth to 11,000 for winning at 1,000),
// none if not at k = 10; /model's latencies are at k = 10.
func TestRouteDepth(t *testing.T) {
	t.Parallel()
	const n, dim = 50, 8
	vecs := make([]float32, n*dim)
	for i := range vecs {
		vecs[i] = float32(i%7) - 3
	}
	exact, err := ann.NewExact(vecs, dim)
	if err != nil {
		t.Fatal(err)
	}
	queries := [][]float32{vecs[:dim], vecs[dim : 2*dim]}
	flat := func(us int) func(int) time.Duration {
		return func(int) time.Duration { return time.Duration(us) * time.Microsecond }
	}
	perTen := func(k int) time.Duration { return time.Duration(k/10) * time.Microsecond } // 1, 10, 100 µs at 10, 100, 1,000
	for _, tc := range []struct {
		name        string
		scan, graph func(int) time.Duration
		want        int
		scan10, g10 float64
	}{
		{"graph faster everywhere: as deep as timed", flat(2), flat(1), MaxK, 2, 1},
		{"graph faster at 10 only", flat(5), perTen, 10, 5, 1},
		{"graph faster to 100", flat(50), perTen, 100, 50, 1},
		{"scan faster at 10", flat(1), flat(3), 0, 1, 3},
		{"a tie goes to the scan", flat(1), perTen, 0, 1, 1},
		{"faster at 1,000 but not at 100", func(k int) time.Duration {
			return map[int]time.Duration{10: 5, 100: 5, MaxK: 500}[k] * time.Microsecond
		}, perTen, 10, 5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := time.Unix(0, 0)
			now := func() time.Time { return clock }
			depth, latency := routeDepth(costly{exact, &clock, tc.scan}, costly{exact, &clock, tc.graph}, queries, routeDepths[:], now)
			if depth != tc.want {
				t.Errorf("depth %d, want %d", depth, tc.want)
			}
			if latency["exact"] != tc.scan10 || latency["hnsw"] != tc.g10 {
				t.Errorf("latency %v µs, want exact %g, hnsw %g", latency, tc.scan10, tc.g10)
			}
		})
	}
}
