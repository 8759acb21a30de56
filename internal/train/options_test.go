package train

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/nn/gradcheck"
	"github.com/towerrecall/towerrecall/internal/tower"
)

func TestScheduleFactor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		schedule    string
		step, total int
		want        float64
	}{
		{"constant start", Constant, 0, 100, 1},
		{"constant end", Constant, 99, 100, 1},
		{"empty is constant", "", 50, 100, 1},
		{"linear start", Linear, 0, 100, 1},
		{"linear middle", Linear, 50, 100, 0.5},
		{"linear last", Linear, 99, 100, 0.01},
		{"cosine start", Cosine, 0, 100, 1},
		{"cosine middle", Cosine, 50, 100, 0.5},
		{"cosine quarter", Cosine, 25, 100, 0.5 * (1 + math.Sqrt2/2)},
		{"cosine last", Cosine, 99, 100, 0.5 * (1 + math.Cos(math.Pi*0.99))},
		{"no steps", Linear, 0, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := scheduleFactor(tc.schedule, tc.step, tc.total); !gradcheck.Near(float64(got), tc.want, 1e-6) {
				t.Errorf("scheduleFactor(%q, %d, %d) = %g, want %g", tc.schedule, tc.step, tc.total, got, tc.want)
			}
		})
	}
}

// TestScheduleSteps checks that a schedule changes the steps after the
// first (and only those): one-step runs agree, two-step runs differ.
func TestScheduleSteps(t *testing.T) {
	t.Parallel()
	s := newSynth(60, 50, 600, 21) // 540 train interactions
	run := func(schedule string, batch int) []float32 {
		m := tinyModel(t, s, smallTowers(false), 3)
		cfg := testConfig()
		cfg.Epochs, cfg.BatchSize, cfg.Workers, cfg.Schedule = 1, batch, 1, schedule
		if _, err := Run(context.Background(), m, s.data, cfg, Hooks{}); err != nil {
			t.Fatal(err)
		}
		return weights(m)
	}
	for _, sch := range []string{Linear, Cosine} {
		if a, b := run(Constant, 540), run(sch, 540); !slices.Equal(a, b) {
			t.Errorf("%s: one step differs from the constant schedule", sch)
		}
		if a, b := run(Constant, 270), run(sch, 270); slices.Equal(a, b) {
			t.Errorf("%s: the second step did not use a lower rate", sch)
		}
	}
}

func historySynth(t testing.TB) (*synth, tower.Config) {
	t.Helper()
	s := newSynth(200, 150, 20000, 22)
	bags := make([][]int32, len(s.data.Users))
	for _, x := range s.data.Train {
		bags[x.User] = append(bags[x.User], x.Movie+1)
	}
	for u := range s.data.Users {
		s.data.Users[u] = append(s.data.Users[u], bags[u])
	}
	s.userVocab = append(slices.Clone(s.userVocab), len(s.data.Movies)+1)
	tc := smallTowers(false)
	tc.UserEmbed = append(tc.UserEmbed, 4)
	return s, tc
}

func TestDropHistory(t *testing.T) {
	t.Parallel()
	s, tc := historySynth(t)
	m := tinyModel(t, s, tc, 1)
	cfg := testConfig()
	cfg.HistoryDropout, cfg.HistoryField, cfg.BatchSize = 0.5, 5, 64
	tr := newTrainer(m, s.data, cfg)
	defer tr.close()
	in := s.data.Users[0]
	orig := slices.Clone(in[5])
	var kept int
	const reps = 200
	for range reps {
		out := tr.dropHistory(3, in)
		if !slices.Equal(in[5], orig) {
			t.Fatal("dropHistory modified its input")
		}
		for f := range 5 {
			if !slices.Equal(out[f], in[f]) {
				t.Fatalf("field %d changed: %v → %v", f, in[f], out[f])
			}
		}
		if len(out[5]) == 0 {
			t.Fatal("empty bag")
		}
		// A subsequence of the bag.
		j := 0
		for _, x := range out[5] {
			for j < len(orig) && orig[j] != x {
				j++
			}
			if j == len(orig) {
				t.Fatalf("bag %v is not a subsequence of %v", out[5], orig)
			}
			j++
		}
		kept += len(out[5])
	}
	if share := float64(kept) / float64(reps*len(orig)); !gradcheck.Near(share, 0.5, 0.05) {
		t.Errorf("kept %.3f of the bag, want ≈ 0.5", share)
	}
	one := feature.Encoded{{1}, {1}, {1}, {1}, {1}, {7}}
	if out := tr.dropHistory(0, one); len(out[5]) != 1 || out[5][0] != 7 {
		t.Errorf("a one-item bag became %v", out[5])
	}
}

func TestHistoryDropoutRun(t *testing.T) {
	t.Parallel()
	s, tc := historySynth(t)
	run := func(workers int) []float32 {
		m := tinyModel(t, s, tc, 5)
		cfg := testConfig()
		cfg.Epochs, cfg.BatchSize, cfg.Workers = 2, 128, workers
		cfg.HistoryDropout, cfg.HistoryField = 0.3, 5
		if _, err := Run(context.Background(), m, s.data, cfg, Hooks{}); err != nil {
			t.Fatal(err)
		}
		return weights(m)
	}
	for _, w := range []int{1, 2} {
		if a, b := run(w), run(w); !slices.Equal(a, b) {
			t.Errorf("workers=%d: two runs with history dropout differ", w)
		}
	}
	m := tinyModel(t, s, tc, 5)
	cfg := testConfig()
	cfg.HistoryDropout, cfg.HistoryField = 0.3, 9
	if _, err := Run(context.Background(), m, s.data, cfg, Hooks{}); err == nil || !strings.Contains(err.Error(), "history field 9") {
		t.Errorf("out-of-range history field: err = %v", err)
	}
	cfg.HistoryField = -1
	if _, err := Run(context.Background(), m, s.data, cfg, Hooks{}); err == nil || !strings.Contains(err.Error(), "history dropout needs") {
		t.Errorf("history dropout without a field: err = %v", err)
	}
	cfg.HistoryDropout, cfg.Schedule = 1, "step"
	err := cfg.Validate()
	for _, want := range []string{"history dropout 1", `schedule "step"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate does not mention %q: %v", want, err)
		}
	}
}

func TestHistoryDropoutStepAllocs(t *testing.T) {
	s, tc := historySynth(t)
	m := tinyModel(t, s, tc, 1)
	cfg := testConfig()
	cfg.BatchSize, cfg.HistoryDropout, cfg.HistoryField = 256, 0.3, 5
	tr := newTrainer(m, s.data, cfg)
	defer tr.close()
	r := rand.New(rand.NewPCG(1, 2))
	idx := make([]int32, 256)
	for i := range idx {
		idx[i] = int32(r.IntN(len(s.data.Train)))
	}
	for range 5 { // grow the bag buffers
		tr.step(idx)
	}
	if a := testing.AllocsPerRun(20, func() { tr.step(idx) }); a != 0 {
		t.Errorf("%v allocs per step", a)
	}
}

// TestUserWeight checks the per-user example weights n_u^−w: mean 1 over
// the training examples, and lighter users weigh more.
func TestUserWeight(t *testing.T) {
	t.Parallel()
	s := newSynth(40, 30, 3000, 23)
	n := make([]float64, len(s.data.Users))
	for _, x := range s.data.Train {
		n[x.User]++
	}
	for _, w := range []float32{0, 0.5, 1} {
		m := tinyModel(t, s, smallTowers(false), 1)
		cfg := testConfig()
		cfg.UserWeight = w
		tr := newTrainer(m, s.data, cfg)
		var sum float64
		for _, x := range s.data.Train {
			sum += float64(tr.userW[x.User])
		}
		if mean := sum / float64(len(s.data.Train)); !gradcheck.Near(mean, 1, 1e-5) {
			t.Errorf("w=%g: mean example weight %g, want 1", w, mean)
		}
		for u := range n {
			for v := range n {
				if n[u] == 0 || n[v] == 0 {
					continue
				}
				want := math.Pow(n[u]/n[v], -float64(w))
				if got := float64(tr.userW[u]) / float64(tr.userW[v]); !gradcheck.Near(got, want, 1e-4*want) {
					t.Fatalf("w=%g: weight ratio of users with %v and %v examples %g, want %g", w, n[u], n[v], got, want)
				}
			}
		}
		tr.close()
	}
}

// TestUserWeightCountsRealUsers: a recipe's copies of a user (cold-start
// twins, history folds, recent copies) share the real user's weight, by
// the real user's number of examples: splitting a user into copies does
// not change what the user weighs.
func TestUserWeightCountsRealUsers(t *testing.T) {
	t.Parallel()
	d := Data{
		Users:  make([]feature.Encoded, 4),
		Movies: make([]feature.Encoded, 2),
		// User 0: one example. User 1: four, split over itself and its
		// copies 2 and 3.
		Train:  []Interaction{{User: 0, Movie: 0}, {User: 1, Movie: 0}, {User: 2, Movie: 1}, {User: 3, Movie: 0}, {User: 3, Movie: 1}},
		Origin: []int32{0, 1, 1, 1},
	}
	_, w := frequencies(d, 1)
	// n^-1 with n = 1 and 4, mean 1 over the 5 examples: 5/2 and 5/8.
	for u, want := range []float32{2.5, 0.625, 0.625, 0.625} {
		if !gradcheck.Near(w[u], want, 1e-6) {
			t.Errorf("user %d weighs %g, want %g (all: %v)", u, w[u], want, w)
		}
	}
}

// TestPlanEpochs: a run of the first epochs of a longer plan (the refit)
// follows the longer run's learning-rate schedule bit for bit, where
// planning over its own epochs would decay to zero by its end.
func TestPlanEpochs(t *testing.T) {
	t.Parallel()
	s := newSynth(40, 30, 3000, 29)
	weights := func(m *tower.Model) []byte {
		var buf bytes.Buffer
		if _, err := m.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	cfg := testConfig()
	cfg.Workers, cfg.Schedule, cfg.Epochs = 1, Linear, 3
	// The whole plan, with the weights after epoch 2 kept.
	long := tinyModel(t, s, smallTowers(false), 1)
	var after2 []byte
	if _, err := Run(context.Background(), long, s.data, cfg, Hooks{OnEpoch: func(e EpochStats) {
		if e.Epoch == 2 {
			after2 = weights(long)
		}
	}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		plan int
		same bool
	}{{3, true}, {0, false}} {
		short := tinyModel(t, s, smallTowers(false), 1)
		c := cfg
		c.Epochs, c.PlanEpochs = 2, tc.plan
		if _, err := Run(context.Background(), short, s.data, c, Hooks{}); err != nil {
			t.Fatal(err)
		}
		if same := bytes.Equal(weights(short), after2); same != tc.same {
			t.Errorf("2 epochs planned over %d: the same weights as epoch 2 of 3: %v, want %v", tc.plan, same, tc.same)
		}
	}
}
