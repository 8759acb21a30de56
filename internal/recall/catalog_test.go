package recall

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/catalog"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/tower"
)

// memJournal is a Journal in memory.
type memJournal struct {
	mu      sync.Mutex
	entries []catalog.Entry
	fail    error
	now     func() time.Time
}

func (j *memJournal) Write(e catalog.Entry) (catalog.Entry, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return catalog.Entry{}, j.fail
	}
	e.Seq = uint64(len(j.entries) + 1)
	if e.At.IsZero() { // as catalog.Journal
		e.At = time.Now().UTC()
		if j.now != nil {
			e.At = j.now()
		}
	}
	j.entries = append(j.entries, e)
	return e, nil
}

func (j *memJournal) Sync(uint64) error { return nil }

func (j *memJournal) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.fail
}

func (j *memJournal) all() []catalog.Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.entries)
}

// liveMovie is a movie of the live catalogue with its vector, as a test
// computes it independently of the overlay.
type liveMovie struct {
	id     movielens.MovieID
	genres []string
	vec    []float32
	order  int // result-id order: artifact rows, then changes in order
}

// dot is Recall's score, ann.Dot, as an oracle's score function.
func dot(q, v []float32) float64 { return float64(ann.Dot(q, v)) }

// reference scores every live movie for q and returns the ids of the best
// k that pass keep, best first with ties by order: what Recall (score dot)
// must answer on the exact backend, or Similar (score cosine).
func reference(movies []liveMovie, q []float32, k int, keep func(liveMovie) bool, score func(q, v []float32) float64) []movielens.MovieID {
	type scored struct {
		liveMovie
		s float64
	}
	var all []scored
	for _, m := range movies {
		if keep(m) {
			all = append(all, scored{m, score(q, m.vec)})
		}
	}
	slices.SortFunc(all, func(a, b scored) int {
		if a.s != b.s {
			return cmp.Compare(b.s, a.s)
		}
		return cmp.Compare(a.order, b.order)
	})
	var out []movielens.MovieID
	for _, m := range all[:min(k, len(all))] {
		out = append(out, m.id)
	}
	return out
}

// TestCatalogChanges adds, updates and deletes movies and checks every
// read path against an independent model of the catalogue: Recall (exact
// backend: exactly the reference top K; HNSW: scores equal Score's),
// Score, Movies, Similar, genre filters, exclusions, seen movies, Info.
func TestCatalogChanges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		index     string
		normalize bool // false: vectors of different lengths, so Similar's cosine is not Recall's inner product
	}{{"exact", true}, {"hnsw", true}, {"exact", false}} {
		t.Run(fmt.Sprintf("%s/normalize=%v", tc.index, tc.normalize), func(t *testing.T) {
			t.Parallel()
			index := tc.index
			s, b := newService(t, index), testBundleNorm(t, "v1", 300, 11, tc.normalize)
			if err := s.Load(b); err != nil {
				t.Fatal(err)
			}
			if unit := s.live.Load().snap.cosine == nil; unit != tc.normalize {
				t.Fatalf("unitMovies = %v, normalize %v", unit, tc.normalize)
			}
			ctx := context.Background()
			if _, err := s.PutMovie(ctx, Movie{MovieID: 1, Title: "x", Genres: []string{"Drama"}}); !errors.As(err, new(ReadOnlyError)) {
				t.Fatalf("put without a journal: %v", err)
			}
			s.AttachJournal(&memJournal{}, nil)
			rng := rand.New(rand.NewPCG(11, 12))
			// The model of the catalogue: id → live movie.
			live := map[movielens.MovieID]liveMovie{}
			for i, mv := range b.Movies {
				live[mv.ID] = liveMovie{id: mv.ID, genres: mv.Genres, vec: b.Vectors[i*8 : (i+1)*8], order: i}
			}
			order := len(b.Movies)
			put := func(id movielens.MovieID, genres ...string) {
				t.Helper()
				_, existed := live[id]
				res, err := s.PutMovie(ctx, Movie{MovieID: id, Title: fmt.Sprintf("Changed %d (2024)", id), Genres: genres, Year: 2024})
				if err != nil {
					t.Fatal(err)
				}
				if res.Created == existed || res.VectorNorm <= 0 {
					t.Fatalf("put %d: created %v (existed %v), norm %v", id, res.Created, existed, res.VectorNorm)
				}
				vec := make([]float32, 8)
				b.Model.MovieVector(vec, b.Encoder.EncodeMovie(feature.MovieInput{MovieID: fmt.Sprint(id), Genres: res.Movie.Genres, Year: 2024}))
				live[id] = liveMovie{id: id, genres: res.Movie.Genres, vec: vec, order: order}
				order++
			}
			del := func(id movielens.MovieID) {
				t.Helper()
				if _, err := s.DeleteMovie(ctx, id); err != nil {
					t.Fatal(err)
				}
				delete(live, id)
			}
			for i := range 40 { // new movies, one with a genre spelled in another case
				put(movielens.MovieID(100000+i), testGenres[rng.IntN(len(testGenres))])
			}
			put(100100, "dRaMa", "Comedy")
			put(b.Movies[3].ID, "Horror")  // an update of a movie user 1 has seen
			put(b.Movies[50].ID, "Comedy") // an update of an unseen one
			put(100005, "Romance")         // an update of a new movie
			del(b.Movies[60].ID)           // a delete from the artifact
			del(100007)                    // a delete of a new movie
			put(b.Movies[60].ID, "Action") // back again, as a new version
			del(b.Movies[70].ID)
			if _, err := s.DeleteMovie(ctx, b.Movies[70].ID); !errors.As(err, new(*UnknownMovieError)) {
				t.Fatalf("second delete: %v", err)
			}
			if _, err := s.PutMovie(ctx, Movie{MovieID: 5, Title: "x", Genres: []string{"Western"}}); !errors.As(err, new(*Error)) {
				t.Fatalf("unknown genre: %v", err)
			}

			movies := make([]liveMovie, 0, len(live))
			ids := make([]movielens.MovieID, 0, len(live))
			for _, m := range live {
				movies = append(movies, m)
				ids = append(ids, m.id)
			}
			info, _ := s.Info()
			if info.Movies != len(live) || info.Catalog.Added != 40 || info.Catalog.Updated != 3 || info.Catalog.Deleted != 1 {
				t.Fatalf("info: %d movies, catalog %+v; want %d movies, 40 added, 3 updated, 1 deleted", info.Movies, info.Catalog, len(live))
			}
			for _, tc := range []struct {
				name string
				req  Request
				keep func(liveMovie) bool
			}{
				{"all", Request{K: 400}, func(liveMovie) bool { return true }},
				{"top 10 of a known user, seen excluded", Request{User: User{UserInput: feature.UserInput{UserID: 1}}, K: 10},
					func(m liveMovie) bool {
						return !slices.ContainsFunc(b.Movies[:10], func(a artifact.Movie) bool { return a.ID == m.id })
					}},
				{"genre", Request{K: 30, Genres: []string{"romance"}}, func(m liveMovie) bool {
					return slices.ContainsFunc(m.genres, func(g string) bool { return strings.EqualFold(g, "romance") })
				}},
				{"excluded and recent", Request{User: User{Recent: []movielens.MovieID{100001, b.Movies[50].ID}}, K: 400, ExcludeMovieIDs: []movielens.MovieID{100002, b.Movies[4].ID, 999999}},
					func(m liveMovie) bool {
						return !slices.Contains([]movielens.MovieID{100001, b.Movies[50].ID, 100002, b.Movies[4].ID}, m.id)
					}},
				{"paged", Request{K: 7, Offset: 5}, func(liveMovie) bool { return true }},
			} {
				res, err := s.Recall(ctx, tc.req)
				if err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				sc, err := s.Score(ctx, ScoreRequest{User: tc.req.User, MovieIDs: ids})
				if err != nil || len(sc.Unknown) != 0 {
					t.Fatalf("%s: score: %v, unknown %v", tc.name, err, sc.Unknown)
				}
				byID := map[movielens.MovieID]float32{}
				for _, x := range sc.Scores {
					byID[x.MovieID] = x.Score
				}
				for _, it := range res.Items {
					if byID[it.MovieID] != it.Score {
						t.Fatalf("%s: movie %d: recall score %v, score %v", tc.name, it.MovieID, it.Score, byID[it.MovieID])
					}
					if m, ok := live[it.MovieID]; !ok || !tc.keep(m) {
						t.Fatalf("%s: movie %d recalled but deleted or filtered", tc.name, it.MovieID)
					}
				}
				if index != "exact" {
					continue
				}
				q := make([]float32, 8)
				(&view{snap: s.live.Load().snap, ov: s.live.Load().ov}).userVector(&scratch{q: q}, tc.req.User)
				want := reference(movies, q, tc.req.K+tc.req.Offset, tc.keep, dot)
				want = want[min(tc.req.Offset, len(want)):]
				if got := itemIDs(res.Items); !slices.Equal(got, want) {
					t.Fatalf("%s: recalled %v,\nwant %v", tc.name, got, want)
				}
			}
			// Recent movies: one the catalogue lacks is reported; one added
			// since training is known (excluded, not reported) though it
			// has no history embedding to pool; a trained movie deleted
			// since (70) is the model's, watched, not reported.
			res, err := s.Recall(ctx, Request{User: User{Recent: []movielens.MovieID{999999, 100001, b.Movies[50].ID, b.Movies[70].ID}}, K: 400})
			if err != nil || !slices.Equal(res.User.UnknownRecent, []movielens.MovieID{999999}) ||
				slices.ContainsFunc(res.Items, func(it Item) bool { return it.MovieID == 100001 || it.MovieID == b.Movies[50].ID }) {
				t.Fatalf("recent movies: %v, unknown %v, items %v", err, res.User.UnknownRecent, itemIDs(res.Items))
			}
			// Score of changed movies.
			sc, _ := s.Score(ctx, ScoreRequest{MovieIDs: []movielens.MovieID{b.Movies[70].ID, 100007, 100100}})
			if !slices.Equal(sc.Unknown, []movielens.MovieID{b.Movies[70].ID, 100007}) || len(sc.Scores) != 1 {
				t.Fatalf("score of deleted movies: %+v", sc)
			}
			// Movies: an updated movie keeps its place, new ones come last.
			mr, _ := s.Movies("Changed", 0, 100)
			if mr.Total != 43 || mr.Movies[0].MovieID != b.Movies[3].ID || mr.Movies[1].MovieID != b.Movies[50].ID {
				t.Fatalf("movies: total %d, first %+v", mr.Total, mr.Movies[:2])
			}
			if mr, _ := s.Movies(b.Movies[70].Title, 0, 10); slices.ContainsFunc(mr.Movies, func(m Movie) bool { return m.MovieID == b.Movies[70].ID }) {
				t.Fatal("a deleted movie is listed")
			}
			if mr, _ := s.Movies("Changed 100100", 0, 10); len(mr.Movies) != 1 || !slices.Equal(mr.Movies[0].Genres, []string{"Drama", "Comedy"}) {
				t.Fatalf("genres not stored in the catalogue's spelling: %+v", mr.Movies)
			}
			// Similar: a new movie's neighbours, and a new movie among them.
			for _, id := range []movielens.MovieID{100003, b.Movies[8].ID} {
				sim, err := s.Similar(ctx, id, 20)
				if err != nil {
					t.Fatal(err)
				}
				want := reference(movies, live[id].vec, 20, func(m liveMovie) bool { return m.id != id }, cosine)
				if got := itemIDs(sim.Items); !slices.Equal(got, want) {
					t.Fatalf("similar %d: %v, want %v", id, got, want)
				}
			}
			if _, err := s.Similar(ctx, b.Movies[70].ID, 5); !errors.As(err, new(*UnknownMovieError)) {
				t.Fatalf("similar of a deleted movie: %v", err)
			}
		})
	}
}

// TestCatalogReplay: the journal's entries survive a reload of the same
// artifact and a restart (AttachJournal before the first load); a newer
// artifact that has a movie supersedes the entries about it.
func TestCatalogReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v1 := testBundle(t, "v1", 100, 21)
	v1.Manifest.CreatedAt = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	j := &memJournal{now: func() time.Time { return time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC) }}
	s := newService(t, "exact")
	if err := s.Load(v1); err != nil {
		t.Fatal(err)
	}
	s.AttachJournal(j, nil)
	for _, ch := range []Movie{
		{MovieID: 5000, Title: "New", Genres: []string{"Drama"}, Year: 2025},
		{MovieID: 5001, Title: "Newer", Genres: []string{"Action"}},
		{MovieID: v1.Movies[1].ID, Title: "Renamed", Genres: []string{"Comedy"}},
	} {
		if _, err := s.PutMovie(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DeleteMovie(ctx, v1.Movies[2].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteMovie(ctx, 5001); err != nil {
		t.Fatal(err)
	}
	state := func(s *Service) string {
		res, err := s.Recall(ctx, Request{K: 200})
		if err != nil {
			t.Fatal(err)
		}
		info, _ := s.Info()
		return fmt.Sprintf("%d %+v %v", info.Movies, info.Catalog, res.Items)
	}
	want := state(s)

	if err := s.Load(v1); err != nil { // reload of the same artifact
		t.Fatal(err)
	}
	if got := state(s); got != want {
		t.Fatalf("after a reload:\n%s\nwant\n%s", got, want)
	}
	restarted := newService(t, "exact")
	restarted.AttachJournal(j, j.all())
	if err := restarted.Load(v1); err != nil {
		t.Fatal(err)
	}
	if got := state(restarted); got != want {
		t.Fatalf("after a restart:\n%s\nwant\n%s", got, want)
	}

	// v2, created after the changes, has movie 5000 and movie 1's new
	// title: those entries are superseded; movie 2's delete is too (v2
	// has it: the catalogue it was built from brought it back).
	v2 := testBundle(t, "v2", 100, 22)
	v2.Manifest.CreatedAt = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	v2.Movies[10].ID = 5000
	v2.Movies[11].Title = "Renamed in v2"
	if err := restarted.Load(v2); err != nil {
		t.Fatal(err)
	}
	info, _ := restarted.Info()
	if info.Movies != 100 || info.Catalog.Added+info.Catalog.Updated+info.Catalog.Deleted != 0 || info.Catalog.Seq != 5 {
		t.Fatalf("after a newer artifact: %d movies, %+v", info.Movies, info.Catalog)
	}
	mr, _ := restarted.Movies("Renamed", 0, 10)
	if len(mr.Movies) != 1 || mr.Movies[0].Title != "Renamed in v2" {
		t.Fatalf("the newer artifact's title should win: %+v", mr.Movies)
	}
	// An older artifact (created before the changes) keeps them all.
	v0 := testBundle(t, "v0", 100, 21)
	if err := restarted.Load(v0); err != nil {
		t.Fatal(err)
	}
	if info, _ := restarted.Info(); info.Catalog.Added != 1 || info.Catalog.Updated != 1 || info.Catalog.Deleted != 1 {
		t.Fatalf("an older artifact: %+v", info.Catalog)
	}
}

// TestCatalogJournalFailure: a change the journal refuses is not applied.
func TestCatalogJournalFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, b := loadedService(t, "exact", "v1", 50, 23)
	s.AttachJournal(&memJournal{fail: errors.New("disk full")}, nil)
	if _, err := s.PutMovie(ctx, Movie{MovieID: 7777, Title: "x", Genres: []string{"Drama"}}); !errors.As(err, new(*JournalError)) {
		t.Fatalf("put: %v", err)
	}
	if _, err := s.DeleteMovie(ctx, b.Movies[0].ID); !errors.As(err, new(*JournalError)) {
		t.Fatalf("delete: %v", err)
	}
	if info, _ := s.Info(); info.Movies != 50 || info.Catalog.Writable {
		t.Fatalf("%d movies after refused changes, writable %v", info.Movies, info.Catalog.Writable)
	}
}

// TestCatalogStress runs writers (PUT and DELETE) against readers
// (Recall, Score) with -race in mind: no request fails, every recalled
// item's score is its movie's score, and every acknowledged PUT is visible
// to the next request.
func TestCatalogStress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, b := loadedService(t, "hnsw", "v1", 500, 31)
	s.AttachJournal(&memJournal{}, nil)
	const writers, readers, perWriter = 3, 4, 300
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := User{UserInput: feature.UserInput{UserID: movielens.UserID(1 + r), Age: 30}}
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				req := Request{User: u, K: 50}
				if n%3 == 0 {
					req.Genres = []string{"Drama", "Comedy"}
				}
				res, err := s.Recall(ctx, req)
				if err != nil {
					t.Error(err)
					return
				}
				ids := itemIDs(res.Items)
				sc, err := s.Score(ctx, ScoreRequest{User: u, MovieIDs: ids})
				if err != nil {
					t.Error(err)
					return
				}
				// Writers add new ids and delete; a movie still live
				// scores the same.
				byID := map[movielens.MovieID]float32{}
				for _, x := range sc.Scores {
					byID[x.MovieID] = x.Score
				}
				for _, it := range res.Items {
					if x, ok := byID[it.MovieID]; ok && x != it.Score {
						t.Errorf("movie %d: recall %v, score %v", it.MovieID, it.Score, x)
						return
					}
				}
			}
		}()
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 5))
			for i := range perWriter {
				id := movielens.MovieID(1_000_000 + w*perWriter + i)
				title := fmt.Sprintf("Stress %d-%d", w, i)
				res, err := s.PutMovie(ctx, Movie{MovieID: id, Title: title, Genres: []string{testGenres[rng.IntN(len(testGenres))]}})
				if err != nil {
					t.Error(err)
					return
				}
				// Visible at once: recalled (every movie of its genre is
				// asked for), scored, listed, and a neighbour's neighbour.
				rec, err := s.Recall(ctx, Request{K: MaxK, Genres: res.Movie.Genres})
				if err != nil || !slices.Contains(itemIDs(rec.Items), id) {
					t.Errorf("acknowledged put of %d not recalled: %v", id, err)
					return
				}
				sc, err := s.Score(ctx, ScoreRequest{MovieIDs: []movielens.MovieID{id}})
				if err != nil || len(sc.Scores) != 1 {
					t.Errorf("acknowledged put of %d not scorable: %v %+v", id, err, sc)
					return
				}
				if mr, _ := s.Movies(title, 0, 1); mr.Total != 1 {
					t.Errorf("acknowledged put of %d not listed", id)
					return
				}
				if sim, err := s.Similar(ctx, id, 1); err != nil || len(sim.Items) != 1 {
					t.Errorf("similar of %d: %v", id, err)
					return
				}
				if i%4 == 3 { // delete an older one of this writer's, or an artifact movie
					victim := id - 2
					if i%8 == 7 {
						victim = b.Movies[w*100+i/8].ID
					}
					if _, err := s.DeleteMovie(ctx, victim); err != nil {
						t.Error(err)
						return
					}
					if sc, _ := s.Score(ctx, ScoreRequest{MovieIDs: []movielens.MovieID{victim}}); len(sc.Unknown) != 1 {
						t.Errorf("acknowledged delete of %d still scorable", victim)
						return
					}
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		// Writers finish; then stop the readers.
		defer close(done)
		for {
			info, _ := s.Info()
			if info.Catalog.Seq >= writers*(perWriter+perWriter/4) || t.Failed() {
				close(stop)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	<-done
	wg.Wait()
	info, _ := s.Info()
	if want := 500 + writers*perWriter - writers*perWriter/4; info.Movies != want {
		t.Fatalf("%d movies at the end, want %d (%+v)", info.Movies, want, info.Catalog)
	}
}

// BenchmarkRecallOverlay measures what the overlay adds to /recall: the
// exact scan of the movies added since the artifact (and the merge), at
// 0, 1k and 10k added movies over an ml-1m-sized artifact. It reports the
// replay (overlay build) time of that many journal entries too.
func BenchmarkRecallOverlay(b *testing.B) {
	for _, added := range []int{0, 1000, 10000} {
		b.Run(fmt.Sprintf("added=%d", added), func(b *testing.B) {
			s := newService(b, "exact")
			bundle := testBundle(b, "v1", 3706, 1)
			var entries []catalog.Entry
			for i := range added {
				entries = append(entries, catalog.Entry{Seq: uint64(i + 1), At: time.Now(), Op: catalog.OpPut, MovieID: movielens.MovieID(1_000_000 + i),
					Title: "x", Genres: []string{testGenres[i%len(testGenres)]}, Year: 2000 + i%25})
			}
			s.AttachJournal(&memJournal{}, entries)
			start := time.Now()
			if err := s.Load(bundle); err != nil {
				b.Fatal(err)
			}
			b.Logf("%d added movies: load with replay %v", added, time.Since(start))
			benchRecall(b, s)
		})
	}
	// The whole catalogue sent again (a nightly full sync): as it is, which
	// changes nothing, and with every title changed, which was the cost of
	// the first until PUT compared (every movie became an overlay row).
	for _, changed := range []bool{false, true} {
		b.Run(fmt.Sprintf("resent=3706,changed=%v", changed), func(b *testing.B) {
			s := newService(b, "exact")
			bundle := testBundle(b, "v1", 3706, 1)
			if err := s.Load(bundle); err != nil {
				b.Fatal(err)
			}
			s.AttachJournal(&memJournal{}, nil)
			for _, m := range bundle.Movies {
				if changed {
					m.Title += " (restored)"
				}
				if _, err := s.PutMovie(context.Background(), Movie{MovieID: m.ID, Title: m.Title, Genres: m.Genres, Year: m.Year}); err != nil {
					b.Fatal(err)
				}
			}
			benchRecall(b, s)
			b.ReportMetric(float64(len(s.live.Load().ov.rows)), "overlay-rows")
		})
	}
}

// benchRecall times one known user's /recall at k = 10.
func benchRecall(b *testing.B, s *Service) {
	req := Request{User: User{UserInput: feature.UserInput{UserID: 3, Gender: "F", Age: 25, Occupation: "programmer"}}, K: 10}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Recall(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPutKeepsPrior: with a popularity prior in the vectors' last
// dimension, a movie the model was trained on keeps its own bias when it
// is PUT again (the same metadata scores the same, to the bit), a new
// movie gets the prior's default bias, and VectorNorm is the norm of the
// tower's output alone (1 for normalised towers).
func TestPutKeepsPrior(t *testing.T) {
	t.Parallel()
	b := testBundle(t, "v1", 60, 3)
	const d, defaultBias = 9, -7
	b.Model.SetPrior(&tower.Prior{Weight: 1, ColdWeight: 1, DefaultBias: defaultBias})
	b.Prior = &artifact.Prior{Weight: 1, ColdWeight: 1, DefaultBias: defaultBias, Bias: make([]float32, len(b.Movies))}
	b.Vectors = make([]float32, len(b.Movies)*d)
	for i, mv := range b.Movies {
		in := feature.MovieInput{MovieID: strconv.Itoa(int(mv.ID)), Genres: mv.Genres, Year: mv.Year}
		b.Model.MovieVector(b.Vectors[i*d:(i+1)*d], b.Encoder.EncodeMovie(in))
		b.Prior.Bias[i] = float32(i%7) - 3
		b.Vectors[i*d+d-1] = b.Prior.Bias[i]
	}
	b.Manifest.Dim = d
	s := newService(t, "exact")
	if err := s.Load(b); err != nil {
		t.Fatal(err)
	}
	s.AttachJournal(&memJournal{}, nil)
	ctx := context.Background()
	mv := b.Movies[5]
	req := ScoreRequest{User: User{UserInput: feature.UserInput{UserID: 3}}, MovieIDs: []movielens.MovieID{mv.ID}}
	before, err := s.Score(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// A new title (the tower does not read titles), so that the movie is
	// re-encoded: the same metadata alone changes nothing (TestPutUnchanged).
	res, err := s.PutMovie(ctx, Movie{MovieID: mv.ID, Title: mv.Title + " (restored)", Genres: mv.Genres, Year: mv.Year})
	if err != nil || !res.Changed {
		t.Fatalf("changed %v, %v", res.Changed, err)
	}
	after, err := s.Score(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if after.Scores[0].Score != before.Scores[0].Score {
		t.Errorf("the same genres and year PUT again moved the score from %v to %v", before.Scores[0].Score, after.Scores[0].Score)
	}
	if math.Abs(float64(res.VectorNorm)-1) > 1e-5 {
		t.Errorf("vector norm %v, want 1 (the normalised tower's output)", res.VectorNorm)
	}
	if _, err := s.PutMovie(ctx, Movie{MovieID: 999_999, Title: "New (2024)", Genres: mv.Genres, Year: 2024}); err != nil {
		t.Fatal(err)
	}
	v := s.live.Load()
	g, ok := v.find(999_999)
	if !ok {
		t.Fatal("the new movie is not in the live catalogue")
	}
	if vec := v.vectorOf(g); vec[d-1] != defaultBias {
		t.Errorf("a new movie's bias is %v, want the default %v", vec[d-1], float32(defaultBias))
	}
}

// TestCatalogCompaction: movies changed again and again (a nightly upsert
// of a catalogue whose titles change) leave dead overlay rows that every
// request scans; they are compacted once they outnumber the live ones by
// 2× + slack, and the answers, counts and journal are what they were.
func TestCatalogCompaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, b := loadedService(t, "exact", "v1", 200, 23)
	j := &memJournal{}
	s.AttachJournal(j, nil)
	// put sends artifact movie i again with the round in its title, as
	// it is or (added) as a new movie.
	put := func(i, round int, added bool) {
		m := b.Movies[i]
		if added {
			m.ID += 100000
		}
		if _, err := s.PutMovie(ctx, Movie{MovieID: m.ID, Title: fmt.Sprint(m.Title, " #", round), Genres: m.Genres, Year: m.Year}); err != nil {
			t.Fatal(err)
		}
	}
	req := Request{User: User{UserInput: feature.UserInput{UserID: 3}}, K: 20, Genres: []string{"drama", "comedy"}}
	for round := range 200 {
		for i := range 10 {
			put(i, round, round%2 == 1) // 10 artifact movies, and 10 added ones, changed again and again
		}
	}
	v := s.live.Load()
	if rows := len(v.ov.rows); rows > 2*v.ov.nLive+compactSlack+1 || v.ov.nLive != 20 {
		t.Errorf("%d overlay rows for %d live after 2,000 puts", rows, v.ov.nLive)
	}
	got, err := s.Recall(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info()
	// The same entries replayed from scratch serve the same answer.
	s2 := newService(t, "exact")
	s2.AttachJournal(&memJournal{}, j.all())
	if err := s2.Load(testBundle(t, "v1", 200, 23)); err != nil {
		t.Fatal(err)
	}
	want, err := s2.Recall(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	info2, _ := s2.Info()
	if !reflect.DeepEqual(got.Items, want.Items) || info.Catalog != info2.Catalog || info.Movies != info2.Movies {
		t.Errorf("after compaction: %+v %+v\nreplayed: %+v %+v", got.Items, info.Catalog, want.Items, info2.Catalog)
	}
}

// TestCatalogMetrics: /metrics shows whether changes can be made (an
// operator's alert), the changes over the artifact and the fsyncs.
func TestCatalogMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	s, err := New(Options{Index: "exact", MinRecall: 0.99, SelfCheckQueries: 10, HNSW: ann.DefaultHNSWParams(), Seed: 1}, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	b := testBundle(t, "v1", 50, 23)
	if err := s.Load(b); err != nil {
		t.Fatal(err)
	}
	want := func(writable, added, deleted float64, fsyncs uint64) {
		t.Helper()
		got := map[string]float64{}
		var n uint64
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				switch mf.GetName() {
				case "towerrecall_catalog_writable":
					got["writable"] = m.GetGauge().GetValue()
				case "towerrecall_catalog_changed_movies":
					got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
				case "towerrecall_catalog_fsync_seconds":
					n = m.GetHistogram().GetSampleCount()
				}
			}
		}
		if got["writable"] != writable || got["added"] != added || got["deleted"] != deleted || got["updated"] != 0 || n != fsyncs {
			t.Errorf("metrics %v, %d fsyncs; want writable %v, added %v, deleted %v, %d fsyncs", got, n, writable, added, deleted, fsyncs)
		}
	}
	want(0, 0, 0, 0) // no journal: changes are off
	j := &memJournal{}
	s.AttachJournal(j, nil)
	if _, err := s.PutMovie(ctx, Movie{MovieID: 7777, Title: "x", Genres: []string{"Drama"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteMovie(ctx, b.Movies[0].ID); err != nil {
		t.Fatal(err)
	}
	want(1, 1, 1, 2)
	j.mu.Lock()
	j.fail = errors.New("disk full")
	j.mu.Unlock()
	if _, err := s.PutMovie(ctx, Movie{MovieID: 7778, Title: "y", Genres: []string{"Drama"}}); err == nil {
		t.Fatal("a put through a failed journal succeeded")
	}
	want(0, 1, 1, 2)
}

// TestPutGenreSpellings: genres are looked up by strings.ToLower, which
// merges some names that catalog.CheckMovie's case-insensitive comparison
// (strings.EqualFold) keeps apart ("Actİon" lower-cases to "action"). Two
// such spellings of one genre are the caller's mistake, a field error; they
// must not reach the journal, whose own check refuses the repeated genre,
// and be taken for a journal failure (503, and changes marked off).
func TestPutGenreSpellings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := loadedService(t, "exact", "v1", 50, 23)
	j, _, err := catalog.Open(t.TempDir() + "/journal")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	s.AttachJournal(j, nil)
	for _, tc := range []struct {
		name   string
		genres []string
		field  string // "" for a put that succeeds
	}{
		{"one spelling", []string{"action"}, ""},
		{"dotted capital I", []string{"Actİon"}, ""},
		{"two spellings of one genre", []string{"Action", "Actİon"}, "genres[1]"},
		{"two spellings after another genre", []string{"Drama", "actİon", "ACTION"}, "genres[2]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.PutMovie(ctx, Movie{MovieID: 5000, Title: "x", Genres: tc.genres})
			var e *Error
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("put: %v", err)
			case tc.field != "" && (!errors.As(err, &e) || e.Field != tc.field):
				t.Fatalf("put: %v (%T), want a field error on %s", err, err, tc.field)
			}
			if info, _ := s.Info(); !info.Catalog.Writable {
				t.Fatalf("catalogue changes marked off after %v", err)
			}
		})
	}
}

// TestCatalogReadOnlyJournal: a replica without a catalogue token applies
// an existing journal's entries without a journal to write to
// (AttachJournal with nil, as serve does): the entries are served, and a
// change is refused as read-only.
func TestCatalogReadOnlyJournal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := testBundle(t, "v1", 50, 23)
	entries := []catalog.Entry{
		{Seq: 1, At: time.Now().UTC(), Op: catalog.OpPut, MovieID: 5000, Title: "New", Genres: []string{"Drama"}},
		{Seq: 2, At: time.Now().UTC(), Op: catalog.OpDelete, MovieID: b.Movies[0].ID},
	}
	for _, tc := range []struct {
		name      string
		loadFirst bool // a model is loaded before the journal is attached
	}{{"attached at start", false}, {"attached over a model", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newService(t, "exact")
			if tc.loadFirst {
				if err := s.Load(b); err != nil {
					t.Fatal(err)
				}
			}
			s.AttachJournal(nil, entries)
			if !tc.loadFirst {
				if err := s.Load(b); err != nil {
					t.Fatal(err)
				}
			}
			info, _ := s.Info()
			if info.Movies != 50 || info.Catalog.Added != 1 || info.Catalog.Deleted != 1 || info.Catalog.Writable || info.Catalog.Seq != 2 {
				t.Fatalf("%d movies, catalog %+v", info.Movies, info.Catalog)
			}
			if _, err := s.PutMovie(ctx, Movie{MovieID: 5001, Title: "x", Genres: []string{"Drama"}}); !errors.As(err, new(ReadOnlyError)) {
				t.Fatalf("put: %v", err)
			}
			if _, err := s.DeleteMovie(ctx, 5000); !errors.As(err, new(ReadOnlyError)) {
				t.Fatalf("delete: %v", err)
			}
		})
	}
}

// TestCatalogChangeNewerThanItsArtifact: a change made while an artifact
// is live is newer than that artifact, whatever the clocks say. With the
// training host's clock ahead of the replica's, the artifact's creation
// time was after the change's, so reloading the same artifact (SIGHUP, a
// restart, or the overlay's compaction) superseded changes that had been
// acknowledged and shown: an update reverted, a deleted movie came back.
// A newer artifact still supersedes them.
func TestCatalogChangeNewerThanItsArtifact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := testBundle(t, "v1", 50, 23)
	b.Manifest.CreatedAt = time.Now().UTC().Add(time.Hour) // the training host's clock an hour ahead
	s := newService(t, "exact")
	if err := s.Load(b); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.journal")
	j, _, err := catalog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.AttachJournal(j, nil)
	if _, err := s.PutMovie(ctx, Movie{MovieID: b.Movies[0].ID, Title: "Renamed", Genres: []string{"Drama"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteMovie(ctx, b.Movies[1].ID); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := catalog.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	restarted := newService(t, "exact")
	restarted.AttachJournal(nil, rep.Entries)
	if err := restarted.Load(b); err != nil {
		t.Fatal(err)
	}
	newer := testBundle(t, "v2", 50, 23)
	newer.Manifest.CreatedAt = b.Manifest.CreatedAt.Add(time.Hour)
	for _, tc := range []struct {
		name             string
		s                *Service
		b                *artifact.Bundle
		updated, deleted int
	}{
		{"as made", s, nil, 1, 1},
		{"the same artifact reloaded", s, b, 1, 1},
		{"after a restart", restarted, nil, 1, 1},
		{"a newer artifact", restarted, newer, 0, 0},
	} {
		if tc.b != nil {
			if err := tc.s.Load(tc.b); err != nil {
				t.Fatal(err)
			}
		}
		if info, _ := tc.s.Info(); info.Catalog.Updated != tc.updated || info.Catalog.Deleted != tc.deleted {
			t.Errorf("%s: %+v, want %d updated, %d deleted", tc.name, info.Catalog, tc.updated, tc.deleted)
		}
	}
}

// TestCatalogReplayLatestOnly: replay depends on the latest entry per
// movie alone (s.latest), so a journal compacted to those entries serves
// the same catalogue as the whole journal, under the artifact it was
// written over, a newer one that supersedes some of the entries, and an
// older one (a rollback) that supersedes none. catalog.Open's compaction
// relies on this.
func TestCatalogReplayLatestOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bundle := func(version string, created time.Time) *artifact.Bundle {
		b := testBundle(t, version, 60, 31)
		b.Manifest.CreatedAt = created
		return b
	}
	base := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	minute := 0
	j := &memJournal{now: func() time.Time { minute++; return base.Add(time.Duration(minute) * time.Minute) }}
	s := newService(t, "exact")
	if err := s.Load(bundle("v1", base)); err != nil {
		t.Fatal(err)
	}
	s.AttachJournal(j, nil)
	const seed = 41
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range 600 {
		id := movielens.MovieID(10 * (1 + rng.IntN(30))) // artifact movies (testBundle's ids are 10, 20, …)
		if rng.IntN(2) == 0 {
			id += 5000 // new movies
		}
		if rng.IntN(4) == 0 {
			if _, err := s.DeleteMovie(ctx, id); err != nil && !errors.As(err, new(*UnknownMovieError)) {
				t.Fatal(err)
			}
			continue
		}
		m := Movie{MovieID: id, Title: fmt.Sprintf("Take %d", i), Genres: []string{testGenres[rng.IntN(len(testGenres))]}, Year: 1990 + rng.IntN(30)}
		if _, err := s.PutMovie(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	all := j.all()
	last := map[movielens.MovieID]uint64{}
	for _, e := range all {
		last[e.MovieID] = e.Seq
	}
	var latest []catalog.Entry
	for _, e := range all {
		if last[e.MovieID] == e.Seq {
			latest = append(latest, e)
		}
	}
	if len(latest) > len(all)/5 {
		t.Fatalf("seed %d: %d latest entries of %d: too few overwritten to test", seed, len(latest), len(all))
	}
	state := func(s *Service) string {
		res, err := s.Recall(ctx, Request{K: 200})
		if err != nil {
			t.Fatal(err)
		}
		mr, _ := s.Movies("", 0, 200)
		info, _ := s.Info()
		return fmt.Sprintf("%d %+v %v %v", info.Movies, info.Catalog, res.Items, mr.Movies)
	}
	whole, compacted := newService(t, "exact"), newService(t, "exact")
	whole.AttachJournal(nil, all)
	compacted.AttachJournal(nil, latest)
	middle := all[len(all)/2].At
	for _, b := range []*artifact.Bundle{
		bundle("v1", base),                              // the artifact the changes were made over
		bundle("v2", middle),                            // newer than half of them
		bundle("v0", base.Add(-24*time.Hour)),           // a rollback to an older one
		bundle("v3", all[len(all)-1].At.Add(time.Hour)), // newer than all
	} {
		if err := whole.Load(b); err != nil {
			t.Fatal(err)
		}
		if err := compacted.Load(b); err != nil {
			t.Fatal(err)
		}
		if got, want := state(compacted), state(whole); got != want {
			t.Fatalf("seed %d, artifact %s: latest entries only:\n%s\nwhole journal:\n%s", seed, b.Manifest.Version, got, want)
		}
	}
}

// TestPutUnchanged: a PUT of a movie live exactly as sent (title, genres in
// order, year) writes nothing and leaves the overlay as it was, whether
// the live version is the artifact's or a change's: a catalogue re-sent in
// full every night moves only what changed. Any difference, genre order
// included, is a change.
func TestPutUnchanged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, b := loadedService(t, "exact", "v1", 60, 3)
	j := &memJournal{}
	s.AttachJournal(j, nil)
	mv := b.Movies[4]
	put := func(m Movie) PutResult {
		t.Helper()
		res, err := s.PutMovie(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	same := Movie{MovieID: mv.ID, Title: mv.Title, Genres: mv.Genres, Year: mv.Year}
	before, _ := s.Info()
	for i := range 3 {
		if res := put(same); res.Changed || res.Created || res.Seq != 0 || res.Movie.Title != mv.Title || res.VectorNorm == 0 {
			t.Fatalf("send %d of the artifact's movie as it is: %+v, want unchanged at seq 0", i, res)
		}
	}
	if info, _ := s.Info(); len(j.all()) != 0 || info.Catalog != before.Catalog {
		t.Fatalf("%d journal entries, catalogue %+v; want none, %+v", len(j.all()), info.Catalog, before.Catalog)
	}
	added := Movie{MovieID: 90_001, Title: "New (2024)", Genres: []string{"Drama", "Comedy"}, Year: 2024}
	if res := put(added); !res.Changed || !res.Created || res.Seq != 1 {
		t.Fatalf("a new movie: %+v", res)
	}
	if res := put(added); res.Changed || res.Created || res.Seq != 1 {
		t.Fatalf("the new movie sent again: %+v, want unchanged at seq 1", res)
	}
	lower := added
	lower.Genres = []string{"drama", "comedy"} // the catalogue's spelling is stored
	if res := put(lower); res.Changed {
		t.Fatalf("the new movie in other case: %+v, want unchanged", res)
	}
	for _, m := range []Movie{
		{MovieID: added.MovieID, Title: added.Title, Genres: []string{"Comedy", "Drama"}, Year: 2024},
		{MovieID: added.MovieID, Title: added.Title, Genres: []string{"Comedy", "Drama"}, Year: 2023},
		{MovieID: mv.ID, Title: mv.Title + " (director's cut)", Genres: mv.Genres, Year: mv.Year},
	} {
		if res := put(m); !res.Changed || res.Created {
			t.Errorf("%+v: %+v, want changed", m, res)
		}
	}
	if n := len(j.all()); n != 4 {
		t.Errorf("%d journal entries, want 4", n)
	}
	if _, err := s.DeleteMovie(ctx, mv.ID); err != nil {
		t.Fatal(err)
	}
	if res := put(same); !res.Changed || !res.Created {
		t.Errorf("a deleted movie sent again: %+v, want created", res)
	}
}

// TestPutKeepsTrainedPopularity: for a model with the popularity feature, a
// PUT of a movie the model was trained on keeps the popularity bucket
// training gave it (found by the vector it reproduces), and where no bucket
// reproduces the artifact's vector, the bucket of its ratings in the
// stored histories; a new movie has no ratings.
func TestPutKeepsTrainedPopularity(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 1))
	var users []movielens.User
	for i := 1; i <= 20; i++ {
		users = append(users, movielens.User{ID: movielens.UserID(i), Gender: "F", Age: 25, Occupation: "programmer", Zip: "94043"})
	}
	var movies []movielens.Movie
	var train []movielens.Rating
	seen := make([][]int32, len(users))
	for i := range 40 {
		movies = append(movies, movielens.Movie{ID: movielens.MovieID(i + 1), Title: fmt.Sprintf("Movie %d (1990)", i+1), Year: 1990, Genres: []string{testGenres[i%len(testGenres)]}})
		for u := range i % 17 { // 0 to 16 ratings: buckets 0 to 5
			train = append(train, movielens.Rating{User: users[u].ID, Movie: movies[i].ID, Value: 4})
			if u%2 == 0 { // the stored histories hold half: their buckets differ from training's
				seen[u] = append(seen[u], int32(i))
			}
		}
	}
	uf, mf := feature.UserFields(), feature.AllMovieFields()
	enc, err := feature.Fit(uf, mf, users, movies, train)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tower.New(tower.Config{Dim: 8, Hidden: []int{16}, Normalize: true, UserEmbed: []int{4, 2, 2, 2, 2}, MovieEmbed: []int{4, 2, 2, 4}},
		enc.VocabSizes(uf), enc.VocabSizes(mf), rand.New(rand.NewPCG(5, 2)))
	if err != nil {
		t.Fatal(err)
	}
	b := &artifact.Bundle{Model: m, Encoder: enc, Seen: seen, Vectors: make([]float32, len(movies)*8),
		Manifest: artifact.Manifest{Version: "v1", Objective: "softmax", Dim: 8, Fields: artifact.Fields{User: uf, Movie: mf}}}
	for i, mv := range movies {
		b.Movies = append(b.Movies, artifact.Movie{ID: mv.ID, Title: mv.Title, Genres: mv.Genres, Year: mv.Year})
		in := feature.FromMovie(mv)
		in.Ratings = i % 17
		m.MovieVector(b.Vectors[i*8:(i+1)*8], enc.EncodeMovie(in))
	}
	for _, u := range users {
		b.Users = append(b.Users, u.ID)
	}
	// Movie 30 (index 29, 12 ratings in training) holds a vector no bucket
	// gives: its ratings are counted in the histories, 6.
	const odd = 29
	b.Vectors[odd*8] += 0.01
	s := newService(t, "exact")
	if err := s.Load(b); err != nil {
		t.Fatal(err)
	}
	s.AttachJournal(&memJournal{}, nil)
	ctx := context.Background()
	want := func(id movielens.MovieID, genres []string, ratings int) []float32 {
		vec := make([]float32, 8)
		m.MovieVector(vec, enc.EncodeMovie(feature.MovieInput{MovieID: strconv.Itoa(int(id)), Genres: genres, Year: 1990, Ratings: ratings}))
		return vec
	}
	for _, i := range []int{0, 1, 5, 16, 20, odd, rng.IntN(len(movies))} {
		genres := []string{testGenres[(i+1)%len(testGenres)]} // changed, so the movie is encoded again
		if _, err := s.PutMovie(ctx, Movie{MovieID: movies[i].ID, Title: movies[i].Title, Genres: genres, Year: 1990}); err != nil {
			t.Fatal(err)
		}
		v := s.live.Load()
		g, _ := v.find(movies[i].ID)
		ratings := i % 17
		if i == odd {
			ratings = 6
		}
		if got, w := v.vectorOf(g), want(movies[i].ID, genres, ratings); !slices.Equal(got, w) {
			t.Errorf("movie %d (%d ratings) put with new genres: vector %v, want %v", movies[i].ID, ratings, got, w)
		}
	}
	if _, err := s.PutMovie(ctx, Movie{MovieID: 500, Title: "New (1990)", Genres: []string{testGenres[0]}, Year: 1990}); err != nil {
		t.Fatal(err)
	}
	v := s.live.Load()
	g, _ := v.find(500)
	if got, w := v.vectorOf(g), want(500, []string{testGenres[0]}, 0); !slices.Equal(got, w) {
		t.Errorf("a new movie: vector %v, want %v (no ratings)", got, w)
	}
}

// TestReplayUpdatesScale: replaying journal entries that update (or
// delete) the artifact's movies hides each in one bit set, instead of a
// copy of the artifact-sized bit set per entry: at 1,000,000 movies that
// copy was 125 KB an entry, and 4,500 updates made a load's replay (and the
// overlay's compaction, which runs under the writers' lock) 0.17–0.29 s
// against the ~65 ms of 10,000 added movies (found by a 1M-movie QA
// pass). A replayed update must allocate less than one such copy.
func TestReplayUpdatesScale(t *testing.T) {
	const n, updates = 100_000, 2_000
	s, b := loadedService(t, "exact", "v1", n, 1)
	var entries []catalog.Entry
	for i := range updates {
		mv := b.Movies[i*(n/updates)]
		op, title := catalog.OpPut, "Updated "+mv.Title
		if i%4 == 3 {
			op, title = catalog.OpDelete, ""
		}
		e := catalog.Entry{Seq: uint64(i + 1), At: time.Now(), Op: op, MovieID: mv.ID, Title: title, Year: mv.Year}
		if op == catalog.OpPut {
			e.Genres = mv.Genres
		}
		entries = append(entries, e)
	}
	s.AttachJournal(&memJournal{entries: slices.Clone(entries)}, entries) // replays over the loaded model
	var before, after runtime.MemStats
	s.catMu.Lock()
	runtime.ReadMemStats(&before)
	st := s.replay(s.pending.snap)
	runtime.ReadMemStats(&after)
	replayed := s.pending
	s.catMu.Unlock()
	if st.Applied != updates {
		t.Fatalf("replay: %+v, want %d applied", st, updates)
	}
	perEntry := float64(after.TotalAlloc-before.TotalAlloc) / updates
	t.Logf("SCALE replay of %d updates over %d movies: %.2f s, %.0f bytes an entry", updates, n, st.Seconds, perEntry)
	if copyBytes := float64(n / 8); perEntry >= copyBytes {
		t.Errorf("a replayed update allocates %.0f bytes, at least a copy of the artifact's bit set (%.0f)", perEntry, copyBytes)
	}
	info, _ := s.Info()
	if want := n - updates/4; info.Movies != want || info.Catalog.Updated != updates*3/4 || info.Catalog.Deleted != updates/4 {
		t.Errorf("after the replay: %d movies, %+v; want %d", info.Movies, info.Catalog, want)
	}
	// Changes after the replay copy the hidden set again: the replay's
	// overlay is published and its readers must not see later ones. The
	// change applies over s.pending, the overlay this replay made (as
	// compact's does), not over the one AttachJournal's replay published.
	if _, err := s.PutMovie(context.Background(), Movie{MovieID: b.Movies[1].ID, Title: "Later", Genres: b.Movies[1].Genres}); err != nil {
		t.Fatal(err)
	}
	if !replayed.ov.baseAccepts(1) {
		t.Error("a change after the replay hid a movie in the replayed overlay that readers hold")
	}
	if s.live.Load().ov.baseAccepts(1) {
		t.Error("the change after the replay did not hide the artifact's version of the movie")
	}
}

// TestPagingAcrossChanges pins what offset paging does when the catalogue
// or the model changes between two pages (openapi.yaml, RecallRequest
// offset, says so): each page is its own search of the live catalogue, so
// a movie put above the first page's end repeats that page's last movie
// on the next, a movie deleted from the first page makes the next skip
// one, and neither changes ModelVersion; a reload does. Excluding the
// movies already shown (offset 0) instead neither repeats nor skips.
// Found by a frontend QA pass of an infinite-scroll row.
func TestPagingAcrossChanges(t *testing.T) {
	t.Parallel()
	s, b := loadedService(t, "exact", "v1", 300, 5)
	s.AttachJournal(&memJournal{}, nil)
	ctx := context.Background()
	user := User{UserInput: feature.UserInput{Gender: "F", Age: 25}}
	page := func(offset int, exclude ...movielens.MovieID) Result {
		t.Helper()
		res, err := s.Recall(ctx, Request{User: user, K: 10, Offset: offset, ExcludeMovieIDs: exclude})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	movie := func(id movielens.MovieID) Movie {
		i := slices.IndexFunc(b.Movies, func(m artifact.Movie) bool { return m.ID == id })
		if i < 0 {
			t.Fatalf("movie %d not in the bundle", id)
		}
		return movieOf(&b.Movies[i])
	}
	// Unchanged, the pages are the single request's items.
	full, _ := s.Recall(ctx, Request{User: user, K: 20})
	if got := append(itemIDs(page(0).Items), itemIDs(page(10).Items)...); !slices.Equal(got, itemIDs(full.Items)) {
		t.Fatalf("pages %v, single request %v", got, itemIDs(full.Items))
	}

	// A movie that ranks first arrives between the pages.
	top := full.Items[0].MovieID
	if _, err := s.DeleteMovie(ctx, top); err != nil {
		t.Fatal(err)
	}
	p1 := page(0)
	if _, err := s.PutMovie(ctx, movie(top)); err != nil {
		t.Fatal(err)
	}
	p2 := page(p1.NextOffset)
	if p2.Items[0].MovieID != p1.Items[9].MovieID || p2.ModelVersion != p1.ModelVersion {
		t.Errorf("a PUT between pages: page 2 starts with %d, want page 1's last %d repeated; versions %s, %s",
			p2.Items[0].MovieID, p1.Items[9].MovieID, p1.ModelVersion, p2.ModelVersion)
	}
	if shown := itemIDs(p1.Items); !slices.Contains(itemIDs(page(0, shown...).Items), top) {
		t.Errorf("excluding the shown movies does not bring the new first movie")
	}

	// A movie of page 1 is deleted between the pages.
	p1 = page(0)
	before := itemIDs(page(10).Items)
	if _, err := s.DeleteMovie(ctx, p1.Items[3].MovieID); err != nil {
		t.Fatal(err)
	}
	p2 = page(p1.NextOffset)
	if p2.Items[0].MovieID != before[1] || p2.ModelVersion != p1.ModelVersion {
		t.Errorf("a DELETE between pages: page 2 starts with %d, want %d (%d skipped)", p2.Items[0].MovieID, before[1], before[0])
	}
	if got := page(0, itemIDs(p1.Items)...); got.Items[0].MovieID != before[0] {
		t.Errorf("excluding the shown movies skips %d", before[0])
	}

	// A reload between the pages changes the version.
	if err := s.Load(testBundle(t, "v2", 300, 6)); err != nil {
		t.Fatal(err)
	}
	if p2 = page(p1.NextOffset); p2.ModelVersion == p1.ModelVersion {
		t.Errorf("a reload between pages: model_version %s on both", p1.ModelVersion)
	}
}

// replayEntries returns n journal entries that add movies the artifact
// does not have, one or two genres each.
func replayEntries(n int) []catalog.Entry {
	entries := make([]catalog.Entry, n)
	for i := range entries {
		g := []string{testGenres[i%len(testGenres)]}
		if h := testGenres[(i/len(testGenres)+i+1)%len(testGenres)]; i%2 == 0 && h != g[0] {
			g = append(g, h)
		}
		entries[i] = catalog.Entry{Seq: uint64(i + 1), At: time.Now(), Op: catalog.OpPut, MovieID: movielens.MovieID(1_000_000 + i),
			Title: "Added " + strconv.Itoa(i), Genres: g, Year: 2000 + i%25}
	}
	return entries
}

// replayAllocs returns the bytes a replay of entries allocates per entry.
func replayAllocs(t *testing.T, s *Service, entries []catalog.Entry) float64 {
	t.Helper()
	s.AttachJournal(&memJournal{entries: slices.Clone(entries)}, entries)
	var before, after runtime.MemStats
	s.catMu.Lock()
	runtime.ReadMemStats(&before)
	st := s.replay(s.pending.snap)
	runtime.ReadMemStats(&after)
	s.catMu.Unlock()
	if st.Applied != len(entries) {
		t.Fatalf("replay: %+v, want %d applied", st, len(entries))
	}
	perEntry := float64(after.TotalAlloc-before.TotalAlloc) / float64(len(entries))
	t.Logf("SCALE replay of %d added movies: %.3f s, %.0f bytes an entry", len(entries), st.Seconds, perEntry)
	return perEntry
}

// TestReplayScalesLinearly: a replay (every load, every overlay compaction,
// under the writers' lock) must cost the same per entry however many
// entries the journal holds. It copied the overlay's live bit set, each of
// the movie's genre bit sets and an id-map shard for every entry, all of
// which grow with the rows before it: 100,000 entries (a 100,000-movie
// catalogue sent twice) took 2.1–4.0 s at a reload, PUTs waiting behind it
// past the request timeout (504s). Found by a performance QA pass.
func TestReplayScalesLinearly(t *testing.T) {
	s, _ := loadedService(t, "exact", "v1", 500, 1)
	small := replayAllocs(t, s, replayEntries(1_000))
	large := replayAllocs(t, s, replayEntries(40_000))
	if large > 2*small {
		t.Errorf("a replayed entry allocates %.0f bytes among 40,000 entries but %.0f among 1,000: the replay copies what grows with the overlay per entry", large, small)
	}
	// The replay's overlay is published: a change after it must not
	// touch it (its readers hold it).
	replayed := s.pending
	live := replayed.ov.live.Accepts(0)
	first := replayed.ov.rows[0].movie
	if _, err := s.PutMovie(context.Background(), Movie{MovieID: first.ID, Title: "Later", Genres: []string{testGenres[0]}}); err != nil {
		t.Fatal(err)
	}
	if replayed.ov.live.Accepts(0) != live || !live {
		t.Error("a change after the replay changed the replayed overlay that readers hold")
	}
	if r, ok := replayed.ov.ids.get(first.ID); !ok || r != 0 {
		t.Errorf("a change after the replay moved movie %d in the replayed overlay's id index: row %d, %v", first.ID, r, ok)
	}
	for g, f := range replayed.ov.genres {
		if g == strings.ToLower(testGenres[0]) && len(f)*64 > len(replayed.ov.rows)+63 {
			t.Errorf("genre %s's bit set of the replayed overlay grew past its rows", g)
		}
	}
	if _, ok := s.live.Load().ov.ids.get(first.ID); !ok {
		t.Error("the change after the replay is not live")
	}
}

// BenchmarkReplay times a replay of n journal entries (added movies):
// what every load and every overlay compaction pays under the writers'
// lock.
func BenchmarkReplay(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			s, _ := loadedService(b, "exact", "v1", 3706, 1)
			entries := replayEntries(n)
			s.AttachJournal(&memJournal{entries: slices.Clone(entries)}, entries)
			b.ReportAllocs()
			for b.Loop() {
				s.catMu.Lock()
				s.replay(s.pending.snap)
				s.catMu.Unlock()
			}
		})
	}
}
