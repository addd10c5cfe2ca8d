package metrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
	"github.com/filesession/filesession/memstore"
	"github.com/filesession/filesession/metrics"
	"github.com/filesession/filesession/storetest"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"
)

// fileStore opens a real file store on a temporary directory with c as its
// events and clock as its clock, with no background reaper.
func fileStore(t *testing.T, c *metrics.Collector, clock *storetest.Clock, lockTimeout time.Duration) (*filestore.Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := filestore.Open(filestore.Options{
		Path: dir, Now: clock.Now, Events: c, LockTimeout: lockTimeout,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func record(now time.Time) filesession.Record {
	return filesession.Record{
		Values:  map[string]json.RawMessage{"n": json.RawMessage("1")},
		Created: now, LastAccess: now, IdleTimeout: time.Hour,
	}
}

// TestCountsOperationsAndEvents drives every store operation through an
// instrumented file store and checks each counter the scrape shows.
func TestCountsOperationsAndEvents(t *testing.T) {
	ctx := context.Background()
	c := metrics.New(metrics.Options{})
	clock := storetest.NewClock(time.UnixMilli(1796292220850))
	fs, dir := fileStore(t, c, clock, 200*time.Millisecond)
	s := c.Instrument(fs)
	now := clock.Now()

	a, b, old := filesession.NewID(), filesession.NewID(), filesession.NewID()
	for _, id := range []string{a, b} {
		if err := s.Create(ctx, id, record(now)); err != nil {
			t.Fatal(err)
		}
	}
	oldRec := record(now.Add(-2 * time.Hour))
	if err := s.Create(ctx, old, oldRec); err != nil { // already expired
		t.Fatal(err)
	}
	if err := s.Create(ctx, a, record(now)); !errors.Is(err, filesession.ErrExists) {
		t.Fatalf("Create over a live session = %v", err)
	}
	if _, err := s.Load(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, filesession.NewID()); !errors.Is(err, filesession.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, "not an id"); !errors.Is(err, filesession.ErrInvalidID) {
		t.Fatal(err)
	}
	corrupt := filesession.NewID()
	if err := os.WriteFile(filepath.Join(dir, "sess_"+corrupt+".json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, corrupt); !errors.Is(err, filesession.ErrCorrupt) {
		t.Fatalf("Load(corrupt) = %v", err)
	}
	if err := s.Save(ctx, a, filesession.Change{Set: map[string]json.RawMessage{"k": json.RawMessage(`"v"`)}, At: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(ctx, a, now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, a, func(r *filesession.Record) error { return nil }); err != nil {
		t.Fatal(err)
	}
	c2 := filesession.NewID()
	if err := s.Renew(ctx, b, c2, filesession.Change{At: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, c2); err != nil {
		t.Fatal(err)
	}

	// A lock wait that runs out: one Update holds the session's lock until
	// another, on the same session, has given up.
	held, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- s.Update(ctx, a, func(*filesession.Record) error { close(held); <-release; return nil })
	}()
	<-held
	if err := s.Update(ctx, a, func(*filesession.Record) error { return nil }); !errors.Is(err, filesession.ErrLockTimeout) {
		t.Errorf("Update of a locked session = %v, want ErrLockTimeout", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Before any reap pass the session gauge is not exported.
	if n := testutil.CollectAndCount(c, "filesession_sessions"); n != 0 {
		t.Errorf("filesession_sessions exported before any reap pass")
	}
	if n, err := s.(filesession.Reaper).Reap(ctx); n != 1 || err != nil {
		t.Fatalf("Reap = %d, %v", n, err)
	}

	want := `
# HELP filesession_sessions Sessions in the store: those the last reaper pass left, plus sessions created minus sessions deleted since through this process. Expired sessions count until a pass removes them. Absent until a first pass.
# TYPE filesession_sessions gauge
filesession_sessions 1
# HELP filesession_store_errors_total Store operations that failed or found something wrong, by operation and kind of error.
# TYPE filesession_store_errors_total counter
filesession_store_errors_total{kind="corrupt",op="load"} 1
filesession_store_errors_total{kind="exists",op="create"} 1
filesession_store_errors_total{kind="invalid_id",op="load"} 1
filesession_store_errors_total{kind="lock_timeout",op="update"} 1
# HELP filesession_store_lock_timeouts_total Waits for a session's lock that ran out of time or were cancelled.
# TYPE filesession_store_lock_timeouts_total counter
filesession_store_lock_timeouts_total 1
# HELP filesession_store_operations_total Store operations by operation and result (ok, not_found, error).
# TYPE filesession_store_operations_total counter
filesession_store_operations_total{op="create",result="error"} 1
filesession_store_operations_total{op="create",result="ok"} 3
filesession_store_operations_total{op="delete",result="ok"} 1
filesession_store_operations_total{op="load",result="not_found"} 3
filesession_store_operations_total{op="load",result="ok"} 1
filesession_store_operations_total{op="reap",result="ok"} 1
filesession_store_operations_total{op="renew",result="ok"} 1
filesession_store_operations_total{op="save",result="ok"} 1
filesession_store_operations_total{op="touch",result="ok"} 1
filesession_store_operations_total{op="update",result="error"} 1
filesession_store_operations_total{op="update",result="ok"} 2
# HELP filesession_store_quarantined_total Corrupt or unusable session records moved aside for inspection.
# TYPE filesession_store_quarantined_total counter
filesession_store_quarantined_total 1
# HELP filesession_store_reap_passes_total Reaper passes, by result (ok, or error when some file could not be handled or the pass was cut short).
# TYPE filesession_store_reap_passes_total counter
filesession_store_reap_passes_total{result="ok"} 1
# HELP filesession_store_reaped_total Expired sessions removed by the reaper.
# TYPE filesession_store_reaped_total counter
filesession_store_reaped_total 1
`
	names := []string{"filesession_sessions", "filesession_store_errors_total", "filesession_store_lock_timeouts_total",
		"filesession_store_operations_total", "filesession_store_quarantined_total", "filesession_store_reap_passes_total",
		"filesession_store_reaped_total"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// Every lock the store took was observed: 3 creates, the refused
	// create, the quarantine, save, update, renew, delete, two updates and
	// the reaper's expired file.
	if n := histogramCount(t, c, "filesession_store_lock_wait_seconds"); n != 12 {
		t.Errorf("lock waits observed = %d, want 12", n)
	}
	if n := histogramCount(t, c, "filesession_store_operation_duration_seconds"); n != 16 {
		t.Errorf("latencies observed = %d, want one per operation (16)", n)
	}

	// Creates and deletes move the gauge between passes.
	if err := s.Create(ctx, filesession.NewID(), record(now)); err != nil {
		t.Fatal(err)
	}
	if v := gauge(t, c, "filesession_sessions"); v != 2 {
		t.Errorf("filesession_sessions after a create = %v, want 2", v)
	}
}

// histogramCount returns the sum of the sample counts of the histogram
// family name in c.
func histogramCount(t *testing.T, c *metrics.Collector, name string) uint64 {
	t.Helper()
	fams, err := gather(c)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range fams {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

func gauge(t *testing.T, c *metrics.Collector, name string) float64 {
	t.Helper()
	fams, err := gather(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}

func TestRetriesCounted(t *testing.T) {
	// The file store retries only transient errors, which a real
	// filesystem does not produce on demand; the store's call of Retried
	// is tested in package filestore, its counting here.
	c := metrics.New(metrics.Options{})
	c.Retried("read", unix.EINTR)
	c.Retried("read", unix.EAGAIN)
	c.Retried("write", unix.EMFILE)
	want := `
# HELP filesession_store_retries_total Retries of operations that failed with a transient error, by operation.
# TYPE filesession_store_retries_total counter
filesession_store_retries_total{op="read"} 2
filesession_store_retries_total{op="write"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "filesession_store_retries_total"); err != nil {
		t.Error(err)
	}
}

// bare is a Store with no optional interface.
type bare struct{ filesession.Store }

func TestInstrumentKeepsOptionalInterfaces(t *testing.T) {
	c := metrics.New(metrics.Options{})
	clock := storetest.NewClock(time.Now())
	fs, _ := fileStore(t, c, clock, 0)
	mem := memstore.New()
	for _, tc := range []struct {
		name        string
		store       filesession.Store
		lister      bool
		reaper      bool
		ttler       bool
		underlyingT time.Duration
	}{
		{"filestore", fs, true, true, true, filestore.DefaultTTL},
		{"memstore", mem, true, true, true, mem.TTL()},
		{"bare", bare{mem}, false, false, false, 0},
	} {
		s := c.Instrument(tc.store)
		_, l := s.(filesession.Lister)
		_, r := s.(filesession.Reaper)
		tt, ttl := s.(filesession.TTLer)
		if l != tc.lister || r != tc.reaper || ttl != tc.ttler {
			t.Errorf("%s: instrumented is Lister %v, Reaper %v, TTLer %v; want %v, %v, %v", tc.name, l, r, ttl, tc.lister, tc.reaper, tc.ttler)
		}
		if ttl && tt.TTL() != tc.underlyingT {
			t.Errorf("%s: TTL = %v, want %v", tc.name, tt.TTL(), tc.underlyingT)
		}
		if u, ok := s.(interface{ Unwrap() filesession.Store }); !ok || u.Unwrap() != tc.store {
			t.Errorf("%s: Unwrap does not return the store", tc.name)
		}
	}
	// The instrumented store is still a correct Store.
	storetest.Run(t, func(t *testing.T, now func() time.Time) filesession.Store {
		s, err := filestore.Open(filestore.Options{Path: t.TempDir(), Now: now, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return metrics.New(metrics.Options{}).Instrument(s)
	})
}

func TestHandlerServesTextFormat(t *testing.T) {
	c := metrics.New(metrics.Options{ConstLabels: map[string]string{"store": "file"}})
	c.Reaped()
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`filesession_store_reaped_total{store="file"} 1`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}
