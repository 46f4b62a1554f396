package convoy

import (
	"context"
	"expvar"
	"fmt"
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
}

// counters are the dispatcher's own running totals.
type counters struct {
	attempts atomic.Int64
	failures atomic.Int64
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
	}
	if !ss.OldestDue.IsZero() && ss.OldestDue.Before(now) {
		s.OldestDueAge = now.Sub(ss.OldestDue)
	}
	d.mu.Lock()
	s.InFlight = d.busy
	d.mu.Unlock()
	return s, nil
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
