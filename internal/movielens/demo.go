package movielens

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
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
// so temporal splits work. Synth draws catalogues of any size from the same
// model.
func Demo(seed uint64) *Dataset {
	w := newWorld(seed, DemoMovies, "Demo Movie")
	for u := range DemoUsers {
		t := w.user(u)
		ranked := w.pickAll(t, DemoMovies)
		w.rate(u, t, ranked[:min(20+int(47*w.rng.ExpFloat64()), 250)])
	}
	return w.ds
}

// SynthOptions sizes a Synth catalogue.
type SynthOptions struct {
	Movies  int // catalogue size
	Users   int
	Ratings int // total ratings, at least one per user
}

// Bounds of Synth's sizes: what a machine with a few GiB generates (the
// scale benchmark draws 1M movies); ids and counts stay int32.
const (
	maxSynthMovies  = 2_000_000
	maxSynthUsers   = 2_000_000
	maxSynthRatings = 20_000_000
)

// synthSpan bounds one user's ratings' time span: 20 years after
// demoStart, so no rating is in the future.
const synthSpan = 20 * 365 * 86400

// Validate reports every problem with o at once.
func (o SynthOptions) Validate() error {
	var errs []error
	if o.Movies < 1 || o.Movies > maxSynthMovies {
		errs = append(errs, fmt.Errorf("movielens: synth: movies = %d not in [1, %d]", o.Movies, maxSynthMovies))
	}
	if o.Users < 1 || o.Users > maxSynthUsers {
		errs = append(errs, fmt.Errorf("movielens: synth: users = %d not in [1, %d]", o.Users, maxSynthUsers))
	}
	if o.Ratings < o.Users || o.Ratings > maxSynthRatings || int64(o.Ratings) > int64(o.Users)*int64(o.Movies) {
		errs = append(errs, fmt.Errorf("movielens: synth: ratings = %d not in [users %d, min(users × movies, %d)]", o.Ratings, o.Users, maxSynthRatings))
	}
	return errors.Join(errs...)
}

// Synth returns a synthetic ML-1M-layout dataset of o's size, the same for
// the same seed, drawn from Demo's model: movies with 1–3 genres, years
// and a Zipf-like popularity; users whose gender, age and occupation shape
// their genre and year taste; each user's ratings (as many as an
// exponential draw gives, scaled so they sum to o.Ratings) picked without
// replacement in proportion to popularity × e^(1.5·affinity) and rated by
// affinity, at increasing timestamps. For large catalogues a user's
// movies are chosen among candidates drawn by popularity (a few times as
// many as the user rates), so the cost grows with the ratings, not with
// users × movies; titles are "Synth Movie N (YEAR)".
func Synth(o SynthOptions, seed uint64) (*Dataset, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	w := newWorld(seed, o.Movies, "Synth Movie")
	counts := synthCounts(w.rng, o)
	w.ds.Ratings = make([]Rating, 0, o.Ratings)
	// Cumulative popularity, to draw candidates; stamp[m] == u+1 marks a
	// movie already drawn for user u.
	cum := make([]float64, o.Movies)
	sum := 0.0
	for m, lp := range w.logPop {
		sum += math.Exp(lp)
		cum[m] = sum
	}
	stamp := make([]int32, o.Movies)
	var cands []synthCand
	for u := range o.Users {
		t := w.user(u)
		n := counts[u]
		if 4*n >= o.Movies {
			w.rate(u, t, w.pickAll(t, n))
			continue
		}
		cands = cands[:0]
		for range 4*n + 50 {
			m := min(sort.SearchFloat64s(cum, w.rng.Float64()*sum), o.Movies-1)
			if stamp[m] == int32(u+1) {
				continue
			}
			stamp[m] = int32(u + 1)
			cands = append(cands, synthCand{score: 1.5*w.affinity(m, t) + gumbel(w.rng), m: m})
		}
		for len(cands) < n { // few distinct candidates: fill uniformly
			if m := w.rng.IntN(o.Movies); stamp[m] != int32(u+1) {
				stamp[m] = int32(u + 1)
				cands = append(cands, synthCand{score: 1.5*w.affinity(m, t) + gumbel(w.rng), m: m})
			}
		}
		sortCands(cands)
		w.rate(u, t, cands[:n])
	}
	return w.ds, nil
}

// synthCounts draws each user's number of ratings (Demo's shape: a floor
// plus an exponential tail) and scales them to sum to o.Ratings, each
// within [1, o.Movies].
func synthCounts(rng *rand.Rand, o SynthOptions) []int {
	mean := float64(o.Ratings) / float64(o.Users)
	floor := min(20, mean/2)
	raw := make([]float64, o.Users)
	total := 0.0
	for u := range raw {
		raw[u] = floor + (mean-floor)*rng.ExpFloat64()
		total += raw[u]
	}
	counts := make([]int, o.Users)
	left := o.Ratings
	for u, x := range raw {
		counts[u] = min(max(int(x*float64(o.Ratings)/total), 1), o.Movies)
		left -= counts[u]
	}
	// Hand out (or take back) the rounding difference one at a time.
	for left != 0 {
		u := rng.IntN(o.Users)
		switch {
		case left > 0 && counts[u] < o.Movies:
			counts[u]++
			left--
		case left < 0 && counts[u] > 1:
			counts[u]--
			left++
		}
	}
	return counts
}

// world is Demo's and Synth's generative model: the movies with their
// genres and popularity, the users drawn so far and their ratings.
type world struct {
	rng    *rand.Rand
	genres []string
	gi     map[string]int
	movieG [][]int
	logPop []float64
	ds     *Dataset
	taste  []float64
	all    []synthCand
}

// taste is one user's genre taste and preferred year.
type taste struct {
	genre    []float64
	prefYear float64
}

type synthCand struct {
	score float64
	m     int
}

// newWorld draws n movies: 1–3 genres drawn by ML-1M-like frequency,
// recent years more common, Zipf-like popularity over a random order.
func newWorld(seed uint64, n int, title string) *world {
	rng := rand.New(rand.NewPCG(seed, 0x7d3a_91c4_de40_5eed))
	genres := ML1MGenres()
	w := &world{rng: rng, genres: genres, gi: make(map[string]int, len(genres)), ds: &Dataset{Layout: LayoutML1M}}
	for i, g := range genres {
		w.gi[g] = i
	}
	genreW := make([]float64, len(genres))
	for i, g := range genres {
		genreW[i] = demoGenreWeight(g)
	}
	w.movieG = make([][]int, n)
	w.logPop = make([]float64, n)
	w.ds.Movies = make([]Movie, 0, n)
	rank := rng.Perm(n)
	wk := make([]float64, len(genres))
	for m := range n {
		k := 1
		if u := rng.Float64(); u > 0.85 {
			k = 3
		} else if u > 0.5 {
			k = 2
		}
		copy(wk, genreW)
		for range k {
			g := weighted(rng, wk)
			wk[g] = 0
			w.movieG[m] = append(w.movieG[m], g)
		}
		slices.Sort(w.movieG[m])
		names := make([]string, len(w.movieG[m]))
		for j, g := range w.movieG[m] {
			names[j] = genres[g]
		}
		u := rng.Float64()
		year := 2000 - int(50*u*u)
		w.logPop[m] = -0.9 * math.Log(float64(rank[m]+5))
		w.ds.Movies = append(w.ds.Movies, Movie{
			ID:     MovieID(m + 1),
			Title:  title + " " + strconv.Itoa(m+1) + " (" + strconv.Itoa(year) + ")",
			Year:   year,
			Genres: names,
		})
	}
	w.taste = make([]float64, len(genres))
	return w
}

var demoAges = [...]int{1, 18, 25, 35, 45, 50, 56}

var demoAgeW = []float64{0.04, 0.18, 0.35, 0.20, 0.09, 0.08, 0.06}

// user draws user u (id u+1) and their taste (valid until the next call).
func (w *world) user(u int) taste {
	rng := w.rng
	gender := "M"
	if rng.Float64() < 0.3 {
		gender = "F"
	}
	age := demoAges[weighted(rng, demoAgeW)]
	occ, _ := OccupationByCode(rng.IntN(len(occupationNames)))
	// Keep the obvious pairs plausible, as in ML-1M.
	switch {
	case occ == "K-12 student":
		age = demoAges[rng.IntN(2)]
	case occ == "retired":
		age = demoAges[5+rng.IntN(2)]
	case age == 1:
		occ = "K-12 student"
	}
	w.ds.Users = append(w.ds.Users, User{
		ID:         UserID(u + 1),
		Gender:     gender,
		Age:        age,
		Occupation: occ,
		Zip:        fmt.Sprintf("%05d", rng.IntN(100000)),
	})
	for g := range w.taste {
		w.taste[g] = 0.4 * rng.NormFloat64()
	}
	for g, v := range demoGenderTaste(gender) {
		w.taste[w.gi[g]] += v
	}
	for g, v := range demoAgeTaste(age) {
		w.taste[w.gi[g]] += v
	}
	for _, g := range demoOccupationTaste(occ) {
		w.taste[w.gi[g]] += 1.1
	}
	return taste{genre: w.taste, prefYear: 1998 - 0.8*float64(max(age, 18)-18) + 4*rng.NormFloat64()}
}

// affinity is how much a user of taste t likes movie m.
func (w *world) affinity(m int, t taste) float64 {
	a := 0.0
	for _, g := range w.movieG[m] {
		a += t.genre[g]
	}
	a /= math.Sqrt(float64(len(w.movieG[m])))
	return a - math.Abs(float64(w.ds.Movies[m].Year)-t.prefYear)/20
}

// pickAll draws n movies without replacement in proportion to
// exp(1.5·affinity + popularity) by a Gumbel-top-n over the whole
// catalogue.
func (w *world) pickAll(t taste, n int) []synthCand {
	w.all = w.all[:0]
	for m := range w.movieG {
		w.all = append(w.all, synthCand{score: 1.5*w.affinity(m, t) + w.logPop[m] + gumbel(w.rng), m: m})
	}
	sortCands(w.all)
	return w.all[:n]
}

func sortCands(c []synthCand) {
	slices.SortFunc(c, func(a, b synthCand) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.m, b.m)
	})
}

// rate appends user u's ratings of picked, in a random order at increasing
// timestamps, each rated by affinity plus noise.
func (w *world) rate(u int, t taste, picked []synthCand) {
	rng := w.rng
	rng.Shuffle(len(picked), func(i, j int) { picked[i], picked[j] = picked[j], picked[i] })
	ts := int64(demoStart + rng.IntN(90*86400))
	gap := func() int64 { return int64(30 + rng.IntN(3*86400)) } // 30 s to 3 days
	if len(picked)*(30+3*86400) > synthSpan {
		// So many that 3-day gaps would reach the future (a wrong clock
		// to LoadDir): spread them evenly over synthSpan.
		n := synthSpan / len(picked)
		gap = func() int64 { return int64(1 + rng.IntN(n)) }
	}
	for _, c := range picked {
		ts += gap()
		v := math.Round(3.2 + 0.8*w.affinity(c.m, t) + 0.8*rng.NormFloat64())
		w.ds.Ratings = append(w.ds.Ratings, Rating{
			User:  UserID(u + 1),
			Movie: MovieID(c.m + 1),
			Value: float32(min(max(v, 1), 5)),
			Time:  ts,
		})
	}
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
