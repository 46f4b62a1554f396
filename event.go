package convoy

import (
	"context"
	"encoding/json"
	"time"
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
	if maxPayload > 0 && len(ev.Data) > maxPayload {
		return invalid(ErrPayloadTooLarge, "event.Data", "")
	}
	if len(ev.Data) == 0 || !json.Valid(ev.Data) {
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

// Send accepts an event for an app: it validates ev, then stores the event
// and one delivery per endpoint whose filter accepts ev.Type, in one store
// transaction, and returns the stored event. It never waits for an HTTP
// request: workers deliver in the background once the dispatcher is
// started.
//
// Only ev.Type, ev.Data and ev.IdempotencyKey are read; ID, AppID and
// CreatedAt are set here. Deliveries to inactive endpoints are stored as
// Discarded at once, ready to be re-sent. When ev.IdempotencyKey was
// already used for this app, Send stores nothing and returns the first
// event, whatever the type and data of the repeat (compare them with the
// returned event if reusing a key would be a bug in your code). Errors
// wrap ErrInvalid (ErrInvalidJSON, ErrPayloadTooLarge,
// ErrInvalidEventType, …) for bad input and ErrNotFound for an unknown
// app; nothing is stored then.
func (d *Dispatcher) Send(ctx context.Context, appID string, ev Event) (*Event, error) {
	if err := ValidateID("appID", appID); err != nil {
		return nil, err
	}
	now := d.clock.Now()
	e := &Event{
		ID: NewID(), AppID: appID, Type: ev.Type, Data: ev.Data,
		IdempotencyKey: ev.IdempotencyKey, CreatedAt: now,
	}
	if err := e.Validate(d.cfg.MaxPayloadBytes); err != nil {
		return nil, err
	}
	var deliveries []*Delivery
	for page := (Page{Limit: MaxPageSize}); ; {
		eps, next, err := d.store.ListEndpoints(ctx, appID, page)
		if err != nil {
			return nil, err
		}
		for _, ep := range eps {
			if !ep.Accepts(e.Type) {
				continue
			}
			dl := &Delivery{
				ID: NewID(), EventID: e.ID, AppID: appID, EndpointID: ep.ID,
				EventType: e.Type, Status: DeliveryScheduled, NextAttemptAt: now,
				CreatedAt: now, UpdatedAt: now,
			}
			if ep.Status == EndpointInactive {
				dl.Status = DeliveryDiscarded
			}
			deliveries = append(deliveries, dl)
		}
		if next == "" {
			break
		}
		page.Cursor = next
	}
	stored, inserted, err := d.store.InsertEvent(ctx, e, deliveries)
	if err != nil {
		return nil, err
	}
	if inserted && len(deliveries) > 0 {
		d.notify()
	}
	return stored, nil
}

// GetEvent returns an event with its deliveries (one per endpoint it was
// sent to). ErrNotFound if there is none.
func (d *Dispatcher) GetEvent(ctx context.Context, id string) (*Event, []*Delivery, error) {
	if err := ValidateID("eventID", id); err != nil {
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

// DeleteEventsBefore removes events created before cutoff, with their
// deliveries and attempts, keeping events that still have a delivery in
// progress. It returns how many events it removed. Call it from your own
// retention job.
func (d *Dispatcher) DeleteEventsBefore(ctx context.Context, cutoff time.Time) (int, error) {
	return d.store.DeleteBefore(ctx, cutoff)
}
