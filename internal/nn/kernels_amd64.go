package nn

import "golang.org/x/sys/cpu"

// The AVX2+FMA kernels of kernels_amd64.s. Callers check lengths; the
// kernels trust them.

//go:noescape
func fmaRowsAVX(dst, a []float32, astride int, b []float32, bstride int, k int)

//go:noescape
func fmaRows4AVX(dst []float32, dstride, n int, a []float32, arow, astride int, b []float32, bstride, k int)

//go:noescape
func addRowsAVX(dst, w []float32, idx []int32, a, decay float32)

//go:noescape
func axpyRowsAVX(x, w []float32, idx []int32, a, decay float32)

//go:noescape
func dotAVX(x, y []float32) float32

//go:noescape
func maxAVX(s []float32) float32

//go:noescape
func axpbyAVX(alpha float32, x []float32, beta float32, y []float32)

//go:noescape
func expShiftAVX(s []float32, shift float32) float32

func hasAVX() bool { return cpu.X86.HasAVX2 && cpu.X86.HasFMA }

//go:noescape
func adamAVX(w, g, m, v []float32, b1, c1, b2, c2, lr, eps, decay float32)

//go:noescape
func rmspropAVX(w, g, s []float32, rho, c, lr, eps, decay float32)

//go:noescape
func reluAVX(y, x []float32)

//go:noescape
func reluBackAVX(dx, dy, y []float32)
