package convoy

import (
	"math"
	"strconv"
)

// RateLimit bounds how fast requests to one endpoint start, as a token
// bucket: up to Burst requests may start at once, and the bucket refills
// at PerSecond. Set it on Endpoint.RateLimit for a receiver that falls
// over past a known rate, or whose provider throttles (a 429 costs a
// retry; waiting in the queue costs nothing).
//
// A delivery of a limited endpoint that has no token yet stays in the
// queue: the scheduler does not claim it, so it holds neither a worker nor
// a lease, and other endpoints are not slowed. The bucket belongs to the
// Dispatcher: with N processes delivering from one shared store, each
// keeps its own, so the endpoint may get up to N × PerSecond (set
// PerSecond to the receiver's rate divided by the number of replicas for
// a hard bound). A restart starts with a full bucket.
type RateLimit struct {
	// PerSecond is the sustained rate, in requests started per second;
	// it must be positive (0.5 is one request every two seconds).
	PerSecond float64
	// Burst is how many requests may start at once after a quiet spell;
	// zero means max(1, ⌈PerSecond⌉).
	Burst int
}

// Limits on RateLimit.
const (
	MaxRatePerSecond = 1e6
	MaxRateBurst     = 1e6
)

// Validate reports whether r can work: PerSecond in (0, MaxRatePerSecond]
// and Burst in [0, MaxRateBurst]. Errors wrap ErrInvalidRateLimit.
func (r RateLimit) Validate() error {
	if !(r.PerSecond > 0) || r.PerSecond > MaxRatePerSecond || math.IsInf(r.PerSecond, 0) {
		return invalid(ErrInvalidRateLimit, "RateLimit.PerSecond", strconv.FormatFloat(r.PerSecond, 'g', -1, 64))
	}
	if r.Burst < 0 || r.Burst > MaxRateBurst {
		return invalid(ErrInvalidRateLimit, "RateLimit.Burst", strconv.Itoa(r.Burst))
	}
	return nil
}

// burst returns the bucket size: Burst, or its default.
func (r RateLimit) burst() int {
	if r.Burst > 0 {
		return r.Burst
	}
	return max(1, int(math.Ceil(r.PerSecond)))
}
