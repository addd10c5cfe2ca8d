package filestore_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
	"github.com/filesession/filesession/storetest"
)

// quiet is a logger for tests that do not look at log lines.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestConformance(t *testing.T) {
	for _, mode := range []filestore.SyncMode{filestore.SyncFull, filestore.SyncNone} {
		t.Run(mode.String(), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, now func() time.Time) filesession.Store {
				s, err := filestore.Open(filestore.Options{Path: t.TempDir(), Now: now, Sync: mode, Logger: quiet})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if err := s.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				})
				return s
			})
		})
	}
}
