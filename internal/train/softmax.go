package train

import (
	"math"
	"slices"

	"github.com/towerrecall/towerrecall/internal/nn"
)

// direction is the sampled softmax's state: each row's query (user)
// vector is scored against the step's distinct keys (movies), and the key
// of the row's own interaction is its positive.
type direction struct {
	qOut    []float32 // query tower outputs, slot-major (aliases a tower.Batch)
	qRow    []int32   // per row: the query's slot
	kRow    []int32   // per row: the positive key's slot
	kOut    []float32 // key tower outputs, slot-major
	cnt     []int32   // per key slot: occurrences in the step
	ent     []int32   // per key slot: entity index
	freq    []float64 // per key entity: train frequency
	uniform float64   // expected occurrences of each key among uniform negatives
	// With cold set, the rows whose query entity is cold use biasCold,
	// whose logQ correction is scaled by coldLogQ (Config.ColdLogQ).
	logQScale float32 // the logQ correction's scale in the other rows (Config.LogQScale)
	cold      []bool
	coldLogQ  float32
	biasCold  []float32
	shiftCold float32

	nK     int
	kt     []float32   // Dim×nK: keys transposed, so the logits are one FMARows
	logC   []float32   // per key slot: log(cnt)
	bias   []float32   // per key slot: log(cnt) − log(expected count)
	shift  float32     // bound on every logit (normalised towers)
	dQ     []float32   // per row: ∂loss/∂query
	dKt    [][]float32 // per worker: Dim×nK ∂loss/∂keys
	rowBuf [][]float32 // per worker: one row of logits
	qs     [][]float32 // per worker: query/T

	teacher         []float32 // per real user: TeacherMovies scores
	origin          []int32   // per user: its real user
	tMovies         int
	distill, invTau float32
	tKeys           []teacherKey // the step's key slots with their teacher columns, by column
	tBuf, tDiff     [][]float32  // per worker: one row of teacher probabilities, and of teacher − student logits
}

// teacherKey is a key slot and its column in the teacher's rows.
type teacherKey struct{ col, slot int32 }

// teach computes, for a row of real user u whose towers' logits are s, the
// teacher's logits t_j = score_j/τ + bias_j over the step's keys (the
// positive's duplicates masked as in s) and writes e_j = exp(t_j − m),
// m = max t, to worker w's buffer. It returns e, Z = Σ e_j and
// Σ_j p_j·(t_j − m − log Z − s_j) with p_j = e_j/Z: the KL divergence from
// the teacher to the towers is that plus log Σ_j exp s_j.
func (d *direction) teach(w, u int, s, bias []float32, pos int) (e []float32, z float32, kl float64) {
	row := d.teacher[u*d.tMovies : (u+1)*d.tMovies]
	nK := len(s)
	e, diff, bias := d.tBuf[w][:nK], d.tDiff[w][:nK], bias[:nK]
	invTau := d.invTau
	m := float32(math.Inf(-1))
	for _, k := range d.tKeys[:nK] { // in column order: the row is read front to back
		v := row[k.col]*invTau + bias[k.slot]
		e[k.slot], diff[k.slot] = v, v-s[k.slot]
		if v > m { // cheaper than max(), which orders NaNs and signed zeros
			m = v
		}
	}
	if lc := d.logC[pos]; lc != 0 {
		top := e[pos] == m
		e[pos] -= lc
		diff[pos] = e[pos] - s[pos]
		if top {
			m = nn.Max(e)
		}
	}
	z = nn.ExpShiftTo(e, m)
	return e, z, float64(nn.Dot(e, diff)/z) - float64(m) - math.Log(float64(z))
}

func (d *direction) alloc(dim, rows, keys, workers int) {
	d.kt = make([]float32, dim*keys)
	d.logC, d.bias = make([]float32, keys), make([]float32, keys)
	d.dQ = make([]float32, dim*rows)
	if d.teacher != nil {
		d.tKeys = make([]teacherKey, keys)
	}
	for range workers {
		d.dKt = append(d.dKt, make([]float32, dim*keys))
		d.rowBuf = append(d.rowBuf, make([]float32, keys))
		d.qs = append(d.qs, make([]float32, dim))
		if d.teacher != nil {
			d.tBuf = append(d.tBuf, make([]float32, keys))
			d.tDiff = append(d.tDiff, make([]float32, keys))
		}
	}
}

// prepareDirection transposes the keys and sets each key's bias: log(count)
// reproduces the duplicates of an undeduplicated sampled softmax, and with
// LogQ, −log(expected count) corrects for the sampling: an entity of train
// frequency p is expected n·p times among the n in-batch positives and
// K/|movies| times among K uniform negatives (mixed negative sampling, Yang
// et al., WWW 2020; with K = 0 this is Yi et al.'s −log p up to a constant).
func (t *trainer) prepareDirection(d *direction, nK int) {
	dim := t.dim
	d.nK = nK
	maxBias, maxCold := float32(math.Inf(-1)), float32(math.Inf(-1))
	for j := 0; j < nK; j++ {
		for k := 0; k < dim; k++ {
			d.kt[k*nK+j] = d.kOut[j*dim+k]
		}
		c := float32(math.Log(float64(d.cnt[j])))
		d.logC[j] = c
		d.bias[j] = c
		if t.cfg.LogQ {
			q := float32(math.Log(float64(t.n)*d.freq[d.ent[j]] + d.uniform))
			d.bias[j] -= d.logQScale * q
			if d.cold != nil {
				d.biasCold[j] = c - d.coldLogQ*q
				maxCold = max(maxCold, d.biasCold[j])
			}
		}
		maxBias = max(maxBias, d.bias[j])
		if d.teacher != nil {
			d.tKeys[j] = teacherKey{col: d.ent[j] % int32(d.tMovies), slot: int32(j)} // a movie twin is scored as its movie
		}
	}
	if d.teacher != nil {
		slices.SortFunc(d.tKeys[:nK], func(a, b teacherKey) int { return int(a.col - b.col) })
	}
	d.shift = t.invT + maxBias // |q·k| ≤ 1 when normalised
	d.shiftCold = t.invT + maxCold
}

// softmaxRows computes the loss of rows [lo, hi) in direction d, writing
// ∂loss/∂query per row and accumulating ∂loss/∂keys in worker w's buffer,
// and returns the rows' summed (weighted) loss. Row i's logits are
// q_i·k_j/T + bias_j, with the positive's own column counted once
// (accidental hits — other copies of the positive — are masked out). The
// exponentials are shifted by a bound on the row maximum (1/T + max bias for
// normalised towers) instead of the maximum itself, saving a pass; a row
// that would underflow is redone with its true maximum.
func (t *trainer) softmaxRows(d *direction, w, lo, hi int) float64 {
	dim, nK := t.dim, d.nK
	s := d.rowBuf[w][:nK]
	qs := d.qs[w][:dim]
	dkt := d.dKt[w][:dim*nK]
	clear(dkt)
	kt := d.kt[:dim*nK]
	scale := 1 / float32(t.n) // mean over rows
	var loss float64
	for i := lo; i < hi; i++ {
		wi := t.userW[t.rows[i].User]
		if x := t.rows[i].Weight; x != 0 {
			wi *= x
		}
		gScale := scale * t.invT * wi // ∂logit/∂dot = 1/T
		q := d.qOut[int(d.qRow[i])*dim : int(d.qRow[i])*dim+dim]
		for k, v := range q {
			qs[k] = v * t.invT
		}
		pos := int(d.kRow[i])
		bias, shift := d.bias, d.shift
		if d.cold != nil && d.cold[t.rows[i].User] {
			bias, shift = d.biasCold, d.shiftCold
		}
		// A movie's id-less twin (Recipe.Apply) is another entity and
		// stays a negative of its movie's rows, and the movie of its
		// twin's: masking them as accidental hits lowered validation on
		// 6 of 8 splits and seeds (docs/experiments.md, twenty-third round).
		logits := func() {
			copy(s, bias[:nK])
			nn.FMARows(s, qs, 1, kt, nK, dim)
			s[pos] -= d.logC[pos]
		}
		logits()
		sPos := s[pos]
		var te []float32
		var tz float32
		var kl float64
		if d.teacher != nil {
			te, tz, kl = d.teach(w, int(d.origin[t.rows[i].User]), s, bias, pos)
		}
		if !t.normalized {
			shift = nn.Max(s)
		}
		sum := nn.ExpShiftTo(s, shift)
		if sum < 1e-30 { // every logit far below the bound: redo exactly
			logits()
			shift = nn.Max(s)
			sum = nn.ExpShiftTo(s, shift)
		}
		loss += float64(wi) * (math.Log(float64(sum)) + float64(shift-sPos))
		// ∂loss/∂dot_j = gScale·(e_j/sum − [j = pos]); the 1/sum is folded
		// into the products below instead of a pass over s.
		inv := gScale / sum
		if d.teacher != nil {
			// distillation: ∂/∂logit_j of Distill·KL(teacher ‖ student)
			// is Distill·(e_j/sum − p_j)
			loss += float64(wi*d.distill) * (kl + math.Log(float64(sum)) + float64(shift))
			nn.Axpby(-d.distill/tz, te, (1+d.distill)/sum, s) // s_j·(1+Distill)/sum − Distill·p_j
			inv = gScale
		}
		dq := d.dQ[i*dim : i*dim+dim]
		for k, qk := range q {
			row := kt[k*nK : k*nK+nK]
			dq[k] = inv*nn.Dot(s, row) - gScale*row[pos]
			g := dkt[k*nK : k*nK+nK]
			nn.Axpy(qk*inv, s, g)
			g[pos] -= qk * gScale
		}
	}
	return loss
}
