// Command dashboard runs the convoyui dashboard on a demo store: three
// apps, a healthy endpoint, a flaky one, one already dead, and one that
// dies while you watch (it starts failing after -die-after, exhausts its
// retries and goes inactive; the events sent to it after that are kept
// as Discarded, ready for the dashboard's Re-send).
//
//	go run ./examples/dashboard
//	go run ./examples/dashboard -addr 127.0.0.1:8080 -die-after 1m
//
// The dashboard is mounted under /webhooks/ of an ordinary http.ServeMux,
// as it would be in a service of your own. It runs with Insecure, which
// serves loopback hosts only: a real service sets Options.Authorize.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/convoyui"
	"github.com/convoykit/convoy/store/memory"
)

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:0", "address of the dashboard (port 0: any free port)")
	flag.DurationVar(&o.dieAfter, "die-after", 20*time.Second, "when the dying endpoint starts failing")
	flag.DurationVar(&o.every, "every", time.Second, "how often each app sends an event")
	flag.DurationVar(&o.retry, "retry", 2*time.Second, "the wait between retries (three of them)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, o); err != nil {
		log.Fatal(err)
	}
}

type options struct {
	addr     string
	dieAfter time.Duration
	every    time.Duration
	retry    time.Duration
}

// run serves the demo until ctx ends.
func run(ctx context.Context, out io.Writer, o options) error {
	start := time.Now()
	healthy := receiver(func(*http.Request) int { return http.StatusOK })
	defer healthy.Close()
	// The flaky endpoint fails a quarter of first attempts, never a retry:
	// it stays active however long the demo runs.
	flaky := receiver(func(r *http.Request) int {
		if r.Header.Get(convoy.HeaderAttempt) == "1" && rand.IntN(4) == 0 {
			return http.StatusServiceUnavailable
		}
		return http.StatusAccepted
	})
	defer flaky.Close()
	dying := receiver(func(*http.Request) int {
		if time.Since(start) < o.dieAfter {
			return http.StatusOK
		}
		return http.StatusBadGateway
	})
	defer dying.Close()
	dead := receiver(func(*http.Request) int { return http.StatusOK })
	dead.Close() // connections are refused from the start

	store := memory.New()
	defer store.Close()
	d, err := convoy.New(convoy.Config{
		Store:         store,
		Retry:         convoy.LinearRetry(o.retry, 3),
		Timeout:       5 * time.Second,
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnEndpointStatus: func(e convoy.EndpointStatusEvent) {
			fmt.Fprintf(out, "endpoint %s: %s -> %s (%s)\n", e.EndpointID, e.From, e.To, e.Reason)
		},
	})
	if err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	defer d.Close(context.Background())

	type target struct {
		app  string
		urls []string
	}
	targets := []target{
		{"Acme Corp", []string{healthy.URL + "/webhooks/acme?token=acme-demo-token-123", flaky.URL + "/hooks/acme/billing"}},
		{"Globex", []string{dying.URL + "/globex/events/Xk29sLq0Pz8vN3mB"}},
		{"Initech", []string{dead.URL + "/initech/hooks"}},
	}
	var apps []string
	for _, t := range targets {
		app, err := d.CreateApp(ctx, convoy.App{Name: t.app, SupportEmail: "webhooks@" + strings.ToLower(strings.Fields(t.app)[0]) + ".example"})
		if err != nil {
			return err
		}
		for _, u := range t.urls {
			if _, err := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: u, Headers: map[string]string{"Authorization": "Bearer demo-credential"}}); err != nil {
				return err
			}
		}
		apps = append(apps, app.ID)
	}

	mux := http.NewServeMux()
	mux.Handle("/webhooks/", http.StripPrefix("/webhooks", convoyui.Handler(d, convoyui.Options{
		Insecure: true, // a demo on 127.0.0.1; a real service sets Authorize
		Title:    "convoy demo",
	})))
	mux.Handle("/{$}", http.RedirectHandler("/webhooks/", http.StatusFound))
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(out, "dashboard: http://%s/webhooks/\n", ln.Addr())
	fmt.Fprintf(out, "the Globex endpoint starts failing in %s; Ctrl-C stops\n", o.dieAfter)

	types := []string{"invoice.created", "invoice.paid", "customer.updated", "subscription.renewed"}
	tick := time.NewTicker(o.every)
	defer tick.Stop()
	var seq atomic.Int64
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			for _, app := range apps {
				n := seq.Add(1)
				data, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("evt_%05d", n), "amount": 100 + rand.IntN(9900), "currency": "EUR"})
				if _, err := d.Send(ctx, app, convoy.Event{Type: types[rand.IntN(len(types))], Data: data}); err != nil && ctx.Err() == nil {
					return err
				}
			}
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// receiver is a customer's endpoint answering status(r) to request r.
func receiver(status func(*http.Request) int) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		code := status(r)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"received":%t}`, code < 300)
	}))
}
