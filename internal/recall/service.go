package recall

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
)

// NoModelError is returned while no model has been loaded.
type NoModelError struct{}

func (NoModelError) Error() string { return "recall: no model is loaded" }

// NotReady marks the error as "no model" for the HTTP layer (503).
func (NoModelError) NotReady() bool { return true }

// Options configure a Service.
type Options struct {
	Index            string  // "auto" (HNSW when its self-check passes), "exact" or "hnsw"
	MinRecall        float64 // auto: the self-check recall@10 and @100 HNSW must reach
	SelfCheckQueries int
	HNSW             ann.HNSWParams
	Seed             uint64
	// MovieFragment, if set, is called once per movie when a model is
	// loaded; Item.Fragment carries its result. The HTTP layer keeps each
	// movie's pre-encoded JSON this way, so it is built once per model and
	// swapped together with it, not re-encoded on every request.
	MovieFragment func(artifact.Movie) []byte
}

// Service is the serving core. The live model is an immutable snapshot
// behind an atomic pointer: Load builds a complete new snapshot (indexes
// included) and swaps it in, so requests see either the old or the new
// model, never a mix.
type Service struct {
	opts    Options
	logger  zerolog.Logger
	live    atomic.Pointer[snapshot]
	metrics *metrics
	loadMu  sync.Mutex // one load at a time

	maxSeenBits int // bytes snapshot.seen may take (maxSeenBits; tests lower it)
}

type snapshot struct {
	bundle     *artifact.Bundle
	info       ModelInfo
	exact      *ann.Exact
	index      ann.Index // the backend that answers /recall
	movieIndex idIndex[movielens.MovieID]
	userIndex  idIndex[movielens.UserID]
	users      *feature.UserCodec    // the encoder's user side, compiled
	genres     map[string]ann.Filter // genre name → the movies that have it
	all        ann.Filter            // every movie
	dim        int
	pool       sync.Pool // *scratch
	hist       history
	fragments  [][]byte // Options.MovieFragment per movie index, or nil
	// seen holds each user's training movies as a bitset row of
	// len(all) words (user u at u·len(all)), so that exclude_seen clears
	// them with one AND-NOT per word instead of a bit per rating; nil when
	// the rows would exceed maxSeenBits (exclusion then walks the lists).
	seen []uint64
}

// maxSeenBits bounds the memory of snapshot.seen: 64 MiB, far above what the
// MovieLens catalogues need (ML-1M: 6,040 users × 61 words, 2.9 MB).
const maxSeenBits = 64 << 20

// history is what the user tower's history feature needs at serving: the
// field's position (-1 without it) and each movie's index in its vocabulary.
type history struct {
	pos   int
	index []int32 // per movie index
}

func newHistory(b *artifact.Bundle) history {
	h := history{pos: b.Encoder.HistoryPosition()}
	if h.pos < 0 {
		return h
	}
	h.index = make([]int32, len(b.Movies))
	var buf [1]int32
	for i, mv := range b.Movies {
		h.index[i] = b.Encoder.HistoryIndexes(buf[:0], []string{strconv.Itoa(int(mv.ID))})[0]
	}
	return h
}

type scratch struct {
	q       []float32
	idx     []int32
	enc     feature.Encoded
	hist    []int32
	filter  ann.Filter
	results []ann.Result
}

// New returns a Service with no model; call Load.
func New(opts Options, logger zerolog.Logger, reg prometheus.Registerer) (*Service, error) {
	switch opts.Index {
	case "auto", "exact", "hnsw":
	default:
		return nil, fmt.Errorf("recall: index %q is not auto, exact or hnsw", opts.Index)
	}
	if opts.SelfCheckQueries <= 0 {
		opts.SelfCheckQueries = 200
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Service{opts: opts, logger: logger, metrics: m, maxSeenBits: maxSeenBits}, nil
}

// Load builds indexes for b, self-checks HNSW against exact, and swaps b in
// as the live model. On error the previous model keeps serving.
func (s *Service) Load(b *artifact.Bundle) error {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	start := time.Now()
	snap, err := s.build(b)
	if err != nil {
		s.metrics.reloads.WithLabelValues("error").Inc()
		return err
	}
	snap.info.LoadedAt = time.Now().UTC()
	s.live.Store(snap)
	s.metrics.observeLoad(snap, time.Since(start))
	s.logger.Info().Str("version", snap.info.Version).Str("backend", snap.info.Backend).
		Int("movies", snap.info.Movies).Dur("load", time.Since(start)).
		Interface("index_recall", snap.info.IndexRecall).Msg("model loaded")
	return nil
}

func (s *Service) build(b *artifact.Bundle) (*snapshot, error) {
	m := b.Manifest
	dim := m.Dim
	if b.Model == nil || b.Encoder == nil || len(b.Movies) == 0 || len(b.Vectors) != len(b.Movies)*dim {
		return nil, fmt.Errorf("recall: incomplete bundle")
	}
	exact, err := ann.NewExact(b.Vectors, dim)
	if err != nil {
		return nil, fmt.Errorf("recall: exact index: %w", err)
	}
	snap := &snapshot{bundle: b, exact: exact, index: exact, dim: dim, hist: newHistory(b),
		userIndex: newIDIndex(b.Users),
		users:     feature.NewUserCodec(b.Encoder),
		genres:    map[string]ann.Filter{},
		all:       ann.AllFilter(len(b.Movies)),
	}
	movieIDs := make([]movielens.MovieID, len(b.Movies))
	for i, mv := range b.Movies {
		movieIDs[i] = mv.ID
	}
	snap.movieIndex = newIDIndex(movieIDs)
	if words := len(snap.all); len(b.Users)*words*8 <= s.maxSeenBits {
		snap.seen = make([]uint64, len(b.Users)*words)
		for u, movies := range b.Seen {
			row := ann.Filter(snap.seen[u*words : (u+1)*words])
			for _, m := range movies {
				row.Accept(m)
			}
		}
	}
	if s.opts.MovieFragment != nil {
		snap.fragments = make([][]byte, len(b.Movies))
		for i, mv := range b.Movies {
			snap.fragments[i] = s.opts.MovieFragment(mv)
		}
	}
	for i, mv := range b.Movies {
		for _, g := range mv.Genres {
			f, ok := snap.genres[g]
			if !ok {
				f = ann.NewFilter(len(b.Movies))
				snap.genres[g] = f
			}
			f.Accept(int32(i))
		}
	}
	snap.info = s.info(b)
	snap.info.Backend = "exact"
	if s.opts.Index != "exact" {
		h, err := s.hnsw(b)
		if err != nil {
			if s.opts.Index == "hnsw" {
				return nil, err
			}
			s.logger.Error().Err(err).Msg("HNSW index unavailable; serving from exact")
		} else {
			queries := s.sampleQueries(snap)
			rec, err := ann.SelfCheck(h, exact, queries, []int{10, 100})
			if err != nil {
				return nil, fmt.Errorf("recall: index self-check: %w", err)
			}
			snap.info.IndexRecall = map[string]float64{}
			pass := true
			for k, r := range rec {
				snap.info.IndexRecall["recall@"+strconv.Itoa(k)] = r
				if r < s.opts.MinRecall {
					pass = false
				}
			}
			te, th := timeSearch(exact, queries), timeSearch(h, queries)
			faster := th < te
			s.logger.Info().Dur("exact_search", te).Dur("hnsw_search", th).Int("timed_queries", min(32, len(queries))).
				Msg("index speed at k=10 and k=100 on the self-check queries")
			switch {
			case s.opts.Index == "hnsw":
				snap.index, snap.info.Backend = h, "hnsw"
				if !pass {
					s.logger.Warn().Interface("index_recall", snap.info.IndexRecall).Float64("min_recall", s.opts.MinRecall).
						Msg("HNSW self-check below min_recall; serving HNSW anyway because index: hnsw is forced")
				}
			case pass && faster:
				snap.index, snap.info.Backend = h, "hnsw"
			case pass:
				s.logger.Info().Msg("HNSW passes its self-check but exact search is faster on this catalogue; serving from the exact index")
			default:
				s.logger.Warn().Interface("index_recall", snap.info.IndexRecall).Float64("min_recall", s.opts.MinRecall).
					Msg("HNSW SELF-CHECK FAILED: recall against exact search is below min_recall; serving from the exact index")
			}
		}
	}
	return snap, nil
}

func (s *Service) hnsw(b *artifact.Bundle) (*ann.HNSW, error) {
	if len(b.Graph) > 0 {
		h, err := ann.ImportHNSW(bytes.NewReader(b.Graph), b.Vectors, b.Manifest.Dim, s.opts.HNSW)
		if err != nil {
			return nil, fmt.Errorf("recall: import HNSW graph: %w", err)
		}
		return h, nil
	}
	h, err := ann.NewHNSW(b.Vectors, b.Manifest.Dim, s.opts.HNSW)
	if err != nil {
		return nil, fmt.Errorf("recall: build HNSW graph: %w", err)
	}
	return h, nil
}

// timeSearch returns how long idx takes to answer up to 32 of the queries
// at k = 10 and k = 100, after a short warm-up: enough to tell a 30 µs scan
// from a 1 ms graph walk without slowing start-up.
func timeSearch(idx ann.Index, queries [][]float32) time.Duration {
	queries = queries[:min(32, len(queries))]
	buf := make([]ann.Result, 0, 100)
	for _, q := range queries[:min(4, len(queries))] {
		buf, _ = idx.Search(buf[:0], q, 10, nil)
	}
	start := time.Now()
	for _, q := range queries {
		for _, k := range []int{10, 100} {
			buf, _ = idx.Search(buf[:0], q, k, nil)
		}
	}
	return time.Since(start)
}

// sampleQueries draws self-check queries from the real query distribution:
// user vectors of known users and of cold-start feature combinations.
func (s *Service) sampleQueries(snap *snapshot) [][]float32 {
	b := snap.bundle
	rng := rand.New(rand.NewPCG(s.opts.Seed, 0x5e1fc4ec))
	n := s.opts.SelfCheckQueries
	out := make([][]float32, 0, n)
	sc := snap.getScratch()
	defer snap.pool.Put(sc)
	var genders, occs []string
	if v := b.Encoder.Vocabs[feature.GenderField]; v != nil {
		genders = v.Values()
	}
	if v := b.Encoder.Vocabs[feature.OccupationField]; v != nil {
		occs = v.Values()
	}
	for i := 0; i < n; i++ {
		var in feature.UserInput
		if len(b.Users) > 0 && i%4 != 3 {
			in.UserID = strconv.Itoa(int(b.Users[rng.IntN(len(b.Users))]))
		}
		if len(genders) > 0 {
			in.Gender = genders[rng.IntN(len(genders))]
		}
		if len(occs) > 0 {
			in.Occupation = occs[rng.IntN(len(occs))]
		}
		in.Age = 15 + rng.IntN(50)
		// The serving path's own user vector (history feature included).
		if _, _, err := snap.userVector(sc, in); err != nil {
			continue
		}
		out = append(out, slices.Clone(sc.q))
	}
	return out
}

func (s *Service) info(b *artifact.Bundle) ModelInfo {
	m := b.Manifest
	vocab := func(f feature.Field) []string {
		if v, ok := b.Encoder.Vocabs[f]; ok {
			return v.Values()
		}
		return []string{}
	}
	genres := map[string]bool{}
	for _, mv := range b.Movies {
		for _, g := range mv.Genres {
			genres[g] = true
		}
	}
	gl := make([]string, 0, len(genres))
	for g := range genres {
		gl = append(gl, g)
	}
	sort.Strings(gl)
	return ModelInfo{
		Version: m.Version, CreatedAt: m.CreatedAt, Objective: m.Objective, Dim: m.Dim,
		Movies: len(b.Movies), Users: len(b.Users), Metrics: m.Metrics,
		Vocabularies: map[string][]string{
			"gender":     {"F", "M"},
			"age":        vocab(feature.AgeField),
			"occupation": movielens.Occupations(),
			"genres":     gl,
		},
	}
}

// Info describes the live model; false when none is loaded.
func (s *Service) Info() (ModelInfo, bool) {
	snap := s.live.Load()
	if snap == nil {
		return ModelInfo{}, false
	}
	return snap.info, true
}

func (snap *snapshot) getScratch() *scratch {
	if sc, ok := snap.pool.Get().(*scratch); ok {
		return sc
	}
	return &scratch{
		q:      make([]float32, snap.dim),
		filter: ann.NewFilter(len(snap.bundle.Movies)),
	}
}

// userVector encodes the user and runs the user tower into sc.q. A user
// with training data (known) comes back with their dense index ui, which
// Seen and snapshot.seen are indexed by.
func (snap *snapshot) userVector(sc *scratch, u feature.UserInput) (ui int32, known bool, err error) {
	if err := checkUser(u); err != nil {
		return 0, false, err
	}
	sc.idx = snap.users.Indexes(sc.idx[:0], u)
	if cap(sc.enc) < len(sc.idx) {
		sc.enc = make(feature.Encoded, len(sc.idx))
	}
	sc.enc = sc.enc[:len(sc.idx)]
	for i := range sc.idx {
		sc.enc[i] = sc.idx[i : i+1]
	}
	if u.UserID != "" {
		if id, err := strconv.Atoi(u.UserID); err == nil {
			ui, known = snap.userIndex.get(movielens.UserID(id))
		}
	}
	if known && snap.hist.pos >= 0 {
		// A known user's history is the artifact's record of their ratings
		// (what exclude_seen uses), as in training and evaluation.
		sc.hist = sc.hist[:0]
		for _, m := range snap.bundle.Seen[ui] {
			if h := snap.hist.index[m]; h != feature.OOV {
				sc.hist = append(sc.hist, h)
			}
		}
		if len(sc.hist) > 0 {
			sc.enc[snap.hist.pos] = sc.hist
		}
	}
	snap.bundle.Model.UserVector(sc.q, sc.enc)
	return ui, known, nil
}

func checkUser(u feature.UserInput) error {
	if u.Gender != "" && u.Gender != "F" && u.Gender != "M" {
		return &Error{Field: "user.gender", Message: fmt.Sprintf("%q is not F or M", u.Gender)}
	}
	if u.Occupation != "" {
		if _, ok := movielens.CanonicalOccupation(u.Occupation); !ok {
			return &Error{Field: "user.occupation", Message: fmt.Sprintf("unknown occupation %q (GET /model lists the accepted names)", u.Occupation)}
		}
	}
	if u.Age < 0 || u.Age > 150 {
		return &Error{Field: "user.age", Message: fmt.Sprintf("%d out of range 1–150", u.Age)}
	}
	return nil
}

// Recall returns the top-K movies for the request's user.
func (s *Service) Recall(ctx context.Context, req Request) (Result, error) {
	snap := s.live.Load()
	if snap == nil {
		return Result{}, NoModelError{}
	}
	if req.K == 0 {
		req.K = DefaultK
	}
	if req.K < 1 || req.K > MaxK {
		return Result{}, &Error{Field: "k", Message: fmt.Sprintf("%d out of range 1–%d", req.K, MaxK)}
	}
	if req.Offset < 0 || req.Offset > MaxOffset {
		return Result{}, &Error{Field: "offset", Message: fmt.Sprintf("%d out of range 0–%d", req.Offset, MaxOffset)}
	}
	sc := snap.getScratch()
	defer snap.pool.Put(sc)
	ui, known, err := snap.userVector(sc, req.User)
	if err != nil {
		return Result{}, err
	}
	// The filter: the requested genres (any of them), or every movie, less
	// the user's seen movies and the explicit exclusions. Without genres or
	// exclusions there is none.
	var accept ann.Filter
	if len(req.Genres) > 0 {
		accept = sc.filter
		clear(accept)
		for i, g := range req.Genres {
			gf, ok := snap.genres[g]
			if !ok {
				return Result{}, &Error{Field: fmt.Sprintf("genres[%d]", i), Message: fmt.Sprintf("unknown genre %q (GET /model lists the genres)", g)}
			}
			for w, bits := range gf {
				accept[w] |= bits
			}
		}
	}
	excludeSeen := known
	if req.ExcludeSeen != nil {
		excludeSeen = *req.ExcludeSeen && known
	}
	if (excludeSeen || len(req.ExcludeMovieIDs) > 0) && accept == nil {
		accept = sc.filter
		copy(accept, snap.all)
	}
	if excludeSeen {
		u := int(ui)
		if words := len(accept); snap.seen != nil {
			for w, bits := range snap.seen[u*words : (u+1)*words] {
				accept[w] &^= bits
			}
		} else {
			for _, m := range snap.bundle.Seen[u] {
				accept.Reject(m)
			}
		}
	}
	for _, id := range req.ExcludeMovieIDs {
		if m, ok := snap.movieIndex.get(id); ok {
			accept.Reject(m)
		}
	}
	want := req.K + req.Offset
	if want > len(snap.bundle.Movies) {
		want = len(snap.bundle.Movies)
	}
	res, err := snap.index.Search(sc.results[:0], sc.q, want, accept)
	if err != nil {
		return Result{}, fmt.Errorf("recall: search: %w", err)
	}
	sc.results = res
	// Both backends return exact ann.Dot scores (the one score function,
	// which /score uses too), best first with ties by lower index, so
	// scores and order agree with /score to the bit.
	out := Result{ModelVersion: snap.info.Version, Backend: snap.info.Backend, KnownUser: known}
	if req.Offset < len(res) {
		res = res[req.Offset:]
		if cap(req.Items) >= len(res) {
			out.Items = req.Items[:len(res)]
		} else {
			out.Items = make([]Item, len(res))
		}
		for i, r := range res {
			mv := &snap.bundle.Movies[r.ID]
			out.Items[i] = Item{MovieID: mv.ID, Title: mv.Title, Genres: mv.Genres, Year: mv.Year, Score: r.Score}
			if snap.fragments != nil {
				out.Items[i].Fragment = snap.fragments[r.ID]
			}
		}
	} else {
		out.Items = []Item{}
	}
	return out, nil
}

// Score scores the given movies for the request's user.
func (s *Service) Score(ctx context.Context, req ScoreRequest) (ScoreResult, error) {
	snap := s.live.Load()
	if snap == nil {
		return ScoreResult{}, NoModelError{}
	}
	if len(req.MovieIDs) == 0 || len(req.MovieIDs) > MaxScoreIDs {
		return ScoreResult{}, &Error{Field: "movie_ids", Message: fmt.Sprintf("%d ids; send 1–%d", len(req.MovieIDs), MaxScoreIDs)}
	}
	sc := snap.getScratch()
	defer snap.pool.Put(sc)
	if _, _, err := snap.userVector(sc, req.User); err != nil {
		return ScoreResult{}, err
	}
	out := ScoreResult{ModelVersion: snap.info.Version, Scores: make([]Score, 0, len(req.MovieIDs)), Unknown: []movielens.MovieID{}}
	head := snap.bundle.Model.HasRatingHead()
	for _, id := range req.MovieIDs {
		m, ok := snap.movieIndex.get(id)
		if !ok {
			out.Unknown = append(out.Unknown, id)
			continue
		}
		sco := Score{MovieID: id, Score: ann.Dot(sc.q, snap.bundle.Vectors[int(m)*snap.dim:(int(m)+1)*snap.dim])}
		if head {
			r := snap.bundle.Model.PredictRating(sco.Score)
			sco.Rating = &r
		}
		out.Scores = append(out.Scores, sco)
	}
	return out, nil
}
