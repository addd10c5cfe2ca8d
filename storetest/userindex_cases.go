package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/filesession/filesession"
)

// Users the cases store. They include characters a store must keep exactly
// in a JSON string, a hash field or a file name derived from the user.
var (
	alice = "alice@example.com"
	bob   = `bob "the builder" \ / 用户 🎉`
	carol = "carol"
)

// testUser checks that every store keeps Record.User, whether or not it
// implements UserIndex: the manager reads a session's user from it.
func testUser(t *testing.T, su *suite) {
	su.run(t, "RoundTrip", func(e *env) {
		for _, u := range []string{alice, bob, "a", "\u2028<&>\x00\n"} {
			want := e.record(vals("n", "1"))
			want.User = u
			id := e.create(want)
			e.wantRecord(id, want)
		}
	})

	su.run(t, "Listed", func(e *env) {
		l := lister(e)
		r := e.record(vals("n", "1"))
		r.User = bob
		id := e.create(r)
		found := false
		err := l.List(e.ctx, func(got string, rec filesession.Record) error {
			if got == id {
				found = true
				if rec.User != bob {
					e.t.Errorf("List gave User %q, want %q", rec.User, bob)
				}
			}
			return nil
		})
		e.wantOK("List", err)
		if !found {
			e.t.Error("List missed the session")
		}
	})

	su.run(t, "SaveSetsKeepsAndClears", func(e *env) {
		id, want := e.createValues("n", "1")
		steps := []struct {
			user *string
			want string
		}{{&alice, alice}, {nil, alice}, {&bob, bob}, {ptr(""), ""}, {nil, ""}}
		for i, st := range steps {
			c := filesession.Change{Set: vals("n", fmt.Sprint(i+2)), At: e.clock.Advance(ms), User: st.user}
			e.wantOK("Save", e.s.Save(e.ctx, id, c))
			c.Apply(&want)
			if want.User != st.want {
				e.t.Fatalf("bad case: Apply gave %q", want.User)
			}
			e.wantRecord(id, want)
		}
	})

	su.run(t, "SaveOnlyUser", func(e *env) {
		id, want := e.createValues("n", "1")
		c := filesession.Change{At: e.clock.Advance(ms), User: &alice}
		e.wantOK("Save", e.s.Save(e.ctx, id, c))
		c.Apply(&want)
		e.wantRecord(id, want)
	})

	su.run(t, "UpdateChanges", func(e *env) {
		id, want := e.createValues("n", "1")
		e.wantOK("Update", e.s.Update(e.ctx, id, func(r *filesession.Record) error {
			r.User = carol
			return nil
		}))
		want.User = carol
		e.wantRecord(id, want)
		e.wantOK("Update", e.s.Update(e.ctx, id, func(r *filesession.Record) error {
			if r.User != carol {
				e.t.Errorf("Update's fn got User %q, want %q", r.User, carol)
			}
			r.User = ""
			return nil
		}))
		want.User = ""
		e.wantRecord(id, want)
	})

	su.run(t, "UpdateFnErrorKeepsUser", func(e *env) {
		r := e.record(vals("n", "1"))
		r.User = alice
		id := e.create(r)
		err := e.s.Update(e.ctx, id, func(r *filesession.Record) error {
			r.User = bob
			return errFn
		})
		e.wantErr("Update whose fn fails", err, errFn)
		e.wantRecord(id, r)
	})

	su.run(t, "RenewKeepsUser", func(e *env) {
		r := e.record(vals("n", "1"))
		r.User = alice
		id := e.create(r)
		newID := e.newID()
		c := filesession.Change{At: e.clock.Advance(ms)}
		e.wantOK("Renew", e.s.Renew(e.ctx, id, newID, c))
		c.Apply(&r)
		e.wantRecord(newID, r)
	})

	su.run(t, "RenewSetsUser", func(e *env) {
		id, r := e.createValues("n", "1")
		newID := e.newID()
		c := filesession.Change{Set: vals("m", "2"), At: e.clock.Advance(ms), User: &bob}
		e.wantOK("Renew", e.s.Renew(e.ctx, id, newID, c))
		c.Apply(&r)
		e.wantRecord(newID, r)
	})

	// A user that is not valid UTF-8 would not come back from a JSON
	// document unchanged, and so would not be found under its own name
	// in an index: stores refuse it, with an error that is not "not
	// found", and write nothing.
	su.run(t, "InvalidRefused", func(e *env) {
		bad := "bad\xffuser"
		r := e.record(vals("n", "1"))
		r.User = bad
		id := e.newID()
		err := e.s.Create(e.ctx, id, r)
		if err == nil || errors.Is(err, filesession.ErrNotFound) {
			e.t.Errorf("Create with a user that is not UTF-8: got %v, want a failure that is not ErrNotFound", err)
		}
		e.wantNotFound(id, "after a refused Create")

		id, want := e.createValues("n", "1")
		err = e.s.Save(e.ctx, id, filesession.Change{Set: vals("n", "2"), At: e.clock.Advance(ms), User: &bad})
		if err == nil || errors.Is(err, filesession.ErrNotFound) {
			e.t.Errorf("Save with a user that is not UTF-8: got %v, want a failure that is not ErrNotFound", err)
		}
		e.wantRecord(id, want)
	})
}

func ptr[T any](v T) *T { return &v }

func userIndex(e *env) filesession.UserIndex {
	e.t.Helper()
	x, ok := e.s.(filesession.UserIndex)
	if !ok {
		e.t.Skipf("%T does not implement filesession.UserIndex", e.s)
	}
	return x
}

// userSessions lists user's sessions, failing the test on an error.
func (e *env) userSessions(user string) map[string]filesession.Record {
	e.t.Helper()
	list, err := userIndex(e).UserSessions(e.ctx, user)
	if err != nil {
		e.t.Fatalf("UserSessions: %v", err)
	}
	got := make(map[string]filesession.Record, len(list))
	for _, us := range list {
		if _, dup := got[us.ID]; dup {
			e.t.Errorf("UserSessions(%q) gave session %s twice", user, short([]string{us.ID})[0])
		}
		if us.Record.User != user {
			e.t.Errorf("UserSessions(%q) gave a session of user %q", user, us.Record.User)
		}
		got[us.ID] = us.Record
	}
	return got
}

// wantUserSessions checks that UserSessions(user) gives exactly ids.
func (e *env) wantUserSessions(why, user string, ids ...string) map[string]filesession.Record {
	e.t.Helper()
	got := e.userSessions(user)
	var gotIDs []string
	for id := range got {
		gotIDs = append(gotIDs, id)
	}
	slices.Sort(gotIDs)
	want := slices.Sorted(slices.Values(ids))
	if !slices.Equal(gotIDs, want) {
		e.t.Errorf("UserSessions(%q) %s: %d sessions %v, want %d %v", user, why, len(gotIDs), short(gotIDs), len(want), short(want))
	}
	return got
}

// createUser creates a session of user holding kv and returns its ID and
// record.
func (e *env) createUser(user string, kv ...string) (string, filesession.Record) {
	e.t.Helper()
	r := e.record(vals(kv...))
	r.User = user
	return e.create(r), r
}

func testUserIndex(t *testing.T, su *suite) {
	su.run(t, "Empty", func(e *env) {
		e.wantUserSessions("of an empty store", alice)
		e.wantUserSessions("of the empty user", "")
	})

	su.run(t, "UsersListedApart", func(e *env) {
		var as, bs []string
		want := map[string]filesession.Record{}
		for i := range 3 {
			id, r := e.createUser(alice, "i", fmt.Sprint(i))
			as = append(as, id)
			want[id] = r
		}
		for i := range 2 {
			id, r := e.createUser(bob, "i", fmt.Sprint(i))
			bs = append(bs, id)
			want[id] = r
		}
		e.createValues("anonymous", "true")
		for id, r := range e.wantUserSessions("", alice, as...) {
			for _, d := range diffRecord(r, want[id]) {
				e.t.Errorf("listed session of alice: %s", d)
			}
		}
		for id, r := range e.wantUserSessions("", bob, bs...) {
			for _, d := range diffRecord(r, want[id]) {
				e.t.Errorf("listed session of bob: %s", d)
			}
		}
		e.wantUserSessions("of a user without sessions", carol)
		e.wantUserSessions("of the empty user (sessions without a user are not listed)", "")
		// A user is matched exactly, not as a prefix or case-insensitively.
		e.wantUserSessions("of a prefix of a user", "alice")
		e.wantUserSessions("of another case", "ALICE@example.com")
	})

	su.run(t, "ManySessionsOfOneUser", func(e *env) {
		var ids []string
		for range 40 {
			id, _ := e.createUser(carol)
			ids = append(ids, id)
		}
		e.wantUserSessions("", carol, ids...)
	})

	su.run(t, "FollowsSetUser", func(e *env) {
		id, _ := e.createValues("n", "1")
		e.wantUserSessions("before the user is set", alice)
		e.wantOK("Save", e.s.Save(e.ctx, id, filesession.Change{At: e.clock.Advance(ms), User: &alice}))
		e.wantUserSessions("after Save set the user", alice, id)
		e.wantOK("Save", e.s.Save(e.ctx, id, filesession.Change{Set: vals("n", "2"), At: e.clock.Advance(ms)}))
		e.wantUserSessions("after a Save that kept the user", alice, id)
		e.wantOK("Save", e.s.Save(e.ctx, id, filesession.Change{At: e.clock.Advance(ms), User: &bob}))
		e.wantUserSessions("after Save changed the user", alice)
		e.wantUserSessions("after Save changed the user", bob, id)
		e.wantOK("Update", e.s.Update(e.ctx, id, func(r *filesession.Record) error {
			r.User = carol
			return nil
		}))
		e.wantUserSessions("after Update changed the user", bob)
		e.wantUserSessions("after Update changed the user", carol, id)
		e.wantOK("Save", e.s.Save(e.ctx, id, filesession.Change{At: e.clock.Advance(ms), User: ptr("")}))
		e.wantUserSessions("after Save removed the user", carol)
		e.wantValues(id, "n", "2")
	})

	su.run(t, "SeesLatestRecord", func(e *env) {
		id, r := e.createUser(alice, "n", "1")
		c := filesession.Change{Set: vals("n", "2"), At: e.clock.Advance(time.Minute)}
		e.wantOK("Save", e.s.Save(e.ctx, id, c))
		c.Apply(&r)
		at := e.clock.Advance(time.Minute)
		e.wantOK("Touch", e.s.Touch(e.ctx, id, at, expiresAt(r, at)))
		r.LastAccess = at
		got := e.wantUserSessions("", alice, id)
		for _, d := range diffRecord(got[id], r) {
			e.t.Errorf("listed record: %s", d)
		}
	})

	su.run(t, "ReturnsCopies", func(e *env) {
		id, _ := e.createUser(alice, "n", "1")
		for _, r := range e.userSessions(alice) {
			r.Values["n"][0] = '9'
			r.Values["x"] = []byte("1")
		}
		e.wantValues(id, "n", "1")
	})

	su.run(t, "RenewMovesEntry", func(e *env) {
		id, _ := e.createUser(alice, "n", "1")
		other, _ := e.createUser(alice, "n", "2")
		newID := e.newID()
		e.wantOK("Renew", e.s.Renew(e.ctx, id, newID, filesession.Change{At: e.clock.Advance(ms)}))
		e.wantUserSessions("after Renew", alice, newID, other)

		// Renew on login: a session without a user gets one on the way.
		anon, _ := e.createValues("n", "3")
		loggedIn := e.newID()
		e.wantOK("Renew", e.s.Renew(e.ctx, anon, loggedIn, filesession.Change{At: e.clock.Advance(ms), User: &bob}))
		e.wantUserSessions("after a Renew that set the user", bob, loggedIn)

		// And one that changes user leaves the old user's listing.
		third := e.newID()
		e.wantOK("Renew", e.s.Renew(e.ctx, newID, third, filesession.Change{At: e.clock.Advance(ms), User: &bob}))
		e.wantUserSessions("after a Renew that changed the user", alice, other)
		e.wantUserSessions("after a Renew that changed the user", bob, loggedIn, third)
	})

	su.run(t, "FailedRenewKeepsEntry", func(e *env) {
		id, _ := e.createUser(alice, "n", "1")
		taken, _ := e.createUser(bob, "n", "2")
		err := e.s.Renew(e.ctx, id, taken, filesession.Change{At: e.clock.Advance(ms), User: &bob})
		e.wantErr("Renew onto a live ID", err, filesession.ErrExists)
		e.wantUserSessions("after a failed Renew", alice, id)
		e.wantUserSessions("after a failed Renew", bob, taken)
	})

	su.run(t, "DeleteRemovesEntry", func(e *env) {
		id, r := e.createUser(alice, "n", "1")
		keep, _ := e.createUser(alice, "n", "2")
		e.wantOK("Delete", e.s.Delete(e.ctx, id))
		e.wantUserSessions("after Delete", alice, keep)
		for _, op := range resurrectors {
			op.call(e, id, r, new(bool))
		}
		e.wantUserSessions("after Delete and every write of the deleted ID", alice, keep)
	})

	su.run(t, "ExpiredNotListed", func(e *env) {
		short := e.record(vals("n", "1"))
		short.User = alice
		short.IdleTimeout = 10 * time.Minute
		gone := e.create(short)
		deadline := e.record(vals("n", "2"))
		deadline.User = alice
		deadline.Deadline = deadline.LastAccess.Add(10 * time.Minute)
		goneToo := e.create(deadline)
		live, _ := e.createUser(alice, "n", "3")
		e.clock.Advance(10 * time.Minute)
		e.wantUserSessions("after two sessions expired, before any reap", alice, live)
		if rp, ok := e.s.(filesession.Reaper); ok {
			_, err := rp.Reap(e.ctx)
			e.wantOK("Reap", err)
			e.wantUserSessions("after Reap", alice, live)
		}
		e.wantNotFound(gone, "of an expired session")
		e.wantNotFound(goneToo, "of a session past its deadline")
	})

	su.run(t, "TouchKeepsListed", func(e *env) {
		r := e.record(vals("n", "1"))
		r.User = alice
		r.IdleTimeout = 10 * time.Minute
		id := e.create(r)
		at := e.clock.Advance(8 * time.Minute)
		e.wantOK("Touch", e.s.Touch(e.ctx, id, at, expiresAt(r, at)))
		e.clock.Advance(8 * time.Minute) // past the first expiry, before the new one
		if rp, ok := e.s.(filesession.Reaper); ok {
			_, err := rp.Reap(e.ctx)
			e.wantOK("Reap", err)
		}
		e.wantUserSessions("after a Touch outlived the first expiry", alice, id)
	})

	// "Sign out everywhere else", as the manager does it: list, delete all
	// but one, list again.
	su.run(t, "RevokeAllExceptOne", func(e *env) {
		var ids []string
		for i := range 5 {
			id, _ := e.createUser(alice, "i", fmt.Sprint(i))
			ids = append(ids, id)
		}
		other, _ := e.createUser(bob)
		keep := ids[2]
		for id := range e.userSessions(alice) {
			if id != keep {
				e.wantOK("Delete", e.s.Delete(e.ctx, id))
			}
		}
		e.wantUserSessions("after revoking all but one", alice, keep)
		e.wantUserSessions("of another user after revoking alice's", bob, other)
		for _, id := range ids {
			if id != keep {
				e.wantNotFound(id, "of a revoked session")
			}
		}
		e.wantValues(keep, "i", "2")
	})

	// Sessions created while others list must all be there at the end, and
	// every listing must hold only sessions of the user; sessions that
	// exist throughout must be in every listing.
	su.run(t, "ConcurrentWritersAndReaders", func(e *env) {
		var stable []string
		for range 3 {
			id, _ := e.createUser(alice)
			stable = append(stable, id)
		}
		const writers, each = 4, 5
		ix := userIndex(e)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			created []string
			done    = make(chan struct{})
		)
		for range writers {
			wg.Go(func() {
				for range each {
					id := e.newID()
					r := e.record(vals("n", "1"))
					r.User = alice
					if err := e.s.Create(e.ctx, id, r); err != nil {
						e.t.Errorf("Create: %v", err)
						return
					}
					// Churn: a session of alice that comes and goes.
					tmp := e.newID()
					if err := e.s.Create(e.ctx, tmp, r); err != nil {
						e.t.Errorf("Create: %v", err)
						return
					}
					if err := e.s.Delete(e.ctx, tmp); err != nil {
						e.t.Errorf("Delete: %v", err)
					}
					mu.Lock()
					created = append(created, id)
					mu.Unlock()
				}
			})
		}
		var rg sync.WaitGroup
		rg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				list, err := ix.UserSessions(e.ctx, alice)
				if err != nil {
					e.t.Errorf("UserSessions: %v", err)
					return
				}
				seen := map[string]bool{}
				for _, us := range list {
					seen[us.ID] = true
					if us.Record.User != alice {
						e.t.Errorf("UserSessions gave a session of %q", us.Record.User)
					}
				}
				for _, id := range stable {
					if !seen[id] {
						e.t.Errorf("a listing missed a session that existed throughout")
						return
					}
				}
			}
		})
		wg.Wait()
		close(done)
		rg.Wait()
		e.wantUserSessions("after concurrent creates", alice, append(created, stable...)...)
	})
}
