package main

import (
	"flag"
	"fmt"
	"io/fs"
	"text/tabwriter"

	"github.com/filesession/filesession/filestore"
)

// secretFileName is the demo's signing secret (cmd/demo), which it keeps in
// the session directory: known, so not reported as a foreign file.
const secretFileName = ".filesession-secret"

// indexDirName is the subdirectory where the file store keeps its per-user
// index (filestore's userindex.go): the store's own, not a foreign file.
const indexDirName = ".users"

// known reports whether a name that is not one of the store's session,
// temporary, quarantined or lock files is still known: the demo's secret,
// the per-user index.
func known(e *filestore.Entry) bool {
	return e.Name == secretFileName || (e.Name == indexDirName && e.Type == fs.ModeDir)
}

// tally counts directory entries by state.
type tally struct {
	Live        int64 `json:"live"`
	Expired     int64 `json:"expired"`
	Corrupt     int64 `json:"corrupt"`
	Unsafe      int64 `json:"unsafe"`
	Unreadable  int64 `json:"unreadable"`
	Temp        int64 `json:"temp"`
	Quarantined int64 `json:"quarantined"`
	Foreign     int64 `json:"foreign"`
}

func (t *tally) add(e *filestore.Entry) {
	switch e.Kind {
	case filestore.KindLive:
		t.Live++
	case filestore.KindExpired:
		t.Expired++
	case filestore.KindCorrupt:
		t.Corrupt++
	case filestore.KindUnsafe:
		t.Unsafe++
	case filestore.KindUnreadable:
		t.Unreadable++
	case filestore.KindTemp:
		t.Temp++
	case filestore.KindQuarantined:
		t.Quarantined++
	case filestore.KindForeign:
		if !known(e) {
			t.Foreign++
		}
	}
}

// rows returns the tally as (label, count, note) lines for a table.
func (t *tally) rows() [][3]any {
	return [][3]any{
		{"live", t.Live, "sessions in use"},
		{"expired", t.Expired, "not yet reaped (filesession reap)"},
		{"corrupt", t.Corrupt, "do not decode (filesession verify --fix quarantines them)"},
		{"unsafe", t.Unsafe, "symlinks, non-regular, other users' or world-writable files at session names"},
		{"unreadable", t.Unreadable, "could not be examined"},
		{"temp", t.Temp, "temporary files (writes in progress or left by a crash)"},
		{"quarantined", t.Quarantined, "*.corrupt files kept for inspection"},
		{"foreign", t.Foreign, "files that are not the store's"},
	}
}

var countDeep bool

var countCmd = &command{
	name:    "count",
	summary: "Count live sessions; expired, corrupt, temp and other files are counted apart",
	flags: func(fs *flag.FlagSet) {
		fs.BoolVar(&countDeep, "deep", false, "read every session file instead of trusting expiry hints (slower; finds corrupt files the reaper would skip)")
	},
	run: runCount,
}

func runCount(c *cli, args []string) error {
	if len(args) > 0 {
		return usagef("count takes no arguments")
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
	p := c.newProgress("count", total)
	var t tally
	err = s.Scan(c.ctx, filestore.ScanOptions{ReadAll: countDeep}, func(e *filestore.Entry) error {
		t.add(e)
		p.add(1)
		return nil
	})
	p.finish()
	if err != nil {
		return err
	}
	if c.opts.json {
		return c.printJSON(t)
	}
	return t.table(c, false)
}

// table prints the tally as a table; all includes the zero rows.
func (t *tally) table(c *cli, all bool) error {
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	for _, r := range t.rows() {
		if !all && r[1].(int64) == 0 && r[0] != "live" {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", r[0], r[1], r[2])
	}
	return tw.Flush()
}
