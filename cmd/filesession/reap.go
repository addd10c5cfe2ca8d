package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/filesession/filesession/filestore"
)

var reapDryRun bool

var reapCmd = &command{
	name:    "reap",
	args:    "[--dry-run]",
	summary: "Delete expired sessions and stale temporary files, by the store's own reaper",
	flags: func(fs *flag.FlagSet) {
		fs.BoolVar(&reapDryRun, "dry-run", false, "list what the reaper would remove or quarantine, and change nothing")
	},
	run: runReap,
}

// reapJSON is reap's JSON output.
type reapJSON struct {
	Reaped      int64 `json:"reaped"`
	Quarantined int64 `json:"quarantined"`
}

// reapDryJSON is one entry of reap --dry-run --json.
type reapDryJSON struct {
	Name    string    `json:"name"`
	ID      string    `json:"id,omitempty"`
	Kind    string    `json:"kind"`
	Action  string    `json:"action"`
	Expires *jsonTime `json:"expires,omitempty"`
}

func runReap(c *cli, args []string) error {
	if len(args) > 0 {
		return usagef("reap takes no arguments")
	}
	s, err := c.openDir()
	if err != nil {
		return err
	}
	defer s.Close()
	if reapDryRun {
		return reapDry(c, s)
	}
	// The store's own Reap, the background reaper's code path: it skips
	// files whose expiry hint is in the future, and re-checks each
	// candidate under its lock before removing it. It reports removals
	// through the store's events, which is all the progress there is to
	// show: the pass is one call.
	p := c.newProgress("reap: removed", 0)
	stop := make(chan struct{})
	done := make(chan struct{})
	if p != nil {
		go func() {
			defer close(done)
			t := time.NewTicker(progressInterval)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					r, _, _ := c.events.counts()
					p.done.Store(r)
				}
			}
		}()
	} else {
		close(done)
	}
	n, err := s.Reap(c.ctx)
	close(stop)
	<-done
	p.finish()
	_, q, _ := c.events.counts()
	if c.opts.json {
		if jerr := c.printJSON(reapJSON{Reaped: int64(n), Quarantined: q}); jerr != nil {
			return jerr
		}
	} else {
		fmt.Fprintf(c.out, "reaped %d expired sessions\n", n)
		if q > 0 {
			fmt.Fprintf(c.out, "quarantined %d corrupt files (see filesession verify)\n", q)
		}
	}
	return err
}

// reapDry lists what Reap would do, from a scan that changes nothing and
// applies the reaper's rules (filestore.Entry.Reap).
func reapDry(c *cli, s *filestore.Store) error {
	var total int64
	if c.progressOn() {
		total = countNames(c.opts.dir)
	}
	p := c.newProgress("reap --dry-run", total)
	var remove, quarantine, temps int
	var arr *jsonArray
	if c.opts.json {
		arr = c.startArray()
	}
	err := s.Scan(c.ctx, filestore.ScanOptions{}, func(e *filestore.Entry) error {
		p.add(1)
		if e.Reap == filestore.ReapKeep {
			return nil
		}
		switch {
		case e.Reap == filestore.ReapQuarantine:
			quarantine++
		case e.Kind == filestore.KindTemp:
			temps++
		default:
			remove++
		}
		if arr != nil {
			v := reapDryJSON{Name: e.Name, ID: e.ID, Kind: e.Kind.String(), Action: e.Reap.String()}
			if e.Kind == filestore.KindExpired {
				t := jsonTime(e.ExpiresAt)
				v.Expires = &t
			}
			return arr.add(v)
		}
		what := ""
		switch e.Kind {
		case filestore.KindExpired:
			what = "expired " + timeText(e.ExpiresAt)
		case filestore.KindTemp:
			what = "stale temporary file of " + timeText(e.ModTime)
		default:
			what = fmt.Sprint(e.Err)
		}
		_, err := fmt.Fprintf(c.out, "would %-10s  %s  %s\n", e.Reap, e.Name, what)
		return err
	})
	p.finish()
	if arr != nil {
		arr.end()
	} else if err == nil {
		fmt.Fprintf(c.out, "would reap %d expired sessions, remove %d stale temporary files, quarantine %d corrupt files\n", remove, temps, quarantine)
	}
	return err
}
