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

// Compaction describes Open's rewrite of the journal without its dead
// lines.
type Compaction struct {
	LinesBefore, LinesAfter int
	BytesBefore, BytesAfter int64
	// Err is why the compaction failed. Before the new file replaced the
	// journal, the journal is left as it was and stays in use; after
	// (its directory could not be synced), the journal is the new file
	// and writing is off until a restart.
	Err error
}

// compact rewrites the journal at path, open as f, whose first size bytes
// hold entries, without its dead lines, when there are enough of them
// (compactMinDead). Replay keeps only the latest entry per movie, so the
// file replays as before whatever artifact is loaded; an entry that the
// live artifact supersedes is kept, since an older artifact, rolled back
// to, does not. Kept lines are copied byte for byte, in order, so their
// checksums and sequence numbers stay, and the last line, the highest
// sequence number, is always kept.
//
// The kept lines go to path+".compact" (replacing any left by a crash),
// which is synced and locked before replace renames it over path and syncs
// the directory: a crash leaves the old journal or the new, both whole.
// compact returns the new file, positioned at its end, and its entries, or
// a nil file if the journal was not replaced (c.Err says why, if it
// failed).
func compact(f *os.File, path string, entries []Entry, size int64, replace func(tmp, path string) (bool, error)) (_ *os.File, kept []Entry, c Compaction) {
	if len(entries) < compactMinDead { // too few lines to have enough dead
		return nil, nil, Compaction{}
	}
	last := make(map[movielens.MovieID]int, len(entries))
	for i, e := range entries {
		last[e.MovieID] = i
	}
	dead := len(entries) - len(last)
	if dead < compactMinDead || 2*dead < len(entries) {
		return nil, nil, Compaction{}
	}
	c = Compaction{LinesBefore: len(entries), LinesAfter: len(last), BytesBefore: size}
	tmp := path + ".compact"
	nf, n, err := writeKept(f, tmp, size, func(i int) bool { return last[entries[i].MovieID] == i })
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
		return nil, nil, c
	}
	if err != nil {
		c.Err = fmt.Errorf("catalog: compact journal %s: the compacted journal replaced it, but %w: writing is off until a restart", path, err)
	}
	for i, e := range entries {
		if last[e.MovieID] == i {
			kept = append(kept, e)
		}
	}
	c.BytesAfter = n
	return nf, kept, c
}

// writeKept copies the lines i of f's first size bytes for which keep(i)
// to a new file tmp, with f's permissions, syncs it and returns it with
// its length.
func writeKept(f *os.File, tmp string, size int64, keep func(i int) bool) (_ *os.File, n int64, _ error) {
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
		if keep(i) {
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
