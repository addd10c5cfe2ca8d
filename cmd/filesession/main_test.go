package main

// The tests run the real binary, built once in TestMain, on directories
// made through the real file store.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
	"github.com/filesession/filesession/internal/redistest"
	"golang.org/x/sys/unix"
)

// binary is the filesession binary under test.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "filesession-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "filesession")
	build := exec.Command(goTool(), "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the filesession binary:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := redistest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// goTool finds the go command that runs these tests.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); runtime.GOROOT() != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// runBin runs the binary with args and stdin, in dir's parent, and returns
// what it printed and its exit status.
func runBin(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running filesession %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// want checks a run's exit status.
func (r result) want(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	return r
}

// decode decodes the run's stdout as JSON into v.
func (r result) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("stdout is not the JSON expected: %v\n%s", err, r.stdout)
	}
}

// fixture is a session directory filled through the real file store.
type fixture struct {
	t   *testing.T
	dir string
	s   *filestore.Store
	// now is the real time when the fixture was made. Sessions are made
	// hours or minutes from it, so that the binary's own clock, a few
	// seconds later, sees the same states.
	now time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: filepath.Join(t.TempDir(), "sessions"), now: time.Now().Truncate(time.Millisecond)}
	f.s = f.open(f.dir)
	return f
}

// open opens a file store on dir, with no background reaper.
func (f *fixture) open(dir string) *filestore.Store {
	f.t.Helper()
	s, err := filestore.Open(filestore.Options{Path: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { s.Close() })
	return s
}

// sess describes a session to create.
type sess struct {
	created, lastAccess time.Time
	idle                time.Duration
	deadline            time.Time
	user                string // JSON of the "user" value; "" for none
	owner               string // Record.User (Session.SetUser); "" for none
	id                  string // "" for a new one
}

// create stores sessions through the store, as the application would have.
func (f *fixture) create(ss ...sess) []string {
	f.t.Helper()
	var ids []string
	for _, s := range ss {
		id := s.id
		if id == "" {
			id = filesession.NewID()
		}
		r := filesession.Record{
			Values:  map[string]json.RawMessage{"csrfToken": json.RawMessage(`"tok"`)},
			Created: s.created, LastAccess: s.lastAccess, IdleTimeout: s.idle, Deadline: s.deadline,
			Cookie: filesession.CookieAttrs{HTTPOnly: true, Path: "/", SameSite: "lax"},
			User:   s.owner,
		}
		if s.user != "" {
			r.Values["user"] = json.RawMessage(s.user)
		}
		if err := f.s.Create(context.Background(), id, r); err != nil {
			f.t.Fatalf("Create: %v", err)
		}
		ids = append(ids, id)
	}
	return ids
}

// live creates a session created ago and last seen seen ago, with a 1h
// idle timeout.
func (f *fixture) live(user string, ago, seen time.Duration) string {
	return f.create(sess{created: f.now.Add(-ago), lastAccess: f.now.Add(-seen), idle: time.Hour, user: user})[0]
}

func userValue(email string) string {
	return fmt.Sprintf(`{"userId":"id-%s","email":%q}`, strings.Split(email, "@")[0], email)
}

func (f *fixture) name(id string) string { return "sess_" + id + ".json" }

func (f *fixture) path(name string) string { return filepath.Join(f.dir, name) }

// write puts a file in the directory by hand, with both times at.
func (f *fixture) write(name, content string, mode os.FileMode, at time.Time) {
	f.t.Helper()
	p := f.path(name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Chtimes(p, at, at); err != nil {
		f.t.Fatal(err)
	}
}

// run runs the binary on the fixture's directory: args[0] is the command,
// given --dir right after it, so that the rest may end with "--" and
// arguments that start with '-'.
func (f *fixture) run(args ...string) result {
	f.t.Helper()
	return runBin(f.t, "", append([]string{args[0], "--dir", f.dir}, args[1:]...)...)
}

// snapshot is every entry's name and metadata, to prove a command changed
// nothing.
func (f *fixture) snapshot() map[string]unix.Stat_t {
	f.t.Helper()
	ents, err := os.ReadDir(f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	m := map[string]unix.Stat_t{}
	for _, e := range ents {
		var st unix.Stat_t
		if err := unix.Lstat(f.path(e.Name()), &st); err != nil {
			f.t.Fatal(err)
		}
		m[e.Name()] = st
	}
	return m
}

func (f *fixture) unchanged(before map[string]unix.Stat_t, what string) {
	f.t.Helper()
	after := f.snapshot()
	for name, st := range before {
		a, ok := after[name]
		switch {
		case !ok:
			f.t.Errorf("%s removed %s", what, name)
		case a.Mode != st.Mode || a.Size != st.Size || a.Mtim != st.Mtim || a.Atim != st.Atim || a.Ino != st.Ino:
			f.t.Errorf("%s changed %s", what, name)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			f.t.Errorf("%s created %s", what, name)
		}
	}
}

// names lists the directory, sorted.
func (f *fixture) names() []string {
	f.t.Helper()
	ents, err := os.ReadDir(f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

func TestUsageAndExitCodes(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		args []string
		code int
		want string // in stdout or stderr
	}{
		{nil, exitUsage, "Usage: filesession"},
		{[]string{"help"}, exitOK, "migrate --from STORE --to STORE"},
		{[]string{"help", "reap"}, exitOK, "-dry-run"},
		{[]string{"reap", "-h"}, exitOK, "Usage: filesession reap"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"count", "--no-such-flag"}, exitUsage, "flag provided but not defined"},
		{[]string{"count", "extra"}, exitUsage, "count takes no arguments"},
		{[]string{"count", "--ttl", "0s", "--dir", f.dir}, exitUsage, "--ttl must be positive"},
		{[]string{"rm", "--dir", f.dir}, exitUsage, "needs at least one session ID"},
		{[]string{"rm", "x", "--dir", f.dir}, exitUsage, "is not a session ID"},
		{[]string{"revoke", "--dir", f.dir}, exitUsage, "revoke needs --user"},
		{[]string{"show", "--dir", f.dir}, exitUsage, "show takes one session ID"},
		{[]string{"migrate", "--from", f.dir}, exitUsage, "migrate needs --from and --to"},
		{[]string{"migrate", "--from", f.dir, "--to", f.dir}, exitUsage, "the same store"},
		{[]string{"ls", "--sort", "colour", "--dir", f.dir}, exitUsage, "unknown --sort key"},
		{[]string{"count", "--dir", filepath.Join(f.dir, "missing")}, exitProblems, "no session directory"},
		// Flags may come before the command, after it, or after arguments.
		{[]string{"--dir", f.dir, "--json", "count"}, exitOK, `"live":0`},
		{[]string{"count", "--json", "--dir", f.dir}, exitOK, `"live":0`},
	} {
		r := runBin(t, "", tc.args...)
		if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.want) {
			t.Errorf("filesession %v: exit %d, want %d with %q\nstdout: %s\nstderr: %s", tc.args, r.code, tc.code, tc.want, r.stdout, r.stderr)
		}
	}
	// A reading command never creates the directory it was pointed at.
	if _, err := os.Stat(filepath.Join(f.dir, "missing")); err == nil {
		t.Error("count created the missing directory")
	}
}

// TestNoSymlinkFollowed checks that a symlinked directory is refused and
// that a symlink planted at a session's name is reported, never read
// through.
func TestNoSymlinkFollowed(t *testing.T) {
	f := newFixture(t)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(f.dir, link); err != nil {
		t.Fatal(err)
	}
	r := runBin(t, "", "count", "--dir", link).want(t, exitProblems)
	if !strings.Contains(r.stderr, "symlink") {
		t.Errorf("count on a symlinked directory: %s", r.stderr)
	}
	secret := filepath.Join(t.TempDir(), "secret.json")
	if err := os.WriteFile(secret, []byte(`{"cookie":{},"password":"hunter2"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	id := filesession.NewID()
	if err := os.Symlink(secret, f.path(f.name(id))); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"show", id}, {"ls", "--all", "--json"}, {"stats"}, {"verify"}} {
		r := f.run(args...)
		if strings.Contains(r.stdout+r.stderr, "hunter2") {
			t.Errorf("%v read through a symlink out of the directory:\n%s", args, r.stdout)
		}
	}
	r = f.run("show", id).want(t, exitProblems)
	if !strings.Contains(r.stdout, `"state": "unsafe"`) {
		t.Errorf("show of a symlink:\n%s", r.stdout)
	}
}
