package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/pipeline"
)

// demoDataDir is the --data value that selects the built-in demo catalogue.
const demoDataDir = "demo"

// version describes this binary from the build information the Go
// toolchain embeds: the module version when it has one, the VCS revision,
// its commit time and whether the tree had uncommitted changes, and the Go
// version.
func version() string {
	bi, _ := debug.ReadBuildInfo()
	return formatVersion(bi)
}

func formatVersion(bi *debug.BuildInfo) string {
	if bi == nil {
		return "towerrecall devel (no build information)"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	var parts []string
	if rev == "" {
		parts = append(parts, "no VCS information: built outside a git checkout or with -buildvcs=false")
	} else {
		parts = append(parts, "commit "+rev)
		if at != "" {
			parts = append(parts, at)
		}
		if modified {
			parts = append(parts, "modified")
		}
	}
	if bi.GoVersion != "" {
		parts = append(parts, bi.GoVersion)
	}
	return fmt.Sprintf("towerrecall %s (%s)", v, strings.Join(parts, ", "))
}

// logTime writes a log line's time: RFC 3339 with milliseconds, fixed
// width. zerolog's Timestamp has whole seconds (its format is a package
// variable), at which a drain's lines, or a reload and the requests around
// it, share one timestamp and a log pipeline ordering by it shuffles them.
type logTime struct{}

func (logTime) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	var b [40]byte
	q := append(b[:0], '"')
	q = time.Now().UTC().AppendFormat(q, "2006-01-02T15:04:05.000Z07:00")
	e.RawJSON(zerolog.TimestampFieldName, append(q, '"'))
}

// newLogger returns the program's logger on w. The console format writes
// ANSI colours only when color is set: when the output is a terminal, not a
// file or a pipe.
func newLogger(w io.Writer, c config.Log, color bool) zerolog.Logger {
	if c.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !color}
	}
	lvl, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).Hook(logTime{})
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// loadConfig builds the configuration: the preset chosen by objective (a
// flag, which also overrides the file's train.objective; else the file's
// train.objective), the file, the variables of the environment's sections
// the command reads (envSections; none: all, see config.ApplyEnv), then
// whatever set does to it (explicit flags).
func loadConfig(path, objective string, getenv func(string) string, envSections []string, set func(*config.Config)) (config.Config, error) {
	fromFlag := objective != ""
	var raw []byte
	if path != "" {
		var err error
		if raw, err = readConfigFile(path); err != nil {
			return config.Config{}, err
		}
		if objective == "" {
			peek, err := config.Parse(raw, path, config.Default())
			if err != nil {
				return config.Config{}, err
			}
			// The file's objective picks the base recipe (pointwise: the
			// reference one); presets are --objective values only.
			if objective = peek.Train.Objective; objective != "softmax" && objective != "pointwise" {
				return config.Config{}, fmt.Errorf("config %s: train.objective is softmax or pointwise, got %q (a preset such as recent-history is an --objective value)", path, objective)
			}
		}
	}
	c, err := config.Preset(objective)
	if err != nil {
		return c, fmt.Errorf("--objective: %w", err) // the file's is checked above
	}
	if raw != nil {
		chosen := c.Train.Objective
		if c, err = config.Parse(raw, path, c); err != nil {
			return c, err
		}
		if fromFlag {
			c.Train.Objective = chosen
		}
	}
	if err := c.ApplyEnv(getenv, envSections...); err != nil {
		return c, err
	}
	if set != nil {
		set(&c)
	}
	if err := c.Validate(); err != nil {
		if fromFlag && raw != nil {
			err = fmt.Errorf("%w\n(--objective %s starts from that recipe's preset; %s sets every key it lists over it)", err, objective, path)
		}
		// What set each key the error names, flags aside (withFlags): the
		// environment over the file.
		sources := map[string]string{}
		for _, k := range config.FileKeys(raw) {
			sources[k] = path
		}
		maps.Copy(sources, config.EnvKeys(getenv, envSections...))
		return c, invalidConfig{err, sources}
	}
	return c, nil
}

// maxConfigBytes bounds what --config reads: configuration files are a
// few kilobytes, and a path such as /dev/zero would otherwise be read until
// memory runs out.
const maxConfigBytes = 1 << 20

// readConfigFile reads a --config file of at most maxConfigBytes.
func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(raw) > maxConfigBytes {
		return nil, fmt.Errorf("config %s: over 1 MiB: not a configuration file", path)
	}
	return raw, nil
}

// invalidConfig is a configuration that parsed but failed Validate, with
// the flags applied: the only error a flag's value can have caused. Its
// message says what set each key the error names (sources: key → a flag
// such as --epochs, a TOWERRECALL_* variable, or the config file), so a
// bad value is found where it was written; keys none of them set are the
// defaults'.
type invalidConfig struct {
	error
	sources map[string]string
}

func (e invalidConfig) Unwrap() error { return e.error }

func (e invalidConfig) Error() string {
	msg := e.error.Error()
	var set []string
	for key, src := range e.sources {
		if namesKey(msg, key) {
			set = append(set, src+" sets "+key)
		}
	}
	if len(set) == 0 {
		return msg
	}
	slices.Sort(set)
	return msg + "\n(" + strings.Join(set, ", ") + ")"
}

// namesKey reports whether msg names key as a whole (train.distill, not
// train.distill_lambda).
func namesKey(msg, key string) bool {
	if key == "" {
		return false
	}
	for i := 0; ; {
		j := strings.Index(msg[i:], key)
		if j < 0 {
			return false
		}
		end := i + j + len(key)
		if end == len(msg) || !(msg[end] == '_' || 'a' <= msg[end] && msg[end] <= 'z') {
			return true
		}
		i = end
	}
}

// withFlags adds to a validation error (invalidConfig) which of the given
// flags set which of the keys it names (flags: flag name → the key it
// sets): a flag overrides the environment and the file. Other errors are
// returned as they are.
func withFlags(err error, given map[string]bool, flags map[string]string) error {
	var ic invalidConfig
	if !errors.As(err, &ic) {
		return err
	}
	sources := maps.Clone(ic.sources)
	if sources == nil {
		sources = map[string]string{}
	}
	for name, key := range flags {
		if given[name] {
			sources[key] = "--" + name
		}
	}
	return invalidConfig{ic.error, sources}
}

// flagsSet returns the names of the flags given on the command line.
func flagsSet(fs *flag.FlagSet) map[string]bool {
	m := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { m[f.Name] = true })
	return m
}

func runTrain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "YAML config `file`, given once (see configs/train.yaml)")
	var (
		dataDir   = fs.String("data", "", `MovieLens directory (ml-1m or ml-100k layout), or "demo" for the built-in demo catalogue (default: data.dir)`)
		trainF    = fs.String("train", "", "training ratings file (ratings format); default: every rating in --data")
		validF    = fs.String("valid", "", "validation ratings file: early stopping and selection, excluded at test; default: carved from --train (train.valid_fraction by time, train.valid_user_fraction per user, train.valid_random_fraction at random)")
		testF     = fs.String("test", "", "test ratings file: metrics go into the manifest (never used to choose anything)")
		out       = fs.String("out", "var/model", "artifact directory to write")
		objective = fs.String("objective", "", "softmax (default recipe) or pointwise (the reference recipe), or a preset: recent-history, random-split, reference")
		seed      = fs.Uint64("seed", 0, fmt.Sprintf("random seed (default: train.seed, %d)", config.Default().Train.Seed))
		epochs    = fs.Int("epochs", 0, "epochs (0: from config)")
		batch     = fs.Int("batch-size", 0, "batch size (0: from config)")
		workers   = fs.Int("workers", 0, "training goroutines; 1 reproduces bit for bit (0: from config)")
		logFormat = fs.String("log-format", "", "json or console (default: log.format, "+config.Default().Log.Format+")")
		progress  = fs.Bool("progress", true, "show a progress bar when stderr is a terminal")
	)
	if err := parseFlags(fs, "towerrecall train [--data DIR] [--train FILE] [--valid FILE] [--test FILE] [--out var/model] [--config FILE]", args, stdout, stderr); err != nil {
		return err
	}
	given := flagsSet(fs)
	// Train reads no serve variable (it writes --out, not serve.model): a
	// bad one meant for the service must not stop it.
	cfg, err := loadConfig(*cfgPath, *objective, getenv, []string{"data", "log"}, func(c *config.Config) {
		if given["data"] {
			c.Data.Dir = *dataDir
		}
		if given["train"] {
			c.Data.Train = *trainF
		}
		if given["valid"] {
			c.Data.Valid = *validF
		}
		if given["test"] {
			c.Data.Test = *testF
		}
		if given["seed"] {
			c.Train.Seed = *seed
		}
		// 0 keeps the config's value; anything else, a negative count
		// included, is the setting (and Validate names what is wrong).
		if *epochs != 0 {
			c.Train.Epochs = *epochs
		}
		if *batch != 0 {
			c.Train.BatchSize = *batch
		}
		if *workers != 0 {
			c.Train.Workers = *workers
		}
		if *logFormat != "" {
			c.Log.Format = *logFormat
		}
	})
	if err != nil {
		return withFlags(err, given, map[string]string{"seed": "train.seed", "epochs": "train.epochs", "batch-size": "train.batch_size", "workers": "train.workers", "log-format": "log.format"})
	}
	// On a terminal the progress bar and the log share stderr: each log
	// line is written above the bar, not into it.
	var bar *progressOut
	logOut := stderr
	if *progress && isTerminal(stderr) {
		bar = &progressOut{w: stderr}
		logOut = bar
	}
	logger := newLogger(logOut, cfg.Log, isTerminal(stderr))
	// From here on the error that ends train is a log line (JSON in the
	// training Job), not plain text after it.
	defer logEnd(logger, &err, "training failed")
	if err := artifact.CheckWritable(*out); err != nil {
		return err
	}
	in, err := readInputs(cfg.Data)
	if err != nil {
		return err
	}
	logger.Info().Str("data", cfg.Data.Dir).Int("users", len(in.Dataset.Users)).Int("movies", len(in.Dataset.Movies)).
		Int("train", len(in.Train)).Int("valid", len(in.Valid)).Int("test", len(in.Test)).
		Str("objective", cfg.Train.Objective).Int("workers", cfg.Train.Workers).Msg("training")
	opts := pipeline.Options{Config: cfg, Logger: logger}
	if bar != nil {
		opts.OnBatch = bar.step
	}
	b, err := pipeline.Train(ctx, in, opts)
	if err := cmp.Or(interrupted(ctx), err); err != nil {
		return err // a signal mid-training says "interrupted, nothing written", not "context canceled"
	}
	if err := artifact.Save(*out, b); err != nil {
		return err
	}
	ev := logger.Info().Str("out", *out).Str("version", b.Manifest.Version).
		Float64("examples_per_s", b.Manifest.Training.ExamplesPerSec).Float64("seconds", b.Manifest.Training.Seconds).
		Interface("index_recall", b.Manifest.Index.Recall)
	for _, k := range []string{"recall@10", "ndcg@10", "recall@100", "popularity.recall@10", "recent_popularity.recall@10", "ease.recall@10", "cold_start.recall@10", "rmse"} {
		if v, ok := b.Manifest.Metrics[k]; ok {
			ev = ev.Float64(k, v)
		}
	}
	ev.Msg("artifact written")
	return nil
}

// progressOut draws a progress bar on w, a new one at the first step of
// every run (each recipe, then the refit), and, as the log's writer, puts
// each log line above the bar: it clears the bar, writes the line and
// draws the bar again.
type progressOut struct {
	mu  sync.Mutex
	w   io.Writer
	bar *progressbar.ProgressBar
}

// step is a pipeline.Options.OnBatch.
func (p *progressOut) step(done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil || done == 1 { // train.Run counts steps from 1
		p.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription("training"), progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
	}
	_ = p.bar.Set(done)
}

func (p *progressOut) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	drawn := p.bar != nil && !p.bar.IsFinished()
	if drawn {
		_ = p.bar.Clear()
	}
	n, err := p.w.Write(b)
	if drawn {
		_ = p.bar.RenderBlank()
	}
	return n, err
}

// readInputs loads the dataset and the split files a config names.
func readInputs(d config.Data) (pipeline.Inputs, error) {
	var in pipeline.Inputs
	if d.Dir == "" {
		return in, errors.New("no data: pass --data DIR (get MovieLens with `towerrecall data download --dataset ml-100k --dir data`), or --data demo for the built-in demo catalogue")
	}
	if d.Dir == demoDataDir {
		ds := movielens.Demo(1)
		in.Dataset = ds
		in.Train, in.Test = movielens.TemporalSplit(ds.Ratings, 0.8)
		if d.Train == "" && d.Valid == "" && d.Test == "" {
			return in, nil
		}
		if d.Train != "" {
			in.Test = nil // split files replace the demo's own split, test included
		}
	} else {
		// With split files, the directory's own ratings are not read (it
		// may hold only the users and movies).
		load := movielens.LoadDir
		if d.Train != "" {
			load = movielens.LoadCatalog
		}
		ds, err := load(d.Dir)
		if err != nil {
			return in, fmt.Errorf("data.dir: %w", err) // from --data, TOWERRECALL_DATA_DIR or the file
		}
		in.Dataset = ds
		in.DataDir = d.Dir
		in.Train = ds.Ratings
		if in.Checksums, err = pipeline.FileChecksums(catalogFiles(d.Dir, ds.Layout, d.Train == "")...); err != nil {
			return in, err
		}
	}
	var err error
	if d.Train != "" {
		if in.Train, err = readSplit(&in, "--train", d.Train); err != nil {
			return in, err
		}
	}
	if in.Valid, err = readSplit(&in, "--valid", d.Valid); err != nil {
		return in, err
	}
	if d.Test != "" {
		if in.Test, err = readSplit(&in, "--test", d.Test); err != nil {
			return in, err
		}
	}
	return in, nil
}

// catalogFiles are the paths of a dataset directory's files that were
// read: the users, the movies, the genre list if there is one, and the
// ratings if asked.
func catalogFiles(dir string, l movielens.Layout, ratings bool) []string {
	files, _ := movielens.FilesOf(l)
	paths := []string{filepath.Join(dir, files.Users), filepath.Join(dir, files.Movies)}
	if files.Genres != "" {
		if _, err := os.Stat(filepath.Join(dir, files.Genres)); err == nil {
			paths = append(paths, filepath.Join(dir, files.Genres))
		}
	}
	if ratings {
		paths = append(paths, filepath.Join(dir, files.Ratings))
	}
	return paths
}

// readSplit reads a split file once (a pipe works: it is hashed while it
// is parsed), checks its ratings against in's dataset and records its
// checksum under its path. A file given but without ratings is an error,
// never the same as no file.
func readSplit(in *pipeline.Inputs, flagName, path string) ([]movielens.Rating, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("%s %s is a directory: pass a ratings file (such as %s)", flagName, path, ratingsFileIn(flagName, path))
	}
	h := sha256.New()
	rs, err := movielens.ReadRatings(io.TeeReader(f, h), path, in.Dataset)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("%s %s: no ratings in the file", flagName, path)
	}
	if in.Checksums != nil {
		in.Checksums[path] = hex.EncodeToString(h.Sum(nil))
	}
	return rs, nil
}

// ratingsFileIn names the file a split flag given the directory dir
// likely meant: a MovieLens directory's ratings file, else the flag's own
// split file (--valid valid.dat, --test test.dat, others train.dat).
func ratingsFileIn(flagName, dir string) string {
	if l, err := movielens.DetectLayout(dir); err == nil {
		files, _ := movielens.FilesOf(l)
		return filepath.Join(dir, files.Ratings)
	}
	switch flagName {
	case "--valid":
		return filepath.Join(dir, "valid.dat")
	case "--test":
		return filepath.Join(dir, "test.dat")
	}
	return filepath.Join(dir, "train.dat")
}

func runEval(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	var (
		modelDir = fs.String("model", "var/model", "artifact directory")
		dataDir  = fs.String("data", "", `MovieLens directory with the users and movies, or "demo"`)
		trainF   = fs.String("train", "", "training ratings (removed from the candidates)")
		validF   = fs.String("valid", "", "validation ratings (removed from the candidates)")
		testF    = fs.String("test", "", "test ratings: every one is a positive")
		workers  = fs.Int("workers", 2, "evaluation goroutines")
		window   = fs.Float64("recent-window", config.Default().Baselines.RecentWindow, "recent popularity baseline: the newest share of train's time span it counts (0: off)")
		lambda   = fs.Float64("ease-lambda", config.Default().Baselines.EASELambda, "EASE baseline's L2 weight (0: off)")
		newHist  = fs.Int("new-user-history", config.Default().Baselines.NewUserHistory, "new-user protocol: a new test user's first N ratings are sent as their history, the rest are positives (0: off)")
	)
	if err := parseFlags(fs, "towerrecall eval [--model var/model] --data DIR --train FILE [--valid FILE] --test FILE", args, stdout, stderr); err != nil {
		return err
	}
	if *dataDir == "" || (*dataDir != demoDataDir && (*trainF == "" || *testF == "")) {
		fmt.Fprintln(stderr, "eval needs --data, --train and --test (--data demo uses the demo's own split)")
		return errUsage
	}
	if *workers < 1 || *workers > 64 {
		return fmt.Errorf("eval: --workers %d out of range 1–64", *workers)
	}
	bc := config.Default()
	bc.Baselines = config.Baselines{RecentWindow: *window, EASELambda: *lambda, NewUserHistory: *newHist}
	if err := bc.Validate(); err != nil {
		return withFlags(invalidConfig{err, nil}, flagsSet(fs), map[string]string{"recent-window": "baselines.recent_window", "ease-lambda": "baselines.ease_lambda", "new-user-history": "baselines.new_user_history"})
	}
	b, err := artifact.Load(*modelDir)
	if err != nil {
		return err
	}
	in, err := readInputs(config.Data{Dir: *dataDir, Train: *trainF, Valid: *validF, Test: *testF})
	if err != nil {
		return err
	}
	r, err := pipeline.Evaluate(ctx, b, in.Dataset, pipeline.EvalInputs{Train: in.Train, Valid: in.Valid, Test: in.Test,
		Baselines: pipeline.BaselinesOf(bc)}, *workers)
	if err := interrupted(ctx); err != nil {
		return err // a signal says "interrupted", not "EASE: context canceled"
	}
	if err != nil { // which model: --model has a default, and the error may be about its files
		return fmt.Errorf("eval of the model at %s (version %s): %w", *modelDir, b.Manifest.Version, err)
	}
	if n, first := otherUsers(b.Profiles, in.Dataset); n > 0 {
		fmt.Fprintf(stderr, "eval: warning: %d of the model's %d stored users have other features in --data %s (first: user %d): the metrics use the data's features, which the model was not trained on and does not serve\n", n, len(b.Profiles), *dataDir, first)
	}
	if r.NotRemoved > 0 {
		fmt.Fprintf(stderr, "eval: warning: the model was trained on %d (user, movie) pairs that --train and --valid do not hold (its artifact's histories): those movies stay candidates; pass the files it was trained on (a model refit on its validation file needs --valid too)\n", r.NotRemoved)
	}
	if r.NotTrained > 0 {
		fmt.Fprintf(stderr, "eval: warning: --train and --valid hold %d (user, movie) pairs the model was not trained on: the movies removed from the candidates are not the ones training saw\n", r.NotTrained)
	}
	if b.Prior != nil && r.NotRemoved == 0 && b.Prior.Ratings > r.Removed {
		fmt.Fprintf(stderr, "eval: warning: the model's popularity prior counts %d ratings, more than --train and --valid hold (%d): if it counted the test ratings (a prior refreshed by `towerrecall prior` after the test period), the scores are optimistic\n", b.Prior.Ratings, r.Removed)
	}
	if w := popularityWarning(r, b.Manifest.Training.Selection, forward(in.Test, in.Train, in.Valid)); w != "" {
		fmt.Fprintln(stderr, w)
	}
	for _, note := range noiseNotes(r) {
		fmt.Fprintln(stderr, note)
	}
	out := r.JSON()
	out["model_version"] = b.Manifest.Version
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// popularityWarning is eval's warning for a model whose Recall@10 is not
// above popularity's, "" for one that is. A model chosen on views carved
// by time alone is told what a random split needs instead (docs/model.md,
// "Random splits without a validation file"), unless the test ratings all
// come after the others (forward): then the split is not a random one.
func popularityWarning(r pipeline.Report, sel *artifact.Selection, forward bool) string {
	m, p := r.Model["recall@10"], r.Popularity["recall@10"]
	if p == 0 || p >= 1 || !(m <= p) { // NaN (no user scored) is no comparison; at 1 nothing is above
		return ""
	}
	why := ""
	if sel.TimeViewsOnly() && !forward {
		why = ": its settings were chosen on views carved from train by time, which choose for the future; for a random split, train with the split's validation file (--valid) or the random-split preset (--objective random-split, or --config configs/random-split.yaml)"
	}
	return fmt.Sprintf("eval: warning: the model's Recall@10 (%.4f) is not above popularity's (%.4f) on this split%s", m, p, why)
}

// noiseNotes are eval's notes on the model's Recall@10 leads over the
// baselines fitted on train that sampling noise cannot tell from zero
// (within two paired standard errors), and its warnings for baselines it
// is below beyond that noise, in the order of the baselines' names; none
// for one user.
func noiseNotes(r pipeline.Report) []string {
	if r.Model["users"] < 2 { // no spread to measure: every standard error is 0
		return nil
	}
	var out []string
	for _, name := range slices.Sorted(maps.Keys(r.ModelLead)) {
		d, se := r.ModelLead[name]["recall@10"], r.ModelLead[name]["recall_se@10"]
		switch {
		case math.Abs(d) < 2*se:
			out = append(out, fmt.Sprintf("eval: note: the model's Recall@10 lead over %s, %+.4f ± %.4f (paired standard error, %.0f users), is within sampling noise", name, d, se, r.Model["users"]))
		case d < 0:
			out = append(out, fmt.Sprintf("eval: warning: the model's Recall@10 is below %s's beyond sampling noise: %+.4f ± %.4f (paired standard error, %.0f users)", name, d, se, r.Model["users"]))
		}
	}
	return out
}

// forward reports whether every test rating is at least as new as every
// rating of the others: a split forward in time.
func forward(test []movielens.Rating, others ...[]movielens.Rating) bool {
	var first, last int64 = math.MaxInt64, math.MinInt64
	for _, r := range test {
		first = min(first, r.Time)
	}
	for _, rs := range others {
		for _, r := range rs {
			last = max(last, r.Time)
		}
	}
	return len(test) > 0 && first >= last
}

// otherUsers counts the model's stored users (profiles.json) whose
// features ds gives otherwise, or that ds lacks, and returns the first's
// id. The catalogue check compares movies only.
func otherUsers(profiles []artifact.Profile, ds *movielens.Dataset) (n int, first movielens.UserID) {
	for _, p := range profiles {
		i, ok := ds.UserIndex(p.ID)
		if ok {
			u := ds.Users[i]
			ok = u.Gender == p.Gender && u.Age == p.Age && u.Occupation == p.Occupation && u.Zip == p.Zip
		}
		if !ok {
			if n == 0 {
				first = p.ID
			}
			n++
		}
	}
	return n, first
}

const (
	dataSynopsis     = "towerrecall data download [--dataset ml-100k|ml-1m] [--dir data]\n  " + synthSynopsis
	downloadSynopsis = "towerrecall data download [--dataset ml-100k|ml-1m] [--dir data]   (a mirror: TOWERRECALL_DOWNLOAD_URL)"
	synthSynopsis    = "towerrecall data synth --dir DIR --movies N --users N --ratings N [--seed S]"
)

// runData is `data download` (a MovieLens release) and `data synth` (a
// synthetic ML-1M-layout catalogue of any size, for scale tests).
func runData(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	switch {
	case len(args) > 0 && args[0] == "download":
		return runDownload(ctx, args[1:], getenv, stdout, stderr)
	case len(args) > 0 && args[0] == "synth":
		return runSynth(ctx, args[1:], stdout, stderr)
	case len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help"):
		fmt.Fprintf(stdout, "Usage:\n  %s\n", dataSynopsis)
		return flag.ErrHelp
	case len(args) > 0 && strings.HasPrefix(args[0], "-"):
		fmt.Fprintf(stderr, "data: name the command (download or synth) before its flags\nusage: %s\n", dataSynopsis)
		return errUsage
	case len(args) > 0:
		fmt.Fprintf(stderr, "data: unknown command %q (download or synth)\nusage: %s\n", args[0], dataSynopsis)
		return errUsage
	default:
		fmt.Fprintf(stderr, "usage: %s\n", dataSynopsis)
		return errUsage
	}
}

// redactedURL is u as an error shows it: a mirror's password and query
// values (movielens.ShownURL) stay out of the log, also when u does not
// parse (a secret made from a file keeps its last newline), where
// everything between "://" and the last '@' is hidden.
func redactedURL(u string) string {
	if p, err := url.Parse(u); err == nil {
		if p.User != nil || p.RawQuery != "" {
			return movielens.ShownURL(p)
		}
		return u
	}
	at := strings.LastIndexByte(u, '@')
	if at < 0 {
		return u
	}
	start := 0
	if i := strings.Index(u, "://"); i >= 0 && i < at {
		start = i + len("://")
	}
	return u[:start] + "xxxxx" + u[at:]
}

func runDownload(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("data download", flag.ContinueOnError)
	name := fs.String("dataset", "ml-100k", "ml-1m or ml-100k")
	dir := fs.String("dir", "data", "directory to unpack into")
	if err := parseFlags(fs, downloadSynopsis, args, stdout, stderr); err != nil {
		return err
	}
	src, ok := movielens.SourceByName(*name)
	if !ok {
		return fmt.Errorf("--dataset: unknown dataset %q (ml-1m or ml-100k)", *name)
	}
	if u := getenv(config.DownloadURLEnv); u != "" {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%s: %q is not an http or https URL (a mirror of %s)", config.DownloadURLEnv, redactedURL(u), src.URL)
		}
		src.URL = u // mirrors and tests
	}
	client := &http.Client{Timeout: 10 * time.Minute}
	path, err := movielens.Download(ctx, client, src, *dir)
	if _, fetch := errors.AsType[*movielens.FetchError](err); fetch && ctx.Err() == nil && getenv(config.DownloadURLEnv) == "" {
		err = fmt.Errorf("%w; or set %s to a mirror's URL of %s", err, config.DownloadURLEnv, src.URL)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, path)
	return nil
}

// runSynth writes movielens.Synth's catalogue as an ML-1M directory.
func runSynth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("data synth", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory to write users.dat, movies.dat and ratings.dat into (required)")
	movies := fs.Int("movies", 0, "catalogue size (required)")
	users := fs.Int("users", 0, "number of users (required)")
	ratings := fs.Int("ratings", 0, "total ratings, at least one per user (required)")
	seed := fs.Uint64("seed", 1, "generator seed: one seed, one catalogue")
	if err := parseFlags(fs, synthSynopsis, args, stdout, stderr); err != nil {
		return err
	}
	given := flagsSet(fs)
	var missing []string
	for _, f := range []string{"dir", "movies", "users", "ratings"} {
		if !given[f] {
			missing = append(missing, "--"+f)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "data synth needs %s\nusage: %s\n", strings.Join(missing, ", "), synthSynopsis)
		return errUsage
	}
	ds, err := movielens.Synth(movielens.SynthOptions{Movies: *movies, Users: *users, Ratings: *ratings}, *seed)
	if err != nil {
		return err
	}
	if err := interrupted(ctx); err != nil {
		return err
	}
	if err := movielens.WriteML1M(*dir, ds); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d movies, %d users, %d ratings (seed %d)\n", *dir, len(ds.Movies), len(ds.Users), len(ds.Ratings), *seed)
	return nil
}
