package movielens

import (
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

func TestTemporalSplit(t *testing.T) {
	t.Parallel()
	rs := []Rating{
		{User: 2, Movie: 9, Time: 50},
		{User: 1, Movie: 5, Time: 30},
		{User: 1, Movie: 3, Time: 10},
		{User: 1, Movie: 4, Time: 20},
		{User: 1, Movie: 2, Time: 20}, // same time as movie 4: lower id first
		{User: 1, Movie: 1, Time: 40},
		{User: 2, Movie: 8, Time: 60},
	}
	orig := slices.Clone(rs)
	train, test := TemporalSplit(rs, 0.8)
	// user 1: 5 ratings → floor(4.0) = 4 train; user 2: floor(1.6) = 1 train.
	wantTrain := []Rating{
		{User: 1, Movie: 3, Time: 10}, {User: 1, Movie: 2, Time: 20}, {User: 1, Movie: 4, Time: 20}, {User: 1, Movie: 5, Time: 30},
		{User: 2, Movie: 9, Time: 50},
	}
	wantTest := []Rating{{User: 1, Movie: 1, Time: 40}, {User: 2, Movie: 8, Time: 60}}
	if !reflect.DeepEqual(train, wantTrain) || !reflect.DeepEqual(test, wantTest) {
		t.Fatalf("train %v\ntest %v", train, test)
	}
	if !reflect.DeepEqual(rs, orig) {
		t.Error("input modified")
	}
	for _, tt := range []struct {
		frac         float64
		train, total int
	}{{0, 0, 7}, {1, 7, 7}, {-1, 0, 7}, {2, 7, 7}, {0.5, 3, 7}} {
		tr, te := TemporalSplit(rs, tt.frac)
		if len(tr) != tt.train || len(tr)+len(te) != tt.total {
			t.Errorf("frac %g: %d train %d test", tt.frac, len(tr), len(te))
		}
	}
}

// TestTemporalSplitMatchesShared reproduces the shared ml-100k
// user-temporal split from u.data.
func TestTemporalSplitMatchesShared(t *testing.T) {
	t.Parallel()
	data := dataDir(t)
	for _, name := range []string{"ml-100k", "ml-1m"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			all, err := ReadRatingsFile(filepath.Join(data, name, map[string]string{"ml-100k": "u.data", "ml-1m": "ratings.dat"}[name]), nil)
			if err != nil {
				t.Fatal(err)
			}
			train, test := TemporalSplit(all, 0.8)
			for f, got := range map[string][]Rating{"train.dat": train, "test.dat": test} {
				want, err := ReadRatingsFile(filepath.Join(data, "splits", name, "user-temporal", f), nil)
				if err != nil {
					t.Fatal(err)
				}
				key := func(a, b Rating) int {
					if a.User != b.User {
						return int(a.User) - int(b.User)
					}
					if a.Time != b.Time {
						return int(a.Time - b.Time)
					}
					return int(a.Movie) - int(b.Movie)
				}
				slices.SortFunc(want, key)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s differs: %d vs %d ratings", f, len(got), len(want))
				}
			}
		})
	}
}

func TestTimelineSplit(t *testing.T) {
	t.Parallel()
	at := func(times ...int64) []Rating {
		rs := make([]Rating, len(times))
		for i, tm := range times {
			rs[i] = Rating{User: UserID(i%3 + 1), Movie: MovieID(i + 1), Time: tm}
		}
		return rs
	}
	timesOf := func(rs []Rating) []int64 {
		out := []int64{}
		for _, r := range rs {
			out = append(out, r.Time)
		}
		return out
	}
	for _, tc := range []struct {
		name         string
		times        []int64
		frac         float64
		older, newer []int64
	}{
		{"newest tenth, input order kept", []int64{5, 1, 9, 3, 7, 2, 10, 4, 6, 8}, 0.1, []int64{5, 1, 9, 3, 7, 2, 4, 6, 8}, []int64{10}},
		{"newest fifth", []int64{5, 1, 9, 3, 7, 2, 10, 4, 6, 8}, 0.2, []int64{5, 1, 3, 7, 2, 4, 6, 8}, []int64{9, 10}},
		{"a tie at the boundary stays older", []int64{1, 2, 3, 4, 5, 6, 7, 8, 8, 9}, 0.2, []int64{1, 2, 3, 4, 5, 6, 7, 8, 8}, []int64{9}},
		{"ties inside newer move together", []int64{9, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 0.3, []int64{1, 2, 3, 4, 5, 6, 7}, []int64{9, 8, 9}},
		{"a tie across the boundary empties newer", []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 9}, 0.1, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 9}, []int64{}},
		{"one second for all: nothing to carve", []int64{4, 4, 4, 4, 4}, 0.4, []int64{4, 4, 4, 4, 4}, []int64{}},
		{"too small for a tenth", []int64{1, 2, 3}, 0.1, []int64{1, 2, 3}, []int64{}},
		{"frac 0", []int64{1, 2}, 0, []int64{1, 2}, []int64{}},
		{"frac 1 takes all", []int64{1, 2}, 1, []int64{}, []int64{1, 2}},
		{"empty", nil, 0.1, []int64{}, []int64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rs := at(tc.times...)
			orig := slices.Clone(rs)
			older, newer := TimelineSplit(rs, tc.frac)
			if got := timesOf(older); !slices.Equal(got, tc.older) {
				t.Errorf("older times %v, want %v", got, tc.older)
			}
			if got := timesOf(newer); !slices.Equal(got, tc.newer) {
				t.Errorf("newer times %v, want %v", got, tc.newer)
			}
			if len(older)+len(newer) != len(rs) {
				t.Errorf("%d + %d ratings out of %d", len(older), len(newer), len(rs))
			}
			if !slices.Equal(rs, orig) {
				t.Error("input modified")
			}
		})
	}
}

func TestUserTimelineSplit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		rs           []Rating
		frac         float64
		older, newer []Rating
	}{
		{"each user's newest tenth, input order kept",
			[]Rating{{User: 1, Movie: 10, Time: 10}, {User: 2, Movie: 1, Time: 5}, {User: 1, Movie: 1, Time: 1}, {User: 1, Movie: 2, Time: 2},
				{User: 1, Movie: 3, Time: 3}, {User: 1, Movie: 4, Time: 4}, {User: 1, Movie: 5, Time: 5}, {User: 1, Movie: 6, Time: 6},
				{User: 1, Movie: 7, Time: 7}, {User: 1, Movie: 8, Time: 8}, {User: 1, Movie: 9, Time: 9}},
			0.1,
			[]Rating{{User: 2, Movie: 1, Time: 5}, {User: 1, Movie: 1, Time: 1}, {User: 1, Movie: 2, Time: 2}, {User: 1, Movie: 3, Time: 3},
				{User: 1, Movie: 4, Time: 4}, {User: 1, Movie: 5, Time: 5}, {User: 1, Movie: 6, Time: 6}, {User: 1, Movie: 7, Time: 7},
				{User: 1, Movie: 8, Time: 8}, {User: 1, Movie: 9, Time: 9}},
			[]Rating{{User: 1, Movie: 10, Time: 10}}},
		{"one rating: the user keeps it", []Rating{{User: 7, Movie: 3, Time: 1}}, 0.5, []Rating{{User: 7, Movie: 3, Time: 1}}, nil},
		{"frac 1 still keeps one rating", []Rating{{User: 1, Movie: 1, Time: 1}, {User: 1, Movie: 2, Time: 2}}, 1,
			[]Rating{{User: 1, Movie: 1, Time: 1}}, []Rating{{User: 1, Movie: 2, Time: 2}}},
		{"a tie with the newest kept rating stays older",
			[]Rating{{User: 1, Movie: 1, Time: 1}, {User: 1, Movie: 2, Time: 2}, {User: 1, Movie: 3, Time: 3}, {User: 1, Movie: 4, Time: 3}},
			0.25, []Rating{{User: 1, Movie: 1, Time: 1}, {User: 1, Movie: 2, Time: 2}, {User: 1, Movie: 3, Time: 3}, {User: 1, Movie: 4, Time: 3}}, nil},
		{"ties inside newer move together; movie id orders a tie",
			[]Rating{{User: 1, Movie: 9, Time: 5}, {User: 1, Movie: 1, Time: 1}, {User: 1, Movie: 2, Time: 5}, {User: 1, Movie: 3, Time: 2}},
			0.5, []Rating{{User: 1, Movie: 1, Time: 1}, {User: 1, Movie: 3, Time: 2}}, []Rating{{User: 1, Movie: 9, Time: 5}, {User: 1, Movie: 2, Time: 5}}},
		{"too few ratings for a tenth", []Rating{{User: 1, Movie: 1, Time: 1}, {User: 1, Movie: 2, Time: 2}}, 0.1,
			[]Rating{{User: 1, Movie: 1, Time: 1}, {User: 1, Movie: 2, Time: 2}}, nil},
		{"empty", nil, 0.1, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			orig := slices.Clone(tc.rs)
			older, newer := UserTimelineSplit(tc.rs, tc.frac)
			if !slices.Equal(older, tc.older) || !slices.Equal(newer, tc.newer) {
				t.Errorf("older %v newer %v, want %v and %v", older, newer, tc.older, tc.newer)
			}
			if !slices.Equal(tc.rs, orig) {
				t.Error("input modified")
			}
		})
	}
}

func TestRandomSplit(t *testing.T) {
	t.Parallel()
	rs := make([]Rating, 50)
	for i := range rs {
		rs[i] = Rating{User: UserID(i % 7), Movie: MovieID(i), Time: int64(i)}
	}
	orig := slices.Clone(rs)
	for _, tc := range []struct {
		frac float64
		held int
	}{{0.1, 5}, {0.25, 12}, {0, 0}, {-1, 0}, {math.NaN(), 0}, {1, 50}, {2, 50}} {
		kept, held := RandomSplit(rs, tc.frac, 3)
		if len(held) != tc.held || len(kept)+len(held) != len(rs) {
			t.Errorf("frac %v: %d held, %d kept, want %d held of %d", tc.frac, len(held), len(kept), tc.held, len(rs))
		}
		// Both keep the input's order, so together they are a partition.
		for _, part := range [][]Rating{kept, held} {
			if !slices.IsSortedFunc(part, func(a, b Rating) int { return int(a.Movie) - int(b.Movie) }) {
				t.Errorf("frac %v: order not kept", tc.frac)
			}
		}
	}
	_, a := RandomSplit(rs, 0.2, 3)
	_, b := RandomSplit(rs, 0.2, 3)
	_, c := RandomSplit(rs, 0.2, 4)
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Errorf("seed 3 twice: %v, %v; seed 4: %v (want the same, then different)", a, b, c)
	}
	if !slices.Equal(rs, orig) {
		t.Error("input modified")
	}
	if k, h := RandomSplit(nil, 0.5, 1); k != nil || h != nil {
		t.Errorf("empty: %v %v", k, h)
	}
}
