package bolt

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/convoykit/convoy"
)

// Ordered endpoints (Endpoint.Ordered) keep one entry in the due index
// whatever their backlog: their gate, at the key (time + delivery ID)
// where the endpoint's head (its pending delivery with the lowest ID, the
// first of its pending range in bucketEndpointDeliveries) may be handed
// out. The time is the head's own due time, or later while a delivery of
// the endpoint is Processing under a lease that ends later. The other
// pending deliveries have no entry, in bucketDue or bucketParked, so
// Claim, NextDue, Stats and InsertEventClaim step over the whole queue in
// one entry. bucketOrdered maps each ordered endpoint to its gate key
// (noGate when nothing is pending), and bucketOrderedLeases holds the
// lease expiry of each of their Processing deliveries. putDelivery keeps
// both in step in the transactions that change a delivery; the gate then
// costs O(log n + p) per change, for the p deliveries of the endpoint
// Processing (one, but after a crash or a change of Ordered).

// noGate is the value of bucketOrdered for an ordered endpoint with
// nothing pending. It is not empty: within a write transaction bbolt reads
// an empty value just put back as nil, which would read as "not ordered".
var noGate = []byte{'-'}

// gateOf returns the gate key in a value of bucketOrdered, nil for none.
func gateOf(v []byte) []byte {
	if len(v) != timeLen+idLen {
		return nil
	}
	return v
}

// orderedLeaseKey is the key of a Processing delivery of an ordered
// endpoint in bucketOrderedLeases.
func orderedLeaseKey(endpointID, deliveryID string) []byte {
	return join([]byte(endpointID), []byte(deliveryID))
}

// pendingPrefix is the prefix of an endpoint's pending deliveries in
// bucketEndpointDeliveries, in ID order.
func pendingPrefix(endpointID string) []byte {
	return join([]byte(endpointID), []byte{statusClass(convoy.DeliveryScheduled)})
}

// keyTime decodes the time of a key written by timeKey (clamped as
// timeKey clamps).
func keyTime(k []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[:timeLen])^(1<<63))).UTC()
}

// isOrdered reports whether endpointID is ordered, by its entry in
// bucketOrdered.
func (w *wtx) isOrdered(endpointID string) bool {
	return w.Bucket(bucketOrdered).Get([]byte(endpointID)) != nil
}

// orderedIdle reports whether InsertEventClaim may lease a new delivery
// of the endpoint: it is not ordered, or has nothing pending.
func (w *wtx) orderedIdle(endpointID string) bool {
	v := w.Bucket(bucketOrdered).Get([]byte(endpointID))
	return v == nil || gateOf(v) == nil
}

// reorder follows a change of the delivery of an ordered endpoint from old
// (nil when new) to d: its lease entry, then the endpoint's gate.
func reorder(w *wtx, old, d *convoy.Delivery) error {
	if old != nil && old.Status == convoy.DeliveryProcessing {
		if err := w.del(bucketOrderedLeases, orderedLeaseKey(old.EndpointID, old.ID)); err != nil {
			return err
		}
	}
	if d.Status == convoy.DeliveryProcessing {
		if err := w.put(bucketOrderedLeases, orderedLeaseKey(d.EndpointID, d.ID), timeKey(d.LeaseExpiresAt)); err != nil {
			return err
		}
	}
	return regate(w, d.EndpointID)
}

// regate moves the gate of the ordered endpoint to where its head and
// leases put it now.
func regate(w *wtx, endpointID string) error {
	ep := []byte(endpointID)
	old := clone(gateOf(w.Bucket(bucketOrdered).Get(ep)))
	gate, err := gateKey(w, endpointID)
	if err != nil {
		return err
	}
	if bytes.Equal(old, gate) {
		return nil
	}
	if old != nil {
		if err := unschedule(w, endpointID, old); err != nil {
			return err
		}
	}
	if gate == nil {
		return w.put(bucketOrdered, ep, noGate)
	}
	if err := w.put(bucketDue, gate, ep); err != nil {
		return err
	}
	return w.put(bucketOrdered, ep, gate)
}

// gateKey computes the gate of the ordered endpoint, nil when it has
// nothing pending.
func gateKey(w *wtx, endpointID string) ([]byte, error) {
	prefix := pendingPrefix(endpointID)
	k, _ := w.Bucket(bucketEndpointDeliveries).Cursor().Seek(prefix)
	if !hasPrefix(k, prefix) {
		return nil, nil
	}
	head, err := getDelivery(w.Tx, string(k[len(prefix):]))
	if err != nil {
		return nil, err
	}
	due, _ := head.DueAt()
	at := timeKey(due)
	ep := []byte(endpointID)
	c := w.Bucket(bucketOrderedLeases).Cursor()
	for lk, lv := c.Seek(ep); hasPrefix(lk, ep); lk, lv = c.Next() {
		if bytes.Compare(lv, at) > 0 {
			at = clone(lv)
		}
	}
	return append(at, head.ID...), nil
}

// setOrdered turns ordering of the endpoint on or off, moving the due
// entries of its pending deliveries: O(b log n) for a backlog of b.
func setOrdered(w *wtx, endpointID string, on bool) error {
	ep := []byte(endpointID)
	if on {
		if err := w.put(bucketOrdered, ep, noGate); err != nil {
			return err
		}
	} else {
		if gate := clone(gateOf(w.Bucket(bucketOrdered).Get(ep))); gate != nil {
			if err := unschedule(w, endpointID, gate); err != nil {
				return err
			}
		}
		if err := w.del(bucketOrdered, ep); err != nil {
			return err
		}
		if err := deletePrefix(w, bucketOrderedLeases, ep); err != nil {
			return err
		}
	}
	prefix := pendingPrefix(endpointID)
	pos := prefix
	for {
		// Re-seek after every write, as bbolt requires.
		k, _ := w.Bucket(bucketEndpointDeliveries).Cursor().Seek(pos)
		if !hasPrefix(k, prefix) {
			break
		}
		pos = successor(k)
		d, err := getDelivery(w.Tx, string(k[len(prefix):]))
		if err != nil {
			return err
		}
		due, ok := d.DueAt()
		if !ok {
			continue
		}
		dk := dueKey(due, d.ID)
		if !on {
			if err := w.put(bucketDue, dk, ep); err != nil {
				return err
			}
			continue
		}
		if err := unschedule(w, endpointID, dk); err != nil {
			return err
		}
		if d.Status == convoy.DeliveryProcessing {
			if err := w.put(bucketOrderedLeases, orderedLeaseKey(endpointID, d.ID), timeKey(d.LeaseExpiresAt)); err != nil {
				return err
			}
		}
	}
	if on {
		return regate(w, endpointID)
	}
	return nil
}

// dropOrdered removes the ordering bookkeeping of an endpoint that is
// being deleted, so that deleting its deliveries does not move its gate.
func dropOrdered(w *wtx, endpointID string) error {
	ep := []byte(endpointID)
	v := w.Bucket(bucketOrdered).Get(ep)
	if v == nil {
		return nil
	}
	if gate := clone(gateOf(v)); gate != nil {
		if err := unschedule(w, endpointID, gate); err != nil {
			return err
		}
	}
	if err := w.del(bucketOrdered, ep); err != nil {
		return err
	}
	return deletePrefix(w, bucketOrderedLeases, ep)
}
