package filestore

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ErrDirectoryGone means the session directory was removed, or something
// else was put at its Path, while the store had it open. The store notices
// when a name it expected in the directory is missing and at the start of
// every List and Reap pass; it then fails calls with an error matching
// ErrDirectoryGone (the manager answers 503) rather than report sessions as
// unknown, and every later call first tries to reopen Path with the checks
// Open makes. A Path that no longer exists is created again (0700), as Open
// would: removing the directory ends every session, it does not stop the
// service. A Path that is now a file, a symlink or an unsafe directory keeps
// failing until it is fixed. A directory renamed away is not followed: the
// store moves to the directory at Path, which every other process uses.
var ErrDirectoryGone = errors.New("filestore: the session directory was removed or replaced while the store was open")

// The directory at runtime.
//
// The store resolves every name against a descriptor of the directory it
// opened, so that a symlink swapped into Path cannot redirect it. The
// other side of that coin is that the descriptor keeps pointing at the
// directory it opened after someone removes or renames it, and a store
// that did not notice would carry on in a directory nobody else sees: a
// removed directory accepts no new files (Linux fails the create with
// ENOENT), so every session would look unknown and every write would fail
// with "no such file"; a renamed one would split the sessions between
// processes that opened Path before and after.
//
// So the store checks, whenever something it expected in the directory is
// missing (a session file, which is also the stale-cookie case, or the
// directory itself refusing a new file) and at the start of every List and
// Reap pass, that its descriptor is still the directory at Path: the
// directory has not been unlinked (fstat's link count is not zero), and
// lstat(Path) is a directory with the same device and inode. The check is
// two system calls, outside the fault-injection seam, made only on those
// paths, never on a hit.
//
// If it fails, the call reports ErrDirectoryGone rather than "no
// session", and the store is marked: the next call (of any goroutine)
// first tries to reopen Path with the checks Open makes (a directory, not a
// symlink, owned by this user, not writable by group or others). If Path
// does not exist, it is created (0700) as Open would, since removing the
// session directory is how an operator ends every session at once. If Path
// is a file, a symlink or an unsafe directory, every call fails with
// ErrDirectoryGone until an operator fixes it, and the first call after
// that works. A directory that was renamed away is not followed: the store
// moves to whatever directory is at Path, the one every other process uses.
// Sessions left in the old directory are not lost, but no longer used.
//
// Until the check runs, calls that find what they look for (a Load or Save
// of an existing session in a directory renamed away) still succeed in the
// old directory; nothing is written into a removed directory, since the
// kernel refuses it.

// checkDir is called when a name the store expected in the directory was
// missing. It returns cause if the directory is still the one at Path, and
// an error matching ErrDirectoryGone otherwise (and marks the store for
// reopening). The caller holds s.mu shared.
func (s *Store) checkDir(cause error) error {
	if err := s.probeDir(); err != nil {
		s.markGone(err)
		return err
	}
	return cause
}

// probeDir returns an error matching ErrDirectoryGone if the store's
// directory descriptor is no longer the directory at Path. If it cannot
// tell (lstat of Path fails for another reason, such as a parent directory
// that is not searchable), it assumes the directory is fine: the
// descriptor still works. The caller holds s.mu shared.
func (s *Store) probeDir() error {
	var fd, at unix.Stat_t
	if err := unix.Fstat(s.root.dirfd, &fd); err != nil {
		return nil
	}
	if fd.Nlink == 0 {
		return fmt.Errorf("%w: %s was removed", ErrDirectoryGone, s.opts.Path)
	}
	switch err := unix.Lstat(s.abs, &at); {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("%w: %s was moved away", ErrDirectoryGone, s.opts.Path)
	case err != nil:
		return nil
	case at.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("%w: %s is no longer a directory", ErrDirectoryGone, s.opts.Path)
	case at.Dev != fd.Dev || at.Ino != fd.Ino:
		return fmt.Errorf("%w: %s is now another directory", ErrDirectoryGone, s.opts.Path)
	}
	return nil
}

// markGone records that the directory is gone, logging it once.
func (s *Store) markGone(cause error) {
	if s.gone.CompareAndSwap(false, true) {
		s.log.Error("filestore: the session directory is gone; failing until it is back", "path", s.opts.Path, "error", cause)
	}
}

// reopenDir reopens Path after markGone, holding s.mu exclusively so that
// no call uses the descriptors it replaces. It returns nil if the store
// may go on (Path is a usable directory again, or was never really gone),
// and an error matching ErrDirectoryGone otherwise.
func (s *Store) reopenDir() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if !s.gone.Load() {
		return nil // another goroutine reopened it
	}
	if s.probeDir() == nil {
		s.gone.Store(false) // put back meanwhile
		return nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(s.abs, &st); errors.Is(err, unix.ENOENT) {
		// Only the last component: a missing parent is an operator's
		// business, not ours to make.
		switch err := unix.Mkdir(s.abs, 0o700); {
		case err == nil:
			// Mkdir applies the umask; make the directory exactly
			// 0700, as Open does.
			_ = unix.Chmod(s.abs, 0o700)
		case errors.Is(err, unix.EEXIST):
			// Another process made it; openFiles checks it below.
		default:
			return fmt.Errorf("%w: recreate %s: %w", ErrDirectoryGone, s.opts.Path, err)
		}
	}
	fd, err := unix.Open(s.abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%w: reopen %s: %w", ErrDirectoryGone, s.opts.Path, err)
	}
	// Swap the descriptor under the wrappers (the fault-injection seam
	// of tests wraps s.root), then open the lock file in the new
	// directory: processes that reopen it share that one.
	oldfd, oldLock := s.root.dirfd, s.lockf
	s.root.dirfd, s.lockf = fd, nil
	if err := s.openFiles(); err != nil {
		if s.lockf != nil {
			_ = s.lockf.Close()
		}
		_ = unix.Close(fd)
		s.root.dirfd, s.lockf = oldfd, oldLock
		return fmt.Errorf("%w: %w", ErrDirectoryGone, err)
	}
	_ = oldLock.Close()
	_ = unix.Close(oldfd)
	// Expiries remembered from the old directory say nothing of the new.
	for i := range s.hints.shards {
		sh := &s.hints.shards[i]
		sh.mu.Lock()
		sh.m = nil
		sh.mu.Unlock()
	}
	s.gone.Store(false)
	s.log.Warn("filestore: the session directory is back; reopened it", "path", s.opts.Path)
	return nil
}
