package postgres

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Deliveries are vacuumed by the store itself.
//
// Every delivery leaves dead index entries behind: its claim and its
// record each write its row anew, and the row's old entries stay in every
// index until a VACUUM removes them. Claims walk through them. The head of
// deliveries_due is the entries of deliveries that were due and have
// since been claimed, and the in-flight count of PerEndpoint walks the
// endpoint's old Processing entries; no insert ever lands among them to
// clean them up. Autovacuum comes once a fifth of the table is dead and
// looks once a minute (autovacuum_naptime), so a queue that moves
// thousands of deliveries a second spends most of each minute in them: a
// capped claim that takes 1.5 ms took 6.4 ms after 90,000 deliveries had
// gone through, and 1.5 ms again after VACUUM.
//
// So each store counts the deliveries it records or releases (each
// leaves a dead row) and, at every
// vacuumCheck of them, asks its maintenance goroutine to look at the
// deliveries table: when the statistics system counts vacuumMin dead rows
// or a sixteenth of the live ones, whichever is more, it runs
// VACUUM (INDEX_CLEANUP ON, SKIP_LOCKED) on it. vacuumMin is about 25,000
// deliveries (a claim and a record each leave a dead row), by which the
// claim above cost 10-20% more; a sixteenth keeps the work of each VACUUM,
// which reads every index whole, in proportion to what it cleans.
// INDEX_CLEANUP ON, because the dead entries in the indexes are the
// point, and PostgreSQL would skip the indexes when the dead rows sit on
// few of the table's pages, as a queue's do; SKIP_LOCKED, so that a VACUUM
// already running (autovacuum's or another process's) is not waited for.
//
// The VACUUM runs on a connection taken out of the pool, so that a long
// one holds none of the application's, and on the analyzer's goroutine,
// so that the two never run at once. Processes sharing the schema take
// turns through an advisory lock. The table's owner must run it, as with
// ANALYZE: PostgreSQL skips the table, with a warning, for any other
// role. Options.NoVacuum leaves the table to autovacuum.
const (
	vacuumCheck    = 4000
	vacuumMin      = 50000
	vacuumFraction = 16
	// The waits after a VACUUM that left the dead rows.
	vacuumRetry    = 10 * time.Second
	vacuumRetryMax = 10 * time.Minute
)

// recorded counts n deliveries whose records or releases committed and
// wakes the maintenance goroutine at every vacuumCheck of them.
func (s *Store) recorded(n int) {
	if n <= 0 || s.opts.NoVacuum {
		return
	}
	total := s.recordedN.Add(int64(n))
	if total/s.vacuumCheck == (total-int64(n))/s.vacuumCheck {
		return
	}
	s.vacuumWakes.Add(1)
	select {
	case s.vacuumC <- struct{}{}:
	default: // one is pending already
	}
}

// vacuumIfDead vacuums deliveries when it holds vacuumMin dead rows or a
// sixteenth of its live rows, unless another process is at
// it or a VACUUM that removed nothing was tried lately. It reports whether
// it ran VACUUM.
//
// A VACUUM can leave the dead rows where they are: a transaction that
// holds an old snapshot keeps them, and a role that does not own the
// table has it skipped with a warning the application never sees. Each
// such VACUUM doubles the wait before the next, from vacuumRetry to
// vacuumRetryMax; one that brings the dead rows under the threshold ends
// the wait.
func (s *Store) vacuumIfDead(ctx context.Context) (bool, error) {
	s.vacuumMu.Lock()
	defer s.vacuumMu.Unlock()
	if time.Now().Before(s.vacuumNext) {
		return false, nil
	}
	if due, err := s.vacuumDue(ctx, s.pool); err != nil || !due {
		return false, err
	}
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	var mine bool
	if err := pc.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext('convoy.vacuum:' || $1))`, s.opts.Schema).Scan(&mine); err != nil || !mine {
		pc.Release() // holds no session lock
		return false, err
	}
	// The connection that vacuums, holding the lock, leaves the pool for
	// good: a long VACUUM takes none of the application's connections
	// (the pool makes another when it needs one), and closing it ends the
	// session's advisory lock whatever happened.
	conn := pc.Hijack()
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	// Another process may have vacuumed since.
	if due, err := s.vacuumDue(ctx, conn); err != nil || !due {
		return false, err
	}
	// A statement_timeout of the role or of the pool's AfterConnect would
	// cancel a long VACUUM every time, and a cancelled one counts nothing
	// done: only Close stops this one.
	if _, err := conn.Exec(ctx, `SET statement_timeout = 0`); err != nil {
		return false, err
	}
	if _, err := conn.Exec(ctx, s.q(`VACUUM (INDEX_CLEANUP ON, SKIP_LOCKED) {s}.deliveries`)); err != nil {
		return false, err
	}
	still, err := s.vacuumDue(ctx, conn)
	if err != nil {
		return true, err
	}
	if !still {
		s.vacuumWait, s.vacuumNext = 0, time.Time{}
		return true, nil
	}
	if s.vacuumWait == 0 {
		s.log.LogAttrs(ctx, slog.LevelWarn, "convoy: postgres: VACUUM of deliveries left its dead rows (an old snapshot holds them, "+
			"or this role does not own the table); trying again later",
			slog.String("schema", s.opts.Schema))
	}
	s.vacuumWait = min(max(2*s.vacuumWait, vacuumRetry), vacuumRetryMax)
	s.vacuumNext = time.Now().Add(s.vacuumWait)
	return true, nil
}

// vacuumDue reports whether deliveries holds vacuumMin dead rows or a
// sixteenth of its live rows, as the statistics system counts them.
func (s *Store) vacuumDue(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (bool, error) {
	var dead, live int64
	err := q.QueryRow(ctx, `
		SELECT coalesce(pg_stat_get_dead_tuples(c.oid), 0), coalesce(pg_stat_get_live_tuples(c.oid), 0)
		  FROM pg_class c WHERE c.oid = to_regclass(quote_ident($1) || '.deliveries')`, s.opts.Schema).Scan(&dead, &live)
	if err != nil {
		return false, err
	}
	return dead >= max(s.vacuumMin, live/vacuumFraction), nil
}

// vacuum runs vacuumIfDead for the maintenance goroutine, logging a
// failure.
func (s *Store) vacuum(ctx context.Context) {
	if _, err := s.vacuumIfDead(ctx); err != nil && ctx.Err() == nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "convoy: postgres: vacuuming deliveries failed; autovacuum will",
			slog.String("schema", s.opts.Schema), slog.String("error", err.Error()))
	}
}
