package sim

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/memory"
)

// mutant is a memory store with one known bug, to prove that the
// simulation finds it: a check that cannot fail proves nothing.
type mutant struct {
	name string
	// wrap returns the buggy store around st.
	wrap func(st *memory.Store) convoy.Store
	// checks are the rules the bug may be found breaking.
	checks []string
}

type mutantBackend struct{ m mutant }

func (b mutantBackend) Name() string { return "memory+" + b.m.name }

func (b mutantBackend) Open(testing.TB) (convoy.Store, error) { return b.m.wrap(memory.New()), nil }

func (mutantBackend) Reopen(_ testing.TB, st convoy.Store) (convoy.Store, error) { return st, nil }

func (mutantBackend) Restarts() bool { return false }

// forgetsExpired never hands out again a delivery whose lease expired
// (the claim is made, and dropped on the way back): what was in flight
// when a dispatcher crashed is never delivered.
type forgetsExpired struct {
	*memory.Store
	mu   sync.Mutex
	held map[string]bool
}

func (s *forgetsExpired) Claim(ctx context.Context, r convoy.ClaimRequest) ([]*convoy.Delivery, error) {
	ds, err := s.Store.Claim(ctx, r)
	ds, _ = s.forget(ds, nil)
	return ds, err
}

func (s *forgetsExpired) ClaimEvents(ctx context.Context, r convoy.ClaimRequest) ([]*convoy.Delivery, []*convoy.Event, error) {
	ds, evs, err := s.Store.ClaimEvents(ctx, r)
	ds, evs = s.forget(ds, evs)
	return ds, evs, err
}

// forget drops the deliveries claimed before, and their events.
func (s *forgetsExpired) forget(ds []*convoy.Delivery, evs []*convoy.Event) ([]*convoy.Delivery, []*convoy.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, outEvs := ds[:0], evs[:0]
	for i, d := range ds {
		if !s.held[d.ID] {
			out = append(out, d)
			if evs != nil {
				outEvs = append(outEvs, evs[i])
			}
		}
		s.held[d.ID] = true
	}
	return out, outEvs
}

func (s *forgetsExpired) ended(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.held, id)
}

func (s *forgetsExpired) Record(ctx context.Context, t convoy.Transition) (convoy.RecordResult, error) {
	res, err := s.Store.Record(ctx, t)
	if err == nil {
		s.ended(t.DeliveryID)
	}
	return res, err
}

func (s *forgetsExpired) Release(ctx context.Context, id, lease string) error {
	err := s.Store.Release(ctx, id, lease)
	if err == nil {
		s.ended(id)
	}
	return err
}

// unfenced takes a record whose lease was taken over under the current
// lease instead of refusing it.
type unfenced struct{ *memory.Store }

func (s unfenced) Record(ctx context.Context, t convoy.Transition) (convoy.RecordResult, error) {
	res, err := s.Store.Record(ctx, t)
	if errors.Is(err, convoy.ErrLeaseLost) {
		if d, gerr := s.GetDelivery(ctx, t.DeliveryID); gerr == nil && d.Status == convoy.DeliveryProcessing {
			t.LeaseID = d.LeaseID
			return s.Store.Record(ctx, t)
		}
	}
	return res, err
}

// miscounts reports one Retry delivery fewer than it holds.
type miscounts struct{ *memory.Store }

func (s miscounts) Stats(ctx context.Context, now time.Time) (convoy.StoreStats, error) {
	st, err := s.Store.Stats(ctx, now)
	if st.Deliveries[convoy.DeliveryRetry] > 0 {
		st.Deliveries[convoy.DeliveryRetry]--
	}
	return st, err
}

// ignoresStatus never changes an endpoint's status when recording.
type ignoresStatus struct{ *memory.Store }

func (s ignoresStatus) Record(ctx context.Context, t convoy.Transition) (convoy.RecordResult, error) {
	t.EndpointStatus = nil
	return s.Store.Record(ctx, t)
}

// hurriesRetries stores every retry due one second after the attempt,
// whatever the strategy or a Retry-After said.
type hurriesRetries struct{ *memory.Store }

func (s hurriesRetries) Record(ctx context.Context, t convoy.Transition) (convoy.RecordResult, error) {
	if t.Status == convoy.DeliveryRetry && t.NextAttemptAt.Sub(t.Now) > time.Second {
		t.NextAttemptAt = t.Now.Add(time.Second)
	}
	return s.Store.Record(ctx, t)
}

var mutants = []mutant{
	{"forgets-expired-leases", func(st *memory.Store) convoy.Store {
		return &forgetsExpired{Store: st, held: make(map[string]bool)}
	}, []string{"lost", "state"}}, // the store counts claims the ledger never saw
	{"unfenced-record", func(st *memory.Store) convoy.Store { return unfenced{st} }, []string{"stale-lease"}},
	{"miscounted-stats", func(st *memory.Store) convoy.Store { return miscounts{st} }, []string{"stats"}},
	{"ignored-endpoint-status", func(st *memory.Store) convoy.Store { return ignoresStatus{st} }, []string{"endpoint-status"}},
	{"hurried-retries", func(st *memory.Store) convoy.Store { return hurriesRetries{st} }, []string{"retry-timing", "state"}},
}

// TestSimFinds runs stores with known bugs until a seed finds each: the
// checks can fail, and fail with the rule the bug breaks.
func TestSimFinds(t *testing.T) {
	skipIfReplaying(t)
	budget := 500
	if raceEnabled {
		budget = 200
	}
	for _, m := range mutants {
		t.Run(m.name, func(t *testing.T) {
			for seed := uint64(1); seed <= uint64(budget); seed++ {
				res := Run(t, Generate(seed, "memory"), Options{Backend: mutantBackend{m}})
				if res.Failure == nil {
					continue
				}
				if !slices.ContainsFunc(res.Failure.Checks(), func(c string) bool { return slices.Contains(m.checks, c) }) {
					t.Fatalf("seed %d found the bug as %v, not %v: %s", seed, res.Failure.Checks(), m.checks, res.Failure)
				}
				t.Logf("found by seed %d: %s", seed, res.Failure)
				return
			}
			t.Fatalf("no seed of %d found the bug", budget)
		})
	}
}
