package filestore_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
	"golang.org/x/sys/unix"
)

// Hostile directory states: what is at a session's name is not a session
// file of ours, or the directory itself goes away. Each has a defined
// behaviour, nothing outside the directory is touched (the parent is
// snapshotted before and after), and the store recovers once the state is
// fixed.

// snapshot describes every entry under root (not root itself) except the
// subtree skip: type, mode, owner, size, modification time, a hash of the
// content, and for files the access time too (read here with O_NOATIME,
// so that only someone else's read can move it).
func snapshot(t *testing.T, root, skip string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if p == root {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode %o uid %d size %d mtime %d.%d", st.Mode, st.Uid, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			desc += fmt.Sprintf(" atime %d.%d sha256 %s", st.Atim.Sec, st.Atim.Nsec, hashNoAtime(t, p))
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		}
		out[p] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// hashNoAtime hashes the file p without moving its access time.
func hashNoAtime(t *testing.T, p string) string {
	t.Helper()
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOATIME|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// hostileEnv is a store whose directory is <parent>/sessions, with things
// outside it to watch: a file that symlinks point to, and a directory.
type hostileEnv struct {
	*env
	parent, outside string
	before          map[string]string
}

func newHostileEnv(t *testing.T, o filestore.Options) *hostileEnv {
	t.Helper()
	parent := t.TempDir()
	outside := filepath.Join(parent, "outside.json")
	content := `{"cookie":{"originalMaxAge":3600000},"secret":"outside","__lastAccess":` + ms(t0) + `}`
	if err := os.WriteFile(outside, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(parent, "elsewhere"), 0o700); err != nil {
		t.Fatal(err)
	}
	o.Path = filepath.Join(parent, "sessions")
	h := &hostileEnv{parent: parent, outside: outside}
	h.env = newEnv(t, o)
	h.before = snapshot(t, parent, o.Path)
	t.Cleanup(func() {
		if after := snapshot(t, parent, o.Path); !maps.Equal(h.before, after) {
			t.Errorf("something outside the session directory changed:\nbefore %v\nafter  %v", h.before, after)
		}
	})
	return h
}

// allOps runs every operation of the store on id and returns their errors.
func (h *hostileEnv) allOps(id string) map[string]error {
	now := h.clock.Now()
	_, load := h.s.Load(h.ctx, id)
	return map[string]error{
		"Load":   load,
		"Save":   h.s.Save(h.ctx, id, filesession.Change{Set: map[string]json.RawMessage{"x": json.RawMessage("1")}, At: now}),
		"Update": h.s.Update(h.ctx, id, func(r *filesession.Record) error { r.Values["x"] = json.RawMessage("1"); return nil }),
		"Touch":  h.s.Touch(h.ctx, id, now, now.Add(time.Hour)),
		"Renew":  h.s.Renew(h.ctx, id, filesession.NewID(), filesession.Change{At: now}),
	}
}

// Things at a session's name that are not session files of ours are no
// session: every operation says not found (a warning is logged, and the
// thing is left where it is), Create replaces it (never writing through
// it), and Delete removes it (a symlink itself, not its target), except
// a directory, which it leaves alone.
func TestHostileSessionNames(t *testing.T) {
	for _, c := range []struct {
		name string
		make func(h *hostileEnv, path string) error
		warn string
		// kept says Delete leaves it in place.
		kept bool
	}{
		{name: "SymlinkOut", make: func(h *hostileEnv, p string) error { return os.Symlink(h.outside, p) }, warn: "symlink"},
		{name: "SymlinkDangling", make: func(h *hostileEnv, p string) error { return os.Symlink(filepath.Join(h.parent, "nothing"), p) }, warn: "symlink"},
		{name: "SymlinkToDir", make: func(h *hostileEnv, p string) error { return os.Symlink(filepath.Join(h.parent, "elsewhere"), p) }, warn: "symlink"},
		{name: "Directory", make: func(h *hostileEnv, p string) error { return os.Mkdir(p, 0o700) }, warn: "not a regular file", kept: true},
		{name: "FIFO", make: func(h *hostileEnv, p string) error { return unix.Mkfifo(p, 0o600) }, warn: "not a regular file"},
		{name: "Socket", make: func(h *hostileEnv, p string) error {
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			// A socket path must fit in 108 bytes; name the directory by
			// a descriptor to keep it short.
			dfd, err := unix.Open(filepath.Dir(p), unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				return err
			}
			defer unix.Close(dfd)
			return unix.Bind(fd, &unix.SockaddrUnix{Name: fmt.Sprintf("/proc/self/fd/%d/%s", dfd, filepath.Base(p))})
		}, warn: "not a regular file"},
		{name: "WorldWritable", make: func(h *hostileEnv, p string) error {
			if err := os.WriteFile(p, []byte(`{"secret":"forged","__lastAccess":`+ms(t0)+`}`), 0o600); err != nil {
				return err
			}
			return os.Chmod(p, 0o666)
		}, warn: "writable by group or others"},
		{name: "OtherUser", make: func(h *hostileEnv, p string) error {
			if err := os.WriteFile(p, []byte(`{"secret":"theirs","__lastAccess":`+ms(t0)+`}`), 0o600); err != nil {
				return err
			}
			if os.Geteuid() == 0 {
				return os.Chown(p, 54321, 54321)
			}
			// Not root: let the seam report another owner.
			h.fs.stat = func(c call, st *unix.Stat_t) {
				if c.name == filepath.Base(p) {
					st.Uid++
				}
			}
			return nil
		}, warn: "not owned"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHostileEnv(t, filestore.Options{})
			id := filesession.NewID()
			p := h.path(id)
			if err := c.make(h, p); err != nil {
				t.Fatal(err)
			}
			for op, err := range h.allOps(id) {
				if !errors.Is(err, filesession.ErrNotFound) || errors.Is(err, filesession.ErrCorrupt) {
					t.Errorf("%s: %v, want plain not found", op, err)
				}
			}
			if !strings.Contains(h.logs.String(), c.warn) {
				t.Errorf("log lacks %q:\n%s", c.warn, h.logs)
			}
			if _, err := os.Lstat(p); err != nil {
				t.Errorf("it was removed or moved: %v", err)
			}
			// The client's view: no session, and the cookie is cleared.
			a := newWebapp(t, h.s, h.clock.Now)
			cookie := a.m.Codec.Encode(a.m.CookieName(), id)
			if r := a.must("GET", "/show", cookie); r.code != http.StatusOK || strings.TrimSpace(r.body) != "{}" {
				t.Errorf("GET /show: %d %q, want an empty session", r.code, r.body)
			} else if v, has := r.cookie(); !has || v != "" {
				t.Errorf("the cookie of a session that is not there was not cleared: %v", r.hdr.Values("Set-Cookie"))
			}

			err := h.s.Delete(h.ctx, id)
			_, lerr := os.Lstat(p)
			switch {
			case err != nil:
				t.Errorf("Delete: %v", err)
			case c.kept && lerr != nil:
				t.Errorf("Delete removed a directory: %v", lerr)
			case !c.kept && lerr == nil:
				t.Error("Delete left it in place")
			}
			if c.kept {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				if err := c.make(h, p); err == nil && c.name == "Directory" {
					// Create over a directory fails (rename cannot replace
					// it) and leaves nothing behind.
					err := h.s.Create(h.ctx, id, h.record("a", "1"))
					if err == nil || errors.Is(err, filesession.ErrNotFound) {
						t.Errorf("Create over a directory: %v, want a store error", err)
					}
					os.Remove(p)
				}
			} else if err := c.make(h, p); err != nil {
				t.Fatal(err)
			}
			// Create replaces it with a session of ours.
			if err := h.s.Create(h.ctx, id, h.record("a", `"ours"`)); err != nil {
				t.Fatalf("Create: %v", err)
			}
			h.fs.stat = nil
			if got, err := h.s.Load(h.ctx, id); err != nil || string(got.Values["a"]) != `"ours"` {
				t.Errorf("Load after Create: %v %s", err, got.Values["a"])
			}
			for _, n := range h.names() {
				if tempPattern.MatchString(n) {
					t.Errorf("temporary file %s left", n)
				}
			}
		})
	}
}

// A symlink swapped in for a session file this process wrote, whose expiry
// it remembers: Touch then skips its checks (see hints.go), and sets the
// times of the symlink itself (utimensat with AT_SYMLINK_NOFOLLOW), never
// of the file it points to.
func TestTouchNeverFollowsASwappedSymlink(t *testing.T) {
	h := newHostileEnv(t, filestore.Options{})
	id := h.create("a", "1")
	if err := os.Remove(h.path(id)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(h.outside, h.path(id)); err != nil {
		t.Fatal(err)
	}
	at := h.clock.Advance(time.Minute)
	_ = h.s.Touch(h.ctx, id, at, at.Add(time.Hour)) // the snapshot checks the target
	if _, err := h.s.Load(h.ctx, id); !errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("Load of a symlink: %v", err)
	}
}

// Junk with other names is not the store's: List and Reap ignore it, even
// with the clock years ahead, and leave every byte and time of it as is.
func TestJunkFilesIgnored(t *testing.T) {
	h := newHostileEnv(t, filestore.Options{})
	live := h.create("a", "1")
	id := filesession.NewID()
	junk := map[string]string{
		"README":                                     "hello",
		".hidden":                                    "x",
		"sess_short.json":                            "{}",
		"sess_" + id + ".json.bak":                   "{}",
		"sess_" + id + ".JSON":                       "{}",
		"SESS_" + id + ".json":                       "{}",
		"sess_" + id + ".json.corrupt":               "garbage",
		"." + "sess_" + id + ".json.ZZZ.tmp":         "x",
		".sess_" + id + ".json.0123456789.tmp":       "x",
		"sess_" + id + "x.json":                      "{}",
		"sess_" + strings.Repeat("a", 42) + "!.json": "{}",
	}
	for n, content := range junk {
		if err := os.WriteFile(filepath.Join(h.dir, n), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(h.dir, "sess_sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.dir, "sess_sub", "sess_"+filesession.NewID()+".json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(h.outside, filepath.Join(h.dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(h.dir, "pipe"), 0o600); err != nil {
		t.Fatal(err)
	}
	sessionsDir := h.dir
	before := snapshot(t, sessionsDir, filepath.Join(sessionsDir, "sess_"+live+".json"))
	var listed []string
	if err := h.s.List(h.ctx, func(id string, _ filesession.Record) error { listed = append(listed, id); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(listed, []string{live}) {
		t.Errorf("List = %v, want only the session", listed)
	}
	h.clock.Advance(10 * 365 * 24 * time.Hour)
	if n, err := h.s.Reap(h.ctx); n != 1 || err != nil {
		t.Errorf("Reap = %d, %v; want the one expired session removed", n, err)
	}
	after := snapshot(t, sessionsDir, filepath.Join(sessionsDir, "sess_"+live+".json"))
	delete(after, filepath.Join(sessionsDir, ".filesession.lock"))
	delete(before, filepath.Join(sessionsDir, ".filesession.lock"))
	if !maps.Equal(before, after) {
		t.Errorf("the reaper changed junk:\nbefore %v\nafter  %v", before, after)
	}
}

// The session directory removed while the store runs (rm -rf, the way an
// operator ends every session at once): the first call that misses says
// so (ErrDirectoryGone, 503) rather than "no session", nothing is written
// into the removed directory, and the next call recreates Path (0700) and
// goes on with no sessions.
func TestDirectoryRemovedAtRuntime(t *testing.T) {
	h := newHostileEnv(t, filestore.Options{Sync: filestore.SyncFull})
	a := newWebapp(t, h.s, h.clock.Now)
	cookie := a.login()
	if err := os.RemoveAll(h.dir); err != nil {
		t.Fatal(err)
	}
	r := a.must("GET", "/show", cookie)
	if _, has := r.cookie(); r.code != http.StatusServiceUnavailable || has {
		t.Errorf("a request while the directory is gone: %d %q %v, want 503 without a cookie", r.code, r.body, r.hdr.Values("Set-Cookie"))
	}
	if !strings.Contains(h.logs.String(), "directory is gone") {
		t.Errorf("not logged:\n%s", h.logs)
	}
	// Recreated: the old session is gone (the directory held it), the
	// client is told to forget its cookie, and new sessions work.
	r = a.must("GET", "/show", cookie)
	if v, has := r.cookie(); r.code != http.StatusOK || strings.TrimSpace(r.body) != "{}" || !has || v != "" {
		t.Errorf("after the directory was recreated: %d %q %v", r.code, r.body, r.hdr.Values("Set-Cookie"))
	}
	var st unix.Stat_t
	if err := unix.Lstat(h.dir, &st); err != nil || st.Mode&0o777 != 0o700 || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("recreated directory: %v mode %o", err, st.Mode)
	}
	c2 := a.login()
	if v := a.show(c2); v != `{"a":"old"}` {
		t.Errorf("a new session after recovery: %s", v)
	}

	// A write into a removed directory fails (the kernel refuses to
	// create a file there), and the store says why.
	if err := os.RemoveAll(h.dir); err != nil {
		t.Fatal(err)
	}
	err := h.s.Create(h.ctx, filesession.NewID(), h.record("a", "1"))
	if !errors.Is(err, filestore.ErrDirectoryGone) {
		t.Errorf("Create into a removed directory: %v, want ErrDirectoryGone", err)
	}
	if err := h.s.Create(h.ctx, filesession.NewID(), h.record("a", "1")); err != nil {
		t.Errorf("Create after recovery: %v", err)
	}
}

// The session directory replaced by a file or a symlink: every call fails
// with ErrDirectoryGone (503) until it is fixed, and then works again.
func TestDirectoryReplacedAtRuntime(t *testing.T) {
	for _, c := range []struct {
		name    string
		replace func(h *hostileEnv) error
	}{
		{"File", func(h *hostileEnv) error { return os.WriteFile(h.dir, []byte("not a directory"), 0o600) }},
		{"Symlink", func(h *hostileEnv) error { return os.Symlink(filepath.Join(h.parent, "elsewhere"), h.dir) }},
		{"WorldWritableDirectory", func(h *hostileEnv) error {
			if err := os.Mkdir(h.dir, 0o700); err != nil {
				return err
			}
			return os.Chmod(h.dir, 0o777)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHostileEnv(t, filestore.Options{})
			id := h.create("a", "1")
			if err := os.RemoveAll(h.dir); err != nil {
				t.Fatal(err)
			}
			if err := c.replace(h); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if _, err := h.s.Load(h.ctx, id); !errors.Is(err, filestore.ErrDirectoryGone) || errors.Is(err, filesession.ErrNotFound) {
					t.Errorf("Load %d with the directory replaced: %v, want ErrDirectoryGone", i, err)
				}
				if err := h.s.Create(h.ctx, filesession.NewID(), h.record("a", "1")); !errors.Is(err, filestore.ErrDirectoryGone) {
					t.Errorf("Create %d with the directory replaced: %v, want ErrDirectoryGone", i, err)
				}
			}
			if _, err := h.s.Reap(h.ctx); !errors.Is(err, filestore.ErrDirectoryGone) {
				t.Errorf("Reap with the directory replaced: %v", err)
			}
			// Fixed by the operator.
			if err := os.Remove(h.dir); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(h.dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if _, err := h.s.Load(h.ctx, id); !errors.Is(err, filesession.ErrNotFound) || errors.Is(err, filestore.ErrDirectoryGone) {
				t.Errorf("Load once fixed: %v, want not found", err)
			}
			nid := filesession.NewID()
			if err := h.s.Create(h.ctx, nid, h.record("a", "1")); err != nil {
				t.Errorf("Create once fixed: %v", err)
			}
			if _, err := os.Stat(h.path(nid)); err != nil {
				t.Errorf("the new session is not in the directory at Path: %v", err)
			}
		})
	}
}

// The session directory renamed away and a new one made at Path: the
// store follows Path (where every process that opens it now works), at
// the first miss or reaper pass.
func TestDirectoryRenamedAway(t *testing.T) {
	h := newHostileEnv(t, filestore.Options{})
	id := h.create("a", "1")
	moved := filepath.Join(h.parent, "sessions.old")
	if err := os.Rename(h.dir, moved); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(moved) })
	if err := os.Mkdir(h.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Until it checks, the store still works in the moved directory: its
	// sessions are not lost, only not shared.
	if _, err := h.s.Load(h.ctx, id); err != nil {
		t.Errorf("Load before the check: %v", err)
	}
	if _, err := h.s.Reap(h.ctx); !errors.Is(err, filestore.ErrDirectoryGone) {
		t.Errorf("Reap: %v, want ErrDirectoryGone", err)
	}
	nid := filesession.NewID()
	if err := h.s.Create(h.ctx, nid, h.record("a", "1")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h.path(nid)); err != nil {
		t.Errorf("a session created after the check is not at Path: %v", err)
	}
	if _, err := os.Stat(filepath.Join(moved, "sess_"+id+".json")); err != nil {
		t.Errorf("the old session left the moved directory: %v", err)
	}
}

// A lock file that is not a regular file of ours stops Open: a startup
// error, not a store that locks through a symlink.
func TestHostileLockFile(t *testing.T) {
	for _, c := range []struct {
		name string
		make func(dir, outside string) error
	}{
		{"Symlink", func(dir, outside string) error { return os.Symlink(outside, filepath.Join(dir, ".filesession.lock")) }},
		{"Directory", func(dir, _ string) error { return os.Mkdir(filepath.Join(dir, ".filesession.lock"), 0o700) }},
		{"FIFO", func(dir, _ string) error { return unix.Mkfifo(filepath.Join(dir, ".filesession.lock"), 0o600) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "sessions")
			outside := filepath.Join(parent, "outside")
			if err := os.WriteFile(outside, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := c.make(dir, outside); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, parent, dir)
			s, err := filestore.Open(filestore.Options{Path: dir, Logger: quiet})
			if err == nil {
				s.Close()
				t.Fatal("Open accepted it")
			}
			if after := snapshot(t, parent, dir); !maps.Equal(before, after) {
				t.Error("Open changed something outside the directory")
			}
		})
	}
}
