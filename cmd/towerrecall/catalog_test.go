package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const e2eToken = "e2e-catalog-token-0123456789"

// catalogServe trains a demo model and serves it with catalogue changes
// on; the returned function restarts serve on the same model and journal.
func catalogServe(t *testing.T) (*serveProc, func() *serveProc) {
	t.Helper()
	bin := buildBinary(t)
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	trainDemo(t, bin, model, 1)
	cfg := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfg, []byte("serve:\n  catalog_token: "+e2eToken+"\n  index: exact\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func() *serveProc { return startServe(t, bin, "--config", cfg, "--model", model) }
	return start(), start
}

// putMovie sends PUT /movies/{id} and returns the status.
func putMovie(hc *http.Client, base string, id int, genre string) (int, error) {
	body := fmt.Sprintf(`{"title":"Catalogue test %d","genres":[%q],"year":2024}`, id, genre)
	req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/movies/%d", base, id), strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// scoredIDs returns which of ids /score knows.
func scoredIDs(t *testing.T, c client, ids []int) map[int]bool {
	t.Helper()
	known := map[int]bool{}
	for chunk := range slices.Chunk(ids, 1000) {
		b, _ := json.Marshal(map[string]any{"user": map[string]any{}, "movie_ids": chunk})
		var out struct {
			Scores []struct {
				MovieID int `json:"movie_id"`
			} `json:"scores"`
		}
		c.json("POST", "/score", string(b), 200, &out)
		for _, s := range out.Scores {
			known[s.MovieID] = true
		}
	}
	return known
}

// TestE2ECatalogKill9 PUTs movies over HTTP from several clients, kills
// serve with SIGKILL in the middle, restarts it, and requires every
// acknowledged PUT to be there; a PUT is recallable by the next request.
func TestE2ECatalogKill9(t *testing.T) {
	e2eOnly(t)
	p, restart := catalogServe(t)
	base := "http://" + p.addr

	// Recallable by the next request: the only Sci-Fi... movie asked for.
	if st, err := putMovie(http.DefaultClient, base, 900001, "Documentary"); err != nil || st != 201 {
		t.Fatalf("put: %d %v", st, err)
	}
	var rec struct {
		Items []struct {
			MovieID int `json:"movie_id"`
		} `json:"items"`
	}
	p.c.json("POST", "/recall", `{"user":{},"k":1000,"genres":["Documentary"]}`, 200, &rec)
	if !slices.ContainsFunc(rec.Items, func(it struct {
		MovieID int `json:"movie_id"`
	}) bool {
		return it.MovieID == 900001
	}) {
		t.Fatalf("the movie PUT is not recalled by the next request: %+v", rec.Items)
	}

	var (
		mu    sync.Mutex
		acked []int
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	next.Store(1_000_000)
	hc := &http.Client{Timeout: 5 * time.Second}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				id := int(next.Add(1))
				st, err := putMovie(hc, base, id, "Drama")
				if err != nil {
					return // the process is gone
				}
				if st == 201 {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				} else {
					t.Errorf("put %d: status %d", id, st)
					return
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := p.cmd.Process.Kill(); err != nil { // SIGKILL: no drain, no flush
		t.Fatal(err)
	}
	<-p.exit
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n < 100 {
		t.Fatalf("only %d PUTs acknowledged before the kill", n)
	}

	p2 := restart()
	known := scoredIDs(t, p2.c, acked)
	lost := 0
	for _, id := range acked {
		if !known[id] {
			lost++
		}
	}
	var info struct {
		Catalog struct {
			Added      int `json:"added"`
			JournalSeq int `json:"journal_seq"`
		} `json:"catalog"`
	}
	p2.c.json("GET", "/model", "", 200, &info)
	t.Logf("%d PUTs acknowledged before kill -9; after restart %d lost, catalogue %+v; journal open: %v",
		n, lost, info.Catalog, p2.logs.logLines("catalogue journal opened"))
	if lost > 0 {
		t.Fatalf("%d acknowledged PUTs lost after kill -9", lost)
	}
	// A PUT that was in flight may have been journalled but not
	// acknowledged: at most one per client.
	if extra := info.Catalog.Added - 1 - n; extra < 0 || extra > 4 {
		t.Errorf("%d movies added after restart for %d acknowledged", info.Catalog.Added, n+1)
	}
	p2.stop(t)
}

// TestE2ECatalogLoad sends PUTs at a fixed rate while closed-loop clients
// send /recall, and reports the PUT rate reached and the /recall latency
// under it. It asserts no errors and every acknowledged PUT visible, not
// timings (the machine is shared).
func TestE2ECatalogLoad(t *testing.T) {
	e2eOnly(t)
	rate := 1000 // PUTs per second
	// /recall: closed loop (4 clients as fast as they go) unless
	// TOWERRECALL_CATALOG_RECALL_RATE paces them (requests per second).
	recallRate, _ := strconv.Atoi(os.Getenv("TOWERRECALL_CATALOG_RECALL_RATE"))
	dur := 10 * time.Second
	p, _ := catalogServe(t)
	base := "http://" + p.addr
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: tr}

	var putErrs, recErrs atomic.Int64
	var putsDone atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Recall clients.
	var lmu sync.Mutex
	var lat []time.Duration
	bodies := []string{
		`{"user":{"user_id":12,"age":30},"k":10}`,
		`{"user":{"gender":"F","age":25},"k":100}`,
		`{"user":{"user_id":40},"k":20,"genres":["Drama","Comedy"]}`,
		`{"user":{"age":50,"occupation":"writer"},"k":10,"exclude_movie_ids":[1,2,3]}`,
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var pace <-chan time.Time
			if recallRate > 0 {
				tk := time.NewTicker(4 * time.Second / time.Duration(recallRate))
				defer tk.Stop()
				pace = tk.C
			}
			for i := 0; ; i++ {
				if pace != nil {
					<-pace
				}
				select {
				case <-stop:
					lmu.Lock()
					lat = append(lat, mine...)
					lmu.Unlock()
					return
				default:
				}
				t0 := time.Now()
				resp, err := hc.Post(base+"/recall", "application/json", bytes.NewReader([]byte(bodies[(w+i)%len(bodies)])))
				if err != nil {
					recErrs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					recErrs.Add(1)
				}
				mine = append(mine, time.Since(t0))
			}
		}()
	}
	// PUTs at a fixed rate, each on its own goroutine from a bounded pool.
	sem := make(chan struct{}, 64)
	var acked sync.Map
	var putLat []time.Duration // guarded by lmu
	tick := time.NewTicker(time.Second / time.Duration(rate))
	start := time.Now()
	id := 2_000_000
	late := 0
	for time.Since(start) < dur {
		<-tick.C
		// Catch up on ticks the ticker dropped: the rate is exact.
		for due := 2_000_000 + int(time.Since(start).Seconds()*float64(rate)); id < due; {
			id++
			select {
			case sem <- struct{}{}:
			default:
				late++ // the pool is full: the server is not keeping up
				continue
			}
			wg.Add(1)
			go func(id int) {
				defer wg.Done()
				defer func() { <-sem }()
				t0 := time.Now()
				st, err := putMovie(hc, base, id, []string{"Drama", "Comedy", "Action"}[id%3])
				if err != nil || st != 201 {
					if putErrs.Add(1) <= 3 {
						t.Logf("PUT %d after %v: status %d, error %v", id, time.Since(t0), st, err)
					}
					return
				}
				d := time.Since(t0)
				lmu.Lock()
				putLat = append(putLat, d)
				lmu.Unlock()
				putsDone.Add(1)
				acked.Store(id, true)
			}(id)
		}
	}
	tick.Stop()
	for range cap(sem) {
		sem <- struct{}{}
	}
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()

	slices.Sort(lat)
	slices.Sort(putLat)
	quantile := func(lat []time.Duration, f float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(f*float64(len(lat))))]
	}
	q := func(f float64) time.Duration { return quantile(lat, f) }
	var ids []int
	acked.Range(func(k, _ any) bool { ids = append(ids, k.(int)); return true })
	known := scoredIDs(t, p.c, ids)
	missing := 0
	for _, id := range ids {
		if !known[id] {
			missing++
		}
	}
	t.Logf("PUT: %d acknowledged in %.1f s = %.0f/s (target %d/s, %d skipped as the pool was full, %d errors; latency p50 %v p99 %v); /recall: %d requests = %.0f/s, p50 %v p90 %v p99 %v max %v, %d errors; %d acknowledged PUTs not visible",
		putsDone.Load(), elapsed.Seconds(), float64(putsDone.Load())/elapsed.Seconds(), rate, late, putErrs.Load(),
		quantile(putLat, 0.5), quantile(putLat, 0.99),
		len(lat), float64(len(lat))/elapsed.Seconds(), q(0.5), q(0.9), q(0.99), q(1), recErrs.Load(), missing)
	if putErrs.Load() > 0 || recErrs.Load() > 0 || missing > 0 {
		t.Fatalf("errors under load: %d PUT, %d /recall, %d acknowledged PUTs missing", putErrs.Load(), recErrs.Load(), missing)
	}
	p.stop(t)
}
