// Package convoytest helps test code that uses convoy: a fake Clock that
// drives retries, leases and signature timestamps without sleeping.
//
//	clk := convoytest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
//	d, _ := convoy.New(convoy.Config{Store: memory.New(), Clock: clk})
//	// ... Send; the receiver answers 500 ...
//	clk.Advance(5 * time.Second) // the first retry comes due now
//
// Signatures made under a fake clock carry its time, so a receiver under
// test verifies them with a Verifier reading the same clock:
// convoy.Verifier{Secrets: ..., Now: clk.Now}.
package convoytest

import (
	"context"
	"sync"
	"time"

	"github.com/convoykit/convoy"
)

// Clock is a fake convoy.Clock: its time moves only when Advance or Set is
// called, and its timers fire then. The zero value is not usable; make one
// with NewClock. It is safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*timer
	changed chan struct{} // closed and replaced when timers change
}

var _ convoy.Clock = (*Clock)(nil)

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, changed: make(chan struct{})}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and fires the timers due by then.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	t := c.now.Add(d)
	c.mu.Unlock()
	c.Set(t)
}

// Set moves the clock to t (backwards too) and fires the timers due by
// then.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	var keep, fire []*timer
	for _, tm := range c.timers {
		if tm.at.After(t) {
			keep = append(keep, tm)
		} else {
			fire = append(fire, tm)
		}
	}
	c.timers = keep
	if len(fire) > 0 {
		c.signal()
	}
	c.mu.Unlock()
	for _, tm := range fire {
		tm.fire(t)
	}
}

// Timers returns how many timers are waiting to fire.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// WaitForTimers blocks until at least n timers are waiting, that is until
// the code under test has gone to sleep on the clock, or until ctx ends.
// Call it before Advance when the advance must wake a sleeper.
func (c *Clock) WaitForTimers(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		if len(c.timers) >= n {
			c.mu.Unlock()
			return nil
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// NewTimer returns a timer that fires once the clock reaches Now() + d.
func (c *Clock) NewTimer(d time.Duration) convoy.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: make(chan time.Time, 1), at: c.now.Add(d), clock: c}
	if d <= 0 {
		t.fire(c.now)
		return t
	}
	c.timers = append(c.timers, t)
	c.signal()
	return t
}

// signal wakes WaitForTimers callers; c.mu is held.
func (c *Clock) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

type timer struct {
	c     chan time.Time
	at    time.Time
	clock *Clock
	once  sync.Once
}

func (t *timer) fire(now time.Time) { t.once.Do(func() { t.c <- now }) }

// C delivers the clock's time when the timer fires.
func (t *timer) C() <-chan time.Time { return t.c }

// Stop keeps the timer from firing; it reports whether it was waiting.
func (t *timer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.timers {
		if x == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			c.signal()
			return true
		}
	}
	return false
}
