package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"

	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/movielens"
)

// Catalogue is what a request mix draws from: ids the model knows.
type Catalogue struct {
	Users  []int    // user ids with a training history
	Movies []int    // movie ids
	Genres []string // genre names, sorted
}

// CatalogueOf lists the users, movies and genres of a bundle.
func CatalogueOf(b *artifact.Bundle) Catalogue {
	var c Catalogue
	for _, u := range b.Users {
		c.Users = append(c.Users, int(u))
	}
	seen := map[string]bool{}
	for _, m := range b.Movies {
		c.Movies = append(c.Movies, int(m.ID))
		for _, g := range m.Genres {
			if !seen[g] {
				seen[g] = true
				c.Genres = append(c.Genres, g)
			}
		}
	}
	slices.Sort(c.Genres)
	return c
}

// The request kinds of a mix.
const (
	KindKnown   = "known"   // a user id with a history, plus features
	KindCold    = "cold"    // features only, or an id the model has never seen
	KindGenre   = "genre"   // a known or cold user with a genre filter
	KindExclude = "exclude" // a known or cold user with exclude_movie_ids
)

// Request is one /recall body of a mix.
type Request struct {
	Kind string
	K    int
	Body []byte
}

type userJSON struct {
	UserID     *int   `json:"user_id,omitempty"`
	Gender     string `json:"gender,omitempty"`
	Age        int    `json:"age,omitempty"`
	Occupation string `json:"occupation,omitempty"`
	Zip        string `json:"zip,omitempty"`
}

type recallJSON struct {
	User            userJSON `json:"user"`
	K               int      `json:"k"`
	ExcludeMovieIDs []int    `json:"exclude_movie_ids,omitempty"`
	Genres          []string `json:"genres,omitempty"`
}

// RecallMix returns n /recall bodies drawn with seed from c: known users
// (40 %), cold-start users (20 %), genre filters (20 %) and exclusions
// (20 %), k uniform in kMin..kMax. The same arguments give the same bodies.
func RecallMix(c Catalogue, n int, seed uint64, kMin, kMax int) ([]Request, error) {
	if len(c.Users) == 0 || len(c.Movies) == 0 || len(c.Genres) == 0 {
		return nil, fmt.Errorf("loadtest: catalogue has %d users, %d movies, %d genres; need some of each", len(c.Users), len(c.Movies), len(c.Genres))
	}
	if kMin < 1 || kMax < kMin {
		return nil, fmt.Errorf("loadtest: k range %d..%d", kMin, kMax)
	}
	rng := rand.New(rand.NewPCG(seed, 0x3171))
	occs := movielens.Occupations()
	ages := []int{1, 18, 25, 35, 45, 50, 56}
	features := func(u *userJSON) {
		if rng.IntN(4) != 0 {
			u.Gender = []string{"F", "M"}[rng.IntN(2)]
		}
		if rng.IntN(4) != 0 {
			u.Age = ages[rng.IntN(len(ages))] + rng.IntN(5)
		}
		if rng.IntN(4) != 0 {
			u.Occupation = occs[rng.IntN(len(occs))]
		}
		if rng.IntN(2) == 0 {
			u.Zip = fmt.Sprintf("%05d", rng.IntN(100000))
		}
	}
	known := func() userJSON {
		id := c.Users[rng.IntN(len(c.Users))]
		u := userJSON{UserID: &id}
		features(&u)
		return u
	}
	cold := func() userJSON {
		var u userJSON
		if rng.IntN(2) == 0 {
			id := 100_000_000 + rng.IntN(1_000_000) // never a training user
			u.UserID = &id
		}
		features(&u)
		return u
	}
	anyUser := func() userJSON {
		if rng.IntN(2) == 0 {
			return known()
		}
		return cold()
	}
	out := make([]Request, n)
	for i := range out {
		var r recallJSON
		var kind string
		switch p := rng.IntN(10); {
		case p < 4:
			kind, r.User = KindKnown, known()
		case p < 6:
			kind, r.User = KindCold, cold()
		case p < 8:
			kind, r.User = KindGenre, anyUser()
			for range 1 + rng.IntN(3) {
				r.Genres = append(r.Genres, c.Genres[rng.IntN(len(c.Genres))])
			}
		default:
			kind, r.User = KindExclude, anyUser()
			for range 1 + rng.IntN(20) {
				r.ExcludeMovieIDs = append(r.ExcludeMovieIDs, c.Movies[rng.IntN(len(c.Movies))])
			}
		}
		r.K = kMin + rng.IntN(kMax-kMin+1)
		body, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("loadtest: %w", err)
		}
		out[i] = Request{Kind: kind, K: r.K, Body: body}
	}
	return out, nil
}

// FixedJSON returns a JSON document of exactly size bytes (size ≥ 64) shaped
// like a small /recall answer.
func FixedJSON(size int) []byte {
	const head, tail = `{"model_version":"bare","items":[],"pad":"`, `"}`
	pad := max(0, size-len(head)-len(tail))
	return []byte(head + strings.Repeat("x", pad) + tail)
}

// BareHandler is the baseline of the load test: it reads the request body
// and answers a fixed 1 KiB JSON document, doing no work a real handler
// must do, so its requests/s bound what net/http and the client reach on
// this machine.
func BareHandler() http.Handler {
	body := FixedJSON(1024)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}
