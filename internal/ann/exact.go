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
	vecs     []float32
	blocks   []float32
	all      Filter                                                           // every id: the scan's filter when Search has none
	next     func(scores []float32, accept Filter, from int, thr float32) int // nextAtLeastAVX where the CPU has it
	groupMax func(dst, scores []float32, accept Filter, chunk int)            // groupMaxAVX2, or nil: no bound (see bound.go)
	dim      int
	n        int
	scratch  *sync.Pool // *scanScratch; a pointer, so the runtime's list of pools does not keep a dropped index alive
}

// scanScratch is the per-scan memory of Exact, pooled so that searching
// allocates nothing.
type scanScratch struct {
	scores []float32 // len(blocks)/dim: one score per slot
	maxima []float32 // group maxima, grown on demand up to one per slot
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
	e := &Exact{vecs: append([]float32(nil), vectors...), blocks: blocks, all: AllFilter(n), next: nextAtLeast(), dim: dim, n: n}
	if hasAVX2() {
		// In plain Go, taking the group maxima costs more than the bound
		// saves (groupMaxGo: ~7 µs at n = 3,706); without AVX2 the scan
		// starts at -Inf as it always did.
		e.groupMax = groupMaxAVX2
	}
	e.scratch = &sync.Pool{New: func() any { return &scanScratch{scores: make([]float32, nb*lanes)} }}
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

// scan offers to t every accepted vector that can be among its best.
// Scores are computed eight at a time (scoreBlocks) with the same
// operations in the same order as Dot, so they are bit-identical to it.
// accept must be nil or long enough.
func (e *Exact) scan(t *topK, q []float32, accept Filter) {
	s := e.scratch.Get().(*scanScratch)
	defer e.scratch.Put(s)
	scoreBlocks(s.scores, e.blocks, q)
	thr := float32(math.Inf(-1))
	if e.groupMax != nil && boundPays(t.k, e.n) {
		thr = e.lowerBound(s, accept, t.k)
	}
	e.offer(t, s.scores, accept, thr)
}

// atLeast offers to t every vector scoring at least thr (seedLong's scan).
func (e *Exact) atLeast(t *topK, q []float32, thr float32) {
	s := e.scratch.Get().(*scanScratch)
	defer e.scratch.Put(s)
	scoreBlocks(s.scores, e.blocks, q)
	e.offer(t, s.scores, nil, thr)
}

// offer pushes into t every item of e that accept allows (nil: every
// one) scoring at least thr (see offer).
func (e *Exact) offer(t *topK, scores []float32, accept Filter, thr float32) {
	if accept == nil {
		accept = e.all
	}
	offer(t, scores, e.n, accept, thr, 0, e.next)
}

// offer pushes into t every item i < n that accept allows whose score
// (scores[i]; len(scores) a multiple of 8, accept a bit for each) is at
// least thr and, once t is full, above the worst score it keeps: below
// either, nothing can enter the heap. t must start empty (or hold only
// lower ids): ids rise, so a tie with the worst kept ranks below it. The
// rest is skipped eight at a time by next (scores are never NaN: vectors
// and queries are validated). thr must not exceed the k-th best accepted
// score. Ids are offset by off.
func offer(t *topK, scores []float32, n int, accept Filter, thr float32, off int32, next func(scores []float32, accept Filter, from int, thr float32) int) {
	for i := 0; i < n; i++ {
		if i = next(scores, accept, i, thr); i >= n {
			break
		}
		t.push(Result{ID: off + int32(i), Score: scores[i]})
		if t.full() {
			// Ids rise: a later tie with the worst kept ranks below it.
			thr = math.Nextafter32(t.h[0].Score, float32(math.Inf(1)))
		}
	}
}

// lowerBound returns a score that the k-th best accepted item reaches (see
// bound.go), or -Inf when it finds none. It reads s.scores and overwrites
// the padding slots with -Inf, so that they never count as items.
func (e *Exact) lowerBound(s *scanScratch, accept Filter, k int) float32 {
	nb := len(s.scores) / lanes
	chunk := chunkBlocks(k, nb)
	if e.groupMax == nil || chunk == 0 {
		return float32(math.Inf(-1)) // no kernel, or fewer slots than k
	}
	for i := e.n; i < len(s.scores); i++ {
		s.scores[i] = float32(math.Inf(-1))
	}
	g := (nb + chunk - 1) / chunk * lanes
	if g < k {
		return float32(math.Inf(-1))
	}
	if cap(s.maxima) < g {
		s.maxima = make([]float32, g)
	}
	maxima := s.maxima[:g]
	e.groupMax(maxima, s.scores, accept, chunk)
	return kthLargest(maxima, k)
}

// nextAtLeast returns nextAtLeastAVX where the CPU has it, else
// nextAtLeastGo.
func nextAtLeast() func(scores []float32, accept Filter, from int, thr float32) int {
	if hasAVX() {
		return nextAtLeastAVX
	}
	return nextAtLeastGo
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
