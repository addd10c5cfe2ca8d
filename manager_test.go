package filesession_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/memstore"
	"github.com/filesession/filesession/storetest"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

// newClock is the fake clock shared by the manager and the store.
func newClock() *storetest.Clock { return storetest.NewClock(time.Now().Truncate(time.Millisecond)) }

// faultStore is a real store whose chosen operations fail while armed, to
// drive the manager's error paths.
type faultStore struct {
	filesession.Store
	mu   sync.Mutex
	fail map[string]error
}

func (f *faultStore) arm(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == nil {
		f.fail = map[string]error{}
	}
	f.fail[op] = err
}

func (f *faultStore) err(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail[op]
}

func (f *faultStore) Load(ctx context.Context, id string) (filesession.Record, error) {
	if err := f.err("load"); err != nil {
		return filesession.Record{}, err
	}
	return f.Store.Load(ctx, id)
}

func (f *faultStore) Create(ctx context.Context, id string, r filesession.Record) error {
	if err := f.err("create"); err != nil {
		return err
	}
	return f.Store.Create(ctx, id, r)
}

func (f *faultStore) Save(ctx context.Context, id string, c filesession.Change) error {
	if err := f.err("save"); err != nil {
		return err
	}
	return f.Store.Save(ctx, id, c)
}

func (f *faultStore) Touch(ctx context.Context, id string, at, exp time.Time) error {
	if err := f.err("touch"); err != nil {
		return err
	}
	return f.Store.Touch(ctx, id, at, exp)
}

func (f *faultStore) Delete(ctx context.Context, id string) error {
	if err := f.err("delete"); err != nil {
		return err
	}
	return f.Store.Delete(ctx, id)
}

func (f *faultStore) Renew(ctx context.Context, o, n string, c filesession.Change) error {
	if err := f.err("renew"); err != nil {
		return err
	}
	return f.Store.Renew(ctx, o, n, c)
}

// env is a test server with a cookie-jar client.
type env struct {
	t     *testing.T
	clock *storetest.Clock
	mem   *memstore.Store
	store *faultStore
	m     *filesession.Manager
	srv   *httptest.Server
	c     *http.Client
}

func newEnv(t *testing.T, configure ...func(*filesession.Manager)) *env {
	t.Helper()
	e := &env{t: t, clock: newClock()}
	e.mem = memstore.New()
	e.mem.Now = e.clock.Now
	e.store = &faultStore{Store: e.mem}
	m, err := filesession.New(e.store, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	m.Now = e.clock.Now
	m.Logger = slog.New(slog.DiscardHandler)
	for _, f := range configure {
		f(m)
	}
	e.m = m
	e.srv = httptest.NewServer(m.Handler(testMux()))
	t.Cleanup(e.srv.Close)
	e.c = newClient(t)
	return e
}

func newClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// testMux exposes the session API over HTTP: /put?k=&v=, /get?k=, /del?k=,
// /renew, /destroy, /id, /incr?k=, /late?k=&v= (puts after writing the body).
func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		s := filesession.FromContext(r.Context())
		if err := s.Put(r.FormValue("k"), r.FormValue("v")); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		v, ok := filesession.Get[string](filesession.FromContext(r.Context()), r.FormValue("k"))
		if !ok {
			http.Error(w, "none", http.StatusNotFound)
			return
		}
		fmt.Fprint(w, v)
	})
	mux.HandleFunc("/del", func(w http.ResponseWriter, r *http.Request) {
		filesession.FromContext(r.Context()).Delete(r.FormValue("k"))
	})
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
		filesession.FromContext(r.Context()).Renew()
	})
	mux.HandleFunc("/destroy", func(w http.ResponseWriter, r *http.Request) {
		filesession.FromContext(r.Context()).Destroy()
	})
	mux.HandleFunc("/id", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, filesession.FromContext(r.Context()).ID())
	})
	mux.HandleFunc("/incr", func(w http.ResponseWriter, r *http.Request) {
		n, err := filesession.Update(r.Context(), filesession.FromContext(r.Context()), r.FormValue("k"),
			func(n int, _ bool) (int, error) { return n + 1, nil })
		if errors.Is(err, filesession.ErrGone) {
			http.Error(w, "gone", http.StatusConflict)
			return
		}
		if err != nil {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("/late", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "body first")
		filesession.FromContext(r.Context()).Put(r.FormValue("k"), r.FormValue("v"))
	})
	return mux
}

// do sends a request and returns the status and body.
func (e *env) do(c *http.Client, method, path string, hdr ...string) (int, string, *http.Response) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

func (e *env) get(path string) (int, string) {
	code, body, _ := e.do(e.c, "GET", path)
	return code, body
}

func (e *env) post(path string) (int, string) {
	code, body, _ := e.do(e.c, "POST", path)
	return code, body
}

// cookie returns the session cookie the client holds ("" if none).
func (e *env) cookie() string {
	u, _ := url.Parse(e.srv.URL)
	for _, c := range e.c.Jar.Cookies(u) {
		if c.Name == e.m.CookieName() {
			return c.Value
		}
	}
	return ""
}

// count returns how many sessions the store holds.
func (e *env) count() int {
	n := 0
	e.mem.List(context.Background(), func(string, filesession.Record) error { n++; return nil })
	return n
}

func TestCreateReadModifyDelete(t *testing.T) {
	e := newEnv(t)
	if code, _ := e.get("/get?k=a"); code != 404 {
		t.Fatalf("fresh client: got %d, want 404", code)
	}
	if e.cookie() != "" || e.count() != 0 {
		t.Fatal("a request that stores nothing must set no cookie and create no session")
	}
	e.post("/put?k=a&v=1")
	if e.cookie() == "" || e.count() != 1 {
		t.Fatalf("after put: cookie %q, sessions %d", e.cookie(), e.count())
	}
	if _, body := e.get("/get?k=a"); body != "1" {
		t.Fatalf("read back %q", body)
	}
	e.post("/put?k=a&v=2")
	e.post("/put?k=b&v=x")
	if _, body := e.get("/get?k=a"); body != "2" {
		t.Fatalf("modified value %q", body)
	}
	e.post("/del?k=a")
	if code, _ := e.get("/get?k=a"); code != 404 {
		t.Fatal("deleted key still there")
	}
	if _, body := e.get("/get?k=b"); body != "x" {
		t.Fatal("other key lost")
	}
}

func TestCookieDefaults(t *testing.T) {
	e := newEnv(t)
	_, _, resp := e.do(e.c, "POST", "/put?k=a&v=1")
	sc := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"session=", "Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=86400"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	if strings.Contains(sc, "Secure") {
		t.Errorf("plain-HTTP cookie marked Secure: %q", sc)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Vary") != "Cookie" {
		t.Errorf("response setting a cookie must be uncacheable: %v", resp.Header)
	}
}

func TestSecureOnTLS(t *testing.T) {
	m, err := filesession.New(memstore.New(), testSecret)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(m.Handler(testMux()))
	defer srv.Close()
	c := srv.Client()
	resp, err := c.Post(srv.URL+"/put?k=a&v=1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if sc := resp.Header.Get("Set-Cookie"); !strings.Contains(sc, "Secure") {
		t.Fatalf("cookie over TLS not Secure: %q", sc)
	}
	_ = tls.VersionTLS13
}

func TestRenewKillsOldCookie(t *testing.T) {
	e := newEnv(t)
	e.post("/put?k=user&v=alice")
	_, oldID := e.get("/id")
	old := e.cookie()
	e.post("/renew")
	_, newID := e.get("/id")
	if newID == oldID || newID == "" {
		t.Fatalf("renew kept the ID %q", newID)
	}
	if _, body := e.get("/get?k=user"); body != "alice" {
		t.Fatal("renew lost the data")
	}
	// Replay the old cookie from another client.
	c2 := newClient(t)
	code, _, _ := e.do(c2, "GET", "/get?k=user", "Cookie", "session="+old)
	if code != 404 {
		t.Fatalf("old cookie after renew: %d, want no session", code)
	}
	if e.count() != 1 {
		t.Fatalf("renew must leave one record, have %d", e.count())
	}
}

func TestDestroyKillsCookie(t *testing.T) {
	e := newEnv(t)
	e.post("/put?k=user&v=alice")
	old := e.cookie()
	_, _, resp := e.do(e.c, "POST", "/destroy")
	if sc := resp.Header.Get("Set-Cookie"); !strings.Contains(sc, "Max-Age=0") {
		t.Fatalf("destroy must clear the cookie, got %q", sc)
	}
	if e.count() != 0 {
		t.Fatal("destroy left the record")
	}
	c2 := newClient(t)
	if code, _, _ := e.do(c2, "GET", "/get?k=user", "Cookie", "session="+old); code != 404 {
		t.Fatal("old cookie after destroy still works")
	}
}

func TestIdleExpiryAndTouch(t *testing.T) {
	e := newEnv(t, func(m *filesession.Manager) { m.IdleTimeout = time.Hour })
	e.post("/put?k=a&v=1")
	// Used every 50 minutes, it stays alive through touches.
	for i := 0; i < 4; i++ {
		e.clock.Advance(50 * time.Minute)
		if code, _ := e.get("/get?k=a"); code != 200 {
			t.Fatalf("round %d: active session expired", i)
		}
	}
	e.clock.Advance(time.Hour)
	if code, _ := e.get("/get?k=a"); code != 404 {
		t.Fatal("idle session did not expire")
	}
}

func TestAbsoluteLifetime(t *testing.T) {
	e := newEnv(t, func(m *filesession.Manager) {
		m.IdleTimeout = time.Hour
		m.Lifetime = 3 * time.Hour
	})
	e.post("/put?k=a&v=1")
	for i := 0; i < 5; i++ {
		e.clock.Advance(30 * time.Minute)
		e.post("/put?k=a&v=1") // continuous activity
	}
	if code, _ := e.get("/get?k=a"); code != 200 {
		t.Fatal("session died before its lifetime")
	}
	e.clock.Advance(31 * time.Minute)
	if code, _ := e.get("/get?k=a"); code != 404 {
		t.Fatal("session outlived its absolute lifetime despite activity")
	}
}

func TestUnchangedRequestWritesNothingWithinTouchInterval(t *testing.T) {
	e := newEnv(t)
	e.post("/put?k=a&v=1")
	e.store.arm("touch", errors.New("touch must not be called"))
	e.store.arm("save", errors.New("save must not be called"))
	e.clock.Advance(30 * time.Second)
	_, _, resp := e.do(e.c, "GET", "/get?k=a")
	if resp.StatusCode != 200 || resp.Header.Get("Set-Cookie") != "" {
		t.Fatalf("read within TouchInterval: %d, Set-Cookie %q", resp.StatusCode, resp.Header.Get("Set-Cookie"))
	}
}

func TestStrictModeNeverAdoptsUnknownID(t *testing.T) {
	e := newEnv(t)
	unknown := filesession.NewID()
	forged := e.m.Codec.Encode("session", unknown) // correctly signed, never issued
	c := newClient(t)
	code, _, resp := e.do(c, "POST", "/put?k=a&v=1", "Cookie", "session="+forged)
	if code != 200 {
		t.Fatal(code)
	}
	if _, err := e.mem.Load(context.Background(), unknown); !errors.Is(err, filesession.ErrNotFound) {
		t.Fatal("the store adopted an ID the client chose")
	}
	if !strings.Contains(resp.Header.Get("Set-Cookie"), "session=") || strings.Contains(resp.Header.Get("Set-Cookie"), unknown) {
		t.Fatalf("expected a fresh ID, got %q", resp.Header.Get("Set-Cookie"))
	}
}

func TestBadCookiesAreNoSession(t *testing.T) {
	e := newEnv(t)
	e.post("/put?k=a&v=1")
	good := e.cookie()
	flip := []byte(good)
	flip[len(flip)-2] ^= 1
	other, _ := filesession.NewSignedCodec([]byte("another-secret-another-secret-another-secret"))
	cases := map[string]string{
		"empty":          "session=",
		"garbage":        "session=%%%;;;",
		"bit flip":       "session=" + string(flip),
		"truncated":      "session=" + good[:len(good)-1],
		"trailing":       "session=" + good + "x",
		"unsigned id":    "session=" + good[:filesession.IDLength],
		"other key":      "session=" + other.Encode("session", good[:filesession.IDLength]),
		"other name":     "session=" + e.m.Codec.Encode("other", good[:filesession.IDLength]),
		"huge":           "session=" + strings.Repeat("A", 8192),
		"traversal":      "session=" + e.m.Codec.Encode("session", "../../../../etc/passwd"),
		"invalid utf8":   "session=\xff\xfe",
		"control bytes":  "session=\x01\x02",
		"many dupes":     strings.Repeat("session=x; ", 1000),
		"only semicolon": ";;;",
	}
	h := e.m.Handler(testMux())
	for name, hdr := range cases {
		t.Run(name, func(t *testing.T) {
			// Straight into the handler: Go's client refuses to send some of
			// these headers, a hostile client does not.
			req := httptest.NewRequest("GET", "/get?k=a", nil)
			req.Header["Cookie"] = []string{hdr}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 404 {
				t.Fatalf("got %d, want 404 (no session)", rec.Code)
			}
		})
	}
	if e.count() != 1 {
		t.Fatalf("bad cookies created sessions: %d", e.count())
	}
}

func TestDuplicateCookiesFirstValidWins(t *testing.T) {
	e := newEnv(t)
	e.post("/put?k=a&v=mine")
	good := e.cookie()
	c := newClient(t)
	code, body, _ := e.do(c, "GET", "/get?k=a", "Cookie", "session=forged; session="+good)
	if code != 200 || body != "mine" {
		t.Fatalf("valid duplicate after a forged one: %d %q", code, body)
	}
}

func TestKeyRotation(t *testing.T) {
	e := newEnv(t)
	e.post("/put?k=a&v=1")
	oldCookie := e.cookie()
	// Rotate: a new first secret, the old one still accepted.
	codec, err := filesession.NewSignedCodec([]byte("the-new-secret-the-new-secret-the-new"), testSecret)
	if err != nil {
		t.Fatal(err)
	}
	e.m.Codec = codec
	_, _, resp := e.do(e.c, "GET", "/get?k=a")
	if resp.StatusCode != 200 {
		t.Fatal("old-key cookie refused during rotation")
	}
	if e.cookie() == oldCookie {
		t.Fatal("cookie not re-signed with the new key")
	}
	// Drop the old key: the re-signed cookie keeps working.
	codec2, _ := filesession.NewSignedCodec([]byte("the-new-secret-the-new-secret-the-new"))
	e.m.Codec = codec2
	if code, _ := e.get("/get?k=a"); code != 200 {
		t.Fatal("re-signed cookie refused after the old key was dropped")
	}
}

func TestWeakSecretsRefused(t *testing.T) {
	for _, s := range [][][]byte{nil, {nil}, {[]byte("")}, {[]byte("short")}, {testSecret, []byte("short")}} {
		if _, err := filesession.New(memstore.New(), s...); !errors.Is(err, filesession.ErrWeakSecret) {
			t.Errorf("New(%q): %v, want ErrWeakSecret", s, err)
		}
	}
}

func TestStoreFailureIs503AndKeepsSession(t *testing.T) {
	e := newEnv(t)
	e.post("/put?k=a&v=1")
	before := e.cookie()
	eio := fmt.Errorf("disk: %w", syscall.EIO)
	for _, op := range []string{"save", "renew", "delete"} {
		t.Run(op, func(t *testing.T) {
			e.store.arm(op, eio)
			defer e.store.arm(op, nil)
			path := map[string]string{"save": "/put?k=a&v=2", "renew": "/renew", "delete": "/destroy"}[op]
			code, _, resp := e.do(e.c, "POST", path)
			if code != 503 || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("got %d (Retry-After %q), want 503", code, resp.Header.Get("Retry-After"))
			}
			if resp.Header.Get("Set-Cookie") != "" {
				t.Fatal("a failed commit must not send a cookie")
			}
			if e.cookie() != before {
				t.Fatal("client's cookie changed")
			}
			if _, body := e.get("/get?k=a"); body != "1" {
				t.Fatalf("old session not intact: %q", body)
			}
		})
	}
	t.Run("load", func(t *testing.T) {
		e.store.arm("load", eio)
		defer e.store.arm("load", nil)
		if code, _ := e.get("/get?k=a"); code != 503 {
			t.Fatalf("load failure: %d, want 503 (never 'no session')", code)
		}
	})
	t.Run("create", func(t *testing.T) {
		e.store.arm("create", eio)
		defer e.store.arm("create", nil)
		c := newClient(t)
		code, _, resp := e.do(c, "POST", "/put?k=a&v=1")
		if code != 503 || resp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("create failure: %d %q", code, resp.Header.Get("Set-Cookie"))
		}
	})
	t.Run("touch is not fatal", func(t *testing.T) {
		e.store.arm("touch", eio)
		defer e.store.arm("touch", nil)
		e.clock.Advance(2 * time.Minute)
		if code, body := e.get("/get?k=a"); code != 200 || body != "1" {
			t.Fatalf("failed touch broke the request: %d %q", code, body)
		}
	})
}

func TestUpdateCountsExactly(t *testing.T) {
	e := newEnv(t)
	if _, body := e.post("/incr?k=n"); body != "1" {
		t.Fatalf("first increment on a new session: %q", body)
	}
	cookie := e.cookie()
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(t)
			for j := 0; j < 10; j++ {
				e.do(c, "POST", "/incr?k=n", "Cookie", "session="+cookie)
			}
		}()
	}
	wg.Wait()
	_, body := e.post("/incr?k=n")
	if body != "162" {
		t.Fatalf("count %s, want 162", body)
	}
}

func TestConcurrentSavesOfDifferentKeysMerge(t *testing.T) {
	e := newEnv(t)
	e.post("/put?k=base&v=1")
	cookie := e.cookie()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			e.do(newClient(t), "POST", fmt.Sprintf("/put?k=k%d&v=%d", i, i), "Cookie", "session="+cookie)
		}(i)
	}
	wg.Wait()
	for i := 0; i < 20; i++ {
		if _, body := e.get(fmt.Sprintf("/get?k=k%d", i)); body != fmt.Sprint(i) {
			t.Fatalf("key k%d lost: %q", i, body)
		}
	}
}

func TestNoResurrectionAfterConcurrentDestroy(t *testing.T) {
	e := newEnv(t)
	e.post("/put?k=a&v=1")
	cookie := e.cookie()
	// A slow request loads the session, then another request logs out,
	// then the slow one tries to save.
	loaded, proceed := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(loaded)
		<-proceed
		filesession.FromContext(r.Context()).Put("cart", "item")
	})
	slow := httptest.NewServer(e.m.Handler(mux))
	defer slow.Close()
	done := make(chan *http.Response)
	go func() {
		req, _ := http.NewRequest("POST", slow.URL+"/slow", nil)
		req.Header.Set("Cookie", "session="+cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		done <- resp
	}()
	<-loaded
	e.post("/destroy")
	close(proceed)
	resp := <-done
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("slow request after logout: %d, want 409", resp.StatusCode)
	}
	if !strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatal("slow request must clear the cookie")
	}
	if e.count() != 0 {
		t.Fatal("logged-out session resurrected")
	}
}

func TestChangesAfterBodyWriteAreSaved(t *testing.T) {
	e := newEnv(t)
	e.post("/put?k=a&v=1")
	e.post("/late?k=b&v=2")
	if _, body := e.get("/get?k=b"); body != "2" {
		t.Fatalf("change made after writing the body was lost: %q", body)
	}
}

func TestReservedKeysAndSize(t *testing.T) {
	e := newEnv(t, func(m *filesession.Manager) { m.MaxSize = 100 })
	for _, k := range []string{"cookie", "__lastAccess", ""} {
		if code, _ := e.post("/put?k=" + url.QueryEscape(k) + "&v=1"); code != 400 {
			t.Errorf("reserved key %q accepted", k)
		}
	}
	if code, _ := e.post("/put?k=big&v=" + strings.Repeat("x", 200)); code != 400 {
		t.Fatal("oversized value accepted")
	}
	if e.count() != 0 {
		t.Fatal("refused puts created a session")
	}
}

func TestNonUTF8KeyRefused(t *testing.T) {
	e := newEnv(t)
	if code, _ := e.post("/put?k=%87&v=1"); code != 400 {
		t.Fatalf("non-UTF-8 key accepted: %d", code)
	}
}
