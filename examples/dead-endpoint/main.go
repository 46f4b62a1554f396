// Command dead-endpoint shows what happens to an endpoint that keeps
// failing, and how to bring it back.
//
// The receiver answers 500 to everything. The first event's delivery
// exhausts its retries and ends in Failure, and the endpoint becomes
// inactive (dead). The events sent after that are kept as Discarded: no
// request is made. Then the receiver recovers, the endpoint is re-activated,
// the Discarded deliveries and the one that failed are re-sent, and all of
// them arrive. Last, it prints the attempt history of the first delivery.
//
//	go run ./examples/dead-endpoint
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/memory"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer) error {
	// The customer's receiver: it answers 500 until it is healthy again.
	var healthy atomic.Bool
	var requests atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if !healthy.Load() {
			http.Error(w, "database unavailable", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	// Endpoint status changes reach OnEndpointStatus on a goroutine of the
	// dispatcher; statusLog hands them over to this one.
	statuses := newStatusLog()

	store := memory.New()
	defer store.Close()
	d, err := convoy.New(convoy.Config{
		Store: store,
		// Two retries 50 ms apart: three attempts in all, then the delivery
		// ends in Failure and, by the default DeadEndpoint policy, its
		// endpoint becomes inactive.
		Retry:            convoy.LinearRetry(50*time.Millisecond, 2),
		OnEndpointStatus: statuses.add,
		AllowNetworks:    []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	defer d.Close(context.Background())

	app, err := d.CreateApp(ctx, convoy.App{Name: "Acme Corp"})
	if err != nil {
		return err
	}
	ep, err := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: receiver.URL + "/webhooks"})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "endpoint %s is %s; the receiver answers 500 to everything\n", ep.URL, ep.Status)

	// 1. The first event: every attempt fails, the endpoint dies.
	first, err := send(ctx, d, app.ID, "invoice.created", 1)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\nsent invoice.created #1")
	if err := statuses.waitFor(ctx, out, convoy.EndpointInactive); err != nil {
		return err
	}
	firstDelivery, err := waitDelivery(ctx, d, first.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "invoice.created #1: %s after %s; the receiver got %s\n",
		firstDelivery.Status, plural(firstDelivery.Attempts, "attempt"), plural(int(requests.Load()), "request"))

	// 2. Events for an inactive endpoint are kept as Discarded; nothing is
	// sent.
	fmt.Fprintln(out, "\nsending two more events while the endpoint is inactive")
	before := requests.Load()
	var later []*convoy.Event
	for i, typ := range []string{"invoice.paid", "invoice.refunded"} {
		ev, err := send(ctx, d, app.ID, typ, i+2)
		if err != nil {
			return err
		}
		later = append(later, ev)
		dl, err := waitDelivery(ctx, d, ev.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s #%d: %s, %s\n", typ, i+2, dl.Status, plural(dl.Attempts, "attempt"))
	}
	fmt.Fprintf(out, "requests that reached the receiver meanwhile: %d\n", requests.Load()-before)

	// 3. The receiver recovers. Re-activate the endpoint, then re-send what
	// it missed: the Discarded deliveries with ResendEndpoint, the one that
	// ended in Failure with Resend.
	healthy.Store(true)
	fmt.Fprintln(out, "\nthe receiver recovered; re-activating the endpoint")
	if _, err := d.SetEndpointStatus(ctx, ep.ID, convoy.EndpointActive); err != nil {
		return err
	}
	if err := statuses.waitFor(ctx, out, convoy.EndpointActive); err != nil {
		return err
	}
	n, err := d.ResendEndpoint(ctx, ep.ID, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "ResendEndpoint re-sent %d Discarded deliveries\n", n)
	if err := d.Resend(ctx, firstDelivery.ID); err != nil {
		return err
	}
	fmt.Fprintln(out, "Resend re-sent the delivery that ended in Failure")

	for _, ev := range append([]*convoy.Event{first}, later...) {
		dl, err := waitDelivery(ctx, d, ev.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%-16s %s after %s in all\n", ev.Type, dl.Status, plural(dl.Attempts, "attempt"))
	}

	// 4. The full history of the first delivery: every attempt is kept,
	// across re-sends.
	attempts, _, err := d.ListAttempts(ctx, firstDelivery.ID, convoy.Page{})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\nattempt history of invoice.created #1, newest first:")
	for _, a := range attempts {
		errText := a.Error
		if errText == "" {
			errText = "none"
		}
		fmt.Fprintf(out, "  attempt %d: HTTP %d, error: %s\n", a.Number, a.StatusCode, errText)
	}
	ep, err = d.GetEndpoint(ctx, ep.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "endpoint is %s; the receiver got %s in all\n", ep.Status, plural(int(requests.Load()), "request"))
	return nil
}

// plural returns "1 attempt", "2 attempts", "0 attempts".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// send sends one event whose data carries n.
func send(ctx context.Context, d *convoy.Dispatcher, appID, typ string, n int) (*convoy.Event, error) {
	data, _ := json.Marshal(map[string]any{"invoice": n})
	res, err := d.Send(ctx, appID, convoy.Event{Type: typ, Data: data})
	if err != nil {
		return nil, err
	}
	return res.Event, nil
}

// waitDelivery waits until the event's one delivery reaches a final status
// and returns it.
func waitDelivery(ctx context.Context, d *convoy.Dispatcher, eventID string) (*convoy.Delivery, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		_, ds, err := d.GetEvent(ctx, eventID)
		if err != nil {
			return nil, err
		}
		if len(ds) == 1 && ds[0].Status.Final() {
			return ds[0], nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("event %s: delivery not final in time: %w", eventID, ctx.Err())
		case <-t.C:
		}
	}
}

// statusLog collects endpoint status changes from the dispatcher's hook
// goroutine and hands them to the goroutine that prints.
type statusLog struct {
	mu      sync.Mutex
	events  []convoy.EndpointStatusEvent
	changed chan struct{} // capacity 1: a new event was added
	printed int           // events printed so far
}

func newStatusLog() *statusLog {
	return &statusLog{changed: make(chan struct{}, 1)}
}

// add is the OnEndpointStatus hook. It never blocks.
func (l *statusLog) add(e convoy.EndpointStatusEvent) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// waitFor prints the status changes as they arrive until one goes to want.
func (l *statusLog) waitFor(ctx context.Context, out io.Writer, want convoy.EndpointStatus) error {
	for {
		for {
			l.mu.Lock()
			if l.printed == len(l.events) {
				l.mu.Unlock()
				break
			}
			e := l.events[l.printed]
			l.printed++
			l.mu.Unlock()
			fmt.Fprintf(out, "endpoint status changed: %s -> %s (reason: %s)\n", e.From, e.To, e.Reason)
			if e.To == want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("endpoint did not become %s in time: %w", want, ctx.Err())
		case <-l.changed:
		}
	}
}
