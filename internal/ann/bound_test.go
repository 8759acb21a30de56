package ann

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// groupMaxGo is groupMaxAVX2 without vector instructions, the reference the
// kernel is tested against (without AVX2 the scan takes no bound at all): dst[c·8+j] is
// the largest of scores[b·8+j] over the blocks b of chunk c (blocks
// c·chunk up to the last one) whose lane j is accepted, or -Inf if none
// is. A nil accept accepts every slot.
func groupMaxGo(dst, scores []float32, accept Filter, chunk int) {
	nb := len(scores) / lanes
	for c := range len(dst) / lanes {
		acc := dst[c*lanes : c*lanes+lanes]
		for j := range acc {
			acc[j] = float32(math.Inf(-1))
		}
		for b := c * chunk; b < min(nb, (c+1)*chunk); b++ {
			bits := uint8(0xff)
			if accept != nil {
				bits = uint8(accept[b/8] >> (b % 8 * 8))
			}
			for j, s := range scores[b*lanes : b*lanes+lanes] {
				// The comparison order matches VMAXPS, though only the
				// value matters: the bound is compared, never returned.
				if bits&(1<<j) != 0 && s > acc[j] {
					acc[j] = s
				}
			}
		}
	}
}

// groupMaxFuncs are the group-maximum implementations this CPU can run.
func groupMaxFuncs() map[string]func(dst, scores []float32, accept Filter, chunk int) {
	fs := map[string]func(dst, scores []float32, accept Filter, chunk int){"go": groupMaxGo}
	if hasAVX2() {
		fs["avx2"] = groupMaxAVX2
	}
	return fs
}

// testFilters returns named filters over n ids covering the shapes the
// bound must handle: none, all, empty, sparse, one id, only the last
// (possibly partial) block, and bits set past the last id.
func testFilters(n int, rng *rand.Rand) []namedFilter {
	last := n - 1
	pad := filterOf(n, func(id int32) bool { return id%2 == 0 })
	for id := n; id < len(pad)*64; id++ {
		pad.Accept(int32(id)) // "ignored" bits, over the padding slots too
	}
	single := int32(rng.IntN(n))
	return []namedFilter{
		{"nil", nil},
		{"all", AllFilter(n)},
		{"empty", NewFilter(n)},
		{"sparse", filterOf(n, func(int32) bool { return rng.IntN(10) == 0 })},
		{"30%", filterOf(n, func(int32) bool { return rng.IntN(10) < 3 })},
		{"single", filterOf(n, func(id int32) bool { return id == single })},
		{"last block", filterOf(n, func(id int32) bool { return int(id) >= last/lanes*lanes })},
		{"last item", filterOf(n, func(id int32) bool { return int(id) == last })},
		{"pad bits", pad},
	}
}

type namedFilter struct {
	name   string
	accept Filter
}

// The vector kernel takes the same maxima as the Go loop, which takes the
// maxima of the definition, for every chunk size (one block, partial last
// chunk, one chunk for everything) and filter shape.
func TestGroupMax(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, nb := range []int{1, 2, 3, 4, 5, 7, 8, 9, 31, 64, 130} {
		scores := make([]float32, nb*lanes)
		for i := range scores {
			switch rng.IntN(8) {
			case 0:
				scores[i] = float32(math.Copysign(0, -1))
			case 1:
				scores[i] = 0
			case 2:
				scores[i] = float32(math.Inf(-1)) // padding
			default:
				scores[i] = float32(rng.IntN(9) - 4) // ties
			}
		}
		for _, f := range testFilters(nb*lanes, rng) {
			fname, accept := f.name, f.accept
			for _, chunk := range []int{1, 2, 3, 4, 5, 8, nb, nb + 3} {
				g := (nb + chunk - 1) / chunk * lanes
				want := make([]float32, g)
				for i := range want {
					want[i] = float32(math.Inf(-1))
				}
				for i, s := range scores {
					if grp := i/lanes/chunk*lanes + i%lanes; accept.Accepts(int32(i)) && s > want[grp] {
						want[grp] = s
					}
				}
				for name, f := range groupMaxFuncs() {
					got := make([]float32, g+1)
					got[g] = 42 // must stay: the kernel writes len(dst) floats only
					f(got[:g], scores, accept, chunk)
					if got[g] != 42 {
						t.Fatalf("%s nb %d chunk %d: wrote past dst", name, nb, chunk)
					}
					for i := range want {
						// ±0 may differ in sign by merge order; the bound
						// is only compared, so values must agree.
						if got[i] != want[i] {
							t.Fatalf("%s nb %d filter %s chunk %d: group %d = %v, want %v", name, nb, fname, chunk, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

func TestKthLargest(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(9, 10))
	inf := float32(math.Inf(-1))
	for _, n := range []int{1, 2, 3, 7, 8, 9, 16, 17, 64, 100, 513} {
		for trial := range 5 {
			v := make([]float32, n)
			for i := range v {
				switch {
				case trial == 0:
					v[i] = 1 // all equal
				case trial == 1 && rng.IntN(3) > 0:
					v[i] = inf // mostly empty groups
				case trial == 2:
					v[i] = float32(rng.IntN(3)) // few distinct values
				default:
					v[i] = float32(rng.IntN(2*n+1) - n)
				}
			}
			sorted := sortedDesc(v)
			for k := 1; k <= n; k++ {
				if got := kthLargest(slices.Clone(v), k); got != sorted[k-1] {
					t.Fatalf("n %d trial %d: kthLargest(k=%d) = %v, want %v", n, trial, k, got, sorted[k-1])
				}
				if got := quickselect(slices.Clone(v), k-1); got != sorted[k-1] {
					t.Fatalf("n %d trial %d: quickselect(k=%d) = %v, want %v", n, trial, k, got, sorted[k-1])
				}
			}
			if got := kthLargest(slices.Clone(v), n+1); got != inf {
				t.Fatalf("n %d trial %d: kthLargest(k=n+1) = %v, want -Inf", n, trial, got)
			}
		}
	}
}

// Lomuto partitioning is quadratic on equal values unless they are set
// aside; here that would take minutes.
func TestQuickselectManyTies(t *testing.T) {
	t.Parallel()
	const n = 200000
	for name, value := range map[string]func(i int) float32{
		"equal":     func(int) float32 { return 3 },
		"two":       func(i int) float32 { return float32(i % 2) },
		"one above": func(i int) float32 { return float32(min(1, i%n)) },
		"one below": func(i int) float32 { return float32(min(1, i%(n-1))) },
	} {
		v := make([]float32, n)
		for i := range v {
			v[i] = value(i)
		}
		sorted := sortedDesc(v)
		for _, k := range []int{1, 2, n / 2, n - 1, n} {
			if got := quickselect(slices.Clone(v), k-1); got != sorted[k-1] {
				t.Fatalf("%s: quickselect(k=%d) = %v, want %v", name, k, got, sorted[k-1])
			}
		}
	}
}

// sortedDesc returns a sorted copy of v, largest first.
func sortedDesc(v []float32) []float32 {
	s := slices.Clone(v)
	slices.SortFunc(s, func(a, b float32) int {
		switch {
		case a > b:
			return -1
		case a < b:
			return 1
		}
		return 0
	})
	return s
}

func TestChunkBlocks(t *testing.T) {
	t.Parallel()
	for _, nb := range []int{1, 2, 7, 8, 9, 100, 464, 12500} {
		for k := 1; k <= nb*lanes+2; k += 1 + k/7 {
			chunk := chunkBlocks(k, nb)
			if k > nb*lanes {
				if chunk != 0 {
					t.Errorf("nb %d k %d: chunk %d, want 0 (fewer slots than k)", nb, k, chunk)
				}
				continue
			}
			g := (nb + chunk - 1) / chunk * lanes
			want := min(max(groupsPerK*k, minGroups), nb*lanes)
			if chunk < 1 || g < k || g < want || g > nb*lanes || g >= 2*want+2*lanes {
				t.Errorf("nb %d k %d: chunk %d gives %d groups", nb, k, chunk, g)
			}
		}
	}
}

// The break-even points measured for boundPays (see its comment).
func TestBoundPays(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		k, n int
		want bool
	}{
		{1, 3706, false}, {10, 3706, true}, {100, 3706, true}, {3000, 3706, true}, {3706, 3706, false},
		{1, 100000, false}, {3, 100000, false}, {40, 100000, true}, {100, 100000, true},
	} {
		if got := boundPays(tc.k, tc.n); got != tc.want {
			t.Errorf("boundPays(k=%d, n=%d) = %v, want %v", tc.k, tc.n, got, tc.want)
		}
	}
}

// searchPaths returns the ways e can answer a query: Search as it is, and
// scans that start at -Inf or always at the bound, with the group maxima
// of the vector kernel or of the Go loop. Search itself starts at the
// bound only where boundPays.
func searchPaths(e *Exact) map[string]func(q []float32, k int, accept Filter) []Result {
	paths := map[string]func(q []float32, k int, accept Filter) []Result{
		"Search": func(q []float32, k int, accept Filter) []Result {
			got, err := e.Search(make([]Result, 2), q, k, accept)
			if err != nil {
				panic(err)
			}
			return got
		},
	}
	forced := func(groupMax func(dst, scores []float32, accept Filter, chunk int)) func(q []float32, k int, accept Filter) []Result {
		return func(q []float32, k int, accept Filter) []Result {
			c := &Exact{vecs: e.vecs, blocks: e.blocks, all: e.all, next: e.next, groupMax: groupMax, dim: e.dim, n: e.n}
			s := e.scratch.New().(*scanScratch)
			scoreBlocks(s.scores, e.blocks, q)
			t := newTopK(nil, k, e.n)
			c.offer(&t, s.scores, accept, c.lowerBound(s, accept, t.k))
			return t.sorted()
		}
	}
	for name, f := range groupMaxFuncs() {
		paths["bound "+name] = forced(f)
	}
	paths["unbounded"] = forced(nil)
	return paths
}

// boundOf returns the bound a scan of e would start at if it took one.
func boundOf(e *Exact, q []float32, accept Filter, k int) float32 {
	s := e.scratch.New().(*scanScratch)
	scoreBlocks(s.scores, e.blocks, q)
	return e.lowerBound(s, accept, min(k, e.n))
}

// checkSearch compares every search path of ex with the brute-force
// reference and checks that the bound is one: at most the k-th best
// accepted score. It reports whether an accepted item other than the k-th
// ties exactly at the bound.
func checkSearch(t *testing.T, desc string, ex *Exact, vecs []float32, q []float32, k int, accept Filter) (tieAtBound bool) {
	t.Helper()
	want := bruteForce(vecs, ex.dim, q, k, accept)
	for name, search := range searchPaths(ex) {
		got := search(q, k, accept)
		if len(got) != len(want) {
			t.Fatalf("%s, %s: %d results, want %d", desc, name, len(got), len(want))
		}
		for i, r := range got {
			if r.ID != want[i].ID || math.Float32bits(r.Score) != math.Float32bits(want[i].Score) {
				t.Fatalf("%s, %s: result %d is %v (%08x), want %v (%08x)", desc, name, i, r, math.Float32bits(r.Score), want[i], math.Float32bits(want[i].Score))
			}
		}
	}
	b := boundOf(ex, q, accept, k)
	if len(want) < min(k, ex.n) {
		if !math.IsInf(float64(b), -1) && ex.groupMax != nil {
			t.Fatalf("%s: bound %v with only %d accepted items", desc, b, len(want))
		}
		return false
	}
	kth := want[len(want)-1].Score
	if b > kth {
		t.Fatalf("%s: bound %v above the k-th best score %v", desc, b, kth)
	}
	if b == kth {
		for i := range ex.n {
			if accept.Accepts(int32(i)) && int32(i) != want[len(want)-1].ID && Dot(q, ex.Vector(int32(i))) == b {
				return true
			}
		}
	}
	return false
}

// Every k (1..n and past it) and every filter shape, on items with many
// exact duplicates, n not a multiple of 8: the bounded scan returns the
// same items, order and score bits as sorting everything.
func TestExactBoundTable(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(11, 12))
	ties := 0
	for _, n := range []int{1, 5, 8, 13, 67, 203} {
		const dim = 3
		vecs := make([]float32, n*dim)
		for i := range n {
			// Only five distinct vectors: every score is tied many times.
			copy(vecs[i*dim:], [][]float32{{1, 0, 0}, {0, 1, 0}, {1, 1, 0}, {-1, 0, 0.5}, {0, 0, 0}}[rng.IntN(5)])
		}
		ex, err := NewExact(vecs, dim)
		if err != nil {
			t.Fatal(err)
		}
		filters := testFilters(n, rng)
		for _, q := range [][]float32{{1, 0.5, 0}, {-1, -1, 0}, {0, 0, 0}} {
			for _, f := range filters {
				fname, accept := f.name, f.accept
				for k := 1; k <= n+3; k++ {
					if checkSearch(t, fmt.Sprintf("n %d q %v filter %s k %d", n, q, fname, k), ex, vecs, q, k, accept) {
						ties++
					}
				}
			}
		}
	}
	if ties == 0 && hasAVX2() {
		t.Error("no case tied at the bound")
	}
}

// The bounded scan against the brute-force sort on seeded random data of
// mixed sizes, dimensions, value grids (coarse ones tie often) and filters.
func TestExactBoundRandomised(t *testing.T) {
	t.Parallel()
	const seed = 2718
	rng := rand.New(rand.NewPCG(seed, 0))
	ties := 0
	for trial := range 400 {
		dim := []int{1, 2, 8, 17}[rng.IntN(4)]
		n := 1 + rng.IntN(1500)
		coarse := rng.IntN(2) == 0
		vecs := make([]float32, n*dim)
		for i := range vecs {
			if coarse {
				vecs[i] = float32(rng.IntN(5)-2) / 2
			} else {
				vecs[i] = float32(rng.NormFloat64())
			}
		}
		ex, err := NewExact(vecs, dim)
		if err != nil {
			t.Fatal(err)
		}
		q := make([]float32, dim)
		for i := range q {
			q[i] = float32(rng.NormFloat64())
		}
		k := []int{1, 2, 10, 16, 17, 100, 1 + rng.IntN(n+5)}[rng.IntN(7)]
		filters := testFilters(n, rng)
		f := filters[rng.IntN(len(filters))]
		desc := fmt.Sprintf("seed %d trial %d (n=%d dim=%d k=%d filter %s)", seed, trial, n, dim, k, f.name)
		if checkSearch(t, desc, ex, vecs, q, k, f.accept) {
			ties++
		}
	}
	t.Logf("%d trials tied at the bound", ties)
}
