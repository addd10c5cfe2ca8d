// Package csrf protects unsafe requests (POST, PUT, PATCH, DELETE, …) of a
// filesession application with a synchronizer token kept in the session,
// under the seed's key "csrfToken", so tokens survive restarts and deploys
// like the session itself.
//
// Two independent checks must both pass:
//
//  1. Origin: Go's http.CrossOriginProtection refuses browser requests that
//     Sec-Fetch-Site or Origin mark as cross-site, even with a valid token.
//     Origins are compared whole (scheme, host and port), never by prefix;
//     add trusted origins with Protector.AddTrustedOrigin.
//  2. Token: the request carries the token in the X-CSRF-Token header or the
//     _csrf field of a form body (never the query string, which leaks into
//     logs and Referer headers).
//
// Tokens handed to pages are masked afresh on every call to Token (a random
// pad XOR the secret token), so the text differs on every response and a
// compression side channel (BREACH) learns nothing; verification unmasks and
// compares in constant time, and accepts only the exact masked length.
// Session.Renew drops the token, so a token issued before login is dead
// after it.
//
// Every refusal is a 403 with a generic body, and changes nothing.
//
// HTML forms carry the token in a hidden field; with html/template put
// TemplateField's result in the form:
//
//	data.CSRFField = csrf.TemplateField(r)   // <form method="post">{{.CSRFField}}...</form>
//
// JavaScript clients get a token from a route that answers Token(r), such as
// the demo's GET /api/csrf, and send it in the header on every unsafe
// request:
//
//	const {token} = await (await fetch("/api/csrf")).json();
//	await fetch("/api/count", {method: "POST", headers: {"X-CSRF-Token": token}});
//
// Every masking of the session's secret is valid for as long as the
// secret: until Session.Renew (login) or the end of the session. A client
// may keep one token for many requests. A non-empty header is the only
// place looked at; the form body is parsed only when there is none.
package csrf

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"html/template"
	"net/http"

	"github.com/filesession/filesession"
)

// Names of the token's places.
const (
	// SessionKey is the session key holding the secret token (hex), as in
	// the seed's session files.
	SessionKey = filesession.CSRFTokenKey
	// HeaderName is the request header JavaScript clients send the token in.
	HeaderName = "X-CSRF-Token"
	// FieldName is the form field HTML forms send the token in.
	FieldName = "_csrf"
)

// tokenBytes is the size of the secret token; maskedLength the length of a
// masked token as sent to clients (pad and masked token, base64url).
const (
	tokenBytes   = 32
	maskedLength = (2*tokenBytes*8 + 5) / 6
)

// Protector is CSRF middleware. The zero value is not usable; call New.
type Protector struct {
	// Failure answers refused requests. Default: 403 with a generic body.
	Failure http.Handler

	cop *http.CrossOriginProtection
}

// New returns a Protector with no trusted cross origins.
func New() *Protector {
	return &Protector{cop: http.NewCrossOriginProtection()}
}

// AddTrustedOrigin allows unsafe requests from origin (for example
// "https://admin.example.com"), compared exactly. The token is still
// required.
func (p *Protector) AddTrustedOrigin(origin string) error {
	return p.cop.AddTrustedOrigin(origin)
}

// Protect is New().Handler(next).
func Protect(next http.Handler) http.Handler { return New().Handler(next) }

// Handler returns middleware that refuses unsafe requests that fail the
// origin check or carry no valid token. It must run inside
// filesession.Manager.Handler.
func (p *Protector) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
			next.ServeHTTP(w, r)
			return
		}
		if p.cop.Check(r) != nil || !Valid(r) {
			p.fail(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (p *Protector) fail(w http.ResponseWriter, r *http.Request) {
	if p.Failure != nil {
		p.Failure.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusForbidden)
	w.Write([]byte("Forbidden: invalid or missing CSRF token.\n"))
}

// Token returns a freshly masked token for r's session, creating the
// session's secret token on first use (which creates the session). Put it
// in forms (TemplateField) or hand it to JavaScript, which sends it back in
// the X-CSRF-Token header. It fails only if the session refuses the value.
func Token(r *http.Request) (string, error) {
	s := filesession.FromContext(r.Context())
	if s == nil {
		return "", errNoSession
	}
	secret, ok := secretOf(s)
	if !ok {
		secret = make([]byte, tokenBytes)
		rand.Read(secret)
		if err := s.Put(SessionKey, hex.EncodeToString(secret)); err != nil {
			return "", err
		}
	}
	return mask(secret), nil
}

// TemplateField returns a hidden form input carrying a masked token, for
// html/template: {{ .CSRFField }}. It returns "" if no token can be made.
func TemplateField(r *http.Request) template.HTML {
	tok, err := Token(r)
	if err != nil {
		return ""
	}
	return template.HTML(`<input type="hidden" name="` + FieldName + `" value="` + tok + `">`)
}

// Valid reports whether r carries a valid masked token for its session in
// the header or the form body.
func Valid(r *http.Request) bool {
	s := filesession.FromContext(r.Context())
	if s == nil {
		return false
	}
	secret, ok := secretOf(s)
	if !ok {
		return false
	}
	sent := r.Header.Get(HeaderName)
	if sent == "" {
		sent = r.PostFormValue(FieldName)
	}
	got, ok := unmask(sent)
	return ok && subtle.ConstantTimeCompare(got, secret) == 1
}

// secretOf returns the session's secret token, if it has a well-formed one.
func secretOf(s *filesession.Session) ([]byte, bool) {
	h, ok := filesession.Get[string](s, SessionKey)
	if !ok || len(h) != 2*tokenBytes {
		return nil, false
	}
	b, err := hex.DecodeString(h)
	return b, err == nil
}

// mask returns base64url(pad || pad XOR secret) with a fresh random pad.
func mask(secret []byte) string {
	buf := make([]byte, 2*tokenBytes)
	rand.Read(buf[:tokenBytes])
	subtle.XORBytes(buf[tokenBytes:], buf[:tokenBytes], secret)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// unmask reverses mask, accepting only the exact length and alphabet.
func unmask(tok string) ([]byte, bool) {
	if len(tok) != maskedLength {
		return nil, false
	}
	buf, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if err != nil || len(buf) != 2*tokenBytes {
		return nil, false
	}
	out := make([]byte, tokenBytes)
	subtle.XORBytes(out, buf[:tokenBytes], buf[tokenBytes:])
	return out, true
}

type csrfError string

func (e csrfError) Error() string { return string(e) }

// errNoSession means Token was called outside filesession.Manager.Handler.
const errNoSession = csrfError("csrf: request has no session (wrap the handler with Manager.Handler)")
