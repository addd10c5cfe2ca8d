package adversarial

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/csrf"
	"github.com/filesession/filesession/filestore"
)

// unavailable fails t unless rec is the store-failure answer: 503 with
// Retry-After and a generic body, setting no cookie.
func unavailable(t *testing.T, e *env, rec *httptest.ResponseRecorder) {
	t.Helper()
	expect(t, rec, http.StatusServiceUnavailable)
	if rec.Header().Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	if rec.Header().Get("Set-Cookie") != "" {
		t.Fatalf("a failed request sent Set-Cookie %q", rec.Header().Values("Set-Cookie"))
	}
	if strings.Contains(rec.Body.String(), "lock") || strings.Contains(rec.Body.String(), "filestore") {
		t.Fatalf("the body reveals the error: %q", rec.Body)
	}
}

// TestStoreFailure makes the real store fail the way a stuck process
// sharing the directory makes it fail: every session lock held elsewhere,
// so every write times out (ErrLockTimeout) while reads still work. The
// answer is 503 with Retry-After, no cookie, nothing on disk changed, and
// the session as it was once the store recovers.
func TestStoreFailure(t *testing.T) {
	e := newEnv(t, setup{})
	victim := e.browser(t)
	victim.login("victim@example.com")
	expect(t, victim.post("/count"), http.StatusOK)

	same := func(*testing.T) *browser { return victim }
	cases := []struct {
		name    string
		prepare func(t *testing.T) *browser
		send    func(b *browser) *httptest.ResponseRecorder
	}{
		{"Update of a value (the counter)", same, func(b *browser) *httptest.ResponseRecorder { return b.post("/count") }},
		{"a Put committed after the handler", same, func(b *browser) *httptest.ResponseRecorder { return b.post("/put?k=note&v=x") }},
		{"privilege change (renew)", same, func(b *browser) *httptest.ResponseRecorder { return b.post("/privilege") }},
		{"logout (delete)", same, func(b *browser) *httptest.ResponseRecorder { return b.post("/logout") }},
		{"login (renew of a pre-login session)", func(t *testing.T) *browser {
			b := e.browser(t)
			b.fetchToken()
			return b
		}, func(b *browser) *httptest.ResponseRecorder {
			return b.post("/login", form(url.Values{"email": {"new@example.com"}}))
		}},
		{"a new visitor's first session (create)", func(t *testing.T) *browser { return e.browser(t) },
			func(b *browser) *httptest.ResponseRecorder { return b.get("/form") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.prepare(t)
			old := b.value
			before := e.snapshot()
			release := e.holdLocks(t)
			rec := c.send(b)
			release()
			unavailable(t, e, rec)
			e.unchanged(t, before)
			if b.value != old {
				t.Fatal("the client's cookie changed")
			}
		})
	}
	t.Run("after recovery the session is as it was", func(t *testing.T) {
		rec := victim.post("/count")
		expect(t, rec, http.StatusOK)
		if rec.Body.String() != "2" {
			t.Fatalf("count %q after the failures, want 2", rec.Body)
		}
		expect(t, victim.get("/me"), http.StatusOK)
	})
	t.Run("a load failure is 503, never no session", func(t *testing.T) {
		before := e.snapshot()
		e.store.Close()
		e.closed = true
		unavailable(t, e, victim.get("/peek"))
		unavailable(t, e, victim.get("/me"))
		e.unchanged(t, before)
	})
}

// TestOversizedSession checks that a session that would grow past a limit
// is a typed error to the handler (ErrTooLarge, which it answers 413), and
// that nothing, not even part of it, is written.
func TestOversizedSession(t *testing.T) {
	t.Run("Put past Manager.MaxSize", func(t *testing.T) {
		e := newEnv(t, setup{manager: func(m *filesession.Manager) { m.MaxSize = 1000 }})
		b := e.browser(t)
		b.login("big@example.com")
		before := e.snapshot()
		expect(t, b.post("/put?k=big&v="+strings.Repeat("x", 2000)), http.StatusRequestEntityTooLarge)
		e.unchanged(t, before)
		expect(t, b.get("/me"), http.StatusOK)
	})
	t.Run("Update past Manager.MaxSize", func(t *testing.T) {
		e := newEnv(t, setup{manager: func(m *filesession.Manager) { m.MaxSize = 1000 }})
		b := e.browser(t)
		b.login("big@example.com")
		before := e.snapshot()
		expect(t, b.post("/grow?n=2000"), http.StatusRequestEntityTooLarge)
		e.unchanged(t, before)
	})
	t.Run("Update past the store's MaxSize", func(t *testing.T) {
		e := newEnv(t, setup{
			store:   func(o *filestore.Options) { o.MaxSize = 2048 },
			manager: func(m *filesession.Manager) { m.MaxSize = 1 << 20 },
		})
		b := e.browser(t)
		b.login("big@example.com")
		before := e.snapshot()
		expect(t, b.post("/grow?n=4000"), http.StatusRequestEntityTooLarge)
		e.unchanged(t, before)
	})
	t.Run("a Put the store refuses at commit is a 500, not a retryable 503", func(t *testing.T) {
		e := newEnv(t, setup{
			store:   func(o *filestore.Options) { o.MaxSize = 2048 },
			manager: func(m *filesession.Manager) { m.MaxSize = 1 << 20 },
		})
		b := e.browser(t)
		b.login("big@example.com")
		before := e.snapshot()
		rec := b.post("/put?k=big&v=" + strings.Repeat("x", 4000))
		expect(t, rec, http.StatusInternalServerError)
		if rec.Header().Get("Retry-After") != "" || rec.Header().Get("Set-Cookie") != "" {
			t.Fatalf("headers %v", rec.Header())
		}
		e.unchanged(t, before)
		expect(t, b.get("/me"), http.StatusOK)
	})
}

// TestPlantedFiles changes the session directory behind the server's back,
// as someone with write access to it could: a truncated file, a symlink
// where a session should be, a file others may write. Each is "no session"
// (never a 500), and the server changes nothing but moving the corrupt file
// aside.
func TestPlantedFiles(t *testing.T) {
	e := newEnv(t, setup{})
	t.Run("truncated session file is no session, and quarantined", func(t *testing.T) {
		b := e.browser(t)
		b.login("corrupt@example.com")
		id := b.id()
		name := filepath.Join(e.dir, "sess_"+id+".json")
		data, err := readQuietly(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, data[:len(data)/2], 0o600); err != nil {
			t.Fatal(err)
		}
		before := e.snapshot()
		expect(t, b.get("/peek"), http.StatusOK)
		// The one change: the file moved aside, byte for byte.
		after := e.snapshot()
		rel := filepath.Join("sessions", "sess_"+id+".json")
		moved, ok := after[rel+".corrupt"]
		if _, still := after[rel]; still || !ok || moved.sum != before[rel].sum {
			t.Fatalf("corrupt file not quarantined as is:\n%s", diff(before, after))
		}
		delete(before, rel)
		delete(after, rel+".corrupt")
		if d := diff(before, after); d != "" {
			t.Fatalf("more than the quarantine changed:\n%s", d)
		}
		if b.value != "" {
			t.Fatal("the dead cookie was not cleared")
		}
		e.noSession(t, func(method, path string) *http.Request {
			req := request(method, path)
			req.AddCookie(&http.Cookie{Name: e.name(), Value: sign(testKey, e.name(), id)})
			return req
		})
	})
	t.Run("symlink at a session's file name is no session, its target untouched", func(t *testing.T) {
		id := filesession.NewID()
		if err := os.Symlink("../passwd", filepath.Join(e.dir, "sess_"+id+".json")); err != nil {
			t.Fatal(err)
		}
		e.noSession(t, func(method, path string) *http.Request {
			req := request(method, path)
			req.AddCookie(&http.Cookie{Name: e.name(), Value: sign(testKey, e.name(), id)})
			return req
		})
	})
	t.Run("session file writable by others is no session", func(t *testing.T) {
		b := e.browser(t)
		b.login("writable@example.com")
		name := filepath.Join(e.dir, "sess_"+b.id()+".json")
		if err := os.Chmod(name, 0o666); err != nil {
			t.Fatal(err)
		}
		e.noSession(t, func(method, path string) *http.Request {
			req := request(method, path)
			req.AddCookie(&http.Cookie{Name: e.name(), Value: b.value})
			return req
		})
	})
	t.Run("directory in place of a session file is no session", func(t *testing.T) {
		id := filesession.NewID()
		if err := os.Mkdir(filepath.Join(e.dir, "sess_"+id+".json"), 0o700); err != nil {
			t.Fatal(err)
		}
		e.noSession(t, func(method, path string) *http.Request {
			req := request(method, path)
			req.AddCookie(&http.Cookie{Name: e.name(), Value: sign(testKey, e.name(), id)})
			return req
		})
	})
}

// TestLogsCarryNoSecrets runs a full login, count, logout flow and the
// error paths (forged cookie, CSRF failure, store failure, corrupt file,
// replay, closed store) with every log line of the manager and the store
// captured, and checks that no session ID, cookie value, CSRF secret or
// masked token appears in them, whole or in part; only the keyed hash
// Manager.LogID does.
func TestLogsCarryNoSecrets(t *testing.T) {
	e := newEnv(t, setup{})
	var secrets []string
	keep := func(b *browser) {
		secrets = append(secrets, b.value, b.id(), b.token)
		if id := b.id(); id != "" && e.hasFile(id) {
			var hexSecret string
			json.Unmarshal(e.record(id)[csrf.SessionKey], &hexSecret)
			secrets = append(secrets, hexSecret)
		}
	}
	var logIDs []string

	user := e.browser(t)
	user.fetchToken()
	keep(user)
	logIDs = append(logIDs, e.m.LogID(user.id()))
	user.login("user@example.com")
	keep(user)
	for range 2 {
		expect(t, user.post("/count"), http.StatusOK)
	}
	expect(t, user.post("/privilege"), http.StatusOK)
	user.fetchToken()
	keep(user)

	forged := e.browser(t)
	forged.value = user.value[:len(user.value)-1] + "A"
	forged.get("/me")
	expect(t, user.post("/count", token(forged.value)), http.StatusForbidden)

	release := e.holdLocks(t)
	expect(t, user.post("/put?k=a&v=1"), http.StatusServiceUnavailable)
	release()

	other := e.browser(t)
	other.login("other@example.com")
	keep(other)
	name := filepath.Join(e.dir, "sess_"+other.id()+".json")
	if err := os.WriteFile(name, []byte(`{"cookie":`), 0o600); err != nil {
		t.Fatal(err)
	}
	expect(t, other.get("/me"), http.StatusUnauthorized)

	stolen := user.value
	expect(t, user.post("/logout"), http.StatusOK)
	replay := e.browser(t)
	replay.value = stolen
	expect(t, replay.get("/me"), http.StatusUnauthorized)

	e.store.Close()
	e.closed = true
	expect(t, user.get("/me"), http.StatusUnauthorized) // no cookie left: no store call
	replay.value = stolen
	expect(t, replay.get("/me"), http.StatusServiceUnavailable)

	logs := e.logs.String()
	for _, want := range []string{"session created", "session renewed", "session destroyed", "committing session failed", "quarantined", "loading session failed", logIDs[0]} {
		if !strings.Contains(logs, want) {
			t.Fatalf("the logs lack %q, so the capture is not what it should be:\n%s", want, logs)
		}
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, part := range []string{s, s[:min(len(s), 16)], s[len(s)-min(len(s), 16):]} {
			if strings.Contains(logs, part) {
				t.Fatalf("the logs contain %q, part of a secret:\n%s", part, logs)
			}
		}
	}
}
