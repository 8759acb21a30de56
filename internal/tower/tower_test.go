package tower

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/nn"
	"github.com/towerrecall/towerrecall/internal/nn/gradcheck"
)

func smallConfig(normalize, outReLU, head bool) Config {
	return Config{Dim: 3, Hidden: []int{5}, Normalize: normalize, OutputReLU: outReLU, RatingHead: head,
		UserEmbed: []int{4, 2}, MovieEmbed: []int{3, 2}}
}

func smallModel(t testing.TB, cfg Config, seed uint64) *Model {
	m, err := New(cfg, []int{7, 3}, []int{6, 5}, rand.New(rand.NewPCG(seed, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTowerBackward checks every parameter gradient of a whole tower (bag
// pooling, hidden ReLU layers, output layer, optional output ReLU and L2
// normalisation) against central differences of loss = Σ c·Out, with one
// hidden layer (the shipped shape), two (a ReLU'd layer between two
// others) and none (the output layer reads the embeddings).
func TestTowerBackward(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name               string
		normalize, outReLU bool
		hidden             []int
	}{{"plain", false, false, []int{5}}, {"normalized", true, false, []int{5}}, {"outputReLU", false, true, []int{5}},
		{"normalizedOutputReLU", true, true, []int{5}}, {"twoHidden", true, false, []int{5, 4}},
		{"noHidden", true, false, nil}, {"noHiddenOutputReLU", false, true, nil}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallConfig(tc.normalize, tc.outReLU, false)
			cfg.Hidden = tc.hidden
			m := smallModel(t, cfg, 3)
			tw := m.Movie()
			r := rand.New(rand.NewPCG(9, 9))
			for _, e := range tw.Embeddings { // unit-scale inputs keep ReLUs away from kinks
				for i := range e.W {
					e.W[i] = r.Float32()*2 - 1
				}
			}
			for _, l := range tw.Layers {
				for i := range l.B {
					l.B[i] = 0.3 * (r.Float32()*2 - 1)
				}
			}
			// A movie id shared by two rows (its gradients add up), a
			// genre bag with a repeat and an empty one.
			in := []feature.Encoded{{{1}, {2, 3}}, {{0}, {4}}, {{5}, {1, 2, 4}}, {{1}, {3, 3}}, {{2}, {}}}
			checkTowerGrads(t, tw, in, r)
		})
	}
}

// checkTowerGrads checks every gradient of tw (embeddings, dense weights
// and biases) on the batch in against central differences of a random
// linear function of the outputs, and returns the batch.
func checkTowerGrads(t *testing.T, tw *Tower, in []feature.Encoded, r *rand.Rand) *Batch {
	t.Helper()
	n := len(in)
	c := make([]float32, n*tw.Dim())
	for i := range c {
		c[i] = r.Float32()*2 - 1
	}
	b := tw.NewBatch(n)
	loss := func() float64 {
		tw.Forward(b, in, 0, n)
		var s float64
		for i, v := range c {
			s += float64(v) * float64(b.Out[i])
		}
		return s
	}
	loss()
	if d := kinkDistance(tw, b, n); d < kinkMargin {
		t.Fatalf("a ReLU input %.2g from the kink, under %g: the finite differences would cross it; change the test's weights", d, kinkMargin)
	}
	// A first pass leaves its gradients in the batch's buffers: the
	// second must not read them (a step reuses the batch).
	copy(b.DOut, c)
	tw.Backward(b, tw.NewGrads(), 0, n)
	copy(b.DOut, c) // Backward may overwrite it (the output ReLU's, in place)
	g := tw.NewGrads()
	tw.Backward(b, g, 0, n)
	sg := tw.NewSparseGrads()
	for f := range tw.Embeddings {
		tw.EmbeddingBackward(sg[f], f, b, in, 0, n)
	}
	for f, e := range tw.Embeddings {
		checkGrad(t, "embedding", e.W, sg[f].G, loss)
	}
	for l, layer := range tw.Layers {
		checkGrad(t, "W", layer.W, g.W[l], loss)
		checkGrad(t, "B", layer.B, g.B[l], loss)
	}
	return b
}

// TestTowerBackwardHistory checks the gradients of a user tower with a
// long bag field (the history feature: tens of movies, a repeated row, the
// OOV row for a user without history, an empty bag for a user's first
// rating under the recent-history recipe) against central differences,
// pooled as a plain mean and with recency decay (the recent-history
// feature, Embedding.Decay set through SetUserPoolDecay).
func TestTowerBackwardHistory(t *testing.T) {
	t.Parallel()
	for _, decay := range []float32{0, 0.8} {
		t.Run(fmt.Sprint("decay=", decay), func(t *testing.T) { testTowerBackwardHistory(t, decay) })
	}
}

func testTowerBackwardHistory(t *testing.T, decay float32) {
	cfg := Config{Dim: 4, Hidden: []int{6}, Normalize: true, UserEmbed: []int{3, 16}, MovieEmbed: []int{2}}
	m, err := New(cfg, []int{5, 40}, []int{3}, rand.New(rand.NewPCG(5, 1)))
	if err != nil {
		t.Fatal(err)
	}
	m.SetUserPoolDecay(1, decay)
	tw := m.User()
	r := rand.New(rand.NewPCG(1, 11)) // no ReLU input near its kink at either decay
	for _, e := range tw.Embeddings {
		for i := range e.W {
			e.W[i] = r.Float32()*2 - 1
		}
	}
	long := make([]int32, 30)
	for i := range long {
		long[i] = int32(1 + r.IntN(39))
	}
	in := []feature.Encoded{{{1}, long}, {{2}, {0}}, {{0}, {3, 3, 7}}, {{4}, long[:17]}, {{3}, {}}}
	b := checkTowerGrads(t, tw, in, r)
	n := len(in)
	// The serving path pools the same bag to the same vector.
	v := make([]float32, tw.Dim())
	tw.Forward(b, in, 0, n)
	m.UserVector(v, in[0])
	for j := range v {
		if v[j] != b.Out[j] {
			t.Fatalf("UserVector %v, batch %v", v, b.Out[:tw.Dim()])
		}
	}
}

func checkGrad(t *testing.T, name string, p, analytic []float32, loss func() float64) {
	t.Helper()
	gradcheck.Check(t, name, p, analytic, loss, gradcheck.Tolerance{Step: fdStep, Abs: 3e-3, Rel: 3e-2})
}

// fdStep is the towers' finite-difference step, and kinkMargin the least
// distance of a ReLU's input from 0 that checkTowerGrads accepts: a step
// of one weight moves a pre-activation by about the step (inputs and
// weights are at most about 1 in size).
const fdStep, kinkMargin = 1e-2, 1e-2

// kinkDistance returns the least |pre-activation| of the ReLUs of tw over
// the first n rows of b (after Forward).
func kinkDistance(tw *Tower, b *Batch, n int) float32 {
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

func TestVectorMatchesBatch(t *testing.T) {
	t.Parallel()
	m := smallModel(t, smallConfig(true, false, false), 4)
	in := []feature.Encoded{{{1}, {2}}, {{6}, {0}}}
	b := m.User().NewBatch(2)
	m.User().Forward(b, in, 0, 2)
	v := make([]float32, 3)
	for r := range in {
		m.UserVector(v, in[r])
		for j := range v {
			if v[j] != b.Out[r*3+j] {
				t.Fatalf("row %d: UserVector %v, batch %v", r, v, b.Out[r*3:r*3+3])
			}
		}
	}
	// Out-of-range indices read the OOV row.
	m.UserVector(v, feature.Encoded{{99}, {-1}})
	w := make([]float32, 3)
	m.UserVector(w, feature.Encoded{{0}, {0}})
	if v[0] != w[0] || v[1] != w[1] || v[2] != w[2] {
		t.Fatalf("out-of-range input %v, OOV %v", v, w)
	}
}

func TestUserVectorConcurrent(t *testing.T) {
	t.Parallel()
	m := smallModel(t, smallConfig(true, false, false), 5)
	want := make([]float32, 3)
	in := feature.Encoded{{2}, {1}}
	m.UserVector(want, in)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			v := make([]float32, 3)
			for range 200 {
				m.UserVector(v, in)
				if v[0] != want[0] || v[1] != want[1] || v[2] != want[2] {
					t.Error("concurrent UserVector differs")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestUserVectorAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool is randomised under the race detector")
	}
	m, err := New(shippedConfig(), []int{6041, 3, 8, 22, 700}, []int{3700, 19, 30}, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, 8)
	in := feature.Encoded{{17}, {1}, {3}, {5}, {100}}
	m.UserVector(v, in)
	if a := testing.AllocsPerRun(100, func() { m.UserVector(v, in) }); a != 0 {
		t.Fatalf("UserVector: %v allocs/op", a)
	}
}

func TestPredictRatingMonotone(t *testing.T) {
	t.Parallel()
	m := smallModel(t, smallConfig(false, true, true), 6)
	m.Head()[0], m.Head()[1] = 2, -0.5
	prev := float32(0)
	for d := float32(-5); d <= 5; d += 0.25 {
		r := m.predictRating(d)
		if !(r >= 1 && r <= 5 && r >= prev) { // NaN-safe: every comparison with NaN is false
			t.Fatalf("PredictRating(%g) = %g (prev %g)", d, r, prev)
		}
		prev = r
	}
	if smallModel(t, smallConfig(true, false, false), 6).predictRating(1) != 0 {
		t.Fatal("PredictRating without head")
	}
}

// TestRatingIgnoresPrior: a rating model with a prior predicts from the
// towers' inner product, as its head was trained, not from the score with
// the prior's weighted bias (which pinned every rating near 1).
func TestRatingIgnoresPrior(t *testing.T) {
	t.Parallel()
	m := smallModel(t, smallConfig(false, true, true), 6)
	m.Head()[0], m.Head()[1] = 2, -0.5
	u, mv := feature.Encoded{{1}, {2}}, feature.Encoded{{3}, {1}}
	tu, tm := make([]float32, m.Dim()), make([]float32, m.Dim())
	m.UserVector(tu, u)
	m.MovieVector(tm, mv)
	want := m.Rating(tu, tm)
	if want != m.predictRating(nn.Dot(tu, tm)) || !(want >= 1 && want <= 5) {
		t.Fatalf("without a prior: Rating %g, head of the inner product %g", want, m.predictRating(nn.Dot(tu, tm)))
	}
	m.SetPrior(&Prior{Weight: 3, DefaultBias: -7})
	pu, pm := make([]float32, m.Dim()), make([]float32, m.Dim())
	m.UserVector(pu, u)
	m.MovieVector(pm, mv)
	if got := m.Rating(pu, pm); got != want {
		t.Errorf("with a prior: Rating %g, want the towers' %g (the whole score would give %g)", got, want, m.predictRating(nn.Dot(pu, pm)))
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	bad := Config{Dim: 0, Hidden: []int{-1}, UserEmbed: nil, MovieEmbed: []int{0}}
	_, err := New(bad, []int{1}, []int{0}, rand.New(rand.NewPCG(1, 1)))
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"dim 0", "hidden[0]", "user tower", "embedding[0]", "vocabulary"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{smallConfig(true, false, false), smallConfig(false, true, true)} {
		m := smallModel(t, cfg, 7)
		var buf bytes.Buffer
		n, err := m.WriteTo(&buf)
		if err != nil || n != int64(buf.Len()) {
			t.Fatalf("WriteTo: %d %v (buffer %d)", n, err, buf.Len())
		}
		data := buf.Bytes()
		got, err := ReadModel(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if got.HasRatingHead() != cfg.RatingHead || got.Dim() != cfg.Dim {
			t.Fatal("config not restored")
		}
		in := feature.Encoded{{3}, {1, 2}}
		a, b := make([]float32, 3), make([]float32, 3)
		m.MovieVector(a, in)
		got.MovieVector(b, in)
		if a[0] != b[0] || a[1] != b[1] || a[2] != b[2] {
			t.Fatalf("vectors differ: %v %v", a, b)
		}
		var again bytes.Buffer
		if _, err := got.WriteTo(&again); err != nil || !bytes.Equal(again.Bytes(), data) {
			t.Fatal("rewrite differs")
		}
		// Every single-byte corruption and every truncation is refused.
		for i := range data {
			bad := bytes.Clone(data)
			bad[i] ^= 0x5a
			if _, err := ReadModel(bytes.NewReader(bad)); err == nil {
				t.Fatalf("corrupt byte %d accepted", i)
			}
		}
		for i := 0; i < len(data); i += 7 {
			if _, err := ReadModel(bytes.NewReader(data[:i])); err == nil {
				t.Fatalf("truncation at %d accepted", i)
			}
		}
	}
}

func TestReadModelHugeHeader(t *testing.T) {
	t.Parallel()
	// A header claiming the largest allowed tables, followed by nothing.
	var buf bytes.Buffer
	m := smallModel(t, smallConfig(false, false, false), 8)
	m.userVocab[0] = MaxVocab / 64
	m.cfg.UserEmbed[0] = 64
	m.user.Embeddings[0] = &nn.Embedding{Rows: 1, Dim: 1, W: []float32{0}}
	m.WriteTo(&buf)
	_, err := ReadModel(bytes.NewReader(buf.Bytes()))
	if err == nil || !errors.Is(err, ErrFormat) && !errors.Is(err, errUnexpectedEOF()) {
		t.Fatalf("err = %v", err)
	}
}

func errUnexpectedEOF() error { return io.ErrUnexpectedEOF }

func FuzzReadModel(f *testing.F) {
	for _, cfg := range []Config{smallConfig(true, false, false), smallConfig(false, true, true)} {
		var buf bytes.Buffer
		smallModel(f, cfg, 1).WriteTo(&buf)
		f.Add(buf.Bytes())
	}
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadModel(bytes.NewReader(data))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if _, err := m.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, buf.Bytes()) {
			t.Fatal("accepted input does not round-trip")
		}
		v := make([]float32, m.Dim())
		in := make(feature.Encoded, len(m.Config().UserEmbed))
		for i := range in {
			in[i] = []int32{0}
		}
		m.UserVector(v, in)
	})
}

func BenchmarkUserVector(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  Config
		uv   []int
	}{
		{"default", shippedConfig(), []int{6041, 3, 8, 22, 700}},
		{"reference", referenceConfig(), []int{6041, 3, 8, 22}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			mv := []int{3700, 19}
			if len(tc.cfg.MovieEmbed) == 3 {
				mv = append(mv, 30)
			}
			m, err := New(tc.cfg, tc.uv, mv, rand.New(rand.NewPCG(1, 1)))
			if err != nil {
				b.Fatal(err)
			}
			in := make(feature.Encoded, len(tc.uv))
			for i := range in {
				in[i] = []int32{1}
			}
			v := make([]float32, 8)
			b.ReportAllocs()
			for b.Loop() {
				m.UserVector(v, in)
			}
		})
	}
	// A known user with a prior: their own query alone, and mixed with
	// their features-only one (a second pass through the tower).
	for _, share := range []float32{0, 0.75} {
		b.Run(fmt.Sprintf("prior/feature_share=%g", share), func(b *testing.B) {
			m, _ := New(shippedConfig(), []int{6041, 3, 8, 22, 700}, []int{3700, 19, 30}, rand.New(rand.NewPCG(1, 1)))
			m.SetPrior(&Prior{Weight: 1, IDFields: []int{0}, FeatureShare: share})
			in, v := feature.Encoded{{17}, {1}, {3}, {5}, {100}}, make([]float32, 9)
			b.ReportAllocs()
			for b.Loop() {
				m.UserVector(v, in)
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		m, _ := New(shippedConfig(), []int{6041, 3, 8, 22, 700}, []int{3700, 19, 30}, rand.New(rand.NewPCG(1, 1)))
		in := feature.Encoded{{17}, {1}, {3}, {5}, {100}}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			v := make([]float32, 8)
			for pb.Next() {
				m.UserVector(v, in)
			}
		})
	})
}

// shippedConfig is the shape of the default model (config.Default):
// user_id gender age occupation zip; movie_id genres year.
func shippedConfig() Config {
	return Config{Dim: 8, Hidden: []int{64}, Normalize: true, UserEmbed: []int{32, 4, 4, 4, 8}, MovieEmbed: []int{32, 8, 4}}
}

// referenceConfig is the shape of the reference recipe (config.Reference):
// user_id gender age occupation; movie_id genres.
func referenceConfig() Config {
	return Config{Dim: 8, Hidden: []int{32}, OutputReLU: true, RatingHead: true, UserEmbed: []int{100, 2, 2, 2}, MovieEmbed: []int{100, 2}}
}

// With a prior, the vectors gain a last dimension (the weight for users,
// the default bias for movies) and keep the towers' outputs before it.
func TestPriorDimension(t *testing.T) {
	t.Parallel()
	m := smallModel(t, smallConfig(true, false, false), 4)
	u, mv := feature.Encoded{{1}, {2}}, feature.Encoded{{3}, {1}}
	tu, tm := make([]float32, 3), make([]float32, 3)
	m.UserVector(tu, u)
	m.MovieVector(tm, mv)
	m.SetPrior(&Prior{Weight: 0.5, DefaultBias: -7})
	if m.Dim() != 4 || m.TowerDim() != 3 {
		t.Fatalf("Dim %d, TowerDim %d; want 4, 3", m.Dim(), m.TowerDim())
	}
	pu, pm := make([]float32, 4), make([]float32, 4)
	m.UserVector(pu, u)
	m.MovieVector(pm, mv)
	if !slices.Equal(pu, append(slices.Clone(tu), 0.5)) || !slices.Equal(pm, append(slices.Clone(tm), -7)) {
		t.Errorf("with prior: user %v movie %v; towers %v %v", pu, pm, tu, tm)
	}
	// A cold user (field 0, the id, out of vocabulary) gets ColdWeight.
	m.SetPrior(&Prior{Weight: 0.5, ColdWeight: 2, DefaultBias: -7, IDFields: []int{0}})
	m.UserVector(pu, u)
	if pu[3] != 0.5 {
		t.Errorf("known user: last value %g, want 0.5", pu[3])
	}
	for _, cold := range []feature.Encoded{{{0}, {2}}, {{99}, {2}}, {{}, {2}}} {
		if m.UserVector(pu, cold); pu[3] != 2 || !m.Cold(cold, []int{0}) {
			t.Errorf("cold user %v: last value %g, want 2", cold, pu[3])
		}
	}
	// With field 1 as the recent-history field, a user known by it alone
	// gets RecentWeight; by the id, Weight; by neither, ColdWeight.
	p := &Prior{Weight: 0.5, ColdWeight: 2, RecentWeight: 3, DefaultBias: -7, IDFields: []int{0, 1}, RecentFields: []int{1}}
	m.SetPrior(p)
	for _, c := range []struct {
		in    feature.Encoded
		group Group
		w     float32
	}{
		{feature.Encoded{{1}, {2}}, Known, 0.5},
		{feature.Encoded{{1}, {0}}, Known, 0.5},
		{feature.Encoded{{0}, {2}}, Recent, 3},
		{feature.Encoded{{99}, {0, 2}}, Recent, 3},
		{feature.Encoded{{0}, {0}}, Cold, 2},
		{feature.Encoded{{}, {99}}, Cold, 2},
	} {
		if m.UserVector(pu, c.in); pu[3] != c.w || p.Group(m, c.in) != c.group {
			t.Errorf("user %v: group %d, last value %g; want %d, %g", c.in, p.Group(m, c.in), pu[3], c.group, c.w)
		}
	}
	if c := m.Clone(); c.Prior() == nil || c.Prior().Weight != 0.5 || c.Dim() != 4 {
		t.Errorf("clone lost the prior: %+v", c.Prior())
	}
	defer func() {
		if recover() == nil {
			t.Error("a tower-wide dst did not panic with a prior")
		}
	}()
	m.UserVector(tu, u)
}

// TestDroppedModelCollected checks that a model that has served vectors is
// freed by the next garbage collection, as training drops each recipe's
// towers: its serving pool must not keep it alive (see ann's
// TestDroppedIndexCollected).
func TestDroppedModelCollected(t *testing.T) {
	freed := make(chan struct{}, 2)
	func() {
		m := smallModel(t, smallConfig(true, false, false), 6)
		v := make([]float32, 3)
		m.UserVector(v, feature.Encoded{{2}, {1}})
		m.MovieVector(v, feature.Encoded{{2}, {1}})
		runtime.AddCleanup(m.user, func(c chan struct{}) { c <- struct{}{} }, freed)
		runtime.AddCleanup(m.movie, func(c chan struct{}) { c <- struct{}{} }, freed)
	}()
	runtime.GC()
	for range 2 {
		select {
		case <-freed:
		case <-time.After(10 * time.Second):
			t.Fatal("a dropped tower outlived a garbage collection")
		}
	}
}

// TestFeatureShare checks that a known user's vector is the mix of their
// own and their features-only vector (the id fields out of vocabulary),
// and that cold and recent-only users are not mixed.
func TestFeatureShare(t *testing.T) {
	m := smallModel(t, smallConfig(true, false, false), 5)
	own, feat, cold := feature.Encoded{{1}, {2}}, feature.Encoded{{0}, {2}}, feature.Encoded{{0}, {0}}
	m.SetPrior(&Prior{Weight: 0.5, ColdWeight: 2, RecentWeight: 3, IDFields: []int{0}, FeatureShare: 0})
	vOwn, vFeat, vCold := make([]float32, 4), make([]float32, 4), make([]float32, 4)
	m.UserVector(vOwn, own)
	m.UserVector(vFeat, feat)
	m.UserVector(vCold, cold)
	m.SetPrior(&Prior{Weight: 0.5, ColdWeight: 2, RecentWeight: 3, IDFields: []int{0}, FeatureShare: 0.25})
	got := make([]float32, 4)
	m.UserVector(got, own)
	for i := range 3 {
		if want := 0.75*vOwn[i] + 0.25*vFeat[i]; !(math.Abs(float64(got[i]-want)) <= 1e-6) {
			t.Errorf("known user, value %d: %g, want 0.75 × %g + 0.25 × %g", i, got[i], vOwn[i], vFeat[i])
		}
	}
	if got[3] != 0.5 {
		t.Errorf("known user: prior weight %g, want 0.5", got[3])
	}
	if m.UserVector(got, feat); !slices.Equal(got, vFeat) {
		t.Errorf("cold user mixed: %v, want %v", got, vFeat)
	}
	// A user known only by the recent-history field (1) is not mixed.
	m.SetPrior(&Prior{Weight: 0.5, ColdWeight: 2, RecentWeight: 3, IDFields: []int{0, 1}, RecentFields: []int{1}, FeatureShare: 0.5})
	m.UserVector(got, feat)
	m.SetPrior(&Prior{Weight: 0.5, ColdWeight: 2, RecentWeight: 3, IDFields: []int{0, 1}, RecentFields: []int{1}})
	want := make([]float32, 4)
	if m.UserVector(want, feat); !slices.Equal(got, want) {
		t.Errorf("recent-only user mixed: %v, want %v", got, want)
	}
	// With both id fields withheld, the features-only half is the cold user's.
	m.SetPrior(&Prior{Weight: 0.5, ColdWeight: 2, RecentWeight: 3, IDFields: []int{0, 1}, RecentFields: []int{1}, FeatureShare: 0.5})
	m.UserVector(got, own)
	for i := range 3 {
		if want := 0.5*vOwn[i] + 0.5*vCold[i]; !(math.Abs(float64(got[i]-want)) <= 1e-6) {
			t.Errorf("known user, two id fields, value %d: %g, want %g", i, got[i], want)
		}
	}
	if !raceEnabled {
		if a := testing.AllocsPerRun(100, func() { m.UserVector(got, own) }); a != 0 {
			t.Errorf("UserVector with a feature share: %v allocs/op", a)
		}
	}
}
