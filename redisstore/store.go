package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/filesession/filesession"
	"github.com/redis/go-redis/v9"
)

// Defaults for Options.
const (
	// DefaultPrefix is the key prefix when Options.Prefix is empty.
	DefaultPrefix = "sess:"
	// DefaultTTL is the idle timeout of records stored without one.
	DefaultTTL = 24 * time.Hour
	// DefaultTimeout bounds each operation when Options.Timeout is zero.
	DefaultTimeout = 2 * time.Second
	// QuarantineTTL is how long a corrupt record stays under its quarantine
	// key for an operator to inspect before Redis drops it.
	QuarantineTTL = 7 * 24 * time.Hour
)

// Options configure a Store. The zero value is usable: every field has a
// default.
type Options struct {
	// Prefix starts every key the store writes, so that sessions never
	// collide with the application's own keys and an operator can find them
	// with SCAN MATCH. Default "sess:". Stores sharing a server or database
	// need prefixes of their own; one may extend another ("sess:" and
	// "sess:admin:"), as List checks the shape of every key it finds. A
	// prefix should not contain '{': Redis Cluster would take the hash tag
	// from it and put every session in one slot (and so on one shard).
	Prefix string

	// TTL is the idle timeout of records created without one
	// (Record.IdleTimeout zero), and what TTL() reports, which
	// filesession.New uses as the manager's idle timeout. Default 24h.
	TTL time.Duration

	// Timeout bounds each store operation, on top of the caller's context:
	// the earlier of the two deadlines wins. Default 2s. For it to cut a
	// read from a server that has stopped answering short, the client needs
	// ContextTimeoutEnabled (see NewClient); otherwise go-redis waits for
	// its own ReadTimeout before it notices the deadline.
	Timeout time.Duration

	// Now is the store's clock, used for every expiry decision and for the
	// TTLs it sets (relative to Now, so a clock that disagrees with the
	// server's does not make keys vanish early). Default time.Now.
	Now func() time.Time

	// IDLength is the length of the session IDs the store accepts, checked
	// with filesession.ValidID before any command. Default
	// filesession.IDLength (43); the express preset's 24-byte IDs are 32.
	IDLength int

	// Logger receives reports of corrupt records (with hashed IDs only).
	// Default slog.Default().
	Logger *slog.Logger

	// Events, if not nil, is told of what happens behind the methods'
	// backs, for metrics: Retried("update", ...) for every Update attempt
	// that lost its compare-and-swap and starts over, Retried(op, ...) for
	// every wait on a cluster-mode Renew in progress, and Quarantined for
	// every corrupt record moved aside. The store takes no locks and Redis
	// expires keys itself, so LockWaited, Reaped and ReapDone are never
	// called. Default nil.
	Events filesession.StoreEvents
}

// Store is a filesession.Store, filesession.Lister and filesession.TTLer
// kept in Redis. See the package documentation for the key layout and the
// guarantees. A Store is safe for concurrent use, and any number of
// processes may share one server through Stores with the same Prefix.
type Store struct {
	client   redis.UniversalClient
	prefix   string
	ttl      time.Duration
	timeout  time.Duration
	now      func() time.Time
	idLength int
	log      *slog.Logger
	events   filesession.StoreEvents

	// twoPhaseRenew is set for clients that may send two keys to different
	// servers (Cluster, Ring), where one script cannot touch both. Tests
	// set it on a single node to exercise that path.
	twoPhaseRenew bool
	// testHookRenewCopied, if set, runs between the copy and the commit of
	// a two-phase renew, so tests can race them deterministically.
	testHookRenewCopied func()
}

var (
	_ filesession.Store  = (*Store)(nil)
	_ filesession.Lister = (*Store)(nil)
	_ filesession.TTLer  = (*Store)(nil)
)

// New returns a Store that keeps sessions in Redis through client, which may
// be a *redis.Client (single node, or Sentinel through
// redis.NewFailoverClient), a *redis.ClusterClient or a *redis.Ring. The
// client stays the caller's: the Store never closes it.
func New(client redis.UniversalClient, opts Options) *Store {
	s := &Store{
		client:   client,
		prefix:   opts.Prefix,
		ttl:      opts.TTL,
		timeout:  opts.Timeout,
		now:      opts.Now,
		idLength: opts.IDLength,
		log:      opts.Logger,
		events:   opts.Events,
	}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTTL
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.idLength <= 0 {
		s.idLength = filesession.IDLength
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	_, single := client.(*redis.Client)
	s.twoPhaseRenew = !single
	return s
}

// TTL returns the idle timeout the store gives records created without one.
func (s *Store) TTL() time.Duration { return s.ttl }

// Key returns the Redis key of the session id: the prefix followed by the ID
// in braces, "sess:{<id>}". The braces are a Cluster hash tag: every key of
// one session (its record and its quarantine key) hashes to the same slot.
func (s *Store) Key(id string) string { return s.prefix + "{" + id + "}" }

// quarantineKey is where a corrupt record of id is moved: same hash tag, so
// the same slot, and a name List's pattern does not match.
func (s *Store) quarantineKey(id string) string { return s.prefix + "corrupt:{" + id + "}" }

// Load returns the session stored under id, or an error matching
// filesession.ErrNotFound if there is no live one. It is one HGETALL.
func (s *Store) Load(ctx context.Context, id string) (filesession.Record, error) {
	if err := s.check("load", id, ctx); err != nil {
		return filesession.Record{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	r, _, err := s.read(ctx, "load", id)
	if err != nil {
		return filesession.Record{}, err
	}
	if r.Expired(s.now()) {
		return filesession.Record{}, notFound("load", id)
	}
	return r, nil
}

// read fetches and decodes id's record, quarantining it if it is corrupt.
// It does not check expiry.
func (s *Store) read(ctx context.Context, op, id string) (filesession.Record, meta, error) {
	fields, err := s.client.HGetAll(ctx, s.Key(id)).Result()
	if err != nil {
		if isWrongType(err) {
			return filesession.Record{}, meta{}, s.corrupt(ctx, op, id, err)
		}
		return filesession.Record{}, meta{}, s.fail(ctx, op, id, err)
	}
	if len(fields) == 0 {
		return filesession.Record{}, meta{}, notFound(op, id)
	}
	r, m, err := decodeRecord(fields, s.ttl)
	if err != nil {
		return filesession.Record{}, meta{}, s.corrupt(ctx, op, id, err)
	}
	return r, m, nil
}

// Create stores r under id. It returns an error matching
// filesession.ErrExists if a live record has the ID; a record there that has
// expired is replaced. Zero Created or LastAccess become the store's now,
// and a zero IdleTimeout becomes TTL().
func (s *Store) Create(ctx context.Context, id string, r filesession.Record) error {
	if err := s.check("create", id, ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	now := s.now()
	s.fill(&r, now)
	fields, err := recordFields(&r)
	if err != nil {
		return err
	}
	// Indexed before the record names the user (userindex.go).
	if err := s.indexAdd(ctx, r.User, id); err != nil {
		return err
	}
	args := make([]any, 0, 6+len(fields))
	args = append(args, ms(now), durMS(s.ttl), token(),
		ms(r.LastAccess), durMS(r.IdleTimeout), deadlineArg(r.Deadline))
	args = append(args, fields...)
	res, err := createScript.Run(ctx, s.client, []string{s.Key(id)}, args...).Text()
	if err != nil {
		return s.scriptFail(ctx, "create", id, err)
	}
	switch res {
	case resOK:
		return nil
	case resExists:
		return fmt.Errorf("redisstore: create session %s: %w", hashID(id), filesession.ErrExists)
	case resCorrupt:
		// Never overwrite a record an operator may want to look at: move it
		// aside and refuse this ID.
		s.corrupt(ctx, "create", id, errDecode)
		return fmt.Errorf("redisstore: create session %s over a corrupt record: %w", hashID(id), filesession.ErrExists)
	}
	return unexpected("create", id, res)
}

// fill resolves a record's zero fields before it is stored.
func (s *Store) fill(r *filesession.Record, now time.Time) {
	if r.Created.IsZero() {
		r.Created = now
	}
	if r.LastAccess.IsZero() {
		r.LastAccess = now
	}
	if r.IdleTimeout.Milliseconds() <= 0 {
		r.IdleTimeout = s.ttl
	}
}

// Save merges c into the latest stored version of the session, in one
// script on the server, so concurrent saves of different keys all land. It
// returns an error matching filesession.ErrNotFound if the session is gone
// or expired, and then writes nothing.
func (s *Store) Save(ctx context.Context, id string, c filesession.Change) error {
	if err := s.check("save", id, ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	args := make([]any, 2, 7+len(c.Delete)+2*len(c.Set))
	args, err := changeArgs(args, c)
	if err != nil {
		return err
	}
	if c.User != nil {
		if err := s.indexAdd(ctx, *c.User, id); err != nil {
			return err
		}
	}
	key := []string{s.Key(id)}
	for attempt := 0; ; attempt++ {
		args[0], args[1] = ms(s.now()), durMS(s.ttl)
		res, err := saveScript.Run(ctx, s.client, key, args...).Text()
		if err != nil {
			return s.scriptFail(ctx, "save", id, err)
		}
		if res != resFrozen {
			return s.result("save", id, res, ctx)
		}
		// A cluster-mode Renew is copying this session: wait for it to
		// finish, after which the old ID is gone (ErrNotFound), or to fail,
		// after which the save goes through.
		s.retried("save", errRenewing)
		if err := backoff(ctx, attempt); err != nil {
			return fmt.Errorf("redisstore: save session %s: waiting for a renew: %w", hashID(id), err)
		}
	}
}

// Touch moves the session's LastAccess to at (never backwards) and
// refreshes its TTL, without rewriting any value: one script, one round trip.
// expires is not needed: the script computes the expiry from the stored
// record, which is at least as fresh as the caller's copy. It returns an
// error matching filesession.ErrNotFound if the session is gone or expired.
func (s *Store) Touch(ctx context.Context, id string, at, expires time.Time) error {
	if err := s.check("touch", id, ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := touchScript.Run(ctx, s.client, []string{s.Key(id)}, ms(s.now()), durMS(s.ttl), ms(at)).Text()
	if err != nil {
		return s.scriptFail(ctx, "touch", id, err)
	}
	return s.result("touch", id, res, ctx)
}

// Update runs fn on the latest stored version of the session and stores what
// fn left if fn returns nil, as an optimistic transaction: it reads the
// record with its version, runs fn on a copy, and writes it back with a
// compare-and-swap script that fails if any Save, Update, Renew or Delete
// came in between, in which case it reads again and runs fn again. So fn
// may run more than once and must have no effects outside the record; its
// last run is the one stored. Attempts back off with jitter and stop at the
// operation's deadline with an error matching filesession.ErrLockTimeout.
// If fn returns an error, nothing is stored and Update returns that error.
func (s *Store) Update(ctx context.Context, id string, fn func(*filesession.Record) error) error {
	if err := s.check("update", id, ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	key := []string{s.Key(id)}
	tok := token()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return fmt.Errorf("redisstore: update session %s: %w after %d attempts: %w",
					hashID(id), filesession.ErrLockTimeout, attempt, err)
			}
		}
		r, m, err := s.read(ctx, "update", id)
		if err != nil {
			return err
		}
		now := s.now()
		if r.Expired(now) {
			return notFound("update", id)
		}
		if m.hasRenewTag && m.renewUntil > now.UnixMilli() {
			s.retried("update", errRenewing) // a cluster-mode Renew is copying it; see Save
			continue
		}
		oldUser := r.User
		if err := fn(&r); err != nil {
			return err
		}
		s.fill(&r, now)
		fields, err := recordFields(&r)
		if err != nil {
			return err
		}
		if r.User != oldUser {
			if err := s.indexAdd(ctx, r.User, id); err != nil {
				return err
			}
		}
		args := make([]any, 0, 7+len(fields))
		args = append(args, ms(now), durMS(s.ttl), strconv.FormatInt(m.version, 10), tok,
			ms(r.LastAccess), durMS(r.IdleTimeout), deadlineArg(r.Deadline))
		args = append(args, fields...)
		res, err := updateScript.Run(ctx, s.client, key, args...).Text()
		if err != nil {
			return s.scriptFail(ctx, "update", id, err)
		}
		switch res {
		case resConflict:
			s.retried("update", errConflict)
			continue
		case resFrozen:
			s.retried("update", errRenewing)
			continue
		default:
			return s.result("update", id, res, ctx)
		}
	}
}

// Renew moves the session from oldID to newID, applying c, as one step:
// afterwards oldID is not found and newID holds oldID's latest data with c
// applied. On a single node (or Sentinel) this is one script. With a
// Cluster or Ring client the two keys usually live on different shards, and
// Renew runs in three steps that never leave neither ID in place; see the
// package documentation. It returns an error matching
// filesession.ErrNotFound if oldID is gone (nothing is created), and one
// matching filesession.ErrExists if newID is taken.
func (s *Store) Renew(ctx context.Context, oldID, newID string, c filesession.Change) error {
	if err := s.check("renew", oldID, ctx); err != nil {
		return err
	}
	if err := s.check("renew to", newID, ctx); err != nil {
		return err
	}
	if oldID == newID {
		return fmt.Errorf("redisstore: renew session %s onto itself: %w", hashID(oldID), filesession.ErrExists)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if s.twoPhaseRenew {
		return s.renewTwoPhase(ctx, oldID, newID, c)
	}
	// The new ID joins the user's index first, and the renewal writes
	// exactly that user, whatever a concurrent Save did (userindex.go).
	oldUser, err := s.userOf(ctx, "renew", oldID)
	if err != nil {
		return err
	}
	newUser := oldUser
	if c.User != nil {
		newUser = *c.User
	}
	c.User = &newUser
	args := make([]any, 3, 9+len(c.Delete)+2*len(c.Set))
	args, err = changeArgs(args, c)
	if err != nil {
		return err
	}
	if err := s.indexAdd(ctx, newUser, newID); err != nil {
		return err
	}
	args[2] = token()
	keys := []string{s.Key(oldID), s.Key(newID)}
	for attempt := 0; ; attempt++ {
		args[0], args[1] = ms(s.now()), durMS(s.ttl)
		res, err := renewScript.Run(ctx, s.client, keys, args...).Text()
		if err != nil {
			return s.scriptFail(ctx, "renew", oldID, err)
		}
		switch res {
		case resFrozen: // only if a two-phase Renew ran on this server too
			s.retried("renew", errRenewing)
			if err := backoff(ctx, attempt); err != nil {
				return fmt.Errorf("redisstore: renew session %s: waiting for another renew: %w", hashID(oldID), err)
			}
			continue
		case resExists:
			return fmt.Errorf("redisstore: renew session %s to %s: %w", hashID(oldID), hashID(newID), filesession.ErrExists)
		}
		if err := s.result("renew", oldID, res, ctx); err != nil {
			return err
		}
		s.indexForget(ctx, oldUser, oldID)
		return nil
	}
}

// renewTwoPhase is Renew for clients whose two keys may be on different
// servers. 1: freeze the old record (Saves and Updates wait) and read it;
// 2: create the new record from it with c applied; 3: delete the old record
// if it is still frozen by us, else undo step 2. A crash between steps
// leaves the old session frozen until its lease (Timeout plus a second)
// runs out and then usable again, plus at most an orphan new record whose
// ID nobody was told; never neither.
func (s *Store) renewTwoPhase(ctx context.Context, oldID, newID string, c filesession.Change) error {
	if _, err := changeArgs(nil, c); err != nil {
		return err
	}
	tok := token()
	oldKey := []string{s.Key(oldID)}
	var fields []string
	for attempt := 0; ; attempt++ {
		now := s.now()
		lease := now.Add(s.timeout + time.Second)
		out, err := freezeScript.Run(ctx, s.client, oldKey, ms(now), durMS(s.ttl), tok, ms(lease)).StringSlice()
		if err != nil {
			return s.scriptFail(ctx, "renew", oldID, err)
		}
		if len(out) == 0 {
			return unexpected("renew", oldID, "")
		}
		if out[0] == resFrozen {
			s.retried("renew", errRenewing)
			if err := backoff(ctx, attempt); err != nil {
				return fmt.Errorf("redisstore: renew session %s: waiting for another renew: %w", hashID(oldID), err)
			}
			continue
		}
		if out[0] != resOK {
			return s.result("renew", oldID, out[0], ctx)
		}
		fields = out[1:]
		break
	}
	unfreeze := func() {
		// Best effort, on a fresh context so that a cancelled request still
		// lets the session go; the lease covers a failure here.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
		unfreezeScript.Run(uctx, s.client, oldKey, tok)
	}
	hash := make(map[string]string, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		hash[fields[i]] = fields[i+1]
	}
	r, _, err := decodeRecord(hash, s.ttl)
	if err != nil {
		unfreeze()
		return s.corrupt(ctx, "renew", oldID, err)
	}
	oldUser := r.User
	c.Apply(&r)
	now := s.now()
	s.fill(&r, now)
	nf, err := recordFields(&r)
	if err != nil {
		unfreeze()
		return err
	}
	// The old record is frozen, so its user cannot change under us.
	if err := s.indexAdd(ctx, r.User, newID); err != nil {
		unfreeze()
		return err
	}
	args := make([]any, 0, 6+len(nf))
	args = append(args, ms(now), durMS(s.ttl), tok, ms(r.LastAccess), durMS(r.IdleTimeout), deadlineArg(r.Deadline))
	args = append(args, nf...)
	res, err := createScript.Run(ctx, s.client, []string{s.Key(newID)}, args...).Text()
	if err != nil {
		unfreeze()
		return s.scriptFail(ctx, "renew", newID, err)
	}
	if res != resOK {
		unfreeze()
		if res == resExists || res == resCorrupt {
			return fmt.Errorf("redisstore: renew session %s to %s: %w", hashID(oldID), hashID(newID), filesession.ErrExists)
		}
		return unexpected("renew", newID, res)
	}
	if s.testHookRenewCopied != nil {
		s.testHookRenewCopied()
	}
	res, err = commitScript.Run(ctx, s.client, oldKey, ms(s.now()), tok).Text()
	if err != nil {
		// The new record exists and the old one is frozen; which of them
		// survives is unknown, so report a store failure (503) and let the
		// lease return the old session to service.
		return s.scriptFail(ctx, "renew", oldID, err)
	}
	if res != resOK {
		// The old session was deleted (logout), or our lease ran out while
		// we copied it: undo the copy rather than resurrect or fork it.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
		if err := s.client.Del(dctx, s.Key(newID)).Err(); err != nil {
			return s.fail(dctx, "renew", newID, err)
		}
		if res == resLapsed {
			return fmt.Errorf("redisstore: renew session %s: the copy outlasted its lease; the old ID stays live", hashID(oldID))
		}
		if res != resGone {
			return unexpected("renew", oldID, res)
		}
		return notFound("renew", oldID)
	}
	s.indexForget(ctx, oldUser, oldID)
	return nil
}

// Delete removes the session. Deleting a session that does not exist is not
// an error.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.check("delete", id, ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// One script: the record's user comes back with its deletion, so its
	// index entry can go after it (userindex.go).
	user, err := deleteScript.Run(ctx, s.client, []string{s.Key(id)}).Text()
	if err != nil {
		return s.fail(ctx, "delete", id, err)
	}
	s.indexForget(ctx, user, id)
	return nil
}

// Causes of retries, as Events.Retried sees them.
var (
	errConflict = errors.New("redisstore: session changed during Update (version conflict)")
	errRenewing = errors.New("redisstore: session is being renewed (cluster mode)")
)

func (s *Store) retried(op string, err error) {
	if s.events != nil {
		s.events.Retried(op, err)
	}
}

// check validates id and the context before any command is sent.
func (s *Store) check(op, id string, ctx context.Context) error {
	if !filesession.ValidID(id, s.idLength) {
		return fmt.Errorf("redisstore: %s: %w", op, filesession.ErrInvalidID)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: %s session %s: %w", op, hashID(id), err)
	}
	return nil
}

// result maps a script's status to the method's error.
func (s *Store) result(op, id, res string, ctx context.Context) error {
	switch res {
	case resOK:
		return nil
	case resMissing, resExpired:
		return notFound(op, id)
	case resCorrupt:
		return s.corrupt(ctx, op, id, errDecode)
	}
	return unexpected(op, id, res)
}

// corrupt logs a corrupt record, moves it to its quarantine key and returns
// an error matching filesession.ErrCorrupt (and so ErrNotFound).
func (s *Store) corrupt(ctx context.Context, op, id string, cause error) error {
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	moved, qerr := quarantineScript.Run(qctx, s.client,
		[]string{s.Key(id), s.quarantineKey(id)}, QuarantineTTL.Milliseconds()).Int()
	if qerr != nil {
		s.log.Error("redisstore: corrupt session record could not be quarantined",
			"session", hashID(id), "cause", cause.Error(), "err", qerr)
	} else if moved == 1 {
		s.log.Warn("redisstore: corrupt session record moved to quarantine",
			"session", hashID(id), "cause", cause.Error(), "ttl", QuarantineTTL)
		if s.events != nil {
			s.events.Quarantined(cause)
		}
	}
	return fmt.Errorf("redisstore: %s session %s: %w: %v", op, hashID(id), filesession.ErrCorrupt, cause)
}

// scriptFail maps an error from a script call. A WRONGTYPE error means the
// key holds something other than a hash, which is a corrupt record.
func (s *Store) scriptFail(ctx context.Context, op, id string, err error) error {
	if isWrongType(err) {
		return s.corrupt(ctx, op, id, err)
	}
	return s.fail(ctx, op, id, err)
}

// fail wraps a failure of Redis itself (redis.Nil, a missing key, is the
// one reply it maps to not found): connection refused or reset,
// timeout, READONLY (a replica after failover), OOM (maxmemory reached),
// NOSCRIPT storms, cluster errors. It never matches filesession.ErrNotFound,
// so the manager answers 503 and the client's session is left alone.
//
// When the operation's deadline passed, the error also matches the context's
// error: with ContextTimeoutEnabled go-redis reports a deadline that reached
// the socket as a plain i/o timeout.
func (s *Store) fail(ctx context.Context, op, id string, err error) error {
	if errors.Is(err, redis.Nil) {
		return notFound(op, id)
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("redisstore: %s session %s: %w (%w)", op, hashID(id), err, cerr)
	}
	return fmt.Errorf("redisstore: %s session %s: %w", op, hashID(id), err)
}

func isWrongType(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "WRONGTYPE")
}

func notFound(op, id string) error {
	return fmt.Errorf("redisstore: %s session %s: %w", op, hashID(id), filesession.ErrNotFound)
}

func unexpected(op, id, res string) error {
	return fmt.Errorf("redisstore: %s session %s: unexpected script result %q", op, hashID(id), res)
}

func deadlineArg(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return ms(t)
}

// hashID names a session in errors and logs without revealing its ID: the
// first 12 hex digits of its SHA-256.
func hashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:6])
}

// token returns a random write token; it only has to differ between
// concurrent writers, so math/rand's per-goroutine ChaCha8 is plenty.
func token() string { return strconv.FormatUint(rand.Uint64(), 36) }

// backoff sleeps before retry attempt n (1 ms doubling to 32 ms, with
// jitter so that contending writers spread out), or returns the context's
// error if it ends first.
func backoff(ctx context.Context, n int) error {
	d := time.Millisecond << min(n, 5)
	d = d/2 + rand.N(d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
