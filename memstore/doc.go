// Package memstore is an in-memory filesession.Store, for tests and for
// programs that run as a single process and can lose their sessions on
// restart.
//
// It keeps deep copies of records (nothing a caller holds aliases the
// store's data), decides expiry with its Now func, and removes expired
// records lazily, when an operation finds one, or in bulk with Reap. All
// sessions share one mutex: memstore is meant to be simple and exact, not
// to scale across cores. It implements filesession.Store, Lister, Reaper
// and TTLer, and passes the storetest conformance suite.
package memstore
