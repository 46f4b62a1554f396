-- The convoy schema, version 1. Migrate runs this file in one transaction
-- with search_path set to the store's schema, so names are unqualified
-- here; the functions keep that search_path (SET search_path FROM CURRENT).
--
-- Times are Unix nanoseconds (bigint), so they round-trip exactly; NULL
-- is the zero time, except in the columns lists and retention order by
-- (events.created_at, deliveries.created_at), where it is the smallest
-- bigint. Read one with to_timestamp(created_at / 1e9).
--
-- Deleting an app, an endpoint or an event deletes its deliveries first,
-- in the store's own statements (to keep the counts), so the foreign keys
-- to events and endpoints do not cascade: a delivery left behind is a
-- bug to report, not something to delete silently.

CREATE TABLE apps (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    support_email text NOT NULL,
    secrets       jsonb NOT NULL,
    signing       jsonb NOT NULL,
    created_at    bigint,
    updated_at    bigint
);

CREATE TABLE endpoints (
    id          uuid PRIMARY KEY,
    app_id      uuid NOT NULL CONSTRAINT endpoints_app_fk REFERENCES apps ON DELETE CASCADE,
    url         text NOT NULL,
    description text NOT NULL,
    status      text NOT NULL,
    event_types jsonb NOT NULL,
    headers     jsonb NOT NULL,
    secrets     jsonb NOT NULL,
    signing     jsonb NOT NULL,
    retry       jsonb,
    created_at  bigint,
    updated_at  bigint,
    -- The target of the deliveries' (endpoint_id, app_id) foreign key: a
    -- delivery cannot go to another app's endpoint.
    UNIQUE (id, app_id)
);
CREATE INDEX endpoints_app ON endpoints (app_id, id);

-- endpoint_state is the part of an endpoint that every Record of an
-- attempt to it rewrites (once per group commit, not once per delivery):
-- a narrow row of its own, so that rewrite is small. Its row is also the
-- endpoint's lock: whatever reads and may change an endpoint's status
-- (Record, UpdateEndpoint, DeleteEndpoint, DeleteApp) locks it first.
CREATE TABLE endpoint_state (
    endpoint_id uuid PRIMARY KEY REFERENCES endpoints ON DELETE CASCADE,
    health      jsonb NOT NULL
);

CREATE TABLE events (
    id              uuid PRIMARY KEY,
    app_id          uuid NOT NULL CONSTRAINT events_app_fk REFERENCES apps ON DELETE CASCADE,
    type            text NOT NULL,
    -- data is the payload byte for byte (bytea, not jsonb, which would
    -- normalise it); convert_from(data, 'UTF8')::jsonb to query it.
    data            bytea NOT NULL,
    idempotency_key text NOT NULL,
    created_at      bigint NOT NULL
);
CREATE UNIQUE INDEX events_idempotency ON events (app_id, idempotency_key) WHERE idempotency_key <> '';
CREATE INDEX events_created ON events (created_at, id);
CREATE INDEX events_app_created ON events (app_id, created_at, id);
CREATE INDEX events_type_created ON events (type, created_at, id);
CREATE INDEX events_app_type_created ON events (app_id, type, created_at, id);

CREATE TABLE deliveries (
    id               uuid PRIMARY KEY,
    event_id         uuid NOT NULL CONSTRAINT deliveries_event_fk REFERENCES events,
    app_id           uuid NOT NULL,
    endpoint_id      uuid NOT NULL,
    event_type       text NOT NULL,
    status           text NOT NULL,
    attempts         integer NOT NULL,
    round_attempts   integer NOT NULL,
    claims           integer NOT NULL,
    next_attempt_at  bigint,
    lease_owner      text NOT NULL,
    lease_id         text NOT NULL,
    lease_expires_at bigint,
    last_error       text NOT NULL,
    created_at       bigint NOT NULL,
    updated_at       bigint,
    -- due_at is when a pending delivery is next claimable: next_attempt_at
    -- while Scheduled or Retry, lease_expires_at while Processing; NULL
    -- once final.
    due_at           bigint,
    CONSTRAINT deliveries_endpoint_fk FOREIGN KEY (endpoint_id, app_id) REFERENCES endpoints (id, app_id)
);
-- Claim and NextDue walk this index in due order; it holds pending
-- deliveries only.
CREATE INDEX deliveries_due ON deliveries (due_at)
    WHERE status IN ('Scheduled', 'Retry', 'Processing');
-- An endpoint's pending deliveries in due order: the in-flight count of
-- PerEndpoint and Claim's fallback when capped endpoints fill the head of
-- deliveries_due.
CREATE INDEX deliveries_endpoint_due ON deliveries (endpoint_id, due_at)
    WHERE status IN ('Scheduled', 'Retry', 'Processing');
CREATE INDEX deliveries_event ON deliveries (event_id, id);
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, status, id);
CREATE INDEX deliveries_app ON deliveries (app_id, status, id);

CREATE TABLE attempts (
    delivery_id        uuid NOT NULL REFERENCES deliveries ON DELETE CASCADE,
    number             integer NOT NULL,
    id                 uuid NOT NULL,
    event_id           text NOT NULL,
    endpoint_id        text NOT NULL,
    url                text NOT NULL,
    method             text NOT NULL,
    request_headers    jsonb,
    request_body       bytea,
    status_code        integer NOT NULL,
    response_headers   jsonb,
    response_body      bytea,
    response_truncated boolean NOT NULL,
    error              text NOT NULL,
    remote_ip          text NOT NULL,
    started_at         bigint,
    duration           bigint NOT NULL,
    PRIMARY KEY (delivery_id, number, id)
);

-- counts holds the Stats counters in 64 shards: a writer adds its deltas
-- to a shard no other transaction holds (SKIP LOCKED), so the counters
-- are never one contended row; Stats sums the shards.
CREATE TABLE counts (
    shard      smallint PRIMARY KEY,
    scheduled  bigint NOT NULL DEFAULT 0,
    processing bigint NOT NULL DEFAULT 0,
    success    bigint NOT NULL DEFAULT 0,
    retry      bigint NOT NULL DEFAULT 0,
    failure    bigint NOT NULL DEFAULT 0,
    discarded  bigint NOT NULL DEFAULT 0,
    active     bigint NOT NULL DEFAULT 0,
    inactive   bigint NOT NULL DEFAULT 0,
    pending    bigint NOT NULL DEFAULT 0
);
INSERT INTO counts (shard) SELECT generate_series(0, 63);

-- add_counts adds d (deliveries Scheduled, Processing, Success, Retry,
-- Failure, Discarded, then endpoints active, inactive, pending) to a free
-- shard of counts. All zeros write nothing.
CREATE FUNCTION add_counts(d bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    r smallint := floor(random() * 64);
    s smallint;
BEGIN
    IF d = '{0,0,0,0,0,0,0,0,0}' THEN
        RETURN;
    END IF;
    SELECT shard INTO s FROM counts WHERE shard >= r ORDER BY shard LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF s IS NULL THEN
        SELECT shard INTO s FROM counts WHERE shard < r ORDER BY shard LIMIT 1 FOR UPDATE SKIP LOCKED;
    END IF;
    UPDATE counts SET
        scheduled  = scheduled  + d[1],
        processing = processing + d[2],
        success    = success    + d[3],
        retry      = retry      + d[4],
        failure    = failure    + d[5],
        discarded  = discarded  + d[6],
        active     = active     + d[7],
        inactive   = inactive   + d[8],
        pending    = pending    + d[9]
    WHERE shard = coalesce(s, r);
END
$$;

-- claim leases up to p_limit due deliveries, earliest due first, to
-- p_owner until p_expires, and returns them.
--
-- With p_cap > 0 an endpoint gets at most p_cap deliveries in flight:
-- those the caller reports (p_own_endpoints and p_own_counts) plus those
-- Processing under another owner's valid lease. So that two processes
-- claiming at once cannot both fill the same endpoint's last slots, a
-- claim takes a transaction-scoped advisory lock per endpoint and skips
-- the endpoints another claim holds; the in-flight count is read after
-- the locks are taken, by a later statement that sees every claim
-- committed before.
--
-- Candidates come from the head of deliveries_due (p_scan rows). When
-- that head is full of capped endpoints' work, the other endpoints'
-- earliest due deliveries are looked up through deliveries_endpoint_due,
-- so a slow endpoint's backlog cannot starve the others.
CREATE FUNCTION claim(p_now bigint, p_limit integer, p_owner text, p_expires bigint,
                      p_cap integer, p_own_endpoints uuid[], p_own_counts integer[], p_scan integer)
RETURNS SETOF deliveries
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    lock_space integer := hashtext('convoy.claim:' || current_schema());
    taken      uuid[] := '{}';
    considered uuid[] := '{}';
    cand_ids   uuid[];
    cand_eps   uuid[];
    new_eps    uuid[];
    a_eps      uuid[];
    a_n        integer[];
    got        uuid[];
    n_sched    bigint := 0;
    n_retry    bigint := 0;
    ns         bigint;
    nr         bigint;
BEGIN
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    IF p_cap <= 0 THEN
        SELECT coalesce(array_agg(id), '{}'),
               count(*) FILTER (WHERE status = 'Scheduled'),
               count(*) FILTER (WHERE status = 'Retry')
          INTO taken, n_sched, n_retry
          FROM (SELECT id, status FROM deliveries
                 WHERE status IN ('Scheduled', 'Retry', 'Processing') AND due_at <= p_now
                 ORDER BY due_at LIMIT p_limit
                 FOR UPDATE SKIP LOCKED) h;
    ELSE
        FOR pass IN 1..2 LOOP
            IF pass = 1 THEN
                SELECT array_agg(id ORDER BY due_at, id), array_agg(endpoint_id ORDER BY due_at, id)
                  INTO cand_ids, cand_eps
                  FROM (SELECT id, endpoint_id, due_at FROM deliveries
                         WHERE status IN ('Scheduled', 'Retry', 'Processing') AND due_at <= p_now
                         ORDER BY due_at LIMIT p_scan) h;
            ELSE
                -- The head was all capped or contended endpoints' work:
                -- look at every other endpoint's earliest due deliveries.
                SELECT array_agg(id ORDER BY due_at, id), array_agg(endpoint_id ORDER BY due_at, id)
                  INTO cand_ids, cand_eps
                  FROM (SELECT d.id, d.endpoint_id, d.due_at
                          FROM endpoints e
                          CROSS JOIN LATERAL (
                               SELECT id, endpoint_id, due_at FROM deliveries
                                WHERE endpoint_id = e.id
                                  AND status IN ('Scheduled', 'Retry', 'Processing') AND due_at <= p_now
                                ORDER BY due_at LIMIT p_cap) d
                         WHERE e.id <> ALL (considered)
                         ORDER BY d.due_at LIMIT p_scan) h;
            END IF;
            EXIT WHEN cand_ids IS NULL;

            new_eps := ARRAY(SELECT DISTINCT e FROM unnest(cand_eps) e WHERE e <> ALL (considered));
            considered := considered || new_eps;
            new_eps := ARRAY(SELECT e FROM unnest(new_eps) e
                              WHERE pg_try_advisory_xact_lock(lock_space, hashtext(e::text)));

            -- A new statement, so a fresh snapshot: the claims committed by
            -- the holders of these locks before are counted.
            SELECT array_agg(e), array_agg(n) INTO a_eps, a_n
              FROM (SELECT e, p_cap - coalesce(o.n, 0) - (
                           SELECT count(*) FROM deliveries d
                            WHERE d.endpoint_id = e
                              AND d.status IN ('Scheduled', 'Retry', 'Processing')
                              AND d.status = 'Processing'
                              AND d.due_at > p_now
                              AND d.lease_owner <> p_owner)::integer AS n
                      FROM unnest(new_eps) e
                      LEFT JOIN unnest(p_own_endpoints, p_own_counts) o(ep, n) ON o.ep = e) s
             WHERE n > 0;
            IF a_eps IS NOT NULL THEN
                SELECT coalesce(array_agg(id), '{}'),
                       count(*) FILTER (WHERE status = 'Scheduled'),
                       count(*) FILTER (WHERE status = 'Retry')
                  INTO got, ns, nr
                  FROM (SELECT d.id, d.status FROM deliveries d
                         WHERE d.id IN (
                               SELECT c.id
                                 FROM (SELECT c.id, c.ep, c.ord,
                                              row_number() OVER (PARTITION BY c.ep ORDER BY c.ord) AS rn
                                         FROM unnest(cand_ids, cand_eps) WITH ORDINALITY c(id, ep, ord)) c
                                 JOIN unnest(a_eps, a_n) a(ep, n) ON a.ep = c.ep
                                WHERE c.rn <= a.n
                                ORDER BY c.ord
                                LIMIT p_limit - cardinality(taken))
                           AND d.status IN ('Scheduled', 'Retry', 'Processing') AND d.due_at <= p_now
                         FOR UPDATE SKIP LOCKED) s;
                taken := taken || got;
                n_sched := n_sched + ns;
                n_retry := n_retry + nr;
            END IF;
            EXIT WHEN cardinality(taken) >= p_limit OR cardinality(cand_ids) < p_scan;
        END LOOP;
    END IF;
    IF cardinality(taken) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
        UPDATE deliveries SET
            status = 'Processing',
            lease_owner = p_owner,
            lease_id = gen_random_uuid()::text,
            lease_expires_at = p_expires,
            due_at = p_expires,
            claims = claims + 1,
            updated_at = p_now
        WHERE id = ANY (taken)
        RETURNING *;
    PERFORM add_counts(ARRAY[-n_sched, n_sched + n_retry, 0, -n_retry, 0, 0, 0, 0, 0]);
END
$$;
