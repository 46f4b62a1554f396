package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
)

// riverFetch is River's FetchCooldown and FetchPollInterval in the peer
// row: tuned down from 100 ms and 1 s so its latency is not its defaults'.
const riverFetch = 10 * time.Millisecond

// riverDSN opens the SQLite file in WAL mode with synchronous=FULL (an
// fsync per commit, as bolt does by default) and a busy timeout.
func riverDSN(path string) string {
	return "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)"
}

// postArgs is the peer's job: POST Body to the receiver.
type postArgs struct {
	Body json.RawMessage `json:"body"`
}

func (postArgs) Kind() string { return "bench_post" }

type postWorker struct {
	river.WorkerDefaults[postArgs]
	client *http.Client
	url    string
	run    string
}

func (w *postWorker) Work(ctx context.Context, job *river.Job[postArgs]) error {
	return post(ctx, w.client, w.url, w.run, job.Args.Body, nil)
}

// runRiver is the peer row: River with its SQLite driver on a file,
// o.concurrency workers, jobs inserted one by one by o.senders goroutines.
func runRiver(ctx context.Context, o *options, ctl *control) (*childResult, error) {
	res := &childResult{}
	tmpl, err := bodyTemplate(o.bodySize)
	if err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp(o.dir, "river-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", riverDSN(filepath.Join(dir, "river.db")))
	if err != nil {
		return res, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	drv := riversqlite.New(db)
	migrator, err := rivermigrate.New(drv, nil)
	if err != nil {
		return res, err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return res, fmt.Errorf("river migrate: %w", err)
	}

	run := o.runID + "-river"
	hc := newHTTPClient(o.concurrency)
	defer hc.CloseIdleConnections()
	workers := river.NewWorkers()
	river.AddWorker(workers, &postWorker{client: hc, url: o.receiver + "/hook", run: run})
	client, err := river.NewClient(drv, &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: o.concurrency}},
		Workers:           workers,
		FetchCooldown:     riverFetch,
		FetchPollInterval: riverFetch,
		Logger:            quietLogger(),
	})
	if err != nil {
		return res, err
	}
	if err := client.Start(ctx); err != nil {
		return res, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = client.Stop(sctx)
	}()

	send := func(ctx context.Context, body []byte) error {
		_, err := client.Insert(ctx, postArgs{Body: body}, nil)
		return err
	}
	sendBatch := func(ctx context.Context, bodies [][]byte) error {
		params := make([]river.InsertManyParams, len(bodies))
		for i, b := range bodies {
			params[i] = river.InsertManyParams{Args: postArgs{Body: b}}
		}
		_, err := client.InsertMany(ctx, params)
		return err
	}
	row, err := measure(ctx, ctl, phase{
		name: "river + sqlite", run: run, n: o.riverN, senders: o.senders, send: send,
		batch: o.riverBatch, sendBatch: sendBatch, tmpl: tmpl, drain: o.drainTimeout,
	})
	res.Rows = append(res.Rows, row)
	return res, err
}
