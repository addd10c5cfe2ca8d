package filestore_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
)

// Each store benchmark sits next to a benchmark of the bare operation it
// rests on, on the same kind of files, so that one run gives the ratio:
//
//	get    vs os.ReadFile + json.Unmarshal into map[string]json.RawMessage
//	touch  vs os.Chtimes
//	create vs temp file + write + fsync + close + rename + directory fsync
//	delete vs os.Remove
//
// at concurrency 1 and 64 (b.RunParallel with SetParallelism so that
// GOMAXPROCS × parallelism ≈ 64 goroutines).
//
//	go test -run '^$' -bench . -benchtime 2000x ./filestore

// benchRecord is a typical session: a CSRF token and a small user object,
// about 300 bytes on disk.
func benchRecord(now time.Time) filesession.Record {
	return filesession.Record{
		Values: map[string]json.RawMessage{
			"csrfToken": json.RawMessage(`"8f14e45fceea167a5a36dedd4bea2543a1d0c6e83f027327d8461063f4ac58a6"`),
			"user":      json.RawMessage(`{"id":12345,"name":"Alice Example","email":"alice@example.com","roles":["admin","user"]}`),
		},
		Created: now, LastAccess: now, IdleTimeout: 24 * time.Hour,
		Cookie: filesession.CookieAttrs{HTTPOnly: true, Path: "/", SameSite: "lax"},
	}
}

var concurrencies = []int{1, 64}

// run runs op(i) b.N times, i counting from 0, at concurrency c.
func run(b *testing.B, c int, op func(i int) error) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	if c == 1 {
		for i := range b.N {
			if err := op(i); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism(max(1, c/runtime.GOMAXPROCS(0)))
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(int(next.Add(1) - 1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func openBench(b *testing.B, sync filestore.SyncMode) (*filestore.Store, string) {
	b.Helper()
	dir := b.TempDir()
	s, err := filestore.Open(filestore.Options{Path: dir, Sync: sync, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, dir
}

// populate creates n sessions and returns their IDs and file paths.
func populate(b *testing.B, s *filestore.Store, dir string, n int) ([]string, []string) {
	b.Helper()
	ids, paths := make([]string, n), make([]string, n)
	now := time.Now()
	for i := range ids {
		ids[i] = filesession.NewID()
		paths[i] = filepath.Join(dir, "sess_"+ids[i]+".json")
		if err := s.Create(b.Context(), ids[i], benchRecord(now)); err != nil {
			b.Fatal(err)
		}
	}
	return ids, paths
}

func BenchmarkGet(b *testing.B) {
	const sessions = 256
	for _, c := range concurrencies {
		b.Run(fmt.Sprintf("filestore/c%d", c), func(b *testing.B) {
			s, dir := openBench(b, filestore.SyncNone)
			ids, _ := populate(b, s, dir, sessions)
			ctx := b.Context()
			run(b, c, func(i int) error {
				_, err := s.Load(ctx, ids[i%sessions])
				return err
			})
		})
		b.Run(fmt.Sprintf("bare/c%d", c), func(b *testing.B) {
			s, dir := openBench(b, filestore.SyncNone)
			_, paths := populate(b, s, dir, sessions)
			run(b, c, func(i int) error {
				data, err := os.ReadFile(paths[i%sessions])
				if err != nil {
					return err
				}
				var m map[string]json.RawMessage
				return json.Unmarshal(data, &m)
			})
		})
	}
}

func BenchmarkTouch(b *testing.B) {
	const sessions = 256
	for _, c := range concurrencies {
		b.Run(fmt.Sprintf("filestore/c%d", c), func(b *testing.B) {
			s, dir := openBench(b, filestore.SyncNone)
			ids, _ := populate(b, s, dir, sessions)
			ctx := b.Context()
			at := time.Now()
			run(b, c, func(i int) error {
				t := at.Add(time.Duration(i) * time.Microsecond)
				return s.Touch(ctx, ids[i%sessions], t, t.Add(24*time.Hour))
			})
		})
		b.Run(fmt.Sprintf("bare/c%d", c), func(b *testing.B) {
			s, dir := openBench(b, filestore.SyncNone)
			_, paths := populate(b, s, dir, sessions)
			at := time.Now()
			run(b, c, func(i int) error {
				t := at.Add(time.Duration(i) * time.Microsecond)
				return os.Chtimes(paths[i%sessions], t.Add(24*time.Hour), t)
			})
		})
	}
}

func BenchmarkCreate(b *testing.B) {
	for _, c := range concurrencies {
		for _, mode := range []filestore.SyncMode{filestore.SyncFull, filestore.SyncNone} {
			b.Run(fmt.Sprintf("filestore-%s/c%d", mode, c), func(b *testing.B) {
				s, _ := openBench(b, mode)
				ids := make([]string, b.N)
				for i := range ids {
					ids[i] = filesession.NewID()
				}
				ctx := b.Context()
				now := time.Now()
				run(b, c, func(i int) error { return s.Create(ctx, ids[i], benchRecord(now)) })
			})
		}
		b.Run(fmt.Sprintf("bare-durable/c%d", c), func(b *testing.B) {
			dir := b.TempDir()
			data := mustFile(b)
			names := make([]string, b.N)
			for i := range names {
				names[i] = filepath.Join(dir, "sess_"+filesession.NewID()+".json")
			}
			run(b, c, func(i int) error { return bareDurableWrite(dir, names[i], data) })
		})
	}
}

// mustFile is the bytes of a benchRecord file.
func mustFile(b *testing.B) []byte {
	s, dir := openBench(b, filestore.SyncNone)
	_, paths := populate(b, s, dir, 1)
	data, err := os.ReadFile(paths[0])
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// bareDurableWrite is the textbook durable replace, with the os package.
func bareDurableWrite(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func BenchmarkDelete(b *testing.B) {
	for _, c := range concurrencies {
		for _, mode := range []filestore.SyncMode{filestore.SyncFull, filestore.SyncNone} {
			b.Run(fmt.Sprintf("filestore-%s/c%d", mode, c), func(b *testing.B) {
				s, dir := openBench(b, mode)
				ids, _ := populate(b, s, dir, b.N)
				ctx := b.Context()
				run(b, c, func(i int) error { return s.Delete(ctx, ids[i]) })
			})
		}
		b.Run(fmt.Sprintf("bare/c%d", c), func(b *testing.B) {
			s, dir := openBench(b, filestore.SyncNone)
			_, paths := populate(b, s, dir, b.N)
			run(b, c, func(i int) error { return os.Remove(paths[i]) })
		})
	}
}

// Merge-saves and Updates, next to Create (the plain durable save): a Save
// locks the session, reads its latest version, applies the change and
// rewrites it; an Update runs a function on it in between. On many
// sessions the lock is uncontended and the cost is the read on top of the
// write; on one hot session every write waits for the one before it, so the
// throughput is the lock's (one write at a time).
//
//	go test -run '^$' -bench 'Create|Save|Update' -benchtime 2000x ./filestore
//
// Compare BenchmarkSave/filestore-SyncFull/many/cN with
// BenchmarkCreate/filestore-SyncFull/cN.

// benchSessions is how many sessions the "many" benchmarks spread over.
const benchSessions = 1024

func benchSaveOrUpdate(b *testing.B, op func(s *filestore.Store, id string, i int) error) {
	for _, mode := range []filestore.SyncMode{filestore.SyncFull, filestore.SyncNone} {
		for _, spread := range []string{"many", "one"} {
			for _, c := range concurrencies {
				b.Run(fmt.Sprintf("filestore-%s/%s/c%d", mode, spread, c), func(b *testing.B) {
					s, dir := openBench(b, mode)
					n := benchSessions
					if spread == "one" {
						n = 1
					}
					// Made without fsyncs, which only the setup would wait for.
					setup, err := filestore.Open(filestore.Options{Path: dir, Sync: filestore.SyncNone, Logger: quiet})
					if err != nil {
						b.Fatal(err)
					}
					ids, _ := populate(b, setup, dir, n)
					setup.Close()
					run(b, c, func(i int) error { return op(s, ids[i%n], i) })
				})
			}
		}
	}
}

func BenchmarkSave(b *testing.B) {
	benchSaveOrUpdate(b, func(s *filestore.Store, id string, i int) error {
		return s.Save(b.Context(), id, filesession.Change{
			Set: map[string]json.RawMessage{"views": json.RawMessage(fmt.Sprint(i))},
			At:  time.Now(),
		})
	})
}

func BenchmarkUpdate(b *testing.B) {
	benchSaveOrUpdate(b, func(s *filestore.Store, id string, i int) error {
		return s.Update(b.Context(), id, func(r *filesession.Record) error {
			n, _ := strconv.Atoi(string(r.Values["views"]))
			r.Values["views"] = json.RawMessage(strconv.Itoa(n + 1))
			return nil
		})
	})
}
