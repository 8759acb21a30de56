package server

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/catalog"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/recall"
	"github.com/towerrecall/towerrecall/internal/tower"
)

// The soak: every read endpoint, catalogue writers and model reloads at
// once, against a real recall.Service behind the HTTP handler, with an
// invariant checked on every answer. It runs for soakDefault under go test
// (CI runs it under -race); TOWERRECALL_SOAK=5m runs it longer, and
// TOWERRECALL_SOAK_INDEX picks the index (exact by default; hnsw, auto).

const soakDefault = 1500 * time.Millisecond

// Genres of the soak artifacts: most shared, one only v1 has, one only v2.
var soakCommon = []string{"Action", "Comedy", "Drama", "Romance"}

// soakBundle is an artifact of dim-dimensional vectors over the movies
// 10·first … 10·(first+n−1), of soakCommon's genres and one more, and 50
// users whose histories are its first ten movies; the towers are randomly
// initialised.
func soakBundle(t testing.TB, version, genre string, first, n, dim int, seed uint64) *artifact.Bundle {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	genres := append(slices.Clone(soakCommon), genre)
	var users []movielens.User
	var movies []movielens.Movie
	var train []movielens.Rating
	for i := 1; i <= 50; i++ {
		users = append(users, movielens.User{ID: movielens.UserID(i), Gender: []string{"F", "M"}[i%2], Age: 18 + i%40, Occupation: movielens.Occupations()[i%21], Zip: fmt.Sprintf("%05d", i*997)})
	}
	for i := first; i < first+n; i++ {
		g := []string{genres[rng.IntN(len(genres))]}
		if h := genres[rng.IntN(len(genres))]; rng.IntN(3) == 0 && h != g[0] {
			g = append(g, h)
		}
		movies = append(movies, movielens.Movie{ID: movielens.MovieID(i * 10), Title: fmt.Sprintf("Movie %d", i), Year: 1950 + i%50, Genres: g})
		train = append(train, movielens.Rating{User: movielens.UserID(1 + i%50), Movie: movielens.MovieID(i * 10), Value: 4})
	}
	uf, mf := feature.UserFields(), feature.MovieFields()
	enc, err := feature.Fit(uf, mf, users, movies, train)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tower.Config{Dim: dim, Hidden: []int{16}, Normalize: true, UserEmbed: []int{4, 2, 2, 2, 2}, MovieEmbed: []int{4, 2, 2}}
	m, err := tower.New(cfg, enc.VocabSizes(uf), enc.VocabSizes(mf), rand.New(rand.NewPCG(seed, 2)))
	if err != nil {
		t.Fatal(err)
	}
	b := &artifact.Bundle{Model: m, Encoder: enc, Vectors: make([]float32, n*dim)}
	for i, mv := range movies {
		b.Movies = append(b.Movies, artifact.Movie{ID: mv.ID, Title: mv.Title, Genres: mv.Genres, Year: mv.Year})
		m.MovieVector(b.Vectors[i*dim:(i+1)*dim], enc.EncodeMovie(feature.FromMovie(mv)))
	}
	for _, u := range users {
		b.Users = append(b.Users, u.ID)
		b.Seen = append(b.Seen, []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	}
	b.Manifest = artifact.Manifest{Version: version, Objective: "softmax", Dim: dim, CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Fields: artifact.Fields{User: uf, Movie: mf}}
	return b
}

// withPrior gives b (a bundle of its own: its model is changed) a
// popularity prior in an extra last dimension, as the prior command
// publishes one: the same towers and movies, a new version.
func withPrior(b *artifact.Bundle, version string) *artifact.Bundle {
	d := b.Manifest.Dim + 1
	b.Model.SetPrior(&tower.Prior{Weight: 1, ColdWeight: 0.5, DefaultBias: -1})
	b.Prior = &artifact.Prior{Weight: 1, ColdWeight: 0.5, DefaultBias: -1, Bias: make([]float32, len(b.Movies))}
	b.Vectors = make([]float32, len(b.Movies)*d)
	for i, mv := range b.Movies {
		in := feature.MovieInput{MovieID: strconv.Itoa(int(mv.ID)), Genres: mv.Genres, Year: mv.Year}
		b.Model.MovieVector(b.Vectors[i*d:(i+1)*d], b.Encoder.EncodeMovie(in))
		b.Prior.Bias[i] = float32(i%7)/4 - 0.75
		b.Vectors[i*d+d-1] = b.Prior.Bias[i]
	}
	b.Manifest.Dim, b.Manifest.Version = d, version
	return b
}

// soakMovie is what the writers know of one movie they own: a seqlock
// (odd while a change of it is in flight; readers compare it around two
// requests to know the movie did not change between them) and whether
// it is deleted, with the tick at which its DELETE was answered.
type soakMovie struct {
	changes   atomic.Int64
	deletedAt atomic.Int64 // >0: deleted (answered 200) at that tick, and no PUT since began; 0: live or unknown
	// tracked: every artifact has the movie or none does, so whether it
	// is live does not depend on the model serving; live says whether it
	// is (set by its writer while changes is odd).
	tracked bool
	live    atomic.Bool
}

type soak struct {
	t        *testing.T
	h        http.Handler
	token    string
	clock    atomic.Int64 // ticks: a reader's tick later than a DELETE's was taken after the DELETE was answered
	movies   map[movielens.MovieID]*soakMovie
	owned    [][]movielens.MovieID // per writer
	universe []movielens.MovieID   // every id the readers ask about
	seen     map[string]map[movielens.MovieID]bool
	versions map[string]bool
	checks   atomic.Int64 // score-against-recall comparisons made
	failed   atomic.Bool
}

func (s *soak) errorf(format string, args ...any) {
	if s.failed.CompareAndSwap(false, true) || testing.Verbose() {
		s.t.Errorf(format, args...)
	}
}

// do sends one request through the whole handler and returns its status
// and body.
func (s *soak) do(method, path string, body any) (int, []byte) {
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method == http.MethodPut || method == http.MethodDelete {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, req)
	if w.Code >= 500 {
		s.errorf("%s %s: %d %s", method, path, w.Code, w.Body.String())
	}
	return w.Code, w.Body.Bytes()
}

// deleted reports whether movie id was deleted (DELETE answered) before
// tick t0 and no PUT of it has begun since.
func (s *soak) deleted(id movielens.MovieID, t0 int64) bool {
	m, ok := s.movies[id]
	if !ok {
		return false
	}
	d := m.deletedAt.Load()
	return d > 0 && d < t0
}

func (s *soak) version(what, v string) {
	if !s.versions[v] {
		s.errorf("%s: model_version %q was never loaded", what, v)
	}
}

// checkItems checks a page of recalled or similar movies: sorted by score,
// no movie twice, none deleted before t0, none refused by the request.
func (s *soak) checkItems(what string, t0 int64, items []itemJSON, refuse func(itemJSON) string) {
	ids := map[movielens.MovieID]bool{}
	for i, it := range items {
		if i > 0 && !(items[i-1].Score >= it.Score) {
			s.errorf("%s: item %d (movie %d, %v) scores above item %d (%v)", what, i, it.MovieID, it.Score, i-1, items[i-1].Score)
		}
		if ids[it.MovieID] {
			s.errorf("%s: movie %d twice in one page", what, it.MovieID)
		}
		ids[it.MovieID] = true
		if s.deleted(it.MovieID, t0) {
			s.errorf("%s: movie %d answered after its DELETE", what, it.MovieID)
		}
		if why := refuse(it); why != "" {
			s.errorf("%s: movie %d: %s", what, it.MovieID, why)
		}
	}
}

// randomRecall is a valid /recall body: a known, cold or recent-history
// user, a page, a genre filter (sometimes a genre only one artifact has),
// exclusions.
func (s *soak) randomRecall(rng *rand.Rand) map[string]any {
	user := map[string]any{}
	switch rng.IntN(3) {
	case 0:
		user["user_id"] = 1 + rng.IntN(60) // 51..60 are nobody's
	case 1:
		user["gender"], user["age"] = []string{"F", "M"}[rng.IntN(2)], 15+rng.IntN(60)
	}
	if rng.IntN(2) == 0 {
		user["recent_movie_ids"] = s.someIDs(rng, 1+rng.IntN(8))
	}
	body := map[string]any{"user": user, "k": 1 + rng.IntN(40)}
	if rng.IntN(2) == 0 {
		body["offset"] = rng.IntN(400)
	}
	if rng.IntN(3) == 0 {
		g := []string{soakCommon[rng.IntN(len(soakCommon))]}
		if rng.IntN(4) == 0 {
			g = append(g, []string{"horror", "Western"}[rng.IntN(2)])
		}
		body["genres"] = g
	}
	if rng.IntN(3) == 0 {
		body["exclude_movie_ids"] = s.someIDs(rng, 1+rng.IntN(20))
	}
	if rng.IntN(8) == 0 {
		body["exclude_seen"] = false
	}
	return body
}

func (s *soak) someIDs(rng *rand.Rand, n int) []movielens.MovieID {
	out := make([]movielens.MovieID, 0, n)
	for len(out) < n {
		if id := s.universe[rng.IntN(len(s.universe))]; !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// checkRecall checks one /recall answer to body, asked at tick t0, and
// then /score for the same user and its movies: under the same model
// version, a movie no writer touched meanwhile scores the same to the bit.
func (s *soak) checkRecall(what string, t0 int64, body map[string]any, res recallResponse, before []int64) {
	s.version(what, res.ModelVersion)
	k, _ := body["k"].(int)
	offset, _ := body["offset"].(int)
	if len(res.Items) > k {
		s.errorf("%s: %d items for k %d", what, len(res.Items), k)
	}
	if res.NextOffset != 0 && (res.NextOffset != offset+k || len(res.Items) != k) {
		s.errorf("%s: next_offset %d after %d items at offset %d, k %d", what, res.NextOffset, len(res.Items), offset, k)
	}
	user := body["user"].(map[string]any)
	refused := map[movielens.MovieID]string{}
	if ids, ok := body["exclude_movie_ids"].([]movielens.MovieID); ok {
		for _, id := range ids {
			refused[id] = "excluded"
		}
	}
	excludeSeen := body["exclude_seen"] == nil
	if ids, ok := user["recent_movie_ids"].([]movielens.MovieID); ok && excludeSeen {
		for _, id := range ids {
			refused[id] = "a recent movie"
		}
	}
	if uid, ok := user["user_id"].(int); ok && uid <= 50 && excludeSeen {
		for id := range s.seen[res.ModelVersion] {
			refused[id] = "seen in training"
		}
	}
	genres, _ := body["genres"].([]string)
	s.checkItems(what, t0, res.Items, func(it itemJSON) string {
		if why := refused[it.MovieID]; why != "" {
			return why
		}
		if len(genres) > 0 && !slices.ContainsFunc(it.Genres, func(g string) bool {
			return slices.ContainsFunc(genres, func(h string) bool { return strings.EqualFold(g, h) })
		}) {
			return fmt.Sprintf("genres %v, none of %v", it.Genres, genres)
		}
		return ""
	})
	if len(res.Items) == 0 {
		return
	}
	ids := make([]movielens.MovieID, len(res.Items))
	for i, it := range res.Items {
		ids[i] = it.MovieID
	}
	code, raw := s.do(http.MethodPost, "/score", map[string]any{"user": user, "movie_ids": ids})
	if code != http.StatusOK {
		s.errorf("%s: score: %d %s", what, code, raw)
		return
	}
	var sc scoreResponse
	if err := json.Unmarshal(raw, &sc); err != nil {
		s.errorf("%s: score: %v", what, err)
		return
	}
	s.version(what+": score", sc.ModelVersion)
	if sc.ModelVersion != res.ModelVersion {
		return // a reload in between
	}
	got := map[movielens.MovieID]float32{}
	for _, x := range sc.Scores {
		got[x.MovieID] = x.Score
	}
	for _, it := range res.Items {
		if m := s.movies[it.MovieID]; m != nil {
			if c := m.changes.Load(); c%2 == 1 || c != before[slices.Index(s.universe, it.MovieID)] {
				continue // changed meanwhile
			}
		}
		x, ok := got[it.MovieID]
		switch {
		case !ok:
			s.errorf("%s: movie %d recalled, then unknown to /score under %s with no change in between", what, it.MovieID, res.ModelVersion)
		case math.Float32bits(x) != math.Float32bits(it.Score):
			s.errorf("%s: movie %d: /recall %v, /score %v under %s", what, it.MovieID, it.Score, x, res.ModelVersion)
		default:
			s.checks.Add(1)
		}
	}
}

// checkTracked asks /score about every tracked movie: one that no writer
// changed since before (the seqlocks before the request) is live exactly
// when its writer says so, whatever model serves.
func (s *soak) checkTracked(before []int64) {
	var ids []movielens.MovieID
	for _, id := range s.universe {
		if m := s.movies[id]; m != nil && m.tracked {
			ids = append(ids, id)
		}
	}
	code, raw := s.do(http.MethodPost, "/score", map[string]any{"user": map[string]any{"user_id": 7}, "movie_ids": ids})
	var res scoreResponse
	if code != http.StatusOK || json.Unmarshal(raw, &res) != nil {
		s.errorf("score of the tracked movies: %d %s", code, raw)
		return
	}
	s.version("score", res.ModelVersion)
	for _, id := range ids {
		// A seqlock read: live first, then the count, which has not
		// moved since before only if live has not either.
		m := s.movies[id]
		live := m.live.Load()
		if c := m.changes.Load(); c%2 == 1 || c != before[slices.Index(s.universe, id)] {
			continue
		}
		if known := !slices.Contains(res.UnknownMovieIDs, id); known != live {
			s.errorf("movie %d: /score under %s says live %v, its writer %v", id, res.ModelVersion, known, live)
		}
	}
}

// changes reads every movie's seqlock, in universe order.
func (s *soak) changes() []int64 {
	out := make([]int64, len(s.universe))
	for i, id := range s.universe {
		if m := s.movies[id]; m != nil {
			out[i] = m.changes.Load()
		}
	}
	return out
}

// reader sends random read requests until stop is closed.
func (s *soak) reader(seed uint64, stop <-chan struct{}) (n int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	for ; ; n++ {
		select {
		case <-stop:
			return n
		default:
		}
		if s.failed.Load() {
			return n
		}
		before := s.changes()
		t0 := s.clock.Add(1)
		switch op := rng.IntN(12); {
		case op < 4:
			body := s.randomRecall(rng)
			code, raw := s.do(http.MethodPost, "/recall", body)
			if code == http.StatusBadRequest && body["genres"] != nil {
				continue // a genre the live model does not have
			}
			var res recallResponse
			if code != http.StatusOK || json.Unmarshal(raw, &res) != nil {
				s.errorf("recall %v: %d %s", body, code, raw)
				continue
			}
			s.checkRecall(fmt.Sprintf("recall %v", body), t0, body, res, before)
		case op < 6:
			bodies := make([]map[string]any, 1+rng.IntN(4))
			for i := range bodies {
				bodies[i] = s.randomRecall(rng)
			}
			code, raw := s.do(http.MethodPost, "/recall/batch", map[string]any{"requests": bodies})
			var res struct {
				Results []jsontext.Value `json:"results"`
			}
			if code != http.StatusOK || json.Unmarshal(raw, &res) != nil || len(res.Results) != len(bodies) {
				s.errorf("batch: %d %s", code, raw)
				continue
			}
			for i, r := range res.Results {
				var p problem
				if json.Unmarshal(r, &p) == nil && p.Status != 0 {
					if p.Status != http.StatusBadRequest || bodies[i]["genres"] == nil {
						s.errorf("batch entry %v: %s", bodies[i], r)
					}
					continue
				}
				var rr recallResponse
				if err := json.Unmarshal(r, &rr); err != nil {
					s.errorf("batch entry: %v", err)
					continue
				}
				s.checkRecall(fmt.Sprintf("batch entry %v", bodies[i]), t0, bodies[i], rr, before)
			}
		case op < 8:
			id := s.universe[rng.IntN(len(s.universe))]
			code, raw := s.do(http.MethodGet, fmt.Sprintf("/movies/%d/similar?k=%d", id, 1+rng.IntN(30)), nil)
			if code == http.StatusNotFound {
				continue
			}
			var res similarResponse
			if code != http.StatusOK || json.Unmarshal(raw, &res) != nil {
				s.errorf("similar %d: %d %s", id, code, raw)
				continue
			}
			s.version("similar", res.ModelVersion)
			if s.deleted(id, t0) {
				s.errorf("similar of %d answered after its DELETE", id)
			}
			s.checkItems(fmt.Sprintf("similar %d", id), t0, res.Items, func(it itemJSON) string {
				if it.MovieID == id {
					return "its own neighbour"
				}
				return ""
			})
		case op < 9:
			q := []string{"", "Movie", "Soak", "movie 1"}[rng.IntN(4)]
			code, raw := s.do(http.MethodGet, "/movies?limit=100&q="+strings.ReplaceAll(q, " ", "+"), nil)
			var res moviesResponse
			if code != http.StatusOK || json.Unmarshal(raw, &res) != nil {
				s.errorf("movies %q: %d %s", q, code, raw)
				continue
			}
			s.version("movies", res.ModelVersion)
			if res.Total < len(res.Movies) {
				s.errorf("movies %q: total %d, %d listed", q, res.Total, len(res.Movies))
			}
			ids := map[movielens.MovieID]bool{}
			for _, m := range res.Movies {
				if ids[m.MovieID] || s.deleted(m.MovieID, t0) {
					s.errorf("movies %q: movie %d listed twice or after its DELETE", q, m.MovieID)
				}
				ids[m.MovieID] = true
			}
		case op < 10:
			code, raw := s.do(http.MethodGet, "/metrics", nil)
			if code != http.StatusOK || !bytes.Contains(raw, []byte("towerrecall_catalog_changed_movies")) {
				s.errorf("metrics: %d %s", code, raw)
			}
		case op < 11:
			s.checkTracked(before)
		default:
			path := []string{"/model", "/readyz"}[rng.IntN(2)]
			code, raw := s.do(http.MethodGet, path, nil)
			var res struct {
				Version      string `json:"version"`
				ModelVersion string `json:"model_version"`
			}
			if code != http.StatusOK || json.Unmarshal(raw, &res) != nil {
				s.errorf("%s: %d %s", path, code, raw)
				continue
			}
			s.version(path, res.Version+res.ModelVersion)
		}
	}
}

// writer PUTs and DELETEs its own movies until stop is closed; some PUTs
// name a genre only one artifact has (400 under the other) or none has.
func (s *soak) writer(w int, stop <-chan struct{}) (n int) {
	rng := rand.New(rand.NewPCG(uint64(w), 11))
	genres := append(slices.Clone(soakCommon), "Horror", "Western", "Bogus")
	for ; ; n++ {
		select {
		case <-stop:
			return n
		default:
		}
		if s.failed.Load() {
			return n
		}
		id := s.owned[w][rng.IntN(len(s.owned[w]))]
		m := s.movies[id]
		m.changes.Add(1) // odd: in flight
		if rng.IntN(3) == 0 {
			s.delete(id, m)
		} else {
			g := []string{genres[rng.IntN(len(genres))]}
			if h := soakCommon[rng.IntN(len(soakCommon))]; rng.IntN(2) == 0 && h != g[0] {
				g = append(g, h)
			}
			s.put(id, m, g, fmt.Sprintf("Soak %d #%d", id, n), 1960+rng.IntN(60))
		}
		m.changes.Add(1)
	}
}

// delete sends DELETE /movies/{id} and checks the answer against what
// the writer knows, then that the movie is gone at once.
func (s *soak) delete(id movielens.MovieID, m *soakMovie) {
	code, raw := s.do(http.MethodDelete, fmt.Sprintf("/movies/%d", id), nil)
	if m.tracked && (code == http.StatusOK) != m.live.Load() {
		s.errorf("delete %d: %d, but it is live %v", id, code, m.live.Load())
	}
	switch code {
	case http.StatusOK:
		var res deleteMovieResponse
		if err := json.Unmarshal(raw, &res); err != nil || res.MovieID != id {
			s.errorf("delete %d: %v %s", id, err, raw)
		}
		s.version("delete", res.ModelVersion)
		m.deletedAt.Store(s.clock.Add(1))
		m.live.Store(false)
		if known, _ := s.known(id); known {
			s.errorf("delete %d answered, and /score still knows it", id)
		}
	case http.StatusNotFound: // not live under the model serving; a reload may bring an artifact's back
		m.deletedAt.Store(0)
	default:
		s.errorf("delete %d: %d %s", id, code, raw)
	}
}

// put sends PUT /movies/{id}; a genre only one artifact has (or none)
// may be refused. An answered PUT is visible at once.
func (s *soak) put(id movielens.MovieID, m *soakMovie, genres []string, title string, year int) {
	was := m.deletedAt.Swap(0) // a PUT begins: the movie may be live from now on
	code, raw := s.do(http.MethodPut, fmt.Sprintf("/movies/%d", id), map[string]any{"title": title, "genres": genres, "year": year})
	switch code {
	case http.StatusOK, http.StatusCreated:
		var res putMovieResponse
		if err := json.Unmarshal(raw, &res); err != nil || res.Movie.MovieID != id || res.Created != (code == http.StatusCreated) {
			s.errorf("put %d: %d %v %s", id, code, err, raw)
		}
		if m.tracked && res.Created == m.live.Load() {
			s.errorf("put %d: created %v, but it was live %v", id, res.Created, m.live.Load())
		}
		s.version("put", res.ModelVersion)
		m.live.Store(true)
		if known, v := s.known(id); !known {
			s.errorf("put %d answered, and /score under %s does not know it", id, v)
		}
		if code, raw := s.do(http.MethodGet, fmt.Sprintf("/movies/%d/similar?k=1", id), nil); code != http.StatusOK {
			s.errorf("put %d answered, and its neighbours are %d %s", id, code, raw)
		}
	case http.StatusBadRequest: // a genre the model serving does not have: nothing changed
		if !slices.ContainsFunc(genres, func(x string) bool { return !slices.Contains(soakCommon, x) }) {
			s.errorf("put %d %v: %s", id, genres, raw)
		}
		m.deletedAt.Store(was)
	default:
		s.errorf("put %d: %d %s", id, code, raw)
	}
}

// known asks /score whether movie id is live.
func (s *soak) known(id movielens.MovieID) (bool, string) {
	code, raw := s.do(http.MethodPost, "/score", map[string]any{"user": map[string]any{}, "movie_ids": []movielens.MovieID{id}})
	var res scoreResponse
	if code != http.StatusOK || json.Unmarshal(raw, &res) != nil {
		s.errorf("score %d: %d %s", id, code, raw)
		return false, ""
	}
	return len(res.Scores) == 1, res.ModelVersion
}

func soakDuration(t *testing.T) time.Duration {
	v := os.Getenv("TOWERRECALL_SOAK")
	if v == "" {
		return soakDefault
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("TOWERRECALL_SOAK=%q: %v", v, err)
	}
	return d
}

func TestSoak(t *testing.T) {
	index := os.Getenv("TOWERRECALL_SOAK_INDEX")
	if index == "" {
		index = "exact" // the cheapest loads: the most reloads in a short run
	}
	dur := soakDuration(t)
	opts := recall.Options{Index: index, MinRecall: 0.9, SelfCheckQueries: 20, HNSW: ann.DefaultHNSWParams(), Seed: 1}
	// v1: movies 10…2000, dim 8; v2: movies 1010…3000, dim 12; v1p: v1
	// with a popularity prior (dim 9), as the prior command publishes it.
	bundles := map[string]*artifact.Bundle{
		"v1":  soakBundle(t, "v1", "Horror", 1, 200, 8, 41),
		"v2":  soakBundle(t, "v2", "Western", 101, 200, 12, 42),
		"v1p": withPrior(soakBundle(t, "v1", "Horror", 1, 200, 8, 41), "v1p"),
	}
	reg := prometheus.NewRegistry() // the service's metrics on /metrics too
	svc, err := recall.New(opts, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Load(bundles["v1"]); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "soak.journal")
	j, _, err := catalog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() }) // the one open at the end
	svc.AttachJournal(j, nil)
	cfg := testConfig()
	cfg.RequestTimeout, cfg.WriteTimeout, cfg.CatalogToken = time.Minute, 2*time.Minute, "soak-token"
	srv, err := New(cfg, zerolog.Nop(), svc, reg)
	if err != nil {
		t.Fatal(err)
	}

	s := &soak{t: t, h: srv.Handler(), token: cfg.CatalogToken, movies: map[movielens.MovieID]*soakMovie{},
		seen: map[string]map[movielens.MovieID]bool{}, versions: map[string]bool{"v1": true, "v2": true, "v1p": true}}
	for v, b := range bundles {
		s.seen[v] = map[movielens.MovieID]bool{}
		for _, m := range b.Movies[:10] {
			s.seen[v][m.ID] = true
		}
	}
	for i := 1; i <= 300; i++ {
		s.universe = append(s.universe, movielens.MovieID(i*10))
	}
	// Each writer owns movies of v1 alone, of both, of v2 alone, and new
	// ones; the other movies are never changed.
	const writers, readers = 3, 4
	s.owned = make([][]movielens.MovieID, writers)
	for i, id := range s.universe {
		if i%10 == 5 {
			s.owned[i/10%writers] = append(s.owned[i/10%writers], id)
		}
	}
	for w := range writers {
		for k := range 8 {
			id := movielens.MovieID(5_000_000 + 100*w + k)
			s.owned[w] = append(s.owned[w], id)
			s.universe = append(s.universe, id)
		}
		for _, id := range s.owned[w] {
			m := &soakMovie{tracked: id >= 1010 && id <= 2000 || id > 3000} // in every artifact, or in none
			m.live.Store(id <= 3000)
			s.movies[id] = m
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads, writes, loads atomic.Int64
	for r := range readers {
		wg.Go(func() { reads.Add(int64(s.reader(uint64(r), stop))) })
	}
	for w := range writers {
		wg.Go(func() { writes.Add(int64(s.writer(w, stop))) })
	}
	// Two reloaders (a SIGHUP beside the manifest poll), each loading an
	// artifact other than the live one, now and then a broken one, which
	// is refused while the live model keeps serving.
	broken := soakBundle(t, "broken", "Horror", 1, 20, 8, 43)
	broken.Vectors = broken.Vectors[:8]
	var reloader sync.WaitGroup
	for r := range 2 {
		reloader.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 13))
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(10+rng.IntN(30)) * time.Millisecond):
				}
				if rng.IntN(8) == 0 {
					if err := svc.Load(broken); err == nil {
						s.errorf("a broken artifact loaded")
					}
					continue
				}
				info, _ := svc.Info()
				next := []string{"v1", "v2", "v1p"}[rng.IntN(3)]
				if next == info.Version {
					next = map[string]string{"v1": "v2", "v2": "v1p", "v1p": "v1"}[next]
				}
				if err := svc.Load(bundles[next]); err != nil {
					s.errorf("load %s: %v", next, err)
					return
				}
				loads.Add(1)
			}
		})
	}
	time.Sleep(dur)
	close(stop)
	wg.Wait()
	reloader.Wait()
	t.Logf("%v, index %s: %d reads, %d writes, %d loads, %d score/recall comparisons", dur, index, reads.Load(), writes.Load(), loads.Load(), s.checks.Load())
	if t.Failed() {
		return
	}
	if s.checks.Load() == 0 || writes.Load() == 0 || loads.Load() == 0 {
		t.Fatal("the soak checked nothing")
	}

	// The journal replayed over the live artifact is the live catalogue.
	info, _ := svc.Info()
	live := info.Version
	// Open compacts the journal when most of it is overridden lines.
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, rep, err := catalog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := recall.New(opts, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Load(bundles[live]); err != nil {
		t.Fatal(err)
	}
	fresh.AttachJournal(nil, rep.Entries)
	a, _ := svc.Info()
	b, _ := fresh.Info()
	if a.Version != live || a.Movies != b.Movies || a.Catalog.Added != b.Catalog.Added || a.Catalog.Updated != b.Catalog.Updated || a.Catalog.Deleted != b.Catalog.Deleted || a.Catalog.Seq != b.Catalog.Seq {
		t.Errorf("live %s: %d movies %+v; the journal replayed over %s: %d movies %+v", a.Version, a.Movies, a.Catalog, live, b.Movies, b.Catalog)
	}
	u := recall.User{UserInput: feature.UserInput{UserID: 3}}
	for i := 0; i < len(s.universe); i += recall.MaxScoreIDs {
		req := recall.ScoreRequest{User: u, MovieIDs: s.universe[i:min(i+recall.MaxScoreIDs, len(s.universe))]}
		x, err1 := svc.Score(t.Context(), req)
		y, err2 := fresh.Score(t.Context(), req)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if !slices.Equal(x.Unknown, y.Unknown) || !slices.EqualFunc(x.Scores, y.Scores, func(p, q recall.Score) bool {
			return p.MovieID == q.MovieID && math.Float32bits(p.Score) == math.Float32bits(q.Score)
		}) {
			t.Errorf("live catalogue and journal replay differ:\nlive   %v %v\nreplay %v %v", x.Scores, x.Unknown, y.Scores, y.Unknown)
		}
		for _, sc := range x.Scores {
			if s.deleted(sc.MovieID, math.MaxInt64) {
				t.Errorf("movie %d deleted last, but live at the end", sc.MovieID)
			}
		}
		for _, id := range req.MovieIDs {
			if m := s.movies[id]; m != nil && m.tracked && m.live.Load() == slices.Contains(x.Unknown, id) {
				t.Errorf("movie %d: live %v at the end, its writer says %v", id, !m.live.Load(), m.live.Load())
			}
		}
	}
}
