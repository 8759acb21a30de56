package ann

import (
	"math"
	"math/rand/v2"
	"slices"
)

// buildGraph constructs an HNSW graph the textbook way (Malkov & Yashunin
// 2018: beam search with efConstruction, the neighbour-selection heuristic
// with pruned connections kept, m links per upper layer and m0 in the base
// layer), then repairs base-layer reachability from the entry point. It
// writes straight into the flat graph and searches it with the same beam
// as queries do.
//
// aug holds n unit-length rows of width d1 (the inner-product augmentation,
// see HNSW), so a higher Dot is a nearer neighbour. coder/hnsw v0.6.1's
// own Add is not used: it inserts with the same greedy search its queries
// use and fragments clustered data into disconnected pieces.
func buildGraph(aug []float32, d1, n, m, m0, efC int, ml float64, seed uint64) *graph {
	rng := rand.New(rand.NewPCG(seed, 0x5eed_a11))
	order := rng.Perm(n)
	levels := make([]uint8, n)
	for i := range levels {
		l := 0
		for l < maxLayers-2 && rng.Float64() < ml {
			l++
		}
		levels[i] = uint8(l)
	}
	// The top layer must hold the entry point alone (coder/hnsw's Search
	// enters at an arbitrary node of it, and Export must load there): if
	// several nodes reach the highest level, the first inserted of them
	// goes one layer higher.
	topL := slices.Max(levels)
	if countLevel(levels, topL) > 1 {
		for _, i := range order {
			if levels[i] == topL {
				levels[i]++
				break
			}
		}
	}
	g := newGraph(levels, m0, m)
	g.m, g.ml, g.efSearch = m, ml, efC
	b := &builder{g: g, aug: aug, d1: d1, m: m, m0: m0, efC: max(efC, m), s: newScratch(n)}
	g.entry = -1
	for _, i := range order {
		b.insert(int32(i))
	}
	b.repair()
	return g
}

func countLevel(levels []uint8, l uint8) int {
	c := 0
	for _, x := range levels {
		if x == l {
			c++
		}
	}
	return c
}

type builder struct {
	g          *graph
	aug        []float32
	d1         int
	m, m0, efC int
	s          *scratch
	w          []Result // the beam of the current layer, best first
	cs, kept   []Result // neighbour selection
	pruned     []Result
	ids        []int32
}

func (b *builder) vec(i int32) []float32 { return vec(b.aug, b.d1, i) }

func (b *builder) insert(id int32) {
	g := b.g
	level := int(g.levels[id])
	if g.entry < 0 {
		g.entry, g.top = id, level
		return
	}
	q := b.vec(id)
	ep := g.descend(b.aug, b.d1, q, level)
	b.w = append(b.w[:0], ep)
	for l := min(level, g.top); l >= 0; l-- {
		b.s.begin(b.efC)
		for _, e := range b.w {
			b.s.seed(e, nil)
		}
		g.beam(b.s, b.aug, b.d1, q, l, nil, unlimited)
		b.w = append(b.w[:0], b.s.res.sorted()...)
		maxM := b.m
		if l == 0 {
			maxM = b.m0
		}
		b.ids = b.ids[:0]
		for _, c := range b.selectHeuristic(b.w, b.m) {
			b.ids = append(b.ids, c.ID)
		}
		g.setLinks(id, l, b.ids)
		for _, c := range g.links(id, l) {
			b.link(c, id, l, maxM)
		}
	}
	if level > g.top {
		g.entry, g.top = id, level
	}
}

// link adds id to from's list on layer l, shrinking it with the heuristic
// when it exceeds maxM.
func (b *builder) link(from, id int32, l, maxM int) {
	r := b.g.row(from, l)
	if cnt := int(r[0]); cnt < maxM {
		r[1+cnt] = id
		r[0]++
		return
	}
	fv := b.vec(from)
	b.cs = b.cs[:0]
	for _, x := range r[1 : 1+r[0]] {
		b.cs = append(b.cs, Result{ID: x, Score: Dot(fv, b.vec(x))})
	}
	b.cs = append(b.cs, Result{ID: id, Score: Dot(fv, b.vec(id))})
	slices.SortFunc(b.cs, func(x, y Result) int {
		if worse(y, x) {
			return -1
		}
		return 1
	})
	b.ids = b.ids[:0]
	for _, c := range b.selectHeuristic(b.cs, maxM) {
		b.ids = append(b.ids, c.ID)
	}
	b.g.setLinks(from, l, b.ids)
}

// selectHeuristic keeps a candidate (cs is sorted best first, scored
// against the base node) only if it is nearer to the base than to every
// kept neighbour, which spreads links over directions and keeps clusters
// connected; pruned candidates fill any room left. The result is valid
// until the next call.
func (b *builder) selectHeuristic(cs []Result, m int) []Result {
	if len(cs) <= m {
		return cs
	}
	out, pruned := b.kept[:0], b.pruned[:0]
	for _, c := range cs {
		if len(out) == m {
			break
		}
		cv := b.vec(c.ID)
		good := true
		for _, r := range out {
			if Dot(cv, b.vec(r.ID)) > c.Score {
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
	b.kept, b.pruned = out, pruned
	return out
}

// repair makes every base-layer node reachable from the entry point by
// linking each unreachable node with its nearest reachable one, both ways,
// widening layer 0 when a row is full.
func (b *builder) repair() {
	g := b.g
	reach := make([]bool, g.n)
	var stack []int32
	mark := func(s int32) {
		stack = append(stack[:0], s)
		reach[s] = true
		for len(stack) > 0 {
			u := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, v := range g.links(u, 0) {
				if !reach[v] {
					reach[v] = true
					stack = append(stack, v)
				}
			}
		}
	}
	add := func(from, to int32) {
		r := g.row(from, 0)
		if int(r[0]) == len(r)-1 {
			g.growBase(g.stride0) // one more slot per node
			r = g.row(from, 0)
		}
		r[1+r[0]] = to
		r[0]++
	}
	mark(g.entry)
	for u := range int32(g.n) {
		if reach[u] {
			continue
		}
		uv := b.vec(u)
		best, bestS := int32(-1), float32(math.Inf(-1))
		for v := range int32(g.n) {
			if reach[v] {
				if s := Dot(uv, b.vec(v)); s > bestS {
					best, bestS = v, s
				}
			}
		}
		add(best, u)
		if !slices.Contains(g.links(u, 0), best) {
			add(u, best)
		}
		mark(u)
	}
}
