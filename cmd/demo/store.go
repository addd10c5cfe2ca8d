package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
	"github.com/filesession/filesession/metrics"
	"github.com/filesession/filesession/redisstore"
)

// Where the demo keeps sessions (config.Store, the -store flag): "" or
// storeFile for the file store in config.Dir, or a Redis URL for
// redisstore, so that several demo processes, on one host or many, serve
// the same sessions.

// storeFile is the -store value of the file store, the default.
const storeFile = "file"

// pingTimeout bounds the check that the Redis server answers at start-up.
// A demo that cannot reach its store says so and exits, rather than
// answering every request with 503.
const pingTimeout = 5 * time.Second

// isRedisStore reports whether a -store value names a Redis server: a
// redis:// or rediss:// (TLS) URL, or unix:// for a Unix socket, as
// go-redis's ParseURL reads them.
func isRedisStore(spec string) bool {
	for _, scheme := range []string{"redis://", "rediss://", "unix://"} {
		if strings.HasPrefix(spec, scheme) {
			return true
		}
	}
	return false
}

// storeLabel names the store spec for logs: "file", or the Redis URL with
// any password replaced by "xxxxx".
func storeLabel(spec string) string {
	if spec == "" || spec == storeFile {
		return storeFile
	}
	if u, err := url.Parse(spec); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

// splitRedisURL returns the URL go-redis should parse and the store's key
// prefix, taken out of the "prefix" query parameter (the one `filesession
// migrate --to redis://…?prefix=` reads, so both agree on where sessions
// are); go-redis refuses query parameters it does not know. An empty prefix
// means redisstore.DefaultPrefix ("sess:").
func splitRedisURL(raw string) (clientURL, prefix string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error quotes the whole URL, password included.
		return "", "", errors.New("the -store URL does not parse as a URL")
	}
	q := u.Query()
	prefix = q.Get("prefix")
	q.Del("prefix")
	u.RawQuery = q.Encode()
	return u.String(), prefix, nil
}

// newRedisApp is newApp for a Redis store: the demo's handler over a
// redisstore.Store on the server cfg.Store names, and the closer that
// closes the Redis client once the server is done. cfg.Preset must not be
// the express preset, which shares a session-file-store directory.
func newRedisApp(cfg config) (http.Handler, io.Closer, error) {
	if !isRedisStore(cfg.Store) {
		return nil, nil, fmt.Errorf("unknown store %q: want %q (the default) or a redis://host:port/db URL", storeLabel(cfg.Store), storeFile)
	}
	if cfg.Preset == presetExpress {
		return nil, nil, errors.New("the express preset shares a session-file-store directory with an Express app; it cannot be combined with a Redis store")
	}
	secret, err := redisSecret(cfg)
	if err != nil {
		return nil, nil, err
	}
	cfg.Secret = secret
	clientURL, prefix, err := splitRedisURL(cfg.Store)
	if err != nil {
		return nil, nil, err
	}
	client, err := redisstore.NewClient(clientURL)
	if err != nil {
		return nil, nil, fmt.Errorf("redis %s: %w", storeLabel(cfg.Store), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("redis %s does not answer: %w", storeLabel(cfg.Store), err)
	}
	// The same metrics as on the file store; Redis has no locks and no
	// reaper, so only Update retries and quarantines show up as events.
	stats := metrics.New(metrics.Options{})
	store := redisstore.New(client, redisstore.Options{
		Prefix: prefix,
		TTL:    cfg.TTL,
		Now:    cfg.Now,
		Logger: cfg.Logger,
		Events: stats,
	})
	// cfg.Secret is set, so buildHandler never looks for a directory.
	h, err := buildHandler(cfg, "", stats.Instrument(store))
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return withMetrics(h, stats), client, nil
}

// redisSecret returns the signing secret of a demo on Redis: cfg.Secret
// (-secret or SESSION_SECRET) if set, else the secret a file-store run
// generated and kept in cfg.Dir, which is read but never generated here.
//
// Why not generate one, as the file store does: with Redis the point is
// several processes, often on several hosts, and each would generate its
// own secret, so a cookie signed by one would be rejected by the next, and
// every request that landed elsewhere would log the user out. Why read an
// existing one: after `filesession migrate --from ./sessions --to redis://…`
// the sessions in Redis are only valid with the cookies signed by that file's
// secret (its hex text is not the secret itself, so it cannot be passed as
// -secret), and starting the demo on Redis with the same -dir keeps every
// user logged in.
func redisSecret(cfg config) ([]byte, error) {
	if cfg.Secret != nil {
		return cfg.Secret, nil
	}
	dir := cfg.Dir
	if dir == "" {
		dir = filestore.DefaultPath
	}
	path := filepath.Join(dir, secretFileName)
	secret, err := readSecret(path, cfg.Logger)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the Redis store needs a signing secret that every instance shares: set -secret or SESSION_SECRET "+
			"(at least %d bytes, e.g. openssl rand -hex 32), or keep the secret file %s of the file store you migrated from "+
			"(with Redis it is read, never generated)", filesession.MinSecretLength, path)
	}
	if err != nil {
		return nil, err
	}
	cfg.Logger.Info("demo: signing cookies with the secret kept in the session directory; every instance on this Redis needs the same one", "file", path)
	return secret, nil
}
