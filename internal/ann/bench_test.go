package ann

import (
	"bytes"
	"fmt"
	"testing"
)

// benchData builds the items, queries and both indexes once per size.
type benchData struct {
	vecs    []float32
	queries [][]float32
	exact   *Exact
	hnsw    *HNSW
}

func newBenchCache() func(b *testing.B, n int) *benchData {
	cache := map[int]*benchData{}
	return func(b *testing.B, n int) *benchData {
		if d, ok := cache[n]; ok {
			return d
		}
		s := newSynth(8, 20, 0.35, true, 71)
		d := &benchData{vecs: s.points(n, 72), queries: rows(s.points(256, 73), 8)}
		var err error
		if d.exact, err = NewExact(d.vecs, 8); err != nil {
			b.Fatal(err)
		}
		if d.hnsw, err = NewHNSW(d.vecs, 8, DefaultHNSWParams()); err != nil {
			b.Fatal(err)
		}
		cache[n] = d
		return d
	}
}

var benchSizes = [...]int{3706, 100000}

// BenchmarkSearch measures one query at K = 10 and 100 (default params).
func BenchmarkSearch(b *testing.B) {
	get := newBenchCache()
	for _, name := range []string{"exact", "hnsw"} {
		b.Run(name, func(b *testing.B) {
			for _, n := range benchSizes {
				b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
					d := get(b, n)
					var idx Index = d.exact
					if name == "hnsw" {
						idx = d.hnsw
					}
					for _, k := range []int{10, 100} {
						b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
							dst := make([]Result, 0, k)
							b.ReportAllocs()
							i := 0
							for b.Loop() {
								var err error
								if dst, err = idx.Search(dst, d.queries[i%len(d.queries)], k, nil); err != nil {
									b.Fatal(err)
								}
								i++
							}
						})
					}
				})
			}
		})
	}
}

// BenchmarkBuild measures NewHNSW with the default parameters.
func BenchmarkBuild(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("hnsw/n=%d", n), func(b *testing.B) {
			vecs := newSynth(8, 20, 0.35, true, 71).points(n, 72)
			for b.Loop() {
				if _, err := NewHNSW(vecs, 8, DefaultHNSWParams()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkExportImport measures Export and ImportHNSW and reports the
// exported size.
func BenchmarkExportImport(b *testing.B) {
	get := newBenchCache()
	for _, n := range benchSizes {
		d := get(b, n)
		var buf bytes.Buffer
		if err := d.hnsw.Export(&buf); err != nil {
			b.Fatal(err)
		}
		data := buf.Bytes()
		b.Run(fmt.Sprintf("export/n=%d", n), func(b *testing.B) {
			var w bytes.Buffer
			for b.Loop() {
				w.Reset()
				if err := d.hnsw.Export(&w); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(data)), "bytes")
		})
		b.Run(fmt.Sprintf("import/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := ImportHNSW(bytes.NewReader(data), d.vecs, 8, DefaultHNSWParams()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(data)), "bytes")
		})
	}
}
