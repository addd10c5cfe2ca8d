package redisstore

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/filesession/filesession/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// One redis-server serves the whole test binary (unless REDIS_URL names
// one); tests isolate themselves with a fresh key prefix each.
func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

var sharedClient struct {
	sync.Mutex
	c *redis.Client
}

// client returns a go-redis client of the shared server, made once per test
// binary so that subtests do not each open a connection pool.
func client(tb testing.TB) *redis.Client {
	tb.Helper()
	srv := redistest.Shared(tb)
	sharedClient.Lock()
	defer sharedClient.Unlock()
	if sharedClient.c == nil {
		sharedClient.c = clientFor(tb, srv.URL)
	}
	return sharedClient.c
}

// clientFor returns a client of url set up as NewClient sets it up.
func clientFor(tb testing.TB, url string) *redis.Client {
	tb.Helper()
	c, err := NewClient(url)
	if err != nil {
		tb.Fatalf("NewClient(%q): %v", url, err)
	}
	return c
}

// newTestStore returns a store with a fresh prefix on the shared server,
// whose keys are deleted when tb ends.
func newTestStore(tb testing.TB, opts Options) *Store {
	tb.Helper()
	c := client(tb)
	if opts.Prefix == "" {
		opts.Prefix = redistest.UniquePrefix(tb)
	}
	tb.Cleanup(func() { deletePrefix(tb, c, opts.Prefix) })
	return New(c, opts)
}

// deletePrefix removes every key under prefix, so that a run against
// REDIS_URL's server leaves nothing behind.
func deletePrefix(tb testing.TB, c redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := c.Scan(ctx, 0, globEscape(prefix)+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		tb.Logf("cleanup of %s: %v", prefix, err)
		return
	}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		c.Del(ctx, keys[:n]...)
		keys = keys[n:]
	}
}
