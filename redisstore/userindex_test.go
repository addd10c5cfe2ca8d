package redisstore

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/storetest"
	"github.com/redis/go-redis/v9"
)

func userRec(now time.Time, user string) filesession.Record {
	r := rec(now, "n", "1")
	r.User = user
	return r
}

// members returns the sorted members of user's set.
func members(t *testing.T, s *Store, user string) []string {
	t.Helper()
	m, err := s.client.ZRange(t.Context(), s.userKey(user), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func listedIDs(t *testing.T, s *Store, user string) []string {
	t.Helper()
	list, err := s.UserSessions(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, us := range list {
		ids = append(ids, us.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestUserIndexLayout(t *testing.T) {
	ctx := t.Context()
	clock := storetest.NewClock(time.UnixMilli(1_796_292_220_850))
	s := newTestStore(t, Options{Now: clock.Now})
	id := filesession.NewID()
	if err := s.Create(ctx, id, userRec(clock.Now(), "alice@example.com")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.client.HGet(ctx, s.Key(id), "__user").Result(); got != "alice@example.com" {
		t.Errorf("__user field = %q", got)
	}
	key := s.UserKey("alice@example.com")
	if !strings.HasPrefix(key, s.prefix+"user:{u:") || !strings.HasSuffix(key, "}") || strings.Contains(key, "alice") {
		t.Errorf("user key %q: want <prefix>user:{u:<hash>}, without the user in it", key)
	}
	z, err := s.client.ZRangeWithScores(ctx, key, 0, -1).Result()
	if err != nil || len(z) != 1 || z[0].Member != id || int64(z[0].Score) != clock.Now().UnixMilli() {
		t.Errorf("user set = %v, %v; want the session, scored with the store's clock", z, err)
	}
	// The set is not a session to List, not even to a store whose prefix
	// extends this one's up to the set's name.
	for _, st := range []*Store{s, New(s.client, Options{Prefix: s.prefix + "user:", Now: clock.Now})} {
		n := 0
		st.List(ctx, func(string, filesession.Record) error { n++; return nil })
		if want := map[bool]int{true: 1, false: 0}[st == s]; n != want {
			t.Errorf("List of prefix %q gave %d sessions, want %d", st.prefix, n, want)
		}
	}
}

func TestUserIndexSelfHeals(t *testing.T) {
	ctx := t.Context()
	clock := storetest.NewClock(time.Now().Truncate(time.Millisecond))
	s := newTestStore(t, Options{Now: clock.Now})
	live := filesession.NewID()
	if err := s.Create(ctx, live, userRec(clock.Now(), "alice")); err != nil {
		t.Fatal(err)
	}
	bobs := filesession.NewID()
	if err := s.Create(ctx, bobs, userRec(clock.Now(), "bob")); err != nil {
		t.Fatal(err)
	}
	// What lost replies, failovers and crashes can leave: entries for
	// sessions never written or of another user, and garbage.
	old := float64(clock.Now().Add(-time.Hour).UnixMilli())
	ghost, fresh := filesession.NewID(), filesession.NewID()
	s.client.ZAdd(ctx, s.userKey("alice"),
		redis.Z{Score: old, Member: ghost},
		redis.Z{Score: old, Member: bobs},
		redis.Z{Score: old, Member: "not an id"},
		redis.Z{Score: float64(clock.Now().UnixMilli()), Member: fresh}, // a Create on its way
	)
	if got := listedIDs(t, s, "alice"); !slices.Equal(got, []string{live}) {
		t.Errorf("alice: %v, want only %v", got, live)
	}
	if got, want := members(t, s, "alice"), sorted(live, fresh); !slices.Equal(got, want) {
		t.Errorf("alice's set after a listing: %v, want the live session and the young entry %v", got, want)
	}
	// Past the grace period the young stale entry goes too.
	clock.Advance(userGrace + s.timeout + time.Second)
	listedIDs(t, s, "alice")
	if got := members(t, s, "alice"); !slices.Equal(got, []string{live}) {
		t.Errorf("alice's set after the grace period: %v, want %v", got, live)
	}
	// An entry added again meanwhile (a new score) is not removed by a
	// reader that saw the old one.
	cutoffPast := clock.Now().Add(time.Hour)
	s.client.ZAdd(ctx, s.userKey("alice"), redis.Z{Score: float64(clock.Now().UnixMilli()), Member: ghost})
	s.prune(ctx, s.userKey("alice"), []redis.Z{{Score: old, Member: ghost}}, cutoffPast)
	if got := members(t, s, "alice"); !slices.Contains(got, ghost) {
		t.Error("prune removed an entry whose score changed since it was read")
	}
}

func sorted(ids ...string) []string { return slices.Sorted(slices.Values(ids)) }

func TestUserIndexFollowsDeleteRenewAndExpiry(t *testing.T) {
	for _, twoPhase := range []bool{false, true} {
		t.Run(map[bool]string{false: "OneScript", true: "TwoPhase"}[twoPhase], func(t *testing.T) {
			ctx := t.Context()
			clock := storetest.NewClock(time.Now().Truncate(time.Millisecond))
			s := newTestStore(t, Options{Now: clock.Now})
			s.twoPhaseRenew = twoPhase
			a, b := filesession.NewID(), filesession.NewID()
			for _, id := range []string{a, b} {
				if err := s.Create(ctx, id, userRec(clock.Now(), "alice")); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Delete(ctx, a); err != nil {
				t.Fatal(err)
			}
			if got := members(t, s, "alice"); !slices.Equal(got, []string{b}) {
				t.Errorf("after Delete: %v, want %v", got, b)
			}
			renewed := filesession.NewID()
			if err := s.Renew(ctx, b, renewed, filesession.Change{At: clock.Now()}); err != nil {
				t.Fatal(err)
			}
			if got := members(t, s, "alice"); !slices.Equal(got, []string{renewed}) {
				t.Errorf("after Renew: %v, want %v", got, renewed)
			}
			if r, _ := s.Load(ctx, renewed); r.User != "alice" {
				t.Errorf("renewed record's user %q", r.User)
			}
			clock.Advance(31 * time.Minute) // past the idle timeout and the grace
			if got := listedIDs(t, s, "alice"); len(got) != 0 {
				t.Errorf("after expiry: %v, want none", got)
			}
			if n, _ := s.client.Exists(ctx, s.userKey("alice")).Result(); n != 0 {
				t.Error("the set of a user whose sessions all expired was not pruned away")
			}
		})
	}
}

// Adding to a large set prunes it, so the set of a user who logs in every
// day and never looks at the sessions page stays bounded.
func TestUserIndexPrunedOnAdd(t *testing.T) {
	ctx := t.Context()
	clock := storetest.NewClock(time.Now().Truncate(time.Millisecond))
	s := newTestStore(t, Options{Now: clock.Now})
	old := float64(clock.Now().Add(-time.Hour).UnixMilli())
	for range userSetPrune + 10 {
		s.client.ZAdd(ctx, s.userKey("alice"), redis.Z{Score: old, Member: filesession.NewID()})
	}
	id := filesession.NewID()
	if err := s.Create(ctx, id, userRec(clock.Now(), "alice")); err != nil {
		t.Fatal(err)
	}
	if got := members(t, s, "alice"); !slices.Equal(got, []string{id}) {
		t.Errorf("after an add to a large set: %d members, want only the new session", len(got))
	}
}
