package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/towerrecall/towerrecall/internal/nn/gradcheck"
	"github.com/towerrecall/towerrecall/internal/tower"
)

// gradRecorder is an nn.Optimizer that changes no weight and records the
// gradient and the L2 coefficient of every Update: what a step would
// apply to each parameter slice.
type gradRecorder struct {
	mu  sync.Mutex // the update phase runs on every worker
	ups []recordedUpdate
}

type recordedUpdate struct {
	w, g  []float32
	decay float32
}

func (*gradRecorder) Begin()                  {}
func (*gradRecorder) Slots() int              { return 2 }
func (*gradRecorder) SetLearningRate(float32) {}
func (r *gradRecorder) Update(w, g, _, _ []float32, decay float32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ups = append(r.ups, recordedUpdate{w: w, g: append([]float32(nil), g...), decay: decay})
}

// gradientOf assembles the recorded gradient of the parameter slice p
// (zero where no update touched it) and reports an element updated twice
// in the step, or with an L2 coefficient other than decay.
func (r *gradRecorder) gradientOf(t *testing.T, name string, p []float32, decay float32) []float32 {
	t.Helper()
	g := make([]float32, len(p))
	seen := make([]bool, len(p))
	for _, u := range r.ups {
		if len(u.w) == 0 {
			continue
		}
		off := -1
		for i := range p {
			if &p[i] == &u.w[0] {
				off = i
				break
			}
		}
		if off < 0 {
			continue
		}
		if u.decay != decay {
			t.Errorf("%s[%d:]: L2 coefficient %g, want %g", name, off, u.decay, decay)
		}
		for i, v := range u.g {
			if seen[off+i] {
				t.Errorf("%s[%d]: updated twice in one step", name, off+i)
			}
			seen[off+i] = true
			g[off+i] = v
		}
	}
	return g
}

// TestStepGradients checks, end to end, the gradients a training step
// hands to the optimizer for every parameter of the model (every
// embedding table, dense weight and bias of both towers, and the rating
// head) against central differences of the step's loss. It covers what
// the loss-level (TestLossGradients) and tower-level (tower's
// TestTowerBackward) checks do not join: the step's dedupe of users and
// movies into slots and the accumulation of their rows' gradients, the
// split of rows, slots and update tasks between workers, the sparse
// embedding gradients that reach the optimizer (only the touched rows,
// each once), the history bag as the step saw it (after history dropout,
// pooled with decay, empty for a user without history), the uniform
// negatives, the L2 coefficient of each parameter, and that a step reads
// nothing a previous one left in the buffers it reuses.
func TestStepGradients(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		towers  tower.Config
		history bool   // a history bag field in the user tower, pooled with decay 0.8
		seed    uint64 // the model's: no ReLU input near its kink (see kinkMargin)
		edit    func(*Config, *Data)
	}{
		{"softmax", tower.Config{Dim: 4, Hidden: []int{6}, Normalize: true, UserEmbed: []int{4, 2, 2, 2, 2}, MovieEmbed: []int{4, 2, 2}}, false, 10,
			func(c *Config, d *Data) { c.Workers = 1 }},
		{"softmaxEverything", tower.Config{Dim: 4, Hidden: []int{6}, Normalize: true, UserEmbed: []int{4, 2, 2, 2, 2, 5}, MovieEmbed: []int{4, 2, 2}}, true, 15,
			func(c *Config, d *Data) {
				c.LogQ, c.LogQScale, c.ColdLogQ = true, 1.2, 3
				d.Cold = make([]bool, len(d.Users))
				d.Cold[1], d.Cold[3] = true, true
				c.UserWeight, c.UniformNegatives = 0.5, 3
				c.HistoryField, c.HistoryDropout = 5, 0.5
				addTeacher(d, 3, 5)
				c.Distill, c.DistillTemp = 1, 0.7
				c.L2 = 0.01
			}},
		{"softmaxUnnormalized", tower.Config{Dim: 3, Hidden: []int{6, 5}, OutputReLU: true, UserEmbed: []int{4, 2, 2, 2, 2}, MovieEmbed: []int{4, 2, 2}}, false, 20,
			func(c *Config, d *Data) { c.Temperature, c.LogQ, c.UniformNegatives = 0.5, true, 2 }},
		{"softmaxUnnormalizedEverything", tower.Config{Dim: 4, Hidden: []int{6}, UserEmbed: []int{4, 2, 2, 2, 2, 5}, MovieEmbed: []int{4, 2, 2}}, true, 15,
			func(c *Config, d *Data) { // the random-split preset's towers: no normalisation, temperature 1
				c.Temperature, c.LogQ, c.LogQScale, c.ColdLogQ = 1, true, 1.2, 1
				d.Cold = make([]bool, len(d.Users))
				d.Cold[2] = true
				c.UserWeight, c.HistoryField = 0.5, 5
				addTeacher(d, 3, 5)
				c.Distill, c.DistillTemp = 1, 1
			}},
		{"pointwise", tower.Config{Dim: 8, Hidden: []int{5}, RatingHead: true, UserEmbed: []int{4, 2, 2, 2, 2, 3}, MovieEmbed: []int{4, 2, 2}}, true, 1,
			func(c *Config, d *Data) { c.Objective, c.Optimizer, c.L2 = Pointwise, RMSprop, 0.02 }},
		{"pointwiseNoHidden", tower.Config{Dim: 8, OutputReLU: true, RatingHead: true, UserEmbed: []int{4, 2, 2, 2, 2}, MovieEmbed: []int{4, 2, 2}}, false, 10,
			func(c *Config, d *Data) { c.Objective, c.Workers = Pointwise, 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSynth(6, 5, 0, 1)
			idx := testBatch(s)
			s.data.Train[1].Weight, s.data.Train[4].Weight = 2, 0.5 // weighted examples
			if tc.history {
				// Newest first: a repeat, a single movie, no history at all.
				bags := [][]int32{{1, 3, 2, 5}, {4, 4, 2}, {3}, {}, {5, 1, 2, 3, 4, 1}, {2, 1}}
				for u := range s.data.Users {
					s.data.Users[u] = append(s.data.Users[u], bags[u])
				}
				s.userVocab = append(s.userVocab, len(s.data.Movies)+1)
			}
			m := tinyModel(t, s, tc.towers, tc.seed)
			// Biases away from zero: at zero biases a movie whose hidden
			// ReLUs are all off has the output 0, where L2 normalisation's
			// gradient is 1/sqrt(ε) (see nn's TestL2NormalizeZeroRow).
			r := rand.New(rand.NewPCG(tc.seed, 9))
			for _, tw := range []*tower.Tower{m.User(), m.Movie()} {
				for _, l := range tw.Layers {
					for i := range l.B {
						l.B[i] = 0.3 * (r.Float32()*2 - 1)
					}
				}
			}
			if tc.history {
				m.SetUserPoolDecay(5, 0.8)
			}
			if m.HasRatingHead() {
				m.Head()[0], m.Head()[1] = 1.5, 0.2
			}
			cfg := Config{Objective: Softmax, Epochs: 1, BatchSize: 8, LearningRate: 0.01, Optimizer: Adam, Temperature: 0.2,
				Workers: 2, ColdLogQ: 1, LogQScale: 1, HistoryField: -1, Seed: 8} // seed 8 draws movie 4, in no row, as a uniform negative in the second step
			tc.edit(&cfg, &s.data)
			if err := validate(m, s.data, cfg); err != nil {
				t.Fatal(err)
			}
			tr := newTrainer(m, s.data, cfg)
			defer tr.close()
			if cfg.LogQ {
				tr.freq[0], tr.freq[1] = 0.6, 0.2 // make the correction visible
			}
			rec := &gradRecorder{}
			tr.opt = rec
			// Two steps: the second must not read what the first left in
			// the buffers it reuses (the recorder changes no weight).
			tr.step(idx)
			rec.ups = nil
			tr.step(idx)
			if cfg.UniformNegatives > 0 && tr.movie.n == 4 {
				t.Fatal("no uniform negative outside the rows' movies: the check would not cover one")
			}
			if tc.history && cfg.HistoryDropout > 0 {
				dropped := false
				for u := range tr.user.n {
					dropped = dropped || len(tr.user.in[u][5]) < len(s.data.Users[tr.user.ent[u]][5])
				}
				if !dropped {
					t.Fatal("history dropout dropped nothing: the check would not cover it")
				}
			}
			// A pre-activation within the step of its ReLU's kink makes
			// the central differences straddle it.
			for name, sd := range map[string]*side{"user": &tr.user, "movie": &tr.movie} {
				if d := kinkDistance(sd.tw, sd.batch, sd.n); d < kinkMargin {
					t.Fatalf("%s tower: a pre-activation %.2g from its ReLU's kink, under %g: the finite differences would cross it; choose another model seed", name, d, kinkMargin)
				}
			}
			// The loss of the same step (same rows, dropped bags and
			// negatives) as a function of the weights.
			loss := func() float64 {
				tr.pool.run(phaseForward)
				return tr.lossAt()
			}
			for side, tw := range map[string]*tower.Tower{"user": m.User(), "movie": m.Movie()} {
				for f, e := range tw.Embeddings {
					name := fmt.Sprintf("%s embedding %d", side, f)
					checkStepGrad(t, name, e.W, rec.gradientOf(t, name, e.W, cfg.L2), loss)
				}
				for l, layer := range tw.Layers {
					name := fmt.Sprintf("%s layer %d", side, l)
					checkStepGrad(t, name+" W", layer.W, rec.gradientOf(t, name+" W", layer.W, cfg.L2), loss)
					checkStepGrad(t, name+" B", layer.B, rec.gradientOf(t, name+" B", layer.B, 0), loss)
				}
			}
			if m.HasRatingHead() {
				checkStepGrad(t, "head", m.Head(), rec.gradientOf(t, "head", m.Head(), 0), loss)
			}
		})
	}
}

// checkStepGrad is checkGrad with TestStepGradients' step.
func checkStepGrad(t *testing.T, name string, p, analytic []float32, loss func() float64) {
	t.Helper()
	gradcheck.Check(t, name, p, analytic, loss, gradcheck.Tolerance{Step: stepFD, Abs: 2e-4, Rel: 2e-2})
}

// stepFD is TestStepGradients' finite-difference step, and kinkMargin the
// least distance of a ReLU's input from 0 that it accepts: a step of the
// weights moves a pre-activation by about the step times an input (at most
// a few units here).
const stepFD, kinkMargin = 1e-3, 1e-2

// kinkDistance returns the least |pre-activation| of the ReLUs of tw over
// the first n rows of the batch b (after Forward).
func kinkDistance(tw *tower.Tower, b *tower.Batch, n int) float32 {
	d := float32(math.Inf(1))
	x := b.X[:n*tw.InDim()]
	last := len(tw.Layers) - 1
	for l, layer := range tw.Layers {
		z := make([]float32, n*layer.Out)
		layer.ForwardTo(z, x, n)
		if l < last || tw.OutputReLU {
			for _, v := range z {
				d = min(d, float32(math.Abs(float64(v))))
			}
		}
		x = b.H[l][:n*layer.Out]
	}
	return d
}

// TestSoftmaxUnderflowGradients checks the loss gradients of rows whose
// logits all fall far below the normalised towers' bound 1/T + max bias
// (every user facing away from every movie at a low temperature): the
// exponentials underflow and softmaxRows redoes the row shifted by its
// true maximum. With distillation too, whose teacher logits were taken
// before the redo.
func TestSoftmaxUnderflowGradients(t *testing.T) {
	t.Parallel()
	for _, distill := range []float32{0, 0.8} {
		t.Run(fmt.Sprint("distill=", distill), func(t *testing.T) {
			t.Parallel()
			s := newSynth(6, 5, 0, 1)
			idx := testBatch(s)
			s.data.Train[1].Weight = 2
			m := tinyModel(t, s, smallTowers(false), 3)
			cfg := Config{Objective: Softmax, Epochs: 1, BatchSize: 8, LearningRate: 0.01, Optimizer: Adam, Temperature: 0.02,
				LogQ: true, Workers: 2, ColdLogQ: 1, LogQScale: 1, HistoryField: -1}
			if distill > 0 {
				addTeacher(&s.data, 3, 5)
				cfg.Distill, cfg.DistillTemp = distill, 0.5
			}
			tr := newTrainer(m, s.data, cfg)
			defer tr.close()
			tr.prepare(idx)
			// Unit vectors near +a for the movies and near −a for the users.
			r := rand.New(rand.NewPCG(3, 3))
			dim := tr.dim
			a := []float32{0.5, -0.5, 0.5, 0.5}
			set := func(out []float32, n int, sign float32) {
				for i := range n {
					v := out[i*dim : i*dim+dim]
					var nrm float64
					for k := range v {
						v[k] = sign*a[k] + 0.15*(r.Float32()*2-1)
						nrm += float64(v[k]) * float64(v[k])
					}
					for k := range v {
						v[k] /= float32(math.Sqrt(nrm))
					}
				}
			}
			set(tr.movie.batch.Out, tr.movie.n, 1)
			set(tr.user.batch.Out, tr.user.n, -1)
			tr.lossAt()
			// Every row's exponentials against the bound sum below the
			// redo's threshold.
			for i := range tr.n {
				d := tr.u2m
				q := d.qOut[int(d.qRow[i])*dim : int(d.qRow[i])*dim+dim]
				var sum float64
				for j := range d.nK {
					l := float64(d.bias[j])
					for k := range dim {
						l += float64(q[k]) * float64(d.kOut[j*dim+k]) / 0.02
					}
					sum += math.Exp(l - float64(d.shift))
				}
				if !(sum < 1e-30) {
					t.Fatalf("row %d: Σ exp(logit − bound) = %g: the row is not redone", i, sum)
				}
			}
			if l := tr.lossAt(); math.IsNaN(l) || math.IsInf(l, 0) {
				t.Fatalf("loss %g", l)
			}
			tr.gatherGrads()
			dU := slices.Clone(tr.user.batch.DOut[:tr.user.n*dim])
			dV := slices.Clone(tr.movie.batch.DOut[:tr.movie.n*dim])
			checkGrad(t, "user", tr.user.batch.Out[:tr.user.n*dim], dU, tr.lossAt)
			checkGrad(t, "movie", tr.movie.batch.Out[:tr.movie.n*dim], dV, tr.lossAt)
		})
	}
}
