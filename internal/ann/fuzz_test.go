package ann

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
)

// fuzzFixture returns small vectors and their graph exported in the
// version-1 (coder/hnsw) format and in the native format.
func fuzzFixture(t testing.TB) (vecs []float32, v1, native []byte) {
	s := newSynth(4, 3, 0.4, false, 61)
	vecs = s.points(30, 62)
	p := DefaultHNSWParams()
	p.M, p.M0, p.Ml = 3, 4, 0.4
	h, err := NewHNSW(vecs, 4, p)
	if err != nil {
		t.Fatal(err)
	}
	var buf, nbuf bytes.Buffer
	if err := h.exportLibrary(&buf); err != nil {
		t.Fatal(err)
	}
	if err := h.Export(&nbuf); err != nil {
		t.Fatal(err)
	}
	return vecs, buf.Bytes(), nbuf.Bytes()
}

// FuzzImportHNSW feeds corrupted exports (flipped bytes, truncation) of
// either format to ImportHNSW: it must return an error or a working index,
// never panic. The fuzzer mutates an export without its checksum, which is
// recomputed after the mutation: ImportHNSW checks the checksum before it
// parses, so a mutation left unsealed would be refused there and only the
// unchanged seeds would reach the header and graph checks (a bad checksum
// is TestImportRejects' "flipped byte").
func FuzzImportHNSW(f *testing.F) {
	vecs, good, native := fuzzFixture(f)
	good, native = good[:len(good)-4], native[:len(native)-4]
	f.Add(good, 0, byte(0), len(good))
	f.Add(good, len(good)/2, byte(1), len(good))
	f.Add(good, 10, byte(0x80), len(good)-1)
	f.Add(good, 24, byte(1), len(good)) // the build byte
	f.Add(good, 0, byte(0), headerLen)
	f.Add(native, 0, byte(0), len(native))
	f.Add(native, len(native)/2, byte(1), len(native))
	f.Add(native, 9, byte(0x40), len(native)) // the node count
	f.Add(native, 0, byte(0), nativeHeaderLen)
	f.Fuzz(func(t *testing.T, data []byte, at int, mask byte, cut int) {
		data = bytes.Clone(data)
		if len(data) > 0 {
			data[uint(at)%uint(len(data))] ^= mask
		}
		if cut >= 0 && cut < len(data) {
			data = data[:cut]
		}
		data = binary.LittleEndian.AppendUint32(data, crc32.Checksum(data, castagnoli))
		h, err := ImportHNSW(bytes.NewReader(data), vecs, 4, DefaultHNSWParams())
		if err != nil {
			return
		}
		searchImported(t, h, vecs, 5)
	})
}

// FuzzDecodeGraph mutates the coder/hnsw graph bytes and re-seals the
// checksum, so the structural validation (not the CRC) is what must stop
// a bad graph before the library dereferences it.
func FuzzDecodeGraph(f *testing.F) {
	vecs, good, _ := fuzzFixture(f)
	body := good[headerLen+8 : len(good)-4] // the single graph blob
	f.Add(body, 0, byte(0), len(body))
	f.Add(body, 40, byte(0x7f), len(body))
	f.Add(body, len(body)-3, byte(2), len(body))
	f.Add(body, 0, byte(0), len(body)/3)
	f.Fuzz(func(t *testing.T, blob []byte, at int, mask byte, cut int) {
		blob = bytes.Clone(blob)
		if len(blob) > 0 {
			blob[uint(at)%uint(len(blob))] ^= mask
		}
		if cut >= 0 && cut < len(blob) {
			blob = blob[:cut]
		}
		data := append(bytes.Clone(good[:headerLen]), binary.LittleEndian.AppendUint64(nil, uint64(len(blob)))...)
		data = append(data, blob...)
		data = binary.LittleEndian.AppendUint32(data, crc32.Checksum(data, castagnoli))
		h, err := ImportHNSW(bytes.NewReader(data), vecs, 4, DefaultHNSWParams())
		if err != nil {
			return
		}
		searchImported(t, h, vecs, 7)
	})
}

// FuzzDecodeNative mutates a native export past its magic and re-seals
// the checksum, so the header checks and the graph validation (not the
// CRC) are what must stop a bad graph before a search follows its links.
func FuzzDecodeNative(f *testing.F) {
	vecs, _, native := fuzzFixture(f)
	body := native[8 : len(native)-4]
	f.Add(body, 0, byte(0), len(body))
	f.Add(body, nativeHeaderLen+5, byte(0x7f), len(body))
	f.Add(body, len(body)-3, byte(2), len(body))
	f.Add(body, 80, byte(1), len(body))
	f.Add(body, 0, byte(0), len(body)/3)
	f.Fuzz(func(t *testing.T, blob []byte, at int, mask byte, cut int) {
		blob = bytes.Clone(blob)
		if len(blob) > 0 {
			blob[uint(at)%uint(len(blob))] ^= mask
		}
		if cut >= 0 && cut < len(blob) {
			blob = blob[:cut]
		}
		data := append([]byte(nativeMagic), blob...)
		data = binary.LittleEndian.AppendUint32(data, crc32.Checksum(data, castagnoli))
		h, err := ImportHNSW(bytes.NewReader(data), vecs, 4, DefaultHNSWParams())
		if err != nil {
			return
		}
		searchImported(t, h, vecs, 7)
	})
}

// searchImported queries an index that ImportHNSW accepted with each of
// its own vectors: a graph that passed the checks, however it was
// mutated, must answer as any HNSW does (k distinct accepted items, each
// with its exact score, best first), approximate only in which items.
func searchImported(t *testing.T, h *HNSW, vecs []float32, k int) {
	t.Helper()
	for i := range h.Len() {
		q := vecs[i*4 : i*4+4]
		got, err := h.Search(nil, q, k, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != min(k, h.Len()) {
			t.Fatalf("query %d: %d results, want %d", i, len(got), min(k, h.Len()))
		}
		checkResults(t, got, vecs, 4, q, k, nil)
	}
}

// FuzzExactSearch builds small indexes from fuzzed bytes (values on a
// coarse grid, so scores tie often, also at the bound) and checks every
// search path of Exact against sorting all scores: same items, order and
// score bits, for any k and filter.
func FuzzExactSearch(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, uint8(0), uint64(0x1234), uint16(3), []byte{0xff})
	f.Add(bytes.Repeat([]byte{3, 3}, 300), uint8(1), uint64(0xffff), uint16(10), []byte(nil))
	f.Add(bytes.Repeat([]byte{0, 1, 2, 3, 4, 5, 6}, 90), uint8(2), uint64(0x5a5a), uint16(100), []byte{0x11, 0x80})
	f.Add(bytes.Repeat([]byte{9}, 130), uint8(1), uint64(1), uint16(131), []byte{0, 0, 0, 0x40})
	f.Fuzz(func(t *testing.T, vals []byte, dim uint8, qbits uint64, k uint16, filter []byte) {
		d := 1 + int(dim%8)
		n := min(len(vals)/d, 3000)
		if n == 0 {
			return
		}
		grid := func(b byte) float32 { return float32(int(b%7)-3) / 2 }
		vecs := make([]float32, n*d)
		for i := range vecs {
			vecs[i] = grid(vals[i])
		}
		q := make([]float32, d)
		for i := range q {
			q[i] = grid(byte(qbits >> (8 * (i % 8))))
		}
		var accept Filter
		if len(filter) > 0 {
			accept = NewFilter(n)
			for id := range int32(n) {
				if filter[int(id/8)%len(filter)]&(1<<(id%8)) != 0 {
					accept.Accept(id)
				}
			}
		}
		ex, err := NewExact(vecs, d)
		if err != nil {
			t.Fatal(err)
		}
		kk := 1 + int(k)%(n+3)
		checkSearch(t, fmt.Sprintf("n %d dim %d k %d", n, d, kk), ex, vecs, q, kk, accept)
	})
}
