package movielens

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseUser1M(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, line string
		want       User
		err        string
	}{
		{name: "ok", line: "1::F::1::10::48067", want: User{ID: 1, Gender: "F", Age: 1, Occupation: "K-12 student", Zip: "48067"}},
		{name: "zip with dash", line: "2::M::56::16::70072-1234", want: User{ID: 2, Gender: "M", Age: 56, Occupation: "self-employed", Zip: "70072-1234"}},
		{name: "occupation 0", line: "3::M::25::0::55117", want: User{ID: 3, Gender: "M", Age: 25, Occupation: "other", Zip: "55117"}},
		{name: "bad age", line: "1::F::20::10::48067", err: "age"},
		{name: "bad occupation", line: "1::F::18::21::48067", err: "occupation code 21 out of range 0–20"},
		{name: "bad gender", line: "1::X::18::2::48067", err: "gender"},
		{name: "zero id", line: "0::F::18::2::48067", err: "user id"},
		{name: "too few", line: "1::F::18::2", err: "want 5 fields"},
		{name: "too many", line: "1::F::18::2::1::2", err: "got more"},
		{name: "empty", line: "", err: "want 5 fields"},
		{name: "empty zip", line: "4::F::18::2::", want: User{ID: 4, Gender: "F", Age: 18, Occupation: "artist"}},
		{name: "spaces around fields", line: " 4 :: F :: 18 :: 2 :: 48067 ", want: User{ID: 4, Gender: "F", Age: 18, Occupation: "artist", Zip: "48067"}},
		{name: "ISO-8859-1 zip", line: "5::F::18::2::K\xe9291", want: User{ID: 5, Gender: "F", Age: 18, Occupation: "artist", Zip: "Ké291"}}, // decoded as titles are
		{name: "control in zip", line: "1::F::1::10::480\x0067", err: `zip "480\x0067" must not contain control`},
		{name: "format character in zip", line: "1::F::1::10::48067\u200b", err: "zip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseUser1M(tt.line)
			checkResult(t, got, err, tt.want, tt.err)
		})
	}
}

func TestParseMovie1M(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, line string
		want       Movie
		err        string
	}{
		{name: "ok", line: "1::Toy Story (1995)::Animation|Children's|Comedy",
			want: Movie{ID: 1, Title: "Toy Story (1995)", Year: 1995, Genres: []string{"Animation", "Children's", "Comedy"}}},
		{name: "latin1", line: "73::Mis\xe9rables, Les (1995)::Drama|War",
			want: Movie{ID: 73, Title: "Misérables, Les (1995)", Year: 1995, Genres: []string{"Drama", "War"}}},
		{name: "already utf-8", line: "73::Misérables, Les (1995)::Drama|War",
			want: Movie{ID: 73, Title: "Misérables, Les (1995)", Year: 1995, Genres: []string{"Drama", "War"}}},
		{name: "parens in title", line: "47::Seven (Se7en) (1995)::Crime|Thriller",
			want: Movie{ID: 47, Title: "Seven (Se7en) (1995)", Year: 1995, Genres: []string{"Crime", "Thriller"}}},
		{name: "no year", line: "5::Untitled::Drama", want: Movie{ID: 5, Title: "Untitled", Genres: []string{"Drama"}}},
		{name: "no genres", line: "5::Untitled (2000)::", want: Movie{ID: 5, Title: "Untitled (2000)", Year: 2000}},
		{name: "empty genre", line: "5::X (2000)::Drama||War", err: "empty genre"},
		{name: "empty title", line: "5::::Drama", err: "empty title"},
		{name: "bad id", line: "x::X (2000)::Drama", err: "movie id"},
		{name: "two fields", line: "5::X (2000)", err: "want 3 fields"},
		// A fourth field (a corrupt or foreign line) is not read into the
		// title: no MovieLens title holds "::", and WriteML1M refuses one.
		{name: "four fields", line: "1::Toy Story (1995)::Animation::Comedy", err: `want 3 fields separated by "::", got 4`},
		{name: "trailing separator", line: "1::Toy Story (1995)::Animation|Comedy::", err: `want 3 fields separated by "::", got 4`},
		{name: "colon in title", line: "6::Star Wars: Episode IV (1977)::Sci-Fi",
			want: Movie{ID: 6, Title: "Star Wars: Episode IV (1977)", Year: 1977, Genres: []string{"Sci-Fi"}}},
		// The rules PUT /movies keeps (CheckTitle, CheckGenres).
		{name: "repeated genre", line: "5::X (2000)::Comedy|comedy", err: `genres[1] "comedy" repeats genres[0]`},
		{name: "control in title", line: "5::X\x01 (2000)::Drama", err: "U+0001 at byte 1"},
		{name: "long title", line: "5::" + strings.Repeat("x", MaxTitleLen+1) + "::Drama", err: "at most 200 characters"},
		{name: "17 genres", line: "5::X::" + strings.Repeat("G|", MaxGenres) + "G", err: "at most 16 genres"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseMovie1M(tt.line)
			checkResult(t, got, err, tt.want, tt.err)
		})
	}
}

func TestParseRating(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, line, sep string
		want            Rating
		err             string
	}{
		{name: "ml-1m", line: "1::1193::5::978300760", sep: SepML1M, want: Rating{User: 1, Movie: 1193, Value: 5, Time: 978300760}},
		{name: "ml-100k", line: "196\t242\t3\t881250949", sep: SepML100K, want: Rating{User: 196, Movie: 242, Value: 3, Time: 881250949}},
		{name: "out of range", line: "1::2::7::3", sep: SepML1M, err: "rating 7 out of range 1–5"},
		{name: "zero", line: "1::2::0::3", sep: SepML1M, err: "rating 0 out of range 1–5"},
		{name: "fractional", line: "1::2::3.5::3", sep: SepML1M, err: `rating "3.5" is not an integer`},
		{name: "negative time", line: "1::2::3::-3", sep: SepML1M, err: "timestamp"},
		{name: "last second of 9999", line: "1::2::3::253402300799", sep: SepML1M, want: Rating{User: 1, Movie: 2, Value: 3, Time: 253402300799}},
		{name: "past 9999", line: "1\t1\t3\t99999999999999", sep: SepML100K, err: "year 9999"},
		{name: "wrong sep", line: "1::2::3::4", sep: SepML100K, err: "want 4 fields"},
		{name: "huge id", line: "99999999999::2::3::4", sep: SepML1M, err: "user id"},
		{name: "extra field", line: "1::2::3::4::5", sep: SepML1M, err: "got more"},
		{name: "empty sep", line: "1::2::3::4", sep: "", err: "separator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRating(tt.line, tt.sep)
			checkResult(t, got, err, tt.want, tt.err)
		})
	}
}

func TestParseUser100K(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, line string
		want       User
		err        string
	}{
		{name: "ok", line: "1|24|M|technician|85711", want: User{ID: 1, Gender: "M", Age: 24, Occupation: "technician/engineer", Zip: "85711"}},
		{name: "none", line: "2|53|F|none|T8H1N", want: User{ID: 2, Gender: "F", Age: 53, Occupation: "unemployed", Zip: "T8H1N"}},
		{name: "student", line: "3|7|M|student|55436", want: User{ID: 3, Gender: "M", Age: 7, Occupation: "college/grad student", Zip: "55436"}},
		{name: "unknown occupation", line: "1|24|M|astronaut|85711", err: `unknown occupation "astronaut"`},
		{name: "bad age", line: "1|x|M|writer|85711", err: "age"},
		{name: "age zero", line: "1|0|M|writer|85711", err: "age"},
		{name: "ml-1m line", line: "1::F::1::10::48067", err: "want 5 fields"},
		{name: "control in zip", line: "1|24|M|technician|857\x1b11", err: `zip "857\x1b11" must not contain control`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseUser100K(tt.line)
			checkResult(t, got, err, tt.want, tt.err)
		})
	}
}

func TestParseMovie100K(t *testing.T) {
	t.Parallel()
	flags := func(on ...int) string {
		f := make([]string, 19)
		for i := range f {
			f[i] = "0"
		}
		for _, i := range on {
			f[i] = "1"
		}
		return strings.Join(f, "|")
	}
	tests := []struct {
		name, line string
		want       Movie
		err        string
	}{
		{name: "ok", line: "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|" + flags(3, 4, 5),
			want: Movie{ID: 1, Title: "Toy Story (1995)", Year: 1995, Genres: []string{"Animation", "Children's", "Comedy"}}},
		{name: "only unknown", line: "267|unknown||||" + flags(0), want: Movie{ID: 267, Title: "unknown"}},
		{name: "unknown and drama", line: "9|X (1990)||||" + flags(0, 8), want: Movie{ID: 9, Title: "X (1990)", Year: 1990, Genres: []string{"Drama"}}},
		{name: "empty title", line: "9|||||" + flags(8), want: Movie{ID: 9, Genres: []string{"Drama"}}},
		{name: "year from date", line: "9|Untitled|09-Feb-1996|||" + flags(8), want: Movie{ID: 9, Title: "Untitled", Year: 1996, Genres: []string{"Drama"}}},
		{name: "trailing space", line: "1128|Heidi Fleiss: Hollywood Madam (1995) |09-Feb-1996|||" + flags(7),
			want: Movie{ID: 1128, Title: "Heidi Fleiss: Hollywood Madam (1995)", Year: 1995, Genres: []string{"Documentary"}}},
		{name: "latin1", line: "9|Ma vie en rose (Ma vie en \xe9)|||| " + flags(8), want: Movie{ID: 9, Title: "Ma vie en rose (Ma vie en é)", Genres: []string{"Drama"}}},
		{name: "bad flag", line: "9|X||||" + strings.Replace(flags(), "0", "2", 1), err: "want 0 or 1"},
		{name: "few flags", line: "9|X||||0|1", err: "want 24 fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseMovie100K(tt.line, ML100KGenres())
			checkResult(t, got, err, tt.want, tt.err)
		})
	}
}

func TestParseGenre100K(t *testing.T) {
	t.Parallel()
	if n, i, err := ParseGenre100K("Film-Noir|10"); err != nil || n != "Film-Noir" || i != 10 {
		t.Errorf("got %q %d %v", n, i, err)
	}
	for _, line := range []string{"|3", "Drama|-1", "Drama|x", "Drama|99999", "Drama"} {
		if _, _, err := ParseGenre100K(line); err == nil {
			t.Errorf("%q: want error", line)
		}
	}
}

func TestTitleYear(t *testing.T) {
	t.Parallel()
	for title, want := range map[string]int{
		"Toy Story (1995)": 1995, "Toy Story (1995) ": 1995, "Seven (Se7en) (1995)": 1995,
		"(1995)": 1995, "X (95)": 0, "X (19a5)": 0, "X": 0, "": 0, "X (0000)": 0, "X (1995": 0,
		"X (1869)": 0, "X (1870)": 1870, "X (2100)": 2100, "X (3000)": 0, // outside the catalogue's years: unknown
	} {
		if got := TitleYear(title); got != want {
			t.Errorf("TitleYear(%q) = %d, want %d", title, got, want)
		}
	}
}

func checkResult[T any](t *testing.T, got T, err error, want T, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error = %v, want one containing %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

// Fuzz targets: parsers never panic, and what they accept is valid.

func FuzzParseUser1M(f *testing.F) {
	for _, s := range []string{"1::F::1::10::48067", "2::M::56::16::70072", "1::F::20::10::4", "::::", "1::f::18::20::", "\xff::M::1::1::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		u, err := ParseUser1M(line)
		if err != nil {
			return
		}
		checkUser(t, u)
		if !isML1MAge(u.Age) {
			t.Fatalf("age %d", u.Age)
		}
	})
}

func FuzzParseUser100K(f *testing.F) {
	for _, s := range []string{"1|24|M|technician|85711", "2|53|F|none|T8H1N", "||||", "1|200|M|writer|1", "1|24|M| Writer |x|y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		u, err := ParseUser100K(line)
		if err != nil {
			return
		}
		checkUser(t, u)
	})
}

func checkUser(t *testing.T, u User) {
	t.Helper()
	if u.ID <= 0 || (u.Gender != "F" && u.Gender != "M") || u.Age < 1 {
		t.Fatalf("accepted bad user %+v", u)
	}
	if c, ok := CanonicalOccupation(u.Occupation); !ok || c != u.Occupation {
		t.Fatalf("occupation %q not canonical", u.Occupation)
	}
}

func FuzzParseMovie1M(f *testing.F) {
	for _, s := range []string{
		"1::Toy Story (1995)::Animation|Children's|Comedy", "73::Mis\xe9rables, Les (1995)::Drama",
		"5::::", "5::a::b::c", "5::(2000)::|", "::::::",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		m, err := ParseMovie1M(line)
		if err != nil {
			return
		}
		assertValidMovie(t, m)
		if m.Title == "" {
			t.Fatal("empty title accepted")
		}
	})
}

func FuzzParseMovie100K(f *testing.F) {
	f.Add("1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0", 19)
	f.Add("267|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0", 19)
	f.Add("9|\xe9||||1|1", 2)
	f.Add("9|X|-|||", 0)
	f.Fuzz(func(t *testing.T, line string, ngenres int) {
		genres := ML100KGenres()
		if ngenres >= 0 && ngenres < len(genres) {
			genres = genres[:ngenres]
		}
		m, err := ParseMovie100K(line, genres)
		if err != nil {
			return
		}
		assertValidMovie(t, m)
		for _, g := range m.Genres {
			if g == UnknownGenre {
				t.Fatal("unknown genre reported")
			}
		}
	})
}

func assertValidMovie(t *testing.T, m Movie) {
	t.Helper()
	if m.ID <= 0 || !utf8.ValidString(m.Title) || m.Year < 0 || m.Year > 9999 {
		t.Fatalf("accepted bad movie %+v", m)
	}
	if err := checkMovie(m.Title, m.Genres); err != nil {
		t.Fatalf("accepted movie %+v that breaks the movie rules: %v", m, err)
	}
	for _, g := range m.Genres {
		if g == "" || !utf8.ValidString(g) {
			t.Fatalf("bad genre in %+v", m)
		}
	}
}

func FuzzParseGenre100K(f *testing.F) {
	for _, s := range []string{"unknown|0", "Western|18", "|", "a|1024", "a|-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		n, i, err := ParseGenre100K(line)
		if err != nil {
			return
		}
		if n == "" || i < 0 || i >= maxGenres {
			t.Fatalf("accepted %q %d", n, i)
		}
	})
}

func FuzzParseRating(f *testing.F) {
	f.Add("1::1193::5::978300760", true)
	f.Add("196\t242\t3\t881250949", false)
	f.Add("1::2::7::3", true)
	f.Add("1\t2\t3", false)
	f.Add("::::::", true)
	f.Fuzz(func(t *testing.T, line string, ml1m bool) {
		sep := SepML100K
		if ml1m {
			sep = SepML1M
		}
		r, err := ParseRating(line, sep)
		if err != nil {
			return
		}
		if r.User <= 0 || r.Movie <= 0 || r.Value < 1 || r.Value > 5 || r.Value != float32(int(r.Value)) || r.Time < 0 {
			t.Fatalf("accepted bad rating %+v", r)
		}
	})
}

func FuzzReadRatings(f *testing.F) {
	f.Add("1::1193::5::978300760\n1::661::3::978302109\n")
	f.Add("\n196\t242\t3\t881250949\r\n186\t302\t3\t891717742")
	f.Add("1::2::3::4\n1\t2\t3\t4\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, data string) {
		rs, err := ReadRatings(strings.NewReader(data), "fuzz.dat", nil)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.dat:") {
				t.Fatalf("error without location: %v", err)
			}
			return
		}
		// Each rating is its own line's, in order: the non-blank lines
		// (a byte-order mark may open the file, CRLF may end lines), each
		// parsed alone with the file's separator.
		var lines []string
		for i, line := range strings.Split(data, "\n") {
			line = strings.TrimRight(line, "\r")
			if i == 0 {
				line = strings.TrimPrefix(line, "\ufeff")
			}
			if strings.TrimSpace(line) != "" {
				lines = append(lines, line)
			}
		}
		if len(rs) != len(lines) {
			t.Fatalf("%d ratings from %d non-blank lines", len(rs), len(lines))
		}
		sep := SepML100K
		if len(lines) > 0 && strings.Contains(lines[0], SepML1M) {
			sep = SepML1M
		}
		for i, line := range lines {
			if want, err := ParseRating(line, sep); err != nil || rs[i] != want {
				t.Fatalf("rating %d = %+v, its line %q parses as %+v, %v", i, rs[i], line, want, err)
			}
		}
	})
}
