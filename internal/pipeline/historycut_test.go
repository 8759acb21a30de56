package pipeline

import (
	"context"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/recall"
)

// TestNewUserHistoryCutMatchesServing: with more movies sent than the
// recent history holds, and some of them unknown to the history feature
// (movies nobody rated in train), the new-user protocol must score the
// bag /score pools: the newest Length movies the feature knows, not the
// newest Length movies with the unknown ones then dropped.
func TestNewUserHistoryCutMatchesServing(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	t.Parallel()
	ds := movielens.Demo(1)
	tr, te := movielens.TemporalSplit(ds.Ratings, 0.7)
	isNew := func(r movielens.Rating) bool { return r.User%7 == 0 }
	te = append(te, slices.DeleteFunc(slices.Clone(tr), func(r movielens.Rating) bool { return !isNew(r) })...)
	tr = slices.DeleteFunc(tr, isNew)
	// Movies nobody rated in train: drop every train rating of a third of them.
	tr = slices.DeleteFunc(tr, func(r movielens.Rating) bool { return r.Movie%3 == 0 })
	cfg, err := config.Preset("recent-history")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Train.Epochs, cfg.Train.Workers, cfg.Train.Candidates = 1, 1, nil
	b, err := Train(context.Background(), Inputs{Dataset: ds, Train: tr}, Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	const L = 2
	b.Recent.Length = L // fewer than the 5 movies sent
	svc := exactService(t, b, cfg.Serve)
	ids := catalogueIDs(b)
	ix := NewIndex(ds)
	_, users, _ := newUserSplit(b.Encoder, ds, ix, tr, te, 5, L)
	recent := sentRecent(tr, te, 5)
	d := b.Manifest.Dim
	bad := 0
	for i, u := range ds.Users {
		if recent[u.ID] == nil {
			continue
		}
		q := make([]float32, d)
		b.Model.UserVector(q, users[i])
		f := feature.FromUser(u)
		f.UserID = 0
		res, err := svc.Score(context.Background(), recall.ScoreRequest{User: recall.User{UserInput: f, Recent: recent[u.ID]}, MovieIDs: ids})
		if err != nil {
			t.Fatal(err)
		}
		for j, s := range res.Scores {
			if w := ann.Dot(q, b.Vectors[j*d:(j+1)*d]); w != s.Score {
				bad++
				t.Logf("user %d sent %v: eval's bag %v, %d movies served; movie %d: eval %v, /score %v", u.ID, recent[u.ID], users[i][b.Encoder.HistoryPosition()], res.User.History, s.MovieID, w, s.Score)
				break
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d new users scored differently by eval and /score", bad)
	}
}
