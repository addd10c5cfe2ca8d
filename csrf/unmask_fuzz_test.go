package csrf

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzUnmask checks the token decoder on its own: no input makes it panic;
// whatever it accepts is exactly maskedLength characters of strict unpadded
// base64url, so each (pad, masked) pair has one text only; and what it
// returns is the pad XOR the masked half, tokenBytes long, so masking the
// result again with the same pad gives back the very input.
func FuzzUnmask(f *testing.F) {
	secret := bytes.Repeat([]byte{0xa5}, tokenBytes)
	good := mask(secret)
	for _, s := range []string{
		"", good, good[:maskedLength-1], good + "A", strings.Repeat("A", maskedLength),
		strings.Repeat("_", maskedLength), strings.Repeat("+", maskedLength), strings.Repeat("/", maskedLength),
		good[:maskedLength-1] + "B", // the same bytes with a padding bit set: not canonical
		good + "==", strings.Repeat("%", maskedLength), strings.Repeat("a", 2*2*tokenBytes),
		base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 2*tokenBytes)),
		string(make([]byte, maskedLength)),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		got, ok := unmask(tok)
		if !ok {
			if got != nil {
				t.Fatalf("unmask(%q) refused the token but returned %x", tok, got)
			}
			return
		}
		if len(tok) != maskedLength || len(got) != tokenBytes {
			t.Fatalf("unmask(%q): accepted %d characters, returned %d bytes", tok, len(tok), len(got))
		}
		buf, err := base64.RawURLEncoding.Strict().DecodeString(tok)
		if err != nil {
			t.Fatalf("unmask accepted %q, which is not strict base64url: %v", tok, err)
		}
		if again := base64.RawURLEncoding.EncodeToString(buf); again != tok {
			t.Fatalf("unmask accepted %q, a second text for the token %q", tok, again)
		}
		want := make([]byte, tokenBytes)
		subtle.XORBytes(want, buf[:tokenBytes], buf[tokenBytes:])
		if !bytes.Equal(got, want) {
			t.Fatalf("unmask(%q) = %x, want pad XOR masked = %x", tok, got, want)
		}
		re := make([]byte, 2*tokenBytes)
		copy(re, buf[:tokenBytes])
		subtle.XORBytes(re[tokenBytes:], buf[:tokenBytes], got)
		if base64.RawURLEncoding.EncodeToString(re) != tok {
			t.Fatalf("masking unmask(%q) with its own pad does not give the token back", tok)
		}
	})
}

// FuzzMaskRoundTrip checks that every masked token unmasks to its secret,
// and that changing any one character of it (other than to a text unmask
// refuses) never still yields the secret: there is no malleability that
// keeps a token valid.
func FuzzMaskRoundTrip(f *testing.F) {
	f.Add(bytes.Repeat([]byte{0}, tokenBytes), byte(1))
	f.Add(bytes.Repeat([]byte{0xff}, tokenBytes), byte('A'))
	f.Add([]byte("a secret shorter than 32 bytes"), byte('_'))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	f.Fuzz(func(t *testing.T, seed []byte, sub byte) {
		secret := make([]byte, tokenBytes)
		copy(secret, seed)
		tok := mask(secret)
		got, ok := unmask(tok)
		if !ok || !bytes.Equal(got, secret) {
			t.Fatalf("mask(%x) = %q unmasks to %x, %v", secret, tok, got, ok)
		}
		c := alphabet[int(sub)%len(alphabet)]
		for i := 0; i < len(tok); i++ {
			if tok[i] == c {
				continue
			}
			mut := tok[:i] + string(c) + tok[i+1:]
			if got, ok := unmask(mut); ok && subtle.ConstantTimeCompare(got, secret) == 1 {
				t.Fatalf("changing character %d of %q to %q still gives the secret", i, tok, c)
			}
		}
	})
}
