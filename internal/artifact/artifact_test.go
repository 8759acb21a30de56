package artifact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/tower"
)

// testBundle builds a small, complete bundle from made-up data.
func testBundle(t testing.TB) *Bundle { return newTestBundle(t, false) }

// newTestBundle is testBundle, with a history feature in the user tower
// when history is set.
func newTestBundle(t testing.TB, history bool) *Bundle {
	t.Helper()
	users := []movielens.User{{ID: 1, Gender: "F", Age: 25, Occupation: "programmer", Zip: "94043"}, {ID: 2, Gender: "M", Age: 50, Occupation: "writer", Zip: "10001"}}
	movies := []movielens.Movie{{ID: 10, Title: "Alpha (1990)", Year: 1990, Genres: []string{"Comedy"}}, {ID: 11, Title: "Beta (1995)", Year: 1995, Genres: []string{"Drama", "War"}}, {ID: 12, Title: "Gamma", Genres: nil}}
	train := []movielens.Rating{{User: 1, Movie: 10, Value: 4}, {User: 2, Movie: 11, Value: 5}, {User: 1, Movie: 11, Value: 2}}
	uf, mf := feature.UserFields(), feature.MovieFields()
	userEmbed := []int{3, 2, 2, 2, 2}
	if history {
		uf, userEmbed = feature.AllUserFields(), append(userEmbed, 3)
	}
	enc, err := feature.Fit(uf, mf, users, movies, train)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tower.Config{Dim: 4, Hidden: []int{8}, Normalize: true, UserEmbed: userEmbed, MovieEmbed: []int{3, 2, 2}}
	m, err := tower.New(cfg, enc.VocabSizes(uf), enc.VocabSizes(mf), rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	b := &Bundle{Model: m, Encoder: enc, Users: []movielens.UserID{1, 2}, Seen: [][]int32{{0, 1}, {1}}}
	b.Vectors = make([]float32, len(movies)*4)
	for i, mv := range movies {
		b.Movies = append(b.Movies, Movie{ID: mv.ID, Title: mv.Title, Genres: mv.Genres, Year: mv.Year})
		m.MovieVector(b.Vectors[i*4:(i+1)*4], enc.EncodeMovie(feature.FromMovie(mv)))
	}
	b.Graph = []byte("graph bytes are opaque here")
	b.Manifest = Manifest{Version: "v1", CreatedAt: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), Objective: "softmax", Dim: 4,
		Fields: Fields{User: uf, Movie: mf}, Metrics: map[string]float64{"recall@10": 0.5}}
	return b
}

func TestSaveLoadRoundTrip(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "model")
	b := testBundle(t)
	if err := Save(dir, b); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Movies, b.Movies) || !reflect.DeepEqual(got.Vectors, b.Vectors) ||
		!reflect.DeepEqual(got.Users, b.Users) || !reflect.DeepEqual(got.Seen, b.Seen) || !bytes.Equal(got.Graph, b.Graph) {
		t.Error("bundle changed in the round trip")
	}
	if got.Manifest.Version != "v1" || got.Manifest.Metrics["recall@10"] != 0.5 || len(got.Manifest.Files) != 6 {
		t.Errorf("manifest = %+v", got.Manifest)
	}
	u := feature.UserInput{UserID: 1, Gender: "F", Age: 25, Occupation: "programmer"}
	a, c := make([]float32, 4), make([]float32, 4)
	b.Model.UserVector(a, b.Encoder.EncodeUser(u))
	got.Model.UserVector(c, got.Encoder.EncodeUser(u))
	if !reflect.DeepEqual(a, c) {
		t.Errorf("user vector %v after load, %v before", c, a)
	}
	// Readable by other users, as its files are (MkdirTemp's 0700 was not).
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("artifact directory mode %v (%v), want 0755", fi.Mode().Perm(), err)
	}
	// No temporary directories are left behind.
	if names := beside(t, filepath.Dir(dir)); len(names) != 1 {
		t.Errorf("parent holds %v, want only the artifact", names)
	}
}

func TestLoadRefusesCorruption(t *testing.T) {
	t.Parallel()
	base := filepath.Join(t.TempDir(), "model")
	if err := Save(base, testBundle(t)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(dir string) error
		want   string
	}{
		{"flipped byte in vectors", flip(VectorsFile, 5), "movie_vectors.bin: checksum mismatch"},
		{"flipped byte in model", flip(ModelFile, 40), "model.bin: checksum mismatch"},
		{"truncated users", func(d string) error { return os.Truncate(filepath.Join(d, UsersFile), 3) }, "users.bin: checksum mismatch"},
		{"missing graph", func(d string) error { return os.Remove(filepath.Join(d, GraphFile)) }, "hnsw.bin"},
		{"missing manifest", func(d string) error { return os.Remove(filepath.Join(d, ManifestFile)) }, "manifest.json"},
		{"manifest not JSON", func(d string) error { return os.WriteFile(filepath.Join(d, ManifestFile), []byte("{"), 0o644) }, "manifest.json"},
		{"future format", editManifest(`"format_version": 1`, `"format_version": 99`), fmt.Sprintf("format version 99, this build reads 1 to %d: a newer towerrecall wrote it", FormatVersion)}, // what to do, for a binary rolled back
		{"format 0", editManifest(`"format_version": 1`, `"format_version": 0`), fmt.Sprintf("format version 0, this build reads 1 to %d", FormatVersion)},
		{"no version", editManifest(`"version": "v1"`, `"version": " "`), "manifest.json: no version"}, // every answer names its model
		{"path in file list", editManifest(`"hnsw.bin"`, `"../hnsw.bin"`), "bad file name"},
		{"file left out of the list", func(d string) error {
			p := filepath.Join(d, ManifestFile)
			var m map[string]any
			raw, err := os.ReadFile(p)
			if err == nil {
				err = json.Unmarshal(raw, &m)
			}
			if err != nil {
				return err
			}
			delete(m["files"].(map[string]any), GraphFile)
			raw, err = json.Marshal(m)
			if err != nil {
				return err
			}
			return os.WriteFile(p, raw, 0o644)
		}, "hnsw.bin is in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "model")
			if err := os.CopyFS(dir, os.DirFS(base)); err != nil {
				t.Fatal(err)
			}
			if err := tt.mutate(dir); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load error = %v, want mention of %q", err, tt.want)
			}
		})
	}
}

func flip(name string, at int) func(string) error {
	return func(dir string) error {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b[at%len(b)] ^= 0x40
		return os.WriteFile(p, b, 0o644)
	}
}

func editManifest(old, new string) func(string) error {
	return func(dir string) error {
		p := filepath.Join(dir, ManifestFile)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644)
	}
}

// A failed save never replaces or damages the artifact already in place.
func TestFailedSaveKeepsOldArtifact(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "model")
	good := testBundle(t)
	if err := Save(dir, good); err != nil {
		t.Fatal(err)
	}
	broken := testBundle(t)
	broken.Manifest.Version = "v2"
	broken.Vectors = broken.Vectors[:5] // does not match the catalogue
	if err := Save(dir, broken); err == nil {
		t.Fatal("Save accepted an inconsistent bundle")
	}
	// Nor does a diverged training's (a vector Load would refuse).
	diverged := testBundle(t)
	diverged.Manifest.Version = "v3"
	diverged.Vectors[3] = float32(math.NaN())
	if err := Save(dir, diverged); err == nil || !strings.Contains(err.Error(), "value 3 is not finite") {
		t.Fatalf("Save of a NaN vector: %v", err)
	}
	got, err := Load(dir)
	if err != nil || got.Manifest.Version != "v1" {
		t.Fatalf("after a failed save: version %q, err %v", got.Manifest.Version, err)
	}
	// A directory that is not an artifact is never replaced.
	other := filepath.Join(t.TempDir(), "precious")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Save(other, testBundle(t)); err == nil || !strings.Contains(err.Error(), "not an artifact") {
		t.Fatalf("Save over a non-artifact directory: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(other, "notes.txt")); err != nil || string(b) != "keep me" {
		t.Fatal("non-artifact directory was touched")
	}
	// Nor is one that merely has a manifest.json (a web app's), or an
	// artifact with a file of someone else's beside it.
	for name, files := range map[string]map[string]string{
		"web app":                  {ManifestFile: `{"name":"app"}`, "index.js": "keep me"},
		"artifact with a stranger": {ManifestFile: `{"format_version":1,"files":{"model.bin":"00"}}`, "model.bin": "x", "notes.txt": "keep me"},
	} {
		d := filepath.Join(t.TempDir(), "model")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for f, body := range files {
			if err := os.WriteFile(filepath.Join(d, f), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := Save(d, testBundle(t)); err == nil || !strings.Contains(err.Error(), "not an artifact") {
			t.Errorf("Save over a %s: %v", name, err)
		}
		for f, body := range files {
			if b, err := os.ReadFile(filepath.Join(d, f)); err != nil || string(b) != body {
				t.Errorf("%s: %s was touched", name, f)
			}
		}
	}
	// A damaged artifact (its manifest empty) holding only artifact files
	// is replaced: that is how an operator repairs one.
	damaged := filepath.Join(t.TempDir(), "model")
	if err := os.MkdirAll(damaged, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ManifestFile, ModelFile} {
		if err := os.WriteFile(filepath.Join(damaged, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := Save(damaged, testBundle(t)); err != nil {
		t.Errorf("Save over a damaged artifact: %v", err)
	}
	if _, err := Load(damaged); err != nil {
		t.Error(err)
	}
	// A regular file in the artifact's place is never replaced.
	plain := filepath.Join(t.TempDir(), "model")
	if err := os.WriteFile(plain, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Save(plain, testBundle(t)); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Save over a regular file: %v", err)
	}
	if b, err := os.ReadFile(plain); err != nil || string(b) != "not a model" {
		t.Fatal("regular file was replaced")
	}
	// An unwritable destination (its parent is a file) fails cleanly.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Save(filepath.Join(file, "model"), testBundle(t)); err == nil {
		t.Fatal("Save under a file succeeded")
	}
}

// FuzzDecode feeds corrupted files past the checksum check (as if the
// manifest had been rewritten to match): decoding must fail cleanly, never
// panic or allocate without bound.
// TestDecodeRefusesBadMovieIDs: a movies.json with a duplicate or
// non-positive id (a hand-edited file whose checksum was fixed up) is
// refused; it used to load and serve one movie twice and lose another.
func TestDecodeRefusesBadMovieIDs(t *testing.T) {
	t.Parallel()
	b := testBundle(t)
	m, files := savedFiles(t, b)
	if _, err := decode(m, files); err != nil {
		t.Fatalf("the unchanged files: %v", err)
	}
	for name, id := range map[string]movielens.MovieID{"duplicate": b.Movies[0].ID, "zero": 0, "negative": -4} {
		movies := slices.Clone(b.Movies)
		movies[1].ID = id
		raw, err := json.Marshal(movies)
		if err != nil {
			t.Fatal(err)
		}
		bad := maps.Clone(files)
		bad[MoviesFile] = raw
		if _, err := decode(m, bad); err == nil || !strings.Contains(err.Error(), "movie 1 has id") {
			t.Errorf("%s id: decode = %v, want an error naming movie 1", name, err)
		}
	}
}

// TestDecodeRefusesBadTables: what the dataset readers, the trainer and
// PUT /movies never produce, in files whose checksums match (an edited or
// foreign artifact), is refused with the file named, and Save refuses to
// write it: each once served wrongly or crashed the server.
func TestDecodeRefusesBadTables(t *testing.T) {
	t.Parallel()
	b := testBundle(t)
	b.Profiles = []Profile{{ID: 1, Gender: "F", Age: 25, Occupation: "programmer", Zip: "94043"}, {ID: 2}}
	m, files := savedFiles(t, b)
	if _, err := decode(m, files); err != nil {
		t.Fatalf("the unchanged files: %v", err)
	}
	withJSON := func(name string, v any) map[string][]byte {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		f := maps.Clone(files)
		f[name] = raw
		return f
	}
	movie := func(edit func(*Movie)) map[string][]byte {
		movies := slices.Clone(b.Movies)
		edit(&movies[0])
		return withJSON(MoviesFile, movies)
	}
	profile := func(p Profile) map[string][]byte {
		return withJSON(ProfilesFile, []Profile{b.Profiles[0], p})
	}
	zeroUser := maps.Clone(files)
	zeroUser[UsersFile] = encodeUsers([]movielens.UserID{0, 2}, b.Seen)
	for _, tt := range []struct {
		name  string
		files map[string][]byte
		want  string
	}{
		{"user id 0 (made every anonymous request known)", zeroUser, "users.bin: user 0: id 0 is not positive"},
		{"bidi override in a title", movie(func(m *Movie) { m.Title = "a\u202eb" }), "movies.json: movie 10: title must not contain"},
		{"empty genre", movie(func(m *Movie) { m.Genres = []string{""} }), "movies.json: movie 10: genres[0]"},
		{"year 3000", movie(func(m *Movie) { m.Year = 3000 }), "movies.json: movie 10: year 3000"},
		{"age 10^9", profile(Profile{ID: 2, Age: 1e9}), "profiles.json: profile 1 (user 2): age"},
		{"unknown occupation", profile(Profile{ID: 2, Occupation: "astronaut"}), "occupation"},
		{"profile listed twice", profile(Profile{ID: 1}), "listed twice"},
	} {
		if _, err := decode(m, tt.files); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: decode = %v, want %q", tt.name, err, tt.want)
		}
	}
	// A diverged weight in the user tower: Load refuses it (tower.ReadModel),
	// so Save must not write it over a good artifact.
	dir := filepath.Join(t.TempDir(), "model")
	if err := Save(dir, testBundle(t)); err != nil {
		t.Fatal(err)
	}
	before, err := ManifestSum(dir)
	if err != nil {
		t.Fatal(err)
	}
	bad := testBundle(t)
	bad.Model.User().Layers[0].W[0] = float32(math.NaN())
	if err := Save(dir, bad); err == nil || !strings.Contains(err.Error(), "Load would refuse it") {
		t.Errorf("Save of a NaN weight = %v", err)
	}
	if after, _ := ManifestSum(dir); !bytes.Equal(before, after) {
		t.Error("the good artifact was replaced")
	}
}

// TestPriorBounds: a prior weight or bias that is not a finite number
// within ±1e3 is refused (1e30 made every known user's /recall a 500).
func TestPriorBounds(t *testing.T) {
	t.Parallel()
	for name, edit := range map[string]func(*Prior){
		"weight 1e30":        func(p *Prior) { p.Weight = 1e30 },
		"NaN cold weight":    func(p *Prior) { p.ColdWeight = float32(math.NaN()) },
		"infinite bias":      func(p *Prior) { p.Bias[1] = float32(math.Inf(-1)) },
		"negative half-life": func(p *Prior) { p.HalfLifeDays = -1 },
		"feature share 1":    func(p *Prior) { p.FeatureShare = 1 },
		"NaN feature share":  func(p *Prior) { p.FeatureShare = float32(math.NaN()) },
	} {
		p := &Prior{Weight: 0.3, ColdWeight: 1, IDFields: []int{0}, DefaultBias: -9, Bias: []float32{-1, -2, -9}}
		if err := p.check(5); err != nil {
			t.Fatalf("a good prior: %v", err)
		}
		edit(p)
		if err := p.check(5); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestLoadRefusesSpecialFiles: a device (or a FIFO) in an artifact file's
// place is refused before it is read (a link to /dev/zero read a gigabyte;
// a FIFO blocked the reload for good).
func TestLoadRefusesSpecialFiles(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero here")
	}
	dir := filepath.Join(t.TempDir(), "model")
	if err := Save(dir, testBundle(t)); err != nil {
		t.Fatal(err)
	}
	graph := filepath.Join(dir, GraphFile)
	if err := os.Remove(graph); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", graph); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "hnsw.bin: not a regular file") {
		t.Errorf("Load with a link to /dev/zero = %v", err)
	}
}

// savedFiles saves b and returns its manifest and required files, as
// decode takes them.
func savedFiles(tb testing.TB, b *Bundle) (Manifest, map[string][]byte) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "model")
	if err := Save(dir, b); err != nil {
		tb.Fatal(err)
	}
	m, _, err := ReadManifest(dir)
	if err != nil {
		tb.Fatal(err)
	}
	files := map[string][]byte{}
	for n := range m.Files {
		if files[n], err = os.ReadFile(filepath.Join(dir, n)); err != nil {
			tb.Fatal(err)
		}
	}
	return m, files
}

// fuzzBundle is a bundle with every optional file: a history feature
// with stored recent movies, profiles, and a prior with a feature share
// and a recent weight (a format version 2 artifact).
func fuzzBundle(tb testing.TB) *Bundle {
	b := newTestBundle(tb, true)
	b.Recent = &Recent{Length: 2, Decay: 0.5, Movies: [][]int32{{1, 0}, {1}}}
	b.Profiles = []Profile{{ID: 1, Gender: "F", Age: 25, Occupation: "programmer", Zip: "94043"}, {ID: 2}}
	hist := b.Encoder.HistoryPosition()
	p := &Prior{Weight: 0.3, ColdWeight: 1, RecentWeight: 0.5, FeatureShare: 0.25, IDFields: []int{0, hist}, RecentFields: []int{hist},
		DefaultBias: -9, HalfLifeDays: 7, Now: time.Unix(1e9, 0).UTC(), Ratings: 3, Bias: []float32{-1, -2, -9}}
	withPrior(b, p)
	return b
}

// recentRows is b's stored recent movies, nil without them.
func recentRows(b *Bundle) [][]int32 {
	if b.Recent == nil {
		return nil
	}
	return b.Recent.Movies
}

// withPrior gives b (a testBundle: 3 movies, dim 4) the prior p: the
// model's extra dimension, the table, and each movie's bias as the last
// value of its vector.
func withPrior(b *Bundle, p *Prior) {
	b.Model.SetPrior(p.Tower())
	b.Prior = p
	vecs := make([]float32, 0, 3*5)
	for i := range 3 {
		vecs = append(append(vecs, b.Vectors[i*4:(i+1)*4]...), p.Bias[i])
	}
	b.Vectors, b.Manifest.Dim = vecs, 5
}

// FuzzDecode replaces one file of a saved artifact (the manifest
// included) with the fuzzer's bytes, seeded with the valid ones, and
// decodes it: Load checks the files' checksums first, but an artifact
// written by another tool (or by hand) passes them. decode must refuse
// what it cannot serve, never panic, and what it accepts must be
// servable: the towers run for known, cold and history-only users, and the
// tables fit the catalogue.
func FuzzDecode(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "model")
	if err := Save(dir, fuzzBundle(f)); err != nil {
		f.Fatal(err)
	}
	m, raw, err := ReadManifest(dir)
	if err != nil {
		f.Fatal(err)
	}
	names := []string{ManifestFile, ModelFile, VocabFile, MoviesFile, VectorsFile, UsersFile, PriorFile, ProfilesFile, RecentFile}
	files := map[string][]byte{ManifestFile: raw}
	for _, n := range names[1:] {
		if files[n], err = os.ReadFile(filepath.Join(dir, n)); err != nil {
			f.Fatal(err)
		}
	}
	for i, n := range names {
		f.Add(uint8(i), files[n])
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		name := names[int(which)%len(names)]
		mutated := maps.Clone(files)
		mutated[name] = data
		delete(mutated, ManifestFile)
		mm := m
		if name == ManifestFile {
			mm = Manifest{}
			if unmarshal(data, &mm) != nil || mm.FormatVersion < 1 || mm.FormatVersion > FormatVersion {
				return // ReadManifest refuses it
			}
		}
		b, err := decode(mm, mutated)
		if err != nil {
			return
		}
		dim := b.Model.Dim()
		if dim != mm.Dim || len(b.Vectors) != len(b.Movies)*dim || len(b.Seen) != len(b.Users) {
			t.Fatalf("accepted: model dim %d, manifest %d, %d values for %d movies, %d histories for %d users", dim, mm.Dim, len(b.Vectors), len(b.Movies), len(b.Seen), len(b.Users))
		}
		if b.Prior != nil && len(b.Prior.Bias) != len(b.Movies) {
			t.Fatalf("accepted: %d biases for %d movies", len(b.Prior.Bias), len(b.Movies))
		}
		if b.Recent != nil && len(b.Recent.Movies) != len(b.Users) {
			t.Fatalf("accepted: %d recent histories for %d users", len(b.Recent.Movies), len(b.Users))
		}
		for _, rows := range [][][]int32{b.Seen, recentRows(b)} {
			for u, ms := range rows {
				if i := slices.IndexFunc(ms, func(m int32) bool { return m < 0 || int(m) >= len(b.Movies) }); i >= 0 {
					t.Fatalf("accepted: user %d's movie index %d of %d movies", u, ms[i], len(b.Movies))
				}
			}
		}
		q := make([]float32, dim)
		for _, in := range []feature.UserInput{{UserID: 1}, {UserID: 999, Gender: "M", Age: 30}, {}} {
			b.Model.UserVector(q, b.Encoder.EncodeUser(in))
		}
		if h := b.Encoder.HistoryPosition(); h >= 0 {
			enc := b.Encoder.EncodeUser(feature.UserInput{})
			enc[h] = []int32{0}
			b.Model.UserVector(q, enc)
		}
	})
}

// A bundle with a popularity prior keeps it through a round trip: the
// table, and the model's extra dimension.
func TestSaveLoadPrior(t *testing.T) {
	t.Parallel()
	b := testBundle(t)
	withPrior(b, &Prior{Weight: 0.3, ColdWeight: 1, IDFields: []int{0}, DefaultBias: -9, HalfLifeDays: 7, Now: time.Unix(1e9, 0).UTC(), Ratings: 3, Bias: []float32{-1, -2, -9}})
	dir := filepath.Join(t.TempDir(), "model")
	if err := Save(dir, b); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Prior, b.Prior) || got.Model.Dim() != 5 || got.Model.Prior().DefaultBias != -9 {
		t.Errorf("prior %+v, model dim %d", got.Prior, got.Model.Dim())
	}
	q := make([]float32, 5)
	got.Model.UserVector(q, got.Encoder.EncodeUser(feature.UserInput{UserID: 1}))
	if q[4] != 0.3 {
		t.Errorf("user vector %v: last value want the weight 0.3", q)
	}
	got.Model.UserVector(q, got.Encoder.EncodeUser(feature.UserInput{UserID: 999}))
	if q[4] != 1 {
		t.Errorf("unknown user's vector %v: last value want the cold weight 1", q)
	}
	// A recent field that is not an id field is refused.
	b.Prior.RecentFields = []int{1}
	if err := Save(filepath.Join(t.TempDir(), "bad"), b); err == nil {
		t.Error("a prior with recent field 1 outside its id fields [0] was saved")
	}
	b.Prior.RecentFields = nil
	// A table that does not fit the catalogue is refused.
	b.Prior.Bias = b.Prior.Bias[:2]
	if err := Save(filepath.Join(t.TempDir(), "bad"), b); err == nil {
		t.Error("a prior with 2 biases for 3 movies was saved")
	}
}

// TestSaveLoadFeatureShare: known users' feature share survives the round
// trip into the served model, in a format version 2 artifact (1 without a
// share), and a version 1 manifest that claims one is refused: a build
// that reads only version 1 must refuse such an artifact rather than serve
// it without the share.
func TestSaveLoadFeatureShare(t *testing.T) {
	t.Parallel()
	save := func(share float32) (string, *Bundle) {
		b := testBundle(t)
		withPrior(b, &Prior{Weight: 0.3, ColdWeight: 1, IDFields: []int{0}, DefaultBias: -9, FeatureShare: share, Now: time.Unix(1e9, 0).UTC(), Bias: []float32{-1, -2, -9}})
		dir := filepath.Join(t.TempDir(), "model")
		if err := Save(dir, b); err != nil {
			t.Fatal(err)
		}
		return dir, b
	}
	for _, tt := range []struct {
		share   float32
		version int
	}{{0, 1}, {0.5, 2}} {
		dir, b := save(tt.share)
		got, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got.Manifest.FormatVersion != tt.version || got.Prior.FeatureShare != tt.share || got.Model.Prior().FeatureShare != tt.share {
			t.Errorf("share %g: format version %d (want %d), prior.json share %g, model share %g", tt.share, got.Manifest.FormatVersion, tt.version, got.Prior.FeatureShare, got.Model.Prior().FeatureShare)
		}
		want, q := make([]float32, 5), make([]float32, 5)
		in := got.Encoder.EncodeUser(feature.UserInput{UserID: 1, Gender: "F"})
		b.Model.UserVector(want, in)
		if got.Model.UserVector(q, in); !slices.Equal(q, want) {
			t.Errorf("share %g: known user's query %v after the round trip, %v before", tt.share, q, want)
		}
	}
	dir, _ := save(0.5)
	if err := editManifest(`"format_version": 2`, `"format_version": 1`)(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "feature share") {
		t.Errorf("a version 1 artifact with a feature share: %v", err)
	}
}

// TestSaveLoadRecent: the stored recent history survives the round trip,
// and one that does not fit the users, the catalogue or its own length is
// refused.
func TestSaveLoadRecent(t *testing.T) {
	t.Parallel()
	b := newTestBundle(t, true)
	b.Recent = &Recent{Length: 2, Decay: 0.5, Movies: [][]int32{{1, 0}, {1}}}
	dir := filepath.Join(t.TempDir(), "model")
	if err := Save(dir, b); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Recent, b.Recent) {
		t.Errorf("recent %+v after load, %+v before", got.Recent, b.Recent)
	}
	// Recent histories need a history feature (serving one without it
	// indexed a table the model does not have: a panic at load); Save
	// refuses to write them and Load to read them.
	plain := testBundle(t)
	plain.Recent = &Recent{Length: 2, Movies: [][]int32{{1, 0}, {1}}}
	if err := Save(filepath.Join(t.TempDir(), "bad"), plain); err == nil || !strings.Contains(err.Error(), "without a history feature") {
		t.Errorf("recent histories without a history feature saved: %v", err)
	}
	m, files := savedFiles(t, testBundle(t))
	if files[RecentFile], err = json.Marshal(plain.Recent); err != nil {
		t.Fatal(err)
	}
	if _, err := decode(m, files); err == nil || !strings.Contains(err.Error(), "without a history feature") {
		t.Errorf("recent histories without a history feature decoded: %v", err)
	}
	for name, r := range map[string]*Recent{
		"decay 1":                {Length: 2, Decay: 1, Movies: [][]int32{{1}, {1}}},
		"one list for two users": {Length: 2, Movies: [][]int32{{1}}},
		"movie out of range":     {Length: 2, Movies: [][]int32{{3}, {1}}},
		"longer than its length": {Length: 1, Movies: [][]int32{{1, 0}, {1}}},
		"length 0":               {Length: 0, Movies: [][]int32{{}, {}}},
	} {
		b.Recent = r
		if err := Save(filepath.Join(t.TempDir(), "bad"), b); err == nil {
			t.Errorf("%s: saved", name)
		}
	}
}

// Saving into "." (an empty working directory) works: the temporary
// sibling is made next to it, not inside it.
func TestSaveIntoCurrentDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	if err := CheckWritable("."); err != nil {
		t.Fatal(err)
	}
	if err := Save(".", testBundle(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err != nil {
		t.Fatal(err)
	}
}

// exchange swaps two directories in one step where the file system can
// (Save's crash-safe replacement); elsewhere Save renames in two steps.
func TestExchange(t *testing.T) {
	t.Parallel()
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "name"), []byte(filepath.Base(d)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := exchange(a, b); errors.Is(err, errors.ErrUnsupported) {
		t.Skip("this file system cannot exchange directories")
	} else if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]string{a: "b", b: "a"} {
		if got, err := os.ReadFile(filepath.Join(d, "name")); err != nil || string(got) != want {
			t.Errorf("%s holds %q (%v), want %q", d, got, err, want)
		}
	}
}

// TestSaveRemovesStaleTemporaries: a Save killed half way leaves its
// temporary directory; the next Save of that artifact removes those
// untouched for an hour, and leaves a recent one (a Save in progress).
func TestSaveRemovesStaleTemporaries(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "model")
	stale, fresh := filepath.Join(parent, ".model.tmp-111"), filepath.Join(parent, ".model.tmp-222")
	other := filepath.Join(parent, ".other.tmp-333")
	for _, d := range []string{stale, fresh, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, d := range []string{stale, other} {
		if err := os.Chtimes(d, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := Save(dir, testBundle(t)); err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{stale: false, fresh: true, other: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", filepath.Base(d), err == nil, want)
		}
	}
	if err := CheckWritable(""); err == nil {
		t.Error("CheckWritable accepted an empty path")
	}
	// Missing parents are checked at the nearest one that exists, and not
	// created: Save makes them.
	deep := filepath.Join(t.TempDir(), "a", "b", "model")
	if err := CheckWritable(deep); err != nil {
		t.Errorf("CheckWritable(%s): %v", deep, err)
	}
	if _, err := os.Stat(filepath.Dir(filepath.Dir(deep))); !os.IsNotExist(err) {
		t.Errorf("CheckWritable created %s (%v)", filepath.Dir(filepath.Dir(deep)), err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckWritable(filepath.Join(file, "sub", "model")); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("CheckWritable under a file: %v", err)
	}
	if err := Save(deep, testBundle(t)); err != nil {
		t.Errorf("Save(%s) after the check: %v", deep, err)
	}
	// A previous that is not an artifact: Save would drop the artifact it
	// replaces rather than keep it there, so the check refuses at once.
	prev := deep + PreviousSuffix
	if err := os.MkdirAll(prev, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckWritable(deep); err != nil {
		t.Errorf("CheckWritable with an empty previous: %v", err)
	}
	if err := os.WriteFile(filepath.Join(prev, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckWritable(deep); err == nil || !strings.Contains(err.Error(), "not an artifact") || !strings.Contains(err.Error(), "rollback") {
		t.Errorf("CheckWritable with a foreign previous: %v", err)
	}
	// The rollback copy of an artifact is not an output (prior --out
	// var/model.previous), whether it holds one yet or not; a directory
	// merely named so, with no artifact beside it, is.
	if err := os.Remove(filepath.Join(prev, "notes.txt")); err != nil {
		t.Fatal(err)
	}
	if err := CheckWritable(prev); err == nil || !strings.Contains(err.Error(), "towerrecall rollback") {
		t.Errorf("CheckWritable(%s): %v", prev, err)
	}
	if err := CheckWritable(filepath.Join(t.TempDir(), "model"+PreviousSuffix)); err != nil {
		t.Errorf("CheckWritable of a lone .previous: %v", err)
	}
}

// TestSaveRemovesStaleTemporariesOnFullVolume: the temporaries of killed
// Saves (an OOM-killed train) are removed before a Save writes. They were
// removed only after it had written everything, so once they filled the
// volume every Save failed for want of space and none ever removed them.
func TestSaveRemovesStaleTemporariesOnFullVolume(t *testing.T) {
	t.Parallel()
	vol := filepath.Join(t.TempDir(), "volume")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mountTmpfs(vol); err != nil {
		if os.Getenv("TOWERRECALL_REQUIRE_SYSTEM") != "" {
			t.Fatalf("cannot mount a tmpfs, and TOWERRECALL_REQUIRE_SYSTEM is set (.ci/run sets it where root can): %v", err)
		}
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { unmount(vol) })
	dir := filepath.Join(vol, "model")
	if err := Save(dir, testBundle(t)); err != nil {
		t.Fatal(err)
	}
	// What a killed Save left, grown until the volume is full.
	stale := filepath.Join(vol, ".model.tmp-111")
	if err := os.Mkdir(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(stale, ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for err == nil {
		_, err = f.Write(chunk)
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the volume: %v", err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	b := testBundle(t)
	b.Manifest.Version = "v2"
	if err := Save(dir, b); err != nil {
		t.Fatalf("Save on a volume filled by a stale temporary: %v", err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale temporary is still there (%v)", err)
	}
	if got, err := Load(dir); err != nil || got.Manifest.Version != "v2" {
		t.Errorf("after the Save: %v", err)
	}
}

// TestSaveThroughSymlink: an artifact saved to a symbolic link (a
// deployment's "current" link) replaces the link's target and keeps the
// link; a link to nothing is refused.
func TestSaveThroughSymlink(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	real, link := filepath.Join(parent, "v1"), filepath.Join(parent, "current")
	if err := Save(real, testBundle(t)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("v1", link); err != nil {
		t.Fatal(err)
	}
	b := testBundle(t)
	b.Manifest.Version = "v2"
	if err := Save(link, b); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi, err)
	}
	for _, dir := range []string{real, link} {
		if got, err := Load(dir); err != nil || got.Manifest.Version != "v2" {
			t.Errorf("%s: version %v, %v; want v2", dir, got, err)
		}
	}
	dangling := filepath.Join(parent, "dangling")
	if err := os.Symlink("nowhere", dangling); err != nil {
		t.Fatal(err)
	}
	if err := Save(dangling, testBundle(t)); err == nil || !strings.Contains(err.Error(), "target is missing") {
		t.Errorf("Save to a dangling link: %v", err)
	}
	if err := CheckWritable(dangling); err == nil {
		t.Error("CheckWritable accepted a dangling link")
	}
	if err := CheckWritable(filepath.Join(dangling, "model")); err == nil || !strings.Contains(err.Error(), "target is missing") {
		t.Errorf("CheckWritable under a dangling link: %v", err)
	}
}

// TestMountPointRefused: a mount point (a Kubernetes volume's root, say)
// cannot be replaced by renaming a directory into its place, so
// CheckWritable refuses it at once, naming what to do, and Save refuses
// it before writing anything; a directory inside the mount, or a link
// to one, is an ordinary artifact directory. It mounts a tmpfs, so it
// runs where that is allowed (as root) and is skipped elsewhere; the
// detection itself is checked on "/" everywhere.
func TestMountPointRefused(t *testing.T) {
	t.Parallel()
	if mountRootKnown() && !mountPoint("/") {
		t.Error(`mountPoint("/") = false`)
	}
	if dir := t.TempDir(); mountPoint(dir) {
		t.Errorf("mountPoint(%s) = true for a plain directory", dir)
	}
	if !mountRootKnown() {
		t.Skip("statx does not tell mount roots here (Linux before 5.8)")
	}
	parent := t.TempDir()
	mnt := filepath.Join(parent, "volume")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mountTmpfs(mnt); err != nil {
		if os.Getenv("TOWERRECALL_REQUIRE_SYSTEM") != "" {
			t.Fatalf("cannot mount a tmpfs, and TOWERRECALL_REQUIRE_SYSTEM is set (.ci/run sets it where root can): %v", err)
		}
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { unmount(mnt) })
	withArtifact := filepath.Join(t.TempDir(), "volume")
	if err := os.Mkdir(withArtifact, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mountTmpfs(withArtifact); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmount(withArtifact) })
	old := testBundle(t)
	if err := os.Mkdir(filepath.Join(withArtifact, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	// An artifact copied onto the volume's root (Save cannot put it there).
	if err := Save(filepath.Join(withArtifact, "tmp", "model"), old); err != nil {
		t.Fatal(err)
	}
	for name := range old.Manifest.Files {
		if err := os.Rename(filepath.Join(withArtifact, "tmp", "model", name), filepath.Join(withArtifact, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(filepath.Join(withArtifact, "tmp", "model", ManifestFile), filepath.Join(withArtifact, ManifestFile)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(withArtifact, "tmp")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(parent, "current")
	if err := os.Symlink("volume", link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir string
		refused   bool
	}{
		{"empty mount point", mnt, true},
		{"link to a mount point", link, true},
		{"mount point holding an artifact", withArtifact, true},
		{"directory inside a mount", filepath.Join(mnt, "model"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckWritable(tc.dir)
			if tc.refused != (err != nil) || err != nil && !strings.Contains(err.Error(), "mount point") {
				t.Errorf("CheckWritable: %v", err)
			}
			b := testBundle(t)
			b.Manifest.Version = "new"
			err = Save(tc.dir, b)
			if tc.refused != (err != nil) || err != nil && !strings.Contains(err.Error(), "mount point") {
				t.Errorf("Save: %v", err)
			}
			if tc.refused {
				entries, _ := os.ReadDir(filepath.Dir(tc.dir))
				for _, e := range entries {
					if strings.HasPrefix(e.Name(), ".") {
						t.Errorf("Save left %s beside the mount point", e.Name())
					}
				}
			}
		})
	}
	if got, err := Load(withArtifact); err != nil || got.Manifest.Version != "v1" {
		t.Errorf("the artifact on the mount point: %v, %v", got, err)
	}
}

// TestLoadDuringPublication: an artifact replaced while Load reads it (a
// Save, or a volume's swap, publishing the next one between the manifest
// and the files) is not reported corrupt: Load reads what is there now.
// It used to fail with "checksum mismatch ... the artifact is corrupt",
// which serve logged and counted as a refused artifact (and, at start,
// stayed unready until the next poll or SIGHUP), and eval and prior
// exited with. A corrupt artifact is still refused, read once, and a
// directory replaced without end is read three times at most.
func TestLoadDuringPublication(t *testing.T) {
	t.Parallel()
	version := func(v string) *Bundle {
		b := testBundle(t)
		b.Manifest.Version, b.Graph = v, []byte("graph of "+v)
		return b
	}
	for _, tc := range []struct {
		name        string
		publish     int // publications, each between one read's manifest and its files
		corrupt     bool
		wantVersion string
		wantReads   int
	}{
		{"one publication", 1, false, "v2", 2},
		{"two publications", 2, false, "v3", 3},
		{"publishing without end", 10, false, "", 3},
		{"corrupt, no publication", 0, true, "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "model")
			if err := Save(dir, version("v1")); err != nil {
				t.Fatal(err)
			}
			if tc.corrupt {
				if err := flip(GraphFile, 0)(dir); err != nil {
					t.Fatal(err)
				}
			}
			reads := 0
			b, err := loadAgain(dir, func(dir string) (*Bundle, []byte, error) {
				reads++
				m, raw, err := ReadManifest(dir)
				if err != nil {
					return nil, nil, err
				}
				if reads <= tc.publish {
					if err := Save(dir, version(fmt.Sprintf("v%d", reads+1))); err != nil {
						t.Fatal(err)
					}
				}
				b, err := loadFiles(dir, m)
				return b, raw, err
			})
			switch {
			case tc.wantVersion == "" && err == nil:
				t.Errorf("loaded %s", b.Manifest.Version)
			case tc.wantVersion != "" && (err != nil || b.Manifest.Version != tc.wantVersion):
				t.Errorf("got %v, %v; want %s", b, err, tc.wantVersion)
			}
			if reads != tc.wantReads {
				t.Errorf("%d reads, want %d", reads, tc.wantReads)
			}
		})
	}
}

// TestSaveRefusesOversizedFile: a file larger than Load reads (an HNSW
// graph of a million movies at a high serve.hnsw_m, say) is refused by
// Save before anything is written, so it never replaces a good artifact;
// it used to be written, and then every load refused the artifact.
func TestSaveRefusesOversizedFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model")
	if err := Save(dir, testBundle(t)); err != nil {
		t.Fatal(err)
	}
	big := testBundle(t)
	big.Manifest.Version = "v2"
	big.Graph = make([]byte, maxFileSize+1) // fresh zero pages: no memory is touched before the check
	if err := Save(dir, big); err == nil || !strings.Contains(err.Error(), GraphFile) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Save of a %d-byte graph: %v", len(big.Graph), err)
	}
	if got, err := Load(dir); err != nil || got.Manifest.Version != "v1" {
		t.Errorf("after the refused save: %v, %v; want v1", got, err)
	}
}

// TestSaveRefusesUnreadableManifest: Save checks the manifest as Load
// reads it, from its bytes. Two data paths that are not UTF-8 (ISO-8859-1
// file names given to train --train and --valid) were written as one key
// twice ("sp/\ufffd.dat"), which Load refuses as a duplicate: the
// artifact replaced a good one and never loaded.
func TestSaveRefusesUnreadableManifest(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "model")
	if err := Save(dir, testBundle(t)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ok   bool
		edit func(*Manifest)
	}{
		{"two paths one key", false, func(m *Manifest) {
			m.Data.Checksums = map[string]string{"sp/\xfe.dat": "00", "sp/\xff.dat": "11"}
		}},
		{"one path not UTF-8", true, func(m *Manifest) { m.Data.Checksums = map[string]string{"donn\xe9es/ratings.dat": "00"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testBundle(t)
			b.Manifest.Version = tc.name
			tc.edit(&b.Manifest)
			err := Save(dir, b)
			if tc.ok != (err == nil) {
				t.Errorf("Save: %v", err)
			}
			got, lerr := Load(dir)
			if lerr != nil {
				t.Fatalf("Load after Save (%v): %v", err, lerr)
			}
			if (got.Manifest.Version == tc.name) != tc.ok {
				t.Errorf("version %q after Save(%v)", got.Manifest.Version, err)
			}
		})
	}
}

// TestSaveModes: an artifact is readable by other users (a serving
// container's uid) whatever the writer's umask, its files as its
// directory: under umask 027 or 077 the directory was 0755 but the files
// 0640 or 0600, and a server running as another user refused every load
// with "permission denied". Not parallel: the umask is the process's.
func TestSaveModes(t *testing.T) {
	for _, mask := range []int{0o022, 0o027, 0o077} {
		t.Run(fmt.Sprintf("umask %03o", mask), func(t *testing.T) {
			old := setUmask(mask)
			if old < 0 {
				t.Skip("no umask here")
			}
			defer setUmask(old)
			dir := filepath.Join(t.TempDir(), "model")
			b := testBundle(t)
			if err := Save(dir, b); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("directory mode %v (%v), want 0755", fi.Mode().Perm(), err)
			}
			for _, name := range append(slices.Collect(maps.Keys(b.Manifest.Files)), ManifestFile) {
				if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != 0o644 {
					t.Errorf("%s mode %v (%v), want 0644", name, fi.Mode().Perm(), err)
				}
			}
		})
	}
}

// TestSaveKeepsPreviousAndRollback: Save keeps the artifact it replaces as
// the previous, one generation back; Rollback puts it back after checking
// that it loads, keeping the replaced one as the previous, so a second
// Rollback undoes the first; without a good previous it changes nothing.
// Both with the one-step swap and with the renames of file systems that
// cannot swap.
func TestSaveKeepsPreviousAndRollback(t *testing.T) {
	t.Parallel()
	unsupported := func(a, b string) error { return errors.ErrUnsupported }
	for _, tt := range []struct {
		name string
		exch func(a, b string) error
	}{{"swap", exchange}, {"renames", unsupported}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			dir := filepath.Join(parent, "model")
			prev := dir + PreviousSuffix
			save := func(v string) { t.Helper(); saveVersion(t, dir, v) }
			versions := func() (string, string) {
				t.Helper()
				cur, err := Load(dir)
				if err != nil {
					t.Fatal(err)
				}
				p, err := Load(prev)
				if err != nil {
					return cur.Manifest.Version, ""
				}
				return cur.Manifest.Version, p.Manifest.Version
			}
			check := func(what, wantCur, wantPrev string) {
				t.Helper()
				if cur, p := versions(); cur != wantCur || p != wantPrev {
					t.Errorf("%s: %s, previous %q; want %s, previous %q", what, cur, p, wantCur, wantPrev)
				}
				want := []string{"model"}
				if wantPrev != "" {
					want = append(want, "model"+PreviousSuffix)
				}
				if names := beside(t, parent); !slices.Equal(names, want) { // nothing else left behind
					t.Errorf("%s: %v beside the model, want %v", what, names, want)
				}
			}
			save("v1")
			check("first save", "v1", "")
			if _, err := rollback(dir, tt.exch); err == nil || !strings.Contains(err.Error(), "no previous artifact") {
				t.Errorf("rollback with no previous: %v", err)
			}
			check("a refused rollback", "v1", "")
			save("v2")
			check("second save", "v2", "v1")
			// Save's keepPrevious runs with the real swap; the renames
			// path of keepPrevious is checked below.
			save("v3")
			check("third save", "v3", "v2")
			r, err := rollback(dir, tt.exch)
			if err != nil || r.Version != "v2" || r.Replaced != "v3" || !r.Swapped || r.Previous != prev {
				t.Fatalf("rollback: %+v, %v; want v2 replacing v3", r, err)
			}
			check("rollback", "v2", "v3")
			if _, err := rollback(dir, tt.exch); err != nil {
				t.Fatal(err)
			}
			check("rollback again", "v3", "v2")
			// keepPrevious with an older previous in place.
			older := filepath.Join(parent, ".model.tmp-test")
			b := testBundle(t)
			b.Manifest.Version = "v4"
			if err := Save(older, b); err != nil {
				t.Fatal(err)
			}
			keepPrevious(older, dir, tt.exch)
			check("an older previous replaced", "v3", "v4")
			// A damaged previous, a previous that is a link, and one that
			// holds more than an artifact are refused, changing nothing.
			if err := os.WriteFile(filepath.Join(prev, ModelFile), []byte("damaged"), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := rollback(dir, tt.exch); err == nil || !strings.Contains(err.Error(), ModelFile) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Errorf("rollback to a damaged previous: %v", err)
			}
			if cur, _ := versions(); cur != "v3" {
				t.Errorf("after a refused rollback: %s, want v3", cur)
			}
			if err := os.RemoveAll(prev); err != nil {
				t.Fatal(err)
			}
			other := filepath.Join(t.TempDir(), "v9")
			b.Manifest.Version = "v9"
			if err := Save(other, b); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(other, prev); err != nil {
				t.Fatal(err)
			}
			if _, err := rollback(dir, tt.exch); err == nil || !strings.Contains(err.Error(), "symbolic link") {
				t.Errorf("rollback to a linked previous: %v", err)
			}
			if err := os.Remove(prev); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(prev, 0o755); err != nil {
				t.Fatal(err)
			}
			notes := filepath.Join(prev, "notes.txt")
			if err := os.WriteFile(notes, []byte("mine"), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := rollback(dir, tt.exch); err == nil || !strings.Contains(err.Error(), "not an artifact") {
				t.Errorf("rollback to a previous holding notes: %v", err)
			}
			// ... and never replaced by a Save, which removes the artifact
			// it replaced instead.
			save("v5")
			if _, err := os.Stat(notes); err != nil {
				t.Errorf("Save replaced a %s that is not an artifact: %v", prev, err)
			}
			if cur, _ := versions(); cur != "v5" {
				t.Errorf("after a save beside a foreign previous: %s, want v5", cur)
			}
			if names := beside(t, parent); len(names) != 2 {
				t.Errorf("%v beside the model after a save beside a foreign previous, want it and the previous", names)
			}
			// An interrupted rollback's leftover beside the model (its
			// last rename undone) is named, not overwritten.
			if err := os.RemoveAll(prev); err != nil {
				t.Fatal(err)
			}
			save("v6")
			if err := os.Mkdir(dir+".rollback", 0o755); err != nil {
				t.Fatal(err)
			}
			if _, err := rollback(dir, tt.exch); err == nil || !strings.Contains(err.Error(), "interrupted rollback") {
				t.Errorf("rollback beside an interrupted one: %v", err)
			}
			if err := os.Remove(dir + ".rollback"); err != nil {
				t.Fatal(err)
			}
			// A rollback killed after its first rename (no model, which
			// is at .rollback): the next one puts it back, then rolls
			// back.
			if err := os.Rename(dir, dir+".rollback"); err != nil {
				t.Fatal(err)
			}
			if r, err := rollback(dir, tt.exch); err != nil || !r.Swapped || r.Version != "v5" || r.Replaced != "v6" {
				t.Errorf("rollback after one killed after its first rename: %+v, %v; want v5 replacing v6", r, err)
			}
			check("rollback after an interrupted one", "v5", "v6")
			// With nothing at the model, the previous is put there and
			// there is nothing to undo.
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if r, err := rollback(dir, tt.exch); err != nil || r.Swapped || r.Version != "v6" {
				t.Errorf("rollback with nothing at the model: %+v, %v; want v6, not swapped", r, err)
			}
		})
	}
}

// TestRestoreArtifactMovedAside: a train killed between the first two of
// swap's three renames (a file system without RENAME_EXCHANGE) leaves
// nothing at the model and the artifact that was there under Save's
// temporary name, which a later Save's removeStale removed an hour on.
// Restore (serve, before it waits or trains a demo) puts it back, and so
// does the next Save, before removing stale temporaries, keeping it as
// the previous; between two asides neither guesses, and nothing is
// removed.
func TestRestoreArtifactMovedAside(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "model")
	aside := filepath.Join(parent, ".model.tmp-crash.old")
	crash := func() { // swap's first rename, an hour ago
		t.Helper()
		if err := os.Rename(dir, aside); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-2 * time.Hour)
		if err := os.Chtimes(aside, old, old); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what, wantCur, wantPrev string) {
		t.Helper()
		if cur, p := versionAt(t, dir), versionAt(t, dir+PreviousSuffix); cur != wantCur || p != wantPrev {
			t.Errorf("%s: %s, previous %s; want %s, previous %s", what, cur, p, wantCur, wantPrev)
		}
		if names := beside(t, parent); !slices.Equal(names, []string{"model", "model" + PreviousSuffix}) {
			t.Errorf("%s: %v beside the model", what, names)
		}
	}
	saveVersion(t, dir, "v1")
	saveVersion(t, dir, "v2")
	crash()
	if from, err := Restore(dir); err != nil || from != aside {
		t.Fatalf("Restore = %q, %v; want %s", from, err, aside)
	}
	check("Restore", "v2", "v1")
	if from, err := Restore(dir); err != nil || from != "" {
		t.Errorf("Restore with the model in place = %q, %v; want nothing done", from, err)
	}
	crash()
	saveVersion(t, dir, "v3")
	check("a Save after the crash", "v3", "v2")
	crash()
	if err := os.Mkdir(dir+".rollback", 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(dir); err == nil || !strings.Contains(err.Error(), aside) || !strings.Contains(err.Error(), dir+".rollback") {
		t.Errorf("Restore between two asides: %v; want an error naming both", err)
	}
	b := testBundle(t)
	b.Manifest.Version = "v4"
	if err := Save(dir, b); err == nil || !strings.Contains(err.Error(), aside) {
		t.Errorf("Save between two asides: %v; want an error naming them", err)
	}
	if v := versionAt(t, aside); v != "v3" {
		t.Errorf("the aside holds %s after a refused Save, want v3", v)
	}
}

// beside lists the names in parent but the publication locks (see lock).
func beside(t *testing.T, parent string) []string {
	t.Helper()
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestSaveReplacing: a bundle derived from the artifact at dir (prior's
// recount) is not published over another artifact published since; over
// the one it was derived from, it is.
func TestSaveReplacing(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "model")
	save := func(v string) { t.Helper(); saveVersion(t, dir, v) }
	version := func(d string) string { t.Helper(); return versionAt(t, d) }
	save("v1")
	loaded, err := ManifestSum(dir)
	if err != nil {
		t.Fatal(err)
	}
	save("v2") // a train publishing while the bundle below was derived from v1
	derived := testBundle(t)
	derived.Manifest.Version = "v1+prior"
	if err := SaveReplacing(dir, derived, loaded); err == nil || !strings.Contains(err.Error(), "another artifact was published") {
		t.Errorf("SaveReplacing over a newer artifact: %v", err)
	}
	if v, p := version(dir), version(dir+PreviousSuffix); v != "v2" || p != "v1" {
		t.Errorf("after a refused SaveReplacing: %s, previous %s; want v2, previous v1", v, p)
	}
	if loaded, err = ManifestSum(dir); err != nil {
		t.Fatal(err)
	}
	derived.Manifest.Version = "v2+prior"
	if err := SaveReplacing(dir, derived, loaded); err != nil {
		t.Fatal(err)
	}
	if v, p := version(dir), version(dir+PreviousSuffix); v != "v2+prior" || p != "v2" {
		t.Errorf("after SaveReplacing: %s, previous %s; want v2+prior, previous v2", v, p)
	}
	if names := beside(t, filepath.Dir(dir)); len(names) != 2 {
		t.Errorf("%v beside the model, want it and its previous (a refused save leaves nothing)", names)
	}
}

// saveVersion saves a test bundle of version v at dir.
func saveVersion(t *testing.T, dir, v string) {
	t.Helper()
	b := testBundle(t)
	b.Manifest.Version = v
	if err := Save(dir, b); err != nil {
		t.Fatal(err)
	}
}

// versionAt is the version of the artifact at dir.
func versionAt(t *testing.T, dir string) string {
	t.Helper()
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return b.Manifest.Version
}

// TestReadManifestNoArtifact: a directory without a manifest, or no
// directory at all, is named as no artifact, and stays fs.ErrNotExist
// (serve waits for one to be published).
func TestReadManifestNoArtifact(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	missing := filepath.Join(empty, "none")
	for _, tc := range []struct{ dir, want string }{
		{empty, empty + " is no artifact (it has no manifest.json)"},
		{missing, "no artifact at " + missing},
	} {
		_, _, err := ReadManifest(tc.dir)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want fs.ErrNotExist saying %q", tc.dir, err, tc.want)
		}
	}
	file := filepath.Join(empty, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadManifest(file); err == nil || !strings.Contains(err.Error(), file+" is not a directory: an artifact is one") {
		t.Errorf("a file: err = %v", err)
	}
}
