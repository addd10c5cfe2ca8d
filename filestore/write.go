package filestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

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
// Transient failures are retried from scratch, with a fresh temporary file.
func (s *Store) writeFile(ctx context.Context, id, name string, data []byte, atime, mtime time.Time) error {
	err := s.retry(ctx, id, "write", func() error { return s.writeOnce(name, data, atime, mtime) })
	if err != nil {
		return fmt.Errorf("filestore: write session %s: %w", hashID(id), err)
	}
	return nil
}

// writeOnce is one attempt at writeFile. Each step and why:
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
//  6. rename over the final name: any reader sees the old or the new
//     version, never a missing or partial file.
//  7. fsync the directory (SyncFull), which makes the rename itself
//     durable; without it a power loss may bring back the old version, or
//     a deleted session.
//
// On any failure before the rename the temporary file is removed and the
// error returned. A failed fsync is never retried on the same descriptor:
// after a writeback error Linux marks the pages clean and reports the error
// once, so a second fsync "succeeds" without the data being on disk
// (PostgreSQL's fsyncgate). The caller's retry, if any, starts again at
// step 1 with a new file, from the bytes still in memory.
func (s *Store) writeOnce(name string, data []byte, atime, mtime time.Time) error {
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
		return err
	}
	fail := func(err error) error {
		_ = f.Close()
		_ = s.fs.Remove(tmp)
		return err
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
		return err
	}
	if err := s.fs.Rename(tmp, name); err != nil {
		_ = s.fs.Remove(tmp)
		return err
	}
	return s.syncDir()
}

// syncDir makes renames and unlinks in the directory durable (SyncFull
// only). It uses the directory descriptor held since Open, so that an
// error of an earlier writeback is reported to it rather than lost to a
// descriptor opened after the error.
func (s *Store) syncDir() error {
	if s.opts.Sync != SyncFull {
		return nil
	}
	return s.dir.Sync()
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
