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
		if !accept.Accepts(int32(i)) {
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
	even := filterOf(6, func(id int32) bool { return id%2 == 0 })
	none := NewFilter(6)
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
		switch rng.IntN(3) {
		case 0:
			mod := int32(2 + rng.IntN(5))
			accept = filterOf(n, func(id int32) bool { return id%mod != 0 })
		case 1: // the last item is refused: the scan must stop at n
			accept = filterOf(n, func(id int32) bool { return id != int32(n-1) })
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

// Scores of the blocked scan (every vector kernel the CPU has, and the Go
// fallback) must equal Dot bit for bit, for every dimension, for counts
// that leave a partial last block or a partial group of four blocks, and
// for values from subnormal to the largest valid; /score relies on it.
func TestExactScoresEqualDot(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tt := range []struct{ dim, n int }{
		{1, 1}, {2, 7}, {3, 9}, {13, 17}, {64, 40}, {65, 11}, {100, 9},
		// The service's dim 8: less than one block, a partial block, and
		// 1 to 8 blocks (every remainder of the kernel's groups of four),
		// then MovieLens sizes.
		{8, 1}, {8, 5}, {8, 8}, {8, 9}, {8, 20}, {8, 31}, {8, 33}, {8, 47},
		{8, 56}, {8, 64}, {8, 500}, {8, 3706}, {8, 3883},
	} {
		vecs := scoreTestVectors(rng, tt.n, tt.dim)
		ex, err := NewExact(vecs, tt.dim)
		if err != nil {
			t.Fatal(err)
		}
		for rep := range 5 {
			q := scoreTestVectors(rng, 1, tt.dim)
			if rep == 0 {
				q[0] = float32(math.Copysign(0, -1))
			}
			got, err := ex.Search(nil, q, tt.n, nil)
			if err != nil || len(got) != tt.n {
				t.Fatalf("dim %d n %d: %d results, %v", tt.dim, tt.n, len(got), err)
			}
			for _, r := range got {
				v := vecs[int(r.ID)*tt.dim : int(r.ID+1)*tt.dim]
				if want := Dot(q, v); math.Float32bits(r.Score) != math.Float32bits(want) {
					t.Fatalf("dim %d id %d: score %v (%08x), Dot %v (%08x)", tt.dim, r.ID, r.Score, math.Float32bits(r.Score), want, math.Float32bits(want))
				}
			}
			// Every kernel agrees with Dot on every item and with the
			// fallback on every slot, padding included.
			slots := len(ex.blocks) / tt.dim
			want := make([]float32, slots)
			scoreBlocksGo(want, ex.blocks, q)
			for name, score := range blockScorers(tt.dim) {
				got := make([]float32, slots)
				score(got, ex.blocks, q)
				for i := range got {
					w := want[i]
					if i < tt.n {
						w = Dot(q, vecs[i*tt.dim:(i+1)*tt.dim])
					}
					if math.Float32bits(got[i]) != math.Float32bits(w) {
						t.Fatalf("dim %d n %d slot %d: %s %v (%08x), want %v (%08x)", tt.dim, tt.n, i, name, got[i], math.Float32bits(got[i]), w, math.Float32bits(w))
					}
				}
			}
		}
	}
}

// blockScorers returns the ways of scoring blocks of dim-dimensional
// vectors on this CPU: the dispatcher, the Go loop, and each vector kernel
// that takes dim.
func blockScorers(dim int) map[string]func(dst, blocks, q []float32) {
	scorers := map[string]func(dst, blocks, q []float32){
		"scoreBlocks":   scoreBlocks,
		"scoreBlocksGo": scoreBlocksGo,
	}
	if !hasAVX() {
		return scorers
	}
	if dim <= maxKernelDim {
		scorers["scoreBlocksAVX"] = func(dst, blocks, q []float32) {
			qb := make([]float32, 0, len(q)*lanes)
			for _, x := range q {
				for range lanes {
					qb = append(qb, x)
				}
			}
			scoreBlocksAVX(dst, blocks, qb)
		}
	}
	return scorers
}

// scoreTestVectors returns n random vectors of dim that NewExact and Search
// accept, chosen to exercise rounding: mixed signs, zeros of both signs,
// subnormal components, magnitudes spread over six decades within a
// vector, and whole vectors scaled tiny (products of two underflow to
// subnormals or zero) or huge (products up to about 1e35).
func scoreTestVectors(rng *rand.Rand, n, dim int) []float32 {
	out := make([]float32, n*dim)
	for i := range n {
		row := out[i*dim : (i+1)*dim]
		scale, spread := 1.0, 3
		switch rng.IntN(6) {
		case 0:
			scale = 1e-20
		case 1:
			scale, spread = 1e17, 0
		}
		for d := range row {
			switch rng.IntN(12) {
			case 0:
				row[d] = 0
			case 1:
				row[d] = float32(math.Copysign(0, -1))
			case 2:
				row[d] = float32(rng.NormFloat64() * 1e-40) // subnormal
			default:
				row[d] = float32(scale * rng.NormFloat64() * math.Pow(10, float64(rng.IntN(2*spread+1)-spread)))
			}
		}
		for {
			if _, err := squaredNorm(row); err == nil {
				break
			}
			for d := range row {
				row[d] /= 2
			}
		}
	}
	return out
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
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	s := newSynth(8, 20, 0.35, true, 1)
	ex, _ := NewExact(s.points(3706, 2), 8)
	q := s.points(1, 3)
	dst := make([]Result, 0, 100)
	accept := filterOf(3706, func(id int32) bool { return id%3 != 0 })
	for _, k := range []int{1, 10, 100} { // no bound, bound from few and from many groups
		for _, f := range []Filter{nil, accept} {
			allocs := testing.AllocsPerRun(100, func() {
				dst, _ = ex.Search(dst, q, k, f)
			})
			if allocs != 0 {
				t.Errorf("Exact.Search(k=%d) allocates %v times per call with capacity", k, allocs)
			}
		}
	}
}

// searchConcurrently runs searches from several goroutines and checks each
// against want; run it under -race.
func searchConcurrently(t *testing.T, idx Index, queries [][]float32, k int, accept Filter, want [][]Result) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			var dst []Result
			for i := range queries {
				i := (i + w*7) % len(queries)
				var err error
				dst, err = idx.Search(dst, queries[i], k, accept)
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
	searchConcurrently(t, ex, qs, 10, nil, want)
}

// The vector "next score ≥ threshold" search agrees with the plain loop for
// every start, threshold (ties included) and lane position.
func TestNextAtLeast(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	scores := make([]float32, 64)
	for i := range scores {
		scores[i] = float32(rng.IntN(9) - 4) // many ties
	}
	thresholds := []float32{float32(math.Inf(-1)), -4, -1, 0, 0.5, 3, 4, 5, float32(math.Inf(1))}
	filters := []Filter{
		filterOf(64, func(int32) bool { return true }),
		filterOf(64, func(id int32) bool { return id%3 == 1 }),
		filterOf(64, func(id int32) bool { return id == 63 }),
		NewFilter(64),
	}
	type nextFunc func([]float32, Filter, int, float32) int
	next := []struct {
		name string
		f    nextFunc
	}{{"go", nextAtLeastGo}}
	if hasAVX() {
		next = append(next, struct {
			name string
			f    nextFunc
		}{"avx", nextAtLeastAVX})
	}
	for _, n := range next {
		for fi, accept := range filters {
			for _, thr := range thresholds {
				for from := range scores {
					want := len(scores)
					for i := from; i < len(scores); i++ {
						if scores[i] >= thr && accept.Accepts(int32(i)) {
							want = i
							break
						}
					}
					if got := n.f(scores, accept, from, thr); got != want {
						t.Fatalf("%s(filter %d, from %d, thr %v) = %d, want %d", n.name, fi, from, thr, got, want)
					}
				}
			}
		}
	}
}

// filterOf returns the filter of the ids 0..n-1 that keep accepts.
func filterOf(n int, keep func(int32) bool) Filter {
	f := NewFilter(n)
	for i := range int32(n) {
		if keep(i) {
			f.Accept(i)
		}
	}
	return f
}

func TestFilter(t *testing.T) {
	t.Parallel()
	f := NewFilter(130)
	if len(f) != 3 {
		t.Fatalf("NewFilter(130) has %d words", len(f))
	}
	for _, id := range []int32{0, 63, 64, 129} {
		if f.Accepts(id) {
			t.Errorf("new filter accepts %d", id)
		}
		f.Accept(id)
		if !f.Accepts(id) {
			t.Errorf("Accept(%d) then Accepts = false", id)
		}
	}
	f.Reject(64)
	if f.Accepts(64) || !f.Accepts(63) || !f.Accepts(129) {
		t.Error("Reject(64) changed the wrong bits")
	}
	if f.Accepts(1000) {
		t.Error("an id past the filter is accepted")
	}
	all := AllFilter(130)
	for id := range int32(130) {
		if !all.Accepts(id) {
			t.Fatalf("AllFilter(130) rejects %d", id)
		}
	}
	if all.Accepts(130) || all[2] != 1<<2-1 {
		t.Errorf("AllFilter(130) has bits past its ids: %x", all)
	}
	if !Filter(nil).Accepts(12345) {
		t.Error("nil filter rejects")
	}
	ex, _ := NewExact(make([]float32, 130*2), 2)
	if _, err := ex.Search(nil, []float32{1, 0}, 3, NewFilter(64)); !errors.Is(err, ErrInvalid) {
		t.Errorf("short filter: %v", err)
	}
}

// TestSegment: a segment ranks as an exact index of its vectors does
// (scores to the bit, ties by lower id, the filter), ids offset as asked,
// whether its last rows fill a block or not; and a version keeps its rows
// while later versions append.
func TestSegment(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	const n, dim = 300, 9
	vecs := make([]float32, n*dim)
	for i := range vecs {
		vecs[i] = float32(rng.IntN(5)) - 1.5 + rng.Float32()*float32(i%2) // many ties
	}
	q := []float32{1, 0, 2, 0, 1, 1, 0, 3, -0.5}
	seg := NewSegment(dim)
	var versions []Segment
	for m := range n + 1 {
		if m > 0 {
			seg = seg.Append(vecs[(m-1)*dim : m*dim])
		}
		if m%37 == 0 || m%8 == 0 && m < 40 || m == n {
			versions = append(versions, seg)
		}
	}
	for _, v := range versions {
		m := v.Len()
		if m == 0 {
			if got, err := v.Search(nil, q, 3, nil, 0); err != nil || len(got) != 0 {
				t.Fatalf("empty segment: %v, %v", got, err)
			}
			continue
		}
		e, err := NewExact(vecs[:m*dim], dim)
		if err != nil {
			t.Fatal(err)
		}
		accept := NewFilter(m)
		for i := range int32(m) {
			if rng.IntN(3) > 0 {
				accept.Accept(i)
			}
		}
		for _, k := range []int{1, 10, m} {
			for _, f := range []Filter{nil, accept} {
				want, err := e.Search(nil, q, k, f)
				if err != nil {
					t.Fatal(err)
				}
				got, err := v.Search(nil, q, k, f, 1000)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("%d rows, k %d: %d results, want %d", m, k, len(got), len(want))
				}
				for i := range got {
					if got[i].ID != want[i].ID+1000 || got[i].Score != want[i].Score {
						t.Fatalf("%d rows, k %d, result %d: %+v, want %+v (+1000)", m, k, i, got[i], want[i])
					}
				}
			}
		}
		if r := int32(m - 1); !slices.Equal(v.Vector(r), vecs[int(r)*dim:int(r+1)*dim]) {
			t.Fatalf("%d rows: last vector %v", m, v.Vector(r))
		}
	}
	if _, err := seg.Search(nil, q[:3], 1, nil, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("short query: %v", err)
	}
	if _, err := seg.Search(nil, q, 1, NewFilter(64), 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("short filter: %v", err)
	}
}
