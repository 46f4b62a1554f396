package convoy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/convoykit/convoy"
)

// A receiver that takes at most 10 requests a second gets them no faster:
// the rest wait in the queue, holding no worker.
func ExampleRateLimit() {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	d := newExampleDispatcher(convoy.Config{})
	ctx := context.Background()
	defer d.Close(ctx)
	app, _ := d.CreateApp(ctx, convoy.App{Name: "Acme"})
	ep, err := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{
		URL:       srv.URL,
		RateLimit: &convoy.RateLimit{PerSecond: 10, Burst: 5},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var last *convoy.SendResult
	for range 5 {
		last, _ = d.Send(ctx, app.ID, convoy.Event{Type: "order.paid", Data: json.RawMessage(`{}`)})
	}
	waitFinal(d, last.Deliveries[0].ID)
	fmt.Printf("limit %g/s, burst %d\n", ep.RateLimit.PerSecond, ep.RateLimit.Burst)

	// A rate limit that cannot work is refused.
	_, err = d.UpdateEndpoint(ctx, ep.ID, convoy.EndpointUpdate{RateLimit: &convoy.RateLimit{PerSecond: -1}})
	fmt.Println(err)
	// Output:
	// limit 10/s, burst 5
	// convoy: invalid input: bad rate limit (RateLimit.PerSecond: -1)
}

// Adaptive concurrency finds how much a receiver takes at once: here it
// serves 2 requests at a time and answers 503 past that.
func ExampleAdaptiveConcurrency() {
	slots := make(chan struct{}, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	d := newExampleDispatcher(convoy.Config{
		Workers:     16,
		PerEndpoint: 16,
		Adaptive:    &convoy.AdaptiveConcurrency{Initial: 1},
		Retry:       convoy.LinearRetry(10*time.Millisecond, 100),
	})
	ctx := context.Background()
	defer d.Close(ctx)
	app, _ := d.CreateApp(ctx, convoy.App{Name: "Acme"})
	ep, _ := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: srv.URL})
	var ids []string
	for range 50 {
		res, _ := d.Send(ctx, app.ID, convoy.Event{Type: "order.paid", Data: json.RawMessage(`{}`)})
		ids = append(ids, res.Deliveries[0].ID)
	}
	delivered := 0
	for _, id := range ids {
		if waitFinal(d, id).Status == convoy.DeliverySuccess {
			delivered++
		}
	}
	limit := d.EndpointFlow(ep.ID).Limit
	fmt.Println("delivered:", delivered)
	fmt.Println("limit between 1 and 16:", limit >= 1 && limit <= 16)
	// Output:
	// delivered: 50
	// limit between 1 and 16: true
}

// A circuit breaker stops attempting an endpoint that keeps failing, for
// a cool-down, then lets one probe through.
func ExampleCircuitBreaker() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	d := newExampleDispatcher(convoy.Config{
		Workers: 1,
		Breaker: &convoy.CircuitBreaker{FailureRate: 0.5, MinAttempts: 3, Window: time.Minute, CoolDown: time.Hour},
		Retry:   convoy.LinearRetry(time.Millisecond, 100),
	})
	ctx := context.Background()
	defer d.Close(ctx)
	app, _ := d.CreateApp(ctx, convoy.App{Name: "Acme"})
	ep, _ := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: srv.URL})
	res, _ := d.Send(ctx, app.ID, convoy.Event{Type: "order.paid", Data: json.RawMessage(`{}`)})
	var dl *convoy.Delivery
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		// Wait for the circuit to open and the third attempt to be stored.
		dl, _ = d.GetDelivery(ctx, res.Deliveries[0].ID)
		if d.EndpointFlow(ep.ID).Circuit == convoy.CircuitOpen && dl.Attempts == 3 {
			break
		}
	}
	got, _ := d.GetEndpoint(ctx, ep.ID)
	fmt.Println("circuit:", got.Health.Circuit)
	fmt.Println("attempts before it opened:", dl.Attempts)
	fmt.Println("delivery waits:", dl.Status)
	// Output:
	// circuit: open
	// attempts before it opened: 3
	// delivery waits: Retry
}
