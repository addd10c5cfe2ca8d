package filestore_test

import (
	"encoding/json"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
)

// The SIGKILL loop: a child process creates, saves, updates, touches,
// renews and deletes sessions as fast as it can, and is killed with
// SIGKILL at a random moment, again and again. After every kill:
//
//   - every session file decodes (Load succeeds: none has expired), and
//     holds a consistent version: each save sets "a" and "b" to the same
//     value in one change, so a == b in every file;
//   - nothing was quarantined (no *.corrupt file);
//   - the only other files are the lock file and temporary files of the
//     store's own pattern;
//   - the store reopens and works (create, save, load, delete);
//   - and, every few kills, a reap with the clock past the temporary files'
//     staleness removes every temporary file and no session.
//
// Half the children write with SyncNone (fastest, so kills land anywhere in
// a write), half with SyncFull (kills land mostly in fsyncs). A process
// crash keeps the page cache, so this tests atomicity, not durability
// across power loss (see the README's Concurrency and durability section).

var killLoops = flag.Int("killloops", 200, "how many times the SIGKILL test kills its child")

func init() {
	childRoles["crash"] = crashChild
}

// crashChild is the process that gets killed: it runs operations on a pool
// of sessions until it is.
func crashChild(t *testing.T, dir, mode string) {
	syncMode := filestore.SyncNone
	if mode == "full" {
		syncMode = filestore.SyncFull
	}
	s, err := filestore.Open(filestore.Options{Path: dir, Sync: syncMode, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var pool []string
	if err := s.List(ctx, func(id string, _ filesession.Record) error { pool = append(pool, id); return nil }); err != nil {
		t.Fatal(err)
	}
	token := func() json.RawMessage { return json.RawMessage(strconv.FormatUint(rand.Uint64(), 10)) }
	for i := 0; ; i++ {
		if i == 1 {
			childSay("ready")
		}
		op := rand.IntN(6)
		if len(pool) == 0 || op == 0 && len(pool) < 8 {
			id := filesession.NewID()
			v := token()
			now := time.Now()
			r := filesession.Record{Values: map[string]json.RawMessage{"a": v, "b": v, "n": json.RawMessage("0")}, Created: now, LastAccess: now, IdleTimeout: time.Hour}
			if err := s.Create(ctx, id, r); err != nil {
				t.Fatal(err)
			}
			pool = append(pool, id)
			continue
		}
		k := rand.IntN(len(pool))
		id := pool[k]
		switch {
		case op == 1 || op == 0:
			v := token()
			err = s.Save(ctx, id, filesession.Change{Set: map[string]json.RawMessage{"a": v, "b": v}, At: time.Now()})
		case op == 2:
			err = s.Update(ctx, id, func(r *filesession.Record) error {
				n, _ := strconv.Atoi(string(r.Values["n"]))
				v := token()
				r.Values["n"], r.Values["a"], r.Values["b"] = json.RawMessage(strconv.Itoa(n+1)), v, v
				return nil
			})
		case op == 3:
			now := time.Now()
			err = s.Touch(ctx, id, now, now.Add(time.Hour))
		case op == 4:
			nu := filesession.NewID()
			v := token()
			err = s.Renew(ctx, id, nu, filesession.Change{Set: map[string]json.RawMessage{"a": v, "b": v}, At: time.Now()})
			pool[k] = nu
		case op == 5 && len(pool) > 4:
			err = s.Delete(ctx, id)
			pool = append(pool[:k], pool[k+1:]...)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestSIGKILLLoop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var corrupt, files int
	temps := map[string]bool{} // every temporary file a kill left
	for i := range *killLoops {
		mode := "none"
		if i%2 == 1 {
			mode = "full"
		}
		c := startChild(t, "crash", dir, mode)
		c.expect(t, "ready")
		// A random moment in the child's loop: each of its operations
		// takes tens of microseconds (SyncNone) to a millisecond or two
		// (SyncFull).
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := c.cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("kill %d: the child ended with %v before it was killed; stderr:\n%s", i, err, c.stderr.String())
		}
		nc, nf := checkAfterKill(t, dir, temps, i%25 == 24 || i == *killLoops-1)
		corrupt += nc
		files += nf
		if t.Failed() {
			t.Fatalf("after kill %d", i)
		}
	}
	t.Logf("%d kills: %d session files checked, %d corrupt; %d temporary files left by kills mid-write, all reaped", *killLoops, files, corrupt, len(temps))
}

// checkAfterKill checks the directory after a kill, reopens the store and
// uses it, and, if reap, removes the stale temporary files. It adds the
// temporary files it finds to temps and returns the corrupt files found
// and the session files checked.
func checkAfterKill(t *testing.T, dir string, temps map[string]bool, reap bool) (corrupt, files int) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := filestore.Open(filestore.Options{Path: dir, Logger: quiet})
	if err != nil {
		t.Fatalf("reopening the store: %v", err)
	}
	defer s.Close()
	ctx := t.Context()
	for _, d := range ents {
		n := d.Name()
		switch {
		case n == ".filesession.lock":
		case tempPattern.MatchString(n):
			temps[n] = true
		case strings.HasSuffix(n, ".corrupt"):
			corrupt++
			t.Errorf("a file was quarantined: %s", n)
		case strings.HasPrefix(n, "sess_") && strings.HasSuffix(n, ".json"):
			files++
			id := strings.TrimSuffix(strings.TrimPrefix(n, "sess_"), ".json")
			r, err := s.Load(ctx, id)
			switch {
			case err != nil:
				t.Errorf("%s: Load: %v", n, err)
			case string(r.Values["a"]) != string(r.Values["b"]) || len(r.Values["a"]) == 0:
				t.Errorf("%s holds a torn version: a=%s b=%s", n, r.Values["a"], r.Values["b"])
			}
		default:
			t.Errorf("unexpected file %s", n)
		}
	}
	// The store works.
	id := filesession.NewID()
	now := time.Now()
	if err := s.Create(ctx, id, filesession.Record{Values: map[string]json.RawMessage{"a": json.RawMessage("1"), "b": json.RawMessage("1")}, Created: now, LastAccess: now, IdleTimeout: time.Hour}); err != nil {
		t.Errorf("Create after a kill: %v", err)
	}
	if err := s.Save(ctx, id, filesession.Change{Set: map[string]json.RawMessage{"a": json.RawMessage("2"), "b": json.RawMessage("2")}, At: now}); err != nil {
		t.Errorf("Save after a kill: %v", err)
	}
	if r, err := s.Load(ctx, id); err != nil || string(r.Values["a"]) != "2" {
		t.Errorf("Load after a kill: %v %s", err, r.Values["a"])
	}
	if err := s.Delete(ctx, id); err != nil {
		t.Errorf("Delete after a kill: %v", err)
	}
	if !reap {
		return corrupt, files
	}
	// Temporary files left by a kill are stale once 10 minutes old; a
	// store whose clock is 11 minutes ahead reaps them, and no session.
	later, err := filestore.Open(filestore.Options{Path: dir, Logger: quiet, Now: func() time.Time { return time.Now().Add(11 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	defer later.Close()
	if n, err := later.Reap(ctx); err != nil || n != 0 {
		t.Errorf("Reap = %d, %v; want 0 sessions removed", n, err)
	}
	ents, err = os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ents {
		if tempPattern.MatchString(d.Name()) {
			t.Errorf("the reaper left the temporary file %s", d.Name())
		}
	}
	return corrupt, files
}
