package ann

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"unsafe"
)

// The native export format (version 2, what Export writes) stores the flat
// graph as it is in memory, little-endian:
//
//	magic "TRANNHX2" | uint32 nodes | uint32 dim | uint64 vector fingerprint
//	uint32 M | uint32 M0 | float64 Ml | uint32 EfConstruction | uint64 Seed
//	uint32 library M | float64 library Ml | uint32 library EfSearch
//	uint32 entry | uint32 top | uint32 stride0 | uint32 strideU | uint64 upper rows
//	nodes × uint8 levels
//	nodes·stride0 × int32 layer-0 rows | rows·strideU × int32 upper rows
//	uint32 CRC-32C of everything before it
//
// Rows are count-first, as in graph. The fingerprint is of every row of
// the index; the graph has one node per distinct vector, and the mapping
// from nodes to rows is not stored but recomputed from the vectors at
// load (distinctRows: linear, deterministic). A graph written before
// duplicates were merged has one node per row and loads as such. Loading
// is a copy and one linear validation pass, where the coder/hnsw format
// (version 1, export.go, still read) stores every node's augmented vector
// on every layer it is in and needs the rows recomputed and checked, and
// its links sorted, node by node.
const nativeMagic = "TRANNHX2"

const nativeHeaderLen = 8 + 4 + 4 + 8 + 4 + 4 + 8 + 4 + 8 + 4 + 8 + 4 + 4 + 4 + 4 + 4 + 8

// littleEndian is true on the machines where []int32 is stored as the
// format stores it, so rows are copied as bytes.
var littleEndian = func() bool { x := uint16(1); return *(*byte)(unsafe.Pointer(&x)) == 1 }()

// exportNative writes h in the native format.
func (h *HNSW) exportNative(w io.Writer) error {
	g := h.g
	b := make([]byte, 0, nativeHeaderLen+g.n)
	b = append(b, nativeMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(g.n))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.exact.dim))
	b = binary.LittleEndian.AppendUint64(b, h.vsum)
	b = binary.LittleEndian.AppendUint32(b, uint32(h.p.M))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.p.M0))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(h.p.Ml))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.p.EfConstruction))
	b = binary.LittleEndian.AppendUint64(b, h.p.Seed)
	b = binary.LittleEndian.AppendUint32(b, uint32(g.m))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(g.ml))
	b = binary.LittleEndian.AppendUint32(b, uint32(g.efSearch))
	b = binary.LittleEndian.AppendUint32(b, uint32(g.entry))
	b = binary.LittleEndian.AppendUint32(b, uint32(g.top))
	b = binary.LittleEndian.AppendUint32(b, uint32(g.stride0))
	b = binary.LittleEndian.AppendUint32(b, uint32(g.strideU))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(g.upper)/g.strideU))
	b = append(b, g.levels...)
	crc := crc32.Update(0, castagnoli, b)
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("ann: export: %w", err)
	}
	for _, rows := range [][]int32{g.base, g.upper} {
		// In chunks, so a 1M-node graph needs no second copy in memory.
		const chunk = 1 << 16
		buf := make([]byte, 0, 4*chunk)
		for len(rows) > 0 {
			c := rows[:min(chunk, len(rows))]
			rows = rows[len(c):]
			buf = appendInt32s(buf[:0], c)
			crc = crc32.Update(crc, castagnoli, buf)
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("ann: export: %w", err)
			}
		}
	}
	if _, err := w.Write(binary.LittleEndian.AppendUint32(nil, crc)); err != nil {
		return fmt.Errorf("ann: export: %w", err)
	}
	return nil
}

func appendInt32s(b []byte, v []int32) []byte {
	if littleEndian && len(v) > 0 {
		return append(b, unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))...)
	}
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, uint32(x))
	}
	return b
}

func readInt32s(dst []int32, b []byte) {
	if littleEndian && len(dst) > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*len(dst)), b)
		return
	}
	for i := range dst {
		dst[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
}

// importNative reads the native format (body is data without its checksum,
// already verified) over h's vectors, with p's search parameters, and
// validates the graph: every row within its capacity, every link in range,
// in its layer, not to itself and not repeated; levels consistent with the
// upper rows; a single node, the entry point, on the top layer.
func importNative(body []byte, vectors []float32, dim int, p HNSWParams) (*HNSW, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: import: "+format, append([]any{ErrInvalid}, a...)...)
	}
	if len(body) < nativeHeaderLen {
		return nil, bad("%d bytes is shorter than the header", len(body))
	}
	d := &decoder{b: body, off: 8}
	u32 := func() int { v, _ := d.u32(); return int(v) }
	u64 := func() uint64 { v, _ := d.u64(); return v }
	n, fdim, vsum := u32(), u32(), u64()
	p.M, p.M0, p.Ml, p.EfConstruction, p.Seed = u32(), u32(), math.Float64frombits(u64()), u32(), u64()
	lm, lml, lef := u32(), math.Float64frombits(u64()), u32()
	entry, top, stride0, strideU, upperRows := u32(), u32(), u32(), u32(), u64()
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("ann: import: %w", err)
	}
	if fdim != dim {
		return nil, bad("graph dim %d, vectors dim %d", fdim, dim)
	}
	if lm > maxDegree || !(lml > 0 && lml < 1) || lef > math.MaxInt32 {
		return nil, bad("library header M %d, Ml %v, EfSearch %d", lm, lml, lef)
	}
	if stride0 < 1 || stride0 > maxDegree+1 || strideU < 1 || strideU > maxDegree+1 || top >= maxLayers {
		return nil, bad("strides %d, %d, top %d out of range", stride0, strideU, top)
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
	if entry >= n {
		return nil, bad("entry %d out of range", entry)
	}
	rest := uint64(len(body) - d.off)
	want := uint64(n) + 4*uint64(n)*uint64(stride0)
	if upperRows > rest || want+4*upperRows*uint64(strideU) != rest {
		return nil, bad("%d bytes of levels and rows, want %d", rest, want+4*upperRows*uint64(strideU))
	}
	levels := make([]uint8, n)
	copy(levels, body[d.off:d.off+n])
	d.off += n
	var need uint64
	for _, l := range levels {
		need += uint64(l)
	}
	if need != upperRows {
		return nil, bad("%d upper rows, levels need %d", upperRows, need)
	}
	g := newGraph(levels, int(stride0)-1, int(strideU)-1)
	g.entry, g.top, g.m, g.ml, g.efSearch = int32(entry), top, lm, lml, lef
	readInt32s(g.base, body[d.off:])
	d.off += 4 * len(g.base)
	readInt32s(g.upper, body[d.off:])
	if err := g.validate(); err != nil {
		return nil, bad("graph: %w", err)
	}
	h.g = g
	return h, nil
}

// validate checks what a loaded graph must hold for the search to be safe
// and correct (see importNative), in one pass over the rows.
func (g *graph) validate() error {
	tops := 0
	for i, l := range g.levels {
		if int(l) > g.top {
			return fmt.Errorf("node %d: level %d above top %d", i, l, g.top)
		}
		if int(l) == g.top {
			tops++
		}
	}
	if tops != 1 || int(g.levels[g.entry]) != g.top {
		return fmt.Errorf("top layer %d has %d nodes, want 1, the entry %d", g.top, tops, g.entry)
	}
	stamp := make([]int32, g.n) // stamp[v] == u+1: v already seen in u's row
	for l := 0; l <= g.top; l++ {
		if l > 0 {
			clear(stamp)
		}
		for u := range int32(g.n) {
			if int(g.levels[u]) < l {
				continue
			}
			r := g.row(u, l)
			if r[0] < 0 || int(r[0]) >= len(r) {
				return fmt.Errorf("layer %d node %d: %d links, capacity %d", l, u, r[0], len(r)-1)
			}
			for _, v := range r[1 : 1+r[0]] {
				switch {
				case v < 0 || int(v) >= g.n || int(g.levels[v]) < l:
					return fmt.Errorf("layer %d node %d: neighbour %d not in layer", l, u, v)
				case v == u:
					return fmt.Errorf("layer %d node %d: links to itself", l, u)
				case stamp[v] == u+1:
					return fmt.Errorf("layer %d node %d: duplicate neighbour %d", l, u, v)
				}
				stamp[v] = u + 1
			}
		}
	}
	return nil
}
