package filestore_test

import (
	"sync"
	"time"

	"github.com/filesession/filesession/filestore"
	"golang.org/x/sys/unix"
)

// call is one filesystem call the store made through the seam.
type call struct {
	op   string // open, rename, remove, lstat, utimes, fsclose; read, write, stat, sync, futimes, lock, readdir, close
	name string // the file's name in the directory ("." for the directory)
	flag int    // open flags
}

// hookFS wraps the store's real filesystem: it records every call and lets
// a test fail any of them. It is a real filesystem underneath, so tests see
// real files; only the calls a hook refuses do not happen.
type hookFS struct {
	filestore.FS
	mu    sync.Mutex
	calls []call
	// hook, if set, runs before each call; a non-nil error is returned
	// instead of making the call.
	hook func(c call) error
	// stat, if set, may change what Lstat and fstat report (to simulate a
	// foreign owner without root).
	stat func(c call, st *unix.Stat_t)
}

// wrap returns the WithFS wrapper installing h.
func (h *hookFS) wrap(base filestore.FS) filestore.FS {
	h.FS = base
	return h
}

func (h *hookFS) before(c call) error {
	h.mu.Lock()
	h.calls = append(h.calls, c)
	hook := h.hook
	h.mu.Unlock()
	if hook != nil {
		return hook(c)
	}
	return nil
}

func (h *hookFS) setHook(fn func(c call) error) {
	h.mu.Lock()
	h.hook = fn
	h.mu.Unlock()
}

// reset forgets the calls so far and returns them.
func (h *hookFS) reset() []call {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.calls
	h.calls = nil
	return c
}

func (h *hookFS) count(op string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, c := range h.calls {
		if c.op == op {
			n++
		}
	}
	return n
}

func (h *hookFS) OpenFile(name string, flag int, perm uint32) (filestore.File, error) {
	c := call{op: "open", name: name, flag: flag}
	if err := h.before(c); err != nil {
		return nil, err
	}
	f, err := h.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &hookFile{File: f, fs: h, name: name}, nil
}

func (h *hookFS) Rename(oldname, newname string) error {
	if err := h.before(call{op: "rename", name: oldname}); err != nil {
		return err
	}
	return h.FS.Rename(oldname, newname)
}

func (h *hookFS) Remove(name string) error {
	if err := h.before(call{op: "remove", name: name}); err != nil {
		return err
	}
	return h.FS.Remove(name)
}

func (h *hookFS) Lstat(name string, st *unix.Stat_t) error {
	c := call{op: "lstat", name: name}
	if err := h.before(c); err != nil {
		return err
	}
	err := h.FS.Lstat(name, st)
	if err == nil && h.stat != nil {
		h.stat(c, st)
	}
	return err
}

func (h *hookFS) Utimes(name string, atime, mtime time.Time) error {
	if err := h.before(call{op: "utimes", name: name}); err != nil {
		return err
	}
	return h.FS.Utimes(name, atime, mtime)
}

func (h *hookFS) Close() error {
	if err := h.before(call{op: "fsclose"}); err != nil {
		return err
	}
	return h.FS.Close()
}

type hookFile struct {
	filestore.File
	fs   *hookFS
	name string
}

func (f *hookFile) Read(p []byte) (int, error) {
	if err := f.fs.before(call{op: "read", name: f.name}); err != nil {
		return 0, err
	}
	return f.File.Read(p)
}

func (f *hookFile) Write(p []byte) (int, error) {
	if err := f.fs.before(call{op: "write", name: f.name}); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *hookFile) Stat(st *unix.Stat_t) error {
	c := call{op: "stat", name: f.name}
	if err := f.fs.before(c); err != nil {
		return err
	}
	err := f.File.Stat(st)
	if err == nil && f.fs.stat != nil {
		f.fs.stat(c, st)
	}
	return err
}

func (f *hookFile) Sync() error {
	if err := f.fs.before(call{op: "sync", name: f.name}); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *hookFile) Utimes(atime, mtime time.Time) error {
	if err := f.fs.before(call{op: "futimes", name: f.name}); err != nil {
		return err
	}
	return f.File.Utimes(atime, mtime)
}

func (f *hookFile) Lock(typ int16, off int64) error {
	if err := f.fs.before(call{op: "lock", name: f.name}); err != nil {
		return err
	}
	return f.File.Lock(typ, off)
}

func (f *hookFile) ReadDirNames(n int) ([]string, error) {
	if err := f.fs.before(call{op: "readdir", name: f.name}); err != nil {
		return nil, err
	}
	return f.File.ReadDirNames(n)
}

// Close always closes the real descriptor; an injected error is returned
// after it, as a filesystem that reports a write error only at close would.
func (f *hookFile) Close() error {
	injected := f.fs.before(call{op: "close", name: f.name})
	err := f.File.Close()
	if injected != nil {
		return injected
	}
	return err
}
