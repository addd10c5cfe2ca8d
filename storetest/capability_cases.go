package storetest

import (
	"testing"
	"time"

	"github.com/filesession/filesession"
)

func lister(e *env) filesession.Lister {
	e.t.Helper()
	l, ok := e.s.(filesession.Lister)
	if !ok {
		e.t.Skipf("%T does not implement filesession.Lister", e.s)
	}
	return l
}

func reaper(e *env) filesession.Reaper {
	e.t.Helper()
	r, ok := e.s.(filesession.Reaper)
	if !ok {
		e.t.Skipf("%T does not implement filesession.Reaper", e.s)
	}
	return r
}

func testLister(t *testing.T, su *suite) {
	su.run(t, "Empty", func(e *env) {
		l := lister(e)
		err := l.List(e.ctx, func(id string, _ filesession.Record) error {
			e.t.Errorf("List of an empty store called fn")
			return nil
		})
		e.wantOK("List", err)
	})

	su.run(t, "EverySessionWithItsRecord", func(e *env) {
		l := lister(e)
		want := map[string]filesession.Record{}
		expired := e.record(vals("who", `"expired"`))
		expired.IdleTimeout = 10 * time.Minute
		expiredID := e.create(expired)
		want[expiredID] = expired
		e.clock.Advance(11 * time.Minute)
		rt := roundTripRecord(e)
		want[e.create(rt)] = rt
		for range 3 {
			id, r := e.createValues("who", `"plain"`)
			want[id] = r
		}
		saved, r := e.createValues("who", `"saved"`)
		c := filesession.Change{Set: vals("more", "1"), At: e.clock.Advance(ms)}
		e.wantOK("Save", e.s.Save(e.ctx, saved, c))
		c.Apply(&r)
		want[saved] = r
		deleted, _ := e.createValues("who", `"deleted"`)
		e.wantOK("Delete", e.s.Delete(e.ctx, deleted))

		seen := map[string]bool{}
		err := l.List(e.ctx, func(id string, got filesession.Record) error {
			if seen[id] {
				e.t.Errorf("List gave session %s twice", short([]string{id})[0])
			}
			seen[id] = true
			w, ok := want[id]
			switch {
			case id == deleted:
				e.t.Error("List gave a deleted session")
			case !ok:
				e.t.Errorf("List gave an unknown session %s", short([]string{id})[0])
			default:
				for _, d := range diffRecord(got, w) {
					e.t.Errorf("listed %q session: %s", w.Values["who"], d)
				}
			}
			return nil
		})
		e.wantOK("List", err)
		for id, w := range want {
			if !seen[id] {
				e.t.Errorf("List missed the %s session", w.Values["who"])
			}
		}
		if !seen[expiredID] {
			e.t.Error("List must include expired sessions not yet reaped (callers check ExpiresAt)")
		}
	})

	su.run(t, "FnErrorStops", func(e *env) {
		l := lister(e)
		for range 3 {
			e.createValues("a", "1")
		}
		calls := 0
		err := l.List(e.ctx, func(string, filesession.Record) error {
			calls++
			return errFn
		})
		e.wantErr("List whose fn fails", err, errFn)
		if calls != 1 {
			e.t.Errorf("List called fn %d times after it failed, want it to stop after 1", calls)
		}
	})

	// Per-user revocation deletes sessions from inside List's callback.
	su.run(t, "FnCanDelete", func(e *env) {
		l := lister(e)
		keep, _ := e.createValues("user", `"bob"`)
		var revoke []string
		for range 3 {
			id, _ := e.createValues("user", `"alice"`)
			revoke = append(revoke, id)
		}
		err := l.List(e.ctx, func(id string, r filesession.Record) error {
			if string(r.Values["user"]) == `"alice"` {
				return e.s.Delete(e.ctx, id)
			}
			return nil
		})
		e.wantOK("List deleting from fn", err)
		for _, id := range revoke {
			e.wantNotFound(id, "of a session deleted from List's fn")
		}
		e.wantValues(keep, "user", `"bob"`)
		e.wantListed("after deleting from List's fn", keep)
	})
}

func testReaper(t *testing.T, su *suite) {
	su.run(t, "Empty", func(e *env) {
		n, err := reaper(e).Reap(e.ctx)
		e.wantOK("Reap", err)
		if n != 0 {
			e.t.Errorf("Reap of an empty store = %d, want 0", n)
		}
	})

	su.run(t, "RemovesExactlyTheExpired", func(e *env) {
		rp := reaper(e)
		mk := func(who string, idle time.Duration, deadline time.Duration) (string, filesession.Record) {
			r := e.record(vals("who", `"`+who+`"`))
			r.IdleTimeout = idle
			if deadline > 0 {
				r.Deadline = r.LastAccess.Add(deadline)
			}
			return e.create(r), r
		}
		idleGone, _ := mk("idle-expired", 10*time.Minute, 0)
		deadlineGone, _ := mk("deadline-expired", time.Hour, 11*time.Minute)
		touched, tr := mk("touched", 10*time.Minute, 0)
		saved, _ := mk("saved", 10*time.Minute, 0)
		live, _ := mk("live", time.Hour, 0)
		boundary, _ := mk("boundary", 12*time.Minute, 0) // expires exactly at reap time

		// Touched and saved 8 minutes in, they live until 18 minutes in,
		// although they would have expired at 10 minutes.
		at := e.clock.Advance(8 * time.Minute)
		e.wantOK("Touch", e.s.Touch(e.ctx, touched, at, expiresAt(tr, at)))
		e.wantOK("Save", e.s.Save(e.ctx, saved, filesession.Change{Set: vals("n", "1"), At: at}))
		e.clock.Advance(4 * time.Minute) // 12 minutes in

		n, err := rp.Reap(e.ctx)
		e.wantOK("Reap", err)
		if n != 3 {
			e.t.Errorf("Reap removed %d sessions, want 3 (idle, deadline and boundary expired)", n)
		}
		for _, id := range []string{idleGone, deadlineGone, boundary} {
			e.wantNotFound(id, "of an expired session after Reap")
		}
		e.wantValues(touched, "who", `"touched"`)
		e.wantValues(saved, "who", `"saved"`, "n", "1")
		e.wantValues(live, "who", `"live"`)
		e.wantListed("after Reap", touched, saved, live)

		n, err = rp.Reap(e.ctx)
		e.wantOK("second Reap", err)
		if n != 0 {
			e.t.Errorf("second Reap removed %d sessions, want 0", n)
		}
		e.wantValues(live, "who", `"live"`)
	})

	su.run(t, "ThenNoResurrection", func(e *env) {
		rp := reaper(e)
		id, r := e.createValues("a", "1")
		e.clock.Advance(r.IdleTimeout)
		if _, err := rp.Reap(e.ctx); err != nil {
			e.t.Fatalf("Reap: %v", err)
		}
		for _, op := range resurrectors {
			err := op.call(e, id, r, new(bool))
			e.wantErr(op.name+" after Reap", err, filesession.ErrNotFound)
		}
		e.wantNotFound(id, "after Reap and every write")
		e.wantListed("after Reap and every write")
	})
}

func testTTLer(t *testing.T, su *suite) {
	su.run(t, "DefaultIdleTimeout", func(e *env) {
		tt, ok := e.s.(filesession.TTLer)
		if !ok {
			e.t.Skipf("%T does not implement filesession.TTLer", e.s)
		}
		ttl := tt.TTL()
		if ttl <= 0 {
			e.t.Fatalf("TTL() = %v, want > 0", ttl)
		}
		r := e.record(vals("a", "1"))
		r.IdleTimeout = 0
		id := e.create(r)
		if got := e.load(id); got.IdleTimeout != ttl {
			e.t.Errorf("IdleTimeout of a record created without one = %v, want TTL() %v", got.IdleTimeout, ttl)
		}
		e.clock.Advance(ttl - ms)
		e.wantValues(id, "a", "1")
		e.clock.Advance(ms)
		e.wantNotFound(id, "after TTL() without activity")
	})
}
