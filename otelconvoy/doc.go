// Package otelconvoy reports what a convoy Dispatcher does to
// OpenTelemetry: metrics of every attempt, delivery and retry, gauges of
// the queue, and a span per Send and per attempt, linked, with the HTTP
// client span of each request following OpenTelemetry's HTTP semantic
// conventions.
//
// A Telemetry is a convoy.Observer (called inline for every Send and
// attempt, so no figure is lost when the dispatcher is busy) and wraps the
// dispatcher's HTTP transport with otelhttp, around the SSRF guard:
//
//	tel, err := otelconvoy.New(otelconvoy.Options{MeterProvider: mp, TracerProvider: tp})
//	d, err := convoy.New(convoy.Config{Store: st, Observer: tel, WrapTransport: tel.WrapTransport})
//	tel.SetDispatcher(d) // the queue gauges read d.Stats at each collection
//
// # Metrics
//
// Attribute values are bounded: no delivery or event ID is ever an
// attribute, and the endpoint ID only when Options.EndpointAttribute is
// set.
//
//	convoy.attempt.duration   histogram, s           convoy.attempt.status_class (1xx…5xx, none), convoy.attempt.success
//	convoy.deliveries         counter, {delivery}    convoy.delivery.status (success, failure, discarded): deliveries that ended
//	convoy.retries            counter, {retry}       retries scheduled after a failed attempt
//	convoy.events.sent        counter, {event}       events stored by Send, SendTx and SendToEndpoint (repeats excluded)
//	convoy.queue.due          gauge, {delivery}      deliveries due now (at most convoy.MaxDueCount)
//	convoy.oldest_due_age     gauge, s               how long the oldest due delivery has waited
//	convoy.queue.deliveries   gauge, {delivery}      convoy.delivery.status (scheduled, processing, retry)
//	convoy.in_flight          gauge, {attempt}       attempts running in this dispatcher
//	convoy.endpoints          gauge, {endpoint}      convoy.endpoint.status (active, inactive, pending)
//
// The number of attempts is the histogram's count. With WrapTransport,
// otelhttp adds the HTTP client metrics of the conventions
// (http.client.request.duration and the like).
//
// # Traces
//
// Each Send, SendTx and SendToEndpoint is a span (convoy.Send,
// convoy.SendTx, convoy.SendToEndpoint; kind producer), child of the
// caller's span. Its trace context is stored with the event
// (convoy.Event.TraceParent), so each attempt, made by whichever process
// and however much later, is a span (convoy.attempt; kind consumer) that
// starts a trace of its own and links to its Send: a retry five hours
// later does not stretch the trace of the request that sent the event.
// With WrapTransport, the request is a client span (otelhttp), child of
// the attempt's, whose url.full keeps the host but not what may be a
// credential (query values and token-like path segments read REDACTED).
//
// Receivers get a traceparent header only when Options.Propagate asks for
// one.
package otelconvoy
