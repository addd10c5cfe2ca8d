package main

import (
	"encoding/json"
	"strings"

	"github.com/filesession/filesession"
)

// userFields are the members of a user object that name the user, in the
// order a table prefers them: the demo stores {"userId","email"}.
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

// userOf returns the user of r under key.
func userOf(r *filesession.Record, key string) sessionUser {
	raw, ok := r.Values[key]
	if !ok {
		return sessionUser{}
	}
	u := sessionUser{raw: raw}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		u.label, u.names = s, []string{s}
		return u
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		u.label = string(raw)
		return u
	}
	for _, f := range userFields {
		var v string
		if json.Unmarshal(obj[f], &v) == nil && v != "" {
			if u.label == "" {
				u.label = v
			}
			u.names = append(u.names, v)
		}
	}
	if u.label == "" {
		u.label = string(raw)
	}
	return u
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
