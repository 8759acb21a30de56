package movielens

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// Synth draws the catalogue it was asked for, the same for the same seed,
// with exactly o.Ratings distinct, integer, time-ordered ratings, the
// popularity skew and feature-driven tastes of Demo, and round-trips
// through WriteML1M and LoadDir.
func TestSynth(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    SynthOptions
	}{
		{"large catalogue", SynthOptions{Movies: 50000, Users: 300, Ratings: 20000}},
		{"small catalogue (whole-catalogue draws)", SynthOptions{Movies: 40, Users: 50, Ratings: 1500}},
		{"one rating per user", SynthOptions{Movies: 10, Users: 10, Ratings: 10}},
		{"one user with every movie (its times stay in the past)", SynthOptions{Movies: 60000, Users: 1, Ratings: 60000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ds, err := Synth(tc.o, 3)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := Synth(tc.o, 3)
			if !reflect.DeepEqual(ds, again) {
				t.Fatal("Synth differs between calls with one seed")
			}
			if len(ds.Movies) != tc.o.Movies || len(ds.Users) != tc.o.Users || len(ds.Ratings) != tc.o.Ratings {
				t.Fatalf("%d movies, %d users, %d ratings; want %+v", len(ds.Movies), len(ds.Users), len(ds.Ratings), tc.o)
			}
			now := time.Now().Unix()
			for _, r := range ds.Ratings {
				_, uok := ds.UserIndex(r.User)
				_, mok := ds.MovieIndex(r.Movie)
				if !uok || !mok || r.Time > now {
					t.Fatalf("rating %+v: user or movie not in the dataset, or in the future", r)
				}
			}
			seen := map[[2]int32]bool{}
			last := map[UserID]int64{}
			per := map[UserID]int{}
			count := make([]int, tc.o.Movies)
			for _, r := range ds.Ratings {
				k := [2]int32{int32(r.User), int32(r.Movie)}
				if seen[k] || r.Value != float32(int(r.Value)) || r.Value < 1 || r.Value > 5 || r.Time <= last[r.User] {
					t.Fatalf("bad rating %+v (duplicate, value or time order)", r)
				}
				seen[k], last[r.User] = true, r.Time
				per[r.User]++
				count[r.Movie-1]++
			}
			if len(per) != tc.o.Users {
				t.Errorf("%d of %d users have ratings", len(per), tc.o.Users)
			}
			if tc.o.Movies >= 1000 && tc.o.Ratings < tc.o.Movies*tc.o.Users/2 { // a sample, not the whole matrix
				slices.Sort(count)
				top := 0
				for _, c := range count[tc.o.Movies*99/100:] {
					top += c
				}
				if share := float64(top) / float64(len(ds.Ratings)); share < 0.1 {
					t.Errorf("top 1%% of movies hold %.3f of ratings", share)
				}
			}
			dir := t.TempDir()
			if err := WriteML1M(dir, ds); err != nil {
				t.Fatal(err)
			}
			got, err := LoadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Users, ds.Users) || !reflect.DeepEqual(got.Movies, ds.Movies) || !reflect.DeepEqual(got.Ratings, ds.Ratings) {
				t.Fatal("the written directory loads differently")
			}
		})
	}
}

// Gender shapes taste in Synth as in Demo: women rate Romance more, men
// Action.
func TestSynthFeaturesMatter(t *testing.T) {
	t.Parallel()
	ds, err := Synth(SynthOptions{Movies: 20000, Users: 2000, Ratings: 100000}, 5)
	if err != nil {
		t.Fatal(err)
	}
	share := func(gender, genre string) float64 {
		hit, all := 0, 0
		for _, r := range ds.Ratings {
			if ds.Users[r.User-1].Gender != gender {
				continue
			}
			all++
			if slices.Contains(ds.Movies[r.Movie-1].Genres, genre) {
				hit++
			}
		}
		return float64(hit) / float64(all)
	}
	if f, m := share("F", "Romance"), share("M", "Romance"); f < 1.5*m {
		t.Errorf("Romance share F %.3f, M %.3f", f, m)
	}
	if f, m := share("F", "Action"), share("M", "Action"); m < 1.5*f {
		t.Errorf("Action share F %.3f, M %.3f", f, m)
	}
}

func TestSynthOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, o := range []SynthOptions{{}, {Movies: 5, Users: 2, Ratings: 1}, {Movies: 2, Users: 2, Ratings: 5}, {Movies: -1, Users: 1, Ratings: 1}} {
		if _, err := Synth(o, 1); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// A failed write leaves no file behind (here the last file fails: a
// rating that is not an integer), so a retry into the same directory
// starts clean; nor the directory, when the write made it.
func TestWriteML1MAllOrNothing(t *testing.T) {
	t.Parallel()
	ds := Demo(1)
	ds.Ratings = slices.Clone(ds.Ratings)
	ds.Ratings[len(ds.Ratings)-1].Value = 3.5
	made := filepath.Join(t.TempDir(), "data")
	if err := WriteML1M(made, ds); err == nil || !strings.Contains(err.Error(), "not an integer") {
		t.Fatalf("WriteML1M = %v, want the bad rating", err)
	}
	if _, err := os.Stat(made); !os.IsNotExist(err) {
		t.Errorf("left the directory it made (%v)", err)
	}
	existing := t.TempDir()
	if err := WriteML1M(existing, ds); err == nil {
		t.Fatal("WriteML1M into an existing directory: no error")
	}
	if entries, err := os.ReadDir(existing); err != nil || len(entries) != 0 {
		t.Errorf("left %v (%v) in an existing directory", entries, err)
	}
}

// WriteML1M never writes beside a dataset of either layout: an ML-100K
// directory gaining users.dat would hold two datasets, and LoadDir refuses
// those.
func TestWriteML1MKeepsExistingDataset(t *testing.T) {
	t.Parallel()
	for name, files := range map[string]map[string]string{"ml-1m": ml1mFiles(), "ml-100k": ml100kFiles()} {
		dir := writeFiles(t, files)
		err := WriteML1M(dir, Demo(1))
		if err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("%s: WriteML1M = %v, want a refusal", name, err)
		}
		if _, err := LoadDir(dir); err != nil {
			t.Errorf("%s: the dataset no longer loads: %v", name, err)
		}
	}
}
