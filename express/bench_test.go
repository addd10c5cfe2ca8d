package express_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/filestore"
	"github.com/filesession/filesession/internal/expresstest"
)

// BenchmarkStore runs the same store workloads through session-file-store
// 1.5.0 (testdata/express/bench.js, in a node process) and through the
// express preset of the file store, side by side in one run:
//
//	go test ./express -run '^$' -bench BenchmarkStore -benchtime 3000x
//
// Sub-benchmarks are <op>/conc<C>/<impl>: op is create, get, touch or
// destroy, C the operations in flight, impl "node" (session-file-store,
// which fsyncs each file but not the directory), "go" (ExpressOptions as
// shipped: SyncFull, which also fsyncs the directory) or "go-syncfile"
// (ExpressOptions with SyncFile: Node's durability). The node rows report
// the time bench.js measured around its operations, excluding node's start
// and its setup. Pass -benchtime Nx for equal operation counts on both
// sides.
//
// The session directories are made under $FILESESSION_BENCH_DIR if set (for
// example /dev/shm, where fsync is free and what remains is each stack's own
// cost), else under the test's temporary directory.
func BenchmarkStore(b *testing.B) {
	for _, op := range []string{"create", "get", "touch", "destroy"} {
		for _, conc := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/conc%d/node", op, conc), func(b *testing.B) { benchNode(b, op, conc) })
			b.Run(fmt.Sprintf("%s/conc%d/go", op, conc), func(b *testing.B) { benchGo(b, op, conc, filestore.SyncFull) })
			b.Run(fmt.Sprintf("%s/conc%d/go-syncfile", op, conc), func(b *testing.B) { benchGo(b, op, conc, filestore.SyncFile) })
		}
	}
}

// benchNode runs bench.js for b.N operations and reports its timing.
func benchNode(b *testing.B, op string, conc int) {
	node := expresstest.Node(b)
	dir := benchDir(b)
	cmd := exec.Command(node, filepath.Join(expresstest.AppDir(), "bench.js"),
		"--dir", dir, "--op", op, "--conc", strconv.Itoa(conc), "--n", strconv.Itoa(b.N))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("bench.js: %v", err)
	}
	var res struct {
		NsPerOp float64 `json:"ns_per_op"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		b.Fatalf("bench.js said %q: %v", out, err)
	}
	b.ReportMetric(res.NsPerOp, "ns/op")
}

// benchDir returns a fresh session directory path (not yet created) for
// one benchmark, removed at its end.
func benchDir(b *testing.B) string {
	base := os.Getenv("FILESESSION_BENCH_DIR")
	if base == "" {
		return filepath.Join(b.TempDir(), "sessions")
	}
	d, err := os.MkdirTemp(base, "filesession-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(d) })
	return filepath.Join(d, "sessions")
}

// benchRecord is the reference session, as bench.js stores it.
func benchRecord() filesession.Record {
	tok := make([]byte, 64)
	for i := range tok {
		tok[i] = "0123456789abcdef"[i%16]
	}
	return filesession.Record{
		Values: map[string]json.RawMessage{
			"csrfToken": json.RawMessage(`"` + string(tok) + `"`),
			"user":      json.RawMessage(`{"userId":"478abec743056916","email":"ada@example.com"}`),
		},
		IdleTimeout: 24 * time.Hour,
		Cookie:      filesession.CookieAttrs{HTTPOnly: true, Path: "/", SameSite: "lax"},
	}
}

// benchGo runs b.N operations of op on the express preset with conc
// goroutines, the way bench.js keeps conc operations in flight.
func benchGo(b *testing.B, op string, conc int, sync filestore.SyncMode) {
	o := filestore.ExpressOptions(benchDir(b))
	o.Logger, o.ReapInterval, o.Sync = quiet, 0, sync
	s, err := filestore.Open(o)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	rec := benchRecord()
	newID := func() string { return filesession.NewIDOf(24) }

	poolSize := min(b.N, 1000)
	switch op {
	case "create":
		poolSize = 0
	case "destroy":
		poolSize = b.N
	}
	ids := make([]string, max(b.N, poolSize))
	for i := range ids {
		ids[i] = newID()
	}
	parallel(b, poolSize, conc, func(i int) error { return s.Create(ctx, ids[i], rec) })
	pool := ids[:poolSize]

	var body func(i int) error
	switch op {
	case "create":
		body = func(i int) error { return s.Create(ctx, ids[i], rec) }
	case "get":
		body = func(i int) error {
			_, err := s.Load(ctx, pool[i%len(pool)])
			return err
		}
	case "touch":
		// What the manager does for an unchanged request: a Load, then a
		// Touch; session-file-store's touch likewise reads the file again.
		body = func(i int) error {
			id := pool[i%len(pool)]
			r, err := s.Load(ctx, id)
			if err != nil {
				return err
			}
			now := time.Now()
			r.LastAccess = now
			return s.Touch(ctx, id, now, r.ExpiresAt())
		}
	case "destroy":
		body = func(i int) error { return s.Delete(ctx, pool[i]) }
	}
	b.ResetTimer()
	parallel(b, b.N, conc, body)
}

// parallel runs fn(i) for i in [0, n) on conc goroutines.
func parallel(b *testing.B, n, conc int, fn func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range min(conc, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		b.Fatal(first)
	}
}
