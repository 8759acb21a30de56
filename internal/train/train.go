package train

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/nn"
	"github.com/towerrecall/towerrecall/internal/tower"
)

// Interaction is one training example: dense indexes into Data.Users and
// Data.Movies and a rating in 1..5.
type Interaction struct {
	User, Movie int32
	Rating      float32
	// Weight scales the example's loss; 0 means 1. WeightByRecency sets it
	// from timestamps (Recipe.Recency; the shipped recipe has it at 0, off).
	Weight float32
}

// Data is what a run trains on. Users[i] and Movies[j] are the encoded
// features of the entities the interactions index.
type Data struct {
	Users, Movies []feature.Encoded
	Train, Valid  []Interaction
	// Cold marks the users that stand for cold-start users (id-less twins);
	// nil or one entry per user. See Config.ColdLogQ.
	Cold []bool
	// Origin maps every user to the real user it stands for (Recipe.Apply
	// sets it for its twins and copies); nil: every user is real.
	Origin []int32
	// Teacher holds, per real user, TeacherMovies scores (row-major; a
	// movie twin is scored as its movie, index mod TeacherMovies): what
	// Config.Distill distils from.
	Teacher       []float32
	TeacherMovies int
}

// EpochStats describes one finished epoch.
type EpochStats struct {
	Epoch          int     // 1-based
	Loss           float64 // mean training loss over the epoch
	Examples       int
	Seconds        float64 // training time, validation excluded
	ExamplesPerSec float64
	Valid          float64 // Hooks.Validate's value, if HasValid
	HasValid       bool
}

// Hooks lets the caller observe and steer a run. Every field may be nil.
type Hooks struct {
	OnEpoch  func(EpochStats)
	OnBatch  func(done, total int)                 // after every step, on Run's goroutine; total: this run's Epochs·steps (not PlanEpochs')
	Validate func(m *tower.Model) (float64, error) // higher is better; enables early stopping
}

// Result summarises a run.
type Result struct {
	Epochs         []EpochStats
	BestEpoch      int     // the epoch whose weights the model holds at the end
	ExamplesPerSec float64 // median over epochs
	Seconds        float64 // wall time of the whole run, validation included
}

// Run trains m in place. It validates cfg and d (reporting every problem
// at once), honours ctx between steps, and with Hooks.Validate keeps the
// weights of the best epoch. With a fixed Workers count and Seed, two runs
// produce identical weights bit for bit.
func Run(ctx context.Context, m *tower.Model, d Data, cfg Config, h Hooks) (Result, error) {
	if err := validate(m, d, cfg); err != nil {
		return Result{}, fmt.Errorf("train: %w", err)
	}
	start := time.Now()
	t := newTrainer(m, d, cfg)
	defer t.close()

	var res Result
	var best *tower.Model
	bestValid := math.Inf(-1)
	since := 0
	order := make([]int32, len(d.Train))
	for i := range order {
		order[i] = int32(i)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x746f776572)) // the only randomness: shuffling
	perEpoch := len(d.Train) / cfg.BatchSize
	if rem := len(d.Train) % cfg.BatchSize; rem >= 2 || rem == 1 && cfg.Objective == Pointwise {
		perEpoch++
	}
	totalSteps := cmp.Or(cfg.PlanEpochs, cfg.Epochs) * perEpoch // the schedule's
	runSteps := cfg.Epochs * perEpoch                           // the progress reported
	step := 0
	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		t0 := time.Now()
		var loss float64
		n := 0
		for lo := 0; lo < len(order); lo += cfg.BatchSize {
			if err := ctx.Err(); err != nil {
				return res, fmt.Errorf("train: %w", err)
			}
			hi := min(lo+cfg.BatchSize, len(order))
			if cfg.Objective == Softmax && hi-lo < 2 {
				continue // a softmax over one item has no negatives
			}
			if cfg.Schedule != "" && cfg.Schedule != Constant {
				t.opt.SetLearningRate(cfg.LearningRate * scheduleFactor(cfg.Schedule, step, totalSteps))
			}
			loss += t.step(order[lo:hi]) * float64(hi-lo)
			n += hi - lo
			step++
			if h.OnBatch != nil {
				h.OnBatch(step, runSteps)
			}
		}
		secs := time.Since(t0).Seconds()
		st := EpochStats{Epoch: epoch, Loss: loss / float64(max(n, 1)), Examples: n, Seconds: secs, ExamplesPerSec: perSecond(n, secs)}
		stop := false
		if h.Validate != nil {
			v, err := h.Validate(m)
			if err != nil {
				return res, fmt.Errorf("train: validate epoch %d: %w", epoch, err)
			}
			st.Valid, st.HasValid = v, true
			if v > bestValid || res.BestEpoch == 0 {
				bestValid, res.BestEpoch, since = v, epoch, 0
				if epoch < cfg.Epochs { // the last epoch's weights are already in m
					if best == nil {
						best = m.Clone()
					} else {
						best.CopyWeightsFrom(m)
					}
				}
			} else {
				since++
				stop = cfg.Patience > 0 && since >= cfg.Patience
			}
		} else {
			res.BestEpoch = epoch
		}
		res.Epochs = append(res.Epochs, st)
		if h.OnEpoch != nil {
			h.OnEpoch(st)
		}
		if stop {
			break
		}
	}
	if last := res.Epochs[len(res.Epochs)-1].Epoch; res.BestEpoch != last && best != nil {
		m.CopyWeightsFrom(best)
	}
	rates := make([]float64, len(res.Epochs))
	for i, e := range res.Epochs {
		rates[i] = e.ExamplesPerSec
	}
	slices.Sort(rates)
	res.ExamplesPerSec = rates[len(rates)/2]
	if len(rates)%2 == 0 {
		res.ExamplesPerSec = (rates[len(rates)/2-1] + rates[len(rates)/2]) / 2
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// perSecond is n examples over secs seconds; 0 when the clock measured no
// time (a coarse clock and a tiny epoch), where n/0 would be NaN or +Inf,
// which the manifest's JSON cannot hold.
func perSecond(n int, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(n) / secs
}

// scheduleFactor is the share of the learning rate that step (0-based) of
// total gets under schedule: 1 at the first step, falling to 1/total at the
// last (Linear, Cosine).
func scheduleFactor(schedule string, step, total int) float32 {
	if total <= 0 {
		return 1
	}
	p := float64(step) / float64(total) // progress before the step, in [0, 1)
	switch schedule {
	case Linear:
		return float32(1 - p)
	case Cosine:
		return float32(0.5 * (1 + math.Cos(math.Pi*p)))
	}
	return 1
}

// realOrigins returns the origins of n real users: each stands for itself.
func realOrigins(n int) []int32 {
	o := make([]int32, n)
	for i := range o {
		o[i] = int32(i)
	}
	return o
}

// validateTeacher checks what distillation reads: a score for every real
// user and movie.
func validateTeacher(d Data) error {
	nm := d.TeacherMovies
	if nm < 1 || len(d.Teacher)%nm != 0 || len(d.Movies)%nm != 0 {
		return fmt.Errorf("distillation: %d teacher scores of %d movies each, for %d movies", len(d.Teacher), nm, len(d.Movies))
	}
	rows := len(d.Teacher) / nm
	if d.Origin == nil {
		if len(d.Users) > rows {
			return fmt.Errorf("distillation: teacher scores for %d users, %d users", rows, len(d.Users))
		}
		return nil
	}
	if len(d.Origin) != len(d.Users) {
		return fmt.Errorf("distillation: %d origins for %d users", len(d.Origin), len(d.Users))
	}
	for i, o := range d.Origin {
		if o < 0 || int(o) >= rows {
			return fmt.Errorf("distillation: user %d stands for user %d, teacher scores for %d", i, o, rows)
		}
	}
	return nil
}

const maxListed = 10 // data problems listed before summarising

func validate(m *tower.Model, d Data, cfg Config) error {
	errs := []error{cfg.Validate()}
	if m == nil {
		return errors.Join(append(errs, errors.New("nil model"))...)
	}
	if cfg.Objective == Pointwise && !m.HasRatingHead() {
		errs = append(errs, errors.New("the pointwise objective needs a model with a rating head"))
	}
	if cfg.Objective == Softmax && m.HasRatingHead() {
		errs = append(errs, errors.New("the softmax objective would leave the model's rating head untrained"))
	}
	if len(d.Train) == 0 {
		errs = append(errs, errors.New("no training interactions"))
	}
	var bad []error
	more := 0
	note := func(err error) {
		if len(bad) < maxListed {
			bad = append(bad, err)
		} else {
			more++
		}
	}
	checkEntities := func(name string, ents []feature.Encoded, vocab []int) {
		for i, e := range ents {
			if len(e) != len(vocab) {
				note(fmt.Errorf("%s %d: %d fields, want %d", name, i, len(e), len(vocab)))
				continue
			}
			for f, idx := range e {
				for _, x := range idx {
					if x < 0 || int(x) >= vocab[f] {
						note(fmt.Errorf("%s %d field %d: index %d outside vocabulary of %d", name, i, f, x, vocab[f]))
					}
				}
			}
		}
	}
	if cfg.HistoryDropout > 0 && cfg.HistoryField >= len(m.UserVocab()) {
		errs = append(errs, fmt.Errorf("history field %d: the user tower has %d fields", cfg.HistoryField, len(m.UserVocab())))
	}
	if cfg.Distill > 0 {
		errs = append(errs, validateTeacher(d))
	}
	if d.Cold != nil && len(d.Cold) != len(d.Users) {
		errs = append(errs, fmt.Errorf("%d cold flags for %d users", len(d.Cold), len(d.Users)))
	}
	checkEntities("user", d.Users, m.UserVocab())
	checkEntities("movie", d.Movies, m.MovieVocab())
	for _, set := range []struct {
		name string
		xs   []Interaction
	}{{"train", d.Train}, {"valid", d.Valid}} {
		for i, x := range set.xs {
			if x.User < 0 || int(x.User) >= len(d.Users) || x.Movie < 0 || int(x.Movie) >= len(d.Movies) {
				note(fmt.Errorf("%s interaction %d: user %d / movie %d out of range", set.name, i, x.User, x.Movie))
			}
			if cfg.Objective == Pointwise && !(x.Rating >= 1 && x.Rating <= 5) {
				note(fmt.Errorf("%s interaction %d: rating %g not in 1..5", set.name, i, x.Rating))
			}
		}
	}
	if more > 0 {
		bad = append(bad, fmt.Errorf("… and %d more data problems", more))
	}
	return errors.Join(append(errs, bad...)...)
}

// trainer holds every buffer of a run, allocated once: steps allocate
// nothing. A step is built serially by the coordinator (Run's goroutine),
// then its phases run on every worker (see phase). The fields are grouped by
// who writes them:
//
//   - the run's settings and statistics: written by newTrainer only;
//   - the step (rows, the two sides' distinct entities, the samplers):
//     written by the coordinator before the phases, read by every worker;
//     the sides' activations and the per-row gradients are written by the
//     workers, each in its own span of slots or rows;
//   - the optimizer state: written in the update phase, each table or
//     layer by the one worker whose task owns it (see planUpdates);
//   - per-worker accumulators: one entry per worker, summed by the
//     coordinator.
type trainer struct {
	// The run: fixed after newTrainer.
	m          *tower.Model
	d          Data
	cfg        Config
	workers    int
	dim        int
	invT       float32        // 1/Temperature
	normalized bool           // the towers' outputs are unit vectors
	freq       []float64      // per movie: train frequency (LogQ)
	userW      []float32      // per user: example weight n_u^−UserWeight, mean 1 over Train (softmax)
	plan       [][]updateTask // per worker: its share of the update phase
	pool       *workerPool

	// The step.
	rows        []Interaction // the step's interactions, one per row
	n           int           // rows in the step
	stamp       int32         // the step's number, for the sides' dedupe
	user, movie side
	negRng      *rand.Rand     // the uniform negatives (softmax)
	drop        historyDropout // nil rng: off
	u2m         *direction     // softmax: user→movie
	dU, dV      []float32      // pointwise: per row ∂loss/∂user and ∂loss/∂movie vector

	// The optimizer and the rating head's state (the towers' slots are in
	// the sides).
	opt  nn.Optimizer
	head headState

	work []workerState // per worker
}

// side is one tower's part of a run: its entities, the step's distinct
// entities among them (each goes through the tower once; rows refer to them
// by slot), their activations and gradients, and the tower's optimizer
// state.
type side struct {
	tw   *tower.Tower
	ents []feature.Encoded // every entity's input (Data.Users or Data.Movies)

	// The step's dedupe, by the coordinator.
	stampOf []int32           // entity → the stamp of the last step that had it
	slotOf  []int32           // entity → its slot in that step
	n       int               // distinct entities in the step
	in      []feature.Encoded // slot → input
	ent     []int32           // slot → entity
	cnt     []int32           // slot → occurrences in the step
	row     []int32           // per row: the slot of the row's entity

	batch  *tower.Batch     // activations, by slot
	grads  []*tower.Grads   // per worker: dense-layer gradients of its span
	sparse []*nn.SparseGrad // per embedding table, used by the task that updates it
	slots  towerSlots       // optimizer state
}

func newSide(tw *tower.Tower, ents []feature.Encoded, rows, capacity, workers, optSlots int) side {
	s := side{tw: tw, ents: ents, batch: tw.NewBatch(capacity), sparse: tw.NewSparseGrads(), slots: newSlots(tw, optSlots)}
	s.stampOf, s.slotOf = make([]int32, len(ents)), make([]int32, len(ents))
	s.in, s.ent, s.cnt = make([]feature.Encoded, capacity), make([]int32, capacity), make([]int32, capacity)
	s.row = make([]int32, rows)
	for range workers {
		s.grads = append(s.grads, tw.NewGrads())
	}
	return s
}

// add puts entity e into the step with the given stamp (once) and counts
// one occurrence; it returns e's slot and whether e is new to the step.
func (s *side) add(e, stamp int32) (int32, bool) {
	isNew := s.stampOf[e] != stamp
	if isNew {
		s.stampOf[e] = stamp
		s.slotOf[e] = int32(s.n)
		s.in[s.n] = s.ents[e]
		s.ent[s.n] = e
		s.cnt[s.n] = 0
		s.n++
	}
	slot := s.slotOf[e]
	s.cnt[slot]++
	return slot, isNew
}

// headState is the rating head's optimizer state.
type headState struct {
	slots [2][]float32
	grad  []float32 // the summed gradient (a field: a local array would escape through the optimizer's interface)
}

// workerState is what one worker accumulates in a step.
type workerState struct {
	loss float64    // the summed (weighted) loss of its rows
	head [2]float64 // pointwise: ∂loss/∂(a, b) of the rating head over its rows
}

// historyDropout holds, per user slot, a copy of the user's fields whose
// history bag is a random subset (buffers reused across steps).
type historyDropout struct {
	rng *rand.Rand
	enc []feature.Encoded
	bag [][]int32
}

type towerSlots struct {
	emb  [][2][]float32 // per table: optimizer slots
	w, b [][2][]float32 // per layer
	sumG *tower.Grads
}

func newSlots(t *tower.Tower, nslots int) towerSlots {
	mk := func(n int) [2][]float32 {
		var s [2][]float32
		for i := range nslots {
			s[i] = make([]float32, n)
		}
		return s
	}
	var s towerSlots
	for _, e := range t.Embeddings {
		s.emb = append(s.emb, mk(len(e.W)))
	}
	for _, l := range t.Layers {
		s.w = append(s.w, mk(len(l.W)))
		s.b = append(s.b, mk(len(l.B)))
	}
	s.sumG = t.NewGrads()
	return s
}

func newTrainer(m *tower.Model, d Data, cfg Config) *trainer {
	bs := cfg.BatchSize
	ms := bs // movie-side capacity: the batch plus the uniform negatives
	if cfg.Objective == Softmax {
		ms += cfg.UniformNegatives
	}
	t := &trainer{m: m, d: d, cfg: cfg, workers: cfg.Workers, dim: m.TowerDim()}
	t.invT = 1 / max(cfg.Temperature, 1e-30)
	t.normalized = m.Config().Normalize
	t.freq, t.userW = frequencies(d, cfg.UserWeight)
	t.plan = planUpdates(m.User(), m.Movie(), d.Users, d.Movies, t.workers)

	if cfg.Optimizer == Adam {
		t.opt = nn.NewAdam(cfg.LearningRate)
	} else {
		t.opt = nn.NewRMSprop(cfg.LearningRate)
	}
	for i := range t.opt.Slots() {
		t.head.slots[i] = make([]float32, 2)
	}
	t.head.grad = make([]float32, 2)

	t.rows = make([]Interaction, bs)
	t.user = newSide(m.User(), d.Users, bs, bs, t.workers, t.opt.Slots())
	t.movie = newSide(m.Movie(), d.Movies, bs, ms, t.workers, t.opt.Slots())
	t.dU, t.dV = make([]float32, t.dim*bs), make([]float32, t.dim*bs)
	// The negatives' stream is derived from the same seed as the shuffle.
	t.negRng = rand.New(rand.NewPCG(cfg.Seed, 0x6e65676174697665))
	if cfg.Objective == Softmax {
		t.u2m = &direction{qOut: t.user.batch.Out, qRow: t.user.row, kRow: t.movie.row, kOut: t.movie.batch.Out, cnt: t.movie.cnt, ent: t.movie.ent, freq: t.freq,
			uniform: float64(cfg.UniformNegatives) / float64(len(d.Movies)), logQScale: cfg.LogQScale}
		if cfg.Distill > 0 {
			origin := d.Origin
			if origin == nil {
				origin = realOrigins(len(d.Users))
			}
			t.u2m.teacher, t.u2m.origin, t.u2m.tMovies = d.Teacher, origin, d.TeacherMovies
			t.u2m.distill, t.u2m.invTau = cfg.Distill, 1/cfg.DistillTemp
		}
		t.u2m.alloc(t.dim, bs, ms, t.workers)
		if cfg.LogQ && cfg.ColdLogQ != cfg.LogQScale && slices.Contains(d.Cold, true) {
			t.u2m.cold = d.Cold
			t.u2m.coldLogQ = cfg.ColdLogQ
			t.u2m.biasCold = make([]float32, ms)
		}
	}
	if cfg.HistoryDropout > 0 {
		t.drop.rng = rand.New(rand.NewPCG(cfg.Seed, 0x64726f70))
		t.drop.enc, t.drop.bag = make([]feature.Encoded, bs), make([][]int32, bs)
	}
	t.work = make([]workerState, t.workers)
	t.pool = newWorkerPool(t.workers, t.phase)
	return t
}

// frequencies returns each movie's share of d.Train, and each user's
// example weight n^−userWeight, normalised to mean 1 over d.Train (0 for
// users without examples). n counts the examples of the real user a user
// stands for (d.Origin): its cold-start twins, history folds and recent
// copies share the real user's weight.
func frequencies(d Data, userWeight float32) (movie []float64, userW []float32) {
	movie = make([]float64, len(d.Movies))
	for _, x := range d.Train {
		movie[x.Movie]++
	}
	for j := range movie {
		movie[j] /= float64(len(d.Train))
	}
	origin := func(u int32) int32 { return u }
	if d.Origin != nil {
		origin = func(u int32) int32 { return d.Origin[u] }
	}
	perUser := make([]float64, len(d.Users)) // by real user
	for _, x := range d.Train {
		perUser[origin(x.User)]++
	}
	var z float64
	for _, c := range perUser {
		if c > 0 {
			z += math.Pow(c, 1-float64(userWeight))
		}
	}
	userW = make([]float32, len(d.Users))
	for u := range userW {
		if c := perUser[origin(int32(u))]; c > 0 {
			userW[u] = float32(math.Pow(c, -float64(userWeight)) * float64(len(d.Train)) / z)
		}
	}
	return movie, userW
}

// dropHistory returns user slot s's input with each item of the history
// bag dropped with probability HistoryDropout (keeping at least one).
func (t *trainer) dropHistory(s int, enc feature.Encoded) feature.Encoded {
	f := t.cfg.HistoryField
	bag := enc[f]
	if len(bag) < 2 {
		return enc
	}
	out := append(t.drop.enc[s][:0], enc...)
	kept := t.drop.bag[s][:0]
	p := float64(t.cfg.HistoryDropout)
	for _, x := range bag {
		if t.drop.rng.Float64() >= p {
			kept = append(kept, x)
		}
	}
	if len(kept) == 0 {
		kept = append(kept, bag[t.drop.rng.IntN(len(bag))])
	}
	out[f] = kept
	t.drop.enc[s], t.drop.bag[s] = out, kept
	return out
}

func (t *trainer) close() { t.pool.close() }

// The phases of a step; each runs on every worker with its own share.
const (
	phaseForward = iota
	phaseLoss
	phaseBackward
	phaseUpdate
)

// span is worker w's share [lo, hi) of n items.
func (t *trainer) span(n, w int) (int, int) {
	return n * w / t.workers, n * (w + 1) / t.workers
}

// step trains on one batch of interaction indexes and returns its mean loss.
func (t *trainer) step(idx []int32) float64 {
	t.collect(idx)
	t.pool.run(phaseForward)
	if t.cfg.Objective == Softmax {
		t.prepareDirection(t.u2m, t.movie.n)
	}
	t.pool.run(phaseLoss)
	t.gatherGrads()
	t.pool.run(phaseBackward)
	t.opt.Begin()
	t.pool.run(phaseUpdate)
	var loss float64
	for _, w := range t.work {
		loss += w.loss
	}
	return loss / float64(t.n)
}

// collect builds the step of the interactions idx: its rows, each side's
// distinct entities (history-dropped users, with HistoryDropout) and, for
// the softmax, the uniform negatives.
func (t *trainer) collect(idx []int32) {
	t.stamp++
	if t.stamp == math.MaxInt32 { // wrap: forget all stamps
		clear(t.user.stampOf)
		clear(t.movie.stampOf)
		t.stamp = 1
	}
	t.n, t.user.n, t.movie.n = len(idx), 0, 0
	for i, k := range idx {
		x := t.d.Train[k]
		t.rows[i] = x
		u, isNew := t.user.add(x.User, t.stamp)
		if isNew && t.drop.rng != nil {
			t.user.in[u] = t.dropHistory(int(u), t.user.in[u])
		}
		t.user.row[i] = u
		t.movie.row[i], _ = t.movie.add(x.Movie, t.stamp)
	}
	if t.cfg.Objective == Softmax {
		for range t.cfg.UniformNegatives {
			t.movie.add(int32(t.negRng.IntN(len(t.d.Movies))), t.stamp)
		}
	}
}

func (t *trainer) phase(p, w int) {
	switch p {
	case phaseForward:
		lo, hi := t.span(t.user.n, w)
		t.user.tw.Forward(t.user.batch, t.user.in, lo, hi)
		lo, hi = t.span(t.movie.n, w)
		t.movie.tw.Forward(t.movie.batch, t.movie.in, lo, hi)
	case phaseLoss:
		lo, hi := t.span(t.n, w)
		if t.cfg.Objective == Softmax {
			t.work[w].loss = t.softmaxRows(t.u2m, w, lo, hi)
		} else {
			t.pointwiseRows(w, lo, hi)
		}
	case phaseBackward:
		t.user.grads[w].Zero()
		t.movie.grads[w].Zero()
		lo, hi := t.span(t.user.n, w)
		t.user.tw.Backward(t.user.batch, t.user.grads[w], lo, hi)
		lo, hi = t.span(t.movie.n, w)
		t.movie.tw.Backward(t.movie.batch, t.movie.grads[w], lo, hi)
	case phaseUpdate:
		t.update(w)
	}
}

// pointwiseRows computes the reference loss of rows [lo, hi): (sigmoid(a·dot
// + b) − (r−1)/4)², averaged over the batch.
func (t *trainer) pointwiseRows(w, lo, hi int) {
	dim := t.dim
	head := t.m.Head()
	a, b := head[0], head[1]
	scale := 2 / float32(t.n)
	var loss, ga, gb float64
	for i := lo; i < hi; i++ {
		u := t.user.batch.Out[int(t.user.row[i])*dim : int(t.user.row[i])*dim+dim]
		v := t.movie.batch.Out[int(t.movie.row[i])*dim : int(t.movie.row[i])*dim+dim]
		var dot float32
		if dim == 8 {
			dot = nn.Dot8(u, v)
		} else {
			dot = nn.Dot(u, v)
		}
		p := nn.Sigmoid(a*dot + b)
		diff := p - (t.rows[i].Rating-1)/4
		wi := float32(1)
		if x := t.rows[i].Weight; x != 0 {
			wi = x
		}
		loss += float64(wi) * float64(diff) * float64(diff)
		dz := wi * scale * diff * p * (1 - p)
		ga += float64(dz * dot)
		gb += float64(dz)
		g := dz * a
		du, dv := t.dU[i*dim:i*dim+dim], t.dV[i*dim:i*dim+dim]
		for d := range du {
			du[d] = g * v[d]
			dv[d] = g * u[d]
		}
	}
	t.work[w] = workerState{loss: loss, head: [2]float64{ga, gb}}
}

// gatherGrads sums the per-row and per-worker output gradients into the
// distinct users' and movies' DOut, in a fixed order (deterministic).
func (t *trainer) gatherGrads() {
	dim := t.dim
	uOut, mOut := t.user.batch.DOut[:t.user.n*dim], t.movie.batch.DOut[:t.movie.n*dim]
	clear(uOut)
	clear(mOut)
	if t.cfg.Objective == Pointwise {
		addRows(uOut, t.dU, t.user.row[:t.n], dim)
		addRows(mOut, t.dV, t.movie.row[:t.n], dim)
		return
	}
	addRows(uOut, t.u2m.dQ, t.user.row[:t.n], dim)
	addTransposed(mOut, t.u2m.dKt, t.movie.n, dim)
}

// addRows adds row i of src into row slot[i] of dst.
func addRows(dst, src []float32, slot []int32, dim int) {
	for i, r := range slot {
		d := dst[int(r)*dim : int(r)*dim+dim]
		for k, g := range src[i*dim : i*dim+dim] {
			d[k] += g
		}
	}
}

// addTransposed adds each dim×n matrix of srcs, transposed, into dst (n×dim).
func addTransposed(dst []float32, srcs [][]float32, n, dim int) {
	for _, src := range srcs {
		for k := 0; k < dim; k++ {
			for j, g := range src[k*n : k*n+n] {
				dst[j*dim+k] += g
			}
		}
	}
}

// updateTask is one independent part of the parameter update: one
// embedding table of a tower (its backward pass and its rows' steps), or a
// tower's dense layers (field −1).
type updateTask struct {
	movie bool // the movie tower, else the user tower
	field int
}

// planUpdates deals the update tasks to the workers, heaviest first, each
// to the least loaded worker, by a static estimate of their cost: a table's
// mean bag length × width (the backward scatter), a tower's dense weights.
// Tasks touch disjoint parameters, so the split does not change the result;
// it only keeps one long bag field (history) from serialising a step.
func planUpdates(uT, mT *tower.Tower, users, movies []feature.Encoded, workers int) [][]updateTask {
	type job struct {
		task updateTask
		cost float64
	}
	var jobs []job
	for _, side := range []struct {
		movie bool
		tw    *tower.Tower
		ents  []feature.Encoded
	}{{false, uT, users}, {true, mT, movies}} {
		for f, e := range side.tw.Embeddings {
			var n int
			for _, x := range side.ents {
				n += len(x[f])
			}
			jobs = append(jobs, job{updateTask{side.movie, f}, float64(n) / float64(max(len(side.ents), 1)) * float64(e.Dim)})
		}
		var dense float64
		for _, l := range side.tw.Layers {
			dense += float64(len(l.W) + len(l.B))
		}
		jobs = append(jobs, job{updateTask{side.movie, -1}, dense / 32}) // per row-step cost ≈ per example; the dense step is once per batch
	}
	slices.SortStableFunc(jobs, func(a, b job) int {
		switch {
		case a.cost > b.cost:
			return -1
		case a.cost < b.cost:
			return 1
		}
		return 0
	})
	plan := make([][]updateTask, workers)
	load := make([]float64, workers)
	for _, j := range jobs {
		w := 0
		for i := range load {
			if load[i] < load[w] {
				w = i
			}
		}
		plan[w] = append(plan[w], j.task)
		load[w] += j.cost
	}
	return plan
}

// update runs worker w's share of the parameter updates (see planUpdates)
// and, on worker 0, the head's.
func (t *trainer) update(w int) {
	for _, task := range t.plan[w] {
		s := &t.user
		if task.movie {
			s = &t.movie
		}
		if task.field >= 0 {
			t.updateEmbedding(s, task.field)
		} else {
			t.updateDense(s)
		}
	}
	if w == 0 && t.m.HasRatingHead() {
		g := t.head.grad
		g[0], g[1] = 0, 0
		for _, ws := range t.work {
			g[0] += float32(ws.head[0])
			g[1] += float32(ws.head[1])
		}
		head := t.m.Head()
		t.opt.Update(head, g, t.head.slots[0], t.head.slots[1], 0)
		head[0] = max(head[0], tower.MinHeadSlope)
	}
}

// updateEmbedding runs the backward pass of side s's embedding table f over
// the step's distinct entities and steps the rows it touched.
func (t *trainer) updateEmbedding(s *side, f int) {
	decay := t.cfg.L2
	e := s.tw.Embeddings[f]
	g := s.sparse[f]
	s.tw.EmbeddingBackward(g, f, s.batch, s.in, 0, s.n)
	dim := e.Dim
	slots := s.slots.emb[f]
	for _, r := range g.Touched() {
		o := int(r) * dim
		t.opt.Update(e.W[o:o+dim], g.G[o:o+dim], rowOf(slots[0], o, dim), rowOf(slots[1], o, dim), decay)
	}
	g.Clear()
}

// updateDense sums the workers' dense-layer gradients of side s and steps
// its layers.
func (t *trainer) updateDense(s *side) {
	decay := t.cfg.L2
	sum := s.grads[0]
	if len(s.grads) > 1 {
		sum = s.slots.sumG
		sum.Zero()
		for _, g := range s.grads {
			sum.Add(g)
		}
	}
	for l, layer := range s.tw.Layers {
		o := &s.slots
		t.opt.Update(layer.W, sum.W[l], o.w[l][0], o.w[l][1], decay)
		t.opt.Update(layer.B, sum.B[l], o.b[l][0], o.b[l][1], 0)
	}
}

func rowOf(s []float32, o, n int) []float32 {
	if s == nil {
		return nil
	}
	return s[o : o+n]
}

// workerPool runs a phase on every worker and waits for all: worker 0 is
// the caller's goroutine, the others are long-lived, so a step costs a few
// channel operations and no allocation.
type workerPool struct {
	fn    func(phase, w int)
	start []chan int
	done  chan struct{}
}

func newWorkerPool(n int, fn func(phase, w int)) *workerPool {
	p := &workerPool{fn: fn, start: make([]chan int, n), done: make(chan struct{}, n)}
	for w := 1; w < n; w++ {
		p.start[w] = make(chan int)
		go func() {
			for ph := range p.start[w] {
				p.fn(ph, w)
				p.done <- struct{}{}
			}
		}()
	}
	return p
}

func (p *workerPool) run(phase int) {
	for w := 1; w < len(p.start); w++ {
		p.start[w] <- phase
	}
	p.fn(phase, 0)
	for w := 1; w < len(p.start); w++ {
		<-p.done
	}
}

func (p *workerPool) close() {
	for w := 1; w < len(p.start); w++ {
		close(p.start[w])
	}
}
