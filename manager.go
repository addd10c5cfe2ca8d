package filesession

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
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
	// 503 with Retry-After for store failures, 409 for ErrGone, and 500
	// for ErrTooLarge (a commit that the store's own size limit refused,
	// which retrying cannot cure), with a generic body; it never reveals
	// the error.
	ErrorFunc func(w http.ResponseWriter, r *http.Request, err error)

	// Logger receives lifecycle and error events. Session IDs appear only
	// as LogID hashes. Default slog.Default().
	Logger *slog.Logger

	// Now is the manager's clock. Default time.Now. Tests inject a fake one
	// (give the store the same clock).
	Now func() time.Time

	logKey []byte
}

// CookieOptions are the attributes of the session cookie. Manager.Validate
// (which Handler calls) refuses combinations that browsers reject or that
// would silently weaken the cookie.
type CookieOptions struct {
	// Name of the cookie. Empty (the default New leaves) means
	// HostCookieName ("__Host-session") when Secure is SecureAlways, Domain
	// is empty and Path is "/", and DefaultCookieName ("session")
	// otherwise; Manager.CookieName returns the name in effect. The
	// __Host- prefix makes browsers refuse the cookie unless it is Secure,
	// host-only and for the whole site, so a sibling subdomain or a
	// plain-HTTP response cannot plant or overwrite it (cookie tossing,
	// session fixation). The prefix is not applied under SecureAuto, where
	// the cookie is Secure on some requests and not on others: the name
	// must not change from one request to the next. An explicit name that
	// starts with "__Host-" requires SecureAlways, no Domain and Path "/";
	// one that starts with "__Secure-" requires SecureAlways.
	Name string
	// Domain attribute. Default empty: the cookie is sent to this host only.
	// Setting it shares the cookie with every subdomain, and rules out the
	// __Host- prefix.
	Domain string
	// Path attribute. Default "/". It must start with "/": an empty Path
	// would let the browser derive one from each response's URL, and a
	// cookie set under one path cannot be cleared from another.
	Path string
	// HTTPOnly hides the cookie from JavaScript. Default true.
	HTTPOnly bool
	// Secure selects when the cookie carries the Secure attribute. Default
	// SecureAuto.
	Secure SecureMode
	// SameSite attribute. Default http.SameSiteLaxMode. SameSiteNoneMode
	// needs a Secure cookie, so it is refused with SecureNever.
	SameSite http.SameSite
	// Partitioned adds the Partitioned attribute (CHIPS). Browsers accept
	// it only on Secure cookies, so it is refused with SecureNever.
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

// Cookie names that CookieOptions.Name defaults to.
const (
	// DefaultCookieName is the session cookie's name unless the __Host-
	// prefix applies.
	DefaultCookieName = "session"
	// HostCookieName is the session cookie's name when Secure is
	// SecureAlways, Domain is empty and Path is "/".
	HostCookieName = hostPrefix + DefaultCookieName
)

// The cookie name prefixes browsers enforce (RFC 6265bis section 4.1.3).
// Browsers match them case-insensitively, and so does Validate.
const (
	hostPrefix   = "__Host-"
	securePrefix = "__Secure-"
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

	// ErrConfig means Validate found a Manager setting that cannot work.
	ErrConfig = errors.New("filesession: invalid manager configuration")
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

// CookieName returns the name of the session cookie: Cookie.Name if set,
// else HostCookieName when the cookie qualifies for the __Host- prefix
// (Secure is SecureAlways, Domain is empty, Path is "/"), else
// DefaultCookieName. The codec binds this name into every cookie's
// signature.
func (m *Manager) CookieName() string {
	c := &m.Cookie
	switch {
	case c.Name != "":
		return c.Name
	case c.Secure == SecureAlways && c.Domain == "" && c.Path == "/":
		return HostCookieName
	default:
		return DefaultCookieName
	}
}

// Validate reports, as an error matching ErrConfig, a setting that cannot
// work or that browsers would reject: no Store or Codec; a non-positive
// IdleTimeout; a negative Lifetime, TouchInterval or MaxSize; a cookie name
// that is not an HTTP token; a Path that does not start with "/"; an
// invalid Domain; a "__Host-" name with a Domain, a Path other than "/" or
// without SecureAlways; a "__Secure-" name without SecureAlways; and
// Partitioned or SameSite=None with SecureNever. Handler calls it and
// panics on an error, so a misconfigured manager never serves; call it
// yourself to report the error at startup instead.
func (m *Manager) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch {
	case m.Store == nil:
		return bad("no Store")
	case m.Codec == nil:
		return bad("no Codec")
	case m.IdleTimeout <= 0:
		return bad("IdleTimeout %v is not positive", m.IdleTimeout)
	case m.Lifetime < 0:
		return bad("negative Lifetime %v", m.Lifetime)
	case m.TouchInterval < 0:
		return bad("negative TouchInterval %v", m.TouchInterval)
	case m.MaxSize < 0:
		return bad("negative MaxSize %d", m.MaxSize)
	}
	c := &m.Cookie
	name := m.CookieName()
	probe := &http.Cookie{Name: name, Value: "x", Domain: c.Domain, Path: c.Path, Secure: true}
	if err := probe.Valid(); err != nil {
		return bad("cookie %q: %v", name, err)
	}
	if !strings.HasPrefix(c.Path, "/") {
		return bad("cookie Path %q does not start with \"/\"", c.Path)
	}
	switch c.Secure {
	case SecureAuto, SecureAlways, SecureNever:
	default:
		return bad("unknown SecureMode %d", c.Secure)
	}
	switch {
	case hasPrefixFold(name, hostPrefix) && (c.Secure != SecureAlways || c.Domain != "" || c.Path != "/"):
		return bad("cookie %q: the __Host- prefix needs Secure: SecureAlways, no Domain and Path \"/\" (have %v, Domain %q, Path %q)",
			name, c.Secure, c.Domain, c.Path)
	case hasPrefixFold(name, securePrefix) && c.Secure != SecureAlways:
		return bad("cookie %q: the __Secure- prefix needs Secure: SecureAlways (have %v)", name, c.Secure)
	case c.Partitioned && c.Secure == SecureNever:
		return bad("cookie %q: Partitioned cookies must be Secure, and Secure is SecureNever", name)
	case c.SameSite == http.SameSiteNoneMode && c.Secure == SecureNever:
		return bad("cookie %q: SameSite=None cookies must be Secure, and Secure is SecureNever", name)
	}
	return nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// String returns the mode's name as written in this package.
func (s SecureMode) String() string {
	switch s {
	case SecureAuto:
		return "SecureAuto"
	case SecureAlways:
		return "SecureAlways"
	case SecureNever:
		return "SecureNever"
	}
	return "SecureMode(" + strconv.Itoa(int(s)) + ")"
}

// defaultErrorFunc is ErrorFunc's default.
func defaultErrorFunc(w http.ResponseWriter, r *http.Request, err error) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	switch {
	case errors.Is(err, ErrGone):
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte("Your session ended in another request. Please try again.\n"))
		return
	case errors.Is(err, ErrTooLarge):
		// The store's size limit is below what Manager.MaxSize let the
		// handler put: a configuration fault that retrying cannot cure, so
		// not a 503 with Retry-After.
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("Internal Server Error\n"))
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
// that clears the cookie when id is empty. The clearing cookie has the same
// name, Path, Domain, Secure, SameSite and Partitioned as the one that set
// it: a browser only replaces a cookie with the same name, domain and path,
// and refuses a __Host- cookie without Secure and Path=/, so a clear that
// differed in any of them would leave the old cookie in place. Responses
// that set or clear the cookie are marked uncacheable and vary on Cookie, so
// a shared cache never hands one user's cookie to another.
func (m *Manager) setCookie(w http.ResponseWriter, r *http.Request, id string, expires time.Time) {
	name := m.CookieName()
	c := &http.Cookie{
		Name:        name,
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
		c.Value = m.Codec.Encode(name, id)
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
	if !varies(h, "Cookie") {
		h.Add("Vary", "Cookie")
	}
	h.Set("Cache-Control", `no-store`)
}

// varies reports whether h's Vary header already names field (or is "*").
func varies(h http.Header, field string) bool {
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if f == "*" || strings.EqualFold(f, field) {
				return true
			}
		}
	}
	return false
}

// expiresAt returns when a session last used at lastAccess expires, given
// its idle timeout and absolute deadline.
func expiresAt(lastAccess time.Time, idle time.Duration, deadline time.Time) time.Time {
	r := Record{LastAccess: lastAccess, IdleTimeout: idle, Deadline: deadline}
	return r.ExpiresAt()
}
