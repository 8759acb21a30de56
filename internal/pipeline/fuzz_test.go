package pipeline

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/movielens"
)

// tinyInputs builds a tiny valid dataset from data: the first bytes choose
// the catalogue (1–4 users, 1–6 movies, some without genres or a year) and
// the preset, then every 4 bytes are one rating (user, movie, value, time)
// of a pair not rated before, up to 40: the value byte's low bits give the
// rating 1–5 and its top three bits send one rating in eight to
// validation and one to test; the times are few (ties are common) and
// from 0 to decades apart.
func tinyInputs(data []byte) (Inputs, string) {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	nu, nm := 1+int(next()%4), 1+int(next()%6)
	presets := []string{"default", "pointwise", "recent-history", "random-split"}
	preset := presets[int(next())%len(presets)]
	genres := movielens.ML1MGenres()
	ds := &movielens.Dataset{Layout: movielens.LayoutML1M}
	occs := movielens.Occupations()
	for i := range nu {
		b := next()
		ds.Users = append(ds.Users, movielens.User{ID: movielens.UserID(i + 1), Gender: []string{"F", "M"}[b&1],
			Age: []int{1, 18, 25, 35, 45, 50, 56}[int(b>>1)%7], Occupation: occs[int(b>>4)%len(occs)], Zip: "9404" + string(rune('0'+b%10))})
	}
	for i := range nm {
		b := next()
		m := movielens.Movie{ID: movielens.MovieID(i + 1), Title: "Movie"}
		if b&1 == 1 {
			m.Year = 1990 + int(b>>1)%20
		}
		for g := range int(b>>5) % 3 { // 0–2 genres
			m.Genres = append(m.Genres, genres[(int(b>>1)+g*5)%len(genres)])
		}
		ds.Movies = append(ds.Movies, m)
	}
	var in Inputs
	in.Dataset = ds
	type pair struct{ u, m int }
	rated := map[pair]bool{}
	for len(data) >= 4 && len(ds.Ratings) < 40 {
		u, m, v, tm := int(next())%nu, int(next())%nm, next(), next()
		if rated[pair{u, m}] {
			continue
		}
		rated[pair{u, m}] = true
		r := movielens.Rating{User: ds.Users[u].ID, Movie: ds.Movies[m].ID, Value: float32(1 + int(v)%5),
			Time: []int64{0, 978300000, 978303600, 978386400, 978900000, 1700000000}[int(tm)%6]}
		ds.Ratings = append(ds.Ratings, r)
		switch v >> 5 {
		case 6:
			in.Valid = append(in.Valid, r)
		case 7:
			in.Test = append(in.Test, r)
		default:
			in.Train = append(in.Train, r)
		}
	}
	return in, preset
}

// FuzzTrainTiny trains on tiny random datasets (one epoch, one worker, no
// recipe search): Train refuses them with an error or returns an artifact
// whose vectors and metrics are finite, which saves and loads, and which
// evaluates to finite numbers.
func FuzzTrainTiny(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 3, 0})                                                     // one rating
	f.Add([]byte{3, 5, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 0, 4, 1, 1, 1, 4, 2, 2, 2, 4, 3, 3, 3}) // pointwise
	f.Add([]byte{1, 2, 2, 1, 2, 3, 4, 5, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 0xc0, 1, 1, 0, 0xe0, 2})
	f.Add([]byte{3, 5, 3, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 0, 4, 0, 1, 1, 4, 0, 2, 2, 4, 0, 3, 3, 4, 0, 4, 4, 4, 0, 5, 5, 4, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		in, preset := tinyInputs(data)
		cfg, err := config.Preset(preset)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Train.Epochs, cfg.Train.Workers, cfg.Train.Candidates = 1, 1, nil
		cfg.Serve.SelfCheckQueries = 4
		b, err := Train(context.Background(), in, Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow})
		if err != nil {
			if len(in.Train) > 0 {
				t.Logf("refused %d train, %d valid, %d test ratings (%s): %v", len(in.Train), len(in.Valid), len(in.Test), preset, err)
			}
			return
		}
		for i, v := range b.Vectors {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("vector value %d is %v", i, v)
			}
		}
		for k, v := range b.Manifest.Metrics {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("metric %s is %v", k, v)
			}
		}
		dir := filepath.Join(t.TempDir(), "model")
		if err := artifact.Save(dir, b); err != nil {
			t.Fatalf("saving the trained artifact: %v", err)
		}
		if b, err = artifact.Load(dir); err != nil {
			t.Fatalf("loading the trained artifact: %v", err)
		}
		if len(in.Test) == 0 {
			return
		}
		met, err := Evaluate(context.Background(), b, in.Dataset, EvalInputs{Train: in.Train, Valid: in.Valid, Test: in.Test, Baselines: baselines(cfg.Baselines)}, 1)
		if err != nil {
			t.Fatalf("evaluating the trained artifact: %v", err)
		}
		for k, v := range met.Flat() {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("evaluated metric %s is %v", k, v)
			}
		}
	})
}
