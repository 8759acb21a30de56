package ann

import (
	"math"
	"sync"
)

// lanes is the number of vectors scored together: one 256-bit register of
// float32 scores.
const lanes = 8

// Exact scores every vector. It is immutable after construction and safe
// for concurrent use.
//
// Besides the row-major copy (for Vector), it keeps the vectors in blocks
// of eight, dimension-major inside a block (block b holds
// vecs[b·8+j][d] at b·8·dim + d·8 + j), so that one pass of vector
// instructions scores eight items at once. The last block is padded with
// zero vectors, which are never offered as results.
type Exact struct {
	vecs   []float32
	blocks []float32
	all    Filter                                                           // every id: the scan's filter when Search has none
	next   func(scores []float32, accept Filter, from int, thr float32) int // nextAtLeastAVX where the CPU has it
	dim    int
	n      int
	scores sync.Pool // *[]float32 of len(blocks)/dim: one score per slot
}

var _ Index = (*Exact)(nil)

// NewExact copies vectors (flat row-major n×dim) into an exact index. It
// rejects NaN, ±Inf and vectors whose squared norm exceeds 1e37.
func NewExact(vectors []float32, dim int) (*Exact, error) {
	n, err := checkVectors(vectors, dim)
	if err != nil {
		return nil, err
	}
	nb := (n + lanes - 1) / lanes
	blocks := make([]float32, nb*lanes*dim)
	for i := range n {
		b, j := i/lanes, i%lanes
		for d := range dim {
			blocks[b*lanes*dim+d*lanes+j] = vectors[i*dim+d]
		}
	}
	e := &Exact{vecs: append([]float32(nil), vectors...), blocks: blocks, all: AllFilter(n), next: nextAtLeastGo, dim: dim, n: n}
	if hasAVX() {
		e.next = nextAtLeastAVX
	}
	e.scores.New = func() any { s := make([]float32, nb*lanes); return &s }
	return e, nil
}

// Len is the number of vectors.
func (e *Exact) Len() int { return e.n }

// Dim is the vector dimension.
func (e *Exact) Dim() int { return e.dim }

// Name is "exact".
func (e *Exact) Name() string { return "exact" }

// Vector returns the stored vector of id; the caller must not modify it.
func (e *Exact) Vector(id int32) []float32 {
	i := int(id) * e.dim
	return e.vecs[i : i+e.dim : i+e.dim]
}

// Search returns the k best-scoring accepted vectors. It allocates nothing
// when cap(dst) ≥ min(k, Len()); otherwise it allocates dst once.
func (e *Exact) Search(dst []Result, q []float32, k int, accept Filter) ([]Result, error) {
	if _, err := checkQuery(q, e.dim, k); err != nil {
		return dst[:0], err
	}
	if err := checkFilter(accept, e.n); err != nil {
		return dst[:0], err
	}
	t := newTopK(dst, k, e.n)
	e.scan(&t, q, accept)
	return t.sorted(), nil
}

// scan offers every accepted vector to t. Scores are computed eight at a
// time (scoreBlocks) with the same operations in the same order as Dot, so
// they are bit-identical to it. accept must be nil or long enough.
func (e *Exact) scan(t *topK, q []float32, accept Filter) {
	sp := e.scores.Get().(*[]float32)
	defer e.scores.Put(sp)
	scores := *sp // padded to whole blocks; slots from e.n on are padding
	scoreBlocks(scores, e.blocks, q)
	if accept == nil {
		accept = e.all
	}
	// Below the worst kept score nothing can enter the heap, so the scan
	// only stops at accepted items scoring at least that, and skips the
	// rest eight at a time (scores are never NaN: vectors and queries are
	// validated).
	thr := float32(math.Inf(-1))
	for i := 0; i < e.n; i++ {
		if i = e.next(scores, accept, i, thr); i >= e.n {
			break
		}
		t.push(Result{ID: int32(i), Score: scores[i]})
		if t.full() {
			thr = t.h[0].Score
		}
	}
}

// nextAtLeastGo is nextAtLeastAVX without vector instructions.
func nextAtLeastGo(scores []float32, accept Filter, from int, thr float32) int {
	for i := from; i < len(scores); i++ {
		if scores[i] >= thr && accept[i>>6]&(1<<(i&63)) != 0 {
			return i
		}
	}
	return len(scores)
}

// scoreBlocks writes into dst (one score per slot, len(blocks)/len(q)
// slots) the inner products of q with the blocked vectors.
func scoreBlocks(dst, blocks, q []float32) {
	if len(q) > 0 && len(q) <= maxKernelDim && hasAVX() {
		// The kernel reads q broadcast to eight lanes per dimension.
		var qb [maxKernelDim * lanes]float32
		for d, x := range q {
			for j := range lanes {
				qb[d*lanes+j] = x
			}
		}
		scoreBlocksAVX(dst, blocks, qb[:len(q)*lanes])
		return
	}
	scoreBlocksGo(dst, blocks, q)
}

// maxKernelDim bounds the dimensions the vector kernel takes (its
// broadcast query lives on the stack); larger ones use scoreBlocksGo.
const maxKernelDim = 64

// scoreBlocksGo is scoreBlocks without vector instructions: per lane
// s = 0; s += q[d]·v[d] for d in order, each product rounded to float32
// before the sum, exactly like Dot and the vector kernel.
func scoreBlocksGo(dst, blocks, q []float32) {
	dim := len(q)
	for b := 0; b < len(dst)/lanes; b++ {
		blk := blocks[b*lanes*dim : (b+1)*lanes*dim]
		var acc [lanes]float32
		for d, x := range q {
			col := blk[d*lanes : d*lanes+lanes]
			for j := range lanes {
				acc[j] += float32(x * col[j])
			}
		}
		copy(dst[b*lanes:b*lanes+lanes], acc[:])
	}
}
