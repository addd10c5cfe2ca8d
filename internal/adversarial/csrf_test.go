package adversarial

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/filesession/filesession/csrf"
)

// TestCSRF sends unsafe requests of a logged-in victim's browser (its own
// cookie) with a missing, wrong or misplaced token, or from another origin
// with a valid one: each is 403, the counter it would have bumped is not,
// and nothing on disk changes.
func TestCSRF(t *testing.T) {
	e := newEnv(t, setup{csrf: func(p *csrf.Protector) {
		if err := p.AddTrustedOrigin("https://admin.example"); err != nil {
			t.Fatal(err)
		}
	}})
	attacker := e.browser(t)
	attacker.login("attacker@example.com")

	victim := e.browser(t)
	victim.fetchToken()
	preLogin := victim.token
	victim.login("victim@example.com")
	tok := victim.token
	var secretHex string
	if err := json.Unmarshal(e.record(victim.id())[csrf.SessionKey], &secretHex); err != nil {
		t.Fatal(err)
	}
	secret, _ := hex.DecodeString(secretHex)
	// A masking the server never handed out: pad 0xfb.. makes its text
	// full of '-' and '_', the characters standard base64 spells '+', '/'.
	pad := bytes.Repeat([]byte{0xfb}, 32)
	buf := append(append([]byte{}, pad...), make([]byte, 32)...)
	subtle.XORBytes(buf[32:], pad, secret)
	ownMask := base64.RawURLEncoding.EncodeToString(buf)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	nonCanonical := tok[:len(tok)-1] + string(alphabet[strings.IndexByte(alphabet, tok[len(tok)-1])^1])

	formBody := func(vals url.Values) reqOpt { return form(vals) }
	cases := []struct {
		name string
		path string
		opts []reqOpt
	}{
		{"token missing", "/count", []reqOpt{token("")}},
		{"token header empty", "/count", []reqOpt{func(r *http.Request) { r.Header["X-Csrf-Token"] = []string{""} }}},
		{"another session's valid token", "/count", []reqOpt{token(attacker.token)}},
		{"the victim's pre-login token", "/count", []reqOpt{token(preLogin)}},
		{"the unmasked secret as stored (hex)", "/count", []reqOpt{token(secretHex)}},
		{"the unmasked secret in base64url", "/count", []reqOpt{token(base64.RawURLEncoding.EncodeToString(secret))}},
		{"one character short", "/count", []reqOpt{token(tok[:len(tok)-1])}},
		{"one character long", "/count", []reqOpt{token(tok + "A")}},
		{"padded base64", "/count", []reqOpt{token(tok + "==")}},
		{"non-canonical base64 (padding bit set)", "/count", []reqOpt{token(nonCanonical)}},
		{"standard base64 alphabet", "/count", []reqOpt{token(strings.NewReplacer("-", "+", "_", "/").Replace(ownMask))}},
		{"two tokens in one header", "/count", []reqOpt{token(tok + "," + tok)}},
		{"in the query string only", "/count?_csrf=" + url.QueryEscape(tok), []reqOpt{token("")}},
		{"in the query string, with a form body without it", "/count?_csrf=" + url.QueryEscape(tok), []reqOpt{token(""), formBody(url.Values{"x": {"1"}})}},
		{"in a JSON body", "/count", []reqOpt{token(""), func(r *http.Request) {
			body := `{"_csrf":"` + tok + `"}`
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
			r.Header.Set("Content-Type", "application/json")
		}}},
		{"in the form, but a wrong header wins", "/count", []reqOpt{token(attacker.token), formBody(url.Values{csrf.FieldName: {tok}})}},
		{"in a cookie", "/count", []reqOpt{token(""), func(r *http.Request) { r.AddCookie(&http.Cookie{Name: csrf.FieldName, Value: tok}) }}},
		{"valid token, Sec-Fetch-Site: cross-site", "/count", []reqOpt{header("Sec-Fetch-Site", "cross-site")}},
		{"valid token, Sec-Fetch-Site: same-site (a sibling subdomain)", "/count", []reqOpt{header("Sec-Fetch-Site", "same-site")}},
		{"valid token, Origin: null, no Sec-Fetch-Site", "/count", []reqOpt{header("Sec-Fetch-Site", ""), header("Origin", "null")}},
		{"valid token, look-alike origin (suffix)", "/count", []reqOpt{header("Sec-Fetch-Site", ""), header("Origin", origin+".evil.example")}},
		{"valid token, look-alike origin (prefix)", "/count", []reqOpt{header("Sec-Fetch-Site", ""), header("Origin", "http://evil-"+host)}},
		{"valid token, same host on another port", "/count", []reqOpt{header("Sec-Fetch-Site", ""), header("Origin", origin+":8443")}},
		{"valid token, trusted origin's look-alike", "/count", []reqOpt{header("Sec-Fetch-Site", "cross-site"), header("Origin", "https://admin.example.evil.example")}},
		{"trusted origin but no token", "/count", []reqOpt{token(""), header("Sec-Fetch-Site", "cross-site"), header("Origin", "https://admin.example")}},
		{"logout from another site", "/logout", []reqOpt{header("Sec-Fetch-Site", "cross-site")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.snapshot()
			rec := victim.post(c.path, c.opts...)
			expect(t, rec, http.StatusForbidden)
			if body := rec.Body.String(); body != "Forbidden: invalid or missing CSRF token.\n" {
				t.Fatalf("body %q is not the generic one", body)
			}
			noNewCookie(t, e, rec)
			e.unchanged(t, before)
		})
	}
	for _, m := range []string{"PUT", "PATCH", "DELETE"} {
		t.Run(m+" without a token", func(t *testing.T) {
			before := e.snapshot()
			expect(t, victim.do(m, "/count"), http.StatusForbidden)
			e.unchanged(t, before)
		})
	}

	// Controls: the same requests done right pass, so the refusals above
	// are the checks at work and not a broken route.
	controls := []struct {
		name string
		opts []reqOpt
	}{
		{"control: valid token, same-origin", nil},
		{"control: valid token, no Sec-Fetch-Site or Origin (not a browser)", []reqOpt{header("Sec-Fetch-Site", "")}},
		{"control: valid token, Origin matching Host", []reqOpt{header("Sec-Fetch-Site", ""), header("Origin", origin)}},
		{"control: valid token in the form field", []reqOpt{token(""), formBody(url.Values{csrf.FieldName: {tok}})}},
		{"control: a masking the server never issued is as good", []reqOpt{token(ownMask)}},
		{"control: trusted cross origin with a valid token", []reqOpt{header("Sec-Fetch-Site", "cross-site"), header("Origin", "https://admin.example")}},
	}
	for i, c := range controls {
		t.Run(c.name, func(t *testing.T) {
			rec := victim.post("/count", c.opts...)
			expect(t, rec, http.StatusOK)
			if got, want := rec.Body.String(), string(rune('1'+i)); got != want {
				t.Fatalf("count %q, want %q", got, want)
			}
		})
	}
	if !strings.ContainsAny(ownMask, "-_") {
		t.Fatal("the standard-alphabet case tested nothing")
	}
}
