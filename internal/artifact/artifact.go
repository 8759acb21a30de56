// Package artifact saves and loads the model bundle: one directory holding
// everything serving needs (weights, vocabularies, catalogue, movie vectors,
// training histories for exclude_seen, the serialized HNSW graph) and a
// manifest with the sha256 of every file. It sits after train/eval in the
// data flow and before recall. A bundle is written under a temporary name
// and renamed into place, so a failed write never replaces a good artifact;
// loading verifies every checksum before anything is decoded.
package artifact

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/tower"
)

// FormatVersion is the newest artifact layout version this code reads and
// writes. Version 2 is version 1 with known users' feature share in
// prior.json: Save writes 2 only for an artifact with a share, so that a
// build that reads 1 alone refuses it instead of serving queries without
// the share, and writes 1 otherwise. Both are read.
const FormatVersion = 2

// File names inside an artifact directory.
const (
	ManifestFile = "manifest.json"
	ModelFile    = "model.bin"
	VocabFile    = "vocab.json"
	MoviesFile   = "movies.json"
	VectorsFile  = "movie_vectors.bin"
	UsersFile    = "users.bin"
	ProfilesFile = "profiles.json"
	GraphFile    = "hnsw.bin"
	ReportFile   = "report.svg"
	PriorFile    = "prior.json"
	RecentFile   = "recent.json"
)

// Limits that keep a corrupt manifest from driving huge allocations.
const (
	maxFileSize = 1 << 30
	maxEntities = 10_000_000
)

// Manifest describes an artifact. It is stored as manifest.json.
type Manifest struct {
	FormatVersion int                `json:"format_version"`
	Version       string             `json:"version"`
	CreatedAt     time.Time          `json:"created_at"`
	Objective     string             `json:"objective"`
	Dim           int                `json:"dim"`
	Normalized    bool               `json:"normalized"`
	Config        json.RawMessage    `json:"config,omitempty"`
	Data          DataInfo           `json:"data"`
	Sizes         Sizes              `json:"sizes"`
	Fields        Fields             `json:"fields"`
	Metrics       map[string]float64 `json:"metrics,omitempty"`
	Training      Training           `json:"training"`
	Index         IndexInfo          `json:"index"`
	Files         map[string]string  `json:"files"` // name → sha256 hex of every other file
}

// DataInfo records what the model was trained on.
type DataInfo struct {
	Dir       string            `json:"dir,omitempty"`
	Layout    string            `json:"layout,omitempty"`
	Checksums map[string]string `json:"checksums,omitempty"` // input file → sha256
	Train     int               `json:"train_ratings"`
	Valid     int               `json:"valid_ratings,omitempty"`
}

// Sizes records the shapes of the bundle.
type Sizes struct {
	Users  int            `json:"users"`
	Movies int            `json:"movies"`
	Vocabs map[string]int `json:"vocabularies"`
}

// Fields lists the features of each tower, in order.
type Fields struct {
	User  []feature.Field `json:"user"`
	Movie []feature.Field `json:"movie"`
}

// Training records how training went. Epochs, BestEpoch, Loss,
// ValidRecall10 and ExamplesPerSec describe the run that chose the epoch
// count on validation (of the chosen recipe); after a refit the shipped
// towers are the refit's (Selection.Refit*). Seconds is all training.
type Training struct {
	Epochs         int        `json:"epochs"`
	BestEpoch      int        `json:"best_epoch"`
	Seconds        float64    `json:"seconds"`
	ExamplesPerSec float64    `json:"examples_per_s"` // median over epochs
	Loss           []float64  `json:"loss,omitempty"`
	ValidRecall10  []float64  `json:"valid_recall@10,omitempty"`
	Workers        int        `json:"workers"`
	Seed           uint64     `json:"seed"`
	Selection      *Selection `json:"selection,omitempty"`
}

// Selection records what chose the trained settings: the validation
// ratings (a file, carved from train by time, or none) and what they chose.
type Selection struct {
	Valid         string  `json:"valid"` // file | carved | none
	ValidRatings  int     `json:"valid_ratings,omitempty"`
	ValidFraction float64 `json:"valid_fraction,omitempty"` // carved: the newest share of train held out
	ValidFrom     int64   `json:"valid_from,omitempty"`     // carved: unix time of the oldest held-out rating
	// ValidUserFraction and ValidUserRatings describe the second carved
	// view (each user's newest ratings); ViewPopularity is each view's
	// popularity Recall@10, against which a view's recall is measured
	// when there are two.
	ValidUserFraction float64 `json:"valid_user_fraction,omitempty"`
	ValidUserRatings  int     `json:"valid_user_ratings,omitempty"`
	// ValidRandomFraction and ValidRandomRatings describe the third carved
	// view (config train.valid_random_fraction): ratings drawn at random.
	ValidRandomFraction float64   `json:"valid_random_fraction,omitempty"`
	ValidRandomRatings  int       `json:"valid_random_ratings,omitempty"`
	ViewPopularity      []float64 `json:"view_popularity_recall@10,omitempty"`
	Epochs              int       `json:"epochs"`          // the chosen epoch count (best on validation)
	Refit               bool      `json:"refit,omitempty"` // retrained on train and the validation ratings for Epochs epochs
	// RefitRatings, RefitLoss (per epoch) and RefitExamplesPerSec describe
	// that retraining, whose towers ship.
	RefitRatings        int       `json:"refit_ratings,omitempty"`
	RefitLoss           []float64 `json:"refit_loss,omitempty"`
	RefitExamplesPerSec float64   `json:"refit_examples_per_s,omitempty"`
	// Prior is the popularity prior's setting chosen on validation (weight
	// 0: none), PriorSearch every setting tried.
	Prior       *PriorChoice  `json:"prior,omitempty"`
	PriorSearch []PriorChoice `json:"prior_search,omitempty"`
	// Recipe is the recipe validation chose: "configured" (the
	// configuration as given) or a preset of train.candidates;
	// Candidates is every recipe tried, the configured one first. Both
	// are empty when nothing was searched.
	Recipe     string            `json:"recipe,omitempty"`
	Candidates []CandidateChoice `json:"candidates,omitempty"`
}

// TimeViewsOnly reports whether the settings were chosen on views carved
// from the training ratings by time alone (no validation file, no random
// view): chosen for the future, not for ratings missing at random.
func (s *Selection) TimeViewsOnly() bool {
	return s != nil && s.Valid == "carved" && s.ValidRandomRatings == 0
}

// CandidateChoice is one recipe the search tried: its validation
// objective (with its own popularity prior) and chosen epoch count, or
// Skipped when the search budget was spent before it started.
type CandidateChoice struct {
	Recipe  string  `json:"recipe"`
	Valid   float64 `json:"valid"`
	Epochs  int     `json:"epochs"`
	Seconds float64 `json:"seconds"`
	Skipped bool    `json:"skipped,omitempty"`
	// ValidViews is each validation view's Recall@10 with the recipe's
	// chosen prior (with more than one view), as in PriorChoice.
	ValidViews []float64 `json:"valid_views_recall@10,omitempty"`
}

// PriorChoice is one setting of the popularity prior and its Recall@10 on
// the validation ratings (with two validation views, Valid is the mean
// over the views of Recall@10 / the view's popularity Recall@10, and
// ValidKnown and ValidCold are pooled over the views' users).
type PriorChoice struct {
	HalfLifeDays float64 `json:"half_life_days"`
	Weight       float64 `json:"weight"`      // known users
	ColdWeight   float64 `json:"cold_weight"` // cold users (no id, no history)
	// RecentWeight is for users known only by their recent movies, chosen
	// on validation's new users (their first ratings sent as history);
	// ValidRecent is their Recall@10 with it.
	RecentWeight float64 `json:"recent_weight,omitzero"`
	// FeatureShare is the share of a known user's query taken from their
	// features alone (see tower.Prior.FeatureShare).
	FeatureShare float64   `json:"feature_share,omitzero"`
	ValidRecent  float64   `json:"valid_recall@10_recent,omitzero"`
	RecentUsers  int       `json:"recent_users,omitzero"`
	Valid        float64   `json:"valid_recall@10"`
	ValidKnown   float64   `json:"valid_recall@10_known"`
	ValidCold    float64   `json:"valid_recall@10_cold"`
	ValidViews   []float64 `json:"valid_views_recall@10,omitempty"` // each view's, with two views
}

// IndexInfo records the HNSW graph's build parameters and its recall
// against exact search measured when it was built (empty without a graph).
type IndexInfo struct {
	HNSW   json.RawMessage    `json:"hnsw,omitempty"`
	Recall map[string]float64 `json:"recall,omitempty"`
}

// Movie is a catalogue entry as stored in movies.json.
type Movie struct {
	ID     movielens.MovieID `json:"id"`
	Title  string            `json:"title"`
	Genres []string          `json:"genres"`
	Year   int               `json:"year,omitempty"`
}

// Profile is a user's stored features as kept in profiles.json.
type Profile struct {
	ID         movielens.UserID `json:"id"`
	Gender     string           `json:"gender,omitempty"`
	Age        int              `json:"age,omitempty"`
	Occupation string           `json:"occupation,omitempty"`
	Zip        string           `json:"zip,omitempty"`
}

// Bundle is an artifact in memory.
type Bundle struct {
	Manifest Manifest
	Model    *tower.Model
	Encoder  *feature.Encoder
	Movies   []Movie            // dense movie index order; Vectors row i belongs to Movies[i]
	Vectors  []float32          // len(Movies) × Dim, the movie tower's outputs
	Users    []movielens.UserID // dense user index order: users with a training history
	Seen     [][]int32          // per dense user index: sorted movie indexes rated in training
	// Profiles are the stored features of the dataset's users (all of
	// them, rated or not), so a request naming only a user id is served
	// with them; optional (artifacts before it have none).
	Profiles []Profile
	Graph    []byte // exported HNSW graph, optional
	Report   []byte // training report (SVG), optional
	Prior    *Prior // the popularity prior in the vectors' last dimension, optional
	// Recent is each known user's newest movies for a history feature of
	// recent movies (model.history_length > 0); nil: the history feature,
	// if any, pools the user's whole Seen list.
	Recent *Recent
}

// Recent is the stored recent history (recent.json): the history feature
// of such a model pools at most Length movies, the newest first — a
// request's recent movies, then the stored user's newest.
type Recent struct {
	Length int `json:"length"`
	// Decay weighs the bag by recency (the k-th newest movie weighs
	// Decay^k); 0: the plain mean. Load sets it on the model's history
	// table (tower.Model.SetUserPoolDecay).
	Decay  float32   `json:"decay,omitempty"`
	Movies [][]int32 `json:"movies"` // per dense user index (Users order): movie indexes, newest first, at most Length
}

// Prior is the time-aware popularity prior (prior.json), a table kept
// outside the towers: with it the model's vectors gain a last dimension,
// Weight on the user side and each movie's Bias on the movie side (already
// in Vectors), so one inner product scores tower·tower + Weight·bias. New
// counts mean a new table and new last values in Vectors, not new towers.
type Prior struct {
	Weight     float32 `json:"weight"`      // the user side of the extra dimension, known users
	ColdWeight float32 `json:"cold_weight"` // the user side for a cold user (IDFields all unknown)
	IDFields   []int   `json:"id_fields"`   // user field positions that make a user known
	// RecentWeight is the user side for a user known only by RecentFields
	// (the recent-history field): a new user sending recent movies.
	RecentWeight float32 `json:"recent_weight,omitzero"`
	RecentFields []int   `json:"recent_fields,omitempty"`
	// FeatureShare is the share of a known user's query from their
	// features alone (tower.Prior.FeatureShare); 0: their own query.
	FeatureShare float32   `json:"feature_share,omitzero"`
	DefaultBias  float32   `json:"default_bias"`   // the bias of a movie without counts (new catalogue movies)
	HalfLifeDays float64   `json:"half_life_days"` // counts decay by half over this many days before Now; 0: no decay
	Now          time.Time `json:"now"`            // the time the counts are decayed to: the newest rating given (a movie the model lacks included)
	Ratings      int       `json:"ratings"`        // ratings counted
	// Sources are the ratings files a refresh (towerrecall prior) counted,
	// each with its sha256; none when the counts are training's (the
	// manifest's data checksums).
	Sources map[string]string `json:"sources,omitempty"`
	Bias    []float32         `json:"bias"` // per movie, in Movies order: log of its smoothed share of the decayed counts
}

// maxPrior bounds the prior's weights and biases: a bias is the log of a
// share (about −25 at the least), a weight a small multiple of 1; a value
// past it would overflow the scores.
const maxPrior = 1e3

// check checks that the weights and biases are finite and within maxPrior,
// the id fields are user fields (of n) and the recent fields id fields.
func (p *Prior) check(n int) error {
	for name, v := range map[string]float32{"weight": p.Weight, "cold_weight": p.ColdWeight, "recent_weight": p.RecentWeight, "default_bias": p.DefaultBias} {
		if !(math.Abs(float64(v)) <= maxPrior) {
			return fmt.Errorf("%s %g is not a number within ±%g", name, v, maxPrior)
		}
	}
	if i := slices.IndexFunc(p.Bias, func(v float32) bool { return !(math.Abs(float64(v)) <= maxPrior) }); i >= 0 {
		return fmt.Errorf("bias[%d] %g is not a number within ±%g", i, p.Bias[i], maxPrior)
	}
	if !(p.FeatureShare >= 0 && p.FeatureShare < 1) {
		return fmt.Errorf("feature_share %g out of range [0, 1)", p.FeatureShare)
	}
	if !(p.HalfLifeDays >= 0 && p.HalfLifeDays <= 1e6) {
		return fmt.Errorf("half_life_days %g out of range 0–1e6", p.HalfLifeDays)
	}
	for _, f := range p.IDFields {
		if f < 0 || f >= n {
			return fmt.Errorf("id field %d out of range", f)
		}
	}
	for _, f := range p.RecentFields {
		if !slices.Contains(p.IDFields, f) {
			return fmt.Errorf("recent field %d is not an id field", f)
		}
	}
	return nil
}

// Tower is the model's side of the prior (the weights and the fields that
// pick one).
func (p *Prior) Tower() *tower.Prior {
	return &tower.Prior{Weight: p.Weight, ColdWeight: p.ColdWeight, RecentWeight: p.RecentWeight, DefaultBias: p.DefaultBias,
		IDFields: p.IDFields, RecentFields: p.RecentFields, FeatureShare: p.FeatureShare}
}

// Save writes b into dir atomically: everything goes into a temporary
// sibling directory, is synced, and only then replaces dir. On any error dir
// is left as it was. Save fills b.Manifest.Files.
func Save(dir string, b *Bundle) error { return save(dir, b, nil) }

// SaveReplacing is Save for a bundle derived from the artifact at dir
// whose manifest had the checksum loaded (ManifestSum, taken before it was
// loaded): it refuses, changing nothing, when another artifact was
// published at dir since (a train or a rollback), rather than replace it
// with what was derived from the one it replaced. A nil loaded is Save.
func SaveReplacing(dir string, b *Bundle, loaded []byte) error { return save(dir, b, loaded) }

func save(dir string, b *Bundle, loaded []byte) (err error) {
	if err := b.check(); err != nil {
		return fmt.Errorf("artifact: save: %w", err)
	}
	if dir, err = target(dir); err != nil {
		return fmt.Errorf("artifact: save: %w", err)
	}
	if _, err := replaceable(dir); err != nil { // checked again when replacing: before anything is written, too
		return fmt.Errorf("artifact: save: %w", err)
	}
	files, err := encodeFiles(b)
	if err != nil {
		return err
	}
	m, mj, err := manifestOf(b, files)
	if err != nil {
		return err
	}
	// What Load would refuse (a diverged weight, a table that does not
	// fit the model, a manifest its decoder reads otherwise than it was
	// written) must not replace a good artifact: decode it before anything is written, from
	// the manifest's bytes, with the checks Load makes.
	read, err := parseManifest(mj)
	if err == nil {
		_, err = decode(read, files)
	}
	if err != nil {
		return fmt.Errorf("artifact: save: Load would refuse it: %w", err)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("artifact: save: %w", err)
	}
	// A killed Save's temporaries go before this one writes: on a volume
	// they filled, every Save would fail for want of space before it got
	// to remove them. Under the lock, so that the artifact another Save has
	// just replaced, still under its temporary name, is not taken for a
	// stale one.
	unlock, err := lock(dir, publishWait)
	if err != nil {
		return fmt.Errorf("artifact: save: %w", err)
	}
	if _, err := restore(dir); err != nil { // before removeStale, which would remove it
		unlock()
		return fmt.Errorf("artifact: save: %w; nothing was written", err)
	}
	removeStale(parent, "."+filepath.Base(dir)+".tmp-")
	unlock()
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("artifact: save: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	// MkdirTemp makes it 0700; an artifact is read by other users (a
	// serving container's uid), as its 0644 files are.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("artifact: save: %w", err)
	}
	for name, data := range files {
		if err := writeFile(filepath.Join(tmp, name), data); err != nil {
			return fmt.Errorf("artifact: save: %w", err)
		}
	}
	if err := writeFile(filepath.Join(tmp, ManifestFile), append(mj, '\n')); err != nil {
		return fmt.Errorf("artifact: save: %w", err)
	}
	if err := syncDir(tmp); err != nil {
		return fmt.Errorf("artifact: save: %w", err)
	}
	if unlock, err = lock(dir, publishWait); err != nil {
		return fmt.Errorf("artifact: save: %w", err)
	}
	defer unlock()
	if loaded != nil {
		if now, err := ManifestSum(dir); err != nil || !bytes.Equal(now, loaded) {
			return fmt.Errorf("artifact: save: another artifact was published at %s since this one was derived from it (a train or a rollback); it is kept: run again on it", dir)
		}
	}
	if err := replaceDir(tmp, dir); err != nil {
		return fmt.Errorf("artifact: save: %w", err)
	}
	b.Manifest = m
	return nil
}

// encodeFiles encodes each of b's files but the manifest.
func encodeFiles(b *Bundle) (files map[string][]byte, err error) {
	files = map[string][]byte{}
	var buf bytes.Buffer
	if _, err := b.Model.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("artifact: encode model: %w", err)
	}
	files[ModelFile] = buf.Bytes()
	vocabs := map[string][]string{}
	for f, v := range b.Encoder.Vocabs {
		vocabs[string(f)] = v.Values()
	}
	if files[VocabFile], err = json.Marshal(vocabs); err != nil {
		return nil, fmt.Errorf("artifact: encode vocabularies: %w", err)
	}
	if files[MoviesFile], err = json.Marshal(b.Movies); err != nil {
		return nil, fmt.Errorf("artifact: encode movies: %w", err)
	}
	files[VectorsFile] = encodeFloats(b.Vectors)
	files[UsersFile] = encodeUsers(b.Users, b.Seen)
	if len(b.Profiles) > 0 {
		if files[ProfilesFile], err = json.Marshal(b.Profiles); err != nil {
			return nil, fmt.Errorf("artifact: encode profiles: %w", err)
		}
	}
	if len(b.Graph) > 0 {
		files[GraphFile] = b.Graph
	}
	if len(b.Report) > 0 {
		files[ReportFile] = b.Report
	}
	if b.Prior != nil {
		if files[PriorFile], err = json.Marshal(b.Prior); err != nil {
			return nil, fmt.Errorf("artifact: encode prior: %w", err)
		}
	}
	if b.Recent != nil {
		if files[RecentFile], err = json.Marshal(b.Recent); err != nil {
			return nil, fmt.Errorf("artifact: encode recent history: %w", err)
		}
	}
	for name, data := range files {
		// Load reads no more (a graph of a million movies at a high
		// serve.hnsw_m reaches it): the artifact would replace a good one
		// and then never load.
		if len(data) > maxFileSize {
			return nil, fmt.Errorf("artifact: save: %s: larger than %d bytes, which a load refuses", name, maxFileSize)
		}
	}
	return files, nil
}

// manifestOf returns b's manifest completed for files (the format version
// they need, the checksum of each) and its encoding.
func manifestOf(b *Bundle, files map[string][]byte) (Manifest, []byte, error) {
	m := b.Manifest
	m.FormatVersion = 1
	if b.Prior != nil && b.Prior.FeatureShare > 0 {
		m.FormatVersion = 2
	}
	m.Files = map[string]string{}
	for name, data := range files {
		sum := sha256.Sum256(data)
		m.Files[name] = hex.EncodeToString(sum[:])
	}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, nil, fmt.Errorf("artifact: encode manifest: %w", err)
	}
	return m, mj, nil
}

// CheckWritable reports early whether Save(dir, ...) can succeed: dir and
// its previous (dir + PreviousSuffix) are absent, empty directories or
// artifacts, dir is not another artifact's previous, and the nearest existing
// directory above it takes a new directory (Save creates the missing ones;
// this creates nothing, so a run that fails later leaves no trace).
// Training calls it first so that a bad --out fails in a second, not after
// the training run.
func CheckWritable(dir string) error {
	if dir == "" {
		return errors.New("artifact: no output directory (an empty path would mean the current one)")
	}
	dir, err := target(dir)
	if err != nil {
		return fmt.Errorf("artifact: %w", err)
	}
	if _, err := replaceable(dir); err != nil {
		return fmt.Errorf("artifact: %w", err)
	}
	// Another artifact's rollback copy: writing there would put a new model
	// where rollback looks for the old one (and keep that in a third copy).
	if base, ok := strings.CutSuffix(dir, PreviousSuffix); ok {
		if _, err := os.Stat(filepath.Join(base, ManifestFile)); err == nil {
			return fmt.Errorf("artifact: %s is where %s keeps the artifact it replaced, for towerrecall rollback; write to another directory", dir, base)
		}
	}
	// Save would publish, and then drop the artifact it replaced rather
	// than keep it where Rollback looks.
	if _, err := replaceable(dir + PreviousSuffix); err != nil {
		return fmt.Errorf("artifact: %w (Save keeps the artifact it replaces there, for rollback: move it aside)", err)
	}
	parent := filepath.Dir(dir)
	for {
		fi, err := os.Stat(parent)
		if err == nil && !fi.IsDir() {
			return fmt.Errorf("artifact: %s is not a directory", parent)
		}
		if err == nil || !errors.Is(err, os.ErrNotExist) || filepath.Dir(parent) == parent {
			break // os.MkdirTemp reports any other problem
		}
		if _, lerr := os.Lstat(parent); lerr == nil { // a link to nothing: Save could not make it a directory
			return fmt.Errorf("artifact: %s is a symbolic link whose target is missing", parent)
		}
		parent = filepath.Dir(parent)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".check-")
	if err != nil {
		return fmt.Errorf("artifact: %s is not writable: %w", parent, err)
	}
	return os.Remove(tmp)
}

// replaceable reports whether dir exists, and an error when it exists but
// must not be replaced by an artifact: a file, a mount point, or a
// directory holding anything but an artifact's files (its own names, or
// the names its manifest lists). A damaged artifact is replaceable; a web
// app's folder with a manifest.json, or notes beside a model, are not.
func replaceable(dir string) (exists bool, err error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return false, nil
	}
	if !fi.IsDir() {
		return true, fmt.Errorf("%s exists and is not a directory; refusing to replace it", dir)
	}
	if mountPoint(dir) {
		// The rename that publishes an artifact cannot replace it (EBUSY,
		// found only after training).
		return true, fmt.Errorf("%s is a mount point: an artifact is published by renaming a new directory into its place, which a mount point cannot take; give a directory inside it, such as %s",
			dir, filepath.Join(dir, "model"))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return true, err
	}
	var listed struct {
		Files map[string]string `json:"files"`
	}
	if raw, err := readLimited(filepath.Join(dir, ManifestFile)); err == nil {
		_ = json.Unmarshal(raw, &listed) // a damaged manifest lists nothing
	}
	for _, e := range entries {
		if _, ok := listed.Files[e.Name()]; !ok && !slices.Contains(own, e.Name()) {
			return true, fmt.Errorf("%s exists and is not an artifact (%q is not an artifact's file); refusing to replace it", dir, e.Name())
		}
	}
	return true, nil
}

// target is the absolute directory an artifact written to dir goes to:
// dir itself, or where it points when it is a symlink (deployments swap a
// "current" link between versions; replacing the link by a directory
// would leave its target stale). Absolute, so that the temporary sibling
// of "." or "sub/.." is not created inside it.
func target(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if fi, err := os.Lstat(dir); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return "", fmt.Errorf("%s is a symbolic link whose target is missing: %w", dir, err)
		}
		return real, nil
	}
	return dir, nil
}

// removeStale removes what a killed Save left in parent: temporary
// directories named prefix* untouched for an hour (a Save in progress
// touches its own within seconds).
func removeStale(parent, prefix string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && e.IsDir() && strings.HasPrefix(e.Name(), prefix) && time.Since(info.ModTime()) > time.Hour {
			_ = os.RemoveAll(filepath.Join(parent, e.Name()))
		}
	}
}

// Restore puts back at dir the artifact that a train, prior or rollback
// killed in the middle of a three-rename swap (see swap) left aside: dir
// is missing and one aside of it exists (Save's .<name>.tmp-*.old, or
// Rollback's <dir>.rollback). It returns the aside put back, "" when
// there was nothing to do, and an error naming the asides when it cannot
// tell which to put back or the rename fails. Save and Rollback do it
// first; serve does it before it waits for an artifact or trains a demo
// one over the missing directory.
func Restore(dir string) (from string, err error) {
	dir = filepath.Clean(dir) // "model/" is model, beside its siblings
	if _, err := os.Lstat(dir); err == nil || len(asides(dir)) == 0 {
		return "", nil // the common case: no lock taken, nothing created
	}
	unlock, err := lock(dir, publishWait)
	if err != nil {
		return "", fmt.Errorf("artifact: %w", err)
	}
	defer unlock()
	if from, err = restore(dir); err != nil {
		return "", fmt.Errorf("artifact: %w", err)
	}
	return from, nil
}

// restore is Restore with the publication lock held.
func restore(dir string) (from string, err error) {
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	switch found := asides(dir); len(found) {
	case 0:
		return "", nil
	case 1:
		if err := os.Rename(found[0], dir); err != nil {
			return "", fmt.Errorf("%s is missing: put back the artifact an interrupted publication moved aside to %s: %w", dir, found[0], err)
		}
		return found[0], syncDir(filepath.Dir(dir))
	default:
		return "", fmt.Errorf("%s is missing, and interrupted publications moved artifacts aside from it to %s: move the one to serve back to %s", dir, strings.Join(found, " and "), dir)
	}
}

// asides lists the directories where a three-rename swap moves dir for a
// moment: Save's (tmp+".old") and Rollback's.
func asides(dir string) []string {
	parent, name := filepath.Dir(dir), filepath.Base(dir)
	entries, _ := os.ReadDir(parent)
	var found []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() && (n == name+".rollback" || strings.HasPrefix(n, "."+name+".tmp-") && strings.HasSuffix(n, ".old")) {
			found = append(found, filepath.Join(parent, n))
		}
	}
	return found
}

// own lists the files an artifact may hold.
var own = []string{ManifestFile, ModelFile, VocabFile, MoviesFile, VectorsFile, UsersFile, ProfilesFile, GraphFile, ReportFile, PriorFile, RecentFile}

// PreviousSuffix names the sibling directory where Save keeps the
// artifact it replaced, one generation back, for Rollback.
const PreviousSuffix = ".previous"

// publishWait is how long Save and Rollback wait for another process
// publishing in the same directory (see lock). A publication holds the
// lock for seconds (Rollback loads the previous under it); a Save that
// gives up loses its run's artifact, so the wait is generous.
const publishWait = 5 * time.Minute

// replaceDir moves tmp to dir. An existing dir is swapped with tmp (see
// swap) and then kept as dir's previous.
func replaceDir(tmp, dir string) error {
	exists, err := replaceable(dir)
	if err != nil {
		return err
	}
	if !exists {
		if err := os.Rename(tmp, dir); err != nil {
			return err
		}
		return syncDir(filepath.Dir(dir))
	}
	// Published once moved; a failed last rename leaves the old artifact
	// under the temporary prefix, for a later Save's removeStale.
	if moved, err := swap(tmp, dir, tmp+".old", exchange); !moved {
		return err
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	keepPrevious(tmp, dir, exchange) // the old artifact now
	return nil
}

// swap exchanges the directories at a and b: in one step where the file
// system can (exch; a crash leaves one or the other at b), otherwise by
// three renames through aside, b put back if the second fails (a crash
// between the first two leaves b at aside, for Restore). moved
// reports whether b holds what was at a; an error with moved set means the
// old b stays at aside.
func swap(a, b, aside string, exch func(a, b string) error) (moved bool, err error) {
	if err := exch(a, b); !errors.Is(err, errors.ErrUnsupported) {
		return err == nil, err
	}
	if err := os.Rename(b, aside); err != nil {
		return false, err
	}
	if err := os.Rename(a, b); err != nil {
		if rerr := os.Rename(aside, b); rerr != nil {
			return false, errors.Join(err, fmt.Errorf("restore %s: %w", b, rerr))
		}
		return false, err
	}
	return true, os.Rename(aside, a)
}

// keepPrevious moves old, the artifact a Save replaced at dir, to dir's
// previous, or removes it when it cannot (a previous that is not an
// artifact is left alone): the new artifact is published either way. An
// older previous is swapped out first and then removed under old's
// temporary name, so that a crash never leaves a half-removed previous,
// and a later Save's removeStale finishes what it left.
func keepPrevious(old, dir string, exch func(a, b string) error) {
	prev := dir + PreviousSuffix
	exists, err := replaceable(prev)
	switch {
	case err != nil:
	case !exists:
		err = os.Rename(old, prev)
	default:
		_, err = swap(old, prev, old+".older", exch) // old holds the older previous now
	}
	if err == nil {
		_ = syncDir(filepath.Dir(dir))
		if !exists {
			return // old is the previous now
		}
	}
	_ = os.RemoveAll(old) // the replaced artifact, or the older previous once swapped out
}

// Rollback puts the artifact Save kept beside dir (dir + PreviousSuffix)
// back at dir, after checking that it loads and is an artifact directory,
// and keeps the one it replaces as the previous: a second Rollback undoes
// the first. The swap is one step where the file system can (a crash
// leaves one artifact or the other at dir); elsewhere dir is moved aside
// for a moment (see Restore). Save and Rollback wait for each other (see
// lock).
func Rollback(dir string) (RollbackResult, error) { return rollback(dir, exchange) }

// RollbackResult describes what Rollback did.
type RollbackResult struct {
	Version string // now at Dir
	Dir     string // the artifact directory (a symbolic link's target)
	// Replaced is the version of the artifact Rollback moved to
	// Previous ("" when it had no readable manifest); Swapped is false
	// when nothing was at Dir (and nothing can be undone).
	Replaced, Previous string
	Swapped            bool
}

func rollback(dir string, exch func(a, b string) error) (RollbackResult, error) {
	var r RollbackResult
	dir, err := target(dir)
	if err != nil {
		return r, fmt.Errorf("artifact: rollback: %w", err)
	}
	prev, aside := dir+PreviousSuffix, dir+".rollback"
	r.Dir, r.Previous = dir, prev
	unlock, err := lock(dir, publishWait)
	if err != nil {
		return r, fmt.Errorf("artifact: rollback: %w; nothing was changed", err)
	}
	defer unlock()
	if _, err := restore(dir); err != nil {
		return r, fmt.Errorf("artifact: rollback: %w; nothing was changed", err)
	}
	if _, err := os.Lstat(aside); err == nil {
		return r, fmt.Errorf("artifact: rollback: %s is left from an interrupted rollback and holds the artifact it replaced at %s: move it to %s, where rollback keeps it (or remove it), and run rollback again", aside, dir, prev)
	}
	fi, err := os.Lstat(prev)
	if err != nil {
		return r, fmt.Errorf("artifact: rollback: no previous artifact at %s (train and prior keep the one they replace there): %w", prev, err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return r, fmt.Errorf("artifact: rollback: %s is a symbolic link, not an artifact Save kept; nothing was changed", prev)
	}
	if _, err := replaceable(prev); err != nil {
		return r, fmt.Errorf("artifact: rollback: the previous artifact: %w; nothing was changed", err)
	}
	b, err := Load(prev)
	if err != nil {
		return r, fmt.Errorf("artifact: rollback: the previous artifact at %s does not load: %w; nothing was changed", prev, err)
	}
	r.Version = b.Manifest.Version
	exists, err := replaceable(dir)
	if err != nil {
		return r, fmt.Errorf("artifact: rollback: %w; nothing was changed", err)
	}
	if !exists {
		if err := os.Rename(prev, dir); err != nil {
			return r, fmt.Errorf("artifact: rollback: %w; nothing was changed", err)
		}
		return r, syncDir(filepath.Dir(dir))
	}
	if m, _, err := ReadManifest(dir); err == nil { // a damaged artifact has no version to report
		r.Replaced = m.Version
	}
	moved, err := swap(prev, dir, aside, exch)
	switch {
	case !moved:
		return r, fmt.Errorf("artifact: rollback: %w; nothing was changed", err)
	case err != nil:
		r.Swapped = true
		return r, fmt.Errorf("artifact: rolled back %s to version %s, but the replaced artifact stays at %s: %w; do not run rollback again", dir, r.Version, aside, err)
	}
	r.Swapped = true
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return r, fmt.Errorf("artifact: rolled back %s to version %s, but syncing its directory failed: %w; do not run rollback again", dir, r.Version, err)
	}
	return r, nil
}

func writeFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	// 0644 whatever the umask, as the directory is 0755: other users
	// (a serving container's uid) read the artifact.
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", filepath.Base(path), err)
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func (b *Bundle) check() error {
	var errs []error
	if b.Model == nil {
		errs = append(errs, errors.New("no model"))
	}
	if b.Encoder == nil {
		errs = append(errs, errors.New("no encoder"))
	}
	dim := b.Manifest.Dim
	if dim <= 0 {
		errs = append(errs, fmt.Errorf("dim %d", dim))
	} else if len(b.Vectors) != len(b.Movies)*dim {
		errs = append(errs, fmt.Errorf("%d vector values for %d movies × dim %d", len(b.Vectors), len(b.Movies), dim))
	}
	if i := slices.IndexFunc(b.Vectors, notFinite); i >= 0 {
		// What Load refuses: a diverged training must not replace a good artifact.
		errs = append(errs, fmt.Errorf("%s: value %d is not finite", VectorsFile, i))
	}
	if len(b.Seen) != len(b.Users) {
		errs = append(errs, fmt.Errorf("%d seen lists for %d users", len(b.Seen), len(b.Users)))
	}
	if r := b.Recent; r != nil {
		if err := r.check(len(b.Users), len(b.Movies)); err != nil {
			errs = append(errs, err)
		}
	}
	if b.Prior != nil && (b.Model == nil || b.Model.Prior() == nil || len(b.Prior.Bias) != len(b.Movies)) {
		errs = append(errs, errors.New("prior table without the model's prior dimension, or not one bias per movie"))
	}
	if b.Prior != nil && b.Model != nil {
		if err := b.Prior.check(b.Model.User().Fields()); err != nil {
			errs = append(errs, fmt.Errorf("prior: %w", err))
		}
	}
	return errors.Join(errs...)
}

func notFinite(v float32) bool { return math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) }

// ManifestSum is the SHA-256 of dir's manifest file as it is on disk (read
// as Load reads it), which changes whenever a new artifact is published.
func ManifestSum(dir string) ([]byte, error) {
	raw, err := readLimited(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, err
	}
	s := sha256.Sum256(raw)
	return s[:], nil
}

// ReadManifest reads and decodes dir's manifest without verifying the rest.
func ReadManifest(dir string) (Manifest, []byte, error) {
	raw, err := readLimited(filepath.Join(dir, ManifestFile))
	if err != nil {
		// "stat DIR/manifest.json: no such file" left the reader to work
		// out that DIR is no artifact (eval --model pointed elsewhere).
		if st, derr := os.Stat(dir); derr != nil {
			return Manifest{}, nil, fmt.Errorf("artifact: no artifact at %s: %w", dir, derr)
		} else if !st.IsDir() {
			return Manifest{}, nil, fmt.Errorf("artifact: %s is not a directory: an artifact is one", dir)
		} else if errors.Is(err, fs.ErrNotExist) {
			return Manifest{}, nil, fmt.Errorf("artifact: %s is no artifact (it has no %s): %w", dir, ManifestFile, err)
		}
		return Manifest{}, nil, fmt.Errorf("artifact: %w", err)
	}
	m, err := parseManifest(raw)
	if err != nil {
		return m, nil, fmt.Errorf("artifact: %w", err)
	}
	return m, raw, nil
}

// parseManifest decodes a manifest's bytes and checks its format version.
func parseManifest(raw []byte) (Manifest, error) {
	var m Manifest
	if err := unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	if m.FormatVersion > FormatVersion {
		// A binary rolled back past a format change meets this: say what
		// to do, not only what is wrong.
		return m, fmt.Errorf("%s: format version %d, this build reads 1 to %d: a newer towerrecall wrote it; serve it with that build (or a newer one), or publish an artifact this build trained", ManifestFile, m.FormatVersion, FormatVersion)
	}
	if m.FormatVersion < 1 {
		return m, fmt.Errorf("%s: format version %d, this build reads 1 to %d", ManifestFile, m.FormatVersion, FormatVersion)
	}
	if strings.TrimSpace(m.Version) == "" {
		// Every answer names the model that gave it (model_version).
		return m, fmt.Errorf("%s: no version", ManifestFile)
	}
	return m, nil
}

// Load reads dir, verifies the checksum of every file listed in the
// manifest, and decodes the bundle. Any mismatch or decoding problem is an
// error naming the file.
func Load(dir string) (*Bundle, error) { return loadAgain(dir, loadOnce) }

// loadAgain is Load, with load reading dir once and returning the
// manifest's bytes it went by. An artifact replaced while it is read (a
// Save, or a volume's swap, publishing the next one between its manifest
// and its files) reads as corrupt: the manifest of one, files of the
// other. So a read that fails when the manifest on disk is no longer the
// one it went by is done again, on what is there now (three reads in
// all, for a directory replaced without end).
func loadAgain(dir string, load func(string) (*Bundle, []byte, error)) (b *Bundle, err error) {
	for range 3 {
		var raw []byte
		if b, raw, err = load(dir); err == nil {
			return b, nil
		}
		now, _ := readLimited(filepath.Join(dir, ManifestFile))
		if raw == nil || bytes.Equal(now, raw) {
			break
		}
	}
	return nil, err
}

// loadOnce reads dir's manifest, then the files it lists.
func loadOnce(dir string) (*Bundle, []byte, error) {
	m, raw, err := ReadManifest(dir)
	if err != nil {
		return nil, nil, err
	}
	b, err := loadFiles(dir, m)
	return b, raw, err
}

// loadFiles reads, verifies and decodes the files m lists in dir.
func loadFiles(dir string, m Manifest) (*Bundle, error) {
	for _, req := range []string{ModelFile, VocabFile, MoviesFile, VectorsFile, UsersFile} {
		if _, ok := m.Files[req]; !ok {
			return nil, fmt.Errorf("artifact: %s: %s not listed", ManifestFile, req)
		}
	}
	files := map[string][]byte{}
	names := make([]string, 0, len(m.Files))
	for name := range m.Files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name != filepath.Base(name) || name == ManifestFile || name == "." || name == ".." {
			return nil, fmt.Errorf("artifact: %s: bad file name %q", ManifestFile, name)
		}
		data, err := readLimited(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("artifact: %w", err)
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != m.Files[name] {
			return nil, fmt.Errorf("artifact: %s: checksum mismatch (manifest %s, file %s): the artifact is corrupt", name, short(m.Files[name]), short(got))
		}
		files[name] = data
	}
	// Save lists every file it writes: one on disk but not listed means
	// an edited manifest, and loading without it (the prior, the recent
	// histories) would serve another model than the one trained.
	for _, name := range own {
		if _, listed := m.Files[name]; !listed && name != ManifestFile {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				return nil, fmt.Errorf("artifact: %s is in %s but not in its manifest's files: the manifest was edited", name, dir)
			}
		}
	}
	return decode(m, files)
}

// Decode builds a bundle from a manifest and verified file contents. It is
// separate from Load so that it can be fuzzed without touching disk.
func decode(m Manifest, files map[string][]byte) (*Bundle, error) {
	b := &Bundle{Manifest: m, Graph: files[GraphFile], Report: files[ReportFile]}
	if m.Dim <= 0 || m.Dim > 4096 {
		return nil, fmt.Errorf("artifact: %s: dim %d out of range", ManifestFile, m.Dim)
	}
	var err error
	if b.Model, b.Prior, err = decodeModel(m, files); err != nil {
		return nil, err
	}
	if b.Encoder, err = decodeEncoder(m, files[VocabFile], b.Model); err != nil {
		return nil, err
	}
	if b.Movies, err = decodeMovies(files[MoviesFile]); err != nil {
		return nil, err
	}
	if b.Vectors, err = decodeFloats(files[VectorsFile]); err != nil {
		return nil, fmt.Errorf("artifact: %s: %w", VectorsFile, err)
	}
	if len(b.Vectors) != len(b.Movies)*m.Dim {
		return nil, fmt.Errorf("artifact: %s: %d values for %d movies × dim %d", VectorsFile, len(b.Vectors), len(b.Movies), m.Dim)
	}
	if i := slices.IndexFunc(b.Vectors, notFinite); i >= 0 {
		return nil, fmt.Errorf("artifact: %s: value %d is not finite", VectorsFile, i)
	}
	if b.Prior != nil && len(b.Prior.Bias) != len(b.Movies) {
		return nil, fmt.Errorf("artifact: %s: %d biases for %d movies", PriorFile, len(b.Prior.Bias), len(b.Movies))
	}
	if b.Users, b.Seen, err = decodeUsers(files[UsersFile], len(b.Movies)); err != nil {
		return nil, fmt.Errorf("artifact: %s: %w", UsersFile, err)
	}
	if raw, ok := files[RecentFile]; ok {
		b.Recent = new(Recent)
		if err := unmarshal(raw, b.Recent); err != nil {
			return nil, fmt.Errorf("artifact: %s: %w", RecentFile, err)
		}
		if err := b.Recent.check(len(b.Users), len(b.Movies)); err != nil {
			return nil, fmt.Errorf("artifact: %s: %w", RecentFile, err)
		}
		pos := b.Encoder.HistoryPosition()
		if pos < 0 {
			return nil, fmt.Errorf("artifact: %s: recent histories for a model without a history feature", RecentFile)
		}
		if d := b.Recent.Decay; d != 0 {
			b.Model.SetUserPoolDecay(pos, d)
		}
	}
	if raw, ok := files[ProfilesFile]; ok {
		if b.Profiles, err = decodeProfiles(raw); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// decodeModel decodes the towers and the prior they apply, if the
// artifact has one.
func decodeModel(m Manifest, files map[string][]byte) (*tower.Model, *Prior, error) {
	model, err := tower.ReadModel(bytes.NewReader(files[ModelFile]))
	if err != nil {
		return nil, nil, fmt.Errorf("artifact: %s: %w", ModelFile, err)
	}
	var prior *Prior
	if raw, ok := files[PriorFile]; ok {
		prior = new(Prior)
		if err := unmarshal(raw, prior); err != nil {
			return nil, nil, fmt.Errorf("artifact: %s: %w", PriorFile, err)
		}
		if err := prior.check(model.User().Fields()); err != nil {
			return nil, nil, fmt.Errorf("artifact: %s: %w", PriorFile, err)
		}
		if prior.FeatureShare > 0 && m.FormatVersion < 2 {
			return nil, nil, fmt.Errorf("artifact: %s: a feature share in a format version %d artifact (it needs 2)", PriorFile, m.FormatVersion)
		}
		model.SetPrior(prior.Tower())
	}
	if model.Dim() != m.Dim {
		return nil, nil, fmt.Errorf("artifact: %s: model dim %d, manifest says %d", ModelFile, model.Dim(), m.Dim)
	}
	return model, prior, nil
}

// decodeEncoder decodes the vocabularies into the feature encoder of the
// fields m lists, which must fit model's embedding tables.
func decodeEncoder(m Manifest, raw []byte, model *tower.Model) (*feature.Encoder, error) {
	var vocabs map[string][]string
	if err := unmarshal(raw, &vocabs); err != nil {
		return nil, fmt.Errorf("artifact: %s: %w", VocabFile, err)
	}
	fv := map[feature.Field][]string{}
	for k, v := range vocabs {
		fv[feature.Field(k)] = v
	}
	enc, err := feature.NewEncoder(m.Fields.User, m.Fields.Movie, fv)
	if err != nil {
		return nil, fmt.Errorf("artifact: %s: %w", VocabFile, err)
	}
	if u, m := enc.VocabSizes(enc.UserFields), enc.VocabSizes(enc.MovieFields); !slices.Equal(u, model.UserVocab()) || !slices.Equal(m, model.MovieVocab()) {
		return nil, fmt.Errorf("artifact: %s (sizes %v, %v) does not match %s (%v, %v)", VocabFile, u, m, ModelFile, model.UserVocab(), model.MovieVocab())
	}
	return enc, nil
}

// decodeMovies decodes the catalogue: at least one movie, with distinct
// positive ids and metadata the dataset's rules accept.
func decodeMovies(raw []byte) ([]Movie, error) {
	var movies []Movie
	if err := unmarshal(raw, &movies); err != nil {
		return nil, fmt.Errorf("artifact: %s: %w", MoviesFile, err)
	}
	if len(movies) == 0 {
		return nil, fmt.Errorf("artifact: %s: no movies", MoviesFile)
	}
	ids := make(map[movielens.MovieID]bool, len(movies))
	for i, mv := range movies {
		if mv.ID < 1 || ids[mv.ID] {
			return nil, fmt.Errorf("artifact: %s: movie %d has id %d (ids are positive and distinct)", MoviesFile, i, mv.ID)
		}
		ids[mv.ID] = true
		if err := mv.check(); err != nil {
			return nil, fmt.Errorf("artifact: %s: movie %d: %w", MoviesFile, mv.ID, err)
		}
	}
	return movies, nil
}

// decodeProfiles decodes the users' features: valid, one profile a user.
func decodeProfiles(raw []byte) ([]Profile, error) {
	var profiles []Profile
	if err := unmarshal(raw, &profiles); err != nil {
		return nil, fmt.Errorf("artifact: %s: %w", ProfilesFile, err)
	}
	ids := make(map[movielens.UserID]bool, len(profiles))
	for i, p := range profiles {
		if err := p.check(); err != nil || ids[p.ID] {
			if err == nil {
				err = errors.New("listed twice")
			}
			return nil, fmt.Errorf("artifact: %s: profile %d (user %d): %w", ProfilesFile, i, p.ID, err)
		}
		ids[p.ID] = true
	}
	return profiles, nil
}

// check reports whether r fits a bundle of users and movies.
func (r *Recent) check(users, movies int) error {
	if r.Length < 1 || r.Length > 1000 {
		return fmt.Errorf("recent history length %d out of range 1–1000", r.Length)
	}
	if !(r.Decay >= 0 && r.Decay < 1) {
		return fmt.Errorf("recent history decay %g not in [0, 1)", r.Decay)
	}
	if len(r.Movies) != users {
		return fmt.Errorf("%d recent histories for %d users", len(r.Movies), users)
	}
	for u, ms := range r.Movies {
		if len(ms) > r.Length {
			return fmt.Errorf("user %d: %d recent movies, more than %d", u, len(ms), r.Length)
		}
		for _, m := range ms {
			if m < 0 || int(m) >= movies {
				return fmt.Errorf("user %d: movie index %d out of range", u, m)
			}
		}
	}
	return nil
}

// check applies the dataset's rules for a movie's metadata (the title
// may be empty, as one of u.item's is).
func (mv Movie) check() error {
	if err := movielens.CheckTitle(mv.Title); err != nil {
		return err
	}
	if err := movielens.CheckGenres(mv.Genres); err != nil {
		return err
	}
	if mv.Year != 0 && (mv.Year < movielens.MinYear || mv.Year > movielens.MaxYear) {
		return fmt.Errorf("year %d out of range %d–%d", mv.Year, movielens.MinYear, movielens.MaxYear)
	}
	return nil
}

// check applies the dataset's rules for a user's features (each may be
// absent; the zip is whatever the dataset holds).
func (p Profile) check() error {
	switch {
	case p.ID <= 0:
		return errors.New("user ids are positive")
	case p.Gender != "" && p.Gender != "F" && p.Gender != "M":
		return fmt.Errorf("gender %q is not F or M", short(p.Gender))
	case p.Age != 0 && (p.Age < 1 || p.Age > 120):
		return fmt.Errorf("age %d is not 1–120", p.Age)
	}
	if p.Occupation != "" {
		if n, ok := movielens.CanonicalOccupation(p.Occupation); !ok || n != p.Occupation {
			return fmt.Errorf("occupation %q is not a canonical occupation name", short(p.Occupation))
		}
	}
	return nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// readLimited reads a regular file (a symbolic link to one is followed) of
// at most maxFileSize bytes: a device or a FIFO in its place would be
// read without end or block the reader.
func readLimited(path string) ([]byte, error) {
	if st, err := os.Stat(path); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", filepath.Base(path), st.Mode().Type())
	} else if st.Size() > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", filepath.Base(path), maxFileSize)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(bufio.NewReader(f), maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", filepath.Base(path), maxFileSize)
	}
	return data, nil
}

// unmarshal decodes one artifact file. It uses the json/v2 design's
// decoder (github.com/go-json-experiment/json), which reads a 1M-movie
// catalogue 17 % faster than encoding/json; names match exactly, as the
// files are written.
func unmarshal(data []byte, v any) error { return jsonv2.Unmarshal(data, v) }

func encodeFloats(v []float32) []byte {
	out := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
	}
	return out
}

func decodeFloats(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("length %d is not a multiple of 4", len(b))
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}

// users.bin: uint32 n; then per user: int32 id, uint32 count, count × int32 movie index.
func encodeUsers(ids []movielens.UserID, seen [][]int32) []byte {
	size := 4
	for _, s := range seen {
		size += 8 + 4*len(s)
	}
	out := make([]byte, 0, size)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(ids)))
	for i, id := range ids {
		out = binary.LittleEndian.AppendUint32(out, uint32(id))
		out = binary.LittleEndian.AppendUint32(out, uint32(len(seen[i])))
		for _, m := range seen[i] {
			out = binary.LittleEndian.AppendUint32(out, uint32(m))
		}
	}
	return out
}

func decodeUsers(b []byte, numMovies int) ([]movielens.UserID, [][]int32, error) {
	r := &byteReader{b: b}
	n := r.u32()
	if r.err != nil || n > maxEntities || int(n)*8 > len(b) {
		return nil, nil, fmt.Errorf("bad user count")
	}
	ids := make([]movielens.UserID, n)
	seen := make([][]int32, n)
	index := make(map[movielens.UserID]bool, n)
	for i := range ids {
		ids[i] = movielens.UserID(int32(r.u32()))
		if ids[i] < 1 {
			return nil, nil, fmt.Errorf("user %d: id %d is not positive", i, ids[i])
		}
		c := r.u32()
		if r.err != nil || int(c) > numMovies || int(c)*4 > len(b)-r.off {
			return nil, nil, fmt.Errorf("user %d: bad history length", i)
		}
		if index[ids[i]] {
			return nil, nil, fmt.Errorf("user id %d listed twice", ids[i])
		}
		index[ids[i]] = true
		s := make([]int32, c)
		for j := range s {
			s[j] = int32(r.u32())
			if s[j] < 0 || int(s[j]) >= numMovies || (j > 0 && s[j] <= s[j-1]) {
				return nil, nil, fmt.Errorf("user %d: movie index %d out of order or range", ids[i], s[j])
			}
		}
		seen[i] = s
	}
	if r.err != nil {
		return nil, nil, r.err
	}
	if r.off != len(b) {
		return nil, nil, fmt.Errorf("%d trailing bytes", len(b)-r.off)
	}
	return ids, seen, nil
}

type byteReader struct {
	b   []byte
	off int
	err error
}

func (r *byteReader) u32() uint32 {
	if r.err != nil {
		return 0
	}
	if len(r.b)-r.off < 4 {
		r.err = io.ErrUnexpectedEOF
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v
}
