package recall

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/nn"
)

// snapshot is one loaded model with everything a request needs, built once
// per load and never changed.
type snapshot struct {
	bundle *artifact.Bundle
	info   ModelInfo
	dim    int
	exact  *ann.Exact
	// graph answers a Recall whose offset + k is at most
	// info.HNSWMaxDepth; the exact scan answers deeper ones, and all of
	// them when graph is nil.
	graph *ann.HNSW

	users    map[movielens.UserID]int32 // known user → index into bundle.Users and Seen
	profiles map[movielens.UserID]artifact.Profile
	movies   map[movielens.MovieID]int32 // movie → index into bundle.Movies and Vectors
	codec    *feature.UserCodec
	history  history
	genres   map[string]ann.Filter // genre name → the movies that have it
	titles   titleIndex            // the titles, folded for search
	// genreNames maps a lower-case genre to the catalogue's spelling.
	genreNames map[string]string
	// ratingCounts is the ratings per movie in the histories (training and
	// validation), counted on first use: trainedRatings' fallback.
	ratingCounts func() []int32
	// towerDim is the movie tower's share of a vector: dim, less the
	// popularity prior's dimension when the model has one.
	towerDim int
	// cosine, when the movie vectors are not unit over towerDim already
	// (an unnormalised tower), indexes those values scaled to unit length
	// (zero rows stay zero), so that Similar ranks by cosine with the
	// exact index's kernel; nil: the inner product of the movies' own
	// vectors is the cosine, and exact serves Similar too.
	cosine *ann.Exact
	all    ann.Filter // every movie
	pool   *sync.Pool // *scratch; a pointer, so the runtime's list of pools does not keep a replaced snapshot alive
}

// scratch is one request's working memory, pooled per snapshot.
type scratch struct {
	q       []float32
	idx     []int32
	enc     feature.Encoded
	recent  []int32    // the request's recent movies that the artifact has, as movie indexes
	hist    []int32    // the history bag: movie indexes, then their history-vocabulary indexes
	filter  ann.Filter // over the artifact's movies
	results []ann.Result
	ofilter ann.Filter   // over the overlay's rows
	over    []ann.Result // the overlay's best
	merged  []ann.Result
}

// newSnapshot builds the indexes of b and picks the backend.
func newSnapshot(b *artifact.Bundle, opts Options, logger zerolog.Logger) (*snapshot, error) {
	dim := b.Manifest.Dim
	if b.Model == nil || b.Encoder == nil || len(b.Movies) == 0 || len(b.Vectors) != len(b.Movies)*dim || len(b.Seen) != len(b.Users) {
		return nil, fmt.Errorf("recall: incomplete bundle")
	}
	exact, err := ann.NewExact(b.Vectors, dim)
	if err != nil {
		return nil, fmt.Errorf("recall: exact index: %w", err)
	}
	snap := &snapshot{
		bundle: b, dim: dim, exact: exact,
		users:      make(map[movielens.UserID]int32, len(b.Users)),
		movies:     make(map[movielens.MovieID]int32, len(b.Movies)),
		codec:      feature.NewUserCodec(b.Encoder),
		history:    newHistory(b),
		genres:     map[string]ann.Filter{},
		genreNames: map[string]string{},
		all:        ann.AllFilter(len(b.Movies)),
		pool:       &sync.Pool{},
		ratingCounts: sync.OnceValue(func() []int32 {
			counts := make([]int32, len(b.Movies))
			for _, seen := range b.Seen {
				for _, m := range seen {
					counts[m]++
				}
			}
			return counts
		}),
	}
	for i, u := range b.Users {
		snap.users[u] = int32(i)
	}
	snap.towerDim = dim
	if b.Prior != nil {
		snap.towerDim = dim - 1
	}
	if !unitRows(b.Vectors, dim, snap.towerDim) {
		unit := make([]float32, 0, len(b.Movies)*snap.towerDim)
		for i := 0; i < len(b.Vectors); i += dim {
			unit = appendUnit(unit, b.Vectors[i:i+snap.towerDim])
		}
		if snap.cosine, err = ann.NewExact(unit, snap.towerDim); err != nil {
			return nil, fmt.Errorf("recall: the movies' unit vectors: %w", err)
		}
	}
	// A profile keeps the features the user tower reads: the others would
	// change nothing, and the answer would still name them as used.
	reads := func(f feature.Field) bool { return slices.Contains(b.Encoder.UserFields, f) }
	snap.profiles = make(map[movielens.UserID]artifact.Profile, len(b.Profiles))
	for _, p := range b.Profiles {
		if !reads(feature.GenderField) {
			p.Gender = ""
		}
		if !reads(feature.AgeField) {
			p.Age = 0
		}
		if !reads(feature.OccupationField) {
			p.Occupation = ""
		}
		if !reads(feature.ZipField) {
			p.Zip = ""
		}
		snap.profiles[p.ID] = p
	}
	for i, mv := range b.Movies {
		snap.movies[mv.ID] = int32(i)
		for _, g := range mv.Genres {
			lg := strings.ToLower(g)
			if snap.genres[lg] == nil {
				snap.genreNames[lg] = g // the first spelling
				snap.genres[lg] = ann.NewFilter(len(b.Movies))
			}
			snap.genres[lg].Accept(int32(i))
		}
	}
	snap.titles = newTitleIndex(b.Movies)
	snap.info = modelInfo(b)
	snap.info.Backend, snap.info.IndexChoice = "exact", "index: exact is configured"
	if opts.Index != "exact" {
		if err := snap.chooseBackend(opts, logger); err != nil {
			return nil, err
		}
	}
	return snap, nil
}

// chooseBackend builds (or imports) the HNSW graph, measures its recall
// against exact search on sampled user vectors, and serves from it when
// forced, or when it passes MinRecall and answers faster than the scan.
func (snap *snapshot) chooseBackend(opts Options, logger zerolog.Logger) error {
	h, err := buildHNSW(snap.bundle, opts.HNSW)
	if err != nil {
		if opts.Index == "hnsw" {
			return err
		}
		logger.Error().Err(err).Msg("HNSW index unavailable; serving from exact")
		snap.info.IndexChoice = "hnsw unavailable (see the log)"
		return nil
	}
	if len(snap.bundle.Graph) > 0 && h.M() != opts.HNSW.M {
		// serve.hnsw_m, read by train, builds the graph; one set in the
		// service's config alone changed nothing, and said nothing.
		logger.Warn().Int("graph_m", h.M()).Int("serve_hnsw_m", opts.HNSW.M).
			Msg("the artifact's HNSW graph was built with another degree than serve.hnsw_m: it is served as built (serve.hnsw_m builds a graph in train, or in serve for an artifact without one)")
	}
	queries := snap.sampleQueries(opts.SelfCheckQueries, opts.Seed)
	check := func(h *ann.HNSW) (bool, error) {
		rec, err := ann.SelfCheck(h, snap.exact, queries, []int{10, 100})
		if err != nil {
			return false, fmt.Errorf("recall: index self-check: %w", err)
		}
		snap.info.IndexRecall = map[string]float64{}
		pass := true
		for k, r := range rec {
			// Six decimals, shown and compared: a mean of shares read
			// 0.9989999999999999, and a true 0.99 failed min_recall 0.99.
			r = math.Round(r*1e6) / 1e6
			snap.info.IndexRecall["recall@"+strconv.Itoa(k)] = r
			pass = pass && r >= opts.MinRecall
		}
		return pass, nil
	}
	pass, err := check(h)
	if err != nil {
		return err
	}
	// A graph that misses min_recall at the configured beam may pass at a
	// wider one (still far faster than the scan on a large catalogue): the
	// beam is doubled up to maxWiden times, for auto and a forced hnsw
	// alike (min_recall 0 keeps the configured beam). The beam for k is
	// max(EfSearch, k·Overfetch), so both double: EfSearch alone leaves it
	// unchanged at k = 100.
	const maxWiden = 3
	for i := 0; i < maxWiden && !pass; i++ {
		if h, err = h.WithBeam(2*h.EfSearch(), 2*h.Overfetch()); err != nil {
			return fmt.Errorf("recall: widen the HNSW beam: %w", err)
		}
		if pass, err = check(h); err != nil {
			return err
		}
		logger.Info().Int("ef_search", h.EfSearch()).Int("overfetch", h.Overfetch()).Interface("index_recall", snap.info.IndexRecall).Bool("passed", pass).
			Msg("HNSW self-check at a wider beam")
	}
	snap.info.IndexEfSearch = h.EfSearch()
	depths := routeDepths[:]
	if opts.Index == "hnsw" {
		depths = depths[:1] // the graph answers every request: k = 10 for /model alone
	}
	depth, latency := routeDepth(snap.exact, h, queries, depths, time.Now)
	snap.info.IndexLatency = latency
	level := zerolog.InfoLevel
	if !pass {
		level = zerolog.WarnLevel
	}
	log := logger.WithLevel(level).Interface("index_latency_us", latency).Int("hnsw_faster_to_depth", depth).
		Interface("index_recall", snap.info.IndexRecall).Float64("min_recall", opts.MinRecall).Bool("self_check_passed", pass)
	serve := func(depth int, choice string) {
		snap.graph = h
		snap.info.Backend, snap.info.HNSWMaxDepth, snap.info.IndexChoice = "hnsw", depth, choice
	}
	switch {
	case opts.Index == "hnsw" && pass:
		serve(maxDepth, "index: hnsw is configured")
		log.Msg("serving HNSW (index: hnsw is forced)")
	case opts.Index == "hnsw":
		serve(maxDepth, "index: hnsw is configured")
		log.Msg("HNSW SELF-CHECK FAILED: serving HNSW all the same (index: hnsw is forced); recall against exact search is below min_recall")
	case pass && depth > 0:
		serve(depth, "hnsw faster and recall ≥ min_recall")
		log.Msg("serving HNSW where it is faster than exact search (offset + k up to hnsw_faster_to_depth), exact search deeper")
	case pass:
		snap.info.IndexChoice = "exact faster at k = 10; hnsw recall ≥ min_recall"
		log.Msg("serving exact search: HNSW passes its self-check but is slower on this catalogue")
	default:
		snap.info.IndexChoice = "hnsw recall < min_recall"
		log.Msg("HNSW SELF-CHECK FAILED: recall against exact search is below min_recall; serving from the exact index")
	}
	return nil
}

// maxDepth is the deepest search a Recall makes (offset + k): index:
// hnsw's graph answers every one.
const maxDepth = MaxOffset + MaxK

// routeDepths are the depths (offset + k) at which index: auto times the
// two backends; deeper requests go to the scan, untimed (see routeDepth).
var routeDepths = [...]int{10, 100, MaxK}

// routeDepth times exact and graph on the queries at each of depths in
// turn and returns the deepest depth up to which the graph was faster at
// every one (0 if not at the first), and the mean time per query at the
// first of each, in µs. A graph walk's cost grows with k (its beam is
// max(EfSearch, k·Overfetch)) and a scan's hardly at all, so a graph
// faster at k = 10 can be several times slower at k = 1,000 (docs/ann.md,
// "Crossover"): each request goes to the faster. now is the clock
// (time.Now).
func routeDepth(exact, graph ann.Index, queries [][]float32, depths []int, now func() time.Time) (depth int, latency map[string]float64) {
	for _, k := range depths {
		e, nq := timeSearch(exact, queries, k, now)
		g, _ := timeSearch(graph, queries, k, now)
		if latency == nil {
			perQuery := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(nq) }
			latency = map[string]float64{"exact": perQuery(e), "hnsw": perQuery(g)}
		}
		if g >= e {
			return depth, latency
		}
		depth = k
	}
	return depth, latency
}

// buildHNSW imports the artifact's graph, or builds one if it has none.
func buildHNSW(b *artifact.Bundle, p ann.HNSWParams) (*ann.HNSW, error) {
	if len(b.Graph) > 0 {
		h, err := ann.ImportHNSW(bytes.NewReader(b.Graph), b.Vectors, b.Manifest.Dim, p)
		if err != nil {
			return nil, fmt.Errorf("recall: import HNSW graph: %w", err)
		}
		return h, nil
	}
	h, err := ann.NewHNSW(b.Vectors, b.Manifest.Dim, p)
	if err != nil {
		return nil, fmt.Errorf("recall: build HNSW graph: %w", err)
	}
	return h, nil
}

// timeSearch returns how long idx takes to answer up to 32 of the
// queries at k, and how many queries that is, after a short warm-up:
// enough to tell a 30 µs scan from a 1 ms graph walk without slowing
// start-up. It is the fastest of timeRounds passes, so that one search
// stalled by the scheduler or a GC pause (milliseconds, against a small
// catalogue's whole pass of a fraction of one) does not decide index:
// auto. now is the clock (time.Now).
func timeSearch(idx ann.Index, queries [][]float32, k int, now func() time.Time) (d time.Duration, n int) {
	const timeRounds = 3
	queries = queries[:min(32, len(queries))]
	buf := make([]ann.Result, 0, k)
	for _, q := range queries[:min(4, len(queries))] {
		buf, _ = idx.Search(buf[:0], q, k, nil)
	}
	d = math.MaxInt64
	for range timeRounds {
		start := now()
		for _, q := range queries {
			buf, _ = idx.Search(buf[:0], q, k, nil)
		}
		d = min(d, now().Sub(start))
	}
	return d, len(queries)
}

// sampleQueries draws self-check queries from the real query distribution:
// user vectors of known users (3 in 4) and of cold-start feature
// combinations, through the serving path's own userVector.
func (snap *snapshot) sampleQueries(n int, seed uint64) [][]float32 {
	b := snap.bundle
	rng := rand.New(rand.NewPCG(seed, 0x5e1fc4ec))
	occs := movielens.Occupations()
	sc := snap.getScratch()
	defer snap.pool.Put(sc)
	v := &view{snap: snap, ov: emptyOverlay(snap.dim, snap.towerDim)}
	out := make([][]float32, 0, n)
	for i := range n {
		in := feature.UserInput{
			Gender:     []string{"F", "M"}[rng.IntN(2)],
			Age:        15 + rng.IntN(50),
			Occupation: occs[rng.IntN(len(occs))],
		}
		if len(b.Users) > 0 && i%4 != 3 {
			in.UserID = b.Users[rng.IntN(len(b.Users))]
		}
		v.userVector(sc, User{UserInput: in})
		out = append(out, slices.Clone(sc.q))
	}
	return out
}

func modelInfo(b *artifact.Bundle) ModelInfo {
	m := b.Manifest
	ages := []string{}
	if v, ok := b.Encoder.Vocabs[feature.AgeField]; ok {
		ages = v.Values()
		slices.SortFunc(ages, func(a, b string) int { // bucket lower bounds, in years
			x, _ := strconv.Atoi(a)
			y, _ := strconv.Atoi(b)
			return x - y
		})
	}
	genres := map[string]bool{}
	for _, mv := range b.Movies {
		for _, g := range mv.Genres {
			genres[g] = true
		}
	}
	gl := slices.Sorted(maps.Keys(genres))
	var prior *PriorInfo
	if p := b.Prior; p != nil {
		tp := p.Tower()
		h := b.Encoder.HistoryPosition() // -1: none
		prior = &PriorInfo{Now: p.Now, HalfLifeDays: p.HalfLifeDays, Weight: p.Weight, FeatureShare: p.FeatureShare, Ratings: p.Ratings,
			// As served (tower.Prior.Group): a cold user knows no id
			// field, a new user who sends recent movies only the history.
			ColdWeight:   tp.WeightWhen(func(int) bool { return false }),
			RecentWeight: tp.WeightWhen(func(f int) bool { return f == h }),
		}
	}
	var recipe string
	if s := m.Training.Selection; s != nil {
		recipe = s.Recipe
	}
	var recent int // the recent-history length, 0 without the feature
	if b.Recent != nil && b.Encoder.HistoryPosition() >= 0 {
		recent = b.Recent.Length
	}
	return ModelInfo{
		Prior: prior, RecentHistory: recent, Recipe: recipe,
		Version: m.Version, CreatedAt: m.CreatedAt, Objective: m.Objective, Dim: m.Dim,
		Movies: len(b.Movies), Users: len(b.Users), Metrics: m.Metrics,
		Vocabularies: map[string][]string{
			"gender":     {"F", "M"},
			"age":        ages,
			"occupation": movielens.Occupations(),
			"genres":     gl,
		},
	}
}

// appendUnit appends v scaled to unit length to dst, as a normalised tower
// scales its output (nn.L2NormalizeTo); a zero v stays zero.
func appendUnit(dst, v []float32) []float32 {
	dst = append(dst, v...)
	u := dst[len(dst)-len(v):]
	var norm [1]float32
	nn.L2NormalizeTo(u, norm[:], u, 1, len(v))
	return dst
}

// unitRows reports whether every row of vectors (dim values each) has
// unit length over its first d values, to float32 rounding, or is zero
// there (a normalised tower's output when its last layer is all zero;
// it scores 0 either way).
func unitRows(vectors []float32, dim, d int) bool {
	for i := 0; i < len(vectors); i += dim {
		v := vectors[i : i+d]
		if n := ann.Dot(v, v); n != 0 && (n < 1-1e-5 || n > 1+1e-5) {
			return false
		}
	}
	return true
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

// withProfile fills the features u leaves unknown from the stored profile
// of u's id, and names those it filled.
func (snap *snapshot) withProfile(u feature.UserInput) (feature.UserInput, []string) {
	p, ok := snap.profiles[u.UserID]
	if !ok || u.UserID == 0 {
		return u, nil
	}
	var stored []string
	if u.Gender == "" && p.Gender != "" {
		u.Gender, stored = p.Gender, append(stored, "gender")
	}
	if u.Age == 0 && p.Age != 0 {
		u.Age, stored = p.Age, append(stored, "age")
	}
	if u.Occupation == "" && p.Occupation != "" {
		u.Occupation, stored = p.Occupation, append(stored, "occupation")
	}
	if u.Zip == "" && p.Zip != "" {
		u.Zip, stored = p.Zip, append(stored, "zip")
	}
	return u, stored
}

// userVector runs the user tower for u into sc.q: its features (completed
// from the stored profile) and its history — a known user's training
// ratings (what exclude_seen uses, as in training and evaluation) plus the
// recent movies, or the recent movies alone. A known user (one with a
// training history) comes back with their index ui into bundle.Seen. The
// features were checked by the caller; the encoder maps anything it does
// not know to out-of-vocabulary.
func (v *view) userVector(sc *scratch, u User) (ui int32, known bool, used UsedUser) {
	snap := v.snap
	used.Features, used.Stored = snap.withProfile(u.UserInput)
	sc.idx = snap.codec.Indexes(sc.idx[:0], used.Features)
	sc.enc = slices.Grow(sc.enc[:0], len(sc.idx))[:len(sc.idx)]
	for i := range sc.idx {
		sc.enc[i] = sc.idx[i : i+1]
	}
	ui, known = snap.users[u.UserID]
	sc.recent = sc.recent[:0]
	for _, id := range u.Recent {
		if m, ok := snap.movies[id]; ok {
			sc.recent = append(sc.recent, m)
		} else if _, ok := v.ov.ids.get(id); !ok {
			used.UnknownRecent = append(used.UnknownRecent, id)
		} // a movie added since training has no history embedding: known, not pooled
	}
	sc.hist = sc.hist[:0]
	if r := snap.bundle.Recent; r != nil {
		snap.recentBag(sc, r, ui, known)
	} else if snap.history.pos >= 0 {
		snap.historyBag(sc, ui, known)
	}
	if snap.history.pos >= 0 && len(sc.hist) > 0 { // else no history feature, or the OOV bag stays
		sc.enc[snap.history.pos] = sc.hist
		used.History = len(sc.hist)
	}
	snap.bundle.Model.UserVector(sc.q, sc.enc)
	return ui, known, used
}

// historyBag puts into sc.hist the history bag of a model whose history
// feature pools every rating: the known user's training ratings and the
// recent movies (sc.recent), each once.
func (snap *snapshot) historyBag(sc *scratch, ui int32, known bool) {
	if known {
		sc.hist = append(sc.hist, snap.bundle.Seen[ui]...)
	}
	sc.hist = append(sc.hist, sc.recent...)
	if len(sc.recent) > 0 { // Seen is sorted and distinct; recent movies may repeat it
		slices.Sort(sc.hist)
		sc.hist = slices.Compact(sc.hist)
	}
	n := 0
	for _, m := range sc.hist {
		if h := snap.history.index[m]; h != feature.OOV {
			sc.hist[n] = h
			n++
		}
	}
	sc.hist = sc.hist[:n]
}

// recentBag puts into sc.hist the history bag of a model whose history
// feature pools recent movies (r), as training built it: the newest
// r.Length known movies, newest first — the request's recent movies
// (sc.recent, in their order, a repeat counted once), then the known
// user's stored newest.
func (snap *snapshot) recentBag(sc *scratch, r *artifact.Recent, ui int32, known bool) {
	add := func(m int32) {
		if len(sc.hist) >= r.Length {
			return
		}
		if h := snap.history.index[m]; h != feature.OOV && !slices.Contains(sc.hist, h) {
			sc.hist = append(sc.hist, h)
		}
	}
	for _, m := range sc.recent {
		add(m)
	}
	if known {
		for _, m := range r.Movies[ui] {
			add(m)
		}
	}
}
