package memstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/memstore"
	"github.com/filesession/filesession/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) filesession.Store {
		s := memstore.New()
		s.Now = now
		return s
	})
}

// The zero Store works like New's, with time.Now and a 24-hour TTL.
func TestZeroValue(t *testing.T) {
	var s memstore.Store
	ctx := t.Context()
	if got := s.TTL(); got != 24*time.Hour {
		t.Errorf("TTL() = %v, want 24h", got)
	}
	id := filesession.NewID()
	now := time.Now()
	if err := s.Create(ctx, id, filesession.Record{Created: now, LastAccess: now}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	r, err := s.Load(ctx, id)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if r.IdleTimeout != memstore.DefaultTTL {
		t.Errorf("IdleTimeout = %v, want DefaultTTL %v", r.IdleTimeout, memstore.DefaultTTL)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestDefaultTTLField(t *testing.T) {
	clock := storetest.NewClock(time.Now())
	s := &memstore.Store{Now: clock.Now, DefaultTTL: 5 * time.Minute}
	if got := s.TTL(); got != 5*time.Minute {
		t.Fatalf("TTL() = %v, want 5m", got)
	}
	id := filesession.NewID()
	now := clock.Now()
	if err := s.Create(t.Context(), id, filesession.Record{Created: now, LastAccess: now}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Minute)
	if _, err := s.Load(t.Context(), id); !errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("Load after DefaultTTL: %v, want ErrNotFound", err)
	}
}

// Expired records are removed when found, so they stop being listed.
func TestExpiredRemovedLazily(t *testing.T) {
	clock := storetest.NewClock(time.Now())
	s := memstore.New()
	s.Now = clock.Now
	ctx := t.Context()
	id := filesession.NewID()
	now := clock.Now()
	if err := s.Create(ctx, id, filesession.Record{Created: now, LastAccess: now, IdleTimeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if _, err := s.Load(ctx, id); !errors.Is(err, filesession.ErrNotFound) {
		t.Fatalf("Load of expired: %v", err)
	}
	n := 0
	if err := s.List(ctx, func(string, filesession.Record) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("List after a Load found the record expired: %d sessions, want 0", n)
	}
}

// A cancelled context is refused with an error matching context.Canceled,
// and wrapping keeps it testable.
func TestCancelledContextRefused(t *testing.T) {
	s := memstore.New()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Load(ctx, filesession.NewID())
	if !errors.Is(err, context.Canceled) || errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("Load with a cancelled context: %v, want context.Canceled only", err)
	}
}

// Update returns fn's error itself, not a wrapping of it.
func TestUpdateReturnsFnError(t *testing.T) {
	s := memstore.New()
	ctx := t.Context()
	id := filesession.NewID()
	now := time.Now()
	if err := s.Create(ctx, id, filesession.Record{Created: now, LastAccess: now}); err != nil {
		t.Fatal(err)
	}
	want := errors.New("boom")
	if err := s.Update(ctx, id, func(*filesession.Record) error { return want }); err != want {
		t.Errorf("Update = %v, want fn's error itself", err)
	}
}

// benchValues is a typical small session: a user, a CSRF token, a flash.
func benchValues() map[string]json.RawMessage {
	return map[string]json.RawMessage{
		"user":  json.RawMessage(`{"id":1234,"name":"Zoë","roles":["admin","dev"]}`),
		"csrf":  json.RawMessage(`"q8VvY2x1c2l2ZWx5LXJhbmRvbS10b2tlbg"`),
		"flash": json.RawMessage(`["saved"]`),
	}
}

func BenchmarkLoad(b *testing.B) {
	s := memstore.New()
	ctx := b.Context()
	id := filesession.NewID()
	now := time.Now()
	if err := s.Create(ctx, id, filesession.Record{Created: now, LastAccess: now, Values: benchValues()}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Load(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSave(b *testing.B) {
	s := memstore.New()
	ctx := b.Context()
	id := filesession.NewID()
	now := time.Now()
	if err := s.Create(ctx, id, filesession.Record{Created: now, LastAccess: now, Values: benchValues()}); err != nil {
		b.Fatal(err)
	}
	c := filesession.Change{Set: map[string]json.RawMessage{"flash": json.RawMessage(`["again"]`)}}
	b.ReportAllocs()
	for b.Loop() {
		c.At = time.Now()
		if err := s.Save(ctx, id, c); err != nil {
			b.Fatal(err)
		}
	}
}
