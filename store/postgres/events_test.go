package postgres_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/postgres"
	"github.com/convoykit/convoy/store/storetest"
)

// business is a table of the application's own, beside the store's.
type business struct {
	t     *testing.T
	table string
}

func newBusiness(t *testing.T) business {
	t.Helper()
	schema := freshSchema(t)
	table := pgx.Identifier{schema, "orders"}.Sanitize()
	_, err := testPool(t).Exec(t.Context(), "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()+
		"; CREATE TABLE "+table+" (id text PRIMARY KEY)")
	require.NoError(t, err)
	return business{t, table}
}

func (b business) insert(tx pgx.Tx, id string) {
	b.t.Helper()
	_, err := tx.Exec(b.t.Context(), "INSERT INTO "+b.table+" (id) VALUES ($1)", id)
	require.NoError(b.t, err)
}

func (b business) exists(id string) bool {
	b.t.Helper()
	var ok bool
	require.NoError(b.t, testPool(b.t).QueryRow(b.t.Context(), "SELECT EXISTS (SELECT 1 FROM "+b.table+" WHERE id = $1)", id).Scan(&ok))
	return ok
}

func begin(t *testing.T) pgx.Tx {
	t.Helper()
	tx, err := testPool(t).Begin(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}

// TestInsertEventTxCommitsWithTheCaller: the event and its deliveries
// commit or roll back with the caller's own row, and stay invisible to
// Claim until the commit.
func TestInsertEventTxCommitsWithTheCaller(t *testing.T) {
	s := newStore(t, nil)
	f := setup(t, s, 2)
	orders := newBusiness(t)

	// Rollback: nothing.
	tx := begin(t)
	orders.insert(tx, "order-1")
	ev, ds := newEvent(f)
	res, err := s.InsertEventTx(f.ctx, tx, ev, ds)
	require.NoError(t, err)
	require.True(t, res.Inserted)
	require.Len(t, res.Deliveries, 2)
	require.Empty(t, f.claim(t0.Add(time.Hour), 10), "not claimable before the commit")
	require.NoError(t, tx.Rollback(f.ctx))
	require.False(t, orders.exists("order-1"))
	_, err = s.GetEvent(f.ctx, ev.ID)
	require.ErrorIs(t, err, convoy.ErrNotFound)
	require.Empty(t, f.claim(t0.Add(time.Hour), 10))
	st, err := s.Stats(f.ctx, t0)
	require.NoError(t, err)
	require.Empty(t, st.Deliveries, "the counters rolled back too")

	// Commit: claimable.
	tx = begin(t)
	orders.insert(tx, "order-2")
	ev, ds = newEvent(f)
	_, err = s.InsertEventTx(f.ctx, tx, ev, ds)
	require.NoError(t, err)
	require.Empty(t, f.claim(t0.Add(time.Hour), 10))
	require.NoError(t, tx.Commit(f.ctx))
	require.True(t, orders.exists("order-2"))
	require.ElementsMatch(t, []string{ds[0].ID, ds[1].ID}, deliveryIDs(f.claim(t0, 10)))
	st, err = s.Stats(f.ctx, t0)
	require.NoError(t, err)
	require.Equal(t, map[convoy.DeliveryStatus]int{convoy.DeliveryProcessing: 2}, st.Deliveries)
}

func deliveryIDs(ds []*convoy.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// TestInsertEventTxRefusalKeepsTheTransaction: a refused insert changes
// nothing and leaves the caller's transaction usable.
func TestInsertEventTxRefusalKeepsTheTransaction(t *testing.T) {
	s := newStore(t, nil)
	f := setup(t, s, 1)
	orders := newBusiness(t)
	tx := begin(t)
	orders.insert(tx, "order-1")

	ev, ds := newEvent(f)
	ev.AppID = convoy.NewID()
	ds[0].AppID = ev.AppID
	_, err := s.InsertEventTx(f.ctx, tx, ev, ds)
	require.ErrorIs(t, err, convoy.ErrNotFound, "unknown app")

	kept, _ := newEvent(f)
	_, err = s.InsertEvent(f.ctx, kept, nil)
	require.NoError(t, err)
	dup, ds := newEvent(f)
	dup.ID = kept.ID
	for _, d := range ds {
		d.EventID = dup.ID
	}
	_, err = s.InsertEventTx(f.ctx, tx, dup, ds)
	require.ErrorIs(t, err, convoy.ErrDuplicate)

	other := setup(t, s, 1)
	ev, ds = newEvent(f)
	ds = append(ds, storetest.NewDelivery(ev, other.eps[0].ID))
	_, err = s.InsertEventTx(f.ctx, tx, ev, ds)
	require.ErrorIs(t, err, convoy.ErrInvalid, "another app's endpoint")
	_, err = s.InsertEventTx(f.ctx, nil, ev, ds)
	require.ErrorIs(t, err, convoy.ErrInvalid, "no transaction")

	ev, ds = newEvent(f)
	_, err = s.InsertEventTx(f.ctx, tx, ev, ds)
	require.NoError(t, err)
	orders.insert(tx, "order-2")
	require.NoError(t, tx.Commit(f.ctx))
	require.True(t, orders.exists("order-1"))
	require.True(t, orders.exists("order-2"))
	require.Equal(t, []string{ds[0].ID}, deliveryIDs(f.claim(t0, 10)))
}

// TestInsertEventTxIdempotency: a key used by a committed event, or by a
// transaction that commits while this one waits, returns that event; a
// key whose first transaction rolled back is free.
func TestInsertEventTxIdempotency(t *testing.T) {
	s := newStore(t, nil)
	f := setup(t, s, 1)
	keyed := func(key string) (*convoy.Event, []*convoy.Delivery) {
		ev, ds := newEvent(f)
		ev.IdempotencyKey = key
		return ev, ds
	}

	first, ds := keyed("order-1")
	_, err := s.InsertEvent(f.ctx, first, ds)
	require.NoError(t, err)
	tx := begin(t)
	again, ds := keyed("order-1")
	res, err := s.InsertEventTx(f.ctx, tx, again, ds)
	require.NoError(t, err)
	require.False(t, res.Inserted)
	require.Equal(t, first.ID, res.Event.ID)
	require.Len(t, res.Deliveries, 1)
	require.NoError(t, tx.Commit(f.ctx))

	// Two transactions with one key: the second waits for the first.
	for _, commit := range []bool{true, false} {
		key := map[bool]string{true: "order-2", false: "order-3"}[commit]
		tx1, tx2 := begin(t), begin(t)
		ev1, ds1 := keyed(key)
		_, err := s.InsertEventTx(f.ctx, tx1, ev1, ds1)
		require.NoError(t, err)
		type result struct {
			res convoy.InsertResult
			err error
		}
		done := make(chan result, 1)
		ev2, ds2 := keyed(key)
		go func() {
			res, err := s.InsertEventTx(f.ctx, tx2, ev2, ds2)
			done <- result{res, err}
		}()
		if commit {
			require.NoError(t, tx1.Commit(f.ctx))
		} else {
			require.NoError(t, tx1.Rollback(f.ctx))
		}
		r := <-done
		require.NoError(t, r.err)
		require.NoError(t, tx2.Commit(f.ctx))
		if commit {
			require.False(t, r.res.Inserted)
			require.Equal(t, ev1.ID, r.res.Event.ID)
		} else {
			require.True(t, r.res.Inserted, "the first transaction rolled back: the key is free")
			require.Equal(t, ev2.ID, r.res.Event.ID)
		}
	}
}

// TestSendTx: convoy.SendTx with a pgx.Tx through the Dispatcher.
func TestSendTx(t *testing.T) {
	s := newStore(t, nil)
	d, err := convoy.New(convoy.Config{Store: s})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	ctx := t.Context()
	app, err := d.CreateApp(ctx, convoy.App{Name: "Acme"})
	require.NoError(t, err)
	_, err = d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: "https://hooks.acme.example/convoy"})
	require.NoError(t, err)
	orders := newBusiness(t)
	send := func(order string) (*convoy.SendResult, pgx.Tx) {
		tx := begin(t)
		orders.insert(tx, order)
		res, err := convoy.SendTx(ctx, d, tx, app.ID, convoy.Event{Type: "order.paid", Data: json.RawMessage(`{"order":"` + order + `"}`)})
		require.NoError(t, err)
		return res, tx
	}

	res, tx := send("order-1")
	require.NoError(t, tx.Rollback(ctx))
	_, err = s.GetEvent(ctx, res.Event.ID)
	require.ErrorIs(t, err, convoy.ErrNotFound)

	res, tx = send("order-2")
	require.NoError(t, tx.Commit(ctx))
	require.Len(t, res.Deliveries, 1)
	got, err := s.GetDelivery(ctx, res.Deliveries[0].ID)
	require.NoError(t, err)
	require.Equal(t, convoy.DeliveryScheduled, got.Status)

	_, err = convoy.SendTx(ctx, d, "not a transaction", app.ID, convoy.Event{Type: "order.paid", Data: json.RawMessage(`{}`)})
	require.ErrorIs(t, err, convoy.ErrInvalid, "a transaction type the store does not take")
	var _ convoy.TxInserter[pgx.Tx] = (*postgres.Store)(nil)
}

// TestInsertGroupCommit: InsertEvent calls committed together each get
// their own outcome, the refused ones included, as if made one by one.
func TestInsertGroupCommit(t *testing.T) {
	s := newStore(t, nil)
	f := setup(t, s, 2)
	existing, ds := newEvent(f)
	_, err := s.InsertEvent(f.ctx, existing, ds)
	require.NoError(t, err)

	for _, refusal := range []bool{false, true} {
		key := map[bool]string{false: "order-1", true: "order-2"}[refusal]
		calls, a, again := groupCommitCalls(f, existing, key, refusal, nil)
		b := calls[2].Ev
		out := postgres.InsertTogether(f.ctx, s, calls)
		require.NoError(t, out[0].Err)
		require.True(t, out[0].Res.Inserted)
		require.Len(t, out[0].Res.Deliveries, 2)
		require.NoError(t, out[1].Err)
		require.False(t, out[1].Res.Inserted, "the key was taken by the call before, in the same batch")
		require.Equal(t, a.ID, out[1].Res.Event.ID)
		require.Len(t, out[1].Res.Deliveries, 2)
		require.NoError(t, out[2].Err)
		require.True(t, out[2].Res.Inserted)
		if refusal {
			require.ErrorIs(t, out[3].Err, convoy.ErrNotFound)
			require.ErrorIs(t, out[4].Err, convoy.ErrDuplicate)
		}
		for _, ev := range []*convoy.Event{a, b} {
			_, err := s.GetEvent(f.ctx, ev.ID)
			require.NoError(t, err)
		}
		_, err := s.GetEvent(f.ctx, again.ID)
		require.ErrorIs(t, err, convoy.ErrNotFound)
	}
	st, err := s.Stats(f.ctx, t0)
	require.NoError(t, err)
	require.Equal(t, map[convoy.DeliveryStatus]int{convoy.DeliveryScheduled: 10}, st.Deliveries)
}

// groupCommitCalls returns the calls of the group-commit tests: two with
// one idempotency key, one more, and, with refusal, one for an unknown app
// and one repeating existing's ID; claim, when set, makes each an
// InsertEventClaim.
func groupCommitCalls(f *fixture, existing *convoy.Event, key string, refusal bool, claim func() *convoy.ClaimRequest) (calls []postgres.TestInsert, a, again *convoy.Event) {
	req := func() *convoy.ClaimRequest {
		if claim == nil {
			return nil
		}
		return claim()
	}
	a, aDs := newEvent(f)
	a.IdempotencyKey = key
	again, againDs := newEvent(f)
	again.IdempotencyKey = key
	b, bDs := newEvent(f)
	calls = []postgres.TestInsert{{Ev: a, Ds: aDs, Claim: req()}, {Ev: again, Ds: againDs, Claim: req()}, {Ev: b, Ds: bDs, Claim: req()}}
	if refusal {
		unknown := storetest.NewEvent(convoy.NewID(), t0)
		dup, dupDs := newEvent(f)
		dup.ID = existing.ID
		for _, d := range dupDs {
			d.EventID = dup.ID
		}
		calls = append(calls, postgres.TestInsert{Ev: unknown, Claim: req()}, postgres.TestInsert{Ev: dup, Ds: dupDs, Claim: req()})
	}
	return calls, a, again
}

// TestInsertSkipsRemovedEndpoint: a delivery to an endpoint removed
// meanwhile is skipped, in a batch as alone.
func TestInsertSkipsRemovedEndpoint(t *testing.T) {
	s := newStore(t, nil)
	f := setup(t, s, 2)
	ev, ds := newEvent(f)
	other, otherDs := newEvent(f)
	require.NoError(t, s.DeleteEndpoint(f.ctx, f.eps[1].ID))
	out := postgres.InsertTogether(f.ctx, s, []postgres.TestInsert{{Ev: ev, Ds: ds}, {Ev: other, Ds: otherDs}})
	for _, o := range out {
		require.NoError(t, o.Err)
		require.True(t, o.Res.Inserted)
		require.Len(t, o.Res.Deliveries, 1)
		require.Equal(t, f.eps[0].ID, o.Res.Deliveries[0].EndpointID)
	}
}

// TestInsertClaimBatchOfOneOwner: InsertEventClaim calls of one owner
// that share a batch each lease their delivery when their InFlight counts
// the others' (as a Dispatcher's reservations do), up to PerEndpoint and
// no further. Counting the batch's earlier leases on top of InFlight left
// most of a light load's Sends to the scheduler.
func TestInsertClaimBatchOfOneOwner(t *testing.T) {
	s := newStore(t, nil)
	f := setup(t, s, 1)
	ep := f.eps[0].ID
	owner := convoy.NewID()
	var calls []postgres.TestInsert
	for i := range 3 {
		ev, ds := newEvent(f)
		calls = append(calls, postgres.TestInsert{Ev: ev, Ds: ds, Claim: &convoy.ClaimRequest{
			Now: t0, Limit: 1, Owner: owner, Lease: time.Minute, PerEndpoint: 2,
			InFlight: map[string]int{ep: i}, // the reservations of the calls before
		}})
	}
	out := postgres.InsertTogether(f.ctx, s, calls)
	var statuses []convoy.DeliveryStatus
	for _, o := range out {
		require.NoError(t, o.Err)
		require.Len(t, o.Res.Deliveries, 1)
		statuses = append(statuses, o.Res.Deliveries[0].Status)
	}
	require.Equal(t, []convoy.DeliveryStatus{convoy.DeliveryProcessing, convoy.DeliveryProcessing, convoy.DeliveryScheduled}, statuses,
		"the first two within PerEndpoint, the third over it")
}

// TestInsertClaimWaitsForAClaimsLock: a Send whose endpoint's advisory
// lock a claim holds waits for it and leases once the claim commits,
// rather than leaving its delivery for the scheduler. Skipping such
// endpoints made a light load's Sends and claims take turns at the lock
// and leave most deliveries to the claims.
func TestInsertClaimWaitsForAClaimsLock(t *testing.T) {
	schema := freshSchema(t)
	s := newStore(t, &postgres.Options{Schema: schema})
	f := setup(t, s, 1)
	ep := f.eps[0].ID
	pool := testPool(t)
	holder, err := pool.Begin(f.ctx)
	require.NoError(t, err)
	defer func() { _ = holder.Rollback(context.Background()) }()
	// The lock a claim takes for the endpoint (see the claim function).
	_, err = holder.Exec(f.ctx, `SELECT pg_advisory_xact_lock(hashtext('convoy.claim:' || $1), hashtext($2::uuid::text))`, schema, ep)
	require.NoError(t, err)

	ev, ds := newEvent(f)
	done := make(chan convoy.InsertResult, 1)
	go func() {
		res, err := s.InsertEventClaim(f.ctx, ev, ds, convoy.ClaimRequest{
			Now: t0, Limit: 1, Owner: convoy.NewID(), Lease: time.Minute, PerEndpoint: 4,
		})
		assert.NoError(t, err)
		done <- res
	}()
	require.Eventually(t, func() bool { return len(done) > 0 || claimLockWaiters(t, schema) > 0 }, 10*time.Second, 5*time.Millisecond)
	require.Empty(t, done, "InsertEventClaim returned while the claim's lock was held")
	require.NoError(t, holder.Commit(f.ctx))
	select {
	case res := <-done:
		require.Equal(t, convoy.DeliveryProcessing, res.Deliveries[0].Status)
	case <-time.After(10 * time.Second):
		t.Fatal("InsertEventClaim still waiting after the lock was released")
	}
}

// TestInsertClaimGroupCommit: InsertEventClaim calls committed together
// each get their own outcome, leases included, the refused ones and a
// repeated key as well, as if made one by one.
func TestInsertClaimGroupCommit(t *testing.T) {
	s := newStore(t, nil)
	f := setup(t, s, 2)
	existing, ds := newEvent(f)
	for _, d := range ds {
		d.NextAttemptAt = t0.Add(time.Hour) // due later: no lease is held back
	}
	_, err := s.InsertEvent(f.ctx, existing, ds)
	require.NoError(t, err)
	owner := convoy.NewID()
	claim := func() *convoy.ClaimRequest {
		return &convoy.ClaimRequest{Now: t0, Limit: 2, Owner: owner, Lease: time.Minute}
	}
	for _, refusal := range []bool{false, true} {
		key := map[bool]string{false: "order-1", true: "order-2"}[refusal]
		calls, a, again := groupCommitCalls(f, existing, key, refusal, claim)
		out := postgres.InsertTogether(f.ctx, s, calls)
		for _, i := range []int{0, 2} {
			require.NoError(t, out[i].Err)
			require.True(t, out[i].Res.Inserted)
			require.Len(t, out[i].Res.Deliveries, 2)
			for _, d := range out[i].Res.Deliveries {
				require.Equal(t, convoy.DeliveryProcessing, d.Status)
				require.Equal(t, owner, d.LeaseOwner)
				require.Equal(t, d.Status, f.get(d.ID).Status, "leased as stored")
			}
		}
		require.NoError(t, out[1].Err)
		require.False(t, out[1].Res.Inserted, "the key was taken by the call before, in the same batch")
		require.Equal(t, a.ID, out[1].Res.Event.ID)
		require.Len(t, out[1].Res.Deliveries, 2)
		if refusal {
			require.ErrorIs(t, out[3].Err, convoy.ErrNotFound)
			require.ErrorIs(t, out[4].Err, convoy.ErrDuplicate)
		}
		_, err := s.GetEvent(f.ctx, again.ID)
		require.ErrorIs(t, err, convoy.ErrNotFound)
	}
	st, err := s.Stats(f.ctx, t0)
	require.NoError(t, err)
	require.Equal(t, map[convoy.DeliveryStatus]int{convoy.DeliveryScheduled: 2, convoy.DeliveryProcessing: 8}, st.Deliveries)
}
