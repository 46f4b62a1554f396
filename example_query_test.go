package convoy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/convoykit/convoy"
)

// An update names only what changes: the filter and the description here;
// the URL, headers, secrets and status stay as they are.
func ExampleDispatcher_UpdateEndpoint() {
	d := newExampleDispatcher(convoy.Config{})
	defer d.Close(context.Background())
	ctx := context.Background()
	app, _ := d.CreateApp(ctx, convoy.App{Name: "Acme"})
	ep, _ := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{
		URL:     "https://acme.example/hooks",
		Headers: map[string]string{"X-Tenant": "acme"},
	})

	ep, err := d.UpdateEndpoint(ctx, ep.ID, convoy.EndpointUpdate{
		EventTypes:  &[]string{"invoice.*"},
		Description: convoy.Ptr("billing"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ep.URL, ep.Headers["X-Tenant"], ep.EventTypes, ep.Description, ep.Status)
	fmt.Println(ep.Accepts("invoice.paid"), ep.Accepts("user.created"))

	// A bad field refuses the whole update, and nothing changes.
	_, err = d.UpdateEndpoint(ctx, ep.ID, convoy.EndpointUpdate{URL: convoy.Ptr("ftp://acme.example/")})
	fmt.Println(err != nil)
	// Output:
	// https://acme.example/hooks acme [invoice.*] billing active
	// true false
	// true
}

// ListEvents pages through an app's events, newest first; LastAttempt shows
// how the latest try of a delivery went without paging through them all.
func ExampleDispatcher_ListEvents() {
	d := newExampleDispatcher(convoy.Config{})
	defer d.Close(context.Background())
	ctx := context.Background()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	defer receiver.Close()
	app, _ := d.CreateApp(ctx, convoy.App{Name: "Acme"})
	_, _ = d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: receiver.URL})
	for _, typ := range []string{"order.created", "order.paid", "order.shipped"} {
		res, _ := d.Send(ctx, app.ID, convoy.Event{Type: typ, Data: json.RawMessage(`{}`)})
		waitFinal(d, res.Deliveries[0].ID)
	}

	events, next, _ := d.ListEvents(ctx, convoy.EventQuery{AppID: app.ID}, convoy.Page{Limit: 2})
	for _, ev := range events {
		fmt.Println(ev.Type)
	}
	events, _, _ = d.ListEvents(ctx, convoy.EventQuery{AppID: app.ID}, convoy.Page{Limit: 2, Cursor: next})
	fmt.Println(events[0].Type)

	ds, _, _ := d.ListDeliveries(ctx, convoy.DeliveryQuery{AppID: app.ID, Statuses: []convoy.DeliveryStatus{convoy.DeliverySuccess}}, convoy.Page{})
	last, _ := d.LastAttempt(ctx, ds[0].ID)
	fmt.Println(len(ds), "delivered; the newest got HTTP", last.StatusCode, "for", string(last.RequestBody))
	// Output:
	// order.shipped
	// order.paid
	// order.created
	// 3 delivered; the newest got HTTP 202 for {}
}

// Stats shows, per endpoint, how the recent window went: the failing
// endpoints first.
func ExampleDispatcher_EndpointActivity() {
	d := newExampleDispatcher(convoy.Config{})
	defer d.Close(context.Background())
	ctx := context.Background()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer down.Close()
	app, _ := d.CreateApp(ctx, convoy.App{Name: "Acme"})
	ep, _ := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: down.URL, Retry: &convoy.RetryPolicy{Kind: convoy.RetryLinear, Limit: 0}})
	res, _ := d.Send(ctx, app.ID, convoy.Event{Type: "ping", Data: json.RawMessage(`{}`)})
	waitFinal(d, res.Deliveries[0].ID)

	a := d.EndpointActivity(ep.ID)
	fmt.Printf("%d attempt, %d failed, success rate %.0f%%\n", a.Attempts, a.Failures, 100*a.SuccessRate)
	s, _ := d.Stats(ctx)
	fmt.Println(s.Window, s.Recent[0].EndpointID == ep.ID)
	// Output:
	// 1 attempt, 1 failed, success rate 0%
	// 5m0s true
}
