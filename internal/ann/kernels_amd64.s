// Code written by hand; see kernels_amd64.go for the Go side.

#include "textflag.h"

// func scoreBlocksAVX(dst, blocks, qb []float32)
//
// Four blocks at a time (four independent sums hide the add latency), then
// one at a time.
TEXT ·scoreBlocksAVX(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ blocks_base+24(FP), SI
	MOVQ qb_base+48(FP), DX
	MOVQ qb_len+56(FP), R8
	SHRQ $3, CX            // blocks
	SHLQ $2, R8            // bytes of one block (and of qb)

quad:
	CMPQ CX, $4
	JLT single
	VXORPS Y0, Y0, Y0      // s = 0, in each of the four blocks
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	LEAQ (SI)(R8*1), R9
	LEAQ (R9)(R8*1), R10
	LEAQ (R10)(R8*1), R11
	XORQ AX, AX            // byte offset of dimension d in a block and in qb

dim4:
	VMOVUPS (DX)(AX*1), Y4
	VMULPS (SI)(AX*1), Y4, Y5  // q[d]·v[d], rounded
	VADDPS Y5, Y0, Y0          // s += it, rounded
	VMULPS (R9)(AX*1), Y4, Y6
	VADDPS Y6, Y1, Y1
	VMULPS (R10)(AX*1), Y4, Y7
	VADDPS Y7, Y2, Y2
	VMULPS (R11)(AX*1), Y4, Y8
	VADDPS Y8, Y3, Y3
	ADDQ $32, AX
	CMPQ AX, R8
	JLT dim4

	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, DI
	LEAQ (SI)(R8*4), SI
	SUBQ $4, CX
	JMP quad

single:
	TESTQ CX, CX
	JEQ done
	VXORPS Y0, Y0, Y0
	XORQ AX, AX

dim1:
	VMOVUPS (DX)(AX*1), Y4
	VMULPS (SI)(AX*1), Y4, Y5
	VADDPS Y5, Y0, Y0
	ADDQ $32, AX
	CMPQ AX, R8
	JLT dim1

	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	ADDQ R8, SI
	DECQ CX
	JMP single

done:
	VZEROUPPER
	RET

// func nextAtLeastAVX(scores []float32, accept Filter, from int, thr float32) int
//
// The first i ≥ from with scores[i] ≥ thr and bit i of accept set, or
// len(scores); len(scores) is a multiple of 8, accept has a bit for every
// score, and from < len(scores). Byte b of accept holds the bits of block b
// (little-endian words).
TEXT ·nextAtLeastAVX(SB), NOSPLIT, $0-72
	MOVQ scores_base+0(FP), SI
	MOVQ scores_len+8(FP), R8
	MOVQ accept_base+24(FP), DI
	MOVQ from+48(FP), BX
	VBROADCASTSS thr+56(FP), Y1

	// The block holding from, without the lanes before it.
	MOVQ BX, CX
	ANDQ $7, CX
	ANDQ $-8, BX
	VCMPPS $0x12, (SI)(BX*4), Y1, Y2   // thr ≤ score (ordered)
	VMOVMSKPS Y2, DX
	MOVQ BX, R9
	SHRQ $3, R9
	MOVBLZX (DI)(R9*1), R10
	ANDL R10, DX
	SHRL CX, DX
	SHLL CX, DX
	TESTL DX, DX
	JNE found

next:
	ADDQ $8, BX
	CMPQ BX, R8
	JGE none
	VCMPPS $0x12, (SI)(BX*4), Y1, Y2
	VMOVMSKPS Y2, DX
	MOVQ BX, R9
	SHRQ $3, R9
	MOVBLZX (DI)(R9*1), R10
	ANDL R10, DX
	JEQ next

found:
	BSFL DX, DX
	ADDQ DX, BX
	MOVQ BX, ret+64(FP)
	VZEROUPPER
	RET

none:
	MOVQ R8, ret+64(FP)
	VZEROUPPER
	RET

// Lane j shifts bit j of the block's filter byte into its sign bit, which
// is all VBLENDVPS reads; the other copies of the broadcast byte land above
// bit 31 or below the sign and do not matter.
DATA laneShifts<>+0(SB)/4, $31
DATA laneShifts<>+4(SB)/4, $30
DATA laneShifts<>+8(SB)/4, $29
DATA laneShifts<>+12(SB)/4, $28
DATA laneShifts<>+16(SB)/4, $27
DATA laneShifts<>+20(SB)/4, $26
DATA laneShifts<>+24(SB)/4, $25
DATA laneShifts<>+28(SB)/4, $24
GLOBL laneShifts<>(SB), RODATA|NOPTR, $32

// func groupMaxAVX2(dst, scores []float32, accept Filter, chunk int)
//
// Per chunk four accumulators start at -Inf and take blocks in turn, four
// at a time, then one at a time; they are merged into dst at the end of the
// chunk. A nil accept takes the loop without masks.
TEXT ·groupMaxAVX2(SB), NOSPLIT, $0-80
	MOVQ dst_base+0(FP), DI
	MOVQ scores_base+24(FP), SI
	MOVQ scores_len+32(FP), R9
	MOVQ accept_base+48(FP), DX
	MOVQ chunk+72(FP), R10
	SHRQ $3, R9                // blocks
	MOVL $0xff800000, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15      // -Inf in every lane
	VMOVDQU laneShifts<>(SB), Y14
	XORQ BX, BX                // first block of the chunk

nextChunk:
	CMPQ BX, R9
	JGE done
	MOVQ BX, CX
	ADDQ R10, CX
	CMPQ CX, R9
	CMOVQGT R9, CX             // end of the chunk: min(BX+chunk, blocks)
	VMOVAPS Y15, Y0
	VMOVAPS Y15, Y1
	VMOVAPS Y15, Y2
	VMOVAPS Y15, Y3
	MOVQ BX, AX
	SHLQ $5, AX
	ADDQ SI, AX                // AX = &scores[8·BX]
	TESTQ DX, DX
	JEQ all4

masked4:
	LEAQ 4(BX), R11
	CMPQ R11, CX
	JGT masked1
	VPBROADCASTB (DX)(BX*1), Y4
	VPBROADCASTB 1(DX)(BX*1), Y5
	VPBROADCASTB 2(DX)(BX*1), Y6
	VPBROADCASTB 3(DX)(BX*1), Y7
	VPSLLVD Y14, Y4, Y4
	VPSLLVD Y14, Y5, Y5
	VPSLLVD Y14, Y6, Y6
	VPSLLVD Y14, Y7, Y7
	VBLENDVPS Y4, (AX), Y15, Y4    // accepted ? score : -Inf
	VBLENDVPS Y5, 32(AX), Y15, Y5
	VBLENDVPS Y6, 64(AX), Y15, Y6
	VBLENDVPS Y7, 96(AX), Y15, Y7
	VMAXPS Y0, Y4, Y0              // acc = s > acc ? s : acc
	VMAXPS Y1, Y5, Y1
	VMAXPS Y2, Y6, Y2
	VMAXPS Y3, Y7, Y3
	ADDQ $128, AX
	MOVQ R11, BX
	JMP masked4

masked1:
	CMPQ BX, CX
	JGE store
	VPBROADCASTB (DX)(BX*1), Y4
	VPSLLVD Y14, Y4, Y4
	VBLENDVPS Y4, (AX), Y15, Y4
	VMAXPS Y0, Y4, Y0
	ADDQ $32, AX
	INCQ BX
	JMP masked1

all4:
	LEAQ 4(BX), R11
	CMPQ R11, CX
	JGT all1
	VMAXPS (AX), Y0, Y0
	VMAXPS 32(AX), Y1, Y1
	VMAXPS 64(AX), Y2, Y2
	VMAXPS 96(AX), Y3, Y3
	ADDQ $128, AX
	MOVQ R11, BX
	JMP all4

all1:
	CMPQ BX, CX
	JGE store
	VMAXPS (AX), Y0, Y0
	ADDQ $32, AX
	INCQ BX
	JMP all1

store:
	VMAXPS Y1, Y0, Y0
	VMAXPS Y3, Y2, Y2
	VMAXPS Y2, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	JMP nextChunk

done:
	VZEROUPPER
	RET
