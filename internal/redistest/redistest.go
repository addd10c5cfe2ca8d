// Package redistest gives tests a real Redis server: a throwaway
// redis-server process of their own, or the server that REDIS_URL names.
//
// A throwaway server listens on a free loopback port, keeps its files in a
// temporary directory and persists nothing (--save "" --appendonly no), so
// tests start from an empty server and leave nothing behind. The process is
// also killed if the test binary dies (Linux parent-death signal), so an
// aborted test run does not leak servers.
//
// When REDIS_URL is set (redis://[user:password@]host:port[/db]), New and
// Shared return that server instead of starting one. It is shared with
// whatever else uses it, so tests isolate themselves by key prefix
// (UniquePrefix) and never flush the database. Tests that must kill or
// restart the server (NewOwn) always start their own process.
//
// When redis-server is not on PATH and REDIS_URL is not set, tests are
// skipped with a message to run scripts/install-redis.sh — except under
// CI=true, where a missing Redis is a failure, so that CI never passes by
// testing nothing.
//
// This package deliberately speaks the few RESP commands it needs (PING,
// AUTH, SELECT) itself instead of importing go-redis, which the module keeps
// confined to the redisstore package.
package redistest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a new server may take to answer PING. It is
// generous because a loaded CI machine can be slow to exec; a healthy start
// takes a few milliseconds.
const startTimeout = 20 * time.Second

// Server is a Redis server a test can use.
type Server struct {
	// Addr is the server's host:port, e.g. "127.0.0.1:40123".
	Addr string
	// URL is a redis:// URL for the server, including any password and
	// database number from REDIS_URL, for redis.ParseURL.
	URL string
	// External reports whether the server came from REDIS_URL (shared, not
	// ours to kill or restart) rather than being a process of our own.
	External bool

	mu   sync.Mutex
	bin  string
	dir  string
	port int
	args []string // extra redis-server arguments
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
}

// Start returns the address of a Redis server for tb: REDIS_URL's server if
// it is set, otherwise a new throwaway server that is stopped when tb ends.
// See New.
func Start(tb testing.TB) string {
	tb.Helper()
	return New(tb).Addr
}

// New returns a Redis server for tb: REDIS_URL's server if it is set,
// otherwise a new throwaway redis-server process stopped in tb.Cleanup. If
// neither is available, tb is skipped, or failed under CI=true.
func New(tb testing.TB) *Server {
	tb.Helper()
	if s, ok := external(tb); ok {
		return s
	}
	return NewOwn(tb)
}

// NewOwn starts a throwaway redis-server process for tb, whatever REDIS_URL
// says, for tests that kill, pause or restart it. It is stopped in
// tb.Cleanup. If redis-server is not on PATH, tb is skipped, or failed under
// CI=true.
func NewOwn(tb testing.TB) *Server {
	tb.Helper()
	bin := lookBinary(tb)
	s, err := launch(bin, tb.TempDir())
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// NewCluster starts a throwaway redis-server in cluster mode that serves all
// 16384 hash slots by itself, stopped in tb.Cleanup. A one-node cluster is
// enough to test cluster clients for real: the server answers CLUSTER SLOTS,
// and refuses with CROSSSLOT any script or command whose keys hash to
// different slots, exactly as a many-node cluster would. If redis-server is
// not on PATH, tb is skipped, or failed under CI=true. REDIS_URL is not used.
func NewCluster(tb testing.TB) *Server {
	tb.Helper()
	bin := lookBinary(tb)
	dir := tb.TempDir()
	s, err := launch(bin, dir,
		"--cluster-enabled", "yes",
		"--cluster-config-file", filepath.Join(dir, "nodes.conf"))
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(s.Stop)
	if err := s.assignAllSlots(); err != nil {
		tb.Fatalf("redistest: cluster setup: %v", err)
	}
	return s
}

// assignAllSlots gives the one node every slot and waits until the cluster
// reports itself ok.
func (s *Server) assignAllSlots() error {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(startTimeout))
	if err := command(c, r, "CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
		return err
	}
	for {
		info, err := bulkCommand(c, r, "CLUSTER", "INFO")
		if err != nil {
			return err
		}
		if strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var shared struct {
	sync.Mutex
	srv *Server
	dir string
}

// Shared returns one server for the whole test binary, started on first use
// (or REDIS_URL's server), so that a package's tests do not each pay for a
// process start. Tests sharing it isolate themselves with UniquePrefix. Call
// Main from TestMain so the server is stopped when the tests end; without it
// the server still dies with the test binary.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	if s, ok := external(tb); ok {
		return s
	}
	shared.Lock()
	defer shared.Unlock()
	if shared.srv != nil {
		return shared.srv
	}
	bin := lookBinary(tb)
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	s, err := launch(bin, dir)
	if err != nil {
		os.RemoveAll(dir)
		tb.Fatalf("redistest: %v", err)
	}
	shared.srv, shared.dir = s, dir
	return s
}

// Main runs the tests and then stops the server Shared started, if any. Use
// it as: func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	shared.Lock()
	if shared.srv != nil {
		shared.srv.Stop()
		os.RemoveAll(shared.dir)
		shared.srv = nil
	}
	shared.Unlock()
	return code
}

// UniquePrefix returns a key prefix no other test uses ("t<random>:"), so
// tests sharing a server, or REDIS_URL's server, never see each other's keys.
func UniquePrefix(tb testing.TB) string {
	var b [6]byte
	rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:]) + ":"
}

// Kill stops the server at once with SIGKILL, as a crash would, and waits
// for the process to exit. It panics on a REDIS_URL server, which is not ours
// to kill (NewOwn never returns one).
func (s *Server) Kill() {
	if s.External {
		panic("redistest: Kill on a REDIS_URL server")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signalAndWait(syscall.SIGKILL)
}

// Stop stops the server (SIGTERM, then SIGKILL after a few seconds) and
// waits for it to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.External {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT) // a paused server cannot act on SIGTERM
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		s.cmd = nil
	case <-time.After(5 * time.Second):
		s.signalAndWait(syscall.SIGKILL)
	}
}

// Pause freezes the server with SIGSTOP: connections stay open but nothing
// answers, as with a hung server or a network partition. Resume undoes it;
// Stop and Kill also work on a paused server. Like Kill, it panics on a
// REDIS_URL server.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume lets a paused server run again.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

// Restart starts the server again on the same port, with an empty dataset
// (nothing is persisted), after Kill or Stop; if it is running it is stopped
// first. It waits until the server answers PING.
func (s *Server) Restart() error {
	if s.External {
		return errors.New("redistest: Restart on a REDIS_URL server")
	}
	s.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.start()
}

func (s *Server) signal(sig syscall.Signal) {
	if s.External {
		panic("redistest: signal to a REDIS_URL server")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(sig)
	}
}

// signalAndWait sends sig and waits for the exit; s.mu must be held.
func (s *Server) signalAndWait(sig syscall.Signal) {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(sig)
	<-s.done
	s.cmd = nil
}

// launch starts a server from bin in dir on a free port, retrying with
// another port if one is taken between choosing it and the server binding it.
func launch(bin, dir string, args ...string) (*Server, error) {
	var err error
	for range 5 {
		var port int
		port, err = freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{bin: bin, dir: dir, port: port, args: args}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.URL = "redis://" + s.Addr + "/0"
		if err = s.start(); err == nil {
			return s, nil
		}
	}
	return nil, err
}

// start execs redis-server on s.port and waits for PING; s.mu must be held
// (or s not yet shared).
func (s *Server) start() error {
	logPath := filepath.Join(s.dir, "redis.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--protected-mode", "yes",
	)
	cmd.Args = append(cmd.Args, s.args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Kill the server if the test binary dies, so no run leaks servers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()

	deadline := time.Now().Add(startTimeout)
	for {
		if err := ping(s.Addr, "", "", 0); err == nil {
			s.cmd, s.done = cmd, done
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on port %d exited at start: %s", s.port, tail(logPath))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server on port %d did not answer PING within %v: %s", s.port, startTimeout, tail(logPath))
		}
	}
}

// external returns REDIS_URL's server, checked with PING, if it is set.
func external(tb testing.TB) (*Server, bool) {
	tb.Helper()
	raw := os.Getenv("REDIS_URL")
	if raw == "" {
		return nil, false
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		tb.Fatalf("redistest: REDIS_URL %q is not a redis:// URL", raw)
	}
	if u.Scheme == "rediss" {
		tb.Fatalf("redistest: REDIS_URL uses TLS (rediss://), which these tests do not support")
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "6379")
	}
	user := u.User.Username()
	pass, _ := u.User.Password()
	db := 0
	if p := strings.Trim(u.Path, "/"); p != "" {
		if db, err = strconv.Atoi(p); err != nil {
			tb.Fatalf("redistest: REDIS_URL database %q is not a number", p)
		}
	}
	if err := ping(host, user, pass, db); err != nil {
		tb.Fatalf("redistest: REDIS_URL server does not answer: %v", err)
	}
	return &Server{Addr: host, URL: raw, External: true}, true
}

// lookBinary finds redis-server, or skips tb (fails it under CI=true).
func lookBinary(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err == nil {
		return bin
	}
	msg := "redistest: redis-server not found on PATH; run scripts/install-redis.sh (or set REDIS_URL)"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg + " — a missing Redis fails under CI=true")
	}
	tb.Skip(msg)
	return ""
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ping checks that addr answers PING, after AUTH and SELECT when given.
func ping(addr, user, pass string, db int) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReader(c)
	if pass != "" {
		args := []string{"AUTH", pass}
		if user != "" {
			args = []string{"AUTH", user, pass}
		}
		if err := command(c, r, args...); err != nil {
			return err
		}
	}
	if db != 0 {
		if err := command(c, r, "SELECT", strconv.Itoa(db)); err != nil {
			return err
		}
	}
	return command(c, r, "PING")
}

// command sends one RESP command and accepts a simple-string reply.
func command(c net.Conn, r *bufio.Reader, args ...string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+") {
		return fmt.Errorf("%s: %s", args[0], strings.TrimSpace(line))
	}
	return nil
}

// bulkCommand sends one RESP command and returns its bulk-string reply.
func bulkCommand(c net.Conn, r *bufio.Reader, args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(line, "$") {
		return "", fmt.Errorf("%s: %s", args[0], strings.TrimSpace(line))
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 0 {
		return "", fmt.Errorf("%s: bad bulk length %q", args[0], line)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// tail returns the end of the server's log, for start-up failure messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}
