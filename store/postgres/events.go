package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/convoykit/convoy"
)

const eventCols = `id, app_id, type, data, idempotency_key, created_at, trace_parent`

func scanEvent(row pgx.Row) (*convoy.Event, error) {
	var (
		ev      convoy.Event
		data    []byte
		created int64
	)
	if err := row.Scan(&ev.ID, &ev.AppID, &ev.Type, &data, &ev.IdempotencyKey, &created, &ev.TraceParent); err != nil {
		return nil, err
	}
	ev.Data = data
	ev.CreatedAt = fromSortNanos(created)
	return &ev, nil
}

const deliveryCols = `id, event_id, app_id, endpoint_id, event_type, status, attempts, round_attempts, claims,
	next_attempt_at, lease_owner, lease_id, lease_expires_at, last_error, created_at, updated_at`

func scanDelivery(row pgx.Row) (*convoy.Delivery, error) {
	var (
		d                  convoy.Delivery
		next, exp, updated *int64
		created            int64
	)
	if err := row.Scan(&d.ID, &d.EventID, &d.AppID, &d.EndpointID, &d.EventType, &d.Status, &d.Attempts,
		&d.RoundAttempts, &d.Claims, &next, &d.LeaseOwner, &d.LeaseID, &exp, &d.LastError, &created, &updated); err != nil {
		return nil, err
	}
	d.NextAttemptAt, d.LeaseExpiresAt = fromNanos(next), fromNanos(exp)
	d.CreatedAt, d.UpdatedAt = fromSortNanos(created), fromNanos(updated)
	return &d, nil
}

// scanDeliveryEvent scans a row of deliveryCols followed by eventCols
// from a LEFT JOIN: the event is nil when its columns are NULL.
func scanDeliveryEvent(row pgx.Row) (*convoy.Delivery, *convoy.Event, error) {
	var (
		d                                   convoy.Delivery
		next, exp, updated                  *int64
		created                             int64
		evID, evApp, evType, evKey, evTrace *string
		evData                              []byte
		evCreated                           *int64
	)
	if err := row.Scan(&d.ID, &d.EventID, &d.AppID, &d.EndpointID, &d.EventType, &d.Status, &d.Attempts,
		&d.RoundAttempts, &d.Claims, &next, &d.LeaseOwner, &d.LeaseID, &exp, &d.LastError, &created, &updated,
		&evID, &evApp, &evType, &evData, &evKey, &evCreated, &evTrace); err != nil {
		return nil, nil, err
	}
	d.NextAttemptAt, d.LeaseExpiresAt = fromNanos(next), fromNanos(exp)
	d.CreatedAt, d.UpdatedAt = fromSortNanos(created), fromNanos(updated)
	if evID == nil {
		return &d, nil, nil // deleted meanwhile
	}
	ev := &convoy.Event{ID: *evID, AppID: *evApp, Type: *evType, Data: evData}
	if evKey != nil {
		ev.IdempotencyKey = *evKey
	}
	if evTrace != nil {
		ev.TraceParent = *evTrace
	}
	if evCreated != nil {
		ev.CreatedAt = fromSortNanos(*evCreated)
	}
	return &d, ev, nil
}

// qualify prefixes each column of the list cols with alias.
func qualify(alias, cols string) string {
	fields := strings.Split(cols, ",")
	for i, f := range fields {
		fields[i] = alias + "." + strings.TrimSpace(f)
	}
	return strings.Join(fields, ", ")
}

func collectDeliveries(rows pgx.Rows) ([]*convoy.Delivery, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*convoy.Delivery, error) { return scanDelivery(r) })
}

// checkInsert validates an InsertEvent call before any I/O.
func checkInsert(ev *convoy.Event, deliveries []*convoy.Delivery) error {
	if err := ev.Validate(0); err != nil {
		return err
	}
	if err := checkTimes("event.CreatedAt", ev.CreatedAt); err != nil {
		return err
	}
	for _, d := range deliveries {
		if err := d.Validate(); err != nil {
			return err
		}
		if d.EventID != ev.ID {
			return fmt.Errorf("%w: delivery %s is for event %s, not %s", convoy.ErrInvalid, d.ID, d.EventID, ev.ID)
		}
		if d.AppID != ev.AppID {
			return fmt.Errorf("%w: delivery %s is for app %s, not %s", convoy.ErrInvalid, d.ID, d.AppID, ev.AppID)
		}
		if d.Status == convoy.DeliveryProcessing {
			return fmt.Errorf("%w: delivery %s inserted as Processing", convoy.ErrInvalidStatus, d.ID)
		}
		if err := checkTimes("delivery", d.NextAttemptAt, d.LeaseExpiresAt, d.CreatedAt, d.UpdatedAt); err != nil {
			return err
		}
	}
	return nil
}

// insertSQL stores events and their deliveries in one statement: the
// events (but those whose idempotency key is taken, by a committed event
// or one earlier in the statement), the deliveries of the events stored
// whose endpoint still exists (locked FOR KEY SHARE, so it cannot vanish
// before commit), the counters, and, when $23 names a channel, a
// notification delivered at commit. A delivery to another app's endpoint
// violates deliveries_endpoint_fk and fails the statement. It returns the
// IDs of the events and deliveries stored.
const insertSQL = `
WITH ev AS (
	INSERT INTO {s}.events (` + eventCols + `)
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[], $5::text[], $6::bigint[], $25::text[])
	ON CONFLICT (app_id, idempotency_key) WHERE idempotency_key <> '' DO NOTHING
	RETURNING id
), eps AS (
	SELECT id FROM {s}.endpoints WHERE id = ANY ($8::uuid[]) FOR KEY SHARE
), ins AS (
	INSERT INTO {s}.deliveries (` + deliveryCols + `, due_at)
	SELECT u.*
	  FROM unnest($7::uuid[], $9::uuid[], $10::uuid[], $8::uuid[], $11::text[], $12::text[], $13::integer[],
	              $14::integer[], $15::integer[], $16::bigint[], $17::text[], $18::text[], $19::bigint[],
	              $20::text[], $21::bigint[], $22::bigint[], $24::bigint[])
	       AS u(id, event_id, app_id, endpoint_id, event_type, status, attempts, round_attempts, claims,
	            next_attempt_at, lease_owner, lease_id, lease_expires_at, last_error, created_at, updated_at, due_at)
	 WHERE u.event_id IN (SELECT id FROM ev) AND u.endpoint_id IN (SELECT id FROM eps)
	RETURNING id, status
)
SELECT coalesce((SELECT array_agg(id) FROM ev), '{}'), coalesce((SELECT array_agg(id) FROM ins), '{}')
  FROM (SELECT {s}.add_counts(ARRAY[
               (SELECT count(*) FROM ins WHERE status = 'Scheduled'),
               (SELECT count(*) FROM ins WHERE status = 'Processing'),
               (SELECT count(*) FROM ins WHERE status = 'Success'),
               (SELECT count(*) FROM ins WHERE status = 'Retry'),
               (SELECT count(*) FROM ins WHERE status = 'Failure'),
               (SELECT count(*) FROM ins WHERE status = 'Discarded'), 0, 0, 0])) c,
       (SELECT count(*) FROM (
               SELECT pg_notify($23, '')
                WHERE $23::text IS NOT NULL
                  AND EXISTS (SELECT 1 FROM ins WHERE status IN ('Scheduled', 'Retry'))) n) w`

// insertArgs are the parameters of insertSQL for the events and
// deliveries of ops.
func insertArgs(ops []*op, channel *string) []any {
	var (
		evIDs, evApps, evTypes, evKeys, evTrace []string
		evData                                  [][]byte
		evCreated                               []int64
	)
	n := 0
	for _, o := range ops {
		evIDs, evApps, evTypes = append(evIDs, o.ev.ID), append(evApps, o.ev.AppID), append(evTypes, o.ev.Type)
		evData, evKeys, evCreated = append(evData, o.ev.Data), append(evKeys, o.ev.IdempotencyKey), append(evCreated, sortNanos(o.ev.CreatedAt))
		evTrace = append(evTrace, o.ev.TraceParent)
		n += len(o.ds)
	}
	var (
		ids, evs, apps, eps, types, sts = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n),
			make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		owners, leases, errs = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		att, round, claims   = make([]int32, 0, n), make([]int32, 0, n), make([]int32, 0, n)
		next, exp, upd, due  = make([]*int64, 0, n), make([]*int64, 0, n), make([]*int64, 0, n), make([]*int64, 0, n)
		created              = make([]int64, 0, n)
	)
	for _, o := range ops {
		for _, d := range o.ds {
			ids, evs, apps, eps = append(ids, d.ID), append(evs, d.EventID), append(apps, d.AppID), append(eps, d.EndpointID)
			types, sts = append(types, d.EventType), append(sts, string(d.Status))
			owners, leases, errs = append(owners, d.LeaseOwner), append(leases, d.LeaseID), append(errs, d.LastError)
			att, round, claims = append(att, int32(d.Attempts)), append(round, int32(d.RoundAttempts)), append(claims, int32(d.Claims))
			next, exp, upd = append(next, nanos(d.NextAttemptAt)), append(exp, nanos(d.LeaseExpiresAt)), append(upd, nanos(d.UpdatedAt))
			if d.Status == convoy.DeliveryProcessing { // leased by InsertEventClaim
				due = append(due, dueNanos(d.Status, d.LeaseExpiresAt))
			} else {
				due = append(due, dueNanos(d.Status, d.NextAttemptAt))
			}
			created = append(created, sortNanos(d.CreatedAt))
		}
	}
	return []any{
		uuids(evIDs), uuids(evApps), evTypes, evData, evKeys, evCreated,
		uuids(ids), uuids(eps), uuids(evs), uuids(apps), types, sts, att, round, claims, next, owners, leases, exp, errs, created, upd,
		channel, due, evTrace,
	}
}

// insertRows runs insertSQL on q for ops and returns the IDs of the
// events and deliveries it stored.
func (s *Store) insertRows(ctx context.Context, q querier, ops []*op, channel *string) (events, deliveries map[string]bool, err error) {
	var evIDs, dIDs []string
	if err := q.QueryRow(ctx, s.q(insertSQL), insertArgs(ops, channel)...).Scan(&evIDs, &dIDs); err != nil {
		return nil, nil, err
	}
	events, deliveries = make(map[string]bool, len(evIDs)), make(map[string]bool, len(dIDs))
	for _, id := range evIDs {
		events[id] = true
	}
	for _, id := range dIDs {
		deliveries[id] = true
	}
	return events, deliveries, nil
}

// result sets o's outcome from what insertRows stored, reading the first
// event of its idempotency key when its own was not stored.
func (s *Store) result(ctx context.Context, q querier, o *op, events, deliveries map[string]bool) error {
	if !events[o.ev.ID] {
		res, err := s.firstEvent(ctx, q, o.ev.AppID, o.ev.IdempotencyKey)
		o.ins = res
		return err
	}
	o.ins = convoy.InsertResult{Event: o.ev.Clone(), Inserted: true}
	for _, d := range o.ds {
		if deliveries[d.ID] {
			o.ins.Deliveries = append(o.ins.Deliveries, d.Clone())
			o.notify = o.notify || !d.Status.Final()
		}
	}
	return nil
}

// insertOne stores one event on q (a transaction of the caller's, or the
// pool), reading the first event of its idempotency key if that is taken.
func (s *Store) insertOne(ctx context.Context, q querier, o *op, channel *string) error {
	if o.claim != nil {
		if err := s.insertClaiming(ctx, []*op{o}); err != nil {
			return err
		}
		return o.err
	}
	events, deliveries, err := s.insertRows(ctx, q, []*op{o}, channel)
	if err != nil {
		return s.insertErr(err, o.ev)
	}
	return s.result(ctx, q, o, events, deliveries)
}

// insertClaiming stores the events of ops, some of them InsertEventClaim
// calls, in one transaction that leases what it may of their new
// deliveries:
//
//  1. When ops ask for PerEndpoint, it takes the advisory locks that
//     Claim takes for the endpoints they would lease to, in the order of
//     the locks' keys (Claim's order too), waiting for a claim that
//     holds one to commit. It does the same for the ordered endpoints
//     among them, whatever the caps.
//  2. In new statements, so that the claims committed by the former
//     holders of those locks are seen, it reads the earliest due time of
//     the store, counts the deliveries of those endpoints Processing
//     under unexpired leases, by owner, and finds the ordered ones that
//     have a delivery pending: they get no lease.
//  3. It inserts the deliveries, leased ones Processing, with the others.
//
// The locks are held until the commit, so no claim of another process can
// count the endpoints' in-flight work in between.
//
// It takes two round trips: BEGIN goes in the pipeline of step 1 and
// COMMIT in that of step 3. The outcome of each op (o.ins, or o.err for
// one whose idempotency key was taken and whose first event cannot be
// read) is set once the transaction committed. An error returned means
// it did not commit, unless the connection failed during COMMIT, when
// nobody can tell (as with any commit).
func (s *Store) insertClaiming(ctx context.Context, ops []*op) error {
	for _, o := range ops {
		o.err = nil
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.wrap(err)
	}
	// A connection left inside the transaction (a failed ROLLBACK) is
	// closed by Release, not reused.
	defer conn.Release()
	begun, err := s.planLeases(ctx, conn, ops)
	if err != nil {
		if begun {
			_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
		return err
	}
	var events, deliveries map[string]bool
	if !begun {
		// Nothing to lease: one statement, its own transaction.
		events, deliveries, err = s.insertRows(ctx, conn, ops, nil)
	} else {
		b := &pgx.Batch{}
		var evIDs, dIDs []string
		b.Queue(s.q(insertSQL), insertArgs(ops, nil)...).QueryRow(func(r pgx.Row) error { return r.Scan(&evIDs, &dIDs) })
		b.Queue("COMMIT")
		if err = conn.SendBatch(ctx, b).Close(); err != nil {
			_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		} else {
			events, deliveries = idSet(evIDs), idSet(dIDs)
		}
	}
	if err != nil {
		if len(ops) == 1 {
			return s.insertErr(err, ops[0].ev)
		}
		return s.wrap(err)
	}
	for _, o := range ops {
		o.err = s.result(ctx, conn, o, events, deliveries)
	}
	return nil
}

// idSet returns the IDs as a set.
func idSet(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// planLeases sets each op's ds to the deliveries to insert: as given, but
// those of an InsertEventClaim that may be leased, which are leased. When
// there are endpoints to lock it begins a transaction on conn for them
// (begun), which the caller ends.
func (s *Store) planLeases(ctx context.Context, conn *pgxpool.Conn, ops []*op) (begun bool, err error) {
	var (
		eps     []string
		seen    = map[string]bool{}
		capped  bool
		minimum *int64
	)
	for _, o := range ops {
		if o.given == nil { // an InsertEvent
			o.given = o.ds
		}
		o.ds = slices.Clone(o.given)
		if o.claim == nil || o.claim.Limit <= 0 {
			continue
		}
		capped = capped || o.claim.Capped()
		now := sortNanos(o.claim.Now)
		if minimum == nil || now < *minimum {
			minimum = &now
		}
		for _, d := range o.given {
			if d.Status == convoy.DeliveryScheduled && !seen[d.EndpointID] {
				seen[d.EndpointID] = true
				eps = append(eps, d.EndpointID)
			}
		}
	}
	if len(eps) == 0 {
		return false, nil
	}
	var (
		firstDue         *int64
		locked, orderedE []string
	)
	slices.Sort(eps)
	// The locks are waited for, not tried: a claim holds one only for its
	// own short transaction, and an endpoint skipped here would have its
	// new delivery left for the scheduler to claim, which takes the lock
	// again; at light load that became a loop of claims that kept every
	// Send from leasing. They are taken in the order of their keys
	// (hashtext of the endpoint ID), as Claim waits for them (it only
	// tries them in its fallback pass), so no two lockers wait for each
	// other; ID order would not do, for two endpoints whose IDs hash
	// alike share a lock.
	//
	// The statements go in one round trip (a pipeline); each after the
	// first runs in a new snapshot, so what the locks' former holders
	// committed is seen: the earliest due time of the store, the ordered
	// endpoints with a delivery pending, which get no lease, and the
	// deliveries Processing under unexpired leases, by owner.
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	b.Queue(s.q(`
		WITH o AS (SELECT id FROM {s}.endpoints WHERE id = ANY ($1::uuid[]) AND ordered),
		     l AS (SELECT e, pg_advisory_xact_lock(hashtext('convoy.claim:' || $2), k) AS x
		             FROM (SELECT e, hashtext(e::text) AS k FROM unnest($1::uuid[]) e
		                    WHERE ($3 OR e IN (SELECT id FROM o))
		                    ORDER BY k, e OFFSET 0) u)
		SELECT coalesce(array(SELECT e FROM l), '{}'), coalesce(array(SELECT id FROM o), '{}')`),
		uuids(eps), s.opts.Schema, capped).QueryRow(func(r pgx.Row) error { return r.Scan(&locked, &orderedE) })
	b.Queue(s.q(`
		SELECT due_at FROM {s}.deliveries
		 WHERE status IN ('Scheduled', 'Retry', 'Processing') AND due_at IS NOT NULL
		 ORDER BY due_at LIMIT 1`)).QueryRow(func(r pgx.Row) error {
		if err := r.Scan(&firstDue); !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return nil
	})
	var pending []string
	b.Queue(s.q(`
		SELECT coalesce(array(SELECT e.id FROM {s}.endpoints e
		                       WHERE e.id = ANY ($1::uuid[]) AND e.ordered
		                         AND EXISTS (SELECT 1 FROM {s}.deliveries
		                                      WHERE endpoint_id = e.id AND status IN ('Scheduled', 'Retry', 'Processing'))), '{}')`),
		uuids(eps)).QueryRow(func(r pgx.Row) error { return r.Scan(&pending) })
	// inFlight[endpoint][owner] counts Processing deliveries under
	// unexpired leases, of the endpoints locked (all of eps when capped).
	inFlight := map[string]map[string]int{}
	if capped {
		b.Queue(s.q(`
			SELECT endpoint_id, lease_owner, count(*) FROM {s}.deliveries
			 WHERE endpoint_id = ANY ($1::uuid[]) AND status IN ('Scheduled', 'Retry', 'Processing')
			   AND status = 'Processing' AND due_at > $2
			 GROUP BY 1, 2`), uuids(eps), *minimum).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var (
					ep, owner string
					n         int
				)
				if err := rows.Scan(&ep, &owner, &n); err != nil {
					return err
				}
				if inFlight[ep] == nil {
					inFlight[ep] = map[string]int{}
				}
				inFlight[ep][owner] = n
			}
			return rows.Err()
		})
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return true, s.wrap(err)
	}
	// busy holds the ordered endpoints that may not get a lease: those
	// with a delivery pending (every ordered one is locked).
	busy := make(map[string]bool, len(orderedE))
	for _, ep := range orderedE {
		busy[ep] = false
	}
	for _, ep := range pending {
		busy[ep] = true
	}
	isLocked := make(map[string]bool, len(locked))
	for _, ep := range locked {
		isLocked[ep] = true
	}
	// taken[endpoint][owner] counts the leases planned in this batch.
	taken := map[string]map[string]int{}
	for _, o := range ops {
		req := o.claim
		if req == nil || req.Limit <= 0 || (firstDue != nil && *firstDue <= sortNanos(req.Now)) {
			continue
		}
		left := req.Limit
		for i, d := range o.ds {
			if left == 0 {
				break
			}
			if d.Status != convoy.DeliveryScheduled {
				continue
			}
			if b, ordered := busy[d.EndpointID]; ordered {
				if b || len(taken[d.EndpointID]) > 0 {
					continue
				}
			}
			if limit, ok := req.Cap(d.EndpointID); ok {
				if !isLocked[d.EndpointID] {
					continue
				}
				others := 0
				for owner, n := range inFlight[d.EndpointID] {
					if owner != req.Owner {
						others += n
					}
				}
				for owner, n := range taken[d.EndpointID] {
					if owner != req.Owner {
						others += n
					}
				}
				// The caller's own leases planned earlier in the batch are
				// not added: like its Processing deliveries, which Claim
				// does not count either, they are in req.InFlight (a
				// Dispatcher counts what it reserved for its other Sends).
				if req.InFlight[d.EndpointID]+others >= limit {
					continue
				}
			}
			ld := d.Clone()
			req.Grant(ld)
			o.ds[i] = ld
			if taken[d.EndpointID] == nil {
				taken[d.EndpointID] = map[string]int{}
			}
			taken[d.EndpointID][req.Owner]++
			left--
		}
	}
	return true, nil
}

// runInserts stores a batch of InsertEvent calls in one statement (one
// round trip, one commit). If the statement fails, because one call is
// refused (an unknown app, a duplicate ID, another app's endpoint), each
// call is stored again on its own, so that only the refused ones fail.
func (s *Store) runInserts(ops []*op) {
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
	one := func(o *op) {
		for {
			o.ins, o.notify = convoy.InsertResult{}, false
			o.err = s.insertOne(ctx, s.pool, o, nil)
			if !errors.Is(o.err, errGone) {
				return
			}
			// The first event of the key was deleted meanwhile: the key is
			// free again, insert anew.
		}
	}
	if len(live) == 1 {
		one(live[0])
		close(live[0].done)
		return
	}
	if slices.ContainsFunc(live, func(o *op) bool { return o.claim != nil }) {
		err := s.insertClaiming(ctx, live)
		for _, o := range live {
			// Nothing committed: each on its own, so that only the refused
			// fail. A repeated key whose first event went meanwhile: anew.
			if err != nil || errors.Is(o.err, errGone) {
				one(o)
			}
			close(o.done)
		}
		return
	}
	events, deliveries, err := s.insertRows(ctx, s.pool, live, nil)
	for _, o := range live {
		switch {
		case err != nil:
			one(o)
		default:
			if o.err = s.result(ctx, s.pool, o, events, deliveries); errors.Is(o.err, errGone) {
				one(o)
			}
		}
		close(o.done)
	}
}

// errGone reports that the first event of an idempotency key was deleted
// between the conflict and the read.
var errGone = errors.New("first event gone")

func (s *Store) insertErr(err error, ev *convoy.Event) error {
	switch code, constraint := pgErr(err); {
	case code == codeUniqueViolation && constraint == "events_pkey":
		return duplicate("event", ev.ID)
	case code == codeUniqueViolation && constraint == "deliveries_pkey":
		return fmt.Errorf("%w: a delivery ID of event %s", convoy.ErrDuplicate, ev.ID)
	case code == codeForeignKeyViolation && constraint == "events_app_fk":
		return notFound("app", ev.AppID)
	case code == codeForeignKeyViolation && constraint == "deliveries_endpoint_fk":
		return fmt.Errorf("%w: a delivery of event %s goes to an endpoint of another app", convoy.ErrInvalid, ev.ID)
	}
	return s.wrap(err)
}

// firstEvent reads the event holding an idempotency key, with its
// deliveries.
func (s *Store) firstEvent(ctx context.Context, q querier, appID, key string) (convoy.InsertResult, error) {
	ev, err := scanEvent(q.QueryRow(ctx, s.q(`SELECT `+eventCols+` FROM {s}.events WHERE app_id = $1 AND idempotency_key = $2`), appID, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return convoy.InsertResult{}, errGone
	}
	if err != nil {
		return convoy.InsertResult{}, s.wrap(err)
	}
	rows, err := q.Query(ctx, s.q(`SELECT `+deliveryCols+` FROM {s}.deliveries WHERE event_id = $1 ORDER BY id`), ev.ID)
	if err != nil {
		return convoy.InsertResult{}, s.wrap(err)
	}
	ds, err := collectDeliveries(rows)
	if err != nil {
		return convoy.InsertResult{}, s.wrap(err)
	}
	return convoy.InsertResult{Event: ev, Deliveries: ds}, nil
}

// InsertEvent implements [convoy.Store]. Calls made at the same time are
// group committed (see Options.InsertBatch): one statement, one round
// trip and one commit store all their events, unless one is refused,
// when each is stored on its own. An idempotent repeat takes one more
// read. Dispatchers of other processes are woken after the commit.
func (s *Store) InsertEvent(ctx context.Context, ev *convoy.Event, deliveries []*convoy.Delivery) (convoy.InsertResult, error) {
	if err := checkInsert(ev, deliveries); err != nil {
		return convoy.InsertResult{}, err
	}
	// The committer may read these after a caller whose ctx ended has
	// returned; it reads its own copies.
	o := &op{kind: opInsert, ev: ev.Clone(), ds: make([]*convoy.Delivery, len(deliveries))}
	for i, d := range deliveries {
		o.ds[i] = d.Clone()
	}
	if err := s.submit(ctx, s.inserts, o); err != nil {
		return convoy.InsertResult{}, err
	}
	s.grew(len(deliveries))
	return o.ins, nil
}

// InsertEventClaim implements [convoy.ClaimingInserter]: InsertEvent, and
// in the same transaction the new Scheduled deliveries are leased as
// Claim would lease them, unless a delivery of the store (of any process)
// is due at req.Now. req.PerEndpoint holds across processes, as it does
// for Claim: an endpoint is leased only while this transaction holds
// Claim's advisory lock for it, and the deliveries other owners hold
// count against its cap. Calls made at the same time are group committed
// like InsertEvent's; a batch with InsertEventClaim calls takes two more
// statements, one read and one count.
func (s *Store) InsertEventClaim(ctx context.Context, ev *convoy.Event, deliveries []*convoy.Delivery, req convoy.ClaimRequest) (convoy.InsertResult, error) {
	if req.Lease <= 0 {
		return convoy.InsertResult{}, fmt.Errorf("%w: claim lease must be positive", convoy.ErrInvalid)
	}
	if err := checkInsert(ev, deliveries); err != nil {
		return convoy.InsertResult{}, err
	}
	if err := checkTimes("claim time", req.Now, req.Now.Add(req.Lease)); err != nil {
		return convoy.InsertResult{}, err
	}
	req.InFlight = maps.Clone(req.InFlight)
	o := &op{kind: opInsert, ev: ev.Clone(), given: make([]*convoy.Delivery, len(deliveries))}
	if req.Limit > 0 {
		o.claim = &req
	}
	for i, d := range deliveries {
		o.given[i] = d.Clone()
	}
	o.ds = o.given
	if err := s.submit(ctx, s.inserts, o); err != nil {
		return convoy.InsertResult{}, err
	}
	s.grew(len(deliveries))
	return o.ins, nil
}

// InsertEventTx implements [convoy.TxInserter]: InsertEvent inside the
// caller's transaction tx, for [convoy.SendTx]. Nothing it writes is
// visible to Claim before tx commits, and a rollback leaves no trace.
// Its writes run under a savepoint, so a refusal (ErrNotFound,
// ErrDuplicate, ErrInvalid) leaves tx usable and unchanged. A NOTIFY
// inside tx wakes the dispatchers of every process, this one's included,
// when tx commits.
//
// tx must belong to a connection of the store's database, and should run
// at READ COMMITTED (PostgreSQL's default): under REPEATABLE READ or
// SERIALIZABLE, an idempotency key used by a transaction that committed
// after tx began fails with a serialization error.
//
// PostgreSQL serialises the commits of transactions that sent a NOTIFY,
// so very many concurrent SendTx transactions commit one at a time; plain
// InsertEvent (Dispatcher.Send) notifies outside the transaction and has
// no such limit.
func (s *Store) InsertEventTx(ctx context.Context, tx pgx.Tx, ev *convoy.Event, deliveries []*convoy.Delivery) (convoy.InsertResult, error) {
	if tx == nil {
		return convoy.InsertResult{}, fmt.Errorf("%w: nil transaction", convoy.ErrInvalid)
	}
	if err := checkInsert(ev, deliveries); err != nil {
		return convoy.InsertResult{}, err
	}
	if err := s.check(ctx); err != nil {
		return convoy.InsertResult{}, err
	}
	sp, err := tx.Begin(ctx) // a savepoint
	if err != nil {
		return convoy.InsertResult{}, s.wrap(err)
	}
	channel := s.opts.Schema
	o := &op{kind: opInsert, ev: ev, ds: deliveries}
	err = s.insertOne(ctx, sp, o, &channel)
	if errors.Is(err, errGone) {
		err = fmt.Errorf("convoy: postgres: the event holding idempotency key %q was deleted meanwhile; retry", ev.IdempotencyKey)
	}
	if err != nil {
		_ = sp.Rollback(ctx)
		return convoy.InsertResult{}, err
	}
	if err := sp.Commit(ctx); err != nil {
		return convoy.InsertResult{}, s.wrap(err)
	}
	s.grew(len(deliveries))
	return o.ins, nil
}

// GetEvent implements [convoy.Store].
func (s *Store) GetEvent(ctx context.Context, id string) (*convoy.Event, error) {
	if err := convoy.ValidateID("event ID", id); err != nil {
		return nil, err
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	ev, err := scanEvent(s.pool.QueryRow(ctx, s.q(`SELECT `+eventCols+` FROM {s}.events WHERE id = $1`), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("event", id)
	}
	if err != nil {
		return nil, s.wrap(err)
	}
	return ev, nil
}

// sqlWhere builds a WHERE clause with numbered parameters.
type sqlWhere struct {
	conds []string
	args  []any
}

// add appends cond with each ? replaced by the next parameter of vs.
func (w *sqlWhere) add(cond string, vs ...any) {
	for _, v := range vs {
		w.args = append(w.args, v)
		cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(w.args)), 1)
	}
	w.conds = append(w.conds, cond)
}

// param adds v as a parameter and returns its placeholder.
func (w *sqlWhere) param(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *sqlWhere) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// ListEvents implements [convoy.Store]. Each combination of filters walks
// its index backwards: events_created, events_app_created,
// events_type_created or events_app_type_created.
func (s *Store) ListEvents(ctx context.Context, q convoy.EventQuery, page convoy.Page) ([]*convoy.Event, string, error) {
	if q.AppID != "" {
		if err := convoy.ValidateID("app ID", q.AppID); err != nil {
			return nil, "", err
		}
	}
	if q.Type != "" {
		if err := convoy.ValidateEventType(q.Type); err != nil {
			return nil, "", err
		}
	}
	if err := s.check(ctx); err != nil {
		return nil, "", err
	}
	var w sqlWhere
	if q.AppID != "" {
		w.add("app_id = ?", q.AppID)
	}
	if q.Type != "" {
		w.add("type = ?", q.Type)
	}
	if !q.CreatedFrom.IsZero() {
		w.add("created_at >= ?", clampNanos(q.CreatedFrom))
	}
	if !q.CreatedTo.IsZero() {
		w.add("created_at < ?", clampNanos(q.CreatedTo))
	}
	if page.Cursor != "" {
		at, id, ok := strings.Cut(page.Cursor, "/")
		n, err := strconv.ParseInt(at, 10, 64)
		if !ok || err != nil || convoy.ValidateID("", id) != nil {
			return nil, "", badCursor("events")
		}
		w.add("(created_at, id) < (?, ?)", n, id)
	}
	n := page.Size()
	sql := s.q(`SELECT `+eventCols+` FROM {s}.events`) + w.String() +
		` ORDER BY created_at DESC, id DESC LIMIT ` + w.param(n+1)
	rows, err := s.pool.Query(ctx, sql, w.args...)
	if err != nil {
		return nil, "", s.wrap(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*convoy.Event, error) { return scanEvent(r) })
	if err != nil {
		return nil, "", s.wrap(err)
	}
	return pageOut(out, n, func(ev *convoy.Event) string {
		return strconv.FormatInt(sortNanos(ev.CreatedAt), 10) + "/" + ev.ID
	})
}

// GetDelivery implements [convoy.Store].
func (s *Store) GetDelivery(ctx context.Context, id string) (*convoy.Delivery, error) {
	if err := convoy.ValidateID("delivery ID", id); err != nil {
		return nil, err
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	d, err := scanDelivery(s.pool.QueryRow(ctx, s.q(`SELECT `+deliveryCols+` FROM {s}.deliveries WHERE id = $1`), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("delivery", id)
	}
	if err != nil {
		return nil, s.wrap(err)
	}
	return d, nil
}

// ListDeliveries implements [convoy.Store]. By event it walks
// deliveries_event (an event has one delivery per endpoint). By endpoint
// or app it walks deliveries_endpoint or deliveries_app, which hold
// (…, status, id): one backward range per status asked (all six when none
// is), merged in ID order, so a page costs O(log n + k) whatever the
// other statuses hold.
func (s *Store) ListDeliveries(ctx context.Context, q convoy.DeliveryQuery, page convoy.Page) ([]*convoy.Delivery, string, error) {
	if q.EventID == "" && q.EndpointID == "" && q.AppID == "" {
		return nil, "", fmt.Errorf("%w: delivery query needs an event, endpoint or app ID", convoy.ErrInvalid)
	}
	for _, f := range []struct{ name, id string }{{"event ID", q.EventID}, {"endpoint ID", q.EndpointID}, {"app ID", q.AppID}} {
		if f.id != "" {
			if err := convoy.ValidateID(f.name, f.id); err != nil {
				return nil, "", err
			}
		}
	}
	statuses := slices.Clone(q.Statuses)
	for _, st := range statuses {
		if !st.Valid() {
			return nil, "", fmt.Errorf("%w: %q", convoy.ErrInvalidStatus, st)
		}
	}
	slices.Sort(statuses)
	statuses = slices.Compact(statuses)
	if page.Cursor != "" && convoy.ValidateID("", page.Cursor) != nil {
		return nil, "", badCursor("deliveries")
	}
	if err := s.check(ctx); err != nil {
		return nil, "", err
	}
	n := page.Size()
	var w sqlWhere
	for _, f := range []struct{ col, id string }{{"event_id", q.EventID}, {"endpoint_id", q.EndpointID}, {"app_id", q.AppID}} {
		if f.id != "" {
			w.add(f.col+" = ?", f.id)
		}
	}
	if page.Cursor != "" {
		w.add("id < ?", page.Cursor)
	}
	limit := w.param(n + 1)
	var sql string
	if q.EventID != "" {
		if len(statuses) > 0 {
			sts := make([]string, len(statuses))
			for i, st := range statuses {
				sts[i] = string(st)
			}
			w.add("status = ANY (?)", sts)
		}
		sql = s.q(`SELECT `+deliveryCols+` FROM {s}.deliveries`) + w.String() + ` ORDER BY id DESC LIMIT ` + limit
	} else {
		if len(statuses) == 0 {
			statuses = slices.Clone(convoy.DeliveryStatuses)
		}
		parts := make([]string, len(statuses))
		for i, st := range statuses {
			conds := append(slices.Clone(w.conds), "status = "+w.param(string(st)))
			parts[i] = `(SELECT ` + deliveryCols + ` FROM ` + s.ident + `.deliveries WHERE ` + strings.Join(conds, " AND ") +
				` ORDER BY id DESC LIMIT ` + limit + `)`
		}
		sql = `SELECT * FROM (` + strings.Join(parts, " UNION ALL ") + `) u ORDER BY id DESC LIMIT ` + limit
	}
	rows, err := s.pool.Query(ctx, sql, w.args...)
	if err != nil {
		return nil, "", s.wrap(err)
	}
	out, err := collectDeliveries(rows)
	if err != nil {
		return nil, "", s.wrap(err)
	}
	return pageOut(out, n, func(d *convoy.Delivery) string { return d.ID })
}

const attemptCols = `delivery_id, number, id, event_id, endpoint_id, url, method, request_headers, request_body,
	status_code, response_headers, response_body, response_truncated, error, remote_ip, started_at, duration`

func scanAttempt(row pgx.Row) (*convoy.Attempt, error) {
	var (
		a                 convoy.Attempt
		reqH, respH       []byte
		reqBody, respBody []byte
		started           *int64
		dur               int64
	)
	if err := row.Scan(&a.DeliveryID, &a.Number, &a.ID, &a.EventID, &a.EndpointID, &a.URL, &a.Method, &reqH,
		&reqBody, &a.StatusCode, &respH, &respBody, &a.ResponseTruncated, &a.Error, &a.RemoteIP, &started, &dur); err != nil {
		return nil, err
	}
	var err error
	if a.RequestHeaders, err = decodeHeaders(reqH); err != nil {
		return nil, err
	}
	if a.ResponseHeaders, err = decodeHeaders(respH); err != nil {
		return nil, err
	}
	a.RequestBody, a.ResponseBody = reqBody, respBody
	a.StartedAt = fromNanos(started)
	a.Duration = time.Duration(dur)
	return &a, nil
}

// ListAttempts implements [convoy.Store] through the attempts primary key
// (delivery_id, number, id), walked backwards.
func (s *Store) ListAttempts(ctx context.Context, deliveryID string, page convoy.Page) ([]*convoy.Attempt, string, error) {
	if err := convoy.ValidateID("delivery ID", deliveryID); err != nil {
		return nil, "", err
	}
	var w sqlWhere
	w.add("delivery_id = ?", deliveryID)
	if page.Cursor != "" {
		num, id, ok := strings.Cut(page.Cursor, "/")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || convoy.ValidateID("", id) != nil {
			return nil, "", badCursor("attempts")
		}
		w.add("(number, id) < (?, ?)", n, id)
	}
	if err := s.check(ctx); err != nil {
		return nil, "", err
	}
	n := page.Size()
	sql := s.q(`SELECT `+attemptCols+` FROM {s}.attempts`) + w.String() + ` ORDER BY number DESC, id DESC LIMIT ` + w.param(n+1)
	rows, err := s.pool.Query(ctx, sql, w.args...)
	if err != nil {
		return nil, "", s.wrap(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*convoy.Attempt, error) { return scanAttempt(r) })
	if err != nil {
		return nil, "", s.wrap(err)
	}
	if len(out) == 0 {
		var ok bool
		if err := s.pool.QueryRow(ctx, s.q(`SELECT EXISTS (SELECT 1 FROM {s}.deliveries WHERE id = $1)`), deliveryID).Scan(&ok); err != nil {
			return nil, "", s.wrap(err)
		}
		if !ok {
			return nil, "", notFound("delivery", deliveryID)
		}
	}
	return pageOut(out, n, func(a *convoy.Attempt) string { return strconv.Itoa(a.Number) + "/" + a.ID })
}

// pageOut cuts a list read with limit n+1 to n items and returns the next
// cursor: that of the last item kept, when there was one more.
func pageOut[T any](items []T, n int, cursor func(T) string) ([]T, string, error) {
	if len(items) <= n {
		return items, "", nil
	}
	items = items[:n]
	return items, cursor(items[n-1]), nil
}

// idCursor decodes the cursor of a list in ascending ID order.
func idCursor(c string) (string, error) {
	if c == "" {
		return "00000000-0000-0000-0000-000000000000", nil
	}
	if convoy.ValidateID("", c) != nil {
		return "", badCursor("ID")
	}
	return c, nil
}
