package main

import (
	"encoding/json"
	"strings"

	"github.com/filesession/filesession"
)

// userFields are the members of a user object that name the user, in the
// order a table prefers them: the demo stores {"userId","email"}.
// userObject decodes them.
var userFields = []string{"email", "userId", "id", "username", "name", "login"}

// sessionUser is who a session belongs to, from the value under the
// --user-key key: a JSON string, or an object with one of userFields.
type sessionUser struct {
	// raw is the value as stored (nil if the session has none).
	raw json.RawMessage
	// label is what a table shows: the email, else the first ID-like
	// field, else the string value.
	label string
	// names are every string that --user matches: the string value, or
	// each of userFields the object has.
	names []string
}

// userObject is the members of a user object that name the user, in the
// order a table prefers them (userFields).
type userObject struct {
	Email    *string `json:"email"`
	UserID   *string `json:"userId"`
	ID       *string `json:"id"`
	Username *string `json:"username"`
	Name     *string `json:"name"`
	Login    *string `json:"login"`
}

// userOf returns the user of r: the value under key, and the record's
// own user (Record.User, which Session.SetUser sets and the per-user index
// keys on), which --user matches too and a table shows when the value has
// no name of its own.
func userOf(r *filesession.Record, key string) sessionUser {
	u := userOfValue(r, key)
	if r.User != "" {
		if u.label == "" {
			u.label = r.User
		}
		u.names = append(u.names, r.User)
	}
	return u
}

// userOfValue returns the user of r under key.
func userOfValue(r *filesession.Record, key string) sessionUser {
	raw, ok := r.Values[key]
	if !ok {
		return sessionUser{}
	}
	u := sessionUser{raw: raw, label: string(raw)}
	switch first(raw) {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			u.label, u.names = s, []string{s}
		}
	case '{':
		// One decode into the known fields; a user object whose fields
		// are not strings is shown as it is and matches nothing.
		var o userObject
		if json.Unmarshal(raw, &o) != nil {
			return u
		}
		for _, v := range []*string{o.Email, o.UserID, o.ID, o.Username, o.Name, o.Login} {
			if v != nil && *v != "" {
				u.names = append(u.names, *v)
			}
		}
		if len(u.names) > 0 {
			u.label = u.names[0]
		}
	}
	return u
}

// first returns the first byte of a JSON text that is not white space.
func first(raw []byte) byte {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}

// is reports whether the user is who: any of its names, compared without
// regard to case (emails are case-insensitive; IDs are not expected to
// differ by case alone).
func (u sessionUser) is(who string) bool {
	for _, n := range u.names {
		if strings.EqualFold(n, who) {
			return true
		}
	}
	return false
}
