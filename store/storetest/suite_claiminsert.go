package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

// claimingInserter returns s as a convoy.ClaimingInserter, or skips the
// test for a store without the capability (it is optional).
func claimingInserter(t *testing.T, s convoy.Store) convoy.ClaimingInserter {
	t.Helper()
	ci, ok := s.(convoy.ClaimingInserter)
	if !ok {
		t.Skipf("%T does not implement convoy.ClaimingInserter", s)
	}
	return ci
}

// insertClaim calls InsertEventClaim with the suite's defaults for the
// zero fields of req (Owner "worker-1", Lease one minute) and checks the
// leases it returns.
func (e *env) insertClaim(ci convoy.ClaimingInserter, req convoy.ClaimRequest, ev *convoy.Event, ds ...*convoy.Delivery) (convoy.InsertResult, []*convoy.Delivery) {
	e.t.Helper()
	if req.Owner == "" {
		req.Owner = "worker-1"
	}
	if req.Lease == 0 {
		req.Lease = lease
	}
	res, err := ci.InsertEventClaim(e.ctx, ev, ds, req)
	require.NoError(e.t, err)
	var leased []*convoy.Delivery
	for _, d := range res.Deliveries {
		if d.Status != convoy.DeliveryProcessing {
			require.Empty(e.t, d.LeaseID, "delivery %s is %s with a lease", d.ID, d.Status)
			continue
		}
		require.Equal(e.t, req.Owner, d.LeaseOwner)
		require.NotEmpty(e.t, d.LeaseID)
		require.True(e.t, d.LeaseExpiresAt.Equal(req.Now.Add(req.Lease)), "LeaseExpiresAt %v, want %v", d.LeaseExpiresAt, req.Now.Add(req.Lease))
		require.Equal(e.t, 1, d.Claims)
		// The store's copy is the same.
		requireEqual(e.t, d, e.get(d.ID), "delivery %s as stored", d.ID)
		leased = append(leased, d)
	}
	return res, leased
}

// testInsertClaimLeases checks that InsertEventClaim leases the first
// req.Limit Scheduled deliveries, in order, and that those leases behave
// as Claim's do: not claimable while valid, recordable under their
// LeaseID, claimable again once expired.
func testInsertClaimLeases(t *testing.T, s convoy.Store) {
	ci := claimingInserter(t, s)
	e := setup(t, s)
	eps := []*convoy.Endpoint{e.ep, e.newEndpoint(e.app.ID), e.newEndpoint(e.app.ID), e.newEndpoint(e.app.ID)}
	now := epoch.Add(time.Hour)
	ev := NewEvent(e.app.ID, now)
	ds := make([]*convoy.Delivery, len(eps))
	for i, ep := range eps {
		ds[i] = NewDelivery(ev, ep.ID)
	}
	ds[0].Status = convoy.DeliveryDiscarded // never leased, and not counted in Limit

	res, leased := e.insertClaim(ci, convoy.ClaimRequest{Now: now, Limit: 2}, ev, ds...)
	require.True(t, res.Inserted)
	requireEqual(t, ev, res.Event)
	require.Len(t, res.Deliveries, 4)
	require.Equal(t, []string{ds[1].ID, ds[2].ID}, ids(leased), "the first two Scheduled deliveries, in order")
	require.NotEqual(t, leased[0].LeaseID, leased[1].LeaseID)
	require.Equal(t, convoy.DeliveryDiscarded, e.get(ds[0].ID).Status)
	requireEqual(t, ds[3], e.get(ds[3].ID), "the delivery past Limit is stored as given")

	// Claim sees only the delivery that was not leased.
	require.Equal(t, []string{ds[3].ID}, ids(e.claim(convoy.ClaimRequest{Now: now})))

	// A lease from InsertEventClaim ends like a claim's.
	a := NewAttempt(leased[0], 1, 200, now)
	e.record(convoy.Transition{DeliveryID: leased[0].ID, LeaseID: leased[0].LeaseID, Now: now, Attempt: a, Status: convoy.DeliverySuccess})
	require.Equal(t, convoy.DeliverySuccess, e.get(leased[0].ID).Status)
	_, err := s.Record(e.ctx, convoy.Transition{DeliveryID: leased[1].ID, LeaseID: "not-the-lease", Now: now, Status: convoy.DeliveryDiscarded})
	require.ErrorIs(t, err, convoy.ErrLeaseLost)

	// Once its lease expires, the other is claimable again.
	later := now.Add(lease + time.Second)
	got := e.claim(convoy.ClaimRequest{Now: later, Owner: "worker-2"})
	require.ElementsMatch(t, []string{leased[1].ID, ds[3].ID}, ids(got), "both leases expired")
	for _, d := range got {
		require.Equal(t, 2, d.Claims)
	}
}

// testInsertClaimNeverOvertakes checks that InsertEventClaim leases
// nothing while older work is due: a Scheduled delivery due, one under an
// expired lease, or one held back because its endpoint is at its cap.
func testInsertClaimNeverOvertakes(t *testing.T, s convoy.Store) {
	ci := claimingInserter(t, s)
	e := setup(t, s)
	other := e.newEndpoint(e.app.ID)
	t0 := epoch.Add(time.Hour)

	fresh := func(at time.Time, req convoy.ClaimRequest) []*convoy.Delivery {
		t.Helper()
		ev := NewEvent(e.app.ID, at)
		req.Now, req.Limit = at, 10
		_, leased := e.insertClaim(ci, req, ev, NewDelivery(ev, other.ID))
		return leased
	}
	// drain claims everything due at `at` and records it as Success.
	drain := func(at time.Time) []*convoy.Delivery {
		t.Helper()
		ds := e.claim(convoy.ClaimRequest{Now: at})
		for _, d := range ds {
			e.record(convoy.Transition{DeliveryID: d.ID, LeaseID: d.LeaseID, Now: at, Status: convoy.DeliverySuccess,
				Attempt: NewAttempt(d, d.Attempts+1, 200, at)})
		}
		return ds
	}

	// Work due later does not hold a new event back.
	e.one(t0.Add(24 * time.Hour))
	first := fresh(t0, convoy.ClaimRequest{})
	require.Len(t, first, 1)

	// A Scheduled delivery due now does, on any endpoint, and is claimed
	// before the new one.
	old := e.one(t0)
	require.Empty(t, fresh(t0.Add(time.Second), convoy.ClaimRequest{}))
	got := drain(t0.Add(time.Second))
	require.Len(t, got, 2)
	require.Equal(t, old.ID, got[0].ID, "the older delivery is claimed first")

	// So does one whose lease expired (the first new one's).
	expired := first[0].LeaseExpiresAt.Add(time.Second)
	require.Empty(t, fresh(expired, convoy.ClaimRequest{}))
	got = drain(expired)
	require.Len(t, got, 2, "the expired lease and the new delivery")
	require.Equal(t, first[0].ID, got[0].ID, "the expired lease first")

	// And one held back by PerEndpoint: due, though this caller may not
	// claim it.
	tD := expired.Add(time.Minute)
	capped := e.one(tD)
	require.Empty(t, fresh(tD, convoy.ClaimRequest{PerEndpoint: 1, InFlight: map[string]int{e.ep.ID: 1}}))
	require.Equal(t, convoy.DeliveryScheduled, e.get(capped.ID).Status)
}

// testInsertClaimCapacity checks that PerEndpoint and InFlight bound what
// InsertEventClaim leases, endpoint by endpoint.
func testInsertClaimCapacity(t *testing.T, s convoy.Store) {
	ci := claimingInserter(t, s)
	e := setup(t, s)
	full, room := e.ep, e.newEndpoint(e.app.ID)
	now := epoch.Add(time.Hour)
	ev := NewEvent(e.app.ID, now)
	ds := []*convoy.Delivery{NewDelivery(ev, full.ID), NewDelivery(ev, room.ID)}
	_, leased := e.insertClaim(ci, convoy.ClaimRequest{
		Now: now, Limit: 10, PerEndpoint: 2,
		InFlight: map[string]int{full.ID: 2, room.ID: 1},
	}, ev, ds...)
	require.Equal(t, []string{ds[1].ID}, ids(leased), "only the endpoint below its cap")
	require.Equal(t, convoy.DeliveryScheduled, e.get(ds[0].ID).Status)

	// The one left Scheduled is claimable once its endpoint has room.
	require.Equal(t, []string{ds[0].ID}, ids(e.claim(convoy.ClaimRequest{Now: now, PerEndpoint: 2, InFlight: map[string]int{full.ID: 1}})))
}

// testInsertClaimIdempotent checks that a repeated idempotency key stores
// and leases nothing.
func testInsertClaimIdempotent(t *testing.T, s convoy.Store) {
	ci := claimingInserter(t, s)
	e := setup(t, s)
	now := epoch.Add(time.Hour)
	first := NewEvent(e.app.ID, now)
	first.IdempotencyKey = "order-1"
	d := NewDelivery(first, e.ep.ID)
	d.NextAttemptAt = now.Add(time.Hour) // not due: the repeat could lease
	e.insert(first, d)

	again := NewEvent(e.app.ID, now)
	again.IdempotencyKey = "order-1"
	res, leased := e.insertClaim(ci, convoy.ClaimRequest{Now: now, Limit: 10}, again, NewDelivery(again, e.ep.ID))
	require.False(t, res.Inserted)
	require.Empty(t, leased)
	requireEqual(t, first, res.Event)
	requireEqual(t, []*convoy.Delivery{d}, res.Deliveries)
	requireEqual(t, d, e.get(d.ID))
}

// testInsertClaimStats checks that leased deliveries count as Processing
// and not as due.
func testInsertClaimStats(t *testing.T, s convoy.Store) {
	ci := claimingInserter(t, s)
	e := setup(t, s)
	other := e.newEndpoint(e.app.ID)
	now := epoch.Add(time.Hour)
	ev := NewEvent(e.app.ID, now)
	e.insertClaim(ci, convoy.ClaimRequest{Now: now, Limit: 1}, ev, NewDelivery(ev, e.ep.ID), NewDelivery(ev, other.ID))
	st, err := s.Stats(e.ctx, now)
	require.NoError(t, err)
	require.Equal(t, 1, st.Deliveries[convoy.DeliveryProcessing])
	require.Equal(t, 1, st.Deliveries[convoy.DeliveryScheduled])
	require.Equal(t, 1, st.DueNow)
}

// testInsertClaimInvalid checks the refusals: a lease that is not
// positive stores nothing; a Limit of zero stores and leases nothing.
func testInsertClaimInvalid(t *testing.T, s convoy.Store) {
	ci := claimingInserter(t, s)
	e := setup(t, s)
	now := epoch.Add(time.Hour)
	ev := NewEvent(e.app.ID, now)
	_, err := ci.InsertEventClaim(e.ctx, ev, []*convoy.Delivery{NewDelivery(ev, e.ep.ID)}, convoy.ClaimRequest{Now: now, Limit: 1, Owner: "w"})
	require.ErrorIs(t, err, convoy.ErrInvalid)
	_, err = s.GetEvent(e.ctx, ev.ID)
	require.ErrorIs(t, err, convoy.ErrNotFound, "a refused call stores nothing")

	_, leased := e.insertClaim(ci, convoy.ClaimRequest{Now: now}, ev, NewDelivery(ev, e.ep.ID))
	require.Empty(t, leased)
	require.Len(t, e.claim(convoy.ClaimRequest{Now: now}), 1)
}

// testInsertClaimConcurrent runs InsertEventClaim and Claim at once from
// many goroutines and checks that no delivery is held under two valid
// leases.
func testInsertClaimConcurrent(t *testing.T, s convoy.Store) {
	ci := claimingInserter(t, s)
	e := setup(t, s)
	now := epoch.Add(time.Hour)
	var (
		mu     sync.Mutex
		holder = map[string]string{} // delivery → lease
		errs   []error
	)
	hold := func(ds []*convoy.Delivery) {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range ds {
			if d.Status != convoy.DeliveryProcessing {
				continue
			}
			if prev, ok := holder[d.ID]; ok {
				errs = append(errs, errors.New("delivery "+d.ID+" leased twice: "+prev+" and "+d.LeaseID))
			}
			holder[d.ID] = d.LeaseID
		}
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 25 {
				ev := NewEvent(e.app.ID, now)
				res, err := ci.InsertEventClaim(e.ctx, ev, []*convoy.Delivery{NewDelivery(ev, e.ep.ID)},
					convoy.ClaimRequest{Now: now, Limit: 1, Owner: "inserter", Lease: lease})
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				hold(res.Deliveries)
			}
		}()
		go func() {
			defer wg.Done()
			for range 25 {
				ds, err := s.Claim(e.ctx, convoy.ClaimRequest{Now: now, Limit: 3, Owner: "claimer", Lease: lease})
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				hold(ds)
			}
		}()
	}
	wg.Wait()
	require.Empty(t, errs)
	// Whatever was not leased is still there for Claim.
	rest := e.claim(convoy.ClaimRequest{Now: now})
	hold(rest)
	require.Empty(t, errs)
	require.Len(t, holder, 100, "every delivery leased exactly once")
}
