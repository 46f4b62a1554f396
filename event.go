package convoy

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/convoykit/convoy/internal/jsonvalid"
)

// Event is something that happened in your system, sent to every endpoint
// of an app whose filter accepts its type.
//
// Event values returned by a Dispatcher or a Store are copies.
type Event struct {
	// ID is a UUIDv7, set by Send.
	ID string
	// AppID is the app the event is for.
	AppID string
	// Type names the event, e.g. "invoice.paid": 1 to 256 characters from
	// [a-zA-Z0-9_.-].
	Type string
	// Data is the JSON payload, kept and sent byte for byte.
	Data json.RawMessage
	// IdempotencyKey, when set, makes Send return the first event sent with
	// the same key for the same app instead of sending again. At most 256
	// bytes.
	IdempotencyKey string
	// CreatedAt is set by Send.
	CreatedAt time.Time
	// TraceParent is the trace context of the Send that stored the event,
	// as a W3C traceparent header value ("00-<trace-id>-<span-id>-01"),
	// stored with it so that every attempt, made later and perhaps by
	// another process, can be linked to that Send. Send sets it from
	// Config.Observer (Observer.TraceParent); the value passed in is kept
	// when there is no Observer or it gives none. Empty for no trace
	// context; at most MaxTraceParentLen bytes of printable ASCII.
	TraceParent string
}

const (
	maxEventTypeLen      = 256
	maxIdempotencyKeyLen = 256
)

// ValidateEventType reports whether t is a valid event type, returning an
// error wrapping ErrInvalidEventType otherwise.
func ValidateEventType(t string) error {
	if t == "" {
		return invalid(ErrInvalidEventType, "event.Type", "empty")
	}
	if len(t) > maxEventTypeLen {
		return invalid(ErrInvalidEventType, "event.Type", "too long")
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return invalid(ErrInvalidEventType, "event.Type", "characters outside [a-zA-Z0-9_.-]")
		}
	}
	return nil
}

// Validate reports whether ev is well formed, with maxPayload bounding the
// data (0 means no bound). Errors wrap ErrInvalid and a specific sentinel.
func (ev *Event) Validate(maxPayload int) error {
	if ev == nil {
		return invalid(ErrInvalid, "event", "nil")
	}
	if err := ValidateID("event.ID", ev.ID); err != nil {
		return err
	}
	if err := ValidateID("event.AppID", ev.AppID); err != nil {
		return err
	}
	if err := ValidateEventType(ev.Type); err != nil {
		return err
	}
	if len(ev.IdempotencyKey) > maxIdempotencyKeyLen {
		return invalid(ErrTooLong, "event.IdempotencyKey", "")
	}
	if !validHeaderValue(ev.IdempotencyKey) {
		return invalid(ErrInvalid, "event.IdempotencyKey", "control characters")
	}
	if len(ev.TraceParent) > MaxTraceParentLen {
		return invalid(ErrTooLong, "event.TraceParent", "")
	}
	if !validTraceParent(ev.TraceParent) {
		return invalid(ErrInvalid, "event.TraceParent", "not printable ASCII")
	}
	if maxPayload > 0 && len(ev.Data) > maxPayload {
		return invalid(ErrPayloadTooLarge, "event.Data", "")
	}
	if len(ev.Data) == 0 || !jsonvalid.Valid(ev.Data) {
		return invalid(ErrInvalidJSON, "event.Data", "")
	}
	return nil
}

// Clone returns a deep copy of ev.
func (ev *Event) Clone() *Event {
	if ev == nil {
		return nil
	}
	c := *ev
	c.Data = append(json.RawMessage(nil), ev.Data...)
	return &c
}

// SendResult is what Send stored, or found.
type SendResult struct {
	// Event is the event as stored: the new one, or, for a Duplicate, the
	// first event sent with the same idempotency key. A new event's Data
	// may be the slice passed to Send rather than a copy (it is with the
	// memory and bolt stores).
	Event *Event
	// Deliveries are the event's deliveries, one per endpoint whose filter
	// accepted it: Scheduled, or Processing when an idle worker took it at
	// once (see Send), or Discarded for an inactive endpoint. For a
	// Duplicate they are the first event's, in their current state.
	Deliveries []*Delivery
	// Duplicate reports that the idempotency key had been used for this
	// app already: nothing was stored and nothing will be sent again.
	Duplicate bool
}

// Send accepts an event for an app: it validates ev, then stores the event
// and one delivery per endpoint whose filter accepts ev.Type, in one store
// transaction, and returns what it stored. It never waits for an HTTP
// request: workers deliver in the background once the dispatcher is
// started.
//
// When the dispatcher runs with idle workers, nothing else is due and the
// store is a ClaimingInserter (every store of this module is), the same
// transaction leases the new deliveries to this dispatcher and Send hands
// them to the idle workers: the attempt starts without a Claim or a read
// of the event, and those deliveries are returned Processing. Should the
// process die right after, they are attempted by whichever dispatcher
// claims them once their lease (Config.Lease) ends, as for a crash in the
// middle of an attempt.
//
// Only ev.Type, ev.Data, ev.IdempotencyKey and ev.TraceParent are read;
// ID, AppID and CreatedAt are set here, and TraceParent too when
// Config.Observer gives one. Deliveries to inactive endpoints are stored as
// Discarded at once, ready to be re-sent; an endpoint removed while Send
// runs gets no delivery, and the others are not affected. When
// ev.IdempotencyKey was already used for this app, Send stores nothing and
// returns the first event with Duplicate set, whatever the type and data
// of the repeat (compare them with the returned event if reusing a key
// would be a bug in your code).
//
// Errors wrap ErrInvalid (ErrInvalidJSON, ErrPayloadTooLarge,
// ErrInvalidEventType, …) for bad input, ErrNotFound for an unknown app and
// ErrClosed after Close; nothing is stored then. An error from the store,
// or ctx ending while the commit is in flight, does not prove the event
// was not stored: the commit may have landed. Callers that retry a failed
// Send should set an IdempotencyKey, so the retry cannot send twice.
func (d *Dispatcher) Send(ctx context.Context, appID string, ev Event) (*SendResult, error) {
	info := SendInfo{Op: OpSend, AppID: appID, EventType: ev.Type}
	ctx, ev.TraceParent = d.obs.sendStart(ctx, info, ev.TraceParent)
	res, err := d.send(ctx, appID, ev)
	d.obs.sendEnd(ctx, info, res, err)
	return res, err
}

// send is Send without the Observer.
func (d *Dispatcher) send(ctx context.Context, appID string, ev Event) (*SendResult, error) {
	e, deliveries, eps, err := d.prepare(ctx, appID, ev)
	if err != nil {
		return nil, err
	}
	for _, ep := range eps {
		d.flow.observe(ep, e.CreatedAt)
	}
	if ci, ok := d.store.(ClaimingInserter); ok {
		if r := d.reserve(deliveries, e.CreatedAt); r != nil {
			return d.sendLeased(ctx, ci, r, e, deliveries, eps)
		}
	}
	res, err := d.store.InsertEvent(ctx, e, deliveries)
	if err != nil {
		return nil, err
	}
	return d.sent(res), nil
}

// reservation is the workers a Send holds for the deliveries it leases
// itself, by endpoint, and the in-flight counts before it took them.
type reservation struct {
	n        int
	endpoint map[string]int
	inFlight map[string]int
	caps     map[string]int
}

// reserve takes free workers for the Scheduled deliveries of a Send, up to
// PerEndpoint per endpoint, as Claim would, or returns nil when the
// dispatcher is not running or has none free. The scheduler counts them
// as busy until sendLeased hands them over or gives them back.
func (d *Dispatcher) reserve(ds []*Delivery, now time.Time) *reservation {
	d.mu.Lock()
	defer d.mu.Unlock()
	free := d.cfg.Workers - d.busy
	// While records fail, the scheduler claims nothing (see schedule);
	// neither does Send. Behind a backlog the store would lease nothing
	// for this event, so the workers stay with the scheduler.
	if !d.started || d.closed || free <= 0 || d.storeBad.active() || d.backlog.Load() {
		return nil
	}
	var r *reservation
	for _, dl := range ds {
		if free == 0 {
			break
		}
		if dl.Status != DeliveryScheduled || d.inFlight[dl.EndpointID] >= d.cfg.PerEndpoint ||
			!d.flow.admit(dl.EndpointID, d.inFlight[dl.EndpointID], now) {
			continue
		}
		if r == nil {
			// The store leases only this event's deliveries, so the
			// in-flight counts of its endpoints are all it reads.
			r = &reservation{endpoint: make(map[string]int, len(ds)), inFlight: make(map[string]int, len(ds))}
			for _, x := range ds {
				if n, ok := d.inFlight[x.EndpointID]; ok {
					r.inFlight[x.EndpointID] = n
				}
			}
		}
		d.busy++
		d.inFlight[dl.EndpointID]++
		r.endpoint[dl.EndpointID]++
		r.n++
		free--
	}
	if r != nil {
		d.sending.Add(1)
		// The store leases what was reserved, no more: an endpoint's cap
		// is its in-flight count plus its reservation (none for those
		// without one).
		r.caps = make(map[string]int, len(ds))
		for _, dl := range ds {
			r.caps[dl.EndpointID] = r.inFlight[dl.EndpointID] + r.endpoint[dl.EndpointID]
		}
	}
	return r
}

// sendLeased stores a Send with InsertEventClaim, so that what the store
// leases goes straight to the workers reserved for it, without a Claim;
// the workers it did not lease are given back.
func (d *Dispatcher) sendLeased(ctx context.Context, ci ClaimingInserter, r *reservation, e *Event, deliveries []*Delivery, eps map[string]*Endpoint) (*SendResult, error) {
	defer d.sending.Done()
	res, err := ci.InsertEventClaim(ctx, e, deliveries, ClaimRequest{
		Now:         e.CreatedAt,
		Limit:       r.n,
		Owner:       d.owner,
		Lease:       d.cfg.Lease,
		PerEndpoint: d.cfg.PerEndpoint,
		InFlight:    r.inFlight,
		Caps:        r.caps,
	})
	if err == nil && res.Inserted {
		d.mu.Lock()
		closed := d.closed
		d.mu.Unlock()
		// The workers share one copy of the event: res.Event may hold the
		// caller's Data, which the caller may reuse once Send returns.
		var shared *Event
		leased := false
		for i, dl := range res.Deliveries {
			if dl.Status != DeliveryProcessing || dl.LeaseOwner != d.owner {
				continue
			}
			leased = true
			// The delivery goes back to the queue at once when Close began
			// meanwhile (no new attempt starts), or when no worker was
			// reserved for its endpoint: the store passed over a delivery
			// it may not lease (an ordered endpoint's, while the endpoint
			// has work pending) and leased the next one instead.
			if closed || r.endpoint[dl.EndpointID] == 0 {
				d.releaseLease(dl)
				if got, err := d.store.GetDelivery(ctx, dl.ID); err == nil {
					res.Deliveries[i] = got
				}
				continue
			}
			r.endpoint[dl.EndpointID]--
			// Never blocks: ready holds Workers jobs and each was reserved.
			if shared == nil {
				shared = res.Event.Clone()
			}
			d.ready <- job{dl: dl.Clone(), ep: eps[dl.EndpointID], ev: shared}
		}
		// Nothing leased: older work is due (or an ordered endpoint's
		// turn is taken), which the scheduler's next claim finds.
		d.backlog.Store(!leased)
	}
	d.mu.Lock()
	back := 0
	for id, n := range r.endpoint {
		if n == 0 {
			continue
		}
		back += n
		d.flow.refund(id, n, e.CreatedAt)
		d.busy -= n
		if d.inFlight[id] -= n; d.inFlight[id] <= 0 {
			delete(d.inFlight, id)
		}
	}
	d.mu.Unlock()
	if back > 0 {
		d.notify() // the scheduler may use them
	}
	if err != nil {
		return nil, err
	}
	return d.sent(res), nil
}

// SendTx is Send inside a transaction the caller owns: the event and its
// deliveries are written through tx, so they commit with the caller's own
// writes or vanish with a rollback, and no worker sees them before the
// commit. The dispatcher's store must implement TxInserter[Tx]
// (store/postgres does for pgx.Tx, store/bolt for *bbolt.Tx on its own
// file); otherwise SendTx fails with ErrInvalid and writes nothing.
//
//	tx, _ := pool.Begin(ctx)
//	// ... the caller's own writes in tx ...
//	_, err := convoy.SendTx(ctx, d, tx, appID, convoy.Event{Type: "order.paid", Data: data})
//	// ... then tx.Commit(ctx): the webhook goes out only if this commits.
//
// Endpoints are read outside tx, so an endpoint created in the same
// uncommitted transaction gets no delivery. Config.Observer is told of the
// event once it is written in tx (SendInfo.Op OpSendTx): it cannot know
// whether tx commits.
func SendTx[Tx any](ctx context.Context, d *Dispatcher, tx Tx, appID string, ev Event) (*SendResult, error) {
	info := SendInfo{Op: OpSendTx, AppID: appID, EventType: ev.Type}
	ctx, ev.TraceParent = d.obs.sendStart(ctx, info, ev.TraceParent)
	res, err := sendTx(ctx, d, tx, appID, ev)
	d.obs.sendEnd(ctx, info, res, err)
	return res, err
}

// sendTx is SendTx without the Observer.
func sendTx[Tx any](ctx context.Context, d *Dispatcher, tx Tx, appID string, ev Event) (*SendResult, error) {
	ins, ok := d.store.(TxInserter[Tx])
	if !ok {
		return nil, fmt.Errorf("%w: the store (%T) cannot insert in a %T", ErrInvalid, d.store, tx)
	}
	e, deliveries, _, err := d.prepare(ctx, appID, ev)
	if err != nil {
		return nil, err
	}
	res, err := ins.InsertEventTx(ctx, tx, e, deliveries)
	if err != nil {
		return nil, err
	}
	return d.sent(res), nil
}

// SendToEndpoint is Send to one endpoint only: it stores the event for the
// endpoint's app with a single delivery, to that endpoint, whatever the
// endpoint's event-type filter says and whatever other endpoints the app
// has. It is how a test event reaches the endpoint it is meant to test.
// The delivery is Scheduled, or Discarded when the endpoint is inactive,
// as with Send; the idempotency key is the app's, as with Send. ErrNotFound
// if the endpoint does not exist; the other errors are Send's.
func (d *Dispatcher) SendToEndpoint(ctx context.Context, endpointID string, ev Event) (*SendResult, error) {
	info := SendInfo{Op: OpSendToEndpoint, EndpointID: endpointID, EventType: ev.Type}
	ctx, ev.TraceParent = d.obs.sendStart(ctx, info, ev.TraceParent)
	res, err := d.sendToEndpoint(ctx, endpointID, ev)
	d.obs.sendEnd(ctx, info, res, err)
	return res, err
}

// sendToEndpoint is SendToEndpoint without the Observer.
func (d *Dispatcher) sendToEndpoint(ctx context.Context, endpointID string, ev Event) (*SendResult, error) {
	if d.isClosed() {
		return nil, ErrClosed
	}
	if err := checkID("endpointID", &endpointID); err != nil {
		return nil, err
	}
	ep, err := d.store.GetEndpoint(ctx, endpointID)
	if err != nil {
		return nil, err
	}
	e, err := d.newEvent(ep.AppID, ev)
	if err != nil {
		return nil, err
	}
	res, err := d.store.InsertEvent(ctx, e, []*Delivery{newDelivery(e, ep)})
	if err != nil {
		return nil, err
	}
	return d.sent(res), nil
}

// prepare validates ev and builds the event and its deliveries, and
// returns the endpoints they go to.
func (d *Dispatcher) prepare(ctx context.Context, appID string, ev Event) (*Event, []*Delivery, map[string]*Endpoint, error) {
	if d.isClosed() {
		return nil, nil, nil, ErrClosed
	}
	if err := checkID("appID", &appID); err != nil {
		return nil, nil, nil, err
	}
	e, err := d.newEvent(appID, ev)
	if err != nil {
		return nil, nil, nil, err
	}
	var deliveries []*Delivery
	targets := make(map[string]*Endpoint)
	eps, err := d.allEndpoints(ctx, appID)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, ep := range eps {
		if ep.Accepts(e.Type) {
			targets[ep.ID] = ep
			deliveries = append(deliveries, newDelivery(e, ep))
		}
	}
	return e, deliveries, targets, nil
}

// newEvent builds and validates the event Send stores for ev.
func (d *Dispatcher) newEvent(appID string, ev Event) (*Event, error) {
	e := &Event{
		ID: NewID(), AppID: appID, Type: ev.Type, Data: ev.Data,
		IdempotencyKey: ev.IdempotencyKey, CreatedAt: d.clock.Now(), TraceParent: ev.TraceParent,
	}
	if err := e.Validate(d.cfg.MaxPayloadBytes); err != nil {
		return nil, err
	}
	return e, nil
}

// newDelivery builds the delivery of e to ep: due at once, or Discarded
// when ep is inactive.
func newDelivery(e *Event, ep *Endpoint) *Delivery {
	dl := &Delivery{
		ID: NewID(), EventID: e.ID, AppID: e.AppID, EndpointID: ep.ID,
		EventType: e.Type, Status: DeliveryScheduled, NextAttemptAt: e.CreatedAt,
		CreatedAt: e.CreatedAt, UpdatedAt: e.CreatedAt,
	}
	if ep.Status == EndpointInactive {
		dl.Status = DeliveryDiscarded
	}
	return dl
}

// sent turns a store's InsertResult into Send's, waking the scheduler for
// new work.
func (d *Dispatcher) sent(res InsertResult) *SendResult {
	if res.Inserted {
		for _, dl := range res.Deliveries {
			if dl.Status == DeliveryScheduled {
				d.notify()
				break
			}
		}
	}
	return &SendResult{Event: res.Event, Deliveries: res.Deliveries, Duplicate: !res.Inserted}
}

// GetEvent returns an event with its deliveries (one per endpoint it was
// sent to, newest first). ErrNotFound if there is none.
func (d *Dispatcher) GetEvent(ctx context.Context, id string) (*Event, []*Delivery, error) {
	if err := checkID("eventID", &id); err != nil {
		return nil, nil, err
	}
	ev, err := d.store.GetEvent(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	var all []*Delivery
	for page := (Page{Limit: MaxPageSize}); ; {
		ds, next, err := d.store.ListDeliveries(ctx, DeliveryQuery{EventID: id}, page)
		if err != nil {
			return nil, nil, err
		}
		all = append(all, ds...)
		if next == "" {
			return ev, all, nil
		}
		page.Cursor = next
	}
}

// ListEvents returns one page of the events q selects, newest first
// (by creation time), and the cursor of the next page ("" at the end).
// Each page is one indexed store query, so paging through a large store
// stays cheap.
func (d *Dispatcher) ListEvents(ctx context.Context, q EventQuery, page Page) ([]*Event, string, error) {
	if q.AppID != "" {
		if err := checkID("EventQuery.AppID", &q.AppID); err != nil {
			return nil, "", err
		}
	}
	if q.Type != "" {
		if err := ValidateEventType(q.Type); err != nil {
			return nil, "", err
		}
	}
	if !q.CreatedFrom.IsZero() && !q.CreatedTo.IsZero() && !q.CreatedFrom.Before(q.CreatedTo) {
		return nil, "", invalid(ErrInvalid, "EventQuery", "CreatedFrom must be before CreatedTo")
	}
	return d.store.ListEvents(ctx, q, page)
}

// DeleteEventsBefore removes events created before cutoff, with their
// deliveries and attempts, keeping events that still have a delivery in
// progress. It returns how many events it removed. It deletes in batches of
// DefaultDeleteBatch, one short store transaction each, so Sends and
// attempts are never held up for long; ctx ending stops it between
// batches. Config.Retention runs it in the background for you.
func (d *Dispatcher) DeleteEventsBefore(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for {
		n, err := d.store.DeleteBefore(ctx, cutoff, DefaultDeleteBatch)
		total += n
		if err != nil {
			return total, err
		}
		if n < DefaultDeleteBatch {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}
