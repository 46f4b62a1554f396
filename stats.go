package convoy

import (
	"cmp"
	"context"
	"expvar"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// StoreStats are the counts a Store keeps for Stats. Stores keep them up to
// date in the same transactions that change what they count, so reading
// them never scans the backlog.
type StoreStats struct {
	// Deliveries counts deliveries by status.
	Deliveries map[DeliveryStatus]int
	// Endpoints counts endpoints by status.
	Endpoints map[EndpointStatus]int
	// DueNow counts deliveries claimable at the time asked (due Scheduled
	// and Retry, and Processing with an expired lease), up to MaxDueCount.
	DueNow int
	// OldestDue is the earliest due time of a pending delivery (zero when
	// nothing is pending).
	OldestDue time.Time
}

// MaxDueCount bounds StoreStats.DueNow, so that counting due work stays
// cheap however large the backlog is; a DueNow equal to it means "at
// least".
const MaxDueCount = 10000

// Stats is a snapshot of what the dispatcher is doing.
type Stats struct {
	// Deliveries counts deliveries by status, from the store.
	Deliveries map[DeliveryStatus]int `json:"deliveries"`
	// Endpoints counts endpoints by status, from the store.
	Endpoints map[EndpointStatus]int `json:"endpoints"`
	// DueNow counts deliveries that could be claimed now (at most
	// MaxDueCount).
	DueNow int `json:"due_now"`
	// OldestDueAge is how long the oldest due delivery has waited; zero
	// when nothing is overdue.
	OldestDueAge time.Duration `json:"oldest_due_age_ns"`
	// RetriesScheduled counts deliveries waiting for a retry (status
	// Retry).
	RetriesScheduled int `json:"retries_scheduled"`
	// InFlight counts attempts running in this dispatcher now.
	InFlight int `json:"in_flight"`
	// Attempts and Failures count attempts made by this dispatcher since
	// Start, and those that failed.
	Attempts int64 `json:"attempts"`
	Failures int64 `json:"failures"`
	// Abandoned counts deliveries this dispatcher ended in Failure without
	// an attempt because they had been claimed Config.MaxClaims times
	// without one: their processes kept crashing mid-attempt. A
	// receiver's failures count in Failures instead.
	Abandoned int64 `json:"abandoned"`

	// Window is the span of the Recent figures (Config.StatsWindow).
	Window time.Duration `json:"window_ns"`
	// RecentAttempts and RecentFailures count this dispatcher's attempts
	// within Window, and those that failed.
	RecentAttempts int64 `json:"recent_attempts"`
	RecentFailures int64 `json:"recent_failures"`
	// Recent lists the endpoints this dispatcher attempted within Window,
	// those with the most failures first (then the most attempts), at
	// most MaxRecentEndpoints of them. Several processes on one store
	// each see their own share: sum them, or read Endpoint.Health, which
	// the store keeps for all of them.
	Recent []EndpointActivity `json:"recent,omitempty"`
	// Flow lists the endpoints under a flow control of this dispatcher
	// (rate limit, adaptive concurrency, circuit breaker), those allowed
	// the least first, at most MaxRecentEndpoints; OpenCircuits counts
	// the endpoints whose circuit is open.
	Flow         []EndpointFlow `json:"flow,omitempty"`
	OpenCircuits int            `json:"open_circuits"`

	// RecordsFailing reports that the store is refusing attempt records
	// (a full disk, a database down) since RecordsFailingSince: claiming
	// is paused until a record lands again, so that the requests already
	// made are not sent again after a restart. RecordErrors counts the
	// failed record calls since Start.
	RecordsFailing      bool      `json:"records_failing"`
	RecordsFailingSince time.Time `json:"records_failing_since,omitzero"`
	RecordErrors        int64     `json:"record_errors"`
	// HooksDropped counts OnAttempt events dropped because the hook fell
	// 4096 events behind. Endpoint status events are never dropped.
	HooksDropped int64 `json:"hooks_dropped"`
}

// EndpointActivity is how the attempts of this dispatcher to one endpoint
// went within the recent window.
type EndpointActivity struct {
	// EndpointID names the endpoint; empty for a total.
	EndpointID string `json:"endpoint_id"`
	// Attempts counts the attempts made within the window.
	Attempts int64 `json:"attempts"`
	// Failures counts those that failed.
	Failures int64 `json:"failures"`
	// SuccessRate is (Attempts - Failures) / Attempts, and 0 when there
	// was no attempt.
	SuccessRate float64 `json:"success_rate"`
}

// MaxRecentEndpoints bounds Stats.Recent.
const MaxRecentEndpoints = 50

// counters are the dispatcher's own running totals.
type counters struct {
	attempts     atomic.Int64
	failures     atomic.Int64
	abandoned    atomic.Int64
	hooksDropped atomic.Int64
}

// Stats returns a snapshot of deliveries and endpoints by status, due work,
// attempts in flight, and attempts and failures since Start. It reads the
// store's counters, not its records, so it is cheap enough to call every
// few seconds. Safe for concurrent use.
func (d *Dispatcher) Stats(ctx context.Context) (Stats, error) {
	now := d.clock.Now()
	ss, err := d.store.Stats(ctx, now)
	if err != nil {
		return Stats{}, err
	}
	s := Stats{
		Deliveries:       ss.Deliveries,
		Endpoints:        ss.Endpoints,
		DueNow:           ss.DueNow,
		RetriesScheduled: ss.Deliveries[DeliveryRetry],
		Attempts:         d.counts.attempts.Load(),
		Failures:         d.counts.failures.Load(),
		Abandoned:        d.counts.abandoned.Load(),
		HooksDropped:     d.counts.hooksDropped.Load(),
		Window:           d.cfg.StatsWindow,
	}
	s.RecordsFailing, s.RecordsFailingSince, s.RecordErrors = d.storeBad.snapshot()
	var total EndpointActivity
	total, s.Recent = d.recent.snapshot(now, MaxRecentEndpoints)
	s.RecentAttempts, s.RecentFailures = total.Attempts, total.Failures
	if !ss.OldestDue.IsZero() && ss.OldestDue.Before(now) {
		s.OldestDueAge = now.Sub(ss.OldestDue)
	}
	d.mu.Lock()
	s.InFlight = d.busy
	inFlight := maps.Clone(d.inFlight)
	d.mu.Unlock()
	s.Flow = d.flow.all(inFlight, now, MaxRecentEndpoints)
	for _, f := range s.Flow {
		if f.Circuit == CircuitOpen {
			s.OpenCircuits++
		}
	}
	return s, nil
}

// EndpointFlow returns what this dispatcher's flow controls allow the
// endpoint now: its in-flight limit, circuit state and rate tokens. It
// reads memory only.
func (d *Dispatcher) EndpointFlow(endpointID string) EndpointFlow {
	endpointID = strings.ToLower(endpointID) // see ValidateID
	d.mu.Lock()
	n := d.inFlight[endpointID]
	d.mu.Unlock()
	f, _ := d.flow.snapshot(endpointID, n, d.clock.Now())
	return f
}

// EndpointActivity returns how this dispatcher's attempts to the endpoint
// went within Config.StatsWindow. It reads memory only.
func (d *Dispatcher) EndpointActivity(endpointID string) EndpointActivity {
	return d.recent.endpoint(strings.ToLower(endpointID), d.clock.Now())
}

// activitySlots is how many slots the stats window is cut into: figures
// are exact to within one slot (a tenth of the window).
const activitySlots = 10

// activity counts attempts per endpoint in a sliding window of
// activitySlots slots.
type activity struct {
	slot time.Duration
	mu   sync.Mutex
	eps  map[string]*ring
}

type ring struct {
	slot     [activitySlots]int64 // slot number each entry counts
	attempts [activitySlots]int64
	failures [activitySlots]int64
}

func newActivity(window time.Duration) *activity {
	return &activity{slot: max(window/activitySlots, time.Millisecond), eps: make(map[string]*ring)}
}

func (a *activity) slotOf(t time.Time) int64 { return t.UnixNano() / int64(a.slot) }

func (a *activity) add(endpointID string, now time.Time, failed bool) {
	n := a.slotOf(now)
	i := int(((n % activitySlots) + activitySlots) % activitySlots)
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.eps[endpointID]
	if r == nil {
		r = &ring{}
		a.eps[endpointID] = r
	}
	if r.slot[i] != n {
		r.slot[i], r.attempts[i], r.failures[i] = n, 0, 0
	}
	r.attempts[i]++
	if failed {
		r.failures[i]++
	}
}

// sum returns r's counts within the window ending in slot n.
func (r *ring) sum(n int64) (attempts, failures int64) {
	for i := range activitySlots {
		if s := r.slot[i]; s > n-activitySlots && s <= n {
			attempts += r.attempts[i]
			failures += r.failures[i]
		}
	}
	return attempts, failures
}

func activityOf(id string, attempts, failures int64) EndpointActivity {
	e := EndpointActivity{EndpointID: id, Attempts: attempts, Failures: failures}
	if attempts > 0 {
		e.SuccessRate = float64(attempts-failures) / float64(attempts)
	}
	return e
}

func (a *activity) endpoint(id string, now time.Time) EndpointActivity {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.eps[id]
	if r == nil {
		return EndpointActivity{EndpointID: id}
	}
	at, f := r.sum(a.slotOf(now))
	return activityOf(id, at, f)
}

// snapshot returns the totals and up to limit endpoints, most failures
// first, dropping endpoints with nothing left in the window.
func (a *activity) snapshot(now time.Time, limit int) (EndpointActivity, []EndpointActivity) {
	n := a.slotOf(now)
	a.mu.Lock()
	var total EndpointActivity
	list := make([]EndpointActivity, 0, len(a.eps))
	for id, r := range a.eps {
		at, f := r.sum(n)
		if at == 0 {
			delete(a.eps, id) // nothing in the window: forget it
			continue
		}
		total.Attempts += at
		total.Failures += f
		list = append(list, activityOf(id, at, f))
	}
	a.mu.Unlock()
	slices.SortFunc(list, func(x, y EndpointActivity) int {
		if c := cmp.Compare(y.Failures, x.Failures); c != 0 {
			return c
		}
		if c := cmp.Compare(y.Attempts, x.Attempts); c != 0 {
			return c
		}
		return strings.Compare(x.EndpointID, y.EndpointID)
	})
	if len(list) > limit {
		list = list[:limit]
	}
	if len(list) == 0 {
		list = nil
	}
	return activityOf("", total.Attempts, total.Failures), list
}

var expvarMu sync.Mutex

// PublishExpvar publishes the dispatcher's Stats under name in the expvar
// package, so /debug/vars shows them. Each read of the variable calls
// Stats with a 1 s timeout. It returns an error if name is already
// published (expvar names are process-wide).
func (d *Dispatcher) PublishExpvar(name string) error {
	expvarMu.Lock() // expvar.Publish panics on a name taken meanwhile
	defer expvarMu.Unlock()
	if name == "" || expvar.Get(name) != nil {
		return fmt.Errorf("%w: expvar name %q is empty or taken", ErrInvalid, name)
	}
	expvar.Publish(name, expvar.Func(func() any {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s, err := d.Stats(ctx)
		if err != nil {
			return map[string]string{"error": err.Error()}
		}
		return s
	}))
	return nil
}
