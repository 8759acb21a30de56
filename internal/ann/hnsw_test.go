package ann

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
)

func mustHNSW(t testing.TB, vecs []float32, dim int, p HNSWParams) *HNSW {
	t.Helper()
	h, err := NewHNSW(vecs, dim, p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// checkResults asserts what every answer must satisfy: at most k, sorted,
// distinct, accepted, exact scores.
func checkResults(t *testing.T, got []Result, vecs []float32, dim int, q []float32, k int, accept Filter) {
	t.Helper()
	if len(got) > k {
		t.Fatalf("%d results for k=%d", len(got), k)
	}
	seen := map[int32]bool{}
	for i, r := range got {
		if seen[r.ID] {
			t.Fatalf("duplicate id %d", r.ID)
		}
		seen[r.ID] = true
		if !accept.Accepts(r.ID) {
			t.Fatalf("id %d rejected by the filter was returned", r.ID)
		}
		if want := Dot(q, vecs[int(r.ID)*dim:(int(r.ID)+1)*dim]); math.Float32bits(want) != math.Float32bits(r.Score) {
			t.Fatalf("id %d: score %v, want %v", r.ID, r.Score, want)
		}
		if i > 0 && worse(got[i-1], r) {
			t.Fatalf("not sorted at %d: %v", i, got)
		}
	}
}

// The floor the default parameters reach at the MovieLens scale; 0.99 is
// the design's bar for serving from HNSW, for normalised towers and for
// raw (pointwise) ones, whose norms spread log-normally (the top items by
// inner product are then the long vectors: TestHNSWLongVectors).
func TestHNSWRecall(t *testing.T) {
	t.Parallel()
	for _, ds := range datasets(t, 3706, 200) {
		t.Run(ds.name, func(t *testing.T) {
			t.Parallel()
			ex, _ := NewExact(ds.items, 8)
			p := DefaultHNSWParams()
			// One worker builds the same graph every run, so the recall
			// checked here is reproducible (a parallel build's varies by
			// a few thousandths; TestHNSWParallelBuild covers it).
			p.BuildWorkers = 1
			h := mustHNSW(t, ds.items, 8, p)
			checkRecall(t, h, ex, ds.queries, "")
			for _, q := range ds.queries[:20] {
				got, _ := h.Search(nil, q, 50, nil)
				checkResults(t, got, ds.items, 8, q, 50, nil)
				if len(got) != 50 {
					t.Fatalf("%d results, want 50", len(got))
				}
			}
		})
	}
}

// A parallel build (more workers than cores, so insertions interleave)
// makes a valid graph, every node reachable from the entry point, with the
// recall of a single-worker build. It is not reproducible, so the test
// checks structure and recall, not bytes.
func TestHNSWParallelBuild(t *testing.T) {
	t.Parallel()
	s := newSynth(8, 20, 0.35, true, 31)
	vecs := s.points(8000, 32)
	qs := rows(s.points(200, 33), 8)
	ex, _ := NewExact(vecs, 8)
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			if workers == 1 {
				skipRace(t)
			}
			p := DefaultHNSWParams()
			p.BuildWorkers = workers
			h := mustHNSW(t, vecs, 8, p)
			checkRecall(t, h, ex, qs, "")
			// The decoder checks every link (in range, in its layer, no
			// duplicate, no self-link) and the single top-layer entry.
			if _, err := decodeGraph(encodeGraph(h.g, h.augmenter()), h.augmenter(), h.Len()); err != nil {
				t.Fatal(err)
			}
			if r := reachable(h.g); r != h.Len() {
				t.Errorf("%d of %d nodes reachable on layer 0", r, h.Len())
			}
		})
	}
}

// dupVectors returns n rows (dim 8) of which n-unique share shared
// distinct vectors, drawn with a skew so that some groups are large (as
// genres are: unrated movies get the vector of their genres and year), and
// unique have a vector of their own, at random positions; and the
// generator, for queries.
func dupVectors(n, shared, unique int, seed uint64) ([]float32, *synth) {
	s := newSynth(8, 20, 0.35, true, seed)
	pool := s.points(shared, seed+1)
	own := s.points(unique, seed+2)
	rng := rand.New(rand.NewPCG(seed, 3))
	vecs := make([]float32, 0, n*8)
	for _, u := range rng.Perm(n) {
		if u < unique {
			vecs = append(vecs, own[u*8:(u+1)*8]...)
			continue
		}
		j := int(float64(shared) * math.Pow(rng.Float64(), 2)) // skewed to the first
		vecs = append(vecs, pool[j*8:(j+1)*8]...)
	}
	return vecs, s
}

// Catalogues where most items share a vector are indexed by their
// distinct vectors, every node reachable, and answer as the exact scan
// does: the same scores in the same order, filtered or not
// (TestHNSWAllocs: without allocating).
func TestHNSWDuplicates(t *testing.T) {
	t.Parallel()
	const n = 20000
	vecs, s := dupVectors(n, 50, 5000, 35)
	start := time.Now()
	h := mustHNSW(t, vecs, 8, DefaultHNSWParams())
	t.Logf("build %v", time.Since(start))
	if h.g.n != 5050 || h.groups.nodes() != 5050 || len(h.groups.rows) != n {
		t.Fatalf("graph has %d nodes for %d mapped rows, want 5050 distinct of %d", h.g.n, len(h.groups.rows), n)
	}
	if r := reachable(h.g); r != h.g.n {
		t.Errorf("%d of %d nodes reachable", r, h.g.n)
	}
	ex, _ := NewExact(vecs, 8)
	qs := rows(s.points(200, 38), 8)
	rec, err := SelfCheck(h, ex, qs, []int{10, 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recall %v", rec)
	if rec[10] < 0.99 || rec[100] < 0.99 {
		t.Errorf("recall %v < 0.99 (0.61 at k = 10 when the graph held every row)", rec)
	}
	third := filterOf(n, func(id int32) bool { return id%3 == 0 })
	// whole groups accepted or rejected, as a genre filter takes or leaves
	// every movie of a genre combination: the rows of every other node
	node := make([]int32, n)
	for d := range int32(h.groups.nodes()) {
		for _, r := range h.groups.of(d) {
			node[r] = d
		}
	}
	inGroups := filterOf(n, func(id int32) bool { return node[id]%2 == 0 })
	sparse := filterOf(n, func(id int32) bool { return id%700 == 3 })
	for _, f := range []struct {
		name   string
		accept Filter
	}{{"none", nil}, {"a third of each group", third}, {"whole groups", inGroups}, {"sparse", sparse}} {
		misses := 0
		for _, q := range qs {
			for _, k := range []int{10, 100} {
				got, err := h.Search(nil, q, k, f.accept)
				if err != nil {
					t.Fatal(err)
				}
				checkResults(t, got, vecs, 8, q, k, f.accept)
				want, _ := ex.Search(nil, q, k, f.accept)
				if len(got) != len(want) {
					t.Fatalf("%s k=%d: %d results, want %d", f.name, k, len(got), len(want))
				}
				if !slices.EqualFunc(got, want, func(a, b Result) bool { return a.Score == b.Score }) {
					misses++
				}
			}
		}
		t.Logf("filter %s: %d of %d answers differ from exact in a score", f.name, misses, 2*len(qs))
		if misses > len(qs)/50 {
			t.Errorf("filter %s: %d of %d answers differ from exact", f.name, misses, 2*len(qs))
		}
	}
}

// reachable counts the layer-0 nodes reachable from the entry point.
func reachable(g *graph) int {
	seen := make([]bool, g.n)
	stack := []int32{g.entry}
	seen[g.entry] = true
	c := 0
	for len(stack) > 0 {
		u := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		c++
		for _, v := range g.links(u, 0) {
			if !seen[v] {
				seen[v] = true
				stack = append(stack, v)
			}
		}
	}
	return c
}

func TestHNSWFilters(t *testing.T) {
	t.Parallel()
	s := newSynth(8, 20, 0.35, true, 5)
	vecs := s.points(3000, 6)
	ex, _ := NewExact(vecs, 8)
	h := mustHNSW(t, vecs, 8, DefaultHNSWParams())
	qs := rows(s.points(50, 7), 8)

	third := filterOf(3000, func(id int32) bool { return id%3 == 0 })
	hits, total := 0, 0
	for _, q := range qs {
		got, err := h.Search(nil, q, 10, third)
		if err != nil {
			t.Fatal(err)
		}
		checkResults(t, got, vecs, 8, q, 10, third)
		want, _ := ex.Search(nil, q, 10, third)
		if len(got) != len(want) {
			t.Fatalf("%d results, want %d", len(got), len(want))
		}
		for _, r := range got {
			if slices.Contains(want, r) {
				hits++
			}
		}
		total += len(want)
	}
	if r := float64(hits) / float64(total); r < 0.99 {
		t.Errorf("filtered recall@10 = %.4f", r)
	}

	// A filter that accepts 5 scattered ids: the graph cannot supply k
	// accepted candidates, so the exact fallback must answer exactly.
	five := filterOf(3000, func(id int32) bool { return id%600 == 17 })
	for _, q := range qs[:5] {
		got, _ := h.Search(nil, q, 10, five)
		want, _ := ex.Search(nil, q, 10, five)
		if !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestHNSWEdgeCases(t *testing.T) {
	t.Parallel()
	p := DefaultHNSWParams()
	t.Run("single vector", func(t *testing.T) {
		h := mustHNSW(t, []float32{1, 2}, 2, p)
		got, err := h.Search(nil, []float32{1, 1}, 5, nil)
		if err != nil || !slices.Equal(got, []Result{{0, 3}}) {
			t.Errorf("got %v, %v", got, err)
		}
	})
	t.Run("k > n equals exact", func(t *testing.T) {
		s := newSynth(8, 3, 0.3, false, 1)
		vecs := s.points(40, 2)
		h := mustHNSW(t, vecs, 8, p)
		ex, _ := NewExact(vecs, 8)
		for _, q := range rows(s.points(10, 3), 8) {
			got, _ := h.Search(nil, q, 100, nil)
			want, _ := ex.Search(nil, q, 100, nil)
			if !slices.Equal(got, want) {
				t.Fatalf("got %v\nwant %v", got, want)
			}
		}
	})
	t.Run("zero vectors", func(t *testing.T) {
		vecs := make([]float32, 50*4) // all zero: cosine would be NaN
		vecs[7*4] = 1                 // one non-zero
		for _, v := range [][]float32{make([]float32, 50*4), vecs} {
			h := mustHNSW(t, v, 4, p)
			ex, _ := NewExact(v, 4)
			for _, q := range [][]float32{{1, 0, 0, 0}, {0, 0, 0, 0}, {-1, 2, 0, 0}} {
				got, err := h.Search(nil, q, 5, nil)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := ex.Search(nil, q, 5, nil)
				if !slices.Equal(got, want) {
					t.Fatalf("q %v: got %v, want %v", q, got, want)
				}
			}
		}
	})
	t.Run("bad queries", func(t *testing.T) {
		h := mustHNSW(t, []float32{1, 2, 3, 4}, 2, p)
		for _, q := range [][]float32{{1}, {1, 2, 3}, {float32(math.NaN()), 0}, {float32(math.Inf(-1)), 0}} {
			if _, err := h.Search(nil, q, 1, nil); !errors.Is(err, ErrInvalid) {
				t.Errorf("q %v: err = %v", q, err)
			}
		}
		if _, err := h.Search(nil, []float32{1, 1}, 0, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("k 0: err = %v", err)
		}
	})
	t.Run("bad params", func(t *testing.T) {
		bad := p
		bad.M, bad.Ml, bad.Overfetch = 0, 1, 0
		_, err := NewHNSW([]float32{1, 2}, 2, bad)
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v", err)
		}
		if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n < 3 {
			t.Errorf("%d problems reported, want all 3+: %v", n, err)
		}
	})
}

func TestHNSWConcurrent(t *testing.T) {
	t.Parallel()
	s := newSynth(8, 20, 0.35, false, 11)
	vecs := s.points(2000, 12)
	h := mustHNSW(t, vecs, 8, DefaultHNSWParams())
	qs := rows(s.points(40, 13), 8)
	want := make([][]Result, len(qs))
	for i, q := range qs {
		want[i], _ = h.Search(nil, q, 10, nil)
	}
	searchConcurrently(t, h, qs, 10, nil, want)
	// filtered: the beam and, for the rare filter, the exact fallback
	for _, f := range []Filter{
		filterOf(2000, func(id int32) bool { return id%3 != 0 }),
		filterOf(2000, func(id int32) bool { return id%500 == 7 }),
	} {
		for i, q := range qs {
			want[i], _ = h.Search(nil, q, 10, f)
		}
		searchConcurrently(t, h, qs, 10, f, want)
	}
}

// The search allocates nothing once dst has room, filtered or not, at
// k = 10 and 100.
func TestHNSWAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	s := newSynth(8, 20, 0.35, true, 15)
	dups, _ := dupVectors(5000, 20, 1000, 18) // graph nodes expanded into rows
	for name, vecs := range map[string][]float32{"distinct": s.points(5000, 16), "duplicates": dups} {
		h := mustHNSW(t, vecs, 8, DefaultHNSWParams())
		qs := rows(s.points(20, 17), 8)
		third := filterOf(5000, func(id int32) bool { return id%3 == 0 })
		for _, k := range []int{10, 100} {
			for _, f := range []Filter{nil, third} {
				dst := make([]Result, 0, k)
				i := 0
				if a := testing.AllocsPerRun(200, func() {
					dst, _ = h.Search(dst, qs[i%len(qs)], k, f)
					i++
				}); a != 0 {
					t.Errorf("%s k=%d filter=%v: %v allocations per search", name, k, f != nil, a)
				}
			}
		}
	}
}

func TestExportImportRoundTrip(t *testing.T) {
	skipRace(t)
	t.Parallel()
	s := newSynth(8, 20, 0.35, false, 21)
	vecs := s.points(3706, 22)
	p := DefaultHNSWParams()
	p.Seed = 7
	p.BuildWorkers = 1 // reproducible bit for bit
	h := mustHNSW(t, vecs, 8, p)
	var buf bytes.Buffer
	if err := h.Export(&buf); err != nil {
		t.Fatal(err)
	}
	exported := bytes.Clone(buf.Bytes())
	h2, err := ImportHNSW(&buf, vecs, 8, DefaultHNSWParams())
	if err != nil {
		t.Fatal(err)
	}
	if got := h2.p; got.M != p.M || got.M0 != p.M0 || got.Seed != p.Seed {
		t.Errorf("imported params %+v", got)
	}
	odd := filterOf(len(vecs)/8, func(id int32) bool { return id%2 == 1 })
	for _, q := range rows(s.points(100, 23), 8) {
		for _, k := range []int{1, 10, 100} {
			for _, f := range []Filter{nil, odd} {
				a, _ := h.Search(nil, q, k, f)
				b, _ := h2.Search(nil, q, k, f)
				if !slices.Equal(a, b) {
					t.Fatalf("k=%d: results differ after import:\n%v\n%v", k, a, b)
				}
			}
		}
	}
	var again bytes.Buffer
	if err := h2.Export(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(exported, again.Bytes()) {
		t.Error("re-export of an imported index differs")
	}
	// An artifact written before the native format (version 1, coder/hnsw's
	// format, links sorted, rows sized by the largest degree) still loads
	// and answers as the graph it was written from.
	var v1 bytes.Buffer
	if err := h.exportLibrary(&v1); err != nil {
		t.Fatal(err)
	}
	h1, err := ImportHNSW(&v1, vecs, 8, DefaultHNSWParams())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range rows(s.points(100, 24), 8) {
		for _, k := range []int{1, 10, 100} {
			a, _ := h.Search(nil, q, k, nil)
			b, _ := h1.Search(nil, q, k, nil)
			if !slices.Equal(a, b) {
				t.Fatalf("k=%d: version-1 import answers differently:\n%v\n%v", k, a, b)
			}
		}
	}
	var rebuilt bytes.Buffer
	if err := mustHNSW(t, vecs, 8, p).Export(&rebuilt); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(exported, rebuilt.Bytes()) {
		t.Error("a native build with the same seed is not byte-identical")
	}
}

// coder/hnsw's Import reads the bytes Export writes, and its own Export of
// the loaded graph decodes to the same graph: the format is the library's.
func TestLibraryFormatCompatible(t *testing.T) {
	t.Parallel()
	s := newSynth(8, 10, 0.35, false, 31)
	vecs := s.points(500, 32)
	h := mustHNSW(t, vecs, 8, DefaultHNSWParams())
	blob := encodeGraph(h.g, h.augmenter())
	lib, err := libraryImport(blob)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := lib.Export(&buf); err != nil {
		t.Fatal(err)
	}
	canon := func(b []byte) [][]string {
		g, err := decodeGraph(b, h.augmenter(), 500)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]string
		for l := 0; l <= g.top; l++ {
			var nodes []string
			for k := range int32(g.n) {
				if int(g.levels[k]) < l {
					continue
				}
				nb := slices.Clone(g.links(k, l))
				slices.Sort(nb)
				nodes = append(nodes, string(rune(k))+":"+string(int32sToRunes(nb)))
			}
			out = append(out, nodes)
		}
		return out
	}
	a, b := canon(buf.Bytes()), canon(blob)
	if !slices.EqualFunc(a, b, slices.Equal) {
		t.Error("library export decodes to a different graph")
	}
	// and the library's search over it finds what exact search finds
	lh, err := newLibraryHNSW(h, 400, 8, 400)
	if err != nil {
		t.Fatal(err)
	}
	ex, _ := NewExact(vecs, 8)
	rec, err := SelfCheck(lh, ex, rows(s.points(50, 33), 8), []int{10})
	if err != nil {
		t.Fatal(err)
	}
	if rec[10] < 0.99 {
		t.Errorf("coder/hnsw search recall@10 = %.4f", rec[10])
	}
}

func int32sToRunes(v []int32) []rune {
	out := make([]rune, len(v))
	for i, x := range v {
		out[i] = rune(x)
	}
	return out
}

func TestImportRejects(t *testing.T) {
	t.Parallel()
	s := newSynth(8, 5, 0.35, true, 41)
	vecs := s.points(300, 42)
	h := mustHNSW(t, vecs, 8, DefaultHNSWParams())
	var buf, nbuf bytes.Buffer
	if err := h.exportLibrary(&buf); err != nil {
		t.Fatal(err)
	}
	if err := h.Export(&nbuf); err != nil {
		t.Fatal(err)
	}
	good, native := buf.Bytes(), nbuf.Bytes()
	other := slices.Clone(vecs)
	other[5] += 0.01
	flip := slices.Clone(good)
	flip[len(flip)/2] ^= 0x10
	// header changes with a valid checksum: build byte 1 (coder/hnsw's Add,
	// no longer built) and two graphs (no longer unioned)
	resum := func(b []byte) []byte {
		body := b[:len(b)-4]
		return binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, castagnoli))
	}
	library := slices.Clone(good)
	library[24] = 1
	twoGraphs := slices.Clone(good)
	binary.LittleEndian.PutUint32(twoGraphs[headerLen-4:], 2)
	// native graphs with a valid checksum but a bad structure
	patch := func(off int, v uint32) []byte {
		b := slices.Clone(native)
		binary.LittleEndian.PutUint32(b[off:], v)
		return resum(b)
	}
	const rowsAt = nativeHeaderLen + 300 // node 0's layer-0 row: count, links
	stride0 := int(binary.LittleEndian.Uint32(native[nativeHeaderLen-16:]))
	link0 := binary.LittleEndian.Uint32(native[rowsAt+4:])
	p := DefaultHNSWParams()
	for _, tc := range []struct {
		name string
		data []byte
		vecs []float32
		dim  int
		p    HNSWParams
	}{
		{"empty", nil, vecs, 8, p},
		{"truncated", good[:len(good)-9], vecs, 8, p},
		{"header only", good[:headerLen], vecs, 8, p},
		{"flipped byte", flip, vecs, 8, p},
		{"bad magic", append([]byte("XXXXXXXX"), good[8:]...), vecs, 8, p},
		{"trailing byte", append(slices.Clone(good), 0), vecs, 8, p},
		{"library build", resum(library), vecs, 8, p},
		{"two graphs", resum(twoGraphs), vecs, 8, p},
		{"other vectors", good, other, 8, p},
		{"fewer vectors", good, vecs[:8*299], 8, p},
		{"other dim", good, vecs, 4, p},
		{"bad search params", good, vecs, 8, HNSWParams{}},
		{"native truncated", native[:len(native)-9], vecs, 8, p},
		{"native flipped byte", func() []byte { b := slices.Clone(native); b[len(b)/2] ^= 1; return b }(), vecs, 8, p},
		{"native other vectors", native, other, 8, p},
		{"native node count", patch(8, 299), vecs, 8, p}, // neither the rows nor the distinct vectors
		{"native entry out of range", patch(nativeHeaderLen-24, 300), vecs, 8, p},
		{"native count over capacity", patch(rowsAt, uint32(stride0)), vecs, 8, p},
		{"native link out of range", patch(rowsAt+4, 300), vecs, 8, p},
		{"native self link", patch(rowsAt+4, 0), vecs, 8, p},
		{"native duplicate link", patch(rowsAt+8, link0), vecs, 8, p},
		{"native upper rows", patch(nativeHeaderLen-8, 1<<20), vecs, 8, p},
		{"native trailing byte", resum(append(slices.Clone(native[:len(native)-4]), 0, 0, 0, 0, 0)), vecs, 8, p},
	} {
		_, err := ImportHNSW(bytes.NewReader(tc.data), tc.vecs, tc.dim, tc.p)
		if err == nil {
			t.Errorf("%s: imported", tc.name)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
		if tc.name != "fewer vectors" && tc.name != "other dim" && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v does not wrap ErrInvalid", tc.name, err)
		}
	}
}

func TestSelfCheck(t *testing.T) {
	t.Parallel()
	s := newSynth(8, 5, 0.35, true, 51)
	vecs := s.points(400, 52)
	ex, _ := NewExact(vecs, 8)
	qs := rows(s.points(20, 53), 8)
	rec, err := SelfCheck(ex, ex, qs, []int{1, 10, 400, 1000})
	if err != nil {
		t.Fatal(err)
	}
	for k, r := range rec {
		if r != 1 {
			t.Errorf("exact vs exact recall@%d = %v", k, r)
		}
	}
	rec, err = SelfCheck(reversed{ex}, ex, qs, []int{10})
	if err != nil {
		t.Fatal(err)
	}
	if rec[10] != 0 {
		t.Errorf("worst-first index recall@10 = %v, want 0", rec[10])
	}
	small, _ := NewExact(vecs[:80], 8)
	if _, err := SelfCheck(small, ex, qs, []int{10}); !errors.Is(err, ErrInvalid) {
		t.Errorf("size mismatch: err = %v", err)
	}
}

// reversed returns the k lowest-scoring items with their claimed scores
// inflated: SelfCheck must not trust them.
type reversed struct{ *Exact }

func (r reversed) Search(dst []Result, q []float32, k int, accept Filter) ([]Result, error) {
	neg := make([]float32, len(q))
	for i, x := range q {
		neg[i] = -x
	}
	out, err := r.Exact.Search(dst, neg, k, accept)
	for i := range out {
		out[i].Score = 1e9
	}
	return out, err
}

// TestDroppedIndexCollected checks that a searched index, once dropped, is
// freed by the next garbage collection: a sync.Pool embedded in it (or a
// pool whose New captures it) would keep it alive through the runtime's
// list of pools for two more cycles, which at a million movies held a
// dropped index's vectors through each validation of a training run.
func TestDroppedIndexCollected(t *testing.T) {
	s := newSynth(8, 20, 0.35, true, 21)
	vecs := s.points(500, 22)
	q := rows(s.points(1, 23), 8)[0]
	t.Run("exact", func(t *testing.T) {
		checkFreed(t, func() (*Exact, error) { return NewExact(vecs, 8) }, q)
	})
	t.Run("hnsw", func(t *testing.T) {
		checkFreed(t, func() (*HNSW, error) { return NewHNSW(vecs, 8, DefaultHNSWParams()) }, q)
	})
}

func checkFreed[T any, P interface {
	*T
	Index
}](t *testing.T, build func() (P, error), q []float32) {
	freed := make(chan struct{})
	func() {
		ix, err := build()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ix.Search(nil, q, 10, nil); err != nil { // puts scratch in the pool
			t.Fatal(err)
		}
		runtime.AddCleanup((*T)(ix), func(c chan struct{}) { close(c) }, freed)
	}()
	runtime.GC()
	select {
	case <-freed:
	case <-time.After(10 * time.Second):
		t.Fatal("a dropped index outlived a garbage collection")
	}
}

// Distinct vectors can tie: here every item scores 1 against q (they
// differ only where q is 0). Ties go to the lower id, on HNSW as on the
// exact scan, so both answer ids 0..k-1, and pages of different k agree.
func TestHNSWTiesAtCut(t *testing.T) {
	t.Parallel()
	const n = 2000
	rng := rand.New(rand.NewPCG(1, 2))
	vecs := make([]float32, n*2)
	for i := range n {
		vecs[2*i], vecs[2*i+1] = 1, float32(rng.NormFloat64())
	}
	h := mustHNSW(t, vecs, 2, DefaultHNSWParams())
	// A beam of k nodes (overfetch 1) holds one tied node at k = 1 and
	// turns the others away.
	narrow, err := h.WithBeam(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	ex, _ := NewExact(vecs, 2)
	odd := filterOf(n, func(id int32) bool { return id%2 == 1 })
	for _, h := range []*HNSW{h, narrow} {
		for _, q := range [][]float32{{1, 0}, {-2, 0}} {
			for _, accept := range []Filter{nil, odd} {
				for _, k := range []int{1, 10, 11, 21, 100} {
					got, err := h.Search(nil, q, k, accept)
					if err != nil {
						t.Fatal(err)
					}
					want, _ := ex.Search(nil, q, k, accept)
					if !slices.Equal(got, want) {
						t.Fatalf("ef %d overfetch %d q %v k %d filtered %t: got %v\nwant %v", h.EfSearch(), h.Overfetch(), q, k, accept != nil, got[:min(len(got), 12)], want[:min(len(want), 12)])
					}
				}
			}
		}
	}
}

// skipRace skips a test that builds a graph of thousands of nodes on one
// goroutine: the race detector has nothing to check there and makes it
// 15–35× slower. make test runs every test again without it.
func skipRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("one goroutine; make test runs it without the race detector")
	}
}

// checkRecall logs idx's recall@10 and @100 against ex over qs and fails
// the test below 0.99, the design's bar for serving from HNSW; what
// prefixes the messages.
func checkRecall(t *testing.T, idx Index, ex *Exact, qs [][]float32, what string) {
	t.Helper()
	rec, err := SelfCheck(idx, ex, qs, []int{10, 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%srecall %v", what, rec)
	for _, k := range []int{10, 100} {
		if rec[k] < 0.99 {
			t.Errorf("%srecall@%d = %.4f < 0.99", what, k, rec[k])
		}
	}
}
