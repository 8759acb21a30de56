package nn

import (
	"fmt"

	"gonum.org/v1/gonum/blas/gonum"
)

// The vector kernels use the AVX2+FMA assembly of kernels_amd64.s when the
// CPU has it, and gonum's serial (SSE) routines otherwise. gonum's Sgemm is
// not used for the batched products: it spawns goroutines (and allocates)
// above 4 blocks of 64×64, fighting the trainer's own worker split, and its
// K=8 products are call-bound. FMARows, a register-blocked
// "sum of scaled rows", covers every product the towers need.

// FMARows does dst[0:n] += Σ_{t<k} a[t·astride] · b[t·bstride : t·bstride+n]
// with n = len(dst). With astride 1 and bstride n it is a row vector times a
// k×n matrix; with astride 0 and a = {1} it sums k rows.
func FMARows(dst, a []float32, astride int, b []float32, bstride, k int) {
	n := len(dst)
	if k <= 0 || n == 0 {
		return
	}
	if astride < 0 || bstride < 0 || (k-1)*astride >= len(a) || (k-1)*bstride+n > len(b) {
		panic(fmt.Sprintf("nn: FMARows: n=%d k=%d astride=%d bstride=%d with len(a)=%d len(b)=%d", n, k, astride, bstride, len(a), len(b)))
	}
	if hasAVX() {
		fmaRowsAVX(dst, a, astride, b, bstride, k)
		return
	}
	fmaRowsGo(dst, a, astride, b, bstride, k)
}

// FMARowsN is FMARows on m rows at once: for j < m,
// dst[j·dstride : j·dstride+n] += Σ_{t<k} a[j·arow + t·astride] · b[t·bstride : t·bstride+n].
// Every row gets the sums FMARows gives it, to the bit (the same fused
// multiply-adds in the same order). With AVX four rows share a pass: a
// row's sum is a chain of multiply-adds, each waiting on the one before,
// and four such chains keep the FMA units busy where one leaves them idle
// (a dense layer's 8 outputs, or its weight gradient's sum over a batch).
func FMARowsN(dst []float32, dstride, n int, a []float32, arow, astride int, b []float32, bstride, k, m int) {
	if m <= 0 || n <= 0 || k <= 0 {
		return
	}
	if arow < 0 || astride < 0 || bstride < 0 || (m > 1 && dstride < n) ||
		(m-1)*dstride+n > len(dst) || (m-1)*arow+(k-1)*astride >= len(a) || (k-1)*bstride+n > len(b) {
		panic(fmt.Sprintf("nn: FMARowsN: m=%d n=%d k=%d dstride=%d arow=%d astride=%d bstride=%d with len(dst)=%d len(a)=%d len(b)=%d",
			m, n, k, dstride, arow, astride, bstride, len(dst), len(a), len(b)))
	}
	j := 0
	if hasAVX() {
		for ; j+4 <= m; j += 4 {
			fmaRows4AVX(dst[j*dstride:], dstride, n, a[j*arow:], arow, astride, b, bstride, k)
		}
	}
	for ; j < m; j++ {
		FMARows(dst[j*dstride:j*dstride+n], a[j*arow:], astride, b, bstride, k)
	}
}

// fmaRowsGo is FMARows without AVX.
func fmaRowsGo(dst, a []float32, astride int, b []float32, bstride, k int) {
	n := len(dst)
	impl := gonum.Implementation{}
	for t := 0; t < k; t++ {
		if v := a[t*astride]; v != 0 {
			impl.Saxpy(n, v, b[t*bstride:t*bstride+n], 1, dst, 1)
		}
	}
}

// Dot returns Σ x[i]·y[i]. len(y) must be ≥ len(x).
func Dot(x, y []float32) float32 {
	y = y[:len(x)]
	if hasAVX() {
		return dotAVX(x, y)
	}
	return dotGo(x, y)
}

// dotGo is Dot without AVX.
func dotGo(x, y []float32) float32 {
	y = y[:len(x)]
	if len(x) < 16 {
		var s float32
		for i, v := range x {
			s += v * y[i]
		}
		return s
	}
	return gonum.Implementation{}.Sdot(len(x), x, 1, y, 1)
}

// Axpy does y += a·x. len(y) must be ≥ len(x).
func Axpy(a float32, x, y []float32) {
	y = y[:len(x)]
	if hasAVX() {
		s := [1]float32{a}
		fmaRowsAVX(y, s[:], 0, x, 0, 1)
		return
	}
	axpyGo(a, x, y)
}

// axpyGo is Axpy without AVX.
func axpyGo(a float32, x, y []float32) {
	y = y[:len(x)]
	if len(x) < 16 {
		for i, v := range x {
			y[i] += a * v
		}
		return
	}
	gonum.Implementation{}.Saxpy(len(x), a, x, 1, y, 1)
}

// Axpby does y[i] = alpha·x[i] + beta·y[i], two products and a sum (not
// fused, so the AVX kernel and the loop agree to the bit). len(x) must be ≥
// len(y).
func Axpby(alpha float32, x []float32, beta float32, y []float32) {
	x = x[:len(y)]
	if hasAVX() {
		axpbyAVX(alpha, x, beta, y)
		k := len(y) &^ 7
		x, y = x[k:], y[k:]
	}
	for i, v := range x {
		y[i] = alpha*v + beta*y[i]
	}
}

// Max returns the largest of s, which is not empty and has no NaN (of +0
// and −0 it may return either).
func Max(s []float32) float32 {
	m := s[0]
	if hasAVX() && len(s) >= 8 {
		k := len(s) &^ 7
		m, s = maxAVX(s[:k]), s[k:]
	}
	for _, v := range s {
		if v > m {
			m = v
		}
	}
	return m
}

// addRows adds the rows idx of the row-major table w (rows of len(dst)) to
// dst, weighted: the t-th row by a·decay^t (the weight multiplied by decay
// after each row), each as one Axpy(weight, row, dst), in the order of idx.
// With a = decay = 1 it is the plain sum.
func addRows(dst, w []float32, idx []int32, a, decay float32) {
	checkRows(w, len(dst), idx)
	if hasAVX() {
		addRowsAVX(dst, w, idx, a, decay)
		return
	}
	addRowsGo(dst, w, idx, a, decay)
}

// addRowsGo is addRows without AVX.
func addRowsGo(dst, w []float32, idx []int32, a, decay float32) {
	n := len(dst)
	for _, r := range idx {
		axpyGo(a, w[int(r)*n:int(r)*n+n], dst)
		a *= decay
	}
}

// axpyRows adds a·decay^t·x to the t-th row idx of the row-major table w
// (rows of len(x)), in the order of idx: the sums of Axpy(weight, x, row).
// It trusts idx: its one caller, SparseGrad.PoolBackwardDecay, has indexed
// a slice of one entry per row of w by every row of idx before it.
func axpyRows(x, w []float32, idx []int32, a, decay float32) {
	if hasAVX() {
		axpyRowsAVX(x, w, idx, a, decay)
		return
	}
	axpyRowsGo(x, w, idx, a, decay)
}

// axpyRowsGo is axpyRows without AVX.
func axpyRowsGo(x, w []float32, idx []int32, a, decay float32) {
	n := len(x)
	for _, r := range idx {
		axpyGo(a, x, w[int(r)*n:int(r)*n+n])
		a *= decay
	}
}

// checkRows panics unless every index of idx is a row of w (rows of n):
// the kernels trust them.
func checkRows(w []float32, n int, idx []int32) {
	rows := uint(len(w) / max(n, 1))
	for _, r := range idx {
		if uint(r) >= rows { // a negative r wraps above rows
			panic(fmt.Sprintf("nn: row %d of a %d-row table", r, rows))
		}
	}
}

// Dot8 is Dot for length 8, unrolled (tower outputs are 8-dimensional).
func Dot8(x, y []float32) float32 {
	x = x[:8]
	y = y[:8]
	return (x[0]*y[0] + x[1]*y[1]) + (x[2]*y[2] + x[3]*y[3]) + (x[4]*y[4] + x[5]*y[5]) + (x[6]*y[6] + x[7]*y[7])
}

// TransposeTo writes the transpose of the rows×cols matrix a into dst.
func TransposeTo(dst, a []float32, rows, cols int) {
	if len(a) < rows*cols || len(dst) < rows*cols {
		panic(fmt.Sprintf("nn: transpose %d×%d: lengths %d %d", rows, cols, len(a), len(dst)))
	}
	for i := 0; i < rows; i++ {
		for j, v := range a[i*cols : i*cols+cols] {
			dst[j*rows+i] = v
		}
	}
}
