package ann

import "math"

// groups maps the nodes of an HNSW graph to the rows (movie indexes) of
// the index. The graph is built over distinct vectors only: catalogues
// hold many bit-identical vectors (every unrated movie with the same
// genres and year gets the same movie-tower output), and identical
// vectors in one graph are each other's nearest neighbours at distance
// zero, fill each other's link rows and cut their group off from the rest
// of the graph (the 1M trained catalogue self-checked at recall@10 0.51).
// A search walks the graph of distinct vectors and expands every node it
// returns into all the rows that share its vector, which have the same
// score.
//
// Node d holds rows[start[d]:start[d+1]], ascending. Nodes are numbered
// in the order of their first row, so for vectors without duplicates the
// mapping is the identity and the graph's vectors are the rows
// themselves. A graph written before duplicates were merged (one node per
// row) is read with the identity mapping (identityGroups).
type groups struct {
	start []int32 // len nodes+1
	rows  []int32 // len rows
}

// nodes is the number of graph nodes.
func (m *groups) nodes() int { return len(m.start) - 1 }

// of returns the rows of node d, ascending.
func (m *groups) of(d int32) []int32 { return m.rows[m.start[d]:m.start[d+1]] }

// accepts reports whether f accepts any row of node d, and how many rows
// it examined to tell. f must not be nil.
func (m *groups) accepts(f Filter, d int32) (bool, int) {
	rs := m.of(d)
	for i, r := range rs {
		if f[r>>6]&(1<<(r&63)) != 0 {
			return true, i + 1
		}
	}
	return false, len(rs)
}

// identityGroups maps node i to row i.
func identityGroups(n int) groups {
	m := groups{start: make([]int32, n+1), rows: make([]int32, n)}
	for i := range n {
		m.start[i], m.rows[i] = int32(i), int32(i)
	}
	m.start[n] = int32(n)
	return m
}

// distinctRows returns the distinct rows of vecs (n×dim, row-major) in the
// order of their first occurrence, compared bit for bit, and the mapping
// from them to the rows. When no row repeats, the returned vectors are
// vecs itself. It is deterministic, and linear in n (a hash table of the
// distinct rows): recomputing it at load costs far less than reading the
// graph.
func distinctRows(vecs []float32, dim int) ([]float32, groups) {
	n := len(vecs) / dim
	size := 1
	for size < 2*n {
		size <<= 1
	}
	table := make([]int32, size) // distinct index + 1; 0: empty
	node := make([]int32, n)     // the distinct index of each row
	var first []int32            // the first row of each distinct vector
	for i := range n {
		row := vecs[i*dim : (i+1)*dim]
		h := uint64(0x9e3779b97f4a7c15)
		for _, x := range row {
			h = (h ^ uint64(math.Float32bits(x))) * 0xbf58476d1ce4e5b9
		}
		h = (h ^ h>>30) * 0xbf58476d1ce4e5b9 // splitmix64's finaliser: every bit
		h = (h ^ h>>27) * 0x94d049bb133111eb // of the row reaches the low bits
		h ^= h >> 31
		for j := h & uint64(size-1); ; j = (j + 1) & uint64(size-1) {
			d := table[j] - 1
			if d < 0 {
				table[j] = int32(len(first)) + 1
				node[i] = int32(len(first))
				first = append(first, int32(i))
				break
			}
			if sameBits(row, vecs[int(first[d])*dim:][:dim]) {
				node[i] = d
				break
			}
		}
	}
	nd := len(first)
	m := groups{start: make([]int32, nd+1), rows: make([]int32, n)}
	for _, d := range node {
		m.start[d+1]++
	}
	for d := range nd {
		m.start[d+1] += m.start[d]
	}
	next := append([]int32(nil), m.start[:nd]...)
	for i, d := range node {
		m.rows[next[d]] = int32(i)
		next[d]++
	}
	if nd == n {
		return vecs, m
	}
	out := make([]float32, 0, nd*dim)
	for _, r := range first {
		out = append(out, vecs[int(r)*dim:(int(r)+1)*dim]...)
	}
	return out, m
}

// sameBits reports whether a and b hold the same float32 bit patterns
// (unlike ==, which equates 0 and -0 and never NaN).
func sameBits(a, b []float32) bool {
	for i, x := range a {
		if math.Float32bits(x) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
