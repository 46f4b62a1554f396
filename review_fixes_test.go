package convoy_test

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil"
)

// TestShortRetryIsNotHeldByThePollInterval: a retry due sooner than
// PollInterval is attempted when due; the scheduler must not sleep until
// the lease expiry it saw while the record was landing.
func TestShortRetryIsNotHeldByThePollInterval(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			b := setup(t, sk.open(t), func(c *convoy.Config) {
				c.Retry = convoy.LinearRetry(50*time.Millisecond, 1)
				c.PollInterval = time.Hour
			})
			rc := testutil.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.WriteHeader(http.StatusInternalServerError)
				}
			})
			b.endpoint(t, rc.URL, nil)
			dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
			b.waitStatus(t, dl.ID, convoy.DeliveryRetry)
			b.clock.Advance(50 * time.Millisecond)
			b.waitStatus(t, dl.ID, convoy.DeliverySuccess)
		})
	}
}

// TestTransportErrorsDoNotCarryTheURL: paths and queries of webhook URLs
// often hold tokens; attempt errors (stored and logged) leave them out.
func TestTransportErrorsDoNotCarryTheURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	b := setup(t, memoryStore(), nil)
	b.endpoint(t, "http://"+addr+"/hooks/T0KEN-in-path?sig=T0KEN-in-query", nil)
	dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
	got := b.waitStatus(t, dl.ID, convoy.DeliveryRetry)
	a := b.attempts(t, got.ID)[0]
	require.Contains(t, a.Error, "refused")
	require.NotContains(t, a.Error, "T0KEN")
	require.NotContains(t, got.LastError, "T0KEN")
	require.NotContains(t, testutil.CapturedLogs(), "T0KEN")
}

// TestStatusChangesRacingCloseNeverPanic: management calls that fire hooks
// while Close stops the hook goroutine run the hook in place instead.
func TestStatusChangesRacingCloseNeverPanic(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	b := setup(t, memoryStore(), func(c *convoy.Config) {
		c.OnEndpointStatus = func(convoy.EndpointStatusEvent) { mu.Lock(); calls++; mu.Unlock() }
	})
	ep := b.endpoint(t, "https://example.com/", nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		st := []convoy.EndpointStatus{convoy.EndpointInactive, convoy.EndpointActive}
		for i := range 400 {
			_, err := b.d.SetEndpointStatus(ctx, ep.ID, st[i%2])
			require.NoError(t, err)
		}
	}()
	require.NoError(t, b.d.Close(ctx))
	wg.Wait()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return calls == 400 }, 10*time.Second, time.Millisecond)
}

func TestExponentialRetryNeverOverflows(t *testing.T) {
	p := convoy.ExponentialRetry(time.Second, 2, 0, 0.2, 1000)
	for _, n := range []int{40, 63, 64, 100, 1000} {
		d, ok := p.NextRetry(n)
		require.True(t, ok)
		require.Greater(t, d, time.Duration(0))
		require.LessOrEqual(t, d, convoy.MaxRetryWait)
	}
}

// TestSchemeSecretsMismatchIsRefused: a Standard Webhooks app or endpoint
// must sign with whsec_ secrets; anything else would fail every attempt.
func TestSchemeSecretsMismatchIsRefused(t *testing.T) {
	b := setup(t, memoryStore(), nil)
	ctx := context.Background()
	plain := []convoy.Secret{{Value: "a-plain-text-secret-0123456789"}}
	sw := convoy.Signing{Scheme: convoy.SchemeStandardWebhooks}
	_, err := b.d.CreateApp(ctx, convoy.App{Name: "a", Secrets: plain, Signing: sw})
	require.ErrorIs(t, err, convoy.ErrInvalidSecret)

	app, err := b.d.CreateApp(ctx, convoy.App{Name: "plain", Secrets: plain})
	require.NoError(t, err, "Convoy schemes take any secret")
	_, err = b.d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: "https://example.com/", Signing: sw})
	require.ErrorIs(t, err, convoy.ErrInvalidSecret, "the endpoint would sign with its app's plain secret")
	_, err = b.d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: "https://example.com/", Signing: sw, Secrets: plain})
	require.ErrorIs(t, err, convoy.ErrInvalidSecret)
	own, err := convoy.GenerateSecret()
	require.NoError(t, err)
	_, err = b.d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: "https://example.com/", Signing: sw, Secrets: []convoy.Secret{{Value: own}}})
	require.NoError(t, err)
}

// TestRetryBesideACappedEndpointIsNotHeldByThePollInterval: an endpoint at
// its cap with work waiting makes the store's next due time a past one;
// another endpoint's retry must still go out about when due, not a whole
// PollInterval later.
func TestRetryBesideACappedEndpointIsNotHeldByThePollInterval(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			b := setup(t, sk.open(t), func(c *convoy.Config) {
				c.Workers, c.PerEndpoint = 4, 1
				c.PollInterval = time.Hour
				c.Timeout, c.Lease = time.Minute, 2*time.Minute // no timeout wakes the scheduler here
				c.Retry = convoy.LinearRetry(time.Second, 1)
			})
			hang, _ := testutil.NewHoldingReceiver(t)
			flaky := testutil.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.WriteHeader(http.StatusInternalServerError)
				}
			})
			b.endpoint(t, hang.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"slow"} })
			b.endpoint(t, flaky.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"flaky"} })
			for range 3 {
				b.send(t, "slow", `{}`) // one in flight, two due behind the cap
			}
			require.Eventually(t, func() bool { return hang.Count() == 1 }, 10*time.Second, time.Millisecond)
			dl := b.deliveries(t, b.send(t, "flaky", `{}`).ID)[0]
			b.waitStatus(t, dl.ID, convoy.DeliveryRetry)
			// Due in 1 s; the scheduler looks again every PollInterval/10
			// (6 min here) at the latest while capped work is due.
			b.clock.Advance(6 * time.Minute)
			b.waitStatus(t, dl.ID, convoy.DeliverySuccess)
		})
	}
}
