package ann

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// Result is one scored item. ID is the dense movie index 0..n-1.
type Result struct {
	ID    int32
	Score float32
}

// Filter is the set of ids a search may return, one bit per id: id i is
// accepted when bit i%64 of word i/64 is set. A nil Filter accepts every
// id; a non-nil one must have a word for every id of the index (NewFilter).
// Bits past the last id are ignored. A search only reads it.
type Filter []uint64

// NewFilter returns a filter for n ids that accepts none of them.
func NewFilter(n int) Filter { return make(Filter, (n+63)/64) }

// AllFilter returns a filter for n ids that accepts every one of them.
func AllFilter(n int) Filter {
	f := NewFilter(n)
	for i := range f {
		f[i] = ^uint64(0)
	}
	if r := n % 64; r != 0 {
		f[len(f)-1] = 1<<r - 1 // no bits past the last id
	}
	return f
}

// Accepts reports whether id may be returned.
func (f Filter) Accepts(id int32) bool {
	return f == nil || int(id>>6) < len(f) && f[id>>6]&(1<<(id&63)) != 0
}

// Accept adds id to the set.
func (f Filter) Accept(id int32) { f[id>>6] |= 1 << (id & 63) }

// Reject removes id from the set.
func (f Filter) Reject(id int32) { f[id>>6] &^= 1 << (id & 63) }

// count returns how many of the ids 0..n-1 are accepted (f not nil, long
// enough).
func (f Filter) count(n int) int {
	c := 0
	full := n / 64
	for _, w := range f[:full] {
		c += bits.OnesCount64(w)
	}
	if r := n % 64; r != 0 {
		c += bits.OnesCount64(f[full] & (1<<r - 1))
	}
	return c
}

// checkFilter validates a filter for n ids.
func checkFilter(f Filter, n int) error {
	if f != nil && len(f) < (n+63)/64 {
		return fmt.Errorf("%w: filter of %d words for %d ids (want %d)", ErrInvalid, len(f), n, (n+63)/64)
	}
	return nil
}

// Index answers top-k inner-product queries over a fixed set of vectors.
type Index interface {
	// Search appends up to k results, best first, into dst[:0] and returns
	// the extended slice. It fails if len(q) != Dim(), if q holds NaN or
	// ±Inf or is too large, if k < 1, or if the filter is too short. Fewer than k results come back
	// only if fewer than k items are accepted by the filter.
	Search(dst []Result, q []float32, k int, accept Filter) ([]Result, error)
	// Len is the number of indexed vectors.
	Len() int
	// Dim is the vector dimension.
	Dim() int
	// Name is "exact" or "hnsw".
	Name() string
}

// ErrInvalid is wrapped by every error caused by bad input (query, k,
// vectors, serialized graph), so callers can map it to a client error.
var ErrInvalid = errors.New("ann: invalid input")

// maxSquaredNorm bounds |v|² of stored vectors and queries. Below it every
// product q_i·x_i and every partial sum of Dot stays below MaxFloat32
// (|Σ q_i x_i| ≤ |q||x| ≤ 1e37), so no score can overflow to ±Inf or NaN.
const maxSquaredNorm = 1e37

// Dot is the score of every index: the float32 inner product summed in
// index order. Callers that score pairs outside the index (for example
// /score) should use it to agree bit for bit with Search.
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s float32
	for i, x := range a {
		// The conversion rounds the product, so the compiler cannot fuse
		// the multiply-add (it may on GOAMD64=v3), and every build sums the
		// same way as the exact scan's kernels.
		s += float32(x * b[i])
	}
	return s
}

// checkVectors validates a flat row-major matrix and returns its row count.
func checkVectors(vectors []float32, dim int) (int, error) {
	if dim < 1 {
		return 0, fmt.Errorf("%w: dim %d < 1", ErrInvalid, dim)
	}
	if len(vectors)%dim != 0 {
		return 0, fmt.Errorf("%w: %d floats is not a multiple of dim %d", ErrInvalid, len(vectors), dim)
	}
	n := len(vectors) / dim
	if n < 1 {
		return 0, fmt.Errorf("%w: no vectors", ErrInvalid)
	}
	if n > math.MaxInt32 {
		return 0, fmt.Errorf("%w: %d vectors exceed int32 ids", ErrInvalid, n)
	}
	for i := range n {
		if _, err := squaredNorm(vectors[i*dim : (i+1)*dim]); err != nil {
			return 0, fmt.Errorf("vector %d: %w", i, err)
		}
	}
	return n, nil
}

// squaredNorm returns |v|² in float64 after checking that v is finite and
// within maxSquaredNorm.
func squaredNorm(v []float32) (float64, error) {
	var s float64
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return 0, fmt.Errorf("%w: NaN or Inf component", ErrInvalid)
		}
		s += float64(x) * float64(x)
	}
	if s > maxSquaredNorm {
		return 0, fmt.Errorf("%w: squared norm %g exceeds %g", ErrInvalid, s, maxSquaredNorm)
	}
	return s, nil
}

// checkQuery validates a query against dim and k and returns |q|².
func checkQuery(q []float32, dim, k int) (float64, error) {
	if len(q) != dim {
		return 0, fmt.Errorf("%w: query has %d dimensions, index has %d", ErrInvalid, len(q), dim)
	}
	if k < 1 {
		return 0, fmt.Errorf("%w: k = %d < 1", ErrInvalid, k)
	}
	s, err := squaredNorm(q)
	if err != nil {
		return 0, fmt.Errorf("query: %w", err)
	}
	return s, nil
}

// worse reports whether a ranks below b: lower score, or equal score and
// higher id.
func worse(a, b Result) bool {
	if a.Score != b.Score {
		return a.Score < b.Score
	}
	return a.ID > b.ID
}

// topK is a bounded min-heap keyed by worse: h[0] is the worst kept result.
// It lives in a caller-provided slice so that searching allocates nothing.
type topK struct {
	h []Result
	k int
}

func newTopK(dst []Result, k, n int) topK {
	c := min(k, n)
	if cap(dst) < c {
		dst = make([]Result, 0, c)
	}
	return topK{h: dst[:0], k: c}
}

// full reports whether k results are held.
func (t *topK) full() bool { return len(t.h) == t.k }

// push offers r; it is kept if the heap is not full or r beats the worst.
func (t *topK) push(r Result) {
	if len(t.h) < t.k {
		t.h = append(t.h, r)
		t.up(len(t.h) - 1)
		return
	}
	if t.k == 0 || !worse(t.h[0], r) {
		return
	}
	t.h[0] = r
	t.down(0, len(t.h))
}

func (t *topK) up(i int) {
	h := t.h
	for i > 0 {
		p := (i - 1) / 2
		if !worse(h[i], h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (t *topK) down(i, n int) {
	h := t.h
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && worse(h[r], h[l]) {
			m = r
		}
		if !worse(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// sorted heap-sorts in place, best first, and returns the results.
func (t *topK) sorted() []Result {
	h := t.h
	for end := len(h) - 1; end > 0; end-- {
		h[0], h[end] = h[end], h[0]
		t.down(0, end)
	}
	return h
}
