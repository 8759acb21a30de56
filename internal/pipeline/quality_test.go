package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/movielens"
)

// TestE2EQualityBars trains the default model on every shared split and
// checks the issue's quality bars with the real pipeline and protocol. It
// needs TOWERRECALL_DATA and TOWERRECALL_E2E (a few minutes on 2 cores: the default trains three recipes and keeps the best on validation).
func TestE2EQualityBars(t *testing.T) {
	root := os.Getenv("TOWERRECALL_DATA")
	if root == "" || os.Getenv("TOWERRECALL_E2E") == "" {
		t.Skip("set TOWERRECALL_E2E=1 and TOWERRECALL_DATA to the shared data directory")
	}
	// The default (no preset) on every split. The test holds it to what it
	// measured (docs/model.md, seed 1: user-temporal at commit 3c43a65, timeline at b5f5ede, recbole since the random-split towers are unnormalised) less a tenth, so a regression fails,
	// and to beating popularity and recent popularity where it does; the
	// issue-10 bars are reported beside, met or not (docs/model.md says
	// which are missed and why).
	tests := []struct {
		name, data, split string
		valid             bool
		floor             float64 // 0.9 × the measured Recall@10 (seed 1)
		beatsPopularity   bool    // above popularity and recent popularity
		issueBar          float64 // issue 10's bar, reported
	}{
		// The first trains alone, so that its examples/s is the speed of a
		// default ml-1m run on the two cores (issue 10's speed bar; its
		// random-split recipe is the slowest). The others then train two
		// at a time (t.Parallel below; a run leaves ~a quarter of the two
		// cores idle in single-threaded parts such as EASE); a model does
		// not depend on the timing.
		{"ml-1m (users 1-2,999) recbole", "ml-1m", "ml-1m/recbole", true, 0.163, true, 0.18},
		{"ml-1m (users 1-2,999) user-temporal", "ml-1m", "ml-1m/user-temporal", false, 0.098, true, 0.075},
		{"ml-1m (users 1-2,999) timeline", "ml-1m", "ml-1m/timeline", true, 0.049, true, 0.055},
		{"ml-100k user-temporal", "ml-100k", "ml-100k/user-temporal", false, 0.121, true, 0.12},
		{"ml-100k timeline", "ml-100k", "ml-100k/timeline", true, 0.116, true, 0.088},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alone := i == 0
			if !alone {
				t.Parallel() // starts once the loop has run the first
			}
			ds, err := movielens.LoadDir(filepath.Join(root, tt.data))
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(root, "splits", tt.split)
			read := func(name string) []movielens.Rating {
				rs, err := movielens.ReadRatingsFile(filepath.Join(dir, name), ds)
				if err != nil {
					t.Fatal(err)
				}
				return rs
			}
			in := Inputs{Dataset: ds, Train: read("train.dat"), Test: read("test.dat")}
			if tt.valid {
				in.Valid = read("valid.dat")
			}
			start := time.Now()
			b, err := Train(context.Background(), in, Options{Config: config.Default(), Logger: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			m := b.Manifest.Metrics
			t.Logf("%s: recall@10 %.4f ndcg@10 %.4f recall@100 %.4f; cold start %.4f; popularity %.4f, recent %.4f, EASE %.4f; %.0f examples/s",
				tt.name, m["recall@10"], m["ndcg@10"], m["recall@100"], m["cold_start.recall@10"], m["popularity.recall@10"],
				m["recent_popularity.recall@10"], m["ease.recall@10"], b.Manifest.Training.ExamplesPerSec)
			met := "met"
			if m["recall@10"] < tt.issueBar {
				met = "NOT met"
			}
			t.Logf("%s: issue-10 bar recall@10 ≥ %.3f: %s", tt.name, tt.issueBar, met)
			t.Logf("%s: standard error of recall@10 %.4f; its lead over popularity %+.4f ± %.4f, recent %+.4f ± %.4f, EASE %+.4f ± %.4f (paired standard errors)",
				tt.name, m["recall_se@10"], m["model_lead.popularity.recall@10"], m["model_lead.popularity.recall_se@10"],
				m["model_lead.recent_popularity.recall@10"], m["model_lead.recent_popularity.recall_se@10"],
				m["model_lead.ease.recall@10"], m["model_lead.ease.recall_se@10"])
			if alone { // reported, not asserted: the machine is shared
				// The chosen recipe's validation run and its refit on train
				// and valid (longer bags), each a median over epochs.
				tr := b.Manifest.Training
				refit := tr.ExamplesPerSec
				if tr.Selection != nil && tr.Selection.Refit {
					refit = tr.Selection.RefitExamplesPerSec
				}
				met = "met"
				if min(tr.ExamplesPerSec, refit) < 150000 {
					met = "NOT met"
				}
				t.Logf("%s: trained alone: %.0f examples/s, its refit %.0f, %.0f s from start to artifact; issue-10 bar ≥ 150,000 examples/s: %s",
					tt.name, tr.ExamplesPerSec, refit, time.Since(start).Seconds(), met)
			}
			if tt.valid { // the same baselines fitted on train and valid, as the refit model is
				t.Logf("%s: baselines on train and valid: popularity %.4f, recent %.4f, EASE %.4f",
					tt.name, m["train_valid.popularity.recall@10"], m["train_valid.recent_popularity.recall@10"], m["train_valid.ease.recall@10"])
			}
			if m["recall@10"] < tt.floor {
				t.Errorf("recall@10 %.4f < %.3f: the default regressed", m["recall@10"], tt.floor)
			}
			for _, base := range []string{"popularity", "recent_popularity"} {
				if tt.beatsPopularity && m["recall@10"] <= m[base+".recall@10"] {
					t.Errorf("recall@10 %.4f does not beat %s %.4f", m["recall@10"], base, m[base+".recall@10"])
				}
			}
		})
	}
}
