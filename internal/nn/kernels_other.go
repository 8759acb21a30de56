//go:build !amd64

package nn

func hasAVX() bool { return false }

func fmaRowsAVX(dst, a []float32, astride int, b []float32, bstride int, k int) {
	panic("nn: no AVX kernels")
}

func dotAVX(x, y []float32) float32 { panic("nn: no AVX kernels") }

func expShiftAVX(s []float32, shift float32) float32 { panic("nn: no AVX kernels") }
