package filestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/filesession/filesession"
	"golang.org/x/sys/unix"
)

// Temporary files are named "." + <final name> + "." + 16 hex digits +
// ".tmp": hidden from ls, never ending in the session extension (so neither
// this store nor session-file-store ever takes one for a session), and
// recognisable by the reaper, which removes those a crash left behind.
const (
	tempSuffix    = ".tmp"
	corruptSuffix = ".corrupt"
	tempHexLen    = 16
)

// tempName returns a fresh temporary name for final.
func tempName(final string) string {
	b := make([]byte, 0, 1+len(final)+1+tempHexLen+len(tempSuffix))
	b = append(b, '.')
	b = append(b, final...)
	b = append(b, '.')
	// math/rand/v2's global generator is ChaCha8 seeded from the OS: the
	// names are unpredictable, and O_EXCL catches the (harmless) collision.
	r := rand.Uint64()
	for i := 60; i >= 0; i -= 4 {
		b = append(b, "0123456789abcdef"[(r>>uint(i))&0xf])
	}
	b = append(b, tempSuffix...)
	return string(b)
}

// writeFile atomically replaces the file name with data, with access time
// atime (the expiry hint) and modification time mtime (the last access).
// replace says that name holds the session's current version, which a
// failure must leave in place (see pending); otherwise a failure leaves
// nothing at name. Transient failures are retried from scratch, with a
// fresh temporary file.
func (s *Store) writeFile(ctx context.Context, id, name string, data []byte, atime, mtime time.Time, replace bool) error {
	err := s.retry(ctx, id, "write", func() error { return s.writeOnce(ctx, name, data, atime, mtime, replace) })
	if err != nil {
		return fmt.Errorf("filestore: write session %s: %w", hashID(id), err)
	}
	return nil
}

// writeOnce is one attempt at writeFile: place, then make it durable with
// an fsync of the directory, or put back what was there if that fails.
func (s *Store) writeOnce(ctx context.Context, name string, data []byte, atime, mtime time.Time, replace bool) error {
	d, err := s.openDir()
	if err != nil {
		return err
	}
	p, err := s.place(name, data, atime, mtime, replace)
	if err != nil {
		closeDir(d)
		return err
	}
	if err := syncClose(d); err != nil {
		s.rollback(ctx, p)
		return err
	}
	s.discard(ctx, p)
	return nil
}

// place writes data to a new file and renames it to name. Each step and
// why:
//
//  1. Create a temporary file in the same directory, so that the rename
//     below cannot cross filesystems (EXDEV) and is atomic. O_EXCL with a
//     random name means we never write into a file someone else made;
//     O_NOFOLLOW means a planted symlink is not followed; 0600 keeps the
//     session data private (umask can only remove bits).
//  2. Write all of data. Until the rename nobody looks at this name.
//  3. Set its times: atime is the expiry hint for the reaper, mtime the
//     last access. Setting them on the descriptor before fsync makes them
//     durable with the data, and a concurrent Touch of the old file cannot
//     be mixed into the new one.
//  4. fsync the file (SyncFull, SyncFile). Without it, after a power loss
//     the renamed file may be empty or hold stale blocks (ext4 delayed
//     allocation; "a zero-length file is a valid and possible outcome
//     after the rename", Ts'o). It is also where earlier writeback errors
//     (EIO, ENOSPC) surface.
//  5. close, checking the error: some filesystems (NFS, quotas) report
//     write errors only there.
//  6. Under SyncFull, when replacing a version a failure must not lose,
//     hard-link that version to a second temporary name (see pending). If
//     it is gone, which only a process that takes no locks can have done,
//     stop with ErrNotFound rather than bring the session back.
//  7. rename over the final name: any reader sees the old or the new
//     version, never a missing or partial file.
//
// The caller then fsyncs the directory (SyncFull), which makes the rename
// itself durable; without it a power loss may bring back the old version,
// or a deleted session.
//
// On any failure before the rename the temporary files are removed and the
// error returned. A failed fsync is never retried on the same descriptor:
// after a writeback error Linux marks the pages clean and reports the error
// once, so a second fsync "succeeds" without the data being on disk
// (PostgreSQL's fsyncgate). The caller's retry, if any, starts again at
// step 1 with a new file, from the bytes still in memory.
func (s *Store) place(name string, data []byte, atime, mtime time.Time, replace bool) (pending, error) {
	var (
		tmp string
		f   file
		err error
	)
	for range 3 {
		tmp = tempName(name)
		f, err = s.fs.OpenFile(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if !errors.Is(err, unix.EEXIST) {
			break
		}
	}
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			// Creating a file fails with ENOENT only if the directory
			// itself is gone: say so rather than "no such file".
			err = s.checkDir(err)
		}
		return pending{}, err
	}
	fail := func(err error) (pending, error) {
		_ = f.Close()
		_ = s.fs.Remove(tmp)
		return pending{}, err
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Utimes(atime, mtime); err != nil {
		return fail(err)
	}
	if s.opts.Sync != SyncNone {
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := f.Close(); err != nil {
		_ = s.fs.Remove(tmp)
		return pending{}, err
	}
	p := pending{name: name, created: !replace}
	if replace && s.opts.Sync == SyncFull {
		backup := tempName(name)
		switch err := s.fs.Link(name, backup); {
		case err == nil:
			p.backup = backup
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EMLINK):
			// A filesystem without hard links (or a file with too many):
			// write without a way back, as a store without this step would.
		case errors.Is(err, unix.ENOENT):
			// The version we read is gone although we hold its lock: a
			// process that takes no locks (session-file-store) deleted the
			// session. The rename would bring it back.
			_ = s.fs.Remove(tmp)
			return pending{}, filesession.ErrNotFound
		default:
			_ = s.fs.Remove(tmp)
			return pending{}, err
		}
	}
	if err := s.fs.Rename(tmp, name); err != nil {
		_ = s.fs.Remove(tmp)
		if p.backup != "" {
			_ = s.fs.Remove(p.backup)
		}
		return pending{}, err
	}
	return p, nil
}

// pending is a change to the directory (a rename or an unlink of a session
// file) that is visible but not yet durable: only the directory's fsync
// makes it so. If that fsync fails, the store reports the failure, and what
// it reports must be true: the client is told its request failed, so the
// session must still be as it was. rollback puts it back:
//
//   - a replaced version is kept as a hard link under a temporary name
//     (backup) until the fsync succeeded, and renamed back over the
//     session's name if it failed;
//   - a session set aside for deletion is renamed to a temporary name
//     (backup) rather than unlinked, and renamed back if the fsync failed;
//   - a file that did not exist before (created) is removed again.
//
// Renames and unlinks of existing names need no new data blocks, so they
// work when the disk is full or the fsync failed, which is when rollback
// runs. The backup names follow the temporary file pattern, so one that a
// crash leaves behind is removed by the reaper.
type pending struct {
	name    string // the session file
	backup  string // temporary name of what was at name before, or ""
	created bool   // nothing was at name before
}

// setAside removes the session file name: under SyncFull by renaming it to
// a temporary name, so that rollback can bring it back, otherwise (no
// directory fsync can fail) by unlinking it. Whatever is at name goes (a
// symlink itself, never its target), except a directory: that fails with
// EISDIR, since it is no session and a rename would only hide it.
func (s *Store) setAside(name string) (pending, error) {
	if s.opts.Sync != SyncFull {
		return pending{}, s.fs.Remove(name)
	}
	var st unix.Stat_t
	if err := s.fs.Lstat(name, &st); err != nil {
		return pending{}, err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return pending{}, unix.EISDIR
	}
	backup := tempName(name)
	if err := s.fs.Rename(name, backup); err != nil {
		return pending{}, err
	}
	return pending{name: name, backup: backup}, nil
}

// rollback undoes ps, last first, after the directory fsync that was to
// make them durable failed, and then tries that fsync again on a fresh
// descriptor so that the restored state is durable if the disk has
// recovered. Undoing a rename or unlink is retried like any call; what
// cannot be undone is logged, and the session then stays as the failed
// operation left it.
func (s *Store) rollback(ctx context.Context, ps ...pending) {
	undone := false
	for i := len(ps) - 1; i >= 0; i-- {
		p := ps[i]
		var err error
		switch {
		case p.backup != "":
			err = s.retry(ctx, "", "rollback", func() error { return s.fs.Rename(p.backup, p.name) })
		case p.created:
			err = s.retry(ctx, "", "rollback", func() error { return s.fs.Remove(p.name) })
		default:
			continue
		}
		if err != nil {
			s.log.Error("filestore: could not undo a change whose directory fsync failed", "error", err)
			continue
		}
		undone = true
	}
	if undone {
		// Once, best effort: the operation is failing anyway, and its own
		// retry (if any) starts from scratch.
		_ = s.syncDir()
	}
}

// discard removes the backups of ps once their change is durable. A backup
// that cannot be removed is left for the reaper, which removes stale
// temporary files.
func (s *Store) discard(ctx context.Context, ps ...pending) {
	for _, p := range ps {
		if p.backup == "" {
			continue
		}
		if err := s.retry(ctx, "", "discard", func() error { return s.fs.Remove(p.backup) }); err != nil {
			s.log.Warn("filestore: could not remove a temporary file; the reaper will", "error", err)
		}
	}
}

// openDir opens the directory to fsync it after a change (SyncFull only;
// nil otherwise). Each change gets its own descriptor, opened before the
// change and fsynced once after it, then closed: Linux reports a writeback
// error once to every descriptor open when it happened, so a descriptor
// opened first cannot miss the error of its own change, and one whose
// fsync failed is never fsynced again (a second fsync would succeed
// without the directory being durable).
func (s *Store) openDir() (file, error) {
	if s.opts.Sync != SyncFull {
		return nil, nil
	}
	return s.fs.OpenFile(".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// syncClose fsyncs d, if not nil, and closes it.
func syncClose(d file) error {
	if d == nil {
		return nil
	}
	err := d.Sync()
	_ = d.Close() // a read-only descriptor has nothing to report at close
	return err
}

func closeDir(d file) {
	if d != nil {
		_ = d.Close()
	}
}

// syncDir makes the renames and unlinks made so far in the directory
// durable (SyncFull only), on a descriptor of its own.
func (s *Store) syncDir() error {
	d, err := s.openDir()
	if err != nil {
		return err
	}
	return syncClose(d)
}

// transient reports whether err is worth retrying: an interrupted call, a
// resource that is momentarily busy or exhausted. Everything else (ENOENT,
// ENOSPC, EDQUOT, EIO, EACCES, EPERM, EROFS, ...) is final.
func transient(err error) bool {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case unix.EINTR, unix.EAGAIN, unix.EBUSY, unix.EMFILE, unix.ENFILE:
		return true
	}
	return false
}

// retry runs fn, and again up to Retries times while it fails with a
// transient error, waiting 5ms·2^i before retry i (and giving up if ctx
// ends first). Each retry is logged; the final error is returned as is.
func (s *Store) retry(ctx context.Context, id, op string, fn func() error) error {
	err := fn()
	for i := 0; err != nil && i < s.opts.Retries && transient(err); i++ {
		wait := 5 * time.Millisecond << i
		s.log.Warn("filestore: transient error, retrying",
			"op", op, "session", hashID(id), "retry", i+1, "wait", wait, "error", err)
		if ev := s.opts.Events; ev != nil {
			ev.Retried(op, err)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("%w (giving up on %s after: %v)", ctx.Err(), op, err)
		case <-timer.C:
		}
		err = fn()
	}
	return err
}

// quarantineName is where a corrupt file is moved.
func quarantineName(name string) string { return name + corruptSuffix }
