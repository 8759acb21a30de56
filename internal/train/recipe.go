package train

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/towerrecall/towerrecall/internal/feature"
)

// Recipe turns the rated interactions into the examples the towers train
// on. Apply runs its steps in a fixed order (each a function below, so a new
// step or a new per-example weight is one more function and one more line
// in Apply):
//
//  1. weight each user's interactions by recency (WeightByRecency);
//  2. deal each user's interactions into history folds (assignFolds);
//  3. move some interactions to id-less twins (addColdTwins);
//  4. move the users' interactions to copies of the user whose history
//     bag leaves the target out: with HistoryLength > 0 the user's newest
//     HistoryLength movies rated strictly before the interaction
//     (recentBags, addRecentHistory; twins included), else the whole
//     history less the interaction's fold (addHistoryFolds; real users).
//
// The order matters for reproducibility: every step draws from its own
// stream derived from Seed.
type Recipe struct {
	// Recency is WeightByRecency's decay: the newest of a user's
	// interactions weighs e^Recency times the oldest. 0 turns it off.
	Recency float64
	// ColdStartRate is the share of train interactions moved to id-less
	// twins of their user (and half as many to twins of their movie).
	ColdStartRate float64
	// HistoryFolds is the number of folds of each user's interactions for
	// the history feature; used when Fields.User holds feature.HistoryField
	// and HistoryLength is 0.
	HistoryFolds int
	// HistoryLength > 0 makes the history feature causal and recent: an
	// interaction at time t sees its user's newest HistoryLength movies
	// rated strictly before t (a movie rated at t itself, the target
	// included, is left out), as serving sees a user's newest movies. 0
	// keeps the whole-history bag with fold exclusion.
	HistoryLength int
	Seed          uint64
}

// Fields says which feature each position of the encoded users and movies
// holds, and how a movie appears in the history feature.
type Fields struct {
	User, Movie []feature.Field
	// HistoryIndex maps each movie (by its index in Data.Movies) to its
	// index in the history vocabulary; needed when User holds
	// feature.HistoryField.
	HistoryIndex []int32
}

// Apply rewrites d by the recipe; times[i] is the time of d.Train[i]. Real
// users and movies keep their indexes: twins and fold copies are appended
// after them, and d.Train's interactions are repointed (never reordered).
func (r Recipe) Apply(d *Data, times []int64, f Fields) error {
	hist := slices.Index(f.User, feature.HistoryField)
	var errs []error
	if !(r.ColdStartRate >= 0 && r.ColdStartRate <= 1) {
		errs = append(errs, fmt.Errorf("cold-start rate %g not in [0, 1]", r.ColdStartRate))
	}
	if r.HistoryLength < 0 {
		errs = append(errs, fmt.Errorf("history length %d < 0", r.HistoryLength))
	}
	if len(times) != len(d.Train) {
		errs = append(errs, fmt.Errorf("%d times for %d interactions", len(times), len(d.Train)))
	}
	if hist >= 0 && r.HistoryLength == 0 && r.HistoryFolds < 2 {
		errs = append(errs, fmt.Errorf("%d history folds, want ≥ 2", r.HistoryFolds))
	}
	if hist >= 0 && len(f.HistoryIndex) != len(d.Movies) {
		errs = append(errs, fmt.Errorf("history index of %d movies, want %d", len(f.HistoryIndex), len(d.Movies)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("train: recipe: %w", err)
	}
	if r.Recency > 0 {
		if err := WeightByRecency(d.Train, times, r.Recency); err != nil {
			return err
		}
	}
	realUsers := int32(len(d.Users))
	d.Origin = realOrigins(len(d.Users)) // every step below appends its copies' origins
	recent := hist >= 0 && r.HistoryLength > 0
	var folds, group []int32
	var bags [][]int32
	switch { // bags and folds first: they follow the real users and movies, before twins take some interactions
	case recent:
		group, bags = recentBags(d.Train, times, f.HistoryIndex, r.HistoryLength)
	case hist >= 0:
		folds = assignFolds(d.Train, len(d.Users), r.HistoryFolds, r.Seed)
	}
	addColdTwins(d, f.User, f.Movie, r.ColdStartRate, r.Seed)
	switch {
	case recent:
		addRecentHistory(d, int32(len(d.Users)), hist, group, bags)
	case hist >= 0:
		addHistoryFolds(d, realUsers, hist, folds, f.HistoryIndex)
	}
	return nil
}

// recentBags builds the causal history of every interaction: the history
// indexes of its user's newest n movies rated strictly before it, newest
// first (ties in time by movie index, higher first, as the splits order
// them). Interactions of one user at one time share a bag, so it returns
// each interaction's group and each group's bag; a user's first time gets
// the empty bag. histIndex maps a movie to its history index.
func recentBags(xs []Interaction, times []int64, histIndex []int32, n int) (group []int32, bags [][]int32) {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		return cmp.Or(cmp.Compare(xs[a].User, xs[b].User), cmp.Compare(times[a], times[b]),
			cmp.Compare(xs[a].Movie, xs[b].Movie), cmp.Compare(a, b))
	})
	group = make([]int32, len(xs))
	for lo := 0; lo < len(idx); { // one user's interactions, oldest first
		hi := lo + 1
		for hi < len(idx) && xs[idx[hi]].User == xs[idx[lo]].User {
			hi++
		}
		for t := lo; t < hi; { // one time: [t, e)
			e := t + 1
			for e < hi && times[idx[e]] == times[idx[t]] {
				e++
			}
			bag := make([]int32, 0, min(n, t-lo))
			for p := t - 1; p >= lo && len(bag) < n; p-- {
				bag = append(bag, histIndex[xs[idx[p]].Movie])
			}
			for _, i := range idx[t:e] {
				group[i] = int32(len(bags))
			}
			bags = append(bags, bag)
			t = e
		}
		lo = hi
	}
	return group, bags
}

// addRecentHistory moves every interaction of a user entity below n (the
// real users, then their cold-start twins) to a copy of that entity per
// bag, whose history field (pos) is the bag (the OOV bag when empty).
// group[i] is interaction i's bag in bags (see recentBags). A twin's copy
// keeps the bag, so id-less users with recent movies — new users sending
// recent_movie_ids — are trained as serving sees them; it stays marked
// cold only when its bag is empty (nothing known about the user). Serving
// and evaluation use the user's newest movies in the same way.
func addRecentHistory(d *Data, n int32, pos int, group []int32, bags [][]int32) {
	type key struct{ group, user int32 }
	entity := map[key]int32{}
	for i := range d.Train {
		x := &d.Train[i]
		if x.User >= n {
			continue
		}
		k := key{group[i], x.User}
		e, ok := entity[k]
		if !ok {
			e = int32(len(d.Users))
			entity[k] = e
			t := slices.Clone(d.Users[x.User])
			t[pos] = bags[k.group]
			if len(t[pos]) == 0 {
				t[pos] = []int32{feature.OOV}
			}
			d.Users = append(d.Users, t)
			if d.Origin != nil {
				d.Origin = append(d.Origin, d.Origin[x.User])
			}
			if d.Cold != nil {
				d.Cold = append(d.Cold, d.Cold[x.User] && len(bags[k.group]) == 0)
			}
		}
		x.User = e
	}
}

// WeightByRecency sets every interaction's Weight by its recency within its
// user's history, so that training leans towards each user's current
// taste. times[i] is the time of xs[i]. A user's n interactions, sorted by
// time (ties by position in xs), get weights exp(k·(r−1))·k/(1−e^−k), where
// r goes from 0 (oldest) to 1 (newest): a user's weights average 1 and the
// newest is e^k times the oldest. A user with one interaction gets 1; k = 0
// resets every weight to 1.
func WeightByRecency(xs []Interaction, times []int64, k float64) error {
	if len(times) != len(xs) {
		return fmt.Errorf("train: %d times for %d interactions", len(times), len(xs))
	}
	if !(k >= 0) || math.IsInf(k, 0) || k > 50 {
		return fmt.Errorf("train: recency decay %g not in [0, 50]", k)
	}
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		return cmp.Or(cmp.Compare(xs[a].User, xs[b].User), cmp.Compare(times[a], times[b]), cmp.Compare(a, b))
	})
	norm := 1.0
	if k > 0 {
		norm = k / -math.Expm1(-k)
	}
	for lo := 0; lo < len(idx); {
		hi := lo + 1
		for hi < len(idx) && xs[idx[hi]].User == xs[idx[lo]].User {
			hi++
		}
		n := hi - lo
		for p, i := range idx[lo:hi] {
			w := 1.0
			if k > 0 && n > 1 {
				r := float64(p) / float64(n-1)
				w = math.Exp(k*(r-1)) * norm
			}
			xs[i].Weight = float32(w)
		}
		lo = hi
	}
	return nil
}

// addColdTwins teaches the towers to serve users and movies they have never
// seen. Every user and movie gets a twin whose id is out of vocabulary (its
// other features kept), and a fraction rate of the training ratings is moved
// to the twins, so the OOV id rows are trained and a cold-start vector comes
// from features alone. Twins are appended after the real entities, so the
// indexes of real users and movies do not change.
func addColdTwins(d *Data, userFields, movieFields []feature.Field, rate float64, seed uint64) {
	if rate <= 0 {
		return
	}
	// ids only: a new user has no history either
	twins := func(list []feature.Encoded, fields []feature.Field, ids ...feature.Field) ([]feature.Encoded, bool) {
		var pos []int
		for _, id := range ids {
			if p := slices.Index(fields, id); p >= 0 {
				pos = append(pos, p)
			}
		}
		if len(pos) == 0 {
			return list, false
		}
		n := len(list)
		for i := 0; i < n; i++ {
			t := slices.Clone(list[i])
			for _, p := range pos {
				t[p] = []int32{feature.OOV}
			}
			list = append(list, t)
		}
		return list, true
	}
	nu, nm := int32(len(d.Users)), int32(len(d.Movies))
	var userTwins, movieTwins bool
	d.Users, userTwins = twins(d.Users, userFields, feature.UserIDField, feature.HistoryField)
	d.Movies, movieTwins = twins(d.Movies, movieFields, feature.MovieIDField)
	if userTwins {
		if d.Origin != nil {
			d.Origin = append(d.Origin, d.Origin[:nu]...)
		}
		d.Cold = make([]bool, len(d.Users))
		for i := nu; i < int32(len(d.Users)); i++ {
			d.Cold[i] = true
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0xc01d57a7))
	for i := range d.Train {
		if userTwins && rng.Float64() < rate {
			d.Train[i].User += nu
		}
		if movieTwins && rng.Float64() < rate/2 {
			d.Train[i].Movie += nm
		}
	}
}

// assignFolds deals each user's interactions at random into k folds of
// equal size (±1) and returns every interaction's fold.
func assignFolds(xs []Interaction, users, k int, seed uint64) []int32 {
	byUser := make([][]int32, users)
	for i, x := range xs {
		byUser[x.User] = append(byUser[x.User], int32(i))
	}
	rng := rand.New(rand.NewPCG(seed, 0xf01d5))
	fold := make([]int32, len(xs))
	for _, is := range byUser {
		rng.Shuffle(len(is), func(a, b int) { is[a], is[b] = is[b], is[a] })
		for p, i := range is {
			fold[i] = int32(p % max(k, 1))
		}
	}
	return fold
}

// addHistoryFolds keeps the target movie out of its own history bag. The
// interactions of real users (indexes below nu; cold-start twins have no
// history) move to fold entities: a copy of the user whose history bag
// (field pos) lacks the movies of the interaction's fold, so an example
// never sees its own movie in the user's history while the bag keeps
// (k−1)/k of the history. Serving and evaluation use the whole history.
// fold[i] is interaction i's fold; histIndex maps a movie to its index in
// the history vocabulary.
func addHistoryFolds(d *Data, nu int32, pos int, fold []int32, histIndex []int32) {
	type key struct{ user, fold int32 }
	drop := map[key]map[int32]bool{} // the history indexes of each user's fold
	for i, x := range d.Train {
		if x.User < nu {
			k := key{x.User, fold[i]}
			if drop[k] == nil {
				drop[k] = map[int32]bool{}
			}
			drop[k][histIndex[int(x.Movie)%len(histIndex)]] = true // a movie twin stands for its movie
		}
	}
	entity := map[key]int32{}
	for i := range d.Train {
		x := &d.Train[i]
		if x.User >= nu {
			continue
		}
		k := key{x.User, fold[i]}
		e, ok := entity[k]
		if !ok {
			e = int32(len(d.Users))
			entity[k] = e
			t := slices.Clone(d.Users[x.User])
			var bag []int32
			for _, h := range t[pos] {
				if !drop[k][h] {
					bag = append(bag, h)
				}
			}
			if len(bag) == 0 {
				bag = []int32{feature.OOV}
			}
			t[pos] = bag
			d.Users = append(d.Users, t)
			if d.Origin != nil {
				d.Origin = append(d.Origin, d.Origin[x.User])
			}
			if d.Cold != nil {
				d.Cold = append(d.Cold, false)
			}
		}
		x.User = e
	}
}
