package filestore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
	"github.com/filesession/filesession/storetest"
	"golang.org/x/sys/unix"
)

// t0 is the tests' start time, whole milliseconds like every stored time.
var t0 = time.UnixMilli(1796292220850)

// env is a store on a fresh directory with a fake clock, a log buffer and
// the seam wrapped by a hookFS.
type env struct {
	t     *testing.T
	ctx   context.Context
	dir   string
	clock *storetest.Clock
	fs    *hookFS
	logs  *syncBuffer
	s     *filestore.Store
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Reset()
}

// newEnv opens a store with o (Path, Now and Logger filled in unless set).
func newEnv(t *testing.T, o filestore.Options) *env {
	t.Helper()
	e := &env{t: t, ctx: t.Context(), clock: storetest.NewClock(t0), fs: &hookFS{}, logs: &syncBuffer{}}
	if o.Path == "" {
		o.Path = t.TempDir()
	}
	e.dir = o.Path
	if o.Now == nil {
		o.Now = e.clock.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := filestore.Open(filestore.WithFS(o, e.fs.wrap))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	e.s = s
	t.Cleanup(func() {
		e.fs.setHook(nil)
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

func (e *env) record(kv ...string) filesession.Record {
	m := map[string]json.RawMessage{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = json.RawMessage(kv[i+1])
	}
	now := e.clock.Now()
	return filesession.Record{
		Values: m, Created: now, LastAccess: now, IdleTimeout: 30 * time.Minute,
		Cookie: filesession.CookieAttrs{HTTPOnly: true, Path: "/", SameSite: "lax"},
	}
}

func (e *env) create(kv ...string) string {
	e.t.Helper()
	id := filesession.NewID()
	if err := e.s.Create(e.ctx, id, e.record(kv...)); err != nil {
		e.t.Fatalf("Create: %v", err)
	}
	return id
}

func (e *env) path(id string) string { return filepath.Join(e.dir, "sess_"+id+".json") }

func (e *env) file(id string) string {
	e.t.Helper()
	b, err := os.ReadFile(e.path(id))
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// put writes a session file by hand, as another program would.
func (e *env) put(id, content string, mtime time.Time) {
	e.t.Helper()
	p := e.path(id)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		e.t.Fatal(err)
	}
}

// names lists the directory.
func (e *env) names() []string {
	e.t.Helper()
	ents, err := os.ReadDir(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, d := range ents {
		out = append(out, d.Name())
	}
	return out
}

func (e *env) wantNotFound(op string, err error) {
	e.t.Helper()
	if !errors.Is(err, filesession.ErrNotFound) {
		e.t.Errorf("%s: %v, want ErrNotFound", op, err)
	}
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func iso(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func TestFileFormat(t *testing.T) {
	e := newEnv(t, filestore.Options{})
	id := filesession.NewID()
	r := filesession.Record{
		Values: map[string]json.RawMessage{
			"user":      json.RawMessage(`{"id":1,"name":"Zoë \"x\"","roles":["a"]}`),
			"csrfToken": json.RawMessage(`"tok123"`),
		},
		Created: t0, LastAccess: t0, IdleTimeout: 24 * time.Hour,
		Cookie: filesession.CookieAttrs{HTTPOnly: true, Path: "/", SameSite: "lax"},
	}
	if err := e.s.Create(e.ctx, id, r); err != nil {
		t.Fatal(err)
	}
	want := `{"cookie":{"originalMaxAge":86400000,"expires":"` + iso(t0.Add(24*time.Hour)) +
		`","secure":false,"httpOnly":true,"path":"/","sameSite":"lax"},"csrfToken":"tok123",` +
		`"user":{"id":1,"name":"Zoë \"x\"","roles":["a"]},"__created":` + ms(t0) + `,"__lastAccess":` + ms(t0) + `}`
	if got := e.file(id); got != want {
		t.Errorf("file:\n got %s\nwant %s", got, want)
	}

	// A deadline, a domain, no idle timeout of its own.
	id2 := filesession.NewID()
	r.IdleTimeout = 0
	r.Deadline = t0.Add(time.Hour)
	r.Cookie = filesession.CookieAttrs{Secure: true, Domain: "example.com"}
	r.Values = nil
	if err := e.s.Create(e.ctx, id2, r); err != nil {
		t.Fatal(err)
	}
	want = `{"cookie":{"originalMaxAge":null,"expires":"` + iso(t0.Add(time.Hour)) +
		`","secure":true,"httpOnly":false,"domain":"example.com"},"__created":` + ms(t0) +
		`,"__lastAccess":` + ms(t0) + `,"__deadline":` + ms(t0.Add(time.Hour)) + `}`
	if got := e.file(id2); got != want {
		t.Errorf("file:\n got %s\nwant %s", got, want)
	}
	got, err := e.s.Load(e.ctx, id2)
	if err != nil {
		t.Fatal(err)
	}
	if got.IdleTimeout != filestore.DefaultTTL {
		t.Errorf("IdleTimeout of originalMaxAge null = %v, want the TTL %v", got.IdleTimeout, filestore.DefaultTTL)
	}

	// Times on disk: mtime = LastAccess, atime = ExpiresAt.
	var st unix.Stat_t
	if err := unix.Lstat(e.path(id), &st); err != nil {
		t.Fatal(err)
	}
	if a, m := time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix()); !m.Equal(t0) || !a.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("atime %v mtime %v, want atime = expiry %v and mtime = last access %v", a, m, t0.Add(24*time.Hour), t0)
	}
}

// The encoding is JSON.stringify's: no HTML escaping, U+2028/U+2029 raw,
// only '"', '\\' and control characters escaped, lower-case \u00xx.
func TestJavaScriptCompatibleEncoding(t *testing.T) {
	e := newEnv(t, filestore.Options{})
	id := filesession.NewID()
	r := e.record(
		"<b>&\u2028\u2029", "\"<script>&\u2028\u2029</script>\"",
		"ctl\x01\x1f\t\n\"\\", `1`,
		"ünï", `"ünï"`,
	)
	r.Cookie.Path = "/<a>&\u2028"
	if err := e.s.Create(e.ctx, id, r); err != nil {
		t.Fatal(err)
	}
	f := e.file(id)
	for _, want := range []string{
		"\"<b>&\u2028\u2029\":\"<script>&\u2028\u2029</script>\"",
		`"ctl\u0001\u001f\t\n\"\\":1`,
		`"ünï":"ünï"`,
		"\"path\":\"/<a>&\u2028\"",
	} {
		if !strings.Contains(f, want) {
			t.Errorf("file lacks %q:\n%s", want, f)
		}
	}
	for _, bad := range []string{`\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`, "\n"} {
		if strings.Contains(f, bad) {
			t.Errorf("file contains %q, which JSON.stringify would not write:\n%s", bad, f)
		}
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(f), &v); err != nil {
		t.Fatalf("file is not valid JSON: %v", err)
	}
	got, err := e.s.Load(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cookie.Path != r.Cookie.Path || string(got.Values["ctl\x01\x1f\t\n\"\\"]) != "1" {
		t.Errorf("round trip: cookie path %q, values %v", got.Cookie.Path, got.Values)
	}
}

func TestValuesCompactedAndValidated(t *testing.T) {
	e := newEnv(t, filestore.Options{})
	id := e.create("a", "1")
	err := e.s.Save(e.ctx, id, filesession.Change{Set: map[string]json.RawMessage{"b": json.RawMessage("{ \"x\" : [1, 2],\n\"s\":\" keep  spaces \" }")}, At: t0})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.s.Load(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"x":[1,2],"s":" keep  spaces "}`; string(got.Values["b"]) != want {
		t.Errorf("compacted value = %s, want %s", got.Values["b"], want)
	}
	before := e.file(id)
	for _, bad := range []string{`{"x":`, `nope`, `1 2`, `"unterminated`, `{"a":1}}`, ``} {
		err := e.s.Save(e.ctx, id, filesession.Change{Set: map[string]json.RawMessage{"c": json.RawMessage(bad)}, At: t0})
		if err == nil || errors.Is(err, filesession.ErrNotFound) {
			t.Errorf("Save of invalid JSON %q: %v, want an error (not ErrNotFound)", bad, err)
		}
	}
	for _, k := range []string{"cookie", "__lastAccess", "__anything"} {
		err := e.s.Save(e.ctx, id, filesession.Change{Set: map[string]json.RawMessage{k: json.RawMessage(`1`)}, At: t0})
		if err == nil {
			t.Errorf("Save of reserved key %q succeeded", k)
		}
	}
	if after := e.file(id); after != before {
		t.Errorf("failed Saves changed the file:\n%s\n%s", before, after)
	}
}

// A file loaded and saved with an empty Change is byte-identical except
// __lastAccess.
func TestEmptySaveChangesOnlyLastAccess(t *testing.T) {
	e := newEnv(t, filestore.Options{})
	r := e.record("user", `{"z":1,"a":2}`, "n", `9007199254740993`, "s", `"\u00e9<"`)
	r.Deadline = t0.Add(2 * time.Hour)
	id := filesession.NewID()
	if err := e.s.Create(e.ctx, id, r); err != nil {
		t.Fatal(err)
	}
	before := e.file(id)
	later := e.clock.Advance(5 * time.Minute)
	if err := e.s.Save(e.ctx, id, filesession.Change{At: later}); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(before, `"__lastAccess":`+ms(t0), `"__lastAccess":`+ms(later), 1)
	if got := e.file(id); got != want {
		t.Errorf("after an empty Save:\n got %s\nwant %s", got, want)
	}
	// The same through Update with a no-op fn.
	before = e.file(id)
	if err := e.s.Update(e.ctx, id, func(*filesession.Record) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := e.file(id); got != before {
		t.Errorf("after a no-op Update:\n got %s\nwant %s", got, before)
	}
}

// A file another program wrote, with spacing, key order, escapes and
// fields this store does not know: a rewrite keeps every byte it does not
// change.
func TestRewritePreservesBytes(t *testing.T) {
	e := newEnv(t, filestore.Options{})
	id := filesession.NewID()
	cookie := `{"originalMaxAge":86400000,"partitioned":true,"priority":"high","expires":"2026-12-04T10:03:40.849Z","secure":false,"httpOnly":true,"path":"/","sameSite":true,"extra":[1]}`
	orig := `{"cookie":` + cookie + `,"views":9,"nested":{"b":1, "a":[1 , 2]},"s":"\u003c","gone":1,"__lastAccess":` + ms(t0) + `,"__custom":"keep","__created":` + ms(t0.Add(-time.Hour)) + `}`
	e.put(id, orig, t0)

	got, err := e.s.Load(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	wantCookie := filesession.CookieAttrs{HTTPOnly: true, Path: "/", SameSite: "strict"}
	if got.Cookie != wantCookie || got.IdleTimeout != 24*time.Hour || !got.Created.Equal(t0.Add(-time.Hour)) || !got.LastAccess.Equal(t0) {
		t.Errorf("decoded %+v", got)
	}
	if string(got.Values["nested"]) != `{"b":1, "a":[1 , 2]}` || string(got.Values["s"]) != `"\u003c"` {
		t.Errorf("values not kept byte for byte: %q %q", got.Values["nested"], got.Values["s"])
	}
	if _, ok := got.Values["__custom"]; ok {
		t.Error(`"__custom" returned as a value`)
	}

	// Values: changed in place, deleted, new ones appended in order.
	at1 := t0.Add(time.Minute)
	c := filesession.Change{
		Set:    map[string]json.RawMessage{"views": json.RawMessage(`10`), "new2": json.RawMessage(`"b"`), "new1": json.RawMessage(`"a"`)},
		Delete: []string{"gone"},
		At:     at1,
	}
	if err := e.s.Save(e.ctx, id, c); err != nil {
		t.Fatal(err)
	}
	want := `{"cookie":` + cookie + `,"views":10,"nested":{"b":1, "a":[1 , 2]},"s":"\u003c","__lastAccess":` + ms(at1) +
		`,"__custom":"keep","__created":` + ms(t0.Add(-time.Hour)) + `,"new1":"a","new2":"b"}`
	if got := e.file(id); got != want {
		t.Errorf("after Save of values:\n got %s\nwant %s", got, want)
	}

	// The cookie: only changed fields are rewritten (sameSite true stays,
	// strict being strict), unknown ones kept, expires recomputed.
	at2 := t0.Add(2 * time.Minute)
	if err := e.s.Save(e.ctx, id, filesession.Change{At: at2, Cookie: &filesession.CookieAttrs{Secure: true, HTTPOnly: true, Path: "/", SameSite: "strict"}}); err != nil {
		t.Fatal(err)
	}
	cookie2 := `{"originalMaxAge":86400000,"partitioned":true,"priority":"high","expires":"` + iso(at2.Add(24*time.Hour)) + `","secure":true,"httpOnly":true,"path":"/","sameSite":true,"extra":[1]}`
	want = `{"cookie":` + cookie2 + `,"views":10,"nested":{"b":1, "a":[1 , 2]},"s":"\u003c","__lastAccess":` + ms(at2) +
		`,"__custom":"keep","__created":` + ms(t0.Add(-time.Hour)) + `,"new1":"a","new2":"b"}`
	if got := e.file(id); got != want {
		t.Errorf("after Save of the cookie:\n got %s\nwant %s", got, want)
	}

	// A new field goes to its place in express-session's order; the idle
	// timeout and a deadline are written where they belong.
	at3 := t0.Add(3 * time.Minute)
	dl := t0.Add(90 * time.Minute)
	if err := e.s.Save(e.ctx, id, filesession.Change{At: at3, IdleTimeout: time.Hour, Deadline: dl,
		Cookie: &filesession.CookieAttrs{Secure: true, HTTPOnly: true, Path: "/", Domain: "example.com", SameSite: "strict"}}); err != nil {
		t.Fatal(err)
	}
	cookie3 := `{"originalMaxAge":3600000,"partitioned":true,"priority":"high","expires":"` + iso(at3.Add(time.Hour)) + `","secure":true,"httpOnly":true,"domain":"example.com","path":"/","sameSite":true,"extra":[1]}`
	want = `{"cookie":` + cookie3 + `,"views":10,"nested":{"b":1, "a":[1 , 2]},"s":"\u003c","__lastAccess":` + ms(at3) +
		`,"__custom":"keep","__created":` + ms(t0.Add(-time.Hour)) + `,"new1":"a","new2":"b","__deadline":` + ms(dl) + `}`
	if got := e.file(id); got != want {
		t.Errorf("after Save of metadata:\n got %s\nwant %s", got, want)
	}
}

// A cookie object with its keys out of express-session's order keeps that
// order; a new field goes before the first stored field that
// express-session writes after it.
func TestCookieOutOfOrder(t *testing.T) {
	e := newEnv(t, filestore.Options{})
	id := filesession.NewID()
	e.put(id, `{"cookie":{"path":"/","expires":null,"originalMaxAge":60000,"httpOnly":true},"__created":`+ms(t0)+`,"__lastAccess":`+ms(t0)+`}`, t0)
	c := &filesession.CookieAttrs{Path: "/", HTTPOnly: true, Secure: true}
	if err := e.s.Save(e.ctx, id, filesession.Change{At: t0, Cookie: c}); err != nil {
		t.Fatal(err)
	}
	// secure comes before path in express-session's order, and path is the
	// first stored field: secure goes before it, and nothing is duplicated.
	want := `{"cookie":{"secure":true,"path":"/","expires":"` + iso(t0.Add(time.Minute)) + `","originalMaxAge":60000,"httpOnly":true},"__created":` + ms(t0) + `,"__lastAccess":` + ms(t0) + `}`
	if got := e.file(id); got != want {
		t.Errorf("file:\n got %s\nwant %s", got, want)
	}
}

// A file as session-file-store writes it: no __created, originalMaxAge
// null, expires null.
func TestNodeFile(t *testing.T) {
	e := newEnv(t, filestore.Options{TTL: time.Hour})
	id := filesession.NewID()
	la := t0.Add(-10 * time.Minute)
	e.put(id, `{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"views":9,"__lastAccess":`+ms(la)+`}`, la.Add(-time.Minute))
	got, err := e.s.Load(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.IdleTimeout != time.Hour || !got.LastAccess.Equal(la) || string(got.Values["views"]) != "9" {
		t.Errorf("decoded %+v", got)
	}
	if !got.Created.Equal(la.Add(-time.Minute)) {
		t.Errorf("Created = %v, want the file's mtime %v", got.Created, la.Add(-time.Minute))
	}
	// A Touch moves the mtime past __lastAccess: LastAccess follows it.
	if err := e.s.Touch(e.ctx, id, t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.s.Load(e.ctx, id); !got.LastAccess.Equal(t0) {
		t.Errorf("LastAccess after Touch = %v, want %v", got.LastAccess, t0)
	}
	// Saving pins __created (from the mtime, which the Touch moved) and
	// keeps originalMaxAge null.
	if err := e.s.Save(e.ctx, id, filesession.Change{Set: map[string]json.RawMessage{"views": json.RawMessage("10")}, At: t0}); err != nil {
		t.Fatal(err)
	}
	want := `{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"views":10,"__lastAccess":` + ms(t0) + `,"__created":` + ms(t0) + `}`
	if got := e.file(id); got != want {
		t.Errorf("after Save:\n got %s\nwant %s", got, want)
	}
	// Expiry from the TTL.
	e.clock.Advance(time.Hour)
	_, err = e.s.Load(e.ctx, id)
	e.wantNotFound("Load after TTL", err)
}

func TestPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "sessions")
	e := newEnv(t, filestore.Options{Path: dir})
	id := e.create("a", "1")
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{dir, os.ModeDir | 0o700},
		{e.path(id), 0o600},
		{filepath.Join(dir, ".filesession.lock"), 0o600},
	} {
		fi, err := os.Lstat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != c.mode {
			t.Errorf("%s: mode %v, want %v", filepath.Base(c.path), fi.Mode(), c.mode)
		}
	}
	// A world-readable file (as Node writes them) is accepted.
	if err := os.Chmod(e.path(id), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Load(e.ctx, id); err != nil {
		t.Errorf("Load of a 0644 file: %v", err)
	}
}

func TestOpenRefusesUnsafeDirectories(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(base, "file")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o770); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, path, want string }{
		{"Symlink", link, "symlink"},
		{"File", plain, "not a directory"},
		{"GroupWritable", open, "writable by group"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := filestore.Open(filestore.Options{Path: c.path, Logger: quiet})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded", c.name)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("Open: %v, want it to say %q", err, c.want)
			}
		})
	}
	t.Run("ForeignOwner", func(t *testing.T) {
		h := &hookFS{stat: func(c call, st *unix.Stat_t) {
			if c.name == "." {
				st.Uid++
			}
		}}
		s, err := filestore.Open(filestore.WithFS(filestore.Options{Path: real, Logger: quiet}, h.wrap))
		if err == nil {
			s.Close()
			t.Fatal("Open of a directory owned by someone else succeeded")
		}
		if !strings.Contains(err.Error(), "owned by uid") {
			t.Errorf("Open: %v", err)
		}
	})
	t.Run("BadOptions", func(t *testing.T) {
		for _, o := range []filestore.Options{
			{Prefix: ".hidden"}, {Prefix: "a/b"}, {Extension: "/x"}, {NoPrefix: true, Prefix: "x"},
			{TTL: -time.Second}, {Extension: ".tmp"}, {IDLength: -1}, {Sync: 7},
		} {
			o.Path = t.TempDir()
			if s, err := filestore.Open(o); err == nil {
				s.Close()
				t.Errorf("Open(%+v) succeeded", o)
			}
		}
	})
}

func TestNoPrefixAndOtherNames(t *testing.T) {
	e := newEnv(t, filestore.Options{NoPrefix: true, Extension: ".sess", IDLength: 32})
	id := filesession.NewIDOf(24)
	if err := e.s.Create(e.ctx, id, e.record("a", "1")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, id+".sess")); err != nil {
		t.Errorf("file name: %v (have %v)", err, e.names())
	}
	var ids []string
	if err := e.s.List(e.ctx, func(id string, _ filesession.Record) error { ids = append(ids, id); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != id {
		t.Errorf("List = %v", ids)
	}
	_, err := e.s.Load(e.ctx, filesession.NewID()) // 43 characters: wrong length here
	if !errors.Is(err, filesession.ErrInvalidID) {
		t.Errorf("Load of a 43-character ID with IDLength 32: %v", err)
	}
}

func TestNoTempFilesLeft(t *testing.T) {
	e := newEnv(t, filestore.Options{Sync: filestore.SyncNone})
	var live []string
	for i := range 20 {
		id := e.create("n", "0")
		for j := range 10 {
			c := filesession.Change{Set: map[string]json.RawMessage{fmt.Sprint("k", j): json.RawMessage(strconv.Itoa(i))}, At: e.clock.Now()}
			if err := e.s.Save(e.ctx, id, c); err != nil {
				t.Fatal(err)
			}
		}
		if i%2 == 0 {
			next := filesession.NewID()
			if err := e.s.Renew(e.ctx, id, next, filesession.Change{At: e.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			id = next
		}
		if i%5 == 0 {
			if err := e.s.Delete(e.ctx, id); err != nil {
				t.Fatal(err)
			}
			continue
		}
		live = append(live, "sess_"+id+".json")
	}
	want := append(live, ".filesession.lock")
	slices.Sort(want)
	got := e.names()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("directory holds %v, want only the %d live sessions and the lock file", got, len(live))
	}
}

// List and Reap stream the directory in batches; many sessions take many.
func TestListManySessions(t *testing.T) {
	e := newEnv(t, filestore.Options{Sync: filestore.SyncNone})
	want := map[string]bool{}
	for range 700 {
		want[e.create("a", "1")] = true
	}
	e.fs.reset()
	seen := map[string]bool{}
	err := e.s.List(e.ctx, func(id string, r filesession.Record) error {
		if seen[id] || !want[id] || string(r.Values["a"]) != "1" {
			t.Errorf("List gave %s (seen before: %v, known: %v)", id[:6], seen[id], want[id])
		}
		seen[id] = true
		return nil
	})
	if err != nil || len(seen) != len(want) {
		t.Errorf("List: %v, %d of %d sessions", err, len(seen), len(want))
	}
	if n := e.fs.count("readdir"); n < 3 {
		t.Errorf("List read the directory in %d batches, want at least 3 for 700 entries", n)
	}
	e.clock.Advance(time.Hour)
	if n, err := e.s.Reap(e.ctx); err != nil || n != len(want) {
		t.Errorf("Reap = %d, %v; want %d", n, err, len(want))
	}
	if names := e.names(); len(names) != 1 {
		t.Errorf("after Reap %d entries remain", len(names))
	}
}

func TestCorruptFilesQuarantined(t *testing.T) {
	valid := `{"cookie":{"originalMaxAge":60000},"a":1,"__lastAccess":` + ms(t0) + `}`
	for _, c := range []struct{ name, content string }{
		{"Truncated", valid[:len(valid)/2]},
		{"TruncatedAtEnd", valid[:len(valid)-1]},
		{"Empty", ""},
		{"Null", "null"},
		{"NotJSON", "this is not json"},
		{"Array", `[1,2]`},
		{"String", `"x"`},
		{"TrailingGarbage", valid + `x`},
		{"TwoObjects", valid + valid},
		{"BadEscape", `{"a":"\x"}`},
		{"ControlChar", "{\"a\":\"\x01\"}"},
		{"Oversize", `{"a":"` + strings.Repeat("x", 2000) + `"}`},
		{"DeepNesting", strings.Repeat("[", 20000) + strings.Repeat("]", 20000)},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, filestore.Options{MaxSize: 1024})
			id := filesession.NewID()
			e.put(id, c.content, t0)
			_, err := e.s.Load(e.ctx, id)
			if !errors.Is(err, filesession.ErrCorrupt) || !errors.Is(err, filesession.ErrNotFound) {
				t.Fatalf("Load: %v, want ErrCorrupt and ErrNotFound", err)
			}
			if strings.Contains(err.Error(), id) || strings.Contains(e.logs.String(), id) {
				t.Error("the raw session ID appears in the error or the log")
			}
			if !strings.Contains(e.logs.String(), "quarantined") {
				t.Errorf("no quarantine warning in the log: %s", e.logs)
			}
			if _, err := os.Lstat(e.path(id)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("corrupt file still at its name: %v", err)
			}
			b, err := os.ReadFile(e.path(id) + ".corrupt")
			if err != nil || string(b) != c.content {
				t.Errorf("quarantined copy: %v (same bytes: %v)", err, string(b) == c.content)
			}
			_, err = e.s.Load(e.ctx, id)
			if !errors.Is(err, filesession.ErrNotFound) || errors.Is(err, filesession.ErrCorrupt) {
				t.Errorf("second Load: %v, want plain ErrNotFound", err)
			}
			// Writers see the same.
			e.put(id, c.content, t0)
			err = e.s.Save(e.ctx, id, filesession.Change{At: t0})
			if !errors.Is(err, filesession.ErrCorrupt) {
				t.Errorf("Save of a corrupt file: %v, want ErrCorrupt", err)
			}
			// And the reaper leaves .corrupt files alone.
			e.clock.Advance(48 * time.Hour)
			if _, err := e.s.Reap(e.ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(e.path(id) + ".corrupt"); err != nil {
				t.Errorf("Reap removed the quarantined file: %v", err)
			}
		})
	}
}

// Invalid IDs never reach the filesystem: the hook fails the test on any
// call.
func TestInvalidIDsMakeNoFilesystemCall(t *testing.T) {
	e := newEnv(t, filestore.Options{})
	live := e.create("a", "1")
	e.fs.setHook(func(c call) error {
		t.Errorf("filesystem call %+v for an invalid ID", c)
		return unix.EIO
	})
	now := e.clock.Now()
	for _, bad := range []string{"../x", "a/b", "", ".", "..", strings.Repeat("a", 44), strings.Repeat("a", 42), strings.Repeat("a", 42) + "/", strings.Repeat("a", 4096)} {
		ops := map[string]error{
			"Load":      func() error { _, err := e.s.Load(e.ctx, bad); return err }(),
			"Create":    e.s.Create(e.ctx, bad, e.record("a", "1")),
			"Save":      e.s.Save(e.ctx, bad, filesession.Change{At: now}),
			"Touch":     e.s.Touch(e.ctx, bad, now, now.Add(time.Hour)),
			"Update":    e.s.Update(e.ctx, bad, func(*filesession.Record) error { t.Error("fn called"); return nil }),
			"RenewFrom": e.s.Renew(e.ctx, bad, filesession.NewID(), filesession.Change{At: now}),
			"RenewTo":   e.s.Renew(e.ctx, live, bad, filesession.Change{At: now}),
			"Delete":    e.s.Delete(e.ctx, bad),
		}
		for op, err := range ops {
			if !errors.Is(err, filesession.ErrInvalidID) || !errors.Is(err, filesession.ErrNotFound) {
				t.Errorf("%s(%q): %v, want ErrInvalidID", op, bad, err)
			}
		}
	}
}

func TestNonRegularFilesAtSessionNames(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "target.json")
	content := `{"cookie":{"originalMaxAge":3600000},"secret":"outside","__lastAccess":` + ms(t0) + `}`
	if err := os.WriteFile(outside, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		make func(path string) error
		warn string
	}{
		{"Symlink", func(p string) error { return os.Symlink(outside, p) }, "symlink"},
		{"FIFO", func(p string) error { return unix.Mkfifo(p, 0o600) }, "not a regular file"},
		{"Directory", func(p string) error { return os.Mkdir(p, 0o700) }, "not a regular file"},
		{"GroupWritable", func(p string) error {
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				return err
			}
			return os.Chmod(p, 0o620)
		}, "writable by group"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, filestore.Options{})
			id := filesession.NewID()
			if err := c.make(e.path(id)); err != nil {
				t.Fatal(err)
			}
			_, err := e.s.Load(e.ctx, id)
			e.wantNotFound("Load", err)
			if errors.Is(err, filesession.ErrCorrupt) {
				t.Errorf("Load: %v, want plain not found, not corrupt", err)
			}
			if !strings.Contains(e.logs.String(), c.warn) {
				t.Errorf("log lacks %q: %s", c.warn, e.logs)
			}
			e.wantNotFound("Save", e.s.Save(e.ctx, id, filesession.Change{At: t0}))
			e.wantNotFound("Touch", e.s.Touch(e.ctx, id, t0, t0.Add(time.Hour)))
			e.wantNotFound("Update", e.s.Update(e.ctx, id, func(*filesession.Record) error { return nil }))
			e.wantNotFound("Renew", e.s.Renew(e.ctx, id, filesession.NewID(), filesession.Change{At: t0}))
			if err := e.s.List(e.ctx, func(string, filesession.Record) error { t.Error("List gave a session"); return nil }); err != nil {
				t.Errorf("List: %v", err)
			}
			if n, err := e.s.Reap(e.ctx); n != 0 || err != nil {
				t.Errorf("Reap = %d, %v", n, err)
			}
			if _, err := os.Lstat(e.path(id)); err != nil {
				t.Errorf("the %s was removed or moved: %v", c.name, err)
			}
			if b, _ := os.ReadFile(outside); string(b) != content {
				t.Error("the symlink's target changed")
			}
		})
	}
	t.Run("ForeignOwner", func(t *testing.T) {
		e := newEnv(t, filestore.Options{})
		id := e.create("a", "1")
		e.fs.stat = func(c call, st *unix.Stat_t) {
			if strings.HasPrefix(c.name, "sess_") {
				st.Uid++
			}
		}
		_, err := e.s.Load(e.ctx, id)
		e.wantNotFound("Load of a file owned by someone else", err)
		if !strings.Contains(e.logs.String(), "not owned") {
			t.Errorf("log: %s", e.logs)
		}
	})
}

func TestENOENTIsNotRetriedOrLogged(t *testing.T) {
	e := newEnv(t, filestore.Options{Retries: 3})
	e.logs.Reset()
	e.fs.reset()
	id := filesession.NewID()
	_, err := e.s.Load(e.ctx, id)
	e.wantNotFound("Load", err)
	if calls := e.fs.reset(); len(calls) != 1 || calls[0].op != "open" {
		t.Errorf("Load of a missing session made calls %+v, want one open", calls)
	}
	e.wantNotFound("Touch", e.s.Touch(e.ctx, id, t0, t0.Add(time.Hour)))
	if calls := e.fs.reset(); len(calls) != 1 || calls[0].op != "lstat" {
		t.Errorf("Touch of a missing session made calls %+v, want one lstat", calls)
	}
	e.wantNotFound("Save", e.s.Save(e.ctx, id, filesession.Change{At: t0}))
	if n := e.fs.count("open"); n != 1 {
		t.Errorf("Save of a missing session opened %d files, want 1", n)
	}
	if l := e.logs.String(); l != "" {
		t.Errorf("a missing session was logged: %s", l)
	}
}

func TestTransientErrorsRetried(t *testing.T) {
	for _, errno := range []unix.Errno{unix.EINTR, unix.EAGAIN, unix.EMFILE} {
		t.Run(errno.Error(), func(t *testing.T) {
			e := newEnv(t, filestore.Options{Retries: 2})
			id := e.create("a", "1")
			fails := 0
			e.fs.setHook(func(c call) error {
				if c.op == "open" && (strings.HasPrefix(c.name, "sess_") || strings.HasSuffix(c.name, ".tmp")) && fails < 2 {
					fails++
					return errno
				}
				return nil
			})
			if _, err := e.s.Load(e.ctx, id); err != nil {
				t.Errorf("Load with two transient failures: %v", err)
			}
			fails = 0
			if err := e.s.Save(e.ctx, id, filesession.Change{Set: map[string]json.RawMessage{"b": json.RawMessage("2")}, At: t0}); err != nil {
				t.Errorf("Save with two transient failures: %v", err)
			}
			if !strings.Contains(e.logs.String(), "retrying") {
				t.Errorf("retries not logged: %s", e.logs)
			}
			if strings.Contains(e.logs.String(), id) {
				t.Error("raw ID in the log")
			}
			// Three failures are one too many.
			fails = -1
			_, err := e.s.Load(e.ctx, id)
			if !errors.Is(err, errno) || errors.Is(err, filesession.ErrNotFound) {
				t.Errorf("Load with three transient failures: %v, want %v (not ErrNotFound)", err, errno)
			}
		})
	}
	t.Run("FinalErrorsNotRetried", func(t *testing.T) {
		for _, errno := range []unix.Errno{unix.ENOSPC, unix.EDQUOT, unix.EIO, unix.EACCES, unix.EPERM, unix.EROFS} {
			e := newEnv(t, filestore.Options{Retries: 3})
			id := e.create("a", "1")
			e.fs.setHook(func(c call) error {
				if c.op == "write" {
					return errno
				}
				return nil
			})
			e.fs.reset()
			err := e.s.Save(e.ctx, id, filesession.Change{At: t0})
			if !errors.Is(err, errno) {
				t.Errorf("Save failing with %v: %v", errno, err)
			}
			if n := e.fs.count("write"); n != 1 {
				t.Errorf("%v: %d write attempts, want 1", errno, n)
			}
		}
	})
}

// The seam proven: a disk that fills up at each step of a write leaves the
// old version intact and no temporary file behind.
func TestWriteFailureKeepsOldVersion(t *testing.T) {
	for _, op := range []string{"write", "futimes", "sync", "close", "rename"} {
		t.Run(op, func(t *testing.T) {
			e := newEnv(t, filestore.Options{Retries: 3})
			id := e.create("a", `"old"`)
			before := e.file(id)
			e.fs.setHook(func(c call) error {
				if c.op == op && strings.HasSuffix(c.name, ".tmp") {
					return unix.ENOSPC
				}
				return nil
			})
			err := e.s.Save(e.ctx, id, filesession.Change{Set: map[string]json.RawMessage{"a": json.RawMessage(`"new"`)}, At: t0.Add(time.Minute)})
			if !errors.Is(err, unix.ENOSPC) || errors.Is(err, filesession.ErrNotFound) {
				t.Fatalf("Save: %v, want ENOSPC", err)
			}
			if got := e.file(id); got != before {
				t.Errorf("file changed:\n%s\n%s", before, got)
			}
			got, err := e.s.Load(e.ctx, id)
			if err != nil || string(got.Values["a"]) != `"old"` {
				t.Errorf("Load after the failed Save: %v %s", err, got.Values["a"])
			}
			for _, n := range e.names() {
				if strings.HasSuffix(n, ".tmp") {
					t.Errorf("temporary file %s left behind", n)
				}
			}
			// Create and Renew fail cleanly too.
			newID := filesession.NewID()
			if err := e.s.Create(e.ctx, newID, e.record("x", "1")); !errors.Is(err, unix.ENOSPC) {
				t.Errorf("Create: %v", err)
			}
			if err := e.s.Renew(e.ctx, id, newID, filesession.Change{At: t0}); !errors.Is(err, unix.ENOSPC) {
				t.Errorf("Renew: %v", err)
			}
			e.fs.setHook(nil)
			if _, err := e.s.Load(e.ctx, newID); !errors.Is(err, filesession.ErrNotFound) {
				t.Errorf("Load of the failed Create/Renew target: %v", err)
			}
			if _, err := e.s.Load(e.ctx, id); err != nil {
				t.Errorf("Load of the session after a failed Renew: %v", err)
			}
		})
	}
}

func TestTouchSystemCalls(t *testing.T) {
	e := newEnv(t, filestore.Options{})
	id := e.create("a", "1")
	// This store wrote the session: Touch knows it is live, one utimensat.
	e.fs.reset()
	at := e.clock.Advance(time.Minute)
	if err := e.s.Touch(e.ctx, id, at, at.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if calls := e.fs.reset(); len(calls) != 1 || calls[0].op != "utimes" {
		t.Errorf("Touch after this store's write made calls %+v, want one utimes", calls)
	}
	got, err := e.s.Load(e.ctx, id)
	if err != nil || !got.LastAccess.Equal(at) {
		t.Errorf("after Touch: %v, LastAccess %v, want %v", err, got.LastAccess, at)
	}

	// Another store (as another process would) has no memory of it: the
	// access time on disk, in the future, says it is live.
	o2 := newEnvClock(t, e.dir, e.clock)
	at = e.clock.Advance(time.Minute)
	if err := o2.s.Touch(o2.ctx, id, at, at.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if calls := o2.fs.reset(); len(calls) != 2 || calls[0].op != "lstat" || calls[1].op != "utimes" {
		t.Errorf("Touch by another store made calls %+v, want lstat and utimes", calls)
	}

	// A tool moved the access time to the past: a Touch without memory
	// reads the file and, the session being alive, touches it.
	o3 := newEnvClock(t, e.dir, e.clock)
	if err := os.Chtimes(e.path(id), t0.Add(-time.Hour), at); err != nil {
		t.Fatal(err)
	}
	at = e.clock.Advance(time.Minute)
	if err := o3.s.Touch(o3.ctx, id, at, at.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if o3.fs.count("open") != 1 {
		t.Errorf("Touch with a past hint made calls %+v, want it to read the file", o3.fs.reset())
	}

	// Memory never outlives the file: deleted by another store, the
	// session is not found by a Touch that remembers it as live.
	if err := o3.s.Delete(o3.ctx, id); err != nil {
		t.Fatal(err)
	}
	e.wantNotFound("Touch after another store's Delete", e.s.Touch(e.ctx, id, at, at.Add(time.Hour)))
	e.wantNotFound("Touch of a session never created", e.s.Touch(e.ctx, filesession.NewID(), at, at.Add(time.Hour)))
	if _, err := os.Lstat(e.path(id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Touch created a file: %v", err)
	}
}

// newEnvClock opens another store on dir sharing clock.
func newEnvClock(t *testing.T, dir string, clock *storetest.Clock) *env {
	t.Helper()
	e := newEnv(t, filestore.Options{Path: dir, Now: clock.Now})
	e.clock = clock
	e.fs.reset()
	return e
}

func TestReaper(t *testing.T) {
	e := newEnv(t, filestore.Options{})
	short := e.record("who", `"short"`)
	short.IdleTimeout = 10 * time.Minute
	shortID := filesession.NewID()
	if err := e.s.Create(e.ctx, shortID, short); err != nil {
		t.Fatal(err)
	}
	liveID := e.create("who", `"live"`) // 30 minutes
	hintID := e.create("who", `"hint"`)
	now := e.clock.Advance(20 * time.Minute)
	// A wrong, past hint on a live session: Reap reads it and fixes it.
	if err := os.Chtimes(e.path(hintID), t0, t0); err != nil {
		t.Fatal(err)
	}

	tmpID := filesession.NewID()
	stale := ".sess_" + tmpID + ".json.0123456789abcdef.tmp"
	fresh := ".sess_" + tmpID + ".json.fedcba9876543210.tmp"
	others := []string{
		"foo.txt",
		".sess_" + tmpID + ".json.0123456789ABCDEF.tmp", // not our pattern (upper case)
		".sess_" + tmpID + ".json.123.tmp",              // not our pattern (short)
		"sess_" + tmpID + ".json.tmp",                   // not our pattern
		"sess_" + tmpID + ".json.corrupt",               // quarantined
		"sess_short.json",                               // not an ID
	}
	for _, n := range append([]string{stale, fresh}, others...) {
		if err := os.WriteFile(filepath.Join(e.dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		mt := now.Add(-11 * time.Minute)
		if n == fresh {
			mt = now.Add(-time.Minute)
		}
		if err := os.Chtimes(filepath.Join(e.dir, n), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	e.fs.reset()
	n, err := e.s.Reap(e.ctx)
	if err != nil || n != 1 {
		t.Fatalf("Reap = %d, %v; want 1 removed", n, err)
	}
	// Live sessions with a future hint are not even opened.
	for _, c := range e.fs.reset() {
		if c.op == "open" && c.name == "sess_"+liveID+".json" {
			t.Error("Reap opened a session whose hint says it is alive")
		}
	}
	want := append([]string{".filesession.lock", fresh, "sess_" + liveID + ".json", "sess_" + hintID + ".json"}, others...)
	slices.Sort(want)
	got := e.names()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("after Reap the directory holds\n%v\nwant\n%v", got, want)
	}
	var st unix.Stat_t
	if err := unix.Lstat(e.path(hintID), &st); err != nil {
		t.Fatal(err)
	}
	if a := time.Unix(st.Atim.Unix()); !a.Equal(t0.Add(30 * time.Minute)) {
		t.Errorf("hint after Reap = %v, want the expiry %v", a, t0.Add(30*time.Minute))
	}
	if _, err := e.s.Load(e.ctx, hintID); err != nil {
		t.Errorf("Load of the session with the fixed hint: %v", err)
	}
}

func TestCloseStopsReaper(t *testing.T) {
	passes := make(chan struct{}, 1)
	e := newEnv(t, filestore.Options{ReapInterval: time.Millisecond})
	e.create("a", "1")
	e.fs.setHook(func(c call) error {
		if c.op == "readdir" {
			select {
			case passes <- struct{}{}:
			default:
			}
		}
		return nil
	})
	<-passes // the background reaper ran
	<-passes // and again
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close waited for the reaper goroutine: nothing may touch the
	// filesystem any more.
	e.fs.setHook(func(c call) error {
		t.Errorf("filesystem call %+v after Close", c)
		return unix.EIO
	})
	if err := e.s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := e.s.Load(e.ctx, filesession.NewID()); !errors.Is(err, filestore.ErrClosed) {
		t.Errorf("Load after Close: %v, want ErrClosed", err)
	}
	if _, err := e.s.Reap(e.ctx); !errors.Is(err, filestore.ErrClosed) {
		t.Errorf("Reap after Close: %v, want ErrClosed", err)
	}
}

// Two Stores on one directory have separate lock descriptors, so they
// exclude each other exactly as two processes do.
func TestLocksAcrossStores(t *testing.T) {
	dir := t.TempDir()
	a := newEnv(t, filestore.Options{Path: dir, Sync: filestore.SyncNone})
	b := newEnv(t, filestore.Options{Path: dir, Sync: filestore.SyncNone, LockTimeout: 20 * time.Millisecond})
	id := a.create("n", "0")

	// a holds the session's lock inside Update; b times out.
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- a.s.Update(a.ctx, id, func(r *filesession.Record) error {
			close(inside)
			<-release
			r.Values["n"] = json.RawMessage("1")
			return nil
		})
	}()
	<-inside
	err := b.s.Save(b.ctx, id, filesession.Change{At: t0})
	if !errors.Is(err, filesession.ErrLockTimeout) {
		t.Errorf("Save while another store holds the lock: %v, want ErrLockTimeout", err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, time.Millisecond)
	err = b.s.Delete(ctx, id)
	cancel()
	if !errors.Is(err, filesession.ErrLockTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Delete with a short deadline: %v, want ErrLockTimeout and DeadlineExceeded", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Counters incremented from two stores lose nothing.
	c := newEnv(t, filestore.Options{Path: dir, Sync: filestore.SyncNone})
	var wg sync.WaitGroup
	for _, s := range []*filestore.Store{a.s, c.s} {
		for range 4 {
			wg.Go(func() {
				for range 25 {
					err := s.Update(t.Context(), id, func(r *filesession.Record) error {
						n, _ := strconv.Atoi(string(r.Values["n"]))
						r.Values["n"] = json.RawMessage(strconv.Itoa(n + 1))
						return nil
					})
					if err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
	wg.Wait()
	got, err := a.s.Load(a.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(1 + 2*4*25); string(got.Values["n"]) != want {
		t.Errorf("counter = %s, want %s", got.Values["n"], want)
	}
}

func TestTooLarge(t *testing.T) {
	e := newEnv(t, filestore.Options{MaxSize: 512})
	id := e.create("a", "1")
	before := e.file(id)
	big := json.RawMessage(`"` + strings.Repeat("x", 600) + `"`)
	err := e.s.Save(e.ctx, id, filesession.Change{Set: map[string]json.RawMessage{"big": big}, At: t0})
	if !errors.Is(err, filesession.ErrTooLarge) {
		t.Errorf("Save of a big value: %v, want ErrTooLarge", err)
	}
	if err := e.s.Create(e.ctx, filesession.NewID(), e.record("big", string(big))); !errors.Is(err, filesession.ErrTooLarge) {
		t.Errorf("Create of a big record: %v, want ErrTooLarge", err)
	}
	if e.file(id) != before {
		t.Error("a refused Save changed the file")
	}
}
