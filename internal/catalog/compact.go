package catalog

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/towerrecall/towerrecall/internal/movielens"
)

// compactMinDead is the fewest dead lines (lines a later line about the
// same movie overrides) worth a rewrite of the journal; compact also waits
// until they are at least half of it. 1,000 lines are ~150 KB and a few
// milliseconds of Open, below which a rewrite buys nothing noticeable; the
// half means each rewrite at least halves the file, so the bytes
// rewritten stay within twice the bytes ever appended.
const compactMinDead = 1000

// Compaction describes a rewrite of the journal without its dead lines:
// Open's, or one after a Sync while the journal is open.
type Compaction struct {
	LinesBefore, LinesAfter int
	BytesBefore, BytesAfter int64
	// Err is why the compaction failed. Before the new file replaced the
	// journal, the journal is left as it was and stays in use; after
	// (its directory could not be synced), the journal is the new file
	// and writing is off until a restart.
	Err error
}

// keepLast returns which lines of a journal, about the movies ids in
// order, a compaction keeps: the last line about each movie. It returns
// nil when too few lines are dead to be worth a rewrite (compactMinDead,
// and at least half the file), with due, the fewest lines the journal
// must have before a rewrite can be worth it (each line added makes at
// most one more dead), so that it is not counted again before then.
// Replay keeps only the latest entry per movie, so the file replays as
// before whatever artifact is loaded; an entry that the live artifact
// supersedes is kept, since an older artifact, rolled back to, does not.
// The last line, the highest sequence number, is always kept.
func keepLast(ids []movielens.MovieID) (keep []bool, due int) {
	if len(ids) < compactMinDead { // too few lines to have enough dead
		return nil, compactMinDead
	}
	last := make(map[movielens.MovieID]int, len(ids))
	for i, id := range ids {
		last[id] = i
	}
	dead := len(ids) - len(last)
	if dead < compactMinDead || 2*dead < len(ids) {
		return nil, len(ids) + max(compactMinDead-dead, len(ids)-2*dead)
	}
	keep = make([]bool, len(ids))
	for _, i := range last {
		keep[i] = true
	}
	return keep, 0
}

// kept is the elements i of s for which keep[i].
func kept[T any](s []T, keep []bool) []T {
	out := make([]T, 0, len(s))
	for i, x := range s {
		if keep[i] {
			out = append(out, x)
		}
	}
	return out
}

// compact rewrites the journal at path, whose first size bytes hold the
// lines keep is about, with only the lines keep marks. Kept lines are
// copied byte for byte, in order, so their checksums and sequence numbers
// stay.
//
// The kept lines go to path+".compact" (replacing any left by a crash),
// which is synced and locked before replace renames it over path and syncs
// the directory: a crash leaves the old journal or the new, both whole.
// compact returns the new file, positioned at its end, or nil if the
// journal was not replaced (c.Err says why).
func compact(path string, size int64, keep []bool, replace func(tmp, path string) (bool, error)) (*os.File, Compaction) {
	c := Compaction{LinesBefore: len(keep), BytesBefore: size}
	for _, k := range keep {
		if k {
			c.LinesAfter++
		}
	}
	tmp := path + ".compact"
	nf, n, err := writeKept(path, tmp, size, keep)
	if err == nil {
		err = lock(nf) // before the rename: the journal is never unlocked
	}
	renamed := false
	if err == nil {
		renamed, err = replace(tmp, path)
	}
	if err != nil && !renamed {
		if nf != nil { // what it created
			nf.Close()
			os.Remove(tmp)
		}
		c.Err = fmt.Errorf("catalog: compact journal %s: %w; the journal is kept as it was", path, err)
		return nil, c
	}
	if err != nil {
		c.Err = fmt.Errorf("catalog: compact journal %s: the compacted journal replaced it, but %w: writing is off until a restart", path, err)
	}
	c.BytesAfter = n
	return nf, c
}

// writeKept copies the lines i of the first size bytes of the file at
// path for which keep[i] to a new file tmp, with its permissions, syncs it
// and returns it with its length.
func writeKept(path, tmp string, size int64, keep []bool) (_ *os.File, n int64, _ error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	nf, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		return nil, 0, err
	}
	if err := nf.Chmod(st.Mode().Perm()); err != nil { // OpenFile's mode is masked by the umask
		return nf, 0, err
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 64<<10) // read() read every line through as large a buffer
	w := bufio.NewWriterSize(nf, 64<<10)
	for i := 0; ; i++ {
		raw, err := r.ReadSlice('\n')
		if err == io.EOF && len(raw) == 0 {
			break
		}
		if err != nil {
			return nf, 0, err
		}
		if i >= len(keep) {
			return nf, 0, fmt.Errorf("more than the %d lines written", len(keep))
		}
		if keep[i] {
			w.Write(raw) // an error sticks, for Flush
			n += int64(len(raw))
		}
	}
	if err := w.Flush(); err != nil {
		return nf, 0, err
	}
	return nf, n, nf.Sync()
}

// replaceFile renames tmp over path and syncs their directory; renamed
// reports whether the rename was done.
func replaceFile(tmp, path string) (renamed bool, err error) {
	if err := os.Rename(tmp, path); err != nil {
		return false, err
	}
	return true, syncDir(filepath.Dir(path))
}
