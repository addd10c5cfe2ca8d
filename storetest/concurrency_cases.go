package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/filesession/filesession"
)

const (
	goroutines = 32
	increments = 20
)

func testConcurrency(t *testing.T, su *suite) {
	su.run(t, "SavesOfDistinctKeys", func(e *env) {
		id, _ := e.createValues("base", "0")
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range goroutines {
			wg.Go(func() {
				<-start
				k := fmt.Sprintf("k%02d", i)
				if err := e.s.Save(e.ctx, id, filesession.Change{Set: vals(k, strconv.Itoa(i)), At: e.clock.Now()}); err != nil {
					e.t.Errorf("Save %s: %v", k, err)
				}
			})
		}
		close(start)
		wg.Wait()
		want := []string{"base", "0"}
		for i := range goroutines {
			want = append(want, fmt.Sprintf("k%02d", i), strconv.Itoa(i))
		}
		e.wantValues(id, want...)
	})

	su.run(t, "UpdateCounter", func(e *env) {
		id, _ := e.createValues("n", "0")
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range goroutines {
			wg.Go(func() {
				<-start
				for range increments {
					err := e.s.Update(e.ctx, id, func(r *filesession.Record) error {
						var n int
						if err := json.Unmarshal(r.Values["n"], &n); err != nil {
							return fmt.Errorf("counter %q: %w", r.Values["n"], err)
						}
						r.Values["n"] = json.RawMessage(strconv.Itoa(n + 1))
						return nil
					})
					if err != nil {
						e.t.Errorf("Update: %v", err)
						return
					}
				}
			})
		}
		close(start)
		wg.Wait()
		e.wantValues(id, "n", strconv.Itoa(goroutines*increments))
	})

	// Saves race a Delete (a logout in another request): each Save either
	// lands before the Delete or fails with ErrNotFound, and none lands
	// after it, so the session is gone at the end.
	su.run(t, "SavesRacingDelete", func(e *env) {
		id, _ := e.createValues("a", "1")
		other, _ := e.createValues("b", "2")
		saves := runRacingSaves(e, id, func() {
			if err := e.s.Delete(e.ctx, id); err != nil {
				e.t.Errorf("Delete: %v", err) // not Fatal: this runs in a goroutine
			}
		})
		for k, err := range saves {
			if err != nil && !errors.Is(err, filesession.ErrNotFound) {
				e.t.Errorf("Save %s racing Delete: %v, want nil or ErrNotFound", k, err)
			}
		}
		e.wantNotFound(id, "after Saves racing a Delete")
		e.wantValues(other, "b", "2")
		e.wantListed("after Saves racing a Delete", other)
	})

	// Saves race a Renew (a login): every Save that succeeded is in the
	// new session, and no Save that failed is.
	su.run(t, "SavesRacingRenew", func(e *env) {
		oldID, _ := e.createValues("a", "1")
		newID := e.newID()
		saves := runRacingSaves(e, oldID, func() {
			if err := e.s.Renew(e.ctx, oldID, newID, filesession.Change{Set: vals("user", `"alice"`), At: e.clock.Now()}); err != nil {
				e.t.Errorf("Renew: %v", err) // not Fatal: this runs in a goroutine
			}
		})
		if e.t.Failed() {
			return
		}
		e.wantNotFound(oldID, "of the old ID after Saves racing a Renew")
		got := e.load(newID)
		if string(got.Values["a"]) != "1" || string(got.Values["user"]) != `"alice"` {
			e.t.Errorf("new session's values a=%s user=%s, want a=1 user=\"alice\"", got.Values["a"], got.Values["user"])
		}
		for k, err := range saves {
			_, present := got.Values[k]
			switch {
			case err == nil && !present:
				e.t.Errorf("Save %s succeeded before the Renew, but the new session lacks it", k)
			case errors.Is(err, filesession.ErrNotFound) && present:
				e.t.Errorf("Save %s failed with ErrNotFound, but the new session has it", k)
			case err != nil && !errors.Is(err, filesession.ErrNotFound):
				e.t.Errorf("Save %s racing Renew: %v, want nil or ErrNotFound", k, err)
			}
		}
		e.wantListed("after Saves racing a Renew", newID)
	})
}

// runRacingSaves runs 16 goroutines of 4 Saves of distinct keys on id, and
// op once a quarter of the Saves have succeeded (or all have been tried),
// and returns each key's Save error.
func runRacingSaves(e *env, id string, op func()) map[string]error {
	const workers, each = 16, 4
	var (
		mu      sync.Mutex
		results = make(map[string]error, workers*each)
		ok      atomic.Int32
		tried   atomic.Int32
		quarter = make(chan struct{})
		once    sync.Once
		wg      sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for j := range each {
				k := fmt.Sprintf("w%02d_%d", w, j)
				err := e.s.Save(e.ctx, id, filesession.Change{Set: vals(k, "true"), At: e.clock.Now()})
				mu.Lock()
				results[k] = err
				mu.Unlock()
				if err == nil && ok.Add(1) == workers*each/4 {
					once.Do(func() { close(quarter) })
				}
				if tried.Add(1) == workers*each {
					once.Do(func() { close(quarter) })
				}
			}
		})
	}
	wg.Go(func() {
		<-quarter
		op()
	})
	wg.Wait()
	return results
}
