package convoy_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/convoytest"
	"github.com/convoykit/convoy/internal/testutil"
	"github.com/convoykit/convoy/store/bolt"
	"github.com/convoykit/convoy/store/memory"
)

// fullDisk fails every Record whose attempt is larger than limit bytes,
// as a nearly full disk refuses large writes and takes small ones (the
// claims).
type fullDisk struct {
	convoy.Store
	limit  int
	full   atomic.Bool
	failed atomic.Int64
}

var errDiskFull = errors.New("no space left on device")

func (s *fullDisk) Record(ctx context.Context, t convoy.Transition) (convoy.RecordResult, error) {
	if s.full.Load() && t.Attempt != nil && len(t.Attempt.ResponseBody) > s.limit {
		s.failed.Add(1)
		return convoy.RecordResult{}, fmt.Errorf("write: %w", errDiskFull)
	}
	return s.Store.Record(ctx, t)
}

// TestRecordsFailingPauseClaims: while the store refuses attempt records,
// the dispatcher stops claiming (each claim would be a request sent again
// after a restart), says so in Stats, and resumes when records land.
func TestRecordsFailingPauseClaims(t *testing.T) {
	st := &fullDisk{Store: memory.New(), limit: 100}
	st.full.Store(true)
	big := strings.Repeat("x", 1000)
	rc := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(big)) })
	b := setup(t, st, func(c *convoy.Config) { c.Workers, c.PerEndpoint = 4, 4 })
	b.endpoint(t, rc.URL, nil)
	const n = 40
	for range n {
		b.send(t, "x", `{}`)
	}
	ctx := context.Background()
	require.Eventually(t, func() bool {
		s, err := b.d.Stats(ctx)
		require.NoError(t, err)
		return s.RecordsFailing && s.RecordErrors > 0
	}, 10*time.Second, 5*time.Millisecond)
	// Claiming has stopped: at most one attempt per worker, and one per
	// result slot, went out; wait for many failed record retries to be sure.
	require.Eventually(t, func() bool { return st.failed.Load() > 20 }, 20*time.Second, 5*time.Millisecond)
	require.LessOrEqual(t, rc.Count(), 2*4, "claims went on while records failed")
	s, err := b.d.Stats(ctx)
	require.NoError(t, err)
	require.False(t, s.RecordsFailingSince.IsZero())

	st.full.Store(false) // space freed
	require.Eventually(t, func() bool {
		s, err := b.d.Stats(ctx)
		require.NoError(t, err)
		return s.Deliveries[convoy.DeliverySuccess] == n && !s.RecordsFailing
	}, 20*time.Second, 5*time.Millisecond)
	require.Equal(t, n, rc.Count(), "every event sent exactly once")
}

// TestIdleDispatcherDoesNotWrite: a dispatcher with nothing to do polls
// the store but never commits: the bolt file is byte for byte the same
// after many poll intervals.
func TestIdleDispatcherDoesNotWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idle.db")
	st, err := bolt.Open(path, nil)
	require.NoError(t, err)
	clk := convoytest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	polls := &countingStore{Store: st}
	d, err := convoy.New(convoy.Config{Store: polls, Clock: clk, Logger: testutil.Logger(t)})
	require.NoError(t, err)
	ctx := context.Background()
	app, err := d.CreateApp(ctx, convoy.App{Name: "a"})
	require.NoError(t, err)
	_, err = d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: "https://example.com/"})
	require.NoError(t, err)
	require.NoError(t, d.Start(ctx))
	defer func() {
		require.NoError(t, d.Close(ctx))
		require.NoError(t, st.Close())
	}()
	require.NoError(t, clk.WaitForTimers(ctx, 1))
	before := fileSum(t, path)
	for range 50 {
		require.NoError(t, clk.WaitForTimers(ctx, 1))
		clk.Advance(convoy.DefaultPollInterval)
	}
	require.Eventually(t, func() bool { return polls.claims.Load() >= 20 }, 10*time.Second, 5*time.Millisecond, "the scheduler polled")
	require.Equal(t, before, fileSum(t, path), "an idle poll wrote to the file")
}

type countingStore struct {
	convoy.Store
	claims atomic.Int64
}

func (s *countingStore) Claim(ctx context.Context, r convoy.ClaimRequest) ([]*convoy.Delivery, error) {
	s.claims.Add(1)
	return s.Store.Claim(ctx, r)
}

func fileSum(t *testing.T, path string) [32]byte {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

// TestRetentionDeletesOldEventsInTheBackground: with Config.Retention set,
// finished events older than it disappear; recent ones and those still in
// progress stay.
func TestRetentionDeletesOldEventsInTheBackground(t *testing.T) {
	fail := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
	ok := testutil.NewReceiver(t, nil)
	b := setup(t, memoryStore(), func(c *convoy.Config) { c.Retention = 24 * time.Hour })
	ctx := context.Background()
	epOK := b.endpoint(t, ok.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"ok"} })
	slow := convoy.LinearRetry(100*time.Hour, 3)
	b.endpoint(t, fail.URL, func(e *convoy.Endpoint) { e.EventTypes, e.Retry = []string{"fail"}, &slow })
	old := b.send(t, "ok", `{}`)
	b.waitStatus(t, b.deliveries(t, old.ID)[0].ID, convoy.DeliverySuccess)
	pending := b.send(t, "fail", `{}`) // next retry in 100 h
	b.waitStatus(t, b.deliveries(t, pending.ID)[0].ID, convoy.DeliveryRetry)

	b.clock.Advance(25 * time.Hour) // past retention
	recent := b.send(t, "ok", `{}`)
	b.waitStatus(t, b.deliveries(t, recent.ID)[0].ID, convoy.DeliverySuccess)
	require.Eventually(t, func() bool {
		b.clock.Advance(10 * time.Minute) // retention runs hourly
		_, _, err := b.d.GetEvent(ctx, old.ID)
		return errors.Is(err, convoy.ErrNotFound)
	}, 10*time.Second, 10*time.Millisecond, "the old event was never deleted")
	_, _, err := b.d.GetEvent(ctx, recent.ID)
	require.NoError(t, err, "a recent event stays")
	_, _, err = b.d.GetEvent(ctx, pending.ID)
	require.NoError(t, err, "an old event still being retried stays")
	_ = epOK
}

// TestAttemptsDoNotStoreTheBodyTwice: the store keeps the event's data
// once; attempts read through the dispatcher show the body sent.
func TestAttemptsDoNotStoreTheBodyTwice(t *testing.T) {
	rc := testutil.NewReceiver(t, nil)
	st := memory.New()
	b := setup(t, st, nil)
	ctx := context.Background()
	b.endpoint(t, rc.URL, nil)
	data := `{"invoice":"in_1","lines":[1,2,3]}`
	ev := b.send(t, "x", data)
	dl := b.waitStatus(t, b.deliveries(t, ev.ID)[0].ID, convoy.DeliverySuccess)

	raw, _, err := st.ListAttempts(ctx, dl.ID, convoy.Page{})
	require.NoError(t, err)
	require.Len(t, raw, 1)
	require.Nil(t, raw[0].RequestBody, "the store holds no copy of the body per attempt")

	as, _, err := b.d.ListAttempts(ctx, dl.ID, convoy.Page{})
	require.NoError(t, err)
	require.Equal(t, data, string(as[0].RequestBody))
	last, err := b.d.LastAttempt(ctx, dl.ID)
	require.NoError(t, err)
	require.Equal(t, as[0].ID, last.ID)
	require.Equal(t, data, string(last.RequestBody))
}

// TestLastAttemptIsTheNewest: LastAttempt returns the latest of several
// attempts, and attempts list newest first.
func TestLastAttemptIsTheNewest(t *testing.T) {
	rc := testutil.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n < 3 {
			w.WriteHeader(503)
		}
	})
	b := setup(t, memoryStore(), nil)
	ctx := context.Background()
	b.endpoint(t, rc.URL, nil)
	ev := b.send(t, "x", `{}`)
	id := b.deliveries(t, ev.ID)[0].ID
	require.Eventually(t, func() bool {
		dl, err := b.d.GetDelivery(ctx, id)
		require.NoError(t, err)
		if dl.Status == convoy.DeliveryRetry {
			b.clock.Advance(time.Minute) // the next retry is due
		}
		return dl.Status == convoy.DeliverySuccess
	}, 10*time.Second, 10*time.Millisecond)
	last, err := b.d.LastAttempt(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 3, last.Number)
	require.Equal(t, 200, last.StatusCode)
	as, _, err := b.d.ListAttempts(ctx, id, convoy.Page{})
	require.NoError(t, err)
	require.Equal(t, []int{3, 2, 1}, []int{as[0].Number, as[1].Number, as[2].Number})

	_, err = b.d.LastAttempt(ctx, convoy.NewID())
	require.ErrorIs(t, err, convoy.ErrNotFound)
}

// TestListEventsAndAppDeliveries: the query API through the dispatcher.
func TestListEventsAndAppDeliveries(t *testing.T) {
	b := setup(t, memoryStore(), nil)
	require.NoError(t, b.d.Close(context.Background()))
	ctx := context.Background()
	ep1 := b.endpoint(t, "https://example.com/1", nil)
	ep2 := b.endpoint(t, "https://example.com/2", func(e *convoy.Endpoint) { e.Status = convoy.EndpointInactive })
	other, err := b.d.CreateApp(ctx, convoy.App{Name: "other"})
	require.NoError(t, err)
	_, err = b.d.AddEndpoint(ctx, other.ID, convoy.Endpoint{URL: "https://example.com/o"})
	require.NoError(t, err)
	var sent []string
	for i := range 5 {
		typ := "order.paid"
		if i%2 == 1 {
			typ = "order.refunded"
		}
		res, err := sendOn(b, ctx, convoy.Event{Type: typ, Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
		sent = append(sent, res.Event.ID)
		b.clock.Advance(time.Minute)
	}
	d, err := convoy.New(convoy.Config{Store: b.store, Clock: b.clock})
	require.NoError(t, err)
	_, err = d.Send(ctx, other.ID, convoy.Event{Type: "order.paid", Data: json.RawMessage(`{}`)})
	require.NoError(t, err)

	evs, next, err := d.ListEvents(ctx, convoy.EventQuery{AppID: b.app.ID}, convoy.Page{Limit: 3})
	require.NoError(t, err)
	require.Equal(t, []string{sent[4], sent[3], sent[2]}, eventIDs(evs), "newest first")
	evs, next, err = d.ListEvents(ctx, convoy.EventQuery{AppID: b.app.ID}, convoy.Page{Limit: 3, Cursor: next})
	require.NoError(t, err)
	require.Equal(t, []string{sent[1], sent[0]}, eventIDs(evs))
	require.Empty(t, next)

	evs, _, err = d.ListEvents(ctx, convoy.EventQuery{AppID: b.app.ID, Type: "order.refunded"}, convoy.Page{})
	require.NoError(t, err)
	require.Equal(t, []string{sent[3], sent[1]}, eventIDs(evs))

	start := b.clock.Now().Add(-5 * time.Minute) // the first event's time
	evs, _, err = d.ListEvents(ctx, convoy.EventQuery{AppID: b.app.ID, CreatedFrom: start.Add(time.Minute), CreatedTo: start.Add(3 * time.Minute)}, convoy.Page{})
	require.NoError(t, err)
	require.Equal(t, []string{sent[2], sent[1]}, eventIDs(evs))

	all, _, err := d.ListEvents(ctx, convoy.EventQuery{}, convoy.Page{})
	require.NoError(t, err)
	require.Len(t, all, 6)

	ds, _, err := d.ListDeliveries(ctx, convoy.DeliveryQuery{AppID: b.app.ID}, convoy.Page{})
	require.NoError(t, err)
	require.Len(t, ds, 10, "both endpoints, not the other app's")
	ds, _, err = d.ListDeliveries(ctx, convoy.DeliveryQuery{AppID: b.app.ID, Statuses: []convoy.DeliveryStatus{convoy.DeliveryDiscarded}}, convoy.Page{})
	require.NoError(t, err)
	require.Len(t, ds, 5)
	for _, dl := range ds {
		require.Equal(t, ep2.ID, dl.EndpointID)
	}
	_ = ep1

	_, _, err = d.ListEvents(ctx, convoy.EventQuery{AppID: "nope"}, convoy.Page{})
	require.ErrorIs(t, err, convoy.ErrInvalidID)
	_, _, err = d.ListEvents(ctx, convoy.EventQuery{Type: "a b"}, convoy.Page{})
	require.ErrorIs(t, err, convoy.ErrInvalidEventType)
}

func eventIDs(evs []*convoy.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

// TestStatusHooksAreNeverDropped: a flood of attempt events that a slow
// OnAttempt cannot keep up with does not crowd out an endpoint's death.
func TestStatusHooksAreNeverDropped(t *testing.T) {
	gone := newStatusReceiver(t, http.StatusGone)
	ok := testutil.NewReceiver(t, nil)
	release := make(chan struct{})
	var once sync.Once
	statuses := make(chan convoy.EndpointStatusEvent, 10)
	b := setup(t, memoryStore(), func(c *convoy.Config) {
		c.OnAttempt = func(convoy.AttemptEvent) { <-release } // stuck
		c.OnEndpointStatus = func(e convoy.EndpointStatusEvent) { statuses <- e }
	})
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	ctx := context.Background()
	busy := b.endpoint(t, ok.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"busy"} })
	dying := b.endpoint(t, gone.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"die"} })
	_ = busy
	// More attempt events than the hook queue holds.
	for range 5000 {
		_, err := b.d.Send(ctx, b.app.ID, convoy.Event{Type: "busy", Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		s, err := b.d.Stats(ctx)
		require.NoError(t, err)
		return s.HooksDropped > 0
	}, 60*time.Second, 10*time.Millisecond, "the attempt queue never overflowed")
	b.send(t, "die", `{}`)
	select {
	case e := <-statuses:
		require.Equal(t, dying.ID, e.EndpointID)
		require.Equal(t, convoy.EndpointInactive, e.To)
		require.Equal(t, convoy.ReasonGone, e.Reason)
	case <-time.After(20 * time.Second):
		t.Fatal("the endpoint's death was never reported")
	}
	once.Do(func() { close(release) })
}

// gatedClaims is a store whose Claims, once armed, wait for open and
// record what they were asked.
type gatedClaims struct {
	convoy.Store
	armed atomic.Bool
	open  chan struct{}
	mu    sync.Mutex
	reqs  []convoy.ClaimRequest
}

func (s *gatedClaims) Claim(ctx context.Context, req convoy.ClaimRequest) ([]*convoy.Delivery, error) {
	if s.armed.Load() {
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		s.mu.Unlock()
		<-s.open
	}
	return s.Store.Claim(ctx, req)
}

func (s *gatedClaims) requests() []convoy.ClaimRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]convoy.ClaimRequest(nil), s.reqs...)
}

// TestClaimsOverlapWithinTheirShare: workers that finish while a claim
// waits for the store get a claim of their own at once, rather than after
// the first lands, and that claim leaves room for whatever the first may
// lease: together they never ask for more than Workers, nor let an
// endpoint exceed PerEndpoint.
func TestClaimsOverlapWithinTheirShare(t *testing.T) {
	st := &gatedClaims{Store: memory.New(), open: make(chan struct{})}
	hold := make(chan struct{})
	rc := testutil.NewReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n <= 4 {
			<-hold
		}
	})
	b := setup(t, st, func(c *convoy.Config) { c.Workers, c.PerEndpoint = 8, 8 })
	var opened sync.Once
	openClaims := func() { opened.Do(func() { close(st.open) }) }
	t.Cleanup(openClaims) // before Close, which waits for a held claim
	b.endpoint(t, rc.URL, nil)
	send := func() {
		_, err := b.d.Send(context.Background(), b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
	}
	for range 4 {
		send()
	}
	require.Eventually(t, func() bool { return rc.Count() == 4 }, 10*time.Second, time.Millisecond)

	st.armed.Store(true)
	send() // wakes the scheduler: a claim for the 4 idle workers, held
	require.Eventually(t, func() bool { return len(st.requests()) == 1 }, 10*time.Second, time.Millisecond)
	var held sync.Once
	t.Cleanup(func() { held.Do(func() { close(hold) }) })
	held.Do(func() { close(hold) }) // 4 workers finish while that claim waits
	require.Eventually(t, func() bool { return len(st.requests()) == 2 }, 10*time.Second, time.Millisecond,
		"no second claim while the first is held")
	first, second := st.requests()[0], st.requests()[1]
	require.Equal(t, 4, first.Limit)
	require.Equal(t, 8, first.PerEndpoint)
	require.LessOrEqual(t, first.Limit+second.Limit, 8, "the claims ask for more workers than there are")
	require.Equal(t, 8-first.Limit, second.PerEndpoint, "the second claim leaves no room for what the first leases")

	openClaims()
	require.Eventually(t, func() bool { return rc.Count() == 5 }, 10*time.Second, time.Millisecond)
}

// heldClaimResults is a memory store whose claims wait for start; the
// first that leases anything then waits for open before it returns: its
// deliveries are leased, and the scheduler does not know it yet.
type heldClaimResults struct {
	*memory.Store
	start, claimed, open chan struct{}
	held                 atomic.Bool
}

func (s *heldClaimResults) ClaimEvents(ctx context.Context, req convoy.ClaimRequest) ([]*convoy.Delivery, []*convoy.Event, error) {
	<-s.start
	ds, evs, err := s.Store.ClaimEvents(ctx, req)
	if len(ds) > 0 && s.held.CompareAndSwap(false, true) {
		close(s.claimed)
		<-s.open
	}
	return ds, evs, err
}

// TestClaimBesideSendsKeepsPerEndpoint: a Send that leases while a claim
// is in flight cannot see what the claim leased, so together they may
// lease past PerEndpoint; the claim's deliveries past the endpoint's share
// go back to the queue unattempted, and one endpoint never has more than
// PerEndpoint attempts in flight.
func TestClaimBesideSendsKeepsPerEndpoint(t *testing.T) {
	const share = 4
	st := &heldClaimResults{Store: memory.New(), start: make(chan struct{}), claimed: make(chan struct{}), open: make(chan struct{})}
	rc, answer := testutil.NewHoldingReceiver(t)
	b := setup(t, st, func(c *convoy.Config) { c.Workers, c.PerEndpoint = 2*share, share })
	var started, opened sync.Once
	t.Cleanup(func() {
		started.Do(func() { close(st.start) })
		opened.Do(func() { close(st.open) })
	}) // before setup's Close, which waits for a held claim
	ep := b.endpoint(t, rc.URL, nil)
	ctx := context.Background()
	send := func(d *convoy.Dispatcher) {
		_, err := d.Send(ctx, b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
	}
	// A dispatcher that never starts stores share events for the
	// scheduler to claim (the running one would lease them in Send).
	idle, err := convoy.New(convoy.Config{Store: st, Clock: b.clock, AllowNetworks: loopback, Logger: testutil.Logger(t)})
	require.NoError(t, err)
	for range share {
		send(idle)
	}
	started.Do(func() { close(st.start) })
	// The scheduler claims them at its next look: at once, or when its
	// poll interval passes.
	require.Eventually(t, func() bool {
		select {
		case <-st.claimed:
			return true
		default:
		}
		if b.clock.Timers() > 0 {
			b.clock.Advance(convoy.DefaultPollInterval)
		}
		return false
	}, 10*time.Second, time.Millisecond, "the scheduler never claimed")

	// The claim holds share leases that no worker has yet; these Sends
	// find nothing else due and free workers, and lease share more.
	for range share {
		send(b.d)
	}
	require.Eventually(t, func() bool { return rc.Count() == share }, 10*time.Second, time.Millisecond)
	count := func(s convoy.DeliveryStatus) int {
		ds, _, err := b.d.ListDeliveries(ctx, convoy.DeliveryQuery{EndpointID: ep.ID, Statuses: []convoy.DeliveryStatus{s}}, convoy.Page{})
		require.NoError(t, err)
		return len(ds)
	}
	opened.Do(func() { close(st.open) })
	require.Eventually(t, func() bool {
		return count(convoy.DeliveryProcessing) == share && count(convoy.DeliveryScheduled) == share
	}, 10*time.Second, time.Millisecond, "the claim's deliveries, past the endpoint's share, are not given back")
	require.Equal(t, share, rc.Count(), "more than PerEndpoint attempts in flight to one endpoint")
	answer()
	require.Eventually(t, func() bool { return count(convoy.DeliverySuccess) == 2*share },
		10*time.Second, time.Millisecond, "every event is delivered once the receiver answers")
}

// eventReadingStore hides every capability of the store it wraps, so that
// the scheduler claims every delivery, and counts the events workers read
// back with GetEvent.
type eventReadingStore struct {
	convoy.Store
	eventReads atomic.Int64
}

func (s *eventReadingStore) GetEvent(ctx context.Context, id string) (*convoy.Event, error) {
	s.eventReads.Add(1)
	return s.Store.GetEvent(ctx, id)
}

// eventClaimingStore is eventReadingStore with the store's EventClaimer.
type eventClaimingStore struct {
	*eventReadingStore
	ec          convoy.EventClaimer
	claimEvents atomic.Int64
}

func (s *eventClaimingStore) ClaimEvents(ctx context.Context, req convoy.ClaimRequest) ([]*convoy.Delivery, []*convoy.Event, error) {
	ds, evs, err := s.ec.ClaimEvents(ctx, req)
	s.claimEvents.Add(int64(len(ds)))
	return ds, evs, err
}

// TestClaimedDeliveriesCarryTheirEvents: with an EventClaimer, the
// scheduler hands each claimed delivery to its worker with its event, and
// no worker reads an event back; without one, every worker does.
func TestClaimedDeliveriesCarryTheirEvents(t *testing.T) {
	for _, sk := range storeKinds {
		for _, withEvents := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/events=%t", sk.name, withEvents), func(t *testing.T) {
				reads := &eventReadingStore{Store: sk.open(t)}
				var st convoy.Store = reads
				var claiming *eventClaimingStore
				if withEvents {
					claiming = &eventClaimingStore{eventReadingStore: reads, ec: reads.Store.(convoy.EventClaimer)}
					st = claiming
				}
				b := setup(t, st, nil)
				rc := testutil.NewReceiver(t, nil)
				b.endpoint(t, rc.URL, nil)
				const n = 20
				var ids []string
				for i := range n {
					res, err := b.d.Send(context.Background(), b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(strconv.Itoa(i))})
					require.NoError(t, err)
					ids = append(ids, res.Deliveries[0].ID)
				}
				for _, id := range ids {
					b.waitStatus(t, id, convoy.DeliverySuccess)
				}
				require.Equal(t, n, rc.Count())
				if withEvents {
					require.Equal(t, int64(n), claiming.claimEvents.Load(), "every delivery claimed with its event")
					require.Zero(t, reads.eventReads.Load(), "no event was read back")
				} else {
					require.Equal(t, int64(n), reads.eventReads.Load(), "each worker read its event")
				}
			})
		}
	}
}

// claimCountingStore counts the claims made of a store, keeping its
// ClaimingInserter.
type claimCountingStore struct {
	convoy.Store
	ci     convoy.ClaimingInserter
	claims atomic.Int64
}

func (s *claimCountingStore) Claim(ctx context.Context, req convoy.ClaimRequest) ([]*convoy.Delivery, error) {
	s.claims.Add(1)
	return s.Store.Claim(ctx, req)
}

func (s *claimCountingStore) InsertEventClaim(ctx context.Context, ev *convoy.Event, ds []*convoy.Delivery, req convoy.ClaimRequest) (convoy.InsertResult, error) {
	return s.ci.InsertEventClaim(ctx, ev, ds, req)
}

// TestLightLoadCostsNoClaims: while workers are idle, each Send leases
// its own delivery, and a finished attempt, with nothing else due, does
// not make the scheduler claim: at light load, every claim would find
// nothing, and on PostgreSQL it held the endpoint's lock that the next
// Send needed to lease.
func TestLightLoadCostsNoClaims(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			inner := sk.open(t)
			st := &claimCountingStore{Store: inner, ci: inner.(convoy.ClaimingInserter)}
			b := setup(t, st, nil)
			rc := testutil.NewReceiver(t, nil)
			b.endpoint(t, rc.URL, nil)
			// Let the scheduler's first claim, at Start, find nothing and
			// go to sleep.
			require.Eventually(t, func() bool { return st.claims.Load() > 0 }, 10*time.Second, time.Millisecond)
			require.NoError(t, b.clock.WaitForTimers(t.Context(), 1))
			before := st.claims.Load()
			const n = 20
			for i := range n {
				res, err := b.d.Send(context.Background(), b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(strconv.Itoa(i))})
				require.NoError(t, err)
				require.Equal(t, convoy.DeliveryProcessing, res.Deliveries[0].Status, "leased by Send")
				b.waitStatus(t, res.Deliveries[0].ID, convoy.DeliverySuccess)
			}
			require.Equal(t, n, rc.Count())
			require.Zero(t, st.claims.Load()-before, "claims made for %d attempts with nothing else due", n)
		})
	}
}

// leaseHeldClaims is a store without capabilities whose claims, once
// armed, hold what they leased until open. The gate comes after the
// claim, so no claim that leased a delivery sent after arming passes it.
type leaseHeldClaims struct {
	convoy.Store
	armed atomic.Bool
	held  chan struct{} // one value per claim held
	open  chan struct{}
}

func (s *leaseHeldClaims) Claim(ctx context.Context, req convoy.ClaimRequest) ([]*convoy.Delivery, error) {
	ds, err := s.Store.Claim(ctx, req)
	if len(ds) > 0 && s.armed.Load() {
		s.held <- struct{}{}
		<-s.open
	}
	return ds, err
}

// TestCloseGivesBackWhatAClaimInFlightLeased: a claim that Close overtakes
// gives its deliveries back to the queue, for the next dispatcher, instead
// of starting their attempts while the dispatcher shuts down.
func TestCloseGivesBackWhatAClaimInFlightLeased(t *testing.T) {
	st := &leaseHeldClaims{Store: memory.New(), held: make(chan struct{}, 8), open: make(chan struct{})}
	b := setup(t, st, nil)
	var opened sync.Once
	t.Cleanup(func() { opened.Do(func() { close(st.open) }) }) // before setup's Close
	rc := testutil.NewReceiver(t, nil)
	b.endpoint(t, rc.URL, nil)
	st.armed.Store(true)
	res, err := b.d.Send(context.Background(), b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{}`)})
	require.NoError(t, err)
	select {
	case <-st.held: // the scheduler's claim leased it, and is held
	case <-time.After(10 * time.Second):
		t.Fatal("the scheduler never claimed the delivery")
	}

	closed := make(chan error, 1)
	go func() { closed <- b.d.Close(context.Background()) }()
	require.Eventually(t, func() bool {
		_, err := b.d.Send(context.Background(), b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{}`)})
		return errors.Is(err, convoy.ErrClosed)
	}, 10*time.Second, time.Millisecond, "Close has begun")
	opened.Do(func() { close(st.open) }) // the claim returns its lease now, after Close began
	require.NoError(t, <-closed)

	got, err := st.GetDelivery(context.Background(), res.Deliveries[0].ID)
	require.NoError(t, err)
	require.Equal(t, convoy.DeliveryScheduled, got.Status, "given back for the next dispatcher")
	require.Zero(t, got.Attempts)
	require.Zero(t, rc.Count(), "no attempt started after Close began")
}

// TestShortRetryIsNotHeldByThePollInterval: a retry due sooner than
// PollInterval is attempted when due; the scheduler must not sleep until
// the lease expiry it saw while the record was landing.
func TestShortRetryIsNotHeldByThePollInterval(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			b := setup(t, sk.open(t), func(c *convoy.Config) {
				c.Retry = convoy.LinearRetry(50*time.Millisecond, 1)
				c.PollInterval = time.Hour
			})
			rc := testutil.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.WriteHeader(http.StatusInternalServerError)
				}
			})
			b.endpoint(t, rc.URL, nil)
			dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
			b.waitStatus(t, dl.ID, convoy.DeliveryRetry)
			b.clock.Advance(50 * time.Millisecond)
			b.waitStatus(t, dl.ID, convoy.DeliverySuccess)
		})
	}
}

// TestRetryBesideACappedEndpointIsNotHeldByThePollInterval: an endpoint at
// its cap with work waiting makes the store's next due time a past one;
// another endpoint's retry must still go out about when due, not a whole
// PollInterval later.
func TestRetryBesideACappedEndpointIsNotHeldByThePollInterval(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			b := setup(t, sk.open(t), func(c *convoy.Config) {
				c.Workers, c.PerEndpoint = 4, 1
				c.PollInterval = time.Hour
				c.Timeout, c.Lease = time.Minute, 2*time.Minute // no timeout wakes the scheduler here
				c.Retry = convoy.LinearRetry(time.Second, 1)
			})
			hang, _ := testutil.NewHoldingReceiver(t)
			flaky := testutil.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 1 {
					w.WriteHeader(http.StatusInternalServerError)
				}
			})
			b.endpoint(t, hang.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"slow"} })
			b.endpoint(t, flaky.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"flaky"} })
			for range 3 {
				b.send(t, "slow", `{}`) // one in flight, two due behind the cap
			}
			require.Eventually(t, func() bool { return hang.Count() == 1 }, 10*time.Second, time.Millisecond)
			dl := b.deliveries(t, b.send(t, "flaky", `{}`).ID)[0]
			b.waitStatus(t, dl.ID, convoy.DeliveryRetry)
			// Due in 1 s; the scheduler looks again every PollInterval/10
			// (6 min here) at the latest while capped work is due.
			b.clock.Advance(6 * time.Minute)
			b.waitStatus(t, dl.ID, convoy.DeliverySuccess)
		})
	}
}
