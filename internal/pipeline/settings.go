package pipeline

import (
	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/tower"
	"github.com/towerrecall/towerrecall/internal/train"
)

// This file is the one place where config, which holds every default,
// becomes the settings of the lower packages. They never import config:
// they take explicit values and check their own invariants.

// TowerConfig converts the model config into the towers' shape and the
// feature fields each tower reads, in the same order.
func TowerConfig(m config.Model) (c tower.Config, user, movie []feature.Field) {
	c = tower.Config{Dim: m.Dim, Hidden: m.Hidden, OutputReLU: m.OutputReLU, Normalize: m.Normalize, RatingHead: m.RatingHead}
	for _, f := range m.User {
		user = append(user, feature.Field(f.Name))
		c.UserEmbed = append(c.UserEmbed, f.Dim)
	}
	for _, f := range m.Movie {
		movie = append(movie, feature.Field(f.Name))
		c.MovieEmbed = append(c.MovieEmbed, f.Dim)
	}
	return c, user, movie
}

// trainConfig converts the training config into the loop's settings.
// historyField is the history feature's position among the user fields,
// −1 if the user tower has none (history dropout needs one).
func trainConfig(t config.Train, historyField int) train.Config {
	c := train.Config{
		Objective:        t.Objective,
		Epochs:           t.Epochs,
		BatchSize:        t.BatchSize,
		LearningRate:     t.LearningRate,
		Optimizer:        t.Optimizer,
		Temperature:      t.Temperature,
		LogQ:             t.LogQ,
		UniformNegatives: t.UniformNegatives,
		UserWeight:       float32(t.UserWeight),
		ColdLogQ:         float32(t.ColdLogQ),
		LogQScale:        float32(t.LogQScale),
		Schedule:         t.LRSchedule,
		PlanEpochs:       t.PlanEpochs,
		HistoryField:     historyField,
		L2:               t.L2,
		Workers:          t.Workers,
		Seed:             t.Seed,
		Patience:         t.Patience,
		Distill:          float32(t.Distill),
		DistillTemp:      float32(t.DistillTemperature),
	}
	if historyField >= 0 {
		c.HistoryDropout = float32(t.HistoryDropout)
	}
	return c
}

// recipe converts the training config into the recipe that builds the
// training examples.
func recipe(t config.Train) train.Recipe {
	return train.Recipe{Recency: t.Recency, ColdStartRate: t.ColdStartRate, HistoryFolds: t.HistoryFolds, Seed: t.Seed}
}

// HNSWParams converts the serve config into index parameters.
func HNSWParams(s config.Serve) ann.HNSWParams {
	p := ann.DefaultHNSWParams()
	p.M = s.HNSWM
	p.M0 = 2 * s.HNSWM // the base layer's degree follows M (the default 8 gives ann's 16)
	p.EfSearch = s.HNSWEfSearch
	p.Overfetch = s.HNSWOverfetch
	return p
}

// baselines converts the baselines config into evaluation settings.
func baselines(b config.Baselines) Baselines {
	return Baselines{RecentWindow: b.RecentWindow, EASELambda: b.EASELambda, NewUserHistory: b.NewUserHistory}
}

// BaselinesOf returns the evaluation settings of c's baselines.
func BaselinesOf(c config.Config) Baselines { return baselines(c.Baselines) }
