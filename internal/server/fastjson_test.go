package server

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/recall"
)

func stdRecallJSON(t testing.TB, res recall.Result) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	resp := newRecallResponse(res)
	if err := enc.Encode(&resp); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAppendRecallJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	titles := []string{"Toy Story (1995)", `Quote "me" \ back`, "Am\u00e9lie (2001)", "tab\there\nnewline\x01", "bad \xff utf8", "sep\u2028\u2029", "<html>&"}
	scores := []float32{0, 1, -1, 0.12345678, 1e-7, -3.5e-9, 1e22, 123456.79, float32(math.SmallestNonzeroFloat32), 0.999999}
	for n := 0; n < 300; n++ {
		res := recall.Result{ModelVersion: "v" + titles[n%len(titles)], Backend: "exact", KnownUser: n%2 == 0}
		for i := 0; i < n%12; i++ {
			it := recall.Item{MovieID: movielens.MovieID(rng.IntN(100000)), Title: titles[rng.IntN(len(titles))], Year: []int{0, 1995}[rng.IntN(2)]}
			if rng.IntN(4) > 0 {
				it.Genres = []string{"Comedy", titles[rng.IntN(len(titles))]}[:1+rng.IntN(2)]
			}
			if rng.IntN(2) == 0 {
				it.Score = scores[rng.IntN(len(scores))]
			} else {
				it.Score = float32(rng.NormFloat64())
			}
			res.Items = append(res.Items, it)
		}
		got, ok := appendRecallJSON(nil, res)
		if !ok {
			t.Fatal("not ok for finite scores")
		}
		want := stdRecallJSON(t, res)
		if !bytes.Equal(got, want) {
			t.Fatalf("fast encoder differs:\n got %s\nwant %s", got, want)
		}
		// The same answer from fragments pre-encoded at model load.
		for i, it := range res.Items {
			res.Items[i].Fragment = MovieFragment(artifact.Movie{ID: it.MovieID, Title: it.Title, Genres: it.Genres, Year: it.Year})
		}
		if got, _ := appendRecallJSON(nil, res); !bytes.Equal(got, want) {
			t.Fatalf("encoder with fragments differs:\n got %s\nwant %s", got, want)
		}
	}
	if _, ok := appendRecallJSON(nil, recall.Result{Items: []recall.Item{{Score: float32(math.NaN())}}}); ok {
		t.Error("NaN score encoded")
	}
	// 'A' ^ '{' == ':': "A:" passes a check that mixes the two ends'
	// differences without keeping them apart.
	for _, frag := range []string{"", "x", `{"movie_id":1}`, `"score":`, "A:", `{"movie_id":1,"score"8`} {
		if _, ok := appendRecallJSON(nil, recall.Result{Items: []recall.Item{{Fragment: []byte(frag)}}}); ok {
			t.Errorf("fragment %q, which is not the start of an item, was copied", frag)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `"\`, "\x00\x1f", "\xff\xfe", "\u2028", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Skip()
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		want = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}

func BenchmarkEncodeRecall(b *testing.B) {
	res := recall.Result{ModelVersion: "20261126T231023Z-1", Backend: "exact", KnownUser: true}
	for i := 0; i < 10; i++ {
		res.Items = append(res.Items, recall.Item{MovieID: movielens.MovieID(1000 + i), Title: "Groundhog Day (1993)", Genres: []string{"Comedy", "Romance"}, Year: 1993, Score: 0.8312345})
	}
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			resp := newRecallResponse(res)
			_ = enc.Encode(&resp)
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			buf, _ = appendRecallJSON(buf[:0], res)
		}
	})
	frag := res
	frag.Items = slices.Clone(res.Items)
	for i, it := range frag.Items {
		frag.Items[i].Fragment = MovieFragment(artifact.Movie{ID: it.MovieID, Title: it.Title, Genres: it.Genres, Year: it.Year})
	}
	b.Run("fragments", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			buf, _ = appendRecallJSON(buf[:0], frag)
		}
	})
}
