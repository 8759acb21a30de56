package movielens

import "testing"

func TestOccupationName(t *testing.T) { // not parallel: AllocsPerRun
	for _, tt := range []struct{ in, want string }{
		{"programmer", "programmer"},
		{"K-12 student", "K-12 student"},
		{"Programmer", ""}, // exact spelling only; CanonicalOccupation folds case
		{"student", ""},    // an alias, not a canonical name
		{"", ""},
	} {
		if got := OccupationName([]byte(tt.in)); got != tt.want {
			t.Errorf("OccupationName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	b := []byte("writer")
	if n := testing.AllocsPerRun(100, func() { _ = OccupationName(b); _, _ = CanonicalOccupation("writer") }); n != 0 {
		t.Errorf("%v allocations per lookup of a canonical name", n)
	}
}
