package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
)

var rmDryRun bool

var rmCmd = &command{
	name:    "rm",
	args:    "ID...",
	summary: "Delete sessions by ID, unique ID prefix or file name ('-' reads IDs from stdin)",
	flags: func(fs *flag.FlagSet) {
		fs.BoolVar(&rmDryRun, "dry-run", false, "say what would be deleted and delete nothing")
	},
	run: runRm,
}

// rmResult is rm's and revoke's JSON output.
type rmResult struct {
	Removed  []string `json:"removed"`
	NotFound []string `json:"notFound,omitempty"`
	DryRun   bool     `json:"dryRun,omitempty"`
}

func runRm(c *cli, args []string) error {
	args, err := c.readIDArgs(args)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return usagef("rm needs at least one session ID (nothing is deleted without one)")
	}
	s, err := c.openDir()
	if err != nil {
		return err
	}
	defer s.Close()
	ids, err := c.resolveIDs(s, args)
	if err != nil {
		return err
	}
	res := rmResult{Removed: []string{}, DryRun: rmDryRun}
	for _, id := range ids {
		e, err := s.Inspect(c.ctx, id)
		switch {
		case errors.Is(err, filesession.ErrNotFound):
			res.NotFound = append(res.NotFound, id)
			if !c.opts.json {
				fmt.Fprintf(c.out, "not found  %s\n", shortID(id))
			}
			continue
		case err != nil:
			return err
		}
		if !rmDryRun {
			// Delete, under the session's lock, exactly as a logout does.
			if err := s.Delete(c.ctx, id); err != nil {
				return err
			}
		}
		res.Removed = append(res.Removed, id)
		if !c.opts.json {
			verb := "removed"
			if rmDryRun {
				verb = "would remove"
			}
			fmt.Fprintf(c.out, "%s  %s  %s  %s\n", verb, shortID(id), e.Kind, printable(userLabel(&e, c.opts.userKey)))
		}
	}
	if c.opts.json {
		if err := c.printJSON(res); err != nil {
			return err
		}
	}
	if len(res.NotFound) > 0 {
		return errProblems
	}
	return nil
}

// userLabel is the user of an entry that was read, or "".
func userLabel(e *filestore.Entry, key string) string {
	if !e.Read {
		return ""
	}
	return userOf(&e.Record, key).label
}

var revokeFlags struct {
	user      string
	dryRun    bool
	indexOnly bool
	noIndex   bool
}

var revokeCmd = &command{
	name:    "revoke",
	args:    "--user U",
	summary: "Delete every session of a user (by userId, email, or user string)",
	flags: func(fs *flag.FlagSet) {
		fs.StringVar(&revokeFlags.user, "user", "", "the `user` whose sessions to delete (required)")
		fs.BoolVar(&revokeFlags.dryRun, "dry-run", false, "say what would be deleted and delete nothing")
		fs.BoolVar(&revokeFlags.indexOnly, "index-only", false, "only the sessions the store's per-user index lists (no scan of every session)")
		fs.BoolVar(&revokeFlags.noIndex, "no-index", false, "find the sessions by a scan only, not the per-user index")
	},
	run: runRevoke,
}

func runRevoke(c *cli, args []string) error {
	f := revokeFlags
	if len(args) > 0 {
		return usagef("revoke takes no arguments; name the user with --user")
	}
	if f.user == "" {
		return usagef("revoke needs --user (nothing is deleted without it)")
	}
	if f.indexOnly && f.noIndex {
		return usagef("--index-only and --no-index exclude each other")
	}
	s, err := c.openDir()
	if err != nil {
		return err
	}
	defer s.Close()
	var total int64
	if c.progressOn() {
		total = countNames(c.opts.dir)
	}
	p := c.newProgress("revoke", total)
	n := 0
	if c.opts.json {
		c.out.WriteString(`{"user":`)
		b, _ := jsonString(f.user)
		c.out.Write(b)
		if f.dryRun {
			c.out.WriteString(`,"dryRun":true`)
		}
		c.out.WriteString(`,"removed":[`)
	}
	revoked := func(id string, kind filestore.Kind) error {
		if !f.dryRun {
			// Delete takes the session's lock, as a logout does.
			if err := s.Delete(c.ctx, id); err != nil {
				return err
			}
		}
		n++
		if c.opts.json {
			if n > 1 {
				c.out.WriteString(",")
			}
			b, _ := jsonString(id)
			c.out.Write(b)
		} else {
			verb := "removed"
			if f.dryRun {
				verb = "would remove"
			}
			fmt.Fprintf(c.out, "%s  %s  %s\n", verb, shortID(id), kind)
		}
		return nil
	}
	seen := map[string]bool{}
	if idx, ok := any(s).(filesession.UserIndex); ok && !f.noIndex && !f.dryRun {
		// The store's per-user index finds the sessions whose Record.User
		// is the user without reading every file. Not for a dry run:
		// asking the index may make the store rebuild it (and quarantine
		// what it finds corrupt on the way), and the scan finds the same
		// sessions.
		var sessions []filesession.UserSession
		sessions, err = idx.UserSessions(c.ctx, f.user)
		for i := 0; err == nil && i < len(sessions); i++ {
			seen[sessions[i].ID] = true
			err = revoked(sessions[i].ID, filestore.KindLive)
		}
	}
	if err == nil && !f.indexOnly {
		// Every session is read to find the rest: sessions whose user
		// value (--user-key) names the user, and any the index does not
		// know (made before it, or without Session.SetUser). The scan
		// allows deleting from inside its callback.
		err = s.Scan(c.ctx, filestore.ScanOptions{ReadAll: true}, func(e *filestore.Entry) error {
			p.add(1)
			if (e.Kind != filestore.KindLive && e.Kind != filestore.KindExpired) || seen[e.ID] || !userOf(&e.Record, c.opts.userKey).is(f.user) {
				return nil
			}
			return revoked(e.ID, e.Kind)
		})
	}
	p.finish()
	if c.opts.json {
		c.out.WriteString("]}\n")
	}
	if err != nil {
		return err
	}
	if !c.opts.json {
		verb := "revoked"
		if f.dryRun {
			verb = "would revoke"
		}
		fmt.Fprintf(c.out, "%s %d sessions of %s\n", verb, n, printable(f.user))
	}
	return nil
}
