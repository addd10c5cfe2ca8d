package express_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/csrf"
	"github.com/filesession/filesession/express"
	"github.com/filesession/filesession/filestore"
	"github.com/filesession/filesession/internal/expresstest"
)

// These tests run the real Express app (testdata/express/server.js, on
// express-session 1.19.0 and session-file-store 1.5.0) beside a real Go
// server (a filesession.Manager from express.New over
// filestore.ExpressOptions) on one sessions directory and one secret, and
// drive both over HTTP with one cookie jar, as one browser whose requests a
// proxy splits between the two stacks.

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// interopSecret is long enough for Go's codec; both sides get it.
const interopSecret = "interop-secret-0123456789abcdef-0123456789"

// goSide is the Go server of a test.
type goSide struct {
	URL   string
	store *filestore.Store
	m     *filesession.Manager
}

// user is the demo's "user" value.
type user struct {
	UserID string `json:"userId"`
	Email  string `json:"email"`
}

// userID is the demo's (and server.js's) stable ID of an email address.
func userID(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(email)))
	return hex.EncodeToString(sum[:8])
}

// goConfig configures startGo.
type goConfig struct {
	dir     string
	secrets []string
	clock   *expresstest.Clock
	maxAge  time.Duration // the manager's IdleTimeout, Node's cookie.maxAge
	ttl     time.Duration // the store's TTL, Node's ttl
}

// startGo starts the Go half: the demo's routes (and /api/data) on a
// manager that speaks express-session, over the express preset.
func startGo(t *testing.T, c goConfig) *goSide {
	t.Helper()
	o := filestore.ExpressOptions(c.dir)
	o.Logger, o.ReapInterval = quiet, 0 // tests call Reap themselves
	if c.clock != nil {
		o.Now = c.clock.Now
	}
	if c.ttl > 0 {
		o.TTL = c.ttl
	}
	store, err := filestore.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	secrets := c.secrets
	if secrets == nil {
		secrets = []string{interopSecret}
	}
	m, err := express.New(store, secrets...)
	if err != nil {
		t.Fatal(err)
	}
	m.Logger = quiet
	m.IdleTimeout = c.maxAge
	if c.clock != nil {
		m.Now = c.clock.Now
	}

	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /api/csrf", func(w http.ResponseWriter, r *http.Request) {
		tok, err := csrf.Token(r)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		writeJSON(w, 200, map[string]string{"token": tok})
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		email := strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
		s := filesession.FromContext(r.Context())
		s.Renew()
		if err := s.Put("user", user{userID(email), email}); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		filesession.FromContext(r.Context()).Destroy()
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /api/me", func(w http.ResponseWriter, r *http.Request) {
		u, ok := filesession.Get[user](filesession.FromContext(r.Context()), "user")
		if !ok {
			writeJSON(w, 401, map[string]string{"error": "not logged in"})
			return
		}
		writeJSON(w, 200, u)
	})
	mux.HandleFunc("POST /api/count", func(w http.ResponseWriter, r *http.Request) {
		n, err := filesession.Update(r.Context(), filesession.FromContext(r.Context()), "count",
			func(n int, _ bool) (int, error) { return n + 1, nil })
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		writeJSON(w, 200, map[string]int{"count": n})
	})
	mux.HandleFunc("GET /api/data", func(w http.ResponseWriter, r *http.Request) {
		raw := filesession.FromContext(r.Context()).Raw("data")
		if raw == nil {
			raw = json.RawMessage("null")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"data":` + string(raw) + `}`))
	})
	mux.HandleFunc("POST /api/data", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Data json.RawMessage }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		if err := filesession.FromContext(r.Context()).Put("data", body.Data); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		writeJSON(w, 200, map[string]bool{"ok": true})
	})
	srv := httptest.NewServer(m.Handler(csrf.Protect(mux)))
	t.Cleanup(srv.Close)
	return &goSide{URL: srv.URL, store: store, m: m}
}

// pair starts Node and Go on one fresh directory and returns them with the
// directory.
func pair(t *testing.T, clock *expresstest.Clock, maxAge time.Duration) (*expresstest.Server, *goSide, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sessions")
	node := expresstest.Start(t, expresstest.Config{Dir: dir, Secrets: []string{interopSecret}, MaxAge: maxAge})
	g := startGo(t, goConfig{dir: dir, clock: clock, maxAge: maxAge})
	return node, g, dir
}

// sid returns the session ID the browser's connect.sid cookie carries,
// checked with the Go codec.
func sid(t *testing.T, b *expresstest.Browser, base string) string {
	t.Helper()
	v := b.Cookie(base, express.CookieName)
	if v == "" {
		t.Fatal("no connect.sid cookie in the jar")
	}
	c, _ := express.NewCodec(interopSecret)
	id, _, ok := c.Decode(express.CookieName, v)
	if !ok {
		t.Fatalf("connect.sid %q does not verify", v)
	}
	return id
}

func login(t *testing.T, b *expresstest.Browser, base, email string) {
	t.Helper()
	r := b.PostForm(base, "/login", url.Values{"email": {email}, "password": {"pw"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("POST %s/login: %d %s", base, r.Status, r.Body)
	}
}

// me returns the user base says the browser is logged in as, or nil.
func me(t *testing.T, b *expresstest.Browser, base string) *user {
	t.Helper()
	r := b.Get(base + "/api/me")
	switch r.Status {
	case http.StatusOK:
		var u user
		r.JSON(t, &u)
		return &u
	case http.StatusUnauthorized:
		return nil
	}
	t.Fatalf("GET %s/api/me: %d %s", base, r.Status, r.Body)
	return nil
}

func wantUser(t *testing.T, b *expresstest.Browser, base, side, email string) {
	t.Helper()
	u := me(t, b, base)
	if u == nil || u.Email != email || u.UserID != userID(email) {
		t.Fatalf("%s /api/me = %+v, want %s", side, u, email)
	}
}

func wantNoUser(t *testing.T, b *expresstest.Browser, base, side string) {
	t.Helper()
	if u := me(t, b, base); u != nil {
		t.Fatalf("%s /api/me = %+v, want not logged in", side, u)
	}
}

func sessionFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") {
			names = append(names, e.Name())
		}
	}
	return names
}

func exists(dir, id string) bool {
	_, err := os.Stat(filepath.Join(dir, id+".json"))
	return err == nil
}

func TestInteropLogin(t *testing.T) {
	node, g, dir := pair(t, nil, 24*time.Hour)

	t.Run("ExpressToGo", func(t *testing.T) {
		b := expresstest.NewBrowser(t)
		wantNoUser(t, b, g.URL, "Go")
		login(t, b, node.URL, "Ada@Example.com")
		wantUser(t, b, g.URL, "Go", "ada@example.com")
		wantUser(t, b, node.URL, "Express", "ada@example.com")
		if id := sid(t, b, g.URL); !exists(dir, id) {
			t.Fatalf("no file for the logged-in session %s", id)
		}
	})
	t.Run("GoToExpress", func(t *testing.T) {
		b := expresstest.NewBrowser(t)
		wantNoUser(t, b, node.URL, "Express")
		login(t, b, g.URL, "grace@example.com")
		wantUser(t, b, node.URL, "Express", "grace@example.com")
		wantUser(t, b, g.URL, "Go", "grace@example.com")
	})
	t.Run("CSRFTokensCross", func(t *testing.T) {
		// A token Go handed out is accepted by Express and the reverse: one
		// page, whichever stack rendered it, can post to either.
		b := expresstest.NewBrowser(t)
		for _, c := range []struct{ from, to string }{{g.URL, node.URL}, {node.URL, g.URL}} {
			tok := b.CSRF(c.from)
			r := b.Do(http.MethodPost, c.to+"/api/count", "", nil, http.Header{"X-Csrf-Token": {tok}})
			if r.Status != http.StatusOK {
				t.Fatalf("token of %s at %s: %d %s", c.from, c.to, r.Status, r.Body)
			}
			r = b.Do(http.MethodPost, c.to+"/api/count", "", nil, http.Header{"X-Csrf-Token": {tok[:len(tok)-2] + "AA"}})
			if r.Status != http.StatusForbidden {
				t.Fatalf("forged token at %s: %d", c.to, r.Status)
			}
		}
	})
}

func TestInteropCounter(t *testing.T) {
	node, g, _ := pair(t, nil, 24*time.Hour)
	b := expresstest.NewBrowser(t)
	login(t, b, node.URL, "count@example.com")
	for i := 1; i <= 12; i++ {
		base := node.URL
		if i%2 == 0 {
			base = g.URL
		}
		if i%3 == 0 { // the session's login moves between stacks too
			login(t, b, base, "count@example.com")
		}
		r := b.PostJSON(base, "/api/count", nil)
		var out struct{ Count int }
		r.JSON(t, &out)
		if r.Status != http.StatusOK || out.Count != i {
			t.Fatalf("increment %d on %s: %d %s, want count %d", i, base, r.Status, r.Body, i)
		}
	}
	wantUser(t, b, g.URL, "Go", "count@example.com")
}

func TestInteropLogout(t *testing.T) {
	node, g, dir := pair(t, nil, 24*time.Hour)
	for _, c := range []struct{ name, in, out, outName string }{
		{"ExpressLoginGoLogout", node.URL, g.URL, "Go"},
		{"GoLoginExpressLogout", g.URL, node.URL, "Express"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := expresstest.NewBrowser(t)
			login(t, b, c.in, "bye@example.com")
			id := sid(t, b, c.in)
			r := b.PostForm(c.out, "/logout", nil)
			if r.Status != http.StatusSeeOther {
				t.Fatalf("logout on %s: %d %s", c.outName, r.Status, r.Body)
			}
			if exists(dir, id) {
				t.Fatal("the session file survived logout")
			}
			wantNoUser(t, b, c.in, "the other side")
			wantNoUser(t, b, c.out, c.outName)
		})
	}
}

// Go's touches must keep a session alive by Node's rule, and Node's reaper
// (every second here) must not delete what Go keeps alive.
func TestInteropTouchKeepsAliveForNode(t *testing.T) {
	const maxAge = 10 * time.Minute
	clock := &expresstest.Clock{}
	dir := filepath.Join(t.TempDir(), "sessions")
	node := expresstest.Start(t, expresstest.Config{Dir: dir, Secrets: []string{interopSecret}, MaxAge: maxAge, ReapInterval: time.Second})
	g := startGo(t, goConfig{dir: dir, clock: clock, maxAge: maxAge})

	kept := expresstest.NewBrowser(t)
	login(t, kept, node.URL, "kept@example.com")
	keptID := sid(t, kept, node.URL)
	left := expresstest.NewBrowser(t)
	login(t, left, node.URL, "left@example.com")
	leftID := sid(t, left, node.URL)
	goKept := expresstest.NewBrowser(t)
	login(t, goKept, g.URL, "gokept@example.com")
	goKeptID := sid(t, goKept, g.URL)

	// 36 minutes in 6-minute steps, each one more than half of maxAge: the
	// sessions live only because Go's requests touch them, Node's reaper
	// passing all the while.
	for step := 1; step <= 6; step++ {
		clock.Advance(t, 6*time.Minute, node)
		wantUser(t, kept, g.URL, "Go", "kept@example.com")
		wantUser(t, goKept, g.URL, "Go", "gokept@example.com")
		for _, id := range []string{keptID, goKeptID} {
			if expired, missing := node.Expired(t, id); expired || missing {
				t.Fatalf("step %d: Node says expired=%v missing=%v for a session Go just touched", step, expired, missing)
			}
		}
		// Wait for a pass of Node's interval reaper that started after the
		// clock moved, and for the next, so the first has finished; then a
		// complete pass of its reap logic.
		p := node.ReapPasses(t, -1)
		node.ReapPasses(t, p+1)
		node.Reap(t)
		if !exists(dir, keptID) || !exists(dir, goKeptID) {
			t.Fatalf("step %d: Node's reaper deleted a session Go keeps alive", step)
		}
		if step == 2 && exists(dir, leftID) {
			t.Fatal("Node's reaper did not delete the session nobody used for 12 minutes (is it running?)")
		}
	}
	wantUser(t, kept, node.URL, "Express", "kept@example.com")
	wantUser(t, goKept, node.URL, "Express", "gokept@example.com")
	wantNoUser(t, left, node.URL, "Express")
}

// Go's reaper must delete exactly the sessions that Node's own rule calls
// expired: Node is asked about each (store.expired) before Go reaps.
func TestInteropGoReaperMatchesNode(t *testing.T) {
	const (
		maxAge = 10 * time.Minute
		ttl    = 15 * time.Minute // for originalMaxAge null
	)
	clock := &expresstest.Clock{}
	dir := filepath.Join(t.TempDir(), "sessions")
	node := expresstest.Start(t, expresstest.Config{Dir: dir, Secrets: []string{interopSecret}, MaxAge: maxAge, TTL: ttl})
	g := startGo(t, goConfig{dir: dir, clock: clock, maxAge: maxAge, ttl: ttl})
	clock.Advance(t, 0, node)

	want := map[string]bool{} // name -> expired at the end
	ids := map[string]string{}
	browsers := map[string]*expresstest.Browser{}
	start := func(name, base string, expired bool) {
		b := expresstest.NewBrowser(t)
		login(t, b, base, name+"@example.com")
		ids[name], browsers[name], want[name] = sid(t, b, base), b, expired
		wantUser(t, b, base, base, strings.ToLower(name)+"@example.com")
	}
	// handWritten is a file in Node's format that no route makes: a null
	// originalMaxAge, so Node's ttl applies.
	handWritten := func(name string, lastAccess time.Time, expired bool) {
		id := filesession.NewIDOf(express.IDBytes)
		data := `{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"views":1,"__lastAccess":` +
			strconv.FormatInt(lastAccess.UnixMilli(), 10) + `}`
		if err := os.WriteFile(filepath.Join(dir, id+".json"), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		ids[name], want[name] = id, expired
	}
	t0 := clock.Now()
	start("nodeIdle", node.URL, true)
	start("nodeGoTouched", node.URL, false)
	start("goIdle", g.URL, true)
	handWritten("nullMaxAgeLive", t0, false)
	handWritten("nullMaxAgeOld", t0.Add(-5*time.Minute), true)
	clock.Advance(t, 5*time.Minute, node)
	start("goLate", g.URL, false)
	start("nodeLate", node.URL, false)
	clock.Advance(t, time.Minute, node) // +6m
	wantUser(t, browsers["nodeGoTouched"], g.URL, "Go", "nodegotouched@example.com")
	clock.Advance(t, 2*time.Minute, node) // +8m
	wantUser(t, browsers["nodeLate"], node.URL, "Express", "nodelate@example.com")
	clock.Advance(t, 4*time.Minute, node) // +12m

	nodeSays := map[string]bool{}
	for name, id := range ids {
		expired, missing := node.Expired(t, id)
		if missing {
			t.Fatalf("%s: no file before reaping", name)
		}
		nodeSays[name] = expired
		if expired != want[name] {
			t.Errorf("test setup: Node calls %s expired=%v, the test expected %v", name, expired, want[name])
		}
	}
	n, err := g.store.Reap(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	removed := 0
	for name, id := range ids {
		gone := !exists(dir, id)
		if gone != nodeSays[name] {
			t.Errorf("%s: Go's reaper removed=%v, Node calls it expired=%v", name, gone, nodeSays[name])
		}
		if gone {
			removed++
		}
	}
	if n != removed {
		t.Errorf("Reap reported %d removals, %d files went", n, removed)
	}
}

var lastAccessRE = regexp.MustCompile(`"__lastAccess":[0-9]+`)

// A file Node wrote, loaded by Go and saved unchanged, is byte-identical
// apart from __lastAccess: through the manager (a request that only touches)
// and through the store (Save with nothing to change).
func TestInteropNodeFileSurvivesGoRewrite(t *testing.T) {
	clock := &expresstest.Clock{}
	node, g, dir := pair(t, clock, 24*time.Hour)
	b := expresstest.NewBrowser(t)
	login(t, b, node.URL, "bytes@example.com")
	r := b.PostJSON(node.URL, "/api/data", map[string]any{"data": json.RawMessage(richData)})
	if r.Status != http.StatusOK {
		t.Fatalf("POST /api/data on Express: %d %s", r.Status, r.Body)
	}
	b.PostJSON(node.URL, "/api/count", nil)
	id := sid(t, b, node.URL)
	p := filepath.Join(dir, id+".json")
	orig, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(orig, []byte("\u2028")) || bytes.Contains(orig, []byte(`\u2028`)) || bytes.HasSuffix(orig, []byte("\n")) {
		t.Fatalf("Node's file is not what the test expects of JSON.stringify: %s", orig)
	}

	check := func(how string) {
		t.Helper()
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		la := lastAccessRE.Find(got)
		if la == nil || bytes.Equal(la, lastAccessRE.Find(orig)) {
			t.Fatalf("%s: __lastAccess not moved: %s", how, got)
		}
		if want := lastAccessRE.ReplaceAll(orig, la); !bytes.Equal(got, want) {
			t.Fatalf("%s changed more than __lastAccess:\n got %s\nwant %s", how, got, want)
		}
	}
	clock.Advance(t, 2*time.Minute, node) // past the manager's TouchInterval
	wantUser(t, b, g.URL, "Go", "bytes@example.com")
	check("a Go request that only reads")

	clock.Advance(t, time.Second)
	if err := g.store.Save(context.Background(), id, filesession.Change{At: clock.Now()}); err != nil {
		t.Fatal(err)
	}
	check("an empty Save")

	// Node still reads it, data and all.
	r = b.Get(node.URL + "/api/data")
	var out struct{ Data json.RawMessage }
	r.JSON(t, &out)
	if !jsonEqual(t, out.Data, []byte(richData)) {
		t.Fatalf("Express reads back %s, want %s", out.Data, richData)
	}
}

// richData has a value of every JSON kind, and the characters where
// JavaScript's and Go's encoders differ.
const richData = `{"n":42,"neg":-7,"f":3.25,"small":1e-7,"big":1e+21,"maxSafe":9007199254740991,` +
	`"s":"plain","esc":"quote\" backslash\\ nl\n tab\t ctl\u0001","html":"<a href=\"x\">&amp;</a>",` +
	`"uni":"Zoë 日本 🎉 \u2028\u2029 ` + "\u00e9" + `","t":true,"fl":false,"nul":null,"empty":{},"none":[],` +
	`"arr":[1,"two",[3],{"four":4}],"nested":{"z":{"y":{"x":[{"w":"deep"}]}},"a":1}}`

// jsonEqual compares two JSON texts as values (numbers as float64, as
// JavaScript holds them).
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%v: %s", err, a)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

// Values written by one side are read by the other: numbers, strings,
// nested objects, arrays, unicode. What does not round-trip is pinned here
// too, as the README's Express section lists it.
func TestInteropDataRoundTrip(t *testing.T) {
	node, g, _ := pair(t, nil, 24*time.Hour)
	b := expresstest.NewBrowser(t)
	login(t, b, g.URL, "data@example.com")

	get := func(base string) json.RawMessage {
		t.Helper()
		r := b.Get(base + "/api/data")
		var out struct{ Data json.RawMessage }
		r.JSON(t, &out)
		return out.Data
	}
	put := func(base, data string) {
		t.Helper()
		r := b.PostJSON(base, "/api/data", map[string]json.RawMessage{"data": json.RawMessage(data)})
		if r.Status != http.StatusOK {
			t.Fatalf("POST %s/api/data: %d %s", base, r.Status, r.Body)
		}
	}

	t.Run("ExpressToGo", func(t *testing.T) {
		put(node.URL, richData)
		got := get(g.URL)
		if !jsonEqual(t, got, []byte(richData)) {
			t.Fatalf("Go reads %s, want %s", got, richData)
		}
		// Go hands out the bytes Node wrote: JSON.stringify's, with the
		// shortest number forms and U+2028 raw.
		for _, s := range []string{`"big":1e+21`, `"small":1e-7`, "\u2028", `<a href=\"x\">&amp;</a>`} {
			if !bytes.Contains(got, []byte(s)) {
				t.Errorf("Go's bytes lack %q: %s", s, got)
			}
		}
	})
	t.Run("GoToExpress", func(t *testing.T) {
		put(g.URL, richData)
		if got := get(node.URL); !jsonEqual(t, got, []byte(richData)) {
			t.Fatalf("Express reads %s, want %s", got, richData)
		}
	})
	t.Run("TypedGoValues", func(t *testing.T) {
		// What a Go handler Puts (encoding/json) Node reads as JSON.
		type item struct {
			Name  string            `json:"name"`
			Qty   int               `json:"qty"`
			Price float64           `json:"price"`
			Tags  []string          `json:"tags"`
			Attrs map[string]string `json:"attrs"`
		}
		v := []item{{"Café <b>", 2, 0.1, []string{"ü", "\u2028"}, map[string]string{"b": "2", "a": "1"}}}
		enc, _ := json.Marshal(v)
		put(g.URL, string(enc))
		var back []item
		if err := json.Unmarshal(get(node.URL), &back); err != nil || len(back) != 1 || back[0].Name != v[0].Name ||
			back[0].Tags[1] != "\u2028" || back[0].Price != 0.1 || back[0].Attrs["a"] != "1" {
			t.Fatalf("Express echoes %+v (%v), want %+v", back, err, v)
		}
	})
	t.Run("WhatDoesNotRoundTrip", func(t *testing.T) {
		// Integers beyond 2^53 lose precision in JavaScript.
		put(g.URL, `{"id":9007199254740993,"exp":1E3,"z":-0,"pad":1.50}`)
		got := string(get(node.URL))
		if got != `{"id":9007199254740992,"exp":1000,"z":0,"pad":1.5}` {
			t.Fatalf("Express echoes %s", got)
		}
		// Node writes numbers in their shortest JavaScript form, so a large
		// integer arrives as 1e+21, which does not decode into a Go int.
		put(node.URL, `{"n":1000000000000000000000}`)
		var asInt struct{ N int64 }
		if err := json.Unmarshal(get(g.URL), &asInt); err == nil {
			t.Fatal("1e+21 decoded into an int64")
		}
		var asFloat struct{ N float64 }
		if err := json.Unmarshal(get(g.URL), &asFloat); err != nil || asFloat.N != 1e21 {
			t.Fatalf("as float64: %v %v", asFloat.N, err)
		}
	})
}

// A secret rotation in the Express app's style: the Node app moves from a
// short secret to secret: [strong, old]; Go gets the same list, accepts the
// old cookies and re-signs them with the new secret.
func TestInteropSecretRotation(t *testing.T) {
	const old = "keyboard cat"
	dir := filepath.Join(t.TempDir(), "sessions")
	before := expresstest.Start(t, expresstest.Config{Dir: dir, Secrets: []string{old}})
	after := expresstest.Start(t, expresstest.Config{Dir: dir, Secrets: []string{interopSecret, old}})
	g := startGo(t, goConfig{dir: dir, secrets: []string{interopSecret, old}, maxAge: 24 * time.Hour})

	b := expresstest.NewBrowser(t)
	login(t, b, before.URL, "rot@example.com")
	oldCookie := b.Cookie(g.URL, express.CookieName)
	if _, err := express.NewCodec(old); !errors.Is(err, express.ErrSecret) {
		t.Fatalf("a short signing secret: %v", err)
	}
	wantUser(t, b, g.URL, "Go", "rot@example.com")
	if b.Cookie(g.URL, express.CookieName) == oldCookie {
		t.Fatal("Go did not re-sign a cookie signed with the old secret")
	}
	wantUser(t, b, after.URL, "Express [new, old]", "rot@example.com")
	wantNoUser(t, b, before.URL, "Express [old]") // it cannot verify the new signature
}
