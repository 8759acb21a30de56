package pipeline

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/eval"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/train"
)

// TestAddTeacher checks the distillation teacher on the demo catalogue:
// a row per user and a score per movie, standardised per user, ranking
// the movies as EASE does.
func TestAddTeacher(t *testing.T) {
	t.Parallel()
	in := demoInputs()
	ix := NewIndex(in.Dataset)
	var d train.Data
	if err := addTeacher(context.Background(), &d, ix, in, 50, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	nu, nm := len(in.Dataset.Users), len(in.Dataset.Movies)
	if d.TeacherMovies != nm || len(d.Teacher) != nu*nm {
		t.Fatalf("teacher of %d scores, %d movies each; want %d users × %d movies", len(d.Teacher), d.TeacherMovies, nu, nm)
	}
	pairs := ix.pairs(in.Train)
	e, err := eval.FitEASE(context.Background(), nm, pairs, 50)
	if err != nil {
		t.Fatal(err)
	}
	hist := make([][]int32, nu)
	for _, p := range pairs {
		hist[p.User] = append(hist[p.User], p.Movie)
	}
	scorer := e.Scorer(hist, eval.Popularity(nm, pairs))
	want := make([]float32, nm)
	for u := range nu {
		row := d.Teacher[u*nm : (u+1)*nm]
		var sum, sq float64
		n := 0
		for _, v := range row {
			if v > -10 {
				sum += float64(v)
				sq += float64(v) * float64(v)
				n++
			}
		}
		if mean, sd := sum/float64(n), math.Sqrt(sq/float64(n)-sum*sum/float64(n*n)); !(math.Abs(mean) <= 1e-3) || !(math.Abs(sd-1) <= 1e-3) { // NaN fails
			t.Fatalf("user %d: scores of mean %.4f, sd %.4f", u, mean, sd)
		}
		scorer.ScoreAll(want, int32(u))
		if a, b := argsort(row), argsort(want); !slices.Equal(a, b) {
			t.Fatalf("user %d: teacher ranks %v, EASE %v", u, a[:5], b[:5])
		}
	}
	small := Inputs{Dataset: &movielens.Dataset{Users: make([]movielens.User, 6040), Movies: make([]movielens.Movie, 3883)}}
	wide := Inputs{Dataset: &movielens.Dataset{Users: make([]movielens.User, 10), Movies: make([]movielens.Movie, eval.MaxEASEMovies+1)}}
	many := Inputs{Dataset: &movielens.Dataset{Users: make([]movielens.User, teacherMaxScores/1000+1), Movies: make([]movielens.Movie, 1000)}}
	if !canTeach(small) || canTeach(wide) || canTeach(many) {
		t.Error("canTeach: wrong bounds")
	}
}

// argsort returns the indexes of xs by decreasing value (ties by index).
func argsort(xs []float32) []int {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(xs[b], xs[a]) })
	return idx
}

func TestStandardise(t *testing.T) {
	t.Parallel()
	inf := float32(math.Inf(-1))
	row := []float32{1, 3, inf, 5}
	standardise(row)
	s := float32(math.Sqrt(8.0 / 3))
	want := []float32{-2 / s, 0, -10, 2 / s}
	for i := range row {
		if math.Abs(float64(row[i]-want[i])) > 1e-6 {
			t.Fatalf("standardise: %v, want %v", row, want)
		}
	}
	flat := []float32{2, 2}
	standardise(flat)
	if flat[0] != 0 || flat[1] != 0 {
		t.Errorf("constant row standardised to %v", flat)
	}
}

// TestAddTeacherTooLarge: a catalogue of more rated movies than EASE is
// fitted on leaves the teacher nil, without an error, and says so.
func TestAddTeacherTooLarge(t *testing.T) {
	t.Parallel()
	ds := &movielens.Dataset{Users: []movielens.User{{ID: 1}, {ID: 2}}}
	var rs []movielens.Rating
	for m := range eval.MaxEASEMovies + 1 {
		ds.Movies = append(ds.Movies, movielens.Movie{ID: movielens.MovieID(m + 1)})
		rs = append(rs, movielens.Rating{User: movielens.UserID(1 + m%2), Movie: movielens.MovieID(m + 1), Value: 4})
	}
	var log strings.Builder
	var d train.Data
	if err := addTeacher(context.Background(), &d, NewIndex(ds), Inputs{Dataset: ds, Train: rs}, 500, zerolog.New(&log)); err != nil {
		t.Fatal(err)
	}
	if d.Teacher != nil || !strings.Contains(log.String(), "too large") {
		t.Errorf("teacher of %d scores; log %q", len(d.Teacher), log.String())
	}
}

// TestTrainTooLargeForTeacher: the random-split recipe on a catalogue too
// large for EASE trains, and its manifest records distill 0, what it did;
// and eval on it leaves the EASE baseline out and says why, instead of an
// n² matrix (at a million movies, a crash), with everything else reported.
func TestTrainTooLargeForTeacher(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	t.Parallel()
	ds := &movielens.Dataset{Users: []movielens.User{{ID: 1, Gender: "F", Age: 25, Occupation: "other"}, {ID: 2, Gender: "M", Age: 35, Occupation: "other"}}}
	var rs []movielens.Rating
	for m := range eval.MaxEASEMovies + 1 {
		ds.Movies = append(ds.Movies, movielens.Movie{ID: movielens.MovieID(m + 1), Genres: []string{"Drama"}})
		rs = append(rs, movielens.Rating{User: movielens.UserID(1 + m%2), Movie: movielens.MovieID(m + 1), Value: 4, Time: int64(m)})
	}
	cfg := config.RandomSplit()
	cfg.Train.Epochs, cfg.Train.Workers = 1, 1
	cfg.Serve.SelfCheckQueries = 2
	b, err := Train(context.Background(), Inputs{Dataset: ds, Train: rs}, Options{Config: cfg, Logger: zerolog.Nop(), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.Parse(b.Manifest.Config, "manifest.json", config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if got.Train.Distill != 0 {
		t.Errorf("manifest records distill %g for a run without a teacher", got.Train.Distill)
	}
	var test []movielens.Rating // movies each user has not rated, in time after train
	for m := range 20 {
		test = append(test, movielens.Rating{User: movielens.UserID(2 - m%2), Movie: movielens.MovieID(m + 1), Value: 4, Time: int64(eval.MaxEASEMovies + 1 + m)})
	}
	r, err := Evaluate(context.Background(), b, ds, EvalInputs{Train: rs, Test: test, Baselines: Baselines{EASELambda: 500}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	js := r.JSON()
	if r.EASE != nil || !strings.Contains(r.EASESkipped, fmt.Sprint(eval.MaxEASEMovies+1)+" movies") || js["ease_skipped"] != r.EASESkipped || js["ease"] != nil {
		t.Errorf("EASE %v, skipped %q, JSON %v", r.EASE, r.EASESkipped, js["ease_skipped"])
	}
	if r.Model == nil || r.Popularity == nil {
		t.Errorf("model %v, popularity %v: the rest of the report is missing", r.Model, r.Popularity)
	}
}
