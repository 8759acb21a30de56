package gradcheck

import (
	"fmt"
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
}
