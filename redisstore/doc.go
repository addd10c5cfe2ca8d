// Package redisstore is a filesession.Store kept in Redis, through go-redis's
// UniversalClient, so that a single node, Sentinel (redis.NewFailoverClient),
// Cluster (redis.NewClusterClient) and Ring all work. It lives in its own
// package so that programs using the file store do not link go-redis.
//
//	client, err := redisstore.NewClient(os.Getenv("REDIS_URL"))
//	if err != nil { ... }
//	defer client.Close()
//	store := redisstore.New(client, redisstore.Options{})
//
// It keeps the semantics of the file store, checked by the same conformance
// suite (storetest): saves merge instead of overwrite, nothing is resurrected
// after a delete or renew, and a failure of Redis is never mistaken for "no
// session".
//
// # Keys and stored format
//
// A session lives under one key, Prefix + "{" + ID + "}" ("sess:{<id>}" by
// default); a prefix that only this store uses keeps sessions clear of the
// application's keys. The key holds a hash with one field per session key,
// whose value is that key's JSON exactly as the application encoded it, plus
// fields of the stored format, in the names session-file-store uses where it
// has one:
//
//	cookie        {"secure":false,"httpOnly":true,"path":"/","sameSite":"lax"}
//	__created     Unix milliseconds
//	__lastAccess  Unix milliseconds; the idle timeout runs from it
//	__idle        idle timeout in milliseconds (express's cookie.originalMaxAge)
//	__deadline    Unix milliseconds, the absolute end; absent if there is none
//	__v           version, bumped by every write except Touch
//	__w           token of the last Create, Update or Renew (see below)
//	__user        the session's user (filesession.Record.User); absent if none
//
// so HGETALL shows an operator the same information as a session file. A
// hash rather than one JSON string lets a Save change only the keys it
// changed (HSET, HDEL) inside a script, without decoding JSON on the server
// (which would re-encode the values and lose big integers), and lets Touch
// update __lastAccess without rewriting any value. The cookie object carries
// the cookie's attributes only: its expiry lives in __idle, __lastAccess and
// __deadline, which scripts keep current, instead of in a copy that a merge
// would leave stale.
//
// A record that cannot be decoded (hand-edited, or not a hash) is reported as
// filesession.ErrCorrupt, logged with a hashed ID, and renamed to
// Prefix + "corrupt:{" + ID + "}" where it stays for QuarantineTTL.
//
// The sessions of each user are indexed (filesession.UserIndex) in a sorted
// set, Prefix + "user:{u:" + hash of the user + "}" (Store.UserKey), of
// session IDs scored by when they were added. In a Cluster it hashes to
// the user's slot, not the sessions', so no script can update it together
// with a session: it is kept as a superset of the truth by separate
// commands (added before the write that gives a session its user, removed
// after the session is deleted or renewed away), and UserSessions checks
// every entry against its record and prunes the stale ones; see
// userindex.go.
//
// # Atomicity
//
// Every operation that reads before it writes is one Lua script, which
// Redis runs without interleaving any other command: Create (only if no live
// record has the ID), Save (merge the change into the latest record), Touch
// (move __lastAccess forward, never back), Renew and the quarantine. The
// expiry is set in the same script as the write that decides it (PEXPIRE
// right after HSET), never by a separate command that a crash could skip.
// Scripts are sent with EVALSHA and fall back to EVAL when the server lost
// its script cache, after a restart for instance.
//
// Update runs the caller's function in Go, so it cannot be a script: it
// reads the record and its version, runs fn on a copy, and stores the result
// with a compare-and-swap script that refuses if the version moved (any
// Save, Update, Renew or Delete came in between); then it reads again and
// runs fn again, backing off with jitter, until it succeeds or the
// operation's deadline passes (an error matching
// filesession.ErrLockTimeout). fn may therefore run more than once and
// should have no effects outside the record. Touch does not bump the
// version, so reads with activity do not starve Updates; the later
// __lastAccess wins.
//
// go-redis retries a command whose reply was lost (a connection reset after
// the write). Create, Update and Renew carry a random token, stored in __w,
// so that the retry of one that had in fact been applied reports success
// rather than "exists", "conflict" or "not found"; Save and Touch are
// idempotent by themselves.
//
// # Expiry and the clock
//
// Expiry is decided by the store's clock (Options.Now) from the record's
// fields, on every read and inside every script, exactly as the file store
// decides it: a session is live strictly before min(__lastAccess + __idle,
// __deadline). Redis's own TTL is only how the server gets rid of dead
// records: each write sets it to the remaining lifetime measured from the
// store's clock (a relative PEXPIRE, never PEXPIREAT), so a store whose clock
// disagrees with the server's, or the conformance suite's fake clock, still
// gets sane TTLs. A write that leaves a record already expired deletes it.
// Redis expires keys itself, so the store has no Reaper.
//
// # Cluster and hash tags
//
// The braces in the key are a hash tag: Redis Cluster hashes only the ID, so
// a session's record and its quarantine key share a slot, and every script
// that touches them together is legal in a cluster. Renew is the one
// operation on two sessions, and two IDs hash to different slots (usually on
// different shards), so no script can move a session in a cluster. The
// store therefore renews in two ways:
//
//   - With a *redis.Client (single node, or Sentinel), one script checks the
//     old record, RENAMEs it to the new key and applies the change: atomic.
//   - With any other client (Cluster, Ring), in three steps that never leave
//     neither ID in place: (1) freeze the old record with a lease (Timeout
//     plus one second) and read it, while Saves and Updates of it wait;
//     (2) create the new record from it with the change applied, if the new
//     ID is free; (3) delete the old record if it is still frozen by this
//     renew and the lease has not run out, or else undo step 2 and report
//     not found (the old session was deleted meanwhile). A crash between
//     steps leaves the old session usable again once the lease ends, and at
//     most an orphan new record whose ID no client was given, which expires.
//
// Both paths pass the conformance suite; the second one is also tested
// through a real ClusterClient against a one-node cluster, which refuses any
// script whose keys are in different slots. Putting every session in one
// slot (a fixed hash tag) would make renew a single script in a cluster too,
// but would also put every session on one shard, so the store does not.
//
// List uses SCAN with MATCH on the prefix and COUNT 1000, never KEYS, and
// fetches each batch's records in one pipeline; on a Cluster it scans every
// master, on a Ring every shard.
//
// # Failures and timeouts
//
// redis.Nil (and an empty HGETALL) means not found. Everything else (a
// refused or reset connection, a timeout, READONLY from a replica after a
// failover, OOM when maxmemory is reached, a cluster error) is returned
// wrapped, never matching filesession.ErrNotFound, so the manager answers
// 503 and leaves the client's session as it was instead of starting a new,
// empty one. Errors and logs name sessions by the first 12 hex digits of
// the SHA-256 of their ID, never by the ID.
//
// Each operation is bounded by the caller's context and by Options.Timeout
// (2s by default), whichever ends first, so a Redis that stops answering
// fails requests within seconds rather than hanging them. For the deadline
// to reach the socket, the client needs ContextTimeoutEnabled: NewClient sets
// it; with a client built without it, go-redis waits for its ReadTimeout (5s
// by default) before the store sees the deadline.
package redisstore
