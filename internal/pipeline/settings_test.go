package pipeline

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/server"
	"github.com/towerrecall/towerrecall/internal/train"
)

// FuzzSettings checks that every configuration config.Validate accepts,
// and every candidate recipe it names, is accepted by the lower packages
// this file's conversions feed (the feature fields, the towers' shape, the
// training loop, the recipe and the index). Each package checks its own
// invariants; a config that passed the first check but failed a later one
// would stop `train` minutes in, or `serve` at its first load.
func FuzzSettings(f *testing.F) {
	shipped, err := filepath.Glob(filepath.Join("..", "..", "configs", "*.yaml"))
	if err != nil || len(shipped) == 0 {
		f.Fatalf("no shipped configs: %v", err)
	}
	for _, p := range shipped {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	// The smallest settings, with the candidates that inherit them.
	f.Add([]byte("model:\n  dim: 1\n  hidden: []\n  history_length: 0\n  history_decay: 0\n  user: [{name: user_id, dim: 1}]\n  movie: [{name: movie_id, dim: 1}]\n" +
		"train:\n  batch_size: 2\n  epochs: 1\n  workers: 1\n  candidates: [recent-history, random-split]\n"))
	f.Add([]byte("model:\n  rating_head: true\n  user: [{name: history, dim: 1}]\n  history_length: 1\ntrain:\n  objective: pointwise\n  batch_size: 1\n  candidates: []\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := config.Parse(raw, "fuzz.yaml", config.Default())
		if err != nil || c.Validate() != nil {
			return
		}
		checkCandidates(t, c)
	})
}

// FuzzSettingsValues sets the numeric settings the lower packages bound
// (sizes, rates, counts) directly, on top of the default and the presets,
// where YAML mutations rarely reach their edges; the property is
// FuzzSettings'.
func FuzzSettingsValues(f *testing.F) {
	f.Add(uint8(0), 8, 64, 16, 1024, 0, 0.0, 0.1, 10, 0.1, 0.005, 2, 8, 24, 2, 10)
	f.Add(uint8(1), 1, 0, 1, 2, 1, 0.5, 0.0, 2, 1e-9, 1.0, 1, 2, 1, 1, 1)
	f.Add(uint8(2), 64, 1024, 128, 65536, 200, 0.99, 0.9, 100, 10.0, 0.5, 64, 64, 4096, 64, 1000)
	f.Fuzz(func(t *testing.T, preset uint8, dim, hidden, embed, batch, histLen int, decay, coldRate float64, folds int,
		temp, lr float64, workers, m, ef, overfetch, epochs int) {
		c := presetOf(t, preset)
		c.Model.Dim = dim
		if hidden > 0 {
			c.Model.Hidden = []int{hidden}
		} else {
			c.Model.Hidden = nil
		}
		for i := range c.Model.User {
			c.Model.User[i].Dim = embed
		}
		c.Model.Movie[0].Dim = embed
		c.Model.HistoryLength, c.Model.HistoryDecay = histLen, decay
		t2 := &c.Train
		t2.BatchSize, t2.ColdStartRate, t2.HistoryFolds, t2.Temperature, t2.LearningRate = batch, coldRate, folds, float32(temp), float32(lr)
		t2.Workers, t2.Epochs = workers, epochs
		c.Serve.HNSWM, c.Serve.HNSWEfSearch, c.Serve.HNSWOverfetch = m, ef, overfetch
		if c.Validate() != nil {
			return
		}
		checkCandidates(t, c)
	})
}

// FuzzSettingsMore is FuzzSettingsValues for the training loop's weights
// and the server's limits and timeouts.
func FuzzSettingsMore(f *testing.F) {
	f.Add(uint8(0), 0, 0.0, 3.0, 1.0, 0.0, 0.0, 1.0, 3, 0.0, int64(1<<20), 100, 50, int64(2000), int64(10000), 65536)
	f.Add(uint8(2), 65536, 1.0, 5.0, 0.0, 1e-3, 0.9, 1e-3, 1, 20.0, int64(1024), 1, 0, int64(1), int64(2), 0)
	f.Fuzz(func(t *testing.T, preset uint8, uniform int, userWeight, coldLogQ, logQScale, l2, dropout, distillTemp float64, patience int,
		recency float64, bodyLimit int64, batchMax, maxRecent int, requestMS, writeMS int64, maxHeader int) {
		c := presetOf(t, preset)
		t2 := &c.Train
		t2.UniformNegatives, t2.UserWeight, t2.ColdLogQ, t2.LogQScale, t2.L2 = uniform, userWeight, coldLogQ, logQScale, float32(l2)
		t2.HistoryDropout, t2.DistillTemperature, t2.Patience, t2.Recency = dropout, distillTemp, patience, recency
		s := &c.Serve
		s.BodyLimit, s.BatchMax, s.MaxRecentMovies, s.MaxHeaderBytes = bodyLimit, batchMax, maxRecent, maxHeader
		s.RequestTimeout, s.WriteTimeout = time.Duration(requestMS)*time.Millisecond, time.Duration(writeMS)*time.Millisecond
		if c.Validate() != nil {
			return
		}
		checkCandidates(t, c)
	})
}

// presetOf is one of the shipped presets, chosen by a fuzzed byte.
func presetOf(t *testing.T, preset uint8) config.Config {
	t.Helper()
	c, err := config.Preset([]string{"default", "recent-history", "random-split", "reference"}[preset%4])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkCandidates checks a valid config c and each candidate it names.
func checkCandidates(t *testing.T, c config.Config) {
	t.Helper()
	checkSettings(t, "configured", c)
	for _, name := range c.Train.Candidates {
		p, err := c.Candidate(name)
		if err != nil {
			t.Fatalf("candidate %q of a valid config: %v", name, err)
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("candidate %q of a valid config is invalid: %v", name, err)
		}
		checkSettings(t, name, p)
	}
}

func checkSettings(t *testing.T, name string, c config.Config) {
	t.Helper()
	towers, user, movie := TowerConfig(c.Model)
	vocabs := map[feature.Field][]string{}
	for _, f := range slices.Concat(user, movie) {
		vocabs[f] = nil
	}
	if _, err := feature.NewEncoder(user, movie, vocabs); err != nil {
		t.Fatalf("%s: valid config, fields refused: %v", name, err)
	}
	if err := towers.Validate(); err != nil {
		t.Fatalf("%s: valid config, towers refused: %v", name, err)
	}
	hist := slices.Index(user, feature.HistoryField)
	if err := trainConfig(c.Train, hist).Validate(); err != nil {
		t.Fatalf("%s: valid config, training refused: %v", name, err)
	}
	r := recipe(c.Train)
	r.HistoryLength = c.Model.HistoryLength
	if err := r.Apply(&train.Data{}, nil, train.Fields{User: user, Movie: movie}); err != nil {
		t.Fatalf("%s: valid config, recipe refused: %v", name, err)
	}
	if err := HNSWParams(c.Serve).Validate(); err != nil {
		t.Fatalf("%s: valid config, index refused: %v", name, err)
	}
	if err := server.ConfigFrom(c.Serve).Validate(); err != nil {
		t.Fatalf("%s: valid config, server refused: %v", name, err)
	}
}
