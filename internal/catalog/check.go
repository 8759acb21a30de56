package catalog

import (
	"fmt"

	"github.com/towerrecall/towerrecall/internal/movielens"
)

// FieldError is movie metadata that breaks a catalogue rule; Field names
// the member: "title", "genres" or "year".
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// CheckMovie checks a movie's metadata against what the catalogue holds
// (PUT /movies accepts it; every put entry of a journal must keep to it):
// a title of 1 to movielens.MaxTitleLen characters (movielens.CheckTitle)
// that shows something (movielens.Visible), 1 to movielens.MaxGenres distinct genre names
// (movielens.CheckGenres), and a year of 0 (unknown) or
// movielens.MinYear–MaxYear. The error is a *FieldError.
func CheckMovie(title string, genres []string, year int) error {
	if err := movielens.CheckTitle(title); err != nil {
		return &FieldError{Field: "title", Message: err.Error()}
	}
	if !movielens.Visible(title) {
		return &FieldError{Field: "title", Message: fmt.Sprintf("title must be 1 to %d characters with at least one letter, digit, punctuation mark or symbol", movielens.MaxTitleLen)}
	}
	if len(genres) == 0 {
		return &FieldError{Field: "genres", Message: fmt.Sprintf("genres must list 1 to %d genre names: the movie tower's vector for a new movie comes from its genres and year", movielens.MaxGenres)}
	}
	if err := movielens.CheckGenres(genres); err != nil {
		return &FieldError{Field: "genres", Message: err.Error()}
	}
	if year != 0 && (year < movielens.MinYear || year > movielens.MaxYear) {
		return &FieldError{Field: "year", Message: fmt.Sprintf("year must be between %d and %d (omit it if unknown), got %d", movielens.MinYear, movielens.MaxYear, year)}
	}
	return nil
}
