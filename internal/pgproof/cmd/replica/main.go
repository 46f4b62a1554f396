// Command replica is the process the PostgreSQL proofs start, kill and
// restart: one replica of a service, running a convoy.Dispatcher on a
// store/postgres schema that other replicas share.
//
// Every request it sends carries an X-Proof-Process header with its -name,
// added by an HTTP transport of its own that dials loopback addresses only,
// so the receiver can tell which process made each attempt.
//
// Modes:
//
//   - default: deliver until standard input ends (then Close and exit 0),
//     or until killed. It prints "ready" once the dispatcher has started.
//   - -send N: also send events from N goroutines to the schema's first app
//     (creating it and one endpoint at -url on the first run) and print the
//     ID of each event, one line per event, only after Send returned it: a
//     line on stdout is an acknowledgement. Runs until killed.
//   - -drain: deliver until no delivery is Scheduled, Processing or Retry,
//     then exit 0.
//   - -sendtx APPID: send nothing through the dispatcher's own transaction:
//     begin a transaction, insert a row into the schema's orders table, call
//     convoy.SendTx in the same transaction, print "sent EVENTID", and wait,
//     with the transaction open, until killed.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/postgres"
)

// ProcessHeader carries the -name of the process that sent a request.
const ProcessHeader = "X-Proof-Process"

type config struct {
	dsn, schema, name, url string
	workers, perEndpoint   int
	timeout, lease, poll   time.Duration
	retryEvery             time.Duration
	retries                int
	send                   int
	interval               time.Duration
	drain                  bool
	sendTx                 string
	orderID                int64
}

func main() {
	var c config
	flag.StringVar(&c.dsn, "dsn", "", "PostgreSQL connection string")
	flag.StringVar(&c.schema, "schema", "", "store/postgres schema")
	flag.StringVar(&c.name, "name", "replica", "value of the X-Proof-Process header")
	flag.StringVar(&c.url, "url", "", "receiver URL of the endpoint -send creates")
	flag.IntVar(&c.workers, "workers", 8, "dispatcher workers")
	flag.IntVar(&c.perEndpoint, "per-endpoint", 8, "dispatcher PerEndpoint")
	flag.DurationVar(&c.timeout, "timeout", 2*time.Second, "dispatcher Timeout")
	flag.DurationVar(&c.lease, "lease", 4*time.Second, "dispatcher Lease")
	flag.DurationVar(&c.poll, "poll", time.Second, "dispatcher PollInterval")
	flag.DurationVar(&c.retryEvery, "retry-every", 100*time.Millisecond, "linear retry interval")
	flag.IntVar(&c.retries, "retries", 20, "linear retry limit")
	flag.IntVar(&c.send, "send", 0, "goroutines sending events (0: deliver only)")
	flag.DurationVar(&c.interval, "interval", 20*time.Millisecond, "pause between two sends of one goroutine")
	flag.BoolVar(&c.drain, "drain", false, "exit once no delivery is pending")
	flag.StringVar(&c.sendTx, "sendtx", "", "app ID: SendTx in an open transaction, then wait to be killed")
	flag.Int64Var(&c.orderID, "order", 1, "ID of the orders row -sendtx inserts")
	flag.Parse()
	if err := run(context.Background(), c); err != nil {
		fmt.Fprintln(os.Stderr, "replica:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	if c.dsn == "" || c.schema == "" {
		return errors.New("-dsn and -schema are required")
	}
	pool, err := pgxpool.New(ctx, c.dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	// Several replicas start at once on the same schema: Migrate takes an
	// advisory lock, so all but one find nothing to do.
	st, err := postgres.New(ctx, pool, &postgres.Options{Schema: c.schema, Migrate: true, Logger: logger()})
	if err != nil {
		return err
	}
	defer st.Close()
	d, err := convoy.New(convoy.Config{
		Store:        st,
		Workers:      c.workers,
		PerEndpoint:  c.perEndpoint,
		HTTPClient:   &http.Client{Transport: newTransport(c.name, c.workers, c.timeout)},
		Timeout:      c.timeout,
		Lease:        c.lease,
		Retry:        convoy.LinearRetry(c.retryEvery, c.retries),
		PollInterval: c.poll,
		// Endpoint URLs are checked against the SSRF guard when added, so
		// the receiver's address must be allowed there too.
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Logger:        logger(),
	})
	if err != nil {
		return err
	}
	if c.sendTx != "" {
		return sendTx(ctx, c, pool, d)
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = d.Close(cctx)
	}()
	switch {
	case c.drain:
		return waitSettled(ctx, st)
	case c.send > 0:
		appID, err := ensureEndpoint(ctx, d, c.url)
		if err != nil {
			return err
		}
		sendForever(ctx, d, appID, c.send, c.interval)
		return nil
	}
	if _, err := os.Stdout.WriteString("ready\n"); err != nil {
		return err
	}
	// Deliver until the parent closes standard input (or dies).
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// logger logs warnings and errors to standard error, where the tests look
// for panics and races.
func logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newTransport returns a transport that dials loopback addresses only and
// marks every request with the process name. Config.AllowNetworks does not
// apply to a client the caller supplies, so the guard is this dialer's.
func newTransport(name string, workers int, timeout time.Duration) http.RoundTripper {
	dialer := &net.Dialer{
		Timeout: timeout,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !ap.Addr().Unmap().IsLoopback() {
				return fmt.Errorf("replica: refusing to dial %s: not loopback", address)
			}
			return nil
		},
	}
	return &labelTransport{
		name: name,
		base: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			MaxIdleConns:          4 * workers,
			MaxIdleConnsPerHost:   workers,
			IdleConnTimeout:       30 * time.Second,
			ResponseHeaderTimeout: timeout,
		},
	}
}

// labelTransport adds ProcessHeader to every request.
type labelTransport struct {
	name string
	base http.RoundTripper
}

func (t *labelTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(ProcessHeader, t.name)
	return t.base.RoundTrip(r)
}

// sendForever sends events from n goroutines until the process is killed,
// writing each acknowledged event's ID on its own line.
func sendForever(ctx context.Context, d *convoy.Dispatcher, appID string, n int, interval time.Duration) {
	var out sync.Mutex
	var wg sync.WaitGroup
	for g := range n {
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
						fmt.Fprintln(os.Stderr, "replica: stdout:", werr)
						os.Exit(1)
					}
				}
				<-tick.C
			}
		}()
	}
	wg.Wait() // never: the test kills the process
}

// ensureEndpoint returns the schema's first app, creating it and its
// endpoint on the first run (or on a run after one killed halfway through
// this).
func ensureEndpoint(ctx context.Context, d *convoy.Dispatcher, url string) (string, error) {
	if url == "" {
		return "", errors.New("-send needs -url")
	}
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

// waitSettled returns once the store counts no delivery Scheduled,
// Processing or Retry.
func waitSettled(ctx context.Context, st convoy.Store) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		s, err := st.Stats(ctx, time.Now())
		if err != nil {
			return err
		}
		if s.Deliveries[convoy.DeliveryScheduled]+s.Deliveries[convoy.DeliveryProcessing]+s.Deliveries[convoy.DeliveryRetry] == 0 {
			return nil
		}
	}
	return nil
}

// sendTx writes an order and its webhook in one transaction, reports the
// event, and waits with the transaction open: the test kills the process
// before it can commit.
func sendTx(ctx context.Context, c config, pool *pgxpool.Pool, d *convoy.Dispatcher) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	orders := pgx.Identifier{c.schema, "orders"}.Sanitize()
	if _, err := tx.Exec(ctx, "INSERT INTO "+orders+" (id, note) VALUES ($1, $2)", c.orderID, "killed before commit"); err != nil {
		return err
	}
	data, _ := json.Marshal(map[string]int64{"order": c.orderID})
	res, err := convoy.SendTx(ctx, d, tx, c.sendTx, convoy.Event{Type: "order.created", Data: data})
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(os.Stdout, "sent %s\n", res.Event.ID); err != nil {
		return err
	}
	// Wait for the kill; standard input ending (the parent gone) rolls
	// back instead.
	_, _ = bufio.NewReader(os.Stdin).ReadString(0)
	return nil
}
