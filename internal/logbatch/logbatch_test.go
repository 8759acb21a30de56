package logbatch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/diode"
)

// recorder records every Write call it receives.
type recorder struct {
	mu     sync.Mutex
	writes []string
	err    error
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, string(p))
	if r.err != nil {
		return 0, r.err
	}
	return len(p), nil
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

func TestNewRejectsBadSettings(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		delay time.Duration
		max   int
		nilW  bool
	}{{"nil writer", time.Second, 10, true}, {"zero delay", 0, 10, false}, {"negative delay", -time.Second, 10, false}, {"zero max", time.Second, 0, false}} {
		t.Run(tt.name, func(t *testing.T) {
			var w *recorder
			if !tt.nilW {
				w = &recorder{}
			}
			var err error
			if tt.nilW {
				_, err = New(nil, tt.delay, tt.max, nil)
			} else {
				_, err = New(w, tt.delay, tt.max, nil)
			}
			if err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestBatchesUntilFlush(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	b, err := New(r, time.Hour, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		fmt.Fprintf(b, "line %d\n", i)
	}
	if got := r.snapshot(); len(got) != 0 {
		t.Fatalf("%d writes before the delay", len(got))
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	got := r.snapshot()
	if len(got) != 1 || strings.Count(got[0], "\n") != 100 || !strings.HasPrefix(got[0], "line 0\n") || !strings.HasSuffix(got[0], "line 99\n") {
		t.Fatalf("writes %q", got)
	}
	if err := b.Flush(); err != nil || len(r.snapshot()) != 1 {
		t.Error("an empty flush wrote")
	}
}

func TestWritesAtMaxBytes(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	b, _ := New(r, time.Hour, 10, nil)
	b.Write([]byte("12345"))
	b.Write([]byte("6789"))
	time.Sleep(20 * time.Millisecond)
	if n := len(r.snapshot()); n != 0 {
		t.Fatalf("%d writes below maxBytes", n)
	}
	b.Write([]byte("abc")) // 12 bytes ≥ 10: written soon, whole, not split
	deadline := time.Now().Add(10 * time.Second)
	for len(r.snapshot()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("not written within 10 s of reaching maxBytes")
		}
		time.Sleep(time.Millisecond)
	}
	if got := r.snapshot(); len(got) != 1 || got[0] != "123456789abc" {
		t.Fatalf("writes %q", got)
	}
}

// A writer that blocks never blocks Write: lines beyond maxPending are
// dropped and counted, and the count goes out with the next batch; every
// line is either written whole or counted.
func TestSlowWriterDropsNeverBlocks(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var mu sync.Mutex
	var out bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) {
		<-release
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	})
	b, _ := New(w, time.Millisecond, 64, func(n int) []byte { return []byte(fmt.Sprintf("dropped %d\n", n)) })
	const lines = 5000
	// The writer is blocked until release: a Write that waited for it
	// would never return, and the test would time out here.
	for i := range lines {
		fmt.Fprintf(b, "line %04d\n", i)
	}
	close(release)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	written, dropped := 0, 0
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var n int
		switch {
		case strings.HasPrefix(l, "line "):
			written++
		case func() bool { _, err := fmt.Sscanf(l, "dropped %d", &n); return err == nil }():
			dropped += n
		default:
			t.Fatalf("torn line %q", l)
		}
	}
	if written+dropped != lines || dropped == 0 || written < 16*64/10 {
		t.Errorf("%d lines written and %d dropped of %d (pending bound %d bytes)", written, dropped, lines, 16*64)
	}
}

func TestFlushesAfterDelay(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	b, _ := New(r, 5*time.Millisecond, 1<<20, nil)
	b.Write([]byte("a\n"))
	deadline := time.Now().Add(10 * time.Second)
	for len(r.snapshot()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("not written within 10 s of a 5 ms delay")
		}
		time.Sleep(time.Millisecond)
	}
	b.Write([]byte("b\n")) // re-armed after the flush
	for len(r.snapshot()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("second batch not written")
		}
		time.Sleep(time.Millisecond)
	}
	if got := r.snapshot(); got[0] != "a\n" || got[1] != "b\n" {
		t.Errorf("writes %q", got)
	}
}

func TestCloseFlushesThenWritesThrough(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	b, _ := New(r, time.Hour, 1<<20, nil)
	b.Write([]byte("x\n"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b.Write([]byte("y\n"))
	if got := r.snapshot(); len(got) != 2 || got[0] != "x\n" || got[1] != "y\n" {
		t.Errorf("writes %q", got)
	}
}

func TestReportsWriteError(t *testing.T) {
	t.Parallel()
	r := &recorder{err: errors.New("disk full")}
	b, _ := New(r, time.Hour, 1<<20, nil)
	if _, err := b.Write([]byte("x\n")); err != nil {
		t.Fatalf("Write = %v; errors surface at Flush", err)
	}
	if err := b.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Flush = %v", err)
	}
	if err := b.Close(); err == nil {
		t.Error("Close forgot the error")
	}
}

// Concurrent writers: every line arrives exactly once and whole (run with
// -race); below maxPending nothing is dropped.
func TestConcurrentLinesStayWhole(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	// Several batches of 4 KiB; the 2,000 lines (~32 KB) stay within
	// maxPending (64 KiB), so none may be dropped.
	b, _ := New(w, time.Millisecond, 4096, nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				fmt.Fprintf(b, "{\"g\":%d,\"i\":%d}\n", g, i)
			}
		})
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if seen[l] || !strings.HasPrefix(l, "{\"g\":") || !strings.HasSuffix(l, "}") {
			t.Fatalf("line %q duplicated or torn", l)
		}
		seen[l] = true
	}
	if len(seen) != 2000 {
		t.Errorf("%d distinct lines, want 2000", len(seen))
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// BenchmarkAccessLine: one access-log line as the service writes it,
// through Writer alone and through zerolog's diode in front of it (what the
// service used before Writer stopped blocking).
func BenchmarkAccessLine(b *testing.B) {
	line := func(l zerolog.Logger) {
		l.Info().Str("request_id", "host/abcdefghij-000123").Str("method", "POST").Str("path", "/recall").
			Str("route", "/recall").Int("status", 200).Int("bytes", 1287).Dur("duration", 12*time.Microsecond).
			Str("remote_ip", "127.0.0.1").Msg("request")
	}
	b.Run("logbatch", func(b *testing.B) {
		w, _ := New(io.Discard, 20*time.Millisecond, 64<<10, nil)
		defer w.Close()
		l := zerolog.New(w).With().Timestamp().Logger()
		b.ReportAllocs()
		for b.Loop() {
			line(l)
		}
	})
	b.Run("diode+logbatch", func(b *testing.B) {
		w, _ := New(io.Discard, 20*time.Millisecond, 64<<10, nil)
		d := diode.NewWriter(w, 8192, 10*time.Millisecond, func(int) {})
		defer d.Close()
		l := zerolog.New(d).With().Timestamp().Logger()
		b.ReportAllocs()
		for b.Loop() {
			line(l)
		}
	})
}
