package recall

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/movielens"
)

// Limits of the catalogue requests; the HTTP layer checks them.
const (
	DefaultMoviesLimit = 20
	MaxMoviesLimit     = 100
	MaxMoviesQuery     = 200 // characters of a title search
	DefaultSimilarK    = 10
	MaxSimilarK        = 100
)

// Movie is one movie of the catalogue.
type Movie struct {
	MovieID movielens.MovieID
	Title   string
	Genres  []string // shared with the model: read-only
	Year    int      // 0: unknown
}

// MoviesResult answers Movies.
type MoviesResult struct {
	ModelVersion string
	Total        int     // movies that match, of which Movies holds limit from offset on
	Movies       []Movie // titles that start with the query first, then the rest; catalogue order within each
	// NextOffset is the offset of the next page when more movies match (and
	// it is within MaxOffset); 0 at the end.
	NextOffset int
}

// SimilarResult answers Similar.
type SimilarResult struct {
	ModelVersion string
	Movie        Movie  // the movie asked about
	Items        []Item // its nearest movies, highest score first
}

// UnknownMovieError is a movie id the live model does not know.
type UnknownMovieError struct {
	MovieID movielens.MovieID
}

func (e *UnknownMovieError) Error() string {
	return fmt.Sprintf("movie %d is not in the live model's catalogue", e.MovieID)
}

// Movies returns up to limit movies whose titles contain query, compared
// without case or accents (foldTitle), after the first offset of
// them (0..MaxOffset); an empty query matches every movie. It is the
// catalogue lookup of the explorer page: a person finds a movie by title,
// then asks for its neighbours.
func (s *Service) Movies(query string, offset, limit int) (MoviesResult, error) {
	v := s.live.Load()
	if v == nil {
		return MoviesResult{}, NoModelError{}
	}
	snap, ov := v.snap, v.ov
	out := MoviesResult{ModelVersion: snap.info.Version, Movies: []Movie{}}
	// Two passes keep the answer small and ordered without sorting the
	// catalogue: prefixes first (typing "toy" should find "Toy Story"
	// before "Babes in Toyland"), then titles containing it elsewhere.
	// Catalogue order is the artifact's (an updated movie keeps its
	// place), then the movies added since, in the order of their latest
	// change (a re-PUT appends a new overlay row).
	var first, later []int32
	n, want := int32(len(snap.bundle.Movies)), offset+limit
	consider := func(g int32, at int) {
		if at < 0 {
			return
		}
		out.Total++
		if at == 0 {
			if len(first) < want {
				first = append(first, g)
			}
		} else if len(later) < want {
			later = append(later, g)
		}
	}
	q := foldTitle(query)
	considerRow := func(r int32) { consider(n+r, matchOffset(ov.rows[r].folded, q, strings.Index(ov.rows[r].folded, q))) }
	updated := ov.updatedInOrder()
	snap.titles.matches(q, func(i int32, at int) {
		for len(updated) > 0 && ov.rows[updated[0]].base < i {
			considerRow(updated[0])
			updated = updated[1:]
		}
		if ov.baseAccepts(i) {
			consider(i, at)
		}
	})
	for _, r := range updated {
		considerRow(r)
	}
	for r := range int32(len(ov.rows)) {
		if ov.live.Accepts(r) && ov.rows[r].base < 0 {
			considerRow(r)
		}
	}
	page := append(first, later...)
	for _, g := range page[min(offset, len(page)):min(want, len(page))] {
		out.Movies = append(out.Movies, v.movie(g))
	}
	if next := offset + len(out.Movies); next < out.Total && len(out.Movies) > 0 && next <= MaxOffset {
		out.NextOffset = next
	}
	return out, nil
}

// Similar returns the k movies whose vectors are nearest the movie's own
// by cosine similarity (the movie tower's neighbours: the score is the
// cosine of the two towers' outputs, the popularity prior's dimension left
// out, so neighbours are found by taste, not by how popular both movies
// are or, in an unnormalised model, how long their vectors are), the
// movie itself left out. It scans every live movie (the artifact's and
// the catalogue's changes, see overlay), so the answer does not depend on
// the backend that serves Recall. An id the model does not know is an
// *UnknownMovieError; k is the caller's to check (1 to MaxSimilarK).
func (s *Service) Similar(ctx context.Context, id movielens.MovieID, k int) (SimilarResult, error) {
	v := s.live.Load()
	if v == nil {
		return SimilarResult{}, NoModelError{}
	}
	snap, ov := v.snap, v.ov
	g, ok := v.find(id)
	if !ok {
		return SimilarResult{}, &UnknownMovieError{MovieID: id}
	}
	if err := ctx.Err(); err != nil {
		return SimilarResult{}, err
	}
	sc := snap.getScratch()
	defer snap.pool.Put(sc)
	// The cosine is the inner product of unit vectors: the movies' own
	// (unit already) or scaled to unit length (snap.cosine, ov.units)
	// answer through the exact kernel, far faster than a cosine per movie
	// (docs/model.md). The query is the movie's row as its index holds it,
	// so that a pair scores the same both ways (TestSimilarSymmetric).
	index, rows, qp := snap.exact, ov.vecs, sc.q[:snap.dim]
	clear(qp[snap.towerDim:]) // the prior's dimension, if any, left out
	if snap.cosine != nil {
		index, rows, qp = snap.cosine, ov.units, qp[:snap.towerDim]
	}
	n := int32(len(snap.bundle.Movies))
	accept, over := sc.liveFilters(v)
	if g < n {
		accept.Reject(g)
		copy(qp, index.Vector(g)[:snap.towerDim])
	} else {
		over.Reject(g - n)
		copy(qp, rows.Vector(g - n)[:snap.towerDim])
	}
	res, err := v.search(sc, index, rows, qp, k, accept, over)
	if err != nil {
		return SimilarResult{}, err
	}
	return SimilarResult{ModelVersion: snap.info.Version, Movie: v.movie(g), Items: v.items(res)}, nil
}

// movieOf is mv as the catalogue shows it.
func movieOf(mv *artifact.Movie) Movie {
	return Movie{MovieID: mv.ID, Title: mv.Title, Genres: mv.Genres, Year: mv.Year}
}

// titleIndex is the artifact's titles folded (foldTitle) and joined, so
// that a title search is one strings.Index pass over them instead of a
// folding comparison at every position of every title.
type titleIndex struct {
	text  string // the folded titles, one after another
	start []int  // title i is text[start[i]:start[i+1]]
}

func newTitleIndex(movies []artifact.Movie) titleIndex {
	var text strings.Builder
	var buf []byte
	x := titleIndex{start: make([]int, 0, len(movies)+1)}
	for _, mv := range movies {
		x.start = append(x.start, text.Len())
		buf = appendSearchForm(buf[:0], mv.Title)
		text.Write(buf)
	}
	x.start = append(x.start, text.Len())
	x.text = text.String()
	return x
}

// matches calls f, in title order, with each title that contains the
// folded query q and the offset of its first match in the folded title
// (0: a prefix); "" matches every title at 0.
func (x titleIndex) matches(q string, f func(i int32, at int)) {
	n := int32(len(x.start) - 1)
	if q == "" {
		for i := range n {
			f(i, 0)
		}
		return
	}
	for p, i := 0, int32(0); p < len(x.text); {
		j := strings.Index(x.text[p:], q)
		if j < 0 {
			return
		}
		p += j
		if x.start[i+1] <= p { // past title i: find the one holding p
			i += int32(sort.Search(int(n-i), func(k int) bool { return x.start[int(i)+k+1] > p }))
		}
		if end := x.start[i+1]; p+len(q) <= end { // not across into the next title
			f(i, matchOffset(x.text[x.start[i]:end], q, p-x.start[i]))
			p, i = end, i+1
		} else {
			p++
		}
	}
}

// appendSearchForm appends the title as search reads it: folded
// (foldTitle), and for a title whose article MovieLens moved to its end
// ("Godfather, The (1972)"), a newline and the title folded with the
// article in front ("The Godfather (1972)"), so both spellings are found.
func appendSearchForm(b []byte, title string) []byte {
	b = appendFold(b, title)
	end := strings.Index(title, " (")
	if end < 0 {
		end = len(title)
	}
	j := strings.LastIndex(title[:end], ", ")
	if j < 0 {
		return b
	}
	art, sep := title[j+2:end], " "
	switch art {
	case "The", "A", "An", "La", "Les", "Le", "El", "Il", "Der", "Die", "Das":
	case "L'":
		sep = ""
	default:
		return b
	}
	return appendFold(append(b, '\n'), art+sep+title[:j]+title[end:])
}

// matchOffset is at, the first match of q in a search form (or -1: none),
// counted from the start of the spelling it is in, so that 0 is a prefix
// of either; it is 0 too when q is a prefix of the form's second spelling:
// "the" first matches inside "GODFATHER, THE", yet "THE GODFATHER" starts
// with it.
func matchOffset(form, q string, at int) int {
	if at <= 0 {
		return at
	}
	if _, second, ok := strings.Cut(form, "\n"); ok && strings.HasPrefix(second, q) {
		return 0
	}
	return at - (strings.LastIndexByte(form[:at], '\n') + 1)
}

// foldTitle is s with its accents taken off (each rune's canonical
// decomposition less its combining marks, isAccent: "é" is "e") and every rune then
// replaced by the least rune of its Unicode simple case folding orbit
// (ASCII letters: upper case), so that two strings equal under
// strings.EqualFold fold to the same bytes, a substring match of folded
// strings is a case-insensitive match, and "miserables" finds "Misérables".
func foldTitle(s string) string { return string(appendFold(nil, s)) }

func appendFold(b []byte, s string) []byte {
	for _, r := range s {
		if r < utf8.RuneSelf {
			b = append(b, byte(foldRune(r)))
			continue
		}
		for _, d := range norm.NFD.String(string(r)) {
			if !isAccent(d) {
				b = utf8.AppendRune(b, foldRune(d))
			}
		}
	}
	return b
}

// isAccent reports whether r is one of the Combining Diacritical Marks
// (U+0300–U+036F), the accents of Latin, Greek and Cyrillic letters, other
// than U+0345, which is in the orbit of Greek iota and folds as it does.
// Other scripts' combining marks, such as Devanagari's vowel signs, are
// letters' parts: "कुल" is not "कल".
func isAccent(r rune) bool { return r >= 0x300 && r <= 0x36f && r != 0x345 }

// foldRune is the least rune of r's simple case folding orbit, for ASCII
// letters the upper case.
func foldRune(r rune) rune {
	switch {
	case r >= 'a' && r <= 'z':
		return r - ('a' - 'A')
	case r >= utf8.RuneSelf:
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}
	return r
}
