package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/internal/redistest"
	"github.com/filesession/filesession/storetest"
	"github.com/redis/go-redis/v9"
)

func rec(now time.Time, kv ...string) filesession.Record {
	v := map[string]json.RawMessage{}
	for i := 0; i+1 < len(kv); i += 2 {
		v[kv[i]] = json.RawMessage(kv[i+1])
	}
	return filesession.Record{
		Values: v, Created: now, LastAccess: now, IdleTimeout: 30 * time.Minute,
		Cookie: filesession.CookieAttrs{HTTPOnly: true, Path: "/", SameSite: "lax"},
	}
}

// TestKeyLayout pins the stored format an operator sees with HGETALL: the
// key name, one field per session key holding its JSON unchanged, the
// metadata fields, and a TTL set with the write.
func TestKeyLayout(t *testing.T) {
	ctx := t.Context()
	clock := storetest.NewClock(time.UnixMilli(1_796_292_220_850))
	s := newTestStore(t, Options{Now: clock.Now})
	id := filesession.NewID()
	r := rec(clock.Now(), "user", `{"id":1,"name":"Zoë \"x\""}`, "csrfToken", `"tok123"`)
	r.Deadline = clock.Now().Add(2 * time.Hour)
	if err := s.Create(ctx, id, r); err != nil {
		t.Fatal(err)
	}
	key := s.Key(id)
	if want := s.prefix + "{" + id + "}"; key != want {
		t.Fatalf("Key = %q, want %q", key, want)
	}
	got, err := s.client.HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"user":         `{"id":1,"name":"Zoë \"x\""}`,
		"csrfToken":    `"tok123"`,
		"cookie":       `{"secure":false,"httpOnly":true,"path":"/","sameSite":"lax"}`,
		"__created":    "1796292220850",
		"__lastAccess": "1796292220850",
		"__idle":       "1800000",
		"__deadline":   "1796299420850",
		"__v":          "1",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("field %s = %q, want %q", k, got[k], w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && k != fieldWriteToken {
			t.Errorf("unexpected field %s = %q", k, got[k])
		}
	}
	// The TTL runs from the store's clock: the full idle timeout, though
	// the clock is not the server's.
	pttl := s.client.PTTL(ctx, key).Val()
	if pttl <= 29*time.Minute || pttl > 30*time.Minute {
		t.Errorf("PTTL after Create = %v, want about 30m", pttl)
	}
}

// TestTTLFollowsStoreClock checks that every write sets the key's TTL to the
// record's expiry measured from the store's clock, which here is 26 years
// behind the server's: absolute expiry times (PEXPIREAT) would have made
// Redis drop every key at once.
func TestTTLFollowsStoreClock(t *testing.T) {
	ctx := t.Context()
	clock := storetest.NewClock(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	s := newTestStore(t, Options{Now: clock.Now})
	id := filesession.NewID()
	if err := s.Create(ctx, id, rec(clock.Now(), "a", "1")); err != nil {
		t.Fatal(err)
	}
	pttl := func(op string, lo, hi time.Duration) {
		t.Helper()
		d := s.client.PTTL(ctx, s.Key(id)).Val()
		if d <= lo || d > hi {
			t.Errorf("PTTL after %s = %v, want in (%v, %v]", op, d, lo, hi)
		}
	}
	pttl("Create", 29*time.Minute, 30*time.Minute)

	// 20 minutes later a Touch extends the expiry to 50 minutes after the
	// start: 30 minutes from now.
	at := clock.Advance(20 * time.Minute)
	if err := s.Touch(ctx, id, at, at.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	pttl("Touch", 29*time.Minute, 30*time.Minute)

	// A Save that sets a deadline 5 minutes away caps the TTL.
	at = clock.Advance(time.Minute)
	if err := s.Save(ctx, id, filesession.Change{At: at, Deadline: at.Add(5 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	pttl("Save with a deadline", 4*time.Minute, 5*time.Minute)

	// A Save that leaves the record already expired deletes the key rather
	// than keeping a dead record with a fresh TTL.
	if err := s.Save(ctx, id, filesession.Change{At: at, Deadline: at.Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if n := s.client.Exists(ctx, s.Key(id)).Val(); n != 0 {
		t.Errorf("a Save that expired the record left the key (EXISTS = %d)", n)
	}
}

// TestCorruptRecords writes records this store would never write and checks
// that Load reports them as corrupt (which is also not found), moves them to
// the quarantine key for an operator, and that List skips them.
func TestCorruptRecords(t *testing.T) {
	ctx := t.Context()
	cases := []struct {
		name  string
		write func(s *Store, key string) error
	}{
		{"MissingLastAccess", func(s *Store, key string) error {
			return s.client.HSet(ctx, key, "__created", "1", "a", "1").Err()
		}},
		{"NonNumericLastAccess", func(s *Store, key string) error {
			return s.client.HSet(ctx, key, "__created", "1", "__lastAccess", "yesterday").Err()
		}},
		{"ValueNotJSON", func(s *Store, key string) error {
			return s.client.HSet(ctx, key, "__created", "1", "__lastAccess", ms(time.Now()), "a", "{not json").Err()
		}},
		{"CookieNotObject", func(s *Store, key string) error {
			return s.client.HSet(ctx, key, "__created", "1", "__lastAccess", ms(time.Now()), "cookie", "[1]").Err()
		}},
		{"NotAHash", func(s *Store, key string) error {
			return s.client.Set(ctx, key, `{"cookie":{},"__lastAccess":1}`, time.Hour).Err()
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newTestStore(t, Options{})
			id := filesession.NewID()
			if err := c.write(s, s.Key(id)); err != nil {
				t.Fatal(err)
			}
			listed := 0
			if err := s.List(ctx, func(string, filesession.Record) error { listed++; return nil }); err != nil {
				t.Fatalf("List: %v", err)
			}
			if listed != 0 {
				t.Errorf("List gave %d sessions, want the corrupt one skipped", listed)
			}
			_, err := s.Load(ctx, id)
			if !errors.Is(err, filesession.ErrCorrupt) || !errors.Is(err, filesession.ErrNotFound) {
				t.Fatalf("Load: %v, want an error matching ErrCorrupt and ErrNotFound", err)
			}
			if strings.Contains(err.Error(), id) {
				t.Errorf("error %q reveals the session ID", err)
			}
			if n := s.client.Exists(ctx, s.Key(id)).Val(); n != 0 {
				t.Error("corrupt record still under its key after Load")
			}
			q := s.quarantineKey(id)
			if n := s.client.Exists(ctx, q).Val(); n != 1 {
				t.Fatal("corrupt record not moved to its quarantine key")
			}
			if d := s.client.PTTL(ctx, q).Val(); d <= 0 || d > QuarantineTTL {
				t.Errorf("quarantine PTTL = %v, want in (0, %v]", d, QuarantineTTL)
			}
			err = s.Save(ctx, id, filesession.Change{Set: map[string]json.RawMessage{"b": json.RawMessage("2")}, At: time.Now()})
			if !errors.Is(err, filesession.ErrNotFound) {
				t.Errorf("Save after quarantine: %v, want ErrNotFound", err)
			}
		})
	}

	// A write script meeting a corrupt record reports it the same way.
	t.Run("SeenBySave", func(t *testing.T) {
		s := newTestStore(t, Options{})
		id := filesession.NewID()
		s.client.HSet(ctx, s.Key(id), "__lastAccess", "soon")
		err := s.Save(ctx, id, filesession.Change{At: time.Now()})
		if !errors.Is(err, filesession.ErrCorrupt) {
			t.Errorf("Save of a corrupt record: %v, want ErrCorrupt", err)
		}
		if n := s.client.Exists(ctx, s.quarantineKey(id)).Val(); n != 1 {
			t.Error("corrupt record not quarantined by Save")
		}
	})
}

// TestReservedKeys checks that session keys that would overwrite the stored
// format's own fields are refused, as a store failure that changes nothing.
func TestReservedKeys(t *testing.T) {
	ctx := t.Context()
	s := newTestStore(t, Options{})
	id := filesession.NewID()
	now := time.Now()
	if err := s.Create(ctx, id, rec(now, "a", "1")); err != nil {
		t.Fatal(err)
	}
	raw := json.RawMessage("1")
	for name, c := range map[string]filesession.Change{
		"SetCookie":       {Set: map[string]json.RawMessage{"cookie": raw}, At: now},
		"SetMeta":         {Set: map[string]json.RawMessage{"__lastAccess": raw}, At: now},
		"DeleteMeta":      {Delete: []string{"__created"}, At: now},
		"SetInvalidJSON":  {Set: map[string]json.RawMessage{"b": json.RawMessage("{")}, At: now},
		"DeleteCookieKey": {Delete: []string{"cookie"}, At: now},
	} {
		err := s.Save(ctx, id, c)
		if err == nil || errors.Is(err, filesession.ErrNotFound) {
			t.Errorf("Save %s: %v, want a store error", name, err)
		}
	}
	bad := rec(now, "__v", "7")
	if err := s.Create(ctx, filesession.NewID(), bad); err == nil || errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("Create with a reserved key: %v, want a store error", err)
	}
	got, err := s.Load(ctx, id)
	if err != nil || len(got.Values) != 1 || string(got.Values["a"]) != "1" {
		t.Errorf("after refused saves: %v, %v; want a=1 only", got.Values, err)
	}
}

// TestListOwnKeysOnly shares one server between two stores whose prefixes
// nest and some application keys, and checks that each store lists exactly
// its own sessions.
func TestListOwnKeysOnly(t *testing.T) {
	ctx := t.Context()
	base := redistest.UniquePrefix(t)
	outer := newTestStore(t, Options{Prefix: base})
	inner := newTestStore(t, Options{Prefix: base + "x:"})
	glob := newTestStore(t, Options{Prefix: base + "*?[a]:"}) // glob syntax in a prefix
	c := outer.client
	c.Set(ctx, base+"{not-an-id}", "app", time.Minute)
	c.Set(ctx, base+"counter", "1", time.Minute)
	now := time.Now()
	want := map[*Store][]string{}
	for _, s := range []*Store{outer, inner, glob} {
		for range 3 {
			id := filesession.NewID()
			if err := s.Create(ctx, id, rec(now, "a", "1")); err != nil {
				t.Fatal(err)
			}
			want[s] = append(want[s], id)
		}
	}
	for s, ids := range want {
		seen := map[string]bool{}
		if err := s.List(ctx, func(id string, _ filesession.Record) error { seen[id] = true; return nil }); err != nil {
			t.Fatal(err)
		}
		if len(seen) != len(ids) {
			t.Errorf("store %q listed %d sessions, want %d", s.prefix, len(seen), len(ids))
		}
		for _, id := range ids {
			if !seen[id] {
				t.Errorf("store %q did not list one of its sessions", s.prefix)
			}
		}
	}
}

// TestLoadWithCancelledContextSendsNothing checks that a cancelled request
// costs Redis nothing and reports the context's error, not "no session".
func TestLoadWithCancelledContextSendsNothing(t *testing.T) {
	s := newTestStore(t, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Load(ctx, filesession.NewID())
	if !errors.Is(err, context.Canceled) || errors.Is(err, filesession.ErrNotFound) {
		t.Errorf("Load with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestManyKeys stores a session with more keys than Lua's unpack can spread
// at once, through every write path, and reads them all back.
func TestManyKeys(t *testing.T) {
	ctx := t.Context()
	for _, twoPhase := range []bool{false, true} {
		s := newTestStore(t, Options{})
		s.twoPhaseRenew = twoPhase
		const n = 10000
		r := rec(time.Now())
		set := map[string]json.RawMessage{}
		var del []string
		for i := range n {
			r.Values[fmt.Sprint("k", i)] = json.RawMessage(strconv.Itoa(i))
			set[fmt.Sprint("s", i)] = json.RawMessage("1")
			del = append(del, fmt.Sprint("k", i))
		}
		id, newID := filesession.NewID(), filesession.NewID()
		if err := s.Create(ctx, id, r); err != nil {
			t.Fatalf("Create with %d keys: %v", n, err)
		}
		if err := s.Save(ctx, id, filesession.Change{Set: set, Delete: del[:n/2], At: time.Now()}); err != nil {
			t.Fatalf("Save of %d keys: %v", n, err)
		}
		if err := s.Update(ctx, id, func(r *filesession.Record) error { r.Values["u"] = json.RawMessage("1"); return nil }); err != nil {
			t.Fatalf("Update of a record with %d keys: %v", 2*n, err)
		}
		if err := s.Renew(ctx, id, newID, filesession.Change{Delete: del[n/2:], At: time.Now()}); err != nil {
			t.Fatalf("Renew of a record with %d keys: %v", 2*n, err)
		}
		got, err := s.Load(ctx, newID)
		if err != nil || len(got.Values) != n+1 {
			t.Fatalf("Load: %d values, %v; want %d", len(got.Values), err, n+1)
		}
	}
}

// TestRetriedWritesAreIdempotent runs the Create, Update and Renew scripts
// twice with the same arguments, as go-redis does when a reply is lost
// after the command ran: the repeat must report success, not "exists",
// "conflict" or "missing", and change nothing more.
func TestRetriedWritesAreIdempotent(t *testing.T) {
	ctx := t.Context()
	s := newTestStore(t, Options{})
	now := time.Now()
	r := rec(now, "a", "1")
	fields, _ := recordFields(&r)
	id, newID := filesession.NewID(), filesession.NewID()
	run := func(sc interface {
		Run(context.Context, redis.Scripter, []string, ...any) *redis.Cmd
	}, keys []string, args ...any) string {
		t.Helper()
		res, err := sc.Run(ctx, s.client, keys, args...).Text()
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	create := append([]any{ms(now), durMS(s.ttl), "tok1", ms(now), durMS(r.IdleTimeout), "0"}, fields...)
	for i := range 2 {
		if res := run(createScript, []string{s.Key(id)}, create...); res != resOK {
			t.Fatalf("Create #%d = %s, want ok", i+1, res)
		}
	}
	create[2] = "tok2"
	if res := run(createScript, []string{s.Key(id)}, create...); res != resExists {
		t.Fatalf("Create with another token = %s, want exists", res)
	}

	r.Values["u"] = json.RawMessage("1")
	fields, _ = recordFields(&r)
	update := append([]any{ms(now), durMS(s.ttl), "1", "tok3", ms(now), durMS(r.IdleTimeout), "0"}, fields...)
	for i := range 2 {
		if res := run(updateScript, []string{s.Key(id)}, update...); res != resOK {
			t.Fatalf("Update #%d = %s, want ok", i+1, res)
		}
	}
	if v := s.client.HGet(ctx, s.Key(id), fieldVersion).Val(); v != "2" {
		t.Errorf("version after a repeated Update = %s, want 2 (applied once)", v)
	}

	renew, _ := changeArgs([]any{ms(now), durMS(s.ttl), "tok4"}, filesession.Change{At: now})
	for i := range 2 {
		if res := run(renewScript, []string{s.Key(id), s.Key(newID)}, renew...); res != resOK {
			t.Fatalf("Renew #%d = %s, want ok", i+1, res)
		}
	}
	if got, err := s.Load(ctx, newID); err != nil || string(got.Values["u"]) != "1" {
		t.Errorf("renewed session: %v, %v", got.Values, err)
	}
}
