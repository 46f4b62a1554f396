// Package flow holds the per-endpoint flow controls of the dispatcher: a
// token bucket for rate limits, an AIMD controller for adaptive
// concurrency and a circuit breaker. Each is a plain value that the
// caller locks; time is always passed in, so tests drive it.
package flow

import (
	"math"
	"time"
)

// Bucket is a token bucket: it holds up to Burst tokens and gains Rate
// per second.
type Bucket struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

// NewBucket returns a full bucket.
func NewBucket(rate float64, burst int, now time.Time) *Bucket {
	return &Bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// Set changes the rate and burst, keeping the tokens held (at most the new
// burst).
func (b *Bucket) Set(rate float64, burst int, now time.Time) {
	b.refill(now)
	b.rate, b.burst = rate, float64(burst)
	b.tokens = min(b.tokens, b.burst)
}

func (b *Bucket) refill(now time.Time) {
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(b.burst, b.tokens+dt.Seconds()*b.rate)
		b.last = now
	}
}

// Available returns the whole tokens held at now.
func (b *Bucket) Available(now time.Time) int {
	b.refill(now)
	return int(math.Floor(b.tokens + 1e-9))
}

// Take spends n tokens at now; the caller took no more than Available.
// A negative n gives tokens back, up to the burst.
func (b *Bucket) Take(n int, now time.Time) {
	b.refill(now)
	b.tokens = min(b.burst, b.tokens-float64(n))
}

// Next returns when the bucket next holds a whole token, at or after now.
func (b *Bucket) Next(now time.Time) time.Time {
	b.refill(now)
	if b.tokens >= 1-1e-9 {
		return now
	}
	// The same slack as Available's, so that at the time returned
	// Available says 1 despite rounding.
	wait := (1 - 1e-9 - b.tokens) / b.rate
	return now.Add(time.Duration(math.Ceil(wait * float64(time.Second))))
}

// AIMD adapts a concurrency limit the way TCP adapts its window: it grows
// by one for every limit's worth of fast successes (additive increase)
// and is multiplied by Decrease on an overload signal (a timeout, 429 or
// 503), within [1, Max].
type AIMD struct {
	limit    float64
	max      float64
	decrease float64
	target   time.Duration
	// cut is when the limit was last decreased: signals from attempts
	// that started before it are about the old limit and are ignored,
	// so one burst of 503s halves the limit once, not once per request.
	cut time.Time
}

// NewAIMD returns a controller starting at initial, bounded by max,
// growing while attempts succeed within target.
func NewAIMD(initial, max int, decrease float64, target time.Duration) *AIMD {
	a := &AIMD{max: float64(max), decrease: decrease, target: target}
	a.limit = min(math.Max(1, float64(initial)), a.max)
	return a
}

// Limit returns the current limit, a whole number in [1, Max].
func (a *AIMD) Limit() int { return int(math.Floor(a.limit)) }

// SetMax changes the bound.
func (a *AIMD) SetMax(max int) {
	a.max = math.Max(1, float64(max))
	a.limit = min(a.limit, a.max)
}

// Observe feeds, at now, one attempt's outcome: started is when it
// began, latency how long it took, overload whether it timed out or was
// answered 429 or 503, ok whether it succeeded. It reports whether the
// limit was cut.
func (a *AIMD) Observe(now, started time.Time, latency time.Duration, ok, overload bool) (cut bool) {
	switch {
	case overload:
		if started.Before(a.cut) {
			return false
		}
		a.limit = math.Max(1, a.limit*a.decrease)
		a.cut = now
		return true
	case ok && latency <= a.target:
		a.limit = min(a.max, a.limit+1/a.limit)
	}
	return false
}

// State is a circuit breaker's state.
type State uint8

// Breaker states.
const (
	Closed   State = iota // attempts flow
	Open                  // no attempt until the cool-down ends
	HalfOpen              // one probe at a time decides
)

// Breaker opens when the failure rate over a sliding window reaches a
// threshold with enough attempts, stays open for a cool-down, then lets
// one probe through: its success closes the circuit, its failure opens
// it again.
type Breaker struct {
	rate     float64
	min      int
	window   time.Duration
	cooldown time.Duration

	state    State
	openedAt time.Time
	// outcomes within the window, oldest first: true for a failure.
	at     []time.Time
	failed []bool
	fails  int
}

// NewBreaker returns a closed breaker.
func NewBreaker(rate float64, minAttempts int, window, cooldown time.Duration) *Breaker {
	return &Breaker{rate: rate, min: minAttempts, window: window, cooldown: cooldown}
}

// State returns the state at now: an open circuit whose cool-down ended
// is half-open.
func (b *Breaker) State(now time.Time) State {
	if b.state == Open && !now.Before(b.openedAt.Add(b.cooldown)) {
		b.state = HalfOpen
	}
	return b.state
}

// OpenUntil returns when an open circuit turns half-open.
func (b *Breaker) OpenUntil() time.Time { return b.openedAt.Add(b.cooldown) }

// Observe feeds one attempt's outcome and returns the state after it.
func (b *Breaker) Observe(now time.Time, failed bool) State {
	switch b.State(now) {
	case HalfOpen:
		if failed {
			b.trip(now)
		} else {
			b.state = Closed
			b.at, b.failed, b.fails = b.at[:0], b.failed[:0], 0
		}
		return b.state
	case Open:
		return b.state // an attempt that started before the circuit opened
	}
	b.at = append(b.at, now)
	b.failed = append(b.failed, failed)
	if failed {
		b.fails++
	}
	b.expire(now)
	if n := len(b.at); n >= b.min && float64(b.fails) >= b.rate*float64(n) {
		b.trip(now)
	}
	return b.state
}

func (b *Breaker) trip(now time.Time) {
	b.state = Open
	b.openedAt = now
	b.at, b.failed, b.fails = b.at[:0], b.failed[:0], 0
}

// expire drops outcomes older than the window.
func (b *Breaker) expire(now time.Time) {
	i := 0
	for i < len(b.at) && now.Sub(b.at[i]) > b.window {
		if b.failed[i] {
			b.fails--
		}
		i++
	}
	if i > 0 {
		b.at = append(b.at[:0], b.at[i:]...)
		b.failed = append(b.failed[:0], b.failed[i:]...)
	}
}
