package movielens

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Size of the Demo dataset.
const (
	DemoUsers  = 600
	DemoMovies = 400
)

// demoStart is the first demo timestamp, the first rating of ML-1M
// (2000-04-25).
const demoStart = 956703932

// Demo returns a small synthetic dataset in the ML-1M layout (600 users, 400
// movies, about 40k ratings), the same for the same seed. It has the
// structure a two-tower model can learn from user features alone: a user's
// genre taste is a sum of effects of their gender, age and occupation plus
// personal noise, older users lean to older movies, and movies differ in
// popularity. Users watch the movies they like best (sampled without
// replacement), rate them by affinity, and every user's timestamps increase,
// so temporal splits work.
func Demo(seed uint64) *Dataset {
	rng := rand.New(rand.NewPCG(seed, 0x7d3a_91c4_de40_5eed))
	genres := ML1MGenres()
	gi := make(map[string]int, len(genres))
	for i, g := range genres {
		gi[g] = i
	}

	// Movies: 1–3 genres drawn by ML-1M-like frequency, recent years more
	// common, Zipf-like popularity over a random order.
	genreW := make([]float64, len(genres))
	for i, g := range genres {
		genreW[i] = demoGenreWeight(g)
	}
	ds := &Dataset{Layout: LayoutML1M}
	movieG := make([][]int, DemoMovies)
	logPop := make([]float64, DemoMovies)
	rank := rng.Perm(DemoMovies)
	for m := range DemoMovies {
		k := 1
		if u := rng.Float64(); u > 0.85 {
			k = 3
		} else if u > 0.5 {
			k = 2
		}
		w := slices.Clone(genreW)
		for range k {
			g := weighted(rng, w)
			w[g] = 0
			movieG[m] = append(movieG[m], g)
		}
		slices.Sort(movieG[m])
		names := make([]string, len(movieG[m]))
		for j, g := range movieG[m] {
			names[j] = genres[g]
		}
		u := rng.Float64()
		year := 2000 - int(50*u*u)
		logPop[m] = -0.9 * math.Log(float64(rank[m]+5))
		ds.Movies = append(ds.Movies, Movie{
			ID:     MovieID(m + 1),
			Title:  fmt.Sprintf("Demo Movie %d (%d)", m+1, year),
			Year:   year,
			Genres: names,
		})
	}

	ages := [...]int{1, 18, 25, 35, 45, 50, 56}
	ageW := []float64{0.04, 0.18, 0.35, 0.20, 0.09, 0.08, 0.06}
	taste := make([]float64, len(genres))
	type cand struct {
		score float64
		m     int
	}
	cands := make([]cand, DemoMovies)
	for u := range DemoUsers {
		gender := "M"
		if rng.Float64() < 0.3 {
			gender = "F"
		}
		age := ages[weighted(rng, ageW)]
		occ, _ := OccupationByCode(rng.IntN(len(occupationNames)))
		// Keep the obvious pairs plausible, as in ML-1M.
		switch {
		case occ == "K-12 student":
			age = ages[rng.IntN(2)]
		case occ == "retired":
			age = ages[5+rng.IntN(2)]
		case age == 1:
			occ = "K-12 student"
		}
		ds.Users = append(ds.Users, User{
			ID:         UserID(u + 1),
			Gender:     gender,
			Age:        age,
			Occupation: occ,
			Zip:        fmt.Sprintf("%05d", rng.IntN(100000)),
		})

		for g := range taste {
			taste[g] = 0.4 * rng.NormFloat64()
		}
		for g, v := range demoGenderTaste(gender) {
			taste[gi[g]] += v
		}
		for g, v := range demoAgeTaste(age) {
			taste[gi[g]] += v
		}
		for _, g := range demoOccupationTaste(occ) {
			taste[gi[g]] += 1.1
		}
		prefYear := 1998 - 0.8*float64(max(age, 18)-18) + 4*rng.NormFloat64()

		// Affinity of every movie, then a Gumbel-top-n draw: n movies
		// without replacement, in proportion to exp(affinity + popularity).
		aff := make([]float64, DemoMovies)
		for m := range DemoMovies {
			a := 0.0
			for _, g := range movieG[m] {
				a += taste[g]
			}
			a /= math.Sqrt(float64(len(movieG[m])))
			a -= math.Abs(float64(ds.Movies[m].Year)-prefYear) / 20
			aff[m] = a
			cands[m] = cand{score: 1.5*a + logPop[m] + gumbel(rng), m: m}
		}
		slices.SortFunc(cands, func(a, b cand) int {
			if c := cmp.Compare(b.score, a.score); c != 0 {
				return c
			}
			return cmp.Compare(a.m, b.m)
		})
		n := min(20+int(47*rng.ExpFloat64()), 250)
		picked := cands[:n]
		rng.Shuffle(len(picked), func(i, j int) { picked[i], picked[j] = picked[j], picked[i] })
		t := int64(demoStart + rng.IntN(90*86400))
		for _, c := range picked {
			t += int64(30 + rng.IntN(3*86400))
			v := math.Round(3.2 + 0.8*aff[c.m] + 0.8*rng.NormFloat64())
			ds.Ratings = append(ds.Ratings, Rating{
				User:  UserID(u + 1),
				Movie: MovieID(c.m + 1),
				Value: float32(min(max(v, 1), 5)),
				Time:  t,
			})
		}
	}
	return ds
}

// weighted draws an index with probability proportional to w.
func weighted(rng *rand.Rand, w []float64) int {
	sum := 0.0
	for _, x := range w {
		sum += x
	}
	x := rng.Float64() * sum
	for i, v := range w {
		if x < v {
			return i
		}
		x -= v
	}
	for i := len(w) - 1; i >= 0; i-- {
		if w[i] > 0 {
			return i
		}
	}
	return 0
}

func gumbel(rng *rand.Rand) float64 {
	u := rng.Float64()
	for u == 0 {
		u = rng.Float64()
	}
	return -math.Log(-math.Log(u))
}

// demoGenreWeight is roughly how common a genre is among ML-1M movies.
func demoGenreWeight(g string) float64 {
	switch g {
	case "Drama":
		return 0.25
	case "Comedy":
		return 0.20
	case "Action", "Thriller", "Romance":
		return 0.07
	case "Horror":
		return 0.05
	case "Adventure", "Sci-Fi", "Children's":
		return 0.04
	case "Crime":
		return 0.03
	case "War", "Documentary", "Musical", "Mystery":
		return 0.02
	case "Animation", "Fantasy":
		return 0.015
	default: // Western, Film-Noir
		return 0.01
	}
}

// demoGenderTaste is the genre taste shared by users of one gender.
func demoGenderTaste(gender string) map[string]float64 {
	if gender == "F" {
		return map[string]float64{
			"Romance": 1.2, "Musical": 0.8, "Drama": 0.5, "Children's": 0.5,
			"Action": -0.6, "War": -0.6, "Sci-Fi": -0.5, "Western": -0.5, "Horror": -0.3,
		}
	}
	return map[string]float64{
		"Action": 0.8, "Sci-Fi": 0.7, "War": 0.6, "Western": 0.5, "Thriller": 0.4,
		"Crime": 0.3, "Romance": -0.5, "Musical": -0.5,
	}
}

// demoAgeTaste is the genre taste shared by users of one ML-1M age bucket.
func demoAgeTaste(age int) map[string]float64 {
	switch {
	case age < 25:
		return map[string]float64{
			"Animation": 1.0, "Children's": 1.0, "Horror": 0.6, "Comedy": 0.5, "Fantasy": 0.5,
			"Film-Noir": -0.8, "Western": -0.6, "Documentary": -0.5, "War": -0.4,
		}
	case age < 45:
		return map[string]float64{"Thriller": 0.4, "Sci-Fi": 0.3, "Crime": 0.3, "Children's": -0.3}
	default:
		return map[string]float64{
			"Film-Noir": 1.0, "War": 0.8, "Western": 0.8, "Drama": 0.6, "Documentary": 0.6,
			"Mystery": 0.5, "Horror": -0.8, "Animation": -0.7, "Children's": -0.5,
		}
	}
}

// demoOccupationTaste names the two genres an occupation favours.
func demoOccupationTaste(occ string) [2]string {
	switch occ {
	case "academic/educator":
		return [2]string{"Documentary", "Drama"}
	case "artist":
		return [2]string{"Documentary", "Film-Noir"}
	case "clerical/admin":
		return [2]string{"Comedy", "Romance"}
	case "college/grad student":
		return [2]string{"Comedy", "Horror"}
	case "customer service":
		return [2]string{"Comedy", "Action"}
	case "doctor/health care":
		return [2]string{"Drama", "Mystery"}
	case "executive/managerial":
		return [2]string{"Thriller", "Crime"}
	case "farmer":
		return [2]string{"Western", "Adventure"}
	case "homemaker":
		return [2]string{"Romance", "Musical"}
	case "K-12 student":
		return [2]string{"Animation", "Children's"}
	case "lawyer":
		return [2]string{"Crime", "Thriller"}
	case "programmer":
		return [2]string{"Sci-Fi", "Action"}
	case "retired":
		return [2]string{"Western", "War"}
	case "sales/marketing":
		return [2]string{"Comedy", "Romance"}
	case "scientist":
		return [2]string{"Sci-Fi", "Documentary"}
	case "self-employed":
		return [2]string{"Adventure", "Mystery"}
	case "technician/engineer":
		return [2]string{"Sci-Fi", "Thriller"}
	case "tradesman/craftsman":
		return [2]string{"Action", "War"}
	case "unemployed":
		return [2]string{"Horror", "Comedy"}
	case "writer":
		return [2]string{"Drama", "Film-Noir"}
	default: // other
		return [2]string{"Fantasy", "Adventure"}
	}
}
