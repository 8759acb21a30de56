package ann

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// synth generates clustered vectors shaped like trained movie/user towers:
// Gaussian clusters around random centres, either L2-normalised (softmax
// towers) or with log-normal norms (pointwise towers).
type synth struct {
	dim, clusters int
	spread        float64
	normalised    bool
	centres       []float64
}

func newSynth(dim, clusters int, spread float64, normalised bool, seed uint64) *synth {
	rng := rand.New(rand.NewPCG(seed, 1))
	s := &synth{dim: dim, clusters: clusters, spread: spread, normalised: normalised}
	s.centres = make([]float64, clusters*dim)
	for i := range s.centres {
		s.centres[i] = rng.NormFloat64()
	}
	return s
}

// points returns n flat vectors drawn with seed.
func (s *synth) points(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 2))
	out := make([]float32, n*s.dim)
	row := make([]float64, s.dim)
	for i := range n {
		c := rng.IntN(s.clusters)
		var nrm float64
		for j := range row {
			row[j] = s.centres[c*s.dim+j] + s.spread*rng.NormFloat64()
			nrm += row[j] * row[j]
		}
		scale := 1 / math.Sqrt(nrm)
		if !s.normalised {
			scale *= math.Exp(0.5 * rng.NormFloat64())
		}
		for j, x := range row {
			out[i*s.dim+j] = float32(x * scale)
		}
	}
	return out
}

func rows(flat []float32, dim int) [][]float32 {
	out := make([][]float32, len(flat)/dim)
	for i := range out {
		out[i] = flat[i*dim : (i+1)*dim : (i+1)*dim]
	}
	return out
}

// dataset is a named set of item vectors with queries.
type dataset struct {
	name    string
	items   []float32
	queries [][]float32
}

// datasets returns the synthetic workloads at n items (dim 8), plus the real
// vectors in TOWERRECALL_VECTORS if set (flat little-endian float32, n×8;
// queries are then items with noise, as no user vectors are given).
func datasets(t testing.TB, n, nq int) []dataset {
	const dim = 8
	var out []dataset
	for _, v := range []struct {
		name string
		norm bool
	}{{"clustered-normalised", true}, {"clustered-raw", false}} {
		s := newSynth(dim, 20, 0.35, v.norm, 7)
		out = append(out, dataset{
			name:    v.name,
			items:   s.points(n, 11),
			queries: rows(s.points(nq, 13), dim),
		})
	}
	if path := os.Getenv("TOWERRECALL_VECTORS"); path != "" {
		items := readVectors(t, path, dim)
		out = append(out, dataset{name: "real", items: items, queries: noisyQueries(items, dim, nq, 17)})
	}
	return out
}

// readVectors reads a flat little-endian float32 file of n×dim vectors, such
// as an artifact's movie_vectors.bin.
func readVectors(t testing.TB, path string, dim int) []float32 {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("TOWERRECALL_VECTORS: %v", err)
	}
	if len(b)%(4*dim) != 0 {
		t.Fatalf("TOWERRECALL_VECTORS: %d bytes is not a multiple of %d", len(b), 4*dim)
	}
	items := make([]float32, len(b)/4)
	for i := range items {
		items[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return items
}

// noisyQueries returns nq queries, each a random item plus Gaussian noise,
// standing in for user vectors when only item vectors are at hand.
func noisyQueries(items []float32, dim, nq int, seed uint64) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 3))
	m := len(items) / dim
	qs := make([][]float32, nq)
	for i := range qs {
		src := items[rng.IntN(m)*dim:][:dim]
		q := make([]float32, dim)
		for j := range q {
			q[j] = src[j] + float32(0.3*rng.NormFloat64())
		}
		qs[i] = q
	}
	return qs
}
