package gradcheck

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// recorder is a testing.TB that records errors instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCheck(t *testing.T) {
	t.Parallel()
	p := []float32{0.5, -1.5, 2}
	// loss = Σ p_i³, gradient 3 p_i².
	loss := func() float64 {
		var s float64
		for _, v := range p {
			s += float64(v) * float64(v) * float64(v)
		}
		return s
	}
	good := []float32{0.75, 6.75, 12}
	tol := Tolerance{Step: 1e-3, Abs: 1e-3, Rel: 1e-2}
	r := &recorder{TB: t}
	Check(r, "p", p, good, loss, tol)
	if len(r.errs) != 0 {
		t.Errorf("correct gradient rejected: %v", r.errs)
	}
	if p[0] != 0.5 || p[1] != -1.5 || p[2] != 2 {
		t.Errorf("parameters not restored: %v", p)
	}
	bad := []float32{0.75, 6.75, 11}
	r = &recorder{TB: t}
	Check(r, "p", p, bad, loss, tol)
	if len(r.errs) != 1 {
		t.Errorf("wrong gradient: %d errors, want 1: %v", len(r.errs), r.errs)
	}

	// NaN and infinity never pass: not in the analytic gradient, and not in
	// the numeric one (the loss NaN or +Inf when p[1] moves off -1.5).
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, tc := range []struct {
		name     string
		analytic []float32
		loss     func() float64
		want     string
	}{
		{"NaN analytic", []float32{0.75, nan, 12}, loss, "p[1]: analytic NaN"},
		{"+Inf analytic", []float32{0.75, 6.75, inf}, loss, "p[2]: analytic +Inf"},
		{"NaN numeric", good, func() float64 {
			if p[1] != -1.5 {
				return math.NaN()
			}
			return loss()
		}, "numeric NaN"},
		{"+Inf numeric", good, func() float64 {
			if p[1] > -1.5 {
				return math.Inf(1)
			}
			return loss()
		}, "numeric +Inf"},
	} {
		r = &recorder{TB: t}
		Check(r, "p", p, tc.analytic, tc.loss, tol)
		if len(r.errs) != 1 || !strings.Contains(r.errs[0], tc.want) {
			t.Errorf("%s: errors %q, want one with %q", tc.name, r.errs, tc.want)
		}
	}
	if p[0] != 0.5 || p[1] != -1.5 || p[2] != 2 {
		t.Errorf("parameters not restored: %v", p)
	}
}
