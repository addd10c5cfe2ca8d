package storetest

import (
	"sync"
	"time"
)

// Clock is a manually driven clock for tests of stores and of code that uses
// them. Its Now method has the signature stores take as their clock, and it
// only changes when Advance is called, so expiry can be tested exactly (at
// the millisecond an entry expires) and without sleeping. A Clock is safe
// for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock that reads start until it is advanced. The
// monotonic reading of start is dropped, so that the clock's times compare
// and print like the wall-clock times stores persist.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start.Round(0)}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d and returns the new time. A negative d moves
// it backwards, which simulates a wall-clock step (NTP); the conformance
// suite itself only moves forward.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}
