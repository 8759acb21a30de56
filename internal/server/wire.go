package server

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/recall"
)

// Limits of the contract (openapi.yaml) beyond those of package recall.
// Lengths count characters, as JSON Schema's maxLength does.
const (
	minAge, maxAge = 1, 120
	maxGenres      = 64
	maxNameLen     = 64 // occupation and genre names
	maxZipLen      = 16
)

// contractRange is the contract's range of an integer member decoded as
// int64, by field: a number past int64's range is told the range a client
// can act on, not int64's (the int32 ids' bound is the contract's).
func contractRange(field string) (lo, hi int64, ok bool) {
	switch field {
	case "k":
		return 1, recall.MaxK, true
	case "offset":
		return 0, recall.MaxOffset, true
	case "user.age":
		return minAge, maxAge, true
	case "year": // PUT /movies/{movie_id}
		return movielens.MinYear, movielens.MaxYear, true
	}
	return 0, 0, false
}

// The request bodies as they travel. Optional members are pointers (nil:
// absent; decodeJSON refuses null) or pre-set defaults; request() checks
// every value once, here at the boundary, and converts the body into the
// serving core's request.

type userBody struct {
	UserID     *movielens.UserID `json:"user_id"`
	Gender     *string           `json:"gender"`
	Age        *int64            `json:"age"`
	Occupation *string           `json:"occupation"`
	Zip        *string           `json:"zip"`
	// RecentMovieIDs are the movies the user watched recently, newest
	// first: the history the user tower pools, added to a known user's.
	RecentMovieIDs []movielens.MovieID `json:"recent_movie_ids"`
}

type recallBody struct {
	User            *userBody           `json:"user"`
	K               *int64              `json:"k"`
	Offset          int64               `json:"offset"`
	ExcludeSeen     *bool               `json:"exclude_seen"`
	ExcludeMovieIDs []movielens.MovieID `json:"exclude_movie_ids"`
	Genres          []string            `json:"genres"`
}

// batchBody is POST /recall/batch: each entry is decoded, checked and
// answered on its own, so one bad entry does not fail the others.
type batchBody struct {
	Requests []jsontext.Value `json:"requests"`
}

type batchResponse struct {
	Results []any `json:"results"` // a recallResponse or a problem per entry
}

type scoreBody struct {
	User     *userBody           `json:"user"`
	MovieIDs []movielens.MovieID `json:"movie_ids"`
}

func (b *recallBody) request(maxRecent int) (recall.Request, *apiError) {
	req := recall.Request{K: recall.DefaultK, Offset: int(b.Offset), ExcludeSeen: b.ExcludeSeen, ExcludeMovieIDs: b.ExcludeMovieIDs, Genres: b.Genres}
	var err *apiError
	if req.User, err = b.User.input(maxRecent); err != nil {
		return req, err
	}
	if b.K != nil {
		if k := *b.K; k < 1 || k > recall.MaxK {
			return req, invalid("k", fmt.Sprintf("k must be between 1 and %d, got %d", recall.MaxK, k))
		}
		req.K = int(*b.K)
	}
	if b.Offset < 0 || b.Offset > recall.MaxOffset {
		return req, invalid("offset", fmt.Sprintf("offset must be between 0 and %d, got %d", recall.MaxOffset, b.Offset))
	}
	if err = movieIDs("exclude_movie_ids", b.ExcludeMovieIDs, 0, recall.MaxExcluded); err != nil {
		return req, err
	}
	if len(b.Genres) > maxGenres {
		return req, invalid("genres", fmt.Sprintf("genres may list at most %d names, got %d", maxGenres, len(b.Genres)))
	}
	for i, g := range b.Genres {
		if g == "" || utf8.RuneCountInString(g) > maxNameLen {
			return req, invalid("genres", fmt.Sprintf("genres[%d] must be a genre name of 1 to %d characters", i, maxNameLen))
		}
	}
	return req, nil
}

func (b *scoreBody) request(maxRecent int) (recall.ScoreRequest, *apiError) {
	req := recall.ScoreRequest{MovieIDs: b.MovieIDs}
	var err *apiError
	if req.User, err = b.User.input(maxRecent); err != nil {
		return req, err
	}
	if b.MovieIDs == nil {
		return req, invalid("movie_ids", "movie_ids is required")
	}
	if err = movieIDs("movie_ids", b.MovieIDs, 1, recall.MaxScoreIDs); err != nil {
		return req, err
	}
	return req, distinct("movie_ids", b.MovieIDs)
}

// distinct refuses a list of ids that repeats one.
func distinct(name string, ids []movielens.MovieID) *apiError {
	first := make(map[movielens.MovieID]int, len(ids))
	for i, id := range ids {
		if j, dup := first[id]; dup {
			return invalid(name, fmt.Sprintf("%s[%d] repeats %s[%d] (%d)", name, i, name, j, id))
		}
		first[id] = i
	}
	return nil
}

// movieIDs checks a list of movie ids: minN to maxN of them, each positive
// (the decoder refuses those past MaxInt32).
func movieIDs(name string, ids []movielens.MovieID, minN, maxN int) *apiError {
	if len(ids) < minN || len(ids) > maxN {
		return invalid(name, fmt.Sprintf("%s must list %d to %d ids, got %d", name, minN, maxN, len(ids)))
	}
	for i, id := range ids {
		if id < 1 {
			return invalid(name, fmt.Sprintf("%s[%d] must be a movie id between 1 and %d, got %d", name, i, math.MaxInt32, id))
		}
	}
	return nil
}

// input checks a user's features and recent movies and converts them;
// absent features stay zero, which the encoder treats as unknown.
func (u *userBody) input(maxRecent int) (recall.User, *apiError) {
	var user recall.User
	if u == nil {
		return user, invalid("user", "user is required (an empty object is a cold-start user)")
	}
	if u.UserID != nil {
		if id := *u.UserID; id < 1 {
			return user, invalid("user.user_id", fmt.Sprintf("user.user_id must be between 1 and %d, got %d", math.MaxInt32, id))
		}
		user.UserID = *u.UserID
	}
	if u.Gender != nil {
		if g := *u.Gender; g != "F" && g != "M" {
			return user, invalid("user.gender", `user.gender must be "F" or "M", got `+quote(g))
		}
		user.Gender = *u.Gender
	}
	if u.Age != nil {
		if a := *u.Age; a < minAge || a > maxAge {
			return user, invalid("user.age", fmt.Sprintf("user.age must be between %d and %d years, got %d", minAge, maxAge, a))
		}
		user.Age = int(*u.Age)
	}
	if u.Occupation != nil {
		c, ok := "", false
		if o := *u.Occupation; utf8.RuneCountInString(o) <= maxNameLen {
			c, ok = movielens.CanonicalOccupation(o)
		}
		if !ok {
			return user, invalid("user.occupation", "unknown user.occupation "+quote(*u.Occupation)+"; GET /model lists vocabularies.occupation")
		}
		user.Occupation = c
	}
	if u.Zip != nil {
		if !validZip(*u.Zip) {
			return user, invalid("user.zip", "user.zip must be 1 to 16 letters, digits, spaces or hyphens starting with a letter or digit, got "+quote(*u.Zip))
		}
		user.Zip = *u.Zip
	}
	user.Recent = u.RecentMovieIDs
	if err := movieIDs("user.recent_movie_ids", u.RecentMovieIDs, 0, maxRecent); err != nil {
		return user, err
	}
	return user, distinct("user.recent_movie_ids", u.RecentMovieIDs)
}

// validZip accepts 1 to maxZipLen letters, digits, spaces or hyphens, the
// first a letter or digit.
func validZip(z string) bool {
	const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	return z != "" && len(z) <= maxZipLen && strings.IndexByte(alnum, z[0]) >= 0 && strings.Trim(z, alnum+" -") == ""
}

// The response bodies. recall's types carry no JSON: these name the
// members, and json/v2 writes nil slices as [].

type recallResponse struct {
	ModelVersion string     `json:"model_version"`
	Backend      string     `json:"backend"`
	KnownUser    bool       `json:"known_user"`
	User         userJSON   `json:"user"`
	Items        []itemJSON `json:"items"`
	NextOffset   int        `json:"next_offset,omitzero"`
}

// userJSON says what the user tower was given: the request's own
// features, and the names of those taken from the user's stored profile,
// whose values are not returned (a caller that sends a user id learns no
// profile it did not send).
type userJSON struct {
	UserID                int32               `json:"user_id,omitzero"`
	Gender                string              `json:"gender,omitzero"`
	Age                   int                 `json:"age,omitzero"`
	Occupation            string              `json:"occupation,omitzero"`
	Zip                   string              `json:"zip,omitzero"`
	StoredFeatures        []string            `json:"stored_features"`
	HistoryMovies         int                 `json:"history_movies"`
	UnknownRecentMovieIDs []movielens.MovieID `json:"unknown_recent_movie_ids"`
}

func newUserJSON(u recall.UsedUser) userJSON {
	f := u.Features
	for _, name := range u.Stored {
		switch name {
		case "gender":
			f.Gender = ""
		case "age":
			f.Age = 0
		case "occupation":
			f.Occupation = ""
		case "zip":
			f.Zip = ""
		}
	}
	return userJSON{
		UserID: int32(f.UserID), Gender: f.Gender, Age: f.Age, Occupation: f.Occupation, Zip: f.Zip,
		StoredFeatures: u.Stored, HistoryMovies: u.History, UnknownRecentMovieIDs: u.UnknownRecent,
	}
}

type itemJSON struct {
	MovieID movielens.MovieID `json:"movie_id"`
	Title   string            `json:"title"`
	Genres  []string          `json:"genres"`
	Year    int               `json:"year,omitzero"`
	Score   float32           `json:"score"`
}

func newItemsJSON(items []recall.Item) []itemJSON {
	out := make([]itemJSON, len(items))
	for i, it := range items {
		out[i] = itemJSON(it)
	}
	return out
}

func newRecallResponse(res recall.Result) recallResponse {
	return recallResponse{ModelVersion: res.ModelVersion, Backend: res.Backend, KnownUser: res.KnownUser, User: newUserJSON(res.User), Items: newItemsJSON(res.Items), NextOffset: res.NextOffset}
}

type scoreResponse struct {
	ModelVersion    string              `json:"model_version"`
	User            userJSON            `json:"user"`
	Scores          []scoreJSON         `json:"scores"`
	UnknownMovieIDs []movielens.MovieID `json:"unknown_movie_ids"`
}

type scoreJSON struct {
	MovieID movielens.MovieID `json:"movie_id"`
	Score   float32           `json:"score"`
	Rating  *float32          `json:"rating,omitzero"`
}

func newScoreResponse(res recall.ScoreResult) scoreResponse {
	out := scoreResponse{ModelVersion: res.ModelVersion, User: newUserJSON(res.User), Scores: make([]scoreJSON, len(res.Scores)), UnknownMovieIDs: res.Unknown}
	for i, sc := range res.Scores {
		out.Scores[i] = scoreJSON(sc)
	}
	return out
}

type modelResponse struct {
	Version      string              `json:"version"`
	CreatedAt    string              `json:"created_at"`
	LoadedAt     string              `json:"loaded_at"`
	Objective    string              `json:"objective"`
	Dim          int                 `json:"dim"`
	Movies       int                 `json:"movies"`
	Users        int                 `json:"users"`
	Backend      string              `json:"backend"`
	IndexRecall  map[string]float64  `json:"index_recall"`
	IndexLatency map[string]float64  `json:"index_latency_us"`
	IndexChoice  string              `json:"index_choice"`
	IndexEf      int                 `json:"index_ef_search,omitzero"`
	HNSWMaxDepth int                 `json:"hnsw_max_depth,omitzero"`
	Metrics      map[string]float64  `json:"metrics"`
	Vocabularies map[string][]string `json:"vocabularies"`
	Catalog      catalogJSON         `json:"catalog"`
	Prior        *priorJSON          `json:"prior,omitzero"`
	// RecentHistory: see recall.ModelInfo; absent without the feature.
	RecentHistory int    `json:"recent_history,omitzero"`
	Recipe        string `json:"recipe,omitzero"` // see recall.ModelInfo
}

type priorJSON struct {
	Now          string  `json:"now"`
	HalfLifeDays float64 `json:"half_life_days"`
	Weight       float32 `json:"weight"`
	ColdWeight   float32 `json:"cold_weight"`
	RecentWeight float32 `json:"recent_weight"`
	FeatureShare float32 `json:"feature_share"`
	Ratings      int     `json:"ratings"`
}

type catalogJSON struct {
	Writable bool   `json:"writable"`
	Added    int    `json:"added"`
	Updated  int    `json:"updated"`
	Deleted  int    `json:"deleted"`
	Seq      uint64 `json:"journal_seq"`
}

func newModelResponse(info recall.ModelInfo) modelResponse {
	return modelResponse{
		Version:       info.Version,
		CreatedAt:     info.CreatedAt.UTC().Format(time.RFC3339Nano),
		LoadedAt:      info.LoadedAt.UTC().Format(time.RFC3339Nano),
		Objective:     info.Objective,
		Dim:           info.Dim,
		Movies:        info.Movies,
		Users:         info.Users,
		Backend:       info.Backend,
		IndexRecall:   finite(info.IndexRecall),
		IndexLatency:  finite(info.IndexLatency),
		IndexChoice:   info.IndexChoice,
		IndexEf:       info.IndexEfSearch,
		HNSWMaxDepth:  info.HNSWMaxDepth,
		Metrics:       finite(info.Metrics),
		Vocabularies:  info.Vocabularies,
		Prior:         newPriorJSON(info.Prior),
		RecentHistory: info.RecentHistory,
		Recipe:        info.Recipe,
		Catalog:       catalogJSON(info.Catalog),
	}
}

func newPriorJSON(p *recall.PriorInfo) *priorJSON {
	if p == nil {
		return nil
	}
	return &priorJSON{Now: p.Now.UTC().Format(time.RFC3339Nano), HalfLifeDays: p.HalfLifeDays, Weight: p.Weight, ColdWeight: p.ColdWeight, RecentWeight: p.RecentWeight, FeatureShare: p.FeatureShare, Ratings: p.Ratings}
}

// finite copies m without NaN and ±Inf, which JSON cannot carry (a metric
// such as RMSE may be undefined for some objectives).
func finite(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[k] = v
		}
	}
	return out
}

type statusResponse struct {
	Status       string `json:"status"`
	ModelVersion string `json:"model_version,omitzero"`
}
