package ann

import (
	"bytes"
	"fmt"
	"math"
	mrand "math/rand"

	"github.com/coder/hnsw"
)

// libraryHNSW searches an HNSW's graph with github.com/coder/hnsw v0.6.1's
// own Search, as the service did before issue 13: the graph is loaded
// through the library's Import, the query is augmented and normalised to
// the library's cosine distance, max(k·overfetch, minFetch) candidates are
// fetched and re-ranked by exact Dot. It is kept for the benchmark that
// compares it with the package's search (docs/ann.md) and for the format
// test; it is not safe for concurrent use, and a filter or a query the
// candidates cannot answer goes to the exact scan.
type libraryHNSW struct {
	h                   *HNSW
	g                   *hnsw.Graph[int32]
	overfetch, minFetch int
	qa                  []float32
}

func newLibraryHNSW(h *HNSW, efSearch, overfetch, minFetch int) (*libraryHNSW, error) {
	g, err := libraryImport(encodeGraph(h.g, h.augmenter()))
	if err != nil {
		return nil, err
	}
	g.EfSearch = efSearch
	return &libraryHNSW{h: h, g: g, overfetch: overfetch, minFetch: minFetch, qa: make([]float32, h.Dim()+1)}, nil
}

// libraryImport loads bytes in the library's format, converting a panic
// inside the library into an error.
func libraryImport(blob []byte) (g *hnsw.Graph[int32], err error) {
	defer func() {
		if r := recover(); r != nil {
			g, err = nil, fmt.Errorf("coder/hnsw Import panicked: %v", r)
		}
	}()
	// Rng is only used by Add; set it so the library does not seed one
	// from the clock.
	g = &hnsw.Graph[int32]{Rng: mrand.New(mrand.NewSource(1))}
	if err := g.Import(bytes.NewReader(blob)); err != nil {
		return nil, fmt.Errorf("coder/hnsw Import: %w", err)
	}
	return g, nil
}

func (l *libraryHNSW) Len() int     { return l.h.Len() }
func (l *libraryHNSW) Dim() int     { return l.h.Dim() }
func (l *libraryHNSW) Name() string { return "coder/hnsw" }

func (l *libraryHNSW) Search(dst []Result, q []float32, k int, accept Filter) ([]Result, error) {
	ex := l.h.exact
	q2, err := checkQuery(q, ex.dim, k)
	if err != nil {
		return dst[:0], err
	}
	if q2 == 0 || accept != nil {
		return l.h.scan(dst, q, k, accept), nil
	}
	inv := 1 / math.Sqrt(q2)
	for j, x := range q {
		l.qa[j] = float32(float64(x) * inv)
	}
	l.qa[ex.dim] = 0
	t := newTopK(dst, k, ex.n)
	fetch := min(ex.n, max(k*l.overfetch, l.minFetch))
	seen := 0
	for _, node := range l.g.Search(l.qa, fetch) {
		for _, row := range l.h.groups.of(node.Key) {
			t.push(Result{ID: row, Score: Dot(q, ex.Vector(row))})
			seen++
		}
	}
	if seen < t.k {
		return l.h.scan(dst, q, k, nil), nil
	}
	return t.sorted(), nil
}
