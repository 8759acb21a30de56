// Package tower builds the two towers of the recall model from config: each
// tower embeds its feature fields (mean-pooling bag fields such as genres,
// or pooling the history by recency: SetUserPoolDecay), concatenates them,
// and runs Dense+ReLU hidden layers into a Dim-wide output, optionally
// ReLU'd and L2-normalised. The ranking score of a pair is the dot product
// of the two outputs (cosine when normalised), plus, with a Prior, a
// weighted per-movie bias in one extra vector dimension; an optional rating
// head maps the towers' dot product monotonically onto 1..5.
//
// It sits between feature (which encodes inputs) and train (which fits the
// weights); serving uses UserVector and MovieVector, which are safe for
// concurrent use and allocate nothing in steady state.
package tower

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/nn"
)

// Config describes the two towers. Its values come from the caller (the
// shipped settings live in package config); Validate checks the shape.
type Config struct {
	Dim        int   // output dimension of both towers
	Hidden     []int // widths of the hidden Dense+ReLU layers
	OutputReLU bool  // apply ReLU to the Dim-wide output (the reference recipe does)
	Normalize  bool  // L2-normalise both towers' outputs (the score becomes cosine)
	UserEmbed  []int // embedding width of each user field, in field order
	MovieEmbed []int // embedding width of each movie field, in field order
	RatingHead bool  // rating = 1 + 4·sigmoid(a·dot + b), a > 0
}

// Limits on sizes, enforced by Validate and by ReadModel so that a corrupt
// file cannot make us allocate without bound.
const (
	MaxDim      = 4096
	MaxLayers   = 16
	MaxWidth    = 1 << 14
	MaxFields   = 64
	MaxVocab    = 1 << 24
	MaxEmbedDim = 4096
	MaxParams   = 1 << 28 // floats in the whole model (1 GiB)
)

// MinHeadSlope is the floor of the rating head's slope a: keeping a > 0 makes
// the predicted rating a strictly increasing function of the ranking score.
const MinHeadSlope = 1e-3

// Validate reports every problem of the config at once.
func (c Config) Validate() error {
	var errs []error
	if c.Dim < 1 || c.Dim > MaxDim {
		errs = append(errs, fmt.Errorf("dim %d not in 1..%d", c.Dim, MaxDim))
	}
	if len(c.Hidden) > MaxLayers {
		errs = append(errs, fmt.Errorf("%d hidden layers, at most %d", len(c.Hidden), MaxLayers))
	}
	for i, h := range c.Hidden {
		if h < 1 || h > MaxWidth {
			errs = append(errs, fmt.Errorf("hidden[%d] = %d not in 1..%d", i, h, MaxWidth))
		}
	}
	for name, dims := range map[string][]int{"user": c.UserEmbed, "movie": c.MovieEmbed} {
		if len(dims) == 0 || len(dims) > MaxFields {
			errs = append(errs, fmt.Errorf("%s tower: %d fields, want 1..%d", name, len(dims), MaxFields))
		}
		for i, d := range dims {
			if d < 1 || d > MaxEmbedDim {
				errs = append(errs, fmt.Errorf("%s tower: embedding[%d] width %d not in 1..%d", name, i, d, MaxEmbedDim))
			}
		}
	}
	return errors.Join(errs...)
}

// Tower is one of the two towers. Its layers are exported for the trainer;
// serving code should use Model's methods.
type Tower struct {
	Embeddings []*nn.Embedding
	Layers     []*nn.Dense // hidden layers (each followed by ReLU), then the output layer
	OutputReLU bool
	Normalize  bool

	offsets []int // start of each field in the concatenated input
	inDim   int
	pool    *sync.Pool // *Batch of capacity 1 for serving; a pointer with no New, so the runtime's list of pools does not keep a dropped tower alive
}

func newTower(embed, vocab []int, hidden []int, dim int, outReLU, normalize bool, rng *rand.Rand) *Tower {
	t := &Tower{OutputReLU: outReLU, Normalize: normalize}
	for i, d := range embed {
		t.Embeddings = append(t.Embeddings, nn.NewEmbedding(vocab[i], d, 0.05, rng))
	}
	t.init()
	in := t.inDim
	for _, h := range hidden {
		t.Layers = append(t.Layers, nn.NewDense(in, h, true, rng))
		in = h
	}
	t.Layers = append(t.Layers, nn.NewDense(in, dim, outReLU, rng))
	return t
}

func (t *Tower) init() {
	t.offsets = make([]int, len(t.Embeddings))
	t.inDim = 0
	for i, e := range t.Embeddings {
		t.offsets[i] = t.inDim
		t.inDim += e.Dim
	}
	t.pool = &sync.Pool{}
}

// Fields is the number of input fields.
func (t *Tower) Fields() int { return len(t.Embeddings) }

// InDim is the width of the concatenated embeddings.
func (t *Tower) InDim() int { return t.inDim }

// Dim is the output width.
func (t *Tower) Dim() int { return t.Layers[len(t.Layers)-1].Out }

// Model is the pair of towers and the optional rating head.
type Model struct {
	cfg        Config
	userVocab  []int
	movieVocab []int
	user       *Tower
	movie      *Tower
	head       []float32 // [a, b], nil without a rating head
	prior      *Prior    // nil: the vectors are the towers' outputs
}

// Prior is a per-movie score kept outside the towers (a popularity prior
// from recent counts, say): with it, the served vectors gain one last
// dimension, Weight on the user side and the movie's bias on the movie
// side, so one inner product scores tower·tower + Weight·bias. Only the
// bias for a movie the towers compute from features (one without a table
// entry, such as a new catalogue movie) lives in the model; the per-movie
// table goes into the exported movie vectors, so fresher counts need no
// retraining.
type Prior struct {
	Weight      float32 // the user side of the extra dimension, for a known user
	DefaultBias float32 // MovieVector's bias: a movie without counts
	// ColdWeight replaces Weight for a cold user: one whose IDFields (user
	// field positions, such as the id and the history) are all out of
	// vocabulary. Empty IDFields: every user gets Weight.
	ColdWeight float32
	IDFields   []int
	// RecentWeight replaces Weight for a user known only through
	// RecentFields (a subset of IDFields: the recent-history field), such
	// as a new user who sends recently watched movies. Empty RecentFields:
	// such a user gets Weight.
	RecentWeight float32
	RecentFields []int
	// FeatureShare mixes a Known user's query with the one from their
	// features alone: (1 − FeatureShare) × the towers' output for the
	// user plus FeatureShare × their output with every IDFields field out
	// of vocabulary. 0: the user's own query. Validation chooses it: on a
	// timeline, a returning user's past tastes may predict their next
	// ratings less well than people like them do.
	FeatureShare float32
}

// Group is how well the model knows a user, for the prior's weight.
type Group int

const (
	Known  Group = iota // an id field other than RecentFields is in vocabulary
	Recent              // only RecentFields are
	Cold                // no IDFields are
)

// Group returns the user's group under p (Known when p has no IDFields).
func (p *Prior) Group(m *Model, in feature.Encoded) Group {
	return p.group(func(f int) bool { return m.knows(in, f) })
}

// WeightWhen is the user side of the prior's dimension for a user whose
// user field f is in vocabulary when known(f) (/model reports it for the
// groups without serving one).
func (p *Prior) WeightWhen(known func(f int) bool) float32 {
	return p.weight(p.group(known))
}

// group is the group of a user whose user field f is in vocabulary when
// known(f).
func (p *Prior) group(known func(f int) bool) Group {
	if len(p.IDFields) == 0 {
		return Known
	}
	g := Cold
	for _, f := range p.IDFields {
		if !known(f) {
			continue
		}
		if !slices.Contains(p.RecentFields, f) {
			return Known
		}
		g = Recent
	}
	return g
}

// weight is the user side of the prior's dimension for a user of group g.
func (p *Prior) weight(g Group) float32 {
	switch g {
	case Recent:
		return p.RecentWeight
	case Cold:
		return p.ColdWeight
	}
	return p.Weight
}

// Cold reports whether the encoded user in is cold: every field listed in
// idFields holds only out-of-vocabulary indexes (or nothing). Indexes
// outside a vocabulary count as out of vocabulary, as in UserVector.
func (m *Model) Cold(in feature.Encoded, idFields []int) bool {
	for _, f := range idFields {
		if m.knows(in, f) {
			return false
		}
	}
	return true
}

// knows reports whether user field f of in holds an index in vocabulary.
func (m *Model) knows(in feature.Encoded, f int) bool {
	rows := m.user.Embeddings[f].Rows
	for _, r := range in[f] {
		if r != feature.OOV && r >= 0 && int(r) < rows {
			return true
		}
	}
	return false
}

// New builds a model with freshly initialised weights. userVocab and
// movieVocab are the table sizes (OOV row included) of each field.
func New(cfg Config, userVocab, movieVocab []int, rng *rand.Rand) (*Model, error) {
	errs := []error{cfg.Validate()}
	if len(userVocab) != len(cfg.UserEmbed) {
		errs = append(errs, fmt.Errorf("%d user vocabularies for %d user fields", len(userVocab), len(cfg.UserEmbed)))
	}
	if len(movieVocab) != len(cfg.MovieEmbed) {
		errs = append(errs, fmt.Errorf("%d movie vocabularies for %d movie fields", len(movieVocab), len(cfg.MovieEmbed)))
	}
	for i, v := range slices.Concat(userVocab, movieVocab) {
		if v < 1 || v > MaxVocab {
			errs = append(errs, fmt.Errorf("vocabulary %d: size %d not in 1..%d", i, v, MaxVocab))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("tower: %w", err)
	}
	if n := paramCount(cfg, userVocab, movieVocab); n > MaxParams {
		return nil, fmt.Errorf("tower: %d parameters, at most %d", n, MaxParams)
	}
	cfg = cloneConfig(cfg)
	m := &Model{cfg: cfg, userVocab: slices.Clone(userVocab), movieVocab: slices.Clone(movieVocab)}
	m.user = newTower(cfg.UserEmbed, userVocab, cfg.Hidden, cfg.Dim, cfg.OutputReLU, cfg.Normalize, rng)
	m.movie = newTower(cfg.MovieEmbed, movieVocab, cfg.Hidden, cfg.Dim, cfg.OutputReLU, cfg.Normalize, rng)
	if cfg.RatingHead {
		m.head = []float32{1, 0}
	}
	return m, nil
}

func cloneConfig(c Config) Config {
	c.Hidden = slices.Clone(c.Hidden)
	c.UserEmbed = slices.Clone(c.UserEmbed)
	c.MovieEmbed = slices.Clone(c.MovieEmbed)
	return c
}

func paramCount(cfg Config, userVocab, movieVocab []int) int {
	n := 0
	for _, side := range []struct{ embed, vocab []int }{{cfg.UserEmbed, userVocab}, {cfg.MovieEmbed, movieVocab}} {
		in := 0
		for i, d := range side.embed {
			n += d * side.vocab[i]
			in += d
		}
		for _, h := range append(slices.Clone(cfg.Hidden), cfg.Dim) {
			n += in*h + h
			in = h
		}
	}
	return n + 2
}

// Dim is the width of the user and movie vectors: the towers' output, plus
// one with a prior.
func (m *Model) Dim() int {
	if m.prior != nil {
		return m.cfg.Dim + 1
	}
	return m.cfg.Dim
}

// TowerDim is the width of the towers' output (Dim without the prior).
func (m *Model) TowerDim() int { return m.cfg.Dim }

// SetPrior adds the prior's dimension to the vectors (nil removes it). Not
// safe while vectors are being computed.
func (m *Model) SetPrior(p *Prior) {
	if p != nil {
		c := *p
		c.IDFields, c.RecentFields = slices.Clone(p.IDFields), slices.Clone(p.RecentFields)
		p = &c
	}
	m.prior = p
}

// Prior returns a copy of the model's prior, or nil.
func (m *Model) Prior() *Prior {
	if m.prior == nil {
		return nil
	}
	c := *m.prior
	c.IDFields, c.RecentFields = slices.Clone(c.IDFields), slices.Clone(c.RecentFields)
	return &c
}

// SetUserPoolDecay makes the user tower pool field f's bags by recency
// (nn.Embedding.Decay: the k-th index weighs decay^k; 0 is the plain
// mean). The weights file does not hold it: the artifact stores it beside
// the history (artifact.Recent) and sets it at load.
func (m *Model) SetUserPoolDecay(f int, decay float32) { m.user.Embeddings[f].Decay = decay }

// Config returns a copy of the model's config.
func (m *Model) Config() Config { return cloneConfig(m.cfg) }

// UserVocab returns the user vocabulary sizes the model was built for.
func (m *Model) UserVocab() []int { return slices.Clone(m.userVocab) }

// MovieVocab returns the movie vocabulary sizes the model was built for.
func (m *Model) MovieVocab() []int { return slices.Clone(m.movieVocab) }

// HasRatingHead reports whether Rating is meaningful.
func (m *Model) HasRatingHead() bool { return m.head != nil }

// User is the user tower (for the trainer).
func (m *Model) User() *Tower { return m.user }

// Movie is the movie tower (for the trainer).
func (m *Model) Movie() *Tower { return m.movie }

// Head returns the rating head parameters [a, b] (aliased, for the
// trainer), or nil.
func (m *Model) Head() []float32 { return m.head }

// Rating predicts the rating of the movie with vector movie by the user
// with vector user (UserVector's and MovieVector's) from the towers'
// inner product alone, as the head was trained: a prior's weighted bias,
// in the last dimension, is part of the score but not of the rating.
// Without a head it returns 0.
func (m *Model) Rating(user, movie []float32) float32 {
	d := m.cfg.Dim
	return m.predictRating(nn.Dot(user[:d], movie[:d]))
}

// predictRating maps the towers' inner product to a rating in [1, 5]:
// 1 + 4·sigmoid(a·dot + b). With a > 0 it is increasing in dot, so without
// a prior, ranking by the predicted rating equals ranking by the score.
// Without a head it returns 0.
func (m *Model) predictRating(dot float32) float32 {
	if m.head == nil {
		return 0
	}
	return 1 + 4*nn.Sigmoid(m.head[0]*dot+m.head[1])
}

// UserVector writes the user's vector (len Dim) into dst. It is safe for
// concurrent use and does not allocate in steady state (with a feature
// share, for towers up to 64 wide). Indices outside a field's vocabulary
// are treated as out-of-vocabulary; a wrong number of fields or a short
// dst panics. With a prior, the last value is its
// weight for the user's Group.
func (m *Model) UserVector(dst []float32, in feature.Encoded) {
	p := m.prior
	if p == nil {
		m.user.vector(dst, in)
		return
	}
	d := m.cfg.Dim
	if len(dst) < d+1 {
		panic(fmt.Sprintf("tower: dst has length %d, want %d", len(dst), d+1))
	}
	g := p.Group(m, in)
	dst[d] = p.weight(g)
	m.user.vector(dst, in)
	if s := p.FeatureShare; s > 0 && g == Known {
		var qb [64]float32
		q := qb[:0]
		if d > len(qb) {
			q = make([]float32, d)
		}
		q = q[:d]
		m.FeaturesOnly(q, in, p.IDFields)
		MixFeatures(dst[:d], q, s)
	}
}

// MixFeatures sets own to (1 − share) × own + share × feat: a known
// user's query mixed with their features-only one (Prior.FeatureShare).
func MixFeatures(own, feat []float32, share float32) {
	for i, v := range feat {
		own[i] = (1-share)*own[i] + share*v
	}
}

// FeaturesOnly writes the user tower's output (TowerDim values) for in
// with the fields withheld (the id and history fields) out of vocabulary:
// the query of people like the user, the part FeatureShare mixes in.
func (m *Model) FeaturesOnly(dst []float32, in feature.Encoded, withheld []int) {
	m.user.vector(dst, in, withheld...)
}

// MovieVector writes the movie's vector (len Dim) into dst; see UserVector.
// With a prior, the last value is its DefaultBias: the bias of a movie
// without counts (the artifact's exported vectors carry each known movie's
// own bias there).
func (m *Model) MovieVector(dst []float32, in feature.Encoded) {
	if m.prior != nil {
		if len(dst) < m.cfg.Dim+1 {
			panic(fmt.Sprintf("tower: dst has length %d, want %d", len(dst), m.cfg.Dim+1))
		}
		dst[m.cfg.Dim] = m.prior.DefaultBias
	}
	m.movie.vector(dst, in)
}

// vector writes the tower's output for in into dst, the fields listed in
// withheld pooled as out of vocabulary (a user without an id or history).
func (t *Tower) vector(dst []float32, in feature.Encoded, withheld ...int) {
	if len(in) != len(t.Embeddings) {
		panic(fmt.Sprintf("tower: %d input fields, want %d", len(in), len(t.Embeddings)))
	}
	dim := t.Dim()
	if len(dst) < dim {
		panic(fmt.Sprintf("tower: dst has length %d, want %d", len(dst), dim))
	}
	b, ok := t.pool.Get().(*Batch)
	if !ok {
		b = t.NewBatch(1)
	}
	x := b.X[:t.inDim]
	for f, e := range t.Embeddings {
		idx := in[f]
		safe := true
		for _, r := range idx {
			if r < 0 || int(r) >= e.Rows {
				safe = false
			}
		}
		if !safe || slices.Contains(withheld, f) {
			idx = b.oov[:1]
		}
		e.PoolTo(x[t.offsets[f]:t.offsets[f]+e.Dim], idx)
	}
	t.forwardDense(b, 0, 1)
	copy(dst[:dim], b.Out[:dim])
	t.pool.Put(b)
}

// Clone returns a deep copy of the model.
func (m *Model) Clone() *Model {
	c := &Model{cfg: cloneConfig(m.cfg), userVocab: slices.Clone(m.userVocab), movieVocab: slices.Clone(m.movieVocab), head: slices.Clone(m.head), prior: m.Prior()}
	c.user = m.user.clone()
	c.movie = m.movie.clone()
	return c
}

func (t *Tower) clone() *Tower {
	c := &Tower{OutputReLU: t.OutputReLU, Normalize: t.Normalize}
	for _, e := range t.Embeddings {
		c.Embeddings = append(c.Embeddings, &nn.Embedding{Rows: e.Rows, Dim: e.Dim, W: slices.Clone(e.W), Decay: e.Decay})
	}
	for _, l := range t.Layers {
		c.Layers = append(c.Layers, &nn.Dense{In: l.In, Out: l.Out, W: slices.Clone(l.W), B: slices.Clone(l.B)})
	}
	c.init()
	return c
}

// CopyWeightsFrom overwrites m's weights with src's; both must have the
// same shapes (programmer error otherwise).
func (m *Model) CopyWeightsFrom(src *Model) {
	m.user.copyFrom(src.user)
	m.movie.copyFrom(src.movie)
	if len(m.head) != len(src.head) {
		panic("tower: copy between models with and without a rating head")
	}
	copy(m.head, src.head)
}

func (t *Tower) copyFrom(s *Tower) {
	if len(t.Embeddings) != len(s.Embeddings) || len(t.Layers) != len(s.Layers) {
		panic("tower: copy between towers of different shapes")
	}
	for i, e := range t.Embeddings {
		mustCopy(e.W, s.Embeddings[i].W)
	}
	for i, l := range t.Layers {
		mustCopy(l.W, s.Layers[i].W)
		mustCopy(l.B, s.Layers[i].B)
	}
}

func mustCopy(dst, src []float32) {
	if len(dst) != len(src) {
		panic(fmt.Sprintf("tower: copy %d floats into %d", len(src), len(dst)))
	}
	copy(dst, src)
}
