package ann

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	mrand "math/rand"
	"sync"

	"github.com/coder/hnsw"
)

// HNSWParams configures NewHNSW and ImportHNSW. Construction fields (M, M0,
// Ml, EfConstruction, Seed) are fixed at build time and travel with Export;
// ImportHNSW uses only the search fields.
//
// The graph is always built by this package (build.go) and loaded into
// coder/hnsw through its Import format: v0.6.1's own Add inserts with its
// greedy search and fragments clustered data into disconnected pieces.
type HNSWParams struct {
	// M is the number of links per node on upper layers.
	M int
	// M0 is the number of links per node on the base layer.
	M0 int
	// Ml is the probability that a node is promoted to the next layer.
	Ml float64
	// EfConstruction is the beam width of the insertion search.
	EfConstruction int
	// EfSearch is coder/hnsw's EfSearch: the cap on its search frontier.
	EfSearch int
	// Seed drives the insertion order and levels.
	Seed uint64
	// Overfetch is the number of graph candidates fetched per requested
	// result, and MinFetch the least fetched per query: a query for k
	// fetches max(k·Overfetch, MinFetch) candidates (at most Len()), all
	// re-ranked by exact Dot.
	Overfetch int
	MinFetch  int
	// MaxOverfetch is the largest candidates-per-result ratio tried when a
	// filter rejects candidates (the fetch grows ×4 per round up to it);
	// if k results are still not accepted the query is answered by an exact
	// scan.
	MaxOverfetch int
}

// DefaultHNSWParams are the measured defaults: the cheapest setting tried
// that reached recall@10 ≥ 0.99 on both synthetic workloads (the index
// sweep of tools/benchreport, docs/benchmarks.md, measures it).
// coder/hnsw's search visits about max(k·Overfetch, MinFetch) nodes around
// its entry; a low base degree (M0 16) lets that budget reach further from
// the entry than M0 32 does.
func DefaultHNSWParams() HNSWParams {
	return HNSWParams{
		M:              8,
		M0:             16,
		Ml:             1.0 / 8,
		EfConstruction: 200,
		EfSearch:       400,
		Seed:           1,
		Overfetch:      8,
		MinFetch:       400,
		MaxOverfetch:   256,
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
	if p.MinFetch < 1 || p.MinFetch > 1<<20 {
		bad("MinFetch = %d not in [1, 1048576]", p.MinFetch)
	}
	if p.MaxOverfetch < p.Overfetch || p.MaxOverfetch > 1<<20 {
		bad("MaxOverfetch = %d not in [Overfetch, 1048576]", p.MaxOverfetch)
	}
	return errors.Join(errs...)
}

// HNSW answers queries from a coder/hnsw graph over the
// inner-product augmentation of the vectors, re-ranking candidates exactly.
//
// Inner product is reduced to the library's cosine distance: each item x
// becomes [x, sqrt(R²−|x|²)]/R with R the largest norm, each query q becomes
// [q, 0]/|q|, so cosine(x', q') = dot(x, q)/(R|q|) ranks exactly by inner
// product, and no stored vector is zero (a zero item maps to [0…0, 1]). A
// zero query scores every item 0 and is answered by the exact scan.
//
// coder/hnsw v0.6.1's layer search stops at the first expansion that does not
// improve its best candidate once it holds k results, so asking it for
// k·Overfetch results makes it flood that many nodes best-first from the
// entry it descends to; on a well-connected graph the true top-k lies inside
// that flood. Its Search only reads the graph (it allocates its own heaps and
// visited set per call; verified in graph.go), and the graph is never
// mutated after construction, so HNSW is safe for concurrent use.
type HNSW struct {
	p     HNSWParams
	exact *Exact
	aug   []float32 // n rows of width dim+1, unit length
	graph *hnsw.Graph[int32]
	blob  []byte // the graph in the library's Export format
	vsum  uint64 // fingerprint of the vectors, checked by ImportHNSW
	pool  sync.Pool
}

var _ Index = (*HNSW)(nil)

type scratch struct {
	qa    []float32
	mark  []uint32
	epoch uint32
}

// NewHNSW copies vectors (flat row-major n×dim), builds a graph and loads
// it into coder/hnsw.
func NewHNSW(vectors []float32, dim int, p HNSWParams) (*HNSW, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	h, err := newHNSWBase(vectors, dim, p)
	if err != nil {
		return nil, err
	}
	d1, n := dim+1, h.exact.n
	blob := encodeGraph(nativeBuild(h.aug, d1, n, p.M, p.M0, p.EfConstruction, p.Ml, buildSeed(p.Seed)), h.aug, d1)
	if err := h.load(blob); err != nil {
		return nil, fmt.Errorf("ann: graph: %w", err)
	}
	return h, nil
}

func newHNSWBase(vectors []float32, dim int, p HNSWParams) (*HNSW, error) {
	ex, err := NewExact(vectors, dim)
	if err != nil {
		return nil, err
	}
	h := &HNSW{p: p, exact: ex, aug: augment(ex.vecs, dim, ex.n), vsum: fingerprint(ex.vecs, dim)}
	n := ex.n
	h.pool.New = func() any {
		return &scratch{qa: make([]float32, dim+1), mark: make([]uint32, n)}
	}
	return h, nil
}

// load validates blob, imports it into a coder/hnsw graph and keeps both.
func (h *HNSW) load(blob []byte) error {
	if _, err := decodeGraph(blob, h.aug, h.exact.dim+1, h.exact.n); err != nil {
		return fmt.Errorf("%w: graph: %w", ErrInvalid, err)
	}
	g, err := libraryImport(blob, h.p.Seed)
	if err != nil {
		return err
	}
	g.EfSearch = h.p.EfSearch
	h.graph, h.blob = g, blob
	return nil
}

// libraryImport loads validated bytes, converting a panic inside the
// library into an error.
func libraryImport(blob []byte, seed uint64) (g *hnsw.Graph[int32], err error) {
	defer func() {
		if r := recover(); r != nil {
			g, err = nil, fmt.Errorf("ann: coder/hnsw Import panicked: %v", r)
		}
	}()
	// Rng is only used by Add, which is never called; set it so the library
	// does not seed one from the clock.
	g = &hnsw.Graph[int32]{Rng: mrand.New(mrand.NewSource(int64(seed)))}
	if err := g.Import(bytes.NewReader(blob)); err != nil {
		return nil, fmt.Errorf("ann: coder/hnsw Import: %w", err)
	}
	return g, nil
}

// augment maps rows to unit vectors of width dim+1 whose cosine with
// [q, 0] ranks by inner product (see HNSW).
func augment(vecs []float32, dim, n int) []float32 {
	norms := make([]float64, n)
	var r2 float64
	for i := range n {
		norms[i], _ = squaredNorm(vecs[i*dim : (i+1)*dim])
		r2 = max(r2, norms[i])
	}
	if r2 == 0 {
		r2 = 1 // all vectors are zero: every item becomes [0…0, 1]
	}
	r := math.Sqrt(r2)
	d1 := dim + 1
	out := make([]float32, n*d1)
	for i := range n {
		row := out[i*d1 : (i+1)*d1]
		for j, x := range vecs[i*dim : (i+1)*dim] {
			row[j] = float32(float64(x) / r)
		}
		row[dim] = float32(math.Sqrt(max(0, r2-norms[i])) / r)
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

// Search returns the k best accepted items. Candidates come from the
// graph (k·Overfetch, growing ×4 up to k·MaxOverfetch while a filter leaves
// fewer than k), are de-duplicated and re-ranked by exact Dot,
// so every returned score is exact; if k are still not accepted, the query
// is answered by an exact scan.
//
// Allocations: the wrapper itself reuses pooled scratch and writes into dst
// (allocating it once if cap(dst) < min(k, Len())), but coder/hnsw's Search
// allocates per call: its heaps (EfSearch and k·Overfetch capacity), a
// visited map, a sorted key slice per expanded node and the result slice —
// on the order of a few hundred allocations per query (see BenchmarkSearch).
func (h *HNSW) Search(dst []Result, q []float32, k int, accept Filter) ([]Result, error) {
	ex := h.exact
	q2, err := checkQuery(q, ex.dim, k)
	if err != nil {
		return dst[:0], err
	}
	if err := checkFilter(accept, ex.n); err != nil {
		return dst[:0], err
	}
	t := newTopK(dst, k, ex.n)
	if q2 == 0 {
		ex.scan(&t, q, accept)
		return t.sorted(), nil
	}
	s := h.pool.Get().(*scratch)
	defer h.pool.Put(s)
	inv := 1 / math.Sqrt(q2)
	for j, x := range q {
		s.qa[j] = float32(float64(x) * inv)
	}
	s.qa[ex.dim] = 0
	s.epoch++
	if s.epoch == 0 {
		clear(s.mark)
		s.epoch = 1
	}

	fetch := min(ex.n, max(k*h.p.Overfetch, h.p.MinFetch))
	limit := min(ex.n, max(k*h.p.MaxOverfetch, fetch))
	accepted := 0
	for {
		for _, node := range h.graph.Search(s.qa, fetch) {
			id := node.Key
			if s.mark[id] == s.epoch {
				continue
			}
			s.mark[id] = s.epoch
			if !accept.Accepts(id) {
				continue
			}
			accepted++
			t.push(Result{ID: id, Score: Dot(q, ex.Vector(id))})
		}
		if accepted >= t.k {
			return t.sorted(), nil
		}
		if fetch >= limit {
			break
		}
		fetch = min(limit, fetch*4)
	}
	t.h = t.h[:0]
	ex.scan(&t, q, accept)
	return t.sorted(), nil
}
