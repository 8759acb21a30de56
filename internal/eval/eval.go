// Package eval measures recall quality on a held-out split, by the protocol
// of the published numbers (../shared/data/README.md, "The protocol"): full
// ranking over all movies, each test user's train (and valid) movies removed
// from the candidates, every test rating a positive, Recall@K, NDCG@K
// (binary gains) and HitRate@K averaged over test users, plus RMSE for
// models with a rating head and the popularity baseline. It is the last step
// of the data flow (movielens → feature → tower/train → eval) and works on
// dense user and movie indexes, not on external ids.
package eval

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Scorer fills dst (len = number of movies) with the score of every movie
// for user u (a dense user index); higher is better. Evaluate calls it from
// several goroutines at once, so it must be safe for concurrent use.
type Scorer interface {
	ScoreAll(dst []float32, u int32)
}

// A Ranker is a Scorer that can rank a user's movies itself, faster than
// Evaluate ranks ScoreAll's scores (an index scan over a large catalogue).
// Rank appends to dst u's k best movies that excluded (sorted) does not
// hold, best first: exactly the movies and order Evaluate would rank from
// ScoreAll. It reports false when it cannot (Evaluate then scores every
// movie). Like ScoreAll, it must be safe for concurrent use.
type Ranker interface {
	Scorer
	Rank(dst []int32, u int32, k int, excluded []int32) ([]int32, bool)
}

// ScorerFunc adapts a function to Scorer.
type ScorerFunc func(dst []float32, u int32)

// ScoreAll calls f(dst, u).
func (f ScorerFunc) ScoreAll(dst []float32, u int32) { f(dst, u) }

// Pair is one (user, movie) interaction by dense indexes.
type Pair struct {
	User, Movie int32
}

// Triple is one rating by dense indexes, on the 1–5 scale.
type Triple struct {
	User, Movie int32
	Rating      float32
}

// Split is an evaluation split by dense user index: for each user the
// movies to remove from the candidates (train and valid) and the test
// positives, each sorted and without duplicates.
type Split struct {
	NumUsers, NumMovies int
	Exclude             [][]int32
	Test                [][]int32
}

// NewSplit groups pairs by user, sorted and deduplicated. An index out of
// range is a programmer error (indexes come from an encoder that knows the
// sizes) and panics; Pairs builds checked pairs from ratings.
func NewSplit(numUsers, numMovies int, exclude, test []Pair) *Split {
	return &Split{
		NumUsers:  numUsers,
		NumMovies: numMovies,
		Exclude:   group(numUsers, numMovies, exclude, "exclude"),
		Test:      group(numUsers, numMovies, test, "test"),
	}
}

func group(numUsers, numMovies int, ps []Pair, what string) [][]int32 {
	out := make([][]int32, numUsers)
	for _, p := range ps {
		if p.User < 0 || int(p.User) >= numUsers || p.Movie < 0 || int(p.Movie) >= numMovies {
			panic(fmt.Sprintf("eval: %s pair %+v out of range (%d users, %d movies)", what, p, numUsers, numMovies))
		}
		out[p.User] = append(out[p.User], p.Movie)
	}
	for u, ms := range out {
		slices.Sort(ms)
		out[u] = slices.Clip(slices.Compact(ms))
	}
	return out
}

// Validate checks the shape of a split built by hand.
func (sp *Split) Validate() error {
	if sp.NumUsers < 0 || sp.NumMovies <= 0 {
		return fmt.Errorf("eval: split has %d users and %d movies", sp.NumUsers, sp.NumMovies)
	}
	if len(sp.Exclude) != sp.NumUsers || len(sp.Test) != sp.NumUsers {
		return fmt.Errorf("eval: split has %d users but %d exclude and %d test lists", sp.NumUsers, len(sp.Exclude), len(sp.Test))
	}
	for _, lists := range [][][]int32{sp.Exclude, sp.Test} {
		for u, ms := range lists {
			for _, m := range ms {
				if m < 0 || int(m) >= sp.NumMovies {
					return fmt.Errorf("eval: user %d: movie index %d out of range 0–%d", u, m, sp.NumMovies-1)
				}
			}
		}
	}
	return nil
}

// Metrics maps metric names ("recall@10", "ndcg@10", "hit@10", ...) to
// values averaged over the evaluated users; "users" is their number.
type Metrics map[string]float64

// String lists the metrics in a stable order: users, then by K and name.
func (m Metrics) String() string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		an, ak := splitKey(a)
		bn, bk := splitKey(b)
		if c := cmp.Compare(ak, bk); c != 0 {
			return c
		}
		return cmp.Compare(an, bn)
	})
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%.4f", k, m[k])
	}
	return b.String()
}

func splitKey(k string) (string, int) {
	name, ks, ok := strings.Cut(k, "@")
	if !ok {
		return name, -1
	}
	n, _ := strconv.Atoi(ks)
	return name, n
}

// DefaultKs are the cut-offs of the published numbers.
func DefaultKs() []int { return []int{10, 50, 100} }

// Evaluate ranks all movies for every user with test positives, removes the
// user's excluded movies, and averages Recall@K (hits / number of test
// movies), NDCG@K (binary gains; the ideal has min(K, #test) hits) and
// HitRate@K over those users. For each K it also reports "recall_se@K", the
// standard error of recall@K's mean (the users' sample standard deviation
// over √users; 0 for one user): how far another sample of users from the
// same population would move it. Equal scores rank the lower movie index
// first; NaN counts as -Inf. Users are scored in parallel by workers
// goroutines (≤ 0 means GOMAXPROCS); the result does not depend on workers.
func Evaluate(ctx context.Context, s Scorer, sp *Split, ks []int, workers int) (Metrics, error) {
	m, _, err := EvaluateUsers(ctx, s, sp, ks, workers)
	return m, err
}

// EvaluateUsers is Evaluate, also returning each evaluated user's Recall@K
// at the smallest K, in user index order: two scorers' on one split pair
// up user by user (Lead).
func EvaluateUsers(ctx context.Context, s Scorer, sp *Split, ks []int, workers int) (Metrics, []float64, error) {
	if err := sp.Validate(); err != nil {
		return nil, nil, err
	}
	ks = slices.Clone(ks)
	slices.Sort(ks)
	ks = slices.Compact(ks)
	if len(ks) == 0 || ks[0] <= 0 {
		return nil, nil, fmt.Errorf("eval: cut-offs %v: want at least one K > 0", ks)
	}
	kmax := min(ks[len(ks)-1], sp.NumMovies)
	disc := make([]float64, kmax+1) // disc[i] = sum of 1/log2(j+2) for j < i
	for i := range kmax {
		disc[i+1] = disc[i] + 1/math.Log2(float64(i+2))
	}
	stride := 3 * len(ks)
	res, users, err := perUser(ctx, sp, workers, stride, func() *worker { return newWorker(sp.NumMovies, kmax) },
		func(w *worker, u int32, out []float64) { w.user(s, sp, u, ks, disc, out) })
	if err != nil {
		return nil, nil, err
	}
	m := Metrics{"users": float64(users)}
	for j, k := range ks {
		kk := strconv.Itoa(k)
		m["recall@"+kk], m["recall_se@"+kk] = meanSE(column(res, stride, 3*j))
		m["ndcg@"+kk], _ = meanSE(column(res, stride, 3*j+1))
		m["hit@"+kk], _ = meanSE(column(res, stride, 3*j+2))
	}
	return m, column(res, stride, 0), nil
}

// Lead is a's lead over b at cut-off k: the mean over users of a − b, per-user
// Recall@k of two EvaluateUsers on one split, as "recall@k", with its
// paired standard error as "recall_se@k" (users hard for both scorers do
// not count as noise, as they would in two separate standard errors).
func Lead(a, b []float64, k int) (Metrics, error) {
	if len(a) != len(b) {
		return nil, fmt.Errorf("eval: lead: %d users against %d: not one split's", len(a), len(b))
	}
	d := make([]float64, len(a))
	for i := range a {
		d[i] = a[i] - b[i]
	}
	kk := strconv.Itoa(k)
	m := Metrics{}
	m["recall@"+kk], m["recall_se@"+kk] = meanSE(d)
	return m, nil
}

// meanSE returns the mean of v, added in order, and its standard error
// (0 with fewer than two values).
func meanSE(v []float64) (mean, se float64) {
	for _, x := range v {
		mean += x
	}
	n := float64(len(v))
	mean /= n
	if len(v) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / (n - 1) / n)
}

// column returns the j-th of every stride values of res.
func column(res []float64, stride, j int) []float64 {
	out := make([]float64, 0, len(res)/stride)
	for i := j; i < len(res); i += stride {
		out = append(out, res[i])
	}
	return out
}

// perUser runs rank for every user of sp with test movies, in parallel
// (workers goroutines, ≤ 0: GOMAXPROCS, each with its own state from
// newState), each call writing stride values to out, and returns them,
// user after user in index order, so that they do not depend on
// scheduling, and the number of users.
func perUser[S any](ctx context.Context, sp *Split, workers, stride int, newState func() S, rank func(s S, u int32, out []float64)) ([]float64, int, error) {
	var users []int32
	for u, t := range sp.Test {
		if len(t) > 0 {
			users = append(users, int32(u))
		}
	}
	if len(users) == 0 {
		return nil, 0, errors.New("eval: the split has no test users")
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	res := make([]float64, len(users)*stride)
	const chunk = 16
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, len(users)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := newState()
			for ctx.Err() == nil {
				lo := int(next.Add(chunk)) - chunk
				if lo >= len(users) {
					return
				}
				for i := lo; i < min(lo+chunk, len(users)); i++ {
					rank(st, users[i], res[i*stride:(i+1)*stride])
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("eval: %w", err)
	}
	return res, len(users), nil
}

// worker holds one goroutine's buffers; user allocates nothing.
type worker struct {
	scores   []float32
	excluded []int32 // excluded[m] == stamp: m is excluded for the current user
	positive []int32 // positive[m] == stamp: m is a test movie of the current user
	stamp    int32
	top      topK
}

func newWorker(numMovies, k int) *worker {
	return &worker{
		scores:   make([]float32, numMovies),
		excluded: make([]int32, numMovies),
		positive: make([]int32, numMovies),
		top:      newTopK(k),
	}
}

// user evaluates user u and writes recall, ndcg and hit for each K to out.
func (w *worker) user(s Scorer, sp *Split, u int32, ks []int, disc []float64, out []float64) {
	w.stamp++
	for _, m := range sp.Exclude[u] {
		w.excluded[m] = w.stamp
	}
	test := sp.Test[u]
	for _, m := range test {
		w.positive[m] = w.stamp
	}
	var ranked []int32
	ok := false
	if r, isRanker := s.(Ranker); isRanker {
		ranked, ok = r.Rank(w.top.out[:0], u, cap(w.top.keys), sp.Exclude[u])
		w.top.out = ranked[:0]
	}
	if !ok {
		s.ScoreAll(w.scores, u)
		w.top.reset()
		for m, v := range w.scores {
			if w.excluded[m] != w.stamp {
				w.top.push(v, int32(m))
			}
		}
		ranked = w.top.sorted()
	}
	for j, k := range ks {
		hits, dcg := 0, 0.0
		for i, m := range ranked[:min(k, len(ranked))] {
			if w.positive[m] == w.stamp {
				hits++
				dcg += disc[i+1] - disc[i]
			}
		}
		out[3*j] = float64(hits) / float64(len(test))
		out[3*j+1] = dcg / disc[min(k, len(test), len(disc)-1)]
		if hits > 0 {
			out[3*j+2] = 1
		}
	}
}

// topK keeps the k best (score, index) pairs seen, as a min-heap whose
// root is the worst kept. Each pair is packed into one uint64 that orders
// like the ranking (score first, then the lower index), so a comparison is
// one integer compare.
type topK struct {
	keys []uint64
	out  []int32
}

func newTopK(k int) topK {
	return topK{keys: make([]uint64, 0, k), out: make([]int32, 0, k)}
}

func (t *topK) reset() { t.keys = t.keys[:0] }

// rankKey packs score s and index m: a larger key ranks higher. NaN counts
// as -Inf and -0 as 0.
func rankKey(s float32, m int32) uint64 {
	if s != s {
		s = float32(math.Inf(-1))
	}
	if s == 0 {
		s = 0
	}
	b := math.Float32bits(s)
	if b>>31 != 0 {
		b = ^b
	} else {
		b |= 1 << 31
	}
	return uint64(b)<<32 | uint64(^uint32(m))
}

func (t *topK) push(s float32, m int32) {
	key := rankKey(s, m)
	h := t.keys
	if len(h) < cap(h) {
		h = append(h, key)
		for i := len(h) - 1; i > 0; {
			p := (i - 1) / 2
			if h[i] >= h[p] {
				break
			}
			h[i], h[p] = h[p], h[i]
			i = p
		}
		t.keys = h
		return
	}
	if len(h) == 0 || key <= h[0] {
		return
	}
	h[0] = key
	down(h, 0)
}

// down restores the min-heap order of h below i.
func down(h []uint64, i int) {
	n := len(h)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if c+1 < n && h[c+1] < h[c] {
			c++
		}
		if h[i] <= h[c] {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// sorted returns the kept indexes best first (heap sort in place; the
// heap is consumed).
func (t *topK) sorted() []int32 {
	h := t.keys
	for n := len(h) - 1; n > 0; n-- {
		h[0], h[n] = h[n], h[0]
		down(h[:n], 0)
	}
	t.out = t.out[:0]
	for _, k := range h {
		t.out = append(t.out, int32(^uint32(k)))
	}
	return t.out
}

// Popularity is the baseline scorer: a movie's score is its number of
// train ratings. It panics on a movie index out of range.
func Popularity(numMovies int, train []Pair) Scorer {
	counts := make([]float32, numMovies)
	for _, p := range train {
		if p.Movie < 0 || int(p.Movie) >= numMovies {
			panic(fmt.Sprintf("eval: popularity: movie index %d out of range (%d movies)", p.Movie, numMovies))
		}
		counts[p.Movie]++
	}
	return ScorerFunc(func(dst []float32, _ int32) { copy(dst, counts) })
}

// RMSE is the root mean squared error of pred over test, on the 1–5 scale
// (pred should return ratings on that scale). It is NaN for an empty test.
func RMSE(pred func(u, m int32) float32, test []Triple) float64 {
	if len(test) == 0 {
		return math.NaN()
	}
	sum := 0.0
	for _, t := range test {
		d := float64(pred(t.User, t.Movie)) - float64(t.Rating)
		sum += d * d
	}
	return math.Sqrt(sum / float64(len(test)))
}
