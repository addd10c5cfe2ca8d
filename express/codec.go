// Package express makes a filesession manager a drop-in partner of an
// Express application that uses express-session (1.19) with
// session-file-store (1.5): it accepts and issues express-session's signed
// connect.sid cookies and its 24-byte session IDs. Pair it with
// filestore.ExpressOptions, which reads and writes session-file-store's
// directory layout and file format, so both stacks share one ./sessions
// directory and one cookie while routes move from Node to Go:
//
//	store, err := filestore.Open(filestore.ExpressOptions("./sessions"))
//	if err != nil { ... }
//	m, err := express.New(store, os.Getenv("SESSION_SECRET")) // the Express app's secret
//	if err != nil { ... }
//	m.IdleTimeout = 24 * time.Hour // the Express app's cookie.maxAge
//	http.ListenAndServe(addr, m.Handler(mux))
//
// Session values are shared by key: what Node stores as req.session.user is
// the Go session's "user", as JSON. Node's keys "cookie" and those starting
// with "__" (__lastAccess) belong to the stored format and are not values
// on the Go side; they are kept as they are when Go rewrites the file.
// the README's Express section lists what round-trips between the stacks and what does
// not (integers beyond 2^53, number formatting, U+2028 escaping, Dates).
package express

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/filesession/filesession"
)

// CookieName is express-session's default cookie name.
const CookieName = "connect.sid"

// IDBytes and IDLength describe express-session's default IDs (uid-safe):
// 24 random bytes as unpadded base64url, 32 characters.
const (
	IDBytes  = 24
	IDLength = 32
)

// ErrSecret is returned for a missing or unusable secret list.
var ErrSecret = errors.New("express: signing secret missing or shorter than 32 bytes")

// Codec signs cookie values the way express-session does (cookie-signature):
// "s:" + sid + "." + base64(HMAC-SHA256(secret, sid)) without "=" padding,
// URI-encoded as a whole. The first secret signs; every secret is tried to
// verify, in order, so secrets rotate as they do in express-session
// (secret: [new, old]).
type Codec struct {
	secrets [][]byte
}

// NewCodec returns a Codec over secrets, which must be the same list, in the
// same order, as the Express app's secret option. The first (signing)
// secret must have at least filesession.MinSecretLength (32) bytes; older
// ones, kept only to verify cookies until they are re-signed, must not be
// empty but may be shorter. An Express app whose secret is short (the
// README's "keyboard cat") first moves to secret: [strong, old] on the Node
// side, and passes the same list here; once every cookie has been re-signed
// (one cookie.maxAge), both drop the old one.
func NewCodec(secrets ...string) (*Codec, error) {
	if len(secrets) == 0 || len(secrets[0]) < filesession.MinSecretLength {
		return nil, ErrSecret
	}
	c := &Codec{}
	for i, s := range secrets {
		if s == "" {
			return nil, fmt.Errorf("secret %d is empty: %w", i, ErrSecret)
		}
		c.secrets = append(c.secrets, []byte(s))
	}
	return c, nil
}

// NewID returns a new express-style session ID.
func (c *Codec) NewID() string { return filesession.NewIDOf(IDBytes) }

// ValidID reports whether id is IDLength characters of base64url. Node does
// not check its IDs before building paths from them; we do.
func (c *Codec) ValidID(id string) bool { return filesession.ValidID(id, IDLength) }

// Encode returns the URI-encoded signed value. The cookie name is not part
// of express-session's signature, so it is not bound here.
func (c *Codec) Encode(name, id string) string {
	return encodeURIComponent("s:" + id + "." + sign(c.secrets[0], id))
}

// Decode accepts what express-session accepts from a signed cookie: the
// value URI-decoded if it contains "%", the "s:" prefix, the signature after
// the last ".", verified against each secret in constant time. Unsigned
// values are refused, as express-session ignores them.
func (c *Codec) Decode(name, value string) (string, bool, bool) {
	if strings.Contains(value, "%") {
		v, err := url.PathUnescape(value)
		if err != nil {
			return "", false, false
		}
		value = v
	}
	if !strings.HasPrefix(value, "s:") {
		return "", false, false
	}
	value = value[2:]
	dot := strings.LastIndexByte(value, '.')
	if dot < 0 {
		return "", false, false
	}
	id, sig := value[:dot], value[dot+1:]
	if !c.ValidID(id) || len(sig) != sigLength {
		return "", false, false
	}
	for i, s := range c.secrets {
		if hmac.Equal([]byte(sig), []byte(sign(s, id))) {
			return id, i == 0, true
		}
	}
	return "", false, false
}

// sigLength is the length of an unpadded standard-base64 SHA-256 tag.
const sigLength = 43

func sign(secret []byte, id string) string {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(id))
	return base64.RawStdEncoding.EncodeToString(h.Sum(nil))
}

// encodeURIComponent escapes s as JavaScript's encodeURIComponent does,
// which is what express-session's cookie serializer applies: everything but
// A-Z a-z 0-9 - _ . ! ~ * ' ( ) is percent-encoded (url.QueryEscape differs:
// it writes spaces as "+" and escapes "!*'()~").
func encodeURIComponent(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || strings.IndexByte("-_.!~*'()", ch) >= 0 {
			b.WriteByte(ch)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[ch>>4])
		b.WriteByte(hex[ch&15])
	}
	return b.String()
}

// Configure makes m speak express-session: the connect.sid cookie name and
// this package's Codec over secrets (see NewCodec). m's Store must accept
// express-session's 32-character IDs (filestore.ExpressOptions does); a
// store configured for filesession's own 43-character IDs refuses every
// session this codec makes. On error m is unchanged.
func Configure(m *filesession.Manager, secrets ...string) error {
	c, err := NewCodec(secrets...)
	if err != nil {
		return err
	}
	m.Codec = c
	m.Cookie.Name = CookieName
	return nil
}

// New returns a Manager over store that speaks express-session, as
// filesession.New followed by Configure: cookies named connect.sid, signed
// and verified with secrets as the Express app's secret option lists them,
// and express-session's IDs. Its IdleTimeout is the store's TTL (an hour
// under filestore.ExpressOptions, session-file-store's ttl); set it to the
// Express app's cookie.maxAge, which is what express-session stores as
// originalMaxAge and what both stacks then expire sessions by.
func New(store filesession.Store, secrets ...string) (*filesession.Manager, error) {
	c, err := NewCodec(secrets...)
	if err != nil {
		return nil, err
	}
	m, err := filesession.New(store, []byte(secrets[0]))
	if err != nil {
		return nil, err
	}
	m.Codec = c
	m.Cookie.Name = CookieName
	return m, nil
}
