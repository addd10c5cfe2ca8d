package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/internal/redistest"
	"github.com/filesession/filesession/storetest"
	"github.com/redis/go-redis/v9"
)

// ownStore returns a store on a redis-server of the test's own, for tests
// that break the server.
func ownStore(t *testing.T, opts Options) (*Store, *redistest.Server) {
	t.Helper()
	srv := redistest.NewOwn(t)
	c := clientFor(t, srv.URL)
	t.Cleanup(func() { c.Close() })
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	return New(c, opts), srv
}

// everyOp runs every Store and Lister method on id and returns their
// errors by name.
func everyOp(ctx context.Context, s *Store, id string) map[string]error {
	now := s.now()
	one := map[string]json.RawMessage{"x": json.RawMessage("1")}
	errs := map[string]error{}
	_, errs["Load"] = s.Load(ctx, id)
	errs["Create"] = s.Create(ctx, filesession.NewID(), rec(now, "a", "1"))
	errs["Save"] = s.Save(ctx, id, filesession.Change{Set: one, At: now})
	errs["Touch"] = s.Touch(ctx, id, now, now.Add(time.Hour))
	errs["Update"] = s.Update(ctx, id, func(r *filesession.Record) error { r.Values["y"] = json.RawMessage("2"); return nil })
	errs["Renew"] = s.Renew(ctx, id, filesession.NewID(), filesession.Change{At: now})
	errs["Delete"] = s.Delete(ctx, id)
	errs["List"] = s.List(ctx, func(string, filesession.Record) error { return nil })
	return errs
}

// wantStoreErrors checks that every operation failed with a store error:
// not nil, not ErrNotFound (which the manager would take for "no session"
// and answer with a fresh, empty one), and without the raw session ID.
func wantStoreErrors(t *testing.T, why, id string, errs map[string]error, also ...error) {
	t.Helper()
	for op, err := range errs {
		switch {
		case err == nil:
			t.Errorf("%s %s: succeeded, want a store error", op, why)
		case errors.Is(err, filesession.ErrNotFound):
			t.Errorf("%s %s: %v, which matches ErrNotFound; want a store error", op, why, err)
		case id != "" && strings.Contains(err.Error(), id):
			t.Errorf("%s %s: error %q reveals the session ID", op, why, err)
		}
		for _, target := range also {
			if err != nil && !errors.Is(err, target) {
				t.Errorf("%s %s: %v, want it to match %v", op, why, err, target)
			}
		}
	}
}

// TestServerKilled kills redis-server and checks that every operation fails
// with a store error, then restarts it on the same port and checks that the
// same store (and client) recovers: new sessions work and the old one, lost
// with the unpersisted dataset, is cleanly not found.
func TestServerKilled(t *testing.T) {
	ctx := t.Context()
	s, srv := ownStore(t, Options{Timeout: time.Second})
	id := filesession.NewID()
	if err := s.Create(ctx, id, rec(time.Now(), "a", "1")); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	wantStoreErrors(t, "with redis-server killed", id, everyOp(ctx, s, id))

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitRecovered(t, s)
	if _, err := s.Load(ctx, id); !errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("Load after restart with an empty dataset: %v, want ErrNotFound", err)
	}
	fresh := filesession.NewID()
	if err := s.Create(ctx, fresh, rec(time.Now(), "b", "2")); err != nil {
		t.Fatalf("Create after restart: %v", err)
	}
	for op, err := range everyOp(ctx, s, fresh) {
		if err != nil && !errors.Is(err, filesession.ErrNotFound) {
			t.Errorf("%s after restart: %v", op, err)
		}
	}
}

// waitRecovered waits until the store's client reconnects after a restart.
// go-redis's pool keeps answering with the last dial error until a
// background dial (once a second) succeeds, so the first operations after a
// restart may still fail; the test allows that for a bounded while.
func waitRecovered(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := s.Load(t.Context(), filesession.NewID())
		if errors.Is(err, filesession.ErrNotFound) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover after the restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServerKilledMidOperation runs writers on a few sessions, kills the
// server under them, and checks every operation that ran wholly while it
// was down failed with a store error; after a restart the writers carry on
// and every surviving record decodes.
func TestServerKilledMidOperation(t *testing.T) {
	ctx := t.Context()
	s, srv := ownStore(t, Options{Timeout: time.Second})
	const workers, rounds = 8, 150
	ids := make([]string, workers)
	for i := range ids {
		ids[i] = filesession.NewID()
		if err := s.Create(ctx, ids[i], rec(time.Now(), "n", "0")); err != nil {
			t.Fatal(err)
		}
	}
	var (
		phase    atomic.Int32 // 0 up, 1 down, 2 restarted
		progress atomic.Int32
		wg       sync.WaitGroup
		mu       sync.Mutex
		downErrs = map[string]error{}
	)
	for w := range workers {
		wg.Go(func() {
			id := ids[w]
			for i := range rounds {
				before := phase.Load()
				var err error
				op := []string{"Save", "Update", "Touch", "Load"}[i%4]
				switch op {
				case "Save":
					err = s.Save(ctx, id, filesession.Change{Set: map[string]json.RawMessage{fmt.Sprint("k", i): json.RawMessage("1")}, At: time.Now()})
				case "Update":
					err = s.Update(ctx, id, func(r *filesession.Record) error { r.Values["u"] = json.RawMessage(fmt.Sprint(i)); return nil })
				case "Touch":
					now := time.Now()
					err = s.Touch(ctx, id, now, now.Add(time.Hour))
				case "Load":
					_, err = s.Load(ctx, id)
				}
				if before == 1 && phase.Load() == 1 {
					mu.Lock()
					downErrs[fmt.Sprintf("%s #%d of worker %d", op, i, w)] = err
					mu.Unlock()
				}
				progress.Add(1)
			}
		})
	}
	for progress.Load() < workers*rounds/3 {
		time.Sleep(time.Millisecond)
	}
	srv.Kill()
	phase.Store(1)
	// A few operations per worker while the server is down: each may take
	// up to the store's Timeout, so not many more.
	for killed := progress.Load(); progress.Load() < killed+4*workers; {
		time.Sleep(time.Millisecond)
	}
	phase.Store(2)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	waitRecovered(t, s)
	if len(downErrs) == 0 {
		t.Fatal("no operation ran while the server was down")
	}
	wantStoreErrors(t, "while redis-server was down", "", downErrs)

	// After the restart the dataset is empty; writers that ran afterwards
	// got ErrNotFound. Whatever exists must decode.
	err := s.List(ctx, func(id string, r filesession.Record) error { return nil })
	if err != nil {
		t.Fatalf("List after restart: %v", err)
	}
	keys, _ := s.client.Keys(ctx, "*").Result() // a test server: KEYS is fine here
	for _, k := range keys {
		id, ok := s.idOf(k)
		if !ok {
			t.Errorf("unexpected key %q after restart", k)
			continue
		}
		if _, err := s.Load(ctx, id); err != nil && !errors.Is(err, filesession.ErrNotFound) {
			t.Errorf("Load after restart: %v", err)
		} else if errors.Is(err, filesession.ErrCorrupt) {
			t.Errorf("a record written around the crash is corrupt: %v", err)
		}
	}
}

// TestServerHung freezes redis-server (SIGSTOP: connections stay open,
// nothing answers) and checks that operations give up at the store's
// Timeout, or at the caller's earlier deadline, with an error matching
// context.DeadlineExceeded rather than hanging or reporting "no session".
func TestServerHung(t *testing.T) {
	ctx := t.Context()
	s, srv := ownStore(t, Options{Timeout: 300 * time.Millisecond})
	id := filesession.NewID()
	if err := s.Create(ctx, id, rec(time.Now(), "a", "1")); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	start := time.Now()
	wantStoreErrors(t, "with redis-server hung", id, everyOp(ctx, s, id), context.DeadlineExceeded)
	t.Logf("8 operations against a hung server took %v with a 300ms store timeout", time.Since(start))

	// The caller's deadline, when earlier, wins over the store's.
	slow := New(s.client, Options{Timeout: time.Minute})
	rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := slow.Load(rctx, id); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("Load with an expiring request context: %v, want DeadlineExceeded", err)
	}

	srv.Resume()
	if _, err := s.Load(ctx, id); err != nil {
		t.Errorf("Load after the server resumed: %v", err)
	}
}

// TestOutOfMemory sets maxmemory so low that writes are refused with OOM.
// Each write must then either fail with the server's OOM error as a store
// error, changing nothing, or succeed whole: Redis lets a script whose first
// write frees memory (Update's DEL) run to the end rather than break its
// atomicity. Reads keep working, and writes resume when memory is back.
func TestOutOfMemory(t *testing.T) {
	ctx := t.Context()
	s, _ := ownStore(t, Options{})
	id := filesession.NewID()
	if err := s.Create(ctx, id, rec(time.Now(), "a", "1")); err != nil {
		t.Fatal(err)
	}
	if err := s.client.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	refused := map[string]error{
		"Create": s.Create(ctx, filesession.NewID(), rec(now, "b", "2")),
		"Save":   s.Save(ctx, id, filesession.Change{Set: map[string]json.RawMessage{"x": json.RawMessage("1")}, At: now}),
		"Touch":  s.Touch(ctx, id, now.Add(time.Minute), now.Add(time.Hour)),
	}
	wantStoreErrors(t, "under OOM", id, refused)
	for op, err := range refused {
		if err != nil && !strings.Contains(err.Error(), "OOM") {
			t.Errorf("%s under OOM: %v, want the server's OOM error", op, err)
		}
	}
	r, err := s.Load(ctx, id)
	if err != nil || len(r.Values) != 1 || string(r.Values["a"]) != "1" || !r.LastAccess.Equal(now.Truncate(time.Millisecond)) && r.LastAccess.After(now) {
		t.Errorf("Load under OOM: %v, %v; want the session unchanged", r.Values, err)
	}
	err = s.Update(ctx, id, func(r *filesession.Record) error { r.Values["u"] = json.RawMessage("1"); return nil })
	switch r, lerr := s.Load(ctx, id); {
	case err == nil && (lerr != nil || string(r.Values["u"]) != "1" || string(r.Values["a"]) != "1"):
		t.Errorf("Update under OOM succeeded, but Load gives %v, %v", r.Values, lerr)
	case err != nil && (errors.Is(err, filesession.ErrNotFound) || lerr != nil || len(r.Values) != 1):
		t.Errorf("Update under OOM: %v; Load gives %v, %v; want a store error and no change", err, r.Values, lerr)
	}
	s.client.ConfigSet(ctx, "maxmemory", "0")
	if err := s.Save(ctx, id, filesession.Change{At: time.Now()}); err != nil {
		t.Errorf("Save after OOM cleared: %v", err)
	}
}

// TestReadOnlyReplica points the store at a replica that holds the session,
// as a client would after a failover it has not noticed yet, and checks that
// writes fail with the server's READONLY error as a store error, while
// reads still work.
func TestReadOnlyReplica(t *testing.T) {
	ctx := t.Context()
	primary, _ := ownStore(t, Options{})
	s, _ := ownStore(t, Options{})
	id := filesession.NewID()
	if err := primary.Create(ctx, id, rec(time.Now(), "a", "1")); err != nil {
		t.Fatal(err)
	}
	// Sync at once instead of after the default 5s diskless-sync delay.
	primary.client.ConfigSet(ctx, "repl-diskless-sync-delay", "0")
	host, port, _ := strings.Cut(primary.client.(*redis.Client).Options().Addr, ":")
	if err := s.client.SlaveOf(ctx, host, port).Err(); err != nil {
		t.Fatal(err)
	}
	for s.client.Exists(ctx, s.Key(id)).Val() == 0 { // initial sync
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := s.Load(ctx, id); err != nil {
		t.Fatalf("Load on a replica: %v", err)
	}
	errs := everyOp(ctx, s, id)
	for _, op := range []string{"Load", "List"} { // reads work on a replica
		if errs[op] != nil {
			t.Errorf("%s on a replica: %v", op, errs[op])
		}
		delete(errs, op)
	}
	wantStoreErrors(t, "on a read-only replica", id, errs)
	for op, err := range errs {
		if err != nil && !strings.Contains(err.Error(), "READONLY") {
			t.Errorf("%s on a replica: %v, want the server's READONLY error", op, err)
		}
	}
}

// TestTwoPhaseRenewCrashAfterFreeze simulates a cluster-mode Renew whose
// process died after freezing the old record: Saves wait (and give up with
// a store error) while the lease lasts, and go through once it has run out,
// clearing the stale marker.
func TestTwoPhaseRenewCrashAfterFreeze(t *testing.T) {
	ctx := t.Context()
	clock := storetest.NewClock(time.Now().Truncate(time.Millisecond))
	s := newTestStore(t, Options{Now: clock.Now, Timeout: 200 * time.Millisecond})
	s.twoPhaseRenew = true
	id := filesession.NewID()
	if err := s.Create(ctx, id, rec(clock.Now(), "a", "1")); err != nil {
		t.Fatal(err)
	}
	lease := clock.Now().Add(5 * time.Second)
	out, err := freezeScript.Run(ctx, s.client, []string{s.Key(id)}, ms(clock.Now()), durMS(s.ttl), "dead", ms(lease)).StringSlice()
	if err != nil || out[0] != resOK {
		t.Fatalf("freeze: %v %v", out, err)
	}
	set := map[string]json.RawMessage{"b": json.RawMessage("2")}
	err = s.Save(ctx, id, filesession.Change{Set: set, At: clock.Now()})
	if err == nil || errors.Is(err, filesession.ErrNotFound) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Save of a frozen session: %v, want a store error after the timeout", err)
	}
	err = s.Renew(ctx, id, filesession.NewID(), filesession.Change{At: clock.Now()})
	if err == nil || errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("Renew of a session frozen by another renew: %v, want a store error", err)
	}
	if r, err := s.Load(ctx, id); err != nil || len(r.Values) != 1 {
		t.Errorf("Load of a frozen session: %v, %v; want it readable and unchanged", r.Values, err)
	}

	clock.Advance(6 * time.Second)
	if err := s.Save(ctx, id, filesession.Change{Set: set, At: clock.Now()}); err != nil {
		t.Fatalf("Save after the lease ran out: %v", err)
	}
	if n := s.client.HExists(ctx, s.Key(id), fieldRenewTo).Val(); n {
		t.Error("Save after the lease left the stale renew marker")
	}
	newID := filesession.NewID()
	if err := s.Renew(ctx, id, newID, filesession.Change{At: clock.Now()}); err != nil {
		t.Fatalf("Renew after the lease: %v", err)
	}
	if r, err := s.Load(ctx, newID); err != nil || string(r.Values["b"]) != "2" {
		t.Errorf("renewed session: %v, %v", r.Values, err)
	}
}

// TestTwoPhaseRenewDeletedDuringCopy deletes the session (a logout in
// another request) after a cluster-mode Renew copied it and before it
// committed: Renew must report ErrNotFound and remove its copy, so the
// logged-out session does not live on under the new ID.
func TestTwoPhaseRenewDeletedDuringCopy(t *testing.T) {
	ctx := t.Context()
	s := newTestStore(t, Options{})
	s.twoPhaseRenew = true
	id, newID := filesession.NewID(), filesession.NewID()
	if err := s.Create(ctx, id, rec(time.Now(), "a", "1")); err != nil {
		t.Fatal(err)
	}
	s.testHookRenewCopied = func() {
		if n := s.client.Exists(ctx, s.Key(id), s.Key(newID)).Val(); n != 2 {
			t.Errorf("between copy and commit, %d of the two keys exist; want both (never neither)", n)
		}
		if err := s.Delete(ctx, id); err != nil {
			t.Error(err)
		}
	}
	err := s.Renew(ctx, id, newID, filesession.Change{At: time.Now()})
	if !errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("Renew of a session deleted during the copy: %v, want ErrNotFound", err)
	}
	for _, k := range []string{id, newID} {
		if _, err := s.Load(ctx, k); !errors.Is(err, filesession.ErrNotFound) {
			t.Errorf("Load after the raced Renew: %v, want ErrNotFound", err)
		}
	}
}

// TestNewClientHonoursContext checks NewClient's settings.
func TestNewClientHonoursContext(t *testing.T) {
	c, err := NewClient("redis://127.0.0.1:1/3?read_timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o := c.Options()
	if !o.ContextTimeoutEnabled || o.DB != 3 || o.ReadTimeout != 5*time.Second || o.DialTimeout != DefaultTimeout {
		t.Errorf("NewClient options: ctx=%v db=%d read=%v dial=%v", o.ContextTimeoutEnabled, o.DB, o.ReadTimeout, o.DialTimeout)
	}
	if _, err := NewClient("http://x"); err == nil {
		t.Error("NewClient accepted a non-redis URL")
	}
	var _ redis.UniversalClient = c
}

// TestTwoPhaseRenewLeaseLapsed lets a cluster-mode Renew's lease run out
// between the copy and the commit (here by moving the store's clock): the
// renew must undo the copy and fail with a store error, leaving the old ID
// live and writable.
func TestTwoPhaseRenewLeaseLapsed(t *testing.T) {
	ctx := t.Context()
	clock := storetest.NewClock(time.Now().Truncate(time.Millisecond))
	s := newTestStore(t, Options{Now: clock.Now})
	s.twoPhaseRenew = true
	id, newID := filesession.NewID(), filesession.NewID()
	if err := s.Create(ctx, id, rec(clock.Now(), "a", "1")); err != nil {
		t.Fatal(err)
	}
	s.testHookRenewCopied = func() { clock.Advance(time.Minute) }
	err := s.Renew(ctx, id, newID, filesession.Change{At: clock.Now()})
	if err == nil || errors.Is(err, filesession.ErrNotFound) || errors.Is(err, filesession.ErrExists) {
		t.Errorf("Renew whose lease lapsed: %v, want a store error", err)
	}
	if _, err := s.Load(ctx, newID); !errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("Load of the new ID: %v, want ErrNotFound (the copy undone)", err)
	}
	if err := s.Save(ctx, id, filesession.Change{Set: map[string]json.RawMessage{"b": json.RawMessage("2")}, At: clock.Now()}); err != nil {
		t.Errorf("Save of the old ID after the lapsed renew: %v", err)
	}
	if s.client.HExists(ctx, s.Key(id), fieldRenewTo).Val() {
		t.Error("the lapsed renew left its marker")
	}
}
