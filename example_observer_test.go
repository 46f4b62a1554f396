package convoy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/convoykit/convoy"
)

// printingObserver prints Sends and attempts as they happen and reports
// final statuses on a channel. It embeds NopObserver, so methods added to
// Observer later do nothing here.
type printingObserver struct {
	convoy.NopObserver
	sent  chan struct{}
	final chan convoy.DeliveryStatus
}

func (o printingObserver) SendEnd(_ context.Context, s convoy.SendInfo) {
	fmt.Printf("%s %s: %d delivery, err %v\n", s.Op, s.EventType, s.Deliveries, s.Err)
	close(o.sent)
}

func (o printingObserver) AttemptEnd(_ context.Context, a convoy.AttemptInfo) {
	fmt.Printf("attempt %d: status %d, success %t, next %s\n", a.Number, a.StatusCode, a.Success, a.Next)
}

func (o printingObserver) Recorded(_ context.Context, r convoy.RecordInfo) {
	if r.Status.Final() {
		o.final <- r.Status
	}
}

// An Observer is called inline for every Send and every attempt, so it can
// count without missing any: the otelconvoy and promconvoy modules are
// Observers.
func ExampleObserver() {
	obs := printingObserver{sent: make(chan struct{}), final: make(chan convoy.DeliveryStatus, 1)}
	d := newExampleDispatcher(convoy.Config{
		Observer: obs,
		Retry:    convoy.LinearRetry(10*time.Millisecond, 3),
	})
	defer d.Close(context.Background())
	ctx := context.Background()

	var n atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-obs.sent // so that the Send is printed first
		if n.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // the first try fails
		}
	}))
	defer receiver.Close()
	app, _ := d.CreateApp(ctx, convoy.App{Name: "Acme"})
	_, _ = d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: receiver.URL})

	_, _ = d.Send(ctx, app.ID, convoy.Event{Type: "invoice.paid", Data: json.RawMessage(`{"invoice":"in_42"}`)})
	fmt.Println("recorded:", <-obs.final)
	// Output:
	// Send invoice.paid: 1 delivery, err <nil>
	// attempt 1: status 503, success false, next Retry
	// attempt 2: status 200, success true, next Success
	// recorded: Success
}
