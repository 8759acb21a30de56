package ann

import "math"

// graph is an HNSW graph in flat, pointer-free form: every link list is a
// fixed-stride row of int32 whose first slot holds the count, so the whole
// graph is a handful of []int32 the garbage collector never walks, and a
// node's links are one bounds-checked slice away.
//
// Layer 0 has one row per node (stride0 = 1 + its capacity: M0 for a
// native build, 2M by default, one more per widening by the repair). A
// node of level L ≥ 1 also has L consecutive rows in upper (stride
// strideU = 1 + M), starting at row upperAt[node]. The single node of the
// top layer is the entry point.
type graph struct {
	n       int
	entry   int32
	top     int     // level of entry: layers are 0..top
	levels  []uint8 // levels[i]: the highest layer node i is in
	base    []int32 // layer 0 rows
	stride0 int
	upper   []int32 // rows of layers ≥ 1
	upperAt []int32 // first upper row of each node; -1 for level 0
	strideU int

	// coder/hnsw's header fields, kept so that Export writes back the
	// bytes a graph was imported from.
	m        int
	ml       float64
	efSearch int
}

// newGraph allocates a graph for levels with room for cap0 links per node
// on layer 0 and capU on the layers above. Every row starts empty.
func newGraph(levels []uint8, cap0, capU int) *graph {
	n := len(levels)
	g := &graph{n: n, levels: levels, stride0: 1 + cap0, strideU: 1 + capU, upperAt: make([]int32, n)}
	rows := 0
	for i, l := range levels {
		g.upperAt[i] = -1
		if l > 0 {
			g.upperAt[i] = int32(rows)
			rows += int(l)
		}
	}
	g.base = make([]int32, n*g.stride0)
	g.upper = make([]int32, rows*g.strideU)
	return g
}

// row returns node id's row on layer l: the count, then the capacity.
func (g *graph) row(id int32, l int) []int32 {
	if l == 0 {
		i := int(id) * g.stride0
		return g.base[i : i+g.stride0 : i+g.stride0]
	}
	i := (int(g.upperAt[id]) + l - 1) * g.strideU
	return g.upper[i : i+g.strideU : i+g.strideU]
}

// links returns the neighbours of id on layer l (id must be in layer l).
func (g *graph) links(id int32, l int) []int32 {
	r := g.row(id, l)
	return r[1 : 1+r[0]]
}

// setLinks replaces the neighbours of id on layer l; they must fit.
func (g *graph) setLinks(id int32, l int, nb []int32) {
	r := g.row(id, l)
	r[0] = int32(copy(r[1:], nb))
}

// growBase widens layer 0 to hold cap0 links per node.
func (g *graph) growBase(cap0 int) {
	stride := 1 + cap0
	base := make([]int32, g.n*stride)
	for i := range g.n {
		copy(base[i*stride:], g.base[i*g.stride0:(i+1)*g.stride0])
	}
	g.base, g.stride0 = base, stride
}

// vec returns row id of the n×dim matrix vecs.
func vec(vecs []float32, dim int, id int32) []float32 {
	i := int(id) * dim
	return vecs[i : i+dim : i+dim]
}

// descend walks greedily from the entry point down to layer to+1 and
// returns the best node found, scored by Dot with q.
func (g *graph) descend(vecs []float32, dim int, q []float32, to int) Result {
	cur := Result{ID: g.entry, Score: Dot(q, vec(vecs, dim, g.entry))}
	for l := g.top; l > to; l-- {
		cur = g.greedy(vecs, dim, q, cur, l)
	}
	return cur
}

// greedy moves from cur to a better neighbour on layer l while there is one.
func (g *graph) greedy(vecs []float32, dim int, q []float32, cur Result, l int) Result {
	for changed := true; changed; {
		changed = false
		for _, x := range g.links(cur.ID, l) {
			if r := (Result{ID: x, Score: Dot(q, vec(vecs, dim, x))}); worse(cur, r) {
				cur, changed = r, true
			}
		}
	}
	return cur
}

// scratch is the per-search memory: a visited set stamped by generation
// (so it is never cleared between searches), the candidate heap and the
// beam. Searches take one from a sync.Pool, so they allocate nothing once
// the pooled slices have grown to the largest beam asked for.
type scratch struct {
	visited []uint16
	epoch   uint16
	cand    []Result // max-heap: the best unexpanded candidate on top
	res     topK     // the beam: the ef best accepted nodes, worst on top
	seeds   []Result // seedLong's candidates
	scored  int      // nodes scored by this search
	checked int      // rows the filter examined past each node's first
}

func newScratch(n int) *scratch { return &scratch{visited: make([]uint16, n)} }

// begin starts a search with a beam of ef.
func (s *scratch) begin(ef int) {
	s.epoch++
	if s.epoch == 0 {
		clear(s.visited)
		s.epoch = 1
	}
	if cap(s.res.h) < ef {
		s.res.h = make([]Result, 0, ef)
	}
	s.res = topK{h: s.res.h[:0], k: ef}
	s.cand = s.cand[:0]
	s.scored, s.checked = 0, 0
}

// seed enters r into the search unless it was already seen.
func (s *scratch) seed(r Result, accept Filter, m *groups) {
	if s.visited[r.ID] == s.epoch {
		return
	}
	s.visited[r.ID] = s.epoch
	s.pushCand(r)
	if accept == nil || s.accepts(accept, m, r.ID) {
		s.res.push(r)
	}
}

// accepts reports whether accept (not nil) takes any row of node id under
// the mapping m, counting the rows it examined past the first.
func (s *scratch) accepts(accept Filter, m *groups, id int32) bool {
	ok, c := m.accepts(accept, id)
	s.checked += c - 1
	return ok
}

func (s *scratch) pushCand(r Result) {
	s.cand = append(s.cand, r)
	h := s.cand
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !worse(h[p], h[i]) {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (s *scratch) popCand() Result {
	h := s.cand
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && worse(h[l], h[r]) {
			m = r
		}
		if !worse(h[i], h[m]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	s.cand = h
	return top
}

// unlimited is the budget of a search that may score every node.
const unlimited = math.MaxInt

// beam is the one best-first beam search of this package, used by queries
// and by the build alike. From the nodes seeded into s, it expands the
// best unexpanded candidate on layer l, scoring each unseen neighbour by
// Dot with q, until the best candidate ranks below the worst result of a
// full beam (s.res holds the ef best accepted nodes). Nodes none of whose
// rows (under m) the filter accepts are traversed but never enter the
// beam. It gives up and returns false once it has scored budget nodes,
// each scanPerVisit rows the filter examined past a node's first counting
// as one more.
func (g *graph) beam(s *scratch, vecs []float32, dim int, q []float32, l int, accept Filter, m *groups, budget int) bool {
	for len(s.cand) > 0 {
		c := s.popCand()
		if s.res.full() && worse(c, s.res.h[0]) {
			break
		}
		for _, x := range g.links(c.ID, l) {
			if s.visited[x] == s.epoch {
				continue
			}
			s.visited[x] = s.epoch
			r := Result{ID: x, Score: Dot(q, vec(vecs, dim, x))}
			s.scored++
			if s.res.full() && !worse(s.res.h[0], r) {
				continue
			}
			s.pushCand(r)
			if accept == nil || s.accepts(accept, m, x) {
				s.res.push(r)
			}
		}
		if s.scored+s.checked/scanPerVisit >= budget {
			return false
		}
	}
	return true
}
