// Package catalog persists catalogue changes made without retraining (a
// movie added, updated or deleted over HTTP) in an append-only journal
// beside the model artifact. The serving core (package recall) applies the
// entries over the artifact's catalogue; this package only writes them
// durably and reads them back at start.
//
// The journal is a text file with one JSON object per line:
//
//	{"entry":{"seq":1,"at":"...","op":"put","movie_id":5,...},"crc32c":123}
//
// crc32c is the Castagnoli CRC of the exact bytes of "entry" as written.
// A line is written and fsynced before its change is acknowledged (one
// fsync may cover the lines of many concurrent changes: group commit). At
// start, a torn last line (a crash mid-write) is ignored and truncated
// away; a bad line followed by good ones is corruption, and Open refuses
// the file rather than serve a catalogue that silently lost changes. Once
// most of the file is lines that later lines about the same movie
// override, Open, or a Sync after which no line waits for one, rewrites it
// without them (compact.go).
package catalog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/towerrecall/towerrecall/internal/movielens"
)

// Op is what an entry does to a movie.
type Op string

const (
	OpPut    Op = "put"    // add the movie, or replace its metadata and vector
	OpDelete Op = "delete" // hide the movie
)

// Entry is one catalogue change.
type Entry struct {
	Seq     uint64            `json:"seq"` // 1, 2, … in file order; compaction leaves gaps
	At      time.Time         `json:"at"`  // when the change was accepted (UTC; after the live artifact's creation); a newer artifact supersedes it
	Op      Op                `json:"op"`
	MovieID movielens.MovieID `json:"movie_id"`
	Title   string            `json:"title,omitzero"`
	Genres  []string          `json:"genres,omitzero"`
	Year    int               `json:"year,omitzero"`
	// Base is the version of the artifact that was live when the change
	// was made; informational (supersession compares At).
	Base string `json:"base,omitzero"`
}

// line is the on-disk shape of an entry.
type line struct {
	Entry jsontext.Value `json:"entry"`
	CRC   uint32         `json:"crc32c"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxLine bounds one journal line; a valid entry is well under 8 KiB.
const maxLine = 64 << 10

// CorruptError is a journal line that is neither valid nor the torn last
// line of the file.
type CorruptError struct {
	Path   string
	Line   int   // 1-based
	Offset int64 // byte offset of the line
	Reason string
	// Sealed marks a whole line with a good checksum whose entry only
	// breaks the movie rules: edited by hand, or written by an older
	// build whose rules were looser (before 0b554cc titles could hold
	// format characters such as a soft hyphen). The lines after it are
	// sound, so the way out differs from a damaged file's.
	Sealed bool
}

func (e *CorruptError) Error() string {
	if e.Sealed {
		return fmt.Sprintf("catalog: journal %s line %d (byte %d) is whole and its checksum good, but its entry breaks the catalogue's rules: %s; an older build with looser rules wrote it, or it was edited by hand, and the other lines are sound — delete that line (then send the movie again) or move the file aside", e.Path, e.Line, e.Offset, e.Reason)
	}
	return fmt.Sprintf("catalog: journal %s is corrupt at line %d (byte %d): %s; the changes after it cannot be trusted — repair or move the file aside", e.Path, e.Line, e.Offset, e.Reason)
}

// Replay describes what Open read.
type Replay struct {
	Entries   []Entry // the file's, in order (after a compaction, those it kept)
	TornBytes int64   // bytes of a torn last line that were truncated away
	// Compaction is what Open's compaction did (see compact); zero when
	// it did not run.
	Compaction Compaction
}

// ErrInDoubt marks a journal failure after which the lines written since
// the last successful sync could not be cut from the file: the changes
// refused since may still be applied when the journal is next opened.
var ErrInDoubt = errors.New("the changes refused since the last sync may still be in the file and applied at the next start")

// Journal appends entries to the file. It is safe for concurrent use:
// writes are serialised, and a Sync runs beside them.
//
// After a failed write or sync the journal cuts the file back to its last
// synced line (rollback), so that a change refused because of the failure
// does not come back when the file is next opened; if even that fails,
// the error wraps ErrInDoubt.
type Journal struct {
	syncMu sync.Mutex // one Sync or rollback at a time; taken before mu
	mu     sync.Mutex
	f      file
	seq    uint64
	size   int64     // bytes written: the file's length
	synced int64     // the length up to the last line a completed Sync was asked to cover
	ends   []lineEnd // the lines written after those, with their end offsets
	err    error     // sticky: once a write or sync failed, set by fail
	rolled bool      // the rollback ran (its outcome is in err)

	// For compaction while open (compactIfDue): the file's path, the
	// movie of each of its lines, the line count before which their dead
	// ones are not counted again, and who is told.
	path      string
	replace   func(tmp, path string) (renamed bool, err error)
	lines     []movielens.MovieID
	compactAt int
	onCompact func(Compaction)
}

// lineEnd is where a line ends in the file.
type lineEnd struct {
	seq uint64
	end int64
}

// file is what a Journal needs of its *os.File (a seam for fault tests).
type file interface {
	Write(p []byte) (int, error)
	Sync() error
	Truncate(size int64) error
	Close() error
}

// Open reads the journal at path (creating it and its directory if
// missing), truncates a torn last line, compacts the file when most of it
// is lines overridden by later ones (see compact), and opens it for
// appending.
func Open(path string) (*Journal, Replay, error) { return open(path, replaceFile) }

// open is Open with the step that puts a compacted journal in place (a
// seam for fault tests).
func open(path string, replace func(tmp, path string) (renamed bool, err error)) (*Journal, Replay, error) {
	if err := mkdirDurable(filepath.Dir(path)); err != nil {
		return nil, Replay{}, fmt.Errorf("catalog: open journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, Replay{}, fmt.Errorf("catalog: open journal: %w", err)
	}
	if err := lockPath(f, path); err != nil {
		f.Close()
		return nil, Replay{}, fmt.Errorf("catalog: journal %s is open for writing in another process (%w): each replica needs a journal of its own", path, err)
	}
	rep, good, err := read(f, path)
	if err != nil {
		f.Close()
		return nil, Replay{}, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, Replay{}, fmt.Errorf("catalog: open journal: %w", err)
	}
	if rep.TornBytes = st.Size() - good; rep.TornBytes > 0 {
		if err := f.Truncate(good); err != nil {
			f.Close()
			return nil, Replay{}, fmt.Errorf("catalog: truncate torn journal tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, Replay{}, fmt.Errorf("catalog: truncate torn journal tail: %w", err)
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, Replay{}, fmt.Errorf("catalog: open journal: %w", err)
	}
	// What is read is what a rollback returns to: make sure it is on disk
	// (a previous process may have died before syncing its last lines).
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, Replay{}, fmt.Errorf("catalog: open journal: %w", err)
	}
	if st.Size() == 0 {
		// A new file: make its directory entry durable too.
		if err := syncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, Replay{}, err
		}
	}
	j := &Journal{f: f, size: good, synced: good, path: path, replace: replace, lines: make([]movielens.MovieID, len(rep.Entries))}
	for i, e := range rep.Entries {
		j.lines[i] = e.MovieID
	}
	var keep []bool
	if keep, rep.Compaction = j.compactIfDue(); keep != nil {
		rep.Entries = kept(rep.Entries, keep)
	}
	if n := len(rep.Entries); n > 0 {
		j.seq = rep.Entries[n-1].Seq
	}
	return j, rep, nil
}

// ReadFile reads the journal at path without opening it for writing (for a
// replica with catalogue changes off, whose volume may be read-only): a
// torn last line is reported in TornBytes and left as it is.
func ReadFile(path string) (Replay, error) {
	f, err := os.Open(path)
	if err != nil {
		return Replay{}, fmt.Errorf("catalog: read journal: %w", err)
	}
	defer f.Close()
	rep, good, err := read(f, path)
	if err != nil {
		return Replay{}, err
	}
	st, err := f.Stat()
	if err != nil {
		return Replay{}, fmt.Errorf("catalog: read journal: %w", err)
	}
	rep.TornBytes = st.Size() - good
	return rep, nil
}

// read parses every line and returns the entries and the length of the
// valid prefix. A bad last line is ignored only if it is torn (see torn);
// any other bad line is a CorruptError.
func read(f *os.File, path string) (Replay, int64, error) {
	var rep Replay
	r := bufio.NewReaderSize(f, 64<<10)
	var off int64
	var prev uint64
	for n := 1; ; n++ {
		raw, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) { // longer than any line Write writes
			// Only a torn write is this long: nothing or a piece of one
			// journal line, then a run of zeros (blocks allocated, their
			// data lost); a journal line never is.
			piece := bytes.TrimRight(raw, "\x00")
			zeros := len(piece) < len(raw)
			piece = bytes.Clone(piece) // ReadSlice's bytes are overwritten by the next read
			if rest, _ := io.ReadAll(r); zeros && torn(piece, rest) {
				return rep, off, nil
			}
			return rep, 0, &CorruptError{Path: path, Line: n, Offset: off, Reason: "line too long"}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return rep, 0, fmt.Errorf("catalog: read journal: %w", err)
		}
		if len(raw) == 0 {
			return rep, off, nil
		}
		raw = bytes.Clone(raw) // ReadSlice's bytes are overwritten by the next read
		complete := raw[len(raw)-1] == '\n'
		e, reason := parseLine(raw)
		if reason == "" && e.Seq <= prev {
			reason = fmt.Sprintf("sequence %d does not follow %d", e.Seq, prev)
		}
		if reason != "" || !complete {
			if rest, _ := io.ReadAll(r); torn(raw, rest) {
				return rep, off, nil // the torn last write of a crash
			}
			if reason == "" {
				reason = "no newline after the last line"
			}
			return rep, 0, &CorruptError{Path: path, Line: n, Offset: off, Reason: reason}
		}
		if e.Op == OpPut {
			// Whole and with a good checksum, yet PUT would refuse it:
			// edited by hand or written under older rules, not torn. Serving it would bypass PUT's
			// rules, and dropping it would lose a change.
			if err := CheckMovie(e.Title, e.Genres, e.Year); err != nil {
				return rep, 0, &CorruptError{Path: path, Line: n, Offset: off, Reason: fmt.Sprintf("movie %d: %v", e.MovieID, err), Sealed: true}
			}
		}
		rep.Entries = append(rep.Entries, e)
		prev = e.Seq
		off += int64(len(raw))
		if errors.Is(err, io.EOF) {
			return rep, off, nil
		}
	}
}

// torn reports whether line, bad or without its newline, and rest, the
// bytes after it, are what a crash leaves of the last write: nothing but
// whitespace and zeros (blocks allocated, their data lost) in rest, and
// line blank, zeros or a piece of one journal line, which starts as Write
// starts every line. Anything else (another file given as the journal,
// say) is corruption, and Open leaves the file as it is rather than cut it.
func torn(line, rest []byte) bool {
	if !blank(rest) {
		return false
	}
	if blank(line) {
		return true
	}
	l := bytes.TrimSpace(line)
	n := min(len(l), len(linePrefix))
	return string(l[:n]) == linePrefix[:n]
}

// blank reports whether b holds nothing but whitespace and zeros.
func blank(b []byte) bool { return len(bytes.Trim(b, " \t\r\n\x00")) == 0 }

// linePrefix starts every line Write writes.
const linePrefix = `{"entry":`

// parseLine decodes and checks one line; reason is "" when it is good.
func parseLine(raw []byte) (Entry, string) {
	var l line
	if err := json.Unmarshal(bytes.TrimRight(raw, "\n"), &l, json.RejectUnknownMembers(true)); err != nil {
		return Entry{}, "not a journal line: " + err.Error()
	}
	if got := crc32.Checksum(l.Entry, castagnoli); got != l.CRC {
		return Entry{}, fmt.Sprintf("checksum %08x, line says %08x", got, l.CRC)
	}
	var e Entry
	if err := json.Unmarshal(l.Entry, &e, json.RejectUnknownMembers(true)); err != nil {
		return Entry{}, "bad entry: " + err.Error()
	}
	if e.Op != OpPut && e.Op != OpDelete || e.MovieID < 1 || e.Seq < 1 {
		return Entry{}, fmt.Sprintf("bad entry: op %q, movie %d, seq %d", e.Op, e.MovieID, e.Seq)
	}
	return e, ""
}

// Append writes e and syncs the file (Write, then Sync(e.Seq)): once it returns
// the change may be acknowledged. A single writer's convenience; a server
// with concurrent writers calls Write under its own short lock and shares
// one Sync among every line written meanwhile (group commit, see
// recall.Service).
func (j *Journal) Append(e Entry) (Entry, error) {
	e, err := j.Write(e)
	if err != nil {
		return Entry{}, err
	}
	if err := j.Sync(e.Seq); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// Write gives e the next sequence number and its time (if unset) and
// writes its line to the file, NOT durably: the change may be
// acknowledged only after a Sync of its sequence number. Lines
// are written in sequence order. After a failed write or sync every later
// Write and Sync fails: the file's tail is unknown, and the process must
// restart (Open repairs a torn tail).
func (j *Journal) Write(e Entry) (Entry, error) {
	e, failed, err := j.write(e)
	if failed {
		// Outside j.mu: the rollback takes syncMu first, as Sync does.
		return Entry{}, j.rollback()
	}
	return e, err
}

// write is Write's work under j.mu; failed reports a failed write(2),
// which turns writing off (j.err) and leaves the rollback to Write.
func (j *Journal) write(e Entry) (_ Entry, failed bool, _ error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil { // %v: e is not written, whatever j.err's doubt
		return Entry{}, false, fmt.Errorf("catalog: writing is off since an earlier failure: %v", j.err)
	}
	if e.Op == OpPut {
		if err := CheckMovie(e.Title, e.Genres, e.Year); err != nil {
			return Entry{}, false, fmt.Errorf("catalog: movie %d: %w", e.MovieID, err) // what Open would refuse
		}
	}
	e.Seq = j.seq + 1
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	out, err := encodeLine(e)
	if err != nil {
		return Entry{}, false, err
	}
	n, err := j.f.Write(out)
	j.size += int64(n)
	if err != nil {
		j.err = fmt.Errorf("catalog: journal write failed: %w", err)
		return Entry{}, true, nil
	}
	j.seq = e.Seq
	j.ends = append(j.ends, lineEnd{seq: e.Seq, end: j.size})
	j.lines = append(j.lines, e.MovieID)
	return e, false, nil
}

// encodeLine is the journal line of e, its newline included.
func encodeLine(e Entry) ([]byte, error) {
	body, err := json.Marshal(e, json.Deterministic(true))
	if err != nil {
		return nil, fmt.Errorf("catalog: encode entry: %w", err)
	}
	out, err := json.Marshal(line{Entry: body, CRC: crc32.Checksum(body, castagnoli)})
	if err != nil {
		return nil, fmt.Errorf("catalog: encode entry: %w", err)
	}
	if len(out) >= maxLine {
		return nil, fmt.Errorf("catalog: entry of %d bytes is too long", len(out))
	}
	return append(out, '\n'), nil
}

// Err returns the failure after which every Write and Sync fails (nil
// until one has failed).
func (j *Journal) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// Sync makes the lines up to sequence number seq durable (fsync). It
// does not hold the journal's write lock while the disk works, so Writes go
// on meanwhile. The fsync may write later lines too, but only the lines up
// to seq count as synced: a rollback after a later failure cuts every line
// after them, since their changes were not acknowledged (the group commit
// refuses them when the next Sync fails). A failed sync is sticky (see
// Write) and rolls the file back to the last synced line.
func (j *Journal) Sync(seq uint64) error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	f, size, err := j.f, j.synced, j.err
	n := 0 // lines in j.ends up to seq
	for n < len(j.ends) && j.ends[n].seq <= seq {
		size = j.ends[n].end
		n++
	}
	j.mu.Unlock()
	if err == nil {
		if err = f.Sync(); err == nil {
			j.mu.Lock()
			j.synced = size
			j.ends = slices.Delete(j.ends, 0, n)  // only Sync removes, under syncMu
			if len(j.ends) == 0 && j.err == nil { // every line written is synced
				if _, c := j.compactIfDue(); c.LinesBefore > 0 && j.onCompact != nil {
					j.onCompact(c)
				}
			}
			j.mu.Unlock()
			return nil
		}
		j.mu.Lock()
		if j.err == nil {
			j.err = fmt.Errorf("catalog: journal sync failed: %w", err)
		}
		j.mu.Unlock()
	}
	return j.rollbackLocked()
}

// compactIfDue rewrites the journal without its dead lines (compact) and
// uses the new file, when enough of them are dead (keepLast), returning
// which lines it kept (nil: the file was not replaced) and what it did (a
// zero Compaction: nothing). Open calls it; so does a Sync after which
// every line written is synced, holding syncMu and j.mu, so that Writes
// wait for the rewrite (200,000 lines in 0.25–1.2 s here, most of it the
// new file's fsync), once per doubling of the file. The lines are not
// counted again before keepLast says a rewrite can be due, nor, after one
// that failed before replacing the journal, until the file has twice its
// lines; one that failed after turns writing off, as a failed sync does.
func (j *Journal) compactIfDue() ([]bool, Compaction) {
	if len(j.lines) < j.compactAt {
		return nil, Compaction{}
	}
	keep, due := keepLast(j.lines)
	if keep == nil {
		j.compactAt = due
		return nil, Compaction{}
	}
	nf, c := compact(j.path, j.size, keep, j.replace)
	if nf == nil {
		j.compactAt = 2 * len(j.lines)
		return nil, c
	}
	j.f.Close() // and its lock: nf holds the journal's
	j.f, j.size, j.synced, j.lines = nf, c.BytesAfter, c.BytesAfter, kept(j.lines, keep)
	j.compactAt = 0
	if c.Err != nil {
		j.err, j.rolled = c.Err, true // nothing to roll back
	}
	return keep, c
}

// OnCompact has f told of every compaction after Open (Open's own is in
// its Replay). f runs while Writes wait, and must not call the journal.
func (j *Journal) OnCompact(f func(Compaction)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.onCompact = f
}

// rollback is rollbackLocked under syncMu: it waits for a Sync in flight,
// whose lines may be acknowledged, and cuts only what follows them.
func (j *Journal) rollback() error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	return j.rollbackLocked()
}

// rollbackLocked cuts the file back to its last synced line, once, after
// the failure in j.err, and returns j.err completed with its outcome. The
// caller holds syncMu.
func (j *Journal) rollbackLocked() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.rolled {
		return j.err
	}
	j.rolled = true
	var cut error
	if j.size > j.synced { // else nothing was written since: nothing to cut, and no doubt
		if cut = j.f.Truncate(j.synced); cut == nil {
			cut = j.f.Sync()
		}
	}
	if cut != nil {
		j.err = fmt.Errorf("%w; cutting the unsynced lines failed too (%v): %w; restart to write again", j.err, cut, ErrInDoubt)
	} else {
		j.err = fmt.Errorf("%w; the lines written since the last sync were removed; restart to write again", j.err)
	}
	return j.err
}

// Close closes the file. Lines written but not yet synced are cut first:
// their changes were not acknowledged, and must not come back at the next
// start.
func (j *Journal) Close() error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	if j.err == nil {
		j.err = errors.New("catalog: journal is closed")
	}
	// Unless a failure's cut has run: a failed Write whose cut still
	// waits behind a Sync would find the file closed.
	if !j.rolled && j.size > j.synced {
		j.rolled = true
		if err := j.f.Truncate(j.synced); err == nil {
			_ = j.f.Sync()
		}
	}
	j.mu.Unlock()
	return j.f.Close()
}

// lockPath locks f, opened at path, and checks that path is still f: a
// compaction in another process may have renamed a new journal over path
// between the open and the lock, and closed the old file, leaving the lock
// on it free and the file unlinked.
func lockPath(f *os.File, path string) error {
	if err := lock(f); err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if now, err := os.Stat(path); err != nil || !os.SameFile(st, now) {
		return errors.New("it replaced the file while this one opened it")
	}
	return nil
}

// mkdirDurable is os.MkdirAll, and each directory it makes is synced into
// its parent, as a new journal is into its directory: a power loss must not
// take away the directory of acknowledged changes.
func mkdirDurable(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirDurable(parent); err != nil {
			return err
		}
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		return syncDir(parent)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("catalog: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("catalog: sync %s: %w", dir, err)
	}
	return nil
}
