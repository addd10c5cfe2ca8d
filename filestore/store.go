package filestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/filesession/filesession"
	"golang.org/x/sys/unix"
)

// ErrClosed is returned by every method of a Store after Close.
var ErrClosed = errors.New("filestore: store is closed")

// Store keeps each session as one JSON file in a directory. It implements
// filesession.Store, Lister, Reaper and TTLer. A Store is safe for
// concurrent use, and several processes on one host may open the same
// directory: per-session locks (see lock.go) keep their writes from losing
// each other's changes.
type Store struct {
	opts Options
	fs   fileSystem
	// root is the real filesystem under fs, whose directory descriptor
	// the liveness probe checks (directory.go); abs is Path made absolute.
	root *osFS
	abs  string
	// gone is set when the probe found that the directory was removed or
	// replaced; the next call reopens Path.
	gone atomic.Bool
	// lockf is the lock file; sems the in-process semaphores of its stripes.
	lockf file
	sems  []chan struct{}
	euid  uint32
	log   *slog.Logger

	// mu is held shared by every operation while it uses the directory or
	// lock descriptors, and exclusively by Close, so that Close never
	// closes a descriptor under a running call (whose number the kernel
	// could hand to an unrelated file).
	mu     sync.RWMutex
	closed bool

	// hints remembers expiries this process saw, for Touch (see hints.go).
	hints hintCache
	// users is the per-user index's state (userindex.go).
	users userIndexState

	stopReaper context.CancelFunc
	reaperDone chan struct{}
}

var (
	_ filesession.Store  = (*Store)(nil)
	_ filesession.Lister = (*Store)(nil)
	_ filesession.Reaper = (*Store)(nil)
	_ filesession.TTLer  = (*Store)(nil)
)

// Open opens (creating it if needed) the session directory opts.Path and
// returns a Store on it, with the background reaper started if
// opts.ReapInterval > 0. It fails if the directory is a symlink, not a
// directory, not owned by the effective user, or writable by group or
// others, or if the lock file cannot be opened. Close the Store when done.
func Open(opts Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	euid := uint32(os.Geteuid())

	fi, err := os.Lstat(o.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(o.Path, 0o700); err != nil {
			return nil, fmt.Errorf("filestore: create session directory: %w", err)
		}
		// MkdirAll applies the umask; make the directory exactly 0700.
		if err := os.Chmod(o.Path, 0o700); err != nil {
			return nil, fmt.Errorf("filestore: create session directory: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("filestore: session directory: %w", err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, fmt.Errorf("filestore: session directory %s is a symlink; give the path of the directory itself", o.Path)
	case !fi.IsDir():
		return nil, fmt.Errorf("filestore: session directory %s is not a directory", o.Path)
	}

	abs, err := filepath.Abs(o.Path)
	if err != nil {
		return nil, fmt.Errorf("filestore: session directory: %w", err)
	}
	osfs, err := openOSFS(o.Path)
	if err != nil {
		return nil, fmt.Errorf("filestore: open session directory %s: %w", o.Path, err)
	}
	var fsys fileSystem = osfs
	if o.wrapFS != nil {
		fsys = o.wrapFS(fsys)
	}
	s := &Store{opts: o, fs: fsys, root: osfs, abs: abs, euid: euid, log: o.Logger}
	if err := s.openFiles(); err != nil {
		s.closeFiles()
		return nil, err
	}
	var sfs unix.Statfs_t
	if unix.Fstatfs(osfs.dirfd, &sfs) == nil && remoteFS(sfs.Type) {
		s.log.Warn("filestore: the session directory is on a network or FUSE filesystem; "+
			"renames and locks are only promised on a local filesystem", "path", o.Path)
	}

	s.sems = make([]chan struct{}, stripes+userStripes) // sessions', then the user index's
	for i := range s.sems {
		s.sems[i] = make(chan struct{}, 1)
	}
	if o.ReapInterval > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopReaper, s.reaperDone = cancel, make(chan struct{})
		go s.reapLoop(ctx)
	}
	return s, nil
}

// openFiles checks the directory and opens the descriptors the store keeps.
func (s *Store) openFiles() error {
	var st unix.Stat_t
	if err := s.fs.Lstat(".", &st); err != nil {
		return fmt.Errorf("filestore: stat session directory %s: %w", s.opts.Path, err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("filestore: session directory %s is not a directory", s.opts.Path)
	case st.Uid != s.euid:
		return fmt.Errorf("filestore: session directory %s is owned by uid %d, not by this process's uid %d", s.opts.Path, st.Uid, s.euid)
	case st.Mode&0o022 != 0:
		return fmt.Errorf("filestore: session directory %s has mode %#o: it must not be writable by group or others (chmod 700 it)", s.opts.Path, st.Mode&0o777)
	}
	var err error
	if s.lockf, err = s.fs.OpenFile(lockFileName, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600); err != nil {
		return fmt.Errorf("filestore: open lock file %s: %w", lockFileName, err)
	}
	if err := s.lockf.Stat(&st); err != nil {
		return fmt.Errorf("filestore: stat lock file: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != s.euid {
		return fmt.Errorf("filestore: %s in %s is not a regular file owned by this process's user", lockFileName, s.opts.Path)
	}
	// Fail now, not at the first write, on a filesystem without OFD locks.
	// EAGAIN means another process holds the byte: locks work.
	switch err := s.lockf.Lock(unix.F_WRLCK, 0); {
	case err == nil:
		if err := s.lockf.Lock(unix.F_UNLCK, 0); err != nil {
			return fmt.Errorf("filestore: unlock %s: %w", lockFileName, err)
		}
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EACCES):
	default:
		return fmt.Errorf("filestore: the filesystem of %s does not support open file description locks: %w", s.opts.Path, err)
	}
	return nil
}

func (s *Store) closeFiles() error {
	var errs []error
	if s.lockf != nil {
		errs = append(errs, s.lockf.Close())
	}
	errs = append(errs, s.fs.Close())
	return errors.Join(errs...)
}

// remoteFS reports filesystems whose rename and lock semantics are weaker
// than a local disk's.
func remoteFS(magic int64) bool {
	switch uint32(magic) {
	case unix.NFS_SUPER_MAGIC, unix.SMB_SUPER_MAGIC, unix.SMB2_SUPER_MAGIC, unix.CIFS_SUPER_MAGIC, unix.FUSE_SUPER_MAGIC,
		unix.AFS_SUPER_MAGIC, unix.CODA_SUPER_MAGIC, unix.V9FS_MAGIC:
		return true
	}
	return false
}

// Close stops the background reaper and waits for it, waits for running
// calls to finish, and releases the store's descriptors. Later calls fail
// with ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	if s.stopReaper != nil {
		s.stopReaper()
		<-s.reaperDone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.closeFiles()
}

// TTL returns the idle timeout of records that carry none (Options.TTL).
func (s *Store) TTL() time.Duration { return s.opts.TTL }

// begin is how every public method starts: the ID check, before anything
// else touches the filesystem; the context check; and the shared hold on
// the store's descriptors, which the caller releases with s.mu.RUnlock.
func (s *Store) begin(ctx context.Context, ids ...string) error {
	for _, id := range ids {
		if !filesession.ValidID(id, s.opts.IDLength) {
			return filesession.ErrInvalidID
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if s.gone.Load() {
		if err := s.reopenDir(); err != nil {
			return err
		}
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// fileName is the session file of id, relative to the directory.
func (s *Store) fileName(id string) string { return s.opts.Prefix + id + s.opts.Extension }

// sessionID returns the ID whose session file is name, if it is one: the
// prefix, exactly IDLength characters of the ID alphabet, the extension.
// Temporary, quarantined and lock files never match.
func (s *Store) sessionID(name string) (string, bool) {
	p, e := s.opts.Prefix, s.opts.Extension
	if len(name) != len(p)+s.opts.IDLength+len(e) || name[:len(p)] != p || name[len(name)-len(e):] != e {
		return "", false
	}
	id := name[len(p) : len(name)-len(e)]
	return id, filesession.ValidID(id, s.opts.IDLength)
}

// tempID returns the ID of the session whose temporary file name is, if
// it is one of this store's temporary files.
func (s *Store) tempID(name string) (string, bool) {
	n := len(name) - len(tempSuffix) - tempHexLen - 1
	if n < 1 || name[0] != '.' || name[len(name)-len(tempSuffix):] != tempSuffix || name[n] != '.' {
		return "", false
	}
	for _, c := range []byte(name[n+1 : n+1+tempHexLen]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", false
		}
	}
	return s.sessionID(name[1:n])
}

// hashID is how a session appears in logs: the first 12 hex digits of a
// SHA-256 of the ID, enough to correlate log lines, useless to hijack the
// session with.
func hashID(id string) string {
	sum := sha256.Sum256([]byte("filesession log id\x00" + id))
	return hex.EncodeToString(sum[:6])
}

// Errors that say a name in the directory is not a session we may read;
// read reports them as "not found", with a warning.
var (
	errSymlink    = errors.New("is a symlink")
	errNotRegular = errors.New("is not a regular file")
	errForeign    = errors.New("is not owned by this process's user")
	errWritable   = errors.New("is writable by group or others")
	errOversize   = errors.New("is larger than MaxSize")
)

// readFile reads the session file name into a new buffer and fills st with
// its fstat.
//
// The open flags: O_NOFOLLOW, so a symlink planted at a session's name is
// reported (ELOOP), not followed out of the directory; O_NONBLOCK, so a
// FIFO there does not hang the open waiting for a writer (fstat then
// rejects it before any read); O_CLOEXEC, so children do not inherit
// session files; and O_NOATIME, so that reading does not move the access
// time, which this store uses as the expiry hint (see Touch). O_NOATIME is
// only allowed to the file's owner, which a session file must be anyway:
// EPERM means someone else's file (root may always use it).
func (s *Store) readFile(name string, st *unix.Stat_t) ([]byte, error) {
	f, err := s.fs.OpenFile(name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOATIME, 0)
	switch {
	case err == nil:
	case errors.Is(err, unix.ELOOP):
		return nil, errSymlink
	case errors.Is(err, unix.EPERM):
		return nil, errForeign
	case errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENODEV):
		return nil, errNotRegular // a socket or a device without a driver
	default:
		return nil, err
	}
	defer f.Close()
	if err := f.Stat(st); err != nil {
		return nil, err
	}
	if err := s.checkFile(st); err != nil {
		return nil, err
	}
	if st.Size > int64(s.opts.MaxSize) {
		return nil, errOversize
	}
	// The size from fstat is trusted for the buffer: session files are
	// replaced by rename, never grown in place, and a file that changed
	// under us anyway fails JSON validation.
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

// checkFile says whether st is a file the store may use as a session: a
// regular file (not a symlink, FIFO, socket, device or directory), owned by
// the effective user, and not writable by group or others, since anyone who
// can write it can forge a session. Readable by others is accepted, as
// session-file-store writes 0644 files.
func (s *Store) checkFile(st *unix.Stat_t) error {
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return errSymlink
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return errNotRegular
	case st.Uid != s.euid:
		return errForeign
	case st.Mode&0o022 != 0:
		return errWritable
	}
	return nil
}

// read reads and decodes the session file of id into d, keeping its
// members for a rewrite if keep is set. It returns ErrNotFound if there is
// no such file or it is not one the store may read (a warning is logged
// for those), and an error matching ErrCorrupt (and ErrNotFound) if the
// file does not decode, after moving it to <name>.corrupt. locked says the
// caller holds id's lock; quarantine needs it, so read takes it otherwise.
// Expiry is the caller's business.
func (s *Store) read(ctx context.Context, id string, keep, locked bool, d *stored) error {
	name := s.fileName(id)
	var st unix.Stat_t
	var b []byte
	err := s.retry(ctx, id, "read", func() error {
		var err error
		b, err = s.readFile(name, &st)
		return err
	})
	switch {
	case err == nil:
		// Decrypted and its name checked first (encrypt.go): a key or name
		// problem is "not found", logged there, and never quarantined.
		err = s.readSealed(id, b, &st, keep, d)
		if err == nil || errors.Is(err, filesession.ErrNotFound) {
			return err
		}
	case errors.Is(err, unix.ENOENT):
		// The common case of a stale cookie: no retry, no log line. But
		// a session directory that vanished is not "no session".
		return s.checkDir(filesession.ErrNotFound)
	case errors.Is(err, errSymlink), errors.Is(err, errNotRegular), errors.Is(err, errForeign), errors.Is(err, errWritable):
		s.log.Warn("filestore: ignoring a session file that "+err.Error(), "session", hashID(id))
		return filesession.ErrNotFound
	case errors.Is(err, errOversize):
	default:
		return fmt.Errorf("filestore: read session %s: %w", hashID(id), err)
	}

	// Corrupt (or oversized). Quarantine it under the session's lock, after
	// reading it again under that lock: a writer may have replaced it
	// meanwhile, and then the new version is the answer.
	if !locked {
		p, lerr := s.lock(ctx, id, "")
		if lerr != nil {
			s.log.Warn("filestore: corrupt session file not quarantined: could not lock it", "session", hashID(id), "error", lerr)
			return fmt.Errorf("filestore: session %s: %w: %v", hashID(id), filesession.ErrCorrupt, err)
		}
		defer s.unlock(p)
		return s.read(ctx, id, keep, true, d)
	}
	s.quarantine(id, name, &st, err)
	return fmt.Errorf("filestore: session %s: %w: %v", hashID(id), filesession.ErrCorrupt, err)
}

// quarantine moves the corrupt file name aside to <name>.corrupt, where an
// operator can inspect it, if it is still the file that was read (st). It
// never deletes anything. The caller holds the session's lock.
func (s *Store) quarantine(id, name string, st *unix.Stat_t, cause error) {
	var now unix.Stat_t
	if err := s.fs.Lstat(name, &now); err != nil || now.Ino != st.Ino || now.Dev != st.Dev {
		return // gone or replaced since: nothing of ours to move
	}
	s.hints.forget(id)
	err := s.fs.Rename(name, quarantineName(name))
	if err == nil {
		err = s.syncDir()
	}
	if err != nil {
		s.log.Error("filestore: corrupt session file could not be quarantined", "session", hashID(id), "cause", cause, "error", err)
		return
	}
	s.log.Warn("filestore: corrupt session file quarantined", "session", hashID(id), "cause", cause, "file", quarantineName(s.opts.Prefix+"<id>"+s.opts.Extension))
	if ev := s.opts.Events; ev != nil {
		ev.Quarantined(cause)
	}
}

func timeOf(ts unix.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec) }

// Load returns the session stored under id. It takes no lock: files are
// replaced by rename, so a read sees one complete version. An expired
// session is not found (its file is left for the reaper); a corrupt one is
// quarantined and reported as ErrCorrupt.
func (s *Store) Load(ctx context.Context, id string) (filesession.Record, error) {
	if err := s.begin(ctx, id); err != nil {
		return filesession.Record{}, err
	}
	defer s.mu.RUnlock()
	id = s.nameKey(id) // from here on, what names the file (hashnames.go)
	var d stored
	if err := s.read(ctx, id, false, false, &d); err != nil {
		return filesession.Record{}, err
	}
	exp := s.expiresAt(&d.rec)
	if !s.opts.Now().Before(exp) {
		return filesession.Record{}, filesession.ErrNotFound
	}
	s.hints.put(id, exp)
	return d.rec, nil
}

// Touch records that the session was used at at, without rewriting it: it
// sets the file's modification time to at (Load takes the later of it and
// the stored __lastAccess) and its access time to expires. Under
// Options.NodeCompatible it rewrites __lastAccess instead (see
// touchContent), since Node reads no file times.
//
// Times on disk: the modification time is the last access, and the access
// time is an expiry hint, the ExpiresAt the last write or touch computed.
// Reads never move the access time into the future (this store opens with
// O_NOATIME; under relatime the kernel only updates an access time older
// than the modification or change time, which a future one is not), so a
// future access time means "cannot have expired yet". A tool, a backup or
// strictatime can only move it earlier, to the time of their read, and that
// costs no more than a read: the reaper, and Touch, then read the file and
// decide from its contents.
//
// Touch needs no lock: utimensat cannot create a file, so it cannot bring
// back a deleted, renewed or reaped session (ENOENT is ErrNotFound). What
// it must not do is extend a session that has expired but that the reaper
// has not removed yet. So it first makes sure the session is live: from the
// expiry this process last saw for it (its Load, write or Touch; see
// hints.go), which makes the usual Load-then-Touch one system call;
// otherwise from the file's access time (one lstat); and only if that is
// not in the future, from the file's contents. A Touch that races a Save of
// the same session may be lost (the Save's rename replaces the inode Touch
// set), which costs at most that one access time: the Save sets its own.
func (s *Store) Touch(ctx context.Context, id string, at, expires time.Time) error {
	if s.opts.NodeCompatible {
		return s.touchContent(ctx, id, at)
	}
	if err := s.begin(ctx, id); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	id = s.nameKey(id) // from here on, what names the file (hashnames.go)
	name := s.fileName(id)
	if now := s.opts.Now(); !s.hints.liveAt(id, now) {
		if err := s.touchable(ctx, id, name, now); err != nil {
			return err
		}
	}
	err := s.retry(ctx, id, "touch", func() error { return s.fs.Utimes(name, expires, at) })
	switch {
	case errors.Is(err, unix.ENOENT):
		return s.checkDir(filesession.ErrNotFound)
	case err != nil:
		return fmt.Errorf("filestore: touch session %s: %w", hashID(id), err)
	}
	s.hints.put(id, expires)
	return nil
}

// touchable checks, for a Touch that has no remembered expiry, that the
// session file exists, is one the store may use, and has not expired: from
// its access time if that is in the future, from its contents otherwise.
func (s *Store) touchable(ctx context.Context, id, name string, now time.Time) error {
	var st unix.Stat_t
	err := s.retry(ctx, id, "touch", func() error { return s.fs.Lstat(name, &st) })
	switch {
	case errors.Is(err, unix.ENOENT):
		return s.checkDir(filesession.ErrNotFound)
	case err != nil:
		return fmt.Errorf("filestore: touch session %s: %w", hashID(id), err)
	}
	if err := s.checkFile(&st); err != nil {
		// The same rules as read's: never touch what read would ignore.
		s.log.Warn("filestore: ignoring a session file that "+err.Error(), "session", hashID(id))
		return filesession.ErrNotFound
	}
	if timeOf(st.Atim).After(now) {
		return nil
	}
	var d stored
	if err := s.read(ctx, id, false, false, &d); err != nil {
		return err
	}
	if d.rec.Expired(now) {
		return filesession.ErrNotFound
	}
	return nil
}

// Create stores a new session under id. It fails with ErrExists if a live
// session has that ID; an expired one (not yet reaped) is replaced. A zero
// Created is set to the store's Now, a zero LastAccess to Created; a zero
// IdleTimeout is stored as originalMaxAge null, meaning the store's TTL.
// Values must be valid JSON and are stored compacted, otherwise byte for
// byte, in key order.
func (s *Store) Create(ctx context.Context, id string, r filesession.Record) error {
	if err := s.begin(ctx, id); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	id, sid := s.nameKey(id), id // the file's name key, and the ID to write into it
	if r.Created.IsZero() {
		r.Created = s.opts.Now()
	}
	if r.LastAccess.IsZero() {
		r.LastAccess = r.Created
	}
	data, err := s.encode(sid, nil, &r, false)
	if err != nil {
		return err
	}
	p, err := s.lock(ctx, id, "")
	if err != nil {
		return err
	}
	defer s.unlock(p)
	if err := s.ensureFree(ctx, id); err != nil {
		return err
	}
	// Indexed before the file names the user: see userindex.go.
	if err := s.indexAdd(ctx, r.User, id); err != nil {
		return err
	}
	return s.write(ctx, id, data, &r, false)
}

// write stores data as id's file, with the times of record r, and
// remembers its expiry. replace says the file holds the session's current
// version, which a failed write leaves in place (a failed create leaves no
// file).
func (s *Store) write(ctx context.Context, id string, data []byte, r *filesession.Record, replace bool) error {
	exp := s.expiresAt(r)
	if err := s.writeFile(ctx, id, s.fileName(id), data, exp, r.LastAccess, replace); err != nil {
		s.hints.forget(id)
		return err
	}
	s.hints.put(id, exp)
	return nil
}

// encode is encodeRecord, then sealFile for session id (its __id under
// HashNames, encryption under EncryptionKeys; see encrypt.go), with the
// MaxSize check on what is written. id is the session ID, not its name key.
func (s *Store) encode(id string, old *stored, n *filesession.Record, forceCookie bool) ([]byte, error) {
	data, err := s.encodeRecord(make([]byte, 0, 512), s.withoutID(old), n, forceCookie)
	if err != nil {
		return nil, err
	}
	if data, err = s.sealFile(id, data); err != nil {
		return nil, err
	}
	if len(data) > s.opts.MaxSize {
		return nil, fmt.Errorf("filestore: %w: %d bytes encoded, MaxSize is %d", filesession.ErrTooLarge, len(data), s.opts.MaxSize)
	}
	return data, nil
}

// ensureFree returns ErrExists if id holds a live session. An expired
// session, a corrupt file (which read quarantines) or something that is
// not a session file at all may be replaced. The caller holds id's lock.
func (s *Store) ensureFree(ctx context.Context, id string) error {
	var st unix.Stat_t
	err := s.retry(ctx, id, "stat", func() error { return s.fs.Lstat(s.fileName(id), &st) })
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case err != nil:
		return fmt.Errorf("filestore: stat session %s: %w", hashID(id), err)
	}
	var d stored
	switch err := s.read(ctx, id, false, true, &d); {
	case errors.Is(err, filesession.ErrNotFound):
		return nil
	case err != nil:
		return err
	case d.rec.Expired(s.opts.Now()):
		return nil
	}
	return fmt.Errorf("filestore: session %s: %w", hashID(id), filesession.ErrExists)
}

// Save applies c to the latest stored version of the session, under its
// lock, and rewrites the file keeping the bytes of everything c does not
// change. It returns ErrNotFound if the session is gone or expired, and
// creates nothing then.
func (s *Store) Save(ctx context.Context, id string, c filesession.Change) error {
	return s.modify(ctx, id, func(d *stored) (filesession.Record, bool, error) {
		n := d.rec
		c.Apply(&n)
		return n, c.Cookie != nil, nil
	})
}

// Update runs fn on a copy of the latest stored version of the session,
// under its lock, and stores what fn left if it returns nil. If fn returns
// an error, nothing is stored and Update returns it. It returns ErrNotFound
// (without calling fn) if the session is gone or expired.
func (s *Store) Update(ctx context.Context, id string, fn func(*filesession.Record) error) error {
	return s.modify(ctx, id, func(d *stored) (filesession.Record, bool, error) {
		n := d.rec.Clone()
		if err := fn(&n); err != nil {
			return n, false, err
		}
		return n, false, nil
	})
}

// modify is Save and Update: lock, read, check expiry, change, write.
func (s *Store) modify(ctx context.Context, id string, change func(*stored) (filesession.Record, bool, error)) error {
	if err := s.begin(ctx, id); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	id, sid := s.nameKey(id), id // the file's name key, and the ID to write into it
	p, err := s.lock(ctx, id, "")
	if err != nil {
		return err
	}
	defer s.unlock(p)
	var d stored
	if err := s.read(ctx, id, true, true, &d); err != nil {
		return err
	}
	if d.rec.Expired(s.opts.Now()) {
		return filesession.ErrNotFound
	}
	n, forceCookie, err := change(&d)
	if err != nil {
		return err
	}
	data, err := s.encode(sid, &d, &n, forceCookie)
	if err != nil {
		return err
	}
	// The user index is a superset of the truth (userindex.go): the new
	// user's entry before the write, the old one's removed after it.
	if n.User != d.rec.User {
		if err := s.indexAdd(ctx, n.User, id); err != nil {
			return err
		}
	}
	if err := s.write(ctx, id, data, &n, true); err != nil {
		return err
	}
	if n.User != d.rec.User {
		s.indexForget(ctx, d.rec.User, id)
	}
	return nil
}

// Renew moves the session from oldID to newID with c applied, holding both
// sessions' locks: it writes the new file, then removes the old one, and
// makes both durable with one directory fsync (per Sync). For an instant
// both exist; at no point neither. If it fails, neither change remains: the
// old ID is as it was and the new one does not exist. It returns
// ErrNotFound if oldID is gone or expired, and ErrExists if newID holds a
// live session (or equals oldID).
func (s *Store) Renew(ctx context.Context, oldID, newID string, c filesession.Change) error {
	if err := s.begin(ctx, oldID, newID); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	// The files' name keys, and the new ID to write into the new file.
	oldID, newID, newSID := s.nameKey(oldID), s.nameKey(newID), newID
	p, err := s.lock(ctx, oldID, newID)
	if err != nil {
		return err
	}
	defer s.unlock(p)
	var d stored
	if err := s.read(ctx, oldID, true, true, &d); err != nil {
		return err
	}
	if d.rec.Expired(s.opts.Now()) {
		return filesession.ErrNotFound
	}
	if oldID == newID {
		return fmt.Errorf("filestore: renew session %s onto itself: %w", hashID(oldID), filesession.ErrExists)
	}
	if err := s.ensureFree(ctx, newID); err != nil {
		return err
	}
	n := d.rec
	c.Apply(&n)
	data, err := s.encode(newSID, &d, &n, c.Cookie != nil)
	if err != nil {
		return err
	}
	// The new ID joins its user's index entry before its file exists, the
	// old ID leaves after its file is gone (userindex.go).
	if err := s.indexAdd(ctx, n.User, newID); err != nil {
		return err
	}
	// One step, retried as a whole: write the new file, set the old one
	// aside, then one directory fsync makes both durable. If anything
	// fails, both are undone, so the client, told that the renewal failed,
	// still has its old session, and no copy under the new ID is left.
	oldName, newName := s.fileName(oldID), s.fileName(newID)
	exp := s.expiresAt(&n)
	s.hints.forget(oldID)
	err = s.retry(ctx, oldID, "renew", func() error {
		dir, err := s.openDir()
		if err != nil {
			return err
		}
		created, err := s.place(newName, data, exp, n.LastAccess, false)
		if err != nil {
			closeDir(dir)
			return err
		}
		old, err := s.setAside(oldName)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			// The old ID still exists: undo the new one rather than
			// leave two live copies.
			closeDir(dir)
			s.rollback(ctx, created)
			return err
		}
		if err := syncClose(dir); err != nil {
			s.rollback(ctx, created, old)
			return err
		}
		s.discard(ctx, old)
		return nil
	})
	if err != nil {
		s.hints.forget(newID)
		return fmt.Errorf("filestore: renew session %s: %w", hashID(oldID), err)
	}
	s.hints.put(newID, exp)
	s.indexForget(ctx, d.rec.User, oldID)
	return nil
}

// Delete removes the session's file, under its lock. Deleting a session
// that does not exist is not an error. If it fails, the session is still
// there (under SyncFull the file is renamed aside until the directory fsync
// has succeeded, and renamed back if it failed).
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.begin(ctx, id); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	id = s.nameKey(id) // from here on, what names the file (hashnames.go)
	p, err := s.lock(ctx, id, "")
	if err != nil {
		return err
	}
	defer s.unlock(p)
	s.hints.forget(id)
	name := s.fileName(id)
	user := s.userOfFile(id) // its index entry goes after the file (userindex.go)
	err = s.retry(ctx, id, "remove", func() error {
		dir, err := s.openDir()
		if err != nil {
			return err
		}
		aside, err := s.setAside(name)
		if err != nil {
			closeDir(dir)
			return err
		}
		if err := syncClose(dir); err != nil {
			// Not durably deleted: bring it back, so that the failure the
			// client is told of is the whole truth.
			s.rollback(ctx, aside)
			return err
		}
		s.discard(ctx, aside)
		return nil
	})
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.EISDIR):
		// Not a session, and not ours to remove (see setAside).
		s.log.Warn("filestore: ignoring a directory at a session file's name", "session", hashID(id))
		return nil
	case err != nil:
		return fmt.Errorf("filestore: delete session %s: %w", hashID(id), err)
	}
	s.indexForget(ctx, user, id)
	return nil
}
