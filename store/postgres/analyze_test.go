package postgres_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestYoungTablesAreAnalyzed: a store whose queue fills from empty
// analyzes its tables itself once it has inserted 1,000 deliveries, so
// the plans its connections cached while the tables were nearly empty
// (sequential scans) are made again for their size, without waiting for
// autovacuum. last_analyze is set by ANALYZE only; autovacuum sets
// last_autoanalyze.
func TestYoungTablesAreAnalyzed(t *testing.T) {
	s := newStore(t, nil)
	f := setup(t, s, 10)
	stats := func() (analyzed map[string]bool, tuples float64) {
		analyzed = map[string]bool{}
		rows, err := testPool(t).Query(f.ctx, `
			SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables
			 WHERE schemaname = $1 AND relname IN ('events', 'deliveries', 'attempts')`, s.Schema())
		require.NoError(t, err)
		for rows.Next() {
			var (
				name string
				done bool
			)
			require.NoError(t, rows.Scan(&name, &done))
			analyzed[name] = done
		}
		require.NoError(t, rows.Err())
		require.NoError(t, testPool(t).QueryRow(f.ctx, `SELECT reltuples FROM pg_class
			WHERE oid = to_regclass(quote_ident($1) || '.deliveries')`, s.Schema()).Scan(&tuples))
		return analyzed, tuples
	}

	for range 99 {
		f.send(t0, 10)
	}
	analyzed, tuples := stats()
	require.Equal(t, map[string]bool{"events": false, "deliveries": false, "attempts": false}, analyzed,
		"analyzed before the first 1,000 deliveries")
	require.Negative(t, tuples, "deliveries analyzed before the first 1,000")

	f.send(t0, 10) // the 1,000th
	require.Eventually(t, func() bool {
		analyzed, tuples = stats()
		return analyzed["deliveries"] && analyzed["events"] && analyzed["attempts"]
	}, 10*time.Second, 10*time.Millisecond, "tables analyzed: %v", analyzed)
	require.GreaterOrEqual(t, tuples, 1000.0, "deliveries' row estimate after ANALYZE")
}
