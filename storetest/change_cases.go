package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/filesession/filesession"
)

func testTouch(t *testing.T, su *suite) {
	su.run(t, "ExtendsIdleExpiry", func(e *env) {
		id, r := e.createValues("a", "1")
		at := e.clock.Advance(20 * time.Minute)
		e.wantOK("Touch", e.s.Touch(e.ctx, id, at, expiresAt(r, at)))
		e.clock.Advance(20 * time.Minute) // past the original expiry, within the new one
		got := e.load(id)
		if !sameTime(got.LastAccess, at) {
			e.t.Errorf("LastAccess = %s, want the Touch time %s", fmtTime(got.LastAccess), fmtTime(at))
		}
	})

	su.run(t, "KeepsValuesAndMetadata", func(e *env) {
		want := roundTripRecord(e)
		id := e.create(want)
		at := e.clock.Advance(time.Minute)
		e.wantOK("Touch", e.s.Touch(e.ctx, id, at, expiresAt(want, at)))
		want.LastAccess = at
		e.wantRecord(id, want)
	})

	su.run(t, "CappedByDeadline", func(e *env) {
		r := e.record(vals("a", "1"))
		r.Deadline = r.LastAccess.Add(40 * time.Minute)
		id := e.create(r)
		at := e.clock.Advance(25 * time.Minute)
		e.wantOK("Touch", e.s.Touch(e.ctx, id, at, expiresAt(r, at)))
		e.clock.Advance(15*time.Minute - ms)
		e.load(id)
		e.clock.Advance(ms)
		e.wantNotFound(id, "at the deadline, although touched within the idle timeout")
	})

	su.run(t, "MissingID", func(e *env) {
		id := e.newID()
		now := e.clock.Now()
		e.wantErr("Touch of an ID never created", e.s.Touch(e.ctx, id, now, now.Add(idle)), filesession.ErrNotFound)
		e.wantNotFound(id, "after Touch of an ID never created")
		e.wantListed("after Touch of an ID never created")
	})
}

func testSave(t *testing.T, su *suite) {
	// Two requests load the same session; each saves a different key; the
	// second save must not drop the first's key (express-session's
	// last-writer-wins bug).
	su.run(t, "MergesConcurrentRequests", func(e *env) {
		id, _ := e.createValues("a", "1")
		// The second request loads before the first one saves; each then
		// saves only the key it changed.
		second := e.load(id)
		e.wantOK("Save x", e.s.Save(e.ctx, id, filesession.Change{Set: vals("x", `"from first"`), At: e.clock.Advance(ms)}))
		if _, ok := second.Values["x"]; ok {
			e.t.Error("a record returned by Load changed when the session was saved afterwards")
		}
		e.wantOK("Save y", e.s.Save(e.ctx, id, filesession.Change{Set: vals("y", `"from second"`), At: e.clock.Advance(ms)}))
		e.wantValues(id, "a", "1", "x", `"from first"`, "y", `"from second"`)
	})

	su.run(t, "MergedDeleteKeepsOtherKeys", func(e *env) {
		id, _ := e.createValues("a", "1", "b", "2")
		e.wantOK("Save x", e.s.Save(e.ctx, id, filesession.Change{Set: vals("x", "3"), At: e.clock.Now()}))
		e.wantOK("Save delete a", e.s.Save(e.ctx, id, filesession.Change{Delete: []string{"a"}, At: e.clock.Now()}))
		e.wantValues(id, "b", "2", "x", "3")
	})

	su.run(t, "OverwritesKey", func(e *env) {
		id, _ := e.createValues("a", "1", "b", "2")
		e.wantOK("Save", e.s.Save(e.ctx, id, filesession.Change{Set: vals("a", `{"now":"object"}`), At: e.clock.Now()}))
		e.wantValues(id, "a", `{"now":"object"}`, "b", "2")
	})

	su.run(t, "DeletesKeys", func(e *env) {
		id, _ := e.createValues("a", "1", "b", "2", "c", "3")
		e.wantOK("Save", e.s.Save(e.ctx, id, filesession.Change{Delete: []string{"a", "c", "never-set"}, At: e.clock.Now()}))
		e.wantValues(id, "b", "2")
	})

	su.run(t, "DeletesAllKeys", func(e *env) {
		id, _ := e.createValues("a", "1")
		e.wantOK("Save", e.s.Save(e.ctx, id, filesession.Change{Delete: []string{"a"}, At: e.clock.Now()}))
		e.wantValues(id)
		e.wantOK("Save after emptying", e.s.Save(e.ctx, id, filesession.Change{Set: vals("b", "2"), At: e.clock.Now()}))
		e.wantValues(id, "b", "2")
	})

	// Change.Apply deletes before it sets, so a key both deleted and set
	// ends up set.
	su.run(t, "DeleteThenSetSameKey", func(e *env) {
		id, _ := e.createValues("a", "1")
		e.wantOK("Save", e.s.Save(e.ctx, id, filesession.Change{Set: vals("a", "2"), Delete: []string{"a"}, At: e.clock.Now()}))
		e.wantValues(id, "a", "2")
	})

	su.run(t, "EmptyChangeMovesLastAccess", func(e *env) {
		want := roundTripRecord(e)
		id := e.create(want)
		at := e.clock.Advance(time.Minute)
		e.wantOK("Save", e.s.Save(e.ctx, id, filesession.Change{At: at}))
		want.LastAccess = at
		e.wantRecord(id, want)
	})

	su.run(t, "LastAccessNeverBackwards", func(e *env) {
		id, r := e.createValues("a", "1")
		later := e.clock.Advance(10 * time.Minute)
		e.wantOK("Save", e.s.Save(e.ctx, id, filesession.Change{At: later}))
		if got := e.load(id); !sameTime(got.LastAccess, later) {
			e.t.Errorf("LastAccess = %s, want the Save's At %s", fmtTime(got.LastAccess), fmtTime(later))
		}
		earlier := r.LastAccess.Add(5 * time.Minute)
		e.wantOK("Save with an earlier At", e.s.Save(e.ctx, id, filesession.Change{Set: vals("z", "26"), At: earlier}))
		got := e.load(id)
		if !sameTime(got.LastAccess, later) {
			e.t.Errorf("after a Save with an earlier At, LastAccess = %s, want it kept at %s", fmtTime(got.LastAccess), fmtTime(later))
		}
		e.wantValues(id, "a", "1", "z", "26")
	})

	su.run(t, "ExtendsIdleExpiry", func(e *env) {
		id, _ := e.createValues("a", "1")
		at := e.clock.Advance(20 * time.Minute)
		e.wantOK("Save", e.s.Save(e.ctx, id, filesession.Change{Set: vals("b", "2"), At: at}))
		e.clock.Advance(20 * time.Minute)
		e.wantValues(id, "a", "1", "b", "2")
	})

	su.run(t, "ReplacesMetadata", func(e *env) {
		want := roundTripRecord(e)
		id := e.create(want)
		at := e.clock.Advance(time.Minute)
		cookie := filesession.CookieAttrs{Path: "/other", SameSite: "none", Secure: true}
		c := filesession.Change{
			At:          at,
			IdleTimeout: 90 * time.Minute,
			Deadline:    at.Add(3*time.Hour + 7*ms),
			Cookie:      &cookie,
		}
		e.wantOK("Save", e.s.Save(e.ctx, id, c))
		c.Apply(&want)
		e.wantRecord(id, want)
	})

	su.run(t, "ZeroMetadataKeepsOld", func(e *env) {
		want := roundTripRecord(e)
		id := e.create(want)
		e.wantOK("Save", e.s.Save(e.ctx, id, filesession.Change{Set: vals("k", "1"), At: want.LastAccess}))
		want.Values["k"] = []byte("1")
		e.wantRecord(id, want) // Created, IdleTimeout, Deadline and Cookie as created
	})

	su.run(t, "ShorterIdleTimeoutTakesEffect", func(e *env) {
		id, r := e.createValues("a", "1")
		e.wantOK("Save", e.s.Save(e.ctx, id, filesession.Change{At: r.LastAccess, IdleTimeout: 10 * time.Minute}))
		e.clock.Advance(10*time.Minute - ms)
		e.load(id)
		e.clock.Advance(ms)
		e.wantNotFound(id, "after its idle timeout was shortened by Save and has passed")
	})

	su.run(t, "MissingID", func(e *env) {
		id := e.newID()
		e.wantErr("Save of an ID never created", e.s.Save(e.ctx, id, filesession.Change{Set: vals("a", "1"), At: e.clock.Now()}), filesession.ErrNotFound)
		e.wantNotFound(id, "after Save of an ID never created")
		e.wantListed("after Save of an ID never created")
	})
}

func testUpdate(t *testing.T, su *suite) {
	su.run(t, "SeesLatestValues", func(e *env) {
		id, _ := e.createValues("a", "1")
		e.wantOK("Save", e.s.Save(e.ctx, id, filesession.Change{Set: vals("b", "2"), At: e.clock.Now()}))
		var seen map[string]string
		e.wantOK("Update", e.s.Update(e.ctx, id, func(r *filesession.Record) error {
			seen = map[string]string{}
			for k, v := range r.Values {
				seen[k] = string(v)
			}
			return nil
		}))
		if len(seen) != 2 || seen["a"] != "1" || seen["b"] != "2" {
			e.t.Errorf("Update's fn saw values %v, want a=1 and b=2 (the latest saved)", seen)
		}
	})

	su.run(t, "ChangesPersist", func(e *env) {
		want := roundTripRecord(e)
		id := e.create(want)
		at := e.clock.Advance(time.Minute)
		e.wantOK("Update", e.s.Update(e.ctx, id, func(r *filesession.Record) error {
			delete(r.Values, "int")
			r.Values["added"] = []byte(`{"by":"update"}`)
			r.LastAccess = at
			r.IdleTimeout = 2 * time.Hour
			r.Cookie.SameSite = "lax"
			return nil
		}))
		delete(want.Values, "int")
		want.Values["added"] = []byte(`{"by":"update"}`)
		want.LastAccess = at
		want.IdleTimeout = 2 * time.Hour
		want.Cookie.SameSite = "lax"
		e.wantRecord(id, want)
	})

	su.run(t, "FnErrorStoresNothing", func(e *env) {
		want := roundTripRecord(e)
		id := e.create(want)
		err := e.s.Update(e.ctx, id, func(r *filesession.Record) error {
			r.Values["ascii"][1] = 'X' // in place, as a careless fn would
			r.Values["added"] = []byte("1")
			delete(r.Values, "int")
			r.IdleTimeout = time.Minute
			return errFn
		})
		e.wantErr("Update whose fn fails", err, errFn)
		e.wantRecord(id, want)
	})

	su.run(t, "MissingID", func(e *env) {
		id := e.newID()
		called := false
		err := e.s.Update(e.ctx, id, func(r *filesession.Record) error {
			called = true
			return nil
		})
		e.wantErr("Update of an ID never created", err, filesession.ErrNotFound)
		if called {
			e.t.Error("Update of an ID never created called fn")
		}
		e.wantNotFound(id, "after Update of an ID never created")
		e.wantListed("after Update of an ID never created")
	})
}

func testRenew(t *testing.T, su *suite) {
	su.run(t, "MovesSession", func(e *env) {
		old := roundTripRecord(e)
		oldID := e.create(old)
		// The latest data, not what the renewing request loaded.
		e.wantOK("Save", e.s.Save(e.ctx, oldID, filesession.Change{Set: vals("saved", "1"), At: e.clock.Now()}))
		at := e.clock.Advance(time.Minute)
		newID := e.newID()
		c := filesession.Change{Set: vals("user", `"alice"`), Delete: []string{"int"}, At: at}
		e.wantOK("Renew", e.s.Renew(e.ctx, oldID, newID, c))
		e.wantNotFound(oldID, "of the old ID after Renew")
		want := old.Clone()
		want.Values["saved"] = []byte("1")
		c.Apply(&want) // Created and Deadline kept
		e.wantRecord(newID, want)
		e.wantListed("after Renew", newID)
	})

	su.run(t, "NewIDIsLive", func(e *env) {
		oldID, _ := e.createValues("a", "1")
		newID := e.newID()
		at := e.clock.Advance(20 * time.Minute)
		e.wantOK("Renew", e.s.Renew(e.ctx, oldID, newID, filesession.Change{At: at}))
		e.wantOK("Save new", e.s.Save(e.ctx, newID, filesession.Change{Set: vals("b", "2"), At: at}))
		e.clock.Advance(20 * time.Minute) // past the old ID's expiry
		e.wantValues(newID, "a", "1", "b", "2")
		e.wantErr("Save old after Renew", e.s.Save(e.ctx, oldID, filesession.Change{Set: vals("c", "3"), At: e.clock.Now()}), filesession.ErrNotFound)
		e.wantNotFound(oldID, "of the old ID after Save to it")
	})

	su.run(t, "Chain", func(e *env) {
		ids := []string{""}
		ids[0], _ = e.createValues("a", "1")
		for i := range 3 {
			next := e.newID()
			e.wantOK("Renew", e.s.Renew(e.ctx, ids[i], next, filesession.Change{Set: vals("step", string(rune('1'+i))), At: e.clock.Advance(ms)}))
			ids = append(ids, next)
		}
		for _, id := range ids[:3] {
			e.wantNotFound(id, "of a renewed-away ID")
		}
		e.wantValues(ids[3], "a", "1", "step", "3")
		e.wantListed("after three Renews", ids[3])
	})

	su.run(t, "MissingOld", func(e *env) {
		oldID, newID := e.newID(), e.newID()
		e.wantErr("Renew of an ID never created", e.s.Renew(e.ctx, oldID, newID, filesession.Change{Set: vals("a", "1"), At: e.clock.Now()}), filesession.ErrNotFound)
		e.wantNotFound(newID, "of the new ID after Renew of a missing old ID")
		e.wantNotFound(oldID, "of the missing old ID after Renew")
		e.wantListed("after Renew of a missing old ID")
	})

	su.run(t, "ExistingNew", func(e *env) {
		oldRec := e.record(vals("who", `"old"`))
		oldID := e.create(oldRec)
		newRec := e.record(vals("who", `"new"`))
		newRec.IdleTimeout = time.Hour
		newID := e.create(newRec)
		err := e.s.Renew(e.ctx, oldID, newID, filesession.Change{Set: vals("x", "1"), At: e.clock.Advance(ms)})
		e.wantErr("Renew onto an existing ID", err, filesession.ErrExists)
		e.wantRecord(oldID, oldRec)
		e.wantRecord(newID, newRec)
	})
}

func testDelete(t *testing.T, su *suite) {
	su.run(t, "Removes", func(e *env) {
		id, _ := e.createValues("a", "1")
		other, _ := e.createValues("b", "2")
		e.wantOK("Delete", e.s.Delete(e.ctx, id))
		e.wantNotFound(id, "after Delete")
		e.wantValues(other, "b", "2")
		e.wantListed("after Delete", other)
	})

	su.run(t, "Twice", func(e *env) {
		id, _ := e.createValues("a", "1")
		e.wantOK("Delete", e.s.Delete(e.ctx, id))
		e.wantOK("second Delete", e.s.Delete(e.ctx, id))
		e.wantNotFound(id, "after two Deletes")
	})

	su.run(t, "Missing", func(e *env) {
		e.wantOK("Delete of an ID never created", e.s.Delete(e.ctx, e.newID()))
		e.wantListed("after Delete of an ID never created")
	})

	su.run(t, "Expired", func(e *env) {
		id, r := e.createValues("a", "1")
		e.clock.Advance(r.IdleTimeout + time.Minute)
		e.wantOK("Delete of an expired session", e.s.Delete(e.ctx, id))
		e.wantNotFound(id, "after Delete of an expired session")
		e.wantListed("after Delete of an expired session")
	})

	su.run(t, "ThenCreate", func(e *env) {
		id, _ := e.createValues("a", "1")
		e.wantOK("Delete", e.s.Delete(e.ctx, id))
		fresh := e.record(vals("b", "2"))
		e.wantOK("Create after Delete", e.s.Create(e.ctx, id, fresh))
		e.wantRecord(id, fresh)
	})

	// Django's test_session_save_does_not_resurrect_session_logged_out_in_
	// other_context: a request that loaded the session before another one
	// logged it out must not bring it back.
	t.Run("NoResurrection", func(t *testing.T) {
		for _, op := range resurrectors {
			su.run(t, op.name, func(e *env) {
				id, r := e.createValues("a", "1")
				e.wantOK("Delete", e.s.Delete(e.ctx, id))
				err := op.call(e, id, r, new(bool))
				e.wantErr(op.name+" after Delete", err, filesession.ErrNotFound)
				e.wantNotFound(id, "after Delete then "+op.name)
				e.wantListed("after Delete then " + op.name)
			})
		}
	})
}

// resurrectors are the operations that must never create a record: each is
// called on a session that is gone (deleted or expired) and must return
// ErrNotFound and leave nothing behind, at id or at a renewal target.
var resurrectors = []struct {
	name string
	call func(e *env, id string, r filesession.Record, called *bool) error
}{
	{"Save", func(e *env, id string, _ filesession.Record, _ *bool) error {
		return e.s.Save(e.ctx, id, filesession.Change{Set: vals("b", "2"), At: e.clock.Now()})
	}},
	{"SaveEmpty", func(e *env, id string, _ filesession.Record, _ *bool) error {
		return e.s.Save(e.ctx, id, filesession.Change{At: e.clock.Now()})
	}},
	{"Touch", func(e *env, id string, r filesession.Record, _ *bool) error {
		now := e.clock.Now()
		return e.s.Touch(e.ctx, id, now, expiresAt(r, now))
	}},
	{"Update", func(e *env, id string, _ filesession.Record, called *bool) error {
		err := e.s.Update(e.ctx, id, func(r *filesession.Record) error {
			*called = true
			r.Values["b"] = []byte("2")
			return nil
		})
		if *called {
			e.t.Error("Update called fn on a session that is gone")
		}
		return err
	}},
	{"Renew", func(e *env, id string, _ filesession.Record, _ *bool) error {
		newID := e.newID()
		err := e.s.Renew(e.ctx, id, newID, filesession.Change{Set: vals("b", "2"), At: e.clock.Now()})
		if errors.Is(err, filesession.ErrNotFound) {
			e.wantNotFound(newID, "of the new ID after Renew of a session that is gone")
		}
		return err
	}},
}
