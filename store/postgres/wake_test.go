package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/postgres"
)

// wakeDeadline bounds how long a wake-up may take to cross processes.
// The subscribers are counters that only notifications move: nothing in
// these tests polls the store.
const wakeDeadline = 5 * time.Second

// waker counts the calls of a subscription.
type waker struct{ n atomic.Int64 }

func (w *waker) fn() { w.n.Add(1) }

// subscribe subscribes a counter to s and waits for the call that tells
// the listener is LISTENing.
func subscribe(t *testing.T, s *postgres.Store) *waker {
	t.Helper()
	w := &waker{}
	t.Cleanup(s.SubscribeWake(w.fn))
	require.Eventually(t, func() bool { return w.n.Load() >= 1 }, wakeDeadline, time.Millisecond, "listener up")
	return w
}

// requireWoken waits until w was called again after `after` calls.
func (w *waker) requireWoken(t *testing.T, after int64, what string) int64 {
	t.Helper()
	require.Eventually(t, func() bool { return w.n.Load() > after }, wakeDeadline, time.Millisecond, what)
	return w.n.Load()
}

// TestWakeAcrossStores: what one store (process) makes due wakes the
// subscribers of another on the same schema.
func TestWakeAcrossStores(t *testing.T) {
	a := newStore(t, nil)
	b := newStore(t, &postgres.Options{Schema: a.Schema()})
	f := setup(t, a, 1)
	w := subscribe(t, b)

	n := w.n.Load()
	ds := f.send(t0, 3)
	n = w.requireWoken(t, n, "InsertEvent")

	claimed := f.claim(t0, 3)
	require.Len(t, claimed, 3)
	_, err := a.Record(f.ctx, failed(claimed[0], t0))
	require.NoError(t, err)
	n = w.requireWoken(t, n, "Record of a Retry")

	require.NoError(t, a.Release(f.ctx, claimed[1].ID, claimed[1].LeaseID))
	n = w.requireWoken(t, n, "Release")

	tr := succeeded(claimed[2], t0)
	tr.Status, tr.Attempt = convoy.DeliveryDiscarded, nil
	_, err = a.Record(f.ctx, tr)
	require.NoError(t, err)
	moved, err := a.Requeue(f.ctx, convoy.RequeueRequest{Now: t0, DeliveryID: ds[2].ID})
	require.NoError(t, err)
	require.Equal(t, 1, moved)
	w.requireWoken(t, n, "Requeue")
}

// TestWakeListenerReconnects: when the listening connection is lost the
// store reconnects, calls its subscribers (a wake-up may have been
// missed), and hears the other processes again.
func TestWakeListenerReconnects(t *testing.T) {
	a := newStore(t, nil)
	b := newStore(t, &postgres.Options{Schema: a.Schema()})
	f := setup(t, a, 1)
	w := subscribe(t, b)

	n := w.n.Load()
	var killed int
	require.NoError(t, testPool(t).QueryRow(context.Background(), `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		"convoy-listen:"+b.Schema()).Scan(&killed))
	require.Equal(t, 1, killed)
	n = w.requireWoken(t, n, "after reconnecting")
	// The listener LISTENs again before it calls the subscribers.
	f.send(t0, 1)
	w.requireWoken(t, n, "InsertEvent after the reconnection")
}

// TestWakeUnsubscribe: after unsubscribe returns, fn is not called; the
// other subscribers still are.
func TestWakeUnsubscribe(t *testing.T) {
	a := newStore(t, nil)
	b := newStore(t, &postgres.Options{Schema: a.Schema()})
	f := setup(t, a, 1)
	witness := subscribe(t, b)
	gone := &waker{}
	unsubscribe := b.SubscribeWake(gone.fn)
	unsubscribe()
	unsubscribe() // twice is fine
	before := gone.n.Load()
	n := witness.n.Load()
	f.send(t0, 1)
	witness.requireWoken(t, n, "the witness")
	require.Equal(t, before, gone.n.Load())

	require.NoError(t, b.Close())
	noop := b.SubscribeWake(gone.fn)
	noop()
}

// TestWakeOnSendTxCommit: a SendTx transaction wakes every process when
// it commits, the sender's own included.
func TestWakeOnSendTxCommit(t *testing.T) {
	a := newStore(t, nil)
	b := newStore(t, &postgres.Options{Schema: a.Schema()})
	f := setup(t, a, 1)
	wa, wb := subscribe(t, a), subscribe(t, b)
	na, nb := wa.n.Load(), wb.n.Load()

	tx, err := testPool(t).Begin(f.ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.Background()) }()
	ev, ds := newEvent(f)
	_, err = a.InsertEventTx(f.ctx, tx, ev, ds)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(f.ctx))
	wa.requireWoken(t, na, "the sending process")
	wb.requireWoken(t, nb, "another process")
}
