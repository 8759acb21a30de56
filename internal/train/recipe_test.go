package train

import (
	"cmp"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/nn/gradcheck"
)

func TestColdTwins(t *testing.T) {
	t.Parallel()
	d := Data{
		Users:  []feature.Encoded{{{5}, {1}}, {{6}, {2}}},
		Movies: []feature.Encoded{{{7}, {1, 2}}},
		Train:  make([]Interaction, 1000),
	}
	addColdTwins(&d, []feature.Field{feature.UserIDField, feature.GenderField}, []feature.Field{feature.MovieIDField, feature.GenresField}, 0.2, 1)
	if len(d.Users) != 4 || len(d.Movies) != 2 {
		t.Fatalf("%d users, %d movies after twins", len(d.Users), len(d.Movies))
	}
	if d.Users[0][0][0] != 5 || d.Users[2][0][0] != feature.OOV || d.Users[2][1][0] != 1 {
		t.Errorf("user twin = %v, original %v", d.Users[2], d.Users[0])
	}
	if d.Movies[1][0][0] != feature.OOV || !slices.Equal(d.Movies[1][1], []int32{1, 2}) {
		t.Errorf("movie twin = %v", d.Movies[1])
	}
	moved := 0
	for _, x := range d.Train {
		if x.User >= 2 {
			moved++
		}
	}
	if moved < 150 || moved > 250 {
		t.Errorf("%d of 1000 ratings moved to user twins at rate 0.2", moved)
	}
	// Without an id feature nothing changes.
	d2 := Data{Users: []feature.Encoded{{{1}}}, Movies: []feature.Encoded{{{1}}}, Train: make([]Interaction, 10)}
	addColdTwins(&d2, []feature.Field{feature.GenderField}, []feature.Field{feature.GenresField}, 0.5, 1)
	if len(d2.Users) != 1 || len(d2.Movies) != 1 {
		t.Error("twins added without an id feature")
	}
}

// TestHistoryFolds checks that no training example sees its own movie in
// its user's history bag, that a bag keeps the rest of the user's history,
// and that cold-start twins and their history stay untouched.
func TestHistoryFolds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		k     int
		twins bool
	}{{"two folds", 2, false}, {"five folds", 5, false}, {"more folds than ratings", 9, false}, {"with twins", 3, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// user 0 rated movies 0..6, user 1 rated movie 2, user 2 nothing;
			// history index of movie m is m+1; field 1 is the history bag.
			d := Data{Movies: make([]feature.Encoded, 7)}
			hist := [][]int32{{1, 2, 3, 4, 5, 6, 7}, {3}, {feature.OOV}}
			for u, h := range hist {
				d.Users = append(d.Users, feature.Encoded{{int32(u + 1)}, h})
			}
			for m := range 7 {
				d.Movies[m] = feature.Encoded{{int32(m + 1)}}
				d.Train = append(d.Train, Interaction{User: 0, Movie: int32(m)})
			}
			d.Train = append(d.Train, Interaction{User: 1, Movie: 2})
			histIndex := []int32{1, 2, 3, 4, 5, 6, 7}
			nu := int32(len(d.Users))
			orig := slices.Clone(d.Train)
			folds := assignFolds(d.Train, len(d.Users), tc.k, 1)
			if tc.twins {
				addColdTwins(&d, []feature.Field{feature.UserIDField, feature.HistoryField}, []feature.Field{feature.MovieIDField}, 0.4, 3)
			}
			addHistoryFolds(&d, nu, 1, folds, histIndex)
			perFold := map[int32]int{}
			for i, x := range d.Train {
				if tc.twins && x.User >= nu && x.User < 2*nu {
					if got := d.Users[x.User][1]; !reflect.DeepEqual(got, []int32{feature.OOV}) || !d.Cold[x.User] {
						t.Errorf("twin %d history %v", x.User, got)
					}
					continue
				}
				if x.User < nu {
					t.Fatalf("interaction %d still on the real user %d", i, x.User)
				}
				u := orig[i].User
				movie := histIndex[int(x.Movie)%len(histIndex)]
				bag := d.Users[x.User][1]
				if slices.Contains(bag, movie) {
					t.Errorf("interaction %d: movie in its own history bag %v", i, bag)
				}
				if d.Users[x.User][0][0] != int32(u+1) {
					t.Errorf("interaction %d: fold entity lost the user's other features", i)
				}
				// Everything the bag lacks is in the same fold of the same user.
				for _, h := range hist[u] {
					if slices.Contains(bag, h) {
						continue
					}
					found := false
					for j, y := range orig {
						if y.User == u && histIndex[y.Movie] == h && folds[j] == folds[i] {
							found = true
						}
					}
					if !found {
						t.Errorf("interaction %d: bag %v lacks %d from another fold", i, bag, h)
					}
				}
				if u == 0 {
					perFold[folds[i]]++
				}
			}
			if !tc.twins { // balanced folds: sizes differ by at most one
				lo, hi := 7, 0
				for f := range min(tc.k, 7) {
					lo, hi = min(lo, perFold[int32(f)]), max(hi, perFold[int32(f)])
				}
				if hi-lo > 1 {
					t.Errorf("fold sizes %v", perFold)
				}
			}
			// The real users keep their whole history (serving and validation use it).
			for u, h := range hist {
				if !reflect.DeepEqual(d.Users[u][1], h) {
					t.Errorf("user %d history changed to %v", u, d.Users[u][1])
				}
			}
		})
	}
}

func TestWeightByRecency(t *testing.T) {
	t.Parallel()
	xs := []Interaction{{User: 1}, {User: 0}, {User: 1}, {User: 1}, {User: 2}, {User: 0}}
	times := []int64{30, 5, 10, 20, 7, 5} // user 0 has a tie: position breaks it
	if err := WeightByRecency(xs, times, 3); err != nil {
		t.Fatal(err)
	}
	norm := 3 / (1 - math.Exp(-3))
	want := []float64{norm, math.Exp(-3) * norm, math.Exp(-3) * norm, math.Exp(-1.5) * norm, 1, norm}
	for i, w := range want {
		if !gradcheck.Near(float64(xs[i].Weight), w, 1e-5) {
			t.Errorf("weight[%d] = %g, want %g", i, xs[i].Weight, w)
		}
	}
	if err := WeightByRecency(xs, times, 0); err != nil || xs[0].Weight != 1 {
		t.Fatalf("k=0: %v %v", err, xs[0].Weight)
	}
	if WeightByRecency(xs, times[:2], 1) == nil || WeightByRecency(xs, times, -1) == nil || WeightByRecency(xs, times, math.NaN()) == nil {
		t.Fatal("bad input accepted")
	}
}

func TestRecipeApplyChecks(t *testing.T) {
	t.Parallel()
	d := Data{Users: []feature.Encoded{{{1}, {1}}}, Movies: []feature.Encoded{{{1}}}, Train: []Interaction{{}}}
	f := Fields{User: []feature.Field{feature.UserIDField, feature.HistoryField}, Movie: []feature.Field{feature.MovieIDField}}
	err := Recipe{ColdStartRate: 2, HistoryFolds: 1}.Apply(&d, []int64{0}, f)
	for _, want := range []string{"cold-start rate", "history folds", "history index"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
	if err := (Recipe{Recency: 1}).Apply(&d, nil, Fields{}); err == nil {
		t.Error("recency without times accepted")
	}
}

// TestRecentHistory checks the causal history: every example's bag holds
// exactly its user's newest n movies rated strictly before it (so never its
// own movie, one rated at the same time or a later one), newest first; a
// cold-start twin keeps the bag without the id, and only twins with an
// empty bag are marked cold.
func TestRecentHistory(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		n     int
		twins bool
	}{{"one", 1, false}, {"three", 3, false}, {"longer than any history", 50, false}, {"with twins", 4, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(7, uint64(tc.n)))
			const users, movies = 5, 30
			d := Data{}
			for u := range users {
				d.Users = append(d.Users, feature.Encoded{{int32(u + 1)}, {feature.OOV}})
			}
			histIndex := make([]int32, movies)
			for m := range movies {
				d.Movies = append(d.Movies, feature.Encoded{{int32(m + 1)}})
				histIndex[m] = int32(m + 1)
			}
			var times []int64
			for u := range users - 1 { // the last user rates nothing
				for _, m := range rng.Perm(movies)[:5+rng.IntN(20)] {
					d.Train = append(d.Train, Interaction{User: int32(u), Movie: int32(m)})
					times = append(times, int64(rng.IntN(8))) // many ties
				}
			}
			orig := slices.Clone(d.Train)
			nu := int32(len(d.Users))
			fl := Fields{User: []feature.Field{feature.UserIDField, feature.HistoryField}, Movie: []feature.Field{feature.MovieIDField}, HistoryIndex: histIndex}
			rate := 0.0
			if tc.twins {
				rate = 0.3
			}
			if err := (Recipe{ColdStartRate: rate, HistoryLength: tc.n, Seed: 3}).Apply(&d, times, fl); err != nil {
				t.Fatal(err)
			}
			if len(d.Origin) != len(d.Users) {
				t.Fatalf("%d origins for %d users", len(d.Origin), len(d.Users))
			}
			twins := 0
			copies := nu // the first history copy
			if tc.twins {
				copies = 2 * nu
			}
			for i, x := range d.Train {
				if x.User < copies {
					t.Fatalf("interaction %d still on user or twin %d", i, x.User)
				}
				u := orig[i].User
				if d.Origin[x.User] != u {
					t.Errorf("interaction %d: on a copy of user %d, origin %d", i, u, d.Origin[x.User])
				}
				id := d.Users[x.User][0][0]
				twin := id == feature.OOV
				if twin {
					twins++
				} else if id != u+1 {
					t.Errorf("interaction %d: the copy lost its user's id", i)
				}
				// The expected bag: u's movies before times[i], newest first,
				// ties by movie index (higher first).
				var before []int
				for j, y := range orig {
					if y.User == u && times[j] < times[i] {
						before = append(before, j)
					}
				}
				slices.SortFunc(before, func(a, b int) int {
					return cmp.Or(cmp.Compare(times[b], times[a]), cmp.Compare(orig[b].Movie, orig[a].Movie))
				})
				want := []int32{}
				for _, j := range before[:min(tc.n, len(before))] {
					want = append(want, histIndex[orig[j].Movie])
				}
				if cold := d.Cold != nil && d.Cold[x.User]; cold != (twin && len(want) == 0) {
					t.Errorf("interaction %d (twin %v, bag %v): cold %v", i, twin, want, cold)
				}
				if len(want) == 0 {
					want = []int32{feature.OOV}
				}
				if got := d.Users[x.User][1]; !slices.Equal(got, want) {
					t.Errorf("interaction %d (user %d, time %d): bag %v, want %v", i, u, times[i], got, want)
				}
				if slices.Contains(d.Users[x.User][1], histIndex[orig[i].Movie]) {
					t.Errorf("interaction %d: its own movie is in its bag", i)
				}
			}
			if tc.twins != (twins > 0) {
				t.Errorf("%d interactions on twins", twins)
			}
		})
	}
}

// TestRecipeOrigin checks that Apply records, for the twins and fold
// copies it adds, the real user each stands for.
func TestRecipeOrigin(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(9, 9))
	const users, movies = 6, 20
	d := Data{}
	histIndex := make([]int32, movies)
	for m := range movies {
		d.Movies = append(d.Movies, feature.Encoded{{int32(m + 1)}})
		histIndex[m] = int32(m + 1)
	}
	var times []int64
	for u := range users {
		var bag []int32
		for _, m := range rng.Perm(movies)[:8] {
			d.Train = append(d.Train, Interaction{User: int32(u), Movie: int32(m)})
			times = append(times, int64(len(times)))
			bag = append(bag, histIndex[m])
		}
		d.Users = append(d.Users, feature.Encoded{{int32(u + 1)}, bag})
	}
	orig := slices.Clone(d.Train)
	fl := Fields{User: []feature.Field{feature.UserIDField, feature.HistoryField}, Movie: []feature.Field{feature.MovieIDField}, HistoryIndex: histIndex}
	if err := (Recipe{ColdStartRate: 0.3, HistoryFolds: 3, Seed: 4}).Apply(&d, times, fl); err != nil {
		t.Fatal(err)
	}
	if len(d.Origin) != len(d.Users) || len(d.Users) <= 2*users {
		t.Fatalf("%d origins for %d users (want twins and fold copies beyond %d)", len(d.Origin), len(d.Users), 2*users)
	}
	for u := range 2 * users { // the real users, then their twins
		if d.Origin[u] != int32(u%users) {
			t.Errorf("user %d: origin %d", u, d.Origin[u])
		}
	}
	for i, x := range d.Train {
		if d.Origin[x.User] != orig[i].User {
			t.Errorf("interaction %d of user %d is on user %d, origin %d", i, orig[i].User, x.User, d.Origin[x.User])
		}
	}
}
