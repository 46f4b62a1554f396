package postgres

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convoykit/convoy"
)

// Record and Release go through a group committer: calls made at the same
// time (the Dispatcher records from many goroutines) are queued and
// committed together by one goroutine, in one transaction of two round
// trips, whatever their number:
//
//  1. BEGIN; lock the endpoint_state rows of the batch's endpoints, then
//     the deliveries (SELECT ... FOR NO KEY UPDATE, in ID order, so that
//     batches of several processes cannot deadlock), and read the
//     endpoints.
//  2. Insert the attempts, update the deliveries and the endpoints'
//     health (and status, when it changed), one statement each from
//     arrays, make the next head of each ordered endpoint whose head
//     ended due, add the counters; COMMIT.
//
// Between the two, each call is checked and applied on its own, in
// order: one whose lease was lost gets ErrLeaseLost and changes nothing,
// and the others go on. An endpoint's health is folded through the
// batch's attempts to it in order, so each EndpointStatus callback sees
// the health with its own attempt (and those before it in the batch),
// and the endpoint's health row is written once per batch: a busy
// endpoint costs one small row update per transaction, not one per
// delivery.

type opKind uint8

const (
	opRecord opKind = iota
	opRelease
	opInsert
	opListEndpoints
)

// op is one call waiting for a committer.
type op struct {
	ctx  context.Context
	kind opKind
	// t is the transition of a Record; a Release uses t.DeliveryID and
	// t.LeaseID.
	t convoy.Transition
	// ev and ds are the event and deliveries of an InsertEvent.
	ev *convoy.Event
	ds []*convoy.Delivery
	// claim is the lease request of an InsertEventClaim, and given the
	// deliveries as the caller gave them (ds holds them as planned for
	// the transaction running, leased or not).
	claim *convoy.ClaimRequest
	given []*convoy.Delivery
	// appID and limit are the app and the page size (plus one) of a
	// first-page ListEndpoints, eps what it read.
	appID string
	limit int
	eps   []*convoy.Endpoint

	// Set by the committer before done is closed.
	res      convoy.RecordResult
	ins      convoy.InsertResult
	err      error
	panicked any
	notify   bool
	done     chan struct{}
}

// Record implements [convoy.Store]. It is group committed (see
// Options.RecordBatch). t.EndpointStatus is called by the committer with
// the endpoint's row locked; a panic in it fails this call (it panics
// again in the caller) and not the others of its batch.
func (s *Store) Record(ctx context.Context, t convoy.Transition) (convoy.RecordResult, error) {
	if err := checkTransition(t); err != nil {
		return convoy.RecordResult{}, err
	}
	// The committer may still read t after a caller whose ctx ended has
	// returned; it reads its own copy.
	t.Attempt = t.Attempt.Clone()
	o := &op{kind: opRecord, t: t}
	if err := s.submit(ctx, s.records, o); err != nil {
		return convoy.RecordResult{}, err
	}
	return o.res, nil
}

// Release implements [convoy.Store]. It is group committed like Record.
func (s *Store) Release(ctx context.Context, deliveryID, leaseID string) error {
	if err := convoy.ValidateID("delivery ID", deliveryID); err != nil {
		return err
	}
	return s.submit(ctx, s.records, &op{kind: opRelease, t: convoy.Transition{DeliveryID: deliveryID, LeaseID: leaseID}})
}

func checkTransition(t convoy.Transition) error {
	if err := convoy.ValidateID("delivery ID", t.DeliveryID); err != nil {
		return err
	}
	switch t.Status {
	case convoy.DeliverySuccess, convoy.DeliveryRetry, convoy.DeliveryFailure, convoy.DeliveryDiscarded:
	default:
		return fmt.Errorf("%w: delivery cannot move to %q", convoy.ErrInvalidStatus, t.Status)
	}
	if a := t.Attempt; a != nil {
		if err := a.Validate(); err != nil {
			return err
		}
		if a.DeliveryID != t.DeliveryID {
			return fmt.Errorf("%w: attempt %s is for delivery %s, not %s", convoy.ErrInvalid, a.ID, a.DeliveryID, t.DeliveryID)
		}
		if err := checkTimes("attempt.StartedAt", a.StartedAt); err != nil {
			return err
		}
	}
	return checkTimes("transition", t.Now, t.NextAttemptAt)
}

// committer is a queue of calls and the goroutine that runs them in
// batches: the Store has one for Record and Release, one for
// InsertEvent.
type committer struct {
	mu    sync.Mutex
	queue []*op
	wake  chan struct{}
	done  chan struct{}
	// max bounds a batch; 1 means no queue (see submit).
	max int
	// size is what an op counts against max (nil: 1 each).
	size func(*op) int
	run  func([]*op)
}

func newCommitter(max int, size func(*op) int, run func([]*op)) *committer {
	return &committer{wake: make(chan struct{}, 1), done: make(chan struct{}), max: max, size: size, run: run}
}

// submit runs o through c, or at once in the calling goroutine when c
// does not batch, and waits for its outcome. If ctx ends first it
// returns ctx.Err(), and o may or may not be committed.
func (s *Store) submit(ctx context.Context, c *committer, o *op) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	o.ctx = ctx
	o.done = make(chan struct{})
	if c.max == 1 {
		c.run([]*op{o})
	} else {
		c.mu.Lock()
		if s.closed.Load() {
			c.mu.Unlock()
			return convoy.ErrClosed
		}
		c.queue = append(c.queue, o)
		c.mu.Unlock()
		select {
		case c.wake <- struct{}{}:
		default: // a wake-up is pending already
		}
		select {
		case <-o.done:
		case <-ctx.Done():
			select {
			case <-o.done:
			default:
				return ctx.Err()
			}
		}
	}
	if o.panicked != nil {
		panic(o.panicked)
	}
	if o.err == nil && o.notify {
		s.wakeOthers()
	}
	return o.err
}

// loop is the committer goroutine: it runs queued calls in batches until
// quit is closed, then runs what is left and returns.
func (c *committer) loop(quit <-chan struct{}) {
	defer close(c.done)
	for {
		select {
		case <-c.wake:
		case <-quit:
			for c.flush() {
			}
			return
		}
		for c.flush() {
		}
	}
}

// flush runs one batch of queued calls and reports whether there was
// any.
func (c *committer) flush() bool {
	c.mu.Lock()
	n, total := 0, 0
	for n < len(c.queue) && n < c.max {
		size := 1
		if c.size != nil {
			size = c.size(c.queue[n])
		}
		if n > 0 && total+size > c.max {
			break
		}
		total += size
		n++
	}
	if n == 0 {
		c.mu.Unlock()
		return false
	}
	batch := slices.Clone(c.queue[:n])
	rest := copy(c.queue, c.queue[n:])
	clear(c.queue[rest:])
	c.queue = c.queue[:rest]
	c.mu.Unlock()
	c.run(batch)
	return true
}

// maxBatchTries bounds the reruns of a batch that PostgreSQL aborted as a
// deadlock victim or a serialization failure.
const maxBatchTries = 3

// runRecords commits a batch of Record and Release calls and closes
// their done channels.
func (s *Store) runRecords(ops []*op) {
	live := ops[:0:0]
	for _, o := range ops {
		if err := o.ctx.Err(); err != nil {
			o.err = err
			close(o.done)
			continue
		}
		live = append(live, o)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	var err error
	for try := 1; ; try++ {
		err = s.commitBatch(ctx, live)
		code, _ := pgErr(err)
		if err == nil || try == maxBatchTries || (code != codeDeadlock && code != codeSerialization) {
			break
		}
	}
	if err == nil {
		s.recorded(len(live))
	}
	for _, o := range live {
		if err != nil && o.err == nil && o.panicked == nil {
			o.err = s.wrap(err)
		}
		close(o.done)
	}
}

// dstate is what a batch knows of a delivery it locked.
type dstate struct {
	endpointID    string
	status        convoy.DeliveryStatus
	leaseID       string
	attempts      int
	roundAttempts int
	claims        int
	next          *int64
	lastError     string
	updated       *int64
	// held is set for a delivery of an ordered endpoint held back behind
	// its head (due_at NULL, see the schema): it stays so while pending.
	held    bool
	changed bool
}

// estate is what a batch knows of an endpoint it locked.
type estate struct {
	ep *convoy.Endpoint
	// stored is the status as stored; changed reports a new health.
	stored  convoy.EndpointStatus
	changed bool
}

// commitBatch runs ops in one transaction. It sets each op's outcome; its
// own error is for the transaction as a whole (nothing committed).
func (s *Store) commitBatch(ctx context.Context, ops []*op) error {
	for _, o := range ops {
		o.res, o.err, o.panicked, o.notify = convoy.RecordResult{}, nil, nil, false
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	committed := false
	defer func() {
		if !committed {
			rollback(conn)
		}
	}()

	var ids, recIDs []string
	for _, o := range ops {
		ids = append(ids, o.t.DeliveryID)
		if o.kind == opRecord {
			recIDs = append(recIDs, o.t.DeliveryID)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	slices.Sort(recIDs)
	recIDs = slices.Compact(recIDs)

	// Round trip 1: begin and lock, endpoints first (the order every
	// writer of both follows), in ID order.
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	if len(recIDs) > 0 {
		// endpoint_state is the endpoint's lock (see the schema); the
		// endpoint's own row is read, not locked: its status changes
		// only under that lock, and the rest is settings.
		b.Queue(s.q(`SELECT endpoint_id FROM {s}.endpoint_state
			WHERE endpoint_id IN (SELECT endpoint_id FROM {s}.deliveries WHERE id = ANY ($1))
			ORDER BY endpoint_id FOR NO KEY UPDATE`), uuids(recIDs))
		b.Queue(s.q(selectEndpoint+` WHERE e.id IN (SELECT endpoint_id FROM {s}.deliveries WHERE id = ANY ($1))`), uuids(recIDs))
	}
	b.Queue(s.q(`SELECT id, endpoint_id, status, lease_id, attempts, round_attempts, claims, next_attempt_at,
			last_error, updated_at, due_at IS NULL AND status IN ('Scheduled', 'Retry', 'Processing')
		FROM {s}.deliveries WHERE id = ANY ($1) ORDER BY id FOR NO KEY UPDATE`), uuids(ids))
	eps := make(map[string]*estate)
	ds := make(map[string]*dstate, len(ids))
	br := conn.SendBatch(ctx, b)
	err = func() error {
		if _, err := br.Exec(); err != nil {
			return err
		}
		if len(recIDs) > 0 {
			if _, err := br.Exec(); err != nil {
				return err
			}
			rows, err := br.Query()
			if err != nil {
				return err
			}
			list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*convoy.Endpoint, error) { return scanEndpoint(r) })
			if err != nil {
				return err
			}
			for _, e := range list {
				eps[e.ID] = &estate{ep: e, stored: e.Status}
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id string
				d  dstate
			)
			if err := rows.Scan(&id, &d.endpointID, &d.status, &d.leaseID, &d.attempts, &d.roundAttempts,
				&d.claims, &d.next, &d.lastError, &d.updated, &d.held); err != nil {
				return err
			}
			ds[id] = &d
		}
		return rows.Err()
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}

	// Apply each call in order.
	var (
		c        counts
		attempts []*convoy.Attempt
		// ended lists the ordered endpoints a delivery of which ended:
		// their next head becomes due (see the schema's ungate).
		ended []string
	)
	for _, o := range ops {
		d, ok := ds[o.t.DeliveryID]
		if !ok {
			o.err = notFound("delivery", o.t.DeliveryID)
			continue
		}
		if d.status != convoy.DeliveryProcessing || o.t.LeaseID == "" || d.leaseID != o.t.LeaseID {
			o.err = fmt.Errorf("%w: delivery %s", convoy.ErrLeaseLost, o.t.DeliveryID)
			continue
		}
		if o.kind == opRelease {
			next := convoy.DeliveryScheduled
			if d.attempts > 0 {
				next = convoy.DeliveryRetry
			}
			c.move(d.status, next)
			d.status, d.leaseID, d.changed = next, "", true
			d.claims = max(d.claims-1, 0)
			o.notify = true
			continue
		}
		e := eps[d.endpointID]
		if e == nil {
			o.err = notFound("endpoint", d.endpointID)
			continue
		}
		t := &o.t
		health := e.ep.Health
		t.UpdateHealth(&health)
		before, after := e.ep.Status, e.ep.Status
		if t.EndpointStatus != nil {
			view := e.ep.Clone()
			view.Health = health
			st, p := callStatus(t.EndpointStatus, *view)
			if p != nil {
				o.panicked = p
				continue
			}
			if !st.Valid() {
				o.err = fmt.Errorf("%w: endpoint status %q", convoy.ErrInvalidStatus, st)
				continue
			}
			after = st
		}
		o.res = convoy.RecordResult{EndpointBefore: before, EndpointAfter: after}
		e.ep.Health, e.ep.Status, e.changed = health, after, true
		if before != after {
			c.endpoint(before, -1)
			c.endpoint(after, 1)
		}
		if a := t.Attempt; a != nil {
			attempts = append(attempts, a)
			d.attempts++
			d.roundAttempts++
			d.claims = 0
			if !a.Success() {
				d.lastError = a.Error
			}
		}
		c.move(d.status, t.Status)
		d.status, d.leaseID, d.changed = t.Status, "", true
		if t.Status.Final() && e.ep.Ordered {
			if !slices.Contains(ended, d.endpointID) {
				ended = append(ended, d.endpointID)
			}
			o.notify = true // the next head is due: other processes may take it
		}
		if t.Status == convoy.DeliveryRetry {
			d.next = nanos(t.NextAttemptAt)
			o.notify = true
		}
		d.updated = nanos(t.Now)
	}

	changed := false
	for _, d := range ds {
		changed = changed || d.changed
	}
	if !changed {
		return nil // nothing to write: the deferred rollback ends the transaction
	}

	// Round trip 2: write and commit.
	b = &pgx.Batch{}
	if len(attempts) > 0 {
		b.Queue(s.q(insertAttemptsSQL), attemptArgs(attempts)...)
	}
	b.Queue(s.q(updateDeliveriesSQL), deliveryArgs(ds)...)
	if len(ended) > 0 {
		b.Queue(s.q(`SELECT {s}.ungate($1)`), uuids(ended))
	}
	if args := healthArgs(eps); args != nil {
		b.Queue(s.q(updateHealthSQL), args...)
	}
	if args := statusArgs(eps); args != nil {
		b.Queue(s.q(updateStatusSQL), args...)
	}
	if !c.zero() {
		b.Queue(s.q(`SELECT {s}.add_counts($1)`), c.array())
	}
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	committed = true
	return nil
}

// callStatus calls fn, returning what it panicked with instead of
// panicking.
func callStatus(fn func(convoy.Endpoint) convoy.EndpointStatus, ep convoy.Endpoint) (st convoy.EndpointStatus, panicked any) {
	defer func() {
		if p := recover(); p != nil {
			panicked = p
		}
	}()
	return fn(ep), nil
}

// rollback ends a batch transaction that did not commit. If that fails
// the connection is closed, so the pool does not hand it out in a
// transaction.
func rollback(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		_ = conn.Conn().Close(ctx)
	}
}

const insertAttemptsSQL = `
INSERT INTO {s}.attempts (` + attemptCols + `)
SELECT * FROM unnest($1::uuid[], $2::integer[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::jsonb[], $9::bytea[], $10::integer[], $11::jsonb[], $12::bytea[], $13::boolean[],
                     $14::text[], $15::text[], $16::bigint[], $17::bigint[])`

func attemptArgs(as []*convoy.Attempt) []any {
	n := len(as)
	var (
		dIDs, ids, evIDs, epIDs, urls, methods, errs, ips = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		nums, codes              = make([]int32, n), make([]int32, n)
		reqH, reqB, respH, respB = make([][]byte, n), make([][]byte, n), make([][]byte, n), make([][]byte, n)
		truncated                = make([]bool, n)
		started                  = make([]*int64, n)
		durs                     = make([]int64, n)
	)
	for i, a := range as {
		dIDs[i], nums[i], ids[i], evIDs[i], epIDs[i] = a.DeliveryID, int32(a.Number), a.ID, a.EventID, a.EndpointID
		urls[i], methods[i], codes[i], errs[i], ips[i] = a.URL, a.Method, int32(a.StatusCode), a.Error, a.RemoteIP
		reqH[i], reqB[i], respH[i], respB[i] = encodeHeaders(a.RequestHeaders), a.RequestBody, encodeHeaders(a.ResponseHeaders), a.ResponseBody
		truncated[i], started[i], durs[i] = a.ResponseTruncated, nanos(a.StartedAt), int64(a.Duration)
	}
	return []any{uuids(dIDs), nums, uuids(ids), evIDs, epIDs, urls, methods, reqH, reqB, codes, respH, respB, truncated, errs, ips, started, durs}
}

const updateDeliveriesSQL = `
UPDATE {s}.deliveries d SET
	status = u.status, attempts = u.attempts, round_attempts = u.round_attempts, claims = u.claims,
	next_attempt_at = u.next_attempt_at, lease_owner = '', lease_id = '', lease_expires_at = NULL,
	last_error = u.last_error, updated_at = u.updated_at, due_at = u.due_at
FROM unnest($1::uuid[], $2::text[], $3::integer[], $4::integer[], $5::integer[], $6::bigint[], $7::text[],
            $8::bigint[], $9::bigint[])
     AS u(id, status, attempts, round_attempts, claims, next_attempt_at, last_error, updated_at, due_at)
WHERE d.id = u.id`

func deliveryArgs(ds map[string]*dstate) []any {
	var (
		ids, sts, errs     []string
		att, round, claims []int32
		next, updated, due []*int64
	)
	for id, d := range ds {
		if !d.changed {
			continue
		}
		ids, sts, errs = append(ids, id), append(sts, string(d.status)), append(errs, d.lastError)
		att, round, claims = append(att, int32(d.attempts)), append(round, int32(d.roundAttempts)), append(claims, int32(d.claims))
		next, updated = append(next, d.next), append(updated, d.updated)
		if d.held {
			due = append(due, nil)
		} else {
			due = append(due, dueNanos(d.status, fromNanos(d.next)))
		}
	}
	return []any{uuids(ids), sts, att, round, claims, next, errs, updated, due}
}

const updateHealthSQL = `
UPDATE {s}.endpoint_state e SET health = u.health
FROM unnest($1::uuid[], $2::jsonb[]) AS u(id, health)
WHERE e.endpoint_id = u.id`

func healthArgs(eps map[string]*estate) []any {
	var (
		ids    []string
		health [][]byte
	)
	for id, e := range eps {
		if e.changed {
			ids, health = append(ids, id), append(health, encodeHealth(e.ep.Health))
		}
	}
	if ids == nil {
		return nil
	}
	return []any{uuids(ids), health}
}

const updateStatusSQL = `
UPDATE {s}.endpoints e SET status = u.status
FROM unnest($1::uuid[], $2::text[]) AS u(id, status)
WHERE e.id = u.id`

func statusArgs(eps map[string]*estate) []any {
	var ids, sts []string
	for id, e := range eps {
		if e.ep.Status != e.stored {
			ids, sts = append(ids, id), append(sts, string(e.ep.Status))
		}
	}
	if ids == nil {
		return nil
	}
	return []any{uuids(ids), sts}
}
