package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
)

// mixedFixture is a directory with sessions in every state and a few files
// that are not sessions.
type mixedFixture struct {
	*fixture
	ann, bob, anon     []string // live sessions by user
	expiredIdle, dead  string
	corrupt, staleTemp string
	all                map[string]sess
}

func newMixedFixture(t *testing.T) *mixedFixture {
	f := &mixedFixture{fixture: newFixture(t), all: map[string]sess{}}
	mk := func(s sess) string {
		id := f.create(s)[0]
		f.all[id] = s
		return id
	}
	n := f.now
	f.ann = []string{
		mk(sess{created: n.Add(-3 * time.Hour), lastAccess: n.Add(-time.Minute), idle: time.Hour, user: userValue("ann@example.com")}),
		mk(sess{created: n.Add(-2 * 24 * time.Hour), lastAccess: n.Add(-20 * time.Minute), idle: 24 * time.Hour, user: userValue("ann@example.com")}),
	}
	f.bob = []string{mk(sess{created: n.Add(-10 * time.Minute), lastAccess: n.Add(-5 * time.Minute), idle: time.Hour, user: userValue("bob@example.com")})}
	f.anon = []string{mk(sess{created: n.Add(-30 * time.Second), lastAccess: n.Add(-30 * time.Second), idle: time.Hour})}
	f.expiredIdle = mk(sess{created: n.Add(-5 * time.Hour), lastAccess: n.Add(-2 * time.Hour), idle: time.Hour, user: userValue("ann@example.com")})
	f.dead = mk(sess{created: n.Add(-2 * time.Hour), lastAccess: n.Add(-time.Minute), idle: time.Hour, deadline: n.Add(-time.Minute), user: userValue("bob@example.com")})
	f.corrupt = filesession.NewID()
	f.write(f.name(f.corrupt), `{"cookie":{`, 0o600, n.Add(-time.Hour))
	f.staleTemp = "." + f.name(filesession.NewID()) + ".0123456789abcdef.tmp"
	f.write(f.staleTemp, "x", 0o600, n.Add(-time.Hour))
	f.write("README", "not a session", 0o600, n)
	f.write(secretFileName, strings.Repeat("ab", 32)+"\n", 0o600, n)
	if err := os.Mkdir(f.path(indexDirName), 0o700); err != nil { // the store's per-user index
		t.Fatal(err)
	}
	return f
}

func TestCount(t *testing.T) {
	f := newMixedFixture(t)
	before := f.snapshot()
	var got tally
	f.run("count", "--json").want(t, exitOK).decode(t, &got)
	want := tally{Live: 4, Expired: 2, Corrupt: 1, Temp: 1, Foreign: 1}
	if got != want {
		t.Errorf("count --json = %+v, want %+v", got, want)
	}
	r := f.run("count").want(t, exitOK)
	for _, line := range []string{"live     4", "expired  2", "corrupt  1", "temp     1", "foreign  1"} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("count table lacks %q:\n%s", line, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "quarantined") {
		t.Errorf("count table shows zero rows:\n%s", r.stdout)
	}
	// --deep reads every file: same answer here, as every hint is right.
	var deep tally
	f.run("count", "--json", "--deep").want(t, exitOK).decode(t, &deep)
	if deep != want {
		t.Errorf("count --deep = %+v, want %+v", deep, want)
	}
	f.unchanged(before, "count")
}

// lsEntry is one object of ls --json.
type lsEntry struct {
	ID       string          `json:"id"`
	User     json.RawMessage `json:"user"`
	Created  time.Time       `json:"created"`
	LastSeen time.Time       `json:"lastSeen"`
	Expires  time.Time       `json:"expires"`
	Owner    string          `json:"owner"`
	Size     int64           `json:"size"`
	State    string          `json:"state"`
}

func (f *mixedFixture) ls(args ...string) []lsEntry {
	f.t.Helper()
	var got []lsEntry
	f.run(append([]string{"ls", "--json"}, args...)...).want(f.t, exitOK).decode(f.t, &got)
	return got
}

func ids(es []lsEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func TestLs(t *testing.T) {
	f := newMixedFixture(t)
	before := f.snapshot()

	// Default: live sessions, newest last seen first.
	got := f.ls()
	want := []string{f.anon[0], f.ann[0], f.bob[0], f.ann[1]}
	if !slices.Equal(ids(got), want) {
		t.Fatalf("ls --json IDs = %v, want %v (by last seen, newest first)", ids(got), want)
	}
	for _, e := range got {
		s := f.all[e.ID]
		fi, err := os.Stat(f.path(f.name(e.ID)))
		if err != nil {
			t.Fatal(err)
		}
		exp := (&filesession.Record{LastAccess: s.lastAccess, IdleTimeout: s.idle, Deadline: s.deadline}).ExpiresAt()
		if !e.Created.Equal(s.created) || !e.LastSeen.Equal(s.lastAccess) || !e.Expires.Equal(exp) || e.Size != fi.Size() || e.State != "live" {
			t.Errorf("ls entry %+v, want created %v, last seen %v, expires %v, size %d", e, s.created, s.lastAccess, exp, fi.Size())
		}
		if s.user == "" && string(e.User) != "null" || s.user != "" && string(e.User) != s.user {
			t.Errorf("ls user = %s, want %s", e.User, s.user)
		}
	}

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--user", "ann@example.com"}, []string{f.ann[0], f.ann[1]}},
		{[]string{"--user", "ANN@example.com"}, []string{f.ann[0], f.ann[1]}},
		{[]string{"--user", "id-bob"}, []string{f.bob[0]}},
		{[]string{"--user", "nobody"}, nil},
		{[]string{"--expired"}, []string{f.dead, f.expiredIdle}},
		{[]string{"--all", "--user", "ann@example.com"}, []string{f.ann[0], f.ann[1], f.expiredIdle}},
		{[]string{"--older-than", "1h"}, []string{f.ann[0], f.ann[1]}},
		{[]string{"--idle", "10m"}, []string{f.ann[1]}},
		{[]string{"--sort", "created"}, []string{f.anon[0], f.bob[0], f.ann[0], f.ann[1]}},
		{[]string{"--sort", "created", "--reverse"}, []string{f.ann[1], f.ann[0], f.bob[0], f.anon[0]}},
		{[]string{"--sort", "expires", "--limit", "2"}, []string{f.bob[0], f.ann[0]}},
	} {
		if got := ids(f.ls(tc.args...)); !slices.Equal(got, tc.want) {
			t.Errorf("ls %v = %v, want %v", tc.args, got, tc.want)
		}
	}
	if got := ids(f.ls("--sort", "id")); !slices.IsSorted(got) || len(got) != 4 {
		t.Errorf("ls --sort id = %v", got)
	}

	// The table: a header, one row per session with a short ID, the user.
	r := f.run("ls").want(t, exitOK)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[0], "LAST SEEN") {
		t.Fatalf("ls table:\n%s", r.stdout)
	}
	if !strings.HasPrefix(lines[2], shortID(f.ann[0])+"  ") || !strings.HasSuffix(lines[2], "ann@example.com") || strings.Contains(r.stdout, f.ann[0]) {
		t.Errorf("ls row for ann = %q, want her short ID first, her email last, no whole ID", lines[2])
	}
	if r := f.run("ls", "--full"); !strings.Contains(r.stdout, f.ann[0]) {
		t.Errorf("ls --full lacks the whole ID:\n%s", r.stdout)
	}
	if r := f.run("ls", "--expired"); !strings.Contains(r.stdout, "!") {
		t.Errorf("ls --expired does not mark expired sessions:\n%s", r.stdout)
	}
	if r := f.run("ls", "--json", "--user", "nobody"); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("empty ls --json = %q, want []", r.stdout)
	}
	f.unchanged(before, "ls")
}

func TestShow(t *testing.T) {
	f := newMixedFixture(t)
	before := f.snapshot()
	id := f.ann[0]
	var got struct {
		ID, File, State, IdleTimeout, ExpiresIn, Mode string
		Created, LastSeen, Expires                    time.Time
		Size                                          int64
		Values                                        map[string]json.RawMessage
		Cookie                                        map[string]any
	}
	r := f.run("show", id).want(t, exitOK)
	r.decode(t, &got)
	s := f.all[id]
	if got.ID != id || got.File != f.name(id) || got.State != "live" || got.IdleTimeout != "1h0m0s" ||
		!got.Created.Equal(s.created) || !got.LastSeen.Equal(s.lastAccess) || !got.Expires.Equal(s.lastAccess.Add(time.Hour)) ||
		compact(got.Values["user"]) != s.user || got.Mode != "-rw-------" || got.Cookie["httpOnly"] != true {
		t.Errorf("show = %+v", got)
	}
	if !strings.Contains(r.stdout, "\n  \"id\"") {
		t.Errorf("show is not pretty-printed:\n%s", r.stdout)
	}
	if d, err := time.ParseDuration(got.ExpiresIn); err != nil || d < 50*time.Minute || d > time.Hour {
		t.Errorf("expiresIn = %q, want about 59m", got.ExpiresIn)
	}
	// A unique prefix, a file name and a path work too; --json is one line.
	for _, arg := range []string{id[:8], f.name(id), f.path(f.name(id))} {
		r := f.run("show", "--json", "--", arg).want(t, exitOK)
		if strings.Count(strings.TrimSpace(r.stdout), "\n") != 0 || !strings.Contains(r.stdout, id) {
			t.Errorf("show --json %s = %s", arg, r.stdout)
		}
	}
	if r := f.run("show", f.expiredIdle).want(t, exitOK); !strings.Contains(r.stdout, `"state": "expired"`) || !strings.Contains(r.stdout, `"expiresIn": "-`) {
		t.Errorf("show of an expired session:\n%s", r.stdout)
	}
	if r := f.run("show", f.corrupt).want(t, exitProblems); !strings.Contains(r.stdout, `"state": "corrupt"`) {
		t.Errorf("show of a corrupt file:\n%s", r.stdout)
	}
	f.run("show", filesession.NewID()).want(t, exitProblems)
	f.run("show", "zzzzzzzz").want(t, exitProblems) // no such prefix
	f.unchanged(before, "show")
}

// compact returns the compact form of a JSON text.
func compact(raw []byte) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

func TestStats(t *testing.T) {
	f := newMixedFixture(t)
	before := f.snapshot()
	var got struct {
		Counts tally
		Sizes  struct{ Total, Mean, P50, P90, P99, Max int64 }
		Age    []struct {
			Range string
			Count int64
		}
		Idle []struct {
			Range string
			Count int64
		}
		Oldest, Newest struct{ ID string }
		Users          struct {
			WithoutUser int64
			Top         []struct {
				User     string
				Sessions int64
			}
			Approximate bool
		}
	}
	f.run("stats", "--json").want(t, exitOK).decode(t, &got)
	if got.Counts != (tally{Live: 4, Expired: 2, Corrupt: 1, Temp: 1, Foreign: 1}) {
		t.Errorf("stats counts = %+v", got.Counts)
	}
	var sizes []int64
	var total int64
	for _, id := range append(append(append(append([]string{}, f.ann...), f.bob...), f.anon...), f.expiredIdle, f.dead) {
		fi, err := os.Stat(f.path(f.name(id)))
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
		if id != f.expiredIdle && id != f.dead {
			sizes = append(sizes, fi.Size())
		}
	}
	slices.Sort(sizes)
	if got.Sizes.Total != total || got.Sizes.Max != sizes[3] || got.Sizes.P50 != sizes[1] {
		t.Errorf("stats sizes = %+v, want total %d, p50 %d, max %d (of %v)", got.Sizes, total, sizes[1], sizes[3], sizes)
	}
	ages := map[string]int64{}
	for _, b := range got.Age {
		ages[b.Range] = b.Count
	}
	if ages["< 1m"] != 1 || ages["10m-1h"] != 1 || ages["1h-6h"] != 1 || ages["1d-7d"] != 1 {
		t.Errorf("age histogram = %v", got.Age)
	}
	if got.Oldest.ID != f.ann[1] || got.Newest.ID != f.anon[0] {
		t.Errorf("oldest %s, newest %s; want %s, %s", got.Oldest.ID, got.Newest.ID, f.ann[1], f.anon[0])
	}
	if len(got.Users.Top) != 2 || got.Users.Top[0].User != "ann@example.com" || got.Users.Top[0].Sessions != 2 ||
		got.Users.Top[1].Sessions != 1 || got.Users.WithoutUser != 1 || got.Users.Approximate {
		t.Errorf("stats users = %+v", got.Users)
	}
	r := f.run("stats").want(t, exitOK)
	for _, want := range []string{"Files by state", "Age of live sessions", "█", "Top users", "ann@example.com", "Oldest live session " + shortID(f.ann[1])} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stats table lacks %q:\n%s", want, r.stdout)
		}
	}
	f.unchanged(before, "stats")
}

func TestRm(t *testing.T) {
	f := newMixedFixture(t)
	before := f.snapshot()
	r := f.run("rm", "--dry-run", f.ann[0], f.bob[0]).want(t, exitOK)
	if !strings.Contains(r.stdout, "would remove  "+shortID(f.ann[0])) {
		t.Errorf("rm --dry-run:\n%s", r.stdout)
	}
	f.unchanged(before, "rm --dry-run")

	var res struct{ Removed, NotFound []string }
	missing := filesession.NewID()
	f.run("rm", "--json", "--", f.ann[0], f.bob[0][:10], missing).want(t, exitProblems).decode(t, &res)
	if !slices.Equal(res.Removed, []string{f.ann[0], f.bob[0]}) || !slices.Equal(res.NotFound, []string{missing}) {
		t.Errorf("rm --json = %+v", res)
	}
	for _, id := range []string{f.ann[0], f.bob[0]} {
		if _, err := f.s.Load(t.Context(), id); err == nil {
			t.Errorf("session %s still loads after rm", id)
		}
	}
	// IDs from stdin, as a pipeline from ls --json would give them.
	r = runBin(t, f.anon[0]+"\n\n"+f.ann[1]+"\n", "rm", "-", "--dir", f.dir).want(t, exitOK)
	if strings.Count(r.stdout, "removed") != 2 {
		t.Errorf("rm - :\n%s", r.stdout)
	}
	var left tally
	f.run("count", "--json").decode(t, &left)
	if left.Live != 0 || left.Expired != 2 {
		t.Errorf("after rm: %+v", left)
	}

	// A prefix that two IDs share is refused, and nothing is removed.
	a, b := strings.Repeat("A", 42)+"1", strings.Repeat("A", 42)+"2"
	f.create(sess{created: f.now, lastAccess: f.now, idle: time.Hour, id: a}, sess{created: f.now, lastAccess: f.now, idle: time.Hour, id: b})
	if r := f.run("rm", "AAAAAAAA").want(t, exitProblems); !strings.Contains(r.stderr, "several session IDs") {
		t.Errorf("rm of an ambiguous prefix: %s", r.stderr)
	}
	f.run("rm", "AAAAAAA").want(t, exitProblems)
	if _, err := f.s.Load(t.Context(), a); err != nil {
		t.Errorf("an ambiguous rm removed a session: %v", err)
	}
}

func TestRevoke(t *testing.T) {
	f := newMixedFixture(t)
	before := f.snapshot()
	r := f.run("revoke", "--user", "ann@example.com", "--dry-run").want(t, exitOK)
	if !strings.Contains(r.stdout, "would revoke 3 sessions of ann@example.com") {
		t.Errorf("revoke --dry-run:\n%s", r.stdout)
	}
	f.unchanged(before, "revoke --dry-run")

	var res struct {
		User    string
		Removed []string
	}
	f.run("revoke", "--json", "--user", "ann@example.com").want(t, exitOK).decode(t, &res)
	slices.Sort(res.Removed)
	want := []string{f.ann[0], f.ann[1], f.expiredIdle}
	slices.Sort(want)
	if res.User != "ann@example.com" || !slices.Equal(res.Removed, want) {
		t.Errorf("revoke --json = %+v, want %v", res, want)
	}
	// By userId, the other user; the anonymous session stays.
	r = f.run("revoke", "--user", "id-bob").want(t, exitOK)
	if !strings.Contains(r.stdout, "revoked 2 sessions") {
		t.Errorf("revoke by userId:\n%s", r.stdout)
	}
	var got []lsEntry
	f.run("ls", "--json", "--all").decode(t, &got)
	if !slices.Equal(ids(got), f.anon) {
		t.Errorf("after revoking both users, sessions left: %v, want %v", ids(got), f.anon)
	}

	// Sessions that belong to a user by Record.User alone (Session.SetUser,
	// the key of the store's per-user index, if it has one).
	n := f.now
	owned := f.create(sess{created: n, lastAccess: n, idle: time.Hour, owner: "u-42"}, sess{created: n, lastAccess: n, idle: time.Hour, owner: "u-42", user: `"someone"`})
	got = nil
	f.run("ls", "--json", "--user", "u-42").decode(t, &got)
	if len(got) != 2 || got[0].Owner != "u-42" {
		t.Errorf("ls --user by Record.User = %+v", got)
	}
	f.run("revoke", "--user", "u-42", "--index-only", "--no-index").want(t, exitUsage)
	r = f.run("revoke", "--user", "u-42").want(t, exitOK)
	if !strings.Contains(r.stdout, "revoked 2 sessions") {
		t.Errorf("revoke by Record.User:\n%s", r.stdout)
	}
	for _, id := range owned {
		if _, err := f.s.Load(t.Context(), id); !errors.Is(err, filesession.ErrNotFound) {
			t.Errorf("an owned session survived revoke: %v", err)
		}
	}
}

// TestExpressDirectory checks --express on a directory shared with
// session-file-store: <id>.json names, 32-character IDs, and Node's expiry
// rule (__lastAccess alone, not the file's time).
func TestExpressDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sessions")
	o := filestore.ExpressOptions(dir)
	o.ReapInterval = 0
	o.Logger = slog.New(slog.DiscardHandler)
	s, err := filestore.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	live := filesession.NewIDOf(24)
	if err := s.Create(t.Context(), live, filesession.Record{
		Values:  map[string]json.RawMessage{"user": json.RawMessage(`{"userId":"u1","email":"ann@example.com"}`)},
		Created: now, LastAccess: now, IdleTimeout: time.Hour,
	}); err != nil {
		t.Fatal(err)
	}
	// Written by Node two hours ago (by __lastAccess, with no maxAge: the
	// 1h TTL applies), copied a minute ago: expired for both stacks.
	old := filesession.NewIDOf(24)
	p := filepath.Join(dir, old+".json")
	content := `{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"__lastAccess":` + ms(now.Add(-2*time.Hour)) + `}`
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, now.Add(-time.Minute), now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	var got tally
	runBin(t, "", "count", "--express", "--json", "--dir", dir).want(t, exitOK).decode(t, &got)
	if got != (tally{Live: 1, Expired: 1}) {
		t.Errorf("count --express = %+v, want 1 live, 1 expired", got)
	}
	var es []lsEntry
	runBin(t, "", "ls", "--express", "--json", "--all", "--dir", dir).want(t, exitOK).decode(t, &es)
	if len(es) != 2 || es[0].ID != live || es[1].ID != old || es[1].State != "expired" {
		t.Errorf("ls --express = %+v", es)
	}
	// Without --express the names are not the store's.
	runBin(t, "", "count", "--json", "--dir", dir).want(t, exitOK).decode(t, &got)
	if got.Live != 0 || got.Foreign != 2 {
		t.Errorf("count without --express = %+v, want 2 foreign files", got)
	}
	runBin(t, "", "reap", "--express", "--dir", dir).want(t, exitOK)
	if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reap --express left the expired Node session: %v", err)
	}
}

// TestEncryptedHashedDirectory checks the commands on a directory whose
// files are encrypted and named by a keyed hash of their IDs: with the keys
// they see everything (show decrypts), without them nothing is mistaken for
// a session, and verify --fix quarantines a corrupt file by its name.
func TestEncryptedHashedDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sessions")
	key := bytes.Repeat([]byte{0x42}, filestore.KeySize)
	nameKey := bytes.Repeat([]byte{0x17}, 16)
	s, err := filestore.Open(filestore.Options{Path: dir, EncryptionKeys: [][]byte{key}, HashNames: true, NameKey: nameKey, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	var ids []string
	for _, email := range []string{"ann@example.com", "bob@example.com"} {
		id := filesession.NewID()
		if err := s.Create(t.Context(), id, filesession.Record{
			Values:  map[string]json.RawMessage{"user": json.RawMessage(userValue(email))},
			Created: now, LastAccess: now, IdleTimeout: time.Hour,
		}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	keys := filepath.Join(t.TempDir(), "keys")
	names := filepath.Join(t.TempDir(), "name-key")
	if err := os.WriteFile(keys, []byte("# the ring, newest first\n"+base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(names, []byte(hex.EncodeToString(nameKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	with := func(args ...string) []string { // the command, the store's flags, the rest
		return append([]string{args[0], "--dir", dir, "--key-file", keys, "--hash-names", "--name-key-file", names}, args[1:]...)
	}

	var got tally
	runBin(t, "", with("count", "--json")...).want(t, exitOK).decode(t, &got)
	if got != (tally{Live: 2}) {
		t.Errorf("count with the keys = %+v", got)
	}
	var es []lsEntry
	runBin(t, "", with("ls", "--json", "--user", "bob@example.com")...).want(t, exitOK).decode(t, &es)
	if len(es) != 1 || es[0].ID != ids[1] || string(es[0].User) != userValue("bob@example.com") {
		t.Errorf("ls of an encrypted directory = %+v", es)
	}
	r := runBin(t, "", with("show", "--", ids[0])...).want(t, exitOK)
	if !strings.Contains(r.stdout, "ann@example.com") || strings.Contains(r.stdout, `"error"`) {
		t.Errorf("show did not decrypt:\n%s", r.stdout)
	}
	if r := runBin(t, "", with("show", "--", ids[0][:10])...); r.code != exitOK {
		t.Errorf("show of a prefix under hashed names: %d %s", r.code, r.stderr)
	}
	// Without the keys, count goes by the expiry hints, which need no key
	// (the sessions are live, for the application that has the keys);
	// reading the files shows that they cannot be opened, and verify says
	// why.
	runBin(t, "", "count", "--json", "--dir", dir, "--hash-names", "--name-key-file", names).want(t, exitOK).decode(t, &got)
	if got != (tally{Live: 2}) {
		t.Errorf("count without the keys = %+v, want 2 live by their hints", got)
	}
	runBin(t, "", "count", "--deep", "--json", "--dir", dir, "--hash-names", "--name-key-file", names).want(t, exitOK).decode(t, &got)
	if got != (tally{Unreadable: 2}) {
		t.Errorf("count --deep without the keys = %+v, want 2 unreadable", got)
	}
	if r := runBin(t, "", "verify", "--dir", dir, "--hash-names", "--name-key-file", names).want(t, exitProblems); !strings.Contains(r.stdout, "--key-file") {
		t.Errorf("verify without the keys:\n%s", r.stdout)
	}
	// A corrupt file at a hashed name has no ID to give: --fix moves it by
	// its name.
	corrupt := "sess_" + strings.Repeat("Z", filesession.IDLength) + ".json"
	if err := os.WriteFile(filepath.Join(dir, corrupt), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	runBin(t, "", with("verify", "--fix")...).want(t, exitOK)
	if _, err := os.Stat(filepath.Join(dir, corrupt+".corrupt")); err != nil {
		t.Errorf("the corrupt file was not quarantined: %v", err)
	}
	r = runBin(t, "", with("rm", "--", ids[0])...).want(t, exitOK)
	if _, err := s.Load(t.Context(), ids[0]); !errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("rm under hashed names left the session: %v\n%s", err, r.stdout)
	}
	runBin(t, "", "count", "--dir", dir, "--key-file", filepath.Join(t.TempDir(), "missing")).want(t, exitProblems)
}
