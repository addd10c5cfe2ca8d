package filestore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
	"github.com/filesession/filesession/storetest"
	"golang.org/x/sys/unix"
)

// inspectT0 is the inspection tests' start time, in whole milliseconds like
// every stored time.
var inspectT0 = time.UnixMilli(1796292220850)

// inspectEnv is a store over a fresh directory with a fake clock, for the
// inspection API's tests.
type inspectEnv struct {
	t     *testing.T
	dir   string
	clock *storetest.Clock
	s     *filestore.Store
}

func newInspectEnv(t *testing.T, o filestore.Options) *inspectEnv {
	t.Helper()
	e := &inspectEnv{t: t, dir: t.TempDir(), clock: storetest.NewClock(inspectT0)}
	o.Path, o.Now = e.dir, e.clock.Now
	o.Logger = slog.New(slog.DiscardHandler)
	s, err := filestore.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e.s = s
	return e
}

// session creates a session last used at lastAccess with the idle timeout
// idle and the deadline deadline (zero for none), through the store.
func (e *inspectEnv) session(lastAccess time.Time, idle time.Duration, deadline time.Time) string {
	e.t.Helper()
	id := filesession.NewID()
	r := filesession.Record{
		Values:  map[string]json.RawMessage{"user": json.RawMessage(`{"userId":"u1","email":"a@example.com"}`)},
		Created: lastAccess.Add(-time.Minute), LastAccess: lastAccess, IdleTimeout: idle, Deadline: deadline,
	}
	if err := e.s.Create(context.Background(), id, r); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *inspectEnv) name(id string) string { return "sess_" + id + ".json" }

func (e *inspectEnv) path(name string) string { return filepath.Join(e.dir, name) }

// write puts a file by hand with the given mode and both times set to at.
func (e *inspectEnv) write(name, content string, mode os.FileMode, at time.Time) {
	e.t.Helper()
	p := e.path(name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Chtimes(p, at, at); err != nil {
		e.t.Fatal(err)
	}
}

// scan returns every entry by name.
func (e *inspectEnv) scan(readAll bool) map[string]filestore.Entry {
	e.t.Helper()
	got := map[string]filestore.Entry{}
	err := e.s.Scan(context.Background(), filestore.ScanOptions{ReadAll: readAll, Workers: 3}, func(en *filestore.Entry) error {
		if _, dup := got[en.Name]; dup {
			e.t.Errorf("Scan reported %s twice", en.Name)
		}
		got[en.Name] = *en
		return nil
	})
	if err != nil {
		e.t.Fatalf("Scan: %v", err)
	}
	return got
}

// snapshot records every entry's name, mode and times, to prove that a
// scan changed nothing.
func (e *inspectEnv) snapshot() map[string]unix.Stat_t {
	e.t.Helper()
	ents, err := os.ReadDir(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	m := map[string]unix.Stat_t{}
	for _, d := range ents {
		var st unix.Stat_t
		if err := unix.Lstat(e.path(d.Name()), &st); err != nil {
			e.t.Fatal(err)
		}
		st.Ctim = unix.Timespec{} // chmod-free scans leave ctime too, but a quarantine elsewhere would not matter
		m[d.Name()] = st
	}
	return m
}

func TestScanClassifiesEveryKind(t *testing.T) {
	e := newInspectEnv(t, filestore.Options{MaxSize: 4096})
	now := e.clock.Now()
	live := e.session(now.Add(-time.Minute), time.Hour, time.Time{})
	idle := e.session(now.Add(-2*time.Hour), time.Hour, time.Time{})
	dead := e.session(now.Add(-time.Minute), time.Hour, now.Add(-time.Second))
	atNow := e.session(now.Add(-time.Hour), time.Hour, time.Time{}) // expires exactly now: expired
	// A live session with a wrong (past) hint is read, found live, and kept.
	hintless := e.session(now.Add(-time.Minute), time.Hour, time.Time{})
	if err := os.Chtimes(e.path(e.name(hintless)), now.Add(-time.Hour), now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	// An expired session whose hint lies (in the future): the reaper never
	// opens it; only ReadAll sees that it has expired.
	lying := e.session(now.Add(-2*time.Hour), time.Hour, time.Time{})
	if err := os.Chtimes(e.path(e.name(lying)), now.Add(time.Hour), now.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}

	past := now.Add(-time.Hour)
	corrupt, oversize, hidden := filesession.NewID(), filesession.NewID(), filesession.NewID()
	e.write(e.name(corrupt), `{"cookie":`, 0o600, past)
	e.write(e.name(oversize), `{"x":"`+strings.Repeat("a", 5000)+`"}`, 0o600, past)
	// Corrupt but with a future hint: the reaper keeps it; ReadAll finds it.
	e.write(e.name(hidden), `garbage`, 0o600, past)
	if err := os.Chtimes(e.path(e.name(hidden)), now.Add(time.Hour), past); err != nil {
		t.Fatal(err)
	}

	writable, symlink, fifo, dir := filesession.NewID(), filesession.NewID(), filesession.NewID(), filesession.NewID()
	e.write(e.name(writable), `{}`, 0o666, past)
	outside := filepath.Join(t.TempDir(), "target.json")
	if err := os.WriteFile(outside, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, e.path(e.name(symlink))); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(e.path(e.name(fifo)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(e.path(e.name(dir)), 0o700); err != nil {
		t.Fatal(err)
	}
	var foreignOwner string
	if os.Geteuid() == 0 {
		foreignOwner = filesession.NewID()
		e.write(e.name(foreignOwner), `{}`, 0o600, past)
		if err := os.Lchown(e.path(e.name(foreignOwner)), 4242, 4242); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Log("not root: the file-of-another-user case needs chown and is not planted")
	}

	tmp := filesession.NewID()
	stale := ".sess_" + tmp + ".json.0123456789abcdef.tmp"
	fresh := ".sess_" + tmp + ".json.fedcba9876543210.tmp"
	e.write(stale, "x", 0o600, now.Add(-filestore.StaleTempAge-time.Second))
	e.write(fresh, "x", 0o600, now.Add(-time.Minute))
	quarantined := e.name(filesession.NewID()) + ".corrupt"
	e.write(quarantined, "x", 0o600, past)
	e.write("notes.txt", "x", 0o644, past)
	e.write("sess_short.json", "{}", 0o600, past)

	type want struct {
		kind filestore.Kind
		reap filestore.ReapAction
		err  error
	}
	wants := map[string]want{
		e.name(live):        {filestore.KindLive, filestore.ReapKeep, nil},
		e.name(idle):        {filestore.KindExpired, filestore.ReapRemove, nil},
		e.name(dead):        {filestore.KindExpired, filestore.ReapRemove, nil},
		e.name(atNow):       {filestore.KindExpired, filestore.ReapRemove, nil},
		e.name(hintless):    {filestore.KindLive, filestore.ReapKeep, nil},
		e.name(lying):       {filestore.KindLive, filestore.ReapKeep, nil},
		e.name(corrupt):     {filestore.KindCorrupt, filestore.ReapQuarantine, filestore.ErrSyntax},
		e.name(oversize):    {filestore.KindCorrupt, filestore.ReapQuarantine, filestore.ErrOversize},
		e.name(hidden):      {filestore.KindLive, filestore.ReapKeep, nil},
		e.name(writable):    {filestore.KindUnsafe, filestore.ReapKeep, filestore.ErrWritable},
		e.name(symlink):     {filestore.KindUnsafe, filestore.ReapKeep, filestore.ErrSymlink},
		e.name(fifo):        {filestore.KindUnsafe, filestore.ReapKeep, filestore.ErrNotRegular},
		e.name(dir):         {filestore.KindUnsafe, filestore.ReapKeep, filestore.ErrNotRegular},
		stale:               {filestore.KindTemp, filestore.ReapRemove, nil},
		fresh:               {filestore.KindTemp, filestore.ReapKeep, nil},
		quarantined:         {filestore.KindQuarantined, filestore.ReapKeep, nil},
		".filesession.lock": {filestore.KindLock, filestore.ReapKeep, nil},
		"notes.txt":         {filestore.KindForeign, filestore.ReapKeep, nil},
		"sess_short.json":   {filestore.KindForeign, filestore.ReapKeep, nil},
	}
	if foreignOwner != "" {
		wants[e.name(foreignOwner)] = want{filestore.KindUnsafe, filestore.ReapKeep, filestore.ErrForeignOwner}
	}

	before := e.snapshot()
	check := func(readAll bool, wants map[string]want) {
		t.Helper()
		got := e.scan(readAll)
		if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(wants))) {
			t.Fatalf("ReadAll=%v: Scan saw\n%v\nwant\n%v", readAll, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(wants)))
		}
		for name, w := range wants {
			g := got[name]
			if g.Kind != w.kind || g.Reap != w.reap || (w.err != nil && !errors.Is(g.Err, w.err)) || (w.err == nil && g.Err != nil) {
				t.Errorf("ReadAll=%v: %s = %v/%v (err %v), want %v/%v (err %v)", readAll, name, g.Kind, g.Reap, g.Err, w.kind, w.reap, w.err)
			}
		}
		if g := got[e.name(live)]; g.ID != live || g.Size == 0 || g.Perm != 0o600 || g.Type != 0 || !g.ExpiresAt.Equal(now.Add(59*time.Minute)) {
			t.Errorf("ReadAll=%v: live entry = %+v", readAll, g)
		}
		if g := got[e.name(symlink)]; g.Type != fs.ModeSymlink {
			t.Errorf("symlink entry has type %v", g.Type)
		}
		if g := got[quarantined]; g.ID == "" {
			t.Errorf("quarantined entry has no ID")
		}
	}
	check(false, wants)
	if g := e.scan(false)[e.name(live)]; g.Read {
		t.Error("without ReadAll, a session whose hint is in the future was read")
	}

	// ReadAll: every session file is decoded, so the lying hint and the
	// hidden corrupt file show, while the reaper's action stays "keep".
	wants[e.name(lying)] = want{filestore.KindExpired, filestore.ReapKeep, nil}
	wants[e.name(hidden)] = want{filestore.KindCorrupt, filestore.ReapKeep, filestore.ErrSyntax}
	check(true, wants)
	g := e.scan(true)[e.name(live)]
	if !g.Read || string(g.Record.Values["user"]) != `{"userId":"u1","email":"a@example.com"}` || !g.Record.LastAccess.Equal(now.Add(-time.Minute)) {
		t.Errorf("ReadAll live entry = %+v", g)
	}

	if after := e.snapshot(); !maps.EqualFunc(before, after, func(a, b unix.Stat_t) bool { return a == b }) {
		t.Error("Scan changed the directory (names, modes or times)")
	}
}

// TestScanAgreesWithReap checks, on sessions around every edge of the
// expiry rule, that what Scan says Reap would do is what Reap does.
func TestScanAgreesWithReap(t *testing.T) {
	e := newInspectEnv(t, filestore.Options{})
	now := e.clock.Now()
	for _, d := range []time.Duration{-3 * time.Hour, -time.Hour - time.Millisecond, -time.Hour, -time.Hour + time.Millisecond, -time.Minute, 0} {
		e.session(now.Add(d), time.Hour, time.Time{})
		e.session(now.Add(d), 2*time.Hour, now.Add(d/2))
		e.session(now.Add(d), time.Hour, now.Add(time.Hour))
		// The same without a usable hint (a file another program wrote, or
		// a strictatime mount): the reaper must decide from the contents.
		for _, id := range []string{e.session(now.Add(d), time.Hour, time.Time{}), e.session(now.Add(d), 2*time.Hour, now.Add(d/2))} {
			if err := os.Chtimes(e.path(e.name(id)), now.Add(-5*time.Hour), now.Add(d)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Touched: created long ago, used a moment ago.
	touched := filesession.NewID()
	r := filesession.Record{Created: now.Add(-3 * time.Hour), LastAccess: now.Add(-50 * time.Minute), IdleTimeout: time.Hour}
	if err := e.s.Create(context.Background(), touched, r); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Touch(context.Background(), touched, now.Add(-time.Second), now.Add(time.Hour-time.Second)); err != nil {
		t.Fatal(err)
	}
	corrupt := filesession.NewID()
	e.write(e.name(corrupt), "{", 0o600, now.Add(-time.Hour))

	var remove, quarantine []string
	for name, en := range e.scan(false) {
		switch en.Reap {
		case filestore.ReapRemove:
			remove = append(remove, name)
		case filestore.ReapQuarantine:
			quarantine = append(quarantine, name)
		}
	}
	if slices.Contains(remove, e.name(touched)) {
		t.Error("Scan says a session touched a second ago would be reaped")
	}
	beforeNames := e.names()
	n, err := e.s.Reap(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != len(remove) {
		t.Errorf("Reap removed %d, Scan predicted %d", n, len(remove))
	}
	after := e.names()
	for _, name := range beforeNames {
		gone := !slices.Contains(after, name)
		if gone != (slices.Contains(remove, name) || slices.Contains(quarantine, name)) {
			t.Errorf("%s: gone after Reap = %v, but Scan predicted %v", name, gone, !gone)
		}
	}
	for _, name := range quarantine {
		if !slices.Contains(after, name+".corrupt") {
			t.Errorf("%s was not quarantined as predicted", name)
		}
	}
}

func (e *inspectEnv) names() []string {
	e.t.Helper()
	ents, err := os.ReadDir(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, d := range ents {
		out = append(out, d.Name())
	}
	return out
}

func TestScanStopsAtCallbackError(t *testing.T) {
	e := newInspectEnv(t, filestore.Options{})
	for range 600 {
		e.session(e.clock.Now(), time.Hour, time.Time{})
	}
	stop := errors.New("stop")
	calls := 0
	err := e.s.Scan(context.Background(), filestore.ScanOptions{}, func(*filestore.Entry) error {
		calls++
		if calls == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 10 {
		t.Errorf("Scan = %v after %d calls, want the callback's error after 10", err, calls)
	}
	// A callback may call the store: delete every session as it is seen.
	deleted := 0
	err = e.s.Scan(context.Background(), filestore.ScanOptions{}, func(en *filestore.Entry) error {
		if en.Kind != filestore.KindLive {
			return nil
		}
		deleted++
		return e.s.Delete(context.Background(), en.ID)
	})
	if err != nil || deleted != 600 {
		t.Errorf("Scan deleting = %v, %d deleted; want nil, 600", err, deleted)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.s.Scan(ctx, filestore.ScanOptions{}, func(*filestore.Entry) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Scan with a cancelled context = %v", err)
	}
	e.s.Close()
	if err := e.s.Scan(context.Background(), filestore.ScanOptions{}, func(*filestore.Entry) error { return nil }); !errors.Is(err, filestore.ErrClosed) {
		t.Errorf("Scan after Close = %v, want ErrClosed", err)
	}
}

func TestInspect(t *testing.T) {
	e := newInspectEnv(t, filestore.Options{})
	now := e.clock.Now()
	ctx := context.Background()
	live := e.session(now.Add(-time.Minute), time.Hour, time.Time{})
	expired := e.session(now.Add(-2*time.Hour), time.Hour, time.Time{})
	corrupt := filesession.NewID()
	e.write(e.name(corrupt), "nope", 0o600, now)

	if en, err := e.s.Inspect(ctx, live); err != nil || en.Kind != filestore.KindLive || !en.Read || en.ID != live {
		t.Errorf("Inspect(live) = %+v, %v", en, err)
	}
	if en, err := e.s.Inspect(ctx, expired); err != nil || en.Kind != filestore.KindExpired {
		t.Errorf("Inspect(expired) = %v, %v; want expired", en.Kind, err)
	}
	if en, err := e.s.Inspect(ctx, corrupt); err != nil || en.Kind != filestore.KindCorrupt {
		t.Errorf("Inspect(corrupt) = %v, %v; want corrupt", en.Kind, err)
	}
	if _, err := os.Stat(e.path(e.name(corrupt))); err != nil {
		t.Errorf("Inspect moved the corrupt file: %v", err)
	}
	if _, err := e.s.Inspect(ctx, filesession.NewID()); !errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("Inspect(missing) = %v, want ErrNotFound", err)
	}
	if _, err := e.s.Inspect(ctx, "../../etc/passwd"); !errors.Is(err, filesession.ErrInvalidID) {
		t.Errorf("Inspect(bad id) = %v, want ErrInvalidID", err)
	}
}

func TestQuarantine(t *testing.T) {
	e := newInspectEnv(t, filestore.Options{})
	ctx := context.Background()
	now := e.clock.Now()

	corrupt, symlink, dir, writable := filesession.NewID(), filesession.NewID(), filesession.NewID(), filesession.NewID()
	e.write(e.name(corrupt), "{{", 0o600, now)
	e.write(e.name(writable), `{}`, 0o666, now)
	outside := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(outside, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, e.path(e.name(symlink))); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(e.path(e.name(dir)), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{corrupt, symlink, dir, writable} {
		if err := e.s.Quarantine(ctx, id); err != nil {
			t.Errorf("Quarantine: %v", err)
		}
		if _, err := os.Lstat(e.path(e.name(id))); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after Quarantine the name is still there: %v", err)
		}
		if _, err := os.Lstat(e.path(e.name(id) + ".corrupt")); err != nil {
			t.Errorf("no quarantined file: %v", err)
		}
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "keep me" {
		t.Errorf("the symlink's target was touched: %q, %v", b, err)
	}
	valid := e.session(now, time.Hour, time.Time{})
	if err := e.s.Quarantine(ctx, valid); err == nil {
		t.Error("Quarantine moved a valid session")
	}
	if _, err := e.s.Load(ctx, valid); err != nil {
		t.Errorf("the valid session is gone: %v", err)
	}
	if err := e.s.Quarantine(ctx, filesession.NewID()); !errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("Quarantine(missing) = %v, want ErrNotFound", err)
	}
}

func TestRemoveStaleTempAndRestrictPermissions(t *testing.T) {
	e := newInspectEnv(t, filestore.Options{})
	ctx := context.Background()
	now := e.clock.Now()
	tmp := filesession.NewID()
	stale := ".sess_" + tmp + ".json.0123456789abcdef.tmp"
	fresh := ".sess_" + tmp + ".json.fedcba9876543210.tmp"
	e.write(stale, "x", 0o600, now.Add(-time.Hour))
	e.write(fresh, "x", 0o600, now)
	if gone, err := e.s.RemoveStaleTemp(ctx, stale); err != nil || !gone {
		t.Errorf("RemoveStaleTemp(stale) = %v, %v", gone, err)
	}
	if gone, err := e.s.RemoveStaleTemp(ctx, fresh); err != nil || gone {
		t.Errorf("RemoveStaleTemp(fresh) = %v, %v; want it kept", gone, err)
	}
	if _, err := e.s.RemoveStaleTemp(ctx, "notes.txt"); err == nil {
		t.Error("RemoveStaleTemp accepted a name that is not a temporary file")
	}

	id := e.session(now, time.Hour, time.Time{})
	p := e.path(e.name(id))
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if changed, err := e.s.RestrictPermissions(ctx, e.name(id)); err != nil || !changed {
		t.Errorf("RestrictPermissions = %v, %v", changed, err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after RestrictPermissions: %v, %v", fi.Mode(), err)
	}
	if changed, err := e.s.RestrictPermissions(ctx, e.name(id)); err != nil || changed {
		t.Errorf("second RestrictPermissions = %v, %v; want no change", changed, err)
	}
	e.write("notes.txt", "x", 0o644, now)
	if _, err := e.s.RestrictPermissions(ctx, "notes.txt"); err == nil {
		t.Error("RestrictPermissions changed a file that is not the store's")
	}
	writable := filesession.NewID()
	e.write(e.name(writable), "{}", 0o666, now)
	if _, err := e.s.RestrictPermissions(ctx, e.name(writable)); !errors.Is(err, filestore.ErrWritable) {
		t.Errorf("RestrictPermissions of a world-writable file = %v, want ErrWritable", err)
	}
	link := filesession.NewID()
	if err := os.Symlink(p, e.path(e.name(link))); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.RestrictPermissions(ctx, e.name(link)); !errors.Is(err, filestore.ErrSymlink) {
		t.Errorf("RestrictPermissions through a symlink = %v, want ErrSymlink", err)
	}
}

// countEvents is a filesession.StoreEvents that counts.
type countEvents struct {
	mu                                    sync.Mutex
	retried, locks, quarantined, reaped   int
	passes, examined, removed, lockErrors int
}

func (c *countEvents) Retried(string, error) { c.mu.Lock(); c.retried++; c.mu.Unlock() }
func (c *countEvents) LockWaited(_ time.Duration, err error) {
	c.mu.Lock()
	c.locks++
	if err != nil {
		c.lockErrors++
	}
	c.mu.Unlock()
}
func (c *countEvents) Quarantined(error) { c.mu.Lock(); c.quarantined++; c.mu.Unlock() }
func (c *countEvents) Reaped()           { c.mu.Lock(); c.reaped++; c.mu.Unlock() }
func (c *countEvents) ReapDone(examined, removed int, _ time.Duration, _ error) {
	c.mu.Lock()
	c.passes++
	c.examined += examined
	c.removed += removed
	c.mu.Unlock()
}

// TestEvents checks that the store reports lock waits, quarantines and
// reaper passes to Options.Events.
func TestEvents(t *testing.T) {
	ev := &countEvents{}
	e := newInspectEnv(t, filestore.Options{Events: ev})
	ctx := context.Background()
	now := e.clock.Now()
	e.session(now, time.Hour, time.Time{})
	e.session(now.Add(-2*time.Hour), time.Hour, time.Time{})
	corrupt := filesession.NewID()
	e.write(e.name(corrupt), "{", 0o600, now.Add(-time.Hour))
	if _, err := e.s.Load(ctx, corrupt); !errors.Is(err, filesession.ErrCorrupt) {
		t.Fatalf("Load(corrupt) = %v", err)
	}
	if n, err := e.s.Reap(ctx); n != 1 || err != nil {
		t.Fatalf("Reap = %d, %v", n, err)
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	// Locks: two Creates, the quarantine, and the reaper's one expired file.
	if ev.locks != 4 || ev.lockErrors != 0 {
		t.Errorf("LockWaited called %d times (%d errors), want 4 (0)", ev.locks, ev.lockErrors)
	}
	if ev.quarantined != 1 || ev.reaped != 1 || ev.passes != 1 || ev.examined != 2 || ev.removed != 1 {
		t.Errorf("events = %+v, want 1 quarantined, 1 reaped, 1 pass examining 2 and removing 1", ev)
	}
}

// TestScanUnderNodeCompatible checks that Scan applies the store's decoding
// rule under NodeCompatible, where the last access is __lastAccess alone
// (Node's rule), not the later of it and the file's modification time.
func TestScanUnderNodeCompatible(t *testing.T) {
	for _, node := range []bool{false, true} {
		o := filestore.ExpressOptions("")
		o.NodeCompatible = node
		o.ReapInterval = 0
		e := newInspectEnv(t, o)
		now := e.clock.Now()
		id := strings.Repeat("n", filestore.ExpressIDLength)
		// Saved two hours ago by __lastAccess, but the file was written (by
		// a copy, a restore) a minute ago.
		name := id + ".json"
		e.write(name, `{"cookie":{"originalMaxAge":3600000,"expires":null,"httpOnly":true,"path":"/"},"__lastAccess":`+
			strconv.FormatInt(now.Add(-2*time.Hour).UnixMilli(), 10)+`}`, 0o600, now.Add(-time.Minute))
		_, loadErr := e.s.Load(context.Background(), id)
		got := e.scan(true)[name]
		if wantExpired := loadErr != nil; (got.Kind == filestore.KindExpired) != wantExpired || node != wantExpired {
			t.Errorf("NodeCompatible=%v: Load says %v, Scan says %v", node, loadErr, got.Kind)
		}
	}
}

// TestQuarantineUnderHashNamesAndEncryption checks QuarantineName for files
// whose ID a scan cannot know (hashed names), and that a file no key opens
// is left alone.
func TestQuarantineUnderHashNamesAndEncryption(t *testing.T) {
	key := bytes.Repeat([]byte{7}, filestore.KeySize)
	e := newInspectEnv(t, filestore.Options{HashNames: true, EncryptionKeys: [][]byte{key}})
	ctx := context.Background()
	now := e.clock.Now()
	id := e.session(now, time.Hour, time.Time{})
	var name string
	for n, en := range e.scan(false) {
		if en.Kind == filestore.KindLive {
			name = n
		}
	}
	if name == "" || strings.Contains(name, id) {
		t.Fatalf("hashed name %q (id %s)", name, id)
	}
	if en, err := e.s.Inspect(ctx, id); err != nil || en.Name != name || en.ID != id || !en.Read {
		t.Fatalf("Inspect under HashNames = %+v, %v", en, err)
	}
	// A corrupt file at another hashed name: Scan cannot tell its ID, and
	// QuarantineName moves it by its name.
	corrupt := "sess_" + strings.Repeat("c", filesession.IDLength) + ".json"
	e.write(corrupt, "{", 0o600, now)
	en := e.scan(true)[corrupt]
	if en.Kind != filestore.KindCorrupt || en.ID != "" {
		t.Errorf("corrupt entry under HashNames = %+v", en)
	}
	if err := e.s.QuarantineName(ctx, corrupt); err != nil {
		t.Errorf("QuarantineName: %v", err)
	}
	if _, err := os.Stat(e.path(corrupt + ".corrupt")); err != nil {
		t.Errorf("not quarantined: %v", err)
	}
	if err := e.s.QuarantineName(ctx, name); err == nil {
		t.Error("QuarantineName moved a valid session")
	}
	if err := e.s.QuarantineName(ctx, "notes.txt"); err == nil {
		t.Error("QuarantineName accepted a name that is not a session file's")
	}

	// The same directory under another key: the session is unreadable, and
	// Quarantine leaves it where it is.
	e.s.Close()
	other, err := filestore.Open(filestore.Options{Path: e.dir, HashNames: true, EncryptionKeys: [][]byte{bytes.Repeat([]byte{9}, filestore.KeySize)},
		Logger: slog.New(slog.DiscardHandler), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if en, err := other.Inspect(ctx, id); err != nil || en.Kind != filestore.KindUnreadable {
		t.Errorf("Inspect with the wrong key = %v, %v; want unreadable", en.Kind, err)
	}
	if err := other.Quarantine(ctx, id); err == nil {
		t.Error("Quarantine moved a file that another key may open")
	}
	if _, err := os.Stat(e.path(name)); err != nil {
		t.Errorf("the undecryptable file was moved: %v", err)
	}
}
