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
	// The issue-10 bars for one default (no preset): Recall@10 at least the
	// bar, and above popularity and recent popularity on the same split.
	// docs/model.md lists what the default measures against them (not every
	// bar is met).
	tests := []struct {
		name, data, split string
		cfg               config.Config
		valid             bool
		minRecall10       float64 // the bar this test holds the model to
		coldBeatsPop      bool    // cold-start users (features only) must beat popularity
	}{
		{"ml-100k timeline", "ml-100k", "ml-100k/timeline", config.Default(), true, 0.088, false},
		{"ml-1m (users 1-2,999) timeline", "ml-1m", "ml-1m/timeline", config.Default(), true, 0.055, false},
		{"ml-100k user-temporal", "ml-100k", "ml-100k/user-temporal", config.Default(), false, 0.12, false},
		{"ml-1m (users 1-2,999) user-temporal", "ml-1m", "ml-1m/user-temporal", config.Default(), false, 0.075, false},
		{"ml-1m (users 1-2,999) recbole", "ml-1m", "ml-1m/recbole", config.Default(), true, 0.18, false},
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
			t.Logf("recall@10 %.4f ndcg@10 %.4f recall@100 %.4f; cold start %.4f; popularity %.4f, recent %.4f, EASE %.4f; %.0f examples/s",
				m["recall@10"], m["ndcg@10"], m["recall@100"], m["cold_start.recall@10"], m["popularity.recall@10"],
				m["recent_popularity.recall@10"], m["ease.recall@10"], b.Manifest.Training.ExamplesPerSec)
			if m["recall@10"] < tt.minRecall10 {
				t.Errorf("recall@10 %.4f < %.3f", m["recall@10"], tt.minRecall10)
			}
			for _, base := range []string{"popularity", "recent_popularity"} {
				if m["recall@10"] <= m[base+".recall@10"] {
					t.Errorf("recall@10 %.4f does not beat %s %.4f", m["recall@10"], base, m[base+".recall@10"])
				}
			}
			if tt.coldBeatsPop && m["cold_start.recall@10"] <= m["popularity.recall@10"] {
				t.Errorf("cold-start recall@10 %.4f does not beat popularity %.4f", m["cold_start.recall@10"], m["popularity.recall@10"])
			}
		})
	}
}
