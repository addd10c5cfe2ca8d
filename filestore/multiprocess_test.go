package filestore_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
)

// Two real processes, each with 32 goroutines, on one session in one
// directory: through Update no increment is lost, through plain Saves of
// different keys no key is lost, and through the manager's middleware
// every increment a client was told of is in the final count exactly once.

var mpOps = flag.Int("mp.ops", 10, "operations per goroutine in the two-process tests")

const mpGoroutines = 32

func init() {
	childRoles["update"] = func(t *testing.T, dir, id string) {
		s := openShared(t, dir)
		childSay("ready")
		childWait(t)
		hammer(t, s, id, "update", "child")
		childSay("done")
	}
	childRoles["save"] = func(t *testing.T, dir, id string) {
		s := openShared(t, dir)
		childSay("ready")
		childWait(t)
		hammer(t, s, id, "save", "child")
		childSay("done")
	}
	childRoles["web"] = func(t *testing.T, dir, cookie string) {
		s := openShared(t, dir)
		a := newWebapp(t, s, nil)
		childSay("ready")
		childWait(t)
		got := webIncrements(t, a, cookie)
		childSay("done %s", strings.Join(got, ","))
	}
}

// openShared opens the store as every process of these tests does: the
// defaults, SyncFull included.
func openShared(t *testing.T, dir string) *filestore.Store {
	t.Helper()
	s, err := filestore.Open(filestore.Options{Path: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// hammer runs mpGoroutines goroutines of *mpOps operations each on session
// id: Update increments of "n", or Saves of a key of their own.
func hammer(t *testing.T, s *filestore.Store, id, mode, tag string) {
	var wg sync.WaitGroup
	for g := range mpGoroutines {
		wg.Go(func() {
			for i := range *mpOps {
				var err error
				switch mode {
				case "update":
					err = s.Update(t.Context(), id, func(r *filesession.Record) error {
						n, err := strconv.Atoi(string(r.Values["n"]))
						if err != nil {
							return err
						}
						r.Values["n"] = json.RawMessage(strconv.Itoa(n + 1))
						return nil
					})
				case "save":
					key := fmt.Sprintf("%s_%d_%d", tag, g, i)
					err = s.Save(t.Context(), id, filesession.Change{
						Set: map[string]json.RawMessage{key: json.RawMessage(strconv.Itoa(i))},
						At:  time.Now(),
					})
				}
				if err != nil {
					t.Errorf("%s %d/%d: %v", mode, g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func newCounter(t *testing.T, s *filestore.Store) string {
	t.Helper()
	id := filesession.NewID()
	now := time.Now()
	r := filesession.Record{Values: map[string]json.RawMessage{"n": json.RawMessage("0")}, Created: now, LastAccess: now, IdleTimeout: time.Hour}
	if err := s.Create(t.Context(), id, r); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestTwoProcessesUpdateOneSession(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openShared(t, dir)
	id := newCounter(t, s)
	c := startChild(t, "update", dir, id)
	c.expect(t, "ready")
	c.send(t, "go")
	hammer(t, s, id, "update", "parent")
	c.expect(t, "done")
	c.wait(t)
	got, err := s.Load(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	total := 2 * mpGoroutines * *mpOps
	n, _ := strconv.Atoi(string(got.Values["n"]))
	if n != total {
		t.Errorf("counter = %d after %d increments: %d lost", n, total, total-n)
	}
	t.Logf("%d increments by 2 processes × %d goroutines, %d lost", total, mpGoroutines, total-n)
}

func TestTwoProcessesSaveDisjointKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openShared(t, dir)
	id := newCounter(t, s)
	c := startChild(t, "save", dir, id)
	c.expect(t, "ready")
	c.send(t, "go")
	hammer(t, s, id, "save", "parent")
	c.expect(t, "done")
	c.wait(t)
	got, err := s.Load(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, tag := range []string{"parent", "child"} {
		for g := range mpGoroutines {
			for i := range *mpOps {
				if string(got.Values[fmt.Sprintf("%s_%d_%d", tag, g, i)]) != strconv.Itoa(i) {
					missing++
				}
			}
		}
	}
	if missing > 0 || string(got.Values["n"]) != "0" {
		t.Errorf("%d of %d keys lost (n = %s)", missing, 2*mpGoroutines**mpOps, got.Values["n"])
	}
}

// webIncrements sends mpGoroutines × *mpOps POST /incr requests with the
// session cookie and returns the counts they answered.
func webIncrements(t *testing.T, a *webapp, cookie string) []string {
	var mu sync.Mutex
	var got []string
	var wg sync.WaitGroup
	for range mpGoroutines {
		wg.Go(func() {
			for range *mpOps {
				r, err := a.do("POST", "/incr?k=n", cookie)
				if err != nil || r.code != http.StatusOK {
					t.Errorf("POST /incr: %v %d %q", err, r.code, r.body)
					return
				}
				mu.Lock()
				got = append(got, r.body)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return got
}

// Two processes serve the same session, each with its own Manager over its
// own Store on the directory, and clients hammer both. Every response
// answers a distinct count, and the counts are exactly 1..total: no
// increment lost, none counted twice.
func TestTwoProcessesThroughTheMiddleware(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openShared(t, dir)
	a := newWebapp(t, s, nil)
	cookie := a.login()
	c := startChild(t, "web", dir, cookie)
	c.expect(t, "ready")
	c.send(t, "go")
	got := webIncrements(t, a, cookie)
	line, err := c.stdout.ReadString('\n')
	if !strings.HasPrefix(line, "done ") {
		t.Fatalf("child said %q (%v); stderr:\n%s", line, err, c.stderr.String())
	}
	c.wait(t)
	got = append(got, strings.Split(strings.TrimSpace(strings.TrimPrefix(line, "done ")), ",")...)
	total := 2 * mpGoroutines * *mpOps
	var counts []int
	for _, g := range got {
		n, err := strconv.Atoi(g)
		if err != nil {
			t.Fatalf("a count %q", g)
		}
		counts = append(counts, n)
	}
	slices.Sort(counts)
	for i, n := range counts {
		if n != i+1 {
			t.Fatalf("answered counts are not 1..%d: at %d got %d (%d answers)", total, i, n, len(counts))
		}
	}
	if len(counts) != total {
		t.Fatalf("%d answers for %d requests", len(counts), total)
	}
	if v := a.show(cookie); !strings.Contains(v, fmt.Sprintf(`"n":%d`, total)) {
		t.Errorf("the session holds %s, want n = %d", v, total)
	}
}
