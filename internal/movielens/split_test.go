package movielens

import (
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
			all, err := ReadRatingsFile(filepath.Join(data, name, map[string]string{"ml-100k": "u.data", "ml-1m": "ratings.dat"}[name]))
			if err != nil {
				t.Fatal(err)
			}
			train, test := TemporalSplit(all, 0.8)
			for f, got := range map[string][]Rating{"train.dat": train, "test.dat": test} {
				want, err := ReadRatingsFile(filepath.Join(data, "splits", name, "user-temporal", f))
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
