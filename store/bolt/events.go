package bolt

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/convoykit/convoy"
	bbolt "go.etcd.io/bbolt"
)

// InsertEvent stores an event and its deliveries in one transaction, with
// the index entries that make each Scheduled delivery due at its
// NextAttemptAt. When the event's IdempotencyKey was already used by an
// event of the same app it stores nothing and returns that first event with
// inserted false. Errors wrap ErrInvalid for input that does not validate
// or a delivery that does not belong to the event (or whose endpoint
// belongs to another app), ErrNotFound for a missing app or endpoint, and
// ErrDuplicate for an ID that exists.
func (s *Store) InsertEvent(ctx context.Context, ev *convoy.Event, deliveries []*convoy.Delivery) (*convoy.Event, bool, error) {
	if err := ev.Validate(0); err != nil {
		return nil, false, err
	}
	seen := make(map[string]bool, len(deliveries))
	encs := make([][]byte, len(deliveries))
	for i, d := range deliveries {
		if err := d.Validate(); err != nil {
			return nil, false, err
		}
		if d.EventID != ev.ID || d.AppID != ev.AppID {
			return nil, false, fmt.Errorf("%w: delivery %s does not belong to event %s", convoy.ErrInvalid, d.ID, ev.ID)
		}
		if d.Status == convoy.DeliveryProcessing {
			return nil, false, fmt.Errorf("%w: delivery %s inserted as Processing (only Claim leases)", convoy.ErrInvalidStatus, d.ID)
		}
		if seen[d.ID] {
			return nil, false, duplicate("delivery", d.ID)
		}
		seen[d.ID] = true
		enc, err := encodeDelivery(d)
		if err != nil {
			return nil, false, err
		}
		encs[i] = enc
	}
	ev = ev.Clone()
	ds := make([]*convoy.Delivery, len(deliveries))
	for i, d := range deliveries {
		ds[i] = d.Clone()
	}
	evEnc, err := encodeEvent(ev)
	if err != nil {
		return nil, false, err
	}

	var (
		stored   *convoy.Event
		inserted bool
	)
	err = s.write(ctx, func(w *wtx) error {
		stored, inserted = nil, false
		if !has(w.Tx, bucketApps, ev.AppID) {
			return notFound("app", ev.AppID)
		}
		var idemKey []byte
		if ev.IdempotencyKey != "" {
			idemKey = join([]byte(ev.AppID), []byte(ev.IdempotencyKey))
			if id := w.Bucket(bucketIdempotency).Get(idemKey); id != nil {
				first, err := getEvent(w.Tx, string(id))
				if err != nil {
					return err
				}
				stored = first
				return nil
			}
		}
		if has(w.Tx, bucketEvents, ev.ID) {
			return duplicate("event", ev.ID)
		}
		for _, d := range ds {
			// The app's index entry exists exactly when the endpoint exists
			// and belongs to the app.
			if !has(w.Tx, bucketAppEndpoints, ev.AppID+d.EndpointID) {
				if !has(w.Tx, bucketEndpoints, d.EndpointID) {
					return notFound("endpoint", d.EndpointID)
				}
				return fmt.Errorf("%w: endpoint %s does not belong to app %s", convoy.ErrInvalid, d.EndpointID, ev.AppID)
			}
			if has(w.Tx, bucketDeliveries, d.ID) {
				return duplicate("delivery", d.ID)
			}
		}

		id := []byte(ev.ID)
		if err := w.put(bucketEvents, id, evEnc); err != nil {
			return err
		}
		if err := w.put(bucketAppEvents, join([]byte(ev.AppID), id), nil); err != nil {
			return err
		}
		if err := w.put(bucketEventCreated, join(timeKey(ev.CreatedAt), id), nil); err != nil {
			return err
		}
		if idemKey != nil {
			if err := w.put(bucketIdempotency, idemKey, id); err != nil {
				return err
			}
		}
		for i, d := range ds {
			if err := putDelivery(w, nil, d, encs[i]); err != nil {
				return err
			}
		}
		stored, inserted = ev.Clone(), true
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return stored, inserted, nil
}

// GetEvent returns the event with the ID, or an error wrapping ErrNotFound.
func (s *Store) GetEvent(ctx context.Context, id string) (*convoy.Event, error) {
	if err := convoy.ValidateID("event ID", id); err != nil {
		return nil, err
	}
	var ev *convoy.Event
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		ev, err = getEvent(tx, id)
		return err
	})
	return ev, err
}

// GetDelivery returns the delivery with the ID, or an error wrapping
// ErrNotFound.
func (s *Store) GetDelivery(ctx context.Context, id string) (*convoy.Delivery, error) {
	if err := convoy.ValidateID("delivery ID", id); err != nil {
		return nil, err
	}
	var d *convoy.Delivery
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		d, err = getDelivery(tx, id)
		return err
	})
	return d, err
}

// ListDeliveries lists deliveries matching q in ID order, a page at a time.
// With an EventID it walks the event's deliveries; with only an
// EndpointID it merges the endpoint's index ranges of the wanted statuses:
// one per final status, one for the pending ones (Scheduled, Processing,
// Retry), so deliveries of unwanted final states are not read. A query without EventID and
// EndpointID, or with an unknown status, is an error wrapping ErrInvalid.
// An unknown event or endpoint lists nothing.
func (s *Store) ListDeliveries(ctx context.Context, q convoy.DeliveryQuery, page convoy.Page) ([]*convoy.Delivery, string, error) {
	if q.EventID == "" && q.EndpointID == "" {
		return nil, "", fmt.Errorf("%w: delivery query needs an EventID or an EndpointID", convoy.ErrInvalid)
	}
	if q.EventID != "" {
		if err := convoy.ValidateID("event ID", q.EventID); err != nil {
			return nil, "", err
		}
	}
	if q.EndpointID != "" {
		if err := convoy.ValidateID("endpoint ID", q.EndpointID); err != nil {
			return nil, "", err
		}
	}
	want := make(map[convoy.DeliveryStatus]bool, len(q.Statuses))
	for _, st := range q.Statuses {
		if !st.Valid() {
			return nil, "", fmt.Errorf("%w: %q", convoy.ErrInvalidStatus, st)
		}
		want[st] = true
	}
	keep := func(d *convoy.Delivery) bool {
		return (len(want) == 0 || want[d.Status]) && (q.EndpointID == "" || d.EndpointID == q.EndpointID)
	}
	limit := page.Size()
	var (
		out  []*convoy.Delivery
		next string
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		out, next = nil, ""
		if q.EventID != "" {
			prefix := []byte(q.EventID)
			c := tx.Bucket(bucketEventDeliveries).Cursor()
			start := join(prefix, []byte(page.Cursor))
			k, _ := c.Seek(start)
			if page.Cursor != "" && bytes.Equal(k, start) {
				k, _ = c.Next()
			}
			for ; hasPrefix(k, prefix); k, _ = c.Next() {
				d, err := getDelivery(tx, string(k[idLen:]))
				if err != nil {
					return err
				}
				if !keep(d) {
					continue
				}
				if len(out) == limit {
					next = out[len(out)-1].ID
					return nil
				}
				out = append(out, d)
			}
			return nil
		}
		statuses := q.Statuses
		if len(statuses) == 0 {
			statuses = convoy.DeliveryStatuses
		}
		var prefixes [][]byte
		done := map[byte]bool{}
		for _, st := range statuses {
			if c := statusClass(st); !done[c] {
				done[c] = true
				prefixes = append(prefixes, join([]byte(q.EndpointID), []byte{c}))
			}
		}
		return mergeWalk(tx.Bucket(bucketEndpointDeliveries), prefixes, page.Cursor, func(id string) (bool, error) {
			d, err := getDelivery(tx, id)
			if err != nil {
				return false, err
			}
			if !keep(d) {
				return true, nil
			}
			if len(out) == limit {
				next = out[len(out)-1].ID
				return false, nil
			}
			out = append(out, d)
			return true, nil
		})
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// ListAttempts lists a delivery's attempts ordered by Number (then ID), a
// page at a time. ErrNotFound if the delivery is missing.
func (s *Store) ListAttempts(ctx context.Context, deliveryID string, page convoy.Page) ([]*convoy.Attempt, string, error) {
	if err := convoy.ValidateID("delivery ID", deliveryID); err != nil {
		return nil, "", err
	}
	var after string
	if page.Cursor != "" {
		num, id, ok := strings.Cut(page.Cursor, "/")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 0 {
			return nil, "", fmt.Errorf("%w: bad attempts cursor %q", convoy.ErrInvalid, page.Cursor)
		}
		after = string(attemptKey("", n, id)[idLen:])
	}
	var (
		out  []*convoy.Attempt
		next string
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		out, next = nil, ""
		if !has(tx, bucketDeliveries, deliveryID) {
			return notFound("delivery", deliveryID)
		}
		p := convoy.Page{Cursor: after, Limit: page.Limit}
		return walkPage(tx.Bucket(bucketAttempts), []byte(deliveryID), p, func(_, v []byte) (string, error) {
			a, err := decodeAttempt(v)
			if err != nil {
				return "", err
			}
			out = append(out, a)
			return strconv.Itoa(a.Number) + "/" + a.ID, nil
		}, &next)
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}
