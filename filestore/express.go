package filestore

import (
	"context"
	"time"

	"github.com/filesession/filesession"
	"golang.org/x/sys/unix"
)

// ExpressIDLength is the length of express-session's default session IDs
// (uid-safe: 24 random bytes as unpadded base64url), which ExpressOptions
// makes the store accept.
const ExpressIDLength = 32

// ExpressOptions returns the options under which the store shares the
// directory path (empty means DefaultPath, "./sessions") with a running
// Express app that uses express-session 1.19 and session-file-store 1.5 with
// their default file options, so both read and write the same sessions
// while routes move from Node to Go. Pair it with package express, which
// speaks express-session's connect.sid cookie.
//
// What it sets, and why:
//
//   - NoPrefix, Extension ".json": files are <path>/<sid>.json, as
//     session-file-store names them.
//   - IDLength 32 (ExpressIDLength): express-session's IDs. Every ID is
//     still checked before it reaches a file name, which Node does not do.
//   - NodeCompatible: Touch rewrites __lastAccess in the file (Node decides
//     expiry from it alone, so setting file times would not keep a session
//     alive for Node), LastAccess is __lastAccess exactly, and a file Node
//     wrote that this store rewrites unchanged differs only in
//     __lastAccess. See Options.NodeCompatible.
//   - TTL 1h: session-file-store's ttl default (3600 s), the idle timeout
//     of sessions whose cookie.originalMaxAge is null or 0. Set it to the
//     Express app's ttl option if that is not the default; the
//     manager's IdleTimeout, which new sessions store as originalMaxAge,
//     should be the app's cookie.maxAge.
//   - Retries 3 and ReapInterval 1h, as DefaultOptions. Either reaper (ours
//     or Node's) may run, or both: they apply the same rule.
//
// The rest of the store's guarantees hold on the shared directory: files it
// writes are written atomically (a hidden temporary file, never one ending
// in .json, fsynced and renamed into place), created 0600, and their
// updates from this process and other Go processes never lose each other's
// changes. What Node does not honour: it takes none of this store's locks,
// so an update from a Node request racing one from a Go request can still be
// lost (Node writes the whole session it loaded); it creates its own files
// 0644 and its directory 0755, which this store accepts (it refuses only
// files and directories writable by group or others, so run Node with a
// umask of 022 or stricter); and it keeps the mode of a file it replaces,
// so a file this store wrote stays 0600.
//
// Expiry matches Node's rule, __lastAccess + (cookie.originalMaxAge ||
// ttl) < now, with two deliberate differences. At the exact millisecond
// __lastAccess + maxAge a session is expired here and still live for Node
// (the store's contract: live strictly before ExpiresAt). And a file with
// no numeric __lastAccess, which Node never expires, expires here maxAge
// (or TTL) after the file's modification time: no session lives forever.
// Sessions with a Deadline (Manager.Lifetime) end at it here; Node ignores
// the __deadline member (it keeps it).
func ExpressOptions(path string) Options {
	o := DefaultOptions()
	if path != "" {
		o.Path = path
	}
	o.TTL = time.Hour
	o.NoPrefix = true
	o.Extension = ".json"
	o.IDLength = ExpressIDLength
	o.NodeCompatible = true
	return o
}

// decode decodes the session file b, whose fstat is st, into d. Outside
// NodeCompatible, LastAccess is the later of __lastAccess and the file's
// modification time (which Touch moves instead of rewriting). Under it,
// LastAccess is __lastAccess alone, as Node reads it: session-file-store
// writes the file a moment after it sets __lastAccess, so its modification
// time is always a little later, and taking it would make a session outlive
// Node's view of it. The modification time then stands in only for a
// missing (or non-numeric) __lastAccess, and for a missing __created.
func (s *Store) decode(b []byte, st *unix.Stat_t, keep bool, d *stored) error {
	mtime := timeOf(st.Mtim)
	if !s.opts.NodeCompatible {
		return decodeRecord(b, mtime, s.opts.TTL, keep, d)
	}
	if err := decodeRecord(b, time.Time{}, s.opts.TTL, keep, d); err != nil {
		return err
	}
	if d.rec.LastAccess.IsZero() {
		d.rec.LastAccess = mtime
	}
	if !d.hasCreated {
		d.rec.Created = mtime
	}
	return nil
}

// touchContent is Touch under NodeCompatible: under the session's lock it
// reads the latest file, checks that it has not expired, and rewrites it
// with __lastAccess set to at (never moved backwards), every other byte as
// it was, so that Node, which reads only __lastAccess, sees the session as
// used. It is a full atomic write (temporary file, fsync per Sync, rename),
// so it costs what a Save costs; like every write it never creates a file
// and returns ErrNotFound for a session that is gone or expired.
//
// Node's own touch also replaces the cookie object with the request's
// (whose expires moves on); this one leaves the cookie as it is, since
// neither side takes expiry from it: express-session recomputes expires
// from originalMaxAge on every request it handles, and the next Save here
// rewrites it.
func (s *Store) touchContent(ctx context.Context, id string, at time.Time) error {
	return s.modify(ctx, id, func(d *stored) (filesession.Record, bool, error) {
		n := d.rec
		if at.After(n.LastAccess) {
			n.LastAccess = at
		}
		return n, false, nil
	})
}
