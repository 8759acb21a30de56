package recall

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/towerrecall/towerrecall/internal/catalog"
	"github.com/towerrecall/towerrecall/internal/movielens"
)

// syncJournal is the real file journal, recording what was written and
// what each fsync covered, with a slow fsync so that changes pile up
// behind it.
type syncJournal struct {
	j       *catalog.Journal
	delay   time.Duration
	mu      sync.Mutex
	written []catalog.Entry // in write (= sequence) order
	durable atomic.Uint64   // last seq covered by a completed Sync
	syncs   atomic.Int64
	fail    atomic.Pointer[error] // next Sync fails with it
}

func (sj *syncJournal) Write(e catalog.Entry) (catalog.Entry, error) {
	sj.mu.Lock()
	defer sj.mu.Unlock()
	e, err := sj.j.Write(e)
	if err == nil {
		sj.written = append(sj.written, e)
	}
	return e, err
}

func (sj *syncJournal) Sync(n uint64) error {
	time.Sleep(sj.delay)
	if p := sj.fail.Load(); p != nil {
		return *p
	}
	if err := sj.j.Sync(n); err != nil {
		return err
	}
	sj.syncs.Add(1)
	for {
		if d := sj.durable.Load(); d >= n || sj.durable.CompareAndSwap(d, n) {
			return nil
		}
	}
}

func (sj *syncJournal) Err() error {
	if p := sj.fail.Load(); p != nil {
		return *p
	}
	return sj.j.Err()
}

// prefix returns the first n entries written.
func (sj *syncJournal) prefix(n uint64) []catalog.Entry {
	sj.mu.Lock()
	defer sj.mu.Unlock()
	return sj.written[:n]
}

// liveAfter reports whether movie id is live after entries es over an
// artifact without it.
func liveAfter(es []catalog.Entry, id movielens.MovieID) bool {
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].MovieID == id {
			return es[i].Op == catalog.OpPut
		}
	}
	return false
}

// TestCatalogGroupCommit runs many concurrent writers against the file
// journal with a slow fsync, and a reader watching every published view:
// every change is answered only after an fsync covering it, fsyncs are
// shared, views are published in journal order and only ever show a
// durable prefix of the journal, and at the end the journal on disk holds
// every acknowledged change in order and the service shows each movie's
// last one.
func TestCatalogGroupCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := loadedService(t, "exact", "v1", 50, 23)
	path := filepath.Join(t.TempDir(), "model.journal")
	fj, _, err := catalog.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	sj := &syncJournal{j: fj, delay: 5 * time.Millisecond} // long enough for writers to gather on a loaded machine
	s.AttachJournal(sj, nil)

	const writers, perWriter, moviesPerWriter = 32, 40, 4
	id := func(w, k int) movielens.MovieID { return movielens.MovieID(100_000 + w*moviesPerWriter + k) }
	var acks atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() { // the reader
		defer close(readerDone)
		var last uint64
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			v := s.live.Load()
			seq, durable := v.ov.seq, sj.durable.Load()
			if seq < last {
				t.Errorf("view went back from seq %d to %d", last, seq)
				return
			}
			if seq > durable {
				t.Errorf("view shows seq %d, only %d durable", seq, durable)
				return
			}
			last = seq
			// The view is exactly the journal's prefix up to its seq.
			es := sj.prefix(seq)
			w := n % writers
			for k := range moviesPerWriter {
				if _, ok := v.find(id(w, k)); ok != liveAfter(es, id(w, k)) {
					t.Errorf("view at seq %d: movie %d live %v, journal prefix says %v", seq, id(w, k), ok, !ok)
					return
				}
			}
		}
	}()
	lastAck := make([][]catalog.Entry, writers) // each writer's acknowledged changes, in order
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prev uint64
			for i := range perWriter {
				m := id(w, i%moviesPerWriter)
				var seq uint64
				op := catalog.OpPut
				if i%3 == 2 { // delete the movie put just before
					m = id(w, (i-1)%moviesPerWriter)
					op = catalog.OpDelete
					res, err := s.DeleteMovie(ctx, m)
					if err != nil {
						t.Error(err)
						return
					}
					seq = res.Seq
				} else {
					res, err := s.PutMovie(ctx, Movie{MovieID: m, Title: fmt.Sprintf("w%d i%d", w, i), Genres: []string{testGenres[i%len(testGenres)]}})
					if err != nil {
						t.Error(err)
						return
					}
					seq = res.Seq
				}
				acks.Add(1)
				if d := sj.durable.Load(); seq > d {
					t.Errorf("change %d answered with only %d durable", seq, d)
					return
				}
				if seq <= prev {
					t.Errorf("writer %d: seq %d after %d", w, seq, prev)
					return
				}
				prev = seq
				// Visible to the next request.
				if _, ok := s.live.Load().find(m); ok != (op == catalog.OpPut) {
					t.Errorf("acknowledged %s of %d (seq %d) not visible", op, m, seq)
					return
				}
				lastAck[w] = append(lastAck[w], catalog.Entry{Seq: seq, Op: op, MovieID: m})
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-readerDone
	if t.Failed() {
		return
	}
	n := acks.Load()
	t.Logf("%d changes acknowledged with %d fsyncs", n, sj.syncs.Load())
	if n != writers*perWriter {
		t.Fatalf("%d acknowledged, want %d", n, writers*perWriter)
	}
	if syncs := sj.syncs.Load(); syncs*4 > n {
		t.Errorf("%d fsyncs for %d changes: writes do not batch", syncs, n)
	}

	// On disk: every acknowledged change, in order, less those a later one
	// about the same movie overrides, which the journal compacts away as it
	// goes (1,280 lines about 128 movies: it does once at least).
	if err := fj.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := catalog.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	es := rep.Entries
	if len(es) == 0 || len(es) >= writers*perWriter || es[len(es)-1].Seq != writers*perWriter {
		t.Fatalf("journal has %d entries ending at seq %d, want fewer than %d (compacted) ending at %d", len(es), es[len(es)-1].Seq, writers*perWriter, writers*perWriter)
	}
	onDisk := map[uint64]catalog.Entry{}
	for i, e := range es {
		if i > 0 && e.Seq <= es[i-1].Seq {
			t.Fatalf("journal entry %d has seq %d after %d", i, e.Seq, es[i-1].Seq)
		}
		onDisk[e.Seq] = e
	}
	v := s.live.Load()
	if v.ov.seq != es[len(es)-1].Seq {
		t.Fatalf("live view at seq %d, journal at %d", v.ov.seq, es[len(es)-1].Seq)
	}
	for w, acked := range lastAck {
		latest := map[movielens.MovieID]uint64{}
		for _, a := range acked {
			latest[a.MovieID] = a.Seq
			if e, ok := onDisk[a.Seq]; ok && (e.Op != a.Op || e.MovieID != a.MovieID) {
				t.Fatalf("acknowledged %+v, journal has %+v", a, e)
			}
		}
		for m, seq := range latest {
			if _, ok := onDisk[seq]; !ok {
				t.Fatalf("movie %d: its latest change, seq %d, is not in the journal", m, seq)
			}
		}
		for k := range moviesPerWriter {
			if _, ok := v.find(id(w, k)); ok != liveAfter(es, id(w, k)) {
				t.Fatalf("movie %d: live %v, journal says %v", id(w, k), ok, !ok)
			}
		}
	}
}

// TestCatalogGroupCommitFailure: when an fsync fails, the changes it
// should have covered are refused, never shown, and every later change is
// refused; what was durable stays served, and a load still works.
func TestCatalogGroupCommitFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := loadedService(t, "exact", "v1", 50, 23)
	fj, _, err := catalog.Open(filepath.Join(t.TempDir(), "model.journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer fj.Close()
	sj := &syncJournal{j: fj, delay: time.Millisecond}
	s.AttachJournal(sj, nil)
	if _, err := s.PutMovie(ctx, Movie{MovieID: 9001, Title: "kept", Genres: []string{"Drama"}}); err != nil {
		t.Fatal(err)
	}
	bad := fmt.Errorf("EIO; the cut failed too: %w", catalog.ErrInDoubt) // the worst case
	sj.fail.Store(&bad)
	var wg sync.WaitGroup
	var refused atomic.Int64
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.PutMovie(ctx, Movie{MovieID: movielens.MovieID(9100 + i), Title: "lost", Genres: []string{"Drama"}})
			if errors.As(err, new(*JournalError)) {
				refused.Add(1)
			} else {
				t.Errorf("put during a failing fsync: %v", err)
			}
		}()
	}
	wg.Wait()
	if refused.Load() != 8 {
		t.Fatalf("%d of 8 refused", refused.Load())
	}
	sj.fail.Store(nil) // even if the disk came back, the journal's tail is unknown
	if info, _ := s.Info(); info.Catalog.Writable {
		t.Fatal("/model says writable after a failed fsync")
	}
	if _, err := s.DeleteMovie(ctx, 9001); !errors.As(err, new(*JournalError)) {
		t.Fatalf("delete after a failed fsync: %v", err)
	} else if errors.Is(err, catalog.ErrInDoubt) { // refused before any write: not in doubt
		t.Fatalf("delete after a failed fsync is called in doubt: %v", err)
	}
	check := func() {
		t.Helper()
		v := s.live.Load()
		if _, ok := v.find(9001); !ok {
			t.Fatal("the durable change is gone")
		}
		for i := range 8 {
			if _, ok := v.find(movielens.MovieID(9100 + i)); ok {
				t.Fatalf("refused put of %d is visible", 9100+i)
			}
		}
	}
	check()
	if err := s.Load(testBundle(t, "v2", 50, 23)); err != nil {
		t.Fatal(err)
	}
	if info, _ := s.Info(); info.Version != "v2" {
		t.Fatalf("load after a failed fsync serves %q", info.Version)
	}
	check()
}

// BenchmarkPutMovieGroupCommit: PUTs from 64 concurrent writers over the
// file journal in a temporary directory (real fsyncs); reports fsyncs per
// change.
func BenchmarkPutMovieGroupCommit(b *testing.B) {
	ctx := context.Background()
	s, _ := loadedService(b, "exact", "v1", 3000, 23)
	fj, _, err := catalog.Open(filepath.Join(b.TempDir(), "model.journal"))
	if err != nil {
		b.Fatal(err)
	}
	defer fj.Close()
	sj := &syncJournal{j: fj}
	s.AttachJournal(sj, nil)
	var next atomic.Int64
	b.SetParallelism(32) // × GOMAXPROCS writers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			if _, err := s.PutMovie(ctx, Movie{MovieID: movielens.MovieID(1_000_000 + i), Title: "bench", Genres: []string{testGenres[i%int64(len(testGenres))]}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(sj.syncs.Load())/float64(b.N), "fsyncs/op")
}

// blockingSyncJournal's Sync signals entered, blocks until release is
// closed, then fails.
type blockingSyncJournal struct {
	memJournal
	entered, release chan struct{}
	once             sync.Once
}

func (j *blockingSyncJournal) Sync(uint64) error {
	j.once.Do(func() { close(j.entered) })
	<-j.release
	return errors.New("EIO")
}

// TestFailedSyncDuringLoadKeepsNewModel: an fsync that fails while a Load
// waits for it drops the changes it covered, not the model the Load put in
// place (it brought the old model back, while Load reported success).
func TestFailedSyncDuringLoadKeepsNewModel(t *testing.T) {
	t.Parallel()
	s, _ := loadedService(t, "exact", "v1", 50, 23)
	j := &blockingSyncJournal{entered: make(chan struct{}), release: make(chan struct{})}
	s.AttachJournal(j, nil)
	put := make(chan error, 1)
	go func() {
		_, err := s.PutMovie(context.Background(), Movie{MovieID: 9100, Title: "x", Genres: []string{"Drama"}})
		put <- err
	}()
	<-j.entered // the leader holds v1's pending view and is syncing
	load := make(chan error, 1)
	go func() { load <- s.Load(testBundle(t, "v2", 50, 24)) }()
	for { // until Load has replayed onto v2 and waits for the commit
		s.catMu.Lock()
		v := s.pending.snap.info.Version
		s.catMu.Unlock()
		if v == "v2" {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(j.release)
	if err := <-put; err == nil {
		t.Error("the PUT whose fsync failed succeeded")
	}
	if err := <-load; err != nil {
		t.Fatal(err)
	}
	if info, _ := s.Info(); info.Version != "v2" {
		t.Errorf("Load(v2) returned nil, but %q is live", info.Version)
	}
	if _, ok := s.live.Load().find(9100); ok {
		t.Error("the change whose fsync failed is live")
	}
}

// diskJournal models catalog.Journal's file: the lines written, the
// lines up to the last seq a completed Sync was asked for, and after a
// failure the rollback to them — what Open reads back at the next start. beforeSync runs at
// the start of the nth Sync (from 1), before it looks at the lines;
// failSync is the Sync that fails.
type diskJournal struct {
	mu         sync.Mutex
	lines      []catalog.Entry
	synced     int
	err        error
	syncs      int
	failSync   int
	beforeSync func(n int)
	wrote      chan catalog.Entry
}

func (d *diskJournal) Write(e catalog.Entry) (catalog.Entry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return catalog.Entry{}, d.err
	}
	e.Seq, e.At = uint64(len(d.lines)+1), time.Now().UTC()
	d.lines = append(d.lines, e)
	d.wrote <- e
	return e, nil
}

func (d *diskJournal) Sync(seq uint64) error {
	d.mu.Lock()
	d.syncs++
	n := d.syncs
	d.mu.Unlock()
	if d.beforeSync != nil {
		d.beforeSync(n)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err == nil && n == d.failSync {
		d.err = errors.New("EIO")
	}
	if d.err != nil {
		d.lines = d.lines[:d.synced] // the rollback
		return d.err
	}
	d.synced = int(seq)
	return nil
}

func (d *diskJournal) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// TestCatalogRefusedChangeNotOnDisk: a change written while the leader
// that took its batch was entering its fsync is covered by that fsync
// (every line written before it began) but published by the next
// leader; when the next fsync fails, that change is refused ("not made")
// and must not be in the file the next start replays. It was: the
// journal's rollback kept every line the first fsync covered.
func TestCatalogRefusedChangeNotOnDisk(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := loadedService(t, "exact", "v1", 50, 23)
	syncing, proceed := make(chan struct{}), make(chan struct{})
	d := &diskJournal{failSync: 2, wrote: make(chan catalog.Entry, 8)}
	d.beforeSync = func(n int) {
		if n == 1 {
			close(syncing)
			<-proceed
		}
	}
	s.AttachJournal(d, nil)
	put := func(id movielens.MovieID, done chan<- error) {
		_, err := s.PutMovie(ctx, Movie{MovieID: id, Title: "x", Genres: []string{"Drama"}})
		done <- err
	}
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go put(9001, doneA)
	<-d.wrote
	<-syncing // A's leader took its batch and is entering the fsync
	go put(9002, doneB)
	<-d.wrote // B is written before the fsync looks
	close(proceed)
	if err := <-doneA; err != nil {
		t.Fatalf("A: %v", err)
	}
	errB := <-doneB
	if errB == nil {
		t.Fatal("B: its fsync failed, yet it was acknowledged")
	}
	// A restart replays what is on disk.
	d.mu.Lock()
	disk := slices.Clone(d.lines)
	d.mu.Unlock()
	restarted := newService(t, "exact")
	restarted.AttachJournal(nil, disk)
	if err := restarted.Load(testBundle(t, "v1", 50, 23)); err != nil {
		t.Fatal(err)
	}
	v := restarted.live.Load()
	if _, ok := v.find(9001); !ok {
		t.Error("the acknowledged change is lost at the restart")
	}
	if _, ok := v.find(9002); ok {
		t.Errorf("the change refused with %q is applied at the restart", errB)
	}
}

// offAfterSyncJournal is catalog.Journal when the compaction that a Sync
// runs (every line written synced) replaced the file but could not sync
// its directory: that Sync succeeds, and writing is off from then on
// (memJournal's fail: Err, and every later Write fails).
type offAfterSyncJournal struct{ memJournal }

func (j *offAfterSyncJournal) Sync(uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail == nil {
		j.fail = errors.New("catalog: compact journal: the compacted journal replaced it, but EIO: writing is off until a restart")
	}
	return nil
}

// TestCatalogWritableAfterCompactionFailure: a journal that turned writing
// off during a Sync that succeeded (its compaction failed after replacing
// the file) is reported as not writable (GET /model, the
// towerrecall_catalog_writable alert) at once, not only after the next
// change is tried and refused.
func TestCatalogWritableAfterCompactionFailure(t *testing.T) {
	t.Parallel()
	s, _ := loadedService(t, "exact", "v1", 50, 23)
	j := &offAfterSyncJournal{}
	s.AttachJournal(j, nil)
	if _, err := s.PutMovie(context.Background(), Movie{MovieID: 9300, Title: "x", Genres: []string{"Drama"}}); err != nil {
		t.Fatal(err) // its fsync completed: durable
	}
	if j.Err() == nil {
		t.Fatal("the journal is still writable")
	}
	if info, _ := s.Info(); info.Catalog.Writable {
		t.Errorf("the journal failed (%v), yet the catalogue says it is writable", j.Err())
	}
}
