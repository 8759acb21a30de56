package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/pipeline"
	"github.com/towerrecall/towerrecall/internal/train"
)

// job is one training run of the training section.
type job struct {
	dataset string // folder under --data: ml-100k or ml-1m
	split   string // folder under --data/splits/<dataset>
	recipe  string // "softmax", "softmax-random" (config.RandomSplit) or "pointwise"
}

func (j job) name() string { return j.dataset + "/" + j.split }

// jobs lists the training section. The serving model (the index, handler
// and load sections run on it) is the first job of servingJob.
func jobs(quick bool) []job {
	js := []job{
		{"ml-100k", "user-temporal", "softmax"},
		{"ml-100k", "user-temporal", "pointwise"},
	}
	if !quick {
		js = append(js, job{"ml-1m", "user-temporal", "softmax"}, job{"ml-1m", "user-temporal", "pointwise"},
			job{"ml-1m", "recbole", "softmax"}, job{"ml-1m", "recbole", "softmax-random"})
	}
	return js
}

// servingJob is the model the later sections run on: ml-1m user-temporal,
// or ml-100k in quick mode.
func servingJob(quick bool) job {
	if quick {
		return job{"ml-100k", "user-temporal", "softmax"}
	}
	return job{"ml-1m", "user-temporal", "softmax"}
}

func (j job) config() config.Config {
	switch j.recipe {
	case "pointwise":
		return config.Reference()
	case "softmax-random":
		return config.RandomSplit()
	}
	return config.Default()
}

func (j job) splitFile(dataDir, part string) string {
	return filepath.Join(dataDir, "splits", j.dataset, j.split, part+".dat")
}

// checkData fails with every missing file named, before any work starts.
func checkData(o options) error {
	if o.skipTrain && o.modelDir != "" {
		return nil
	}
	need := map[string]bool{}
	all := jobs(o.quick)
	if o.skipTrain {
		all = []job{servingJob(o.quick)}
	}
	for _, j := range all {
		need[filepath.Join(o.dataDir, j.dataset)] = true
		need[j.splitFile(o.dataDir, "train")] = true
		need[j.splitFile(o.dataDir, "test")] = true
	}
	var missing []string
	for p := range need {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("missing benchmark data (pass --data DIR pointing at the shared data folder with ml-100k/, ml-1m/ and splits/; see ../shared/data/README.md):\n  %s",
			strings.Join(missing, "\n  "))
	}
	return nil
}

// dataCache loads each MovieLens directory once.
type dataCache struct {
	dir string
	ds  map[string]*movielens.Dataset
}

func newDataCache(dir string) *dataCache {
	return &dataCache{dir: dir, ds: map[string]*movielens.Dataset{}}
}

func (c *dataCache) dataset(name string) (*movielens.Dataset, error) {
	if ds, ok := c.ds[name]; ok {
		return ds, nil
	}
	ds, err := movielens.LoadDir(filepath.Join(c.dir, name))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	c.ds[name] = ds
	return ds, nil
}

// inputs reads a job's split files; valid.dat is optional.
func (c *dataCache) inputs(j job) (pipeline.Inputs, error) {
	ds, err := c.dataset(j.dataset)
	if err != nil {
		return pipeline.Inputs{}, err
	}
	in := pipeline.Inputs{Dataset: ds, DataDir: filepath.Join(c.dir, j.dataset)}
	read := func(part string, optional bool) ([]movielens.Rating, error) {
		path := j.splitFile(c.dir, part)
		rs, err := movielens.ReadRatingsFile(path, ds)
		if optional && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return rs, err
	}
	if in.Train, err = read("train", false); err != nil {
		return in, err
	}
	if in.Valid, err = read("valid", true); err != nil {
		return in, err
	}
	if in.Test, err = read("test", false); err != nil {
		return in, err
	}
	return in, nil
}

// serving is the model the index, handler and load sections run on.
type serving struct {
	bundle  *artifact.Bundle
	dataset *movielens.Dataset // user features for queries and requests
	label   string
}

// runTraining runs the training section (unless skipped) and returns the
// serving model.
func runTraining(ctx context.Context, o options, data *dataCache, res *Results, p *progress) (*serving, error) {
	sj := servingJob(o.quick)
	var sv *serving
	if o.modelDir != "" {
		b, err := artifact.Load(o.modelDir)
		if err != nil {
			return nil, err
		}
		sv = &serving{bundle: b, label: "artifact " + o.modelDir}
		ds, err := data.dataset(sj.dataset)
		if err != nil {
			return nil, fmt.Errorf("--model needs the users of %s for queries: %w", sj.dataset, err)
		}
		sv.dataset = ds
		p.logf("serving model: %s (%d movies)", sv.label, len(b.Movies))
	}
	todo := jobs(o.quick)
	if o.skipTrain {
		todo = nil
		if sv == nil {
			todo = []job{sj}
		}
	}
	for _, j := range todo {
		run, b, err := trainOne(ctx, data, j, p)
		if err != nil {
			return nil, fmt.Errorf("train %s (%s): %w", j.name(), j.recipe, err)
		}
		if !o.skipTrain {
			res.Training = append(res.Training, run)
		}
		if sv == nil && j == sj {
			sv = &serving{bundle: b, dataset: data.ds[j.dataset],
				label: fmt.Sprintf("the default (softmax) model trained above on %s `%s` train split", datasetLabel(j.dataset), j.split)}
		}
	}
	res.Serving = sv.label
	return sv, nil
}

func trainOne(ctx context.Context, data *dataCache, j job, p *progress) (TrainRun, *artifact.Bundle, error) {
	in, err := data.inputs(j)
	if err != nil {
		return TrainRun{}, nil, err
	}
	cfg := j.config()
	run := TrainRun{Dataset: j.dataset, Split: j.split, Recipe: j.recipe, Train: len(in.Train), Valid: len(in.Valid), Test: len(in.Test)}
	p.logf("train %s %s (%s): %d train / %d valid / %d test ratings, up to %d epochs",
		j.recipe, j.name(), datasetLabel(j.dataset), run.Train, run.Valid, run.Test, cfg.Train.Epochs)
	reset := resetPeakRSS()
	start := time.Now()
	opts := pipeline.Options{
		Config: cfg,
		Logger: zerolog.Nop(),
		OnEpoch: func(s train.EpochStats) {
			run.Epochs = append(run.Epochs, s)
			line := fmt.Sprintf("  epoch %2d  loss %.4f  %7.0f examples/s", s.Epoch, s.Loss, s.ExamplesPerSec)
			if s.HasValid {
				line += fmt.Sprintf("  valid recall@10 %.4f", s.Valid)
			}
			p.logf("%s", line)
		},
	}
	b, err := pipeline.Train(ctx, in, opts)
	if err != nil {
		return run, nil, err
	}
	run.WallSeconds = time.Since(start).Seconds()
	run.PeakRSS, run.PeakRSSReset = peakRSS(), reset
	run.TrainSeconds = b.Manifest.Training.Seconds
	run.BestEpoch = b.Manifest.Training.BestEpoch
	run.Metrics = b.Manifest.Metrics
	eps := make([]float64, len(run.Epochs))
	for i, e := range run.Epochs {
		eps[i] = e.ExamplesPerSec
	}
	run.ExamplesPerSec = median(eps)
	line := fmt.Sprintf("  done in %.1fs: recall@10 %.4f (popularity %.4f)", run.WallSeconds, run.Metrics["recall@10"], run.Metrics["popularity.recall@10"])
	if v, ok := run.Metrics["rmse"]; ok {
		line += fmt.Sprintf(", rmse %.4f", v)
	}
	p.logf("%s", line)
	return run, b, nil
}
