package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

// The cases of this file check what Claim and InsertEventClaim promise for
// an endpoint with Ordered set: only its earliest pending delivery is
// handed out, only when due, and only while nothing else of the endpoint
// is in flight.

func ordered(ep *convoy.Endpoint) { ep.Ordered = true }

// queue inserts n deliveries to ep in ID order, each in its own event.
// The first is due at t0 - 1s, the others earlier and earlier, so that
// due order is the reverse of ID (Send) order.
func (e *env) queue(ep *convoy.Endpoint, n int) []*convoy.Delivery {
	e.t.Helper()
	ds := make([]*convoy.Delivery, n)
	for i := range ds {
		_, one := e.send(t0.Add(-time.Duration(i+1)*time.Second), ep)
		ds[i] = one[0]
	}
	return ds
}

// of returns the deliveries of ds that go to the endpoint epID.
func of(epID string, ds []*convoy.Delivery) []*convoy.Delivery {
	var out []*convoy.Delivery
	for _, d := range ds {
		if d.EndpointID == epID {
			out = append(out, d)
		}
	}
	return out
}

// succeed records a Success with an attempt for the claimed c.
func (e *env) succeed(c *convoy.Delivery, now time.Time) {
	e.t.Helper()
	e.record(transition(c, now, convoy.DeliverySuccess, 200))
}

// requireNext checks that NextDue reports want.
func (e *env) requireNext(want time.Time, msg string) {
	e.t.Helper()
	at, ok := e.nextDue()
	require.True(e.t, ok, msg)
	require.True(e.t, at.Equal(want), "%s: NextDue %v, want %v", msg, at, want)
}

// testOrderedOneAtATime checks that an ordered endpoint's deliveries are
// handed out one at a time in ID order, whatever their due order and the
// claim's Limit, and that those held back are not due.
func testOrderedOneAtATime(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ep := e.newEndpoint(e.app.ID, ordered)
	ds := e.queue(ep, 5)

	for i, want := range ds {
		now := t0.Add(time.Duration(i) * time.Second)
		got := e.claim(convoy.ClaimRequest{Now: now})
		require.Equal(t, []string{want.ID}, ids(got), "delivery %d: only the earliest pending, though all are due", i)
		require.Empty(t, e.claim(convoy.ClaimRequest{Now: now}), "delivery %d: another handed out while one is in flight", i)
		if i < len(ds)-1 {
			e.requireNext(got[0].LeaseExpiresAt, "those held back are not due")
			st, err := s.Stats(e.ctx, now)
			require.NoError(t, err)
			require.Zero(t, st.DueNow, "held back deliveries counted as due")
			require.Equal(t, len(ds)-i-1, st.Deliveries[convoy.DeliveryScheduled])
		}
		e.succeed(got[0], now)
	}
	require.Empty(t, e.claim(convoy.ClaimRequest{Now: t0.Add(time.Hour)}))
	_, pending := e.nextDue()
	require.False(t, pending)
}

// testOrderedRetryBlocks checks head-of-line blocking: a head waiting for
// its retry holds back the deliveries after it, which are due.
func testOrderedRetryBlocks(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ep := e.newEndpoint(e.app.ID, ordered)
	ds := e.queue(ep, 3)

	c := e.claimOne(t0)
	require.Equal(t, ds[0].ID, c.ID)
	tr := transition(c, t0, convoy.DeliveryRetry, 503)
	tr.NextAttemptAt = t0.Add(time.Hour)
	e.record(tr)

	require.Empty(t, e.claim(convoy.ClaimRequest{Now: t0.Add(30 * time.Minute)}), "later deliveries overtook a retry")
	e.requireNext(tr.NextAttemptAt, "the head's retry")
	require.Empty(t, e.claim(convoy.ClaimRequest{Now: t0.Add(time.Hour - time.Second)}))

	c = e.claimOne(t0.Add(time.Hour))
	require.Equal(t, ds[0].ID, c.ID, "the retry comes first")
	require.Equal(t, 1, c.Attempts)
	require.Empty(t, e.claim(convoy.ClaimRequest{Now: t0.Add(time.Hour)}))
	e.succeed(c, t0.Add(time.Hour))
	require.Equal(t, ds[1].ID, e.claimOne(t0.Add(time.Hour)).ID)
}

// testOrderedFailureUnblocks checks that a head ending in Failure or
// Discarded lets the next one go, and that a re-sent delivery takes its
// place by ID again: after the one in flight, before the later ones.
func testOrderedFailureUnblocks(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ep := e.newEndpoint(e.app.ID, ordered)
	ds := e.queue(ep, 4)

	c := e.claimOne(t0)
	require.Equal(t, ds[0].ID, c.ID)
	e.record(transition(c, t0, convoy.DeliveryFailure, 500))
	c = e.claimOne(t0)
	require.Equal(t, ds[1].ID, c.ID, "a Failure unblocks the next")
	e.record(convoy.Transition{DeliveryID: c.ID, LeaseID: c.LeaseID, Now: t0, Status: convoy.DeliveryDiscarded})
	c = e.claimOne(t0)
	require.Equal(t, ds[2].ID, c.ID, "so does Discarded")

	// Re-send the failed one while the third is in flight.
	now := t0.Add(lease / 2)
	n, err := s.Requeue(e.ctx, convoy.RequeueRequest{Now: now, DeliveryID: ds[0].ID})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Empty(t, e.claim(convoy.ClaimRequest{Now: now}), "the re-sent delivery went while another was in flight")
	e.succeed(c, now)
	c = e.claimOne(now)
	require.Equal(t, ds[0].ID, c.ID, "the re-sent delivery is the earliest pending again")
	require.Empty(t, e.claim(convoy.ClaimRequest{Now: now}))
	e.succeed(c, now)
	require.Equal(t, ds[3].ID, e.claimOne(now).ID)
}

// testOrderedLeaseExpiry checks that a head in flight holds the others
// back until its lease expires, and is then handed out again first; and
// that a released head stays the head.
func testOrderedLeaseExpiry(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ep := e.newEndpoint(e.app.ID, ordered)
	ds := e.queue(ep, 3)

	c1 := e.claimOne(t0)
	require.Equal(t, ds[0].ID, c1.ID)
	require.Empty(t, e.claim(convoy.ClaimRequest{Now: t0.Add(lease - time.Second), Owner: "worker-2"}))
	c2 := e.claim(convoy.ClaimRequest{Now: t0.Add(lease), Owner: "worker-2"})
	require.Equal(t, []string{ds[0].ID}, ids(c2), "the expired head is claimed again, not the next")
	require.Equal(t, 2, c2[0].Claims)
	require.Empty(t, e.claim(convoy.ClaimRequest{Now: t0.Add(lease), Owner: "worker-3"}))
	_, err := s.Record(e.ctx, transition(c1, t0.Add(lease), convoy.DeliverySuccess, 200))
	require.ErrorIs(t, err, convoy.ErrLeaseLost)

	now := t0.Add(lease)
	e.succeed(c2[0], now)
	c := e.claimOne(now)
	require.Equal(t, ds[1].ID, c.ID)
	require.NoError(t, s.Release(e.ctx, c.ID, c.LeaseID))
	c = e.claimOne(now)
	require.Equal(t, ds[1].ID, c.ID, "a released head stays the head")
	e.succeed(c, now)
	require.Equal(t, ds[2].ID, e.claimOne(now).ID)
}

// testOrderedUnorderedUnaffected checks that an ordered endpoint holds
// back only its own deliveries, and that its blocked queue does not cost
// other endpoints their place in a Claim or the capacity rules.
func testOrderedUnorderedUnaffected(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ord := e.newEndpoint(e.app.ID, ordered)
	free := e.newEndpoint(e.app.ID)
	var ods, fds []*convoy.Delivery
	for i := range 4 {
		_, ds := e.send(t0.Add(-time.Duration(10-i)*time.Second), ord, free)
		ods, fds = append(ods, ds[0]), append(fds, ds[1])
	}

	got := e.claim(convoy.ClaimRequest{Now: t0})
	require.Equal(t, []string{ods[0].ID}, ids(of(ord.ID, got)))
	require.ElementsMatch(t, ids(fds), ids(of(free.ID, got)), "the unordered endpoint's work all goes")
	for _, d := range got {
		tr := transition(d, t0, convoy.DeliveryRetry, 500)
		tr.NextAttemptAt = t0.Add(time.Hour)
		e.record(tr)
	}

	// With the ordered head waiting, new work of the other endpoint goes,
	// within its cap, and a small Limit is not spent on held back work.
	later := t0.Add(time.Minute)
	var more []*convoy.Delivery
	for range 3 {
		_, ds := e.send(later, ord, free)
		more = append(more, ds[1])
	}
	got = e.claim(convoy.ClaimRequest{Now: later, Limit: 1})
	require.Equal(t, []string{more[0].ID}, ids(got))
	got = append(got, e.claim(convoy.ClaimRequest{Now: later, PerEndpoint: 2, InFlight: map[string]int{free.ID: 1}})...)
	require.Equal(t, ids(more[:2]), ids(got))
	for _, d := range got {
		e.succeed(d, later)
	}
	got = e.claim(convoy.ClaimRequest{Now: t0.Add(time.Hour)})
	require.Equal(t, []string{ods[0].ID}, ids(of(ord.ID, got)), "only the ordered head once its retry is due")
	require.ElementsMatch(t, append(ids(fds), more[2].ID), ids(of(free.ID, got)))
}

// testOrderedToggle checks that turning Ordered off releases the queue at
// once, and that turning it on holds back all but the head, also behind
// deliveries leased before it was on.
func testOrderedToggle(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ep := e.newEndpoint(e.app.ID, ordered)
	ds := e.queue(ep, 4)
	head := e.claimOne(t0)
	require.Equal(t, ds[0].ID, head.ID)

	u := e.endpoint(ep.ID)
	u.Ordered = false
	require.False(t, e.updateEndpoint(u).Ordered)
	got := e.claim(convoy.ClaimRequest{Now: t0})
	require.ElementsMatch(t, ids(ds[1:]), ids(got), "turning Ordered off releases the queue")
	e.succeed(head, t0)
	for _, d := range got {
		e.succeed(d, t0)
	}

	// On again, with two deliveries in flight from before.
	ds = e.queue(ep, 4)
	now := t0.Add(time.Second)
	got = e.claim(convoy.ClaimRequest{Now: now, Limit: 2})
	require.Len(t, got, 2)
	u = e.endpoint(ep.ID)
	u.Ordered = true
	require.True(t, e.updateEndpoint(u).Ordered)
	require.Empty(t, e.claim(convoy.ClaimRequest{Now: now}), "handed out beside deliveries in flight")
	e.succeed(got[0], now)
	require.Empty(t, e.claim(convoy.ClaimRequest{Now: now}), "handed out beside a delivery in flight")
	e.succeed(got[1], now)
	rest := map[string]bool{}
	for _, d := range ds {
		rest[d.ID] = true
	}
	delete(rest, got[0].ID)
	delete(rest, got[1].ID)
	for range 2 {
		c := e.claimOne(now)
		require.True(t, rest[c.ID], "delivery %s is not one of those left", c.ID)
		delete(rest, c.ID)
		for id := range rest {
			require.Less(t, c.ID, id, "not the earliest pending")
		}
		require.Empty(t, e.claim(convoy.ClaimRequest{Now: now}))
		e.succeed(c, now)
	}
}

// testOrderedInsertClaim checks that InsertEventClaim leases a delivery
// of an ordered endpoint only when the endpoint has nothing else pending.
func testOrderedInsertClaim(t *testing.T, s convoy.Store) {
	ci := claimingInserter(t, s)
	e := setup(t, s)
	ord := e.newEndpoint(e.app.ID, ordered)
	free := e.newEndpoint(e.app.ID)
	now := epoch.Add(time.Hour)
	send := func(at time.Time) ([]*convoy.Delivery, []*convoy.Delivery) {
		t.Helper()
		ev := NewEvent(e.app.ID, at)
		ds := []*convoy.Delivery{NewDelivery(ev, ord.ID), NewDelivery(ev, free.ID)}
		_, leased := e.insertClaim(ci, convoy.ClaimRequest{Now: at, Limit: 10}, ev, ds...)
		return ds, leased
	}

	first, l1 := send(now)
	require.Equal(t, ids(first), ids(l1), "an idle ordered endpoint's delivery goes straight to a worker")
	second, l2 := send(now)
	require.Equal(t, []string{second[1].ID}, ids(l2), "not while another is in flight")
	require.Equal(t, convoy.DeliveryScheduled, e.get(second[0].ID).Status)
	require.Empty(t, e.claim(convoy.ClaimRequest{Now: now}))
	for _, d := range append(l1, l2...) {
		e.succeed(d, now)
	}

	// The second is the head now, and due: a new event waits behind it.
	third, l3 := send(now)
	require.Empty(t, l3, "leased while work was due")
	got := e.claim(convoy.ClaimRequest{Now: now})
	require.ElementsMatch(t, []string{second[0].ID, third[1].ID}, ids(got))
	for _, d := range got {
		tr := transition(d, now, convoy.DeliverySuccess, 200)
		if d.EndpointID == ord.ID {
			tr = transition(d, now, convoy.DeliveryRetry, 500)
			tr.NextAttemptAt = now.Add(time.Hour)
		}
		e.record(tr)
	}

	// The head waits for its retry: nothing is due, so the other
	// endpoint's new delivery is leased, not the ordered one's.
	fourth, l4 := send(now)
	require.Equal(t, []string{fourth[1].ID}, ids(l4))
	e.succeed(l4[0], now)
	later := now.Add(time.Hour)
	for _, want := range []*convoy.Delivery{second[0], third[0], fourth[0]} {
		c := e.claimOne(later)
		require.Equal(t, want.ID, c.ID)
		e.succeed(c, later)
	}
}

// testOrderedConcurrent has several workers claim and record the ordered
// endpoint's queue at once: never are two of its deliveries in flight
// together, and they are handed out in ID order.
func testOrderedConcurrent(t *testing.T, s convoy.Store) {
	const (
		workers    = 8
		deliveries = 60
	)
	e := setup(t, s)
	ep := e.newEndpoint(e.app.ID, ordered)
	free := e.newEndpoint(e.app.ID)
	var want []string
	for i := range deliveries {
		_, ds := e.send(t0.Add(-time.Duration(deliveries-i)*time.Second), ep, free)
		want = append(want, ds[0].ID)
	}
	var (
		mu       sync.Mutex
		inFlight = map[string]bool{}
		order    []string
		errs     []error
		wg       sync.WaitGroup
		start    = time.Now()
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("worker-%d", w)
			for time.Since(start) < time.Minute {
				ds, err := s.Claim(e.ctx, convoy.ClaimRequest{Now: t0, Limit: 1 + w%3, Owner: owner, Lease: time.Hour})
				if err != nil {
					fail(err)
					return
				}
				mu.Lock()
				done := len(order) == deliveries
				for _, d := range of(ep.ID, ds) {
					if len(inFlight) > 0 {
						errs = append(errs, fmt.Errorf("%s handed out while %v in flight", d.ID, inFlight))
					}
					inFlight[d.ID] = true
					order = append(order, d.ID)
				}
				mu.Unlock()
				if done {
					return
				}
				for _, d := range ds {
					mu.Lock()
					delete(inFlight, d.ID)
					mu.Unlock()
					if _, err := s.Record(e.ctx, transition(d, t0, convoy.DeliverySuccess, 200)); err != nil {
						fail(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	require.Empty(t, errs)
	require.Equal(t, want, order, "handed out in ID order, each once")
}
