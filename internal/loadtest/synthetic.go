// Package loadtest holds what the latency benchmarks, the loopback load test
// and the fault tests share: an ml-1m-sized synthetic model that needs no
// data, a seeded mix of /recall requests, a vegeta attack that sums itself up
// in one line, and samplers for a server process's memory and goroutines.
// It sits beside the data flow, not in it: only tests import it, and it
// imports the packages that build a model (config and pipeline for the
// default model's shape, feature, tower, artifact).
package loadtest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/pipeline"
	"github.com/towerrecall/towerrecall/internal/tower"
)

// Catalogue sizes of MovieLens-1M: movies that have ratings, and users.
const (
	ML1MMovies = 3706
	ML1MUsers  = 6040
)

// Synthetic describes a synthetic catalogue.
type Synthetic struct {
	Movies  int    // catalogue size
	Users   int    // users with a training history
	MaxSeen int    // each user has 1..MaxSeen training movies (ml-1m: mean 165)
	Seed    uint64 // everything is drawn from this seed
	Version string // manifest version; empty: "synthetic-<seed>"
}

// ML1M is a catalogue the size of MovieLens-1M: 3,706 movies, 6,040 users,
// about 165 training movies per user.
func ML1M(seed uint64) Synthetic {
	return Synthetic{Movies: ML1MMovies, Users: ML1MUsers, MaxSeen: 330, Seed: seed}
}

// Bundle builds a servable bundle for s with the default tower
// configuration (config.Default's model, randomly initialised: serving cost does
// not depend on how well the weights are trained). The same Synthetic gives
// the same bundle.
func (s Synthetic) Bundle() (*artifact.Bundle, error) {
	if s.Movies <= 0 || s.Users <= 0 || s.MaxSeen <= 0 {
		return nil, fmt.Errorf("loadtest: synthetic catalogue %+v: sizes must be positive", s)
	}
	rng := rand.New(rand.NewPCG(s.Seed, 0x10ad7e57))
	genres := movielens.ML1MGenres()
	occs := movielens.Occupations()
	ages := []int{1, 18, 25, 35, 45, 50, 56}

	users := make([]movielens.User, s.Users)
	for i := range users {
		users[i] = movielens.User{
			ID:         movielens.UserID(i + 1),
			Gender:     []string{"F", "M"}[rng.IntN(2)],
			Age:        ages[rng.IntN(len(ages))],
			Occupation: occs[rng.IntN(len(occs))],
			Zip:        fmt.Sprintf("%05d", rng.IntN(100000)),
		}
	}
	movies := make([]movielens.Movie, s.Movies)
	for i := range movies {
		year := 1920 + rng.IntN(81)
		g := []string{genres[rng.IntN(len(genres))]}
		for rng.IntN(3) == 0 && len(g) < 4 {
			if x := genres[rng.IntN(len(genres))]; !slices.Contains(g, x) {
				g = append(g, x)
			}
		}
		movies[i] = movielens.Movie{
			ID:     movielens.MovieID(i + 1),
			Title:  fmt.Sprintf("Synthetic Movie Number %d (%d)", i+1, year),
			Year:   year,
			Genres: g,
		}
	}
	seen := make([][]int32, s.Users)
	var ratings []movielens.Rating
	for u := range users {
		n := 1 + rng.IntN(min(s.MaxSeen, s.Movies))
		picked := make(map[int32]bool, n)
		for len(picked) < n {
			picked[int32(rng.IntN(s.Movies))] = true
		}
		for m := range picked {
			seen[u] = append(seen[u], m)
		}
		slices.Sort(seen[u])
		for _, m := range seen[u] {
			ratings = append(ratings, movielens.Rating{User: users[u].ID, Movie: movies[m].ID, Value: float32(1 + rng.IntN(5))})
		}
	}
	cfg, uf, mf := pipeline.TowerConfig(config.Default().Model)
	enc, err := feature.Fit(uf, mf, users, movies, ratings)
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	model, err := tower.New(cfg, enc.VocabSizes(uf), enc.VocabSizes(mf), rand.New(rand.NewPCG(s.Seed, 0x70e4)))
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	dim := cfg.Dim
	b := &artifact.Bundle{Model: model, Encoder: enc, Seen: seen}
	b.Movies = make([]artifact.Movie, len(movies))
	b.Vectors = make([]float32, len(movies)*dim)
	for i, mv := range movies {
		b.Movies[i] = artifact.Movie{ID: mv.ID, Title: mv.Title, Genres: mv.Genres, Year: mv.Year}
		model.MovieVector(b.Vectors[i*dim:(i+1)*dim], enc.EncodeMovie(feature.FromMovie(mv)))
	}
	b.Users = make([]movielens.UserID, len(users))
	for i, u := range users {
		b.Users[i] = u.ID
	}
	version := s.Version
	if version == "" {
		version = "synthetic-" + strconv.FormatUint(s.Seed, 10)
	}
	b.Manifest = artifact.Manifest{
		Version: version, Objective: "softmax", Dim: dim, Normalized: cfg.Normalize,
		Fields: artifact.Fields{User: uf, Movie: mf},
		Sizes:  artifact.Sizes{Users: len(b.Users), Movies: len(b.Movies), Vocabs: map[string]int{}},
	}
	for f, v := range enc.Vocabs {
		b.Manifest.Sizes.Vocabs[string(f)] = v.Size()
	}
	return b, nil
}
