package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/nn"
	"github.com/towerrecall/towerrecall/internal/nn/gradcheck"
	"github.com/towerrecall/towerrecall/internal/tower"
)

func tinyModel(t testing.TB, s *synth, cfg tower.Config, seed uint64) *tower.Model {
	m, err := tower.New(cfg, s.userVocab, s.movieVocab, rand.New(rand.NewPCG(seed, 7)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func smallTowers(head bool) tower.Config {
	c := tower.Config{Dim: 4, Hidden: []int{6}, Normalize: !head, RatingHead: head, OutputReLU: false,
		UserEmbed: []int{4, 2, 2, 2, 2}, MovieEmbed: []int{4, 2, 2}}
	return c
}

// lossAt runs the loss phase of a prepared step and returns the mean loss.
func (t *trainer) lossAt() float64 {
	if t.cfg.Objective == Softmax {
		t.prepareDirection(t.u2m, t.movie.n)
	}
	t.pool.run(phaseLoss)
	var l float64
	for _, w := range t.work {
		l += w.loss
	}
	return l / float64(t.n)
}

// prepare runs a full step over idx (it updates the weights, so that
// every code path, the optimizer's included, has run once), then the
// collection and forward pass of a second step over idx, whose gradients
// the checks compare with finite differences at the updated weights.
func (t *trainer) prepare(idx []int32) {
	t.step(idx)
	t.collect(idx)
	t.pool.run(phaseForward)
}

func checkGrad(t *testing.T, name string, p, analytic []float32, loss func() float64) {
	t.Helper()
	gradcheck.Check(t, name, p, analytic, loss, gradcheck.Tolerance{Step: 1e-3, Abs: 2e-4, Rel: 2e-2})
}

// A batch with repeated users and movies, so that dedupe, multiplicities
// and accidental-hit masking are all exercised.
func testBatch(s *synth) []int32 {
	s.data.Train = append(s.data.Train[:0],
		Interaction{User: 0, Movie: 0, Rating: 5}, Interaction{User: 1, Movie: 0, Rating: 4}, Interaction{User: 2, Movie: 1, Rating: 1}, Interaction{User: 0, Movie: 2, Rating: 3},
		Interaction{User: 3, Movie: 3, Rating: 2}, Interaction{User: 1, Movie: 1, Rating: 5}, Interaction{User: 4, Movie: 0, Rating: 1})
	return []int32{0, 1, 2, 3, 4, 5, 6}
}

func TestLossGradients(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		obj     string
		logQ    bool
		workers int
		cold    bool // users 1 and 3 are cold-start twins with ColdLogQ 2.5
		distill bool // a teacher for three real users, the others their copies
		more    func(*Config, *tower.Config)
	}{{"softmax", Softmax, false, 1, false, false, nil}, {"softmaxLogQ", Softmax, true, 2, false, false, nil},
		{"coldLogQ", Softmax, true, 2, true, false, nil}, {"coldLogQ1", Softmax, true, 1, true, false, nil},
		{"distill", Softmax, false, 1, false, true, nil}, {"distillLogQCold", Softmax, true, 2, true, true, nil},
		{"pointwise", Pointwise, false, 1, false, false, nil}, {"pointwise2", Pointwise, false, 2, false, false, nil},
		// Per-user weights, a logQ scale ≠ 1 and uniform negatives (seed 8
		// draws movie 4, in no row, and movie 2 twice in prepare's second
		// step).
		{"userWeightScaledLogQUniform", Softmax, true, 2, true, true, func(c *Config, _ *tower.Config) {
			c.UserWeight, c.LogQScale, c.UniformNegatives, c.Seed = 0.5, 1.2, 3, 8
		}},
		// Towers not normalised: each row shifts by its own maximum.
		{"unnormalized", Softmax, true, 2, false, true, func(_ *Config, tc *tower.Config) { tc.Normalize = false }},
		// The pointwise score through Dot8 (8-wide vectors).
		{"pointwiseDim8", Pointwise, false, 2, false, false, func(_ *Config, tc *tower.Config) { tc.Dim = 8 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSynth(6, 5, 0, 1)
			idx := testBatch(s)
			s.data.Train[1].Weight, s.data.Train[4].Weight = 2, 0.5 // weighted examples
			cfg := Config{Objective: tc.obj, Epochs: 1, BatchSize: 8, LearningRate: 0.01, Optimizer: Adam, Temperature: 0.2, LogQ: tc.logQ, Workers: tc.workers, ColdLogQ: 1, LogQScale: 1}
			towers := smallTowers(tc.obj == Pointwise)
			if tc.more != nil {
				tc.more(&cfg, &towers)
			}
			m := tinyModel(t, s, towers, 3)
			if m.HasRatingHead() {
				m.Head()[0], m.Head()[1] = 1.5, 0.2
			}
			if tc.cold {
				s.data.Cold = make([]bool, len(s.data.Users))
				s.data.Cold[1], s.data.Cold[3] = true, true
				cfg.ColdLogQ = 2.5
			}
			if tc.distill {
				addTeacher(&s.data, 3, 5)
				cfg.Distill, cfg.DistillTemp = 0.7, 0.5
			}
			if err := validate(m, s.data, cfg); err != nil {
				t.Fatal(err)
			}
			tr := newTrainer(m, s.data, cfg)
			defer tr.close()
			if tc.logQ {
				tr.freq[0], tr.freq[1] = 0.6, 0.2 // make the correction visible
			}
			tr.prepare(idx)
			if cfg.UniformNegatives > 0 && tr.movie.n == 4 {
				t.Fatal("no uniform negative outside the rows' movies")
			}
			tr.lossAt()
			tr.gatherGrads()
			dU := slices.Clone(tr.user.batch.DOut[:tr.user.n*tr.dim])
			dV := slices.Clone(tr.movie.batch.DOut[:tr.movie.n*tr.dim])
			checkGrad(t, "user", tr.user.batch.Out[:tr.user.n*tr.dim], dU, tr.lossAt)
			if tc.obj == Softmax {
				// The loss reads movie vectors through their transposed copy.
				checkGrad(t, "movie", tr.movie.batch.Out[:tr.movie.n*tr.dim], dV, tr.lossAt)
			} else {
				checkGrad(t, "movie", tr.movie.batch.Out[:tr.movie.n*tr.dim], dV, tr.lossAt)
				var g [2]float32
				for _, w := range tr.work {
					g[0] += float32(w.head[0])
					g[1] += float32(w.head[1])
				}
				checkGrad(t, "head", m.Head(), g[:], tr.lossAt)
			}
		})
	}
}

// TestSoftmaxMatchesNaive checks that the deduplicated softmax computes
// exactly the loss of the textbook in-batch softmax: one column per batch
// row (duplicates included), logQ subtracted, and the other copies of a
// row's positive masked out.
//
// With cold-start users (Data.Cold) the logQ term of their rows is scaled
// by ColdLogQ.
func TestSoftmaxMatchesNaive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		cold      []int
		coldLogQ  float32
		logQScale float32
	}{{"plain", nil, 1, 1}, {"coldNoLogQ", []int{1, 3}, 0, 1}, {"coldHalfLogQ", []int{0, 4}, 0.5, 1}, {"coldFullLogQ", []int{2}, 1, 1},
		{"coldDoubleLogQ", []int{1, 2}, 2, 1}, {"scaledLogQ", nil, 1, 0.7}, {"scaledLogQCold", []int{1}, 2, 0.8}, {"scaledLogQColdSame", []int{3}, 0.8, 0.8}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testSoftmaxMatchesNaive(t, tc.cold, tc.coldLogQ, tc.logQScale, 0, false)
		})
	}
	// With distillation the loss adds Distill × KL(teacher ‖ towers) over
	// the same columns.
	for _, distill := range []float32{0.5, 2} {
		t.Run(fmt.Sprint("distill", distill), func(t *testing.T) {
			t.Parallel()
			testSoftmaxMatchesNaive(t, []int{2}, 2, 0.9, distill, false)
		})
	}
	// Weighted: each row's loss times its example Weight and its user's
	// weight n^−UserWeight (n counted over the real user's rows, mean 1
	// over the rows), with uniform negatives as extra columns whose logQ
	// is that of their expected count among the step's movies.
	t.Run("weightedUniform", func(t *testing.T) {
		t.Parallel()
		testSoftmaxMatchesNaive(t, []int{2}, 2, 0.9, 0.5, true)
	})
}

// addTeacher gives d random teacher scores for real users users (the
// others stand for user index mod real) over movies movies.
func addTeacher(d *Data, real, movies int) {
	r := rand.New(rand.NewPCG(5, 5))
	d.Teacher, d.TeacherMovies = make([]float32, real*movies), movies
	for i := range d.Teacher {
		d.Teacher[i] = float32(r.NormFloat64())
	}
	d.Origin = make([]int32, len(d.Users))
	for u := range d.Origin {
		d.Origin[u] = int32(u % real)
	}
}

func testSoftmaxMatchesNaive(t *testing.T, cold []int, coldLogQ, logQScale, distill float32, weighted bool) {
	s := newSynth(6, 5, 0, 2)
	idx := testBatch(s)
	m := tinyModel(t, s, smallTowers(false), 4)
	cfg := Config{Objective: Softmax, Epochs: 1, BatchSize: 8, LearningRate: 0.01, Optimizer: Adam, Temperature: 0.1, LogQ: true, Workers: 1, ColdLogQ: coldLogQ, LogQScale: logQScale}
	const tau = 0.7
	if distill > 0 {
		addTeacher(&s.data, 4, 5)
		cfg.Distill, cfg.DistillTemp = distill, tau
	}
	const uniform = 3
	if weighted {
		s.data.Train[1].Weight, s.data.Train[4].Weight = 2, 0.5
		cfg.UserWeight, cfg.UniformNegatives, cfg.Seed = 0.5, uniform, 8 // seed 8 draws movie 4 (in no row) in the second step, prepare's
	}
	if cold != nil {
		s.data.Cold = make([]bool, len(s.data.Users))
		for _, u := range cold {
			s.data.Cold[u] = true
		}
	}
	tr := newTrainer(m, s.data, cfg)
	defer tr.close()
	tr.prepare(idx)
	got := tr.lossAt()

	vec := func(v []float32, tw func([]float32, feature.Encoded), e feature.Encoded) []float64 {
		tw(v, e)
		out := make([]float64, len(v))
		for i := range v {
			out[i] = float64(v[i])
		}
		return out
	}
	var want float64
	rows := s.data.Train
	cols := slices.Clone(rows) // the columns: every row's movie, then the uniform negatives
	userW := func(Interaction) float64 { return 1 }
	if weighted {
		// The uniform negatives are the step's movie occurrences beyond the rows'.
		extra := slices.Clone(tr.movie.cnt[:tr.movie.n])
		for _, x := range rows {
			extra[tr.movie.slotOf[x.Movie]]--
		}
		for j, c := range extra {
			for range c {
				cols = append(cols, Interaction{User: -1, Movie: tr.movie.ent[j]})
			}
		}
		if len(cols) != len(rows)+uniform || !slices.ContainsFunc(cols, func(x Interaction) bool { return x.Movie == 4 }) {
			t.Fatalf("columns %v: want %d uniform negatives, movie 4 among them", cols, uniform)
		}
		n := map[int32]float64{} // rows per real user
		for _, x := range rows {
			n[s.data.Origin[x.User]]++
		}
		var z float64
		for _, c := range n {
			z += math.Sqrt(c)
		}
		userW = func(x Interaction) float64 {
			w := 1 / math.Sqrt(n[s.data.Origin[x.User]]) * float64(len(rows)) / z
			if x.Weight != 0 {
				w *= float64(x.Weight)
			}
			return w
		}
	}
	// An entity of train frequency p is expected n·p times among the n
	// rows' movies and K/|movies| times among K uniform negatives.
	logQ := func(movie int32) float64 {
		return math.Log(float64(len(rows))*tr.freq[movie] + float64(len(cols)-len(rows))/float64(len(s.data.Movies)))
	}
	for _, ri := range rows {
		u := vec(make([]float32, 4), m.UserVector, s.data.Users[ri.User])
		var logits, teacher []float64
		var pos float64
		for _, rk := range cols {
			if rk.Movie == ri.Movie && rk != ri {
				continue // accidental hit
			}
			v := vec(make([]float32, 4), m.MovieVector, s.data.Movies[rk.Movie])
			var dot float64
			for d := range u {
				dot += u[d] * v[d]
			}
			alpha := float64(logQScale)
			if s.data.Cold != nil && s.data.Cold[ri.User] {
				alpha = float64(coldLogQ)
			}
			l := dot/0.1 - alpha*logQ(rk.Movie)
			if rk == ri {
				pos = l
			}
			logits = append(logits, l)
			if distill > 0 {
				score := s.data.Teacher[int(s.data.Origin[ri.User])*5+int(rk.Movie)]
				teacher = append(teacher, float64(score)/tau-alpha*logQ(rk.Movie))
			}
		}
		logSumExp := func(xs []float64) float64 {
			var z float64
			for _, x := range xs {
				z += math.Exp(x)
			}
			return math.Log(z)
		}
		zs := logSumExp(logits)
		w := userW(ri)
		want += w * (zs - pos)
		if distill > 0 {
			zt := logSumExp(teacher)
			var kl float64
			for j, x := range teacher {
				kl += math.Exp(x-zt) * ((x - zt) - (logits[j] - zs))
			}
			want += w * float64(distill) * kl
		}
	}
	want /= float64(len(rows))
	if !gradcheck.Near(got, want, 1e-4*math.Abs(want)) {
		t.Fatalf("loss %v, naive %v", got, want)
	}
}

func weights(m *tower.Model) []float32 {
	var out []float32
	for _, tw := range []*tower.Tower{m.User(), m.Movie()} {
		for _, e := range tw.Embeddings {
			out = append(out, e.W...)
		}
		for _, l := range tw.Layers {
			out = append(out, l.W...)
			out = append(out, l.B...)
		}
	}
	return append(out, m.Head()...)
}

func TestReproducible(t *testing.T) {
	t.Parallel()
	s := newSynth(200, 150, 20000, 3)
	for _, tc := range []struct {
		name    string
		obj     string
		workers int
	}{{"softmax1", Softmax, 1}, {"softmax2", Softmax, 2}, {"pointwise1", Pointwise, 1}, {"pointwise2", Pointwise, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run := func() []float32 {
				m := tinyModel(t, s, smallTowers(tc.obj == Pointwise), 5)
				cfg := testConfig()
				cfg.Objective, cfg.Workers, cfg.Epochs, cfg.BatchSize = tc.obj, tc.workers, 2, 128
				if _, err := Run(context.Background(), m, s.data, cfg, Hooks{}); err != nil {
					t.Fatal(err)
				}
				return weights(m)
			}
			a, b := run(), run()
			for i := range a {
				if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
					t.Fatalf("weight %d differs: %v vs %v", i, a[i], b[i])
				}
			}
		})
	}
}

// recallAt10 is a small exact evaluator over the synthetic validation set.
func recallAt10(m *tower.Model, d Data) float64 {
	dim := m.Dim()
	mv := make([]float32, len(d.Movies)*dim)
	for j, e := range d.Movies {
		m.MovieVector(mv[j*dim:j*dim+dim], e)
	}
	want := map[int32]map[int32]bool{}
	for _, x := range d.Valid {
		if want[x.User] == nil {
			want[x.User] = map[int32]bool{}
		}
		want[x.User][x.Movie] = true
	}
	seen := map[int32]map[int32]bool{}
	for _, x := range d.Train {
		if seen[x.User] == nil {
			seen[x.User] = map[int32]bool{}
		}
		seen[x.User][x.Movie] = true
	}
	u := make([]float32, dim)
	var sum float64
	type sc struct {
		j int32
		s float32
	}
	scores := make([]sc, 0, len(d.Movies))
	for user, pos := range want {
		m.UserVector(u, d.Users[user])
		scores = scores[:0]
		for j := range d.Movies {
			if !seen[user][int32(j)] {
				scores = append(scores, sc{int32(j), nn.Dot(u, mv[j*dim:j*dim+dim])})
			}
		}
		slices.SortFunc(scores, func(a, b sc) int {
			if a.s != b.s {
				if a.s > b.s {
					return -1
				}
				return 1
			}
			return int(a.j - b.j)
		})
		hits := 0
		for _, x := range scores[:min(10, len(scores))] {
			if pos[x.j] {
				hits++
			}
		}
		sum += float64(hits) / float64(len(pos))
	}
	return sum / float64(len(want))
}

func TestRunLearnsAndStopsEarly(t *testing.T) {
	t.Parallel()
	s := newSynth(300, 200, 30000, 4)
	m := tinyModel(t, s, tower.Config{Dim: 8, Hidden: []int{32}, Normalize: true, UserEmbed: []int{16, 2, 2, 2, 2}, MovieEmbed: []int{16, 4, 2}}, 6)
	before := recallAt10(m, s.data)
	cfg := testConfig()
	cfg.BatchSize, cfg.Epochs, cfg.Patience = 256, 30, 2
	var epochs []EpochStats
	res, err := Run(context.Background(), m, s.data, cfg, Hooks{
		Validate: func(m *tower.Model) (float64, error) { return recallAt10(m, s.data), nil },
		OnEpoch:  func(e EpochStats) { epochs = append(epochs, e) },
	})
	if err != nil {
		t.Fatal(err)
	}
	after := recallAt10(m, s.data)
	t.Logf("recall@10 %.4f → %.4f, best epoch %d of %d, %.0f ex/s", before, after, res.BestEpoch, len(res.Epochs), res.ExamplesPerSec)
	if !(after >= before+0.05) {
		t.Errorf("recall@10 %.4f → %.4f: not learning", before, after)
	}
	if len(epochs) != len(res.Epochs) || !(res.Epochs[0].Loss > res.Epochs[len(res.Epochs)-1].Loss) {
		t.Errorf("loss did not fall: %+v", res.Epochs)
	}
	// Early stopping ends the run Patience epochs after the best, before
	// the configured last, so the check below compares restored weights
	// with an earlier epoch's, not the last epoch with itself.
	if n := len(res.Epochs); n >= cfg.Epochs || res.BestEpoch < 1 || res.BestEpoch >= n || n != res.BestEpoch+cfg.Patience {
		t.Fatalf("ran %d of %d epochs, best %d, patience %d: want a stop %d epochs after the best, before the last",
			n, cfg.Epochs, res.BestEpoch, cfg.Patience, cfg.Patience)
	}
	if best := res.Epochs[res.BestEpoch-1].Valid; !gradcheck.Near(best, after, 1e-9) {
		t.Errorf("model holds recall %.4f, best epoch had %.4f", after, best)
	}
}

func TestPointwiseLearns(t *testing.T) {
	t.Parallel()
	s := newSynth(300, 200, 30000, 5)
	m := tinyModel(t, s, smallTowers(true), 7)
	cfg := referenceConfig()
	cfg.Epochs = 5
	res, err := Run(context.Background(), m, s.data, cfg, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	first, last := res.Epochs[0].Loss, res.Epochs[len(res.Epochs)-1].Loss
	t.Logf("pointwise loss %.4f → %.4f", first, last)
	if !(last < first*0.9) {
		t.Errorf("pointwise loss %.4f → %.4f", first, last)
	}
}

func TestRunValidates(t *testing.T) {
	t.Parallel()
	s := newSynth(5, 5, 50, 6)
	m := tinyModel(t, s, smallTowers(false), 1)
	d := s.data
	d.Train = append(slices.Clone(d.Train), Interaction{User: 99, Movie: 0, Rating: 3})
	d.Users = append(slices.Clone(d.Users), feature.Encoded{{1}})
	bad := Config{Objective: "listwise", Optimizer: "sgd", Epochs: 0, BatchSize: 0, Workers: 0}
	_, err := Run(context.Background(), m, d, bad, Hooks{})
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"objective", "optimizer", "epochs", "batch size", "learning rate", "workers", "out of range", "fields"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

// TestRunValidatesTeacher checks that distillation refuses a teacher that
// does not cover every user and movie.
func TestRunValidatesTeacher(t *testing.T) {
	t.Parallel()
	s := newSynth(5, 5, 50, 6)
	m := tinyModel(t, s, smallTowers(false), 1)
	cfg := Config{Objective: Softmax, Epochs: 1, BatchSize: 8, LearningRate: 0.01, Optimizer: Adam, Temperature: 0.1, Workers: 1, Distill: 1, DistillTemp: 1}
	for _, tc := range []struct {
		name string
		edit func(d *Data)
		want string
	}{
		{"no teacher", func(d *Data) {}, "teacher scores"},
		{"too few users", func(d *Data) { d.Teacher, d.TeacherMovies = make([]float32, 4*5), 5 }, "teacher scores for 4 users"},
		{"wrong movies", func(d *Data) { d.Teacher, d.TeacherMovies = make([]float32, 5*4), 4 }, "of 4 movies each"},
		{"bad origin", func(d *Data) { addTeacher(d, 2, 5); d.Origin[3] = 2 }, "stands for user 2"},
		{"short origin", func(d *Data) { addTeacher(d, 2, 5); d.Origin = d.Origin[:4] }, "4 origins for 5 users"},
	} {
		d := s.data
		tc.edit(&d)
		_, err := Run(context.Background(), m, d, cfg, Hooks{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	bad := cfg
	bad.DistillTemp, bad.Distill = 0, 11
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "distill 11") || !strings.Contains(err.Error(), "distill temperature 0") {
		t.Errorf("config error %v", err)
	}
}

func TestRunCancel(t *testing.T) {
	t.Parallel()
	s := newSynth(50, 50, 5000, 7)
	m := tinyModel(t, s, smallTowers(false), 1)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := testConfig()
	cfg.BatchSize = 64
	_, err := Run(ctx, m, s.data, cfg, Hooks{OnBatch: func(done, total int) {
		if done == 3 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func benchTrain(b *testing.B, obj string, workers int) {
	s := newSynth(6000, 3700, 200_000, 11)
	tc, cfg := shippedTowers(), testConfig()
	uv, mv := s.userVocab, s.movieVocab
	if obj == Pointwise {
		tc, cfg = referenceTowers(), referenceConfig()
		uv, mv = uv[:4], mv[:2]
		for i, u := range s.data.Users {
			s.data.Users[i] = u[:4]
		}
		for i, x := range s.data.Movies {
			s.data.Movies[i] = x[:2]
		}
	}
	distill := obj == "distill"
	if distill { // the history model distilling a teacher of random scores, unnormalised as the random-split recipe
		addTeacher(&s.data, len(s.data.Users), len(s.data.Movies))
		cfg.Distill, cfg.DistillTemp = 1, 1
		tc.Normalize, cfg.Temperature = false, 1
		obj = "history"
	}
	if obj == "history" { // the default model plus a 32-d history bag of 100 movies per user (ml-1m: ~100–130)
		obj = Softmax
		r := rand.New(rand.NewPCG(2, 2))
		for i, u := range s.data.Users {
			bag := make([]int32, 100)
			for j := range bag {
				bag[j] = int32(1 + r.IntN(len(s.data.Movies)))
			}
			s.data.Users[i] = append(u, bag)
		}
		uv = append(slices.Clone(uv), len(s.data.Movies)+1)
		tc.UserEmbed = append(tc.UserEmbed, 32)
	}
	recent := obj == "recent"
	if recent { // the default model plus the recent-history feature: 16-d, the newest 20 movies before each example, decay 0.8
		obj = Softmax
		for i, u := range s.data.Users {
			s.data.Users[i] = append(u, []int32{feature.OOV})
		}
		r := rand.New(rand.NewPCG(3, 3))
		times := make([]int64, len(s.data.Train))
		for i := range times {
			times[i] = int64(r.IntN(1 << 20))
		}
		hi := make([]int32, len(s.data.Movies))
		for i := range hi {
			hi[i] = int32(i + 1)
		}
		fl := Fields{User: append(feature.UserFields(), feature.HistoryField), Movie: feature.MovieFields(), HistoryIndex: hi}
		if err := (Recipe{ColdStartRate: 0.1, HistoryLength: 20, Seed: 1}).Apply(&s.data, times, fl); err != nil {
			b.Fatal(err)
		}
		uv = append(slices.Clone(uv), len(s.data.Movies)+1)
		tc.UserEmbed = append(tc.UserEmbed, 16)
	}
	m, err := tower.New(tc, uv, mv, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		b.Fatal(err)
	}
	if recent {
		m.SetUserPoolDecay(len(tc.UserEmbed)-1, 0.8)
	}
	cfg.Epochs, cfg.Workers = 1, workers
	b.ReportAllocs()
	examples := 0
	cpu0 := cpuSeconds()
	for b.Loop() {
		res, err := Run(context.Background(), m, s.data, cfg, Hooks{})
		if err != nil {
			b.Fatal(err)
		}
		examples += res.Epochs[0].Examples
	}
	b.ReportMetric(float64(examples)/b.Elapsed().Seconds(), "examples/s")
	// On a shared machine wall time includes waiting for a core; CPU time
	// does not. examples per CPU-second × workers bounds the rate on idle cores.
	if cpu := cpuSeconds() - cpu0; cpu > 0 {
		b.ReportMetric(float64(examples)/cpu, "examples/cpu-s")
	}
}

func BenchmarkTrainSoftmax(b *testing.B) {
	for _, w := range []int{1, 2} {
		b.Run(map[int]string{1: "workers=1", 2: "workers=2"}[w], func(b *testing.B) { benchTrain(b, Softmax, w) })
	}
}

// BenchmarkTrainSoftmaxHistory is BenchmarkTrainSoftmax with the history
// feature in the user tower.
func BenchmarkTrainSoftmaxHistory(b *testing.B) {
	for _, w := range []int{1, 2} {
		b.Run(map[int]string{1: "workers=1", 2: "workers=2"}[w], func(b *testing.B) { benchTrain(b, "history", w) })
	}
}

// BenchmarkTrainSoftmaxRecent is BenchmarkTrainSoftmax with the
// recent-history feature (causal bags of 20, one user copy per example).
func BenchmarkTrainSoftmaxRecent(b *testing.B) {
	for _, w := range []int{1, 2} {
		b.Run(map[int]string{1: "workers=1", 2: "workers=2"}[w], func(b *testing.B) { benchTrain(b, "recent", w) })
	}
}

// BenchmarkTrainSoftmaxDistill is BenchmarkTrainSoftmaxHistory with
// distillation from a teacher (random scores) and unnormalised towers at
// temperature 1: the random-split recipe, the one that distils.
func BenchmarkTrainSoftmaxDistill(b *testing.B) {
	for _, w := range []int{1, 2} {
		b.Run(map[int]string{1: "workers=1", 2: "workers=2"}[w], func(b *testing.B) { benchTrain(b, "distill", w) })
	}
}

func BenchmarkTrainPointwise(b *testing.B) {
	for _, w := range []int{1, 2} {
		b.Run(map[int]string{1: "workers=1", 2: "workers=2"}[w], func(b *testing.B) { benchTrain(b, Pointwise, w) })
	}
}

func TestStepAllocs(t *testing.T) {
	s := newSynth(500, 300, 20000, 12)
	for _, obj := range []string{Softmax, Pointwise} {
		for _, workers := range []int{1, 2} {
			m := tinyModel(t, s, smallTowers(obj == Pointwise), 1)
			cfg := testConfig()
			cfg.Objective, cfg.Workers, cfg.BatchSize, cfg.UniformNegatives = obj, workers, 256, 64
			d := s.data
			if obj == Softmax && workers == 2 { // and distilling
				addTeacher(&d, len(d.Users), len(d.Movies))
				cfg.Distill, cfg.DistillTemp = 1, 1
			}
			tr := newTrainer(m, d, cfg)
			idx := make([]int32, 256)
			for i := range idx {
				idx[i] = int32(i * 7)
			}
			tr.step(idx)
			if a := testing.AllocsPerRun(20, func() { tr.step(idx) }); a != 0 {
				t.Errorf("%s workers=%d: %v allocs per step", obj, workers, a)
			}
			tr.close()
		}
	}
}

func TestOnBatchCounts(t *testing.T) {
	t.Parallel()
	s := newSynth(50, 40, 1000, 13) // 900 train interactions
	m := tinyModel(t, s, smallTowers(false), 1)
	cfg := testConfig()
	cfg.Epochs, cfg.BatchSize = 2, 449 // 2 full batches and a remainder of 2
	last, total := 0, 0
	if _, err := Run(context.Background(), m, s.data, cfg, Hooks{OnBatch: func(d, tt int) { last, total = d, tt }}); err != nil {
		t.Fatal(err)
	}
	if last != 6 || total != 6 {
		t.Fatalf("OnBatch ended at %d/%d, want 6/6", last, total)
	}
}

// TestOnBatchCountsRefit: a run of the first epochs of a longer plan (the
// refit) counts its progress in its own steps, not the plan's, so a
// progress bar reaches its end when the run does.
func TestOnBatchCountsRefit(t *testing.T) {
	t.Parallel()
	s := newSynth(50, 40, 1000, 13) // 900 train interactions
	m := tinyModel(t, s, smallTowers(false), 1)
	cfg := testConfig()
	cfg.Epochs, cfg.PlanEpochs, cfg.BatchSize = 2, 5, 449 // 3 steps an epoch
	last, total := 0, 0
	if _, err := Run(context.Background(), m, s.data, cfg, Hooks{OnBatch: func(d, tt int) { last, total = d, tt }}); err != nil {
		t.Fatal(err)
	}
	if last != 6 || total != 6 {
		t.Fatalf("OnBatch ended at %d/%d, want 6/6", last, total)
	}
}

func TestPerSecond(t *testing.T) {
	for _, tc := range []struct {
		n    int
		secs float64
		want float64
	}{
		{100, 2, 50},
		{0, 0, 0},   // was NaN
		{100, 0, 0}, // was +Inf
		{0, 1, 0},
	} {
		if got := perSecond(tc.n, tc.secs); got != tc.want {
			t.Errorf("perSecond(%d, %v) = %v, want %v", tc.n, tc.secs, got, tc.want)
		}
	}
}

// TestTeachBitForBit holds teach (keys walked in teacher-column order, the
// positive's duplicates masked after the walk) to the plain loop over the
// key slots that masks the positive in place, bit for bit: for every
// positive, with the positive's teacher logit left as drawn, and made the
// largest by less than its mask, so that the maximum must be found again.
func TestTeachBitForBit(t *testing.T) {
	t.Parallel()
	const nK, movies = 37, 50
	r := rand.New(rand.NewPCG(9, 9))
	d := &direction{teacher: make([]float32, movies), tMovies: movies, invTau: 1 / 0.7}
	d.alloc(8, 1, nK, 1)
	cols := r.Perm(movies)[:nK]
	s := make([]float32, nK)
	for j := range nK {
		d.tKeys[j] = teacherKey{col: int32(cols[j]), slot: int32(j)}
		d.logC[j] = float32(math.Log(float64(1 + r.IntN(3))))
		d.bias[j] = float32(r.NormFloat64())
		s[j] = float32(r.NormFloat64())
	}
	slices.SortFunc(d.tKeys, func(a, b teacherKey) int { return int(a.col - b.col) })
	draw := func() {
		for i := range d.teacher {
			d.teacher[i] = float32(r.NormFloat64())
		}
	}
	plain := func(pos int) ([]float32, float32, float64) {
		e, diff := make([]float32, nK), make([]float32, nK)
		m := float32(math.Inf(-1))
		for j := range nK {
			v := d.teacher[cols[j]]*d.invTau + d.bias[j]
			if j == pos {
				v -= d.logC[pos]
			}
			e[j], diff[j] = v, v-s[j]
			m = max(m, v)
		}
		z := nn.ExpShiftTo(e, m)
		return e, z, float64(nn.Dot(e, diff)/z) - float64(m) - math.Log(float64(z))
	}
	same := func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }
	for pos := range nK {
		for _, top := range []bool{false, true} {
			draw()
			if top && d.logC[pos] == 0 {
				continue // nothing masked
			}
			if top { // the largest logit by half its mask
				second := float32(math.Inf(-1))
				for j := range nK {
					if j != pos {
						second = max(second, d.teacher[cols[j]]*d.invTau+d.bias[j])
					}
				}
				d.teacher[cols[pos]] = (second + d.logC[pos]/2 - d.bias[pos]) / d.invTau
			}
			we, wz, wkl := plain(pos)
			e, z, kl := d.teach(0, 0, s, d.bias, pos)
			if !slices.EqualFunc(e, we, same) || !same(z, wz) || math.Float64bits(kl) != math.Float64bits(wkl) {
				t.Fatalf("positive %d (largest %v): Z %g KL %g, the plain loop %g %g", pos, top, z, kl, wz, wkl)
			}
		}
	}
}
