package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/eval"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/train"
)

// demoConfig is the default configuration trained for epochs on one
// worker, so that a run reproduces bit for bit.
func demoConfig(epochs int) config.Config {
	cfg := config.Default()
	cfg.Train.Epochs, cfg.Train.Workers = epochs, 1
	return cfg
}

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
	if len(epochs) == 0 || len(epochs) > 4*5 { // the three recipes on the carved validation, then the refit
		t.Errorf("%d epochs reported", len(epochs))
	}
	m := b.Manifest
	if d := m.Dim; (d != cfg.Model.Dim && d != cfg.Model.Dim+1) || len(b.Movies) != len(in.Dataset.Movies) || len(b.Vectors) != len(b.Movies)*d {
		t.Fatalf("%d movies, %d vector values", len(b.Movies), len(b.Vectors))
	}
	for _, k := range []string{"recall@10", "ndcg@10", "hit@10", "recall@100", "popularity.recall@10", "cold_start.recall@10",
		"recent_popularity.recall@10", "ease.recall@10", "ease.ndcg@100"} {
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

// One worker reproduces bit for bit: the towers and the HNSW graph, on a
// catalogue large enough (over 1,024 movies) for the graph build to use
// more than one goroutine when allowed.
func TestTrainReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two models")
	}
	t.Parallel()
	ds, err := movielens.Synth(movielens.SynthOptions{Movies: 1500, Users: 200, Ratings: 6000}, 1)
	if err != nil {
		t.Fatal(err)
	}
	tr, te := movielens.TemporalSplit(ds.Ratings, 0.8)
	cfg := demoConfig(1)
	cfg.Train.Candidates = nil
	run := func() *artifact.Bundle {
		b, err := Train(context.Background(), Inputs{Dataset: ds, Train: tr, Test: te}, Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := run(), run()
	if !reflect.DeepEqual(a.Vectors, b.Vectors) {
		t.Error("two single-worker runs with one seed have different movie vectors")
	}
	if !bytes.Equal(a.Graph, b.Graph) {
		t.Error("two single-worker runs with one seed have different HNSW graphs")
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
	cfg.Train.ValidFraction, cfg.Train.ValidUserFraction = 0, 0 // all three epochs, as measured when this test was written
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

	// The new-user protocol runs on users with no train rating: here the
	// first 40 users' train ratings are left out of eval's train file (the
	// mechanics, not a quality claim: the model knows them).
	newUser := map[movielens.UserID]bool{}
	for _, u := range in.Dataset.Users[:40] {
		newUser[u.ID] = true
	}
	var tr []movielens.Rating
	for _, r := range in.Train {
		if !newUser[r.User] {
			tr = append(tr, r)
		}
	}
	rep, err := Evaluate(context.Background(), b, in.Dataset, EvalInputs{Train: tr, Test: in.Test, Baselines: Baselines{NewUserHistory: 5}}, 2)
	if err != nil {
		t.Fatal(err)
	}
	tested := map[movielens.UserID]int{}
	for _, r := range in.Test {
		if newUser[r.User] {
			tested[r.User]++
		}
	}
	want := 0 // new users with a positive besides their 5 sent movies
	for _, c := range tested {
		if c > 5 {
			want++
		}
	}
	n := rep.NewUsers
	if n == nil || n.Users != want || want < 30 || n.History != 5 {
		t.Fatalf("new users %+v", n)
	}
	if n.WithHistory["recall@10"] == n.FeaturesOnly["recall@10"] || n.Popularity["recall@10"] == 0 {
		t.Errorf("with history %v, features only %v, popularity %v", n.WithHistory["recall@10"], n.FeaturesOnly["recall@10"], n.Popularity["recall@10"])
	}
	if _, ok := rep.JSON()["new_users"]; !ok {
		t.Error("eval JSON lacks new_users")
	}

	// With a validation file, the baselines are also fitted on train and
	// valid together (what a refit model saw): exactly the baselines of the
	// same ratings given as one train file.
	cut := len(in.Train) * 9 / 10
	bc := Baselines{RecentWindow: 0.1, EASELambda: 500}
	apart, err := Evaluate(context.Background(), b, in.Dataset, EvalInputs{Train: in.Train[:cut], Valid: in.Train[cut:], Test: in.Test, Baselines: bc}, 2)
	if err != nil {
		t.Fatal(err)
	}
	together, err := Evaluate(context.Background(), b, in.Dataset, EvalInputs{Train: in.Train, Test: in.Test, Baselines: bc}, 2)
	if err != nil {
		t.Fatal(err)
	}
	tv := apart.TrainValid
	if tv == nil || together.TrainValid != nil {
		t.Fatalf("baselines on train and valid: %v with valid, %v without", tv, together.TrainValid)
	}
	if !maps.Equal(tv.Popularity, together.Popularity) || !maps.Equal(tv.RecentPopularity, together.RecentPopularity) || !maps.Equal(tv.EASE, together.EASE) {
		t.Errorf("on train and valid %+v, as one train file %+v %+v %+v", tv, together.Popularity, together.RecentPopularity, together.EASE)
	}
	if maps.Equal(apart.Popularity, together.Popularity) {
		t.Error("the train-only popularity saw the valid ratings")
	}
	if _, ok := apart.Flat()["train_valid.recent_popularity.recall@10"]; !ok {
		t.Error("the manifest's metrics lack the baselines on train and valid")
	}

	// The model's lead over each baseline is the difference of the two
	// means, with a paired standard error that is there; on train and valid
	// the same as for the same ratings given as one train file.
	for _, c := range []struct {
		name string
		base BaselineMetrics
	}{{"train", apart.BaselineMetrics}, {"train and valid", *tv}} {
		for name, m := range map[string]eval.Metrics{"popularity": c.base.Popularity, "recent_popularity": c.base.RecentPopularity, "ease": c.base.EASE} {
			lead := c.base.ModelLead[name]
			if d := apart.Model["recall@10"] - m["recall@10"]; math.Abs(lead["recall@10"]-d) > 1e-12 || !(lead["recall_se@10"] > 0) {
				t.Errorf("%s: the lead over %s is %v; the means differ by %v", c.name, name, lead, d)
			}
		}
	}
	for name := range tv.ModelLead {
		if !maps.Equal(tv.ModelLead[name], together.ModelLead[name]) {
			t.Errorf("lead over %s on train and valid %v, as one train file %v", name, tv.ModelLead[name], together.ModelLead[name])
		}
	}
	if l := n.Lead["features_only"]; math.Abs(l["recall@10"]-(n.WithHistory["recall@10"]-n.FeaturesOnly["recall@10"])) > 1e-12 || len(n.Lead) != 2 {
		t.Errorf("new users' leads %v", n.Lead)
	}
	if _, ok := apart.Flat()["train_valid.model_lead.ease.recall_se@10"]; !ok {
		t.Error("the manifest's metrics lack the leads")
	}
}

// TestSplitNewUsers: only users without train or valid ratings count, each
// with their first n test ratings by time (ties by movie id) as history, and
// only when at least one rating is left as a positive.
func TestSplitNewUsers(t *testing.T) {
	t.Parallel()
	r := func(u, m int, ts int64) movielens.Rating {
		return movielens.Rating{User: movielens.UserID(u), Movie: movielens.MovieID(m), Value: 4, Time: ts}
	}
	train := []movielens.Rating{r(1, 1, 10)}
	valid := []movielens.Rating{r(2, 1, 20)}
	test := []movielens.Rating{
		r(1, 2, 30),                           // known from train
		r(2, 2, 30),                           // known from valid
		r(3, 9, 50), r(3, 7, 40), r(3, 8, 40), // new: history 7, 8 (tie by id), positive 9
		r(4, 1, 60), r(4, 2, 61), // new, but nothing left after 2
	}
	hist, rest := splitNewUsers(train, valid, test, 2)
	if want := []movielens.Rating{r(3, 7, 40), r(3, 8, 40)}; !slices.Equal(hist, want) {
		t.Errorf("history %v, want %v", hist, want)
	}
	if want := []movielens.Rating{r(3, 9, 50)}; !slices.Equal(rest, want) {
		t.Errorf("rest %v, want %v", rest, want)
	}
}

// TestTrainRecentHistory trains with a history feature of recent movies
// (model.history_length) and checks what serving gets: each known user's
// newest movies, newest first (ties in time by movie id, higher first),
// at most history_length.
func TestTrainRecentHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	t.Parallel()
	cfg := config.Default()
	cfg.Train.Epochs = 2
	cfg.Train.ValidFraction, cfg.Train.ValidUserFraction = 0, 0
	cfg.Model.User = append(cfg.Model.User, config.Feature{Name: "history", Dim: 16})
	cfg.Model.HistoryLength = 5
	cfg.Model.HistoryDecay = 0.8
	in := demoInputs()
	b, err := Train(context.Background(), in, Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if b.Recent == nil || b.Recent.Length != 5 || b.Recent.Decay != 0.8 || len(b.Recent.Movies) != len(b.Users) {
		t.Fatalf("recent history %+v", b.Recent)
	}
	if d := b.Model.User().Embeddings[len(cfg.Model.User)-1].Decay; d != 0.8 {
		t.Errorf("the history table pools with decay %g, want 0.8", d)
	}
	ix := NewIndex(in.Dataset)
	for i, u := range b.Users {
		var mine []movielens.Rating
		for _, r := range append(slices.Clip(in.Train), in.Valid...) {
			if r.User == u {
				mine = append(mine, r)
			}
		}
		slices.SortFunc(mine, func(a, b movielens.Rating) int {
			if a.Time != b.Time {
				return int(b.Time - a.Time)
			}
			return int(b.Movie) - int(a.Movie)
		})
		var want []int32
		for _, r := range mine[:min(5, len(mine))] {
			want = append(want, ix.movies[r.Movie])
		}
		if !slices.Equal(b.Recent.Movies[i], want) {
			t.Fatalf("user %d: stored recent %v, want %v", u, b.Recent.Movies[i], want)
		}
	}
	if b.Manifest.Metrics["recall@10"] <= b.Manifest.Metrics["popularity.recall@10"] {
		t.Errorf("recall@10 %.3f does not beat popularity %.3f", b.Manifest.Metrics["recall@10"], b.Manifest.Metrics["popularity.recall@10"])
	}
	// Without the history feature nothing is stored.
	cfg.Model.User = config.Default().Model.User
	b, err = Train(context.Background(), in, Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if b.Recent != nil {
		t.Error("recent history stored for a model without the history feature")
	}
}

// TestCandidateSearch: with validation, the default trains the configured
// recipe and each candidate preset's, records every validation score, and
// ships the best one: its features, its prior, recent.json exactly when it
// pools recent movies. A spent search budget skips the candidates.
func TestCandidateSearch(t *testing.T) {
	if testing.Short() {
		t.Skip("trains models")
	}
	t.Parallel()
	cfg := config.Default()
	cfg.Train.Epochs = 2
	b, err := Train(context.Background(), demoInputs(), Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	sel := b.Manifest.Training.Selection
	want := []string{"configured", "recent-history", "random-split"}
	if len(sel.Candidates) != len(want) {
		t.Fatalf("candidates %+v, want %v", sel.Candidates, want)
	}
	best := sel.Candidates[0]
	for i, c := range sel.Candidates {
		if c.Recipe != want[i] || c.Valid <= 0 || c.Epochs < 1 || c.Epochs > 2 || c.Skipped {
			t.Errorf("candidate %d: %+v", i, c)
		}
		// The default's two carved views: each recipe's recall on each.
		if len(c.ValidViews) != 2 {
			t.Errorf("candidate %d: valid views %v, want one recall per view", i, c.ValidViews)
		}
		if c.Valid > best.Valid {
			best = c
		}
	}
	if sel.Recipe != best.Recipe {
		t.Errorf("chose %q, the best on validation is %+v", sel.Recipe, best)
	}
	user := b.Manifest.Fields.User
	if slices.Contains(user, feature.HistoryField) != (best.Recipe != "configured") ||
		slices.Contains(user, feature.UserIDField) != (best.Recipe != "random-split") || (b.Recent != nil) != (best.Recipe == "recent-history") {
		t.Errorf("chose %q but ships user fields %v, recent.json %v", best.Recipe, user, b.Recent != nil)
	}
	if p := sel.Prior; p == nil || p.Valid != best.Valid || sel.Epochs != best.Epochs {
		t.Errorf("the shipped prior %+v and epochs %d are not the chosen recipe's %+v", p, sel.Epochs, best)
	}
	// The training report plots the shipped recipe's run alone: a loss
	// and a validation point per epoch of it.
	if n, want := strings.Count(string(b.Report), "<circle"), 2*len(b.Manifest.Training.Loss); n != want {
		t.Errorf("training report has %d points, want %d (the chosen run's epochs)", n, want)
	}
	// Once training has taken the budget, no candidate starts.
	cfg.Train.SearchBudget = time.Nanosecond
	if b, err = Train(context.Background(), demoInputs(), Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow}); err != nil {
		t.Fatal(err)
	}
	sel = b.Manifest.Training.Selection
	if sel.Recipe != "configured" || len(sel.Candidates) != 3 || !sel.Candidates[1].Skipped || !sel.Candidates[2].Skipped ||
		slices.Contains(b.Manifest.Fields.User, feature.HistoryField) {
		t.Errorf("with the budget spent: recipe %q, candidates %+v", sel.Recipe, sel.Candidates)
	}
	// A configuration that sets its own recipe (here the batch size, which
	// the presets would replace) trains as configured: no search.
	cfg.Train.SearchBudget, cfg.Train.BatchSize = 0, 256
	if b, err = Train(context.Background(), demoInputs(), Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow}); err != nil {
		t.Fatal(err)
	}
	if sel = b.Manifest.Training.Selection; sel.Recipe != "" || len(sel.Candidates) != 0 {
		t.Errorf("with batch size 256: recipe %q, candidates %+v", sel.Recipe, sel.Candidates)
	}
}

// randomScoring makes random user and movie vectors (dim wide; tied: the
// movies' values are few, so that many scores are equal) and a split where
// each user has seen `seen` movies and has one test movie.
func randomScoring(rng *rand.Rand, users, movies, dim, seen int, tied bool) ([]float32, [][]float32, *eval.Split) {
	vectors := make([]float32, movies*dim)
	for i := range vectors {
		vectors[i] = float32(rng.NormFloat64())
		if tied {
			vectors[i] = float32(rng.IntN(5)-2) / 2
		}
	}
	uv := make([][]float32, users)
	var train, test []eval.Pair
	for u := range uv {
		uv[u] = make([]float32, dim)
		for j := range uv[u] {
			uv[u][j] = float32(rng.NormFloat64())
		}
		for _, m := range rng.Perm(movies)[:seen] {
			train = append(train, eval.Pair{User: int32(u), Movie: int32(m)})
		}
		test = append(test, eval.Pair{User: int32(u), Movie: int32(rng.IntN(movies))})
	}
	return vectors, uv, eval.NewSplit(users, movies, train, test)
}

// TestScorerRankMatchesScoreAll checks that Evaluate gives the same
// metrics when the Scorer ranks through its exact index as when every
// movie is scored (ties included: the vectors repeat), and that a Scorer
// whose vectors are not finite declines to rank.
func TestScorerRankMatchesScoreAll(t *testing.T) {
	t.Parallel()
	const dim = 9
	vectors, uv, sp := randomScoring(rand.New(rand.NewPCG(21, 22)), 60, 700, dim, 40, true)
	s := newScorer(dim, vectors, uv)
	got, err := eval.Evaluate(context.Background(), s, sp, []int{1, 10, 100}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if s.index.exact == nil {
		t.Fatal("no exact index for finite vectors")
	}
	want, err := eval.Evaluate(context.Background(), eval.ScorerFunc(s.ScoreAll), sp, []int{1, 10, 100}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ranked by the index: %v, want %v", got, want)
	}
	vectors[3] = float32(math.NaN())
	if _, ok := newScorer(dim, vectors, uv).Rank(nil, 0, 10, nil); ok {
		t.Error("ranked with a NaN vector")
	}
}

// BenchmarkScorerEvaluate ranks 100 users over 200,000 movies (9-d, as a
// model with the prior serves them) through the exact index ("rank") and
// by scoring every movie ("score-all"): the cost of validation and eval at
// catalogue scale.
func BenchmarkScorerEvaluate(b *testing.B) {
	const dim = 9
	vectors, uv, sp := randomScoring(rand.New(rand.NewPCG(23, 24)), 100, 200_000, dim, 50, false)
	s := newScorer(dim, vectors, uv)
	for name, sc := range map[string]eval.Scorer{"rank": s, "score-all": eval.ScorerFunc(s.ScoreAll)} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := eval.Evaluate(context.Background(), sc, sp, []int{10}, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Inputs that cannot be validated say so: held-out ratings that repeat the
// training pairs are refused, and training ratings that cannot be split by
// time train with a warning that nothing was chosen.
func TestTrainInputsThatCannotValidate(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	t.Parallel()
	in := demoInputs()
	same := in
	same.Valid = in.Train[:100]
	if _, err := Train(context.Background(), same, Options{Config: demoConfig(1), Logger: zerolog.Nop()}); err == nil ||
		!strings.Contains(err.Error(), "validation ratings repeat") {
		t.Errorf("Train with validation ratings from train: %v", err)
	}
	// One repeated pair among held-out ratings is refused too, named.
	one := in
	one.Valid = append(slices.Clone(in.Test[:50]), in.Train[7])
	if _, err := Train(context.Background(), one, Options{Config: demoConfig(1), Logger: zerolog.Nop()}); err == nil ||
		!strings.Contains(err.Error(), fmt.Sprintf("validation ratings repeat 1 of 51 (user, movie) pairs the model is fitted on, the first user %d and movie %d", in.Train[7].User, in.Train[7].Movie)) {
		t.Errorf("Train with one validation rating from train: %v", err)
	}
	at := Inputs{Dataset: in.Dataset, Train: slices.Clone(in.Train)}
	for i := range at.Train {
		at.Train[i].Time = 978300760
	}
	var logs bytes.Buffer
	cfg := demoConfig(1)
	cfg.Train.Candidates = nil
	b, err := Train(context.Background(), at, Options{Config: cfg, Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	if b.Manifest.Training.Selection.Valid != "none" || !strings.Contains(logs.String(), "no validation: the training ratings are too few to carve") {
		t.Errorf("selection %q, log:\n%s", b.Manifest.Training.Selection.Valid, logs.String())
	}
	// With validation turned off, the log says what that leaves unchosen.
	logs.Reset()
	cfg.Train.ValidFraction, cfg.Train.ValidUserFraction, cfg.Train.ValidRandomFraction = 0, 0, 0
	if _, err := Train(context.Background(), Inputs{Dataset: in.Dataset, Train: in.Train}, Options{Config: cfg, Logger: zerolog.New(&logs)}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "no validation (no validation file, and train.valid_fraction") || strings.Contains(logs.String(), "too few to carve") {
		t.Errorf("validation off, log:\n%s", logs.String())
	}
}

// Test ratings of movies a newer catalogue has and the model does not are
// not scored, and the report says how many.
func TestEvaluateCountsUnscored(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	t.Parallel()
	in := demoInputs()
	cfg := demoConfig(1)
	cfg.Train.Candidates = nil
	b, err := Train(context.Background(), in, Options{Config: cfg, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	newer := *in.Dataset
	newer.Movies = append(slices.Clone(in.Dataset.Movies), movielens.Movie{ID: 99999, Title: "Newer (2001)", Genres: []string{"Drama"}})
	test := append(slices.Clone(in.Test), movielens.Rating{User: in.Test[0].User, Movie: 99999, Value: 5, Time: in.Test[0].Time})
	r, err := Evaluate(context.Background(), b, &newer, EvalInputs{Train: in.Train, Test: test}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Unscored != 1 || r.JSON()["test_ratings_unscored"] != 1 {
		t.Errorf("unscored %d, JSON %v", r.Unscored, r.JSON()["test_ratings_unscored"])
	}
	// Only such ratings: refused, saying why ("no test users" did not).
	_, err = Evaluate(context.Background(), b, &newer, EvalInputs{Train: in.Train, Test: test[len(test)-1:]}, 1)
	if err == nil || !strings.Contains(err.Error(), "all 1 test ratings are of movies the model does not have") {
		t.Errorf("a test file of new movies only: err %v", err)
	}
}

// TestTrainSoftmaxOneRating: an in-batch softmax over ratings of one movie
// (one rating, or many) has no negatives and takes no step, so the towers
// the artifact would ship were never trained: Train refuses, naming the
// objective that does train, unless uniform negatives are drawn.
func TestTrainSoftmaxOneRating(t *testing.T) {
	t.Parallel()
	ds := movielens.Demo(1)
	one := ds.Ratings[:1]
	for _, objective := range []string{"softmax", "pointwise"} {
		cfg, err := config.Preset(objective)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Train.Epochs, cfg.Train.Workers, cfg.Train.Candidates = 1, 1, nil
		_, err = Train(context.Background(), Inputs{Dataset: ds, Train: one}, Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow})
		if objective == "pointwise" {
			if err != nil {
				t.Errorf("pointwise on one rating: %v", err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "pointwise") {
			t.Errorf("softmax on one rating: err %v, want a refusal that names pointwise", err)
		}
	}
	// With a second rating in the refit, the shipped towers train.
	cfg := demoConfig(1)
	cfg.Train.Candidates = nil
	if ds.Ratings[0].Movie == ds.Ratings[1].Movie {
		t.Fatal("the demo's first two ratings are of one movie")
	}
	if _, err := Train(context.Background(), Inputs{Dataset: ds, Train: one, Valid: ds.Ratings[1:2]}, Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow}); err != nil {
		t.Errorf("softmax on one rating and one validation rating (refit on both): %v", err)
	}
	// Many ratings of one movie are no better: the movie is no negative
	// of itself. Uniform negatives are.
	var oneMovie []movielens.Rating
	for _, r := range ds.Ratings {
		if r.Movie == ds.Ratings[0].Movie {
			oneMovie = append(oneMovie, r)
		}
	}
	if len(oneMovie) < 5 {
		t.Fatalf("%d ratings of movie %d", len(oneMovie), ds.Ratings[0].Movie)
	}
	if _, err := Train(context.Background(), Inputs{Dataset: ds, Train: oneMovie}, Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow}); err == nil || !strings.Contains(err.Error(), "ratings of 1 movie") {
		t.Errorf("softmax on %d ratings of one movie: err %v, want a refusal", len(oneMovie), err)
	}
	cfg.Train.UniformNegatives = 8
	if _, err := Train(context.Background(), Inputs{Dataset: ds, Train: oneMovie}, Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow}); err != nil {
		t.Errorf("softmax with uniform negatives on ratings of one movie: %v", err)
	}
}

// TestReportJSONNoNewUsers: a test file without new users reports the
// protocol's counts and no metric objects (they were nulls).
func TestReportJSONNoNewUsers(t *testing.T) {
	rep := Report{NewUsers: &NewUsers{History: 5}}
	b, err := json.Marshal(rep.JSON()["new_users"])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"history_movies":5,"users":0}`; got != want {
		t.Errorf("new_users = %s, want %s", got, want)
	}
}

// TestTrainWithNonUTF8Paths: data files whose paths are not UTF-8
// (ISO-8859-1 names given as --train and --valid) train and save: their
// checksums are keyed by the quoted paths. JSON wrote each as U+FFFD in
// place of its bytes, one key twice, and Save refused the manifest (Load
// refuses duplicate keys) after the whole training run.
func TestTrainWithNonUTF8Paths(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	t.Parallel()
	cfg := demoConfig(1)
	cfg.Train.Candidates, cfg.Train.PriorWeights = nil, nil
	in := demoInputs()
	in.Checksums = map[string]string{"sp/\xfe.dat": "00", "sp/\xff.dat": "11", "sp/ok.dat": "22"}
	b, err := Train(context.Background(), in, Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := artifact.Save(dir, b); err != nil {
		t.Fatal(err)
	}
	got, err := artifact.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{`"sp/\xfe.dat"`: "00", `"sp/\xff.dat"`: "11", "sp/ok.dat": "22"}
	if !maps.Equal(got.Manifest.Data.Checksums, want) {
		t.Errorf("checksums %q, want %q", got.Manifest.Data.Checksums, want)
	}
}

// A validation of movies the training ratings never have hits nothing at
// any epoch: what it "chose" (the first epoch, no prior, the first
// recipe) is a tie of zeros, and the log says so.
func TestTrainValidationHitsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	t.Parallel()
	ds := movielens.Demo(1)
	seen := map[movielens.MovieID]bool{}
	for _, m := range ds.Movies[:300] {
		seen[m.ID] = true
	}
	in := Inputs{Dataset: ds}
	for _, r := range ds.Ratings {
		if seen[r.Movie] {
			in.Train = append(in.Train, r)
		} else {
			in.Valid = append(in.Valid, r)
		}
	}
	var logs bytes.Buffer
	cfg := demoConfig(2)
	cfg.Train.Candidates = nil
	b, err := Train(context.Background(), in, Options{Config: cfg, Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	if v := b.Manifest.Training.ValidRecall10; len(v) != 2 || v[0] != 0 || v[1] != 0 {
		t.Fatalf("validation scores %v, want two zeros", v)
	}
	if !strings.Contains(logs.String(), "validation hit nothing") {
		t.Errorf("no warning that validation chose nothing; log:\n%s", logs.String())
	}
}

// TestTrainWarnsUnreadSettings: a pointwise run given softmax-only
// settings trains the model it would without them, and says so in the log
// (they used to be dropped in silence); the reference recipe as it is
// warns of nothing.
func TestTrainWarnsUnreadSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	t.Parallel()
	train := func(f func(*config.Config)) (*artifact.Bundle, string) {
		cfg := config.Reference()
		cfg.Train.Epochs = 1
		f(&cfg)
		var logs bytes.Buffer
		b, err := Train(context.Background(), demoInputs(), Options{Config: cfg, Logger: zerolog.New(&logs), Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		return b, logs.String()
	}
	const msg = "settings the objective does not read"
	plain, log := train(func(*config.Config) {})
	if strings.Contains(log, msg) {
		t.Errorf("the reference recipe warned of unread settings:\n%s", log)
	}
	set, log := train(func(c *config.Config) { c.Train.UserWeight, c.Train.LogQ = 0.5, true })
	if !strings.Contains(log, msg) || !strings.Contains(log, `"settings":["train.logq","train.user_weight"]`) {
		t.Errorf("pointwise with user_weight and logq: no warning naming them:\n%s", log)
	}
	if !slices.Equal(plain.Vectors, set.Vectors) {
		t.Error("the unread settings changed the model: they are read")
	}
}
