package expresstest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// Browser is one user agent: an HTTP client with one cookie jar, used
// against both servers. Both listen on 127.0.0.1 (on different ports), and
// cookies ignore ports, so the jar sends the one connect.sid cookie to
// whichever server a request goes to, exactly as a browser does when a
// proxy splits one site's routes between Node and Go.
type Browser struct {
	t      testing.TB
	client *http.Client
}

// NewBrowser returns a Browser with an empty jar. It does not follow
// redirects, so tests see the 303 of a login or logout.
func NewBrowser(t testing.TB) *Browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Browser{t: t, client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Response is an answer read in full: express-session writes the last byte
// of a response only after its store write completed, so reading all of it
// is what makes the next request see the session as Node left it.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test if it does not decode.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("response %d %q: %v", r.Status, r.Body, err)
	}
}

// Do sends a request with body (nil for none) of content type ctype.
func (b *Browser) Do(method, rawURL, ctype string, body io.Reader, header http.Header) *Response {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), method, rawURL, body)
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("%s %s: reading the body: %v", method, rawURL, err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// Get sends a GET.
func (b *Browser) Get(rawURL string) *Response {
	b.t.Helper()
	return b.Do(http.MethodGet, rawURL, "", nil, nil)
}

// CSRF returns a CSRF token from base's GET /api/csrf.
func (b *Browser) CSRF(base string) string {
	b.t.Helper()
	r := b.Get(base + "/api/csrf")
	var out struct{ Token string }
	r.JSON(b.t, &out)
	if r.Status != http.StatusOK || out.Token == "" {
		b.t.Fatalf("GET %s/api/csrf: %d %s", base, r.Status, r.Body)
	}
	return out.Token
}

// PostForm sends a form to base+path with a fresh CSRF token of base.
func (b *Browser) PostForm(base, path string, form url.Values) *Response {
	b.t.Helper()
	tok := b.CSRF(base)
	return b.Do(http.MethodPost, base+path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()),
		http.Header{"X-Csrf-Token": {tok}})
}

// PostJSON sends v as JSON to base+path with a fresh CSRF token of base;
// nil sends {}.
func (b *Browser) PostJSON(base, path string, v any) *Response {
	b.t.Helper()
	tok := b.CSRF(base)
	if v == nil {
		v = struct{}{} // express.json() refuses a bare null
	}
	data, err := json.Marshal(v)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.Do(http.MethodPost, base+path, "application/json", strings.NewReader(string(data)),
		http.Header{"X-Csrf-Token": {tok}})
}

// Cookie returns the value of the cookie named name that the jar would send
// to rawURL, or "".
func (b *Browser) Cookie(rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}
