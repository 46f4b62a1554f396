package bolt

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/storetest"
	"github.com/stretchr/testify/require"
	bbolt "go.etcd.io/bbolt"
)

// txid returns the ID of the last committed write transaction of s's
// file: it changes with every commit, empty ones included.
func txid(t *testing.T, s *Store) int {
	t.Helper()
	var id int
	require.NoError(t, s.db.View(func(tx *bbolt.Tx) error {
		id = tx.ID()
		return nil
	}))
	return id
}

// TestIdleWritesNothing checks that the calls an idle dispatcher makes
// (Claim and NextDue with nothing due, or with everything due parked behind
// full endpoints), and calls that fail or change nothing, commit no
// transaction: bbolt's transaction ID stays the same.
func TestIdleWritesNothing(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	claim := func(req convoy.ClaimRequest) []*convoy.Delivery {
		t.Helper()
		req.Now, req.Owner, req.Lease = now, "w", time.Minute
		if req.Limit == 0 {
			req.Limit = 10
		}
		got, err := s.Claim(ctx, req)
		require.NoError(t, err)
		return got
	}
	poll := func(req convoy.ClaimRequest) {
		t.Helper()
		before := txid(t, s)
		for range 500 {
			require.Empty(t, claim(req))
			_, _, err := s.NextDue(ctx)
			require.NoError(t, err)
		}
		require.Equal(t, before, txid(t, s), "idle polling committed")
	}

	poll(convoy.ClaimRequest{}) // empty store

	app := storetest.NewApp()
	require.NoError(t, s.CreateApp(ctx, app))
	ep := storetest.NewEndpoint(app.ID)
	ep.Headers = map[string]string{"Authorization": "Bearer x", "X-Team": "billing", "X-Env": "prod"}
	require.NoError(t, s.CreateEndpoint(ctx, ep))
	ev := storetest.NewEvent(app.ID, now)
	ds := make([]*convoy.Delivery, 5)
	for i := range ds {
		ds[i] = storetest.NewDelivery(ev, ep.ID)
		ds[i].NextAttemptAt = now.Add(time.Duration(i-2) * time.Second) // 3 due now
	}
	_, err := s.InsertEvent(ctx, ev, ds)
	require.NoError(t, err)

	// Due work behind a full endpoint: the first Claim parks it (a write),
	// the next ones step over it without writing.
	full := convoy.ClaimRequest{PerEndpoint: 1, InFlight: map[string]int{ep.ID: 1}}
	before := txid(t, s)
	require.Empty(t, claim(full))
	require.Greater(t, txid(t, s), before, "the entries were parked")
	poll(full)

	// Claiming what is due, then polling with the rest not yet due.
	got := claim(convoy.ClaimRequest{})
	require.Len(t, got, 3)
	poll(convoy.ClaimRequest{})

	// Calls that fail or change nothing.
	before = txid(t, s)
	errStop := errors.New("stop")
	_, err = s.UpdateEndpoint(ctx, ep.ID, func(*convoy.Endpoint) error { return errStop })
	require.ErrorIs(t, err, errStop)
	_, err = s.UpdateEndpoint(ctx, ep.ID, func(*convoy.Endpoint) error { return nil })
	require.NoError(t, err)
	_, err = s.UpdateApp(ctx, app.ID, func(*convoy.App) error { return nil })
	require.NoError(t, err)
	require.ErrorIs(t, s.Release(ctx, got[0].ID, convoy.NewID()), convoy.ErrLeaseLost)
	n, err := s.DeleteBefore(ctx, now.Add(time.Hour), 0)
	require.NoError(t, err)
	require.Zero(t, n, "every event is pending")
	again := storetest.NewEvent(app.ID, now)
	again.ID = ev.ID
	_, err = s.InsertEvent(ctx, again, nil)
	require.ErrorIs(t, err, convoy.ErrDuplicate)
	require.Equal(t, before, txid(t, s))
}

// TestDeleteBeforeChangedMeanwhile changes picked events between
// DeleteBefore's read-only walk and its committer operation: an event
// whose delivery was re-sent is kept and another one is taken instead,
// and an event that lost a delivery with its endpoint still goes, with
// every index entry.
func TestDeleteBeforeChangedMeanwhile(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	t.Cleanup(func() { require.NoError(t, CheckIndexes(s)) })
	at := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	app := storetest.NewApp()
	require.NoError(t, s.CreateApp(ctx, app))
	ep, other := storetest.NewEndpoint(app.ID), storetest.NewEndpoint(app.ID)
	require.NoError(t, s.CreateEndpoint(ctx, ep))
	require.NoError(t, s.CreateEndpoint(ctx, other))
	var evs []*convoy.Event
	var ds []*convoy.Delivery
	for i := range 5 {
		ev := storetest.NewEvent(app.ID, at.Add(time.Duration(i)*time.Second))
		d := storetest.NewDelivery(ev, ep.ID)
		d.Status = convoy.DeliveryDiscarded
		batch := []*convoy.Delivery{d}
		if i == 1 {
			d2 := storetest.NewDelivery(ev, other.ID)
			d2.Status = convoy.DeliveryDiscarded
			batch = append(batch, d2)
		}
		_, err := s.InsertEvent(ctx, ev, batch)
		require.NoError(t, err)
		evs, ds = append(evs, ev), append(ds, d)
	}
	cutoff := at.Add(time.Hour)
	gone := func(ev *convoy.Event) bool {
		_, err := s.GetEvent(ctx, ev.ID)
		return errors.Is(err, convoy.ErrNotFound)
	}

	// Events 0 and 1 are picked; before the deletion runs, event 0's
	// delivery is re-sent and event 1 loses a delivery with its endpoint.
	release := holdCommitter(t, s)
	requeued, removed := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := s.Requeue(ctx, convoy.RequeueRequest{Now: at, DeliveryID: ds[0].ID})
		requeued <- err
	}()
	waitQueued(s, 1)
	go func() { removed <- s.DeleteEndpoint(ctx, other.ID) }()
	waitQueued(s, 2)
	type result struct {
		n   int
		err error
	}
	deleted := make(chan result, 1)
	go func() {
		n, err := s.DeleteBefore(ctx, cutoff, 2)
		deleted <- result{n, err}
	}()
	waitQueued(s, 3)
	release()
	require.NoError(t, <-requeued)
	require.NoError(t, <-removed)
	res := <-deleted
	require.NoError(t, res.err)
	require.Equal(t, 2, res.n, "event 2 makes up for event 0")
	require.Equal(t, []bool{false, true, true, false, false}, []bool{gone(evs[0]), gone(evs[1]), gone(evs[2]), gone(evs[3]), gone(evs[4])})

	n, err := s.DeleteBefore(ctx, cutoff, 5)
	require.NoError(t, err)
	require.Equal(t, 2, n, "event 0 is pending")
	require.False(t, gone(evs[0]))
}

// TestClaimRepairsStaleEntries gives Claim two index entries out of step
// with their deliveries, as a bug of an earlier version could leave them:
// the scheduled entry of a delivery since leased, and an entry at the
// wrong time for a Scheduled delivery whose own entry is missing. Claim
// drops both instead of failing every call from then on, puts the missing
// entry back, and loses nothing.
func TestClaimRepairsStaleEntries(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	ep, ds := dueDeliveries(t, s, now, 3, func(i int) time.Time { return now.Add(time.Duration(i-10) * time.Second) })
	claim := func() []string {
		t.Helper()
		got, err := s.Claim(ctx, convoy.ClaimRequest{Now: now, Limit: 10, Owner: "w", Lease: time.Minute})
		require.NoError(t, err)
		var ids []string
		for _, d := range got {
			ids = append(ids, d.ID)
		}
		return ids
	}
	leased, err := s.Claim(ctx, convoy.ClaimRequest{Now: now, Limit: 1, Owner: "w", Lease: time.Minute})
	require.NoError(t, err)
	require.Len(t, leased, 1)
	require.Equal(t, ds[0].ID, leased[0].ID)

	require.NoError(t, s.db.Update(func(tx *bbolt.Tx) error {
		due := tx.Bucket(bucketDue)
		// The leased delivery's scheduled entry, back in the index.
		if err := due.Put(dueKey(ds[0].NextAttemptAt, ds[0].ID), []byte(ep.ID)); err != nil {
			return err
		}
		// ds[1]'s entry moved a minute earlier.
		if err := due.Delete(dueKey(ds[1].NextAttemptAt, ds[1].ID)); err != nil {
			return err
		}
		return due.Put(dueKey(ds[1].NextAttemptAt.Add(-time.Minute), ds[1].ID), []byte(ep.ID))
	}))
	require.Error(t, s.view(ctx, func(tx *bbolt.Tx) error { return checkIndexes(tx) }), "the index is out of step")

	require.Equal(t, []string{ds[2].ID}, claim(), "the one entry in step is claimed")
	require.Equal(t, int64(2), s.repairs.Load())
	require.NoError(t, s.view(ctx, func(tx *bbolt.Tx) error { return checkIndexes(tx) }), "repaired")
	require.Equal(t, []string{ds[1].ID}, claim(), "the delivery whose entry was wrong is claimed once it is put right")
	require.Empty(t, claim())
	s.repairs.Store(0) // counted above; CheckIndexes would report them
}
