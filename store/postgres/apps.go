package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/convoykit/convoy"
)

const appCols = `id, name, support_email, secrets, signing, created_at, updated_at`

func scanApp(row pgx.Row) (*convoy.App, error) {
	var (
		a                convoy.App
		secrets, signing []byte
		created, updated *int64
	)
	if err := row.Scan(&a.ID, &a.Name, &a.SupportEmail, &secrets, &signing, &created, &updated); err != nil {
		return nil, err
	}
	var err error
	if a.Secrets, err = decodeSecrets(secrets); err != nil {
		return nil, err
	}
	if err := decodeJSON("signing", signing, &a.Signing); err != nil {
		return nil, err
	}
	a.CreatedAt, a.UpdatedAt = fromNanos(created), fromNanos(updated)
	return &a, nil
}

func appTimes(a *convoy.App) error {
	for _, s := range a.Secrets {
		if err := checkTimes("app secret", s.CreatedAt, s.ExpiresAt); err != nil {
			return err
		}
	}
	return checkTimes("app", a.CreatedAt, a.UpdatedAt)
}

// CreateApp implements [convoy.Store].
func (s *Store) CreateApp(ctx context.Context, app *convoy.App) error {
	if err := app.Validate(); err != nil {
		return err
	}
	if err := appTimes(app); err != nil {
		return err
	}
	if err := s.check(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, s.q(`INSERT INTO {s}.apps (`+appCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`),
		app.ID, app.Name, app.SupportEmail, encodeSecrets(app.Secrets), mustJSON(app.Signing),
		nanos(app.CreatedAt), nanos(app.UpdatedAt))
	if code, _ := pgErr(err); code == codeUniqueViolation {
		return duplicate("app", app.ID)
	}
	return s.wrap(err)
}

// GetApp implements [convoy.Store].
func (s *Store) GetApp(ctx context.Context, id string) (*convoy.App, error) {
	if err := convoy.ValidateID("app ID", id); err != nil {
		return nil, err
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	a, err := scanApp(s.pool.QueryRow(ctx, s.q(`SELECT `+appCols+` FROM {s}.apps WHERE id = $1`), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("app", id)
	}
	if err != nil {
		return nil, s.wrap(err)
	}
	return a, nil
}

// UpdateApp implements [convoy.Store]. fn runs once, with the app's row
// locked (SELECT ... FOR UPDATE) until the transaction ends.
func (s *Store) UpdateApp(ctx context.Context, id string, fn func(*convoy.App) error) (*convoy.App, error) {
	if err := convoy.ValidateID("app ID", id); err != nil {
		return nil, err
	}
	if fn == nil {
		return nil, fmt.Errorf("%w: nil update function", convoy.ErrInvalid)
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var out *convoy.App
	err := s.tx(ctx, func(tx pgx.Tx) error {
		a, err := scanApp(tx.QueryRow(ctx, s.q(`SELECT `+appCols+` FROM {s}.apps WHERE id = $1 FOR UPDATE`), id))
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("app", id)
		}
		if err != nil {
			return s.wrap(err)
		}
		c := a.Clone()
		if err := fn(c); err != nil {
			return err
		}
		c.ID, c.CreatedAt = a.ID, a.CreatedAt
		if err := c.Validate(); err != nil {
			return err
		}
		if err := appTimes(c); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, s.q(`UPDATE {s}.apps SET name = $2, support_email = $3, secrets = $4, signing = $5, updated_at = $6 WHERE id = $1`),
			c.ID, c.Name, c.SupportEmail, encodeSecrets(c.Secrets), mustJSON(c.Signing), nanos(c.UpdatedAt)); err != nil {
			return s.wrap(err)
		}
		out = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out.Clone(), nil
}

// DeleteApp implements [convoy.Store]: one transaction that locks the app
// and its endpoints, then deletes the deliveries (their attempts go with
// them), endpoints, events and the app.
func (s *Store) DeleteApp(ctx context.Context, id string) error {
	if err := convoy.ValidateID("app ID", id); err != nil {
		return err
	}
	if err := s.check(ctx); err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, s.q(`SELECT 1 FROM {s}.apps WHERE id = $1 FOR UPDATE`), id).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("app", id)
		}
		if err != nil {
			return s.wrap(err)
		}
		if _, err := tx.Exec(ctx, s.q(`
			SELECT 1 FROM {s}.endpoint_state WHERE endpoint_id IN (SELECT id FROM {s}.endpoints WHERE app_id = $1)
			ORDER BY endpoint_id FOR UPDATE`), id); err != nil {
			return s.wrap(err)
		}
		if _, err := tx.Exec(ctx, s.q(`SELECT 1 FROM {s}.endpoints WHERE app_id = $1 ORDER BY id FOR UPDATE`), id); err != nil {
			return s.wrap(err)
		}
		var c counts
		if err := c.deleted(ctx, tx, s.q(`DELETE FROM {s}.deliveries WHERE app_id = $1 RETURNING status`), id); err != nil {
			return s.wrap(err)
		}
		if err := c.deletedEndpoints(ctx, tx, s.q(`DELETE FROM {s}.endpoints WHERE app_id = $1 RETURNING status`), id); err != nil {
			return s.wrap(err)
		}
		if _, err := tx.Exec(ctx, s.q(`DELETE FROM {s}.apps WHERE id = $1`), id); err != nil {
			return s.wrap(err) // its events go by ON DELETE CASCADE
		}
		return s.wrap(c.add(ctx, tx, s))
	})
}

// ListApps implements [convoy.Store].
func (s *Store) ListApps(ctx context.Context, page convoy.Page) ([]*convoy.App, string, error) {
	if err := s.check(ctx); err != nil {
		return nil, "", err
	}
	after, err := idCursor(page.Cursor)
	if err != nil {
		return nil, "", err
	}
	n := page.Size()
	rows, err := s.pool.Query(ctx, s.q(`SELECT `+appCols+` FROM {s}.apps WHERE id > $1 ORDER BY id LIMIT $2`), after, n+1)
	if err != nil {
		return nil, "", s.wrap(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*convoy.App, error) { return scanApp(r) })
	if err != nil {
		return nil, "", s.wrap(err)
	}
	return pageOut(out, n, func(a *convoy.App) string { return a.ID })
}

// endpointCols are the columns of an endpoint's row (its health is in
// endpoint_state); selectEndpoint reads both, for scanEndpoint.
const (
	endpointCols   = `id, app_id, url, description, status, event_types, headers, secrets, signing, retry, created_at, updated_at, ordered, rate_limit`
	selectEndpoint = `SELECT e.id, e.app_id, e.url, e.description, e.status, e.event_types, e.headers, e.secrets, e.signing,
		e.retry, s.health, e.created_at, e.updated_at, e.ordered, e.rate_limit
		FROM {s}.endpoints e JOIN {s}.endpoint_state s ON s.endpoint_id = e.id`
)

func scanEndpoint(row pgx.Row) (*convoy.Endpoint, error) {
	var (
		e                                       convoy.Endpoint
		types, headers, secrets, signing, retry []byte
		health, rate                            []byte
		created, updated                        *int64
	)
	if err := row.Scan(&e.ID, &e.AppID, &e.URL, &e.Description, &e.Status, &types, &headers, &secrets,
		&signing, &retry, &health, &created, &updated, &e.Ordered, &rate); err != nil {
		return nil, err
	}
	if rate != nil {
		e.RateLimit = new(convoy.RateLimit)
		if err := decodeJSON("rate limit", rate, e.RateLimit); err != nil {
			return nil, err
		}
	}
	var err error
	if err := decodeJSON("event types", types, &e.EventTypes); err != nil {
		return nil, err
	}
	if err := decodeJSON("headers", headers, &e.Headers); err != nil {
		return nil, err
	}
	if e.Secrets, err = decodeSecrets(secrets); err != nil {
		return nil, err
	}
	if err := decodeJSON("signing", signing, &e.Signing); err != nil {
		return nil, err
	}
	if retry != nil {
		e.Retry = new(convoy.RetryPolicy)
		if err := decodeJSON("retry policy", retry, e.Retry); err != nil {
			return nil, err
		}
	}
	if e.Health, err = decodeHealth(health); err != nil {
		return nil, err
	}
	e.CreatedAt, e.UpdatedAt = fromNanos(created), fromNanos(updated)
	return &e, nil
}

func endpointTimes(e *convoy.Endpoint) error {
	for _, s := range e.Secrets {
		if err := checkTimes("endpoint secret", s.CreatedAt, s.ExpiresAt); err != nil {
			return err
		}
	}
	return checkTimes("endpoint", e.CreatedAt, e.UpdatedAt)
}

func encodeRetry(r *convoy.RetryPolicy) []byte {
	if r == nil {
		return nil
	}
	return mustJSON(r)
}

func encodeRateLimit(r *convoy.RateLimit) []byte {
	if r == nil {
		return nil
	}
	return mustJSON(r)
}

// CreateEndpoint implements [convoy.Store]. The endpoint's Health is not
// taken from ep: a new endpoint starts with none.
func (s *Store) CreateEndpoint(ctx context.Context, ep *convoy.Endpoint) error {
	if err := ep.Validate(); err != nil {
		return err
	}
	if err := endpointTimes(ep); err != nil {
		return err
	}
	if err := s.check(ctx); err != nil {
		return err
	}
	var c counts
	c.endpoint(ep.Status, 1)
	_, err := s.pool.Exec(ctx, s.q(`
		WITH ins AS (
			INSERT INTO {s}.endpoints (`+endpointCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $15, $16)
			RETURNING id
		), st AS (
			INSERT INTO {s}.endpoint_state (endpoint_id, health) SELECT id, $13 FROM ins
		)
		SELECT {s}.add_counts($14) FROM ins`),
		ep.ID, ep.AppID, ep.URL, ep.Description, ep.Status, mustJSON(ep.EventTypes), mustJSON(ep.Headers),
		encodeSecrets(ep.Secrets), mustJSON(ep.Signing), encodeRetry(ep.Retry),
		nanos(ep.CreatedAt), nanos(ep.UpdatedAt), encodeHealth(convoy.EndpointHealth{}), c.array(),
		ep.Ordered, encodeRateLimit(ep.RateLimit))
	switch code, constraint := pgErr(err); {
	case code == codeUniqueViolation:
		return duplicate("endpoint", ep.ID)
	case code == codeForeignKeyViolation && constraint == "endpoints_app_fk":
		return notFound("app", ep.AppID)
	}
	return s.wrap(err)
}

// GetEndpoint implements [convoy.Store].
func (s *Store) GetEndpoint(ctx context.Context, id string) (*convoy.Endpoint, error) {
	if err := convoy.ValidateID("endpoint ID", id); err != nil {
		return nil, err
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	e, err := scanEndpoint(s.pool.QueryRow(ctx, s.q(selectEndpoint+` WHERE e.id = $1`), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("endpoint", id)
	}
	if err != nil {
		return nil, s.wrap(err)
	}
	return e, nil
}

// UpdateEndpoint implements [convoy.Store]. fn runs once, with the
// endpoint's row locked until the transaction ends, so it sees a status
// that no Record can change before the update commits.
func (s *Store) UpdateEndpoint(ctx context.Context, id string, fn func(*convoy.Endpoint) error) (*convoy.Endpoint, error) {
	if err := convoy.ValidateID("endpoint ID", id); err != nil {
		return nil, err
	}
	if fn == nil {
		return nil, fmt.Errorf("%w: nil update function", convoy.ErrInvalid)
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var out *convoy.Endpoint
	err := s.tx(ctx, func(tx pgx.Tx) error {
		// endpoint_state first: it is the endpoint's lock (see the schema).
		if _, err := tx.Exec(ctx, s.q(`SELECT 1 FROM {s}.endpoint_state WHERE endpoint_id = $1 FOR NO KEY UPDATE`), id); err != nil {
			return s.wrap(err)
		}
		e, err := scanEndpoint(tx.QueryRow(ctx, s.q(selectEndpoint+` WHERE e.id = $1 FOR NO KEY UPDATE OF e`), id))
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("endpoint", id)
		}
		if err != nil {
			return s.wrap(err)
		}
		c := e.Clone()
		if err := fn(c); err != nil {
			return err
		}
		c.ID, c.AppID, c.CreatedAt, c.Health = e.ID, e.AppID, e.CreatedAt, e.Health
		if err := c.Validate(); err != nil {
			return err
		}
		if err := endpointTimes(c); err != nil {
			return err
		}
		var cn counts
		if c.Status != e.Status {
			cn.endpoint(e.Status, -1)
			cn.endpoint(c.Status, 1)
		}
		if _, err := tx.Exec(ctx, s.q(`
			UPDATE {s}.endpoints SET url = $2, description = $3, status = $4, event_types = $5, headers = $6,
				secrets = $7, signing = $8, retry = $9, updated_at = $10, ordered = $11, rate_limit = $12
			WHERE id = $1`),
			c.ID, c.URL, c.Description, c.Status, mustJSON(c.EventTypes), mustJSON(c.Headers),
			encodeSecrets(c.Secrets), mustJSON(c.Signing), encodeRetry(c.Retry), nanos(c.UpdatedAt),
			c.Ordered, encodeRateLimit(c.RateLimit)); err != nil {
			return s.wrap(err)
		}
		if e.Ordered && !c.Ordered {
			// The deliveries held back behind the head are due again, by
			// their own times.
			if _, err := tx.Exec(ctx, s.q(`
				UPDATE {s}.deliveries SET due_at = CASE WHEN status = 'Processing'
				                                        THEN coalesce(lease_expires_at, $2)
				                                        ELSE coalesce(next_attempt_at, $2) END
				 WHERE endpoint_id = $1 AND status IN ('Scheduled', 'Retry', 'Processing') AND due_at IS NULL`),
				id, minNanos); err != nil {
				return s.wrap(err)
			}
		}
		if err := cn.add(ctx, tx, s); err != nil {
			return s.wrap(err)
		}
		out = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out.Clone(), nil
}

// DeleteEndpoint implements [convoy.Store].
func (s *Store) DeleteEndpoint(ctx context.Context, id string) error {
	if err := convoy.ValidateID("endpoint ID", id); err != nil {
		return err
	}
	if err := s.check(ctx); err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, s.q(`SELECT 1 FROM {s}.endpoint_state WHERE endpoint_id = $1 FOR UPDATE`), id); err != nil {
			return s.wrap(err)
		}
		var st convoy.EndpointStatus
		err := tx.QueryRow(ctx, s.q(`SELECT status FROM {s}.endpoints WHERE id = $1 FOR UPDATE`), id).Scan(&st)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("endpoint", id)
		}
		if err != nil {
			return s.wrap(err)
		}
		var c counts
		if err := c.deleted(ctx, tx, s.q(`DELETE FROM {s}.deliveries WHERE endpoint_id = $1 RETURNING status`), id); err != nil {
			return s.wrap(err)
		}
		if _, err := tx.Exec(ctx, s.q(`DELETE FROM {s}.endpoints WHERE id = $1`), id); err != nil {
			return s.wrap(err)
		}
		c.endpoint(st, -1)
		return s.wrap(c.add(ctx, tx, s))
	})
}

// ListEndpoints implements [convoy.Store].
func (s *Store) ListEndpoints(ctx context.Context, appID string, page convoy.Page) ([]*convoy.Endpoint, string, error) {
	if err := convoy.ValidateID("app ID", appID); err != nil {
		return nil, "", err
	}
	if err := s.check(ctx); err != nil {
		return nil, "", err
	}
	after, err := idCursor(page.Cursor)
	if err != nil {
		return nil, "", err
	}
	n := page.Size()
	var out []*convoy.Endpoint
	if page.Cursor == "" && !s.readAlone() {
		o := &op{kind: opListEndpoints, appID: appID, limit: n + 1}
		if err := s.submit(ctx, s.reads, o); err != nil {
			return nil, "", err
		}
		out = o.eps
	} else {
		if page.Cursor == "" {
			defer s.reading.Add(-1)
		}
		rows, err := s.pool.Query(ctx, s.q(selectEndpoint+` WHERE e.app_id = $1 AND e.id > $2 ORDER BY e.id LIMIT $3`),
			appID, after, n+1)
		if err != nil {
			return nil, "", s.wrap(err)
		}
		if out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*convoy.Endpoint, error) { return scanEndpoint(r) }); err != nil {
			return nil, "", s.wrap(err)
		}
	}
	if len(out) == 0 {
		// Endpoints go with their app, so only an empty page needs to
		// look whether the app exists.
		if err := s.appExists(ctx, appID); err != nil {
			return nil, "", err
		}
	}
	return pageOut(out, n, func(e *convoy.Endpoint) string { return e.ID })
}

// maxReadBatch bounds the first pages of ListEndpoints read together.
const maxReadBatch = 256

// First pages of ListEndpoints (the one Dispatcher.Send reads for every
// event) asked for at the same time are read together, as Record and
// InsertEvent calls are committed together: one goroutine takes the calls
// queued meanwhile and reads all their apps' endpoints in one statement,
// each endpoint decoded once. The profile of a saturated dispatcher had
// this read, one query and one decode per Send, at 17% of its CPU. The
// statement starts after every call it answers was made, so each sees
// every endpoint committed before it was called, as a query of its own
// would; each gets its own copies. A call made while no first page is
// being read reads its own, at once: at light load the group read's hop
// through its goroutine only added latency.

// readAlone reports whether no first page of ListEndpoints is being
// read, and if so counts the caller's read in s.reading: the caller reads
// its own and then takes 1 from s.reading.
func (s *Store) readAlone() bool {
	return s.reading.CompareAndSwap(0, 1)
}

// runEndpointReads answers a batch of first-page ListEndpoints calls.
func (s *Store) runEndpointReads(ops []*op) {
	s.reading.Add(1)
	defer s.reading.Add(-1)
	defer func() {
		for _, o := range ops {
			close(o.done)
		}
	}()
	// Keyed by the ID as PostgreSQL spells it (lower case): a valid ID
	// may come in upper case, and the rows come back lower.
	limits := map[string]int{}
	for _, o := range ops {
		app := strings.ToLower(o.appID)
		limits[app] = max(limits[app], o.limit)
	}
	apps, ns := make([]string, 0, len(limits)), make([]int32, 0, len(limits))
	for app, n := range limits {
		apps, ns = append(apps, app), append(ns, int32(min(n, math.MaxInt32)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	rows, err := s.pool.Query(ctx, s.q(`SELECT x.* FROM unnest($1::uuid[], $2::integer[]) a(app, n)
		CROSS JOIN LATERAL (`+selectEndpoint+` WHERE e.app_id = a.app ORDER BY e.id LIMIT a.n) x
		ORDER BY x.id`), uuids(apps), ns)
	var list []*convoy.Endpoint
	if err == nil {
		list, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (*convoy.Endpoint, error) { return scanEndpoint(r) })
	}
	if err != nil {
		for _, o := range ops {
			o.err = s.wrap(err)
		}
		return
	}
	byApp := map[string][]*convoy.Endpoint{}
	for _, e := range list {
		byApp[e.AppID] = append(byApp[e.AppID], e)
	}
	taken := map[string]bool{}
	for _, o := range ops {
		app := strings.ToLower(o.appID)
		eps := byApp[app]
		eps = eps[:min(len(eps), o.limit)]
		if !taken[app] {
			taken[app] = true
			o.eps = eps // the first caller of an app takes what was decoded
			continue
		}
		o.eps = make([]*convoy.Endpoint, len(eps))
		for i, e := range eps {
			o.eps[i] = e.Clone()
		}
	}
}

// appExists returns ErrNotFound unless the app exists.
func (s *Store) appExists(ctx context.Context, id string) error {
	var ok bool
	if err := s.pool.QueryRow(ctx, s.q(`SELECT EXISTS (SELECT 1 FROM {s}.apps WHERE id = $1)`), id).Scan(&ok); err != nil {
		return s.wrap(err)
	}
	if !ok {
		return notFound("app", id)
	}
	return nil
}
