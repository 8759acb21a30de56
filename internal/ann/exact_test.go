package ann

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// bruteForce is the reference: score everything with Dot, sort, cut.
func bruteForce(vecs []float32, dim int, q []float32, k int, accept Filter) []Result {
	var all []Result
	for i := range len(vecs) / dim {
		if accept != nil && !accept(int32(i)) {
			continue
		}
		all = append(all, Result{ID: int32(i), Score: Dot(q, vecs[i*dim:(i+1)*dim])})
	}
	slices.SortFunc(all, func(a, b Result) int {
		if worse(a, b) {
			return 1
		}
		if worse(b, a) {
			return -1
		}
		return 0
	})
	return all[:min(k, len(all))]
}

func TestExactTable(t *testing.T) {
	t.Parallel()
	vecs := []float32{
		1, 0, // 0
		0, 1, // 1
		1, 0, // 2: ties with 0
		-1, 0, // 3
		0.5, 0.5, // 4
		0, 0, // 5: zero vector
	}
	ex, err := NewExact(vecs, 2)
	if err != nil {
		t.Fatal(err)
	}
	even := func(id int32) bool { return id%2 == 0 }
	none := func(int32) bool { return false }
	tests := []struct {
		name   string
		q      []float32
		k      int
		accept Filter
		want   []Result
	}{
		{"ties by lower id", []float32{1, 0}, 3, nil, []Result{{0, 1}, {2, 1}, {4, 0.5}}},
		{"k > n returns n", []float32{0, 1}, 100, nil, []Result{{1, 1}, {4, 0.5}, {0, 0}, {2, 0}, {3, 0}, {5, 0}}},
		{"filter", []float32{0, 1}, 2, even, []Result{{4, 0.5}, {0, 0}}},
		{"filter rejects all", []float32{0, 1}, 2, none, []Result{}},
		{"zero query scores 0, ids ascending", []float32{0, 0}, 3, nil, []Result{{0, 0}, {1, 0}, {2, 0}}},
		{"negative", []float32{-2, 0}, 1, nil, []Result{{3, 2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ex.Search(nil, tc.q, tc.k, tc.accept)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestExactRandomised(t *testing.T) {
	t.Parallel()
	const seed = 42
	rng := rand.New(rand.NewPCG(seed, 0))
	for trial := range 300 {
		dim := []int{1, 3, 8, 17}[rng.IntN(4)]
		n := 1 + rng.IntN(300)
		vecs := make([]float32, n*dim)
		for i := range vecs {
			// Coarse values make ties common.
			vecs[i] = float32(rng.IntN(7)-3) / 2
		}
		ex, err := NewExact(vecs, dim)
		if err != nil {
			t.Fatal(err)
		}
		q := make([]float32, dim)
		for i := range q {
			q[i] = float32(rng.NormFloat64())
		}
		k := 1 + rng.IntN(n+5)
		var accept Filter
		if rng.IntN(2) == 0 {
			mod := int32(2 + rng.IntN(5))
			accept = func(id int32) bool { return id%mod != 0 }
		}
		got, err := ex.Search(make([]Result, 3), q, k, accept)
		if err != nil {
			t.Fatal(err)
		}
		if want := bruteForce(vecs, dim, q, k, accept); !slices.Equal(got, want) {
			t.Fatalf("seed %d trial %d (n=%d dim=%d k=%d): got %v, want %v", seed, trial, n, dim, k, got, want)
		}
	}
}

func TestExactErrors(t *testing.T) {
	t.Parallel()
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, tc := range []struct {
		name string
		vecs []float32
		dim  int
	}{
		{"empty", nil, 8},
		{"dim 0", []float32{1}, 0},
		{"ragged", []float32{1, 2, 3}, 2},
		{"NaN", []float32{1, nan}, 2},
		{"Inf", []float32{inf, 1}, 2},
		{"too large", []float32{1e19, 1e19}, 2},
	} {
		if _, err := NewExact(tc.vecs, tc.dim); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewExact %s: err = %v, want ErrInvalid", tc.name, err)
		}
	}
	ex, err := NewExact([]float32{1, 2, 3, 4}, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		q    []float32
		k    int
	}{
		{"short query", []float32{1}, 1},
		{"long query", []float32{1, 2, 3}, 1},
		{"k 0", []float32{1, 2}, 0},
		{"k negative", []float32{1, 2}, -1},
		{"NaN query", []float32{nan, 1}, 1},
		{"Inf query", []float32{1, -inf}, 1},
		{"huge query", []float32{1e20, 0}, 1},
	} {
		if _, err := ex.Search(nil, tc.q, tc.k, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("Search %s: err = %v, want ErrInvalid", tc.name, err)
		}
	}
}

// The dim-8 scan is unrolled; its scores must equal Dot bit for bit.
func TestExactScoresEqualDot(t *testing.T) {
	t.Parallel()
	s := newSynth(8, 5, 0.5, false, 3)
	vecs := s.points(500, 4)
	ex, err := NewExact(vecs, 8)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range rows(s.points(20, 5), 8) {
		got, _ := ex.Search(nil, q, 500, nil)
		for _, r := range got {
			if want := Dot(q, vecs[r.ID*8:r.ID*8+8]); math.Float32bits(r.Score) != math.Float32bits(want) {
				t.Fatalf("id %d: score %v, Dot %v", r.ID, r.Score, want)
			}
		}
	}
}

func TestExactCopiesInput(t *testing.T) {
	t.Parallel()
	vecs := []float32{1, 0, 0, 1}
	ex, _ := NewExact(vecs, 2)
	vecs[0] = -5
	got, _ := ex.Search(nil, []float32{1, 0}, 1, nil)
	if got[0] != (Result{0, 1}) {
		t.Errorf("index changed with its input: %v", got)
	}
}

func TestExactAllocs(t *testing.T) {
	s := newSynth(8, 20, 0.35, true, 1)
	ex, _ := NewExact(s.points(3706, 2), 8)
	q := s.points(1, 3)
	dst := make([]Result, 0, 100)
	accept := func(id int32) bool { return id%3 != 0 }
	allocs := testing.AllocsPerRun(100, func() {
		dst, _ = ex.Search(dst, q, 100, accept)
	})
	if allocs != 0 {
		t.Errorf("Exact.Search allocates %v times per call with capacity", allocs)
	}
}

// searchConcurrently runs searches from several goroutines and checks each
// against want; run it under -race.
func searchConcurrently(t *testing.T, idx Index, queries [][]float32, k int, want [][]Result) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			var dst []Result
			for i := range queries {
				i := (i + w*7) % len(queries)
				var err error
				dst, err = idx.Search(dst, queries[i], k, nil)
				if err != nil {
					errs <- err
					return
				}
				if !slices.Equal(dst, want[i]) {
					errs <- errors.New("concurrent result differs from sequential")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestExactConcurrent(t *testing.T) {
	t.Parallel()
	s := newSynth(8, 20, 0.35, true, 1)
	ex, _ := NewExact(s.points(2000, 2), 8)
	qs := rows(s.points(50, 3), 8)
	want := make([][]Result, len(qs))
	for i, q := range qs {
		want[i], _ = ex.Search(nil, q, 10, nil)
	}
	searchConcurrently(t, ex, qs, 10, want)
}
