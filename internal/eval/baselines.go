package eval

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/towerrecall/towerrecall/internal/nn"
)

// The baselines below are the yardsticks printed beside every model
// number: the simplest strong recommenders, scored on the same split with
// the same protocol (Evaluate).

// RecentPopularity scores a movie by its number of train ratings made in
// the newest window (a share of train's time span: the ratings at or after
// newest − window·(newest − oldest)). Ties, common among movies rated
// rarely in the window, are broken by the all-time count; the scores are
// ranks (larger is better), not counts. times[i] is the
// time of train[i]; window is clamped to [0, 1] (1 is Popularity).
func RecentPopularity(numMovies int, train []Pair, times []int64, window float64) (Scorer, error) {
	if len(times) != len(train) {
		return nil, fmt.Errorf("eval: recent popularity: %d times for %d ratings", len(times), len(train))
	}
	if math.IsNaN(window) {
		window = 1
	}
	window = min(max(window, 0), 1)
	var lo, hi int64
	for i, t := range times {
		if i == 0 || t < lo {
			lo = t
		}
		if i == 0 || t > hi {
			hi = t
		}
	}
	from := hi - int64(math.Round(window*float64(hi-lo)))
	recent := make([]float64, numMovies)
	all := make([]float64, numMovies)
	for i, p := range train {
		if p.Movie < 0 || int(p.Movie) >= numMovies {
			return nil, fmt.Errorf("eval: recent popularity: movie index %d out of range (%d movies)", p.Movie, numMovies)
		}
		all[p.Movie]++
		if times[i] >= from {
			recent[p.Movie]++
		}
	}
	// A movie scores its dense rank by (recent, all): a float32 sum of the
	// two counts loses the all-time count's tie-break once recent counts
	// reach the tens and train file lengths the hundreds of thousands.
	order := make([]int32, numMovies)
	for m := range order {
		order[m] = int32(m)
	}
	byCounts := func(a, b int32) int {
		return cmp.Or(cmp.Compare(recent[a], recent[b]), cmp.Compare(all[a], all[b]))
	}
	slices.SortFunc(order, byCounts)
	scores := make([]float32, numMovies)
	for i, m := range order {
		scores[m] = float32(i)
		if i > 0 && byCounts(order[i-1], m) == 0 {
			scores[m] = scores[order[i-1]] // equal counts tie
		}
	}
	return ScorerFunc(func(dst []float32, _ int32) { copy(dst, scores) }), nil
}

// EASE is Steck's embarrassingly shallow autoencoder (WWW 2019): an
// item-item weight matrix B with a zero diagonal, fitted in closed form on
// the binary user × movie matrix X of the train ratings,
// P = (XᵀX + λI)⁻¹, B = −P / diag(P). A user's scores are the sum of the
// rows of B of the movies in their history.
type EASE struct {
	numMovies int
	active    []int32   // movie index of each row/column of w
	pos       []int32   // movie index → position in active, −1 if it has no train rating
	w         []float32 // len(active)² weights, row-major
}

// MaxEASEMovies bounds the movies (with train ratings) EASE is fitted on:
// its Gram matrix holds n² float64 (800 MB at 10,000) and the inversion
// takes ~n³ steps (seconds for a few thousand movies, minutes at 10,000);
// at a million it would not fit any machine.
const MaxEASEMovies = 10_000

// TooLargeError is FitEASE refusing more than MaxEASEMovies movies.
type TooLargeError struct{ Movies int }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("eval: EASE: %d movies with train ratings, more than the %d it is fitted on (an n² matrix, n³ steps)", e.Movies, MaxEASEMovies)
}

// FitEASE fits EASE with L2 weight lambda (> 0) on the train pairs
// (duplicates count once). Only movies with a train rating take part; the
// others can never be recommended by it. More than MaxEASEMovies of them
// is a *TooLargeError. A cancelled ctx returns its error at once, even
// during the inversion, which then finishes in the background and is
// discarded.
func FitEASE(ctx context.Context, numMovies int, train []Pair, lambda float64) (*EASE, error) {
	if !(lambda > 0) || math.IsInf(lambda, 0) {
		return nil, fmt.Errorf("eval: EASE: lambda %g, want > 0", lambda)
	}
	e := &EASE{numMovies: numMovies, pos: make([]int32, numMovies)}
	for i := range e.pos {
		e.pos[i] = -1
	}
	for _, p := range train {
		if p.Movie < 0 || int(p.Movie) >= numMovies {
			return nil, fmt.Errorf("eval: EASE: movie index %d out of range (%d movies)", p.Movie, numMovies)
		}
		e.pos[p.Movie] = 0 // marked; numbered in index order below
	}
	for m, p := range e.pos {
		if p == 0 {
			e.pos[m] = int32(len(e.active))
			e.active = append(e.active, int32(m))
		}
	}
	n := len(e.active)
	if n == 0 {
		return nil, fmt.Errorf("eval: EASE: no train ratings")
	}
	if n > MaxEASEMovies {
		return nil, &TooLargeError{Movies: n}
	}
	byUser := map[int32]map[int32]bool{}
	for _, p := range train {
		if byUser[p.User] == nil {
			byUser[p.User] = map[int32]bool{}
		}
		byUser[p.User][p.Movie] = true
	}
	g := mat.NewSymDense(n, nil)
	raw := g.RawSymmetric()
	items := make([]int, 0, 64)
	for _, ms := range byUser {
		items = items[:0]
		for m := range ms {
			items = append(items, int(e.pos[m]))
		}
		for _, a := range items {
			row := raw.Data[a*raw.Stride:]
			for _, b := range items {
				if b >= a { // the upper triangle is the stored one
					row[b]++
				}
			}
		}
	}
	for i := range n {
		raw.Data[i*raw.Stride+i] += lambda
	}
	var inv mat.SymDense
	done := make(chan error, 1)
	go func() { done <- invert(g, &inv) }()
	select {
	case <-ctx.Done():
	case err := <-done:
		if err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("eval: EASE: %w", err)
	}
	e.w = make([]float32, n*n)
	for i := range n {
		for j := range n {
			if i != j {
				e.w[i*n+j] = float32(-inv.At(i, j) / inv.At(j, j))
			}
		}
	}
	return e, nil
}

// invert sets inv to g⁻¹ (g symmetric positive definite).
func invert(g *mat.SymDense, inv *mat.SymDense) error {
	var ch mat.Cholesky
	if !ch.Factorize(g) {
		return fmt.Errorf("eval: EASE: XᵀX + λI is not positive definite")
	}
	if err := ch.InverseTo(inv); err != nil {
		return fmt.Errorf("eval: EASE: invert: %w", err)
	}
	return nil
}

// Scorer scores user u from history[u] (their movies, by index); a user
// without one, or whose movies all lack train ratings (EASE knows nothing
// of them), is scored by fallback (popularity, in the published tables).
// Movies without train ratings score −Inf.
func (e *EASE) Scorer(history [][]int32, fallback Scorer) Scorer {
	n := len(e.active)
	return ScorerFunc(func(dst []float32, u int32) {
		known := false
		if int(u) < len(history) {
			for _, h := range history[u] {
				known = known || e.pos[h] >= 0
			}
		}
		if !known {
			fallback.ScoreAll(dst, u)
			return
		}
		acc := make([]float32, n)
		for _, h := range history[u] {
			if p := e.pos[h]; p >= 0 {
				nn.Axpy(1, e.w[int(p)*n:int(p+1)*n], acc) // acc += row, as a loop adds it
			}
		}
		for m := range dst {
			dst[m] = float32(math.Inf(-1))
		}
		for j, m := range e.active {
			dst[m] = acc[j]
		}
	})
}
