package ann

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// Export writes the native format (native.go). The version-1 format below
// is still read, so that artifacts written before it keep loading, and
// written only by the tests (exportLibrary, v1format_test.go):
//
//	magic "TRANNHX1" | uint32 nodes | uint32 dim | uint64 vector fingerprint
//	uint8 build (0) | uint32 M | uint32 M0 | float64 Ml | uint32 EfConstruction | uint64 Seed
//	uint32 graphs (1) | uint64 length | coder/hnsw Export bytes
//	uint32 CRC-32C of everything before it
//
// The vectors themselves are not included: the artifact stores them once,
// and ImportHNSW checks it was given the same ones. The build byte and the
// graph count are fixed: they are left from an experiment (graphs built by
// coder/hnsw's Add, several graphs unioned) and kept so that existing
// artifacts still load.
const exportMagic = "TRANNHX1"

const headerLen = 8 + 4 + 4 + 8 + 1 + 4 + 4 + 8 + 4 + 8 + 4

// maxImportBytes bounds what ImportHNSW reads.
const maxImportBytes = 1 << 32

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Export writes the graph in the native format (native.go: the flat rows
// as they are in memory, deterministic byte for byte for a given graph)
// with the construction parameters.
func (h *HNSW) Export(w io.Writer) error { return h.exportNative(w) }

// ImportHNSW reads what Export wrote for the same vectors, in the native
// format or in the version-1 format of earlier releases. The construction
// parameters come from the input; p supplies the search parameters
// (EfSearch, Overfetch) and must validate. Any corruption, truncation or
// mismatch with vectors is an error wrapping ErrInvalid. The graph is
// validated before it is used; a version-1 graph, stored in coder/hnsw's
// format, is loaded into this package's flat form as it is decoded.
func ImportHNSW(r io.Reader, vectors []float32, dim int, p HNSWParams) (*HNSW, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxImportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("ann: import: %w", err)
	}
	if len(data) > maxImportBytes {
		return nil, fmt.Errorf("%w: import: more than %d bytes", ErrInvalid, maxImportBytes)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: import: "+format, append([]any{ErrInvalid}, a...)...)
	}
	if len(data) < headerLen+4 {
		return nil, bad("%d bytes is shorter than the header", len(data))
	}
	magic := string(data[:8])
	if magic != exportMagic && magic != nativeMagic {
		return nil, bad("bad magic %q", data[:8])
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, bad("checksum %08x, want %08x", got, sum)
	}
	if magic == nativeMagic {
		return importNative(body, vectors, dim, p)
	}
	d := &decoder{b: body, off: 8}
	u32 := func() int { v, _ := d.u32(); return int(v) }
	u64 := func() uint64 { v, _ := d.u64(); return v }
	n, fdim, vsum := u32(), u32(), u64()
	build := d.b[d.off]
	d.off++
	p.M, p.M0, p.Ml, p.EfConstruction, p.Seed = u32(), u32(), math.Float64frombits(u64()), u32(), u64()
	nGraphs := u32()
	if build != 0 {
		return nil, bad("unknown build %d", build)
	}
	if nGraphs != 1 {
		return nil, bad("%d graphs, want 1", nGraphs)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("ann: import: %w", err)
	}
	if fdim != dim {
		return nil, bad("graph dim %d, vectors dim %d", fdim, dim)
	}
	h, err := newHNSWBase(vectors, dim, p)
	if err != nil {
		return nil, err
	}
	if h.vsum != vsum {
		return nil, bad("graph was built from different vectors")
	}
	if err := h.useNodes(n); err != nil {
		return nil, err
	}
	l, err := d.u64()
	if err != nil || l > uint64(len(d.b)-d.off) {
		return nil, bad("graph length: %w", errors.Join(err, errShort))
	}
	blob := d.b[d.off : d.off+int(l) : d.off+int(l)]
	d.off += int(l)
	if h.g, err = decodeGraph(blob, h.augmenter(), n); err != nil {
		return nil, bad("graph: %w", err)
	}
	if d.off != len(d.b) {
		return nil, bad("%d trailing bytes", len(d.b)-d.off)
	}
	return h, nil
}
