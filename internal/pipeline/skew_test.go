package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/catalog"
	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/recall"
)

// TestEvaluateMatchesServing: for every user of the data, the query eval
// scores (Evaluate's encoding: the stored features and every rating known
// before the test, or the newest of them) is, to the bit, the one /score
// serves for the user's id alone; and a new user of the new-user protocol
// scores as one sending the same movies as recent_movie_ids. Each recipe
// is trained with a validation file, so the prior and its groups are
// chosen as in a real run.
func TestEvaluateMatchesServing(t *testing.T) {
	if testing.Short() {
		t.Skip("trains models")
	}
	t.Parallel()
	ds := movielens.Demo(1)
	tr, rest := movielens.TemporalSplit(ds.Ratings, 0.7)
	va, te := movielens.TemporalSplit(rest, 0.5)
	// Every seventh user is new: all their ratings are test ratings.
	isNew := func(r movielens.Rating) bool { return r.User%7 == 0 }
	for _, rs := range [][]movielens.Rating{tr, va} {
		te = append(te, slices.DeleteFunc(slices.Clone(rs), func(r movielens.Rating) bool { return !isNew(r) })...)
	}
	tr, va = slices.DeleteFunc(tr, isNew), slices.DeleteFunc(va, isNew)
	for _, name := range []string{"configured", "recent-history", "random-split", "recent-history no refit"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			if name != "configured" {
				var err error
				if cfg, err = config.Preset(strings.TrimSuffix(name, " no refit")); err != nil {
					t.Fatal(err)
				}
			}
			cfg.Train.Epochs, cfg.Train.Workers, cfg.Train.Candidates = 2, 1, nil
			// Without the refit, users and movies of valid alone are
			// outside the towers' vocabularies but in the served histories.
			cfg.Train.Refit = !strings.HasSuffix(name, " no refit")
			cfg.Train.PriorFeatureShares = []float64{0.5}
			b, err := Train(context.Background(), Inputs{Dataset: ds, Train: tr, Valid: va}, Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow})
			if err != nil {
				t.Fatal(err)
			}
			if p := b.Prior; p != nil {
				t.Logf("prior weights %g / %g / %g, feature share %g, recent history %v", p.Weight, p.ColdWeight, p.RecentWeight, p.FeatureShare, b.Recent != nil)
			}
			svc := exactService(t, b, cfg.Serve)
			ids := catalogueIDs(b)
			d := b.Manifest.Dim
			check := func(what string, want []float32, u recall.User) {
				t.Helper()
				res, err := svc.Score(context.Background(), recall.ScoreRequest{User: u, MovieIDs: ids})
				if err != nil {
					t.Fatal(err)
				}
				for i, s := range res.Scores {
					if w := ann.Dot(want, b.Vectors[i*d:(i+1)*d]); s.Score != w {
						t.Fatalf("%s: movie %d: /score %v, eval %v", what, s.MovieID, s.Score, w)
					}
				}
			}
			// Evaluate's queries (its index is over the bundle's
			// catalogue, which here is the data's).
			ix := NewIndex(ds)
			users, cold := evalUsers(b, ds, ix, slices.Concat(tr, va))
			for i, u := range ds.Users {
				q := make([]float32, d)
				b.Model.UserVector(q, users[i])
				check(fmt.Sprintf("user %d", u.ID), q, recall.User{UserInput: feature.UserInput{UserID: u.ID}})
				b.Model.UserVector(q, cold[i])
				f := feature.FromUser(u)
				f.UserID = 0
				check(fmt.Sprintf("user %d cold", u.ID), q, recall.User{UserInput: f})
			}
			// The new-user protocol's queries: test users absent from
			// train and valid, their first 5 test ratings sent.
			_, users, n := newUserSplit(b.Encoder, ds, ix, slices.Concat(tr, va), te, 5, historyLength(b))
			if n == 0 {
				t.Fatal("no new users")
			}
			recent := sentRecent(slices.Concat(tr, va), te, 5)
			for i, u := range ds.Users {
				if recent[u.ID] == nil {
					continue
				}
				q := make([]float32, d)
				b.Model.UserVector(q, users[i])
				f := feature.FromUser(u)
				f.UserID = 0
				check("new user", q, recall.User{UserInput: f, Recent: recent[u.ID]})
			}
		})
	}
}

// exactService serves b from the exact index.
func exactService(t *testing.T, b *artifact.Bundle, s config.Serve) *recall.Service {
	t.Helper()
	svc, err := recall.New(recall.Options{Index: "exact", SelfCheckQueries: 1, HNSW: HNSWParams(s)}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Load(b); err != nil {
		t.Fatal(err)
	}
	return svc
}

// catalogueIDs is b's movie ids in catalogue order.
func catalogueIDs(b *artifact.Bundle) []movielens.MovieID {
	ids := make([]movielens.MovieID, len(b.Movies))
	for i, m := range b.Movies {
		ids[i] = m.ID
	}
	return ids
}

// sentRecent is what each new user of the new-user protocol sends as
// recent_movie_ids: their first n test ratings, newest first.
func sentRecent(known, test []movielens.Rating, n int) map[movielens.UserID][]movielens.MovieID {
	sent, _ := splitNewUsers(known, nil, test, n)
	recent := map[movielens.UserID][]movielens.MovieID{}
	for _, r := range sent { // oldest first
		recent[r.User] = slices.Insert(recent[r.User], 0, r.Movie)
	}
	return recent
}

// seqJournal is an in-memory recall.Journal.
type seqJournal struct{ n uint64 }

func (j *seqJournal) Write(e catalog.Entry) (catalog.Entry, error) {
	j.n++
	e.Seq = j.n
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	return e, nil
}
func (j *seqJournal) Sync(uint64) error { return nil }
func (j *seqJournal) Err() error        { return nil }

// TestPutKeepsTrainedPopularity: a movie tower with the popularity
// feature, trained on train alone (no refit) and served with the ratings
// of train and valid: a trained movie PUT again with the same metadata
// must keep the vector training exported for it, so its score does not
// move.
func TestPutKeepsTrainedPopularity(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	t.Parallel()
	ds := movielens.Demo(1)
	tr, va := movielens.TemporalSplit(ds.Ratings, 0.7)
	cfg := config.Default()
	cfg.Train.Epochs, cfg.Train.Workers, cfg.Train.Candidates, cfg.Train.Refit = 1, 1, nil, false
	cfg.Model.Movie = append(cfg.Model.Movie, config.Feature{Name: "popularity", Dim: 4})
	b, err := Train(context.Background(), Inputs{Dataset: ds, Train: tr, Valid: va}, Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(b.Encoder.MovieFields, feature.PopularityField) {
		t.Fatal("no popularity feature")
	}
	svc, err := recall.New(recall.Options{Index: "exact", SelfCheckQueries: 1, HNSW: HNSWParams(cfg.Serve)}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Load(b); err != nil {
		t.Fatal(err)
	}
	svc.AttachJournal(&seqJournal{}, nil)
	ctx := context.Background()
	moved := 0
	for _, mv := range b.Movies[:50] {
		req := recall.ScoreRequest{User: recall.User{UserInput: feature.UserInput{UserID: ds.Users[0].ID}}, MovieIDs: []movielens.MovieID{mv.ID}}
		before, err := svc.Score(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.PutMovie(ctx, recall.Movie{MovieID: mv.ID, Title: mv.Title, Genres: mv.Genres, Year: mv.Year}); err != nil {
			t.Fatal(err)
		}
		after, err := svc.Score(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if after.Scores[0].Score != before.Scores[0].Score {
			moved++
			t.Logf("movie %d: PUT again with the same metadata moved its score from %v to %v", mv.ID, before.Scores[0].Score, after.Scores[0].Score)
		}
	}
	if moved > 0 {
		t.Errorf("%d of 50 movies PUT again moved their score", moved)
	}
}
