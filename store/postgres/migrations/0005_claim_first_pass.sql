-- Version 5: when no endpoint is ordered (the common case), claim's
-- first pass runs two statements where it ran six. Most of a capped
-- claim's time went to planning and starting statements rather than to
-- reading rows: each is planned afresh on every call, since its
-- parameters (the time above all) make a custom plan look cheaper than
-- the generic one. Without an ordered endpoint the first pass needs no
-- head of an ordered endpoint, and so no hold-back: one statement reads
-- the head of deliveries_due and takes the locks of its endpoints, in
-- the order of their keys; the next (a fresh snapshot, after the locks)
-- counts each endpoint's allowance, reads the candidates again and
-- locks those it chooses, exactly as the general pass does. The
-- endpoints it looked at are gathered, and the lookahead of the second
-- pass computed, only when a second pass runs. With an ordered endpoint
-- nothing changes: see versions 2 and 4 for what claim does.
CREATE OR REPLACE FUNCTION claim(p_now bigint, p_limit integer, p_owner text, p_expires bigint,
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
    any_ordered boolean := EXISTS (SELECT 1 FROM endpoints WHERE ordered);
    capped     boolean := p_cap > 0 OR coalesce(cardinality(p_cap_endpoints), 0) > 0 OR any_ordered;
    lookahead  integer;
    first_pass integer := 1;
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
        IF NOT any_ordered THEN
            -- The first pass without ordered endpoints (see above).
            WITH h AS MATERIALIZED (
                     SELECT id, endpoint_id, due_at FROM deliveries
                      WHERE status IN ('Scheduled', 'Retry', 'Processing') AND due_at <= p_now
                      ORDER BY due_at LIMIT p_scan),
                 l AS MATERIALIZED (
                     SELECT pg_advisory_xact_lock(lock_space, k)
                       FROM (SELECT DISTINCT hashtext(endpoint_id::text) AS k FROM h ORDER BY 1 OFFSET 0) u)
            SELECT array_agg(id ORDER BY due_at, id), array_agg(endpoint_id ORDER BY due_at, id)
              INTO cand_ids, cand_eps
              FROM h WHERE (SELECT count(*) FROM l) >= 0;
            IF cand_ids IS NULL THEN
                RETURN;
            END IF;
            -- The allowances are a CTE of their own, counted once: as a
            -- subquery joined to the candidates, a nested loop could count
            -- them again for every candidate. The candidates are read, and
            -- locked, by their keys: the plans are made afresh each time,
            -- but with statistics that lag the table, which may count few
            -- deliveries due in a backlog of thousands and read them all
            -- through deliveries_due instead.
            WITH a AS MATERIALIZED (
                SELECT u.e, coalesce(k.c, CASE WHEN p_cap > 0 THEN p_cap ELSE 2147483647 END)::bigint
                            - coalesce(o.n, 0) - (
                         SELECT count(*) FROM deliveries d
                          WHERE d.endpoint_id = u.e
                            AND d.status IN ('Scheduled', 'Retry', 'Processing')
                            AND d.status = 'Processing'
                            AND d.due_at > p_now
                            AND d.lease_owner <> p_owner) AS n
                  FROM (SELECT DISTINCT e FROM unnest(cand_eps) e) u
                  LEFT JOIN unnest(p_own_endpoints, p_own_counts) o(ep, n) ON o.ep = u.e
                  LEFT JOIN unnest(p_cap_endpoints, p_caps) k(ep, c) ON k.ep = u.e)
            SELECT coalesce(array_agg(id), '{}'),
                   count(*) FILTER (WHERE status = 'Scheduled'),
                   count(*) FILTER (WHERE status = 'Retry')
              INTO taken, n_sched, n_retry
              FROM (SELECT d.id, d.status FROM deliveries d
                     WHERE d.id = ANY (ARRAY(
                           SELECT c.id
                             FROM (SELECT c.id, c.ep, c.ord,
                                          row_number() OVER (PARTITION BY c.ep ORDER BY c.ord) AS rn
                                     FROM unnest(cand_ids, cand_eps) WITH ORDINALITY c(id, ep, ord)
                                    CROSS JOIN LATERAL (SELECT x.status, x.due_at FROM deliveries x
                                                         WHERE x.id = c.id OFFSET 0) x
                                    WHERE x.status IN ('Scheduled', 'Retry', 'Processing') AND x.due_at <= p_now) c
                             JOIN a ON a.e = c.ep
                            WHERE c.rn <= a.n
                            ORDER BY c.ord
                            LIMIT p_limit))
                       AND d.status IN ('Scheduled', 'Retry', 'Processing')
                       AND d.due_at <= p_now
                     FOR UPDATE SKIP LOCKED) s;
            IF cardinality(taken) < p_limit AND cardinality(cand_ids) >= p_scan THEN
                considered := ARRAY(SELECT DISTINCT e FROM unnest(cand_eps) e);
                first_pass := 2;
            ELSE
                first_pass := 3;
            END IF;
        END IF;
        IF first_pass <= 2 THEN
            lookahead := CASE WHEN p_cap > 0 THEN greatest(p_cap, coalesce((SELECT max(c) FROM unnest(p_caps) c), 0))
                              ELSE p_limit END;
        END IF;
        FOR pass IN first_pass..2 LOOP
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
            IF pass = 1 THEN
                -- The head's endpoints: wait for a claim that holds one,
                -- holding no other lock of this kind yet, in the order of
                -- the locks' keys, as InsertEventClaim takes them, so that
                -- no two lockers wait for each other (two endpoints whose
                -- IDs hash alike share a lock; ID order would then be no
                -- order of the locks).
                PERFORM pg_advisory_xact_lock(lock_space, k)
                   FROM (SELECT DISTINCT hashtext(e::text) AS k FROM unnest(new_eps) e ORDER BY 1 OFFSET 0) l;
            ELSE
                -- The others' earliest work: skip what another claim holds
                -- (this one holds the head's locks by now).
                new_eps := ARRAY(SELECT e FROM unnest(new_eps) e
                                  WHERE pg_try_advisory_xact_lock(lock_space, hashtext(e::text)));
            END IF;

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
                -- The candidates were read before this claim waited, and
                -- a claim it waited for may have taken the first of them:
                -- read them again (this statement's snapshot is taken
                -- after the wait) and spend each endpoint's allowance on
                -- those still due, in due order, before locking; then lock
                -- only what it chose.
                SELECT coalesce(array_agg(id), '{}'),
                       count(*) FILTER (WHERE status = 'Scheduled'),
                       count(*) FILTER (WHERE status = 'Retry')
                  INTO got, ns, nr
                  FROM (SELECT d.id, d.status FROM deliveries d
                         WHERE d.id IN (
                               SELECT c.id
                                 FROM (SELECT c.id, c.ep, c.ord,
                                              row_number() OVER (PARTITION BY c.ep ORDER BY c.ord) AS rn
                                         FROM unnest(pick_ids, pick_eps) WITH ORDINALITY c(id, ep, ord)
                                         JOIN deliveries x ON x.id = c.id
                                        WHERE x.status IN ('Scheduled', 'Retry', 'Processing')
                                          AND (x.due_at <= p_now OR x.due_at IS NULL AND x.id = ANY (o_heads))) c
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
