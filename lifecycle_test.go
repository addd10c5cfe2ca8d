package filesession_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/memstore"
	"github.com/filesession/filesession/storetest"
)

func newManager(t *testing.T) *filesession.Manager {
	t.Helper()
	m, err := filesession.New(memstore.New(), testSecret)
	if err != nil {
		t.Fatal(err)
	}
	m.Logger = slog.New(slog.DiscardHandler)
	return m
}

func TestCookieNameDefaults(t *testing.T) {
	cases := []struct {
		name      string
		configure func(*filesession.CookieOptions)
		want      string
	}{
		{"SecureAuto keeps the plain name", func(*filesession.CookieOptions) {}, "session"},
		{"SecureAlways gets the __Host- prefix", func(c *filesession.CookieOptions) { c.Secure = filesession.SecureAlways }, "__Host-session"},
		{"SecureNever keeps the plain name", func(c *filesession.CookieOptions) { c.Secure = filesession.SecureNever }, "session"},
		{"a Domain rules out __Host-", func(c *filesession.CookieOptions) {
			c.Secure, c.Domain = filesession.SecureAlways, "example.com"
		}, "session"},
		{"a Path rules out __Host-", func(c *filesession.CookieOptions) {
			c.Secure, c.Path = filesession.SecureAlways, "/app"
		}, "session"},
		{"an explicit name is kept", func(c *filesession.CookieOptions) {
			c.Secure, c.Name = filesession.SecureAlways, "sid"
		}, "sid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newManager(t)
			c.configure(&m.Cookie)
			if got := m.CookieName(); got != c.want {
				t.Fatalf("CookieName() = %q, want %q", got, c.want)
			}
			if err := m.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestHostPrefixedCookieIsSetAndAccepted(t *testing.T) {
	m := newManager(t)
	m.Cookie.Secure = filesession.SecureAlways
	h := m.Handler(testMux())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/put?k=a&v=1", nil))
	sc := rec.Header().Get("Set-Cookie")
	c, err := http.ParseSetCookie(sc)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "__Host-session" || !c.Secure || c.Path != "/" || c.Domain != "" {
		t.Fatalf("Set-Cookie %q is not a valid __Host- cookie", sc)
	}
	req := httptest.NewRequest("GET", "/get?k=a", nil)
	req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.String() != "1" {
		t.Fatalf("__Host- cookie not accepted: %d %q", rec.Code, rec.Body)
	}
	// The same value under the unprefixed name is a different cookie: the
	// MAC binds the name.
	req = httptest.NewRequest("GET", "/get?k=a", nil)
	req.AddCookie(&http.Cookie{Name: "session", Value: c.Value})
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 404 {
		t.Fatalf("value moved to the unprefixed name: %d, want no session", rec.Code)
	}
}

func TestValidateRefuses(t *testing.T) {
	cases := map[string]func(*filesession.Manager){
		"__Host- name with SecureAuto":  func(m *filesession.Manager) { m.Cookie.Name = "__Host-sid" },
		"__Host- name with SecureNever": func(m *filesession.Manager) { m.Cookie.Name, m.Cookie.Secure = "__Host-sid", filesession.SecureNever },
		"__host- name, other case":      func(m *filesession.Manager) { m.Cookie.Name = "__host-sid" },
		"__Host- name with a Domain": func(m *filesession.Manager) {
			m.Cookie.Name, m.Cookie.Secure, m.Cookie.Domain = "__Host-sid", filesession.SecureAlways, "example.com"
		},
		"__Host- name with a Path": func(m *filesession.Manager) {
			m.Cookie.Name, m.Cookie.Secure, m.Cookie.Path = "__Host-sid", filesession.SecureAlways, "/app"
		},
		"__Secure- name with SecureAuto": func(m *filesession.Manager) { m.Cookie.Name = "__Secure-sid" },
		"Partitioned with SecureNever":   func(m *filesession.Manager) { m.Cookie.Partitioned, m.Cookie.Secure = true, filesession.SecureNever },
		"SameSite=None with SecureNever": func(m *filesession.Manager) {
			m.Cookie.SameSite, m.Cookie.Secure = http.SameSiteNoneMode, filesession.SecureNever
		},
		"empty Path":             func(m *filesession.Manager) { m.Cookie.Path = "" },
		"relative Path":          func(m *filesession.Manager) { m.Cookie.Path = "app" },
		"Path with a semicolon":  func(m *filesession.Manager) { m.Cookie.Path = "/a;b" },
		"name with a space":      func(m *filesession.Manager) { m.Cookie.Name = "my session" },
		"name with an equals":    func(m *filesession.Manager) { m.Cookie.Name = "a=b" },
		"invalid Domain":         func(m *filesession.Manager) { m.Cookie.Domain = "exa mple.com" },
		"unknown SecureMode":     func(m *filesession.Manager) { m.Cookie.Secure = 7 },
		"zero IdleTimeout":       func(m *filesession.Manager) { m.IdleTimeout = 0 },
		"negative Lifetime":      func(m *filesession.Manager) { m.Lifetime = -time.Second },
		"negative TouchInterval": func(m *filesession.Manager) { m.TouchInterval = -time.Second },
		"negative MaxSize":       func(m *filesession.Manager) { m.MaxSize = -1 },
		"no Store":               func(m *filesession.Manager) { m.Store = nil },
		"no Codec":               func(m *filesession.Manager) { m.Codec = nil },
	}
	for name, configure := range cases {
		t.Run(name, func(t *testing.T) {
			m := newManager(t)
			configure(m)
			err := m.Validate()
			if !errors.Is(err, filesession.ErrConfig) {
				t.Fatalf("Validate: %v, want ErrConfig", err)
			}
			defer func() {
				if p := recover(); p == nil {
					t.Fatal("Handler served a manager that Validate refuses")
				}
			}()
			m.Handler(testMux())
		})
	}
	for name, configure := range map[string]func(*filesession.Manager){
		"__Host- name done right": func(m *filesession.Manager) { m.Cookie.Name, m.Cookie.Secure = "__Host-sid", filesession.SecureAlways },
		"__Secure- name with Path": func(m *filesession.Manager) {
			m.Cookie.Name, m.Cookie.Secure, m.Cookie.Path = "__Secure-sid", filesession.SecureAlways, "/app"
		},
		"Partitioned on SecureAuto": func(m *filesession.Manager) { m.Cookie.Partitioned = true },
		"a Domain":                  func(m *filesession.Manager) { m.Cookie.Domain = "example.com" },
	} {
		t.Run("accepts "+name, func(t *testing.T) {
			m := newManager(t)
			configure(m)
			if err := m.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// setCookieOf returns the one session Set-Cookie of rec, parsed.
func setCookieOf(t *testing.T, rec *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	all := rec.Result().Cookies()
	if len(all) != 1 {
		t.Fatalf("want one Set-Cookie, have %q", rec.Header().Values("Set-Cookie"))
	}
	return all[0]
}

func TestLogoutClearsCookieWithMatchingAttributes(t *testing.T) {
	cases := map[string]func(*filesession.CookieOptions){
		"defaults":        func(*filesession.CookieOptions) {},
		"__Host- default": func(c *filesession.CookieOptions) { c.Secure = filesession.SecureAlways },
		"domain and path": func(c *filesession.CookieOptions) { c.Domain, c.Path = "example.com", "/app" },
		"secure prefix": func(c *filesession.CookieOptions) {
			c.Name, c.Secure, c.Path = "__Secure-sid", filesession.SecureAlways, "/app"
		},
		"strict, not http": func(c *filesession.CookieOptions) { c.SameSite, c.HTTPOnly = http.SameSiteStrictMode, false },
		"partitioned none": func(c *filesession.CookieOptions) {
			c.Secure, c.SameSite, c.Partitioned = filesession.SecureAlways, http.SameSiteNoneMode, true
		},
		"browser-session": func(c *filesession.CookieOptions) { c.Persist = false },
	}
	for name, configure := range cases {
		t.Run(name, func(t *testing.T) {
			m := newManager(t)
			configure(&m.Cookie)
			h := m.Handler(testMux())
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", "http://example.com/put?k=a&v=1", nil))
			set := setCookieOf(t, rec)
			req := httptest.NewRequest("POST", "http://example.com/destroy", nil)
			req.AddCookie(&http.Cookie{Name: set.Name, Value: set.Value})
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			clear := setCookieOf(t, rec)
			if clear.MaxAge >= 0 || clear.Value != "" {
				t.Fatalf("logout did not clear the cookie: %q", rec.Header().Get("Set-Cookie"))
			}
			type attrs struct {
				Name, Path, Domain            string
				Secure, HttpOnly, Partitioned bool
				SameSite                      http.SameSite
			}
			a := attrs{set.Name, set.Path, set.Domain, set.Secure, set.HttpOnly, set.Partitioned, set.SameSite}
			b := attrs{clear.Name, clear.Path, clear.Domain, clear.Secure, clear.HttpOnly, clear.Partitioned, clear.SameSite}
			if a != b {
				t.Fatalf("the clearing cookie differs from the one set:\nset   %+v\nclear %+v", a, b)
			}
			if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Vary") != "Cookie" {
				t.Fatalf("a response clearing the cookie must be uncacheable: %v", rec.Header())
			}
		})
	}
}

func TestVaryCookieNotRepeated(t *testing.T) {
	m := newManager(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Accept-Encoding, cookie")
		filesession.FromContext(r.Context()).Put("a", 1)
	})
	rec := httptest.NewRecorder()
	m.Handler(mux).ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	if v := rec.Header().Values("Vary"); len(v) != 1 {
		t.Fatalf("Vary %q: Cookie added although the handler named it", v)
	}
}

// deadlineMux adds /deadline?in=&k=&v= (SetDeadline from the manager's
// clock, then an optional Put) to testMux.
func deadlineMux(c *storetest.Clock) http.Handler {
	mux := testMux()
	mux.HandleFunc("/deadline", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.FormValue("in"))
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		s := filesession.FromContext(r.Context())
		s.SetDeadline(c.Now().Add(d))
		if k := r.FormValue("k"); k != "" {
			s.Put(k, r.FormValue("v"))
		}
		fmt.Fprint(w, s.Deadline().Sub(c.Now()))
	})
	return mux
}

func TestSetDeadlineOverridesLifetime(t *testing.T) {
	for _, c := range []struct {
		name     string
		lifetime time.Duration
		deadline time.Duration
	}{
		{"shorter than Lifetime", 3 * time.Hour, 90 * time.Minute},
		{"longer than Lifetime", time.Hour, 150 * time.Minute},
		{"with no Lifetime", 0, 100 * time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(m *filesession.Manager) {
				m.IdleTimeout = time.Hour
				m.Lifetime = c.lifetime
			})
			srv := httptest.NewServer(e.m.Handler(deadlineMux(e.clock)))
			defer srv.Close()
			e.srv = srv
			e.post("/put?k=a&v=1")
			if code, _ := e.post("/deadline?in=" + c.deadline.String()); code != 200 {
				t.Fatal(code)
			}
			// Renewing (a login) keeps the deadline.
			e.post("/renew")
			start := e.clock.Now()
			for e.clock.Now().Sub(start)+20*time.Minute < c.deadline {
				e.clock.Advance(20 * time.Minute)
				if code, _ := e.post("/put?k=a&v=1"); code != 200 {
					t.Fatal(code)
				}
				if code, _ := e.get("/get?k=a"); code != 200 {
					t.Fatalf("session died %v after the deadline was set to %v", e.clock.Now().Sub(start), c.deadline)
				}
			}
			e.clock.Advance(c.deadline - e.clock.Now().Sub(start))
			if code, _ := e.get("/get?k=a"); code != 404 {
				t.Fatalf("session outlived its per-session deadline of %v despite activity", c.deadline)
			}
		})
	}
}

func TestSetDeadlineOnNewSessionAndInThePast(t *testing.T) {
	e := newEnv(t, func(m *filesession.Manager) { m.Lifetime = time.Hour })
	srv := httptest.NewServer(e.m.Handler(deadlineMux(e.clock)))
	defer srv.Close()
	e.srv = srv
	// A deadline set before the session is first stored is the one it gets,
	// not the Lifetime's.
	e.post("/deadline?in=30m&k=a&v=1")
	var rec filesession.Record
	e.mem.List(context.Background(), func(_ string, r filesession.Record) error { rec = r; return nil })
	if want := e.clock.Now().Add(30 * time.Minute); !rec.Deadline.Equal(want) {
		t.Fatalf("new session's deadline %v, want %v", rec.Deadline, want)
	}
	_, _, resp := e.do(e.c, "POST", "/deadline?in=-1s")
	if e.count() != 0 {
		t.Fatal("a deadline in the past must end the session")
	}
	if !strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("ending the session by deadline must clear the cookie: %q", resp.Header.Get("Set-Cookie"))
	}
}

func TestUpdateRespectsMaxSize(t *testing.T) {
	e := newEnv(t, func(m *filesession.Manager) { m.MaxSize = 200 })
	e.post("/put?k=a&v=1")
	mux := http.NewServeMux()
	var got error
	mux.HandleFunc("/grow", func(w http.ResponseWriter, r *http.Request) {
		_, got = filesession.Update(r.Context(), filesession.FromContext(r.Context()), "big",
			func(string, bool) (string, error) { return strings.Repeat("x", 300), nil })
	})
	srv := httptest.NewServer(e.m.Handler(mux))
	defer srv.Close()
	e.srv = srv
	e.post("/grow")
	if !errors.Is(got, filesession.ErrTooLarge) {
		t.Fatalf("Update past MaxSize: %v, want ErrTooLarge", got)
	}
	var rec filesession.Record
	e.mem.List(context.Background(), func(_ string, r filesession.Record) error { rec = r; return nil })
	if _, ok := rec.Values["big"]; ok {
		t.Fatal("the oversized value was stored")
	}
	// A new session is held to the limit too.
	c := newClient(t)
	e.do(c, "POST", "/grow")
	if !errors.Is(got, filesession.ErrTooLarge) || e.count() != 1 {
		t.Fatalf("Update on a new session past MaxSize: %v, %d sessions", got, e.count())
	}
}
