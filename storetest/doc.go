// Package storetest is the conformance suite for filesession.Store
// implementations: every store in this module (memstore, filestore,
// redisstore) runs it from its own tests, and so should third-party stores.
//
// Use it from a store's test file:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, now func() time.Time) filesession.Store {
//			s := memstore.New()
//			s.Now = now
//			return s
//		})
//	}
//
// Run calls newStore once per subtest, so each case starts from a fresh,
// empty store; newStore registers any cleanup with t.Cleanup. The suite owns
// a fake [Clock] and passes its Now func, which the store must use for every
// expiry decision: the suite never sleeps, it advances the clock. The clock
// starts at the real time truncated to the millisecond and only moves
// forward, so a store whose server also expires keys on its own (Redis)
// never sees a key vanish before the suite expects it to.
//
// What the suite assumes about a store:
//
//   - IDs are in the format of [filesession.NewID] (filesession.IDLength
//     characters of base64url). A store configured for another length (the
//     file store's express preset takes express-session's 32-character IDs)
//     runs the same suite with [RunWith] and a [Config] giving its length
//     and ID generator; the invalid-ID cases are then built around that
//     length.
//   - Timestamps are kept to the millisecond: times are compared after
//     truncation to milliseconds, and every time the suite writes is whole
//     milliseconds already. Durations (IdleTimeout) are whole minutes.
//   - Values are given in compact JSON and must come back byte for byte:
//     no HTML escaping of <, > and &, no re-ordering of object keys, no
//     rounding of 2^53+1. A failure message says when the bytes differ but
//     the JSON is equivalent, which points at a store that re-encodes.
//   - Operations take real time (network round trips, fsync) but the suite
//     makes no timed assertions, and its idle timeouts are minutes long, so
//     a server-side TTL computed from the fake clock never fires mid-test.
//   - Create over an ID whose record has expired may either succeed
//     (replacing it) or return ErrExists; the suite only checks that the
//     expired data never comes back.
//   - A context that is already cancelled may make any method fail or not:
//     the suite accepts success, or an error matching context.Canceled (or
//     filesession.ErrLockTimeout), but never ErrNotFound, never a panic, and
//     never a half-done operation: a call that failed changed nothing.
//
// Beyond the letter of filesession.Store, the suite also requires what the
// manager relies on: Load does not move LastAccess (only Save and Touch do);
// records returned by Load, and records and changes passed in, share no
// memory with the store; and List's fn may call the store, since per-user
// revocation deletes sessions from inside it.
//
// Optional capabilities are discovered by type assertion and tested when
// present: [filesession.Lister], [filesession.Reaper], [filesession.TTLer]
// and [filesession.UserIndex]; their subtests are skipped, with a message
// saying so, for stores without them. Every store must keep
// [filesession.Record.User] (the "User" cases), index or not.
//
// The concurrency cases start dozens of goroutines on one session; run the
// suite under the race detector (go test -race).
package storetest
