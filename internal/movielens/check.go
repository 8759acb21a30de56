package movielens

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of a movie's metadata: the dataset files, the catalogue's
// PUT /movies and its journal all keep to them.
const (
	MaxTitleBytes = 200
	MaxGenres     = 16
	MaxGenreBytes = 64
	MinYear       = 1870
	MaxYear       = 2100
)

// CheckTitle reports a title longer than MaxTitleBytes or holding a
// character that hides or reorders text (see hiddenRune). An empty title
// passes: u.item has one.
func CheckTitle(t string) error {
	if len(t) > MaxTitleBytes {
		return fmt.Errorf("title must be at most %d bytes, got %d", MaxTitleBytes, len(t))
	}
	if i := strings.IndexFunc(t, hiddenRune); i >= 0 {
		r, _ := utf8.DecodeRuneInString(t[i:])
		return fmt.Errorf("title must not contain control, line-separator, bidirectional-override or zero-width characters (%U at byte %d)", r, i)
	}
	return nil
}

// CheckGenres reports more than MaxGenres genres, a name that is empty,
// longer than MaxGenreBytes or hidden-character laden, or a name repeated
// (in any case: genre names are case-insensitive).
func CheckGenres(gs []string) error {
	if len(gs) > MaxGenres {
		return fmt.Errorf("a movie has at most %d genres, got %d", MaxGenres, len(gs))
	}
	for i, g := range gs {
		if !genreName(g) {
			return fmt.Errorf("genres[%d] must be a genre name of 1 to %d bytes without control characters", i, MaxGenreBytes)
		}
		for j, h := range gs[:i] {
			if strings.EqualFold(g, h) {
				return fmt.Errorf("genres[%d] %q repeats genres[%d]", i, g, j)
			}
		}
	}
	return nil
}

// genreName reports whether g may name a genre: 1 to MaxGenreBytes bytes,
// none of them hidden characters.
func genreName(g string) bool {
	return g != "" && len(g) <= MaxGenreBytes && strings.IndexFunc(g, hiddenRune) < 0
}

// checkMovie applies CheckTitle and CheckGenres to a movie of a dataset file.
func checkMovie(title string, genres []string) error {
	if err := CheckTitle(title); err != nil {
		return err
	}
	return CheckGenres(genres)
}

// hiddenRune reports characters a title must not hold: controls, line and
// paragraph separators, the bidirectional embeddings, overrides and
// isolates that reorder what follows (U+202A–E, U+2066–9), and zero-width
// space and no-break space (U+200B, U+FEFF), which make one title look like
// another in the explorer and in logs. Joiners and direction marks stay:
// scripts need them.
func hiddenRune(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) ||
		0x202A <= r && r <= 0x202E || 0x2066 <= r && r <= 0x2069 || r == 0x200B || r == 0xFEFF
}
