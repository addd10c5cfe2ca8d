package adversarial

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/filesession/filesession"
)

// TestFixation plants a session cookie in the victim's browser before it
// logs in, and checks that login renews the ID: the planted ID is dead at
// once, and whatever the attacker does with it changes nothing.
func TestFixation(t *testing.T) {
	e := newEnv(t, setup{})

	t.Run("pre-login ID dead after login", func(t *testing.T) {
		attacker := e.browser(t)
		attacker.fetchToken() // a real pre-login session, with its file
		planted := attacker.value
		victim := e.browser(t)
		victim.value = planted // cookie tossing, a link, a shared machine
		victim.login("victim@example.com")
		if victim.id() == "" || victim.value == planted {
			t.Fatal("login kept the planted session ID")
		}
		if e.hasFile(planted[:filesession.IDLength]) {
			t.Fatal("the planted session's file survived the login")
		}
		before := e.snapshot()
		for _, path := range []string{"/me", "/peek"} {
			rec := attacker.get(path)
			if rec.Code == 200 && rec.Body.String() != "anonymous" {
				t.Fatalf("attacker's cookie reads the victim's session at %s: %q", path, rec.Body)
			}
		}
		attacker.value = planted
		expect(t, attacker.post("/count"), http.StatusForbidden) // its token died with it
		e.unchanged(t, before)
		expect(t, victim.get("/me"), http.StatusOK)
	})

	t.Run("planted signed unknown ID never adopted at login", func(t *testing.T) {
		planted := filesession.NewID()
		victim := e.browser(t)
		victim.value = sign(testKey, e.name(), planted)
		victim.login("victim2@example.com")
		if victim.id() == planted || e.hasFile(planted) {
			t.Fatal("the server adopted an ID the client chose")
		}
		expect(t, victim.get("/me"), http.StatusOK)
	})

	t.Run("privilege change renews: old post-login ID dead at once", func(t *testing.T) {
		user := e.browser(t)
		user.login("user@example.com")
		stolen := user.value
		expect(t, user.post("/privilege"), http.StatusOK)
		if user.value == stolen || e.hasFile(stolen[:filesession.IDLength]) {
			t.Fatal("privilege change kept the old ID alive")
		}
		if got := e.record(user.id())["role"]; string(got) != `"admin"` {
			t.Fatalf("role %s", got)
		}
		thief := e.browser(t)
		thief.value = stolen
		before := e.snapshot()
		expect(t, thief.get("/me"), http.StatusUnauthorized)
		e.unchanged(t, before)
	})

	t.Run("renewal leaves exactly one file per session", func(t *testing.T) {
		before := len(e.sessionFiles())
		b := e.browser(t)
		b.login("renew@example.com")
		for range 5 {
			expect(t, b.post("/privilege"), http.StatusOK)
			b.fetchToken() // renewal rotated the CSRF token too
		}
		if got := len(e.sessionFiles()); got != before+1 {
			t.Fatalf("%d session files, want %d", got, before+1)
		}
	})
}

// TestLogoutReplay logs out and replays the dead cookie and token.
func TestLogoutReplay(t *testing.T) {
	e := newEnv(t, setup{})
	victim := e.browser(t)
	victim.login("victim@example.com")
	cookie, tok, id := victim.value, victim.token, victim.id()

	t.Run("logout without a CSRF token is refused and ends nothing", func(t *testing.T) {
		before := e.snapshot()
		expect(t, victim.do("POST", "/logout"), http.StatusForbidden)
		e.unchanged(t, before)
	})
	t.Run("logout by GET is not a route", func(t *testing.T) {
		before := e.snapshot()
		expect(t, victim.get("/logout"), http.StatusMethodNotAllowed)
		e.unchanged(t, before)
	})
	t.Run("logout deletes the file and clears the cookie with matching attributes", func(t *testing.T) {
		rec := victim.post("/logout")
		expect(t, rec, http.StatusOK)
		if e.hasFile(id) {
			t.Fatal("the session file survived logout")
		}
		var clear *http.Cookie
		for _, c := range rec.Result().Cookies() {
			clear = c
		}
		if clear == nil || clear.Name != e.name() || clear.MaxAge >= 0 || clear.Path != "/" || clear.Domain != "" || !clear.HttpOnly || clear.SameSite != http.SameSiteLaxMode {
			t.Fatalf("clearing Set-Cookie %q", rec.Header().Values("Set-Cookie"))
		}
		if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Vary") != "Cookie" {
			t.Fatalf("logout response is cacheable: %v", rec.Header())
		}
	})
	replay := func(t *testing.T) *browser {
		b := e.browser(t)
		b.value, b.token = cookie, tok
		return b
	}
	t.Run("replayed cookie reads no session", func(t *testing.T) {
		e.noSession(t, func(method, path string) *http.Request {
			req := request(method, path)
			req.AddCookie(&http.Cookie{Name: e.name(), Value: cookie})
			return req
		})
	})
	t.Run("replayed cookie and token cannot write", func(t *testing.T) {
		before := e.snapshot()
		b := replay(t)
		expect(t, b.post("/count"), http.StatusForbidden)
		expect(t, replay(t).post("/logout"), http.StatusForbidden)
		e.unchanged(t, before)
	})
	t.Run("replayed cookie on a page that starts a session gets a fresh ID", func(t *testing.T) {
		b := replay(t)
		b.fetchToken()
		if b.id() == id || e.hasFile(id) {
			t.Fatal("the logged-out ID came back")
		}
	})
}

// TestExpiry moves the injected clock: the idle timeout is refreshed by
// activity, the absolute one is not, per-session overrides hold, and a
// request with an expired session changes nothing on disk.
func TestExpiry(t *testing.T) {
	newExpiryEnv := func(t *testing.T, lifetime time.Duration) *env {
		return newEnv(t, setup{manager: func(m *filesession.Manager) {
			m.IdleTimeout = time.Hour
			m.Lifetime = lifetime
			m.TouchInterval = time.Minute
		}})
	}
	// expired checks that b's session is dead and that finding out
	// changed nothing: the expired file stays for the reaper.
	expired := func(t *testing.T, e *env, b *browser) {
		t.Helper()
		id := b.id()
		before := e.snapshot()
		value := b.value
		expect(t, b.get("/me"), http.StatusUnauthorized)
		b.value = value
		expect(t, b.post("/count"), http.StatusForbidden)
		e.unchanged(t, before)
		if n, err := e.store.Reap(context.Background()); err != nil || n != 1 || e.hasFile(id) {
			t.Fatalf("reap: %d, %v; file left %v", n, err, e.hasFile(id))
		}
	}

	t.Run("idle: reads every 50 minutes keep the session for 5 hours", func(t *testing.T) {
		e := newExpiryEnv(t, 0)
		b := e.browser(t)
		b.login("reader@example.com")
		for range 6 {
			e.clock.Advance(50 * time.Minute)
			expect(t, b.get("/me"), http.StatusOK)
		}
	})
	t.Run("idle: one idle timeout without activity ends it", func(t *testing.T) {
		e := newExpiryEnv(t, 0)
		b := e.browser(t)
		b.login("idle@example.com")
		e.clock.Advance(30 * time.Minute)
		expect(t, b.post("/count"), http.StatusOK)
		e.clock.Advance(time.Hour)
		expired(t, e, b)
	})
	t.Run("absolute: writes every 10 minutes cannot outlive the lifetime", func(t *testing.T) {
		e := newExpiryEnv(t, 3*time.Hour)
		b := e.browser(t)
		b.login("busy@example.com")
		start := e.clock.Now()
		for e.clock.Now().Sub(start) < 3*time.Hour-10*time.Minute {
			e.clock.Advance(10 * time.Minute)
			expect(t, b.post("/count"), http.StatusOK)
			expect(t, b.get("/me"), http.StatusOK)
		}
		e.clock.Advance(10 * time.Minute)
		expired(t, e, b)
	})
	t.Run("absolute: renewal does not restart the lifetime", func(t *testing.T) {
		e := newExpiryEnv(t, 2*time.Hour)
		b := e.browser(t)
		b.login("renewer@example.com")
		for range 11 {
			e.clock.Advance(10 * time.Minute)
			expect(t, b.post("/privilege"), http.StatusOK)
			b.fetchToken()
		}
		e.clock.Advance(10 * time.Minute)
		expired(t, e, b)
	})
	t.Run("per-session idle timeout shorter than the manager's", func(t *testing.T) {
		e := newExpiryEnv(t, 0)
		b := e.browser(t)
		b.login("kiosk@example.com", "idle", "10m")
		e.clock.Advance(9 * time.Minute)
		expect(t, b.get("/me"), http.StatusOK)
		e.clock.Advance(10 * time.Minute)
		expired(t, e, b)
	})
	t.Run("per-session deadline despite continuous activity", func(t *testing.T) {
		e := newExpiryEnv(t, 0)
		b := e.browser(t)
		b.login("deadline@example.com", "deadline", "30m")
		for range 5 {
			e.clock.Advance(5 * time.Minute)
			expect(t, b.post("/count"), http.StatusOK)
		}
		e.clock.Advance(5 * time.Minute)
		expired(t, e, b)
	})
	t.Run("per-session deadline longer than the manager's lifetime", func(t *testing.T) {
		e := newExpiryEnv(t, time.Hour)
		b := e.browser(t)
		b.login("remember@example.com", "deadline", "3h")
		for range 17 {
			e.clock.Advance(10 * time.Minute)
			expect(t, b.post("/count"), http.StatusOK)
		}
		e.clock.Advance(10 * time.Minute)
		expired(t, e, b)
	})
	t.Run("an expired session's cookie starts a fresh session, never revives the old one", func(t *testing.T) {
		e := newExpiryEnv(t, 0)
		b := e.browser(t)
		b.login("late@example.com")
		old := b.id()
		e.clock.Advance(2 * time.Hour)
		b.fetchToken()
		if b.id() == old {
			t.Fatal("the expired ID was revived")
		}
		if rec := b.get("/me"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("the fresh session is logged in: %d", rec.Code)
		}
	})
}

// TestCookieAttributes checks the cookie's shape on the real stack.
func TestCookieAttributes(t *testing.T) {
	t.Run("Set-Cookie responses are no-store and Vary: Cookie", func(t *testing.T) {
		e := newEnv(t, setup{})
		b := e.browser(t)
		steps := map[string]func() *httptest.ResponseRecorder{
			"1 new session": func() *httptest.ResponseRecorder {
				rec := b.get("/form")
				b.token = rec.Body.String()
				return rec
			},
			"2 login": func() *httptest.ResponseRecorder {
				return b.post("/login", form(url.Values{"email": {"a@example.com"}}))
			},
			"3 write":  func() *httptest.ResponseRecorder { b.fetchToken(); return b.post("/count") },
			"4 logout": func() *httptest.ResponseRecorder { return b.post("/logout") },
		}
		for _, step := range slices.Sorted(maps.Keys(steps)) {
			rec := steps[step]()
			h := rec.Header()
			if h.Get("Set-Cookie") == "" || h.Get("Cache-Control") != "no-store" || h.Get("Vary") != "Cookie" {
				t.Fatalf("%s: headers %v", step, h)
			}
		}
	})
	t.Run("__Host- prefix by default with SecureAlways", func(t *testing.T) {
		e := newEnv(t, setup{manager: func(m *filesession.Manager) { m.Cookie.Secure = filesession.SecureAlways }})
		b := e.browser(t)
		rec := b.get("/form")
		cs := rec.Result().Cookies()
		if len(cs) != 1 || cs[0].Name != "__Host-session" || !cs[0].Secure || cs[0].Path != "/" || cs[0].Domain != "" {
			t.Fatalf("Set-Cookie %q", rec.Header().Values("Set-Cookie"))
		}
		b.login("host@example.com")
		expect(t, b.get("/me"), http.StatusOK)
		// The value under the unprefixed name, as a sibling subdomain or a
		// plain-HTTP page could set it, is not the session.
		e.noSession(t, func(method, path string) *http.Request {
			req := request(method, path)
			req.AddCookie(&http.Cookie{Name: "session", Value: b.value})
			return req
		})
	})
	t.Run("an explicit __Host- name with a Domain is refused at startup", func(t *testing.T) {
		e := newEnv(t, setup{})
		m := *e.m
		m.Cookie.Name, m.Cookie.Secure, m.Cookie.Domain = "__Host-sid", filesession.SecureAlways, "app.example"
		if err := m.Validate(); err == nil {
			t.Fatal("Validate accepted a __Host- cookie with a Domain")
		}
	})
}
