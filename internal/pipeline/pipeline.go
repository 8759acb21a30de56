// Package pipeline runs the training job end to end: MovieLens ratings →
// feature vocabularies → two towers → training → movie vectors → HNSW graph
// → evaluation → an artifact bundle. It also evaluates a saved bundle on
// split files. It sits just below cmd, which only parses flags and calls it.
package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/eval"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/tower"
	"github.com/towerrecall/towerrecall/internal/train"
)

// Inputs is what a training job reads.
type Inputs struct {
	Dataset   *movielens.Dataset
	Train     []movielens.Rating // required
	Valid     []movielens.Rating // optional: early stopping; removed from candidates at test
	Test      []movielens.Rating // optional: metrics written into the manifest
	DataDir   string
	Checksums map[string]string // input file → sha256
}

// Options configure a training job.
type Options struct {
	Config  config.Config
	Logger  zerolog.Logger
	OnBatch func(done, total int)  // progress, may be nil
	OnEpoch func(train.EpochStats) // may be nil
	Now     func() time.Time
}

// Train runs the job and returns the bundle, ready for artifact.Save.
func Train(ctx context.Context, in Inputs, opts Options) (*artifact.Bundle, error) {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if in.Dataset == nil || len(in.Train) == 0 {
		return nil, errors.New("pipeline: no training ratings")
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	ds := in.Dataset
	ix := NewIndex(ds)
	tc, userFields, movieFields := TowerConfig(cfg.Model)
	enc, err := feature.Fit(userFields, movieFields, ds.Users, ds.Movies, in.Train)
	if err != nil {
		return nil, err
	}
	data := train.Data{Users: make([]feature.Encoded, len(ds.Users)), Movies: make([]feature.Encoded, len(ds.Movies))}
	hist := histories(in.Train)
	for i, u := range ds.Users {
		ui := feature.FromUser(u)
		ui.History = hist[u.ID]
		data.Users[i] = enc.EncodeUser(ui)
	}
	counts := make(map[movielens.MovieID]int)
	for _, r := range in.Train {
		counts[r.Movie]++
	}
	for i, m := range ds.Movies {
		mi := feature.FromMovie(m)
		mi.Ratings = counts[m.ID]
		data.Movies[i] = enc.EncodeMovie(mi)
	}
	if data.Train, err = ix.Interactions(in.Train); err != nil {
		return nil, fmt.Errorf("pipeline: train ratings: %w", err)
	}
	if data.Valid, err = ix.Interactions(in.Valid); err != nil {
		return nil, fmt.Errorf("pipeline: valid ratings: %w", err)
	}
	times := make([]int64, len(in.Train))
	for i, r := range in.Train {
		times[i] = r.Time
	}
	fl := train.Fields{User: userFields, Movie: movieFields}
	pos := slices.Index(userFields, feature.HistoryField)
	if pos >= 0 {
		fl.HistoryIndex = make([]int32, len(ds.Movies))
		for i, m := range ds.Movies {
			fl.HistoryIndex[i] = enc.HistoryIndexes(nil, []string{strconv.Itoa(int(m.ID))})[0]
		}
	}
	if err := recipe(cfg.Train).Apply(&data, times, fl); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	rng := rand.New(rand.NewPCG(cfg.Train.Seed, 0x70fe5))
	model, err := tower.New(tc, enc.VocabSizes(userFields), enc.VocabSizes(movieFields), rng)
	if err != nil {
		return nil, err
	}
	hooks := train.Hooks{OnBatch: opts.OnBatch}
	hooks.OnEpoch = func(s train.EpochStats) {
		ev := opts.Logger.Info().Int("epoch", s.Epoch).Float64("loss", s.Loss).
			Float64("examples_per_s", s.ExamplesPerSec).Float64("seconds", s.Seconds)
		if s.HasValid {
			ev = ev.Float64("valid_recall@10", s.Valid)
		}
		ev.Msg("epoch")
		if opts.OnEpoch != nil {
			opts.OnEpoch(s)
		}
	}
	if len(in.Valid) > 0 {
		split := ix.Split(in.Train, nil, in.Valid)
		hooks.Validate = func(m *tower.Model) (float64, error) {
			met, err := eval.Evaluate(ctx, NewScorer(m, data.Users, data.Movies), split, []int{10}, cfg.Train.Workers)
			if err != nil {
				return 0, err
			}
			return met["recall@10"], nil
		}
	}
	res, err := train.Run(ctx, model, data, trainConfig(cfg.Train, pos), hooks)
	if err != nil {
		return nil, err
	}

	b := &artifact.Bundle{Model: model, Encoder: enc}
	b.Movies = make([]artifact.Movie, len(ds.Movies))
	b.Vectors = make([]float32, len(ds.Movies)*cfg.Model.Dim)
	for i, m := range ds.Movies {
		b.Movies[i] = artifact.Movie{ID: m.ID, Title: m.Title, Genres: m.Genres, Year: m.Year}
		model.MovieVector(b.Vectors[i*cfg.Model.Dim:(i+1)*cfg.Model.Dim], data.Movies[i])
	}
	b.Users, b.Seen = ix.History(append(slices.Clip(in.Train), in.Valid...))

	// The graph is built once here and shipped inside the artifact, so that
	// replicas start without rebuilding it.
	hp := HNSWParams(cfg.Serve)
	h, err := ann.NewHNSW(b.Vectors, cfg.Model.Dim, hp)
	if err != nil {
		return nil, fmt.Errorf("pipeline: HNSW: %w", err)
	}
	var graph bytes.Buffer
	if err := h.Export(&graph); err != nil {
		return nil, fmt.Errorf("pipeline: export HNSW: %w", err)
	}
	b.Graph = graph.Bytes()
	exact, err := ann.NewExact(b.Vectors, cfg.Model.Dim)
	if err != nil {
		return nil, err
	}
	nq := cfg.Serve.SelfCheckQueries
	queries := make([][]float32, 0, nq)
	for i := 0; i < len(data.Users) && len(queries) < nq; i += max(1, len(data.Users)/nq) {
		q := make([]float32, cfg.Model.Dim)
		model.UserVector(q, data.Users[i])
		queries = append(queries, q)
	}
	indexRecall, err := ann.SelfCheck(h, exact, queries, []int{10, 100})
	if err != nil {
		return nil, fmt.Errorf("pipeline: HNSW self-check: %w", err)
	}

	rawCfg, _ := json.Marshal(cfg)
	hpj, _ := json.Marshal(hp)
	b.Manifest = artifact.Manifest{
		Version:    now().UTC().Format("20060102T150405Z") + "-" + strconv.FormatUint(cfg.Train.Seed, 10),
		CreatedAt:  now().UTC(),
		Objective:  cfg.Train.Objective,
		Dim:        cfg.Model.Dim,
		Normalized: cfg.Model.Normalize,
		Config:     rawCfg,
		Data: artifact.DataInfo{Dir: in.DataDir, Layout: string(ds.Layout), Checksums: in.Checksums,
			Train: len(in.Train), Valid: len(in.Valid)},
		Sizes:  artifact.Sizes{Users: len(b.Users), Movies: len(b.Movies), Vocabs: map[string]int{}},
		Fields: artifact.Fields{User: userFields, Movie: movieFields},
		Training: artifact.Training{
			Epochs: len(res.Epochs), BestEpoch: res.BestEpoch, Seconds: res.Seconds,
			ExamplesPerSec: res.ExamplesPerSec, Workers: cfg.Train.Workers, Seed: cfg.Train.Seed,
		},
		Index: artifact.IndexInfo{HNSW: hpj, Recall: map[string]float64{}},
	}
	for k, r := range indexRecall {
		b.Manifest.Index.Recall["recall@"+strconv.Itoa(k)] = r
	}
	for f, v := range enc.Vocabs {
		b.Manifest.Sizes.Vocabs[string(f)] = v.Size()
	}
	for _, e := range res.Epochs {
		b.Manifest.Training.Loss = append(b.Manifest.Training.Loss, e.Loss)
		if e.HasValid {
			b.Manifest.Training.ValidRecall10 = append(b.Manifest.Training.ValidRecall10, e.Valid)
		}
	}
	if len(in.Test) > 0 {
		met, err := Evaluate(ctx, b, ds, EvalInputs{Train: in.Train, Valid: in.Valid, Test: in.Test}, cfg.Train.Workers)
		if err != nil {
			return nil, err
		}
		b.Manifest.Metrics = met.Flat()
	}
	return b, nil
}

// histories returns each user's rated movie ids (as the history feature
// takes them), in rating order.
func histories(rs []movielens.Rating) map[movielens.UserID][]string {
	out := map[movielens.UserID][]string{}
	for _, r := range rs {
		out[r.User] = append(out[r.User], strconv.Itoa(int(r.Movie)))
	}
	return out
}

// Index maps external ids to the dense indexes of a dataset's users and
// movies (their position in Dataset.Users / Dataset.Movies).
type Index struct {
	users  map[movielens.UserID]int32
	movies map[movielens.MovieID]int32
	ds     *movielens.Dataset
}

// NewIndex indexes ds.
func NewIndex(ds *movielens.Dataset) *Index {
	ix := &Index{users: make(map[movielens.UserID]int32, len(ds.Users)), movies: make(map[movielens.MovieID]int32, len(ds.Movies)), ds: ds}
	for i, u := range ds.Users {
		ix.users[u.ID] = int32(i)
	}
	for i, m := range ds.Movies {
		ix.movies[m.ID] = int32(i)
	}
	return ix
}

// Interactions converts ratings to dense indexes; an unknown id is an error.
func (ix *Index) Interactions(rs []movielens.Rating) ([]train.Interaction, error) {
	out := make([]train.Interaction, 0, len(rs))
	for i, r := range rs {
		u, ok := ix.users[r.User]
		if !ok {
			return nil, fmt.Errorf("rating %d: unknown user %d", i+1, r.User)
		}
		m, ok := ix.movies[r.Movie]
		if !ok {
			return nil, fmt.Errorf("rating %d: unknown movie %d", i+1, r.Movie)
		}
		out = append(out, train.Interaction{User: u, Movie: m, Rating: r.Value})
	}
	return out, nil
}

func (ix *Index) pairs(rs []movielens.Rating) []eval.Pair {
	out := make([]eval.Pair, 0, len(rs))
	for _, r := range rs {
		u, ok1 := ix.users[r.User]
		m, ok2 := ix.movies[r.Movie]
		if ok1 && ok2 {
			out = append(out, eval.Pair{User: u, Movie: m})
		}
	}
	return out
}

// Split builds the evaluation split: train and valid are excluded, test
// ratings are the positives.
func (ix *Index) Split(trainR, validR, testR []movielens.Rating) *eval.Split {
	excl := append(ix.pairs(trainR), ix.pairs(validR)...)
	return eval.NewSplit(len(ix.ds.Users), len(ix.ds.Movies), excl, ix.pairs(testR))
}

// History returns the users with ratings in rs, sorted by id, and each one's
// sorted distinct movie indexes.
func (ix *Index) History(rs []movielens.Rating) ([]movielens.UserID, [][]int32) {
	by := map[movielens.UserID]map[int32]bool{}
	for _, r := range rs {
		m, ok := ix.movies[r.Movie]
		if !ok {
			continue
		}
		if by[r.User] == nil {
			by[r.User] = map[int32]bool{}
		}
		by[r.User][m] = true
	}
	ids := make([]movielens.UserID, 0, len(by))
	for u := range by {
		ids = append(ids, u)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	seen := make([][]int32, len(ids))
	for i, u := range ids {
		for m := range by[u] {
			seen[i] = append(seen[i], m)
		}
		slices.Sort(seen[i])
	}
	return ids, seen
}

// Scorer scores every movie for a user with the towers, by inner product.
type Scorer struct {
	dim     int
	users   [][]float32
	vectors []float32
}

// NewScorer computes all user and movie vectors once.
func NewScorer(m *tower.Model, users, movies []feature.Encoded) *Scorer {
	d := m.Dim()
	s := &Scorer{dim: d, users: make([][]float32, len(users)), vectors: make([]float32, len(movies)*d)}
	for i, u := range users {
		s.users[i] = make([]float32, d)
		m.UserVector(s.users[i], u)
	}
	for i, mv := range movies {
		m.MovieVector(s.vectors[i*d:(i+1)*d], mv)
	}
	return s
}

// ScoreAll implements eval.Scorer.
func (s *Scorer) ScoreAll(dst []float32, u int32) {
	q := s.users[u]
	for i := range dst {
		dst[i] = ann.Dot(q, s.vectors[i*s.dim:(i+1)*s.dim])
	}
}

// FileChecksums returns the sha256 of each existing file.
func FileChecksums(paths ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range paths {
		if p == "" {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("checksum %s: %w", p, err)
		}
		out[filepath.Base(p)] = hex.EncodeToString(h.Sum(nil))
	}
	return out, nil
}
