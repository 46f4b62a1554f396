package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/convoykit/convoy"
)

// counts is a change to the Stats counters, in the order of the schema's
// add_counts function: deliveries Scheduled, Processing, Success, Retry,
// Failure, Discarded, then endpoints active, inactive, pending.
type counts [9]int64

var deliveryCounter = map[convoy.DeliveryStatus]int{
	convoy.DeliveryScheduled:  0,
	convoy.DeliveryProcessing: 1,
	convoy.DeliverySuccess:    2,
	convoy.DeliveryRetry:      3,
	convoy.DeliveryFailure:    4,
	convoy.DeliveryDiscarded:  5,
}

var endpointCounter = map[convoy.EndpointStatus]int{
	convoy.EndpointActive:   6,
	convoy.EndpointInactive: 7,
	convoy.EndpointPending:  8,
}

func (c *counts) delivery(st convoy.DeliveryStatus, d int64) {
	if i, ok := deliveryCounter[st]; ok {
		c[i] += d
	}
}

func (c *counts) move(from, to convoy.DeliveryStatus) {
	if from != to {
		c.delivery(from, -1)
		c.delivery(to, 1)
	}
}

func (c *counts) endpoint(st convoy.EndpointStatus, d int64) {
	if i, ok := endpointCounter[st]; ok {
		c[i] += d
	}
}

func (c *counts) zero() bool { return *c == counts{} }

func (c *counts) array() []int64 { return c[:] }

// querier is what the store runs statements on: a pool, a connection or
// a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// add adds c to a counts shard, in the transaction of q.
func (c *counts) add(ctx context.Context, q querier, s *Store) error {
	if c.zero() {
		return nil
	}
	_, err := q.Exec(ctx, s.q(`SELECT {s}.add_counts($1)`), c.array())
	return err
}

// deleted runs del, a DELETE of deliveries RETURNING status, and counts
// the deliveries it removed.
func (c *counts) deleted(ctx context.Context, q querier, del string, args ...any) error {
	return c.tally(ctx, q, del, -1, c.delivery, args...)
}

// deletedEndpoints is deleted for a DELETE of endpoints.
func (c *counts) deletedEndpoints(ctx context.Context, q querier, del string, args ...any) error {
	return c.tally(ctx, q, del, -1, func(st convoy.DeliveryStatus, d int64) { c.endpoint(convoy.EndpointStatus(st), d) }, args...)
}

func (c *counts) tally(ctx context.Context, q querier, stmt string, sign int64, f func(convoy.DeliveryStatus, int64), args ...any) error {
	rows, err := q.Query(ctx, `WITH x AS (`+stmt+`) SELECT status, count(*) FROM x GROUP BY status`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			st string
			n  int64
		)
		if err := rows.Scan(&st, &n); err != nil {
			return err
		}
		f(convoy.DeliveryStatus(st), sign*n)
	}
	return rows.Err()
}

// Stats implements [convoy.Store] in one statement: the counters are the
// sum of the 64 shards of the counts table (O(1)), DueNow an index scan
// of deliveries_due that stops at convoy.MaxDueCount, OldestDue the
// first entry of that index.
func (s *Store) Stats(ctx context.Context, now time.Time) (convoy.StoreStats, error) {
	if err := s.check(ctx); err != nil {
		return convoy.StoreStats{}, err
	}
	var (
		c      counts
		due    int
		oldest *int64
	)
	err := s.pool.QueryRow(ctx, s.q(`
		SELECT coalesce(sum(scheduled), 0), coalesce(sum(processing), 0), coalesce(sum(success), 0),
		       coalesce(sum(retry), 0), coalesce(sum(failure), 0), coalesce(sum(discarded), 0),
		       coalesce(sum(active), 0), coalesce(sum(inactive), 0), coalesce(sum(pending), 0),
		       (SELECT count(*) FROM (
		            SELECT 1 FROM {s}.deliveries
		             WHERE status IN ('Scheduled', 'Retry', 'Processing') AND due_at <= $1
		             LIMIT $2) d),
		       (SELECT due_at FROM {s}.deliveries
		         WHERE status IN ('Scheduled', 'Retry', 'Processing') AND due_at IS NOT NULL
		         ORDER BY due_at LIMIT 1)
		FROM {s}.counts`), clampNanos(now), convoy.MaxDueCount).
		Scan(&c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7], &c[8], &due, &oldest)
	if err != nil {
		return convoy.StoreStats{}, s.wrap(err)
	}
	st := convoy.StoreStats{
		Deliveries: make(map[convoy.DeliveryStatus]int, len(deliveryCounter)),
		Endpoints:  make(map[convoy.EndpointStatus]int, len(endpointCounter)),
		DueNow:     due,
		OldestDue:  fromDue(oldest),
	}
	for k, i := range deliveryCounter {
		if c[i] != 0 {
			st.Deliveries[k] = int(c[i])
		}
	}
	for k, i := range endpointCounter {
		if c[i] != 0 {
			st.Endpoints[k] = int(c[i])
		}
	}
	return st, nil
}

// fromDue decodes a due_at value (see dueNanos).
func fromDue(n *int64) time.Time {
	if n == nil || *n == minNanos {
		return time.Time{}
	}
	return fromNanos(n)
}

// cursor errors
func badCursor(kind string) error {
	return fmt.Errorf("%w: bad %s cursor", convoy.ErrInvalid, kind)
}
