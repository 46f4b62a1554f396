package convoy

import (
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
