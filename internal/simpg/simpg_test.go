package simpg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/sim"
	"github.com/convoykit/convoy/store/postgres"
)

var (
	flagSeed  = flag.Uint64("seed", 0, "replay this seed alone and print its trace")
	flagSeeds = flag.Int("seeds", 0, "how many seeds TestSimPostgres covers (0: 100; 30 under -short or -race)")
	flagFirst = flag.Uint64("first", 1, "the first seed TestSimPostgres covers")
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// defaultDSN is the database the tests use when CONVOY_TEST_POSTGRES is
// not set: the local server CI starts.
const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func dsn() string {
	if s := os.Getenv("CONVOY_TEST_POSTGRES"); s != "" {
		return s
	}
	return defaultDSN
}

// redacted returns a connection string fit for a message.
func redacted(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	return "(the key=value connection string of CONVOY_TEST_POSTGRES)"
}

// backend opens a fresh schema per run, on a pool of the run's own
// (made inside the run's synctest bubble, as everything of a run must
// be). The database outlives crashes: a crash drops one dispatcher.
type backend struct{ dsn string }

func (backend) Name() string { return "postgres" }

func (b backend) Open(testing.TB) (convoy.Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, b.dsn)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL connection string %s (set CONVOY_TEST_POSTGRES): %w", redacted(b.dsn), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("PostgreSQL is unreachable at %s: these tests need it (set CONVOY_TEST_POSTGRES): %w", redacted(b.dsn), err)
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	schema := "sim_" + hex.EncodeToString(r[:])
	st, err := postgres.New(ctx, pool, &postgres.Options{
		Schema: schema, Migrate: true, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &store{Store: st, pool: pool, schema: schema}, nil
}

func (backend) Reopen(_ testing.TB, st convoy.Store) (convoy.Store, error) { return st, nil }

func (backend) Restarts() bool { return false }

// store is the run's store; Close drops its schema and closes its pool.
type store struct {
	*postgres.Store
	pool   *pgxpool.Pool
	schema string
}

func (s *store) Close() error {
	err := s.Store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, e := s.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s.schema}.Sanitize()+" CASCADE"); e != nil && err == nil {
		err = e
	}
	s.pool.Close()
	return err
}

// scenario is the seed's, with several dispatchers running at once from
// the start: what a shared database is for.
func scenario(seed uint64) *sim.Scenario {
	sc := sim.Generate(seed, "postgres")
	sc.Dispatchers = max(sc.Dispatchers, 2)
	sc.Initial = max(sc.Initial, 2)
	return sc
}

func run(t *testing.T, seed uint64) *sim.Result {
	t.Helper()
	o := sim.Options{Backend: backend{dsn: dsn()}}
	res := sim.Run(t, scenario(seed), o)
	if res.Failure != nil {
		var b strings.Builder
		fmt.Fprintf(&b, "seed %d FAILS %s\n", seed, res.Failure)
		skip, small := sim.Shrink(t, res, o, 40)
		if small != res {
			fmt.Fprintf(&b, "shrunk to steps %s, failing with: %s\n", sim.Kept(skip), small.Failure)
		}
		fmt.Fprintf(&b, "replay: cd internal/simpg && go test -run 'TestSimPostgres$' -seed=%d\n", seed)
		b.WriteString(strings.Join(small.Minimal(), "\n"))
		t.Error(b.String())
	}
	return res
}

func seedCount() int {
	switch {
	case *flagSeeds > 0:
		return *flagSeeds
	case testing.Short() || raceEnabled:
		return 30
	}
	return 100
}

// TestSimPostgres runs the simulation's seeds on PostgreSQL, two or three
// dispatchers at once on one schema. With -seed it replays one.
func TestSimPostgres(t *testing.T) {
	if *flagSeed != 0 {
		if res := run(t, *flagSeed); res.Failure == nil {
			t.Log(strings.Join(res.Trace, "\n"))
		}
		return
	}
	n := seedCount()
	start := time.Now()
	shards := runtime.GOMAXPROCS(0)
	t.Run("seeds", func(t *testing.T) {
		for k := range shards {
			t.Run(fmt.Sprintf("shard%d", k), func(t *testing.T) {
				t.Parallel()
				for i := k; i < n; i += shards {
					seed := *flagFirst + uint64(i)
					t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { run(t, seed) })
				}
			})
		}
	})
	t.Logf("simpg: %d seeds in %s", n, time.Since(start).Round(time.Millisecond))
}

// TestDeterminismPostgres runs seeds twice on PostgreSQL and requires the
// same trace.
func TestDeterminismPostgres(t *testing.T) {
	if *flagSeed != 0 {
		t.Skip("-seed replays one seed (TestSimPostgres)")
	}
	for _, seed := range []uint64{2, 7, 42} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			o := sim.Options{Backend: backend{dsn: dsn()}}
			a := sim.Run(t, scenario(seed), o)
			b := sim.Run(t, scenario(seed), o)
			if a.Hash == b.Hash {
				return
			}
			for i := range max(len(a.Trace), len(b.Trace)) {
				x, y := "(end)", "(end)"
				if i < len(a.Trace) {
					x = a.Trace[i]
				}
				if i < len(b.Trace) {
					y = b.Trace[i]
				}
				if x != y {
					t.Fatalf("seed %d: two runs differ at line %d of the trace:\n  %s\n  %s", seed, i, x, y)
				}
			}
		})
	}
}
