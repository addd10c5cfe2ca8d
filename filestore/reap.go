package filestore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/filesession/filesession"
	"golang.org/x/sys/unix"
)

// dirBatch is how many directory entries List and Reap hold at once, so
// their memory does not grow with the number of sessions.
const dirBatch = 256

// staleTemp is how old (by the store's clock) a temporary file must be
// before the reaper removes it. A write holds its session's lock from
// creating its temporary file to renaming it, and the reaper takes that
// lock too, so this is only a second line of defence for writers of
// other programs sharing the name pattern.
const staleTemp = 10 * time.Minute

// firstReap is how long after Open the background reaper's first pass
// runs: soon, but not in the middle of the program's start-up.
const firstReap = time.Second

// walk calls fn for every name in the directory, dirBatch names at a time.
// It holds the store's descriptors only while reading a batch, never while
// fn runs, so fn may call the store (List's callback may Delete) and Close
// does not wait for a whole pass.
func (s *Store) walk(ctx context.Context, fn func(name string) error) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	// A pass over a directory that is no longer the one at Path would
	// list (or reap) sessions nobody else sees; see directory.go.
	if err := s.probeDir(); err != nil {
		s.markGone(err)
		s.mu.RUnlock()
		return err
	}
	var d file
	err := s.retry(ctx, "", "readdir", func() error {
		var err error
		d, err = s.fs.OpenFile(".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		return err
	})
	s.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("filestore: open session directory: %w", err)
	}
	defer d.Close()
	for {
		// A failed getdents consumes nothing, so a transient error is
		// retried like any other; names already read are used first.
		var names []string
		var rerr error
		if err := s.retry(ctx, "", "readdir", func() error {
			names, rerr = d.ReadDirNames(dirBatch)
			if len(names) > 0 || rerr == io.EOF {
				return nil
			}
			return rerr
		}); err != nil {
			rerr = err
		}
		for _, name := range names {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("filestore: %w", err)
			}
			if err := fn(name); err != nil {
				return err
			}
		}
		switch {
		case rerr == io.EOF:
			return nil
		case rerr != nil:
			return fmt.Errorf("filestore: read session directory: %w", rerr)
		}
	}
}

// List calls fn for each session file that decodes, expired ones included,
// in directory order. It streams the directory, so memory does not grow
// with the number of sessions. A session created or deleted while List
// runs may or may not be seen; fn may call the store, Delete included. If
// fn returns an error, List stops and returns it. Corrupt files met on the
// way are quarantined, as Load would.
func (s *Store) List(ctx context.Context, fn func(id string, r filesession.Record) error) error {
	return s.walk(ctx, func(name string) error {
		id, ok := s.sessionID(name)
		if !ok {
			return nil
		}
		if err := s.begin(ctx, id); err != nil {
			return err
		}
		var d stored
		err := s.read(ctx, id, false, false, &d)
		s.mu.RUnlock()
		switch {
		case errors.Is(err, filesession.ErrNotFound):
			return nil // deleted meanwhile, not a session file, or corrupt
		case err != nil:
			return err
		}
		return fn(d.id, d.rec) // the ID itself, under HashNames too
	})
}

// Reap removes every session that has expired when it is examined and
// returns how many it removed. For each session file it first looks at the
// access time, the expiry hint Touch and every write leave (see Touch): a
// hint in the future means the session cannot have expired, and the file is
// not even opened. Otherwise it takes the session's lock, reads the file
// again and decides from its contents and modification time, so a session
// refreshed meanwhile survives (and gets its hint fixed). Reap also removes
// this store's temporary files that a crash left behind (the exact name
// pattern, older than 10 minutes), and nothing else: not the lock file,
// not quarantined *.corrupt files, not foreign files.
//
// Errors with single files are logged and the pass goes on; Reap returns
// the first of them with the count. A cancelled ctx stops the pass.
func (s *Store) Reap(ctx context.Context) (int, error) {
	removed, examined, start := 0, 0, time.Now()
	var first error
	err := s.walk(ctx, func(name string) error {
		var err error
		if id, ok := s.sessionID(name); ok {
			examined++
			var gone bool
			gone, err = s.reapSession(ctx, id, name)
			if gone {
				removed++
				s.log.Info("filestore: session reaped", "session", hashID(id))
				if ev := s.opts.Events; ev != nil {
					ev.Reaped()
				}
			}
		} else if id, ok := s.tempID(name); ok {
			err = s.reapTemp(ctx, id, name)
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrClosed), ctx.Err() != nil:
			return err
		default:
			s.log.Warn("filestore: reaper skipped a file", "error", err)
			if first == nil {
				first = err
			}
		}
		return nil
	})
	if removed > 0 {
		// One directory fsync for the pass: a reaped session that a power
		// loss brings back is expired still, and goes next time.
		if err := s.begin(ctx); err == nil {
			if serr := s.retry(ctx, "", "reap", s.syncDir); serr != nil && first == nil {
				first = fmt.Errorf("filestore: reap: sync directory: %w", serr)
			}
			s.mu.RUnlock()
		}
	}
	if ev := s.opts.Events; ev != nil {
		ev.ReapDone(examined, removed, time.Since(start), cmp.Or(err, first))
	}
	if err != nil {
		return removed, err
	}
	return removed, first
}

// reapSession removes the session file name if it has expired.
func (s *Store) reapSession(ctx context.Context, id, name string) (bool, error) {
	if err := s.begin(ctx, id); err != nil {
		return false, err
	}
	defer s.mu.RUnlock()
	var st unix.Stat_t
	if err := s.retry(ctx, id, "reap", func() error { return s.fs.Lstat(name, &st) }); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || timeOf(st.Atim).After(s.opts.Now()) {
		return false, nil
	}
	p, err := s.lock(ctx, id, "")
	if err != nil {
		return false, err
	}
	defer s.unlock(p)
	var d stored
	switch err := s.read(ctx, id, false, true, &d); {
	case errors.Is(err, filesession.ErrNotFound):
		return false, nil // gone, quarantined, or not ours to judge
	case err != nil:
		return false, err
	}
	if !d.rec.Expired(s.opts.Now()) {
		// Alive: put the hint right so the next pass skips it without a
		// read. The modification time is left alone (UTIME_OMIT), since a
		// Touch, which takes no lock, may be setting it right now.
		exp := s.expiresAt(&d.rec)
		err := s.retry(ctx, id, "reap", func() error { return s.fs.Utimes(name, exp, time.Time{}) })
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return false, err
		}
		s.hints.put(id, exp)
		return false, nil
	}
	s.hints.forget(id)
	if err := s.retry(ctx, id, "reap", func() error { return s.fs.Remove(name) }); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, err
	}
	s.indexForget(ctx, d.rec.User, id) // after the file, as userindex.go needs
	return true, nil
}

// reapTemp removes the temporary file name, of session id, if it is older
// than staleTemp. It takes the session's lock, which every writer holds
// while its temporary file exists, so it never removes one in use by a
// writer of any process that shares the locks.
func (s *Store) reapTemp(ctx context.Context, id, name string) error {
	if err := s.begin(ctx, id); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	var st unix.Stat_t
	switch err := s.retry(ctx, id, "reap", func() error { return s.fs.Lstat(name, &st) }); {
	case errors.Is(err, unix.ENOENT):
		return nil
	case err != nil:
		return err
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil
	}
	if !timeOf(st.Mtim).Before(s.opts.Now().Add(-staleTemp)) {
		return nil
	}
	p, err := s.lock(ctx, id, "")
	if err != nil {
		return err
	}
	defer s.unlock(p)
	if err := s.retry(ctx, id, "reap", func() error { return s.fs.Remove(name) }); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	s.log.Info("filestore: removed a stale temporary file", "session", hashID(id))
	return nil
}

// reapLoop is the background reaper: a first pass shortly after Open, then
// one every ReapInterval, until Close cancels ctx. It runs in its own
// goroutine and takes each session's lock only for that session, so it
// never blocks requests for long.
func (s *Store) reapLoop(ctx context.Context) {
	defer close(s.reaperDone)
	timer := time.NewTimer(min(firstReap, s.opts.ReapInterval))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		n, err := s.Reap(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.Error("filestore: reap failed", "removed", n, "error", err)
		} else {
			s.log.Debug("filestore: reaped expired sessions", "removed", n, "took", time.Since(start))
		}
		timer.Reset(s.opts.ReapInterval)
	}
}
