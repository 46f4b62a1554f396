// Command quickstart sends three webhooks with convoy and shows what
// happened to each: it starts a local receiver that verifies every
// signature, registers an app and an endpoint, sends three events and prints
// each delivery with its status and attempts.
//
//	go run ./examples/quickstart
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
	// 1. A dispatcher on an in-memory store. The receiver below listens on
	// 127.0.0.1, which the SSRF guard refuses unless allowed.
	store := memory.New()
	defer store.Close()
	d, err := convoy.New(convoy.Config{
		Store:         store,
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	defer d.Close(context.Background())

	// 2. An app (a customer of your service); convoy generates its secret.
	app, err := d.CreateApp(ctx, convoy.App{Name: "Acme Corp", SupportEmail: "ops@acme.example"})
	if err != nil {
		return err
	}

	// 3. The customer's receiver: it verifies each signature with the app's
	// secret before accepting the event.
	verifier := &convoy.Verifier{Secrets: []convoy.SecretValue{app.Secrets[0].Value}}
	var mu sync.Mutex
	verified := map[string]string{} // delivery ID → signature header
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := verifier.VerifyRequest(r); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		verified[r.Header.Get(convoy.HeaderDeliveryID)] = r.Header.Get(convoy.DefaultSignatureHeader)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	ep, err := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: receiver.URL + "/webhooks", Description: "Acme production"})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "app %q with endpoint %s\n", app.Name, ep.URL)

	// 4. Send three events. Send returns once the event is stored; workers
	// deliver in the background.
	var events []*convoy.Event
	for i, typ := range []string{"invoice.created", "invoice.paid", "customer.updated"} {
		data, _ := json.Marshal(map[string]any{"id": i + 1, "type": typ})
		ev, err := d.Send(ctx, app.ID, convoy.Event{Type: typ, Data: data})
		if err != nil {
			return err
		}
		events = append(events, ev.Event)
	}

	// 5. Wait for the deliveries to finish and show them.
	for _, ev := range events {
		var ds []*convoy.Delivery
		for {
			if _, ds, err = d.GetEvent(ctx, ev.ID); err != nil {
				return err
			}
			if allFinal(ds) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("event %s not delivered in time", ev.ID)
			case <-time.After(10 * time.Millisecond):
			}
		}
		for _, dl := range ds {
			attempts, _, err := d.ListAttempts(ctx, dl.ID, convoy.Page{})
			if err != nil {
				return err
			}
			mu.Lock()
			sig := verified[dl.ID]
			mu.Unlock()
			fmt.Fprintf(out, "event %-17s delivery %s: %s after %d attempt(s)\n", ev.Type, short(dl.ID), dl.Status, len(attempts))
			for _, a := range attempts {
				fmt.Fprintf(out, "  attempt %d: HTTP %d in %s\n", a.Number, a.StatusCode, a.Duration.Round(time.Millisecond))
			}
			fmt.Fprintf(out, "  receiver verified %s: %s\n", convoy.DefaultSignatureHeader, abbreviate(sig))
		}
	}
	return nil
}

func allFinal(ds []*convoy.Delivery) bool {
	for _, dl := range ds {
		if !dl.Status.Final() {
			return false
		}
	}
	return len(ds) > 0
}

func short(id string) string { return id[len(id)-12:] }

func abbreviate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
