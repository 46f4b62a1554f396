package convoy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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

// leaseCountingStore wraps a store that leases in InsertEventClaim and
// counts what the dispatcher claims and reads besides; afterInsert, when
// set, runs after each InsertEventClaim has committed.
type leaseCountingStore struct {
	convoy.Store
	ci          convoy.ClaimingInserter
	claimed     atomic.Int64
	eventReads  atomic.Int64
	afterInsert func()
}

func newLeaseCountingStore(st convoy.Store) *leaseCountingStore {
	return &leaseCountingStore{Store: st, ci: st.(convoy.ClaimingInserter)}
}

func (s *leaseCountingStore) InsertEventClaim(ctx context.Context, ev *convoy.Event, ds []*convoy.Delivery, req convoy.ClaimRequest) (convoy.InsertResult, error) {
	res, err := s.ci.InsertEventClaim(ctx, ev, ds, req)
	if s.afterInsert != nil {
		s.afterInsert()
	}
	return res, err
}

func (s *leaseCountingStore) Claim(ctx context.Context, req convoy.ClaimRequest) ([]*convoy.Delivery, error) {
	ds, err := s.Store.Claim(ctx, req)
	s.claimed.Add(int64(len(ds)))
	return ds, err
}

func (s *leaseCountingStore) GetEvent(ctx context.Context, id string) (*convoy.Event, error) {
	s.eventReads.Add(1)
	return s.Store.GetEvent(ctx, id)
}

// TestSendHandsFreshEventsToIdleWorkers: with workers idle and nothing
// else due, Send leases the new deliveries itself and the workers attempt
// them without a Claim and without reading the event back.
func TestSendHandsFreshEventsToIdleWorkers(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			st := newLeaseCountingStore(sk.open(t))
			b := setup(t, st, nil)
			rc := testutil.NewReceiver(t, nil)
			b.endpoint(t, rc.URL, nil)
			for i := range 20 {
				res, err := b.d.Send(context.Background(), b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{"n":` + string(rune('0'+i%10)) + `}`)})
				require.NoError(t, err)
				require.Len(t, res.Deliveries, 1)
				require.Equal(t, convoy.DeliveryProcessing, res.Deliveries[0].Status, "send %d: leased at once", i)
				b.waitStatus(t, res.Deliveries[0].ID, convoy.DeliverySuccess)
			}
			require.Equal(t, 20, rc.Count())
			require.Zero(t, st.claimed.Load(), "no delivery went through Claim")
			require.Zero(t, st.eventReads.Load(), "no event was read back")
		})
	}
}

// gatedInserts is a store that leases in InsertEventClaim and, once
// armed, holds its claims and its inserts at gates, each telling entered
// as it arrives.
type gatedInserts struct {
	convoy.Store
	ci                       convoy.ClaimingInserter
	claims, inserts          gate
	claimEntered, insEntered chan struct{}
}

// gate holds callers while armed, until opened.
type gate struct {
	armed atomic.Bool
	open  chan struct{}
	once  sync.Once
}

func (g *gate) pass(entered chan<- struct{}) {
	if g.armed.Load() {
		entered <- struct{}{}
		<-g.open
	}
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func (s *gatedInserts) Claim(ctx context.Context, req convoy.ClaimRequest) ([]*convoy.Delivery, error) {
	s.claims.pass(s.claimEntered)
	return s.Store.Claim(ctx, req)
}

func (s *gatedInserts) InsertEvent(ctx context.Context, ev *convoy.Event, ds []*convoy.Delivery) (convoy.InsertResult, error) {
	s.inserts.pass(s.insEntered)
	return s.Store.InsertEvent(ctx, ev, ds)
}

func (s *gatedInserts) InsertEventClaim(ctx context.Context, ev *convoy.Event, ds []*convoy.Delivery, req convoy.ClaimRequest) (convoy.InsertResult, error) {
	s.inserts.pass(s.insEntered)
	return s.ci.InsertEventClaim(ctx, ev, ds, req)
}

// TestSendBehindABacklogHoldsNoWorker: once a Send has found older work
// due (the store then leases nothing for a new event), the Sends that
// follow hold no worker while they wait for the store, so the claimed
// backlog is attempted meanwhile instead of being sent back to the queue
// for want of the endpoint's share.
func TestSendBehindABacklogHoldsNoWorker(t *testing.T) {
	inner := memory.New()
	st := &gatedInserts{Store: inner, ci: inner,
		claims: gate{open: make(chan struct{})}, inserts: gate{open: make(chan struct{})},
		claimEntered: make(chan struct{}, 8), insEntered: make(chan struct{}, 8)}
	hold := make(chan struct{})
	var holdOnce sync.Once
	release := func() { holdOnce.Do(func() { close(hold) }) }
	rc := testutil.NewReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			<-hold
		}
	})
	t.Cleanup(release)
	b := setup(t, st, func(c *convoy.Config) { c.Workers, c.PerEndpoint = 1, 1 })
	t.Cleanup(func() { st.claims.release(); st.inserts.release() }) // before Close
	b.endpoint(t, rc.URL, nil)
	send := func() *convoy.SendResult { return b.sendResult(t, "x", `{}`) }

	first := send() // leased by Send, held by the receiver
	require.Equal(t, convoy.DeliveryProcessing, first.Deliveries[0].Status)
	require.Eventually(t, func() bool { return rc.Count() == 1 }, 10*time.Second, time.Millisecond)
	backlog := send() // no free worker: stored, due
	require.Equal(t, convoy.DeliveryScheduled, backlog.Deliveries[0].Status)

	st.claims.armed.Store(true)
	release() // the worker is free: the scheduler claims the backlog, held
	<-st.claimEntered
	refused := send() // a free worker, but older work due: nothing leased
	require.Equal(t, convoy.DeliveryScheduled, refused.Deliveries[0].Status)

	st.inserts.armed.Store(true)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		_, err := b.d.Send(context.Background(), b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{}`)})
		assert.NoError(t, err)
	}()
	<-st.insEntered // this Send now waits for the store
	st.claims.release()
	require.Eventually(t, func() bool { return rc.Count() >= 2 }, 10*time.Second, time.Millisecond,
		"the claimed backlog was not attempted while a Send waited for the store")
	select {
	case <-sent:
		t.Fatal("the Send returned before its insert was let through")
	default:
	}
	st.inserts.release()
	<-sent
	require.Eventually(t, func() bool { return rc.Count() == 4 }, 10*time.Second, time.Millisecond)
}

// TestSendLeasesAgainOnceTheBacklogIsGone: after a burst of Sends has
// left a backlog (Sends then stop leasing), once it is all delivered and
// the scheduler sleeps, a Send at light load goes straight to an idle
// worker again.
func TestSendLeasesAgainOnceTheBacklogIsGone(t *testing.T) {
	for _, sk := range storeKinds {
		for _, workers := range []int{1, 2, 3} {
			t.Run(fmt.Sprintf("%s/workers=%d", sk.name, workers), func(t *testing.T) {
				var let atomic.Pointer[chan struct{}]
				rc := testutil.NewReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
					if ch := let.Load(); ch != nil {
						select {
						case <-*ch:
						case <-r.Context().Done():
						}
					}
				})
				b := setup(t, sk.open(t), func(c *convoy.Config) { c.Workers, c.PerEndpoint = workers, workers })
				b.endpoint(t, rc.URL, nil)
				send := func() *convoy.SendResult { return b.sendResult(t, "x", `{}`) }
				var ids []string
				for round := range 5 {
					hold := make(chan struct{})
					let.Store(&hold)
					for range workers + 3 + round {
						ids = append(ids, send().Deliveries[0].ID) // a backlog behind the held workers
					}
					close(hold)
					let.Store(nil)
					for _, id := range ids {
						b.waitStatus(t, id, convoy.DeliverySuccess)
					}
					require.Eventually(t, func() bool { return b.clock.Timers() > 0 }, 10*time.Second, time.Millisecond,
						"the scheduler never went to sleep")
					res := send()
					require.Equal(t, convoy.DeliveryProcessing, res.Deliveries[0].Status,
						"round %d: a Send at light load was not leased", round)
					ids = append(ids, res.Deliveries[0].ID)
				}
			})
		}
	}
}

// TestSendLeasesWithinPerEndpoint: deliveries Send leases itself count
// against PerEndpoint like claimed ones; the rest wait for the scheduler.
func TestSendLeasesWithinPerEndpoint(t *testing.T) {
	release := make(chan struct{})
	var running, most atomic.Int64
	rc := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		n := running.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		<-release
		running.Add(-1)
	})
	b := setup(t, memoryStore(), func(c *convoy.Config) { c.Workers, c.PerEndpoint = 8, 2 })
	b.endpoint(t, rc.URL, nil)
	var statuses []convoy.DeliveryStatus
	var ids []string
	for range 5 {
		res, err := b.d.Send(context.Background(), b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
		statuses = append(statuses, res.Deliveries[0].Status)
		ids = append(ids, res.Deliveries[0].ID)
	}
	require.Equal(t, []convoy.DeliveryStatus{convoy.DeliveryProcessing, convoy.DeliveryProcessing,
		convoy.DeliveryScheduled, convoy.DeliveryScheduled, convoy.DeliveryScheduled}, statuses)
	require.Eventually(t, func() bool { return running.Load() == 2 }, 10*time.Second, time.Millisecond)
	close(release)
	for _, id := range ids {
		b.waitStatus(t, id, convoy.DeliverySuccess)
	}
	require.Equal(t, int64(2), most.Load(), "never more than PerEndpoint at once")
}

// TestCloseReleasesWhatSendLeased: a delivery leased by a Send that
// returns while Close runs is given back to the queue, not attempted and
// not left leased.
func TestCloseReleasesWhatSendLeased(t *testing.T) {
	st := newLeaseCountingStore(memory.New())
	inserted, proceed := make(chan struct{}), make(chan struct{})
	st.afterInsert = func() {
		close(inserted)
		<-proceed
	}
	b := setup(t, st, nil)
	rc := testutil.NewReceiver(t, nil)
	b.endpoint(t, rc.URL, nil)

	sent := make(chan *convoy.SendResult, 1)
	go func() {
		res, err := b.d.Send(context.Background(), b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{}`)})
		if err != nil {
			t.Error(err)
		}
		sent <- res
	}()
	<-inserted
	closed := make(chan error, 1)
	go func() { closed <- b.d.Close(context.Background()) }()
	// A Send to an app that does not exist fails ErrNotFound until Close
	// begins, then ErrClosed, storing nothing either way.
	nobody := convoy.NewID()
	require.Eventually(t, func() bool {
		_, err := b.d.Send(context.Background(), nobody, convoy.Event{Type: "x", Data: json.RawMessage(`{}`)})
		return errors.Is(err, convoy.ErrClosed)
	}, 10*time.Second, time.Millisecond)
	close(proceed)
	res := <-sent
	require.Equal(t, convoy.DeliveryScheduled, res.Deliveries[0].Status, "Send reports the delivery as released")
	require.NoError(t, <-closed)

	got, err := st.GetDelivery(context.Background(), res.Deliveries[0].ID)
	require.NoError(t, err)
	require.Equal(t, convoy.DeliveryScheduled, got.Status, "released for the next dispatcher")
	require.Equal(t, 0, got.Attempts)
	require.Zero(t, rc.Count())
}

// TestRepeatedSendDoesNotHandOverTheFirstDelivery: an idempotent repeat
// returns the first delivery, leased to this dispatcher and in flight;
// Send must not hand it to a second worker.
func TestRepeatedSendDoesNotHandOverTheFirstDelivery(t *testing.T) {
	release := make(chan struct{})
	rc := testutil.NewReceiver(t, func(int, http.ResponseWriter, *http.Request) { <-release })
	b := setup(t, memoryStore(), nil)
	b.endpoint(t, rc.URL, nil)
	ev := convoy.Event{Type: "x", Data: json.RawMessage(`{}`), IdempotencyKey: "order-1"}
	first, err := b.d.Send(context.Background(), b.app.ID, ev)
	require.NoError(t, err)
	<-rc.Requests
	again, err := b.d.Send(context.Background(), b.app.ID, ev)
	require.NoError(t, err)
	require.True(t, again.Duplicate)
	require.Equal(t, convoy.DeliveryProcessing, again.Deliveries[0].Status)
	close(release)
	b.waitStatus(t, first.Deliveries[0].ID, convoy.DeliverySuccess)
	require.Len(t, b.attempts(t, first.Deliveries[0].ID), 1)
	require.Equal(t, 1, rc.Count())
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

// TestSendReachesEveryPageOfEndpoints: an app with more endpoints than
// one page of ListEndpoints holds gets a delivery for each.
func TestSendReachesEveryPageOfEndpoints(t *testing.T) {
	b := setup(t, memoryStore(), nil)
	rc := testutil.NewReceiver(t, nil)
	for range convoy.MaxPageSize + 1 {
		b.endpoint(t, rc.URL, nil)
	}
	res := b.sendResult(t, "x", `{}`)
	require.Len(t, res.Deliveries, convoy.MaxPageSize+1)
	seen := make(map[string]bool)
	for _, dl := range res.Deliveries {
		seen[dl.EndpointID] = true
	}
	require.Len(t, seen, convoy.MaxPageSize+1, "one delivery per endpoint")
}
