// Command example serves Prometheus metrics beside a running convoy
// dispatcher: it delivers a steady trickle of events to two local
// receivers, one healthy and one that fails a third of its requests, and
// serves /metrics for Prometheus to scrape.
//
//	cd promconvoy && go run ./example
//	cd promconvoy && go run ./example -addr 127.0.0.1:9464 -every 200ms
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
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/signal"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/promconvoy"
	"github.com/convoykit/convoy/store/memory"
)

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:0", "address of the metrics server (port 0: any free port)")
	flag.DurationVar(&o.every, "every", 500*time.Millisecond, "how often an event is sent")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, o); err != nil {
		log.Fatal(err)
	}
}

type options struct {
	addr  string
	every time.Duration
}

// run delivers and serves /metrics until ctx ends.
func run(ctx context.Context, out io.Writer, o options) error {
	healthy := receiver(func(int64) int { return http.StatusOK })
	defer healthy.Close()
	flaky := receiver(func(n int64) int {
		if n%3 == 0 {
			return http.StatusServiceUnavailable
		}
		return http.StatusAccepted
	})
	defer flaky.Close()

	store := memory.New()
	defer store.Close()
	cfg := convoy.Config{
		Store:         store,
		Retry:         convoy.LinearRetry(time.Second, 3),
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, // the local receivers
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}

	metrics := promconvoy.New(promconvoy.Options{})
	cfg.Observer = metrics // counts every Send and attempt as it happens
	d, err := convoy.New(cfg)
	if err != nil {
		return err
	}
	metrics.SetDispatcher(d) // the queue gauges read d.Stats at each scrape
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics, collectors.NewGoCollector())
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))

	if err := d.Start(ctx); err != nil {
		return err
	}
	defer d.Close(context.Background())
	app, err := d.CreateApp(ctx, convoy.App{Name: "Acme"})
	if err != nil {
		return err
	}
	for _, url := range []string{healthy.URL + "/hooks", flaky.URL + "/hooks"} {
		if _, err := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: url}); err != nil {
			return err
		}
	}

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(out, "metrics: http://%s/metrics\n", ln.Addr())

	tick := time.NewTicker(o.every)
	defer tick.Stop()
	for n := 1; ctx.Err() == nil; n++ {
		select {
		case <-ctx.Done():
		case <-tick.C:
			data, _ := json.Marshal(map[string]any{"invoice": fmt.Sprintf("in_%05d", n), "amount": 1999})
			if _, err := d.Send(ctx, app.ID, convoy.Event{Type: "invoice.paid", Data: data}); err != nil && ctx.Err() == nil {
				return err
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

// receiver is a customer's endpoint answering status(n) to its n-th
// request.
func receiver(status func(n int64) int) *httptest.Server {
	var n atomic.Int64
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(status(n.Add(1)))
	}))
}
