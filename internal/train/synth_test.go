package train

import (
	"math"
	"math/rand/v2"

	"github.com/towerrecall/towerrecall/internal/feature"
)

// synth generates MovieLens-shaped data with structure to learn: users and
// movies belong to one of k taste clusters, users mostly watch movies of
// their cluster, and movie popularity is Zipf-like. Vocabulary sizes follow
// tower.DefaultConfig's fields.
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
