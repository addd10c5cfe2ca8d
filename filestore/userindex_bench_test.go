package filestore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
)

// What the per-user index costs, and what it saves:
//
//	create          a session without a user (no index work)
//	createWithUser  the same with a user: one more durable write, the index
//	                file's, before the session's
//	userSessions    listing one user's 5 sessions among 10,000, from the index
//	scan            the same answer from List, which reads every file
//
//	go test -run '^$' -bench UserIndex -benchtime 200x ./filestore
func BenchmarkUserIndex(b *testing.B) {
	for _, mode := range []filestore.SyncMode{filestore.SyncFull, filestore.SyncNone} {
		b.Run(mode.String(), func(b *testing.B) {
			ctx := context.Background()
			now := time.Now()
			s, err := filestore.Open(filestore.Options{Path: b.TempDir(), Sync: mode, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.Run("create", func(b *testing.B) {
				run(b, 1, func(int) error { return s.Create(ctx, filesession.NewID(), benchRecord(now)) })
			})
			b.Run("createWithUser", func(b *testing.B) {
				run(b, 1, func(i int) error {
					r := benchRecord(now)
					r.User = fmt.Sprintf("user-%d", i%100)
					return s.Create(ctx, filesession.NewID(), r)
				})
			})
		})
	}
	b.Run("list", func(b *testing.B) {
		ctx := context.Background()
		now := time.Now()
		s, err := filestore.Open(filestore.Options{Path: b.TempDir(), Sync: filestore.SyncNone, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		for i := range 10_000 {
			r := benchRecord(now)
			r.User = fmt.Sprintf("user-%d", i%2000)
			if err := s.Create(ctx, filesession.NewID(), r); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := s.UserSessions(ctx, "user-7"); err != nil { // completes the index
			b.Fatal(err)
		}
		b.Run("userSessions", func(b *testing.B) {
			run(b, 1, func(int) error {
				list, err := s.UserSessions(ctx, "user-7")
				if err == nil && len(list) != 5 {
					err = fmt.Errorf("listed %d sessions, want 5", len(list))
				}
				return err
			})
		})
		b.Run("scan", func(b *testing.B) {
			run(b, 1, func(int) error {
				n := 0
				err := s.List(ctx, func(_ string, r filesession.Record) error {
					if r.User == "user-7" {
						n++
					}
					return nil
				})
				if err == nil && n != 5 {
					err = fmt.Errorf("scanned %d sessions, want 5", n)
				}
				return err
			})
		})
	})
}
