package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/filesession/filesession"
)

// testCancelledContext calls every method with a context that is already
// cancelled. A store may ignore it (and succeed) or refuse (with an error
// matching context.Canceled, or ErrLockTimeout from a lock wait that gave
// up); it must not report ErrNotFound, which the manager would take as "no
// session", must not panic, and must not half-do the operation: if it
// failed, the store is as it was; if it succeeded, the operation happened.
func testCancelledContext(t *testing.T, su *suite) {
	type outcome struct {
		op    string
		err   error
		check func(e *env, failed bool) // verifies state with a live context
	}
	cases := []struct {
		name string
		run  func(e *env, ctx context.Context, id string, r filesession.Record) outcome
	}{
		{"Load", func(e *env, ctx context.Context, id string, r filesession.Record) outcome {
			got, err := e.s.Load(ctx, id)
			return outcome{"Load", err, func(e *env, failed bool) {
				if !failed {
					for _, d := range diffRecord(got, r) {
						e.t.Errorf("Load with a cancelled context that succeeded: %s", d)
					}
				}
				e.wantRecord(id, r)
			}}
		}},
		{"Create", func(e *env, ctx context.Context, id string, r filesession.Record) outcome {
			newID := e.newID()
			err := e.s.Create(ctx, newID, e.record(vals("new", "1")))
			return outcome{"Create", err, func(e *env, failed bool) {
				if failed {
					e.wantNotFound(newID, "after a failed Create")
					e.wantListed("after a failed Create", id)
				} else {
					e.wantValues(newID, "new", "1")
				}
			}}
		}},
		{"Save", func(e *env, ctx context.Context, id string, r filesession.Record) outcome {
			err := e.s.Save(ctx, id, filesession.Change{Set: vals("x", "1"), At: e.clock.Now()})
			return outcome{"Save", err, func(e *env, failed bool) {
				if failed {
					e.wantRecord(id, r)
				} else {
					e.wantValues(id, "a", "1", "x", "1")
				}
			}}
		}},
		{"Touch", func(e *env, ctx context.Context, id string, r filesession.Record) outcome {
			at := e.clock.Now()
			err := e.s.Touch(ctx, id, at, expiresAt(r, at))
			return outcome{"Touch", err, func(e *env, failed bool) {
				want := r
				if !failed {
					want.LastAccess = at
				}
				e.wantRecord(id, want)
			}}
		}},
		{"Update", func(e *env, ctx context.Context, id string, r filesession.Record) outcome {
			err := e.s.Update(ctx, id, func(r *filesession.Record) error {
				r.Values["x"] = []byte("1")
				return nil
			})
			return outcome{"Update", err, func(e *env, failed bool) {
				if failed {
					e.wantRecord(id, r)
				} else {
					e.wantValues(id, "a", "1", "x", "1")
				}
			}}
		}},
		{"Renew", func(e *env, ctx context.Context, id string, r filesession.Record) outcome {
			newID := e.newID()
			err := e.s.Renew(ctx, id, newID, filesession.Change{At: e.clock.Now()})
			return outcome{"Renew", err, func(e *env, failed bool) {
				if failed {
					e.wantRecord(id, r)
					e.wantNotFound(newID, "of the new ID after a failed Renew")
				} else {
					e.wantNotFound(id, "of the old ID after Renew")
					e.wantValues(newID, "a", "1")
				}
			}}
		}},
		{"Delete", func(e *env, ctx context.Context, id string, r filesession.Record) outcome {
			err := e.s.Delete(ctx, id)
			return outcome{"Delete", err, func(e *env, failed bool) {
				if failed {
					e.wantRecord(id, r)
				} else {
					e.wantNotFound(id, "after Delete")
				}
			}}
		}},
		{"List", func(e *env, ctx context.Context, id string, r filesession.Record) outcome {
			l, ok := e.s.(filesession.Lister)
			if !ok {
				e.t.Skipf("%T does not implement filesession.Lister", e.s)
			}
			err := l.List(ctx, func(string, filesession.Record) error { return nil })
			return outcome{"List", err, func(e *env, _ bool) { e.wantRecord(id, r) }}
		}},
		{"Reap", func(e *env, ctx context.Context, id string, r filesession.Record) outcome {
			rp, ok := e.s.(filesession.Reaper)
			if !ok {
				e.t.Skipf("%T does not implement filesession.Reaper", e.s)
			}
			_, err := rp.Reap(ctx)
			return outcome{"Reap", err, func(e *env, _ bool) { e.wantRecord(id, r) }}
		}},
	}
	for _, c := range cases {
		su.run(t, c.name, func(e *env) {
			id, r := e.createValues("a", "1")
			e.clock.Advance(time.Minute) // so that a Touch or Save is visible
			ctx, cancel := context.WithCancel(e.ctx)
			cancel()
			var out outcome
			func() {
				defer func() {
					if p := recover(); p != nil {
						e.t.Fatalf("%s with a cancelled context panicked: %v", c.name, p)
					}
				}()
				out = c.run(e, ctx, id, r)
			}()
			failed := out.err != nil
			switch {
			case !failed:
				e.t.Logf("%s with a cancelled context succeeded", out.op)
			case errors.Is(out.err, filesession.ErrNotFound):
				e.t.Errorf("%s with a cancelled context: %v, which matches ErrNotFound; want success or a context error", out.op, out.err)
			case !errors.Is(out.err, context.Canceled) && !errors.Is(out.err, filesession.ErrLockTimeout):
				e.t.Errorf("%s with a cancelled context: %v, want success or an error matching context.Canceled", out.op, out.err)
			default:
				e.t.Logf("%s with a cancelled context failed: %v", out.op, out.err)
			}
			out.check(e, failed)
		})
	}
}
