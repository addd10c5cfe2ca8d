package filestore

import (
	"context"
	"fmt"
	"time"

	"github.com/filesession/filesession"
	"golang.org/x/sys/unix"
)

// Per-session locks, across goroutines and across processes.
//
// Every process that opens the directory opens the one lock file
// <Path>/.filesession.lock and locks single bytes of it: the session with ID
// id is guarded by the byte at offset stripe(id), one of 4096 stripes. Two
// sessions may share a stripe and then wait for each other, which costs a
// little concurrency but keeps the directory free of a lock file per
// session (which would itself need reaping, and whose unlink races a
// waiter's open).
//
// The byte locks are Linux open file description (OFD) locks, taken with
// fcntl(F_OFD_SETLK). Unlike classic POSIX fcntl locks they belong to the
// open file description, not the process, so closing some other descriptor
// of the lock file (which a library may do behind our back) does not drop
// them, and two Stores in one process, each with its own descriptor,
// exclude each other like two processes do. But all goroutines of one Store
// share its descriptor, and an OFD lock does not exclude its own
// description: so a goroutine first takes an in-process semaphore for the
// stripe (a channel, so that the wait honours the context), and only then
// the byte lock. Release is in reverse order.
//
// The locks are promised across processes on one host with the directory on
// a local filesystem (ext4, XFS, btrfs, tmpfs). On NFS, byte-range locks go
// through the lock manager and break with client or server restarts, and
// renames are not atomic across clients; do not share a session directory
// over NFS (use the Redis store for several hosts).
//
// Processes that do not take these locks (session-file-store) are not
// excluded; their writes are still atomic renames, so a reader sees one
// version or the other, but a concurrent save by each may lose one of them.

// stripes is the number of lock stripes, and the number of bytes of the lock
// file that may be locked. Every process sharing the directory must use the
// same number and hash, so it is fixed.
const stripes = 4096

// lockFileName is the lock file in the session directory. Its leading '.'
// keeps it out of every session name pattern.
const lockFileName = ".filesession.lock"

// Lock back-off: a byte lock held by another process is polled, starting at
// lockBackoffMin and doubling up to lockBackoffMax, until the deadline.
const (
	lockBackoffMin = 50 * time.Microsecond
	lockBackoffMax = 5 * time.Millisecond
)

// stripe maps a session ID to its lock stripe with 32-bit FNV-1a, which every
// process computes the same way.
func stripe(id string) int {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % stripes)
}

// lockPair is the stripes one operation holds: a, and b unless it is -1.
// a < b, so that Renew, which locks two sessions, always takes them in the
// same order as any other Renew and cannot deadlock with it.
type lockPair struct{ a, b int }

func pairOf(id1, id2 string) lockPair {
	a, b := stripe(id1), -1
	if id2 != "" {
		b = stripe(id2)
		switch {
		case b == a:
			b = -1
		case b < a:
			a, b = b, a
		}
	}
	return lockPair{a, b}
}

// lock takes the locks of id1 and, unless it is empty, id2, waiting at most
// LockTimeout or until ctx's deadline, whichever comes first. On success the
// caller must call s.unlock with the returned pair.
func (s *Store) lock(ctx context.Context, id1, id2 string) (p lockPair, err error) {
	if ev := s.opts.Events; ev != nil {
		defer func(start time.Time) { ev.LockWaited(time.Since(start), err) }(time.Now())
	}
	p = pairOf(id1, id2)
	w := lockWait{deadline: time.Now().Add(s.opts.LockTimeout)}
	if d, ok := ctx.Deadline(); ok && d.Before(w.deadline) {
		w = lockWait{deadline: d, ctxDeadline: true}
	}
	if err := s.lockStripe(ctx, p.a, w); err != nil {
		return p, err
	}
	if p.b >= 0 {
		if err := s.lockStripe(ctx, p.b, w); err != nil {
			s.unlockStripe(p.a)
			return p, err
		}
	}
	return p, nil
}

// unlock releases what lock took, in reverse order.
func (s *Store) unlock(p lockPair) {
	if p.b >= 0 {
		s.unlockStripe(p.b)
	}
	s.unlockStripe(p.a)
}

// lockWait is how long a lock may be waited for, and whether that limit is
// the context's deadline (then the timeout error also matches
// context.DeadlineExceeded, whichever timer fires first).
type lockWait struct {
	deadline    time.Time
	ctxDeadline bool
}

func (w lockWait) timeout() error {
	if w.ctxDeadline {
		return lockTimeoutErr(context.DeadlineExceeded)
	}
	return lockTimeoutErr(nil)
}

func (s *Store) lockStripe(ctx context.Context, n int, w lockWait) error {
	sem := s.sems[n]
	select {
	case sem <- struct{}{}:
	default:
		// Contended within this process: wait, bounded.
		timer := time.NewTimer(time.Until(w.deadline))
		select {
		case sem <- struct{}{}:
			timer.Stop()
		case <-ctx.Done():
			timer.Stop()
			return lockCtxErr(ctx)
		case <-timer.C:
			return w.timeout()
		}
	}
	backoff := lockBackoffMin
	for {
		err := s.lockf.Lock(unix.F_WRLCK, int64(n))
		if err == nil {
			return nil
		}
		if err != unix.EAGAIN && err != unix.EACCES && err != unix.EINTR {
			<-sem
			return fmt.Errorf("filestore: lock %s: %w", lockFileName, err)
		}
		// Held by another process (or interrupted): poll. There is no
		// blocking OFD lock call that honours a deadline (F_OFD_SETLKW
		// waits forever, or until a signal), so back off and retry.
		wait := time.Until(w.deadline)
		if wait <= 0 {
			<-sem
			return w.timeout()
		}
		wait = min(wait, backoff)
		backoff = min(backoff*2, lockBackoffMax)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			<-sem
			return lockCtxErr(ctx)
		case <-timer.C:
		}
	}
}

func (s *Store) unlockStripe(n int) {
	// Unlocking a byte we hold cannot fail on a valid descriptor but for
	// an interruption; a few immediate tries cover that. If it still
	// failed, other processes would time out on this stripe until this
	// Store is closed (this one still may take it: an OFD lock does not
	// exclude its own description), which is worth an error in the log.
	var err error
	for range unlockTries {
		if err = s.lockf.Lock(unix.F_UNLCK, int64(n)); err == nil {
			break
		}
	}
	if err != nil {
		s.log.Error("filestore: unlock failed", "stripe", n, "error", err)
	}
	<-s.sems[n]
}

// unlockTries is how many times unlockStripe tries to release a byte lock.
const unlockTries = 3

// lockCtxErr is the error of a lock wait that ctx ended: a deadline is a
// lock timeout (and says so), a cancellation is the cancellation.
func lockCtxErr(ctx context.Context) error {
	err := ctx.Err()
	if err == context.DeadlineExceeded {
		return lockTimeoutErr(err)
	}
	return fmt.Errorf("filestore: waiting for session lock: %w", err)
}

func lockTimeoutErr(cause error) error {
	if cause != nil {
		return fmt.Errorf("filestore: %w (%w)", filesession.ErrLockTimeout, cause)
	}
	return fmt.Errorf("filestore: %w", filesession.ErrLockTimeout)
}
