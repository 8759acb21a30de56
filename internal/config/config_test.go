package config

import (
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDefaultsValidate(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]Config{"default": Default(), "reference": Reference()} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Model.Dim = 0
	c.Train.Objective = "bpr"
	c.Train.BatchSize = 0
	c.Serve.Index = "faiss"
	c.Model.User = append(c.Model.User, Feature{Name: "shoe_size", Dim: 3}, Feature{Name: "history", Dim: 0})
	c.Train.HistoryFolds = 1
	c.Train.ColdLogQ = 5.5
	c.Train.UniformNegatives = -1
	c.Train.LRSchedule = "step"
	c.Train.HistoryDropout = 0.95
	c.Train.UserWeight = 1.5
	c.Train.LogQScale = -1
	c.Train.Workers = 65 // the trainer's own limit is 64
	c.Serve.HNSWM = 257  // the index's base-layer degree, 2M, is at most 512
	// Below 1 as a float64, but 1 as prior.json stores it (float32).
	c.Train.PriorFeatureShares = []float64{0.5, 0.99999999}
	// The write deadline covers the upload too.
	c.Serve.WriteTimeout = c.Serve.ReadTimeout + c.Serve.RequestTimeout
	c.Serve.MaxHeaderBytes = -1
	c.Serve.AccessLogEvery = 0
	c.Serve.Model = ""
	// EASE's λ so small that XᵀX + λI is not positive definite in float64.
	c.Baselines.EASELambda = 1e-15
	c.Train.Distill, c.Train.DistillLambda = 1, 0.001
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken config")
	}
	for _, want := range []string{"model.dim", "train.objective", "train.batch_size", "serve.index", "model.user[5].name",
		"model.user[6].dim", "train.history_folds", "train.cold_logq", "train.uniform_negatives", "train.lr_schedule", "train.history_dropout",
		"train.user_weight", "train.logq_scale", "train.workers", "serve.hnsw_m", "train.prior_feature_shares[1]", "serve.write_timeout", "serve.max_header_bytes", "serve.access_log_every", "serve.model", "baselines.ease_lambda", "train.distill_lambda"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}

// TestNonFiniteRefused sets every number of the config, one at a time, to
// NaN and to +Inf (YAML .nan, .inf): Validate must name it. Range checks
// written as x < lo || x > hi let NaN through (serve.min_recall: .nan
// started and failed every self-check; train.recency: .nan trained with
// recency off and dropped the manifest's config record), and once only
// (not also as out of range).
func TestNonFiniteRefused(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Train.PriorWeights = []float64{1}
	n := 0
	var visit func(v reflect.Value, path string)
	visit = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
				visit(v.Field(i), strings.TrimPrefix(path+"."+name, "."))
			}
		case reflect.Slice:
			if v.Len() > 0 {
				visit(v.Index(0), path+"[0]")
			}
		case reflect.Float32, reflect.Float64:
			n++
			old := v.Float()
			for _, bad := range []float64{math.NaN(), math.Inf(1)} {
				v.SetFloat(bad)
				err := c.Validate()
				if err == nil || !strings.Contains(err.Error(), path+": ") {
					t.Errorf("%s = %g: Validate = %v, want an error naming it", path, bad, err)
					continue
				}
				if lines := strings.Count("\n"+err.Error(), "\n"+path+": "); lines != 1 {
					t.Errorf("%s = %g: named on %d lines, want one:\n%v", path, bad, lines, err)
				}
			}
			v.SetFloat(old)
		}
	}
	visit(reflect.ValueOf(&c).Elem(), "")
	if n < 20 {
		t.Fatalf("only %d numbers visited", n)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the restored default: %v", err)
	}
}

func TestReloadPollFloor(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		poll time.Duration
		ok   bool
	}{{0, true}, {100 * time.Millisecond, true}, {2 * time.Second, true}, {time.Nanosecond, false}, {99 * time.Millisecond, false}, {-time.Second, false}} {
		c := Default()
		c.Serve.ReloadPoll = tt.poll
		if err := c.Validate(); (err == nil) != tt.ok {
			t.Errorf("reload_poll %v: Validate = %v", tt.poll, err)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "empty file keeps defaults", yaml: "", check: func(t *testing.T, c Config) {
			if c.Train.Epochs != Default().Train.Epochs {
				t.Errorf("epochs %d", c.Train.Epochs)
			}
		}},
		{name: "overrides", yaml: "train:\n  epochs: 3\nserve:\n  addr: 127.0.0.1:0\n  reload_poll: 2s\n", check: func(t *testing.T, c Config) {
			if c.Train.Epochs != 3 || c.Serve.Addr != "127.0.0.1:0" || c.Serve.ReloadPoll != 2*time.Second {
				t.Errorf("got %+v %+v", c.Train, c.Serve)
			}
			if c.Train.BatchSize != Default().Train.BatchSize {
				t.Errorf("unset key changed: batch %d", c.Train.BatchSize)
			}
		}},
		{name: "training options", yaml: "train:\n  lr_schedule: cosine\n  history_dropout: 0.3\n  user_weight: 0.5\n  logq_scale: 1.2\n",
			check: func(t *testing.T, c Config) {
				if c.Train.LRSchedule != "cosine" || c.Train.HistoryDropout != 0.3 || c.Train.UserWeight != 0.5 || c.Train.LogQScale != 1.2 {
					t.Errorf("got %+v", c.Train)
				}
				if err := c.Validate(); err != nil {
					t.Error(err)
				}
			}},
		{name: "unknown key", yaml: "train:\n  epoch: 3\n", wantErr: "line 2: unknown key train.epoch"},
		// yaml.v3 empties a list left blank (no hidden layer, no prior):
		// refused, where a blank number keeps its default.
		{name: "zero for a duration", yaml: "train:\n  search_budget: 0\n", wantErr: "line 2: train.search_budget: 0 is not a duration (write it with its unit, such as 0s or 1s)"},
		{name: "a blank list", yaml: "model:\n  hidden:\n  dim: 8\ntrain:\n  prior_weights: ~\n",
			wantErr: "line 2: model.hidden: is blank: write [] for an empty list, or leave the key out for the default\nline 5: train.prior_weights: is blank"},
		// Every unknown key at once, before any value's type: a key's typo
		// can make another value look wrong.
		{name: "unknown keys before a wrong type", yaml: "serve:\n  adr: x\n  body_limit: 1MiB\n  modle: y\nmodel:\n  user:\n    - {name: user_id, dims: 3}\n",
			wantErr: "line 2: unknown key serve.adr\nline 4: unknown key serve.modle\nline 7: unknown key model.user[0].dims"},
		{name: "every wrong type", yaml: "serve:\n  body_limit: 1MiB\n  demo: maybe\n", wantErr: "line 2: serve.body_limit: 1MiB is not an integer\nline 3: serve.demo: maybe is not true or false"},
		{name: "wrong type", yaml: "train:\n  epochs: many\n", wantErr: "line 2"},
		// yaml.v3 truncates a decimal into an integer: refused, naming
		// the line and the key.
		{name: "decimal for an integer", yaml: "train:\n  epochs: 2.5\n", wantErr: "line 2: train.epochs: 2.5 is not an integer"},
		{name: "decimal for an unsigned integer", yaml: "train:\n  seed: 1.5\n", wantErr: "train.seed: 1.5 is not an integer"},
		{name: "a quoted integer", yaml: "train:\n  epochs: \"3\"\n", wantErr: `line 2: train.epochs: "3" (a string) is not an integer`},
		{name: "a negative unsigned integer", yaml: "train:\n  seed: -1\n", wantErr: "line 2: train.seed: -1 is negative"},
		{name: "an integer out of range", yaml: "train:\n  seed: 99999999999999999999999\n", wantErr: "line 2: train.seed: 99999999999999999999999 is out of range"},
		{name: "words for an integer", yaml: "serve:\n  body_limit: 1MiB\n", wantErr: "line 2: serve.body_limit: 1MiB is not an integer"},
		{name: "number for a duration", yaml: "serve: {request_timeout: 1}\n", wantErr: "line 1: serve.request_timeout: 1 is not a duration (write it with its unit"},
		{name: "words for a number", yaml: "train:\n  learning_rate: fast\n", wantErr: "line 2: train.learning_rate: fast is not a number"},
		{name: "words for a boolean", yaml: "serve:\n  demo: maybe\n", wantErr: "line 2: serve.demo: maybe is not true or false"},
		{name: "a quoted YAML 1.1 boolean", yaml: "serve:\n  demo: \"no\"\n", wantErr: `line 2: serve.demo: "no" (a string) is not true or false`},
		{name: "a YAML 1.1 boolean yaml.v3 does not read", yaml: "serve:\n  demo: yEs\n", wantErr: "line 2: serve.demo: yEs is not true or false"},
		{name: "a YAML 1.1 boolean", yaml: "serve:\n  demo: Off\n  explorer: YES\n", check: func(t *testing.T, c Config) {
			if c.Serve.Demo || !c.Serve.Explorer {
				t.Errorf("demo %v, explorer %v; want false, true", c.Serve.Demo, c.Serve.Explorer)
			}
		}},
		{name: "a list entry", yaml: "model:\n  hidden: [64, x]\n", wantErr: "line 2: model.hidden[1]: x is not an integer"},
		{name: "decimal in a list", yaml: "model:\n  hidden: [64, 32.5]\n", wantErr: "line 2: model.hidden[1]: 32.5 is not an integer"},
		{name: "decimal in a list of features", yaml: "model:\n  user:\n    - name: user_id\n      dim: 1.5\n", wantErr: "line 4: model.user[0].dim: 1.5 is not an integer"},
		{name: "decimal for a duration", yaml: "serve:\n  reload_poll: 1.5\n", wantErr: "line 2"},
		// A duration with its unit that time.Duration cannot hold is out of
		// range, not missing a unit.
		{name: "a duration out of range", yaml: "serve:\n  request_timeout: 99999999h\n", wantErr: "line 2: serve.request_timeout: 99999999h is out of range (at most 2562047h)"},
		{name: "a duration with an unknown unit", yaml: "serve:\n  request_timeout: 5d\n", wantErr: "line 2: serve.request_timeout: 5d is not a duration (write it with its unit"},
		{name: "an integer for a decimal", yaml: "train:\n  logq_scale: 2\n", check: func(t *testing.T, c Config) {
			if c.Train.LogQScale != 2 {
				t.Errorf("logq_scale %v", c.Train.LogQScale)
			}
		}},
		// YAML indents with spaces; yaml.v3's error does not say a tab is
		// the problem.
		{name: "a tab", yaml: "train:\n\tepochs: 2\n", wantErr: "config: test.yaml: yaml: line 2: found character that cannot start any token (line 2 is indented with a tab: YAML indents with spaces only)"},
		{name: "a tab after spaces", yaml: "serve:\n  addr: ':1'\n  \tindex: exact\n", wantErr: "(line 3 is indented with a tab"},
		{name: "second document", yaml: "train:\n  epochs: 3\n---\nserve:\n  batch_max: -5\n", wantErr: "second"},
		{name: "document end marker only", yaml: "train:\n  epochs: 3\n...\n", check: func(t *testing.T, c Config) {
			if c.Train.Epochs != 3 {
				t.Errorf("epochs %d", c.Train.Epochs)
			}
		}},
		// A list, a mapping or a scalar where the key wants another shape is
		// named by its key, not by yaml.v3's Go type ("into config.Train").
		{name: "a list for a section", yaml: "train:\n  - epochs\n", wantErr: "line 2: train: a list where a mapping of settings is expected"},
		{name: "a number for a section", yaml: "train: 5\n", wantErr: "line 1: train: 5 is not a mapping of settings"},
		{name: "a mapping for a number", yaml: "train:\n  epochs:\n    value: 2\n", wantErr: "line 3: train.epochs: a mapping where an integer is expected"},
		{name: "a number for a list", yaml: "train:\n  prior_weights: 5\n", wantErr: "line 2: train.prior_weights: 5 is not a list"},
		{name: "a list of lists", yaml: "train:\n  candidates: [[default]]\n", wantErr: "line 2: train.candidates[0]: a list where a string is expected"},
		{name: "a list for the file", yaml: "[]\n", wantErr: "line 1: the file: a list where a mapping of settings is expected"},
		{name: "a word for the file", yaml: "settings\n", wantErr: "line 1: the file: settings is not a mapping of settings"},
		// An alias is checked as what it stands for, once: a small file
		// that aliases one bad mapping many times is reported at the
		// anchor, not once per alias (a 13 KB file made a million errors).
		{name: "an alias to a bad mapping", yaml: "model:\n  movie: [&m {name: genres, dimm: 1}]\n  user: [*m, *m, *m]\n",
			wantErr: "line 2: unknown key model.movie[0].dimm"},
		{name: "an alias to a value", yaml: "train:\n  epochs: &e 2\n  patience: *e\n", check: func(t *testing.T, c Config) {
			if c.Train.Epochs != 2 || c.Train.Patience != 2 {
				t.Errorf("epochs %d, patience %d", c.Train.Epochs, c.Train.Patience)
			}
		}},
		{name: "an alias to a bad value", yaml: "train:\n  epochs: &e x\n  patience: *e\n", wantErr: "line 2: train.epochs: x is not an integer"},
		// A merge key (<<) is YAML's, not an unknown setting: the keys it
		// merges are checked as the mapping's own.
		{name: "a merge key", yaml: "model:\n  user:\n    - &f {name: user_id, dim: 16}\n  movie:\n    - <<: *f\n      name: movie_id\n", check: func(t *testing.T, c Config) {
			if want := []Feature{{"movie_id", 16}}; !slices.Equal(c.Model.Movie, want) {
				t.Errorf("model.movie %v, want %v", c.Model.Movie, want)
			}
		}},
		{name: "a merge key bringing an unknown key", yaml: "model:\n  user:\n    - &f {name: user_id, dimm: 16}\n  movie:\n    - <<: [*f]\n      name: movie_id\n", wantErr: "unknown key model.user[0].dimm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(tt.yaml), "test.yaml", Default())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want mention of %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// TestParseAliasesOnce: a mapping aliased n times is checked once, so a
// file of O(n) bytes cannot make O(n²) errors (a 13 KB file made a million,
// and 420 MB; a 40 KB one would have taken gigabytes).
func TestParseAliasesOnce(t *testing.T) {
	t.Parallel()
	const n = 300
	var keys, refs []string
	for i := range n {
		keys = append(keys, fmt.Sprintf("k%d: 1", i))
		refs = append(refs, "*m")
	}
	raw := fmt.Sprintf("model:\n  movie: [&m {%s}]\n  user: [%s]\n", strings.Join(keys, ", "), strings.Join(refs, ", "))
	_, err := Parse([]byte(raw), "laughs.yaml", Default())
	if err == nil {
		t.Fatal("no error for unknown keys")
	}
	if lines := strings.Count(err.Error(), "\n") + 1; lines != n {
		t.Errorf("%d error lines for %d unknown keys aliased %d times, want %d (each once, at the anchor)", lines, n, n, n)
	}
}

func TestApplyEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"TOWERRECALL_ADDR": ":9999", "TOWERRECALL_DEMO": "false", "TOWERRECALL_RELOAD_POLL": "5s",
		"TOWERRECALL_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1/32", "TOWERRECALL_EXPLORER": "false"}
	c := Default()
	if err := c.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.Serve.Addr != ":9999" || c.Serve.Demo || c.Serve.ReloadPoll != 5*time.Second || c.Serve.Explorer ||
		!slices.Equal(c.Serve.TrustedProxies, []string{"10.0.0.0/8", "127.0.0.1/32"}) {
		t.Errorf("got %+v", c.Serve)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("valid trusted proxies refused: %v", err)
	}
	c.Serve.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.1", "proxy"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "serve.trusted_proxies[1]") || !strings.Contains(err.Error(), "serve.trusted_proxies[2]") {
		t.Errorf("bad prefixes: %v", err)
	}
	c.Serve.TrustedProxies = nil
	bad := map[string]string{"TOWERRECALL_DEMO": "perhaps", "TOWERRECALL_RELOAD_POLL": "1", "TOWERRECALL_EXPLORER": "sometimes"}
	err := c.ApplyEnv(func(k string) string { return bad[k] })
	// A duration's problem reads as in a file.
	if err == nil || !strings.Contains(err.Error(), "TOWERRECALL_DEMO") || !strings.Contains(err.Error(), `TOWERRECALL_RELOAD_POLL: "1" is not a duration (write it with its unit`) ||
		!strings.Contains(err.Error(), "TOWERRECALL_EXPLORER") {
		t.Errorf("err = %v", err)
	}
}

// TestApplyEnvSections: a command reads the variables of the sections it
// uses, each variable belonging to the section of the key it sets; none
// given reads every one.
func TestApplyEnvSections(t *testing.T) {
	t.Parallel()
	env := map[string]string{"TOWERRECALL_ADDR": ":9", "TOWERRECALL_DEMO": "perhaps", "TOWERRECALL_DATA_DIR": "d", "TOWERRECALL_LOG_LEVEL": "warn"}
	tests := []struct {
		name     string
		sections []string
		wantErr  bool
		addr     string
		dataDir  string
		level    string
	}{
		{"every section", nil, true, ":9", "d", "warn"},
		{"data and log (train)", []string{"data", "log"}, false, ":8080", "d", "warn"},
		{"log only", []string{"log"}, false, ":8080", "", "warn"},
		{"serve only", []string{"serve"}, true, ":9", "", "info"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			err := c.ApplyEnv(func(k string) string { return env[k] }, tt.sections...)
			if (err != nil) != tt.wantErr || err != nil && !strings.Contains(err.Error(), "TOWERRECALL_DEMO") {
				t.Errorf("err = %v, want an error naming TOWERRECALL_DEMO: %v", err, tt.wantErr)
			}
			if c.Serve.Addr != tt.addr || c.Data.Dir != tt.dataDir || c.Log.Level != tt.level {
				t.Errorf("addr %q, data.dir %q, log.level %q; want %q, %q, %q", c.Serve.Addr, c.Data.Dir, c.Log.Level, tt.addr, tt.dataDir, tt.level)
			}
		})
	}
	var c Config
	for name, v := range c.envSetters() {
		if section, _, _ := strings.Cut(v.key, "."); !slices.Contains([]string{"data", "serve", "log"}, section) {
			t.Errorf("%s sets %s, of no section ApplyEnv is given", name, v.key)
		}
	}
}

// TestSources: the keys a file sets and those the environment sets, each
// with its variable, for naming them in an error about the key.
func TestSources(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, yaml string
		want       []string
	}{
		{"empty", "", nil},
		{"sections", "train:\n  epochs: 2\n  distill: 1\nserve: {addr: ':1'}\nlog:\n", []string{"serve.addr", "train.distill", "train.epochs"}},
		{"features are the list's key", "model:\n  user:\n    - {name: gender, dim: 2}\n", []string{"model.user"}},
		{"not a mapping", "[]", nil},
	} {
		if got := FileKeys([]byte(tt.yaml)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: FileKeys = %q, want %q", tt.name, got, tt.want)
		}
	}
	env := map[string]string{"TOWERRECALL_ADDR": ":9", "TOWERRECALL_LOG_LEVEL": "warn", "TOWERRECALL_INDEX": ""}
	getenv := func(k string) string { return env[k] }
	if got, want := EnvKeys(getenv), map[string]string{"serve.addr": "TOWERRECALL_ADDR", "log.level": "TOWERRECALL_LOG_LEVEL"}; !maps.Equal(got, want) {
		t.Errorf("EnvKeys = %v, want %v", got, want)
	}
	if got, want := EnvKeys(getenv, "data", "log"), map[string]string{"log.level": "TOWERRECALL_LOG_LEVEL"}; !maps.Equal(got, want) {
		t.Errorf("EnvKeys(data, log) = %v, want %v", got, want)
	}
}

// TestUnknownEnv: a misspelt TOWERRECALL_* variable is named; the
// settings' own, other programs' variables and empty names are not. The
// configuration reference documents exactly the variables that are read.
func TestUnknownEnv(t *testing.T) {
	t.Parallel()
	env := []string{"TOWERRECALL_ADDR=:1", "TOWERRECALL_ADRR=:2", "HOME=/root", "TOWERRECALL_DOWNLOAD_URL=http://x", "TOWERRECALL_PORT", "=C:=C:\\", "towerrecall_addr=:3"}
	got := UnknownEnv(env)
	if len(got) != 2 || !strings.Contains(got[0], "TOWERRECALL_ADRR is not a setting") || !strings.Contains(got[1], "TOWERRECALL_PORT is not a setting") {
		t.Fatalf("UnknownEnv = %q", got)
	}
	if !strings.Contains(got[0], "did you mean TOWERRECALL_ADDR?") || strings.Contains(got[1], "did you mean") {
		t.Errorf("suggestions: %q", got)
	}
	// A setting's name cut short: the tests' TOWERRECALL_DATA is not the
	// trainer's TOWERRECALL_DATA_DIR.
	if got := UnknownEnv([]string{"TOWERRECALL_DATA=../shared/data"}); len(got) != 1 || !strings.Contains(got[0], "did you mean TOWERRECALL_DATA_DIR?") {
		t.Errorf("UnknownEnv(TOWERRECALL_DATA) = %q", got)
	}
	var c Config
	read := append(slices.Collect(maps.Keys(c.envSetters())), DownloadURLEnv)
	slices.Sort(read)
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := regexp.MustCompile(`TOWERRECALL_[A-Z_]*[A-Z]`).FindAllString(string(doc), -1)
	slices.Sort(documented)
	if documented = slices.Compact(documented); !slices.Equal(documented, read) {
		t.Errorf("docs/configuration.md names %q; the code reads %q", documented, read)
	}
	// Each variable is in the table row of the key it sets.
	for name, v := range c.envSetters() {
		found := false
		for line := range strings.SplitSeq(string(doc), "\n") {
			if strings.HasPrefix(line, "| ") && strings.Contains(line, "`"+v.key+"`") && strings.Contains(line, name) {
				found = true
			}
		}
		if !found {
			t.Errorf("docs/configuration.md has no table row naming %s and %s, the key it sets", v.key, name)
		}
	}
}

// The shipped config files load on their base and validate.
func TestShippedConfigs(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"train.yaml", "random-split.yaml", "reference.yaml", "pointwise.yaml", "local.yaml", "production.yaml"} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "..", "configs", name))
			if err != nil {
				t.Fatal(err)
			}
			peek, err := Parse(raw, name, Default())
			if err != nil {
				t.Fatal(err)
			}
			base, err := Preset(peek.Train.Objective)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(raw, name, base)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			// The explorer page is for local use: production turns it off.
			if want := name != "production.yaml"; c.Serve.Explorer != want {
				t.Errorf("serve.explorer = %v, want %v", c.Serve.Explorer, want)
			}
		})
	}
	// configs/train.yaml spells out the built-in default.
	raw, _ := os.ReadFile(filepath.Join("..", "..", "configs", "train.yaml"))
	c, _ := Parse(raw, "train.yaml", Reference())
	d := Default()
	if !reflect.DeepEqual(c.Model, d.Model) || !reflect.DeepEqual(c.Train, d.Train) {
		t.Errorf("configs/train.yaml differs from Default():\n%+v\n%+v", c.Train, d.Train)
	}
	// And it lists every key of those sections: one left out (train.l2
	// was) compares equal above whenever its default is the reference's.
	var listed map[string]map[string]any
	if err := yaml.Unmarshal(raw, &listed); err != nil {
		t.Fatal(err)
	}
	for _, sec := range []struct {
		name string
		v    any
	}{{"data", d.Data}, {"model", d.Model}, {"train", d.Train}, {"baselines", d.Baselines}} {
		typ := reflect.TypeOf(sec.v)
		for i := range typ.NumField() {
			key, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
			if _, ok := listed[sec.name][key]; !ok && key != "-" {
				t.Errorf("configs/train.yaml does not list %s.%s", sec.name, key)
			}
		}
	}
	raw, _ = os.ReadFile(filepath.Join("..", "..", "configs", "random-split.yaml"))
	c, _ = Parse(raw, "random-split.yaml", Reference())
	if r := RandomSplit(); !reflect.DeepEqual(c.Model, r.Model) || !reflect.DeepEqual(c.Train, r.Train) {
		t.Errorf("configs/random-split.yaml differs from RandomSplit():\n%+v\n%+v", c.Train, r.Train)
	}
}

// TestCORSOrigins: the env list is split and trimmed, and only exact
// origins pass Validate.
func TestCORSOrigins(t *testing.T) {
	t.Parallel()
	c := Default()
	if err := c.ApplyEnv(func(k string) string {
		if k == "TOWERRECALL_CORS_ORIGINS" {
			return " https://app.example.com, http://localhost:3000 ,"
		}
		return ""
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://app.example.com", "http://localhost:3000"}; !slices.Equal(c.Serve.CORSOrigins, want) {
		t.Fatalf("origins %q, want %q", c.Serve.CORSOrigins, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{"https://app.example.com:8443", "http://127.0.0.1:8080", "http://[::1]:3000", "https://App.Example.com"} {
		c := Default()
		c.Serve.CORSOrigins = []string{ok}
		if err := c.Validate(); err != nil {
			t.Errorf("origin %q: %v", ok, err)
		}
	}
	// Browsers send the origin without the scheme's default port, and the
	// CORS middleware compares it lower-cased but otherwise as written, so
	// the last three would never match.
	for _, bad := range []string{"*", "https://*.example.com", "app.example.com", "https://app.example.com/", "ftp://x.com", "https://user@x.com",
		"https://app.example.com:443", "http://localhost:80", "https://app.example.com:", "https://bücher.example", "https://a.example/ü"} {
		c := Default()
		c.Serve.CORSOrigins = []string{bad}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "serve.cors_origins[0]") {
			t.Errorf("origin %q: err = %v", bad, err)
		}
	}
}

// An international host name is refused saying that browsers send its
// punycode form, which is accepted.
func TestCORSOriginPunycode(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Serve.CORSOrigins = []string{"https://bücher.example:8443"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "ASCII (punycode) form") {
		t.Fatalf("err = %v, want the punycode form asked for", err)
	}
	c.Serve.CORSOrigins = []string{"https://xn--bcher-kva.example:8443"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestCatalogSettings(t *testing.T) {
	t.Parallel()
	c := Default()
	if c.Serve.CatalogToken != "" || c.Serve.JournalPath() != "var/model.journal" {
		t.Fatalf("defaults: token %q, journal %q", c.Serve.CatalogToken, c.Serve.JournalPath())
	}
	for _, model := range []string{"var/model/", "var/model/.", "var//model//"} { // never inside the artifact directory
		if got := (Serve{Model: model}).JournalPath(); got != "var/model.journal" {
			t.Errorf("model %q: journal %q, want var/model.journal", model, got)
		}
	}
	env := map[string]string{"TOWERRECALL_CATALOG_TOKEN": "s3cret-token-0123456789", "TOWERRECALL_CATALOG_JOURNAL": "/data/j"}
	if err := c.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.Serve.CatalogToken != env["TOWERRECALL_CATALOG_TOKEN"] || c.Serve.JournalPath() != "/data/j" {
		t.Fatalf("env not applied: %+v", c.Serve)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"short", "has space in the token", "ünïcode-token-0123456", "================"} {
		c.Serve.CatalogToken = tok
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "serve.catalog_token") || strings.Contains(err.Error(), tok) {
			t.Errorf("token %q: %v (must be refused without echoing it)", tok, err)
		}
	}
	// A secret made from a file keeps its newline: the error says so.
	for _, tok := range []string{"s3cret-token-0123456789\n", " s3cret-token-0123456789", "s3cret-token-0123456789\r\n"} {
		c.Serve.CatalogToken = tok
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "serve.catalog_token: has leading or trailing white space") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("token %q: %v, want white space named without echoing the token", tok, err)
		}
	}
}

// TestCatalogJournalPlace: an explicit journal is refused when blank (it
// named a file " " in the working directory) or inside the model
// directory, which publishing an artifact replaces whole, deleting it.
func TestCatalogJournalPlace(t *testing.T) {
	t.Parallel()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		model, journal string
		ok             bool
	}{
		{"var/model", "", true},
		{"var/model", "var/model.journal", true},
		{"var/model", "var/models/j", true},
		{"var/model", "var/model..journal", true},
		{"/data/model", "/journal/movies.journal", true},
		{"var/model", "movies.journal", true},
		{"var/model", "/abs/var/model/j", true},
		{"var/model", " ", false},
		{"var/model", "var/model/movies.journal", false},
		{"var/model/", "./var/model/sub/movies.journal", false},
		{"/data/model", "/data/model/movies.journal", false},
		{"/data/model", "/data/model", false},
		{".", "movies.journal", false},
		{"", "movies.journal", false}, // serve.model's own error only
		// A relative model and an absolute journal inside it (or the
		// reverse) were not compared, and the journal went into the
		// artifact, where every later publish was refused.
		{"var/model", filepath.Join(wd, "var/model/movies.journal"), false},
		{filepath.Join(wd, "var/model"), "var/model/movies.journal", false},
	} {
		c := Default()
		c.Serve.Model, c.Serve.CatalogJournal = tt.model, tt.journal
		err := c.Validate()
		if tt.model == "" {
			if err == nil || strings.Contains(err.Error(), "serve.catalog_journal") {
				t.Errorf("model %q, journal %q: err = %v, want serve.model's error alone", tt.model, tt.journal, err)
			}
			continue
		}
		if (err == nil) != tt.ok || err != nil && !strings.Contains(err.Error(), "serve.catalog_journal") {
			t.Errorf("model %q, journal %q: err = %v, want ok = %v", tt.model, tt.journal, err, tt.ok)
		}
	}
}

// TestCatalogJournalThroughLink: a journal reached through a symbolic link
// to the model directory is inside it (serve wrote it into the artifact,
// and every later publish was refused); a link elsewhere is not.
func TestCatalogJournalThroughLink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	model, vol := filepath.Join(dir, "model"), filepath.Join(dir, "vol")
	for _, d := range []string{model, vol} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, to := range map[string]string{"mlink": model, "vlink": vol} {
		if err := os.Symlink(to, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	for journal, ok := range map[string]bool{"mlink/movies.journal": false, "vlink/movies.journal": true, "model.journal": true} {
		c := Default()
		c.Serve.Model, c.Serve.CatalogJournal = model, filepath.Join(dir, journal)
		if err := c.Validate(); (err == nil) != ok || err != nil && !strings.Contains(err.Error(), "inside serve.model") {
			t.Errorf("journal %s: err = %v, want ok = %v", journal, err, ok)
		}
	}
}

// TestCandidate: a candidate takes the preset's towers and training recipe
// and keeps the run's own settings; unknown and repeated names are refused.
func TestCandidate(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Model.Dim, c.Train.Seed, c.Train.Workers, c.Train.Epochs = 32, 7, 1, 4
	c.Train.PriorWeights, c.Data.Dir = []float64{0.5}, "data/ml-1m"
	got, err := c.Candidate("random-split")
	if err != nil {
		t.Fatal(err)
	}
	r := RandomSplit()
	if !reflect.DeepEqual(got.Model.User, r.Model.User) || got.Train.UserWeight != r.Train.UserWeight || got.Train.LogQScale != r.Train.LogQScale {
		t.Errorf("candidate recipe %+v / %+v, want the preset's", got.Model.User, got.Train)
	}
	if got.Model.Dim != 32 || got.Train.Seed != 7 || got.Train.Workers != 1 || got.Train.Epochs != 4 ||
		!reflect.DeepEqual(got.Train.PriorWeights, []float64{0.5}) || got.Data.Dir != "data/ml-1m" || len(got.Train.Candidates) != 0 {
		t.Errorf("candidate lost the run's settings: dim %d, train %+v, data %q", got.Model.Dim, got.Train, got.Data.Dir)
	}
	// The preset carves a random view; as a candidate it takes the run's views.
	if t0, t1 := got.Train, c.Train; t0.ValidFraction != t1.ValidFraction || t0.ValidUserFraction != t1.ValidUserFraction || t0.ValidRandomFraction != t1.ValidRandomFraction || r.Train.ValidRandomFraction == 0 {
		t.Errorf("candidate views %v/%v/%v, want the run's %v/%v/%v (preset's random view %v)", t0.ValidFraction, t0.ValidUserFraction, t0.ValidRandomFraction,
			t1.ValidFraction, t1.ValidUserFraction, t1.ValidRandomFraction, r.Train.ValidRandomFraction)
	}
	if err := got.Validate(); err != nil {
		t.Error(err)
	}
	// The run's settings are no recipe change; the recipe's own are.
	if ch := c.RecipeChanges(); len(ch) != 0 {
		t.Errorf("RecipeChanges of run settings only: %q", ch)
	}
	c.Train.BatchSize, c.Model.Hidden = 64, []int{16}
	if ch := c.RecipeChanges(); !reflect.DeepEqual(ch, []string{"model.hidden", "train.batch_size"}) {
		t.Errorf("RecipeChanges = %q, want model.hidden and train.batch_size", ch)
	}
	// The presets differ from the default in their recipe.
	if ch := RandomSplit().RecipeChanges(); !slices.Contains(ch, "model.user") || !slices.Contains(ch, "train.user_weight") {
		t.Errorf("RandomSplit().RecipeChanges() = %q", ch)
	}
	for _, bad := range [][]string{{"nope"}, {""}, {"softmax"}, {"default"}, {"random-split", "default"}, {"random-split", "random-split"}} {
		c := Default()
		c.Train.Candidates = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "train.candidates[") {
			t.Errorf("candidates %q: %v, want an error naming the entry", bad, err)
		}
	}
}

// TestUnreadSettings: with the pointwise objective the softmax-only
// settings are never read (a model trained with them is the same to the
// bit), so train names the ones a configuration sets rather than leave
// them to seem in effect; the presets themselves name none.
func TestUnreadSettings(t *testing.T) {
	t.Parallel()
	pointwise := func(f func(*Config)) Config {
		c := Reference()
		f(&c)
		return c
	}
	trainYAMLPointwise := Default() // configs/train.yaml with its objective changed
	trainYAMLPointwise.Model = Reference().Model
	trainYAMLPointwise.Train.Objective = "pointwise"
	for _, tc := range []struct {
		name string
		c    Config
		want []string
	}{
		{"default", Default(), nil},
		{"random-split", RandomSplit(), nil}, // user_weight and logq_scale: read by softmax
		{"reference", Reference(), nil},
		{"reference, l2 and recency (read)", pointwise(func(c *Config) { c.Train.L2, c.Train.Recency, c.Train.ColdStartRate = 0.1, 2, 0.5 }), nil},
		{"reference, user_weight", pointwise(func(c *Config) { c.Train.UserWeight = 0.5 }), []string{"train.user_weight"}},
		{"reference, every softmax setting", pointwise(func(c *Config) {
			c.Train.Temperature, c.Train.LogQ, c.Train.ColdLogQ, c.Train.UniformNegatives, c.Train.LogQScale, c.Train.UserWeight = 0.05, true, 3, 10, 1.5, 1
		}), []string{"train.temperature", "train.logq", "train.cold_logq", "train.uniform_negatives", "train.logq_scale", "train.user_weight"}},
		{"train.yaml made pointwise", trainYAMLPointwise, []string{"train.temperature", "train.logq", "train.cold_logq"}},
	} {
		if err := tc.c.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := tc.c.UnreadSettings(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: UnreadSettings() = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestSoftmaxBatchSize: a softmax batch needs a second movie to contrast
// (the trainer refuses one of 1), the pointwise objective does not.
func TestSoftmaxBatchSize(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Train.BatchSize = 1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "train.batch_size") {
		t.Errorf("softmax, batch size 1: %v, want an error naming train.batch_size", err)
	}
	r := Reference()
	r.Train.BatchSize = 1
	if err := r.Validate(); err != nil {
		t.Errorf("pointwise, batch size 1: %v", err)
	}
}

// TestServeAddr: the listen address's form is checked with the rest of the
// config, before serve loads or trains anything.
func TestServeAddr(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		addr string
		ok   bool
	}{
		{":8080", true}, {"127.0.0.1:0", true}, {"[::1]:8080", true}, {"localhost:http", true}, {":65535", true},
		{"", false}, {"bad", false}, {"127.0.0.1", false}, {"127.0.0.1:", false}, {":65536", false}, {":99999999999", false}, {"[::1:8080", false},
		{":8080 ", false}, {" :8080", false}, {"localhost:http\t", false},
	} {
		c := Default()
		c.Serve.Addr = tt.addr
		err := c.Validate()
		if tt.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "serve.addr") {
			t.Errorf("addr %q: err = %v, want ok = %v", tt.addr, err, tt.ok)
		}
	}
}

// TestServeDebugAddr: the profiler's address is off when empty, checked
// like serve.addr when set, and never serve.addr's port, however the host
// is written (port 0 aside: each listener picks its own).
func TestServeDebugAddr(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		addr, debug string
		ok          bool
	}{
		{":8080", "", true}, {":8080", "localhost:6060", true}, {"127.0.0.1:0", "127.0.0.1:0", true},
		{":8080", ":8080", false}, {":8080", "6060", false}, {":8080", ":65536", false}, {":8080", "localhost:", false},
		{":8080", "0.0.0.0:8080", false}, {":8080", "localhost:8080", false}, {"127.0.0.1:8080", "[::]:8080", false},
		{":18080", "localhost:8080", true}, {"localhost:http", "localhost:6060", true},
	} {
		c := Default()
		c.Serve.Addr, c.Serve.DebugAddr = tt.addr, tt.debug
		err := c.Validate()
		if tt.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "serve.debug_addr") {
			t.Errorf("addr %q, debug_addr %q: err = %v, want ok = %v", tt.addr, tt.debug, err, tt.ok)
		}
	}
}

// TestServeMetricsAddr: /metrics is on serve.addr when metrics_addr is
// empty, and a port of its own otherwise, neither serve.addr's nor the
// profiler's.
func TestServeMetricsAddr(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		debug, metrics string
		ok             bool
	}{
		{"", "", true}, {"", ":9090", true}, {"localhost:6060", ":9090", true}, {"127.0.0.1:0", "127.0.0.1:0", true},
		{"", ":8080", false}, {"", "localhost:8080", false}, {"localhost:6060", "[::]:6060", false}, {"", "9090", false},
	} {
		c := Default()
		c.Serve.Addr, c.Serve.DebugAddr, c.Serve.MetricsAddr = ":8080", tt.debug, tt.metrics
		err := c.Validate()
		if tt.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "serve.metrics_addr") {
			t.Errorf("debug_addr %q, metrics_addr %q: err = %v, want ok = %v", tt.debug, tt.metrics, err, tt.ok)
		}
	}
}

// TestModelJSONRoundTrip: a manifest's config (ModelJSON), given back as a
// config file, makes the same model settings; it never holds the serve
// section, whose catalogue token is a secret.
func TestModelJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"default", "recent-history", "random-split", "reference"} {
		c, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		c.Data = Data{Dir: "data/ml-1m", Train: "splits/train.dat", Valid: "splits/valid.dat"}
		c.Serve.CatalogToken = "secret-token-0123456789abcdef"
		raw, err := c.ModelJSON()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), "secret") || strings.Contains(string(raw), "serve") {
			t.Fatalf("%s: the serve section is recorded: %s", name, raw)
		}
		got, err := Parse(raw, "manifest.json", Default())
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, raw)
		}
		again, err := got.ModelJSON()
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(raw) || got.Train.SearchBudget != c.Train.SearchBudget || got.Train.Objective != c.Train.Objective {
			t.Errorf("%s: read back as\n%s\nwant\n%s", name, again, raw)
		}
	}
}

func TestMaxItemsInFlight(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		batchMax int
		items    int64
		ok       bool
	}{
		{100, 0, true}, {100, 100_000, true}, {100, 1_000_000, true}, {1000, 1_000_000, true},
		{100, 99_999, false}, {1000, 999_999, false}, {100, 1, false}, {100, -1, false},
	} {
		c := Default()
		c.Serve.BatchMax, c.Serve.MaxItemsInFlight = tt.batchMax, tt.items
		err := c.Validate()
		if (err == nil) != tt.ok || (err != nil && !strings.Contains(err.Error(), "serve.max_items_in_flight")) {
			t.Errorf("batch_max %d, max_items_in_flight %d: Validate = %v", tt.batchMax, tt.items, err)
		}
	}
	c, err := Parse([]byte("serve:\n  max_items_in_flight: 250000\n"), "test.yaml", Default())
	if err != nil || c.Serve.MaxItemsInFlight != 250_000 {
		t.Fatalf("Parse: %d, %v", c.Serve.MaxItemsInFlight, err)
	}
}

func TestMaxBodyBytesInFlight(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		bodyLimit, bytes int64
		ok               bool
	}{
		{1 << 20, 0, true}, {1 << 20, 1 << 20, true}, {1 << 20, 32 << 20, true}, {4096, 4096, true},
		{1 << 20, 1<<20 - 1, false}, {4096, 1, false}, {1 << 20, -1, false},
	} {
		c := Default()
		c.Serve.BodyLimit, c.Serve.MaxBodyBytesInFlight = tt.bodyLimit, tt.bytes
		err := c.Validate()
		if (err == nil) != tt.ok || (err != nil && !strings.Contains(err.Error(), "serve.max_body_bytes_in_flight")) {
			t.Errorf("body_limit %d, max_body_bytes_in_flight %d: Validate = %v", tt.bodyLimit, tt.bytes, err)
		}
	}
	c, err := Parse([]byte("serve:\n  max_body_bytes_in_flight: 8388608\n"), "test.yaml", Default())
	if err != nil || c.Serve.MaxBodyBytesInFlight != 8<<20 {
		t.Fatalf("Parse: %d, %v", c.Serve.MaxBodyBytesInFlight, err)
	}
}

// TestModelDimOne: one normalised dimension is a sign, so every user ranks
// movies in one of two orders with ties throughout; unnormalised it is a
// scalar and stays allowed.
func TestModelDimOne(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		normalize bool
		ok        bool
	}{{true, false}, {false, true}} {
		c := Default()
		c.Model.Dim, c.Model.Normalize = 1, tc.normalize
		err := c.Validate()
		if (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error(), "model.dim") {
			t.Errorf("dim 1, normalize %v: %v", tc.normalize, err)
		}
	}
}
