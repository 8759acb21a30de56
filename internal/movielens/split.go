package movielens

import (
	"cmp"
	"math"
	"math/rand/v2"
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

// TimelineSplit holds out the newest part of one timeline: the ratings are
// ordered by time, and those after the oldest ⌈(1−frac)·n⌉ go to newer, the
// rest to older. Ratings made at the same second never straddle the
// boundary: a tie at the boundary stays in older, so newer may hold fewer
// than frac·n ratings, or none when every rating shares one second. This is
// how train carves a validation split from a training file that comes
// without one: the newest part of the past stands in for the future. frac
// is clamped to [0, 1]; both results keep the order of rs, which is not
// modified.
func TimelineSplit(rs []Rating, frac float64) (older, newer []Rating) {
	if math.IsNaN(frac) || frac < 0 {
		frac = 0
	}
	if frac > 1 {
		frac = 1
	}
	n := len(rs)
	keep := n - int(math.Floor(frac*float64(n))) // ratings in older before ties are pulled in
	if keep >= n {
		return slices.Clone(rs), nil
	}
	times := make([]int64, n)
	for i, r := range rs {
		times[i] = r.Time
	}
	slices.Sort(times)
	cut := int64(math.MinInt64) // newer holds the ratings strictly after cut
	if keep > 0 {
		cut = times[keep-1]
	}
	older = make([]Rating, 0, keep)
	newer = make([]Rating, 0, n-keep)
	for _, r := range rs {
		if r.Time > cut {
			newer = append(newer, r)
		} else {
			older = append(older, r)
		}
	}
	return older, newer
}

// UserTimelineSplit holds out the newest part of each user's own
// timeline: of a user's n ratings, ordered by (time, movie id), the newest
// floor(frac·n) go to newer, the rest to older. As in TimelineSplit, a
// rating made at the same second as the user's newest kept rating stays
// in older, so a user may give fewer, and a user with fewer than 1/frac
// ratings gives none: every user keeps at least one rating in older. This
// is the second validation view train carves: the next ratings of users
// it knows, each at their own time, where TimelineSplit's view asks about
// one global future. frac is clamped to [0, 1); both results keep the
// order of rs, which is not modified.
func UserTimelineSplit(rs []Rating, frac float64) (older, newer []Rating) {
	if math.IsNaN(frac) || frac < 0 {
		frac = 0
	}
	byUser := map[UserID][]int{} // indexes into rs
	for i, r := range rs {
		byUser[r.User] = append(byUser[r.User], i)
	}
	held := make([]bool, len(rs))
	for _, idx := range byUser {
		n := len(idx)
		out := min(int(math.Floor(frac*float64(n))), n-1)
		if out <= 0 {
			continue
		}
		slices.SortFunc(idx, func(a, b int) int {
			if c := cmp.Compare(rs[a].Time, rs[b].Time); c != 0 {
				return c
			}
			return cmp.Compare(rs[a].Movie, rs[b].Movie)
		})
		cut := rs[idx[n-out-1]].Time // the newest kept rating's time
		for _, i := range idx[n-out:] {
			held[i] = rs[i].Time > cut
		}
	}
	return partition(rs, held)
}

// partition splits rs by held, in rs's order: the ratings not held, then
// those held.
func partition(rs []Rating, held []bool) (kept, out []Rating) {
	for i, r := range rs {
		if held[i] {
			out = append(out, r)
		} else {
			kept = append(kept, r)
		}
	}
	return kept, out
}

// RandomSplit holds out floor(frac·n) of the n ratings, drawn uniformly
// with seed: ratings missing at random from users' histories, as a random
// split (RecBole's) asks about, where TimelineSplit and UserTimelineSplit
// ask about the future. frac is clamped to [0, 1]; both results keep the
// order of rs, which is not modified.
func RandomSplit(rs []Rating, frac float64, seed uint64) (kept, held []Rating) {
	if math.IsNaN(frac) || frac < 0 {
		frac = 0
	}
	n := len(rs)
	out := min(int(math.Floor(frac*float64(n))), n)
	pick := make([]bool, n)
	for _, i := range rand.New(rand.NewPCG(seed, 0x7a11d)).Perm(n)[:out] {
		pick[i] = true
	}
	return partition(rs, pick)
}
