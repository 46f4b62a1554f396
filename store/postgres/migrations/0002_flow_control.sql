-- Version 2: an endpoint's flow control settings, Claim's caps per
-- endpoint, and ordered delivery.
--
-- ordered is a column of its own, so that Claim can read it beside the
-- deliveries it joins; rate_limit is the RateLimit as JSON, NULL for none.
ALTER TABLE endpoints
    ADD COLUMN ordered    boolean NOT NULL DEFAULT false,
    ADD COLUMN rate_limit jsonb;
-- Whether any endpoint is ordered, in one probe.
CREATE INDEX endpoints_ordered ON endpoints (id) WHERE ordered;

-- An endpoint's pending deliveries in ID order (Send order): the first is
-- the head of an ordered endpoint, the only one Claim may hand out.
CREATE INDEX deliveries_endpoint_pending ON deliveries (endpoint_id, id)
    WHERE status IN ('Scheduled', 'Retry', 'Processing');

-- An ordered endpoint's pending deliveries other than its head may have
-- due_at NULL: held back, they leave deliveries_due (whose NULLs sort
-- last and are never <= a time), so Claim, NextDue and Stats do not meet
-- them again. claim sets due_at NULL on those it passes over; the group
-- commit of Record sets it again on the next head when a head ends;
-- turning Ordered off sets it on all of them. The head never has a NULL
-- due_at: NULL is only set, under the endpoint's lock (endpoint_state),
-- on deliveries with a lower pending ID before them, and a delivery stops
-- being pending only under that lock too.

-- claim gains p_cap_endpoints and p_caps: ClaimRequest.Caps, a cap per
-- endpoint that overrides p_cap (PerEndpoint) for the endpoints listed.
DROP FUNCTION claim(bigint, integer, text, bigint, integer, uuid[], integer[], integer);

-- claim leases up to p_limit due deliveries, earliest due first, to
-- p_owner until p_expires, and returns them.
--
-- With p_cap > 0 an endpoint gets at most p_cap deliveries in flight (or
-- its own cap, when p_cap_endpoints lists it, whatever p_cap is):
-- those the caller reports (p_own_endpoints and p_own_counts) plus those
-- Processing under another owner's valid lease. So that two processes
-- claiming at once cannot both fill the same endpoint's last slots, a
-- claim takes a transaction-scoped advisory lock per endpoint and skips
-- the endpoints another claim holds; the in-flight count is read after
-- the locks are taken, by a later statement that sees every claim
-- committed before.
--
-- An ordered endpoint gets its head (its pending delivery with the lowest
-- ID), when the head is due and no delivery of the endpoint is Processing
-- under a valid lease, whoever holds it; nothing else. The advisory lock
-- makes that decision one claim's at a time across processes (and
-- InsertEventClaim takes the same lock), so two processes never both
-- lease deliveries of one ordered endpoint. The endpoint's other
-- candidates are held back: due_at NULL, under the endpoint's lock, when
-- it is free (see above).
--
-- Candidates come from the head of deliveries_due (p_scan rows). When
-- that head is full of capped endpoints' work, the other endpoints'
-- earliest due deliveries are looked up through deliveries_endpoint_due,
-- so a slow endpoint's backlog cannot starve the others.
CREATE FUNCTION claim(p_now bigint, p_limit integer, p_owner text, p_expires bigint,
                      p_cap integer, p_own_endpoints uuid[], p_own_counts integer[], p_scan integer,
                      p_cap_endpoints uuid[], p_caps integer[])
RETURNS SETOF deliveries
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    lock_space integer := hashtext('convoy.claim:' || current_schema());
    taken      uuid[] := '{}';
    considered uuid[] := '{}';
    cand_ids   uuid[];
    cand_eps   uuid[];
    pick_ids   uuid[];
    pick_eps   uuid[];
    new_eps    uuid[];
    o_eps      uuid[];
    o_heads    uuid[];
    o_ok       boolean[];
    held       uuid[];
    held_eps   uuid[];
    a_eps      uuid[];
    a_n        integer[];
    got        uuid[];
    capped     boolean := p_cap > 0 OR coalesce(cardinality(p_cap_endpoints), 0) > 0
                          OR EXISTS (SELECT 1 FROM endpoints WHERE ordered);
    lookahead  integer := CASE WHEN p_cap > 0 THEN greatest(p_cap, coalesce((SELECT max(c) FROM unnest(p_caps) c), 0))
                               ELSE p_limit END;
    n_sched    bigint := 0;
    n_retry    bigint := 0;
    ns         bigint;
    nr         bigint;
BEGIN
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    IF NOT capped THEN
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
                                ORDER BY due_at LIMIT greatest(lookahead, 1)) d
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
            SELECT array_agg(e), array_agg(least(n, 2147483647)::integer) INTO a_eps, a_n
              FROM (SELECT e, coalesce(k.c, CASE WHEN p_cap > 0 THEN p_cap ELSE 2147483647 END)::bigint
                              - coalesce(o.n, 0) - (
                           SELECT count(*) FROM deliveries d
                            WHERE d.endpoint_id = e
                              AND d.status IN ('Scheduled', 'Retry', 'Processing')
                              AND d.status = 'Processing'
                              AND d.due_at > p_now
                              AND d.lease_owner <> p_owner) AS n
                      FROM unnest(new_eps) e
                      LEFT JOIN unnest(p_own_endpoints, p_own_counts) o(ep, n) ON o.ep = e
                      LEFT JOIN unnest(p_cap_endpoints, p_caps) k(ep, c) ON k.ep = e) s
             WHERE n > 0;

            -- The ordered endpoints among those locked, their heads, and
            -- whether each head may go: due, and nothing of the endpoint
            -- under a valid lease (a Processing delivery held back has a
            -- NULL due_at, so its lease is read, not its due_at).
            SELECT array_agg(o.id), array_agg(o.head), array_agg(o.ok) INTO o_eps, o_heads, o_ok
              FROM (SELECT e.id, h.id AS head,
                           h.id IS NOT NULL
                           AND CASE WHEN h.status = 'Processing' THEN coalesce(h.lease_expires_at, -9223372036854775808)
                                    ELSE coalesce(h.next_attempt_at, -9223372036854775808) END <= p_now
                           AND NOT EXISTS (SELECT 1 FROM deliveries l
                                            WHERE l.endpoint_id = e.id AND l.status = 'Processing'
                                              AND l.lease_expires_at > p_now) AS ok
                      FROM endpoints e
                      LEFT JOIN LATERAL (
                           SELECT d.id, d.status, d.next_attempt_at, d.lease_expires_at FROM deliveries d
                            WHERE d.endpoint_id = e.id AND d.status IN ('Scheduled', 'Retry', 'Processing')
                            ORDER BY d.id LIMIT 1) h ON true
                     WHERE e.id = ANY (new_eps) AND e.ordered) o;

            IF o_eps IS NULL THEN
                pick_ids := cand_ids;
                pick_eps := cand_eps;
            ELSE
                -- An ordered endpoint's head stands in for its candidates,
                -- at the place of the first; the others are held back.
                SELECT coalesce(array_agg(c.id ORDER BY c.ord), '{}'), coalesce(array_agg(c.ep ORDER BY c.ord), '{}')
                  INTO pick_ids, pick_eps
                  FROM (SELECT c.id, c.ep, c.ord
                          FROM unnest(cand_ids, cand_eps) WITH ORDINALITY c(id, ep, ord)
                         WHERE c.ep <> ALL (o_eps)
                        UNION ALL
                        SELECT o.head, o.ep, (SELECT min(c.ord) FROM unnest(cand_eps) WITH ORDINALITY c(ep, ord)
                                               WHERE c.ep = o.ep)
                          FROM unnest(o_eps, o_heads, o_ok) o(ep, head, ok)
                         WHERE o.ok) c;
                SELECT array_agg(c.id), array_agg(c.ep) INTO held, held_eps
                  FROM unnest(cand_ids, cand_eps) c(id, ep)
                  JOIN unnest(o_eps, o_heads) o(ep, head) ON o.ep = c.ep
                 WHERE c.id IS DISTINCT FROM o.head;
                IF held IS NOT NULL THEN
                    PERFORM hold_back(held, held_eps);
                END IF;
            END IF;

            IF a_eps IS NOT NULL AND cardinality(pick_ids) > 0 THEN
                SELECT coalesce(array_agg(id), '{}'),
                       count(*) FILTER (WHERE status = 'Scheduled'),
                       count(*) FILTER (WHERE status = 'Retry')
                  INTO got, ns, nr
                  FROM (SELECT d.id, d.status FROM deliveries d
                         WHERE d.id IN (
                               SELECT c.id
                                 FROM (SELECT c.id, c.ep, c.ord,
                                              row_number() OVER (PARTITION BY c.ep ORDER BY c.ord) AS rn
                                         FROM unnest(pick_ids, pick_eps) WITH ORDINALITY c(id, ep, ord)) c
                                 JOIN unnest(a_eps, a_n) a(ep, n) ON a.ep = c.ep
                                WHERE c.rn <= a.n
                                ORDER BY c.ord
                                LIMIT p_limit - cardinality(taken))
                           AND d.status IN ('Scheduled', 'Retry', 'Processing')
                           AND (d.due_at <= p_now OR d.due_at IS NULL AND d.id = ANY (o_heads))
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

-- hold_back takes the deliveries p_ids (of the endpoints p_eps, one for
-- one) of ordered endpoints out of deliveries_due (due_at NULL), those
-- that are not their endpoint's head at the time it runs. It skips the
-- endpoints whose lock another transaction holds (a group commit of Record
-- may be ending their head: claim meets what is left again) and the
-- deliveries another holds; the endpoint lock is taken first, and the
-- heads read after it, by a later statement, so a head cannot end in
-- between. The deliveries are found by ID alone: O(k log n) for k
-- deliveries, each held back once.
CREATE FUNCTION hold_back(p_ids uuid[], p_eps uuid[]) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    eps uuid[];
    ids uuid[];
BEGIN
    eps := ARRAY(SELECT endpoint_id FROM endpoint_state
                  WHERE endpoint_id = ANY (p_eps)
                  ORDER BY endpoint_id FOR NO KEY UPDATE SKIP LOCKED);
    ids := ARRAY(SELECT i FROM unnest(p_ids, p_eps) u(i, e) WHERE e = ANY (eps));
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    UPDATE deliveries d SET due_at = NULL
      FROM (SELECT x.id FROM deliveries x
             WHERE x.id = ANY (ids)
               AND x.status IN ('Scheduled', 'Retry', 'Processing') AND x.due_at IS NOT NULL
               AND EXISTS (SELECT 1 FROM endpoints e WHERE e.id = x.endpoint_id AND e.ordered)
               AND x.id > (SELECT h.id FROM deliveries h
                            WHERE h.endpoint_id = x.endpoint_id AND h.status IN ('Scheduled', 'Retry', 'Processing')
                            ORDER BY h.id LIMIT 1)
             FOR NO KEY UPDATE SKIP LOCKED) x
     WHERE d.id = x.id;
END
$$;

-- ungate makes the next head of each ordered endpoint listed due again:
-- the group commit of Record runs it, under the endpoints' locks, after
-- a head ended.
CREATE FUNCTION ungate(p_endpoints uuid[]) RETURNS void
LANGUAGE sql SET search_path FROM CURRENT AS $$
    UPDATE deliveries d SET due_at = CASE WHEN d.status = 'Processing'
                                          THEN coalesce(d.lease_expires_at, -9223372036854775808)
                                          ELSE coalesce(d.next_attempt_at, -9223372036854775808) END
      FROM (SELECT (SELECT id FROM deliveries
                     WHERE endpoint_id = e AND status IN ('Scheduled', 'Retry', 'Processing')
                     ORDER BY id LIMIT 1) AS id
              FROM unnest(p_endpoints) e) h
     WHERE d.id = h.id AND d.due_at IS NULL;
$$;
