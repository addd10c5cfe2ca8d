package main

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/csrf"
	"github.com/filesession/filesession/express"
	"github.com/filesession/filesession/filestore"
	"github.com/filesession/filesession/metrics"
)

// Session keys the demo uses. They are the seed's keys, so that other tools
// (and an Express app sharing the directory) can read them: "user" holds
// {"userId":"...","email":"..."} and "count" a JSON number.
const (
	userKey  = "user"
	countKey = "count"
)

// maxBody caps every request body. The demo's forms are tiny; the cap keeps a
// client from making csrf.Valid's form parsing read megabytes.
const maxBody = 64 << 10

// maxEmail is the longest email address accepted at login (RFC 5321's limit
// on a forward path, minus the angle brackets).
const maxEmail = 254

//go:embed templates static
var assets embed.FS

// config is what the demo is built from. main fills it from flags and the
// environment; tests fill it directly. New settings (a store URL, a preset,
// metrics) belong here, so newApp's signature stays put.
type config struct {
	// Dir is the session directory of the file store.
	Dir string
	// TTL is the idle timeout of sessions (the file store's TTL).
	TTL time.Duration
	// Secret signs session cookies; it must be at least
	// filesession.MinSecretLength bytes. Nil means: use the secret kept in
	// Dir (secretFileName), generating it on first start.
	Secret []byte
	// Logger receives the demo's, the manager's and the store's logs. Nil
	// means slog.Default().
	Logger *slog.Logger
	// Now is the clock of the store and the manager. Nil means time.Now.
	Now func() time.Time
	// Preset selects how sessions are stored and carried: "" or
	// presetFilesession for the file store's own format and the demo's
	// signed "session" cookie; presetExpress to share Dir and the cookie
	// with an Express app on express-session + session-file-store
	// (filestore.ExpressOptions and package express). The express preset
	// needs Secret: the Express app's secret.
	Preset string
	// Store is where sessions are kept: "" or storeFile for the file store
	// in Dir, or a redis://[user:password@]host:port/db URL (rediss:// for
	// TLS, unix:// for a socket; ?prefix= sets the key prefix, default
	// "sess:") for the Redis store, which several processes and hosts can
	// share. With Redis, Dir only supplies a signing secret a file-store
	// run kept there when Secret is nil; one is never generated (see
	// redisSecret in store.go). The express preset needs the file store.
	Store string
}

// Presets of config.Preset.
const (
	presetFilesession = "filesession"
	presetExpress     = "express"
)

// user is the value stored under userKey, in the seed's shape.
type user struct {
	UserID string `json:"userId"`
	Email  string `json:"email"`
}

// app holds the demo's handlers and what they share.
type app struct {
	sessions *filesession.Manager
	page     *template.Template
	log      *slog.Logger
}

// newApp opens the file store in cfg.Dir (or the Redis store cfg.Store
// names) and returns the demo's handler and the closer that stops the store
// (its reaper, or the Redis client) once the server is done.
func newApp(cfg config) (http.Handler, io.Closer, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TTL <= 0 {
		return nil, nil, fmt.Errorf("ttl must be positive, got %v", cfg.TTL)
	}
	opts := filestore.DefaultOptions()
	switch cfg.Preset {
	case "", presetFilesession:
		opts.TTL = cfg.TTL
	case presetExpress:
		// session-file-store's file names, IDs and expiry rule. The store's
		// TTL stays its ttl default (1h), which only sessions without
		// cookie.originalMaxAge use; cfg.TTL is the cookie.maxAge of the
		// sessions this app creates (buildHandler).
		if cfg.Secret == nil {
			return nil, nil, errors.New("the express preset needs the Express app's secret (-secret or SESSION_SECRET)")
		}
		opts = filestore.ExpressOptions("")
	default:
		return nil, nil, fmt.Errorf("unknown preset %q (want %q or %q)", cfg.Preset, presetFilesession, presetExpress)
	}
	if cfg.Store != "" && cfg.Store != storeFile {
		return newRedisApp(cfg)
	}
	if cfg.Dir != "" {
		opts.Path = cfg.Dir
	}
	opts.Logger = cfg.Logger
	opts.Now = cfg.Now
	// Metrics: the collector is the store's Events (retries, lock waits,
	// reaper passes, quarantines) and counts and times every call the
	// manager makes through the instrumented store. GET /metrics serves it.
	stats := metrics.New(metrics.Options{})
	opts.Events = stats
	store, err := filestore.Open(opts)
	if err != nil {
		return nil, nil, err
	}
	h, err := buildHandler(cfg, opts.Path, stats.Instrument(store))
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return withMetrics(h, stats), store, nil
}

// withMetrics serves the Prometheus scrape of c on GET /metrics, outside
// the session middleware (a scrape must neither create nor touch a
// session), and everything else with h. The demo listens on localhost; a
// real deployment keeps /metrics off the public listener.
func withMetrics(h http.Handler, c *metrics.Collector) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", c.Handler())
	mux.Handle("/", h)
	return mux
}

// buildHandler wires the manager, CSRF protection and routes over store.
func buildHandler(cfg config, dir string, store filesession.Store) (http.Handler, error) {
	secret := cfg.Secret
	if secret == nil {
		// The store has created and checked dir by now, so the secret file
		// lands in a directory that is ours and closed to others.
		var err error
		if secret, err = loadOrCreateSecret(dir, cfg.Logger); err != nil {
			return nil, err
		}
	}
	sessions, err := filesession.New(store, secret)
	if err != nil {
		return nil, err
	}
	if cfg.Preset == presetExpress {
		// connect.sid, signed as express-session signs it, with its IDs;
		// sessions this app creates last cfg.TTL (the Express app's
		// cookie.maxAge) like the ones Node creates.
		if err := express.Configure(sessions, string(secret)); err != nil {
			return nil, err
		}
		sessions.IdleTimeout = cfg.TTL
	}
	sessions.Logger = cfg.Logger
	if cfg.Now != nil {
		sessions.Now = cfg.Now
	}
	page, err := template.ParseFS(assets, "templates/page.html")
	if err != nil {
		return nil, err
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	a := &app{sessions: sessions, page: page, log: cfg.Logger}

	// Routes that use sessions. Every unsafe method passes csrf.Protect
	// first, which needs the session, hence the order.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /api/csrf", a.csrfToken)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /api/me", a.me)
	mux.HandleFunc("POST /api/count", a.count)
	mux.HandleFunc("GET /sessions", a.sessionsPage)
	mux.HandleFunc("POST /sessions/revoke", a.revokeSession)
	mux.HandleFunc("POST /sessions/revoke-others", a.revokeOthers)

	// Static files need no session: serving them outside the manager keeps
	// them from creating or touching one.
	root := http.NewServeMux()
	root.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	root.Handle("/", sessions.Handler(csrf.Protect(mux)))
	return baseline(root), nil
}

// baseline caps request bodies and sets the headers every response carries.
func baseline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// pageData is what templates/page.html shows.
type pageData struct {
	User        *user
	Count       int
	ExpiresISO  string
	ExpiresText string
	// Email refills the login form after a refused attempt.
	Email     string
	Error     string
	CSRFField template.HTML
}

// home serves the page: the login form, or the user, the session's expiry
// and the counter.
func (a *app) home(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, pageData{})
}

// render shows the page with data, filling in what the session says.
func (a *app) render(w http.ResponseWriter, r *http.Request, status int, data pageData) {
	s := filesession.FromContext(r.Context())
	// The field creates the session's CSRF token on first use, which
	// creates the session: a logged-out visitor needs one to log in.
	data.CSRFField = csrf.TemplateField(r)
	if u, ok := filesession.Get[user](s, userKey); ok {
		data.User = &u
		data.Count, _ = filesession.Get[int](s, countKey)
		exp := s.ExpiresAt().UTC()
		data.ExpiresISO = exp.Format(time.RFC3339)
		data.ExpiresText = exp.Format("2006-01-02 15:04:05 MST")
	}
	// Render into a buffer first, so a template error is a clean 500 and
	// not half a page.
	var buf bytes.Buffer
	if err := a.page.Execute(&buf, data); err != nil {
		a.log.Error("demo: rendering page failed", "err", err)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// csrfToken answers {"token":"..."} with a freshly masked token for
// JavaScript clients, creating the session if needed.
func (a *app) csrfToken(w http.ResponseWriter, r *http.Request) {
	tok, err := csrf.Token(r)
	if err != nil {
		a.log.Error("demo: making CSRF token failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, errorBody{"could not make a CSRF token"})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Token string `json:"token"`
	}{tok})
}

// login accepts any email with any non-empty password. It renews the session
// ID, so a cookie captured before login (session fixation) is worth nothing.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	email := strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
	password := r.PostFormValue("password")
	if email == "" || password == "" || len(email) > maxEmail {
		a.render(w, r, http.StatusBadRequest, pageData{
			Email: email,
			Error: "Enter an email address and a password (any password works in this demo).",
		})
		return
	}
	u := user{UserID: userID(email), Email: email}
	s := filesession.FromContext(r.Context())
	s.Renew()
	// The session belongs to the user from now on (listed on /sessions,
	// revoked with "sign out everywhere else"); the User-Agent is what
	// that page shows to tell the sessions apart.
	err := s.SetUser(u.UserID)
	if err == nil {
		err = s.Put(userKey, u)
	}
	if err == nil {
		err = s.Put(filesession.UserAgentKey, userAgent(r))
	}
	if err != nil {
		a.log.Error("demo: storing user failed", "err", err)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	a.log.Info("demo: logged in", "userId", u.UserID)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// userID returns the stable ID of an email address: the same (lower-cased)
// email always gets the same ID, in every process and after every restart,
// with no user table to keep.
func userID(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(email)))
	return hex.EncodeToString(sum[:8])
}

// logout ends the session: its file is deleted and the cookie cleared.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	filesession.FromContext(r.Context()).Destroy()
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// me answers the logged-in user, or 401.
func (a *app) me(w http.ResponseWriter, r *http.Request) {
	u, ok := filesession.Get[user](filesession.FromContext(r.Context()), userKey)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, errorBody{"not logged in"})
		return
	}
	writeJSON(w, http.StatusOK, u)
}

// count increments the session's counter and answers {"count":N}. It uses
// filesession.Update, which reads and writes the counter under the store's
// per-session lock, so concurrent requests (in this process or another on
// the same directory) never lose an increment.
func (a *app) count(w http.ResponseWriter, r *http.Request) {
	s := filesession.FromContext(r.Context())
	n, err := filesession.Update(r.Context(), s, countKey, func(n int, _ bool) (int, error) {
		return n + 1, nil
	})
	if err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			// Someone stored a non-number under "count" (another app, a
			// hand edit): a fault of the data, not of the store.
			a.log.Warn("demo: counter is not a number", "err", err)
			writeJSON(w, http.StatusInternalServerError, errorBody{"the counter in this session is not a number"})
			return
		}
		// A store failure (503) or a session ended meanwhile (409): the
		// manager's policy applies, as for its own commits.
		a.log.Warn("demo: counting failed", "err", err)
		a.sessions.ErrorFunc(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Count int `json:"count"`
	}{n})
}

// errorBody is the JSON of an API error.
type errorBody struct {
	Error string `json:"error"`
}

// writeJSON answers v as JSON with status. Answers depend on the session, so
// no cache may keep them.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
