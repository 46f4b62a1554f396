package postgres_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/postgres"
)

// TestGroupCommitFencesEachCall: in one batch, a call whose lease is lost
// fails alone and the others commit.
func TestGroupCommitFencesEachCall(t *testing.T) {
	s := newStore(t, nil)
	f := setup(t, s, 1)
	ds := f.send(t0, 3)
	claimed := f.claim(t0, 3)
	require.Len(t, claimed, 3)
	byID := map[string]*convoy.Delivery{}
	for _, c := range claimed {
		byID[c.ID] = c
	}
	c1, c2, c3 := byID[ds[0].ID], byID[ds[1].ID], byID[ds[2].ID]
	stale := succeeded(c2, t0)
	stale.LeaseID = convoy.NewID()

	out := postgres.CommitTogether(f.ctx, s, []postgres.TestOp{
		{T: succeeded(c1, t0)},
		{T: stale},
		{Release: true, T: convoy.Transition{DeliveryID: c3.ID, LeaseID: c3.LeaseID}},
		{T: succeeded(c1, t0)}, // the lease ended with the first call
		{T: succeeded(&convoy.Delivery{ID: convoy.NewID(), LeaseID: c1.LeaseID}, t0)},
	})
	require.NoError(t, out[0].Err)
	require.ErrorIs(t, out[1].Err, convoy.ErrLeaseLost)
	require.NoError(t, out[2].Err)
	require.ErrorIs(t, out[3].Err, convoy.ErrLeaseLost)
	require.ErrorIs(t, out[4].Err, convoy.ErrNotFound)

	require.Equal(t, convoy.DeliverySuccess, f.get(c1.ID).Status)
	require.Equal(t, 1, f.get(c1.ID).Attempts)
	got := f.get(c2.ID)
	require.Equal(t, convoy.DeliveryProcessing, got.Status, "the stale call changed nothing")
	require.Equal(t, c2.LeaseID, got.LeaseID)
	require.Equal(t, convoy.DeliveryScheduled, f.get(c3.ID).Status)
	require.Equal(t, 0, f.get(c3.ID).Claims)

	st, err := s.Stats(f.ctx, t0)
	require.NoError(t, err)
	require.Equal(t, map[convoy.DeliveryStatus]int{
		convoy.DeliverySuccess: 1, convoy.DeliveryProcessing: 1, convoy.DeliveryScheduled: 1,
	}, st.Deliveries)
}

// TestGroupCommitFoldsHealth: the calls of one batch to one endpoint see
// its health with every attempt before theirs, and the endpoint ends with
// all of them.
func TestGroupCommitFoldsHealth(t *testing.T) {
	s := newStore(t, nil)
	f := setup(t, s, 1)
	f.send(t0, 5)
	claimed := f.claim(t0, 5)
	require.Len(t, claimed, 5)
	var seen []int
	ops := make([]postgres.TestOp, len(claimed))
	for i, c := range claimed {
		tr := failed(c, t0.Add(time.Duration(i)*time.Second))
		tr.EndpointStatus = func(ep convoy.Endpoint) convoy.EndpointStatus {
			seen = append(seen, ep.Health.ConsecutiveFailures)
			if ep.Health.ConsecutiveFailures >= 4 {
				return convoy.EndpointInactive
			}
			return ep.Status
		}
		ops[i] = postgres.TestOp{T: tr}
	}
	out := postgres.CommitTogether(f.ctx, s, ops)
	require.Equal(t, []int{1, 2, 3, 4, 5}, seen)
	want := []convoy.EndpointStatus{convoy.EndpointActive, convoy.EndpointActive, convoy.EndpointActive, convoy.EndpointActive, convoy.EndpointInactive}
	for i, o := range out {
		require.NoError(t, o.Err)
		require.Equal(t, want[i], o.Res.EndpointBefore, "call %d", i)
	}
	require.Equal(t, convoy.EndpointInactive, out[3].Res.EndpointAfter)
	ep := f.endpoint(f.eps[0].ID)
	require.Equal(t, convoy.EndpointInactive, ep.Status)
	require.Equal(t, 5, ep.Health.ConsecutiveFailures)
	require.True(t, ep.Health.LastAttemptAt.Equal(t0.Add(4*time.Second)))
	st, err := s.Stats(f.ctx, t0)
	require.NoError(t, err)
	require.Equal(t, map[convoy.EndpointStatus]int{convoy.EndpointInactive: 1}, st.Endpoints)
}

// TestGroupCommitCallbackPanic: a panicking EndpointStatus fails its own
// call, which panics in the caller, and not the others of its batch.
func TestGroupCommitCallbackPanic(t *testing.T) {
	s := newStore(t, nil)
	f := setup(t, s, 1)
	f.send(t0, 3)
	claimed := f.claim(t0, 3)
	boom := succeeded(claimed[0], t0)
	boom.EndpointStatus = func(convoy.Endpoint) convoy.EndpointStatus { panic("boom") }
	out := postgres.CommitTogether(f.ctx, s, []postgres.TestOp{{T: boom}, {T: succeeded(claimed[1], t0)}})
	require.Equal(t, "boom", out[0].Panicked)
	require.NoError(t, out[1].Err)
	require.Equal(t, convoy.DeliveryProcessing, f.get(claimed[0].ID).Status)
	require.Equal(t, convoy.DeliverySuccess, f.get(claimed[1].ID).Status)

	boom = succeeded(claimed[2], t0)
	boom.EndpointStatus = func(convoy.Endpoint) convoy.EndpointStatus { panic("boom") }
	require.PanicsWithValue(t, "boom", func() { _, _ = s.Record(f.ctx, boom) })
	require.Equal(t, convoy.DeliveryProcessing, f.get(claimed[2].ID).Status)
}

// TestRecordConcurrentCallsToOneEndpoint: concurrent Records of distinct
// deliveries to one endpoint all count in its health.
func TestRecordConcurrentCallsToOneEndpoint(t *testing.T) {
	for _, batch := range []int{0, 1} {
		t.Run(map[int]string{0: "batched", 1: "unbatched"}[batch], func(t *testing.T) {
			const n = 64
			s := newStore(t, &postgres.Options{RecordBatch: batch})
			f := setup(t, s, 1)
			f.send(t0, n)
			claimed := f.claim(t0, n)
			require.Len(t, claimed, n)
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for _, c := range claimed {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := s.Record(f.ctx, failed(c, t0))
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			require.Equal(t, n, f.endpoint(f.eps[0].ID).Health.ConsecutiveFailures)
		})
	}
}

// TestCloseCommitsQueuedCalls: a Record racing with Close either commits
// and returns nil, or fails with ErrClosed and changes nothing.
func TestCloseCommitsQueuedCalls(t *testing.T) {
	const n = 40
	s := newStore(t, nil)
	f := setup(t, s, 2)
	f.send(t0, n)
	claimed := f.claim(t0, n)
	require.Len(t, claimed, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range claimed {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = s.Record(f.ctx, succeeded(c, t0))
		}()
	}
	close(start)
	require.NoError(t, s.Close())
	wg.Wait()

	other := newStore(t, &postgres.Options{Schema: s.Schema()})
	for i, c := range claimed {
		d, err := other.GetDelivery(f.ctx, c.ID)
		require.NoError(t, err)
		if errs[i] == nil {
			require.Equal(t, convoy.DeliverySuccess, d.Status)
			continue
		}
		require.ErrorIs(t, errs[i], convoy.ErrClosed)
		require.Equal(t, convoy.DeliveryProcessing, d.Status)
	}
}
