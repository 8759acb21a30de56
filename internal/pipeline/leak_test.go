package pipeline

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/movielens"
)

// TestTestFileChoosesNothing: the test ratings given to Train change
// neither the shipped vectors (towers and prior) nor any selection record
// (recipe, epochs, prior search; timings aside): with a validation file,
// three recipes and the refit, the test file is read by nothing before the
// final evaluation.
func TestTestFileChoosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("trains three models")
	}
	t.Parallel()
	ds := movielens.Demo(1)
	rest, te := movielens.TemporalSplit(ds.Ratings, 0.8)
	tr, va := movielens.TemporalSplit(rest, 0.85)
	cfg := demoConfig(3)
	run := func(test []movielens.Rating) ([]float32, string) {
		b, err := Train(context.Background(), Inputs{Dataset: ds, Train: tr, Valid: va, Test: test}, Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		s := *b.Manifest.Training.Selection
		s.RefitExamplesPerSec = 0
		for i := range s.Candidates {
			s.Candidates[i].Seconds = 0
		}
		sel, _ := json.Marshal(s)
		return b.Vectors, string(sel)
	}
	v1, s1 := run(te)
	v2, s2 := run(te[:len(te)/3])
	v3, s3 := run(nil)
	if !reflect.DeepEqual(v1, v2) || !reflect.DeepEqual(v1, v3) {
		t.Error("the test ratings changed the movie vectors")
	}
	if s1 != s2 || s1 != s3 {
		t.Errorf("the test ratings changed the selection")
	}
}
