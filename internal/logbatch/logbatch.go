// Package logbatch batches log lines into few large writes. A busy service
// writes one access-log line per request; one write(2) per line costs the
// service (and whatever reads the other end of its stderr pipe) a system
// call and a wake-up per request. Writer gathers the lines and writes them
// together at most Delay after the first one, or as soon as MaxBytes have
// gathered.
package logbatch

import (
	"errors"
	"io"
	"sync"
	"time"
)

// Writer is an io.Writer that batches. Every Write call is kept whole (a
// zerolog event is one Write), so lines never interleave or split across
// batches. It is safe for concurrent use. Close flushes what is left.
type Writer struct {
	w        io.Writer
	delay    time.Duration
	maxBytes int

	mu     sync.Mutex
	buf    []byte
	timer  *time.Timer // armed while buf holds unwritten bytes
	closed bool
	err    error // the first write error, reported by Flush and Close
}

// New returns a Writer over w that writes at most delay after the first
// unwritten byte, or at once when maxBytes are waiting. delay must be
// positive and maxBytes at least 1.
func New(w io.Writer, delay time.Duration, maxBytes int) (*Writer, error) {
	if w == nil {
		return nil, errors.New("logbatch: nil writer")
	}
	if delay <= 0 {
		return nil, errors.New("logbatch: delay must be positive")
	}
	if maxBytes < 1 {
		return nil, errors.New("logbatch: maxBytes must be at least 1")
	}
	b := &Writer{w: w, delay: delay, maxBytes: maxBytes, buf: make([]byte, 0, maxBytes)}
	b.timer = time.AfterFunc(time.Hour, func() { _ = b.Flush() })
	b.timer.Stop()
	return b, nil
}

// Write appends p to the batch. It writes the batch through when it holds
// maxBytes or more. After Close, p is written through at once.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.w.Write(p)
	}
	if len(b.buf) == 0 {
		b.timer.Reset(b.delay)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= b.maxBytes {
		b.flushLocked()
	}
	return len(p), nil
}

// Flush writes the batch now and reports the first write error seen so far.
func (b *Writer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	return b.err
}

func (b *Writer) flushLocked() {
	b.timer.Stop()
	if len(b.buf) == 0 {
		return
	}
	if _, err := b.w.Write(b.buf); err != nil && b.err == nil {
		b.err = err
	}
	if cap(b.buf) > 4*b.maxBytes {
		b.buf = make([]byte, 0, b.maxBytes) // one huge line must not pin its buffer
	} else {
		b.buf = b.buf[:0]
	}
}

// Close flushes and stops batching: later writes go straight through. It
// does not close the underlying writer.
func (b *Writer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	b.closed = true
	return b.err
}
