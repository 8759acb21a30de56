// Code written by hand; see kernels_amd64.go for the Go side.

#include "textflag.h"

// masks+(8-r)*4 is a lane mask with the first r lanes set.
DATA masks<>+0(SB)/4, $0xffffffff
DATA masks<>+4(SB)/4, $0xffffffff
DATA masks<>+8(SB)/4, $0xffffffff
DATA masks<>+12(SB)/4, $0xffffffff
DATA masks<>+16(SB)/4, $0xffffffff
DATA masks<>+20(SB)/4, $0xffffffff
DATA masks<>+24(SB)/4, $0xffffffff
DATA masks<>+28(SB)/4, $0xffffffff
DATA masks<>+32(SB)/4, $0
DATA masks<>+36(SB)/4, $0
DATA masks<>+40(SB)/4, $0
DATA masks<>+44(SB)/4, $0
DATA masks<>+48(SB)/4, $0
DATA masks<>+52(SB)/4, $0
DATA masks<>+56(SB)/4, $0
DATA masks<>+60(SB)/4, $0
GLOBL masks<>(SB), RODATA|NOPTR, $64

DATA expC6<>+0(SB)/4, $0x3ab60b61
DATA expC6<>+4(SB)/4, $0x3ab60b61
DATA expC6<>+8(SB)/4, $0x3ab60b61
DATA expC6<>+12(SB)/4, $0x3ab60b61
DATA expC6<>+16(SB)/4, $0x3ab60b61
DATA expC6<>+20(SB)/4, $0x3ab60b61
DATA expC6<>+24(SB)/4, $0x3ab60b61
DATA expC6<>+28(SB)/4, $0x3ab60b61
GLOBL expC6<>(SB), RODATA|NOPTR, $32

DATA expC5<>+0(SB)/4, $0x3c088889
DATA expC5<>+4(SB)/4, $0x3c088889
DATA expC5<>+8(SB)/4, $0x3c088889
DATA expC5<>+12(SB)/4, $0x3c088889
DATA expC5<>+16(SB)/4, $0x3c088889
DATA expC5<>+20(SB)/4, $0x3c088889
DATA expC5<>+24(SB)/4, $0x3c088889
DATA expC5<>+28(SB)/4, $0x3c088889
GLOBL expC5<>(SB), RODATA|NOPTR, $32

DATA expC4<>+0(SB)/4, $0x3d2aaaab
DATA expC4<>+4(SB)/4, $0x3d2aaaab
DATA expC4<>+8(SB)/4, $0x3d2aaaab
DATA expC4<>+12(SB)/4, $0x3d2aaaab
DATA expC4<>+16(SB)/4, $0x3d2aaaab
DATA expC4<>+20(SB)/4, $0x3d2aaaab
DATA expC4<>+24(SB)/4, $0x3d2aaaab
DATA expC4<>+28(SB)/4, $0x3d2aaaab
GLOBL expC4<>(SB), RODATA|NOPTR, $32

DATA expC3<>+0(SB)/4, $0x3e2aaaab
DATA expC3<>+4(SB)/4, $0x3e2aaaab
DATA expC3<>+8(SB)/4, $0x3e2aaaab
DATA expC3<>+12(SB)/4, $0x3e2aaaab
DATA expC3<>+16(SB)/4, $0x3e2aaaab
DATA expC3<>+20(SB)/4, $0x3e2aaaab
DATA expC3<>+24(SB)/4, $0x3e2aaaab
DATA expC3<>+28(SB)/4, $0x3e2aaaab
GLOBL expC3<>(SB), RODATA|NOPTR, $32

DATA expC2<>+0(SB)/4, $0x3f000000
DATA expC2<>+4(SB)/4, $0x3f000000
DATA expC2<>+8(SB)/4, $0x3f000000
DATA expC2<>+12(SB)/4, $0x3f000000
DATA expC2<>+16(SB)/4, $0x3f000000
DATA expC2<>+20(SB)/4, $0x3f000000
DATA expC2<>+24(SB)/4, $0x3f000000
DATA expC2<>+28(SB)/4, $0x3f000000
GLOBL expC2<>(SB), RODATA|NOPTR, $32

DATA expC1<>+0(SB)/4, $0x3f800000
DATA expC1<>+4(SB)/4, $0x3f800000
DATA expC1<>+8(SB)/4, $0x3f800000
DATA expC1<>+12(SB)/4, $0x3f800000
DATA expC1<>+16(SB)/4, $0x3f800000
DATA expC1<>+20(SB)/4, $0x3f800000
DATA expC1<>+24(SB)/4, $0x3f800000
DATA expC1<>+28(SB)/4, $0x3f800000
GLOBL expC1<>(SB), RODATA|NOPTR, $32

DATA expLo<>+0(SB)/4, $0xc2ae0000
GLOBL expLo<>(SB), RODATA|NOPTR, $4

DATA expHi<>+0(SB)/4, $0x42b00000
GLOBL expHi<>(SB), RODATA|NOPTR, $4

DATA expLog2e<>+0(SB)/4, $0x3fb8aa3b
GLOBL expLog2e<>(SB), RODATA|NOPTR, $4

DATA expMagic<>+0(SB)/4, $0x4b400000
GLOBL expMagic<>(SB), RODATA|NOPTR, $4

DATA expLn2Hi<>+0(SB)/4, $0x3f317200
GLOBL expLn2Hi<>(SB), RODATA|NOPTR, $4

DATA expLn2Lo<>+0(SB)/4, $0x35bfbe8e
GLOBL expLn2Lo<>(SB), RODATA|NOPTR, $4


// func fmaRowsAVX(dst, a []float32, astride int, b []float32, bstride int, k int)
// dst[0:n] += Σ_{t<k} a[t·astride] · b[t·bstride : t·bstride+n]
TEXT ·fmaRowsAVX(SB), NOSPLIT, $0-96
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ a_base+24(FP), R9
	MOVQ astride+48(FP), R10
	SHLQ $2, R10
	MOVQ b_base+56(FP), R11
	MOVQ bstride+80(FP), R12
	SHLQ $2, R12
	MOVQ k+88(FP), R13
	TESTQ R13, R13
	JEQ fr_done
	XORQ DX, DX

fr_loop32:
	MOVQ CX, AX
	SUBQ DX, AX
	CMPQ AX, $32
	JLT fr_loop8
	VMOVUPS (DI)(DX*4), Y0
	VMOVUPS 32(DI)(DX*4), Y1
	VMOVUPS 64(DI)(DX*4), Y2
	VMOVUPS 96(DI)(DX*4), Y3
	MOVQ R9, SI
	LEAQ (R11)(DX*4), BX
	MOVQ R13, R8

fr_inner32:
	VBROADCASTSS (SI), Y4
	VFMADD231PS (BX), Y4, Y0
	VFMADD231PS 32(BX), Y4, Y1
	VFMADD231PS 64(BX), Y4, Y2
	VFMADD231PS 96(BX), Y4, Y3
	ADDQ R10, SI
	ADDQ R12, BX
	DECQ R8
	JNZ fr_inner32
	VMOVUPS Y0, (DI)(DX*4)
	VMOVUPS Y1, 32(DI)(DX*4)
	VMOVUPS Y2, 64(DI)(DX*4)
	VMOVUPS Y3, 96(DI)(DX*4)
	ADDQ $32, DX
	JMP fr_loop32

fr_loop8:
	CMPQ AX, $8
	JLT fr_tail
	VMOVUPS (DI)(DX*4), Y0
	MOVQ R9, SI
	LEAQ (R11)(DX*4), BX
	MOVQ R13, R8

fr_inner8:
	VBROADCASTSS (SI), Y4
	VFMADD231PS (BX), Y4, Y0
	ADDQ R10, SI
	ADDQ R12, BX
	DECQ R8
	JNZ fr_inner8
	VMOVUPS Y0, (DI)(DX*4)
	ADDQ $8, DX
	SUBQ $8, AX
	JMP fr_loop8

fr_tail:
	TESTQ AX, AX
	JEQ fr_done
	LEAQ masks<>(SB), SI
	MOVQ $8, BX
	SUBQ AX, BX
	VMOVUPS (SI)(BX*4), Y5
	VMASKMOVPS (DI)(DX*4), Y5, Y0
	MOVQ R9, SI
	LEAQ (R11)(DX*4), BX
	MOVQ R13, R8

fr_innerT:
	VBROADCASTSS (SI), Y4
	VMASKMOVPS (BX), Y5, Y6
	VFMADD231PS Y6, Y4, Y0
	ADDQ R10, SI
	ADDQ R12, BX
	DECQ R8
	JNZ fr_innerT
	VMASKMOVPS Y0, Y5, (DI)(DX*4)

fr_done:
	VZEROUPPER
	RET

// func dotAVX(x, y []float32) float32
TEXT ·dotAVX(SB), NOSPLIT, $0-52
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ y_base+24(FP), DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	XORQ DX, DX

d_loop32:
	MOVQ CX, AX
	SUBQ DX, AX
	CMPQ AX, $32
	JLT d_loop8
	VMOVUPS (SI)(DX*4), Y4
	VMOVUPS 32(SI)(DX*4), Y5
	VMOVUPS 64(SI)(DX*4), Y6
	VMOVUPS 96(SI)(DX*4), Y7
	VFMADD231PS (DI)(DX*4), Y4, Y0
	VFMADD231PS 32(DI)(DX*4), Y5, Y1
	VFMADD231PS 64(DI)(DX*4), Y6, Y2
	VFMADD231PS 96(DI)(DX*4), Y7, Y3
	ADDQ $32, DX
	JMP d_loop32

d_loop8:
	CMPQ AX, $8
	JLT d_tail
	VMOVUPS (SI)(DX*4), Y4
	VFMADD231PS (DI)(DX*4), Y4, Y0
	ADDQ $8, DX
	SUBQ $8, AX
	JMP d_loop8

d_tail:
	TESTQ AX, AX
	JEQ d_sum
	LEAQ masks<>(SB), BX
	MOVQ $8, R8
	SUBQ AX, R8
	VMOVUPS (BX)(R8*4), Y5
	VMASKMOVPS (SI)(DX*4), Y5, Y4
	VMASKMOVPS (DI)(DX*4), Y5, Y6
	VFMADD231PS Y6, Y4, Y1

d_sum:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+48(FP)
	RET

// func expShiftAVX(s []float32, shift float32) float32
// s[i] = e^(s[i]-shift) for the first len(s)&^7 elements; returns their sum.
TEXT ·expShiftAVX(SB), NOSPLIT, $0-36
	MOVQ s_base+0(FP), SI
	MOVQ s_len+8(FP), CX
	SHRQ $3, CX
	VBROADCASTSS shift+24(FP), Y13
	VBROADCASTSS expLo<>(SB), Y12
	VBROADCASTSS expHi<>(SB), Y11
	VBROADCASTSS expLog2e<>(SB), Y10
	VBROADCASTSS expMagic<>(SB), Y9
	VBROADCASTSS expLn2Hi<>(SB), Y8
	VBROADCASTSS expLn2Lo<>(SB), Y7
	VXORPS Y6, Y6, Y6
	VXORPS Y5, Y5, Y5
	TESTQ CX, CX
	JEQ e_sum

e_loop:
	VMOVUPS (SI), Y0
	VSUBPS Y13, Y0, Y0
	VMAXPS Y12, Y0, Y0
	VMINPS Y11, Y0, Y0
	VMOVAPS Y9, Y1
	VFMADD231PS Y10, Y0, Y1
	VSUBPS Y9, Y1, Y2
	VFNMADD231PS Y8, Y2, Y0
	VFNMADD231PS Y7, Y2, Y0
	VPSLLD $23, Y1, Y1
	VMOVUPS expC6<>(SB), Y3
	VFMADD213PS expC5<>(SB), Y0, Y3
	VFMADD213PS expC4<>(SB), Y0, Y3
	VFMADD213PS expC3<>(SB), Y0, Y3
	VFMADD213PS expC2<>(SB), Y0, Y3
	VFMADD213PS expC1<>(SB), Y0, Y3
	VFMADD213PS expC1<>(SB), Y0, Y3
	VPADDD Y1, Y3, Y3
	VMOVUPS Y3, (SI)
	VADDPS Y3, Y6, Y6
	ADDQ $32, SI
	DECQ CX
	JNZ e_loop

e_sum:
	VEXTRACTF128 $1, Y6, X1
	VADDPS X1, X6, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VZEROUPPER
	MOVSS X0, ret+32(FP)
	RET

// func adamAVX(w, g, m, v []float32, b1, c1, b2, c2, lr, eps, decay float32)
// Processes len(w)&^7 elements; c1 = 1−b1, c2 = 1−b2.
TEXT ·adamAVX(SB), NOSPLIT, $0-124
	MOVQ w_base+0(FP), SI
	MOVQ w_len+8(FP), CX
	SHRQ $3, CX
	MOVQ g_base+24(FP), DI
	MOVQ m_base+48(FP), R8
	MOVQ v_base+72(FP), R9
	VBROADCASTSS b1+96(FP), Y8
	VBROADCASTSS c1+100(FP), Y9
	VBROADCASTSS b2+104(FP), Y10
	VBROADCASTSS c2+108(FP), Y11
	VBROADCASTSS lr+112(FP), Y12
	VBROADCASTSS eps+116(FP), Y13
	VBROADCASTSS decay+120(FP), Y14
	XORQ AX, AX
	TESTQ CX, CX
	JEQ a_done

a_loop:
	VMOVUPS (SI)(AX*4), Y0
	VMOVUPS (DI)(AX*4), Y1
	VFMADD231PS Y14, Y0, Y1
	VMOVUPS (R8)(AX*4), Y2
	VMULPS Y8, Y2, Y2
	VFMADD231PS Y9, Y1, Y2
	VMOVUPS Y2, (R8)(AX*4)
	VMULPS Y1, Y1, Y3
	VMOVUPS (R9)(AX*4), Y4
	VMULPS Y10, Y4, Y4
	VFMADD231PS Y11, Y3, Y4
	VMOVUPS Y4, (R9)(AX*4)
	VSQRTPS Y4, Y4
	VADDPS Y13, Y4, Y4
	VDIVPS Y4, Y2, Y2
	VFNMADD231PS Y12, Y2, Y0
	VMOVUPS Y0, (SI)(AX*4)
	ADDQ $8, AX
	DECQ CX
	JNZ a_loop

a_done:
	VZEROUPPER
	RET

// func rmspropAVX(w, g, s []float32, rho, c, lr, eps, decay float32)
// Processes len(w)&^7 elements; c = 1−rho.
TEXT ·rmspropAVX(SB), NOSPLIT, $0-92
	MOVQ w_base+0(FP), SI
	MOVQ w_len+8(FP), CX
	SHRQ $3, CX
	MOVQ g_base+24(FP), DI
	MOVQ s_base+48(FP), R8
	VBROADCASTSS rho+72(FP), Y8
	VBROADCASTSS c+76(FP), Y9
	VBROADCASTSS lr+80(FP), Y12
	VBROADCASTSS eps+84(FP), Y13
	VBROADCASTSS decay+88(FP), Y14
	XORQ AX, AX
	TESTQ CX, CX
	JEQ r_done

r_loop:
	VMOVUPS (SI)(AX*4), Y0
	VMOVUPS (DI)(AX*4), Y1
	VFMADD231PS Y14, Y0, Y1
	VMULPS Y1, Y1, Y3
	VMOVUPS (R8)(AX*4), Y4
	VMULPS Y8, Y4, Y4
	VFMADD231PS Y9, Y3, Y4
	VMOVUPS Y4, (R8)(AX*4)
	VSQRTPS Y4, Y4
	VADDPS Y13, Y4, Y4
	VDIVPS Y4, Y1, Y1
	VFNMADD231PS Y12, Y1, Y0
	VMOVUPS Y0, (SI)(AX*4)
	ADDQ $8, AX
	DECQ CX
	JNZ r_loop

r_done:
	VZEROUPPER
	RET

// func reluAVX(y, x []float32)
// y = max(x, 0) for the first len(x)&^7 elements.
TEXT ·reluAVX(SB), NOSPLIT, $0-48
	MOVQ y_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	SHRQ $3, CX
	VXORPS Y5, Y5, Y5
	XORQ AX, AX
	TESTQ CX, CX
	JEQ rl_done

rl_loop:
	VMOVUPS (SI)(AX*4), Y0
	VMAXPS Y5, Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ $8, AX
	DECQ CX
	JNZ rl_loop

rl_done:
	VZEROUPPER
	RET

// func reluBackAVX(dx, dy, y []float32)
// dx = dy where y > 0, else 0, for the first len(y)&^7 elements.
TEXT ·reluBackAVX(SB), NOSPLIT, $0-72
	MOVQ dx_base+0(FP), DI
	MOVQ dy_base+24(FP), SI
	MOVQ y_base+48(FP), R8
	MOVQ y_len+56(FP), CX
	SHRQ $3, CX
	VXORPS Y5, Y5, Y5
	XORQ AX, AX
	TESTQ CX, CX
	JEQ rb_done

rb_loop:
	VMOVUPS (R8)(AX*4), Y1
	VCMPPS $0x1e, Y5, Y1, Y3
	VANDPS (SI)(AX*4), Y3, Y3
	VMOVUPS Y3, (DI)(AX*4)
	ADDQ $8, AX
	DECQ CX
	JNZ rb_loop

rb_done:
	VZEROUPPER
	RET

// func fmaRows4AVX(dst []float32, dstride, n int, a []float32, arow, astride int, b []float32, bstride, k int)
// fmaRowsAVX on four rows at once: for j < 4,
// dst[j·dstride : j·dstride+n] += Σ_{t<k} a[j·arow + t·astride] · b[t·bstride : t·bstride+n],
// each element one fused multiply-add per t, in order (fmaRowsAVX's bits).
// The four rows' sums are independent chains: one row's chain waits on
// each multiply-add's latency, four keep the FMA units busy. Columns go
// 16 at a time, then 8 at a time through a lane mask (the last block
// partial): unmasked 8-column blocks as well were 20 % faster only for
// short k (a forward pass's 8 outputs), a sliver of training.
// Registers: DI dst, R9 a, AX arow, R10 astride, R11 b, R12 bstride (bytes),
// R13 k, DX the column; SI and CX walk rows 0 and 2 of a, BX walks b.
TEXT ·fmaRows4AVX(SB), NOSPLIT, $0-120
	MOVQ dst_base+0(FP), DI
	MOVQ a_base+40(FP), R9
	MOVQ arow+64(FP), AX
	SHLQ $2, AX
	MOVQ astride+72(FP), R10
	SHLQ $2, R10
	MOVQ b_base+80(FP), R11
	MOVQ bstride+104(FP), R12
	SHLQ $2, R12
	MOVQ k+112(FP), R13
	TESTQ R13, R13
	JEQ f4_done
	XORQ DX, DX

f4_loop16:
	MOVQ n+32(FP), R8
	SUBQ DX, R8
	CMPQ R8, $16
	JLT f4_loop8
	MOVQ dstride+24(FP), R8
	SHLQ $2, R8
	LEAQ (DI)(DX*4), BX
	VMOVUPS (BX), Y0
	VMOVUPS 32(BX), Y1
	ADDQ R8, BX
	VMOVUPS (BX), Y2
	VMOVUPS 32(BX), Y3
	ADDQ R8, BX
	VMOVUPS (BX), Y4
	VMOVUPS 32(BX), Y5
	ADDQ R8, BX
	VMOVUPS (BX), Y6
	VMOVUPS 32(BX), Y7
	MOVQ R9, SI
	LEAQ (R9)(AX*2), CX
	LEAQ (R11)(DX*4), BX
	MOVQ R13, R8

f4_inner16:
	VMOVUPS (BX), Y8
	VMOVUPS 32(BX), Y9
	VBROADCASTSS (SI), Y10
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y10, Y1
	VBROADCASTSS (SI)(AX*1), Y11
	VFMADD231PS Y8, Y11, Y2
	VFMADD231PS Y9, Y11, Y3
	VBROADCASTSS (CX), Y12
	VFMADD231PS Y8, Y12, Y4
	VFMADD231PS Y9, Y12, Y5
	VBROADCASTSS (CX)(AX*1), Y13
	VFMADD231PS Y8, Y13, Y6
	VFMADD231PS Y9, Y13, Y7
	ADDQ R10, SI
	ADDQ R10, CX
	ADDQ R12, BX
	DECQ R8
	JNZ f4_inner16
	MOVQ dstride+24(FP), R8
	SHLQ $2, R8
	LEAQ (DI)(DX*4), BX
	VMOVUPS Y0, (BX)
	VMOVUPS Y1, 32(BX)
	ADDQ R8, BX
	VMOVUPS Y2, (BX)
	VMOVUPS Y3, 32(BX)
	ADDQ R8, BX
	VMOVUPS Y4, (BX)
	VMOVUPS Y5, 32(BX)
	ADDQ R8, BX
	VMOVUPS Y6, (BX)
	VMOVUPS Y7, 32(BX)
	ADDQ $16, DX
	JMP f4_loop16

f4_loop8:
	// Fewer than 16 columns left: eight at a time through a lane mask, all
	// lanes while eight or more are left, the first R8 for the last block.
	CMPQ R8, $0
	JLE f4_done
	LEAQ masks<>(SB), SI
	MOVQ $8, BX
	SUBQ R8, BX
	JGE f4_mask
	XORQ BX, BX

f4_mask:
	VMOVUPS (SI)(BX*4), Y14
	MOVQ dstride+24(FP), R8
	SHLQ $2, R8
	LEAQ (DI)(DX*4), BX
	VMASKMOVPS (BX), Y14, Y0
	ADDQ R8, BX
	VMASKMOVPS (BX), Y14, Y2
	ADDQ R8, BX
	VMASKMOVPS (BX), Y14, Y4
	ADDQ R8, BX
	VMASKMOVPS (BX), Y14, Y6
	MOVQ R9, SI
	LEAQ (R9)(AX*2), CX
	LEAQ (R11)(DX*4), BX
	MOVQ R13, R8

f4_inner8:
	VMASKMOVPS (BX), Y14, Y8
	VBROADCASTSS (SI), Y10
	VFMADD231PS Y8, Y10, Y0
	VBROADCASTSS (SI)(AX*1), Y11
	VFMADD231PS Y8, Y11, Y2
	VBROADCASTSS (CX), Y12
	VFMADD231PS Y8, Y12, Y4
	VBROADCASTSS (CX)(AX*1), Y13
	VFMADD231PS Y8, Y13, Y6
	ADDQ R10, SI
	ADDQ R10, CX
	ADDQ R12, BX
	DECQ R8
	JNZ f4_inner8
	MOVQ dstride+24(FP), R8
	SHLQ $2, R8
	LEAQ (DI)(DX*4), BX
	VMASKMOVPS Y0, Y14, (BX)
	ADDQ R8, BX
	VMASKMOVPS Y2, Y14, (BX)
	ADDQ R8, BX
	VMASKMOVPS Y4, Y14, (BX)
	ADDQ R8, BX
	VMASKMOVPS Y6, Y14, (BX)
	ADDQ $8, DX
	JMP f4_loop16

f4_done:
	VZEROUPPER
	RET

// func addRowsAVX(dst, w []float32, idx []int32, a, decay float32)
// dst[0:n] += Σ_t a·decay^t · w[idx[t]·n : idx[t]·n+n], n = len(dst): the
// weight starts at a and is multiplied by decay after each row, each row
// one fused multiply-add, in the order of idx.
TEXT ·addRowsAVX(SB), NOSPLIT, $0-80
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ w_base+24(FP), R11
	MOVQ idx_base+48(FP), R9
	MOVQ idx_len+56(FP), R13
	VMOVSS decay+76(FP), X11
	MOVQ CX, R12
	SHLQ $2, R12 // row stride in bytes
	TESTQ R13, R13
	JEQ ar_done
	XORQ DX, DX

ar_loop32:
	MOVQ CX, AX
	SUBQ DX, AX
	CMPQ AX, $32
	JLT ar_loop8
	VMOVUPS (DI)(DX*4), Y0
	VMOVUPS 32(DI)(DX*4), Y1
	VMOVUPS 64(DI)(DX*4), Y2
	VMOVUPS 96(DI)(DX*4), Y3
	VMOVSS a+72(FP), X10
	XORQ R8, R8

ar_inner32:
	MOVLQSX (R9)(R8*4), BX
	IMULQ R12, BX
	ADDQ R11, BX
	LEAQ (BX)(DX*4), BX
	VBROADCASTSS X10, Y4
	VFMADD231PS (BX), Y4, Y0
	VFMADD231PS 32(BX), Y4, Y1
	VFMADD231PS 64(BX), Y4, Y2
	VFMADD231PS 96(BX), Y4, Y3
	VMULSS X11, X10, X10
	INCQ R8
	CMPQ R8, R13
	JLT ar_inner32
	VMOVUPS Y0, (DI)(DX*4)
	VMOVUPS Y1, 32(DI)(DX*4)
	VMOVUPS Y2, 64(DI)(DX*4)
	VMOVUPS Y3, 96(DI)(DX*4)
	ADDQ $32, DX
	JMP ar_loop32

ar_loop8:
	CMPQ AX, $8
	JLT ar_tail
	VMOVUPS (DI)(DX*4), Y0
	VMOVSS a+72(FP), X10
	XORQ R8, R8

ar_inner8:
	MOVLQSX (R9)(R8*4), BX
	IMULQ R12, BX
	ADDQ R11, BX
	VBROADCASTSS X10, Y4
	VFMADD231PS (BX)(DX*4), Y4, Y0
	VMULSS X11, X10, X10
	INCQ R8
	CMPQ R8, R13
	JLT ar_inner8
	VMOVUPS Y0, (DI)(DX*4)
	ADDQ $8, DX
	SUBQ $8, AX
	JMP ar_loop8

ar_tail:
	TESTQ AX, AX
	JEQ ar_done
	LEAQ masks<>(SB), SI
	MOVQ $8, BX
	SUBQ AX, BX
	VMOVUPS (SI)(BX*4), Y5
	VMASKMOVPS (DI)(DX*4), Y5, Y0
	VMOVSS a+72(FP), X10
	XORQ R8, R8

ar_innerT:
	MOVLQSX (R9)(R8*4), BX
	IMULQ R12, BX
	ADDQ R11, BX
	VMASKMOVPS (BX)(DX*4), Y5, Y6
	VBROADCASTSS X10, Y4
	VFMADD231PS Y6, Y4, Y0
	VMULSS X11, X10, X10
	INCQ R8
	CMPQ R8, R13
	JLT ar_innerT
	VMASKMOVPS Y0, Y5, (DI)(DX*4)

ar_done:
	VZEROUPPER
	RET

// func axpyRowsAVX(x, w []float32, idx []int32, a, decay float32)
// w[r·n : r·n+n] += a·decay^t · x for the t-th r of idx, in order, n =
// len(x): the weight starts at a and is multiplied by decay after each
// row (each row the same fused multiply-adds as Axpy(weight, x, row)).
TEXT ·axpyRowsAVX(SB), NOSPLIT, $0-80
	MOVQ x_base+0(FP), DI
	MOVQ x_len+8(FP), CX
	MOVQ w_base+24(FP), R11
	MOVQ idx_base+48(FP), R9
	MOVQ idx_len+56(FP), R13
	VMOVSS decay+76(FP), X11
	MOVQ CX, R12
	SHLQ $2, R12 // row stride in bytes
	TESTQ R13, R13
	JEQ xr_done
	XORQ DX, DX

xr_loop32:
	MOVQ CX, AX
	SUBQ DX, AX
	CMPQ AX, $32
	JLT xr_loop8
	VMOVUPS (DI)(DX*4), Y0
	VMOVUPS 32(DI)(DX*4), Y1
	VMOVUPS 64(DI)(DX*4), Y2
	VMOVUPS 96(DI)(DX*4), Y3
	VMOVSS a+72(FP), X10
	XORQ R8, R8

xr_inner32:
	MOVLQSX (R9)(R8*4), BX
	IMULQ R12, BX
	ADDQ R11, BX
	LEAQ (BX)(DX*4), BX
	VBROADCASTSS X10, Y4
	VMOVUPS (BX), Y5
	VMOVUPS 32(BX), Y6
	VMOVUPS 64(BX), Y7
	VMOVUPS 96(BX), Y8
	VFMADD231PS Y0, Y4, Y5
	VFMADD231PS Y1, Y4, Y6
	VFMADD231PS Y2, Y4, Y7
	VFMADD231PS Y3, Y4, Y8
	VMOVUPS Y5, (BX)
	VMOVUPS Y6, 32(BX)
	VMOVUPS Y7, 64(BX)
	VMOVUPS Y8, 96(BX)
	VMULSS X11, X10, X10
	INCQ R8
	CMPQ R8, R13
	JLT xr_inner32
	ADDQ $32, DX
	JMP xr_loop32

xr_loop8:
	CMPQ AX, $8
	JLT xr_tail
	VMOVUPS (DI)(DX*4), Y0
	VMOVSS a+72(FP), X10
	XORQ R8, R8

xr_inner8:
	MOVLQSX (R9)(R8*4), BX
	IMULQ R12, BX
	ADDQ R11, BX
	LEAQ (BX)(DX*4), BX
	VBROADCASTSS X10, Y4
	VMOVUPS (BX), Y5
	VFMADD231PS Y0, Y4, Y5
	VMOVUPS Y5, (BX)
	VMULSS X11, X10, X10
	INCQ R8
	CMPQ R8, R13
	JLT xr_inner8
	ADDQ $8, DX
	SUBQ $8, AX
	JMP xr_loop8

xr_tail:
	TESTQ AX, AX
	JEQ xr_done
	LEAQ masks<>(SB), SI
	MOVQ $8, BX
	SUBQ AX, BX
	VMOVUPS (SI)(BX*4), Y9
	VMASKMOVPS (DI)(DX*4), Y9, Y0
	VMOVSS a+72(FP), X10
	XORQ R8, R8

xr_innerT:
	MOVLQSX (R9)(R8*4), BX
	IMULQ R12, BX
	ADDQ R11, BX
	LEAQ (BX)(DX*4), BX
	VBROADCASTSS X10, Y4
	VMASKMOVPS (BX), Y9, Y5
	VFMADD231PS Y0, Y4, Y5
	VMASKMOVPS Y5, Y9, (BX)
	VMULSS X11, X10, X10
	INCQ R8
	CMPQ R8, R13
	JLT xr_innerT

xr_done:
	VZEROUPPER
	RET

// func maxAVX(s []float32) float32
// The largest of the first len(s)&^7 elements (at least 8).
TEXT ·maxAVX(SB), NOSPLIT, $0-28
	MOVQ s_base+0(FP), SI
	MOVQ s_len+8(FP), CX
	SHRQ $3, CX
	VMOVUPS (SI), Y0
	VMOVAPS Y0, Y1
	ADDQ $32, SI
	DECQ CX
	JEQ mx_sum

mx_loop2:
	CMPQ CX, $2
	JLT mx_loop1
	VMAXPS (SI), Y0, Y0
	VMAXPS 32(SI), Y1, Y1
	ADDQ $64, SI
	SUBQ $2, CX
	JMP mx_loop2

mx_loop1:
	TESTQ CX, CX
	JEQ mx_sum
	VMAXPS (SI), Y0, Y0

mx_sum:
	VMAXPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X1, X0, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func axpbyAVX(alpha float32, x []float32, beta float32, y []float32)
// y[i] = alpha·x[i] + beta·y[i] (two products and a sum, not fused) for
// the first len(y)&^7 elements.
TEXT ·axpbyAVX(SB), NOSPLIT, $0-64
	VBROADCASTSS alpha+0(FP), Y2
	MOVQ x_base+8(FP), SI
	VBROADCASTSS beta+32(FP), Y3
	MOVQ y_base+40(FP), DI
	MOVQ y_len+48(FP), CX
	SHRQ $3, CX
	XORQ AX, AX
	TESTQ CX, CX
	JEQ ab_done

ab_loop:
	VMULPS (SI)(AX*4), Y2, Y0
	VMULPS (DI)(AX*4), Y3, Y1
	VADDPS Y1, Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ $8, AX
	DECQ CX
	JNZ ab_loop

ab_done:
	VZEROUPPER
	RET
