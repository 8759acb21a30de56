package recall

import (
	"cmp"
	"errors"
	"time"
)

// Group commit: how a catalogue change becomes durable and visible.
//
// A change goes through two steps:
//
//  1. Under s.catMu (short: validation, the movie tower, one write(2)) the
//     writer checks the change against s.pending — the live view plus
//     every change written but not yet durable — writes its journal line
//     (Journal.Write: numbered, in order, not synced), appends the entry
//     to s.unsynced and extends s.pending with it.
//  2. Outside the lock it calls commit(seq), which returns once an fsync
//     that began after its line was written has completed AND the view
//     containing the change is live. One writer at a time is the leader:
//     it takes s.pending and s.unsynced as they are (under s.catMu, so
//     they match: every line of the view is written), fsyncs once
//     (Journal.Sync up to the batch's last line), publishes that view and
//     wakes everyone waiting. The others wait for that fsync to end; a
//     waiter whose change it covered answers, one whose change came in
//     meanwhile becomes the next leader and fsyncs for all that arrived
//     during the previous fsync (a line the previous fsync happened to
//     write counts as synced only then: see Journal). So with N
//     concurrent writers a commit costs ~1 fsync per batch, not per
//     change, and no lock is held across an fsync.
//
// Invariants:
//   - Durability: a change is answered only once an fsync covering its
//     line completed (s.durable ≥ its seq).
//   - Nothing unsynced is visible: only the leader (and a load, which
//     leads too) stores s.live, and only after the fsync covering every
//     change in the view it stores.
//   - Order: the views stored are snapshots of s.pending taken in turn,
//     and s.pending grows in journal order, so readers see changes in
//     journal order, each view a prefix of the journal; a later change to
//     a movie never shows before an earlier one. Each view is swapped in
//     whole (the overlay is copy-on-write), so readers never see half a
//     batch.
//   - Failure: a failed fsync is sticky (s.commitErr): the changes it
//     should have covered are dropped from s.pending (rebuilt from the
//     durable entries) and their writers get the error, as does every
//     later change; the journal cuts their lines from its file (or says
//     the outcome is in doubt, catalog.ErrInDoubt), and writing resumes
//     only after a restart.

// errCommitted is the error of a change whose fsync failed; it wraps the
// journal's error.
var errCommitted = errors.New("recall: catalogue change not durable")

// commit returns once the change numbered seq is durable and live (see
// above). With force it also leads a commit when there is nothing to
// sync, to publish s.pending (a load's new model).
func (s *Service) commit(seq uint64, force bool) error {
	s.commitMu.Lock()
	for {
		if !force {
			if s.durable >= seq {
				s.commitMu.Unlock()
				return nil // an earlier leader's fsync covered it and published it
			}
			if err := s.commitErr; err != nil {
				s.commitMu.Unlock()
				return &JournalError{Err: err}
			}
		}
		if !s.syncing {
			break // lead
		}
		done := s.synced
		s.commitMu.Unlock()
		<-done // the running fsync ended; look again
		s.commitMu.Lock()
	}
	s.syncing = true
	s.commitMu.Unlock()

	durable, err := s.flush()

	s.commitMu.Lock()
	if err != nil && s.commitErr == nil {
		s.commitErr = errors.Join(errCommitted, err)
	}
	s.durable = max(s.durable, durable)
	s.syncing = false
	close(s.synced) // wake the waiters: covered ones answer, one leads next
	s.synced = make(chan struct{})
	err = nil
	if s.durable < seq {
		err = &JournalError{Err: cmp.Or(s.commitErr, errCommitted)}
	}
	s.commitMu.Unlock()
	return err
}

// flush is the leader's work: fsync every line in s.pending, then publish
// it. It returns the last sequence number now durable (0: none new).
func (s *Service) flush() (uint64, error) {
	s.catMu.Lock()
	v, batch := s.pending, s.unsynced
	s.catMu.Unlock()
	var last uint64
	if len(batch) > 0 {
		start := time.Now()
		err := s.journal.Sync(batch[len(batch)-1].Seq)
		s.metrics.fsync.Observe(time.Since(start).Seconds())
		if err != nil {
			// Not durable: never answered, never shown. Serve what is
			// durable (and refuse later changes: commitErr).
			s.live.Store(s.refuseChanges(err))
			return 0, err
		}
		last = batch[len(batch)-1].Seq
		if s.journal.Err() != nil {
			// The Sync succeeded, yet writing is off (the compaction it
			// ran failed after replacing the file): say so now, not at
			// the next change's refusal.
			s.writable.Store(false)
		}
		s.catMu.Lock()
		for _, e := range batch {
			s.latest[e.MovieID] = e
		}
		// Writers may have appended past the batch meanwhile; only this
		// leader removes from the front.
		s.unsynced = s.unsynced[len(batch):]
		s.catMu.Unlock()
	}
	if v != nil {
		s.live.Store(v)
	}
	return last, nil
}

// refuseChanges turns catalogue changes off after a failed fsync (err) and
// returns the newest model with the durable changes alone: a Load may have
// replaced s.pending's while the fsync ran, and it must stay.
func (s *Service) refuseChanges(err error) *view {
	s.catMu.Lock()
	defer s.catMu.Unlock()
	s.catErr = errors.Join(errCommitted, err)
	s.writable.Store(false)
	s.unsynced = nil
	s.replay(s.pending.snap)
	return s.pending
}
