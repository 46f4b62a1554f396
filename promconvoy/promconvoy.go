// Package promconvoy exposes what a convoy Dispatcher does as Prometheus
// metrics: a prometheus.Collector that is also a convoy.Observer, so that
// every attempt and delivery is counted as it happens (none is lost when
// the dispatcher is busy), with the queue gauges read from
// Dispatcher.Stats at each scrape.
//
//	c := promconvoy.New(promconvoy.Options{})
//	d, err := convoy.New(convoy.Config{Store: st, Observer: c})
//	c.SetDispatcher(d)
//	prometheus.MustRegister(c)
//	http.Handle("/metrics", promhttp.Handler())
//
// # Metrics
//
//	convoy_attempts_total{status_class,success}            counter    attempts made (status_class 1xx…5xx, or none without a response)
//	convoy_attempt_duration_seconds{status_class,success}  histogram  from sending the request to the last byte of the response
//	convoy_deliveries_total{status}                        counter    deliveries that ended: success, failure, discarded
//	convoy_retries_total                                   counter    retries scheduled after a failed attempt
//	convoy_events_sent_total                               counter    events stored by Send, SendTx and SendToEndpoint (repeats excluded)
//	convoy_queue_due                                       gauge      deliveries due now (at most convoy.MaxDueCount)
//	convoy_oldest_due_age_seconds                          gauge      how long the oldest due delivery has waited
//	convoy_queue_deliveries{status}                        gauge      deliveries scheduled, processing, retry
//	convoy_in_flight                                       gauge      attempts running in this dispatcher
//	convoy_endpoints{status}                               gauge      endpoints active, inactive, pending
//	convoy_stats_errors_total                              counter    scrapes whose Dispatcher.Stats failed (the gauges are then left out)
//
// Label values are bounded: no delivery or event ID is ever a label, and
// endpoint_id is added to the attempt, delivery and retry metrics only
// when Options.EndpointLabel is set.
package promconvoy

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/convoykit/convoy"
)

// DurationBuckets are the default buckets of
// convoy_attempt_duration_seconds: those OpenTelemetry's HTTP conventions
// give for request durations, and 15 s and 30 s beyond them
// (convoy.DefaultTimeout is 15 s).
var DurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 15, 30}

// StatsTimeout bounds the Dispatcher.Stats call of a scrape.
const StatsTimeout = 5 * time.Second

// Options configure a Collector. The zero value of each field is its
// documented default.
type Options struct {
	// EndpointLabel adds endpoint_id to convoy_attempts_total,
	// convoy_attempt_duration_seconds, convoy_deliveries_total and
	// convoy_retries_total: one series per endpoint, so only for a
	// bounded number of endpoints. Off by default.
	EndpointLabel bool
	// Buckets of convoy_attempt_duration_seconds, in seconds. Default
	// DurationBuckets.
	Buckets []float64
	// ConstLabels are added to every metric, e.g. to tell several
	// dispatchers of one process apart. Default none.
	ConstLabels prometheus.Labels
}

// Collector is a prometheus.Collector of a Dispatcher's metrics, and the
// convoy.Observer that counts them: set it as convoy.Config.Observer,
// call SetDispatcher once the dispatcher exists, and register it. A
// Collector serves one Dispatcher and is safe for concurrent use.
type Collector struct {
	convoy.NopObserver

	endpointLabel bool
	attempts      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	deliveries    *prometheus.CounterVec
	retries       *prometheus.CounterVec
	sent          prometheus.Counter
	statsErrors   prometheus.Counter

	due, age, queued, inFlight, endpoints *prometheus.Desc

	d atomic.Pointer[convoy.Dispatcher]

	// Children of the bounded label sets, made once (and so exported at
	// zero from the start) when EndpointLabel is off.
	attemptC  [len(statusClasses)][2]prometheus.Counter
	durationO [len(statusClasses)][2]prometheus.Observer
	finalC    map[convoy.DeliveryStatus]prometheus.Counter
	retryC    prometheus.Counter
}

var (
	_ convoy.Observer      = (*Collector)(nil)
	_ prometheus.Collector = (*Collector)(nil)
)

// statusClasses are the values of the status_class label; "none" is an
// attempt without a response.
var statusClasses = [...]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

func statusClass(code int) int {
	if c := code / 100; c >= 1 && c <= 5 {
		return c
	}
	return 0
}

var (
	finalStatuses    = []convoy.DeliveryStatus{convoy.DeliverySuccess, convoy.DeliveryFailure, convoy.DeliveryDiscarded}
	queuedStatuses   = []convoy.DeliveryStatus{convoy.DeliveryScheduled, convoy.DeliveryProcessing, convoy.DeliveryRetry}
	endpointStatuses = []convoy.EndpointStatus{convoy.EndpointActive, convoy.EndpointInactive, convoy.EndpointPending}
)

func label(s convoy.DeliveryStatus) string { return strings.ToLower(string(s)) }

// New returns a Collector.
func New(o Options) *Collector {
	if len(o.Buckets) == 0 {
		o.Buckets = DurationBuckets
	}
	cl := o.ConstLabels
	attemptLabels, deliveryLabels, retryLabels := []string{"status_class", "success"}, []string{"status"}, []string(nil)
	if o.EndpointLabel {
		attemptLabels = append(attemptLabels, "endpoint_id")
		deliveryLabels = append(deliveryLabels, "endpoint_id")
		retryLabels = []string{"endpoint_id"}
	}
	c := &Collector{
		endpointLabel: o.EndpointLabel,
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convoy_attempts_total", ConstLabels: cl,
			Help: "Webhook delivery attempts made, by response status class and success.",
		}, attemptLabels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "convoy_attempt_duration_seconds", ConstLabels: cl, Buckets: o.Buckets,
			Help: "Duration of webhook delivery attempts, from sending the request to the last byte of the response.",
		}, attemptLabels),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convoy_deliveries_total", ConstLabels: cl,
			Help: "Deliveries that reached a final status: success, failure or discarded.",
		}, deliveryLabels),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "convoy_retries_total", ConstLabels: cl,
			Help: "Retries scheduled after a failed attempt.",
		}, retryLabels),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "convoy_events_sent_total", ConstLabels: cl,
			Help: "Events stored by Send, SendTx and SendToEndpoint, idempotent repeats excluded.",
		}),
		statsErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "convoy_stats_errors_total", ConstLabels: cl,
			Help: "Scrapes whose Dispatcher.Stats call failed; their queue gauges are left out.",
		}),
		due: prometheus.NewDesc("convoy_queue_due",
			"Deliveries due now, at most convoy.MaxDueCount.", nil, cl),
		age: prometheus.NewDesc("convoy_oldest_due_age_seconds",
			"How long the oldest due delivery has waited.", nil, cl),
		queued: prometheus.NewDesc("convoy_queue_deliveries",
			"Deliveries waiting or in progress, by status.", []string{"status"}, cl),
		inFlight: prometheus.NewDesc("convoy_in_flight",
			"Attempts running in this dispatcher.", nil, cl),
		endpoints: prometheus.NewDesc("convoy_endpoints",
			"Endpoints by status.", []string{"status"}, cl),
	}
	if !o.EndpointLabel {
		for i, class := range statusClasses {
			for s, success := range []string{"false", "true"} {
				c.attemptC[i][s] = c.attempts.WithLabelValues(class, success)
				c.durationO[i][s] = c.duration.WithLabelValues(class, success)
			}
		}
		c.finalC = make(map[convoy.DeliveryStatus]prometheus.Counter, len(finalStatuses))
		for _, st := range finalStatuses {
			c.finalC[st] = c.deliveries.WithLabelValues(label(st))
		}
		c.retryC = c.retries.WithLabelValues()
	}
	return c
}

// SetDispatcher makes the queue gauges report d: each scrape calls
// d.Stats, one store call, bounded by StatsTimeout. Until it is called
// the gauges are left out.
func (c *Collector) SetDispatcher(d *convoy.Dispatcher) { c.d.Store(d) }

// Describe sends the descriptions of every metric.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	c.attempts.Describe(ch)
	c.duration.Describe(ch)
	c.deliveries.Describe(ch)
	c.retries.Describe(ch)
	c.sent.Describe(ch)
	c.statsErrors.Describe(ch)
	for _, d := range []*prometheus.Desc{c.due, c.age, c.queued, c.inFlight, c.endpoints} {
		ch <- d
	}
}

// Collect sends the counters and, with a dispatcher set, the queue gauges
// from its Stats.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if d := c.d.Load(); d != nil {
		ctx, cancel := context.WithTimeout(context.Background(), StatsTimeout)
		s, err := d.Stats(ctx)
		cancel()
		if err != nil {
			c.statsErrors.Inc()
		} else {
			gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
				ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
			}
			gauge(c.due, float64(s.DueNow))
			gauge(c.age, s.OldestDueAge.Seconds())
			gauge(c.inFlight, float64(s.InFlight))
			for _, st := range queuedStatuses {
				gauge(c.queued, float64(s.Deliveries[st]), label(st))
			}
			for _, st := range endpointStatuses {
				gauge(c.endpoints, float64(s.Endpoints[st]), string(st))
			}
		}
	}
	c.attempts.Collect(ch)
	c.duration.Collect(ch)
	c.deliveries.Collect(ch)
	c.retries.Collect(ch)
	c.sent.Collect(ch)
	c.statsErrors.Collect(ch)
}

// SendEnd counts the event stored.
func (c *Collector) SendEnd(_ context.Context, s convoy.SendInfo) {
	if s.Err == nil && !s.Duplicate {
		c.sent.Inc()
	}
}

// AttemptEnd counts the attempt and observes its duration. An attempt
// cut short by Close is not counted: it is made again.
func (c *Collector) AttemptEnd(_ context.Context, a convoy.AttemptInfo) {
	if a.Canceled {
		return
	}
	class, ok := statusClass(a.StatusCode), 0
	if a.Success {
		ok = 1
	}
	secs := a.Duration.Seconds()
	if !c.endpointLabel {
		c.attemptC[class][ok].Inc()
		c.durationO[class][ok].Observe(secs)
		return
	}
	success := "false"
	if a.Success {
		success = "true"
	}
	c.attempts.WithLabelValues(statusClasses[class], success, a.EndpointID).Inc()
	c.duration.WithLabelValues(statusClasses[class], success, a.EndpointID).Observe(secs)
}

// Recorded counts deliveries that ended and retries scheduled.
func (c *Collector) Recorded(_ context.Context, r convoy.RecordInfo) {
	switch {
	case r.Status == convoy.DeliveryRetry:
		if c.endpointLabel {
			c.retries.WithLabelValues(r.EndpointID).Inc()
		} else {
			c.retryC.Inc()
		}
	case r.Status.Final():
		if c.endpointLabel {
			c.deliveries.WithLabelValues(label(r.Status), r.EndpointID).Inc()
		} else {
			c.finalC[r.Status].Inc()
		}
	}
}
