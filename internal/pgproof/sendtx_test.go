package pgproof

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil/tally"
	"github.com/convoykit/convoy/store/postgres"
)

// txFixture is a schema with an orders table of the test's own beside
// convoy's tables, a started dispatcher on it that only a wake-up makes
// claim, and a receiver that counts what it got.
type txFixture struct {
	db       *database
	st       *postgres.Store
	d        *convoy.Dispatcher
	app      *convoy.App
	received *tally.Received
	orders   string // the orders table's quoted name
}

func newTxFixture(t *testing.T) *txFixture {
	t.Helper()
	ctx := context.Background()
	fx := &txFixture{db: newDatabase(t), received: tally.NewReceived()}
	fx.st = fx.db.open(t)
	fx.orders = pgx.Identifier{fx.db.schema, "orders"}.Sanitize()
	_, err := fx.db.pool.Exec(ctx, "CREATE TABLE "+fx.orders+" (id bigint PRIMARY KEY, note text NOT NULL)")
	require.NoError(t, err)

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fx.received.Add(r.Header)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	fx.d, err = convoy.New(convoy.Config{
		Store: fx.st, Timeout: 2 * time.Second, Lease: 4 * time.Second,
		// Far beyond the test's waits, so deliveries depend on wake-ups,
		// not polling: the NOTIFY that SendTx sends in the caller's
		// transaction wakes the dispatcher when it commits
		// (TestSendTxWakesAtCommit checks that on its own).
		PollInterval: 10 * time.Minute, AllowNetworks: loopback, Logger: quiet(),
	})
	require.NoError(t, err)
	require.NoError(t, fx.d.Start(ctx))
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, fx.d.Close(cctx))
	})
	fx.app, err = fx.d.CreateApp(ctx, convoy.App{Name: "shop"})
	require.NoError(t, err)
	_, err = fx.d.AddEndpoint(ctx, fx.app.ID, convoy.Endpoint{URL: srv.URL})
	require.NoError(t, err)
	return fx
}

// order writes an order and its webhook in one transaction of the
// caller's, returning the transaction still open and what SendTx stored.
func (fx *txFixture) order(t *testing.T, id int64) (pgx.Tx, *convoy.SendResult) {
	t.Helper()
	ctx := context.Background()
	tx, err := fx.db.pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	_, err = tx.Exec(ctx, "INSERT INTO "+fx.orders+" (id, note) VALUES ($1, 'paid')", id)
	require.NoError(t, err)
	data, _ := json.Marshal(map[string]int64{"order": id})
	res, err := convoy.SendTx(ctx, fx.d, tx, fx.app.ID, convoy.Event{Type: "order.paid", Data: data})
	require.NoError(t, err)
	require.False(t, res.Duplicate)
	require.Len(t, res.Deliveries, 1)
	return tx, res
}

// invisible checks, from outside any transaction, that neither the order
// nor its event, nor its deliveries, exist.
func (fx *txFixture) invisible(t *testing.T, orderID int64, res *convoy.SendResult) {
	t.Helper()
	ctx := context.Background()
	var n int
	require.NoError(t, fx.db.pool.QueryRow(ctx, "SELECT count(*) FROM "+fx.orders+" WHERE id = $1", orderID).Scan(&n))
	require.Zero(t, n, "order %d visible", orderID)
	_, err := fx.st.GetEvent(ctx, res.Event.ID)
	require.ErrorIs(t, err, convoy.ErrNotFound)
	for _, dl := range res.Deliveries {
		_, err := fx.st.GetDelivery(ctx, dl.ID)
		require.ErrorIs(t, err, convoy.ErrNotFound)
	}
	ds, _, err := fx.st.ListDeliveries(ctx, convoy.DeliveryQuery{EventID: res.Event.ID}, convoy.Page{})
	require.NoError(t, err)
	require.Empty(t, ds)
}

// waitDelivered waits until the event reached the receiver and its
// delivery is recorded Success.
func (fx *txFixture) waitDelivered(t *testing.T, res *convoy.SendResult) {
	t.Helper()
	eventually(t, 10*time.Second, 20*time.Millisecond, func() (bool, string) {
		if fx.received.Event(res.Event.ID) == 0 {
			return false, "event " + res.Event.ID + " not received"
		}
		dl, err := fx.st.GetDelivery(context.Background(), res.Deliveries[0].ID)
		require.NoError(t, err)
		return dl.Status == convoy.DeliverySuccess, "delivery " + dl.ID + " is " + string(dl.Status)
	})
}

// TestSendTx writes an order and its webhook in one transaction: rolled
// back, neither exists and nothing is ever delivered; committed, both
// exist and the webhook is delivered once. "Never" is bounded by an event
// committed after the rollback: once that one has arrived, the rolled back
// one (which no store holds) has had every chance to.
func TestSendTx(t *testing.T) {
	ctx := context.Background()
	fx := newTxFixture(t)

	// Rollback.
	tx, rolledBack := fx.order(t, 1)
	fx.invisible(t, 1, rolledBack)
	require.NoError(t, tx.Rollback(ctx))
	fx.invisible(t, 1, rolledBack)

	// Commit: invisible until the commit, then delivered.
	tx, committed := fx.order(t, 2)
	fx.invisible(t, 2, committed)
	require.NoError(t, tx.Commit(ctx))
	var note string
	require.NoError(t, fx.db.pool.QueryRow(ctx, "SELECT note FROM "+fx.orders+" WHERE id = 2").Scan(&note))
	require.Equal(t, "paid", note)
	ev, err := fx.st.GetEvent(ctx, committed.Event.ID)
	require.NoError(t, err)
	require.Equal(t, committed.Event.Data, ev.Data)
	fx.waitDelivered(t, committed)

	// A later committed event, then the verdict.
	tx, later := fx.order(t, 3)
	require.NoError(t, tx.Commit(ctx))
	fx.waitDelivered(t, later)

	require.Zero(t, fx.received.Event(rolledBack.Event.ID), "rolled back event delivered")
	require.Equal(t, 1, fx.received.Event(committed.Event.ID), "committed event delivered more than once")
	require.Equal(t, 1, fx.received.Event(later.Event.ID))
	require.Equal(t, 2, fx.received.Total())
	fx.invisible(t, 1, rolledBack)
	s, err := fx.st.Stats(ctx, time.Now())
	require.NoError(t, err)
	require.Equal(t, map[convoy.DeliveryStatus]int{convoy.DeliverySuccess: 2}, nonZero(s.Deliveries))
}

// TestSendTxKilledBeforeCommit has another process (cmd/replica -sendtx)
// write an order and its webhook in one transaction and print the event,
// then kills it with SIGKILL before it commits: PostgreSQL rolls the
// transaction back when the connection dies, so neither exists, and
// nothing is delivered.
func TestSendTxKilledBeforeCommit(t *testing.T) {
	ctx := context.Background()
	fx := newTxFixture(t)

	// The child's connections carry a name of their own, so the test can
	// see when PostgreSQL has ended their sessions.
	p := startProcess(t, "sendtx", "-dsn", fx.db.dsnFor("sendtx"), "-schema", fx.db.schema,
		"-sendtx", fx.app.ID, "-order", "7")
	line := p.waitLine(t, 60*time.Second, func(l string) bool { return strings.HasPrefix(l, "sent ") })
	eventID := strings.TrimPrefix(line, "sent ")
	_, err := fx.st.GetEvent(ctx, eventID)
	require.ErrorIs(t, err, convoy.ErrNotFound, "visible before the commit")

	p.kill(t)
	fx.db.sessionsGone(t, "sendtx")
	_, err = fx.st.GetEvent(ctx, eventID)
	require.ErrorIs(t, err, convoy.ErrNotFound)
	var n int
	require.NoError(t, fx.db.pool.QueryRow(ctx, "SELECT count(*) FROM "+fx.orders).Scan(&n))
	require.Zero(t, n, "the killed process's order exists")
	ds, _, err := fx.st.ListDeliveries(ctx, convoy.DeliveryQuery{AppID: fx.app.ID}, convoy.Page{})
	require.NoError(t, err)
	require.Empty(t, ds)

	// A committed event afterwards arrives; the killed one never does.
	tx, later := fx.order(t, 8)
	require.NoError(t, tx.Commit(ctx))
	fx.waitDelivered(t, later)
	require.Zero(t, fx.received.Event(eventID))
	require.Equal(t, 1, fx.received.Total())
}

// TestSendTxWakesAtCommit checks the store's side of cross-process
// wake-ups: a store of another "process" (its own pool) subscribed with
// SubscribeWake hears nothing while the transaction is open and is woken
// when it commits.
func TestSendTxWakesAtCommit(t *testing.T) {
	ctx := context.Background()
	db := newDatabase(t)
	st := db.open(t)
	other, err := postgres.Open(ctx, db.dsn, &postgres.Options{Schema: db.schema})
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })

	d, err := convoy.New(convoy.Config{Store: st, AllowNetworks: loopback, Logger: quiet()})
	require.NoError(t, err)
	app, err := d.CreateApp(ctx, convoy.App{Name: "shop"})
	require.NoError(t, err)
	_, err = d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: "http://127.0.0.1:1/hook"})
	require.NoError(t, err)

	woken := make(chan struct{}, 1)
	unsubscribe := other.SubscribeWake(func() {
		select {
		case woken <- struct{}{}:
		default:
		}
	})
	defer unsubscribe()

	tx, err := db.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = convoy.SendTx(ctx, d, tx, app.ID, convoy.Event{Type: "order.paid", Data: json.RawMessage(`{"order":1}`)})
	require.NoError(t, err)
	// Wake-ups that the setup caused may still come in; after a quiet
	// moment, none may come while the transaction is open.
	drain := time.NewTimer(500 * time.Millisecond)
	for calm := false; !calm; {
		select {
		case <-woken:
			drain.Reset(500 * time.Millisecond)
		case <-drain.C:
			calm = true
		}
	}
	require.NoError(t, tx.Commit(ctx))
	select {
	case <-woken:
	case <-time.After(10 * time.Second):
		t.Fatal("the commit woke no other process within 10 s")
	}
}

// nonZero returns the entries of m that are not zero.
func nonZero[K comparable](m map[K]int) map[K]int {
	out := map[K]int{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}
