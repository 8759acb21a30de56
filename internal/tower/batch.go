package tower

import (
	"fmt"

	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/nn"
)

// Batch is the workspace of a batched forward and backward pass through one
// tower: activations and gradients for up to Cap rows. Calls on disjoint row
// ranges [lo, hi) may run concurrently; each concurrent caller brings its own
// Grads.
type Batch struct {
	Cap   int
	X     []float32   // Cap×InDim: pooled embeddings, concatenated
	H     [][]float32 // per layer: Cap×Out, after the layer's ReLU if any
	Out   []float32   // Cap×Dim: the tower output (normalised if configured)
	DOut  []float32   // Cap×Dim: the caller writes ∂loss/∂Out here before Backward
	DX    []float32   // Cap×InDim: ∂loss/∂X after Backward
	norms []float32
	dH    [][]float32
	oov   []int32
}

// NewBatch returns a workspace for up to capacity rows.
func (t *Tower) NewBatch(capacity int) *Batch {
	b := &Batch{Cap: capacity, X: make([]float32, capacity*t.inDim), DX: make([]float32, capacity*t.inDim),
		norms: make([]float32, capacity), oov: make([]int32, 1)}
	for _, l := range t.Layers {
		b.H = append(b.H, make([]float32, capacity*l.Out))
		b.dH = append(b.dH, make([]float32, capacity*l.Out))
	}
	last := len(t.Layers) - 1
	if t.Normalize {
		b.Out = make([]float32, capacity*t.Dim())
		b.DOut = make([]float32, capacity*t.Dim())
	} else {
		b.Out = b.H[last]
		b.DOut = b.dH[last]
	}
	return b
}

// Forward computes rows [lo, hi) of the batch: row r's input is in[r], whose
// indices must be within the vocabularies.
func (t *Tower) Forward(b *Batch, in []feature.Encoded, lo, hi int) {
	if hi > b.Cap || hi > len(in) || lo < 0 || lo > hi {
		panic(fmt.Sprintf("tower: forward rows [%d,%d) of %d inputs, capacity %d", lo, hi, len(in), b.Cap))
	}
	for r := lo; r < hi; r++ {
		enc := in[r]
		if len(enc) != len(t.Embeddings) {
			panic(fmt.Sprintf("tower: %d input fields, want %d", len(enc), len(t.Embeddings)))
		}
		x := b.X[r*t.inDim : (r+1)*t.inDim]
		for f, e := range t.Embeddings {
			e.PoolTo(x[t.offsets[f]:t.offsets[f]+e.Dim], enc[f])
		}
	}
	t.forwardDense(b, lo, hi)
}

func (t *Tower) forwardDense(b *Batch, lo, hi int) {
	n := hi - lo
	x := b.X[lo*t.inDim : hi*t.inDim]
	last := len(t.Layers) - 1
	for l, layer := range t.Layers {
		y := b.H[l][lo*layer.Out : hi*layer.Out]
		layer.ForwardTo(y, x, n)
		if l < last || t.OutputReLU {
			nn.ReLUTo(y, y)
		}
		x = y
	}
	if t.Normalize {
		dim := t.Dim()
		nn.L2NormalizeTo(b.Out[lo*dim:hi*dim], b.norms[lo:hi], x, n, dim)
	}
}

// Grads holds the dense-layer gradients of one tower.
type Grads struct {
	W, B [][]float32 // per layer, shaped like the layer's W and B
	wt   [][]float32 // per layer: scratch for Wᵀ
}

// NewGrads returns zero gradients shaped like t's layers.
func (t *Tower) NewGrads() *Grads {
	g := &Grads{}
	for _, l := range t.Layers {
		g.W = append(g.W, make([]float32, len(l.W)))
		g.B = append(g.B, make([]float32, len(l.B)))
		g.wt = append(g.wt, make([]float32, len(l.W)))
	}
	return g
}

// Zero resets the gradients.
func (g *Grads) Zero() {
	for i := range g.W {
		clear(g.W[i])
		clear(g.B[i])
	}
}

// Add adds o into g.
func (g *Grads) Add(o *Grads) {
	for i := range g.W {
		addTo(g.W[i], o.W[i])
		addTo(g.B[i], o.B[i])
	}
}

func addTo(dst, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] += v
	}
}

// Backward propagates b.DOut of rows [lo, hi) down to b.DX, adding the
// dense-layer gradients into g. Forward must have run on the same rows, and
// the weights must not change in between.
func (t *Tower) Backward(b *Batch, g *Grads, lo, hi int) {
	n := hi - lo
	last := len(t.Layers) - 1
	if t.Normalize {
		dim := t.Dim()
		nn.L2NormalizeBackwardTo(b.dH[last][lo*dim:hi*dim], b.DOut[lo*dim:hi*dim], b.Out[lo*dim:hi*dim], b.norms[lo:hi], n, dim)
	}
	for l := last; l >= 0; l-- {
		layer := t.Layers[l]
		dy := b.dH[l][lo*layer.Out : hi*layer.Out]
		if l < last || t.OutputReLU {
			nn.ReLUBackwardTo(dy, dy, b.H[l][lo*layer.Out:hi*layer.Out])
		}
		var x, dx []float32
		if l == 0 {
			x = b.X[lo*t.inDim : hi*t.inDim]
			dx = b.DX[lo*t.inDim : hi*t.inDim]
		} else {
			in := layer.In
			x = b.H[l-1][lo*in : hi*in]
			dx = b.dH[l-1][lo*in : hi*in]
		}
		layer.BackwardTo(dx, g.W[l], g.B[l], x, dy, g.wt[l], n)
	}
}

// NewSparseGrads returns one sparse gradient per embedding table.
func (t *Tower) NewSparseGrads() []*nn.SparseGrad {
	out := make([]*nn.SparseGrad, len(t.Embeddings))
	for i, e := range t.Embeddings {
		out[i] = nn.NewSparseGrad(e.Rows, e.Dim)
	}
	return out
}

// EmbeddingBackward adds field f's embedding gradient of rows [lo, hi) into
// g (which must belong to that field's table). Different fields may run
// concurrently; one field's rows must not.
func (t *Tower) EmbeddingBackward(g *nn.SparseGrad, f int, b *Batch, in []feature.Encoded, lo, hi int) {
	off, dim, decay := t.offsets[f], t.Embeddings[f].Dim, t.Embeddings[f].Decay
	for r := lo; r < hi; r++ {
		g.PoolBackwardDecay(in[r][f], b.DX[r*t.inDim+off:r*t.inDim+off+dim], decay)
	}
}
