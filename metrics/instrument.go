package metrics

import (
	"context"
	"time"

	"github.com/filesession/filesession"
)

// Instrument returns a Store that passes every call to store and records
// it in c: a count by result, a latency, and the kind of any error. The
// returned Store implements exactly the optional interfaces store does
// (filesession.Lister, filesession.Reaper, filesession.TTLer), so
// filesession.New and operator tools see the same capabilities, and it has
// an Unwrap method returning store. It does not close store: close it
// yourself. Creates and deletes that succeed move the session gauge
// between reaper passes.
//
// The store's background work (its own reaper, retries inside a call) does
// not go through the wrapper; give the store c as its StoreEvents to see it.
func (c *Collector) Instrument(store filesession.Store) filesession.Store {
	base := &instrumented{c: c, s: store}
	l, isL := store.(filesession.Lister)
	r, isR := store.(filesession.Reaper)
	t, isT := store.(filesession.TTLer)
	lp, rp, tp := listPart{base, l}, reapPart{base, r}, ttlPart{t}
	switch {
	case isL && isR && isT:
		return struct {
			*instrumented
			listPart
			reapPart
			ttlPart
		}{base, lp, rp, tp}
	case isL && isR:
		return struct {
			*instrumented
			listPart
			reapPart
		}{base, lp, rp}
	case isL && isT:
		return struct {
			*instrumented
			listPart
			ttlPart
		}{base, lp, tp}
	case isR && isT:
		return struct {
			*instrumented
			reapPart
			ttlPart
		}{base, rp, tp}
	case isL:
		return struct {
			*instrumented
			listPart
		}{base, lp}
	case isR:
		return struct {
			*instrumented
			reapPart
		}{base, rp}
	case isT:
		return struct {
			*instrumented
			ttlPart
		}{base, tp}
	}
	return base
}

// instrumented is the filesession.Store part of Instrument's wrapper.
type instrumented struct {
	c *Collector
	s filesession.Store
}

// Unwrap returns the store Instrument wrapped.
func (w *instrumented) Unwrap() filesession.Store { return w.s }

func (w *instrumented) Load(ctx context.Context, id string) (filesession.Record, error) {
	start := time.Now()
	r, err := w.s.Load(ctx, id)
	w.c.observe("load", start, err)
	return r, err
}

func (w *instrumented) Create(ctx context.Context, id string, r filesession.Record) error {
	start := time.Now()
	err := w.s.Create(ctx, id, r)
	w.c.observe("create", start, err)
	if err == nil {
		w.c.sessions.Add(1)
	}
	return err
}

func (w *instrumented) Save(ctx context.Context, id string, ch filesession.Change) error {
	start := time.Now()
	err := w.s.Save(ctx, id, ch)
	w.c.observe("save", start, err)
	return err
}

func (w *instrumented) Touch(ctx context.Context, id string, at, expires time.Time) error {
	start := time.Now()
	err := w.s.Touch(ctx, id, at, expires)
	w.c.observe("touch", start, err)
	return err
}

func (w *instrumented) Update(ctx context.Context, id string, fn func(*filesession.Record) error) error {
	start := time.Now()
	err := w.s.Update(ctx, id, fn)
	w.c.observe("update", start, err)
	return err
}

func (w *instrumented) Renew(ctx context.Context, oldID, newID string, ch filesession.Change) error {
	start := time.Now()
	err := w.s.Renew(ctx, oldID, newID, ch)
	w.c.observe("renew", start, err)
	return err
}

func (w *instrumented) Delete(ctx context.Context, id string) error {
	start := time.Now()
	err := w.s.Delete(ctx, id)
	w.c.observe("delete", start, err)
	if err == nil {
		// Deleting a missing session succeeds too; the gauge is an
		// estimate that the next reaper pass corrects.
		w.c.sessions.Add(-1)
	}
	return err
}

// listPart adds List to the wrapper of a filesession.Lister.
type listPart struct {
	w *instrumented
	l filesession.Lister
}

func (p listPart) List(ctx context.Context, fn func(id string, r filesession.Record) error) error {
	start := time.Now()
	err := p.l.List(ctx, fn)
	p.w.c.observe("list", start, err)
	return err
}

// reapPart adds Reap to the wrapper of a filesession.Reaper. The sessions
// it removes are counted through StoreEvents (Reaped), which also sees the
// store's background reaper; this records the call itself.
type reapPart struct {
	w *instrumented
	r filesession.Reaper
}

func (p reapPart) Reap(ctx context.Context) (int, error) {
	start := time.Now()
	n, err := p.r.Reap(ctx)
	p.w.c.observe("reap", start, err)
	return n, err
}

// ttlPart adds TTL to the wrapper of a filesession.TTLer.
type ttlPart struct{ t filesession.TTLer }

func (p ttlPart) TTL() time.Duration { return p.t.TTL() }
