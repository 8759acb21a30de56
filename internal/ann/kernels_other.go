//go:build !amd64

package ann

func hasAVX() bool { return false }

func hasAVX2() bool { return false }

func scoreBlocksAVX(dst, blocks, qb []float32) { panic("ann: no AVX kernel") }

func nextAtLeastAVX(scores []float32, accept Filter, from int, thr float32) int {
	panic("ann: no AVX kernel")
}

func groupMaxAVX2(dst, scores []float32, accept Filter, chunk int) {
	panic("ann: no AVX2 kernel")
}
