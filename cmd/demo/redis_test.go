//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/internal/redistest"
	"github.com/filesession/filesession/redisstore"
)

// The demo on the Redis store (-store redis://…): two real demo processes
// sharing one real redis-server, a Redis outage under load, and where the
// signing secret comes from. Migration from the file store, with a client
// that stays logged in, is covered by cmd/filesession's
// TestMigrateFileToRedisAndBack.

// redisTestSecret is the -secret of the demo processes in these tests.
const redisTestSecret = "redis-test-secret-0123456789abcdefghijkl"

// redisStoreURL returns srv's URL with a key prefix of the test's own, as
// the demo's -store reads it, and deletes the test's sessions when it ends
// (a REDIS_URL server outlives the test).
func redisStoreURL(t *testing.T, srv *redistest.Server) string {
	t.Helper()
	prefix := redistest.UniquePrefix(t)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("prefix", prefix)
	u.RawQuery = q.Encode()
	if srv.External {
		t.Cleanup(func() { deleteSessions(t, srv.URL, prefix) })
	}
	return u.String()
}

// deleteSessions deletes every session under prefix on the server at
// rawURL (and so the per-user index entries of them).
func deleteSessions(t *testing.T, rawURL, prefix string) {
	client, err := redisstore.NewClient(rawURL)
	if err != nil {
		t.Error(err)
		return
	}
	defer client.Close()
	s := redisstore.New(client, redisstore.Options{Prefix: prefix, Logger: discardLogger()})
	ctx := context.Background()
	err = s.List(ctx, func(id string, _ filesession.Record) error { return s.Delete(ctx, id) })
	if err != nil {
		t.Errorf("deleting the test's sessions: %v", err)
	}
}

// TestRedisTwoProcessesShareSessions runs the real demo binary twice, on two
// ports and two session directories (as on two hosts), over one Redis: a
// login on one is a login on the other, a counter bumped on both ends exact,
// also with both processes counting at once, and a logout on one is a
// logout on both.
func TestRedisTwoProcessesShareSessions(t *testing.T) {
	store := redisStoreURL(t, redistest.New(t))
	bin := buildDemo(t)
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a := startDemo(t, bin, dirA, "-store", store, "-secret", redisTestSecret)
	b := startDemo(t, bin, dirB, "-store", store, "-secret", redisTestSecret)
	baseA, baseB := "http://"+a.addr, "http://"+b.addr

	// One browser; the jar's cookies are per host, not per port, so it
	// carries the same cookie to both processes.
	br := newBrowser(t, baseA)
	br.login("kim@example.com")
	br.base = baseB
	if code, u := br.me(); code != http.StatusOK || u.Email != "kim@example.com" || u.UserID != userID("kim@example.com") {
		t.Fatalf("GET /api/me on B after logging in on A = %d %+v, want kim", code, u)
	}
	tok := br.token() // made on B, checked on A below: it lives in the session

	for want := 1; want <= 6; want++ {
		br.base = []string{baseB, baseA}[want%2]
		if got := br.count(tok); got != want {
			t.Fatalf("count #%d on %s = %d, want %d", want, br.base, got, want)
		}
	}

	// Both processes, 16 requests in flight on each, on one session: the
	// store's Update loses no increment across processes.
	const perProcess, each = 16, 4
	var (
		mu  sync.Mutex
		got []int
		wg  sync.WaitGroup
	)
	for _, base := range []string{baseA, baseB} {
		on := &browser{t: t, c: br.c, base: base}
		for range perProcess {
			wg.Go(func() {
				for range each {
					n, err := on.tryCount(tok)
					if err != nil {
						t.Errorf("on %s: %v", base, err)
						return
					}
					mu.Lock()
					got = append(got, n)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		t.Logf("A's log:\n%s\nB's log:\n%s", a.log(), b.log())
		t.FailNow()
	}
	slices.Sort(got)
	for i, n := range got {
		if n != 6+i+1 {
			t.Fatalf("sorted counts from both processes %v: want 7..%d, each once", got, 6+2*perProcess*each)
		}
	}

	br.base = baseB
	if code, body := br.do(http.MethodPost, "/logout", url.Values{"_csrf": {tok}}, nil); code != http.StatusSeeOther {
		t.Fatalf("POST /logout on B = %d %q", code, body)
	}
	br.base = baseA
	if code, _ := br.me(); code != http.StatusUnauthorized {
		t.Errorf("GET /api/me on A after logging out on B = %d, want 401", code)
	}

	// Nothing went to the directories: no session file, no generated
	// secret.
	for _, dir := range []string{dirA, dirB} {
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("session directory %s of a demo on Redis: %v, want it never created", dir, err)
		}
	}
	a.stop()
	b.stop()
}

// outage tallies the answers of the load in TestRedisOutage.
type outage struct {
	phase atomic.Int32 // phaseUp, phaseDown, phaseRestarted

	mu         sync.Mutex
	total      int
	down503    int // requests sent and answered while Redis was down, all 503
	restarted  int // 200s sent after the restart
	violations []string
}

const (
	phaseUp = iota
	phaseDown
	phaseRestarted
)

func (o *outage) violation(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.violations) < 20 {
		o.violations = append(o.violations, fmt.Sprintf(format, args...))
	}
}

// counts returns the tallies under the lock.
func (o *outage) counts() (total, down503, restarted int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.total, o.down503, o.restarted
}

// checkAnswer holds one answer of a request sent in phase before and
// answered in phase after to the outage's rules: 200 with the user, or 503
// with Retry-After; never 401 or any other status; never a Set-Cookie on a
// 503, and never one that carries another session (cookie) or clears it.
func (o *outage) checkAnswer(what string, resp *http.Response, body []byte, before, after int32, cookie string) {
	for _, sc := range resp.Header.Values("Set-Cookie") {
		name, rest, _ := strings.Cut(sc, "=")
		value, _, _ := strings.Cut(rest, ";")
		if resp.StatusCode != http.StatusOK || name != "session" || value != cookie {
			o.violation("%s: %d with Set-Cookie %q: a 503 must set no cookie, and a 200 only the same session's", what, resp.StatusCode, sc)
		}
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if before == phaseDown && after == phaseDown {
			o.violation("%s: 200 while Redis was down", what)
		}
		if !strings.Contains(string(body), "lee@example.com") {
			o.violation("%s: 200 %q, want lee", what, body)
		}
	case http.StatusServiceUnavailable:
		if resp.Header.Get("Retry-After") == "" {
			o.violation("%s: 503 without Retry-After", what)
		}
	default:
		// 401 would be "logged out"; anything else a store failure
		// mistaken for something else.
		o.violation("%s: %d %q, want 200 or 503", what, resp.StatusCode, body)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.total++
	switch {
	case before == phaseDown && after == phaseDown && resp.StatusCode == http.StatusServiceUnavailable:
		o.down503++
	case before == phaseRestarted && resp.StatusCode == http.StatusOK:
		o.restarted++
	}
}

// send sends req with the session cookie (and nothing else: no jar, so a
// cookie the server sets cannot sneak into the next request) and checks
// the answer.
func (o *outage) send(c *http.Client, req *http.Request, cookie string) {
	req.Header.Set("Cookie", "session="+cookie)
	before := o.phase.Load()
	resp, err := c.Do(req)
	if err != nil {
		o.violation("%s %s: %v", req.Method, req.URL.Path, err)
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		o.violation("%s %s: reading: %v", req.Method, req.URL.Path, err)
		return
	}
	o.checkAnswer(req.Method+" "+req.URL.Path, resp, body, before, o.phase.Load(), cookie)
}

// waitFor polls cond until it holds; the bound only keeps a broken run from
// hanging (a healthy one takes milliseconds to a couple of seconds: go-redis
// redials once a second after a restart).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRedisOutage kills redis-server under a demo process serving a
// logged-in client, then restarts it: while it is down every request is a
// 503 with Retry-After, none is answered "logged out" (401) and none gets a
// new cookie; counting while it is down changes nothing; after the restart
// the same cookie is logged in again with the counter where it was.
//
// redistest's servers persist nothing, so the test snapshots the dataset
// with SAVE before the kill, which Restart loads: the state a Redis with
// RDB or AOF persistence comes back with. The snapshot is taken after the
// last write the test checks (the third count), so nothing it checks is
// lost with the kill.
func TestRedisOutage(t *testing.T) {
	srv := redistest.NewOwn(t)
	store := redisStoreURL(t, srv)
	bin := buildDemo(t)
	demo := startDemo(t, bin, filepath.Join(t.TempDir(), "sessions"), "-store", store, "-secret", redisTestSecret)
	base := "http://" + demo.addr

	br := newBrowser(t, base)
	br.login("lee@example.com")
	tok := br.token()
	for want := 1; want <= 3; want++ {
		if got := br.count(tok); got != want {
			t.Fatalf("count = %d, want %d", got, want)
		}
	}
	cookie := br.sessionCookie()
	if cookie == "" {
		t.Fatal("no session cookie after login")
	}
	admin, err := redisstore.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Save(t.Context()).Err(); err != nil {
		t.Fatalf("SAVE: %v", err)
	}

	// The load: GET /api/me from a few clients at once, all the time.
	var o outage
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, base+"/api/me", nil)
				o.send(client, req, cookie)
			}
		})
	}
	stopLoad := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopLoad() // on a t.Fatal
	waitFor(t, "the load to start", func() bool { total, _, _ := o.counts(); return total >= 50 })

	srv.Kill()
	o.phase.Store(phaseDown)
	// Increments sent while Redis is surely down (after Kill returned,
	// before Restart) must each be a 503 and change nothing.
	for range 5 {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/count", nil)
		req.Header.Set("X-CSRF-Token", tok)
		o.send(client, req, cookie)
	}
	waitFor(t, "503s while Redis is down", func() bool { _, down, _ := o.counts(); return down >= 40 })

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	o.phase.Store(phaseRestarted)
	waitFor(t, "the demo to recover after the restart", func() bool { _, _, up := o.counts(); return up >= 40 })
	stopLoad()

	total, down, up := o.counts()
	t.Logf("%d answers under load: %d 503s while Redis was down, %d 200s after the restart", total, down, up)
	for _, v := range o.violations {
		t.Error(v)
	}
	if code, u := br.me(); code != http.StatusOK || u.Email != "lee@example.com" {
		t.Errorf("GET /api/me after the outage = %d %+v, want lee still logged in", code, u)
	}
	// 3 before the outage, the 5 sent during it were refused: the next is 4.
	if got := br.count(tok); got != 4 {
		t.Errorf("count after the outage = %d, want 4 (the increments refused with 503 must not have counted)", got)
	}
	if br.sessionCookie() != cookie {
		t.Error("the session cookie changed over the outage")
	}
	if t.Failed() {
		t.Logf("demo log:\n%s", demo.log())
	}
	demo.stop()
}

// TestRedisSecret checks where a demo on Redis gets its signing secret:
// never generated (each instance would make its own and reject the others'
// cookies), taken from -secret/SESSION_SECRET, or else read from the secret
// file a file-store run kept in the session directory, so that the
// sessions migrated from that directory keep their cookies.
func TestRedisSecret(t *testing.T) {
	store := redisStoreURL(t, redistest.New(t))

	empty := filepath.Join(t.TempDir(), "sessions")
	_, _, err := newApp(config{Dir: empty, TTL: time.Hour, Store: store, Logger: discardLogger()})
	if err == nil || !strings.Contains(err.Error(), "-secret") {
		t.Errorf("newApp on Redis without a secret: %v, want an error asking for -secret", err)
	}
	if _, err := os.Stat(empty); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("newApp on Redis without a secret touched %s: %v", empty, err)
	}

	// A directory the file store ran on, with its generated secret.
	dir := t.TempDir()
	secret, err := loadOrCreateSecret(dir, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	fromFile := demoServerWith(t, config{Dir: dir, TTL: time.Hour, Store: store})
	given := demoServerWith(t, config{Dir: t.TempDir(), TTL: time.Hour, Store: store, Secret: secret})
	br := newBrowser(t, fromFile.URL)
	br.login("ana@example.com")
	// httptest servers share the host 127.0.0.1, so the jar sends the
	// cookie to both.
	br.base = given.URL
	if code, u := br.me(); code != http.StatusOK || u.Email != "ana@example.com" {
		t.Errorf("a cookie signed with the directory's secret, on a demo given that secret: %d %+v, want ana", code, u)
	}
}

// TestRedisStoreErrors checks what the demo refuses: an unknown -store, the
// express preset on Redis, and a Redis server that does not answer at
// start-up (rather than serving 503s from the first request on).
func TestRedisStoreErrors(t *testing.T) {
	noEnv := func(string) string { return "" }
	for _, spec := range []string{"", "file", "redis://127.0.0.1:6379/0", "rediss://h:6380/1?prefix=app:", "unix:///run/redis.sock"} {
		cfg, _, err := parseFlags([]string{"-store", spec}, noEnv, io.Discard)
		if err != nil || cfg.Store != spec {
			t.Errorf("parseFlags -store %q: %+v, %v", spec, cfg, err)
		}
	}
	if cfg, _, _ := parseFlags(nil, noEnv, io.Discard); cfg.Store != storeFile {
		t.Errorf("default -store = %q, want %q", cfg.Store, storeFile)
	}
	for _, spec := range []string{"redis", "./sessions", "http://127.0.0.1:6379", "memory"} {
		if _, _, err := parseFlags([]string{"-store", spec}, noEnv, io.Discard); err == nil {
			t.Errorf("parseFlags -store %q accepted", spec)
		}
	}

	secret := []byte(redisTestSecret)
	_, _, err := newApp(config{TTL: time.Hour, Store: "redis://127.0.0.1:6379/0", Preset: presetExpress, Secret: secret, Logger: discardLogger()})
	if err == nil || !strings.Contains(err.Error(), "express") {
		t.Errorf("newApp with the express preset on Redis: %v, want it refused", err)
	}

	// A port nothing listens on: refused at once.
	dead := redistest.NewOwn(t)
	deadURL := dead.URL
	dead.Kill()
	_, _, err = newApp(config{TTL: time.Hour, Store: "redis://:hunter2@" + strings.TrimPrefix(deadURL, "redis://"), Secret: secret, Logger: discardLogger()})
	if err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Errorf("newApp on a Redis that is down: %v, want an error saying so", err)
	} else if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error reveals the Redis password: %v", err)
	}
}
