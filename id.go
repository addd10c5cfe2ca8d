package filesession

import (
	"crypto/rand"
	"encoding/base64"
)

// IDBytes is how many random bytes a session ID carries (256 bits), and
// IDLength the length of its text: unpadded base64url.
const (
	IDBytes  = 32
	IDLength = 43
)

// NewID returns a new session ID: IDBytes from crypto/rand, encoded as
// unpadded base64url (IDLength characters of [A-Za-z0-9_-]).
func NewID() string {
	return NewIDOf(IDBytes)
}

// NewIDOf returns a session ID of n random bytes from crypto/rand, encoded as
// unpadded base64url. The express preset uses n = 24, like express-session.
func NewIDOf(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error and always fills b (Go 1.24+).
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ValidID reports whether id is exactly length characters of the base64url
// alphabet [A-Za-z0-9_-]. Stores call it before an ID reaches any file name
// or key, so "", ".", "..", "../x", "a/b" and over-long IDs never do.
func ValidID(id string, length int) bool {
	if length <= 0 || len(id) != length {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
