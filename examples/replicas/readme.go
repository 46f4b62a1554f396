package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/postgres"
)

// readmeSetup is the README's "Running several replicas" block that opens
// the store; readme_test.go at the repository root checks that it is
// here, verbatim, so the README shows code that compiles.
func readmeSetup(ctx context.Context) (*convoy.Dispatcher, error) {
	st, err := postgres.Open(ctx, os.Getenv("DATABASE_URL"), &postgres.Options{
		Schema:  "convoy", // its tables live beside yours
		Migrate: true,     // safe when every replica starts at once
	})
	if err != nil {
		return nil, err
	}
	d, err := convoy.New(convoy.Config{Store: st})
	return d, err
}

// readmeSendTx is the README's SendTx block.
func readmeSendTx(ctx context.Context, pool *pgxpool.Pool, d *convoy.Dispatcher, appID, id string, total int64, data json.RawMessage) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `INSERT INTO orders (id, total) VALUES ($1, $2)`, id, total)
	if err != nil {
		return err
	}
	_, err = convoy.SendTx(ctx, d, tx, appID, convoy.Event{Type: "order.created", Data: data})
	if err != nil {
		return err
	}
	err = tx.Commit(ctx) // rolled back: nothing is ever sent
	return err
}

var _, _ = readmeSetup, readmeSendTx
