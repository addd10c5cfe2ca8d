package storetest

import (
	"testing"
	"time"

	"github.com/filesession/filesession"
)

// expiryKinds make a session that expires exactly at exp, one way or the
// other.
var expiryKinds = []struct {
	name string
	make func(e *env) (r filesession.Record, exp time.Time)
}{
	{"Idle", func(e *env) (filesession.Record, time.Time) {
		r := e.record(vals("a", "1"))
		return r, r.LastAccess.Add(r.IdleTimeout)
	}},
	{"Deadline", func(e *env) (filesession.Record, time.Time) {
		r := e.record(vals("a", "1"))
		r.Deadline = r.LastAccess.Add(10*time.Minute + 250*ms) // before the idle expiry
		return r, r.Deadline
	}},
}

func testExpiry(t *testing.T, su *suite) {
	// Record.Expired: a record is live strictly before its ExpiresAt.
	for _, k := range expiryKinds {
		su.run(t, k.name+"Boundary", func(e *env) {
			r, exp := k.make(e)
			if !r.ExpiresAt().Equal(exp) {
				e.t.Fatalf("suite bug: ExpiresAt %s, want %s", fmtTime(r.ExpiresAt()), fmtTime(exp))
			}
			id := e.create(r)
			e.clock.Advance(exp.Sub(e.clock.Now()) - ms)
			if _, err := e.s.Load(e.ctx, id); err != nil {
				e.t.Fatalf("Load 1ms before ExpiresAt: %v, want the session", err)
			}
			e.clock.Advance(ms)
			e.wantNotFound(id, "exactly at ExpiresAt")
			e.clock.Advance(time.Hour)
			e.wantNotFound(id, "an hour after ExpiresAt")
		})
	}

	// An expired session is gone for every operation, and none of them
	// brings it back.
	t.Run("ExpiredIsNotFound", func(t *testing.T) {
		ops := append([]struct {
			name string
			call func(e *env, id string, r filesession.Record, called *bool) error
		}{{"Load", func(e *env, id string, _ filesession.Record, _ *bool) error {
			_, err := e.s.Load(e.ctx, id)
			return err
		}}}, resurrectors...)
		for _, op := range ops {
			for _, k := range expiryKinds {
				su.run(t, op.name+"/"+k.name, func(e *env) {
					r, exp := k.make(e)
					id := e.create(r)
					e.clock.Advance(exp.Sub(e.clock.Now()))
					err := op.call(e, id, r, new(bool))
					e.wantErr(op.name+" of an expired session", err, filesession.ErrNotFound)
					e.wantNotFound(id, "after "+op.name+" of an expired session")
					// A store may still list the expired record, but nothing
					// new may appear (a renewal target, say).
					if l, ok := e.s.(filesession.Lister); ok {
						_ = l.List(e.ctx, func(got string, _ filesession.Record) error {
							if got != id {
								e.t.Errorf("%s of an expired session left a new session behind", op.name)
							}
							return nil
						})
					}
				})
			}
		}
	})

	su.run(t, "PerSessionIdleTimeout", func(e *env) {
		short := e.record(vals("who", `"short"`))
		short.IdleTimeout = 10 * time.Minute
		long := e.record(vals("who", `"long"`))
		long.IdleTimeout = 90 * time.Minute
		shortID, longID := e.create(short), e.create(long)
		midID, _ := e.createValues("who", `"mid"`) // idle = 30 minutes
		e.clock.Advance(10 * time.Minute)
		e.wantNotFound(shortID, "of the 10-minute session after 10 minutes")
		e.wantValues(midID, "who", `"mid"`)
		e.wantValues(longID, "who", `"long"`)
		e.clock.Advance(20 * time.Minute)
		e.wantNotFound(midID, "of the 30-minute session after 30 minutes")
		e.wantValues(longID, "who", `"long"`)
		e.clock.Advance(60*time.Minute - ms)
		e.wantValues(longID, "who", `"long"`)
		e.clock.Advance(ms)
		e.wantNotFound(longID, "of the 90-minute session after 90 minutes")
	})

	su.run(t, "ActivityDoesNotPassDeadline", func(e *env) {
		r := e.record(vals("a", "1"))
		r.Deadline = r.LastAccess.Add(time.Hour)
		id := e.create(r)
		for range 5 {
			at := e.clock.Advance(11 * time.Minute)
			e.wantOK("Save", e.s.Save(e.ctx, id, filesession.Change{Set: vals("a", "2"), At: at}))
		}
		// 55 minutes in, saved 11 minutes apart: live until the deadline.
		e.clock.Advance(5*time.Minute - ms)
		e.wantValues(id, "a", "2")
		e.clock.Advance(ms)
		e.wantNotFound(id, "at its deadline despite recent activity")
	})

	su.run(t, "DeadlineMovedByChange", func(e *env) {
		r := e.record(vals("a", "1"))
		r.Deadline = r.LastAccess.Add(10 * time.Minute)
		id := e.create(r)
		e.wantOK("Save", e.s.Save(e.ctx, id, filesession.Change{At: r.LastAccess, Deadline: r.LastAccess.Add(20 * time.Minute)}))
		e.clock.Advance(15 * time.Minute)
		e.wantValues(id, "a", "1")
		e.clock.Advance(5 * time.Minute)
		e.wantNotFound(id, "at the deadline set by Save")
	})
}
