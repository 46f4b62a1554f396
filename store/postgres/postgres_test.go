package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/postgres"
	"github.com/convoykit/convoy/store/storetest"
)

// defaultDSN is the test database when CONVOY_TEST_POSTGRES is not set.
const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// startHint tells how to start the local PostgreSQL the tests expect.
const startHint = "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start " +
	"(or point CONVOY_TEST_POSTGRES at another database)"

var shared struct {
	once sync.Once
	pool *pgxpool.Pool
	err  error
}

// testDSN is the connection string of the test database.
func testDSN() string {
	if dsn := os.Getenv("CONVOY_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return defaultDSN
}

// testPool returns the pool the tests share: each test works in its own
// schema, and sharing the connections keeps the parallel suite under
// PostgreSQL's max_connections. It fails the test when the database is
// unreachable; the PostgreSQL tests never skip.
func testPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	shared.once.Do(func() {
		cfg, err := pgxpool.ParseConfig(testDSN())
		if err != nil {
			shared.err = err
			return
		}
		cfg.MaxConns = 24
		ctx := context.Background()
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err == nil {
			if err = pool.Ping(ctx); err != nil {
				pool.Close()
			}
		}
		shared.pool, shared.err = pool, err
	})
	if shared.err != nil {
		tb.Fatalf("PostgreSQL at %s is not reachable: %v\n%s", testDSN(), shared.err, startHint)
	}
	return shared.pool
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.pool != nil {
		shared.pool.Close()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// freshSchema returns the name of a schema no other test uses, dropped
// with everything in it when the test ends.
func freshSchema(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "convoy_test_" + hex.EncodeToString(b[:])
	pool := testPool(tb)
	tb.Cleanup(func() {
		_, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
		require.NoError(tb, err)
	})
	return name
}

// claimLockWaiters counts the sessions waiting for one of the endpoint
// locks Claim and InsertEventClaim take in schema (the claim function's
// lock space; see migration 2).
func claimLockWaiters(tb testing.TB, schema string) int {
	tb.Helper()
	var n int
	require.NoError(tb, testPool(tb).QueryRow(tb.Context(), `SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND NOT granted AND classid = hashtext('convoy.claim:' || $1)::oid`, schema).Scan(&n))
	return n
}

// newStore returns a Store on a fresh, migrated schema of the shared
// pool, closed when the test ends (before its schema is dropped).
func newStore(tb testing.TB, opts *postgres.Options) *postgres.Store {
	tb.Helper()
	var o postgres.Options
	if opts != nil {
		o = *opts
	}
	if o.Schema == "" {
		o.Schema = freshSchema(tb)
	}
	o.Migrate = true
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(testWriter{tb}, nil))
	}
	s, err := postgres.New(tb.Context(), testPool(tb), &o)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// testWriter routes a store's log to the test's.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestStore runs the conformance suite, each subtest on a fresh schema.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) convoy.Store { return newStore(t, nil) })
}

// TestStoreWithoutGroupCommit runs the suite with every Record and
// Release in its own transaction.
func TestStoreWithoutGroupCommit(t *testing.T) {
	storetest.Run(t, func(t *testing.T) convoy.Store { return newStore(t, &postgres.Options{RecordBatch: 1}) })
}

// t0 is "now" in the backend tests.
var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// fixture is a store with one app and its endpoints.
type fixture struct {
	t   testing.TB
	s   *postgres.Store
	ctx context.Context
	app *convoy.App
	eps []*convoy.Endpoint
}

// setup creates an app with n endpoints in s.
func setup(tb testing.TB, s *postgres.Store, n int) *fixture {
	tb.Helper()
	f := &fixture{t: tb, s: s, ctx: tb.Context(), app: storetest.NewApp()}
	require.NoError(tb, s.CreateApp(f.ctx, f.app))
	for range n {
		ep := storetest.NewEndpoint(f.app.ID)
		ep.EventTypes = nil
		require.NoError(tb, s.CreateEndpoint(f.ctx, ep))
		f.eps = append(f.eps, ep)
	}
	return f
}

// send inserts one event due at `at` with n deliveries spread over eps.
func (f *fixture) send(at time.Time, n int, eps ...*convoy.Endpoint) []*convoy.Delivery {
	f.t.Helper()
	if len(eps) == 0 {
		eps = f.eps
	}
	ev := storetest.NewEvent(f.app.ID, at)
	ds := make([]*convoy.Delivery, n)
	for i := range ds {
		ds[i] = storetest.NewDelivery(ev, eps[i%len(eps)].ID)
	}
	res, err := f.s.InsertEvent(f.ctx, ev, ds)
	require.NoError(f.t, err)
	require.Len(f.t, res.Deliveries, n)
	return ds
}

// claim claims up to limit deliveries at now for an hour.
func (f *fixture) claim(now time.Time, limit int) []*convoy.Delivery {
	f.t.Helper()
	ds, err := f.s.Claim(f.ctx, convoy.ClaimRequest{Now: now, Limit: limit, Owner: "worker-1", Lease: time.Hour})
	require.NoError(f.t, err)
	return ds
}

func (f *fixture) get(id string) *convoy.Delivery {
	f.t.Helper()
	d, err := f.s.GetDelivery(f.ctx, id)
	require.NoError(f.t, err)
	return d
}

func (f *fixture) endpoint(id string) *convoy.Endpoint {
	f.t.Helper()
	ep, err := f.s.GetEndpoint(f.ctx, id)
	require.NoError(f.t, err)
	return ep
}

// failed is a transition of the claimed c to Retry after an attempt
// answered 503.
func failed(c *convoy.Delivery, now time.Time) convoy.Transition {
	return convoy.Transition{
		DeliveryID: c.ID, LeaseID: c.LeaseID, Now: now, Status: convoy.DeliveryRetry,
		NextAttemptAt: now.Add(time.Minute), Attempt: storetest.NewAttempt(c, c.Attempts+1, 503, now),
	}
}

// succeeded is a transition of the claimed c to Success.
func succeeded(c *convoy.Delivery, now time.Time) convoy.Transition {
	return convoy.Transition{
		DeliveryID: c.ID, LeaseID: c.LeaseID, Now: now, Status: convoy.DeliverySuccess,
		Attempt: storetest.NewAttempt(c, c.Attempts+1, 200, now),
	}
}

// newEvent returns an event of the fixture's app due at t0 with one
// Scheduled delivery per endpoint, not stored yet.
func newEvent(f *fixture) (*convoy.Event, []*convoy.Delivery) {
	ev := storetest.NewEvent(f.app.ID, t0)
	ds := make([]*convoy.Delivery, len(f.eps))
	for i, ep := range f.eps {
		ds[i] = storetest.NewDelivery(ev, ep.ID)
	}
	return ev, ds
}
