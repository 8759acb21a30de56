package recall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/tower"
)

var testGenres = []string{"Action", "Comedy", "Drama", "Horror", "Romance"}

// testBundle makes a bundle of nMovies random movies and 50 users whose
// histories are movies 0..9; the towers are randomly initialised and
// L2-normalised.
func testBundle(t testing.TB, version string, nMovies int, seed uint64) *artifact.Bundle {
	t.Helper()
	return testBundleNorm(t, version, nMovies, seed, true)
}

// testBundleNorm is testBundle with the towers' normalisation as given:
// unnormalised towers give vectors of different lengths.
func testBundleNorm(t testing.TB, version string, nMovies int, seed uint64, normalize bool) *artifact.Bundle {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	var users []movielens.User
	var movies []movielens.Movie
	var train []movielens.Rating
	for i := 1; i <= 50; i++ {
		users = append(users, movielens.User{ID: movielens.UserID(i), Gender: []string{"F", "M"}[i%2], Age: 18 + i%40, Occupation: movielens.Occupations()[i%21], Zip: fmt.Sprintf("%05d", i*997)})
	}
	for i := 1; i <= nMovies; i++ {
		g := []string{testGenres[rng.IntN(len(testGenres))]}
		if rng.IntN(3) == 0 {
			if h := testGenres[rng.IntN(len(testGenres))]; h != g[0] { // the dataset readers refuse a repeat
				g = append(g, h)
			}
		}
		movies = append(movies, movielens.Movie{ID: movielens.MovieID(i * 10), Title: fmt.Sprintf("Movie %d (%d)", i, 1950+i%50), Year: 1950 + i%50, Genres: g})
		train = append(train, movielens.Rating{User: movielens.UserID(1 + i%50), Movie: movielens.MovieID(i * 10), Value: 4})
	}
	uf, mf := feature.UserFields(), feature.MovieFields()
	enc, err := feature.Fit(uf, mf, users, movies, train)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tower.Config{Dim: 8, Hidden: []int{16}, Normalize: normalize, UserEmbed: []int{4, 2, 2, 2, 2}, MovieEmbed: []int{4, 2, 2}}
	m, err := tower.New(cfg, enc.VocabSizes(uf), enc.VocabSizes(mf), rand.New(rand.NewPCG(seed, 2)))
	if err != nil {
		t.Fatal(err)
	}
	b := &artifact.Bundle{Model: m, Encoder: enc}
	b.Vectors = make([]float32, nMovies*8)
	for i, mv := range movies {
		b.Movies = append(b.Movies, artifact.Movie{ID: mv.ID, Title: mv.Title, Genres: mv.Genres, Year: mv.Year})
		m.MovieVector(b.Vectors[i*8:(i+1)*8], enc.EncodeMovie(feature.FromMovie(mv)))
	}
	for _, u := range users {
		b.Users = append(b.Users, u.ID)
		b.Seen = append(b.Seen, []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	}
	b.Manifest = artifact.Manifest{Version: version, Objective: "softmax", Dim: 8, Fields: artifact.Fields{User: uf, Movie: mf}}
	return b
}

func newService(t testing.TB, index string) *Service {
	t.Helper()
	s, err := New(Options{Index: index, MinRecall: 0.99, SelfCheckQueries: 50, HNSW: ann.DefaultHNSWParams(), Seed: 1}, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// loadedService is newService with testBundle(version, nMovies, seed)
// loaded.
func loadedService(t testing.TB, index, version string, nMovies int, seed uint64) (*Service, *artifact.Bundle) {
	t.Helper()
	s := newService(t, index)
	b := testBundle(t, version, nMovies, seed)
	if err := s.Load(b); err != nil {
		t.Fatal(err)
	}
	return s, b
}

func boolPtr(b bool) *bool { return &b }

func TestRecallAgreesWithScore(t *testing.T) {
	t.Parallel()
	for _, index := range []string{"exact", "hnsw", "auto"} {
		t.Run(index, func(t *testing.T) {
			t.Parallel()
			s := newService(t, index)
			b := testBundle(t, "v1", 400, 1)
			if err := s.Load(b); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			users := []feature.UserInput{
				{UserID: 3, Gender: "M", Age: 30, Occupation: "programmer"},
				{Gender: "F", Age: 70},
				{UserID: 123456, Occupation: "writer"},
				{},
			}
			all := make([]movielens.MovieID, len(b.Movies))
			for i, m := range b.Movies {
				all[i] = m.ID
			}
			for _, u := range users {
				res, err := s.Recall(ctx, Request{User: User{UserInput: u}, K: 100, ExcludeSeen: boolPtr(false)})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Items) != 100 {
					t.Fatalf("%d items", len(res.Items))
				}
				sc, err := s.Score(ctx, ScoreRequest{User: User{UserInput: u}, MovieIDs: all})
				if err != nil {
					t.Fatal(err)
				}
				byID := map[movielens.MovieID]float32{}
				for _, x := range sc.Scores {
					byID[x.MovieID] = x.Score
				}
				for i, it := range res.Items {
					if byID[it.MovieID] != it.Score {
						t.Errorf("movie %d: recall score %v, score %v", it.MovieID, it.Score, byID[it.MovieID])
					}
					if i > 0 && it.Score > res.Items[i-1].Score {
						t.Errorf("items not sorted at %d", i)
					}
				}
				ranked := slices.Clone(sc.Scores)
				slices.SortStableFunc(ranked, func(a, b Score) int {
					if a.Score > b.Score {
						return -1
					} else if a.Score < b.Score {
						return 1
					}
					return 0
				})
				got := map[movielens.MovieID]bool{}
				for _, it := range res.Items {
					got[it.MovieID] = true
				}
				hits := 0
				for _, x := range ranked[:100] {
					if got[x.MovieID] {
						hits++
					}
				}
				if res.Backend == "exact" && hits != 100 || hits < 99 {
					t.Errorf("%s: %d of the exact top 100 recalled", res.Backend, hits)
				}
			}
		})
	}
}

// TestRecallRoutesByDepth: with the graph serving to depth 10, a request
// whose offset + k is at most 10 is answered by it and a deeper one by the
// exact scan, with the exact answer; the response names the index that
// answered.
func TestRecallRoutesByDepth(t *testing.T) {
	t.Parallel()
	b := testBundle(t, "v1", 2000, 1)
	s, exact := newService(t, "hnsw"), newService(t, "exact")
	for _, svc := range []*Service{s, exact} {
		if err := svc.Load(b); err != nil {
			t.Fatal(err)
		}
	}
	s.live.Load().snap.info.HNSWMaxDepth = 10 // as index: auto sets it when the graph wins at k = 10 only
	ctx := context.Background()
	u := User{UserInput: feature.UserInput{UserID: 3, Gender: "M", Age: 30}}
	// Without a graph nothing goes to it, even a depth of 0 (outside the
	// limits the HTTP layer checks: it reached a nil graph and panicked).
	if res, err := exact.Recall(ctx, Request{User: u}); err != nil || res.Backend != "exact" || len(res.Items) != 0 {
		t.Errorf("k 0 without a graph: %+v, %v", res, err)
	}
	for _, tc := range []struct {
		k, offset int
		want      string
	}{{10, 0, "hnsw"}, {5, 5, "hnsw"}, {1, 10, "exact"}, {11, 0, "exact"}, {100, 0, "exact"}, {10, 990, "exact"}} {
		req := Request{User: u, K: tc.k, Offset: tc.offset}
		got, err := s.Recall(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if got.Backend != tc.want {
			t.Errorf("k %d, offset %d: answered by %s, want %s", tc.k, tc.offset, got.Backend, tc.want)
		}
		if tc.want == "exact" {
			want, err := exact.Recall(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Items, want.Items) || got.NextOffset != want.NextOffset {
				t.Errorf("k %d, offset %d: routed answer differs from the exact service's", tc.k, tc.offset)
			}
		}
	}
}

func TestRecallFilters(t *testing.T) {
	t.Parallel()
	s := newService(t, "exact")
	b := testBundle(t, "v1", 300, 2)
	if err := s.Load(b); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	known := feature.UserInput{UserID: 7, Gender: "F"}
	seen := map[movielens.MovieID]bool{}
	for _, m := range b.Seen[6] {
		seen[b.Movies[m].ID] = true
	}

	res, err := s.Recall(ctx, Request{User: User{UserInput: known}, K: 300})
	if err != nil {
		t.Fatal(err)
	}
	if !res.KnownUser || len(res.Items) != 290 {
		t.Fatalf("known=%v, %d items; want the 290 unseen", res.KnownUser, len(res.Items))
	}
	for _, it := range res.Items {
		if seen[it.MovieID] {
			t.Errorf("seen movie %d returned", it.MovieID)
		}
	}
	res, _ = s.Recall(ctx, Request{User: User{UserInput: known}, K: 300, ExcludeSeen: boolPtr(false)})
	if len(res.Items) != 300 {
		t.Errorf("exclude_seen=false: %d items", len(res.Items))
	}

	full, _ := s.Recall(ctx, Request{User: User{UserInput: known}, K: 30})
	page, _ := s.Recall(ctx, Request{User: User{UserInput: known}, K: 10, Offset: 20})
	if !slices.Equal(itemIDs(full.Items[20:]), itemIDs(page.Items)) {
		t.Errorf("offset 20 page %v != items 20..29 %v", itemIDs(page.Items), itemIDs(full.Items[20:]))
	}

	excl := itemIDs(full.Items[:5])
	res, _ = s.Recall(ctx, Request{User: User{UserInput: known}, K: 10, ExcludeMovieIDs: append(excl, 999999)})
	for _, it := range res.Items {
		if slices.Contains(excl, it.MovieID) {
			t.Errorf("excluded movie %d returned", it.MovieID)
		}
	}
	if len(res.Items) != 10 {
		t.Errorf("exclusion returned %d items, want 10", len(res.Items))
	}

	res, _ = s.Recall(ctx, Request{User: User{UserInput: known}, K: 25, Genres: []string{"Horror"}})
	if len(res.Items) != 25 {
		t.Errorf("genre filter: %d items, want 25", len(res.Items))
	}
	for _, it := range res.Items {
		if !slices.Contains(it.Genres, "Horror") {
			t.Errorf("genre filter returned %v", it.Genres)
		}
	}
	if lower, _ := s.Recall(ctx, Request{User: User{UserInput: known}, K: 25, Genres: []string{"hORROR"}}); !reflect.DeepEqual(lower.Items, res.Items) {
		t.Errorf("genre names are not case-insensitive")
	}
	// Paging: next_offset while more movies pass (290 unseen here), none at
	// the end or past it.
	for _, tc := range []struct{ offset, items, next int }{{0, 10, 10}, {270, 10, 280}, {280, 10, 0}, {285, 5, 0}, {5000, 0, 0}} {
		page, _ := s.Recall(ctx, Request{User: User{UserInput: known}, K: 10, Offset: tc.offset})
		if len(page.Items) != tc.items || page.NextOffset != tc.next {
			t.Errorf("offset %d: %d items, next %d; want %d, %d", tc.offset, len(page.Items), page.NextOffset, tc.items, tc.next)
		}
	}
	res, _ = s.Recall(ctx, Request{User: User{UserInput: known}, K: 10, Offset: 5000})
	if len(res.Items) != 0 {
		t.Errorf("offset past the end: %d items", len(res.Items))
	}
}

func itemIDs(items []Item) []movielens.MovieID {
	out := make([]movielens.MovieID, len(items))
	for i, it := range items {
		out[i] = it.MovieID
	}
	return out
}

// TestPinned: a pinned Recall answers from the model live when it was
// pinned, through a reload; pinned before any model, it has none.
func TestPinned(t *testing.T) {
	t.Parallel()
	s := newService(t, "exact")
	ctx := context.Background()
	if _, err := s.Pinned()(ctx, Request{K: 10}); !errors.As(err, new(NoModelError)) {
		t.Fatalf("pinned before a model: err = %v", err)
	}
	if err := s.Load(testBundle(t, "v1", 50, 3)); err != nil {
		t.Fatal(err)
	}
	pinned := s.Pinned()
	if err := s.Load(testBundle(t, "v2", 60, 4)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		rec  func(context.Context, Request) (Result, error)
		want string
	}{{"pinned", pinned, "v1"}, {"live", s.Recall, "v2"}} {
		res, err := tc.rec(ctx, Request{K: 10})
		if err != nil || res.ModelVersion != tc.want {
			t.Errorf("%s: version %q (%v), want %s", tc.name, res.ModelVersion, err, tc.want)
		}
	}
}

func TestRequestErrors(t *testing.T) {
	t.Parallel()
	s := newService(t, "exact")
	ctx := context.Background()
	if _, err := s.Recall(ctx, Request{K: 10}); !errors.As(err, new(NoModelError)) {
		t.Fatalf("no model: err = %v", err)
	}
	if _, ok := s.Info(); ok {
		t.Fatal("Info reports a model before Load")
	}
	if err := s.Load(testBundle(t, "v1", 50, 3)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		req   Request
		field string
	}{
		{"unknown genre", Request{K: 10, Genres: []string{"Comedy", "Opera"}}, "genres[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Recall(ctx, tt.req)
			var e *Error
			if !errors.As(err, &e) || e.Field != tt.field {
				t.Fatalf("err = %v, want a request error on %q", err, tt.field)
			}
		})
	}
	sr, err := s.Score(ctx, ScoreRequest{MovieIDs: []movielens.MovieID{10, 77777, 20}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sr.Scores) != 2 || !slices.Equal(sr.Unknown, []movielens.MovieID{77777}) {
		t.Errorf("score: %+v", sr)
	}
}

// Requests running during reloads see either the old or the new model,
// never a mix: every item of a response comes from the version it names.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	s := newService(t, "exact")
	v1, v2 := testBundle(t, "v1", 200, 4), testBundle(t, "v2", 200, 5)
	if err := s.Load(v1); err != nil {
		t.Fatal(err)
	}
	scoreOf := map[string]map[movielens.MovieID]float32{}
	ctx := context.Background()
	u := feature.UserInput{Gender: "M", Age: 40}
	for _, b := range []*artifact.Bundle{v1, v2} {
		if err := s.Load(b); err != nil {
			t.Fatal(err)
		}
		res, _ := s.Recall(ctx, Request{User: User{UserInput: u}, K: 200})
		scoreOf[b.Manifest.Version] = map[movielens.MovieID]float32{}
		for _, it := range res.Items {
			scoreOf[b.Manifest.Version][it.MovieID] = it.Score
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var answered [2]atomic.Int64 // answers from v1, v2
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := s.Recall(ctx, Request{User: User{UserInput: u}, K: 20})
				if err != nil {
					t.Error(err)
					return
				}
				for _, it := range res.Items {
					if scoreOf[res.ModelVersion][it.MovieID] != it.Score {
						t.Errorf("item %d of %s has a score from another model", it.MovieID, res.ModelVersion)
						return
					}
				}
				if res.ModelVersion == "v2" {
					answered[1].Add(1)
				} else {
					answered[0].Add(1)
				}
			}
		}()
	}
	// Each load is followed by answers from it, so the reloads overlap
	// the requests.
	for i := 0; i < 20; i++ {
		b, v := v1, 0
		if i%2 == 0 {
			b, v = v2, 1
		}
		before := answered[v].Load()
		if err := s.Load(b); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); answered[v].Load() == before; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no answer from %s within 10 s of loading it", b.Manifest.Version)
			}
		}
	}
	close(stop)
	wg.Wait()
}

// TestExcludeSeen: a known user's training movies are never recalled
// unless exclude_seen is false, with and without a genre filter.
func TestExcludeSeen(t *testing.T) {
	t.Parallel()
	b := testBundle(t, "v1", 300, 9)
	s := newService(t, "exact")
	if err := s.Load(b); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for ui, u := range b.Users {
		seen := map[movielens.MovieID]bool{}
		for _, m := range b.Seen[ui] {
			seen[b.Movies[m].ID] = true
		}
		for _, k := range []int{1, 10, 290} {
			req := Request{User: User{UserInput: feature.UserInput{UserID: u}}, K: k}
			if ui%2 == 0 {
				req.Genres = []string{testGenres[ui%len(testGenres)]}
			}
			got, err := s.Recall(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range got.Items {
				if seen[it.MovieID] {
					t.Fatalf("user %d: seen movie %d recalled", u, it.MovieID)
				}
			}
		}
	}
}

// TestRecallDeadline: a request whose context is done before the search
// answers the context's error instead of searching.
func TestRecallDeadline(t *testing.T) {
	t.Parallel()
	s := newService(t, "exact")
	if err := s.Load(testBundle(t, "v1", 50, 3)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := s.Recall(ctx, Request{K: 10}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

func BenchmarkRecall(b *testing.B) {
	for _, index := range []string{"exact", "hnsw"} {
		for _, k := range []int{10, 100} {
			b.Run(fmt.Sprintf("%s/k=%d", index, k), func(b *testing.B) {
				s := newService(b, index)
				if err := s.Load(testBundle(b, "v1", 3706, 1)); err != nil {
					b.Fatal(err)
				}
				req := Request{User: User{UserInput: feature.UserInput{UserID: 3, Gender: "F", Age: 25, Occupation: "programmer"}}, K: k}
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Recall(ctx, req); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// /model reports what index: auto measured at load and why it chose its
// backend; a configured backend says so and measures nothing (exact) or
// both (hnsw, still self-checked).
func TestModelInfoIndexChoice(t *testing.T) {
	t.Parallel()
	for _, index := range []string{"exact", "hnsw", "auto"} {
		t.Run(index, func(t *testing.T) {
			t.Parallel()
			s, _ := loadedService(t, index, "v1", 2000, 3)
			info, ok := s.Info()
			if !ok {
				t.Fatal("no model")
			}
			t.Logf("backend %s, choice %q, latency %v µs, recall %v", info.Backend, info.IndexChoice, info.IndexLatency, info.IndexRecall)
			if index == "exact" {
				if info.Backend != "exact" || info.IndexChoice != "index: exact is configured" || len(info.IndexLatency) != 0 || info.HNSWMaxDepth != 0 {
					t.Errorf("index: exact: backend %s, choice %q, latency %v", info.Backend, info.IndexChoice, info.IndexLatency)
				}
				return
			}
			for k, r := range info.IndexRecall {
				if r != math.Round(r*1e6)/1e6 { // /model showed 0.9989999999999999
					t.Errorf("%s = %v, want six decimals at most", k, r)
				}
			}
			for _, b := range []string{"exact", "hnsw"} {
				if v, ok := info.IndexLatency[b]; !ok || !(v > 0) {
					t.Errorf("latency of %s = %v, %v", b, v, ok)
				}
			}
			want := map[string][]string{
				"hnsw": {"index: hnsw is configured"},
				"auto": {"hnsw faster and recall ≥ min_recall", "exact faster at k = 10; hnsw recall ≥ min_recall", "hnsw recall < min_recall"},
			}[index]
			if !slices.Contains(want, info.IndexChoice) {
				t.Errorf("choice %q, want one of %q", info.IndexChoice, want)
			}
			if hnsw := info.IndexChoice == want[0]; hnsw != (info.Backend == "hnsw") {
				t.Errorf("backend %s with choice %q", info.Backend, info.IndexChoice)
			}
			depths := map[string][]int{"exact": {0}, "hnsw": {10, 100, MaxK}}[info.Backend]
			if index == "hnsw" {
				depths = []int{maxDepth}
			}
			if !slices.Contains(depths, info.HNSWMaxDepth) {
				t.Errorf("backend %s (index: %s) serves the graph to depth %d, want one of %v", info.Backend, index, info.HNSWMaxDepth, depths)
			}
		})
	}
}

// index: auto widens the HNSW beam when the configured one misses
// min_recall: a deliberately poor graph (M 4, construction beam 16) misses
// it at the configured beam and passes after doubling it three times;
// /model reports the beam.
func TestAutoWidensBeam(t *testing.T) {
	t.Parallel()
	b := testBundle(t, "v1", 3000, 1)
	p := ann.HNSWParams{M: 4, M0: 8, Ml: 0.25, EfConstruction: 16, Seed: 1, EfSearch: 12, Overfetch: 2, BuildWorkers: 1}
	info := func(minRecall float64) ModelInfo {
		s, err := New(Options{Index: "auto", MinRecall: minRecall, SelfCheckQueries: 50, HNSW: p, Seed: 1}, zerolog.Nop(), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Load(b); err != nil {
			t.Fatal(err)
		}
		in, _ := s.Info()
		return in
	}
	const minRecall = 0.95
	narrow := info(0) // passes at once: the recall of the configured beam
	t.Logf("beam 12: %v", narrow.IndexRecall)
	if narrow.IndexEfSearch != 12 || narrow.IndexRecall["recall@10"] >= minRecall {
		t.Fatalf("fixture: beam %d, recall %v; want beam 12 below %g", narrow.IndexEfSearch, narrow.IndexRecall, minRecall)
	}
	wide := info(minRecall)
	t.Logf("widened: beam %d, recall %v, backend %s (%s)", wide.IndexEfSearch, wide.IndexRecall, wide.Backend, wide.IndexChoice)
	if wide.IndexEfSearch <= 12 || wide.IndexEfSearch > 8*12 {
		t.Errorf("beam %d, want 24..96", wide.IndexEfSearch)
	}
	if wide.IndexRecall["recall@10"] < minRecall || wide.IndexRecall["recall@100"] < minRecall {
		t.Errorf("widened recall %v, want ≥ %g", wide.IndexRecall, minRecall)
	}
	if wide.IndexChoice == "hnsw recall < min_recall" {
		t.Errorf("choice %q after the beam passed", wide.IndexChoice)
	}
}

// TestWideningReachesLargeK: the beam of a query for k results is
// max(EfSearch, k·Overfetch), so for k = 100 doubling EfSearch alone left
// it unchanged (here 100 until EfSearch passed it) and recall@100 stuck
// below min_recall however far the beam was widened. Widening doubles both.
func TestWideningReachesLargeK(t *testing.T) {
	t.Parallel()
	b := testBundle(t, "v1", 3000, 1)
	p := ann.HNSWParams{M: 4, M0: 8, Ml: 0.25, EfConstruction: 16, Seed: 1, EfSearch: 12, Overfetch: 1, BuildWorkers: 1}
	const minRecall = 0.95
	s := loaded(t, b, Options{Index: "auto", MinRecall: minRecall, SelfCheckQueries: 50, HNSW: p, Seed: 1}, zerolog.Nop())
	in, _ := s.Info()
	t.Logf("beam %d, recall %v, backend %s (%s)", in.IndexEfSearch, in.IndexRecall, in.Backend, in.IndexChoice)
	if in.IndexRecall["recall@10"] < minRecall || in.IndexRecall["recall@100"] < minRecall {
		t.Errorf("widened recall %v, want ≥ %g at k = 10 and 100", in.IndexRecall, minRecall)
	}
	if in.IndexChoice == "hnsw recall < min_recall" {
		t.Errorf("choice %q", in.IndexChoice)
	}
}

// TestForcedHNSWFailureWarns: a forced HNSW that misses min_recall still
// serves, and says so at warn level, as auto's failure does (it was an
// info line with self_check_passed false).
func TestForcedHNSWFailureWarns(t *testing.T) {
	t.Parallel()
	b := testBundle(t, "v1", 3000, 1)
	p := ann.HNSWParams{M: 2, M0: 2, Ml: 0.25, EfConstruction: 2, Seed: 1, EfSearch: 1, Overfetch: 1, BuildWorkers: 1}
	var logs bytes.Buffer
	s := loaded(t, b, Options{Index: "hnsw", MinRecall: 1, SelfCheckQueries: 50, HNSW: p, Seed: 1}, zerolog.New(&logs))
	in, _ := s.Info()
	if in.Backend != "hnsw" || in.IndexRecall["recall@100"] >= 1 {
		t.Fatalf("backend %s, recall %v: want a forced HNSW below min_recall 1", in.Backend, in.IndexRecall)
	}
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "serving HNSW") || strings.Contains(line, "SELF-CHECK FAILED") {
			if !strings.Contains(line, `"level":"warn"`) || !strings.Contains(line, "SELF-CHECK FAILED") {
				t.Errorf("the forced backend's failed self-check is logged as %s", line)
			}
			return
		}
	}
	t.Errorf("no line about the forced backend in %s", logs.String())
}

// loaded is a Service with opts that has loaded b.
func loaded(t *testing.T, b *artifact.Bundle, opts Options, logger zerolog.Logger) *Service {
	t.Helper()
	s, err := New(opts, logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(b); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestReplacedSnapshotCollected checks that a model replaced by a reload is
// freed by the next garbage collection once no request holds it: its
// request pool must not keep it alive (see ann's TestDroppedIndexCollected).
func TestReplacedSnapshotCollected(t *testing.T) {
	s := newService(t, "hnsw")
	ctx := context.Background()
	req := Request{User: User{UserInput: feature.UserInput{Gender: "F", Age: 25}}, K: 10}
	freed := make(chan struct{})
	func() {
		if err := s.Load(testBundle(t, "v1", 200, 7)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recall(ctx, req); err != nil { // puts scratch in the pools
			t.Fatal(err)
		}
		runtime.AddCleanup(s.live.Load().snap, func(c chan struct{}) { close(c) }, freed)
	}()
	if err := s.Load(testBundle(t, "v2", 200, 8)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recall(ctx, req); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	select {
	case <-freed:
	case <-time.After(10 * time.Second):
		t.Fatal("a replaced snapshot outlived a garbage collection")
	}
}

// TestLoadPanicRefused: a bundle that makes building the snapshot panic
// (here recent histories for a model without a history feature, which
// artifact.Load now refuses) is refused like a bad artifact, and the
// previous model keeps serving: a reload must not end the process.
func TestLoadPanicRefused(t *testing.T) {
	t.Parallel()
	s, _ := loadedService(t, "auto", "v1", 100, 1)
	bad := testBundle(t, "v2", 100, 2)
	bad.Recent = &artifact.Recent{Length: 5, Movies: make([][]int32, len(bad.Users))}
	for i := range bad.Recent.Movies {
		bad.Recent.Movies[i] = []int32{0}
	}
	if err := s.Load(bad); err == nil || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("Load = %v, want a refusal naming the panic", err)
	}
	if info, ok := s.Info(); !ok || info.Version != "v1" {
		t.Errorf("serving %q after the refusal, want v1", info.Version)
	}
}

// TestNextOffsetCap: next_offset names the next page while one passes the
// filters and starts within MaxOffset; past it, none (the contract says so).
func TestNextOffsetCap(t *testing.T) {
	t.Parallel()
	s, _ := loadedService(t, "exact", "v1", MaxOffset+100, 3)
	for _, tc := range []struct{ offset, k, items, next int }{
		{MaxOffset - 40, 20, 20, MaxOffset - 20},
		{MaxOffset - 20, 20, 20, MaxOffset},
		{MaxOffset - 10, 20, 20, 0}, // the next page would start past MaxOffset
		{MaxOffset, 100, 100, 0},    // the catalogue's end
	} {
		res, err := s.Recall(context.Background(), Request{User: User{}, K: tc.k, Offset: tc.offset})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Items) != tc.items || res.NextOffset != tc.next {
			t.Errorf("offset %d, k %d: %d items, next_offset %d; want %d, %d", tc.offset, tc.k, len(res.Items), res.NextOffset, tc.items, tc.next)
		}
	}
}

// TestNewRefusesBadOptions: the package checks its own options, whoever
// built them (config.Validate checks the same settings by their keys).
func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	good := Options{Index: "exact", MinRecall: 0.99, SelfCheckQueries: 10, HNSW: ann.DefaultHNSWParams(), Seed: 1}
	if _, err := New(good, zerolog.Nop(), nil); err != nil {
		t.Fatalf("good options: %v", err)
	}
	for _, tt := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"index", func(o *Options) { o.Index = "fast" }, `index "fast"`},
		{"min recall", func(o *Options) { o.MinRecall = 1.5 }, "min recall 1.5"},
		{"self-check queries", func(o *Options) { o.SelfCheckQueries = 0 }, "self-check queries 0"},
	} {
		o := good
		tt.edit(&o)
		if _, err := New(o, zerolog.Nop(), nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one naming %q", tt.name, err, tt.want)
		}
	}
}

// TestGraphDegreeWarned: an artifact's graph built with another degree
// than the service's serve.hnsw_m is served as built, and the log says
// so (the setting changed nothing, silently); the same degree says
// nothing.
func TestGraphDegreeWarned(t *testing.T) {
	t.Parallel()
	b := testBundle(t, "v1", 500, 1)
	built := ann.DefaultHNSWParams()
	built.M, built.M0 = 4, 8
	h, err := ann.NewHNSW(b.Vectors, b.Manifest.Dim, built)
	if err != nil {
		t.Fatal(err)
	}
	var graph bytes.Buffer
	if err := h.Export(&graph); err != nil {
		t.Fatal(err)
	}
	b.Graph = graph.Bytes()
	for _, m := range []int{4, 16} {
		var logs bytes.Buffer
		p := ann.DefaultHNSWParams()
		p.M, p.M0 = m, 2*m
		loaded(t, b, Options{Index: "hnsw", MinRecall: 0, SelfCheckQueries: 20, HNSW: p, Seed: 1}, zerolog.New(&logs))
		warned := strings.Contains(logs.String(), `"graph_m":4,"serve_hnsw_m":16`)
		if warned != (m != 4) {
			t.Errorf("serve.hnsw_m %d over a graph of degree 4: warned %v\n%s", m, warned, logs.String())
		}
	}
}
