package eval

import (
	"context"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestBlendRecallMatchesEvaluate checks BlendRecall against Evaluate with a
// scorer that adds the bias, weight by weight, to the bit: few or many
// candidates kept (so both the short ranking and the full one run), tied
// and untied scores and biases, weights from 0 to ones where the bias
// decides alone.
func TestBlendRecallMatchesEvaluate(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(11, 12))
	const users, movies = 120, 400
	sp, _ := randomSplit(rng, users, movies)
	smooth := make([]float32, users*movies)
	for i := range smooth {
		smooth[i] = float32(rng.NormFloat64())
	}
	bases := map[string]Scorer{
		"tied":   ScorerFunc(hashScorer),
		"smooth": ScorerFunc(func(dst []float32, u int32) { copy(dst, smooth[int(u)*movies:]) }),
	}
	names := []string{"smooth", "tied"}
	biases := [][]float32{make([]float32, movies), make([]float32, movies)}
	for m := range movies {
		biases[0][m] = float32(-8 + 2*rng.NormFloat64())
		biases[1][m] = float32(-rng.IntN(4))
	}
	ws := []float32{0, 0.01, 0.3, 1, 5, 1e4}
	for bn, base := range bases {
		want := make([][]float64, len(biases))
		for h, bias := range biases {
			for _, w := range ws {
				s := ScorerFunc(func(dst []float32, u int32) {
					base.ScoreAll(dst, u)
					for m := range dst {
						dst[m] += float32(w * bias[m])
					}
				})
				met, err := Evaluate(context.Background(), s, sp, []int{10}, 2)
				if err != nil {
					t.Fatal(err)
				}
				want[h] = append(want[h], met["recall@10"])
			}
		}
		for _, keep := range []int{1, 3, 16, 64, movies + 1} {
			got, err := blendRecall(context.Background(), base, biases, ws, sp, 10, 3, keep)
			if err != nil {
				t.Fatal(err)
			}
			for h := range biases {
				for j := range ws {
					if got[h][j] != want[h][j] {
						t.Errorf("base %s, bias %s, keep %d, weight %g: recall@10 %v, want %v", bn, names[h], keep, ws[j], got[h][j], want[h][j])
					}
				}
			}
		}
	}
}

func TestBlendRecallAllExcluded(t *testing.T) {
	t.Parallel()
	sp := NewSplit(2, 3, []Pair{{0, 0}, {0, 1}, {0, 2}}, []Pair{{0, 1}, {1, 2}})
	got, err := BlendRecall(context.Background(), scores(3, 2, 1), [][]float32{{0, 0, 0}, {0, 0, 9}}, []float32{0, 1}, sp, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	// User 0 has nothing left to rank; user 1 ranks movie 0 first and
	// misses, unless movie 2's bias of 9 counts.
	if want := [][]float64{{0, 0}, {0, 0.5}}; !reflect.DeepEqual(got, want) {
		t.Errorf("recall = %v, want %v", got, want)
	}
}

func TestBlendRecallErrors(t *testing.T) {
	t.Parallel()
	sp := NewSplit(1, 3, nil, []Pair{{0, 1}})
	for name, call := range map[string]func() error{
		"negative weight": func() error {
			_, err := BlendRecall(context.Background(), scores(1, 2, 3), [][]float32{make([]float32, 3)}, []float32{-1}, sp, 10, 1)
			return err
		},
		"bias length": func() error {
			_, err := BlendRecall(context.Background(), scores(1, 2, 3), [][]float32{make([]float32, 3), make([]float32, 2)}, []float32{1}, sp, 10, 1)
			return err
		},
		"cut-off": func() error {
			_, err := BlendRecall(context.Background(), scores(1, 2, 3), [][]float32{make([]float32, 3)}, []float32{1}, sp, 0, 1)
			return err
		},
	} {
		if call() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
