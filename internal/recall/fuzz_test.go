package recall

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/towerrecall/towerrecall/internal/movielens"
)

// FuzzRecall sends requests the HTTP layer would pass (every value within
// its limits) to a real Service, exact index, HNSW and HNSW routed by depth
// (the scan deeper than 40), whose catalogue was changed
// after loading (movies added, updated and deleted), and checks what every
// answer must satisfy against a reference built from /score's scores: the
// items are the best live movies that pass the request's filters (genres,
// exclusions, the user's seen and recent movies), best first, the page at
// offset of that ranking, with next_offset when more remain; every score
// equals Score's for the same pair, bit for bit (on HNSW, see checkRecall).
func FuzzRecall(f *testing.F) {
	exact, genres, ids, seen := changedService(f, "exact")
	hnsw, _, _, _ := changedService(f, "hnsw")
	// routed answers from the graph to depth 40 and from the scan deeper,
	// as index: auto does where the graph is faster at k = 10 only.
	routed, _, _, _ := changedService(f, "hnsw")
	routed.live.Load().snap.info.HNSWMaxDepth = 40
	f.Add(uint8(3), uint8(10), uint8(0), uint8(0), []byte{}, []byte{}, uint8(0))
	f.Add(uint8(0), uint8(5), uint8(7), uint8(0b0101), []byte{1, 4, 200}, []byte{2, 2, 9}, uint8(0b11))
	f.Add(uint8(60), uint8(200), uint8(90), uint8(0b11010), []byte{130}, []byte{}, uint8(0b10100))
	f.Fuzz(func(t *testing.T, uid, k, offset, flags uint8, recent, exclude []byte, genreMask uint8) {
		u := User{}
		u.UserID = movielens.UserID(uid % 64) // 0: none, 1–50 known, 51–63 unknown
		if flags&1 != 0 {
			u.Gender, u.Age, u.Occupation = "F", 33, "writer"
		}
		for _, x := range recent[:min(len(recent), 8)] { // distinct, as the HTTP layer demands
			if id := ids[int(x)%len(ids)]; !slices.Contains(u.Recent, id) {
				u.Recent = append(u.Recent, id)
			}
		}
		req := Request{User: u, K: 1 + int(k)%80, Offset: int(offset)}
		for _, x := range exclude[:min(len(exclude), 8)] { // repeats allowed
			req.ExcludeMovieIDs = append(req.ExcludeMovieIDs, ids[int(x)%len(ids)])
		}
		switch flags >> 1 & 3 {
		case 1:
			req.ExcludeSeen = boolPtr(true)
		case 2:
			req.ExcludeSeen = boolPtr(false)
		}
		for i, g := range testGenres {
			if genreMask>>i&1 != 0 {
				if flags&8 != 0 {
					g = strings.ToUpper(g) // genre names are case-insensitive
				}
				req.Genres = append(req.Genres, g)
			}
		}
		for _, s := range []*Service{exact, hnsw, routed} {
			checkRecall(t, s, req, genres, ids, seen)
		}
		if res, _ := routed.Recall(context.Background(), req); (res.Backend == "hnsw") != (req.K+req.Offset <= 40) {
			t.Fatalf("%+v: answered by %s with the graph to depth 40", req, res.Backend)
		}
	})
}

// checkRecall checks s's answer to req against the reference (see
// FuzzRecall). On the HNSW backend the items need not be the best (the
// search is approximate) but must be eligible, best first, as many as the
// exact answer, with Score's scores.
func checkRecall(t *testing.T, s *Service, req Request, genres map[movielens.MovieID][]string, ids []movielens.MovieID, seen map[movielens.MovieID]bool) {
	ctx, u := context.Background(), req.User
	res, err := s.Recall(ctx, req)
	if err != nil {
		t.Fatalf("%+v: %v", req, err)
	}
	// The reference: every live movie scored by Score, filtered.
	all, err := s.Score(ctx, ScoreRequest{User: u, MovieIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	_, known := s.live.Load().snap.users[u.UserID]
	excludeSeen := (known || len(u.Recent) > 0) && (req.ExcludeSeen == nil || *req.ExcludeSeen)
	var want []Score
	for _, sc := range all.Scores {
		id := sc.MovieID
		if slices.Contains(req.ExcludeMovieIDs, id) || excludeSeen && (known && seen[id] || slices.Contains(u.Recent, id)) {
			continue
		}
		if len(req.Genres) > 0 && !slices.ContainsFunc(genres[id], func(g string) bool {
			return slices.ContainsFunc(req.Genres, func(r string) bool { return strings.EqualFold(r, g) })
		}) {
			continue
		}
		want = append(want, sc)
	}
	slices.SortStableFunc(want, func(a, b Score) int { return cmp.Compare(b.Score, a.Score) })
	page := want[min(req.Offset, len(want)):min(req.Offset+req.K, len(want))]
	if len(res.Items) != len(page) {
		t.Fatalf("%+v: %d items, want %d of %d eligible", req, len(res.Items), len(page), len(want))
	}
	got := map[movielens.MovieID]bool{}
	for i, it := range res.Items {
		if got[it.MovieID] {
			t.Fatalf("%+v: movie %d twice", req, it.MovieID)
		}
		got[it.MovieID] = true
		if res.Backend == "exact" && it.Score != page[i].Score { // ties may list equal scores in either order
			t.Fatalf("%+v: item %d is movie %d scoring %v, want score %v (movie %d)", req, i, it.MovieID, it.Score, page[i].Score, page[i].MovieID)
		}
		if i > 0 && it.Score > res.Items[i-1].Score {
			t.Fatalf("%+v (%s): item %d scores %v, above item %d's %v", req, res.Backend, i, it.Score, i-1, res.Items[i-1].Score)
		}
		if j := slices.IndexFunc(want, func(sc Score) bool { return sc.MovieID == it.MovieID }); j < 0 || want[j].Score != it.Score {
			t.Fatalf("%+v: movie %d (score %v) is not eligible with that score", req, it.MovieID, it.Score)
		}
	}
	next := 0
	if req.Offset+req.K < len(want) && req.Offset+req.K <= MaxOffset {
		next = req.Offset + req.K
	}
	if res.NextOffset != next {
		t.Fatalf("%+v: next_offset %d, want %d (%d eligible)", req, res.NextOffset, next, len(want))
	}
}

// changedService is a Service on index with testBundle (120 movies)
// loaded and its catalogue changed: 8 movies added, 2 updated, 3 deleted
// (one of them added). It returns the live movies' genres, every id a
// request may name (each movie ever known, and one never) and the movies
// every known user has seen.
func changedService(f *testing.F, index string) (*Service, map[movielens.MovieID][]string, []movielens.MovieID, map[movielens.MovieID]bool) {
	s, b := loadedService(f, index, "v1", 120, 7)
	s.AttachJournal(&memJournal{}, nil)
	ctx := context.Background()
	genres := map[movielens.MovieID][]string{}
	for _, mv := range b.Movies {
		genres[mv.ID] = mv.Genres
	}
	put := func(id movielens.MovieID, g ...string) {
		if _, err := s.PutMovie(ctx, Movie{MovieID: id, Title: fmt.Sprintf("Put %d", id), Genres: g}); err != nil {
			f.Fatal(err)
		}
		genres[id] = g
	}
	for i := range 8 { // added
		put(movielens.MovieID(5000+i), testGenres[i%len(testGenres)])
	}
	put(b.Movies[3].ID, "Horror") // updated: one of every known user's seen movies
	put(b.Movies[40].ID, "Comedy", "Romance")
	for _, id := range []movielens.MovieID{b.Movies[5].ID, b.Movies[60].ID, 5002} { // deleted
		if _, err := s.DeleteMovie(ctx, id); err != nil {
			f.Fatal(err)
		}
		delete(genres, id)
	}
	ids := []movielens.MovieID{999999}
	for _, mv := range b.Movies {
		ids = append(ids, mv.ID)
	}
	for i := range 8 {
		ids = append(ids, movielens.MovieID(5000+i))
	}
	seen := map[movielens.MovieID]bool{} // testBundle: every user has seen movies 0..9
	for _, m := range b.Seen[0] {
		seen[b.Movies[m].ID] = true
	}
	return s, genres, ids, seen
}
