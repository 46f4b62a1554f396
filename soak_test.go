package convoy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil"
	"github.com/convoykit/convoy/internal/testutil/tally"
)

// soakRate is the share of requests endpoint i fails: half the endpoints
// never fail, the others fail 10%, 30%, 60% or always.
func soakRate(i int) float64 {
	switch {
	case i < 25:
		return 0
	case i < 40:
		return 0.1
	case i < 45:
		return 0.3
	case i < 48:
		return 0.6
	}
	return 1
}

// soakDelay is how long endpoint i takes to answer: a few are slow enough
// that Close, which gives attempts 20 ms, cuts some short.
func soakDelay(i int) time.Duration {
	switch {
	case i%10 == 9:
		return 50 * time.Millisecond
	case i%2 == 1:
		return 2 * time.Millisecond
	}
	return 0
}

// soakReceiver is one server for every endpoint, /ep/<i>. Whether a request
// fails is a hash of its delivery ID and attempt number against the
// endpoint's rate.
type soakReceiver struct {
	*httptest.Server
	received *tally.Received
	requests atomic.Int64
}

func newSoakReceiver(t *testing.T) *soakReceiver {
	rc := &soakReceiver{received: tally.NewReceived()}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *soakReceiver) serve(w http.ResponseWriter, r *http.Request) {
	rc.requests.Add(1)
	i, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/ep/"))
	if err != nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if delay := soakDelay(i); delay > 0 {
		tm := time.NewTimer(delay)
		select {
		case <-tm.C:
		case <-r.Context().Done():
			tm.Stop()
			return
		}
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(r.Header.Get(convoy.HeaderDeliveryID) + "/" + r.Header.Get(convoy.HeaderAttempt)))
	if float64(h.Sum64()%1000) < soakRate(i)*1000 {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	rc.received.Add(r.Header)
	w.WriteHeader(http.StatusNoContent)
}

// TestSoak sends 10,000 events over 50 endpoints with mixed failure rates,
// closes the dispatcher halfway with attempts in flight and starts a new
// one on the same store, and checks that the counts add up. Run it under
// -race, on both stores.
func TestSoak(t *testing.T) {
	const endpoints = 50
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			events := 10_000
			if testing.Short() {
				events /= 10
			}
			ctx := context.Background()
			st := sk.open(t)
			t.Cleanup(func() { require.NoError(t, st.Close()) })
			rc := newSoakReceiver(t)
			var recorded atomic.Int64
			cfg := convoy.Config{
				Store: st, Workers: 32, Timeout: 5 * time.Second,
				// Fast retries in real time: 4 attempts in about 30 ms.
				Retry:         convoy.LinearRetry(10*time.Millisecond, 3),
				Logger:        testutil.LoggerAt(t, slog.LevelError),
				AllowNetworks: loopback,
				OnAttempt:     func(convoy.AttemptEvent) { recorded.Add(1) },
			}
			d1, err := convoy.New(cfg)
			require.NoError(t, err)
			require.NoError(t, d1.Start(ctx))
			t.Cleanup(func() { _ = d1.Close(ctx) }) // when the test fails halfway
			app, err := d1.CreateApp(ctx, convoy.App{Name: "soak"})
			require.NoError(t, err)
			eps := make([]*convoy.Endpoint, endpoints)
			for i := range eps {
				eps[i], err = d1.AddEndpoint(ctx, app.ID, convoy.Endpoint{
					URL: fmt.Sprintf("%s/ep/%d", rc.URL, i), EventTypes: []string{"ep." + strconv.Itoa(i)},
				})
				require.NoError(t, err)
			}

			// send sends events [from, to) through d from 8 goroutines,
			// event n to endpoint n%50.
			send := func(d *convoy.Dispatcher, from, to int) {
				var wg sync.WaitGroup
				errs := make(chan error, 8)
				for g := range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for n := from + g; n < to; n += 8 {
							_, err := d.Send(ctx, app.ID, convoy.Event{
								Type: "ep." + strconv.Itoa(n%endpoints), Data: json.RawMessage(strconv.Itoa(n)),
							})
							if err != nil {
								errs <- err
								return
							}
						}
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					require.NoError(t, err)
				}
			}

			start := time.Now()
			send(d1, 0, events/2)
			// Close halfway, giving in-flight attempts 20 ms: those still
			// running are cancelled and released for the next dispatcher.
			closeCtx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			_ = d1.Close(closeCtx)
			cancel()
			closedAt := recorded.Load()
			// Close released what it did not finish: nothing stays leased
			// to wait for its lease to end.
			left, err := tally.Walk(ctx, st, convoy.DeliveryProcessing)
			require.NoError(t, err)
			require.Empty(t, left.Deliveries, "Close left deliveries leased")

			d2, err := convoy.New(cfg)
			require.NoError(t, err)
			require.NoError(t, d2.Start(ctx))
			t.Cleanup(func() { _ = d2.Close(ctx) })
			send(d2, events/2, events)
			var pending []*convoy.Delivery
			if !assert.Eventually(t, func() bool {
				f, err := tally.Walk(ctx, st, convoy.DeliveryScheduled, convoy.DeliveryProcessing, convoy.DeliveryRetry)
				require.NoError(t, err)
				pending = f.Deliveries
				return len(pending) == 0
			}, 120*time.Second, 50*time.Millisecond, "deliveries left pending") {
				next, ok, err := st.NextDue(ctx)
				t.Logf("%d pending; store's next due %v (%t, %v); now %v", len(pending), next, ok, err, time.Now())
				for _, dl := range pending[:min(len(pending), 10)] {
					t.Logf("  %s %s endpoint %s attempts %d/%d claims %d next %v lease %q until %v",
						dl.ID, dl.Status, dl.EndpointID, dl.Attempts, dl.RoundAttempts, dl.Claims,
						dl.NextAttemptAt, dl.LeaseOwner, dl.LeaseExpiresAt)
				}
				t.FailNow()
			}
			require.NoError(t, d2.Close(ctx))

			f, err := tally.Walk(ctx, st)
			require.NoError(t, err)
			success := f.ByStatus[convoy.DeliverySuccess]
			failure := f.ByStatus[convoy.DeliveryFailure]
			discarded := f.ByStatus[convoy.DeliveryDiscarded]
			attempts := 0
			for _, d := range f.Deliveries {
				attempts += d.Attempts
			}
			t.Logf("soak (%s): %d events in %v: %d success, %d failure, %d discarded; %d attempts (%d before Close), %d requests, %d accepted, %d duplicates",
				sk.name, events, time.Since(start).Round(time.Millisecond), success, failure, discarded,
				attempts, closedAt, rc.requests.Load(), rc.received.Total(), rc.received.Duplicates())

			require.Len(t, f.Deliveries, events, "one delivery per event")
			require.Len(t, f.ByEvent, events)
			require.Empty(t, f.NotFinal())
			require.Equal(t, events, success+failure+discarded)
			require.GreaterOrEqual(t, rc.received.Total(), success)
			require.GreaterOrEqual(t, rc.requests.Load(), int64(attempts), "every recorded attempt reached the receiver")
			for _, d := range f.Deliveries {
				i := slicesIndex(eps, d.EndpointID)
				switch d.Status {
				case convoy.DeliverySuccess:
					require.Positive(t, rc.received.Delivery(d.ID), "delivery %s ended Success unreceived", d.ID)
					require.LessOrEqual(t, d.RoundAttempts, 4, "one try and three retries")
				case convoy.DeliveryFailure:
					require.Positive(t, soakRate(i), "a healthy endpoint's delivery failed")
				case convoy.DeliveryDiscarded:
					require.Positive(t, soakRate(i), "a healthy endpoint's delivery was discarded")
				}
			}
			for i, ep := range eps {
				got, err := st.GetEndpoint(ctx, ep.ID)
				require.NoError(t, err)
				switch soakRate(i) {
				case 0:
					require.Equal(t, convoy.EndpointActive, got.Status, "endpoint %d", i)
				case 1:
					require.Equal(t, convoy.EndpointInactive, got.Status, "endpoint %d", i)
				}
			}
		})
	}
}

func slicesIndex(eps []*convoy.Endpoint, id string) int {
	for i, ep := range eps {
		if ep.ID == id {
			return i
		}
	}
	return -1
}
