package pipeline

import (
	"context"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/train"
)

func demoInputs() Inputs {
	ds := movielens.Demo(1)
	tr, te := movielens.TemporalSplit(ds.Ratings, 0.8)
	return Inputs{Dataset: ds, Train: tr, Test: te}
}

func fixedNow() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }

func TestTrainDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	t.Parallel()
	cfg := config.Default()
	cfg.Train.Epochs = 5
	var epochs []train.EpochStats
	in := demoInputs()
	b, err := Train(context.Background(), in, Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow,
		OnEpoch: func(s train.EpochStats) { epochs = append(epochs, s) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(epochs) == 0 || len(epochs) > 5 {
		t.Errorf("%d epochs reported", len(epochs))
	}
	m := b.Manifest
	if len(b.Movies) != len(in.Dataset.Movies) || len(b.Vectors) != len(b.Movies)*cfg.Model.Dim {
		t.Fatalf("%d movies, %d vector values", len(b.Movies), len(b.Vectors))
	}
	for _, k := range []string{"recall@10", "ndcg@10", "hit@10", "recall@100", "popularity.recall@10", "cold_start.recall@10"} {
		if _, ok := m.Metrics[k]; !ok {
			t.Errorf("manifest metrics lack %s", k)
		}
	}
	if m.Metrics["recall@10"] <= m.Metrics["popularity.recall@10"] {
		t.Errorf("demo model recall@10 %.3f does not beat popularity %.3f", m.Metrics["recall@10"], m.Metrics["popularity.recall@10"])
	}
	if m.Metrics["cold_start.recall@10"] <= m.Metrics["popularity.recall@10"] {
		t.Errorf("cold start recall@10 %.3f does not beat popularity %.3f", m.Metrics["cold_start.recall@10"], m.Metrics["popularity.recall@10"])
	}
	if m.Training.ExamplesPerSec <= 0 || len(b.Graph) == 0 || m.Index.Recall["recall@10"] == 0 {
		t.Errorf("training %+v, graph %d bytes, index recall %v", m.Training, len(b.Graph), m.Index.Recall)
	}
	// Every user with a training history is listed with sorted, distinct movies.
	if len(b.Users) == 0 || len(b.Users) != len(b.Seen) {
		t.Fatalf("%d users, %d histories", len(b.Users), len(b.Seen))
	}
	for i, s := range b.Seen {
		if !slices.IsSorted(s) || len(slices.Compact(slices.Clone(s))) != len(s) {
			t.Fatalf("user %d history not sorted/distinct", b.Users[i])
		}
	}
}

// One worker reproduces bit for bit.
func TestTrainReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two models")
	}
	t.Parallel()
	cfg := config.Default()
	cfg.Train.Epochs = 2
	cfg.Train.Workers = 1
	run := func() []float32 {
		b, err := Train(context.Background(), demoInputs(), Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		return b.Vectors
	}
	if a, b := run(), run(); !reflect.DeepEqual(a, b) {
		t.Error("two single-worker runs with one seed differ")
	}
}

func TestColdTwins(t *testing.T) {
	t.Parallel()
	d := train.Data{
		Users:  []feature.Encoded{{{5}, {1}}, {{6}, {2}}},
		Movies: []feature.Encoded{{{7}, {1, 2}}},
		Train:  make([]train.Interaction, 1000),
	}
	addColdTwins(&d, []feature.Field{feature.UserIDField, feature.GenderField}, []feature.Field{feature.MovieIDField, feature.GenresField}, 0.2, 1)
	if len(d.Users) != 4 || len(d.Movies) != 2 {
		t.Fatalf("%d users, %d movies after twins", len(d.Users), len(d.Movies))
	}
	if d.Users[0][0][0] != 5 || d.Users[2][0][0] != feature.OOV || d.Users[2][1][0] != 1 {
		t.Errorf("user twin = %v, original %v", d.Users[2], d.Users[0])
	}
	if d.Movies[1][0][0] != feature.OOV || !slices.Equal(d.Movies[1][1], []int32{1, 2}) {
		t.Errorf("movie twin = %v", d.Movies[1])
	}
	moved := 0
	for _, x := range d.Train {
		if x.User >= 2 {
			moved++
		}
	}
	if moved < 150 || moved > 250 {
		t.Errorf("%d of 1000 ratings moved to user twins at rate 0.2", moved)
	}
	// Without an id feature nothing changes.
	d2 := train.Data{Users: []feature.Encoded{{{1}}}, Movies: []feature.Encoded{{{1}}}, Train: make([]train.Interaction, 10)}
	addColdTwins(&d2, []feature.Field{feature.GenderField}, []feature.Field{feature.GenresField}, 0.5, 1)
	if len(d2.Users) != 1 || len(d2.Movies) != 1 {
		t.Error("twins added without an id feature")
	}
}

// TestHistoryFolds checks that no training example sees its own movie in
// its user's history bag, that a bag keeps the rest of the user's history,
// and that cold-start twins and their history stay untouched.
func TestHistoryFolds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		k     int
		twins bool
	}{{"two folds", 2, false}, {"five folds", 5, false}, {"more folds than ratings", 9, false}, {"with twins", 3, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// user 0 rated movies 0..6, user 1 rated movie 2, user 2 nothing;
			// history index of movie m is m+1; field 1 is the history bag.
			d := train.Data{Movies: make([]feature.Encoded, 7)}
			hist := [][]int32{{1, 2, 3, 4, 5, 6, 7}, {3}, {feature.OOV}}
			for u, h := range hist {
				d.Users = append(d.Users, feature.Encoded{{int32(u + 1)}, h})
			}
			for m := range 7 {
				d.Movies[m] = feature.Encoded{{int32(m + 1)}}
				d.Train = append(d.Train, train.Interaction{User: 0, Movie: int32(m)})
			}
			d.Train = append(d.Train, train.Interaction{User: 1, Movie: 2})
			histIndex := []int32{1, 2, 3, 4, 5, 6, 7}
			nu := int32(len(d.Users))
			orig := slices.Clone(d.Train)
			folds := assignFolds(d.Train, len(d.Users), tc.k, 1)
			if tc.twins {
				addColdTwins(&d, []feature.Field{feature.UserIDField, feature.HistoryField}, []feature.Field{feature.MovieIDField}, 0.4, 3)
			}
			addHistoryFolds(&d, nu, 1, folds, histIndex)
			perFold := map[int32]int{}
			for i, x := range d.Train {
				if tc.twins && x.User >= nu && x.User < 2*nu {
					if got := d.Users[x.User][1]; !reflect.DeepEqual(got, []int32{feature.OOV}) || !d.Cold[x.User] {
						t.Errorf("twin %d history %v", x.User, got)
					}
					continue
				}
				if x.User < nu {
					t.Fatalf("interaction %d still on the real user %d", i, x.User)
				}
				u := orig[i].User
				movie := histIndex[int(x.Movie)%len(histIndex)]
				bag := d.Users[x.User][1]
				if slices.Contains(bag, movie) {
					t.Errorf("interaction %d: movie in its own history bag %v", i, bag)
				}
				if d.Users[x.User][0][0] != int32(u+1) {
					t.Errorf("interaction %d: fold entity lost the user's other features", i)
				}
				// Everything the bag lacks is in the same fold of the same user.
				for _, h := range hist[u] {
					if slices.Contains(bag, h) {
						continue
					}
					found := false
					for j, y := range orig {
						if y.User == u && histIndex[y.Movie] == h && folds[j] == folds[i] {
							found = true
						}
					}
					if !found {
						t.Errorf("interaction %d: bag %v lacks %d from another fold", i, bag, h)
					}
				}
				if u == 0 {
					perFold[folds[i]]++
				}
			}
			if !tc.twins { // balanced folds: sizes differ by at most one
				lo, hi := 7, 0
				for f := range min(tc.k, 7) {
					lo, hi = min(lo, perFold[int32(f)]), max(hi, perFold[int32(f)])
				}
				if hi-lo > 1 {
					t.Errorf("fold sizes %v", perFold)
				}
			}
			// The real users keep their whole history (serving and validation use it).
			for u, h := range hist {
				if !reflect.DeepEqual(d.Users[u][1], h) {
					t.Errorf("user %d history changed to %v", u, d.Users[u][1])
				}
			}
		})
	}
}

// TestTrainHistoryFeature trains with the history feature and checks that
// the artifact evaluates and that the user vectors it evaluates with pool
// the history.
func TestTrainHistoryFeature(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	t.Parallel()
	cfg := config.Default()
	cfg.Train.Epochs = 3
	cfg.Model.User = append(cfg.Model.User, config.Feature{Name: "history", Dim: 16})
	in := demoInputs()
	b, err := Train(context.Background(), in, Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Manifest.Fields.User; got[len(got)-1] != feature.HistoryField {
		t.Fatalf("user fields %v", got)
	}
	if b.Manifest.Metrics["recall@10"] <= b.Manifest.Metrics["popularity.recall@10"] {
		t.Errorf("recall@10 %.3f does not beat popularity %.3f", b.Manifest.Metrics["recall@10"], b.Manifest.Metrics["popularity.recall@10"])
	}
	// A user's vector depends on the history: with and without it differ.
	u := in.Dataset.Users[0]
	ui := feature.FromUser(u)
	for _, r := range in.Train {
		if r.User == u.ID {
			ui.History = append(ui.History, strconv.Itoa(int(r.Movie)))
		}
	}
	with, without := make([]float32, cfg.Model.Dim), make([]float32, cfg.Model.Dim)
	b.Model.UserVector(with, b.Encoder.EncodeUser(ui))
	ui.History = nil
	b.Model.UserVector(without, b.Encoder.EncodeUser(ui))
	if slices.Equal(with, without) {
		t.Error("history does not change the user vector")
	}
}
