package ann

// Exact scores every vector. It is immutable after construction and safe
// for concurrent use.
type Exact struct {
	vecs []float32
	dim  int
	n    int
}

var _ Index = (*Exact)(nil)

// NewExact copies vectors (flat row-major n×dim) into an exact index. It
// rejects NaN, ±Inf and vectors whose squared norm exceeds 1e37.
func NewExact(vectors []float32, dim int) (*Exact, error) {
	n, err := checkVectors(vectors, dim)
	if err != nil {
		return nil, err
	}
	return &Exact{vecs: append([]float32(nil), vectors...), dim: dim, n: n}, nil
}

// Len is the number of vectors.
func (e *Exact) Len() int { return e.n }

// Dim is the vector dimension.
func (e *Exact) Dim() int { return e.dim }

// Name is "exact".
func (e *Exact) Name() string { return "exact" }

// Vector returns the stored vector of id; the caller must not modify it.
func (e *Exact) Vector(id int32) []float32 {
	i := int(id) * e.dim
	return e.vecs[i : i+e.dim : i+e.dim]
}

// Search returns the k best-scoring accepted vectors. It allocates nothing
// when cap(dst) ≥ min(k, Len()); otherwise it allocates dst once.
func (e *Exact) Search(dst []Result, q []float32, k int, accept Filter) ([]Result, error) {
	if _, err := checkQuery(q, e.dim, k); err != nil {
		return dst[:0], err
	}
	t := newTopK(dst, k, e.n)
	e.scan(&t, q, accept)
	return t.sorted(), nil
}

// scan offers every accepted vector to t.
func (e *Exact) scan(t *topK, q []float32, accept Filter) {
	d := e.dim
	if d == 8 {
		// The movie towers are 8-dimensional; the unrolled loop sums in the
		// same order as Dot, so scores are bit-identical.
		q0, q1, q2, q3, q4, q5, q6, q7 := q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7]
		vecs := e.vecs
		for i := 0; i < e.n; i++ {
			v := vecs[i*8 : i*8+8 : i*8+8]
			var s float32
			s += q0 * v[0]
			s += q1 * v[1]
			s += q2 * v[2]
			s += q3 * v[3]
			s += q4 * v[4]
			s += q5 * v[5]
			s += q6 * v[6]
			s += q7 * v[7]
			if t.full() && s < t.h[0].Score {
				continue // cannot beat the worst kept; skip the filter call
			}
			if accept != nil && !accept(int32(i)) {
				continue
			}
			t.push(Result{ID: int32(i), Score: s})
		}
		return
	}
	for i := 0; i < e.n; i++ {
		s := Dot(q, e.vecs[i*d:(i+1)*d])
		if t.full() && s < t.h[0].Score {
			continue
		}
		if accept != nil && !accept(int32(i)) {
			continue
		}
		t.push(Result{ID: int32(i), Score: s})
	}
}
