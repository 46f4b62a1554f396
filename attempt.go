package convoy

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Attempt is the record of one HTTP try of a delivery: what was sent and
// what came back. Every attempt is kept.
//
// Attempt values returned by a Dispatcher or a Store are copies.
type Attempt struct {
	// ID is a UUIDv7.
	ID         string
	DeliveryID string
	EventID    string
	EndpointID string
	// Number is the attempt's 1-based position among the delivery's
	// attempts.
	Number int
	// URL and Method of the request.
	URL    string
	Method string
	// RequestHeaders as sent, signature included.
	RequestHeaders http.Header
	// RequestBody is the body sent: the event data, byte for byte. Stores
	// do not keep a copy per attempt (the event holds it); the
	// Dispatcher's ListAttempts and LastAttempt fill it in from the event.
	RequestBody []byte
	// StatusCode is the response status, 0 when no response came.
	StatusCode int
	// ResponseHeaders as received.
	ResponseHeaders http.Header
	// ResponseBody is the start of the response body, up to the
	// dispatcher's keep limit.
	ResponseBody []byte
	// ResponseTruncated reports that the body was longer than what was kept.
	ResponseTruncated bool
	// Error describes why the attempt failed: a transport error or an
	// unsuccessful status. Empty on success.
	Error string
	// RemoteIP is the address the request was sent to, when known.
	RemoteIP string
	// StartedAt is when the request began; Duration how long it took.
	StartedAt time.Time
	Duration  time.Duration
}

// Success reports whether the attempt got a 2xx response and read it
// without error: a 2xx whose body was cut off (by Timeout, or a reset) is
// a failure, with its StatusCode kept.
func (a *Attempt) Success() bool {
	return a.Error == "" && a.StatusCode >= 200 && a.StatusCode < 300
}

// Validate reports whether a is well formed for recording.
func (a *Attempt) Validate() error {
	if a == nil {
		return invalid(ErrInvalid, "attempt", "nil")
	}
	if err := ValidateID("attempt.ID", a.ID); err != nil {
		return err
	}
	if err := ValidateID("attempt.DeliveryID", a.DeliveryID); err != nil {
		return err
	}
	if a.Number < 1 {
		return invalid(ErrInvalid, "attempt.Number", "must be positive")
	}
	return nil
}

// Clone returns a deep copy of a.
func (a *Attempt) Clone() *Attempt {
	if a == nil {
		return nil
	}
	c := *a
	c.RequestHeaders = a.RequestHeaders.Clone()
	c.ResponseHeaders = a.ResponseHeaders.Clone()
	c.RequestBody = cloneBytes(a.RequestBody)
	c.ResponseBody = cloneBytes(a.ResponseBody)
	return &c
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// ListAttempts returns one page of a delivery's attempts, newest first,
// and the cursor of the next page. ErrNotFound if the delivery is missing.
func (d *Dispatcher) ListAttempts(ctx context.Context, deliveryID string, page Page) ([]*Attempt, string, error) {
	if err := checkID("deliveryID", &deliveryID); err != nil {
		return nil, "", err
	}
	as, next, err := d.store.ListAttempts(ctx, deliveryID, page)
	if err != nil {
		return nil, "", err
	}
	if err := d.fillBodies(ctx, as); err != nil {
		return nil, "", err
	}
	return as, next, nil
}

// LastAttempt returns the latest attempt of a delivery, or ErrNotFound if
// the delivery is missing or has no attempt yet.
func (d *Dispatcher) LastAttempt(ctx context.Context, deliveryID string) (*Attempt, error) {
	as, _, err := d.ListAttempts(ctx, deliveryID, Page{Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		return nil, fmt.Errorf("%w: delivery %s has no attempt", ErrNotFound, deliveryID)
	}
	return as[0], nil
}

// fillBodies sets the RequestBody of attempts stored without one: the body
// sent was the event's data, byte for byte.
func (d *Dispatcher) fillBodies(ctx context.Context, as []*Attempt) error {
	var ev *Event
	for _, a := range as {
		if a.RequestBody != nil {
			continue
		}
		if ev == nil || ev.ID != a.EventID {
			var err error
			if ev, err = d.store.GetEvent(ctx, a.EventID); err != nil {
				return fmt.Errorf("convoy: attempt body: %w", err)
			}
		}
		a.RequestBody = cloneBytes(ev.Data)
	}
	return nil
}
