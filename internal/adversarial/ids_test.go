package adversarial

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filesession/filesession"
)

// liveIDPlusJSON names the case whose ID is a live session's ID followed by
// ".json", the tail of its file name.
const liveIDPlusJSON = "a live ID plus .json"

// hostileIDs are IDs that must never reach a file name, each correctly
// signed by the cases below so that only validation can stop them.
var hostileIDs = []struct{ name, id string }{
	{"../x", "../x"},
	{"../sessions/../x", "../sessions/../x"},
	{"a/b", "a/b"},
	{"absolute path", "/etc/passwd"},
	{".", "."},
	{"..", ".."},
	{"empty", ""},
	{"%2e%2e%2f", "%2e%2e%2f"},
	{"%2e%2e%2f padded to the ID length", "%2e%2e%2f" + strings.Repeat("a", filesession.IDLength-9)},
	{"../ padded to the ID length", "../" + strings.Repeat("a", filesession.IDLength-3)},
	{"a/ padded to the ID length", strings.Repeat("a", filesession.IDLength-2) + "/b"},
	{"backslashes padded to the ID length", `..\..\` + strings.Repeat("a", filesession.IDLength-6)},
	{"dots only, ID length", strings.Repeat(".", filesession.IDLength)},
	{"one character short", strings.Repeat("a", filesession.IDLength-1)},
	{"one character long", strings.Repeat("a", filesession.IDLength+1)},
	{liveIDPlusJSON, ""}, // filled in with the victim's ID
	{"padded base64 (=)", strings.Repeat("a", filesession.IDLength-1) + "="},
	{"standard base64 (+)", strings.Repeat("a", filesession.IDLength-1) + "+"},
	{"space in it", strings.Repeat("a", filesession.IDLength-1) + " "},
	{"non-ASCII", strings.Repeat("a", filesession.IDLength-2) + "é"},
	{"4 KiB", strings.Repeat("a", 4000)},
}

// TestHostileIDs signs each hostile ID with the manager's key, so that it
// passes the MAC, and presents it: first through the real codec, whose
// format check stops it; then through a codec that checks only the MAC and
// hands any ID on, so that the file store's own ID validation must stop
// it. Either way the request has no session and nothing anywhere under the
// test's directory changes, including canary files named like the paths
// the IDs spell.
func TestHostileIDs(t *testing.T) {
	for _, layer := range []struct {
		name string
		lax  bool
	}{
		{"stopped by the codec", false},
		{"stopped by the store", true},
	} {
		t.Run(layer.name, func(t *testing.T) {
			seen := &loadRecorder{}
			e := newEnv(t, setup{manager: func(m *filesession.Manager) {
				seen.Store = m.Store
				m.Store = seen
				if layer.lax {
					m.Codec = macOnlyCodec{testKey}
				}
			}})
			victim := e.browser(t)
			victim.login("victim@example.com")
			for _, c := range hostileIDs {
				id := c.id
				if c.name == liveIDPlusJSON {
					id = victim.id() + ".json"
				}
				t.Run(c.name, func(t *testing.T) {
					value := sign(testKey, e.name(), id)
					e.noSession(t, func(method, path string) *http.Request {
						return withCookieHeader(request(method, path), e.name()+"="+value)
					})
					// Through the lax codec, every ID that net/http's cookie
					// parser lets through must have reached the store, or
					// this layer proves nothing.
					parsed, _ := http.ParseCookie(e.name() + "=" + value)
					reached := seen.loaded(id)
					switch {
					case layer.lax && len(parsed) == 1 && parsed[0].Value == value && !reached:
						t.Fatalf("the ID never reached the store")
					case !layer.lax && reached:
						t.Fatalf("the codec let the ID through to the store")
					}
				})
			}
			t.Run("a write with a hostile ID gets a fresh ID, never the presented one", func(t *testing.T) {
				before := e.sessionFiles()
				b := e.browser(t)
				b.value = sign(testKey, e.name(), "../x")
				b.fetchToken() // creates a session
				created := e.sessionFiles()
				if len(created) != len(before)+1 || !filesession.ValidID(b.id(), filesession.IDLength) || !e.hasFile(b.id()) {
					t.Fatalf("files before %d, after %d; new cookie's ID %q", len(before), len(created), b.id())
				}
			})
			if rec := victim.get("/me"); rec.Code != 200 {
				t.Fatalf("victim's session did not survive: %d", rec.Code)
			}
		})
	}
}

// loadRecorder is the real store, remembering which IDs Load was asked for.
type loadRecorder struct {
	filesession.Store
	mu  sync.Mutex
	ids map[string]bool
}

func (s *loadRecorder) Load(ctx context.Context, id string) (filesession.Record, error) {
	s.mu.Lock()
	if s.ids == nil {
		s.ids = map[string]bool{}
	}
	s.ids[id] = true
	s.mu.Unlock()
	return s.Store.Load(ctx, id)
}

func (s *loadRecorder) loaded(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id]
}

// TestStoreRefusesHostileIDs calls every method of the file store with each
// hostile ID: each fails with ErrInvalidID (which is also ErrNotFound)
// before touching the filesystem.
func TestStoreRefusesHostileIDs(t *testing.T) {
	e := newEnv(t, setup{})
	victim := e.browser(t)
	victim.login("victim@example.com")
	ctx := context.Background()
	now := e.clock.Now()
	for _, c := range hostileIDs {
		t.Run(c.name, func(t *testing.T) {
			before := e.snapshot()
			id := c.id
			if c.name == liveIDPlusJSON {
				id = victim.id() + ".json"
			}
			r := filesession.Record{Created: now, LastAccess: now, IdleTimeout: time.Hour}
			errs := map[string]error{}
			_, errs["Load"] = e.store.Load(ctx, id)
			errs["Create"] = e.store.Create(ctx, id, r)
			errs["Save"] = e.store.Save(ctx, id, filesession.Change{At: now})
			errs["Touch"] = e.store.Touch(ctx, id, now, now.Add(time.Hour))
			errs["Update"] = e.store.Update(ctx, id, func(*filesession.Record) error { return nil })
			errs["Renew from"] = e.store.Renew(ctx, id, filesession.NewID(), filesession.Change{At: now})
			errs["Renew onto"] = e.store.Renew(ctx, victim.id(), id, filesession.Change{At: now})
			errs["Delete"] = e.store.Delete(ctx, id)
			for op, err := range errs {
				if !errors.Is(err, filesession.ErrInvalidID) || !errors.Is(err, filesession.ErrNotFound) {
					t.Errorf("%s(%q): %v, want ErrInvalidID", op, id, err)
				}
			}
			e.unchanged(t, before)
		})
	}
}

// TestUnknownIDsInBulk presents 100,000 correctly signed IDs that the
// server never issued: every one is no session, the store creates nothing
// for any of them, and the directory is byte for byte what it was (Django
// CVE-2015-5143 created a record per unknown key).
func TestUnknownIDsInBulk(t *testing.T) {
	e := newEnv(t, setup{})
	victim := e.browser(t)
	victim.login("victim@example.com")
	before := e.snapshot()
	const n = 100_000
	name := e.name()
	workers := runtime.GOMAXPROCS(0)
	var failures atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n && failures.Load() < 5; i += workers {
				req := request("GET", "/me")
				req.Header["Cookie"] = []string{name + "=" + sign(testKey, name, filesession.NewID())}
				rec := e.serve(req)
				sc := rec.Header().Get("Set-Cookie")
				if rec.Code != http.StatusUnauthorized || !strings.Contains(sc, "Max-Age=0") {
					failures.Add(1)
					t.Errorf("request %d: %d, Set-Cookie %q; want 401 with the dead cookie cleared", i, rec.Code, sc)
				}
			}
		}()
	}
	wg.Wait()
	e.unchanged(t, before)
	if files := e.sessionFiles(); len(files) != 1 || files[0] != victim.id() {
		t.Fatalf("session files after the flood: %q", files)
	}
}
