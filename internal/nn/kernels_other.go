//go:build !amd64

package nn

func hasAVX() bool { return false }

func fmaRowsAVX(dst, a []float32, astride int, b []float32, bstride int, k int) {
	panic("nn: no AVX kernels")
}

func fmaRows4AVX(dst []float32, dstride, n int, a []float32, arow, astride int, b []float32, bstride, k int) {
	panic("nn: no AVX kernels")
}

func addRowsAVX(dst, w []float32, idx []int32, a, decay float32) { panic("nn: no AVX kernels") }

func axpyRowsAVX(x, w []float32, idx []int32, a, decay float32) { panic("nn: no AVX kernels") }

func dotAVX(x, y []float32) float32 { panic("nn: no AVX kernels") }

func maxAVX(s []float32) float32 { panic("nn: no AVX kernels") }

func axpbyAVX(alpha float32, x []float32, beta float32, y []float32) { panic("nn: no AVX kernels") }

func expShiftAVX(s []float32, shift float32) float32 { panic("nn: no AVX kernels") }

func adamAVX(w, g, m, v []float32, b1, c1, b2, c2, lr, eps, decay float32) {
	panic("nn: no AVX kernels")
}

func rmspropAVX(w, g, s []float32, rho, c, lr, eps, decay float32) { panic("nn: no AVX kernels") }

func reluAVX(y, x []float32) { panic("nn: no AVX kernels") }

func reluBackAVX(dx, dy, y []float32) { panic("nn: no AVX kernels") }
