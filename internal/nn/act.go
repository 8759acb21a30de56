package nn

import (
	"fmt"
	"math"
)

// ReLUTo writes max(x, 0) into y; y and x may be the same slice.
func ReLUTo(y, x []float32) {
	y = y[:len(x)]
	if hasAVX() {
		reluAVX(y, x)
		k := len(x) &^ 7
		x, y = x[k:], y[k:]
	}
	for i, v := range x {
		if v < 0 {
			v = 0
		}
		y[i] = v
	}
}

// ReLUBackwardTo writes dx = dy where the ReLU output y is positive, 0
// elsewhere; dx and dy may be the same slice.
func ReLUBackwardTo(dx, dy, y []float32) {
	dx = dx[:len(y)]
	dy = dy[:len(y)]
	if hasAVX() {
		reluBackAVX(dx, dy, y)
		k := len(y) &^ 7
		dx, dy, y = dx[k:], dy[k:], y[k:]
	}
	for i, v := range y {
		if v > 0 {
			dx[i] = dy[i]
		} else {
			dx[i] = 0
		}
	}
}

// normEps keeps the L2 normalisation finite for an all-zero vector (a
// collapsed ReLU output).
const normEps = 1e-12

// L2NormalizeTo writes each of the n rows of x (width dim) divided by its
// Euclidean norm into y and the norms into norms. y and x may be the same.
func L2NormalizeTo(y, norms, x []float32, n, dim int) {
	if len(x) < n*dim || len(y) < n*dim || len(norms) < n {
		panic(fmt.Sprintf("nn: l2 normalize: shapes do not match n=%d dim=%d", n, dim))
	}
	for i := 0; i < n; i++ {
		xi := x[i*dim : i*dim+dim]
		var s float32
		for _, v := range xi {
			s += v * v
		}
		nrm := float32(math.Sqrt(float64(s) + normEps))
		norms[i] = nrm
		inv := 1 / nrm
		yi := y[i*dim : i*dim+dim]
		for j, v := range xi {
			yi[j] = v * inv
		}
	}
}

// L2NormalizeBackwardTo writes dx = (dy − y·(y·dy)) / norm for n rows, where y
// and norms are the outputs of L2NormalizeTo. dx and dy may be the same.
func L2NormalizeBackwardTo(dx, dy, y, norms []float32, n, dim int) {
	if len(dx) < n*dim || len(dy) < n*dim || len(y) < n*dim || len(norms) < n {
		panic(fmt.Sprintf("nn: l2 normalize backward: shapes do not match n=%d dim=%d", n, dim))
	}
	for i := 0; i < n; i++ {
		yi := y[i*dim : i*dim+dim]
		dyi := dy[i*dim : i*dim+dim]
		var p float32
		for j, v := range yi {
			p += v * dyi[j]
		}
		inv := 1 / norms[i]
		dxi := dx[i*dim : i*dim+dim]
		for j, v := range yi {
			dxi[j] = (dyi[j] - v*p) * inv
		}
	}
}

// Sigmoid returns 1/(1+e^−x).
func Sigmoid(x float32) float32 {
	return float32(1 / (1 + math.Exp(-float64(x))))
}

// ExpShiftTo overwrites s[j] with e^(s[j]−shift) and returns the sum: the
// softmax kernel. Arguments are clamped to [−87, 88] (below −87, e^x leaves
// float32's normal range and is taken as e^−87 ≈ 1.6e-38). Relative error
// < 3e-7. It uses AVX2+FMA when available (8 lanes), else a branch-free
// scalar loop with four independent chains.
func ExpShiftTo(s []float32, shift float32) float32 {
	var total float32
	if hasAVX() {
		total = expShiftAVX(s, shift)
		s = s[len(s)&^7:]
	}
	return total + expShiftGo(s, shift)
}

// expShiftGo is ExpShiftTo without AVX.
func expShiftGo(s []float32, shift float32) float32 {
	one := func(v float32) float32 {
		const (
			log2e = 1.44269504088896341
			ln2hi = 0.693145751953125
			ln2lo = 1.428606820309417232e-06
			magic = 12582912 // 1.5·2^23: adding it rounds to an integer in the low mantissa bits
		)
		x := min(max(v-shift, -87), 88)
		t := x*log2e + magic
		k := math.Float32bits(t) << 23 // the low bits of t hold k; this is k·2^23 mod 2^32
		kf := t - magic
		r := x - kf*ln2hi - kf*ln2lo
		p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720))))))
		return math.Float32frombits(math.Float32bits(p) + k)
	}
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(s); i += 4 {
		q := s[i : i+4 : i+4]
		e0, e1, e2, e3 := one(q[0]), one(q[1]), one(q[2]), one(q[3])
		q[0], q[1], q[2], q[3] = e0, e1, e2, e3
		s0 += e0
		s1 += e1
		s2 += e2
		s3 += e3
	}
	for ; i < len(s); i++ {
		e := one(s[i])
		s[i] = e
		s0 += e
	}
	return (s0 + s1) + (s2 + s3)
}
