package ann

import (
	"fmt"
	"math"
	"sync"
)

// Segment is a small, growing set of vectors scanned exactly: the movies
// that catalogue changes add between two artifacts. Its complete blocks of
// eight are kept as Exact keeps them and scored by the same kernel, the
// last few rows one by one, all bit-identical to Dot.
//
// Versions share memory as slices do: Append writes past the end of the
// version it is called on, so it must be called on the latest version
// only; an older version never reads what was appended after it and stays
// valid (and safe for concurrent searches) while newer ones grow.
type Segment struct {
	vecs   []float32 // row-major
	blocks []float32 // the first len(blocks)/dim rows in blocks of eight (see Exact)
	dim    int
	pool   *sync.Pool                                                       // *[]float32 scores, shared by the versions
	next   func(scores []float32, accept Filter, from int, thr float32) int // as Exact's
}

// NewSegment returns an empty segment of dim-dimensional vectors.
func NewSegment(dim int) Segment {
	return Segment{dim: dim, pool: &sync.Pool{New: func() any { return new([]float32) }}, next: nextAtLeast()}
}

// Len is the number of vectors.
func (s Segment) Len() int { return len(s.vecs) / max(s.dim, 1) }

// Vector returns the stored vector of row r; the caller must not modify it.
func (s Segment) Vector(r int32) []float32 {
	i := int(r) * s.dim
	return s.vecs[i : i+s.dim : i+s.dim]
}

// Append returns s with vec added as row s.Len(); a vec of another length
// is a programmer error and panics. Values are not checked: the caller's
// vectors are (a NaN would only never score). See Segment for which
// version may be appended to.
func (s Segment) Append(vec []float32) Segment {
	if len(vec) != s.dim {
		panic(fmt.Sprintf("ann: Segment.Append of %d values, dim %d", len(vec), s.dim))
	}
	s.vecs = append(s.vecs, vec...)
	if n := s.Len(); n%lanes == 0 { // a block is complete: append it blocked
		rows := s.vecs[(n-lanes)*s.dim:]
		for d := range s.dim {
			for j := range lanes {
				s.blocks = append(s.blocks, rows[j*s.dim+d])
			}
		}
	}
	return s
}

// Search returns the k best-scoring rows that accept allows (nil: every
// row, at the cost of building that filter) by Dot with q, best first
// with ties by lower row, each id offset by off, in dst[:0]. It fails as
// Exact.Search does.
func (s Segment) Search(dst []Result, q []float32, k int, accept Filter, off int32) ([]Result, error) {
	n := s.Len()
	if _, err := checkQuery(q, s.dim, k); err != nil {
		return dst[:0], err
	}
	if err := checkFilter(accept, n); err != nil {
		return dst[:0], err
	}
	t := newTopK(dst, k, n)
	if n == 0 {
		return t.sorted(), nil
	}
	if accept == nil {
		accept = AllFilter(n)
	}
	buf := s.pool.Get().(*[]float32)
	defer s.pool.Put(buf)
	padded := (n + lanes - 1) / lanes * lanes
	if cap(*buf) < padded {
		*buf = make([]float32, padded+padded/2)
	}
	scores := (*buf)[:padded] // the padding slots are past n: never offered
	blocked := len(s.blocks) / s.dim
	scoreBlocks(scores[:blocked], s.blocks, q)
	for r := blocked; r < n; r++ {
		scores[r] = Dot(q, s.vecs[r*s.dim:(r+1)*s.dim])
	}
	offer(&t, scores, n, accept, float32(math.Inf(-1)), off, s.next)
	return t.sorted(), nil
}
