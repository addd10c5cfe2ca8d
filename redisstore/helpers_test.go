package redisstore

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/filesession/filesession/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// One redis-server serves the whole test binary (unless REDIS_URL names
// one); tests isolate themselves with a fresh key prefix each.
// go-redis's own logger is silenced: the failure tests make it report every
// refused dial, and what matters is what the store returns.
func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{})
	os.Exit(redistest.Main(m))
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

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
	if opts.Logger == nil {
		opts.Logger = testLogger(tb)
	}
	tb.Cleanup(func() { deletePrefix(tb, c, opts.Prefix) })
	return New(c, opts)
}

// testLogger sends the store's logs to the test's output, so they show up
// next to the test that caused them.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tb.Output(), nil))
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
