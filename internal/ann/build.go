package ann

import (
	"math"
	"math/rand/v2"
	"slices"
)

// nativeBuild constructs an HNSW graph the textbook way (Malkov & Yashunin
// 2018: beam search with efConstruction, the neighbour-selection heuristic
// with pruned connections kept, M links per upper layer and 2M in the base
// layer), then repairs base-layer reachability from the entry point. It is
// needed because coder/hnsw v0.6.1's Add inserts with the same greedy search
// its queries use and fragments clustered data into disconnected pieces.
// The result is handed to the library through its Import format; queries
// still run on the library's Search.
//
// aug holds n unit-length rows of width d1, so the distance 1−dot is the
// library's cosine distance.
func nativeBuild(aug []float32, d1, n, m, m0, efC int, ml float64, seed uint64) graphSpec {
	b := &nbuilder{
		aug: aug, d1: d1, n: n, m: m, m0: m0, efC: max(efC, m),
		links: make([][][]int32, n), visited: make([]uint32, n),
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed_a11))
	order := rng.Perm(n)
	levels := make([]int, n)
	for i := range levels {
		l := 0
		for l < maxLayers-2 && rng.Float64() < ml {
			l++
		}
		levels[i] = l
	}
	b.entry = -1
	for _, i := range order {
		b.insert(int32(i), levels[i])
	}
	b.repair()

	// The library's Search enters at an arbitrary node of the top layer, so
	// a layer holding only our entry point goes on top.
	g := graphSpec{m: m, ml: ml, efSearch: efC}
	for li := 0; li <= b.top; li++ {
		var l layerSpec
		for i := range n {
			if levels[i] >= li {
				l.keys = append(l.keys, int32(i))
				l.nbrs = append(l.nbrs, b.links[i][li])
			}
		}
		g.layers = append(g.layers, l)
	}
	if len(g.layers[b.top].keys) > 1 {
		g.layers = append(g.layers, layerSpec{keys: []int32{b.entry}, nbrs: [][]int32{nil}})
	}
	return g
}

type cand struct {
	d  float32
	id int32
}

type nbuilder struct {
	aug        []float32
	d1, n      int
	m, m0, efC int
	links      [][][]int32 // links[node][layer]
	entry      int32
	top        int
	visited    []uint32
	epoch      uint32
}

func (b *nbuilder) vec(i int32) []float32 {
	return b.aug[int(i)*b.d1 : (int(i)+1)*b.d1]
}

func (b *nbuilder) dist(x, y []float32) float32 { return 1 - Dot(x, y) }

func (b *nbuilder) insert(id int32, level int) {
	b.links[id] = make([][]int32, level+1)
	if b.entry < 0 {
		b.entry, b.top = id, level
		return
	}
	q := b.vec(id)
	ep := cand{b.dist(q, b.vec(b.entry)), b.entry}
	for l := b.top; l > level; l-- {
		ep = b.greedy(q, ep, l)
	}
	eps := []cand{ep}
	for l := min(level, b.top); l >= 0; l-- {
		w := b.searchLayer(q, eps, b.efC, l)
		maxM := b.m
		if l == 0 {
			maxM = b.m0
		}
		nb := b.selectHeuristic(w, b.m)
		b.links[id][l] = ids(nb)
		for _, c := range nb {
			b.link(c.id, id, l, maxM)
		}
		eps = w
	}
	if level > b.top {
		b.entry, b.top = id, level
	}
}

// link adds id to from's list on layer l, shrinking it with the heuristic
// when it exceeds maxM.
func (b *nbuilder) link(from, id int32, l, maxM int) {
	lst := append(b.links[from][l], id)
	if len(lst) > maxM {
		fv := b.vec(from)
		cs := make([]cand, len(lst))
		for i, x := range lst {
			cs[i] = cand{b.dist(fv, b.vec(x)), x}
		}
		sortCands(cs)
		lst = ids(b.selectHeuristic(cs, maxM))
	}
	b.links[from][l] = lst
}

func ids(cs []cand) []int32 {
	out := make([]int32, len(cs))
	for i, c := range cs {
		out[i] = c.id
	}
	return out
}

func sortCands(cs []cand) {
	slices.SortFunc(cs, func(a, b cand) int {
		if a.d != b.d {
			if a.d < b.d {
				return -1
			}
			return 1
		}
		return int(a.id) - int(b.id)
	})
}

// selectHeuristic keeps a candidate (sorted nearest first) only if it is
// closer to the base than to every kept neighbour, which spreads links over
// directions and keeps clusters connected; pruned candidates fill any room
// left.
func (b *nbuilder) selectHeuristic(cs []cand, m int) []cand {
	if len(cs) <= m {
		return slices.Clone(cs)
	}
	out := make([]cand, 0, m)
	var pruned []cand
	for _, c := range cs {
		if len(out) == m {
			break
		}
		cv := b.vec(c.id)
		good := true
		for _, r := range out {
			if b.dist(cv, b.vec(r.id)) < c.d {
				good = false
				break
			}
		}
		if good {
			out = append(out, c)
		} else {
			pruned = append(pruned, c)
		}
	}
	for _, c := range pruned {
		if len(out) == m {
			break
		}
		out = append(out, c)
	}
	return out
}

func (b *nbuilder) greedy(q []float32, ep cand, l int) cand {
	for changed := true; changed; {
		changed = false
		for _, x := range b.links[ep.id][l] {
			if d := b.dist(q, b.vec(x)); d < ep.d {
				ep, changed = cand{d, x}, true
			}
		}
	}
	return ep
}

// searchLayer is the standard beam search; it returns up to ef candidates
// sorted nearest first.
func (b *nbuilder) searchLayer(q []float32, eps []cand, ef, l int) []cand {
	b.epoch++
	if b.epoch == 0 {
		clear(b.visited)
		b.epoch = 1
	}
	frontier := candHeap{}
	best := candHeap{far: true}
	for _, e := range eps {
		if b.visited[e.id] == b.epoch {
			continue
		}
		b.visited[e.id] = b.epoch
		frontier.push(e)
		best.push(e)
		if len(best.s) > ef {
			best.pop()
		}
	}
	for len(frontier.s) > 0 {
		c := frontier.pop()
		if len(best.s) >= ef && c.d > best.s[0].d {
			break
		}
		for _, x := range b.links[c.id][l] {
			if b.visited[x] == b.epoch {
				continue
			}
			b.visited[x] = b.epoch
			d := b.dist(q, b.vec(x))
			if len(best.s) < ef || d < best.s[0].d {
				frontier.push(cand{d, x})
				best.push(cand{d, x})
				if len(best.s) > ef {
					best.pop()
				}
			}
		}
	}
	out := best.s
	sortCands(out)
	return out
}

// repair makes every base-layer node reachable from the entry point by
// linking each unreachable node with its nearest reachable one, both ways.
func (b *nbuilder) repair() {
	reach := make([]bool, b.n)
	var stack []int32
	mark := func(s int32) {
		stack = append(stack[:0], s)
		reach[s] = true
		for len(stack) > 0 {
			u := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, v := range b.links[u][0] {
				if !reach[v] {
					reach[v] = true
					stack = append(stack, v)
				}
			}
		}
	}
	mark(b.entry)
	for u := range b.n {
		if reach[u] {
			continue
		}
		uv := b.vec(int32(u))
		best, bestD := int32(-1), float32(math.Inf(1))
		for v := range b.n {
			if reach[v] {
				if d := b.dist(uv, b.vec(int32(v))); d < bestD {
					best, bestD = int32(v), d
				}
			}
		}
		b.links[best][0] = append(b.links[best][0], int32(u))
		if !slices.Contains(b.links[u][0], best) {
			b.links[u][0] = append(b.links[u][0], best)
		}
		mark(int32(u))
	}
}

// candHeap is a binary heap of candidates: the nearest on top, or the
// farthest when far is set.
type candHeap struct {
	s   []cand
	far bool
}

// above reports whether a belongs above b in the heap.
func (h *candHeap) above(a, b cand) bool {
	if h.far {
		return a.d > b.d
	}
	return a.d < b.d
}

func (h *candHeap) push(c cand) {
	h.s = append(h.s, c)
	s := h.s
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.above(s[i], s[p]) {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *candHeap) pop() cand {
	s := h.s
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		m := l
		if r := l + 1; r < len(s) && h.above(s[r], s[l]) {
			m = r
		}
		if !h.above(s[m], s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	h.s = s
	return top
}
