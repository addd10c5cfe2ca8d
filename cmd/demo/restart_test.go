//go:build unix

package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// demoProcess is the real demo binary running as a child process.
type demoProcess struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string

	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{} // closed when stderr reaches EOF
}

var listeningRE = regexp.MustCompile(`msg="demo: listening" addr=(\S+)`)

// buildDemo compiles the demo into a temporary directory, as `go build`
// would for a user.
func buildDemo(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build the demo: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "demo")
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startDemo starts the binary on a free port over dir, with no secret given
// (neither flag nor environment) unless extra (more flags) gives one, and
// waits for its "listening" log line, which names the address the kernel
// picked.
func startDemo(t *testing.T, bin, dir string, extra ...string) *demoProcess {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-dir", dir, "-ttl", "1h"}, extra...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SESSION_SECRET=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &demoProcess{t: t, cmd: cmd, done: make(chan struct{})}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
			p.cmd.Wait()
		}
	})
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
		io.Copy(io.Discard, pipe)
	}()
	select {
	case p.addr = <-addr:
	case <-p.done:
		t.Fatalf("demo exited before listening:\n%s", p.log())
	}
	return p
}

func (p *demoProcess) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// stop sends SIGTERM and waits for a clean exit.
func (p *demoProcess) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	<-p.done
	if err := p.cmd.Wait(); err != nil {
		p.t.Fatalf("demo did not exit cleanly on SIGTERM: %v\n%s", err, p.log())
	}
	if !strings.Contains(p.log(), `msg="demo: stopped"`) {
		p.t.Errorf("demo exited without a graceful shutdown:\n%s", p.log())
	}
}

// TestRestartKeepsSessions runs the real binary, logs in and counts, stops it
// with SIGTERM and starts it again on the same directory: the login, the
// counter and the CSRF token all survive, signed with the secret the first
// run generated and kept.
func TestRestartKeepsSessions(t *testing.T) {
	bin := buildDemo(t)
	dir := filepath.Join(t.TempDir(), "sessions")

	first := startDemo(t, bin, dir)
	b := newBrowser(t, "http://"+first.addr)
	b.login("lee@example.com")
	tok := b.token()
	for want := 1; want <= 3; want++ {
		if got := b.count(tok); got != want {
			t.Fatalf("count = %d, want %d", got, want)
		}
	}
	first.stop()

	fi, err := os.Stat(filepath.Join(dir, secretFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated secret after the first run: %v, mode %v; want a 0600 file", err, fi.Mode())
	}

	second := startDemo(t, bin, dir)
	b.base = "http://" + second.addr // the jar's cookies are per host, not per port
	// The token from before the restart is still good: it lives in the
	// session file, like the rest of the session.
	if got := b.count(tok); got != 4 {
		t.Errorf("count after restart = %d, want 4", got)
	}
	if code, u := b.me(); code != http.StatusOK || u.Email != "lee@example.com" || u.UserID != userID("lee@example.com") {
		t.Errorf("GET /api/me after restart = %d %+v, want lee still logged in", code, u)
	}
	second.stop()
}
