package movielens

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of a movie's metadata: the dataset files, the catalogue's
// PUT /movies and its journal all keep to them. Lengths count characters
// (code points), as the API contract's maxLength does.
const (
	MaxTitleLen = 200
	MaxGenres   = 16
	MaxGenreLen = 64
	MinYear     = 1870
	MaxYear     = 2100
)

// CheckTitle reports a title longer than MaxTitleLen characters or holding a
// character that hides or reorders text (see hiddenRune). An empty title
// passes: u.item has one.
func CheckTitle(t string) error {
	if n := utf8.RuneCountInString(t); n > MaxTitleLen {
		return fmt.Errorf("title must be at most %d characters, got %d", MaxTitleLen, n)
	}
	if i := strings.IndexFunc(t, hiddenRune); i >= 0 {
		r, _ := utf8.DecodeRuneInString(t[i:])
		return fmt.Errorf("title must not contain control, line-separator or format characters such as zero-width or bidirectional-override ones (%U at byte %d)", r, i)
	}
	return nil
}

// CheckGenres reports more than MaxGenres genres, a name that is empty,
// longer than MaxGenreLen characters or hidden-character laden, or a name repeated
// (in any case: genre names are case-insensitive).
func CheckGenres(gs []string) error {
	if len(gs) > MaxGenres {
		return fmt.Errorf("a movie has at most %d genres, got %d", MaxGenres, len(gs))
	}
	for i, g := range gs {
		if !genreName(g) {
			return fmt.Errorf("genres[%d] must be a genre name of 1 to %d characters without control characters", i, MaxGenreLen)
		}
		for j, h := range gs[:i] {
			if strings.EqualFold(g, h) {
				return fmt.Errorf("genres[%d] %q repeats genres[%d]", i, g, j)
			}
		}
	}
	return nil
}

// genreName reports whether g may name a genre: 1 to MaxGenreLen
// characters, none of them hidden ones.
func genreName(g string) bool {
	return g != "" && utf8.RuneCountInString(g) <= MaxGenreLen && strings.IndexFunc(g, hiddenRune) < 0
}

// checkMovie applies CheckTitle and CheckGenres to a movie of a dataset file.
func checkMovie(title string, genres []string) error {
	if err := CheckTitle(title); err != nil {
		return err
	}
	return CheckGenres(genres)
}

// hiddenRune reports characters a title must not hold: controls, line and
// paragraph separators, and format characters (Cf: zero-width space, word
// joiner, soft hyphen, the bidirectional embeddings, overrides and
// isolates that reorder what follows, the byte-order mark, …), which make
// one title look like another, or like nothing, in the explorer and in
// logs. The joiners and direction marks scripts need (U+200C–F, U+061C)
// stay.
func hiddenRune(r rune) bool {
	switch {
	case unicode.IsControl(r), unicode.In(r, unicode.Zl, unicode.Zp):
		return true
	case r == 0x061C || 0x200C <= r && r <= 0x200F:
		return false
	}
	return unicode.Is(unicode.Cf, r)
}

// Visible reports whether s shows something: a letter, digit, punctuation
// mark or symbol other than the fillers that render as blank (U+115F,
// U+1160, U+3164, U+FFA0, U+2800). A catalogue title must.
func Visible(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		switch r {
		case 0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800:
			return false
		}
		return unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S)
	}) >= 0
}
