package filesession

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
)

// Limits on what a request's cookies can make the manager do.
const (
	// maxCookieValue is the longest cookie value looked at; longer values
	// are ignored before any decoding (browsers cap cookies at 4 KiB).
	maxCookieValue = 4096
	// maxCookieTries is how many cookies of the session's name are looked
	// at. Duplicates are resolved deterministically: the first one, in the
	// order the client sent them, whose signature verifies decides; if its
	// session is unknown or expired the request has no session, even if a
	// later cookie names a live one. Cookies after the first
	// maxCookieTries are ignored, so a header of a thousand forged values
	// costs at most this many MAC checks.
	maxCookieTries = 16
)

// Handler returns middleware that loads the request's session before next
// runs and commits it before the response header is written.
//
// Loading: the cookie's signature is verified before any store access; a
// missing, forged, garbled, expired or unknown cookie gives an empty session
// (never an error). A store failure while loading is answered by ErrorFunc
// (503) without calling next.
//
// Committing happens when the handler first writes the header or body, or
// flushes, or returns: a new session that got values is created, a changed
// one saved (only its changes, merged by the store), a renewed one moved to
// a new ID, a destroyed one deleted, an unchanged one at most touched. If
// the commit fails, the handler's response is replaced by ErrorFunc's (503,
// or 409 for ErrGone) and whatever the handler writes afterwards is
// discarded; the stored session is as it was before the request.
//
// Handler panics if Validate reports an error, as http.ServeMux does for
// an invalid pattern: a misconfigured manager must not serve.
func (m *Manager) Handler(next http.Handler) http.Handler {
	if err := m.Validate(); err != nil {
		panic(err)
	}
	if m.ErrorFunc == nil {
		m.ErrorFunc = defaultErrorFunc
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.load(r)
		if err != nil {
			m.Logger.Warn("filesession: loading session failed", "err", err)
			m.ErrorFunc(w, r, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), contextKey{}, s))
		s.req = r
		cw := &commitWriter{ResponseWriter: w, s: s}
		next.ServeHTTP(cw, r)
		if cw.commit() {
			s.commitLate(cw.ctx())
		}
	})
}

// load returns the request's session: the stored one its cookie names, or
// an empty new one.
func (m *Manager) load(r *http.Request) (*Session, error) {
	s := &Session{m: m, req: r, idle: m.IdleTimeout}
	name := m.CookieName()
	for i, c := range r.CookiesNamed(name) {
		if i == maxCookieTries {
			break
		}
		s.presented = true
		// The manager never quotes its values, so a quoted one was made by
		// someone else: one canonical encoding only.
		if len(c.Value) > maxCookieValue || c.Quoted {
			continue
		}
		id, current, ok := m.Codec.Decode(name, c.Value)
		if !ok || !m.Codec.ValidID(id) {
			continue
		}
		rec, err := m.Store.Load(r.Context(), id)
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		if rec.Expired(m.now()) {
			break
		}
		s.id, s.stored, s.resign = id, true, !current
		s.adoptLocked(rec)
		if s.idle <= 0 {
			s.idle = m.IdleTimeout
		}
		break
	}
	return s, nil
}

// commit writes the session to the store and adds its cookie to w's header.
func (s *Session) commit(ctx context.Context, w http.ResponseWriter) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, st, r := s.m, s.m.Store, s.req
	now := m.now()
	attrs := m.cookieAttrs(r)

	switch {
	case s.gone:
		// Update already told the handler (ErrGone); make the client forget it.
		m.setCookie(w, r, "", now)

	case s.destroy:
		if s.stored {
			if err := st.Delete(ctx, s.id); err != nil {
				return err
			}
			m.Logger.Info("filesession: session destroyed", "session", m.LogID(s.id))
		}
		s.stored, s.values, s.set, s.deleted = false, nil, nil, nil
		if s.presented || s.stored {
			m.setCookie(w, r, "", now)
		}

	case !s.stored:
		if len(s.values) == 0 && s.user == "" {
			if s.presented {
				// A dead, forged or foreign cookie: tell the client to drop it.
				m.setCookie(w, r, "", now)
			}
			return nil
		}
		rec := s.newRecordLocked(now, attrs)
		if err := st.Create(ctx, s.id, rec); err != nil {
			return err
		}
		s.adoptLocked(rec)
		s.stored = true
		m.Logger.Info("filesession: session created", "session", m.LogID(s.id))
		m.setCookie(w, r, s.id, rec.ExpiresAt())

	default:
		c := s.changeLocked(now, attrs)
		var err error
		switch {
		case s.renew:
			newID := m.Codec.NewID()
			if err = st.Renew(ctx, s.id, newID, c); err == nil {
				m.Logger.Info("filesession: session renewed", "from", m.LogID(s.id), "session", m.LogID(newID))
				s.id = newID
			}
		case !c.Empty() || s.idleChanged || s.deadlineChanged || s.userChanged:
			err = st.Save(ctx, s.id, c)
		case now.Sub(s.lastAccess) >= m.TouchInterval:
			exp := expiresAt(now, s.idle, s.deadline)
			err = st.Touch(ctx, s.id, now, exp)
			switch {
			case errors.Is(err, ErrNotFound):
				// Ended meanwhile; nothing of this request is lost.
				m.setCookie(w, r, "", now)
				return nil
			case err != nil:
				// The session keeps its previous expiry; nothing is lost.
				m.Logger.Warn("filesession: touch failed", "session", m.LogID(s.id), "err", err)
				return nil
			}
			s.lastAccess = now
			m.setCookie(w, r, s.id, exp)
			return nil
		default:
			if s.cookieDue || s.resign {
				m.setCookie(w, r, s.id, expiresAt(s.lastAccess, s.idle, s.deadline))
			}
			return nil
		}
		if errors.Is(err, ErrNotFound) {
			s.gone = true
			return fmt.Errorf("%w: %w", ErrGone, err)
		}
		if err != nil {
			return err
		}
		s.lastAccess = now
		s.set, s.deleted, s.idleChanged, s.deadlineChanged, s.renew = nil, nil, false, false, false
		s.userChanged = false
		m.setCookie(w, r, s.id, expiresAt(now, s.idle, s.deadline))
	}
	return nil
}

// commitLate saves changes a handler made to a stored session after its
// response had started. The cookie has gone out already, which is fine as
// long as the ID does not change; a new session or a renewal started that
// late cannot be committed, because its cookie could not reach the client.
func (s *Session) commitLate(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.m
	pending := len(s.set) > 0 || len(s.deleted) > 0 || s.idleChanged || s.deadlineChanged || s.userChanged
	switch {
	case s.gone:
		return
	case s.stored && s.destroy:
		// The cookie stays with the client, but deleting the record ends the
		// session all the same.
		if err := m.Store.Delete(ctx, s.id); err != nil {
			m.Logger.Error("filesession: destroy after the response started failed", "session", m.LogID(s.id), "err", err)
		}
	case !s.stored && len(s.values) > 0, s.renew:
		m.Logger.Error("filesession: session created or renewed after the response started; not committed", "session", m.LogID(s.id))
	case s.stored && pending:
		now := m.now()
		if err := m.Store.Save(ctx, s.id, s.changeLocked(now, m.cookieAttrs(s.req))); err != nil {
			m.Logger.Error("filesession: saving changes made after the response started failed", "session", m.LogID(s.id), "err", err)
			return
		}
		s.lastAccess = now
	}
}

// commitWriter commits the session before the first byte of the response.
type commitWriter struct {
	http.ResponseWriter
	s *Session
	// done is set once the commit has been attempted; failed if it failed
	// and the error response was written instead of the handler's.
	done, failed bool
}

// errCommitFailed is what writes return after a failed commit replaced the
// handler's response.
var errCommitFailed = errors.New("filesession: response replaced after session commit failed")

// commit commits the session once and reports whether the handler's
// response may go on.
func (w *commitWriter) commit() bool {
	if w.done {
		return !w.failed
	}
	w.done = true
	s := w.s
	err := s.commit(w.ctx(), w.ResponseWriter)
	if err == nil {
		return true
	}
	w.failed = true
	m := s.m
	m.Logger.Warn("filesession: committing session failed", "session", m.LogID(s.ID()), "err", err)
	h := w.ResponseWriter.Header()
	for k := range h {
		delete(h, k)
	}
	if errors.Is(err, ErrGone) {
		m.setCookie(w.ResponseWriter, s.req, "", m.now())
	}
	m.ErrorFunc(w.ResponseWriter, s.req, err)
	return false
}

// ctx is the context of store calls at commit. The commit outlives a client
// that hung up: the handler has acted, so its session changes are kept. The
// store's own timeouts bound it.
func (w *commitWriter) ctx() context.Context {
	return context.WithoutCancel(w.s.req.Context())
}

// WriteHeader commits the session, then writes the header (informational 1xx
// headers pass through without a commit).
func (w *commitWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.commit() {
		w.ResponseWriter.WriteHeader(code)
	}
}

// Write commits the session, then writes b.
func (w *commitWriter) Write(b []byte) (int, error) {
	if !w.commit() {
		return 0, errCommitFailed
	}
	return w.ResponseWriter.Write(b)
}

// Flush commits the session, then flushes the response.
func (w *commitWriter) Flush() {
	if w.commit() {
		http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Hijack commits the session, then hands the connection over; the session
// cookie cannot be sent on a hijacked connection, so commit first.
func (w *commitWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !w.commit() {
		return nil, nil, errCommitFailed
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap returns the underlying ResponseWriter, for http.ResponseController.
func (w *commitWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
