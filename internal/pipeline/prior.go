package pipeline

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/eval"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/tower"
)

// The time-aware popularity prior. The towers score taste (their softmax
// is logQ-corrected, so the cosine carries little popularity); what is
// popular now is a separate per-movie bias, log of the movie's smoothed
// share of the recent ratings, counted with exponential decay by age. It
// is served through one extra vector dimension (tower.Prior), and its
// half-life and weight are chosen on validation.

const secondsPerDay = 86400

// priorBias returns each movie's bias from ratings rs, each weighing
// 2^(−age/halfLifeDays) where age is its distance in days from the newest
// rating (halfLifeDays 0: no decay): log((c_m + 1) / (Σc + M)), one
// fresh rating's worth of smoothing. It also returns the bias of a movie
// without ratings, the newest rating's time, and the number counted.
func priorBias(ix *Index, rs []movielens.Rating, halfLifeDays float64) (bias []float32, def float32, now int64) {
	for i, r := range rs {
		if i == 0 || r.Time > now {
			now = r.Time
		}
	}
	counts := make([]float64, len(ix.ds.Movies))
	total := 0.0
	for _, r := range rs {
		m, ok := ix.movies[r.Movie]
		if !ok {
			continue
		}
		w := 1.0
		if halfLifeDays > 0 {
			w = math.Exp2(-float64(now-r.Time) / (halfLifeDays * secondsPerDay))
		}
		counts[m] += w
		total += w
	}
	norm := math.Log(total + float64(len(counts)))
	bias = make([]float32, len(counts))
	for m, c := range counts {
		bias[m] = float32(math.Log(c+1) - norm)
	}
	return bias, float32(-norm), now
}

// PriorChoice is one setting of the prior and its validation score.
type PriorChoice = artifact.PriorChoice

// choosePrior scores every (half-life, weight) pair of the grid on split
// with the towers of model (towers only, no prior) and the bias counted
// from rs, and returns the best by Recall@10 (the first on ties, so list
// weight 0 first to prefer no prior) and every result. users and movies are
// encoded in split's index order.
func choosePrior(ctx context.Context, model *tower.Model, users, movies []feature.Encoded, split *eval.Split, ix *Index,
	rs []movielens.Rating, halfLives, weights []float64, workers int) (PriorChoice, []PriorChoice, error) {
	d := model.TowerDim()
	if model.Prior() != nil {
		return PriorChoice{}, nil, fmt.Errorf("pipeline: choose prior: the model already has one")
	}
	tow := NewScorer(model, users, movies)
	var best PriorChoice
	var all []PriorChoice
	try := func(h, w float64, bias []float32) error {
		wf := float32(w)
		s := eval.ScorerFunc(func(dst []float32, u int32) {
			q := tow.users[u]
			for m := range dst {
				dst[m] = ann.Dot(q, tow.vectors[m*d:(m+1)*d])
				if wf != 0 {
					dst[m] += wf * bias[m]
				}
			}
		})
		met, err := eval.Evaluate(ctx, s, split, []int{10}, workers)
		if err != nil {
			return err
		}
		c := PriorChoice{HalfLifeDays: h, Weight: w, Valid: met["recall@10"]}
		all = append(all, c)
		if len(all) == 1 || c.Valid > best.Valid {
			best = c
		}
		return nil
	}
	if err := try(0, 0, nil); err != nil { // no prior: the half-life does not matter
		return best, all, err
	}
	for _, h := range halfLives {
		bias, _, _ := priorBias(ix, rs, h)
		for _, w := range weights {
			if w > 0 {
				if err := try(h, w, bias); err != nil {
					return best, all, err
				}
			}
		}
	}
	return best, all, nil
}

// applyPrior gives the bundle the prior c counted from rs (every rating
// known when it is served): the model's extra dimension, the table, and
// each movie's bias as the last value of its vector. b.Vectors must hold
// the towers' outputs (TowerDim wide) and is rewritten Dim wide.
func applyPrior(b *artifact.Bundle, ix *Index, rs []movielens.Rating, c PriorChoice) {
	bias, def, now := priorBias(ix, rs, c.HalfLifeDays)
	b.Model.SetPrior(&tower.Prior{Weight: float32(c.Weight), DefaultBias: def})
	d := b.Model.TowerDim()
	vecs := make([]float32, len(b.Movies)*(d+1))
	for i := range b.Movies {
		copy(vecs[i*(d+1):], b.Vectors[i*d:(i+1)*d])
		vecs[i*(d+1)+d] = bias[i]
	}
	b.Vectors = vecs
	b.Prior = &artifact.Prior{Weight: float32(c.Weight), DefaultBias: def, HalfLifeDays: c.HalfLifeDays,
		Now: time.Unix(now, 0).UTC(), Ratings: len(rs), Bias: bias}
}
