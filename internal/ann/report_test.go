package ann

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// TestRecallReport prints recall@10/100/500 and latency for HNSW settings.
// It is slow and runs only with TOWERRECALL_ANN_REPORT=1 (sizes from
// TOWERRECALL_ANN_SIZES, default "3706,100000").
func TestRecallReport(t *testing.T) {
	if os.Getenv("TOWERRECALL_ANN_REPORT") == "" {
		t.Skip("set TOWERRECALL_ANN_REPORT=1")
	}
	sizes := []int{3706, 100000}
	if s := os.Getenv("TOWERRECALL_ANN_SIZES"); s != "" {
		sizes = nil
		for _, f := range splitComma(s) {
			v, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, v)
		}
	}
	type cfg struct {
		name string
		p    HNSWParams
	}
	def := DefaultHNSWParams()
	with := func(f func(*HNSWParams)) HNSWParams { p := def; f(&p); return p }
	cfgs := []cfg{
		{"library M16 Ml.25 ef20 of1", with(func(p *HNSWParams) { p.Build, p.M, p.Ml, p.EfSearch, p.Overfetch = BuildLibrary, 16, 0.25, 20, 1 })},
		{"library M16 Ml.25 ef400 of10", with(func(p *HNSWParams) { p.Build, p.M, p.Ml, p.EfSearch = BuildLibrary, 16, 0.25, 400 })},
		{"library M32 Ml.25 ef400 of10 g4", with(func(p *HNSWParams) { p.Build, p.M, p.Ml, p.Graphs = BuildLibrary, 32, 0.25, 4 })},
		{"native M16/32 of1 min1", with(func(p *HNSWParams) { p.Overfetch, p.MinFetch = 1, 1 })},
		{"native M16/32 of10 min100", with(func(p *HNSWParams) { p.Overfetch, p.MinFetch = 10, 100 })},
		{"native M16/32 of4 min200", with(func(p *HNSWParams) { p.Overfetch, p.MinFetch = 4, 200 })},
		{"native M8/16 of10 min100", with(func(p *HNSWParams) { p.M, p.M0, p.Ml, p.Overfetch, p.MinFetch = 8, 16, 1.0/8, 10, 100 })},
		{"native M8/8 of10 min100", with(func(p *HNSWParams) { p.M, p.M0, p.Ml, p.Overfetch, p.MinFetch = 8, 8, 1.0/8, 10, 100 })},
		{"native M4/8 of10 min100", with(func(p *HNSWParams) { p.M, p.M0, p.Ml, p.Overfetch, p.MinFetch = 4, 8, 1.0/4, 10, 100 })},
		{"native M8/16 of4 min200", with(func(p *HNSWParams) { p.M, p.M0, p.Ml, p.Overfetch, p.MinFetch = 8, 16, 1.0/8, 4, 200 })},
		{"native M8/16 of8 min300", with(func(p *HNSWParams) { p.M, p.M0, p.Ml, p.Overfetch, p.MinFetch = 8, 16, 1.0/8, 8, 300 })},
		{"native M16/32 of10 min100 g2", with(func(p *HNSWParams) { p.Graphs, p.Overfetch, p.MinFetch = 2, 10, 100 })},
		{"native M8/16 of4 min200 g2", with(func(p *HNSWParams) { p.M, p.M0, p.Ml, p.Overfetch, p.MinFetch, p.Graphs = 8, 16, 1.0/8, 4, 200, 2 })},
		{"default", def},
	}
	if s := os.Getenv("TOWERRECALL_ANN_ONLY"); s != "" {
		var keep []cfg
		for _, c := range cfgs {
			for _, f := range splitComma(s) {
				if c.name == f {
					keep = append(keep, c)
				}
			}
		}
		cfgs = keep
	}
	ks := []int{10, 100, 500}
	for _, n := range sizes {
		nq := 300
		for _, ds := range datasets(t, n, nq) {
			ex, err := NewExact(ds.items, 8)
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			var dst []Result
			for _, q := range ds.queries {
				dst, _ = ex.Search(dst, q, 10, nil)
			}
			exLat := time.Since(t0) / time.Duration(len(ds.queries))
			t.Logf("n=%d %s: exact k=10 %v/query", len(ds.items)/8, ds.name, exLat)
			for _, c := range cfgs {
				t0 := time.Now()
				h, err := NewHNSW(ds.items, 8, c.p)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				build := time.Since(t0)
				rec, err := SelfCheck(h, ex, ds.queries, ks)
				if err != nil {
					t.Fatal(err)
				}
				st := h.Stats()
				var lat [2]time.Duration
				for i, k := range []int{10, 100} {
					t0 = time.Now()
					for _, q := range ds.queries {
						dst, _ = h.Search(dst, q, k, nil)
					}
					lat[i] = time.Since(t0) / time.Duration(len(ds.queries))
				}
				t.Logf("  %-34s build %-8v r@10 %.4f r@100 %.4f r@500 %.4f  fallback %d/%d  lat k10 %v k100 %v",
					c.name, build.Round(time.Millisecond), rec[10], rec[100], rec[500],
					st.Fallbacks, st.Searches, lat[0], lat[1])
			}
		}
	}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
