package train

import (
	"math"
	"math/rand/v2"

	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/tower"
)

// synth generates MovieLens-shaped data with structure to learn: users and
// movies belong to one of k taste clusters, users mostly watch movies of
// their cluster, and movie popularity is Zipf-like. Vocabulary sizes follow
// the default model's fields (see shippedTowers).
type synth struct {
	data                   Data
	userVocab, movieVocab  []int
	userCluster, movieClus []int
}

func newSynth(users, movies, interactions int, seed uint64) *synth {
	r := rand.New(rand.NewPCG(seed, 42))
	k := min(8, movies)
	s := &synth{userVocab: []int{users + 1, 3, 8, 22, 100}, movieVocab: []int{movies + 1, 20, 20}}
	for u := range users {
		c := r.IntN(k)
		s.userCluster = append(s.userCluster, c)
		s.data.Users = append(s.data.Users, feature.Encoded{
			{int32(u + 1)}, {int32(1 + c%2)}, {int32(1 + r.IntN(7))}, {int32(1 + (c+r.IntN(3))%21)}, {int32(1 + r.IntN(99))},
		})
	}
	byCluster := make([][]int32, k)
	weights := make([]float64, movies)
	for m := range movies {
		c := m % k // every cluster has movies
		s.movieClus = append(s.movieClus, c)
		byCluster[c] = append(byCluster[c], int32(m))
		g := []int32{int32(1 + c*2)}
		if r.IntN(2) == 0 {
			g = append(g, int32(1+r.IntN(19)))
		}
		s.data.Movies = append(s.data.Movies, feature.Encoded{{int32(m + 1)}, g, {int32(1 + r.IntN(19))}})
		weights[m] = 1 / math.Pow(float64(r.IntN(movies)+1), 0.8)
	}
	// Cumulative popularity per cluster for sampling.
	cum := make([][]float64, k)
	for c, ms := range byCluster {
		acc := 0.0
		for _, m := range ms {
			acc += weights[m]
			cum[c] = append(cum[c], acc)
		}
	}
	pick := func(c int) int32 {
		x := r.Float64() * cum[c][len(cum[c])-1]
		lo, hi := 0, len(cum[c])-1
		for lo < hi {
			mid := (lo + hi) / 2
			if cum[c][mid] < x {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		return byCluster[c][lo]
	}
	for i := range interactions {
		u := r.IntN(users)
		c := s.userCluster[u]
		if r.IntN(5) == 0 {
			c = r.IntN(k) // noise
		}
		m := pick(c)
		rating := float32(2 + r.IntN(2))
		if s.movieClus[m] == s.userCluster[u] {
			rating = float32(4 + r.IntN(2))
		}
		x := Interaction{User: int32(u), Movie: m, Rating: rating}
		if i%10 == 0 {
			s.data.Valid = append(s.data.Valid, x)
		} else {
			s.data.Train = append(s.data.Train, x)
		}
	}
	return s
}

// testConfig is the softmax recipe of config.Default as train sees it, with
// no cold-start rows and no history field.
func testConfig() Config {
	return Config{Objective: Softmax, Epochs: 10, BatchSize: 1024, LearningRate: 0.005, Optimizer: Adam,
		Temperature: 0.1, LogQ: true, ColdLogQ: 1, LogQScale: 1, HistoryField: -1, Workers: 2, Seed: 1, Patience: 3}
}

// referenceConfig is the pointwise recipe of config.Reference.
func referenceConfig() Config {
	return Config{Objective: Pointwise, Epochs: 10, BatchSize: 32, LearningRate: 0.001, Optimizer: RMSprop,
		Workers: 1, Seed: 1, Patience: 3, HistoryField: -1}
}

// shippedTowers is the shape of config.Default's model (user_id gender age
// occupation zip; movie_id genres year), and referenceTowers that of
// config.Reference (user_id gender age occupation; movie_id genres).
func shippedTowers() tower.Config {
	return tower.Config{Dim: 8, Hidden: []int{64}, Normalize: true, UserEmbed: []int{32, 4, 4, 4, 8}, MovieEmbed: []int{32, 8, 4}}
}

func referenceTowers() tower.Config {
	return tower.Config{Dim: 8, Hidden: []int{32}, OutputReLU: true, RatingHead: true, UserEmbed: []int{100, 2, 2, 2}, MovieEmbed: []int{100, 2}}
}
