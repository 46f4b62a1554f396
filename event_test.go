package convoy_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil"
	"github.com/convoykit/convoy/store/memory"
)

// TestSendReturnsItsDeliveries: Send says what it created, and whether an
// idempotent repeat was ignored.
func TestSendReturnsItsDeliveries(t *testing.T) {
	b := setup(t, memoryStore(), nil)
	require.NoError(t, b.d.Close(context.Background())) // nothing is attempted
	ctx := context.Background()
	active := b.endpoint(t, "https://example.com/a", nil)
	dead := b.endpoint(t, "https://example.com/b", func(e *convoy.Endpoint) { e.Status = convoy.EndpointInactive })
	b.endpoint(t, "https://example.com/c", func(e *convoy.Endpoint) { e.EventTypes = []string{"other"} })

	res, err := sendOn(b, ctx, convoy.Event{Type: "x", Data: json.RawMessage(`{}`), IdempotencyKey: "k1"})
	require.NoError(t, err)
	require.False(t, res.Duplicate)
	require.Len(t, res.Deliveries, 2, "the filtered-out endpoint gets none")
	status := map[string]convoy.DeliveryStatus{}
	for _, dl := range res.Deliveries {
		require.Equal(t, res.Event.ID, dl.EventID)
		status[dl.EndpointID] = dl.Status
	}
	require.Equal(t, map[string]convoy.DeliveryStatus{
		active.ID: convoy.DeliveryScheduled, dead.ID: convoy.DeliveryDiscarded,
	}, status)

	again, err := sendOn(b, ctx, convoy.Event{Type: "x", Data: json.RawMessage(`{"other":1}`), IdempotencyKey: "k1"})
	require.NoError(t, err)
	require.True(t, again.Duplicate)
	require.Equal(t, res.Event.ID, again.Event.ID)
	require.ElementsMatch(t, ids(res.Deliveries), ids(again.Deliveries))
}

// sendOn sends through a dispatcher that may be closed for delivery but
// not for Send: a fresh one on the same store.
func sendOn(b *bundle, ctx context.Context, ev convoy.Event) (*convoy.SendResult, error) {
	d, err := convoy.New(convoy.Config{Store: b.store, Clock: b.clock})
	if err != nil {
		return nil, err
	}
	return d.Send(ctx, b.app.ID, ev)
}

func ids(ds []*convoy.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

// TestSendWhileAnEndpointIsRemoved: removing one endpoint while events are
// sent never fails a Send; the other endpoints get every event.
func TestSendWhileAnEndpointIsRemoved(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			st := kind.open(t)
			d, err := convoy.New(convoy.Config{Store: st})
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, st.Close()) })
			ctx := context.Background()
			app, err := d.CreateApp(ctx, convoy.App{Name: "a"})
			require.NoError(t, err)
			keep, err := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: "https://example.com/keep"})
			require.NoError(t, err)

			var stop atomic.Bool
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // add and remove endpoints as fast as possible
				defer wg.Done()
				for !stop.Load() {
					ep, err := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: "https://example.com/churn"})
					if err != nil {
						panic(err)
					}
					if err := d.RemoveEndpoint(ctx, ep.ID); err != nil {
						panic(err)
					}
				}
			}()
			const n = 300
			for i := range n {
				res, err := d.Send(ctx, app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{}`)})
				require.NoError(t, err, "send %d", i)
				require.Contains(t, endpointsOf(res.Deliveries), keep.ID)
			}
			stop.Store(true)
			wg.Wait()
			ds, _, err := d.ListDeliveries(ctx, convoy.DeliveryQuery{EndpointID: keep.ID}, convoy.Page{Limit: convoy.MaxPageSize})
			require.NoError(t, err)
			require.Len(t, ds, n)
		})
	}
}

func endpointsOf(ds []*convoy.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.EndpointID)
	}
	return out
}

// TestSendUnknownAppIsNotFound: only an unknown app fails with
// ErrNotFound.
func TestSendUnknownAppIsNotFound(t *testing.T) {
	d, err := convoy.New(convoy.Config{Store: memory.New()})
	require.NoError(t, err)
	_, err = d.Send(context.Background(), convoy.NewID(), convoy.Event{Type: "x", Data: json.RawMessage(`{}`)})
	require.ErrorIs(t, err, convoy.ErrNotFound)
}

// TestSendAfterCloseIsRefused: an event accepted after Close would be
// lost with the memory store, so Send refuses it.
func TestSendAfterCloseIsRefused(t *testing.T) {
	b := setup(t, memoryStore(), nil)
	ctx := context.Background()
	b.endpoint(t, "https://example.com/a", nil)
	require.NoError(t, b.d.Close(ctx))
	_, err := b.d.Send(ctx, b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{}`)})
	require.ErrorIs(t, err, convoy.ErrClosed)
	evs, _, err := b.d.ListEvents(ctx, convoy.EventQuery{}, convoy.Page{})
	require.NoError(t, err)
	require.Empty(t, evs, "nothing was stored")

	// Closed before it ever started: the same.
	d, err := convoy.New(convoy.Config{Store: memory.New()})
	require.NoError(t, err)
	require.NoError(t, d.Close(ctx))
	_, err = d.Send(ctx, b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{}`)})
	require.ErrorIs(t, err, convoy.ErrClosed)
}

// TestSecondCloseWaitsForTheFirst: a Close racing a Close returns only
// once the dispatcher has stopped.
func TestSecondCloseWaitsForTheFirst(t *testing.T) {
	hold := make(chan struct{})
	arrived := make(chan struct{}, 1)
	rc := newHoldingReceiver(t, hold, arrived)
	b := setup(t, memoryStore(), nil)
	ctx := context.Background()
	b.endpoint(t, rc.URL, nil)
	ev := b.send(t, "x", `{}`)
	<-arrived // an attempt is in flight

	var running atomic.Bool
	running.Store(true)
	first := make(chan error, 1)
	go func() { first <- b.d.Close(ctx) }()
	second := make(chan error, 1)
	go func() {
		err := b.d.Close(ctx)
		if running.Load() {
			err = errors.New("second Close returned while the attempt was still running")
		}
		second <- err
	}()
	select {
	case err := <-second:
		t.Fatalf("second Close returned early: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	running.Store(false)
	close(hold)
	require.NoError(t, <-first)
	require.NoError(t, <-second)
	b.waitStatus(t, b.deliveries(t, ev.ID)[0].ID, convoy.DeliverySuccess)
}

// newHoldingReceiver answers 200 once hold is closed, telling arrived of
// each request.
func newHoldingReceiver(t *testing.T, hold <-chan struct{}, arrived chan<- struct{}) *testutil.Receiver {
	return testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	})
}

// TestSendToEndpoint: the event reaches the one endpoint named, whatever
// its filter, and no other endpoint of the app; an inactive endpoint gets
// it Discarded; bad input stores nothing.
func TestSendToEndpoint(t *testing.T) {
	b := setup(t, memoryStore(), nil)
	ctx := context.Background()
	target := testutil.NewReceiver(t, nil)
	other := testutil.NewReceiver(t, nil)
	ep := b.endpoint(t, target.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"invoice.*"} })
	b.endpoint(t, other.URL, nil)

	res, err := b.d.SendToEndpoint(ctx, ep.ID, convoy.Event{Type: "convoy.test", Data: json.RawMessage(`{"ping":1}`)})
	require.NoError(t, err)
	require.False(t, res.Duplicate)
	require.Equal(t, b.app.ID, res.Event.AppID)
	require.Len(t, res.Deliveries, 1)
	require.Equal(t, ep.ID, res.Deliveries[0].EndpointID)
	require.Equal(t, convoy.DeliveryScheduled, res.Deliveries[0].Status)
	b.waitStatus(t, res.Deliveries[0].ID, convoy.DeliverySuccess)
	got := <-target.Requests
	require.Equal(t, `{"ping":1}`, string(got.Body))
	require.Equal(t, "convoy.test", got.Header.Get(convoy.HeaderEventType))
	require.Zero(t, other.Count(), "the app's other endpoint gets nothing")

	_, err = b.d.SetEndpointStatus(ctx, ep.ID, convoy.EndpointInactive)
	require.NoError(t, err)
	res, err = b.d.SendToEndpoint(ctx, ep.ID, convoy.Event{Type: "convoy.test", Data: json.RawMessage(`{}`)})
	require.NoError(t, err)
	require.Equal(t, convoy.DeliveryDiscarded, res.Deliveries[0].Status)

	_, err = b.d.SendToEndpoint(ctx, convoy.NewID(), convoy.Event{Type: "convoy.test", Data: json.RawMessage(`{}`)})
	require.ErrorIs(t, err, convoy.ErrNotFound)
	_, err = b.d.SendToEndpoint(ctx, "not-an-id", convoy.Event{Type: "convoy.test", Data: json.RawMessage(`{}`)})
	require.ErrorIs(t, err, convoy.ErrInvalidID)
	_, err = b.d.SendToEndpoint(ctx, ep.ID, convoy.Event{Type: "convoy.test", Data: json.RawMessage(`{`)})
	require.ErrorIs(t, err, convoy.ErrInvalidJSON)
	events, _, err := b.d.ListEvents(ctx, convoy.EventQuery{AppID: b.app.ID}, convoy.Page{})
	require.NoError(t, err)
	require.Len(t, events, 2, "the refused sends stored nothing")

	require.NoError(t, b.d.Close(ctx))
	_, err = b.d.SendToEndpoint(ctx, ep.ID, convoy.Event{Type: "convoy.test", Data: json.RawMessage(`{}`)})
	require.ErrorIs(t, err, convoy.ErrClosed)
}
