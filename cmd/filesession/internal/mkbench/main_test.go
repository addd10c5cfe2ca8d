package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
)

// TestGeneratedDirectoryIsTheStores checks that mkbench writes what the
// store writes, and that the store reads every file it makes with the
// intended state.
func TestGeneratedDirectoryIsTheStores(t *testing.T) {
	if err := checkFormat(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "s")
	now := time.Now()
	if n, err := generate(dir, 200, 0.1, 7, false, 3, now); err != nil || n != 200 {
		t.Fatalf("generate = %d, %v", n, err)
	}
	s, err := filestore.Open(filestore.Options{Path: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	live, expired := 0, 0
	err = s.List(context.Background(), func(id string, r filesession.Record) error {
		if r.Expired(time.Now()) {
			expired++
		} else {
			live++
		}
		return nil
	})
	if err != nil || live != 180 || expired != 20 {
		t.Errorf("List: %d live, %d expired, %v; want 180, 20", live, expired, err)
	}
	// -only-expired restores the expired ones a reap removed, and only those.
	if n, err := s.Reap(context.Background()); err != nil || n != 20 {
		t.Fatalf("Reap = %d, %v", n, err)
	}
	if n, err := generate(dir, 200, 0.1, 7, true, 3, now); err != nil || n != 20 {
		t.Errorf("generate -only-expired = %d, %v; want 20", n, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 201 { // and the lock file
		t.Errorf("%d entries, want 201", len(ents))
	}
}
