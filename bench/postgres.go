package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/postgres"
)

// The PostgreSQL configurations. Every one works in fresh schemas of its
// own, dropped when it ends.
const (
	// modePostgres is convoy on store/postgres in one process: the row and
	// its half-rate row, as memory and bolt.
	modePostgres = "postgres"
	// modePostgres3 sends from this process while three child processes
	// (modePGWorker) deliver from the same schema.
	modePostgres3 = "postgres-3"
	// modePostgresAsync is modePostgres on sessions with
	// synchronous_commit=off: commits no longer wait for the WAL flush. Not
	// durable, so never a headline row; run it by naming it in -only.
	modePostgresAsync = "postgres-async"
	// modeRiverPG is River with its pgx driver on the same server.
	modeRiverPG = "river-postgres"
	// modePGWorker is one of modePostgres3's delivering processes.
	modePGWorker = "pg-worker"
)

// pgProcesses is how many processes deliver in modePostgres3.
const pgProcesses = 3

// localPG is the local server CI starts.
const localPG = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// defaultPG is the -pg default: CONVOY_TEST_POSTGRES, or the local server.
func defaultPG() string {
	if s := os.Getenv("CONVOY_TEST_POSTGRES"); s != "" {
		return s
	}
	return localPG
}

// pgPool connects with o.pgConns connections at most, with the given
// session settings.
func pgPool(ctx context.Context, o *options, settings map[string]string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(o.pg)
	if err != nil {
		return nil, fmt.Errorf("-pg: %w", err)
	}
	cfg.MaxConns = int32(o.pgConns)
	for k, v := range settings {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("PostgreSQL at -pg (or $CONVOY_TEST_POSTGRES): %w", err)
	}
	return pool, nil
}

// pgSchema names a fresh schema for one phase of a run.
func pgSchema(o *options, what string) string {
	return strings.NewReplacer("-", "_", " ", "_", "@", "", "/", "per").Replace("bench_" + o.runID + "_" + what)
}

// dropSchema removes a schema and everything in it.
func dropSchema(ctx context.Context, pool *pgxpool.Pool, schema string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := pool.Exec(cctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		fmt.Fprintf(os.Stderr, "bench: drop schema %s: %v\n", schema, err)
	}
}

// pgSettings are the session settings of the mode: none (durable commits)
// but for modePostgresAsync.
func pgSettings(mode string) map[string]string {
	if mode == modePostgresAsync {
		return map[string]string{"synchronous_commit": "off"}
	}
	return nil
}

// runPostgres measures convoy on store/postgres in this process: a
// saturated run, then one paced at half its deliveries/s, each on a new
// schema and dispatcher.
func runPostgres(ctx context.Context, o *options, ctl *control) (*childResult, error) {
	res := &childResult{}
	tmpl, err := bodyTemplate(o.bodySize)
	if err != nil {
		return res, err
	}
	run := o.runID + "-" + o.mode
	sat, note, err := pgPhase(ctx, o, ctl, true, phase{
		name: o.mode, run: run, n: o.n, senders: o.senders, tmpl: tmpl, drain: o.drainTimeout,
	})
	res.Rows = append(res.Rows, sat)
	if note != "" {
		res.Notes = append(res.Notes, note)
	}
	if err != nil {
		return res, err
	}
	rate := sat.DelivPerSec / 2
	half, _, err := pgPhase(ctx, o, ctl, false, phase{
		name: o.mode + " @ half rate", run: run + "-half", n: max(10, int(rate*o.pacedTime.Seconds())),
		senders: o.senders, rate: rate, tmpl: tmpl, drain: o.drainTimeout,
	})
	res.Rows = append(res.Rows, half)
	if err != nil {
		return res, err
	}
	low, _, err := pgPhase(ctx, o, ctl, false, lowPhase(o, run, tmpl))
	res.Rows = append(res.Rows, low)
	return res, err
}

// pgPhase measures p on a new schema with a started dispatcher, as
// convoyPhase does for memory and bolt. It also returns the server's
// durability settings as the phase's sessions see them.
func pgPhase(ctx context.Context, o *options, ctl *control, heap bool, p phase) (rowResult, string, error) {
	row := rowResult{Name: p.name}
	pool, err := pgPool(ctx, o, pgSettings(o.mode))
	if err != nil {
		return row, "", err
	}
	defer pool.Close()
	note := serverNote(ctx, pool)
	schema := pgSchema(o, p.name)
	defer dropSchema(ctx, pool, schema)
	st, err := postgres.New(ctx, pool, &postgres.Options{Schema: schema, Migrate: true, Logger: quietLogger()})
	if err != nil {
		return row, note, err
	}
	defer st.Close()
	d, err := convoy.New(dispatcherConfig(o, st))
	if err != nil {
		return row, note, err
	}
	if err := d.Start(ctx); err != nil {
		return row, note, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = d.Close(cctx)
	}()
	app, _, err := newTarget(ctx, d, o.receiver, p.run)
	if err != nil {
		return row, note, err
	}
	p.send = func(ctx context.Context, body []byte) error {
		_, err := d.Send(ctx, app.ID, convoy.Event{Type: eventType, Data: body})
		return err
	}
	row, err = measure(ctx, ctl, p)
	if heap {
		writeHeapProfile(o)
	}
	return row, note, err
}

// runPostgres3 sends from this process, through a dispatcher that is never
// started (as a web process that only calls Send), while pgProcesses
// child processes of this binary deliver from the same schema, each with
// a dispatcher of o.concurrency workers. The per-endpoint cap holds across
// processes, so the receiver's one endpoint still has at most
// o.concurrency attempts in flight.
func runPostgres3(ctx context.Context, o *options, ctl *control) (*childResult, error) {
	res := &childResult{}
	tmpl, err := bodyTemplate(o.bodySize)
	if err != nil {
		return res, err
	}
	pool, err := pgPool(ctx, o, nil)
	if err != nil {
		return res, err
	}
	defer pool.Close()
	schema := pgSchema(o, o.mode)
	defer dropSchema(ctx, pool, schema)
	st, err := postgres.New(ctx, pool, &postgres.Options{Schema: schema, Migrate: true, Logger: quietLogger()})
	if err != nil {
		return res, err
	}
	defer st.Close()
	d, err := convoy.New(dispatcherConfig(o, st))
	if err != nil {
		return res, err
	}
	run := o.runID + "-" + o.mode
	app, _, err := newTarget(ctx, d, o.receiver, run)
	if err != nil {
		return res, err
	}

	workers := make([]*pgWorker, 0, pgProcesses)
	defer func() {
		for _, w := range workers {
			w.kill()
		}
	}()
	for range pgProcesses {
		w, err := startPGWorker(ctx, o, schema)
		if err != nil {
			return res, err
		}
		workers = append(workers, w)
	}
	for _, w := range workers {
		if err := w.ready(30 * time.Second); err != nil {
			return res, err
		}
	}

	row, err := measure(ctx, ctl, phase{
		name: o.mode, run: run, n: o.n, senders: o.senders, tmpl: tmpl, drain: o.drainTimeout,
		send: func(ctx context.Context, body []byte) error {
			_, err := d.Send(ctx, app.ID, convoy.Event{Type: eventType, Data: body})
			return err
		},
	})
	res.Rows = append(res.Rows, row)
	var peaks []string
	for i, w := range workers {
		r, werr := w.stop(30 * time.Second)
		if werr != nil {
			err = errors.Join(err, fmt.Errorf("delivering process %d: %w", i+1, werr))
			continue
		}
		peaks = append(peaks, mib(r.PeakRSS))
	}
	if len(peaks) > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("peak RSS of the %d delivering processes: %s (the row's figure is the sending process's)",
			len(peaks), strings.Join(peaks, ", ")))
	}
	return res, err
}

// pgWorker is one delivering child of runPostgres3.
type pgWorker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan error
}

func startPGWorker(ctx context.Context, o *options, schema string) (*pgWorker, error) {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	args := o.childArgs(modePGWorker)
	args = append(args, "-pg-schema="+schema)
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := &pgWorker{cmd: cmd, stdin: stdin, lines: make(chan string, 4), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		close(w.lines)
		w.done <- cmd.Wait()
	}()
	return w, nil
}

// ready waits for the worker's "ready" line.
func (w *pgWorker) ready(d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case l, ok := <-w.lines:
		if !ok || l != "ready" {
			return fmt.Errorf("delivering process did not start (%q)", l)
		}
		return nil
	case <-tm.C:
		return fmt.Errorf("delivering process not ready after %v", d)
	}
}

// stop closes the worker's standard input, which makes it close its
// dispatcher and print its result, and waits for it.
func (w *pgWorker) stop(d time.Duration) (*childResult, error) {
	_ = w.stdin.Close()
	tm := time.NewTimer(d)
	defer tm.Stop()
	var last string
	for {
		select {
		case l, ok := <-w.lines:
			if ok {
				last = l
				continue
			}
			err := <-w.done
			w.done <- err
			var res childResult
			if jerr := json.Unmarshal([]byte(last), &res); jerr != nil {
				return nil, errors.Join(err, fmt.Errorf("bad result %q: %w", last, jerr))
			}
			if res.Err != "" {
				return &res, errors.New(res.Err)
			}
			return &res, err
		case <-tm.C:
			return nil, fmt.Errorf("still running %v after stop", d)
		}
	}
}

// kill ends the worker if it still runs.
func (w *pgWorker) kill() {
	_ = w.cmd.Process.Kill()
}

// runPGWorker is a delivering process of modePostgres3: a dispatcher on
// -pg-schema until standard input ends.
func runPGWorker(ctx context.Context, o *options, stdout io.Writer) (*childResult, error) {
	res := &childResult{}
	if o.pgSchema == "" {
		return res, errors.New("-mode=pg-worker needs -pg-schema")
	}
	pool, err := pgPool(ctx, o, nil)
	if err != nil {
		return res, err
	}
	defer pool.Close()
	st, err := postgres.New(ctx, pool, &postgres.Options{Schema: o.pgSchema, Logger: quietLogger()})
	if err != nil {
		return res, err
	}
	defer st.Close()
	d, err := convoy.New(dispatcherConfig(o, st))
	if err != nil {
		return res, err
	}
	if err := d.Start(ctx); err != nil {
		return res, err
	}
	if _, err := io.WriteString(stdout, "ready\n"); err != nil {
		return res, err
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return res, d.Close(cctx)
}

// pgPostArgs is the River + PostgreSQL peer's job. River keeps job args in
// a jsonb column, which rewrites JSON (key order, spacing), so the body
// travels as a string: signed and sent byte for byte, as a webhook must be.
type pgPostArgs struct {
	Body string `json:"body"`
}

func (pgPostArgs) Kind() string { return "bench_post_signed" }

// signedPostWorker works pgPostArgs: it signs the body (HMAC-SHA256, as
// convoy's default scheme does) and POSTs it, so both sides do the same
// work per delivery.
type signedPostWorker struct {
	river.WorkerDefaults[pgPostArgs]
	client *http.Client
	url    string
	run    string
	secret []byte
}

func (w *signedPostWorker) Work(ctx context.Context, job *river.Job[pgPostArgs]) error {
	body := []byte(job.Args.Body)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, w.secret)
	mac.Write([]byte(ts + ","))
	mac.Write(body)
	sig := "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
	return postWith(ctx, w.client, w.url, w.run, body, map[string]string{convoy.DefaultSignatureHeader: sig})
}

// runRiverPG is the PostgreSQL peer row: River with riverpgxv5 on a pool
// of o.pgConns connections, its migrations applied by rivermigrate to a
// fresh schema, o.concurrency workers, completions batched (River's
// default completer), jobs inserted one by one by o.senders goroutines.
func runRiverPG(ctx context.Context, o *options, ctl *control) (*childResult, error) {
	res := &childResult{}
	tmpl, err := bodyTemplate(o.bodySize)
	if err != nil {
		return res, err
	}
	pool, err := pgPool(ctx, o, nil)
	if err != nil {
		return res, err
	}
	defer pool.Close()
	schema := pgSchema(o, o.mode)
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return res, err
	}
	defer dropSchema(ctx, pool, schema)
	drv := riverpgxv5.New(pool)
	migrator, err := rivermigrate.New(drv, &rivermigrate.Config{Schema: schema, Logger: quietLogger()})
	if err != nil {
		return res, err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return res, fmt.Errorf("river migrate: %w", err)
	}

	run := o.runID + "-" + o.mode
	hc := newHTTPClient(o.concurrency)
	defer hc.CloseIdleConnections()
	workers := river.NewWorkers()
	river.AddWorker(workers, &signedPostWorker{client: hc, url: o.receiver + "/hook", run: run, secret: []byte("bench secret")})
	client, err := river.NewClient(drv, &river.Config{
		Schema:            schema,
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
		_, err := client.Insert(ctx, pgPostArgs{Body: string(body)}, nil)
		return err
	}
	sendBatch := func(ctx context.Context, bodies [][]byte) error {
		params := make([]river.InsertManyParams, len(bodies))
		for i, b := range bodies {
			params[i] = river.InsertManyParams{Args: pgPostArgs{Body: string(b)}}
		}
		_, err := client.InsertMany(ctx, params)
		return err
	}
	row, err := measure(ctx, ctl, phase{
		name: "river + postgres", run: run, n: o.riverN, senders: o.senders, send: send,
		batch: o.riverBatch, sendBatch: sendBatch, tmpl: tmpl, drain: o.drainTimeout,
	})
	res.Rows = append(res.Rows, row)
	return res, err
}

// postWith is post with extra request headers.
func postWith(ctx context.Context, c *http.Client, url, run string, body []byte, headers map[string]string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(runHeader, run)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// serverNote describes the server's durability settings, for the report.
func serverNote(ctx context.Context, pool *pgxpool.Pool) string {
	var version, syncCommit, fsync string
	err := pool.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('synchronous_commit'), current_setting('fsync')`).
		Scan(&version, &syncCommit, &fsync)
	if err != nil {
		return "server settings: " + err.Error()
	}
	return fmt.Sprintf("PostgreSQL %s, synchronous_commit=%s, fsync=%s for this row's sessions", version, syncCommit, fsync)
}

// pgRows adds the PostgreSQL rows to the main table, with their targets.
func pgRows(o *options, row func(cfg, name string) *rowResult, results map[string]*childResult, riverPG float64,
	line func(string, *rowResult, int64, []check), missing func(string), p99Check func(*rowResult) check) {
	vsRiver := func(r *rowResult) []check {
		if riverPG <= 0 {
			return nil
		}
		x := r.DelivPerSec / riverPG
		return []check{{fmt.Sprintf("≥ %d× River + PostgreSQL", targetVsRiverPG), fmt.Sprintf("%.1f×", x), x >= targetVsRiverPG}}
	}
	for _, c := range []struct{ mode, label string }{
		{modePostgres, "postgres"},
		{modePostgres3, fmt.Sprintf("postgres, %d processes", pgProcesses)},
		{modePostgresAsync, "postgres, synchronous_commit=off"},
	} {
		r := row(c.mode, c.mode)
		if r == nil {
			if o.runs(c.mode) {
				missing(c.label)
			}
			continue
		}
		var checks []check
		if c.mode != modePostgresAsync { // not durable: no headline target
			checks = vsRiver(r)
		}
		rss := results[c.mode].PeakRSS
		line(c.label, r, rss, checks)
		if h := row(c.mode, c.mode+" @ half rate"); h != nil {
			line(fmt.Sprintf("%s @ half rate (%s/s)", c.label, num(h.Rate)), h, rss, []check{p99Check(h)})
		}
		if l := row(c.mode, c.mode+lowSuffix); l != nil {
			line(c.label+lowSuffix, l, rss, []check{lowP99Check(l)})
		}
	}
}

// pgNotes explains the PostgreSQL rows under the table.
func pgNotes(w io.Writer, o *options) {
	if !o.runs(modePostgres) && !o.runs(modePostgres3) && !o.runs(modePostgresAsync) && !o.runs(modeRiverPG) {
		return
	}
	fmt.Fprintf(w, "- postgres: store/postgres on -pg, a fresh schema per run, a pool of %d connections (-pg-conns), durable commits\n", o.pgConns)
	fmt.Fprintf(w, "  (synchronous_commit as the server has it, on by default: see the note below). postgres, %d processes: this process sends\n", pgProcesses)
	fmt.Fprintf(w, "  through a dispatcher it never starts, %d child processes deliver from the same schema, each with Workers = %d and its own\n", pgProcesses, o.concurrency)
	fmt.Fprintln(w, "  pool; PerEndpoint holds across processes, so the one endpoint still has at most that many attempts in flight. Its peak")
	fmt.Fprintln(w, "  RSS is the sending process's. postgres, synchronous_commit=off (only with -only postgres-async): not durable, shown apart.")
	fmt.Fprintf(w, "- River + postgres: riverpgxv5 on a pool of %d connections, rivermigrate into a fresh schema, MaxWorkers %d,\n", o.pgConns, o.concurrency)
	fmt.Fprintf(w, "  FetchCooldown and FetchPollInterval %v, completions batched (River's default completer), LISTEN/NOTIFY on; the job signs\n", riverFetch)
	fmt.Fprintln(w, "  its body (HMAC-SHA256, as convoy's default scheme) before the POST. Every convoy delivery is signed and its attempt stored.")
}
