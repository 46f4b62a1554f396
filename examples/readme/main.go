// Command readme holds the code shown in README.md, so that it always
// compiles (readme_test.go at the repository root checks that every Go
// block of the README appears in this folder). It is a sketch: it sends to
// an example URL.
package main

import (
	"context"
	"encoding/json"
	"log"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/bolt"
)

func main() {
	ctx := context.Background()
	store, err := bolt.Open("webhooks.db", nil) // one file; survives restarts
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	d, err := convoy.New(convoy.Config{Store: store})
	if err != nil {
		log.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer d.Close(ctx) // waits for attempts in flight

	app, _ := d.CreateApp(ctx, convoy.App{Name: "Acme Corp"}) // secret generated
	d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: "https://acme.example/webhooks"})
	sent, err := d.Send(ctx, app.ID, convoy.Event{
		Type: "invoice.paid",
		Data: json.RawMessage(`{"invoice":"in_42","amount":1999}`),
	}) // stored and returned at once; workers deliver, retry, record
	log.Println(sent.Event.ID, len(sent.Deliveries), err)
	changeSettings(ctx, d, sent.Deliveries[0].EndpointID)
	_ = flowControl(ctx, d, app, store)
}

// changeSettings is the README's "Changing settings" block.
func changeSettings(ctx context.Context, d *convoy.Dispatcher, endpointID string) {
	ep := &convoy.Endpoint{ID: endpointID}
	d.UpdateEndpoint(ctx, ep.ID, convoy.EndpointUpdate{
		URL:        convoy.Ptr("https://acme.example/v2/hooks"),
		EventTypes: &[]string{"invoice.*"}, // "invoice.paid", "invoice.refund.created", …
	})
}
