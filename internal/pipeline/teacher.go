package pipeline

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/eval"
	"github.com/towerrecall/towerrecall/internal/train"
)

// teacherMaxScores bounds the teacher's scores, 4 bytes per user and
// movie; the catalogue is bounded by eval.MaxEASEMovies, as EASE is.
const teacherMaxScores = 1 << 28 // 1 GiB of float32 scores

// addTeacher fits EASE with L2 weight lambda on the training ratings and
// gives data each real user's scores of every movie, standardised per user
// (mean 0, standard deviation 1 over the movies EASE can score; the others
// get −10, far below any), so that train.Config.DistillTemp means the
// same on every dataset. A catalogue too large for EASE leaves
// data.Teacher nil (logged): training goes on without distillation.
func addTeacher(ctx context.Context, data *train.Data, ix *Index, in Inputs, lambda float64, log zerolog.Logger) error {
	nu, nm := len(in.Dataset.Users), len(in.Dataset.Movies)
	if !canTeach(in) {
		log.Warn().Int("users", nu).Int("movies", nm).Msg("catalogue too large for the EASE teacher: training without distillation")
		return nil
	}
	pairs := ix.pairs(in.Train)
	start := time.Now()
	e, err := eval.FitEASE(ctx, nm, pairs, lambda)
	if err != nil {
		return fmt.Errorf("pipeline: distillation teacher: %w", err)
	}
	hist := make([][]int32, nu)
	for _, p := range pairs {
		hist[p.User] = append(hist[p.User], p.Movie)
	}
	scorer := e.Scorer(hist, eval.Popularity(nm, pairs))
	scores := make([]float32, nu*nm)
	for u := range nu {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("pipeline: distillation teacher: %w", err)
		}
		row := scores[u*nm : (u+1)*nm]
		scorer.ScoreAll(row, int32(u))
		standardise(row)
	}
	data.Teacher, data.TeacherMovies = scores, nm
	log.Info().Float64("lambda", lambda).Dur("took_ms", time.Since(start)).Msg("EASE teacher fitted for distillation")
	return nil
}

// canTeach reports whether EASE can be the teacher on in's catalogue. It
// depends on the catalogue alone, so every run of one training (selection,
// refit) decides alike.
func canTeach(in Inputs) bool {
	users, movies := len(in.Dataset.Users), len(in.Dataset.Movies)
	return movies <= eval.MaxEASEMovies && users*movies <= teacherMaxScores
}

// standardise maps the finite values of row to mean 0 and standard
// deviation 1, and the infinite ones to −10.
func standardise(row []float32) {
	var sum, sq float64
	n := 0
	for _, v := range row {
		if !math.IsInf(float64(v), 0) {
			sum += float64(v)
			sq += float64(v) * float64(v)
			n++
		}
	}
	mean := sum / float64(max(n, 1))
	sd := math.Sqrt(max(sq/float64(max(n, 1))-mean*mean, 1e-12))
	for j, v := range row {
		if math.IsInf(float64(v), 0) {
			row[j] = -10
		} else {
			row[j] = float32((float64(v) - mean) / sd)
		}
	}
}
