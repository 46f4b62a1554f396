package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/convoykit/convoy"
)

// Claim implements [convoy.Store] with the schema's claim function, one
// statement and one round trip: it walks deliveries_due in due order and
// locks what it takes with FOR UPDATE SKIP LOCKED, so concurrent claims,
// in this process or others, never hand out one delivery twice; under
// PerEndpoint they wait for each other only on an endpoint's lock (see
// below).
//
// req.PerEndpoint holds across processes: an endpoint is given at most
// PerEndpoint - req.InFlight[endpoint] - (its deliveries Processing under
// another owner's unexpired lease). Each Dispatcher claims under its own
// Owner, so InFlight counts its own attempts and the store counts the
// other processes'. Two claims never fill one endpoint's last slots
// together: a claim takes a transaction-scoped advisory lock per endpoint
// and counts its leases once it holds it. For the endpoints at the head
// of the due order it waits for a claim holding the lock, so the second
// of two claims in flight takes what the first left instead of nothing;
// in its fallback pass over the other endpoints it skips those held (see
// the package documentation).
func (s *Store) Claim(ctx context.Context, req convoy.ClaimRequest) ([]*convoy.Delivery, error) {
	args, err := s.claimArgs(ctx, req)
	if args == nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, s.q(`SELECT `+deliveryCols+` FROM {s}.claim($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`), args...)
	if err != nil {
		return nil, s.wrap(err)
	}
	out, err := collectDeliveries(rows)
	if err != nil {
		return nil, s.wrap(err)
	}
	return out, nil
}

// ClaimEvents implements [convoy.EventClaimer]: Claim's statement joined
// with the events of what it leased, still one statement and one round
// trip, instead of a GetEvent query per delivery.
func (s *Store) ClaimEvents(ctx context.Context, req convoy.ClaimRequest) ([]*convoy.Delivery, []*convoy.Event, error) {
	args, err := s.claimArgs(ctx, req)
	if args == nil {
		return nil, nil, err
	}
	// The LIMIT keeps the planner from flattening the subquery into a
	// join: it would estimate the function's 1,000 rows (PostgreSQL's
	// default for a set-returning function) and hash the whole events
	// table, spilling to disk, instead of looking up each event by its
	// key.
	rows, err := s.pool.Query(ctx, s.q(`SELECT `+qualify("c", deliveryCols)+`, `+qualify("e", eventCols)+
		` FROM {s}.claim($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) WITH ORDINALITY AS c
		LEFT JOIN LATERAL (SELECT `+eventCols+` FROM {s}.events WHERE id = c.event_id LIMIT 1) e ON true
		ORDER BY c.ordinality`), args...)
	if err != nil {
		return nil, nil, s.wrap(err)
	}
	defer rows.Close()
	var (
		ds  []*convoy.Delivery
		evs []*convoy.Event
	)
	for rows.Next() {
		d, ev, err := scanDeliveryEvent(rows)
		if err != nil {
			return nil, nil, s.wrap(err)
		}
		if ev != nil && len(evs) > 0 && evs[len(evs)-1] != nil && evs[len(evs)-1].ID == ev.ID {
			ev = evs[len(evs)-1] // a fan-out's deliveries share one event
		}
		ds, evs = append(ds, d), append(evs, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, s.wrap(err)
	}
	return ds, evs, nil
}

// claimArgs checks req and returns the claim function's arguments, or
// nil (and the error, if any) when there is nothing to claim.
func (s *Store) claimArgs(ctx context.Context, req convoy.ClaimRequest) ([]any, error) {
	if req.Lease <= 0 {
		return nil, fmt.Errorf("%w: claim lease must be positive", convoy.ErrInvalid)
	}
	expires := req.Now.Add(req.Lease)
	if err := checkTimes("claim time", req.Now, expires); err != nil {
		return nil, err
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if req.Limit <= 0 {
		return nil, nil
	}
	limit := min(req.Limit, math.MaxInt32/8)
	var (
		eps, capEps []string
		ns, caps    []int32
	)
	if req.Capped() {
		for id, n := range req.InFlight {
			if n > 0 && convoy.ValidateID("", id) == nil {
				eps = append(eps, id)
				ns = append(ns, int32(min(n, math.MaxInt32)))
			}
		}
		for id, c := range req.Caps {
			if convoy.ValidateID("", id) == nil {
				capEps = append(capEps, id)
				caps = append(caps, int32(min(max(c, 0), math.MaxInt32)))
			}
		}
	}
	perEndpoint := min(max(req.PerEndpoint, 0), math.MaxInt32)
	scan := min(max(4*limit, 64), 10000)
	return []any{sortNanos(req.Now), limit, req.Owner, expires.UnixNano(), perEndpoint, uuids(eps), ns, scan, uuids(capEps), caps}, nil
}

// NextDue implements [convoy.Store]: the first entry of deliveries_due.
// Deliveries of an ordered endpoint held back behind its head are left
// out once a Claim has passed over them (the schema's hold_back); a head
// that waits for another delivery's lease shows its own due time, so
// NextDue may then be early.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	if err := s.check(ctx); err != nil {
		return time.Time{}, false, err
	}
	var due *int64
	err := s.pool.QueryRow(ctx, s.q(`
		SELECT due_at FROM {s}.deliveries
		 WHERE status IN ('Scheduled', 'Retry', 'Processing') AND due_at IS NOT NULL
		 ORDER BY due_at LIMIT 1`)).Scan(&due)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, s.wrap(err)
	}
	return fromDue(due), true, nil
}

// requeueSet is the SET list of a re-sent delivery; $1 is now.
const requeueSet = `status = 'Scheduled', next_attempt_at = $1, due_at = $1, round_attempts = 0, claims = 0,
	lease_owner = '', lease_id = '', lease_expires_at = NULL, updated_at = $1`

// Requeue implements [convoy.Store]. It takes a key-share lock on the
// events of the deliveries it re-sends, so DeleteBefore (which locks the
// events it removes) either skips them or has removed them first.
func (s *Store) Requeue(ctx context.Context, r convoy.RequeueRequest) (int, error) {
	statuses := slices.Clone(r.Statuses)
	for _, st := range statuses {
		if st != convoy.DeliveryFailure && st != convoy.DeliveryDiscarded {
			return 0, fmt.Errorf("%w: cannot re-send %q deliveries", convoy.ErrInvalidStatus, st)
		}
	}
	if len(statuses) == 0 {
		statuses = []convoy.DeliveryStatus{convoy.DeliveryDiscarded}
	}
	switch {
	case r.DeliveryID != "":
		if err := convoy.ValidateID("delivery ID", r.DeliveryID); err != nil {
			return 0, err
		}
	case r.EndpointID != "":
		if err := convoy.ValidateID("endpoint ID", r.EndpointID); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("%w: requeue needs a delivery or endpoint ID", convoy.ErrInvalid)
	}
	if err := checkTimes("requeue time", r.Now); err != nil {
		return 0, err
	}
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	now := sortNanos(r.Now)
	var moved int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var c counts
		moved = 0
		if r.DeliveryID != "" {
			var evID string
			err := tx.QueryRow(ctx, s.q(`SELECT event_id FROM {s}.deliveries WHERE id = $1`), r.DeliveryID).Scan(&evID)
			if errors.Is(err, pgx.ErrNoRows) {
				return notFound("delivery", r.DeliveryID)
			}
			if err != nil {
				return s.wrap(err)
			}
			if _, err := tx.Exec(ctx, s.q(`SELECT 1 FROM {s}.events WHERE id = $1 FOR KEY SHARE`), evID); err != nil {
				return s.wrap(err)
			}
			var old string
			err = tx.QueryRow(ctx, s.q(`
				UPDATE {s}.deliveries d SET `+requeueSet+`
				  FROM (SELECT id, status FROM {s}.deliveries
				         WHERE id = $2 AND status IN ('Failure', 'Discarded') FOR UPDATE) o
				 WHERE d.id = o.id
				RETURNING o.status`), now, r.DeliveryID).Scan(&old)
			if errors.Is(err, pgx.ErrNoRows) {
				var st *string
				if err := tx.QueryRow(ctx, s.q(`SELECT status FROM {s}.deliveries WHERE id = $1`), r.DeliveryID).Scan(&st); errors.Is(err, pgx.ErrNoRows) {
					return notFound("delivery", r.DeliveryID)
				}
				return fmt.Errorf("%w: cannot re-send a delivery that is not Failure or Discarded", convoy.ErrInvalidStatus)
			}
			if err != nil {
				return s.wrap(err)
			}
			c.move(convoy.DeliveryStatus(old), convoy.DeliveryScheduled)
			moved = 1
			return s.wrap(c.add(ctx, tx, s))
		}

		var one int
		err := tx.QueryRow(ctx, s.q(`SELECT 1 FROM {s}.endpoints WHERE id = $1 FOR KEY SHARE`), r.EndpointID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("endpoint", r.EndpointID)
		}
		if err != nil {
			return s.wrap(err)
		}
		sts := make([]string, len(statuses))
		for i, st := range statuses {
			sts[i] = string(st)
		}
		var from, to *int64
		if !r.CreatedFrom.IsZero() {
			n := clampNanos(r.CreatedFrom)
			from = &n
		}
		if !r.CreatedTo.IsZero() {
			n := clampNanos(r.CreatedTo)
			to = &n
		}
		// match selects the deliveries to re-send, from parameter $n on.
		match := func(n int) string {
			return fmt.Sprintf(`endpoint_id = $%d AND status = ANY ($%d::text[])
				AND ($%d::bigint IS NULL OR created_at >= $%[3]d) AND ($%d::bigint IS NULL OR created_at < $%[4]d)`,
				n, n+1, n+2, n+3)
		}
		if _, err := tx.Exec(ctx, s.q(`
			SELECT 1 FROM {s}.events
			 WHERE id IN (SELECT event_id FROM {s}.deliveries WHERE `+match(1)+`)
			 ORDER BY id FOR KEY SHARE`), r.EndpointID, sts, from, to); err != nil {
			return s.wrap(err)
		}
		err = c.tally(ctx, tx, s.q(`
			UPDATE {s}.deliveries d SET `+requeueSet+`
			  FROM (SELECT id, status FROM {s}.deliveries WHERE `+match(2)+` FOR UPDATE) o
			 WHERE d.id = o.id
			RETURNING o.status`), -1, c.delivery, now, r.EndpointID, sts, from, to)
		if err != nil {
			return s.wrap(err)
		}
		for _, i := range []int{deliveryCounter[convoy.DeliveryFailure], deliveryCounter[convoy.DeliveryDiscarded]} {
			moved -= c[i]
		}
		c.delivery(convoy.DeliveryScheduled, moved)
		return s.wrap(c.add(ctx, tx, s))
	})
	if err != nil {
		return 0, err
	}
	if moved > 0 {
		s.wakeOthers()
	}
	return int(moved), nil
}

// DeleteBefore implements [convoy.Store] in one statement: it locks up
// to limit old events with FOR UPDATE SKIP LOCKED (through events_created,
// oldest first, skipping those with a pending delivery), deletes their
// deliveries (the attempts go by ON DELETE CASCADE) and then them. Rows
// another transaction holds are skipped rather than waited for, and the
// batch is bounded, so the locks it takes are few and short.
func (s *Store) DeleteBefore(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if limit <= 0 {
		limit = convoy.DefaultDeleteBatch
	}
	limit = min(limit, math.MaxInt32)
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	var n int
	err := s.pool.QueryRow(ctx, s.q(`
		WITH ev AS (
			SELECT e.id FROM {s}.events e
			 WHERE e.created_at < $1
			   AND NOT EXISTS (SELECT 1 FROM {s}.deliveries d
			                    WHERE d.event_id = e.id AND d.status IN ('Scheduled', 'Retry', 'Processing'))
			 ORDER BY e.created_at, e.id
			 LIMIT $2
			 FOR UPDATE SKIP LOCKED
		), dd AS (
			DELETE FROM {s}.deliveries d USING ev
			 WHERE d.event_id = ev.id AND d.status NOT IN ('Scheduled', 'Retry', 'Processing')
			RETURNING d.status
		), de AS (
			DELETE FROM {s}.events e USING ev WHERE e.id = ev.id RETURNING 1
		)
		SELECT (SELECT count(*) FROM de)
		  FROM (SELECT {s}.add_counts(ARRAY[0, 0,
		               -(SELECT count(*) FROM dd WHERE status = 'Success'), 0,
		               -(SELECT count(*) FROM dd WHERE status = 'Failure'),
		               -(SELECT count(*) FROM dd WHERE status = 'Discarded'), 0, 0, 0])) c`),
		clampNanos(cutoff), limit).Scan(&n)
	if err != nil {
		return 0, s.wrap(err)
	}
	return n, nil
}
