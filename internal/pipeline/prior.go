package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/eval"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/tower"
)

// The time-aware popularity prior. The towers score taste (their softmax
// is logQ-corrected, so the cosine carries little popularity); what is
// popular now is a separate per-movie bias, log of the movie's smoothed
// share of the recent ratings, counted with exponential decay by age. It
// is served through one extra vector dimension (tower.Prior), and its
// half-life and weight are chosen on validation.

const secondsPerDay = 86400

// priorBias returns each movie's bias from ratings rs, each weighing
// 2^(−age/halfLifeDays) where age is its distance in days from the newest
// rating (halfLifeDays 0: no decay): log((c_m + 1) / (Σc + M)), one
// fresh rating's worth of smoothing. It also returns the bias of a movie
// without ratings, the newest rating's time, and the number counted (the
// ratings of ix's movies).
func priorBias(ix *Index, rs []movielens.Rating, halfLifeDays float64) (bias []float32, def float32, now int64, counted int) {
	for i, r := range rs {
		if i == 0 || r.Time > now {
			now = r.Time
		}
	}
	counts := make([]float64, len(ix.ds.Movies))
	total := 0.0
	for _, r := range rs {
		m, ok := ix.movies[r.Movie]
		if !ok {
			continue
		}
		w := 1.0
		if halfLifeDays > 0 {
			w = math.Exp2(-float64(now-r.Time) / (halfLifeDays * secondsPerDay))
		}
		counts[m] += w
		total += w
		counted++
	}
	norm := math.Log(total + float64(len(counts)))
	bias = make([]float32, len(counts))
	for m, c := range counts {
		bias[m] = float32(math.Log(c+1) - norm)
	}
	return bias, float32(-norm), now, counted
}

// PriorChoice is one setting of the prior and its validation score.
type PriorChoice = artifact.PriorChoice

// minRecentUsers is the fewest validation new users that choose the
// recent weight: with fewer, one user's hit moves their Recall@10 by more
// than the weights differ, and they get the known users' weight.
const minRecentUsers = 30

// recentView is one validation view's new users as the new-user protocol
// sees them (newUserSplit): users the model knows only by the recent
// movies they send, whose prior weight is chosen apart.
type recentView struct {
	split *eval.Split
	users []feature.Encoded // every user, encoded with the history sent
	n     int               // users with positives
}

// newUserViews returns, for each view of val with new users (absent from
// the towers' training ratings and the other views) who rated more than n
// movies in it, their protocol: the first n sent as recent movies (at most
// histLen), the rest positives.
func newUserViews(enc *feature.Encoder, ds *movielens.Dataset, ix *Index, val *validation, n, histLen int) []recentView {
	var out []recentView
	for i, view := range val.views {
		known := slices.Clone(val.fitTrain)
		for j, o := range val.views {
			if j != i {
				known = append(known, o...)
			}
		}
		if split, users, count := newUserSplit(enc, ds, ix, known, view, n, histLen); count > 0 {
			out = append(out, recentView{split: split, users: users, n: count})
		}
	}
	return out
}

// choosePrior scores every (half-life, weight) pair of the grid on each
// view of val with the towers of model (towers only, no prior) and the
// bias counted from rs, separately for known users and cold users
// (idFields all unknown), whose weights are chosen apart: a user new to
// the model leans on popularity more than one whose taste it knows. The
// best half-life maximises val's objective (Recall@10 over all users of
// the one view; with two views the mean of each view's Recall@10 over its
// popularity's), with each group's best weight for that objective (the
// first on ties: weight 0, no prior, is tried first). Known users' weight
// is chosen jointly with their feature share (shares, 0 first: their own
// query; see tower.Prior.FeatureShare), which mixes their query with
// their features-only one (idFields withheld). users and movies are
// encoded in the splits' index order. With recent views of at least
// minRecentUsers users, the weight of users known only by their recent
// movies is then chosen for that half-life on their pooled Recall@10 (it
// does not enter the objective); otherwise it is the known users'. It
// returns the choice and every setting measured.
func choosePrior(ctx context.Context, model *tower.Model, users, movies []feature.Encoded, idFields []int, val *validation, recent []recentView, ix *Index,
	rs []movielens.Rating, halfLives, weights, shares []float64, workers int) (PriorChoice, []PriorChoice, error) {
	if model.Prior() != nil {
		return PriorChoice{}, nil, fmt.Errorf("pipeline: choose prior: the model already has one")
	}
	g := priorGrid{
		views: priorGroups(model, users, idFields, val), halfLives: halfLives, shares: shares, cold: len(idFields) > 0,
		pos: slices.DeleteFunc(slices.Clone(weights), func(w float64) bool { return w <= 0 }),
	}
	ws := []float32{0} // weight 0 first: no prior
	for _, w := range g.pos {
		ws = append(ws, float32(w))
	}
	biases := make([][]float32, len(halfLives))
	for h, hl := range halfLives {
		biases[h], _, _, _ = priorBias(ix, rs, hl)
	}
	tow := NewScorer(model, users, movies)
	if err := g.measure(ctx, tow, mixedScorers(tow, model, users, idFields, shares), biases, ws, workers); err != nil {
		return PriorChoice{}, nil, err
	}
	best, bestH, all := g.choose()
	for _, rv := range recent {
		best.RecentUsers += rv.n
	}
	best.RecentWeight = best.Weight // as known users, unless enough new users choose
	if bestH < 0 || best.RecentUsers < minRecentUsers {
		return best, all, nil
	}
	j, r, err := chooseRecentWeight(ctx, model, movies, recent, biases[bestH], ws, workers)
	if err != nil {
		return best, all, err
	}
	best.RecentWeight = 0
	if j > 0 {
		best.RecentWeight = g.pos[j-1]
	}
	best.ValidRecent = r
	return best, all, nil
}

// mixedScorers returns one scorer per feature share: the towers' own
// (share 0, tow itself), then each known user's query mixed with their
// features-only one (tower.MixFeatures). Without an id field there is
// nothing to withhold, and only tow is returned.
func mixedScorers(tow *Scorer, model *tower.Model, users []feature.Encoded, idFields []int, shares []float64) []*Scorer {
	mixed := []*Scorer{tow}
	if len(shares) < 2 || len(idFields) == 0 {
		return mixed
	}
	feat := make([]float32, model.TowerDim())
	qs := make([][][]float32, len(shares)-1)
	for x := range qs {
		qs[x] = make([][]float32, len(users))
	}
	for u, q := range tow.users {
		model.FeaturesOnly(feat, users[u], idFields)
		for x, s := range shares[1:] {
			qs[x][u] = slices.Clone(q)
			tower.MixFeatures(qs[x][u], feat, float32(s))
		}
	}
	for x := range qs {
		mixed = append(mixed, tow.withUsers(qs[x]))
	}
	return mixed
}

// priorGrid is choosePrior's grid and what it measured: for each known
// users' feature share x, half-life h and weight j (0, then pos[j-1]),
// each group's Recall@10 in each view.
type priorGrid struct {
	views     []priorView
	halfLives []float64
	pos       []float64 // the positive weights
	shares    []float64 // the known users' feature shares, 0 first
	cold      bool      // users can be cold (the model has id fields)
	measured  [][][]recalls
}

// users counts the users with positives in each group, over the views.
func (g *priorGrid) users() (nk, nc float64) {
	for _, v := range g.views {
		nk, nc = nk+v.nk, nc+v.nc
	}
	return nk, nc
}

// recalls are one setting's Recall@10 of each group in each view.
type recalls struct{ known, cold []float64 }

// measure scores every setting: the known users once per scorer of mixed
// (one per share), the cold users once with tow (their query has no id to
// mix), each with every bias and weight ws.
func (g *priorGrid) measure(ctx context.Context, tow *Scorer, mixed []*Scorer, biases [][]float32, ws []float32, workers int) error {
	score := func(sc *Scorer, sp *eval.Split, n float64) ([][]float64, error) {
		if n == 0 {
			r := make([][]float64, len(biases))
			for h := range r {
				r[h] = make([]float64, len(ws))
			}
			return r, nil
		}
		return eval.BlendRecall(ctx, sc, biases, ws, sp, 10, workers)
	}
	g.measured = make([][][]recalls, len(mixed))
	for x := range g.measured {
		g.measured[x] = make([][]recalls, len(biases))
		for h := range g.measured[x] {
			g.measured[x][h] = make([]recalls, len(ws))
		}
	}
	for i := range g.views {
		c, err := score(tow, &g.views[i].cold, g.views[i].nc)
		if err != nil {
			return err
		}
		for x, sc := range mixed {
			k, err := score(sc, &g.views[i].known, g.views[i].nk)
			if err != nil {
				return err
			}
			for h := range biases {
				for j := range ws {
					r := &g.measured[x][h][j]
					r.known, r.cold = append(r.known, k[h][j]), append(r.cold, c[h][j])
				}
			}
		}
	}
	return nil
}

// gainKnown and gainCold are a group's share of the objective.
func (g *priorGrid) gainKnown(r recalls) (gain float64) {
	for i, v := range g.views {
		gain += v.w * v.nk * r.known[i]
	}
	return gain
}

func (g *priorGrid) gainCold(r recalls) (gain float64) {
	for i, v := range g.views {
		gain += v.w * v.nc * r.cold[i]
	}
	return gain
}

// choice is the setting whose known users score k and cold users c.
func (g *priorGrid) choice(h, wk, wc, share float64, k, c recalls) PriorChoice {
	pc := PriorChoice{HalfLifeDays: h, Weight: wk, ColdWeight: wc, FeatureShare: share, Valid: g.gainKnown(k) + g.gainCold(c)}
	for i, v := range g.views {
		pc.ValidKnown += v.nk * k.known[i]
		pc.ValidCold += v.nc * c.cold[i]
		if len(g.views) > 1 {
			pc.ValidViews = append(pc.ValidViews, (v.nk*k.known[i]+v.nc*c.cold[i])/max(v.nk+v.nc, 1))
		}
	}
	nk, nc := g.users()
	pc.ValidKnown /= max(nk, 1)
	pc.ValidCold /= max(nc, 1)
	return pc
}

// choose returns the best setting, its half-life's index (-1: no prior)
// and every setting measured, as the manifest records them (each weight
// for both groups).
func (g *priorGrid) choose() (best PriorChoice, bestH int, all []PriorChoice) {
	m := g.measured
	nk, nc := g.users()
	none := m[0][0][0] // own query, weight 0, no prior: the half-life does not matter
	best, bestH = g.choice(0, 0, 0, 0, none, none), -1
	all = []PriorChoice{best}
	for x := 1; x < len(m); x++ { // the other shares without a prior
		pc := g.choice(0, 0, 0, g.shares[x], m[x][0][0], none)
		all = append(all, pc)
		if pc.Valid > best.Valid {
			best = pc
		}
	}
	for i, h := range g.halfLives {
		for x := range m {
			for j, w := range g.pos {
				all = append(all, g.choice(h, w, w, g.shares[x], m[x][i][j+1], m[x][i][j+1]))
			}
		}
		// Each group's best weight: cold users' with their own query,
		// known users' jointly with their share.
		wc, rc := 0.0, none
		for j, w := range g.pos {
			if r := m[0][i][j+1]; g.gainCold(r) > g.gainCold(rc) {
				wc, rc = w, r
			}
		}
		wk, xk, rk := 0.0, 0, none
		for x := range m {
			for j, r := range m[x][i] {
				if g.gainKnown(r) > g.gainKnown(rk) {
					wk, xk, rk = 0, x, r
					if j > 0 {
						wk = g.pos[j-1]
					}
				}
			}
		}
		// A group validation has no user of ties every weight at 0 and
		// would ship without a prior, chosen on nothing (ml-100k timeline
		// with a --valid file of users all new to train: test Recall@10
		// 0.08 against 0.09 with this): it takes the other group's, as
		// users known only by their recent movies take the known users'.
		switch {
		case nk == 0 && nc > 0:
			wk = wc
		case nc == 0 && nk > 0 && g.cold:
			wc = wk
		}
		if hb := g.choice(h, wk, wc, g.shares[xk], rk, rc); hb.Valid > best.Valid {
			best, bestH = hb, i
		}
	}
	return best, bestH, all
}

// priorView is one validation view's users split into the two groups whose
// prior weights are chosen apart: known users and cold ones (every id field
// unknown).
type priorView struct {
	known, cold eval.Split
	nk, nc, w   float64 // users with positives in each group; w: a user's weight in the objective (1 / (users × norm))
}

// priorGroups splits each view of val into its known and cold users.
func priorGroups(model *tower.Model, users []feature.Encoded, idFields []int, val *validation) []priorView {
	views := make([]priorView, len(val.splits))
	for i, split := range val.splits {
		v := priorView{known: *split, cold: *split}
		v.known.Test, v.cold.Test = make([][]int32, len(split.Test)), make([][]int32, len(split.Test))
		for u, ms := range split.Test {
			if len(ms) == 0 {
				continue
			}
			if len(idFields) > 0 && model.Cold(users[u], idFields) {
				v.cold.Test[u] = ms
				v.nc++
			} else {
				v.known.Test[u] = ms
				v.nk++
			}
		}
		v.w = 1 / (max(v.nk+v.nc, 1) * val.norm(i))
		views[i] = v
	}
	return views
}

// chooseRecentWeight returns the index into ws of the best prior weight
// (with bias) for the users known only by their recent movies, pooled over
// the recent views (the first on ties), and its Recall@10 over them.
func chooseRecentWeight(ctx context.Context, model *tower.Model, movies []feature.Encoded, recent []recentView, bias []float32, ws []float32, workers int) (int, float64, error) {
	pooled := make([]float64, len(ws))
	n := 0
	for _, rv := range recent {
		r, err := eval.BlendRecall(ctx, NewScorer(model, rv.users, movies), [][]float32{bias}, ws, rv.split, 10, workers)
		if err != nil {
			return 0, 0, err
		}
		for j, v := range r[0] {
			pooled[j] += float64(rv.n) * v
		}
		n += rv.n
	}
	best := 0
	for j, v := range pooled {
		if v > pooled[best] {
			best = j
		}
	}
	return best, pooled[best] / float64(max(n, 1)), nil
}

// applyPrior gives the bundle the prior c counted from rs (every rating
// known when it is served), with idFields telling cold users from known
// ones: the model's extra dimension, the table, and
// each movie's bias as the last value of its vector. b.Vectors must hold
// the towers' outputs (TowerDim wide) and is rewritten Dim wide.
func applyPrior(b *artifact.Bundle, ix *Index, rs []movielens.Rating, c PriorChoice, idFields, recentFields []int) {
	bias, def, now, _ := priorBias(ix, rs, c.HalfLifeDays)
	b.Prior = &artifact.Prior{Weight: float32(c.Weight), ColdWeight: float32(c.ColdWeight), RecentWeight: float32(c.RecentWeight), FeatureShare: float32(c.FeatureShare),
		IDFields: idFields, RecentFields: recentFields, DefaultBias: def, HalfLifeDays: c.HalfLifeDays,
		Now: time.Unix(now, 0).UTC(), Ratings: len(rs), Bias: bias}
	b.Model.SetPrior(b.Prior.Tower())
	d := b.Model.TowerDim()
	vecs := make([]float32, len(b.Movies)*(d+1))
	for i := range b.Movies {
		copy(vecs[i*(d+1):], b.Vectors[i*d:(i+1)*d])
		vecs[i*(d+1)+d] = bias[i]
	}
	b.Vectors = vecs
}

// RefreshPrior recounts b's popularity prior from rs (every rating known
// now, by the bundle's movie ids; movies it does not have are skipped, but
// not all of them) with the prior's half-life and weights unchanged, and
// rewrites what depends on it: the table, the last value of every movie
// vector, the HNSW graph (built with the settings its manifest records)
// and the manifest's index recall, and drops the training-time metrics
// (they scored the old prior). The towers are not touched: fresher
// counts need no retraining. The scores change, so the version does: the
// towers' version with "+prior." and the refresh time at. Ratings whose
// newest is older than the prior's "now" are refused (a refresh never
// goes back in time). sources (ratings file → sha256, from FileChecksums)
// are recorded as the prior's. b must have a prior.
func RefreshPrior(b *artifact.Bundle, users []movielens.User, rs []movielens.Rating, sources map[string]string, selfCheckQueries int, at time.Time) error {
	if b.Prior == nil || b.Model.Prior() == nil {
		return fmt.Errorf("pipeline: refresh prior: the bundle has no prior")
	}
	if len(rs) == 0 {
		return fmt.Errorf("pipeline: refresh prior: no ratings")
	}
	var hp ann.HNSWParams
	if len(b.Graph) > 0 {
		if err := json.Unmarshal(b.Manifest.Index.HNSW, &hp); err != nil {
			return fmt.Errorf("pipeline: refresh prior: the manifest's HNSW settings: %w", err)
		}
		if err := hp.Validate(); err != nil {
			return fmt.Errorf("pipeline: refresh prior: the manifest's HNSW settings: %w", err)
		}
	}
	catalog := &movielens.Dataset{Users: users, Movies: make([]movielens.Movie, len(b.Movies))}
	for i, m := range b.Movies {
		catalog.Movies[i] = movielens.Movie{ID: m.ID}
	}
	ix := NewIndex(catalog)
	bias, def, now, counted := priorBias(ix, rs, b.Prior.HalfLifeDays)
	if counted == 0 {
		return fmt.Errorf("pipeline: refresh prior: none of the %d ratings is of a movie the model has", len(rs))
	}
	if n := time.Unix(now, 0).UTC(); n.Before(b.Prior.Now) {
		return fmt.Errorf("pipeline: refresh prior: the newest rating (%s) is older than the prior's now (%s): pass every rating known now",
			n.Format(time.RFC3339), b.Prior.Now.Format(time.RFC3339))
	}
	const stampLayout = "20060102T150405Z"
	towers, last, refreshed := strings.Cut(b.Manifest.Version, "+prior.")
	stamp := at.UTC().Truncate(time.Second)
	if prev, err := time.Parse(stampLayout, last); refreshed && err == nil && !stamp.After(prev) {
		// Two refreshes within one second (or with the clock set back)
		// shared a version, and their scores may differ: each is later
		// than the one before.
		stamp = prev.Add(time.Second)
	}
	b.Manifest.Version = towers + "+prior." + stamp.Format(stampLayout)
	// The training-time metrics scored the old prior: they would describe
	// a model that is no longer served.
	b.Manifest.Metrics = nil
	d := b.Model.Dim()
	for i := range b.Movies {
		b.Vectors[i*d+d-1] = bias[i]
	}
	p := b.Model.Prior()
	p.DefaultBias = def
	b.Model.SetPrior(p)
	b.Prior.Bias, b.Prior.DefaultBias, b.Prior.Now, b.Prior.Ratings = bias, def, time.Unix(now, 0).UTC(), counted
	b.Prior.Sources = quotedPaths(sources)
	if len(b.Graph) == 0 {
		return nil
	}
	recall, err := buildIndex(b, hp, servedQueries(b, users, selfCheckQueries))
	if err != nil {
		return err
	}
	b.Manifest.Index.Recall = map[string]float64{}
	for k, r := range recall {
		b.Manifest.Index.Recall[fmt.Sprintf("recall@%d", k)] = r
	}
	return nil
}
