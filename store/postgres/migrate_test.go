package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/postgres"
	"github.com/convoykit/convoy/store/storetest"
)

// migrationsApplied lists the versions recorded in a schema.
func migrationsApplied(t *testing.T, pool *pgxpool.Pool, schema string) []int {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT version FROM `+pgx.Identifier{schema}.Sanitize()+`.schema_migrations ORDER BY version`)
	require.NoError(t, err)
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	return versions
}

// allVersions is every migration version of the package, 1 to the newest.
func allVersions() []int {
	var out []int
	for v := 1; v <= postgres.SchemaVersion(); v++ {
		out = append(out, v)
	}
	return out
}

// TestMigrateEmptyDatabaseTwice: the migrations apply to a database that
// has never seen convoy, and applying them again changes nothing.
func TestMigrateEmptyDatabaseTwice(t *testing.T) {
	ctx := t.Context()
	admin := testPool(t)
	db := "convoy_test_" + strings.TrimPrefix(freshSchema(t), "convoy_test_")
	_, err := admin.Exec(ctx, "CREATE DATABASE "+db)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
		require.NoError(t, err)
	})
	cfg := admin.Config().ConnConfig.Copy()
	cfg.Database = db
	dsn := "postgres://" + cfg.User + "@" + cfg.Host + ":" + itoa(int(cfg.Port)) + "/" + db + "?sslmode=disable&pool_max_conns=4"

	s, err := postgres.Open(ctx, dsn, &postgres.Options{Migrate: true})
	require.NoError(t, err)
	require.Equal(t, postgres.DefaultSchema, s.Schema())
	require.NoError(t, s.Migrate(ctx), "a second run")
	app := storetest.NewApp()
	require.NoError(t, s.CreateApp(ctx, app))
	require.NoError(t, s.Close())

	s, err = postgres.Open(ctx, dsn, &postgres.Options{Migrate: true})
	require.NoError(t, err, "a third, on open")
	_, err = s.GetApp(ctx, app.ID)
	require.NoError(t, err, "migrating again kept the data")
	require.NoError(t, s.Close())

	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	defer pool.Close()
	require.Equal(t, allVersions(), migrationsApplied(t, pool, postgres.DefaultSchema))
}

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		if n /= 10; n == 0 {
			return string(b)
		}
	}
}

// TestMigrateConcurrently: processes starting at once on a new schema all
// succeed, and the migrations are applied once.
func TestMigrateConcurrently(t *testing.T) {
	const starters = 6
	schema := freshSchema(t)
	var (
		wg   sync.WaitGroup
		errs = make(chan error, starters)
	)
	for range starters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A pool of its own: its own connections, like a process.
			pool, err := pgxpool.New(context.Background(), testDSN()+"&pool_max_conns=2")
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			s, err := postgres.New(context.Background(), pool, &postgres.Options{Schema: schema, Migrate: true})
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, allVersions(), migrationsApplied(t, testPool(t), schema))
}

// TestNewNeedsMigratedSchema: without Options.Migrate, New refuses a
// schema that is not up to date, and takes it once migrated.
func TestNewNeedsMigratedSchema(t *testing.T) {
	ctx := t.Context()
	schema := freshSchema(t)
	_, err := postgres.New(ctx, testPool(t), &postgres.Options{Schema: schema})
	require.ErrorIs(t, err, postgres.ErrNotMigrated)

	s := newStore(t, &postgres.Options{Schema: schema})
	require.NoError(t, s.Close())
	s, err = postgres.New(ctx, testPool(t), &postgres.Options{Schema: schema})
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

// TestSchemaOption: names are validated, used quoted (case kept), and
// two schemas of one database are two separate stores.
func TestSchemaOption(t *testing.T) {
	ctx := t.Context()
	for _, name := range []string{"a-b", "1abc", "pg_convoy", `x"; DROP TABLE y; --`, strings.Repeat("s", 64), "é"} {
		_, err := postgres.New(ctx, testPool(t), &postgres.Options{Schema: name, Migrate: true})
		require.ErrorIs(t, err, convoy.ErrInvalidConfig, "schema %q", name)
	}
	mixed := "Convoy_" + strings.TrimPrefix(freshSchema(t), "convoy_test_")
	t.Cleanup(func() {
		_, err := testPool(t).Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{mixed}.Sanitize()+" CASCADE")
		require.NoError(t, err)
	})
	a := newStore(t, &postgres.Options{Schema: mixed})
	b := newStore(t, nil)
	app := storetest.NewApp()
	require.NoError(t, a.CreateApp(ctx, app))
	_, err := b.GetApp(ctx, app.ID)
	require.ErrorIs(t, err, convoy.ErrNotFound, "another schema, another store")
	require.Equal(t, []int{1}, migrationsApplied(t, testPool(t), mixed)[:1])
}

// TestPoolOwnership: Close closes the pool Open made, not the one given
// to New, and calls after Close fail with ErrClosed.
func TestPoolOwnership(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, nil)
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Close(), convoy.ErrClosed)
	_, err := s.GetApp(ctx, convoy.NewID())
	require.ErrorIs(t, err, convoy.ErrClosed)
	require.NoError(t, testPool(t).Ping(ctx), "the caller's pool is still open")

	o, err := postgres.Open(ctx, testDSN(), &postgres.Options{Schema: s.Schema()})
	require.NoError(t, err)
	require.NoError(t, o.Close())
	_, err = postgres.Open(ctx, "postgres://nobody@127.0.0.1:1/none?connect_timeout=1", &postgres.Options{Schema: s.Schema()})
	require.Error(t, err)
	_, err = postgres.Open(ctx, "::not a dsn::", nil)
	require.ErrorIs(t, err, convoy.ErrInvalidConfig)
}
