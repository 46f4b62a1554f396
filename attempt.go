package convoy

import (
	"context"
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
	// RequestBody is the body sent: the event data, byte for byte.
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

// Success reports whether the attempt got a 2xx response.
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

// ListAttempts returns one page of a delivery's attempts, oldest first, and
// the cursor of the next page. ErrNotFound if the delivery is missing.
func (d *Dispatcher) ListAttempts(ctx context.Context, deliveryID string, page Page) ([]*Attempt, string, error) {
	if err := ValidateID("deliveryID", deliveryID); err != nil {
		return nil, "", err
	}
	return d.store.ListAttempts(ctx, deliveryID, page)
}
