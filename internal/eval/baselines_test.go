package eval

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
)

func TestRecentPopularity(t *testing.T) {
	t.Parallel()
	// Times span 0–100; a window of 0.3 counts the ratings at or after 70.
	train := []Pair{{0, 0}, {1, 0}, {2, 0}, {0, 1}, {1, 2}, {2, 2}, {3, 3}}
	times := []int64{0, 10, 20, 70, 80, 100, 90}
	s, err := RecentPopularity(5, train, times, 0.3)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, 5)
	s.ScoreAll(got, 0)
	// recent counts: movie 0: 0, 1: 1, 2: 2, 3: 1, 4: 0; all-time 3, 1, 2, 1, 0 break ties.
	order := ranking(got)
	if want := []int{2, 1, 3, 0, 4}; !slices.Equal(order, want) {
		t.Errorf("ranking %v (scores %v), want %v", order, got, want)
	}
	if got[1] != got[3] {
		t.Errorf("scores %v: movies 1 and 3 (1 recent, 1 in all) do not tie", got)
	}
	// The whole span is popularity.
	s, _ = RecentPopularity(5, train, times, 1)
	s.ScoreAll(got, 0)
	if order := ranking(got); !slices.Equal(order[:3], []int{0, 2, 1}) {
		t.Errorf("window 1 ranking %v, want popularity 0, 2, 1, …", order)
	}
	if _, err := RecentPopularity(5, train, times[:2], 0.3); err == nil {
		t.Error("mismatched times accepted")
	}
}

// ranking returns movie indexes by descending score, ties by index.
func ranking(scores []float32) []int {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case scores[a] > scores[b]:
			return -1
		case scores[a] < scores[b]:
			return 1
		}
		return 0
	})
	return idx
}

func TestEASEByHand(t *testing.T) {
	t.Parallel()
	// X = [[1 1], [1 0]] (movie 2 unrated), λ = 1: XᵀX + I = [[3 1], [1 2]],
	// P = ⅕·[[2 −1], [−1 3]], B = −P/diag(P): B01 = 1/3, B10 = 1/2.
	e, err := FitEASE(context.Background(), 3, []Pair{{0, 0}, {0, 1}, {1, 0}, {1, 0}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		a, b int32
		want float64
	}{{0, 1, 1.0 / 3}, {1, 0, 0.5}, {0, 0, 0}, {1, 1, 0}, {0, 2, 0}} {
		if got := e.Weight(c.a, c.b); math.Abs(float64(got)-c.want) > 1e-6 {
			t.Errorf("B[%d][%d] = %g, want %g", c.a, c.b, got, c.want)
		}
	}
	pop := Popularity(3, []Pair{{0, 1}})
	s := e.Scorer([][]int32{{0}, {1}, nil}, pop)
	got := make([]float32, 3)
	s.ScoreAll(got, 0)
	if math.Abs(float64(got[1])-1.0/3) > 1e-6 || got[0] != 0 || !math.IsInf(float64(got[2]), -1) {
		t.Errorf("user with movie 0: scores %v, want [0 1/3 −Inf]", got)
	}
	s.ScoreAll(got, 1)
	if math.Abs(float64(got[0])-0.5) > 1e-6 {
		t.Errorf("user with movie 1: scores %v, want movie 0 at 1/2", got)
	}
	s.ScoreAll(got, 2) // no history: the fallback
	if !slices.Equal(got, []float32{0, 1, 0}) {
		t.Errorf("user without history: scores %v, want popularity [0 1 0]", got)
	}
	if _, err := FitEASE(context.Background(), 3, []Pair{{0, 0}}, 0); err == nil {
		t.Error("λ = 0 accepted")
	}
	if _, err := FitEASE(context.Background(), 3, nil, 1); err == nil {
		t.Error("no ratings accepted")
	}
}

// TestFitEASETooLarge: more movies with train ratings than
// MaxEASEMovies is a *TooLargeError at once (no n² matrix is made), in a
// catalogue of more; fewer of the same ratings fit.
func TestFitEASETooLarge(t *testing.T) {
	t.Parallel()
	var pairs []Pair
	for m := range int32(MaxEASEMovies + 1) {
		pairs = append(pairs, Pair{User: m % 3, Movie: m})
	}
	_, err := FitEASE(context.Background(), MaxEASEMovies+5, pairs, 500)
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Movies != MaxEASEMovies+1 {
		t.Fatalf("err = %v, want a *TooLargeError of %d movies", err, MaxEASEMovies+1)
	}
	if _, err := FitEASE(context.Background(), MaxEASEMovies+5, pairs[:300], 500); err != nil {
		t.Fatalf("300 movies: %v", err)
	}
}

// A cancelled context stops the fit with its error (train's and eval's
// Ctrl-C), rather than waiting for the inversion.
func TestFitEASECancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	train := []Pair{{0, 0}, {0, 1}, {1, 0}}
	if _, err := FitEASE(ctx, 2, train, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("FitEASE with a cancelled context: err %v, want context.Canceled", err)
	}
	if _, err := FitEASE(context.Background(), 2, train, 1); err != nil {
		t.Errorf("the same fit, not cancelled: %v", err)
	}
}

// On a tiny split EASE recommends the co-rated movie, as it should.
func TestEASEEvaluate(t *testing.T) {
	t.Parallel()
	// Movies 0 and 1 always go together, 2 and 3 too; popularity favours 2.
	var train []Pair
	for u := int32(0); u < 6; u++ {
		if u < 2 {
			train = append(train, Pair{u, 0}, Pair{u, 1})
		} else {
			train = append(train, Pair{u, 2}, Pair{u, 3})
		}
	}
	train = append(train, Pair{6, 0}, Pair{7, 2})
	e, err := FitEASE(context.Background(), 4, train, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	// User 6 holds movie 0 and will watch movie 1; user 7 holds 2, will watch 3.
	sp := NewSplit(8, 4, train, []Pair{{6, 1}, {7, 3}})
	history := make([][]int32, 8)
	for _, p := range train {
		history[p.User] = append(history[p.User], p.Movie)
	}
	m, err := Evaluate(t.Context(), e.Scorer(history, Popularity(4, train)), sp, []int{1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if m["recall@1"] != 1 {
		t.Errorf("EASE recall@1 = %g, want 1", m["recall@1"])
	}
	m, _ = Evaluate(t.Context(), Popularity(4, train), sp, []int{1}, 1)
	if m["recall@1"] != 0.5 {
		t.Errorf("popularity recall@1 = %g, want 0.5", m["recall@1"])
	}
}

// Weight returns B's weight from movie a to movie b (0 for a movie
// without train ratings), for the tests.
func (e *EASE) Weight(a, b int32) float32 {
	pa, pb := e.pos[a], e.pos[b]
	if pa < 0 || pb < 0 {
		return 0
	}
	return e.w[int(pa)*len(e.active)+int(pb)]
}

// TestRecentPopularityTiesAtScale: on a train file of ML-1M's size, two
// movies with the same recent count are still ordered by their all-time
// counts, however close (a float32 sum of the two counts lost the
// difference and ranked by index).
func TestRecentPopularityTiesAtScale(t *testing.T) {
	t.Parallel()
	var train []Pair
	var times []int64
	add := func(m int32, n int, at int64) {
		for i := range n {
			train = append(train, Pair{int32(len(train)), m})
			times = append(times, at+int64(i%2))
		}
	}
	add(2, 300_000, 0) // old ratings of movie 2: a long train file
	add(0, 300, 1000)  // movies 0 and 1: 300 recent ratings each
	add(1, 300, 1000)
	add(1, 1, 0) // and movie 1 one old rating more
	s, err := RecentPopularity(3, train, times, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, 3)
	s.ScoreAll(got, 0)
	if order := ranking(got); !slices.Equal(order, []int{1, 0, 2}) {
		t.Errorf("ranking %v (scores %v), want 1 (300 recent, 301 in all), 0 (300, 300), 2 (0 recent)", order, got)
	}
}

// TestEASEFallback: a user whose history holds no movie EASE was fitted on
// (only movies without train ratings, such as a valid-only user's new
// movies) has nothing to score from and is scored by the fallback, like a
// user without a history, not by all-zero scores ranked by index.
func TestEASEFallback(t *testing.T) {
	t.Parallel()
	train := []Pair{{0, 0}, {0, 1}, {1, 1}, {2, 1}} // popularity: movie 1, then 0
	e, err := FitEASE(context.Background(), 3, train, 1)
	if err != nil {
		t.Fatal(err)
	}
	pop := Popularity(3, train)
	want := make([]float32, 3)
	pop.ScoreAll(want, 3)
	s := e.Scorer([][]int32{3: {2}, 4: nil}, pop)
	got := make([]float32, 3)
	for _, u := range []int32{3, 4, 5} { // movie 2 only; empty; no entry
		s.ScoreAll(got, u)
		if !slices.Equal(got, want) {
			t.Errorf("user %d: scores %v, want the fallback's %v", u, got, want)
		}
	}
}
