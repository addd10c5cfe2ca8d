package filestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/filesession/filesession"
	"golang.org/x/sys/unix"
)

// The per-user index (filesession.UserIndex).
//
// Listing the sessions of one user must not read every session file, so
// the store keeps an index in the subdirectory .users of the session
// directory (mode 0700, like it):
//
//	.users/.salt           64 hex digits: 32 random bytes made at first use
//	.users/.complete       the salt again, written after a full rebuild
//	.users/<32 hex>        one file per user: the session name keys of
//	                       that user, one per line
//
// A user's file is named by the first 32 hex digits of SHA-256(label,
// salt, user), so that a listing of the directory (a backup, a tool) does
// not tell which users have sessions, and so that any user string makes a
// safe file name. The lines are name keys: session IDs, or under HashNames
// their hashes (hashnames.go), so the index never holds more of an ID than
// the directory's file names do.
//
// The index is a superset of the truth, which is what makes it safe to
// revoke by: a session is added to its user's file before the session file
// that names the user is written (Create, Save, Update, Renew), durably
// (file fsync, rename, directory fsync per Sync), and removed from it only
// after the session file is gone (Delete, Renew away, Reap) or names
// another user. A crash at any point can only leave an entry too many.
// UserSessions reads the file without a lock (it is replaced by rename),
// reads every session it lists, returns the live ones that name the user,
// and drops the stale entries: each under the session's lock (re-read
// there, so a writer adding it back cannot interleave), and only when the
// session file is missing or names another user. A file that exists but
// cannot be read now (corrupt, a key not in the key ring) keeps its entry
// until it is quarantined or fixed, so a key ring put right later does not
// bring back sessions the index forgot.
//
// Locks: a user's file is rewritten under a lock stripe of its own, a byte
// of the lock file past the session stripes (lock.go), taken while the
// session's lock is held, never the other way round, so the two kinds of
// lock cannot deadlock.
//
// Rebuild: an index is complete once .complete holds the current salt. A
// directory written by a version without the index, by session-file-store,
// or whose .users was removed, has none, and the first UserSessions call
// that finds it missing rebuilds it from a full scan before it answers
// (RebuildUserIndex does the same at a time of the operator's choosing,
// such as a deploy). A rebuild only adds entries (a union with what is
// there), so writers running meanwhile lose nothing; it also removes
// temporary files a crash left in .users. Removing .users altogether is
// always safe: it is rebuilt. Sessions written by processes that do not
// maintain the index (session-file-store) are only indexed by a rebuild;
// sessions Node writes carry no user anyway, unless it kept one.

var _ filesession.UserIndex = (*Store)(nil)

// Names in the index directory. The leading '.' keeps .users out of every
// session name pattern, so List, Reap and Scan ignore it (Scan reports it
// as foreign).
const (
	userDirName  = ".users"
	userSaltName = ".salt"
	userDoneName = ".complete"
)

// Limits of the index.
const (
	// userStripes is how many lock stripes the index files share; they are
	// the bytes stripes .. stripes+userStripes-1 of the lock file.
	userStripes = 256
	// userFileMax bounds what a user's file may hold (about 90 000
	// entries), so a damaged one cannot make a reader allocate without
	// limit.
	userFileMax = 4 << 20
	// userFlush is how many entries a rebuild collects before it merges
	// them into the users' files, which bounds its memory.
	userFlush = 8192
	// saltLen is the salt's length in bytes.
	saltLen = 32
)

var (
	// errNoUserDir is the index directory or salt not existing yet.
	errNoUserDir = errors.New("filestore: no user index yet")
	// errUnsafeUserDir is an index directory or file the store must not
	// trust: not ours, writable by others, not the kind of file expected.
	errUnsafeUserDir = errors.New("filestore: the user index directory or one of its files is not owned by this user, is writable by others, or is not a regular file")
)

// userIndexState is the Store's state for the index.
type userIndexState struct {
	// rebuild serialises rebuilds within the process; processes sharing
	// the directory may rebuild at once, which is harmless (a union).
	rebuild sync.Mutex
}

// userDir is the index directory, opened for one operation.
type userDir struct {
	fs   *osFS
	salt []byte
}

func (d *userDir) Close() { _ = d.fs.Close() }

// fileOf returns the name of user's file.
func (d *userDir) fileOf(user string) string {
	h := sha256.New()
	h.Write([]byte("filesession/filestore user index\x00"))
	h.Write(d.salt)
	h.Write([]byte{0})
	h.Write([]byte(user))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// openUserDir opens the index directory and reads its salt, creating both
// if create is set (and returning errNoUserDir if not and either is
// missing). The caller holds s.mu shared.
func (s *Store) openUserDir(create bool) (*userDir, error) {
	fd, err := unix.Openat(s.root.dirfd, userDirName, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		if !create {
			return nil, errNoUserDir
		}
		switch err := unix.Mkdirat(s.root.dirfd, userDirName, 0o700); {
		case err == nil:
			// The new name must survive a crash before entries are put
			// under it.
			if err := s.syncDir(); err != nil {
				return nil, err
			}
		case errors.Is(err, unix.EEXIST):
		case errors.Is(err, unix.ENOENT):
			return nil, s.checkDir(err)
		default:
			return nil, err
		}
		fd, err = unix.Openat(s.root.dirfd, userDirName, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	switch {
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
		return nil, errUnsafeUserDir
	case err != nil:
		return nil, err
	}
	d := &userDir{fs: &osFS{dirfd: fd}}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		d.Close()
		return nil, err
	}
	if st.Uid != s.euid || st.Mode&0o022 != 0 {
		d.Close()
		return nil, errUnsafeUserDir
	}
	if d.salt, err = s.userSalt(d.fs, create); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// userSalt reads the index's salt, creating it if create is set. Two
// processes creating it at once agree on one: each links its own complete
// file to the name, which fails for the second, and then reads the first's.
func (s *Store) userSalt(fs *osFS, create bool) ([]byte, error) {
	for range 2 {
		b, err := s.readIndexFile(fs, userSaltName, 256)
		switch {
		case err == nil:
			salt, err := hex.DecodeString(string(bytes.TrimSpace(b)))
			if err != nil || len(salt) != saltLen {
				return nil, fmt.Errorf("filestore: %s/%s is damaged; remove %s to have the index rebuilt", userDirName, userSaltName, userDirName)
			}
			return salt, nil
		case !errors.Is(err, unix.ENOENT):
			return nil, err
		case !create:
			return nil, errNoUserDir
		}
		salt := make([]byte, saltLen)
		rand.Read(salt)
		tmp := tempName(userSaltName)
		if err := s.writeIndexTemp(fs, tmp, []byte(hex.EncodeToString(salt)+"\n")); err != nil {
			return nil, err
		}
		err = fs.Link(tmp, userSaltName)
		_ = fs.Remove(tmp)
		switch {
		case err == nil:
			if err := s.syncIndexDir(fs); err != nil {
				return nil, err
			}
			return salt, nil
		case !errors.Is(err, unix.EEXIST):
			return nil, err
		}
		// Another process made it first: read theirs.
	}
	return nil, fmt.Errorf("filestore: %s/%s: could not be created", userDirName, userSaltName)
}

// readIndexFile reads the file name of the index directory, which must be
// a regular file of ours, not writable by others, of at most max bytes.
// A missing file is ENOENT.
func (s *Store) readIndexFile(fs *osFS, name string, max int64) ([]byte, error) {
	f, err := fs.OpenFile(name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENXIO):
		return nil, errUnsafeUserDir
	case err != nil:
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := f.Stat(&st); err != nil {
		return nil, err
	}
	if s.checkFile(&st) != nil {
		return nil, errUnsafeUserDir
	}
	if st.Size > max {
		return nil, fmt.Errorf("filestore: %s/%s is larger than %d bytes", userDirName, name, max)
	}
	b := make([]byte, st.Size)
	n := 0
	for n < len(b) {
		m, err := f.Read(b[n:])
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return b[:n], nil
}

// writeIndexTemp writes data to the new file tmp of the index directory,
// fsynced unless Sync is SyncNone. It leaves no file behind on failure.
func (s *Store) writeIndexTemp(fs *osFS, tmp string, data []byte) error {
	f, err := fs.OpenFile(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = fs.Remove(tmp)
		return err
	}
	if s.opts.Sync != SyncNone {
		// Without it a crash may leave the renamed file empty, which would
		// lose the entries it had before this change, not just this one.
		if err := f.Sync(); err != nil {
			_ = f.Close()
			_ = fs.Remove(tmp)
			return err
		}
	}
	if err := f.Close(); err != nil {
		_ = fs.Remove(tmp)
		return err
	}
	return nil
}

// syncIndexDir makes renames in the index directory durable (SyncFull).
func (s *Store) syncIndexDir(fs *osFS) error {
	if s.opts.Sync != SyncFull {
		return nil
	}
	d, err := fs.OpenFile(".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	return syncClose(d)
}

// readKeys returns the entries of the index file name: the valid name keys
// it lists, each once, in order. A missing file has none.
func (s *Store) readKeys(d *userDir, name string) ([]string, error) {
	b, err := s.readIndexFile(d.fs, name, userFileMax)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	seen := make(map[string]struct{})
	for line := range strings.SplitSeq(string(b), "\n") {
		// A line that is not a name key (a torn write under SyncNone, a
		// hand edit) is skipped: it names no session.
		if !filesession.ValidID(line, s.opts.IDLength) {
			continue
		}
		if _, dup := seen[line]; !dup {
			seen[line] = struct{}{}
			keys = append(keys, line)
		}
	}
	return keys, nil
}

// writeKeys replaces the index file name with keys (removing it when there
// are none): a temporary file, fsynced, renamed over it. durable says the
// rename must survive a crash (an added entry); a removal needs no
// directory fsync, since losing it only leaves a stale entry.
func (s *Store) writeKeys(ctx context.Context, d *userDir, name string, keys []string, durable bool) error {
	if len(keys) == 0 {
		err := d.fs.Remove(name)
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	var buf bytes.Buffer
	for _, k := range keys {
		buf.WriteString(k)
		buf.WriteByte('\n')
	}
	return s.retry(ctx, "", "index", func() error {
		tmp := tempName(name)
		if err := s.writeIndexTemp(d.fs, tmp, buf.Bytes()); err != nil {
			return err
		}
		if err := d.fs.Rename(tmp, name); err != nil {
			_ = d.fs.Remove(tmp)
			return err
		}
		if durable {
			return s.syncIndexDir(d.fs)
		}
		return nil
	})
}

// lockUserFile takes the lock stripe of the index file name. The caller
// releases it with s.unlockStripe.
func (s *Store) lockUserFile(ctx context.Context, name string) (int, error) {
	n := stripes + stripe(name)%userStripes
	w := lockWait{deadline: time.Now().Add(s.opts.LockTimeout)}
	if dl, ok := ctx.Deadline(); ok && dl.Before(w.deadline) {
		w = lockWait{deadline: dl, ctxDeadline: true}
	}
	return n, s.lockStripe(ctx, n, w)
}

// editKeys runs fn on the entries of user's file under its lock and writes
// what fn returns if it changed them.
func (s *Store) editKeys(ctx context.Context, d *userDir, user string, durable bool, fn func([]string) []string) error {
	name := d.fileOf(user)
	n, err := s.lockUserFile(ctx, name)
	if err != nil {
		return err
	}
	defer s.unlockStripe(n)
	keys, err := s.readKeys(d, name)
	if err != nil {
		return err
	}
	out := fn(slices.Clone(keys))
	if slices.Equal(out, keys) {
		return nil
	}
	return s.writeKeys(ctx, d, name, out, durable)
}

// indexAdd adds the session key to user's entry, durably, before the
// session file naming user is written. The caller holds s.mu shared and
// key's lock. Nothing is done for the empty user.
func (s *Store) indexAdd(ctx context.Context, user, key string) error {
	if user == "" {
		return nil
	}
	d, err := s.openUserDir(true)
	if err != nil {
		return fmt.Errorf("filestore: user index: %w", err)
	}
	defer d.Close()
	err = s.editKeys(ctx, d, user, true, func(keys []string) []string {
		if slices.Contains(keys, key) {
			return keys
		}
		return append(keys, key)
	})
	if err != nil {
		return fmt.Errorf("filestore: user index: add session %s: %w", hashID(key), err)
	}
	return nil
}

// indexForget removes the session key from user's entry once the session
// file no longer names user. The caller holds s.mu shared and key's lock.
// It reports nothing but a log line: the session operation has happened,
// and an entry left behind is only stale (readers drop it).
func (s *Store) indexForget(ctx context.Context, user, key string) {
	if user == "" {
		return
	}
	d, err := s.openUserDir(false)
	if errors.Is(err, errNoUserDir) {
		return
	}
	if err == nil {
		defer d.Close()
		err = s.editKeys(ctx, d, user, false, func(keys []string) []string {
			return slices.DeleteFunc(keys, func(k string) bool { return k == key })
		})
	}
	if err != nil {
		s.log.Warn("filestore: user index: could not remove a session's entry; readers will", "session", hashID(key), "error", err)
	}
}

// userOfFile returns the user of the session file of key, or "" if it has
// none or cannot be read, without quarantining anything (for Delete, which
// removes the file whatever it holds). The caller holds key's lock.
func (s *Store) userOfFile(key string) string {
	var st unix.Stat_t
	b, err := s.readFile(s.fileName(key), &st)
	if err != nil {
		return ""
	}
	var d stored
	if s.decodeFile(key, b, &st, &d) != nil {
		return ""
	}
	return d.rec.User
}

// UserSessions returns the live sessions of user (filesession.UserIndex)
// from the index, without a scan: it reads the user's index file and the
// session files it lists, so its cost is that of the user's sessions. It
// drops the stale entries it meets (see the top of this file). The first
// call on a directory whose index is not complete rebuilds it first, a
// full scan (see RebuildUserIndex). The empty user has no sessions. Under
// HashNames the IDs come from the session files.
func (s *Store) UserSessions(ctx context.Context, user string) ([]filesession.UserSession, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	s.mu.RUnlock()
	if user == "" {
		return nil, nil
	}
	keys, err := s.userKeys(ctx, user)
	if err != nil {
		return nil, err
	}

	var out []filesession.UserSession
	var stale []string
	for _, key := range keys {
		if err := s.begin(ctx, key); err != nil {
			return nil, err
		}
		var ds stored
		err := s.read(ctx, key, false, false, &ds)
		s.mu.RUnlock()
		switch {
		case err == nil && ds.rec.User == user:
			if !ds.rec.Expired(s.opts.Now()) {
				out = append(out, filesession.UserSession{ID: ds.id, Record: ds.rec})
			}
			// An expired one keeps its entry until the reaper removes
			// the file (and then the entry).
		case err == nil, errors.Is(err, filesession.ErrNotFound):
			stale = append(stale, key)
		default:
			return nil, err
		}
	}
	for _, key := range stale {
		s.pruneEntry(ctx, user, key)
	}
	return out, nil
}

// userKeys returns the entries of user's file in a complete index,
// rebuilding the index first if it is not. The marker and the file are
// read through one descriptor of the index directory, so both are of the
// same index even if someone replaces .users meanwhile.
func (s *Store) userKeys(ctx context.Context, user string) ([]string, error) {
	for range 3 {
		if err := s.begin(ctx); err != nil {
			return nil, err
		}
		d, err := s.openUserDir(false)
		switch {
		case errors.Is(err, errNoUserDir):
			s.mu.RUnlock()
			if err := s.ensureUserIndex(ctx); err != nil {
				return nil, err
			}
			continue
		case err != nil:
			s.mu.RUnlock()
			return nil, fmt.Errorf("filestore: user index: %w", err)
		}
		ok, err := s.markerOK(d)
		var keys []string
		if err == nil && ok {
			keys, err = s.readKeys(d, d.fileOf(user))
		}
		d.Close()
		s.mu.RUnlock()
		switch {
		case err != nil:
			return nil, fmt.Errorf("filestore: user index: %w", err)
		case ok:
			return keys, nil
		}
		if err := s.ensureUserIndex(ctx); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("filestore: user index: %s keeps changing", userDirName)
}

// pruneEntry removes the entry key from user's file if, checked under the
// session's lock, the session file is gone or names another user.
func (s *Store) pruneEntry(ctx context.Context, user, key string) {
	if err := s.begin(ctx, key); err != nil {
		return
	}
	defer s.mu.RUnlock()
	p, err := s.lock(ctx, key, "")
	if err != nil {
		return // the next reader tries again
	}
	defer s.unlock(p)
	var d stored
	switch err := s.read(ctx, key, false, true, &d); {
	case err == nil:
		if d.rec.User == user {
			return // written meanwhile
		}
	case errors.Is(err, filesession.ErrNotFound):
		var st unix.Stat_t
		if err := s.fs.Lstat(s.fileName(key), &st); !errors.Is(err, unix.ENOENT) {
			return // there but unreadable now: keep the entry
		}
	default:
		return
	}
	s.indexForget(ctx, user, key)
}

// userIndexComplete reports whether the index has been rebuilt since its
// salt was made: .complete holds the salt.
func (s *Store) userIndexComplete(ctx context.Context) (bool, error) {
	if err := s.begin(ctx); err != nil {
		return false, err
	}
	defer s.mu.RUnlock()
	d, err := s.openUserDir(false)
	if errors.Is(err, errNoUserDir) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("filestore: user index: %w", err)
	}
	defer d.Close()
	ok, err := s.markerOK(d)
	if err != nil {
		return false, fmt.Errorf("filestore: user index: %w", err)
	}
	return ok, nil
}

// markerOK reports whether the index directory d is complete: its marker
// holds its salt.
func (s *Store) markerOK(d *userDir) (bool, error) {
	b, err := s.readIndexFile(d.fs, userDoneName, 256)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return string(bytes.TrimSpace(b)) == hex.EncodeToString(d.salt), nil
}

// ensureUserIndex rebuilds the index if it is not complete.
func (s *Store) ensureUserIndex(ctx context.Context) error {
	ok, err := s.userIndexComplete(ctx)
	if err != nil || ok {
		return err
	}
	s.users.rebuild.Lock()
	defer s.users.rebuild.Unlock()
	// Another goroutine may have rebuilt it while this one waited.
	if ok, err := s.userIndexComplete(ctx); err != nil || ok {
		return err
	}
	s.log.Info("filestore: building the user index from a scan of the session directory", "path", s.opts.Path)
	return s.rebuildUserIndex(ctx)
}

// RebuildUserIndex scans every session file and adds each session that
// has a user to that user's index entry, then marks the index complete.
// UserSessions does this by itself the first time it finds the index
// incomplete (a directory from before the index, or whose .users was
// removed); call RebuildUserIndex to take that scan off the request path,
// at start-up or from an operator tool. It only adds entries, so it is
// safe while the store serves, and from several processes at once; it also
// removes temporary files a crash left in the index directory. Corrupt
// session files met on the way are quarantined, as List would.
func (s *Store) RebuildUserIndex(ctx context.Context) error {
	s.users.rebuild.Lock()
	defer s.users.rebuild.Unlock()
	return s.rebuildUserIndex(ctx)
}

func (s *Store) rebuildUserIndex(ctx context.Context) error {
	// The salt first: the marker names it, and entries added during the
	// scan must land in the files the marker vouches for.
	if err := s.begin(ctx); err != nil {
		return err
	}
	d, err := s.openUserDir(true)
	if err != nil {
		s.mu.RUnlock()
		return fmt.Errorf("filestore: user index: %w", err)
	}
	salt := hex.EncodeToString(d.salt)
	d.Close()
	s.mu.RUnlock()

	pending := map[string][]string{}
	count := 0
	flush := func() error {
		if err := s.begin(ctx); err != nil {
			return err
		}
		defer s.mu.RUnlock()
		d, err := s.openUserDir(true)
		if err != nil {
			return fmt.Errorf("filestore: user index: %w", err)
		}
		defer d.Close()
		if hex.EncodeToString(d.salt) != salt {
			return fmt.Errorf("filestore: user index: %s was replaced during the rebuild", userDirName)
		}
		for user, add := range pending {
			err := s.editKeys(ctx, d, user, true, func(keys []string) []string {
				for _, k := range add {
					if !slices.Contains(keys, k) {
						keys = append(keys, k)
					}
				}
				return keys
			})
			if err != nil {
				return fmt.Errorf("filestore: user index: %w", err)
			}
		}
		clear(pending)
		count = 0
		return nil
	}
	err = s.walk(ctx, func(name string) error {
		key, ok := s.sessionID(name)
		if !ok {
			return nil
		}
		if err := s.begin(ctx, key); err != nil {
			return err
		}
		var ds stored
		err := s.read(ctx, key, false, false, &ds)
		s.mu.RUnlock()
		switch {
		case errors.Is(err, filesession.ErrNotFound):
			return nil
		case err != nil:
			return err
		case ds.rec.User == "":
			return nil
		}
		pending[ds.rec.User] = append(pending[ds.rec.User], key)
		if count++; count >= userFlush {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	d, err = s.openUserDir(true)
	if err != nil {
		return fmt.Errorf("filestore: user index: %w", err)
	}
	defer d.Close()
	s.removeIndexTemps(ctx, d)
	return s.retry(ctx, "", "index", func() error {
		tmp := tempName(userDoneName)
		if err := s.writeIndexTemp(d.fs, tmp, []byte(salt+"\n")); err != nil {
			return err
		}
		if err := d.fs.Rename(tmp, userDoneName); err != nil {
			_ = d.fs.Remove(tmp)
			return err
		}
		return s.syncIndexDir(d.fs)
	})
}

// removeIndexTemps removes the temporary files of the index directory
// older than staleTemp: a user file's under its lock, which its writer
// holds while the file exists, and the salt's and marker's, whose writers
// remove them within a call.
func (s *Store) removeIndexTemps(ctx context.Context, d *userDir) {
	dir, err := d.fs.OpenFile(".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer dir.Close()
	cutoff := s.opts.Now().Add(-staleTemp)
	for {
		names, err := dir.ReadDirNames(dirBatch)
		for _, name := range names {
			final, ok := indexTempFinal(name)
			if !ok {
				continue
			}
			var st unix.Stat_t
			if d.fs.Lstat(name, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || !timeOf(st.Mtim).Before(cutoff) {
				continue
			}
			n := -1
			if final != userSaltName && final != userDoneName {
				if n, err = s.lockUserFile(ctx, final); err != nil {
					continue
				}
			}
			_ = d.fs.Remove(name)
			if n >= 0 {
				s.unlockStripe(n)
			}
		}
		if err != nil {
			if err != io.EOF {
				s.log.Warn("filestore: user index: reading the index directory", "error", err)
			}
			return
		}
	}
}

// indexTempFinal returns the name a temporary file of the index directory
// was to become, if name is one (tempName's pattern).
func indexTempFinal(name string) (string, bool) {
	n := len(name) - len(tempSuffix) - tempHexLen - 1
	if n < 2 || name[0] != '.' || !strings.HasSuffix(name, tempSuffix) || name[n] != '.' {
		return "", false
	}
	for _, c := range []byte(name[n+1 : n+1+tempHexLen]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", false
		}
	}
	return name[1:n], true
}
