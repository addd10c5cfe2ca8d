package filestore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
	"github.com/filesession/filesession/storetest"
	"golang.org/x/sys/unix"
)

// The express preset's own tests. The interop tests against the real Node
// packages are in package express; these pin what the preset does to files
// in Node's exact format, without needing Node.

func TestExpressConformance(t *testing.T) {
	cfg := storetest.Config{IDLength: filestore.ExpressIDLength}
	storetest.RunWith(t, cfg, func(t *testing.T, now func() time.Time) filesession.Store {
		o := filestore.ExpressOptions(t.TempDir())
		o.Now, o.Logger, o.ReapInterval = now, quiet, 0
		s, err := filestore.Open(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	})
}

func TestExpressOptions(t *testing.T) {
	o := filestore.ExpressOptions("")
	if o.Path != filestore.DefaultPath || !o.NoPrefix || o.Prefix != "" || o.Extension != ".json" ||
		o.IDLength != 32 || !o.NodeCompatible || o.TTL != time.Hour || o.ReapInterval != time.Hour || o.Sync != filestore.SyncFull {
		t.Fatalf("ExpressOptions(\"\") = %+v", o)
	}
	if got := filestore.ExpressOptions("/x/y").Path; got != "/x/y" {
		t.Fatalf("Path = %q", got)
	}
}

// nodeSID is an ID as express-session makes them.
const nodeSID = "Su2cNRnbDqZIJs-SFqASxiqz-504ZGjN"

// nodeFile is what session-file-store 1.5 writes for a logged-in session
// (the reference file, plus values of every JSON kind and characters that
// encoding/json would escape), with __lastAccess = la.
func nodeFile(la int64) []byte {
	return []byte(`{"cookie":{"originalMaxAge":86400000,"expires":"2026-12-04T10:03:40.849Z","secure":false,"httpOnly":true,"path":"/","sameSite":"lax"},` +
		`"csrfToken":"tok123","user":{"userId":"1f2e","email":"zoë@example.com","name":"Zoë \"x\" <b>&amp;</b> ` + "\u2028" + `"},` +
		`"count":7,"big":12345678901234567890,"f":1e+21,"arr":[1,"two",{"3":null}],"nested":{"z":1,"a":{"b":[true,false]}},` +
		`"__lastAccess":` + strconv.FormatInt(la, 10) + `}`)
}

// nodeDir makes a session directory as Node leaves it: mode 0755, files
// 0644. It returns the directory.
func nodeDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sessions")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return dir
}

// writeNodeFile writes data as id's session file the way Node leaves it:
// mode 0644, modified at mtime (Node's are a few milliseconds after
// __lastAccess: it sets it, then writes), accessed no later than now.
func writeNodeFile(t *testing.T, dir, id string, data []byte, mtime time.Time) string {
	t.Helper()
	p := filepath.Join(dir, id+".json")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	atime := time.Now()
	if mtime.Before(atime) {
		atime = mtime
	}
	if err := os.Chtimes(p, atime, mtime); err != nil {
		t.Fatal(err)
	}
	return p
}

// openExpress opens the preset on dir with the clock now.
func openExpress(t *testing.T, dir string, now func() time.Time, wrap func(filestore.FS) filestore.FS) *filestore.Store {
	t.Helper()
	o := filestore.ExpressOptions(dir)
	o.Now, o.Logger, o.ReapInterval = now, quiet, 0
	if wrap != nil {
		o = filestore.WithFS(o, wrap)
	}
	s, err := filestore.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// lastAccessRE finds the __lastAccess member, to compare files apart from it.
var lastAccessRE = regexp.MustCompile(`"__lastAccess":-?[0-9.eE+]+`)

// sameApartFromLastAccess fails the test unless got is want with only the
// value of __lastAccess changed to wantLA.
func sameApartFromLastAccess(t *testing.T, got, want []byte, wantLA int64) {
	t.Helper()
	exp := lastAccessRE.ReplaceAll(want, []byte(`"__lastAccess":`+strconv.FormatInt(wantLA, 10)))
	if !bytes.Equal(got, exp) {
		t.Fatalf("file after rewrite:\n got %s\nwant %s", got, exp)
	}
}

func TestExpressReadsNodeFile(t *testing.T) {
	la := time.Date(2026, 12, 3, 10, 3, 40, 850e6, time.UTC)
	clock := storetest.NewClock(la.Add(time.Hour))
	dir := nodeDir(t)
	orig := nodeFile(la.UnixMilli())
	p := writeNodeFile(t, dir, nodeSID, orig, la.Add(7*time.Millisecond))
	s := openExpress(t, dir, clock.Now, nil)

	r, err := s.Load(t.Context(), nodeSID)
	if err != nil {
		t.Fatalf("Load of a 0644 file in a 0755 directory: %v", err)
	}
	if !r.LastAccess.Equal(la) {
		t.Errorf("LastAccess = %v, want __lastAccess %v exactly (not the later mtime)", r.LastAccess, la)
	}
	if r.IdleTimeout != 24*time.Hour {
		t.Errorf("IdleTimeout = %v, want originalMaxAge 24h", r.IdleTimeout)
	}
	want := filesession.CookieAttrs{HTTPOnly: true, Path: "/", SameSite: "lax"}
	if r.Cookie != want {
		t.Errorf("Cookie = %+v, want %+v", r.Cookie, want)
	}
	for k, v := range map[string]string{
		"csrfToken": `"tok123"`,
		"user":      `{"userId":"1f2e","email":"zoë@example.com","name":"Zoë \"x\" <b>&amp;</b> ` + "\u2028" + `"}`,
		"big":       `12345678901234567890`,
		"f":         `1e+21`,
		"nested":    `{"z":1,"a":{"b":[true,false]}}`,
	} {
		if got := string(r.Values[k]); got != v {
			t.Errorf("value %q = %s, want the file's bytes %s", k, got, v)
		}
	}

	// An unchanged save and a touch rewrite only __lastAccess.
	at := clock.Advance(time.Minute)
	if err := s.Save(t.Context(), nodeSID, filesession.Change{At: at}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	sameApartFromLastAccess(t, got, orig, at.UnixMilli())
	at = clock.Advance(time.Minute)
	if err := s.Touch(t.Context(), nodeSID, at, at.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(p)
	sameApartFromLastAccess(t, got, orig, at.UnixMilli())
	if r, err := s.Load(t.Context(), nodeSID); err != nil || !r.LastAccess.Equal(at) {
		t.Fatalf("Load after Touch: LastAccess %v, %v; want %v", r.LastAccess, err, at)
	}
	// A file the store writes is 0600, whatever Node's was; Node keeps the
	// mode of a file it replaces.
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("rewritten file mode %v, want 0600", fi.Mode().Perm())
	}
	// Touch never moves __lastAccess backwards.
	if err := s.Touch(t.Context(), nodeSID, at.Add(-time.Minute), at); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(p)
	sameApartFromLastAccess(t, got, orig, at.UnixMilli())
}

func TestExpressTouchIsNodeVisible(t *testing.T) {
	clock := storetest.NewClock(time.Now().Truncate(time.Millisecond))
	dir := nodeDir(t)
	s := openExpress(t, dir, clock.Now, nil)
	id := filesession.NewIDOf(24)
	r := filesession.Record{IdleTimeout: 10 * time.Minute, Cookie: filesession.CookieAttrs{HTTPOnly: true, Path: "/"}}
	if err := s.Create(t.Context(), id, r); err != nil {
		t.Fatal(err)
	}
	at := clock.Advance(6 * time.Minute)
	if err := s.Touch(t.Context(), id, at, at.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// What Node reads: __lastAccess in the content, not file times.
	b, _ := os.ReadFile(filepath.Join(dir, id+".json"))
	if m := lastAccessRE.Find(b); string(m) != `"__lastAccess":`+strconv.FormatInt(at.UnixMilli(), 10) {
		t.Fatalf("after Touch the file says %s, want __lastAccess %d: %s", m, at.UnixMilli(), b)
	}
	if !bytes.HasPrefix(b, []byte(`{"cookie":{"originalMaxAge":600000,"expires":"`)) || !bytes.Contains(b, []byte(`"__created":`)) {
		t.Fatalf("a file the preset creates: %s", b)
	}
	// Expired: Touch refuses and changes nothing.
	clock.Advance(11 * time.Minute)
	before, _ := os.ReadFile(filepath.Join(dir, id+".json"))
	err := s.Touch(t.Context(), id, clock.Now(), clock.Now().Add(10*time.Minute))
	if !errors.Is(err, filesession.ErrNotFound) {
		t.Fatalf("Touch of an expired session: %v, want ErrNotFound", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, id+".json"))
	if !bytes.Equal(before, after) {
		t.Fatal("Touch of an expired session rewrote it")
	}
	// Gone: Touch does not bring it back.
	if err := s.Delete(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(t.Context(), id, clock.Now(), clock.Now()); !errors.Is(err, filesession.ErrNotFound) {
		t.Fatalf("Touch of a deleted session: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, id+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Touch recreated a deleted session")
	}
}

// nodeExpired is session-file-store 1.5's isExpired, in Go: ttl is
// originalMaxAge if truthy, else the store's ttl; a missing __lastAccess
// makes the sum NaN, and NaN < now is false.
func nodeExpired(originalMaxAge *int64, lastAccess *int64, ttl time.Duration, now time.Time) bool {
	life := ttl.Milliseconds()
	if originalMaxAge != nil && *originalMaxAge != 0 {
		life = *originalMaxAge
	}
	if lastAccess == nil {
		return false
	}
	return *lastAccess+life < now.UnixMilli()
}

func TestExpressExpiryIsNodes(t *testing.T) {
	base := time.Now().Truncate(time.Millisecond)
	ms := func(d time.Duration) *int64 { v := d.Milliseconds(); return &v }
	la := func(d time.Duration) *int64 { v := base.Add(d).UnixMilli(); return &v }
	type tc struct {
		name    string
		maxAge  *int64 // nil: originalMaxAge null
		last    *int64 // nil: no __lastAccess
		advance time.Duration
	}
	cases := []tc{
		{"MaxAgeLive", ms(10 * time.Minute), la(0), 9 * time.Minute},
		{"MaxAgeExpired", ms(10 * time.Minute), la(0), 11 * time.Minute},
		{"MaxAgeOneMsAfter", ms(10 * time.Minute), la(0), 10*time.Minute + time.Millisecond},
		{"DriftedMaxAge", ms(24*time.Hour - time.Millisecond), la(0), 24*time.Hour - 2*time.Millisecond},
		{"MaxAgeOverridesTTL", ms(3 * time.Hour), la(0), 2 * time.Hour},
		{"NullUsesTTLLive", nil, la(0), 59 * time.Minute},
		{"NullUsesTTLExpired", nil, la(0), 61 * time.Minute},
		{"ZeroUsesTTL", ms(0), la(0), 59 * time.Minute},
		{"OldLastAccess", ms(10 * time.Minute), la(-30 * time.Minute), 0},
	}
	clock := storetest.NewClock(base)
	dir := nodeDir(t)
	s := openExpress(t, dir, clock.Now, nil)
	ids := map[string]tc{}
	for _, c := range cases {
		id := filesession.NewIDOf(24)
		ids[id] = c
		maxAge := "null"
		if c.maxAge != nil {
			maxAge = strconv.FormatInt(*c.maxAge, 10)
		}
		data := `{"cookie":{"originalMaxAge":` + maxAge + `,"expires":null,"httpOnly":true,"path":"/"},"views":1`
		if c.last != nil {
			data += `,"__lastAccess":` + strconv.FormatInt(*c.last, 10)
		}
		// The file's times are far in the future: the preset must not take
		// them for the last access.
		writeNodeFile(t, dir, id, []byte(data+"}"), base.Add(48*time.Hour))
	}
	for id, c := range ids {
		clock := storetest.NewClock(base.Add(c.advance))
		s := openExpress(t, dir, clock.Now, nil)
		_, err := s.Load(t.Context(), id)
		node := nodeExpired(c.maxAge, c.last, time.Hour, clock.Now())
		if go_ := errors.Is(err, filesession.ErrNotFound); go_ != node {
			t.Errorf("%s: expired for Go %v (%v), for Node %v", c.name, go_, err, node)
		}
	}

	// The reaper at one instant removes exactly what Node's rule calls
	// expired.
	clock.Advance(61 * time.Minute)
	want := map[string]bool{}
	for id, c := range ids {
		want[id] = nodeExpired(c.maxAge, c.last, time.Hour, clock.Now())
	}
	n, err := s.Reap(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	removed := 0
	for id, expired := range want {
		_, err := os.Stat(filepath.Join(dir, id+".json"))
		gone := errors.Is(err, os.ErrNotExist)
		if gone != expired {
			t.Errorf("%s: reaped %v, Node calls it expired %v", ids[id].name, gone, expired)
		}
		if gone {
			removed++
		}
	}
	if n != removed {
		t.Errorf("Reap reported %d, removed %d", n, removed)
	}
}

// The documented differences from Node's rule.
func TestExpressExpiryDifferences(t *testing.T) {
	base := time.Now().Truncate(time.Millisecond)
	dir := nodeDir(t)

	// At exactly __lastAccess + maxAge: live for Node, expired here.
	edge := filesession.NewIDOf(24)
	writeNodeFile(t, dir, edge, []byte(`{"cookie":{"originalMaxAge":600000,"expires":null,"httpOnly":true,"path":"/"},"__lastAccess":`+
		strconv.FormatInt(base.UnixMilli(), 10)+`}`), base)
	clock := storetest.NewClock(base.Add(10 * time.Minute))
	s := openExpress(t, dir, clock.Now, nil)
	ma := int64(600000)
	lm := base.UnixMilli()
	if nodeExpired(&ma, &lm, time.Hour, clock.Now()) {
		t.Fatal("test setup: Node should call the boundary live")
	}
	if _, err := s.Load(t.Context(), edge); !errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("Load at the boundary millisecond: %v, want not found (live strictly before ExpiresAt)", err)
	}

	// No __lastAccess: Node never expires it; here it expires maxAge after
	// the file's modification time, and a touch adds __lastAccess at the
	// end, as Node's set would.
	immortal := filesession.NewIDOf(24)
	orig := []byte(`{"cookie":{"originalMaxAge":600000,"expires":null,"httpOnly":true,"path":"/"},"views":3}`)
	p := writeNodeFile(t, dir, immortal, orig, base)
	clock = storetest.NewClock(base.Add(5 * time.Minute))
	s = openExpress(t, dir, clock.Now, nil)
	r, err := s.Load(t.Context(), immortal)
	if err != nil || !r.LastAccess.Equal(base) {
		t.Fatalf("Load without __lastAccess: LastAccess %v, %v; want the mtime %v", r.LastAccess, err, base)
	}
	at := clock.Now()
	if err := s.Touch(t.Context(), immortal, at, at.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	want := fmt.Sprintf(`{"cookie":{"originalMaxAge":600000,"expires":null,"httpOnly":true,"path":"/"},"views":3,"__lastAccess":%d}`, at.UnixMilli())
	if string(got) != want {
		t.Fatalf("touched file:\n got %s\nwant %s", got, want)
	}
	writeNodeFile(t, dir, immortal, orig, base)
	clock.Advance(6 * time.Minute)
	if _, err := s.Load(t.Context(), immortal); !errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("a file without __lastAccess, maxAge after its mtime: %v, want not found", err)
	}
}

// Node's reaper deletes every *.json it cannot parse, so the preset must
// never make a file ending in .json other than by renaming a complete one
// into place, not even when a write fails half way.
func TestExpressTempNames(t *testing.T) {
	dir := nodeDir(t)
	h := &hookFS{}
	clock := storetest.NewClock(time.Now().Truncate(time.Millisecond))
	s := openExpress(t, dir, clock.Now, h.wrap)
	ctx := context.Background()
	id := filesession.NewIDOf(24)
	if err := s.Create(ctx, id, filesession.Record{IdleTimeout: time.Hour, Values: map[string]json.RawMessage{"a": json.RawMessage("1")}}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("injected")
	for _, op := range []string{"write", "sync", "rename"} {
		h.setHook(func(c call) error {
			if c.op == op && c.name != "." {
				return boom
			}
			return nil
		})
		err := s.Touch(ctx, id, clock.Advance(time.Second), clock.Now().Add(time.Hour))
		h.setHook(nil)
		if !errors.Is(err, boom) {
			t.Fatalf("Touch with a failing %s: %v", op, err)
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".json") && e.Name() != id+".json" {
				t.Errorf("after a failed %s: stray %s", op, e.Name())
			}
			if strings.HasSuffix(e.Name(), ".tmp") {
				t.Errorf("after a failed %s: temporary file %s left", op, e.Name())
			}
		}
	}
	for _, c := range h.reset() {
		if c.op == "open" && c.flag&unix.O_CREAT != 0 && (strings.HasSuffix(c.name, ".json") || !strings.HasPrefix(c.name, ".")) {
			t.Errorf("the store created %q: a name Node could take for a session", c.name)
		}
	}
	if _, err := s.Load(ctx, id); err != nil {
		t.Fatalf("session after failed touches: %v", err)
	}
}

// Node creates its directory 0777&^umask: under a umask of 002 that is
// group-writable, which the preset refuses, saying what to do.
func TestExpressRefusesGroupWritableDir(t *testing.T) {
	dir := nodeDir(t)
	if err := os.Chmod(dir, 0o775); err != nil {
		t.Fatal(err)
	}
	_, err := filestore.Open(filestore.ExpressOptions(dir))
	if err == nil || !strings.Contains(err.Error(), "chmod") {
		t.Fatalf("Open of a 0775 directory: %v, want a refusal that says to chmod it", err)
	}
}
