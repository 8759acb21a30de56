package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/eval"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
)

// EvalInputs are the ratings of one evaluation split and the baselines to
// evaluate beside the model.
type EvalInputs struct {
	Train, Valid, Test []movielens.Rating
	Baselines          Baselines
}

// Baselines says which baselines Evaluate adds to popularity; the zero
// value adds none.
type Baselines struct {
	RecentWindow float64 // recent popularity over this newest share of train's time span; 0: off
	EASELambda   float64 // EASE with this L2 weight; 0: off
	// NewUserHistory is the number of a new user's first test ratings sent
	// as their history in the new-user protocol (see NewUsers); 0: off.
	NewUserHistory int
}

// Report is the result of an evaluation: the model with its user ids, the
// same users as cold-start users (features only, id unknown), and the
// baselines (popularity, and recent popularity and EASE if asked for), all
// on the same split and protocol.
type Report struct {
	Model     eval.Metrics
	ColdStart eval.Metrics
	BaselineMetrics
	RMSE     float64 // on the 1–5 scale; 0 when the model has no rating head
	HasRMSE  bool
	NewUsers *NewUsers // nil unless asked for
	// TrainValid is the same three baselines fitted on train and valid
	// together (nil without valid ratings): the ratings a model refit on
	// the validation file saw, so a fair yardstick for it. The fields
	// above are fitted on train alone, as the issue-10 bars define them.
	TrainValid *BaselineMetrics
	// Unscored counts the test ratings of movies the model does not have
	// (a newer catalogue's): no metric counts them, hit or miss.
	Unscored int
	// NotRemoved counts the (user, movie) pairs the model was trained on
	// (its artifact's histories) that the train and valid ratings given to
	// Evaluate lack: those movies stay candidates. NotTrained counts the
	// pairs given that the model was not trained on. Both are 0 when eval
	// is given exactly the model's training ratings. Removed counts the
	// pairs removed from the candidates (train and valid).
	NotRemoved, NotTrained, Removed int
}

// BaselineMetrics are the yardsticks eval prints beside the model.
type BaselineMetrics struct {
	Popularity, RecentPopularity, EASE eval.Metrics // the last two nil unless asked for
	// EASESkipped says why EASE, asked for, was left out (a catalogue
	// larger than eval.MaxEASEMovies); "" otherwise.
	EASESkipped string
	// ModelLead is the model's Recall@10 lead over each baseline by its
	// JSON name, with the paired standard error (eval.Lead).
	ModelLead map[string]eval.Metrics
	perUser   userRecalls // each baseline's per-user Recall@10
}

// JSON is the baselines as eval prints them.
func (b BaselineMetrics) JSON() map[string]any {
	out := map[string]any{"popularity": b.Popularity}
	if b.RecentPopularity != nil {
		out["recent_popularity"] = b.RecentPopularity
	}
	if b.EASE != nil {
		out["ease"] = b.EASE
	}
	if b.EASESkipped != "" {
		out["ease_skipped"] = b.EASESkipped
	}
	if b.ModelLead != nil {
		out["model_lead"] = b.ModelLead
	}
	return out
}

// userRecalls are scorers' per-user Recall@10 on one split, by name, for leads.
type userRecalls map[string][]float64

// evaluate is eval.EvaluateUsers of s on split at the default cut-offs,
// keeping its per-user Recall@10 as name's.
func (rs userRecalls) evaluate(ctx context.Context, name string, s eval.Scorer, split *eval.Split, workers int) (m eval.Metrics, err error) {
	m, rs[name], err = eval.EvaluateUsers(ctx, s, split, eval.DefaultKs(), workers)
	return m, err
}

// leads returns a's Recall@10 lead over each of the per-user values in
// over, by name.
func leads(a []float64, over userRecalls) (map[string]eval.Metrics, error) {
	out := map[string]eval.Metrics{}
	for name, b := range over {
		m, err := eval.Lead(a, b, eval.DefaultKs()[0])
		if err != nil {
			return nil, fmt.Errorf("pipeline: evaluate: %s: %w", name, err)
		}
		out[name] = m
	}
	return out, nil
}

// NewUsers is the request-time history protocol: test users absent from
// train and valid, each with their first n test ratings (by time) sent as
// the history a client would send in user.recent_movie_ids and the rest as
// positives. The same users are also scored from their features alone and
// by popularity; the n history movies are removed from the candidates of
// all three, as /recall removes recent movies.
type NewUsers struct {
	History      int          // n
	Users        int          // new test users with more than n test ratings
	WithHistory  eval.Metrics // features and the n movies
	FeaturesOnly eval.Metrics // features alone
	Popularity   eval.Metrics
	// Lead is WithHistory's Recall@10 lead over "features_only" and
	// "popularity", with paired standard errors (eval.Lead).
	Lead map[string]eval.Metrics
}

// JSON returns the report in the eval command's output shape: model metrics
// at the top level, "rmse" when there is a rating head, and the baselines
// as nested objects with the same keys.
func (r Report) JSON() map[string]any {
	out := map[string]any{}
	for k, v := range r.Model {
		out[k] = v
	}
	if r.HasRMSE {
		out["rmse"] = r.RMSE
	}
	out["cold_start"] = r.ColdStart
	maps.Copy(out, r.BaselineMetrics.JSON())
	if r.Unscored > 0 {
		out["test_ratings_unscored"] = r.Unscored
	}
	if n := r.NewUsers; n != nil {
		nu := map[string]any{"history_movies": n.History, "users": n.Users}
		if n.Users > 0 { // without users there is nothing to measure: no metrics, rather than nulls
			nu["with_history"], nu["features_only"], nu["popularity"] = n.WithHistory, n.FeaturesOnly, n.Popularity
			nu["with_history_lead"] = n.Lead
		}
		out["new_users"] = nu
	}
	if r.TrainValid != nil {
		out["baselines_on_train_and_valid"] = r.TrainValid.JSON()
	}
	return out
}

// Flat returns every number under one level of keys, for the manifest.
func (r Report) Flat() map[string]float64 {
	out := map[string]float64{}
	add := func(prefix string, m map[string]float64) {
		for k, v := range m {
			out[prefix+k] = v
		}
	}
	add("", r.Model)
	add("popularity.", r.Popularity)
	add("cold_start.", r.ColdStart)
	add("recent_popularity.", r.RecentPopularity)
	add("ease.", r.EASE)
	for name, m := range r.ModelLead {
		add("model_lead."+name+".", m)
	}
	if r.HasRMSE {
		out["rmse"] = r.RMSE
	}
	if n := r.NewUsers; n != nil {
		add("new_users.with_history.", n.WithHistory)
		add("new_users.features_only.", n.FeaturesOnly)
		add("new_users.popularity.", n.Popularity)
		for name, m := range n.Lead {
			add("new_users.with_history_lead."+name+".", m)
		}
	}
	if tv := r.TrainValid; tv != nil {
		add("train_valid.popularity.", tv.Popularity)
		add("train_valid.recent_popularity.", tv.RecentPopularity)
		add("train_valid.ease.", tv.EASE)
		for name, m := range tv.ModelLead {
			add("train_valid.model_lead."+name+".", m)
		}
	}
	return out
}

// compareHistories counts the pairs split removes from the candidates, the
// pairs the model was trained on (b.Seen) that it does not remove, and the
// pairs it removes that the model was not trained on. b's movie indexes
// are ix's (Evaluate indexes b's catalogue).
func compareHistories(b *artifact.Bundle, ix *Index, split *eval.Split) (removed, notRemoved, notTrained int) {
	trained := make([][]int32, len(split.Exclude))
	for i, u := range b.Users {
		if du, ok := ix.users[u]; ok {
			trained[du] = b.Seen[i]
		} else {
			notRemoved += len(b.Seen[i])
		}
	}
	for du, excl := range split.Exclude {
		both := 0
		for _, m := range excl {
			if _, ok := slices.BinarySearch(trained[du], m); ok {
				both++
			}
		}
		removed += len(excl)
		notRemoved += len(trained[du]) - both
		notTrained += len(excl) - both
	}
	return removed, notRemoved, notTrained
}

// Evaluate scores b on a split, following the protocol of the shared data
// README: full ranking over the bundle's catalogue with train and valid
// movies removed, every test rating a positive. User features come from ds.
func Evaluate(ctx context.Context, b *artifact.Bundle, ds *movielens.Dataset, in EvalInputs, workers int) (Report, error) {
	if len(in.Test) == 0 {
		return Report{}, fmt.Errorf("pipeline: evaluate: no test ratings")
	}
	if err := CheckCatalogue(b, ds); err != nil {
		return Report{}, err
	}
	// Repeated validation ratings would also be counted twice by the
	// baselines fitted on train and valid.
	if err := heldOut(in.Train, in.Valid, in.Test, "of the training ratings", "of the training and validation ratings"); err != nil {
		return Report{}, err
	}
	catalog := &movielens.Dataset{Users: ds.Users, Movies: make([]movielens.Movie, len(b.Movies))}
	for i, m := range b.Movies {
		catalog.Movies[i] = movielens.Movie{ID: m.ID, Title: m.Title, Genres: m.Genres, Year: m.Year}
	}
	ix := NewIndex(catalog)
	if err := trainedOn(b, ix, in.Test); err != nil {
		return Report{}, err
	}
	split := ix.Split(in.Train, in.Valid, in.Test)
	var r Report
	r.Removed, r.NotRemoved, r.NotTrained = compareHistories(b, ix, split)
	users, cold := evalUsers(b, ds, ix, append(slices.Clip(in.Train), in.Valid...))
	d := b.Manifest.Dim
	scorer := newScorer(d, b.Vectors, userVectors(b, users))
	for _, t := range in.Test {
		if _, ok := ix.movies[t.Movie]; !ok {
			r.Unscored++
		}
	}
	if r.Unscored > 0 && r.Unscored == len(in.Test) {
		return r, fmt.Errorf("pipeline: all %d test ratings are of movies the model does not have (a newer catalogue's): nothing to evaluate", r.Unscored)
	}
	var model []float64 // each user's Recall@10, for the leads
	var err error
	if r.Model, model, err = eval.EvaluateUsers(ctx, scorer, split, eval.DefaultKs(), workers); err != nil {
		return r, err
	}
	coldScorer := scorer.withUsers(userVectors(b, cold))
	if r.ColdStart, err = eval.Evaluate(ctx, coldScorer, split, eval.DefaultKs(), workers); err != nil {
		return r, err
	}
	base, pop, err := fitBaselines(ctx, len(b.Movies), ix, in.Train, split, in.Baselines, workers)
	if err != nil {
		return r, err
	}
	if base.ModelLead, err = leads(model, base.perUser); err != nil {
		return r, err
	}
	r.BaselineMetrics = base
	if len(in.Valid) > 0 {
		tv, _, err := fitBaselines(ctx, len(b.Movies), ix, append(slices.Clip(in.Train), in.Valid...), split, in.Baselines, workers)
		if err != nil {
			return r, err
		}
		if tv.ModelLead, err = leads(model, tv.perUser); err != nil {
			return r, err
		}
		r.TrainValid = &tv
	}
	if n := in.Baselines.NewUserHistory; n > 0 {
		if r.NewUsers, err = evaluateNewUsers(ctx, b, ds, ix, in, n, pop, scorer, workers); err != nil {
			return r, err
		}
	}
	if b.Model.HasRatingHead() {
		var test []eval.Triple
		for _, t := range in.Test {
			u, ok1 := ix.users[t.User]
			m, ok2 := ix.movies[t.Movie]
			if ok1 && ok2 {
				test = append(test, eval.Triple{User: u, Movie: m, Rating: t.Value})
			}
		}
		r.RMSE = eval.RMSE(func(u, m int32) float32 {
			return b.Model.Rating(scorer.users[u], b.Vectors[int(m)*d:(int(m)+1)*d])
		}, test)
		r.HasRMSE = true
	}
	return r, nil
}

// evalUsers encodes every user of ds as Evaluate scores them: with their
// features and the history of the ratings known before the test (train
// and valid), or the newest of them — what serving sees — and as cold
// users (no id, no history).
func evalUsers(b *artifact.Bundle, ds *movielens.Dataset, ix *Index, known []movielens.Rating) (users, cold []feature.Encoded) {
	users = make([]feature.Encoded, len(ds.Users))
	cold = make([]feature.Encoded, len(ds.Users))
	hist := servedHistories(ix, known, historyLength(b))
	for i, u := range ds.Users {
		in := feature.FromUser(u)
		in.History = hist[u.ID]
		users[i] = b.Encoder.EncodeUser(in)
		in.UserID, in.History = 0, nil
		cold[i] = b.Encoder.EncodeUser(in)
	}
	return users, cold
}

// fitBaselines fits popularity, recent popularity and EASE (the last two as
// bc asks) on fit and scores them on split; pop is the popularity scorer,
// which also stands in for users without a history.
func fitBaselines(ctx context.Context, movies int, ix *Index, fit []movielens.Rating, split *eval.Split, bc Baselines, workers int) (out BaselineMetrics, pop eval.Scorer, err error) {
	pairs, times := ix.pairsAndTimes(fit)
	out.perUser = userRecalls{}
	score := func(name string, s eval.Scorer) (eval.Metrics, error) {
		return out.perUser.evaluate(ctx, name, s, split, workers)
	}
	pop = eval.Popularity(movies, pairs)
	if out.Popularity, err = score("popularity", pop); err != nil {
		return out, nil, err
	}
	if w := bc.RecentWindow; w > 0 {
		s, err := eval.RecentPopularity(movies, pairs, times, w)
		if err != nil {
			return out, nil, err
		}
		if out.RecentPopularity, err = score("recent_popularity", s); err != nil {
			return out, nil, err
		}
	}
	if l := bc.EASELambda; l > 0 {
		// A user is scored from their train and valid movies (what is
		// removed from the candidates), popularity for a user without any.
		e, err := eval.FitEASE(ctx, movies, pairs, l)
		if tl, ok := errors.AsType[*eval.TooLargeError](err); ok {
			out.EASESkipped = tl.Error()
		} else if err != nil {
			return out, nil, err
		} else if out.EASE, err = score("ease", e.Scorer(split.Exclude, pop)); err != nil {
			return out, nil, err
		}
	}
	return out, pop, nil
}

// servedHistories is recentHistories in the order serving pools the bag
// (recall's userVector): the newest n movies newest first, or, for n ≤ 0,
// every movie in ix's order, which is the bundle's catalogue order. The
// mean of a whole history does not depend on its order, but its float32
// sum does: in rating order, eval's queries were not /score's to the bit.
func servedHistories(ix *Index, rs []movielens.Rating, n int) map[movielens.UserID][]string {
	if n > 0 {
		return recentHistories(rs, n)
	}
	at := func(r movielens.Rating) int {
		if m, ok := ix.movies[r.Movie]; ok {
			return int(m)
		}
		return math.MaxInt // not in the catalogue: never pooled
	}
	rs = slices.Clone(rs)
	slices.SortStableFunc(rs, func(a, b movielens.Rating) int { return cmp.Compare(at(a), at(b)) })
	return histories(rs)
}

// historyLength is the number of newest movies b's history feature pools,
// 0 for all of a user's movies.
func historyLength(b *artifact.Bundle) int {
	if b.Recent == nil {
		return 0
	}
	return b.Recent.Length
}

func userVectors(b *artifact.Bundle, enc []feature.Encoded) [][]float32 {
	out := make([][]float32, len(enc))
	for i, e := range enc {
		out[i] = make([]float32, b.Manifest.Dim)
		b.Model.UserVector(out[i], e)
	}
	return out
}

// evaluateNewUsers runs the new-user protocol (see NewUsers).
func evaluateNewUsers(ctx context.Context, b *artifact.Bundle, ds *movielens.Dataset, ix *Index, in EvalInputs, n int, pop eval.Scorer, model *Scorer, workers int) (*NewUsers, error) {
	split, with, users := newUserSplit(b.Encoder, ds, ix, slices.Concat(in.Train, in.Valid), in.Test, n, historyLength(b))
	out := &NewUsers{History: n, Users: users}
	if users == 0 {
		return out, nil
	}
	alone := make([]feature.Encoded, len(ds.Users))
	for i, u := range ds.Users {
		f := feature.FromUser(u)
		f.UserID = 0 // new users: their ids are unknown to the model
		alone[i] = b.Encoder.EncodeUser(f)
	}
	var withPer []float64 // each user's Recall@10, for the leads
	var err error
	if out.WithHistory, withPer, err = eval.EvaluateUsers(ctx, model.withUsers(userVectors(b, with)), split, eval.DefaultKs(), workers); err != nil {
		return nil, err
	}
	per := userRecalls{}
	if out.FeaturesOnly, err = per.evaluate(ctx, "features_only", model.withUsers(userVectors(b, alone)), split, workers); err != nil {
		return nil, err
	}
	if out.Popularity, err = per.evaluate(ctx, "popularity", pop, split, workers); err != nil {
		return nil, err
	}
	if out.Lead, err = leads(withPer, per); err != nil {
		return nil, err
	}
	return out, nil
}

// newUserSplit is the new-user protocol on test: the users of test absent
// from known with more than n ratings in it, their first n by time sent as
// recent movies (newest first; with histLen > 0 the newest histLen the
// history feature knows, as serving pools them; their ids unknown to the
// model), the rest their positives, with known and the sent movies
// excluded. users holds every user of ds encoded so (only the protocol's
// users have positives); count is how many there are.
func newUserSplit(enc *feature.Encoder, ds *movielens.Dataset, ix *Index, known, test []movielens.Rating, n, histLen int) (split *eval.Split, users []feature.Encoded, count int) {
	history, rest := splitNewUsers(known, nil, test, n)
	hist := servedHistories(ix, history, 0)
	if histLen > 0 {
		// Serving pools the newest histLen sent movies the history
		// feature knows: cut after leaving out the ones it does not.
		hist = recentHistories(history, n)
		for u, h := range hist {
			h = slices.DeleteFunc(h, func(id string) bool { return enc.HistoryIndexes(nil, []string{id})[0] == feature.OOV })
			hist[u] = h[:min(len(h), histLen)]
		}
	}
	split = ix.Split(slices.Concat(known, history), nil, rest)
	users = make([]feature.Encoded, len(ds.Users))
	for i, u := range ds.Users {
		f := feature.FromUser(u)
		f.UserID = 0
		f.History = hist[u.ID]
		users[i] = enc.EncodeUser(f)
	}
	return split, users, len(hist)
}

// splitNewUsers returns, for the test users without a train or valid
// rating and more than n test ratings, their first n test ratings by time
// (ties by movie id) and the rest.
func splitNewUsers(train, valid, test []movielens.Rating, n int) (history, rest []movielens.Rating) {
	seen := map[movielens.UserID]bool{}
	for _, r := range train {
		seen[r.User] = true
	}
	for _, r := range valid {
		seen[r.User] = true
	}
	by := map[movielens.UserID][]movielens.Rating{}
	for _, r := range test {
		if !seen[r.User] {
			by[r.User] = append(by[r.User], r)
		}
	}
	users := slices.Sorted(maps.Keys(by))
	for _, u := range users {
		rs := by[u]
		if len(rs) <= n {
			continue
		}
		slices.SortStableFunc(rs, func(a, b movielens.Rating) int {
			return cmp.Or(cmp.Compare(a.Time, b.Time), cmp.Compare(a.Movie, b.Movie))
		})
		history = append(history, rs[:n]...)
		rest = append(rest, rs[n:]...)
	}
	return history, rest
}

// CheckCatalogue reports whether ds is the catalogue b was trained on (or a
// later one): each of b's movies must be in ds under the same title. Movie
// ids alone overlap between MovieLens releases (ml-100k's movie 1 is
// ml-1m's movie 1 by chance), so scoring or counting one release's
// ratings with another's model would be silently wrong.
func CheckCatalogue(b *artifact.Bundle, ds *movielens.Dataset) error {
	const show = 3
	var errs []error
	bad := 0
	for _, m := range b.Movies {
		var err error
		if i, ok := ds.MovieIndex(m.ID); !ok {
			err = fmt.Errorf("movie %d (%q) is not in the data", m.ID, m.Title)
		} else if t := ds.Movies[i].Title; t != m.Title {
			err = fmt.Errorf("movie %d is %q in the model, %q in the data", m.ID, m.Title, t)
		}
		if err != nil {
			bad++
			if len(errs) < show {
				errs = append(errs, err)
			}
		}
	}
	if bad == 0 {
		return nil
	}
	return fmt.Errorf("pipeline: the data is not the catalogue the model was trained on (%d of its %d movies differ): %w", bad, len(b.Movies), errors.Join(errs...))
}
