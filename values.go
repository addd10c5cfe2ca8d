package filesession

import (
	"context"
	"encoding/json"
	"fmt"
)

// Get returns the value under key decoded as a T. ok is false if there is no
// such value or it does not decode as a T (use Session.Decode to see why).
//
//	user, ok := filesession.Get[User](s, "user")
func Get[T any](s *Session, key string) (v T, ok bool) {
	if err := s.Decode(key, &v); err != nil {
		var zero T
		return zero, false
	}
	return v, true
}

// Pop returns the value under key decoded as a T and deletes it from the
// session, for one-time values such as flash messages. ok is false, and
// nothing is deleted, if there is no such value or it does not decode as a T.
func Pop[T any](s *Session, key string) (v T, ok bool) {
	v, ok = Get[T](s, key)
	if ok {
		s.Delete(key)
	}
	return v, ok
}

// Update atomically replaces the value under key with fn's result, reading
// the latest stored value (not the one this request loaded) under the
// store's per-session lock, so concurrent requests, in this process or in
// another sharing the store, never lose each other's updates. It writes to
// the store at once, not at commit; a new session is created first. fn gets
// the current value and whether there was one; if it returns an error,
// nothing is stored and Update returns it. Update returns an error matching
// ErrTooLarge, and stores nothing, if the session's values would exceed
// Manager.MaxSize (or the store's own limit); one matching ErrGone if the
// session was ended by another request meanwhile; and the store's error
// (pass it to Manager.ErrorFunc, which answers 503) if the store fails.
//
//	n, err := filesession.Update(r.Context(), s, "count", func(n int, _ bool) (int, error) { return n + 1, nil })
func Update[T any](ctx context.Context, s *Session, key string, fn func(old T, ok bool) (T, error)) (T, error) {
	if err := checkKey(key); err != nil {
		var zero T
		return zero, err
	}
	var result T
	err := s.update(ctx, func(r *Record) error {
		var old T
		raw, ok := r.Values[key]
		if ok {
			if err := json.Unmarshal(raw, &old); err != nil {
				return fmt.Errorf("filesession: decoding %q: %w", key, err)
			}
		}
		v, err := fn(old, ok)
		if err != nil {
			return err
		}
		enc, err := encodeJSON(v)
		if err != nil {
			return fmt.Errorf("filesession: encoding %q: %w", key, err)
		}
		if r.Values == nil {
			r.Values = make(map[string]json.RawMessage)
		}
		r.Values[key] = enc
		result = v
		return nil
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return result, nil
}
