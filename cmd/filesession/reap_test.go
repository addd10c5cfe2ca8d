package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
)

// TestReapAgreesWithTheStoresExpiryRule makes sessions on every side of
// the store's expiry rule (idle timeout, absolute deadline, a touch that
// only moved the file's time, a missing idle timeout that the TTL fills,
// wrong expiry hints) and checks that reap --dry-run predicts, and reap
// removes, exactly the sessions that the store itself reports expired.
func TestReapAgreesWithTheStoresExpiryRule(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	n := f.now
	const ttl = time.Hour // the --ttl of the application, for files without an idle timeout

	live := f.create(
		sess{created: n.Add(-10 * time.Minute), lastAccess: n.Add(-time.Minute), idle: time.Hour},
		sess{created: n.Add(-time.Minute), lastAccess: n.Add(-time.Minute), idle: time.Hour, deadline: n.Add(time.Hour)},
		sess{created: n.Add(-30 * 24 * time.Hour), lastAccess: n.Add(-23 * time.Hour), idle: 24 * time.Hour},
	)
	expired := f.create(
		sess{created: n.Add(-3 * time.Hour), lastAccess: n.Add(-2 * time.Hour), idle: time.Hour},                              // idle
		sess{created: n.Add(-2 * time.Hour), lastAccess: n.Add(-61 * time.Minute), idle: time.Hour},                           // idle, a minute ago
		sess{created: n.Add(-2 * time.Hour), lastAccess: n.Add(-time.Minute), idle: time.Hour, deadline: n.Add(-time.Second)}, // absolute lifetime
	)

	// Just touched: its file says it was last saved 100 minutes ago, which
	// is expired by its 1h idle timeout, but a Touch a second ago moved the
	// file's time (the last access) and the expiry hint. The touch is made
	// by a store whose clock is 90 minutes back, when the session was live.
	past, err := filestore.Open(filestore.Options{Path: f.dir, Now: func() time.Time { return n.Add(-90 * time.Minute) }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	touched := filesession.NewID()
	if err := past.Create(ctx, touched, filesession.Record{Created: n.Add(-3 * time.Hour), LastAccess: n.Add(-100 * time.Minute), IdleTimeout: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := past.Touch(ctx, touched, n.Add(-time.Second), n.Add(time.Hour-time.Second)); err != nil {
		t.Fatal(err)
	}
	past.Close()
	// Another touched one whose hint was lost (a backup tool read it on a
	// strictatime mount): the reaper must read it and go by the file's
	// modification time.
	touchedNoHint := f.create(sess{created: n.Add(-3 * time.Hour), lastAccess: n.Add(-50 * time.Minute), idle: time.Hour})[0]
	if err := os.Chtimes(f.path(f.name(touchedNoHint)), n.Add(-3*time.Hour), n.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	live = append(live, touched, touchedNoHint)

	// Files another program wrote (session-file-store), with no idle
	// timeout of their own (originalMaxAge null) and no hint: the TTL
	// decides.
	nodeLive, nodeOld := filesession.NewID(), filesession.NewID()
	node := func(lastAccess time.Time) string {
		return `{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"__lastAccess":` + ms(lastAccess) + `}`
	}
	f.write(f.name(nodeLive), node(n.Add(-30*time.Minute)), 0o600, n.Add(-30*time.Minute))
	f.write(f.name(nodeOld), node(n.Add(-2*time.Hour)), 0o600, n.Add(-2*time.Hour))
	live = append(live, nodeLive)
	expired = append(expired, nodeOld)

	corrupt := filesession.NewID()
	f.write(f.name(corrupt), `{"cookie":{"originalMaxAge":`, 0o600, n.Add(-time.Hour))
	staleTemp := "." + f.name(filesession.NewID()) + ".00112233445566ff.tmp"
	freshTemp := "." + f.name(filesession.NewID()) + ".ffeeddccbbaa9988.tmp"
	f.write(staleTemp, "{", 0o600, n.Add(-filestore.StaleTempAge-time.Minute))
	f.write(freshTemp, "{", 0o600, n.Add(-time.Second))
	f.write("notes.txt", "mine", 0o600, n.Add(-48*time.Hour))

	// The store's own verdict, from a store with the application's TTL.
	judge, err := filestore.Open(filestore.Options{Path: f.dir, TTL: ttl, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer judge.Close()
	for _, id := range live {
		if _, err := judge.Load(ctx, id); err != nil {
			t.Fatalf("the store says a session meant to be live is not: %v", err)
		}
	}
	for _, id := range expired {
		if _, err := judge.Load(ctx, id); !errors.Is(err, filesession.ErrNotFound) {
			t.Fatalf("the store says a session meant to be expired is: %v", err)
		}
	}

	// --dry-run: exactly the expired sessions and the stale temp file go,
	// the corrupt file is quarantined, and nothing changes.
	before := f.snapshot()
	var plan []struct{ Name, ID, Kind, Action string }
	f.run("reap", "--dry-run", "--json", "--ttl", ttl.String()).want(t, exitOK).decode(t, &plan)
	f.unchanged(before, "reap --dry-run")
	var remove, quarantine []string
	for _, p := range plan {
		switch p.Action {
		case "remove":
			remove = append(remove, p.Name)
		case "quarantine":
			quarantine = append(quarantine, p.Name)
		default:
			t.Errorf("reap --dry-run action %q", p.Action)
		}
	}
	wantRemove := []string{staleTemp}
	for _, id := range expired {
		wantRemove = append(wantRemove, f.name(id))
	}
	slices.Sort(remove)
	slices.Sort(wantRemove)
	if !slices.Equal(remove, wantRemove) || !slices.Equal(quarantine, []string{f.name(corrupt)}) {
		t.Errorf("reap --dry-run would remove\n%v\nand quarantine %v; want\n%v\nand [%s]", remove, quarantine, wantRemove, f.name(corrupt))
	}
	r := f.run("reap", "--dry-run", "--ttl", ttl.String()).want(t, exitOK)
	if !strings.Contains(r.stdout, "would reap 4 expired sessions, remove 1 stale temporary files, quarantine 1 corrupt files") {
		t.Errorf("reap --dry-run table:\n%s", r.stdout)
	}
	// The TTL matters for files without their own idle timeout: with the
	// default (24h) the old Node file is not expired.
	var plan24 []struct{ Name string }
	f.run("reap", "--dry-run", "--json").want(t, exitOK).decode(t, &plan24)
	if len(plan24) != len(plan)-1 {
		t.Errorf("with a 24h TTL, reap --dry-run plans %d, want %d", len(plan24), len(plan)-1)
	}

	// The real thing.
	var got struct{ Reaped, Quarantined int }
	f.run("reap", "--json", "--ttl", ttl.String()).want(t, exitOK).decode(t, &got)
	if got.Reaped != len(expired) || got.Quarantined != 1 {
		t.Errorf("reap = %+v, want %d reaped and 1 quarantined", got, len(expired))
	}
	want := []string{".filesession.lock", f.name(corrupt) + ".corrupt", freshTemp, "notes.txt"}
	for _, id := range live {
		want = append(want, f.name(id))
	}
	slices.Sort(want)
	if names := f.names(); !slices.Equal(names, want) {
		t.Errorf("after reap the directory holds\n%v\nwant\n%v", names, want)
	}
	for _, id := range live {
		if _, err := judge.Load(ctx, id); err != nil {
			t.Errorf("a live session does not load after reap: %v", err)
		}
	}
	// Nothing is left to reap.
	r = f.run("reap", "--ttl", ttl.String()).want(t, exitOK)
	if !strings.Contains(r.stdout, "reaped 0 expired sessions") {
		t.Errorf("second reap:\n%s", r.stdout)
	}
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
