package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/postgres"
	"github.com/convoykit/convoy/store/storetest"
)

// TestClaimPerEndpointAcrossProcesses: two stores on one schema (two
// processes) share an endpoint's cap: each counts the other's leases.
func TestClaimPerEndpointAcrossProcesses(t *testing.T) {
	a := newStore(t, nil)
	b := newStore(t, &postgres.Options{Schema: a.Schema()})
	f := setup(t, a, 2)
	busy, calm := f.eps[0], f.eps[1]
	f.send(t0, 10, busy)
	f.send(t0, 2, calm)
	claim := func(s *postgres.Store, owner string, now time.Time, inFlight map[string]int) map[string]int {
		t.Helper()
		ds, err := s.Claim(f.ctx, convoy.ClaimRequest{
			Now: now, Limit: 100, Owner: owner, Lease: time.Minute, PerEndpoint: 3, InFlight: inFlight,
		})
		require.NoError(t, err)
		got := map[string]int{}
		for _, d := range ds {
			got[d.EndpointID]++
		}
		return got
	}
	require.Equal(t, map[string]int{busy.ID: 3, calm.ID: 2}, claim(a, "process-a", t0, nil))
	require.Empty(t, claim(b, "process-b", t0, nil), "a's leases fill busy's cap, and calm has nothing more")
	require.Empty(t, claim(a, "process-a", t0, map[string]int{busy.ID: 3}), "a's own InFlight counts for a")
	// a's attempts are over (its InFlight is empty) but not recorded: the
	// store does not count a's own leases for a.
	require.Equal(t, map[string]int{busy.ID: 3}, claim(a, "process-a", t0, nil))
	require.Empty(t, claim(b, "process-b", t0, nil), "six of a's leases, the cap is three")
	// When a's leases expire, b takes over, within the cap.
	require.Equal(t, map[string]int{busy.ID: 3, calm.ID: 2}, claim(b, "process-b", t0.Add(time.Minute), nil))
}

// TestClaimCapHoldsUnderConcurrency: many owners claiming one endpoint at
// once never have more than PerEndpoint of its deliveries in flight, as a
// watcher reading the table meanwhile sees it.
func TestClaimCapHoldsUnderConcurrency(t *testing.T) {
	const (
		owners = 8
		cap    = 3
		total  = 60
	)
	s := newStore(t, nil)
	f := setup(t, s, 1)
	f.send(t0, total)
	var (
		done, most atomic.Int64
		wg         sync.WaitGroup
		errs       = make(chan error, owners+1)
	)
	wg.Add(1)
	go func() { // the watcher: one statement, one instant
		defer wg.Done()
		for done.Load() < total {
			var n int64
			err := testPool(t).QueryRow(context.Background(), `SELECT count(*) FROM "`+s.Schema()+`".deliveries
				WHERE endpoint_id = $1 AND status = 'Processing'`, f.eps[0].ID).Scan(&n)
			if err != nil {
				errs <- err
				return
			}
			most.Store(max(most.Load(), n))
		}
	}()
	for w := range owners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("owner-%d", w)
			for done.Load() < total {
				ds, err := s.Claim(f.ctx, convoy.ClaimRequest{
					Now: t0, Limit: 2, Owner: owner, Lease: time.Hour, PerEndpoint: cap,
				})
				if err != nil {
					errs <- err
					return
				}
				for _, d := range ds {
					if _, err := s.Record(f.ctx, succeeded(d, t0)); err != nil {
						errs <- err
						return
					}
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, total, done.Load())
	require.Positive(t, most.Load())
	require.LessOrEqual(t, most.Load(), int64(cap), "in flight at once, across owners")
}

// TestClaimCappedHeadDoesNotStarve: when the earliest due work all
// belongs to an endpoint at its cap, the other endpoints' later work is
// still claimed.
func TestClaimCappedHeadDoesNotStarve(t *testing.T) {
	s := newStore(t, nil)
	f := setup(t, s, 2)
	slow, fast := f.eps[0], f.eps[1]
	f.send(t0.Add(-time.Hour), 500, slow)
	late := f.send(t0, 2, fast)
	ds, err := s.Claim(f.ctx, convoy.ClaimRequest{Now: t0, Limit: 10, Owner: "w", Lease: time.Minute, PerEndpoint: 2})
	require.NoError(t, err)
	got := map[string]int{}
	for _, d := range ds {
		got[d.EndpointID]++
	}
	require.Equal(t, map[string]int{slow.ID: 2, fast.ID: 2}, got)
	for _, d := range late {
		require.Equal(t, convoy.DeliveryProcessing, f.get(d.ID).Status)
	}
}

// rowVersions fingerprints every row version and row lock in the store's
// tables: a write, or a row lock, changes it.
func rowVersions(t *testing.T, s *postgres.Store) string {
	t.Helper()
	var fp string
	err := testPool(t).QueryRow(context.Background(), fmt.Sprintf(`
		SELECT string_agg(v, ',' ORDER BY v) FROM (
			SELECT 'c' || ctid || xmin || xmax AS v FROM %[1]s.counts
			UNION ALL SELECT 'd' || ctid || xmin || xmax FROM %[1]s.deliveries
			UNION ALL SELECT 'e' || ctid || xmin || xmax FROM %[1]s.endpoints
			UNION ALL SELECT 'v' || ctid || xmin || xmax FROM %[1]s.events) x`, `"`+s.Schema()+`"`)).Scan(&fp)
	require.NoError(t, err)
	return fp
}

// TestIdleCallsWriteNothing: what an idle dispatcher polls (a Claim that
// finds nothing to hand out, NextDue, Stats) neither writes nor locks a
// row.
func TestIdleCallsWriteNothing(t *testing.T) {
	s := newStore(t, nil)
	f := setup(t, s, 1)
	f.send(t0, 2)
	f.send(t0.Add(time.Hour), 2)
	claimed := f.claim(t0, 1)
	require.Len(t, claimed, 1)
	before := rowVersions(t, s)

	for _, req := range []convoy.ClaimRequest{
		{Now: t0.Add(-time.Hour), Limit: 10, Owner: "w", Lease: time.Minute},
		{Now: t0, Limit: 10, Owner: "w", Lease: time.Minute, PerEndpoint: 1, InFlight: map[string]int{f.eps[0].ID: 1}},
		{Now: t0, Limit: 10, Owner: "other", Lease: time.Minute, PerEndpoint: 1},
	} {
		ds, err := s.Claim(f.ctx, req)
		require.NoError(t, err)
		require.Empty(t, ds)
	}
	_, _, err := s.NextDue(f.ctx)
	require.NoError(t, err)
	_, err = s.Stats(f.ctx, t0)
	require.NoError(t, err)
	require.Equal(t, before, rowVersions(t, s))
}

// TestRequeueAndRetentionDoNotCross: DeleteBefore never removes a
// delivery a concurrent Requeue made pending, and never fails for it.
func TestRequeueAndRetentionDoNotCross(t *testing.T) {
	const n = 30
	s := newStore(t, nil)
	f := setup(t, s, 1)
	for range n {
		f.send(t0.Add(-time.Hour), 1)
	}
	for _, c := range f.claim(t0, n) {
		tr := succeeded(c, t0)
		tr.Status, tr.Attempt = convoy.DeliveryFailure, nil
		_, err := s.Record(f.ctx, tr)
		require.NoError(t, err)
	}
	var (
		wg      sync.WaitGroup
		moved   int
		deleted int
		rerr    error
		derr    error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		moved, rerr = s.Requeue(f.ctx, convoy.RequeueRequest{
			Now: t0, EndpointID: f.eps[0].ID, Statuses: []convoy.DeliveryStatus{convoy.DeliveryFailure},
		})
	}()
	go func() {
		defer wg.Done()
		for {
			k, err := s.DeleteBefore(f.ctx, t0, 4)
			deleted += k
			if err != nil || k == 0 {
				derr = err
				return
			}
		}
	}()
	wg.Wait()
	require.NoError(t, rerr)
	require.NoError(t, derr)
	st, err := s.Stats(f.ctx, t0)
	require.NoError(t, err)
	require.Equal(t, moved, st.Deliveries[convoy.DeliveryScheduled], "every delivery requeued is still there")
	require.Equal(t, n, moved+deleted)
	require.Equal(t, moved, len(f.claim(t0, n)))
}

// TestClaimWaitsForAClaimInFlight: a claim that finds the endpoint at the
// head of the due order held by another claim (of this process or
// another) waits for it and then takes what the cap leaves, rather than
// coming back empty. A Dispatcher keeps two claims in flight, and with
// one busy endpoint the second always met the first.
func TestClaimWaitsForAClaimInFlight(t *testing.T) {
	s := newStore(t, nil)
	f := setup(t, s, 1)
	f.send(t0, 5)
	pool := testPool(t)
	first, err := pool.Begin(f.ctx)
	require.NoError(t, err)
	defer func() { _ = first.Rollback(context.Background()) }()
	// The first claim, still running: it holds the endpoint's lock and
	// leased two of the five, which it has not committed.
	var leased int
	require.NoError(t, first.QueryRow(f.ctx, `SELECT count(*) FROM `+pgx.Identifier{s.Schema()}.Sanitize()+`.claim($1, 2, 'process-a', $2, 3,
		'{}', '{}', 64, '{}', '{}')`, t0.UnixNano(), t0.Add(time.Minute).UnixNano()).Scan(&leased))
	require.Equal(t, 2, leased)

	done := make(chan []*convoy.Delivery, 1)
	go func() {
		ds, err := s.Claim(f.ctx, convoy.ClaimRequest{Now: t0, Limit: 5, Owner: "process-b", Lease: time.Minute, PerEndpoint: 3})
		assert.NoError(t, err)
		done <- ds
	}()
	require.Eventually(t, func() bool { return len(done) > 0 || claimLockWaiters(t, s.Schema()) > 0 }, 10*time.Second, 5*time.Millisecond)
	require.Empty(t, done, "the claim returned while another held the endpoint")
	require.NoError(t, first.Commit(f.ctx))
	select {
	case ds := <-done:
		require.Len(t, ds, 1, "the cap is three and the first claim holds two")
	case <-time.After(10 * time.Second):
		t.Fatal("the claim still waits after the first committed")
	}
}

// TestClaimLocksInKeyOrder: claims wait for endpoint locks in the order
// of the locks' keys, not of the endpoint IDs. Endpoints a < b < c whose
// IDs a and c hash alike share one lock; in ID order a claim for all
// three could hold that lock and wait for b while a claim for b and c
// held b and waited for it (PostgreSQL then aborts one as deadlocked).
func TestClaimLocksInKeyOrder(t *testing.T) {
	const ( // hashtext(a) = hashtext(c) = -2127450529; hashtext(b) = 191449399
		a = "af86ad7e-58e4-48e9-928e-41af67a7f83f"
		b = "b0000000-0000-4000-8000-000000000000"
		c = "d3c4d0d0-b51f-45cd-8d68-c40c4a5383e5"
	)
	s := newStore(t, nil)
	f := setup(t, s, 0)
	eps := map[string]*convoy.Endpoint{}
	for _, id := range []string{a, b, c} {
		ep := storetest.NewEndpoint(f.app.ID)
		ep.ID, ep.EventTypes = id, nil
		require.NoError(t, s.CreateEndpoint(f.ctx, ep))
		eps[id] = ep
	}
	// Due in the order b, c, a.
	f.send(t0, 1, eps[b])
	f.send(t0.Add(time.Second), 1, eps[c])
	f.send(t0.Add(2*time.Second), 1, eps[a])

	holder, err := testPool(t).Begin(f.ctx)
	require.NoError(t, err)
	defer func() { _ = holder.Rollback(context.Background()) }()
	_, err = holder.Exec(f.ctx, `SELECT pg_advisory_xact_lock(hashtext('convoy.claim:' || $1), hashtext($2::uuid::text))`, s.Schema(), a)
	require.NoError(t, err)

	type result struct {
		ds  []*convoy.Delivery
		err error
	}
	claim := func(now time.Time) chan result {
		done := make(chan result, 1)
		go func() {
			ds, err := s.Claim(f.ctx, convoy.ClaimRequest{Now: now, Limit: 10, Owner: convoy.NewID(), Lease: time.Minute, PerEndpoint: 4})
			done <- result{ds, err}
		}()
		return done
	}
	all := claim(t0.Add(3 * time.Second)) // a, b and c are due
	require.Eventually(t, func() bool { return claimLockWaiters(t, s.Schema()) >= 1 }, 10*time.Second, 5*time.Millisecond)
	bc := claim(t0.Add(1500 * time.Millisecond)) // b and c are due
	require.Eventually(t, func() bool { return claimLockWaiters(t, s.Schema()) >= 2 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, holder.Commit(f.ctx))

	taken := 0
	for _, done := range []chan result{all, bc} {
		select {
		case r := <-done:
			require.NoError(t, r.err)
			taken += len(r.ds)
		case <-time.After(10 * time.Second):
			t.Fatal("a claim still waits")
		}
	}
	require.Equal(t, 3, taken, "the two claims took the three deliveries between them")
}

// TestClaimLocksOnlyWhatItTakes: a claim whose candidates are mostly an
// endpoint at its cap locks the deliveries it takes and no others (a
// locked row is a dirty page and WAL, and a Record of it would wait).
func TestClaimLocksOnlyWhatItTakes(t *testing.T) {
	s := newStore(t, nil)
	f := setup(t, s, 2)
	busy, calm := f.eps[0], f.eps[1]
	f.send(t0, 50, busy)
	f.send(t0.Add(time.Second), 1, calm)
	ds, err := s.Claim(f.ctx, convoy.ClaimRequest{Now: t0.Add(2 * time.Second), Limit: 2, Owner: convoy.NewID(), Lease: time.Minute, PerEndpoint: 1})
	require.NoError(t, err)
	require.Len(t, ds, 2)
	var locked int
	require.NoError(t, testPool(t).QueryRow(f.ctx, `SELECT count(*) FROM `+pgx.Identifier{s.Schema()}.Sanitize()+`.deliveries
		WHERE status = 'Scheduled' AND xmax <> 0`).Scan(&locked))
	require.Zero(t, locked, "deliveries locked by the claim that it did not take")
}
