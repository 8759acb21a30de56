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
	// The stall lands after the warm-up (4 searches) at k = 10 or k = 100,
	// early or late in a pass, or in a later pass (64 searches each):
	// wherever it lands, the measurement leaves it out, and is what the
	// 32 searches at each k took without it.
	for _, at := range []int{5, 6, 20, 41, 68, 150} {
		idx := &stallOnce{Index: exact, n: at, stall: 20 * time.Millisecond}
		k10, k100, nq := timeSearch(idx, queries, idx.now)
		if idx.calls < at {
			t.Fatalf("stall at search %d never happened (%d searches)", at, idx.calls)
		}
		if nq != len(queries) {
			t.Errorf("timed %d queries, want %d", nq, len(queries))
		}
		if want := 32 * time.Microsecond; k10 != want || k100 != want {
			t.Errorf("stall at search %d: measured %v and %v, want %v each: one stalled search decided the timing", at, k10, k100, want)
		}
	}
}
