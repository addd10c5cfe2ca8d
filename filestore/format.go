package filestore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/filesession/filesession"
)

// The stored format is session-file-store's, so that a Node.js process can
// share the directory:
//
//	{"cookie":{"originalMaxAge":86400000,"expires":"2026-12-04T11:00:00.000Z","secure":false,"httpOnly":true,"path":"/","sameSite":"lax"},"csrfToken":"...","user":{...},"__created":1796292220850,"__lastAccess":1796292220850}
//
// The cookie object comes first, with its keys in express-session's order;
// then the session's values at the top level; then the store's own
// timestamps in Unix milliseconds. "cookie" and every "__" key are
// reserved. The cookie object is informational except for originalMaxAge,
// the idle timeout (null, 0 or missing means the store's TTL).

// Reserved top-level keys.
const (
	keyCookie     = "cookie"
	keyCreated    = "__created"
	keyLastAccess = "__lastAccess"
	keyDeadline   = "__deadline"
	// keyUser is Record.User, a JSON string; absent when there is none.
	// The per-user index (userindex.go) is keyed on it.
	keyUser = "__user"
)

// reservedKey reports whether k is part of the format rather than a
// session value.
func reservedKey(k string) bool { return k == keyCookie || strings.HasPrefix(k, "__") }

// cookieRank is the position of each key express-session's Cookie.toJSON
// writes, in its order; keys not listed keep their place after these.
var cookieRank = map[string]int{
	"originalMaxAge": 0, "partitioned": 1, "priority": 2, "expires": 3,
	"secure": 4, "httpOnly": 5, "domain": 6, "path": 7, "sameSite": 8,
}

// member is one key of a JSON object with its value's exact bytes.
type member struct {
	key string
	raw []byte
}

// stored is a session file as read: the decoded record plus what a rewrite
// needs to keep every byte it does not change.
type stored struct {
	rec filesession.Record
	// members are the file's top-level members in order (duplicates merged
	// as JSON.parse does: first position, last value). Kept only for
	// rewrites.
	members []member
	// maxAgeNull says cookie.originalMaxAge was null, 0 or missing, so
	// rec.IdleTimeout is the store's TTL rather than the record's own.
	maxAgeNull bool
	// hasCreated says the file had a __created member.
	hasCreated bool
	// id is the session's ID as read set it: the file's name key, or
	// under HashNames its __id member (see hashnames.go).
	id string
}

// decodeRecord parses a session file. mtime is the file's modification time,
// which Touch moves instead of rewriting the file: LastAccess is the later
// of it and __lastAccess. ttl fills a missing idle timeout. Any syntax
// error, or a top level that is not an object, is errSyntax.
func decodeRecord(b []byte, mtime time.Time, ttl time.Duration, keep bool, d *stored) error {
	*d = stored{maxAgeNull: true}
	r := &d.rec
	var lastAccess time.Time
	err := scanObject(b, func(kb []byte, escaped bool, val []byte) error {
		key, err := decodeKey(kb, escaped)
		if err != nil {
			return err
		}
		key = validUTF8(key)
		dup := false
		switch key {
		case keyCookie:
			r.Cookie = filesession.CookieAttrs{}
			var idle time.Duration
			idle, d.maxAgeNull = decodeCookie(val, &r.Cookie)
			r.IdleTimeout = idle
		case keyCreated:
			if ms, ok := millisValue(val); ok {
				r.Created = time.UnixMilli(ms)
				d.hasCreated = true
			}
		case keyLastAccess:
			if ms, ok := millisValue(val); ok {
				lastAccess = time.UnixMilli(ms)
			}
		case keyDeadline:
			r.Deadline = time.Time{}
			if ms, ok := millisValue(val); ok {
				r.Deadline = time.UnixMilli(ms)
			}
		case keyUser:
			// Not a string (a hand edit): no user, as the index sees it.
			r.User, _ = stringValue(val)
		default:
			if reservedKey(key) {
				break
			}
			if r.Values == nil {
				r.Values = make(map[string]json.RawMessage, 8)
			}
			_, dup = r.Values[key]
			r.Values[key] = val
		}
		if keep {
			if reservedKey(key) {
				dup = slices.ContainsFunc(d.members, func(m member) bool { return m.key == key })
			}
			if dup {
				for i := range d.members {
					if d.members[i].key == key {
						d.members[i].raw = val
					}
				}
			} else {
				d.members = append(d.members, member{key, val})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if r.Values == nil {
		// Never a nil map: callers put keys into loaded records.
		r.Values = make(map[string]json.RawMessage)
	}
	if d.maxAgeNull {
		r.IdleTimeout = ttl
	}
	r.LastAccess = lastAccess
	if mtime.After(r.LastAccess) {
		r.LastAccess = mtime
	}
	if !d.hasCreated {
		r.Created = mtime
	}
	return nil
}

// validUTF8 returns k with every byte that is not part of valid UTF-8
// replaced by U+FFFD, as appendString writes it and as Node's decoder reads
// it: a key must name the same value after a rewrite as before. (Escaped
// keys come out of encoding/json that way already.)
func validUTF8(k string) string {
	if utf8.ValidString(k) {
		return k
	}
	var b strings.Builder
	for i := 0; i < len(k); {
		r, size := utf8.DecodeRuneInString(k[i:])
		b.WriteRune(r) // RuneError (U+FFFD) for an invalid byte, size 1
		i += size
	}
	return b.String()
}

// decodeCookie reads the attributes of a stored cookie object and its
// originalMaxAge; null says originalMaxAge was null, 0, negative or
// missing. A cookie that is not an object has no attributes.
func decodeCookie(raw []byte, c *filesession.CookieAttrs) (idle time.Duration, null bool) {
	null = true
	_ = scanObject(raw, func(kb []byte, escaped bool, val []byte) error {
		if escaped {
			return nil // no key of ours needs escaping
		}
		switch string(kb) {
		case "originalMaxAge":
			if ms, ok := millisValue(val); ok && ms > 0 {
				idle, null = time.Duration(ms)*time.Millisecond, false
			} else {
				idle, null = 0, true
			}
		case "secure":
			c.Secure = string(val) == "true"
		case "httpOnly":
			c.HTTPOnly = string(val) == "true"
		case "path":
			c.Path, _ = stringValue(val)
		case "domain":
			c.Domain, _ = stringValue(val)
		case "sameSite":
			// express-session accepts sameSite: true for "strict".
			if string(val) == "true" {
				c.SameSite = "strict"
			} else {
				c.SameSite, _ = stringValue(val)
			}
		}
		return nil
	})
	return idle, null
}

// encodeRecord appends the file for record n to dst. old is the file n was
// derived from (nil for a new session): every member of old that n does not
// change is copied byte for byte, changed values are replaced in place,
// removed ones dropped, new ones appended in key order, and __lastAccess
// rewritten. The cookie object is re-encoded only if forceCookie is set or
// n's cookie attributes, idle timeout or deadline differ from old's, and
// then only its known fields are updated. The values of n are validated and
// compacted; a reserved key among them is an error.
func (s *Store) encodeRecord(dst []byte, old *stored, n *filesession.Record, forceCookie bool) ([]byte, error) {
	fresh := old == nil
	if fresh {
		old = &stored{}
	}
	o := &old.rec
	if !filesession.ValidUser(n.User) {
		// appendString would write U+FFFD for the bad bytes, and the
		// session would come back under another user than it is indexed.
		return dst, fmt.Errorf("filestore: %w", filesession.ErrInvalidUser)
	}
	cookieDirty := fresh || forceCookie || n.Cookie != o.Cookie || n.IdleTimeout != o.IdleTimeout || !n.Deadline.Equal(o.Deadline)

	dst = append(dst, '{')
	first := true
	key := func(k string) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendString(dst, k)
		dst = append(dst, ':')
	}

	hasCookie := false
	for _, m := range old.members {
		if m.key == keyCookie {
			hasCookie = true
		}
	}
	if !hasCookie {
		key(keyCookie)
		dst = s.appendCookie(dst, nil, old, n, fresh)
	}

	var err error
	// hasCreated says the file's __created member was written, which it
	// is even if its value was not a number (then as n.Created).
	var hasLast, hasDeadline, hasUser, hasCreated bool
	// inOld are the value keys of the file; n.Values may be old.rec.Values
	// itself, changed in place by Change.Apply, so old.rec.Values cannot
	// tell which keys are new.
	inOld := make(map[string]struct{}, len(old.members))
	for _, m := range old.members {
		if !reservedKey(m.key) {
			inOld[m.key] = struct{}{}
		}
	}
	for _, m := range old.members {
		switch {
		case m.key == keyCookie:
			key(keyCookie)
			if cookieDirty {
				dst = s.appendCookie(dst, m.raw, old, n, fresh)
			} else {
				dst = append(dst, m.raw...)
			}
		case m.key == keyCreated:
			hasCreated = true
			key(keyCreated)
			if old.hasCreated && n.Created.Equal(o.Created) {
				dst = append(dst, m.raw...)
			} else {
				dst = appendMillis(dst, n.Created)
			}
		case m.key == keyLastAccess:
			hasLast = true
			key(keyLastAccess)
			dst = appendMillis(dst, n.LastAccess)
		case m.key == keyDeadline:
			if n.Deadline.IsZero() {
				continue
			}
			hasDeadline = true
			key(keyDeadline)
			if n.Deadline.Equal(o.Deadline) {
				dst = append(dst, m.raw...)
			} else {
				dst = appendMillis(dst, n.Deadline)
			}
		case m.key == keyUser:
			if n.User == "" {
				continue
			}
			hasUser = true
			key(keyUser)
			if n.User == o.User {
				dst = append(dst, m.raw...)
			} else {
				dst = appendString(dst, n.User)
			}
		case reservedKey(m.key):
			key(m.key)
			dst = append(dst, m.raw...)
		default:
			v, ok := n.Values[m.key]
			if !ok {
				continue
			}
			key(m.key)
			if bytes.Equal(v, m.raw) {
				dst = append(dst, m.raw...)
				continue
			}
			mark := len(dst)
			if dst, err = compactValue(dst, v); err != nil {
				return dst, fmt.Errorf("filestore: value of %q is not valid JSON", m.key)
			}
			if bytes.Equal(dst[mark:], m.raw) {
				// Equivalent once compacted: keep the file's bytes (they
				// are the same bytes).
				continue
			}
		}
	}

	// New keys, in a stable order so that equal records give equal files.
	var added []string
	for k := range n.Values {
		if _, ok := inOld[k]; ok {
			continue
		}
		added = append(added, k)
	}
	slices.Sort(added)
	for _, k := range added {
		if reservedKey(k) {
			return dst, fmt.Errorf("filestore: session key %q is reserved for the stored format", k)
		}
		key(k)
		if dst, err = compactValue(dst, n.Values[k]); err != nil {
			return dst, fmt.Errorf("filestore: value of %q is not valid JSON", k)
		}
	}

	if !hasCreated && (fresh || !s.opts.NodeCompatible) {
		key(keyCreated)
		dst = appendMillis(dst, n.Created)
	}
	if !hasLast {
		key(keyLastAccess)
		dst = appendMillis(dst, n.LastAccess)
	}
	if !hasDeadline && !n.Deadline.IsZero() {
		key(keyDeadline)
		dst = appendMillis(dst, n.Deadline)
	}
	if !hasUser && n.User != "" {
		key(keyUser)
		dst = appendString(dst, n.User)
	}
	return append(dst, '}'), nil
}

// cookieField is one field the store manages in the cookie object.
type cookieField struct {
	key     string
	changed bool   // differs from the stored file, so it must be written
	raw     []byte // its new JSON, or nil to omit it
}

// appendCookie appends the cookie object of n. oldRaw is the stored cookie
// object (nil if none): its fields are updated in place, in order, and
// fields it has that the store does not manage (partitioned, priority, any
// other) are kept. A field the store manages is rewritten only if its value
// changed, so a hand-written "sameSite":true stays as it is; expires is
// always recomputed, as re-encoding the cookie is what it is for.
func (s *Store) appendCookie(dst, oldRaw []byte, old *stored, n *filesession.Record, fresh bool) []byte {
	o := &old.rec
	newNull := n.IdleTimeout <= 0 || (!fresh && old.maxAgeNull && n.IdleTimeout == o.IdleTimeout)
	var maxAge []byte
	if newNull {
		maxAge = []byte("null")
	} else {
		maxAge = strconv.AppendInt(nil, n.IdleTimeout.Milliseconds(), 10)
	}
	str := func(v string) []byte {
		if v == "" {
			return nil
		}
		return appendString(nil, v)
	}
	c, oc := n.Cookie, o.Cookie
	fields := [...]cookieField{
		{"originalMaxAge", fresh || newNull != old.maxAgeNull || n.IdleTimeout != o.IdleTimeout, maxAge},
		{"expires", true, appendISO(nil, s.expiresAt(n))},
		{"secure", fresh || c.Secure != oc.Secure, appendBool(nil, c.Secure)},
		{"httpOnly", fresh || c.HTTPOnly != oc.HTTPOnly, appendBool(nil, c.HTTPOnly)},
		{"domain", fresh || c.Domain != oc.Domain, str(c.Domain)},
		{"path", fresh || c.Path != oc.Path, str(c.Path)},
		{"sameSite", fresh || c.SameSite != oc.SameSite, str(c.SameSite)},
	}
	index := func(k string) int {
		return slices.IndexFunc(fields[:], func(f cookieField) bool { return f.key == k })
	}

	var members []member
	var present, written [len(fields)]bool
	if oldRaw != nil {
		_ = scanObject(oldRaw, func(kb []byte, escaped bool, val []byte) error {
			k := string(kb)
			if escaped {
				k, _ = unquote(kb)
			}
			members = append(members, member{k, val})
			if i := index(k); i >= 0 {
				present[i] = true
			}
			return nil
		})
	}

	dst = append(dst, '{')
	first := true
	write := func(k string, raw []byte) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = append(dst, raw...)
	}
	// flush writes the changed fields the stored object lacks that come
	// before rank in express-session's order.
	next := 0
	flush := func(rank int) {
		for ; next < len(fields) && cookieRank[fields[next].key] < rank; next++ {
			f := &fields[next]
			if f.changed && f.raw != nil && !present[next] {
				write(f.key, f.raw)
			}
		}
	}
	for _, m := range members {
		rank, known := cookieRank[m.key]
		if known {
			flush(rank)
		}
		i := index(m.key)
		if i < 0 {
			write(m.key, m.raw)
			continue
		}
		if written[i] {
			continue // a duplicate key: JSON.parse keeps one
		}
		written[i] = true
		switch f := &fields[i]; {
		case !f.changed:
			write(m.key, m.raw)
		case f.raw != nil:
			write(m.key, f.raw)
		}
	}
	flush(len(cookieRank))
	return append(dst, '}')
}

// effective returns r's idle timeout, the store's TTL if it has none.
func (s *Store) effective(r *filesession.Record) time.Duration {
	if r.IdleTimeout > 0 {
		return r.IdleTimeout
	}
	return s.opts.TTL
}

// expiresAt is r.ExpiresAt with the store's TTL standing in for a missing
// idle timeout.
func (s *Store) expiresAt(r *filesession.Record) time.Time {
	rr := filesession.Record{LastAccess: r.LastAccess, IdleTimeout: s.effective(r), Deadline: r.Deadline}
	return rr.ExpiresAt()
}
