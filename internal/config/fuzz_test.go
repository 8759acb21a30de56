package config

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzParse: any bytes either parse or are refused with an error naming
// the file; a file that parses and validates says the same thing when
// written back out (nothing is read one way and written another), and a
// refused file leaves the base untouched.
func FuzzParse(f *testing.F) {
	shipped, err := filepath.Glob("../../configs/*.yaml")
	if err != nil || len(shipped) == 0 {
		f.Fatalf("no shipped configs to seed from: %v", err)
	}
	for _, p := range shipped {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	for _, s := range []string{
		"", "{}", "---\n---\n", "train: {epochs: 2.5}", "model: {hidden: [1, -1]}",
		"serve: {reload_poll: 1}", "a: &x [*x]", "train: {prior_weights: [.nan]}", "model: !!binary aGk=",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		base := Default()
		c, err := Parse(raw, "fuzz.yaml", base)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config: fuzz.yaml: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			if !reflect.DeepEqual(c, Default()) {
				t.Fatal("a refused file changed the base")
			}
			return
		}
		if c.Validate() != nil {
			return
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("a valid config does not marshal: %v", err)
		}
		back, err := Parse(out, "back.yaml", Config{})
		if err != nil {
			t.Fatalf("a valid config, written out, does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(normal(back), normal(c)) {
			t.Fatalf("round trip changed the config:\n%s", out)
		}
	})
}

// normal maps empty slices to nil, which YAML does not tell apart.
func normal(c Config) Config {
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i))
			}
		case reflect.Slice:
			if v.Len() == 0 && v.CanSet() {
				v.Set(reflect.Zero(v.Type()))
			}
			for i := range v.Len() {
				walk(v.Index(i))
			}
		}
	}
	walk(reflect.ValueOf(&c).Elem())
	return c
}

// otherEnv sets every variable to a value other than the default's, so
// that a setting the environment did not set shows.
var otherEnv = map[string]string{
	"TOWERRECALL_ADDR": ":1", "TOWERRECALL_MODEL": "m", "TOWERRECALL_INDEX": "exact", "TOWERRECALL_DATA_DIR": "d",
	"TOWERRECALL_LOG_LEVEL": "warn", "TOWERRECALL_LOG_FORMAT": "console", "TOWERRECALL_CATALOG_TOKEN": "a-token-of-16-chars",
	"TOWERRECALL_CATALOG_JOURNAL": "j", "TOWERRECALL_DEBUG_ADDR": ":2", "TOWERRECALL_METRICS_ADDR": ":3", "TOWERRECALL_DEMO": "false", "TOWERRECALL_EXPLORER": "false",
	"TOWERRECALL_TRUSTED_PROXIES": "10.0.0.0/8", "TOWERRECALL_CORS_ORIGINS": "http://a.example", "TOWERRECALL_RELOAD_POLL": "7s",
}

// keyValue is the value of key (section.key) in c, as c writes it out.
func keyValue(t testing.TB, c Config, key string) string {
	t.Helper()
	raw, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	section, k, _ := strings.Cut(key, ".")
	return fmt.Sprint(m[section][k])
}

// FuzzApplyEnv: any value of any variable either sets its setting or is
// refused with an error naming the variable; it never panics. A value
// taken sets its key to the same thing whatever the key held (from the
// defaults, or from otherEnv), and a refused value leaves the setting as
// it was.
func FuzzApplyEnv(f *testing.F) {
	var c Config
	set := c.envSetters()
	names := slices.Sorted(maps.Keys(set))
	other := Default()
	if err := other.ApplyEnv(func(k string) string { return otherEnv[k] }); err != nil {
		f.Fatal(err)
	}
	for _, name := range names {
		if keyValue(f, other, set[name].key) == keyValue(f, Default(), set[name].key) {
			f.Fatalf("otherEnv leaves %s at its default", name)
		}
	}
	f.Add(uint8(0), "1s")
	f.Add(uint8(1), "yes")
	f.Add(uint8(2), " a, ,b ")
	f.Add(uint8(3), "-5m")
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		name := names[int(which)%len(names)]
		getenv := func(k string) string {
			if k == name {
				return value
			}
			return ""
		}
		c, o := Default(), other
		err := c.ApplyEnv(getenv)
		if err == nil {
			if oerr := o.ApplyEnv(getenv); oerr != nil {
				t.Fatalf("%s=%q taken over the defaults, refused over others: %v", name, value, oerr)
			}
			key := set[name].key
			if got, want := keyValue(t, o, key), keyValue(t, c, key); value != "" && got != want {
				t.Fatalf("%s=%q set %s to %s over the defaults and %s over others", name, value, key, want, got)
			}
			return
		}
		if !strings.HasPrefix(err.Error(), name+": ") {
			t.Fatalf("error does not name %s: %v", name, err)
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Fatalf("a refused %s=%q changed the config", name, value)
		}
	})
}
