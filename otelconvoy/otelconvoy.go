package otelconvoy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/convoykit/convoy"
)

// ScopeName is the instrumentation scope of the meter and tracer.
const ScopeName = "github.com/convoykit/convoy/otelconvoy"

// Attribute keys.
const (
	AttrStatusClass    = attribute.Key("convoy.attempt.status_class")
	AttrSuccess        = attribute.Key("convoy.attempt.success")
	AttrDeliveryStatus = attribute.Key("convoy.delivery.status")
	AttrEndpointStatus = attribute.Key("convoy.endpoint.status")
	AttrEndpointID     = attribute.Key("convoy.endpoint.id")
	AttrAppID          = attribute.Key("convoy.app.id")
	AttrEventID        = attribute.Key("convoy.event.id")
	AttrEventType      = attribute.Key("convoy.event.type")
	AttrDeliveryID     = attribute.Key("convoy.delivery.id")
	AttrAttemptNumber  = attribute.Key("convoy.attempt.number")
	AttrDeliveries     = attribute.Key("convoy.deliveries")
	AttrDiscarded      = attribute.Key("convoy.deliveries.discarded")
	AttrDuplicate      = attribute.Key("convoy.duplicate")
	AttrNextStatus     = attribute.Key("convoy.delivery.next_status")
	AttrNextAttemptAt  = attribute.Key("convoy.delivery.next_attempt_at")
	attrHTTPStatus     = attribute.Key("http.response.status_code")
)

// DurationBuckets are the bucket boundaries of convoy.attempt.duration,
// in seconds: those the HTTP semantic conventions give for request
// durations, and 15 s and 30 s beyond them (convoy.DefaultTimeout is
// 15 s).
var DurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 15, 30}

// Propagation chooses the trace context sent to receivers.
type Propagation int

const (
	// PropagateNone sends no trace context: a receiver's own tracing
	// starts its traces. The default.
	PropagateNone Propagation = iota
	// PropagateSend sends the trace context of the Send (the one stored
	// in convoy.Event.TraceParent) as traceparent: the receiver's work
	// joins the trace of the request that sent the event, as a child of
	// its Send span, whatever attempt and however late.
	PropagateSend
	// PropagateAttempt sends the trace context of the HTTP client span as
	// traceparent and tracestate, as otelhttp does: the receiver's work
	// joins the attempt's trace, as a child of the request that reached
	// it.
	PropagateAttempt
)

// Options configure a Telemetry. The zero value of each field is its
// documented default.
type Options struct {
	// MeterProvider makes the meter. Default otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// TracerProvider makes the tracer. Default otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// EndpointAttribute adds the endpoint ID (convoy.endpoint.id) to the
	// attempt, delivery and retry metrics: one series per endpoint, so
	// only for a bounded number of endpoints. Off by default. Spans
	// always carry it.
	EndpointAttribute bool
	// Propagate chooses the trace context sent to receivers in the
	// traceparent header; it needs WrapTransport. Default PropagateNone.
	Propagate Propagation
}

// Telemetry reports a Dispatcher to OpenTelemetry. It is a
// convoy.Observer: set it as convoy.Config.Observer, its WrapTransport as
// convoy.Config.WrapTransport, and call SetDispatcher once the dispatcher
// exists. A Telemetry serves one Dispatcher and is safe for concurrent
// use.
type Telemetry struct {
	convoy.NopObserver

	opts       Options
	tracer     trace.Tracer
	meter      metric.Meter
	duration   metric.Float64Histogram
	deliveries metric.Int64Counter
	retries    metric.Int64Counter
	sent       metric.Int64Counter
	gauges     metric.Registration
	d          atomic.Pointer[convoy.Dispatcher]

	// Attribute sets reused by every record when EndpointAttribute is off.
	attemptSets  [len(statusClasses)][2]metric.MeasurementOption
	finalSets    map[convoy.DeliveryStatus]metric.MeasurementOption
	statusValues map[convoy.DeliveryStatus]attribute.KeyValue
}

var _ convoy.Observer = (*Telemetry)(nil)

// statusClasses are the values of convoy.attempt.status_class; "none" is
// an attempt without a response.
var statusClasses = [...]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

func statusClass(code int) int {
	if c := code / 100; c >= 1 && c <= 5 {
		return c
	}
	return 0
}

// New returns a Telemetry with its instruments made, or the error of the
// meter that refused one.
func New(o Options) (*Telemetry, error) {
	if o.MeterProvider == nil {
		o.MeterProvider = otel.GetMeterProvider()
	}
	if o.TracerProvider == nil {
		o.TracerProvider = otel.GetTracerProvider()
	}
	t := &Telemetry{
		opts:   o,
		tracer: o.TracerProvider.Tracer(ScopeName, trace.WithInstrumentationVersion(convoy.Version)),
		meter:  o.MeterProvider.Meter(ScopeName, metric.WithInstrumentationVersion(convoy.Version)),
	}
	if err := t.instruments(); err != nil {
		return nil, fmt.Errorf("otelconvoy: %w", err)
	}
	return t, nil
}

func (t *Telemetry) instruments() error {
	m := t.meter
	var err, e error
	t.duration, e = m.Float64Histogram("convoy.attempt.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of webhook delivery attempts, from sending the request to the last byte of the response."),
		metric.WithExplicitBucketBoundaries(DurationBuckets...))
	err = errors.Join(err, e)
	t.deliveries, e = m.Int64Counter("convoy.deliveries", metric.WithUnit("{delivery}"),
		metric.WithDescription("Deliveries that reached a final status."))
	err = errors.Join(err, e)
	t.retries, e = m.Int64Counter("convoy.retries", metric.WithUnit("{retry}"),
		metric.WithDescription("Retries scheduled after a failed attempt."))
	err = errors.Join(err, e)
	t.sent, e = m.Int64Counter("convoy.events.sent", metric.WithUnit("{event}"),
		metric.WithDescription("Events stored by Send, SendTx and SendToEndpoint, idempotent repeats excluded."))
	err = errors.Join(err, e)

	due, e := m.Int64ObservableGauge("convoy.queue.due", metric.WithUnit("{delivery}"),
		metric.WithDescription("Deliveries due now, at most convoy.MaxDueCount."))
	err = errors.Join(err, e)
	age, e := m.Float64ObservableGauge("convoy.oldest_due_age", metric.WithUnit("s"),
		metric.WithDescription("How long the oldest due delivery has waited."))
	err = errors.Join(err, e)
	queued, e := m.Int64ObservableGauge("convoy.queue.deliveries", metric.WithUnit("{delivery}"),
		metric.WithDescription("Deliveries waiting or in progress, by status."))
	err = errors.Join(err, e)
	inFlight, e := m.Int64ObservableGauge("convoy.in_flight", metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts running in this dispatcher."))
	err = errors.Join(err, e)
	endpoints, e := m.Int64ObservableGauge("convoy.endpoints", metric.WithUnit("{endpoint}"),
		metric.WithDescription("Endpoints by status."))
	err = errors.Join(err, e)
	if err != nil {
		return err
	}

	for c, class := range statusClasses {
		for s := range 2 {
			t.attemptSets[c][s] = metric.WithAttributeSet(attribute.NewSet(AttrStatusClass.String(class), AttrSuccess.Bool(s == 1)))
		}
	}
	t.statusValues = make(map[convoy.DeliveryStatus]attribute.KeyValue, len(convoy.DeliveryStatuses))
	t.finalSets = make(map[convoy.DeliveryStatus]metric.MeasurementOption)
	for _, s := range convoy.DeliveryStatuses {
		kv := AttrDeliveryStatus.String(strings.ToLower(string(s)))
		t.statusValues[s] = kv
		if s.Final() {
			t.finalSets[s] = metric.WithAttributeSet(attribute.NewSet(kv))
		}
	}
	queuedStatuses := []convoy.DeliveryStatus{convoy.DeliveryScheduled, convoy.DeliveryProcessing, convoy.DeliveryRetry}
	endpointStatuses := []convoy.EndpointStatus{convoy.EndpointActive, convoy.EndpointInactive, convoy.EndpointPending}
	t.gauges, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		d := t.d.Load()
		if d == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		s, err := d.Stats(ctx)
		if err != nil {
			return fmt.Errorf("otelconvoy: stats: %w", err)
		}
		o.ObserveInt64(due, int64(s.DueNow))
		o.ObserveFloat64(age, s.OldestDueAge.Seconds())
		o.ObserveInt64(inFlight, int64(s.InFlight))
		for _, st := range queuedStatuses {
			o.ObserveInt64(queued, int64(s.Deliveries[st]), metric.WithAttributes(t.statusValues[st]))
		}
		for _, st := range endpointStatuses {
			o.ObserveInt64(endpoints, int64(s.Endpoints[st]),
				metric.WithAttributes(AttrEndpointStatus.String(string(st))))
		}
		return nil
	}, due, age, queued, inFlight, endpoints)
	return err
}

// SetDispatcher makes the queue gauges (convoy.queue.*, convoy.oldest_due_age,
// convoy.in_flight, convoy.endpoints) report d: each collection calls
// d.Stats, one store call. Until it is called they report nothing.
func (t *Telemetry) SetDispatcher(d *convoy.Dispatcher) { t.d.Store(d) }

// Close unregisters the gauges' callback from the meter; the counters and
// spans go on. It does not shut the providers down.
func (t *Telemetry) Close() error { return t.gauges.Unregister() }

// SendStart starts the span of a Send, SendTx or SendToEndpoint.
func (t *Telemetry) SendStart(ctx context.Context, s convoy.SendInfo) context.Context {
	attrs := make([]attribute.KeyValue, 0, 3)
	attrs = append(attrs, AttrEventType.String(s.EventType))
	if s.AppID != "" {
		attrs = append(attrs, AttrAppID.String(s.AppID))
	}
	if s.EndpointID != "" {
		attrs = append(attrs, AttrEndpointID.String(s.EndpointID))
	}
	ctx, _ = t.tracer.Start(ctx, "convoy."+s.Op, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	return ctx
}

// TraceParent returns the traceparent of the span in ctx (the Send's).
func (t *Telemetry) TraceParent(ctx context.Context) string {
	return formatTraceParent(trace.SpanContextFromContext(ctx))
}

// formatTraceParent is the W3C traceparent of sc, "" for an invalid one.
func formatTraceParent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	var b strings.Builder
	b.Grow(55)
	b.WriteString("00-")
	b.WriteString(sc.TraceID().String())
	b.WriteByte('-')
	b.WriteString(sc.SpanID().String())
	b.WriteByte('-')
	b.WriteString(sc.TraceFlags().String())
	return b.String()
}

// parseTraceParent reads a W3C traceparent; the zero SpanContext for a
// malformed one.
func parseTraceParent(tp string) trace.SpanContext {
	if tp == "" {
		return trace.SpanContext{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": tp})
	return trace.SpanContextFromContext(ctx)
}

// SendEnd ends the Send's span and counts the event stored.
func (t *Telemetry) SendEnd(ctx context.Context, s convoy.SendInfo) {
	if s.Err == nil && !s.Duplicate {
		t.sent.Add(ctx, 1)
	}
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		if s.Err != nil {
			span.RecordError(s.Err)
			span.SetStatus(codes.Error, s.Err.Error())
		} else {
			if s.AppID != "" {
				span.SetAttributes(AttrAppID.String(s.AppID))
			}
			span.SetAttributes(AttrEventID.String(s.EventID), AttrDeliveries.Int(s.Deliveries),
				AttrDiscarded.Int(s.Discarded), AttrDuplicate.Bool(s.Duplicate))
		}
	}
	span.End()
}

// sendContextKey carries the Send's span context to the transport, for
// PropagateSend.
type sendContextKey struct{}

// AttemptStart starts the span of an attempt, in a trace of its own,
// linked to the Send that stored the event.
func (t *Telemetry) AttemptStart(ctx context.Context, a convoy.AttemptInfo) context.Context {
	opts := []trace.SpanStartOption{
		trace.WithNewRoot(),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			AttrDeliveryID.String(a.DeliveryID), AttrEventID.String(a.EventID), AttrAppID.String(a.AppID),
			AttrEndpointID.String(a.EndpointID), AttrEventType.String(a.EventType), AttrAttemptNumber.Int(a.Number),
		),
	}
	send := parseTraceParent(a.TraceParent)
	if send.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: send}))
		if t.opts.Propagate == PropagateSend {
			ctx = context.WithValue(ctx, sendContextKey{}, a.TraceParent)
		}
	}
	ctx, _ = t.tracer.Start(ctx, "convoy.attempt", opts...)
	return ctx
}

// AttemptEnd ends the attempt's span and records its duration.
func (t *Telemetry) AttemptEnd(ctx context.Context, a convoy.AttemptInfo) {
	span := trace.SpanFromContext(ctx)
	defer span.End()
	if span.IsRecording() {
		if a.StatusCode > 0 {
			span.SetAttributes(attrHTTPStatus.Int(a.StatusCode))
		}
		span.SetAttributes(AttrSuccess.Bool(a.Success))
		switch {
		case a.Canceled:
			span.SetStatus(codes.Error, "canceled by Close; the delivery goes back to the queue")
		case !a.Success:
			span.SetStatus(codes.Error, a.Error)
		}
		if !a.Canceled {
			span.SetAttributes(AttrNextStatus.String(strings.ToLower(string(a.Next))))
		}
		if a.Next == convoy.DeliveryRetry {
			span.SetAttributes(AttrNextAttemptAt.String(a.NextAttemptAt.UTC().Format(time.RFC3339Nano)))
		}
	}
	if a.Canceled {
		return // not an attempt that counts: it is made again
	}

	class, ok := statusClass(a.StatusCode), 0
	if a.Success {
		ok = 1
	}
	if !t.opts.EndpointAttribute {
		t.duration.Record(ctx, a.Duration.Seconds(), t.attemptSets[class][ok])
		return
	}
	t.duration.Record(ctx, a.Duration.Seconds(), metric.WithAttributes(
		AttrStatusClass.String(statusClasses[class]), AttrSuccess.Bool(a.Success), AttrEndpointID.String(a.EndpointID)))
}

// Recorded counts deliveries that ended and retries scheduled.
func (t *Telemetry) Recorded(ctx context.Context, r convoy.RecordInfo) {
	switch {
	case r.Status == convoy.DeliveryRetry:
		if t.opts.EndpointAttribute {
			t.retries.Add(ctx, 1, metric.WithAttributes(AttrEndpointID.String(r.EndpointID)))
		} else {
			t.retries.Add(ctx, 1)
		}
	case r.Status.Final():
		if t.opts.EndpointAttribute {
			t.deliveries.Add(ctx, 1, metric.WithAttributes(t.statusValues[r.Status], AttrEndpointID.String(r.EndpointID)))
		} else {
			t.deliveries.Add(ctx, 1, t.finalSets[r.Status])
		}
	}
}
