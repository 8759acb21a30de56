package recall

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/movielens"
)

func TestMovies(t *testing.T) {
	t.Parallel()
	b := testBundle(t, "v1", 60, 1)
	// Titles to search; the rest stay "Movie N (year)".
	for i, title := range map[int]string{3: "Babes in Toyland (1961)", 7: "Toy Story (1995)", 20: "TOY Soldiers (1991)", 30: "Élan Vital (2001)"} {
		b.Movies[i].Title = title
	}
	s := newService(t, "exact")
	if _, err := s.Movies("", 0, 10); !errors.As(err, new(NoModelError)) {
		t.Fatalf("no model: err = %v, want NoModelError", err)
	}
	if err := s.Load(b); err != nil {
		t.Fatal(err)
	}
	ids := func(is ...int) []movielens.MovieID {
		out := []movielens.MovieID{}
		for _, i := range is {
			out = append(out, b.Movies[i].ID)
		}
		return out
	}
	tests := []struct {
		name      string
		query     string
		offset    int
		limit     int
		want      []movielens.MovieID
		wantTotal int
		next      int
	}{
		{name: "empty query lists the catalogue", query: "", limit: 3, want: ids(0, 1, 2), wantTotal: 60, next: 3},
		{name: "the next page", query: "", offset: 3, limit: 3, want: ids(3, 4, 5), wantTotal: 60, next: 6},
		{name: "the last page", query: "", offset: 58, limit: 3, want: ids(58, 59), wantTotal: 60},
		{name: "past the end", query: "", offset: 60, limit: 3, want: ids(), wantTotal: 60},
		{name: "a page across prefixes and the rest", query: "toy", offset: 1, limit: 2, want: ids(20, 3), wantTotal: 3},
		{name: "prefixes first, case-insensitive", query: "toy", limit: 10, want: ids(7, 20, 3), wantTotal: 3},
		{name: "limit keeps the best", query: "TOY", limit: 2, want: ids(7, 20), wantTotal: 3, next: 2},
		{name: "inside a title", query: "in toy", limit: 10, want: ids(3), wantTotal: 1},
		{name: "unicode folding", query: "élan", limit: 10, want: ids(30), wantTotal: 1},
		{name: "no match", query: "zzz", limit: 10, want: ids(), wantTotal: 0},
		{name: "year in the title", query: "(1961)", limit: 10, want: ids(3, 10), wantTotal: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := s.Movies(tt.query, tt.offset, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			got := []movielens.MovieID{}
			for _, m := range res.Movies {
				got = append(got, m.MovieID)
			}
			if !slices.Equal(got, tt.want) || res.Total != tt.wantTotal || res.NextOffset != tt.next || res.ModelVersion != "v1" || res.Movies == nil {
				t.Errorf("Movies(%q, %d, %d) = %v (total %d, next %d), want %v (total %d, next %d)", tt.query, tt.offset, tt.limit, got, res.Total, res.NextOffset, tt.want, tt.wantTotal, tt.next)
			}
			for _, m := range res.Movies {
				i := slices.IndexFunc(b.Movies, func(a artifact.Movie) bool { return a.ID == m.MovieID })
				if mv := b.Movies[i]; m.Title != mv.Title || m.Year != mv.Year || !slices.Equal(m.Genres, mv.Genres) {
					t.Errorf("movie %d = %+v, catalogue has %+v", m.MovieID, m, mv)
				}
			}
		})
	}
}

// TestMoviesArticleFirst: a title whose article MovieLens moved to its end
// is found with the article in front too, as a prefix, in the artifact and
// among movies added since.
func TestMoviesArticleFirst(t *testing.T) {
	t.Parallel()
	b := testBundle(t, "v1", 60, 1)
	b.Movies[5].Title, b.Movies[9].Title = "Matrix, The (1999)", "The Matrix Reloaded (2003)"
	b.Movies[3].Title, b.Movies[7].Title = "Mother, The (1996)", "Zeta Mother (2001)"
	s := newService(t, "exact")
	if err := s.Load(b); err != nil {
		t.Fatal(err)
	}
	s.AttachJournal(&memJournal{}, nil)
	for _, mv := range []Movie{
		{MovieID: 9999, Title: "Lobster, The (2015)", Genres: b.Movies[0].Genres, Year: 2015},
		{MovieID: 9998, Title: "Brotherhood Ties (2016)", Genres: b.Movies[0].Genres, Year: 2016},
		{MovieID: 9997, Title: "Brother, The (2017)", Genres: b.Movies[0].Genres, Year: 2017},
	} {
		if _, err := s.PutMovie(context.Background(), mv); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		query string
		want  []movielens.MovieID
	}{
		{"the matrix", []movielens.MovieID{b.Movies[5].ID, b.Movies[9].ID}}, // both prefixes, in catalogue order
		{"matrix, the", []movielens.MovieID{b.Movies[5].ID}},
		{"the lobster (2015)", []movielens.MovieID{9999}},
		{"lobster", []movielens.MovieID{9999}},
		// "The Mother" starts with "the" though "Mother, The" holds it
		// first inside "mother": a prefix, before "Zeta Mother"; so "The
		// Brother", added, before "Brotherhood Ties".
		{"the", []movielens.MovieID{b.Movies[3].ID, b.Movies[5].ID, b.Movies[9].ID, 9999, 9997, b.Movies[7].ID, 9998}},
	} {
		res, err := s.Movies(tt.query, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		got := []movielens.MovieID{}
		for _, m := range res.Movies {
			got = append(got, m.MovieID)
		}
		if !slices.Equal(got, tt.want) || res.Total != len(tt.want) {
			t.Errorf("%q: %v (total %d), want %v", tt.query, got, res.Total, tt.want)
		}
	}
}

// cosine is the oracle of Similar's score, in float64.
func cosine(q, v []float32) float64 {
	var d, qq, vv float64
	for i, x := range q {
		d += float64(x) * float64(v[i])
		qq += float64(x) * float64(x)
		vv += float64(v[i]) * float64(v[i])
	}
	return d / math.Sqrt(qq*vv)
}

// TestSimilarIsExactCosine: Similar ranks every other movie by the cosine
// of the two vectors, whatever index serves Recall: unit vectors (a
// normalised tower: the exact index's inner product) and vectors of
// different lengths (an unnormalised model: the index of the vectors at
// unit length), where the inner product's order, which favours long
// vectors, is not the cosine's.
func TestSimilarIsExactCosine(t *testing.T) {
	t.Parallel()
	const n, dim = 300, 8
	for _, scaled := range []bool{false, true} {
		b := testBundle(t, "v1", n, 2)
		if scaled {
			rng := rand.New(rand.NewPCG(7, 7))
			for i := range n {
				l := float32(0.5 + 4*rng.Float64())
				for d := range dim {
					b.Vectors[i*dim+d] *= l
				}
			}
		}
		for _, index := range []string{"exact", "hnsw"} {
			t.Run(fmt.Sprintf("%s/scaled=%v", index, scaled), func(t *testing.T) {
				t.Parallel()
				s := newService(t, index)
				if err := s.Load(b); err != nil {
					t.Fatal(err)
				}
				if unit := s.live.Load().snap.cosine == nil; unit == scaled {
					t.Fatalf("unitMovies = %v with scaled = %v", unit, scaled)
				}
				differs := false
				for _, m := range []int{0, 17, n - 1} {
					q := b.Vectors[m*dim : (m+1)*dim]
					type cand struct {
						i          int
						cos, inner float64
					}
					var all []cand
					for i := range n {
						if i != m {
							v := b.Vectors[i*dim : (i+1)*dim]
							all = append(all, cand{i, cosine(q, v), float64(ann.Dot(q, v))})
						}
					}
					byInner := slices.Clone(all)
					slices.SortStableFunc(byInner, func(a, b cand) int { return cmp.Compare(b.inner, a.inner) })
					slices.SortStableFunc(all, func(a, b cand) int { return cmp.Compare(b.cos, a.cos) })
					differs = differs || byInner[0].i != all[0].i
					for _, k := range []int{1, 10, MaxSimilarK} {
						res, err := s.Similar(context.Background(), b.Movies[m].ID, k)
						if err != nil {
							t.Fatal(err)
						}
						if res.Movie.MovieID != b.Movies[m].ID || res.Movie.Title != b.Movies[m].Title || res.ModelVersion != "v1" {
							t.Errorf("movie %d: header %+v", m, res)
						}
						if len(res.Items) != k {
							t.Fatalf("movie %d k %d: %d items", m, k, len(res.Items))
						}
						for j, it := range res.Items {
							want := all[j]
							if it.MovieID != b.Movies[want.i].ID || math.Abs(float64(it.Score)-want.cos) > 1e-6 || it.Title != b.Movies[want.i].Title {
								t.Fatalf("movie %d k %d: item %d = %d (%v), want %d (%v)", m, k, j, it.MovieID, it.Score, b.Movies[want.i].ID, want.cos)
							}
						}
					}
				}
				if scaled && !differs {
					t.Fatal("the inner product ranks as the cosine does here: the test cannot tell them apart")
				}
			})
		}
	}
}

func TestSimilarErrors(t *testing.T) {
	t.Parallel()
	s := newService(t, "exact")
	if _, err := s.Similar(context.Background(), 10, 5); !errors.As(err, new(NoModelError)) {
		t.Fatalf("no model: err = %v, want NoModelError", err)
	}
	b := testBundle(t, "v1", 5, 3)
	if err := s.Load(b); err != nil {
		t.Fatal(err)
	}
	var unknown *UnknownMovieError
	if _, err := s.Similar(context.Background(), 11, 5); !errors.As(err, &unknown) || unknown.MovieID != 11 {
		t.Errorf("unknown id: err = %v, want *UnknownMovieError for 11", err)
	}
	// k past the catalogue: every other movie.
	res, err := s.Similar(context.Background(), b.Movies[2].ID, MaxSimilarK)
	if err != nil || len(res.Items) != 4 {
		t.Errorf("k past the catalogue: %d items, err %v; want the 4 others", len(res.Items), err)
	}
	for _, it := range res.Items {
		if it.MovieID == b.Movies[2].ID {
			t.Errorf("the movie is its own neighbour: %+v", res.Items)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Similar(ctx, b.Movies[0].ID, 3); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: err = %v", err)
	}
}

// TestFoldTitle: two runes fold to the same bytes exactly when
// strings.EqualFold says their letters without accents (canonical
// decomposition less combining marks) are equal: every rune of the BMP
// against the others of its folding orbit and against its neighbour.
func TestFoldTitle(t *testing.T) {
	t.Parallel()
	bare := func(s string) string {
		return strings.Map(func(r rune) rune {
			if isAccent(r) {
				return -1
			}
			return r
		}, norm.NFD.String(s))
	}
	for r := rune(0); r < 0x10000; r++ {
		if r >= 0xD800 && r < 0xE000 { // surrogates are not runes
			continue
		}
		a := string(r)
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if foldTitle(a) != foldTitle(string(f)) {
				t.Fatalf("%U and %U are equal under EqualFold, fold to %q and %q", r, f, foldTitle(a), foldTitle(string(f)))
			}
		}
		if b := string(r + 1); !strings.EqualFold(bare(a), bare(b)) && foldTitle(a) == foldTitle(b) {
			t.Fatalf("%U and %U differ under EqualFold without accents, both fold to %q", r, r+1, foldTitle(a))
		}
	}
	for _, tc := range [][2]string{
		{"Amélie (2001) \u212a", "AMÉLIE (2001) k"},
		{"Misérables, Les (1995)", "MISERABLES, LES (1995)"},
		{"Himmel über Berlin", "himmel uber berlin"},
		{"Cafe\u0301 au Lait", "café au lait"}, // decomposed and composed alike
	} {
		if got, want := foldTitle(tc[0]), foldTitle(tc[1]); got != want {
			t.Errorf("%q folds to %q, %q to %q", tc[0], got, tc[1], want)
		}
	}
	for _, tc := range [][2]string{
		{"Ørsted", "Orsted"}, // ø has no decomposition: a letter of its own
		{"कुल", "कल"},        // a Devanagari vowel sign is no accent
	} {
		if foldTitle(tc[0]) == foldTitle(tc[1]) {
			t.Errorf("%q and %q fold alike", tc[0], tc[1])
		}
	}
}

// TestTitleIndexMatches: every title containing the folded query, in
// order, with the offset of its first match; never a match across two
// titles; "" matches every title at 0.
func TestTitleIndexMatches(t *testing.T) {
	t.Parallel()
	var movies []artifact.Movie
	for _, title := range []string{"Toy Story", "Babes in Toyland toy", "", "toy", "ab", "cd", "Story of Toys",
		"Godfather, The (1972)", "Enfer, L' (1994)", "City of Lost Children, The (Cité des enfants perdus, La) (1995)", "Toys, Many", "Others, The (2001)"} {
		movies = append(movies, artifact.Movie{Title: title})
	}
	x := newTitleIndex(movies)
	type match struct {
		i  int32
		at int
	}
	for _, tt := range []struct {
		query string
		want  []match
	}{
		{"toy", []match{{0, 0}, {1, 9}, {3, 0}, {6, 9}, {10, 0}}},
		{"STORY", []match{{0, 4}, {6, 0}}},
		// A title whose article MovieLens moved to the end is found by
		// either spelling, each match counted from its spelling's start.
		{"the godfather", []match{{7, 0}}},
		{"godfather", []match{{7, 0}}},
		{"godfather (1972)", []match{{7, 4}}},
		{"l'enfer", []match{{8, 0}}},
		{"the city of lost", []match{{9, 0}}},
		{"cite des enfants", []match{{9, 28}}}, // accents off: "Cité" is found as typed without one
		{"CITÉ", []match{{9, 28}}},
		// A prefix of the article-first spelling is a prefix, though the
		// query also occurs earlier, inside the first one (godfaTHEr,
		// oTHErs: one byte in).
		{"the", []match{{7, 0}, {9, 0}, {11, 0}}},
		{"(1972)\nthe", []match{{7, 15}}}, // the two spellings of one title
		{"bc", nil},                       // across the end of "ab" into "cd"
		{"bcd", nil},                      // the same, to the end of the text
		{"d", []match{{1, 15}, {5, 1}, {7, 2}, {9, 17}}},
		{"zzz", nil},
		{"", []match{{0, 0}, {1, 0}, {2, 0}, {3, 0}, {4, 0}, {5, 0}, {6, 0}, {7, 0}, {8, 0}, {9, 0}, {10, 0}, {11, 0}}},
	} {
		var got []match
		x.matches(foldTitle(tt.query), func(i int32, at int) { got = append(got, match{i, at}) })
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q: %v, want %v", tt.query, got, tt.want)
		}
	}
}

// TestMoviesNextOffsetCap: no next page is offered past MaxOffset, which
// the handler would refuse.
func TestMoviesNextOffsetCap(t *testing.T) {
	t.Parallel()
	s := newService(t, "exact")
	if err := s.Load(testBundle(t, "v1", MaxOffset+10, 1)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ offset, next int }{{MaxOffset - 10, MaxOffset - 7}, {MaxOffset - 3, MaxOffset}, {MaxOffset - 1, 0}} {
		res, err := s.Movies("", tc.offset, 3)
		if err != nil || len(res.Movies) != 3 || res.NextOffset != tc.next {
			t.Errorf("offset %d: %d movies, next %d, %v; want 3, next %d", tc.offset, len(res.Movies), res.NextOffset, err, tc.next)
		}
	}
}

func BenchmarkMovies(b *testing.B) {
	bundle := testBundle(b, "v1", 3706, 1)
	s := newService(b, "exact")
	if err := s.Load(bundle); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Movies("movie 12", 0, DefaultMoviesLimit); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSimilarIgnoresPrior: with a popularity prior in the vectors' last
// dimension, a movie's neighbours are ranked by the movie tower's
// dimensions alone (two popular movies are not alike for being popular),
// whether those are unit vectors (the exact index's path, the prior's
// dimension zeroed in the query) or not (the index of the unit vectors).
func TestSimilarIgnoresPrior(t *testing.T) {
	t.Parallel()
	for _, unit := range []bool{true, false} {
		b := testBundle(t, "v1", 80, 5)
		b.Prior = &artifact.Prior{Bias: make([]float32, len(b.Movies))}
		for i := range b.Movies {
			v := b.Vectors[i*8 : i*8+7]
			if unit { // the tower's 7 dimensions back to unit length
				n := float32(math.Sqrt(float64(ann.Dot(v, v))))
				for d := range v {
					v[d] /= n
				}
			}
			b.Vectors[i*8+7] = float32(10 + i) // a "bias" that would dominate
		}
		s := newService(t, "exact")
		if err := s.Load(b); err != nil {
			t.Fatal(err)
		}
		if got := s.live.Load().snap.cosine == nil; got != unit {
			t.Fatalf("unitMovies = %v, want %v", got, unit)
		}
		res, err := s.Similar(context.Background(), b.Movies[3].ID, 5)
		if err != nil {
			t.Fatal(err)
		}
		q := b.Vectors[3*8 : 3*8+7]
		type cand struct {
			id    movielens.MovieID
			score float64
		}
		var all []cand
		for i, mv := range b.Movies {
			if i != 3 {
				all = append(all, cand{mv.ID, cosine(q, b.Vectors[i*8:i*8+7])})
			}
		}
		slices.SortStableFunc(all, func(a, b cand) int { return cmp.Compare(b.score, a.score) })
		if len(res.Items) != 5 {
			t.Fatalf("unit %v: %d neighbours, want 5", unit, len(res.Items))
		}
		for i, it := range res.Items {
			if it.MovieID != all[i].id || math.Abs(float64(it.Score)-all[i].score) > 1e-6 {
				t.Fatalf("unit %v: neighbour %d: %d (%v), want %d (%v)", unit, i, it.MovieID, it.Score, all[i].id, all[i].score)
			}
		}
	}
}

// BenchmarkSimilar: unit vectors (a normalised tower: the exact index) and
// vectors of different lengths (the index of them at unit length).
func BenchmarkSimilar(b *testing.B) {
	for _, n := range []int{3706, 100_000} {
		for _, scaled := range []bool{false, true} {
			b.Run(fmt.Sprintf("%d/scaled=%v", n, scaled), func(b *testing.B) {
				bundle := testBundle(b, "v1", n, 1)
				if scaled {
					for i := range bundle.Vectors {
						bundle.Vectors[i] *= float32(1 + i/8%3)
					}
				}
				s := newService(b, "exact")
				if err := s.Load(bundle); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Similar(context.Background(), bundle.Movies[n/2].ID, DefaultSimilarK); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func TestAppendUnit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want []float32 }{
		{[]float32{3, 4}, []float32{0.6, 0.8}},
		{[]float32{0, -2, 0}, []float32{0, -1, 0}},
		{[]float32{0, 0}, []float32{0, 0}}, // a zero vector stays zero: it scores 0
		{[]float32{}, []float32{}},
	} {
		in := slices.Clone(c.in)
		if v := appendUnit(nil, in); !slices.Equal(v, c.want) || !slices.Equal(in, c.in) {
			t.Errorf("appendUnit(nil, %v) = %v (input now %v), want %v", c.in, v, in, c.want)
		}
	}
}

// TestMoviesUnderChanges compares title searches with random catalogue
// changes against a model of the catalogue: the artifact's movies in their
// order (an updated one in its place, with its new title; a deleted one
// gone), then the movies added since, in the order of their latest change;
// titles starting with the query first; every page.
func TestMoviesUnderChanges(t *testing.T) {
	t.Parallel()
	s, b := loadedService(t, "exact", "v1", 200, 3)
	s.AttachJournal(&memJournal{}, nil)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	titles := map[movielens.MovieID]string{} // live movie → title
	var added []movielens.MovieID            // added movies, by latest change
	for _, mv := range b.Movies {
		titles[mv.ID] = mv.Title
	}
	words := []string{"Toy", "story", "TOYLAND", "Movie 1", "the end", "Élan"}
	for range 300 {
		var id movielens.MovieID
		if rng.IntN(2) == 0 {
			id = b.Movies[rng.IntN(len(b.Movies))].ID
		} else {
			id = movielens.MovieID(500_000 + rng.IntN(60))
		}
		if rng.IntN(5) == 0 {
			if _, ok := titles[id]; ok {
				if _, err := s.DeleteMovie(ctx, id); err != nil {
					t.Fatal(err)
				}
				delete(titles, id)
				added = slices.DeleteFunc(added, func(a movielens.MovieID) bool { return a == id })
			}
			continue
		}
		title := fmt.Sprintf("%s %d %s", words[rng.IntN(len(words))], rng.IntN(30), words[rng.IntN(len(words))])
		if _, err := s.PutMovie(ctx, Movie{MovieID: id, Title: title, Genres: []string{"Drama"}}); err != nil {
			t.Fatal(err)
		}
		titles[id] = title
		if id >= 500_000 {
			added = append(slices.DeleteFunc(added, func(a movielens.MovieID) bool { return a == id }), id)
		}
	}
	var order []movielens.MovieID
	for _, mv := range b.Movies {
		if _, ok := titles[mv.ID]; ok {
			order = append(order, mv.ID)
		}
	}
	order = append(order, added...)
	for _, q := range []string{"", "toy", "STORY", "movie 1", "end", "élan 2", "zzz", "1 t"} {
		var first, later []movielens.MovieID
		for _, id := range order {
			title, uq := strings.ToUpper(titles[id]), strings.ToUpper(q)
			if strings.HasPrefix(title, uq) {
				first = append(first, id)
			} else if strings.Contains(title, uq) {
				later = append(later, id)
			}
		}
		want := append(first, later...)
		for offset := 0; offset < len(want)+5; offset += 7 {
			res, err := s.Movies(q, offset, 7)
			if err != nil {
				t.Fatal(err)
			}
			got := []movielens.MovieID{}
			for _, m := range res.Movies {
				got = append(got, m.MovieID)
				if m.Title != titles[m.MovieID] {
					t.Fatalf("%q: movie %d titled %q, want %q", q, m.MovieID, m.Title, titles[m.MovieID])
				}
			}
			if w := want[min(offset, len(want)):min(offset+7, len(want))]; !slices.Equal(got, w) || res.Total != len(want) {
				t.Fatalf("%q offset %d: %v (total %d), want %v (total %d)", q, offset, got, res.Total, w, len(want))
			}
		}
	}
}

// FuzzTitleIndex: the joined index finds, for every title, what
// strings.Index finds in that title alone (both folded).
func FuzzTitleIndex(f *testing.F) {
	f.Add("Toy Story|Babes in Toyland||toy", "TOY")
	f.Add("ab|cd", "bc")
	f.Add("Straße|STRASSE|\u212a", "k")
	f.Add("Godfather, The (1972)|Mother, The", "the")
	f.Fuzz(func(t *testing.T, joined, query string) {
		var movies []artifact.Movie
		for _, title := range strings.Split(joined, "|") {
			movies = append(movies, artifact.Movie{Title: title})
		}
		q := foldTitle(query)
		got := map[int32]int{}
		last := int32(-1)
		newTitleIndex(movies).matches(q, func(i int32, at int) {
			if i <= last {
				t.Fatalf("title %d after %d", i, last)
			}
			last, got[i] = i, at
		})
		for i, mv := range movies {
			at, ok := got[int32(i)]
			form := string(appendSearchForm(nil, mv.Title))
			want := strings.Index(form, q)
			if _, second, two := strings.Cut(form, "\n"); want > 0 && two && strings.HasPrefix(second, q) {
				want = 0 // a prefix of the article-first spelling
			} else if want > 0 { // counted from the start of its spelling
				want -= strings.LastIndexByte(form[:want], '\n') + 1
			}
			if want != at && (ok || want >= 0) {
				t.Fatalf("title %d %q, query %q: at %d (found %v), want %d", i, mv.Title, query, at, ok, want)
			}
		}
	})
}

// TestSimilarSymmetric: a pair scores the same both ways, to the bit, in a
// normalised model and an unnormalised one (the query was scaled to unit
// length once more, and a→b and b→a differed in the seventh digit).
func TestSimilarSymmetric(t *testing.T) {
	t.Parallel()
	const n, dim = 200, 8
	for _, scaled := range []bool{false, true} {
		b := testBundle(t, "v1", n, 3)
		if scaled {
			for i := range b.Vectors {
				b.Vectors[i] *= 1 + float32(i/dim%5)
			}
		}
		s := newService(t, "exact")
		if err := s.Load(b); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		ids := []movielens.MovieID{b.Movies[0].ID, b.Movies[7].ID, b.Movies[n-1].ID}
		for _, id := range ids {
			from, err := s.Similar(ctx, id, MaxSimilarK)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range from.Items[:20] {
				back, err := s.Similar(ctx, it.MovieID, MaxSimilarK)
				if err != nil {
					t.Fatal(err)
				}
				for _, x := range back.Items {
					if x.MovieID == id && x.Score != it.Score {
						t.Errorf("scaled %v: %d→%d scores %v, %d→%d %v", scaled, id, it.MovieID, it.Score, it.MovieID, id, x.Score)
					}
				}
			}
		}
	}
}
