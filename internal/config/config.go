// Package config holds every setting of towerrecall: a struct with
// defaults, loaded from a YAML file, then overridden by environment
// variables and flags (applied by cmd), and checked by Validate, which
// reports every problem at once.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration.
type Config struct {
	Data  Data  `yaml:"data"`
	Model Model `yaml:"model"`
	Train Train `yaml:"train"`
	Serve Serve `yaml:"serve"`
	Log   Log   `yaml:"log"`
	// Baselines are the yardsticks evaluated beside the model (eval, and
	// train with a test file).
	Baselines Baselines `yaml:"baselines"`
}

// Baselines configures the baselines printed beside every model number:
// popularity (always), recent popularity and EASE.
type Baselines struct {
	// RecentWindow is the newest share of train's time span whose ratings
	// recent popularity counts; 0 leaves it out.
	RecentWindow float64 `yaml:"recent_window"`
	// EASELambda is EASE's L2 weight (Steck 2019); 0 leaves it out.
	EASELambda float64 `yaml:"ease_lambda"`
	// NewUserHistory is how many of a new test user's first ratings the
	// new-user protocol sends as their history (user.recent_movie_ids),
	// the rest being positives; 0 leaves the protocol out.
	NewUserHistory int `yaml:"new_user_history"`
}

// Data says where the MovieLens files and optional split files are.
type Data struct {
	Dir   string `yaml:"dir"`   // a MovieLens directory (ml-1m or ml-100k layout)
	Train string `yaml:"train"` // ratings-format split files; empty: use all ratings of Dir
	Valid string `yaml:"valid"`
	Test  string `yaml:"test"`
}

// Feature is one tower input and its embedding size.
type Feature struct {
	Name string `yaml:"name"`
	Dim  int    `yaml:"dim"`
}

// Model describes the two towers.
type Model struct {
	Dim        int       `yaml:"dim"`
	Hidden     []int     `yaml:"hidden"`
	OutputReLU bool      `yaml:"output_relu"`
	Normalize  bool      `yaml:"normalize"`
	RatingHead bool      `yaml:"rating_head"`
	User       []Feature `yaml:"user"`
	Movie      []Feature `yaml:"movie"`
	// HistoryLength shapes the user tower's history feature (when
	// model.user lists it). 0: the bag of every movie the user rated in
	// train (a training example leaves out its fold of the user's ratings,
	// train.history_folds). N > 0: the user's N most recent movies — for a
	// training example those rated strictly before it (causal), at serving
	// the request's recent_movie_ids (newest first) then the stored user's
	// newest movies, N in all — so training sees what serving sends.
	HistoryLength int `yaml:"history_length"`
	// HistoryDecay (with history_length > 0) pools the recent movies by
	// recency: the k-th newest weighs history_decay^k; 0: the plain mean.
	HistoryDecay float64 `yaml:"history_decay"`
}

// Train holds the optimisation settings.
type Train struct {
	Objective    string  `yaml:"objective"` // softmax | pointwise
	Epochs       int     `yaml:"epochs"`
	BatchSize    int     `yaml:"batch_size"`
	LearningRate float32 `yaml:"learning_rate"`
	Optimizer    string  `yaml:"optimizer"` // adam | rmsprop
	Temperature  float32 `yaml:"temperature"`
	LogQ         bool    `yaml:"logq"`
	L2           float32 `yaml:"l2"`
	Workers      int     `yaml:"workers"`
	Seed         uint64  `yaml:"seed"`
	Patience     int     `yaml:"patience"`
	// ColdStartRate is the share of training ratings moved to id-less twins
	// of their user (and half as many to twins of their movie), so that
	// users and movies without an id embedding get good vectors.
	ColdStartRate float64 `yaml:"cold_start_rate"`
	// Recency weights each user's ratings by their place in the user's
	// history (newest e^recency times the oldest; weights average 1), so
	// training leans towards current taste. 0 turns it off (the default).
	// The 3 once shipped was chosen on the user-temporal test files; on
	// validation (valid.dat of the timeline and recbole splits, the newest
	// tenth of train for user-temporal) 0 matched or beat 3 on every split,
	// with the popularity prior chosen on top (docs/model.md).
	Recency float64 `yaml:"recency"`
	// HistoryFolds splits each user's training ratings into this many folds
	// for the history feature: an example of fold k sees the user's history
	// without fold k, so the target movie is never in its own history bag.
	HistoryFolds int `yaml:"history_folds"`
	// ColdLogQ scales the logQ correction in the rows of the cold-start
	// twins: 1 is the unbiased correction; above 1 the id-less vectors
	// learn a popularity bonus ((ColdLogQ−1)·log frequency), the best guess
	// for a user nothing is known about; below 1, a popularity penalty.
	ColdLogQ float64 `yaml:"cold_logq"`
	// UniformNegatives adds this many uniformly drawn movies to every
	// softmax step as shared negatives (mixed negative sampling).
	UniformNegatives int `yaml:"uniform_negatives"`
	// LogQScale scales the logQ correction in the rows of the other (not
	// cold-start) users: 1 is the unbiased correction; below 1 the scores
	// keep a popularity bonus of (1−logq_scale)·log frequency.
	LogQScale float64 `yaml:"logq_scale"`
	// UserWeight weights each training rating by n^−user_weight, n being
	// its user's number of training ratings (normalised to mean 1), so
	// light users, who weigh as much as heavy ones in per-user metrics,
	// count more; 0 weighs every rating alike.
	UserWeight float64 `yaml:"user_weight"`
	// Distill (softmax) distils EASE into the towers: EASE (Steck 2019, L2
	// weight distill_lambda) is fitted on the training ratings, each user's
	// scores are standardised and divided by distill_temperature, and
	// distill × the KL divergence from that distribution over each step's
	// movies to the towers' joins the loss, so the 8-d vectors learn a
	// full ranking, not only the rated movie. 0 turns it off; a catalogue
	// of over 10,000 movies (or 2^28 user × movie scores) trains without it
	// (logged, and the manifest records distill 0).
	Distill            float64 `yaml:"distill"`
	DistillTemperature float64 `yaml:"distill_temperature"`
	DistillLambda      float64 `yaml:"distill_lambda"`
	// LRSchedule decays the learning rate over the planned epochs:
	// constant (or empty), linear or cosine (to 0 at the end of the last
	// epoch).
	LRSchedule string `yaml:"lr_schedule"`
	// PlanEpochs is not a setting: the refit, which repeats the chosen
	// epochs of the selection run, plans lr_schedule over that run's
	// epochs (0: epochs).
	PlanEpochs int `yaml:"-"`
	// HistoryDropout drops each movie of the history bag with this
	// probability, anew at every training step (at least one is kept);
	// serving and evaluation see the whole bag. 0 turns it off.
	HistoryDropout float64 `yaml:"history_dropout"`
	// ValidFraction is the newest share of the training ratings (by time,
	// one timeline for all users) held out for early stopping and the
	// choice of settings when no validation file is given; with every
	// view's fraction 0, train runs without validation. A test file never
	// chooses anything.
	ValidFraction float64 `yaml:"valid_fraction"`
	// ValidUserFraction is the newest share of each user's own ratings
	// (of those older than the ValidFraction view) held out as a second
	// validation view when no validation file is given: the service is
	// asked about the next ratings of the users it knows as well as about
	// the global future, and every setting is chosen on the mean over the
	// two views of Recall@10 relative to that view's popularity
	// (docs/model.md). 0 validates on the global view alone.
	ValidUserFraction float64 `yaml:"valid_user_fraction"`
	// ValidRandomFraction is a share of the rest (after the other views)
	// drawn at random as a third view when no validation file is given:
	// ratings missing at random, as a random split asks about. 0: no such
	// view.
	ValidRandomFraction float64 `yaml:"valid_random_fraction"`
	// Refit, after validation chose the recipe, the epoch count and the
	// prior, trains the towers again on the training ratings and the
	// held-out ones (carved from train, or the validation file) for that
	// many epochs, so the newest ratings, and users and movies first seen
	// in them, are not lost to the model.
	Refit bool `yaml:"refit"`
	// PriorHalfLives (days; 0: no decay) and PriorWeights are the grid the
	// time-aware popularity prior is chosen from on validation: a movie's
	// bias is the log of its share of the train ratings counted with
	// exponential decay by age, added to the cosine with the weight (one
	// extra vector dimension). The search only re-scores the validation
	// ratings, it trains nothing. Weight 0 (no prior) is always tried; no
	// weights above 0 (and no prior_feature_shares) turns the prior off.
	PriorHalfLives []float64 `yaml:"prior_half_lives"`
	PriorWeights   []float64 `yaml:"prior_weights"`
	// PriorFeatureShares is the grid of a known user's feature share
	// chosen with the prior: their query is (1 − share) × their own plus
	// share × the one from their features alone (id and history
	// withheld), for a future where their past tastes may no longer hold.
	// Share 0 (their own query) is always tried, with each prior weight
	// (0, no prior, included). Only towers with a user id field have
	// users to mix (users known only by their history are not mixed).
	// Below 1, so that a known user's own history and recent movies always
	// count.
	PriorFeatureShares []float64 `yaml:"prior_feature_shares"`
	// Candidates are presets (see Preset) whose recipes — towers and
	// training settings, with this run's seed, workers, epochs,
	// validation, refit, prior grid and model.dim (carriedOnto) — are
	// trained too when there is validation; train keeps
	// whichever of them and the configured recipe scores highest on
	// validation, each with its own epoch count and popularity prior
	// (manifest training.selection.candidates, /model's recipe). The
	// default tries "recent-history" (the user's newest movies: gains on
	// each user's next ratings) and "random-split" (the whole history in
	// place of the id: gains on random held-out ratings); no recipe is
	// right for every split (docs/model.md). Empty: train as configured.
	Candidates []string `yaml:"candidates"`
	// SearchBudget stops the search: a candidate starts only while the
	// run has spent less than this on training (0: no limit).
	SearchBudget time.Duration `yaml:"search_budget"`
}

// Serve holds the service's settings.
type Serve struct {
	Addr              string        `yaml:"addr"`
	Model             string        `yaml:"model"`      // artifact directory
	Demo              bool          `yaml:"demo"`       // no artifact at Model: train one on the built-in demo catalogue (or Data.Dir if set)
	Index             string        `yaml:"index"`      // auto | exact | hnsw
	MinRecall         float64       `yaml:"min_recall"` // auto: serve HNSW only when its self-check recall@K reaches this
	SelfCheckQueries  int           `yaml:"self_check_queries"`
	HNSWM             int           `yaml:"hnsw_m"`
	HNSWEfSearch      int           `yaml:"hnsw_ef_search"`
	HNSWOverfetch     int           `yaml:"hnsw_overfetch"`
	BodyLimit         int64         `yaml:"body_limit"`
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`
	RequestTimeout    time.Duration `yaml:"request_timeout"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
	DrainDelay        time.Duration `yaml:"drain_delay"` // /readyz fails this long before the listener closes
	ReloadPoll        time.Duration `yaml:"reload_poll"` // 0: reload on SIGHUP only
	// TrustedProxies are the CIDR prefixes of proxies whose
	// X-Forwarded-For is believed (the client IP in logs); empty: the TCP
	// peer is the client.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// CORSOrigins are the web origins (scheme://host[:port], matched
	// exactly) whose pages may call the API from a browser; empty: CORS is
	// off and browsers refuse cross-origin calls.
	CORSOrigins []string `yaml:"cors_origins"`
	// BatchMax is the most users one POST /recall/batch may ask for.
	BatchMax int `yaml:"batch_max"`
	// MaxItemsInFlight bounds the answer items (recall items, scores) of
	// the requests being answered at once, which bounds their memory:
	// a request that does not fit is shed at once (503 overloaded,
	// Retry-After: 1). 0: no limit; otherwise at least one maximal batch
	// (batch_max × MaxK), so that every valid request can be answered.
	MaxItemsInFlight int64 `yaml:"max_items_in_flight"`
	// MaxBodyBytesInFlight bounds the bytes of request bodies (past the
	// first 16 KiB of each) read and held until their answers are
	// written, so that slow uploads cannot hold unbounded memory: a body
	// whose next bytes do not fit is refused mid-read (503 overloaded,
	// Retry-After: 1). 0: no limit; otherwise at least body_limit, so
	// that every valid request can be read.
	MaxBodyBytesInFlight int64 `yaml:"max_body_bytes_in_flight"`
	// MaxRecentMovies is the most user.recent_movie_ids a request may send.
	MaxRecentMovies int `yaml:"max_recent_movies"`
	// AccessLogEvery logs one in this many answered requests (status
	// below 400) at info; 1 (the default) logs each. Requests answered
	// 400 or above and catalogue changes (PUT, DELETE) are always logged;
	// probes and scrapes are at debug. At thousands of requests a second
	// the access log is megabytes a second; its metrics count every one.
	AccessLogEvery int `yaml:"access_log_every"`
	// Explorer serves the explorer page (GET /), where people try the
	// model in a browser; off, / is a 404.
	Explorer bool `yaml:"explorer"`
	// CatalogToken turns on PUT and DELETE /movies/{movie_id} (catalogue
	// changes without retraining) for requests that send it as a bearer
	// token; empty (the default): the routes do not exist (404). Set it
	// from the environment (TOWERRECALL_CATALOG_TOKEN), not a file in the
	// repository.
	CatalogToken string `yaml:"catalog_token"`
	// CatalogJournal is the file catalogue changes are appended to and
	// replayed from; empty: the model directory's path plus ".journal"
	// (beside the artifact, not inside it: publishing an artifact replaces
	// its directory).
	CatalogJournal string `yaml:"catalog_journal"`
	// DebugAddr is where Go's profiler (net/http/pprof) is served, on a
	// listener of its own, never the API's; empty (the default): off.
	// Bind it to localhost and reach it with kubectl port-forward.
	DebugAddr string `yaml:"debug_addr"`
	// MetricsAddr is where GET /metrics is served instead of serve.addr,
	// on a listener of its own (a port that the NetworkPolicy opens to
	// Prometheus alone); empty (the default): on serve.addr.
	MetricsAddr string `yaml:"metrics_addr"`
}

// MaxK is the largest k of a request (recall.MaxK, which this package does
// not import): serve.max_items_in_flight holds at least batch_max of them.
const MaxK = 1000

// MinCatalogToken is the shortest catalogue token Validate accepts.
const MinCatalogToken = 16

// JournalPath is where catalogue changes are journalled.
func (s Serve) JournalPath() string {
	if s.CatalogJournal != "" {
		return s.CatalogJournal
	}
	return filepath.Clean(s.Model) + ".journal" // beside the artifact directory, also for "model/" or "model/."
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // json | console
}

// Default returns the built-in configuration: the default softmax model,
// and a local service on :8080 that trains on the demo catalogue when no
// artifact exists. It is the one place defaults live: the packages below
// (tower, train, ann, …) take explicit values, translated by pipeline.
func Default() Config {
	return Config{
		Model: Model{
			Dim: 8, Hidden: []int{64}, Normalize: true,
			User:  []Feature{{"user_id", 32}, {"gender", 4}, {"age", 4}, {"occupation", 4}, {"zip", 8}},
			Movie: []Feature{{"movie_id", 32}, {"genres", 8}, {"year", 4}},
			// The recent-history feature's (preset recent-history).
			HistoryLength: 20, HistoryDecay: 0.8,
		},
		Train: Train{
			Objective: "softmax", Epochs: 20, BatchSize: 1024, LearningRate: 0.005, Optimizer: "adam",
			Temperature: 0.1, LogQ: true, Workers: 2, Seed: 1, Patience: 3, ColdStartRate: 0.1, Recency: 0,
			HistoryFolds: 10, ColdLogQ: 3, LogQScale: 1, LRSchedule: "constant", ValidFraction: 0.1, ValidUserFraction: 0.1, Refit: true,
			DistillTemperature: 1, DistillLambda: 500,
			PriorHalfLives: []float64{2, 7, 30, 120, 0}, PriorWeights: []float64{0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 3, 5, 10},
			PriorFeatureShares: []float64{0.25, 0.5, 0.75},
			Candidates:         []string{"recent-history", "random-split"}, SearchBudget: 10 * time.Minute,
		},
		Serve: Serve{
			Addr: ":8080", Model: "var/model", Demo: true, Index: "auto", MinRecall: 0.99, SelfCheckQueries: 100,
			HNSWM: 8, HNSWEfSearch: 24, HNSWOverfetch: 2,
			BodyLimit: 1 << 20, MaxHeaderBytes: 64 << 10, RequestTimeout: 2 * time.Second, ReadHeaderTimeout: 2 * time.Second,
			ReadTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second,
			ShutdownTimeout: 15 * time.Second, DrainDelay: 0, BatchMax: 100, MaxRecentMovies: 50, Explorer: true,
			AccessLogEvery: 1,
			// Ten maximal batches (100 entries of k=1000).
			MaxItemsInFlight: 1_000_000,
			// 32 bodies of the largest size at once; a usual /recall body
			// is under 300 bytes.
			MaxBodyBytesInFlight: 32 << 20,
		},
		Log:       Log{Level: "info", Format: "json"},
		Baselines: Baselines{RecentWindow: 0.1, EASELambda: 500, NewUserHistory: 5},
	}
}

// Reference returns the reference recipe of DESIGN.md: pointwise MSE on
// scaled ratings, user id 100-d, gender/age/occupation 2-d, movie id 100-d,
// genre 2-d, Dense 32 ReLU → Dense 8 ReLU, dot → Dense(1, sigmoid),
// RMSprop, batch 32. It is known to collapse to a constant output on ml-1m
// (a ReLU'd 8-dim output can die entirely); output_relu false avoids that.
// It trains on one core: at batch 32 a step is ~100 µs, and splitting it
// across two workers costs more in hand-offs than it saves (measured: 348k
// vs 230k examples per CPU-second).
func Reference() Config {
	c := Default()
	c.Model = Model{
		Dim: 8, Hidden: []int{32}, OutputReLU: true, RatingHead: true,
		User:  []Feature{{"user_id", 100}, {"gender", 2}, {"age", 2}, {"occupation", 2}},
		Movie: []Feature{{"movie_id", 100}, {"genres", 2}},
	}
	c.Train = Train{Objective: "pointwise", Epochs: 10, BatchSize: 32, LearningRate: 0.001, Optimizer: "rmsprop", Workers: 1, Seed: 1, Patience: 2,
		HistoryFolds: 10, ColdLogQ: 1, LogQScale: 1, LRSchedule: "constant", ValidFraction: 0.1, Refit: true,
		DistillTemperature: 1, DistillLambda: 500}
	return c
}

// RandomSplit is the default model tuned for evaluation on random splits
// (such as RecBole's 8:1:1): the history feature in place of the user id,
// light users weighted up, a stronger logQ correction and EASE distilled
// into the towers.
// configs/random-split.yaml spells it out.
//
// Its user tower adds the history feature (the user's rated movies,
// mean-pooled) and drops the user id: on a random split a user's history
// describes them as well as an id does, and at serving it includes ratings
// made after training (RecBole's valid ratings at test). The logQ
// correction of the cold-start rows stays unscaled (cold_logq 1): that is
// what was validated on this split.
//
// Two training options were chosen on RecBole's valid split (seeds 1–3):
// user_weight 0.5 (a rating of a user with n ratings weighs ∝ n^−0.5, so
// light users, who count as much as heavy ones in per-user Recall@K, are
// not drowned out) and logq_scale 1.2 (a slight popularity penalty in the
// other rows, which pays off once light users, who favour popular movies,
// weigh more). Together they lift valid Recall@10 from 0.1502 to 0.1566
// (mean of seeds 1–3).
func RandomSplit() Config {
	c := Default()
	c.Model.User = []Feature{{"gender", 4}, {"age", 4}, {"occupation", 4}, {"zip", 8}, {"history", 32}}
	c.Model.HistoryLength, c.Model.HistoryDecay = 0, 0 // the whole history, as validated on this split
	c.Train.Recency = 0
	c.Train.Epochs = 20
	c.Train.HistoryFolds = 10
	c.Train.ColdLogQ = 1
	c.Train.UserWeight = 0.5
	c.Train.LogQScale = 1.2
	c.Train.Distill = 1
	// Unnormalised towers: the score is a plain inner product, so a vector's
	// length carries an eighth degree of freedom (confidence, popularity)
	// that the cosine on the unit sphere (seven) lacks; temperature 1 leaves the logits
	// the inner products. On RecBole's valid split (seeds 1 / 2) 0.1657 /
	// 0.1628 → 0.1670 / 0.1676 (temperature 2: 0.1688 / 0.1642; 0.3:
	// 0.1608 / 0.1639), and on a mirror split (a ninth of train validating,
	// valid.dat held out) 0.1498 / 0.1605 → 0.1654 / 0.1623.
	c.Model.Normalize, c.Train.Temperature = false, 1
	// Without a validation file, a random tenth of train validates: the
	// held-out ratings of a random split are missing at random, not the
	// future (docs/model.md, "Random splits without a validation file").
	// As a candidate of the default, it takes the default's views.
	c.Train.ValidFraction, c.Train.ValidUserFraction, c.Train.ValidRandomFraction = 0, 0, 0.1
	c.Train.Candidates, c.Train.SearchBudget = []string{}, 0 // trains as itself
	return c
}

// RecentHistory is the default model with the recent-history feature: a
// 16-d history field of the user's newest model.history_length movies
// (causal in training), pooled with model.history_decay. On validation it
// gains much on each user's next ratings and loses on random held-out
// ratings (docs/model.md).
func RecentHistory() Config {
	c := Default()
	c.Model.User = append(c.Model.User, Feature{"history", 16})
	c.Train.Candidates, c.Train.SearchBudget = []string{}, 0
	return c
}

// Preset returns a named base configuration: "default" (softmax),
// "recent-history", "random-split" or "reference" (the pointwise recipe).
func Preset(name string) (Config, error) {
	switch name {
	case "", "default", "softmax":
		return Default(), nil
	case "recent-history":
		return RecentHistory(), nil
	case "random-split":
		return RandomSplit(), nil
	case "reference", "pointwise":
		return Reference(), nil
	}
	return Config{}, fmt.Errorf("config: unknown objective or preset %q (objectives: softmax, pointwise; presets: default, recent-history, random-split, reference)", name)
}

// Candidate is the configuration validation tries for the preset name (one
// of c.Train.Candidates): the preset's towers and training recipe, with c's
// output dimension (model.dim), data, service, baselines and run settings
// (seed, workers, the most epochs, validation, refit, prior grid).
func (c Config) Candidate(name string) (Config, error) {
	p, err := Preset(name)
	if err != nil {
		return c, err
	}
	p = c.carriedOnto(p)
	p.Train.Candidates, p.Train.SearchBudget = nil, 0
	return p, nil
}

// carriedOnto returns p with what a Candidate keeps of c.
func (c Config) carriedOnto(p Config) Config {
	p.Data, p.Serve, p.Log, p.Baselines = c.Data, c.Serve, c.Log, c.Baselines
	p.Model.Dim = c.Model.Dim
	t := &p.Train
	t.Seed, t.Workers, t.Epochs, t.ValidFraction, t.ValidUserFraction, t.ValidRandomFraction, t.Refit = c.Train.Seed, c.Train.Workers, c.Train.Epochs, c.Train.ValidFraction, c.Train.ValidUserFraction, c.Train.ValidRandomFraction, c.Train.Refit
	t.PriorHalfLives, t.PriorWeights, t.PriorFeatureShares = c.Train.PriorHalfLives, c.Train.PriorWeights, c.Train.PriorFeatureShares
	t.Candidates, t.SearchBudget = c.Train.Candidates, c.Train.SearchBudget
	return p
}

// RecipeChanges names the model and train settings (yaml keys) in which c
// differs from Default and which a Candidate would replace: a
// configuration that sets any of them asks for its own recipe, so train
// does not search candidates for it.
func (c Config) RecipeChanges() []string {
	// The default recipe with what a candidate keeps of c: c differs from
	// it in what a candidate would replace.
	def := c.carriedOnto(Default())
	return append(changedKeys("model", c.Model, def.Model), changedKeys("train", c.Train, def.Train)...)
}

// changedKeys names, as section.key, the yaml keys of the fields in which
// got and was (structs of one type) differ; fields without a key ("-")
// are left out.
func changedKeys(section string, got, was any) []string {
	g, w := reflect.ValueOf(got), reflect.ValueOf(was)
	var out []string
	for i := range g.NumField() {
		key := strings.Split(g.Type().Field(i).Tag.Get("yaml"), ",")[0]
		if key != "-" && !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			out = append(out, section+"."+key)
		}
	}
	return out
}

// UnreadSettings names the train settings (yaml keys) that c sets and its
// objective never reads: with the pointwise objective, the softmax-only
// ones set to another value than the reference preset's (a file written
// for softmax, such as configs/train.yaml, with its objective changed).
// They change nothing, so train warns rather than leave the user to
// believe they took effect.
func (c Config) UnreadSettings() []string {
	if c.Train.Objective != "pointwise" {
		return nil
	}
	// Only the softmax objective reads its temperature, the logQ
	// correction and its scales, the shared uniform negatives and the
	// per-user weights of its loss (distill is refused outright with
	// another objective: Validate).
	softmaxOnly := []string{"train.temperature", "train.logq", "train.cold_logq", "train.uniform_negatives", "train.logq_scale", "train.user_weight"}
	return slices.DeleteFunc(changedKeys("train", c.Train, Reference().Train), func(key string) bool { return !slices.Contains(softmaxOnly, key) })
}

// ModelJSON returns the settings that make a model (data, model, train,
// baselines; not serve or log, whose catalogue token is a secret) as JSON
// whose keys are the config file's: JSON is YAML, so an artifact's
// manifest.config can be given back to train as --config.
func (c Config) ModelJSON() (json.RawMessage, error) {
	y, err := yaml.Marshal(struct {
		Data      Data      `yaml:"data"`
		Model     Model     `yaml:"model"`
		Train     Train     `yaml:"train"`
		Baselines Baselines `yaml:"baselines"`
	}{c.Data, c.Model, c.Train, c.Baselines})
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(y, &m); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return raw, nil
}

// Parse decodes YAML bytes (the file name, for errors) on top of base.
// Unknown keys are errors, and so is a value of the wrong type, named by
// its key (yaml.v3 truncates a decimal for an integer, epochs 2.5 trained
// 2, and names only the line of other mismatches).
func Parse(raw []byte, name string, base Config) (Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err == nil {
		var unknown, wrong []error
		checkScalars(&root, reflect.TypeFor[Config](), "", map[checked]bool{}, &unknown, &wrong)
		if len(unknown) == 0 {
			unknown = wrong // unknown keys first: a typo in a key explains a value read as another's
		}
		if err := errors.Join(unknown...); err != nil {
			return base, fmt.Errorf("config: %s: %w", name, err)
		}
	} // a syntax error is reported by the decoder below
	c := base
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return base, fmt.Errorf("config: %s: %w%s", name, err, tabHint(raw))
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return base, fmt.Errorf("config: %s: one YAML document expected, found a second (---)", name)
	}
	return c, nil
}

// tabHint names the first line of raw indented with a tab, which YAML
// forbids: yaml.v3 says only "found character that cannot start any
// token", or that a key was not found.
func tabHint(raw []byte) string {
	for i, line := range strings.Split(string(raw), "\n") {
		if indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]; strings.Contains(indent, "\t") {
			return fmt.Sprintf(" (line %d is indented with a tab: YAML indents with spaces only)", i+1)
		}
	}
	return ""
}

// checkScalars walks the YAML node n that decodes into a value of type t
// (path names it) and appends, naming each line and key, the keys no
// setting has to unknown and the values of the wrong type or shape (see
// scalarProblem and shapeProblem) to wrong. An anchored node is checked
// once per type (seen), however often it is aliased: a small file must not
// make a number of problems quadratic in its size.
func checkScalars(n *yaml.Node, t reflect.Type, path string, seen map[checked]bool, unknown, wrong *[]error) {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Anchor != "" {
		if seen[checked{n, t}] {
			return
		}
		seen[checked{n, t}] = true
	}
	if n.Kind != yaml.DocumentNode && n.Kind != yaml.AliasNode {
		if msg := shapeProblem(n, t); msg != "" {
			name := path
			if name == "" {
				name = "the file"
			}
			*wrong = append(*wrong, fmt.Errorf("line %d: %s: %s", n.Line, name, msg))
			return
		}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			checkScalars(c, t, path, seen, unknown, wrong)
		}
	case yaml.AliasNode:
		checkScalars(n.Alias, t, path, seen, unknown, wrong)
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i].Value, n.Content[i+1]
			if n.Content[i].Tag == "!!merge" { // <<: *anchor or [*a, *b]: their keys are this mapping's
				merged := []*yaml.Node{val}
				if val.Kind == yaml.SequenceNode {
					merged = val.Content
				}
				for _, m := range merged {
					checkScalars(m, t, path, seen, unknown, wrong)
				}
				continue
			}
			at := strings.TrimPrefix(path+"."+key, ".")
			var vt reflect.Type
			switch t.Kind() {
			case reflect.Struct:
				for j := range t.NumField() {
					if tag, _, _ := strings.Cut(t.Field(j).Tag.Get("yaml"), ","); tag == key {
						vt = t.Field(j).Type
					}
				}
				if vt == nil {
					*unknown = append(*unknown, fmt.Errorf("line %d: unknown key %s", n.Content[i].Line, at))
				}
			case reflect.Map:
				vt = t.Elem()
			}
			if vt != nil {
				checkScalars(val, vt, at, seen, unknown, wrong)
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			checkScalars(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), seen, unknown, wrong)
		}
	case yaml.ScalarNode:
		if msg := scalarProblem(n, t); msg != "" {
			*wrong = append(*wrong, fmt.Errorf("line %d: %s: %s", n.Line, path, msg))
		}
	}
}

// checked is a node checked as a value of a type (checkScalars' seen).
type checked struct {
	n *yaml.Node
	t reflect.Type
}

// shapeProblem says why node n, a mapping, a list or a scalar, cannot be a
// value of type t ("" if it can; a null leaves the value as it is, but is
// refused for a list): yaml.v3 would name only the line and a Go type.
func shapeProblem(n *yaml.Node, t reflect.Type) string {
	var want string
	switch k := t.Kind(); {
	case t == reflect.TypeFor[time.Duration]():
		want = "a duration"
	case k == reflect.Struct || k == reflect.Map:
		want = "a mapping of settings"
	case k == reflect.Slice || k == reflect.Array:
		want = "a list"
	case k >= reflect.Int && k <= reflect.Uint64:
		want = "an integer"
	case k == reflect.Float32 || k == reflect.Float64:
		want = "a number"
	case k == reflect.Bool:
		want = "true or false"
	default:
		want = "a string"
	}
	switch {
	case n.Kind == yaml.MappingNode && want != "a mapping of settings":
		return "a mapping where " + want + " is expected"
	case n.Kind == yaml.SequenceNode && want != "a list":
		return "a list where " + want + " is expected"
	case n.Kind == yaml.ScalarNode && n.Tag != "!!null" && (want == "a mapping of settings" || want == "a list"):
		return asWritten(n) + " is not " + want
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null" && want == "a list":
		// yaml.v3 would empty the list, not leave it as it is.
		return "is blank: write [] for an empty list, or leave the key out for the default"
	}
	return ""
}

// asWritten is scalar n's value as the file wrote it, for a message: a
// quoted value is a string.
func asWritten(n *yaml.Node) string {
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		return strconv.Quote(n.Value) + " (a string)"
	}
	return n.Value
}

// scalarProblem says why scalar n cannot be a value of type t ("" if it
// can; a null leaves the value as it is).
func scalarProblem(n *yaml.Node, t reflect.Type) string {
	if n.Tag == "!!null" {
		return ""
	}
	v := asWritten(n)
	switch k := t.Kind(); {
	case t == reflect.TypeFor[time.Duration]():
		if _, problem := parseDuration(n.Value); problem != "" {
			return v + problem
		}
		if n.Tag == "!!int" { // 0 parses as a duration, but yaml.v3 reads a number
			return v + " is not a duration (write it with its unit, such as 0s or 1s)"
		}
	case k >= reflect.Int && k <= reflect.Uint64:
		if n.Tag != "!!int" {
			if n.Tag == "!!float" && strings.Trim(n.Value, "+-0123456789") == "" {
				return v + " is out of range" // too big for yaml.v3's int
			}
			return v + " is not an integer"
		}
		var err error
		if k >= reflect.Uint {
			_, err = strconv.ParseUint(n.Value, 0, t.Bits())
		} else {
			_, err = strconv.ParseInt(n.Value, 0, t.Bits())
		}
		if err != nil && strings.HasPrefix(n.Value, "-") && k >= reflect.Uint {
			return v + " is negative"
		} else if err != nil {
			return v + " is out of range"
		}
	case k == reflect.Float32 || k == reflect.Float64:
		if n.Tag != "!!int" && n.Tag != "!!float" {
			return v + " is not a number"
		}
	case k == reflect.Bool:
		// yaml.v3 also reads YAML 1.1's words, as it spells them, into a
		// bool. Unquoted only: a quoted "no" is a string, as a quoted
		// "false" is (one was taken and the other refused), and "yEs" got
		// yaml.v3's own message, naming no key.
		if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) == 0 && yaml11Bool(n.Value) {
			return ""
		}
		if n.Tag != "!!bool" {
			return v + " is not true or false"
		}
	}
	return ""
}

// yaml11Bool reports whether s is one of the YAML 1.1 booleans yaml.v3
// reads into a bool, spelled as it accepts them.
func yaml11Bool(s string) bool {
	switch s {
	case "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO", "off", "Off", "OFF":
		return true
	}
	return false
}

// parseDuration parses a Go duration, or says what is wrong with it (" is
// not a duration ...", to follow the value as written).
func parseDuration(s string) (time.Duration, string) {
	d, err := time.ParseDuration(s)
	if err == nil {
		return d, ""
	}
	// The form of a Go duration (numbers, each with a unit) that does not
	// parse is too large for time.Duration.
	durationForm := regexp.MustCompile(`^[-+]?((\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$`)
	if durationForm.MatchString(s) {
		return 0, " is out of range (at most 2562047h)" // time.Duration's ~292 years
	}
	return 0, " is not a duration (write it with its unit, such as 1s or 500ms)"
}

// envVar is an environment variable's setting: its key, and how it sets
// the value.
type envVar struct {
	key string
	set func(string) error
}

// envSetters are the settings the environment overrides, by variable
// name.
func (c *Config) envSetters() map[string]envVar {
	str := func(dst *string) func(string) error {
		return func(v string) error { *dst = v; return nil }
	}
	boolean := func(dst *bool) func(string) error {
		return func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not a boolean", v)
			}
			*dst = b
			return nil
		}
	}
	list := func(dst *[]string) func(string) error {
		return func(v string) error { *dst = SplitList(v); return nil }
	}
	return map[string]envVar{
		"TOWERRECALL_ADDR":            {"serve.addr", str(&c.Serve.Addr)},
		"TOWERRECALL_MODEL":           {"serve.model", str(&c.Serve.Model)},
		"TOWERRECALL_INDEX":           {"serve.index", str(&c.Serve.Index)},
		"TOWERRECALL_DATA_DIR":        {"data.dir", str(&c.Data.Dir)},
		"TOWERRECALL_LOG_LEVEL":       {"log.level", str(&c.Log.Level)},
		"TOWERRECALL_LOG_FORMAT":      {"log.format", str(&c.Log.Format)},
		"TOWERRECALL_CATALOG_TOKEN":   {"serve.catalog_token", str(&c.Serve.CatalogToken)},
		"TOWERRECALL_CATALOG_JOURNAL": {"serve.catalog_journal", str(&c.Serve.CatalogJournal)},
		"TOWERRECALL_DEBUG_ADDR":      {"serve.debug_addr", str(&c.Serve.DebugAddr)},
		"TOWERRECALL_METRICS_ADDR":    {"serve.metrics_addr", str(&c.Serve.MetricsAddr)},
		"TOWERRECALL_DEMO":            {"serve.demo", boolean(&c.Serve.Demo)},
		"TOWERRECALL_EXPLORER":        {"serve.explorer", boolean(&c.Serve.Explorer)},
		"TOWERRECALL_TRUSTED_PROXIES": {"serve.trusted_proxies", list(&c.Serve.TrustedProxies)},
		"TOWERRECALL_CORS_ORIGINS":    {"serve.cors_origins", list(&c.Serve.CORSOrigins)},
		"TOWERRECALL_RELOAD_POLL": {"serve.reload_poll", func(v string) error {
			d, problem := parseDuration(v)
			if problem != "" {
				return errors.New(strconv.Quote(v) + problem)
			}
			c.Serve.ReloadPoll = d
			return nil
		}},
	}
}

// ApplyEnv overrides settings from TOWERRECALL_* environment variables;
// an empty variable sets nothing. Given sections ("data", "serve",
// "log"), only the variables of those sections' keys are read (none: all):
// a command reads what it uses, so train, which neither listens nor
// serves, is not stopped by a bad TOWERRECALL_ADDR or
// TOWERRECALL_CATALOG_TOKEN meant for the service in an environment the
// two share (a ConfigMap, say). The file is one document and is validated
// whole by every command that reads it.
func (c *Config) ApplyEnv(getenv func(string) string, sections ...string) error {
	var errs []error
	set := c.envSetters()
	for _, name := range envIn(set, sections) {
		if v := getenv(name); v != "" {
			if err := set[name].set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// EnvKeys returns the keys ApplyEnv(getenv, sections...) sets, each with
// the variable that sets it, so that an error about a key can name it.
func EnvKeys(getenv func(string) string, sections ...string) map[string]string {
	var c Config
	set := c.envSetters()
	keys := map[string]string{}
	for _, name := range envIn(set, sections) {
		if getenv(name) != "" {
			keys[set[name].key] = name
		}
	}
	return keys
}

// envIn returns the names of the variables of set whose keys are in
// sections (none: all), sorted.
func envIn(set map[string]envVar, sections []string) []string {
	var names []string
	for name, v := range set {
		if section, _, _ := strings.Cut(v.key, "."); len(sections) == 0 || slices.Contains(sections, section) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// FileKeys returns the keys (section.key) a config file that Parse
// accepted sets, so that an error about a key can name the file.
func FileKeys(raw []byte) []string {
	var sections map[string]map[string]yaml.Node
	if err := yaml.Unmarshal(raw, &sections); err != nil {
		return nil
	}
	var keys []string
	for section, m := range sections {
		for key := range m {
			keys = append(keys, section+"."+key)
		}
	}
	slices.Sort(keys)
	return keys
}

// minEASELambda is the least L2 weight EASE takes (the baseline's and the
// distillation teacher's): XᵀX + λI must stay positive definite in
// float64, which a λ of 1e-15 on rank-deficient ratings did not (after a
// whole training run, whose artifact was then not written).
const minEASELambda = 0.01

// DownloadURLEnv names the variable `towerrecall data download` reads the
// archive's URL from (a mirror of GroupLens).
const DownloadURLEnv = "TOWERRECALL_DOWNLOAD_URL"

// UnknownEnv returns a warning for each TOWERRECALL_* variable in environ
// (KEY=value entries, as os.Environ returns them) that nothing reads, so a
// misspelt name is not silently ignored.
func UnknownEnv(environ []string) []string {
	var c Config
	known := append(slices.Sorted(maps.Keys(c.envSetters())), DownloadURLEnv)
	var warnings []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "TOWERRECALL_") || slices.Contains(known, name) {
			continue
		}
		w := "environment variable " + name + " is not a setting and is ignored"
		// A near spelling, or a setting's name cut short (TOWERRECALL_DATA
		// for TOWERRECALL_DATA_DIR: the first is the tests' data path).
		if near := slices.IndexFunc(known, func(k string) bool { return editDistance(name, k) <= 2 || strings.HasPrefix(k, name+"_") }); near >= 0 {
			w += " (did you mean " + known[near] + "?)"
		}
		warnings = append(warnings, w+"; docs/configuration.md lists the variables")
	}
	return warnings
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Validate reports every problem of c at once.
func (c *Config) Validate() error {
	var errs []error
	nan := map[string]float64{}
	nonFinite(reflect.ValueOf(*c), "", nan)
	for field, f := range nan {
		errs = append(errs, fmt.Errorf("%s: %g is not a finite number", field, f))
	}
	bad := func(field, format string, args ...any) {
		if _, ok := nan[field]; !ok { // a non-finite number fails its range check too: named once
			errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
		}
	}
	c.Model.validate(bad)
	c.Train.validate(c.Model, bad)
	c.Serve.validate(bad)
	c.Baselines.validate(bad)
	c.Log.validate(bad)
	sortErrs(errs)
	return errors.Join(errs...)
}

// validate reports each problem of the model section to bad.
func (m Model) validate(bad func(field, format string, args ...any)) {
	if m.Dim < 1 || m.Dim > 1024 {
		bad("model.dim", "%d out of range 1–1024", m.Dim)
	} else if m.Dim == 1 && m.Normalize {
		bad("model.dim", "1 with model.normalize: a unit vector of one dimension is +1 or -1, so every score ties; use 2 or more, or normalize: false")
	}
	for i, h := range m.Hidden {
		if h < 1 || h > 4096 {
			bad(fmt.Sprintf("model.hidden[%d]", i), "%d out of range 1–4096", h)
		}
	}
	checkFeatures := func(name string, fs []Feature, allowed []string) {
		if len(fs) == 0 {
			bad(name, "no features")
		}
		seen := map[string]bool{}
		for i, f := range fs {
			if !slices.Contains(allowed, f.Name) {
				bad(fmt.Sprintf("%s[%d].name", name, i), "unknown feature %q (allowed: %s)", f.Name, strings.Join(allowed, ", "))
			}
			if seen[f.Name] {
				bad(fmt.Sprintf("%s[%d].name", name, i), "feature %q listed twice", f.Name)
			}
			seen[f.Name] = true
			if f.Dim < 1 || f.Dim > 1024 {
				bad(fmt.Sprintf("%s[%d].dim", name, i), "%d out of range 1–1024", f.Dim)
			}
		}
	}
	checkFeatures("model.user", m.User, []string{"user_id", "gender", "age", "occupation", "zip", "history"})
	if m.HistoryLength < 0 || m.HistoryLength > 1000 {
		bad("model.history_length", "%d out of range 0–1000", m.HistoryLength)
	}
	if !(m.HistoryDecay >= 0 && m.HistoryDecay < 1) {
		bad("model.history_decay", "%g out of range [0, 1)", m.HistoryDecay)
	}
	if m.HistoryDecay > 0 && m.HistoryLength == 0 {
		bad("model.history_decay", "needs model.history_length > 0 (a bag ordered newest first)")
	}
	checkFeatures("model.movie", m.Movie, []string{"movie_id", "genres", "year", "popularity"})
}

// validate reports each problem of the train section to bad; m is the
// model the objective trains (a rating head).
func (t Train) validate(m Model, bad func(field, format string, args ...any)) {
	switch t.Objective {
	case "softmax":
		if !(t.Temperature > 0 && t.Temperature <= 10) {
			bad("train.temperature", "%g out of range (0, 10]", t.Temperature)
		}
		if m.RatingHead {
			bad("model.rating_head", "only the pointwise objective trains a rating head")
		}
	case "pointwise":
		if !m.RatingHead {
			bad("model.rating_head", "the pointwise objective needs the rating head")
		}
	default:
		bad("train.objective", "%q is not softmax or pointwise", t.Objective)
	}
	if t.Epochs < 1 || t.Epochs > 1000 {
		bad("train.epochs", "%d out of range 1–1000", t.Epochs)
	}
	if t.BatchSize < 1 || t.BatchSize > 65536 {
		bad("train.batch_size", "%d out of range 1–65536", t.BatchSize)
	} else if t.Objective == "softmax" && t.BatchSize < 2 {
		bad("train.batch_size", "softmax needs at least 2 (a batch's other movies are its negatives), got %d", t.BatchSize)
	}
	if !(t.LearningRate > 0 && t.LearningRate < 10) {
		bad("train.learning_rate", "%g out of range (0, 10)", t.LearningRate)
	}
	if t.Optimizer != "adam" && t.Optimizer != "rmsprop" {
		bad("train.optimizer", "%q is not adam or rmsprop", t.Optimizer)
	}
	if !(t.L2 >= 0 && t.L2 <= 10) {
		bad("train.l2", "%g out of range 0–10", t.L2)
	}
	if t.Workers < 1 || t.Workers > 64 {
		bad("train.workers", "%d out of range 1–64", t.Workers)
	}
	if !(t.ColdStartRate >= 0 && t.ColdStartRate <= 0.9) {
		bad("train.cold_start_rate", "%g out of range 0–0.9", t.ColdStartRate)
	}
	if !(t.Recency >= 0 && t.Recency <= 20) {
		bad("train.recency", "%g out of range 0–20", t.Recency)
	}
	if t.Patience < 0 {
		bad("train.patience", "%d is negative", t.Patience)
	}
	if t.HistoryFolds < 2 || t.HistoryFolds > 100 {
		bad("train.history_folds", "%d out of range 2–100", t.HistoryFolds)
	}
	if !(t.ColdLogQ >= 0 && t.ColdLogQ <= 5) {
		bad("train.cold_logq", "%g out of range 0–5", t.ColdLogQ)
	}
	if t.UniformNegatives < 0 || t.UniformNegatives > 65536 {
		bad("train.uniform_negatives", "%d out of range 0–65536", t.UniformNegatives)
	}
	if !(t.LogQScale >= 0 && t.LogQScale <= 5) {
		bad("train.logq_scale", "%g out of range 0–5", t.LogQScale)
	}
	if !(t.UserWeight >= 0 && t.UserWeight <= 1) {
		bad("train.user_weight", "%g out of range 0–1", t.UserWeight)
	}
	if !(t.Distill >= 0 && t.Distill <= 10) {
		bad("train.distill", "%g out of range 0–10", t.Distill)
	}
	if t.Distill > 0 {
		if t.Objective != "softmax" {
			bad("train.distill", "needs objective softmax, not %q", t.Objective)
		}
		if !(t.DistillTemperature > 0 && t.DistillTemperature <= 100) {
			bad("train.distill_temperature", "%g out of range (0, 100]", t.DistillTemperature)
		}
		if !(t.DistillLambda >= minEASELambda && t.DistillLambda <= 1e6) {
			bad("train.distill_lambda", "%g out of range %g–1e6", t.DistillLambda, minEASELambda)
		}
	}
	switch t.LRSchedule {
	case "", "constant", "linear", "cosine":
	default:
		bad("train.lr_schedule", "%q is not constant, linear or cosine", t.LRSchedule)
	}
	if !(t.HistoryDropout >= 0 && t.HistoryDropout <= 0.9) {
		bad("train.history_dropout", "%g out of range 0–0.9", t.HistoryDropout)
	}
	for i, h := range t.PriorHalfLives {
		if !(h >= 0 && h <= 1e5) {
			bad(fmt.Sprintf("train.prior_half_lives[%d]", i), "%g out of range 0–100000 days", h)
		}
	}
	for i, w := range t.PriorWeights {
		if !(w >= 0 && w <= 100) {
			bad(fmt.Sprintf("train.prior_weights[%d]", i), "%g out of range 0–100", w)
		}
	}
	for i, x := range t.PriorFeatureShares {
		if !(x >= 0 && float32(x) < 1) { // as prior.json stores it
			bad(fmt.Sprintf("train.prior_feature_shares[%d]", i), "%g out of range [0, 1) (at 1 a known user's own history would not count)", x)
		}
	}
	for i, name := range t.Candidates {
		if name == "default" {
			// A search runs only for the default recipe (RecipeChanges), which
			// train fits first as the configured one: it would train twice.
			bad(fmt.Sprintf("train.candidates[%d]", i), "%q is the configured recipe, which train always fits: list only the other presets (recent-history, random-split, reference)", name)
		} else if !slices.Contains([]string{"recent-history", "random-split", "reference"}, name) {
			bad(fmt.Sprintf("train.candidates[%d]", i), "%q is not a preset (recent-history, random-split, reference)", name)
		} else if j := slices.Index(t.Candidates[:i], name); j >= 0 {
			bad(fmt.Sprintf("train.candidates[%d]", i), "%q repeats train.candidates[%d]", name, j)
		}
	}
	if t.SearchBudget < 0 {
		bad("train.search_budget", "%v is negative", t.SearchBudget)
	}
	if !(t.ValidFraction >= 0 && t.ValidFraction <= 0.5) {
		bad("train.valid_fraction", "%g out of range 0–0.5", t.ValidFraction)
	}
	if !(t.ValidUserFraction >= 0 && t.ValidUserFraction <= 0.5) {
		bad("train.valid_user_fraction", "%g out of range 0–0.5", t.ValidUserFraction)
	}
	if !(t.ValidRandomFraction >= 0 && t.ValidRandomFraction <= 0.5) {
		bad("train.valid_random_fraction", "%g out of range 0–0.5", t.ValidRandomFraction)
	}
}

// validate reports each problem of the serve section to bad.
func (s Serve) validate(bad func(field, format string, args ...any)) {
	if strings.TrimSpace(s.Model) == "" {
		bad("serve.model", "must name the artifact directory (it was empty)")
	}
	if err := checkAddr(s.Addr); err != nil {
		bad("serve.addr", "%q: %v", s.Addr, err)
	}
	// Each listener of its own needs a port of its own: the same port on
	// another host spelling (:8080, localhost:8080, [::]:8080) is the same
	// listener more often than not.
	taken := map[string]string{port(s.Addr): "serve.addr"}
	for _, a := range []struct{ key, addr, what string }{
		{"serve.debug_addr", s.DebugAddr, "the profiler"}, {"serve.metrics_addr", s.MetricsAddr, "/metrics"},
	} {
		if a.addr == "" {
			continue
		}
		if err := checkAddr(a.addr); err != nil {
			bad(a.key, "%q: %v", a.addr, err)
		} else if p := port(a.addr); p != "0" && taken[p] != "" {
			bad(a.key, "%q has %s's port (%s): %s needs a port of its own", a.addr, taken[p], p, a.what)
		} else {
			taken[p] = a.key
		}
	}
	switch s.Index {
	case "auto", "exact", "hnsw":
	default:
		bad("serve.index", "%q is not auto, exact or hnsw", s.Index)
	}
	if !(s.MinRecall >= 0 && s.MinRecall <= 1) {
		bad("serve.min_recall", "%g out of range 0–1", s.MinRecall)
	}
	if s.SelfCheckQueries < 1 || s.SelfCheckQueries > 100000 {
		bad("serve.self_check_queries", "%d out of range 1–100000", s.SelfCheckQueries)
	}
	if s.HNSWM < 2 || s.HNSWM > 256 {
		bad("serve.hnsw_m", "%d out of range 2–256 (the base layer's degree is twice it, at most 512)", s.HNSWM)
	}
	if s.HNSWEfSearch < 1 || s.HNSWEfSearch > 100000 {
		bad("serve.hnsw_ef_search", "%d out of range 1–100000", s.HNSWEfSearch)
	}
	if s.HNSWOverfetch < 1 || s.HNSWOverfetch > 1000 {
		bad("serve.hnsw_overfetch", "%d out of range 1–1000", s.HNSWOverfetch)
	}
	if s.BodyLimit < 1024 {
		bad("serve.body_limit", "%d is below 1024 bytes", s.BodyLimit)
	}
	if s.MaxHeaderBytes < 1024 || s.MaxHeaderBytes > 1<<20 {
		bad("serve.max_header_bytes", "%d out of range 1024–1048576", s.MaxHeaderBytes)
	}
	for name, d := range map[string]time.Duration{
		"serve.request_timeout": s.RequestTimeout, "serve.read_header_timeout": s.ReadHeaderTimeout,
		"serve.read_timeout": s.ReadTimeout, "serve.write_timeout": s.WriteTimeout,
		"serve.idle_timeout": s.IdleTimeout, "serve.shutdown_timeout": s.ShutdownTimeout,
	} {
		if d <= 0 {
			bad(name, "%v must be positive", d)
		}
	}
	if s.WriteTimeout > 0 && s.WriteTimeout <= s.ReadTimeout+s.RequestTimeout {
		// net/http's write deadline starts once the headers are read: it
		// covers the body's upload (up to read_timeout) and the answer.
		bad("serve.write_timeout", "%v must exceed serve.read_timeout + serve.request_timeout (%v), or a slow upload's answer (its 408, or a 200) is cut off", s.WriteTimeout, s.ReadTimeout+s.RequestTimeout)
	}
	if s.DrainDelay < 0 {
		bad("serve.drain_delay", "%v is negative", s.DrainDelay)
	}
	if s.ReloadPoll != 0 && s.ReloadPoll < 100*time.Millisecond {
		bad("serve.reload_poll", "%v: 0 (off) or at least 100ms", s.ReloadPoll)
	}
	for i, o := range s.CORSOrigins {
		if validOrigin(o) {
			continue
		}
		why := "is not an origin as browsers send it, such as https://app.example.com (scheme, host, and a port only when it is not the scheme's default; no path, no wildcard)"
		if !ascii(o) {
			why = "is not ASCII: browsers send an international host name in its ASCII (punycode) form, such as https://xn--bcher-kva.example for https://bücher.example"
		}
		bad(fmt.Sprintf("serve.cors_origins[%d]", i), "%q "+why, o)
	}
	if s.BatchMax < 1 || s.BatchMax > 1000 {
		bad("serve.batch_max", "%d is not between 1 and 1000", s.BatchMax)
	}
	if m := s.MaxItemsInFlight; m != 0 && (m < 0 || m < int64(s.BatchMax)*MaxK) {
		bad("serve.max_items_in_flight", "%d: 0 (no limit) or at least serve.batch_max × %d (%d), so that a maximal batch fits", m, MaxK, int64(max(s.BatchMax, 0))*MaxK)
	}
	if m := s.MaxBodyBytesInFlight; m != 0 && (m < 0 || m < s.BodyLimit) {
		bad("serve.max_body_bytes_in_flight", "%d: 0 (no limit) or at least serve.body_limit (%d), so that a largest body fits", m, s.BodyLimit)
	}
	if s.MaxRecentMovies < 0 || s.MaxRecentMovies > 1000 {
		bad("serve.max_recent_movies", "%d is not between 0 and 1000", s.MaxRecentMovies)
	}
	if s.AccessLogEvery < 1 || s.AccessLogEvery > 1_000_000 {
		bad("serve.access_log_every", "%d is not between 1 (every request) and 1000000", s.AccessLogEvery)
	}
	if t := s.CatalogToken; t != "" && strings.TrimSpace(t) != t {
		// A secret made from a file (kubectl create secret --from-file)
		// keeps the file's last newline. The token itself is never echoed.
		bad("serve.catalog_token", "has leading or trailing white space (a newline from the file the secret was made from?)")
	} else if t != "" && !validToken(t) {
		// The token itself is never echoed.
		bad("serve.catalog_token", "must be %d to 256 characters of a bearer token (letters, digits, -._~+/ and trailing =), got %d bytes", MinCatalogToken, len(t))
	}
	if j := s.CatalogJournal; j != "" && strings.TrimSpace(j) == "" {
		bad("serve.catalog_journal", "is blank: name a file, or leave it out for the default beside serve.model")
	} else if j != "" && strings.TrimSpace(s.Model) != "" && within(j, s.Model) {
		// Publishing an artifact replaces serve.model whole, and removes
		// the old directory with the journal in it.
		bad("serve.catalog_journal", "%q is inside serve.model %q, which publishing an artifact replaces whole: put it beside the directory (the default is %s)", j, s.Model, Serve{Model: s.Model}.JournalPath())
	}
	for i, p := range s.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			bad(fmt.Sprintf("serve.trusted_proxies[%d]", i), "%q is not a CIDR prefix such as 10.0.0.0/8", p)
		}
	}
}

// validate reports each problem of the baselines section to bad.
func (b Baselines) validate(bad func(field, format string, args ...any)) {
	if b.NewUserHistory < 0 || b.NewUserHistory > 100 {
		bad("baselines.new_user_history", "%d out of range 0–100", b.NewUserHistory)
	}
	if !(b.RecentWindow >= 0 && b.RecentWindow <= 1) {
		bad("baselines.recent_window", "%g out of range 0–1", b.RecentWindow)
	}
	if !(b.EASELambda == 0 || b.EASELambda >= minEASELambda && b.EASELambda <= 1e9) {
		bad("baselines.ease_lambda", "%g out of range: 0 (off) or %g–1e9", b.EASELambda, minEASELambda)
	}
}

// validate reports each problem of the log section to bad.
func (l Log) validate(bad func(field, format string, args ...any)) {
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not debug, info, warn or error", l.Level)
	}
	switch l.Format {
	case "json", "console":
	default:
		bad("log.format", "%q is not json or console", l.Format)
	}
}

// nonFinite adds to found every NaN or infinite number in v, a struct of
// the config, by its YAML path: a range check written as x < lo || x > hi
// lets NaN through, and such a value cannot even be written to a manifest.
func nonFinite(v reflect.Value, path string, found map[string]float64) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				nonFinite(v.Field(i), strings.TrimPrefix(path+"."+name, "."), found)
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			nonFinite(v.Index(i), fmt.Sprintf("%s[%d]", path, i), found)
		}
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			found[path] = f
		}
	}
}

func sortErrs(errs []error) {
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
}

// SplitList splits a comma-separated list (an environment variable or a
// flag), trimming spaces and dropping empty entries.
func SplitList(v string) []string {
	var out []string
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// validOrigin accepts a web origin as a browser sends it in the Origin
// header (RFC 6454): http or https, a host, a port only when it is not the
// scheme's default, nothing else. The CORS middleware compares origins
// lower-cased but otherwise as written, so https://app.example.com:443
// would never match, nor one with a non-ASCII host (browsers send it in
// punycode).
func validOrigin(o string) bool {
	if !ascii(o) {
		return false
	}
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil &&
		!strings.Contains(o, "*") && o == u.Scheme+"://"+u.Host &&
		!strings.HasSuffix(u.Host, ":") &&
		!(u.Scheme == "https" && u.Port() == "443") && !(u.Scheme == "http" && u.Port() == "80")
}

// ascii reports whether s is all ASCII.
func ascii(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r > unicode.MaxASCII })
}

// port is a listen address's port ("" when it has none).
func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// checkAddr checks a listen address's form (host:port, the host may be
// empty, the port a number up to 65535 or a service name) before anything
// is loaded or trained.
func checkAddr(addr string) error {
	if strings.ContainsFunc(addr, unicode.IsSpace) { // ":8080 " would fail only at listen, as "unknown port"
		return errors.New("contains a space")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port such as :8080 or 127.0.0.1:8080 (%v)", err)
	}
	if port == "" {
		return errors.New("no port")
	}
	if strings.Trim(port, "0123456789") == "" { // a number, not a service name
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return fmt.Errorf("port %s out of range 0–65535", port)
		}
	}
	return nil
}

// within reports whether path is dir or inside it, both made absolute
// against the working directory and with the symbolic links in what
// exists of them resolved (a journal reached through a link to the model
// directory is inside it).
func within(path, dir string) bool {
	p, perr := resolve(path)
	d, derr := resolve(dir)
	if perr != nil || derr != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// resolve makes path absolute and resolves the symbolic links of path, or
// of its directory when path itself does not exist yet.
func resolve(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r, nil
	}
	if r, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(r, filepath.Base(abs)), nil
	}
	return abs, nil
}

// validToken accepts an RFC 6750 b64token of MinCatalogToken to 256
// characters.
func validToken(t string) bool {
	if len(t) < MinCatalogToken || len(t) > 256 {
		return false
	}
	body := strings.TrimRight(t, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}
