package train

import (
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
}

// Data is what a run trains on. Users[i] and Movies[j] are the encoded
// features of the entities the interactions index.
type Data struct {
	Users, Movies []feature.Encoded
	Train, Valid  []Interaction
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
	OnBatch  func(done, total int)                  // after every step, on Run's goroutine
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
	totalSteps := cfg.Epochs * ((len(d.Train) + cfg.BatchSize - 1) / cfg.BatchSize)
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
			loss += t.step(order[lo:hi]) * float64(hi-lo)
			n += hi - lo
			step++
			if h.OnBatch != nil {
				h.OnBatch(step, totalSteps)
			}
		}
		secs := time.Since(t0).Seconds()
		st := EpochStats{Epoch: epoch, Loss: loss / float64(max(n, 1)), Examples: n, Seconds: secs, ExamplesPerSec: float64(n) / secs}
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
// nothing.
type trainer struct {
	m        *tower.Model
	d        Data
	cfg      Config
	workers  int
	dim      int
	opt      nn.Optimizer
	uT, mT   *tower.Tower
	uB, mB   *tower.Batch
	uG, mG   []*tower.Grads // per worker
	uSG, mSG []*nn.SparseGrad
	uS, mS   towerSlots
	headS    [2][]float32
	headG    [][2]float64 // per worker
	lossW    []float64    // per worker

	// Per-step dedupe: each distinct user and movie goes through its tower
	// once; rows refer to them by slot.
	uStamp, mStamp []int32 // entity → step stamp
	uSlot, mSlot   []int32 // entity → slot in this step
	stamp          int32
	uniqU, uniqM   []feature.Encoded
	mEnt           []int32 // slot → movie entity
	rowU, rowM     []int32
	rows           []Interaction
	n, nU, nM      int

	// softmax
	invT   float32
	logP   []float32 // per movie: log(train frequency); 0 without LogQ
	cnt    []int32   // per movie slot: occurrences in the step
	logC   []float32 // per movie slot: log(cnt)
	bias   []float32 // per movie slot: log(cnt) − logP
	vt     []float32 // Dim×nM: movie outputs transposed
	dVt    [][]float32
	rowBuf [][]float32
	dU, dV []float32 // per row ∂loss/∂user vector (and movie vector, pointwise)
	uScaled    [][]float32 // per worker: u/T
	shift      float32     // bound on every logit when normalized
	normalized bool
	headGrad   []float32

	pool *workerPool
}

type towerSlots struct {
	emb    [][2][]float32 // per table: optimizer slots
	w, b   [][2][]float32 // per layer
	sumG   *tower.Grads
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
	t := &trainer{m: m, d: d, cfg: cfg, workers: cfg.Workers, dim: m.Dim(), uT: m.User(), mT: m.Movie()}
	if cfg.Optimizer == Adam {
		t.opt = nn.NewAdam(cfg.LearningRate)
	} else {
		t.opt = nn.NewRMSprop(cfg.LearningRate)
	}
	t.uB, t.mB = t.uT.NewBatch(bs), t.mT.NewBatch(bs)
	for range t.workers {
		t.uG = append(t.uG, t.uT.NewGrads())
		t.mG = append(t.mG, t.mT.NewGrads())
		t.dVt = append(t.dVt, make([]float32, t.dim*bs))
		t.rowBuf = append(t.rowBuf, make([]float32, bs))
		t.uScaled = append(t.uScaled, make([]float32, t.dim))
	}
	t.headG = make([][2]float64, t.workers)
	t.lossW = make([]float64, t.workers)
	t.uSG, t.mSG = t.uT.NewSparseGrads(), t.mT.NewSparseGrads()
	t.uS, t.mS = newSlots(t.uT, t.opt.Slots()), newSlots(t.mT, t.opt.Slots())
	for i := range t.opt.Slots() {
		t.headS[i] = make([]float32, 2)
	}
	t.uStamp, t.uSlot = make([]int32, len(d.Users)), make([]int32, len(d.Users))
	t.mStamp, t.mSlot = make([]int32, len(d.Movies)), make([]int32, len(d.Movies))
	t.uniqU, t.uniqM = make([]feature.Encoded, bs), make([]feature.Encoded, bs)
	t.mEnt = make([]int32, bs)
	t.rowU, t.rowM = make([]int32, bs), make([]int32, bs)
	t.rows = make([]Interaction, bs)
	t.cnt, t.logC, t.bias = make([]int32, bs), make([]float32, bs), make([]float32, bs)
	t.vt = make([]float32, t.dim*bs)
	t.dU, t.dV = make([]float32, t.dim*bs), make([]float32, t.dim*bs)
	t.invT = 1 / max(cfg.Temperature, 1e-30)
	t.normalized = m.Config().Normalize
	t.headGrad = make([]float32, 2)
	t.logP = make([]float32, len(d.Movies))
	if cfg.LogQ {
		freq := make([]int, len(d.Movies))
		for _, x := range d.Train {
			freq[x.Movie]++
		}
		for j, f := range freq {
			if f > 0 {
				t.logP[j] = float32(math.Log(float64(f)/float64(len(d.Train))))
			}
		}
	}
	t.pool = newWorkerPool(t.workers, t.phase)
	return t
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
	t.stamp++
	if t.stamp == math.MaxInt32 { // wrap: forget all stamps
		clear(t.uStamp)
		clear(t.mStamp)
		t.stamp = 1
	}
	t.n, t.nU, t.nM = len(idx), 0, 0
	for i, k := range idx {
		x := t.d.Train[k]
		t.rows[i] = x
		if t.uStamp[x.User] != t.stamp {
			t.uStamp[x.User] = t.stamp
			t.uSlot[x.User] = int32(t.nU)
			t.uniqU[t.nU] = t.d.Users[x.User]
			t.nU++
		}
		if t.mStamp[x.Movie] != t.stamp {
			t.mStamp[x.Movie] = t.stamp
			t.mSlot[x.Movie] = int32(t.nM)
			t.uniqM[t.nM] = t.d.Movies[x.Movie]
			t.mEnt[t.nM] = x.Movie
			t.cnt[t.nM] = 0
			t.nM++
		}
		t.rowU[i] = t.uSlot[x.User]
		t.rowM[i] = t.mSlot[x.Movie]
		t.cnt[t.rowM[i]]++
	}
	t.pool.run(phaseForward)
	if t.cfg.Objective == Softmax {
		t.prepareSoftmax()
	}
	t.pool.run(phaseLoss)
	t.gatherGrads()
	t.pool.run(phaseBackward)
	t.opt.Begin()
	t.pool.run(phaseUpdate)
	var loss float64
	for _, l := range t.lossW {
		loss += l
	}
	return loss / float64(t.n)
}

func (t *trainer) phase(p, w int) {
	switch p {
	case phaseForward:
		lo, hi := t.span(t.nU, w)
		t.uT.Forward(t.uB, t.uniqU, lo, hi)
		lo, hi = t.span(t.nM, w)
		t.mT.Forward(t.mB, t.uniqM, lo, hi)
	case phaseLoss:
		lo, hi := t.span(t.n, w)
		if t.cfg.Objective == Softmax {
			t.softmaxRows(w, lo, hi)
		} else {
			t.pointwiseRows(w, lo, hi)
		}
	case phaseBackward:
		t.uG[w].Zero()
		t.mG[w].Zero()
		lo, hi := t.span(t.nU, w)
		t.uT.Backward(t.uB, t.uG[w], lo, hi)
		lo, hi = t.span(t.nM, w)
		t.mT.Backward(t.mB, t.mG[w], lo, hi)
	case phaseUpdate:
		t.update(w)
	}
}

// prepareSoftmax transposes the movie outputs and sets each column's bias:
// log(count) reproduces the duplicates of an undeduplicated in-batch softmax,
// −log p the logQ correction.
func (t *trainer) prepareSoftmax() {
	dim, nM := t.dim, t.nM
	out := t.mB.Out
	maxBias := float32(math.Inf(-1))
	defer func() { t.shift = t.invT + maxBias }() // |u·v| ≤ 1 when normalised
	for j := 0; j < nM; j++ {
		for d := 0; d < dim; d++ {
			t.vt[d*nM+j] = out[j*dim+d]
		}
		c := float32(math.Log(float64(t.cnt[j])))
		t.logC[j] = c
		t.bias[j] = c - t.logP[t.mEnt[j]]
		maxBias = max(maxBias, t.bias[j])
	}
}

// softmaxRows computes the loss and gradients of rows [lo, hi): row i's
// logits over the step's distinct movies are u_i·v_j/T + bias_j, with the
// positive's own column counted once (accidental hits — other copies of the
// positive — are masked out). The exponentials are shifted by a bound on the
// row maximum (1/T + max bias for normalised towers) instead of the maximum
// itself, which saves a pass; a row that would underflow is redone with its
// true maximum.
func (t *trainer) softmaxRows(w, lo, hi int) {
	dim, nM := t.dim, t.nM
	s := t.rowBuf[w][:nM]
	us := t.uScaled[w][:dim]
	dvt := t.dVt[w][:dim*nM]
	clear(dvt)
	vt := t.vt[:dim*nM]
	uOut := t.uB.Out
	scale := 1 / float32(t.n) // mean over rows
	gScale := scale * t.invT  // ∂logit/∂dot = 1/T
	var loss float64
	for i := lo; i < hi; i++ {
		u := uOut[int(t.rowU[i])*dim : int(t.rowU[i])*dim+dim]
		for d, v := range u {
			us[d] = v * t.invT
		}
		pos := int(t.rowM[i])
		logits := func() {
			copy(s, t.bias[:nM])
			nn.FMARows(s, us, 1, vt, nM, dim)
			s[pos] -= t.logC[pos]
		}
		logits()
		sPos := s[pos]
		shift := t.shift
		if !t.normalized {
			shift = slices.Max(s)
		}
		sum := nn.ExpShiftTo(s, shift)
		if sum < 1e-30 { // every logit far below the bound: redo exactly
			logits()
			shift = slices.Max(s)
			sum = nn.ExpShiftTo(s, shift)
		}
		loss += math.Log(float64(sum)) + float64(shift-sPos)
		// ∂loss/∂dot_j = gScale·(e_j/sum − [j = pos]); the 1/sum is folded
		// into the products below instead of a pass over s.
		inv := gScale / sum
		du := t.dU[i*dim : i*dim+dim]
		for d, ud := range u {
			row := vt[d*nM : d*nM+nM]
			du[d] = inv*nn.Dot(s, row) - gScale*row[pos]
			g := dvt[d*nM : d*nM+nM]
			nn.Axpy(ud*inv, s, g)
			g[pos] -= ud * gScale
		}
	}
	t.lossW[w] = loss
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
		u := t.uB.Out[int(t.rowU[i])*dim : int(t.rowU[i])*dim+dim]
		v := t.mB.Out[int(t.rowM[i])*dim : int(t.rowM[i])*dim+dim]
		var dot float32
		if dim == 8 {
			dot = nn.Dot8(u, v)
		} else {
			dot = nn.Dot(u, v)
		}
		p := nn.Sigmoid(a*dot + b)
		diff := p - (t.rows[i].Rating-1)/4
		loss += float64(diff) * float64(diff)
		dz := scale * diff * p * (1 - p)
		ga += float64(dz * dot)
		gb += float64(dz)
		g := dz * a
		du, dv := t.dU[i*dim:i*dim+dim], t.dV[i*dim:i*dim+dim]
		for d := range du {
			du[d] = g * v[d]
			dv[d] = g * u[d]
		}
	}
	t.lossW[w] = loss
	t.headG[w] = [2]float64{ga, gb}
}

// gatherGrads sums the per-row output gradients into the distinct users'
// and movies' DOut, in row order (deterministic).
func (t *trainer) gatherGrads() {
	dim := t.dim
	clear(t.uB.DOut[:t.nU*dim])
	for i := 0; i < t.n; i++ {
		dst := t.uB.DOut[int(t.rowU[i])*dim : int(t.rowU[i])*dim+dim]
		for d, g := range t.dU[i*dim : i*dim+dim] {
			dst[d] += g
		}
	}
	dOut := t.mB.DOut[:t.nM*dim]
	clear(dOut)
	if t.cfg.Objective == Softmax {
		nM := t.nM
		for _, dvt := range t.dVt {
			for d := 0; d < dim; d++ {
				col := dvt[d*nM : d*nM+nM]
				for j, g := range col {
					dOut[j*dim+d] += g
				}
			}
		}
		return
	}
	for i := 0; i < t.n; i++ {
		dst := dOut[int(t.rowM[i])*dim : int(t.rowM[i])*dim+dim]
		for d, g := range t.dV[i*dim : i*dim+dim] {
			dst[d] += g
		}
	}
}

// update runs worker w's share of the parameter updates. The tasks are the
// two towers (embedding tables, then dense layers) and the head; with two
// workers each takes one tower.
func (t *trainer) update(w int) {
	if w == 0 || t.workers == 1 {
		t.updateTower(t.uT, t.uB, t.uniqU, t.nU, t.uSG, &t.uS, t.uG)
	}
	if w == 1%t.workers {
		t.updateTower(t.mT, t.mB, t.uniqM, t.nM, t.mSG, &t.mS, t.mG)
	}
	if w == 0 && t.m.HasRatingHead() {
		g := t.headGrad // a field: a local array would escape through the interface call
		g[0], g[1] = 0, 0
		for _, hg := range t.headG {
			g[0] += float32(hg[0])
			g[1] += float32(hg[1])
		}
		head := t.m.Head()
		t.opt.Update(head, g, t.headS[0], t.headS[1], 0)
		head[0] = max(head[0], tower.MinHeadSlope)
	}
}

func (t *trainer) updateTower(tw *tower.Tower, b *tower.Batch, in []feature.Encoded, n int, sg []*nn.SparseGrad, s *towerSlots, grads []*tower.Grads) {
	decay := t.cfg.L2
	for f, e := range tw.Embeddings {
		g := sg[f]
		tw.EmbeddingBackward(g, f, b, in, 0, n)
		dim := e.Dim
		for _, r := range g.Touched() {
			o := int(r) * dim
			t.opt.Update(e.W[o:o+dim], g.G[o:o+dim], rowOf(s.emb[f][0], o, dim), rowOf(s.emb[f][1], o, dim), decay)
		}
		g.Clear()
	}
	sum := grads[0]
	if len(grads) > 1 {
		sum = s.sumG
		sum.Zero()
		for _, g := range grads {
			sum.Add(g)
		}
	}
	for l, layer := range tw.Layers {
		t.opt.Update(layer.W, sum.W[l], s.w[l][0], s.w[l][1], decay)
		t.opt.Update(layer.B, sum.B[l], s.b[l][0], s.b[l][1], 0)
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

