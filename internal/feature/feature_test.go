package feature

import (
	"reflect"
	"testing"

	"github.com/towerrecall/towerrecall/internal/movielens"
)

func testData() ([]movielens.User, []movielens.Movie, []movielens.Rating) {
	users := []movielens.User{
		{ID: 2, Gender: "M", Age: 56, Occupation: "retired", Zip: "70072"},
		{ID: 1, Gender: "F", Age: 1, Occupation: "K-12 student", Zip: "48067"},
		{ID: 3, Gender: "M", Age: 25, Occupation: "programmer", Zip: "55117-1234"},
	}
	movies := []movielens.Movie{
		{ID: 10, Title: "A (1995)", Year: 1995, Genres: []string{"Comedy", "Drama"}},
		{ID: 20, Title: "B (1972)", Year: 1972, Genres: []string{"Drama"}},
		{ID: 30, Title: "C", Genres: nil},
	}
	train := []movielens.Rating{{User: 1, Movie: 10, Value: 5}, {User: 2, Movie: 20, Value: 3}}
	return users, movies, train
}

func TestVocab(t *testing.T) {
	t.Parallel()
	v := NewVocab([]string{"b", "a", "b", "c"})
	if v.Size() != 4 {
		t.Fatalf("Size = %d, want 4 (3 values + OOV)", v.Size())
	}
	tests := []struct {
		in   string
		want int32
	}{{"b", 1}, {"a", 2}, {"c", 3}, {"zzz", OOV}, {"", OOV}}
	for _, tt := range tests {
		if got := v.Lookup(tt.in); got != tt.want {
			t.Errorf("Lookup(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
	if !reflect.DeepEqual(v.Values(), []string{"b", "a", "c"}) {
		t.Errorf("Values = %v", v.Values())
	}
}

func TestFitEncode(t *testing.T) {
	t.Parallel()
	users, movies, train := testData()
	// A user without ratings whose occupation the ML-100K alias names.
	users = append(users, movielens.User{ID: 4, Gender: "F", Age: 25, Occupation: "college/grad student", Zip: "48067"})
	e, err := Fit(UserFields(), MovieFields(), users, movies, train)
	if err != nil {
		t.Fatal(err)
	}
	// Only users and movies with training ratings get an id slot.
	if got := e.Vocabs[UserIDField].Values(); !reflect.DeepEqual(got, []string{"1", "2"}) {
		t.Errorf("user ids = %v", got)
	}
	if got := e.Vocabs[MovieIDField].Values(); !reflect.DeepEqual(got, []string{"10", "20"}) {
		t.Errorf("movie ids = %v", got)
	}
	if got := e.Vocabs[ZipField].Values(); !reflect.DeepEqual(got, []string{"480", "700", "551"}) {
		t.Errorf("zip prefixes = %v", got)
	}
	tests := []struct {
		name string
		in   UserInput
		want []int32
	}{
		{"known user", UserInput{UserID: 1, Gender: "F", Age: 1, Occupation: "K-12 student", Zip: "48067"}, []int32{1, 1, 1, 1, 1}},
		{"cold start user with features", UserInput{UserID: 3, Gender: "M", Age: 70, Occupation: "programmer", Zip: "55117"}, []int32{OOV, 2, 2, 3, 3}},
		{"age in years maps to its bucket", UserInput{Age: 60}, []int32{OOV, OOV, 2, OOV, OOV}},
		{"occupation alias from ML-100K", UserInput{Occupation: "Student"}, []int32{OOV, OOV, OOV, 4, OOV}},
		{"occupation case-insensitive", UserInput{Occupation: "RETIRED"}, []int32{OOV, OOV, OOV, 2, OOV}},
		{"nothing known", UserInput{}, []int32{0, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.UserIndexes(nil, tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("UserIndexes = %v, want %v", got, tt.want)
			}
			enc := e.EncodeUser(tt.in)
			for i := range enc {
				if len(enc[i]) != 1 || enc[i][0] != tt.want[i] {
					t.Errorf("EncodeUser field %d = %v", i, enc[i])
				}
			}
		})
	}
	m := e.EncodeMovie(FromMovie(movies[0]))
	if len(m) != 3 || len(m[1]) != 2 {
		t.Fatalf("EncodeMovie = %v, want genres as a bag of 2", m)
	}
	if m := e.EncodeMovie(FromMovie(movies[2])); m[0][0] != OOV || len(m[1]) != 1 || m[1][0] != OOV || m[2][0] != OOV {
		t.Errorf("movie without id slot, genres or year = %v, want all OOV", m)
	}
}

func TestNewEncoderRoundTrip(t *testing.T) {
	t.Parallel()
	users, movies, train := testData()
	e, err := Fit(UserFields(), MovieFields(), users, movies, train)
	if err != nil {
		t.Fatal(err)
	}
	saved := map[Field][]string{}
	for f, v := range e.Vocabs {
		saved[f] = v.Values()
	}
	e2, err := NewEncoder(UserFields(), MovieFields(), saved)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if a, b := e.EncodeUser(FromUser(u)), e2.EncodeUser(FromUser(u)); !reflect.DeepEqual(a, b) {
			t.Errorf("user %d: %v != %v", u.ID, a, b)
		}
	}
	delete(saved, ZipField)
	if _, err := NewEncoder(UserFields(), MovieFields(), saved); err == nil {
		t.Error("NewEncoder accepted a missing vocabulary")
	}
}

func TestFieldChecks(t *testing.T) {
	t.Parallel()
	users, movies, train := testData()
	for name, uf := range map[string][]Field{
		"unknown":                   {"shoe_size"},
		"twice":                     {GenderField, GenderField},
		"none":                      nil,
		"movie field in user tower": {GenresField},
	} {
		if _, err := Fit(uf, MovieFields(), users, movies, train); err == nil {
			t.Errorf("%s: Fit accepted user fields %v", name, uf)
		}
	}
}

func TestPopularityField(t *testing.T) {
	t.Parallel()
	users, movies, train := testData()
	train = append(train, movielens.Rating{User: 2, Movie: 10, Value: 4}, movielens.Rating{User: 3, Movie: 10, Value: 2})
	e, err := Fit(UserFields(), AllMovieFields(), users, movies, train)
	if err != nil {
		t.Fatal(err)
	}
	// Movie 10 has 3 ratings (bucket 2), movie 20 one (bucket 1), movie 30 none (bucket 0).
	if got := e.Vocabs[PopularityField].Values(); !reflect.DeepEqual(got, []string{"2", "1", "0"}) {
		t.Errorf("popularity vocabulary = %v", got)
	}
	in := FromMovie(movies[0])
	in.Ratings = 3
	if m := e.EncodeMovie(in); len(m) != 4 || m[3][0] != 1 {
		t.Errorf("EncodeMovie with popularity = %v", m)
	}
	for _, tt := range []struct {
		n    int
		want string
	}{{-1, "0"}, {0, "0"}, {1, "1"}, {2, "2"}, {3, "2"}, {4, "3"}, {1000, "10"}} {
		if got := PopularityBucket(tt.n); got != tt.want {
			t.Errorf("PopularityBucket(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestBuckets(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		years int
		want  string
	}{{0, ""}, {5, "1"}, {18, "18"}, {24, "18"}, {25, "25"}, {49, "45"}, {55, "50"}, {90, "56"}} {
		if got := AgeValue(tt.years); got != tt.want {
			t.Errorf("AgeValue(%d) = %q, want %q", tt.years, got, tt.want)
		}
	}
	for _, tt := range []struct {
		year int
		want string
	}{{0, ""}, {1995, "1995"}, {1999, "1995"}, {1921, "1920"}} {
		if got := YearBucket(tt.year); got != tt.want {
			t.Errorf("YearBucket(%d) = %q, want %q", tt.year, got, tt.want)
		}
	}
	if ZipPrefix(" 55117-1234 ") != "551" || ZipPrefix("12") != "12" || ZipPrefix("t8h1n") != ZipPrefix("T8H1N") ||
		ZipPrefix("kxé12") != "KXÉ" || ZipPrefix("éé") != "ÉÉ" {
		t.Error("ZipPrefix")
	}
}

func TestHistoryField(t *testing.T) {
	t.Parallel()
	users, movies, train := testData()
	uf := append(UserFields(), HistoryField)
	e, err := Fit(uf, MovieFields(), users, movies, train)
	if err != nil {
		t.Fatal(err)
	}
	// The history vocabulary is the rated movies' ids, like movie_id's.
	if got := e.Vocabs[HistoryField].Values(); !reflect.DeepEqual(got, []string{"10", "20"}) {
		t.Fatalf("history vocabulary = %v", got)
	}
	if got := e.HistoryPosition(); got != len(uf)-1 {
		t.Fatalf("HistoryPosition = %d, want %d", got, len(uf)-1)
	}
	tests := []struct {
		name    string
		history []string
		want    []int32
	}{
		{"none", nil, []int32{OOV}},
		{"one", []string{"20"}, []int32{2}},
		{"several in order", []string{"20", "10"}, []int32{2, 1}},
		{"unknown movies skipped", []string{"30", "10", "999"}, []int32{1}},
		{"only unknown", []string{"30"}, []int32{OOV}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := e.EncodeUser(UserInput{UserID: 1, History: tt.history})
			if got := enc[len(uf)-1]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("EncodeUser history = %v, want %v", got, tt.want)
			}
			if got := e.HistoryIndexes(make([]int32, 0, 4), tt.history); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("HistoryIndexes = %v, want %v", got, tt.want)
			}
		})
	}
	// UserIndexes has one slot per field; the bag's slot is the empty history.
	if got := e.UserIndexes(nil, UserInput{UserID: 1, History: []string{"10"}}); len(got) != len(uf) || got[len(uf)-1] != OOV {
		t.Errorf("UserIndexes = %v", got)
	}
	// Without the field there is no history position, and every bag is OOV.
	e2, err := Fit(UserFields(), MovieFields(), users, movies, train)
	if err != nil {
		t.Fatal(err)
	}
	if e2.HistoryPosition() != -1 || !reflect.DeepEqual(e2.HistoryIndexes(nil, []string{"10"}), []int32{OOV}) {
		t.Errorf("encoder without history: position %d", e2.HistoryPosition())
	}
	// The field round-trips through saved vocabularies.
	saved := map[Field][]string{}
	for f, v := range e.Vocabs {
		saved[f] = v.Values()
	}
	e3, err := NewEncoder(uf, MovieFields(), saved)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e3.EncodeUser(UserInput{History: []string{"20", "10"}}), e.EncodeUser(UserInput{History: []string{"20", "10"}})) {
		t.Error("saved encoder encodes history differently")
	}
}

// TestUserCodecMatchesEncoder checks the compiled codec against
// Encoder.UserIndexes on the edge cases of each table.
func TestUserCodecMatchesEncoder(t *testing.T) {
	t.Parallel()
	users, movies, train := testData()
	e, err := Fit(UserFields(), MovieFields(), users, movies, train)
	if err != nil {
		t.Fatal(err)
	}
	c := NewUserCodec(e)
	if c.ids == nil {
		t.Fatal("decimal user ids got no table")
	}
	for _, u := range userCodecCases() {
		if got, want := c.Indexes(nil, u), e.UserIndexes(nil, u); !reflect.DeepEqual(got, want) {
			t.Errorf("%+v: codec %v, encoder %v", u, got, want)
		}
	}
	// Ids that are not canonical decimals take the map path.
	users = append(users, movielens.User{ID: 7})
	train = append(train, movielens.Rating{User: 7, Movie: 10, Value: 4})
	e2, err := Fit(UserFields(), MovieFields(), users, movies, train)
	if err != nil {
		t.Fatal(err)
	}
	e2.Vocabs[UserIDField] = NewVocab([]string{"1", "007", "x"})
	c2 := NewUserCodec(e2)
	if c2.ids != nil {
		t.Fatal("non-canonical ids got a table")
	}
	for _, u := range append(userCodecCases(), UserInput{UserID: 7}) {
		if got, want := c2.Indexes(nil, u), e2.UserIndexes(nil, u); !reflect.DeepEqual(got, want) {
			t.Errorf("map path %+v: codec %v, encoder %v", u, got, want)
		}
	}
}

func userCodecCases() []UserInput {
	var out []UserInput
	for _, id := range []movielens.UserID{0, 1, 2, 3, 7, -1, 999999999, 1 << 22, 1<<31 - 1, -1 << 31} {
		out = append(out, UserInput{UserID: id})
	}
	for _, g := range []string{"", "F", "M", "f", "X"} {
		out = append(out, UserInput{Gender: g})
	}
	for _, a := range []int{-5, -1, 0, 1, 17, 18, 24, 25, 56, 60, 149, 150, 151, 1000} {
		out = append(out, UserInput{Age: a})
	}
	for _, o := range []string{"", "programmer", "RETIRED", " retired ", "Student", "nope"} {
		out = append(out, UserInput{Occupation: o})
	}
	for _, z := range []string{"", "48067", " 480", "55117-1234", "x"} {
		out = append(out, UserInput{Zip: z})
	}
	return append(out, UserInput{UserID: 1, Gender: "F", Age: 1, Occupation: "K-12 student", Zip: "48067"})
}

// FuzzUserCodec: the compiled codec and the encoder agree on any input.
func FuzzUserCodec(f *testing.F) {
	for _, u := range userCodecCases() {
		f.Add(int32(u.UserID), u.Gender, u.Age, u.Occupation, u.Zip)
	}
	users, movies, train := testData()
	e, err := Fit(UserFields(), MovieFields(), users, movies, train)
	if err != nil {
		f.Fatal(err)
	}
	c := NewUserCodec(e)
	f.Fuzz(func(t *testing.T, id int32, gender string, age int, occ, zip string) {
		u := UserInput{UserID: movielens.UserID(id), Gender: gender, Age: age, Occupation: occ, Zip: zip}
		if got, want := c.Indexes(nil, u), e.UserIndexes(nil, u); !reflect.DeepEqual(got, want) {
			t.Errorf("%+v: codec %v, encoder %v", u, got, want)
		}
	})
}
