package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/towerrecall/towerrecall/internal/artifact"
)

// logBuffer collects a run's stderr and finds log lines in it.
type logBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	path string // if set, the log is this file, written by a child process
}

// fileLog returns a logBuffer reading the file that it also returns open
// for a child process's stderr. A child writing to a file does so without
// the test process copying every line (exec does that for a Writer that
// is not a file), so under load the test process, which is also the load
// generator, does not pay for collecting the service's access log.
func fileLog(t *testing.T) (*logBuffer, *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "serve.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return &logBuffer{path: path}, f
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	if l.path != "" {
		b, _ := os.ReadFile(l.path) // a missing log reads as empty; waits time out with it
		return string(b)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitLog waits for a JSON log line whose message is msg and returns it.
func (l *logBuffer) waitLog(t *testing.T, msg string, timeout time.Duration) map[string]any {
	t.Helper()
	return l.waitLogWhere(t, msg, "", "", timeout)
}

// waitLogWhere waits for a JSON log line whose message is msg and, when key
// is not empty, whose field key is val.
func (l *logBuffer) waitLogWhere(t *testing.T, msg, key, val string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(l.String()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["message"] == msg && (key == "" || m[key] == val) {
				return m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %q log line within %v; log:\n%s", msg, timeout, tail(l.String(), 4000))
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

type client struct {
	t    *testing.T
	base string
}

func (c client) do(method, path, body string) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func (c client) json(method, path, body string, wantStatus int, out any) {
	c.t.Helper()
	status, _, b := c.do(method, path, body)
	if status != wantStatus {
		c.t.Fatalf("%s %s %s: status %d, want %d: %s", method, path, body, status, wantStatus, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

type recallResp struct {
	ModelVersion string `json:"model_version"`
	Backend      string `json:"backend"`
	KnownUser    bool   `json:"known_user"`
	Items        []struct {
		MovieID int      `json:"movie_id"`
		Title   string   `json:"title"`
		Genres  []string `json:"genres"`
		Score   float32  `json:"score"`
	} `json:"items"`
}

type scoreResp struct {
	ModelVersion string `json:"model_version"`
	Scores       []struct {
		MovieID int     `json:"movie_id"`
		Score   float32 `json:"score"`
	} `json:"scores"`
	Unknown []int `json:"unknown_movie_ids"`
}

type modelResp struct {
	Version      string              `json:"version"`
	Movies       int                 `json:"movies"`
	Backend      string              `json:"backend"`
	Vocabularies map[string][]string `json:"vocabularies"`
	Recipe       string              `json:"recipe"`
}

// checkAPI goes through every endpoint of a running service and checks that
// /recall agrees with exact ranking by /score over the whole catalogue.
func checkAPI(t *testing.T, c client, catalog []int) modelResp {
	t.Helper()
	c.json("GET", "/healthz", "", 200, nil)
	c.json("GET", "/readyz", "", 200, nil)
	var info modelResp
	c.json("GET", "/model", "", 200, &info)
	if info.Version == "" || info.Movies == 0 || len(info.Vocabularies["genres"]) == 0 {
		t.Fatalf("/model = %+v", info)
	}
	users := []string{
		`{"user_id": 1, "gender": "F", "age": 25, "occupation": "programmer", "zip": "94043"}`,
		`{"gender": "M", "age": 60, "occupation": "retired"}`,
		`{"user_id": 999999, "gender": "F", "age": 17, "occupation": "K-12 student"}`,
	}
	for _, u := range users {
		var r recallResp
		c.json("POST", "/recall", `{"user": `+u+`, "k": 100}`, 200, &r)
		if len(r.Items) != 100 || r.ModelVersion != info.Version {
			t.Fatalf("recall for %s: %d items, version %q", u, len(r.Items), r.ModelVersion)
		}
		// Score the whole catalogue and rank it: the top 100 must be the recall.
		var all []scoreResp
		for i := 0; i < len(catalog); i += 1000 {
			ids, _ := json.Marshal(catalog[i:min(i+1000, len(catalog))])
			var s scoreResp
			c.json("POST", "/score", fmt.Sprintf(`{"user": %s, "movie_ids": %s}`, u, ids), 200, &s)
			all = append(all, s)
		}
		score := map[int]float32{}
		for _, s := range all {
			for _, x := range s.Scores {
				score[x.MovieID] = x.Score
			}
		}
		seen := map[int]bool{}
		for _, it := range r.Items {
			if got := score[it.MovieID]; got != it.Score {
				t.Errorf("movie %d: /recall score %v != /score %v", it.MovieID, it.Score, got)
			}
			seen[it.MovieID] = true
		}
		// exclude_seen removes training movies of known users; compare
		// against the best unseen-or-returned movies by /score.
		if !r.KnownUser {
			ranked := append([]int(nil), catalog...)
			sort.SliceStable(ranked, func(i, j int) bool { return score[ranked[i]] > score[ranked[j]] })
			hits := 0
			for _, id := range ranked[:100] {
				if seen[id] {
					hits++
				}
			}
			if r.Backend == "exact" && hits != 100 || hits < 99 {
				t.Errorf("user %s (%s): %d of the top 100 by /score are in /recall", u, r.Backend, hits)
			}
		}
	}
	// Filters and paging.
	var g recallResp
	c.json("POST", "/recall", `{"user": {"gender": "F"}, "k": 20, "genres": ["Comedy"], "offset": 5}`, 200, &g)
	if len(g.Items) != 20 {
		t.Errorf("genre filter returned %d items, want 20", len(g.Items))
	}
	for _, it := range g.Items {
		if !slices.Contains(it.Genres, "Comedy") {
			t.Errorf("genre filter returned %v", it.Genres)
		}
	}
	status, h, body := c.do("POST", "/recall", `{"user": {"gender": "X"}}`)
	if status != 400 || !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") || !strings.Contains(string(body), "user.gender") {
		t.Errorf("bad gender: %d %s %s", status, h.Get("Content-Type"), body)
	}
	status, _, body = c.do("GET", "/metrics", "")
	if status != 200 || !strings.Contains(string(body), "towerrecall_http_requests_total") || !strings.Contains(string(body), "towerrecall_model_info") {
		t.Errorf("/metrics: %d\n%s", status, tail(string(body), 2000))
	}
	return info
}

func catalogOf(t *testing.T, modelDir string) []int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(modelDir, "movies.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ms []struct {
		ID int `json:"id"`
	}
	if err := json.Unmarshal(raw, &ms); err != nil {
		t.Fatal(err)
	}
	ids := make([]int, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids
}

// TestServeMetricsAddr: with serve.metrics_addr, GET /metrics is served on
// a listener of its own from the start (no model yet) and the API's
// listener has no /metrics.
func TestServeMetricsAddr(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &logBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"towerrecall", "serve", "--model", filepath.Join(t.TempDir(), "model"), "--addr", "127.0.0.1:0", "--demo=false"},
			[]string{"TOWERRECALL_METRICS_ADDR=127.0.0.1:0"}, io.Discard, logs)
	}()
	m := client{t: t, base: "http://" + logs.waitLog(t, "metrics listening (serve.metrics_addr)", time.Minute)["addr"].(string)}
	api := client{t: t, base: "http://" + logs.waitLog(t, "serving HTTP", time.Minute)["addr"].(string)}
	if status, _, body := m.do("GET", "/metrics", ""); status != 200 || !strings.Contains(string(body), `towerrecall_model_loads_total{result="ok"} 0`) {
		t.Errorf("/metrics on serve.metrics_addr: %d\n%s", status, tail(string(body), 2000))
	}
	if status, _, _ := api.do("GET", "/metrics", ""); status != 404 {
		t.Errorf("the API's listener answers /metrics with %d, want 404 (it has its own)", status)
	}
	if status, _, _ := api.do("GET", "/readyz", ""); status != 503 {
		t.Errorf("/readyz with no model: %d, want 503", status)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestServeDemo is the quick start: no data and no model, run() trains on the
// demo catalogue, serves on port 0, answers every endpoint, reloads on
// SIGHUP, refuses a corrupt artifact, and shuts down cleanly.
func TestServeDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a demo model")
	}
	dir := t.TempDir()
	modelDir := filepath.Join(dir, "model")
	// Catalogue changes on, so that /metrics has every series the alerts read.
	env := []string{"TOWERRECALL_RELOAD_POLL=100ms", "TOWERRECALL_DEBUG_ADDR=127.0.0.1:0", "TOWERRECALL_CATALOG_TOKEN=demo-token-0123456789"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &logBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"towerrecall", "serve", "--model", modelDir, "--addr", "127.0.0.1:0"},
			env, io.Discard, logs)
	}()
	// The profiler listens from the start, before the demo model is
	// trained, so a slow start can be profiled.
	prof := client{t: t, base: "http://" + logs.waitLog(t, "profiler listening (serve.debug_addr)", time.Minute)["addr"].(string)}
	if status, _, body := prof.do("GET", "/debug/pprof/goroutine?debug=1", ""); status != 200 || !strings.Contains(string(body), "goroutine profile:") {
		t.Errorf("profiler during start: %d %.200s", status, body)
	}
	// The API serves from the start too: /healthz 200 while the demo
	// trains (a startup probe sees a live process), /readyz 503 until the
	// model is loaded.
	early := client{t: t, base: "http://" + logs.waitLog(t, "serving HTTP", time.Minute)["addr"].(string)}
	if s := logs.String(); strings.Contains(s, `"message":"ready"`) &&
		strings.Index(s, `"message":"ready"`) < strings.Index(s, `"message":"serving HTTP"`) {
		t.Error("the API began serving only once the model was ready")
	}
	if status, _, body := early.do("GET", "/healthz", ""); status != 200 {
		t.Errorf("/healthz during start-up: %d %.200s", status, body)
	}
	switch status, _, body := early.do("GET", "/readyz", ""); status {
	case 503: // before the model is loaded, as expected
	case 200: // loaded already (a fast machine): then it says so at once
		logs.waitLog(t, "ready", 10*time.Second)
	default:
		t.Errorf("/readyz during start-up: %d %.200s", status, body)
	}
	ready := logs.waitLog(t, "ready", 5*time.Minute)
	if b, _ := ready["build"].(string); !strings.HasPrefix(b, "towerrecall ") { // which binary serves
		t.Errorf("the ready line names no build: %v", ready)
	}
	c := client{t: t, base: "http://" + ready["addr"].(string)}
	info := checkAPI(t, c, catalogOf(t, modelDir))
	if status, _, body := prof.do("GET", "/debug/pprof/heap?debug=1", ""); status != 200 || !strings.Contains(string(body), "heap profile:") {
		t.Errorf("profiler heap: %d %.200s", status, body)
	}
	if status, _, _ := c.do("GET", "/debug/pprof/", ""); status != 404 {
		t.Errorf("the API's listener answers /debug/pprof/ with %d, want 404 (the profiler has its own)", status)
	}

	// A corrupt artifact is refused and the old model keeps serving.
	vec := filepath.Join(modelDir, "movie_vectors.bin")
	orig, err := os.ReadFile(vec)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), orig...)
	bad[10] ^= 0xff
	if err := os.WriteFile(vec, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	refused := logs.waitLog(t, "reload refused; the previous model keeps serving", 30*time.Second)
	if !strings.Contains(fmt.Sprint(refused["error"]), "checksum mismatch") {
		t.Errorf("refusal does not name the checksum: %v", refused)
	}
	var after modelResp
	c.json("GET", "/model", "", 200, &after)
	if after.Version != info.Version {
		t.Errorf("version changed to %q after a refused reload", after.Version)
	}
	c.json("POST", "/recall", `{"user": {"gender": "F"}}`, 200, nil)
	_, _, metrics := c.do("GET", "/metrics", "")
	checkAlertMetrics(t, string(metrics))
	checkDocumentedMetrics(t, string(metrics))

	// Restoring the file and sending SIGHUP reloads it.
	if err := os.WriteFile(vec, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logs.waitLog(t, "reloaded", 30*time.Second)

	// Publishing a new artifact (a new manifest) is picked up by polling.
	b, err := artifact.Load(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	b.Manifest.Version = "republished"
	if err := artifact.Save(modelDir, b); err != nil {
		t.Fatal(err)
	}
	logs.waitLogWhere(t, "reloaded", "trigger", "manifest changed", 30*time.Second)
	c.json("GET", "/model", "", 200, &after)
	if after.Version != "republished" {
		t.Errorf("version %q after the manifest poll, want republished", after.Version)
	}

	// An artifact copied in file by file: the new manifest lands while a
	// file it lists is still the wrong one. The poll refuses it and tries
	// again until the file arrives.
	b.Manifest.Version = "copied"
	staged := filepath.Join(dir, "staged")
	if err := artifact.Save(staged, b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vec, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile(filepath.Join(staged, artifact.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	// The manifest itself lands whole (written beside, then renamed, as
	// copy tools do): a poll that read it half-written would log a second,
	// different failure.
	part := filepath.Join(dir, "manifest.part")
	if err := os.WriteFile(part, manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(part, filepath.Join(modelDir, artifact.ManifestFile)); err != nil {
		t.Fatal(err)
	}
	logs.waitLogN(t, "reload refused; the previous model keeps serving", 2, 30*time.Second)
	time.Sleep(300 * time.Millisecond) // a few polls while the file is still wrong
	// Two refusals at error level: the SIGHUP's above, and this one once.
	if lines := logs.logLines("reload refused; the previous model keeps serving"); len(lines) != 2 {
		t.Errorf("%d refusals logged at error level, want 2 (a repeated failure is logged once): %v", len(lines), lines)
	}
	if err := os.WriteFile(vec, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for c.json("GET", "/model", "", 200, &after); after.Version != "copied"; c.json("GET", "/model", "", 200, &after) {
		if time.Now().After(deadline) {
			t.Fatalf("version %q 30 s after the last file arrived, want copied", after.Version)
		}
		time.Sleep(50 * time.Millisecond)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no shutdown within 30 s")
	}
	if _, err := http.Get(prof.base + "/debug/pprof/"); err == nil {
		t.Error("the profiler still answers after serve returned")
	}
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", []string{"towerrecall"}, "Usage"},
		{"unknown command", []string{"towerrecall", "fly"}, "unknown command"},
		{"unknown data command", []string{"towerrecall", "data", "fetch", "--dataset", "ml-1m"}, `data: unknown command "fetch" (download or synth)`},
		{"a flag for data", []string{"towerrecall", "data", "--dir", "x"}, "data: name the command (download or synth) before its flags"},
		{"train without data", []string{"towerrecall", "train", "--out", "x"}, "no data"},
		{"eval without files", []string{"towerrecall", "eval"}, "eval needs"},
		{"bad config value", []string{"towerrecall", "train", "--data", "demo", "--objective", "bpr"}, "--objective: config: unknown objective or preset \"bpr\" (objectives: softmax, pointwise"},
		{"unknown dataset", []string{"towerrecall", "data", "download", "--dataset", "ml-25m"}, `--dataset: unknown dataset "ml-25m"`},
		// The flag package stops at the first argument: without the check,
		// the flags after it were dropped (train wrote var/model, serve
		// served it, download fetched ml-100k).
		{"train: flags after an argument", []string{"towerrecall", "train", "--data", "demo", "typo", "--out", "x"}, `unexpected argument "typo"`},
		{"serve: flags after an argument", []string{"towerrecall", "serve", "typo", "--model", "x"}, `unexpected argument "typo"`},
		{"eval: an argument", []string{"towerrecall", "eval", "x"}, `unexpected argument "x"`},
		{"prior: an argument", []string{"towerrecall", "prior", "--model", "m", "x"}, `unexpected argument "x"`},
		{"download: flags after an argument", []string{"towerrecall", "data", "download", "x", "--dataset", "ml-1m"}, `unexpected argument "x"`},
		{"synth: an argument", []string{"towerrecall", "data", "synth", "--dir", "d", "x"}, `unexpected argument "x"`},
		{"version: an argument", []string{"towerrecall", "version", "x"}, `unexpected argument "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			err := run(context.Background(), tt.args, nil, &out, &errOut)
			if err == nil {
				t.Fatal("run succeeded")
			}
			if !strings.Contains(err.Error()+errOut.String(), tt.want) {
				t.Errorf("output %q / error %v does not mention %q", errOut.String(), err, tt.want)
			}
		})
	}
}

// TestUnknownEnvWarned: a misspelt TOWERRECALL_* variable is named on
// stderr (serve logs it: TestServeWithoutModel), not silently ignored.
func TestUnknownEnvWarned(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"towerrecall", "version"}, []string{"TOWERRECALL_ADRR=:9", "TOWERRECALL_ADDR=:8"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if got := errOut.String(); !strings.Contains(got, "warning: environment variable TOWERRECALL_ADRR is not a setting") || strings.Contains(got, "TOWERRECALL_ADDR is not") {
		t.Errorf("stderr %q", got)
	}
}

// TestUnknownEnvWarnedWhenServeRefusesItsConfig: serve logs the warnings
// once its logger is up; when the configuration stops it before that (a
// misspelt name may be the reason), they are written before the error.
func TestUnknownEnvWarnedWhenServeRefusesItsConfig(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	env := []string{"TOWERRECALL_ADRR=:9", "TOWERRECALL_INDEX=bogus"}
	err := run(context.Background(), []string{"towerrecall", "serve", "--model", t.TempDir()}, env, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "serve.index") {
		t.Fatalf("err = %v, want the index refused", err)
	}
	if got := errOut.String(); !strings.Contains(got, "TOWERRECALL_ADRR is not a setting and is ignored (did you mean TOWERRECALL_ADDR?)") {
		t.Errorf("stderr %q does not name TOWERRECALL_ADRR", got)
	}
}

// data download goes to the URL in TOWERRECALL_DOWNLOAD_URL (a mirror) but
// still verifies the pinned GroupLens checksum: a different archive is
// refused and nothing is left behind.
func TestDataDownloadVerifiesChecksum(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("PK this is not the GroupLens archive"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	env := []string{"TOWERRECALL_DOWNLOAD_URL=" + srv.URL + "/ml-100k.zip"}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"towerrecall", "data", "download", "--dataset", "ml-100k", "--dir", dir},
		env, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("err = %v, want a checksum error", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("download left %d entries behind", len(entries))
	}
}

// A TOWERRECALL_DOWNLOAD_URL that is no http or https URL is refused
// naming the variable, before anything is fetched or written (it was
// fetched, and the error asked whether the machine was offline).
func TestDataDownloadURLChecked(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"notaurl", "file:///etc/passwd", "ftp://mirror.example/ml-100k.zip", "http://"} {
		dir := filepath.Join(t.TempDir(), "data")
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{"towerrecall", "data", "download", "--dir", dir},
			[]string{"TOWERRECALL_DOWNLOAD_URL=" + u}, &out, &errOut)
		if want := fmt.Sprintf("TOWERRECALL_DOWNLOAD_URL: %q is not an http or https URL", u); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want one saying %q", u, err, want)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s: %s was created (%v)", u, dir, err)
		}
	}
}

// TestDataDownloadURLRefusedWithoutPassword: a refused
// TOWERRECALL_DOWNLOAD_URL with credentials is named without its password
// (the error is the training Job's init-container log), also when it does
// not parse: a secret made from a file keeps its last newline, and such a
// URL was quoted whole, password and all.
func TestDataDownloadURLRefusedWithoutPassword(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, shown string }{
		{"ftp://mirror:s3cr3t-pass@mirror.example/ml-100k.zip", "ftp://mirror:xxxxx@mirror.example/ml-100k.zip"},
		{"https://mirror:s3cr3t-pass@mirror.example/ml-100k.zip\n", "https://xxxxx@mirror.example/ml-100k.zip\n"},
		{"https://mirror:s3cr3t-pass@mirror.example:80a/ml-100k.zip", "https://xxxxx@mirror.example:80a/ml-100k.zip"},
		{"https://mirror:s3cr3t-pass@mirror example/ml-100k.zip", "https://xxxxx@mirror example/ml-100k.zip"},
		// An '@' in the password, not escaped: all of it is hidden, up
		// to the last '@'.
		{"https://mirror:s3cr3t-pass@word@mirror.example/ml-100k.zip\n", "https://xxxxx@mirror.example/ml-100k.zip\n"},
		// No scheme before the credentials, a "://" after them.
		{"mirror:s3cr3t-pass@mirror.example/get?from=https://x\n", "xxxxx@mirror.example/get?from=https://x\n"},
		// A presigned URL's query: its values are hidden, names kept.
		{"ftp://mirror.example/ml-100k.zip?X-Amz-Signature=s3cr3t&x", "ftp://mirror.example/ml-100k.zip?X-Amz-Signature=xxxxx&xxxxx"},
		// Nothing to hide: the URL is shown whole.
		{"https://mirror example/ml-100k.zip", "https://mirror example/ml-100k.zip"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{"towerrecall", "data", "download", "--dir", filepath.Join(t.TempDir(), "data")},
			[]string{"TOWERRECALL_DOWNLOAD_URL=" + tc.url}, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), "TOWERRECALL_DOWNLOAD_URL: "+strconv.Quote(tc.shown)+" is not") ||
			strings.Contains(err.Error()+errOut.String(), "s3cr3t") || strings.Contains(err.Error()+errOut.String(), "word@") {
			t.Errorf("%q: err = %v (stderr %q), want the variable named with %q, without the password", tc.url, err, errOut.String(), tc.shown)
		}
	}
}
