package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Dense is a fully connected layer y = x·W + b. W is stored In×Out
// (row-major): the forward pass of a row is then one FMARows over W's rows,
// with the outputs held in registers.
type Dense struct {
	In, Out int
	W       []float32 // In×Out, row-major
	B       []float32 // Out
}

// NewDense returns a layer initialised uniformly in ±sqrt(6/(in+out))
// (Glorot) when he is false, or ±sqrt(6/in) (He, for layers followed by ReLU)
// when he is true. Biases start at zero.
func NewDense(in, out int, he bool, rng *rand.Rand) *Dense {
	if in <= 0 || out <= 0 {
		panic(fmt.Sprintf("nn: dense %d×%d", in, out))
	}
	d := &Dense{In: in, Out: out, W: make([]float32, in*out), B: make([]float32, out)}
	limit := math.Sqrt(6 / float64(in+out))
	if he {
		limit = math.Sqrt(6 / float64(in))
	}
	for i := range d.W {
		d.W[i] = float32((rng.Float64()*2 - 1) * limit)
	}
	return d
}

// ForwardTo computes y = x·W + b for n rows: x is n×In, y is n×Out.
func (d *Dense) ForwardTo(y, x []float32, n int) {
	in, out := d.In, d.Out
	if len(x) < n*in || len(y) < n*out {
		panic(fmt.Sprintf("nn: dense forward: x %d y %d for n=%d %d→%d", len(x), len(y), n, in, out))
	}
	for i := 0; i < n; i++ {
		copy(y[i*out:i*out+out], d.B)
	}
	FMARowsN(y, out, out, x, in, 1, d.W, out, in, n) // row i: y_i += x_i·W
}

// BackwardTo accumulates the parameter gradients of n rows, dW += xᵀ·dy and
// dB += Σ dy, and, when dx is not nil, writes dx = dy·Wᵀ using wt (len
// In·Out) as scratch for Wᵀ. x is the layer input of the forward pass.
func (d *Dense) BackwardTo(dx, dW, dB, x, dy, wt []float32, n int) {
	in, out := d.In, d.Out
	if len(x) < n*in || len(dy) < n*out || len(dW) != in*out || len(dB) != out || (dx != nil && (len(dx) < n*in || len(wt) < in*out)) {
		panic(fmt.Sprintf("nn: dense backward: shapes do not match n=%d %d→%d", n, in, out))
	}
	if n == 0 {
		return
	}
	FMARowsN(dW, out, out, x, 1, in, dy, out, n, in) // row l: dW_l += Σ_i x[i][l]·dy_i
	one := [1]float32{1}
	FMARows(dB, one[:], 0, dy, out, n)
	if dx == nil {
		return
	}
	TransposeTo(wt, d.W, in, out)
	clear(dx[:n*in])
	FMARowsN(dx, in, in, dy, out, 1, wt, in, out, n) // row i: dx_i = dy_i·Wᵀ
}
