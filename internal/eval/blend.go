package eval

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// blendCandidates is how many movies BlendRecall keeps per user from each
// ordering (by the scorer and by the bias) before it ranks a weight.
const blendCandidates = 64

// BlendRecall returns, for each bias biases[h] and each weight ws[j] ≥ 0,
// Recall@k over sp's test users when movies rank by s + float32(ws[j]·
// biases[h][m]) (s: base's score), exactly what Evaluate's recall@k
// reports for a scorer that adds the bias so. It serves a grid search:
// base scores each user once, not once per setting. For each setting only
// the user's best movies by s and the best by that bias are ranked; no
// other movie can score above the sum of the worst of each, so when the
// k-th ranked scores more, the ranking is complete, and otherwise that
// setting is ranked over every movie. Workers as in Evaluate; the result
// does not depend on them.
func BlendRecall(ctx context.Context, base Scorer, biases [][]float32, ws []float32, sp *Split, k, workers int) ([][]float64, error) {
	return blendRecall(ctx, base, biases, ws, sp, k, workers, blendCandidates)
}

func blendRecall(ctx context.Context, base Scorer, biases [][]float32, ws []float32, sp *Split, k, workers, keep int) ([][]float64, error) {
	if err := sp.Validate(); err != nil {
		return nil, err
	}
	for h, bias := range biases {
		if len(bias) != sp.NumMovies {
			return nil, fmt.Errorf("eval: blend: bias %d has %d values for %d movies", h, len(bias), sp.NumMovies)
		}
	}
	if k <= 0 {
		return nil, fmt.Errorf("eval: blend: cut-off %d: want K > 0", k)
	}
	for i, w := range ws {
		if !(w >= 0) {
			return nil, fmt.Errorf("eval: blend: weight %d is %g: want ≥ 0", i, w)
		}
	}
	k = min(k, sp.NumMovies)
	byBias := make([][]int32, len(biases))
	for h, bias := range biases {
		byBias[h] = make([]int32, sp.NumMovies)
		for m := range byBias[h] {
			byBias[h][m] = int32(m)
		}
		slices.SortFunc(byBias[h], func(a, b int32) int { return cmp.Compare(rankKey(bias[b], b), rankKey(bias[a], a)) })
	}
	res, _, err := perUser(ctx, sp, workers, len(biases)*len(ws),
		func() *blender {
			return &blender{worker: newWorker(sp.NumMovies, k), inCand: make([]int32, sp.NumMovies), byScore: newTopK(keep), keep: keep}
		},
		func(b *blender, u int32, out []float64) { b.rank(base, biases, byBias, ws, sp, u, out) })
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(biases))
	for h := range out {
		out[h] = make([]float64, len(ws))
		for j := range out[h] {
			out[h][j], _ = meanSE(column(res, len(biases)*len(ws), h*len(ws)+j))
		}
	}
	return out, nil
}

// blender is one goroutine's buffers for BlendRecall.
type blender struct {
	*worker
	inCand    []int32 // inCand[m] == candStamp: m is a candidate of the current user and bias
	candStamp int32
	cand      []int32
	byScore   topK
	keep      int
}

// rank writes user u's Recall@k for each bias and weight to out (by bias,
// then weight).
func (b *blender) rank(base Scorer, biases [][]float32, byBias [][]int32, ws []float32, sp *Split, u int32, out []float64) {
	b.stamp++
	for _, m := range sp.Exclude[u] {
		b.excluded[m] = b.stamp
	}
	for _, m := range sp.Test[u] {
		b.positive[m] = b.stamp
	}
	base.ScoreAll(b.scores, u)

	// The candidates: the best kept by score and the best kept by bias,
	// and the lowest score and bias among them; every other movie scores
	// at most that score and has at most that bias.
	b.byScore.reset()
	for m, v := range b.scores {
		if b.excluded[m] != b.stamp {
			b.byScore.push(v, int32(m))
		}
	}
	b.cand = append(b.cand[:0], b.byScore.sorted()...)
	nScore := len(b.cand)
	if nScore == 0 { // every movie is excluded: nothing ranks
		clear(out)
		return
	}
	complete := nScore < b.keep // every movie left is a candidate
	sLow := b.scores[b.cand[nScore-1]]
	for h, bias := range biases {
		b.candStamp++
		b.cand = b.cand[:nScore]
		for _, m := range b.cand {
			b.inCand[m] = b.candStamp
		}
		var bLow float32
		taken := 0
		for _, m := range byBias[h] {
			if taken == b.keep {
				break
			}
			if b.excluded[m] == b.stamp {
				continue
			}
			taken, bLow = taken+1, bias[m]
			if b.inCand[m] != b.candStamp {
				b.inCand[m] = b.candStamp
				b.cand = append(b.cand, m)
			}
		}
		for j, w := range ws {
			b.top.reset()
			for _, m := range b.cand {
				b.top.push(b.scores[m]+float32(w*bias[m]), m)
			}
			bound := sLow + float32(w*bLow)
			if !complete && (len(b.top.keys) < cap(b.top.keys) || !(rankKey(bound, 0) < b.top.keys[0])) {
				// A movie outside the candidates might rank: rank them all.
				for m, v := range b.scores {
					if b.excluded[m] != b.stamp && b.inCand[m] != b.candStamp {
						b.top.push(v+float32(w*bias[m]), int32(m))
					}
				}
			}
			hits := 0
			for _, key := range b.top.keys {
				if b.positive[int32(^uint32(key))] == b.stamp {
					hits++
				}
			}
			out[h*len(ws)+j] = float64(hits) / float64(len(sp.Test[u]))
		}
	}
}
