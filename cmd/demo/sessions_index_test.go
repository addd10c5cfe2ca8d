package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The user index lives beside the sessions, in the demo's directory.
func TestSessionsIndexOnDisk(t *testing.T) {
	dir := t.TempDir()
	srv := demoServer(t, dir)
	b := newBrowser(t, srv.URL)
	b.loginAs("rae@example.com", "A")
	if fi, err := os.Stat(filepath.Join(dir, ".users")); err != nil || !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf(".users: %v, %v; want a private directory", fi, err)
	}
	// Listing goes through the store's index (which it completes on first
	// use), not a scan, though the store is wrapped for metrics.
	b.sessionsPage()
	if _, err := os.Stat(filepath.Join(dir, ".users", ".complete")); err != nil {
		t.Errorf("the sessions page did not use the user index: %v", err)
	}
}
