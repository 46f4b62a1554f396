package storetest

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

func testClaimDueOnly(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	past := e.one(t0.Add(-time.Minute))
	now := e.one(t0)
	future := e.one(t0.Add(time.Minute))
	_, disc := e.sendStatus(t0.Add(-time.Hour), convoy.DeliveryDiscarded, e.ep)

	got := e.claim(convoy.ClaimRequest{Now: t0, Lease: time.Hour})
	require.ElementsMatch(t, []string{past.ID, now.ID}, ids(got))
	require.Empty(t, e.claim(convoy.ClaimRequest{Now: t0}), "claimed twice under a valid lease")
	require.Empty(t, e.claim(convoy.ClaimRequest{Now: t0.Add(time.Minute - time.Second)}))
	got = e.claim(convoy.ClaimRequest{Now: t0.Add(time.Minute)})
	require.Equal(t, []string{future.ID}, ids(got))

	got = e.claim(convoy.ClaimRequest{Now: t0.Add(1000 * time.Hour)})
	require.ElementsMatch(t, []string{past.ID, now.ID, future.ID}, ids(got), "expired leases are claimable, Discarded never")
	require.Equal(t, convoy.DeliveryDiscarded, e.get(disc[0].ID).Status)
}

func testClaimOrder(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	due := make([]*convoy.Delivery, 7)
	for _, i := range rand.Perm(len(due)) {
		due[i] = e.one(t0.Add(time.Duration(i-10) * time.Minute))
	}
	var got []string
	for _, want := range [][]*convoy.Delivery{due[0:3], due[3:6], due[6:7]} {
		ds := e.claim(convoy.ClaimRequest{Now: t0, Limit: 3})
		require.ElementsMatch(t, ids(want), ids(ds), "the earliest due first")
		got = append(got, ids(ds)...)
	}
	require.Empty(t, e.claim(convoy.ClaimRequest{Now: t0, Limit: 3}))
	require.ElementsMatch(t, ids(due), got)

	// Expired leases compete with due work by due time: the seven leases
	// expire at t0+1m, after work due at t0+30s and before work due at
	// t0+2m.
	early := e.one(t0.Add(30 * time.Second))
	late := e.one(t0.Add(2 * time.Minute))
	now := t0.Add(3 * time.Minute)
	require.Equal(t, []string{early.ID}, ids(e.claim(convoy.ClaimRequest{Now: now, Limit: 1})))
	require.ElementsMatch(t, ids(due), ids(e.claim(convoy.ClaimRequest{Now: now, Limit: len(due)})))
	require.Equal(t, []string{late.ID}, ids(e.claim(convoy.ClaimRequest{Now: now, Limit: len(due)})))
}

func testClaimLease(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	d := e.one(t0.Add(-time.Minute))
	c := e.claimOne(t0)

	want := d.Clone()
	want.Status = convoy.DeliveryProcessing
	want.LeaseOwner = "worker-1"
	want.LeaseID = c.LeaseID
	want.LeaseExpiresAt = t0.Add(lease)
	want.Claims = 1
	want.UpdatedAt = c.UpdatedAt
	requireEqual(t, want, c, "Claim changes status, lease and Claims, nothing else")
	requireEqual(t, c, e.get(d.ID))

	at, ok := e.nextDue()
	require.True(t, ok)
	require.True(t, at.Equal(t0.Add(lease)), "NextDue %v, want the lease expiry", at)

	require.Empty(t, e.claim(convoy.ClaimRequest{Now: t0.Add(lease - time.Second)}))
	c2 := e.claim(convoy.ClaimRequest{Now: t0.Add(lease), Owner: "worker-2", Lease: 2 * lease})
	require.Len(t, c2, 1)
	require.Equal(t, d.ID, c2[0].ID)
	require.NotEqual(t, c.LeaseID, c2[0].LeaseID, "a new claim has a new lease")
	require.Equal(t, 2, c2[0].Claims)
	require.Equal(t, "worker-2", c2[0].LeaseOwner)
	require.True(t, c2[0].NextAttemptAt.Equal(d.NextAttemptAt))
	requireEqual(t, c2[0], e.get(d.ID))

	// Lease IDs are fresh for every claim of every delivery.
	seen := map[string]bool{c.LeaseID: true, c2[0].LeaseID: true}
	for range 5 {
		e.one(t0)
	}
	for _, x := range e.claim(convoy.ClaimRequest{Now: t0}) {
		require.False(t, seen[x.LeaseID], "lease ID %s handed out twice", x.LeaseID)
		seen[x.LeaseID] = true
	}
}

func testClaimFinal(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ok := e.one(t0)
	failed := e.one(t0)
	discarded := e.one(t0)
	abandoned := e.one(t0)
	e.sendStatus(t0, convoy.DeliveryDiscarded, e.ep)
	_, done := e.sendStatus(t0, convoy.DeliverySuccess, e.ep)
	e.finish(ok, t0, convoy.DeliverySuccess, 200)
	e.finish(failed, t0, convoy.DeliveryFailure, 500)
	e.finish(discarded, t0, convoy.DeliveryDiscarded, -1)
	e.finish(abandoned, t0, convoy.DeliveryFailure, -1)

	require.Empty(t, e.claim(convoy.ClaimRequest{Now: t0.Add(1000 * time.Hour)}))
	_, pending := e.nextDue()
	require.False(t, pending)
	require.Equal(t, convoy.DeliverySuccess, e.get(done[0].ID).Status)
}

func testClaimCapacity(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ep2 := e.newEndpoint(e.app.ID)
	var a, b []*convoy.Delivery
	for i := range 4 {
		_, ds := e.send(t0.Add(time.Duration(i-10)*time.Minute), e.ep)
		a = append(a, ds[0])
	}
	for i := range 4 {
		_, ds := e.send(t0.Add(time.Duration(i-5)*time.Minute), ep2)
		b = append(b, ds[0])
	}
	got := e.claim(convoy.ClaimRequest{
		Now: t0, Limit: 10, PerEndpoint: 2,
		InFlight: map[string]int{e.ep.ID: 1},
	})
	require.ElementsMatch(t, []string{a[0].ID, b[0].ID, b[1].ID}, ids(got))
	for _, d := range append(a[1:], b[2:]...) {
		requireEqual(t, d, e.get(d.ID), "a skipped delivery is left as it was")
	}
	at, ok := e.nextDue()
	require.True(t, ok)
	require.True(t, at.Equal(a[1].NextAttemptAt), "skipped deliveries stay due")

	require.Empty(t, e.claim(convoy.ClaimRequest{
		Now: t0, Limit: 10, PerEndpoint: 2,
		InFlight: map[string]int{e.ep.ID: 2, ep2.ID: 3},
	}))
	got = e.claim(convoy.ClaimRequest{Now: t0, Limit: 1, PerEndpoint: 5})
	require.Equal(t, []string{a[1].ID}, ids(got))
	got = e.claim(convoy.ClaimRequest{Now: t0, Limit: 10, PerEndpoint: 2, InFlight: map[string]int{e.ep.ID: 1}})
	require.ElementsMatch(t, []string{a[2].ID, b[2].ID, b[3].ID}, ids(got))
	got = e.claim(convoy.ClaimRequest{Now: t0, Limit: 10})
	require.Equal(t, []string{a[3].ID}, ids(got))
}

func testClaimConcurrent(t *testing.T, s convoy.Store) {
	const (
		workers    = 32
		deliveries = 240
	)
	e := setup(t, s)
	eps := []*convoy.Endpoint{e.ep, e.newEndpoint(e.app.ID), e.newEndpoint(e.app.ID), e.newEndpoint(e.app.ID)}
	var all []*convoy.Delivery
	for i := range deliveries / len(eps) {
		_, ds := e.send(t0.Add(-time.Duration(i)*time.Second), eps...)
		all = append(all, ds...)
	}

	// claimAll has every worker claim at now until nothing is left, and
	// returns how often each delivery was handed out.
	claimAll := func(now time.Time) map[string]int {
		t.Helper()
		var (
			mu     sync.Mutex
			counts = make(map[string]int)
			errs   = make(chan error, workers)
			start  = make(chan struct{})
			wg     sync.WaitGroup
		)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for {
					ds, err := s.Claim(e.ctx, convoy.ClaimRequest{
						Now: now, Limit: 1 + w%4, Owner: fmt.Sprintf("worker-%d", w), Lease: lease,
					})
					if err != nil {
						errs <- err
						return
					}
					if len(ds) == 0 {
						return
					}
					mu.Lock()
					for _, d := range ds {
						counts[d.ID]++
					}
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		return counts
	}

	requireOnce := func(counts map[string]int) {
		t.Helper()
		require.Len(t, counts, len(all))
		for _, d := range all {
			require.Equal(t, 1, counts[d.ID], "delivery %s claimed %d times", d.ID, counts[d.ID])
		}
	}
	requireOnce(claimAll(t0))
	require.Empty(t, claimAll(t0.Add(lease-time.Second)), "claimed again under a valid lease")
	requireOnce(claimAll(t0.Add(lease)))
	for _, d := range all {
		require.Equal(t, 2, e.get(d.ID).Claims)
	}
}

func testClaimInvalid(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	e.one(t0)
	before := snapshot(t, s)
	for _, l := range []time.Duration{0, -time.Second} {
		_, err := s.Claim(e.ctx, convoy.ClaimRequest{Now: t0, Limit: 10, Owner: "worker-1", Lease: l})
		require.ErrorIs(t, err, convoy.ErrInvalid, "Lease %v", l)
		if ec, ok := s.(convoy.EventClaimer); ok {
			_, _, err := ec.ClaimEvents(e.ctx, convoy.ClaimRequest{Now: t0, Limit: 10, Owner: "worker-1", Lease: l})
			require.ErrorIs(t, err, convoy.ErrInvalid, "ClaimEvents, Lease %v", l)
		}
	}
	requireUnchanged(t, s, before)
}

// testClaimEvents checks ClaimEvents: one event per delivery, shared or
// not by deliveries of one event, in the order of the deliveries; nothing
// for Limit 0.
func testClaimEvents(t *testing.T, s convoy.Store) {
	ec, ok := s.(convoy.EventClaimer)
	if !ok {
		t.Skipf("%T does not implement convoy.EventClaimer", s)
	}
	e := setup(t, s)
	other := e.newEndpoint(e.app.ID)
	_, fan := e.send(t0, e.ep, other)
	single := e.one(t0.Add(time.Second))
	req := convoy.ClaimRequest{Now: t0.Add(time.Minute), Limit: 0, Owner: "worker-1", Lease: lease}
	ds, evs, err := ec.ClaimEvents(e.ctx, req)
	require.NoError(t, err)
	require.Empty(t, ds, "Limit 0 claims nothing")
	require.Empty(t, evs)

	req.Limit = 10
	ds, evs, err = ec.ClaimEvents(e.ctx, req)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{fan[0].ID, fan[1].ID, single.ID}, ids(ds))
	for _, d := range ds {
		requireEqual(t, d, e.get(d.ID), "delivery %s as stored", d.ID)
	}
	e.checkClaimedEvents(ds, evs)
}

// transition returns a transition of the claimed c to st with an attempt
// answered by code.
func transition(c *convoy.Delivery, now time.Time, st convoy.DeliveryStatus, code int) convoy.Transition {
	return convoy.Transition{
		DeliveryID: c.ID, LeaseID: c.LeaseID, Now: now, Status: st,
		Attempt: NewAttempt(c, c.Attempts+1, code, now),
	}
}

// requireLeaseCleared checks that d holds no lease.
func requireLeaseCleared(t *testing.T, d *convoy.Delivery) {
	t.Helper()
	require.Empty(t, d.LeaseOwner)
	require.Empty(t, d.LeaseID)
	require.True(t, d.LeaseExpiresAt.IsZero(), "LeaseExpiresAt %v", d.LeaseExpiresAt)
}

// expectHealth applies tr to the endpoint's current health as a store must.
func (e *env) expectHealth(epID string, tr convoy.Transition) convoy.EndpointHealth {
	e.t.Helper()
	h := e.endpoint(epID).Health
	tr.UpdateHealth(&h)
	return h
}

func testRecordSuccess(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	d := e.one(t0)
	c := e.claimOne(t0)
	tr := transition(c, t0.Add(time.Second), convoy.DeliverySuccess, 200)
	var calls int
	var seen convoy.Endpoint
	tr.EndpointStatus = func(ep convoy.Endpoint) convoy.EndpointStatus {
		calls++
		seen = ep
		return ep.Status
	}
	wantHealth := e.expectHealth(e.ep.ID, tr)
	res := e.record(tr)
	require.Equal(t, convoy.RecordResult{EndpointBefore: convoy.EndpointActive, EndpointAfter: convoy.EndpointActive}, res)
	require.NotZero(t, calls)
	requireEqual(t, wantHealth, seen.Health, "EndpointStatus sees the updated health")

	got := e.get(d.ID)
	require.Equal(t, convoy.DeliverySuccess, got.Status)
	require.Equal(t, 1, got.Attempts)
	require.Equal(t, 1, got.RoundAttempts)
	require.Equal(t, 0, got.Claims)
	requireLeaseCleared(t, got)
	requireEqual(t, []*convoy.Attempt{tr.Attempt}, e.attempts(d.ID))
	ep := e.endpoint(e.ep.ID)
	requireEqual(t, wantHealth, ep.Health)
	require.True(t, ep.Health.LastSuccessAt.Equal(tr.Attempt.StartedAt))
	require.Equal(t, convoy.EndpointActive, ep.Status)
}

func testRecordRetry(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	d := e.one(t0)
	e.claimOne(t0)
	c := e.claimOne(t0.Add(lease)) // the first lease expired: Claims is 2
	require.Equal(t, 2, c.Claims)

	now := t0.Add(lease + time.Second)
	tr := transition(c, now, convoy.DeliveryRetry, 503)
	tr.NextAttemptAt = now.Add(5 * time.Minute)
	wantHealth := e.expectHealth(e.ep.ID, tr)
	e.record(tr)
	got := e.get(d.ID)
	require.Equal(t, convoy.DeliveryRetry, got.Status)
	require.True(t, got.NextAttemptAt.Equal(tr.NextAttemptAt))
	require.Equal(t, 1, got.Attempts)
	require.Equal(t, 1, got.RoundAttempts)
	require.Equal(t, 0, got.Claims, "a recorded attempt resets Claims")
	require.Equal(t, tr.Attempt.Error, got.LastError)
	requireLeaseCleared(t, got)
	requireEqual(t, wantHealth, e.endpoint(e.ep.ID).Health)
	require.Equal(t, 1, wantHealth.ConsecutiveFailures)
	at, ok := e.nextDue()
	require.True(t, ok)
	require.True(t, at.Equal(tr.NextAttemptAt))

	require.Empty(t, e.claim(convoy.ClaimRequest{Now: tr.NextAttemptAt.Add(-time.Second)}))
	c2 := e.claimOne(tr.NextAttemptAt)
	tr2 := transition(c2, tr.NextAttemptAt, convoy.DeliveryRetry, 0)
	tr2.NextAttemptAt = tr.NextAttemptAt.Add(time.Hour)
	e.record(tr2)
	got = e.get(d.ID)
	require.Equal(t, 2, got.Attempts)
	require.Equal(t, 2, got.RoundAttempts)
	require.Equal(t, tr2.Attempt.Error, got.LastError)
	require.Equal(t, 2, e.endpoint(e.ep.ID).Health.ConsecutiveFailures)
	requireEqual(t, []*convoy.Attempt{tr2.Attempt, tr.Attempt}, e.attempts(d.ID), "newest first")
}

func testRecordFailure(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	d := e.one(t0)
	c := e.claimOne(t0)
	tr := transition(c, t0, convoy.DeliveryFailure, 500)
	var seen convoy.Endpoint
	tr.EndpointStatus = func(ep convoy.Endpoint) convoy.EndpointStatus {
		seen = ep
		if ep.Health.ConsecutiveFailedDeliveries > 0 {
			return convoy.EndpointInactive
		}
		return ep.Status
	}
	res := e.record(tr)
	require.Equal(t, convoy.RecordResult{EndpointBefore: convoy.EndpointActive, EndpointAfter: convoy.EndpointInactive}, res)
	require.Equal(t, convoy.EndpointActive, seen.Status, "EndpointStatus sees the stored status")
	require.Equal(t, 1, seen.Health.ConsecutiveFailedDeliveries)
	require.Equal(t, 1, seen.Health.ConsecutiveFailures)
	ep := e.endpoint(e.ep.ID)
	require.Equal(t, convoy.EndpointInactive, ep.Status)
	require.Equal(t, 1, ep.Health.ConsecutiveFailedDeliveries)

	got := e.get(d.ID)
	require.Equal(t, convoy.DeliveryFailure, got.Status)
	require.Equal(t, tr.Attempt.Error, got.LastError)
	require.Equal(t, 1, got.Attempts)
	requireLeaseCleared(t, got)
}

func testRecordPending(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	probation := e.newEndpoint(e.app.ID, func(ep *convoy.Endpoint) { ep.Status = convoy.EndpointPending })
	_, ds := e.send(t0, probation)
	c := e.claimOne(t0)
	require.Equal(t, ds[0].ID, c.ID)
	tr := transition(c, t0, convoy.DeliverySuccess, 204)
	tr.EndpointStatus = func(ep convoy.Endpoint) convoy.EndpointStatus {
		if ep.Status == convoy.EndpointPending {
			return convoy.EndpointActive
		}
		return ep.Status
	}
	res := e.record(tr)
	require.Equal(t, convoy.RecordResult{EndpointBefore: convoy.EndpointPending, EndpointAfter: convoy.EndpointActive}, res)
	require.Equal(t, convoy.EndpointActive, e.endpoint(probation.ID).Status)
	require.Equal(t, convoy.EndpointActive, e.endpoint(e.ep.ID).Status, "only the delivery's endpoint changes")
}

func testRecordWithoutAttempt(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	disc := e.one(t0)
	aband := e.one(t0)

	c := e.take(disc.ID, t0)
	before := e.endpoint(e.ep.ID).Health
	res := e.record(convoy.Transition{DeliveryID: c.ID, LeaseID: c.LeaseID, Now: t0, Status: convoy.DeliveryDiscarded})
	require.Equal(t, convoy.RecordResult{EndpointBefore: convoy.EndpointActive, EndpointAfter: convoy.EndpointActive}, res)
	got := e.get(disc.ID)
	require.Equal(t, convoy.DeliveryDiscarded, got.Status)
	require.Zero(t, got.Attempts)
	requireLeaseCleared(t, got)
	require.Empty(t, e.attempts(disc.ID))
	requireEqual(t, before, e.endpoint(e.ep.ID).Health)

	c = e.take(aband.ID, t0)
	tr := convoy.Transition{DeliveryID: c.ID, LeaseID: c.LeaseID, Now: t0, Status: convoy.DeliveryFailure}
	wantHealth := e.expectHealth(e.ep.ID, tr)
	e.record(tr)
	got = e.get(aband.ID)
	require.Equal(t, convoy.DeliveryFailure, got.Status)
	require.Zero(t, got.Attempts)
	requireLeaseCleared(t, got)
	require.Empty(t, e.attempts(aband.ID))
	requireEqual(t, wantHealth, e.endpoint(e.ep.ID).Health)
	require.Equal(t, 1, wantHealth.ConsecutiveFailedDeliveries)
}

func testRecordInvalid(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	e.one(t0)
	other := e.one(t0.Add(time.Hour))
	c := e.claimOne(t0)
	before := snapshot(t, s)

	cases := []struct {
		name string
		mod  func(tr *convoy.Transition)
		want error
	}{
		{"empty status", func(tr *convoy.Transition) { tr.Status = "" }, convoy.ErrInvalidStatus},
		{"to Scheduled", func(tr *convoy.Transition) { tr.Status = convoy.DeliveryScheduled }, convoy.ErrInvalidStatus},
		{"to Processing", func(tr *convoy.Transition) { tr.Status = convoy.DeliveryProcessing }, convoy.ErrInvalidStatus},
		{"unknown status", func(tr *convoy.Transition) { tr.Status = "Delivered" }, convoy.ErrInvalidStatus},
		{"malformed delivery ID", func(tr *convoy.Transition) { tr.DeliveryID, tr.Attempt.DeliveryID = "dlv_1", "dlv_1" }, convoy.ErrInvalidID},
		{"malformed attempt ID", func(tr *convoy.Transition) { tr.Attempt.ID = "att_1" }, convoy.ErrInvalidID},
		{"attempt number 0", func(tr *convoy.Transition) { tr.Attempt.Number = 0 }, convoy.ErrInvalid},
		{"attempt of another delivery", func(tr *convoy.Transition) { tr.Attempt.DeliveryID = other.ID }, convoy.ErrInvalid},
		{"unknown endpoint status", func(tr *convoy.Transition) {
			tr.EndpointStatus = func(convoy.Endpoint) convoy.EndpointStatus { return "paused" }
		}, convoy.ErrInvalidStatus},
	}
	for _, tc := range cases {
		tr := transition(c, t0, convoy.DeliverySuccess, 200)
		tc.mod(&tr)
		_, err := s.Record(e.ctx, tr)
		require.ErrorIs(t, err, tc.want, tc.name)
		requireUnchanged(t, s, before)
	}
	_, err := s.Record(e.ctx, transition(&convoy.Delivery{ID: convoy.NewID(), LeaseID: c.LeaseID}, t0, convoy.DeliverySuccess, 200))
	require.ErrorIs(t, err, convoy.ErrNotFound)
	requireUnchanged(t, s, before)

	// The lease survived every refusal.
	e.record(transition(c, t0, convoy.DeliverySuccess, 200))
}

func testRecordFencing(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	d := e.one(t0)
	idle := e.one(t0.Add(time.Hour))
	stale := e.claimOne(t0)
	fresh := e.claim(convoy.ClaimRequest{Now: t0.Add(2 * lease), Owner: "worker-2"})
	require.Len(t, fresh, 1)
	require.Equal(t, d.ID, fresh[0].ID)
	before := snapshot(t, s)

	_, err := s.Record(e.ctx, transition(stale, t0.Add(2*lease), convoy.DeliverySuccess, 200))
	require.ErrorIs(t, err, convoy.ErrLeaseLost, "the lease expired and another worker claimed")
	requireUnchanged(t, s, before)
	forged := *fresh[0]
	forged.LeaseID = convoy.NewID()
	_, err = s.Record(e.ctx, transition(&forged, t0.Add(2*lease), convoy.DeliverySuccess, 200))
	require.ErrorIs(t, err, convoy.ErrLeaseLost, "a lease never handed out")
	requireUnchanged(t, s, before)
	for _, leaseID := range []string{"", convoy.NewID()} {
		notClaimed := *idle
		notClaimed.LeaseID = leaseID
		_, err = s.Record(e.ctx, transition(&notClaimed, t0, convoy.DeliverySuccess, 200))
		require.ErrorIs(t, err, convoy.ErrLeaseLost, "Record on a Scheduled delivery")
		requireUnchanged(t, s, before)
	}

	tr := transition(fresh[0], t0.Add(2*lease), convoy.DeliveryFailure, 500)
	e.record(tr)
	done := snapshot(t, s)
	_, err = s.Record(e.ctx, transition(fresh[0], t0.Add(2*lease), convoy.DeliverySuccess, 200))
	require.ErrorIs(t, err, convoy.ErrLeaseLost, "Record twice with one lease")
	requireUnchanged(t, s, done)
	requireEqual(t, []*convoy.Attempt{tr.Attempt}, e.attempts(d.ID))
}

func testRecordExpiredNotReclaimed(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	d := e.one(t0)
	c := e.claimOne(t0)
	later := t0.Add(10 * lease)
	e.record(transition(c, later, convoy.DeliverySuccess, 200))
	require.Equal(t, convoy.DeliverySuccess, e.get(d.ID).Status)
}

func testRecordConcurrent(t *testing.T, s convoy.Store) {
	const workers = 32
	e := setup(t, s)
	d := e.one(t0)
	c := e.claimOne(t0)
	errs := make(chan error, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := transition(c, t0, convoy.DeliveryRetry, 500)
			tr.NextAttemptAt = t0.Add(time.Hour)
			<-start
			_, err := s.Record(e.ctx, tr)
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		if err == nil {
			won++
			continue
		}
		require.ErrorIs(t, err, convoy.ErrLeaseLost)
	}
	require.Equal(t, 1, won, "exactly one Record of a lease succeeds")
	require.Len(t, e.attempts(d.ID), 1)
	got := e.get(d.ID)
	require.Equal(t, 1, got.Attempts)
	require.Equal(t, 1, e.endpoint(e.ep.ID).Health.ConsecutiveFailures)
}

func testRelease(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	d := e.one(t0.Add(-time.Minute))
	c := e.claimOne(t0)
	require.NoError(t, s.Release(e.ctx, c.ID, c.LeaseID))
	got := e.get(d.ID)
	require.Equal(t, convoy.DeliveryScheduled, got.Status)
	require.True(t, got.NextAttemptAt.Equal(d.NextAttemptAt), "NextAttemptAt unchanged")
	require.Equal(t, 0, got.Claims)
	requireLeaseCleared(t, got)
	at, ok := e.nextDue()
	require.True(t, ok)
	require.True(t, at.Equal(d.NextAttemptAt))

	// Claimable again at once; with attempts it goes back to Retry.
	c = e.claimOne(t0)
	tr := transition(c, t0, convoy.DeliveryRetry, 500)
	tr.NextAttemptAt = t0.Add(time.Hour)
	e.record(tr)
	first := e.claimOne(tr.NextAttemptAt)
	c = e.claimOne(tr.NextAttemptAt.Add(lease)) // Claims 2: the lease expired
	require.NotEqual(t, first.LeaseID, c.LeaseID)
	require.NoError(t, s.Release(e.ctx, c.ID, c.LeaseID))
	got = e.get(d.ID)
	require.Equal(t, convoy.DeliveryRetry, got.Status)
	require.True(t, got.NextAttemptAt.Equal(tr.NextAttemptAt), "NextAttemptAt unchanged")
	require.Equal(t, 1, got.Claims)
	require.Equal(t, 1, got.Attempts)
	requireLeaseCleared(t, got)
}

func testReleaseFencing(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	d := e.one(t0)
	idle := e.one(t0.Add(time.Hour))
	stale := e.claimOne(t0)
	fresh := e.claim(convoy.ClaimRequest{Now: t0.Add(2 * lease), Owner: "worker-2"})
	require.Len(t, fresh, 1)
	before := snapshot(t, s)

	for _, c := range []struct {
		name, id, leaseID string
		want              error
	}{
		{"stale lease", d.ID, stale.LeaseID, convoy.ErrLeaseLost},
		{"unknown lease", d.ID, convoy.NewID(), convoy.ErrLeaseLost},
		{"empty lease", d.ID, "", convoy.ErrLeaseLost},
		{"not claimed", idle.ID, "", convoy.ErrLeaseLost},
		{"not claimed, some lease", idle.ID, stale.LeaseID, convoy.ErrLeaseLost},
		{"missing delivery", convoy.NewID(), stale.LeaseID, convoy.ErrNotFound},
		{"malformed delivery ID", "dlv_1", stale.LeaseID, convoy.ErrInvalidID},
	} {
		require.ErrorIs(t, s.Release(e.ctx, c.id, c.leaseID), c.want, c.name)
		requireUnchanged(t, s, before)
	}

	require.NoError(t, s.Release(e.ctx, d.ID, fresh[0].LeaseID))
	require.Equal(t, 1, e.get(d.ID).Claims)
	released := snapshot(t, s)
	require.ErrorIs(t, s.Release(e.ctx, d.ID, fresh[0].LeaseID), convoy.ErrLeaseLost, "Release twice")
	requireUnchanged(t, s, released)
}

func testNextDue(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	_, ok := e.nextDue()
	require.False(t, ok, "empty store")
	e.sendStatus(t0, convoy.DeliveryDiscarded, e.ep)
	_, ok = e.nextDue()
	require.False(t, ok, "only Discarded")

	requireNext := func(want time.Time) {
		t.Helper()
		at, ok := e.nextDue()
		require.True(t, ok)
		require.True(t, at.Equal(want), "NextDue %v, want %v", at, want)
	}
	d1 := e.one(t0.Add(10 * time.Minute))
	d2 := e.one(t0.Add(5 * time.Minute))
	requireNext(d2.NextAttemptAt)
	c := e.claimOne(t0.Add(5 * time.Minute))
	require.Equal(t, d2.ID, c.ID)
	requireNext(c.LeaseExpiresAt)
	e.record(transition(c, t0.Add(5*time.Minute), convoy.DeliverySuccess, 200))
	requireNext(d1.NextAttemptAt)
	c = e.claimOne(t0.Add(10 * time.Minute))
	requireNext(c.LeaseExpiresAt)
	tr := transition(c, t0.Add(10*time.Minute), convoy.DeliveryRetry, 500)
	tr.NextAttemptAt = t0.Add(3 * time.Hour)
	e.record(tr)
	requireNext(tr.NextAttemptAt)
	c = e.claimOne(tr.NextAttemptAt)
	e.record(transition(c, tr.NextAttemptAt, convoy.DeliveryFailure, 500))
	_, ok = e.nextDue()
	require.False(t, ok, "everything final")
}

// testClaimCaps checks ClaimRequest.Caps: a cap per endpoint that
// overrides PerEndpoint, counting InFlight, with or without PerEndpoint.
func testClaimCaps(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	a, b, c := e.ep, e.newEndpoint(e.app.ID), e.newEndpoint(e.app.ID)
	for i := range 3 {
		e.send(epoch.Add(time.Duration(i)*time.Second), a, b, c)
	}
	now := epoch.Add(time.Minute)
	perEndpoint := func(ds []*convoy.Delivery) map[string]int {
		n := map[string]int{}
		for _, d := range ds {
			n[d.EndpointID]++
		}
		return n
	}
	got := e.claim(convoy.ClaimRequest{Now: now, PerEndpoint: 2, Caps: map[string]int{a.ID: 0, b.ID: 3}, InFlight: map[string]int{b.ID: 2}})
	require.Equal(t, map[string]int{b.ID: 1, c.ID: 2}, perEndpoint(got), "a capped to none, b to 3 with 2 in flight, c at PerEndpoint")

	// Without PerEndpoint only the listed endpoints are bounded.
	got = e.claim(convoy.ClaimRequest{Now: now, Caps: map[string]int{a.ID: 1}})
	require.Equal(t, map[string]int{a.ID: 1, b.ID: 2, c.ID: 1}, perEndpoint(got))

	// InsertEventClaim honours them too.
	if ci, ok := s.(convoy.ClaimingInserter); ok {
		e2 := setup(t, s)
		later := now.Add(2 * lease) // the leases above have expired: drain them first
		for _, d := range e.claim(convoy.ClaimRequest{Now: later}) {
			e.record(convoy.Transition{DeliveryID: d.ID, LeaseID: d.LeaseID, Now: later, Status: convoy.DeliveryDiscarded})
		}
		x, y := e2.ep, e2.newEndpoint(e2.app.ID)
		ev := NewEvent(e2.app.ID, later)
		ds := []*convoy.Delivery{NewDelivery(ev, x.ID), NewDelivery(ev, y.ID)}
		_, leased := e2.insertClaim(ci, convoy.ClaimRequest{Now: later, Limit: 10, Caps: map[string]int{x.ID: 0}}, ev, ds...)
		require.Equal(t, []string{ds[1].ID}, ids(leased))
	}
}
