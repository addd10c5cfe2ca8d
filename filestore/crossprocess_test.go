package filestore_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
)

const (
	helperDirEnv = "FILESTORE_TEST_HELPER_DIR"
	helperIDEnv  = "FILESTORE_TEST_HELPER_ID"
	increments   = 50
)

// increment adds increments to the counter n of session id, one Update at
// a time.
func increment(t *testing.T, s *filestore.Store, id string) {
	for range increments {
		err := s.Update(t.Context(), id, func(r *filesession.Record) error {
			n, err := strconv.Atoi(string(r.Values["n"]))
			if err != nil {
				return err
			}
			r.Values["n"] = json.RawMessage(strconv.Itoa(n + 1))
			return nil
		})
		if err != nil {
			t.Error(err)
			return
		}
	}
}

// TestCrossProcessHelper is the child process of TestCrossProcessUpdates;
// run normally (without its environment) it does nothing.
func TestCrossProcessHelper(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		return
	}
	s, err := filestore.Open(filestore.Options{Path: dir, Sync: filestore.SyncNone, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	increment(t, s, os.Getenv(helperIDEnv))
}

// Three processes and this one increment one counter with Update: the
// per-session lock holds across processes, so no increment is lost.
func TestCrossProcessUpdates(t *testing.T) {
	dir := t.TempDir()
	s, err := filestore.Open(filestore.Options{Path: dir, Sync: filestore.SyncNone, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := filesession.NewID()
	now := time.Now()
	r := filesession.Record{Values: map[string]json.RawMessage{"n": json.RawMessage("0")}, Created: now, LastAccess: now, IdleTimeout: time.Hour}
	if err := s.Create(t.Context(), id, r); err != nil {
		t.Fatal(err)
	}
	const children = 3
	var wg sync.WaitGroup
	for range children {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrossProcessHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperDirEnv+"="+dir, helperIDEnv+"="+id)
		wg.Go(func() {
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("child: %v\n%s", err, out)
			}
		})
	}
	wg.Go(func() { increment(t, s, id) })
	wg.Wait()
	got, err := s.Load(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa((children + 1) * increments); string(got.Values["n"]) != want {
		t.Errorf("counter = %s, want %s: an increment was lost", got.Values["n"], want)
	}
}
