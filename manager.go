package filesession

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// Manager loads, exposes and commits sessions for net/http handlers. Create
// it with New, adjust its exported fields before serving, and wrap handlers
// with Handler. A Manager must not be changed once it serves requests.
type Manager struct {
	// Store keeps the sessions. Required.
	Store Store

	// Codec signs and verifies cookie values and makes new IDs. New sets a
	// SignedCodec over the secrets it is given.
	Codec CookieCodec

	// IdleTimeout is how long a session lives without being used (rolling
	// expiry, like session-file-store's ttl). New sets it to the store's
	// TTL if the store has one (TTLer), else to 24 hours.
	IdleTimeout time.Duration

	// Lifetime is the absolute limit on a session's life from its creation,
	// whatever its activity. Zero (the default) means none.
	Lifetime time.Duration

	// TouchInterval is the least time between two touches of an unchanged
	// session: a request that changes nothing refreshes the expiry only if
	// the session was last saved or touched at least this long ago. Default
	// one minute; zero touches on every request.
	TouchInterval time.Duration

	// MaxSize caps the encoded size of a session's values in bytes. Put
	// returns an error matching ErrTooLarge rather than exceed it. Default
	// 512 KiB, below the file store's 1 MiB record limit.
	MaxSize int

	// Cookie configures the session cookie.
	Cookie CookieOptions

	// ErrorFunc answers a request when the store fails (load, save, renew,
	// destroy) or when the session was ended by another request while this
	// one ran (ErrGone). It is called before anything of the response was
	// written and with the handler's headers removed. The default answers
	// 503 with Retry-After for store failures and 409 for ErrGone, with a
	// generic body; it never reveals the error.
	ErrorFunc func(w http.ResponseWriter, r *http.Request, err error)

	// Logger receives lifecycle and error events. Session IDs appear only
	// as LogID hashes. Default slog.Default().
	Logger *slog.Logger

	// Now is the manager's clock. Default time.Now. Tests inject a fake one
	// (give the store the same clock).
	Now func() time.Time

	logKey []byte
}

// CookieOptions are the attributes of the session cookie.
type CookieOptions struct {
	// Name of the cookie. Default "session".
	Name string
	// Domain attribute. Default empty: the cookie is sent to this host only.
	Domain string
	// Path attribute. Default "/".
	Path string
	// HTTPOnly hides the cookie from JavaScript. Default true.
	HTTPOnly bool
	// Secure selects when the cookie carries the Secure attribute. Default
	// SecureAuto.
	Secure SecureMode
	// SameSite attribute. Default http.SameSiteLaxMode.
	SameSite http.SameSite
	// Partitioned adds the Partitioned attribute (CHIPS).
	Partitioned bool
	// Persist makes the cookie outlive the browser session, with Max-Age
	// set to the session's remaining idle time. Default true; false gives a
	// browser-session cookie (the server-side expiry still applies).
	Persist bool
}

// SecureMode says when the session cookie is marked Secure.
type SecureMode int

const (
	// SecureAuto marks the cookie Secure when the request arrived over TLS
	// (r.TLS != nil). Behind a TLS-terminating proxy the request is plain
	// HTTP, so set SecureAlways there.
	SecureAuto SecureMode = iota
	// SecureAlways always marks the cookie Secure; browsers then send it
	// only over HTTPS (and to http://localhost).
	SecureAlways
	// SecureNever never marks the cookie Secure. For local development only.
	SecureNever
)

// Errors of the manager; test them with errors.Is.
var (
	// ErrGone means the session was destroyed, renewed or expired by
	// another request (or the reaper) while this request was running, so
	// this request's changes were dropped rather than bringing it back.
	ErrGone = errors.New("filesession: session ended by another request")

	// ErrNoValue means the session has no value under the key.
	ErrNoValue = errors.New("filesession: no such session value")

	// ErrReservedKey means a key is reserved for the stored format: "cookie"
	// and keys starting with "__".
	ErrReservedKey = errors.New("filesession: reserved session key")
)

// New returns a Manager over store, signing cookies with secrets[0] and
// accepting cookies signed with any of them (see NewSignedCodec for
// rotation). It fails with ErrWeakSecret if there is no secret or one is
// shorter than MinSecretLength, and if store is nil.
func New(store Store, secrets ...[]byte) (*Manager, error) {
	if store == nil {
		return nil, errors.New("filesession: New needs a Store")
	}
	codec, err := NewSignedCodec(secrets...)
	if err != nil {
		return nil, err
	}
	idle := 24 * time.Hour
	if t, ok := store.(TTLer); ok && t.TTL() > 0 {
		idle = t.TTL()
	}
	mac := hmac.New(sha256.New, secrets[0])
	mac.Write([]byte("filesession/log-id"))
	return &Manager{
		Store:         store,
		Codec:         codec,
		IdleTimeout:   idle,
		TouchInterval: time.Minute,
		MaxSize:       512 << 10,
		Cookie: CookieOptions{
			Name:     "session",
			Path:     "/",
			HTTPOnly: true,
			SameSite: http.SameSiteLaxMode,
			Persist:  true,
		},
		Logger: slog.Default(),
		Now:    time.Now,
		logKey: mac.Sum(nil),
	}, nil
}

// LogID returns a short keyed hash of a session ID for logs and metrics: the
// same ID always gives the same text, and the text does not reveal the ID.
func (m *Manager) LogID(id string) string {
	if id == "" {
		return ""
	}
	h := hmac.New(sha256.New, m.logKey)
	h.Write([]byte(id))
	return hex.EncodeToString(h.Sum(nil)[:6])
}

func (m *Manager) now() time.Time { return m.Now() }

// defaultErrorFunc is ErrorFunc's default.
func defaultErrorFunc(w http.ResponseWriter, r *http.Request, err error) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if errors.Is(err, ErrGone) {
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte("Your session ended in another request. Please try again.\n"))
		return
	}
	h.Set("Retry-After", strconv.Itoa(1))
	w.WriteHeader(http.StatusServiceUnavailable)
	w.Write([]byte("Service temporarily unavailable. Please try again.\n"))
}

// cookieAttrs returns the attributes that the cookie of a response to r has,
// as recorded in the stored record.
func (m *Manager) cookieAttrs(r *http.Request) CookieAttrs {
	a := CookieAttrs{
		Secure:   m.secure(r),
		HTTPOnly: m.Cookie.HTTPOnly,
		Path:     m.Cookie.Path,
		Domain:   m.Cookie.Domain,
	}
	switch m.Cookie.SameSite {
	case http.SameSiteLaxMode:
		a.SameSite = "lax"
	case http.SameSiteStrictMode:
		a.SameSite = "strict"
	case http.SameSiteNoneMode:
		a.SameSite = "none"
	}
	return a
}

func (m *Manager) secure(r *http.Request) bool {
	switch m.Cookie.Secure {
	case SecureAlways:
		return true
	case SecureNever:
		return false
	default:
		return r.TLS != nil
	}
}

// setCookie adds a Set-Cookie header that carries id until expires, or one
// that clears the cookie when id is empty. Responses that set the cookie are
// marked uncacheable, so a shared cache never hands one user's cookie to
// another.
func (m *Manager) setCookie(w http.ResponseWriter, r *http.Request, id string, expires time.Time) {
	c := &http.Cookie{
		Name:        m.Cookie.Name,
		Path:        m.Cookie.Path,
		Domain:      m.Cookie.Domain,
		HttpOnly:    m.Cookie.HTTPOnly,
		Secure:      m.secure(r),
		SameSite:    m.Cookie.SameSite,
		Partitioned: m.Cookie.Partitioned,
	}
	if id == "" {
		c.MaxAge = -1
		c.Expires = time.Unix(1, 0)
	} else {
		c.Value = m.Codec.Encode(m.Cookie.Name, id)
		if m.Cookie.Persist {
			secs := int(expires.Sub(m.now()).Seconds())
			if secs < 1 {
				secs = 1
			}
			c.MaxAge = secs
			c.Expires = expires.UTC()
		}
	}
	h := w.Header()
	h.Add("Set-Cookie", c.String())
	h.Add("Vary", "Cookie")
	h.Set("Cache-Control", `no-store`)
}

// expiresAt returns when a session last used at lastAccess expires, given
// its idle timeout and absolute deadline.
func expiresAt(lastAccess time.Time, idle time.Duration, deadline time.Time) time.Time {
	r := Record{LastAccess: lastAccess, IdleTimeout: idle, Deadline: deadline}
	return r.ExpiresAt()
}
