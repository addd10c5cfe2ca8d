package filestore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
	"golang.org/x/sys/unix"
)

// uiStore opens a store on dir with a fixed clock and no reaper.
func uiStore(t *testing.T, dir string, edit ...func(*filestore.Options)) *filestore.Store {
	t.Helper()
	o := filestore.Options{Path: dir, Logger: quiet}
	for _, e := range edit {
		e(&o)
	}
	s, err := filestore.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func userRecord(user string) filesession.Record {
	now := time.Now().Truncate(time.Millisecond)
	return filesession.Record{Created: now, LastAccess: now, IdleTimeout: time.Hour, User: user}
}

// createFor creates a session of user and returns its ID.
func createFor(t *testing.T, s *filestore.Store, user string) string {
	t.Helper()
	id := filesession.NewID()
	if err := s.Create(context.Background(), id, userRecord(user)); err != nil {
		t.Fatal(err)
	}
	return id
}

// listed returns the sorted IDs UserSessions gives for user.
func listed(t *testing.T, s *filestore.Store, user string) []string {
	t.Helper()
	list, err := s.UserSessions(context.Background(), user)
	if err != nil {
		t.Fatalf("UserSessions(%q): %v", user, err)
	}
	var ids []string
	for _, us := range list {
		if us.Record.User != user {
			t.Errorf("UserSessions(%q) gave a session of %q", user, us.Record.User)
		}
		ids = append(ids, us.ID)
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids ...string) []string { return slices.Sorted(slices.Values(ids)) }

var userFileRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// userFiles returns the per-user files of dir's index with their lines.
func userFiles(t *testing.T, dir string) map[string][]string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, ".users"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, e := range entries {
		if !userFileRE.MatchString(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, ".users", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = strings.Fields(string(b))
	}
	return out
}

func TestUserIndexLayout(t *testing.T) {
	dir := t.TempDir()
	s := uiStore(t, dir)
	a1, a2 := createFor(t, s, "alice@example.com"), createFor(t, s, "alice@example.com")
	b := createFor(t, s, "bob")
	createFor(t, s, "")
	if got := listed(t, s, "alice@example.com"); !slices.Equal(got, sorted(a1, a2)) {
		t.Errorf("alice: %v, want %v", got, sorted(a1, a2))
	}

	for _, name := range []string{".users", ".users/.salt", ".users/.complete"} {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v, want nothing for group or others", name, fi.Mode())
		}
	}
	files := userFiles(t, dir)
	if len(files) != 2 {
		t.Fatalf("index has %d user files, want 2 (alice, bob): %v", len(files), files)
	}
	var all []string
	for name, lines := range files {
		if strings.Contains(name, "alice") || strings.Contains(name, "bob") {
			t.Errorf("user file %s names its user", name)
		}
		all = append(all, lines...)
	}
	if !slices.Equal(sorted(all...), sorted(a1, a2, b)) {
		t.Errorf("index lines %v, want the three sessions with a user", all)
	}
	// The index is not a session, a temporary file or anything List,
	// Reap and the session listing would take for one.
	var ids []string
	s.List(context.Background(), func(id string, _ filesession.Record) error {
		ids = append(ids, id)
		return nil
	})
	if len(ids) != 4 {
		t.Errorf("List gave %d sessions, want 4", len(ids))
	}
	if n, err := s.Reap(context.Background()); n != 0 || err != nil {
		t.Errorf("Reap = %d, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".users", ".salt")); err != nil {
		t.Errorf("Reap touched the index: %v", err)
	}
}

func TestUserIndexSelfHeals(t *testing.T) {
	dir := t.TempDir()
	s := uiStore(t, dir)
	ctx := context.Background()
	live := createFor(t, s, "alice")
	other := createFor(t, s, "bob")
	listed(t, s, "alice") // completes the index
	var aliceFile string
	for name, lines := range userFiles(t, dir) {
		if slices.Contains(lines, live) {
			aliceFile = filepath.Join(dir, ".users", name)
		}
	}
	// What a crash or a hand edit can leave: an ID whose file never got
	// written, a session of another user, a torn line, a duplicate.
	ghost := filesession.NewID()
	data := strings.Join([]string{live, ghost, other, "not an id", live, ghost[:10]}, "\n") + "\n"
	if err := os.WriteFile(aliceFile, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := listed(t, s, "alice"); !slices.Equal(got, []string{live}) {
		t.Errorf("alice after damage: %v, want only %v", got, live)
	}
	b, _ := os.ReadFile(aliceFile)
	if lines := strings.Fields(string(b)); !slices.Equal(lines, []string{live}) {
		t.Errorf("alice's file after a listing: %q, want only the live session", b)
	}
	if got := listed(t, s, "bob"); !slices.Equal(got, []string{other}) {
		t.Errorf("bob: %v", got)
	}
	// Deleting the last session removes the user's file.
	if err := s.Delete(ctx, live); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(aliceFile); !os.IsNotExist(err) {
		t.Errorf("alice's file after her last session went: %v, want it removed", err)
	}
}

func TestUserIndexRebuiltWhenMissing(t *testing.T) {
	dir := t.TempDir()
	s := uiStore(t, dir)
	a := createFor(t, s, "alice")
	b := createFor(t, s, "alice")
	// A session a process without the index wrote (an older version, or
	// session-file-store keeping the member): never added to the index.
	hand := filesession.NewID()
	now := time.Now().UnixMilli()
	file := `{"cookie":{"originalMaxAge":3600000,"httpOnly":true,"path":"/"},"n":1,"__lastAccess":` +
		strconv.FormatInt(now, 10) + `,"__user":"alice"}`
	if err := os.WriteFile(filepath.Join(dir, "sess_"+hand+".json"), []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, ".users")); err != nil {
		t.Fatal(err)
	}
	if got, want := listed(t, s, "alice"), sorted(a, b, hand); !slices.Equal(got, want) {
		t.Errorf("alice after .users was removed: %v, want %v (rebuilt)", got, want)
	}
	// A marker of another salt does not count: the index is rebuilt.
	if err := os.WriteFile(filepath.Join(dir, ".users", ".complete"), []byte(strings.Repeat("0", 64)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, ".users"))
	for _, e := range entries {
		if userFileRE.MatchString(e.Name()) {
			os.Remove(filepath.Join(dir, ".users", e.Name()))
		}
	}
	if got, want := listed(t, s, "alice"), sorted(a, b, hand); !slices.Equal(got, want) {
		t.Errorf("alice after the marker went stale: %v, want %v", got, want)
	}
	// RebuildUserIndex does it on demand, and leaves a stale temporary
	// file of a crashed writer no longer.
	tmp := filepath.Join(dir, ".users", ".0123456789abcdef0123456789abcdef.0123456789abcdef.tmp")
	if err := os.WriteFile(tmp, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(tmp, old, old)
	if err := s.RebuildUserIndex(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("stale temporary file after a rebuild: %v", err)
	}
}

// A failed session write after the index entry was added leaves only an
// entry too many, which the next listing drops.
func TestUserIndexFailedWriteLeavesOnlyExtras(t *testing.T) {
	dir := t.TempDir()
	var h hookFS
	s := uiStore(t, dir, func(o *filestore.Options) { *o = filestore.WithFS(*o, h.wrap) })
	keep := createFor(t, s, "alice")
	listed(t, s, "alice")
	h.setHook(func(c call) error {
		if c.op == "open" && strings.HasSuffix(c.name, ".tmp") {
			return unix.ENOSPC
		}
		return nil
	})
	id := filesession.NewID()
	if err := s.Create(context.Background(), id, userRecord("alice")); err == nil {
		t.Fatal("Create succeeded with a failing disk")
	}
	h.setHook(nil)
	var inIndex bool
	for _, lines := range userFiles(t, dir) {
		inIndex = inIndex || slices.Contains(lines, id)
	}
	if !inIndex {
		t.Fatal("the entry was not added before the write (or was removed): the index must lead the session files")
	}
	if got := listed(t, s, "alice"); !slices.Equal(got, []string{keep}) {
		t.Errorf("alice: %v, want %v", got, keep)
	}
	for _, lines := range userFiles(t, dir) {
		if slices.Contains(lines, id) {
			t.Error("the stale entry survived a listing")
		}
	}
}

// If the index cannot be written, the session is not written either: a
// session that a user's listing would miss must never exist.
func TestUserIndexFailsClosed(t *testing.T) {
	dir := t.TempDir()
	s := uiStore(t, dir)
	ctx := context.Background()
	anon := filesession.NewID()
	if err := s.Create(ctx, anon, userRecord("")); err != nil {
		t.Fatal(err)
	}
	createFor(t, s, "alice") // makes .users
	ix := filepath.Join(dir, ".users")

	// The index cannot be written: a file where its directory should be
	// (which stops root too, unlike permissions).
	os.RemoveAll(ix)
	if err := os.WriteFile(ix, []byte("in the way"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := filesession.NewID()
	if err := s.Create(ctx, id, userRecord("bob")); err == nil || errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("Create with a user and no index: %v, want a store failure", err)
	}
	if _, err := s.Load(ctx, id); err == nil {
		t.Error("the session was written without its index entry")
	}
	err := s.Save(ctx, anon, filesession.Change{At: time.Now(), User: ptr("bob")})
	if err == nil || errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("Save setting a user with no index: %v, want a store failure", err)
	}
	if r, _ := s.Load(ctx, anon); r.User != "" {
		t.Errorf("the session got user %q without its index entry", r.User)
	}
	newID := filesession.NewID()
	if err := s.Renew(ctx, anon, newID, filesession.Change{At: time.Now(), User: ptr("bob")}); err == nil {
		t.Error("Renew setting a user with no index succeeded")
	}
	if _, err := s.Load(ctx, anon); err != nil {
		t.Errorf("the old session after a failed Renew: %v", err)
	}
	if _, err := s.UserSessions(ctx, "alice"); err == nil {
		t.Error("UserSessions answered without an index")
	}
	// Sessions without a user do not need the index.
	if err := s.Create(ctx, filesession.NewID(), userRecord("")); err != nil {
		t.Errorf("Create without a user: %v", err)
	}

	// An index directory writable by others is not trusted at all.
	os.Remove(ix)
	if err := os.Mkdir(ix, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(ix, 0o777)
	if _, err := s.UserSessions(ctx, "alice"); err == nil {
		t.Error("UserSessions trusted an index directory writable by others")
	}
	if err := s.Create(ctx, filesession.NewID(), userRecord("alice")); err == nil {
		t.Error("Create trusted an index directory writable by others")
	}
	// Nor a symlink in its place.
	os.Chmod(ix, 0o700)
	os.Rename(ix, filepath.Join(dir, "elsewhere"))
	os.Symlink("elsewhere", ix)
	if _, err := s.UserSessions(ctx, "alice"); err == nil {
		t.Error("UserSessions followed a symlink at .users")
	}
}

func ptr[T any](v T) *T { return &v }

func TestUserIndexReapRemovesEntries(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().Truncate(time.Millisecond)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := uiStore(t, dir, func(o *filestore.Options) { o.Now = clock })
	ctx := context.Background()
	r := filesession.Record{Created: now, LastAccess: now, IdleTimeout: time.Minute, User: "alice"}
	short := filesession.NewID()
	if err := s.Create(ctx, short, r); err != nil {
		t.Fatal(err)
	}
	r.IdleTimeout = time.Hour
	long := filesession.NewID()
	if err := s.Create(ctx, long, r); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if got := listed(t, s, "alice"); !slices.Equal(got, []string{long}) {
		t.Errorf("after expiry: %v, want %v", got, long)
	}
	if n, err := s.Reap(ctx); n != 1 || err != nil {
		t.Fatalf("Reap = %d, %v", n, err)
	}
	for _, lines := range userFiles(t, dir) {
		if slices.Contains(lines, short) {
			t.Error("the reaped session is still in the index")
		}
	}
}

func TestUserIndexRenewAndHashNames(t *testing.T) {
	for _, hashed := range []bool{false, true} {
		t.Run(map[bool]string{false: "Plain", true: "HashNames"}[hashed], func(t *testing.T) {
			dir := t.TempDir()
			s := uiStore(t, dir, func(o *filestore.Options) {
				o.HashNames = hashed
				if hashed {
					k := make([]byte, 32)
					rand.Read(k)
					o.EncryptionKeys = [][]byte{k}
				}
			})
			ctx := context.Background()
			old := createFor(t, s, "alice")
			newID := filesession.NewID()
			if err := s.Renew(ctx, old, newID, filesession.Change{At: time.Now()}); err != nil {
				t.Fatal(err)
			}
			if got := listed(t, s, "alice"); !slices.Equal(got, []string{newID}) {
				t.Errorf("after Renew: %v, want the new ID", got)
			}
			for _, lines := range userFiles(t, dir) {
				if hashed && (slices.Contains(lines, newID) || slices.Contains(lines, old)) {
					t.Error("under HashNames the index holds a session ID")
				}
				if len(lines) != 1 {
					t.Errorf("index lines %d, want 1", len(lines))
				}
			}
		})
	}
}

// Two stores on one directory share one index: same salt, same files.
func TestUserIndexAcrossStores(t *testing.T) {
	dir := t.TempDir()
	a, b := uiStore(t, dir), uiStore(t, dir)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ids []string
	for _, s := range []*filestore.Store{a, b, a, b} {
		wg.Go(func() {
			for range 5 {
				id := filesession.NewID()
				if err := s.Create(context.Background(), id, userRecord("alice")); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	want := sorted(ids...)
	if got := listed(t, a, "alice"); !slices.Equal(got, want) {
		t.Errorf("from a: %d sessions, want %d", len(got), len(want))
	}
	if got := listed(t, b, "alice"); !slices.Equal(got, want) {
		t.Errorf("from b: %d sessions, want %d", len(got), len(want))
	}
}

// A rebuild running while sessions are created loses none of them: it
// only adds to what writers put in the index.
func TestUserIndexRebuildWhileWriting(t *testing.T) {
	dir := t.TempDir()
	s := uiStore(t, dir)
	for range 20 {
		createFor(t, s, "alice")
	}
	// An index without its marker, as after an upgrade.
	if err := os.Remove(filepath.Join(dir, ".users", ".complete")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var writers, rebuilder sync.WaitGroup
	var mu sync.Mutex
	var ids []string
	done := make(chan struct{})
	rebuilder.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := s.RebuildUserIndex(context.Background()); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 3 {
		writers.Go(func() {
			for range 10 {
				id := filesession.NewID()
				if err := s.Create(context.Background(), id, userRecord("bob")); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		})
	}
	writers.Wait()
	close(done)
	rebuilder.Wait()
	if got := listed(t, s, "bob"); !slices.Equal(got, sorted(ids...)) {
		t.Errorf("bob: %d sessions listed, want %d", len(got), len(ids))
	}
	if got := listed(t, s, "alice"); len(got) != 20 {
		t.Errorf("alice: %d sessions listed, want 20", len(got))
	}
}
