package ann

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// This file reads and writes coder/hnsw v0.6.1's Export format (encode.go,
// encodingVersion 1) for Graph[int32]:
//
//	varint version | varint M | float64 Ml | varint EfSearch | string distance
//	varint layers
//	per layer (base first): varint nodes
//	  per node: int32 key | varint len, len×float32 vector | varint neighbours, neighbours×int32
//
// (varints are zig-zag signed, fixed-size values little-endian.) The library's
// Import trusts its input: a huge length allocates without bound, a neighbour
// missing from its layer becomes a nil pointer that Search dereferences. So
// every graph is decoded and validated here first, and only bytes that pass
// are handed to the library.

const (
	libEncodingVersion = 1
	maxLayers          = 64
	maxDegree          = 1024
)

// layerSpec is one layer: keys[i] has neighbours nbrs[i].
type layerSpec struct {
	keys []int32
	nbrs [][]int32
}

// graphSpec is a whole graph; layers[0] is the base layer.
type graphSpec struct {
	m        int
	ml       float64
	efSearch int
	layers   []layerSpec
}

// encodeGraph writes g in the library format, taking each node's vector from
// aug (row-major, width d1). Nodes and neighbours are written in key order so
// the bytes are deterministic.
func encodeGraph(g graphSpec, aug []float32, d1 int) []byte {
	var b []byte
	b = binary.AppendVarint(b, libEncodingVersion)
	b = binary.AppendVarint(b, int64(g.m))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(g.ml))
	b = binary.AppendVarint(b, int64(g.efSearch))
	b = binary.AppendVarint(b, int64(len("cosine")))
	b = append(b, "cosine"...)
	b = binary.AppendVarint(b, int64(len(g.layers)))
	for _, l := range g.layers {
		b = binary.AppendVarint(b, int64(len(l.keys)))
		order := make([]int, len(l.keys))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(x, y int) int { return int(l.keys[x]) - int(l.keys[y]) })
		for _, i := range order {
			key := l.keys[i]
			b = binary.LittleEndian.AppendUint32(b, uint32(key))
			b = binary.AppendVarint(b, int64(d1))
			for _, x := range aug[int(key)*d1 : (int(key)+1)*d1] {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
			}
			nb := slices.Clone(l.nbrs[i])
			slices.Sort(nb)
			b = binary.AppendVarint(b, int64(len(nb)))
			for _, v := range nb {
				b = binary.LittleEndian.AppendUint32(b, uint32(v))
			}
		}
	}
	return b
}

// decoder reads the library format from a byte slice with bounds checks.
type decoder struct {
	b   []byte
	off int
}

var errShort = errors.New("truncated")

func (d *decoder) varint() (int64, error) {
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		return 0, fmt.Errorf("bad varint at byte %d", d.off)
	}
	d.off += n
	return v, nil
}

// count reads a non-negative varint no larger than limit.
func (d *decoder) count(what string, limit int) (int, error) {
	v, err := d.varint()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if v < 0 || v > int64(limit) {
		return 0, fmt.Errorf("%s = %d out of range [0, %d]", what, v, limit)
	}
	return int(v), nil
}

func (d *decoder) u32() (uint32, error) {
	if len(d.b)-d.off < 4 {
		return 0, errShort
	}
	v := binary.LittleEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v, nil
}

func (d *decoder) u64() (uint64, error) {
	if len(d.b)-d.off < 8 {
		return 0, errShort
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v, nil
}

// decodeGraph parses and validates one graph over n nodes whose stored
// vectors must equal the rows of aug (width d1). It requires what the
// library's Search silently assumes (every neighbour exists in its layer,
// every upper-layer node exists below) and what this package relies on:
// the base layer holds exactly the keys 0..n-1, and the top layer holds one
// node, so Search always enters the graph at the same place and is
// deterministic.
func decodeGraph(b []byte, aug []float32, d1, n int) (graphSpec, error) {
	d := &decoder{b: b}
	var g graphSpec
	version, err := d.varint()
	if err != nil {
		return g, fmt.Errorf("version: %w", err)
	}
	if version != libEncodingVersion {
		return g, fmt.Errorf("encoding version %d, want %d", version, libEncodingVersion)
	}
	if g.m, err = d.count("M", maxDegree); err != nil {
		return g, err
	}
	mlBits, err := d.u64()
	if err != nil {
		return g, fmt.Errorf("Ml: %w", err)
	}
	g.ml = math.Float64frombits(mlBits)
	if !(g.ml > 0 && g.ml < 1) {
		return g, fmt.Errorf("Ml = %v not in (0, 1)", g.ml)
	}
	if g.efSearch, err = d.count("EfSearch", math.MaxInt32); err != nil {
		return g, err
	}
	nameLen, err := d.count("distance name length", 64)
	if err != nil {
		return g, err
	}
	if len(d.b)-d.off < nameLen {
		return g, fmt.Errorf("distance name: %w", errShort)
	}
	if name := string(d.b[d.off : d.off+nameLen]); name != "cosine" {
		return g, fmt.Errorf("distance %q, want \"cosine\"", name)
	}
	d.off += nameLen
	nLayers, err := d.count("layers", maxLayers)
	if err != nil {
		return g, err
	}
	if nLayers < 1 {
		return g, errors.New("graph has no layers")
	}
	// Each node takes at least 4 (key) + 1 (len) + 4·d1 + 1 bytes, which
	// bounds every allocation by the input size.
	minNode := 6 + 4*d1
	below := make([]bool, n) // membership in the layer below
	here := make([]bool, n)
	for li := range nLayers {
		limit := n
		if li > 0 {
			limit = len(g.layers[li-1].keys)
		}
		nNodes, err := d.count("nodes", min(limit, (len(d.b)-d.off)/minNode))
		if err != nil {
			return g, fmt.Errorf("layer %d: %w", li, err)
		}
		if li == 0 && nNodes != n {
			return g, fmt.Errorf("base layer has %d nodes, want %d", nNodes, n)
		}
		if nNodes < 1 {
			return g, fmt.Errorf("layer %d is empty", li)
		}
		l := layerSpec{keys: make([]int32, nNodes), nbrs: make([][]int32, nNodes)}
		clear(here)
		for j := range nNodes {
			u, err := d.u32()
			if err != nil {
				return g, fmt.Errorf("layer %d node %d key: %w", li, j, err)
			}
			key := int32(u)
			if key < 0 || int(key) >= n {
				return g, fmt.Errorf("layer %d node %d: key %d out of range", li, j, key)
			}
			if here[key] {
				return g, fmt.Errorf("layer %d: duplicate key %d", li, key)
			}
			if li > 0 && !below[key] {
				return g, fmt.Errorf("layer %d: key %d missing from layer %d", li, key, li-1)
			}
			here[key] = true
			vl, err := d.count("vector length", d1)
			if err != nil {
				return g, fmt.Errorf("layer %d key %d: %w", li, key, err)
			}
			if vl != d1 {
				return g, fmt.Errorf("layer %d key %d: vector length %d, want %d", li, key, vl, d1)
			}
			want := aug[int(key)*d1 : (int(key)+1)*d1]
			for c := range d1 {
				u, err := d.u32()
				if err != nil {
					return g, fmt.Errorf("layer %d key %d vector: %w", li, key, err)
				}
				if u != math.Float32bits(want[c]) {
					return g, fmt.Errorf("layer %d key %d: stored vector differs from the index vectors", li, key)
				}
			}
			nn, err := d.count("neighbours", min(maxDegree, n-1))
			if err != nil {
				return g, fmt.Errorf("layer %d key %d: %w", li, key, err)
			}
			if len(d.b)-d.off < 4*nn {
				return g, fmt.Errorf("layer %d key %d neighbours: %w", li, key, errShort)
			}
			nb := make([]int32, nn)
			for x := range nb {
				u, _ := d.u32()
				nb[x] = int32(u)
			}
			l.keys[j] = key
			l.nbrs[j] = nb
		}
		for j, nb := range l.nbrs {
			sorted := slices.Clone(nb)
			slices.Sort(sorted)
			for x, v := range sorted {
				if v < 0 || int(v) >= n || !here[v] {
					return g, fmt.Errorf("layer %d key %d: neighbour %d not in layer", li, l.keys[j], v)
				}
				if v == l.keys[j] {
					return g, fmt.Errorf("layer %d key %d: links to itself", li, v)
				}
				if x > 0 && sorted[x-1] == v {
					return g, fmt.Errorf("layer %d key %d: duplicate neighbour %d", li, l.keys[j], v)
				}
			}
		}
		g.layers = append(g.layers, l)
		below, here = here, below
	}
	if d.off != len(d.b) {
		return g, fmt.Errorf("%d trailing bytes", len(d.b)-d.off)
	}
	if top := g.layers[len(g.layers)-1]; len(top.keys) != 1 {
		return g, fmt.Errorf("top layer has %d nodes, want 1", len(top.keys))
	}
	return g, nil
}
