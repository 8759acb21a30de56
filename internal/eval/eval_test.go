package eval

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func scores(v ...float32) Scorer {
	return ScorerFunc(func(dst []float32, _ int32) { copy(dst, v) })
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func checkMetrics(t *testing.T, got, want Metrics) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok || !near(g, w) {
			t.Errorf("%s = %v, want %v (all: %v)", k, g, w, got)
		}
	}
}

// TestEvaluateByHand checks one user on five movies against values worked
// out by hand.
func TestEvaluateByHand(t *testing.T) {
	t.Parallel()
	l3, l5 := 1/math.Log2(3), 1/math.Log2(5)
	tests := []struct {
		name    string
		scorer  Scorer
		exclude []Pair
		test    []Pair
		ks      []int
		want    Metrics
	}{
		{
			// Ranking 0 1 2 3 4; movie 1 excluded → 0 2 3 4; positives 2, 4.
			name:    "exclusion",
			scorer:  scores(0.9, 0.8, 0.7, 0.6, 0.5),
			exclude: []Pair{{0, 1}},
			test:    []Pair{{0, 2}, {0, 4}},
			ks:      []int{1, 2, 4, 10},
			want: Metrics{
				"users":    1,
				"recall@1": 0, "ndcg@1": 0, "hit@1": 0,
				"recall@2": 0.5, "ndcg@2": l3 / (1 + l3), "hit@2": 1,
				"recall@4": 1, "ndcg@4": (l3 + l5) / (1 + l3), "hit@4": 1,
				"recall@10": 1, "ndcg@10": (l3 + l5) / (1 + l3), "hit@10": 1,
			},
		},
		{
			// Without exclusion movie 1 takes rank 2: 0 1 2 3 4.
			name:   "no exclusion",
			scorer: scores(0.9, 0.8, 0.7, 0.6, 0.5),
			test:   []Pair{{0, 2}, {0, 4}},
			ks:     []int{2, 3, 5},
			want: Metrics{
				"recall@2": 0, "ndcg@2": 0, "hit@2": 0,
				"recall@3": 0.5, "ndcg@3": 0.5 / (1 + l3),
				"recall@5": 1, "ndcg@5": (0.5 + 1/math.Log2(6)) / (1 + l3),
			},
		},
		{
			name:   "ties go to the lower index",
			scorer: scores(1, 1, 1, 1, 1),
			test:   []Pair{{0, 0}},
			ks:     []int{1},
			want:   Metrics{"recall@1": 1, "ndcg@1": 1, "hit@1": 1},
		},
		{
			name:   "ties: higher index loses",
			scorer: scores(1, 1, 1, 1, 1),
			test:   []Pair{{0, 1}},
			ks:     []int{1, 2},
			want:   Metrics{"recall@1": 0, "recall@2": 1, "ndcg@2": l3},
		},
		{
			name:   "NaN ranks last",
			scorer: scores(float32(math.NaN()), -1, -4, -2, -3),
			test:   []Pair{{0, 0}},
			ks:     []int{4, 5},
			want:   Metrics{"recall@4": 0, "recall@5": 1},
		},
		{
			name:    "everything excluded but one",
			scorer:  scores(5, 4, 3, 2, 1),
			exclude: []Pair{{0, 0}, {0, 1}, {0, 2}, {0, 3}},
			test:    []Pair{{0, 4}},
			ks:      []int{1},
			want:    Metrics{"recall@1": 1, "ndcg@1": 1, "hit@1": 1},
		},
		{
			name:   "duplicate test pairs count once",
			scorer: scores(5, 4, 3, 2, 1),
			test:   []Pair{{0, 0}, {0, 0}, {0, 3}},
			ks:     []int{1},
			want:   Metrics{"recall@1": 0.5, "ndcg@1": 1, "hit@1": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sp := NewSplit(1, 5, tt.exclude, tt.test)
			got, err := Evaluate(context.Background(), tt.scorer, sp, tt.ks, 1)
			if err != nil {
				t.Fatal(err)
			}
			checkMetrics(t, got, tt.want)
		})
	}
}

// TestPopularityToy: counts m0=3, m1=1, m2=1, m3=0.
//
//	user 0 (saw 0, 1): candidates 2 3 → test 2 at rank 1.
//	user 1 (saw 0, 2): candidates 1 3 → test 1 at rank 1.
//	user 2 (saw 0):    candidates 1 2 3 (1 and 2 tie) → test 3 at rank 3.
//	user 3: no test ratings, not evaluated.
func TestPopularityToy(t *testing.T) {
	t.Parallel()
	train := []Pair{{0, 0}, {0, 1}, {1, 0}, {1, 2}, {2, 0}, {3, 3}}
	train = train[:5] // user 3's train rating would change the counts; keep it out
	test := []Pair{{0, 2}, {1, 1}, {2, 3}}
	sp := NewSplit(4, 4, train, test)
	got, err := Evaluate(context.Background(), Popularity(4, train), sp, []int{1, 3}, 2)
	if err != nil {
		t.Fatal(err)
	}
	checkMetrics(t, got, Metrics{
		"users":    3,
		"recall@1": 2.0 / 3, "ndcg@1": 2.0 / 3, "hit@1": 2.0 / 3,
		"recall@3": 1, "ndcg@3": (1 + 1 + 0.5) / 3, "hit@3": 1,
		// recall@1 per user 1, 1, 0: sample variance 1/3, over 3 users
		"recall_se@1": 1.0 / 3, "recall_se@3": 0,
	})
	if len(got) != 9 {
		t.Errorf("keys: %v", got)
	}
}

// randomSplit gives every user 5–40 train and 1–10 test movies.
func randomSplit(rng *rand.Rand, users, movies int) (*Split, []Pair) {
	var train, test []Pair
	for u := range users {
		perm := rng.Perm(movies)
		nTrain, nTest := 5+rng.IntN(36), 1+rng.IntN(10)
		for _, m := range perm[:nTrain] {
			train = append(train, Pair{int32(u), int32(m)})
		}
		for _, m := range perm[nTrain : nTrain+nTest] {
			test = append(test, Pair{int32(u), int32(m)})
		}
	}
	return NewSplit(users, movies, train, test), train
}

func TestOracle(t *testing.T) {
	t.Parallel()
	sp, _ := randomSplit(rand.New(rand.NewPCG(1, 2)), 200, 300)
	oracle := ScorerFunc(func(dst []float32, u int32) {
		clear(dst)
		for _, m := range sp.Test[u] {
			dst[m] = 1
		}
	})
	got, err := Evaluate(context.Background(), oracle, sp, DefaultKs(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"recall@10", "ndcg@10", "hit@10", "recall@100", "ndcg@100"} {
		if !near(got[k], 1) {
			t.Errorf("%s = %v, want 1", k, got[k])
		}
	}
	if got["users"] != 200 {
		t.Errorf("users = %v", got["users"])
	}
}

// hashScorer gives deterministic pseudo-random scores with many ties.
func hashScorer(dst []float32, u int32) {
	for m := range dst {
		h := uint32(u)*2654435761 ^ uint32(m)*40503
		h ^= h >> 13
		h *= 0x5bd1e995
		dst[m] = float32(h % 50)
	}
}

func TestEvaluateWorkersDeterministic(t *testing.T) {
	t.Parallel()
	sp, _ := randomSplit(rand.New(rand.NewPCG(3, 4)), 500, 400)
	var first Metrics
	for _, w := range []int{1, 2, 3, 8, 1000} {
		got, err := Evaluate(context.Background(), ScorerFunc(hashScorer), sp, []int{100, 10, 50, 10}, w)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = got
			continue
		}
		if !reflect.DeepEqual(got, first) {
			t.Fatalf("workers %d: %v, want %v", w, got, first)
		}
	}
}

// TestTopKMatchesSort compares the heap selection with a full sort.
func TestTopKMatchesSort(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 200 {
		n := 1 + rng.IntN(300)
		k := 1 + rng.IntN(120)
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.IntN(20)) // many ties
			if rng.IntN(50) == 0 {
				v[i] = float32(math.NaN())
			}
		}
		top := newTopK(k)
		for i, s := range v {
			top.push(s, int32(i))
		}
		got := top.sorted()
		want := make([]int32, n)
		for i := range want {
			want[i] = int32(i)
		}
		key := func(i int32) float32 {
			if v[i] != v[i] {
				return float32(math.Inf(-1))
			}
			return v[i]
		}
		slices.SortStableFunc(want, func(a, b int32) int {
			switch {
			case key(a) > key(b):
				return -1
			case key(a) < key(b):
				return 1
			}
			return 0
		})
		want = want[:min(k, n)]
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d (n=%d k=%d): got %v, want %v", trial, n, k, got, want)
		}
	}
}

func TestEvaluateErrors(t *testing.T) {
	t.Parallel()
	good := NewSplit(2, 3, nil, []Pair{{0, 1}})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		sp   *Split
		ks   []int
		err  string
	}{
		{"no ks", context.Background(), good, nil, "want at least one K"},
		{"zero k", context.Background(), good, []int{0, 10}, "want at least one K"},
		{"no test users", context.Background(), NewSplit(2, 3, []Pair{{0, 1}}, nil), []int{10}, "no test users"},
		{"bad shape", context.Background(), &Split{NumUsers: 2, NumMovies: 3, Test: make([][]int32, 1)}, []int{10}, "2 users but 0 exclude and 1 test"},
		{"bad index", context.Background(), &Split{NumUsers: 1, NumMovies: 3, Exclude: [][]int32{{3}}, Test: [][]int32{{0}}}, []int{10}, "movie index 3 out of range"},
		{"cancelled", cancelled, good, []int{10}, "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Evaluate(tt.ctx, scores(1, 2, 3), tt.sp, tt.ks, 2)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error = %v, want %q", err, tt.err)
			}
		})
	}
}

func TestNewSplit(t *testing.T) {
	t.Parallel()
	sp := NewSplit(3, 10, []Pair{{2, 5}, {2, 1}, {2, 5}}, []Pair{{0, 9}, {0, 3}, {0, 9}})
	want := &Split{NumUsers: 3, NumMovies: 10, Exclude: [][]int32{nil, nil, {1, 5}}, Test: [][]int32{{3, 9}, nil, nil}}
	if !reflect.DeepEqual(sp, want) {
		t.Fatalf("got %+v", sp)
	}
	defer func() {
		if recover() == nil {
			t.Error("out-of-range pair did not panic")
		}
	}()
	NewSplit(3, 10, []Pair{{3, 0}}, nil)
}

func TestRMSE(t *testing.T) {
	t.Parallel()
	three := func(u, m int32) float32 { return 3 }
	if got := RMSE(three, []Triple{{0, 0, 1}, {0, 1, 5}}); !near(got, 2) {
		t.Errorf("RMSE = %v, want 2", got)
	}
	if got := RMSE(three, []Triple{{0, 0, 3}}); got != 0 {
		t.Errorf("RMSE = %v, want 0", got)
	}
	if got := RMSE(three, nil); !math.IsNaN(got) {
		t.Errorf("RMSE of nothing = %v, want NaN", got)
	}
}

func TestMetricsString(t *testing.T) {
	t.Parallel()
	m := Metrics{"users": 3, "recall@50": 0.5, "ndcg@10": 0.25, "recall@10": 0.125}
	if got, want := m.String(), "users=3.0000 ndcg@10=0.2500 recall@10=0.1250 recall@50=0.5000"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestUserAllocatesNothing(t *testing.T) {
	sp, train := randomSplit(rand.New(rand.NewPCG(7, 8)), 50, 500)
	pop := Popularity(500, train)
	w := newWorker(500, 100)
	ks := DefaultKs()
	disc := make([]float64, 101)
	for i := range 100 {
		disc[i+1] = disc[i] + 1/math.Log2(float64(i+2))
	}
	out := make([]float64, 9)
	allocs := testing.AllocsPerRun(100, func() { w.user(pop, sp, 7, ks, disc, out) })
	if allocs != 0 {
		t.Errorf("%v allocations per user", allocs)
	}
}

func BenchmarkEvaluate(b *testing.B) {
	// ml-1m user-temporal size: 3,000 test users × 3,706 movies, scored
	// by 8-dim dot products like the towers.
	const users, movies, dim = 3000, 3706, 8
	rng := rand.New(rand.NewPCG(9, 10))
	sp, _ := randomSplit(rng, users, movies)
	uv, mv := make([]float32, users*dim), make([]float32, movies*dim)
	for i := range uv {
		uv[i] = float32(rng.NormFloat64())
	}
	for i := range mv {
		mv[i] = float32(rng.NormFloat64())
	}
	dot := ScorerFunc(func(dst []float32, u int32) {
		q := uv[int(u)*dim : int(u+1)*dim]
		for m := range dst {
			row := mv[m*dim : (m+1)*dim]
			s := float32(0)
			for i, x := range q {
				s += x * row[i]
			}
			dst[m] = s
		}
	})
	for _, workers := range []int{1, 2} {
		b.Run(map[int]string{1: "workers=1", 2: "workers=2"}[workers], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Evaluate(context.Background(), dot, sp, DefaultKs(), workers); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// fakeRanker ranks by its own list when ok, and declines otherwise; its
// ScoreAll scores hashScorer's.
type fakeRanker struct {
	ok    bool
	calls *int
}

func (f fakeRanker) ScoreAll(dst []float32, u int32) { hashScorer(dst, u) }

func (f fakeRanker) Rank(dst []int32, u int32, k int, excluded []int32) ([]int32, bool) {
	*f.calls++
	if !f.ok {
		return dst, false
	}
	scores := make([]float32, 400)
	hashScorer(scores, u)
	t := newTopK(k)
	for m, v := range scores {
		if !slices.Contains(excluded, int32(m)) {
			t.push(v, int32(m))
		}
	}
	return append(dst, t.sorted()...), true
}

// TestEvaluateRanker checks that Evaluate takes a Ranker's ranking when it
// gives one and scores every movie when it declines, with the same metrics.
func TestEvaluateRanker(t *testing.T) {
	t.Parallel()
	sp, _ := randomSplit(rand.New(rand.NewPCG(13, 14)), 100, 400)
	want, err := Evaluate(context.Background(), ScorerFunc(hashScorer), sp, []int{10, 50}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range []bool{true, false} {
		calls := 0
		got, err := Evaluate(context.Background(), fakeRanker{ok: ok, calls: &calls}, sp, []int{10, 50}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ranker ok=%v: %v, want %v", ok, got, want)
		}
		if calls != 100 {
			t.Errorf("ranker ok=%v: Rank called %d times, want once per user (100)", ok, calls)
		}
	}
}

// TestLead checks the paired lead against hand-computed values, and that
// EvaluateUsers' per-user values are the ones its mean is taken over.
func TestLead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		a, b     []float64
		lead, se float64
		err      bool
	}{
		// differences 1, 0, 0: mean 1/3, sample variance 1/3, over 3 users
		{name: "three users", a: []float64{1, 0, 0.5}, b: []float64{0, 0, 0.5}, lead: 1.0 / 3, se: 1.0 / 3},
		// a user hard for both adds no noise: the same lead everywhere
		{name: "constant lead", a: []float64{0.5, 0.25, 1}, b: []float64{0.25, 0, 0.75}, lead: 0.25, se: 0},
		{name: "one user", a: []float64{1}, b: []float64{0.5}, lead: 0.5, se: 0},
		{name: "behind", a: []float64{0, 0}, b: []float64{1, 0}, lead: -0.5, se: 0.5},
		{name: "two splits", a: []float64{1, 0}, b: []float64{1}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Lead(tc.a, tc.b, 10)
			if tc.err {
				if err == nil {
					t.Fatalf("Lead = %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkMetrics(t, got, Metrics{"recall@10": tc.lead, "recall_se@10": tc.se})
			if len(got) != 2 {
				t.Errorf("keys: %v", got)
			}
		})
	}

	rng := rand.New(rand.NewPCG(3, 4))
	sp, train := randomSplit(rng, 50, 80)
	m, per, err := EvaluateUsers(context.Background(), Popularity(80, train), sp, []int{20, 5}, 2)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, v := range per {
		sum += v
	}
	if len(per) != int(m["users"]) || math.Abs(sum/float64(len(per))-m["recall@5"]) > 1e-12 {
		t.Errorf("%d per-user values with mean %v; metrics %v", len(per), sum/float64(len(per)), m)
	}
}
