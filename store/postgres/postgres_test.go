package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"

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
	s, err := postgres.New(tb.Context(), testPool(tb), &o)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = s.Close() })
	return s
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
