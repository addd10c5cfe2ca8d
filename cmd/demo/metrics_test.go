package main

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape fetches /metrics and returns every sample by its name and labels
// as written ("name{a=\"b\"}"), parsed from the Prometheus text format.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics = %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp.Header.Get("Set-Cookie") != "" {
		t.Error("a scrape set a cookie: /metrics went through the session middleware")
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		samples[line[:i]] = v
	}
	return samples
}

// TestMetricsAfterKnownTraffic drives a login, three counter clicks, a
// page view and a logout through the demo, and checks the store counters
// /metrics reports for them.
func TestMetricsAfterKnownTraffic(t *testing.T) {
	srv := demoServerWith(t, config{Dir: t.TempDir(), TTL: time.Hour})
	before := scrape(t, srv.URL)
	for name, v := range before {
		if strings.HasPrefix(name, "filesession_store_operations_total") && v != 0 {
			t.Errorf("%s = %v before any traffic", name, v)
		}
	}

	b := newBrowser(t, srv.URL)
	b.login("ann@example.com") // GET /api/csrf creates the session, POST /login renews it
	tok := b.token()
	for want := 1; want <= 3; want++ {
		if got := b.count(tok); got != want {
			t.Fatalf("count = %d, want %d", got, want)
		}
	}
	if code, _ := b.me(); code != http.StatusOK {
		t.Fatalf("GET /api/me = %d", code)
	}
	if code, body := b.do(http.MethodPost, "/logout", url.Values{"_csrf": {tok}}, nil); code != http.StatusSeeOther {
		t.Fatalf("POST /logout = %d %q", code, body)
	}
	// An unknown session: its cookie names no session in the store.
	stranger := newBrowser(t, srv.URL)
	u, _ := url.Parse(srv.URL)
	stranger.c.Jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: b.sessionCookie() + "x"}})
	stranger.me()

	m := scrape(t, srv.URL)
	op := func(op, result string) float64 {
		return m[`filesession_store_operations_total{op="`+op+`",result="`+result+`"}`]
	}
	for _, c := range []struct {
		op, result string
		want       float64
	}{
		{"create", "ok", 1}, // the visitor's first session, for its CSRF token
		{"renew", "ok", 1},  // login: a new ID
		{"update", "ok", 3}, // each click: one read-modify-write under the lock
		{"delete", "ok", 1}, // logout
		{"create", "error", 0},
		{"update", "error", 0},
		{"renew", "error", 0},
		{"delete", "error", 0},
		{"load", "error", 0},
	} {
		if got := op(c.op, c.result); got != c.want {
			t.Errorf("operations_total{op=%q,result=%q} = %v, want %v", c.op, c.result, got, c.want)
		}
	}
	// Every request that carried a session cookie loaded its session: at
	// least the token fetch, the login, three clicks, /api/me and the
	// logout; the stranger's forged cookie never reaches the store.
	if got := op("load", "not_found"); got != 0 {
		t.Errorf("loads not found = %v: a forged cookie reached the store", got)
	}
	if got := op("load", "ok"); got < 7 {
		t.Errorf("loads ok = %v, want at least 7", got)
	}
	if got := m[`filesession_store_operation_duration_seconds_count{op="update"}`]; got != 3 {
		t.Errorf("update latencies observed = %v, want 3", got)
	}
	// Each create, renew, update and delete took the session's lock once.
	if got := m["filesession_store_lock_wait_seconds_count"]; got < 6 {
		t.Errorf("lock waits observed = %v, want at least 6", got)
	}
	if m["filesession_store_lock_timeouts_total"] != 0 || m["filesession_store_quarantined_total"] != 0 {
		t.Errorf("lock timeouts %v, quarantined %v; want 0", m["filesession_store_lock_timeouts_total"], m["filesession_store_quarantined_total"])
	}
	if _, ok := m["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
}
