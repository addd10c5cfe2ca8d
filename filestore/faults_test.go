package filestore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
	"github.com/filesession/filesession/storetest"
	"golang.org/x/sys/unix"
)

// The N-th-fault sweep, after SQLite's fault simulation: for every kind of
// error and both persistences, fail the first filesystem call an operation
// makes through the seam, then the second, the third, ..., until a run
// makes fewer calls than N and so injects nothing. After every run the
// invariants are checked:
//
//   - the operation either succeeded, and the state is exactly the new one,
//     or failed with the injected error, and the state is exactly the old
//     one (the previous version intact and loadable, nothing created);
//   - a transient error of a kind worth retrying (EINTR, EAGAIN) that fails
//     once was retried, and the operation succeeded;
//   - an error of a final kind (ENOSPC, EIO, EACCES) was not retried, and a
//     persistent transient one was retried at most Options.Retries times;
//   - no fsync was ever made again on a descriptor whose fsync failed;
//   - no temporary file is left, except when the failed call was the
//     unlink of that very file, and then the reaper removes it once stale;
//   - every session file decodes; none was quarantined.
//
// "Persistent" means every later call of the same operation fails too (a
// full disk keeps refusing writes, a failing device keeps failing fsync),
// while other operations work: that is what lets a store put back what it
// changed. The stores run with SyncFull, so that every fsync, the
// directory's included, is in the sweep.

// faultKinds are the errors injected.
var faultKinds = []unix.Errno{unix.ENOSPC, unix.EIO, unix.EACCES, unix.EINTR, unix.EAGAIN}

// retriable reports whether the store retries errno (see Options.Retries).
func retriable(errno unix.Errno) bool { return errno == unix.EINTR || errno == unix.EAGAIN }

// faultRetries is Options.Retries in the sweep.
const faultRetries = 2

// faultFS fails the n-th call made through it after arm, and with
// persistent every later call of the same operation. It also checks that no
// file is fsynced again after its fsync failed.
type faultFS struct {
	filestore.FS
	mu         sync.Mutex
	armed      bool
	n, calls   int
	errno      unix.Errno
	persistent bool
	failOp     string // the operation of the n-th call, once it failed
	failName   string
	fired      int      // calls failed
	trace      []string // calls since arm
	files      int
	syncFailed map[int]bool
	resynced   []string // fsyncs of a descriptor whose fsync had failed
}

func (f *faultFS) wrap(base filestore.FS) filestore.FS {
	f.FS = base
	f.syncFailed = map[int]bool{}
	return f
}

func (f *faultFS) arm(n int, errno unix.Errno, persistent bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed, f.n, f.calls, f.errno, f.persistent = true, n, 0, errno, persistent
	f.failOp, f.failName, f.fired, f.trace = "", "", 0, nil
}

// faultRun is what one armed run injected.
type faultRun struct {
	fired    int
	op, name string // of the first failed call
	trace    []string
}

func (f *faultFS) disarm() faultRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = false
	return faultRun{f.fired, f.failOp, f.failName, f.trace}
}

func (f *faultFS) inject(op, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.armed {
		return nil
	}
	f.calls++
	f.trace = append(f.trace, op+" "+name)
	switch {
	case f.failOp == "" && f.calls == f.n:
		f.failOp, f.failName = op, name
	case f.persistent && f.failOp == op:
	default:
		return nil
	}
	f.fired++
	return f.errno
}

func (f *faultFS) OpenFile(name string, flag int, perm uint32) (filestore.File, error) {
	if err := f.inject("open", name); err != nil {
		return nil, err
	}
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.files++
	id := f.files
	f.mu.Unlock()
	return &faultFile{File: file, fs: f, name: name, id: id}, nil
}

func (f *faultFS) Rename(oldname, newname string) error {
	if err := f.inject("rename", oldname+">"+newname); err != nil {
		return err
	}
	return f.FS.Rename(oldname, newname)
}

func (f *faultFS) Link(oldname, newname string) error {
	if err := f.inject("link", oldname+">"+newname); err != nil {
		return err
	}
	return f.FS.Link(oldname, newname)
}

func (f *faultFS) Remove(name string) error {
	if err := f.inject("remove", name); err != nil {
		return err
	}
	return f.FS.Remove(name)
}

func (f *faultFS) Lstat(name string, st *unix.Stat_t) error {
	if err := f.inject("lstat", name); err != nil {
		return err
	}
	return f.FS.Lstat(name, st)
}

func (f *faultFS) Utimes(name string, atime, mtime time.Time) error {
	if err := f.inject("utimes", name); err != nil {
		return err
	}
	return f.FS.Utimes(name, atime, mtime)
}

type faultFile struct {
	filestore.File
	fs   *faultFS
	name string
	id   int
}

func (f *faultFile) Read(p []byte) (int, error) {
	if err := f.fs.inject("read", f.name); err != nil {
		return 0, err
	}
	return f.File.Read(p)
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.fs.inject("write", f.name); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *faultFile) Stat(st *unix.Stat_t) error {
	if err := f.fs.inject("stat", f.name); err != nil {
		return err
	}
	return f.File.Stat(st)
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	if f.fs.syncFailed[f.id] {
		f.fs.resynced = append(f.fs.resynced, f.name)
	}
	f.fs.mu.Unlock()
	err := f.fs.inject("sync", f.name)
	if err == nil {
		err = f.File.Sync()
	}
	if err != nil {
		f.fs.mu.Lock()
		f.fs.syncFailed[f.id] = true
		f.fs.mu.Unlock()
	}
	return err
}

func (f *faultFile) Utimes(atime, mtime time.Time) error {
	if err := f.fs.inject("futimes", f.name); err != nil {
		return err
	}
	return f.File.Utimes(atime, mtime)
}

func (f *faultFile) Lock(typ int16, off int64) error {
	if err := f.fs.inject("lock", f.name); err != nil {
		return err
	}
	return f.File.Lock(typ, off)
}

func (f *faultFile) ReadDirNames(n int) ([]string, error) {
	if err := f.fs.inject("readdir", f.name); err != nil {
		return nil, err
	}
	return f.File.ReadDirNames(n)
}

// Close always closes the descriptor; an injected error is reported after
// it, as a filesystem that reports a write error only at close does.
func (f *faultFile) Close() error {
	injected := f.fs.inject("close", f.name)
	err := f.File.Close()
	if injected != nil {
		return injected
	}
	return err
}

// faultEnv is a SyncFull store on a fresh directory, its seam wrapped by a
// faultFS, with a fake clock and its log captured.
type faultEnv struct {
	t     *testing.T
	ctx   context.Context
	dir   string
	clock *storetest.Clock
	ffs   *faultFS
	logs  *syncBuffer
	s     *filestore.Store
	v     *filestore.Store // a second store, without faults, to observe
}

func newFaultEnv(t *testing.T) *faultEnv {
	t.Helper()
	fe := &faultEnv{t: t, ctx: t.Context(), dir: t.TempDir(), clock: storetest.NewClock(t0), ffs: &faultFS{}, logs: &syncBuffer{}}
	o := filestore.Options{
		Path: fe.dir, Now: fe.clock.Now, Sync: filestore.SyncFull, Retries: faultRetries,
		LockTimeout: 20 * time.Millisecond,
		Logger:      slog.New(slog.NewTextHandler(fe.logs, nil)),
	}
	s, err := filestore.Open(filestore.WithFS(o, fe.ffs.wrap))
	if err != nil {
		t.Fatal(err)
	}
	fe.s = s
	t.Cleanup(func() { fe.ffs.disarm(); s.Close() })
	// The observer also makes the state before each run, as another
	// process would; it need not be durable.
	fe.v, err = filestore.Open(filestore.Options{Path: fe.dir, Now: fe.clock.Now, Logger: quiet, Sync: filestore.SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fe.v.Close() })
	return fe
}

func (fe *faultEnv) record(kv ...string) filesession.Record {
	m := map[string]json.RawMessage{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = json.RawMessage(kv[i+1])
	}
	now := fe.clock.Now()
	return filesession.Record{Values: m, Created: now, LastAccess: now, IdleTimeout: 30 * time.Minute}
}

// create makes a session (through the observer: the faulty store has no
// memory of it).
func (fe *faultEnv) create(kv ...string) string {
	fe.t.Helper()
	id := filesession.NewID()
	if err := fe.v.Create(fe.ctx, id, fe.record(kv...)); err != nil {
		fe.t.Fatal(err)
	}
	return id
}

// login makes a session holding kv and returns a's cookie for it.
func (fe *faultEnv) login(a *webapp, kv ...string) string {
	fe.t.Helper()
	return a.m.Codec.Encode(a.m.CookieName(), fe.create(kv...))
}

// state describes sessions as the fault-free store sees them: their values,
// or "-" for none.
func (fe *faultEnv) state(ids ...string) string {
	fe.t.Helper()
	var parts []string
	for _, id := range ids {
		r, err := fe.v.Load(fe.ctx, id)
		switch {
		case errors.Is(err, filesession.ErrNotFound):
			parts = append(parts, "-")
		case err != nil:
			fe.t.Fatalf("observing: Load: %v", err)
		default:
			b, _ := json.Marshal(r.Values)
			parts = append(parts, string(b))
		}
	}
	return strings.Join(parts, " ")
}

// lastAccess is the session's LastAccess as the fault-free store sees it.
func (fe *faultEnv) lastAccess(id string) string {
	r, err := fe.v.Load(fe.ctx, id)
	if err != nil {
		return err.Error()
	}
	return r.LastAccess.UTC().Format(time.RFC3339Nano)
}

var tempPattern = regexp.MustCompile(`^\.sess_[A-Za-z0-9_-]{43}\.json\.[0-9a-f]{16}\.tmp$`)

// temps lists the temporary files in the directory; other files must be
// the lock file and session files that decode.
func (fe *faultEnv) temps() []string {
	fe.t.Helper()
	ents, err := os.ReadDir(fe.dir)
	if err != nil {
		fe.t.Fatal(err)
	}
	var temps []string
	sessions := 0
	for _, d := range ents {
		n := d.Name()
		switch {
		case tempPattern.MatchString(n):
			temps = append(temps, n)
		case n == ".filesession.lock":
		case strings.HasPrefix(n, "sess_") && strings.HasSuffix(n, ".json"):
			sessions++
		default:
			fe.t.Errorf("unexpected file %s in the session directory", n)
		}
	}
	listed := 0
	if err := fe.v.List(fe.ctx, func(string, filesession.Record) error { listed++; return nil }); err != nil {
		fe.t.Errorf("List: %v", err)
	}
	if listed != sessions {
		fe.t.Errorf("%d session files but %d decode", sessions, listed)
	}
	return temps
}

// retries counts the retries the store logged.
func (fe *faultEnv) retries() int {
	return strings.Count(fe.logs.String(), "transient error, retrying")
}

// faultOutcome is how an operation ended, as the sweep judges it.
type faultOutcome struct {
	ok      bool   // the operation succeeded (or the client was served)
	err     error  // the store's error, for store-level cases
	note    string // what else the case saw, for failure messages
	problem string // a broken promise the case found itself
}

// faultCase is one operation under the sweep. prepare sets up the state
// (unarmed) and returns the operation, a function describing the state
// the operation changes, and that description after a success; the sweep
// takes the description before the run itself.
type faultCase struct {
	name    string
	prepare func(fe *faultEnv) (run func() faultOutcome, observe func() string, want string)
	// partial accepts, after a failure, a state other than the old one
	// (reap: some expired sessions may be gone).
	partial func(got string) bool
	// bound is how many retry loops the operation may run through (1 but
	// for reap, which retries per file).
	bound int
}

// storeCases are the store's operations, called directly.
var storeCases = []faultCase{
	{name: "Create", prepare: func(fe *faultEnv) (func() faultOutcome, func() string, string) {
		id := filesession.NewID()
		return func() faultOutcome {
				err := fe.s.Create(fe.ctx, id, fe.record("a", `"new"`))
				return faultOutcome{ok: err == nil, err: err}
			}, func() string { return fe.state(id) },
			`{"a":"new"}`
	}},
	{name: "Save", prepare: func(fe *faultEnv) (func() faultOutcome, func() string, string) {
		id := fe.create("a", `"old"`, "b", `"keep"`)
		at := fe.clock.Advance(time.Minute)
		c := filesession.Change{Set: map[string]json.RawMessage{"a": json.RawMessage(`"new"`)}, Delete: []string{"b"}, At: at}
		return func() faultOutcome {
				err := fe.s.Save(fe.ctx, id, c)
				return faultOutcome{ok: err == nil, err: err}
			}, func() string { return fe.state(id) },
			`{"a":"new"}`
	}},
	{name: "Update", prepare: func(fe *faultEnv) (func() faultOutcome, func() string, string) {
		id := fe.create("n", "1")
		return func() faultOutcome {
				err := fe.s.Update(fe.ctx, id, func(r *filesession.Record) error {
					r.Values["n"] = json.RawMessage("2")
					return nil
				})
				return faultOutcome{ok: err == nil, err: err}
			}, func() string { return fe.state(id) },
			`{"n":2}`
	}},
	{name: "Renew", prepare: func(fe *faultEnv) (func() faultOutcome, func() string, string) {
		old, nu := fe.create("a", `"old"`), filesession.NewID()
		c := filesession.Change{Set: map[string]json.RawMessage{"r": json.RawMessage("1")}, At: fe.clock.Now()}
		return func() faultOutcome {
				err := fe.s.Renew(fe.ctx, old, nu, c)
				return faultOutcome{ok: err == nil, err: err}
			}, func() string { return fe.state(old, nu) },
			`- {"a":"old","r":1}`
	}},
	{name: "Delete", prepare: func(fe *faultEnv) (func() faultOutcome, func() string, string) {
		id := fe.create("a", `"old"`)
		return func() faultOutcome {
				err := fe.s.Delete(fe.ctx, id)
				return faultOutcome{ok: err == nil, err: err}
			}, func() string { return fe.state(id) },
			`-`
	}},
	{name: "Touch", prepare: func(fe *faultEnv) (func() faultOutcome, func() string, string) {
		// Created by the other store, and with the expiry hint on disk in
		// the past, so that the faulty store's Touch goes the long way:
		// lstat, read, then utimensat.
		id := filesession.NewID()
		if err := fe.v.Create(fe.ctx, id, fe.record("a", `"old"`)); err != nil {
			fe.t.Fatal(err)
		}
		if err := os.Chtimes(fe.dir+"/sess_"+id+".json", t0.Add(-time.Hour), t0); err != nil {
			fe.t.Fatal(err)
		}
		at := fe.clock.Advance(time.Minute)
		return func() faultOutcome {
				err := fe.s.Touch(fe.ctx, id, at, at.Add(30*time.Minute))
				return faultOutcome{ok: err == nil, err: err}
			}, func() string { return fe.lastAccess(id) },
			at.UTC().Format(time.RFC3339Nano)
	}},
	{name: "Reap", bound: 4, prepare: func(fe *faultEnv) (func() faultOutcome, func() string, string) {
		short := fe.record("who", `"expired"`)
		short.IdleTimeout = 10 * time.Minute
		expired := filesession.NewID()
		if err := fe.v.Create(fe.ctx, expired, short); err != nil {
			fe.t.Fatal(err)
		}
		live := fe.create("who", `"live"`)
		now := fe.clock.Advance(20 * time.Minute)
		stale := fe.dir + "/.sess_" + filesession.NewID() + ".json.0123456789abcdef.tmp"
		if err := os.WriteFile(stale, []byte("x"), 0o600); err != nil {
			fe.t.Fatal(err)
		}
		if err := os.Chtimes(stale, now.Add(-11*time.Minute), now.Add(-11*time.Minute)); err != nil {
			fe.t.Fatal(err)
		}
		observe := func() string {
			_, err := os.Lstat(stale)
			return fmt.Sprintf("%s %s temp:%v", fe.state(expired), fe.state(live), err == nil)
		}
		return func() faultOutcome {
				n, err := fe.s.Reap(fe.ctx)
				return faultOutcome{ok: err == nil && n == 1, err: err, note: fmt.Sprintf("removed %d", n)}
			}, observe,
			`- {"who":"live"} temp:false`
	}, partial: func(got string) bool {
		// The live session is never touched; the expired one and the
		// stale temporary file may or may not be gone yet.
		return strings.Contains(got, ` {"who":"live"} temp:`)
	}},
}

func TestFaultSweepStore(t *testing.T) {
	t.Parallel()
	t.Cleanup(func() { logSwept(t) })
	for _, c := range storeCases {
		sweep(t, c, func(t *testing.T, fe *faultEnv, run faultRun, errno unix.Errno, out faultOutcome) {
			// A failed operation reports the injected error (or, for a
			// lock that kept failing, the lock timeout).
			if !out.ok && !errors.Is(out.err, errno) && !(run.op == "lock" && errors.Is(out.err, filesession.ErrLockTimeout)) {
				t.Errorf("error %v does not match the injected %v (failed %s %s)", out.err, errno, run.op, run.name)
			}
			if errors.Is(out.err, filesession.ErrNotFound) {
				t.Errorf("a store failure reported as not found: %v", out.err)
			}
		})
	}
}

// sweep runs c for every fault kind, persistence and N.
func sweep(t *testing.T, c faultCase, extra func(t *testing.T, fe *faultEnv, run faultRun, errno unix.Errno, out faultOutcome)) {
	t.Run(c.name, func(t *testing.T) {
		t.Parallel()
		for _, errno := range faultKinds {
			for _, persistent := range []bool{false, true} {
				mode := "transient"
				if persistent {
					mode = "persistent"
				}
				t.Run(fmt.Sprintf("%s/%s", unix.ErrnoName(errno), mode), func(t *testing.T) {
					swept := 0
					for n := 1; ; n++ {
						if n > 200 {
							t.Fatal("the operation makes more than 200 filesystem calls")
						}
						if !sweepOnce(t, c, n, errno, persistent, extra) {
							break
						}
						swept++
					}
					faultsSwept.add(unix.ErrnoName(errno), swept)
					t.Logf("%d faults injected", swept)
				})
			}
		}
	})
}

// sweepCounts counts the runs that injected a fault, per error kind.
type sweepCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *sweepCounts) add(kind string, n int) {
	c.mu.Lock()
	c.n[kind] += n
	c.mu.Unlock()
}

var faultsSwept = &sweepCounts{n: map[string]int{}}

// logSwept logs how many faults the sweeps injected, per kind.
func logSwept(t *testing.T) {
	faultsSwept.mu.Lock()
	defer faultsSwept.mu.Unlock()
	total := 0
	var parts []string
	for _, k := range faultKinds {
		n := faultsSwept.n[unix.ErrnoName(k)]
		total += n
		parts = append(parts, fmt.Sprintf("%s %d", unix.ErrnoName(k), n))
	}
	t.Logf("faults injected so far: %d (%s)", total, strings.Join(parts, ", "))
}

// sweepOnce runs c with the n-th call failing and checks the invariants.
// It reports whether a fault was injected.
func sweepOnce(t *testing.T, c faultCase, n int, errno unix.Errno, persistent bool, extra func(*testing.T, *faultEnv, faultRun, unix.Errno, faultOutcome)) bool {
	fe := newFaultEnv(t)
	op, observe, want := c.prepare(fe)
	old := observe()
	fe.logs.Reset()
	fe.ffs.arm(n, errno, persistent)
	out := op()
	run := fe.ffs.disarm()
	got := observe()
	where := fmt.Sprintf("fault %d (%s %s) of %v", n, run.op, run.name, run.trace)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s: %s", where, fmt.Sprintf(format, args...))
	}

	switch {
	case run.fired == 0 && !out.ok:
		fail("without a fault the operation failed: %v %s", out.err, out.note)
	case run.fired > 0 && !persistent && retriable(errno) && !out.ok:
		fail("a transient %v was not retried to success: %v %s", errno, out.err, out.note)
	}
	switch {
	case out.ok && got != want:
		fail("succeeded, but the state is\n\t%s\nwant\n\t%s", got, want)
	case !out.ok && got != old && (c.partial == nil || !c.partial(got)):
		fail("failed (%v), and the state is\n\t%s\nnot the previous\n\t%s", out.err, got, old)
	}
	if out.problem != "" {
		fail("%s", out.problem)
	}
	if extra != nil && run.fired > 0 {
		extra(t, fe, run, errno, out)
	}

	retries := fe.retries()
	bound := max(c.bound, 1) * faultRetries
	switch {
	case !retriable(errno) && retries > 0:
		fail("a final %v was retried %d times", errno, retries)
	case retries > bound:
		fail("%d retries, more than the bound %d", retries, bound)
	}
	if r := fe.ffs.resynced; len(r) > 0 {
		fail("fsync again on a descriptor whose fsync failed: %v", r)
	}

	// No temporary file left, unless unlinking it is what failed; then
	// the reaper removes it once it is stale.
	if temps := fe.temps(); len(temps) > 0 && c.name != "Reap" && (run.op != "remove" || !slices.Contains(temps, run.name)) {
		fail("temporary files left: %v", temps)
	}
	if err := fe.s.Close(); err != nil {
		fail("Close: %v", err)
	}
	fe.clock.Advance(11 * time.Minute)
	if _, err := fe.v.Reap(fe.ctx); err != nil {
		fail("Reap after the run: %v", err)
	}
	if temps := fe.temps(); len(temps) > 0 {
		fail("temporary files the reaper left: %v", temps)
	}
	fe.v.Close()
	return run.fired > 0
}

// all describes every session in the directory, as the fault-free store
// lists them: their values, sorted.
func (fe *faultEnv) all() string {
	fe.t.Helper()
	var vals []string
	err := fe.v.List(fe.ctx, func(_ string, r filesession.Record) error {
		b, _ := json.Marshal(r.Values)
		vals = append(vals, string(b))
		return nil
	})
	if err != nil {
		fe.t.Fatalf("observing: List: %v", err)
	}
	slices.Sort(vals)
	return "[" + strings.Join(vals, ",") + "]"
}

// judgeFailure is what a client may see when the store fails: 503 with
// Retry-After, and no cookie (no new session, no cleared one).
func judgeFailure(r webResponse) string {
	_, hasCookie := r.cookie()
	switch {
	case r.code != http.StatusServiceUnavailable:
		return fmt.Sprintf("the client got %d %q, want 200 or 503", r.code, r.body)
	case r.hdr.Get("Retry-After") == "":
		return "503 without Retry-After"
	case hasCookie:
		return fmt.Sprintf("a failed request set a cookie: %q", r.hdr.Values("Set-Cookie"))
	}
	return ""
}

// webCase is a faultCase that sends one request through a Manager over the
// faulty store. req sends it and returns whether it succeeded, or the
// broken promise it found; observe describes what the client and the
// directory see afterwards (called unarmed).
func webCase(name string, touchInterval time.Duration, prepare func(fe *faultEnv, a *webapp) (req func() (bool, string), observe func() string, want string)) faultCase {
	return faultCase{name: name, prepare: func(fe *faultEnv) (func() faultOutcome, func() string, string) {
		a := reusedWebapp(fe.t, fe.s, fe.clock.Now, func(m *filesession.Manager) { m.TouchInterval = touchInterval })
		req, observe, want := prepare(fe, a)
		return func() faultOutcome {
			ok, problem := req()
			return faultOutcome{ok: ok, problem: problem}
		}, observe, want
	}}
}

var webCases = []faultCase{
	webCase("Create", time.Hour, func(fe *faultEnv, a *webapp) (func() (bool, string), func() string, string) {
		var cookie string
		return func() (bool, string) {
				r := a.must("POST", "/put?k=a&v=new", "")
				if r.code == http.StatusOK {
					c, _ := r.cookie()
					if c == "" {
						return true, "a new session without a cookie"
					}
					cookie = c
					return true, ""
				}
				return false, judgeFailure(r)
			}, func() string {
				view := "-"
				if cookie != "" {
					view = a.show(cookie)
				}
				return view + " | " + fe.all()
			},
			`{"a":"new"} | [{"a":"new"}]`
	}),
	webCase("Save", time.Hour, func(fe *faultEnv, a *webapp) (func() (bool, string), func() string, string) {
		c := fe.login(a, "a", `"old"`)
		return func() (bool, string) {
				r := a.must("POST", "/put?k=a&v=new", c)
				if r.code == http.StatusOK {
					return true, ""
				}
				return false, judgeFailure(r)
			}, func() string { return a.show(c) + " | " + fe.all() },
			`{"a":"new"} | [{"a":"new"}]`
	}),
	webCase("Update", time.Hour, func(fe *faultEnv, a *webapp) (func() (bool, string), func() string, string) {
		c := fe.login(a, "a", `"old"`, "n", "1")
		return func() (bool, string) {
				r := a.must("POST", "/incr?k=n", c)
				if r.code == http.StatusOK {
					if r.body != "2" {
						return true, fmt.Sprintf("the increment answered %q", r.body)
					}
					return true, ""
				}
				return false, judgeFailure(r)
			}, func() string { return a.show(c) + " | " + fe.all() },
			`{"a":"old","n":2} | [{"a":"old","n":2}]`
	}),
	webCase("Renew", time.Hour, func(fe *faultEnv, a *webapp) (func() (bool, string), func() string, string) {
		c := fe.login(a, "a", `"old"`)
		var renewed string
		return func() (bool, string) {
				r := a.must("POST", "/renew?k=r&v=1", c)
				if r.code == http.StatusOK {
					n, _ := r.cookie()
					if n == "" || n == c {
						return true, fmt.Sprintf("a renewal set cookie %q", n)
					}
					renewed = n
					return true, ""
				}
				return false, judgeFailure(r)
			}, func() string {
				view := "-"
				if renewed != "" {
					view = a.show(renewed)
				}
				return a.show(c) + " | " + view + " | " + fe.all()
			},
			`{} | {"a":"old","r":"1"} | [{"a":"old","r":"1"}]`
	}),
	webCase("Destroy", time.Hour, func(fe *faultEnv, a *webapp) (func() (bool, string), func() string, string) {
		c := fe.login(a, "a", `"old"`)
		return func() (bool, string) {
				r := a.must("POST", "/destroy", c)
				if r.code == http.StatusOK {
					if v, has := r.cookie(); !has || v != "" {
						return true, "a logout did not clear the cookie"
					}
					return true, ""
				}
				return false, judgeFailure(r)
			}, func() string { return a.show(c) + " | " + fe.all() },
			`{} | []`
	}),
	webCase("Touch", 0, func(fe *faultEnv, a *webapp) (func() (bool, string), func() string, string) {
		c := fe.login(a, "a", `"old"`)
		at := fe.clock.Advance(time.Minute)
		var id string
		if err := fe.v.List(fe.ctx, func(got string, _ filesession.Record) error { id = got; return nil }); err != nil {
			fe.t.Fatal(err)
		}
		return func() (bool, string) {
				r := a.must("GET", "/touch", c)
				v, has := r.cookie()
				switch {
				case r.code == http.StatusOK && has && v == c:
					return true, ""
				case r.code == http.StatusOK && !has:
					// A failed touch costs the session nothing but a
					// minute of idle time: the request is served, and
					// its cookie not refreshed.
					return false, ""
				case r.code == http.StatusOK:
					return false, fmt.Sprintf("a touch set cookie %q", v)
				}
				return false, judgeFailure(r)
			}, func() string { return fe.lastAccess(id) + " " + fe.all() },
			at.UTC().Format(time.RFC3339Nano) + ` [{"a":"old"}]`
	}),
}

// The sweep through the middleware: what the client sees while the store
// fails at every step of its request.
func TestFaultSweepMiddleware(t *testing.T) {
	t.Parallel()
	t.Cleanup(func() { logSwept(t) })
	for _, c := range webCases {
		sweep(t, c, nil)
	}
}
