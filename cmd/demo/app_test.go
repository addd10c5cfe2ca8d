package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// demoServer runs the demo in-process on a real HTTP server over dir.
func demoServer(t *testing.T, dir string) *httptest.Server {
	t.Helper()
	return demoServerWith(t, config{Dir: dir, TTL: time.Hour})
}

// demoServerWith runs the demo in-process on a real HTTP server built from
// cfg, with logs discarded.
func demoServerWith(t *testing.T, cfg config) *httptest.Server {
	t.Helper()
	cfg.Logger = discardLogger()
	h, closer, err := newApp(cfg)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		if err := closer.Close(); err != nil {
			t.Errorf("closing store: %v", err)
		}
	})
	return srv
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see the 303s.
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends a request and returns the status and body.
func (b *browser) do(method, path string, form url.Values, header http.Header) (int, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	if resp.StatusCode == http.StatusSeeOther && resp.Header.Get("Location") != "/" {
		b.t.Errorf("%s %s: redirect to %q, want /", method, path, resp.Header.Get("Location"))
	}
	return resp.StatusCode, string(data)
}

func (b *browser) get(path string) (int, string) { return b.do(http.MethodGet, path, nil, nil) }

// token fetches a CSRF token from /api/csrf.
func (b *browser) token() string {
	b.t.Helper()
	code, body := b.get("/api/csrf")
	var v struct{ Token string }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &v) != nil || v.Token == "" {
		b.t.Fatalf("GET /api/csrf = %d %q, want 200 with a token", code, body)
	}
	return v.Token
}

// login logs in with a fresh token and checks the 303.
func (b *browser) login(email string) {
	b.t.Helper()
	code, body := b.do(http.MethodPost, "/login", url.Values{"email": {email}, "password": {"pw"}, "_csrf": {b.token()}}, nil)
	if code != http.StatusSeeOther {
		b.t.Fatalf("POST /login = %d %q, want 303", code, body)
	}
}

// me returns /api/me's status and user.
func (b *browser) me() (int, user) {
	b.t.Helper()
	code, body := b.get("/api/me")
	var u user
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &u); err != nil {
			b.t.Fatalf("GET /api/me: %v in %q", err, body)
		}
	}
	return code, u
}

// count posts to /api/count with tok in the header and returns the count.
func (b *browser) count(tok string) int {
	b.t.Helper()
	n, err := b.tryCount(tok)
	if err != nil {
		b.t.Fatal(err)
	}
	return n
}

// tryCount is count for goroutines other than the test's, which must not
// call t.Fatal.
func (b *browser) tryCount(tok string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, b.base+"/api/count", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-CSRF-Token", tok)
	resp, err := b.c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var v struct{ Count *int }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &v) != nil || v.Count == nil {
		return 0, fmt.Errorf("POST /api/count = %d %q, want 200 {\"count\":N}", resp.StatusCode, body)
	}
	return *v.Count, nil
}

// sessionCookie returns the browser's session cookie value, or "".
func (b *browser) sessionCookie() string {
	u, _ := url.Parse(b.base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "session" {
			return c.Value
		}
	}
	return ""
}

func TestLoginMeCountLogout(t *testing.T) {
	srv := demoServer(t, t.TempDir())
	b := newBrowser(t, srv.URL)

	if code, _ := b.me(); code != http.StatusUnauthorized {
		t.Fatalf("GET /api/me before login = %d, want 401", code)
	}
	b.login("Alice@Example.com")
	code, u := b.me()
	if code != http.StatusOK || u.Email != "alice@example.com" || u.UserID != userID("alice@example.com") {
		t.Fatalf("GET /api/me after login = %d %+v", code, u)
	}

	tok := b.token()
	for want := 1; want <= 3; want++ {
		if got := b.count(tok); got != want {
			t.Fatalf("count = %d, want %d", got, want)
		}
	}

	if code, body := b.do(http.MethodPost, "/logout", url.Values{"_csrf": {tok}}, nil); code != http.StatusSeeOther {
		t.Fatalf("POST /logout = %d %q, want 303", code, body)
	}
	if code, _ := b.me(); code != http.StatusUnauthorized {
		t.Fatalf("GET /api/me after logout = %d, want 401", code)
	}
	// The counter went with the session.
	if got := b.count(b.token()); got != 1 {
		t.Errorf("count after logout = %d, want 1 (a new session)", got)
	}
}

func TestSameEmailSameUserID(t *testing.T) {
	srv := demoServer(t, t.TempDir())
	ids := map[string]string{}
	for _, email := range []string{"bob@example.com", " BOB@example.com ", "carol@example.com"} {
		b := newBrowser(t, srv.URL)
		b.login(email)
		code, u := b.me()
		if code != http.StatusOK {
			t.Fatalf("%q: GET /api/me = %d", email, code)
		}
		ids[u.Email] = u.UserID
		if u.UserID != userID(u.Email) || len(u.UserID) != 16 {
			t.Errorf("%q: userId %q, want %q", email, u.UserID, userID(u.Email))
		}
	}
	if len(ids) != 2 || ids["bob@example.com"] == ids["carol@example.com"] {
		t.Errorf("user IDs %v: want one per lower-cased email, distinct", ids)
	}
}

func TestMeNotLoggedInIsJSON(t *testing.T) {
	srv := demoServer(t, t.TempDir())
	resp, err := http.Get(srv.URL + "/api/me")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v errorBody
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/json" ||
		json.NewDecoder(resp.Body).Decode(&v) != nil || v.Error == "" {
		t.Errorf("GET /api/me = %d %q, error %q; want 401 JSON with an error", resp.StatusCode, resp.Header.Get("Content-Type"), v.Error)
	}
	if len(resp.Cookies()) != 0 {
		t.Errorf("GET /api/me without a session set cookies %v; reading must not create a session", resp.Cookies())
	}
}

func TestPostsNeedCSRFToken(t *testing.T) {
	srv := demoServer(t, t.TempDir())
	b := newBrowser(t, srv.URL)
	b.login("dave@example.com")
	tok := b.token()
	if got := b.count(tok); got != 1 {
		t.Fatalf("count = %d, want 1", got)
	}

	// Another session's token is no good here.
	other := newBrowser(t, srv.URL).token()

	for _, tc := range []struct {
		name  string
		token string // in the _csrf field and the X-CSRF-Token header
		query string
	}{
		{name: "no token"},
		{name: "garbage token", token: "garbage"},
		{name: "other session's token", token: other},
		{name: "token in the query string", query: "?_csrf=" + url.QueryEscape(tok)},
	} {
		for _, path := range []string{"/login", "/logout", "/api/count"} {
			form := url.Values{"email": {"mallory@example.com"}, "password": {"x"}}
			var header http.Header
			if tc.token != "" {
				form.Set("_csrf", tc.token)
				header = http.Header{"X-Csrf-Token": {tc.token}}
			}
			if code, body := b.do(http.MethodPost, path+tc.query, form, header); code != http.StatusForbidden {
				t.Errorf("%s: POST %s = %d %q, want 403", tc.name, path, code, body)
			}
		}
	}

	// Nothing of the refused requests happened.
	if code, u := b.me(); code != http.StatusOK || u.Email != "dave@example.com" {
		t.Errorf("after refused POSTs: GET /api/me = %d %+v, want still dave", code, u)
	}
	if got := b.count(tok); got != 2 {
		t.Errorf("count after refused POSTs = %d, want 2", got)
	}
}

func TestLoginRenewsSession(t *testing.T) {
	srv := demoServer(t, t.TempDir())
	b := newBrowser(t, srv.URL)
	preTok := b.token()
	pre := b.sessionCookie()
	if pre == "" {
		t.Fatal("GET /api/csrf set no session cookie")
	}
	b.login("erin@example.com")
	if post := b.sessionCookie(); post == "" || post == pre {
		t.Fatalf("session cookie after login = %q, want a new one (was %q)", post, pre)
	}

	// An attacker holding the pre-login cookie (session fixation) and its
	// token gets nothing.
	attacker := newBrowser(t, srv.URL)
	u, _ := url.Parse(srv.URL)
	attacker.c.Jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: pre, Path: "/"}})
	if code, _ := attacker.me(); code != http.StatusUnauthorized {
		t.Errorf("GET /api/me with the pre-login cookie = %d, want 401", code)
	}
	attacker.c.Jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: pre, Path: "/"}})
	if code, _ := attacker.do(http.MethodPost, "/api/count", nil, http.Header{"X-Csrf-Token": {preTok}}); code != http.StatusForbidden {
		t.Errorf("POST /api/count with the pre-login cookie and token = %d, want 403", code)
	}
	// The pre-login token died with the renewal for the user too.
	if code, _ := b.do(http.MethodPost, "/api/count", nil, http.Header{"X-Csrf-Token": {preTok}}); code != http.StatusForbidden {
		t.Errorf("POST /api/count with the pre-login token = %d, want 403", code)
	}
	if code, u := b.me(); code != http.StatusOK || u.Email != "erin@example.com" {
		t.Errorf("GET /api/me = %d %+v, want erin", code, u)
	}
}

func TestLoginNeedsEmailAndPassword(t *testing.T) {
	srv := demoServer(t, t.TempDir())
	b := newBrowser(t, srv.URL)
	for _, form := range []url.Values{
		{"email": {"frank@example.com"}, "password": {""}},
		{"email": {"  "}, "password": {"pw"}},
		{"email": {strings.Repeat("a", 250) + "@x.io"}, "password": {"pw"}},
	} {
		form.Set("_csrf", b.token())
		if code, _ := b.do(http.MethodPost, "/login", form, nil); code != http.StatusBadRequest {
			t.Errorf("POST /login %v = %d, want 400", form, code)
		}
	}
	if code, _ := b.me(); code != http.StatusUnauthorized {
		t.Errorf("GET /api/me after refused logins = %d, want 401", code)
	}
}

// TestCountIsExactUnderConcurrency checks that no increment is lost when
// many requests of one session count at once: every answer is distinct and
// together they are 1..n.
func TestCountIsExactUnderConcurrency(t *testing.T) {
	srv := demoServer(t, t.TempDir())
	b := newBrowser(t, srv.URL)
	tok := b.token()
	const workers, each = 8, 10
	var (
		mu  sync.Mutex
		got []int
		wg  sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for range each {
				n, err := b.tryCount(tok)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, n)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	slices.Sort(got)
	for i, n := range got {
		if n != i+1 {
			t.Fatalf("sorted counts %v: want 1..%d, each once", got, workers*each)
		}
	}
	if n := b.count(tok); n != workers*each+1 {
		t.Errorf("count after the race = %d, want %d", n, workers*each+1)
	}
}
