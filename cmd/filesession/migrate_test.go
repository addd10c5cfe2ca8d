package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
	"github.com/filesession/filesession/internal/redistest"
	"github.com/filesession/filesession/redisstore"
)

// testSecret is the cookie signing secret of the apps in these tests.
var testSecret = []byte("0123456789abcdef0123456789abcdef")

// app is a tiny application over store: POST /login?email= logs in (a new
// session ID, the user stored), GET /me answers the user's email or 401.
func app(t *testing.T, store filesession.Store) *httptest.Server {
	t.Helper()
	m, err := filesession.New(store, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	m.Logger = slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		s := filesession.FromContext(r.Context())
		s.Renew()
		email := r.URL.Query().Get("email")
		if err := s.Put("user", map[string]string{"userId": "id-" + email, "email": email}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
		if err := s.SetUser("id-" + email); err != nil { // Record.User, the per-user index's key
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		u, ok := filesession.Get[map[string]string](filesession.FromContext(r.Context()), "user")
		if !ok {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, u["email"])
	})
	srv := httptest.NewServer(m.Handler(mux))
	t.Cleanup(srv.Close)
	return srv
}

// login logs email in on srv and returns the session cookie it set.
func login(t *testing.T, srv *httptest.Server, email string) *http.Cookie {
	t.Helper()
	resp, err := srv.Client().Post(srv.URL+"/login?email="+email, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Value != "" {
			return c
		}
	}
	t.Fatalf("login of %s set no cookie (status %d)", email, resp.StatusCode)
	return nil
}

// whoami returns who srv says the cookie belongs to, or "" for nobody.
func whoami(t *testing.T, srv *httptest.Server, c *http.Cookie) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/me", nil)
	req.AddCookie(c)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(b)
}

// all returns every session of a store by ID.
func all(t *testing.T, l filesession.Lister) map[string]filesession.Record {
	t.Helper()
	m := map[string]filesession.Record{}
	if err := l.List(context.Background(), func(id string, r filesession.Record) error {
		m[id] = r.Clone()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return m
}

// sameSession checks that got, at the destination, is want from the
// source: values byte for byte, times to the millisecond (the stores'
// precision), and so the same expiry.
func sameSession(t *testing.T, id string, got, want filesession.Record) {
	t.Helper()
	if len(got.Values) != len(want.Values) {
		t.Errorf("%s: values %v, want %v", shortID(id), got.Values, want.Values)
	}
	for k, v := range want.Values {
		if string(got.Values[k]) != string(v) {
			t.Errorf("%s: value %q = %s, want %s", shortID(id), k, got.Values[k], v)
		}
	}
	ms := func(t time.Time) int64 { return t.UnixMilli() }
	if ms(got.Created) != ms(want.Created) || ms(got.LastAccess) != ms(want.LastAccess) ||
		got.IdleTimeout != want.IdleTimeout || ms(got.Deadline) != ms(want.Deadline) ||
		ms(got.ExpiresAt()) != ms(want.ExpiresAt()) || got.Cookie != want.Cookie || got.User != want.User {
		t.Errorf("%s: got created %v, last access %v, idle %v, deadline %v, expires %v, cookie %+v;\nwant %v, %v, %v, %v, %v, %+v", shortID(id),
			got.Created, got.LastAccess, got.IdleTimeout, got.Deadline, got.ExpiresAt(), got.Cookie,
			want.Created, want.LastAccess, want.IdleTimeout, want.Deadline, want.ExpiresAt(), want.Cookie)
	}
}

// migrationFixture is a source directory with sessions logged in through a
// real application (their cookies kept), others made directly, one
// expired, and the demo's signing secret.
type migrationFixture struct {
	*fixture
	cookies map[string]*http.Cookie // by email
	expired string
}

func newMigrationFixture(t *testing.T) *migrationFixture {
	f := &migrationFixture{fixture: newFixture(t), cookies: map[string]*http.Cookie{}}
	src := app(t, f.s)
	for _, email := range []string{"ann@example.com", "bob@example.com", "cy@example.com"} {
		f.cookies[email] = login(t, src, email)
		if who := whoami(t, src, f.cookies[email]); who != email {
			t.Fatalf("before migrating, %s's cookie is %q's", email, who)
		}
	}
	n := f.now
	f.create(
		sess{created: n.Add(-2 * 24 * time.Hour), lastAccess: n.Add(-time.Hour), idle: 7 * 24 * time.Hour, user: `"dee"`},
		sess{created: n.Add(-time.Hour), lastAccess: n.Add(-time.Minute), idle: time.Hour, deadline: n.Add(30 * time.Minute), user: userValue("eve@example.com")},
	)
	f.expired = f.create(sess{created: n.Add(-3 * time.Hour), lastAccess: n.Add(-2 * time.Hour), idle: time.Hour})[0]
	f.write(secretFileName, hex.EncodeToString(testSecret)+"\n", 0o600, n)
	return f
}

// live returns the source's live sessions.
func (f *migrationFixture) liveSessions() map[string]filesession.Record {
	m := all(f.t, f.s)
	delete(m, f.expired)
	return m
}

func TestMigrateFileToFile(t *testing.T) {
	f := newMigrationFixture(t)
	want := f.liveSessions()
	dstDir := filepath.Join(t.TempDir(), "new-sessions")

	// A dry run writes nothing, not even the directory.
	var m migration
	runBin(t, "", "migrate", "--dry-run", "--json", "--from", f.dir, "--to", dstDir).want(t, exitOK).decode(t, &m)
	if m.Copied != int64(len(want)) || m.Expired != 1 || !m.DryRun {
		t.Errorf("migrate --dry-run = %+v", m)
	}
	if _, err := os.Stat(dstDir); err == nil {
		t.Fatal("migrate --dry-run created the destination")
	}

	before := f.snapshot()
	m = migration{}
	runBin(t, "", "migrate", "--json", "--from", f.dir, "--to", dstDir).want(t, exitOK).decode(t, &m)
	if m != (migration{Copied: int64(len(want)), Expired: 1}) {
		t.Errorf("migrate = %+v, want %d copied and 1 expired skipped", m, len(want))
	}
	f.unchanged(before, "migrate (the source)")

	dst := f.open(dstDir)
	got := all(t, dst)
	if len(got) != len(want) {
		t.Errorf("destination holds %d sessions, want %d", len(got), len(want))
	}
	owners := 0
	for id, w := range want {
		sameSession(t, id, got[id], w)
		if w.User != "" {
			owners++
		}
	}
	if owners != len(f.cookies) {
		t.Errorf("%d sessions with a Record.User, want one per login (%d)", owners, len(f.cookies))
	}
	if b, err := os.ReadFile(filepath.Join(dstDir, secretFileName)); err != nil || strings.TrimSpace(string(b)) != hex.EncodeToString(testSecret) {
		t.Errorf("the signing secret was not copied: %q, %v", b, err)
	}
	// Nobody is logged out: every cookie issued by the old store works
	// against the new one.
	after := app(t, dst)
	for email, c := range f.cookies {
		if who := whoami(t, after, c); who != email {
			t.Errorf("after migrating, %s's cookie is %q's", email, who)
		}
	}

	// Idempotent: a second run changes nothing.
	m = migration{}
	runBin(t, "", "migrate", "--json", "--from", f.dir, "--to", dstDir).want(t, exitOK).decode(t, &m)
	if m != (migration{UpToDate: int64(len(want)), Expired: 1}) {
		t.Errorf("second migrate = %+v, want all up to date", m)
	}

	// A session used at the source since is updated; one used at the
	// destination since (the application switched over) is kept.
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range want {
			if !yield(id) {
				return
			}
		}
	})
	ctx := context.Background()
	later := time.Now().Add(time.Second)
	if err := f.s.Save(ctx, ids[0], filesession.Change{Set: map[string]json.RawMessage{"cart": json.RawMessage(`["book"]`)}, At: later}); err != nil {
		t.Fatal(err)
	}
	if err := dst.Touch(ctx, ids[1], later.Add(time.Second), later.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	m = migration{}
	runBin(t, "", "migrate", "--json", "--from", f.dir, "--to", dstDir).want(t, exitOK).decode(t, &m)
	if m != (migration{Updated: 1, NewerThere: 1, UpToDate: int64(len(want) - 2), Expired: 1}) {
		t.Errorf("third migrate = %+v", m)
	}
	r, err := dst.Load(ctx, ids[0])
	if err != nil || string(r.Values["cart"]) != `["book"]` {
		t.Errorf("the updated session at the destination: %v, %v", r.Values, err)
	}
}

// TestMigrateResumes checks that a run that stopped half way (here: a
// destination that already holds half of the sessions, as such a run
// leaves it) is finished by running migrate again.
func TestMigrateResumes(t *testing.T) {
	f := newMigrationFixture(t)
	want := f.liveSessions()
	dstDir := filepath.Join(t.TempDir(), "dst")
	dst := f.open(dstDir)
	half := 0
	for id, r := range want {
		if half >= len(want)/2 {
			break
		}
		if err := dst.Create(context.Background(), id, r); err != nil {
			t.Fatal(err)
		}
		half++
	}
	var m migration
	runBin(t, "", "migrate", "--json", "--from", f.dir, "--to", dstDir).want(t, exitOK).decode(t, &m)
	if m.Copied != int64(len(want)-half) || m.UpToDate != int64(half) || m.Failed != 0 {
		t.Errorf("resumed migrate = %+v, want %d copied and %d up to date", m, len(want)-half, half)
	}
	got := all(t, dst)
	for id, w := range want {
		sameSession(t, id, got[id], w)
	}
}

// TestMigrateFileToRedisAndBack moves sessions from files to a real Redis
// and back to files: every cookie stays valid at each step, and every
// session arrives with the same values and expiry.
func TestMigrateFileToRedisAndBack(t *testing.T) {
	srv := redistest.New(t)
	prefix := redistest.UniquePrefix(t)
	url := srv.URL + "?prefix=" + prefix
	client, err := redisstore.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() }) // after the keys' cleanup below
	rs := redisstore.New(client, redisstore.Options{Prefix: prefix, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() {
		for id := range all(t, rs) {
			rs.Delete(context.Background(), id)
		}
	})

	f := newMigrationFixture(t)
	want := f.liveSessions()
	var m migration
	r := runBin(t, "", "migrate", "--json", "--from", f.dir, "--to", url).want(t, exitOK)
	r.decode(t, &m)
	if m != (migration{Copied: int64(len(want)), Expired: 1}) {
		t.Errorf("migrate to Redis = %+v", m)
	}
	if !strings.Contains(r.stderr, "must keep signing cookies with the secret") {
		t.Errorf("no note about the signing secret:\n%s", r.stderr)
	}
	inRedis := all(t, rs)
	if len(inRedis) != len(want) {
		t.Errorf("Redis holds %d sessions, want %d", len(inRedis), len(want))
	}
	for id, w := range want {
		sameSession(t, id, inRedis[id], w)
	}
	onRedis := app(t, rs)
	for email, c := range f.cookies {
		if who := whoami(t, onRedis, c); who != email {
			t.Errorf("on Redis, %s's cookie is %q's", email, who)
		}
	}
	m = migration{}
	runBin(t, "", "migrate", "--json", "--from", f.dir, "--to", url).want(t, exitOK).decode(t, &m)
	if m != (migration{UpToDate: int64(len(want)), Expired: 1}) {
		t.Errorf("second migrate to Redis = %+v, want all up to date", m)
	}

	back := filepath.Join(t.TempDir(), "back")
	m = migration{}
	runBin(t, "", "migrate", "--json", "--from", url, "--to", back).want(t, exitOK).decode(t, &m)
	if m != (migration{Copied: int64(len(want))}) {
		t.Errorf("migrate from Redis = %+v", m)
	}
	dst, err := filestore.Open(filestore.Options{Path: back, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	got := all(t, dst)
	for id, w := range want {
		sameSession(t, id, got[id], w)
	}
	onFiles := app(t, dst)
	for email, c := range f.cookies {
		if who := whoami(t, onFiles, c); who != email {
			t.Errorf("back on files, %s's cookie is %q's", email, who)
		}
	}
	// A bad URL is a usage error; an unreachable server a failure.
	runBin(t, "", "migrate", "--from", "redis://[::1", "--to", back).want(t, exitUsage)
	runBin(t, "", "migrate", "--from", "redis://127.0.0.1:1/0", "--to", back).want(t, exitProblems)
}
