package filesession

import "time"

// StoreEvents receives what a store does behind its methods' backs —
// retries, lock waits, quarantines, reaper passes — for metrics and for
// operator tools that report progress. A store calls these methods from
// whichever goroutine is doing the work, while it may hold a session's
// lock, so every method must be cheap, must not block, must be safe for
// concurrent use, and must never call back into the store. A nil
// StoreEvents means none is wanted; stores check for nil before every call.
//
// Events never carry a session ID: what happened is counted, not who it
// happened to. The stores log the affected session by a short hash.
type StoreEvents interface {
	// Retried is called before each retry of a filesystem or network
	// operation that failed with a transient error. op names the operation
	// ("read", "write", "touch", "remove", "stat", ...), err is the error
	// being retried.
	Retried(op string, err error)

	// LockWaited is called after every attempt to take a session's lock,
	// with how long it took (close to zero when nobody else held the lock)
	// and its error: nil if the lock was taken, one matching
	// ErrLockTimeout if the wait ran out, or the context's error.
	LockWaited(wait time.Duration, err error)

	// Quarantined is called after a record that could not be decoded (or
	// could not be used as a session) was moved aside for an operator to
	// inspect. cause says what was wrong with it.
	Quarantined(cause error)

	// Reaped is called after each expired session the reaper removed.
	Reaped()

	// ReapDone is called at the end of every reap pass, background or
	// explicit, with how many session records the pass examined, how many
	// of those it removed, how long it took, and its error (nil for a clean
	// pass). examined minus removed is the number of sessions left after
	// the pass, which is how a metrics collector can keep a live-session
	// gauge without a scan of its own.
	ReapDone(examined, removed int, took time.Duration, err error)
}
