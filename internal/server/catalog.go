package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/towerrecall/towerrecall/internal/catalog"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/recall"
)

// The catalogue endpoints. GET /movies and GET /movies/{movie_id}/similar
// read the live catalogue. Changes need no retraining: PUT
// /movies/{movie_id} adds or replaces a movie (the movie tower gives it a
// vector from its genres and year), DELETE /movies/{movie_id} hides one.
// Both need the configured bearer token; without one configured their
// routes do not exist.

// handleMovies answers GET /movies?q=&limit=&offset=: catalogue movies
// whose titles contain q, a page of them.
func (s *Server) handleMovies(w http.ResponseWriter, r *http.Request) error {
	params, aerr := queryParams(r, "q", "limit", "offset")
	if aerr != nil {
		return aerr
	}
	q := params.Get("q")
	if !utf8.ValidString(q) || utf8.RuneCountInString(q) > recall.MaxMoviesQuery {
		return invalid("q", fmt.Sprintf("q must be valid UTF-8 of at most %d characters", recall.MaxMoviesQuery))
	}
	limit, aerr := intParam(params, "limit", recall.DefaultMoviesLimit, 1, recall.MaxMoviesLimit)
	if aerr != nil {
		return aerr
	}
	offset, aerr := intParam(params, "offset", 0, 0, recall.MaxOffset)
	if aerr != nil {
		return aerr
	}
	res, err := s.rec.Movies(q, offset, limit)
	if err != nil {
		return err
	}
	out := moviesResponse{ModelVersion: res.ModelVersion, Total: res.Total, Movies: make([]movieJSON, len(res.Movies)), NextOffset: res.NextOffset}
	for i, m := range res.Movies {
		out.Movies[i] = movieJSON(m)
	}
	return writeJSON(w, r, http.StatusOK, out)
}

// handleSimilar answers GET /movies/{movie_id}/similar?k=: the movie
// tower's nearest neighbours of one movie.
func (s *Server) handleSimilar(w http.ResponseWriter, r *http.Request) error {
	params, aerr := queryParams(r, "k")
	if aerr != nil {
		return aerr
	}
	id, aerr := movieIDParam(r)
	if aerr != nil {
		return aerr
	}
	k, aerr := intParam(params, "k", recall.DefaultSimilarK, 1, recall.MaxSimilarK)
	if aerr != nil {
		return aerr
	}
	ctx, cancel := s.deadline(r)
	defer cancel()
	res, err := s.rec.Similar(ctx, id, k)
	if ue, ok := errors.AsType[*recall.UnknownMovieError](err); ok {
		return &apiError{code: codeNotFound, field: "movie_id", detail: ue.Error() + "; GET /movies lists the catalogue", cause: err}
	}
	if err != nil {
		return err
	}
	return writeJSON(w, r, http.StatusOK, similarResponse{ModelVersion: res.ModelVersion, Movie: movieJSON(res.Movie), Items: newItemsJSON(res.Items)})
}

type movieJSON struct {
	MovieID movielens.MovieID `json:"movie_id"`
	Title   string            `json:"title"`
	Genres  []string          `json:"genres"`
	Year    int               `json:"year,omitzero"`
}

type moviesResponse struct {
	ModelVersion string      `json:"model_version"`
	Total        int         `json:"total"`
	Movies       []movieJSON `json:"movies"`
	NextOffset   int         `json:"next_offset,omitzero"`
}

type similarResponse struct {
	ModelVersion string     `json:"model_version"`
	Movie        movieJSON  `json:"movie"`
	Items        []itemJSON `json:"items"`
}

// catalogRealm names the protection space in WWW-Authenticate.
const catalogRealm = `Bearer realm="towerrecall catalogue"`

// catalogAuth admits requests whose Authorization header carries the
// catalogue token. The comparison is of SHA-256 digests in constant time,
// so neither the token's bytes nor its length leak through timing. A
// request with more than one Authorization header is refused: the field
// is a singleton, and a proxy that reads another one than the first would
// disagree about who sent it.
func (s *Server) catalogAuth(next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(s.cfg.CatalogToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := ""
		if vs := r.Header.Values("Authorization"); len(vs) == 1 {
			auth = vs[0]
		}
		scheme, token, ok := strings.Cut(auth, " ")
		token = strings.TrimLeft(token, " ") // one or more spaces (RFC 9110 §11.4)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", catalogRealm)
			s.fail(w, r, &apiError{code: codeUnauthorized, detail: "catalogue changes need the catalogue token: send one Authorization: Bearer <token> header"})
			return
		}
		got := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", catalogRealm+`, error="invalid_token"`)
			s.fail(w, r, &apiError{code: codeUnauthorized, detail: "the bearer token is not the catalogue token"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// movieBody is PUT /movies/{movie_id}.
type movieBody struct {
	Title  *string  `json:"title"`
	Genres []string `json:"genres"`
	Year   *int64   `json:"year"`
}

// change checks every member and converts the body.
func (b *movieBody) change(id movielens.MovieID) (recall.Movie, *apiError) {
	m := recall.Movie{MovieID: id}
	switch {
	case b.Title == nil:
		return m, invalid("title", "title is required")
	case b.Genres == nil:
		return m, invalid("genres", "genres is required: the movie tower's vector for a new movie comes from its genres and year")
	case b.Year != nil && (*b.Year < movielens.MinYear || *b.Year > movielens.MaxYear):
		return m, invalid("year", fmt.Sprintf("year must be between %d and %d (omit it if unknown), got %d", movielens.MinYear, movielens.MaxYear, *b.Year))
	}
	m.Title, m.Genres = *b.Title, b.Genres
	if b.Year != nil {
		m.Year = int(*b.Year)
	}
	if fe, ok := errors.AsType[*catalog.FieldError](catalog.CheckMovie(m.Title, m.Genres, m.Year)); ok {
		return m, invalid(fe.Field, fe.Message)
	}
	return m, nil
}

// movieIDParam reads the {movie_id} of the path.
func movieIDParam(r *http.Request) (movielens.MovieID, *apiError) {
	raw := chi.URLParam(r, "movie_id") // routed on the escaped path when it has one
	if u, err := url.PathUnescape(raw); err == nil {
		raw = u // %32%36%30 is 260 (RFC 3986 §6.2.2.2)
	}
	id, err := plainInt("movie_id", raw, 1, math.MaxInt32)
	return movielens.MovieID(id), err
}

type putMovieResponse struct {
	ModelVersion string    `json:"model_version"`
	Created      bool      `json:"created"`
	Changed      bool      `json:"changed"`
	Movie        movieJSON `json:"movie"`
	VectorNorm   float32   `json:"vector_norm"`
	JournalSeq   uint64    `json:"journal_seq"`
}

type deleteMovieResponse struct {
	ModelVersion string            `json:"model_version"`
	MovieID      movielens.MovieID `json:"movie_id"`
	JournalSeq   uint64            `json:"journal_seq"`
}

// handlePutMovie answers PUT /movies/{movie_id}: 201 for a movie the live
// catalogue did not have, 200 for a replaced one or one live as sent.
func (s *Server) handlePutMovie(w http.ResponseWriter, r *http.Request) error {
	id, aerr := movieIDParam(r)
	if aerr != nil {
		return aerr
	}
	var body movieBody
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	ch, aerr := body.change(id)
	if aerr != nil {
		return aerr
	}
	ctx, cancel := s.deadline(r)
	defer cancel()
	res, err := s.rec.PutMovie(ctx, ch)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	return writeJSON(w, r, status, putMovieResponse{
		ModelVersion: res.ModelVersion, Created: res.Created, Changed: res.Changed, Movie: movieJSON(res.Movie),
		VectorNorm: res.VectorNorm, JournalSeq: res.Seq,
	})
}

// handleDeleteMovie answers DELETE /movies/{movie_id}.
func (s *Server) handleDeleteMovie(w http.ResponseWriter, r *http.Request) error {
	id, aerr := movieIDParam(r)
	if aerr != nil {
		return aerr
	}
	if _, aerr := queryParams(r); aerr != nil { // ?dry_run=true must not delete
		return aerr
	}
	if hasBody(r) { // nor may {"dry_run":true} in a body, which nothing reads
		return &apiError{code: codeInvalid, detail: "DELETE /movies/{movie_id} takes no request body: nothing in one could change what is deleted"}
	}
	ctx, cancel := s.deadline(r)
	defer cancel()
	res, err := s.rec.DeleteMovie(ctx, id)
	if err != nil {
		return err
	}
	return writeJSON(w, r, http.StatusOK, deleteMovieResponse{ModelVersion: res.ModelVersion, MovieID: res.MovieID, JournalSeq: res.Seq})
}

// hasBody reports whether r may carry a body. A body of unknown length
// (chunked) is read for its first byte: only one that ends cleanly before
// it is no body; one that cannot be read (malformed chunks, the read
// timeout) may be, so it counts as one.
func hasBody(r *http.Request) bool {
	if r.ContentLength >= 0 {
		return r.ContentLength > 0
	}
	var b [1]byte
	n, err := io.ReadFull(r.Body, b[:])
	return n > 0 || err != io.EOF
}
