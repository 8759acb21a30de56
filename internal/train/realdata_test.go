package train

// A test-only harness that trains on the real MovieLens splits and reports
// Recall@10 under the DESIGN.md protocol (full ranking over all movies, the
// user's train movies removed). It runs only with
// TOWERRECALL_DATA=/path/to/shared/data; TOWERRECALL_SPLITS (comma list,
// default "ml-100k/user-temporal,ml-1m/user-temporal") picks the splits and
// TOWERRECALL_TUNE (e.g. "epochs=10,lr=0.005,temp=0.05,hidden=64,obj=softmax")
// overrides the defaults for tuning runs.

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/nn"
	"github.com/towerrecall/towerrecall/internal/tower"
)

type realSet struct {
	users      []movielens.User
	movies     []movielens.Movie
	train      []movielens.Rating
	test       []movielens.Rating
	layoutML1M bool
}

func readLines(t *testing.T, path string, fn func(fields []string)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sep := "\t"
	switch {
	case strings.HasSuffix(path, ".dat") && !strings.Contains(path, "ml-100k"):
		sep = "::"
	case strings.Contains(filepath.Base(path), "u."):
		sep = "|"
	}
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		fn(strings.Split(line, sep))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(strings.TrimSpace(s)); return n }

func titleYear(title string) int {
	title = strings.TrimSpace(title)
	if i := strings.LastIndex(title, "("); i >= 0 && strings.HasSuffix(title, ")") {
		return atoi(title[i+1 : len(title)-1])
	}
	return 0
}

func loadReal(t *testing.T, root, split string) realSet {
	var s realSet
	ds := strings.Split(split, "/")[0]
	if ds == "ml-1m" {
		s.layoutML1M = true
		readLines(t, filepath.Join(root, "ml-1m/users.dat"), func(f []string) {
			occ, _ := movielens.OccupationByCode(atoi(f[3]))
			s.users = append(s.users, movielens.User{ID: movielens.UserID(atoi(f[0])), Gender: f[1], Age: atoi(f[2]), Occupation: occ, Zip: f[4]})
		})
		readLines(t, filepath.Join(root, "ml-1m/movies.dat"), func(f []string) {
			s.movies = append(s.movies, movielens.Movie{ID: movielens.MovieID(atoi(f[0])), Title: f[1], Year: titleYear(f[1]), Genres: strings.Split(f[2], "|")})
		})
	} else {
		readLines(t, filepath.Join(root, "ml-100k/u.user"), func(f []string) {
			occ, _ := movielens.CanonicalOccupation(f[3])
			s.users = append(s.users, movielens.User{ID: movielens.UserID(atoi(f[0])), Age: atoi(f[1]), Gender: f[2], Occupation: occ, Zip: f[4]})
		})
		var genres []string
		readLines(t, filepath.Join(root, "ml-100k/u.genre"), func(f []string) { genres = append(genres, f[0]) })
		readLines(t, filepath.Join(root, "ml-100k/u.item"), func(f []string) {
			m := movielens.Movie{ID: movielens.MovieID(atoi(f[0])), Title: f[1], Year: titleYear(f[1])}
			if d := f[2]; m.Year == 0 && len(d) >= 4 {
				m.Year = atoi(d[len(d)-4:])
			}
			for i, flag := range f[len(f)-19:] {
				if flag == "1" && i < len(genres) {
					m.Genres = append(m.Genres, genres[i])
				}
			}
			s.movies = append(s.movies, m)
		})
	}
	rd := func(name string) []movielens.Rating {
		var out []movielens.Rating
		readLines(t, filepath.Join(root, "splits", split, name), func(f []string) {
			out = append(out, movielens.Rating{User: movielens.UserID(atoi(f[0])), Movie: movielens.MovieID(atoi(f[1])), Value: float32(atoi(f[2])), Time: int64(atoi(f[3]))})
		})
		return out
	}
	s.train, s.test = rd("train.dat"), rd("test.dat")
	return s
}

type realData struct {
	data   Data
	enc    *feature.Encoder
	userIx map[movielens.UserID]int32
	test   map[int32][]int32 // user → test movies
	seen   map[int32][]int32 // user → train movies
}

func buildReal(t *testing.T, s realSet, userFields, movieFields []feature.Field) realData {
	enc, err := feature.Fit(userFields, movieFields, s.users, s.movies, s.train)
	if err != nil {
		t.Fatal(err)
	}
	r := realData{enc: enc, userIx: map[movielens.UserID]int32{}, test: map[int32][]int32{}, seen: map[int32][]int32{}}
	for i, u := range s.users {
		r.userIx[u.ID] = int32(i)
		r.data.Users = append(r.data.Users, enc.EncodeUser(feature.FromUser(u)))
	}
	movieIx := map[movielens.MovieID]int32{}
	for j, m := range s.movies {
		movieIx[m.ID] = int32(j)
		r.data.Movies = append(r.data.Movies, enc.EncodeMovie(feature.FromMovie(m)))
	}
	times := make([]int64, 0, len(s.train))
	for _, x := range s.train {
		u, m := r.userIx[x.User], movieIx[x.Movie]
		r.data.Train = append(r.data.Train, Interaction{User: u, Movie: m, Rating: x.Value})
		times = append(times, x.Time)
		r.seen[u] = append(r.seen[u], m)
	}
	k := float64(DefaultRecency)
	if v := os.Getenv("TOWERRECALL_RECENCY"); v != "" {
		k, _ = strconv.ParseFloat(v, 64)
	}
	if err := WeightByRecency(r.data.Train, times, k); err != nil {
		t.Fatal(err)
	}
	for _, x := range s.test {
		u, m := r.userIx[x.User], movieIx[x.Movie]
		r.test[u] = append(r.test[u], m)
		r.data.Valid = append(r.data.Valid, Interaction{User: u, Movie: m, Rating: x.Value})
	}
	return r
}

// recall10 is Recall@10 under the protocol, and the mean of the predicted
// ratings' RMSE when the model has a head.
func (r realData) recall10(m *tower.Model) (recall, rmse float64) {
	dim := m.Dim()
	mv := make([]float32, len(r.data.Movies)*dim)
	for j, e := range r.data.Movies {
		m.MovieVector(mv[j*dim:j*dim+dim], e)
	}
	uv := make([]float32, dim)
	scores := make([]float32, len(r.data.Movies))
	excluded := make([]bool, len(r.data.Movies))
	var sum, se float64
	n := 0
	users := make([]int32, 0, len(r.test))
	for u := range r.test {
		users = append(users, u)
	}
	slices.Sort(users)
	top := make([]int32, 0, 10)
	for _, u := range users {
		m.UserVector(uv, r.data.Users[u])
		for j := range scores {
			scores[j] = nn.Dot(uv, mv[j*dim:j*dim+dim])
		}
		for _, j := range r.seen[u] {
			excluded[j] = true
		}
		top = top[:0]
		for j, s := range scores { // insertion into a top-10 list
			if excluded[j] {
				continue
			}
			if len(top) == 10 && s <= scores[top[9]] {
				continue
			}
			k := len(top)
			if k < 10 {
				top = append(top, 0)
			} else {
				k = 9
			}
			for k > 0 && scores[top[k-1]] < s {
				top[k] = top[k-1]
				k--
			}
			top[k] = int32(j)
		}
		for _, j := range r.seen[u] {
			excluded[j] = false
		}
		hits := 0
		for _, j := range top {
			if slices.Contains(r.test[u], j) {
				hits++
			}
		}
		sum += float64(hits) / float64(len(r.test[u]))
	}
	if m.HasRatingHead() {
		for _, x := range r.data.Valid {
			m.UserVector(uv, r.data.Users[x.User])
			p := m.PredictRating(nn.Dot(uv, mv[int(x.Movie)*dim:int(x.Movie)*dim+dim]))
			d := float64(p - x.Rating)
			se += d * d
			n++
		}
		rmse = sqrt(se / float64(n))
	}
	return sum / float64(len(users)), rmse
}

func sqrt(x float64) float64 {
	if x <= 0 {
		return 0
	}
	z := x
	for range 60 {
		z = (z + x/z) / 2
	}
	return z
}

func TestRealData(t *testing.T) {
	root := os.Getenv("TOWERRECALL_DATA")
	if root == "" {
		t.Skip("set TOWERRECALL_DATA to the shared data directory")
	}
	splits := "ml-100k/user-temporal,ml-1m/user-temporal"
	if s := os.Getenv("TOWERRECALL_SPLITS"); s != "" {
		splits = s
	}
	for _, split := range strings.Split(splits, ",") {
		t.Run(split, func(t *testing.T) {
			tc, cfg := tower.DefaultConfig(), DefaultConfig()
			uf, mf := tower.DefaultFields()
			tune := os.Getenv("TOWERRECALL_TUNE")
			if strings.Contains(tune, "obj=reference") {
				tc, cfg = tower.ReferenceConfig(), ReferenceConfig()
				uf, mf = tower.ReferenceFields()
			}
			if strings.Contains(tune, "obj=pointwise") {
				tc, cfg = tower.PointwiseConfig(), PointwiseConfig()
				uf, mf = tower.ReferenceFields()
			}
			for _, kv := range strings.Split(tune, ",") {
				k, v, _ := strings.Cut(kv, "=")
				f, _ := strconv.ParseFloat(v, 64)
				switch k {
				case "epochs":
					cfg.Epochs = int(f)
				case "lr":
					cfg.LearningRate = float32(f)
				case "temp":
					cfg.Temperature = float32(f)
				case "batch":
					cfg.BatchSize = int(f)
				case "workers":
					cfg.Workers = int(f)
				case "l2":
					cfg.L2 = float32(f)
				case "logq":
					cfg.LogQ = f != 0
				case "hidden":
					tc.Hidden = nil
					if f > 0 {
						tc.Hidden = []int{int(f)}
					}
				case "iddim":
					tc.UserEmbed[0], tc.MovieEmbed[0] = int(f), int(f)
				case "neg":
					cfg.UniformNegatives = int(f)
				case "dim":
					tc.Dim = int(f)
				case "sym":
					cfg.Symmetric = f != 0
				case "uw":
					cfg.UserWeight = float32(f)
				case "norm":
					tc.Normalize = f != 0
				case "seed":
					cfg.Seed = uint64(f)
				}
			}
			s := loadReal(t, root, split)
			r := buildReal(t, s, uf, mf)
			m, err := tower.New(tc, r.enc.VocabSizes(uf), r.enc.VocabSizes(mf), rand.New(rand.NewPCG(cfg.Seed, 99)))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Patience = 0
			res, err := Run(context.Background(), m, r.data, cfg, Hooks{OnEpoch: func(e EpochStats) {
				rec, rmse := r.recall10(m)
				t.Logf("epoch %2d loss %.4f  %7.0f ex/s  test Recall@10 %.4f  RMSE %.4f", e.Epoch, e.Loss, e.ExamplesPerSec, rec, rmse)
			}})
			if err != nil {
				t.Fatal(err)
			}
			rec, rmse := r.recall10(m)
			fmt.Printf("RESULT %s tune=%q users=%d movies=%d train=%d: Recall@10 %.4f RMSE %.4f median %.0f ex/s, %.1fs\n",
				split, tune, len(r.data.Users), len(r.data.Movies), len(r.data.Train), rec, rmse, res.ExamplesPerSec, res.Seconds)
		})
	}
}
