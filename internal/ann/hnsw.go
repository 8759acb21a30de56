package ann

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
)

// HNSWParams configures NewHNSW and ImportHNSW. Construction fields (M, M0,
// Ml, EfConstruction, Seed) are fixed at build time and travel with Export;
// ImportHNSW uses only the search fields.
//
// The graph is always built by this package (build.go): coder/hnsw
// v0.6.1's own Add inserts with its greedy search and fragments clustered
// data into disconnected pieces. Its Export format is still read
// (graphfmt.go) and written for the library benchmark.
type HNSWParams struct {
	// M is the number of links per node on upper layers.
	M int
	// M0 is the number of links per node on the base layer.
	M0 int
	// Ml is the probability that a node is promoted to the next layer.
	Ml float64
	// EfConstruction is the beam width of the insertion search.
	EfConstruction int
	// Seed drives the insertion order and levels.
	Seed uint64
	// EfSearch and Overfetch set the beam width of a query for k results:
	// max(EfSearch, k·Overfetch, k+1), at most Len(). A wider beam visits more
	// nodes and finds more of the true top k.
	EfSearch  int
	Overfetch int
	// BuildWorkers is how many goroutines insert nodes while a graph is
	// built; 0 means GOMAXPROCS. One worker builds the same graph for the
	// same Seed, bit for bit; several build it faster, to the same recall,
	// but not reproducibly (see buildGraph). It is not part of the graph.
	BuildWorkers int `json:",omitempty"`
}

// DefaultHNSWParams are the measured defaults: the cheapest search setting
// that reached recall@10 and recall@100 ≥ 0.99 on the clustered synthetic
// vectors at 100,000 and 1,000,000 items (docs/ann.md).
func DefaultHNSWParams() HNSWParams {
	return HNSWParams{
		M:              8,
		M0:             16,
		Ml:             1.0 / 8,
		EfConstruction: 200,
		Seed:           1,
		EfSearch:       24,
		Overfetch:      2,
	}
}

// Validate reports every problem with p at once.
func (p HNSWParams) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: hnsw params: "+format, append([]any{ErrInvalid}, a...)...))
	}
	if p.M < 2 || p.M > maxDegree/2 {
		bad("M = %d not in [2, %d]", p.M, maxDegree/2)
	}
	if p.M0 < 2 || p.M0 > maxDegree/2 {
		bad("M0 = %d not in [2, %d]", p.M0, maxDegree/2)
	}
	if !(p.Ml > 0 && p.Ml < 1) {
		bad("Ml = %v not in (0, 1)", p.Ml)
	}
	if p.EfConstruction < 1 || p.EfConstruction > 1<<16 {
		bad("EfConstruction = %d not in [1, 65536]", p.EfConstruction)
	}
	if p.EfSearch < 1 || p.EfSearch > 1<<20 {
		bad("EfSearch = %d not in [1, 1048576]", p.EfSearch)
	}
	if p.Overfetch < 1 || p.Overfetch > 1<<16 {
		bad("Overfetch = %d not in [1, 65536]", p.Overfetch)
	}
	if p.BuildWorkers < 0 || p.BuildWorkers > 1024 {
		bad("BuildWorkers = %d not in [0, 1024]", p.BuildWorkers)
	}
	return errors.Join(errs...)
}

// HNSW answers queries from a hierarchical navigable small-world graph
// over the vectors, searched by this package's own beam search (graph.go)
// with exact inner products.
//
// The graph is built over the inner-product augmentation of the vectors:
// each item x becomes [x, sqrt(R²−|x|²)]/R with R the largest norm, so
// that items are unit vectors whose nearness (their dot product) makes a
// navigable graph, and dot(aug(x), [q, 0]) = dot(x, q)/R ranks items
// exactly as the inner product with q does. A query therefore walks the
// graph scoring nodes by Dot(q, x) on the original vectors: no
// augmentation at query time, and every score is the exact Dot value. A
// zero query scores every item 0 and is answered by the exact scan (ties
// by lower id).
//
// The graph has one node per distinct vector (distinct.go): a search
// finds nodes and expands each into the rows that share its vector.
//
// The graph is flat and pointer-free (graph.go), the vectors are the exact
// index's (or, with duplicates, their distinct rows), and each query's
// memory comes from a pool, so a search allocates nothing. The graph is never mutated after construction, so
// HNSW is safe for concurrent use.
type HNSW struct {
	p      HNSWParams
	exact  *Exact
	g      *graph
	gvecs  []float32  // the graph's vectors, one per node: the distinct rows
	groups groups     // graph node → the rows holding its vector (distinct.go)
	long   *Exact     // the vectors of longNodes, scanned after every beam (seedLong)
	longID []int32    // long's rows as graph nodes
	vsum   uint64     // fingerprint of the vectors, checked by ImportHNSW
	pool   *sync.Pool // *scratch; a pointer whose New captures no HNSW, so the runtime's list of pools does not keep a dropped graph alive
}

var _ Index = (*HNSW)(nil)

// NewHNSW copies vectors (flat row-major n×dim) and builds a graph over
// the distinct ones.
func NewHNSW(vectors []float32, dim int, p HNSWParams) (*HNSW, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	h, err := newHNSWBase(vectors, dim, p)
	if err != nil {
		return nil, err
	}
	a := h.augmenter()
	workers := p.BuildWorkers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	h.g = buildGraph(a.all(), dim+1, h.groups.nodes(), p.M, p.M0, p.EfConstruction, p.Ml, buildSeed(p.Seed), workers)
	h.long, h.longID = longIndex(h.gvecs, dim)
	return h, nil
}

func newHNSWBase(vectors []float32, dim int, p HNSWParams) (*HNSW, error) {
	ex, err := NewExact(vectors, dim)
	if err != nil {
		return nil, err
	}
	h := &HNSW{p: p, exact: ex, vsum: fingerprint(ex.vecs, dim)}
	h.gvecs, h.groups = distinctRows(ex.vecs, dim)
	h.pool = scratchPool(h.groups.nodes())
	return h, nil
}

// useNodes sets the mapping for a loaded graph of nodes nodes: one per
// distinct vector, or one per row for a graph written before duplicates
// were merged (the same thing when no vector repeats), and the outlying
// nodes seedLong checks.
func (h *HNSW) useNodes(nodes int) error {
	switch nodes {
	case h.groups.nodes():
	case h.exact.n:
		h.gvecs, h.groups = h.exact.vecs, identityGroups(h.exact.n)
		h.pool = scratchPool(h.exact.n)
	default:
		return fmt.Errorf("%w: import: graph has %d nodes, vectors have %d rows, %d distinct",
			ErrInvalid, nodes, h.exact.n, h.groups.nodes())
	}
	h.long, h.longID = longIndex(h.gvecs, h.exact.dim)
	return nil
}

func (h *HNSW) augmenter() augmenter { return newAugmenter(h.gvecs, h.exact.dim) }

// augmenter computes the rows of the inner-product augmentation (see
// HNSW) one at a time, so that the whole augmented matrix exists only
// while a graph is built.
type augmenter struct {
	vecs  []float32
	dim   int
	r, r2 float64
}

func newAugmenter(vecs []float32, dim int) augmenter {
	a := augmenter{vecs: vecs, dim: dim}
	for i := range len(vecs) / dim {
		s, _ := squaredNorm(vecs[i*dim : (i+1)*dim])
		a.r2 = max(a.r2, s)
	}
	if a.r2 == 0 {
		a.r2 = 1 // all vectors are zero: every item becomes [0…0, 1]
	}
	a.r = math.Sqrt(a.r2)
	return a
}

// rowTo writes the augmented row of item i (dim+1 floats) into dst.
func (a augmenter) rowTo(dst []float32, i int32) {
	x := vec(a.vecs, a.dim, i)
	s, _ := squaredNorm(x)
	for j, v := range x {
		dst[j] = float32(float64(v) / a.r)
	}
	dst[a.dim] = float32(math.Sqrt(max(0, a.r2-s)) / a.r)
}

// all returns every augmented row, row-major.
func (a augmenter) all() []float32 {
	d1, n := a.dim+1, len(a.vecs)/a.dim
	out := make([]float32, n*d1)
	for i := range int32(n) {
		a.rowTo(out[int(i)*d1:int(i+1)*d1], i)
	}
	return out
}

// fingerprint is FNV-1a over the vector bits and dim.
func fingerprint(vecs []float32, dim int) uint64 {
	h := uint64(14695981039346656037)
	mix := func(x uint32) {
		for range 4 {
			h ^= uint64(x & 0xff)
			h *= 1099511628211
			x >>= 8
		}
	}
	mix(uint32(dim))
	for _, v := range vecs {
		mix(math.Float32bits(v))
	}
	return h
}

// buildSeed scrambles Seed for the builder's generator (splitmix64 of
// Seed+1·golden ratio: the seed the first graph got when several could be
// built, so a given Seed still builds the same graph).
func buildSeed(seed uint64) uint64 {
	z := seed + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Len is the number of vectors.
func (h *HNSW) Len() int { return h.exact.n }

// Dim is the vector dimension.
func (h *HNSW) Dim() int { return h.exact.dim }

// Name is "hnsw".
func (h *HNSW) Name() string { return "hnsw" }

// EfSearch is the beam width of a query for k ≤ EfSearch/Overfetch.
func (h *HNSW) EfSearch() int { return h.p.EfSearch }

// Overfetch is the beam width per result of a query for k > EfSearch/Overfetch.
func (h *HNSW) Overfetch() int { return h.p.Overfetch }

// M is the graph's degree above its base layer (the base layer's is M0),
// as built: an imported graph keeps its own, whatever the params given.
func (h *HNSW) M() int { return h.p.M }

// WithBeam returns an index over the same graph and vectors (shared, not
// copied) whose queries for k results use beam width max(ef, k·overfetch, k+1).
func (h *HNSW) WithBeam(ef, overfetch int) (*HNSW, error) {
	p := h.p
	p.EfSearch, p.Overfetch = ef, overfetch
	if err := p.Validate(); err != nil {
		return nil, err
	}
	w := &HNSW{p: p, exact: h.exact, g: h.g, gvecs: h.gvecs, groups: h.groups, long: h.long, longID: h.longID, vsum: h.vsum, pool: scratchPool(h.groups.nodes())}
	return w, nil
}

// scanPerVisit bounds a filtered search: it gives up and scans once it has
// visited Len()/scanPerVisit nodes (a row the filter examines to tell
// whether a node with duplicates has an accepted row counts 1/scanPerVisit
// of a node). One visited node (a random read of a
// vector and of its links, heap pushes) costs as much as the exact scan
// spends on about 90 (1,000,000 items) to 125 (100,000) vectors
// (docs/ann.md: 165 ns against 1.85 ns, 65 ns against 0.52 ns); 64 gives up
// a little before the graph has cost a whole scan, so a filter whose
// accepted items lie far from the query costs at most about two scans.
const scanPerVisit = 64

// Search returns the k best accepted items: a best-first beam search of
// max(EfSearch, k·Overfetch, k+1) nodes over the graph of distinct vectors,
// scored by exact Dot and continued from any of the fixed outlying vectors
// that would enter the beam (seedLong), each node found expanded into its
// accepted rows, so results are sorted best first, ties by lower id, with
// exact scores.
//
// A filter is applied during the search: nodes none of whose rows it
// accepts are traversed but never returned. The exact scan answers instead
// when the query is zero, when the filter accepts no more than k items,
// when the beam ends with fewer than k accepted items, when distinct
// vectors in it tie at the k-th score (unvisited ones may tie too, and ties
// go to the lower ids), or when a filtered
// search has visited Len()/scanPerVisit nodes without finishing (a filter
// whose items lie far from the query), so a query gets k results whenever
// k are accepted.
//
// It allocates nothing when cap(dst) ≥ min(k, Len()); otherwise it
// allocates dst once.
func (h *HNSW) Search(dst []Result, q []float32, k int, accept Filter) ([]Result, error) {
	ex := h.exact
	q2, err := checkQuery(q, ex.dim, k)
	if err != nil {
		return dst[:0], err
	}
	if err := checkFilter(accept, ex.n); err != nil {
		return dst[:0], err
	}
	want, budget := min(k, ex.n), unlimited
	if accept != nil {
		want = min(want, accept.count(ex.n))
		budget = max(ex.n/scanPerVisit, 1)
	}
	if q2 == 0 || accept != nil && want < k {
		return h.scan(dst, q, k, accept), nil
	}
	s := h.pool.Get().(*scratch)
	defer h.pool.Put(s)
	// A beam of more than k nodes: a node tying the k-th score is then
	// either in it (tiedAtCut) or turned away below it (see tiedAtCut).
	s.begin(min(h.groups.nodes(), max(h.p.EfSearch, k*h.p.Overfetch, k+1)))
	s.seed(h.g.descend(h.gvecs, ex.dim, q, 0), accept, &h.groups)
	if !h.g.beam(s, h.gvecs, ex.dim, q, 0, accept, &h.groups, budget) {
		return h.scan(dst, q, k, accept), nil
	}
	if h.seedLong(s, q, k, accept) && !h.g.beam(s, h.gvecs, ex.dim, q, 0, accept, &h.groups, budget) {
		return h.scan(dst, q, k, accept), nil
	}
	// Expand the nodes, best first, into their accepted rows. A node's rows
	// share its score and ascend, so once the heap is full and one is
	// turned away, so are the rest; once a node scores below the heap's
	// worst, so do all after it.
	t := newTopK(dst, k, ex.n)
	nodes := s.res.sorted()
	for i, c := range nodes {
		if t.full() && c.Score < t.h[0].Score {
			nodes = nodes[:i]
			break
		}
		for _, row := range h.groups.of(c.ID) {
			r := Result{ID: row, Score: c.Score}
			if t.full() && !worse(t.h[0], r) {
				break
			}
			if accept.Accepts(row) {
				t.push(r)
			}
		}
	}
	if len(t.h) < want || t.full() && tiedAtCut(nodes, t.h[0].Score) {
		return h.scan(dst, q, k, accept), nil
	}
	return t.sorted(), nil
}

// tiedAtCut reports whether the last two of nodes (the beam's nodes, best
// first, down to the k-th result) score cut. Distinct vectors tying at the
// k-th score are how the search can tell that others it has not visited
// may tie too: the exact scan answers, so that ties go to the lower ids
// as they do there (a node's own rows are all expanded, so ties within
// one node, as between duplicates, need no scan). The beam holds more
// than k nodes, so a node it turned away for tying its worst cannot tie
// the k-th score unless a second node in it does: one node at the worst
// leaves at least k above it, each with a row, and the cut above it.
func tiedAtCut(nodes []Result, cut float32) bool {
	return len(nodes) >= 2 && nodes[len(nodes)-2].Score == cut
}

// scan answers a query with the exact scan.
func (h *HNSW) scan(dst []Result, q []float32, k int, accept Filter) []Result {
	t := newTopK(dst, k, h.exact.n)
	h.exact.scan(&t, q, accept)
	return t.sorted()
}

// scratchPool pools the scratch of searches over a graph of n nodes.
func scratchPool(n int) *sync.Pool {
	return &sync.Pool{New: func() any { return newScratch(n) }}
}

// seedLong scores the long nodes (longNodes) in one pass of the exact
// scan's block kernel and seeds the best k of those the beam has not seen
// that would enter it, reporting whether any did: k isolated ones are all
// a query can use, and each seed the beam goes on from costs a little
// search.
func (h *HNSW) seedLong(s *scratch, q []float32, k int, accept Filter) bool {
	if h.long == nil {
		return false
	}
	thr := float32(math.Inf(-1))
	if s.res.full() {
		thr = s.res.h[0].Score // below the beam's worst, nothing enters
	}
	t := newTopK(s.seeds, k, h.long.n)
	h.long.atLeast(&t, q, thr)
	s.scored += h.long.n / scanPerVisit // the filtered search's budget counts the scan
	seeded := false
	for _, r := range t.h {
		r.ID = h.longID[r.ID]
		if s.visited[r.ID] != s.epoch && (!s.res.full() || worse(s.res.h[0], r)) {
			s.seed(r, accept, &h.groups)
			seeded = true
		}
	}
	s.seeds = t.h[:0]
	return seeded
}

// longSeeds is how many nodes every search checks after its beam
// (seedLong): half the vectors farthest from the mean, half the longest.
// The graph is built in the augmented space, where vectors much longer
// than the rest sit apart and keep few links in, so a beam from the crowd
// rarely reaches them although they score highest; and where one offset
// dominates every norm (the prior's dimension, most of a large catalogue
// at its default bias), the few movies off it, the ones rated of late,
// are the ones queries want, and they are the shorter ones (docs/ann.md,
// "Vectors far from the rest"). 512 dot products cost about a
// microsecond.
const longSeeds = 512

// longNodes returns the longSeeds/2 nodes farthest from the mean of vecs
// and the longSeeds/2 longest (for fewer than 32·longSeeds nodes, 1/64 of
// them each), without repeats (ties to the lower id).
func longNodes(vecs []float32, dim int) []int32 {
	n := len(vecs) / dim
	if n == 0 {
		return nil
	}
	c := make([]float64, dim)
	for i := range n {
		for j, v := range vecs[i*dim : (i+1)*dim] {
			c[j] += float64(v) / float64(n)
		}
	}
	half := min(longSeeds, n/32) / 2 // at most 1/32 of a small catalogue's scan
	far, longest := newTopK(nil, half, n), newTopK(nil, half, n)
	for i := range int32(n) {
		x := vec(vecs, dim, i)
		var d2 float64
		for j, v := range x {
			d2 += (float64(v) - c[j]) * (float64(v) - c[j])
		}
		far.push(Result{ID: i, Score: float32(d2)})
		longest.push(Result{ID: i, Score: Dot(x, x)})
	}
	var long []int32
	for _, r := range append(far.sorted(), longest.sorted()...) {
		if !slices.Contains(long, r.ID) {
			long = append(long, r.ID)
		}
	}
	return long
}

// longIndex is the exact index of the vectors of longNodes, and their
// nodes; nil when there are none.
func longIndex(vecs []float32, dim int) (*Exact, []int32) {
	ids := longNodes(vecs, dim)
	if len(ids) == 0 {
		return nil, nil
	}
	rows := make([]float32, 0, len(ids)*dim)
	for _, id := range ids {
		rows = append(rows, vec(vecs, dim, id)...)
	}
	ex, err := NewExact(rows, dim)
	if err != nil { // the rows passed the index's own NewExact
		return nil, nil
	}
	return ex, ids
}
