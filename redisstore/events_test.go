package redisstore

import (
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/filesession/filesession"
)

// countingEvents records the events a store reports.
type countingEvents struct {
	mu          sync.Mutex
	retried     map[string]int
	quarantined []error
	other       int
}

func (e *countingEvents) Retried(op string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.retried == nil {
		e.retried = map[string]int{}
	}
	e.retried[op]++
}
func (e *countingEvents) LockWaited(time.Duration, error) { e.mu.Lock(); e.other++; e.mu.Unlock() }
func (e *countingEvents) Quarantined(cause error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.quarantined = append(e.quarantined, cause)
}
func (e *countingEvents) Reaped() { e.mu.Lock(); e.other++; e.mu.Unlock() }
func (e *countingEvents) ReapDone(int, int, time.Duration, error) {
	e.mu.Lock()
	e.other++
	e.mu.Unlock()
}

var _ filesession.StoreEvents = (*countingEvents)(nil)

// TestEvents checks that Updates that lose their compare-and-swap report a
// retry and a corrupt record its quarantine, and that nothing else is
// reported.
func TestEvents(t *testing.T) {
	ctx := t.Context()
	ev := &countingEvents{}
	s := newTestStore(t, Options{Events: ev})
	id := filesession.NewID()
	if err := s.Create(ctx, id, rec(time.Now(), "n", "0")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 10 {
				err := s.Update(ctx, id, func(r *filesession.Record) error {
					n, _ := strconv.Atoi(string(r.Values["n"]))
					r.Values["n"] = json.RawMessage(strconv.Itoa(n + 1))
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if r, _ := s.Load(ctx, id); string(r.Values["n"]) != "160" {
		t.Fatalf("counter = %s, want 160", r.Values["n"])
	}
	// A Save between Update's read and its write makes one conflict for
	// certain, however the goroutines above were scheduled; fn runs again
	// and sees the saved key.
	calls := 0
	err := s.Update(ctx, id, func(r *filesession.Record) error {
		calls++
		if calls == 1 {
			return s.Save(ctx, id, filesession.Change{Set: map[string]json.RawMessage{"s": json.RawMessage("1")}, At: time.Now()})
		}
		if string(r.Values["s"]) != "1" {
			t.Errorf("Update's second run did not see the Save that made the first one conflict")
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("Update raced by a Save: %v after %d runs of fn, want success after 2", err, calls)
	}
	bad := filesession.NewID()
	s.client.HSet(ctx, s.Key(bad), "__lastAccess", "x")
	if _, err := s.Load(ctx, bad); !errors.Is(err, filesession.ErrCorrupt) {
		t.Fatalf("Load of a corrupt record: %v", err)
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.retried["update"] == 0 {
		t.Errorf("16 contending Updates reported no retries: %v", ev.retried)
	}
	t.Logf("retries reported: %v", ev.retried)
	if len(ev.quarantined) != 1 {
		t.Errorf("quarantines reported: %d, want 1", len(ev.quarantined))
	}
	if ev.other != 0 {
		t.Errorf("%d lock or reap events from a store without locks or reaper", ev.other)
	}
}
