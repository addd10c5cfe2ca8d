package main

import (
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var handleRE = regexp.MustCompile(`name="handle" value="([A-Za-z0-9_-]+)"`)

// loginAs logs b in as email with the given User-Agent.
func (b *browser) loginAs(email, ua string) {
	b.t.Helper()
	h := http.Header{"User-Agent": {ua}}
	code, body := b.do(http.MethodPost, "/login", url.Values{"email": {email}, "password": {"pw"}, "_csrf": {b.token()}}, h)
	if code != http.StatusSeeOther {
		b.t.Fatalf("POST /login = %d %q, want 303", code, body)
	}
}

// post sends a form and returns the status, the Location and the body,
// without do's check that redirects go to /.
func (b *browser) post(path string, form url.Values) (int, string, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

// sessionsPage fetches /sessions and returns the page, its CSRF token and
// the revoke handles on it.
func (b *browser) sessionsPage() (page, tok string, handles []string) {
	b.t.Helper()
	code, page := b.get("/sessions")
	if code != http.StatusOK {
		b.t.Fatalf("GET /sessions = %d, want 200:\n%s", code, page)
	}
	for _, m := range handleRE.FindAllStringSubmatch(page, -1) {
		handles = append(handles, m[1])
	}
	return page, formToken(b.t, page), handles
}

// loggedIn reports whether /api/me answers 200.
func (b *browser) loggedIn() bool {
	b.t.Helper()
	code, _ := b.me()
	return code == http.StatusOK
}

// sessionIDs returns the IDs of the session files in dir.
func sessionIDs(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "sess_*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range files {
		ids = append(ids, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "sess_"), ".json"))
	}
	return ids
}

func TestSessionsPageListsTheUsersSessions(t *testing.T) {
	dir := t.TempDir()
	srv := demoServer(t, dir)
	a, b, other := newBrowser(t, srv.URL), newBrowser(t, srv.URL), newBrowser(t, srv.URL)
	a.loginAs("kim@example.com", "Firefox on the laptop")
	b.loginAs("Kim@Example.com", "Safari on the phone <script>alert(1)</script>")
	other.loginAs("lou@example.com", "Lou's browser")

	page, _, handles := a.sessionsPage()
	if n := strings.Count(page, "<tr"); n != 3 { // the header row and two sessions
		t.Errorf("page has %d rows, want a header and 2 sessions:\n%s", n, page)
	}
	if n := strings.Count(page, "<strong>this session</strong>"); n != 1 {
		t.Errorf("page marks %d sessions as this one, want 1", n)
	}
	if len(handles) != 1 {
		t.Errorf("page has %d revoke forms, want 1 (the other session)", len(handles))
	}
	for _, want := range []string{
		"Firefox on the laptop",
		"Safari on the phone &lt;script&gt;alert(1)&lt;/script&gt;",
		`action="/sessions/revoke-others"`,
		"Sign out everywhere else (1)",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "Lou's browser") || strings.Contains(page, "<script>alert") {
		t.Errorf("page shows another user's session or unescaped text:\n%s", page)
	}
	for _, id := range sessionIDs(t, dir) {
		if strings.Contains(page, id) {
			t.Errorf("page contains a session ID")
		}
	}
	if code, page := a.get("/"); code != http.StatusOK || !strings.Contains(page, `href="/sessions"`) {
		t.Errorf("home page lacks a link to /sessions")
	}
}

func TestSessionsRevokeOthers(t *testing.T) {
	dir := t.TempDir()
	srv := demoServer(t, dir)
	a, b, c := newBrowser(t, srv.URL), newBrowser(t, srv.URL), newBrowser(t, srv.URL)
	a.loginAs("max@example.com", "A")
	b.loginAs("max@example.com", "B")
	c.loginAs("nia@example.com", "C")
	bCookie := b.sessionCookie()

	_, tok, _ := a.sessionsPage()
	// Without the CSRF token: refused, nothing revoked.
	if code, _, _ := a.post("/sessions/revoke-others", url.Values{}); code != http.StatusForbidden {
		t.Errorf("revoke-others without a CSRF token = %d, want 403", code)
	}
	if !b.loggedIn() {
		t.Fatal("B was logged out by a request that failed CSRF")
	}
	code, loc, body := a.post("/sessions/revoke-others", url.Values{"_csrf": {tok}})
	if code != http.StatusSeeOther || loc != "/sessions" {
		t.Fatalf("revoke-others = %d to %q, want 303 to /sessions: %s", code, loc, body)
	}
	if b.loggedIn() {
		t.Error("B is still logged in after A signed out everywhere else")
	}
	// B's old cookie, replayed, is dead: it names no session on disk.
	replay := newBrowser(t, srv.URL)
	u, _ := url.Parse(srv.URL)
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: bCookie}})
	if replay.loggedIn() {
		t.Error("B's cookie still works after revoke-others")
	}
	if !a.loggedIn() {
		t.Error("A was logged out by its own revoke-others")
	}
	if !c.loggedIn() {
		t.Error("another user's session was revoked")
	}
	if page, _, handles := a.sessionsPage(); len(handles) != 0 || !strings.Contains(page, "your only session") {
		t.Errorf("A's page after revoke-others: %d other sessions listed", len(handles))
	}
	if n := len(sessionIDs(t, dir)); n != 2 {
		t.Errorf("%d session files, want 2 (A's and C's)", n)
	}
}

func TestSessionsRevokeOne(t *testing.T) {
	srv := demoServer(t, t.TempDir())
	a, b, c := newBrowser(t, srv.URL), newBrowser(t, srv.URL), newBrowser(t, srv.URL)
	a.loginAs("oli@example.com", "A")
	b.loginAs("oli@example.com", "B")
	c.loginAs("oli@example.com", "C")
	page, tok, handles := a.sessionsPage()
	if len(handles) != 2 {
		t.Fatalf("A sees %d other sessions, want 2", len(handles))
	}
	// Revoke the one whose row says B.
	var bHandle string
	for _, row := range strings.Split(page, "<tr") {
		if strings.Contains(row, "<td>B</td>") {
			bHandle = handleRE.FindStringSubmatch(row)[1]
		}
	}
	code, loc, _ := a.post("/sessions/revoke", url.Values{"_csrf": {tok}, "handle": {bHandle}})
	if code != http.StatusSeeOther || loc != "/sessions" {
		t.Fatalf("revoke = %d to %q, want 303 to /sessions", code, loc)
	}
	if b.loggedIn() {
		t.Error("B is still logged in after it was revoked")
	}
	if !a.loggedIn() || !c.loggedIn() {
		t.Error("revoking B logged out A or C")
	}
	// Revoking it again: the page says it is gone.
	if code, _, body := a.post("/sessions/revoke", url.Values{"_csrf": {tok}, "handle": {bHandle}}); code != http.StatusNotFound || !strings.Contains(body, "already ended") {
		t.Errorf("revoking a revoked session = %d, want 404 with the page", code)
	}
}

// A user cannot revoke another user's session, even with its handle.
func TestSessionsCannotRevokeAnotherUsers(t *testing.T) {
	srv := demoServer(t, t.TempDir())
	victim, victim2, mallory := newBrowser(t, srv.URL), newBrowser(t, srv.URL), newBrowser(t, srv.URL)
	victim.loginAs("pat@example.com", "A")
	victim2.loginAs("pat@example.com", "B")
	mallory.loginAs("mallory@example.com", "M")
	_, _, handles := victim.sessionsPage()
	_, mtok, _ := mallory.sessionsPage()
	code, _, _ := mallory.post("/sessions/revoke", url.Values{"_csrf": {mtok}, "handle": {handles[0]}})
	if code != http.StatusNotFound {
		t.Errorf("revoking another user's session = %d, want 404", code)
	}
	if !victim2.loggedIn() {
		t.Error("another user revoked the victim's session by its handle")
	}
	// And "sign out everywhere else" only reaches one's own sessions.
	if code, _, _ := mallory.post("/sessions/revoke-others", url.Values{"_csrf": {mtok}}); code != http.StatusSeeOther {
		t.Errorf("mallory's revoke-others = %d", code)
	}
	if !victim.loggedIn() || !victim2.loggedIn() {
		t.Error("another user's revoke-others reached the victim's sessions")
	}
}

func TestSessionsRevokeOwnLogsOut(t *testing.T) {
	dir := t.TempDir()
	srv := demoServer(t, dir)
	a, b := newBrowser(t, srv.URL), newBrowser(t, srv.URL)
	a.loginAs("quinn@example.com", "A")
	b.loginAs("quinn@example.com", "B")
	_, tok, _ := a.sessionsPage()
	// The page offers no button for the own session, but its handle is
	// what B's page shows for it.
	_, _, fromB := b.sessionsPage()
	if code, _, _ := a.post("/sessions/revoke", url.Values{"_csrf": {tok}, "handle": {fromB[0]}}); code != http.StatusSeeOther {
		t.Fatalf("revoking the own session = %d, want 303", code)
	}
	if a.loggedIn() {
		t.Error("A is still logged in after revoking its own session")
	}
	if !b.loggedIn() {
		t.Error("B was logged out")
	}
	if n := len(sessionIDs(t, dir)); n != 1 {
		t.Errorf("%d session files, want 1", n)
	}
}

func TestSessionsRoutesMethodsAndLogin(t *testing.T) {
	srv := demoServer(t, t.TempDir())
	anon := newBrowser(t, srv.URL)
	if code, _ := anon.get("/sessions"); code != http.StatusSeeOther {
		t.Errorf("GET /sessions logged out = %d, want 303 to /", code)
	}
	for _, path := range []string{"/logout", "/sessions/revoke", "/sessions/revoke-others"} {
		if code, _ := anon.get(path); code != http.StatusMethodNotAllowed {
			t.Errorf("GET %s = %d, want 405 (POST only)", path, code)
		}
	}
	// Logged out, the POSTs do nothing but send the browser to log in.
	tok := anon.token()
	if code, loc, _ := anon.post("/sessions/revoke-others", url.Values{"_csrf": {tok}}); code != http.StatusSeeOther || loc != "/" {
		t.Errorf("revoke-others logged out = %d to %q, want 303 to /", code, loc)
	}
}
