package main

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/csrf"
)

// The "your sessions" page: every session of the logged-in user (created,
// last seen, expiry, browser), with a revoke button on each of the others
// and "sign out everywhere else". Sessions are named by the manager's
// handles, never by their IDs, and the manager only ever revokes sessions
// of the user it is given, so a handle from another user's page is
// useless. Both forms are POSTs and pass csrf.Protect like every other.

// sessionsTemplate is templates/sessions.html.
var sessionsTemplate = template.Must(template.ParseFS(assets, "templates/sessions.html"))

// maxUserAgent is how much of a login's User-Agent the demo keeps.
const maxUserAgent = 256

// sessionRow is one session on the page.
type sessionRow struct {
	Handle                  string
	Created, LastSeen       string
	CreatedISO, LastSeenISO string
	Expires, ExpiresISO     string
	UserAgent               string
	Current                 bool
}

// sessionsData is what templates/sessions.html shows.
type sessionsData struct {
	User      *user
	Sessions  []sessionRow
	Others    int
	Error     string
	CSRFField template.HTML
}

// userAgent returns the request's User-Agent as the demo stores it: cut to
// maxUserAgent bytes on a character boundary, invalid UTF-8 replaced.
func userAgent(r *http.Request) string {
	ua := strings.ToValidUTF8(r.UserAgent(), "\uFFFD")
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
		for !utf8.ValidString(ua) {
			ua = ua[:len(ua)-1]
		}
	}
	return ua
}

// loggedIn returns the request's session and user, or answers a redirect
// to the login page and returns ok false.
func loggedIn(w http.ResponseWriter, r *http.Request) (*filesession.Session, user, bool) {
	s := filesession.FromContext(r.Context())
	u, ok := filesession.Get[user](s, userKey)
	if !ok || s.User() == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil, user{}, false
	}
	return s, u, true
}

// sessionsPage serves GET /sessions.
func (a *app) sessionsPage(w http.ResponseWriter, r *http.Request) {
	if _, u, ok := loggedIn(w, r); ok {
		a.renderSessions(w, r, http.StatusOK, u, "")
	}
}

// renderSessions shows u's sessions, with msg as an error if not empty.
func (a *app) renderSessions(w http.ResponseWriter, r *http.Request, status int, u user, msg string) {
	infos, err := a.sessions.Sessions(r.Context(), u.UserID)
	if err != nil {
		a.log.Warn("demo: listing sessions failed", "err", err)
		a.sessions.ErrorFunc(w, r, err)
		return
	}
	data := sessionsData{User: &u, Error: msg, CSRFField: csrf.TemplateField(r)}
	for _, in := range infos {
		if !in.Current {
			data.Others++
		}
		data.Sessions = append(data.Sessions, sessionRow{
			Handle:      in.Handle,
			Created:     humanTime(in.Created),
			CreatedISO:  in.Created.UTC().Format(time.RFC3339),
			LastSeen:    humanTime(in.LastAccess),
			LastSeenISO: in.LastAccess.UTC().Format(time.RFC3339),
			Expires:     humanTime(in.ExpiresAt),
			ExpiresISO:  in.ExpiresAt.UTC().Format(time.RFC3339),
			UserAgent:   in.UserAgent,
			Current:     in.Current,
		})
	}
	var buf bytes.Buffer
	if err := sessionsTemplate.Execute(&buf, data); err != nil {
		a.log.Error("demo: rendering sessions page failed", "err", err)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func humanTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 MST") }

// revokeSession serves POST /sessions/revoke: it ends the session of the
// logged-in user whose handle is the form's "handle" field, and answers
// 404 with the page if the user has none (a stale page, or a handle that
// is not the user's).
func (a *app) revokeSession(w http.ResponseWriter, r *http.Request) {
	_, u, ok := loggedIn(w, r)
	if !ok {
		return
	}
	err := a.sessions.RevokeSession(r.Context(), u.UserID, r.PostFormValue("handle"))
	switch {
	case errors.Is(err, filesession.ErrNotFound):
		a.renderSessions(w, r, http.StatusNotFound, u, "That session has already ended, or is not one of yours.")
		return
	case err != nil:
		a.log.Warn("demo: revoking a session failed", "err", err)
		a.sessions.ErrorFunc(w, r, err)
		return
	}
	a.log.Info("demo: session revoked", "userId", u.UserID)
	// If it was this session, the manager ends it at commit too (cookie
	// cleared), and /sessions sends the browser on to the login page.
	http.Redirect(w, r, "/sessions", http.StatusSeeOther)
}

// revokeOthers serves POST /sessions/revoke-others: "sign out everywhere
// else" ends every session of the user but this one.
func (a *app) revokeOthers(w http.ResponseWriter, r *http.Request) {
	s, u, ok := loggedIn(w, r)
	if !ok {
		return
	}
	n, err := a.sessions.RevokeUser(r.Context(), u.UserID, s)
	if err != nil {
		a.log.Warn("demo: signing out other sessions failed", "err", err, "revoked", n)
		a.sessions.ErrorFunc(w, r, err)
		return
	}
	a.log.Info("demo: signed out everywhere else", "userId", u.UserID, "revoked", n)
	http.Redirect(w, r, "/sessions", http.StatusSeeOther)
}
