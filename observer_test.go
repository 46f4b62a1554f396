package convoy_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bbolt "go.etcd.io/bbolt"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil"
	"github.com/convoykit/convoy/store/bolt"
	"github.com/convoykit/convoy/store/memory"
)

// obsKey marks the contexts a recordingObserver returns, so tests can see
// where they went.
type obsKey struct{}

// recordingObserver keeps every call, and checks that each End gets the
// context its Start returned.
type recordingObserver struct {
	convoy.NopObserver
	traceParent string

	mu        sync.Mutex
	sends     []convoy.SendInfo
	started   []convoy.AttemptInfo
	ended     []convoy.AttemptInfo
	records   []convoy.RecordInfo
	wrongCtx  int
	inTracePC int // TraceParent calls that got SendStart's context
}

func (o *recordingObserver) SendStart(ctx context.Context, s convoy.SendInfo) context.Context {
	return context.WithValue(ctx, obsKey{}, "send "+s.Op)
}

func (o *recordingObserver) TraceParent(ctx context.Context) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if v, _ := ctx.Value(obsKey{}).(string); len(v) > 5 && v[:5] == "send " {
		o.inTracePC++
	}
	return o.traceParent
}

func (o *recordingObserver) SendEnd(ctx context.Context, s convoy.SendInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ctx.Value(obsKey{}) != "send "+s.Op {
		o.wrongCtx++
	}
	o.sends = append(o.sends, s)
}

func (o *recordingObserver) AttemptStart(ctx context.Context, a convoy.AttemptInfo) context.Context {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.started = append(o.started, a)
	return context.WithValue(ctx, obsKey{}, "attempt "+a.DeliveryID)
}

func (o *recordingObserver) AttemptEnd(ctx context.Context, a convoy.AttemptInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ctx.Value(obsKey{}) != "attempt "+a.DeliveryID {
		o.wrongCtx++
	}
	o.ended = append(o.ended, a)
}

func (o *recordingObserver) Recorded(_ context.Context, r convoy.RecordInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.records = append(o.records, r)
}

func (o *recordingObserver) snapshot() recordingObserver {
	o.mu.Lock()
	defer o.mu.Unlock()
	return recordingObserver{
		sends: append([]convoy.SendInfo(nil), o.sends...), started: append([]convoy.AttemptInfo(nil), o.started...),
		ended: append([]convoy.AttemptInfo(nil), o.ended...), records: append([]convoy.RecordInfo(nil), o.records...),
		wrongCtx: o.wrongCtx, inTracePC: o.inTracePC,
	}
}

// recordsOf returns the statuses recorded for a delivery, in order.
func (o *recordingObserver) recordsOf(deliveryID string) []convoy.DeliveryStatus {
	var out []convoy.DeliveryStatus
	for _, r := range o.snapshot().records {
		if r.DeliveryID == deliveryID {
			out = append(out, r.Status)
		}
	}
	return out
}

const testTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// TestObserverSeesSendsAttemptsAndRecords follows one successful delivery,
// one that is retried and fails, one to an inactive endpoint and an
// idempotent repeat through every Observer call, and checks that the
// Observer's contexts reach the HTTP request and its End calls, and that
// the Send's trace context is stored with the event and handed to its
// attempts.
func TestObserverSeesSendsAttemptsAndRecords(t *testing.T) {
	obs := &recordingObserver{traceParent: testTraceParent}
	var transportCtx sync.Map // delivery ID → the context value the transport saw
	b := setup(t, memoryStore(), func(c *convoy.Config) {
		c.Retry = convoy.LinearRetry(time.Minute, 1)
		c.Observer = obs
		c.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				transportCtx.Store(r.Header.Get(convoy.HeaderDeliveryID), r.Context().Value(obsKey{}))
				return rt.RoundTrip(r)
			})
		}
	})
	ctx := context.Background()
	ok := testutil.NewReceiver(t, nil)
	failing := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) })
	okEP := b.endpoint(t, ok.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"ok"} })
	failEP := b.endpoint(t, failing.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"fail"} })
	dead := b.endpoint(t, ok.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"ok"} })
	_, err := b.d.SetEndpointStatus(ctx, dead.ID, convoy.EndpointInactive)
	require.NoError(t, err)

	okRes, err := b.d.Send(ctx, b.app.ID, convoy.Event{Type: "ok", Data: json.RawMessage(`{}`), IdempotencyKey: "k1"})
	require.NoError(t, err)
	failRes, err := b.d.Send(ctx, b.app.ID, convoy.Event{Type: "fail", Data: json.RawMessage(`{}`)})
	require.NoError(t, err)
	repeat, err := b.d.Send(ctx, b.app.ID, convoy.Event{Type: "ok", Data: json.RawMessage(`{}`), IdempotencyKey: "k1"})
	require.NoError(t, err)
	require.True(t, repeat.Duplicate)
	_, err = b.d.Send(ctx, b.app.ID, convoy.Event{Type: "bad type", Data: json.RawMessage(`{}`)})
	require.ErrorIs(t, err, convoy.ErrInvalidEventType)

	var okDL, deadDL *convoy.Delivery
	for _, dl := range okRes.Deliveries {
		if dl.EndpointID == okEP.ID {
			okDL = dl
		} else {
			deadDL = dl
		}
	}
	require.NotNil(t, okDL)
	require.NotNil(t, deadDL)
	require.Equal(t, convoy.DeliveryDiscarded, deadDL.Status)
	failDL := failRes.Deliveries[0]
	require.Equal(t, failEP.ID, failDL.EndpointID)
	b.waitStatus(t, okDL.ID, convoy.DeliverySuccess)
	b.waitStatus(t, failDL.ID, convoy.DeliveryRetry)
	b.clock.Advance(time.Minute)
	b.waitStatus(t, failDL.ID, convoy.DeliveryFailure)
	require.Eventually(t, func() bool {
		return len(obs.recordsOf(failDL.ID)) == 2 && len(obs.recordsOf(okDL.ID)) == 1
	}, 10*time.Second, 5*time.Millisecond)

	got := obs.snapshot()
	require.Zero(t, got.wrongCtx, "every End got the context its Start returned")
	require.Equal(t, 4, got.inTracePC, "TraceParent is asked with SendStart's context")

	// Sends, in order.
	require.Len(t, got.sends, 4)
	require.Equal(t, convoy.SendInfo{Op: convoy.OpSend, AppID: b.app.ID, EventType: "ok", EventID: okRes.Event.ID,
		Deliveries: 2, Discarded: 1}, got.sends[0])
	require.Equal(t, convoy.SendInfo{Op: convoy.OpSend, AppID: b.app.ID, EventType: "fail", EventID: failRes.Event.ID,
		Deliveries: 1}, got.sends[1])
	require.Equal(t, convoy.SendInfo{Op: convoy.OpSend, AppID: b.app.ID, EventType: "ok", EventID: okRes.Event.ID,
		Deliveries: 2, Discarded: 1, Duplicate: true}, got.sends[2])
	require.ErrorIs(t, got.sends[3].Err, convoy.ErrInvalidEventType)
	require.Empty(t, got.sends[3].EventID)

	// The trace context went into the event, and from there to attempts.
	stored, _, err := b.d.GetEvent(ctx, okRes.Event.ID)
	require.NoError(t, err)
	require.Equal(t, testTraceParent, stored.TraceParent)

	// Attempts: one success, then a failure to retry and a final one.
	require.Len(t, got.started, 3)
	require.Len(t, got.ended, 3)
	ends := map[string][]convoy.AttemptInfo{}
	for _, a := range got.ended {
		require.Equal(t, testTraceParent, a.TraceParent)
		require.False(t, a.Canceled)
		require.Positive(t, a.Duration)
		ends[a.DeliveryID] = append(ends[a.DeliveryID], a)
	}
	okEnd := ends[okDL.ID][0]
	require.Equal(t, okRes.Event.ID, okEnd.EventID)
	require.Equal(t, b.app.ID, okEnd.AppID)
	require.Equal(t, okEP.ID, okEnd.EndpointID)
	require.Equal(t, "ok", okEnd.EventType)
	require.Equal(t, 1, okEnd.Number)
	require.Equal(t, 200, okEnd.StatusCode)
	require.True(t, okEnd.Success)
	require.Empty(t, okEnd.Error)
	require.Equal(t, convoy.DeliverySuccess, okEnd.Next)

	fails := ends[failDL.ID]
	require.Len(t, fails, 2)
	require.Equal(t, []int{1, 2}, []int{fails[0].Number, fails[1].Number})
	require.Equal(t, 503, fails[0].StatusCode)
	require.False(t, fails[0].Success)
	require.NotEmpty(t, fails[0].Error)
	require.Equal(t, convoy.DeliveryRetry, fails[0].Next)
	require.True(t, fails[0].NextAttemptAt.After(okEnd.NextAttemptAt))
	require.Equal(t, convoy.DeliveryFailure, fails[1].Next)

	// The attempt's context was the request's.
	v, _ := transportCtx.Load(okDL.ID)
	require.Equal(t, "attempt "+okDL.ID, v)

	// Records: what the store holds, in order, the delivery Discarded at
	// Send included (once: not again for the repeat).
	require.Equal(t, []convoy.DeliveryStatus{convoy.DeliverySuccess}, obs.recordsOf(okDL.ID))
	require.Equal(t, []convoy.DeliveryStatus{convoy.DeliveryRetry, convoy.DeliveryFailure}, obs.recordsOf(failDL.ID))
	require.Equal(t, []convoy.DeliveryStatus{convoy.DeliveryDiscarded}, obs.recordsOf(deadDL.ID))
	require.Len(t, got.records, 4)
	for _, r := range got.records {
		if r.DeliveryID == deadDL.ID {
			require.Equal(t, convoy.RecordInfo{DeliveryID: deadDL.ID, EventID: okRes.Event.ID, AppID: b.app.ID,
				EndpointID: dead.ID, Status: convoy.DeliveryDiscarded,
				EndpointBefore: convoy.EndpointInactive, EndpointAfter: convoy.EndpointInactive}, r)
			continue
		}
		require.True(t, r.Attempted)
		require.False(t, r.Abandoned)
		if r.DeliveryID == failDL.ID {
			require.Equal(t, 503, r.StatusCode)
			require.Equal(t, failEP.ID, r.EndpointID)
		}
	}
}

// TestObserverSendToEndpointAndSendTx: the other two ways to send are
// observed too, with their own Op.
func TestObserverSendToEndpointAndSendTx(t *testing.T) {
	obs := &recordingObserver{traceParent: testTraceParent}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "convoy.db"), nil)
	require.NoError(t, err)
	b := setup(t, st, func(c *convoy.Config) { c.Observer = obs })
	ctx := context.Background()
	rc := testutil.NewReceiver(t, nil)
	ep := b.endpoint(t, rc.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"only.this"} })

	res, err := b.d.SendToEndpoint(ctx, ep.ID, convoy.Event{Type: "test.event", Data: json.RawMessage(`{}`)})
	require.NoError(t, err)
	var txRes *convoy.SendResult
	require.NoError(t, st.Update(ctx, func(tx *bbolt.Tx) error {
		var err error
		txRes, err = convoy.SendTx(ctx, b.d, tx, b.app.ID, convoy.Event{Type: "only.this", Data: json.RawMessage(`{}`)})
		return err
	}))
	b.waitStatus(t, res.Deliveries[0].ID, convoy.DeliverySuccess)
	b.waitStatus(t, txRes.Deliveries[0].ID, convoy.DeliverySuccess)

	got := obs.snapshot()
	require.Zero(t, got.wrongCtx)
	require.Equal(t, []convoy.SendInfo{
		{Op: convoy.OpSendToEndpoint, AppID: b.app.ID, EndpointID: ep.ID, EventType: "test.event", EventID: res.Event.ID, Deliveries: 1},
		{Op: convoy.OpSendTx, AppID: b.app.ID, EventType: "only.this", EventID: txRes.Event.ID, Deliveries: 1},
	}, got.sends)
	for _, id := range []string{res.Event.ID, txRes.Event.ID} {
		ev, _, err := b.d.GetEvent(ctx, id)
		require.NoError(t, err)
		require.Equal(t, testTraceParent, ev.TraceParent)
	}
}

// countingObserver counts attempts and records, and nothing else.
type countingObserver struct {
	convoy.NopObserver
	attempts, records atomic.Int64
}

func (o *countingObserver) AttemptEnd(context.Context, convoy.AttemptInfo) { o.attempts.Add(1) }
func (o *countingObserver) Recorded(context.Context, convoy.RecordInfo)    { o.records.Add(1) }

// TestObserverNeverDrops: while an OnAttempt hook is stuck, so that its
// queue fills and attempt events are dropped, the Observer still sees
// every attempt and every record.
func TestObserverNeverDrops(t *testing.T) {
	if testing.Short() {
		t.Skip("sends more deliveries than the hook queue holds")
	}
	const n = 4400 // more than the 4096 attempt events the hook queue holds
	obs := &countingObserver{}
	stuck := make(chan struct{})
	var unstick sync.Once
	release := func() { unstick.Do(func() { close(stuck) }) }
	t.Cleanup(release) // before Close, which waits for the hook
	b := setup(t, memoryStore(), func(c *convoy.Config) {
		c.Workers = 32
		c.Observer = obs
		c.OnAttempt = func(convoy.AttemptEvent) { <-stuck }
		c.Logger = testutil.LoggerAt(t, slog.LevelError)
	})
	rc := testutil.NewReceiver(t, nil)
	// Ten endpoints, so one event makes ten deliveries.
	for range 10 {
		b.endpoint(t, rc.URL, nil)
	}
	ctx := context.Background()
	for range n / 10 {
		_, err := b.d.Send(ctx, b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		s, err := b.d.Stats(ctx)
		require.NoError(t, err)
		return s.Deliveries[convoy.DeliverySuccess] == n
	}, 60*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return obs.records.Load() == n }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, int64(n), obs.attempts.Load())
	s, err := b.d.Stats(ctx)
	require.NoError(t, err)
	require.Positive(t, s.HooksDropped, "the hook did drop events meanwhile")
	release()
}

// panickingObserver panics in every method.
type panickingObserver struct{ convoy.NopObserver }

func (panickingObserver) SendStart(context.Context, convoy.SendInfo) context.Context {
	panic("send start")
}
func (panickingObserver) TraceParent(context.Context) string       { panic("trace parent") }
func (panickingObserver) SendEnd(context.Context, convoy.SendInfo) { panic("send end") }
func (panickingObserver) AttemptStart(context.Context, convoy.AttemptInfo) context.Context {
	panic("attempt start")
}
func (panickingObserver) AttemptEnd(context.Context, convoy.AttemptInfo) { panic("attempt end") }
func (panickingObserver) Recorded(context.Context, convoy.RecordInfo)    { panic("recorded") }

// TestObserverPanicsAreRecovered: a broken Observer costs its figures,
// not the deliveries or the process.
func TestObserverPanicsAreRecovered(t *testing.T) {
	b := setup(t, memoryStore(), func(c *convoy.Config) { c.Observer = panickingObserver{} })
	rc := testutil.NewReceiver(t, nil)
	b.endpoint(t, rc.URL, nil)
	ev := b.send(t, "x", `{}`)
	b.waitStatus(t, b.deliveries(t, ev.ID)[0].ID, convoy.DeliverySuccess)
	require.Empty(t, ev.TraceParent)
}

// badTraceObserver gives a traceparent that cannot go into a header.
type badTraceObserver struct{ convoy.NopObserver }

func (badTraceObserver) TraceParent(context.Context) string { return "00-abc\r\nX-Injected: 1" }

// TestEventTraceParent: a traceparent passed to Send is stored when the
// Observer gives none, an Observer's malformed one is ignored, and a
// malformed one passed in is refused.
func TestEventTraceParent(t *testing.T) {
	ctx := context.Background()
	t.Run("given, no observer", func(t *testing.T) {
		b := setup(t, memoryStore(), nil)
		ev := b.send(t, "x", `{}`)
		require.Empty(t, ev.TraceParent)
		res, err := b.d.Send(ctx, b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{}`), TraceParent: testTraceParent})
		require.NoError(t, err)
		got, _, err := b.d.GetEvent(ctx, res.Event.ID)
		require.NoError(t, err)
		require.Equal(t, testTraceParent, got.TraceParent)
	})
	t.Run("malformed from the observer", func(t *testing.T) {
		b := setup(t, memoryStore(), func(c *convoy.Config) { c.Observer = badTraceObserver{} })
		res, err := b.d.Send(ctx, b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{}`), TraceParent: testTraceParent})
		require.NoError(t, err)
		require.Equal(t, testTraceParent, res.Event.TraceParent, "the given one is kept")
	})
	t.Run("malformed given", func(t *testing.T) {
		b := setup(t, memoryStore(), nil)
		_, err := b.d.Send(ctx, b.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{}`), TraceParent: "a b"})
		require.ErrorIs(t, err, convoy.ErrInvalid)
	})
}

// TestObserverSeesCanceledAttempt: an attempt cut short by Close ends
// with Canceled, and nothing is recorded.
func TestObserverSeesCanceledAttempt(t *testing.T) {
	obs := &recordingObserver{}
	st := memory.New()
	b := setup(t, st, func(c *convoy.Config) { c.Observer = obs })
	rc := testutil.NewReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	b.endpoint(t, rc.URL, nil)
	b.send(t, "x", `{}`)
	<-rc.Requests
	cctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, b.d.Close(cctx), context.DeadlineExceeded)
	got := obs.snapshot()
	require.Len(t, got.ended, 1)
	require.True(t, got.ended[0].Canceled)
	require.Empty(t, got.ended[0].Next)
	require.Empty(t, got.records)
}

// TestWrapTransport: the wrapper sees every request, the SSRF guard stays
// underneath it, it wraps a user's HTTPClient too, and one that returns
// nil is refused.
func TestWrapTransport(t *testing.T) {
	ctx := context.Background()
	rc := testutil.NewReceiver(t, nil)
	var seen atomic.Int64
	wrap := func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			seen.Add(1)
			return rt.RoundTrip(r)
		})
	}

	t.Run("guard stays", func(t *testing.T) {
		seen.Store(0)
		b := setup(t, memoryStore(), func(c *convoy.Config) {
			c.WrapTransport = wrap
			c.AllowNetworks = nil // 127.0.0.1 is refused again
			c.Resolver = loopbackResolver{}
		})
		u, err := url.Parse(rc.URL)
		require.NoError(t, err)
		// A name, so that only the guard at connect time can refuse it.
		b.endpoint(t, "http://hooks.test:"+u.Port()+"/", nil)
		dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
		b.waitStatus(t, dl.ID, convoy.DeliveryFailure)
		a, err := b.d.LastAttempt(ctx, dl.ID)
		require.NoError(t, err)
		require.Contains(t, a.Error, convoy.ErrBlockedAddress.Error())
		require.Equal(t, int64(1), seen.Load(), "the wrapper saw the request the guard refused")
		require.Zero(t, rc.Count())
	})
	t.Run("user client", func(t *testing.T) {
		seen.Store(0)
		tr := &http.Transport{}
		b := setup(t, memoryStore(), func(c *convoy.Config) {
			c.WrapTransport = wrap
			c.HTTPClient = &http.Client{Transport: tr}
		})
		t.Cleanup(tr.CloseIdleConnections)
		b.endpoint(t, rc.URL, nil)
		dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
		b.waitStatus(t, dl.ID, convoy.DeliverySuccess)
		require.Equal(t, int64(1), seen.Load())
	})
	t.Run("nil", func(t *testing.T) {
		_, err := convoy.New(convoy.Config{Store: memory.New(), WrapTransport: func(http.RoundTripper) http.RoundTripper { return nil }})
		require.ErrorIs(t, err, convoy.ErrInvalidConfig)
	})
}

// loopbackResolver resolves every name to 127.0.0.1.
type loopbackResolver struct{}

func (loopbackResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}
