// Package pipeline runs the training job end to end: MovieLens ratings →
// feature vocabularies → two towers → training → movie vectors → HNSW graph
// → evaluation → an artifact bundle. It also evaluates a saved bundle on
// split files. It sits just below cmd, which only parses flags and calls it.
package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/eval"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/report"
	"github.com/towerrecall/towerrecall/internal/tower"
	"github.com/towerrecall/towerrecall/internal/train"
)

// Inputs is what a training job reads.
type Inputs struct {
	Dataset   *movielens.Dataset
	Train     []movielens.Rating // required
	Valid     []movielens.Rating // optional: chooses the epochs, prior and recipe, then trains the refit (train.refit); removed from candidates at test
	Test      []movielens.Rating // optional: metrics written into the manifest
	DataDir   string
	Checksums map[string]string // input file → sha256
}

// Options configure a training job.
type Options struct {
	Config  config.Config
	Logger  zerolog.Logger
	OnBatch func(done, total int)  // progress, may be nil
	OnEpoch func(train.EpochStats) // may be nil
	Now     func() time.Time
}

// Train runs the job and returns the bundle, ready for artifact.Save. Its
// steps, in order: pick the validation ratings (the valid file, else the
// views carved from train: selectionInputs), encode the ratings, build the
// training examples (the recipe of train.Recipe), train the towers with
// early stopping on validation, choose the popularity prior on validation
// — for the configured recipe and, with validation, each of
// train.candidates, keeping the best (searchRecipes) — refit on train and
// the validation ratings (train.refit), export the movie vectors (with the
// prior's dimension), build the HNSW graph and check it against an exact
// scan, write the manifest, and evaluate on the test ratings if any (they
// choose nothing).
func Train(ctx context.Context, in Inputs, opts Options) (*artifact.Bundle, error) {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if in.Dataset == nil || len(in.Train) == 0 {
		return nil, errors.New("pipeline: no training ratings")
	}
	if unread := cfg.UnreadSettings(); len(unread) > 0 {
		opts.Logger.Warn().Strs("settings", unread).Str("objective", cfg.Train.Objective).
			Msg("settings the objective does not read: they have no effect (they are the softmax objective's)")
	}
	if err := heldOut(in.Train, in.Valid, in.Test, "the model is fitted on", "the model is fitted on"); err != nil {
		return nil, err
	}
	// The test ratings are scored at the end and choose nothing: no step
	// before can read them.
	test := in.Test
	in.Test = nil
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	ix := NewIndex(in.Dataset)
	fitIn, views, sel := selectionInputs(in, cfg.Train)
	if n := shippedMovies(fitIn, len(views) > 0 && cfg.Train.Refit); cfg.Train.Objective == train.Softmax && cfg.Train.UniformNegatives == 0 && n < 2 {
		return nil, fmt.Errorf("pipeline: the softmax objective trains on ratings of %d movie: an in-batch softmax needs two or more movies (a rated movie is no negative of itself, so the towers would never train); give more training ratings, set train.uniform_negatives, or use --objective pointwise", n)
	}
	logValidation(opts.Logger, cfg.Train, len(in.Train), fitIn, sel)
	val, err := newValidation(ctx, ix, fitIn.Train, views, cfg.Train.Workers)
	if err != nil {
		return nil, err
	}
	if val != nil && len(val.popularity) > 1 {
		sel.ViewPopularity = val.popularity
		msg := "validation views: settings maximise valid_score, the mean of each view's Recall@10 / its popularity Recall@10"
		if !val.relative() {
			msg = "validation views, popularity hits nothing in one: settings maximise the mean of the views' Recall@10"
		}
		opts.Logger.Info().Floats64("popularity_recall@10", val.popularity).Msg(msg)
	}
	rc := newCandidate("configured", cfg)
	fitted, err := fitAndChoosePrior(ctx, in, fitIn, ix, rc, val, opts)
	if err != nil {
		return nil, err
	}
	search := val != nil && len(cfg.Train.Candidates) > 0
	if changed := cfg.RecipeChanges(); search && len(changed) > 0 {
		// The candidates' presets would replace these settings.
		opts.Logger.Warn().Strs("settings", changed).Strs("candidates", cfg.Train.Candidates).
			Msg("no recipe search: these settings differ from the default recipe (set by the configuration or by the preset it starts from), and a candidate would replace them; train.candidates: [] says so without this warning")
		search = false
	}
	if search {
		if rc, fitted, err = searchRecipes(ctx, in, fitIn, ix, rc, fitted, val, opts, &sel); err != nil {
			return nil, err
		}
	}
	cfg = rc.cfg
	if cfg.Train.Distill > 0 && !canTeach(in) {
		cfg.Train.Distill = 0 // it trained without a teacher (logged): the manifest says so
	}
	warnIfWeak(opts.Logger, val, fitted, len(fitIn.Valid), cfg.Train.Objective)
	sel.Epochs = fitted.res.BestEpoch
	if fitted.searched {
		prior := fitted.prior
		sel.Prior, sel.PriorSearch = &prior, fitted.all
	}
	if refits(val, cfg.Train) {
		if fitted, err = refit(ctx, in, ix, rc, cfg.Train, &sel, fitted, opts); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil { // the graph build below does not stop
		return nil, err
	}
	b, err := bundleOf(cfg, in, ix, rc, fitted, &sel, now().UTC(), opts)
	if err != nil {
		return nil, err
	}
	if len(test) > 0 {
		met, err := Evaluate(ctx, b, in.Dataset, EvalInputs{Train: in.Train, Valid: in.Valid, Test: test, Baselines: baselines(cfg.Baselines)}, cfg.Train.Workers)
		if err != nil {
			return nil, err
		}
		b.Manifest.Metrics = met.Flat()
	}
	return b, nil
}

// logValidation says where validation comes from when no file gives it:
// views carved from train (which kind), or none at all.
func logValidation(log zerolog.Logger, t config.Train, trainRatings int, fitIn Inputs, sel artifact.Selection) {
	switch {
	case sel.Valid == "carved":
		log.Info().Int("train", len(fitIn.Train)).Int("valid", len(fitIn.Valid)).Float64("valid_fraction", sel.ValidFraction).
			Int("valid_user_ratings", sel.ValidUserRatings).Float64("valid_user_fraction", sel.ValidUserFraction).
			Int("valid_random_ratings", sel.ValidRandomRatings).Float64("valid_random_fraction", sel.ValidRandomFraction).
			Msg("no validation file: views carved from train validate")
		if sel.TimeViewsOnly() {
			log.Info().Msg("the carved views are by time, so settings are chosen for the future; " +
				"for a random split, give its validation file or the random-split preset (docs/model.md, \"Random splits without a validation file\")")
		}
	case sel.Valid == "none" && t.ValidFraction+t.ValidUserFraction+t.ValidRandomFraction > 0:
		log.Warn().Int("train", trainRatings).
			Msg("no validation: the training ratings are too few to carve a validation view from (or all at one time), so the epoch count, the prior and the recipe are not chosen")
	case sel.Valid == "none":
		log.Info().Msg("no validation (no validation file, and train.valid_fraction, valid_user_fraction and valid_random_fraction are 0): every epoch is trained, and no prior or recipe is chosen")
	}
}

// warnIfWeak warns when validation chose nothing (it hit nothing at any
// epoch) or chose a model no better than popularity on it.
func warnIfWeak(log zerolog.Logger, val *validation, f fitted, validRatings int, objective string) {
	if val == nil {
		return
	}
	if f.score == 0 && !slices.ContainsFunc(f.res.Epochs, func(e train.EpochStats) bool { return e.Valid != 0 }) {
		// Every choice was a tie of zeros: the first epoch, no prior.
		log.Warn().Int("valid", validRatings).Int("epochs", f.res.BestEpoch).
			Msg("validation hit nothing at any epoch (are its movies absent from the training ratings?): the epoch count, the prior and the recipe were not chosen, only the first of equal zeros kept")
		return
	}
	pop := val.popularityScore()
	if f.score > pop || !slices.ContainsFunc(val.popularity, func(p float64) bool { return p < 1 }) {
		return // above popularity, or level with a popularity nothing can beat
	}
	// E.g. a learning rate that makes training diverge: the run
	// completes, and its model is no better than counting ratings.
	msg := "the chosen model does not beat popularity on validation: check train.learning_rate and the other train settings (a diverging run ends with a model as good as random)"
	if objective == train.Pointwise {
		// The reference recipe ranks by a rating regression, which
		// recall by popularity often beats: no setting is at fault.
		msg = "the chosen model does not beat popularity on validation: the pointwise (reference) objective fits ratings, not what users watch next, and the default softmax objective ranks for recall; with settings changed from the reference recipe's, check train.learning_rate too"
	}
	log.Warn().Float64("valid_score", f.score).Float64("popularity_valid_score", pop).Msg(msg)
}

// bundleOf is the artifact of the fitted recipe rc (as cfg, the settings
// it trained with): the served towers and movie vectors, the HNSW graph
// checked against an exact scan, and the manifest with the selection that
// chose them.
func bundleOf(cfg config.Config, in Inputs, ix *Index, rc candidate, f fitted, sel *artifact.Selection, now time.Time, opts Options) (*artifact.Bundle, error) {
	b := servedBundle(in, ix, rc, f, opts)
	hp := HNSWParams(cfg.Serve) // the graph's parameters, as the manifest records them
	build := hp
	if cfg.Train.Workers == 1 {
		build.BuildWorkers = 1 // the graph too, so the whole artifact reproduces (else every core builds it)
	}
	indexRecall, err := buildIndex(b, build, servedQueries(b, in.Dataset.Users, cfg.Serve.SelfCheckQueries))
	if err != nil {
		return nil, err
	}
	b.Manifest = manifest(cfg, in, b, f.res, hp, indexRecall, now)
	b.Manifest.Training.Selection = sel
	return b, nil
}

// refit trains the chosen recipe rc again on train and the ratings
// validation held out (carved from train, or the validation file): they
// are the newest, which the towers would otherwise never see. It trains
// for the epochs validation chose (sel.Epochs) on the selection run's
// schedule, records the run in sel, and returns f with the new towers (its
// res, the selection run's, gains the refit's time).
func refit(ctx context.Context, in Inputs, ix *Index, rc candidate, t config.Train, sel *artifact.Selection, f fitted, opts Options) (fitted, error) {
	refitIn := in
	refitIn.Train, refitIn.Valid = slices.Concat(in.Train, in.Valid), nil
	opts.Logger.Info().Int("epochs", sel.Epochs).Int("ratings", len(refitIn.Train)).Msg("refit on the training and validation ratings")
	t.Epochs, t.PlanEpochs = sel.Epochs, t.Epochs // the selection run's schedule
	var run train.Result
	var err error
	if f.enc, f.data, f.model, run, err = trainTowers(ctx, refitIn, ix, rc.towers, rc.user, rc.movie, rc.hist, t, nil, opts); err != nil {
		return f, err
	}
	sel.Refit, sel.RefitRatings, sel.RefitExamplesPerSec = true, len(refitIn.Train), run.ExamplesPerSec
	for _, e := range run.Epochs {
		sel.RefitLoss = append(sel.RefitLoss, e.Loss)
	}
	f.res.Seconds += run.Seconds
	return f, nil
}

// servedBundle is what serving needs of the towers of f: movie vectors,
// every known user's history (and recent movies, with the feature), the
// popularity prior when validation chose one, stored profiles and the
// training report; the caller adds the index and the manifest.
func servedBundle(in Inputs, ix *Index, rc candidate, f fitted, opts Options) *artifact.Bundle {
	b := &artifact.Bundle{Model: f.model, Encoder: f.enc}
	// The report plots the shipped recipe's selection run (the refit, if
	// any, has no validation to show).
	var err error
	if b.Report, err = report.TrainingSVG(f.res.Epochs); err != nil {
		opts.Logger.Warn().Err(err).Msg("training report not written")
	}
	b.Movies, b.Vectors = movieVectors(f.model, in.Dataset.Movies, f.data.Movies)
	known := append(slices.Clip(in.Train), in.Valid...) // every rating known when the model is served
	b.Users, b.Seen = ix.History(known)
	if hs := rc.hist; hs.length > 0 && slices.Contains(rc.user, feature.HistoryField) {
		b.Recent = &artifact.Recent{Length: hs.length, Decay: hs.decay, Movies: ix.Recent(b.Users, known, hs.length)}
	}
	if p := f.prior; p.Weight > 0 || p.ColdWeight > 0 || p.RecentWeight > 0 || p.FeatureShare > 0 {
		applyPrior(b, ix, known, p, f.idFields, f.recentFields)
	}
	b.Profiles = profiles(in.Dataset.Users)
	return b
}

// heldOut refuses validation ratings that repeat a (user, movie) pair of
// train, and test ratings that repeat one of train or validation (ofValid
// and ofTest say which, in the error): such a pair is scored on what the
// model saw. All of them (the same file passed twice, or the wrong one)
// make every held-out score meaningless; a few make validation optimistic
// and, in evaluation, a positive that was removed from the candidates.
func heldOut(train, valid, test []movielens.Rating, ofValid, ofTest string) error {
	if len(valid) == 0 && len(test) == 0 {
		return nil
	}
	type pair struct {
		u movielens.UserID
		m movielens.MovieID
	}
	seen := make(map[pair]bool, len(train)+len(valid))
	add := func(rs []movielens.Rating) {
		for _, r := range rs {
			seen[pair{r.User, r.Movie}] = true
		}
	}
	check := func(what, of string, held []movielens.Rating) error {
		var shared []movielens.Rating
		for _, r := range held {
			if seen[pair{r.User, r.Movie}] {
				shared = append(shared, r)
			}
		}
		return repeated(what, of, shared, len(held))
	}
	add(train)
	if err := check("the validation ratings", ofValid, valid); err != nil {
		return err
	}
	add(valid)
	return check("the test ratings", ofTest, test)
}

// trainedOn refuses test ratings the model was trained on, by the
// histories its artifact keeps (whatever train file eval is given); ix
// indexes b's movies.
func trainedOn(b *artifact.Bundle, ix *Index, test []movielens.Rating) error {
	users := make(map[movielens.UserID]int, len(b.Users))
	for i, u := range b.Users {
		users[u] = i
	}
	var shared []movielens.Rating
	for _, r := range test {
		ui, uok := users[r.User]
		mi, mok := ix.movies[r.Movie]
		if !uok || !mok {
			continue
		}
		if _, found := slices.BinarySearch(b.Seen[ui], mi); found {
			shared = append(shared, r)
		}
	}
	return repeated("the test ratings", "the model was trained on (its artifact's histories)", shared, len(test))
}

// repeated is the error for held-out ratings that repeat pairs (nil for
// none): how many, and the first.
func repeated(what, of string, shared []movielens.Rating, n int) error {
	if len(shared) == 0 {
		return nil
	}
	return fmt.Errorf("pipeline: %s repeat %d of %d (user, movie) pairs %s, the first user %d and movie %d: held-out ratings must be others (is the same file given twice, or --train left out, so that every rating of --data trains?)",
		what, len(shared), n, of, shared[0].User, shared[0].Movie)
}

// gridWithZero returns a grid to try (prior weights, feature shares): 0
// first, then the positive values of ws, each once.
func gridWithZero(ws []float64) []float64 {
	out := []float64{0}
	for _, w := range ws {
		if w > 0 && !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

// shippedMovies counts the distinct movies the shipped towers train on
// (the fit's training ratings, with refit also its validation ratings),
// up to 2: the softmax check needs no more, and stops at the second.
func shippedMovies(fit Inputs, refit bool) int {
	sets := [][]movielens.Rating{fit.Train}
	if refit {
		sets = append(sets, fit.Valid)
	}
	n, first := 0, movielens.MovieID(0)
	for _, rs := range sets {
		for _, r := range rs {
			switch {
			case n == 0:
				n, first = 1, r.Movie
			case r.Movie != first:
				return 2
			}
		}
	}
	return n
}

// selectionInputs returns the inputs the towers are fitted and selected
// on, the validation views (their Valid is all views together), and how
// they were validated: in itself with its validation file as the one view
// when it has one, else the views carved from its training ratings, each
// taken from what the previous ones left: the newest ValidFraction on one
// timeline (movielens.TimelineSplit: the global future, where new users
// and what is popular now matter), each user's newest ValidUserFraction
// (movielens.UserTimelineSplit: known users' next ratings, each at their
// own time) and ValidRandomFraction drawn at random (movielens.RandomSplit:
// ratings missing at random, as a random split asks about; off by
// default). No view (every fraction 0, or too few ratings) validates
// nothing. A test file is never among them.
//
// A validation file is used alone: it says what the held-out data looks
// like (the global future on the timeline splits, random per-user ratings
// on recbole's), and carving a second view from train would take more
// ratings from the selection fit.
func selectionInputs(in Inputs, t config.Train) (Inputs, [][]movielens.Rating, artifact.Selection) {
	if len(in.Valid) > 0 {
		return in, [][]movielens.Rating{in.Valid}, artifact.Selection{Valid: "file", ValidRatings: len(in.Valid)}
	}
	rest := in.Train
	var views [][]movielens.Rating
	sel := artifact.Selection{Valid: "carved"}
	carve := func(kept, view []movielens.Rating) bool {
		if len(view) == 0 || len(kept) == 0 {
			return false
		}
		rest, views = kept, append(views, view)
		sel.ValidRatings += len(view)
		return true
	}
	if t.ValidFraction > 0 {
		if older, newer := movielens.TimelineSplit(rest, t.ValidFraction); carve(older, newer) {
			sel.ValidFraction, sel.ValidFrom = t.ValidFraction, newer[0].Time
			for _, r := range newer {
				sel.ValidFrom = min(sel.ValidFrom, r.Time)
			}
		}
	}
	if t.ValidUserFraction > 0 {
		if kept, mine := movielens.UserTimelineSplit(rest, t.ValidUserFraction); carve(kept, mine) {
			sel.ValidUserFraction, sel.ValidUserRatings = t.ValidUserFraction, len(mine)
		}
	}
	if t.ValidRandomFraction > 0 {
		if kept, drawn := movielens.RandomSplit(rest, t.ValidRandomFraction, t.Seed); carve(kept, drawn) {
			sel.ValidRandomFraction, sel.ValidRandomRatings = t.ValidRandomFraction, len(drawn)
		}
	}
	if len(views) == 0 {
		return in, nil, artifact.Selection{Valid: "none"}
	}
	out := in
	out.Train, out.Valid = rest, slices.Concat(views...)
	return out, views, sel
}

// validation is what the epoch count and the prior are chosen on: one
// split per view (a view's positives are its ratings; the fitting ratings
// and the other views' are excluded) and each view's popularity Recall@10
// (counted on the fitting ratings).
type validation struct {
	splits     []*eval.Split
	popularity []float64
	fitTrain   []movielens.Rating   // what the towers are fitted on
	views      [][]movielens.Rating // the ratings of each split
}

// newValidation builds the validation of views for towers fitted on
// fitTrain, nil without views.
func newValidation(ctx context.Context, ix *Index, fitTrain []movielens.Rating, views [][]movielens.Rating, workers int) (*validation, error) {
	if len(views) == 0 {
		return nil, nil
	}
	v := &validation{fitTrain: fitTrain, views: views}
	pop := eval.Popularity(len(ix.ds.Movies), ix.pairs(fitTrain))
	for i, view := range views {
		var others []movielens.Rating
		for j, o := range views {
			if j != i {
				others = append(others, o...)
			}
		}
		sp := ix.Split(fitTrain, others, view)
		v.splits = append(v.splits, sp)
		met, err := eval.Evaluate(ctx, pop, sp, []int{10}, workers)
		if err != nil {
			return nil, err
		}
		v.popularity = append(v.popularity, met["recall@10"])
	}
	return v, nil
}

// popularityScore is popularity's objective on v (1 when relative; 0
// without validation): a model at or below it learnt nothing popularity
// does not know.
func (v *validation) popularityScore() float64 {
	if v == nil {
		return 0
	}
	total := 0.0
	for i, p := range v.popularity {
		total += p / v.norm(i)
	}
	return total
}

// norm is what view i's Recall@10 is divided by in the objective: 1 with
// one view, else the number of views × the view's popularity Recall@10,
// so the objective is the mean of the views' gains over popularity and
// no view wins by being easier. If popularity hits nothing in a view (a
// tiny dataset), there is no gain to measure: the plain mean of the views'
// Recall@10.
func (v *validation) norm(i int) float64 {
	if !v.relative() {
		return float64(len(v.splits))
	}
	return float64(len(v.splits)) * v.popularity[i]
}

// relative reports whether the objective measures each view against its
// popularity Recall@10 (two views, popularity hits something in each).
func (v *validation) relative() bool {
	return len(v.splits) > 1 && !slices.Contains(v.popularity, 0)
}

// score is s's objective on v: Σ_i Recall@10_i / norm(i).
func (v *validation) score(ctx context.Context, s eval.Scorer, workers int) (float64, error) {
	total := 0.0
	for i, sp := range v.splits {
		met, err := eval.Evaluate(ctx, s, sp, []int{10}, workers)
		if err != nil {
			return 0, err
		}
		total += met["recall@10"] / v.norm(i)
	}
	return total, nil
}

// fitted is one set of towers fitted on the selection inputs, with the
// prior chosen for it on validation.
type fitted struct {
	enc      *feature.Encoder
	data     train.Data
	model    *tower.Model
	res      train.Result
	prior    PriorChoice
	all      []PriorChoice
	searched bool  // the prior was searched
	idFields []int // the user fields that make a user known to the model
	// recentFields: the history field of towers with an id and a history,
	// whose users known only by their recent movies get their own weight
	// (and no feature share)
	recentFields []int
	score        float64
}

// fitAndChoosePrior trains the towers on fitIn (early stopping on val)
// and chooses the popularity prior on val. Its score is the validation
// objective of the towers with that prior (of the best epoch without a
// prior search; 0 without validation).
func fitAndChoosePrior(ctx context.Context, in, fitIn Inputs, ix *Index, rc candidate, val *validation, opts Options) (fitted, error) {
	var f fitted
	var err error
	cfg, userFields, hs := rc.cfg, rc.user, rc.hist
	if f.enc, f.data, f.model, f.res, err = trainTowers(ctx, fitIn, ix, rc.towers, userFields, rc.movie, hs, cfg.Train, val, opts); err != nil {
		return f, err
	}
	for i, fl := range userFields {
		if fl == feature.UserIDField || fl == feature.HistoryField {
			f.idFields = append(f.idFields, i)
		}
	}
	if e := f.res.BestEpoch; e > 0 && e <= len(f.res.Epochs) && f.res.Epochs[e-1].HasValid {
		f.score = f.res.Epochs[e-1].Valid
	}
	// Known users' feature share: only towers with an id have users to
	// mix (tower.Prior.Group).
	shares := []float64{0}
	if slices.Contains(userFields, feature.UserIDField) {
		shares = gridWithZero(cfg.Train.PriorFeatureShares)
	}
	if weights := gridWithZero(cfg.Train.PriorWeights); val != nil && (len(weights) > 1 || len(shares) > 1) {
		halfLives := cfg.Train.PriorHalfLives
		if len(halfLives) == 0 {
			halfLives = []float64{0}
		}
		var recent []recentView
		if h := slices.Index(userFields, feature.HistoryField); h >= 0 && slices.Contains(userFields, feature.UserIDField) {
			// A user known only by the history (a new user sending recent
			// movies) is a group apart, whether or not validation has such
			// users to choose its weight: selection measures the known
			// users' feature share on users with an id, so only they are
			// mixed (tower.Prior.Group).
			f.recentFields = []int{h}
			if n := cfg.Baselines.NewUserHistory; n > 0 && hs.length > 0 {
				recent = newUserViews(f.enc, in.Dataset, ix, val, n, hs.length)
			}
		}
		start := time.Now()
		if f.prior, f.all, err = choosePrior(ctx, f.model, f.data.Users[:len(in.Dataset.Users)], f.data.Movies[:len(in.Dataset.Movies)], f.idFields, val, recent, ix, fitIn.Train,
			halfLives, weights, shares, cfg.Train.Workers); err != nil {
			return f, err
		}
		f.searched, f.score = true, f.prior.Valid
		opts.Logger.Info().Float64("half_life_days", f.prior.HalfLifeDays).Float64("weight", f.prior.Weight).Float64("cold_weight", f.prior.ColdWeight).
			Float64("feature_share", f.prior.FeatureShare).Float64("recent_weight", f.prior.RecentWeight).Int("recent_users", f.prior.RecentUsers).
			Float64("valid_score", f.prior.Valid).Int("tried", len(f.all)).Float64("seconds", time.Since(start).Seconds()).Msg("popularity prior chosen on validation")
	}
	if refits(val, cfg.Train) {
		// The shipped towers will be trained again: these are done with
		// once chosen, and at catalogue scale they are most of the heap
		// (vocabularies, encoded data, weights) while the next recipe or
		// the refit trains.
		f.enc, f.data, f.model = nil, train.Data{}, nil
	}
	return f, nil
}

// refits reports whether the towers chosen on val are trained again on
// the training and validation ratings (config.Train.Refit).
func refits(val *validation, t config.Train) bool { return val != nil && t.Refit }

// candidate is a recipe validation may choose: the towers, their features and
// the training settings of one configuration.
type candidate struct {
	name        string // "configured", or the preset's of train.candidates
	cfg         config.Config
	towers      tower.Config
	user, movie []feature.Field
	hist        historySpec
}

func newCandidate(name string, cfg config.Config) candidate {
	towers, user, movie := TowerConfig(cfg.Model)
	return candidate{name: name, cfg: cfg, towers: towers, user: user, movie: movie,
		hist: historySpec{length: cfg.Model.HistoryLength, decay: float32(cfg.Model.HistoryDecay)}}
}

// searchRecipes trains the recipes of train.candidates beside the
// configured one (rc, already fitted as f) and returns whichever scores
// highest on validation, each with its own epoch count and prior; a tie
// keeps the earlier. A candidate starts only while the run has spent less
// than train.search_budget on training. sel records every recipe's score.
func searchRecipes(ctx context.Context, in, fitIn Inputs, ix *Index, rc candidate, f fitted, val *validation, opts Options, sel *artifact.Selection) (candidate, fitted, error) {
	t := rc.cfg.Train
	spent := f.res.Seconds
	sel.Candidates = []artifact.CandidateChoice{{Recipe: rc.name, Valid: f.score, Epochs: f.res.BestEpoch, Seconds: f.res.Seconds, ValidViews: f.prior.ValidViews}}
	best, bestF := rc, f
	for _, name := range t.Candidates {
		if t.SearchBudget > 0 && spent >= t.SearchBudget.Seconds() {
			opts.Logger.Warn().Str("recipe", name).Float64("spent_s", spent).Dur("search_budget_ms", t.SearchBudget).Msg("search budget spent: candidate skipped")
			sel.Candidates = append(sel.Candidates, artifact.CandidateChoice{Recipe: name, Skipped: true})
			continue
		}
		cfg, err := rc.cfg.Candidate(name)
		if err != nil {
			return rc, f, err
		}
		c := newCandidate(name, cfg)
		opts.Logger.Info().Str("recipe", name).Msg("training a candidate recipe")
		cf, err := fitAndChoosePrior(ctx, in, fitIn, ix, c, val, opts)
		if err != nil {
			return rc, f, err
		}
		spent += cf.res.Seconds
		sel.Candidates = append(sel.Candidates, artifact.CandidateChoice{Recipe: name, Valid: cf.score, Epochs: cf.res.BestEpoch, Seconds: cf.res.Seconds, ValidViews: cf.prior.ValidViews})
		if cf.score > bestF.score {
			best, bestF = c, cf
		}
	}
	bestF.res.Seconds = spent // every recipe counts in the run's time
	sel.Recipe = best.name
	opts.Logger.Info().Str("recipe", best.name).Interface("candidates", sel.Candidates).Msg("recipe chosen on validation")
	return best, bestF, nil
}

// historySpec is the shape of the history feature: the newest length
// movies (0: all), pooled with recency weight decay (0: the mean).
type historySpec struct {
	length int
	decay  float32
}

// trainTowers encodes in, builds the training examples and fits the towers
// (early stopping on val, if any).
// hs shapes the history feature, if userFields has it.
func trainTowers(ctx context.Context, in Inputs, ix *Index, towers tower.Config, userFields, movieFields []feature.Field, hs historySpec, t config.Train, val *validation, opts Options) (*feature.Encoder, train.Data, *tower.Model, train.Result, error) {
	enc, data, err := encode(in, ix, userFields, movieFields, hs.length)
	if err != nil {
		return nil, data, nil, train.Result{}, err
	}
	historyField := slices.Index(userFields, feature.HistoryField)
	if err := buildExamples(&data, in, enc, historyField, hs.length, t); err != nil {
		return nil, data, nil, train.Result{}, err
	}
	if historyField < 0 || hs.length == 0 {
		hs.decay = 0 // a recency weight needs a bag ordered newest first
	}
	tc := trainConfig(t, historyField)
	start := time.Now()
	if tc.Distill > 0 {
		if err := addTeacher(ctx, &data, ix, in, t.DistillLambda, opts.Logger); err != nil {
			return nil, data, nil, train.Result{}, err
		}
		if data.Teacher == nil {
			tc.Distill = 0
		}
	}
	teacher := time.Since(start).Seconds()
	model, res, err := fit(ctx, in, enc, data, towers, historyField, hs.decay, tc, val, opts)
	if err != nil {
		return nil, data, nil, train.Result{}, err
	}
	res.Seconds += teacher // the search budget counts the teacher's fit too
	data.Teacher = nil     // only training reads it
	return enc, data, model, res, nil
}

// encode fits the vocabularies on the training ratings and encodes every
// user (with their training history: all of it, or the newest
// historyLength movies) and movie (with its rating count), and the train
// and valid ratings as interactions.
func encode(in Inputs, ix *Index, userFields, movieFields []feature.Field, historyLength int) (*feature.Encoder, train.Data, error) {
	ds := in.Dataset
	enc, err := feature.Fit(userFields, movieFields, ds.Users, ds.Movies, in.Train)
	if err != nil {
		return nil, train.Data{}, err
	}
	data := train.Data{Users: make([]feature.Encoded, len(ds.Users)), Movies: make([]feature.Encoded, len(ds.Movies))}
	hist := recentHistories(in.Train, historyLength)
	for i, u := range ds.Users {
		ui := feature.FromUser(u)
		ui.History = hist[u.ID]
		data.Users[i] = enc.EncodeUser(ui)
	}
	counts := make(map[movielens.MovieID]int)
	for _, r := range in.Train {
		counts[r.Movie]++
	}
	for i, m := range ds.Movies {
		mi := feature.FromMovie(m)
		mi.Ratings = counts[m.ID]
		data.Movies[i] = enc.EncodeMovie(mi)
	}
	if data.Train, err = ix.Interactions(in.Train); err != nil {
		return nil, train.Data{}, fmt.Errorf("pipeline: train ratings: %w", err)
	}
	if data.Valid, err = ix.Interactions(in.Valid); err != nil {
		return nil, train.Data{}, fmt.Errorf("pipeline: valid ratings: %w", err)
	}
	return enc, data, nil
}

// buildExamples applies the training recipe to data: it gives the recipe
// the ratings' times and, with the history feature (historyField ≥ 0),
// each movie's index in the history vocabulary and the history length.
func buildExamples(data *train.Data, in Inputs, enc *feature.Encoder, historyField, historyLength int, t config.Train) error {
	times := make([]int64, len(in.Train))
	for i, r := range in.Train {
		times[i] = r.Time
	}
	fl := train.Fields{User: enc.UserFields, Movie: enc.MovieFields}
	if historyField >= 0 {
		fl.HistoryIndex = make([]int32, len(in.Dataset.Movies))
		for i, m := range in.Dataset.Movies {
			fl.HistoryIndex[i] = enc.HistoryIndexes(nil, []string{strconv.Itoa(int(m.ID))})[0]
		}
	}
	r := recipe(t)
	r.HistoryLength = historyLength
	if err := r.Apply(data, times, fl); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	return nil
}

// fit builds the towers and trains them on data, logging every epoch and,
// with a validation, stopping early on its objective (Recall@10 with one
// view).
func fit(ctx context.Context, in Inputs, enc *feature.Encoder, data train.Data, towers tower.Config, historyField int, decay float32, tc train.Config, val *validation, opts Options) (*tower.Model, train.Result, error) {
	rng := rand.New(rand.NewPCG(tc.Seed, 0x70fe5))
	model, err := tower.New(towers, enc.VocabSizes(enc.UserFields), enc.VocabSizes(enc.MovieFields), rng)
	if err != nil {
		return nil, train.Result{}, err
	}
	if decay > 0 {
		model.SetUserPoolDecay(historyField, decay)
	}
	hooks := train.Hooks{OnBatch: opts.OnBatch}
	hooks.OnEpoch = func(s train.EpochStats) {
		ev := opts.Logger.Info().Int("epoch", s.Epoch).Float64("loss", s.Loss).
			Float64("examples_per_s", s.ExamplesPerSec).Float64("seconds", s.Seconds)
		if s.HasValid {
			ev = ev.Float64("valid_score", s.Valid) // Recall@10 with one validation view
		}
		ev.Msg("epoch")
		if opts.OnEpoch != nil {
			opts.OnEpoch(s)
		}
	}
	if val != nil {
		// the recipe's twins and fold copies are not evaluated
		realUsers, realMovies := data.Users[:len(in.Dataset.Users)], data.Movies[:len(in.Dataset.Movies)]
		hooks.Validate = func(m *tower.Model) (float64, error) {
			return val.score(ctx, NewScorer(m, realUsers, realMovies), tc.Workers)
		}
	}
	res, err := train.Run(ctx, model, data, tc, hooks)
	if err != nil {
		return nil, train.Result{}, err
	}
	return model, res, nil
}

// movieVectors returns the catalogue and its movie vectors, row i for
// movies[i] (encoded as encoded[i]).
func movieVectors(model *tower.Model, movies []movielens.Movie, encoded []feature.Encoded) ([]artifact.Movie, []float32) {
	dim := model.Dim()
	out := make([]artifact.Movie, len(movies))
	vectors := make([]float32, len(movies)*dim)
	for i, m := range movies {
		out[i] = artifact.Movie{ID: m.ID, Title: m.Title, Genres: m.Genres, Year: m.Year}
		model.MovieVector(vectors[i*dim:(i+1)*dim], encoded[i])
	}
	return out, vectors
}

// servedQueries returns the user vectors of up to n of users, spread over
// them, as the service computes them: the user's features and, for a user
// the artifact knows, the stored history its tower pools (the newest
// Recent.Length movies, newest first, or every training movie).
func servedQueries(b *artifact.Bundle, users []movielens.User, n int) [][]float32 {
	known := make(map[movielens.UserID]int, len(b.Users))
	for i, u := range b.Users {
		known[u] = i
	}
	queries := make([][]float32, 0, n)
	for i := 0; i < len(users) && len(queries) < n; i += max(1, len(users)/max(n, 1)) {
		in := feature.FromUser(users[i])
		if ui, ok := known[users[i].ID]; ok {
			ms := b.Seen[ui]
			if b.Recent != nil {
				ms = b.Recent.Movies[ui]
			}
			for _, m := range ms {
				in.History = append(in.History, strconv.Itoa(int(b.Movies[m].ID)))
			}
		}
		q := make([]float32, b.Model.Dim())
		b.Model.UserVector(q, b.Encoder.EncodeUser(in))
		queries = append(queries, q)
	}
	return queries
}

// buildIndex builds the HNSW graph of b's vectors into b.Graph and returns
// its recall@10 and @100 against an exact scan on queries. The graph is
// built once here and shipped inside the artifact, so that replicas start
// without rebuilding it.
func buildIndex(b *artifact.Bundle, hp ann.HNSWParams, queries [][]float32) (map[int]float64, error) {
	dim := b.Model.Dim()
	h, err := ann.NewHNSW(b.Vectors, dim, hp)
	if err != nil {
		return nil, fmt.Errorf("pipeline: HNSW: %w", err)
	}
	var graph bytes.Buffer
	if err := h.Export(&graph); err != nil {
		return nil, fmt.Errorf("pipeline: export HNSW: %w", err)
	}
	b.Graph = graph.Bytes()
	exact, err := ann.NewExact(b.Vectors, dim)
	if err != nil {
		return nil, err
	}
	recall, err := ann.SelfCheck(h, exact, queries, []int{10, 100})
	if err != nil {
		return nil, fmt.Errorf("pipeline: HNSW self-check: %w", err)
	}
	return recall, nil
}

// manifest describes the bundle b trained by cfg on in: the run, the data,
// the vocabularies and the index (metrics are added by evaluation).
func manifest(cfg config.Config, in Inputs, b *artifact.Bundle, res train.Result, hp ann.HNSWParams, indexRecall map[int]float64, now time.Time) artifact.Manifest {
	rawCfg, _ := cfg.ModelJSON() // a Config always encodes
	hpj, _ := json.Marshal(hp)
	m := artifact.Manifest{
		Version:    now.Format("20060102T150405Z") + "-" + strconv.FormatUint(cfg.Train.Seed, 10),
		CreatedAt:  now,
		Objective:  cfg.Train.Objective,
		Dim:        b.Model.Dim(),
		Normalized: cfg.Model.Normalize && b.Prior == nil,
		Config:     rawCfg,
		Data: artifact.DataInfo{Dir: in.DataDir, Layout: string(in.Dataset.Layout), Checksums: quotedPaths(in.Checksums),
			Train: len(in.Train), Valid: len(in.Valid)},
		Sizes:  artifact.Sizes{Users: len(b.Users), Movies: len(b.Movies), Vocabs: map[string]int{}},
		Fields: artifact.Fields{User: b.Encoder.UserFields, Movie: b.Encoder.MovieFields},
		Training: artifact.Training{
			Epochs: len(res.Epochs), BestEpoch: res.BestEpoch, Seconds: res.Seconds,
			ExamplesPerSec: res.ExamplesPerSec, Workers: cfg.Train.Workers, Seed: cfg.Train.Seed,
		},
		Index: artifact.IndexInfo{HNSW: hpj, Recall: map[string]float64{}},
	}
	for k, r := range indexRecall {
		m.Index.Recall["recall@"+strconv.Itoa(k)] = r
	}
	for f, v := range b.Encoder.Vocabs {
		m.Sizes.Vocabs[string(f)] = v.Size()
	}
	for _, e := range res.Epochs {
		m.Training.Loss = append(m.Training.Loss, e.Loss)
		if e.HasValid {
			m.Training.ValidRecall10 = append(m.Training.ValidRecall10, e.Valid)
		}
	}
	return m
}

// histories returns each user's rated movie ids (as the history feature
// takes them), in rating order.
func histories(rs []movielens.Rating) map[movielens.UserID][]string {
	out := map[movielens.UserID][]string{}
	for _, r := range rs {
		out[r.User] = append(out[r.User], strconv.Itoa(int(r.Movie)))
	}
	return out
}

// recentHistories is histories with, for n > 0, only each user's newest n
// movies, newest first (ties in time by movie id, higher first, as the
// recipe's causal bags order them).
func recentHistories(rs []movielens.Rating, n int) map[movielens.UserID][]string {
	if n <= 0 {
		return histories(rs)
	}
	out := map[movielens.UserID][]string{}
	for u, ms := range newest(rs, n) {
		for _, r := range ms {
			out[u] = append(out[u], strconv.Itoa(int(r.Movie)))
		}
	}
	return out
}

// newest returns each user's newest n ratings of rs, newest first (ties in
// time by movie id, higher first).
func newest(rs []movielens.Rating, n int) map[movielens.UserID][]movielens.Rating {
	by := map[movielens.UserID][]movielens.Rating{}
	for _, r := range rs {
		by[r.User] = append(by[r.User], r)
	}
	for u, ms := range by {
		slices.SortFunc(ms, func(a, b movielens.Rating) int {
			return cmp.Or(cmp.Compare(b.Time, a.Time), cmp.Compare(b.Movie, a.Movie))
		})
		by[u] = ms[:min(n, len(ms))]
	}
	return by
}

// Index maps external ids to the dense indexes of a dataset's users and
// movies (their position in Dataset.Users / Dataset.Movies).
type Index struct {
	users  map[movielens.UserID]int32
	movies map[movielens.MovieID]int32
	ds     *movielens.Dataset
}

// NewIndex indexes ds.
func NewIndex(ds *movielens.Dataset) *Index {
	ix := &Index{users: make(map[movielens.UserID]int32, len(ds.Users)), movies: make(map[movielens.MovieID]int32, len(ds.Movies)), ds: ds}
	for i, u := range ds.Users {
		ix.users[u.ID] = int32(i)
	}
	for i, m := range ds.Movies {
		ix.movies[m.ID] = int32(i)
	}
	return ix
}

// Interactions converts ratings to dense indexes; an unknown id is an error.
func (ix *Index) Interactions(rs []movielens.Rating) ([]train.Interaction, error) {
	out := make([]train.Interaction, 0, len(rs))
	for i, r := range rs {
		u, ok := ix.users[r.User]
		if !ok {
			return nil, fmt.Errorf("rating %d: unknown user %d", i+1, r.User)
		}
		m, ok := ix.movies[r.Movie]
		if !ok {
			return nil, fmt.Errorf("rating %d: unknown movie %d", i+1, r.Movie)
		}
		out = append(out, train.Interaction{User: u, Movie: m, Rating: r.Value})
	}
	return out, nil
}

// pairsAndTimes is pairs with the time of each kept rating.
func (ix *Index) pairsAndTimes(rs []movielens.Rating) ([]eval.Pair, []int64) {
	out := make([]eval.Pair, 0, len(rs))
	times := make([]int64, 0, len(rs))
	for _, r := range rs {
		u, ok1 := ix.users[r.User]
		m, ok2 := ix.movies[r.Movie]
		if ok1 && ok2 {
			out = append(out, eval.Pair{User: u, Movie: m})
			times = append(times, r.Time)
		}
	}
	return out, times
}

func (ix *Index) pairs(rs []movielens.Rating) []eval.Pair {
	out := make([]eval.Pair, 0, len(rs))
	for _, r := range rs {
		u, ok1 := ix.users[r.User]
		m, ok2 := ix.movies[r.Movie]
		if ok1 && ok2 {
			out = append(out, eval.Pair{User: u, Movie: m})
		}
	}
	return out
}

// Split builds the evaluation split: train and valid are excluded, test
// ratings are the positives.
func (ix *Index) Split(trainR, validR, testR []movielens.Rating) *eval.Split {
	excl := append(ix.pairs(trainR), ix.pairs(validR)...)
	return eval.NewSplit(len(ix.ds.Users), len(ix.ds.Movies), excl, ix.pairs(testR))
}

// History returns the users with ratings in rs, sorted by id, and each one's
// sorted distinct movie indexes.
func (ix *Index) History(rs []movielens.Rating) ([]movielens.UserID, [][]int32) {
	by := map[movielens.UserID]map[int32]bool{}
	for _, r := range rs {
		m, ok := ix.movies[r.Movie]
		if !ok {
			continue
		}
		if by[r.User] == nil {
			by[r.User] = map[int32]bool{}
		}
		by[r.User][m] = true
	}
	ids := make([]movielens.UserID, 0, len(by))
	for u := range by {
		ids = append(ids, u)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	seen := make([][]int32, len(ids))
	for i, u := range ids {
		for m := range by[u] {
			seen[i] = append(seen[i], m)
		}
		slices.Sort(seen[i])
	}
	return ids, seen
}

// Recent returns, for each of users, the movie indexes of their newest n
// ratings in rs, newest first (see newest); ratings of unknown movies are
// skipped.
func (ix *Index) Recent(users []movielens.UserID, rs []movielens.Rating, n int) [][]int32 {
	var known []movielens.Rating
	for _, r := range rs {
		if _, ok := ix.movies[r.Movie]; ok {
			known = append(known, r)
		}
	}
	by := newest(known, n)
	out := make([][]int32, len(users))
	for i, u := range users {
		out[i] = []int32{}
		for _, r := range by[u] {
			out[i] = append(out[i], ix.movies[r.Movie])
		}
	}
	return out
}

// Scorer scores every movie for a user with the towers, by inner product,
// and ranks them through an exact index (eval.Ranker), which scans a large
// catalogue several times faster than scoring each movie apart. Its
// movies must be exactly the evaluated split's, in index order.
type Scorer struct {
	dim     int
	users   [][]float32
	vectors []float32
	index   *rankIndex // shared by withUsers; built by the first Rank
}

// rankIndex is the exact index over a Scorer's movies and Rank's pooled
// memory.
type rankIndex struct {
	once  sync.Once
	exact *ann.Exact // nil when a vector is not finite: Rank declines
	all   ann.Filter
	// scratch holds *rankScratch. It is a pointer and its New does not
	// capture the index: the runtime's list of pools must not keep a
	// scorer's index (two copies of every movie vector) alive after the
	// scorer is dropped.
	scratch *sync.Pool
}

// rankScratch is one Rank call's memory.
type rankScratch struct {
	accept ann.Filter
	res    []ann.Result
}

// NewScorer computes all user and movie vectors once.
func NewScorer(m *tower.Model, users, movies []feature.Encoded) *Scorer {
	d := m.Dim()
	uv := make([][]float32, len(users))
	for i, u := range users {
		uv[i] = make([]float32, d)
		m.UserVector(uv[i], u)
	}
	vectors := make([]float32, len(movies)*d)
	for i, mv := range movies {
		m.MovieVector(vectors[i*d:(i+1)*d], mv)
	}
	return newScorer(d, vectors, uv)
}

// newScorer scores the users' vectors against the movies' vectors (dim
// wide, row-major).
func newScorer(dim int, vectors []float32, users [][]float32) *Scorer {
	return &Scorer{dim: dim, users: users, vectors: vectors, index: &rankIndex{}}
}

// withUsers returns a scorer of other users against the same movies,
// sharing the index.
func (s *Scorer) withUsers(users [][]float32) *Scorer {
	return &Scorer{dim: s.dim, users: users, vectors: s.vectors, index: s.index}
}

// ScoreAll implements eval.Scorer.
func (s *Scorer) ScoreAll(dst []float32, u int32) {
	q := s.users[u]
	for i := range dst {
		dst[i] = ann.Dot(q, s.vectors[i*s.dim:(i+1)*s.dim])
	}
}

// Rank implements eval.Ranker: the exact index's scores are Dot's to the
// bit, and it breaks ties by the lower index, as eval does. The index is
// built on the first call (a Scorer that only scores never pays for it).
func (s *Scorer) Rank(dst []int32, u int32, k int, excluded []int32) ([]int32, bool) {
	ix := s.index
	ix.once.Do(func() {
		if e, err := ann.NewExact(s.vectors, s.dim); err == nil {
			ix.exact, ix.all = e, ann.AllFilter(e.Len())
		}
		n := len(ix.all)
		ix.scratch = &sync.Pool{New: func() any { return &rankScratch{accept: make(ann.Filter, n)} }}
	})
	if ix.exact == nil {
		return dst, false
	}
	sc := ix.scratch.Get().(*rankScratch)
	defer ix.scratch.Put(sc)
	copy(sc.accept, ix.all)
	for _, m := range excluded {
		sc.accept.Reject(m)
	}
	res, err := ix.exact.Search(sc.res[:0], s.users[u], k, sc.accept)
	if err != nil { // a query that is not finite
		return dst, false
	}
	sc.res = res
	for _, r := range res {
		dst = append(dst, r.ID)
	}
	return dst, true
}

// quotedPaths returns sums with each path that is not UTF-8 quoted
// (strconv.Quote: "\xfe"). JSON writes such a path with U+FFFD in place
// of its bytes, so two of them (ISO-8859-1 file names) became one key
// twice, a manifest Load refuses.
func quotedPaths(sums map[string]string) map[string]string {
	if sums == nil {
		return nil
	}
	out := make(map[string]string, len(sums))
	for p, s := range sums {
		if !utf8.ValidString(p) {
			p = strconv.Quote(p)
		}
		out[p] = s
	}
	return out
}

// FileChecksums returns the sha256 of each file, keyed by its path.
func FileChecksums(paths ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("checksum %s: %w", p, err)
		}
		out[p] = hex.EncodeToString(h.Sum(nil))
	}
	return out, nil
}

// profiles are the dataset's users' features, which the service fills in
// for a request that names only a user id.
func profiles(users []movielens.User) []artifact.Profile {
	out := make([]artifact.Profile, len(users))
	for i, u := range users {
		out[i] = artifact.Profile{ID: u.ID, Gender: u.Gender, Age: u.Age, Occupation: u.Occupation, Zip: u.Zip}
	}
	return out
}
