package recall

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/towerrecall/towerrecall/internal/ann"
	"github.com/towerrecall/towerrecall/internal/artifact"
	"github.com/towerrecall/towerrecall/internal/catalog"
	"github.com/towerrecall/towerrecall/internal/feature"
	"github.com/towerrecall/towerrecall/internal/movielens"
)

// Journal makes catalogue changes durable; *catalog.Journal is one.
// Write numbers and times an entry and writes it in order, not yet
// durably; Sync(seq) returns once every entry up to seq is on disk, and
// may run beside Writes. After a failed Write or Sync, every later one
// fails, and the entries after the last seq a Sync completed for are cut
// (even those its fsync happened to write: their changes are refused).
type Journal interface {
	Write(e catalog.Entry) (catalog.Entry, error)
	Sync(seq uint64) error
	Err() error // the failure that turned writing off; nil while writable
}

// PutResult answers PutMovie.
type PutResult struct {
	ModelVersion string
	Movie        Movie   // as stored: genres in the catalogue's spelling
	Created      bool    // the movie was not in the live catalogue before
	Changed      bool    // false: the movie was live exactly as sent, and nothing was written
	VectorNorm   float32 // of the movie tower's output (the prior's bias left out), for a sanity check
	Seq          uint64  // its journal entry; unchanged, the last entry applied (0: none)
}

// DeleteResult answers DeleteMovie.
type DeleteResult struct {
	ModelVersion string
	MovieID      movielens.MovieID
	Seq          uint64
}

// CatalogInfo describes the changes made over the live artifact.
type CatalogInfo struct {
	Writable bool   // a journal is attached and has not failed: PutMovie and DeleteMovie work
	Added    int    // live movies the artifact does not have
	Updated  int    // artifact movies whose metadata and vector were replaced
	Deleted  int    // artifact movies hidden
	Seq      uint64 // last journal entry applied
}

// ReadOnlyError is a catalogue change without a journal to record it.
type ReadOnlyError struct{}

func (ReadOnlyError) Error() string { return "recall: catalogue changes are off (no journal)" }

// JournalError is a change that could not be made durable; it was not
// applied.
type JournalError struct{ Err error }

func (e *JournalError) Error() string { return "recall: catalogue journal: " + e.Err.Error() }
func (e *JournalError) Unwrap() error { return e.Err }

// AttachJournal turns catalogue changes on: later changes are appended to
// j, and entries (read back from j at start, in order) are applied over
// every model loaded, the live one included. Call it once, at start, before
// any change is made. A nil j applies entries read-only (a replica
// without a catalogue token): changes are refused.
func (s *Service) AttachJournal(j Journal, entries []catalog.Entry) {
	v := s.attach(j, entries)
	s.commitMu.Lock()
	if n := len(entries); n > 0 {
		s.durable = max(s.durable, entries[n-1].Seq) // read back from disk
	}
	s.commitMu.Unlock()
	if v != nil {
		_ = s.commit(0, true) // publish
	}
}

// attach is AttachJournal's part under s.catMu; it returns the model the
// entries were replayed over (nil: none loaded yet).
func (s *Service) attach(j Journal, entries []catalog.Entry) *view {
	s.catMu.Lock()
	defer s.catMu.Unlock()
	s.journal = j
	s.writable.Store(j != nil && j.Err() == nil)
	s.journaled.Store(j != nil)
	s.latest = make(map[movielens.MovieID]catalog.Entry, len(entries))
	for _, e := range entries {
		s.latest[e.MovieID] = e
	}
	s.unsynced = nil
	if s.pending != nil {
		st := s.replay(s.pending.snap)
		s.logger.Info().Interface("catalog", st).Msg("catalogue journal applied")
	}
	return s.pending
}

// compactSlack is how many dead overlay rows beyond twice the live ones
// compact lets build up.
const compactSlack = 1024

// compact rebuilds the pending overlay from the journal's entries when
// dead rows (replaced or deleted versions, which every request still
// scans past) outnumber the live ones by 2× + compactSlack: a catalogue
// that re-sends the same movies every night would otherwise slow /recall
// until the next load. The cost, a tower run per changed movie under
// s.catMu, is paid once per that many changes. s.catMu is held.
func (s *Service) compact() {
	if ov := s.pending.ov; len(ov.rows) > 2*ov.nLive+compactSlack {
		st := s.replay(s.pending.snap)
		s.logger.Debug().Interface("catalog", st).Int("rows_before", len(ov.rows)).Msg("catalogue overlay compacted")
	}
}

// replayStats summarise a replay for the log.
type replayStats struct {
	Entries    int     `json:"entries"`    // latest entry per movie
	Applied    int     `json:"applied"`    // of them, applied over the artifact
	Superseded int     `json:"superseded"` // of them, older than an artifact that has the movie
	Seconds    float64 `json:"seconds"`
}

// replay makes s.pending the overlay of the journal's entries (durable or
// waiting for their fsync) over snap; s.catMu is held. An entry is
// superseded when the artifact was created after it and has the movie
// (or, for a delete, at all: the artifact was built from a catalogue that
// saw the delete); such entries are skipped.
func (s *Service) replay(snap *snapshot) replayStats {
	start := time.Now()
	ov := emptyOverlay(snap.dim, snap.towerDim)
	ov.owned = true // unpublished until the end: change in place
	latest := s.latest
	if len(s.unsynced) > 0 {
		latest = maps.Clone(s.latest)
		for _, e := range s.unsynced {
			latest[e.MovieID] = e
		}
	}
	st := replayStats{Entries: len(latest)}
	es := slices.SortedFunc(maps.Values(latest), func(a, b catalog.Entry) int { return cmp.Compare(a.Seq, b.Seq) })
	created := snap.bundle.Manifest.CreatedAt
	for _, e := range es {
		_, inBase := snap.movies[e.MovieID]
		if created.After(e.At) && (inBase || e.Op == catalog.OpDelete) {
			st.Superseded++
			ov.seq = e.Seq
			continue
		}
		ch := change{movie: entryMovie(e), seq: e.Seq}
		if e.Op == catalog.OpPut {
			ch.vec = snap.movieVector(ch.movie)
		}
		ov = ov.with(snap, ch)
		st.Applied++
	}
	ov.owned = false // published: later changes copy what they change
	st.Seconds = time.Since(start).Seconds()
	s.pending = &view{snap: snap, ov: ov}
	return st
}

// movieVector runs the movie tower for m: a movie the model was trained
// on keeps its id embedding (and its ratings: the popularity feature and
// the prior's bias), a new one gets the out-of-vocabulary row, so its
// vector comes from its genres and year, and the prior's default bias.
func (snap *snapshot) movieVector(m artifact.Movie) []float32 {
	b := snap.bundle
	in := feature.MovieInput{MovieID: strconv.Itoa(int(m.ID)), Genres: m.Genres, Year: m.Year}
	base, known := snap.movies[m.ID]
	if known && slices.Contains(b.Encoder.MovieFields, feature.PopularityField) {
		in.Ratings = snap.trainedRatings(base)
	}
	vec := make([]float32, snap.dim)
	b.Model.MovieVector(vec, b.Encoder.EncodeMovie(in))
	if known && b.Prior != nil {
		vec[snap.dim-1] = b.Prior.Bias[base]
	}
	return vec
}

// towerNorm is the length of the movie tower's part of vec (the prior's
// bias, the artifact's, left out), in float64 so that an overflowing
// output reads as infinite.
func (snap *snapshot) towerNorm(vec []float32) float32 {
	var sq float64
	for _, x := range vec[:snap.towerDim] {
		sq += float64(x) * float64(x)
	}
	return float32(math.Sqrt(sq))
}

// trainedRatings is a rating count in the popularity bucket training gave
// the artifact's movie m: the one that reproduces m's exported vector from
// its stored metadata. The histories count the validation ratings too,
// which a model not refit on them never counted, so they can put the
// movie in another bucket; they are the answer only when no bucket
// reproduces the vector (an artifact whose vectors are not the tower's).
func (snap *snapshot) trainedRatings(m int32) int {
	b := snap.bundle
	am := b.Movies[m]
	in := feature.MovieInput{MovieID: strconv.Itoa(int(am.ID)), Genres: am.Genres, Year: am.Year}
	want := b.Vectors[int(m)*snap.dim : int(m)*snap.dim+b.Model.TowerDim()]
	got := make([]float32, snap.dim)
	for _, v := range b.Encoder.Vocabs[feature.PopularityField].Values() {
		k, err := strconv.Atoi(v) // bucket k holds 2^(k−1) ratings, 0 none
		if err != nil || k < 0 || k > 62 {
			continue
		}
		in.Ratings = 0
		if k > 0 {
			in.Ratings = 1 << (k - 1)
		}
		b.Model.MovieVector(got, b.Encoder.EncodeMovie(in))
		if slices.Equal(got[:len(want)], want) {
			return in.Ratings
		}
	}
	return int(snap.ratingCounts()[m])
}

// PutMovie adds the movie, or replaces the metadata and vector of one
// that exists, and returns once the change is in the journal (fsynced)
// and visible to every later request. Concurrent changes share fsyncs
// (group commit, see commit.go). A movie that is live exactly as sent
// (title, genres in order, year) is left as it is: nothing is written,
// so a catalogue re-sent in full every night moves only the movies that
// changed into the overlay (which every request scans) and the journal.
// A genre the live model does not know is an *Error; catalog.CheckMovie's
// rules are the caller's to check.
func (s *Service) PutMovie(ctx context.Context, m Movie) (PutResult, error) {
	res, err := s.putMovie(ctx, m)
	if err != nil {
		return PutResult{}, err
	}
	return res, s.commit(res.Seq, false)
}

// putMovie is PutMovie's first step (see commit.go): check the change
// against the pending catalogue, write its journal line and add it to the
// pending view, under s.catMu.
func (s *Service) putMovie(ctx context.Context, m Movie) (PutResult, error) {
	s.catMu.Lock()
	defer s.catMu.Unlock()
	v, err := s.changeable()
	if err != nil {
		return PutResult{}, err
	}
	snap := v.snap
	mv := artifact.Movie{ID: m.MovieID, Title: m.Title, Year: m.Year, Genres: make([]string, len(m.Genres))}
	for i, g := range m.Genres {
		name, ok := snap.genreNames[strings.ToLower(g)]
		if !ok {
			return PutResult{}, &Error{Field: fmt.Sprintf("genres[%d]", i), Message: fmt.Sprintf("unknown genre %q (GET /model lists the genres; a new genre needs retraining)", g)}
		}
		// Lower-casing merges spellings that catalog.CheckMovie's
		// EqualFold keeps apart ("Actİon" and "Action"); the journal would
		// refuse the repeat.
		if j := slices.Index(mv.Genres[:i], name); j >= 0 {
			return PutResult{}, &Error{Field: fmt.Sprintf("genres[%d]", i), Message: fmt.Sprintf("genre %q repeats genres[%d] (%s)", g, j, name)}
		}
		mv.Genres[i] = name
	}
	g, existed := v.find(m.MovieID)
	if existed {
		if live := v.movie(g); live.Title == mv.Title && live.Year == mv.Year && slices.Equal(live.Genres, mv.Genres) {
			// PutMovie answers once the view compared with is durable
			// (a change to the movie may still wait for its fsync).
			return PutResult{ModelVersion: snap.info.Version, Seq: v.ov.seq, Movie: live, VectorNorm: snap.towerNorm(v.vectorOf(g))}, nil
		}
	}
	vec := snap.movieVector(mv)
	norm := snap.towerNorm(vec)
	if n := float64(norm); math.IsNaN(n) || math.IsInf(n, 0) || n*n > 1e37 {
		return PutResult{}, fmt.Errorf("recall: the movie tower's vector for movie %d is not finite", m.MovieID)
	}
	if err := ctx.Err(); err != nil {
		return PutResult{}, err
	}
	seq, err := s.write(v, catalog.Entry{Op: catalog.OpPut, MovieID: mv.ID, Title: mv.Title, Genres: mv.Genres, Year: mv.Year}, vec)
	if err != nil {
		return PutResult{}, err
	}
	s.compact()
	return PutResult{
		ModelVersion: snap.info.Version, Created: !existed, Changed: true, Seq: seq, VectorNorm: norm,
		Movie: movieOf(&mv),
	}, nil
}

// DeleteMovie hides the movie from every later request once the change
// is in the journal (fsynced; group commit as PutMovie). A movie that is
// not live — counting changes still waiting for their fsync — is an
// *UnknownMovieError.
func (s *Service) DeleteMovie(ctx context.Context, id movielens.MovieID) (DeleteResult, error) {
	res, err := s.deleteMovie(ctx, id)
	if err != nil {
		return DeleteResult{}, err
	}
	return res, s.commit(res.Seq, false)
}

// deleteMovie is DeleteMovie's first step (see putMovie).
func (s *Service) deleteMovie(ctx context.Context, id movielens.MovieID) (DeleteResult, error) {
	s.catMu.Lock()
	defer s.catMu.Unlock()
	v, err := s.changeable()
	if err != nil {
		return DeleteResult{}, err
	}
	if _, ok := v.find(id); !ok {
		return DeleteResult{}, &UnknownMovieError{MovieID: id}
	}
	if err := ctx.Err(); err != nil {
		return DeleteResult{}, err
	}
	seq, err := s.write(v, catalog.Entry{Op: catalog.OpDelete, MovieID: id}, nil)
	if err != nil {
		return DeleteResult{}, err
	}
	return DeleteResult{ModelVersion: v.snap.info.Version, MovieID: id, Seq: seq}, nil
}

// changeable returns the pending view when a change can be made: a model
// is loaded, a journal is attached and no fsync has failed. s.catMu is
// held.
func (s *Service) changeable() (*view, error) {
	switch {
	case s.pending == nil:
		return nil, NoModelError{}
	case s.journal == nil:
		return nil, ReadOnlyError{}
	case s.catErr != nil: // %v: this change was never written, whatever that failure's doubt
		return nil, &JournalError{Err: fmt.Errorf("changes are off since a failed fsync: %v", s.catErr)}
	}
	return s.pending, nil
}

// write writes e, a change over v (the pending view), to the journal and
// makes it pending: a put when vec is set, a delete when it is nil. It
// returns the entry's sequence number. s.catMu is held.
func (s *Service) write(v *view, e catalog.Entry, vec []float32) (uint64, error) {
	e.Base, e.At = v.snap.info.Version, changeTime(v.snap)
	written, err := s.journal.Write(e)
	if err != nil {
		s.writable.Store(false) // a failed Write is sticky
		return 0, &JournalError{Err: err}
	}
	s.unsynced = append(s.unsynced, written)
	// The change is built from the entry, as replay rebuilds it.
	ch := change{movie: entryMovie(e), vec: vec, seq: written.Seq}
	s.pending = &view{snap: v.snap, ov: v.ov.with(v.snap, ch)}
	return written.Seq, nil
}

// entryMovie is the movie of journal entry e (only its id for a delete).
func entryMovie(e catalog.Entry) artifact.Movie {
	return artifact.Movie{ID: e.MovieID, Title: e.Title, Genres: e.Genres, Year: e.Year}
}

// changeTime is the time to record a change made now over snap at: zero
// (the journal's clock) unless that clock is not past the artifact's
// creation, then just after it. A change made while an artifact is live is
// newer than it, and replay, which compares the two times, must not let
// that artifact supersede the change when the training host's clock runs
// ahead of this one.
func changeTime(snap *snapshot) time.Time {
	if c := snap.bundle.Manifest.CreatedAt; !time.Now().After(c) {
		return c.UTC().Add(time.Nanosecond)
	}
	return time.Time{}
}

// Result ids name live movies in one space: the artifact's rows, then the
// overlay's rows numbered on from the artifact's movie count.

// find returns the result id of live movie id.
func (v *view) find(id movielens.MovieID) (int32, bool) {
	if r, ok := v.ov.ids.get(id); ok {
		return int32(len(v.snap.bundle.Movies)) + r, true
	}
	if m, ok := v.snap.movies[id]; ok && v.ov.baseAccepts(m) {
		return m, true
	}
	return 0, false
}

// vectorOf is the vector of result id g.
func (v *view) vectorOf(g int32) []float32 {
	n := int32(len(v.snap.bundle.Movies))
	if g < n {
		return v.snap.exact.Vector(g)
	}
	return v.ov.vecs.Vector(g - n)
}

// movie is the catalogue entry of result id g.
func (v *view) movie(g int32) Movie {
	n := int32(len(v.snap.bundle.Movies))
	if g < n {
		return movieOf(&v.snap.bundle.Movies[g])
	}
	return movieOf(&v.ov.rows[g-n].movie)
}

// items are the results as recalled movies.
func (v *view) items(res []ann.Result) []Item {
	out := make([]Item, len(res))
	for i, r := range res {
		mv := v.movie(r.ID)
		out[i] = Item{MovieID: mv.MovieID, Title: mv.Title, Genres: mv.Genres, Year: mv.Year, Score: r.Score}
	}
	return out
}
