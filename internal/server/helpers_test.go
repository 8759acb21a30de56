package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/recall"
)

// fakeRecaller answers from fixed data and remembers the last requests.
// Hooks, when set, replace the default behaviour.
type fakeRecaller struct {
	mu         sync.Mutex
	ready      bool
	lastRecall recall.Request
	lastScore  recall.ScoreRequest
	served     int // Recall and Score calls
	recallHook func(ctx context.Context, req recall.Request) (recall.Result, error)
	putHook    func(ctx context.Context, m recall.Movie) (recall.PutResult, error)
	lastPut    recall.Movie
	catalog    map[movielens.MovieID]recall.Movie // movies PUT and not deleted
	scoreHook  func(ctx context.Context, req recall.ScoreRequest) (recall.ScoreResult, error)
	pinned     atomic.Int64 // Pinned calls
}

func newFake() *fakeRecaller { return &fakeRecaller{ready: true} }

func (f *fakeRecaller) setReady(ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready = ok
}

// Pinned counts its calls (a batch takes one) and answers as Recall.
func (f *fakeRecaller) Pinned() func(context.Context, recall.Request) (recall.Result, error) {
	f.pinned.Add(1)
	return f.Recall
}

func (f *fakeRecaller) Recall(ctx context.Context, req recall.Request) (recall.Result, error) {
	f.mu.Lock()
	f.lastRecall = req
	f.served++
	ready, hook := f.ready, f.recallHook
	f.mu.Unlock()
	if hook != nil {
		return hook(ctx, req)
	}
	if !ready {
		return recall.Result{}, recall.NoModelError{}
	}
	return fakeResult(min(req.K, 10)), nil
}

func (f *fakeRecaller) Score(ctx context.Context, req recall.ScoreRequest) (recall.ScoreResult, error) {
	f.mu.Lock()
	f.lastScore = req
	f.served++
	ready, hook := f.ready, f.scoreHook
	f.mu.Unlock()
	if hook != nil {
		return hook(ctx, req)
	}
	if !ready {
		return recall.ScoreResult{}, recall.NoModelError{}
	}
	out := recall.ScoreResult{ModelVersion: "v-test"}
	for _, id := range req.MovieIDs {
		if id > 4000 {
			out.Unknown = append(out.Unknown, id)
			continue
		}
		rating := float32(3.5)
		out.Scores = append(out.Scores, recall.Score{MovieID: id, Score: 0.5, Rating: &rating})
	}
	return out, nil
}

func (f *fakeRecaller) Info() (recall.ModelInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ready {
		return recall.ModelInfo{}, false
	}
	return recall.ModelInfo{
		Version:       "v-test",
		CreatedAt:     time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC),
		LoadedAt:      time.Date(2025, 1, 2, 8, 30, 0, 123, time.UTC),
		Objective:     "softmax",
		Dim:           8,
		Movies:        3706,
		Users:         6040,
		Backend:       "hnsw",
		IndexRecall:   map[string]float64{"recall@10": 0.998},
		IndexLatency:  map[string]float64{"exact": 52.0, "hnsw": 12.4},
		IndexChoice:   "hnsw faster and recall ≥ min_recall",
		IndexEfSearch: 64,
		Metrics:       map[string]float64{"recall@10": 0.21, "rmse": nanValue()},
		Vocabularies:  map[string][]string{"gender": {"F", "M"}, "genres": {"Action", "Comedy"}, "empty": nil},
		Prior:         &recall.PriorInfo{Now: time.Date(2000, 12, 6, 0, 0, 0, 0, time.UTC), HalfLifeDays: 30, Weight: 0.2, ColdWeight: 1, FeatureShare: 0.75, Ratings: 341355},
	}, true
}

// Movies answers from a catalogue of ten fake movies (those of
// fakeResult), titles containing query, limit of them from offset on.
func (f *fakeRecaller) Movies(query string, offset, limit int) (recall.MoviesResult, error) {
	f.mu.Lock()
	ready := f.ready
	f.mu.Unlock()
	if !ready {
		return recall.MoviesResult{}, recall.NoModelError{}
	}
	out := recall.MoviesResult{ModelVersion: "v-test", Movies: []recall.Movie{}}
	for _, it := range fakeResult(10).Items {
		if !strings.Contains(strings.ToLower(it.Title), strings.ToLower(query)) {
			continue
		}
		out.Total++
		if out.Total > offset && len(out.Movies) < limit {
			out.Movies = append(out.Movies, recall.Movie{MovieID: it.MovieID, Title: it.Title, Genres: it.Genres, Year: it.Year})
		}
	}
	if next := offset + len(out.Movies); next < out.Total && len(out.Movies) > 0 {
		out.NextOffset = next
	}
	return out, nil
}

// Similar knows movies 1 to 4000 and answers fakeResult's items.
func (f *fakeRecaller) Similar(ctx context.Context, id movielens.MovieID, k int) (recall.SimilarResult, error) {
	f.mu.Lock()
	ready := f.ready
	f.mu.Unlock()
	if !ready {
		return recall.SimilarResult{}, recall.NoModelError{}
	}
	if id > 4000 {
		return recall.SimilarResult{}, &recall.UnknownMovieError{MovieID: id}
	}
	if err := ctx.Err(); err != nil {
		return recall.SimilarResult{}, err
	}
	res := fakeResult(min(k, 10))
	return recall.SimilarResult{ModelVersion: "v-test", Movie: recall.Movie{MovieID: id, Title: "Query (1999)", Genres: []string{"Drama"}, Year: 1999}, Items: res.Items}, nil
}

// PutMovie stores the id; genre "Western" is unknown to the fake model.
func (f *fakeRecaller) PutMovie(ctx context.Context, m recall.Movie) (recall.PutResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastPut = m
	if f.putHook != nil {
		return f.putHook(ctx, m)
	}
	if !f.ready {
		return recall.PutResult{}, recall.NoModelError{}
	}
	for i, g := range m.Genres {
		if g == "Western" {
			return recall.PutResult{}, &recall.Error{Field: fmt.Sprintf("genres[%d]", i), Message: "unknown genre"}
		}
	}
	if f.catalog == nil {
		f.catalog = map[movielens.MovieID]recall.Movie{}
	}
	old, existed := f.catalog[m.MovieID]
	f.catalog[m.MovieID] = m
	changed := !existed || old.Title != m.Title || old.Year != m.Year || !slices.Equal(old.Genres, m.Genres)
	return recall.PutResult{ModelVersion: "v-test", Created: !existed, Changed: changed, VectorNorm: 1, Seq: uint64(len(f.catalog)),
		Movie: recall.Movie{MovieID: m.MovieID, Title: m.Title, Genres: m.Genres, Year: m.Year}}, nil
}

// DeleteMovie knows the movies PUT before.
func (f *fakeRecaller) DeleteMovie(ctx context.Context, id movielens.MovieID) (recall.DeleteResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ready {
		return recall.DeleteResult{}, recall.NoModelError{}
	}
	if _, ok := f.catalog[id]; !ok {
		return recall.DeleteResult{}, &recall.UnknownMovieError{MovieID: id}
	}
	delete(f.catalog, id)
	return recall.DeleteResult{ModelVersion: "v-test", MovieID: id, Seq: 99}, nil
}

func nanValue() float64 { var z float64; return z / z }

// calls is the number of Recall and Score calls so far.
func (f *fakeRecaller) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.served
}

func (f *fakeRecaller) last() recall.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastRecall
}

func fakeResult(n int) recall.Result {
	res := recall.Result{ModelVersion: "v-test", Backend: "exact", KnownUser: true}
	for i := range n {
		res.Items = append(res.Items, recall.Item{
			MovieID: movielens.MovieID(i + 1),
			Title:   "Movie " + string(rune('A'+i)) + " (1999)",
			Genres:  []string{"Comedy", "Drama"},
			Year:    1999,
			Score:   1 - float32(i)/100,
		})
	}
	if n > 1 {
		res.Items[n-1].Year = 0 // an unknown year is left out
		res.Items[n-1].Genres = nil
	}
	return res
}

// testServer is a Server with its registry and captured logs.
type testServer struct {
	*Server
	reg  *prometheus.Registry
	rec  *fakeRecaller
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// testConfig is config.Default's serve section, as the server sees it.
func testConfig() Config {
	return Config{
		BodyLimit: 1 << 20, RequestTimeout: 2 * time.Second, ReadHeaderTimeout: 2 * time.Second,
		ReadTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second,
		ShutdownTimeout: 15 * time.Second, MaxHeaderBytes: 64 << 10, BatchMax: 100, MaxRecent: 50,
		MaxItemsInFlight:     1_000_000, // config.Default's: the benchmarks measure the served path
		MaxBodyBytesInFlight: 32 << 20,
	}
}

// newTestServer makes a server with cfg, whose zero fields take
// testConfig's values.
func newTestServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	d := testConfig()
	for _, f := range []struct{ v, def *time.Duration }{
		{&cfg.RequestTimeout, &d.RequestTimeout}, {&cfg.ReadHeaderTimeout, &d.ReadHeaderTimeout},
		{&cfg.ReadTimeout, &d.ReadTimeout}, {&cfg.WriteTimeout, &d.WriteTimeout},
		{&cfg.IdleTimeout, &d.IdleTimeout}, {&cfg.ShutdownTimeout, &d.ShutdownTimeout},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	if cfg.BodyLimit == 0 {
		cfg.BodyLimit = d.BodyLimit
	}
	if cfg.BatchMax == 0 {
		cfg.BatchMax = d.BatchMax
	}
	if cfg.MaxRecent == 0 {
		cfg.MaxRecent = d.MaxRecent
	}
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	rec := newFake()
	s, err := New(cfg, zerolog.New(logs), rec, reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testServer{Server: s, reg: reg, rec: rec, logs: logs}
}

// serveLoopback runs ts.Serve on a free loopback port until cancel is
// called; done receives what Serve returned.
func serveLoopback(t *testing.T, ts *testServer) (addr string, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- ts.Serve(ctx, ln) }()
	return ln.Addr().String(), cancel, ch
}

// call sends one request through the whole handler.
func (ts *testServer) call(method, path, contentType, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	ts.Handler().ServeHTTP(w, req)
	return w
}

// contract checks requests and responses against openapi.yaml.
type contract struct {
	doc    *openapi3.T
	router routers.Router
}

func loadContract(t testing.TB) *contract {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("../../openapi.yaml")
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.yaml is invalid: %v", err)
	}
	doc.Servers = nil // match requests to any host, not only the quick start's
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("openapi router: %v", err)
	}
	return &contract{doc: doc, router: router}
}

func newRequest(method, path, contentType, body string) *http.Request {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

// checkResponse validates a response of the given request. A path the
// contract does not list (a 404) is checked against the Problem schema.
func (c *contract) checkResponse(t testing.TB, method, path, contentType, body string, w *httptest.ResponseRecorder) {
	t.Helper()
	req := newRequest(method, path, contentType, body)
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		if w.Code != http.StatusNotFound && w.Code != http.StatusMethodNotAllowed {
			t.Fatalf("%s %s: no route in openapi.yaml (%v) but status %d", method, path, err, w.Code)
		}
		var v any
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatalf("%s %s: problem is not JSON: %v", method, path, err)
		}
		if err := c.doc.Components.Schemas["Problem"].Value.VisitJSON(v); err != nil {
			t.Fatalf("%s %s: problem does not match the schema: %v\n%s", method, path, err, w.Body)
		}
		return
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			// Prometheus text and the explorer's files have no decoder.
			ExcludeResponseBody: path == "/metrics" || path == "/" || strings.HasPrefix(path, "/explorer/"),
		},
	}
	err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 w.Code,
		Header:                 w.Header(),
		Body:                   io.NopCloser(bytes.NewReader(w.Body.Bytes())),
		Options:                in.Options,
	})
	if err != nil {
		t.Fatalf("%s %s: response %d does not match openapi.yaml: %v\n%s", method, path, w.Code, err, w.Body)
	}
	// Without a body check kin-openapi does not look at the media type
	// either.
	if resp := route.Operation.Responses.Status(w.Code); in.Options.ExcludeResponseBody && resp != nil && resp.Value != nil && len(resp.Value.Content) > 0 {
		if mt, _, _ := mime.ParseMediaType(w.Header().Get("Content-Type")); resp.Value.Content.Get(mt) == nil {
			t.Errorf("%s %s: response %d is %s, which openapi.yaml does not list", method, path, w.Code, mt)
		}
	}
	// kin-openapi checks the headers a response declares, not those it
	// leaves out: a header with meaning for clients must be declared
	// wherever the server sends it.
	if resp := route.Operation.Responses.Status(w.Code); resp != nil && resp.Value != nil {
		for _, name := range contractHeaders {
			if w.Header().Get(name) == "" {
				continue
			}
			declared := false
			for h := range resp.Value.Headers {
				declared = declared || strings.EqualFold(h, name)
			}
			if !declared {
				t.Errorf("%s %s: response %d carries %s, which openapi.yaml does not declare for it", method, path, w.Code, name)
			}
		}
	}
}

// contractHeaders are the response headers clients act on.
var contractHeaders = []string{requestIDHeader, "Retry-After", "Allow", "WWW-Authenticate", "Accept-Post", "ETag", "Content-Security-Policy"}

// requestValid reports whether the contract accepts the request.
func (c *contract) requestValid(t testing.TB, method, path, contentType, body string) error {
	t.Helper()
	req := newRequest(method, path, contentType, body)
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return err
	}
	return openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      route,
		Options:    &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}, // the server checks the token
	})
}

// decodeProblem parses a problem response and checks what every problem
// must carry.
func decodeProblemBody(t testing.TB, w *httptest.ResponseRecorder) problem {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json (status %d, body %s)", ct, w.Code, w.Body)
	}
	var p problem
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("problem body: %v\n%s", err, w.Body)
	}
	if p.Status != w.Code {
		t.Errorf("problem status %d, response status %d", p.Status, w.Code)
	}
	if p.RequestID == "" || p.RequestID != w.Header().Get("X-Request-Id") {
		t.Errorf("problem request_id %q, header %q", p.RequestID, w.Header().Get("X-Request-Id"))
	}
	if !strings.HasPrefix(p.Type, problemTypePrefix) || p.Title == "" || p.Detail == "" {
		t.Errorf("incomplete problem: %+v", p)
	}
	return p
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func zerologNop() zerolog.Logger { return zerolog.Nop() }

func newRegistry() *prometheus.Registry { return prometheus.NewRegistry() }
