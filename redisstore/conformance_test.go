package redisstore

import (
	"testing"
	"time"

	"github.com/filesession/filesession"
	"github.com/filesession/filesession/internal/redistest"
	"github.com/filesession/filesession/storetest"
	"github.com/redis/go-redis/v9"
)

// TestConformance runs the shared store suite on a single node, where Renew
// is one script.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) filesession.Store {
		return newTestStore(t, Options{Now: now})
	})
}

// TestConformanceTwoPhaseRenew runs the suite with the Renew that cluster
// and ring clients use (freeze, copy, commit), on a single node.
func TestConformanceTwoPhaseRenew(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) filesession.Store {
		s := newTestStore(t, Options{Now: now})
		s.twoPhaseRenew = true
		return s
	})
}

// TestConformanceCluster runs the suite through a real *redis.ClusterClient
// against a one-node cluster, which refuses any script whose keys are in
// different hash slots (CROSSSLOT): it proves that every script keeps to one
// slot and that List scans through the cluster's masters.
func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster conformance is slow; skipped with -short")
	}
	srv := redistest.NewCluster(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{srv.Addr},
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { c.Close() })
	storetest.Run(t, func(t *testing.T, now func() time.Time) filesession.Store {
		s := New(c, Options{Now: now, Prefix: redistest.UniquePrefix(t)})
		if !s.twoPhaseRenew {
			t.Fatal("a cluster client did not select the two-phase renew")
		}
		return s
	})
}
