package redistest

import (
	"bufio"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestOwnServerLifecycle starts a server, kills it, restarts it on the same
// port, pauses and resumes it, checking PING at each step.
func TestOwnServerLifecycle(t *testing.T) {
	s := NewOwn(t)
	if err := ping(s.Addr, "", "", 0); err != nil {
		t.Fatalf("fresh server: %v", err)
	}
	addr := s.Addr
	s.Kill()
	if err := ping(addr, "", "", 0); err == nil {
		t.Fatal("killed server still answers PING")
	}
	if err := s.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if s.Addr != addr {
		t.Fatalf("restarted on %s, want %s", s.Addr, addr)
	}
	if err := ping(addr, "", "", 0); err != nil {
		t.Fatalf("restarted server: %v", err)
	}

	s.Pause()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial paused server: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	r := bufio.NewReader(c)
	if err := command(c, r, "PING"); err == nil {
		t.Fatal("paused server answered PING")
	}
	s.Resume()
	if err := ping(addr, "", "", 0); err != nil {
		t.Fatalf("resumed server: %v", err)
	}
}

// TestSharedIsReused checks that Shared hands every caller the same server.
func TestSharedIsReused(t *testing.T) {
	a, b := Shared(t), Shared(t)
	if a != b {
		t.Fatalf("Shared returned two servers: %s and %s", a.Addr, b.Addr)
	}
	if err := ping(a.Addr, "", "", 0); err != nil {
		t.Fatal(err)
	}
}

func TestUniquePrefix(t *testing.T) {
	if UniquePrefix(t) == UniquePrefix(t) {
		t.Fatal("UniquePrefix repeated itself")
	}
}

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestCluster checks that the one-node cluster serves every slot.
func TestCluster(t *testing.T) {
	s := NewCluster(t)
	c, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	info, err := bulkCommand(c, r, "CLUSTER", "INFO")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, "cluster_slots_assigned:16384") {
		t.Fatalf("CLUSTER INFO: %s", info)
	}
}
