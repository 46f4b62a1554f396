package convoy

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// RetryStrategy decides when a failed delivery is tried again. The
// dispatcher stores the next attempt time in the store and never sleeps
// through a retry, so a restart loses no schedule.
//
// Implementations must be safe for concurrent use.
type RetryStrategy interface {
	// NextRetry returns the wait before the next attempt, given how many
	// attempts of this round have failed so far (1 after the first), or
	// false when the delivery has exhausted its retries.
	NextRetry(failedAttempts int) (time.Duration, bool)
}

// RetryKind names the shape of a RetryPolicy.
type RetryKind string

// Retry policy kinds.
const (
	// RetryLinear waits Interval between attempts.
	RetryLinear RetryKind = "linear"
	// RetryExponential waits Interval, then Interval×Multiplier, … up to
	// MaxInterval.
	RetryExponential RetryKind = "exponential"
	// RetrySchedule waits Schedule[0] before the second attempt,
	// Schedule[1] before the third, and so on.
	RetrySchedule RetryKind = "schedule"
)

// RetryPolicy is a serializable RetryStrategy: the dispatcher's default, or
// an endpoint's override (Endpoint.Retry). Build one with LinearRetry,
// ExponentialRetry or ScheduleRetry. A RetryPolicy is a value; it is safe
// for concurrent use.
type RetryPolicy struct {
	// Kind is the shape: linear, exponential or schedule.
	Kind RetryKind
	// Interval is the linear wait, or the first exponential wait.
	Interval time.Duration
	// Multiplier grows exponential waits; below 1 it is taken as 2.
	Multiplier float64
	// MaxInterval caps exponential waits; zero means MaxRetryWait.
	MaxInterval time.Duration
	// Jitter spreads each wait by ± that fraction (0.2 is ±20%), in [0, 1).
	Jitter float64
	// Limit is how many retries follow the first attempt. For RetrySchedule
	// zero means len(Schedule).
	Limit int
	// Schedule lists the waits of a RetrySchedule policy.
	Schedule []time.Duration
}

// LinearRetry returns a policy that retries limit times, interval apart.
func LinearRetry(interval time.Duration, limit int) RetryPolicy {
	return RetryPolicy{Kind: RetryLinear, Interval: interval, Limit: limit}
}

// ExponentialRetry returns a policy that retries limit times, waiting
// initial, then initial×multiplier, … capped at max, each spread by ±jitter.
func ExponentialRetry(initial time.Duration, multiplier float64, max time.Duration, jitter float64, limit int) RetryPolicy {
	return RetryPolicy{Kind: RetryExponential, Interval: initial, Multiplier: multiplier, MaxInterval: max, Jitter: jitter, Limit: limit}
}

// ScheduleRetry returns a policy that waits each of waits in turn, spread
// by ±jitter, then gives up.
func ScheduleRetry(jitter float64, waits ...time.Duration) RetryPolicy {
	return RetryPolicy{Kind: RetrySchedule, Jitter: jitter, Schedule: slices.Clone(waits)}
}

// StandardWebhooksRetry returns the Standard Webhooks schedule, the
// dispatcher's default: the first attempt at once, then retries after 5 s,
// 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h, each ±20%.
func StandardWebhooksRetry() RetryPolicy {
	return ScheduleRetry(0.2,
		5*time.Second, 5*time.Minute, 30*time.Minute, 2*time.Hour, 5*time.Hour,
		10*time.Hour, 14*time.Hour, 20*time.Hour, 24*time.Hour)
}

const maxRetryLimit = 1000

// MaxRetryWait bounds every wait a RetryPolicy returns: 30 days.
const MaxRetryWait = 30 * 24 * time.Hour

// Validate reports whether p can work, returning an error wrapping
// ErrInvalidRetry otherwise.
func (p RetryPolicy) Validate() error {
	if p.Limit < 0 || p.Limit > maxRetryLimit {
		return invalid(ErrInvalidRetry, "retry.Limit", "must be 0..1000")
	}
	if p.Jitter < 0 || p.Jitter >= 1 {
		return invalid(ErrInvalidRetry, "retry.Jitter", "must be in [0, 1)")
	}
	switch p.Kind {
	case RetryLinear, RetryExponential:
		if p.Interval < 0 {
			return invalid(ErrInvalidRetry, "retry.Interval", "negative")
		}
		if p.MaxInterval < 0 {
			return invalid(ErrInvalidRetry, "retry.MaxInterval", "negative")
		}
	case RetrySchedule:
		if len(p.Schedule) > maxRetryLimit {
			return invalid(ErrInvalidRetry, "retry.Schedule", "too long")
		}
		for _, w := range p.Schedule {
			if w < 0 {
				return invalid(ErrInvalidRetry, "retry.Schedule", "negative wait")
			}
		}
	default:
		return invalid(ErrInvalidRetry, "retry.Kind", string(p.Kind))
	}
	return nil
}

// NextRetry implements RetryStrategy.
func (p RetryPolicy) NextRetry(failed int) (time.Duration, bool) {
	if failed < 1 {
		failed = 1
	}
	limit := p.Limit
	if p.Kind == RetrySchedule && limit == 0 {
		limit = len(p.Schedule)
	}
	if failed > limit {
		return 0, false
	}
	var b backoff.BackOff
	switch p.Kind {
	case RetryLinear:
		b = backoff.NewConstantBackOff(p.Interval)
	case RetryExponential:
		e := &backoff.ExponentialBackOff{
			InitialInterval:     p.Interval,
			RandomizationFactor: 0, // jitter is applied below, once
			Multiplier:          p.Multiplier,
			MaxInterval:         p.MaxInterval,
			MaxElapsedTime:      0,
			Stop:                backoff.Stop,
			Clock:               backoff.SystemClock,
		}
		if e.Multiplier < 1 {
			e.Multiplier = 2
		}
		if e.MaxInterval <= 0 || e.MaxInterval > MaxRetryWait {
			e.MaxInterval = MaxRetryWait
		}
		e.Reset()
		b = e
	case RetrySchedule:
		if failed > len(p.Schedule) {
			return 0, false
		}
		return clampWait(jitter(p.Schedule[failed-1], p.Jitter)), true
	default:
		return 0, false
	}
	// backoff's policies are stateful; compute the n-th wait on a fresh one.
	var d time.Duration
	for i := 0; i < failed; i++ {
		d = b.NextBackOff()
	}
	if d == backoff.Stop {
		return 0, false
	}
	return clampWait(jitter(d, p.Jitter)), true
}

func clampWait(d time.Duration) time.Duration {
	return min(max(d, 0), MaxRetryWait)
}

func jitter(d time.Duration, f float64) time.Duration {
	if f <= 0 || d <= 0 {
		return d
	}
	delta := f * float64(d)
	return time.Duration(float64(d) - delta + rand.Float64()*2*delta)
}

func (p RetryPolicy) clone() RetryPolicy {
	p.Schedule = slices.Clone(p.Schedule)
	return p
}
