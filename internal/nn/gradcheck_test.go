package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/towerrecall/towerrecall/internal/nn/gradcheck"
)

// checkGrad compares an analytic gradient of loss w.r.t. p with a central
// difference computed in float64 around float32 parameters.
func checkGrad(t *testing.T, name string, p, analytic []float32, loss func() float64) {
	t.Helper()
	gradcheck.Check(t, name, p, analytic, loss, gradcheck.Tolerance{Step: 1e-2, Abs: 2e-3, Rel: 2e-2})
}

func randSlice(r *rand.Rand, n int, scale float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = (r.Float32()*2 - 1) * scale
	}
	return s
}

func dot64(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func TestDenseBackward(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	const n, in, out = 3, 20, 5 // in ≥ 16 exercises the assembly kernels
	d := NewDense(in, out, false, r)
	d.B = randSlice(r, out, 0.5)
	x := randSlice(r, n*in, 1)
	c := randSlice(r, n*out, 1) // loss = Σ c·y
	y := make([]float32, n*out)
	loss := func() float64 { d.ForwardTo(y, x, n); return dot64(c, y) }
	// BackwardTo adds to dW and dB (a step sums them over row spans) and
	// writes dx: start all three from garbage.
	dW0, dB0 := randSlice(r, in*out, 1), randSlice(r, out, 1)
	dW, dB := append([]float32(nil), dW0...), append([]float32(nil), dB0...)
	dx := randSlice(r, n*in, 1)
	d.BackwardTo(dx, dW, dB, x, c, make([]float32, in*out), n)
	for i := range dW {
		dW[i] -= dW0[i]
	}
	for i := range dB {
		dB[i] -= dB0[i]
	}
	checkGrad(t, "W", d.W, dW, loss)
	checkGrad(t, "B", d.B, dB, loss)
	checkGrad(t, "x", x, dx, loss)
}

func TestReLUBackward(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	x := randSlice(r, 30, 1)
	for i, v := range x { // keep away from the kink
		if math.Abs(float64(v)) < 0.05 {
			x[i] = 0.5
		}
	}
	c := randSlice(r, 30, 1)
	y := make([]float32, 30)
	loss := func() float64 { ReLUTo(y, x); return dot64(c, y) }
	loss()
	dx := randSlice(r, 30, 1) // written, not added to
	ReLUBackwardTo(dx, c, y)
	checkGrad(t, "x", x, dx, loss)
}

func TestL2NormalizeBackward(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	const n, dim = 4, 8
	x := randSlice(r, n*dim, 1)
	c := randSlice(r, n*dim, 1)
	y := make([]float32, n*dim)
	norms := make([]float32, n)
	loss := func() float64 { L2NormalizeTo(y, norms, x, n, dim); return dot64(c, y) }
	loss()
	for i := 0; i < n; i++ {
		if s := dot64(y[i*dim:i*dim+dim], y[i*dim:i*dim+dim]); !gradcheck.Near(s, 1, 1e-5) {
			t.Fatalf("row %d: |y|² = %g", i, s)
		}
	}
	dx := make([]float32, n*dim)
	L2NormalizeBackwardTo(dx, c, y, norms, n, dim)
	checkGrad(t, "x", x, dx, loss)
}

func TestEmbeddingPoolBackward(t *testing.T) {
	t.Parallel()
	for _, dim := range []int{3, 17, 32} { // the scalar loop and the row kernel
		t.Run(fmt.Sprint("dim=", dim), func(t *testing.T) { testPoolBackward(t, dim) })
	}
}

func testPoolBackward(t *testing.T, dim int) {
	r := rand.New(rand.NewPCG(7, 8))
	e := NewEmbedding(6, dim, 0.5, r)
	bags := [][]int32{{1}, {2, 3, 5}, {0}, {3, 3}, {}, {2}} // repeats, an empty bag, a row alone in a bag and also in another
	c := randSlice(r, len(bags)*dim, 1)
	y := make([]float32, len(bags)*dim)
	loss := func() float64 {
		for i, b := range bags {
			e.PoolTo(y[i*dim:i*dim+dim], b)
		}
		return dot64(c, y)
	}
	g := NewSparseGrad(6, dim)
	for i, b := range bags {
		g.PoolBackward(b, c[i*dim:i*dim+dim])
	}
	if got, want := g.Touched(), []int32{1, 2, 3, 5, 0}; !equalInt32(got, want) {
		t.Fatalf("touched %v, want %v", got, want)
	}
	checkGrad(t, "W", e.W, g.G, loss)
	g.Clear()
	for i, v := range g.G {
		if v != 0 {
			t.Fatalf("G[%d] = %g after Clear", i, v)
		}
	}
	if len(g.Touched()) != 0 {
		t.Fatal("touched not cleared")
	}
}

// TestEmbeddingDecayPoolBackward checks the recency-weighted pooling
// (Embedding.Decay) against finite differences, at widths below and above
// the row kernels' 8 lanes, and that its forward pass is the weighted mean.
func TestEmbeddingDecayPoolBackward(t *testing.T) {
	t.Parallel()
	for _, dim := range []int{4, 17, 32} {
		t.Run(fmt.Sprint("dim=", dim), func(t *testing.T) { testDecayPoolBackward(t, dim) })
	}
}

func testDecayPoolBackward(t *testing.T, dim int) {
	r := rand.New(rand.NewPCG(9, 10))
	e := NewEmbedding(7, dim, 0.5, r)
	e.Decay = 0.7
	bags := [][]int32{{1}, {2, 3, 5}, {0}, {3, 3}, {}, {6, 5, 4, 3, 2, 1}, {2}}
	c := randSlice(r, len(bags)*dim, 1)
	y := make([]float32, len(bags)*dim)
	loss := func() float64 {
		for i, b := range bags {
			e.PoolTo(y[i*dim:i*dim+dim], b)
		}
		return dot64(c, y)
	}
	g := NewSparseGrad(7, dim)
	for i, b := range bags {
		g.PoolBackwardDecay(b, c[i*dim:i*dim+dim], e.Decay)
	}
	checkGrad(t, "W", e.W, g.G, loss)
	// Forward: (row2 + 0.7·row3 + 0.49·row5) / 2.19.
	e.PoolTo(y[:dim], bags[1])
	for j := range dim {
		want := (float64(e.Row(2)[j]) + 0.7*float64(e.Row(3)[j]) + 0.49*float64(e.Row(5)[j])) / 2.19
		if !gradcheck.Near(float64(y[j]), want, 1e-5) {
			t.Fatalf("pooled[%d] = %g, want %g", j, y[j], want)
		}
	}
}

// TestL2NormalizeZeroRow checks the normalisation of an all-zero row (a
// collapsed ReLU output): the output is zero and finite, and the gradient
// is that of x/sqrt(|x|²+ε), 1/sqrt(ε) = 1e6 times the incoming one,
// against central differences with a step well below sqrt(ε). Behind an
// output ReLU (the only way the towers reach it with a bias) that gradient
// is cut to zero.
func TestL2NormalizeZeroRow(t *testing.T) {
	t.Parallel()
	const dim = 5
	r := rand.New(rand.NewPCG(15, 16))
	x := make([]float32, dim)
	c := randSlice(r, dim, 1)
	y, norms := make([]float32, dim), make([]float32, 1)
	loss := func() float64 { L2NormalizeTo(y, norms, x, 1, dim); return dot64(c, y) }
	loss()
	for j, v := range y {
		if v != 0 {
			t.Fatalf("y[%d] = %g for a zero row", j, v)
		}
	}
	dx := make([]float32, dim)
	L2NormalizeBackwardTo(dx, c, y, norms, 1, dim)
	for j, v := range dx {
		if want := float64(c[j]) / math.Sqrt(normEps); !gradcheck.Near(float64(v), want, 1e-5*math.Abs(want)) {
			t.Fatalf("dx[%d] = %g, want %g", j, v, want)
		}
	}
	gradcheck.Check(t, "x", x, dx, loss, gradcheck.Tolerance{Step: 1e-9, Abs: 1, Rel: 1e-3})
	// Behind a ReLU whose outputs are all 0, nothing flows back.
	h := make([]float32, dim)
	ReLUBackwardTo(h, dx, x)
	for j, v := range h {
		if v != 0 {
			t.Fatalf("through the ReLU: dh[%d] = %g", j, v)
		}
	}
}

func equalInt32(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAdamStep(t *testing.T) {
	t.Parallel()
	a := NewAdam(0.1)
	w := []float32{1, -1}
	g := []float32{0.5, -2}
	m, v := make([]float32, 2), make([]float32, 2)
	a.Begin()
	a.Update(w, g, m, v, 0)
	// The first bias-corrected Adam step moves each weight by lr·sign(g).
	if !gradcheck.Near(w[0], 0.9, 1e-5) || !gradcheck.Near(w[1], -0.9, 1e-5) {
		t.Fatalf("w = %v, want [0.9 -0.9]", w)
	}
}

func TestRMSpropStep(t *testing.T) {
	t.Parallel()
	o := NewRMSprop(0.01)
	w := []float32{1}
	s := make([]float32, 1)
	o.Begin()
	o.Update(w, []float32{2}, s, nil, 0)
	// s = 0.1·4 = 0.4, step = 0.01·2/sqrt(0.4)
	want := 1 - 0.01*2/math.Sqrt(0.4)
	if !gradcheck.Near(float64(w[0]), want, 1e-6) || !gradcheck.Near(float64(s[0]), 0.4, 1e-7) {
		t.Fatalf("w %g s %g, want %g 0.4", w[0], s[0], want)
	}
}

// TestSetLearningRate checks that a changed rate takes effect at the next
// step exactly as if the optimizer had been built with it.
func TestSetLearningRate(t *testing.T) {
	t.Parallel()
	for _, pair := range [][2]Optimizer{{NewAdam(0.05), NewAdam(0.01)}, {NewRMSprop(0.05), NewRMSprop(0.01)}} {
		a, b := pair[0], pair[1]
		a.SetLearningRate(0.01)
		wa, wb := []float32{1, -2}, []float32{1, -2}
		sa1, sa2, sb1, sb2 := make([]float32, 2), make([]float32, 2), make([]float32, 2), make([]float32, 2)
		g := []float32{0.3, -0.7}
		for range 3 {
			a.Begin()
			a.Update(wa, g, sa1, sa2, 0)
			b.Begin()
			b.Update(wb, g, sb1, sb2, 0)
		}
		if wa[0] != wb[0] || wa[1] != wb[1] {
			t.Errorf("%T: %v after SetLearningRate, %v when built with the rate", a, wa, wb)
		}
	}
}

func TestOptimizersDescend(t *testing.T) {
	t.Parallel()
	for _, o := range []Optimizer{NewAdam(0.05), NewRMSprop(0.01)} {
		w := []float32{3, -2}
		s1, s2 := make([]float32, 2), make([]float32, 2)
		g := make([]float32, 2)
		for range 500 {
			g[0], g[1] = 2*w[0], 2*w[1] // ∇ of |w|²
			o.Begin()
			o.Update(w, g, s1, s2, 0)
		}
		if !gradcheck.Near(w[0], 0, 0.1) || !gradcheck.Near(w[1], 0, 0.1) {
			t.Errorf("%T: w = %v, want ≈ 0", o, w)
		}
	}
}

func BenchmarkDenseForward(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	d := NewDense(52, 64, true, r)
	const n = 512
	x := randSlice(r, n*52, 1)
	y := make([]float32, n*64)
	b.ReportAllocs()
	for b.Loop() {
		d.ForwardTo(y, x, n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n*52*64), "ns/MAC")
}

func BenchmarkDenseBackward(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	d := NewDense(52, 64, true, r)
	const n = 512
	x := randSlice(r, n*52, 1)
	dy := randSlice(r, n*64, 1)
	dx := make([]float32, n*52)
	dW := make([]float32, 52*64)
	dB := make([]float32, 64)
	b.ReportAllocs()
	wt := make([]float32, 52*64)
	for b.Loop() {
		d.BackwardTo(dx, dW, dB, x, dy, wt, n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(2*n*52*64), "ns/MAC")
}

func TestExpShiftTo(t *testing.T) {
	t.Parallel()
	var xs []float32
	for x := float32(-80); x <= 80; x += 0.173 {
		xs = append(xs, x)
	}
	s := append([]float32(nil), xs...)
	const shift = 3.5
	sum := ExpShiftTo(s, shift)
	var want float64
	for i, x := range xs {
		w := math.Exp(float64(x - shift))
		want += w
		if rel := math.Abs(float64(s[i])-w) / w; !(rel <= 3e-7) {
			t.Fatalf("exp(%g) = %g, want %g", x-shift, s[i], w)
		}
	}
	if rel := math.Abs(float64(sum)-want) / want; !(rel <= 1e-5) {
		t.Fatalf("sum %g, want %g", sum, want)
	}
	// Far below the range, values are tiny and finite, never garbage.
	s = []float32{-1000, -200, 0}
	ExpShiftTo(s, 0)
	if !(s[0] >= 0 && s[0] <= 1e-37) || !(s[1] <= 1e-37) || s[2] != 1 {
		t.Fatalf("clamped: %v", s)
	}
}

func BenchmarkExpShiftTo(b *testing.B) {
	s := make([]float32, 700)
	r := rand.New(rand.NewPCG(1, 1))
	src := randSlice(r, 700, 20)
	b.ReportAllocs()
	for b.Loop() {
		copy(s, src)
		ExpShiftTo(s, 20)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/700, "ns/exp")
}

// TestFMARowsN holds FMARowsN to FMARows row by row, bit for bit, in the
// three layouts the dense layers use (rows of a as rows, a's columns as rows
// over a batch, and padded strides), over widths that exercise the kernel's
// 16-column blocks and its masked 8-column blocks (full and partial), and
// row counts around its blocks of four; the rows between dst's rows are left
// alone; bad shapes panic.
func TestFMARowsN(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(31, 32))
	for _, n := range []int{1, 5, 8, 9, 15, 16, 17, 24, 31, 33, 52, 64} {
		for _, k := range []int{1, 2, 7, 52} {
			for _, m := range []int{1, 3, 4, 5, 8, 11} {
				for _, lay := range []struct{ dpad, arow, astride int }{
					{0, k, 1},       // forward and dx: row j of a is a[j·k:], contiguous
					{0, 1, m},       // weight gradient: column j of a row-major k×m matrix
					{3, k + 2, 1},   // padded rows
					{1, 2, 2*m + 1}, // interleaved, strided
				} {
					dstride, bstride := n+lay.dpad, n+3
					a := randSlice(r, (m-1)*lay.arow+(k-1)*lay.astride+1, 1)
					b := randSlice(r, (k-1)*bstride+n, 1)
					dst := randSlice(r, (m-1)*dstride+n, 1)
					want := append([]float32(nil), dst...)
					for j := range m {
						FMARows(want[j*dstride:j*dstride+n], a[j*lay.arow:], lay.astride, b, bstride, k)
					}
					FMARowsN(dst, dstride, n, a, lay.arow, lay.astride, b, bstride, k, m)
					for i := range want {
						if math.Float32bits(dst[i]) != math.Float32bits(want[i]) {
							t.Fatalf("FMARowsN n=%d k=%d m=%d %+v: [%d] = %g, FMARows %g", n, k, m, lay, i, dst[i], want[i])
						}
					}
				}
			}
		}
	}
	for _, c := range []struct {
		name                                    string
		ldst, dstride, n, la, arow, astride, lb int
	}{
		{"dst short", 4*8 - 1, 8, 8, 16, 4, 1, 32},
		{"rows overlap", 4 * 8, 4, 8, 16, 4, 1, 32},
		{"a short", 4 * 8, 8, 8, 15, 4, 1, 32},
		{"b short", 4 * 8, 8, 8, 16, 4, 1, 31},
		{"negative stride", 4 * 8, 8, 8, 16, 4, -1, 32},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", c.name)
				}
			}()
			FMARowsN(make([]float32, c.ldst), c.dstride, c.n, make([]float32, c.la), c.arow, c.astride, make([]float32, c.lb), 8, 4, 4)
		}()
	}
}

func TestKernels(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{0, 1, 3, 7, 8, 9, 15, 16, 31, 32, 33, 52, 64, 100, 700} {
		for _, k := range []int{1, 2, 5, 8} {
			for _, astride := range []int{0, 1, 3} {
				bstride := n + 2
				a := randSlice(r, (k-1)*astride+1, 1)
				b := randSlice(r, (k-1)*bstride+n, 1)
				dst := randSlice(r, n, 1)
				want := make([]float64, n)
				for j := range want {
					want[j] = float64(dst[j])
					for s := 0; s < k; s++ {
						want[j] += float64(a[s*astride]) * float64(b[s*bstride+j])
					}
				}
				FMARows(dst, a, astride, b, bstride, k)
				for j := range want {
					if !gradcheck.Near(float64(dst[j]), want[j], 1e-5) {
						t.Fatalf("FMARows n=%d k=%d astride=%d: [%d] = %g, want %g", n, k, astride, j, dst[j], want[j])
					}
				}
			}
		}
		x, y := randSlice(r, n, 1), randSlice(r, n+3, 1)
		if got, want := float64(Dot(x, y)), dot64(x, y[:n]); !gradcheck.Near(got, want, 1e-5) {
			t.Fatalf("Dot n=%d: %g, want %g", n, got, want)
		}
		y0 := append([]float32(nil), y...)
		Axpy(0.5, x, y)
		for j := range y {
			w := y0[j]
			if j < n {
				w += 0.5 * x[j]
			}
			if !gradcheck.Near(y[j], w, 1e-6) {
				t.Fatalf("Axpy n=%d: [%d] = %g, want %g", n, j, y[j], w)
			}
		}
	}
}

// TestRowKernels checks addRows and axpyRows (gathered rows, repeats
// included, plain and decaying weights) bit for bit against a loop of Axpy
// over the same rows, their scalar fallbacks against them, and that a bad
// index panics.
func TestRowKernels(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(13, 14))
	const rows = 9
	for _, n := range []int{1, 3, 7, 8, 9, 16, 24, 31, 32, 33, 40, 64, 100} {
		for _, idx := range [][]int32{{}, {4}, {0, 8}, {2, 5, 2, 7, 1, 2}, {8, 7, 6, 5, 4, 3, 2, 1, 0, 3}} {
			for _, wt := range [][2]float32{{1, 1}, {-0.3, 1}, {1, 0.8}, {0.7, 0.5}} {
				a, decay := wt[0], wt[1]
				w := randSlice(r, rows*n, 1)
				x := randSlice(r, n, 1)
				dst := randSlice(r, n, 1)
				want, wantW := append([]float32(nil), dst...), append([]float32(nil), w...)
				for k, c := 0, a; k < len(idx); k, c = k+1, c*decay {
					i := int(idx[k])
					Axpy(c, w[i*n:i*n+n], want)
					Axpy(c, x, wantW[i*n:i*n+n])
				}
				got, fallback := append([]float32(nil), dst...), append([]float32(nil), dst...)
				addRows(got, w, idx, a, decay)
				addRowsGo(fallback, w, idx, a, decay)
				gotW, fallbackW := append([]float32(nil), w...), append([]float32(nil), w...)
				axpyRows(x, gotW, idx, a, decay)
				axpyRowsGo(x, fallbackW, idx, a, decay)
				for j := range want {
					if got[j] != want[j] || !gradcheck.Near(fallback[j], want[j], 1e-5) {
						t.Fatalf("addRows n=%d idx=%v a=%g decay=%g: [%d] = %g (fallback %g), want %g", n, idx, a, decay, j, got[j], fallback[j], want[j])
					}
				}
				for j := range wantW {
					if gotW[j] != wantW[j] || !gradcheck.Near(fallbackW[j], wantW[j], 1e-5) {
						t.Fatalf("axpyRows n=%d idx=%v a=%g decay=%g: [%d] = %g (fallback %g), want %g", n, idx, a, decay, j, gotW[j], fallbackW[j], wantW[j])
					}
				}
			}
		}
	}
	for _, bad := range []int32{-1, rows} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("addRows with row %d of %d: no panic", bad, rows)
				}
			}()
			addRows(make([]float32, 4), make([]float32, rows*4), []int32{0, bad}, 1, 1)
		}()
		func() { // axpyRows trusts its caller's check
			defer func() {
				if recover() == nil {
					t.Errorf("PoolBackwardDecay with row %d of %d: no panic", bad, rows)
				}
			}()
			NewSparseGrad(rows, 16).PoolBackwardDecay([]int32{0, bad}, make([]float32, 16), 0.8)
		}()
	}
}

// TestVectorKernelsMatchScalar runs the optimizers and ReLU on lengths that
// exercise both the 8-lane kernels and the scalar tails, against float64
// references.
func TestVectorKernelsMatchScalar(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(21, 22))
	for _, n := range []int{1, 7, 8, 13, 64, 101} {
		x := randSlice(r, n, 1)
		y := make([]float32, n)
		ReLUTo(y, x)
		dy := randSlice(r, n, 1)
		dx := make([]float32, n)
		ReLUBackwardTo(dx, dy, y)
		for i := range x {
			wy, wdx := max(x[i], 0), float32(0)
			if x[i] > 0 {
				wdx = dy[i]
			}
			if y[i] != wy || dx[i] != wdx {
				t.Fatalf("relu n=%d [%d]: %g %g, want %g %g", n, i, y[i], dx[i], wy, wdx)
			}
		}
		w := randSlice(r, n, 1)
		g := randSlice(r, n, 1)
		m, v := randSlice(r, n, 0.1), randSlice(r, n, 0.1)
		for i := range v {
			v[i] = v[i] * v[i]
		}
		w0, m0, v0 := append([]float32(nil), w...), append([]float32(nil), m...), append([]float32(nil), v...)
		a := NewAdam(0.01)
		a.Begin()
		a.Update(w, g, m, v, 0.1)
		for i := range w {
			gi := float64(g[i]) + 0.1*float64(w0[i])
			mi := 0.9*float64(m0[i]) + 0.1*gi
			vi := 0.999*float64(v0[i]) + 0.001*gi*gi
			wi := float64(w0[i]) - float64(a.c1)*mi/(math.Sqrt(vi)+float64(a.c2))
			if !gradcheck.Near(float64(w[i]), wi, 1e-5) || !gradcheck.Near(float64(m[i]), mi, 1e-6) || !gradcheck.Near(float64(v[i]), vi, 1e-6) {
				t.Fatalf("adam n=%d [%d]: w %g m %g v %g, want %g %g %g", n, i, w[i], m[i], v[i], wi, mi, vi)
			}
		}
		w, s := append([]float32(nil), w0...), append([]float32(nil), v0...)
		o := NewRMSprop(0.01)
		o.Update(w, g, s, nil, 0.1)
		for i := range w {
			gi := float64(g[i]) + 0.1*float64(w0[i])
			si := 0.9*float64(v0[i]) + 0.1*gi*gi
			wi := float64(w0[i]) - 0.01*gi/(math.Sqrt(si)+1e-7)
			if !gradcheck.Near(float64(w[i]), wi, 1e-5) || !gradcheck.Near(float64(s[i]), si, 1e-6) {
				t.Fatalf("rmsprop n=%d [%d]: w %g s %g, want %g %g", n, i, w[i], s[i], wi, si)
			}
		}
	}
}

// TestScalarFallbacks checks the non-AVX code paths against the AVX ones
// (or against themselves where the CPU lacks AVX).
func TestScalarFallbacks(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(31, 32))
	for _, n := range []int{1, 5, 8, 17, 64, 700} {
		a := randSlice(r, 8, 1)
		b := randSlice(r, 8*n, 1)
		d1 := randSlice(r, n, 1)
		d2 := append([]float32(nil), d1...)
		FMARows(d1, a, 1, b, n, 8)
		fmaRowsGo(d2, a, 1, b, n, 8)
		x, y := randSlice(r, n, 1), randSlice(r, n, 1)
		y2 := append([]float32(nil), y...)
		Axpy(0.3, x, y)
		axpyGo(0.3, x, y2)
		for j := range d1 {
			if !gradcheck.Near(d1[j], d2[j], 1e-5) || !gradcheck.Near(y[j], y2[j], 1e-6) {
				t.Fatalf("n=%d [%d]: FMARows %g vs %g, Axpy %g vs %g", n, j, d1[j], d2[j], y[j], y2[j])
			}
		}
		if p, q := Dot(x, y), dotGo(x, y); !gradcheck.Near(p, q, 1e-4) {
			t.Fatalf("n=%d: Dot %g vs %g", n, p, q)
		}
		s1 := randSlice(r, n, 10)
		s2 := append([]float32(nil), s1...)
		e1, e2 := ExpShiftTo(s1, 5), expShiftGo(s2, 5)
		if !gradcheck.Near(e1, e2, 1e-5*float64(e2)) {
			t.Fatalf("n=%d: ExpShiftTo sum %g vs %g", n, e1, e2)
		}
	}
}

// TestAxpbyAndMax holds Axpby and Max to the plain loops bit for bit (the
// trainer relies on it: a model trains the same with and without AVX),
// over lengths that exercise the 8-lane kernels and the scalar tails, with
// the maximum in every position.
func TestAxpbyAndMax(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(41, 42))
	for _, n := range []int{1, 7, 8, 9, 16, 17, 24, 33, 1031} {
		x, y := randSlice(r, n, 3), randSlice(r, n, 3)
		want := make([]float32, n)
		for i := range want {
			want[i] = -0.7*x[i] + 1.3*y[i]
		}
		Axpby(-0.7, x, 1.3, y)
		for i := range y {
			if math.Float32bits(y[i]) != math.Float32bits(want[i]) {
				t.Fatalf("Axpby n=%d [%d]: %g, want %g", n, i, y[i], want[i])
			}
		}
		for at := range n {
			s := randSlice(r, n, 1)
			s[at] = 5
			if got := Max(s); got != 5 {
				t.Fatalf("Max n=%d with 5 at %d: %g", n, at, got)
			}
		}
		s := randSlice(r, n, 1)
		for i := range s {
			s[i] -= 2 // all negative
		}
		want1 := s[0]
		for _, v := range s {
			want1 = max(want1, v)
		}
		if got := Max(s); got != want1 {
			t.Fatalf("Max n=%d of negatives: %g, want %g", n, got, want1)
		}
	}
}
