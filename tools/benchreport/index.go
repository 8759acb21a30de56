package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/pipeline"
)

// buildSetting is one way of constructing the graph.
type buildSetting struct {
	label string
	p     ann.HNSWParams
}

// searchSetting is one query-time setting, applied to an exported graph.
type searchSetting struct {
	overfetch, efSearch int
}

func (s searchSetting) label() string {
	return fmt.Sprintf("EfSearch %d, Overfetch %d", s.efSearch, s.overfetch)
}

func (s searchSetting) apply(p ann.HNSWParams) ann.HNSWParams {
	p.Overfetch, p.EfSearch = s.overfetch, s.efSearch
	return p
}

// sweep returns the graph builds and search settings to measure. The
// served setting (what `towerrecall serve` uses with the default config)
// and ann's defaults are always in it.
func sweep(quick bool) ([]buildSetting, []searchSetting) {
	served := pipeline.HNSWParams(config.Default().Serve)
	def := ann.DefaultHNSWParams()
	wide := def
	wide.M, wide.M0 = 16, 32
	var builds []buildSetting
	addBuild := func(name string, p ann.HNSWParams) {
		for i, b := range builds {
			if sameBuild(b.p, p) { // the defaults may coincide: one row, both names
				builds[i].label = strings.Replace(b.label, ":", " = "+name+":", 1)
				return
			}
		}
		builds = append(builds, buildSetting{fmt.Sprintf("%s: M %d, M0 %d, efC %d", name, p.M, p.M0, p.EfConstruction), p})
	}
	addBuild("served", served)
	addBuild("ann default", def)
	if !quick {
		addBuild("wide", wide)
	}
	all := []searchSetting{
		{1, 16},
		{1, 32},
		{2, 64},
		{served.Overfetch, served.EfSearch},
		{def.Overfetch, def.EfSearch},
		{4, 128},
	}
	if quick {
		all = []searchSetting{{1, 16}, {served.Overfetch, served.EfSearch}}
	}
	var searches []searchSetting
	for _, s := range all {
		if !slices.Contains(searches, s) {
			searches = append(searches, s)
		}
	}
	slices.SortStableFunc(searches, func(a, b searchSetting) int {
		return cmp.Or(cmp.Compare(max(10*a.overfetch, a.efSearch), max(10*b.overfetch, b.efSearch)),
			cmp.Compare(a.efSearch, b.efSearch), cmp.Compare(a.overfetch, b.overfetch))
	})
	return builds, searches
}

// sameBuild reports whether two settings construct the same graph.
func sameBuild(a, b ann.HNSWParams) bool {
	return a.M == b.M && a.M0 == b.M0 && a.Ml == b.Ml &&
		a.EfConstruction == b.EfConstruction && a.Seed == b.Seed
}

func isServed(p ann.HNSWParams, s searchSetting) bool {
	sp := pipeline.HNSWParams(config.Default().Serve)
	return sameBuild(p, sp) && s.overfetch == sp.Overfetch && s.efSearch == sp.EfSearch
}

// vectorSet is one catalogue and its queries.
type vectorSet struct {
	name, label, queryNote string
	vectors                []float32
	dim                    int
	queries                [][]float32
}

func runIndex(ctx context.Context, o options, sv *serving, p *progress) ([]IndexBench, error) {
	b := sv.bundle
	real := vectorSet{
		name: "movies",
		label: fmt.Sprintf("real movie vectors of the serving model (%s; every movie of the catalogue file, rated or not)",
			datasetLabel(servingJob(o.quick).dataset)),
		queryNote: "user vectors of the serving model: 3 in 4 known users (id and features), 1 in 4 the same users as cold-start (features only)",
		vectors:   b.Vectors, dim: b.Manifest.Dim,
		queries: userQueries(sv, o.queries, o.seed),
	}
	syn := synthetic(o.syntheticN, b.Manifest.Dim, o.queries, o.seed)
	var out []IndexBench
	for _, vs := range []vectorSet{real, syn} {
		ib, err := benchIndex(ctx, vs, o, p)
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", vs.name, err)
		}
		out = append(out, ib)
	}
	return out, nil
}

// userQueries draws query vectors from the serving model's users.
func userQueries(sv *serving, n int, seed uint64) [][]float32 {
	b := sv.bundle
	byID := make(map[movielens.UserID]movielens.User, len(sv.dataset.Users))
	for _, u := range sv.dataset.Users {
		byID[u.ID] = u
	}
	var users []movielens.User
	for _, id := range b.Users {
		if u, ok := byID[id]; ok {
			users = append(users, u)
		}
	}
	if len(users) == 0 {
		users = sv.dataset.Users
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e7a))
	out := make([][]float32, n)
	for i := range out {
		in := feature.FromUser(users[rng.IntN(len(users))])
		if i%4 == 3 {
			in.UserID = 0
		}
		out[i] = make([]float32, b.Manifest.Dim)
		b.Model.UserVector(out[i], b.Encoder.EncodeUser(in))
	}
	return out
}

// synthetic returns n clustered unit vectors (Gaussian blobs around √n
// random centres on the sphere) and queries drawn the same way.
func synthetic(n, dim, nq int, seed uint64) vectorSet {
	rng := rand.New(rand.NewPCG(seed, 0x5f47))
	clusters := max(1, int(math.Sqrt(float64(n))))
	const spread = 0.25
	centres := make([]float32, clusters*dim)
	for c := range clusters {
		unitGaussian(rng, centres[c*dim:(c+1)*dim], nil, 0)
	}
	point := func(dst []float32) {
		c := rng.IntN(clusters)
		unitGaussian(rng, dst, centres[c*dim:(c+1)*dim], spread)
	}
	vs := vectorSet{
		name:      "synthetic",
		label:     fmt.Sprintf("synthetic: %s clustered unit vectors (%d Gaussian clusters, σ %.2f, seeded)", thousands(n), clusters, spread),
		queryNote: "drawn from the same clusters, not in the catalogue",
		vectors:   make([]float32, n*dim), dim: dim,
	}
	for i := range n {
		point(vs.vectors[i*dim : (i+1)*dim])
	}
	vs.queries = make([][]float32, nq)
	for i := range vs.queries {
		vs.queries[i] = make([]float32, dim)
		point(vs.queries[i])
	}
	return vs
}

// unitGaussian writes centre + σ·N(0, I) into dst (N(0, I) alone when
// centre is nil) and scales it to unit length.
func unitGaussian(rng *rand.Rand, dst, centre []float32, sigma float64) {
	for {
		var s float64
		for j := range dst {
			x := rng.NormFloat64()
			if centre != nil {
				x = float64(centre[j]) + sigma*x
			}
			dst[j] = float32(x)
			s += x * x
		}
		if s > 1e-12 {
			inv := 1 / math.Sqrt(s)
			for j := range dst {
				dst[j] = float32(float64(dst[j]) * inv)
			}
			return
		}
	}
}

func benchIndex(ctx context.Context, vs vectorSet, o options, p *progress) (IndexBench, error) {
	n := len(vs.vectors) / vs.dim
	ib := IndexBench{Name: vs.name, Label: vs.label, N: n, Dim: vs.dim, Queries: len(vs.queries), QueryNote: vs.queryNote}
	exact, err := ann.NewExact(vs.vectors, vs.dim)
	if err != nil {
		return ib, err
	}
	if ib.Exact10, err = timeSearch(exact, vs.queries, 10, o.reps); err != nil {
		return ib, err
	}
	if ib.Exact100, err = timeSearch(exact, vs.queries, 100, o.reps); err != nil {
		return ib, err
	}
	p.logf("index %s (%d × %d): exact %v (k=10), %v (k=100)", vs.name, n, vs.dim, ib.Exact10, ib.Exact100)
	builds, searches := sweep(o.quick)
	for _, bs := range builds {
		if err := ctx.Err(); err != nil {
			return ib, err
		}
		start := time.Now()
		h, err := ann.NewHNSW(vs.vectors, vs.dim, bs.p)
		if err != nil {
			return ib, err
		}
		buildSec := time.Since(start).Seconds()
		var graph bytes.Buffer
		if err := h.Export(&graph); err != nil {
			return ib, err
		}
		p.logf("  build %s: %.2fs", bs.label, buildSec)
		for _, ss := range searches {
			sp := ss.apply(bs.p)
			hs, err := ann.ImportHNSW(bytes.NewReader(graph.Bytes()), vs.vectors, vs.dim, sp)
			if err != nil {
				return ib, err
			}
			row := IndexRow{
				Build: bs.label, Search: ss.label(), M: sp.M, M0: sp.M0, EfConstr: sp.EfConstruction,
				EfSearch: sp.EfSearch, Overfetch: sp.Overfetch, BuildSeconds: buildSec,
				Fetch10: min(n, max(10*sp.Overfetch, sp.EfSearch)), Fetch100: min(n, max(100*sp.Overfetch, sp.EfSearch)),
				Served: isServed(bs.p, ss),
			}
			rec, err := ann.SelfCheck(hs, exact, vs.queries, []int{10, 100})
			if err != nil {
				return ib, err
			}
			row.Recall10, row.Recall100 = rec[10], rec[100]
			if row.Lat10, err = timeSearch(hs, vs.queries, 10, o.reps); err != nil {
				return ib, err
			}
			if row.Lat100, err = timeSearch(hs, vs.queries, 100, o.reps); err != nil {
				return ib, err
			}
			p.logf("    %-44s recall@10 %.4f %8v   recall@100 %.4f %8v", ss.label(), row.Recall10, row.Lat10, row.Recall100, row.Lat100)
			ib.Rows = append(ib.Rows, row)
		}
	}
	return ib, nil
}

// timeSearch runs up to 50 queries to warm up, then reps timed passes, and
// returns the median over passes of the mean time per query.
func timeSearch(idx ann.Index, queries [][]float32, k, reps int) (time.Duration, error) {
	dst := make([]ann.Result, 0, k)
	var err error
	for _, q := range queries[:min(len(queries), 50)] {
		if dst, err = idx.Search(dst, q, k, nil); err != nil {
			return 0, err
		}
	}
	per := make([]time.Duration, reps)
	for r := range per {
		start := time.Now()
		for _, q := range queries {
			if dst, err = idx.Search(dst, q, k, nil); err != nil {
				return 0, err
			}
		}
		per[r] = time.Since(start) / time.Duration(len(queries))
	}
	return median(per), nil
}
