package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy/store/postgres"
)

// vacuumCount is how many times deliveries was vacuumed by a VACUUM
// command (autovacuum counts apart).
func vacuumCount(t *testing.T, s *postgres.Store) int64 {
	t.Helper()
	var n int64
	require.NoError(t, testPool(t).QueryRow(t.Context(), `
		SELECT vacuum_count FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'deliveries'`,
		s.Schema()).Scan(&n))
	return n
}

// churn sends n deliveries, claims them and records them delivered: the
// dead rows a queue leaves behind.
func churn(t *testing.T, f *fixture, n int) {
	t.Helper()
	f.send(t0, n)
	for done := 0; done < n; {
		ds := f.claim(t0, n-done)
		require.NotEmpty(t, ds)
		for _, d := range ds {
			_, err := f.s.Record(f.ctx, succeeded(d, t0))
			require.NoError(t, err)
		}
		done += len(ds)
	}
}

// TestDeliveriesAreVacuumed: a store that records enough deliveries
// vacuums the deliveries table itself, without waiting for autovacuum.
// The statistics system reports dead rows a moment after the commits
// that made them, so the queue goes on moving until the VACUUM came.
func TestDeliveriesAreVacuumed(t *testing.T) {
	s := newStore(t, nil)
	postgres.SetVacuumThresholds(s, 20, 100)
	f := setup(t, s, 2)
	require.Zero(t, vacuumCount(t, s))
	require.Eventually(t, func() bool {
		churn(t, f, 40)
		return vacuumCount(t, s) > 0
	}, 30*time.Second, 100*time.Millisecond, "deliveries never vacuumed by the store")
}

// TestNoVacuumLeavesDeliveriesToAutovacuum: with Options.NoVacuum the
// store never asks for a vacuum, however many deliveries go through; by
// default it asks at every vacuumCheck of them.
func TestNoVacuumLeavesDeliveriesToAutovacuum(t *testing.T) {
	for _, off := range []bool{true, false} {
		s := newStore(t, &postgres.Options{NoVacuum: off})
		postgres.SetVacuumThresholds(s, 20, 1<<30) // asks, never vacuums
		churn(t, setup(t, s, 2), 100)
		if off {
			require.Zero(t, postgres.VacuumWakes(s), "NoVacuum")
		} else {
			require.EqualValues(t, 5, postgres.VacuumWakes(s), "one per 20 deliveries recorded")
		}
	}
}

// TestVacuumTakesTurns: processes sharing a schema vacuum one at a time:
// while another session holds the schema's vacuum lock, the check does
// nothing; once it is free, the dead rows are vacuumed.
func TestVacuumTakesTurns(t *testing.T) {
	s := newStore(t, &postgres.Options{NoVacuum: true})
	postgres.SetVacuumThresholds(s, 20, 100)
	churn(t, setup(t, s, 2), 300)

	other, err := testPool(t).Acquire(t.Context())
	require.NoError(t, err)
	defer other.Release()
	_, err = other.Exec(t.Context(), `SELECT pg_advisory_lock(hashtext('convoy.vacuum:' || $1))`, s.Schema())
	require.NoError(t, err)
	vacuumed, err := postgres.VacuumIfDead(t.Context(), s)
	require.NoError(t, err)
	require.False(t, vacuumed, "vacuumed while another process held the lock")

	_, err = other.Exec(t.Context(), `SELECT pg_advisory_unlock(hashtext('convoy.vacuum:' || $1))`, s.Schema())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		vacuumed, err = postgres.VacuumIfDead(t.Context(), s)
		require.NoError(t, err)
		return vacuumed
	}, 30*time.Second, 100*time.Millisecond, "the dead rows were never vacuumed")
	require.EqualValues(t, 1, vacuumCount(t, s))

	vacuumed, err = postgres.VacuumIfDead(t.Context(), s)
	require.NoError(t, err)
	require.False(t, vacuumed, "vacuumed again with nothing dead")
}

// TestVacuumThatRemovesNothingWaits: while a transaction holds a snapshot
// older than the dead rows, VACUUM cannot remove them; the store does not
// run it again at every check but waits before trying again.
func TestVacuumThatRemovesNothingWaits(t *testing.T) {
	s := newStore(t, &postgres.Options{NoVacuum: true})
	postgres.SetVacuumThresholds(s, 20, 100)
	f := setup(t, s, 2)

	old, err := testPool(t).Begin(t.Context())
	require.NoError(t, err)
	defer func() { _ = old.Rollback(context.WithoutCancel(t.Context())) }()
	_, err = old.Exec(t.Context(), `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`)
	require.NoError(t, err)
	_, err = old.Exec(t.Context(), `SELECT 1`) // takes the snapshot
	require.NoError(t, err)

	churn(t, f, 300)
	require.Eventually(t, func() bool {
		vacuumed, err := postgres.VacuumIfDead(t.Context(), s)
		require.NoError(t, err)
		return vacuumed
	}, 30*time.Second, 100*time.Millisecond, "never vacuumed")
	require.EqualValues(t, 1, vacuumCount(t, s))
	vacuumed, err := postgres.VacuumIfDead(t.Context(), s)
	require.NoError(t, err)
	require.False(t, vacuumed, "vacuumed again at once though the last one removed nothing")
	require.EqualValues(t, 1, vacuumCount(t, s))
}
