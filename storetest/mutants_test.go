package storetest_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/memstore"
	"github.com/filesession/filesession/storetest"
)

// The suite is itself tested by mutation: each mutant is memstore with one
// bug a real store could have, and the suite must fail it in the subtest
// named for that bug. The mutants run in a child process (this test binary
// re-executed), since a failing Run would fail the test that ran it.

const mutantEnv = "STORETEST_MUTANT"

// A mutant wraps a memstore (whose clock is the suite's now) in a bug.
type mutant struct {
	name     string
	wantFail string // a subtest of Run that must fail
	store    func(s *memstore.Store, now func() time.Time) filesession.Store
}

var mutants = []mutant{
	{"OverwritingSave", "Save/MergesConcurrentRequests", func(s *memstore.Store, _ func() time.Time) filesession.Store {
		return overwritingSave{s}
	}},
	{"ResurrectingSave", "Delete/NoResurrection/Save", func(s *memstore.Store, _ func() time.Time) filesession.Store {
		return resurrectingSave{s}
	}},
	{"ResurrectingTouch", "Touch/MissingID", func(s *memstore.Store, _ func() time.Time) filesession.Store {
		return resurrectingTouch{s}
	}},
	{"LiveAtExpiresAt", "Expiry/IdleBoundary", func(s *memstore.Store, now func() time.Time) filesession.Store {
		s.Now = func() time.Time { return now().Add(-time.Millisecond) }
		return s
	}},
	{"HTMLEscapingValues", "RoundTrip/AllValueKinds", func(s *memstore.Store, _ func() time.Time) filesession.Store {
		return htmlEscaping{s}
	}},
	{"SecondPrecision", "RoundTrip/AllValueKinds", func(s *memstore.Store, _ func() time.Time) filesession.Store {
		return secondPrecision{s}
	}},
	{"EpochForNoDeadline", "RoundTrip/NoDeadline", func(s *memstore.Store, _ func() time.Time) filesession.Store {
		return epochDeadline{s}
	}},
	{"AliasingLoad", "RoundTrip/LoadReturnsCopy", func(s *memstore.Store, _ func() time.Time) filesession.Store {
		return &aliasingLoad{Store: s}
	}},
	{"NoIDValidation", "InvalidID/Create/DotDot", func(s *memstore.Store, _ func() time.Time) filesession.Store {
		return noValidation{s}
	}},
	{"UpdateStoresOnError", "Update/FnErrorStoresNothing", func(s *memstore.Store, _ func() time.Time) filesession.Store {
		return updateOnError{s}
	}},
	{"LostUpdate", "Concurrency/UpdateCounter", func(s *memstore.Store, _ func() time.Time) filesession.Store {
		return lostUpdate{s}
	}},
	{"RenewKeepsOld", "Renew/MovesSession", func(s *memstore.Store, _ func() time.Time) filesession.Store {
		return renewKeepsOld{s}
	}},
	{"ReapEverything", "Reaper/RemovesExactlyTheExpired", func(s *memstore.Store, _ func() time.Time) filesession.Store {
		return reapEverything{s}
	}},
	{"ListSkipsExpired", "Lister/EverySessionWithItsRecord", func(s *memstore.Store, now func() time.Time) filesession.Store {
		return listLive{s, now}
	}},
	{"CancelAsNotFound", "CancelledContext/Load", func(s *memstore.Store, _ func() time.Time) filesession.Store {
		return cancelAsNotFound{s}
	}},
}

func TestSuiteCatchesMutants(t *testing.T) {
	// The control run, unmutated, must pass: it proves the harness works.
	for _, m := range append([]mutant{{name: "Control"}}, mutants...) {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestMutantHelper$", "-test.count=1")
			cmd.Env = append(os.Environ(), mutantEnv+"="+m.name)
			out, err := cmd.CombinedOutput()
			if m.name == "Control" {
				if err != nil {
					t.Fatalf("unmutated memstore failed the suite: %v\n%s", err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("the suite passed mutant %s; want it to fail %s", m.name, m.wantFail)
			}
			if !strings.Contains(string(out), "--- FAIL: TestMutantHelper/"+m.wantFail+" ") {
				t.Errorf("mutant %s: want subtest %s to fail; output:\n%s", m.name, m.wantFail, out)
			}
		})
	}
}

// TestMutantHelper runs the suite against the mutant named in the
// environment; without it, it does nothing.
func TestMutantHelper(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		return
	}
	wrap := func(s *memstore.Store, _ func() time.Time) filesession.Store { return s }
	if name != "Control" {
		wrap = nil
		for _, m := range mutants {
			if m.name == name {
				wrap = m.store
			}
		}
		if wrap == nil {
			t.Fatalf("unknown mutant %q", name)
		}
	}
	storetest.Run(t, func(t *testing.T, now func() time.Time) filesession.Store {
		s := memstore.New()
		s.Now = now
		return wrap(s, now)
	})
}

type overwritingSave struct{ *memstore.Store }

func (s overwritingSave) Save(ctx context.Context, id string, c filesession.Change) error {
	return s.Update(ctx, id, func(r *filesession.Record) error {
		r.Values = c.Set // the request's keys only
		return nil
	})
}

type resurrectingSave struct{ *memstore.Store }

func (s resurrectingSave) Save(ctx context.Context, id string, c filesession.Change) error {
	err := s.Store.Save(ctx, id, c)
	if errors.Is(err, filesession.ErrNotFound) && filesession.ValidID(id, filesession.IDLength) {
		var r filesession.Record
		c.Apply(&r)
		return s.Create(ctx, id, r)
	}
	return err
}

type resurrectingTouch struct{ *memstore.Store }

func (s resurrectingTouch) Touch(ctx context.Context, id string, at, expires time.Time) error {
	err := s.Store.Touch(ctx, id, at, expires)
	if errors.Is(err, filesession.ErrNotFound) && filesession.ValidID(id, filesession.IDLength) {
		return s.Create(ctx, id, filesession.Record{LastAccess: at, IdleTimeout: expires.Sub(at)})
	}
	return err
}

// htmlEscaping re-encodes values with json.Marshal, as a store that
// embeds them in a document with the default encoder would.
type htmlEscaping struct{ *memstore.Store }

func reencode(v map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(v))
	for k, raw := range v {
		b, err := json.Marshal(raw)
		if err != nil {
			panic(err)
		}
		out[k] = b
	}
	return out
}

func (s htmlEscaping) Create(ctx context.Context, id string, r filesession.Record) error {
	r.Values = reencode(r.Values)
	return s.Store.Create(ctx, id, r)
}

type secondPrecision struct{ *memstore.Store }

func (s secondPrecision) Create(ctx context.Context, id string, r filesession.Record) error {
	r.Created = r.Created.Truncate(time.Second)
	r.LastAccess = r.LastAccess.Truncate(time.Second)
	r.Deadline = r.Deadline.Truncate(time.Second)
	return s.Store.Create(ctx, id, r)
}

type epochDeadline struct{ *memstore.Store }

func (s epochDeadline) Load(ctx context.Context, id string) (filesession.Record, error) {
	r, err := s.Store.Load(ctx, id)
	if err == nil && r.Deadline.IsZero() {
		r.Deadline = time.UnixMilli(0)
	}
	return r, err
}

// aliasingLoad hands out the same map on every Load until the next write.
type aliasingLoad struct {
	*memstore.Store
	mu    sync.Mutex
	cache map[string]filesession.Record
}

func (s *aliasingLoad) Load(ctx context.Context, id string) (filesession.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.cache[id]; ok {
		return r, nil
	}
	r, err := s.Store.Load(ctx, id)
	if err == nil {
		if s.cache == nil {
			s.cache = map[string]filesession.Record{}
		}
		s.cache[id] = r
	}
	return r, err
}

func (s *aliasingLoad) forget(id string) {
	s.mu.Lock()
	delete(s.cache, id)
	s.mu.Unlock()
}

func (s *aliasingLoad) Save(ctx context.Context, id string, c filesession.Change) error {
	s.forget(id)
	return s.Store.Save(ctx, id, c)
}

func (s *aliasingLoad) Touch(ctx context.Context, id string, at, exp time.Time) error {
	s.forget(id)
	return s.Store.Touch(ctx, id, at, exp)
}

func (s *aliasingLoad) Update(ctx context.Context, id string, fn func(*filesession.Record) error) error {
	s.forget(id)
	return s.Store.Update(ctx, id, fn)
}

func (s *aliasingLoad) Renew(ctx context.Context, oldID, newID string, c filesession.Change) error {
	s.forget(oldID)
	return s.Store.Renew(ctx, oldID, newID, c)
}

func (s *aliasingLoad) Delete(ctx context.Context, id string) error {
	s.forget(id)
	return s.Store.Delete(ctx, id)
}

// noValidation maps any ID onto a valid one, as a store that hashes IDs
// into file names without checking them first would.
type noValidation struct{ *memstore.Store }

func mapID(id string) string {
	if filesession.ValidID(id, filesession.IDLength) {
		return id
	}
	h := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func (s noValidation) Load(ctx context.Context, id string) (filesession.Record, error) {
	return s.Store.Load(ctx, mapID(id))
}

func (s noValidation) Create(ctx context.Context, id string, r filesession.Record) error {
	return s.Store.Create(ctx, mapID(id), r)
}

type updateOnError struct{ *memstore.Store }

func (s updateOnError) Update(ctx context.Context, id string, fn func(*filesession.Record) error) error {
	var fnErr error
	err := s.Store.Update(ctx, id, func(r *filesession.Record) error {
		fnErr = fn(r)
		return nil
	})
	if err != nil {
		return err
	}
	return fnErr
}

// lostUpdate reads, runs fn, and writes back without holding a lock.
type lostUpdate struct{ *memstore.Store }

func (s lostUpdate) Update(ctx context.Context, id string, fn func(*filesession.Record) error) error {
	r, err := s.Load(ctx, id)
	if err != nil {
		return err
	}
	if err := fn(&r); err != nil {
		return err
	}
	runtime.Gosched() // widen the window, as a network round trip would
	return s.Save(ctx, id, filesession.Change{Set: r.Values, At: r.LastAccess})
}

type renewKeepsOld struct{ *memstore.Store }

func (s renewKeepsOld) Renew(ctx context.Context, oldID, newID string, c filesession.Change) error {
	r, err := s.Load(ctx, oldID)
	if err != nil {
		return err
	}
	c.Apply(&r)
	return s.Create(ctx, newID, r)
}

type reapEverything struct{ *memstore.Store }

func (s reapEverything) Reap(ctx context.Context) (int, error) {
	n := 0
	var ids []string
	if err := s.List(ctx, func(id string, _ filesession.Record) error {
		ids = append(ids, id)
		return nil
	}); err != nil {
		return 0, err
	}
	for _, id := range ids {
		if err := s.Delete(ctx, id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

type listLive struct {
	*memstore.Store
	now func() time.Time
}

func (s listLive) List(ctx context.Context, fn func(string, filesession.Record) error) error {
	return s.Store.List(ctx, func(id string, r filesession.Record) error {
		if r.Expired(s.now()) {
			return nil
		}
		return fn(id, r)
	})
}

type cancelAsNotFound struct{ *memstore.Store }

func (s cancelAsNotFound) Load(ctx context.Context, id string) (filesession.Record, error) {
	if ctx.Err() != nil {
		return filesession.Record{}, filesession.ErrNotFound
	}
	return s.Store.Load(ctx, id)
}
