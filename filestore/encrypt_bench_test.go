package filestore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
)

// BenchmarkEncryption measures Load and Save of a typical session (a CSRF
// token and a small user object, about 300 bytes of plaintext) in a plain
// store, with EncryptionKeys, with HashNames, and with both, so that one
// run gives the cost of each as a ratio:
//
//	go test -run '^$' -bench Encryption -benchtime 20000x ./filestore
//
// Save runs under SyncNone, where nothing hides the CPU cost of
// encryption, and under SyncFull, the default, where two fsyncs per write
// dwarf it.
func BenchmarkEncryption(b *testing.B) {
	key := make([]byte, filestore.KeySize)
	for i := range key {
		key[i] = byte(i + 1)
	}
	modes := []struct {
		name string
		opts filestore.Options
	}{
		{"Plain", filestore.Options{}},
		{"Encrypted", filestore.Options{EncryptionKeys: [][]byte{key}}},
		{"HashNames", filestore.Options{HashNames: true}},
		{"EncryptedHashNames", filestore.Options{EncryptionKeys: [][]byte{key}, HashNames: true}},
	}
	now := time.Now().Truncate(time.Millisecond)
	rec := filesession.Record{
		Values: map[string]json.RawMessage{
			"csrfToken": json.RawMessage(`"8f14e45fceea167a5a36dedd4bea2543a1d0c6e83f027327d8461063f4ac58a6"`),
			"user":      json.RawMessage(`{"id":12345,"name":"Alice Example","email":"alice@example.com","roles":["admin","user"]}`),
		},
		Created: now, LastAccess: now, IdleTimeout: 24 * time.Hour,
		Cookie: filesession.CookieAttrs{HTTPOnly: true, Path: "/", SameSite: "lax"},
	}
	open := func(b *testing.B, o filestore.Options, sync filestore.SyncMode) (*filestore.Store, string) {
		o.Path, o.Logger, o.Sync = b.TempDir(), quiet, sync
		s, err := filestore.Open(o)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		id := filesession.NewID()
		if err := s.Create(context.Background(), id, rec); err != nil {
			b.Fatal(err)
		}
		return s, id
	}
	ctx := context.Background()
	for _, m := range modes {
		b.Run("Load/"+m.name, func(b *testing.B) {
			s, id := open(b, m.opts, filestore.SyncNone)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Load(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, sync := range []filestore.SyncMode{filestore.SyncNone, filestore.SyncFull} {
		for _, m := range modes {
			b.Run("Save/"+sync.String()+"/"+m.name, func(b *testing.B) {
				s, id := open(b, m.opts, sync)
				c := filesession.Change{Set: map[string]json.RawMessage{"n": nil}}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					i++
					c.Set["n"] = json.RawMessage(`1` + string(rune('0'+i%10)))
					c.At = now.Add(time.Duration(i) * time.Millisecond)
					if err := s.Save(ctx, id, c); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
