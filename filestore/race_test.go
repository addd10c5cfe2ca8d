package filestore_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
)

// Races with the end of a session: a slow request that loaded it before
// another request logged out, renewed it or let it expire and the reaper
// took it must not bring it back; and the reaper must not take a session
// that was refreshed while it was deciding.

// slowServer serves /slow through a's manager: the handler signals that the
// session is loaded, waits for proceed, then does act to it.
func slowServer(t *testing.T, a *webapp, act func(w http.ResponseWriter, r *http.Request)) (srv *httptest.Server, loaded, proceed chan struct{}) {
	loaded, proceed = make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(loaded)
		<-proceed
		act(w, r)
	})
	srv = httptest.NewServer(a.m.Handler(mux))
	t.Cleanup(srv.Close)
	return srv, loaded, proceed
}

// TestSlowRequestAfterTheSessionEnded: for each way a session ends while
// a slow request holds it, and each thing the slow request then does, the
// client is told (409, or for a mere touch the request is served) and told
// to forget the cookie, the request's changes are dropped, and no file
// comes back.
func TestSlowRequestAfterTheSessionEnded(t *testing.T) {
	ends := []struct {
		name string
		end  func(t *testing.T, h *env, a *webapp, cookie string)
	}{
		{"Logout", func(t *testing.T, h *env, a *webapp, cookie string) {
			if r := a.must("POST", "/destroy", cookie); r.code != http.StatusOK {
				t.Fatalf("logout: %d", r.code)
			}
		}},
		{"Renew", func(t *testing.T, h *env, a *webapp, cookie string) {
			if r := a.must("POST", "/renew", cookie); r.code != http.StatusOK {
				t.Fatalf("renew: %d", r.code)
			}
		}},
		{"Reaped", func(t *testing.T, h *env, a *webapp, cookie string) {
			h.clock.Advance(25 * time.Hour) // the manager's default idle timeout is the store's TTL, 24h
			if n, err := h.s.Reap(h.ctx); n != 1 || err != nil {
				t.Fatalf("Reap = %d, %v", n, err)
			}
		}},
	}
	acts := []struct {
		name string
		act  func(w http.ResponseWriter, r *http.Request)
		// want is the status the slow request gets.
		want int
	}{
		{"Put", func(w http.ResponseWriter, r *http.Request) {
			filesession.FromContext(r.Context()).Put("cart", "item")
			io.WriteString(w, "ok")
		}, http.StatusConflict},
		{"Delete", func(w http.ResponseWriter, r *http.Request) {
			filesession.FromContext(r.Context()).Delete("a")
			io.WriteString(w, "ok")
		}, http.StatusConflict},
		{"Update", func(w http.ResponseWriter, r *http.Request) {
			s := filesession.FromContext(r.Context())
			_, err := filesession.Update(r.Context(), s, "n", func(n int, _ bool) (int, error) { return n + 1, nil })
			if !errors.Is(err, filesession.ErrGone) {
				http.Error(w, fmt.Sprintf("Update: %v, want ErrGone", err), http.StatusInternalServerError)
				return
			}
			filesession.FromContext(r.Context()).Put("after", "gone") // dropped too
			w.WriteHeader(http.StatusConflict)
		}, http.StatusConflict},
		{"Renew", func(w http.ResponseWriter, r *http.Request) {
			filesession.FromContext(r.Context()).Renew()
			io.WriteString(w, "ok")
		}, http.StatusConflict},
		{"Touch", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		}, http.StatusOK},
	}
	for _, end := range ends {
		for _, act := range acts {
			t.Run(end.name+"/"+act.name, func(t *testing.T) {
				h := newEnv(t, filestore.Options{})
				a := newWebapp(t, h.s, h.clock.Now, func(m *filesession.Manager) { m.TouchInterval = 0 })
				cookie := a.login()
				srv, loaded, proceed := slowServer(t, a, act.act)
				done := make(chan webResponse, 1)
				go func() {
					b := &webapp{t: t, m: a.m, srv: srv}
					r, err := b.do("POST", "/slow", cookie)
					if err != nil {
						t.Error(err)
					}
					done <- r
				}()
				<-loaded
				before := h.names()
				end.end(t, h, a, cookie)
				close(proceed)
				r := <-done
				if r.code != act.want {
					t.Errorf("the slow request got %d %q, want %d", r.code, r.body, act.want)
				}
				if v, has := r.cookie(); !has || v != "" {
					t.Errorf("the slow request's cookie was not cleared: %v", r.hdr.Values("Set-Cookie"))
				}
				// Nothing came back: the directory holds what the ending
				// left (nothing, or the renewed session without the slow
				// request's changes).
				var sessions []string
				if err := h.s.List(h.ctx, func(id string, rec filesession.Record) error {
					b, _ := json.Marshal(rec.Values)
					sessions = append(sessions, string(b))
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				want := "[]"
				if end.name == "Renew" {
					want = `[{"a":"old"}]`
				}
				if got := "[" + strings.Join(sessions, ",") + "]"; got != want {
					t.Errorf("after the slow request the store holds %s, want %s (directory before: %v)", got, want, before)
				}
				if v := a.show(cookie); v != "{}" {
					t.Errorf("the old cookie shows %s", v)
				}
			})
		}
	}
}

// The store-level view of the same race: whatever a stale caller does
// after the session is gone, it gets ErrNotFound and no file appears.
func TestNoResurrectionAtTheStore(t *testing.T) {
	h := newEnv(t, filestore.Options{})
	for _, end := range []string{"Delete", "Renew", "Reap"} {
		id := h.create("a", "1")
		if _, err := h.s.Load(h.ctx, id); err != nil {
			t.Fatal(err)
		}
		switch end {
		case "Delete":
			if err := h.s.Delete(h.ctx, id); err != nil {
				t.Fatal(err)
			}
		case "Renew":
			if err := h.s.Renew(h.ctx, id, filesession.NewID(), filesession.Change{At: h.clock.Now()}); err != nil {
				t.Fatal(err)
			}
		case "Reap":
			h.clock.Advance(time.Hour)
			if n, err := h.s.Reap(h.ctx); n < 1 || err != nil {
				t.Fatalf("Reap = %d, %v", n, err)
			}
		}
		now := h.clock.Now()
		ops := map[string]error{
			"Save":   h.s.Save(h.ctx, id, filesession.Change{Set: map[string]json.RawMessage{"x": json.RawMessage("1")}, At: now}),
			"Touch":  h.s.Touch(h.ctx, id, now, now.Add(time.Hour)),
			"Update": h.s.Update(h.ctx, id, func(*filesession.Record) error { t.Error("Update ran fn on a gone session"); return nil }),
			"Renew":  h.s.Renew(h.ctx, id, filesession.NewID(), filesession.Change{At: now}),
		}
		for op, err := range ops {
			if !errors.Is(err, filesession.ErrNotFound) {
				t.Errorf("%s after %s: %v, want ErrNotFound", op, end, err)
			}
		}
		if _, err := os.Lstat(h.path(id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after %s a file is back: %v", end, err)
		}
	}
}

// pauseAt makes the hookFS stop the first call matching op and name, once,
// until the returned release is called; reached is closed when it stops.
func pauseAt(h *env, op, name string) (reached chan struct{}, release func()) {
	reached = make(chan struct{})
	gate := make(chan struct{})
	var once sync.Once
	h.fs.setHook(func(c call) error {
		if c.op == op && c.name == name {
			stopped := false
			once.Do(func() { stopped = true })
			if stopped {
				close(reached)
				<-gate
			}
		}
		return nil
	})
	return reached, func() { close(gate) }
}

// The reaper decides in two steps: a look at the file's access time (the
// expiry hint) without the lock, then, if that says "maybe expired", a read
// under the session's lock. A session refreshed between the two, by a Save
// (locked) or a Touch (not locked), survives, even when the refresh is
// what keeps it alive at the time of the decision.
func TestReaperVersusRefresh(t *testing.T) {
	for _, refresh := range []string{"Save", "Touch", "Update"} {
		t.Run(refresh, func(t *testing.T) {
			h := newEnv(t, filestore.Options{})
			r := h.record("a", "1")
			r.IdleTimeout = 10 * time.Minute
			id := filesession.NewID()
			if err := h.s.Create(h.ctx, id, r); err != nil {
				t.Fatal(err)
			}
			// Nine minutes on, the hint on disk is in the past (as after a
			// backup tool read the file), so the reaper will look closer.
			at := h.clock.Advance(9 * time.Minute)
			if err := os.Chtimes(h.path(id), t0, t0); err != nil {
				t.Fatal(err)
			}
			// The reaper stops just before it takes the session's lock,
			// having seen the past hint; another store (as another
			// process would) refreshes the session meanwhile.
			o := newEnvClock(t, h.dir, h.clock)
			reached, release := pauseAt(h, "lock", ".filesession.lock")
			type result struct {
				n   int
				err error
			}
			reaped := make(chan result)
			go func() {
				n, err := h.s.Reap(h.ctx)
				reaped <- result{n, err}
			}()
			<-reached
			// The refresh, while the reaper is between its look and its
			// lock; then time passes beyond the session's old expiry.
			var err error
			switch refresh {
			case "Save":
				err = o.s.Save(o.ctx, id, filesession.Change{At: at})
			case "Touch":
				err = o.s.Touch(o.ctx, id, at, at.Add(10*time.Minute))
			case "Update":
				err = o.s.Update(o.ctx, id, func(r *filesession.Record) error { r.LastAccess = at; return nil })
			}
			if err != nil {
				t.Fatalf("%s: %v", refresh, err)
			}
			h.clock.Advance(2 * time.Minute) // 11 minutes: past the old expiry
			release()
			if res := <-reaped; res.n != 0 || res.err != nil {
				t.Errorf("Reap = %d, %v; want the refreshed session kept", res.n, res.err)
			}
			if _, err := h.s.Load(h.ctx, id); err != nil {
				t.Errorf("the refreshed session: %v", err)
			}
		})
	}

	// A Save that waits for the lock the reaper holds: if the reaper
	// found the session expired, the Save finds it gone (and creates
	// nothing); the session is never half-reaped.
	t.Run("SaveWaitsForTheReaper", func(t *testing.T) {
		h := newEnv(t, filestore.Options{})
		r := h.record("a", "1")
		r.IdleTimeout = 10 * time.Minute
		id := filesession.NewID()
		if err := h.s.Create(h.ctx, id, r); err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(11 * time.Minute)
		reached, release := pauseAt(h, "open", "sess_"+id+".json") // the reaper's locked read
		reaped := make(chan int)
		go func() {
			n, err := h.s.Reap(h.ctx)
			if err != nil {
				t.Error(err)
			}
			reaped <- n
		}()
		<-reached
		saved := make(chan error)
		go func() { saved <- h.s.Save(h.ctx, id, filesession.Change{At: h.clock.Now()}) }()
		release()
		if n := <-reaped; n != 1 {
			t.Errorf("Reap removed %d", n)
		}
		if err := <-saved; !errors.Is(err, filesession.ErrNotFound) {
			t.Errorf("Save of the session the reaper took: %v, want ErrNotFound", err)
		}
		if _, err := os.Lstat(h.path(id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the reaped session is back: %v", err)
		}
	})
}

// Refreshers, a reaper and a moving clock at once: a session refreshed
// within its idle timeout is never reaped, one that is not is reaped, and
// a session found gone stays gone.
func TestReaperVersusRefreshRandomly(t *testing.T) {
	t.Parallel()
	h := newEnv(t, filestore.Options{Sync: filestore.SyncNone})
	const sessions, idle = 32, 10 * time.Minute
	ids := make([]string, sessions)
	for i := range ids {
		r := h.record("i", strconv.Itoa(i))
		r.IdleTimeout = idle
		ids[i] = filesession.NewID()
		if err := h.s.Create(h.ctx, ids[i], r); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu     sync.Mutex
		lastOK = make([]time.Time, sessions) // the last refresh that succeeded
		gone   = make([]bool, sessions)
	)
	for i := range lastOK {
		lastOK[i] = t0
	}
	stop, tick := make(chan struct{}), make(chan struct{}, 1)
	var wg, refreshers sync.WaitGroup
	// The reaper, a pass after every few refreshes (passes back to back
	// would keep the directory's lock busy and starve the writers).
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-tick:
			}
			if _, err := h.s.Reap(h.ctx); err != nil {
				t.Error(err)
				return
			}
		}
	})
	// Refreshers of the even sessions, and (rarely) of the odd ones, which
	// therefore expire; the clock moves a minute every 64 refreshes.
	var ops int
	for g := range 4 {
		refreshers.Go(func() {
			for k := range 400 {
				i := 2 * ((4*k + g) % (sessions / 2))
				if k == 7 {
					i |= 1 // the odd sessions' last refresh
				}
				mu.Lock()
				ops++
				if ops%64 == 0 {
					h.clock.Advance(time.Minute)
				}
				if ops%8 == 0 {
					select {
					case tick <- struct{}{}:
					default:
					}
				}
				mu.Unlock()
				at := h.clock.Now()
				err := h.s.Save(h.ctx, ids[i], filesession.Change{At: at})
				mu.Lock()
				switch {
				case err == nil && gone[i]:
					t.Errorf("session %d was saved after it was found gone", i)
				case err == nil:
					if at.After(lastOK[i]) {
						lastOK[i] = at
					}
				case errors.Is(err, filesession.ErrNotFound):
					gone[i] = true
				default:
					t.Error(err)
				}
				mu.Unlock()
			}
		})
	}
	refreshers.Wait()
	close(stop)
	wg.Wait()
	end := h.clock.Now()
	if _, err := h.s.Reap(h.ctx); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		_, err := h.s.Load(h.ctx, id)
		live := end.Before(lastOK[i].Add(idle))
		switch {
		case live && err != nil:
			t.Errorf("session %d, refreshed at %v, was reaped before %v: %v", i, lastOK[i].Sub(t0), end.Sub(t0), err)
		case !live && err == nil:
			t.Errorf("session %d, last refreshed at %v, is alive at %v", i, lastOK[i].Sub(t0), end.Sub(t0))
		case gone[i] && err == nil:
			t.Errorf("session %d came back", i)
		}
	}
	t.Logf("%d refreshes over %v of fake time", ops, end.Sub(t0))
}

func init() {
	childRoles["reap"] = func(t *testing.T, dir, nowMillis string) {
		ms, err := strconv.ParseInt(nowMillis, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		s, err := filestore.Open(filestore.Options{Path: dir, Logger: quiet, Now: func() time.Time { return time.UnixMilli(ms) }})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		childSay("ready")
		childWait(t)
		n, err := s.Reap(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		childSay("reaped %d", n)
	}
}

// Two stores in this process and one in another reap the same directory
// at once: together they remove every expired session exactly once, none
// reports an error, and every live session stays.
func TestConcurrentReapers(t *testing.T) {
	dir := t.TempDir()
	h := newEnv(t, filestore.Options{Path: dir, Sync: filestore.SyncNone})
	const expired, live = 300, 100
	var liveIDs []string
	for i := range expired + live {
		r := h.record("i", strconv.Itoa(i))
		r.IdleTimeout = 10 * time.Minute
		if i >= expired {
			r.IdleTimeout = time.Hour
		}
		id := filesession.NewID()
		if err := h.s.Create(h.ctx, id, r); err != nil {
			t.Fatal(err)
		}
		if i >= expired {
			liveIDs = append(liveIDs, id)
		}
	}
	now := h.clock.Advance(30 * time.Minute)
	other := newEnvClock(t, dir, h.clock)
	c := startChild(t, "reap", dir, strconv.FormatInt(now.UnixMilli(), 10))
	c.expect(t, "ready")

	counts := make(chan int, 2)
	var wg sync.WaitGroup
	c.send(t, "go")
	for _, s := range []*filestore.Store{h.s, other.s} {
		wg.Go(func() {
			n, err := s.Reap(h.ctx)
			if err != nil {
				t.Errorf("Reap: %v", err)
			}
			counts <- n
		})
	}
	wg.Wait()
	line, _ := c.stdout.ReadString('\n')
	c.wait(t)
	var childN int
	if _, err := fmt.Sscanf(line, "reaped %d", &childN); err != nil {
		t.Fatalf("child said %q", line)
	}
	total := childN + <-counts + <-counts
	if total != expired {
		t.Errorf("the reapers removed %d sessions together, want %d", total, expired)
	}
	for _, id := range liveIDs {
		if _, err := h.s.Load(h.ctx, id); err != nil {
			t.Errorf("a live session: %v", err)
		}
	}
	for _, l := range []string{h.logs.String(), other.logs.String()} {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			t.Errorf("a reaper complained:\n%s", l)
		}
	}
	if n, err := h.s.Reap(h.ctx); n != 0 || err != nil {
		t.Errorf("a later Reap = %d, %v", n, err)
	}
}

// A process that takes no locks (Node's session-file-store) deletes a
// session while a Save of it is between its read and its rename: under
// SyncFull the Save notices (the version it read is gone when it links it
// aside) and reports not found instead of writing the session back.
func TestNoResurrectionAgainstAnUnlockedDelete(t *testing.T) {
	h := newEnv(t, filestore.Options{Sync: filestore.SyncFull})
	id := h.create("a", "1")
	h.fs.setHook(func(c call) error {
		if c.op == "open" && strings.HasSuffix(c.name, ".tmp") {
			h.fs.setHook(nil)
			if err := os.Remove(h.path(id)); err != nil {
				t.Error(err)
			}
		}
		return nil
	})
	err := h.s.Save(h.ctx, id, filesession.Change{Set: map[string]json.RawMessage{"b": json.RawMessage("2")}, At: h.clock.Now()})
	if !errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("Save of a session deleted meanwhile: %v, want ErrNotFound", err)
	}
	for _, n := range h.names() {
		if n != ".filesession.lock" {
			t.Errorf("%s is in the directory", n)
		}
	}
}
