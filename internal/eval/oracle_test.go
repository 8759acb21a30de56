package eval

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// bruteForce computes the protocol's metrics from the raw pairs with no
// code shared with Evaluate: a positive's rank is the number of candidates
// (movies the user has no exclude pair for) that beat it, a better score
// or an equal one at a lower index, NaN counting as −Inf. Positives are
// the user's distinct test movies, every one of them (one also excluded
// can never be ranked, but still counts); users without one are skipped.
func bruteForce(numUsers, numMovies int, exclude, test []Pair, score func(u, m int) float64, ks []int) Metrics {
	key := func(u, m int) float64 {
		s := score(u, m)
		if math.IsNaN(s) {
			return math.Inf(-1)
		}
		return s
	}
	sums, squares := map[string]float64{}, map[string]float64{}
	users := 0
	for u := range numUsers {
		excl := map[int]bool{}
		for _, p := range exclude {
			if int(p.User) == u {
				excl[int(p.Movie)] = true
			}
		}
		pos := map[int]bool{}
		for _, p := range test {
			if int(p.User) == u {
				pos[int(p.Movie)] = true
			}
		}
		if len(pos) == 0 {
			continue
		}
		users++
		ranks := []int{}
		for p := range pos {
			if excl[p] {
				continue
			}
			r := 0
			for c := range numMovies {
				if c == p || excl[c] {
					continue
				}
				if key(u, c) > key(u, p) || key(u, c) == key(u, p) && c < p {
					r++
				}
			}
			ranks = append(ranks, r)
		}
		for _, k := range slices.Compact(slices.Sorted(slices.Values(ks))) {
			hits, dcg, idcg := 0, 0.0, 0.0
			for _, r := range ranks {
				if r < k {
					hits++
					dcg += 1 / math.Log2(float64(r)+2)
				}
			}
			for i := 0; i < k && i < len(pos); i++ {
				idcg += 1 / math.Log2(float64(i)+2)
			}
			ks := strconv.Itoa(k)
			sums["recall@"+ks] += float64(hits) / float64(len(pos))
			squares["recall@"+ks] += math.Pow(float64(hits)/float64(len(pos)), 2)
			sums["ndcg@"+ks] += dcg / idcg
			if hits > 0 {
				sums["hit@"+ks]++
			}
		}
	}
	m := Metrics{"users": float64(users)}
	for k, v := range sums {
		m[k] = v / float64(users)
	}
	n := float64(users)
	for k, sq := range squares { // the textbook form: (Σx² − n·mean²) / (n − 1), over n
		if _, at, _ := strings.Cut(k, "@"); users > 1 {
			m["recall_se@"+at] = math.Sqrt(max(0, sq-n*m[k]*m[k]) / (n - 1) / n)
		}
	}
	for _, k := range ks {
		for _, n := range []string{"recall@", "hit@", "ndcg@", "recall_se@"} {
			if _, ok := m[n+strconv.Itoa(k)]; !ok {
				m[n+strconv.Itoa(k)] = 0
			}
		}
	}
	return m
}

// TestEvaluateMatchesBruteForce compares Evaluate with bruteForce on small
// random splits: scores with many ties, NaN, ±Inf and −0; K beyond the
// number of candidates; users with no test movie, with every movie
// excluded, with fewer positives than K; repeated pairs; test movies also
// excluded. A failing seed is printed.
func TestEvaluateMatchesBruteForce(t *testing.T) {
	t.Parallel()
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 99))
		users, movies := 1+rng.IntN(12), 1+rng.IntN(30)
		var exclude, test []Pair
		for u := range users {
			switch rng.IntN(6) {
			case 0: // no test movie: not evaluated
			case 1: // every movie excluded
				for m := range movies {
					exclude = append(exclude, Pair{int32(u), int32(m)})
				}
				test = append(test, Pair{int32(u), int32(rng.IntN(movies))})
			default:
				for m := range movies {
					switch rng.IntN(5) {
					case 0:
						exclude = append(exclude, Pair{int32(u), int32(m)})
					case 1:
						test = append(test, Pair{int32(u), int32(m)})
					}
				}
			}
			for range rng.IntN(3) { // repeats, and a test movie also excluded
				if len(test) > 0 {
					p := test[rng.IntN(len(test))]
					test = append(test, p)
					if rng.IntN(4) == 0 {
						exclude = append(exclude, p)
					}
				}
			}
		}
		table := make([]float32, users*movies)
		for i := range table {
			switch rng.IntN(12) {
			case 0:
				table[i] = float32(math.NaN())
			case 1:
				table[i] = float32(math.Inf(1 - 2*rng.IntN(2)))
			case 2:
				table[i] = float32(math.Copysign(0, -1))
			default:
				table[i] = float32(rng.IntN(5)) - 2 // many ties
			}
		}
		score := func(u, m int) float64 { return float64(table[u*movies+m]) }
		s := ScorerFunc(func(dst []float32, u int32) { copy(dst, table[int(u)*movies:]) })
		ks := []int{1, 1 + rng.IntN(5), movies, movies + 1 + rng.IntN(100)}
		sp := NewSplit(users, movies, exclude, test)
		want := bruteForce(users, movies, exclude, test, score, ks)
		got, err := Evaluate(context.Background(), s, sp, ks, 1+rng.IntN(3))
		if want["users"] == 0 {
			if err == nil {
				t.Fatalf("seed %d: no test users, but no error", seed)
			}
			continue
		}
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if len(got) != len(want) {
			t.Fatalf("seed %d: keys %v, want %v", seed, got, want)
		}
		for k, w := range want {
			if g := got[k]; math.Abs(g-w) > 1e-9 {
				t.Fatalf("seed %d (%d users, %d movies, ks %v): %s = %v, want %v\n%s", seed, users, movies, ks, k, g, w, fmt.Sprint(got))
			}
		}
	}
}
