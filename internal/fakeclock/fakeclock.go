// Package fakeclock is a manually advanced clock for tests of time-driven
// behaviour (retry schedules, lease expiry) without sleeping.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a fake clock: time moves only when Advance or Set is called.
// It is safe for concurrent use and satisfies convoy.Clock.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer
}

// New returns a clock reading start.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and fires the timers now due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	var keep []*timer
	var fire []*timer
	for _, t := range c.timers {
		if !t.at.After(now) {
			fire = append(fire, t)
		} else {
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	for _, t := range fire {
		t.fire(now)
	}
}

// Timers returns how many timers are waiting, so a test can wait until the
// code under test is asleep before advancing.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// NewTimer returns a timer that fires when the clock reaches now+d.
func (c *Clock) NewTimer(d time.Duration) *Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: make(chan time.Time, 1), at: c.now.Add(d), clock: c}
	if d <= 0 {
		t.fire(c.now)
	} else {
		c.timers = append(c.timers, t)
	}
	return &Timer{t}
}

type timer struct {
	c     chan time.Time
	at    time.Time
	clock *Clock
	once  sync.Once
}

func (t *timer) fire(now time.Time) {
	t.once.Do(func() { t.c <- now })
}

// Timer is a fake timer.
type Timer struct{ t *timer }

// C delivers the time when the timer fires.
func (t *Timer) C() <-chan time.Time { return t.t.c }

// Stop removes the timer; it reports whether the timer was still waiting.
func (t *Timer) Stop() bool {
	c := t.t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.timers {
		if x == t.t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			return true
		}
	}
	return false
}
