package recall

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/catalog"
	"github.com/towerrecall/towerrecall/internal/movielens"
)

// Options configure a Service. config.Default holds their defaults.
type Options struct {
	Index            string  // "auto" (HNSW when its self-check passes and it is faster), "exact" or "hnsw"
	MinRecall        float64 // auto: the self-check recall@10 and @100 HNSW must reach
	SelfCheckQueries int     // user vectors the HNSW self-check compares against exact search
	HNSW             ann.HNSWParams
	Seed             uint64 // draws the self-check queries
}

func (o Options) validate() error {
	var errs []error
	switch o.Index {
	case "auto", "exact", "hnsw":
	default:
		errs = append(errs, fmt.Errorf("index %q is not auto, exact or hnsw", o.Index))
	}
	if o.MinRecall < 0 || o.MinRecall > 1 {
		errs = append(errs, fmt.Errorf("min recall %v is not in [0, 1]", o.MinRecall))
	}
	if o.SelfCheckQueries < 1 {
		errs = append(errs, fmt.Errorf("self-check queries %d: need at least 1", o.SelfCheckQueries))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("recall: options: %w", err)
	}
	return nil
}

// Service is the serving core. The live model is an immutable snapshot
// behind an atomic pointer: Load builds a complete new snapshot (indexes
// included) and swaps it in, so requests see either the old or the new
// model, never a mix.
//
// Catalogue changes (PutMovie, DeleteMovie) are an overlay next to the
// snapshot (see overlay); the pair is swapped in as one view, so a request
// sees a model and one state of its catalogue, and never blocks on a
// writer.
type Service struct {
	opts    Options
	logger  zerolog.Logger
	live    atomic.Pointer[view]
	metrics *metrics
	loadMu  sync.Mutex // one load at a time

	// Catalogue changes (see commit.go for how they are made durable
	// and visible).
	catMu    sync.Mutex                          // writers' short critical section; guards the fields up to commitMu
	journal  Journal                             // nil: catalogue changes are off
	latest   map[movielens.MovieID]catalog.Entry // durable entries, the latest per movie
	unsynced []catalog.Entry                     // written after them, waiting for an fsync, in order
	pending  *view                               // the live view plus the unsynced changes; nil before a load
	catErr   error                               // a failed fsync: changes are refused from then on
	// writable is whether changes can be made: a journal is attached and
	// neither it nor an fsync has failed. Atomic, so Info (every /model,
	// /readyz and batch) never waits for a writer or a replay.
	writable atomic.Bool
	// journaled is whether a journal is attached for writing (changes
	// are on, failed or not): towerrecall_catalog_writable exists then.
	journaled atomic.Bool

	commitMu  sync.Mutex    // guards the fields below (never held across an fsync)
	syncing   bool          // a leader is fsyncing and publishing
	synced    chan struct{} // closed when that leader is done
	durable   uint64        // last journal entry fsynced and published
	commitErr error         // sticky: a failed fsync
}

// view is what a request reads: the model and its catalogue changes.
type view struct {
	snap *snapshot
	ov   *overlay
}

// New returns a Service with no model; call Load.
func New(opts Options, logger zerolog.Logger, reg prometheus.Registerer) (*Service, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	s := &Service{opts: opts, logger: logger, metrics: newMetrics(), synced: make(chan struct{})}
	if err := s.register(reg); err != nil {
		return nil, err
	}
	return s, nil
}

// Load builds indexes for b, self-checks HNSW against exact, and swaps b in
// as the live model. On error the previous model keeps serving.
func (s *Service) Load(b *artifact.Bundle) error {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	start := time.Now()
	snap, err := s.build(b)
	if err != nil {
		s.LoadFailed()
		return err
	}
	snap.info.LoadedAt = time.Now().UTC()
	s.catMu.Lock()
	st := s.replay(snap)
	s.catMu.Unlock()
	// Publish it once every change it replays is durable (changes written
	// but not yet synced are replayed too, and synced now).
	_ = s.commit(0, true)
	ov := s.live.Load().ov
	s.metrics.observeLoad(snap.info, time.Since(start))
	s.logger.Info().Str("version", snap.info.Version).Str("backend", snap.info.Backend).
		Int("movies", ov.movies(len(b.Movies))).Dur("load_ms", time.Since(start)).
		Interface("index_recall", snap.info.IndexRecall).Interface("catalog", st).Msg("model loaded")
	return nil
}

// build is newSnapshot, with a panic (a bug that a strange artifact
// reaches: the self-check runs the towers on it) turned into a refusal, so
// a reload cannot end a process that serves the previous model.
func (s *Service) build(b *artifact.Bundle) (snap *snapshot, err error) {
	defer func() {
		if r := recover(); r != nil {
			snap, err = nil, fmt.Errorf("recall: load: panic: %v", r)
			s.logger.Error().Str("stack", string(debug.Stack())).Msg("model load panicked; refused")
		}
	}()
	return newSnapshot(b, s.opts, s.logger)
}

// Info describes the live model; false when none is loaded.
func (s *Service) Info() (ModelInfo, bool) {
	v := s.live.Load()
	if v == nil {
		return ModelInfo{}, false
	}
	info := v.snap.info
	info.Movies = v.ov.movies(len(v.snap.bundle.Movies))
	info.Catalog.Added, info.Catalog.Updated, info.Catalog.Deleted = v.ov.counts()
	info.Catalog.Seq = v.ov.seq
	info.Catalog.Writable = s.writable.Load()
	return info, true
}

// Recall returns the top-K movies for the request's user. The request's
// limits (see the constants) are the caller's to check; a genre the model
// does not know is an *Error. It answers ctx's error if ctx is done before
// the index search.
func (s *Service) Recall(ctx context.Context, req Request) (Result, error) {
	return s.live.Load().recall(ctx, req)
}

// Pinned returns Recall bound to the model and catalogue live now: the
// entries of one batch are answered by one version, whatever is reloaded
// or changed meanwhile.
func (s *Service) Pinned() func(context.Context, Request) (Result, error) {
	return s.live.Load().recall
}

func (v *view) recall(ctx context.Context, req Request) (Result, error) {
	if v == nil {
		return Result{}, NoModelError{}
	}
	snap := v.snap
	sc := snap.getScratch()
	defer snap.pool.Put(sc)
	ui, known, used := v.userVector(sc, req.User)
	accept, over, err := v.filter(sc, req, ui, known)
	if err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	index, backend := ann.Index(snap.exact), "exact"
	if snap.graph != nil && req.K+req.Offset <= snap.info.HNSWMaxDepth {
		index, backend = snap.graph, "hnsw"
	}
	// One more than the page: whether a next page exists.
	res, err := v.search(sc, index, v.ov.vecs, sc.q, req.K+req.Offset+1, accept, over)
	if err != nil {
		return Result{}, err
	}
	more := len(res) > req.K+req.Offset
	res = res[:min(len(res), req.K+req.Offset)]
	// Both backends return exact ann.Dot scores (the one score function,
	// which Score uses too), best first with ties by lower index, and the
	// overlay's rows are scored and merged the same way, so scores and
	// order agree with Score to the bit.
	out := Result{
		ModelVersion: snap.info.Version, Backend: backend, KnownUser: known, User: used,
		Items: v.items(res[min(req.Offset, len(res)):]),
	}
	if more && req.Offset+req.K <= MaxOffset {
		out.NextOffset = req.Offset + req.K
	}
	return out, nil
}

// search returns the best k movies for q, as result ids (see find): the
// artifact's (accept, nil for all) from index, the overlay's (over) from
// rows (its vecs, or units for Similar) by an exact scan, merged.
func (v *view) search(sc *scratch, index ann.Index, rows ann.Segment, q []float32, k int, accept, over ann.Filter) ([]ann.Result, error) {
	n := len(v.snap.bundle.Movies)
	k = min(k, v.ov.movies(n))
	if k <= 0 {
		return sc.results[:0], nil
	}
	res, err := index.Search(sc.results[:0], q, min(k, n), accept)
	if err != nil {
		return nil, fmt.Errorf("recall: search: %w", err)
	}
	sc.results = res
	if v.ov.nLive == 0 {
		return res, nil
	}
	// Overlay ids start at n, so a tie with an artifact movie goes to the artifact's.
	if sc.over, err = rows.Search(sc.over, q, k, over, int32(n)); err != nil {
		return nil, fmt.Errorf("recall: search: %w", err)
	}
	sc.merged = merge(sc.merged[:0], res, sc.over, k)
	return sc.merged, nil
}

// filter returns the movies req may recall: the requested genres (any of
// them) or every movie, less the user's seen movies (training ratings and
// recent movies) and the explicit exclusions, and less the artifact's
// movies the overlay hides. accept is over the artifact's rows (nil: all
// of them), over over the overlay's rows.
func (v *view) filter(sc *scratch, req Request, ui int32, known bool) (accept, over ann.Filter, err error) {
	snap, ov := v.snap, v.ov
	excludeSeen := (known || len(req.User.Recent) > 0) && (req.ExcludeSeen == nil || *req.ExcludeSeen)
	// No filter set: the live movies as they are (the search only reads
	// them). Every filter below must be named here, or it is skipped
	// whenever it is the only one a request sets.
	if len(req.Genres) == 0 && !excludeSeen && len(req.ExcludeMovieIDs) == 0 {
		return ov.baseLive, ov.live, nil
	}
	accept, over = sc.liveFilters(v)
	if len(req.Genres) > 0 {
		clear(accept)
		clear(over)
		for i, g := range req.Genres {
			g = strings.ToLower(g) // genre names are case-insensitive, as occupations
			gf, ok := snap.genres[g]
			of, ook := ov.genres[g]
			if !ok && !ook {
				return nil, nil, &Error{Field: fmt.Sprintf("genres[%d]", i), Message: fmt.Sprintf("unknown genre %q (GET /model lists the genres)", req.Genres[i])}
			}
			orInto(accept, gf)
			orInto(over, of)
		}
		andInto(over, ov.live)
		if ov.baseLive != nil {
			andInto(accept, ov.baseLive)
		}
	}
	// reject excludes a movie by id wherever it lives.
	reject := func(id movielens.MovieID) {
		if m, ok := snap.movies[id]; ok {
			accept.Reject(m)
		}
		if r, ok := ov.ids.get(id); ok {
			over.Reject(r)
		}
	}
	if excludeSeen {
		if known {
			for _, m := range snap.bundle.Seen[ui] {
				accept.Reject(m)
				if !ov.baseAccepts(m) { // updated since: its overlay row is seen too
					if r, ok := ov.ids.get(snap.bundle.Movies[m].ID); ok {
						over.Reject(r)
					}
				}
			}
		}
		for _, id := range req.User.Recent {
			reject(id)
		}
	}
	for _, id := range req.ExcludeMovieIDs {
		reject(id)
	}
	return accept, over, nil
}

// Score scores the given movies for the request's user. Its work is
// bounded (the user tower and at most MaxScoreIDs lookups), so it does not
// read ctx: a /score is never cut by the request's deadline.
func (s *Service) Score(_ context.Context, req ScoreRequest) (ScoreResult, error) {
	v := s.live.Load()
	if v == nil {
		return ScoreResult{}, NoModelError{}
	}
	snap := v.snap
	sc := snap.getScratch()
	defer snap.pool.Put(sc)
	_, _, used := v.userVector(sc, req.User)
	out := ScoreResult{ModelVersion: snap.info.Version, User: used, Scores: make([]Score, 0, len(req.MovieIDs)), Unknown: []movielens.MovieID{}}
	head := snap.bundle.Model.HasRatingHead()
	for _, id := range req.MovieIDs {
		g, ok := v.find(id)
		if !ok {
			out.Unknown = append(out.Unknown, id)
			continue
		}
		vec := v.vectorOf(g)
		sco := Score{MovieID: id, Score: ann.Dot(sc.q, vec)}
		if head {
			r := snap.bundle.Model.Rating(sc.q, vec)
			sco.Rating = &r
		}
		out.Scores = append(out.Scores, sco)
	}
	return out, nil
}
