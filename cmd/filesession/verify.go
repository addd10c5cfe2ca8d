package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
	"golang.org/x/sys/unix"
)

var verifyFix bool

var verifyCmd = &command{
	name:    "verify",
	args:    "[--fix]",
	summary: "Check the directory (fsck): corrupt and unsafe files, stray temp files, permissions, files not ours",
	flags: func(fs *flag.FlagSet) {
		fs.BoolVar(&verifyFix, "fix", false, "repair what can be: quarantine corrupt and unsafe files, remove stale temp files, chmod 600/700")
	},
	run: runVerify,
}

// finding is one problem verify found.
type finding struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Problem string `json:"problem"`
	// Fix is what --fix does about it ("" if it cannot: the operator must).
	Fix   string `json:"fix,omitempty"`
	Fixed bool   `json:"fixed"`
	// FixError is why the fix failed.
	FixError string `json:"fixError,omitempty"`
}

// notices are findings that need no repair, counted.
type notices struct {
	Expired     int64 `json:"expired"`
	NoHint      int64 `json:"liveWithoutHint"`
	Quarantined int64 `json:"quarantined"`
	TempInUse   int64 `json:"tempInUse"`
}

// verifier runs one verify.
type verifier struct {
	c         *cli
	s         *filestore.Store
	fix       bool
	arr       *jsonArray
	found     int
	fixed     int
	notices   notices
	tally     tally
	euid      uint32
	writeFail error

	// indexComplete says whether the per-user index was complete when
	// verify started; only a complete index is checked entry by entry.
	indexComplete bool
	// rebuilt and rebuildErr make --fix rebuild the index once, however
	// many sessions it missed.
	rebuilt    bool
	rebuildErr error
}

func runVerify(c *cli, args []string) error {
	if len(args) > 0 {
		return usagef("verify takes no arguments")
	}
	v := &verifier{c: c, fix: verifyFix, euid: uint32(os.Geteuid())}
	if c.opts.json {
		c.out.WriteString(`{"problems":`)
		v.arr = c.startArray()
	}
	err := v.run()
	if c.opts.json {
		v.arr.end()
		b, _ := jsonMarshal(struct {
			Counts    tally   `json:"counts"`
			Notices   notices `json:"notices"`
			Found     int     `json:"found"`
			Fixed     int     `json:"fixed"`
			Remaining int     `json:"remaining"`
			OK        bool    `json:"ok"`
		}{v.tally, v.notices, v.found, v.fixed, v.found - v.fixed, err == nil && v.found == v.fixed})
		// Splice the summary into the object opened above.
		c.out.WriteString(`,` + string(b[1:]) + "\n")
	} else {
		v.printNotices()
		fmt.Fprintf(c.out, "verify: %d problems", v.found)
		if v.fix {
			fmt.Fprintf(c.out, ", %d fixed, %d remaining", v.fixed, v.found-v.fixed)
		} else if v.found > 0 {
			fmt.Fprint(c.out, " (filesession verify --fix repairs what it can)")
		}
		fmt.Fprintln(c.out)
	}
	if err != nil {
		return err
	}
	if v.writeFail != nil {
		return v.writeFail
	}
	if v.found > v.fixed {
		return errProblems
	}
	return nil
}

func (v *verifier) run() error {
	dir := v.c.opts.dir
	if ok, err := v.checkDir(dir); !ok || err != nil {
		return err
	}
	s, err := v.c.openDir()
	if err != nil {
		return err
	}
	defer s.Close()
	v.s = s
	if v.indexComplete, err = s.UserIndexComplete(v.c.ctx); err != nil {
		return err
	}
	var total int64
	if v.c.progressOn() {
		total = countNames(dir)
	}
	p := v.c.newProgress("verify", total)
	defer p.finish()
	now := time.Now()
	return s.Scan(v.c.ctx, filestore.ScanOptions{ReadAll: true}, func(e *filestore.Entry) error {
		p.add(1)
		v.tally.add(e)
		v.entry(e, now)
		return v.writeFail
	})
}

// checkDir checks the session directory itself. It returns false if the
// store cannot be opened on it.
func (v *verifier) checkDir(dir string) (bool, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("no session directory at %s (see --dir)", dir)
	}
	if err != nil {
		return false, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false, fmt.Errorf("cannot read the owner of %s", dir)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		v.report(finding{Name: dir, Kind: "directory", Problem: "is a symlink; the store refuses it (give the directory itself)"}, nil)
		return false, nil
	case !fi.IsDir():
		v.report(finding{Name: dir, Kind: "directory", Problem: "is not a directory"}, nil)
		return false, nil
	case st.Uid != v.euid:
		v.report(finding{Name: dir, Kind: "directory", Problem: fmt.Sprintf("is owned by uid %d, not by this user (uid %d); run as the application's user", st.Uid, v.euid)}, nil)
		return false, nil
	case fi.Mode().Perm()&0o077 != 0:
		f := finding{Name: dir, Kind: "directory", Problem: fmt.Sprintf("has mode %#o: other users can list the sessions (or, if writable, plant them)", fi.Mode().Perm()), Fix: "chmod 700"}
		v.report(f, func() error { return chmodNoFollow(dir, 0o700, true) })
		if fi.Mode().Perm()&0o022 != 0 && !v.fix {
			return false, nil // the store refuses to open it
		}
	}
	return true, nil
}

// entry checks one directory entry.
func (v *verifier) entry(e *filestore.Entry, now time.Time) {
	ctx := v.c.ctx
	switch e.Kind {
	case filestore.KindLive, filestore.KindExpired:
		if e.Kind == filestore.KindExpired {
			v.notices.Expired++
		} else if !e.AccessTime.After(now) {
			v.notices.NoHint++
		}
		if e.Kind == filestore.KindLive && e.Record.User != "" && e.ID != "" {
			v.userIndex(e)
		}
		if e.Perm != 0o600 {
			v.report(finding{Name: e.Name, Kind: e.Kind.String(), Problem: fmt.Sprintf("has mode %#o, want 0600 (other users can read the session)", e.Perm), Fix: "chmod 600"},
				func() error { _, err := v.s.RestrictPermissions(ctx, e.Name); return err })
		}
	case filestore.KindCorrupt:
		v.report(finding{Name: e.Name, Kind: "corrupt", Problem: fmt.Sprintf("does not decode: %v", e.Err), Fix: "quarantine to " + e.Name + ".corrupt"},
			func() error { return v.s.QuarantineName(ctx, e.Name) })
	case filestore.KindUnsafe:
		problem := fmt.Sprint(e.Err)
		if errors.Is(e.Err, filestore.ErrForeignOwner) {
			problem = fmt.Sprintf("is owned by uid %d, not by this user (uid %d)", e.UID, v.euid)
		} else if e.Type != 0 {
			problem = fmt.Sprintf("is a %s, not a regular file", typeName(e.Type))
		}
		v.report(finding{Name: e.Name, Kind: "unsafe", Problem: problem + "; the store ignores it", Fix: "quarantine to " + e.Name + ".corrupt"},
			func() error { return v.s.QuarantineName(ctx, e.Name) })
	case filestore.KindUnreadable:
		problem := fmt.Sprintf("could not be read: %v", e.Err)
		if errors.Is(e.Err, filesession.ErrNotFound) {
			// The store's encryption or hashed names refuse it: a wrong or
			// missing key, a plaintext file in an encrypted store, a file
			// under another session's name.
			problem = fmt.Sprintf("cannot be used with these options (--key-file, --hash-names, --name-key-file): %v", e.Err)
		}
		v.report(finding{Name: e.Name, Kind: "unreadable", Problem: problem}, nil)
	case filestore.KindTemp:
		if !e.Stale {
			v.notices.TempInUse++
			return
		}
		v.report(finding{Name: e.Name, Kind: "temp", Problem: "is a temporary file left behind (by a crash) " + durText(now.Sub(e.ModTime)) + " ago", Fix: "remove it"},
			func() error {
				gone, err := v.s.RemoveStaleTemp(ctx, e.Name)
				if err == nil && !gone {
					err = errors.New("still there")
				}
				return err
			})
	case filestore.KindQuarantined:
		// Kept as found, whatever it is (a corrupt file, or the symlink,
		// FIFO or directory --fix moved aside), for an operator to
		// inspect and delete: not a problem of the store.
		v.notices.Quarantined++
	case filestore.KindLock:
		v.ownFile(e)
	case filestore.KindForeign:
		if e.Name == secretFileName {
			v.secretFile(e)
			return
		}
		if known(e) {
			return // the per-user index: the store checks and rebuilds it itself
		}
		what := "file"
		if e.Type != 0 {
			what = typeName(e.Type)
		}
		v.report(finding{Name: e.Name, Kind: "foreign", Problem: "is a " + what + " that is not the store's; move or remove it yourself"}, nil)
	}
}

// userIndex checks that a live session that names a user is listed in the
// per-user index, without which revoke --user (and the application's "sign
// out everywhere") would miss it. The store writes the index entry before
// the session file, so a miss means the index was damaged or removed; an
// index that is merely incomplete (never built) the store rebuilds on first
// use, so only a complete one is checked. The fix is a rebuild, which only
// ever adds entries.
func (v *verifier) userIndex(e *filestore.Entry) {
	ctx := v.c.ctx
	rebuild := func() error {
		if !v.rebuilt {
			v.rebuilt, v.rebuildErr = true, v.s.RebuildUserIndex(ctx)
		}
		return v.rebuildErr
	}
	if !v.indexComplete {
		// Not built yet (or marked incomplete): the store does not trust
		// it, and builds it by a full scan before its first use.
		return
	}
	listed, err := v.s.UserIndexed(ctx, e.ID, e.Record.User)
	switch {
	case err != nil:
		v.report(finding{Name: e.Name, Kind: "index", Problem: fmt.Sprintf("per-user index could not be read: %v", err)}, nil)
	case !listed:
		v.report(finding{Name: e.Name, Kind: "index", Problem: "names a user but is missing from the per-user index: revoking that user would miss it", Fix: "rebuild the per-user index"}, rebuild)
	}
}

// ownFile checks a file the store made for itself: its lock file.
func (v *verifier) ownFile(e *filestore.Entry) {
	switch {
	case e.Type != 0:
		v.report(finding{Name: e.Name, Kind: e.Kind.String(), Problem: "is a " + typeName(e.Type) + ", not a regular file; remove it yourself"}, nil)
	case e.UID != v.euid:
		v.report(finding{Name: e.Name, Kind: e.Kind.String(), Problem: fmt.Sprintf("is owned by uid %d, not by this user", e.UID)}, nil)
	case e.Perm != 0o600:
		ctx := v.c.ctx
		v.report(finding{Name: e.Name, Kind: e.Kind.String(), Problem: fmt.Sprintf("has mode %#o, want 0600", e.Perm), Fix: "chmod 600"},
			func() error { _, err := v.s.RestrictPermissions(ctx, e.Name); return err })
	}
}

// secretFile checks the demo's signing secret: whoever reads it can forge
// session cookies.
func (v *verifier) secretFile(e *filestore.Entry) {
	switch {
	case e.Type != 0:
		v.report(finding{Name: e.Name, Kind: "secret", Problem: "is a " + typeName(e.Type) + ", not a regular file"}, nil)
	case e.UID != v.euid:
		v.report(finding{Name: e.Name, Kind: "secret", Problem: fmt.Sprintf("is owned by uid %d, not by this user", e.UID)}, nil)
	case e.Perm&0o077 != 0:
		v.report(finding{Name: e.Name, Kind: "secret", Problem: fmt.Sprintf("has mode %#o: other users can read the cookie signing secret", e.Perm), Fix: "chmod 600"},
			func() error { return chmodNoFollow(filepath.Join(v.c.opts.dir, e.Name), 0o600, false) })
	}
}

// report records a problem, repairs it with fix if --fix is given and
// there is a fix, and prints it.
func (v *verifier) report(f finding, fix func() error) {
	v.found++
	if fix == nil {
		f.Fix = ""
	}
	if v.fix && fix != nil {
		if err := fix(); err != nil {
			f.FixError = err.Error()
		} else {
			f.Fixed = true
			v.fixed++
		}
	}
	if v.arr != nil {
		if err := v.arr.add(f); err != nil && v.writeFail == nil {
			v.writeFail = err
		}
		return
	}
	line := fmt.Sprintf("PROBLEM  %s %s", printable(f.Name), f.Problem)
	switch {
	case f.Fixed:
		line += " — fixed: " + f.Fix
	case f.FixError != "":
		line += " — fix (" + f.Fix + ") failed: " + f.FixError
	case f.Fix != "":
		line += " — --fix would " + f.Fix
	}
	if _, err := fmt.Fprintln(v.c.out, line); err != nil && v.writeFail == nil {
		v.writeFail = err
	}
}

func (v *verifier) printNotices() {
	n := v.notices
	out := v.c.out
	if n.Expired > 0 {
		fmt.Fprintf(out, "notice   %d expired sessions not yet reaped (filesession reap removes them)\n", n.Expired)
	}
	if n.NoHint > 0 {
		fmt.Fprintf(out, "notice   %d live sessions have no expiry hint (written by another program, or a strictatime mount); the reaper reads them, and fixes the hint\n", n.NoHint)
	}
	if n.Quarantined > 0 {
		fmt.Fprintf(out, "notice   %d quarantined *.corrupt files kept for inspection; delete them when done\n", n.Quarantined)
	}
	if n.TempInUse > 0 {
		fmt.Fprintf(out, "notice   %d temporary files of writes in progress\n", n.TempInUse)
	}
}

// typeName names a file type for people.
func typeName(t fs.FileMode) string {
	switch {
	case t&fs.ModeSymlink != 0:
		return "symlink"
	case t&fs.ModeDir != 0:
		return "directory"
	case t&fs.ModeNamedPipe != 0:
		return "FIFO"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// chmodNoFollow sets the mode of path, which must not be a symlink (it is
// opened with O_NOFOLLOW and changed through the descriptor, so a symlink
// swapped in meanwhile is refused, not followed).
func chmodNoFollow(path string, mode uint32, dir bool) error {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	if dir {
		flags |= unix.O_DIRECTORY
	}
	fd, err := unix.Open(path, flags, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, mode); err != nil {
		return &fs.PathError{Op: "chmod", Path: path, Err: err}
	}
	return nil
}
