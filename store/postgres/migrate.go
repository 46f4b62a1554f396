package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrationFiles are the schema's versions, migrations/NNNN_name.sql,
// applied in order.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations returns the embedded migrations in version order.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("convoy: postgres: migration file %s is not named NNNN_name.sql", name)
		}
		b, err := migrationFiles.ReadFile("migrations/" + name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: rest, sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("convoy: postgres: two migrations numbered %d", out[i].version)
		}
	}
	return out, nil
}

// SchemaVersion is the schema version this package writes and reads: the
// number of its newest migration.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// Migrate creates the store's schema if needed and applies the migrations
// it lacks, all in one transaction, and records each in the schema's
// schema_migrations table. It is idempotent, and safe when several
// processes start at once: a transaction-scoped advisory lock lets one
// migrate while the others wait, and they then find nothing to do. A
// schema that a newer release migrated further is left as it is.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('convoy.migrate'), hashtext($1))`, s.opts.Schema); err != nil {
			return s.wrap(err)
		}
		if _, err := tx.Exec(ctx, s.q(`
			CREATE SCHEMA IF NOT EXISTS {s};
			CREATE TABLE IF NOT EXISTS {s}.schema_migrations (
				version    integer PRIMARY KEY,
				name       text NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now()
			)`)); err != nil {
			return s.wrap(err)
		}
		rows, err := tx.Query(ctx, s.q(`SELECT version FROM {s}.schema_migrations`))
		if err != nil {
			return s.wrap(err)
		}
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return s.wrap(err)
		}
		for _, m := range ms {
			if slices.Contains(applied, m.version) {
				continue
			}
			if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+s.ident); err != nil {
				return s.wrap(err)
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("convoy: postgres: migration %d (%s): %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx, s.q(`INSERT INTO {s}.schema_migrations (version, name) VALUES ($1, $2)`), m.version, m.name); err != nil {
				return s.wrap(err)
			}
		}
		return nil
	})
}

// checkMigrated fails with ErrNotMigrated unless every migration of this
// package is applied.
func (s *Store) checkMigrated(ctx context.Context) error {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, s.ident+".schema_migrations").Scan(&exists); err != nil {
		return s.wrap(err)
	}
	if !exists {
		return fmt.Errorf("%w: schema %s has no schema_migrations table", ErrNotMigrated, s.ident)
	}
	var v int
	if err := s.pool.QueryRow(ctx, s.q(`SELECT coalesce(max(version), 0) FROM {s}.schema_migrations`)).Scan(&v); err != nil {
		return s.wrap(err)
	}
	if want := SchemaVersion(); v < want {
		return fmt.Errorf("%w: schema %s is at version %d, this release needs %d", ErrNotMigrated, s.ident, v, want)
	}
	return nil
}
