package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	oklogrun "github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/catalog"
	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/logbatch"
	"github.com/towerrecall/towerrecall/internal/pipeline"
	"github.com/towerrecall/towerrecall/internal/recall"
	"github.com/towerrecall/towerrecall/internal/server"
)

// unknownEnv are warnings about TOWERRECALL_* variables nothing reads
// (config.UnknownEnv), logged once the logger is up, or written before
// the error when the configuration stops serve first (a misspelt name
// may be why it is wrong).
func runServe(ctx context.Context, args []string, getenv func(string) string, unknownEnv []string, stdout, stderr io.Writer) (err error) {
	cfg, err := serveConfig(args, getenv, stdout, stderr)
	if err != nil {
		printWarnings(stderr, unknownEnv)
		return err
	}
	bw, logger, err := serveLogger(stderr, cfg.Log)
	if err != nil {
		return err
	}
	defer bw.Close()
	// From here on the error that ends serve is a log line (JSON in
	// production), written before bw is flushed; main does not print it.
	defer logEnd(logger, &err, "not serving")
	for _, w := range unknownEnv {
		logger.Warn().Msg(w)
	}
	start := time.Now()
	// SIGHUP means "reload" from the start: one that arrives while the
	// model loads is kept and served once the service runs (its default
	// action would end the process).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	svc, err := recall.New(recallOptions(cfg), logger, reg)
	if err != nil {
		return err
	}
	// The address first: a port in use fails at once, before the journal
	// is opened or a demo model trained.
	ln, err := net.Listen("tcp", cfg.Serve.Addr)
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	defer ln.Close() // Serve closes it too; this covers the returns before
	if a := cfg.Serve.DebugAddr; a != "" {
		// The profiler serves from here on, so a slow start (a large
		// catalogue's load, a demo training) can be profiled too.
		stop, err := serveDebug(a, logger)
		if err != nil {
			return err
		}
		defer stop()
	}
	if a := cfg.Serve.MetricsAddr; a != "" {
		// From here on too: model_loads_total and the process's metrics
		// during a slow start.
		stop, err := serveMetrics(a, server.MetricsHandler(reg, logger), logger)
		if err != nil {
			return err
		}
		defer stop()
	}
	// A file can never become an artifact (publishing refuses to replace
	// it): serve waited at 503 for ever.
	if fi, err := os.Stat(cfg.Serve.Model); err == nil && !fi.IsDir() {
		return fmt.Errorf("serve.model %s is a file, not a directory: an artifact is a directory, published there by towerrecall train --out or prior --out", cfg.Serve.Model)
	}
	journal, err := openJournal(cfg.Serve, svc, logger)
	if err != nil {
		return err
	}
	if journal != nil {
		defer journal.Close()
	}
	srv, err := server.New(server.ConfigFrom(cfg.Serve), logger, svc, reg)
	if err != nil {
		return err
	}
	// Serving starts before the load: /healthz answers 200 (a startup
	// probe sees a live process) and /readyz 503 while the model loads or
	// the demo trains.
	sctx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	rl, err := firstLoad(ctx, cfg, svc, logger)
	if rl == nil {
		stopServing()
		return cmp.Or(err, <-served) // the start's error first; either way the server has stopped
	}
	if _, ok := svc.Info(); ok {
		logger.Info().Str("addr", ln.Addr().String()).Dur("start_to_ready_ms", time.Since(start)).Str("build", version()).Msg("ready")
	} else {
		logger.Warn().Str("addr", ln.Addr().String()).Msg("listening without a model")
	}
	if err = serveAndReload(served, stopServing, rl, hup, cfg.Serve.ReloadPoll); err != nil {
		logger.Error().Err(err).Msg("stopped")
		return loggedError{err}
	}
	logger.Info().Msg("stopped")
	return nil
}

// serveConfig parses serve's flags and loads the config they override.
func serveConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) (config.Config, error) {
	flags := flag.NewFlagSet("serve", flag.ContinueOnError)
	cors := flags.String("cors-origins", "", "comma-separated web `origins` allowed to call the API from a browser (CORS), e.g. https://app.example.com (default: serve.cors_origins, none)")
	cfgPath := flags.String("config", "", "YAML config `file`, given once (configs/local.yaml, configs/production.yaml)")
	// A flag left out keeps its key's value (the file's, the
	// environment's or the default): its help names the key, and no flag
	// has a default of its own, which -h would show as the value (demo
	// true under configs/production.yaml's false).
	def := config.Default().Serve
	var (
		modelDir  = flags.String("model", "", "artifact directory (default: serve.model, "+def.Model+")")
		addr      = flags.String("addr", "", "listen address HOST:PORT; port 0 picks one (default: serve.addr, "+def.Addr+")")
		index     = flags.String("index", "", "auto, exact or hnsw (default: serve.index, "+def.Index+")")
		dataDir   = flags.String("data", "", "with no artifact: train on this MovieLens directory instead of the demo catalogue (default: data.dir)")
		demo      = flags.Bool("demo", false, fmt.Sprintf("with no artifact: train one (demo catalogue, or --data) and save it at --model; --demo=false waits for one (default: serve.demo, %t)", def.Demo))
		logFormat = flags.String("log-format", "", "json or console (default: log.format, "+config.Default().Log.Format+")")
	)
	if err := parseFlags(flags, "towerrecall serve [--model DIR] [--addr HOST:PORT] [--config FILE] [--index auto|exact|hnsw]", args, stdout, stderr); err != nil {
		return config.Config{}, err
	}
	given := flagsSet(flags)
	cfg, err := loadConfig(*cfgPath, "", getenv, nil, func(c *config.Config) {
		if *modelDir != "" {
			c.Serve.Model = *modelDir
		}
		if *addr != "" {
			c.Serve.Addr = *addr
		}
		if *index != "" {
			c.Serve.Index = *index
		}
		if *dataDir != "" {
			c.Data.Dir = *dataDir
		}
		if given["demo"] {
			c.Serve.Demo = *demo
		}
		if given["cors-origins"] {
			c.Serve.CORSOrigins = config.SplitList(*cors)
		}
		if *logFormat != "" {
			c.Log.Format = *logFormat
		}
	})
	if err != nil {
		return config.Config{}, withFlags(err, given, map[string]string{"model": "serve.model", "addr": "serve.addr", "index": "serve.index",
			"data": "data.dir", "demo": "serve.demo", "cors-origins": "serve.cors_origins", "log-format": "log.format"})
	}
	return cfg, nil
}

// serveLogger is serve's logger, writing to stderr through bw, which the
// caller closes. Log lines (the access log's among them) are gathered in
// memory and written to stderr together, at most 20 ms after the first or
// per 64 KiB, by a timer goroutine: one system call per batch, and a
// request never waits for a write(2). If stderr falls 1 MiB behind, lines
// are dropped and the next batch says how many. Close flushes; stderr stays
// open.
func serveLogger(stderr io.Writer, c config.Log) (bw *logbatch.Writer, logger zerolog.Logger, err error) {
	bw, err = logbatch.New(stderr, 20*time.Millisecond, 64<<10, func(dropped int) []byte {
		return fmt.Appendf(nil, "{\"level\":\"warn\",\"message\":\"%d log lines dropped: stderr is not read fast enough\"}\n", dropped)
	})
	if err != nil {
		return nil, logger, err
	}
	return bw, newLogger(bw, c, isTerminal(stderr)), nil // bw is not a terminal; stderr may be
}

// firstLoad loads the model at cfg.Serve.Model into svc (training one in
// demo mode) and returns the reloader that loads it again. A nil
// reloader means serve ends here, with err (nil when a signal stopped the
// demo training).
//
// Without a usable model the process still comes up: /healthz answers,
// /readyz answers 503 and the reload poll (or SIGHUP) loads the
// artifact once it is published. A replica whose volume the training
// Job has not filled yet must not crash-loop; only a bad config exits.
// lastSum is the checksum of the manifest loaded (or refused) at start,
// which the reload poll compares against.
func firstLoad(ctx context.Context, cfg config.Config, svc *recall.Service, logger zerolog.Logger) (rl *reloader, err error) {
	startSum, _ := artifact.ManifestSum(cfg.Serve.Model)
	startPrint := artifactPrint(cfg.Serve.Model, startSum)
	b, lastSum, err := loadOrTrain(ctx, cfg, logger)
	if err == nil {
		if err = svc.Load(b); err != nil {
			err = fmt.Errorf("%w: %w", errBadArtifact, err)
		}
	} else if errors.Is(err, errBadArtifact) {
		svc.LoadFailed() // a refusal, counted as a reload's is (svc.Load counts its own)
	}
	refusedAtStart := errors.Is(err, errBadArtifact)
	switch {
	case err == nil:
	case errors.Is(err, errNoArtifact):
		logger.Warn().Str("model", cfg.Serve.Model).Dur("reload_poll_ms", cfg.Serve.ReloadPoll).
			Msg("waiting for an artifact at " + cfg.Serve.Model + ": /readyz answers 503 until one is published there; " + howReloaded(cfg))
	case errors.Is(err, errBadArtifact):
		logger.Error().Err(err).Str("model", cfg.Serve.Model).Dur("reload_poll_ms", cfg.Serve.ReloadPoll).
			Msg("no usable model at start: /readyz answers 503 until a good artifact is published; " + howReloaded(cfg))
	case ctx.Err() != nil: // SIGTERM or Ctrl-C during the demo training
		logger.Info().Msg("stopped during start-up, before a model loaded")
		return nil, nil
	default: // demo training failed: bad data settings
		return nil, err
	}
	rl = &reloader{svc: svc, dir: cfg.Serve.Model, logger: logger, sum: lastSum}
	if refusedAtStart {
		rl.refused = startPrint // logged above; loaded again once it changes
	}
	return rl, nil
}

// serveAndReload waits for the running server (served, stopped by
// stopServing) and reloads the model on every signal on hup and, when poll
// is positive, at every poll interval in which its manifest changed, until
// the server stops.
func serveAndReload(served <-chan error, stopServing func(), rl *reloader, hup <-chan os.Signal, poll time.Duration) error {
	var g oklogrun.Group
	g.Add(func() error { return <-served }, func(error) { stopServing() })
	{
		done := make(chan struct{})
		g.Add(func() error { rl.onSignal(hup, done); return nil }, func(error) { close(done) })
	}
	if poll > 0 {
		done := make(chan struct{})
		g.Add(func() error { rl.poll(poll, done); return nil }, func(error) { close(done) })
	}
	return g.Run()
}

// reloader loads the artifact at dir into svc again, on SIGHUP and when
// the reload poll sees a new manifest.
type reloader struct {
	mu          sync.Mutex
	svc         *recall.Service
	dir         string
	logger      zerolog.Logger
	lastFailure string
	pollErr     string // the last manifest read error the poll logged
	// sum is the checksum of the manifest of the model serving (nil when
	// unknown), whichever trigger loaded it: the poll reloads when the
	// manifest on disk differs from it.
	sum []byte
	// refused is the artifact the last load refused, as artifactPrint saw
	// it before that load; the poll does not load it again until its
	// manifest or files change (a SIGHUP always does).
	refused string
}

// pollTrigger is the poll's reason to load: a failure it repeats is
// logged again at debug level only (the poll retries a refused artifact
// until it loads); any other trigger, a SIGHUP, is someone asking, and
// is answered at the failure's level.
const pollTrigger = "manifest changed"

// reload loads the artifact again, for why.
func (rl *reloader) reload(why string) error {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return rl.load(why)
}

// load is reload with rl.mu held.
func (rl *reloader) load(why string) error {
	_, had := rl.svc.Info()
	before, _ := artifact.ManifestSum(rl.dir)
	seen := artifactPrint(rl.dir, before)
	nb, sum, err := loadArtifact(rl.dir)
	// Waiting for a first artifact is no refusal (TowerrecallModelRefused
	// alerts on those); losing the served one is.
	waiting := err != nil && !had && artifactAbsent(rl.dir)
	if err == nil {
		err = rl.svc.Load(nb)
	} else if !waiting {
		rl.svc.LoadFailed()
	}
	if err == nil {
		rl.lastFailure, rl.sum, rl.refused = "", sum, ""
		rl.logger.Info().Str("trigger", why).Str("version", nb.Manifest.Version).Bool("first", !had).Msg("reloaded")
		return nil
	}
	rl.refused = seen
	level := zerolog.ErrorLevel
	if waiting { // as said at start
		level = zerolog.WarnLevel
	}
	if why == pollTrigger && err.Error() == rl.lastFailure {
		level = zerolog.DebugLevel
	}
	rl.lastFailure = err.Error()
	ev := rl.logger.WithLevel(level).Err(err).Str("trigger", why).Str("model", rl.dir)
	switch {
	case had:
		ev.Msg("reload refused; the previous model keeps serving")
	case waiting:
		ev.Msg("still no artifact: /readyz answers 503")
	default:
		ev.Msg("reload refused; still no model: /readyz answers 503")
	}
	return err
}

// onSignal reloads at every signal on hup until done is closed.
func (rl *reloader) onSignal(hup <-chan os.Signal, done <-chan struct{}) {
	for {
		select {
		case <-hup:
			_ = rl.reload("SIGHUP")
		case <-done:
			return
		}
	}
}

// poll reloads whenever the manifest's checksum differs from that of the
// model serving (rl.sum, whether the poll, a SIGHUP or the start loaded
// it), every interval until done is closed. A missing manifest (no
// artifact yet, or one being replaced) is not a change: the next poll
// looks again. A refused artifact is tried again once any of its files
// changes (they may still be arriving), not at every poll: loading a
// large one again costs seconds of CPU each time. After a refusal, the
// serving model's own artifact back (a rollback) is loaded again too, so
// that towerrecall_model_refused clears.
func (rl *reloader) poll(interval time.Duration, done <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			rl.pollOnce()
		case <-done:
			return
		}
	}
}

// pollOnce is one look of the poll. The manifest is read under the lock:
// one a SIGHUP is loading right now is not loaded a second time.
func (rl *reloader) pollOnce() {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	sum, err := artifact.ManifestSum(rl.dir)
	rl.notePollError(err)
	if err != nil || bytes.Equal(sum, rl.sum) && rl.refused == "" || rl.refused != "" && artifactPrint(rl.dir, sum) == rl.refused {
		return
	}
	_ = rl.load(pollTrigger)
}

// artifactPrint is what the poll compares to tell whether the artifact at
// dir changed since it was refused: its manifest's checksum (sum, read by
// the caller) and each file's name, size, modification time, mode and
// whether it opens, a symbolic link's target's as Load reads it ("" when
// dir cannot be read). A file refused for its permissions gets no new
// modification time when they are mended (chmod, chown): without the last
// two, the poll never loaded it again.
func artifactPrint(dir string, sum []byte) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	b := strings.Builder{}
	fmt.Fprintf(&b, "%x\n", sum)
	for _, e := range entries {
		info, err := os.Stat(filepath.Join(dir, e.Name())) // a link's target, as Load reads it
		if err != nil {
			if info, err = e.Info(); err != nil { // a link to nothing
				return ""
			}
		}
		opens := false
		if info.Mode().IsRegular() { // a FIFO would block the open
			if f, err := os.Open(filepath.Join(dir, e.Name())); err == nil {
				f.Close()
				opens = true
			}
		}
		fmt.Fprintf(&b, "%s %d %d %v %t\n", e.Name(), info.Size(), info.ModTime().UnixNano(), info.Mode(), opens)
	}
	return b.String()
}

// notePollError logs a manifest the poll cannot read, once until it
// changes: a volume that vanished or lost its permissions while a model
// serves is worth a warning, though the model keeps serving. A missing
// manifest while no model is loaded is the wait start already logged.
func (rl *reloader) notePollError(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg == rl.pollErr {
		return
	}
	rl.pollErr = msg
	_, serving := rl.svc.Info()
	switch {
	case err == nil:
		if serving {
			rl.logger.Info().Str("model", rl.dir).Msg("the model's manifest is readable again")
		}
	case serving || !errors.Is(err, fs.ErrNotExist):
		rl.logger.Warn().Err(err).Str("model", rl.dir).Msg("cannot read the model's manifest; the loaded model keeps serving")
	}
}

// loadArtifact loads the artifact at dir and returns it with the checksum
// of the manifest it was loaded from, for the reload poll. The checksum is
// nil when the load failed or the manifest changed during it, so that the
// poll loads what is there now rather than miss a publication.
func loadArtifact(dir string) (*artifact.Bundle, []byte, error) {
	before, _ := artifact.ManifestSum(dir)
	b, err := artifact.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	after, _ := artifact.ManifestSum(dir)
	if !bytes.Equal(before, after) {
		return b, nil, nil
	}
	return b, after, nil
}

// errNoArtifact reports that serve.model holds no artifact (the directory
// is missing or empty) and demo mode is off; errBadArtifact that it holds
// one that cannot be loaded. Neither stops serve: it waits for a good one.
var (
	errNoArtifact  = errors.New("no artifact")
	errBadArtifact = errors.New("unusable artifact")
)

// artifactAbsent reports whether dir holds no artifact at all: it does not
// exist or is empty. An artifact with a file missing (copied in part, or
// damaged) is not absent: it is refused, never replaced.
func artifactAbsent(dir string) bool {
	entries, err := os.ReadDir(dir)
	return errors.Is(err, fs.ErrNotExist) || err == nil && len(entries) == 0
}

// howReloaded says how a waiting replica will pick up an artifact.
func howReloaded(cfg config.Config) string {
	if cfg.Serve.ReloadPoll > 0 {
		return fmt.Sprintf("it is loaded within serve.reload_poll (%v) of being published, or at once on SIGHUP", cfg.Serve.ReloadPoll)
	}
	return "serve.reload_poll is 0, so only SIGHUP loads it"
}

// loadOrTrain loads the artifact at cfg.Serve.Model. When there is none
// (see artifactAbsent) and demo mode is on, it trains one (on
// cfg.Data.Dir, or the built-in demo catalogue) and saves it there, so the
// next start loads it at once; with demo mode off it reports errNoArtifact.
// A directory with anything in it that does not load is errBadArtifact and
// is never trained over.
func loadOrTrain(ctx context.Context, cfg config.Config, logger zerolog.Logger) (*artifact.Bundle, []byte, error) {
	b, sum, err := loadArtifact(cfg.Serve.Model)
	if err != nil && artifactAbsent(cfg.Serve.Model) {
		// A publication killed between its renames left the artifact
		// aside: put it back rather than wait, or train a demo over it.
		from, rerr := artifact.Restore(cfg.Serve.Model)
		if rerr != nil {
			return nil, nil, fmt.Errorf("load model %s: %w (%w)", cfg.Serve.Model, errBadArtifact, rerr)
		}
		if from != "" {
			logger.Warn().Str("model", cfg.Serve.Model).Str("from", from).
				Msg("the model directory was missing: put back the artifact an interrupted train, prior or rollback had moved aside")
		}
		// Put back, or published meanwhile by the train that Restore
		// waited for (its aside was the artifact it was replacing).
		if !artifactAbsent(cfg.Serve.Model) {
			b, sum, err = loadArtifact(cfg.Serve.Model)
		}
	}
	if err == nil {
		return b, sum, nil
	}
	if !artifactAbsent(cfg.Serve.Model) {
		return nil, nil, fmt.Errorf("load model %s: %w (%w)", cfg.Serve.Model, errBadArtifact, err)
	}
	if !cfg.Serve.Demo {
		return nil, nil, fmt.Errorf("load model %s: %w (%w)", cfg.Serve.Model, errNoArtifact, err)
	}
	data := cfg.Data
	if data.Dir == "" {
		data = config.Data{Dir: demoDataDir}
		// The pid is this process's: under go run, SIGHUP to go run's own
		// pid would end the wrapper and leave this one serving the demo.
		logger.Warn().Str("model", cfg.Serve.Model).Int("pid", os.Getpid()).
			Msg("no artifact found: training on the built-in DEMO catalogue (synthetic, not MovieLens). " +
				"For real data: towerrecall data download --dataset ml-1m --dir data && towerrecall train --data data/ml-1m --out " + cfg.Serve.Model +
				", then kill -HUP " + strconv.Itoa(os.Getpid()) + " (this process) or restart it to serve that model")
	} else {
		logger.Warn().Str("model", cfg.Serve.Model).Str("data", data.Dir).Msg("no artifact found: training one on the configured data")
	}
	in, err := readInputs(data)
	if err != nil {
		return nil, nil, err
	}
	tcfg := cfg
	tcfg.Data = data
	b, err = pipeline.Train(ctx, in, pipeline.Options{Config: tcfg, Logger: logger.With().Str("component", "train").Logger()})
	if err != nil {
		return nil, nil, err
	}
	if err := artifact.Save(cfg.Serve.Model, b); err != nil {
		logger.Warn().Err(err).Msg("could not save the trained artifact; serving it from memory")
		return b, nil, nil
	}
	return loadArtifact(cfg.Serve.Model)
}

// openJournal attaches the catalogue journal to svc before any model is
// loaded, so the first load applies it. With a catalogue token the journal
// is opened for appending (and created); without one, an existing journal
// is still applied, read-only, so that turning writes off does not bring
// deleted movies back. A corrupt journal stops serve: serving a catalogue
// that silently lost changes (a takedown, say) is worse than not serving.
//
// A serve.catalog_journal set explicitly must be in a directory that
// exists: created, a mistyped path (/data/jornal/movies.journal) put the
// journal where no volume keeps it, and acknowledged changes were lost at
// the next restart (without a token, its deletes went unapplied). The
// default, beside serve.model, has its directory created, as publishing
// the artifact there does.
func openJournal(s config.Serve, svc *recall.Service, logger zerolog.Logger) (*catalog.Journal, error) {
	path := s.JournalPath()
	writable := s.CatalogToken != ""
	if s.CatalogJournal != "" {
		dir := filepath.Dir(path)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			if err == nil {
				err = errors.New("not a directory")
			}
			return nil, fmt.Errorf("serve.catalog_journal %s: its directory %s: %w (it is not created: mount the volume there or correct the path)", path, dir, err)
		}
	}
	if !writable {
		// Only a journal that does not exist is none: one that cannot be
		// read (permissions, say) fails below rather than let its deletes
		// be served again.
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	start := time.Now()
	var j *catalog.Journal
	var rep catalog.Replay
	var err error
	if writable {
		j, rep, err = catalog.Open(path)
	} else {
		rep, err = catalog.ReadFile(path) // the volume may be read-only
	}
	if err != nil {
		var corrupt *catalog.CorruptError
		msg := "CATALOGUE JOURNAL UNUSABLE: not serving"
		if errors.As(err, &corrupt) {
			msg += "; repair or move the file aside"
		}
		logger.Error().Err(err).Str("journal", path).Bool("writable", writable).Msg(msg)
		return nil, loggedError{err}
	}
	logCompaction(logger, path, rep.Compaction)
	log := logger.Info()
	if rep.TornBytes > 0 {
		log = logger.Warn().Int64("torn_bytes", rep.TornBytes)
	}
	log.Str("journal", path).Int("entries", len(rep.Entries)).Bool("writable", writable).
		Dur("read_ms", time.Since(start)).Msg("catalogue journal opened")
	if !writable {
		svc.AttachJournal(nil, rep.Entries)
		return nil, nil
	}
	j.OnCompact(func(c catalog.Compaction) { logCompaction(logger, path, c) })
	svc.AttachJournal(j, rep.Entries)
	return j, nil
}

// logCompaction logs a compaction of the journal at path, if one ran (at
// start, or after a Sync while serving).
func logCompaction(logger zerolog.Logger, path string, c catalog.Compaction) {
	if c.Err != nil {
		logger.Warn().Err(c.Err).Str("journal", path).Int("lines", c.LinesBefore).Msg("catalogue journal not compacted")
	} else if c.LinesBefore > 0 {
		logger.Info().Str("journal", path).Int("lines_before", c.LinesBefore).Int("lines_after", c.LinesAfter).
			Int64("bytes_saved", c.BytesBefore-c.BytesAfter).Msg("catalogue journal compacted")
	}
}

// recallOptions are the serving core's options from cfg.
func recallOptions(cfg config.Config) recall.Options {
	return recall.Options{
		Index: cfg.Serve.Index, MinRecall: cfg.Serve.MinRecall, SelfCheckQueries: cfg.Serve.SelfCheckQueries,
		HNSW: pipeline.HNSWParams(cfg.Serve), Seed: cfg.Train.Seed,
	}
}
