package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/filesession/filesession"
)

// Run runs the conformance suite against the stores that newStore makes.
// newStore is called once per subtest, with that subtest's t and the Now
// func of the suite's fake clock, and must return a fresh, empty store that
// uses now for every expiry decision; it should register the store's cleanup
// (closing it, removing its keys) with t.Cleanup. Subtests are named after
// the rule they check, such as "Save/MergesConcurrentRequests", so a failure
// says what broke; run a subset with go test -run.
func Run(t *testing.T, newStore func(t *testing.T, now func() time.Time) filesession.Store) {
	t.Helper()
	RunWith(t, Config{}, newStore)
}

// Config describes the IDs of a store that does not use the default format
// of [filesession.NewID], for RunWith. The zero Config is Run's: IDs of
// filesession.IDLength characters made by filesession.NewID.
type Config struct {
	// IDLength is the exact length of the IDs the store accepts, as it
	// passes to filesession.ValidID. Zero means filesession.IDLength (43).
	// The invalid-ID cases are built around it: IDs one character shorter
	// and longer, and IDs of exactly this length with a character outside
	// the base64url alphabet, must all be refused.
	IDLength int

	// NewID returns a fresh valid ID of IDLength characters. Nil means
	// filesession.NewIDOf with the number of random bytes whose unpadded
	// base64url text is IDLength characters long; IDLength must then be
	// such a length (not 4k+1). Express-session's IDs (IDLength 32) are 24
	// bytes.
	NewID func() string
}

// RunWith is Run for a store whose IDs are configured differently (see
// Config), such as the file store's express preset, whose IDs are
// express-session's 32-character ones. Every case of Run runs, with IDs
// from cfg.NewID, and the invalid-ID cases are derived from cfg.IDLength.
// It fails the test at once if cfg is inconsistent (an ID from NewID that
// is not valid at IDLength).
func RunWith(t *testing.T, cfg Config, newStore func(t *testing.T, now func() time.Time) filesession.Store) {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	su := &suite{newStore: newStore, cfg: cfg}
	groups := []struct {
		name string
		fn   func(*testing.T, *suite)
	}{
		{"RoundTrip", testRoundTrip},
		{"Create", testCreate},
		{"Load", testLoad},
		{"InvalidID", testInvalidID},
		{"Touch", testTouch},
		{"Save", testSave},
		{"Update", testUpdate},
		{"Renew", testRenew},
		{"Delete", testDelete},
		{"Expiry", testExpiry},
		{"Concurrency", testConcurrency},
		{"Lister", testLister},
		{"Reaper", testReaper},
		{"TTLer", testTTLer},
		{"CancelledContext", testCancelledContext},
		{"User", testUser},
		{"UserIndex", testUserIndex},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { g.fn(t, su) })
	}
}

// idle is the idle timeout of the records the suite creates unless a case
// says otherwise. It is long enough that no server-side TTL derived from it
// can fire while a case runs, however slow the store.
const idle = 30 * time.Minute

// ms is the precision stores keep timestamps at.
const ms = time.Millisecond

type suite struct {
	newStore func(t *testing.T, now func() time.Time) filesession.Store
	cfg      Config
}

// withDefaults fills cfg's zero fields and checks that its IDs are valid at
// its length.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.IDLength == 0 {
		cfg.IDLength = filesession.IDLength
	}
	if cfg.IDLength < 2 || cfg.IDLength > 1024 {
		return cfg, fmt.Errorf("storetest: Config.IDLength %d out of range", cfg.IDLength)
	}
	if cfg.NewID == nil {
		if cfg.IDLength%4 == 1 {
			return cfg, fmt.Errorf("storetest: no byte count encodes to %d base64url characters; set Config.NewID", cfg.IDLength)
		}
		n := cfg.IDLength * 6 / 8
		cfg.NewID = func() string { return filesession.NewIDOf(n) }
	}
	for range 3 {
		if id := cfg.NewID(); !filesession.ValidID(id, cfg.IDLength) {
			return cfg, fmt.Errorf("storetest: Config.NewID returned %s, not a valid ID of length %d", describe(id), cfg.IDLength)
		}
	}
	return cfg, nil
}

// env is one subtest's fresh store and clock.
type env struct {
	t     *testing.T
	ctx   context.Context
	clock *Clock
	s     filesession.Store
	// newID makes a fresh valid ID for the store under test.
	newID func() string
}

// run runs fn as subtest name on a fresh store.
func (su *suite) run(t *testing.T, name string, fn func(e *env)) {
	t.Helper()
	t.Run(name, func(t *testing.T) { fn(su.env(t)) })
}

func (su *suite) env(t *testing.T) *env {
	t.Helper()
	// Whole milliseconds, so that every time the suite hands a store is
	// representable in the store's precision and compares exactly.
	clock := NewClock(time.Now().Truncate(ms))
	s := su.newStore(t, clock.Now)
	if s == nil {
		t.Fatal("newStore returned a nil Store")
	}
	return &env{t: t, ctx: t.Context(), clock: clock, s: s, newID: su.cfg.NewID}
}

// vals builds a Values map from raw JSON texts.
func vals(kv ...string) map[string]json.RawMessage {
	if len(kv)%2 != 0 {
		panic("storetest: vals needs key/value pairs")
	}
	m := make(map[string]json.RawMessage, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = json.RawMessage(kv[i+1])
	}
	return m
}

// record returns a record created now with the suite's idle timeout.
func (e *env) record(values map[string]json.RawMessage) filesession.Record {
	now := e.clock.Now()
	return filesession.Record{
		Values:      values,
		Created:     now,
		LastAccess:  now,
		IdleTimeout: idle,
		Cookie:      filesession.CookieAttrs{HTTPOnly: true, Path: "/", SameSite: "lax"},
	}
}

// create stores r under a new ID and returns the ID; it fails the test if
// Create fails.
func (e *env) create(r filesession.Record) string {
	e.t.Helper()
	id := e.newID()
	if err := e.s.Create(e.ctx, id, r); err != nil {
		e.t.Fatalf("Create: %v", err)
	}
	return id
}

// createValues creates a session holding kv (raw JSON values) and returns
// its ID and record.
func (e *env) createValues(kv ...string) (string, filesession.Record) {
	e.t.Helper()
	r := e.record(vals(kv...))
	return e.create(r), r
}

func (e *env) load(id string) filesession.Record {
	e.t.Helper()
	r, err := e.s.Load(e.ctx, id)
	if err != nil {
		e.t.Fatalf("Load: %v", err)
	}
	return r
}

// wantNotFound checks that Load reports id as not found.
func (e *env) wantNotFound(id, why string) {
	e.t.Helper()
	r, err := e.s.Load(e.ctx, id)
	if !errors.Is(err, filesession.ErrNotFound) {
		e.t.Errorf("Load %s: got (%d values, %v), want an error matching ErrNotFound", why, len(r.Values), err)
	}
}

// wantErr checks that err matches target.
func (e *env) wantErr(op string, err, target error) {
	e.t.Helper()
	if !errors.Is(err, target) {
		e.t.Errorf("%s: got error %v, want one matching %v", op, err, target)
	}
}

// wantOK checks that err is nil.
func (e *env) wantOK(op string, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%s: %v", op, err)
	}
}

// wantValues checks that the session's values are exactly kv.
func (e *env) wantValues(id string, kv ...string) {
	e.t.Helper()
	got := e.load(id)
	for _, d := range diffValues(got.Values, vals(kv...)) {
		e.t.Error(d)
	}
}

// wantListed checks, when the store is a Lister, that it lists exactly ids.
// It is how the suite sees that an operation left no stray record behind.
func (e *env) wantListed(why string, ids ...string) {
	e.t.Helper()
	l, ok := e.s.(filesession.Lister)
	if !ok {
		return
	}
	var got []string
	err := l.List(e.ctx, func(id string, _ filesession.Record) error {
		got = append(got, id)
		return nil
	})
	if err != nil {
		e.t.Errorf("List %s: %v", why, err)
		return
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(ids))
	if !slices.Equal(got, want) {
		e.t.Errorf("List %s: listed %d sessions %v, want %d %v", why, len(got), short(got), len(want), short(want))
	}
}

// short abbreviates IDs in messages: they are random and only their
// identity matters.
func short(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		if len(id) > 8 {
			id = id[:8] + "…"
		}
		out[i] = id
	}
	return out
}

// sameTime reports whether a and b are the same instant at millisecond
// precision. The zero Time only equals the zero Time, so a store that turns
// "no deadline" into the Unix epoch is caught.
func sameTime(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() && b.IsZero()
	}
	return a.Truncate(ms).Equal(b.Truncate(ms))
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// diffRecord lists how got differs from want.
func diffRecord(got, want filesession.Record) []string {
	d := diffValues(got.Values, want.Values)
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"Created", got.Created, want.Created},
		{"LastAccess", got.LastAccess, want.LastAccess},
		{"Deadline", got.Deadline, want.Deadline},
	} {
		if !sameTime(f.got, f.want) {
			d = append(d, fmt.Sprintf("%s = %s, want %s", f.name, fmtTime(f.got), fmtTime(f.want)))
		}
	}
	if got.IdleTimeout.Truncate(ms) != want.IdleTimeout.Truncate(ms) {
		d = append(d, fmt.Sprintf("IdleTimeout = %v, want %v", got.IdleTimeout, want.IdleTimeout))
	}
	if got.User != want.User {
		d = append(d, fmt.Sprintf("User = %q, want %q", got.User, want.User))
	}
	if got.Cookie != want.Cookie {
		d = append(d, fmt.Sprintf("Cookie = %+v, want %+v", got.Cookie, want.Cookie))
	}
	return d
}

// diffValues lists how got differs from want, byte for byte. A nil and an
// empty map are the same.
func diffValues(got, want map[string]json.RawMessage) []string {
	var d []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		w := want[k]
		switch {
		case !ok:
			d = append(d, fmt.Sprintf("value %q missing, want %s", k, w))
		case bytes.Equal(g, w):
		case jsonEqual(g, w):
			d = append(d, fmt.Sprintf("value %q = %s, want the bytes %s: the JSON is equivalent, "+
				"so the store re-encoded it (HTML escaping, key order or number formatting)", k, g, w))
		default:
			d = append(d, fmt.Sprintf("value %q = %s, want %s", k, g, w))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("unexpected value %q = %s", k, got[k]))
		}
	}
	return d
}

// jsonEqual reports whether a and b decode to the same JSON value, numbers
// compared as their text.
func jsonEqual(a, b []byte) bool {
	decode := func(p []byte) (any, bool) {
		dec := json.NewDecoder(bytes.NewReader(p))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return nil, false
		}
		return v, true
	}
	va, oka := decode(a)
	vb, okb := decode(b)
	if !oka || !okb {
		return false
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

// wantRecord checks the stored record of id against want.
func (e *env) wantRecord(id string, want filesession.Record) {
	e.t.Helper()
	for _, d := range diffRecord(e.load(id), want) {
		e.t.Error(d)
	}
}

// expiresAt is what a caller passes to Touch for a record touched at at.
func expiresAt(r filesession.Record, at time.Time) time.Time {
	r.LastAccess = at
	return r.ExpiresAt()
}

// errFn is the error the suite's Update and List callbacks fail with.
var errFn = errors.New("storetest: callback failed on purpose")

// describe names an ID in a message without printing raw bytes.
func describe(id string) string {
	if len(id) > 12 {
		return fmt.Sprintf("%q… (%d bytes)", id[:12], len(id))
	}
	return strings.TrimSpace(fmt.Sprintf("%q", id))
}
