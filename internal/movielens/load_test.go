package movielens

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeFiles creates a directory holding the given files.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeFilesIn(t, dir, files)
	return dir
}

// writeFilesIn writes the given files into dir, creating it.
func writeFilesIn(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func ml1mFiles() map[string]string {
	return map[string]string{
		"users.dat":   "2::M::56::16::70072\n1::F::1::10::48067\n",
		"movies.dat":  "3::Grumpier Old Men (1995)::Comedy|Romance\n1::Toy Story (1995)::Animation|Children's|Comedy\n73::Mis\xe9rables, Les (1995)::Drama|Musical\n",
		"ratings.dat": "1::1::5::978300760\n1::73::3::978302109\n2::3::4::978301968\n",
	}
}

func ml100kFiles() map[string]string {
	return map[string]string{
		"u.user":  "1|24|M|technician|85711\n2|53|F|other|94043\n",
		"u.genre": "unknown|0\nAction|1\nComedy|2\n\n",
		"u.item":  "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|1\n267|unknown||||1|0|0\n2|GoldenEye (1995)|01-Jan-1995||http://y|0|1|0\n",
		"u.data":  "1\t1\t5\t874965758\n2\t267\t3\t876893171\n1\t2\t4\t878542960\n",
	}
}

func TestLoadDirML1M(t *testing.T) {
	t.Parallel()
	ds, err := LoadDir(writeFiles(t, ml1mFiles()))
	if err != nil {
		t.Fatal(err)
	}
	if ds.Layout != LayoutML1M || len(ds.Users) != 2 || len(ds.Movies) != 3 || len(ds.Ratings) != 3 {
		t.Fatalf("got %+v", ds)
	}
	if ds.Users[0].ID != 1 || ds.Movies[0].ID != 1 || ds.Movies[2].ID != 73 {
		t.Errorf("not sorted by id: %+v %+v", ds.Users, ds.Movies)
	}
	if ds.Movies[2].Title != "Misérables, Les (1995)" {
		t.Errorf("title %q", ds.Movies[2].Title)
	}
	if ds.Ratings[1] != (Rating{User: 1, Movie: 73, Value: 3, Time: 978302109}) {
		t.Errorf("ratings not in file order: %+v", ds.Ratings)
	}
	if i, ok := ds.MovieIndex(73); !ok || i != 2 {
		t.Errorf("MovieIndex(73) = %d, %v", i, ok)
	}
	if _, ok := ds.UserIndex(3); ok {
		t.Error("UserIndex(3) found")
	}
}

// TestLoadDirGenreCase: a genre spelled in two cases across movies is one
// genre (filters and PUT match genres in any case), spelled as the first
// movie in the file has it.
func TestLoadDirGenreCase(t *testing.T) {
	t.Parallel()
	files := ml1mFiles()
	files["movies.dat"] = "3::Grumpier Old Men (1995)::COMEDY|romance\n1::Toy Story (1995)::Animation|Comedy\n73::Mis\xe9rables, Les (1995)::Drama|Romance\n"
	ds, err := LoadDir(writeFiles(t, files))
	if err != nil {
		t.Fatal(err)
	}
	want := map[MovieID][]string{1: {"Animation", "COMEDY"}, 3: {"COMEDY", "romance"}, 73: {"Drama", "romance"}}
	for _, m := range ds.Movies {
		if !slices.Equal(m.Genres, want[m.ID]) {
			t.Errorf("movie %d genres %q, want %q", m.ID, m.Genres, want[m.ID])
		}
	}
}

func TestLoadDirML100K(t *testing.T) {
	t.Parallel()
	files := ml100kFiles()
	ds, err := LoadDir(writeFiles(t, files))
	if err != nil {
		t.Fatal(err)
	}
	if ds.Layout != LayoutML100K || len(ds.Users) != 2 || len(ds.Movies) != 3 || len(ds.Ratings) != 3 {
		t.Fatalf("got %+v", ds)
	}
	want := []Movie{
		{ID: 1, Title: "Toy Story (1995)", Year: 1995, Genres: []string{"Comedy"}},
		{ID: 2, Title: "GoldenEye (1995)", Year: 1995, Genres: []string{"Action"}},
		{ID: 267, Title: "unknown"},
	}
	for i, m := range ds.Movies {
		if m.ID != want[i].ID || m.Title != want[i].Title || m.Year != want[i].Year || strings.Join(m.Genres, ",") != strings.Join(want[i].Genres, ",") {
			t.Errorf("movie %d = %+v, want %+v", i, m, want[i])
		}
	}
	if ds.Users[0].Occupation != "technician/engineer" {
		t.Errorf("occupation %q", ds.Users[0].Occupation)
	}

	// Without u.genre the standard 19-genre list applies, so the 3-flag
	// lines no longer parse.
	delete(files, "u.genre")
	_, err = LoadDir(writeFiles(t, files))
	if err == nil || !strings.Contains(err.Error(), "u.item:1: want 24 fields") {
		t.Fatalf("error = %v", err)
	}
}

func TestLoadDirErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change map[string]string
		err    string
	}{
		{name: "bad rating", change: map[string]string{"ratings.dat": "1::1::5::978300760\n1::3::7::1\n"}, err: "ratings.dat:2: rating 7 out of range 1–5"},
		{name: "unknown user", change: map[string]string{"ratings.dat": "1::1::5::1\n\n9::1::5::1\n"}, err: "ratings.dat:3: unknown user 9"},
		{name: "unknown movie", change: map[string]string{"ratings.dat": "1::2::5::1\n"}, err: "ratings.dat:1: unknown movie 2"},
		{name: "repeated rating", change: map[string]string{"ratings.dat": "1::1::5::978300760\n1::1::3::978300761\n"}, err: "ratings.dat:2: user 1 rates movie 1 again (first on line 1)"},
		{name: "duplicate user", change: map[string]string{"users.dat": "1::F::1::10::48067\n2::M::1::10::1\n1::M::1::10::1\n"}, err: "users.dat:3: duplicate user id 1 (first on line 1)"},
		{name: "movie with a fourth field", change: map[string]string{"movies.dat": "1::A (1990)::Drama\n3::B (1990)::Drama::1990\n73::C::\n"}, err: `movies.dat:2: want 3 fields separated by "::", got 4`},
		{name: "duplicate movie", change: map[string]string{"movies.dat": "1::A (1990)::Drama\n1::B (1990)::Drama\n"}, err: "movies.dat:2: duplicate movie id 1"},
		{name: "missing movies", change: map[string]string{"movies.dat": ""}, err: "movies.dat"},
		{name: "rating from the future", change: map[string]string{"ratings.dat": "1::1::5::978300760\n1::3::4::253402300799\n"}, err: "ratings.dat:2: timestamp 253402300799 (9999-12-31T23:59:59Z) is later than the time of reading"},
		{name: "no ratings", change: map[string]string{"ratings.dat": "\n"}, err: "ratings.dat: no ratings"},
		{name: "no users", change: map[string]string{"users.dat": ""}, err: "users.dat: no users"},
		{name: "no movies", change: map[string]string{"movies.dat": "\n"}, err: "movies.dat: no movies"},
		{name: "long line", change: map[string]string{"ratings.dat": "1::1::5::1\n" + strings.Repeat("x", MaxLineBytes+10) + "\n"}, err: "ratings.dat:2: line longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := ml1mFiles()
			for k, v := range tt.change {
				files[k] = v
			}
			dir := writeFiles(t, files)
			if tt.name == "missing movies" {
				os.Remove(filepath.Join(dir, "movies.dat"))
			}
			_, err := LoadDir(dir)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error = %v, want %q", err, tt.err)
			}
			var pe *ParseError
			if !strings.HasPrefix(tt.name, "missing") && !strings.HasPrefix(tt.name, "no ") && !errors.As(err, &pe) {
				t.Errorf("error %v is not a *ParseError", err)
			}
		})
	}
}

func TestLoadCatalogIgnoresRatings(t *testing.T) {
	t.Parallel()
	files := ml1mFiles()
	files["ratings.dat"] = "garbage\n"
	ds, err := LoadCatalog(writeFiles(t, files))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Users) != 2 || len(ds.Movies) != 3 || ds.Ratings != nil {
		t.Fatalf("got %+v", ds)
	}
}

func TestDetectLayoutEmpty(t *testing.T) {
	t.Parallel()
	_, err := LoadDir(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "want users.dat, movies.dat, ratings.dat (ml-1m) or u.user, u.item, u.data (ml-100k)") {
		t.Fatalf("error = %v", err)
	}
	if _, err := LoadDir(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("missing dir: no error")
	}
	file := filepath.Join(t.TempDir(), "train.dat")
	if err := os.WriteFile(file, []byte("1::1::5::1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDir(file); err == nil || !strings.Contains(err.Error(), "is a file, not a directory") {
		t.Fatalf("a file for the directory: %v", err)
	}
}

func TestDetectLayoutBoth(t *testing.T) {
	t.Parallel()
	files := ml1mFiles()
	maps.Copy(files, ml100kFiles())
	if _, err := LoadDir(writeFiles(t, files)); err == nil || !strings.Contains(err.Error(), "both an ml-1m") {
		t.Fatalf("error = %v", err)
	}
}

func TestReadRatings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, data string
		dataset    bool // read against ml1mFiles' dataset
		want       []Rating
		err        string
	}{
		{name: "ml-1m", data: "1::1::5::1\n2::3::4::2\n", want: []Rating{{1, 1, 5, 1}, {2, 3, 4, 2}}},
		{name: "ml-100k crlf", data: "\r\n1\t1\t5\t1\r\n2\t3\t4\t2\r\n", want: []Rating{{1, 1, 5, 1}, {2, 3, 4, 2}}},
		{name: "byte-order mark", data: "\ufeff1::1::5::1\n2::3::4::2\n", want: []Rating{{1, 1, 5, 1}, {2, 3, 4, 2}}},
		{name: "byte-order mark inside", data: "1::1::5::1\n\ufeff2::3::4::2\n", err: "split.dat:2: user id"},
		{name: "empty", data: ""},
		{name: "mixed", data: "1::1::5::1\n2\t3\t4\t2\n", err: "split.dat:2: want 4 fields"},
		{name: "no separator", data: "\n\n1,2,3,4\n", err: "split.dat:3: cannot detect the separator"},
		{name: "bad value", data: "1\t1\t5\t1\n1\t1\t6\t1\n", err: "split.dat:2: rating 6 out of range 1–5"},
		{name: "repeated pair", data: "1::1::5::1\n2::1::4::2\n\n1::1::5::1\n", err: "split.dat:4: user 1 rates movie 1 again (first on line 1)"},
		{name: "same movie, other users", data: "1::1::5::1\n2::1::4::2\n3::1::4::2\n", want: []Rating{{1, 1, 5, 1}, {2, 1, 4, 2}, {3, 1, 4, 2}}},
		{name: "from the future", data: "1::1::5::1\n2::1::4::253402300799\n", err: "split.dat:2: timestamp 253402300799 (9999-12-31T23:59:59Z) is later than the time of reading"},
		{name: "in the dataset", data: "1::1::5::1\n1::73::4::2\n2::3::4::2\n", dataset: true, want: []Rating{{1, 1, 5, 1}, {1, 73, 4, 2}, {2, 3, 4, 2}}},
		{name: "unknown user", data: "1::1::5::1\n\n\n9::1::5::1\n", dataset: true, err: "split.dat:4: unknown user 9 (not in the dataset's users.dat)"},
		{name: "unknown movie", data: "1::1::5::1\n2::2::5::1\n", dataset: true, err: "split.dat:2: unknown movie 2 (not in the dataset's movies.dat)"},
	}
	ds, err := LoadDir(writeFiles(t, ml1mFiles()))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var against *Dataset
			if tt.dataset {
				against = ds
			}
			rs, err := ReadRatings(strings.NewReader(tt.data), "split.dat", against)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(rs, tt.want) {
				t.Fatalf("got %v, %v; want %v", rs, err, tt.want)
			}
		})
	}
}

func TestReadRatingsFile(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"test.dat": "1::1::5::1\n1::x::5::1\n"})
	_, err := ReadRatingsFile(filepath.Join(dir, "test.dat"), nil)
	if err == nil || !strings.Contains(err.Error(), "test.dat:2: movie id") {
		t.Fatalf("error = %v", err)
	}
	if _, err := ReadRatingsFile(filepath.Join(dir, "missing.dat"), nil); err == nil {
		t.Fatal("missing file: no error")
	}
}

// dataDir returns $TOWERRECALL_DATA or skips the test.
func dataDir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("TOWERRECALL_DATA")
	if d == "" {
		t.Skip("TOWERRECALL_DATA not set")
	}
	return d
}

func TestRealData(t *testing.T) {
	t.Parallel()
	data := dataDir(t)
	tests := []struct {
		name                   string
		layout                 Layout
		users, movies, ratings int
	}{
		{name: "ml-1m", layout: LayoutML1M, users: 6040, movies: 3883, ratings: 487650},
		{name: "ml-100k", layout: LayoutML100K, users: 943, movies: 1682, ratings: 100000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ds, err := LoadDir(filepath.Join(data, tt.name))
			if err != nil {
				t.Fatal(err)
			}
			if ds.Layout != tt.layout || len(ds.Users) != tt.users || len(ds.Movies) != tt.movies || len(ds.Ratings) != tt.ratings {
				t.Fatalf("%s: %d users %d movies %d ratings", ds.Layout, len(ds.Users), len(ds.Movies), len(ds.Ratings))
			}
			noYear := 0
			for _, m := range ds.Movies {
				if m.Year == 0 {
					noYear++
				}
			}
			if noYear > 2 {
				t.Errorf("%d movies without a year", noYear)
			}
			cat, err := LoadCatalog(filepath.Join(data, tt.name))
			if err != nil || len(cat.Movies) != tt.movies || len(cat.Ratings) != 0 {
				t.Fatalf("catalog: %v", err)
			}
		})
	}
}

func TestRealSplits(t *testing.T) {
	t.Parallel()
	data := dataDir(t)
	tests := []struct {
		dataset, split string
		files          []string
		counts         []int
	}{
		{"ml-100k", "user-temporal", []string{"train.dat", "test.dat"}, []int{79619, 20381}},
		{"ml-1m", "user-temporal", []string{"train.dat", "test.dat"}, []int{388909, 98741}},
		{"ml-1m", "recbole", []string{"train.dat", "valid.dat", "test.dat"}, []int{325321, 38953, 38953}},
		{"ml-1m", "timeline", []string{"train.dat", "valid.dat", "test.dat"}, []int{341355, 48765, 48765}},
		{"ml-100k", "timeline", []string{"train.dat", "valid.dat", "test.dat"}, []int{70000, 10000, 10000}},
	}
	for _, tt := range tests {
		t.Run(tt.dataset+"/"+tt.split, func(t *testing.T) {
			t.Parallel()
			ds, err := LoadCatalog(filepath.Join(data, tt.dataset))
			if err != nil {
				t.Fatal(err)
			}
			for i, f := range tt.files {
				rs, err := ReadRatingsFile(filepath.Join(data, "splits", tt.dataset, tt.split, f), ds)
				if err != nil {
					t.Fatal(err)
				}
				if len(rs) != tt.counts[i] {
					t.Errorf("%s: %d ratings, want %d", f, len(rs), tt.counts[i])
				}
			}
		})
	}
}

// A bad u.genre is reported at its own line, not at the first u.item line
// that uses the genre list.
func TestLoadDirGenreErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, genre, err string }{
		{"repeated name", "unknown|0\nAction|1\naction|2\n", "u.genre:3: genre \"action\" repeats index 1's"},
		{"byte order mark inside", "unknown|0\n\ufeffAction|1\nComedy|2\n", "u.genre:2: genre name"}, // at the file's start it is skipped
		{"control character", "unknown|0\nAct\x01ion|1\nComedy|2\n", "u.genre:2: genre name"},
		{"name too long", "unknown|0\n" + strings.Repeat("A", MaxGenreLen+1) + "|1\nComedy|2\n", "u.genre:2: genre name"},
	} {
		files := ml100kFiles()
		files["u.genre"] = tt.genre
		_, err := LoadDir(writeFiles(t, files))
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: error = %v, want %q", tt.name, err, tt.err)
		}
	}
}
