// Command replicas runs convoy the way a service with several replicas
// does: every replica opens the same PostgreSQL schema with
// store/postgres, migrates it (safely, all at once) and runs a dispatcher;
// any replica may send, any replica may deliver. Orders are written with
// their webhook in one transaction (convoy.SendTx), so a webhook goes out
// exactly when its order commits: the order that is rolled back sends
// nothing.
//
// Here the three replicas are goroutines of one program, each with its
// own connection pool, store and dispatcher, as separate processes would
// have; a local receiver verifies every signature and prints what it got.
//
//	go run ./examples/replicas -dsn postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
//
// The DSN defaults to $DATABASE_URL, or the local server above. The example
// works in its own schema (-schema, default convoy_replicas_example), which
// holds convoy's tables and the example's orders table side by side, and
// drops it at the end unless -keep is set.
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
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/postgres"
)

// defaultDSN is the local server the example expects when neither -dsn nor
// $DATABASE_URL says otherwise.
const defaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// options are the example's flags.
type options struct {
	dsn      string
	schema   string
	replicas int
	keep     bool
}

func main() {
	var o options
	flag.StringVar(&o.dsn, "dsn", "", "PostgreSQL connection string (default $DATABASE_URL, or "+defaultDSN+")")
	flag.StringVar(&o.schema, "schema", "convoy_replicas_example", "schema for convoy's tables and the orders table")
	flag.IntVar(&o.replicas, "replicas", 3, "dispatchers sharing the schema")
	flag.BoolVar(&o.keep, "keep", false, "keep the schema at the end, to look at it with psql")
	flag.Parse()
	if o.dsn == "" {
		o.dsn = os.Getenv("DATABASE_URL")
	}
	if o.dsn == "" {
		o.dsn = defaultDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout, o); err != nil {
		log.Fatal(err)
	}
}

// replica is what each process of the service holds: its own pool, a
// store on the shared schema, and a dispatcher.
type replica struct {
	name  string
	pool  *pgxpool.Pool
	store *postgres.Store
	d     *convoy.Dispatcher
}

// order is a row of the example's own table.
type order struct {
	ID       int64  `json:"id"`
	Customer string `json:"customer"`
	Cents    int64  `json:"total_cents"`
}

func run(ctx context.Context, out io.Writer, o options) error {
	if o.replicas < 1 {
		return errors.New("-replicas must be at least 1")
	}
	schema := pgx.Identifier{o.schema}.Sanitize()

	// The customer's receiver. It is created before the app, so its
	// verifier gets the app's secret once there is one.
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()

	// 1. Every replica connects and migrates at once: Migrate takes an
	// advisory lock, so one applies the migrations and the others find
	// nothing left to do. (Options.Migrate does the same inside New.)
	delivered := &deliveries{byReplica: map[string]int{}}
	replicas := make([]*replica, o.replicas)
	var wg sync.WaitGroup
	errs := make([]error, o.replicas)
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replicas[i], errs[i] = startReplica(ctx, o, fmt.Sprintf("replica-%d", i+1), delivered)
		}()
	}
	wg.Wait()
	defer func() {
		for _, r := range replicas {
			if r != nil {
				r.close()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if !o.keep {
		defer func() {
			// The example's schema, convoy's tables and the orders with it.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if _, err := replicas[0].pool.Exec(cctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
				fmt.Fprintf(out, "dropping schema %s: %v\n", o.schema, err)
			}
		}()
	}
	fmt.Fprintf(out, "%d replicas migrated schema %s at once (schema version %d)\n", o.replicas, o.schema, postgres.SchemaVersion())

	// 2. The service's own table, beside convoy's.
	web := replicas[0]
	if _, err := web.pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+schema+`.orders (
		id          bigserial PRIMARY KEY,
		customer    text NOT NULL,
		total_cents bigint NOT NULL
	)`); err != nil {
		return err
	}

	// 3. A customer (app) with its endpoint; any replica can do this.
	app, err := web.d.CreateApp(ctx, convoy.App{Name: "Acme Corp"})
	if err != nil {
		return err
	}
	rc.setSecret(app.Secrets[0].Value)
	if _, err := web.d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: srv.URL + "/webhooks"}); err != nil {
		return err
	}

	// 4. Orders and their webhooks, each in one transaction. The fourth
	// order's payment is declined after its webhook was written: the
	// rollback takes both away.
	type placed struct {
		order order
		event string
	}
	var committed []placed
	var rolledBack []string
	for i, p := range []struct {
		customer string
		cents    int64
		declined bool
	}{
		{"alice", 1250, false}, {"bob", 4999, false}, {"carol", 300, false},
		{"mallory", 99999, true},
		{"dave", 1800, false}, {"erin", 7200, false},
	} {
		// Orders go in through every replica in turn, as a load balancer
		// would spread them.
		r := replicas[i%len(replicas)]
		ord, ev, err := placeOrder(ctx, r, schema, app.ID, p.customer, p.cents, p.declined)
		switch {
		case errors.Is(err, errDeclined):
			rolledBack = append(rolledBack, ev)
			fmt.Fprintf(out, "order for %s: payment declined, rolled back (its webhook, event %s, went with it)\n", p.customer, short(ev))
		case err != nil:
			return err
		default:
			committed = append(committed, placed{ord, ev})
			fmt.Fprintf(out, "order %d for %s committed through %s with event %s\n", ord.ID, ord.Customer, r.name, short(ev))
		}
	}

	// 5. Wait until every committed order's webhook has arrived and its
	// delivery is recorded.
	var ids []string
	for _, c := range committed {
		ids = append(ids, c.event)
	}
	if err := waitDelivered(ctx, web.d, ids, rc, delivered); err != nil {
		return err
	}

	// The rolled back order left nothing: no row, no event.
	for _, ev := range rolledBack {
		if _, _, err := web.d.GetEvent(ctx, ev); !errors.Is(err, convoy.ErrNotFound) {
			return fmt.Errorf("rolled back event %s: %v", ev, err)
		}
	}
	var rows int
	if err := web.pool.QueryRow(ctx, "SELECT count(*) FROM "+schema+".orders").Scan(&rows); err != nil {
		return err
	}

	fmt.Fprintln(out, "the receiver got (signatures verified):")
	for _, g := range rc.got() {
		fmt.Fprintf(out, "  %s order %d for %s, %d.%02d, delivery %s, delivered by %s\n",
			g.eventType, g.order.ID, g.order.Customer, g.order.Cents/100, g.order.Cents%100, short(g.delivery), delivered.by(g.delivery))
	}
	for _, ev := range rolledBack {
		if rc.has(ev) {
			return fmt.Errorf("the rolled back event %s was delivered", ev)
		}
	}
	fmt.Fprintf(out, "orders table: %d rows; rolled back orders delivered: 0\n", rows)
	fmt.Fprintf(out, "delivered: %d of %d committed orders; by replica: %s\n", len(rc.got()), len(committed), delivered.summary(replicas))
	return nil
}

// startReplica is what each replica does at start-up.
func startReplica(ctx context.Context, o options, name string, delivered *deliveries) (*replica, error) {
	pool, err := pgxpool.New(ctx, o.dsn)
	if err != nil {
		return nil, err
	}
	r := &replica{name: name, pool: pool}
	if err := pool.Ping(ctx); err != nil {
		r.close()
		cfg := pool.Config().ConnConfig
		return nil, fmt.Errorf("%s: PostgreSQL at %s:%d: %w", name, cfg.Host, cfg.Port, err)
	}
	r.store, err = postgres.New(ctx, pool, &postgres.Options{Schema: o.schema, Migrate: true})
	if err != nil {
		r.close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	r.d, err = convoy.New(convoy.Config{
		Store: r.store,
		// The receiver runs on this machine, which the SSRF guard refuses
		// unless allowed.
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnAttempt: func(e convoy.AttemptEvent) {
			if e.Delivery.Status == convoy.DeliverySuccess {
				delivered.add(e.Delivery.ID, name)
			}
		},
	})
	if err != nil {
		r.close()
		return nil, err
	}
	if err := r.d.Start(ctx); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// close stops the replica as a deploy does: the dispatcher stops
// claiming and finishes what it started; what it had not started stays in
// the database for the other replicas.
func (r *replica) close() {
	if r.d != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = r.d.Close(ctx)
		cancel()
	}
	if r.store != nil {
		_ = r.store.Close()
	}
	r.pool.Close()
}

// errDeclined is the business failure that rolls an order back.
var errDeclined = errors.New("payment declined")

// placeOrder inserts an order and sends its webhook in the same
// transaction. It returns the order and the event ID; with declined the
// transaction is rolled back after both were written, and it returns
// errDeclined with the event ID that never existed.
func placeOrder(ctx context.Context, r *replica, schema, appID, customer string, cents int64, declined bool) (order, string, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return order{}, "", err
	}
	defer tx.Rollback(ctx) // a no-op once committed

	ord := order{Customer: customer, Cents: cents}
	if err := tx.QueryRow(ctx, "INSERT INTO "+schema+".orders (customer, total_cents) VALUES ($1, $2) RETURNING id",
		customer, cents).Scan(&ord.ID); err != nil {
		return order{}, "", err
	}
	data, _ := json.Marshal(ord)
	res, err := convoy.SendTx(ctx, r.d, tx, appID, convoy.Event{Type: "order.created", Data: data})
	if err != nil {
		return order{}, "", err
	}
	if declined {
		return order{}, res.Event.ID, errDeclined // the deferred Rollback
	}
	// The webhook becomes deliverable at this commit, and every replica's
	// dispatcher is woken by it.
	return ord, res.Event.ID, tx.Commit(ctx)
}

// waitDelivered waits until each event's delivery is Success, has reached
// the receiver, and its replica's OnAttempt hook has run.
func waitDelivered(ctx context.Context, d *convoy.Dispatcher, events []string, rc *receiver, delivered *deliveries) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		done := 0
		for _, id := range events {
			_, ds, err := d.GetEvent(ctx, id)
			if err != nil {
				return err
			}
			if len(ds) > 0 && !slices.ContainsFunc(ds, func(dl *convoy.Delivery) bool { return dl.Status != convoy.DeliverySuccess }) {
				done++
			}
		}
		if done == len(events) && len(rc.got()) >= len(events) && delivered.count() >= len(events) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d webhooks delivered: %w", done, len(events), ctx.Err())
		case <-tick.C:
		}
	}
}

// receiver is the customer's endpoint: it verifies each signature and
// keeps what it got.
type receiver struct {
	mu       sync.Mutex
	verifier *convoy.Verifier
	items    []received
}

type received struct {
	eventType, event, delivery string
	order                      order
}

func (rc *receiver) setSecret(s convoy.SecretValue) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.verifier = &convoy.Verifier{Secrets: []convoy.SecretValue{s}}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	v := rc.verifier
	rc.mu.Unlock()
	if v == nil {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	body, err := v.VerifyRequest(r)
	if err != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ord order
	if err := json.Unmarshal(body, &ord); err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	id := r.Header.Get(convoy.HeaderDeliveryID)
	// At least once: a retried delivery may arrive twice; keep the first.
	if !slices.ContainsFunc(rc.items, func(g received) bool { return g.delivery == id }) {
		rc.items = append(rc.items, received{
			eventType: r.Header.Get(convoy.HeaderEventType), event: r.Header.Get(convoy.HeaderEventID),
			delivery: id, order: ord,
		})
	}
	w.WriteHeader(http.StatusNoContent)
}

// got returns what arrived, by order ID.
func (rc *receiver) got() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := slices.Clone(rc.items)
	sort.Slice(out, func(i, j int) bool { return out[i].order.ID < out[j].order.ID })
	return out
}

// has reports whether the event arrived.
func (rc *receiver) has(event string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.ContainsFunc(rc.items, func(g received) bool { return g.event == event })
}

// deliveries records which replica delivered what, from OnAttempt.
type deliveries struct {
	mu        sync.Mutex
	byID      map[string]string
	byReplica map[string]int
}

func (d *deliveries) add(id, replica string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byID == nil {
		d.byID = map[string]string{}
	}
	d.byID[id] = replica
	d.byReplica[replica]++
}

func (d *deliveries) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.byID)
}

func (d *deliveries) by(id string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.byID[id]; ok {
		return r
	}
	return "?"
}

func (d *deliveries) summary(replicas []*replica) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var parts []string
	for _, r := range replicas {
		parts = append(parts, fmt.Sprintf("%s=%d", r.name, d.byReplica[r.name]))
	}
	return strings.Join(parts, " ")
}

// short abbreviates an ID for display.
func short(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}
