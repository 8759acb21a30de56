package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestFlat(t *testing.T) {
	t.Parallel()
	s := func(vs ...float64) []Sample {
		out := make([]Sample, len(vs))
		for i, v := range vs {
			out[i] = Sample{At: time.Duration(i) * time.Second, Value: v}
		}
		return out
	}
	tests := []struct {
		name    string
		samples []Sample
		from    time.Duration
		wantErr string
	}{
		{"flat", s(50, 80, 100, 101, 99, 100), 2 * time.Second, ""},
		{"early growth ignored", s(10, 50, 100, 100, 100), 2 * time.Second, ""},
		{"within slack", s(0, 0, 100, 125), 2 * time.Second, ""},
		{"grows", s(0, 0, 100, 110, 140), 2 * time.Second, "grows: 140 at 4s"},
		{"too few", s(1, 2, 3), 2 * time.Second, "1 samples"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Flat("rss", tt.samples, tt.from, 1.2, 10)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Flat = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestRSSAndGauge(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	rss, err := RSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Fatalf("RSS = %d, %v", rss, err)
	}
	if _, err := parseVmRSS([]byte("Name: x\nVmRSS: 12 MB\n")); err == nil {
		t.Error("VmRSS in MB accepted")
	}
	text := []byte("# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 17\ngo_goroutines_other 3\n")
	if v, err := parseGauge(text, "go_goroutines"); err != nil || v != 17 {
		t.Errorf("parseGauge = %v, %v", v, err)
	}
	if _, err := parseGauge(text, "process_resident_memory_bytes"); err == nil {
		t.Error("missing metric found")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(text) }))
	defer srv.Close()
	if v, err := Gauge(context.Background(), srv.Client(), srv.URL, "go_goroutines"); err != nil || v != 17 {
		t.Errorf("Gauge = %v, %v", v, err)
	}
}

// The mix is reproducible, covers every kind, and every body is a valid
// request for the real handler.
func TestRecallMix(t *testing.T) {
	t.Parallel()
	syn := ML1M(5)
	syn.Movies, syn.Users = 300, 200
	b, err := syn.Bundle()
	if err != nil {
		t.Fatal(err)
	}
	c := CatalogueOf(b)
	if len(c.Users) != 200 || len(c.Movies) != 300 || len(c.Genres) < 10 {
		t.Fatalf("catalogue: %d users, %d movies, genres %v", len(c.Users), len(c.Movies), c.Genres)
	}
	m1, err := RecallMix(c, 400, 9, 10, 100)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := RecallMix(c, 400, 9, 10, 100)
	if !reflect.DeepEqual(m1, m2) {
		t.Fatal("same seed, different mix")
	}
	kinds := map[string]int{}
	h := newHandler(t, b, "exact")
	for _, r := range m1 {
		kinds[r.Kind]++
		if r.K < 10 || r.K > 100 {
			t.Fatalf("k = %d", r.K)
		}
		req := httptest.NewRequest(http.MethodPost, "/recall", bytes.NewReader(r.Body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		var resp struct {
			KnownUser bool              `json:"known_user"`
			Items     []json.RawMessage `json:"items"`
		}
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &resp) != nil {
			t.Fatalf("%s: status %d: %s", r.Body, w.Code, w.Body)
		}
		if r.Kind == KindKnown && !resp.KnownUser || r.Kind == KindCold && resp.KnownUser {
			t.Errorf("%s %s: known_user %v", r.Kind, r.Body, resp.KnownUser)
		}
	}
	for _, k := range []string{KindKnown, KindCold, KindGenre, KindExclude} {
		if kinds[k] < 40 {
			t.Errorf("kind %s: %d of 400", k, kinds[k])
		}
	}
	if _, err := RecallMix(Catalogue{}, 1, 1, 10, 10); err == nil {
		t.Error("empty catalogue accepted")
	}
	if _, err := RecallMix(c, 1, 1, 10, 9); err == nil {
		t.Error("empty k range accepted")
	}
	fixed, err := RecallMix(c, 50, 9, 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range fixed {
		if r.K != 10 || !bytes.Contains(r.Body, []byte(`"k":10`)) {
			t.Fatalf("k range 10..10 gave k %d: %s", r.K, r.Body)
		}
	}
}

// Attack against the bare handler on loopback, briefly: it counts every
// request and reports no errors.
func TestAttackBare(t *testing.T) {
	t.Parallel()
	if n := len(FixedJSON(1024)); n != 1024 || !json.Valid(FixedJSON(1024)) {
		t.Fatalf("FixedJSON(1024): %d bytes, valid %v", n, json.Valid(FixedJSON(1024)))
	}
	srv := httptest.NewServer(BareHandler())
	defer srv.Close()
	reqs := []Request{{Body: []byte(`{"user":{}}`)}, {Body: []byte(`{"user":{"gender":"F"},"k":20}`)}}
	seen := 0
	sum := Attack(context.Background(), "bare", Targets(srv.URL+"/recall", reqs), Settings{Workers: 4, Duration: 300 * time.Millisecond},
		func(r *vegeta.Result) {
			seen++
			if len(r.Body) != 1024 {
				t.Errorf("body of %d bytes", len(r.Body))
			}
		})
	if sum.Requests == 0 || uint64(seen) != sum.Requests || sum.ErrorCount() != 0 || sum.Non2xx != 0 || sum.RPS <= 0 {
		t.Fatalf("%s (seen %d; %s)", sum.Line(), seen, sum.TopErrors(3))
	}
	t.Log(sum.Line())

	// Failures are counted, not hidden: non-2xx answers, then transport errors.
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer unavailable.Close()
	bad := Attack(context.Background(), "503", Targets(unavailable.URL, reqs), Settings{Workers: 2, Duration: 200 * time.Millisecond}, nil)
	if bad.Requests == 0 || bad.Non2xx != int(bad.Requests) || bad.ErrorCount() != int(bad.Requests) {
		t.Errorf("503 server: %s", bad.Line())
	}
	srv.Close()
	down := Attack(context.Background(), "down", Targets(srv.URL+"/recall", reqs), Settings{Workers: 2, Duration: 200 * time.Millisecond, Timeout: time.Second}, nil)
	if down.Requests == 0 || down.ErrorCount() != int(down.Requests) || down.RPS != 0 {
		t.Errorf("closed server: %s", down.Line())
	}
}

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{"plain", "42 (towerrecall) S 1 42 42 0 -1 4194304 100 0 0 0 150 25 0 0 20 0 9 0 1 2 3", 1750 * time.Millisecond, false},
		{"spaces and parens in the name", "42 (a ) b) R 1 42 42 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 2 3", 100 * time.Millisecond, false},
		{"no name", "42 towerrecall S 1", 0, true},
		{"short", "42 (x) S 1 2 3", 0, true},
		{"not a number", "42 (x) S 1 42 42 0 -1 0 0 0 0 0 x 3 0", 0, true},
		{"negative", "42 (x) S 1 42 42 0 -1 0 0 0 0 0 -5 3 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.stat))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseStatCPU = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return
	}
	before, err := CPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn some CPU; the counter must not go backwards.
	x := 0
	for i := range 50_000_000 {
		x += i ^ x
	}
	after, err := CPUTime(os.Getpid())
	if err != nil || after < before || x == 1 {
		t.Errorf("CPUTime went from %v to %v (%v)", before, after, err)
	}
}
