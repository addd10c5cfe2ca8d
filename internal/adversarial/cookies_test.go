package adversarial

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/filesession/filesession"
)

// TestCookieHeaderGarbage sends Cookie headers no browser would, next to a
// live session of another user: each is "no session" (401 on /me, 200
// anonymous on /peek), never a 500, and changes nothing on disk.
func TestCookieHeaderGarbage(t *testing.T) {
	e := newEnv(t, setup{})
	victim := e.browser(t)
	victim.login("victim@example.com")
	v, n := victim.value, e.name()
	cases := []struct {
		name  string
		lines []string
	}{
		{"no Cookie header", nil},
		{"empty Cookie header", []string{""}},
		{"only semicolons", []string{";;;"}},
		{"semicolons and spaces around a name", []string{" ; ;" + n + ";; "}},
		{"empty value", []string{n + "="}},
		{"name without equals", []string{n}},
		{"control bytes", []string{n + "=\x01\x02\x1b\x7f"}},
		{"NUL in the value", []string{n + "=" + v[:10] + "\x00" + v[11:]}},
		{"NUL after a valid value", []string{n + "=" + v + "\x00"}},
		{"NUL in the name", []string{n[:2] + "\x00" + n[2:] + "=" + v}},
		{"invalid UTF-8", []string{n + "=\xff\xfe\xfd"}},
		{"invalid UTF-8 after a valid value", []string{n + "=" + v + "\xc3\x28"}},
		{"CR LF injection", []string{n + "=" + v[:20] + "\r\nX-Injected: 1"}},
		{"quoted copy of a valid value", []string{n + `="` + v + `"`}},
		{"spaces inside the value", []string{n + "=  " + v}},
		{"upper-case cookie name", []string{strings.ToUpper(n) + "=" + v}},
		{"4 KiB value", []string{n + "=" + strings.Repeat("A", 4096)}},
		{"4 KiB value starting with a valid one", []string{n + "=" + v + strings.Repeat("A", 4096-len(v))}},
		{"1 MiB value", []string{n + "=" + strings.Repeat("A", 1<<20)}},
		{"1,000 duplicate forged cookies", []string{strings.Repeat(n+"="+v[:len(v)-1]+"x; ", 1000)}},
		{"1,000 cookies of other names", []string{strings.Repeat("other=1; ", 1000)}},
		{"3,001 cookies, a valid one first (net/http drops them all)", []string{n + "=" + v + strings.Repeat("; a=1", 3000)}},
		{"1,000 Cookie header lines of garbage", slicesRepeat(n+"=%%%", 1000)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.noSession(t, func(method, path string) *http.Request {
				return withCookieHeader(request(method, path), c.lines...)
			})
		})
	}
	if rec := victim.get("/me"); rec.Code != 200 || rec.Body.String() != "victim@example.com" {
		t.Fatalf("the victim's session did not survive: %d %q", rec.Code, rec.Body)
	}
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestDuplicateCookies checks that several cookies of the session's name
// resolve the same way every time: the first one (in the client's order)
// whose MAC verifies decides, only the first 16 are looked at, and nothing
// on disk changes.
func TestDuplicateCookies(t *testing.T) {
	e := newEnv(t, setup{})
	alice, bob := e.browser(t), e.browser(t)
	alice.login("alice@example.com")
	bob.login("bob@example.com")
	n, a, b := e.name(), alice.value, bob.value
	forged := a[:len(a)-1] + "x"
	unknown := sign(testKey, n, filesession.NewID())
	cases := []struct {
		name  string
		lines []string
		want  string // the user /peek sees
	}{
		{"1,000 copies of a valid cookie are that session", []string{strings.Repeat(n+"="+a+"; ", 1000)}, "alice@example.com"},
		{"a forged cookie before a valid one: the valid one is used", []string{n + "=" + forged + "; " + n + "=" + a}, "alice@example.com"},
		{"two live sessions: the first one sent wins", []string{n + "=" + b + "; " + n + "=" + a}, "bob@example.com"},
		{"two live sessions, the other order", []string{n + "=" + a + "; " + n + "=" + b}, "alice@example.com"},
		{"the same two on separate header lines", []string{n + "=" + b, n + "=" + a}, "bob@example.com"},
		{"a signed unknown ID first: no session, not a fallback to the next", []string{n + "=" + unknown + "; " + n + "=" + a}, "anonymous"},
		{"a valid cookie after 16 forged ones is not looked at", []string{strings.Repeat(n+"="+forged+"; ", 16) + n + "=" + a}, "anonymous"},
		{"a valid cookie after 15 forged ones is", []string{strings.Repeat(n+"="+forged+"; ", 15) + n + "=" + a}, "alice@example.com"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.snapshot()
			for range 3 { // deterministic: the same answer every time
				rec := e.serve(withCookieHeader(request("GET", "/peek"), c.lines...))
				expect(t, rec, http.StatusOK)
				if rec.Body.String() != c.want {
					t.Fatalf("/peek saw %q, want %q", rec.Body, c.want)
				}
			}
			e.unchanged(t, before)
		})
	}
}

// TestSignatures presents values that are not exactly what the server
// signed, for a live session's ID: each is no session and changes nothing.
func TestSignatures(t *testing.T) {
	e := newEnv(t, setup{})
	victim, other := e.browser(t), e.browser(t)
	victim.login("victim@example.com")
	other.login("other@example.com")
	n, v := e.name(), victim.value
	id, sig := v[:filesession.IDLength], v[filesession.IDLength+1:]
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	// The tag's last character carries 4 bits of the MAC and 2 padding
	// bits; setting a padding bit gives a text that lax base64 decoders
	// read as the same MAC.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	nonCanonical := id + "." + sig[:len(sig)-1] + string(alphabet[last^1])
	cases := []struct{ name, value string }{
		{"bit flip in the ID", flip(v, 5)},
		{"bit flip in the tag", flip(v, len(v)-5)},
		{"separator changed", id + "_" + sig},
		{"truncated by one byte", v[:len(v)-1]},
		{"truncated to the ID and the dot", id + "."},
		{"tag only", sig},
		{"unsigned ID", id},
		{"trailing byte", v + "x"},
		{"trailing second tag", v + "." + sig},
		{"leading byte", "x" + v},
		{"tag of another session", id + "." + other.value[filesession.IDLength+1:]},
		{"tag in upper case", id + "." + strings.ToUpper(sig)},
		{"tag with a padding bit set (non-canonical base64)", nonCanonical},
		{"tag in padded base64", v + "="},
		{"tag in padded standard base64", id + "." + base64.StdEncoding.EncodeToString(mac(testKey, "filesession/v1\x00"+n+"\x00"+id))},
		{"value signed for another cookie name", e.m.Codec.Encode("remember", id)},
		{"value signed for the name with the __Host- prefix", e.m.Codec.Encode("__Host-"+n, id)},
		{"value signed with an empty cookie name", e.m.Codec.Encode("", id)},
		{"value signed with a rotated-out key", sign(oldKey, n, id)},
		{"value signed with a stranger's key", sign(strangerKey, n, id)},
		{"MAC over the ID alone (name not bound)", id + "." + base64.RawURLEncoding.EncodeToString(mac(testKey, id))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.value == v {
				t.Fatal("the case's value is the valid one")
			}
			e.noSession(t, func(method, path string) *http.Request {
				req := request(method, path)
				req.AddCookie(&http.Cookie{Name: n, Value: c.value})
				return req
			})
		})
	}
	if rec := victim.get("/me"); rec.Code != 200 {
		t.Fatalf("victim's session did not survive: %d", rec.Code)
	}
}

// TestSignerMatchesCodec pins the suite's signer, which the ID cases rely
// on, to the codec's format: it signs real IDs exactly as SignedCodec does.
func TestSignerMatchesCodec(t *testing.T) {
	c, err := filesession.NewSignedCodec(testKey)
	if err != nil {
		t.Fatal(err)
	}
	id := filesession.NewID()
	if got, want := sign(testKey, "session", id), c.Encode("session", id); got != want {
		t.Fatalf("suite signs %q, codec %q", got, want)
	}
}

// TestKeyRotation restarts the application with a new key ring over the
// same directory: during rotation an old-key cookie is accepted and
// re-signed without any write; once the old key is dropped, its cookies are
// no session and the re-signed ones keep working.
func TestKeyRotation(t *testing.T) {
	e := newEnv(t, setup{manager: func(m *filesession.Manager) {
		m.Codec, _ = filesession.NewSignedCodec(oldKey)
	}})
	victim := e.browser(t)
	victim.login("victim@example.com")
	oldValue := victim.value
	restart := func(keys ...[]byte) {
		c, err := filesession.NewSignedCodec(keys...)
		if err != nil {
			t.Fatal(err)
		}
		// A new manager over the same store, as after a deploy; the old one
		// stops serving.
		m := *e.m
		m.Codec = c
		e.m = &m
		e.h = m.Handler(e.protector.Handler(e.app()))
	}

	t.Run("during rotation an old-key cookie is accepted and re-signed, writing nothing", func(t *testing.T) {
		restart(testKey, oldKey)
		before := e.snapshot()
		rec := victim.get("/me")
		expect(t, rec, http.StatusOK)
		if want := sign(testKey, e.name(), victim.id()); victim.value != want {
			t.Fatalf("cookie not re-signed with the new key: %q, want %q", victim.value, want)
		}
		e.unchanged(t, before)
	})
	t.Run("during rotation the re-signed cookie works", func(t *testing.T) {
		before := e.snapshot()
		rec := victim.get("/me")
		expect(t, rec, http.StatusOK)
		if rec.Header().Get("Set-Cookie") != "" {
			t.Fatal("a current-key cookie was re-sent")
		}
		e.unchanged(t, before)
	})
	t.Run("after rotation a rotated-out key's cookie is no session", func(t *testing.T) {
		restart(testKey)
		e.noSession(t, func(method, path string) *http.Request {
			req := request(method, path)
			req.AddCookie(&http.Cookie{Name: e.name(), Value: oldValue})
			return req
		})
	})
	t.Run("after rotation the re-signed cookie keeps the session", func(t *testing.T) {
		before := e.snapshot()
		expect(t, victim.get("/me"), http.StatusOK)
		e.unchanged(t, before)
	})
	t.Run("an empty or short key is refused at startup", func(t *testing.T) {
		for _, k := range [][]byte{nil, {}, []byte("short"), testKey[:31]} {
			if _, err := filesession.New(e.store, k); !errors.Is(err, filesession.ErrWeakSecret) {
				t.Errorf("New with a %d-byte key: %v, want ErrWeakSecret", len(k), err)
			}
			if _, err := filesession.New(e.store, testKey, k); !errors.Is(err, filesession.ErrWeakSecret) {
				t.Errorf("New with a %d-byte old key: %v, want ErrWeakSecret", len(k), err)
			}
		}
	})
}
