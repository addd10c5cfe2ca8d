package csrf_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/csrf"
	"github.com/filesession/filesession/memstore"
)

var secret = []byte("csrf-test-secret-csrf-test-secret-0123")

type env struct {
	t   *testing.T
	srv *httptest.Server
	c   *http.Client
}

// newEnv serves GET /token (a masked token as JSON), POST /do (protected),
// POST /login (renews) behind the manager and csrf.Protect.
func newEnv(t *testing.T) *env {
	m, err := filesession.New(memstore.New(), secret)
	if err != nil {
		t.Fatal(err)
	}
	m.Logger = slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /token", func(w http.ResponseWriter, r *http.Request) {
		tok, err := csrf.Token(r)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"token": tok})
	})
	mux.HandleFunc("GET /form", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, csrf.TemplateField(r))
	})
	mux.HandleFunc("POST /do", func(w http.ResponseWriter, r *http.Request) {
		filesession.FromContext(r.Context()).Put("did", true)
		fmt.Fprint(w, "done")
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		filesession.FromContext(r.Context()).Renew()
	})
	srv := httptest.NewServer(m.Handler(csrf.Protect(mux)))
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return &env{t: t, srv: srv, c: &http.Client{Jar: jar}}
}

func (e *env) token() string {
	e.t.Helper()
	resp, err := e.c.Get(e.srv.URL + "/token")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		e.t.Fatal(err)
	}
	return v.Token
}

// post sends POST /do (or path) with optional form body and header pairs.
func (e *env) post(path, form string, hdr ...string) int {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(form))
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestTokenAcceptedFromHeaderAndForm(t *testing.T) {
	e := newEnv(t)
	tok := e.token()
	if code := e.post("/do", "", csrf.HeaderName, tok); code != 200 {
		t.Fatalf("header token: %d", code)
	}
	if code := e.post("/do", csrf.FieldName+"="+url.QueryEscape(e.token())); code != 200 {
		t.Fatalf("form token: %d", code)
	}
}

func TestTokensAreMaskedPerResponse(t *testing.T) {
	e := newEnv(t)
	a, b := e.token(), e.token()
	if a == b {
		t.Fatal("two renders gave the same token text")
	}
	// Both unmask to the same secret, so both work.
	if e.post("/do", "", csrf.HeaderName, a) != 200 || e.post("/do", "", csrf.HeaderName, b) != 200 {
		t.Fatal("a masked token was refused")
	}
}

func TestRefusals(t *testing.T) {
	e := newEnv(t)
	tok := e.token()
	other := newEnv(t)
	otherTok := other.token()
	raw := func() string {
		// The secret as stored in the session, unmasked: must not be accepted.
		return strings.Repeat("ab", 32)
	}()
	cases := []struct {
		name string
		path string
		form string
		hdr  []string
	}{
		{"missing", "/do", "", nil},
		{"wrong session's token", "/do", "", []string{csrf.HeaderName, otherTok}},
		{"unmasked raw token", "/do", "", []string{csrf.HeaderName, raw}},
		{"too short", "/do", "", []string{csrf.HeaderName, tok[:len(tok)-1]}},
		{"too long", "/do", "", []string{csrf.HeaderName, tok + "A"}},
		{"query string only", "/do?_csrf=" + url.QueryEscape(tok), "", nil},
		{"cross-site with valid token", "/do", "", []string{csrf.HeaderName, tok, "Sec-Fetch-Site", "cross-site"}},
		{"Origin null with valid token", "/do", "", []string{csrf.HeaderName, tok, "Origin", "null"}},
		{"look-alike origin", "/do", "", []string{csrf.HeaderName, tok, "Origin", e.srv.URL + ".evil.example"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if code := e.post(c.path, c.form, c.hdr...); code != 403 {
				t.Fatalf("got %d, want 403", code)
			}
		})
	}
	if code := e.post("/do", "", csrf.HeaderName, tok, "Sec-Fetch-Site", "same-origin"); code != 200 {
		t.Fatalf("same-origin request with the token refused: %d", code)
	}
}

func TestPreLoginTokenDeadAfterRenew(t *testing.T) {
	e := newEnv(t)
	pre := e.token()
	if code := e.post("/login", "", csrf.HeaderName, pre); code != 200 {
		t.Fatalf("login: %d", code)
	}
	if code := e.post("/do", "", csrf.HeaderName, pre); code != 403 {
		t.Fatalf("pre-login token after login: %d, want 403", code)
	}
	if code := e.post("/do", "", csrf.HeaderName, e.token()); code != 200 {
		t.Fatalf("new token after login: %d", code)
	}
}

func TestTemplateField(t *testing.T) {
	e := newEnv(t)
	resp, err := e.c.Get(e.srv.URL + "/form")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(b), `<input type="hidden" name="_csrf" value="`) {
		t.Fatalf("field %q", b)
	}
}

// FuzzTokenHeader sends fuzzed X-CSRF-Token headers, and the same text as
// the _csrf form field, with the cookie of a real session that holds a
// secret. The request must pass exactly when an independent decoder finds
// the text to be a masking of that secret (strict base64url, pad XOR masked
// = secret), and a refused one must change nothing in the store.
func FuzzTokenHeader(f *testing.F) {
	store := memstore.New()
	m, err := filesession.New(store, secret)
	if err != nil {
		f.Fatal(err)
	}
	m.Logger = slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /token", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := csrf.Token(r)
		fmt.Fprint(w, tok)
	})
	mux.HandleFunc("POST /do", func(w http.ResponseWriter, r *http.Request) {
		s := filesession.FromContext(r.Context())
		n, _ := filesession.Get[int](s, "n")
		s.Put("n", n+1)
	})
	h := m.Handler(csrf.Protect(mux))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/token", nil))
	cookie := rec.Result().Cookies()[0]
	good := rec.Body.String()
	var id, hexSecret string
	store.List(context.Background(), func(i string, r filesession.Record) error {
		id = i
		return json.Unmarshal(r.Values[csrf.SessionKey], &hexSecret)
	})
	want, err := hex.DecodeString(hexSecret)
	if err != nil || len(want) != 32 {
		f.Fatalf("session's secret %q", hexSecret)
	}
	valid := func(tok string) bool {
		b, err := base64.RawURLEncoding.Strict().DecodeString(tok)
		if err != nil || len(b) != 64 {
			return false
		}
		for i := range 32 {
			if b[i]^b[32+i] != want[i] {
				return false
			}
		}
		return true
	}
	snapshot := func() string {
		r, err := store.Load(context.Background(), id)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := json.Marshal(r)
		return string(b)
	}
	for _, s := range []string{"", good, good[:len(good)-1], good + "A", good[:len(good)-1] + "B",
		strings.Repeat("A", 86), strings.Repeat("_", 86), "%%%", hexSecret, strings.ToUpper(good)} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, tok string, asForm bool) {
		var req *http.Request
		if asForm {
			req = httptest.NewRequest("POST", "/do", strings.NewReader(url.Values{csrf.FieldName: {tok}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req = httptest.NewRequest("POST", "/do", nil)
			req.Header[http.CanonicalHeaderKey(csrf.HeaderName)] = []string{tok}
		}
		req.AddCookie(cookie)
		before := snapshot()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		// An empty header is no header, and an empty form field no field.
		switch ok := valid(tok); {
		case ok && rec.Code != 200:
			t.Fatalf("valid token %q refused: %d", tok, rec.Code)
		case !ok && rec.Code != 403:
			t.Fatalf("invalid token %q: %d, want 403", tok, rec.Code)
		case !ok && snapshot() != before:
			t.Fatalf("refused token %q changed the session", tok)
		}
	})
}
