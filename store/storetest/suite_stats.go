package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

// recount counts deliveries and endpoints by status by walking the store,
// for comparison with Stats.
func (e *env) recount() (map[convoy.DeliveryStatus]int, map[convoy.EndpointStatus]int) {
	e.t.Helper()
	ds := map[convoy.DeliveryStatus]int{}
	eps := map[convoy.EndpointStatus]int{}
	apps := collect(e.t, func(c string) ([]*convoy.App, string, error) {
		return e.s.ListApps(e.ctx, convoy.Page{Cursor: c})
	})
	for _, a := range apps {
		for _, ep := range collect(e.t, func(c string) ([]*convoy.Endpoint, string, error) {
			return e.s.ListEndpoints(e.ctx, a.ID, convoy.Page{Cursor: c})
		}) {
			eps[ep.Status]++
			for _, d := range collect(e.t, func(c string) ([]*convoy.Delivery, string, error) {
				return e.s.ListDeliveries(e.ctx, convoy.DeliveryQuery{EndpointID: ep.ID}, convoy.Page{Cursor: c})
			}) {
				ds[d.Status]++
			}
		}
	}
	return ds, eps
}

func (e *env) requireStats(now time.Time, dueNow int, oldest time.Time) {
	e.t.Helper()
	st, err := e.s.Stats(e.ctx, now)
	require.NoError(e.t, err)
	ds, eps := e.recount()
	require.Equal(e.t, ds, nonZero(st.Deliveries), "deliveries by status")
	require.Equal(e.t, eps, nonZero(st.Endpoints), "endpoints by status")
	require.Equal(e.t, dueNow, st.DueNow, "due now")
	require.True(e.t, oldest.Equal(st.OldestDue), "oldest due %v, want %v", st.OldestDue, oldest)
}

// requireCounts checks the delivery and endpoint counts of Stats against
// a recount.
func (e *env) requireCounts(now time.Time) {
	e.t.Helper()
	st, err := e.s.Stats(e.ctx, now)
	require.NoError(e.t, err)
	ds, eps := e.recount()
	require.Equal(e.t, ds, nonZero(st.Deliveries), "deliveries by status")
	require.Equal(e.t, eps, nonZero(st.Endpoints), "endpoints by status")
}

// deliveryStats returns the delivery counts of Stats, without zeros.
func (e *env) deliveryStats() map[convoy.DeliveryStatus]int {
	e.t.Helper()
	st, err := e.s.Stats(e.ctx, t0)
	require.NoError(e.t, err)
	return nonZero(st.Deliveries)
}

// endpointStats returns the endpoint counts of Stats, without zeros.
func (e *env) endpointStats() map[convoy.EndpointStatus]int {
	e.t.Helper()
	st, err := e.s.Stats(e.ctx, t0)
	require.NoError(e.t, err)
	return nonZero(st.Endpoints)
}

func nonZero[K comparable](m map[K]int) map[K]int {
	out := map[K]int{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// testStats: Stats matches a recount after a mixed workload that goes
// through every transition, deletion included.
func testStats(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	t0 := epoch
	e.requireStats(t0, 0, time.Time{})

	other := e.newEndpoint(e.app.ID, func(ep *convoy.Endpoint) { ep.Status = convoy.EndpointInactive })
	var ds []*convoy.Delivery
	for i := range 8 {
		_, d := e.send(t0.Add(time.Duration(i)*time.Minute), e.ep)
		ds = append(ds, d[0])
	}
	_, disc := e.sendStatus(t0, convoy.DeliveryDiscarded, other)
	e.requireStats(t0.Add(3*time.Minute), 4, t0)

	e.finish(ds[0], t0.Add(10*time.Minute), convoy.DeliverySuccess, 200)
	e.finish(ds[1], t0.Add(10*time.Minute), convoy.DeliveryRetry, 500)   // due again at +70 min
	e.finish(ds[2], t0.Add(10*time.Minute), convoy.DeliveryFailure, 500) // endpoint stays active
	c := e.take(ds[3].ID, t0.Add(10*time.Minute))                        // Processing, lease to +11 min
	e.requireStats(t0.Add(10*time.Minute), 4, t0.Add(4*time.Minute))
	e.requireStats(t0.Add(12*time.Minute), 5, t0.Add(4*time.Minute))
	require.NoError(t, s.Release(e.ctx, c.ID, c.LeaseID))

	n, err := s.Requeue(e.ctx, convoy.RequeueRequest{Now: t0.Add(20 * time.Minute), EndpointID: other.ID})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_ = disc
	e.requireStats(t0.Add(20*time.Minute), 6, t0.Add(3*time.Minute))

	require.NoError(t, s.DeleteEndpoint(e.ctx, other.ID))
	e.requireStats(t0.Add(20*time.Minute), 5, t0.Add(3*time.Minute))
	require.NoError(t, s.DeleteApp(e.ctx, e.app.ID))
	e.requireStats(t0.Add(20*time.Minute), 0, time.Time{})
}

// testStatsDueNowIsBounded: DueNow stops counting at MaxDueCount.
func testStatsDueNowIsBounded(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ev := NewEvent(e.app.ID, epoch)
	var ds []*convoy.Delivery
	for range convoy.MaxDueCount + 5 {
		ds = append(ds, NewDelivery(ev, e.ep.ID))
	}
	e.insert(ev, ds...)
	st, err := s.Stats(e.ctx, epoch)
	require.NoError(t, err)
	require.Equal(t, convoy.MaxDueCount, st.DueNow)
	require.Equal(t, convoy.MaxDueCount+5, st.Deliveries[convoy.DeliveryScheduled])
}
