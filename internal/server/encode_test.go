package server

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/recall"
)

// TestAppendRecallMatchesMarshal: the hand-written /recall encoder writes
// exactly what json.Marshal writes for the response type, and refuses what
// it refuses.
func TestAppendRecallMatchesMarshal(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	titles := []string{"", "Toy Story (1995)", `Say "hi" \ <b>&</b>`, "tab\tnew\nline\x01\x1f", "Amélie (2001) 東京 \u2028\u2029", "del\x7f ~"}
	scores := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0.1, 1e-7, -3.4e38, 1e21, 123456.79, math.SmallestNonzeroFloat32}
	for i := range 500 {
		res := recall.Result{ModelVersion: titles[i%len(titles)], Backend: "exact", KnownUser: i%2 == 0, NextOffset: []int{0, 10, 9990}[i%3]}
		pick := func() string { return titles[rng.IntN(len(titles))] }
		res.User = recall.UsedUser{
			Features: feature.UserInput{UserID: movielens.UserID(rng.IntN(3)), Gender: pick(), Age: rng.IntN(3) * 25, Occupation: pick(), Zip: pick()},
			History:  rng.IntN(3),
		}
		for range rng.IntN(3) {
			res.User.Stored = append(res.User.Stored, pick())
			res.User.UnknownRecent = append(res.User.UnknownRecent, movielens.MovieID(rng.Int32()))
		}
		for j := range i % 13 {
			it := recall.Item{
				MovieID: movielens.MovieID(rng.Int32()),
				Title:   titles[rng.IntN(len(titles))],
				Year:    []int{0, 1995, -5}[rng.IntN(3)],
				Score:   scores[(i+j)%len(scores)] * float32(rng.NormFloat64()),
			}
			for range rng.IntN(3) {
				it.Genres = append(it.Genres, titles[rng.IntN(len(titles))])
			}
			res.Items = append(res.Items, it)
		}
		want, werr := json.Marshal(newRecallResponse(res))
		got, gerr := appendRecall(nil, res)
		if werr != nil && gerr != nil {
			continue // both refuse (a score overflowed to ±Inf)
		}
		if werr != nil || gerr != nil || !bytes.Equal(got, want) {
			t.Fatalf("case %d:\n got %s (%v)\nwant %s (%v)", i, got, gerr, want, werr)
		}
	}
	for _, bad := range []recall.Result{
		{Items: []recall.Item{{Score: float32(math.NaN())}}},
		{Items: []recall.Item{{Score: float32(math.Inf(-1))}}},
		{Items: []recall.Item{{Title: "bad \xff utf-8"}}},
	} {
		_, werr := json.Marshal(newRecallResponse(bad))
		if _, gerr := appendRecall(nil, bad); werr == nil || gerr == nil {
			t.Errorf("%+v: appendRecall err %v, json.Marshal err %v; want both to fail", bad.Items[0], gerr, werr)
		}
	}
}

// BenchmarkRecallEncode compares the /recall encoder with json.Marshal of
// the same answer (k = 10 and 100): the reason appendRecall exists.
func BenchmarkRecallEncode(b *testing.B) {
	for _, k := range []int{10, 100} {
		res := fakeResult(k)
		b.Run(fmt.Sprintf("append/k=%d", k), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := appendRecall(make([]byte, 0, 128+192*k), res); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("marshal/k=%d", k), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(newRecallResponse(res), json.Deterministic(true)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestStoredFeaturesNotReturned: the user object echoes the request's own
// features and names the stored ones, without their values (anyone who
// could send a user id read that user's gender, age, occupation and zip).
func TestStoredFeaturesNotReturned(t *testing.T) {
	t.Parallel()
	u := recall.UsedUser{
		Features: feature.UserInput{UserID: 123, Gender: "M", Age: 35, Occupation: "homemaker", Zip: "67208"},
		Stored:   []string{"age", "occupation", "zip"}, // the request sent its gender
		History:  20,
	}
	got, err := json.Marshal(newUserJSON(u))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"user_id":123,"gender":"M","stored_features":["age","occupation","zip"],"history_movies":20,"unknown_recent_movie_ids":[]}`
	if string(got) != want {
		t.Errorf("user %s, want %s", got, want)
	}
	res := recall.Result{User: u}
	enc, err := appendRecall(nil, res)
	if err != nil || bytes.Contains(enc, []byte("homemaker")) || bytes.Contains(enc, []byte("67208")) {
		t.Errorf("/recall's encoder wrote %s (%v)", enc, err)
	}
}
