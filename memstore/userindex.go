package memstore

import (
	"context"
	"fmt"

	"github.com/filesession/filesession"
)

// userIndex maps each user to the IDs of the sessions stored with that
// user. It is kept exact, under the store's mutex, by every method that
// adds, changes or removes a record (put and drop), so UserSessions needs
// no scan and no verification: the in-memory store has no crash to
// recover from.
type userIndex map[string]map[string]struct{}

// move records that session id now belongs to user to instead of from
// ("" for none). The caller holds the store's mutex.
func (x *userIndex) move(id, from, to string) {
	if from == to {
		return
	}
	if ids := (*x)[from]; from != "" && ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(*x, from)
		}
	}
	if to == "" {
		return
	}
	if *x == nil {
		*x = make(userIndex)
	}
	ids := (*x)[to]
	if ids == nil {
		ids = make(map[string]struct{})
		(*x)[to] = ids
	}
	ids[id] = struct{}{}
}

// drop removes session id and its index entry. The caller holds the
// store's mutex.
func (s *Store) drop(id string) {
	if r, ok := s.sessions[id]; ok {
		s.users.move(id, r.User, "")
		delete(s.sessions, id)
	}
}

// UserSessions returns copies of the live sessions whose user is user, in
// no particular order, from the store's index: its cost is that of the
// user's sessions, not of the whole store. Expired sessions it meets are
// removed, as Load would. The empty user has no sessions.
func (s *Store) UserSessions(ctx context.Context, user string) ([]filesession.UserSession, error) {
	if err := enter(ctx); err != nil {
		return nil, err
	}
	if user == "" {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.users[user]
	out := make([]filesession.UserSession, 0, len(ids))
	for id := range ids {
		// live removes an expired session, and with it the entry, which
		// deleting from the map being ranged over allows.
		if r, ok := s.live(id); ok {
			out = append(out, filesession.UserSession{ID: id, Record: r.Clone()})
		}
	}
	return out, nil
}

// checkUser refuses a user the store could not index faithfully.
func checkUser(user string) error {
	if !filesession.ValidUser(user) {
		return fmt.Errorf("memstore: %w", filesession.ErrInvalidUser)
	}
	return nil
}

// checkChangeUser is checkUser for the user a Change sets, if any.
func checkChangeUser(c filesession.Change) error {
	if c.User == nil {
		return nil
	}
	return checkUser(*c.User)
}
