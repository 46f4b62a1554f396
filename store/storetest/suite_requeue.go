package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

// requireRequeued checks that d was re-sent at now, keeping its attempts.
func (e *env) requireRequeued(d *convoy.Delivery, now time.Time, attempts int) {
	e.t.Helper()
	got := e.get(d.ID)
	require.Equal(e.t, convoy.DeliveryScheduled, got.Status)
	require.True(e.t, got.NextAttemptAt.Equal(now), "NextAttemptAt %v, want %v", got.NextAttemptAt, now)
	require.Zero(e.t, got.RoundAttempts)
	require.Zero(e.t, got.Claims)
	require.Equal(e.t, attempts, got.Attempts, "Attempts are kept")
	requireLeaseCleared(e.t, got)
}

func testRequeueOne(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	failed := e.one(t0)
	_, ds := e.sendStatus(t0, convoy.DeliveryDiscarded, e.ep)
	discarded := ds[0]
	scheduled := e.one(t0.Add(time.Hour))
	succeeded := e.one(t0)
	retrying := e.one(t0)
	processing := e.one(t0)
	abandoned := e.one(t0)
	e.finish(failed, t0, convoy.DeliveryFailure, 500)
	e.finish(succeeded, t0, convoy.DeliverySuccess, 200)
	e.finish(retrying, t0, convoy.DeliveryRetry, 500)
	// Claimed three times without an attempt, then given up.
	for i := range 3 {
		e.take(abandoned.ID, t0.Add(time.Duration(i)*lease))
	}
	c := e.take(abandoned.ID, t0.Add(3*lease))
	e.record(convoy.Transition{DeliveryID: c.ID, LeaseID: c.LeaseID, Now: t0.Add(3 * lease), Status: convoy.DeliveryFailure})
	e.take(processing.ID, t0.Add(3*lease))
	before := snapshot(t, s)

	for _, d := range []*convoy.Delivery{scheduled, succeeded, retrying, processing} {
		_, err := s.Requeue(e.ctx, convoy.RequeueRequest{Now: t0, DeliveryID: d.ID})
		require.ErrorIs(t, err, convoy.ErrInvalidStatus, "re-send a %s delivery", e.get(d.ID).Status)
		requireUnchanged(t, s, before)
	}
	_, err := s.Requeue(e.ctx, convoy.RequeueRequest{Now: t0, DeliveryID: convoy.NewID()})
	e.requireNotFound(err)
	_, err = s.Requeue(e.ctx, convoy.RequeueRequest{Now: t0, DeliveryID: "dlv_1"})
	require.ErrorIs(t, err, convoy.ErrInvalidID)
	requireUnchanged(t, s, before)

	now := t0.Add(24 * time.Hour)
	for _, d := range []*convoy.Delivery{failed, discarded, abandoned} {
		n, err := s.Requeue(e.ctx, convoy.RequeueRequest{Now: now, DeliveryID: d.ID})
		require.NoError(t, err)
		require.Equal(t, 1, n)
	}
	e.requireRequeued(failed, now, 1)
	e.requireRequeued(discarded, now, 0)
	e.requireRequeued(abandoned, now, 0)

	requeued := []string{failed.ID, discarded.ID, abandoned.ID}
	for _, d := range e.claim(convoy.ClaimRequest{Now: now.Add(-time.Second)}) {
		require.NotContains(t, requeued, d.ID, "requeued work is due at Now, not before")
	}
	got := e.claim(convoy.ClaimRequest{Now: now})
	require.ElementsMatch(t, requeued, ids(got))
	for _, d := range got {
		if d.ID == failed.ID {
			require.Equal(t, 1, d.Claims)
			require.Equal(t, 1, d.Attempts)
		}
	}
}

func testRequeueEndpoint(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ep2 := e.newEndpoint(e.app.ID)
	_, disc0 := e.sendStatus(t0, convoy.DeliveryDiscarded, e.ep)
	_, disc1 := e.sendStatus(t0, convoy.DeliveryDiscarded, e.ep)
	disc := []*convoy.Delivery{disc0[0], disc1[0]}
	_, theirs := e.sendStatus(t0, convoy.DeliveryDiscarded, ep2)
	failed := e.one(t0)
	done := e.one(t0)
	e.finish(failed, t0, convoy.DeliveryFailure, 500)
	e.finish(done, t0, convoy.DeliverySuccess, 200)
	pending := e.one(t0.Add(time.Hour))
	before := snapshot(t, s)

	for _, r := range []struct {
		name string
		req  convoy.RequeueRequest
		want error
	}{
		{"Success", convoy.RequeueRequest{EndpointID: e.ep.ID, Statuses: []convoy.DeliveryStatus{convoy.DeliverySuccess}}, convoy.ErrInvalidStatus},
		{"Scheduled", convoy.RequeueRequest{EndpointID: e.ep.ID, Statuses: []convoy.DeliveryStatus{convoy.DeliveryDiscarded, convoy.DeliveryScheduled}}, convoy.ErrInvalidStatus},
		{"unknown status", convoy.RequeueRequest{EndpointID: e.ep.ID, Statuses: []convoy.DeliveryStatus{"Lost"}}, convoy.ErrInvalidStatus},
		{"missing endpoint", convoy.RequeueRequest{EndpointID: convoy.NewID()}, convoy.ErrNotFound},
		{"malformed endpoint ID", convoy.RequeueRequest{EndpointID: "ep_1"}, convoy.ErrInvalidID},
		{"nothing selected", convoy.RequeueRequest{}, convoy.ErrInvalid},
	} {
		r.req.Now = t0
		_, err := s.Requeue(e.ctx, r.req)
		require.ErrorIs(t, err, r.want, r.name)
		requireUnchanged(t, s, before)
	}

	now := t0.Add(time.Minute)
	n, err := s.Requeue(e.ctx, convoy.RequeueRequest{Now: now, EndpointID: e.ep.ID})
	require.NoError(t, err)
	require.Equal(t, 2, n, "Discarded only by default")
	for _, d := range disc {
		e.requireRequeued(d, now, 0)
	}
	require.Equal(t, convoy.DeliveryFailure, e.get(failed.ID).Status)
	require.Equal(t, convoy.DeliveryDiscarded, e.get(theirs[0].ID).Status, "another endpoint's deliveries stay")
	require.Equal(t, convoy.DeliverySuccess, e.get(done.ID).Status)
	requireEqual(t, pending, e.get(pending.ID))

	n, err = s.Requeue(e.ctx, convoy.RequeueRequest{Now: now, EndpointID: e.ep.ID, Statuses: []convoy.DeliveryStatus{convoy.DeliveryFailure, convoy.DeliveryDiscarded}})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	e.requireRequeued(failed, now, 1)
	n, err = s.Requeue(e.ctx, convoy.RequeueRequest{Now: now, EndpointID: e.ep.ID})
	require.NoError(t, err)
	require.Zero(t, n)

	got := e.claim(convoy.ClaimRequest{Now: now})
	require.ElementsMatch(t, []string{disc[0].ID, disc[1].ID, failed.ID}, ids(got))
}

func testRequeueCreatedRange(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	var disc []*convoy.Delivery
	for _, h := range []int{-3, -2, -1} {
		_, ds := e.sendStatus(t0.Add(time.Duration(h)*time.Hour), convoy.DeliveryDiscarded, e.ep)
		disc = append(disc, ds[0])
	}
	requeue := func(from, to time.Time) int {
		t.Helper()
		n, err := s.Requeue(e.ctx, convoy.RequeueRequest{Now: t0, EndpointID: e.ep.ID, CreatedFrom: from, CreatedTo: to})
		require.NoError(t, err)
		return n
	}
	require.Equal(t, 1, requeue(disc[1].CreatedAt, disc[2].CreatedAt), "From ≤ CreatedAt < To")
	require.Equal(t, convoy.DeliveryScheduled, e.get(disc[1].ID).Status)
	require.Equal(t, convoy.DeliveryDiscarded, e.get(disc[0].ID).Status)
	require.Equal(t, convoy.DeliveryDiscarded, e.get(disc[2].ID).Status)
	require.Equal(t, 0, requeue(time.Time{}, disc[0].CreatedAt))
	require.Equal(t, 1, requeue(time.Time{}, disc[1].CreatedAt))
	require.Equal(t, convoy.DeliveryScheduled, e.get(disc[0].ID).Status)
	require.Equal(t, 1, requeue(disc[2].CreatedAt, time.Time{}))
	require.Equal(t, convoy.DeliveryScheduled, e.get(disc[2].ID).Status)
}
