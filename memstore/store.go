package memstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/filesession/filesession"
)

// DefaultTTL is the idle timeout a Store gives records created without one
// when its DefaultTTL field is zero.
const DefaultTTL = 24 * time.Hour

// Store is an in-memory session store. The zero value is ready to use, and
// so is the result of New; set the fields before the first call and do not
// change them afterwards.
type Store struct {
	// Now is the store's clock, used for every expiry decision. Nil means
	// time.Now. Tests set it to a fake clock (storetest.Clock.Now).
	Now func() time.Time

	// DefaultTTL is the idle timeout given to records that are created (or
	// left by Update) without one, and what TTL returns, so that the
	// manager uses it as its IdleTimeout. Zero or negative means the
	// package's DefaultTTL, 24 hours. (It cannot be named TTL: that is the
	// name of the method.)
	DefaultTTL time.Duration

	mu       sync.Mutex
	sessions map[string]filesession.Record // guarded by mu; values owned by the store
	users    userIndex                     // guarded by mu; see userindex.go
}

// The capabilities the manager and operator tools look for.
var (
	_ filesession.Store  = (*Store)(nil)
	_ filesession.Lister = (*Store)(nil)
	_ filesession.Reaper = (*Store)(nil)
	_ filesession.TTLer  = (*Store)(nil)

	_ filesession.UserIndex = (*Store)(nil)
)

// New returns an empty Store with the default clock and TTL.
func New() *Store {
	return &Store{sessions: make(map[string]filesession.Record)}
}

// TTL returns the idle timeout given to records created without one: the
// DefaultTTL field, or 24 hours if that is not positive.
func (s *Store) TTL() time.Duration {
	if s.DefaultTTL > 0 {
		return s.DefaultTTL
	}
	return DefaultTTL
}

// Close releases nothing, since the store holds no resources but memory,
// and returns nil. It exists so that code can close any store the same way.
// The store stays usable after Close.
func (s *Store) Close() error { return nil }

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// enter checks what every method checks before it looks at the map: that
// the context is not done (so a cancelled request changes nothing) and
// that each ID is valid. Errors never include the ID: it is a bearer token.
func enter(ctx context.Context, ids ...string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %w", err)
	}
	for _, id := range ids {
		if !filesession.ValidID(id, filesession.IDLength) {
			return fmt.Errorf("memstore: %w", filesession.ErrInvalidID)
		}
	}
	return nil
}

var errNotFound = fmt.Errorf("memstore: %w", filesession.ErrNotFound)

// live returns the stored record of a live session, removing it if it has
// expired. The caller holds s.mu; the returned record is the store's own.
func (s *Store) live(id string) (filesession.Record, bool) {
	r, ok := s.sessions[id]
	if !ok {
		return filesession.Record{}, false
	}
	if r.Expired(s.now()) {
		s.drop(id)
		return filesession.Record{}, false
	}
	return r, true
}

// put stores r, which the store must own, filling in the default idle
// timeout. The caller holds s.mu.
func (s *Store) put(id string, r filesession.Record) {
	if r.IdleTimeout <= 0 {
		r.IdleTimeout = s.TTL()
	}
	if s.sessions == nil {
		s.sessions = make(map[string]filesession.Record)
	}
	s.users.move(id, s.sessions[id].User, r.User)
	s.sessions[id] = r
}

// Load returns a copy of the session stored under id, or an error matching
// filesession.ErrNotFound if there is no live one.
func (s *Store) Load(ctx context.Context, id string) (filesession.Record, error) {
	if err := enter(ctx, id); err != nil {
		return filesession.Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(id)
	if !ok {
		return filesession.Record{}, errNotFound
	}
	return r.Clone(), nil
}

// Create stores a copy of r under id, giving it the store's TTL if it has
// no IdleTimeout. It returns an error matching filesession.ErrExists if a
// live session has that ID; an expired one is replaced.
func (s *Store) Create(ctx context.Context, id string, r filesession.Record) error {
	if err := enter(ctx, id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live(id); ok {
		return fmt.Errorf("memstore: %w", filesession.ErrExists)
	}
	if err := checkUser(r.User); err != nil {
		return err
	}
	s.put(id, r.Clone())
	return nil
}

// enterChange is enter for the methods that apply a Change: it also takes
// the store's own copy of c and checks the user it sets.
func enterChange(ctx context.Context, c filesession.Change, ids ...string) (filesession.Change, error) {
	if err := enter(ctx, ids...); err != nil {
		return c, err
	}
	c = ownChange(c)
	return c, checkChangeUser(c)
}

// ownChange copies the parts of c that Apply would otherwise share with
// the caller: the bytes of each value set.
func ownChange(c filesession.Change) filesession.Change {
	if len(c.Set) > 0 {
		set := make(map[string]json.RawMessage, len(c.Set))
		for k, v := range c.Set {
			set[k] = append(json.RawMessage(nil), v...)
		}
		c.Set = set
	}
	return c
}

// Save applies c to the latest stored version of the session. It returns
// an error matching filesession.ErrNotFound if there is no live session
// with that ID, and then stores nothing.
func (s *Store) Save(ctx context.Context, id string, c filesession.Change) error {
	c, err := enterChange(ctx, c, id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(id)
	if !ok {
		return errNotFound
	}
	c.Apply(&r)
	s.put(id, r)
	return nil
}

// Touch moves the session's LastAccess to at (never backwards). memstore
// computes expiry from the record itself, so it does not need expires. It
// returns an error matching filesession.ErrNotFound if there is no live
// session with that ID.
func (s *Store) Touch(ctx context.Context, id string, at, expires time.Time) error {
	if err := enter(ctx, id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(id)
	if !ok {
		return errNotFound
	}
	if at.After(r.LastAccess) {
		r.LastAccess = at
		s.sessions[id] = r
	}
	return nil
}

// Update runs fn on a copy of the latest stored version of the session and
// stores that copy if fn returns nil; if fn returns an error, Update
// returns it unchanged and stores nothing. It returns an error matching
// filesession.ErrNotFound, without calling fn, if there is no live session
// with that ID.
//
// fn runs with the store locked, which is how no other operation on the
// session can run meanwhile, so fn must not call the Store (it would
// deadlock) and should be quick: it holds up every session.
func (s *Store) Update(ctx context.Context, id string, fn func(*filesession.Record) error) error {
	if err := enter(ctx, id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(id)
	if !ok {
		return errNotFound
	}
	r = r.Clone()
	if err := fn(&r); err != nil {
		return err
	}
	if err := checkUser(r.User); err != nil {
		return err
	}
	// fn may have kept references to r's map or values; storing a fresh
	// copy keeps them from reaching the store's data later.
	s.put(id, r.Clone())
	return nil
}

// Renew moves the session from oldID to newID, applying c, in one step
// under the store's lock. It returns an error matching
// filesession.ErrNotFound if oldID has no live session, and one matching
// filesession.ErrExists if newID has one (which includes newID == oldID);
// in both cases nothing changes.
func (s *Store) Renew(ctx context.Context, oldID, newID string, c filesession.Change) error {
	c, err := enterChange(ctx, c, oldID, newID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.live(oldID)
	if !ok {
		return errNotFound
	}
	if _, ok := s.live(newID); ok {
		return fmt.Errorf("memstore: %w", filesession.ErrExists)
	}
	c.Apply(&r)
	s.drop(oldID)
	s.put(newID, r)
	return nil
}

// Delete removes the session. Deleting one that does not exist, or has
// expired, returns nil.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := enter(ctx, id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop(id)
	return nil
}

// List calls fn with a copy of every stored session, expired ones not yet
// removed included, in no particular order. It works on a snapshot taken
// under the lock and calls fn without it, so fn may call the store (to
// delete a user's sessions, say); sessions created or deleted meanwhile may
// or may not be seen. The snapshot costs memory proportional to the store,
// which an in-memory store has anyway. List stops and returns fn's error
// if fn fails, and the context's error, wrapped, if it is cancelled.
func (s *Store) List(ctx context.Context, fn func(id string, r filesession.Record) error) error {
	if err := enter(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	type entry struct {
		id string
		r  filesession.Record
	}
	snap := make([]entry, 0, len(s.sessions))
	for id, r := range s.sessions {
		snap = append(snap, entry{id, r.Clone()})
	}
	s.mu.Unlock()
	for _, e := range snap {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memstore: %w", err)
		}
		if err := fn(e.id, e.r); err != nil {
			return err
		}
	}
	return nil
}

// Reap removes every session that has expired by the store's clock and
// returns how many it removed. It holds the lock throughout, so a session
// touched meanwhile is examined after the touch.
func (s *Store) Reap(ctx context.Context) (int, error) {
	if err := enter(ctx); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	n := 0
	for id, r := range s.sessions {
		if r.Expired(now) {
			s.drop(id)
			n++
		}
	}
	return n, nil
}
