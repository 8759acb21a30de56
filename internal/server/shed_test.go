package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/towerrecall/towerrecall/internal/recall"
)

// recallK is a /recall body asking for k items.
func recallK(k int) string { return fmt.Sprintf(`{"user":{},"k":%d}`, k) }

// batchK is a /recall/batch body of entries asking for ks.
func batchK(ks ...int) string {
	var e []string
	for _, k := range ks {
		e = append(e, recallK(k))
	}
	return `{"requests":[` + strings.Join(e, ",") + `]}`
}

// scoreN is a /score body of n distinct ids.
func scoreN(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint(i + 1)
	}
	return `{"user":{},"movie_ids":[` + strings.Join(ids, ",") + `]}`
}

// holdRecalls makes ts's Recaller block the recalls asking for k items
// until release is closed; entered receives one value per blocked call.
func holdRecalls(ts *testServer, k int) (entered <-chan struct{}, release func()) {
	in, gate := make(chan struct{}, 16), make(chan struct{})
	ts.rec.recallHook = func(ctx context.Context, req recall.Request) (recall.Result, error) {
		if req.K == k {
			in <- struct{}{}
			<-gate
		}
		return fakeResult(min(req.K, 10)), nil
	}
	var once sync.Once
	return in, func() { once.Do(func() { close(gate) }) }
}

// allFree reports whether every item of ts's capacity is free.
func allFree(ts *testServer) bool {
	if !ts.inflight.TryAcquire(ts.cfg.MaxItemsInFlight) {
		return false
	}
	ts.inflight.Release(ts.cfg.MaxItemsInFlight)
	return true
}

// TestShedOverloaded: a request whose items do not fit beside those in
// flight is a 503 overloaded problem with Retry-After at once; a lighter
// one passes; once the heavy answer is written, its items are free.
func TestShedOverloaded(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	ts := newTestServer(t, Config{MaxItemsInFlight: 100})
	m := ts.call("GET", "/metrics", "", "").Body.String()
	for _, want := range []string{`towerrecall_http_shed_total{route="/recall"} 0`, `towerrecall_http_shed_total{route="/recall/batch"} 0`, `towerrecall_http_shed_total{route="/score"} 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics before any shed lack %s", want)
		}
	}
	entered, release := holdRecalls(ts, 60)
	defer release()
	done := make(chan int)
	go func() { done <- ts.call("POST", "/recall", jsonCT, recallK(60)).Code }()
	<-entered

	for _, tt := range []struct{ path, body string }{
		{"/recall", recallK(41)},
		{"/recall/batch", batchK(20, 21)},
		{"/score", scoreN(41)},
	} {
		w := ts.call("POST", tt.path, jsonCT, tt.body)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
			t.Fatalf("%s: status %d, Retry-After %q: %s", tt.path, w.Code, w.Header().Get("Retry-After"), w.Body)
		}
		if p := decodeProblemBody(t, w); p.Type != problemTypePrefix+"overloaded" {
			t.Errorf("%s: problem type %q", tt.path, p.Type)
		}
		c.checkResponse(t, "POST", tt.path, jsonCT, tt.body, w)
	}
	if w := ts.call("POST", "/recall", jsonCT, recallK(40)); w.Code != http.StatusOK {
		t.Fatalf("a request that fits: status %d: %s", w.Code, w.Body)
	}
	if w := ts.call("POST", "/recall/batch", jsonCT, batchK(20, 20)); w.Code != http.StatusOK {
		t.Fatalf("a batch that fits: status %d: %s", w.Code, w.Body)
	}
	release()
	if code := <-done; code != http.StatusOK {
		t.Fatalf("the held request: status %d", code)
	}
	if !allFree(ts) {
		t.Fatal("items still held after every answer was written")
	}
	if w := ts.call("POST", "/recall", jsonCT, recallK(100)); w.Code != http.StatusOK {
		t.Fatalf("the whole capacity once free: status %d: %s", w.Code, w.Body)
	}
	m = ts.call("GET", "/metrics", "", "").Body.String()
	for _, want := range []string{`towerrecall_http_shed_total{route="/recall"} 1`, `towerrecall_http_shed_total{route="/recall/batch"} 1`, `towerrecall_http_shed_total{route="/score"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestBatchWeightIsSumOfK: a batch weighs its valid entries' k summed.
func TestBatchWeightIsSumOfK(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{MaxItemsInFlight: 100})
	entered, release := holdRecalls(ts, 20)
	defer release()
	done := make(chan int)
	go func() { done <- ts.call("POST", "/recall", jsonCT, recallK(20)).Code }()
	<-entered
	// 20 + 30+30+21 = 101 does not fit; 20 + 30+30+20 = 100 does, and an
	// invalid entry (k=0, a problem) weighs nothing.
	if w := ts.call("POST", "/recall/batch", jsonCT, batchK(30, 30, 21)); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("81 items beside 20 of 100: status %d: %s", w.Code, w.Body)
	}
	if w := ts.call("POST", "/recall/batch", jsonCT, batchK(30, 30, 19, 1, 0)); w.Code != http.StatusOK {
		t.Fatalf("80 items beside 20 of 100: status %d: %s", w.Code, w.Body)
	}
	release()
	<-done
	if !allFree(ts) {
		t.Fatal("items still held")
	}
}

// blockingWriter blocks the answer's body until unblock is closed, as a
// client that does not read does.
type blockingWriter struct {
	http.ResponseWriter
	writing chan struct{}
	unblock chan struct{}
	once    sync.Once
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.writing) })
	<-b.unblock
	return b.ResponseWriter.Write(p)
}

// TestShedReleases: the items are held until the answer is written, and
// freed after every way a request ends: an answer, a failure, a timeout,
// a panic, a client gone away.
func TestShedReleases(t *testing.T) {
	t.Parallel()
	t.Run("held while the answer is written", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, Config{MaxItemsInFlight: 100})
		bw := &blockingWriter{ResponseWriter: newRecorder(), writing: make(chan struct{}), unblock: make(chan struct{})}
		done := make(chan struct{})
		go func() {
			defer close(done)
			ts.Handler().ServeHTTP(bw, newRequest("POST", "/recall/batch", jsonCT, batchK(50, 50)))
		}()
		<-bw.writing
		if allFree(ts) {
			t.Error("items free while the answer is being written")
		}
		if w := ts.call("POST", "/recall", jsonCT, recallK(1)); w.Code != http.StatusServiceUnavailable {
			t.Errorf("status %d while the capacity is held", w.Code)
		}
		close(bw.unblock)
		<-done
		if !allFree(ts) {
			t.Error("items held after the answer")
		}
	})
	for _, tt := range []struct {
		name string
		cfg  Config
		hook func(ctx context.Context, req recall.Request) (recall.Result, error)
		want int
	}{
		{"failure", Config{}, func(context.Context, recall.Request) (recall.Result, error) {
			return recall.Result{}, errors.New("boom")
		}, http.StatusInternalServerError},
		{"timeout", Config{RequestTimeout: 10 * time.Millisecond}, func(ctx context.Context, _ recall.Request) (recall.Result, error) {
			<-ctx.Done()
			return recall.Result{}, ctx.Err()
		}, http.StatusGatewayTimeout},
		{"panic", Config{}, func(context.Context, recall.Request) (recall.Result, error) {
			panic("boom")
		}, http.StatusInternalServerError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.MaxItemsInFlight = 100
			ts := newTestServer(t, tt.cfg)
			ts.rec.recallHook = tt.hook
			for _, call := range []struct{ path, body string }{{"/recall", recallK(100)}, {"/recall/batch", batchK(50, 50)}} {
				w := ts.call("POST", call.path, jsonCT, call.body)
				if call.path == "/recall" && w.Code != tt.want {
					t.Errorf("%s: status %d, want %d", call.path, w.Code, tt.want)
				}
				if w.Code == http.StatusServiceUnavailable {
					t.Errorf("%s shed: %s", call.path, w.Body)
				}
				if !allFree(ts) {
					t.Errorf("%s: items held after a %d", call.path, w.Code)
				}
			}
		})
	}
	t.Run("client gone", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, Config{MaxItemsInFlight: 100})
		entered := make(chan struct{}, 1)
		ts.rec.recallHook = func(ctx context.Context, _ recall.Request) (recall.Result, error) {
			entered <- struct{}{}
			<-ctx.Done()
			return recall.Result{}, ctx.Err()
		}
		addr, cancel, done := serveLoopback(t, ts)
		defer func() { cancel(); <-done }()
		ctx, gone := context.WithCancel(context.Background())
		req, err := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/recall", strings.NewReader(recallK(100)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", jsonCT)
		errc := make(chan error, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		<-entered
		gone()
		<-errc
		// The handler ends once the server sees the connection close:
		// wait for it, without a bound on how long it takes.
		for !allFree(ts) {
			time.Sleep(time.Millisecond)
		}
	})
}

// TestShedBodies: request bodies hold their bytes past the first bodyFree
// out of MaxBodyBytesInFlight as they arrive: connections that stall
// before uploading hold nothing, small bodies never wait, and a body whose
// next bytes do not fit is refused mid-read with a 503 overloaded problem,
// Retry-After and Connection: close, counted as shed under its route; an
// upload's bytes are free again once its answer is written.
func TestShedBodies(t *testing.T) {
	t.Parallel()
	c := loadContract(t)
	const capacity = 64 << 10
	ts := newTestServer(t, Config{BodyLimit: 64 << 10, MaxBodyBytesInFlight: capacity, ReadTimeout: time.Minute, WriteTimeout: 2 * time.Minute})
	addr, cancel, _ := serveLoopback(t, ts)
	defer cancel()
	upload := func(header, body string) net.Conn {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := io.WriteString(conn, "POST /recall HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+header+"\r\n"+body); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	free := func() int64 { // the budget's free bytes, to within 1 KiB
		var n int64
		for n < capacity && ts.bodies.TryAcquire(1024) {
			n += 1024
		}
		ts.bodies.Release(n)
		return n
	}
	waitFree := func(want int64, what string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); free() != want; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d bytes free, want %d", what, free(), want)
			}
		}
	}
	post := func(body string, chunked bool) *httptest.ResponseRecorder {
		t.Helper()
		req, err := http.NewRequest("POST", "http://"+addr+"/recall", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", jsonCT)
		if chunked {
			req.ContentLength = -1
			req.Body = io.NopCloser(strings.NewReader(body))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		w := httptest.NewRecorder()
		maps.Copy(w.Header(), resp.Header)
		if resp.Close { // net/http takes Connection: close out of the header
			w.Header().Set("Connection", "close")
		}
		w.Code = resp.StatusCode
		if _, err := io.Copy(w.Body, resp.Body); err != nil {
			t.Fatal(err)
		}
		return w
	}
	// 40 connections that send headers (declared or streamed) and a byte,
	// then stall, hold nothing.
	for i := range 40 {
		if i%2 == 0 {
			upload("Content-Length: 60000\r\n", "{")
		} else {
			upload("Transfer-Encoding: chunked\r\n", "1\r\n{\r\n")
		}
	}
	time.Sleep(50 * time.Millisecond) // let them be read
	if f := free(); f != capacity {
		t.Fatalf("40 stalled connections hold %d bytes", capacity-f)
	}
	// An upload of 50,000 of its 60,000 bytes holds its bytes past bodyFree.
	first := upload("Content-Length: 60000\r\n", "{"+strings.Repeat(" ", 50_000-1))
	waitFree((capacity-(50_000-bodyFree))/1024*1024, "an upload stalled at 50,000 bytes")
	// A whole 60,000-byte body needs 43,616 bytes beside it: refused.
	body := recallK(10) + strings.Repeat(" ", 60_000-len(recallK(10)))
	for _, chunked := range []bool{false, true} {
		w := post(body, chunked)
		if w.Code != 503 || w.Header().Get("Retry-After") != "1" || w.Header().Get("Connection") != "close" {
			t.Fatalf("chunked %v: %d, Retry-After %q, Connection %q, %s; want 503, 1, close", chunked, w.Code, w.Header().Get("Retry-After"), w.Header().Get("Connection"), w.Body)
		}
		if p := decodeProblemBody(t, w); !strings.HasSuffix(p.Type, ":overloaded") || !strings.Contains(p.Detail, "request bodies") {
			t.Errorf("chunked %v: %+v, want an overloaded problem naming the bodies", chunked, p)
		}
		c.checkResponse(t, "POST", "/recall", jsonCT, body, w)
	}
	// Small bodies pass, and so does one of 20,000 bytes (3,616 counted).
	for _, b := range []string{recallK(10), recallK(10) + strings.Repeat(" ", 20_000)} {
		if w := post(b, true); w.Code != 200 {
			t.Errorf("a %d-byte body beside the stalled upload: %d %s", len(b), w.Code, w.Body)
		}
	}
	if m := ts.call("GET", "/metrics", "", "").Body.String(); !strings.Contains(m, `towerrecall_http_shed_total{route="/recall"} 2`) {
		t.Error("metrics do not count the two shed /recall requests")
	}
	// The stalled upload ends (a malformed body: any answer frees its bytes).
	if _, err := io.WriteString(first, strings.Repeat(" ", 10_000)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(first), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("the finished upload: %d, want 400", resp.StatusCode)
	}
	waitFree(capacity, "every answer written")
	if w := post(body, false); w.Code != 200 {
		t.Errorf("the 60,000-byte body once the budget is free: %d %s", w.Code, w.Body)
	}
}

// TestShedHeavyLeavesRoom: batches (requests of more than recall.MaxK
// items) hold at most nine tenths of the capacity together, so clients
// that send batches and read nothing cannot shed /recall and /score.
func TestShedHeavyLeavesRoom(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{MaxItemsInFlight: 20_000})
	ten := make([]int, 10)
	for i := range ten {
		ten[i] = 1000
	}
	// Batches of 10,000 items whose clients read nothing: one is held, the
	// next would pass the heavy share (18,000) and is shed.
	var held []*blockingWriter
	var wg sync.WaitGroup
	for range 3 {
		bw := &blockingWriter{ResponseWriter: newRecorder(), writing: make(chan struct{}), unblock: make(chan struct{})}
		done := make(chan struct{})
		wg.Go(func() {
			defer close(done)
			ts.Handler().ServeHTTP(bw, newRequest("POST", "/recall/batch", jsonCT, batchK(ten...)))
		})
		<-bw.writing // the answer, or the problem of a shed batch
		if bw.ResponseWriter.(*httptest.ResponseRecorder).Code == http.StatusServiceUnavailable {
			close(bw.unblock)
			<-done
			continue
		}
		held = append(held, bw)
	}
	if len(held) != 1 {
		t.Errorf("%d batches of 10,000 items held out of 20,000, want 1 (the heavy share is 18,000)", len(held))
	}
	for _, tt := range []struct{ path, body string }{{"/recall", recallK(1000)}, {"/score", scoreN(1000)}, {"/recall/batch", batchK(500, 500)}} {
		if w := ts.call("POST", tt.path, jsonCT, tt.body); w.Code != http.StatusOK {
			t.Errorf("%s of 1,000 items beside non-reading batches: status %d, want 200: %s", tt.path, w.Code, w.Body)
		}
	}
	for _, bw := range held {
		close(bw.unblock)
	}
	wg.Wait()
	if !allFree(ts) || !ts.heavy.TryAcquire(18_000) {
		t.Fatal("items still held after every answer was written")
	}
	ts.heavy.Release(18_000)
}
