package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/filesession/filesession"
	"github.com/redis/go-redis/v9"
)

// scanCount is the COUNT hint for SCAN: how many keys Redis examines per
// call. Larger batches mean fewer round trips; each batch's records are then
// fetched in one pipeline, so memory stays bounded by one batch.
const scanCount = 1000

// List calls fn for each decodable session under the store's prefix,
// expired ones included (check Record.ExpiresAt), streaming with SCAN (never
// KEYS, which would block the server) and fetching each batch's records in
// one pipeline. On a Cluster it scans every master, on a Ring every shard;
// fn is never called concurrently. Corrupt records are skipped (Load reports
// and quarantines them). A session created or deleted while List runs may or
// may not be seen, and SCAN may return a key twice when the keyspace is
// rehashed, which List filters out only within a batch. If fn returns an
// error, List stops and returns it.
func (s *Store) List(ctx context.Context, fn func(id string, r filesession.Record) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: list: %w", err)
	}
	var (
		mu      sync.Mutex // serialises fn and guards stopErr
		stopErr error
	)
	call := func(id string, r filesession.Record) error {
		mu.Lock()
		defer mu.Unlock()
		if stopErr != nil {
			return errStop
		}
		if err := fn(id, r); err != nil {
			stopErr = err
			return errStop
		}
		return nil
	}
	var err error
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return s.scanNode(ctx, node, call)
		})
	case *redis.Ring:
		err = c.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
			return s.scanNode(ctx, node, call)
		})
	default:
		err = s.scanNode(ctx, s.client, call)
	}
	mu.Lock()
	defer mu.Unlock()
	if stopErr != nil {
		return stopErr
	}
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	return nil
}

// listFail wraps a failure of Redis during List, as fail does.
func (s *Store) listFail(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("redisstore: list: %w (%w)", err, cerr)
	}
	return fmt.Errorf("redisstore: list: %w", err)
}

// errStop tells a node's scan that fn failed (on this node or another).
var errStop = errors.New("redisstore: list stopped")

// scanNode lists the sessions on one server.
func (s *Store) scanNode(ctx context.Context, node redis.UniversalClient, call func(string, filesession.Record) error) error {
	pattern := globEscape(s.prefix) + "{*}"
	var cursor uint64
	for {
		// Each round trip gets the store's Timeout, not the whole listing,
		// which may take as long as the keyspace needs.
		rctx, cancel := context.WithTimeout(ctx, s.timeout)
		keys, next, err := node.Scan(rctx, cursor, pattern, scanCount).Result()
		if err != nil {
			err = s.listFail(rctx, err)
			cancel()
			return err
		}
		cancel()
		if err := s.listBatch(ctx, node, keys, call); err != nil {
			return err
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// listBatch fetches one SCAN batch's records in a pipeline and hands the
// decodable ones to call.
func (s *Store) listBatch(ctx context.Context, node redis.UniversalClient, keys []string, call func(string, filesession.Record) error) error {
	ids := make([]string, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		id, ok := s.idOf(k)
		if ok && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// The pipeline's own error is its first failed command's; a WRONGTYPE
	// reply is one key's problem (skipped below), anything else the server's.
	node.Pipelined(rctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(rctx, s.Key(id))
		}
		return nil
	})
	for _, c := range cmds {
		if err := c.Err(); err != nil && !isWrongType(err) {
			return s.listFail(rctx, err)
		}
	}
	for i, id := range ids {
		fields, err := cmds[i].Result()
		if err != nil || len(fields) == 0 {
			continue // WRONGTYPE (corrupt), or deleted since SCAN saw it
		}
		r, _, err := decodeRecord(fields, s.ttl)
		if err != nil {
			continue // corrupt: Load reports and quarantines it
		}
		if err := call(id, r); err != nil {
			return err
		}
	}
	return nil
}

// idOf extracts the session ID from a key SCAN returned, rejecting keys that
// match the pattern but are not this store's (a quarantine key, a key of a
// store whose prefix extends this one, a hand-written key).
func (s *Store) idOf(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, s.prefix+"{")
	if !ok || !strings.HasSuffix(rest, "}") {
		return "", false
	}
	id := rest[:len(rest)-1]
	return id, filesession.ValidID(id, s.idLength)
}

// globEscape escapes the characters SCAN MATCH treats as pattern syntax.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\', '^':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
