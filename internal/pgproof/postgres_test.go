package pgproof

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy/store/postgres"
)

// defaultDSN is the database the tests use when CONVOY_TEST_POSTGRES is
// not set: the local server CI starts.
const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// dsn returns the connection string of the test database.
func dsn() string {
	if s := os.Getenv("CONVOY_TEST_POSTGRES"); s != "" {
		return s
	}
	return defaultDSN
}

// redacted returns a connection string fit for a message: a URL without
// its password, or a mention of a key=value string.
func redacted(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	return "(the key=value connection string of CONVOY_TEST_POSTGRES)"
}

// database is a fresh schema of the test's own, with a pool to reach it.
type database struct {
	dsn    string
	schema string
	pool   *pgxpool.Pool
}

// newDatabase connects to the test database, failing the test loudly when
// it cannot (these tests never skip), and names a fresh schema that is
// dropped, with everything in it, when the test ends.
func newDatabase(t *testing.T) *database {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn())
	require.NoError(t, err, "PostgreSQL connection string %s (set CONVOY_TEST_POSTGRES)", redacted(dsn()))
	t.Cleanup(pool.Close)
	require.NoError(t, pool.Ping(ctx), "PostgreSQL is unreachable at %s: these tests need it (set CONVOY_TEST_POSTGRES)", redacted(dsn()))

	var b [6]byte
	_, _ = rand.Read(b[:])
	db := &database{dsn: dsn(), schema: "t_" + hex.EncodeToString(b[:]), pool: pool}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+db.ident()+" CASCADE")
		require.NoError(t, err)
	})
	return db
}

// ident is the schema's quoted name.
func (db *database) ident() string { return pgx.Identifier{db.schema}.Sanitize() }

// open returns a Store on the schema (migrating it), closed when the test
// ends (before the schema is dropped).
func (db *database) open(t *testing.T) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := postgres.New(ctx, db.pool, &postgres.Options{Schema: db.schema, Migrate: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// eventually polls cond every `every` until it holds, failing the test
// with the message of the last poll once d has passed.
func eventually(t *testing.T, d, every time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, msg)
		}
		<-tick.C
	}
}

// dsnFor returns the connection string for a process called name: its
// sessions carry an application_name of their own, which sessionsGone
// looks for.
func (db *database) dsnFor(name string) string {
	return withAppName(db.dsn, db.appName(name))
}

func (db *database) appName(name string) string { return "pgproof-" + db.schema + "-" + name }

// sessionsGone waits until PostgreSQL has ended every session of the
// process called name. A killed process's last statements may still be
// running on the server (a claim or a commit it sent just before it
// died): only once its sessions are gone is what it did final.
func (db *database) sessionsGone(t *testing.T, name string) {
	t.Helper()
	eventually(t, 20*time.Second, 10*time.Millisecond, func() (bool, string) {
		var n int
		require.NoError(t, db.pool.QueryRow(context.Background(),
			"SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", db.appName(name)).Scan(&n))
		return n == 0, fmt.Sprintf("%d sessions of %s still open", n, name)
	})
}

// withAppName adds application_name to a connection string (URL or
// key=value form).
func withAppName(dsn, name string) string {
	if strings.Contains(dsn, "://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + "application_name=" + name
	}
	return dsn + " application_name=" + name
}
