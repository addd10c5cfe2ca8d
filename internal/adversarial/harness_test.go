package adversarial

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/csrf"
	"github.com/filesession/filesession/filestore"
	"github.com/filesession/filesession/storetest"
	"golang.org/x/sys/unix"
)

// Keys of the suite. testKey is the manager's signing key; oldKey one that
// was rotated out; strangerKey one the server never had.
var (
	testKey     = []byte("adversarial-suite-signing-key-0123456789")
	oldKey      = []byte("adversarial-suite-rotated-out-key-012345")
	strangerKey = []byte("adversarial-suite-strangers-own-key-0123")
)

// origin is where the application under test is served from.
const (
	host   = "app.example"
	origin = "http://" + host
)

// logBuffer collects every log line of the manager and the store.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// setup adjusts an env before its handler is built.
type setup struct {
	store   func(*filestore.Options)
	manager func(*filesession.Manager)
	csrf    func(*csrf.Protector)
}

// env is the application under test on a real file store in a temporary
// directory: root is the test's directory, with canary files that hostile
// IDs must not reach, and dir the session directory inside it.
type env struct {
	t     *testing.T
	root  string
	dir   string
	clock *storetest.Clock
	logs  *logBuffer
	store *filestore.Store
	m     *filesession.Manager
	// protector is the CSRF middleware, h the whole application.
	protector *csrf.Protector
	h         http.Handler
	// closed is set once the store has been closed on purpose.
	closed bool
}

// canaries are files next to the session directory, named like what a
// traversing ID could reach.
var canaries = []string{"x.json", "sess_x.json", "x", ".json", "passwd"}

func newEnv(t *testing.T, s setup) *env {
	t.Helper()
	// The fake clock runs ahead of the real one: the store keeps expiry
	// hints in access times, and a hint in the real past is one the
	// kernel's relatime rule may overwrite on any read.
	e := &env{t: t, root: t.TempDir(), clock: storetest.NewClock(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)), logs: &logBuffer{}}
	e.dir = filepath.Join(e.root, "sessions")
	for _, name := range canaries {
		if err := os.WriteFile(filepath.Join(e.root, name), []byte("canary "+name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := filestore.Options{
		Path:        e.dir,
		TTL:         24 * time.Hour,
		Sync:        filestore.SyncNone, // durability is the file store's own suite's business
		LockTimeout: 25 * time.Millisecond,
		Logger:      logger,
		Now:         e.clock.Now,
		// No background reaper: it would change the directory under the
		// snapshots. Tests that want a pass call Reap.
		ReapInterval: 0,
	}
	if s.store != nil {
		s.store(&opts)
	}
	st, err := filestore.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.store = st
	t.Cleanup(func() {
		if !e.closed {
			st.Close()
		}
	})
	m, err := filesession.New(st, testKey)
	if err != nil {
		t.Fatal(err)
	}
	m.Now = e.clock.Now
	m.Logger = logger
	m.IdleTimeout = 24 * time.Hour
	// No touches unless a test moves the clock this far: a touch changes
	// file times, which would blur "nothing on disk changed".
	m.TouchInterval = 1000 * time.Hour
	if s.manager != nil {
		s.manager(m)
	}
	p := csrf.New()
	if s.csrf != nil {
		s.csrf(p)
	}
	e.m, e.protector = m, p
	e.h = m.Handler(p.Handler(e.app()))
	return e
}

// app is the application under test, the demo's routes in small:
//
//	GET  /form       the masked CSRF token as text (creates the session)
//	GET  /me         the user's email, or 401
//	GET  /peek       the user's email or "anonymous", always 200
//	POST /login      form email [idle, deadline]: Renew, put the user
//	POST /privilege  Renew, put role=admin (401 without a user)
//	POST /logout     Destroy
//	POST /count      Update the counter (401 without a user)
//	POST /put        ?k=&v=: Put (413 on ErrTooLarge)
//	POST /grow       ?n=: Update "big" to n bytes (413 on ErrTooLarge)
func (e *env) app() http.Handler {
	mux := http.NewServeMux()
	user := func(r *http.Request) (string, bool) {
		return filesession.Get[string](filesession.FromContext(r.Context()), "user")
	}
	mux.HandleFunc("GET /form", func(w http.ResponseWriter, r *http.Request) {
		tok, err := csrf.Token(r)
		if err != nil {
			http.Error(w, "token", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, tok)
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		u, ok := user(r)
		if !ok {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, u)
	})
	mux.HandleFunc("GET /peek", func(w http.ResponseWriter, r *http.Request) {
		u, ok := user(r)
		if !ok {
			u = "anonymous"
		}
		io.WriteString(w, u)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		s := filesession.FromContext(r.Context())
		s.Renew()
		if err := s.Put("user", r.PostFormValue("email")); err != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		if d, err := time.ParseDuration(r.PostFormValue("idle")); err == nil {
			s.SetIdleTimeout(d)
		}
		if d, err := time.ParseDuration(r.PostFormValue("deadline")); err == nil {
			s.SetDeadline(e.clock.Now().Add(d))
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("POST /privilege", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := user(r); !ok {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		s := filesession.FromContext(r.Context())
		s.Renew()
		s.Put("role", "admin")
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		filesession.FromContext(r.Context()).Destroy()
		io.WriteString(w, "bye")
	})
	mux.HandleFunc("POST /count", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := user(r); !ok {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		n, err := filesession.Update(r.Context(), filesession.FromContext(r.Context()), "count",
			func(n int, _ bool) (int, error) { return n + 1, nil })
		if err != nil {
			e.m.ErrorFunc(w, r, err)
			return
		}
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("POST /put", func(w http.ResponseWriter, r *http.Request) {
		err := filesession.FromContext(r.Context()).Put(r.FormValue("k"), r.FormValue("v"))
		if errors.Is(err, filesession.ErrTooLarge) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("POST /grow", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.FormValue("n"), &n)
		_, err := filesession.Update(r.Context(), filesession.FromContext(r.Context()), "big",
			func(string, bool) (string, error) { return strings.Repeat("x", n), nil })
		switch {
		case errors.Is(err, filesession.ErrTooLarge):
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		case err != nil:
			e.m.ErrorFunc(w, r, err)
		default:
			io.WriteString(w, "ok")
		}
	})
	return mux
}

// serve runs req through the handler, as a hostile client would send it:
// straight in, so that nothing in Go's client or server tidies it first.
func (e *env) serve(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// request returns a request for path on the application's host.
func request(method, path string) *http.Request {
	return httptest.NewRequest(method, origin+path, nil)
}

// withCookieHeader returns req with exactly these Cookie header lines.
func withCookieHeader(req *http.Request, lines ...string) *http.Request {
	req.Header["Cookie"] = lines
	return req
}

// name is the session cookie's name.
func (e *env) name() string { return e.m.CookieName() }

// sign returns the cookie value that carries id in a cookie named name,
// signed with key the way SignedCodec does (HMAC-SHA256 over
// "filesession/v1" NUL name NUL id, unpadded base64url), for any id at all.
// TestSignerMatchesCodec checks it against the codec.
func sign(key []byte, name, id string) string {
	return id + "." + tag(key, name, id)
}

func tag(key []byte, name, id string) string {
	return base64.RawURLEncoding.EncodeToString(mac(key, "filesession/v1\x00"+name+"\x00"+id))
}

// mac is HMAC-SHA256(key, msg).
func mac(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// macOnlyCodec verifies the same MAC as SignedCodec but takes any ID the
// MAC covers, so that a hostile ID reaches the store: what stops it then is
// the store's own validation.
type macOnlyCodec struct{ key []byte }

func (c macOnlyCodec) NewID() string                 { return filesession.NewID() }
func (c macOnlyCodec) ValidID(string) bool           { return true }
func (c macOnlyCodec) Encode(name, id string) string { return sign(c.key, name, id) }
func (c macOnlyCodec) Decode(name, value string) (string, bool, bool) {
	i := strings.LastIndexByte(value, '.')
	if i < 0 || !hmac.Equal([]byte(value[i+1:]), []byte(tag(c.key, name, value[:i]))) {
		return "", false, false
	}
	return value[:i], true, true
}

// fileState is what a snapshot records of one file. The access time is
// included because the file store keeps its expiry hint there: a request
// that must change nothing must not touch it either.
type fileState struct {
	mode         fs.FileMode
	size         int64
	sum          [32]byte
	mtime, atime time.Time
	link         string
}

// readQuietly reads a file without moving its access time (O_NOATIME), so
// that looking at the directory does not change what it looks at.
func readQuietly(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOATIME|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	return io.ReadAll(f)
}

// snapshot records every file under the env's root.
func (e *env) snapshot() map[string]fileState {
	e.t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(e.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(e.root, path)
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		st := fileState{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime()}
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
			st.atime = time.Unix(sys.Atim.Sec, sys.Atim.Nsec)
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			// Reading a link moves its own access time; its target and
			// mtime are what matter.
			st.link, _ = os.Readlink(path)
			st.atime = time.Time{}
		case fi.Mode().IsRegular():
			b, err := readQuietly(path)
			if err != nil {
				return err
			}
			st.sum = sha256.Sum256(b)
		case fi.IsDir():
			// A directory's own size and times say nothing here.
			st.size, st.mtime, st.atime = 0, time.Time{}, time.Time{}
		}
		out[rel] = st
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// unchanged fails t if the tree differs from before.
func (e *env) unchanged(t *testing.T, before map[string]fileState) {
	t.Helper()
	if d := diff(before, e.snapshot()); d != "" {
		t.Errorf("disk changed:\n%s", d)
	}
}

func diff(a, b map[string]fileState) string {
	var out []string
	for k, x := range a {
		y, ok := b[k]
		switch {
		case !ok:
			out = append(out, "removed "+k)
		case x != y:
			out = append(out, fmt.Sprintf("changed %s: %+v -> %+v", k, x, y))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "created "+k)
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// sessionFiles returns the IDs of the session files in the directory.
func (e *env) sessionFiles() []string {
	e.t.Helper()
	ents, err := os.ReadDir(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, d := range ents {
		n := d.Name()
		if strings.HasPrefix(n, "sess_") && strings.HasSuffix(n, ".json") {
			ids = append(ids, strings.TrimSuffix(strings.TrimPrefix(n, "sess_"), ".json"))
		}
	}
	return ids
}

// hasFile reports whether the session directory has a file for id.
func (e *env) hasFile(id string) bool {
	_, err := os.Lstat(filepath.Join(e.dir, "sess_"+id+".json"))
	return err == nil
}

// record returns the stored values of the session id, straight from disk.
func (e *env) record(id string) map[string]json.RawMessage {
	e.t.Helper()
	b, err := readQuietly(filepath.Join(e.dir, "sess_"+id+".json"))
	if err != nil {
		e.t.Fatal(err)
	}
	var v map[string]json.RawMessage
	if err := json.Unmarshal(b, &v); err != nil {
		e.t.Fatal(err)
	}
	return v
}

// holdLocks takes every session lock of the store from another open file
// description of its lock file, as a stuck process sharing the directory
// would: every write then fails with ErrLockTimeout after LockTimeout.
// Loads take no lock and still work. It returns the release.
func (e *env) holdLocks(t *testing.T) func() {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(e.dir, ".filesession.lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	return func() {
		lk.Type = unix.F_UNLCK
		unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
		f.Close()
	}
}

// browser is one client: the session cookie it holds and its current CSRF
// token. It speaks to the handler directly (env.serve).
type browser struct {
	e     *env
	t     *testing.T
	value string // the session cookie's value, "" for none
	token string
}

func (e *env) browser(t *testing.T) *browser { return &browser{e: e, t: t} }

// reqOpt adjusts a browser's request.
type reqOpt func(*http.Request)

// header sets a header; an empty value removes it.
func header(k, v string) reqOpt {
	return func(r *http.Request) {
		if v == "" {
			r.Header.Del(k)
			return
		}
		r.Header.Set(k, v)
	}
}

// token sends tok in the X-CSRF-Token header.
func token(tok string) reqOpt { return header(csrf.HeaderName, tok) }

// form sends vals as an urlencoded body.
func form(vals url.Values) reqOpt {
	return func(r *http.Request) {
		body := vals.Encode()
		r.Body = io.NopCloser(strings.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
}

// do sends a request as a current browser would (Sec-Fetch-Site on unsafe
// requests), with the browser's cookie, and keeps the cookie the response
// sets or clears.
func (b *browser) do(method, path string, opts ...reqOpt) *httptest.ResponseRecorder {
	b.t.Helper()
	req := request(method, path)
	if method != "GET" && method != "HEAD" {
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	if b.value != "" {
		req.AddCookie(&http.Cookie{Name: b.e.name(), Value: b.value})
	}
	for _, o := range opts {
		o(req)
	}
	rec := b.e.serve(req)
	for _, c := range rec.Result().Cookies() {
		if c.Name != b.e.name() {
			continue
		}
		if c.MaxAge < 0 || c.Value == "" {
			b.value = ""
		} else {
			b.value = c.Value
		}
	}
	return rec
}

// get and post are do with GET and POST (post with the browser's token).
func (b *browser) get(path string, opts ...reqOpt) *httptest.ResponseRecorder {
	b.t.Helper()
	return b.do("GET", path, opts...)
}

func (b *browser) post(path string, opts ...reqOpt) *httptest.ResponseRecorder {
	b.t.Helper()
	return b.do("POST", path, append([]reqOpt{token(b.token)}, opts...)...)
}

// fetchToken gets a fresh masked token (creating the session if needed).
func (b *browser) fetchToken() string {
	b.t.Helper()
	rec := b.get("/form")
	if rec.Code != 200 {
		b.t.Fatalf("GET /form: %d", rec.Code)
	}
	b.token = rec.Body.String()
	return b.token
}

// login visits the login form and logs in as email, then fetches the
// post-login token, as the demo's page does.
func (b *browser) login(email string, extra ...string) {
	b.t.Helper()
	b.fetchToken()
	vals := url.Values{"email": {email}}
	for i := 0; i+1 < len(extra); i += 2 {
		vals.Set(extra[i], extra[i+1])
	}
	if rec := b.post("/login", form(vals)); rec.Code != 200 {
		b.t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	b.fetchToken()
}

// id is the session ID the browser's cookie carries.
func (b *browser) id() string {
	if len(b.value) < filesession.IDLength {
		return ""
	}
	return b.value[:filesession.IDLength]
}

// expect fails t unless rec has status code.
func expect(t *testing.T, rec *httptest.ResponseRecorder, code int) {
	t.Helper()
	if rec.Code != code {
		t.Fatalf("status %d, want %d (body %q)", rec.Code, code, rec.Body.String())
	}
}

// noNewCookie fails t if rec sets a session cookie (clearing one is fine).
func noNewCookie(t *testing.T, e *env, rec *httptest.ResponseRecorder) {
	t.Helper()
	for _, c := range rec.Result().Cookies() {
		if c.Name == e.name() && c.MaxAge >= 0 && c.Value != "" {
			t.Fatalf("response sets a session cookie: %q", rec.Header().Values("Set-Cookie"))
		}
	}
}

// noSession sends req twice, to a route that answers 401 without a session
// and to one that answers 200, and checks that both see no session and that
// nothing on disk changed.
func (e *env) noSession(t *testing.T, build func(method, path string) *http.Request) {
	t.Helper()
	before := e.snapshot()
	rec := e.serve(build("GET", "/me"))
	expect(t, rec, http.StatusUnauthorized)
	noNewCookie(t, e, rec)
	rec = e.serve(build("GET", "/peek"))
	expect(t, rec, http.StatusOK)
	if rec.Body.String() != "anonymous" {
		t.Fatalf("/peek saw a user: %q", rec.Body)
	}
	noNewCookie(t, e, rec)
	e.unchanged(t, before)
}
