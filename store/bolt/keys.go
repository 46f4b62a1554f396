package bolt

import (
	"bytes"
	"encoding/binary"
	"math"
	"time"

	"github.com/convoykit/convoy"
)

// Bucket names. Every record bucket is keyed by the record's ID (36 bytes of
// canonical UUID text, so composite keys split at fixed offsets); index
// buckets hold composite keys with empty values unless noted.
var (
	// bucketMeta holds the schema version under keySchema.
	bucketMeta = []byte("meta")

	bucketApps       = []byte("apps")       // appID → app
	bucketEndpoints  = []byte("endpoints")  // endpointID → endpoint
	bucketEvents     = []byte("events")     // eventID → event
	bucketDeliveries = []byte("deliveries") // deliveryID → delivery
	// bucketAttempts: deliveryID + 8-byte big-endian Number + attemptID →
	// attempt.
	bucketAttempts = []byte("attempts")

	// bucketAppEndpoints: appID + endpointID.
	bucketAppEndpoints = []byte("idx_app_endpoints")
	// bucketIdempotency: appID + idempotency key → eventID.
	bucketIdempotency = []byte("idx_idempotency")
	// bucketEventCreated: 8-byte created time + eventID: every event,
	// for ListEvents and DeleteBefore.
	bucketEventCreated = []byte("idx_event_created")
	// bucketAppEventCreated: appID + 8-byte created time + eventID: an
	// app's events, for ListEvents and DeleteApp.
	bucketAppEventCreated = []byte("idx_app_event_created")
	// bucketTypeEventCreated: type + 0x00 + 8-byte created time + eventID
	// (see typePrefix).
	bucketTypeEventCreated = []byte("idx_type_event_created")
	// bucketAppTypeEventCreated: appID + type + 0x00 + 8-byte created time
	// + eventID.
	bucketAppTypeEventCreated = []byte("idx_app_type_event_created")
	// bucketEventDeliveries: eventID + deliveryID.
	bucketEventDeliveries = []byte("idx_event_deliveries")
	// bucketEndpointDeliveries: endpointID + 1-byte status class (see
	// statusClass) + deliveryID.
	bucketEndpointDeliveries = []byte("idx_endpoint_deliveries")
	// bucketAppDeliveries: appID + 1-byte status class + deliveryID, for
	// an app's deliveries across its endpoints.
	bucketAppDeliveries = []byte("idx_app_deliveries")
	// bucketDue: 8-byte due time + deliveryID → endpointID. It holds every
	// Scheduled or Retry delivery at its NextAttemptAt and every Processing
	// delivery at its LeaseExpiresAt, except those parked and those of
	// ordered endpoints, which have their gate here instead.
	bucketDue = []byte("idx_due")
	// bucketParked: endpointID + 8-byte due time + deliveryID: entries that
	// a Claim found due but passed over because their endpoint was at its
	// cap, moved out of bucketDue so that later Claims step over the
	// endpoint in one move. A pending delivery has exactly one entry, in
	// bucketDue or here.
	bucketParked = []byte("idx_parked")
	// bucketParkedHeads: 8-byte time + endpointID, one entry per endpoint
	// with parked entries, at the time of its earliest one.
	bucketParkedHeads = []byte("idx_parked_heads")
	// bucketParkedHead: endpointID → the 8-byte time of its entry in
	// bucketParkedHeads.
	bucketParkedHead = []byte("idx_parked_head")
	// bucketOrdered: endpointID → the due-index key of the endpoint's
	// gate, or noGate, for every ordered endpoint (see ordered.go). An
	// ordered endpoint's pending deliveries have no due or parked entry
	// of their own; the gate stands for them all.
	bucketOrdered = []byte("idx_ordered")
	// bucketOrderedLeases: endpointID + deliveryID → 8-byte lease expiry,
	// for every Processing delivery of an ordered endpoint.
	bucketOrderedLeases = []byte("idx_ordered_leases")

	// bucketCounts: "d:" + delivery status or "e:" + endpoint status → 8-byte
	// big-endian count of the records in that status, kept in the same
	// transactions that change them.
	bucketCounts = []byte("counts")

	allBuckets = [][]byte{
		bucketApps, bucketEndpoints, bucketEvents, bucketDeliveries, bucketAttempts,
		bucketAppEndpoints, bucketIdempotency, bucketEventCreated,
		bucketAppEventCreated, bucketTypeEventCreated, bucketAppTypeEventCreated,
		bucketEventDeliveries, bucketEndpointDeliveries, bucketAppDeliveries, bucketDue,
		bucketParked, bucketParkedHeads, bucketParkedHead, bucketOrdered, bucketOrderedLeases,
		bucketCounts,
	}

	// appendBuckets take new keys mostly at the end of a few ranges (keys
	// led by time-ordered IDs or times, under a prefix that has few
	// values), so their pages are filled to appendFill before they split
	// instead of bbolt's default half.
	appendBuckets = [][]byte{
		bucketEvents, bucketDeliveries, bucketAttempts, bucketEventCreated,
		bucketAppEventCreated, bucketTypeEventCreated, bucketAppTypeEventCreated,
		bucketEventDeliveries, bucketEndpointDeliveries, bucketAppDeliveries,
	}

	keySchema = []byte("schema")
)

// appendFill is the bbolt FillPercent of appendBuckets.
const appendFill = 0.9

// idLen is the length of a canonical UUID in text form; every ID that
// reaches a composite key has been checked with convoy.ValidateID.
const idLen = 36

// timeLen is the length of an encoded time in a key.
const timeLen = 8

var (
	minKeyTime = time.Unix(0, math.MinInt64)
	maxKeyTime = time.Unix(0, math.MaxInt64)
)

// timeKey encodes t as 8 big-endian bytes that sort like the times: its
// Unix nanoseconds with the sign bit flipped, so times before 1970 sort
// first. Times outside the int64 nanosecond range (before 1678 or after
// 2262, the zero time among them) are clamped to its ends.
func timeKey(t time.Time) []byte {
	var n int64
	switch {
	case t.Before(minKeyTime):
		n = math.MinInt64
	case t.After(maxKeyTime):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	b := make([]byte, timeLen, timeLen+idLen)
	binary.BigEndian.PutUint64(b, uint64(n)^(1<<63))
	return b
}

// join returns a new slice holding the parts one after the other. Keys given
// to bbolt must stay valid for the whole transaction, so keys are never
// built in reused buffers.
func join(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// eventKey is the suffix of an event's keys in the creation-time indexes:
// its created time, then its ID, so that the keys under one prefix sort
// by (CreatedAt, ID).
func eventKey(ev *convoy.Event) []byte {
	return append(timeKey(ev.CreatedAt), ev.ID...)
}

// typePrefix is the prefix of an event type's keys in the type indexes:
// the type and a zero byte. Types are made of [a-zA-Z0-9_.-], so the zero
// byte ends the prefix of exactly one type: "order" + 0x00 sorts before,
// and is no prefix of, "order.paid" + 0x00.
func typePrefix(eventType string) []byte {
	return append([]byte(eventType), 0)
}

// eventIndexKeys returns the key of ev in each creation-time index, by
// bucket.
func eventIndexKeys(ev *convoy.Event) [4]struct{ bucket, key []byte } {
	k := eventKey(ev)
	app, typ := []byte(ev.AppID), typePrefix(ev.Type)
	return [4]struct{ bucket, key []byte }{
		{bucketEventCreated, k},
		{bucketAppEventCreated, join(app, k)},
		{bucketTypeEventCreated, join(typ, k)},
		{bucketAppTypeEventCreated, join(app, typ, k)},
	}
}

// dueKey is the due-index key of a delivery due at t.
func dueKey(t time.Time, deliveryID string) []byte {
	return append(timeKey(t), deliveryID...)
}

// attemptKey is the key of a delivery's attempt: attempts sort by Number,
// then ID.
func attemptKey(deliveryID string, n int, attemptID string) []byte {
	b := make([]byte, idLen+8, 2*idLen+8)
	copy(b, deliveryID)
	binary.BigEndian.PutUint64(b[idLen:], uint64(n))
	return append(b, attemptID...)
}

// parkedKey is the key of a parked entry: the due-index key k (time +
// deliveryID) under the endpoint's ID.
func parkedKey(endpointID string, k []byte) []byte {
	return join([]byte(endpointID), k)
}

// statusClass groups delivery statuses in the endpoint index. The pending
// ones (Scheduled, Processing, Retry) share one range, so that claiming,
// releasing and retrying do not move a delivery's entry there; each final
// status has its own range, so re-sending finds Failure and Discarded
// deliveries without reading the others.
func statusClass(s convoy.DeliveryStatus) byte {
	switch s {
	case convoy.DeliveryScheduled, convoy.DeliveryProcessing, convoy.DeliveryRetry:
		return 'p'
	case convoy.DeliverySuccess:
		return 's'
	case convoy.DeliveryFailure:
		return 'f'
	case convoy.DeliveryDiscarded:
		return 'd'
	}
	return 0
}

// endpointDeliveryKey is the key of a delivery in the endpoint index.
func endpointDeliveryKey(endpointID string, status convoy.DeliveryStatus, deliveryID string) []byte {
	b := make([]byte, 0, 2*idLen+1)
	b = append(b, endpointID...)
	b = append(b, statusClass(status))
	return append(b, deliveryID...)
}

// appDeliveryKey is the key of a delivery in the app index.
func appDeliveryKey(appID string, status convoy.DeliveryStatus, deliveryID string) []byte {
	return endpointDeliveryKey(appID, status, deliveryID) // same shape
}

// Prefixes of the keys of bucketCounts.
const (
	countDelivery = "d:"
	countEndpoint = "e:"
)

// successor returns the smallest key greater than k: k followed by a zero
// byte. Seeking to it resumes a walk after k.
func successor(k []byte) []byte {
	return join(k, []byte{0})
}

// prefixEnd returns the smallest key greater than every key that starts
// with prefix, or nil when there is none (prefix is empty or all 0xFF).
func prefixEnd(prefix []byte) []byte {
	end := clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// clone copies b; bbolt's slices are only valid during their transaction.
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// hasPrefix reports whether k is not nil and starts with prefix.
func hasPrefix(k, prefix []byte) bool {
	return k != nil && bytes.HasPrefix(k, prefix)
}
