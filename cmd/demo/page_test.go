package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var csrfFieldRE = regexp.MustCompile(`<input type="hidden" name="_csrf" value="([A-Za-z0-9_-]+)">`)

// formToken returns the _csrf value of the first form in page.
func formToken(t *testing.T, page string) string {
	t.Helper()
	m := csrfFieldRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("page has no _csrf field:\n%s", page)
	}
	return m[1]
}

func TestPageLoggedOutShowsLoginForm(t *testing.T) {
	srv := demoServer(t, t.TempDir())
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/html; charset=utf-8" {
		t.Fatalf("GET / = %d %q, want 200 text/html", resp.StatusCode, ct)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy %q, want script-src 'self'", csp)
	}

	b := newBrowser(t, srv.URL)
	code, page := b.get("/")
	if code != http.StatusOK {
		t.Fatalf("GET / = %d", code)
	}
	for _, want := range []string{`<form method="post" action="/login"`, `name="email"`, `name="password"`} {
		if !strings.Contains(page, want) {
			t.Errorf("logged-out page lacks %s:\n%s", want, page)
		}
	}
	if strings.Contains(page, `action="/logout"`) {
		t.Errorf("logged-out page has a logout form")
	}

	// The page's own token logs in, as a browser submitting the form would.
	code, body := b.do(http.MethodPost, "/login", url.Values{"email": {"gina@example.com"}, "password": {"pw"}, "_csrf": {formToken(t, page)}}, nil)
	if code != http.StatusSeeOther {
		t.Fatalf("POST /login with the page's token = %d %q, want 303", code, body)
	}
}

func TestPageLoggedInShowsUserExpiryAndCounter(t *testing.T) {
	// A stopped clock makes the expiry exact: last use + the idle timeout.
	now := time.Now().Truncate(time.Second)
	srv := demoServerWith(t, config{Dir: t.TempDir(), TTL: 90 * time.Minute, Now: func() time.Time { return now }})
	b := newBrowser(t, srv.URL)
	b.login("hank@example.com")
	b.count(b.token())
	b.count(b.token())

	code, page := b.get("/")
	if code != http.StatusOK {
		t.Fatalf("GET / = %d", code)
	}
	for _, want := range []string{
		"hank@example.com",
		userID("hank@example.com"),
		`<form method="post" action="/api/count" id="counter">`,
		`<output id="count">2</output>`,
		`<form method="post" action="/logout">`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("logged-in page lacks %s:\n%s", want, page)
		}
	}
	m := regexp.MustCompile(`<time datetime="([^"]+)">`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("logged-in page shows no expiry <time>:\n%s", page)
	}
	exp, err := time.Parse(time.RFC3339, m[1])
	if err != nil {
		t.Fatalf("expiry %q: %v", m[1], err)
	}
	if want := now.Add(90 * time.Minute); !exp.Equal(want) {
		t.Errorf("page shows expiry %v, want %v (last use + the 90m idle timeout)", exp, want)
	}

	// The counter form's token works with the header, as app.js sends it.
	if got := b.count(formToken(t, page[strings.Index(page, `id="counter"`):])); got != 3 {
		t.Errorf("count with the page's token = %d, want 3", got)
	}
	if code, _ := b.get("/static/app.js"); code != http.StatusOK {
		t.Errorf("GET /static/app.js = %d, want 200", code)
	}
}

// TestStoredFormat checks that the demo keeps its data under the seed's keys,
// in the shape other tools read: "user" = {"userId","email"}, "count" a number.
func TestStoredFormat(t *testing.T) {
	dir := t.TempDir()
	srv := demoServer(t, dir)
	b := newBrowser(t, srv.URL)
	b.login("ivy@example.com")
	tok := b.token()
	b.count(tok)
	b.count(tok)

	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("session files %v, want exactly one (the pre-login session was renewed away)", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		User      map[string]any `json:"user"`
		Count     json.Number    `json:"count"`
		CSRFToken string         `json:"csrfToken"`
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	if err := dec.Decode(&rec); err != nil {
		t.Fatalf("session file %s: %v\n%s", files[0], err, data)
	}
	wantUser := map[string]any{"userId": userID("ivy@example.com"), "email": "ivy@example.com"}
	if len(rec.User) != 2 || rec.User["userId"] != wantUser["userId"] || rec.User["email"] != wantUser["email"] {
		t.Errorf("stored user %v, want %v", rec.User, wantUser)
	}
	if rec.Count != "2" {
		t.Errorf("stored count %q, want the JSON number 2", rec.Count)
	}
	if rec.CSRFToken == "" {
		t.Errorf("stored session has no csrfToken:\n%s", data)
	}

	// Logging out deletes the file.
	b.do(http.MethodPost, "/logout", url.Values{"_csrf": {tok}}, nil)
	if files, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(files) != 0 {
		t.Errorf("session files after logout: %v, want none", files)
	}
}
