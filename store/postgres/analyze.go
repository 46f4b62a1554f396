package postgres

import (
	"context"
	"log/slog"
	"time"
)

// Young tables are analyzed by the store itself.
//
// pgx prepares each statement once per connection, and after five runs
// PostgreSQL keeps a generic plan of it, made from the table's
// statistics of that moment. A plan made while deliveries held a few
// hundred rows reads the whole table: the group commit's UPDATE ... FROM
// unnest becomes a hash join over a sequential scan, and so do the locks
// it takes. Such a plan stays until the table is analyzed again, which
// autovacuum does after its naptime (a minute by default) and once a
// tenth of the table has changed; a queue that fills from empty at
// thousands of events a second (a first deploy, a fresh schema) spends
// that minute scanning, its committer's connection pegged at one core
// and deliveries at a third of their rate.
//
// So each store counts the deliveries it inserts and, whenever the count
// has grown fourfold (at 1,000, 4,000, … up to about a million), asks
// its analyzer goroutine to look at the tables that grow with it: each
// one never analyzed, or that holds more than twice the rows its last
// ANALYZE saw, is analyzed now. ANALYZE invalidates the cached plans of
// every connection, so the next run of each statement is planned for the
// table as it is. Once a table is large its plans no longer change with
// its size, and the analyzer stops asking. Several processes share the
// work through an advisory lock: one analyzes, the others skip.
const (
	analyzeFirst  = 1000
	analyzeGrowth = 4
	analyzeLast   = 1 << 20
)

// grew counts n deliveries inserted and wakes the analyzer when the count
// passes its next threshold.
func (s *Store) grew(n int) {
	if n <= 0 {
		return
	}
	total := s.inserted.Add(int64(n))
	at := s.analyzeAt.Load()
	if at == 0 || total < at {
		return
	}
	next := at * analyzeGrowth
	for next <= total {
		next *= analyzeGrowth
	}
	if next > analyzeLast {
		next = 0
	}
	if s.analyzeAt.CompareAndSwap(at, next) {
		select {
		case s.analyzeC <- struct{}{}:
		default: // one is pending already
		}
	}
}

// analyzeLoop is the maintenance goroutine: the analyzer, and the vacuum
// of vacuum.go.
func (s *Store) analyzeLoop() {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	for {
		select {
		case <-s.stop:
			return
		case <-s.analyzeC:
		case <-s.vacuumC:
			s.vacuum(ctx)
			continue
		}
		if err := s.analyzeYoung(ctx); err != nil && ctx.Err() == nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "convoy: postgres: analyzing the store's tables failed; autovacuum will",
				slog.String("schema", s.opts.Schema), slog.String("error", err.Error()))
		}
	}
}

// analyzeYoung analyzes those of the growing tables that were never
// analyzed or have more than doubled since, unless another process is at
// it.
func (s *Store) analyzeYoung(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var mine bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext('convoy.analyze:' || $1))`, s.opts.Schema).Scan(&mine); err != nil || !mine {
		return err
	}
	// reltuples is -1 until the first ANALYZE (or VACUUM); the live count
	// is the statistics system's, which backends report within a second.
	rows, err := tx.Query(ctx, `
		SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = $1 AND c.relname IN ('events', 'deliveries', 'attempts') AND c.relkind = 'r'
		   AND (c.reltuples < 0 OR pg_stat_get_live_tuples(c.oid) > 2 * c.reltuples)
		 ORDER BY c.relname`, s.opts.Schema)
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return err
		}
		tables = append(tables, t)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range tables {
		if _, err := tx.Exec(ctx, s.q(`ANALYZE {s}.`+t)); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}
