package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/movielens"
)

// TestE2EQualityBars trains the default model on every shared split and
// checks the quality bars with the real pipeline and protocol. It
// needs TOWERRECALL_DATA and TOWERRECALL_E2E (about a minute on 2 cores).
func TestE2EQualityBars(t *testing.T) {
	root := os.Getenv("TOWERRECALL_DATA")
	if root == "" || os.Getenv("TOWERRECALL_E2E") == "" {
		t.Skip("set TOWERRECALL_E2E=1 and TOWERRECALL_DATA to the shared data directory")
	}
	tests := []struct {
		name, data, split string
		cfg               config.Config
		valid             bool
		minRecall10       float64 // the bar this test holds the model to
		coldBeatsPop      bool    // cold-start users (features only) must beat popularity
	}{
		// Issue bars: 0.11 on ml-100k and 0.07 on ml-1m user-temporal.
		{"ml-100k user-temporal", "ml-100k", "ml-100k/user-temporal", config.Default(), false, 0.11, true},
		// Cold start beats popularity here only by a hair (0.0397 vs 0.0395
		// at seed 1, with cold_logq 3 chosen on a validation slice; README).
		{"ml-1m (users 1-2,999) user-temporal", "ml-1m", "ml-1m/user-temporal", config.Default(), false, 0.07, true},
		// The bar, 0.165: the random-split preset (history feature,
		// user_weight 0.5, logq_scale 1.2) measures 0.1717, 0.1732, 0.1735
		// at seeds 1–3 (the PyTorch reference of these towers: 0.155).
		// Its cold start beats popularity by little (0.0846 vs 0.0831).
		{"ml-1m (users 1-2,999) recbole", "ml-1m", "ml-1m/recbole", config.RandomSplit(), true, 0.165, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := movielens.LoadDir(filepath.Join(root, tt.data))
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(root, "splits", tt.split)
			read := func(name string) []movielens.Rating {
				rs, err := movielens.ReadRatingsFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				return rs
			}
			in := Inputs{Dataset: ds, Train: read("train.dat"), Test: read("test.dat")}
			if tt.valid {
				in.Valid = read("valid.dat")
			}
			b, err := Train(context.Background(), in, Options{Config: tt.cfg, Logger: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			m := b.Manifest.Metrics
			t.Logf("recall@10 %.4f ndcg@10 %.4f recall@100 %.4f; cold start %.4f; popularity %.4f; %.0f examples/s",
				m["recall@10"], m["ndcg@10"], m["recall@100"], m["cold_start.recall@10"], m["popularity.recall@10"], b.Manifest.Training.ExamplesPerSec)
			if m["recall@10"] < tt.minRecall10 {
				t.Errorf("recall@10 %.4f < %.3f", m["recall@10"], tt.minRecall10)
			}
			if m["recall@10"] <= m["popularity.recall@10"] {
				t.Errorf("recall@10 %.4f does not beat popularity %.4f", m["recall@10"], m["popularity.recall@10"])
			}
			if tt.coldBeatsPop && m["cold_start.recall@10"] <= m["popularity.recall@10"] {
				t.Errorf("cold-start recall@10 %.4f does not beat popularity %.4f", m["cold_start.recall@10"], m["popularity.recall@10"])
			}
		})
	}
}
