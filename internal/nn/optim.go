package nn

import (
	"fmt"
	"math"
)

// Optimizer updates parameters from their gradients. Begin starts a step
// (advancing bias corrections); Update then applies it to any number of
// disjoint parameter slices, concurrently if the caller wishes. Embedding
// tables are updated row by row (only rows a batch touched), which makes the
// updates lazy: an untouched row's state does not decay (TF's LazyAdam).
type Optimizer interface {
	Begin()
	// Update applies the step to w given its gradient g and its state
	// slots s1, s2 (same length as w; RMSprop ignores s2). decay is the L2
	// coefficient added to the gradient (decay·w).
	Update(w, g, s1, s2 []float32, decay float32)
	// Slots is how many state slices per parameter the optimizer uses.
	Slots() int
	// SetLearningRate changes the step size from the next Begin on (for
	// learning-rate schedules).
	SetLearningRate(lr float32)
}

// Adam is Kingma & Ba's optimizer.
type Adam struct {
	LR, Beta1, Beta2, Eps float32
	t                     int
	c1, c2                float32 // lr·sqrt(1−β2^t)/(1−β1^t) and ε·sqrt(1−β2^t)
}

// NewAdam returns Adam with the usual β1 0.9, β2 0.999, ε 1e-8.
func NewAdam(lr float32) *Adam { return &Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8} }

// Slots implements Optimizer.
func (*Adam) Slots() int { return 2 }

// SetLearningRate implements Optimizer.
func (a *Adam) SetLearningRate(lr float32) { a.LR = lr }

// Begin implements Optimizer.
func (a *Adam) Begin() {
	a.t++
	b1 := 1 - math.Pow(float64(a.Beta1), float64(a.t))
	b2 := 1 - math.Pow(float64(a.Beta2), float64(a.t))
	a.c1 = float32(float64(a.LR) * math.Sqrt(b2) / b1)
	a.c2 = float32(float64(a.Eps) * math.Sqrt(b2)) // ε̂ as in the paper's efficient form
}

// Update implements Optimizer.
func (a *Adam) Update(w, g, m, v []float32, decay float32) {
	if len(g) != len(w) || len(m) != len(w) || len(v) != len(w) {
		panic(fmt.Sprintf("nn: adam: lengths %d %d %d %d", len(w), len(g), len(m), len(v)))
	}
	b1, b2 := a.Beta1, a.Beta2
	lr, eps := a.c1, a.c2
	if hasAVX() {
		adamAVX(w, g, m, v, b1, 1-b1, b2, 1-b2, lr, eps, decay)
		k := len(w) &^ 7
		w, g, m, v = w[k:], g[k:], m[k:], v[k:]
	}
	for i, gi := range g {
		if decay != 0 {
			gi += decay * w[i]
		}
		mi := b1*m[i] + (1-b1)*gi
		vi := b2*v[i] + (1-b2)*gi*gi
		m[i], v[i] = mi, vi
		w[i] -= lr * mi / (sqrt32(vi) + eps)
	}
}

// RMSprop is Hinton's optimizer as Keras implements it (ρ 0.9, ε 1e-7,
// ε outside the square root).
type RMSprop struct {
	LR, Rho, Eps float32
}

// NewRMSprop returns RMSprop with Keras' defaults.
func NewRMSprop(lr float32) *RMSprop { return &RMSprop{LR: lr, Rho: 0.9, Eps: 1e-7} }

// Slots implements Optimizer.
func (*RMSprop) Slots() int { return 1 }

// SetLearningRate implements Optimizer.
func (r *RMSprop) SetLearningRate(lr float32) { r.LR = lr }

// Begin implements Optimizer.
func (*RMSprop) Begin() {}

// Update implements Optimizer; s2 is unused and may be nil.
func (r *RMSprop) Update(w, g, s, _ []float32, decay float32) {
	if len(g) != len(w) || len(s) != len(w) {
		panic(fmt.Sprintf("nn: rmsprop: lengths %d %d %d", len(w), len(g), len(s)))
	}
	rho, lr, eps := r.Rho, r.LR, r.Eps
	if hasAVX() {
		rmspropAVX(w, g, s, rho, 1-rho, lr, eps, decay)
		k := len(w) &^ 7
		w, g, s = w[k:], g[k:], s[k:]
	}
	for i, gi := range g {
		if decay != 0 {
			gi += decay * w[i]
		}
		si := rho*s[i] + (1-rho)*gi*gi
		s[i] = si
		w[i] -= lr * gi / (sqrt32(si) + eps)
	}
}

// sqrt32 is a float32 square root (the conversions compile to SQRTSS's
// double-precision sibling; the result is correctly rounded either way).
func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }
