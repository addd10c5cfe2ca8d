package filestore_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Tests that need other processes re-execute the test binary, which runs
// TestChildProcess with the role they ask for in the environment; run
// normally, TestChildProcess does nothing.

const (
	childRoleEnv = "FILESTORE_TEST_CHILD_ROLE"
	childDirEnv  = "FILESTORE_TEST_CHILD_DIR"
	childArgEnv  = "FILESTORE_TEST_CHILD_ARG"
)

// childRoles are what a child process can be asked to do, each with the
// session directory and an argument. A role reports its result on stdout
// and fails the child (exit status 1) if anything went wrong.
var childRoles = map[string]func(t *testing.T, dir, arg string){}

func TestChildProcess(t *testing.T) {
	role := os.Getenv(childRoleEnv)
	if role == "" {
		return
	}
	fn, ok := childRoles[role]
	if !ok {
		t.Fatalf("unknown child role %q", role)
	}
	// A child never outlives a minute, even if its parent forgets it.
	time.AfterFunc(time.Minute, func() {
		fmt.Fprintln(os.Stderr, "child: running for a minute; exiting")
		os.Exit(2)
	})
	fn(t, os.Getenv(childDirEnv), os.Getenv(childArgEnv))
}

// childProc is a running child.
type childProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr strings.Builder
}

// startChild starts a child process in role on dir with arg. It is killed
// if this process dies (PR_SET_PDEATHSIG) and when the test ends.
func startChild(t *testing.T, role, dir, arg string) *childProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1", "-test.timeout=0")
	cmd.Env = append(os.Environ(),
		childRoleEnv+"="+role, childDirEnv+"="+dir, childArgEnv+"="+arg,
		// A race-enabled binary sleeps a second at exit unless told not to.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &childProc{cmd: cmd}
	cmd.Stderr = &c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.stdout = bufio.NewReader(out)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return c
}

// expect reads the child's next line of output and fails unless it is
// want.
func (c *childProc) expect(t *testing.T, want string) {
	t.Helper()
	line, err := c.stdout.ReadString('\n')
	if strings.TrimSpace(line) != want {
		t.Fatalf("child said %q (%v), want %q; stderr:\n%s", line, err, want, c.stderr.String())
	}
}

// send writes a line to the child's stdin.
func (c *childProc) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// wait waits for the child to exit and fails the test unless it succeeded.
// It returns the rest of its output.
func (c *childProc) wait(t *testing.T) string {
	t.Helper()
	rest, _ := io.ReadAll(c.stdout)
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("child: %v\nstdout:\n%s\nstderr:\n%s", err, rest, c.stderr.String())
	}
	return string(rest)
}

// childSay is how a child talks to its parent: a line on stdout.
func childSay(format string, args ...any) {
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

// childWait blocks the child until its parent sends a line.
func childWait(t *testing.T) {
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatalf("child: waiting for the parent: %v", err)
	}
}
