// Command filesession is the operator's tool for a filesession session
// directory (package filestore), and for moving sessions between stores.
//
//	filesession [flags] <command> [flags] [arguments]
//
// Commands:
//
//	count                  live sessions; expired, corrupt and temp files apart
//	ls                     one row per session: ID, user, created, last seen, expires, size
//	show ID                one session as JSON, with its computed expiry
//	stats                  counts, sizes, age histograms, top users, odd files
//	rm ID...               delete sessions (IDs, unique prefixes, or - for stdin)
//	revoke --user U        delete every session of a user
//	reap [--dry-run]       delete expired sessions (the store's own reaper)
//	verify [--fix]         fsck: corrupt, unsafe, stray and misplaced files
//	migrate --from S --to S  copy live sessions between stores, IDs and lifetimes kept
//	help [command]         usage of a command
//
// Flags every command takes (before or after the command name):
//
//	--dir DIR        session directory (default ./sessions)
//	--json           machine-readable output on stdout
//	--quiet          no progress bar, no notes on stderr
//	--ttl D          the store's TTL: the idle timeout of sessions whose file
//	                 has none (cookie.originalMaxAge null); must match the
//	                 application's (default 24h)
//	--prefix P, --no-prefix, --ext E, --id-length N
//	                 the file names of the store (default sess_<43 chars>.json;
//	                 session-file-store's are --no-prefix --id-length 32)
//	--user-key K     the session key holding the user (default "user")
//	--key-file F     the encryption key ring of an encrypted directory, one
//	                 key per line (base64 or hex), the encrypting key first
//	--hash-names, --name-key-file F
//	                 a directory with hashed file names (HashNames, NameKey)
//	--express        a directory shared with express-session and
//	                 session-file-store (filestore.ExpressOptions): implies
//	                 --no-prefix --id-length 32 --ttl 1h and Node's expiry rule
//
// Exit status: 0 success; 1 the operation failed, or found problems (verify,
// rm of a missing session, show of a corrupt one); 2 bad usage.
//
// The tool opens the directory through the store itself, with its locks, so
// it is safe to run next to the application; run it as the application's
// user (the store refuses a directory of another user). Reading commands
// never change anything; destructive ones need an explicit ID, user or flag.
// See the README's Operations section.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// memoryLimit is the soft limit the tool gives the Go runtime unless
// GOMEMLIMIT says otherwise: every command streams, and the limit makes the
// collector work before the heap grows past what a million-file directory
// needs (the target is a peak RSS of 32 MiB).
const memoryLimit = 20 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK       = 0
	exitProblems = 1
	exitUsage    = 2
)

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// errProblems means the command ran and found problems it already
// reported: exit status 1 with nothing more to say.
var errProblems = errors.New("problems found")

// command is one subcommand.
type command struct {
	name, args, summary string
	// flags registers the command's own flags; run gets the arguments
	// that are not flags.
	flags func(fs *flag.FlagSet)
	run   func(c *cli, args []string) error
}

// commands in the order help lists them; each is defined in its own file.
var commands []*command

func init() {
	commands = []*command{countCmd, lsCmd, showCmd, statsCmd, rmCmd, revokeCmd, reapCmd, verifyCmd, migrateCmd}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// run is main without the process: it parses args, runs the command and
// returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	out := bufio.NewWriterSize(stdout, 64<<10)
	defer out.Flush()
	c := &cli{ctx: ctx, stdin: stdin, out: out, stderr: stderr, stderrFile: stderr}
	code := c.main(args)
	if err := out.Flush(); err != nil && code == exitOK {
		fmt.Fprintln(stderr, "filesession: writing output:", err)
		code = exitProblems
	}
	return code
}

func (c *cli) main(args []string) int {
	global := flag.NewFlagSet("filesession", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	c.opts.register(global)
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.usage(c.out)
			return exitOK
		}
		fmt.Fprintf(c.stderr, "filesession: %v\nRun 'filesession help' for usage.\n", err)
		return exitUsage
	}
	rest := global.Args()
	if len(rest) == 0 {
		c.usage(c.stderr)
		return exitUsage
	}
	name, rest := rest[0], rest[1:]
	if name == "help" {
		return c.help(rest)
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(c.stderr, "filesession: unknown command %q\nRun 'filesession help' for the list of commands.\n", name)
		return exitUsage
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.opts.register(fs)
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.commandUsage(c.out, cmd)
			return exitOK
		}
		fmt.Fprintf(c.stderr, "filesession %s: %v\nRun 'filesession help %s' for usage.\n", name, err, name)
		return exitUsage
	}
	set := map[string]bool{}
	global.Visit(func(f *flag.Flag) { set[f.Name] = true })
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c.opts.applyPreset(set)
	if err := c.opts.check(); err != nil {
		fmt.Fprintf(c.stderr, "filesession %s: %v\n", name, err)
		return exitUsage
	}
	err = cmd.run(c, pos)
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "filesession %s: %v\nRun 'filesession help %s' for usage.\n", name, err, name)
		return exitUsage
	case errors.Is(err, errProblems):
		return exitProblems
	default:
		c.out.Flush()
		fmt.Fprintf(c.stderr, "filesession %s: %v\n", name, err)
		return exitProblems
	}
}

// parseInterspersed parses flags anywhere among the arguments (the flag
// package stops at the first non-flag), so that "rm ID --dry-run" works as
// well as "rm --dry-run ID". Everything after "--" is an argument. So is a
// session ID that starts with '-' (base64url IDs may): an argument of at
// least minDashID characters of the ID alphabet that names no flag.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(pos, args[i+1:]...), nil
		case len(a) < 2 || a[0] != '-' || dashID(fs, a):
			pos = append(pos, a)
			continue
		}
		// One flag, with its value if it takes one and it is the next
		// argument.
		one := []string{a}
		name := strings.TrimLeft(a, "-")
		if f := fs.Lookup(name); f != nil && !strings.Contains(name, "=") && !isBoolFlag(f) && i+1 < len(args) {
			one = append(one, args[i+1])
			i++
		}
		if err := fs.Parse(one); err != nil {
			return nil, err
		}
	}
	return pos, nil
}

// minDashID is how long an argument starting with '-' must be to be taken
// for a session ID rather than a flag.
const minDashID = 16

func dashID(fs *flag.FlagSet, a string) bool {
	if len(a) < minDashID || fs.Lookup(strings.TrimLeft(a, "-")) != nil {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprint(w, `Usage: filesession [flags] <command> [flags] [arguments]

Commands:
`)
	for _, cmd := range commands {
		fmt.Fprintf(w, "  %-34s %s\n", strings.TrimSpace(cmd.name+" "+cmd.args), cmd.summary)
	}
	fmt.Fprint(w, `
Flags of every command:
`)
	fs := flag.NewFlagSet("filesession", flag.ContinueOnError)
	var o options
	o.register(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprint(w, `
Exit status: 0 success; 1 failure or problems found; 2 bad usage.
Run 'filesession help <command>' for a command's flags.
`)
}

// commandUsage prints a command's usage and its own flags; the common ones
// are in the general usage.
func (c *cli) commandUsage(w io.Writer, cmd *command) {
	fmt.Fprintf(w, "Usage: filesession %s [flags] %s\n\n%s.\n", cmd.name, cmd.args, cmd.summary)
	if cmd.flags != nil {
		fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
		cmd.flags(fs)
		fmt.Fprint(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	fmt.Fprint(w, "\nIt also takes the flags of every command (--dir, --json, --quiet, ...): see 'filesession help'.\n")
}

func (c *cli) help(args []string) int {
	if len(args) == 0 {
		c.usage(c.out)
		return exitOK
	}
	cmd := lookup(args[0])
	if cmd == nil {
		fmt.Fprintf(c.stderr, "filesession: unknown command %q\n", args[0])
		return exitUsage
	}
	c.commandUsage(c.out, cmd)
	return exitOK
}
