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
// (varints are zig-zag signed, fixed-size values little-endian.) Graphs are
// built (build.go) and searched (graph.go) by this package in its own flat
// form; this format is what the artifact stores (hnsw.bin), so existing
// artifacts keep loading, and what coder/hnsw's Import reads (the tests
// hold the two to the same graph, and the benchmark searches it with the
// library). Every graph is fully validated while it is decoded: the
// library's Import trusts its input (a huge length allocates without
// bound, a neighbour missing from its layer becomes a nil pointer).

const (
	libEncodingVersion = 1
	maxLayers          = 64
	maxDegree          = 1024
)

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

// decodeGraph parses and validates one graph over the n rows of a into
// the flat form. It requires what coder/hnsw's Search silently assumes
// (every neighbour exists in its layer, every upper-layer node exists
// below), that every stored vector equals the augmented row of its key,
// and what this package relies on: the base layer holds exactly the keys
// 0..n-1, and the top layer holds one node, the entry point.
//
// It reads the bytes twice: first to validate the nodes and learn each
// node's level and each layer's largest degree, which size the flat rows
// (scanNodes), then to fill them and validate the links (readLinks);
// nothing per node is allocated.
func decodeGraph(b []byte, a augmenter, n int) (*graph, error) {
	d := &decoder{b: b}
	version, err := d.varint()
	if err != nil {
		return nil, fmt.Errorf("version: %w", err)
	}
	if version != libEncodingVersion {
		return nil, fmt.Errorf("encoding version %d, want %d", version, libEncodingVersion)
	}
	m, err := d.count("M", maxDegree)
	if err != nil {
		return nil, err
	}
	mlBits, err := d.u64()
	if err != nil {
		return nil, fmt.Errorf("graph Ml: %w", err)
	}
	ml := math.Float64frombits(mlBits)
	if !(ml > 0 && ml < 1) {
		return nil, fmt.Errorf("graph Ml = %v not in (0, 1)", ml)
	}
	efSearch, err := d.count("EfSearch", math.MaxInt32)
	if err != nil {
		return nil, err
	}
	nameLen, err := d.count("distance name length", 64)
	if err != nil {
		return nil, err
	}
	if len(d.b)-d.off < nameLen {
		return nil, fmt.Errorf("distance name: %w", errShort)
	}
	if name := string(d.b[d.off : d.off+nameLen]); name != "cosine" {
		return nil, fmt.Errorf("distance %q, want \"cosine\"", name)
	}
	d.off += nameLen
	nLayers, err := d.count("layers", maxLayers)
	if err != nil {
		return nil, err
	}
	if nLayers < 1 {
		return nil, errors.New("graph has no layers")
	}
	layersAt := d.off
	g, err := d.scanNodes(a, n, nLayers)
	if err != nil {
		return nil, err
	}
	g.m, g.ml, g.efSearch = m, ml, efSearch
	d.off = layersAt
	if err := d.readLinks(g, a.dim+1); err != nil {
		return nil, err
	}
	return g, nil
}

// scanNodes is decodeGraph's first pass: it reads the nLayers layers to
// the end of the bytes, validates every node (not yet its links), and
// returns the graph they size, with its entry point and no links.
func (d *decoder) scanNodes(a augmenter, n, nLayers int) (*graph, error) {
	d1 := a.dim + 1
	// lv[key] is the last layer key was seen in (-1: none), so a key of
	// layer li must have lv li-1.
	// Each node takes at least 4 (key) + 1 (len) + 4·d1 + 1 bytes, which
	// bounds the node counts by the input size.
	minNode := 6 + 4*d1
	lv := make([]int8, n)
	for i := range lv {
		lv[i] = -1
	}
	maxDeg := make([]int, nLayers)
	prev := n
	var entry int32
	row := make([]float32, d1)
	for li := range nLayers {
		nNodes, err := d.count("nodes", min(prev, (len(d.b)-d.off)/minNode))
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", li, err)
		}
		if li == 0 && nNodes != n {
			return nil, fmt.Errorf("base layer has %d nodes, want %d", nNodes, n)
		}
		if nNodes < 1 {
			return nil, fmt.Errorf("layer %d is empty", li)
		}
		prev = nNodes
		for j := range nNodes {
			u, err := d.u32()
			if err != nil {
				return nil, fmt.Errorf("layer %d node %d key: %w", li, j, err)
			}
			key := int32(u)
			if key < 0 || int(key) >= n {
				return nil, fmt.Errorf("layer %d node %d: key %d out of range", li, j, key)
			}
			switch int(lv[key]) {
			case li - 1:
			case li:
				return nil, fmt.Errorf("layer %d: duplicate key %d", li, key)
			default:
				return nil, fmt.Errorf("layer %d: key %d missing from layer %d", li, key, li-1)
			}
			lv[key] = int8(li)
			entry = key
			vl, err := d.count("vector length", d1)
			if err != nil {
				return nil, fmt.Errorf("layer %d key %d: %w", li, key, err)
			}
			if vl != d1 {
				return nil, fmt.Errorf("layer %d key %d: vector length %d, want %d", li, key, vl, d1)
			}
			a.rowTo(row, key)
			for c := range d1 {
				u, err := d.u32()
				if err != nil {
					return nil, fmt.Errorf("layer %d key %d vector: %w", li, key, err)
				}
				if u != math.Float32bits(row[c]) {
					return nil, fmt.Errorf("layer %d key %d: stored vector differs from the index vectors", li, key)
				}
			}
			nn, err := d.count("neighbours", min(maxDegree, n-1))
			if err != nil {
				return nil, fmt.Errorf("layer %d key %d: %w", li, key, err)
			}
			if len(d.b)-d.off < 4*nn {
				return nil, fmt.Errorf("layer %d key %d neighbours: %w", li, key, errShort)
			}
			d.off += 4 * nn
			maxDeg[li] = max(maxDeg[li], nn)
		}
	}
	if d.off != len(d.b) {
		return nil, fmt.Errorf("%d trailing bytes", len(d.b)-d.off)
	}
	if prev != 1 {
		return nil, fmt.Errorf("top layer has %d nodes, want 1", prev)
	}
	// The base layer held every key 0..n-1, so each has a level.
	levels := make([]uint8, n)
	for i, l := range lv {
		levels[i] = uint8(l)
	}
	g := newGraph(levels, maxDeg[0], slices.Max(append(maxDeg[1:], 0)))
	g.entry, g.top = entry, nLayers-1
	return g, nil
}

// readLinks is decodeGraph's second pass, over the layers scanNodes
// validated (vectors of d1 values are skipped): now that every node's
// level is known, it validates each node's links and sets them in g.
func (d *decoder) readLinks(g *graph, d1 int) error {
	var nb, sorted []int32
	for li := range g.top + 1 {
		nNodes, _ := d.varint()
		for range nNodes {
			u, _ := d.u32()
			key := int32(u)
			d.varint()
			d.off += 4 * d1
			nn, _ := d.varint()
			nb = nb[:0]
			for range nn {
				u, _ := d.u32()
				nb = append(nb, int32(u))
			}
			sorted = append(sorted[:0], nb...)
			slices.Sort(sorted)
			for x, v := range sorted {
				if v < 0 || int(v) >= g.n || int(g.levels[v]) < li {
					return fmt.Errorf("layer %d key %d: neighbour %d not in layer", li, key, v)
				}
				if v == key {
					return fmt.Errorf("layer %d key %d: links to itself", li, v)
				}
				if x > 0 && sorted[x-1] == v {
					return fmt.Errorf("layer %d key %d: duplicate neighbour %d", li, key, v)
				}
			}
			g.setLinks(key, li, nb)
		}
	}
	return nil
}
