package movielens

import (
	"cmp"
	"math"
	"slices"
)

// TemporalSplit splits ratings per user: each user's ratings are sorted by
// (time, movie id), the oldest floor(frac·n) go to train and the rest to
// test. This is the rule of the shared user-temporal splits. frac is clamped
// to [0, 1]. Both results are ordered by user id, then (time, movie id); rs
// is not modified.
func TemporalSplit(rs []Rating, frac float64) (train, test []Rating) {
	if math.IsNaN(frac) || frac < 0 {
		frac = 0
	}
	if frac > 1 {
		frac = 1
	}
	sorted := slices.Clone(rs)
	slices.SortStableFunc(sorted, func(a, b Rating) int {
		if c := cmp.Compare(a.User, b.User); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Time, b.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Movie, b.Movie)
	})
	train = make([]Rating, 0, int(float64(len(rs))*frac)+1)
	test = make([]Rating, 0, len(rs)-cap(train)+1)
	for i := 0; i < len(sorted); {
		j := i
		for j < len(sorted) && sorted[j].User == sorted[i].User {
			j++
		}
		k := i + int(math.Floor(frac*float64(j-i)))
		train = append(train, sorted[i:k]...)
		test = append(test, sorted[k:j]...)
		i = j
	}
	return train, test
}
