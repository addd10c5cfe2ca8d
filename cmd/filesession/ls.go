package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/filesession/filesession/filestore"
)

// lsFlags are ls's own flags.
var lsFlags struct {
	user     string
	expired  bool
	all      bool
	olderAge time.Duration
	idle     time.Duration
	sort     string
	reverse  bool
	limit    int
	full     bool
}

// sortBudget is how many bytes of rows ls sorts in memory before it spills
// sorted runs to temporary files.
var sortBudget = 2 << 20

var lsCmd = &command{
	name:    "ls",
	summary: "List sessions, one row each: ID, created, last seen, expires, size, user",
	flags: func(fs *flag.FlagSet) {
		fs.StringVar(&lsFlags.user, "user", "", "only sessions of this `user` (userId, email, or the user string; case-insensitive)")
		fs.BoolVar(&lsFlags.expired, "expired", false, "only expired sessions (not yet reaped)")
		fs.BoolVar(&lsFlags.all, "all", false, "live and expired sessions")
		fs.DurationVar(&lsFlags.olderAge, "older-than", 0, "only sessions created more than this `duration` ago")
		fs.DurationVar(&lsFlags.idle, "idle", 0, "only sessions last seen more than this `duration` ago")
		fs.StringVar(&lsFlags.sort, "sort", "last-seen", "sort `key`: last-seen (newest first), created (newest first), expires (soonest first), size (largest first), id, user")
		fs.BoolVar(&lsFlags.reverse, "reverse", false, "reverse the order")
		fs.IntVar(&lsFlags.limit, "limit", 0, "print at most `n` sessions (0: all)")
		fs.BoolVar(&lsFlags.full, "full", false, "print whole session IDs in the table (JSON always has them)")
	},
	run: runLs,
}

// lsOrder returns the comparison of a sort key. Ties go by ID, so the order
// is total and the same on every run.
func lsOrder(key string, reverse bool) (func(a, b *row) int, error) {
	var by func(a, b *row) int
	switch key {
	case "last-seen":
		by = func(a, b *row) int { return b.LastSeen.Compare(a.LastSeen) }
	case "created":
		by = func(a, b *row) int { return b.Created.Compare(a.Created) }
	case "expires":
		by = func(a, b *row) int { return a.Expires.Compare(b.Expires) }
	case "size":
		by = func(a, b *row) int { return cmp.Compare(b.Size, a.Size) }
	case "id":
		by = func(a, b *row) int { return 0 }
	case "user":
		by = func(a, b *row) int { return cmp.Compare(a.Label, b.Label) }
	default:
		return nil, usagef("unknown --sort key %q", key)
	}
	less := func(a, b *row) int {
		if c := by(a, b); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	}
	if reverse {
		return func(a, b *row) int { return less(b, a) }, nil
	}
	return less, nil
}

// lsJSON documents one session in ls --json, which appendLsJSON writes:
// user is the value under --user-key as stored (null if none); owner the
// record's user (Record.User, set by Session.SetUser), omitted if none.
type lsJSON struct {
	ID       string          `json:"id"`
	User     json.RawMessage `json:"user"`
	Created  jsonTime        `json:"created"`
	LastSeen jsonTime        `json:"lastSeen"`
	Expires  jsonTime        `json:"expires"`
	Owner    string          `json:"owner,omitempty"`
	Size     int64           `json:"size"`
	State    string          `json:"state"`
}

var errLimit = errors.New("limit reached")

// appendLsJSON appends r as ls --json prints it: the lsJSON object, written
// by hand because ls of a million sessions spends its time here otherwise.
// IDs and times need no escaping; the user value is JSON the store
// validated and compacted.
func appendLsJSON(b []byte, r *row, state string) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, r.ID...)
	b = append(b, `","user":`...)
	if len(r.User) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, r.User...)
	}
	for _, f := range []struct {
		key string
		t   time.Time
	}{{`,"created":`, r.Created}, {`,"lastSeen":`, r.LastSeen}, {`,"expires":`, r.Expires}} {
		b = append(b, f.key...)
		b = appendJSONTime(b, f.t)
	}
	if r.Owner != "" {
		b = append(b, `,"owner":`...)
		q, _ := jsonString(r.Owner)
		b = append(b, q...)
	}
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, r.Size, 10)
	b = append(b, `,"state":"`...)
	b = append(b, state...)
	return append(b, `"}`...)
}

func runLs(c *cli, args []string) error {
	f := lsFlags
	if len(args) > 0 {
		return usagef("ls takes no arguments (filter with --user, --expired, --older-than, --idle)")
	}
	if f.expired && f.all {
		return usagef("--expired and --all exclude each other")
	}
	less, err := lsOrder(f.sort, f.reverse)
	if err != nil {
		return err
	}
	s, err := c.openDir()
	if err != nil {
		return err
	}
	defer s.Close()

	sorter := newRowSorter(less, sortBudget)
	defer sorter.close()
	var total int64
	if c.progressOn() {
		total = countNames(c.opts.dir)
	}
	p := c.newProgress("ls", total)
	now := time.Now()
	err = s.Scan(c.ctx, filestore.ScanOptions{ReadAll: true}, func(e *filestore.Entry) error {
		p.add(1)
		switch {
		case e.Kind == filestore.KindLive && f.expired,
			e.Kind == filestore.KindExpired && !f.expired && !f.all,
			e.Kind != filestore.KindLive && e.Kind != filestore.KindExpired:
			return nil
		}
		r := &e.Record
		if f.olderAge > 0 && now.Sub(r.Created) <= f.olderAge {
			return nil
		}
		if f.idle > 0 && now.Sub(r.LastAccess) <= f.idle {
			return nil
		}
		u := userOf(r, c.opts.userKey)
		if f.user != "" && !u.is(f.user) {
			return nil
		}
		return sorter.add(row{
			ID: e.ID, Label: u.label, User: u.raw, Owner: r.User,
			Created: r.Created, LastSeen: r.LastAccess, Expires: e.ExpiresAt,
			Size: e.Size, Expired: e.Kind == filestore.KindExpired,
		})
	})
	p.finish()
	if err != nil {
		return err
	}

	n := 0
	var line []byte
	var arr *jsonArray
	if c.opts.json {
		arr = c.startArray()
	} else {
		fmt.Fprintf(c.out, "%-*s  %-19s  %-19s  %-19s  %8s  %s\n", idWidth(f.full, c.opts.idLength), "ID", "CREATED (UTC)", "LAST SEEN", "EXPIRES", "SIZE", "USER")
	}
	err = sorter.each(func(r *row) error {
		if f.limit > 0 && n >= f.limit {
			return errLimit
		}
		n++
		if arr != nil {
			state := "live"
			if r.Expired {
				state = "expired"
			}
			line = appendLsJSON(line[:0], r, state)
			return arr.addRaw(line)
		}
		// A streaming table: fixed-width columns instead of tabwriter,
		// which would hold every row to size the columns; the user, of
		// variable width, comes last.
		id := r.ID
		if !f.full {
			id = shortID(id)
		}
		expires := timeText(r.Expires)
		if r.Expired {
			expires += "!"
		}
		_, err := fmt.Fprintf(c.out, "%-*s  %-19s  %-19s  %-19s  %8d  %s\n", idWidth(f.full, c.opts.idLength), id,
			timeText(r.Created), timeText(r.LastSeen), expires, r.Size, printable(r.Label))
		return err
	})
	if err != nil && !errors.Is(err, errLimit) {
		return err
	}
	if arr != nil {
		arr.end()
	} else if n == 0 {
		c.note("no sessions match")
	}
	return nil
}

func idWidth(full bool, idLength int) int {
	if full {
		return idLength
	}
	return min(12, idLength)
}

// printable makes a user label safe for a terminal: no control characters
// (a user value is data from the application, possibly from a client).
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}
