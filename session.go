package filesession

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Session is one request's view of its session. Handlers get it with
// FromContext. It is safe for use by several goroutines of the request.
// Changes are kept in memory and committed by the middleware before the
// response header is written; only what the request changed is sent to the
// store, which merges it onto the latest stored version.
type Session struct {
	m   *Manager
	req *http.Request

	mu sync.Mutex
	// id is the session's ID: the loaded one, or a fresh one once a new
	// session is first changed. Empty for a session that does not exist.
	id string
	// stored reports whether the store holds a record under id.
	stored bool
	// presented reports whether the request carried a session cookie at
	// all (valid or not), so that a dead one can be cleared.
	presented bool
	// resign reports whether the cookie verified with an older key.
	resign bool

	values     map[string]json.RawMessage
	set        map[string]json.RawMessage
	deleted    map[string]bool
	created    time.Time
	lastAccess time.Time
	idle       time.Duration
	deadline   time.Time
	// user is the session's user (Record.User); userChanged is set by
	// SetUser, to be stored at commit.
	user        string
	userChanged bool

	// idleChanged is set by SetIdleTimeout, deadlineChanged by
	// SetDeadline, to be stored at commit.
	idleChanged     bool
	deadlineChanged bool
	renew           bool
	destroy         bool
	// cookieDue is set when a commit must send the cookie even if nothing
	// else is pending (a session created by Update).
	cookieDue bool
	// gone is set when the store reported the session ended meanwhile.
	gone bool
}

type contextKey struct{}

// FromContext returns the session of a request that passed through
// Manager.Handler, or nil if it did not.
func FromContext(ctx context.Context) *Session {
	s, _ := ctx.Value(contextKey{}).(*Session)
	return s
}

// ID returns the session's ID, or "" if there is no session yet. A new
// session gets its ID when it is first changed; Renew gives it a new one at
// commit. Never log it: use Manager.LogID.
func (s *Session) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// Exists reports whether the session holds any value or was loaded from the
// store.
func (s *Session) Exists() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stored || len(s.values) > 0
}

// Put stores v (encoded as JSON) under key. It fails with ErrReservedKey for
// "cookie" and keys starting with "__", with ErrTooLarge if the session would
// exceed Manager.MaxSize (v is then not stored), and with the encoding error
// if v cannot be encoded.
func (s *Session) Put(key string, v any) error {
	if err := checkKey(key); err != nil {
		return err
	}
	raw, err := encodeJSON(v)
	if err != nil {
		return fmt.Errorf("filesession: encoding %q: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m.MaxSize > 0 {
		size := s.sizeLocked() + len(key) + len(raw) + 4
		if old, ok := s.values[key]; ok {
			size -= len(key) + len(old) + 4
		}
		if size > s.m.MaxSize {
			return fmt.Errorf("%w: %d bytes with %q (limit %d)", ErrTooLarge, size, key, s.m.MaxSize)
		}
	}
	s.ensureIDLocked()
	if s.values == nil {
		s.values = make(map[string]json.RawMessage)
	}
	s.values[key] = raw
	if s.set == nil {
		s.set = make(map[string]json.RawMessage)
	}
	s.set[key] = raw
	delete(s.deleted, key)
	return nil
}

// Delete removes key from the session. Deleting a missing key does nothing.
func (s *Session) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.values[key]; !ok {
		return
	}
	delete(s.values, key)
	delete(s.set, key)
	if s.stored {
		if s.deleted == nil {
			s.deleted = make(map[string]bool)
		}
		s.deleted[key] = true
	}
}

// Has reports whether the session has a value under key.
func (s *Session) Has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.values[key]
	return ok
}

// Keys returns the session's keys, sorted.
func (s *Session) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.values))
	for k := range s.values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Raw returns the JSON encoding of the value under key, or nil.
func (s *Session) Raw(key string) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(json.RawMessage(nil), s.values[key]...)
}

// Decode decodes the value under key into dst (a pointer), like
// json.Unmarshal. It returns an error matching ErrNoValue if there is none.
func (s *Session) Decode(key string, dst any) error {
	s.mu.Lock()
	raw, ok := s.values[key]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoValue, key)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("filesession: decoding %q: %w", key, err)
	}
	return nil
}

// Renew gives the session a new ID at commit, keeping its values, and
// deletes the record under the old ID, so a cookie captured before (session
// fixation) is dead. Call it on login and on any change of privilege.
//
// Renew also drops the CSRF token (CSRFTokenKey), so a token issued before
// login is dead after it; the csrf package makes a new one on next use.
func (s *Session) Renew() {
	s.Delete(CSRFTokenKey)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.renew = true
	s.ensureIDLocked()
}

// CSRFTokenKey is the session key of the CSRF token, as in the seed's
// session files ("csrfToken"); the csrf package keeps its secret there.
const CSRFTokenKey = "csrfToken"

// Destroy ends the session: at commit the stored record is deleted and the
// cookie cleared. Values put after Destroy in the same request are dropped.
func (s *Session) Destroy() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.destroy = true
}

// SetIdleTimeout overrides the manager's IdleTimeout for this session from
// now on (stored with the session). d must be positive.
func (s *Session) SetIdleTimeout(d time.Duration) {
	if d <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idle = d
	s.idleChanged = true
	s.ensureIDLocked()
}

// SetDeadline overrides the session's absolute deadline with t from now on
// (stored with the session): whatever its activity, the session ends at t.
// It replaces the deadline that Manager.Lifetime gave the session at
// creation (or its absence), earlier or later, so an application can, for
// example, restart the absolute lifetime at login,
//
//	s.Renew()
//	s.SetDeadline(time.Now().Add(8 * time.Hour))
//
// or give "remember me" sessions a longer one. The zero Time is ignored: a
// deadline can be moved but not removed. A t that is not after the
// manager's clock ends the session at commit, as Destroy does. Renew keeps
// the deadline.
func (s *Session) SetDeadline(t time.Time) {
	if t.IsZero() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !t.After(s.m.now()) {
		s.destroy = true
		return
	}
	s.deadline = t
	s.deadlineChanged = true
	s.ensureIDLocked()
}

// Deadline returns the session's absolute deadline, or the zero Time if it
// has none (or does not exist). A new session that Manager.Lifetime will
// give a deadline reports it only once it is stored.
func (s *Session) Deadline() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deadline
}

// ExpiresAt returns when the session expires if it is not used again, or
// the zero Time if it does not exist.
func (s *Session) ExpiresAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.id == "" {
		return time.Time{}
	}
	last := s.lastAccess
	if last.IsZero() {
		last = s.m.now()
	}
	return expiresAt(last, s.idle, s.deadline)
}

// Created returns when the session was first stored, or the zero Time for a
// session not stored yet.
func (s *Session) Created() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.created
}

// ensureIDLocked gives a new session its ID when it is first changed. IDs
// are always made here, never taken from the client (strict mode).
func (s *Session) ensureIDLocked() {
	if s.id == "" {
		s.id = s.m.Codec.NewID()
	}
}

func (s *Session) sizeLocked() int { return valuesSize(s.values) }

// valuesSize is the size values take in a stored record: each member is
// "key":value and a comma.
func valuesSize(values map[string]json.RawMessage) int {
	n := 0
	for k, v := range values {
		n += len(k) + len(v) + 4
	}
	return n
}

// checkSize returns an error matching ErrTooLarge if values exceed MaxSize.
func (m *Manager) checkSize(values map[string]json.RawMessage) error {
	if m.MaxSize <= 0 {
		return nil
	}
	if n := valuesSize(values); n > m.MaxSize {
		return fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, n, m.MaxSize)
	}
	return nil
}

// change returns what the request did, as a Change for the store.
func (s *Session) changeLocked(now time.Time, attrs CookieAttrs) Change {
	c := Change{At: now, Cookie: &attrs}
	if len(s.set) > 0 {
		c.Set = s.set
	}
	for k := range s.deleted {
		c.Delete = append(c.Delete, k)
	}
	sort.Strings(c.Delete)
	if s.idleChanged {
		c.IdleTimeout = s.idle
	}
	if s.deadlineChanged {
		c.Deadline = s.deadline
	}
	if s.userChanged {
		u := s.user
		c.User = &u
	}
	return c
}

// update runs fn under the store's lock on the latest stored record, first
// committing the session if it is new and folding in this request's pending
// changes, so that fn sees everything.
func (s *Session) update(ctx context.Context, fn func(r *Record) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroy || s.gone {
		return ErrGone
	}
	st := s.m.Store
	now := s.m.now()
	attrs := s.m.cookieAttrs(s.req)
	if !s.stored {
		s.ensureIDLocked()
		rec := s.newRecordLocked(now, attrs)
		if err := fn(&rec); err != nil {
			return err
		}
		if err := s.m.checkSize(rec.Values); err != nil {
			return err
		}
		if err := st.Create(ctx, s.id, rec); err != nil {
			return err
		}
		s.adoptLocked(rec)
		s.stored, s.cookieDue = true, true
		return nil
	}
	pending := s.changeLocked(now, attrs)
	var result Record
	err := st.Update(ctx, s.id, func(r *Record) error {
		pending.Apply(r)
		if err := fn(r); err != nil {
			return err
		}
		// The same limit as Put's, on what fn left: an Update must not grow
		// a session past MaxSize either. Returning the error stores nothing.
		if err := s.m.checkSize(r.Values); err != nil {
			return err
		}
		result = r.Clone()
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		s.gone = true
		return fmt.Errorf("%w: %w", ErrGone, err)
	}
	if err != nil {
		return err
	}
	s.adoptLocked(result)
	s.cookieDue = true
	return nil
}

// newRecordLocked builds the record of a session stored for the first time.
func (s *Session) newRecordLocked(now time.Time, attrs CookieAttrs) Record {
	rec := Record{
		Values:      make(map[string]json.RawMessage, len(s.values)),
		Created:     now,
		LastAccess:  now,
		IdleTimeout: s.idle,
		Cookie:      attrs,
		User:        s.user,
	}
	for k, v := range s.values {
		rec.Values[k] = v
	}
	switch {
	case s.deadlineChanged:
		rec.Deadline = s.deadline
	case s.m.Lifetime > 0:
		rec.Deadline = now.Add(s.m.Lifetime)
	}
	return rec
}

// adoptLocked makes r the session's state, with nothing pending.
func (s *Session) adoptLocked(r Record) {
	s.values = r.Values
	s.set, s.deleted = nil, nil
	s.idleChanged, s.deadlineChanged = false, false
	s.created, s.lastAccess = r.Created, r.LastAccess
	s.idle, s.deadline = r.IdleTimeout, r.Deadline
	s.user, s.userChanged = r.User, false
}

// encodeJSON encodes v as compact JSON the way JavaScript's JSON.stringify
// does as far as Go allows: no HTML escaping of <, > and &, so values read
// the same from Node and from cat.
func encodeJSON(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// checkKey refuses the keys that the stored format reserves.
// Keys must be valid UTF-8: JSON cannot carry other bytes, so such a key
// would come back from any store as a different key.
func checkKey(key string) error {
	if key == "" || key == "cookie" || strings.HasPrefix(key, "__") {
		return fmt.Errorf("%w: %q", ErrReservedKey, key)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidKey, key)
	}
	return nil
}

// ErrInvalidKey means a session key cannot be stored as given.
var ErrInvalidKey = errors.New("filesession: invalid session key")
