package convoy

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/convoykit/convoy/internal/flow"
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

// AdaptiveConcurrency makes the in-flight limit of every endpoint adapt to
// its receiver, as TCP adapts its window (AIMD): the limit grows by about
// one for each round of attempts that succeed within LatencyTarget, and is
// multiplied by Decrease when an attempt times out or is answered 429 or
// 503, always within [1, PerEndpoint]. A receiver that degrades under load
// then gets less traffic instead of more retries, and a healthy one ramps
// up to PerEndpoint. Set Config.Adaptive to turn it on; each Dispatcher
// adapts on its own, from its own attempts.
type AdaptiveConcurrency struct {
	// Initial is the limit an endpoint starts at. Default
	// max(1, PerEndpoint/4).
	Initial int
	// LatencyTarget is the attempt duration under which a success lets
	// the limit grow. Default 1 s (at most Timeout/2).
	LatencyTarget time.Duration
	// Decrease, in (0, 1), multiplies the limit on an overload signal.
	// Default 0.5. One burst of overload signals cuts the limit once:
	// those from attempts started before the last cut are ignored.
	Decrease float64
}

// CircuitBreaker stops attempting an endpoint that fails consistently:
// when at least FailureRate of its attempts within Window failed (and
// there were at least MinAttempts), the circuit opens and no attempt is
// made for CoolDown; then one probe goes through (half-open): its success
// closes the circuit, its failure opens it for another CoolDown. While
// the circuit is open, the endpoint's deliveries wait in the queue in
// their place: they are not claimed, so they spend none of their retry
// budget. The breaker sits beside Config.DeadEndpoint, which still decides
// when an endpoint dies. Its state shows in Endpoint.Health.Circuit,
// Stats.Flow and the log. Each Dispatcher keeps its own breakers.
type CircuitBreaker struct {
	// FailureRate, in (0, 1], is the share of failed attempts that opens
	// the circuit. Default 0.5.
	FailureRate float64
	// MinAttempts is how many attempts within Window the rate needs.
	// Default 20.
	MinAttempts int
	// Window is the span the rate is measured over. Default 1 min.
	Window time.Duration
	// CoolDown is how long the circuit stays open. Default 30 s.
	CoolDown time.Duration
}

// CircuitState is the state of an endpoint's circuit breaker.
type CircuitState string

// Circuit states; the empty state means no breaker is configured.
const (
	CircuitClosed   CircuitState = "closed"
	CircuitOpen     CircuitState = "open"
	CircuitHalfOpen CircuitState = "half-open"
)

// EndpointFlow is what the flow controls of one Dispatcher allow an
// endpoint at a moment.
type EndpointFlow struct {
	// EndpointID names the endpoint.
	EndpointID string `json:"endpoint_id"`
	// Limit is how many attempts may be in flight: PerEndpoint, or less
	// under adaptive concurrency or an open circuit.
	Limit int `json:"limit"`
	// Circuit is the breaker's state, empty without Config.Breaker.
	Circuit CircuitState `json:"circuit,omitempty"`
	// OpenUntil is when an open circuit lets its probe through.
	OpenUntil time.Time `json:"open_until,omitzero"`
	// RateTokens is how many requests the rate limit lets start now; -1
	// without a rate limit.
	RateTokens int `json:"rate_tokens"`
}

func (a *AdaptiveConcurrency) withDefaults(perEndpoint int, timeout time.Duration) AdaptiveConcurrency {
	c := *a
	if c.Initial <= 0 {
		c.Initial = max(1, perEndpoint/4)
	}
	if c.LatencyTarget <= 0 {
		c.LatencyTarget = min(time.Second, timeout/2)
	}
	if c.Decrease == 0 {
		c.Decrease = 0.5
	}
	return c
}

func (a *AdaptiveConcurrency) validate() error {
	if a.Initial < 0 || a.LatencyTarget < 0 || a.Decrease < 0 || a.Decrease >= 1 || math.IsNaN(a.Decrease) {
		return invalid(ErrInvalidConfig, "Config.Adaptive", "Initial and LatencyTarget must not be negative, Decrease must be in (0, 1)")
	}
	return nil
}

func (b *CircuitBreaker) withDefaults() CircuitBreaker {
	c := *b
	if c.FailureRate == 0 {
		c.FailureRate = 0.5
	}
	if c.MinAttempts <= 0 {
		c.MinAttempts = 20
	}
	if c.Window <= 0 {
		c.Window = time.Minute
	}
	if c.CoolDown <= 0 {
		c.CoolDown = 30 * time.Second
	}
	return c
}

func (b *CircuitBreaker) validate() error {
	if b.FailureRate < 0 || b.FailureRate > 1 || math.IsNaN(b.FailureRate) || b.MinAttempts < 0 || b.Window < 0 || b.CoolDown < 0 {
		return invalid(ErrInvalidConfig, "Config.Breaker", "FailureRate must be in (0, 1], the others not negative")
	}
	return nil
}

// flowState holds the flow controls of every endpoint a Dispatcher has
// seen: its rate limit bucket, adaptive limit and breaker.
type flowState struct {
	perEndpoint int
	adaptive    *AdaptiveConcurrency // with defaults; nil when off
	breaker     *CircuitBreaker      // with defaults; nil when off

	mu  sync.Mutex
	eps map[string]*endpointFlow
}

type endpointFlow struct {
	seen    time.Time // when the endpoint was last read or attempted
	rate    RateLimit // as last seen; zero when none
	bucket  *flow.Bucket
	aimd    *flow.AIMD
	breaker *flow.Breaker
}

func newFlowState(cfg Config) *flowState {
	f := &flowState{perEndpoint: cfg.PerEndpoint, eps: make(map[string]*endpointFlow)}
	if cfg.Adaptive != nil {
		a := cfg.Adaptive.withDefaults(cfg.PerEndpoint, cfg.Timeout)
		f.adaptive = &a
	}
	if cfg.Breaker != nil {
		b := cfg.Breaker.withDefaults()
		f.breaker = &b
	}
	return f
}

// entry returns the endpoint's state, creating it when a control
// applies; nil when none does. f.mu is held.
func (f *flowState) entry(id string, create bool) *endpointFlow {
	e := f.eps[id]
	if e == nil && create {
		e = &endpointFlow{}
		if a := f.adaptive; a != nil {
			e.aimd = flow.NewAIMD(a.Initial, f.perEndpoint, a.Decrease, a.LatencyTarget)
		}
		if b := f.breaker; b != nil {
			e.breaker = flow.NewBreaker(b.FailureRate, b.MinAttempts, b.Window, b.CoolDown)
		}
		f.eps[id] = e
	}
	return e
}

// observe takes note of an endpoint's settings as read at now.
func (f *flowState) observe(ep *Endpoint, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var rate RateLimit
	if ep.RateLimit != nil {
		rate = *ep.RateLimit
	}
	e := f.entry(ep.ID, rate != (RateLimit{}) || f.adaptive != nil || f.breaker != nil)
	if e == nil {
		return
	}
	e.seen = now
	if e.rate == rate {
		return
	}
	switch {
	case rate == (RateLimit{}):
		e.bucket = nil
	case e.bucket == nil:
		e.bucket = flow.NewBucket(rate.PerSecond, rate.burst(), now)
	default:
		e.bucket.Set(rate.PerSecond, rate.burst(), now)
	}
	e.rate = rate
}

// limit returns how many attempts to the endpoint may be in flight at now
// with inFlight running, and whether that is below PerEndpoint. f.mu is
// held.
func (f *flowState) limit(e *endpointFlow, inFlight int, now time.Time) (n int, below bool) {
	n = f.perEndpoint
	if e.aimd != nil {
		n = min(n, e.aimd.Limit())
	}
	if e.breaker != nil {
		switch e.breaker.State(now) {
		case flow.Open:
			n = 0
		case flow.HalfOpen:
			n = min(n, 1)
		}
	}
	if e.bucket != nil {
		n = min(n, inFlight+e.bucket.Available(now))
	}
	return n, n < f.perEndpoint
}

// The state of endpoints not read or attempted for flowForget is dropped
// unless a breaker holds it open or attempts are in flight, so that it
// stays small however many endpoints a Dispatcher has seen.
const flowForget = 10 * time.Minute

// caps returns ClaimRequest.Caps: the endpoints held below PerEndpoint at
// now, and their limits. Every endpoint admit would refuse is in it, so
// that a claim never leases what admit hands back at once (which the
// scheduler would claim again, at once, in a loop).
func (f *flowState) caps(inFlight map[string]int, now time.Time) map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var caps map[string]int
	for id, e := range f.eps {
		if now.Sub(e.seen) > flowForget && inFlight[id] == 0 && (e.breaker == nil || e.breaker.State(now) == flow.Closed) {
			delete(f.eps, id)
			continue
		}
		if n, below := f.limit(e, inFlight[id], now); below {
			if caps == nil {
				caps = make(map[string]int)
			}
			caps[id] = n
		}
	}
	return caps
}

// admit is called for each delivery handed to a worker, with inFlight
// the endpoint's attempts running besides it: it spends a rate token and
// reports false when the controls do not allow the attempt now (the
// delivery was claimed before its endpoint's settings were known), for
// the caller to release it.
func (f *flowState) admit(id string, inFlight int, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.eps[id]
	if e == nil {
		return true
	}
	if n, _ := f.limit(e, inFlight, now); inFlight >= n {
		return false
	}
	if e.bucket != nil {
		e.bucket.Take(1, now)
	}
	return true
}

// known reports whether the endpoint has flow state here: admit lets a
// delivery of an unknown endpoint through, and admitKnown applies its
// rate limit once the endpoint has been read.
func (f *flowState) known(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.eps[id] != nil
}

// admitKnown spends a rate token for a delivery admitted while its
// endpoint was unknown, now that it has been read, and reports false
// when there is none, for the caller to release the delivery.
func (f *flowState) admitKnown(id string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.eps[id]
	if e == nil || e.bucket == nil {
		return true
	}
	if e.bucket.Available(now) < 1 {
		return false
	}
	e.bucket.Take(1, now)
	return true
}

// refund gives back the rate tokens of n admitted deliveries that were
// not attempted after all.
func (f *flowState) refund(id string, n int, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.eps[id]; e != nil && e.bucket != nil {
		e.bucket.Take(-n, now)
	}
}

// result feeds an attempt's outcome to the adaptive limit and the
// breaker, and returns the breaker's state before and after.
func (f *flowState) result(id string, a *Attempt, overload bool, now time.Time) (before, after CircuitState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.eps[id]
	if e == nil {
		return "", ""
	}
	if e.aimd != nil {
		e.aimd.Observe(now, a.StartedAt, a.Duration, a.Success(), overload)
	}
	if e.breaker != nil {
		before = circuitState(e.breaker.State(now))
		after = circuitState(e.breaker.Observe(now, !a.Success()))
	}
	return before, after
}

// next returns the earliest time after now at which a control lets more
// through (a rate token, a cool-down ending), or the zero time.
func (f *flowState) next(now time.Time) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	var next time.Time
	earlier := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, e := range f.eps {
		if e.bucket != nil {
			earlier(e.bucket.Next(now))
		}
		if e.breaker != nil && e.breaker.State(now) == flow.Open {
			earlier(e.breaker.OpenUntil())
		}
	}
	return next
}

// snapshot returns the endpoint's flow, and false when no control applies
// to it.
func (f *flowState) snapshot(id string, inFlight int, now time.Time) (EndpointFlow, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.eps[id]
	if e == nil {
		return EndpointFlow{EndpointID: id, Limit: f.perEndpoint, RateTokens: -1}, false
	}
	out := EndpointFlow{EndpointID: id, RateTokens: -1}
	out.Limit, _ = f.limit(e, inFlight, now)
	if e.bucket != nil {
		out.RateTokens = e.bucket.Available(now)
		out.Limit = f.perEndpoint
		if e.aimd != nil {
			out.Limit = min(out.Limit, e.aimd.Limit())
		}
	}
	if e.breaker != nil {
		st := e.breaker.State(now)
		out.Circuit = circuitState(st)
		if st == flow.Open {
			out.OpenUntil = e.breaker.OpenUntil()
			out.Limit = 0
		} else if st == flow.HalfOpen {
			out.Limit = min(out.Limit, 1)
		}
	}
	return out, true
}

// all returns the flows of every endpoint with a control, up to n, those
// held below PerEndpoint first.
func (f *flowState) all(inFlight map[string]int, now time.Time, n int) []EndpointFlow {
	f.mu.Lock()
	ids := make([]string, 0, len(f.eps))
	for id := range f.eps {
		ids = append(ids, id)
	}
	f.mu.Unlock()
	out := make([]EndpointFlow, 0, len(ids))
	for _, id := range ids {
		if fl, ok := f.snapshot(id, inFlight[id], now); ok {
			out = append(out, fl)
		}
	}
	slices.SortFunc(out, func(a, b EndpointFlow) int {
		if c := cmp.Compare(a.Limit, b.Limit); c != 0 {
			return c
		}
		return strings.Compare(a.EndpointID, b.EndpointID)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func circuitState(s flow.State) CircuitState {
	switch s {
	case flow.Open:
		return CircuitOpen
	case flow.HalfOpen:
		return CircuitHalfOpen
	}
	return CircuitClosed
}
