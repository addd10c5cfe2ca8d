package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
)

// cli is one run of the tool: its streams and the common flags.
type cli struct {
	ctx    context.Context
	stdin  io.Reader
	out    *bufio.Writer
	stderr io.Writer
	// stderrFile is stderr as given, to tell whether it is a terminal.
	stderrFile io.Writer
	opts       options
	events     events
}

// options are the flags every command takes.
type options struct {
	dir      string
	json     bool
	quiet    bool
	ttl      time.Duration
	prefix   string
	noPrefix bool
	ext      string
	idLength int
	userKey  string
	express  bool
	// keyFile, hashNames and nameKeyFile are the store's encryption at
	// rest and hashed file names (filestore.Options.EncryptionKeys,
	// HashNames, NameKey).
	keyFile     string
	hashNames   bool
	nameKeyFile string
}

// register adds the common flags to fs. Called for the global flag set and
// for each command's, so they may come before or after the command name.
func (o *options) register(fs *flag.FlagSet) {
	if o.dir == "" {
		o.dir, o.ttl, o.prefix, o.ext, o.idLength, o.userKey =
			filestore.DefaultPath, filestore.DefaultTTL, filestore.DefaultPrefix, filestore.DefaultExtension, filesession.IDLength, "user"
	}
	fs.StringVar(&o.dir, "dir", o.dir, "session `directory`")
	fs.BoolVar(&o.json, "json", o.json, "print JSON on stdout (for scripts)")
	fs.BoolVar(&o.quiet, "quiet", o.quiet, "no progress bar and no notes on stderr")
	fs.DurationVar(&o.ttl, "ttl", o.ttl, "the store's TTL, for sessions whose file has no idle timeout; must match the application's")
	fs.StringVar(&o.prefix, "prefix", o.prefix, "file name `prefix` of session files")
	fs.BoolVar(&o.noPrefix, "no-prefix", o.noPrefix, "session files have no prefix (session-file-store's names)")
	fs.StringVar(&o.ext, "ext", o.ext, "file name `extension` of session files")
	fs.IntVar(&o.idLength, "id-length", o.idLength, "length of session IDs (express-session's are 32)")
	fs.StringVar(&o.userKey, "user-key", o.userKey, "session `key` that holds the user ({\"userId\",\"email\"} or a string)")
	fs.StringVar(&o.keyFile, "key-file", o.keyFile, "`file` of the store's encryption keys, one per line (base64 or hex, 32 bytes; the first encrypts), for an encrypted directory")
	fs.BoolVar(&o.hashNames, "hash-names", o.hashNames, "session files are named by a hash of their ID (the store's HashNames)")
	fs.StringVar(&o.nameKeyFile, "name-key-file", o.nameKeyFile, "`file` holding the key of the hashed names (the store's NameKey; base64 or hex)")
	fs.BoolVar(&o.express, "express", o.express, "the directory is shared with express-session and session-file-store: <id>.json names, 32-character IDs, TTL 1h, Node's expiry rule (filestore.ExpressOptions)")
}

// applyPreset fills in what --express implies for the flags not given
// explicitly (set holds the names of those given).
func (o *options) applyPreset(set map[string]bool) {
	if !o.express {
		return
	}
	if !set["prefix"] && !set["no-prefix"] {
		o.noPrefix = true
	}
	if !set["id-length"] {
		o.idLength = filestore.ExpressIDLength
	}
	if !set["ttl"] {
		o.ttl = filestore.ExpressOptions("").TTL
	}
}

// readKeys reads a key file: one key per line, base64 or hex, blank lines
// and lines starting with '#' ignored.
func readKeys(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := hex.DecodeString(line)
		if err != nil {
			if k, err = base64.StdEncoding.DecodeString(line); err != nil {
				if k, err = base64.RawStdEncoding.DecodeString(line); err != nil {
					return nil, fmt.Errorf("%s: a line is neither hex nor base64", path)
				}
			}
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no key", path)
	}
	return keys, nil
}

func (o *options) check() error {
	if o.ttl <= 0 {
		return usagef("--ttl must be positive, got %v", o.ttl)
	}
	if o.dir == "" {
		return usagef("--dir must not be empty")
	}
	return nil
}

// storeOptions are the filestore options for dir from the flags: no
// background reaper (the tool reaps only when told), the default retries.
func (c *cli) storeOptions(dir string) (filestore.Options, error) {
	o := filestore.Options{Retries: 3}
	if c.opts.express {
		// Node's expiry rule (NodeCompatible) and whatever else the preset
		// sets; the flags below override the names and the TTL.
		o = filestore.ExpressOptions(dir)
	}
	o.Path, o.TTL, o.Extension, o.IDLength = dir, c.opts.ttl, c.opts.ext, c.opts.idLength
	o.ReapInterval = 0
	o.Logger, o.Events = c.logger(), &c.events
	o.Prefix, o.NoPrefix = "", false
	if c.opts.noPrefix {
		o.NoPrefix = true
	} else {
		o.Prefix = c.opts.prefix
	}
	o.HashNames = c.opts.hashNames
	if c.opts.keyFile != "" {
		keys, err := readKeys(c.opts.keyFile)
		if err != nil {
			return o, fmt.Errorf("reading the encryption keys: %w", err)
		}
		o.EncryptionKeys = keys
	}
	if c.opts.nameKeyFile != "" {
		keys, err := readKeys(c.opts.nameKeyFile)
		if err != nil {
			return o, fmt.Errorf("reading the name key: %w", err)
		}
		o.NameKey = keys[0]
	}
	return o, nil
}

// logger is where the store's warnings go: stderr, warnings and errors
// only (errors only with --quiet).
func (c *cli) logger() *slog.Logger {
	level := slog.LevelWarn
	if c.opts.quiet {
		level = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))
}

// openDir opens the file store on the flags' directory, which must exist:
// a reading command pointed at a mistyped path reports it instead of
// creating an empty directory.
func (c *cli) openDir() (*filestore.Store, error) {
	return c.openFileStore(c.opts.dir, false)
}

func (c *cli) openFileStore(dir string, create bool) (*filestore.Store, error) {
	if !create {
		fi, err := os.Lstat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("no session directory at %s (see --dir)", dir)
		case err != nil:
			return nil, err
		case fi.Mode()&fs.ModeSymlink != 0:
			return nil, fmt.Errorf("%s is a symlink; give the session directory itself (the store never follows symlinks)", dir)
		case !fi.IsDir():
			return nil, fmt.Errorf("%s is not a directory", dir)
		}
	}
	o, err := c.storeOptions(dir)
	if err != nil {
		return nil, err
	}
	return filestore.Open(o)
}

// note prints a remark for a person on stderr, unless --quiet.
func (c *cli) note(format string, args ...any) {
	if !c.opts.quiet {
		fmt.Fprintf(c.stderr, format+"\n", args...)
	}
}

// printJSON writes v as one line of JSON.
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.out)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// printPrettyJSON writes v as indented JSON.
func (c *cli) printPrettyJSON(v any) error {
	enc := json.NewEncoder(c.out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// events counts what the store reports while the tool runs (for reap's
// summary and progress). It implements filesession.StoreEvents.
type events struct {
	reaped, quarantined, retried atomic.Int64
}

func (e *events) Retried(string, error)                   { e.retried.Add(1) }
func (e *events) LockWaited(time.Duration, error)         {}
func (e *events) Quarantined(error)                       { e.quarantined.Add(1) }
func (e *events) Reaped()                                 { e.reaped.Add(1) }
func (e *events) ReapDone(int, int, time.Duration, error) {}
func (e *events) counts() (reaped, quarantined, retried int64) {
	return e.reaped.Load(), e.quarantined.Load(), e.retried.Load()
}

var _ filesession.StoreEvents = (*events)(nil)

// timeText formats t for tables: UTC, to the second; "-" for none.
func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// jsonTime is a time in JSON output: RFC 3339 in UTC with milliseconds (the
// stores' precision), or null for the zero time.
type jsonTime time.Time

func (t jsonTime) MarshalJSON() ([]byte, error) { return appendJSONTime(nil, time.Time(t)), nil }

// appendJSONTime appends t as jsonTime encodes it.
func appendJSONTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	return append(b, '"')
}

func (t *jsonTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = jsonTime{}
		return nil
	}
	var v time.Time
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*t = jsonTime(v)
	return nil
}

// shortID is how tables show a session ID: a prefix long enough to be
// unique in practice (72 bits), which rm and show accept. An ID is a bearer
// token, so tables do not print it whole unless asked (--full).
func shortID(id string) string {
	if len(id) <= 12 {
		return id
	}
	return id[:12]
}

// durText formats a duration for people, to the second or minute.
func durText(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = d.Round(time.Second).String()
	case d < 48*time.Hour:
		s = strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
	default:
		days := int(d / (24 * time.Hour))
		s = fmt.Sprintf("%dd%dh", days, int((d%(24*time.Hour))/time.Hour))
	}
	if neg {
		return "-" + s
	}
	return s
}

// jsonString encodes s as a JSON string, without HTML escaping.
func jsonString(s string) ([]byte, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}

// jsonArray streams a JSON array to the output, one element per line, so
// that a listing of a million sessions is never held in memory.
type jsonArray struct {
	c *cli
	n int
}

func (c *cli) startArray() *jsonArray {
	c.out.WriteString("[")
	return &jsonArray{c: c}
}

// add appends v to the array.
func (a *jsonArray) add(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if a.n > 0 {
		a.c.out.WriteString(",")
	}
	a.c.out.WriteString("\n")
	a.n++
	_, err = a.c.out.Write(b)
	return err
}

// addRaw appends the JSON text b to the array.
func (a *jsonArray) addRaw(b []byte) error {
	if a.n > 0 {
		a.c.out.WriteString(",")
	}
	a.c.out.WriteString("\n")
	a.n++
	_, err := a.c.out.Write(b)
	return err
}

// end closes the array.
func (a *jsonArray) end() {
	if a.n > 0 {
		a.c.out.WriteString("\n")
	}
	a.c.out.WriteString("]\n")
}

// jsonMarshal is json.Marshal without HTML escaping.
func jsonMarshal(v any) ([]byte, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}
