package filestore

import (
	"sync"
	"time"
)

// hintCache remembers, per session, the expiry this process last wrote to
// or read from its file: its Load, Create, Save, Update, Renew and Touch
// record it. Touch uses it to skip its lstat when the remembered expiry is
// still in the future, which makes the common Load-then-Touch request one
// system call (utimensat) instead of two: Touch is the hottest write path
// and is bound by system call cost.
//
// Skipping the lstat is safe against everything that removes a session:
// Delete, Renew and the reaper unlink the file, and utimensat of a missing
// name fails with ENOENT, which Touch reports as not found. What the cache
// cannot see is another process shortening a live session (a Save with a
// shorter IdleTimeout or an earlier Deadline) and the shortened session
// then expiring before this process's remembered expiry: a Touch in that
// window extends it. Such a Touch comes from a request whose Load, moments
// before, found the session live, so the window is that request's own
// duration. A deadline is absolute, so it is never extended this way.
//
// The cache is bounded: each of its shards is cleared when it fills up.
type hintCache struct {
	shards [hintShards]hintShard
}

const (
	hintShards   = 64
	hintPerShard = 1024 // 64 × 1024 sessions, about 8 MiB at most
)

type hintShard struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (c *hintCache) shard(id string) *hintShard {
	return &c.shards[stripe(id)%hintShards]
}

// put records that id's file says it expires at exp.
func (c *hintCache) put(id string, exp time.Time) {
	sh := c.shard(id)
	sh.mu.Lock()
	if sh.m == nil || len(sh.m) >= hintPerShard {
		if _, ok := sh.m[id]; !ok {
			sh.m = make(map[string]time.Time, 64)
		}
	}
	sh.m[id] = exp
	sh.mu.Unlock()
}

// liveAt reports whether id is remembered to expire after now.
func (c *hintCache) liveAt(id string, now time.Time) bool {
	sh := c.shard(id)
	sh.mu.Lock()
	exp, ok := sh.m[id]
	sh.mu.Unlock()
	return ok && exp.After(now)
}

// forget drops id, whose file was removed or moved.
func (c *hintCache) forget(id string) {
	sh := c.shard(id)
	sh.mu.Lock()
	delete(sh.m, id)
	sh.mu.Unlock()
}
