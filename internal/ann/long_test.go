package ann

import (
	"math/rand/v2"
	"testing"
)

// A few vectors much longer than the rest sit apart in the augmented space
// the graph is built in, with few links in: before searches scored the
// longest vectors after their beam (seedLong), 100 vectors twice as long
// as 20,000 others left recall@10 at 0.25 (docs/ann.md). Log-normal norms
// (pointwise towers) needed a beam of 128 to reach 0.99 at 3,706 items.
func TestHNSWLongVectors(t *testing.T) {
	t.Parallel()
	const n, long = 10000, 50
	s := newSynth(8, 20, 0.35, true, 72)
	spiked := s.points(n, 73)
	rng := rand.New(rand.NewPCG(5, 5))
	for _, i := range rng.Perm(n)[:long] {
		for j := range 8 {
			spiked[i*8+j] *= 2
		}
	}
	raw := newSynth(8, 20, 0.35, false, 72)
	for _, c := range []struct {
		name  string
		items []float32
	}{{"50 of 10,000 twice as long", spiked}, {"log-normal norms", raw.points(n, 73)}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ex, _ := NewExact(c.items, 8)
			h := mustHNSW(t, c.items, 8, DefaultHNSWParams())
			qs := rows(s.points(200, 74), 8)
			checkRecall(t, h, ex, qs, "")
			h.long = nil // what the search was without seedLong
			if before, err := SelfCheck(h, ex, qs, []int{10, 100}); err == nil {
				t.Logf("without the long seeds: recall %v", before)
			}
		})
	}
}
