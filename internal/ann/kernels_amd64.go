package ann

import "golang.org/x/sys/cpu"

// hasAVX reports whether scoreBlocksAVX may run.
func hasAVX() bool { return cpu.X86.HasAVX }

// scoreBlocksAVX is scoreBlocks for len(qb)/8 dimensions: qb holds each
// query component broadcast to eight lanes. len(dst)/8 blocks of
// len(qb) floats each are read from blocks. It multiplies and adds in
// separate, individually rounded instructions (no FMA) in dimension order,
// so every score equals Dot's bit for bit.
//
//go:noescape
func scoreBlocksAVX(dst, blocks, qb []float32)

// nextAtLeastAVX returns the first i ≥ from with scores[i] ≥ thr whose bit
// is set in accept, or len(scores) if there is none. len(scores) must be a
// multiple of 8, accept must have a bit for every score, and
// from < len(scores).
//
//go:noescape
func nextAtLeastAVX(scores []float32, accept Filter, from int, thr float32) int

// hasAVX2 reports whether groupMaxAVX2 may run.
func hasAVX2() bool { return cpu.X86.HasAVX2 }

// groupMaxAVX2 is groupMaxGo: dst[c·8+j] is the largest accepted score in
// lane j of the blocks c·chunk up to (c+1)·chunk (or the last block), -Inf
// if none is accepted; a nil accept accepts every slot. len(scores) is a
// multiple of 8, len(dst) is 8·⌈(len(scores)/8)/chunk⌉, chunk ≥ 1, and
// accept, if not nil, has a bit for every score. Four accumulators per
// chunk hide the latency of VMAXPS.
//
//go:noescape
func groupMaxAVX2(dst, scores []float32, accept Filter, chunk int)
