-- Version 2: an endpoint's flow control settings, and Claim's caps per
-- endpoint.
--
-- ordered is a column of its own, so that Claim can read it beside the
-- deliveries it joins; rate_limit is the RateLimit as JSON, NULL for none.
ALTER TABLE endpoints
    ADD COLUMN ordered    boolean NOT NULL DEFAULT false,
    ADD COLUMN rate_limit jsonb;

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
    new_eps    uuid[];
    a_eps      uuid[];
    a_n        integer[];
    got        uuid[];
    capped     boolean := p_cap > 0 OR coalesce(cardinality(p_cap_endpoints), 0) > 0;
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
