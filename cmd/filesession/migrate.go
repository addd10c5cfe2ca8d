package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/redisstore"
)

var migrateFlags struct {
	from, to string
	dryRun   bool
}

var migrateCmd = &command{
	name: "migrate",
	args: "--from STORE --to STORE",
	summary: "Copy every live session from one store to another, keeping IDs, values and remaining lifetimes; " +
		"idempotent and resumable (STORE: a directory, or redis://host:port/db?prefix=sess:)",
	flags: func(fs *flag.FlagSet) {
		fs.StringVar(&migrateFlags.from, "from", "", "source `store`: a session directory, or a redis:// URL")
		fs.StringVar(&migrateFlags.to, "to", "", "destination `store`: a session directory (created if missing), or a redis:// URL")
		fs.BoolVar(&migrateFlags.dryRun, "dry-run", false, "say what would be copied and write nothing")
	},
	run: runMigrate,
}

// backend is one end of a migration.
type backend struct {
	spec   string
	store  filesession.Store
	lister filesession.Lister // nil if the store cannot list
	dir    string             // the directory of a file store
	redis  string             // the URL (without password) and prefix of a Redis store
	close  func() error
}

// isRedisURL reports whether a store argument names a Redis server.
func isRedisURL(spec string) bool {
	return strings.HasPrefix(spec, "redis://") || strings.HasPrefix(spec, "rediss://") || strings.HasPrefix(spec, "unix://")
}

// openBackend opens the store a --from or --to argument names: a Redis URL,
// whose "prefix" query parameter is the store's key prefix (default
// "sess:"), or a directory (a "file:" prefix is allowed). A destination
// directory is created if missing (except by a dry run, for which it is an
// empty store with a nil Store); a source one must exist.
func (c *cli) openBackend(spec string, dest, dryRun bool) (*backend, error) {
	if isRedisURL(spec) {
		u, err := url.Parse(spec)
		if err != nil {
			// url.Error repeats the whole URL, password included: print
			// only the reason.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, usagef("bad Redis URL: %v", err)
		}
		q := u.Query()
		prefix := q.Get("prefix")
		q.Del("prefix")
		u.RawQuery = q.Encode()
		client, err := redisstore.NewClient(u.String())
		if err != nil {
			return nil, usagef("bad Redis URL %q: %v", u.Redacted(), err)
		}
		ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
		defer cancel()
		if err := client.Ping(ctx).Err(); err != nil {
			client.Close()
			return nil, fmt.Errorf("redis %s: %w", u.Redacted(), err)
		}
		s := redisstore.New(client, redisstore.Options{Prefix: prefix, TTL: c.opts.ttl, IDLength: c.opts.idLength, Logger: c.logger()})
		if prefix == "" {
			prefix = redisstore.DefaultPrefix
		}
		return &backend{spec: u.Redacted(), store: s, lister: s, redis: u.Redacted() + " " + prefix, close: client.Close}, nil
	}
	dir := strings.TrimPrefix(spec, "file:")
	if dest && dryRun {
		if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
			// A dry run creates nothing: a destination that does not exist
			// yet is an empty store.
			return &backend{spec: dir, dir: dir, close: func() error { return nil }}, nil
		}
	}
	s, err := c.openFileStore(dir, dest && !dryRun)
	if err != nil {
		return nil, err
	}
	return &backend{spec: dir, store: s, lister: s, dir: dir, close: s.Close}, nil
}

// migration counts what a migrate did.
type migration struct {
	Copied     int64 `json:"copied"`
	Updated    int64 `json:"updated"`
	UpToDate   int64 `json:"upToDate"`
	NewerThere int64 `json:"newerAtDestination"`
	Expired    int64 `json:"skippedExpired"`
	Failed     int64 `json:"failed"`
	DryRun     bool  `json:"dryRun,omitempty"`
}

func runMigrate(c *cli, args []string) error {
	f := migrateFlags
	if len(args) > 0 {
		return usagef("migrate takes no arguments; name the stores with --from and --to")
	}
	if f.from == "" || f.to == "" {
		return usagef("migrate needs --from and --to")
	}
	src, err := c.openBackend(f.from, false, false)
	if err != nil {
		return err
	}
	defer src.close()
	if src.lister == nil {
		return fmt.Errorf("the source store %s cannot list its sessions", src.spec)
	}
	dst, err := c.openBackend(f.to, true, f.dryRun)
	if err != nil {
		return err
	}
	defer dst.close()
	if sameBackend(src, dst) {
		return usagef("--from and --to are the same store")
	}

	var total int64
	if src.dir != "" && c.progressOn() {
		total = countNames(src.dir)
	}
	p := c.newProgress("migrate", total)
	m := migration{DryRun: f.dryRun}
	// List streams the source; each session is written to the destination
	// as it comes, so an interrupted run has copied a prefix of the source
	// and a rerun picks up where it stopped (what is already there and
	// equal is skipped).
	err = src.lister.List(c.ctx, func(id string, r filesession.Record) error {
		p.add(1)
		if r.Expired(time.Now()) {
			m.Expired++
			return nil
		}
		out, err := migrateOne(c.ctx, dst.store, id, r, f.dryRun)
		if err != nil {
			if c.ctx.Err() != nil {
				return err
			}
			m.Failed++
			c.note("migrate: session %s: %v", shortID(id), err)
			return nil
		}
		switch out {
		case copied:
			m.Copied++
		case updated:
			m.Updated++
		case upToDate:
			m.UpToDate++
		case newerThere:
			m.NewerThere++
		}
		return nil
	})
	p.finish()
	if serr := c.migrateSecret(src, dst, f.dryRun); serr != nil && err == nil {
		err = serr
	}
	if c.opts.json {
		if jerr := c.printJSON(m); jerr != nil {
			return jerr
		}
	} else {
		verb := ""
		if f.dryRun {
			verb = "would be "
		}
		fmt.Fprintf(c.out, "%scopied %d, %supdated %d, up to date %d, newer at the destination (kept) %d, expired (skipped) %d, failed %d\n",
			verb, m.Copied, verb, m.Updated, m.UpToDate, m.NewerThere, m.Expired, m.Failed)
	}
	if err != nil {
		return err
	}
	if m.Failed > 0 {
		return errProblems
	}
	return nil
}

// sameBackend reports whether a and b are one store.
func sameBackend(a, b *backend) bool {
	if a.dir != "" && b.dir != "" {
		fa, errA := os.Stat(a.dir)
		fb, errB := os.Stat(b.dir)
		return errA == nil && errB == nil && os.SameFile(fa, fb)
	}
	return a.redis != "" && a.redis == b.redis
}

type outcome int

const (
	copied outcome = iota
	updated
	upToDate
	newerThere
)

// migrateOne puts the session id, r, into dst, keeping its Created,
// LastAccess, IdleTimeout, Deadline and User, so that it expires when it
// would have, its cookie stays valid, and it stays in its user's index. If dst has the session already, it is
// left alone when it is the same or newer (used at the destination since:
// a rerun after the application switched over), and replaced by r
// otherwise.
func migrateOne(ctx context.Context, dst filesession.Store, id string, r filesession.Record, dryRun bool) (outcome, error) {
	if dryRun {
		if dst == nil {
			return copied, nil
		}
		cur, err := dst.Load(ctx, id)
		switch {
		case errors.Is(err, filesession.ErrNotFound):
			return copied, nil
		case err != nil:
			return 0, err
		}
		return compareRecords(&cur, &r), nil
	}
	for attempt := 0; ; attempt++ {
		err := dst.Create(ctx, id, r)
		if err == nil {
			return copied, nil
		}
		if !errors.Is(err, filesession.ErrExists) {
			return 0, err
		}
		cur, err := dst.Load(ctx, id)
		if errors.Is(err, filesession.ErrNotFound) && attempt == 0 {
			continue // expired or deleted since Create looked: create it
		}
		if err != nil {
			return 0, err
		}
		switch out := compareRecords(&cur, &r); out {
		case upToDate, newerThere:
			return out, nil
		}
		err = dst.Update(ctx, id, func(x *filesession.Record) error {
			*x = r.Clone()
			return nil
		})
		if errors.Is(err, filesession.ErrNotFound) && attempt == 0 {
			continue
		}
		if err != nil {
			return 0, err
		}
		return updated, nil
	}
}

// compareRecords says how dst's copy cur relates to the source's r: the
// same (to the millisecond, the stores' precision, and with values equal as
// JSON), newer (used later at the destination), or to be updated.
func compareRecords(cur, r *filesession.Record) outcome {
	ms := func(t time.Time) int64 { return t.UnixMilli() }
	if ms(cur.LastAccess) > ms(r.LastAccess) {
		return newerThere
	}
	if ms(cur.LastAccess) == ms(r.LastAccess) && ms(cur.Created) == ms(r.Created) &&
		cur.IdleTimeout.Milliseconds() == r.IdleTimeout.Milliseconds() && ms(cur.Deadline) == ms(r.Deadline) &&
		cur.Cookie == r.Cookie && cur.User == r.User && sameValues(cur.Values, r.Values) {
		return upToDate
	}
	return updated
}

func sameValues(a, b map[string]json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || !jsonEqual(va, vb) {
			return false
		}
	}
	return true
}

// jsonEqual compares two JSON texts byte for byte once compacted.
func jsonEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// migrateSecret copies the demo's signing secret (cmd/demo keeps it in the
// session directory) from a source directory to a destination directory
// that has none, so that cookies signed before the migration still verify
// after it. Toward Redis there is no directory: it says where the secret
// is, since the application must keep using it.
func (c *cli) migrateSecret(src, dst *backend, dryRun bool) error {
	if src.dir == "" {
		return nil
	}
	from := filepath.Join(src.dir, secretFileName)
	secret, err := os.ReadFile(from)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the signing secret: %w", err)
	}
	if dst.dir == "" {
		c.note("migrate: the application must keep signing cookies with the secret in %s, or every session is lost to it", from)
		return nil
	}
	to := filepath.Join(dst.dir, secretFileName)
	have, err := os.ReadFile(to)
	switch {
	case err == nil && bytes.Equal(have, secret):
		return nil
	case err == nil:
		c.note("migrate: WARNING: %s holds a different signing secret than %s; cookies signed with the old one will not verify", to, from)
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("reading the destination's signing secret: %w", err)
	case dryRun:
		c.note("migrate: would copy the signing secret %s to %s", from, to)
		return nil
	}
	tmp, err := os.CreateTemp(dst.dir, secretFileName+".*.tmp") // 0600
	if err != nil {
		return fmt.Errorf("copying the signing secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(secret)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// A link never replaces a file another process made meanwhile.
		err = os.Link(tmp.Name(), to)
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("copying the signing secret: %w", err)
	}
	c.note("migrate: copied the signing secret %s to %s", from, to)
	return nil
}
