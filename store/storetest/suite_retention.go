package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

func testDeleteBefore(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ep2 := e.newEndpoint(e.app.ID)
	old := t0.Add(-48 * time.Hour)
	later := t0.Add(-47 * time.Hour)

	done := NewEvent(e.app.ID, old)
	done.IdempotencyKey = "order-1"
	doneD := NewDelivery(done, e.ep.ID)
	e.insert(done, doneD)
	evFailed, failed := e.send(old, e.ep)
	evDisc, _ := e.sendStatus(old, convoy.DeliveryDiscarded, e.ep, ep2)
	empty := NewEvent(e.app.ID, old)
	e.insert(empty)
	evSched, _ := e.send(old, e.ep)
	evRetry, retry := e.send(old, e.ep)
	evProc, proc := e.send(old, e.ep)
	evMixed, mixed := e.send(old, e.ep, ep2)
	evAtCutoff, atCutoff := e.send(t0, e.ep)
	evNew, fresh := e.send(t0.Add(time.Hour), e.ep)

	e.finish(doneD, later, convoy.DeliverySuccess, 200)
	e.finish(failed[0], later, convoy.DeliveryFailure, 500)
	e.finish(retry[0], later, convoy.DeliveryRetry, 500)
	e.finish(mixed[0], later, convoy.DeliverySuccess, 200)
	e.finish(atCutoff[0], t0, convoy.DeliverySuccess, 200)
	e.finish(fresh[0], t0.Add(time.Hour), convoy.DeliverySuccess, 200)
	e.take(proc[0].ID, t0.Add(time.Hour))
	removed := []string{done.ID, evFailed.ID, evDisc.ID, empty.ID}
	kept := []string{evSched.ID, evRetry.ID, evProc.ID, evMixed.ID, evAtCutoff.ID, evNew.ID}
	want := snapshot(t, s, append(removed, kept...)...).without("", removed...)

	n, err := s.DeleteBefore(e.ctx, t0, 0)
	require.NoError(t, err)
	require.Equal(t, len(removed), n)
	e.requireGone(done.ID, doneD.ID)
	e.requireGone(evFailed.ID, failed[0].ID)
	e.requireGone(evDisc.ID)
	e.requireGone(empty.ID)
	require.Equal(t, want, snapshot(t, s, append(removed, kept...)...), "DeleteBefore removed more than the old, finished events")

	n, err = s.DeleteBefore(e.ctx, t0, 0)
	require.NoError(t, err)
	require.Zero(t, n)

	// The removed event's idempotency key is free again.
	again := NewEvent(e.app.ID, t0)
	again.IdempotencyKey = done.IdempotencyKey
	e.insert(again)
}

// testDeleteBeforeLimit: a call removes at most limit events, the oldest
// first, stepping over pending events without counting them, and calls
// repeated until one returns less than the limit finish the job.
func testDeleteBeforeLimit(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	// Oldest first, pending events in front of and between finished ones.
	_, pendingDs := e.send(at(-10), e.ep)
	f1, d1 := e.send(at(-9), e.ep) // finished below, with the others
	evRetry, retry := e.send(at(-8), e.ep)
	e.finish(retry[0], at(-8), convoy.DeliveryRetry, 500)
	f2, d2 := e.send(at(-7), e.ep)
	f3, d3 := e.sendStatus(at(-6), convoy.DeliveryDiscarded, e.ep)
	f4 := e.event(e.app.ID, typePaid, at(-5), "")
	f5, d5 := e.send(at(-4), e.ep)
	evProc, proc := e.send(at(-3), e.ep)
	atCutoff, dc := e.send(t0, e.ep)
	newer, dn := e.send(at(1), e.ep)
	e.finish(d1[0], at(-9), convoy.DeliverySuccess, 200)
	e.finish(d2[0], at(-7), convoy.DeliveryFailure, 500)
	e.finish(d5[0], at(-4), convoy.DeliverySuccess, 200)
	e.finish(dc[0], t0, convoy.DeliverySuccess, 200)
	e.finish(dn[0], at(1), convoy.DeliverySuccess, 200)
	e.take(proc[0].ID, at(2))
	pending := []string{pendingDs[0].EventID, evRetry.ID, evProc.ID, atCutoff.ID, newer.ID}

	deleteBefore := func(limit, want int, gone ...string) {
		t.Helper()
		n, err := s.DeleteBefore(e.ctx, t0, limit)
		require.NoError(t, err)
		require.Equal(t, want, n)
		for _, id := range gone {
			_, err := s.GetEvent(e.ctx, id)
			e.requireNotFound(err)
		}
		for _, id := range pending {
			_, err := s.GetEvent(e.ctx, id)
			require.NoError(t, err, "a pending or recent event was removed")
		}
		e.requireCounts(t0)
	}
	requireKept := func(ids ...string) {
		t.Helper()
		for _, id := range ids {
			_, err := s.GetEvent(e.ctx, id)
			require.NoError(t, err, "removed before an older event")
		}
	}
	deleteBefore(2, 2, f1.ID, f2.ID)
	e.requireGone("", d1[0].ID, d2[0].ID)
	requireKept(f3.ID, f4.ID, f5.ID)
	deleteBefore(2, 2, f3.ID, f4.ID)
	e.requireGone("", d3[0].ID)
	requireKept(f5.ID)
	deleteBefore(2, 1, f5.ID) // less than the limit: done
	e.requireGone("", d5[0].ID)
	deleteBefore(2, 0)

	require.Equal(t, map[convoy.DeliveryStatus]int{
		convoy.DeliveryScheduled: 1, convoy.DeliveryRetry: 1, convoy.DeliveryProcessing: 1, convoy.DeliverySuccess: 2,
	}, e.deliveryStats())
	require.Len(t, e.attempts(retry[0].ID), 1, "a pending event keeps its attempts")
}

// testDeleteBeforeOneAtATime: with limit 1, each call removes the oldest
// finished event, however many pending ones come first.
func testDeleteBeforeOneAtATime(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	var finished []string
	for i := range 3 {
		e.send(t0.Add(-time.Duration(10-i)*time.Hour), e.ep) // pending
	}
	for i := range 3 {
		ev, ds := e.send(t0.Add(-time.Duration(5-i)*time.Hour), e.ep)
		e.finish(ds[0], t0, convoy.DeliverySuccess, 200)
		finished = append(finished, ev.ID)
	}
	for _, id := range finished {
		n, err := s.DeleteBefore(e.ctx, t0, 1)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		_, err = s.GetEvent(e.ctx, id)
		e.requireNotFound(err)
	}
	n, err := s.DeleteBefore(e.ctx, t0, 1)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, map[convoy.DeliveryStatus]int{convoy.DeliveryScheduled: 3}, e.deliveryStats())
}

// testDeleteBeforeDefaultBatch: a limit of zero or less means
// DefaultDeleteBatch.
func testDeleteBeforeDefaultBatch(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	total := convoy.DefaultDeleteBatch + 3
	// Insert from a few goroutines: stores that group commits take less
	// time.
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += workers {
				ev := NewEvent(e.app.ID, t0.Add(-time.Hour-time.Duration(i)*time.Second))
				if _, err := s.InsertEvent(e.ctx, ev, nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	n, err := s.DeleteBefore(e.ctx, t0, 0)
	require.NoError(t, err)
	require.Equal(t, convoy.DefaultDeleteBatch, n, "limit 0")
	left := e.listEvents(convoy.EventQuery{}, convoy.MaxPageSize)
	require.Len(t, left, 1)
	require.Len(t, left[0], 3, "the newest are left")
	n, err = s.DeleteBefore(e.ctx, t0, -1)
	require.NoError(t, err)
	require.Equal(t, 3, n, "limit -1")
}
