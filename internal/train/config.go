// Package train fits a tower.Model to interactions: it owns the recipe that
// turns ratings into training examples (Recipe: recency weights, cold-start
// twins, history folds or causal recent-history bags), the objectives
// (in-batch sampled softmax with logQ correction and optional distillation
// of a teacher's scores, and the pointwise rating regression of the
// reference recipe), batching, the optimizers' steps, the two-core loop and
// early stopping. It sits between tower and eval in the data flow;
// evaluation itself is injected through Hooks.Validate.
package train

import (
	"errors"
	"fmt"
	"math"
)

// The objectives.
const (
	Softmax   = "softmax"
	Pointwise = "pointwise"
)

// The learning-rate schedules.
const (
	Constant = "constant" // the learning rate throughout (also "")
	Linear   = "linear"   // decays linearly to 0 at the end of the last epoch
	Cosine   = "cosine"   // decays along half a cosine to 0 at the end of the last epoch
)

// The optimizers.
const (
	Adam    = "adam"
	RMSprop = "rmsprop"
)

// Config controls a training run. Every value comes from the caller (the
// shipped settings live in package config, which pipeline translates);
// Validate checks the invariants the loop relies on. HistoryField must be
// set explicitly: −1 when the user tower has no history field.
type Config struct {
	Objective    string  // Softmax or Pointwise
	Epochs       int     // maximum number of passes over Data.Train
	BatchSize    int     // interactions per step
	LearningRate float32 // optimizer step size
	Optimizer    string  // Adam or RMSprop
	Temperature  float32 // softmax: logits are dot/Temperature (the cosine for normalised towers)
	LogQ         bool    // softmax: subtract log(item frequency) from each logit (Yi et al., RecSys 2019)
	// UniformNegatives (softmax) adds this many movies drawn uniformly from
	// all movies to every step as negatives shared by all rows (mixed
	// negative sampling). In-batch negatives are mostly popular movies; the
	// uniform ones keep long-tail movies from scoring high by default.
	// Measured: no gain on the user-temporal splits, so 0 by default.
	UniformNegatives int
	// UserWeight (softmax) weights each example by n_u^−UserWeight, where
	// n_u is the train interactions of the real user it stands for
	// (Data.Origin: twins and copies count together; normalised to mean 1):
	// 0 treats examples alike, so heavy users dominate; the per-user metrics
	// (Recall@K averages over users) favour something in between.
	// Measured early: 0.5 and 1 did not help the default recipe, which keeps
	// 0; the random-split preset's 0.5 was chosen on RecBole's validation.
	UserWeight float32
	// ColdLogQ (softmax, with LogQ) scales the logQ correction in the rows
	// of the users Data.Cold marks (cold-start twins). A sampled softmax
	// whose logits are corrected by α·log q learns scores of
	// log p(movie|user) + (α−1)·log q(movie): α = 1 is the unbiased full
	// softmax, α > 1 adds a popularity bonus to the id-less vectors — the
	// best guess for a user nothing is known about — while the other rows
	// keep their own correction (LogQScale). Measured on a validation
	// slice of ml-1m user-temporal: α = 0 collapses cold start (0.007).
	ColdLogQ float32
	// LogQScale (softmax, with LogQ) scales the logQ correction in every
	// other row: 1 is the unbiased correction; below 1 the scores keep a
	// popularity bonus of (1−LogQScale)·log frequency, which can suit
	// metrics that reward popular hits.
	LogQScale float32
	// Schedule (Constant, Linear or Cosine) scales LearningRate by the share
	// of the PlanEpochs·steps-per-epoch steps done; with early stopping the
	// decay is still planned over them.
	Schedule string
	// PlanEpochs is what a decaying Schedule is planned over (0: Epochs): a
	// refit that repeats the first Epochs of a longer run sets that run's.
	PlanEpochs int
	// HistoryDropout (with HistoryField ≥ 0) drops each item of that user
	// field's bag with this probability, anew at every step (at least one
	// item is kept), so the user tower cannot lean on any one rated movie.
	// Serving and evaluation see the whole bag; mean pooling keeps the
	// scale.
	HistoryDropout float32
	HistoryField   int     // the user field HistoryDropout applies to; −1 none
	L2             float32 // L2 penalty (decay·w added to the gradient of every touched parameter)
	Workers        int     // 1 reproduces bit for bit; 2 uses both cores (and is reproducible too)
	Seed           uint64  // drives the shuffling and the uniform negatives
	Patience       int     // epochs without a better Hooks.Validate before stopping; 0 = never stop early
	// Distill (softmax) adds Distill × the KL divergence from a teacher's
	// distribution over each step's movies to the towers' to every row's
	// loss (knowledge distillation, Hinton et al. 2015): the towers learn
	// the teacher's ranking of the sampled movies, not only the rated one.
	// The teacher's logits are Data.Teacher's scores of the row's real user
	// divided by DistillTemp, plus the same logQ correction and duplicate
	// counts as the towers' logits. 0 turns it off.
	Distill     float32
	DistillTemp float32
}

// Validate reports every problem of the config at once.
func (c Config) Validate() error {
	var errs []error
	switch c.Objective {
	case Softmax, Pointwise:
	default:
		errs = append(errs, fmt.Errorf("objective %q: want %q or %q", c.Objective, Softmax, Pointwise))
	}
	switch c.Optimizer {
	case Adam, RMSprop:
	default:
		errs = append(errs, fmt.Errorf("optimizer %q: want %q or %q", c.Optimizer, Adam, RMSprop))
	}
	if c.PlanEpochs != 0 && c.PlanEpochs < c.Epochs {
		errs = append(errs, fmt.Errorf("plan epochs %d: want 0 or at least epochs (%d)", c.PlanEpochs, c.Epochs))
	}
	if c.Epochs < 1 {
		errs = append(errs, fmt.Errorf("epochs %d < 1", c.Epochs))
	}
	if c.BatchSize < 1 || c.BatchSize > 1<<16 {
		errs = append(errs, fmt.Errorf("batch size %d not in 1..65536", c.BatchSize))
	}
	if c.Objective == Softmax && c.BatchSize < 2 {
		errs = append(errs, fmt.Errorf("softmax needs a batch size ≥ 2, got %d", c.BatchSize))
	}
	if !(c.LearningRate > 0) || math.IsInf(float64(c.LearningRate), 0) {
		errs = append(errs, fmt.Errorf("learning rate %g must be positive", c.LearningRate))
	}
	if c.Objective == Softmax && (!(c.Temperature > 0) || math.IsInf(float64(c.Temperature), 0)) {
		errs = append(errs, fmt.Errorf("temperature %g must be positive", c.Temperature))
	}
	if !(c.L2 >= 0) || math.IsInf(float64(c.L2), 0) {
		errs = append(errs, fmt.Errorf("l2 %g must be ≥ 0", c.L2))
	}
	if c.Workers < 1 || c.Workers > 64 {
		errs = append(errs, fmt.Errorf("workers %d not in 1..64", c.Workers))
	}
	if c.UniformNegatives < 0 || c.UniformNegatives > 1<<16 {
		errs = append(errs, fmt.Errorf("uniform negatives %d not in 0..65536", c.UniformNegatives))
	}
	if !(c.UserWeight >= 0 && c.UserWeight <= 1) {
		errs = append(errs, fmt.Errorf("user weight %g not in [0, 1]", c.UserWeight))
	}
	if !(c.ColdLogQ >= 0 && c.ColdLogQ <= 5) {
		errs = append(errs, fmt.Errorf("cold logQ %g not in [0, 5]", c.ColdLogQ))
	}
	switch c.Schedule {
	case "", Constant, Linear, Cosine:
	default:
		errs = append(errs, fmt.Errorf("schedule %q: want %q, %q or %q", c.Schedule, Constant, Linear, Cosine))
	}
	if !(c.HistoryDropout >= 0 && c.HistoryDropout < 1) {
		errs = append(errs, fmt.Errorf("history dropout %g not in [0, 1)", c.HistoryDropout))
	}
	if c.HistoryDropout > 0 && c.HistoryField < 0 {
		errs = append(errs, errors.New("history dropout needs a history field"))
	}
	if !(c.LogQScale >= 0 && c.LogQScale <= 5) {
		errs = append(errs, fmt.Errorf("logQ scale %g not in [0, 5]", c.LogQScale))
	}
	if !(c.Distill >= 0 && c.Distill <= 10) {
		errs = append(errs, fmt.Errorf("distill %g not in [0, 10]", c.Distill))
	}
	if c.Distill > 0 && c.Objective != Softmax {
		errs = append(errs, errors.New("distillation needs the softmax objective"))
	}
	if c.Distill > 0 && (!(c.DistillTemp > 0) || math.IsInf(float64(c.DistillTemp), 0)) {
		errs = append(errs, fmt.Errorf("distill temperature %g must be positive", c.DistillTemp))
	}
	if c.Patience < 0 {
		errs = append(errs, fmt.Errorf("patience %d < 0", c.Patience))
	}
	return errors.Join(errs...)
}
