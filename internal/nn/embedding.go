package nn

import (
	"fmt"
	"math/rand/v2"
)

// Embedding is a lookup table of Rows vectors of width Dim. Row 0 is by
// convention the out-of-vocabulary row; it is trained like any other.
type Embedding struct {
	Rows, Dim int
	W         []float32 // Rows×Dim, row-major
	// Decay in (0, 1) makes PoolTo a recency-weighted mean for bags that
	// list the newest item first: the k-th index (0-based) weighs Decay^k.
	// 0 (or 1) is the plain mean.
	Decay float32
}

// decaying reports whether d weights a bag's positions (see Embedding.Decay).
func decaying(d float32) bool { return d > 0 && d < 1 }

// NewEmbedding returns a table initialised uniformly in ±scale (Keras uses
// 0.05).
func NewEmbedding(rows, dim int, scale float32, rng *rand.Rand) *Embedding {
	if rows <= 0 || dim <= 0 {
		panic(fmt.Sprintf("nn: embedding %d×%d", rows, dim))
	}
	e := &Embedding{Rows: rows, Dim: dim, W: make([]float32, rows*dim)}
	for i := range e.W {
		e.W[i] = (rng.Float32()*2 - 1) * scale
	}
	return e
}

// Row returns row r of the table (aliased).
func (e *Embedding) Row(r int32) []float32 {
	return e.W[int(r)*e.Dim : int(r)*e.Dim+e.Dim]
}

// PoolTo writes the mean of the rows idx into dst (len Dim), weighted by
// Decay if it decays; an empty bag gives zeros. Indices must be in range
// (the trainer validates its data, the serving path maps unknown indices
// to OOV before calling).
func (e *Embedding) PoolTo(dst []float32, idx []int32) {
	dst = dst[:e.Dim]
	clear(dst)
	if len(idx) == 0 {
		return
	}
	decay := poolDecay(e.Decay)
	addRows(dst, e.W, idx, 1, decay)
	if len(idx) > 1 {
		inv := 1 / poolWeight(len(idx), decay)
		for j := range dst {
			dst[j] *= inv
		}
	}
}

// poolDecay is the factor between the weights of consecutive rows of a
// bag: Decay if it decays, else 1.
func poolDecay(d float32) float32 {
	if decaying(d) {
		return d
	}
	return 1
}

// poolWeight is the total weight of a bag of n rows: Σ_{k<n} decay^k (n
// for decay 1).
func poolWeight(n int, decay float32) float32 {
	if decay == 1 { // n sums of 1, exact in float32 below 2²⁴
		return float32(n)
	}
	sum, w := float32(0), float32(1)
	for range n {
		sum += w
		w *= decay
	}
	return sum
}

// SparseGrad is the gradient of one embedding table as the set of rows a batch
// touched. Its dense buffer is allocated once; Clear zeroes only the touched
// rows, so a step costs O(rows touched), not O(table).
type SparseGrad struct {
	Dim     int
	G       []float32 // Rows×Dim; only touched rows are non-zero
	touched []int32   // in order of first touch (deterministic)
	mark    []bool
}

// NewSparseGrad returns an empty gradient for a rows×dim table.
func NewSparseGrad(rows, dim int) *SparseGrad {
	return &SparseGrad{Dim: dim, G: make([]float32, rows*dim), mark: make([]bool, rows), touched: make([]int32, 0, 64)}
}

// PoolBackward adds the gradient of PoolTo: grad/len(idx) to every row of
// idx (a row listed twice gets it twice).
func (g *SparseGrad) PoolBackward(idx []int32, grad []float32) {
	g.PoolBackwardDecay(idx, grad, 0)
}

// PoolBackwardDecay adds the gradient of PoolTo of a table with Decay
// decay: grad·decay^k/Σ_j decay^j to the k-th row of idx (grad/len(idx)
// to each without decay).
func (g *SparseGrad) PoolBackwardDecay(idx []int32, grad []float32, decay float32) {
	if len(idx) == 0 {
		return
	}
	grad = grad[:g.Dim]
	for _, r := range idx { // indexing mark checks r, as axpyRows needs
		if !g.mark[r] {
			g.mark[r] = true
			g.touched = append(g.touched, r)
		}
	}
	decay = poolDecay(decay)
	scale := 1 / poolWeight(len(idx), decay)
	if g.Dim >= 16 || decay != 1 { // history bags: the row kernel
		axpyRows(grad, g.G, idx, scale, decay)
		return
	}
	for _, r := range idx { // short plain bags (genres): a scalar loop
		row := g.G[int(r)*g.Dim : int(r)*g.Dim+g.Dim]
		if scale == 1 {
			for j, v := range grad {
				row[j] += v
			}
		} else {
			for j, v := range grad {
				row[j] += v * scale
			}
		}
	}
}

// Touched returns the rows with a gradient, in order of first touch.
func (g *SparseGrad) Touched() []int32 { return g.touched }

// Row returns the gradient of row r (aliased).
func (g *SparseGrad) Row(r int32) []float32 { return g.G[int(r)*g.Dim : int(r)*g.Dim+g.Dim] }

// Clear zeroes the touched rows and forgets them.
func (g *SparseGrad) Clear() {
	for _, r := range g.touched {
		clear(g.Row(r))
		g.mark[r] = false
	}
	g.touched = g.touched[:0]
}
