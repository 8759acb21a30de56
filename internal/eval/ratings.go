package eval

import (
	"fmt"

	"github.com/towerrecall/towerrecall/internal/movielens"
)

// Pairs maps ratings to dense pairs: a user's index is its position in
// ds.Users and a movie's its position in ds.Movies (both sorted by ID). A
// rating of an id not in ds is an error.
func Pairs(ds *movielens.Dataset, rs []movielens.Rating) ([]Pair, error) {
	out := make([]Pair, len(rs))
	for i, r := range rs {
		u, m, err := index(ds, r)
		if err != nil {
			return nil, fmt.Errorf("eval: rating %d: %w", i, err)
		}
		out[i] = Pair{User: u, Movie: m}
	}
	return out, nil
}

// Triples is Pairs keeping the rating values.
func Triples(ds *movielens.Dataset, rs []movielens.Rating) ([]Triple, error) {
	out := make([]Triple, len(rs))
	for i, r := range rs {
		u, m, err := index(ds, r)
		if err != nil {
			return nil, fmt.Errorf("eval: rating %d: %w", i, err)
		}
		out[i] = Triple{User: u, Movie: m, Rating: r.Value}
	}
	return out, nil
}

// SplitFromRatings builds a Split over all of ds's users and movies, with
// Pairs' indexes: exclude holds the train (and valid) ratings, test the
// held-out ones.
func SplitFromRatings(ds *movielens.Dataset, exclude, test []movielens.Rating) (*Split, error) {
	ex, err := Pairs(ds, exclude)
	if err != nil {
		return nil, err
	}
	te, err := Pairs(ds, test)
	if err != nil {
		return nil, err
	}
	return NewSplit(len(ds.Users), len(ds.Movies), ex, te), nil
}

func index(ds *movielens.Dataset, r movielens.Rating) (int32, int32, error) {
	u, ok := ds.UserIndex(r.User)
	if !ok {
		return 0, 0, fmt.Errorf("unknown user %d", r.User)
	}
	m, ok := ds.MovieIndex(r.Movie)
	if !ok {
		return 0, 0, fmt.Errorf("unknown movie %d", r.Movie)
	}
	return int32(u), int32(m), nil
}
