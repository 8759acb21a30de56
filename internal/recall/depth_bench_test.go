package recall

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
)

// BenchmarkRecallDepth is Recall under index: auto on a 100,000-movie
// catalogue of clustered unit vectors (20 Gaussian clusters, spread 0.35,
// as ann's crossover measurements) at k = 10, 100 and 1,000: where the
// HNSW graph and the exact scan trade places (docs/ann.md, "Crossover").
// Users cycle through 64 feature combinations and known ids. Skipped
// under -short (the graph's build takes seconds).
func BenchmarkRecallDepth(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 100,000-movie graph")
	}
	const n, dim = 100000, 8
	bundle := testBundle(b, "v1", n, 1)
	// Training puts movies near the users who rate them: the clusters'
	// centres are user vectors, drawn as the self-check draws its queries.
	probe := newService(b, "exact")
	if err := probe.Load(bundle); err != nil {
		b.Fatal(err)
	}
	centres := probe.live.Load().snap.sampleQueries(20, 7)
	rng := rand.New(rand.NewPCG(7, 1))
	row := make([]float64, dim)
	for i := range n {
		c := centres[rng.IntN(len(centres))]
		var nrm float64
		for j := range row {
			row[j] = float64(c[j]) + 0.35*rng.NormFloat64()
			nrm += row[j] * row[j]
		}
		for j, x := range row {
			bundle.Vectors[i*dim+j] = float32(x / math.Sqrt(nrm))
		}
	}
	s := newService(b, "auto")
	if err := s.Load(bundle); err != nil {
		b.Fatal(err)
	}
	info, _ := s.Info()
	b.Logf("backend %s to depth %d (%s); recall %v, beam %d; k = 10 µs per query %v", info.Backend, info.HNSWMaxDepth, info.IndexChoice, info.IndexRecall, info.IndexEfSearch, info.IndexLatency)
	occs := movielens.Occupations()
	users := make([]User, 64)
	for i := range users {
		users[i] = User{UserInput: feature.UserInput{Gender: []string{"F", "M"}[i%2], Age: 18 + i%40, Occupation: occs[i%len(occs)]}}
		if i%4 != 3 {
			users[i].UserID = movielens.UserID(1 + i%50)
		}
	}
	ctx := context.Background()
	for _, k := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, err := s.Recall(ctx, Request{User: users[i%len(users)], K: k}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
