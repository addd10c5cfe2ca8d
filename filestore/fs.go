package filestore

import (
	"errors"
	"io"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fileSystem is every filesystem operation the store makes after Open has
// checked its directory: the seam where tests count calls and inject faults
// (ENOSPC at a write, EIO at an fsync, EINTR anywhere). Names are relative
// to the session directory and are single path components; the OS
// implementation resolves them against a directory file descriptor opened
// once, so that nothing outside that directory can be reached even if
// someone renames it or swaps a symlink into its path while the store runs.
//
// Errors are returned as bare unix.Errno values (or anything wrapping one),
// so that the store can classify them with errors.Is without paying for a
// *PathError on the hot "no such session" path.
//
// The methods are exported (on an unexported type) only so that test
// wrappers in package filestore_test can implement the interface.
type fileSystem interface {
	// OpenFile is openat(2): it opens or creates name with the given flags
	// and permission bits. The store always passes O_NOFOLLOW|O_CLOEXEC.
	// It opens session files, creates temporary files and the lock file,
	// and opens the directory itself (".") to fsync it or read it.
	OpenFile(name string, flag int, perm uint32) (file, error)
	// Rename is renameat(2) within the directory.
	Rename(oldname, newname string) error
	// Link is linkat(2) within the directory, without following a symlink
	// at oldname: it gives the file oldname a second name, newname, which
	// must not exist.
	Link(oldname, newname string) error
	// Remove is unlinkat(2) of a non-directory.
	Remove(name string) error
	// Lstat is fstatat(2) with AT_SYMLINK_NOFOLLOW.
	Lstat(name string, st *unix.Stat_t) error
	// Utimes is utimensat(2) with AT_SYMLINK_NOFOLLOW: it sets name's
	// access and modification times; a zero time leaves that one as it is
	// (UTIME_OMIT). It never creates name.
	Utimes(name string, atime, mtime time.Time) error
	// Close releases the directory handle. The store calls it once, last.
	Close() error
}

// file is an open file or directory.
type file interface {
	// Read is read(2).
	Read(p []byte) (int, error)
	// Write writes all of p or returns an error (it loops on short writes).
	Write(p []byte) (int, error)
	// Stat is fstat(2).
	Stat(st *unix.Stat_t) error
	// Sync is fsync(2). Its error is final: a caller must never retry it
	// on the same file (see write.go).
	Sync() error
	// Utimes is futimens(2); a zero time is left unchanged.
	Utimes(atime, mtime time.Time) error
	// Lock sets (typ F_WRLCK) or clears (typ F_UNLCK) an open file
	// description lock on the single byte at offset off, without waiting:
	// fcntl(F_OFD_SETLK). It fails with EAGAIN (or EACCES) if another open
	// file description holds a conflicting lock.
	Lock(typ int16, off int64) error
	// ReadDirNames returns up to n names of the directory's entries, in
	// directory order, skipping "." and ".."; at the end it returns io.EOF.
	ReadDirNames(n int) ([]string, error)
	// Close is close(2).
	Close() error
}

// osFS is the real fileSystem: *at(2) system calls relative to dirfd.
type osFS struct{ dirfd int }

// openOSFS opens path, which must be a directory and not a symlink
// (O_NOFOLLOW), and returns a fileSystem rooted at it.
func openOSFS(path string) (*osFS, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &osFS{dirfd: fd}, nil
}

func (f *osFS) OpenFile(name string, flag int, perm uint32) (file, error) {
	for {
		fd, err := unix.Openat(f.dirfd, name, flag, perm)
		if err == unix.EINTR {
			// open(2) of a regular file is not interrupted in practice, but
			// a FIFO or a slow filesystem can be; this is not a "retry of a
			// failed operation", nothing was opened.
			continue
		}
		if err != nil {
			return nil, err
		}
		return &osFile{fd: fd}, nil
	}
}

func (f *osFS) Rename(oldname, newname string) error {
	return unix.Renameat(f.dirfd, oldname, f.dirfd, newname)
}

func (f *osFS) Link(oldname, newname string) error {
	return unix.Linkat(f.dirfd, oldname, f.dirfd, newname, 0)
}

func (f *osFS) Remove(name string) error { return unix.Unlinkat(f.dirfd, name, 0) }

func (f *osFS) Lstat(name string, st *unix.Stat_t) error {
	return unix.Fstatat(f.dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW)
}

func (f *osFS) Utimes(name string, atime, mtime time.Time) error {
	ts := [2]unix.Timespec{timespec(atime), timespec(mtime)}
	return unix.UtimesNanoAt(f.dirfd, name, ts[:], unix.AT_SYMLINK_NOFOLLOW)
}

func (f *osFS) Close() error { return unix.Close(f.dirfd) }

// timespec converts t for utimensat; the zero Time means "leave it".
func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// osFile is a raw file descriptor. The store uses raw descriptors rather
// than *os.File because os.OpenFile costs three extra system calls per open
// on Linux (set non-blocking, try to register with epoll, set blocking
// again) and a finalizer, which is a third of the cost of a session read.
type osFile struct {
	fd       int
	buf      []byte // getdents buffer, for ReadDirNames
	pos, end int
}

func (f *osFile) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(f.fd, p)
		if err == unix.EINTR {
			continue
		}
		if n < 0 {
			n = 0
		}
		return n, err
	}
}

func (f *osFile) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		n, err := unix.Write(f.fd, p)
		if n > 0 {
			total += n
			p = p[n:]
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, io.ErrShortWrite
		}
	}
	return total, nil
}

func (f *osFile) Stat(st *unix.Stat_t) error { return unix.Fstat(f.fd, st) }

func (f *osFile) Sync() error { return unix.Fsync(f.fd) }

func (f *osFile) Utimes(atime, mtime time.Time) error {
	ts := [2]unix.Timespec{timespec(atime), timespec(mtime)}
	// utimensat(fd, NULL, ts, 0) is futimens(2); x/sys has no wrapper that
	// passes a NULL path (an empty string would need AT_EMPTY_PATH, which
	// older kernels reject for utimensat).
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(f.fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func (f *osFile) Lock(typ int16, off int64) error {
	lk := unix.Flock_t{Type: typ, Whence: io.SeekStart, Start: off, Len: 1}
	for {
		err := unix.FcntlFlock(uintptr(f.fd), unix.F_OFD_SETLK, &lk)
		if err != unix.EINTR {
			return err
		}
	}
}

func (f *osFile) ReadDirNames(n int) ([]string, error) {
	if f.buf == nil {
		f.buf = make([]byte, 8192)
	}
	var names []string
	for len(names) < n {
		if f.pos >= f.end {
			m, err := unix.ReadDirent(f.fd, f.buf)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return names, err
			}
			if m <= 0 {
				if len(names) == 0 {
					return nil, io.EOF
				}
				return names, nil
			}
			f.pos, f.end = 0, m
		}
		// ParseDirent consumes whole records; ask for the names still
		// wanted so the rest stays in the buffer for the next call.
		consumed, _, out := unix.ParseDirent(f.buf[f.pos:f.end], n-len(names), names)
		names = out
		f.pos += consumed
		if consumed == 0 {
			return names, errors.New("filestore: malformed directory entry")
		}
	}
	return names, nil
}

func (f *osFile) Close() error { return unix.Close(f.fd) }
