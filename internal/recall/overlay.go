package recall

import (
	"maps"
	"math/bits"
	"slices"
	"strings"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/movielens"
)

// overlay is the catalogue changed since the artifact: movies added or
// updated without retraining (rows with their vectors, scanned exactly by
// every request) and the artifact's movies they hide (deleted or
// replaced). It is the small mutable segment next to the immutable base
// index, as vector databases keep one; it is folded into the base by the
// next artifact.
//
// An overlay is never changed once published: a change makes a new one
// (with). Rows are append-only and shared: a new overlay appends past the
// old one's length, which the old one's readers never read. The bit sets
// and the id index are copied on write, a small part each time.
type overlay struct {
	rows   []orow      // append-only; a replaced or deleted row stays, dead
	vecs   ann.Segment // a vector per row
	units  ann.Segment // unnormalised models: a row's movie-tower values at unit length (snapshot.cosine's rows)
	live   ann.Filter
	genres map[string]ann.Filter // lower-case genre → rows that have it (live or not); may be shorter than rows
	ids    *idIndex              // movie id → its live row
	// baseLive is the artifact's movies that are not hidden; nil while
	// none is.
	baseLive ann.Filter
	// owned: this overlay is replay's, which no reader holds until it is
	// published, so with changes its bit sets (baseLive, live, genres)
	// and its id index in place instead of copying them per change, which
	// made a replay quadratic in its entries under the writers' lock
	// (docs/catalog.md). Published overlays copy on write.
	owned  bool
	hidden int    // artifact movies hidden (deleted or replaced by a row)
	nLive  int    // live rows
	added  int    // live rows of movies the artifact does not have
	seq    uint64 // last journal entry applied or superseded
}

// orow is one movie of the overlay.
type orow struct {
	movie  artifact.Movie
	folded string // the title as search reads it (appendSearchForm)
	base   int32  // the artifact's row it replaces, -1 for a new movie
}

func emptyOverlay(dim, towerDim int) *overlay {
	return &overlay{vecs: ann.NewSegment(dim), units: ann.NewSegment(towerDim), ids: &idIndex{}, genres: map[string]ann.Filter{}}
}

// change is a put (vec set) or a delete (vec nil) of one movie.
type change struct {
	movie artifact.Movie
	vec   []float32
	seq   uint64
}

// with returns the overlay after ch, for the snapshot snap. It must be
// called on the latest overlay only (the pending one, under s.catMu): its
// rows are appended in place past the end of ov's. A delete of a movie
// that is not live changes nothing but seq.
func (ov *overlay) with(snap *snapshot, ch change) *overlay {
	next := *ov
	next.seq = ch.seq
	id := ch.movie.ID
	n := len(ov.rows)
	if ch.vec != nil {
		n++
	}
	next.live = ov.grow(ov.live, n)
	if old, ok := ov.ids.get(id); ok { // the overlay's current version dies
		next.live.Reject(old)
		next.nLive--
		if ov.rows[old].base < 0 {
			next.added--
		}
		next.ids = ov.ids.with(id, -1, ov.owned)
	}
	base, inBase := snap.movies[id]
	if inBase && ov.baseAccepts(base) { // the artifact's version is hidden from now on
		if !ov.owned || ov.baseLive == nil {
			next.baseLive = slices.Clone(ov.base(snap.all))
		}
		next.baseLive.Reject(base)
		next.hidden++
	}
	if ch.vec == nil {
		return &next
	}
	r := int32(len(ov.rows))
	row := orow{movie: ch.movie, folded: string(appendSearchForm(nil, ch.movie.Title)), base: -1}
	if inBase {
		row.base = base
	} else {
		next.added++
	}
	next.rows = append(ov.rows, row)
	next.vecs = ov.vecs.Append(ch.vec)
	if snap.cosine != nil {
		next.units = ov.units.Append(appendUnit(nil, ch.vec[:snap.towerDim]))
	}
	next.live.Accept(r)
	next.nLive++
	if !ov.owned {
		next.genres = maps.Clone(ov.genres)
	}
	for _, g := range ch.movie.Genres {
		g = strings.ToLower(g)
		f := ov.grow(ov.genres[g], n)
		f.Accept(r)
		next.genres[g] = f
	}
	next.ids = ov.ids.with(id, r, ov.owned) // replaces the old row's mapping
	return &next
}

// grow returns f grown to hold n ids (never shrunk): a copy, or f itself
// (grown in place, amortised) when ov is owned.
func (ov *overlay) grow(f ann.Filter, n int) ann.Filter {
	if !ov.owned {
		f = slices.Clone(f)
	}
	for len(f)*64 < n {
		f = append(f, 0)
	}
	return f
}

// counts are the overlay's changes: movies added, artifact movies updated
// and artifact movies deleted.
func (ov *overlay) counts() (added, updated, deleted int) {
	updated = ov.nLive - ov.added
	return ov.added, updated, ov.hidden - updated
}

// updatedInOrder returns the live rows that replace an artifact movie,
// in the order of the artifact's rows.
func (ov *overlay) updatedInOrder() []int32 {
	var rows []int32
	for r, row := range ov.rows {
		if row.base >= 0 && ov.live.Accepts(int32(r)) {
			rows = append(rows, int32(r))
		}
	}
	slices.SortFunc(rows, func(a, b int32) int { return int(ov.rows[a].base - ov.rows[b].base) })
	return rows
}

// baseAccepts reports whether the artifact's row m is not hidden.
func (ov *overlay) baseAccepts(m int32) bool { return ov.baseLive == nil || ov.baseLive.Accepts(m) }

// base is the artifact's movies that are not hidden: baseLive, or all (the
// artifact's every movie) while none is.
func (ov *overlay) base(all ann.Filter) ann.Filter {
	if ov.baseLive == nil {
		return all
	}
	return ov.baseLive
}

// movies is the number of live movies over an artifact of n.
func (ov *overlay) movies(n int) int { return n - ov.hidden + ov.nLive }

// liveFilters are sc's copies of v's live movies, for a request to
// narrow: accept over the artifact's rows, over over the overlay's.
func (sc *scratch) liveFilters(v *view) (accept, over ann.Filter) {
	copy(sc.filter, v.ov.base(v.snap.all))
	sc.ofilter = append(sc.ofilter[:0], v.ov.live...)
	return sc.filter, sc.ofilter
}

// orInto sets dst |= src over dst's words; src may be shorter.
func orInto(dst, src ann.Filter) {
	for i := range min(len(dst), len(src)) {
		dst[i] |= src[i]
	}
}

// andInto sets dst &= src over dst's words; missing words of src are 0.
func andInto(dst, src ann.Filter) {
	n := min(len(dst), len(src))
	for i := range n {
		dst[i] &= src[i]
	}
	clear(dst[n:])
}

// idIndex maps movie ids to overlay rows. It is sharded so that a change
// copies one small shard (and the shard table) instead of the whole map.
type idIndex struct {
	shards [idShards]map[movielens.MovieID]int32
}

const idShards = 256

func shardOf(id movielens.MovieID) int {
	// A multiplicative hash spreads consecutive ids over the shards.
	return int(bits.RotateLeft32(uint32(id)*0x9e3779b1, 8) % idShards)
}

func (x *idIndex) get(id movielens.MovieID) (int32, bool) {
	r, ok := x.shards[shardOf(id)][id]
	return r, ok
}

// with returns x with id mapped to row r, or unmapped when r < 0: a copy
// of x and of id's shard, or x itself changed in place when inPlace (an
// owned overlay's).
func (x *idIndex) with(id movielens.MovieID, r int32, inPlace bool) *idIndex {
	s := shardOf(id)
	n, m := x, x.shards[s]
	if !inPlace {
		c := *x
		n, m = &c, maps.Clone(m)
	}
	if m == nil {
		m = map[movielens.MovieID]int32{}
	}
	if r < 0 {
		delete(m, id)
	} else {
		m[id] = r
	}
	n.shards[s] = m
	return n
}

// merge appends to dst the best k of two result lists, each best first,
// in that order.
func merge(dst, a, b []ann.Result, k int) []ann.Result {
	for len(dst) < k && (len(a) > 0 || len(b) > 0) {
		// a's first goes first unless b's scores higher (ties: lower id, a's).
		if len(b) == 0 || len(a) > 0 && (a[0].Score > b[0].Score || a[0].Score == b[0].Score && a[0].ID < b[0].ID) {
			dst, a = append(dst, a[0]), a[1:]
		} else {
			dst, b = append(dst, b[0]), b[1:]
		}
	}
	return dst
}
