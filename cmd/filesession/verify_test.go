package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"golang.org/x/sys/unix"
)

// TestVerifyFindsAndFixesEveryProblem plants one of each problem verify
// knows, checks that verify reports each and changes nothing, that
// verify --fix repairs what it can and says so, and that what it cannot
// repair (files that are not the store's) stays reported until removed.
func TestVerifyFindsAndFixesEveryProblem(t *testing.T) {
	f := newFixture(t)
	n := f.now
	good := f.live(userValue("ann@example.com"), time.Hour, time.Minute)
	expired := f.create(sess{created: n.Add(-3 * time.Hour), lastAccess: n.Add(-2 * time.Hour), idle: time.Hour})[0]

	id := func() string { return filesession.NewID() }
	corrupt, truncated, oversize := id(), id(), id()
	f.write(f.name(corrupt), "not json at all", 0o600, n)
	f.write(f.name(truncated), `{"cookie":{"originalMaxAge":3600000},"user":{"email":"x`, 0o600, n)
	f.write(f.name(oversize), `{"big":"`+strings.Repeat("x", 1<<20)+`"}`, 0o600, n)
	readable := f.live(userValue("bob@example.com"), time.Hour, time.Minute)
	if err := os.Chmod(f.path(f.name(readable)), 0o644); err != nil {
		t.Fatal(err)
	}
	writable := id()
	f.write(f.name(writable), `{"cookie":{},"user":"mallory"}`, 0o666, n)
	symlink := id()
	target := filepath.Join(t.TempDir(), "elsewhere.json")
	if err := os.WriteFile(target, []byte(`{"cookie":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, f.path(f.name(symlink))); err != nil {
		t.Fatal(err)
	}
	fifo, dir := id(), id()
	if err := unix.Mkfifo(f.path(f.name(fifo)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(f.path(f.name(dir)), 0o700); err != nil {
		t.Fatal(err)
	}
	var otherOwner string
	if os.Geteuid() == 0 {
		otherOwner = id()
		f.write(f.name(otherOwner), `{"cookie":{}}`, 0o600, n)
		if err := os.Lchown(f.path(f.name(otherOwner)), 4321, 4321); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Log("not root: a file of another user cannot be planted; that case is not checked")
	}
	staleTemp := "." + f.name(id()) + ".0123456789abcdef.tmp"
	freshTemp := "." + f.name(id()) + ".fedcba9876543210.tmp"
	f.write(staleTemp, "{", 0o600, n.Add(-time.Hour))
	f.write(freshTemp, "{", 0o600, n)
	quarantined := f.name(id()) + ".corrupt"
	f.write(quarantined, "old", 0o600, n)
	f.write("notes.txt", "someone's notes", 0o644, n)
	f.write("sess_short.json", "{}", 0o600, n) // the right pattern, not a valid ID
	f.write(secretFileName, strings.Repeat("ab", 32)+"\n", 0o644, n)
	if err := os.Mkdir(f.path(indexDirName), 0o700); err != nil { // the per-user index: no problem
		t.Fatal(err)
	}
	if err := os.Chmod(f.path(".filesession.lock"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f.dir, 0o750); err != nil {
		t.Fatal(err)
	}

	fixable := []string{
		f.dir, f.name(corrupt), f.name(truncated), f.name(oversize), f.name(readable), f.name(writable),
		f.name(symlink), f.name(fifo), f.name(dir), staleTemp, secretFileName, ".filesession.lock",
	}
	if otherOwner != "" {
		fixable = append(fixable, f.name(otherOwner))
	}
	unfixable := []string{"notes.txt", "sess_short.json"}
	slices.Sort(fixable)

	type report struct {
		Problems []finding
		Counts   tally
		Notices  notices
		Found    int
		Fixed    int
		OK       bool
	}
	byName := func(r report) map[string]finding {
		m := map[string]finding{}
		for _, p := range r.Problems {
			if _, dup := m[p.Name]; dup {
				t.Errorf("verify reported %s twice", p.Name)
			}
			m[p.Name] = p
		}
		return m
	}

	before := f.snapshot()
	var got report
	f.run("verify", "--json").want(t, exitProblems).decode(t, &got)
	f.unchanged(before, "verify")
	found := byName(got)
	for _, name := range append(append([]string{}, fixable...), unfixable...) {
		p, ok := found[name]
		switch {
		case !ok:
			t.Errorf("verify did not report %s", name)
		case p.Fixed:
			t.Errorf("verify without --fix says it fixed %s", name)
		case slices.Contains(unfixable, name) != (p.Fix == ""):
			t.Errorf("%s: fix %q", name, p.Fix)
		}
	}
	if len(found) != len(fixable)+len(unfixable) {
		t.Errorf("verify reported %d problems, want %d: %v", len(found), len(fixable)+len(unfixable), got.Problems)
	}
	if got.Notices != (notices{Expired: 1, Quarantined: 1, TempInUse: 1}) {
		t.Errorf("notices = %+v", got.Notices)
	}
	if p := found[f.name(symlink)]; !strings.Contains(p.Problem, "symlink") {
		t.Errorf("symlink problem: %q", p.Problem)
	}
	if otherOwner != "" && !strings.Contains(found[f.name(otherOwner)].Problem, "uid 4321") {
		t.Errorf("other owner problem: %q", found[f.name(otherOwner)].Problem)
	}
	// The table says the same, one line per problem.
	r := f.run("verify").want(t, exitProblems)
	if c := strings.Count(r.stdout, "PROBLEM  "); c != len(found) || !strings.Contains(r.stdout, "--fix would quarantine") {
		t.Errorf("verify table (%d problem lines, want %d):\n%s", c, len(found), r.stdout)
	}

	// --fix repairs every fixable problem and reports the rest.
	got = report{}
	f.run("verify", "--fix", "--json").want(t, exitProblems).decode(t, &got)
	fixed := byName(got)
	for _, name := range fixable {
		if p := fixed[name]; !p.Fixed {
			t.Errorf("--fix did not fix %s: %+v", name, p)
		}
	}
	for _, name := range unfixable {
		if p := fixed[name]; p.Fixed || p.Name == "" {
			t.Errorf("--fix on %s: %+v", name, p)
		}
	}
	if got.Found != len(fixable)+len(unfixable) || got.Fixed != len(fixable) || got.OK {
		t.Errorf("--fix summary: found %d, fixed %d, ok %v", got.Found, got.Fixed, got.OK)
	}

	// What the repairs did, on disk.
	mode := func(name string) fs.FileMode {
		fi, err := os.Lstat(f.path(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return fi.Mode()
	}
	if m := mode("."); m.Perm() != 0o700 {
		t.Errorf("directory mode after --fix: %v", m)
	}
	for _, name := range []string{f.name(readable), secretFileName, ".filesession.lock"} {
		if m := mode(name); m.Perm() != 0o600 {
			t.Errorf("%s mode after --fix: %v", name, m)
		}
	}
	quarantinedNow := []string{corrupt, truncated, oversize, writable, symlink, fifo, dir}
	if otherOwner != "" {
		quarantinedNow = append(quarantinedNow, otherOwner)
	}
	for _, qid := range quarantinedNow {
		if _, err := os.Lstat(f.path(f.name(qid))); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still at its session name: %v", f.name(qid), err)
		}
		if _, err := os.Lstat(f.path(f.name(qid) + ".corrupt")); err != nil {
			t.Errorf("%s was not quarantined: %v", f.name(qid), err)
		}
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != `{"cookie":{}}` {
		t.Errorf("the symlink's target was touched: %q, %v", b, err)
	}
	if _, err := os.Lstat(f.path(staleTemp)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temp file still there: %v", err)
	}
	for _, name := range []string{freshTemp, "notes.txt", "sess_short.json", f.name(good), f.name(expired), quarantined} {
		if _, err := os.Lstat(f.path(name)); err != nil {
			t.Errorf("--fix removed %s: %v", name, err)
		}
	}
	if _, err := f.s.Load(t.Context(), readable); err != nil {
		t.Errorf("the session whose mode was fixed does not load: %v", err)
	}

	// Once the operator removes what is not the store's, verify is clean.
	for _, name := range unfixable {
		if err := os.Remove(f.path(name)); err != nil {
			t.Fatal(err)
		}
	}
	r = f.run("verify").want(t, exitOK)
	if !strings.Contains(r.stdout, "verify: 0 problems") || !strings.Contains(r.stdout, "quarantined *.corrupt files") {
		t.Errorf("clean verify:\n%s", r.stdout)
	}
}

// TestVerifyRefusesAnUnsafeDirectory checks that a directory others can
// write is reported, and that the store is not opened on it without --fix.
func TestVerifyRefusesAnUnsafeDirectory(t *testing.T) {
	f := newFixture(t)
	f.live("", time.Minute, time.Minute)
	if err := os.Chmod(f.dir, 0o777); err != nil {
		t.Fatal(err)
	}
	r := f.run("verify").want(t, exitProblems)
	if !strings.Contains(r.stdout, "mode 0777") || !strings.Contains(r.stdout, "--fix would chmod 700") {
		t.Errorf("verify of a 0777 directory:\n%s", r.stdout)
	}
	f.run("verify", "--fix").want(t, exitOK)
	if fi, err := os.Stat(f.dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory after verify --fix: %v, %v", fi.Mode(), err)
	}
}

// TestVerifyFindsAnOutOfDateUserIndex removes the per-user index's files by
// hand, as an operator might, and checks that verify reports the sessions
// it no longer lists (revoke --user would miss them), that --fix rebuilds
// it, and that verify is clean afterwards.
func TestVerifyFindsAnOutOfDateUserIndex(t *testing.T) {
	f := newFixture(t)
	n := f.now
	ids := f.create(
		sess{created: n.Add(-time.Hour), lastAccess: n.Add(-time.Minute), idle: 2 * time.Hour, owner: "ann"},
		sess{created: n.Add(-time.Hour), lastAccess: n.Add(-time.Minute), idle: 2 * time.Hour, owner: "bob"},
	)
	// The store marks its index complete once it has built it by a scan.
	s := f.open(f.dir)
	if err := s.RebuildUserIndex(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	f.run("verify").want(t, 0)

	// Drop every user's index file, keeping the directory, its salt and its
	// completeness marker: the index now claims to be complete but lists
	// nothing.
	entries, err := os.ReadDir(f.path(indexDirName))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			if err := os.Remove(filepath.Join(f.path(indexDirName), e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := f.run("verify").want(t, 1)
	for _, id := range ids {
		if !strings.Contains(r.stdout, f.name(id)) || !strings.Contains(r.stdout, "missing from the per-user index") {
			t.Fatalf("verify did not report %s:\n%s", f.name(id), r.stdout)
		}
	}
	f.run("verify", "--fix").want(t, 0)
	f.run("verify").want(t, 0)
	s = f.open(f.dir)
	defer s.Close()
	for i, user := range []string{"ann", "bob"} {
		if ok, err := s.UserIndexed(t.Context(), ids[i], user); err != nil || !ok {
			t.Fatalf("after verify --fix, %s is not indexed under %s: %v", f.name(ids[i]), user, err)
		}
	}
}
