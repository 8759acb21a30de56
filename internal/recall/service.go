package recall

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/artifact"
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
type Service struct {
	opts    Options
	logger  zerolog.Logger
	live    atomic.Pointer[snapshot]
	metrics *metrics
	loadMu  sync.Mutex // one load at a time
}

// New returns a Service with no model; call Load.
func New(opts Options, logger zerolog.Logger, reg prometheus.Registerer) (*Service, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Service{opts: opts, logger: logger, metrics: m}, nil
}

// Load builds indexes for b, self-checks HNSW against exact, and swaps b in
// as the live model. On error the previous model keeps serving.
func (s *Service) Load(b *artifact.Bundle) error {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	start := time.Now()
	snap, err := newSnapshot(b, s.opts, s.logger)
	if err != nil {
		s.LoadFailed()
		return err
	}
	snap.info.LoadedAt = time.Now().UTC()
	s.live.Store(snap)
	s.metrics.observeLoad(snap.info, time.Since(start))
	s.logger.Info().Str("version", snap.info.Version).Str("backend", snap.info.Backend).
		Int("movies", snap.info.Movies).Dur("load", time.Since(start)).
		Interface("index_recall", snap.info.IndexRecall).Msg("model loaded")
	return nil
}

// Info describes the live model; false when none is loaded.
func (s *Service) Info() (ModelInfo, bool) {
	snap := s.live.Load()
	if snap == nil {
		return ModelInfo{}, false
	}
	return snap.info, true
}

// Recall returns the top-K movies for the request's user. The request's
// limits (see the constants) are the caller's to check; a genre the model
// does not know is an *Error. It answers ctx's error if ctx is done before
// the index search.
func (s *Service) Recall(ctx context.Context, req Request) (Result, error) {
	snap := s.live.Load()
	if snap == nil {
		return Result{}, NoModelError{}
	}
	sc := snap.getScratch()
	defer snap.pool.Put(sc)
	ui, known, used := snap.userVector(sc, req.User)
	accept, err := snap.filter(sc, req, ui, known)
	if err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	want := min(req.K+req.Offset, len(snap.bundle.Movies))
	res, err := snap.index.Search(sc.results[:0], sc.q, want, accept)
	if err != nil {
		return Result{}, fmt.Errorf("recall: search: %w", err)
	}
	sc.results = res
	// Both backends return exact ann.Dot scores (the one score function,
	// which Score uses too), best first with ties by lower index, so
	// scores and order agree with Score to the bit.
	out := Result{ModelVersion: snap.info.Version, Backend: snap.info.Backend, KnownUser: known, User: used, Items: []Item{}}
	if req.Offset < len(res) {
		res = res[req.Offset:]
		out.Items = make([]Item, len(res))
		for i, r := range res {
			mv := &snap.bundle.Movies[r.ID]
			out.Items[i] = Item{MovieID: mv.ID, Title: mv.Title, Genres: mv.Genres, Year: mv.Year, Score: r.Score}
		}
	}
	return out, nil
}

// filter returns the movies req may recall: the requested genres (any of
// them) or every movie, less the user's seen movies (training ratings and
// recent movies) and the explicit exclusions; nil when nothing is filtered.
func (snap *snapshot) filter(sc *scratch, req Request, ui int32, known bool) (ann.Filter, error) {
	excludeSeen := (known || len(req.User.Recent) > 0) && (req.ExcludeSeen == nil || *req.ExcludeSeen)
	if len(req.Genres) == 0 && !excludeSeen && len(req.ExcludeMovieIDs) == 0 {
		return nil, nil
	}
	accept := sc.filter
	if len(req.Genres) == 0 {
		copy(accept, snap.all)
	} else {
		clear(accept)
		for i, g := range req.Genres {
			gf, ok := snap.genres[strings.ToLower(g)] // genre names are case-insensitive, as occupations
			if !ok {
				return nil, &Error{Field: fmt.Sprintf("genres[%d]", i), Message: fmt.Sprintf("unknown genre %q (GET /model lists the genres)", g)}
			}
			for w, bits := range gf {
				accept[w] |= bits
			}
		}
	}
	if excludeSeen && known {
		for _, m := range snap.bundle.Seen[ui] {
			accept.Reject(m)
		}
	}
	if excludeSeen {
		for _, id := range req.User.Recent {
			if m, ok := snap.movies[id]; ok {
				accept.Reject(m)
			}
		}
	}
	for _, id := range req.ExcludeMovieIDs {
		if m, ok := snap.movies[id]; ok {
			accept.Reject(m)
		}
	}
	return accept, nil
}

// Score scores the given movies for the request's user.
func (s *Service) Score(ctx context.Context, req ScoreRequest) (ScoreResult, error) {
	snap := s.live.Load()
	if snap == nil {
		return ScoreResult{}, NoModelError{}
	}
	sc := snap.getScratch()
	defer snap.pool.Put(sc)
	_, _, used := snap.userVector(sc, req.User)
	out := ScoreResult{ModelVersion: snap.info.Version, User: used, Scores: make([]Score, 0, len(req.MovieIDs)), Unknown: []movielens.MovieID{}}
	head := snap.bundle.Model.HasRatingHead()
	for _, id := range req.MovieIDs {
		m, ok := snap.movies[id]
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
