package main

import (
	"bytes"
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
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/config"
	evalpkg "github.com/towerrecall/towerrecall/internal/eval"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/pipeline"
)

// Help that was asked for is not an error: usage on stdout, nothing on
// stderr, exit 0. A bad flag still is: usage on stderr, exit 2.
func TestRunHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		wantErr  bool
		wantText string // in stdout on success, in stderr on error
	}{
		{"train -h", []string{"train", "-h"}, false, "towerrecall train"},
		{"train --help", []string{"train", "--help"}, false, "-epochs"},
		{"eval -h", []string{"eval", "-h"}, false, "towerrecall eval"},
		{"eval --help", []string{"eval", "--help"}, false, "-model"},
		{"prior --help", []string{"prior", "--help"}, false, "towerrecall prior"},
		{"serve -h", []string{"serve", "-h"}, false, "towerrecall serve"},
		{"serve --help", []string{"serve", "--help"}, false, "-log-format"},
		{"data -h", []string{"data", "-h"}, false, "towerrecall data download"},
		{"data --help", []string{"data", "--help"}, false, "towerrecall data synth"},
		{"data synth --help", []string{"data", "synth", "--help"}, false, "-ratings"},
		{"data synth without dir", []string{"data", "synth", "--movies", "5"}, true, "towerrecall data synth"},
		// Said by name: it was "movies = 0 not in [1, 2000000]", exit 1.
		{"data synth without sizes", []string{"data", "synth", "--dir", "x", "--movies", "5"}, true, "data synth needs --users, --ratings"},
		{"data download --help", []string{"data", "download", "--help"}, false, "-dir"},
		{"help", []string{"help"}, false, "Usage:"},
		// "help CMD" is CMD's help, as go help build or git help commit;
		// it printed the general usage.
		{"help train", []string{"help", "train"}, false, "-epochs"},
		{"help data", []string{"help", "data"}, false, "towerrecall data synth"},
		{"help unknown", []string{"help", "fly"}, true, `unknown command "fly"`},
		{"help two commands", []string{"help", "train", "serve"}, true, `unexpected argument "serve"`},
		{"--help", []string{"--help"}, false, "Usage:"},
		{"serve bad flag", []string{"serve", "--bogus"}, true, "flag provided but not defined: -bogus"},
		{"train bad flag", []string{"train", "--epochs", "many"}, true, "towerrecall train"},
		{"data without subcommand", []string{"data"}, true, "towerrecall data download"},
		{"version -h", []string{"version", "-h"}, false, "towerrecall version"},
		{"version --help", []string{"version", "--help"}, false, "towerrecall version"},
		{"version with an argument", []string{"version", "now"}, true, `unexpected argument "now"`},
		// A boolean flag takes its value after "=": "--demo false" set
		// demo to true and left "false" as an argument.
		{"serve --demo false", []string{"serve", "--demo", "false"}, true, "--demo takes its value after =: write --demo=false"},
		{"train --progress false", []string{"train", "--progress", "false"}, true, "--progress takes its value after =: write --progress=false"},
		{"train argument after a value", []string{"train", "--epochs", "2", "false"}, true, `unexpected argument "false" (flags are written --name value)`},
		{"data download empty dir", []string{"data", "download", "--dir", ""}, true, "data download: --dir is empty: name a directory"},
		// An empty path ("$CFG" unset) is not the flag left out: train
		// --config "" trained with the defaults, serve --model "" served
		// var/model (or trained a demo model there).
		{"train empty config", []string{"train", "--data", "demo", "--config", "", "--epochs", "-1"}, true, "--config is empty: name a file, or leave the flag out"},
		// (--epochs -1, --index bogus: were the empty flag taken for no
		// flag, train and serve would stop at those instead of running.)
		{"serve empty config", []string{"serve", "--config", " ", "--index", "bogus"}, true, "--config is empty"},
		{"serve empty model", []string{"serve", "--model", "", "--index", "bogus"}, true, "--model is empty: name a directory, or leave the flag out"},
		{"eval empty model", []string{"eval", "--model", "", "--data", "demo"}, true, "--model is empty"},
		{"prior empty model", []string{"prior", "--model", "", "--data", "demo", "--ratings", "x"}, true, "--model is empty"},
		// A second --config is refused, naming the flag: it replaced the
		// first, which users of docker compose -f or kubectl -f expect
		// layered. (The files do not exist, and --index bogus: were the
		// second taken, serve and train would stop at those instead.)
		{"serve two configs", []string{"serve", "--config", "none-a.yaml", "--config", "none-b.yaml", "--index", "bogus"}, true,
			`serve: --config given twice ("none-a.yaml", then "none-b.yaml"): one file is read, not layered`},
		{"train two configs", []string{"train", "--data", "demo", "--config", "none-a.yaml", "--epochs", "-1", "--config=none-b.yaml"}, true,
			`train: --config given twice ("none-a.yaml", then "none-b.yaml")`},
		{"train the same config twice", []string{"train", "--config", "none-a.yaml", "--config", "none-a.yaml"}, true, "--config given twice"},
		// So is a second list flag: prior counted only the last --ratings
		// (the model directory does not exist: prior would stop there).
		{"prior two ratings lists", []string{"prior", "--model", "none", "--data", "demo", "--ratings", "train.dat", "--ratings", "test.dat"}, true,
			`prior: --ratings given twice ("train.dat", then "test.dat"): write one comma-separated list`},
		{"serve two origin lists", []string{"serve", "--cors-origins", "https://a.example", "--cors-origins", "https://b.example", "--index", "bogus"}, true,
			"--cors-origins given twice"},
		// And every other flag: train trained on the last --train alone.
		{"train two training files", []string{"train", "--data", "demo", "--train", "a.dat", "--epochs", "-1", "--train", "b.dat"}, true,
			`train: --train given twice ("a.dat", then "b.dat"): each flag takes one file: join the ratings into one file`},
		{"eval two test files", []string{"eval", "--model", "none", "--data", "demo", "--test", "a.dat", "-test=b.dat"}, true, "eval: --test given twice"},
		// A number named like prior's list is a number: the last wins
		// (the empty --dir, checked after, is what stops it).
		{"data synth two rating counts", []string{"data", "synth", "--ratings", "10", "--ratings", "20", "--dir", ""}, true, "data synth: --dir is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			err := run(context.Background(), append([]string{"towerrecall"}, tt.args...), nil, &out, &errOut)
			if tt.wantErr {
				if !errors.Is(err, errUsage) {
					t.Fatalf("err = %v, want errUsage (exit 2)", err)
				}
				if out.Len() != 0 || !strings.Contains(errOut.String(), tt.wantText) {
					t.Errorf("stdout %q, stderr %q: want nothing on stdout and %q on stderr", out.String(), errOut.String(), tt.wantText)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v, want nil (exit 0); stderr:\n%s", err, errOut.String())
			}
			if errOut.Len() != 0 || !strings.Contains(out.String(), tt.wantText) {
				t.Errorf("stdout %q, stderr %q: want %q on stdout and nothing on stderr", out.String(), errOut.String(), tt.wantText)
			}
		})
	}
}

// TestEveryEmptyFlagRefused gives each string flag of every command, as
// its -h lists them, an empty value ("$VAR" with VAR unset): each is a
// usage error naming the flag. Taken for the flag left out, serve --addr ""
// listened on :8080, train --valid "" carved validation from --train and
// prior --out "" rewrote --model. The environment holds a bad log level and
// a bad download URL, so that a command that took an empty flag for none
// fails otherwise, at once, instead of training or serving.
func TestEveryEmptyFlagRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	none := filepath.Join(dir, "none")
	env := []string{"TOWERRECALL_LOG_LEVEL=bogus", "TOWERRECALL_DOWNLOAD_URL=notaurl"}
	commands := []struct {
		cmd  []string
		base []string // flags that get the command past its other checks
	}{
		{[]string{"train"}, []string{"--data", "demo", "--out", filepath.Join(dir, "out")}},
		{[]string{"serve"}, []string{"--model", none, "--demo=false", "--addr", "127.0.0.1:0"}},
		{[]string{"eval"}, []string{"--model", none, "--data", "demo", "--train", none, "--test", none}},
		{[]string{"prior"}, []string{"--model", none, "--data", "demo", "--ratings", none}},
		{[]string{"data", "download"}, []string{"--dir", filepath.Join(dir, "data")}},
		{[]string{"data", "synth"}, []string{"--dir", filepath.Join(dir, "synth")}},
	}
	// "  -name type" in -h: a value flag; booleans have no type.
	flagLine := regexp.MustCompile(`(?m)^  -(\S+) (\S+)$`)
	n := 0
	for _, c := range commands {
		help, err := cli(append(slices.Clone(c.cmd), "-h")...)
		if err != nil {
			t.Fatalf("%v -h: %v", c.cmd, err)
		}
		for _, m := range flagLine.FindAllStringSubmatch(help, -1) {
			name, typ := m[1], m[2]
			if slices.Contains([]string{"int", "uint", "float", "duration"}, typ) {
				continue
			}
			n++
			for _, empty := range []string{"", " "} {
				args := slices.Clone(c.cmd)
				for i := 0; i < len(c.base); i++ { // the base without the flag: some may be given once
					if c.base[i] == "--"+name {
						i++
					} else {
						args = append(args, c.base[i])
					}
				}
				args = append(args, "--"+name, empty)
				var stdout, stderr bytes.Buffer
				err := run(context.Background(), append([]string{"towerrecall"}, args...), env, &stdout, &stderr)
				if want := "--" + name + " is empty: name "; !errors.Is(err, errUsage) || !strings.Contains(stderr.String(), want) {
					t.Errorf("%q: err = %v, stderr %q; want a usage error saying %q", args, err, stderr.String(), want)
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d string flags found in the commands' -h", n)
	}
}

// TestHelpNamesKeys: the -h of a flag that overrides a config key names
// the key its value comes from when the flag is left out, and shows no
// default of the flag's own: serve -h said "-demo (default true)", though
// under configs/production.yaml serve without --demo does not train.
func TestHelpNamesKeys(t *testing.T) {
	t.Parallel()
	tests := []struct{ cmd, flag, key string }{
		{"serve", "demo", "serve.demo, true"},
		{"serve", "model", "serve.model, var/model"},
		{"serve", "addr", "serve.addr, :8080"},
		{"serve", "index", "serve.index, auto"},
		{"serve", "data", "data.dir"},
		{"serve", "log-format", "log.format, json"},
		{"serve", "cors-origins", "serve.cors_origins, none"},
		{"train", "seed", "train.seed, 1"},
		{"train", "data", "data.dir"},
		{"train", "log-format", "log.format, json"},
	}
	for _, tt := range tests {
		help, err := cli(tt.cmd, "-h")
		if err != nil {
			t.Fatal(err)
		}
		// A flag's help: its line, then its description.
		block := regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(tt.flag) + `\b.*\n.*$`).FindString(help)
		if !strings.Contains(block, "(default: "+tt.key+")") || strings.Contains(block, "(default ") {
			t.Errorf("%s -h, --%s: %q, want it to say (default: %s) and no default of its own", tt.cmd, tt.flag, block, tt.key)
		}
	}
}

// TestExitCode: a command line not understood exits 2, as the flag
// package's ExitOnError and most Unix tools do, so a script tells a typo
// from a failed run (1); it exited 1 for both.
func TestExitCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"help", []string{"help"}, 0},
		{"train -h", []string{"train", "-h"}, 0},
		{"no command", nil, 2},
		{"unknown command", []string{"fly"}, 2},
		{"unknown flag", []string{"serve", "--bogus"}, 2},
		{"a flag's bad value", []string{"train", "--epochs", "many"}, 2},
		{"an argument", []string{"eval", "x"}, 2},
		{"data without subcommand", []string{"data"}, 2},
		{"a setting out of range", []string{"train", "--data", "demo", "--epochs", "-1"}, 1},
		{"a missing model", []string{"eval", "--model", filepath.Join(t.TempDir(), "none"), "--data", "demo"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"towerrecall"}, tt.args...), nil, &stdout, &stderr)
			if got := exitCode(err); got != tt.want {
				t.Errorf("exit code %d (err %v), want %d", got, err, tt.want)
			}
		})
	}
}

func TestFormatVersion(t *testing.T) {
	t.Parallel()
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	const rev = "40ccdcfe63007756e6abf4a6d5d8f594da6bf691"
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "towerrecall devel (no build information)"},
		{"no vcs", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"towerrecall devel (no VCS information: built outside a git checkout or with -buildvcs=false, go1.26.8)"},
		{"clean checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: vcs("vcs", "git", "vcs.revision", rev, "vcs.time", "2026-11-01T10:00:00Z", "vcs.modified", "false")},
			"towerrecall devel (commit " + rev + ", 2026-11-01T10:00:00Z, go1.26.8)"},
		{"modified tree", &debug.BuildInfo{GoVersion: "go1.26.8",
			Settings: vcs("vcs.revision", rev, "vcs.time", "2026-11-01T10:00:00Z", "vcs.modified", "true")},
			"towerrecall devel (commit " + rev + ", 2026-11-01T10:00:00Z, modified, go1.26.8)"},
		{"module version", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"},
			Settings: vcs("vcs.revision", rev, "vcs.time", "2026-11-01T10:00:00Z", "vcs.modified", "false")},
			"towerrecall v1.2.0 (commit " + rev + ", 2026-11-01T10:00:00Z, go1.26.8)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := formatVersion(tt.bi); got != tt.want {
				t.Errorf("formatVersion = %q, want %q", got, tt.want)
			}
		})
	}
}

// The console format colours its output only on a terminal: `make run`
// redirected to a file must not fill it with escape sequences.
func TestNewLoggerColor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		format    string
		tty       bool
		wantColor bool
	}{
		{"console on a terminal", "console", true, true},
		{"console into a file or pipe", "console", false, false},
		{"json on a terminal", "json", true, false},
		{"json into a file", "json", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			logger := newLogger(&buf, config.Log{Level: "info", Format: tt.format}, tt.tty)
			logger.Warn().Str("model", "var/model").Msg("hello")
			if got := strings.Contains(buf.String(), "\x1b["); got != tt.wantColor {
				t.Errorf("ANSI escapes = %v, want %v: %q", got, tt.wantColor, buf.String())
			}
			if !strings.Contains(buf.String(), "hello") {
				t.Errorf("message missing: %q", buf.String())
			}
		})
	}
}

// TestTrainRejectsBadCounts: a count flag given as a negative number is an
// error naming the setting, not a silent fallback to the config's value.
func TestTrainRejectsBadCounts(t *testing.T) {
	t.Parallel()
	for flagName, setting := range map[string]string{"--epochs": "train.epochs", "--batch-size": "train.batch_size", "--workers": "train.workers"} {
		t.Run(flagName, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "model")
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"towerrecall", "train", "--data", "demo", "--out", out, flagName, "-1"}, nil, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), setting) || !strings.Contains(err.Error(), flagName+" sets "+setting) {
				t.Fatalf("%s -1: err = %v, want one naming %s and the flag", flagName, err, setting)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s -1 wrote %s (%v)", flagName, out, err)
			}
		})
	}
}

// TestTrainReadsItsOwnEnv: train applies and checks the variables of
// what it reads (data, log), not the service's: a bad serve variable, in
// an environment shared with the service, stopped training. (--epochs -1
// stops train at validation, so that nothing trains.)
func TestTrainReadsItsOwnEnv(t *testing.T) {
	t.Parallel()
	serveOnly := []string{"TOWERRECALL_ADDR=bogus", "TOWERRECALL_INDEX=fastest", "TOWERRECALL_DEMO=perhaps", "TOWERRECALL_EXPLORER=maybe",
		"TOWERRECALL_RELOAD_POLL=soon", "TOWERRECALL_CATALOG_TOKEN=short", "TOWERRECALL_CORS_ORIGINS=*", "TOWERRECALL_TRUSTED_PROXIES=proxy",
		"TOWERRECALL_MODEL= ", "TOWERRECALL_CATALOG_JOURNAL=/nonexistent/j"}
	tests := []struct {
		name    string
		env     []string
		want    []string // in the error
		notWant string
	}{
		{"serve variables are not train's", serveOnly, []string{"train.epochs"}, "TOWERRECALL_"},
		{"nor are they checked", serveOnly, []string{"train.epochs"}, "serve."},
		{"its log variables are", append(slices.Clone(serveOnly), "TOWERRECALL_LOG_LEVEL=loud", "TOWERRECALL_LOG_FORMAT=xml"), []string{"train.epochs", "log.level", "log.format"}, "serve."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			args := []string{"towerrecall", "train", "--data", "demo", "--out", filepath.Join(t.TempDir(), "model"), "--epochs", "-1"}
			err := run(context.Background(), args, tt.env, &stdout, &stderr)
			if err == nil {
				t.Fatal("train --epochs -1 succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to name %s", err, w)
				}
			}
			if strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("err = %v, names %s", err, tt.notWant)
			}
		})
	}
	// The data variable is train's: it names the data read.
	var stdout, stderr bytes.Buffer
	args := []string{"towerrecall", "train", "--out", filepath.Join(t.TempDir(), "model")}
	err := run(context.Background(), args, []string{"TOWERRECALL_DATA_DIR=" + filepath.Join(t.TempDir(), "missing")}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "missing") || !strings.Contains(err.Error(), "data.dir") {
		t.Errorf("TOWERRECALL_DATA_DIR of a missing directory: err = %v, want it to name data.dir and the path", err)
	}
	// serve trains on it when there is no artifact, and says so too.
	args = []string{"towerrecall", "serve", "--addr", "127.0.0.1:0", "--model", filepath.Join(t.TempDir(), "model")}
	err = run(context.Background(), args, []string{"TOWERRECALL_DATA_DIR=" + filepath.Join(t.TempDir(), "missing")}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "missing") || !strings.Contains(err.Error(), "data.dir") {
		t.Errorf("serve, TOWERRECALL_DATA_DIR of a missing directory: err = %v, want it to name data.dir and the path", err)
	}
}

// TestConfigErrorNamesSource: a setting that fails validation is named
// with what set it — the flag, else the TOWERRECALL_* variable, else the
// config file (each overrides the one after) — so the bad value is found
// where it was written; only the flags were named.
func TestConfigErrorNamesSource(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	index := file("index.yaml", "serve:\n  index: fast\n")
	slow := file("slow.yaml", "serve:\n  read_timeout: 20s\n")
	distill := file("distill.yaml", "train:\n  distill: 1\n  distill_lambda: 0\n")
	model := filepath.Join(dir, "model")
	tests := []struct {
		name    string
		args    []string
		env     []string
		want    string
		notWant string
	}{
		{"the file", []string{"serve", "--config", index, "--model", model}, nil, "(" + index + " sets serve.index)", ""},
		{"a variable over the file", []string{"serve", "--config", index, "--model", model}, []string{"TOWERRECALL_INDEX=slow"}, "(TOWERRECALL_INDEX sets serve.index)", index},
		{"a flag over the variable", []string{"serve", "--config", index, "--index", "quick", "--model", model}, []string{"TOWERRECALL_INDEX=slow"}, "(--index sets serve.index)", "TOWERRECALL_INDEX sets"},
		{"a key named in another's error", []string{"serve", "--config", slow, "--model", model}, nil, "(" + slow + " sets serve.read_timeout)", ""},
		{"a variable of train", []string{"train", "--data", "demo", "--out", model}, []string{"TOWERRECALL_LOG_LEVEL=loud"}, "(TOWERRECALL_LOG_LEVEL sets log.level)", ""},
		{"a key, not its prefix", []string{"train", "--data", "demo", "--out", model, "--config", distill}, nil, "(" + distill + " sets train.distill_lambda)", "sets train.distill,"},
		{"the file and a flag", []string{"train", "--data", "demo", "--out", model, "--config", index, "--epochs", "-1"}, nil, "(--epochs sets train.epochs, " + index + " sets serve.index)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"towerrecall"}, tt.args...), tt.env, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) || tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("err = %v, want one saying %q and not %q", err, tt.want, tt.notWant)
			}
		})
	}
}

// TestEveryFlagNamesItsKey gives each flag that sets a configuration key
// a value Validate refuses: the error must say that the flag set that key
// (each command lists its flags' keys apart from the code that sets them,
// so the two lists must agree).
func TestEveryFlagNamesItsKey(t *testing.T) {
	t.Parallel()
	model := filepath.Join(t.TempDir(), "model")
	train := []string{"train", "--data", "demo", "--out", model}
	serve := []string{"serve", "--model", model}
	eval := []string{"eval", "--model", model, "--data", "demo"}
	tests := []struct {
		base      []string
		flag, val string
		key       string
	}{
		{train, "epochs", "-1", "train.epochs"},
		{train, "batch-size", "-1", "train.batch_size"},
		{train, "workers", "65", "train.workers"},
		{train, "log-format", "xml", "log.format"},
		{serve, "addr", "nowhere", "serve.addr"},
		{serve, "index", "fast", "serve.index"},
		{serve, "cors-origins", "https://app.example.com/path", "serve.cors_origins"},
		{serve, "log-format", "xml", "log.format"},
		{eval, "recent-window", "2", "baselines.recent_window"},
		{eval, "ease-lambda", "-1", "baselines.ease_lambda"},
		{eval, "new-user-history", "101", "baselines.new_user_history"},
	}
	for _, tt := range tests {
		t.Run(tt.base[0]+" --"+tt.flag, func(t *testing.T) {
			t.Parallel()
			args := append(append([]string{"towerrecall"}, tt.base...), "--"+tt.flag, tt.val)
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, nil, &stdout, &stderr)
			if want := "--" + tt.flag + " sets " + tt.key; err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want one saying %q", err, want)
			}
		})
	}
}

// TestNamesKey: a key is named whole, not as the prefix of a longer one.
func TestNamesKey(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		msg, key string
		want     bool
	}{
		{"train.distill: 11 out of range", "train.distill", true},
		{"train.distill_lambda: 0 out of range", "train.distill", false},
		{"train.distill_lambda: 0; train.distill: 11", "train.distill", true},
		{"model.user[5].name: unknown", "model.user", true},
		{"x must exceed serve.read_timeout + serve.request_timeout", "serve.read_timeout", true},
		{"ends with train.logq", "train.logq", true},
		{"train.logq_scale: -1", "train.logq", false},
		{"anything", "", false},
	} {
		if got := namesKey(tt.msg, tt.key); got != tt.want {
			t.Errorf("namesKey(%q, %q) = %v, want %v", tt.msg, tt.key, got, tt.want)
		}
	}
}

// TestConfigFileRefused: a --config that is not a configuration file is
// refused naming it, before anything is read or trained; one that never
// ends (/dev/zero) or is far larger than any configuration is not read
// into memory whole.
func TestConfigFileRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# a comment line\n"), 70000), 0o644); err != nil { // 1.1 MiB
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path, want string }{
		{"a directory", dir, "config: read " + dir + ": is a directory"},
		{"missing", filepath.Join(dir, "none.yaml"), "config: open " + filepath.Join(dir, "none.yaml")},
		{"endless", "/dev/zero", "config /dev/zero: over 1 MiB: not a configuration file"},
		{"too large", big, "config " + big + ": over 1 MiB: not a configuration file"},
	} {
		out := filepath.Join(dir, "model")
		_, err := cli("train", "--data", "demo", "--out", out, "--config", tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one saying %q", tc.name, err, tc.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s: wrote %s (%v)", tc.name, out, err)
		}
	}
}

// TestEvalRejectsBadSettings: bad eval flags fail before anything is read
// (the model directory here does not exist).
func TestEvalRejectsBadSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ flag, value, want string }{
		{"--workers", "0", "--workers"},
		{"--workers", "-3", "--workers"},
		{"--new-user-history", "-2", "--new-user-history sets baselines.new_user_history"},
		{"--recent-window", "-1", "--recent-window sets baselines.recent_window"},
	} {
		var stdout, stderr bytes.Buffer
		args := []string{"towerrecall", "eval", "--model", filepath.Join(t.TempDir(), "none"), "--data", "demo", tc.flag, tc.value}
		err := run(context.Background(), args, nil, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: err = %v, want one naming %s", tc.flag, tc.value, err, tc.want)
		}
	}
}

// TestPriorAndEvalCheckTheirData: prior and eval refuse data that is not
// the model's — another catalogue that shares its movie ids, ratings of
// users or movies the data does not have — and prior then leaves the
// artifact as it was; with the model's own data prior rewrites the prior.
func TestPriorAndEvalCheckTheirData(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a demo model")
	}
	t.Parallel()
	dir, data, ds := demoDir(t, "data")
	other := filepath.Join(dir, "other")
	title := ds.Movies[3].Title
	ds.Movies[3].Title = "Another Movie (1999)"
	if err := movielens.WriteML1M(other, ds); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(dir, "stray.dat")
	if err := os.WriteFile(stray, []byte("99999::1::4::978300760\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.dat")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ratings := filepath.Join(data, "ratings.dat")
	raw, err := os.ReadFile(ratings)
	if err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(dir, "again.dat") // the same ratings in another file
	if err := os.WriteFile(again, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "model")
	if _, err := cli("train", "--data", data, "--out", model, "--epochs", "2"); err != nil {
		t.Fatal(err)
	}
	// A model without a prior (no weight nor feature share in the grid)
	// has nothing to recount.
	noPrior := filepath.Join(dir, "noprior.yaml")
	if err := os.WriteFile(noPrior, []byte("train:\n  prior_weights: []\n  prior_feature_shares: []\n  candidates: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if _, err := cli("train", "--config", noPrior, "--data", data, "--out", plain, "--epochs", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli("prior", "--model", plain, "--data", data, "--ratings", ratings); err == nil || !strings.Contains(err.Error(), "has no popularity prior to recount") {
		t.Errorf("prior on a model without one: err = %v", err)
	}
	manifest := func() string {
		raw, err := os.ReadFile(filepath.Join(model, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	before := manifest()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"prior, another catalogue", []string{"prior", "--model", model, "--data", other, "--ratings", ratings}, "movie 4 is"},
		{"prior, stray ratings", []string{"prior", "--model", model, "--data", data, "--ratings", ratings + "," + stray}, "stray.dat:1: unknown user 99999"},
		{"prior, a rating in two files", []string{"prior", "--model", model, "--data", data, "--ratings", ratings + "," + again}, "in both " + ratings + " and " + again},
		// One file named twice is not "a rating in both X and X".
		{"prior, a file twice", []string{"prior", "--model", model, "--data", data, "--ratings", ratings + "," + filepath.Join(data, ".", "ratings.dat")}, "--ratings names " + ratings + " twice"},
		{"prior, an empty file", []string{"prior", "--model", model, "--data", data, "--ratings", ratings + "," + empty}, empty + ": no ratings in the file"},
		{"prior, no file", []string{"prior", "--model", model, "--data", data, "--ratings", " , "}, "usage"},
		// A bad --out is reported first, as train's is, not after the
		// recount (a million movies' graph takes minutes to rebuild):
		// here before the stray ratings.
		{"prior, --out a file", []string{"prior", "--model", model, "--data", data, "--ratings", ratings + "," + stray, "--out", empty}, empty + " exists and is not a directory"},
		{"eval, another catalogue", []string{"eval", "--model", model, "--data", other, "--train", ratings, "--test", ratings}, "not the catalogue the model was trained on"},
	} {
		if _, err := cli(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one saying %q", tc.name, err, tc.want)
		}
		if manifest() != before {
			t.Fatalf("%s rewrote the artifact", tc.name)
		}
	}
	// A stop asked for (main's first SIGINT) before prior writes leaves the
	// artifact as it was.
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := cliCtx(stopped, "prior", "--model", model, "--data", data, "--ratings", ratings); err == nil || !strings.Contains(err.Error(), "interrupted, nothing written") {
		t.Errorf("prior after a stop: err = %v", err)
	}
	if manifest() != before {
		t.Fatal("prior after a stop rewrote the artifact")
	}
	// So does train stopped mid-way, and it says so rather than "context canceled".
	if _, err := cliCtx(stopped, "train", "--data", "demo", "--out", model); err == nil || !strings.Contains(err.Error(), "interrupted, nothing written") {
		t.Errorf("train after a stop: err = %v", err)
	}
	if manifest() != before {
		t.Fatal("train after a stop rewrote the artifact")
	}
	// eval's inputs are good (the ratings halved), so only the stop ends it.
	lines, err := os.ReadFile(ratings)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.SplitAfter(string(lines), "\n")
	half1, half2 := filepath.Join(dir, "half1.dat"), filepath.Join(dir, "half2.dat")
	for f, part := range map[string][]string{half1: all[:len(all)/2], half2: all[len(all)/2:]} {
		if err := os.WriteFile(f, []byte(strings.Join(part, "")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	halfModel := filepath.Join(dir, "half")
	if _, err := cli("train", "--config", noPrior, "--data", data, "--train", half1, "--out", halfModel, "--epochs", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli("eval", "--model", halfModel, "--data", data, "--train", half1, "--test", half2); err != nil {
		t.Fatalf("eval of the halves: %v", err)
	}
	if _, err := cliCtx(stopped, "eval", "--model", halfModel, "--data", data, "--train", half1, "--test", half2); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("eval after a stop: err = %v", err)
	}
	out, err := cli("prior", "--model", model, "--data", data, "--ratings", ratings)
	if err != nil || !strings.Contains(out, "prior recounted from") || strings.Contains(out, "not counted") {
		t.Fatalf("prior with the model's own data: %q, %v", out, err)
	}
	// A catalogue with a movie added since training: its ratings are
	// not counted (the model has no row for it), and prior says so.
	ds.Movies[3].Title = title
	added := ds.Movies[0]
	added.ID, added.Title = 99999, "Added Since (2001)"
	ds.Movies = append(ds.Movies, added)
	newer := filepath.Join(dir, "newer")
	if err := movielens.WriteML1M(newer, ds); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "fresh.dat")
	if err := os.WriteFile(fresh, []byte("1::99999::5::978300760\n2::99999::4::978300761\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = cli("prior", "--model", model, "--data", newer, "--ratings", ratings+","+fresh)
	if err != nil || !strings.Contains(out, "not counted: 2 ratings of movies the model does not have") {
		t.Fatalf("prior with a movie added since: %q, %v", out, err)
	}
}

// TestEvalChecksItsFiles: eval refuses a test file the model was trained
// on (here the validation file, which the refit fitted), and warns when
// the ratings it removes from the candidates are not the ones the model
// was trained on, both by the artifact's histories; the model's own
// ratings pass without a word, in whatever files they come.
func TestEvalChecksItsFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a demo model")
	}
	t.Parallel()
	dir, data, ds := demoDir(t, "data")
	older, test := movielens.TimelineSplit(ds.Ratings, 0.8)
	train, valid := movielens.TimelineSplit(older, 0.85)
	half := len(test) / 2
	wider := append(slices.Clone(older), test[:half]...)
	writeRatings(t, dir, map[string][]movielens.Rating{"train.dat": train, "valid.dat": valid, "test.dat": test, "older.dat": older,
		"wider.dat": wider, "later.dat": test[half:]})
	path := func(name string) string { return filepath.Join(dir, name) }
	model := filepath.Join(dir, "model")
	if _, err := cli("train", "--data", data, "--train", path("train.dat"), "--valid", path("valid.dat"), "--out", model, "--epochs", "2"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, train, valid, test string
		want                     []string
		err                      string
	}{
		{"the model's files", "train.dat", "valid.dat", "test.dat", nil, ""},
		{"test is the validation file", "train.dat", "", "valid.dat", nil, // naming the model: --model has a default
			fmt.Sprintf("eval of the model at %s (version ", model)},
		{"test is the validation file, what", "train.dat", "", "valid.dat", nil,
			fmt.Sprintf("the test ratings repeat %d of %d (user, movie) pairs the model was trained on", len(valid), len(valid))},
		{"train and valid in one file", "older.dat", "", "test.dat", nil, ""},
		{"valid is the train file", "train.dat", "train.dat", "test.dat", nil,
			fmt.Sprintf("the validation ratings repeat %d of %d (user, movie) pairs", len(train), len(train))},
		{"valid left out", "train.dat", "", "test.dat", []string{fmt.Sprintf("trained on %d (user, movie) pairs that --train and --valid do not hold", len(valid))}, ""},
		{"a train file with more", "wider.dat", "", "later.dat", []string{fmt.Sprintf("hold %d (user, movie) pairs the model was not trained on", half)}, ""},
	} {
		args := []string{"towerrecall", "eval", "--model", model, "--data", data, "--train", path(tc.train), "--test", path(tc.test), "--ease-lambda", "0"}
		if tc.valid != "" {
			args = append(args, "--valid", path(tc.valid))
		}
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, nil, &stdout, &stderr)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want one saying %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		// The files' warnings; whether a 2-epoch demo model is above
		// popularity on these files is TestPopularityWarning's matter.
		got := strings.Count(stderr.String(), "eval: warning:") - strings.Count(stderr.String(), "is not above popularity's")
		if got != len(tc.want) {
			t.Errorf("%s: %d warnings, want %d: %q", tc.name, got, len(tc.want), stderr.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%s: stderr %q does not say %q", tc.name, stderr.String(), w)
			}
		}
	}
	// A prior refreshed with the test ratings counts them: eval says so.
	if _, err := cli("prior", "--model", model, "--data", data, "--ratings", path("older.dat")+","+path("test.dat")); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	args := []string{"towerrecall", "eval", "--model", model, "--data", data, "--train", path("train.dat"), "--valid", path("valid.dat"), "--test", path("test.dat"), "--ease-lambda", "0"}
	if err := run(context.Background(), args, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("prior counts %d ratings, more than --train and --valid hold (%d)", len(older)+len(test), len(older)); !strings.Contains(stderr.String(), want) {
		t.Errorf("eval after a prior refreshed with the test: stderr %q does not say %q", stderr.String(), want)
	}
}

// TestEvalWarnsOtherUsers: eval with data whose users file gives the
// model's users other features (same movies, so the catalogue check
// passes) says so: the metrics would silently use features the model
// neither trained on nor serves.
func TestEvalWarnsOtherUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a demo model")
	}
	t.Parallel()
	dir, data, ds := demoDir(t, "data")
	train, test := movielens.TimelineSplit(ds.Ratings, 0.8)
	writeRatings(t, dir, map[string][]movielens.Rating{"train.dat": train, "test.dat": test})
	model := filepath.Join(dir, "model")
	if _, err := cli("train", "--data", data, "--train", filepath.Join(dir, "train.dat"), "--out", model, "--epochs", "1"); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	ds.Users[4].Gender = map[string]string{"F": "M", "M": "F"}[ds.Users[4].Gender]
	ds.Users[9].Age = map[bool]int{true: 35, false: 25}[ds.Users[9].Age == 25] // an ML-1M age code
	if err := movielens.WriteML1M(other, ds); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		data string
		want string
	}{
		{data, ""},
		{other, fmt.Sprintf("eval: warning: 2 of the model's %d stored users have other features in --data %s (first: user %d)", len(ds.Users), other, ds.Users[4].ID)},
	} {
		var stdout, stderr bytes.Buffer
		args := []string{"towerrecall", "eval", "--model", model, "--data", tc.data, "--train", filepath.Join(dir, "train.dat"), "--test", filepath.Join(dir, "test.dat"), "--ease-lambda", "0"}
		if err := run(context.Background(), args, nil, &stdout, &stderr); err != nil {
			t.Fatalf("eval --data %s: %v", tc.data, err)
		}
		if got := strings.Contains(stderr.String(), "stored users"); got != (tc.want != "") || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("eval --data %s: stderr %q, want %q", tc.data, stderr.String(), tc.want)
		}
	}
}

// TestPopularityWarning: eval warns when the model is not above
// popularity, and says what a random split needs only when the model was
// chosen on views carved by time alone and the test ratings are not all
// newer than the others.
func TestPopularityWarning(t *testing.T) {
	report := func(model, pop float64) pipeline.Report {
		return pipeline.Report{Model: map[string]float64{"recall@10": model}, BaselineMetrics: pipeline.BaselineMetrics{Popularity: map[string]float64{"recall@10": pop}}}
	}
	byTime := &artifact.Selection{Valid: "carved", ValidUserRatings: 10}
	withRandom := &artifact.Selection{Valid: "carved", ValidUserRatings: 10, ValidRandomRatings: 10}
	file := &artifact.Selection{Valid: "file"}
	for _, tc := range []struct {
		name       string
		r          pipeline.Report
		sel        *artifact.Selection
		forward    bool
		warn, hint bool
	}{
		{"above popularity", report(0.2, 0.1), byTime, false, false, false},
		{"no popularity measured", report(0, 0), byTime, false, false, false},
		{"below, chosen by time", report(0.0668, 0.0689), byTime, false, true, true},
		{"level, chosen by time", report(0.1, 0.1), byTime, false, true, true},
		{"below, chosen by time, a split forward in time", report(0.05, 0.1), byTime, true, true, false},
		{"below, a random view too", report(0.05, 0.1), withRandom, false, true, false},
		{"below, a validation file", report(0.05, 0.1), file, false, true, false},
		{"below, no selection", report(0.05, 0.1), nil, false, true, false},
		{"no user scored", report(math.NaN(), math.NaN()), byTime, false, false, false},
		{"both perfect (a catalogue of one or two movies)", report(1, 1), byTime, false, false, false},
	} {
		got := popularityWarning(tc.r, tc.sel, tc.forward)
		if (got != "") != tc.warn || strings.Contains(got, "--objective random-split") != tc.hint {
			t.Errorf("%s: %q", tc.name, got)
		}
		if tc.warn && !strings.Contains(got, fmt.Sprintf("Recall@10 (%.4f) is not above popularity's (%.4f)", tc.r.Model["recall@10"], tc.r.Popularity["recall@10"])) {
			t.Errorf("%s: %q does not give both numbers", tc.name, got)
		}
	}
}

// TestNoiseNotes: eval notes the leads over baselines within two paired
// standard errors and warns of a baseline the model is below beyond them.
func TestNoiseNotes(t *testing.T) {
	lead := func(d, se float64) map[string]float64 { return map[string]float64{"recall@10": d, "recall_se@10": se} }
	r := pipeline.Report{Model: map[string]float64{"recall@10": 0.0544, "users": 676}}
	r.ModelLead = map[string]evalpkg.Metrics{
		"popularity":        lead(0.0112, 0.0033), // 3.4 standard errors: nothing to say
		"recent_popularity": lead(0.0027, 0.0017), // 1.6: noise
		"ease":              lead(-0.0413, 0.0031),
	}
	got := noiseNotes(r)
	want := []string{
		"eval: warning: the model's Recall@10 is below ease's beyond sampling noise: -0.0413 ± 0.0031 (paired standard error, 676 users)",
		"eval: note: the model's Recall@10 lead over recent_popularity, +0.0027 ± 0.0017 (paired standard error, 676 users), is within sampling noise",
	}
	if !slices.Equal(got, want) {
		t.Errorf("notes\n%q\nwant\n%q", got, want)
	}
	r.ModelLead["recent_popularity"] = lead(-0.0027, 0.0017) // behind, but within the noise
	r.ModelLead["ease"] = lead(math.NaN(), math.NaN())       // not measured
	if got := noiseNotes(r); len(got) != 1 || !strings.Contains(got[0], "lead over recent_popularity, -0.0027") {
		t.Errorf("notes %q", got)
	}
	r.Model["users"] = 1 // one user: standard errors 0, no noise to compare with
	r.ModelLead["popularity"] = lead(-0.5, 0)
	if got := noiseNotes(r); got != nil {
		t.Errorf("one user: notes %q", got)
	}
}

// TestForward: a split is forward in time when every test rating is at
// least as new as every train and valid rating.
func TestForward(t *testing.T) {
	at := func(ts ...int64) []movielens.Rating {
		rs := make([]movielens.Rating, len(ts))
		for i, x := range ts {
			rs[i].Time = x
		}
		return rs
	}
	for _, tc := range []struct {
		name               string
		test, train, valid []movielens.Rating
		want               bool
	}{
		{"after both", at(30, 40), at(10, 20), at(25), true},
		{"the same second", at(20), at(10, 20), nil, true},
		{"before valid's last", at(30), at(10), at(20, 35), false},
		{"overlapping train", at(15, 40), at(10, 20), nil, false},
		{"no test rating", nil, at(10), nil, false},
	} {
		if got := forward(tc.test, tc.train, tc.valid); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestSplitsNeedNoRatingsFile: with split files, --data needs only the
// users and movies (its ratings file is not read, nor recorded in the
// manifest): train, eval and prior all work on such a directory.
func TestSplitsNeedNoRatingsFile(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a demo model")
	}
	t.Parallel()
	dir, data, ds := demoDir(t, "catalogue")
	if err := os.Remove(filepath.Join(data, "ratings.dat")); err != nil {
		t.Fatal(err)
	}
	train, test := movielens.TimelineSplit(ds.Ratings, 0.8)
	writeRatings(t, dir, map[string][]movielens.Rating{"train.dat": train, "test.dat": test})
	model := filepath.Join(dir, "model")
	if _, err := cli("train", "--data", data, "--train", filepath.Join(dir, "train.dat"), "--out", model, "--epochs", "1"); err != nil {
		t.Fatal(err)
	}
	b, err := artifact.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Manifest.Data.Checksums[filepath.Join(data, "ratings.dat")]; ok || len(b.Manifest.Data.Checksums) != 3 {
		t.Errorf("checksums %v, want users, movies and train.dat", b.Manifest.Data.Checksums)
	}
	if _, err := cli("eval", "--model", model, "--data", data, "--train", filepath.Join(dir, "train.dat"), "--test", filepath.Join(dir, "test.dat"), "--ease-lambda", "0"); err != nil {
		t.Errorf("eval: %v", err)
	}
	if b.Prior == nil {
		t.Fatal("the demo model has no prior to recount")
	}
	if _, err := cli("prior", "--model", model, "--data", data, "--ratings", filepath.Join(dir, "train.dat")+","+filepath.Join(dir, "test.dat")); err != nil {
		t.Errorf("prior: %v", err)
	}
}

// TestPriorOnDemo: a model trained with --data demo has its prior
// recounted with --data demo too, as train, eval and serve take it.
func TestPriorOnDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a demo model")
	}
	t.Parallel()
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	if _, err := cli("train", "--data", "demo", "--out", model, "--epochs", "1"); err != nil {
		t.Fatal(err)
	}
	b, err := artifact.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	if b.Prior == nil {
		t.Fatal("the demo model has no prior (validation chose one at 1 epoch when this test was written): the test needs one")
	}
	writeRatings(t, dir, map[string][]movielens.Rating{"all.dat": movielens.Demo(1).Ratings})
	all := filepath.Join(dir, "all.dat")
	if out, err := cli("prior", "--model", model, "--data", "demo", "--ratings", all); err != nil || !strings.Contains(out, "prior recounted from") {
		t.Errorf("prior --data demo: %q, %v", out, err)
	}
	// The refreshed artifact names what it counted.
	want, err := pipeline.FileChecksums(all)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = artifact.Load(model); err != nil || !maps.Equal(b.Prior.Sources, want) {
		t.Errorf("the refreshed prior's sources %v (%v), want %v", b.Prior.Sources, err, want)
	}
}

// TestTrainKeepsSecretsOut: the manifest records the settings that made
// the model, never the serve section, whose catalogue token is a secret
// (it sits on a volume every replica reads).
func TestTrainKeepsSecretsOut(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a demo model")
	}
	t.Parallel()
	const token = "not-in-the-artifact-0123456789"
	model := filepath.Join(t.TempDir(), "model")
	env := []string{"TOWERRECALL_CATALOG_TOKEN=" + token}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"towerrecall", "train", "--data", "demo", "--out", model, "--epochs", "1"}, env, &stdout, &stderr); err != nil {
		t.Fatal(err, stderr.String())
	}
	b, err := artifact.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(model, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), token) || strings.Contains(string(b.Manifest.Config), "serve") {
		t.Fatalf("the manifest records the serve settings: %s", b.Manifest.Config)
	}
	// The manifest's config is a config file for the same model.
	got, err := config.Parse(b.Manifest.Config, "manifest.json", config.Default())
	if err != nil || got.Train.Epochs != 1 || got.Model.Dim != 8 || got.Data.Dir != "demo" {
		t.Fatalf("the manifest lost the training settings (%v): %s", err, b.Manifest.Config)
	}
}

// TestObjectiveFlagOverridesFile: --objective wins over the config file's
// train.objective (configs/train.yaml sets one), as every flag wins over
// the file.
func TestObjectiveFlagOverridesFile(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a demo model")
	}
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "train.yaml")
	if err := os.WriteFile(file, []byte("train:\n  objective: softmax\n  candidates: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ flag, want string }{{"pointwise", "pointwise"}, {"", "softmax"}} {
		model := filepath.Join(dir, "model-"+tc.want)
		args := []string{"train", "--data", "demo", "--config", file, "--out", model, "--epochs", "1"}
		if tc.flag != "" {
			args = append(args, "--objective", tc.flag)
		}
		if _, err := cli(args...); err != nil {
			t.Fatal(err)
		}
		b, err := artifact.Load(model)
		if err != nil {
			t.Fatal(err)
		}
		if b.Manifest.Objective != tc.want {
			t.Errorf("--objective %q over a file saying softmax: trained %s, want %s", tc.flag, b.Manifest.Objective, tc.want)
		}
	}
	// A file that sets a key against the flag's recipe is named with it.
	if err := os.WriteFile(file, []byte("model:\n  rating_head: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := cli("train", "--data", "demo", "--config", file, "--objective", "pointwise", "--out", filepath.Join(dir, "bad"))
	if err == nil || !strings.Contains(err.Error(), "model.rating_head") || !strings.Contains(err.Error(), "--objective pointwise starts from that recipe's preset; "+file) {
		t.Errorf("--objective pointwise over rating_head: false: err = %v", err)
	}
	// In a file, the objective is softmax or pointwise: a preset name (or a
	// misspelling) is refused naming the file, before any preset applies.
	for _, o := range []string{"random-split", "Softmax"} {
		if err := os.WriteFile(file, []byte("train:\n  objective: "+o+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := cli("train", "--data", "demo", "--config", file, "--out", filepath.Join(dir, "bad"))
		if err == nil || !strings.Contains(err.Error(), "config "+file+": train.objective is softmax or pointwise, got \""+o+"\"") {
			t.Errorf("train.objective: %s in a file: err = %v", o, err)
		}
	}
}

// data synth writes into a new or empty directory only: a second run into
// the same one is refused and leaves the first catalogue as it was.
func TestSynthKeepsExistingData(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "synth")
	synth := func(seed string) error {
		_, err := cli("data", "synth", "--dir", dir, "--movies", "20", "--users", "10", "--ratings", "50", "--seed", seed)
		return err
	}
	if err := synth("1"); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, "ratings.dat"))
	if err != nil {
		t.Fatal(err)
	}
	if err := synth("2"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second synth into %s: err = %v, want already exists", dir, err)
	}
	if after, err := os.ReadFile(filepath.Join(dir, "ratings.dat")); err != nil || !bytes.Equal(after, before) {
		t.Errorf("ratings.dat changed (%v)", err)
	}
	// A stop asked for (main's first SIGINT) before the files are written
	// writes none.
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	other := filepath.Join(t.TempDir(), "stopped")
	if _, err := cliCtx(stopped, "data", "synth", "--dir", other, "--movies", "20", "--users", "10", "--ratings", "50"); err == nil || !strings.Contains(err.Error(), "interrupted, nothing written") {
		t.Errorf("synth after a stop: err = %v", err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("synth after a stop left %s (%v)", other, err)
	}
}

// TestTrainSplitFiles: a split file is read once (a pipe works, and its
// checksum is recorded under its path), and a --valid or --test that is
// given but empty or missing is an error naming it, never taken for no
// file (demo data included).
func TestTrainSplitFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a demo model")
	}
	t.Parallel()
	dir, data, _ := demoDir(t, "data")
	raw, err := os.ReadFile(filepath.Join(data, "ratings.dat"))
	if err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.dat")
	if err := os.WriteFile(empty, []byte("\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"empty valid", []string{"--data", data, "--valid", empty}, "--valid " + empty + ": no ratings"},
		{"valid is a directory", []string{"--data", data, "--valid", dir}, "--valid " + dir + " is a directory: pass a ratings file"},
		{"empty test", []string{"--data", data, "--test", empty}, "--test " + empty + ": no ratings"},
		{"missing valid, demo data", []string{"--data", "demo", "--valid", filepath.Join(dir, "none.dat")}, "--valid"},
		{"valid is the train file", []string{"--data", data, "--valid", filepath.Join(data, "ratings.dat")}, "validation ratings repeat"},
		{"test is the train file", []string{"--data", data, "--test", filepath.Join(data, "ratings.dat")}, "test ratings repeat"},
	} {
		out := filepath.Join(dir, "out-"+strings.ReplaceAll(tc.name, " ", "-"))
		if _, err := cli(append([]string{"train", "--out", out, "--epochs", "1"}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one saying %q", tc.name, err, tc.want)
		}
	}

	// The training split through a pipe, as <(...) passes it.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		_, _ = w.Write(raw)
		w.Close()
	}()
	pipe := fmt.Sprintf("/dev/fd/%d", r.Fd())
	out := filepath.Join(dir, "piped")
	if _, err := cli("train", "--data", data, "--train", pipe, "--out", out, "--epochs", "1"); err != nil {
		t.Fatalf("train from a pipe: %v", err)
	}
	b, err := artifact.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if got := b.Manifest.Data.Checksums[pipe]; got != hex.EncodeToString(sum[:]) {
		t.Errorf("checksum of %s = %q, want the piped file's; all: %v", pipe, got, b.Manifest.Data.Checksums)
	}
	if _, ok := b.Manifest.Data.Checksums[filepath.Join(data, "ratings.dat")]; ok {
		t.Errorf("the data directory's ratings.dat, not read with --train, is recorded: %v", b.Manifest.Data.Checksums)
	}
}

// TestSplitFlagDirectorySuggestsItsFile: a directory given for a split
// flag is refused with the file that flag takes in it: the flag's own
// split file (--test's test.dat, not train.dat), or the ratings file of a
// MovieLens directory.
func TestSplitFlagDirectorySuggestsItsFile(t *testing.T) {
	t.Parallel()
	dir, data, _ := demoDir(t, "data")
	splits := filepath.Join(dir, "splits")
	if err := os.Mkdir(splits, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flag, dir, want string
	}{
		{"--train", splits, filepath.Join(splits, "train.dat")},
		{"--valid", splits, filepath.Join(splits, "valid.dat")},
		{"--test", splits, filepath.Join(splits, "test.dat")},
		{"--test", data, filepath.Join(data, "ratings.dat")},
	} {
		out := filepath.Join(dir, "out")
		_, err := cli("train", "--data", data, tc.flag, tc.dir, "--out", out, "--epochs", "1")
		want := tc.flag + " " + tc.dir + " is a directory: pass a ratings file (such as " + tc.want + ")"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s %s: err = %v, want one saying %q", tc.flag, tc.dir, err, want)
		}
	}
}

// demoDir writes the demo dataset (ML-1M layout) into a new directory
// name under a test's temporary directory dir.
func demoDir(t *testing.T, name string) (dir, data string, ds *movielens.Dataset) {
	t.Helper()
	dir = t.TempDir()
	data = filepath.Join(dir, name)
	ds = movielens.Demo(1)
	if err := movielens.WriteML1M(data, ds); err != nil {
		t.Fatal(err)
	}
	return dir, data, ds
}

// writeRatings writes each file name → ratings into dir, in the ML-1M
// ratings format.
func writeRatings(t *testing.T, dir string, files map[string][]movielens.Rating) {
	t.Helper()
	for name, rs := range files {
		var b strings.Builder
		for _, r := range rs {
			fmt.Fprintf(&b, "%d::%d::%d::%d\n", r.User, r.Movie, int(r.Value), r.Time)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// cli runs the command line in-process with an empty environment and
// returns its standard output.
func cli(args ...string) (string, error) { return cliCtx(context.Background(), args...) }

// cliCtx is cli with the context main's signal handling would pass.
func cliCtx(ctx context.Context, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	err := run(ctx, append([]string{"towerrecall"}, args...), nil, &stdout, &stderr)
	return stdout.String(), err
}

// TestDemoWithSplitFiles: --data demo with a --train file uses that file
// alone: the demo's own test split does not stay behind (it repeated the
// file's ratings, or scored a split nobody asked for).
func TestDemoWithSplitFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a demo model")
	}
	t.Parallel()
	dir := t.TempDir()
	writeRatings(t, dir, map[string][]movielens.Rating{"all.dat": movielens.Demo(1).Ratings})
	model := filepath.Join(dir, "model")
	if _, err := cli("train", "--data", "demo", "--train", filepath.Join(dir, "all.dat"), "--out", model, "--epochs", "1"); err != nil {
		t.Fatal(err)
	}
	b, err := artifact.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Manifest.Metrics) != 0 {
		t.Errorf("metrics %v without a --test file", b.Manifest.Metrics)
	}
}

// TestWithFlags: a configuration error says which flag set a key only
// when it names that key.
func TestWithFlags(t *testing.T) {
	t.Parallel()
	flags := map[string]string{"epochs": "train.epochs", "seed": "train.seed"}
	given := map[string]bool{"epochs": true, "seed": true}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{invalidConfig{error: errors.New("train.epochs: -3 is not ≥ 1")}, "train.epochs: -3 is not ≥ 1\n(--epochs sets train.epochs)"},
		{invalidConfig{error: errors.New(`TOWERRECALL_DEMO: "maybe" is not a boolean`)}, `TOWERRECALL_DEMO: "maybe" is not a boolean`},
		// A file's value that the flag would have replaced: not the flag's doing.
		{errors.New("config f.yaml: line 2: train.epochs: abc is not an integer"), "config f.yaml: line 2: train.epochs: abc is not an integer"},
	} {
		if got := withFlags(tc.err, given, flags).Error(); got != tc.want {
			t.Errorf("withFlags(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
	if withFlags(nil, given, flags) != nil {
		t.Error("withFlags(nil) is not nil")
	}
}

// cancelAt is a log writer that cancels a context when the n-th line
// containing match is written: a signal that arrives at that moment.
type cancelAt struct {
	match  string
	n      int
	cancel context.CancelFunc
}

func (c *cancelAt) Write(p []byte) (int, error) {
	if c.n -= strings.Count(string(p), c.match); c.n == 0 {
		c.cancel()
	}
	return len(p), nil
}

// TestTrainStopsLate: a stop asked for after the last epoch (main's first
// SIGINT while the index is built and the artifact assembled) exits with
// an error and leaves the previous artifact as it was.
func TestTrainStopsLate(t *testing.T) {
	if testing.Short() {
		t.Skip("trains demo models")
	}
	t.Parallel()
	dir := t.TempDir()
	model, cfg := filepath.Join(dir, "model"), filepath.Join(dir, "train.yaml")
	if err := os.WriteFile(cfg, []byte("train:\n  candidates: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Without a test file, so that no evaluation (which checks the context
	// too) runs after the last epoch.
	writeRatings(t, dir, map[string][]movielens.Rating{"all.dat": movielens.Demo(1).Ratings})
	args := []string{"train", "--data", "demo", "--train", filepath.Join(dir, "all.dat"), "--config", cfg, "--out", model, "--epochs", "1", "--log-format", "json"}
	if _, err := cli(args...); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(model, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	// One epoch selects, one refits: the second epoch line is the last.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &cancelAt{match: `"message":"epoch"`, n: 2, cancel: cancel}
	err = run(ctx, append([]string{"towerrecall"}, args...), nil, io.Discard, logs)
	if err == nil || !errors.Is(err, context.Canceled) || logs.n != 0 {
		t.Fatalf("train stopped after its last epoch: err = %v (epoch lines left to see: %d)", err, logs.n)
	}
	if after, err := os.ReadFile(filepath.Join(model, "manifest.json")); err != nil || !bytes.Equal(after, before) {
		t.Errorf("the artifact was replaced (%v)", err)
	}
}

// TestProgressBarPerRun: each training run (a recipe, then the refit)
// counts its steps from 1; the bar starts again at its own total, not at
// the first run's. A log line goes above the bar: the bar is cleared, the
// line written, the bar drawn again.
func TestProgressBarPerRun(t *testing.T) {
	var b bytes.Buffer
	p := &progressOut{w: &b}
	for d := 1; d <= 3; d++ {
		p.step(d, 3)
	}
	b.Reset()
	p.step(1, 5)
	if !strings.Contains(b.String(), "1/5") {
		t.Fatalf("second run's first step drew %q, want 1/5", b.String())
	}
	b.Reset()
	if _, err := p.Write([]byte("a log line\n")); err != nil {
		t.Fatal(err)
	}
	before, after, ok := strings.Cut(b.String(), "a log line\n")
	if !ok || !strings.HasSuffix(before, "\r") || !strings.Contains(after, "1/5") {
		t.Errorf("a log line with the bar drawn wrote %q, want the bar cleared, the line, the bar again", b.String())
	}
}

// TestRollbackCommand: rollback puts the replaced artifact back and says
// where the other went; with nothing to roll back to it fails, saying so.
func TestRollbackCommand(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "model")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"towerrecall", "rollback", "--model", dir}, nil, &stdout, &stderr)
	// The hint names both commands that keep one: after a daily prior
	// refresh, the previous is the artifact before the refresh.
	if err == nil || !strings.Contains(err.Error(), "no previous artifact") || !strings.Contains(err.Error(), "train and prior keep") {
		t.Fatalf("rollback with nothing saved: %v", err)
	}
	// Two trainings: the second keeps the first beside it.
	var versions []string
	for seed := range 2 {
		args := []string{"towerrecall", "train", "--data", "demo", "--out", dir, "--epochs", "1", "--seed", fmt.Sprint(seed + 1)}
		if err := run(context.Background(), args, nil, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
		b, err := artifact.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, b.Manifest.Version)
	}
	if b, err := artifact.Load(dir + artifact.PreviousSuffix); err != nil || b.Manifest.Version != versions[0] {
		t.Fatalf("the second train kept %v, %v beside the model; want version %s", b, err, versions[0])
	}
	stdout.Reset()
	if err := run(context.Background(), []string{"towerrecall", "rollback", "--model", dir}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("rollback: %v\n%s", err, stderr.String())
	}
	if b, err := artifact.Load(dir); err != nil || b.Manifest.Version != versions[0] {
		t.Fatalf("after rollback: %v, %v; want %s", b, err, versions[0])
	}
	if out := stdout.String(); !strings.Contains(out, "to version "+versions[0]) || !strings.Contains(out, "(version "+versions[1]+") is now "+dir+".previous") {
		t.Errorf("rollback said %q", out)
	}
	if b, err := artifact.Load(dir + artifact.PreviousSuffix); err != nil || b.Manifest.Version != versions[1] {
		t.Errorf("after rollback the previous is %v, %v; want version %s", b, err, versions[1])
	}
	// Through a symbolic link (a deployment's "current"), the message names
	// the directories that changed.
	link := filepath.Join(filepath.Dir(dir), "current")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if err := run(context.Background(), []string{"towerrecall", "rollback", "--model", link}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("rollback through a link: %v", err)
	}
	if out := stdout.String(); !strings.Contains(out, "rolled back "+dir+" to version "+versions[1]) || !strings.Contains(out, "is now "+dir+".previous") {
		t.Errorf("rollback through a link said %q", out)
	}
}

// TestSamePath: prior keeps an artifact published while it recounted only
// if it knows --out is --model, however either is spelled.
func TestSamePath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	other := filepath.Join(dir, "other")
	for _, d := range []string{model, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(model, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{model, model, true},
		{model + "/", model, true},
		{dir + "/./model", model, true},
		{link, model, true},
		{other, model, false},
		{filepath.Join(dir, "missing"), model, false},
		{filepath.Join(dir, "missing/"), filepath.Join(dir, "missing"), true},
	} {
		if got := samePath(tc.a, tc.b); got != tc.same {
			t.Errorf("samePath(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

// TestRepeatedFlag: values that look like flags are values, and the flags
// end where the flag package stops.
func TestRepeatedFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args                []string
		name, first, second string
	}{
		{[]string{"--train", "a", "--valid", "b"}, "", "", ""},
		{[]string{"--train", "--valid", "--valid", "b"}, "", "", ""}, // --train's value is "--valid"
		{[]string{"--progress", "--train", "a", "-train=b"}, "train", "a", "b"},
		{[]string{"--progress=false", "--progress", "--valid=", "--valid", "v"}, "valid", "", "v"},
		{[]string{"--seed", "1", "--seed", "2"}, "", "", ""}, // a scalar: the last wins
		{[]string{"--train", "a", "--", "--train", "b"}, "", "", ""},
		{[]string{"--train", "a", "-"}, "", "", ""},
		{[]string{"--train", "a", "extra", "--train", "b"}, "", "", ""},
		{[]string{"--train="}, "", "", ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.String("train", "", "")
		fs.String("valid", "", "")
		fs.Bool("progress", true, "")
		fs.Uint64("seed", 1, "")
		name, first, second := repeatedFlag(fs, tc.args)
		if name != tc.name || first != tc.first || second != tc.second {
			t.Errorf("%q: %q %q %q, want %q %q %q", tc.args, name, first, second, tc.name, tc.first, tc.second)
		}
	}
}

// TestLogTimeHasMilliseconds: a JSON log line's time has milliseconds.
// At whole seconds (zerolog's default), a drain's "draining", "shutting
// down HTTP" and "stopped", or a reload and the requests around it, shared
// one timestamp, and a log pipeline that orders by the time field shuffled
// them.
func TestLogTimeHasMilliseconds(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := newLogger(&buf, config.Log{Level: "info", Format: "json"}, false)
	logger.Info().Msg("hello")
	var line struct{ Time string }
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %q", err, buf.String())
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$`).MatchString(line.Time) {
		t.Errorf("time %q, want RFC 3339 with milliseconds (2006-01-02T15:04:05.000Z)", line.Time)
	}
	if _, err := time.Parse(time.RFC3339, line.Time); err != nil {
		t.Errorf("time %q does not parse as RFC 3339: %v", line.Time, err)
	}
}
