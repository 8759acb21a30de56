// Command towerrecall trains a two-tower recall model on MovieLens, evaluates
// it, and serves recall over HTTP. See README.md.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal asks for a clean stop; once it has, the default
	// action comes back, so a second one ends the process at once.
	context.AfterFunc(ctx, stop)
	if err := run(ctx, os.Args, os.Environ(), os.Stdout, os.Stderr); err != nil {
		reportError(os.Stderr, err)
		os.Exit(exitCode(err))
	}
}

// errUsage is a command line that was not understood (an unknown command
// or flag, a flag's bad value, a missing one): its message and the usage
// are on stderr already, and the exit code is 2.
var errUsage = errors.New("usage")

// exitCode is the process's exit status for run's error: 2 for a command
// line not understood, as the flag package's ExitOnError and most Unix
// tools exit, so a script can tell a typo from a run that failed (1).
func exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	return 1
}

// reportError writes the error that ends the program to stderr, unless it
// is a usage error (its message is written already) or one serve or train
// has written to its log (see loggedError).
func reportError(stderr io.Writer, err error) {
	var logged loggedError
	if errors.Is(err, errUsage) || errors.As(err, &logged) {
		return
	}
	fmt.Fprintln(stderr, "towerrecall:", err)
}

// loggedError is an error already written to the log as a JSON (or
// console) line: printed again in plain text, it would break the JSON
// stream a log shipper parses.
type loggedError struct{ err error }

func (e loggedError) Error() string { return e.err.Error() }
func (e loggedError) Unwrap() error { return e.err }

// logEnd logs *err, the error that ends a command whose logger is up, at
// error level with msg, and marks it logged; deferred once the logger
// exists.
func logEnd(logger zerolog.Logger, err *error, msg string) {
	if *err == nil || errors.As(*err, new(loggedError)) {
		return
	}
	logger.Error().Err(*err).Msg(msg)
	*err = loggedError{*err}
}

// interrupted is the error of a command whose context a signal ended
// (main's first SIGINT or SIGTERM): checked before a command writes its
// output, so a stop asked for late never replaces a good artifact or
// dataset.
func interrupted(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted, nothing written: %w", err)
	}
	return nil
}

const usage = `towerrecall — two-tower recall for MovieLens

Usage:
  towerrecall data download [--dataset ml-100k|ml-1m] [--dir data]
  towerrecall data synth --dir DIR --movies N --users N --ratings N [--seed S]
  towerrecall train  [--data DIR] [--train FILE] [--valid FILE] [--test FILE] [--out var/model]
                     [--objective softmax|pointwise] [--seed N] [--config configs/train.yaml]
  towerrecall eval   [--model var/model] --data DIR --train FILE [--valid FILE] --test FILE
                     [--recent-window 0.1] [--ease-lambda 500] [--new-user-history 5] [--workers 2]
  towerrecall prior  [--model var/model] --data DIR --ratings FILE[,FILE] [--out DIR]
  towerrecall rollback [--model var/model]
  towerrecall serve  [--model DIR] [--addr HOST:PORT] [--config FILE] [--index auto|exact|hnsw]
  towerrecall version

Run "towerrecall COMMAND -h" for a command's flags.
`

// printWarnings writes each warning on its own line of stderr.
func printWarnings(stderr io.Writer, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintln(stderr, "towerrecall: warning:", w)
	}
}

// run is the whole program; main only supplies the process's environment
// (env: KEY=value entries, as os.Environ returns them).
func run(ctx context.Context, args []string, env []string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	getenv := func(name string) string {
		v := ""
		for _, kv := range env { // the last entry wins, as in os.Getenv
			if k, val, ok := strings.Cut(kv, "="); ok && k == name {
				v = val
			}
		}
		return v
	}
	cmd, rest := args[1], args[2:]
	if cmd == "help" && len(rest) > 0 {
		// "help CMD" is "CMD -h", as go help build.
		if len(rest) > 1 {
			fmt.Fprintf(stderr, "unexpected argument %q\n\n%s", rest[1], usage)
			return errUsage
		}
		cmd, rest = rest[0], []string{"-h"}
	}
	unknown := config.UnknownEnv(env)
	if cmd != "serve" { // serve logs them
		printWarnings(stderr, unknown)
	}
	var err error
	switch cmd {
	case "data":
		err = runData(ctx, rest, getenv, stdout, stderr)
	case "train":
		err = runTrain(ctx, rest, getenv, stdout, stderr)
	case "eval":
		err = runEval(ctx, rest, getenv, stdout, stderr)
	case "prior":
		err = runPrior(ctx, rest, getenv, stdout, stderr)
	case "rollback":
		err = runRollback(rest, stdout, stderr)
	case "serve":
		err = runServe(ctx, rest, getenv, unknown, stdout, stderr)
	case "version":
		if len(rest) == 1 && (rest[0] == "-h" || rest[0] == "-help" || rest[0] == "--help") {
			fmt.Fprintln(stdout, "Usage:\n  towerrecall version\n\nPrints the module version, VCS revision and commit time.")
			return nil
		}
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "unexpected argument %q\n\n%s", rest[0], usage)
			return errUsage
		}
		fmt.Fprintln(stdout, version())
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil // the help that was asked for is on stdout
	}
	return err
}

// parseFlags parses a command's flags. Help that was asked for (-h,
// --help) goes to stdout and is reported as flag.ErrHelp, which run turns
// into success; a bad flag's message and the usage go to stderr as
// errUsage (exit 2). No command takes arguments besides its flags, and the
// flag package stops at the first one (every flag after `train typo --out
// m` would be dropped), so one is refused; so is a flag given empty (see
// emptyFlag).
func parseFlags(fs *flag.FlagSet, synopsis string, args []string, stdout, stderr io.Writer) error {
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	fs.Usage = func() {
		fmt.Fprintf(&buf, "Usage:\n  %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	err := fs.Parse(args)
	if err == nil && fs.NArg() > 0 {
		if name, ok := boolFlagBefore(fs, args); ok {
			fmt.Fprintf(&buf, "unexpected argument %q: --%s takes its value after =: write --%s=%s\n", fs.Arg(0), name, name, fs.Arg(0))
		} else {
			fmt.Fprintf(&buf, "unexpected argument %q (flags are written --name value)\n", fs.Arg(0))
		}
		fs.Usage()
		err = errors.New("unexpected argument")
	}
	if err == nil {
		if name, first, second := repeatedFlag(fs, args); name != "" {
			fmt.Fprintf(&buf, "%s: --%s given twice (%q, then %q): %s\n", fs.Name(), name, first, second, onceHint(name))
			err = errors.New("repeated flag")
		}
	}
	if err == nil {
		if name := emptyFlag(fs); name != "" {
			fmt.Fprintf(&buf, "%s: --%s is empty: name %s, or leave the flag out\n", fs.Name(), name, flagNoun(name))
			err = errors.New("empty flag")
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		_, _ = stdout.Write(buf.Bytes())
		return flag.ErrHelp
	default:
		_, _ = stderr.Write(buf.Bytes())
		return errUsage
	}
}

// boolFlagBefore reports whether the first argument fs left over is a
// boolean value written after a boolean flag with a space (--demo false):
// the flag package sets such a flag to true and stops there. It returns
// the flag's name.
func boolFlagBefore(fs *flag.FlagSet, args []string) (string, bool) {
	i := len(args) - fs.NArg() - 1
	if i < 0 || !strings.HasPrefix(args[i], "-") || strings.Contains(args[i], "=") {
		return "", false
	}
	name := strings.TrimLeft(args[i], "-")
	f := fs.Lookup(name)
	if f == nil {
		return "", false
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
		return "", false
	}
	if _, err := strconv.ParseBool(fs.Arg(0)); err != nil {
		return "", false
	}
	return name, true
}

// emptyFlag returns the name of the first flag of fs given an empty (or
// blank) value, "" if none was: --config "$CFG" or --valid "$VALID" with
// the variable unset. Left out, such a flag has a default or means "none";
// given empty, it was taken for that without a word (serve --addr ""
// listened on :8080, train --valid "" carved validation from --train,
// prior --out "" rewrote --model). No flag of any command has a meaning
// for the empty value, so every one is refused; numbers and booleans
// never print empty.
func emptyFlag(fs *flag.FlagSet) string {
	name := ""
	fs.Visit(func(f *flag.Flag) {
		if name == "" && strings.TrimSpace(f.Value.String()) == "" {
			name = f.Name
		}
	})
	return name
}

// flagNoun is what a flag named name names, for emptyFlag's message.
func flagNoun(name string) string {
	switch name {
	case "config", "train", "valid", "test":
		return "a file"
	case "ratings":
		return "a file or a comma-separated list of files"
	case "model", "out", "dir":
		return "a directory"
	case "data":
		return `a directory, or "demo"`
	case "addr":
		return "a listen address such as :8080 or 127.0.0.1:8080"
	}
	return "a value"
}

// repeatedFlag returns the first file or list flag (onceHint) that args,
// parsed by fs without error, give twice, and its two values. The flag
// package keeps the last, which for these is not what users mean: train
// --train a.dat --train b.dat trained on b.dat alone, a second --config
// replaced the first where docker compose -f and kubectl -f layer files,
// and a second --ratings list dropped the first. A repeated scalar flag
// (--seed, --addr) keeps the last, as scripts that override defaults
// expect.
func repeatedFlag(fs *flag.FlagSet, args []string) (name, first, second string) {
	seen := map[string]string{}
	for i := 0; i < len(args); i++ {
		if args[i] == "--" || !strings.HasPrefix(args[i], "-") || args[i] == "-" {
			return "", "", "" // the flags end here
		}
		n, v, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !hasValue {
			if b, ok := fs.Lookup(n).Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				continue
			}
			if i++; i < len(args) {
				v = args[i]
			}
		}
		if onceHint(n) == "" || !textFlag(fs.Lookup(n)) {
			continue
		}
		if prev, ok := seen[n]; ok {
			return n, prev, v
		}
		seen[n] = v
	}
	return "", "", ""
}

// textFlag reports whether f takes text, as a file or a list flag does; a
// number named like one (data synth --ratings N, a count) is a scalar.
func textFlag(f *flag.Flag) bool {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return true
	}
	_, text := g.Get().(string)
	return text
}

// onceHint says what to do instead of giving the flag name twice, "" for
// a flag that may be repeated (the last value wins).
func onceHint(name string) string {
	switch name {
	case "config":
		return "one file is read, not layered: put the settings in one file (the environment and flags override it)"
	case "ratings", "cors-origins":
		return "write one comma-separated list"
	case "train", "valid", "test":
		return "each flag takes one file: join the ratings into one file"
	}
	return ""
}
