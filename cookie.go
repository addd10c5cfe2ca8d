package filesession

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// MinSecretLength is the shortest signing secret New and NewSignedCodec
// accept: 32 bytes, the size of the HMAC-SHA256 key.
const MinSecretLength = 32

// ErrWeakSecret is returned at startup for a missing, empty or short secret.
var ErrWeakSecret = errors.New("filesession: signing secret missing or shorter than 32 bytes")

// CookieCodec turns session IDs into cookie values and back. The manager
// calls Decode on every request before any store access, so it must be
// cheap and must reject anything it did not produce itself.
type CookieCodec interface {
	// NewID returns a fresh, unguessable session ID.
	NewID() string
	// ValidID reports whether id has the codec's exact ID format.
	ValidID(id string) bool
	// Encode returns the cookie value that carries id in a cookie named name.
	Encode(name, id string) string
	// Decode returns the ID that value carries in a cookie named name. ok is
	// false for any value Encode did not produce with one of the codec's
	// keys; current is false when the value verified with an older key, so
	// the manager re-issues it signed with the current one.
	Decode(name, value string) (id string, current, ok bool)
}

// SignedCodec is the default CookieCodec: the value is the session ID, a dot,
// and an HMAC-SHA256 tag over the cookie name and the ID (unpadded
// base64url), so a value lifted from another cookie does not verify. IDs are
// IDLength characters of base64url from NewID.
type SignedCodec struct {
	keys [][]byte
}

// sigLength is the length of an unpadded base64url HMAC-SHA256 tag.
const sigLength = 43

// NewSignedCodec returns a codec that signs with secrets[0] and verifies with
// every secret in order, which is how keys are rotated: put the new secret
// first, keep the old one until every cookie has been re-signed (one idle
// timeout), then drop it. Each secret must be at least MinSecretLength bytes.
func NewSignedCodec(secrets ...[]byte) (*SignedCodec, error) {
	if len(secrets) == 0 {
		return nil, ErrWeakSecret
	}
	c := &SignedCodec{}
	for i, s := range secrets {
		if len(s) < MinSecretLength {
			return nil, fmt.Errorf("secret %d has %d bytes: %w", i, len(s), ErrWeakSecret)
		}
		c.keys = append(c.keys, append([]byte(nil), s...))
	}
	return c, nil
}

// NewID returns NewID().
func (c *SignedCodec) NewID() string { return NewID() }

// ValidID reports whether id is IDLength characters of base64url.
func (c *SignedCodec) ValidID(id string) bool { return ValidID(id, IDLength) }

// Encode returns id + "." + tag, signed with the first secret.
func (c *SignedCodec) Encode(name, id string) string {
	return id + "." + string(c.tag(c.keys[0], name, id))
}

// Decode checks the value's exact length and shape first, then compares the
// tag against each key in constant time (hmac.Equal). There is exactly one
// encoding of a valid value, so no normalisation is attempted.
func (c *SignedCodec) Decode(name, value string) (string, bool, bool) {
	if len(value) != IDLength+1+sigLength || value[IDLength] != '.' {
		return "", false, false
	}
	id, sig := value[:IDLength], []byte(value[IDLength+1:])
	if !ValidID(id, IDLength) {
		return "", false, false
	}
	for i, k := range c.keys {
		if hmac.Equal(sig, c.tag(k, name, id)) {
			return id, i == 0, true
		}
	}
	return "", false, false
}

// tag is HMAC-SHA256(key, "filesession/v1" NUL name NUL id) in base64url. The
// name is bound so that a value signed for one cookie is refused in another.
func (c *SignedCodec) tag(key []byte, name, id string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("filesession/v1\x00"))
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(id))
	out := make([]byte, sigLength)
	base64.RawURLEncoding.Encode(out, h.Sum(nil))
	return out
}
