package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/filesession/filesession"
	"github.com/redis/go-redis/v9"
)

// The per-user index (filesession.UserIndex).
//
// Each user with sessions has a sorted set, "<prefix>user:{u:<hash>}",
// whose members are the IDs of the user's sessions and whose scores are
// when each was added (Unix ms, the store's clock). <hash> is 32 hex digits
// of SHA-256 of the user, so any user string makes a safe key; the "u:" in
// the hash tag keeps the key from ever looking like a session key, even to
// a store whose prefix extends this one. The set has its own hash slot (by
// user), the sessions theirs (by ID), so in a Cluster no script can touch
// both: the set is maintained by separate commands, in an order that keeps
// it a superset of the truth, and checked on every read.
//
//   - A session is added (ZADD) before the write that gives it the user:
//     Create, Save or Update setting a user, Renew (to the new ID, with the
//     user pinned in the renewal, so that the record gets exactly the user
//     the set was given).
//   - It is removed (ZREM) after its record is gone: Delete and Renew
//     remove the old ID, which can never come back. A session that changes
//     user, expires in Redis or is quarantined leaves an entry that is only
//     stale.
//   - UserSessions reads the set, fetches every record it names in one
//     pipeline, returns the live ones with that user, and removes the stale
//     entries (record missing, expired, or of another user) that are older
//     than a grace period: an entry just added may belong to a Create still
//     on its way. The removal is conditional on the entry's score being the
//     one read, so an entry added again meanwhile (a Save giving the session
//     back its user) stays.
//
// So a crash, a failover or a lost reply can only leave an entry too many,
// and revoking a user's sessions never misses one that exists. Sets stay
// small: every listing prunes, and so does every add once a set has more
// than userSetPrune entries. Clocks of processes sharing a server must
// agree to well within the grace period (a minute plus Timeout).

// userSetPrune is the size above which adding to a user's set first checks
// all its entries, bounding the set of a user who never lists sessions.
const userSetPrune = 64

// userGrace is how old a stale entry must be before it is removed, on top
// of the store's Timeout: longer than any write that added it can take.
const userGrace = time.Minute

// userKey returns the key of user's sorted set.
func (s *Store) userKey(user string) string {
	sum := sha256.Sum256([]byte("filesession/redisstore user\x00" + user))
	return s.prefix + "user:{u:" + hex.EncodeToString(sum[:16]) + "}"
}

// UserKey returns the Redis key of the sorted set that indexes user's
// sessions, for operators: ZRANGE it to see the session IDs (and when
// each was added) that UserSessions checks.
func (s *Store) UserKey(user string) string { return s.userKey(user) }

var _ filesession.UserIndex = (*Store)(nil)

// indexAdd adds session id to user's set, before the write that gives the
// session that user. Nothing is done for the empty user. A failure is a
// store failure: the write must not happen without it.
func (s *Store) indexAdd(ctx context.Context, user, id string) error {
	if user == "" {
		return nil
	}
	key := s.userKey(user)
	var card *redis.IntCmd
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, key, redis.Z{Score: float64(s.now().UnixMilli()), Member: id})
		card = p.ZCard(ctx, key)
		return nil
	})
	if err != nil {
		return s.fail(ctx, "index", id, err)
	}
	if card.Val() > userSetPrune {
		if _, err := s.userSessions(ctx, user); err != nil {
			s.log.Warn("redisstore: pruning a user's index failed", "err", err)
		}
	}
	return nil
}

// indexForget removes session id from user's set once its record is gone
// for good (deleted, or renewed away). It only logs a failure: the entry
// is then stale, and readers remove it.
func (s *Store) indexForget(ctx context.Context, user, id string) {
	if user == "" {
		return
	}
	if err := s.client.ZRem(ctx, s.userKey(user), id).Err(); err != nil {
		s.log.Warn("redisstore: could not remove a session from its user's index; readers will",
			"session", hashID(id), "err", err)
	}
}

// userOf returns the user stored in id's record, or "" if it has none or
// there is no record (or not a hash, which the write then reports).
func (s *Store) userOf(ctx context.Context, op, id string) (string, error) {
	u, err := s.client.HGet(ctx, s.Key(id), fieldUser).Result()
	switch {
	case errors.Is(err, redis.Nil), err != nil && isWrongType(err):
		return "", nil
	case err != nil:
		return "", s.fail(ctx, op, id, err)
	}
	return u, nil
}

// UserSessions returns the live sessions of user (filesession.UserIndex):
// the members of the user's sorted set whose records exist, have not
// expired and name the user, fetched in one pipeline. Its cost is that of
// the user's sessions, never a SCAN. Stale entries older than the grace
// period are removed on the way. The empty user has no sessions.
func (s *Store) UserSessions(ctx context.Context, user string) ([]filesession.UserSession, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redisstore: user sessions: %w", err)
	}
	if user == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.userSessions(ctx, user)
}

func (s *Store) userSessions(ctx context.Context, user string) ([]filesession.UserSession, error) {
	key := s.userKey(user)
	entries, err := s.client.ZRangeWithScores(ctx, key, 0, -1).Result()
	if err != nil {
		return nil, s.listFail(ctx, err)
	}
	ids := make([]string, 0, len(entries))
	zs := make([]redis.Z, 0, len(entries))
	var stale []redis.Z
	for _, z := range entries {
		id, _ := z.Member.(string)
		if filesession.ValidID(id, s.idLength) {
			ids, zs = append(ids, id), append(zs, z)
		} else {
			stale = append(stale, z) // cannot name a session
		}
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	if len(ids) > 0 {
		// The pipeline's own error is its first failed command's, which
		// the loop below looks at one by one.
		s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = p.HGetAll(ctx, s.Key(id))
			}
			return nil
		})
	}
	now := s.now()
	var out []filesession.UserSession
	for i, id := range ids {
		fields, err := cmds[i].Result()
		switch {
		case err != nil && isWrongType(err):
			continue // corrupt: Load quarantines it, then it is missing
		case err != nil:
			return nil, s.listFail(ctx, err)
		}
		if len(fields) > 0 {
			r, _, err := decodeRecord(fields, s.ttl)
			if err != nil {
				continue // as above
			}
			if r.User == user && !r.Expired(now) {
				out = append(out, filesession.UserSession{ID: id, Record: r})
				continue
			}
		}
		stale = append(stale, zs[i])
	}
	s.prune(ctx, key, stale, now)
	return out, nil
}

// prune removes the stale entries older than the grace period from the
// set key, each only if its score is still the one read.
func (s *Store) prune(ctx context.Context, key string, stale []redis.Z, now time.Time) {
	cutoff := now.Add(-userGrace - s.timeout).UnixMilli()
	args := []any{strconv.FormatInt(cutoff, 10)}
	for _, z := range stale {
		if int64(z.Score) < cutoff {
			args = append(args, z.Member, strconv.FormatFloat(z.Score, 'f', -1, 64))
		}
	}
	if len(args) == 1 {
		return
	}
	if err := pruneScript.Run(ctx, s.client, []string{key}, args...).Err(); err != nil {
		s.log.Warn("redisstore: could not prune a user's index; the next reader will", "err", err)
	}
}

// pruneScript removes members of a user's set if their score is still the
// one the reader saw and older than the cutoff.
// KEYS[1] = the set; ARGV = cutoff, then member/score pairs.
var pruneScript = redis.NewScript(`
local cutoff = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  local sc = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if sc and tonumber(sc) == tonumber(ARGV[i+1]) and tonumber(sc) < cutoff then
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return 'ok'
`)

// deleteScript deletes a session's key and returns the user its record
// had ("" if none, or if the key held something else).
// KEYS[1] = key.
var deleteScript = redis.NewScript(`
local u = redis.pcall('HGET', KEYS[1], '__user')
redis.call('DEL', KEYS[1])
if type(u) == 'string' then return u end
return ''
`)
