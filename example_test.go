package convoy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/memory"
)

// newExampleDispatcher returns a started dispatcher on a memory store that
// may reach 127.0.0.1, with logs discarded.
func newExampleDispatcher(cfg convoy.Config) *convoy.Dispatcher {
	cfg.Store = memory.New()
	cfg.AllowNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := convoy.New(cfg)
	if err != nil {
		panic(err)
	}
	if err := d.Start(context.Background()); err != nil {
		panic(err)
	}
	return d
}

// waitFinal polls a delivery until its status is final.
func waitFinal(d *convoy.Dispatcher, id string) *convoy.Delivery {
	for deadline := time.Now().Add(10 * time.Second); ; {
		dl, err := d.GetDelivery(context.Background(), id)
		if err != nil {
			panic(err)
		}
		if dl.Status.Final() || time.Now().After(deadline) {
			return dl
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ExampleNew() {
	store := memory.New()
	defer store.Close()
	d, err := convoy.New(convoy.Config{
		Store:   store,
		Workers: 16,
		Retry:   convoy.ExponentialRetry(time.Second, 2, time.Hour, 0.2, 8),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close(ctx)
	fmt.Println("delivering")

	// Config is checked: a Store is required.
	_, err = convoy.New(convoy.Config{})
	fmt.Println(err)
	// Output:
	// delivering
	// convoy: invalid input: bad config (Config.Store: required)
}

func ExampleDispatcher_Send() {
	d := newExampleDispatcher(convoy.Config{})
	defer d.Close(context.Background())
	ctx := context.Background()

	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Printf("received %s %s\n", r.Header.Get(convoy.HeaderEventType), body)
	}))
	defer receiver.Close()

	app, _ := d.CreateApp(ctx, convoy.App{Name: "Acme"})
	_, _ = d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: receiver.URL})

	res, err := d.Send(ctx, app.ID, convoy.Event{
		Type:           "invoice.paid",
		Data:           json.RawMessage(`{"invoice":"in_42","amount":1999}`),
		IdempotencyKey: "invoice-in_42-paid",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("status:", waitFinal(d, res.Deliveries[0].ID).Status)

	// The same idempotency key returns the first event and sends nothing.
	again, _ := d.Send(ctx, app.ID, convoy.Event{Type: "invoice.paid", Data: json.RawMessage(`{}`), IdempotencyKey: "invoice-in_42-paid"})
	fmt.Println("same event:", again.Event.ID == res.Event.ID, "duplicate:", again.Duplicate)
	// Output:
	// received invoice.paid {"invoice":"in_42","amount":1999}
	// status: Success
	// same event: true duplicate: true
}

// SendToEndpoint tests one endpoint: the event goes to it alone, although
// its filter takes only invoices and the app has another endpoint.
func ExampleDispatcher_SendToEndpoint() {
	d := newExampleDispatcher(convoy.Config{})
	defer d.Close(context.Background())
	ctx := context.Background()

	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Printf("received %s %s\n", r.Header.Get(convoy.HeaderEventType), body)
	}))
	defer receiver.Close()

	app, _ := d.CreateApp(ctx, convoy.App{Name: "Acme"})
	ep, _ := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: receiver.URL, EventTypes: []string{"invoice.*"}})
	_, _ = d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: receiver.URL + "/other"})

	res, err := d.SendToEndpoint(ctx, ep.ID, convoy.Event{Type: "convoy.test", Data: json.RawMessage(`{"test":true}`)})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(res.Deliveries), "delivery:", waitFinal(d, res.Deliveries[0].ID).Status)
	// Output:
	// received convoy.test {"test":true}
	// 1 delivery: Success
}

func ExampleDispatcher_ResendEndpoint() {
	d := newExampleDispatcher(convoy.Config{})
	defer d.Close(context.Background())
	ctx := context.Background()
	receiver := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer receiver.Close()

	app, _ := d.CreateApp(ctx, convoy.App{Name: "Acme"})
	// A dead endpoint: events for it are kept as Discarded, not sent.
	ep, _ := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: receiver.URL, Status: convoy.EndpointInactive})
	var ids []string
	for range 3 {
		res, _ := d.Send(ctx, app.ID, convoy.Event{Type: "ping", Data: json.RawMessage(`{}`)})
		fmt.Println(res.Deliveries[0].Status)
		ids = append(ids, res.Deliveries[0].ID)
	}

	// Once the endpoint is back: re-activate it and re-send what it missed.
	_, _ = d.SetEndpointStatus(ctx, ep.ID, convoy.EndpointActive)
	n, _ := d.ResendEndpoint(ctx, ep.ID, nil)
	fmt.Println("re-sent", n)
	for _, id := range ids {
		fmt.Println(waitFinal(d, id).Status)
	}
	// Output:
	// Discarded
	// Discarded
	// Discarded
	// re-sent 3
	// Success
	// Success
	// Success
}
