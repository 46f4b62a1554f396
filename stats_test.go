package convoy_test

import (
	"context"
	"encoding/json"
	"expvar"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil"
)

// TestStatsMatchRecount: after a mixed workload (successes, retries,
// failures, a dead endpoint, discarded events), Stats agrees with a recount
// of the store, on both stores.
func TestStatsMatchRecount(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			b := setup(t, sk.open(t), func(c *convoy.Config) { c.Retry = convoy.LinearRetry(time.Minute, 1) })
			ctx := context.Background()
			ok := testutil.NewReceiver(t, nil)
			bad := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
			b.endpoint(t, ok.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"ok"} })
			badEP := b.endpoint(t, bad.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"bad"} })
			var okIDs, badIDs []string
			for range 5 {
				okIDs = append(okIDs, b.deliveries(t, b.send(t, "ok", `{}`).ID)[0].ID)
				badIDs = append(badIDs, b.deliveries(t, b.send(t, "bad", `{}`).ID)[0].ID)
			}
			for _, id := range okIDs {
				b.waitStatus(t, id, convoy.DeliverySuccess)
			}
			for _, id := range badIDs {
				b.waitStatus(t, id, convoy.DeliveryRetry)
			}
			st, err := b.d.Stats(ctx)
			require.NoError(t, err)
			require.Equal(t, map[convoy.DeliveryStatus]int{convoy.DeliverySuccess: 5, convoy.DeliveryRetry: 5}, st.Deliveries)
			require.Equal(t, 5, st.RetriesScheduled)
			require.Equal(t, 0, st.DueNow)
			require.Equal(t, int64(10), st.Attempts)
			require.Equal(t, int64(5), st.Failures)

			b.clock.Advance(time.Minute + time.Second)
			// The first delivery to exhaust its retries kills the endpoint;
			// those that come due after that are Discarded, not sent.
			for _, id := range badIDs {
				require.Eventually(t, func() bool {
					dl, err := b.d.GetDelivery(ctx, id)
					require.NoError(t, err)
					return dl.Status.Final()
				}, 10*time.Second, 5*time.Millisecond)
			}
			require.Eventually(t, func() bool {
				e, err := b.d.GetEndpoint(ctx, badEP.ID)
				require.NoError(t, err)
				return e.Status == convoy.EndpointInactive
			}, 10*time.Second, 5*time.Millisecond)
			for range 3 {
				b.send(t, "bad", `{}`) // Discarded at once
			}
			st, err = b.d.Stats(ctx)
			require.NoError(t, err)
			ds, eps := recount(t, b.d)
			require.Equal(t, ds, st.Deliveries)
			require.Equal(t, eps, st.Endpoints)
			failed := st.Deliveries[convoy.DeliveryFailure]
			require.GreaterOrEqual(t, failed, 1)
			require.Equal(t, 5, st.Deliveries[convoy.DeliverySuccess])
			require.Equal(t, 5+3, failed+st.Deliveries[convoy.DeliveryDiscarded])
			require.Equal(t, map[convoy.EndpointStatus]int{convoy.EndpointActive: 1, convoy.EndpointInactive: 1}, st.Endpoints)
			require.Equal(t, int64(10+failed), st.Attempts)
			require.Equal(t, int64(5+failed), st.Failures)
			require.Zero(t, st.InFlight)

			// Re-sending makes them due now.
			b.clock.Advance(time.Second)
			require.NoError(t, b.d.Close(ctx))
			_, err = b.d.SetEndpointStatus(ctx, badEP.ID, convoy.EndpointActive)
			require.NoError(t, err)
			n, err := b.d.ResendEndpoint(ctx, badEP.ID, nil)
			require.NoError(t, err)
			require.Equal(t, 8-failed, n)
			b.clock.Advance(time.Minute)
			st, err = b.d.Stats(ctx)
			require.NoError(t, err)
			require.Equal(t, 8-failed, st.DueNow)
			require.Equal(t, time.Minute, st.OldestDueAge)
		})
	}
}

func recount(t *testing.T, d *convoy.Dispatcher) (map[convoy.DeliveryStatus]int, map[convoy.EndpointStatus]int) {
	t.Helper()
	ctx := context.Background()
	ds := map[convoy.DeliveryStatus]int{}
	eps := map[convoy.EndpointStatus]int{}
	apps, _, err := d.ListApps(ctx, convoy.Page{Limit: convoy.MaxPageSize})
	require.NoError(t, err)
	for _, a := range apps {
		list, _, err := d.ListEndpoints(ctx, a.ID, convoy.Page{Limit: convoy.MaxPageSize})
		require.NoError(t, err)
		for _, ep := range list {
			eps[ep.Status]++
			dl, _, err := d.ListDeliveries(ctx, convoy.DeliveryQuery{EndpointID: ep.ID}, convoy.Page{Limit: convoy.MaxPageSize})
			require.NoError(t, err)
			for _, x := range dl {
				ds[x.Status]++
			}
		}
	}
	return ds, eps
}

func TestPublishExpvar(t *testing.T) {
	b := setup(t, memoryStore(), nil)
	rc := testutil.NewReceiver(t, nil)
	b.endpoint(t, rc.URL, nil)
	b.waitStatus(t, b.deliveries(t, b.send(t, "x", `{}`).ID)[0].ID, convoy.DeliverySuccess)
	name := "convoy_test_" + convoy.NewID()
	require.NoError(t, b.d.PublishExpvar(name))
	require.ErrorIs(t, b.d.PublishExpvar(name), convoy.ErrInvalid, "a name is published once")
	var got convoy.Stats
	require.NoError(t, json.Unmarshal([]byte(expvar.Get(name).String()), &got))
	require.Equal(t, 1, got.Deliveries[convoy.DeliverySuccess])
	require.Equal(t, 1, got.Endpoints[convoy.EndpointActive])
	require.Equal(t, int64(1), got.Attempts)
}

// TestRecentActivityPerEndpoint: Stats reports the recent window per
// endpoint, failing endpoints first, and forgets what left the window.
func TestRecentActivityPerEndpoint(t *testing.T) {
	ok := testutil.NewReceiver(t, nil)
	bad := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(convoy.HeaderAttempt) == "1" {
			w.WriteHeader(500)
		}
	})
	b := setup(t, memoryStore(), func(c *convoy.Config) {
		c.StatsWindow = 10 * time.Minute
		c.Retry = convoy.LinearRetry(time.Second, 1)
	})
	ctx := context.Background()
	good := b.endpoint(t, ok.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"good"} })
	flaky := b.endpoint(t, bad.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"flaky"} })
	var ids []string
	for range 3 {
		ids = append(ids, b.deliveries(t, b.send(t, "good", `{}`).ID)[0].ID)
		ids = append(ids, b.deliveries(t, b.send(t, "flaky", `{}`).ID)[0].ID)
	}
	require.Eventually(t, func() bool {
		final, retry := true, false
		for _, id := range ids {
			dl, err := b.d.GetDelivery(ctx, id)
			require.NoError(t, err)
			final = final && dl.Status.Final()
			retry = retry || dl.Status == convoy.DeliveryRetry
		}
		if retry {
			b.clock.Advance(time.Second) // retries of the flaky ones come due
		}
		return final
	}, 10*time.Second, 10*time.Millisecond)

	s, err := b.d.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, 10*time.Minute, s.Window)
	require.EqualValues(t, 9, s.RecentAttempts, "3 good, 3 flaky failed once and then succeeded")
	require.EqualValues(t, 3, s.RecentFailures)
	require.Len(t, s.Recent, 2)
	require.Equal(t, flaky.ID, s.Recent[0].EndpointID, "the failing endpoint comes first")
	require.EqualValues(t, 6, s.Recent[0].Attempts)
	require.EqualValues(t, 3, s.Recent[0].Failures)
	require.InDelta(t, 0.5, s.Recent[0].SuccessRate, 1e-9)
	require.Equal(t, convoy.EndpointActivity{EndpointID: good.ID, Attempts: 3, SuccessRate: 1}, b.d.EndpointActivity(good.ID))

	b.clock.Advance(11 * time.Minute) // all of it leaves the window
	s, err = b.d.Stats(ctx)
	require.NoError(t, err)
	require.Zero(t, s.RecentAttempts)
	require.Empty(t, s.Recent)
	require.Equal(t, convoy.EndpointActivity{EndpointID: good.ID}, b.d.EndpointActivity(good.ID))
}
