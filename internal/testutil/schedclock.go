package testutil

import (
	"sync"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/convoytest"
)

// SchedClock is a fake clock for tests that move time under a running
// dispatcher and must know that its scheduler saw the move.
//
// A scheduler reads the time (to claim, and to compute how long to sleep),
// then arms a timer relative to the clock. On a plain fake clock, a test
// that advances between those two steps makes the timer count from the new
// time: the scheduler then sleeps past work the move made due, and the
// test hangs. SchedClock serializes Advance with NewTimer and, when the
// clock moved since the scheduler armed its previous timer, counts the new
// timer from that previous arming instead: it fires no later than the
// scheduler meant, at worst early, which costs one extra look at the
// store.
//
// NewTimer is meant for one sleeper (the scheduler); Now may be called by
// anyone. A SchedClock is safe for concurrent use.
type SchedClock struct {
	*convoytest.Clock

	mu    sync.Mutex
	armed time.Time // clock reading at the last NewTimer
	clean bool      // the clock had not moved since the NewTimer before it
	made  int
}

// NewSchedClock returns a SchedClock reading start.
func NewSchedClock(start time.Time) *SchedClock {
	return &SchedClock{Clock: convoytest.NewClock(start)}
}

// NewTimer returns a timer that fires d after the time the scheduler read
// before arming it (see SchedClock).
func (c *SchedClock) NewTimer(d time.Duration) convoy.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.Clock.Now()
	base := now
	c.clean = c.made == 0 || c.armed.Equal(now)
	if !c.clean {
		base = c.armed // the reads that led here came after that
	}
	c.armed = now
	c.made++
	return c.Clock.NewTimer(base.Add(d).Sub(now))
}

// Advance moves the clock by d and fires the timers now due.
func (c *SchedClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Clock.Advance(d)
}

// Settled reports whether the scheduler sleeps on a timer it armed at the
// current time, with no move of the clock since its previous timer: the
// look at the store before that sleep (its claim) read the current time.
// After an Advance, wait for Settled before checking what the scheduler
// did, or did not, claim.
func (c *SchedClock) Settled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.made > 0 && c.clean && c.armed.Equal(c.Clock.Now()) && c.Clock.Timers() > 0
}
