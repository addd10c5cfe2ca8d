package filesession_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/memstore"
	"github.com/filesession/filesession/storetest"
)

// uiServer is a manager over store behind routes that log in, list and
// revoke, as an application's "your sessions" page would.
type uiServer struct {
	t     *testing.T
	m     *filesession.Manager
	store filesession.Store
	srv   *httptest.Server
	clock *storetest.Clock
}

func newUIServer(t *testing.T, wrap func(*memstore.Store) filesession.Store) *uiServer {
	t.Helper()
	c := newClock()
	ms := memstore.New()
	ms.Now = c.Now
	var store filesession.Store = ms
	if wrap != nil {
		store = wrap(ms)
	}
	m, err := filesession.New(store, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	m.Now = c.Now
	m.Logger = discard()
	u := &uiServer{t: t, m: m, store: store, clock: c}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		s := filesession.FromContext(r.Context())
		s.Renew()
		if err := s.SetUser(r.FormValue("user")); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.Put(filesession.UserAgentKey, r.UserAgent())
	})
	mux.HandleFunc("POST /renew", func(w http.ResponseWriter, r *http.Request) {
		filesession.FromContext(r.Context()).Renew()
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		filesession.FromContext(r.Context()).Destroy()
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, filesession.FromContext(r.Context()).User())
	})
	mux.HandleFunc("GET /sessions", func(w http.ResponseWriter, r *http.Request) {
		user := filesession.FromContext(r.Context()).User()
		infos, err := m.Sessions(r.Context(), user)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(infos)
	})
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		user := filesession.FromContext(r.Context()).User()
		err := m.RevokeSession(r.Context(), user, r.FormValue("handle"))
		switch {
		case errors.Is(err, filesession.ErrNotFound):
			http.Error(w, "no such session", http.StatusNotFound)
		case err != nil:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("POST /revoke-others", func(w http.ResponseWriter, r *http.Request) {
		s := filesession.FromContext(r.Context())
		n, err := m.RevokeUser(r.Context(), s.User(), s)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(n)
	})
	u.srv = httptest.NewServer(m.Handler(mux))
	t.Cleanup(u.srv.Close)
	return u
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// uiClient is one browser: a cookie jar and a user agent.
type uiClient struct {
	u  *uiServer
	c  *http.Client
	ua string
}

func (u *uiServer) client(ua string) *uiClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		u.t.Fatal(err)
	}
	return &uiClient{u: u, c: &http.Client{Jar: jar}, ua: ua}
}

func (c *uiClient) do(method, path string, form url.Values) (int, string) {
	c.u.t.Helper()
	req, err := http.NewRequest(method, c.u.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.u.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", c.ua)
	resp, err := c.c.Do(req)
	if err != nil {
		c.u.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (c *uiClient) login(user string) {
	c.u.t.Helper()
	if code, body := c.do("POST", "/login", url.Values{"user": {user}}); code != http.StatusOK {
		c.u.t.Fatalf("login: %d %s", code, body)
	}
}

func (c *uiClient) whoami() string {
	c.u.t.Helper()
	_, body := c.do("GET", "/whoami", nil)
	return body
}

func (c *uiClient) sessions() []filesession.SessionInfo {
	c.u.t.Helper()
	code, body := c.do("GET", "/sessions", nil)
	if code != http.StatusOK {
		c.u.t.Fatalf("GET /sessions: %d %s", code, body)
	}
	var infos []filesession.SessionInfo
	if err := json.Unmarshal([]byte(body), &infos); err != nil {
		c.u.t.Fatal(err)
	}
	return infos
}

// storedIDs returns the IDs of every session in the store.
func (u *uiServer) storedIDs() []string {
	var ids []string
	u.store.(filesession.Lister).List(context.Background(), func(id string, _ filesession.Record) error {
		ids = append(ids, id)
		return nil
	})
	return ids
}

func TestSessionsListsTheUsersSessions(t *testing.T) {
	u := newUIServer(t, nil)
	a, b, other := u.client("Browser A"), u.client("Browser B"), u.client("Browser C")
	a.login("alice")
	u.clock.Advance(time.Minute)
	b.login("alice")
	other.login("bob")

	infos := a.sessions()
	if len(infos) != 2 {
		t.Fatalf("alice has %d sessions listed, want 2: %+v", len(infos), infos)
	}
	if !infos[0].Current || infos[1].Current {
		t.Errorf("Current = %v, %v; want the requesting session first and only it", infos[0].Current, infos[1].Current)
	}
	if infos[0].UserAgent != "Browser A" || infos[1].UserAgent != "Browser B" {
		t.Errorf("user agents %q, %q; want Browser A, Browser B", infos[0].UserAgent, infos[1].UserAgent)
	}
	if infos[0].Handle == infos[1].Handle || len(infos[0].Handle) != 22 {
		t.Errorf("handles %q, %q: want two distinct 22-character handles", infos[0].Handle, infos[1].Handle)
	}
	for _, info := range infos {
		if info.Created.IsZero() || info.LastAccess.IsZero() || !info.ExpiresAt.After(info.LastAccess) {
			t.Errorf("times of %+v: want Created, LastAccess and a later ExpiresAt", info)
		}
	}
	// Handles reveal no ID, and are not the log hashes either.
	for _, id := range u.storedIDs() {
		for _, info := range infos {
			if strings.Contains(info.Handle, id) || strings.Contains(id, info.Handle) || info.Handle == u.m.LogID(id) {
				t.Errorf("handle %q is derived visibly from a session ID", info.Handle)
			}
		}
	}
	// From B's side, B is current; the handles are the same.
	fromB := b.sessions()
	if len(fromB) != 2 || !fromB[0].Current || fromB[0].Handle != infos[1].Handle {
		t.Errorf("from B: %+v", fromB)
	}
	if got := other.sessions(); len(got) != 1 || got[0].UserAgent != "Browser C" {
		t.Errorf("bob's sessions: %+v", got)
	}
}

func TestRevokeUserSignsOutEverywhereElse(t *testing.T) {
	u := newUIServer(t, nil)
	a, b, c, bob := u.client("A"), u.client("B"), u.client("C"), u.client("D")
	for _, cl := range []*uiClient{a, b, c} {
		cl.login("alice")
	}
	bob.login("bob")

	code, body := a.do("POST", "/revoke-others", nil)
	if code != http.StatusOK || strings.TrimSpace(body) != "2" {
		t.Fatalf("revoke-others = %d %q, want 200 and 2 revoked", code, body)
	}
	if got := a.whoami(); got != "alice" {
		t.Errorf("the revoking session is %q afterwards, want alice still", got)
	}
	for name, cl := range map[string]*uiClient{"B": b, "C": c} {
		if got := cl.whoami(); got != "" {
			t.Errorf("session %s is still logged in as %q after revoke-others", name, got)
		}
	}
	if got := bob.whoami(); got != "bob" {
		t.Errorf("another user's session: %q, want bob untouched", got)
	}
	if infos := a.sessions(); len(infos) != 1 || !infos[0].Current {
		t.Errorf("alice's sessions after revoke-others: %+v", infos)
	}
	if n := len(u.storedIDs()); n != 2 {
		t.Errorf("%d sessions stored, want 2 (alice's current and bob's)", n)
	}
}

func TestRevokeSessionByHandle(t *testing.T) {
	u := newUIServer(t, nil)
	a, b, mallory := u.client("A"), u.client("B"), u.client("M")
	a.login("alice")
	b.login("alice")
	mallory.login("mallory")
	infos := a.sessions()
	bHandle := infos[1].Handle

	// Another user cannot revoke it, though the handle is right.
	if code, _ := mallory.do("POST", "/revoke", url.Values{"handle": {bHandle}}); code != http.StatusNotFound {
		t.Errorf("another user revoking alice's session: %d, want 404", code)
	}
	if got := b.whoami(); got != "alice" {
		t.Fatalf("B after another user's revoke attempt: %q, want alice", got)
	}
	// Nor can garbage, or an empty handle.
	for _, h := range []string{"", "x", strings.Repeat("A", 22), bHandle + "A", bHandle[:21]} {
		if code, _ := a.do("POST", "/revoke", url.Values{"handle": {h}}); code != http.StatusNotFound {
			t.Errorf("revoking handle %q: %d, want 404", h, code)
		}
	}
	if code, body := a.do("POST", "/revoke", url.Values{"handle": {bHandle}}); code != http.StatusOK {
		t.Fatalf("revoking B: %d %s", code, body)
	}
	if got := b.whoami(); got != "" {
		t.Errorf("B after it was revoked: %q, want no session", got)
	}
	if got := a.whoami(); got != "alice" {
		t.Errorf("A after revoking B: %q, want alice", got)
	}
	// Revoking it again: it is gone.
	if code, _ := a.do("POST", "/revoke", url.Values{"handle": {bHandle}}); code != http.StatusNotFound {
		t.Errorf("revoking B twice: %d, want 404", code)
	}
}

func TestRevokeOwnSessionClearsCookie(t *testing.T) {
	u := newUIServer(t, nil)
	a := u.client("A")
	a.login("alice")
	own := a.sessions()[0].Handle
	req, _ := http.NewRequest("POST", u.srv.URL+"/revoke", strings.NewReader(url.Values{"handle": {own}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := a.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cleared := false
	for _, c := range resp.Cookies() {
		if c.Name == u.m.CookieName() && c.MaxAge < 0 {
			cleared = true
		}
	}
	if resp.StatusCode != http.StatusOK || !cleared {
		t.Errorf("revoking the own session: %d, cookie cleared %v; want 200 and the cookie cleared", resp.StatusCode, cleared)
	}
	if n := len(u.storedIDs()); n != 0 {
		t.Errorf("%d sessions stored after revoking the only one", n)
	}
}

func TestUserFollowsRenewAndLogout(t *testing.T) {
	u := newUIServer(t, nil)
	a, b := u.client("A"), u.client("B")
	a.login("alice")
	b.login("alice")
	// A privilege change: a new ID, the same user.
	if code, _ := a.do("POST", "/renew", nil); code != http.StatusOK {
		t.Fatal("renew failed")
	}
	if got := a.whoami(); got != "alice" {
		t.Fatalf("after renew: %q, want alice", got)
	}
	if n := len(a.sessions()); n != 2 {
		t.Errorf("after renew alice has %d sessions listed, want 2", n)
	}
	// Logging in as someone else moves the session to that user.
	b.login("bob")
	if n := len(a.sessions()); n != 1 {
		t.Errorf("after B logged in as bob alice has %d sessions listed, want 1", n)
	}
	if n := len(b.sessions()); n != 1 {
		t.Errorf("bob has %d sessions listed, want 1", n)
	}
	a.do("POST", "/logout", nil)
	if ids := u.storedIDs(); len(ids) != 1 {
		t.Errorf("%d sessions stored after logout, want 1", len(ids))
	}
	ix := u.store.(filesession.UserIndex)
	if list, err := ix.UserSessions(context.Background(), "alice"); err != nil || len(list) != 0 {
		t.Errorf("alice's sessions after logout: %d, %v", len(list), err)
	}
}

func TestSetUserValidatesAndCreates(t *testing.T) {
	u := newUIServer(t, nil)
	a := u.client("A")
	for _, bad := range []string{"bad\xff", strings.Repeat("x", filesession.MaxUserLength+1)} {
		if code, _ := a.do("POST", "/login", url.Values{"user": {bad}}); code != http.StatusBadRequest {
			t.Errorf("login as an invalid user (%d bytes): %d, want 400", len(bad), code)
		}
	}
	if !filesession.ValidUser(strings.Repeat("x", filesession.MaxUserLength)) || !filesession.ValidUser("") {
		t.Error("ValidUser refuses a valid user")
	}

	// SetUser alone stores a new session.
	var id string
	h := u.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := filesession.FromContext(r.Context())
		if err := s.SetUser("carol"); err != nil {
			t.Error(err)
		}
		id = s.ID()
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	r, err := u.store.Load(context.Background(), id)
	if err != nil || r.User != "carol" {
		t.Errorf("session with only a user: %+v, %v; want it stored with User carol", r, err)
	}
}

// noIndex hides a store's UserIndex, keeping its Lister.
type noIndex struct {
	filesession.Store
	filesession.Lister
}

// bare hides every optional interface.
type bare struct{ filesession.Store }

// wrapped hides the index but unwraps to the store, as metrics does.
type wrapped struct {
	filesession.Store
	listed *int
}

func (w wrapped) Unwrap() filesession.Store { return w.Store }

func (w wrapped) List(ctx context.Context, fn func(string, filesession.Record) error) error {
	*w.listed++
	return w.Store.(filesession.Lister).List(ctx, fn)
}

func TestSessionsWithoutIndex(t *testing.T) {
	t.Run("Lister", func(t *testing.T) {
		u := newUIServer(t, func(s *memstore.Store) filesession.Store { return noIndex{s, s} })
		if _, ok := u.store.(filesession.UserIndex); ok {
			t.Fatal("test store still has an index")
		}
		a, b, c := u.client("A"), u.client("B"), u.client("C")
		a.login("alice")
		b.login("alice")
		c.login("bob")
		if n := len(a.sessions()); n != 2 {
			t.Errorf("alice has %d sessions listed by scan, want 2", n)
		}
		if code, body := a.do("POST", "/revoke-others", nil); strings.TrimSpace(body) != "1" {
			t.Errorf("revoke-others by scan: %d %q", code, body)
		}
		if b.whoami() != "" || c.whoami() != "bob" {
			t.Error("revoke-others by scan revoked the wrong sessions")
		}
	})
	t.Run("Unwrap", func(t *testing.T) {
		listed := 0
		u := newUIServer(t, func(s *memstore.Store) filesession.Store { return wrapped{s, &listed} })
		a := u.client("A")
		a.login("alice")
		if n := len(a.sessions()); n != 1 || listed != 0 {
			t.Errorf("through an Unwrap wrapper: %d sessions, %d scans; want 1 from the index, no scan", n, listed)
		}
	})
	t.Run("Neither", func(t *testing.T) {
		m, err := filesession.New(bare{memstore.New()}, testSecret)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Sessions(context.Background(), "alice"); !errors.Is(err, filesession.ErrNotSupported) {
			t.Errorf("Sessions of a store that cannot list: %v, want ErrNotSupported", err)
		}
		if _, err := m.RevokeUser(context.Background(), "alice", nil); !errors.Is(err, filesession.ErrNotSupported) {
			t.Errorf("RevokeUser of a store that cannot list: %v, want ErrNotSupported", err)
		}
	})
}

// renewOnDelete renews another session of the user the first time a
// session is deleted: the renewal that lands between RevokeUser's listing
// and its deletes, which a single pass would miss.
type renewOnDelete struct {
	*memstore.Store
	once  sync.Once
	moved string
}

func (s *renewOnDelete) Delete(ctx context.Context, id string) error {
	s.once.Do(func() {
		list, err := s.Store.UserSessions(ctx, "alice")
		if err != nil {
			panic(err)
		}
		for _, us := range list {
			if us.ID != id {
				s.moved = filesession.NewID()
				if err := s.Store.Renew(ctx, us.ID, s.moved, filesession.Change{}); err != nil {
					panic(err)
				}
				return
			}
		}
	})
	return s.Store.Delete(ctx, id)
}

func TestRevokeUserCatchesConcurrentRenew(t *testing.T) {
	ms := memstore.New()
	ctx := context.Background()
	now := time.Now()
	for range 3 {
		r := filesession.Record{Created: now, LastAccess: now, IdleTimeout: time.Hour, User: "alice"}
		if err := ms.Create(ctx, filesession.NewID(), r); err != nil {
			t.Fatal(err)
		}
	}
	st := &renewOnDelete{Store: ms}
	m, err := filesession.New(st, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	m.Logger = discard()
	n, err := m.RevokeUser(ctx, "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.moved == "" {
		t.Fatal("the test's renew did not run")
	}
	if left, _ := ms.UserSessions(ctx, "alice"); len(left) != 0 {
		t.Errorf("RevokeUser left %d sessions (one renewed mid-way); want none", len(left))
	}
	if n != 4 {
		t.Errorf("RevokeUser = %d, want 4 (three sessions, one of them under two IDs)", n)
	}
}
