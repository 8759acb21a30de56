package ann

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
)

// The version-1 artifact format (coder/hnsw's graph encoding), which
// ImportHNSW still reads: written here only, so that the importer's tests
// and fuzz targets have such files. The product writes the native format.

// encodeGraph writes g in the library format, taking each node's vector
// from a. Nodes and neighbours are written in key order so the bytes are
// deterministic: a graph imported and exported again gives the same bytes.
func encodeGraph(g *graph, a augmenter) []byte {
	d1 := a.dim + 1
	var perLayer [maxLayers]int
	for _, l := range g.levels {
		for li := 0; li <= int(l); li++ {
			perLayer[li]++
		}
	}
	size := 64
	for li := 0; li <= g.top; li++ {
		size += perLayer[li] * (8 + 4*d1)
	}
	b := make([]byte, 0, size+4*len(g.base)+4*len(g.upper))
	b = binary.AppendVarint(b, libEncodingVersion)
	b = binary.AppendVarint(b, int64(g.m))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(g.ml))
	b = binary.AppendVarint(b, int64(g.efSearch))
	b = binary.AppendVarint(b, int64(len("cosine")))
	b = append(b, "cosine"...)
	b = binary.AppendVarint(b, int64(g.top+1))
	row := make([]float32, d1)
	var nb []int32
	for li := 0; li <= g.top; li++ {
		b = binary.AppendVarint(b, int64(perLayer[li]))
		for key := range int32(g.n) {
			if int(g.levels[key]) < li {
				continue
			}
			b = binary.LittleEndian.AppendUint32(b, uint32(key))
			b = binary.AppendVarint(b, int64(d1))
			a.rowTo(row, key)
			for _, x := range row {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
			}
			nb = append(nb[:0], g.links(key, li)...)
			slices.Sort(nb)
			b = binary.AppendVarint(b, int64(len(nb)))
			for _, v := range nb {
				b = binary.LittleEndian.AppendUint32(b, uint32(v))
			}
		}
	}
	return b
}

// exportLibrary writes the version-1 format: the graph in coder/hnsw's
// Export format.
func (h *HNSW) exportLibrary(w io.Writer) error {
	blob := encodeGraph(h.g, h.augmenter())
	b := []byte(exportMagic)
	b = binary.LittleEndian.AppendUint32(b, uint32(h.g.n))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.exact.dim))
	b = binary.LittleEndian.AppendUint64(b, h.vsum)
	b = append(b, 0) // build
	b = binary.LittleEndian.AppendUint32(b, uint32(h.p.M))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.p.M0))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(h.p.Ml))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.p.EfConstruction))
	b = binary.LittleEndian.AppendUint64(b, h.p.Seed)
	b = binary.LittleEndian.AppendUint32(b, 1) // graphs
	b = binary.LittleEndian.AppendUint64(b, uint64(len(blob)))
	crc := crc32.Update(0, castagnoli, b)
	crc = crc32.Update(crc, castagnoli, blob)
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("ann: export: %w", err)
	}
	if _, err := w.Write(blob); err != nil {
		return fmt.Errorf("ann: export: %w", err)
	}
	if _, err := w.Write(binary.LittleEndian.AppendUint32(nil, crc)); err != nil {
		return fmt.Errorf("ann: export: %w", err)
	}
	return nil
}
