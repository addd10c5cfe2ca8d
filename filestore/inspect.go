package filestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/filesession/filesession"
	"golang.org/x/sys/unix"
)

// This file is the store's inspection API for operator tools (the
// filesession command): a read-only, streaming classification of every
// entry of the session directory, and the few targeted repairs an fsck
// needs. It reuses the store's own name parsing (sessionID, tempID), file
// checks (checkFile, readFile), decoding (decode) and expiry rule
// (Record.Expired, as the reaper applies it), so that what a tool reports is
// what the store would do.

// Kind says what a directory entry is to the store.
type Kind int

const (
	// KindLive is a session file that is not expired.
	KindLive Kind = iota + 1
	// KindExpired is a session file whose session has expired and that the
	// reaper has not removed yet.
	KindExpired
	// KindCorrupt is a session file that does not decode, or is larger
	// than MaxSize. Load and the reaper quarantine such files.
	KindCorrupt
	// KindUnsafe is something at a session file's name that the store
	// refuses to use as a session: a symlink, a FIFO, a directory or other
	// non-regular file, a file owned by another user, or one writable by
	// group or others (which anyone could have forged). Entry.Err says
	// which (ErrSymlink, ErrNotRegular, ErrForeignOwner, ErrWritable).
	KindUnsafe
	// KindUnreadable is a session file that could not be examined (an I/O
	// or permission error); Entry.Err has the error.
	KindUnreadable
	// KindTemp is one of the store's temporary files: a write in progress,
	// or one a crash left behind (Entry.Stale).
	KindTemp
	// KindQuarantined is a corrupt file the store moved aside to
	// <name>.corrupt for an operator to inspect.
	KindQuarantined
	// KindLock is the store's lock file, .filesession.lock.
	KindLock
	// KindForeign is anything else: not a name this store ever makes.
	KindForeign
)

// String returns the kind's name in lower case ("live", "expired", ...).
func (k Kind) String() string {
	switch k {
	case KindLive:
		return "live"
	case KindExpired:
		return "expired"
	case KindCorrupt:
		return "corrupt"
	case KindUnsafe:
		return "unsafe"
	case KindUnreadable:
		return "unreadable"
	case KindTemp:
		return "temp"
	case KindQuarantined:
		return "quarantined"
	case KindLock:
		return "lock"
	case KindForeign:
		return "foreign"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ReapAction is what Reap would do with an entry if it examined it now.
type ReapAction int

const (
	// ReapKeep means the reaper leaves the entry alone.
	ReapKeep ReapAction = iota
	// ReapRemove means the reaper deletes it: an expired session, or a
	// stale temporary file.
	ReapRemove
	// ReapQuarantine means the reaper would read it, fail to decode it, and
	// move it to <name>.corrupt.
	ReapQuarantine
)

// String returns "keep", "remove" or "quarantine".
func (a ReapAction) String() string {
	switch a {
	case ReapKeep:
		return "keep"
	case ReapRemove:
		return "remove"
	case ReapQuarantine:
		return "quarantine"
	}
	return fmt.Sprintf("ReapAction(%d)", int(a))
}

// Reasons for KindUnsafe and KindCorrupt entries, in Entry.Err; test with
// errors.Is.
var (
	// ErrSymlink: a symlink is where a session file should be. The store
	// never follows it.
	ErrSymlink = errSymlink
	// ErrNotRegular: a directory, FIFO, socket or device is where a
	// session file should be.
	ErrNotRegular = errNotRegular
	// ErrForeignOwner: the file belongs to another user than the store's.
	ErrForeignOwner = errForeign
	// ErrWritable: the file is writable by group or others, so its contents
	// cannot be trusted.
	ErrWritable = errWritable
	// ErrOversize: the file is larger than Options.MaxSize (KindCorrupt).
	ErrOversize = errOversize
	// ErrSyntax: the file is not a JSON object (KindCorrupt).
	ErrSyntax = errSyntax
)

// StaleTempAge is how old a temporary file must be (by its modification
// time and the store's clock) before the reaper removes it as left behind by
// a crash.
const StaleTempAge = staleTemp

// Entry is one directory entry as Scan or Inspect classified it.
type Entry struct {
	// Name is the entry's name in the session directory.
	Name string
	// Kind says what the entry is.
	Kind Kind
	// ID is the session the entry belongs to: set for session files
	// (whatever their state), temporary files and quarantined files. Under
	// Options.HashNames names carry no ID, so it is set only for a session
	// file that was read (from its __id member) and by Inspect.
	ID string

	// Type holds the entry's file type bits (0 for a regular file,
	// fs.ModeSymlink, fs.ModeDir, fs.ModeNamedPipe, ...), and Perm its
	// permission bits. UID is its owner, Size its size in bytes.
	Type fs.FileMode
	Perm fs.FileMode
	UID  uint32
	Size int64
	// ModTime is the modification time; for a session file it is the last
	// access as far as the file's times say (Touch moves it).
	ModTime time.Time
	// AccessTime is the access time; for a session file it is the expiry
	// hint that writes and Touch leave.
	AccessTime time.Time

	// Read reports whether the file's contents were read and decoded.
	Read bool
	// Record is the decoded session, when Read is set and Kind is KindLive
	// or KindExpired. Its Values alias a buffer owned by the entry.
	Record filesession.Record
	// ExpiresAt is when a live or expired session expires: computed from
	// Record when Read, otherwise the expiry hint (AccessTime).
	ExpiresAt time.Time
	// Err says why a KindCorrupt, KindUnsafe or KindUnreadable entry is
	// so; nil for other kinds.
	Err error
	// Stale reports, for a KindTemp entry, that it is older than
	// StaleTempAge, so the reaper removes it.
	Stale bool
	// Reap is what Reap would do with the entry if it examined it now,
	// by the reaper's own rules: it never opens a session file whose
	// expiry hint is in the future, so such a file is kept even if its
	// contents say it has expired (which ReadAll may reveal).
	Reap ReapAction
}

// ScanOptions configure Scan.
type ScanOptions struct {
	// ReadAll makes Scan read and decode every session file. By default
	// (false) a session file whose expiry hint (access time) is in the
	// future is classified KindLive from one lstat, without opening it,
	// which is the rule the reaper uses to skip it; only files whose hint
	// has passed are read. ReadAll is for tools that need each session's
	// values (listing users) or that must find every corrupt file (fsck).
	ReadAll bool
	// Workers is how many goroutines examine entries concurrently. Zero or
	// negative means GOMAXPROCS. Examining an entry is a system call or
	// four, so on a directory of a million files the time goes into
	// syscalls, and workers let them overlap with reading the directory.
	Workers int
}

// scanBatch is how many names a Scan worker takes at a time, so that
// handing names over costs nothing next to examining them.
const scanBatch = dirBatch

// Scan calls fn for every entry of the session directory, classified as
// Kind, with what Reap would do with it. It never changes anything: files
// are opened read-only and with O_NOATIME, so not even an expiry hint
// moves, and corrupt files are reported, not quarantined. Symlinks are
// never followed.
//
// Scan streams: memory does not grow with the number of entries. Entries
// are examined by opts.Workers goroutines, so fn sees them in no particular
// order; fn itself is called from Scan's goroutine, one entry at a time,
// and may call the store (Delete, Quarantine). The *Entry is valid only
// during the call. An entry created or removed while Scan runs may or may
// not be seen. Errors with single entries are reported in them (KindUnreadable)
// and the scan goes on; Scan stops at the first error of fn, of reading the
// directory, or of ctx, and returns it.
func (s *Store) Scan(ctx context.Context, opts ScanOptions, fn func(*Entry) error) error {
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	batches := make(chan []string, workers)
	results := make(chan []Entry, workers)
	var walkErr error
	go func() {
		defer close(batches)
		batch := make([]string, 0, scanBatch)
		send := func() bool {
			select {
			case batches <- batch:
				batch = make([]string, 0, scanBatch)
				return true
			case <-ctx.Done():
				return false
			}
		}
		walkErr = s.walk(ctx, func(name string) error {
			batch = append(batch, name)
			if len(batch) == scanBatch && !send() {
				return fmt.Errorf("filestore: %w", ctx.Err())
			}
			return nil
		})
		if walkErr == nil && len(batch) > 0 {
			send()
		}
	}()

	var wg sync.WaitGroup
	workErr := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for names := range batches {
				if err := s.begin(ctx); err != nil {
					workErr[w] = err
					cancel()
					continue // drain, so the walker is not left blocked
				}
				entries := make([]Entry, 0, len(names))
				for _, name := range names {
					var e Entry
					if s.classify(name, opts.ReadAll, &e) {
						entries = append(entries, e)
					}
				}
				s.mu.RUnlock()
				select {
				case results <- entries:
				case <-ctx.Done():
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	var fnErr error
	for entries := range results {
		for i := 0; fnErr == nil && i < len(entries); i++ {
			if err := fn(&entries[i]); err != nil {
				fnErr = err
				cancel()
			}
		}
	}
	// results is closed: every worker has returned, so has the walker
	// (batches was closed before the workers could finish).
	if fnErr != nil {
		return fnErr
	}
	if walkErr != nil {
		return walkErr
	}
	for _, err := range workErr {
		if err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	return nil
}

// Inspect classifies the session file of id as Scan does with ReadAll. It
// returns an error matching filesession.ErrInvalidID for an invalid ID and
// filesession.ErrNotFound if there is no entry at that name. Like Scan it
// changes nothing: a corrupt file is reported, not quarantined, and an
// expired session is reported, not hidden.
func (s *Store) Inspect(ctx context.Context, id string) (Entry, error) {
	if err := s.begin(ctx, id); err != nil {
		return Entry{}, err
	}
	defer s.mu.RUnlock()
	id, sid := s.nameKey(id), id // the file's name key (hashnames.go), and the ID
	var e Entry
	if !s.classify(s.fileName(id), true, &e) {
		return Entry{}, fmt.Errorf("filestore: session %s: %w", hashID(id), filesession.ErrNotFound)
	}
	e.ID = sid
	return e, nil
}

// classify fills e for the directory entry name, reading a session file if
// readAll is set or its expiry hint has passed. It returns false if the
// entry is gone. The caller holds s.mu shared.
func (s *Store) classify(name string, readAll bool, e *Entry) bool {
	*e = Entry{Name: name}
	now := s.opts.Now()
	var st unix.Stat_t
	if id, ok := s.sessionID(name); ok {
		e.ID = s.idOfName(id) // "" under HashNames until the file is read
		if !readAll {
			if err := s.fs.Lstat(name, &st); err != nil {
				return s.unreadable(e, err)
			}
			e.setStat(&st)
			if err := s.checkFile(&st); err != nil {
				e.Kind, e.Err = KindUnsafe, err
				return true
			}
			if e.AccessTime.After(now) {
				// The reaper's rule: a hint in the future means the session
				// cannot have expired, and the file is not opened.
				e.Kind, e.ExpiresAt = KindLive, e.AccessTime
				return true
			}
		}
		b, err := s.readFile(name, &st)
		switch {
		case err == nil:
			e.setStat(&st)
		case errors.Is(err, errSymlink), errors.Is(err, errNotRegular), errors.Is(err, errForeign), errors.Is(err, errWritable):
			if lerr := s.fs.Lstat(name, &st); lerr != nil {
				return s.unreadable(e, lerr)
			}
			e.setStat(&st)
			e.Kind, e.Err = KindUnsafe, err
			return true
		case errors.Is(err, errOversize):
			e.setStat(&st)
			e.Kind, e.Err = KindCorrupt, err
			e.Reap = s.reapCorrupt(e, now)
			return true
		default:
			return s.unreadable(e, err)
		}
		var d stored
		err = s.decodeFile(id, b, &st, &d) // decrypted and name-checked (encrypt.go)
		switch {
		case errors.Is(err, filesession.ErrNotFound):
			// A key or name problem: Load reports no session, and the
			// reaper leaves the file alone.
			e.Kind, e.Err = KindUnreadable, err
			return true
		case err != nil:
			e.Kind, e.Err = KindCorrupt, err
			e.Reap = s.reapCorrupt(e, now)
			return true
		}
		e.ID = d.id
		e.Read, e.Record = true, d.rec
		e.ExpiresAt = s.expiresAt(&d.rec)
		e.Kind = KindLive
		if d.rec.Expired(now) {
			e.Kind = KindExpired
			if !e.AccessTime.After(now) {
				e.Reap = ReapRemove
			}
		}
		return true
	}

	if err := s.fs.Lstat(name, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false
		}
		e.Kind, e.Err = KindForeign, err
		return true
	}
	e.setStat(&st)
	switch {
	case name == lockFileName:
		e.Kind = KindLock
	case strings.HasSuffix(name, corruptSuffix):
		if id, ok := s.sessionID(strings.TrimSuffix(name, corruptSuffix)); ok {
			e.Kind, e.ID = KindQuarantined, s.idOfName(id)
		} else {
			e.Kind = KindForeign
		}
	default:
		if id, ok := s.tempID(name); ok {
			e.Kind, e.ID = KindTemp, s.idOfName(id)
			// reapTemp's rule: regular files older than staleTemp go.
			if e.Type == 0 && e.ModTime.Before(now.Add(-staleTemp)) {
				e.Stale, e.Reap = true, ReapRemove
			}
		} else {
			e.Kind = KindForeign
		}
	}
	return true
}

// reapCorrupt is what the reaper does with a corrupt session file: it opens
// (and so quarantines) only files whose hint is not in the future.
func (s *Store) reapCorrupt(e *Entry, now time.Time) ReapAction {
	if e.AccessTime.After(now) {
		return ReapKeep
	}
	return ReapQuarantine
}

// unreadable classifies a session file whose examination failed with err;
// it returns false if the file is simply gone.
func (s *Store) unreadable(e *Entry, err error) bool {
	if errors.Is(err, unix.ENOENT) {
		return false
	}
	e.Kind, e.Err = KindUnreadable, err
	return true
}

// setStat copies what an Entry reports of st.
func (e *Entry) setStat(st *unix.Stat_t) {
	e.Type = fileType(st.Mode)
	e.Perm = fs.FileMode(st.Mode & 0o777)
	e.UID = st.Uid
	e.Size = st.Size
	e.ModTime = timeOf(st.Mtim)
	e.AccessTime = timeOf(st.Atim)
}

// fileType converts the S_IFMT bits of a stat mode to io/fs's type bits.
func fileType(mode uint32) fs.FileMode {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return 0
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	}
	return fs.ModeIrregular
}

// Quarantine moves whatever is at session id's file name aside to
// <name>.corrupt, where an operator can inspect it, if the store cannot use
// it as a session: a file that does not decode or is too large, a symlink
// (the link itself is moved; its target is untouched), a directory, FIFO or
// other non-regular file, a file of another user, or one writable by group
// or others. It takes the session's lock, like the store's own quarantine
// of corrupt files, and never deletes anything; an earlier quarantined file
// of the same session is replaced. It returns an error matching
// filesession.ErrNotFound if there is nothing at the name, and refuses (with
// an error) a file that is a valid session, expired or not (Delete and the
// reaper are for those), and an encrypted file that no key of the ring opens
// or one under another session's name (KindUnreadable: another key may open
// it, so the store leaves it alone too).
func (s *Store) Quarantine(ctx context.Context, id string) error {
	if err := s.begin(ctx, id); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	return s.quarantineKey(ctx, s.nameKey(id)) // what names the file (hashnames.go)
}

// QuarantineName is Quarantine for the session file name (an Entry's Name),
// for entries whose ID is not known: under Options.HashNames a file that
// could not be read carries no ID. A name that is not a session file name
// of this store is an error.
func (s *Store) QuarantineName(ctx context.Context, name string) error {
	key, ok := s.sessionID(name)
	if !ok {
		return fmt.Errorf("filestore: %q is not a session file name of this store", name)
	}
	if err := s.begin(ctx, key); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	return s.quarantineKey(ctx, key)
}

// quarantineKey is Quarantine of the file named by key, the part of a
// session file's name between prefix and extension (the ID, or its hash
// under HashNames). The caller holds s.mu shared.
func (s *Store) quarantineKey(ctx context.Context, id string) error {
	p, err := s.lock(ctx, id, "")
	if err != nil {
		return err
	}
	defer s.unlock(p)
	name := s.fileName(id)
	var st unix.Stat_t
	if err := s.fs.Lstat(name, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("filestore: session %s: %w", hashID(id), filesession.ErrNotFound)
		}
		return fmt.Errorf("filestore: quarantine session %s: %w", hashID(id), err)
	}
	var cause error
	if cause = s.checkFile(&st); cause == nil {
		var rst unix.Stat_t
		b, err := s.readFile(name, &rst)
		switch {
		case err == nil:
			var d stored
			switch cause = s.decodeFile(id, b, &rst, &d); {
			case cause == nil:
				return fmt.Errorf("filestore: session %s is a valid session file; not quarantined", hashID(id))
			case errors.Is(cause, filesession.ErrNotFound):
				// No key of the ring opens it, or it is not under its
				// name: the store leaves such files alone (another
				// key may open them), and so does this.
				return fmt.Errorf("filestore: session %s: %w; not quarantined", hashID(id), cause)
			}
		case errors.Is(err, unix.ENOENT):
			return fmt.Errorf("filestore: session %s: %w", hashID(id), filesession.ErrNotFound)
		case errors.Is(err, errOversize), errors.Is(err, errSymlink), errors.Is(err, errNotRegular), errors.Is(err, errForeign), errors.Is(err, errWritable):
			cause = err
		default:
			return fmt.Errorf("filestore: quarantine session %s: %w", hashID(id), err)
		}
	}
	s.quarantine(id, name, &st, cause)
	// quarantine logs rather than returns its failures; what is at the
	// quarantine name now says whether it worked.
	var moved unix.Stat_t
	if err := s.fs.Lstat(quarantineName(name), &moved); err != nil || moved.Ino != st.Ino || moved.Dev != st.Dev {
		return fmt.Errorf("filestore: quarantine session %s: the file could not be moved (see the log)", hashID(id))
	}
	return nil
}

// RemoveStaleTemp removes the temporary file name if it is one of this
// store's and older than StaleTempAge, exactly as the reaper does (under its
// session's lock, so never one a writer is using), and reports whether it
// is gone. A name that is not one of the store's temporary files is an
// error.
func (s *Store) RemoveStaleTemp(ctx context.Context, name string) (bool, error) {
	id, ok := s.tempID(name)
	if !ok {
		return false, fmt.Errorf("filestore: %q is not a temporary file of this store", name)
	}
	if err := s.reapTemp(ctx, id, name); err != nil {
		return false, err
	}
	if err := s.begin(ctx); err != nil {
		return false, err
	}
	defer s.mu.RUnlock()
	var st unix.Stat_t
	err := s.fs.Lstat(name, &st)
	switch {
	case errors.Is(err, unix.ENOENT):
		return true, nil
	case err != nil:
		return false, err
	}
	return false, nil
}

// RestrictPermissions sets the mode of name, one of the store's own files
// (a session file, temporary, quarantined or lock file), to 0600 if it has
// any other permission bits, and reports whether it changed it. Session
// files that others could read (session-file-store writes 0644) leak every
// session to them. The file must be a regular file owned by the store's
// user; symlinks are never followed. A file writable by group or others is
// refused: its contents cannot be trusted, so Quarantine it instead.
func (s *Store) RestrictPermissions(ctx context.Context, name string) (bool, error) {
	_, isSession := s.sessionID(name)
	_, isTemp := s.tempID(name)
	_, isQuarantined := s.sessionID(strings.TrimSuffix(name, corruptSuffix))
	isQuarantined = isQuarantined && strings.HasSuffix(name, corruptSuffix)
	if !isSession && !isTemp && !isQuarantined && name != lockFileName {
		return false, fmt.Errorf("filestore: %q is not a file of this store", name)
	}
	if err := s.begin(ctx); err != nil {
		return false, err
	}
	defer s.mu.RUnlock()
	f, err := s.fs.OpenFile(name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOATIME, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			err = errSymlink
		}
		return false, fmt.Errorf("filestore: restrict permissions of %s: %w", name, err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := f.Stat(&st); err != nil {
		return false, fmt.Errorf("filestore: restrict permissions of %s: %w", name, err)
	}
	if err := s.checkFile(&st); err != nil {
		return false, fmt.Errorf("filestore: restrict permissions of %s: %w", name, err)
	}
	if st.Mode&0o777 == 0o600 {
		return false, nil
	}
	c, ok := f.(interface{ Chmod(mode uint32) error })
	if !ok {
		return false, fmt.Errorf("filestore: restrict permissions of %s: not supported by this filesystem", name)
	}
	if err := c.Chmod(0o600); err != nil {
		return false, fmt.Errorf("filestore: restrict permissions of %s: %w", name, err)
	}
	return true, nil
}

// Chmod is fchmod(2). It is not part of the file interface, which is the
// store's I/O path; RestrictPermissions finds it by a type assertion.
func (f *osFile) Chmod(mode uint32) error {
	for {
		err := unix.Fchmod(f.fd, mode)
		if err != unix.EINTR {
			return err
		}
	}
}
