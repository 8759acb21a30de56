package movielens

import (
	"strings"
	"testing"
)

func TestCheckTitle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, title, err string
	}{
		{name: "plain", title: "Toy Story (1995)"},
		{name: "empty (u.item has one)", title: ""},
		{name: "accents and joiners", title: "Amélie (2001) \u200d\u200e"},
		{name: "at the limit", title: strings.Repeat("x", MaxTitleLen)},
		{name: "over the limit", title: strings.Repeat("x", MaxTitleLen+1), err: "at most 200 characters, got 201"},
		{name: "at the limit in two-byte characters", title: strings.Repeat("é", MaxTitleLen)},
		{name: "over the limit in two-byte characters", title: strings.Repeat("é", MaxTitleLen+1), err: "at most 200 characters, got 201"},
		{name: "newline", title: "a\nb", err: "U+000A at byte 1"},
		{name: "bidi override", title: "ab\u202ec", err: "U+202E at byte 2"},
		{name: "isolate", title: "\u2066x", err: "U+2066 at byte 0"},
		{name: "zero-width space", title: "x\u200b", err: "U+200B"},
		{name: "byte-order mark", title: "\ufeffx", err: "U+FEFF"},
		{name: "line separator", title: "x\u2028y", err: "U+2028"},
		{name: "word joiner", title: "\u2060", err: "U+2060"},
		{name: "soft hyphen", title: "Al\u00adien", err: "U+00AD"},
		{name: "Mongolian vowel separator", title: "\u180e", err: "U+180E"},
		{name: "interlinear annotation", title: "\ufff9", err: "U+FFF9"},
		{name: "Arabic letter mark", title: "\u061cx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assertErr(t, CheckTitle(tt.title), tt.err)
		})
	}
}

func TestCheckGenres(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		genres []string
		err    string
	}{
		{name: "none", genres: nil},
		{name: "some", genres: []string{"Comedy", "Drama"}},
		{name: "sixteen", genres: strings.Split("a b c d e f g h i j k l m n o p", " ")},
		{name: "seventeen", genres: strings.Split("a b c d e f g h i j k l m n o p q", " "), err: "at most 16 genres, got 17"},
		{name: "repeat in another case", genres: []string{"Comedy", "Drama", "COMEDY"}, err: `genres[2] "COMEDY" repeats genres[0]`},
		{name: "empty name", genres: []string{"Comedy", ""}, err: "genres[1] must be a genre name"},
		{name: "long name", genres: []string{strings.Repeat("g", MaxGenreLen+1)}, err: "genres[0] must be a genre name of 1 to 64 characters"},
		{name: "long name in two-byte characters", genres: []string{strings.Repeat("é", MaxGenreLen)}},
		{name: "control in name", genres: []string{"Film\tNoir"}, err: "genres[0] must be a genre name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assertErr(t, CheckGenres(tt.genres), tt.err)
		})
	}
}

// assertErr checks that err is nil when want is "", else that it contains want.
func assertErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q, want one containing %q", err, want)
	}
}

func TestVisible(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"Toy Story (1995)": true, "7": true, "?": true, "\u2605": true, "می": true,
		"": false, "   ": false, "\u3164": false, "\u2800\u2800": false, "\u034f": false, "\u200d\u200e": false, "\u115f\u1160\uffa0": false,
	} {
		if got := Visible(s); got != want {
			t.Errorf("Visible(%q) = %v, want %v", s, got, want)
		}
	}
}
