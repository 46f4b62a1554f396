package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/postgres"
	"github.com/convoykit/convoy/store/storetest"
)

// orderedFixture is a fixture whose only endpoint is ordered.
func orderedFixture(t *testing.T, s *postgres.Store) *fixture {
	t.Helper()
	f := setup(t, s, 1)
	ep := f.eps[0].Clone()
	ep.Ordered = true
	_, err := s.UpdateEndpoint(f.ctx, ep.ID, func(e *convoy.Endpoint) error { e.Ordered = true; return nil })
	require.NoError(t, err)
	f.eps[0] = ep
	return f
}

// TestOrderedAcrossProcesses: two stores on one schema (two processes),
// each with several claiming workers, and Sends through InsertEventClaim
// on both meanwhile: never are two deliveries of the ordered endpoint in
// flight at once, as a watcher reading the table sees it, and they are
// handed out in ID (Send) order.
func TestOrderedAcrossProcesses(t *testing.T) {
	const (
		workers = 4 // per store
		queued  = 40
		sent    = 20
	)
	a := newStore(t, nil)
	b := newStore(t, &postgres.Options{Schema: a.Schema()})
	stores := []*postgres.Store{a, b}
	f := orderedFixture(t, a)
	ep := f.eps[0]
	var want []string
	for range queued {
		want = append(want, f.send(t0, 1)[0].ID)
	}

	var (
		mu     sync.Mutex
		order  []string
		errs   []error
		done   atomic.Int64
		most   atomic.Int64
		wg     sync.WaitGroup
		start  = time.Now()
		total  = int64(queued + sent)
		report = func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
		running = func() bool { return done.Load() < total && time.Since(start) < time.Minute }
	)
	// handOut notes deliveries leased to a worker, checking that no other
	// is in flight, then records them.
	inFlight := map[string]bool{}
	handOut := func(s *postgres.Store, ds []*convoy.Delivery) {
		mu.Lock()
		for _, d := range ds {
			if len(inFlight) > 0 {
				errs = append(errs, fmt.Errorf("%s leased while %v in flight", d.ID, inFlight))
			}
			inFlight[d.ID] = true
			order = append(order, d.ID)
		}
		mu.Unlock()
		for _, d := range ds {
			mu.Lock()
			delete(inFlight, d.ID)
			mu.Unlock()
			if _, err := s.Record(f.ctx, succeeded(d, t0)); err != nil {
				report(err)
				return
			}
			done.Add(1)
		}
	}
	wg.Add(1)
	go func() { // the watcher: one statement, one instant
		defer wg.Done()
		for running() {
			var n int64
			err := testPool(t).QueryRow(context.Background(), `SELECT count(*) FROM "`+a.Schema()+`".deliveries
				WHERE endpoint_id = $1 AND status = 'Processing'`, ep.ID).Scan(&n)
			if err != nil {
				report(err)
				return
			}
			most.Store(max(most.Load(), n))
		}
	}()
	for i, s := range stores {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := fmt.Sprintf("process-%d-worker-%d", i, w)
				for running() {
					ds, err := s.Claim(f.ctx, convoy.ClaimRequest{
						Now: t0, Limit: 1 + w%2, Owner: owner, Lease: time.Hour, PerEndpoint: 4,
					})
					if err != nil {
						report(err)
						return
					}
					handOut(s, ds)
				}
			}()
		}
	}
	// One sender, so that Send order is plain: each Send returns before
	// the next, alternating between the processes.
	for i := range sent {
		s := stores[i%2]
		ev := storetest.NewEvent(f.app.ID, t0)
		d := storetest.NewDelivery(ev, ep.ID)
		want = append(want, d.ID)
		res, err := s.InsertEventClaim(f.ctx, ev, []*convoy.Delivery{d},
			convoy.ClaimRequest{Now: t0, Limit: 1, Owner: fmt.Sprintf("process-%d-sender", i%2), Lease: time.Hour})
		require.NoError(t, err)
		handOut(s, slices.DeleteFunc(res.Deliveries, func(d *convoy.Delivery) bool { return d.Status != convoy.DeliveryProcessing }))
	}
	wg.Wait()
	require.Empty(t, errs)
	require.Equal(t, total, done.Load())
	require.Positive(t, most.Load())
	require.LessOrEqual(t, most.Load(), int64(1), "deliveries of the ordered endpoint in flight at once")
	require.Equal(t, want, order, "handed out in Send order")
}

// TestOrderedHeldBackOnce: a Claim that passes over an ordered endpoint's
// queue holds it back once; polling afterwards neither writes nor locks
// a row, and NextDue is the head's lease expiry.
func TestOrderedHeldBackOnce(t *testing.T) {
	s := newStore(t, nil)
	f := orderedFixture(t, s)
	for range 5 {
		f.send(t0, 1)
	}
	require.Len(t, f.claim(t0, 10), 1)
	before := rowVersions(t, s)
	for range 3 {
		require.Empty(t, f.claim(t0, 10))
	}
	at, ok, err := s.NextDue(f.ctx)
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, at.Equal(t0.Add(time.Hour)), "NextDue %v", at)
	st, err := s.Stats(f.ctx, t0)
	require.NoError(t, err)
	require.Zero(t, st.DueNow)
	require.Equal(t, before, rowVersions(t, s))
}
