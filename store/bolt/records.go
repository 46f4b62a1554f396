package bolt

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/convoykit/convoy"
	bbolt "go.etcd.io/bbolt"
)

// Read helpers work in any transaction; write helpers need the batch's wtx.

func getApp(tx *bbolt.Tx, id string) (*convoy.App, error) {
	v := tx.Bucket(bucketApps).Get([]byte(id))
	if v == nil {
		return nil, notFound("app", id)
	}
	return decodeApp(v)
}

func getEndpoint(tx *bbolt.Tx, id string) (*convoy.Endpoint, error) {
	v := tx.Bucket(bucketEndpoints).Get([]byte(id))
	if v == nil {
		return nil, notFound("endpoint", id)
	}
	return decodeEndpoint(v)
}

func getEvent(tx *bbolt.Tx, id string) (*convoy.Event, error) {
	v := tx.Bucket(bucketEvents).Get([]byte(id))
	if v == nil {
		return nil, notFound("event", id)
	}
	return decodeEvent(v)
}

// getEventMeta is getEvent without the event's Data.
func getEventMeta(tx *bbolt.Tx, id string) (*convoy.Event, error) {
	v := tx.Bucket(bucketEvents).Get([]byte(id))
	if v == nil {
		return nil, notFound("event", id)
	}
	return decodeEventMeta(v)
}

func getDelivery(tx *bbolt.Tx, id string) (*convoy.Delivery, error) {
	v := tx.Bucket(bucketDeliveries).Get([]byte(id))
	if v == nil {
		return nil, notFound("delivery", id)
	}
	return decodeDelivery(v)
}

// seekKey moves c to k, or to the key after it, and returns that key.
func seekKey(c *bbolt.Cursor, k []byte) []byte {
	ck, _ := c.Seek(k)
	return ck
}

func has(tx *bbolt.Tx, bucket []byte, key string) bool {
	return tx.Bucket(bucket).Get([]byte(key)) != nil
}

// putDelivery stores d, whose stored version is old (nil for a new
// delivery), and moves its index entries to match: the endpoint and app
// indexes by status class, the due index (for an ordered endpoint, its
// gate), and for a new delivery the event index. d must already be
// encoded as enc.
func putDelivery(w *wtx, old, d *convoy.Delivery, enc []byte) error {
	if err := w.put(bucketDeliveries, []byte(d.ID), enc); err != nil {
		return err
	}
	if old == nil {
		if err := w.put(bucketEventDeliveries, join([]byte(d.EventID), []byte(d.ID)), nil); err != nil {
			return err
		}
	}
	if old == nil || statusClass(old.Status) != statusClass(d.Status) {
		if old != nil {
			if err := w.del(bucketEndpointDeliveries, endpointDeliveryKey(old.EndpointID, old.Status, old.ID)); err != nil {
				return err
			}
			if err := w.del(bucketAppDeliveries, appDeliveryKey(old.AppID, old.Status, old.ID)); err != nil {
				return err
			}
		}
		if err := w.put(bucketEndpointDeliveries, endpointDeliveryKey(d.EndpointID, d.Status, d.ID), nil); err != nil {
			return err
		}
		if err := w.put(bucketAppDeliveries, appDeliveryKey(d.AppID, d.Status, d.ID), nil); err != nil {
			return err
		}
	}
	if old == nil || old.Status != d.Status {
		if old != nil {
			w.count(countDelivery+string(old.Status), -1)
		}
		w.count(countDelivery+string(d.Status), 1)
	}
	if w.isOrdered(d.EndpointID) {
		return reorder(w, old, d)
	}
	var oldKey, newKey []byte
	if old != nil {
		if t, ok := old.DueAt(); ok {
			oldKey = dueKey(t, old.ID)
		}
	}
	if t, ok := d.DueAt(); ok {
		newKey = dueKey(t, d.ID)
	}
	if bytes.Equal(oldKey, newKey) {
		return nil // unchanged, parked or not
	}
	if oldKey != nil {
		if err := unschedule(w, old.EndpointID, oldKey); err != nil {
			return err
		}
	}
	if newKey != nil {
		return w.put(bucketDue, newKey, []byte(d.EndpointID))
	}
	return nil
}

// unschedule removes the entry k (due time + delivery ID) of a delivery of
// the endpoint from the due index, or from the parked entries if it is
// there.
func unschedule(w *wtx, endpointID string, k []byte) error {
	// One seek to find and delete the entry.
	if c := w.Bucket(bucketDue).Cursor(); bytes.Equal(seekKey(c, k), k) {
		w.dirty = true
		if err := c.Delete(); err != nil {
			return fmt.Errorf("convoy: bolt: delete in %s: %w", bucketDue, err)
		}
		return nil
	}
	pk := parkedKey(endpointID, k)
	if w.Bucket(bucketParked).Get(pk) == nil {
		return nil
	}
	if err := w.del(bucketParked, pk); err != nil {
		return err
	}
	return fixParkedHead(w, endpointID, k[:timeLen], nil)
}

// park moves the due-index entry k of a delivery of the endpoint to the
// parked entries.
func park(w *wtx, endpointID string, k []byte) error {
	if err := w.del(bucketDue, k); err != nil {
		return err
	}
	if err := w.put(bucketParked, parkedKey(endpointID, k), nil); err != nil {
		return err
	}
	return fixParkedHead(w, endpointID, nil, k[:timeLen])
}

// fixParkedHead makes the endpoint's entry in bucketParkedHeads match the
// time of its earliest parked entry (removing it when there is none),
// after an entry at time removed (nil for none) left bucketParked and one
// at time added (nil for none) entered it. The parked entries are read
// only when the one removed may have been the earliest.
func fixParkedHead(w *wtx, endpointID string, removed, added []byte) error {
	ep := []byte(endpointID)
	old := clone(w.Bucket(bucketParkedHead).Get(ep))
	var head []byte
	switch {
	case old == nil && added != nil:
		head = added
	case old == nil || removed != nil && bytes.Equal(removed, old):
		if k, _ := w.Bucket(bucketParked).Cursor().Seek(ep); hasPrefix(k, ep) {
			head = clone(k[idLen : idLen+timeLen])
		}
	case added != nil && bytes.Compare(added, old) < 0:
		head = added
	default:
		head = old
	}
	if bytes.Equal(old, head) {
		return nil
	}
	if old != nil {
		if err := w.del(bucketParkedHeads, join(old, ep)); err != nil {
			return err
		}
	}
	if head == nil {
		return w.del(bucketParkedHead, ep)
	}
	if err := w.put(bucketParkedHeads, join(head, ep), nil); err != nil {
		return err
	}
	return w.put(bucketParkedHead, ep, head)
}

// deleteDelivery removes a delivery, its attempts and its index entries.
func deleteDelivery(w *wtx, id string) error {
	d, err := getDelivery(w.Tx, id)
	if err != nil {
		return err
	}
	return deleteDeliveryRecord(w, d)
}

// deleteDeliveryRecord removes the stored delivery d, its attempts and its
// index entries.
func deleteDeliveryRecord(w *wtx, d *convoy.Delivery) error {
	return deleteDeliveryKeys(w, d, prefixKeys(w.Tx, bucketAttempts, []byte(d.ID)))
}

// deleteDeliveryKeys removes the stored delivery d, its attempts, whose
// keys are attempts, and its index entries.
func deleteDeliveryKeys(w *wtx, d *convoy.Delivery, attempts [][]byte) error {
	for _, k := range attempts {
		if err := w.del(bucketAttempts, k); err != nil {
			return err
		}
	}
	if t, ok := d.DueAt(); ok {
		if err := unschedule(w, d.EndpointID, dueKey(t, d.ID)); err != nil {
			return err
		}
	}
	if err := w.del(bucketEndpointDeliveries, endpointDeliveryKey(d.EndpointID, d.Status, d.ID)); err != nil {
		return err
	}
	if err := w.del(bucketAppDeliveries, appDeliveryKey(d.AppID, d.Status, d.ID)); err != nil {
		return err
	}
	w.count(countDelivery+string(d.Status), -1)
	if err := w.del(bucketEventDeliveries, join([]byte(d.EventID), []byte(d.ID))); err != nil {
		return err
	}
	if err := w.del(bucketDeliveries, []byte(d.ID)); err != nil {
		return err
	}
	if !d.Status.Final() && w.isOrdered(d.EndpointID) {
		if d.Status == convoy.DeliveryProcessing {
			if err := w.del(bucketOrderedLeases, orderedLeaseKey(d.EndpointID, d.ID)); err != nil {
				return err
			}
		}
		return regate(w, d.EndpointID)
	}
	return nil
}

// eventDeliveryRecords returns the deliveries of an event, in ID order,
// and the keys of the event's index entries whose delivery is missing.
func eventDeliveryRecords(tx *bbolt.Tx, eventID string) (ds []*convoy.Delivery, stale [][]byte, err error) {
	prefix := []byte(eventID)
	c := tx.Bucket(bucketEventDeliveries).Cursor()
	for k, _ := c.Seek(prefix); hasPrefix(k, prefix); k, _ = c.Next() {
		v := tx.Bucket(bucketDeliveries).Get(k[idLen:])
		if v == nil {
			stale = append(stale, clone(k))
			continue
		}
		d, err := decodeDelivery(v)
		if err != nil {
			return nil, nil, err
		}
		ds = append(ds, d)
	}
	return ds, stale, nil
}

// deleteEvent removes an event with its deliveries, their attempts, and
// every index entry of the event.
func deleteEvent(w *wtx, ev *convoy.Event) error {
	ds, stale, err := eventDeliveryRecords(w.Tx, ev.ID)
	if err != nil {
		return err
	}
	return deleteEventRecords(w, ev, ds, stale)
}

// deleteEventRecords removes the stored event ev, its deliveries ds (as
// eventDeliveryRecords returned them, with stale) with their attempts,
// and every index entry of the event. ev needs no Data.
func deleteEventRecords(w *wtx, ev *convoy.Event, ds []*convoy.Delivery, stale [][]byte) error {
	for _, d := range ds {
		if err := deleteDeliveryRecord(w, d); err != nil {
			return err
		}
	}
	return deleteEventKeys(w, ev, stale)
}

// deleteEventKeys removes the stored event ev, whose deliveries are gone,
// its stale entries in bucketEventDeliveries and its other index entries.
func deleteEventKeys(w *wtx, ev *convoy.Event, stale [][]byte) error {
	for _, k := range stale {
		if err := w.del(bucketEventDeliveries, k); err != nil {
			return err
		}
	}
	if ev.IdempotencyKey != "" {
		k := join([]byte(ev.AppID), []byte(ev.IdempotencyKey))
		if string(w.Bucket(bucketIdempotency).Get(k)) == ev.ID {
			if err := w.del(bucketIdempotency, k); err != nil {
				return err
			}
		}
	}
	for _, ik := range eventIndexKeys(ev) {
		if err := w.del(ik.bucket, ik.key); err != nil {
			return err
		}
	}
	return w.del(bucketEvents, []byte(ev.ID))
}

// putEvent stores a new event, encoded as enc, with its entries in the
// creation-time indexes.
func putEvent(w *wtx, ev *convoy.Event, enc []byte) error {
	if err := w.put(bucketEvents, []byte(ev.ID), enc); err != nil {
		return err
	}
	for _, ik := range eventIndexKeys(ev) {
		if err := w.put(ik.bucket, ik.key, nil); err != nil {
			return err
		}
	}
	return nil
}

// deleteEndpoint removes an endpoint with its deliveries and their
// attempts.
func deleteEndpoint(w *wtx, ep *convoy.Endpoint) error {
	if err := dropOrdered(w, ep.ID); err != nil {
		return err
	}
	if err := eachKeyDeleting(w, bucketEndpointDeliveries, []byte(ep.ID), func(k []byte) error {
		return deleteIndexed(w, bucketEndpointDeliveries, k, string(k[idLen+1:]))
	}); err != nil {
		return err
	}
	if err := w.del(bucketAppEndpoints, join([]byte(ep.AppID), []byte(ep.ID))); err != nil {
		return err
	}
	w.count(countEndpoint+string(ep.Status), -1)
	return w.del(bucketEndpoints, []byte(ep.ID))
}

// deleteIndexed deletes the delivery that index key k of bucket names, and
// k itself even if it was stale (so that a walk deleting keys ends).
func deleteIndexed(w *wtx, bucket, k []byte, deliveryID string) error {
	if err := deleteDelivery(w, deliveryID); err != nil && !errors.Is(err, convoy.ErrNotFound) {
		return err
	}
	return w.del(bucket, k)
}

// eachKeyDeleting calls fn with a copy of each key of bucket that starts
// with prefix, where fn deletes that key (among other writes). The cursor
// is positioned afresh after each call, as bbolt requires after a write,
// so memory does not grow with the number of keys.
func eachKeyDeleting(w *wtx, bucket, prefix []byte, fn func(k []byte) error) error {
	for {
		k, _ := w.Bucket(bucket).Cursor().Seek(prefix)
		if !hasPrefix(k, prefix) {
			return nil
		}
		if err := fn(clone(k)); err != nil {
			return err
		}
	}
}

// prefixKeys returns copies of the keys of bucket that start with prefix,
// for a caller that deletes them (a cursor does not survive a write).
func prefixKeys(tx *bbolt.Tx, bucket, prefix []byte) [][]byte {
	var out [][]byte
	c := tx.Bucket(bucket).Cursor()
	for k, _ := c.Seek(prefix); hasPrefix(k, prefix); k, _ = c.Next() {
		out = append(out, clone(k))
	}
	return out
}

// deletePrefix deletes every key of bucket that starts with prefix.
func deletePrefix(w *wtx, bucket, prefix []byte) error {
	return eachKeyDeleting(w, bucket, prefix, func(k []byte) error {
		return w.del(bucket, k)
	})
}
