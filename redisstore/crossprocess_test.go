package redisstore

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/internal/redistest"
)

const (
	counterProcs      = 2
	counterGoroutines = 32
	counterIncrements = 20
	helperEnv         = "REDISSTORE_COUNTER_HELPER"
)

// TestCrossProcessUpdateCounter re-executes the test binary twice; each
// child runs 32 goroutines that increment one session's counter with Update.
// No increment may be lost or doubled across processes, which only holds if
// Update's compare-and-swap is enforced by the server.
func TestCrossProcessUpdateCounter(t *testing.T) {
	srv := redistest.Shared(t)
	s := newTestStore(t, Options{})
	id := filesession.NewID()
	if err := s.Create(t.Context(), id, rec(time.Now(), "n", "0")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	outs := make([][]byte, counterProcs)
	errs := make([]error, counterProcs)
	for p := range counterProcs {
		wg.Go(func() {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrossProcessHelper$", "-test.count=1")
			cmd.Env = append(os.Environ(),
				helperEnv+"=1",
				"REDISSTORE_URL="+srv.URL,
				"REDISSTORE_PREFIX="+s.prefix,
				"REDISSTORE_ID="+id,
			)
			outs[p], errs[p] = cmd.CombinedOutput()
		})
	}
	wg.Wait()
	for p := range counterProcs {
		if errs[p] != nil {
			t.Errorf("child %d: %v\n%s", p, errs[p], outs[p])
		}
	}
	r, err := s.Load(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	want := strconv.Itoa(counterProcs * counterGoroutines * counterIncrements)
	if got := string(r.Values["n"]); got != want {
		t.Errorf("counter = %s after %d processes × %d goroutines × %d increments, want %s",
			got, counterProcs, counterGoroutines, counterIncrements, want)
	}
}

// TestCrossProcessHelper is the child of TestCrossProcessUpdateCounter; run
// directly it does nothing.
func TestCrossProcessHelper(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	c := clientFor(t, os.Getenv("REDISSTORE_URL"))
	defer c.Close()
	// Contention is the point here: give Update room to retry.
	s := New(c, Options{Prefix: os.Getenv("REDISSTORE_PREFIX"), Timeout: 30 * time.Second})
	id := os.Getenv("REDISSTORE_ID")
	var wg sync.WaitGroup
	for range counterGoroutines {
		wg.Go(func() {
			for range counterIncrements {
				err := s.Update(t.Context(), id, func(r *filesession.Record) error {
					var n int
					if err := json.Unmarshal(r.Values["n"], &n); err != nil {
						return fmt.Errorf("counter %q: %w", r.Values["n"], err)
					}
					r.Values["n"] = json.RawMessage(strconv.Itoa(n + 1))
					return nil
				})
				if err != nil {
					t.Errorf("Update: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}
