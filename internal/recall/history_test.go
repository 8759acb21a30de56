package recall

import (
	"context"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/tower"
)

// TestHistoryFeature serves a model whose user tower has the history
// feature: a known user's vector must pool the history stored in the
// artifact (the same encoding training and evaluation use), an unknown
// user's the empty (OOV) history, and /recall must still agree with /score.
func TestHistoryFeature(t *testing.T) {
	t.Parallel()
	b, m, enc := historyBundle(t)
	for i := range b.Seen { // distinct histories
		b.Seen[i] = []int32{int32(i), int32(i + 1), int32(2 * i), int32(100 + i%20)}
	}
	s := newService(t, "exact")
	if err := s.Load(b); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		user   feature.UserInput
		known  int     // index in b.Users, -1 for unknown
		recent []int32 // movie indexes sent as recent movies
	}{
		{"known user", feature.UserInput{UserID: 3, Gender: "M", Age: 30}, 2, nil},
		{"another known user", feature.UserInput{UserID: 41}, 40, nil},
		{"unknown id", feature.UserInput{UserID: 9999, Gender: "F"}, -1, nil},
		{"no id", feature.UserInput{Age: 40, Occupation: "writer"}, -1, nil},
		{"no id, recent movies", feature.UserInput{Age: 40}, -1, []int32{7, 3, 110}},
		{"known user, recent movies extend the stored history", feature.UserInput{UserID: 3}, 2, []int32{2, 9, 110, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.user
			// The history the tower must see: stored ratings and recent
			// movies, each once, in movie index order (the bag's order).
			var bag []int32
			if tc.known >= 0 {
				bag = append(bag, b.Seen[tc.known]...)
			}
			bag = append(bag, tc.recent...)
			slices.Sort(bag)
			for _, mi := range slices.Compact(bag) {
				in.History = append(in.History, strconv.Itoa(int(b.Movies[mi].ID)))
			}
			u := User{UserInput: tc.user}
			for _, mi := range tc.recent {
				u.Recent = append(u.Recent, b.Movies[mi].ID)
			}
			want := make([]float32, 8)
			m.UserVector(want, enc.EncodeUser(in))
			ids := make([]movielens.MovieID, len(b.Movies))
			for i, mv := range b.Movies {
				ids[i] = mv.ID
			}
			sc, err := s.Score(ctx, ScoreRequest{User: u, MovieIDs: ids})
			if err != nil {
				t.Fatal(err)
			}
			if sc.User.History != len(in.History) {
				t.Errorf("history of %d movies reported, want %d", sc.User.History, len(in.History))
			}
			for i, x := range sc.Scores {
				if w := ann.Dot(want, b.Vectors[i*8:(i+1)*8]); x.Score != w {
					t.Fatalf("movie %d: served score %v, want %v (history not pooled as in training?)", x.MovieID, x.Score, w)
				}
			}
			res, err := s.Recall(ctx, Request{User: u, K: 20, ExcludeSeen: boolPtr(false)})
			if err != nil {
				t.Fatal(err)
			}
			if res.KnownUser != (tc.known >= 0) {
				t.Errorf("known = %v", res.KnownUser)
			}
			for _, it := range res.Items {
				mi := 0
				for mi < len(ids) && ids[mi] != it.MovieID {
					mi++
				}
				if w := ann.Dot(want, b.Vectors[mi*8:(mi+1)*8]); it.Score != w {
					t.Errorf("recall score of %d: %v, want %v", it.MovieID, it.Score, w)
				}
			}
		})
	}
}

// historyBundle is a test bundle whose user tower has the history
// feature (over the movie ids), with its model and encoder.
func historyBundle(t *testing.T) (*artifact.Bundle, *tower.Model, *feature.Encoder) {
	t.Helper()
	b := testBundle(t, "h1", 120, 7)
	uf := append(feature.UserFields(), feature.HistoryField)
	mf := feature.MovieFields()
	vocabs := map[feature.Field][]string{}
	for f, v := range b.Encoder.Vocabs {
		vocabs[f] = v.Values()
	}
	vocabs[feature.HistoryField] = vocabs[feature.MovieIDField]
	enc, err := feature.NewEncoder(uf, mf, vocabs)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tower.Config{Dim: 8, Hidden: []int{16}, Normalize: true, UserEmbed: []int{4, 2, 2, 2, 2, 16}, MovieEmbed: []int{4, 2, 2}}
	m, err := tower.New(cfg, enc.VocabSizes(uf), enc.VocabSizes(mf), rand.New(rand.NewPCG(7, 3)))
	if err != nil {
		t.Fatal(err)
	}
	b.Model, b.Encoder = m, enc
	b.Manifest.Fields.User = uf
	return b, m, enc
}

// TestRecentHistoryFeature serves a model whose history feature pools
// recent movies (artifact.Recent): the tower must see the request's recent
// movies (in order, each once, unknown ones skipped) then the known user's
// stored newest, at most Length in all, in that order — the bag training
// built — and /recall must agree with /score.
func TestRecentHistoryFeature(t *testing.T) {
	t.Parallel()
	b, m, enc := historyBundle(t)
	const length = 4
	b.Recent = &artifact.Recent{Length: length, Decay: 0.5, Movies: make([][]int32, len(b.Users))}
	m.SetUserPoolDecay(5, 0.5) // as artifact.Load does: the bag's order matters
	for i := range b.Users {   // newest first, distinct per user
		b.Recent.Movies[i] = []int32{int32(100 + i%20), int32(2 * i), int32(i + 1)}[:1+i%3]
	}
	s := newService(t, "exact")
	if err := s.Load(b); err != nil {
		t.Fatal(err)
	}
	if info, _ := s.Info(); info.RecentHistory != length {
		t.Errorf("model info says %d recent movies, want %d", info.RecentHistory, length)
	}
	ctx := context.Background()
	ids := make([]movielens.MovieID, len(b.Movies))
	for i, mv := range b.Movies {
		ids[i] = mv.ID
	}
	for _, tc := range []struct {
		name   string
		user   feature.UserInput
		recent []int32 // movie indexes sent as recent movies; -1 an unknown id
		want   []int32 // the bag's movie indexes, in order
	}{
		{"known user", feature.UserInput{UserID: 3}, nil, []int32{102, 4, 3}},
		{"known user, one stored movie", feature.UserInput{UserID: 4}, nil, []int32{103}},
		{"unknown id", feature.UserInput{UserID: 9999, Gender: "F"}, nil, nil},
		{"no id, recent movies", feature.UserInput{Age: 40}, []int32{7, 3, 110}, []int32{7, 3, 110}},
		{"no id, too many recent movies", feature.UserInput{Age: 40}, []int32{7, 3, 7, -1, 110, 5, 6}, []int32{7, 3, 110, 5}},
		{"known user, recent movies first", feature.UserInput{UserID: 3}, []int32{4, 9}, []int32{4, 9, 102, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.user
			for _, mi := range tc.want {
				in.History = append(in.History, strconv.Itoa(int(b.Movies[mi].ID)))
			}
			u := User{UserInput: tc.user}
			for _, mi := range tc.recent {
				if mi < 0 {
					u.Recent = append(u.Recent, 987654)
					continue
				}
				u.Recent = append(u.Recent, b.Movies[mi].ID)
			}
			want := make([]float32, 8)
			m.UserVector(want, enc.EncodeUser(in))
			sc, err := s.Score(ctx, ScoreRequest{User: u, MovieIDs: ids})
			if err != nil {
				t.Fatal(err)
			}
			if sc.User.History != len(tc.want) {
				t.Errorf("history of %d movies reported, want %d", sc.User.History, len(tc.want))
			}
			for i, x := range sc.Scores {
				if w := ann.Dot(want, b.Vectors[i*8:(i+1)*8]); x.Score != w {
					t.Fatalf("movie %d: served score %v, want %v (recent history not pooled as in training?)", x.MovieID, x.Score, w)
				}
			}
			res, err := s.Recall(ctx, Request{User: u, K: 20, ExcludeSeen: boolPtr(false)})
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range res.Items {
				mi := slices.Index(ids, it.MovieID)
				if w := ann.Dot(want, b.Vectors[mi*8:(mi+1)*8]); it.Score != w {
					t.Errorf("recall score of %d: %v, want %v", it.MovieID, it.Score, w)
				}
			}
		})
	}
}

// TestStoredProfile: a request naming only a known user id is served with
// the user's stored features, and says which; a request's own features
// win over the stored ones.
func TestStoredProfile(t *testing.T) {
	t.Parallel()
	b := testBundle(t, "v1", 120, 8)
	b.Profiles = []artifact.Profile{{ID: 7, Gender: "F", Age: 35, Occupation: "writer", Zip: "10001"}, {ID: 500, Gender: "M", Age: 18}}
	s := newService(t, "exact")
	if err := s.Load(b); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		alone, all feature.UserInput
		stored     []string
	}{
		{"known user", feature.UserInput{UserID: 7}, feature.UserInput{UserID: 7, Gender: "F", Age: 35, Occupation: "writer", Zip: "10001"}, []string{"gender", "age", "occupation", "zip"}},
		{"own features win", feature.UserInput{UserID: 7, Gender: "M", Zip: "94043"}, feature.UserInput{UserID: 7, Gender: "M", Age: 35, Occupation: "writer", Zip: "94043"}, []string{"age", "occupation"}},
		{"profile without ratings", feature.UserInput{UserID: 500}, feature.UserInput{UserID: 500, Gender: "M", Age: 18}, []string{"gender", "age"}},
		{"no profile", feature.UserInput{UserID: 9999, Age: 20}, feature.UserInput{UserID: 9999, Age: 20}, nil},
	} {
		got, err := s.Recall(ctx, Request{User: User{UserInput: tc.alone}, K: 30})
		if err != nil {
			t.Fatal(err)
		}
		want, err := s.Recall(ctx, Request{User: User{UserInput: tc.all}, K: 30})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Items, want.Items) {
			t.Errorf("%s: answer differs from the one with the stored features", tc.name)
		}
		if !slices.Equal(got.User.Stored, tc.stored) || !reflect.DeepEqual(got.User.Features, tc.all) {
			t.Errorf("%s: used %+v stored %v, want %+v %v", tc.name, got.User.Features, got.User.Stored, tc.all, tc.stored)
		}
	}
}

// TestStoredProfileReadFeatures: a stored feature the user tower does not
// read is neither filled in nor named as used.
func TestStoredProfileReadFeatures(t *testing.T) {
	t.Parallel()
	b := testBundle(t, "v1", 120, 8)
	uf := []feature.Field{feature.UserIDField, feature.AgeField}
	mf := feature.MovieFields()
	vocabs := map[feature.Field][]string{}
	for f, v := range b.Encoder.Vocabs {
		vocabs[f] = v.Values()
	}
	enc, err := feature.NewEncoder(uf, mf, vocabs)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tower.Config{Dim: 8, Hidden: []int{16}, Normalize: true, UserEmbed: []int{4, 2}, MovieEmbed: []int{4, 2, 2}}
	if b.Model, err = tower.New(cfg, enc.VocabSizes(uf), enc.VocabSizes(mf), rand.New(rand.NewPCG(8, 3))); err != nil {
		t.Fatal(err)
	}
	b.Encoder, b.Manifest.Fields.User = enc, uf
	b.Profiles = []artifact.Profile{{ID: 7, Gender: "F", Age: 35, Occupation: "writer", Zip: "10001"}}
	s := newService(t, "exact")
	if err := s.Load(b); err != nil {
		t.Fatal(err)
	}
	got, err := s.Recall(context.Background(), Request{User: User{UserInput: feature.UserInput{UserID: 7}}, K: 5})
	if err != nil {
		t.Fatal(err)
	}
	if want := (feature.UserInput{UserID: 7, Age: 35}); !slices.Equal(got.User.Stored, []string{"age"}) || !reflect.DeepEqual(got.User.Features, want) {
		t.Errorf("used %+v, stored %v; want %+v, [age]", got.User.Features, got.User.Stored, want)
	}
}

// TestModelInfoRecentWeight: /model's recent_weight is the prior weight a
// user known only by recent movies gets, as tower.Prior.Group decides:
// the cold weight unless the history feature makes users known; without
// id fields no user is cold, and cold_weight is the known users' too.
func TestModelInfoRecentWeight(t *testing.T) {
	t.Parallel()
	plain := testBundle(t, "p1", 60, 3)
	hist, _, _ := historyBundle(t)
	h := hist.Encoder.HistoryPosition()
	id := slices.Index(hist.Encoder.UserFields, feature.UserIDField)
	for _, tc := range []struct {
		name string
		b    *artifact.Bundle
		p    artifact.Prior
		want float32
		cold float32
	}{
		{"no history feature", plain, artifact.Prior{Weight: 1, ColdWeight: 2, IDFields: []int{0}}, 2, 2},
		{"no id fields", plain, artifact.Prior{Weight: 1, ColdWeight: 0}, 1, 1},
		{"history makes users known, own weight", hist, artifact.Prior{Weight: 1, ColdWeight: 2, RecentWeight: 3, IDFields: []int{id, h}, RecentFields: []int{h}, FeatureShare: 0.5}, 3, 2},
		{"history makes users known", hist, artifact.Prior{Weight: 1, ColdWeight: 2, IDFields: []int{id, h}}, 1, 2},
		{"history not an id field", hist, artifact.Prior{Weight: 1, ColdWeight: 2, IDFields: []int{id}}, 2, 2},
	} {
		b := *tc.b
		b.Prior = &tc.p
		if got := modelInfo(&b).Prior.RecentWeight; got != tc.want {
			t.Errorf("%s: recent weight %v, want %v", tc.name, got, tc.want)
		}
		if got := modelInfo(&b).Prior.ColdWeight; got != tc.cold {
			t.Errorf("%s: cold weight %v, want %v", tc.name, got, tc.cold)
		}
		if got := modelInfo(&b).Prior.FeatureShare; got != tc.p.FeatureShare {
			t.Errorf("%s: feature share %v, want the artifact's %v", tc.name, got, tc.p.FeatureShare)
		}
	}
}
