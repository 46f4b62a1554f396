package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/bolt"
	"github.com/convoykit/convoy/store/memory"
)

const eventType = "bench.event"

// quietLogger logs warnings and errors only, to standard error.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// loopback is what the SSRF guard must let through to reach the receiver.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// dispatcherConfig is the configuration every convoy row uses.
func dispatcherConfig(o *options, st convoy.Store) convoy.Config {
	return convoy.Config{
		Store:         st,
		Workers:       o.concurrency,
		PerEndpoint:   o.concurrency, // one receiver endpoint may use them all
		AllowNetworks: loopback,
		Logger:        quietLogger(),
	}
}

// newTarget creates an app with one endpoint, the receiver, whose requests
// carry the run name.
func newTarget(ctx context.Context, d *convoy.Dispatcher, base, run string) (*convoy.App, *convoy.Endpoint, error) {
	app, err := d.CreateApp(ctx, convoy.App{Name: "bench " + run})
	if err != nil {
		return nil, nil, fmt.Errorf("create app: %w", err)
	}
	ep, err := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{
		URL:     base + "/hook",
		Headers: map[string]string{runHeader: run},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("add endpoint: %w", err)
	}
	return app, ep, nil
}

// openStore opens the store of the configuration: memory, or bolt in a
// new file under o.dir with default options.
func openStore(o *options) (convoy.Store, string, error) {
	if o.mode == "memory" {
		return memory.New(), "", nil
	}
	dir, err := os.MkdirTemp(o.dir, "bolt-")
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, "convoy.db")
	st, err := bolt.Open(path, nil)
	return st, path, err
}

// runConvoy measures one store: a saturated run, then a run paced at half
// the deliveries/s the saturated run reached, both in this process. Each
// run gets a new store and dispatcher, so the paced run's latency is not
// that of a store holding the saturated run's history.
func runConvoy(ctx context.Context, o *options, ctl *control) (*childResult, error) {
	res := &childResult{}
	tmpl, err := bodyTemplate(o.bodySize)
	if err != nil {
		return res, err
	}
	run := o.runID + "-" + o.mode
	sat, err := convoyPhase(ctx, o, ctl, true, phase{
		name: o.mode, run: run, n: o.n, senders: o.senders, tmpl: tmpl, drain: o.drainTimeout,
	})
	res.Rows = append(res.Rows, sat)
	if err != nil {
		return res, err
	}
	rate := sat.DelivPerSec / 2
	half, err := convoyPhase(ctx, o, ctl, false, phase{
		name: o.mode + " @ half rate", run: run + "-half", n: max(10, int(rate*o.pacedTime.Seconds())),
		senders: o.senders, rate: rate, tmpl: tmpl, drain: o.drainTimeout,
	})
	res.Rows = append(res.Rows, half)
	if err != nil {
		return res, err
	}
	low, err := convoyPhase(ctx, o, ctl, false, lowPhase(o, run, tmpl))
	res.Rows = append(res.Rows, low)
	return res, err
}

// lowPhase is the run paced at lowRate, the light load most services see,
// where the latency target is tight.
func lowPhase(o *options, run string, tmpl []byte) phase {
	return phase{
		name: o.mode + lowSuffix, run: run + "-low", n: max(10, int(lowRate*o.pacedTime.Seconds())),
		senders: o.senders, rate: lowRate, tmpl: tmpl, drain: o.drainTimeout,
	}
}

// convoyPhase measures p on a new store and dispatcher, closed after;
// with heap set it writes the -memprofile heap profile before closing.
func convoyPhase(ctx context.Context, o *options, ctl *control, heap bool, p phase) (rowResult, error) {
	row := rowResult{Name: p.name}
	st, path, err := openStore(o)
	if err != nil {
		return row, err
	}
	defer func() {
		_ = st.Close()
		if path != "" {
			_ = os.RemoveAll(filepath.Dir(path))
		}
	}()
	d, err := convoy.New(dispatcherConfig(o, st))
	if err != nil {
		return row, err
	}
	if err := d.Start(ctx); err != nil {
		return row, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = d.Close(cctx)
	}()
	app, _, err := newTarget(ctx, d, o.receiver, p.run)
	if err != nil {
		return row, err
	}
	p.send = func(ctx context.Context, body []byte) error {
		_, err := d.Send(ctx, app.ID, convoy.Event{Type: eventType, Data: body})
		return err
	}
	row, err = measure(ctx, ctl, p)
	if heap {
		writeHeapProfile(o)
	}
	return row, err
}
