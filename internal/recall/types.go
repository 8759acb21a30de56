package recall

import (
	"time"

	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
)

// Limits of a request. The HTTP layer checks them at the boundary and names
// the offending field; the Service relies on them.
const (
	DefaultK    = 10
	MaxK        = 1000
	MaxOffset   = 10000
	MaxScoreIDs = 1000
	MaxExcluded = 10000
)

// User is who a request is for: features (any may be unknown) and the
// movies they watched recently, newest first, which extend a known user's
// stored history or are the whole history of anyone else.
type User struct {
	feature.UserInput
	Recent []movielens.MovieID
}

// UsedUser is what the user tower was given for a request.
type UsedUser struct {
	Features feature.UserInput // the request's features, absent ones filled from the stored profile
	Stored   []string          // the features taken from the stored profile: "gender", "age", "occupation", "zip"
	History  int               // movies in the history the tower saw (stored ratings and recent movies); 0 if the model has no history feature
	// UnknownRecent are recent movies the model does not know (ignored).
	UnknownRecent []movielens.MovieID
}

// Request asks for the top-K movies for one user.
type Request struct {
	User            User
	K               int                 // 1..MaxK
	Offset          int                 // items to skip, for paging (0..MaxOffset)
	ExcludeSeen     *bool               // nil: true for users with a history (stored or recent); excludes both
	ExcludeMovieIDs []movielens.MovieID // never returned
	Genres          []string            // if set, keep only movies with at least one of these
}

// Item is one recalled movie.
type Item struct {
	MovieID movielens.MovieID
	Title   string
	Genres  []string // shared with the model: read-only
	Year    int      // 0: unknown
	Score   float32  // equals the Score of the same pair
}

// Result answers a Request; Items are ordered by Score, highest first.
type Result struct {
	ModelVersion string
	Backend      string // "exact" or "hnsw": the index that answered
	KnownUser    bool   // the user id had a training vector (not cold start)
	User         UsedUser
	Items        []Item
	// NextOffset is the offset of the next page when more movies pass the
	// request's filters (and it is within MaxOffset); 0 at the end.
	NextOffset int
}

// ScoreRequest asks for the scores of given movies for one user.
type ScoreRequest struct {
	User     User
	MovieIDs []movielens.MovieID // 1..MaxScoreIDs
}

// Score is the score of one movie; Rating is set when the model has a
// rating head (predicted rating on the 1–5 scale).
type Score struct {
	MovieID movielens.MovieID
	Score   float32
	Rating  *float32
}

// ScoreResult answers a ScoreRequest, in request order; ids the model does
// not know are listed in Unknown and not scored.
type ScoreResult struct {
	ModelVersion string
	User         UsedUser
	Scores       []Score
	Unknown      []movielens.MovieID
}

// ModelInfo describes the live model for GET /model.
type ModelInfo struct {
	Version   string
	CreatedAt time.Time
	LoadedAt  time.Time
	Objective string
	Dim       int
	Movies    int // live: the artifact's, less deleted, plus added (see Catalog)
	Users     int
	Backend   string // index answering /recall at k = 10
	// HNSWMaxDepth is the deepest search (offset + k) the HNSW graph
	// answers when Backend is "hnsw"; the exact scan answers deeper ones.
	HNSWMaxDepth int
	IndexRecall  map[string]float64 // HNSW self-check against exact, "recall@10" ...
	// IndexLatency is the mean time per query at k = 10, in µs, that index:
	// auto measured at load for each backend ("exact", "hnsw"; the fastest
	// of timeSearch's passes); empty when nothing was measured.
	IndexLatency map[string]float64
	IndexChoice  string // why Backend answers, such as "hnsw faster and recall ≥ min_recall"
	// IndexEfSearch is the HNSW beam width the self-check ended at: the
	// configured one, or up to 8× it when the self-check widened the beam
	// to reach min_recall (the overfetch, the beam per result for large k,
	// is widened alike); 0 without an HNSW graph.
	IndexEfSearch int
	Metrics       map[string]float64 // training-time evaluation
	// Vocabularies a client may send: "gender", "age" (bucket lower bounds),
	// "occupation" (canonical names), "genres".
	Vocabularies map[string][]string
	Catalog      CatalogInfo // changes made without retraining
	Prior        *PriorInfo  // the popularity prior in the vectors' last dimension; nil without one
	// RecentHistory is how many recent movies the user tower pools (its
	// recent-history feature: recent_movie_ids, then a known user's
	// newest); 0 without the feature.
	RecentHistory int
	// Recipe is what validation chose at training (manifest
	// training.selection.recipe); "" when nothing was searched.
	Recipe string
}

// PriorInfo describes the model's popularity prior: "now" is the time its
// counts are decayed to, the newest rating given (a movie the model lacks
// included).
type PriorInfo struct {
	Now          time.Time
	HalfLifeDays float64 // 0: no decay
	Weight       float32 // the user side for known users
	ColdWeight   float32 // the user side for cold-start users
	RecentWeight float32 // the user side for users known only by the recent movies they send
	FeatureShare float32 // of a known user's query, the share from their features alone (0: their own)
	Ratings      int     // ratings counted
}

// Error is a request the live model cannot answer (an unknown genre),
// safe to show to clients.
type Error struct {
	Field   string // JSON path of the offending field, e.g. "genres[2]"
	Message string
}

func (e *Error) Error() string { return e.Field + ": " + e.Message }

// NoModelError is returned while no model has been loaded.
type NoModelError struct{}

func (NoModelError) Error() string { return "recall: no model is loaded" }
