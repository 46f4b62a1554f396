package otelconvoy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/convoytest"
	"github.com/convoykit/convoy/internal/testutil"
	"github.com/convoykit/convoy/otelconvoy"
	"github.com/convoykit/convoy/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a dispatcher on a memory store and a fake clock, reported to an
// SDK meter provider read by hand and a tracer provider whose spans are
// recorded.
type env struct {
	d      *convoy.Dispatcher
	store  convoy.Store
	clock  *convoytest.Clock
	tel    *otelconvoy.Telemetry
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	app    *convoy.App
}

// newEnv makes the providers and the Telemetry, and a dispatcher on st
// (nil: a new memory store), started unless start is false.
func newEnv(t *testing.T, opts otelconvoy.Options, st convoy.Store, start bool, tweak func(*convoy.Config)) *env {
	t.Helper()
	e := &env{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.reader))
	e.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.spans))
	t.Cleanup(func() {
		require.NoError(t, mp.Shutdown(context.Background()))
		require.NoError(t, e.tp.Shutdown(context.Background()))
	})
	opts.MeterProvider, opts.TracerProvider = mp, e.tp
	tel, err := otelconvoy.New(opts)
	require.NoError(t, err)
	e.tel = tel
	if st == nil {
		st = memory.New()
		t.Cleanup(func() { require.NoError(t, st.Close()) })
	}
	e.store = st
	e.clock = convoytest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := convoy.Config{
		Store: st, Workers: 8, Timeout: 5 * time.Second,
		Retry:         convoy.LinearRetry(time.Minute, 3),
		Logger:        testutil.Logger(t),
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Clock:         e.clock,
		Observer:      tel,
		WrapTransport: tel.WrapTransport,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	e.d, err = convoy.New(cfg)
	require.NoError(t, err)
	tel.SetDispatcher(e.d)
	if start {
		require.NoError(t, e.d.Start(context.Background()))
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, e.d.Close(ctx))
	})
	return e
}

func (e *env) newApp(t *testing.T) *convoy.App {
	t.Helper()
	app, err := e.d.CreateApp(context.Background(), convoy.App{Name: "Acme"})
	require.NoError(t, err)
	e.app = app
	return app
}

func (e *env) endpoint(t *testing.T, url string, types ...string) *convoy.Endpoint {
	t.Helper()
	ep, err := e.d.AddEndpoint(context.Background(), e.app.ID, convoy.Endpoint{URL: url, EventTypes: types})
	require.NoError(t, err)
	return ep
}

func (e *env) send(t *testing.T, ctx context.Context, typ, key string) *convoy.SendResult {
	t.Helper()
	res, err := e.d.Send(ctx, e.app.ID, convoy.Event{Type: typ, Data: json.RawMessage(`{"n":1}`), IdempotencyKey: key})
	require.NoError(t, err)
	return res
}

func (e *env) waitStatus(t *testing.T, id string, want convoy.DeliveryStatus) {
	t.Helper()
	require.Eventually(t, func() bool {
		dl, err := e.d.GetDelivery(context.Background(), id)
		require.NoError(t, err)
		return dl.Status == want
	}, 10*time.Second, 5*time.Millisecond, "delivery never reached %s", want)
}

// collect reads every metric of the meter provider.
func (e *env) collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, e.reader.Collect(context.Background(), &rm))
	return rm
}

// metric returns the named metric of the scope, or fails.
func mustMetric(t *testing.T, rm metricdata.ResourceMetrics, scope, name string) metricdata.Metrics {
	t.Helper()
	m, ok := findMetric(rm, scope, name)
	require.True(t, ok, "no metric %s in scope %s", name, scope)
	return m
}

func findMetric(rm metricdata.ResourceMetrics, scope, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != scope {
			continue
		}
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// counts returns an int64 sum's values by attribute set.
func counts(t *testing.T, m metricdata.Metrics) map[attribute.Distinct]int64 {
	t.Helper()
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is a %T", m.Name, m.Data)
	out := map[attribute.Distinct]int64{}
	for _, p := range sum.DataPoints {
		out[p.Attributes.Equivalent()] = p.Value
	}
	return out
}

func set(kvs ...attribute.KeyValue) attribute.Distinct {
	s := attribute.NewSet(kvs...)
	return s.Equivalent()
}

func status(s string) attribute.KeyValue { return otelconvoy.AttrDeliveryStatus.String(s) }

// deliveriesEnded is the sum of convoy.deliveries, 0 before any.
func (e *env) deliveriesEnded(t *testing.T) int64 {
	m, ok := findMetric(e.collect(t), otelconvoy.ScopeName, "convoy.deliveries")
	if !ok {
		return 0
	}
	var n int64
	for _, v := range counts(t, m) {
		n += v
	}
	return n
}

// TestMetricsAfterRealDeliveries delivers to receivers that succeed, fail
// once then succeed, and answer 410, plus one inactive endpoint, and reads
// every convoy metric back: names, units, attributes and values.
func TestMetricsAfterRealDeliveries(t *testing.T) {
	e := newEnv(t, otelconvoy.Options{}, nil, true, nil)
	e.newApp(t)
	ok := testutil.NewReceiver(t, nil)
	flaky := testutil.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	gone := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	e.endpoint(t, ok.URL, "ok")
	e.endpoint(t, flaky.URL, "flaky")
	e.endpoint(t, gone.URL, "gone")
	dead := e.endpoint(t, ok.URL, "ok")
	_, err := e.d.SetEndpointStatus(context.Background(), dead.ID, convoy.EndpointInactive)
	require.NoError(t, err)

	ctx := context.Background()
	okRes := e.send(t, ctx, "ok", "k1")
	flakyRes := e.send(t, ctx, "flaky", "")
	goneRes := e.send(t, ctx, "gone", "")
	require.True(t, e.send(t, ctx, "ok", "k1").Duplicate)
	// Every first attempt over before the clock moves past their leases.
	e.waitStatus(t, flakyRes.Deliveries[0].ID, convoy.DeliveryRetry)
	e.waitStatus(t, goneRes.Deliveries[0].ID, convoy.DeliveryFailure)
	for _, dl := range okRes.Deliveries {
		if dl.Status != convoy.DeliveryDiscarded {
			e.waitStatus(t, dl.ID, convoy.DeliverySuccess)
		}
	}
	e.clock.Advance(time.Minute)
	require.Eventually(t, func() bool { return e.deliveriesEnded(t) == 4 }, 10*time.Second, 5*time.Millisecond)
	// A worker counts as busy until it is back from the attempt, which
	// may be just after the outcome is recorded.
	require.Eventually(t, func() bool {
		s, err := e.d.Stats(context.Background())
		require.NoError(t, err)
		return s.InFlight == 0
	}, 10*time.Second, 5*time.Millisecond)

	rm := e.collect(t)
	scope := otelconvoy.ScopeName

	dur := mustMetric(t, rm, scope, "convoy.attempt.duration")
	require.Equal(t, "s", dur.Unit)
	hist, isHist := dur.Data.(metricdata.Histogram[float64])
	require.True(t, isHist)
	require.Equal(t, metricdata.CumulativeTemporality, hist.Temporality)
	byClass := map[attribute.Distinct]uint64{}
	for _, p := range hist.DataPoints {
		require.Equal(t, otelconvoy.DurationBuckets, p.Bounds)
		require.Positive(t, p.Sum)
		require.Equal(t, []attribute.Key{otelconvoy.AttrStatusClass, otelconvoy.AttrSuccess}, keys(p.Attributes),
			"no endpoint, delivery or event ID by default")
		byClass[p.Attributes.Equivalent()] = p.Count
	}
	require.Equal(t, map[attribute.Distinct]uint64{
		set(otelconvoy.AttrStatusClass.String("2xx"), otelconvoy.AttrSuccess.Bool(true)):  2,
		set(otelconvoy.AttrStatusClass.String("5xx"), otelconvoy.AttrSuccess.Bool(false)): 1,
		set(otelconvoy.AttrStatusClass.String("4xx"), otelconvoy.AttrSuccess.Bool(false)): 1,
	}, byClass)

	deliveries := mustMetric(t, rm, scope, "convoy.deliveries")
	require.Equal(t, "{delivery}", deliveries.Unit)
	require.True(t, deliveries.Data.(metricdata.Sum[int64]).IsMonotonic)
	require.Equal(t, map[attribute.Distinct]int64{
		set(status("success")): 2, set(status("failure")): 1, set(status("discarded")): 1,
	}, counts(t, deliveries))

	retries := mustMetric(t, rm, scope, "convoy.retries")
	require.Equal(t, "{retry}", retries.Unit)
	require.Equal(t, map[attribute.Distinct]int64{set(): 1}, counts(t, retries))

	sent := mustMetric(t, rm, scope, "convoy.events.sent")
	require.Equal(t, "{event}", sent.Unit)
	require.Equal(t, map[attribute.Distinct]int64{set(): 3}, counts(t, sent), "the repeat is not counted")

	// The gauges, from Stats: everything delivered, two endpoints dead
	// (the 410 one and the one set inactive).
	gauge := func(name, unit string) map[attribute.Distinct]int64 {
		m := mustMetric(t, rm, scope, name)
		require.Equal(t, unit, m.Unit, name)
		g, isGauge := m.Data.(metricdata.Gauge[int64])
		require.True(t, isGauge, "%s is a %T", name, m.Data)
		out := map[attribute.Distinct]int64{}
		for _, p := range g.DataPoints {
			out[p.Attributes.Equivalent()] = p.Value
		}
		return out
	}
	endpoint := otelconvoy.AttrEndpointStatus.String
	require.Equal(t, map[attribute.Distinct]int64{
		set(endpoint("active")): 2, set(endpoint("inactive")): 2, set(endpoint("pending")): 0,
	}, gauge("convoy.endpoints", "{endpoint}"))
	require.Equal(t, map[attribute.Distinct]int64{set(): 0}, gauge("convoy.queue.due", "{delivery}"))
	require.Equal(t, map[attribute.Distinct]int64{set(): 0}, gauge("convoy.in_flight", "{attempt}"))
	require.Equal(t, map[attribute.Distinct]int64{
		set(status("scheduled")): 0, set(status("processing")): 0, set(status("retry")): 0,
	}, gauge("convoy.queue.deliveries", "{delivery}"))
	age := mustMetric(t, rm, scope, "convoy.oldest_due_age")
	require.Equal(t, "s", age.Unit)
	metricdatatest.AssertAggregationsEqual(t, metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{{Value: 0}}},
		age.Data, metricdatatest.IgnoreTimestamp())

	// otelhttp's client metrics, from WrapTransport.
	httpDur := mustMetric(t, rm, "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", "http.client.request.duration")
	require.Equal(t, "s", httpDur.Unit)
}

func keys(s attribute.Set) []attribute.Key {
	var out []attribute.Key
	for _, kv := range s.ToSlice() {
		out = append(out, kv.Key)
	}
	return out
}

// TestGaugesReportTheQueue: work that waits shows in the gauges: how much
// is due and for how long, by the dispatcher's clock. Nothing is reported
// before SetDispatcher.
func TestGaugesReportTheQueue(t *testing.T) {
	e := newEnv(t, otelconvoy.Options{}, nil, false, nil) // not started: nothing is delivered
	e.tel.SetDispatcher(nil)
	rm := e.collect(t)
	_, found := findMetric(rm, otelconvoy.ScopeName, "convoy.queue.due")
	require.False(t, found, "no dispatcher, no gauge")

	e.newApp(t)
	rc := testutil.NewReceiver(t, nil)
	e.endpoint(t, rc.URL)
	for range 3 {
		e.send(t, context.Background(), "x", "")
	}
	e.clock.Advance(30 * time.Second)
	e.tel.SetDispatcher(e.d)
	rm = e.collect(t)
	metricdatatest.AssertAggregationsEqual(t, metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{{Value: 3}}},
		mustMetric(t, rm, otelconvoy.ScopeName, "convoy.queue.due").Data, metricdatatest.IgnoreTimestamp())
	metricdatatest.AssertAggregationsEqual(t, metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{{Value: 30}}},
		mustMetric(t, rm, otelconvoy.ScopeName, "convoy.oldest_due_age").Data, metricdatatest.IgnoreTimestamp())
	queued := mustMetric(t, rm, otelconvoy.ScopeName, "convoy.queue.deliveries").Data.(metricdata.Gauge[int64])
	for _, p := range queued.DataPoints {
		v, _ := p.Attributes.Value(otelconvoy.AttrDeliveryStatus)
		want := map[string]int64{"scheduled": 3, "processing": 0, "retry": 0}[v.AsString()]
		require.Equal(t, want, p.Value, v.AsString())
	}
	require.Len(t, queued.DataPoints, 3)

	require.NoError(t, e.tel.Close())
	_, found = findMetric(e.collect(t), otelconvoy.ScopeName, "convoy.queue.due")
	require.False(t, found, "Close unregisters the gauges")
}

// TestEndpointAttributeOptIn: the endpoint ID becomes an attribute of
// the attempt, delivery and retry metrics only when asked.
func TestEndpointAttributeOptIn(t *testing.T) {
	e := newEnv(t, otelconvoy.Options{EndpointAttribute: true}, nil, true, nil)
	e.newApp(t)
	rc := testutil.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	ep := e.endpoint(t, rc.URL)
	res := e.send(t, context.Background(), "x", "")
	e.waitStatus(t, res.Deliveries[0].ID, convoy.DeliveryRetry)
	e.clock.Advance(time.Minute)
	require.Eventually(t, func() bool { return e.deliveriesEnded(t) == 1 }, 10*time.Second, 5*time.Millisecond)

	rm := e.collect(t)
	id := otelconvoy.AttrEndpointID.String(ep.ID)
	hist := mustMetric(t, rm, otelconvoy.ScopeName, "convoy.attempt.duration").Data.(metricdata.Histogram[float64])
	require.Len(t, hist.DataPoints, 2)
	for _, p := range hist.DataPoints {
		v, has := p.Attributes.Value(otelconvoy.AttrEndpointID)
		require.True(t, has)
		require.Equal(t, ep.ID, v.AsString())
	}
	require.Equal(t, map[attribute.Distinct]int64{set(status("success"), id): 1},
		counts(t, mustMetric(t, rm, otelconvoy.ScopeName, "convoy.deliveries")))
	require.Equal(t, map[attribute.Distinct]int64{set(id): 1},
		counts(t, mustMetric(t, rm, otelconvoy.ScopeName, "convoy.retries")))
}

// spansNamed returns the ended spans with the name.
func (e *env) spansNamed(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range e.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	out := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value
	}
	return out
}

// TestSpans: a Send is a span under the caller's; each attempt a span of a
// trace of its own linked to the Send, with the HTTP client span under it
// following the HTTP conventions and keeping the URL's credentials out.
func TestSpans(t *testing.T) {
	e := newEnv(t, otelconvoy.Options{}, nil, true, nil)
	e.newApp(t)
	var seen atomic.Value // what the receiver got: trace header, path and query
	rc := testutil.NewReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		seen.Store([3]string{r.Header.Get("Traceparent"), r.URL.Path, r.URL.RawQuery})
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	const token = "T0123456789abcdefXYZ"
	ep := e.endpoint(t, rc.URL+"/hooks/"+token+"?token=s3cr3t-value&v=2")

	ctx, caller := e.tp.Tracer("caller").Start(context.Background(), "POST /invoices")
	res := e.send(t, ctx, "invoice.paid", "")
	caller.End()
	dl := res.Deliveries[0]
	e.waitStatus(t, dl.ID, convoy.DeliveryRetry)
	e.clock.Advance(time.Minute)
	e.waitStatus(t, dl.ID, convoy.DeliverySuccess)
	require.Eventually(t, func() bool { return len(e.spansNamed("convoy.attempt")) == 2 }, 10*time.Second, 5*time.Millisecond)

	got := seen.Load().([3]string)
	require.Empty(t, got[0], "no traceparent sent by default")
	require.Equal(t, "/hooks/"+token, got[1], "the receiver gets the real URL")
	require.Equal(t, "token=s3cr3t-value&v=2", got[2])

	sends := e.spansNamed("convoy.Send")
	require.Len(t, sends, 1)
	send := sends[0]
	require.Equal(t, trace.SpanKindProducer, send.SpanKind())
	require.Equal(t, caller.SpanContext().SpanID(), send.Parent().SpanID(), "a child of the caller's span")
	require.Equal(t, otelconvoy.ScopeName, send.InstrumentationScope().Name)
	sa := attrs(send)
	require.Equal(t, e.app.ID, sa[otelconvoy.AttrAppID].AsString())
	require.Equal(t, "invoice.paid", sa[otelconvoy.AttrEventType].AsString())
	require.Equal(t, res.Event.ID, sa[otelconvoy.AttrEventID].AsString())
	require.Equal(t, int64(1), sa[otelconvoy.AttrDeliveries].AsInt64())
	require.False(t, sa[otelconvoy.AttrDuplicate].AsBool())

	stored, _, err := e.d.GetEvent(context.Background(), res.Event.ID)
	require.NoError(t, err)
	require.Equal(t, "00-"+send.SpanContext().TraceID().String()+"-"+send.SpanContext().SpanID().String()+"-01", stored.TraceParent)

	clients := e.spansNamed("HTTP POST")
	require.Len(t, clients, 2)
	for i, a := range e.spansNamed("convoy.attempt") {
		require.Equal(t, trace.SpanKindConsumer, a.SpanKind())
		require.False(t, a.Parent().IsValid(), "an attempt starts a trace of its own")
		require.NotEqual(t, send.SpanContext().TraceID(), a.SpanContext().TraceID())
		require.Len(t, a.Links(), 1)
		link := a.Links()[0].SpanContext
		require.Equal(t, send.SpanContext().TraceID(), link.TraceID(), "linked to its Send")
		require.Equal(t, send.SpanContext().SpanID(), link.SpanID())
		aa := attrs(a)
		require.Equal(t, dl.ID, aa[otelconvoy.AttrDeliveryID].AsString())
		require.Equal(t, ep.ID, aa[otelconvoy.AttrEndpointID].AsString())
		require.Equal(t, int64(i+1), aa[otelconvoy.AttrAttemptNumber].AsInt64())

		// Its HTTP request, a client span under it.
		var client sdktrace.ReadOnlySpan
		for _, c := range clients {
			if c.Parent().SpanID() == a.SpanContext().SpanID() {
				client = c
			}
		}
		require.NotNil(t, client, "attempt %d has a client span", i+1)
		require.Equal(t, trace.SpanKindClient, client.SpanKind())
		require.Equal(t, a.SpanContext().TraceID(), client.SpanContext().TraceID())
		ca := attrs(client)
		u, err := url.Parse(rc.URL)
		require.NoError(t, err)
		require.Equal(t, "POST", ca["http.request.method"].AsString())
		require.Equal(t, "127.0.0.1", ca["server.address"].AsString())
		require.Equal(t, u.Port(), itoa(ca["server.port"].AsInt64()))
		require.Equal(t, rc.URL+"/hooks/REDACTED?token=REDACTED&v=REDACTED", ca["url.full"].AsString())
		for _, kv := range client.Attributes() {
			require.NotContains(t, kv.Value.String(), "s3cr3t")
			require.NotContains(t, kv.Value.String(), token)
		}

		switch i {
		case 0:
			require.Equal(t, int64(503), aa["http.response.status_code"].AsInt64())
			require.Equal(t, int64(503), ca["http.response.status_code"].AsInt64())
			require.Equal(t, codes.Error, a.Status().Code)
			require.Contains(t, a.Status().Description, "503")
			require.Equal(t, "retry", aa[otelconvoy.AttrNextStatus].AsString())
			next, err := time.Parse(time.RFC3339Nano, aa[otelconvoy.AttrNextAttemptAt].AsString())
			require.NoError(t, err)
			require.True(t, next.Equal(e.clock.Now()), "due a minute after the first attempt: %v", next)
		case 1:
			require.Equal(t, int64(200), aa["http.response.status_code"].AsInt64())
			require.Equal(t, codes.Unset, a.Status().Code)
			require.True(t, aa[otelconvoy.AttrSuccess].AsBool())
			require.Equal(t, "success", aa[otelconvoy.AttrNextStatus].AsString())
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestSendErrorSpan: a Send refused is a span with an error status, and
// counts no event.
func TestSendErrorSpan(t *testing.T) {
	e := newEnv(t, otelconvoy.Options{}, nil, true, nil)
	e.newApp(t)
	_, err := e.d.Send(context.Background(), e.app.ID, convoy.Event{Type: "x", Data: json.RawMessage(`{`)})
	require.ErrorIs(t, err, convoy.ErrInvalidJSON)
	sends := e.spansNamed("convoy.Send")
	require.Len(t, sends, 1)
	require.Equal(t, codes.Error, sends[0].Status().Code)
	require.Len(t, sends[0].Events(), 1, "the error is recorded")
	_, found := findMetric(e.collect(t), otelconvoy.ScopeName, "convoy.events.sent")
	require.False(t, found)
}

// TestPropagation: receivers get the trace context Options.Propagate
// names: the Send's, or the client span's.
func TestPropagation(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    otelconvoy.Propagation
	}{{"send", otelconvoy.PropagateSend}, {"attempt", otelconvoy.PropagateAttempt}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, otelconvoy.Options{Propagate: tc.p}, nil, true, nil)
			e.newApp(t)
			rc := testutil.NewReceiver(t, nil)
			e.endpoint(t, rc.URL)
			res := e.send(t, context.Background(), "x", "")
			req := <-rc.Requests
			e.waitStatus(t, res.Deliveries[0].ID, convoy.DeliverySuccess)
			require.Eventually(t, func() bool { return len(e.spansNamed("HTTP POST")) == 1 }, 10*time.Second, 5*time.Millisecond)
			got := req.Header.Get("Traceparent")
			switch tc.p {
			case otelconvoy.PropagateSend:
				require.Equal(t, res.Event.TraceParent, got)
				send := e.spansNamed("convoy.Send")[0].SpanContext()
				require.Equal(t, "00-"+send.TraceID().String()+"-"+send.SpanID().String()+"-01", got)
			case otelconvoy.PropagateAttempt:
				client := e.spansNamed("HTTP POST")[0].SpanContext()
				require.Equal(t, "00-"+client.TraceID().String()+"-"+client.SpanID().String()+"-01", got)
			}
			a, err := e.d.LastAttempt(context.Background(), res.Deliveries[0].ID)
			require.NoError(t, err)
			require.Empty(t, a.RequestHeaders.Get("Traceparent"), "added by the transport, not stored")
		})
	}
}

// TestAttemptElsewhereLinksToSend: the Send happens in one dispatcher and
// the attempt in another, with tracer providers that share nothing: the
// link travels with the event through the store.
func TestAttemptElsewhereLinksToSend(t *testing.T) {
	st := memory.New()
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	sender := newEnv(t, otelconvoy.Options{}, st, false, nil) // never delivers
	sender.newApp(t)
	rc := testutil.NewReceiver(t, nil)
	sender.endpoint(t, rc.URL)
	res := sender.send(t, context.Background(), "x", "")

	worker := newEnv(t, otelconvoy.Options{}, st, true, nil)
	worker.waitStatus(t, res.Deliveries[0].ID, convoy.DeliverySuccess)
	require.Eventually(t, func() bool { return len(worker.spansNamed("convoy.attempt")) == 1 }, 10*time.Second, 5*time.Millisecond)
	send := sender.spansNamed("convoy.Send")[0].SpanContext()
	links := worker.spansNamed("convoy.attempt")[0].Links()
	require.Len(t, links, 1)
	require.Equal(t, send.TraceID(), links[0].SpanContext.TraceID())
	require.Equal(t, send.SpanID(), links[0].SpanContext.SpanID())
	require.True(t, links[0].SpanContext.IsRemote())
	require.Empty(t, sender.spansNamed("convoy.attempt"))
}

// TestCanceledAttempt: an attempt cut short by Close ends its span with
// an error and is not counted: it is made again later.
func TestCanceledAttempt(t *testing.T) {
	e := newEnv(t, otelconvoy.Options{}, nil, true, nil)
	e.newApp(t)
	rc := testutil.NewReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	e.endpoint(t, rc.URL)
	e.send(t, context.Background(), "x", "")
	<-rc.Requests
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, e.d.Close(ctx), context.DeadlineExceeded)

	attempts := e.spansNamed("convoy.attempt")
	require.Len(t, attempts, 1)
	require.Equal(t, codes.Error, attempts[0].Status().Code)
	require.Contains(t, attempts[0].Status().Description, "canceled")
	_, found := findMetric(e.collect(t), otelconvoy.ScopeName, "convoy.attempt.duration")
	require.False(t, found, "not counted")
}
