// Package fakeclock is an injectable clock for tests of time-dependent
// behaviour outside a synctest bubble: it moves only when told to, and is
// safe for concurrent use.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a clock that only moves when told to. The zero value reads the
// zero time; use New.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a Clock at 2026-11-22 09:00 UTC.
func New() *Clock { return &Clock{t: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)} }

// Now returns the clock's time. Pass the method value as an option's clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}
