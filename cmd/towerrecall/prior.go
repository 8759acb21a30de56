package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/pipeline"
)

// runPrior recounts an artifact's popularity prior from newer ratings and
// writes the artifact again, towers untouched: what a deployment runs
// between trainings so that "popular now" stays current.
func runPrior(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("prior", flag.ContinueOnError)
	ratings := fs.String("ratings", "", "comma-separated ratings `files`: every rating known now")
	var (
		modelDir = fs.String("model", "var/model", "artifact directory with a popularity prior")
		dataDir  = fs.String("data", "", `MovieLens directory with the users and movies, or "demo" for the built-in demo catalogue`)
		out      = fs.String("out", "", "artifact directory to write (default: --model, replaced atomically)")
	)
	if err := parseFlags(fs, "towerrecall prior [--model var/model] --data DIR --ratings FILE[,FILE] [--out DIR]", args, stdout, stderr); err != nil {
		return err
	}
	if *dataDir == "" || *ratings == "" {
		fmt.Fprintln(stderr, "prior needs --data and --ratings")
		return errUsage
	}
	if *out == "" {
		*out = *modelDir
	}
	// As train: a bad --out fails at once, not after the recount (the
	// graph of a million movies takes minutes to rebuild).
	if err := artifact.CheckWritable(*out); err != nil {
		return err
	}
	files := config.SplitList(*ratings)
	if len(files) == 0 {
		fmt.Fprintln(stderr, "prior: --ratings names no file")
		return errUsage
	}
	// One file named twice (however spelled) would read as every rating
	// repeated "in both F and F" below.
	for i, p := range files {
		for _, q := range files[:i] {
			if samePath(p, q) {
				return fmt.Errorf("--ratings names %s twice (as %q and %q): list each file once", q, q, p)
			}
		}
	}
	// The manifest's checksum before the load: a train or rollback that
	// publishes at --model while the prior is recounted is kept (SaveReplacing).
	loaded, sumErr := artifact.ManifestSum(*modelDir)
	b, err := artifact.Load(*modelDir)
	if err = cmp.Or(err, sumErr); err != nil {
		return err
	}
	if b.Prior == nil {
		return fmt.Errorf("prior: %s has no popularity prior to recount (validation chose weight 0, there was no validation, or train.prior_weights is empty, as in the reference preset)", *modelDir)
	}
	ds, err := loadCatalog(*dataDir) // the ratings come from --ratings
	if err != nil {
		return err
	}
	if err := pipeline.CheckCatalogue(b, ds); err != nil {
		return err
	}
	var rs []movielens.Rating
	from := map[[2]int32]string{}                                      // each (user, movie) pair's file: one rating per pair across the files too
	in := pipeline.Inputs{Dataset: ds, Checksums: map[string]string{}} // recorded as the prior's sources
	for _, p := range files {
		r, err := readSplit(&in, "--ratings", p) // refuses an empty file or a directory
		if err != nil {
			return err
		}
		for _, x := range r {
			k := [2]int32{int32(x.User), int32(x.Movie)}
			if other, ok := from[k]; ok {
				return fmt.Errorf("--ratings: user %d rates movie %d in both %s and %s: list each rating once (a split's files, or the whole ratings file, not both)", x.User, x.Movie, other, p)
			}
			from[k] = p
		}
		rs = append(rs, r...)
	}
	if err := interrupted(ctx); err != nil {
		return err
	}
	c := config.Default()
	before := b.Prior.Ratings
	if err := pipeline.RefreshPrior(b, ds.Users, rs, in.Checksums, c.Serve.SelfCheckQueries, time.Now()); err != nil {
		return err
	}
	if b.Prior.Ratings < before {
		fmt.Fprintf(stderr, "prior: warning: %d ratings counted, %d before: --ratings should list every rating known now\n", b.Prior.Ratings, before)
	}
	if err := interrupted(ctx); err != nil {
		return err
	}
	if !samePath(*out, *modelDir) {
		loaded = nil // a new directory: whatever is there is replaced, as Save does
	}
	if err := artifact.SaveReplacing(*out, b, loaded); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "prior recounted from %d ratings, now %s, version %s: %s\n", b.Prior.Ratings, b.Prior.Now.Format("2006-01-02T15:04:05Z"), b.Manifest.Version, *out)
	if skipped := len(rs) - b.Prior.Ratings; skipped > 0 {
		fmt.Fprintf(stdout, "not counted: %d ratings of movies the model does not have (added since training; the next train counts them)\n", skipped)
	}
	return nil
}

// loadCatalog reads the users and movies of a --data value, the demo
// catalogue included, without its ratings.
func loadCatalog(dir string) (*movielens.Dataset, error) {
	if dir != demoDataDir {
		return movielens.LoadCatalog(dir)
	}
	ds := movielens.Demo(1)
	ds.Ratings = nil
	return ds, nil
}

// samePath reports whether a and b name one file or directory, however
// spelled ("var/model/", "./var/model", a link to it); one that does not
// exist is b only if spelled as b.
func samePath(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}
