package filesession

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Per-user sessions: which sessions a user has, and revoking them.
//
// A session belongs to a user once the application calls Session.SetUser
// (on login, next to Session.Renew). The user is stored with the session
// (Record.User, the stored member "__user"), and stores that implement
// UserIndex keep an index from users to their sessions, so that listing
// and revoking a user's sessions costs in proportion to that user's
// sessions, not to every session of the store.
//
// The indexes are kept as a superset of the truth: a store adds a session
// to its user's entry before it writes the session, and removes it only
// after the session is gone, so that a crash at any point can only leave
// an entry too many, never one too few. Readers check every entry against
// the session it names and drop the stale ones. That is what makes "sign
// out everywhere" trustworthy: a session that exists is never missing from
// its user's listing.
//
// Pages never see session IDs: the manager's API (Manager.Sessions,
// RevokeSession, RevokeUser) names sessions by a handle, a keyed hash of
// the ID from which the ID cannot be recovered, and only ever acts on the
// sessions of the user it is given.

// UserIndex is implemented by stores that can list the sessions of one user
// without a scan of every session (every store of this module does). The
// manager discovers it by type assertion, looking through wrappers that
// have an Unwrap() Store method; stores without it fall back to Lister.
type UserIndex interface {
	// UserSessions returns the live sessions whose Record.User is user,
	// with their records, in no particular order. Every session that is
	// live with that user from before the call until after it is
	// returned, whatever crashes came before; sessions created, renewed,
	// deleted or changed while the call runs may or may not be. It never
	// returns an expired session or one of another user. The empty user
	// has no sessions (sessions without a user are not indexed). An error
	// means the listing cannot be trusted: nothing partial is returned.
	UserSessions(ctx context.Context, user string) ([]UserSession, error)
}

// UserSession is one session of a user, as UserIndex returns it.
type UserSession struct {
	// ID is the session's ID. It is a bearer token: never show or log it.
	ID string
	// Record is a copy of the session's stored record.
	Record Record
}

// MaxUserLength is the longest user, in bytes, that Session.SetUser
// accepts.
const MaxUserLength = 1024

// UserAgentKey is the session key under which an application may store the
// User-Agent of the request that logged the user in, for
// SessionInfo.UserAgent:
//
//	s.Put(filesession.UserAgentKey, r.UserAgent())
const UserAgentKey = "userAgent"

// maxUserAgent is how much of a stored user agent SessionInfo carries.
const maxUserAgent = 512

// maxRevokeRounds bounds RevokeUser's list-and-delete rounds; see there.
const maxRevokeRounds = 8

// Errors of the per-user API; test them with errors.Is.
var (
	// ErrInvalidUser means a user given to Session.SetUser is not valid
	// UTF-8 or is longer than MaxUserLength bytes.
	ErrInvalidUser = errors.New("filesession: invalid user")

	// ErrNotSupported means the manager's store can list sessions neither
	// by user (UserIndex) nor at all (Lister).
	ErrNotSupported = errors.New("filesession: the store cannot list the sessions of a user")
)

// ValidUser reports whether user may be stored as a session's user: valid
// UTF-8 of at most MaxUserLength bytes. The empty user (no user) is valid.
// Stores refuse to write a record whose user is not valid, since a user
// that did not survive encoding unchanged could not be found in the index.
func ValidUser(user string) bool {
	return len(user) <= MaxUserLength && utf8.ValidString(user)
}

// SetUser records that the session belongs to user, stored at commit; ""
// removes the session from any user. It fails with ErrInvalidUser if user
// is not valid (see ValidUser). Setting the user the session already has
// does nothing. A new session with a user is stored even if it holds no
// value.
//
// Call it on login, together with Renew, so that the user's session gets a
// new ID and is listed among the user's sessions (Manager.Sessions) and
// revoked with them (Manager.RevokeUser):
//
//	s.Renew()
//	if err := s.SetUser(account.ID); err != nil { ... }
func (s *Session) SetUser(user string) error {
	if !ValidUser(user) {
		return fmt.Errorf("%w: %d bytes", ErrInvalidUser, len(user))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.user == user {
		return nil
	}
	s.user = user
	s.userChanged = true
	if user != "" {
		s.ensureIDLocked()
	}
	return nil
}

// User returns the user the session belongs to (the one it was loaded with,
// or the one SetUser gave it), or "" if none.
func (s *Session) User() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.user
}

// SessionInfo describes one session of a user for a "your sessions" page.
// It carries no session ID.
type SessionInfo struct {
	// Handle names the session in RevokeSession: a keyed hash of its ID
	// (URL-safe, 22 characters), stable while the ID is, which reveals
	// nothing of the ID. It is not a credential: RevokeSession only acts on
	// the sessions of the user it is given.
	Handle string
	// Created is when the session was first stored.
	Created time.Time
	// LastAccess is when the session was last used (saved or touched; a
	// session is touched at most once per Manager.TouchInterval).
	LastAccess time.Time
	// ExpiresAt is when the session ends if it is not used again.
	ExpiresAt time.Time
	// UserAgent is the string the application stored under UserAgentKey,
	// cut to 512 bytes, or "" if it stored none.
	UserAgent string
	// Current is set for the session of the request whose context was
	// passed to Manager.Sessions.
	Current bool
}

// Sessions returns the live sessions of user: the session of the request
// whose context ctx is (if any, see FromContext) first, with Current set,
// then the others from the most recently used. It lists through the
// store's UserIndex, or, for a store without one, by scanning every session
// with Lister (which costs in proportion to the whole store); with neither
// it fails with ErrNotSupported. A store failure is returned as is (answer
// it with ErrorFunc, 503).
func (m *Manager) Sessions(ctx context.Context, user string) ([]SessionInfo, error) {
	list, err := m.userSessions(ctx, user)
	if err != nil {
		return nil, err
	}
	current := ""
	if s := FromContext(ctx); s != nil {
		current = s.ID()
	}
	infos := make([]SessionInfo, 0, len(list))
	for _, us := range list {
		r := &us.Record
		infos = append(infos, SessionInfo{
			Handle:     m.handle(us.ID),
			Created:    r.Created,
			LastAccess: r.LastAccess,
			ExpiresAt:  r.ExpiresAt(),
			UserAgent:  userAgent(r.Values[UserAgentKey]),
			Current:    current != "" && us.ID == current,
		})
	}
	slices.SortFunc(infos, func(a, b SessionInfo) int {
		switch {
		case a.Current != b.Current:
			if a.Current {
				return -1
			}
			return 1
		case !a.LastAccess.Equal(b.LastAccess):
			return b.LastAccess.Compare(a.LastAccess)
		}
		return cmp.Or(b.Created.Compare(a.Created), cmp.Compare(a.Handle, b.Handle))
	})
	return infos, nil
}

// RevokeSession ends the session of user whose handle (SessionInfo.Handle)
// is handle, by deleting it from the store: its cookie is worth nothing
// from then on. It fails with an error matching ErrNotFound if user has no
// live session with that handle, which includes every session of another
// user: a handle from one user's page cannot end another user's session.
// If the session is the one of the request whose context ctx is, that
// request's session is also destroyed at commit, which clears its cookie.
func (m *Manager) RevokeSession(ctx context.Context, user, handle string) error {
	list, err := m.userSessions(ctx, user)
	if err != nil {
		return err
	}
	for _, us := range list {
		if subtle.ConstantTimeCompare([]byte(m.handle(us.ID)), []byte(handle)) != 1 {
			continue
		}
		if err := m.Store.Delete(ctx, us.ID); err != nil {
			return err
		}
		m.Logger.Info("filesession: session revoked", "session", m.LogID(us.ID))
		if s := FromContext(ctx); s != nil && s.ID() == us.ID {
			s.Destroy()
		}
		return nil
	}
	return fmt.Errorf("filesession: revoke session: %w: the user has no session with that handle", ErrNotFound)
}

// RevokeUser ends every live session of user except except (which may be
// nil, to end them all), by deleting each from the store, and returns how
// many it deleted: "sign out everywhere else" (a session that another
// request renewed meanwhile counts once for each ID it had). except is
// typically the request's own session, FromContext(r.Context()).
//
// A session that another request renews while RevokeUser runs moves to a
// new ID that the listing may not have seen, so RevokeUser lists again
// after every round that deleted something, until a listing finds nothing
// left to delete. If sessions keep appearing for 8 rounds it gives up with
// an error; what it deleted stays deleted. A store failure stops it with
// the store's error (answer 503); sessions deleted before it stay deleted.
func (m *Manager) RevokeUser(ctx context.Context, user string, except *Session) (int, error) {
	keep := ""
	if except != nil {
		keep = except.ID()
	}
	total := 0
	for range maxRevokeRounds {
		list, err := m.userSessions(ctx, user)
		if err != nil {
			return total, err
		}
		n := 0
		for _, us := range list {
			if us.ID == keep {
				continue
			}
			if err := m.Store.Delete(ctx, us.ID); err != nil {
				return total, err
			}
			m.Logger.Info("filesession: session revoked", "session", m.LogID(us.ID))
			n++
		}
		total += n
		if n == 0 {
			return total, nil
		}
	}
	return total, fmt.Errorf("filesession: revoking the sessions of a user: sessions kept appearing after %d rounds", maxRevokeRounds)
}

// userSessions lists the live sessions of user through the store's
// UserIndex, or by scanning with its Lister.
func (m *Manager) userSessions(ctx context.Context, user string) ([]UserSession, error) {
	if user == "" {
		return nil, nil
	}
	if ix := userIndexOf(m.Store); ix != nil {
		return ix.UserSessions(ctx, user)
	}
	l, ok := m.Store.(Lister)
	if !ok {
		return nil, ErrNotSupported
	}
	now := m.now()
	var out []UserSession
	err := l.List(ctx, func(id string, r Record) error {
		if r.User == user && !r.Expired(now) {
			out = append(out, UserSession{ID: id, Record: r})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// userIndexOf returns st's UserIndex, looking through wrappers with an
// Unwrap method (such as the metrics package's), or nil. Deletes still go
// through the wrapper, which sees them.
func userIndexOf(st Store) UserIndex {
	for range 16 {
		if ix, ok := st.(UserIndex); ok {
			return ix
		}
		u, ok := st.(interface{ Unwrap() Store })
		if !ok {
			return nil
		}
		if st = u.Unwrap(); st == nil {
			return nil
		}
	}
	return nil
}

// handle is SessionInfo.Handle of the session id: an HMAC of the ID under a
// key derived from the manager's log key (and so from its first secret),
// distinct from LogID's so that a handle on a page and an ID hash in a log
// cannot be matched.
func (m *Manager) handle(id string) string {
	k := hmac.New(sha256.New, m.logKey)
	k.Write([]byte("filesession/session-handle"))
	h := hmac.New(sha256.New, k.Sum(nil))
	h.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// userAgent decodes a stored user agent, a JSON string, cut to
// maxUserAgent bytes on a character boundary.
func userAgent(raw json.RawMessage) string {
	var ua string
	if len(raw) == 0 || json.Unmarshal(raw, &ua) != nil {
		return ""
	}
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
		for len(ua) > 0 && !utf8.ValidString(ua) {
			ua = ua[:len(ua)-1]
		}
	}
	return ua
}
