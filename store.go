package filesession

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Store keeps session records. Every method is safe for concurrent use by
// many goroutines, and the stores in this module also keep their promises
// across processes that share the same backing directory or server.
//
// The contract, which the storetest conformance suite checks for every store:
//
//   - Not found. [ErrNotFound] (tested with errors.Is) means "there is no live
//     session with this ID": it never existed, it was deleted, it expired, or
//     its record could not be decoded. Callers treat it as "no session"; it
//     is never a reason to answer 500 or 503.
//   - Expired. A record whose [Record.ExpiresAt] is not after the store's
//     clock is not found, even before the reaper removes it. Expiry is decided
//     from timestamps the server wrote, never from anything the client sent.
//   - Corrupt. A record that cannot be decoded (a truncated or hand-edited
//     file) is reported as an error that matches both [ErrNotFound] and
//     [ErrCorrupt]; the store logs it and moves it out of the way, so the ID
//     stays unusable and nothing of it is lost for an operator to inspect.
//   - Invalid IDs. An ID outside the store's alphabet or length is rejected
//     with an error matching [ErrInvalidID] (which also matches ErrNotFound)
//     before it reaches any file name, key or query.
//   - Any other error is a failure of the store itself (disk, permissions,
//     network, lock timeout). The manager answers it with 503 and changes
//     nothing, so the client's session stays as it was.
//   - No resurrection. Save, Touch, Update and Renew never create a record:
//     if the session is gone (deleted, renewed away, reaped, expired) they
//     return ErrNotFound and leave no trace.
type Store interface {
	// Load returns the session stored under id. Loading does not count as
	// use: it never moves LastAccess (the manager touches explicitly).
	Load(ctx context.Context, id string) (Record, error)

	// Create stores a new session under id. It returns an error matching
	// ErrExists if a live record already has that ID, and never overwrites it.
	Create(ctx context.Context, id string, r Record) error

	// Save applies c to the latest stored version of the session (not to the
	// version the caller loaded), so that concurrent requests that change
	// different keys do not lose each other's changes. It returns
	// ErrNotFound if the session no longer exists.
	Save(ctx context.Context, id string, c Change) error

	// Touch records that the session was used at at, without rewriting its
	// values: afterwards Load reports LastAccess = at (or later, if another
	// save or touch came after it). expires is the session's new ExpiresAt as
	// the caller computed it from the record it loaded (at plus IdleTimeout,
	// capped by Deadline); stores that expire records themselves (Redis) or
	// keep an expiry hint (the file store) use it without reading the record
	// back. Touch returns ErrNotFound if the session no longer exists, and
	// never creates it.
	Touch(ctx context.Context, id string, at, expires time.Time) error

	// Update runs fn on the latest stored version of the session while no
	// other Save, Update, Renew or Delete of that session can run, and stores
	// what fn left in the record if fn returns nil. If fn returns an error,
	// nothing is stored and Update returns that error. It returns
	// ErrNotFound if the session does not exist. A store may run fn more
	// than once (the Redis store retries an optimistic compare-and-swap);
	// only the last run's result is stored, so fn must have no side effects
	// beyond the record it is given.
	Update(ctx context.Context, id string, fn func(*Record) error) error

	// Renew moves the session from oldID to newID, applying c on the way,
	// as one step: afterwards oldID is not found and newID holds the latest
	// data of oldID with c applied. It returns ErrNotFound if oldID no longer
	// exists (nothing is created) and ErrExists if newID is taken.
	Renew(ctx context.Context, oldID, newID string, c Change) error

	// Delete removes the session. Deleting a session that does not exist is
	// not an error.
	Delete(ctx context.Context, id string) error
}

// Lister is implemented by stores that can enumerate their sessions, for
// operator tools and per-user revocation. List calls fn for each decodable
// session, expired ones included (check [Record.ExpiresAt]); it streams, so
// memory does not grow with the number of sessions. A session created or
// deleted while List runs may or may not be seen. fn may call the store
// (per-user revocation deletes from inside it). If fn returns an error, List
// stops and returns it.
type Lister interface {
	List(ctx context.Context, fn func(id string, r Record) error) error
}

// Reaper is implemented by stores that must delete expired sessions
// themselves (the file store; Redis expires keys on its own). Reap removes
// every session that is expired when it is examined, re-checking under the
// session's lock so that a session refreshed meanwhile survives, and returns
// how many it removed.
type Reaper interface {
	Reap(ctx context.Context) (int, error)
}

// TTLer is implemented by stores that have a default idle timeout of their
// own (filestore's TTL option, mirroring session-file-store's ttl). New uses
// it as the manager's IdleTimeout.
type TTLer interface {
	TTL() time.Duration
}

// Record is one session as a store keeps it.
type Record struct {
	// Values maps each session key to its JSON encoding. Keys named "cookie"
	// or starting with "__" are reserved for the stored format.
	Values map[string]json.RawMessage

	// Created is when the session was first stored.
	Created time.Time

	// LastAccess is when the session was last saved or touched. The idle
	// timeout runs from it.
	LastAccess time.Time

	// IdleTimeout is how long the session lives without being saved or
	// touched (express-session's cookie.originalMaxAge). Stores fill it with
	// their own default when a record has none, so a loaded record always
	// has it set.
	IdleTimeout time.Duration

	// Deadline is the absolute end of the session, whatever its activity.
	// The zero Time means there is none.
	Deadline time.Time

	// Cookie records the attributes of the cookie that carries the session,
	// for the stored format's "cookie" object. It is informational: the
	// server never takes expiry or security decisions from it.
	Cookie CookieAttrs

	// User is the user the session belongs to (Session.SetUser), or "" for
	// none. Stores keep it under the reserved member "__user" and index
	// it, so that a user's sessions can be listed and revoked without a
	// scan (see UserIndex). It must be valid UTF-8.
	User string
}

// CookieAttrs are the attributes of a session's cookie as recorded in the
// stored record, in the shape of express-session's cookie object.
type CookieAttrs struct {
	Secure   bool
	HTTPOnly bool
	Path     string
	Domain   string
	// SameSite is "lax", "strict", "none" or empty.
	SameSite string
}

// ExpiresAt returns when the record expires: LastAccess plus IdleTimeout, or
// Deadline if that comes first. A record with no IdleTimeout expires at its
// LastAccess.
func (r *Record) ExpiresAt() time.Time {
	exp := r.LastAccess.Add(r.IdleTimeout)
	if !r.Deadline.IsZero() && r.Deadline.Before(exp) {
		exp = r.Deadline
	}
	return exp
}

// Expired reports whether the record has expired at now: a record is live
// strictly before its ExpiresAt.
func (r *Record) Expired(now time.Time) bool {
	return !now.Before(r.ExpiresAt())
}

// Clone returns a copy of r that shares no map with it.
func (r Record) Clone() Record {
	v := make(map[string]json.RawMessage, len(r.Values))
	for k, raw := range r.Values {
		v[k] = append(json.RawMessage(nil), raw...)
	}
	r.Values = v
	return r
}

// Change is what one request did to a session: the keys it put and the keys
// it deleted, plus the metadata to refresh. Stores apply it with Apply onto
// the latest stored record, which is what makes saves merge instead of
// overwrite.
type Change struct {
	// Set maps each key the request put to its new JSON encoding.
	Set map[string]json.RawMessage
	// Delete lists the keys the request deleted.
	Delete []string
	// At is when the change was made; it becomes the record's LastAccess
	// (never moving it backwards).
	At time.Time
	// IdleTimeout, when non-zero, replaces the record's idle timeout.
	IdleTimeout time.Duration
	// Deadline, when non-zero, replaces the record's absolute deadline.
	Deadline time.Time
	// Cookie, when non-nil, replaces the record's cookie attributes.
	Cookie *CookieAttrs
	// User, when non-nil, replaces the record's user ("" removes it).
	User *string
}

// Empty reports whether c changes no key.
func (c Change) Empty() bool { return len(c.Set) == 0 && len(c.Delete) == 0 }

// Apply applies c to r: deletions first, then sets, then metadata.
func (c Change) Apply(r *Record) {
	if r.Values == nil {
		r.Values = make(map[string]json.RawMessage, len(c.Set))
	}
	for _, k := range c.Delete {
		delete(r.Values, k)
	}
	for k, v := range c.Set {
		r.Values[k] = v
	}
	if c.At.After(r.LastAccess) {
		r.LastAccess = c.At
	}
	if c.IdleTimeout > 0 {
		r.IdleTimeout = c.IdleTimeout
	}
	if !c.Deadline.IsZero() {
		r.Deadline = c.Deadline
	}
	if c.Cookie != nil {
		r.Cookie = *c.Cookie
	}
	if c.User != nil {
		r.User = *c.User
	}
}

// Errors that stores return, wrapped; test them with errors.Is.
var (
	// ErrNotFound means there is no live session with the given ID.
	ErrNotFound = errors.New("filesession: session not found")

	// ErrExists means Create or Renew found the new ID already taken.
	ErrExists = errors.New("filesession: session ID already exists")

	// ErrCorrupt means a stored record could not be decoded. Errors that
	// match it also match ErrNotFound.
	ErrCorrupt = &notFoundKind{"filesession: session record is corrupt"}

	// ErrInvalidID means an ID failed validation before any store access.
	// Errors that match it also match ErrNotFound.
	ErrInvalidID = &notFoundKind{"filesession: invalid session ID"}

	// ErrLockTimeout means a store could not take a session's lock before
	// the context's deadline or its own lock timeout.
	ErrLockTimeout = errors.New("filesession: timed out waiting for session lock")
)

// notFoundKind is an error kind that is also a kind of ErrNotFound, so that
// code which only cares about "no session" needs one check.
type notFoundKind struct{ msg string }

func (e *notFoundKind) Error() string        { return e.msg }
func (e *notFoundKind) Is(target error) bool { return target == ErrNotFound }

// ErrTooLarge means a session's encoded record exceeds the store's or the
// manager's size limit. Nothing was written.
var ErrTooLarge = errors.New("filesession: session too large")
