// Package expresstest runs the real Express app of testdata/express
// (express-session 1.19.0 + session-file-store 1.5.0, server.js) for the
// interop tests and benchmarks, and gives them a browser: one HTTP client
// with one cookie jar that talks to both the Node and the Go server.
//
// Node and the packages are real dependencies, not mocks. If node is not on
// PATH, or testdata/express/node_modules is missing (scripts/test.sh runs
// npm ci there), tests skip with instructions, except under CI=true, where
// they fail.
package expresstest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// AppDir returns the path of the module's testdata/express: found from
// the working directory upwards (go test runs in the package's directory),
// else from this source file's location.
func AppDir() string {
	const rel = "testdata/express"
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, rel, "package.json")); err == nil {
				return filepath.Join(d, rel)
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", rel)
}

// missing skips t, or fails it under CI=true, because a dependency is not
// there.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: the Express interop tests must run)")
	}
	t.Skip(msg)
}

// Node returns the path of the node binary and checks that the fixture's
// packages are installed. It skips t (fails it under CI=true) if either is
// missing, saying how to get them.
func Node(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not on PATH: install Node.js 18 or later (Debian: apt-get install nodejs npm) to run the Express interop tests")
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", node, err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	if major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0]); major < 18 {
		missing(t, "node %s is too old: the Express interop tests need Node.js 18 or later", v)
	}
	for _, pkg := range []string{"express", "express-session", "session-file-store"} {
		if _, err := os.Stat(filepath.Join(AppDir(), "node_modules", pkg, "package.json")); err != nil {
			missing(t, "%s is not installed: run `npm ci` in %s (scripts/test.sh does it)", pkg, AppDir())
		}
	}
	return node
}

// Config is how Start runs server.js; see its header for the meaning of
// each setting.
type Config struct {
	// Dir is the sessions directory (SESSIONS_DIR). Required.
	Dir string
	// Secrets are express-session's secret list: the first signs.
	Secrets []string
	// TTL is session-file-store's ttl (whole seconds). Zero means its
	// default, 1h.
	TTL time.Duration
	// MaxAge is cookie.maxAge. Zero means server.js's default, 24h.
	MaxAge time.Duration
	// ReapInterval is session-file-store's reapInterval (whole seconds,
	// at least one). Zero disables Node's reaper.
	ReapInterval time.Duration
	// Retries is session-file-store's retries; tests want 0 so that a
	// missing file is one failed read, not five delayed ones.
	Retries int
}

// startTimeout bounds how long server.js may take to start listening.
const startTimeout = 30 * time.Second

// Server is a running server.js.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:<port>.
	URL string

	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
}

// Start runs server.js with cfg and its test hooks on a free loopback port
// and returns once it listens. The server is stopped (SIGTERM, then kill)
// when t ends, and its log is printed if t failed.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	node := Node(t)
	secret := cfg.Secrets[0]
	if len(cfg.Secrets) > 1 {
		b, _ := json.Marshal(cfg.Secrets)
		secret = string(b)
	}
	env := append(os.Environ(),
		"PORT=0",
		"SESSIONS_DIR="+cfg.Dir,
		"SECRET="+secret,
		"RETRIES="+strconv.Itoa(cfg.Retries),
		"TEST_HOOKS=1",
	)
	if cfg.TTL > 0 {
		env = append(env, "TTL="+strconv.Itoa(int(cfg.TTL/time.Second)))
	}
	if cfg.MaxAge > 0 {
		env = append(env, "MAX_AGE="+strconv.FormatInt(cfg.MaxAge.Milliseconds(), 10))
	}
	reap := "-1"
	if cfg.ReapInterval > 0 {
		reap = strconv.Itoa(max(1, int(cfg.ReapInterval/time.Second)))
	}
	env = append(env, "REAP_INTERVAL="+reap)

	s := &Server{}
	cmd := exec.Command(node, filepath.Join(AppDir(), "server.js"))
	cmd.Dir = AppDir()
	cmd.Env = env
	cmd.Stderr = &lockedWriter{mu: &s.mu, w: &s.stderr}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting server.js: %v", err)
	}
	s.cmd = cmd
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("server.js log:\n%s", s.Log())
		}
	})
	type result struct {
		line string
		err  error
	}
	first := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		first <- result{line, err}
	}()
	var line string
	select {
	case r := <-first:
		if r.err != nil {
			s.stop()
			t.Fatalf("server.js did not start: %v\n%s", r.err, s.Log())
		}
		line = r.line
	case <-time.After(startTimeout):
		s.stop()
		t.Fatalf("server.js did not listen within %v\n%s", startTimeout, s.Log())
	}
	var ev struct {
		Event string `json:"event"`
		Port  int    `json:"port"`
	}
	if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Event != "listening" {
		t.Fatalf("server.js said %q, want its listening line", line)
	}
	go io.Copy(io.Discard, stdout)
	s.URL = "http://127.0.0.1:" + strconv.Itoa(ev.Port)
	return s
}

// stop ends the server: SIGTERM, and a kill if it has not exited in 5s.
func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// Log returns what the server wrote to stderr so far.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// hook calls one of server.js's /__test routes and decodes its JSON answer.
func (s *Server) hook(t testing.TB, method, path string, body any, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL+"/__test"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s /__test%s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s /__test%s: %s %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s /__test%s: %v in %s", method, path, err, b)
		}
	}
}

// SetClock sets Node's clock to the real time plus offset, the same clock
// the Go side's tests inject (see Clock).
func (s *Server) SetClock(t testing.TB, offset time.Duration) {
	t.Helper()
	s.hook(t, http.MethodPost, "/clock", map[string]int64{"offsetMs": offset.Milliseconds()}, nil)
}

// ReapPasses returns how many passes of session-file-store's interval reaper
// have started once more than after have: it waits for the next one.
func (s *Server) ReapPasses(t testing.TB, after int) int {
	t.Helper()
	var out struct{ Passes int }
	s.hook(t, http.MethodGet, "/reaps?after="+strconv.Itoa(after), nil, &out)
	return out.Passes
}

// Reap runs one complete pass of session-file-store's reap logic (its list
// and destroyIfExpired) and returns when every file has been dealt with.
func (s *Server) Reap(t testing.TB) {
	t.Helper()
	var out struct{ Errors []string }
	s.hook(t, http.MethodPost, "/reap", nil, &out)
	if len(out.Errors) > 0 {
		t.Fatalf("Node's reap pass failed: %v", out.Errors)
	}
}

// Expired returns session-file-store's verdict on session sid
// (store.expired): whether it is expired, or missing if there is no file.
func (s *Server) Expired(t testing.TB, sid string) (expired, missing bool) {
	t.Helper()
	var out struct{ Expired, Missing bool }
	s.hook(t, http.MethodGet, "/expired?sid="+url.QueryEscape(sid), nil, &out)
	return out.Expired, out.Missing
}

// Clock is a clock for the Go side that runs with real time plus an offset
// the test moves forward, in step with Node's (Server.SetClock): the servers
// are real, so their clocks run, but expiry is reached by moving the offset,
// never by sleeping.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now returns the real time plus the offset.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the Go clock and, for each server given, Node's clock
// forward by d.
func (c *Clock) Advance(t testing.TB, d time.Duration, nodes ...*Server) {
	t.Helper()
	c.mu.Lock()
	c.offset += d
	off := c.offset
	c.mu.Unlock()
	for _, s := range nodes {
		s.SetClock(t, off)
	}
}
