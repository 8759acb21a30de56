package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/towerrecall/towerrecall/internal/config"
	"github.com/towerrecall/towerrecall/internal/movielens"
	"github.com/towerrecall/towerrecall/internal/pipeline"
	"github.com/towerrecall/towerrecall/internal/recall"
	"github.com/towerrecall/towerrecall/internal/server"
)

// requestMix describes the /recall bodies of requestBodies, for the report.
const requestMix = "70 % known users with all features (k 10), 15 % cold-start users (features only, k 10), " +
	"10 % known users with k 100, 5 % known users with a genre filter (k 10); exclude_seen left at its default"

// requestBodies returns n seeded /recall bodies following requestMix.
func requestBodies(sv *serving, n int, seed uint64) [][]byte {
	known := map[movielens.UserID]bool{}
	for _, id := range sv.bundle.Users {
		known[id] = true
	}
	var users []movielens.User
	for _, u := range sv.dataset.Users {
		if known[u.ID] {
			users = append(users, u)
		}
	}
	if len(users) == 0 {
		users = sv.dataset.Users
	}
	genreSet := map[string]bool{}
	for _, m := range sv.bundle.Movies {
		for _, g := range m.Genres {
			genreSet[g] = true
		}
	}
	var genres []string
	for g := range genreSet {
		genres = append(genres, g)
	}
	slices.Sort(genres)
	rng := rand.New(rand.NewPCG(seed, 0x7e9b))
	out := make([][]byte, n)
	for i := range out {
		u := users[rng.IntN(len(users))]
		user := map[string]any{"gender": u.Gender, "age": u.Age, "occupation": u.Occupation}
		if u.Zip != "" {
			user["zip"] = u.Zip
		}
		body := map[string]any{"user": user, "k": 10}
		switch r := rng.IntN(100); {
		case r < 70:
			user["user_id"] = u.ID
		case r < 85: // cold start
		case r < 95:
			user["user_id"] = u.ID
			body["k"] = 100
		default:
			user["user_id"] = u.ID
			if len(genres) > 0 {
				body["genres"] = []string{genres[rng.IntN(len(genres))]}
			}
		}
		out[i], _ = json.Marshal(body) // maps of strings and numbers always encode
	}
	return out
}

// newService loads the serving model into a recall.Service with the serve
// defaults and the given index backend ("auto", "exact" or "hnsw").
func newService(sv *serving, backend string, reg *prometheus.Registry) (*recall.Service, error) {
	cfg := config.Default()
	svc, err := recall.New(recall.Options{
		Index: backend, MinRecall: cfg.Serve.MinRecall, SelfCheckQueries: cfg.Serve.SelfCheckQueries,
		HNSW: pipeline.HNSWParams(cfg.Serve), Seed: cfg.Train.Seed,
	}, zerolog.Nop(), reg)
	if err != nil {
		return nil, err
	}
	if err := svc.Load(sv.bundle); err != nil {
		return nil, err
	}
	return svc, nil
}

// newServer wraps svc in the real HTTP server. Access logs are encoded to
// io.Discard, so their cost is measured but nothing is printed.
func newServer(svc *recall.Service, reg *prometheus.Registry) (*server.Server, error) {
	return server.New(server.ConfigFrom(config.Default().Serve), zerolog.New(io.Discard).With().Timestamp().Logger(), svc, reg)
}

// autoBackend reports which index `index: auto` serves the model from.
func autoBackend(sv *serving) (string, map[string]float64, error) {
	svc, err := newService(sv, "auto", prometheus.NewRegistry())
	if err != nil {
		return "", nil, err
	}
	info, _ := svc.Info()
	return info.Backend, info.IndexRecall, nil
}

func runHandler(ctx context.Context, o options, sv *serving, p *progress) ([]HandlerBench, error) {
	bodies := requestBodies(sv, 1024, o.seed)
	var out []HandlerBench
	for _, backend := range []string{"exact", "hnsw"} {
		reg := prometheus.NewRegistry()
		svc, err := newService(sv, backend, reg)
		if err != nil {
			return nil, fmt.Errorf("handler %s: %w", backend, err)
		}
		srv, err := newServer(svc, reg)
		if err != nil {
			return nil, err
		}
		info, _ := svc.Info()
		hb, err := timeHandler(ctx, srv.Handler(), bodies, o.requests)
		if err != nil {
			return nil, fmt.Errorf("handler %s: %w", backend, err)
		}
		hb.Backend = info.Backend
		p.logf("handler /recall (%s): %d requests, p50 %v, p99 %v, p99.9 %v, %d errors", hb.Backend, hb.Requests,
			percentile(hb.Latencies, 0.5), percentile(hb.Latencies, 0.99), percentile(hb.Latencies, 0.999), hb.Errors)
		out = append(out, hb)
	}
	return out, nil
}

// timeHandler serves n requests one after another (after a warm-up) and
// times each ServeHTTP call.
func timeHandler(ctx context.Context, h http.Handler, bodies [][]byte, n int) (HandlerBench, error) {
	hb := HandlerBench{Requests: n, Latencies: make([]time.Duration, n)}
	serve := func(i int) (time.Duration, int) {
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/recall", bytes.NewReader(bodies[i%len(bodies)]))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, req)
		return time.Since(start), w.Code
	}
	for i := range min(n, 500) {
		if _, code := serve(i); code != http.StatusOK {
			return hb, fmt.Errorf("warm-up request %d: status %d", i, code)
		}
	}
	for i := range n {
		if i%1000 == 0 && ctx.Err() != nil {
			return hb, ctx.Err()
		}
		d, code := serve(i)
		hb.Latencies[i] = d
		if code != http.StatusOK {
			hb.Errors++
		}
	}
	return hb, nil
}
