package filesession_test

import (
	"strings"
	"testing"

	"github.com/filesession/filesession"
)

// FuzzSignedCodecDecode checks that no cookie value makes Decode panic, that
// only values Encode produced verify, and that whatever verifies is a valid
// ID (so it is safe to hand to a store).
func FuzzSignedCodecDecode(f *testing.F) {
	c, err := filesession.NewSignedCodec(testSecret)
	if err != nil {
		f.Fatal(err)
	}
	good := c.Encode("session", filesession.NewID())
	for _, s := range []string{"", ".", good, good + "x", good[:len(good)-1], strings.Repeat(".", 87),
		"../../../../etc/passwd." + good[44:], good[:43], "%2e%2e%2f" + good[9:]} {
		f.Add("session", s)
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		id, _, ok := c.Decode(name, value)
		if !ok {
			return
		}
		if !filesession.ValidID(id, filesession.IDLength) {
			t.Fatalf("Decode(%q) verified an invalid ID %q", value, id)
		}
		if c.Encode(name, id) != value {
			t.Fatalf("Decode accepted %q, which is not the one canonical encoding", value)
		}
	})
}

// FuzzValidID checks ValidID against its definition: exact length, base64url
// alphabet only; in particular nothing that could name another path.
func FuzzValidID(f *testing.F) {
	for _, s := range []string{"", ".", "..", "../x", "a/b", "%2e%2e%2f", filesession.NewID(), strings.Repeat("a", 44)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if !filesession.ValidID(id, filesession.IDLength) {
			return
		}
		if len(id) != filesession.IDLength || strings.ContainsAny(id, "./\\\x00%") {
			t.Fatalf("ValidID accepted %q", id)
		}
		for _, r := range id {
			if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", r) {
				t.Fatalf("ValidID accepted %q (rune %q)", id, r)
			}
		}
	})
}
