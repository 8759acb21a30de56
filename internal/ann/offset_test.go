package ann

import (
	"math/rand/v2"
	"testing"
)

// A common offset dominates every norm in the vectors of a model with a
// popularity prior at catalogue scale: their last dimension is the movie's
// bias, the default (−13.8) for most movies, higher for the few rated of
// late, and the user's side is the prior's weight (0.05). The graph's
// neighbourhoods are then shells of equal bias, and the rated movies, which
// queries want, are shorter than the rest, not longer: seeding the longest
// vectors left recall@10 at 0.55 here (0.93 on a trained 1M-movie
// catalogue: docs/ann.md, "Vectors far from the rest"). Seeding those
// farthest from the mean finds them.
func TestHNSWCommonOffset(t *testing.T) {
	skipRace(t)
	t.Parallel()
	const n = 20000
	s := newSynth(8, 20, 0.35, true, 72)
	taste := s.points(n, 73)
	rng := rand.New(rand.NewPCG(9, 9))
	items := make([]float32, 0, n*9)
	for i := range n {
		bias := float32(-13.8)
		if rng.IntN(20) == 0 {
			bias = -2 - 6*rng.Float32()
		}
		items = append(append(items, taste[i*8:(i+1)*8]...), bias)
	}
	var qs [][]float32
	for _, q := range rows(s.points(300, 74), 8) {
		qs = append(qs, append(q, 0.05))
	}
	ex, _ := NewExact(items, 9)
	p := DefaultHNSWParams()
	p.BuildWorkers = 1
	checkRecall(t, mustHNSW(t, items, 9, p), ex, qs, "")
}
