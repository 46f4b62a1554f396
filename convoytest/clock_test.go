package convoytest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/convoytest"
	"github.com/convoykit/convoy/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var start = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func TestClockTimers(t *testing.T) {
	c := convoytest.NewClock(start)
	require.Equal(t, start, c.Now())
	a := c.NewTimer(time.Minute)
	b := c.NewTimer(time.Hour)
	require.Equal(t, 2, c.Timers())
	require.NoError(t, c.WaitForTimers(t.Context(), 2))

	c.Advance(time.Minute)
	require.Equal(t, start.Add(time.Minute), <-a.C())
	select {
	case <-b.C():
		t.Fatal("fired early")
	default:
	}
	require.True(t, b.Stop())
	require.False(t, b.Stop())
	require.Zero(t, c.Timers())
	now := c.NewTimer(0)
	require.Equal(t, start.Add(time.Minute), <-now.C(), "a timer of zero fires at once")

	c.Set(start) // backwards is allowed
	require.Equal(t, start, c.Now())

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, c.WaitForTimers(ctx, 1), context.DeadlineExceeded)
}

// TestSignaturesUnderAFakeClockVerify: a dispatcher on a fake clock signs
// with the clock's time; a Verifier on the same clock accepts, one on the
// real clock refuses the timestamp.
func TestSignaturesUnderAFakeClockVerify(t *testing.T) {
	for _, scheme := range []convoy.Scheme{convoy.SchemeConvoyAdvanced, convoy.SchemeStandardWebhooks} {
		t.Run(string(scheme), func(t *testing.T) {
			clk := convoytest.NewClock(start)
			type verdict struct{ fake, real error }
			got := make(chan verdict, 1)
			var secret convoy.SecretValue
			rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				signing := convoy.Signing{Scheme: scheme}
				fake := &convoy.Verifier{Signing: signing, Secrets: []convoy.SecretValue{secret}, Now: clk.Now}
				body, err := fake.VerifyRequest(r)
				real := &convoy.Verifier{Signing: signing, Secrets: []convoy.SecretValue{secret}}
				got <- verdict{err, real.Verify(r.Header, body)}
			}))
			defer rc.Close()
			d, ctx := start2(t, clk)
			app, err := d.CreateApp(ctx, convoy.App{Name: "a", Signing: convoy.Signing{Scheme: scheme}})
			require.NoError(t, err)
			secret = app.Secrets[0].Value
			_, err = d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: rc.URL})
			require.NoError(t, err)
			_, err = d.Send(ctx, app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{}`)})
			require.NoError(t, err)
			v := <-got
			require.NoError(t, v.fake)
			require.True(t, errors.Is(v.real, convoy.ErrTimestampExpired), "the real clock is years away: %v", v.real)
		})
	}
}

func start2(t *testing.T, clk *convoytest.Clock) (*convoy.Dispatcher, context.Context) {
	d, err := convoy.New(convoy.Config{
		Store: memory.New(), Clock: clk,
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, d.Start(ctx))
	t.Cleanup(func() { require.NoError(t, d.Close(ctx)) })
	return d, ctx
}

// ExampleClock drives a retry with a fake clock: the receiver fails once,
// and the retry goes out when the test moves the clock.
func ExampleClock() {
	clk := convoytest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	calls := make(chan int, 2)
	var count atomic.Int32
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(count.Add(1))
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		calls <- n
	}))
	defer rc.Close()
	recorded := make(chan convoy.AttemptEvent, 2)
	d, _ := convoy.New(convoy.Config{
		Store: memory.New(), Clock: clk,
		Retry:         convoy.LinearRetry(time.Minute, 3),
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		OnAttempt:     func(e convoy.AttemptEvent) { recorded <- e },
	})
	ctx := context.Background()
	_ = d.Start(ctx)
	defer d.Close(ctx)
	app, _ := d.CreateApp(ctx, convoy.App{Name: "Acme"})
	_, _ = d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: rc.URL})
	_, _ = d.Send(ctx, app.ID, convoy.Event{Type: "invoice.paid", Data: json.RawMessage(`{}`)})

	fmt.Println("request", <-calls) // fails with 503
	e := <-recorded
	fmt.Println(e.Delivery.Status, "due in", e.Delivery.NextAttemptAt.Sub(clk.Now()))
	clk.Advance(time.Minute)
	fmt.Println("request", <-calls)
	fmt.Println((<-recorded).Delivery.Status)
	// Output:
	// request 1
	// Retry due in 1m0s
	// request 2
	// Success
}
