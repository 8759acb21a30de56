package pipeline

import (
	"bytes"
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/eval"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/train"
)

// Without a validation file, train validates on the newest tenth of its
// ratings, records the chosen epoch count, and refits on all of them; the
// test ratings play no part in what is trained.
func TestTrainCarvesValidation(t *testing.T) {
	if testing.Short() {
		t.Skip("trains models")
	}
	t.Parallel()
	cfg := demoConfig(4)
	cfg.Train.Candidates = nil // one selection run (TestCandidateSearch covers the search)
	in := demoInputs()
	var epochs []train.EpochStats
	var logs bytes.Buffer
	b, err := Train(context.Background(), in, Options{Config: cfg, Logger: zerolog.New(&logs), Now: fixedNow,
		OnEpoch: func(s train.EpochStats) { epochs = append(epochs, s) }})
	if err != nil {
		t.Fatal(err)
	}
	// Views by time only: the log says what a random split needs instead.
	if !strings.Contains(logs.String(), randomSplitHint) {
		t.Error("no hint for random splits in the log of a run validated by time")
	}
	sel := b.Manifest.Training.Selection
	older, newer := movielens.TimelineSplit(in.Train, 0.1)
	_, mine := movielens.UserTimelineSplit(older, 0.1)
	if sel == nil || sel.Valid != "carved" || sel.ValidRatings != len(newer)+len(mine) || sel.ValidUserRatings != len(mine) || !sel.Refit {
		t.Fatalf("selection %+v, want carved with %d + %d ratings and a refit", sel, len(newer), len(mine))
	}
	// Two views: each has its popularity yardstick, and every prior
	// setting tried reports both views' recall.
	if len(mine) == 0 || len(sel.ViewPopularity) != 2 || sel.Prior == nil || len(sel.Prior.ValidViews) != 2 {
		t.Errorf("two views: %d per-user ratings, popularity %v, prior %+v", len(mine), sel.ViewPopularity, sel.Prior)
	}
	if sel.Epochs < 1 || sel.Epochs > cfg.Train.Epochs {
		t.Errorf("chosen epochs %d, want 1–%d", sel.Epochs, cfg.Train.Epochs)
	}
	if len(b.Manifest.Training.ValidRecall10) == 0 {
		t.Error("no validation recall recorded")
	}
	// The selection run's epochs (with validation), then the refit's (without).
	tr := b.Manifest.Training
	if tr.BestEpoch != sel.Epochs || len(epochs) != tr.Epochs+sel.Epochs {
		t.Errorf("best epoch %d, chosen %d; %d epochs reported for %d selection epochs + the refit", tr.BestEpoch, sel.Epochs, len(epochs), tr.Epochs)
	}
	for _, e := range epochs[tr.Epochs:] {
		if e.HasValid {
			t.Errorf("refit epoch %d validated", e.Epoch)
		}
	}
	for _, r := range newer {
		if r.Time < sel.ValidFrom {
			t.Fatalf("held-out rating at %d before valid_from %d", r.Time, sel.ValidFrom)
		}
	}

	// The same run without the test ratings trains the same vectors.
	noTest := in
	noTest.Test = nil
	b2, err := Train(context.Background(), noTest, Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.Vectors, b2.Vectors) {
		t.Error("the test ratings changed the trained vectors")
	}

	// With carving off there is no validation and no early stopping.
	cfg.Train.ValidFraction, cfg.Train.ValidUserFraction = 0, 0
	b3, err := Train(context.Background(), noTest, Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if s := b3.Manifest.Training.Selection; s.Valid != "none" || s.Epochs != cfg.Train.Epochs || len(b3.Manifest.Training.ValidRecall10) != 0 {
		t.Errorf("without carving: selection %+v, valid recall %v", s, b3.Manifest.Training.ValidRecall10)
	}
}

// Each carved view is taken from what the views before it left: the
// global newest, each user's newest, then a random draw; every fraction 0
// is no validation, and a validation file is used alone.
func TestSelectionViews(t *testing.T) {
	t.Parallel()
	in := demoInputs()
	older, newer := movielens.TimelineSplit(in.Train, 0.1)
	kept, mine := movielens.UserTimelineSplit(older, 0.1)
	_, drawn := movielens.RandomSplit(kept, 0.1, 7)
	_, drawnAll := movielens.RandomSplit(in.Train, 0.2, 7)
	withFile := in
	withFile.Valid = newer
	for _, tc := range []struct {
		name               string
		in                 Inputs
		time, user, random float64
		want               [][]movielens.Rating
	}{
		{"default: global and per-user newest", in, 0.1, 0.1, 0, [][]movielens.Rating{newer, mine}},
		{"all three", in, 0.1, 0.1, 0.1, [][]movielens.Rating{newer, mine, drawn}},
		{"random alone", in, 0, 0, 0.2, [][]movielens.Rating{drawnAll}},
		{"none", in, 0, 0, 0, nil},
		{"a validation file alone", withFile, 0.1, 0.1, 0.1, [][]movielens.Rating{newer}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := demoConfig(1).Train
			cfg.Seed, cfg.ValidFraction, cfg.ValidUserFraction, cfg.ValidRandomFraction = 7, tc.time, tc.user, tc.random
			fit, views, sel := selectionInputs(tc.in, cfg)
			if !reflect.DeepEqual(views, tc.want) {
				t.Fatalf("%d views of %v ratings, want %d", len(views), viewSizes(views), len(tc.want))
			}
			held := 0
			for _, v := range views {
				held += len(v)
			}
			switch {
			case tc.want == nil:
				if sel.Valid != "none" || len(fit.Train) != len(tc.in.Train) {
					t.Errorf("selection %+v, %d of %d ratings fitted", sel, len(fit.Train), len(tc.in.Train))
				}
			case len(tc.in.Valid) > 0:
				if sel.Valid != "file" || len(fit.Train) != len(tc.in.Train) {
					t.Errorf("selection %+v", sel)
				}
			default:
				if sel.Valid != "carved" || sel.ValidRatings != held || len(fit.Train)+held != len(tc.in.Train) || len(fit.Valid) != held {
					t.Errorf("selection %+v: %d fitted + %d held of %d", sel, len(fit.Train), held, len(tc.in.Train))
				}
				if tc.random > 0 && sel.ValidRandomRatings != len(views[len(views)-1]) {
					t.Errorf("random view of %d ratings recorded as %d", len(views[len(views)-1]), sel.ValidRandomRatings)
				}
			}
		})
	}
}

// randomSplitHint is from the log line of a run validated on views carved
// by time alone.
const randomSplitHint = "for a random split, give its validation file or the random-split preset"

func viewSizes(views [][]movielens.Rating) []int {
	n := make([]int, len(views))
	for i, v := range views {
		n[i] = len(v)
	}
	return n
}

// With a validation file, train chooses on it, then refits on train and
// the file together: a user or a movie first rated in the validation
// ratings gets its own id embedding. With refit off the towers know only
// the training ratings.
func TestTrainRefitsOnValidationFile(t *testing.T) {
	if testing.Short() {
		t.Skip("trains models")
	}
	t.Parallel()
	cfg := demoConfig(3)
	cfg.Train.Candidates = nil
	in := demoInputs()
	in.Train, in.Valid = movielens.TimelineSplit(in.Train, 0.1)
	// One user's every rating moves to the validation file: a new user.
	newUser := in.Train[0].User
	var kept []movielens.Rating
	for _, r := range in.Train {
		if r.User == newUser {
			in.Valid = append(in.Valid, r)
		} else {
			kept = append(kept, r)
		}
	}
	in.Train = kept
	for _, refit := range []bool{true, false} {
		cfg.Train.Refit = refit
		var logs bytes.Buffer
		b, err := Train(context.Background(), in, Options{Config: cfg, Logger: zerolog.New(&logs), Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(logs.String(), randomSplitHint) {
			t.Errorf("refit %v: a run validated on its file logs the hint for time-carved views", refit)
		}
		sel := b.Manifest.Training.Selection
		if sel.Valid != "file" || sel.Refit != refit || sel.Epochs < 1 {
			t.Errorf("refit %v: selection %+v", refit, sel)
		}
		// The refit's own run is recorded: its epochs and ratings.
		if refit && (len(sel.RefitLoss) != sel.Epochs || sel.RefitRatings != len(in.Train)+len(in.Valid) || sel.RefitExamplesPerSec <= 0) ||
			!refit && (sel.RefitLoss != nil || sel.RefitRatings != 0) {
			t.Errorf("refit %v: refit loss %v over %d ratings at %.0f examples/s (%d epochs chosen)", refit, sel.RefitLoss, sel.RefitRatings, sel.RefitExamplesPerSec, sel.Epochs)
		}
		if known := b.Encoder.Vocabs[feature.UserIDField].Has(strconv.Itoa(int(newUser))); known != refit {
			t.Errorf("refit %v: user %d, rated only in the validation file, has an id embedding: %v", refit, newUser, known)
		}
	}
}

// TestValidationNorm: with two views each view's Recall@10 counts against
// its popularity Recall@10; a view where popularity hits nothing (tiny
// data) would divide by zero, so then the plain mean counts.
func TestValidationNorm(t *testing.T) {
	t.Parallel()
	two := []*eval.Split{{}, {}}
	for _, tc := range []struct {
		name  string
		v     validation
		norms []float64
	}{
		{"one view", validation{splits: two[:1], popularity: nil}, []float64{1}},
		{"two views", validation{splits: two, popularity: []float64{0.05, 0.2}}, []float64{0.1, 0.4}},
		{"popularity hits nothing in one", validation{splits: two, popularity: []float64{0, 0.2}}, []float64{2, 2}},
	} {
		for i, want := range tc.norms {
			if got := tc.v.norm(i); got != want {
				t.Errorf("%s: norm(%d) = %v, want %v", tc.name, i, got, want)
			}
		}
	}
}

// TestWarnIfWeakPerfectPopularity: a model level with a popularity that
// hits every positive in every view (a tiny catalogue whose unseen movies
// are all positives) is not warned about; one level with a popularity
// below 1 is.
func TestWarnIfWeakPerfectPopularity(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		popularity []float64
		score      float64
		warn       bool
	}{
		{"both perfect", []float64{1}, 1, false},
		{"both perfect, two views", []float64{1, 1}, 1, false},
		{"level below perfect", []float64{0.5}, 0.5, true},
		{"one view below perfect", []float64{1, 0.5}, 1, true},
	} {
		val := &validation{splits: make([]*eval.Split, len(tc.popularity)), popularity: tc.popularity}
		f := fitted{score: tc.score, res: train.Result{Epochs: []train.EpochStats{{Valid: tc.score}}}}
		var logs bytes.Buffer
		warnIfWeak(zerolog.New(&logs), val, f, 10, train.Softmax)
		if got := strings.Contains(logs.String(), "does not beat popularity"); got != tc.warn {
			t.Errorf("%s: warned %v, want %v: %s", tc.name, got, tc.warn, logs.String())
		}
	}
}

// A run whose towers learn nothing (here a learning rate that makes
// unnormalised towers diverge) still ships, but its log says the model
// does not beat popularity on validation; a sound run says nothing.
func TestTrainWarnsBelowPopularity(t *testing.T) {
	if testing.Short() {
		t.Skip("trains models")
	}
	t.Parallel()
	const warning = "does not beat popularity on validation"
	for _, tc := range []struct {
		name      string
		pointwise bool
		lr        float32
		want      string // in the warning; "" for none
	}{
		{"default", false, 0, ""},
		{"diverging", false, 9.9, "check train.learning_rate"},
		// The reference recipe is not told to check its settings, which
		// are the documented ones.
		{"pointwise diverging", true, 9.9, "the pointwise (reference) objective fits ratings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := demoConfig(3)
			if tc.pointwise {
				cfg = config.Reference()
				cfg.Train.Epochs, cfg.Train.Workers = 3, 1
			}
			cfg.Train.Candidates = nil
			cfg.Train.PriorWeights = nil // no prior to stand in for the towers
			if tc.lr > 0 {
				cfg.Model.Normalize, cfg.Train.LearningRate = false, tc.lr
			}
			var logs bytes.Buffer
			if _, err := Train(context.Background(), demoInputs(), Options{Config: cfg, Logger: zerolog.New(&logs), Now: fixedNow}); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(logs.String(), warning); got != (tc.want != "") || !strings.Contains(logs.String(), tc.want) {
				t.Errorf("warning logged: %v, want one saying %q; log:\n%s", got, tc.want, logs.String())
			}
		})
	}
}
