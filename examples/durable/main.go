// Command durable shows that webhooks survive a restart when the dispatcher
// keeps its queue in a bolt file.
//
// It reserves an address for a receiver that is not running yet, sends
// events to it (every attempt fails: nothing is listening), stops the
// dispatcher and closes the file. Then, like a new process, it opens the
// same file with a new store and a new dispatcher, finds the events still
// waiting in Retry, brings the receiver up and watches every event arrive.
//
//	go run ./examples/durable
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/bolt"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// eventTypes are the events sent while the receiver is down.
var eventTypes = []string{"order.created", "order.paid", "order.packed", "order.shipped", "order.delivered"}

func run(ctx context.Context, out io.Writer) error {
	dir, err := os.MkdirTemp("", "convoy-durable-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "webhooks.db")

	// Reserve an address for the receiver, then free it: until the receiver
	// starts, connections to it are refused, as with a customer's server
	// that is down.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	url := "http://" + addr + "/webhooks"

	fmt.Fprintf(out, "queue file: %s in a temporary directory\n", filepath.Base(path))
	fmt.Fprintf(out, "the receiver at %s is down: nothing listens there yet\n", addr)

	fmt.Fprintln(out, "\n== first process ==")
	secret, err := firstProcess(ctx, out, path, url)
	if err != nil {
		return err
	}

	fmt.Fprintln(out, "\n== second process: same file, new store, new dispatcher ==")
	return secondProcess(ctx, out, path, addr, secret)
}

// firstProcess sends the events while the receiver is down, waits until each
// delivery has failed twice and is waiting to be retried, then stops the
// dispatcher and closes the store. It returns the app's signing secret, which
// the receiver needs.
func firstProcess(ctx context.Context, out io.Writer, path, url string) (convoy.SecretValue, error) {
	st, err := bolt.Open(path, nil)
	if err != nil {
		return "", err
	}
	defer st.Close()
	d, err := newDispatcher(st)
	if err != nil {
		return "", err
	}
	if err := d.Start(ctx); err != nil {
		return "", err
	}
	defer d.Close(context.Background())

	app, err := d.CreateApp(ctx, convoy.App{Name: "Acme Corp"})
	if err != nil {
		return "", err
	}
	ep, err := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: url})
	if err != nil {
		return "", err
	}
	for i, typ := range eventTypes {
		data, _ := json.Marshal(map[string]any{"order": 1000 + i, "type": typ})
		if _, err := d.Send(ctx, app.ID, convoy.Event{Type: typ, Data: data}); err != nil {
			return "", err
		}
	}
	fmt.Fprintf(out, "sent %d events to %s; Send returned as soon as each was stored in the file\n", len(eventTypes), url)

	// Wait until every delivery has failed at least twice.
	var ds []*convoy.Delivery
	err = poll(ctx, func() (bool, error) {
		ds, err = allDeliveries(ctx, d, ep.ID)
		if err != nil {
			return false, err
		}
		for _, dl := range ds {
			if dl.Status != convoy.DeliveryRetry || dl.Attempts < 2 {
				return false, nil
			}
		}
		return len(ds) == len(eventTypes), nil
	})
	if err != nil {
		return "", fmt.Errorf("waiting for the first attempts: %w", err)
	}
	fmt.Fprintf(out, "every delivery failed and waits in Retry; the latest error was:\n  %s\n", ds[0].LastError)

	// Stop, as a process does on shutdown: Close lets attempts in flight
	// finish and record their result in the file.
	if err := d.Close(ctx); err != nil {
		return "", err
	}
	if err := st.Close(); err != nil {
		return "", err
	}
	fmt.Fprintln(out, "dispatcher stopped and store closed")
	return app.Secrets[0].Value, nil
}

// secondProcess opens the file again with a new store and dispatcher, shows
// what survived, starts the receiver and waits for every event to arrive.
func secondProcess(ctx context.Context, out io.Writer, path, addr string, secret convoy.SecretValue) error {
	st, err := bolt.Open(path, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	d, err := newDispatcher(st)
	if err != nil {
		return err
	}

	// The new dispatcher knows nothing but the file: find the app, its
	// endpoint and the deliveries waiting for it. Queries work before Start.
	apps, _, err := d.ListApps(ctx, convoy.Page{})
	if err != nil {
		return err
	}
	if len(apps) != 1 {
		return fmt.Errorf("found %d apps in the file, want 1", len(apps))
	}
	eps, _, err := d.ListEndpoints(ctx, apps[0].ID, convoy.Page{})
	if err != nil {
		return err
	}
	if len(eps) != 1 {
		return fmt.Errorf("found %d endpoints in the file, want 1", len(eps))
	}
	ep := eps[0]
	ds, err := allDeliveries(ctx, d, ep.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "reopened the file: app %q, endpoint %s, %d deliveries\n", apps[0].Name, ep.URL, len(ds))
	for _, dl := range ds {
		fmt.Fprintf(out, "  %-15s %s after %d failed attempts, next attempt due %s\n",
			dl.EventType, dl.Status, dl.Attempts, dueIn(dl.NextAttemptAt))
	}
	fmt.Fprintf(out, "survived the restart: %d of %d deliveries in Retry\n", countStatus(ds, convoy.DeliveryRetry), len(eventTypes))

	// Bring the receiver up on the address the endpoint points at. It
	// verifies each signature and counts what it accepts; since delivery
	// is at least once, it deduplicates on the delivery ID.
	verifier := &convoy.Verifier{Secrets: []convoy.SecretValue{secret}}
	var mu sync.Mutex
	received := map[string]int{} // delivery ID → requests accepted
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := verifier.VerifyRequest(r); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		received[r.Header.Get(convoy.HeaderDeliveryID)]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Listener.Close()
	if srv.Listener, err = net.Listen("tcp", addr); err != nil {
		return fmt.Errorf("restart the receiver on %s: %w", addr, err)
	}
	srv.Start()
	defer srv.Close()
	fmt.Fprintf(out, "the receiver is up at %s\n", addr)

	if err := d.Start(ctx); err != nil {
		return err
	}
	defer d.Close(context.Background())
	fmt.Fprintln(out, "new dispatcher started; waiting for every event to arrive")

	err = poll(ctx, func() (bool, error) {
		ds, err = allDeliveries(ctx, d, ep.ID)
		if err != nil {
			return false, err
		}
		return countStatus(ds, convoy.DeliverySuccess) == len(eventTypes), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the deliveries: %w", err)
	}
	for _, dl := range ds {
		attempts, _, err := d.ListAttempts(ctx, dl.ID, convoy.Page{}) // newest first
		if err != nil {
			return err
		}
		last := attempts[0]
		fmt.Fprintf(out, "  %-15s %s at attempt %d (HTTP %d); the %d before it found the receiver down\n",
			dl.EventType, dl.Status, last.Number, last.StatusCode, len(attempts)-1)
	}

	if err := d.Close(ctx); err != nil {
		return err
	}
	mu.Lock()
	distinct, requests := len(received), 0
	for _, n := range received {
		requests += n
	}
	mu.Unlock()
	fmt.Fprintf(out, "delivered: %d of %d events; the receiver accepted %d requests for %d distinct deliveries\n",
		countStatus(ds, convoy.DeliverySuccess), len(eventTypes), requests, distinct)
	return nil
}

func newDispatcher(st convoy.Store) (*convoy.Dispatcher, error) {
	return convoy.New(convoy.Config{
		Store: st,
		// Retry every 200 ms, up to 50 times, so the example is quick. The
		// default schedule waits 5 s, 5 min, 30 min, ... up to a day.
		Retry: convoy.LinearRetry(200*time.Millisecond, 50),
		// The receiver listens on 127.0.0.1, which the SSRF guard refuses
		// unless allowed.
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

// allDeliveries returns every delivery to an endpoint, oldest first.
func allDeliveries(ctx context.Context, d *convoy.Dispatcher, endpointID string) ([]*convoy.Delivery, error) {
	var all []*convoy.Delivery
	for page := (convoy.Page{Limit: convoy.MaxPageSize}); ; {
		ds, next, err := d.ListDeliveries(ctx, convoy.DeliveryQuery{EndpointID: endpointID}, page)
		if err != nil {
			return nil, err
		}
		all = append(all, ds...)
		if next == "" {
			slices.Reverse(all) // listed newest first
			return all, nil
		}
		page.Cursor = next
	}
}

func countStatus(ds []*convoy.Delivery, s convoy.DeliveryStatus) int {
	n := 0
	for _, dl := range ds {
		if dl.Status == s {
			n++
		}
	}
	return n
}

// dueIn describes a due time relative to now.
func dueIn(t time.Time) string {
	d := time.Until(t).Round(10 * time.Millisecond)
	if d <= 0 {
		return "now"
	}
	return "in " + d.String()
}

// poll calls done every 10 ms until it reports true, fails, or ctx ends.
func poll(ctx context.Context, done func() (bool, error)) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not done in time: %w", ctx.Err())
		case <-t.C:
		}
	}
}
