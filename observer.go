package convoy

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Observer is told what a Dispatcher does, as it does it, so that metrics
// and traces can be derived from it without loss: where the OnAttempt
// hook runs on a queue that drops events once a slow hook falls behind,
// an Observer is called inline, on the goroutine that did the work, once
// for every Send and every attempt, and never skipped. The otelconvoy and
// promconvoy modules implement it for OpenTelemetry and Prometheus; set it
// as Config.Observer.
//
// Because its methods run on the Send caller's goroutine and on the
// delivery workers, they must be quick and must not block: count, start
// or end a span, and return. A slow Observer slows every Send and every
// delivery. Methods are called concurrently from many goroutines. A panic
// in a method is recovered and logged, and the work goes on as if the
// method had returned its input unchanged.
//
// The calls come in pairs: SendStart, then SendEnd with the context that
// SendStart returned, for every call of Send, SendTx and SendToEndpoint;
// AttemptStart, then AttemptEnd with the context AttemptStart returned,
// for every HTTP try of a delivery. Recorded follows once the store has
// recorded the end of a claim (an attempt's outcome, or a delivery
// Discarded or abandoned without one), and for the deliveries a Send
// stored Discarded; a record that never lands (the lease was lost to
// another process) is not reported, so counting Recorded counts each
// stored outcome once, across processes.
//
// Queue figures (deliveries due, the oldest due age, endpoints by status)
// are not pushed through Observer: read them when they are collected,
// from Dispatcher.Stats, which costs one store call.
//
// Implementations should embed NopObserver, so that the methods later
// versions add do nothing for them instead of breaking their build.
type Observer interface {
	// SendStart is called when Send, SendTx or SendToEndpoint begins,
	// before anything is validated or stored. The context it returns
	// (ctx, or one derived from it, e.g. carrying a span) is the one the
	// call runs with, and is passed to TraceParent and SendEnd.
	SendStart(ctx context.Context, s SendInfo) context.Context
	// TraceParent returns the trace context of ctx (the context SendStart
	// returned) as a W3C traceparent header value, or "" for none. It is
	// stored with the event (Event.TraceParent), so that every attempt,
	// by whichever process and however much later, can be linked to the
	// Send that caused it. A value that is not printable ASCII or is
	// longer than MaxTraceParentLen is ignored.
	TraceParent(ctx context.Context) string
	// SendEnd is called when the call returns, with its outcome in s.
	SendEnd(ctx context.Context, s SendInfo)

	// AttemptStart is called on the worker before an attempt's request is
	// signed and sent. The context it returns (ctx, or one derived from
	// it) is the request's context, so a span it carries is the parent of
	// what the HTTP transport records (see Config.WrapTransport); it must
	// be derived from ctx, whose cancellation stops the attempt.
	AttemptStart(ctx context.Context, a AttemptInfo) context.Context
	// AttemptEnd is called on the worker when the attempt is over, with
	// its outcome and what the dispatcher decided next, before the
	// outcome is stored.
	AttemptEnd(ctx context.Context, a AttemptInfo)

	// Recorded is called once the store has recorded a delivery's new
	// status: at the end of a claim, after an attempt, or for a delivery
	// Discarded (its endpoint is inactive) or abandoned without one; and
	// by Send, for each delivery it stored Discarded at once. Counting
	// the final statuses it reports counts every delivery that ended.
	Recorded(ctx context.Context, r RecordInfo)
}

// NopObserver is an Observer that does nothing. Embed it in an Observer
// of your own to implement only the methods you need, and to keep
// building when later versions add methods to Observer.
type NopObserver struct{}

var _ Observer = NopObserver{}

// SendStart returns ctx.
func (NopObserver) SendStart(ctx context.Context, _ SendInfo) context.Context { return ctx }

// TraceParent returns "".
func (NopObserver) TraceParent(context.Context) string { return "" }

// SendEnd does nothing.
func (NopObserver) SendEnd(context.Context, SendInfo) {}

// AttemptStart returns ctx.
func (NopObserver) AttemptStart(ctx context.Context, _ AttemptInfo) context.Context { return ctx }

// AttemptEnd does nothing.
func (NopObserver) AttemptEnd(context.Context, AttemptInfo) {}

// Recorded does nothing.
func (NopObserver) Recorded(context.Context, RecordInfo) {}

// Names of the calls in SendInfo.Op.
const (
	OpSend           = "Send"
	OpSendTx         = "SendTx"
	OpSendToEndpoint = "SendToEndpoint"
)

// SendInfo describes a call of Send, SendTx or SendToEndpoint to an
// Observer. SendStart gets Op, AppID, EndpointID and EventType; SendEnd
// gets them and the outcome.
type SendInfo struct {
	// Op names the call: OpSend, OpSendTx or OpSendToEndpoint.
	Op string
	// AppID is the app the event is for. SendToEndpoint learns it from
	// the endpoint: at its SendStart it is empty.
	AppID string
	// EndpointID is SendToEndpoint's endpoint; empty for the others.
	EndpointID string
	// EventType is the event's type as passed (at SendStart, not yet
	// validated).
	EventType string

	// Err is the call's error, nil on success. The fields below are set
	// only when it is nil.
	Err error
	// EventID is the stored event's ID; for a Duplicate, the first event's.
	EventID string
	// Deliveries is how many deliveries the event got, Discarded ones
	// included; for a Duplicate, those of the first event.
	Deliveries int
	// Discarded is how many of them were stored Discarded because their
	// endpoint is inactive: they are final at once, no attempt follows,
	// and each is reported by a Recorded call (before SendEnd). For a
	// Duplicate, the first event's, and no Recorded call.
	Discarded int
	// Duplicate reports that the idempotency key was used already:
	// nothing was stored.
	Duplicate bool
}

// AttemptInfo describes one HTTP try of a delivery to an Observer.
// AttemptStart gets the delivery's IDs, EventType, Number and
// TraceParent; AttemptEnd gets them and the outcome.
type AttemptInfo struct {
	// DeliveryID, EventID, AppID and EndpointID name the delivery and
	// what it belongs to; EventType is its event's type.
	DeliveryID string
	EventID    string
	AppID      string
	EndpointID string
	EventType  string
	// Number is the attempt's 1-based position among the delivery's
	// attempts (the X-Convoy-Attempt header).
	Number int
	// TraceParent is the event's (see Event.TraceParent): the trace
	// context of the Send that stored it, "" when none was recorded.
	TraceParent string

	// StatusCode is the response status, 0 when no response came.
	StatusCode int
	// Success reports a 2xx response read in full (Attempt.Success).
	Success bool
	// Duration is how long the request took, from sending it to the last
	// byte of the response read (Attempt.Duration).
	Duration time.Duration
	// Error is why the attempt failed, as stored in Attempt.Error; empty
	// on success.
	Error string
	// Next is the status the dispatcher decided for the delivery:
	// DeliverySuccess, DeliveryRetry (another attempt at NextAttemptAt)
	// or DeliveryFailure (retries exhausted, 410 Gone, or a blocked
	// address). It is not stored yet: Recorded tells when it is. Empty
	// when Canceled.
	Next DeliveryStatus
	// NextAttemptAt is when the retry is due, when Next is DeliveryRetry.
	NextAttemptAt time.Time
	// Canceled reports an attempt cut short by Close: nothing is recorded
	// and the delivery goes back to the queue, to be attempted again.
	Canceled bool
}

// RecordInfo describes to an Observer what the store recorded at the end
// of a claim.
type RecordInfo struct {
	// DeliveryID, EventID, AppID and EndpointID name the delivery and
	// what it belongs to.
	DeliveryID string
	EventID    string
	AppID      string
	EndpointID string
	// Status is the delivery's new status: DeliverySuccess, DeliveryRetry,
	// DeliveryFailure or DeliveryDiscarded.
	Status DeliveryStatus
	// NextAttemptAt is when a DeliveryRetry is due.
	NextAttemptAt time.Time
	// Attempted reports that an attempt was recorded with it, whose
	// response status is StatusCode (0 when none came). A delivery
	// Discarded because its endpoint is inactive, or abandoned, has none.
	Attempted  bool
	StatusCode int
	// Abandoned reports a delivery ended in Failure without an attempt,
	// after Config.MaxClaims claims whose processes never recorded one
	// (see AttemptEvent.Abandoned).
	Abandoned bool
	// EndpointBefore and EndpointAfter are the endpoint's status before
	// and after the record; they differ when it changed.
	EndpointBefore EndpointStatus
	EndpointAfter  EndpointStatus
}

// MaxTraceParentLen bounds Event.TraceParent.
const MaxTraceParentLen = 256

// validTraceParent reports whether s may be stored as a traceparent:
// at most MaxTraceParentLen bytes of printable ASCII without spaces, so
// it can go out in a request header as it is.
func validTraceParent(s string) bool {
	if len(s) > MaxTraceParentLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// observer calls Config.Observer, recovering its panics. A nil *observer
// (no Observer configured) does nothing.
type observer struct {
	o   Observer
	log *slog.Logger
}

func newObserver(o Observer, log *slog.Logger) *observer {
	if o == nil {
		return nil
	}
	return &observer{o: o, log: log}
}

func (o *observer) recovered(method string) {
	if r := recover(); r != nil {
		o.log.LogAttrs(context.Background(), slog.LevelError, "convoy: the Observer panicked",
			slog.String("method", method), slog.String("panic", fmt.Sprint(r)))
	}
}

// sendStart calls SendStart and TraceParent; it returns the context to
// run the call with and the traceparent to store, given the one passed in
// the event (kept when the Observer gives none).
func (o *observer) sendStart(ctx context.Context, s SendInfo, given string) (context.Context, string) {
	if o == nil {
		return ctx, given
	}
	ctx = o.start(ctx, s)
	if tp := o.traceParent(ctx); tp != "" && validTraceParent(tp) {
		return ctx, tp
	}
	return ctx, given
}

func (o *observer) start(ctx context.Context, s SendInfo) (out context.Context) {
	out = ctx
	defer o.recovered("SendStart")
	if c := o.o.SendStart(ctx, s); c != nil {
		out = c
	}
	return out
}

func (o *observer) traceParent(ctx context.Context) string {
	defer o.recovered("TraceParent")
	return o.o.TraceParent(ctx)
}

// sendEnd reports the outcome of a Send call.
func (o *observer) sendEnd(ctx context.Context, s SendInfo, res *SendResult, err error) {
	if o == nil {
		return
	}
	defer o.recovered("SendEnd")
	s.Err = err
	if err == nil && res != nil {
		if res.Event != nil {
			s.EventID, s.AppID = res.Event.ID, res.Event.AppID
		}
		s.Deliveries, s.Duplicate = len(res.Deliveries), res.Duplicate
		for _, dl := range res.Deliveries {
			if dl.Status == DeliveryDiscarded {
				s.Discarded++
			}
		}
	}
	if s.Discarded > 0 && !s.Duplicate {
		for _, dl := range res.Deliveries {
			if dl.Status == DeliveryDiscarded {
				o.recordedAtSend(ctx, dl)
			}
		}
	}
	o.o.SendEnd(ctx, s)
}

// recordedAtSend reports a delivery that Send stored Discarded.
func (o *observer) recordedAtSend(ctx context.Context, dl *Delivery) {
	defer o.recovered("Recorded")
	o.o.Recorded(ctx, RecordInfo{
		DeliveryID: dl.ID, EventID: dl.EventID, AppID: dl.AppID, EndpointID: dl.EndpointID,
		Status: DeliveryDiscarded, EndpointBefore: EndpointInactive, EndpointAfter: EndpointInactive,
	})
}

func attemptInfo(dl *Delivery, ev *Event) AttemptInfo {
	return AttemptInfo{
		DeliveryID: dl.ID, EventID: dl.EventID, AppID: dl.AppID, EndpointID: dl.EndpointID,
		EventType: ev.Type, Number: dl.Attempts + 1, TraceParent: ev.TraceParent,
	}
}

// attemptStart calls AttemptStart; it returns the attempt's context.
func (o *observer) attemptStart(ctx context.Context, dl *Delivery, ev *Event) (out context.Context) {
	if o == nil {
		return ctx
	}
	out = ctx
	defer o.recovered("AttemptStart")
	if c := o.o.AttemptStart(ctx, attemptInfo(dl, ev)); c != nil {
		out = c
	}
	return out
}

// attemptEnd reports an attempt's outcome; t is nil when it was cut short
// by Close.
func (o *observer) attemptEnd(ctx context.Context, dl *Delivery, ev *Event, a *Attempt, t *Transition) {
	if o == nil {
		return
	}
	defer o.recovered("AttemptEnd")
	info := attemptInfo(dl, ev)
	info.StatusCode, info.Success, info.Duration, info.Error = a.StatusCode, a.Success(), a.Duration, a.Error
	if t == nil {
		info.Canceled = true
	} else {
		info.Next, info.NextAttemptAt = t.Status, t.NextAttemptAt
	}
	o.o.AttemptEnd(ctx, info)
}

// recorded reports a transition the store recorded.
func (o *observer) recorded(ctx context.Context, dl *Delivery, t Transition, res RecordResult, abandoned bool) {
	if o == nil {
		return
	}
	defer o.recovered("Recorded")
	r := RecordInfo{
		DeliveryID: dl.ID, EventID: dl.EventID, AppID: dl.AppID, EndpointID: dl.EndpointID,
		Status: t.Status, NextAttemptAt: t.NextAttemptAt, Abandoned: abandoned,
		EndpointBefore: res.EndpointBefore, EndpointAfter: res.EndpointAfter,
	}
	if a := t.Attempt; a != nil {
		r.Attempted, r.StatusCode = true, a.StatusCode
	}
	o.o.Recorded(ctx, r)
}
