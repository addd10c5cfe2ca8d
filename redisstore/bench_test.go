package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// BenchmarkRedis measures the store's operations against real Redis beside
// the bare go-redis GET and SET of a value of the same size (about 300
// bytes: the session below, encoded) on the same server, in the same run,
// at concurrency 1 and 64. Load and Touch are one round trip each, like
// GET; the target is at least 0.7× bare GET's throughput for both. Save
// (one script) and Update (a read and a compare-and-swap script) are
// reported. Each goroutine works on a session of its own, as distinct
// users' requests do.
//
//	go test ./redisstore -run '^$' -bench Redis -benchtime 2s
func BenchmarkRedis(b *testing.B) {
	srv := redistest.Shared(b)
	opt, err := redis.ParseURL(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	// As NewClient sets it up, with room for 64 concurrent requests so
	// that the pool is not what limits either side.
	opt.ContextTimeoutEnabled = true
	opt.PoolSize = 128
	c := redis.NewClient(opt)
	defer c.Close()

	s := New(c, Options{Prefix: redistest.UniquePrefix(b), Logger: testLogger(b)})
	b.Cleanup(func() { deletePrefix(b, c, s.prefix) })
	ctx := context.Background()

	const sessions = 64
	ids := make([]string, sessions)
	bareKeys := make([]string, sessions)
	r := benchRecord()
	value := benchValue(r)
	for i := range ids {
		ids[i] = filesession.NewID()
		if err := s.Create(ctx, ids[i], r); err != nil {
			b.Fatal(err)
		}
		bareKeys[i] = s.prefix + "bare:" + strconv.Itoa(i)
		if err := c.Set(ctx, bareKeys[i], value, time.Hour).Err(); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("bare value: %d bytes", len(value))

	ops := []struct {
		name string
		fn   func(i, n int) error
	}{
		{"BareGET", func(i, _ int) error { return c.Get(ctx, bareKeys[i]).Err() }},
		{"BareSET", func(i, _ int) error { return c.Set(ctx, bareKeys[i], value, time.Hour).Err() }},
		{"Load", func(i, _ int) error { _, err := s.Load(ctx, ids[i]); return err }},
		{"Touch", func(i, _ int) error {
			now := time.Now()
			return s.Touch(ctx, ids[i], now, now.Add(time.Hour))
		}},
		{"Save", func(i, n int) error {
			return s.Save(ctx, ids[i], filesession.Change{
				Set: map[string]json.RawMessage{"views": json.RawMessage(strconv.Itoa(n))},
				At:  time.Now(),
			})
		}},
		{"Update", func(i, n int) error {
			return s.Update(ctx, ids[i], func(r *filesession.Record) error {
				r.Values["views"] = json.RawMessage(strconv.Itoa(n))
				r.LastAccess = time.Now()
				return nil
			})
		}},
	}
	for _, conc := range []int{1, 64} {
		for _, op := range ops {
			b.Run(fmt.Sprintf("%s/c=%d", op.name, conc), func(b *testing.B) {
				b.ReportAllocs()
				if conc == 1 {
					n := 0
					for b.Loop() {
						n++
						if err := op.fn(0, n); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				var next atomic.Int32
				b.SetParallelism((conc + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.RunParallel(func(pb *testing.PB) {
					i := int(next.Add(1)-1) % sessions
					n := 0
					for pb.Next() {
						n++
						if err := op.fn(i, n); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// benchRecord is a typical logged-in session: a user object, a CSRF token, a
// flash message and a counter.
func benchRecord() filesession.Record {
	now := time.Now()
	return filesession.Record{
		Values: map[string]json.RawMessage{
			"user":      json.RawMessage(`{"id":48213,"name":"Zoë Example","email":"zoe@example.com","roles":["editor","reviewer"]}`),
			"csrfToken": json.RawMessage(`"` + strings.Repeat("q", 43) + `"`),
			"flash":     json.RawMessage(`{"kind":"info","text":"Your changes were saved."}`),
			"views":     json.RawMessage(`1`),
		},
		Created:     now,
		LastAccess:  now,
		IdleTimeout: time.Hour,
		Cookie:      filesession.CookieAttrs{HTTPOnly: true, Path: "/", SameSite: "lax"},
	}
}

// benchValue is the record as one JSON document, in the file store's shape,
// for the bare GET/SET comparison.
func benchValue(r filesession.Record) string {
	var b strings.Builder
	b.WriteString(`{"cookie":` + encodeCookie(r.Cookie))
	for k, v := range r.Values {
		b.WriteString(`,"` + k + `":` + string(v))
	}
	fmt.Fprintf(&b, `,"__created":%d,"__lastAccess":%d}`, r.Created.UnixMilli(), r.LastAccess.UnixMilli())
	return b.String()
}
