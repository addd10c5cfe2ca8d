// Command demo is the seed's "Backend" in Go: a small web app whose logins,
// CSRF tokens and counters live in session files on disk (package
// filestore), so they survive restarts.
//
//	go run ./cmd/demo            # http://127.0.0.1:8080, sessions in ./sessions
//
// Flags:
//
//	-addr    listen address (default 127.0.0.1:8080; port 0 picks a free one,
//	         logged as addr=... on the "listening" line)
//	-dir     session directory (default ./sessions, created 0700)
//	-store   where sessions live: "file" (the default: files in -dir) or a
//	         Redis URL, redis://127.0.0.1:6379/0 (?prefix= sets the key
//	         prefix, default sess:), which any number of demo processes on
//	         any number of hosts can share. With Redis the secret comes from
//	         -secret or SESSION_SECRET, the same on every instance, or from
//	         an existing <dir>/.filesession-secret (the file store's, after
//	         filesession migrate); it is never generated. See the README's Redis section.
//	-ttl     idle timeout of sessions (default 24h)
//	-secret  cookie signing secret, at least 32 bytes; default: the
//	         SESSION_SECRET environment variable, else a secret generated
//	         once and kept in <dir>/.filesession-secret (mode 0600)
//	-preset  "filesession" (default) or "express": share -dir and the
//	         connect.sid cookie with an Express app on express-session +
//	         session-file-store. It needs -secret (or SESSION_SECRET) set to
//	         the Express app's secret, and -ttl is then the app's
//	         cookie.maxAge. See the README's Express section.
//
//	go run ./cmd/demo -preset express -dir ../node-app/sessions -secret "$SESSION_SECRET"
//
// Routes: GET / (page), GET /api/csrf, POST /login, POST /logout,
// GET /api/me, POST /api/count, and the "your sessions" page: GET /sessions,
// POST /sessions/revoke (field handle), POST /sessions/revoke-others
// ("sign out everywhere else"). Every POST needs the CSRF token, in the
// _csrf form field or the X-CSRF-Token header. On SIGINT or SIGTERM the
// server finishes the requests in flight, then closes the store.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/filesession/filesession"
)

// shutdownTimeout bounds how long requests in flight may take to finish after
// a stop signal.
const shutdownTimeout = 10 * time.Second

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	slog.SetDefault(log)
	if err := run(os.Args[1:], os.Getenv, os.Stderr, log); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// run parses args, serves until SIGINT or SIGTERM, and shuts down cleanly.
// getenv reads the environment (os.Getenv outside tests).
func run(args []string, getenv func(string) string, stderr io.Writer, log *slog.Logger) error {
	cfg, addr, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	cfg.Logger = log
	handler, store, err := newApp(cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("demo: closing the store failed", "err", err)
		}
	}()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("demo: listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String()+"/", "store", storeLabel(cfg.Store), "dir", cfg.Dir, "ttl", cfg.TTL, "preset", cfg.Preset)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stop() // a second signal now kills the process the default way
	log.Info("demo: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	log.Info("demo: stopped")
	return nil
}

// parseFlags turns the command line and the environment into a config and
// the listen address.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (config, string, error) {
	fl := flag.NewFlagSet("demo", flag.ContinueOnError)
	fl.SetOutput(stderr)
	addr := fl.String("addr", "127.0.0.1:8080", "listen `address`")
	dir := fl.String("dir", "./sessions", "session `directory` (created 0700)")
	ttl := fl.Duration("ttl", 24*time.Hour, "idle timeout of sessions")
	secret := fl.String("secret", "", "cookie signing `secret`, at least 32 bytes (default $SESSION_SECRET, else generated and kept in <dir>/"+secretFileName+"; with -store redis://… never generated)")
	store := fl.String("store", storeFile, "session `store`: "+storeFile+" or empty (sessions in -dir), or a Redis URL such as redis://127.0.0.1:6379/0 (?prefix= sets the key prefix, default sess:); with Redis the secret is -secret or $SESSION_SECRET, else an existing <dir>/"+secretFileName+" (never generated)")
	preset := fl.String("preset", presetFilesession, "session `format`: "+presetFilesession+", or "+presetExpress+" to share -dir and the cookie with an Express app (needs -secret: the app's secret; -ttl is its cookie.maxAge)")
	if err := fl.Parse(args); err != nil {
		return config{}, "", err
	}
	if fl.NArg() > 0 {
		return config{}, "", fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	if *ttl <= 0 {
		return config{}, "", fmt.Errorf("-ttl must be positive, got %v", *ttl)
	}
	switch *preset {
	case presetFilesession, presetExpress:
	default:
		return config{}, "", fmt.Errorf("-preset must be %q or %q, got %q", presetFilesession, presetExpress, *preset)
	}
	if *store != "" && *store != storeFile && !isRedisStore(*store) {
		return config{}, "", fmt.Errorf("-store must be %q or a redis://host:port/db URL, got %q", storeFile, storeLabel(*store))
	}
	cfg := config{Dir: *dir, TTL: *ttl, Preset: *preset, Store: *store}
	source := "-secret"
	if *secret == "" {
		*secret, source = getenv("SESSION_SECRET"), "SESSION_SECRET"
	}
	if *secret != "" {
		if len(*secret) < filesession.MinSecretLength {
			return config{}, "", fmt.Errorf("%s is %d bytes; it must be at least %d (e.g. openssl rand -hex 32), or leave it unset to use a generated one: %w",
				source, len(*secret), filesession.MinSecretLength, filesession.ErrWeakSecret)
		}
		cfg.Secret = []byte(*secret)
	}
	if cfg.Preset == presetExpress && cfg.Secret == nil {
		return config{}, "", errors.New("-preset express needs -secret (or SESSION_SECRET) set to the Express app's secret; a generated one would not match it")
	}
	return cfg, *addr, nil
}
