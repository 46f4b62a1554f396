package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/convoykit/convoy"
)

// Scenario is everything a seed decides: the dispatchers' configuration,
// the apps and endpoints to start with, and the steps to take. Generate
// makes one from a seed; a run executes it, and the shrinker executes it
// again with steps left out.
type Scenario struct {
	Seed uint64
	// Backend names the store: "memory" or "bolt" (or a Backend of the
	// caller's, see Options.Backend).
	Backend string
	// Dispatchers is how many dispatchers run at once at most; Initial
	// how many start with the run.
	Dispatchers, Initial int

	Workers, PerEndpoint int
	Timeout, Lease       time.Duration
	PollInterval         time.Duration
	MaxRetryAfter        time.Duration
	MaxClaims            int
	Retry                convoy.RetryPolicy
	Dead                 DeadRule

	Apps      int
	Receivers int
	Endpoints []EndpointSpec
	// Flows are the flow controls of Endpoints, by index (missing: none).
	Flows []FlowSpec
	Steps []Step

	// ClaimInsert lets the dispatchers see the store's
	// convoy.ClaimingInserter, so that Send leases what it stores (the
	// fast path); without it every delivery goes through Claim.
	ClaimInsert bool
	// Adaptive turns Config.Adaptive on, with its defaults.
	Adaptive bool
	// Breaker is Config.Breaker; zero: none.
	Breaker BreakerSpec
}

// FlowSpec is the flow control of an endpoint created with the run:
// Endpoint.Ordered, and Endpoint.RateLimit rateLimits[Rate-1] (0: none).
type FlowSpec struct {
	Ordered bool
	Rate    int
}

// BreakerSpec is a scenario's circuit breaker: zero MinAttempts means
// none. FailureRate is 0.5 and Window a minute.
type BreakerSpec struct {
	MinAttempts int
	CoolDown    time.Duration
}

// Config returns the convoy breaker the spec stands for, nil for none.
func (b BreakerSpec) Config() *convoy.CircuitBreaker {
	if b.MinAttempts == 0 {
		return nil
	}
	return &convoy.CircuitBreaker{FailureRate: 0.5, MinAttempts: b.MinAttempts, Window: time.Minute, CoolDown: b.CoolDown}
}

// rateLimits are the rate limits endpoints may have. They never change
// during a run, so that the rate check has one bound per endpoint.
var rateLimits = []convoy.RateLimit{
	{PerSecond: 1, Burst: 1},
	{PerSecond: 0.5, Burst: 2},
	{PerSecond: 5, Burst: 3},
	{PerSecond: 0.1},
}

// DeadRule is the DeadEndpoint policy of a scenario: the zero value is
// DeadOnExhaustedDelivery, otherwise DeadAfterFailures with these fields.
type DeadRule struct {
	Deliveries int
	Window     time.Duration
}

// Policy returns the convoy policy the rule stands for.
func (r DeadRule) Policy() convoy.DeadEndpointPolicy {
	if r.Deliveries == 0 && r.Window == 0 {
		return convoy.DeadOnExhaustedDelivery{}
	}
	return convoy.DeadAfterFailures{Deliveries: r.Deliveries, Window: r.Window}
}

func (r DeadRule) String() string {
	if r.Deliveries == 0 && r.Window == 0 {
		return "dead-on-exhausted"
	}
	return fmt.Sprintf("dead-after(deliveries=%d,window=%s)", r.Deliveries, r.Window)
}

// EndpointSpec is an endpoint to create: its app, the receiver its URL
// names and its event-type filter (an index into filters).
type EndpointSpec struct {
	App, Receiver, Filter int
}

// eventTypes are the types sends choose from; filters the endpoints'
// filters.
var (
	eventTypes = []string{"order.paid", "order.refunded", "user.created"}
	filters    = [][]string{{"*"}, {"order.*"}, {"user.created"}, {"order.paid", "user.created"}}
)

// Op is the kind of a step.
type Op int

// Steps. Their operands A, B, C are indexes taken modulo what exists
// when the step runs (the n-th live dispatcher, endpoint, delivery...),
// so that a scenario with steps left out still makes sense.
const (
	// OpAdvance moves the fake clock by D.
	OpAdvance Op = iota
	// OpSend sends an event of type B to app A through dispatcher C;
	// D > 0 means with an idempotency key: a new one, or (D = 2) one
	// used before, a re-send.
	OpSend
	// OpReceiver sets receiver A to mode B with parameter C.
	OpReceiver
	// OpFault makes store operation A fail or stall (kind B) for D, in
	// dispatcher C-1 (C = 0: in all of them).
	OpFault
	// OpCrash drops dispatcher A without Close (with a store that
	// restarts, the whole process: every dispatcher, and the store is
	// reopened).
	OpCrash
	// OpStart starts a dispatcher when fewer than the most are running.
	OpStart
	// OpStop closes dispatcher A, giving in-flight attempts D to end.
	OpStop
	// OpStatus sets endpoint A's status to endpointStatuses[B].
	OpStatus
	// OpResend re-sends the A-th delivery that is Failure or Discarded.
	OpResend
	// OpResendEndpoint re-sends endpoint A's Discarded deliveries (B =
	// 1: Failure ones too).
	OpResendEndpoint
	// OpUpdate changes endpoint A: B = 0 its URL to receiver C, 1 its
	// filter to filters[C], 2 its retry policy to endpointRetries[C] (the
	// last one removes the override), 3 turns Ordered on (C odd) or off.
	OpUpdate
	// OpRemove removes endpoint A.
	OpRemove
	// OpAdd adds an endpoint to app A on receiver B with filter C.
	OpAdd
)

var opNames = map[Op]string{
	OpAdvance: "advance", OpSend: "send", OpReceiver: "receiver", OpFault: "fault",
	OpCrash: "crash", OpStart: "start", OpStop: "stop", OpStatus: "status",
	OpResend: "resend", OpResendEndpoint: "resend-endpoint", OpUpdate: "update",
	OpRemove: "remove", OpAdd: "add",
}

func (o Op) String() string { return opNames[o] }

// Step is one thing the simulation does between two checks.
type Step struct {
	Op      Op
	A, B, C int
	D       time.Duration
}

func (s Step) String() string {
	return fmt.Sprintf("%s(%d,%d,%d,%s)", s.Op, s.A, s.B, s.C, s.D)
}

// endpointStatuses are the statuses OpStatus sets.
var endpointStatuses = []convoy.EndpointStatus{convoy.EndpointActive, convoy.EndpointInactive, convoy.EndpointPending}

// endpointRetries are the overrides OpUpdate sets; the last removes the
// override. All are without jitter, so the run is the seed's alone.
var endpointRetries = []convoy.RetryPolicy{
	convoy.LinearRetry(2*time.Second, 3),
	convoy.ExponentialRetry(time.Second, 2, 30*time.Second, 0, 4),
	convoy.ScheduleRetry(0, 0, 10*time.Second),
	{},
}

// Store operations OpFault can disturb, and how.
var faultOps = []string{
	"Claim", "Record", "Release", "NextDue", "GetEvent", "GetEndpoint",
	"GetApp", "InsertEvent", "ListEndpoints", "Requeue",
}

// FaultKind is how a store operation is disturbed.
type FaultKind int

// Fault kinds.
const (
	// FailBefore fails the call without reaching the store.
	FailBefore FaultKind = iota
	// FailAfter lets the call through and then reports an error: the
	// write happened, the caller does not know.
	FailAfter
	// Stall delays the call before it reaches the store.
	Stall
	// StallAfter delays the answer after the store did the work.
	StallAfter
)

var faultKindNames = []string{"fail-before", "fail-after", "stall", "stall-after"}

func (k FaultKind) String() string { return faultKindNames[k] }

// pick returns an element of xs.
func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// weighted returns the index of the weight chosen.
func weighted(r *rand.Rand, ws ...int) int {
	total := 0
	for _, w := range ws {
		total += w
	}
	n := r.IntN(total)
	for i, w := range ws {
		if n < w {
			return i
		}
		n -= w
	}
	return len(ws) - 1
}

// Generate returns the scenario of seed. backend, when not empty, is the
// store every seed uses; otherwise a quarter of the seeds run on bolt.
func Generate(seed uint64, backend string) *Scenario {
	r := rand.New(rand.NewPCG(seed, 0x5eed5eed))
	sc := &Scenario{Seed: seed, Backend: "memory"}
	if r.IntN(4) == 0 {
		sc.Backend = "bolt"
	}
	if backend != "" {
		sc.Backend = backend // the rest of the scenario stays the seed's
	}
	sc.Dispatchers = 1 + weighted(r, 4, 4, 2)
	sc.Initial = 1 + r.IntN(sc.Dispatchers)
	// At most 7 workers: the scheduler then claims for each free worker
	// at once, without its short real-time coalescing wait.
	sc.Workers = 1 + r.IntN(6)
	sc.PerEndpoint = 1 + r.IntN(sc.Workers)
	sc.Timeout = pick(r, time.Second, 2*time.Second, 5*time.Second, 10*time.Second)
	sc.Lease = sc.Timeout + pick(r, time.Second, 5*time.Second, 15*time.Second)
	sc.PollInterval = pick(r, 2*time.Second, 5*time.Second, 10*time.Second)
	sc.MaxRetryAfter = pick(r, 10*time.Second, time.Minute, 10*time.Minute)
	sc.MaxClaims = 2 + r.IntN(4)
	switch weighted(r, 3, 3, 3) {
	case 0:
		sc.Retry = convoy.LinearRetry(pick(r, 0, time.Second, 5*time.Second, 30*time.Second), r.IntN(5))
	case 1:
		sc.Retry = convoy.ExponentialRetry(pick(r, time.Second, 3*time.Second), 2, time.Minute, 0, 1+r.IntN(4))
	default:
		n := 1 + r.IntN(4)
		waits := make([]time.Duration, n)
		for i := range waits {
			waits[i] = pick(r, time.Second, 10*time.Second, time.Minute, 5*time.Minute)
		}
		sc.Retry = convoy.ScheduleRetry(0, waits...)
	}
	switch weighted(r, 6, 3, 1) {
	case 1:
		sc.Dead = DeadRule{Deliveries: 2 + r.IntN(2)}
	case 2:
		sc.Dead = DeadRule{Window: pick(r, time.Minute, 5*time.Minute)}
	}
	sc.Apps = 1 + r.IntN(2)
	sc.Receivers = 4
	for range 1 + r.IntN(5) {
		sc.Endpoints = append(sc.Endpoints, EndpointSpec{
			App: r.IntN(sc.Apps), Receiver: r.IntN(sc.Receivers), Filter: weighted(r, 5, 2, 1, 1),
		})
	}
	// Flow controls, drawn after the rest so that they are the seed's
	// own choice.
	sc.ClaimInsert = r.IntN(4) != 0
	sc.Adaptive = r.IntN(3) == 0
	if r.IntN(3) == 0 {
		// CoolDown longer than a Timeout and a stall together, so that an
		// attempt started before the circuit opened is over when it
		// half-opens.
		sc.Breaker = BreakerSpec{MinAttempts: 2 + r.IntN(3), CoolDown: pick(r, 90*time.Second, 3*time.Minute)}
	}
	for range sc.Endpoints {
		f := FlowSpec{Ordered: r.IntN(3) == 0}
		if r.IntN(3) == 0 {
			f.Rate = 1 + r.IntN(len(rateLimits))
		}
		sc.Flows = append(sc.Flows, f)
	}
	n := 40 + r.IntN(80)
	for range n {
		sc.Steps = append(sc.Steps, genStep(r, sc))
	}
	return sc
}

func genStep(r *rand.Rand, sc *Scenario) Step {
	s := Step{A: r.IntN(16), B: r.IntN(16), C: r.IntN(16)}
	switch weighted(r, 26, 30, 12, 8, 4, 5, 2, 4, 3, 3, 3, 1, 1) {
	case 0:
		s.Op = OpAdvance
		s.D = pick(r, time.Millisecond, 100*time.Millisecond, time.Second, 3*time.Second,
			10*time.Second, 30*time.Second, 2*time.Minute, 10*time.Minute)
	case 1:
		s.Op = OpSend
		s.B = r.IntN(len(eventTypes))
		s.D = time.Duration(weighted(r, 5, 3, 2))
	case 2:
		s.Op = OpReceiver
		s.A = r.IntN(sc.Receivers)
		s.B = weighted(r, 6, 3, 1, 2, 1, 1, 1, 2, 2, 3)
		s.C = r.IntN(4)
	case 3:
		s.Op = OpFault
		s.A = r.IntN(len(faultOps))
		s.B = r.IntN(4)
		s.C = r.IntN(sc.Dispatchers + 1)
		s.D = pick(r, time.Second, 10*time.Second, time.Minute)
	case 4:
		s.Op = OpCrash
	case 5:
		s.Op = OpStart
	case 6:
		s.Op = OpStop
		s.D = pick(r, 0, time.Second, 30*time.Second)
	case 7:
		s.Op = OpStatus
		s.B = weighted(r, 3, 2, 1)
	case 8:
		s.Op = OpResend
	case 9:
		s.Op = OpResendEndpoint
		s.B = r.IntN(2)
	case 10:
		s.Op = OpUpdate
		s.B = r.IntN(4)
		switch s.B {
		case 3:
			s.C = r.IntN(2)
		case 0:
			s.C = r.IntN(sc.Receivers)
		case 1:
			s.C = r.IntN(len(filters))
		default:
			s.C = r.IntN(len(endpointRetries))
		}
	case 11:
		s.Op = OpRemove
	default:
		s.Op = OpAdd
		s.A = r.IntN(sc.Apps)
		s.B = r.IntN(sc.Receivers)
		s.C = weighted(r, 5, 2, 1, 1)
	}
	return s
}

// String describes the scenario's configuration in one line.
func (sc *Scenario) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed=%d claim-insert=%t adaptive=%t breaker=%+v backend=%s dispatchers=%d(initial %d) workers=%d per-endpoint=%d timeout=%s lease=%s poll=%s max-retry-after=%s max-claims=%d retry=%s %s apps=%d endpoints=%d steps=%d",
		sc.Seed, sc.ClaimInsert, sc.Adaptive, sc.Breaker, sc.Backend, sc.Dispatchers, sc.Initial, sc.Workers, sc.PerEndpoint, sc.Timeout, sc.Lease,
		sc.PollInterval, sc.MaxRetryAfter, sc.MaxClaims, retryString(sc.Retry), sc.Dead, sc.Apps, len(sc.Endpoints), len(sc.Steps))
	return b.String()
}

func retryString(p convoy.RetryPolicy) string {
	switch p.Kind {
	case convoy.RetryLinear:
		return fmt.Sprintf("linear(%s,%d)", p.Interval, p.Limit)
	case convoy.RetryExponential:
		return fmt.Sprintf("exponential(%s,x%g,max %s,%d)", p.Interval, p.Multiplier, p.MaxInterval, p.Limit)
	case convoy.RetrySchedule:
		return fmt.Sprintf("schedule%v", p.Schedule)
	}
	return "default"
}
