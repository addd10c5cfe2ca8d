package redisstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/filesession/filesession"
)

// Hash fields of a stored session besides its values. Session keys named
// "cookie" or starting with "__" are reserved by filesession.Record, so they
// can never collide with these.
const (
	fieldCookie      = "cookie"       // express-style cookie attributes, JSON
	fieldCreated     = "__created"    // Unix ms
	fieldLastAccess  = "__lastAccess" // Unix ms, as session-file-store writes it
	fieldIdle        = "__idle"       // idle timeout in ms (express's cookie.originalMaxAge)
	fieldDeadline    = "__deadline"   // Unix ms; absent when there is none
	fieldVersion     = "__v"          // bumped by every write but Touch, for Update's compare-and-swap
	fieldWriteToken  = "__w"          // token of the last Create/Update/Renew, to make their retries idempotent
	fieldRenewTo     = "__renewTo"    // cluster-mode Renew in progress: its token
	fieldRenewUntil  = "__renewUntil" // cluster-mode Renew in progress: lease end, Unix ms
	fieldUser        = "__user"       // Record.User; absent when there is none (see userindex.go)
	reservedPrefix   = "__"
	maxUnixMilliDate = 1 << 50 // far beyond any real date, far below 2^53
)

// reserved reports whether a session key is reserved for the stored format.
func reserved(k string) bool { return k == fieldCookie || strings.HasPrefix(k, reservedPrefix) }

// cookieJSON is the stored form of filesession.CookieAttrs: express-session's
// cookie object without originalMaxAge and expires, whose information lives
// in __idle and __lastAccess/__deadline instead, so that a Save merged by a
// script never leaves a stale copy of it. Field order follows express.
type cookieJSON struct {
	Secure   bool   `json:"secure"`
	HTTPOnly bool   `json:"httpOnly"`
	Domain   string `json:"domain,omitempty"`
	Path     string `json:"path"`
	SameSite string `json:"sameSite,omitempty"`
}

func encodeCookie(c filesession.CookieAttrs) string {
	b, err := json.Marshal(cookieJSON{c.Secure, c.HTTPOnly, c.Domain, c.Path, c.SameSite})
	if err != nil {
		panic(err) // strings and bools always encode
	}
	return string(b)
}

// lastCookie remembers the last cookie object decoded. An application
// gives all its sessions the same cookie attributes, so almost every Load
// finds the same text here and skips json.Unmarshal, whose reflection is a
// noticeable part of a Load's CPU time.
var lastCookie atomic.Pointer[cachedCookie]

type cachedCookie struct {
	raw   string
	attrs filesession.CookieAttrs
}

func decodeCookie(raw string) (filesession.CookieAttrs, error) {
	if c := lastCookie.Load(); c != nil && c.raw == raw {
		return c.attrs, nil
	}
	var c cookieJSON
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return filesession.CookieAttrs{}, err
	}
	attrs := filesession.CookieAttrs{Secure: c.Secure, HTTPOnly: c.HTTPOnly, Path: c.Path, Domain: c.Domain, SameSite: c.SameSite}
	lastCookie.Store(&cachedCookie{raw, attrs})
	return attrs, nil
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func durMS(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// recordFields returns r as hash field/value pairs, metadata included, with
// zero times and the default idle timeout already resolved by the caller.
func recordFields(r *filesession.Record) ([]any, error) {
	if !filesession.ValidUser(r.User) {
		return nil, fmt.Errorf("redisstore: %w", filesession.ErrInvalidUser)
	}
	args := make([]any, 0, 2*len(r.Values)+12)
	args = append(args,
		fieldCreated, ms(r.Created),
		fieldLastAccess, ms(r.LastAccess),
		fieldIdle, durMS(r.IdleTimeout),
		fieldCookie, encodeCookie(r.Cookie),
	)
	if !r.Deadline.IsZero() {
		args = append(args, fieldDeadline, ms(r.Deadline))
	}
	if r.User != "" {
		args = append(args, fieldUser, r.User)
	}
	for k, v := range r.Values {
		if reserved(k) {
			return nil, reservedErr(k)
		}
		if !json.Valid(v) {
			return nil, fmt.Errorf("redisstore: value of key %q is not valid JSON", k)
		}
		args = append(args, k, string(v))
	}
	return args, nil
}

func reservedErr(k string) error {
	return fmt.Errorf("redisstore: session key %q is reserved for the stored format (\"cookie\" and \"__*\")", k)
}

// meta is what a stored record holds besides the filesession.Record.
type meta struct {
	version     int64
	renewTo     string
	renewUntil  int64
	hasRenewTag bool
}

// errDecode explains why a stored record is corrupt; it is wrapped with
// filesession.ErrCorrupt by the caller.
var errDecode = errors.New("undecodable record")

// decodeRecord turns a stored hash into a Record. defaultIdle fills a record
// stored without an idle timeout. It fails for a record a person or another
// program edited into something this store would not write: missing or
// non-numeric timestamps, a value that is not JSON, a cookie that is not the
// cookie object.
func decodeRecord(fields map[string]string, defaultIdle time.Duration) (filesession.Record, meta, error) {
	var (
		r        = filesession.Record{Values: make(map[string]json.RawMessage, len(fields))}
		m        meta
		haveLA   bool
		haveCrtd bool
	)
	for k, v := range fields {
		switch k {
		case fieldCreated, fieldLastAccess, fieldDeadline, fieldIdle, fieldVersion, fieldRenewUntil:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || n > maxUnixMilliDate {
				return r, m, fmt.Errorf("%w: field %s = %q is not a millisecond count", errDecode, k, v)
			}
			switch k {
			case fieldCreated:
				r.Created, haveCrtd = time.UnixMilli(n), true
			case fieldLastAccess:
				r.LastAccess, haveLA = time.UnixMilli(n), true
			case fieldDeadline:
				if n > 0 {
					r.Deadline = time.UnixMilli(n)
				}
			case fieldIdle:
				r.IdleTimeout = time.Duration(n) * time.Millisecond
			case fieldVersion:
				m.version = n
			case fieldRenewUntil:
				m.renewUntil, m.hasRenewTag = n, true
			}
		case fieldRenewTo:
			m.renewTo = v
		case fieldUser:
			r.User = v
		case fieldCookie:
			c, err := decodeCookie(v)
			if err != nil {
				return r, m, fmt.Errorf("%w: cookie: %v", errDecode, err)
			}
			r.Cookie = c
		default:
			if strings.HasPrefix(k, reservedPrefix) {
				continue // metadata of a later version, or the write token
			}
			if !json.Valid([]byte(v)) {
				return r, m, fmt.Errorf("%w: value of a key is not JSON", errDecode)
			}
			r.Values[k] = json.RawMessage(v)
		}
	}
	if !haveLA || !haveCrtd {
		return r, m, fmt.Errorf("%w: %s or %s missing", errDecode, fieldCreated, fieldLastAccess)
	}
	if r.IdleTimeout <= 0 {
		r.IdleTimeout = defaultIdle
	}
	return r, m, nil
}

// changeArgs appends c, in the order the scripts' apply function reads it.
func changeArgs(args []any, c filesession.Change) ([]any, error) {
	var deadline, cookie string = "0", ""
	if !c.Deadline.IsZero() {
		deadline = ms(c.Deadline)
	}
	if c.Cookie != nil {
		cookie = encodeCookie(*c.Cookie)
	}
	at := "0"
	if !c.At.IsZero() {
		at = ms(c.At)
	}
	// The user travels as one more deleted field ("") or set pair.
	if c.User != nil && !filesession.ValidUser(*c.User) {
		return nil, fmt.Errorf("redisstore: %w", filesession.ErrInvalidUser)
	}
	clearUser := c.User != nil && *c.User == ""
	ndel := len(c.Delete)
	if clearUser {
		ndel++
	}
	args = append(args, at, durMS(c.IdleTimeout), deadline, cookie, strconv.Itoa(ndel))
	for _, k := range c.Delete {
		if reserved(k) {
			return nil, reservedErr(k)
		}
		args = append(args, k)
	}
	if clearUser {
		args = append(args, fieldUser)
	}
	if c.User != nil && *c.User != "" {
		args = append(args, fieldUser, *c.User)
	}
	for k, v := range c.Set {
		if reserved(k) {
			return nil, reservedErr(k)
		}
		if !json.Valid(v) {
			return nil, fmt.Errorf("redisstore: value of key %q is not valid JSON", k)
		}
		args = append(args, k, string(v))
	}
	return args, nil
}
