// Package gradcheck checks analytic gradients against central finite
// differences (gonum's diff/fd), for the backward-pass tests of nn, tower
// and train. It is test support and is imported only from _test files.
package gradcheck

import (
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
)

// Tolerance bounds |numeric − analytic| by Abs + Rel·|numeric|. A NaN on
// either side, or an infinite numeric gradient, is always outside it.
type Tolerance struct {
	Step, Abs, Rel float64
}

// Check differentiates loss numerically with respect to every element of
// the float32 parameters p (restored afterwards) and reports each element
// whose analytic gradient is outside the tolerance. loss must read p.
func Check(t testing.TB, name string, p, analytic []float32, loss func() float64, tol Tolerance) {
	t.Helper()
	orig := slices.Clone(p)
	x := make([]float64, len(p))
	for i, v := range p {
		x[i] = float64(v)
	}
	num := fd.Gradient(nil, func(x []float64) float64 {
		for i, v := range x {
			p[i] = float32(v)
		}
		return loss()
	}, x, &fd.Settings{Formula: fd.Central, Step: tol.Step})
	copy(p, orig)
	for i, n := range num {
		// Written as !(d <= bound) so that NaN fails: every comparison with
		// NaN is false. An infinite n would make the bound infinite too.
		if d := math.Abs(n - float64(analytic[i])); math.IsInf(n, 0) || !(d <= tol.Abs+tol.Rel*math.Abs(n)) {
			t.Errorf("%s[%d]: analytic %.6g, numeric %.6g", name, i, analytic[i], n)
		}
	}
}

// Near reports whether |a−b| ≤ tol, computing a−b in T. It is false when
// either is NaN, where "math.Abs(a-b) > tol" is false too and would let a
// NaN pass: write checks as !Near(...).
func Near[T float32 | float64](a, b T, tol float64) bool {
	return math.Abs(float64(a-b)) <= tol
}
