package movielens

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
)

func TestDemoDeterministic(t *testing.T) {
	t.Parallel()
	a, b, c := Demo(1), Demo(1), Demo(2)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("Demo(1) differs between calls")
	}
	if reflect.DeepEqual(a.Ratings, c.Ratings) {
		t.Fatal("Demo(1) and Demo(2) have the same ratings")
	}
}

func TestDemoShape(t *testing.T) {
	t.Parallel()
	ds := Demo(7)
	if ds.Layout != LayoutML1M || len(ds.Users) != DemoUsers || len(ds.Movies) != DemoMovies {
		t.Fatalf("%s %d users %d movies", ds.Layout, len(ds.Users), len(ds.Movies))
	}
	if n := len(ds.Ratings); n < 30000 || n > 50000 {
		t.Errorf("%d ratings, want about 40k", n)
	}
	genres := ML1MGenres()
	for i, u := range ds.Users {
		line := fmt.Sprintf("%d::%s::%d::%d::%s", u.ID, u.Gender, u.Age, slices.Index(Occupations(), u.Occupation), u.Zip)
		if p, err := ParseUser1M(line); err != nil || p != u || u.ID != UserID(i+1) {
			t.Fatalf("user %+v does not round-trip through users.dat: %v", u, err)
		}
	}
	for i, m := range ds.Movies {
		if m.ID != MovieID(i+1) || m.Year < 1950 || m.Year > 2000 || len(m.Genres) < 1 || len(m.Genres) > 3 || TitleYear(m.Title) != m.Year {
			t.Fatalf("bad movie %+v", m)
		}
		for _, g := range m.Genres {
			if !slices.Contains(genres, g) {
				t.Fatalf("movie %d: genre %q", m.ID, g)
			}
		}
	}
	for _, r := range ds.Ratings {
		_, uok := ds.UserIndex(r.User)
		_, mok := ds.MovieIndex(r.Movie)
		if !uok || !mok {
			t.Fatalf("rating %+v: user or movie not in the dataset", r)
		}
	}
	seen := make(map[[2]int32]bool)
	last := make(map[UserID]int64)
	for _, r := range ds.Ratings {
		k := [2]int32{int32(r.User), int32(r.Movie)}
		if seen[k] {
			t.Fatalf("duplicate rating %+v", r)
		}
		seen[k] = true
		if r.Value != float32(int(r.Value)) {
			t.Fatalf("non-integer rating %+v", r)
		}
		if r.Time <= last[r.User] {
			t.Fatalf("time does not increase: %+v", r)
		}
		last[r.User] = r.Time
	}
	// The popularity skew: the top 10% of movies get a clearly larger share
	// of the ratings than 10%.
	count := make([]int, DemoMovies)
	for _, r := range ds.Ratings {
		count[r.Movie-1]++
	}
	slices.Sort(count)
	top := 0
	for _, c := range count[DemoMovies*9/10:] {
		top += c
	}
	if share := float64(top) / float64(len(ds.Ratings)); share < 0.2 {
		t.Errorf("top 10%% of movies hold %.2f of ratings", share)
	}
}

// TestDemoFeaturesMatter checks that user groups defined by one feature
// rate measurably different genre mixes.
func TestDemoFeaturesMatter(t *testing.T) {
	t.Parallel()
	ds := Demo(42)
	genres := ML1MGenres()
	dist := func(keep func(User) bool) []float64 {
		d := make([]float64, len(genres))
		total := 0.0
		for _, r := range ds.Ratings {
			if !keep(ds.Users[r.User-1]) {
				continue
			}
			for _, g := range ds.Movies[r.Movie-1].Genres {
				d[slices.Index(genres, g)]++
				total++
			}
		}
		for i := range d {
			d[i] /= total
		}
		return d
	}
	tv := func(a, b []float64) float64 {
		s := 0.0
		for i := range a {
			s += math.Abs(a[i] - b[i])
		}
		return s / 2
	}
	share := func(d []float64, g string) float64 { return d[slices.Index(genres, g)] }

	f, m := dist(func(u User) bool { return u.Gender == "F" }), dist(func(u User) bool { return u.Gender == "M" })
	young, old := dist(func(u User) bool { return u.Age < 25 }), dist(func(u User) bool { return u.Age >= 45 })
	k12, prog := dist(func(u User) bool { return u.Occupation == "K-12 student" }), dist(func(u User) bool { return u.Occupation == "programmer" })
	tests := []struct {
		name string
		a, b []float64
		more string // genre with a larger share in a than in b
	}{
		{"gender", f, m, "Romance"},
		{"age", young, old, "Children's"},
		{"age reversed", old, young, "Film-Noir"},
		{"occupation", k12, prog, "Animation"},
		{"occupation reversed", prog, k12, "Sci-Fi"},
	}
	for _, tt := range tests {
		d := tv(tt.a, tt.b)
		t.Logf("%s: total variation %.3f, %s %.3f vs %.3f", tt.name, d, tt.more, share(tt.a, tt.more), share(tt.b, tt.more))
		if d < 0.08 {
			t.Errorf("%s: total variation %.3f, want ≥ 0.08", tt.name, d)
		}
		if share(tt.a, tt.more) < 1.3*share(tt.b, tt.more) {
			t.Errorf("%s: %s share %.3f vs %.3f, want 1.3×", tt.name, tt.more, share(tt.a, tt.more), share(tt.b, tt.more))
		}
	}
}
