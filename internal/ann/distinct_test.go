package ann

import (
	"bytes"
	"math"
	"slices"
	"testing"
)

func TestDistinctRows(t *testing.T) {
	t.Parallel()
	negZero := float32(math.Copysign(0, -1))
	for _, tc := range []struct {
		name     string
		vecs     []float32 // dim 2
		distinct []float32
		groups   [][]int32
	}{
		{"all distinct", []float32{1, 2, 3, 4, 5, 6}, []float32{1, 2, 3, 4, 5, 6}, [][]int32{{0}, {1}, {2}}},
		{"all the same", []float32{1, 2, 1, 2, 1, 2}, []float32{1, 2}, [][]int32{{0, 1, 2}}},
		{"first occurrence order", []float32{5, 5, 1, 1, 5, 5, 2, 2, 1, 1}, []float32{5, 5, 1, 1, 2, 2}, [][]int32{{0, 2}, {1, 4}, {3}}},
		{"0 and -0 differ in bits", []float32{0, 1, negZero, 1, 0, 1}, []float32{0, 1, negZero, 1}, [][]int32{{0, 2}, {1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, m := distinctRows(tc.vecs, 2)
			if !sameBits(d, tc.distinct) || len(d) != len(tc.distinct) {
				t.Errorf("distinct %v, want %v", d, tc.distinct)
			}
			if m.nodes() != len(tc.groups) {
				t.Fatalf("%d nodes, want %d", m.nodes(), len(tc.groups))
			}
			for i, want := range tc.groups {
				if got := m.of(int32(i)); !slices.Equal(got, want) {
					t.Errorf("node %d: rows %v, want %v", i, got, want)
				}
			}
		})
	}
	// Without duplicates the graph's vectors are the rows themselves.
	v := []float32{1, 2, 3, 4}
	if d, _ := distinctRows(v, 2); &d[0] != &v[0] {
		t.Error("no duplicates, but the vectors were copied")
	}
}

// A graph over distinct vectors is exported with one node per distinct
// vector and imported by recomputing the mapping; a graph written with one
// node per row (before duplicates were merged) still loads and answers as
// it did.
func TestExportImportDuplicates(t *testing.T) {
	skipRace(t)
	t.Parallel()
	vecs, s := dupVectors(8000, 30, 2000, 25)
	n := len(vecs) / 8
	p := DefaultHNSWParams()
	p.BuildWorkers = 1
	h := mustHNSW(t, vecs, 8, p)
	perRow, err := newHNSWBase(vecs, 8, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := perRow.useNodes(n); err != nil { // a node per row
		t.Fatal(err)
	}
	perRow.g = buildGraph(perRow.augmenter().all(), 9, n, p.M, p.M0, p.EfConstruction, p.Ml, buildSeed(p.Seed), 1)
	odd := filterOf(n, func(id int32) bool { return id%2 == 1 })
	qs := rows(s.points(60, 26), 8)
	for _, tc := range []struct {
		name   string
		h      *HNSW
		export func(*HNSW, *bytes.Buffer) error
		nodes  int
	}{
		{"native", h, func(h *HNSW, b *bytes.Buffer) error { return h.Export(b) }, 2030},
		{"version 1", h, func(h *HNSW, b *bytes.Buffer) error { return h.exportLibrary(b) }, 2030},
		{"native, a node per row", perRow, func(h *HNSW, b *bytes.Buffer) error { return h.Export(b) }, n},
		{"version 1, a node per row", perRow, func(h *HNSW, b *bytes.Buffer) error { return h.exportLibrary(b) }, n},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tc.export(tc.h, &buf); err != nil {
				t.Fatal(err)
			}
			exported := bytes.Clone(buf.Bytes())
			h2, err := ImportHNSW(&buf, vecs, 8, DefaultHNSWParams())
			if err != nil {
				t.Fatal(err)
			}
			if h2.g.n != tc.nodes || h2.groups.nodes() != tc.nodes {
				t.Fatalf("imported %d nodes (mapping %d), want %d", h2.g.n, h2.groups.nodes(), tc.nodes)
			}
			for _, q := range qs {
				for _, k := range []int{10, 100} {
					for _, f := range []Filter{nil, odd} {
						a, _ := tc.h.Search(nil, q, k, f)
						b, _ := h2.Search(nil, q, k, f)
						if !slices.Equal(a, b) {
							t.Fatalf("k=%d: results differ after import:\n%v\n%v", k, a, b)
						}
					}
				}
			}
			var again bytes.Buffer
			if err := tc.export(h2, &again); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(exported, again.Bytes()) {
				t.Error("re-export of an imported index differs")
			}
		})
	}
}
