package promconvoy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/convoytest"
	ctestutil "github.com/convoykit/convoy/internal/testutil"
	"github.com/convoykit/convoy/promconvoy"
	"github.com/convoykit/convoy/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type env struct {
	d     *convoy.Dispatcher
	clock *convoytest.Clock
	c     *promconvoy.Collector
	app   *convoy.App
}

// newEnv starts (unless start is false) a dispatcher on st (nil: a new
// memory store) and a fake clock, with a Collector as its Observer.
func newEnv(t *testing.T, o promconvoy.Options, st convoy.Store, start bool) *env {
	t.Helper()
	if st == nil {
		st = memory.New()
	}
	t.Cleanup(func() { _ = st.Close() })
	e := &env{c: promconvoy.New(o), clock: convoytest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	d, err := convoy.New(convoy.Config{
		Store: st, Workers: 8, Timeout: 5 * time.Second,
		Retry:         convoy.LinearRetry(time.Minute, 3),
		Logger:        ctestutil.Logger(t),
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Clock:         e.clock,
		Observer:      e.c,
	})
	require.NoError(t, err)
	e.d = d
	e.c.SetDispatcher(d)
	if start {
		require.NoError(t, d.Start(context.Background()))
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, d.Close(ctx))
	})
	e.app, err = d.CreateApp(context.Background(), convoy.App{Name: "Acme"})
	require.NoError(t, err)
	return e
}

func (e *env) endpoint(t *testing.T, url string, types ...string) *convoy.Endpoint {
	t.Helper()
	ep, err := e.d.AddEndpoint(context.Background(), e.app.ID, convoy.Endpoint{URL: url, EventTypes: types})
	require.NoError(t, err)
	return ep
}

func (e *env) send(t *testing.T, typ, key string) *convoy.SendResult {
	t.Helper()
	res, err := e.d.Send(context.Background(), e.app.ID, convoy.Event{Type: typ, Data: json.RawMessage(`{}`), IdempotencyKey: key})
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

// ended is the sum of convoy_deliveries_total, 0 before any.
func (e *env) ended(t *testing.T) float64 {
	var n float64
	for _, m := range findFamily(t, e.c, "convoy_deliveries_total").GetMetric() {
		n += m.GetCounter().GetValue()
	}
	return n
}

// family gathers c on a pedantic registry (which checks that Collect
// matches Describe) and returns the named family, or fails.
func family(t *testing.T, c prometheus.Collector, name string) *dto.MetricFamily {
	t.Helper()
	mf := findFamily(t, c, name)
	require.NotNil(t, mf, "no family %s", name)
	return mf
}

// findFamily is family, nil when there is no such family.
func findFamily(t *testing.T, c prometheus.Collector, name string) *dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

func labels(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

// attemptsText is the exposition of convoy_attempts_total with every
// bounded series, at the counts given by "class,success".
func attemptsText(counts map[string]int) string {
	var b strings.Builder
	b.WriteString("# HELP convoy_attempts_total Webhook delivery attempts made, by response status class and success.\n")
	b.WriteString("# TYPE convoy_attempts_total counter\n")
	for _, class := range []string{"1xx", "2xx", "3xx", "4xx", "5xx", "none"} {
		for _, success := range []string{"false", "true"} {
			fmt.Fprintf(&b, "convoy_attempts_total{status_class=%q,success=%q} %d\n", class, success, counts[class+","+success])
		}
	}
	return b.String()
}

// TestMetricsAfterRealDeliveries delivers to receivers that succeed, fail
// once then succeed, and answer 410, plus one inactive endpoint, and reads
// every metric back through prometheus/testutil.
func TestMetricsAfterRealDeliveries(t *testing.T) {
	e := newEnv(t, promconvoy.Options{}, nil, true)
	ok := ctestutil.NewReceiver(t, nil)
	flaky := ctestutil.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	gone := ctestutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	e.endpoint(t, ok.URL, "ok")
	e.endpoint(t, flaky.URL, "flaky")
	e.endpoint(t, gone.URL, "gone")
	dead := e.endpoint(t, ok.URL, "ok")
	_, err := e.d.SetEndpointStatus(context.Background(), dead.ID, convoy.EndpointInactive)
	require.NoError(t, err)

	okRes := e.send(t, "ok", "k1")
	flakyRes := e.send(t, "flaky", "")
	goneRes := e.send(t, "gone", "")
	require.True(t, e.send(t, "ok", "k1").Duplicate)
	// Every first attempt over before the clock moves past their leases.
	e.waitStatus(t, flakyRes.Deliveries[0].ID, convoy.DeliveryRetry)
	e.waitStatus(t, goneRes.Deliveries[0].ID, convoy.DeliveryFailure)
	for _, dl := range okRes.Deliveries {
		if dl.Status != convoy.DeliveryDiscarded {
			e.waitStatus(t, dl.ID, convoy.DeliverySuccess)
		}
	}
	e.clock.Advance(time.Minute)
	require.Eventually(t, func() bool { return e.ended(t) == 4 }, 10*time.Second, 5*time.Millisecond)
	// A worker counts as busy until it is back from the attempt, which
	// may be just after the outcome is recorded.
	require.Eventually(t, func() bool {
		s, err := e.d.Stats(context.Background())
		require.NoError(t, err)
		return s.InFlight == 0
	}, 10*time.Second, 5*time.Millisecond)

	require.NoError(t, testutil.CollectAndCompare(e.c, strings.NewReader(attemptsText(map[string]int{
		"2xx,true": 2, "5xx,false": 1, "4xx,false": 1,
	})), "convoy_attempts_total"))
	require.NoError(t, testutil.CollectAndCompare(e.c, strings.NewReader(`
# HELP convoy_deliveries_total Deliveries that reached a final status: success, failure or discarded.
# TYPE convoy_deliveries_total counter
convoy_deliveries_total{status="discarded"} 1
convoy_deliveries_total{status="failure"} 1
convoy_deliveries_total{status="success"} 2
# HELP convoy_retries_total Retries scheduled after a failed attempt.
# TYPE convoy_retries_total counter
convoy_retries_total 1
# HELP convoy_events_sent_total Events stored by Send, SendTx and SendToEndpoint, idempotent repeats excluded.
# TYPE convoy_events_sent_total counter
convoy_events_sent_total 3
# HELP convoy_queue_due Deliveries due now, at most convoy.MaxDueCount.
# TYPE convoy_queue_due gauge
convoy_queue_due 0
# HELP convoy_oldest_due_age_seconds How long the oldest due delivery has waited.
# TYPE convoy_oldest_due_age_seconds gauge
convoy_oldest_due_age_seconds 0
# HELP convoy_in_flight Attempts running in this dispatcher.
# TYPE convoy_in_flight gauge
convoy_in_flight 0
# HELP convoy_queue_deliveries Deliveries waiting or in progress, by status.
# TYPE convoy_queue_deliveries gauge
convoy_queue_deliveries{status="processing"} 0
convoy_queue_deliveries{status="retry"} 0
convoy_queue_deliveries{status="scheduled"} 0
# HELP convoy_endpoints Endpoints by status.
# TYPE convoy_endpoints gauge
convoy_endpoints{status="active"} 2
convoy_endpoints{status="inactive"} 2
convoy_endpoints{status="pending"} 0
# HELP convoy_stats_errors_total Scrapes whose Dispatcher.Stats call failed; their queue gauges are left out.
# TYPE convoy_stats_errors_total counter
convoy_stats_errors_total 0
`), "convoy_deliveries_total", "convoy_retries_total", "convoy_events_sent_total", "convoy_queue_due",
		"convoy_oldest_due_age_seconds", "convoy_in_flight", "convoy_queue_deliveries", "convoy_endpoints",
		"convoy_stats_errors_total"))

	// The histogram: one series per class and outcome, the same counts,
	// the default buckets, durations that add up.
	hist := family(t, e.c, "convoy_attempt_duration_seconds")
	require.Equal(t, dto.MetricType_HISTOGRAM, hist.GetType())
	got := map[string]uint64{}
	for _, m := range hist.GetMetric() {
		h := m.GetHistogram()
		var bounds []float64
		for _, b := range h.GetBucket() {
			bounds = append(bounds, b.GetUpperBound())
		}
		require.Equal(t, promconvoy.DurationBuckets, bounds)
		if h.GetSampleCount() > 0 {
			require.Positive(t, h.GetSampleSum())
			got[labels(m)] = h.GetSampleCount()
		}
	}
	require.Len(t, hist.GetMetric(), 12, "every bounded series exists from the start")
	require.Equal(t, map[string]uint64{
		"status_class=2xx,success=true": 2, "status_class=5xx,success=false": 1, "status_class=4xx,success=false": 1,
	}, got)

	// Names, units and help follow Prometheus' conventions.
	problems, err := testutil.CollectAndLint(e.c)
	require.NoError(t, err)
	require.Empty(t, problems)
}

// TestGaugesReportTheQueue: work that waits shows in the gauges, by the
// dispatcher's clock.
func TestGaugesReportTheQueue(t *testing.T) {
	e := newEnv(t, promconvoy.Options{}, nil, false) // not started: nothing is delivered
	rc := ctestutil.NewReceiver(t, nil)
	e.endpoint(t, rc.URL)
	for range 3 {
		e.send(t, "x", "")
	}
	e.clock.Advance(90 * time.Second)
	require.NoError(t, testutil.CollectAndCompare(e.c, strings.NewReader(`
# HELP convoy_queue_due Deliveries due now, at most convoy.MaxDueCount.
# TYPE convoy_queue_due gauge
convoy_queue_due 3
# HELP convoy_oldest_due_age_seconds How long the oldest due delivery has waited.
# TYPE convoy_oldest_due_age_seconds gauge
convoy_oldest_due_age_seconds 90
# HELP convoy_queue_deliveries Deliveries waiting or in progress, by status.
# TYPE convoy_queue_deliveries gauge
convoy_queue_deliveries{status="processing"} 0
convoy_queue_deliveries{status="retry"} 0
convoy_queue_deliveries{status="scheduled"} 3
`), "convoy_queue_due", "convoy_oldest_due_age_seconds", "convoy_queue_deliveries"))

	// No dispatcher: no gauges, the counters only.
	e.c.SetDispatcher(nil)
	require.Zero(t, testutil.CollectAndCount(e.c, "convoy_queue_due", "convoy_endpoints"))
}

// failingStats is a store whose Stats fails.
type failingStats struct{ convoy.Store }

func (failingStats) Stats(context.Context, time.Time) (convoy.StoreStats, error) {
	return convoy.StoreStats{}, errors.New("database down")
}

// TestStatsErrorsLeaveGaugesOut: a scrape while the store fails still
// serves the counters, without gauges, and counts the failure.
func TestStatsErrorsLeaveGaugesOut(t *testing.T) {
	e := newEnv(t, promconvoy.Options{}, failingStats{memory.New()}, false)
	require.Zero(t, testutil.CollectAndCount(e.c, "convoy_queue_due", "convoy_endpoints", "convoy_in_flight"))
	require.Equal(t, 12, testutil.CollectAndCount(e.c, "convoy_attempts_total"))
	require.NoError(t, testutil.CollectAndCompare(e.c, strings.NewReader(`
# HELP convoy_stats_errors_total Scrapes whose Dispatcher.Stats call failed; their queue gauges are left out.
# TYPE convoy_stats_errors_total counter
convoy_stats_errors_total 3
`), "convoy_stats_errors_total"), "the two scrapes above and this one")
}

// TestEndpointLabelOptIn: endpoint_id labels the attempt, delivery and
// retry metrics only when asked, and ConstLabels go everywhere.
func TestEndpointLabelOptIn(t *testing.T) {
	e := newEnv(t, promconvoy.Options{EndpointLabel: true, ConstLabels: prometheus.Labels{"dispatcher": "billing"}}, nil, true)
	rc := ctestutil.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	ep := e.endpoint(t, rc.URL)
	res := e.send(t, "x", "")
	e.waitStatus(t, res.Deliveries[0].ID, convoy.DeliveryRetry)
	e.clock.Advance(time.Minute)
	require.Eventually(t, func() bool { return e.ended(t) == 1 }, 10*time.Second, 5*time.Millisecond)

	require.NoError(t, testutil.CollectAndCompare(e.c, strings.NewReader(fmt.Sprintf(`
# HELP convoy_attempts_total Webhook delivery attempts made, by response status class and success.
# TYPE convoy_attempts_total counter
convoy_attempts_total{dispatcher="billing",endpoint_id=%[1]q,status_class="2xx",success="true"} 1
convoy_attempts_total{dispatcher="billing",endpoint_id=%[1]q,status_class="5xx",success="false"} 1
# HELP convoy_deliveries_total Deliveries that reached a final status: success, failure or discarded.
# TYPE convoy_deliveries_total counter
convoy_deliveries_total{dispatcher="billing",endpoint_id=%[1]q,status="success"} 1
# HELP convoy_retries_total Retries scheduled after a failed attempt.
# TYPE convoy_retries_total counter
convoy_retries_total{dispatcher="billing",endpoint_id=%[1]q} 1
`, ep.ID)), "convoy_attempts_total", "convoy_deliveries_total", "convoy_retries_total"))
	for _, m := range family(t, e.c, "convoy_attempt_duration_seconds").GetMetric() {
		require.Contains(t, labels(m), "endpoint_id="+ep.ID)
	}
	for _, m := range family(t, e.c, "convoy_endpoints").GetMetric() {
		require.True(t, slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
			return l.GetName() == "dispatcher" && l.GetValue() == "billing"
		}))
	}
}

// TestCanceledAttemptNotCounted: an attempt cut short by Close is made
// again later, so it is not counted now.
func TestCanceledAttemptNotCounted(t *testing.T) {
	e := newEnv(t, promconvoy.Options{}, nil, true)
	rc := ctestutil.NewReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	e.endpoint(t, rc.URL)
	e.send(t, "x", "")
	<-rc.Requests
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, e.d.Close(ctx), context.DeadlineExceeded)
	require.NoError(t, testutil.CollectAndCompare(e.c, strings.NewReader(attemptsText(nil)), "convoy_attempts_total"))
}
