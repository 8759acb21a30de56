package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/towerrecall/towerrecall/internal/movielens"
)

// writeOverwritten writes a journal at path of live movies (one line each,
// movies 1..live) and then dead more lines, each about one of them at
// random (a put or a delete): every such line makes exactly one earlier
// line dead. It writes the lines as Write does, but not through a Journal,
// whose Sync would compact them. It returns the entries written.
func writeOverwritten(tb testing.TB, path string, live, dead int, seed uint64) []Entry {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var out []Entry
	var file []byte
	for i := range live + dead {
		id := movielens.MovieID(i + 1)
		if i >= live {
			id = movielens.MovieID(1 + rng.IntN(live))
		}
		e := Entry{Seq: uint64(i + 1), At: at.Add(time.Duration(i)*time.Second + time.Duration(rng.IntN(1e9))), Op: OpDelete, MovieID: id, Base: "v1"}
		if rng.IntN(4) > 0 {
			e.Op, e.Title, e.Genres, e.Year = OpPut, fmt.Sprintf("Take %d (2024)", i), []string{"Drama"}, 1900+rng.IntN(200)
		}
		l, err := encodeLine(e)
		if err != nil {
			tb.Fatal(err)
		}
		file = append(file, l...)
		out = append(out, e)
	}
	if err := os.WriteFile(path, file, 0o644); err != nil {
		tb.Fatal(err)
	}
	return out
}

// latestOf is the latest entry per movie of es, in sequence order: what
// replay uses (see recall.TestCatalogReplayLatestOnly).
func latestOf(es []Entry) []Entry {
	last := map[movielens.MovieID]uint64{}
	for _, e := range es {
		last[e.MovieID] = e.Seq
	}
	var out []Entry
	for _, e := range es {
		if last[e.MovieID] == e.Seq {
			out = append(out, e)
		}
	}
	return out
}

// TestJournalCompaction: a journal whose lines are mostly overridden by
// later lines about the same movie is rewritten at Open to the latest
// line per movie, byte for byte as written (checksums and sequence
// numbers intact), with the journal's file mode; it replays to the same
// latest entries, deletes and their times included, and appending goes on
// after the last sequence number and survives a reopen.
func TestJournalCompaction(t *testing.T) {
	t.Parallel()
	const seed = 7
	path := filepath.Join(t.TempDir(), "j")
	written := writeOverwritten(t, path, 100, 2900, seed)
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	want := latestOf(written)

	j, rep, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Compaction; c.Err != nil || c.LinesBefore != 3000 || c.LinesAfter != 100 || c.BytesBefore != int64(len(before)) || c.BytesAfter >= c.BytesBefore/10 {
		t.Fatalf("seed %d: compaction %+v, want 3,000 lines to 100", seed, c)
	}
	if !slices.EqualFunc(rep.Entries, want, entryEqual) {
		t.Fatalf("seed %d: Open returned %d entries, want the %d latest", seed, len(rep.Entries), len(want))
	}
	after, _ := os.ReadFile(path)
	if int64(len(after)) != rep.Compaction.BytesAfter {
		t.Fatalf("file of %d bytes, compaction says %d", len(after), rep.Compaction.BytesAfter)
	}
	for _, l := range bytes.SplitAfter(after, []byte("\n")) {
		if len(l) > 0 && !bytes.Contains(before, l) {
			t.Fatalf("kept line %q is not a line of the journal", l)
		}
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("compacted journal: %v, %v; want mode 0600", st.Mode(), err)
	}
	if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the temporary file is left: %v", err)
	}
	if rep, err := ReadFile(path); err != nil || !slices.EqualFunc(rep.Entries, want, entryEqual) {
		t.Fatalf("ReadFile after compaction: %d entries, %v", len(rep.Entries), err)
	}

	e := appendAll(t, j, Entry{Op: OpDelete, MovieID: 1})[0]
	if e.Seq != written[len(written)-1].Seq+1 {
		t.Fatalf("next entry has seq %d, want %d", e.Seq, written[len(written)-1].Seq+1)
	}
	j.Close()
	j, rep, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if want := append(want, e); !slices.EqualFunc(rep.Entries, want, entryEqual) || rep.Compaction != (Compaction{}) {
		t.Fatalf("reopened: %d entries (compaction %+v), want %d and no compaction", len(rep.Entries), rep.Compaction, len(want))
	}
}

// TestJournalCompactionThreshold: the file is rewritten only when the
// dead lines are at least compactMinDead and at least half of it;
// otherwise it is left byte for byte.
func TestJournalCompactionThreshold(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		live, dead int
		compact    bool
	}{
		{100, compactMinDead - 1, false},
		{100, compactMinDead, true},
		{compactMinDead + 1, compactMinDead, false}, // less than half dead
		{compactMinDead, compactMinDead, true},
	} {
		t.Run(fmt.Sprintf("live=%d,dead=%d", tc.live, tc.dead), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "j")
			written := writeOverwritten(t, path, tc.live, tc.dead, 3)
			before, _ := os.ReadFile(path)
			j, rep, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			j.Close()
			after, _ := os.ReadFile(path)
			if got := rep.Compaction.LinesBefore > 0; got != tc.compact || rep.Compaction.Err != nil {
				t.Fatalf("compaction %+v, want it to run: %v", rep.Compaction, tc.compact)
			}
			if !tc.compact && !bytes.Equal(after, before) {
				t.Fatal("the journal was changed below the threshold")
			}
			want := written
			if tc.compact {
				want = latestOf(written)
			}
			if !slices.EqualFunc(rep.Entries, want, entryEqual) {
				t.Fatalf("%d entries, want %d", len(rep.Entries), len(want))
			}
		})
	}
}

// TestJournalCompactionFails: a compaction that fails before its rename
// (the temporary file cannot be created, or the rename fails) leaves the
// journal byte for byte as it was, open, locked and appendable; one that
// fails after it (the directory cannot be synced) leaves the compacted
// journal in place but turns writing off, since a crash might bring back
// the old directory entry and lose what was appended.
func TestJournalCompactionFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		block   bool // a directory where the temporary file goes
		replace func(tmp, path string) (bool, error)
		renamed bool
	}{
		{name: "temporary file cannot be created", block: true, replace: replaceFile},
		{name: "rename fails", replace: func(string, string) (bool, error) { return false, errors.New("EIO") }},
		{name: "directory sync fails", replace: func(tmp, path string) (bool, error) {
			if err := os.Rename(tmp, path); err != nil {
				return false, err
			}
			return true, errors.New("EIO")
		}, renamed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "j")
			written := writeOverwritten(t, path, 100, 1500, 5)
			before, _ := os.ReadFile(path)
			if tc.block {
				if err := os.MkdirAll(filepath.Join(path+".compact", "x"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			j, rep, err := open(path, tc.replace)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			if rep.Compaction.Err == nil {
				t.Fatalf("compaction %+v, want an error", rep.Compaction)
			}
			if !tc.block {
				if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("the temporary file is left: %v", err)
				}
			}
			if j2, _, err := Open(path); err == nil {
				j2.Close()
				t.Fatal("a second writer opened the journal")
			}
			after, _ := os.ReadFile(path)
			if tc.renamed {
				if !slices.EqualFunc(rep.Entries, latestOf(written), entryEqual) || j.Err() == nil {
					t.Fatalf("%d entries, journal error %v; want the latest entries and writing off", len(rep.Entries), j.Err())
				}
				if _, err := j.Write(Entry{Op: OpDelete, MovieID: 1}); err == nil {
					t.Fatal("a write after a failed directory sync")
				}
				j.Close()
				if rep, err := ReadFile(path); err != nil || !slices.EqualFunc(rep.Entries, latestOf(written), entryEqual) {
					t.Fatalf("read back %d entries, %v", len(rep.Entries), err)
				}
				return
			}
			if !bytes.Equal(after, before) {
				t.Fatal("a failed compaction changed the journal")
			}
			if !slices.EqualFunc(rep.Entries, written, entryEqual) {
				t.Fatalf("%d entries, want all %d", len(rep.Entries), len(written))
			}
			e := appendAll(t, j, Entry{Op: OpDelete, MovieID: 1})[0]
			j.Close()
			if after, _ := os.ReadFile(path); !bytes.HasPrefix(after, before) || e.Seq != uint64(len(written)+1) {
				t.Fatalf("appended seq %d; the journal's lines changed: %v", e.Seq, !bytes.HasPrefix(after, before))
			}
		})
	}
}

// TestJournalCompactionLock: after compaction the journal is still one
// writer's: a second Open is refused while the first holds it.
func TestJournalCompactionLock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j")
	writeOverwritten(t, path, 10, 1500, 9)
	j, rep, err := Open(path)
	if err != nil || rep.Compaction.LinesAfter != 10 {
		t.Fatalf("Open: compaction %+v, %v", rep.Compaction, err)
	}
	if j2, _, err := Open(path); err == nil {
		j2.Close()
		t.Fatal("a second writer opened the compacted journal")
	} else if !strings.Contains(err.Error(), "another process") {
		t.Fatalf("error %v does not say the journal is in use", err)
	}
	j.Close()
	j, _, err = Open(path)
	if err != nil {
		t.Fatalf("reopened after close: %v", err)
	}
	j.Close()
}

// TestJournalCompactionTornTail: a torn last line is cut as before (and
// reported), and the compacted journal holds only whole lines; a torn line
// after the compacted journal's last line is cut at the next Open too.
func TestJournalCompactionTornTail(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j")
	written := writeOverwritten(t, path, 50, 1500, 11)
	tear := func() {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(append([]byte(`{"entry":{"seq":99999,"at":"2025`), make([]byte, 100)...))
		f.Close()
	}
	tear()
	j, rep, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.TornBytes == 0 || rep.Compaction.LinesAfter != 50 || !slices.EqualFunc(rep.Entries, latestOf(written), entryEqual) {
		t.Fatalf("torn %d bytes, compaction %+v, %d entries", rep.TornBytes, rep.Compaction, len(rep.Entries))
	}
	j.Close()
	tear()
	j, rep, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if rep.TornBytes == 0 || rep.Compaction != (Compaction{}) || !slices.EqualFunc(rep.Entries, latestOf(written), entryEqual) {
		t.Fatalf("torn %d bytes, compaction %+v, %d entries", rep.TornBytes, rep.Compaction, len(rep.Entries))
	}
}

// TestJournalLockReplacedFile: a writer that opened the journal just
// before another process's compaction renamed a new file over it, and
// locks the old file once that process let it go, is refused: it would
// append to a file no longer at the path.
func TestJournalLockReplacedFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "j")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.WriteFile(path+".compact", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".compact", path); err != nil {
		t.Fatal(err)
	}
	if err := lockPath(f, path); err == nil {
		t.Fatal("locked a journal that was replaced")
	}
}

// BenchmarkJournalOpen measures what compaction saves at start: reading a
// journal of 100,000 lines about 1,000 movies (ReadFile reads as Open
// does, without compacting), the one Open that compacts it, and Open of
// the compacted journal. Report the numbers; nothing is asserted.
func BenchmarkJournalOpen(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "j")
	writeOverwritten(b, path, 1000, 99_000, 1)
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("read 100k lines", func(b *testing.B) {
		for b.Loop() {
			if _, err := ReadFile(path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open and compact 100k lines", func(b *testing.B) {
		p := filepath.Join(dir, "c")
		for range b.N {
			b.StopTimer()
			if err := os.WriteFile(p, raw, 0o644); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			j, rep, err := Open(p)
			if err != nil || rep.Compaction.LinesAfter != 1000 {
				b.Fatalf("compaction %+v, %v", rep.Compaction, err)
			}
			j.Close()
		}
	})
	// What Writes wait for when a Sync compacts while serving, beyond its
	// fsync: a catalogue of 100,000 movies sent twice.
	b.Run("rewrite 200k lines to 100k", func(b *testing.B) {
		p := filepath.Join(dir, "w")
		written := writeOverwritten(b, p, 100_000, 100_000, 2)
		raw, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		ids := make([]movielens.MovieID, len(written))
		for i, e := range written {
			ids[i] = e.MovieID
		}
		for range b.N {
			b.StopTimer()
			if err := os.WriteFile(p, raw, 0o644); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			keep, _ := keepLast(ids)
			nf, c := compact(p, int64(len(raw)), keep, replaceFile)
			if nf == nil || c.LinesAfter != 100_000 {
				b.Fatalf("compaction %+v", c)
			}
			nf.Close()
		}
	})
	j, rep, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	j.Close()
	b.Logf("%d lines, %d bytes; compacted: %d lines, %d bytes", rep.Compaction.LinesBefore, rep.Compaction.BytesBefore, rep.Compaction.LinesAfter, rep.Compaction.BytesAfter)
	b.Run("open compacted 1k lines", func(b *testing.B) {
		for b.Loop() {
			j, rep, err := Open(path)
			if err != nil || len(rep.Entries) != 1000 {
				b.Fatalf("%d entries, %v", len(rep.Entries), err)
			}
			j.Close()
		}
	})
}

// TestJournalCompactsWhileOpen: a journal open for weeks (a catalogue
// re-sent every night) is compacted by the Sync after which no line waits
// for one, not only at the next start: the file shrinks to the latest line
// per movie, OnCompact is told, writing goes on in the new file, and a
// reopen reads every change. While a written line is not yet synced (a
// Sync covering only earlier lines), nothing is rewritten.
func TestJournalCompactsWhileOpen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j")
	j, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var told []Compaction
	j.OnCompact(func(c Compaction) { told = append(told, c) })
	const live = 300
	var written []Entry
	write := func(n int) (last uint64) {
		for range n {
			i := len(written)
			e, err := j.Write(Entry{Op: OpPut, MovieID: movielens.MovieID(1 + i%live), Title: fmt.Sprintf("Take %d", i), Genres: []string{"Drama"}})
			if err != nil {
				t.Fatal(err)
			}
			written = append(written, e)
		}
		return written[len(written)-1].Seq
	}
	size := func() int64 {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}

	write(live + compactMinDead - 1) // one dead line short
	if err := j.Sync(written[len(written)-1].Seq); err != nil || len(told) != 0 {
		t.Fatalf("below the threshold: sync %v, %d compactions", err, len(told))
	}
	mid := write(1)
	last := write(10)
	if err := j.Sync(mid); err != nil || len(told) != 0 {
		t.Fatalf("with lines still unsynced: sync %v, %d compactions", err, len(told))
	}
	full := size()
	if err := j.Sync(last); err != nil {
		t.Fatal(err)
	}
	if len(told) != 1 || told[0].Err != nil || told[0].LinesBefore != len(written) || told[0].LinesAfter != live ||
		told[0].BytesBefore != full || told[0].BytesAfter != size() || size() >= full/3 {
		t.Fatalf("compactions %+v (file %d bytes, was %d), want one of %d lines to %d", told, size(), full, len(written), live)
	}
	if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the temporary file is left: %v", err)
	}
	want := latestOf(written) // the compacted file's lines, then the 5 below
	if err := j.Sync(write(5)); err != nil || len(told) != 1 {
		t.Fatalf("after the compaction: sync %v, %d compactions", err, len(told))
	}
	j.Close()
	j, rep, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	want = append(want, written[len(written)-5:]...)
	if !slices.EqualFunc(rep.Entries, want, entryEqual) || rep.Compaction != (Compaction{}) {
		t.Fatalf("reopened: %d entries (compaction %+v), want %d and no compaction", len(rep.Entries), rep.Compaction, len(want))
	}
}

// TestJournalCompactionWhileOpenFails: a compaction that cannot write its
// new file leaves the journal in use, as it was, and is not tried again at
// every Sync (each try copies the file) but once the file has twice its
// lines; one whose directory sync fails after the rename turns writing off,
// as at Open.
func TestJournalCompactionWhileOpenFails(t *testing.T) {
	t.Parallel()
	for _, renamed := range []bool{false, true} {
		t.Run(fmt.Sprint("renamed=", renamed), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "j")
			tries := 0
			j, _, err := open(path, func(tmp, path string) (bool, error) {
				tries++
				if !renamed {
					return false, errors.New("EIO")
				}
				if err := os.Rename(tmp, path); err != nil {
					return false, err
				}
				return true, errors.New("EIO")
			})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			var told []Compaction
			j.OnCompact(func(c Compaction) { told = append(told, c) })
			n := 0
			writeSync := func(lines int) error {
				var last uint64
				for range lines {
					e, err := j.Write(Entry{Op: OpDelete, MovieID: movielens.MovieID(1 + n%10)})
					if err != nil {
						return err
					}
					last, n = e.Seq, n+1
				}
				return j.Sync(last)
			}
			if err := writeSync(2 * compactMinDead); err != nil {
				t.Fatal(err)
			}
			if len(told) != 1 || told[0].Err == nil || tries != 1 {
				t.Fatalf("compactions %+v after %d tries, want one that failed", told, tries)
			}
			if renamed {
				if err := writeSync(1); err == nil || j.Err() == nil {
					t.Fatal("a write after a failed directory sync")
				}
				return
			}
			if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the temporary file is left: %v", err)
			}
			for range 20 { // up to twice the lines: no new try
				if err := writeSync(2*compactMinDead/20 - 1); err != nil {
					t.Fatal(err)
				}
			}
			if tries != 1 {
				t.Fatalf("%d tries before the file doubled", tries)
			}
			if err := writeSync(20); err != nil || tries != 2 {
				t.Fatalf("once doubled: %v, %d tries", err, tries)
			}
			j.Close()
			if rep, err := ReadFile(path); err != nil || len(rep.Entries) != n {
				t.Fatalf("read back %d entries of %d, %v", len(rep.Entries), n, err)
			}
		})
	}
}

// TestJournalCompactionRandom: random writes about a few movies, synced at
// random points (a Sync covering only some of the lines written), compact
// whenever a Sync leaves nothing waiting; whatever the history, the file
// read back holds the latest entry of every movie, in sequence order, and
// only lines written.
func TestJournalCompactionRandom(t *testing.T) {
	t.Parallel()
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 3))
			path := filepath.Join(t.TempDir(), "j")
			j, _, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			compactions := 0
			j.OnCompact(func(c Compaction) {
				if c.Err != nil {
					t.Errorf("compaction: %v", c.Err)
				}
				compactions++
			})
			var written []Entry
			for range 6000 {
				e := Entry{Op: OpDelete, MovieID: movielens.MovieID(1 + rng.IntN(40))}
				if rng.IntN(3) > 0 {
					e.Op, e.Title, e.Genres = OpPut, fmt.Sprint("Take ", len(written)), []string{"Drama"}
				}
				e, err := j.Write(e)
				if err != nil {
					t.Fatal(err)
				}
				written = append(written, e)
				if rng.IntN(8) == 0 { // sync up to a random line written so far
					if err := j.Sync(written[rng.IntN(len(written))].Seq); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := j.Sync(written[len(written)-1].Seq); err != nil {
				t.Fatal(err)
			}
			j.Close()
			rep, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			bySeq := map[uint64]Entry{}
			for _, e := range written {
				bySeq[e.Seq] = e
			}
			for i, e := range rep.Entries {
				if w, ok := bySeq[e.Seq]; !ok || !entryEqual(e, w) || i > 0 && e.Seq <= rep.Entries[i-1].Seq {
					t.Fatalf("line %d: %+v is not the entry written with its seq, or out of order", i, e)
				}
			}
			if got, want := latestOf(rep.Entries), latestOf(written); !slices.EqualFunc(got, want, entryEqual) {
				t.Fatalf("latest entries: %d read back, %d written", len(got), len(want))
			}
			if compactions == 0 || len(rep.Entries) > len(written)/2 {
				t.Errorf("%d compactions, %d of %d lines left", compactions, len(rep.Entries), len(written))
			}
		})
	}
}
