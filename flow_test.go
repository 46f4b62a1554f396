package convoy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil"
)

// sendN sends n events to the bundle's app and returns their deliveries
// to the endpoint ep.
func sendN(t *testing.T, b *bundle, n int, epID string) []string {
	t.Helper()
	var ids []string
	for range n {
		res, err := b.d.Send(context.Background(), b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
		for _, dl := range res.Deliveries {
			if dl.EndpointID == epID {
				ids = append(ids, dl.ID)
			}
		}
	}
	return ids
}

// TestRateLimitSpacesAttempts: a limited endpoint gets its burst at once
// and then one request per token; its other deliveries wait unclaimed
// (no worker, no lease), and an endpoint without a limit is not held up.
func TestRateLimitSpacesAttempts(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			b := setup(t, sk.open(t), nil)
			limited := testutil.NewReceiver(t, nil)
			free := testutil.NewReceiver(t, nil)
			ep := b.endpoint(t, limited.URL, func(e *convoy.Endpoint) {
				e.RateLimit = &convoy.RateLimit{PerSecond: 2, Burst: 2}
			})
			b.endpoint(t, free.URL, nil)
			ids := sendN(t, b, 6, ep.ID) // each event goes to both endpoints

			require.Eventually(t, func() bool { return free.Count() == 6 }, 10*time.Second, time.Millisecond,
				"the unlimited endpoint gets every event at once")
			require.Eventually(t, func() bool { return limited.Count() == 2 }, 10*time.Second, time.Millisecond)
			waiting := func() int {
				n := 0
				for _, id := range ids {
					dl, err := b.d.GetDelivery(context.Background(), id)
					require.NoError(t, err)
					if dl.Status == convoy.DeliveryScheduled && dl.Claims == 0 { // never claimed
						n++
					}
				}
				return n
			}
			require.Eventually(t, func() bool { return waiting() == 4 }, 10*time.Second, time.Millisecond,
				"the other 4 wait in the queue, never claimed")
			require.Equal(t, 0, b.d.EndpointFlow(ep.ID).RateTokens)

			// One token every 500 ms, one request per token.
			for want := 3; want <= 6; want++ {
				b.clock.Advance(499 * time.Millisecond)
				require.Never(t, func() bool { return limited.Count() >= want }, 20*time.Millisecond, time.Millisecond)
				b.clock.Advance(time.Millisecond)
				require.Eventually(t, func() bool { return limited.Count() == want }, 10*time.Second, time.Millisecond)
			}
			for _, id := range ids {
				b.waitStatus(t, id, convoy.DeliverySuccess)
			}
		})
	}
}

// TestAdaptiveConcurrencyFindsTheReceiversCapacity: a receiver that
// serves 4 requests at once and answers 503 past that gets few 503s under
// adaptive concurrency, and the limit settles near its capacity; without
// it, 32 workers at once mostly get 503s.
func TestAdaptiveConcurrencyFindsTheReceiversCapacity(t *testing.T) {
	const capacity, events = 4, 300
	run := func(t *testing.T, adaptive *convoy.AdaptiveConcurrency) (overloads int64, limit int) {
		var running, rejected atomic.Int64
		rc := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			defer running.Add(-1)
			if running.Add(1) > capacity {
				rejected.Add(1)
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			time.Sleep(2 * time.Millisecond) // the receiver's service time
		})
		b := setup(t, memoryStore(), func(c *convoy.Config) {
			c.Workers, c.PerEndpoint = 32, 32
			c.Adaptive = adaptive
			c.Retry = convoy.LinearRetry(time.Second, 1000)
		})
		ep := b.endpoint(t, rc.URL, nil)
		ids := sendN(t, b, events, ep.ID)
		// Retries are due a fake second later: move the clock until every
		// delivery went through.
		require.Eventually(t, func() bool {
			b.clock.Advance(time.Second)
			st, err := b.d.Stats(context.Background())
			require.NoError(t, err)
			return st.Deliveries[convoy.DeliverySuccess] == events
		}, 30*time.Second, 5*time.Millisecond)
		for _, id := range ids[:3] {
			b.waitStatus(t, id, convoy.DeliverySuccess)
		}
		return rejected.Load(), b.d.EndpointFlow(ep.ID).Limit
	}
	fixed, _ := run(t, nil)
	adapted, limit := run(t, &convoy.AdaptiveConcurrency{Initial: 1})
	t.Logf("503s: fixed concurrency %d, adaptive %d (limit at the end %d)", fixed, adapted, limit)
	require.Less(t, adapted, int64(events/5), "most requests fit the receiver")
	require.Less(t, adapted*3, fixed, "adaptive concurrency spares the receiver most of the overload")
	require.GreaterOrEqual(t, limit, 1)
	require.LessOrEqual(t, limit, capacity+2, "the limit settles near the capacity")
}

// TestCircuitBreakerOpensProbesAndCloses follows a breaker through its
// states with a fake clock: consistent failures open it, nothing is
// attempted while it is open (the deliveries keep their retry budget),
// one probe goes through after the cool-down, a failed probe opens it
// again, a successful one closes it and the backlog drains.
func TestCircuitBreakerOpensProbesAndCloses(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	rc := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	b := setup(t, memoryStore(), func(c *convoy.Config) {
		c.Workers = 1 // one attempt at a time: the count below is exact
		c.Retry = convoy.LinearRetry(time.Second, 100)
		c.Breaker = &convoy.CircuitBreaker{FailureRate: 0.5, MinAttempts: 4, Window: time.Minute, CoolDown: 30 * time.Second}
	})
	ep := b.endpoint(t, rc.URL, nil)
	ids := sendN(t, b, 10, ep.ID)
	flowOf := func() convoy.EndpointFlow { return b.d.EndpointFlow(ep.ID) }

	require.Eventually(t, func() bool { return flowOf().Circuit == convoy.CircuitOpen }, 10*time.Second, time.Millisecond)
	require.Equal(t, 4, rc.Count(), "the circuit opened after MinAttempts failures")
	got, err := b.d.GetEndpoint(context.Background(), ep.ID)
	require.NoError(t, err)
	require.Equal(t, convoy.CircuitOpen, got.Health.Circuit)
	require.Equal(t, convoy.EndpointActive, got.Status, "the breaker does not kill the endpoint")
	st, err := b.d.Stats(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, st.OpenCircuits)

	// Retries come due while it is open: nothing is attempted.
	b.clock.Advance(10 * time.Second)
	require.Never(t, func() bool { return rc.Count() > 4 }, 50*time.Millisecond, time.Millisecond)
	attempted := 0
	for _, id := range ids {
		dl, err := b.d.GetDelivery(context.Background(), id)
		require.NoError(t, err)
		attempted += dl.Attempts
		require.NotEqual(t, convoy.DeliveryProcessing, dl.Status, "no lease is held while open")
	}
	require.Equal(t, 4, attempted, "no retry budget spent while open")

	// Cool-down over: one probe, which fails, and it opens again.
	b.clock.Advance(20 * time.Second)
	require.Eventually(t, func() bool { return rc.Count() == 5 }, 10*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return flowOf().Circuit == convoy.CircuitOpen }, 10*time.Second, time.Millisecond)
	require.Never(t, func() bool { return rc.Count() > 5 }, 50*time.Millisecond, time.Millisecond)

	// The receiver recovers; the next probe closes the circuit and the
	// backlog drains.
	failing.Store(false)
	b.clock.Advance(30 * time.Second)
	for _, id := range ids {
		b.waitStatus(t, id, convoy.DeliverySuccess)
	}
	require.Equal(t, convoy.CircuitClosed, flowOf().Circuit)
	require.Equal(t, 15, rc.Count(), "5 failures, then each of the 10 once")
}

func TestFlowControlConfigIsChecked(t *testing.T) {
	for _, cfg := range []convoy.Config{
		{Adaptive: &convoy.AdaptiveConcurrency{Decrease: 1}},
		{Adaptive: &convoy.AdaptiveConcurrency{Initial: -1}},
		{Breaker: &convoy.CircuitBreaker{FailureRate: 1.5}},
		{Breaker: &convoy.CircuitBreaker{CoolDown: -time.Second}},
	} {
		cfg.Store = memoryStore()
		_, err := convoy.New(cfg)
		require.ErrorIs(t, err, convoy.ErrInvalidConfig, "%+v %+v", cfg.Adaptive, cfg.Breaker)
	}
}
