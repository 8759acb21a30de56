package pipeline

import (
	"context"
	"reflect"
	"slices"
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
