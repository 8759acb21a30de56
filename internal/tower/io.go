package tower

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"

	"github.com/towerrecall/towerrecall/internal/nn"
)

// The weights file: magic, version, the config and vocabulary sizes as
// little-endian uint32s, every tensor as little-endian float32 (user tower
// embeddings then layers W, B; movie tower likewise; the head [a, b] if
// any), and a trailing CRC-32C of everything before it.
const (
	magic         = "TWRMODEL"
	formatVersion = 1
)

const (
	flagOutputReLU = 1 << iota
	flagNormalize
	flagRatingHead
	knownFlags = flagOutputReLU | flagNormalize | flagRatingHead
)

// ErrFormat is wrapped by every error ReadModel returns for a malformed file.
var ErrFormat = errors.New("tower: malformed weights")

// WriteTo writes the model's weights (see ReadModel).
func (m *Model) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: bufio.NewWriter(w), h: crc32.New(crc32.MakeTable(crc32.Castagnoli))}
	put := func(v int) { cw.u32(uint32(v)) }
	cw.write([]byte(magic))
	put(formatVersion)
	put(m.cfg.Dim)
	put(len(m.cfg.Hidden))
	for _, h := range m.cfg.Hidden {
		put(h)
	}
	flags := 0
	if m.cfg.OutputReLU {
		flags |= flagOutputReLU
	}
	if m.cfg.Normalize {
		flags |= flagNormalize
	}
	if m.cfg.RatingHead {
		flags |= flagRatingHead
	}
	put(flags)
	for _, side := range []struct{ embed, vocab []int }{{m.cfg.UserEmbed, m.userVocab}, {m.cfg.MovieEmbed, m.movieVocab}} {
		put(len(side.embed))
		for i, d := range side.embed {
			put(d)
			put(side.vocab[i])
		}
	}
	for _, t := range []*Tower{m.user, m.movie} {
		for _, e := range t.Embeddings {
			cw.floats(e.W)
		}
		for _, l := range t.Layers {
			cw.floats(l.W)
			cw.floats(l.B)
		}
	}
	if m.head != nil {
		cw.floats(m.head)
	}
	sum := cw.h.Sum32()
	var tail [4]byte
	binary.LittleEndian.PutUint32(tail[:], sum)
	cw.h = nil
	cw.write(tail[:])
	if cw.err == nil {
		cw.err = cw.w.Flush()
	}
	if cw.err != nil {
		return cw.n, fmt.Errorf("tower: write weights: %w", cw.err)
	}
	return cw.n, nil
}

type countWriter struct {
	w   *bufio.Writer
	h   hash.Hash32
	n   int64
	err error
	buf [4096]byte
}

func (c *countWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	if c.h != nil {
		c.h.Write(p)
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
}

func (c *countWriter) u32(v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	c.write(b[:])
}

func (c *countWriter) floats(f []float32) {
	for len(f) > 0 {
		n := min(len(f), len(c.buf)/4)
		for i, v := range f[:n] {
			binary.LittleEndian.PutUint32(c.buf[4*i:], math.Float32bits(v))
		}
		c.write(c.buf[:4*n])
		f = f[n:]
	}
}

type checkReader struct {
	r   io.Reader
	h   hash.Hash32
	err error
	buf [4096]byte
}

func (c *checkReader) read(p []byte) bool {
	if c.err != nil {
		return false
	}
	if _, err := io.ReadFull(c.r, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		c.err = err
		return false
	}
	c.h.Write(p)
	return true
}

func (c *checkReader) u32() int {
	var b [4]byte
	if !c.read(b[:]) {
		return 0
	}
	return int(binary.LittleEndian.Uint32(b[:]))
}

// floats reads n float32s. It grows the slice as data arrives, so a corrupt
// length costs at most what the input actually holds.
func (c *checkReader) floats(n int) []float32 {
	out := make([]float32, 0, min(n, 1<<16))
	for len(out) < n && c.err == nil {
		k := min(n-len(out), len(c.buf)/4)
		if !c.read(c.buf[:4*k]) {
			return nil
		}
		for i := 0; i < k; i++ {
			v := math.Float32frombits(binary.LittleEndian.Uint32(c.buf[4*i:]))
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				c.err = fmt.Errorf("%w: non-finite weight", ErrFormat)
				return nil
			}
			out = append(out, v)
		}
	}
	return out
}

// ReadModel reads weights written by WriteTo. It validates the header, the
// sizes (against the Max* limits), every value (finite; head slope ≥
// MinHeadSlope) and the checksum, and never allocates much more than the
// input holds. It reads exactly the model's bytes from r.
func ReadModel(r io.Reader) (*Model, error) {
	c := &checkReader{r: r, h: crc32.New(crc32.MakeTable(crc32.Castagnoli))}
	var mg [len(magic)]byte
	if !c.read(mg[:]) {
		return nil, fmt.Errorf("tower: read weights: %w", c.err)
	}
	if string(mg[:]) != magic {
		return nil, fmt.Errorf("%w: bad magic", ErrFormat)
	}
	if v := c.u32(); c.err == nil && v != formatVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrFormat, v, formatVersion)
	}
	var cfg Config
	cfg.Dim = c.u32()
	nh := c.u32()
	if nh > MaxLayers {
		return nil, fmt.Errorf("%w: %d hidden layers", ErrFormat, nh)
	}
	for range nh {
		cfg.Hidden = append(cfg.Hidden, c.u32())
	}
	flags := c.u32()
	if flags&^knownFlags != 0 {
		return nil, fmt.Errorf("%w: unknown flags %#x", ErrFormat, flags)
	}
	cfg.OutputReLU = flags&flagOutputReLU != 0
	cfg.Normalize = flags&flagNormalize != 0
	cfg.RatingHead = flags&flagRatingHead != 0
	var vocabs [2][]int
	for side := range 2 {
		nf := c.u32()
		if nf > MaxFields {
			return nil, fmt.Errorf("%w: %d fields", ErrFormat, nf)
		}
		for range nf {
			d := c.u32()
			v := c.u32()
			if side == 0 {
				cfg.UserEmbed = append(cfg.UserEmbed, d)
			} else {
				cfg.MovieEmbed = append(cfg.MovieEmbed, d)
			}
			vocabs[side] = append(vocabs[side], v)
		}
	}
	if c.err != nil {
		return nil, fmt.Errorf("tower: read weights: %w", c.err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	for _, v := range append(append([]int(nil), vocabs[0]...), vocabs[1]...) {
		if v < 1 || v > MaxVocab {
			return nil, fmt.Errorf("%w: vocabulary size %d", ErrFormat, v)
		}
	}
	if n := paramCount(cfg, vocabs[0], vocabs[1]); n > MaxParams {
		return nil, fmt.Errorf("%w: %d parameters", ErrFormat, n)
	}
	m := &Model{cfg: cfg, userVocab: vocabs[0], movieVocab: vocabs[1]}
	for side, embed := range [][]int{cfg.UserEmbed, cfg.MovieEmbed} {
		t := &Tower{OutputReLU: cfg.OutputReLU, Normalize: cfg.Normalize}
		for i, d := range embed {
			rows := vocabs[side][i]
			t.Embeddings = append(t.Embeddings, &nn.Embedding{Rows: rows, Dim: d, W: c.floats(rows * d)})
		}
		in := 0
		for _, d := range embed {
			in += d
		}
		for _, out := range append(append([]int(nil), cfg.Hidden...), cfg.Dim) {
			l := &nn.Dense{In: in, Out: out}
			l.W = c.floats(in * out)
			l.B = c.floats(out)
			t.Layers = append(t.Layers, l)
			in = out
		}
		if c.err != nil {
			return nil, fmt.Errorf("tower: read weights: %w", c.err)
		}
		t.init()
		if side == 0 {
			m.user = t
		} else {
			m.movie = t
		}
	}
	if cfg.RatingHead {
		m.head = c.floats(2)
		if c.err == nil && !(m.head[0] >= MinHeadSlope) {
			return nil, fmt.Errorf("%w: rating head slope %g < %g", ErrFormat, m.head[0], MinHeadSlope)
		}
	}
	want := c.h.Sum32()
	var tail [4]byte
	c.h = crc32.New(crc32.MakeTable(crc32.Castagnoli)) // the checksum itself is not hashed
	if !c.read(tail[:]) {
		return nil, fmt.Errorf("tower: read weights: %w", c.err)
	}
	if got := binary.LittleEndian.Uint32(tail[:]); got != want {
		return nil, fmt.Errorf("%w: checksum %08x, want %08x", ErrFormat, got, want)
	}
	return m, nil
}
