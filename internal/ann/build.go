package ann

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
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
//
// workers goroutines insert nodes concurrently, as hnswlib does: each takes
// the next node of the (seeded) insertion order, and every read or write
// of a link row holds that row's lock (lockRow), one lock at a time, so no
// two insertions can deadlock. Levels and the order are drawn before any
// insertion, so with one worker the graph is the same for the same seed,
// bit for bit; with more, which insertion sees which depends on timing, so
// the graph differs from run to run while its quality (recall) does not.
func buildGraph(aug []float32, d1, n, m, m0, efC int, ml float64, seed uint64, workers int) *graph {
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
	sh := &shared{g: g, aug: aug, d1: d1, m: m, m0: m0, efC: max(efC, m)}
	g.entry, g.top = int32(order[0]), int(levels[order[0]])
	workers = max(1, min(workers, n/1024+1))
	var next atomic.Int64
	next.Store(1)
	var wg sync.WaitGroup
	for range workers {
		b := &builder{shared: sh, s: newScratch(n)}
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				b.insert(int32(order[i]))
			}
		})
	}
	wg.Wait()
	(&builder{shared: sh}).repair()
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

// shared is the state every insertion worker uses: the graph, the
// vectors, and entryMu guarding the entry point and top level. Each link
// row is guarded by its own count slot (lockRow).
type shared struct {
	g          *graph
	aug        []float32
	d1         int
	m, m0, efC int
	entryMu    sync.Mutex
}

// lockBit, the sign bit of a row's count slot, marks the row held by an
// insertion. The lock shares the cache line the row is read from anyway:
// a separate mutex per node cost a cache miss per visited node, 10 % of
// the build.
const lockBit = math.MinInt32

// lockRow spins until it holds row r and returns its count. A row is held
// only to copy or update its few links, so waits are short; a waiter
// yields after a few spins.
func lockRow(r []int32) int {
	for spins := 0; ; spins++ {
		c := atomic.LoadInt32(&r[0])
		if c >= 0 && atomic.CompareAndSwapInt32(&r[0], c, c|lockBit) {
			return int(c)
		}
		if spins >= 16 {
			runtime.Gosched()
		}
	}
}

// unlockRow releases r with count links.
func unlockRow(r []int32, count int) { atomic.StoreInt32(&r[0], int32(count)) }

// builder is one insertion worker: its search scratch and buffers.
type builder struct {
	*shared
	s        *scratch
	w        []Result // the beam of the current layer, best first
	cs, kept []Result // neighbour selection
	pruned   []Result
	dups     []Result // nodes with the inserted node's vector (maxDups)
	sel      []int32  // the links chosen for the node being inserted
	ids, nb  []int32
}

func (b *builder) vec(i int32) []float32 { return vec(b.aug, b.d1, i) }

// linksOf copies id's links on layer l into b.nb, holding the row.
func (b *builder) linksOf(id int32, l int) []int32 {
	r := b.g.row(id, l)
	c := lockRow(r)
	b.nb = append(b.nb[:0], r[1:1+c]...)
	unlockRow(r, c)
	return b.nb
}

func (b *builder) insert(id int32) {
	g := b.g
	level := int(g.levels[id])
	// A node that raises the top level keeps entryMu for its whole
	// insertion (there are about log(n)/log(1/ml) of them), so no other
	// insertion enters the graph at a node whose upper rows are not set.
	b.entryMu.Lock()
	entry, top := g.entry, g.top
	raises := level > top
	if !raises {
		b.entryMu.Unlock()
	}
	q := b.vec(id)
	cur := Result{ID: entry, Score: Dot(q, b.vec(entry))}
	for l := top; l > level; l-- {
		cur = b.greedy(q, cur, l)
	}
	b.w = append(b.w[:0], cur)
	for l := min(level, top); l >= 0; l-- {
		b.s.begin(b.efC)
		for _, e := range b.w {
			b.s.seed(e, nil, nil)
		}
		b.dups = b.dups[:0]
		b.beam(q, l, id)
		// A concurrent insertion may have linked to id already, so the
		// search can reach id itself; it must not become its own neighbour.
		b.w = slices.DeleteFunc(append(b.w[:0], b.s.res.sorted()...), func(r Result) bool { return r.ID == id })
		maxM := b.m
		if l == 0 {
			maxM = b.m0
		}
		b.sel = b.sel[:0]
		for _, c := range b.dups {
			b.sel = append(b.sel, c.ID)
		}
		for _, c := range b.selectHeuristic(id, b.w, b.m-len(b.dups)) {
			b.sel = append(b.sel, c.ID)
		}
		if len(b.w) == 0 {
			b.w = append(b.w, b.dups...) // seeds for the layer below
		}
		b.setOwn(id, l, maxM)
		for _, c := range b.sel {
			b.link(c, id, l, maxM)
		}
	}
	if raises {
		g.entry, g.top = id, level
		b.entryMu.Unlock()
	}
}

// setOwn gives id, on layer l, the links selected in b.sel. Other
// insertions may already have linked to id there (they can find it once
// one of its neighbours links back), so those links are kept and the
// selected ones added, the row shrunk as by link if it overflows.
func (b *builder) setOwn(id int32, l, maxM int) {
	r := b.g.row(id, l)
	c := lockRow(r)
	empty := c == 0
	if empty {
		c = copy(r[1:], b.sel)
	}
	unlockRow(r, c)
	if !empty {
		for _, c := range b.sel {
			b.link(id, c, l, maxM)
		}
	}
}

// greedy moves from cur to a better neighbour on layer l while there is one.
func (b *builder) greedy(q []float32, cur Result, l int) Result {
	for changed := true; changed; {
		changed = false
		for _, x := range b.linksOf(cur.ID, l) {
			if r := (Result{ID: x, Score: Dot(q, b.vec(x))}); worse(cur, r) {
				cur, changed = r, true
			}
		}
	}
	return cur
}

// maxDups is how many links a node keeps to nodes with the same vector.
// The graph holds each distinct vector once (distinct.go), so this only
// concerns vectors that differ in their bits but not as augmented rows
// (rounding after the division by R, or 0 and -0). Identical vectors are
// each other's nearest and never pruned: a large group of them forms a
// closed clique that fills every row and traps the search (recall@10 0.61
// on a catalogue with many duplicates before the cap, 0.98 with it, and
// 0.51 on the trained 1M catalogue, which is why duplicates are now merged
// before the build). The cap leaves the rest of a row leading out.
const maxDups = 8

// beam is graph.beam without filter or budget, reading each expanded
// node's links under its lock. Nodes with the same vector as node self
// (q) do not enter the beam: the first maxDups of them are kept in
// b.dups (and expanded), the rest skipped, so the beam finds self's
// nearest distinct neighbours however many duplicates it has.
func (b *builder) beam(q []float32, l int, self int32) {
	s := b.s
	for len(s.cand) > 0 {
		c := s.popCand()
		if s.res.full() && worse(c, s.res.h[0]) {
			break
		}
		for _, x := range b.linksOf(c.ID, l) {
			if s.visited[x] == s.epoch {
				continue
			}
			s.visited[x] = s.epoch
			xv := b.vec(x)
			r := Result{ID: x, Score: Dot(q, xv)}
			if x != self && slices.Equal(xv, q) {
				if len(b.dups) < maxDups {
					b.dups = append(b.dups, r)
					s.pushCand(r)
				}
				continue
			}
			if s.res.full() && !worse(s.res.h[0], r) {
				continue
			}
			s.pushCand(r)
			s.res.push(r)
		}
	}
}

// link adds id to from's list on layer l, shrinking it with the heuristic
// when it exceeds maxM.
func (b *builder) link(from, id int32, l, maxM int) {
	r := b.g.row(from, l)
	cnt := lockRow(r)
	defer func() { unlockRow(r, cnt) }()
	if slices.Contains(r[1:1+cnt], id) {
		return // linked already by a concurrent insertion
	}
	if cnt < maxM {
		r[1+cnt] = id
		cnt++
		return
	}
	fv := b.vec(from)
	b.cs = b.cs[:0]
	for _, x := range r[1 : 1+cnt] {
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
	for _, c := range b.selectHeuristic(from, b.cs, maxM) {
		b.ids = append(b.ids, c.ID)
	}
	cnt = copy(r[1:], b.ids)
}

// selectHeuristic keeps a candidate (cs is sorted best first, scored
// against the base node) only if it is nearer to the base than to every
// kept neighbour, which spreads links over directions and keeps clusters
// connected; pruned candidates fill any room left. The result is valid
// until the next call.
func (b *builder) selectHeuristic(base int32, cs []Result, m int) []Result {
	if len(cs) <= m {
		return cs
	}
	out, pruned := b.kept[:0], b.pruned[:0]
	bv, dups := b.vec(base), 0
	for _, c := range cs {
		if len(out) == m {
			break
		}
		cv := b.vec(c.ID)
		if slices.Equal(cv, bv) {
			if dups++; dups > maxDups {
				continue // see maxDups
			}
		}
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

// repairEf is the beam that looks for an unreachable node's nearest
// reachable nodes.
const repairEf = 64

// repair makes every base-layer node reachable from the entry point: for
// each node the entry cannot reach, a beam search from the entry (which
// only ever sees reachable nodes) finds its nearest reachable nodes, the
// nearest of them with room in its row links to it, and it links back if
// it has room. If none of the repairEf nearest has room, the next
// reachable node with room (a cursor over all nodes) links to it; layer 0
// is widened (one slot per node) only if no reachable row has room. The search keeps the cost per unreachable
// node near that of an insertion: a scan of all nodes per unreachable node
// (the first version) took minutes and, widening all rows at every full
// one, gigabytes on catalogues with many identical vectors.
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
		r[1+r[0]] = to
		r[0]++
	}
	room := func(id int32) bool { r := g.row(id, 0); return int(r[0]) < len(r)-1 }
	mark(g.entry)
	var s *scratch
	var cursor int32 // where the search for a reachable row with room resumes
	for u := range int32(g.n) {
		if reach[u] {
			continue
		}
		if s == nil {
			s = newScratch(g.n)
		}
		q := b.vec(u)
		s.begin(repairEf)
		s.seed(Result{ID: g.entry, Score: Dot(q, b.vec(g.entry))}, nil, nil)
		if ep := g.descend(b.aug, b.d1, q, 0); reach[ep.ID] {
			s.seed(ep, nil, nil)
		}
		g.beam(s, b.aug, b.d1, q, 0, nil, nil, unlimited)
		near := s.res.sorted()
		from := int32(-1)
		for _, c := range near {
			if room(c.ID) {
				from = c.ID
				break
			}
		}
		if from < 0 {
			// The nearest are full (a large group of identical vectors):
			// any reachable node with room keeps u reachable; u's own
			// link to its nearest is what a search uses.
			for range 2 * g.n {
				if reach[cursor] && room(cursor) {
					from = cursor
					break
				}
				cursor = (cursor + 1) % int32(g.n)
			}
		}
		if from < 0 {
			g.growBase(g.stride0) // one more slot per node
			from = near[0].ID
		}
		add(from, u)
		if to := near[0].ID; room(u) && !slices.Contains(g.links(u, 0), to) {
			add(u, to)
		}
		mark(u)
	}
}
