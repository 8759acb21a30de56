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

// Request asks for the top-K movies for one user.
type Request struct {
	User            feature.UserInput
	K               int                 // 1..MaxK
	Offset          int                 // items to skip, for paging (0..MaxOffset)
	ExcludeSeen     *bool               // nil: true for users with a training history
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
	Items        []Item
}

// ScoreRequest asks for the scores of given movies for one user.
type ScoreRequest struct {
	User     feature.UserInput
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
	Scores       []Score
	Unknown      []movielens.MovieID
}

// ModelInfo describes the live model for GET /model.
type ModelInfo struct {
	Version     string
	CreatedAt   time.Time
	LoadedAt    time.Time
	Objective   string
	Dim         int
	Movies      int
	Users       int
	Backend     string             // index answering /recall
	IndexRecall map[string]float64 // HNSW self-check against exact, "recall@10" ...
	Metrics     map[string]float64 // training-time evaluation
	// Vocabularies a client may send: "gender", "age" (bucket lower bounds),
	// "occupation" (canonical names), "genres".
	Vocabularies map[string][]string
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
