// Package logbatch batches log lines into few large writes, and never makes
// a logging goroutine wait for them. A busy service writes one access-log
// line per request; one write(2) per line costs the service (and whatever
// reads the other end of its stderr pipe) a system call and a wake-up per
// request, and a slow reader of that pipe must not slow serving down.
// Writer gathers the lines in memory and a timer goroutine writes them
// together at most delay after the first one, or as soon as maxBytes have
// gathered. Write itself only copies: if the writer falls behind and the
// pending lines reach maxPending bytes, further lines are dropped and
// counted, and the next batch says how many.
package logbatch

import (
	"errors"
	"io"
	"sync"
	"time"
)

// pendingBatches is maxPending in batches: how far the underlying writer
// may fall behind before lines are dropped.
const pendingBatches = 16

// Writer is an io.Writer that batches. Every Write call is kept whole (a
// zerolog event is one Write), so lines never interleave or split across
// batches. It is safe for concurrent use. Close flushes what is left.
type Writer struct {
	w          io.Writer
	delay      time.Duration
	maxBytes   int
	maxPending int
	report     func(dropped int) []byte

	mu      sync.Mutex
	buf     []byte      // pending lines
	spare   []byte      // the previous batch's storage, reused
	kicked  bool        // the timer was set to fire at once for this batch
	dropped int         // lines dropped since the last batch
	timer   *time.Timer // armed while buf holds unwritten bytes
	closed  bool
	err     error // the first write error, reported by Flush and Close

	writeMu sync.Mutex // one write to w at a time, in batch order
}

// New returns a Writer over w that writes at most delay after the first
// unwritten byte, or at once when maxBytes are waiting, and drops lines
// while 16·maxBytes are waiting for a slow w. report, if not nil, makes the
// line that tells how many were dropped; it goes out with the next batch.
// delay must be positive and maxBytes at least 1.
func New(w io.Writer, delay time.Duration, maxBytes int, report func(dropped int) []byte) (*Writer, error) {
	if w == nil {
		return nil, errors.New("logbatch: nil writer")
	}
	if delay <= 0 {
		return nil, errors.New("logbatch: delay must be positive")
	}
	if maxBytes < 1 {
		return nil, errors.New("logbatch: maxBytes must be at least 1")
	}
	b := &Writer{w: w, delay: delay, maxBytes: maxBytes, maxPending: pendingBatches * maxBytes, report: report,
		buf: make([]byte, 0, maxBytes), spare: make([]byte, 0, maxBytes)}
	b.timer = time.AfterFunc(time.Hour, func() { _ = b.Flush() })
	b.timer.Stop()
	return b, nil
}

// Write appends p to the batch and returns; it never writes to the
// underlying writer (a timer goroutine does). When the pending lines
// already hold maxPending bytes, p is dropped and counted. After Close, p
// is written through at once.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.writeMu.Lock()
		defer b.writeMu.Unlock()
		return b.w.Write(p)
	}
	if len(b.buf) > 0 && len(b.buf)+len(p) > b.maxPending {
		b.dropped++
		b.mu.Unlock()
		return len(p), nil
	}
	if len(b.buf) == 0 {
		b.timer.Reset(b.delay)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= b.maxBytes && !b.kicked {
		b.kicked = true
		b.timer.Reset(0)
	}
	b.mu.Unlock()
	return len(p), nil
}

// Flush writes the pending lines now (waiting for a write in progress) and
// reports the first write error seen so far.
func (b *Writer) Flush() error {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	return b.flushLocked()
}

// flushLocked writes the pending lines; the caller holds writeMu.
func (b *Writer) flushLocked() error {
	b.mu.Lock()
	out, dropped := b.buf, b.dropped
	b.buf, b.spare, b.dropped, b.kicked = b.spare[:0], nil, 0, false
	b.timer.Stop()
	b.mu.Unlock()

	if dropped > 0 && b.report != nil {
		out = append(out, b.report(dropped)...)
	}
	var err error
	if len(out) > 0 {
		_, err = b.w.Write(out)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil && b.err == nil {
		b.err = err
	}
	if cap(out) <= 4*b.maxBytes { // one huge line must not pin its buffer
		b.spare = out[:0]
	} else {
		b.spare = make([]byte, 0, b.maxBytes)
	}
	return b.err
}

// Close flushes and stops batching: later writes go straight through, after
// the last batch. It does not close the underlying writer.
func (b *Writer) Close() error {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return b.flushLocked()
}
