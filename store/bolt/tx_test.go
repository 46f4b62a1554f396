package bolt_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/storetest"
	"github.com/stretchr/testify/require"
	bbolt "go.etcd.io/bbolt"
)

// orders is the application's own bucket in the store's file.
var orders = []byte("shop_orders")

// putOrder writes an order in the application's bucket.
func putOrder(tx *bbolt.Tx, id, v string) error {
	b, err := tx.CreateBucketIfNotExists(orders)
	if err != nil {
		return err
	}
	return b.Put([]byte(id), []byte(v))
}

// TestUpdateInsertEventTx writes an application's record and an event in
// one Update: a rollback leaves neither, a commit stores both and makes the
// delivery claimable and wakes the subscribers.
func TestUpdateInsertEventTx(t *testing.T) {
	ctx := context.Background()
	f := setup(t, newStore(t))
	var wakes atomic.Int32
	unsubscribe := f.s.SubscribeWake(func() { wakes.Add(1) })
	defer unsubscribe()
	order := func() (v string) {
		t.Helper()
		require.NoError(t, f.s.View(ctx, func(tx *bbolt.Tx) error {
			if b := tx.Bucket(orders); b != nil {
				v = string(b.Get([]byte("order-1")))
			}
			return nil
		}))
		return v
	}

	errPayment := errors.New("payment declined")
	ev := storetest.NewEvent(f.app.ID, t0)
	d := delivery(ev, f.ep.ID, t0)
	err := f.s.Update(ctx, func(tx *bbolt.Tx) error {
		if err := putOrder(tx, "order-1", "paid"); err != nil {
			return err
		}
		res, err := f.s.InsertEventTx(ctx, tx, ev, []*convoy.Delivery{d})
		if err != nil {
			return err
		}
		if !res.Inserted {
			return errors.New("not inserted")
		}
		return errPayment
	})
	require.ErrorIs(t, err, errPayment)
	require.Empty(t, order(), "the application's write was rolled back")
	_, err = f.s.GetEvent(ctx, ev.ID)
	require.ErrorIs(t, err, convoy.ErrNotFound, "and the event with it")
	claimed, err := f.s.Claim(ctx, convoy.ClaimRequest{Now: t0, Limit: 10, Owner: "w", Lease: time.Minute})
	require.NoError(t, err)
	require.Empty(t, claimed)
	st, err := f.s.Stats(ctx, t0)
	require.NoError(t, err)
	require.Empty(t, st.Deliveries)
	require.Zero(t, wakes.Load())

	var res convoy.InsertResult
	require.NoError(t, f.s.Update(ctx, func(tx *bbolt.Tx) error {
		if err := putOrder(tx, "order-1", "paid"); err != nil {
			return err
		}
		var err error
		res, err = f.s.InsertEventTx(ctx, tx, ev, []*convoy.Delivery{d})
		return err
	}))
	require.True(t, res.Inserted)
	require.Equal(t, "paid", order())
	require.Equal(t, int32(1), wakes.Load(), "woken once, after the commit")
	claimed, err = f.s.Claim(ctx, convoy.ClaimRequest{Now: t0, Limit: 10, Owner: "w", Lease: time.Minute})
	require.NoError(t, err)
	require.Equal(t, []string{d.ID}, ids(claimed))

	// An idempotent repeat inside a transaction finds the first event and
	// wakes nobody.
	first := storetest.NewEvent(f.app.ID, t0)
	first.IdempotencyKey = "order-1"
	require.NoError(t, f.s.Update(ctx, func(tx *bbolt.Tx) error {
		_, err := f.s.InsertEventTx(ctx, tx, first, nil)
		return err
	}))
	again := storetest.NewEvent(f.app.ID, t0)
	again.IdempotencyKey = "order-1"
	require.NoError(t, f.s.Update(ctx, func(tx *bbolt.Tx) error {
		var err error
		res, err = f.s.InsertEventTx(ctx, tx, again, []*convoy.Delivery{delivery(again, f.ep.ID, t0)})
		return err
	}))
	require.False(t, res.Inserted)
	require.Equal(t, first.ID, res.Event.ID)
	require.Equal(t, int32(1), wakes.Load())

	unsubscribe()
	ev2 := storetest.NewEvent(f.app.ID, t0)
	require.NoError(t, f.s.Update(ctx, func(tx *bbolt.Tx) error {
		_, err := f.s.InsertEventTx(ctx, tx, ev2, []*convoy.Delivery{delivery(ev2, f.ep.ID, t0)})
		return err
	}))
	require.Equal(t, int32(1), wakes.Load(), "not after unsubscribing")
}

// TestInsertEventTxRefusesOtherTx checks that InsertEventTx only takes the
// transaction of a running Update of the same store, and that its errors
// leave the transaction usable.
func TestInsertEventTxRefusesOtherTx(t *testing.T) {
	ctx := context.Background()
	f := setup(t, newStore(t))
	other := setup(t, newStore(t))
	ev := storetest.NewEvent(f.app.ID, t0)

	var inView, inOther error
	require.NoError(t, f.s.View(ctx, func(tx *bbolt.Tx) error {
		_, inView = f.s.InsertEventTx(ctx, tx, ev, nil)
		return nil
	}))
	require.ErrorIs(t, inView, convoy.ErrInvalid, "a read transaction")
	require.NoError(t, other.s.Update(ctx, func(tx *bbolt.Tx) error {
		_, inOther = f.s.InsertEventTx(ctx, tx, ev, nil)
		return nil
	}))
	require.ErrorIs(t, inOther, convoy.ErrInvalid, "another store's transaction")
	var leaked *bbolt.Tx
	require.NoError(t, f.s.Update(ctx, func(tx *bbolt.Tx) error {
		leaked = tx
		return nil
	}))
	_, err := f.s.InsertEventTx(ctx, leaked, ev, nil)
	require.ErrorIs(t, err, convoy.ErrInvalid, "a finished transaction")

	// An error of InsertEventTx does not spoil the caller's transaction.
	require.NoError(t, f.s.Update(ctx, func(tx *bbolt.Tx) error {
		stranger := storetest.NewEvent(convoy.NewID(), t0)
		if _, err := f.s.InsertEventTx(ctx, tx, stranger, nil); !errors.Is(err, convoy.ErrNotFound) {
			return errors.New("an unknown app must be ErrNotFound")
		}
		return putOrder(tx, "order-2", "paid")
	}))
	_, err = f.s.GetEvent(ctx, ev.ID)
	require.ErrorIs(t, err, convoy.ErrNotFound)

	// A context that ended before the transaction began runs nothing.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	ran := false
	err = f.s.Update(canceled, func(*bbolt.Tx) error {
		ran = true
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, ran)
}

// TestSendTx sends an event with convoy.SendTx inside an Update of the
// store the dispatcher uses.
func TestSendTx(t *testing.T) {
	ctx := context.Background()
	f := setup(t, newStore(t))
	d, err := convoy.New(convoy.Config{Store: f.s})
	require.NoError(t, err)
	defer d.Close(ctx)

	var sent *convoy.SendResult
	require.NoError(t, f.s.Update(ctx, func(tx *bbolt.Tx) error {
		if err := putOrder(tx, "order-3", "paid"); err != nil {
			return err
		}
		var err error
		sent, err = convoy.SendTx(ctx, d, tx, f.app.ID, convoy.Event{Type: "invoice.paid", Data: json.RawMessage(`{"order":3}`)})
		return err
	}))
	require.Len(t, sent.Deliveries, 1)
	got, err := f.s.GetDelivery(ctx, sent.Deliveries[0].ID)
	require.NoError(t, err)
	require.Equal(t, convoy.DeliveryScheduled, got.Status)
}
