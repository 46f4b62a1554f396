package convoy

import (
	"context"
	"time"
)

// DeliveryStatus is the state of one event's delivery to one endpoint.
//
//	Scheduled ──claim──► Processing ──2xx──────────────► Success
//	    ▲                    │  └──fail, retries left──► Retry ──due──► Processing
//	    │                    └────fail, none left──────► Failure
//	    │   (endpoint inactive when sent or when due) ──► Discarded
//	    └──────────── re-send (Failure, Discarded) ◄─────┘
type DeliveryStatus string

// Delivery states.
const (
	// DeliveryScheduled: waiting for its first attempt, or re-sent.
	DeliveryScheduled DeliveryStatus = "Scheduled"
	// DeliveryProcessing: claimed by a worker under a lease.
	DeliveryProcessing DeliveryStatus = "Processing"
	// DeliverySuccess: an attempt got a 2xx response. Final.
	DeliverySuccess DeliveryStatus = "Success"
	// DeliveryRetry: an attempt failed; the next one is due at NextAttemptAt.
	DeliveryRetry DeliveryStatus = "Retry"
	// DeliveryFailure: retries are exhausted. Final until re-sent.
	DeliveryFailure DeliveryStatus = "Failure"
	// DeliveryDiscarded: the endpoint was inactive; kept to be re-sent.
	DeliveryDiscarded DeliveryStatus = "Discarded"
)

// DeliveryStatuses lists every delivery status.
var DeliveryStatuses = []DeliveryStatus{
	DeliveryScheduled, DeliveryProcessing, DeliverySuccess,
	DeliveryRetry, DeliveryFailure, DeliveryDiscarded,
}

// Valid reports whether s is one of the six delivery statuses.
func (s DeliveryStatus) Valid() bool {
	switch s {
	case DeliveryScheduled, DeliveryProcessing, DeliverySuccess,
		DeliveryRetry, DeliveryFailure, DeliveryDiscarded:
		return true
	}
	return false
}

// Final reports whether s ends the delivery (until it is re-sent).
func (s DeliveryStatus) Final() bool {
	return s == DeliverySuccess || s == DeliveryFailure || s == DeliveryDiscarded
}

// Delivery is one event to one endpoint: the unit of work.
//
// Delivery values returned by a Dispatcher or a Store are copies.
type Delivery struct {
	// ID is a UUIDv7; it is sent as X-Convoy-Delivery-ID and webhook-id and
	// stays the same across retries.
	ID         string
	EventID    string
	AppID      string
	EndpointID string
	// EventType is the event's type, kept here so workers need not load the
	// event to choose headers.
	EventType string
	Status    DeliveryStatus
	// Attempts counts every attempt recorded, across re-sends.
	Attempts int
	// RoundAttempts counts attempts since the delivery was created or last
	// re-sent; the retry strategy looks at this number.
	RoundAttempts int
	// Claims counts claims since the last recorded attempt. A delivery
	// claimed too often without an attempt (its worker keeps crashing) ends
	// in Failure instead of looping.
	Claims int
	// NextAttemptAt is when a Scheduled or Retry delivery is due.
	NextAttemptAt time.Time
	// LeaseOwner names the dispatcher holding a Processing delivery.
	LeaseOwner string
	// LeaseID identifies one claim: recording and releasing must present it
	// (fencing). Empty when not Processing.
	LeaseID string
	// LeaseExpiresAt is when a Processing delivery may be claimed again.
	LeaseExpiresAt time.Time
	// LastError is the error text or status of the latest failed attempt.
	LastError string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DueAt is when the delivery is next claimable: NextAttemptAt for Scheduled
// and Retry, LeaseExpiresAt for Processing. ok is false for final states.
func (d *Delivery) DueAt() (t time.Time, ok bool) {
	switch d.Status {
	case DeliveryScheduled, DeliveryRetry:
		return d.NextAttemptAt, true
	case DeliveryProcessing:
		return d.LeaseExpiresAt, true
	}
	return time.Time{}, false
}

// Validate reports whether d is well formed for insertion.
func (d *Delivery) Validate() error {
	if d == nil {
		return invalid(ErrInvalid, "delivery", "nil")
	}
	for _, f := range [...]struct{ name, id string }{
		{"delivery.ID", d.ID}, {"delivery.EventID", d.EventID},
		{"delivery.AppID", d.AppID}, {"delivery.EndpointID", d.EndpointID},
	} {
		if err := ValidateID(f.name, f.id); err != nil {
			return err
		}
	}
	if !d.Status.Valid() {
		return invalid(ErrInvalidStatus, "delivery.Status", string(d.Status))
	}
	return nil
}

// Clone returns a copy of d.
func (d *Delivery) Clone() *Delivery {
	if d == nil {
		return nil
	}
	c := *d
	return &c
}

// GetDelivery returns the delivery with the ID. ErrNotFound if there is
// none.
func (d *Dispatcher) GetDelivery(ctx context.Context, id string) (*Delivery, error) {
	if err := checkID("deliveryID", &id); err != nil {
		return nil, err
	}
	return d.store.GetDelivery(ctx, id)
}

// ListDeliveries returns one page of the deliveries q selects (by event,
// endpoint or app, optionally by status), newest first, and the cursor of
// the next page ("" at the end).
func (d *Dispatcher) ListDeliveries(ctx context.Context, q DeliveryQuery, page Page) ([]*Delivery, string, error) {
	if q.EventID == "" && q.EndpointID == "" && q.AppID == "" {
		return nil, "", invalid(ErrInvalid, "DeliveryQuery", "set EventID, EndpointID or AppID")
	}
	if q.AppID != "" {
		if err := checkID("AppID", &q.AppID); err != nil {
			return nil, "", err
		}
	}
	if q.EventID != "" {
		if err := checkID("EventID", &q.EventID); err != nil {
			return nil, "", err
		}
	}
	if q.EndpointID != "" {
		if err := checkID("EndpointID", &q.EndpointID); err != nil {
			return nil, "", err
		}
	}
	for _, s := range q.Statuses {
		if !s.Valid() {
			return nil, "", invalid(ErrInvalidStatus, "Statuses", string(s))
		}
	}
	return d.store.ListDeliveries(ctx, q, page)
}

// Resend schedules a delivery that ended Failure or Discarded to be tried
// again now, with a fresh round of retries. If its endpoint is inactive, it
// becomes pending: the next success makes it active again, the next
// delivery that exhausts its retries inactive again. Errors wrap
// ErrInvalidStatus when the delivery is not Failure or Discarded.
func (d *Dispatcher) Resend(ctx context.Context, deliveryID string) error {
	if err := checkID("deliveryID", &deliveryID); err != nil {
		return err
	}
	dl, err := d.store.GetDelivery(ctx, deliveryID)
	if err != nil {
		return err
	}
	if dl.Status != DeliveryFailure && dl.Status != DeliveryDiscarded {
		return invalid(ErrInvalidStatus, "delivery.Status", "only Failure or Discarded deliveries are re-sent")
	}
	if err := d.probation(ctx, dl.EndpointID); err != nil {
		return err
	}
	if _, err := d.store.Requeue(ctx, RequeueRequest{Now: d.clock.Now(), DeliveryID: deliveryID}); err != nil {
		return err
	}
	d.notify()
	return nil
}

// ResendOptions selects what ResendEndpoint re-sends. The zero value
// re-sends every Discarded delivery.
type ResendOptions struct {
	// Statuses to re-send: Discarded and/or Failure. Empty means Discarded.
	Statuses []DeliveryStatus
	// CreatedFrom and CreatedTo, when not zero, bound the deliveries'
	// creation time: From ≤ CreatedAt < To. With both set, From must be
	// before To.
	CreatedFrom time.Time
	CreatedTo   time.Time
}

// ResendEndpoint re-sends an endpoint's Discarded deliveries (or those opts
// selects) and returns how many were scheduled. An inactive endpoint
// becomes pending, as with Resend; an endpoint re-activated by hand stays
// active.
func (d *Dispatcher) ResendEndpoint(ctx context.Context, endpointID string, opts *ResendOptions) (int, error) {
	if err := checkID("endpointID", &endpointID); err != nil {
		return 0, err
	}
	var o ResendOptions
	if opts != nil {
		o = *opts
	}
	for _, s := range o.Statuses {
		if s != DeliveryFailure && s != DeliveryDiscarded {
			return 0, invalid(ErrInvalidStatus, "ResendOptions.Statuses", "only Failure or Discarded")
		}
	}
	if !o.CreatedFrom.IsZero() && !o.CreatedTo.IsZero() && !o.CreatedFrom.Before(o.CreatedTo) {
		// An empty range would still put an inactive endpoint on
		// probation, for nothing to send.
		return 0, invalid(ErrInvalid, "ResendOptions", "CreatedFrom is not before CreatedTo")
	}
	if err := d.probation(ctx, endpointID); err != nil {
		return 0, err
	}
	n, err := d.store.Requeue(ctx, RequeueRequest{
		Now: d.clock.Now(), EndpointID: endpointID, Statuses: o.Statuses,
		CreatedFrom: o.CreatedFrom, CreatedTo: o.CreatedTo,
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		d.notify()
	}
	return n, nil
}

// probation puts an inactive endpoint in pending before re-sending to it.
func (d *Dispatcher) probation(ctx context.Context, endpointID string) error {
	ep, err := d.store.GetEndpoint(ctx, endpointID)
	if err != nil {
		return err
	}
	if ep.Status == EndpointInactive {
		_, err = d.setStatus(ctx, endpointID, EndpointPending, ReasonResend)
	}
	return err
}
