package nn

import "golang.org/x/sys/cpu"

// The AVX2+FMA kernels of kernels_amd64.s. Callers check lengths; the
// kernels trust them.

//go:noescape
func fmaRowsAVX(dst, a []float32, astride int, b []float32, bstride int, k int)

//go:noescape
func dotAVX(x, y []float32) float32

//go:noescape
func expShiftAVX(s []float32, shift float32) float32

func hasAVX() bool { return cpu.X86.HasAVX2 && cpu.X86.HasFMA }
