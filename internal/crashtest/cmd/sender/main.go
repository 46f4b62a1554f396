// Command sender is the process the crash test kills. It runs a
// convoy.Dispatcher on a bolt file and sends a stream of events to one
// endpoint, the receiver URL given by -url, and writes the ID of each event
// to stdout, one line per event, only after Send returned it: a line on
// stdout is an acknowledgement. It runs until it is killed.
//
// With -drain it sends nothing: it delivers what the file holds and exits
// with status 0 once no delivery is Scheduled, Processing or Retry.
//
// Every run on the same file reuses the app and endpoint the first run
// created.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/bolt"
)

func main() {
	var (
		dbPath   = flag.String("db", "", "bolt file")
		url      = flag.String("url", "", "receiver URL")
		drain    = flag.Bool("drain", false, "send nothing; exit once every delivery is final")
		workers  = flag.Int("workers", 8, "dispatcher workers")
		senders  = flag.Int("senders", 2, "goroutines calling Send")
		interval = flag.Duration("interval", 20*time.Millisecond, "pause between two sends of one goroutine")
	)
	flag.Parse()
	if err := run(*dbPath, *url, *drain, *workers, *senders, *interval); err != nil {
		fmt.Fprintln(os.Stderr, "sender:", err)
		os.Exit(1)
	}
}

func run(dbPath, url string, drain bool, workers, senders int, interval time.Duration) error {
	if dbPath == "" || url == "" {
		return errors.New("-db and -url are required")
	}
	ctx := context.Background()
	st, err := bolt.Open(dbPath, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	d, err := convoy.New(convoy.Config{
		Store:       st,
		Workers:     workers,
		PerEndpoint: workers,
		// Short enough that a killed run's leases expire, and its retries
		// come due, within a few cycles of the test.
		Timeout: time.Second,
		Lease:   2 * time.Second,
		// 20 retries at 50 ms: the receiver fails at most a quarter of the
		// requests at random, so exhausting them (0.25^21) does not happen.
		Retry:         convoy.LinearRetry(50*time.Millisecond, 20),
		PollInterval:  200 * time.Millisecond,
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	appID, err := ensureEndpoint(ctx, d, url)
	if err != nil {
		return err
	}
	if drain {
		if err := waitSettled(ctx, st); err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return d.Close(cctx)
	}

	var out sync.Mutex
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for i := 0; ; i++ {
				data, _ := json.Marshal(map[string]string{"sender": strconv.Itoa(g), "n": strconv.Itoa(i)})
				res, err := d.Send(ctx, appID, convoy.Event{Type: "crash.test", Data: data})
				if err == nil {
					// One write per line, no buffer: the line exists once
					// Send returned, and only then.
					out.Lock()
					_, werr := os.Stdout.WriteString(res.Event.ID + "\n")
					out.Unlock()
					if werr != nil {
						fmt.Fprintln(os.Stderr, "sender: stdout:", werr)
						os.Exit(1)
					}
				}
				<-tick.C
			}
		}()
	}
	wg.Wait() // never: the test kills the process
	return nil
}

// ensureEndpoint returns the app of the file, creating it and its endpoint
// on the first run (or on a run after one killed halfway through this).
func ensureEndpoint(ctx context.Context, d *convoy.Dispatcher, url string) (string, error) {
	apps, _, err := d.ListApps(ctx, convoy.Page{})
	if err != nil {
		return "", err
	}
	var app *convoy.App
	if len(apps) > 0 {
		app = apps[0]
	} else if app, err = d.CreateApp(ctx, convoy.App{Name: "crashtest"}); err != nil {
		return "", err
	}
	eps, _, err := d.ListEndpoints(ctx, app.ID, convoy.Page{})
	if err != nil {
		return "", err
	}
	if len(eps) == 0 {
		if _, err := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: url}); err != nil {
			return "", err
		}
	}
	return app.ID, nil
}

// waitSettled returns once no delivery of the store is pending.
func waitSettled(ctx context.Context, st convoy.Store) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		n, err := pending(ctx, st)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
	return nil
}

// pending counts the deliveries Scheduled, Processing or Retry.
func pending(ctx context.Context, st convoy.Store) (int, error) {
	apps, _, err := st.ListApps(ctx, convoy.Page{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, app := range apps {
		eps, _, err := st.ListEndpoints(ctx, app.ID, convoy.Page{})
		if err != nil {
			return 0, err
		}
		for _, ep := range eps {
			ds, _, err := st.ListDeliveries(ctx, convoy.DeliveryQuery{
				EndpointID: ep.ID,
				Statuses:   []convoy.DeliveryStatus{convoy.DeliveryScheduled, convoy.DeliveryProcessing, convoy.DeliveryRetry},
			}, convoy.Page{Limit: 1})
			if err != nil {
				return 0, err
			}
			n += len(ds)
		}
	}
	return n, nil
}
