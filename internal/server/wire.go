package server

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/recall"
)

// Limits of the contract beyond those of package recall.
const (
	minAge, maxAge       = 1, 120
	maxGenres            = 64
	maxNameLen           = 64 // occupation and genre names
	maxZipLen            = 16
	maxMovieID     int64 = math.MaxInt32
	maxUserID      int64 = math.MaxInt32
)

// The request bodies as they travel. Every member is optional at the JSON
// level (present[T] rejects null); required members are checked when the
// body is converted into the serving core's request.

type userBody struct {
	UserID     present[int64]  `json:"user_id"`
	Gender     present[string] `json:"gender"`
	Age        present[int64]  `json:"age"`
	Occupation present[string] `json:"occupation"`
	Zip        present[string] `json:"zip"`
}

type recallBody struct {
	User            present[userBody]  `json:"user"`
	K               present[int64]     `json:"k"`
	Offset          present[int64]     `json:"offset"`
	ExcludeSeen     present[bool]      `json:"exclude_seen"`
	ExcludeMovieIDs present[[]movieID] `json:"exclude_movie_ids"`
	Genres          present[[]string]  `json:"genres"`
}

type scoreBody struct {
	User     present[userBody]  `json:"user"`
	MovieIDs present[[]movieID] `json:"movie_ids"`
}

// membersOf derives the member names of a body type from its json tags, so
// checkMembers can never disagree with the decoder.
func membersOf(t reflect.Type) *memberSet {
	set := &memberSet{nested: map[string]*memberSet{}}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		set.names = append(set.names, name)
		// present[T] keeps its value in v; a struct T is a nested object.
		if v, ok := f.Type.FieldByName("v"); ok && v.Type.Kind() == reflect.Struct {
			set.nested[name] = membersOf(v.Type)
		}
	}
	if len(set.names) > 64 {
		panic("server: checkMembers tracks at most 64 members per object") // programmer error
	}
	return set
}

func (b *recallBody) request() (recall.Request, *apiError) {
	var req recall.Request
	if !b.User.set {
		return req, invalid("user", "user is required (an empty object is a cold-start user)")
	}
	u, err := b.User.v.input()
	if err != nil {
		return req, err
	}
	req.User = u
	req.K = recall.DefaultK
	if b.K.set {
		if k := b.K.v; k < 1 || k > recall.MaxK {
			return req, invalid("k", fmt.Sprintf("k must be between 1 and %d, got %d", recall.MaxK, k))
		}
		req.K = int(b.K.v)
	}
	if b.Offset.set {
		if o := b.Offset.v; o < 0 || o > recall.MaxOffset {
			return req, invalid("offset", fmt.Sprintf("offset must be between 0 and %d, got %d", recall.MaxOffset, o))
		}
		req.Offset = int(b.Offset.v)
	}
	if b.ExcludeSeen.set {
		v := b.ExcludeSeen.v
		req.ExcludeSeen = &v
	}
	if b.ExcludeMovieIDs.set {
		ids := b.ExcludeMovieIDs.v
		if len(ids) > recall.MaxExcluded {
			return req, invalid("exclude_movie_ids", fmt.Sprintf("exclude_movie_ids may list at most %d ids, got %d", recall.MaxExcluded, len(ids)))
		}
		req.ExcludeMovieIDs = make([]movielens.MovieID, len(ids))
		for i, id := range ids {
			if err := checkMovieID("exclude_movie_ids", i, id); err != nil {
				return req, err
			}
			req.ExcludeMovieIDs[i] = movielens.MovieID(id)
		}
	}
	if b.Genres.set {
		gs := b.Genres.v
		if len(gs) > maxGenres {
			return req, invalid("genres", fmt.Sprintf("genres may list at most %d names, got %d", maxGenres, len(gs)))
		}
		for i, g := range gs {
			if g == "" || len(g) > maxNameLen {
				return req, invalid("genres", fmt.Sprintf("genres[%d] must be a genre name of 1 to %d bytes", i, maxNameLen))
			}
		}
		req.Genres = gs
	}
	return req, nil
}

func (b *scoreBody) request() (recall.ScoreRequest, *apiError) {
	var req recall.ScoreRequest
	if !b.User.set {
		return req, invalid("user", "user is required (an empty object is a cold-start user)")
	}
	u, err := b.User.v.input()
	if err != nil {
		return req, err
	}
	req.User = u
	if !b.MovieIDs.set {
		return req, invalid("movie_ids", "movie_ids is required")
	}
	ids := b.MovieIDs.v
	if len(ids) < 1 || len(ids) > recall.MaxScoreIDs {
		return req, invalid("movie_ids", fmt.Sprintf("movie_ids must list 1 to %d ids, got %d", recall.MaxScoreIDs, len(ids)))
	}
	req.MovieIDs = make([]movielens.MovieID, len(ids))
	first := make(map[movieID]int, len(ids))
	for i, id := range ids {
		if err := checkMovieID("movie_ids", i, id); err != nil {
			return req, err
		}
		if j, dup := first[id]; dup {
			return req, invalid("movie_ids", fmt.Sprintf("movie_ids[%d] repeats movie_ids[%d] (%d)", i, j, id))
		}
		first[id] = i
		req.MovieIDs[i] = movielens.MovieID(id)
	}
	return req, nil
}

func checkMovieID(field string, i int, id movieID) *apiError {
	if id < 1 || int64(id) > maxMovieID {
		return invalid(field, fmt.Sprintf("%s[%d] must be a movie id between 1 and %d, got %d", field, i, maxMovieID, id))
	}
	return nil
}

// input checks a user's features and converts them; absent features stay
// zero, which the encoder treats as unknown.
func (u *userBody) input() (feature.UserInput, *apiError) {
	var in feature.UserInput
	if u.UserID.set {
		if id := u.UserID.v; id < 1 || id > maxUserID {
			return in, invalid("user.user_id", fmt.Sprintf("user.user_id must be between 1 and %d, got %d", maxUserID, id))
		}
		in.UserID = strconv.FormatInt(u.UserID.v, 10)
	}
	if u.Gender.set {
		if g := u.Gender.v; g != "F" && g != "M" {
			return in, invalid("user.gender", `user.gender must be "F" or "M", got `+quote(g))
		}
		in.Gender = u.Gender.v
	}
	if u.Age.set {
		if a := u.Age.v; a < minAge || a > maxAge {
			return in, invalid("user.age", fmt.Sprintf("user.age must be between %d and %d years, got %d", minAge, maxAge, a))
		}
		in.Age = int(u.Age.v)
	}
	if u.Occupation.set {
		o := u.Occupation.v
		c, ok := "", false
		if len(o) <= maxNameLen {
			c, ok = movielens.CanonicalOccupation(o)
		}
		if !ok {
			return in, invalid("user.occupation", "unknown user.occupation "+quote(o)+"; GET /model lists vocabularies.occupation")
		}
		in.Occupation = c
	}
	if u.Zip.set {
		if z := u.Zip.v; !validZip(z) {
			return in, invalid("user.zip", "user.zip must be 1 to 16 letters, digits, spaces or hyphens starting with a letter or digit, got "+quote(z))
		}
		in.Zip = u.Zip.v
	}
	return in, nil
}

func validZip(z string) bool {
	if z == "" || len(z) > maxZipLen || !isAlnum(z[0]) {
		return false
	}
	for i := 1; i < len(z); i++ {
		if c := z[i]; !isAlnum(c) && c != ' ' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// The response bodies.

type recallResponse struct {
	ModelVersion string     `json:"model_version"`
	Backend      string     `json:"backend"`
	KnownUser    bool       `json:"known_user"`
	Items        []itemJSON `json:"items"`
}

type itemJSON struct {
	MovieID movielens.MovieID `json:"movie_id"`
	Title   string            `json:"title"`
	Genres  []string          `json:"genres"`
	Year    int               `json:"year,omitempty"`
	Score   float32           `json:"score"`
}

func newRecallResponse(res recall.Result) recallResponse {
	out := recallResponse{
		ModelVersion: res.ModelVersion,
		Backend:      res.Backend,
		KnownUser:    res.KnownUser,
		Items:        make([]itemJSON, len(res.Items)),
	}
	for i, it := range res.Items {
		g := it.Genres
		if g == nil {
			g = []string{}
		}
		out.Items[i] = itemJSON{MovieID: it.MovieID, Title: it.Title, Genres: g, Year: it.Year, Score: it.Score}
	}
	return out
}

type scoreResponse struct {
	ModelVersion    string              `json:"model_version"`
	Scores          []scoreJSON         `json:"scores"`
	UnknownMovieIDs []movielens.MovieID `json:"unknown_movie_ids"`
}

type scoreJSON struct {
	MovieID movielens.MovieID `json:"movie_id"`
	Score   float32           `json:"score"`
	Rating  *float32          `json:"rating,omitempty"`
}

func newScoreResponse(res recall.ScoreResult) scoreResponse {
	out := scoreResponse{
		ModelVersion:    res.ModelVersion,
		Scores:          make([]scoreJSON, len(res.Scores)),
		UnknownMovieIDs: res.Unknown,
	}
	if out.UnknownMovieIDs == nil {
		out.UnknownMovieIDs = []movielens.MovieID{}
	}
	for i, sc := range res.Scores {
		out.Scores[i] = scoreJSON{MovieID: sc.MovieID, Score: sc.Score, Rating: sc.Rating}
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
	Metrics      map[string]float64  `json:"metrics"`
	Vocabularies map[string][]string `json:"vocabularies"`
}

func newModelResponse(info recall.ModelInfo) modelResponse {
	vocabs := make(map[string][]string, len(info.Vocabularies))
	for k, v := range info.Vocabularies {
		if v == nil {
			v = []string{}
		}
		vocabs[k] = v
	}
	return modelResponse{
		Version:      info.Version,
		CreatedAt:    info.CreatedAt.UTC().Format(timeFormat),
		LoadedAt:     info.LoadedAt.UTC().Format(timeFormat),
		Objective:    info.Objective,
		Dim:          info.Dim,
		Movies:       info.Movies,
		Users:        info.Users,
		Backend:      info.Backend,
		IndexRecall:  finite(info.IndexRecall),
		Metrics:      finite(info.Metrics),
		Vocabularies: vocabs,
	}
}

// timeFormat is RFC 3339 with optional fractional seconds (date-time).
const timeFormat = "2006-01-02T15:04:05.999999999Z07:00"

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

type healthResponse struct {
	Status string `json:"status"`
}

type readyResponse struct {
	Status       string `json:"status"`
	ModelVersion string `json:"model_version"`
}
