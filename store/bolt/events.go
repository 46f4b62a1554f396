package bolt

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/convoykit/convoy"
	bbolt "go.etcd.io/bbolt"
)

// InsertEvent stores an event and its deliveries in one transaction, with
// the index entries that make each Scheduled delivery due at its
// NextAttemptAt. A delivery whose endpoint no longer exists is skipped;
// the result holds the deliveries stored. When the event's IdempotencyKey
// was already used by an event of the same app it stores nothing and
// returns that first event and its deliveries, in ID order and current
// state, with Inserted false. Errors wrap ErrInvalid for input that does
// not validate or a delivery that does not belong to the event (or whose
// endpoint belongs to another app), ErrNotFound for a missing app, and
// ErrDuplicate for an ID that exists.
func (s *Store) InsertEvent(ctx context.Context, ev *convoy.Event, deliveries []*convoy.Delivery) (convoy.InsertResult, error) {
	return s.insert(ctx, ev, deliveries, nil)
}

// insert stores an event, leasing its new deliveries under claim when set.
func (s *Store) insert(ctx context.Context, ev *convoy.Event, deliveries []*convoy.Delivery, claim *convoy.ClaimRequest) (convoy.InsertResult, error) {
	in, err := prepareInsert(ev, deliveries)
	if err != nil {
		return convoy.InsertResult{}, err
	}
	in.claim = claim
	var res convoy.InsertResult
	err = s.write(ctx, func(w *wtx) (err error) {
		res, err = in.apply(w)
		return err
	})
	if err != nil {
		return convoy.InsertResult{}, err
	}
	return res, nil
}

// InsertEventClaim implements [convoy.ClaimingInserter]: InsertEvent, and
// in the same transaction the new Scheduled deliveries are leased as Claim
// would lease them, unless the due index or the parked entries hold work
// due at req.Now.
func (s *Store) InsertEventClaim(ctx context.Context, ev *convoy.Event, deliveries []*convoy.Delivery, req convoy.ClaimRequest) (convoy.InsertResult, error) {
	if req.Lease <= 0 {
		return convoy.InsertResult{}, fmt.Errorf("%w: claim lease must be positive", convoy.ErrInvalid)
	}
	return s.insert(ctx, ev, deliveries, &req)
}

// insert is an InsertEvent checked and encoded outside the transaction.
type insert struct {
	ev    *convoy.Event
	evEnc []byte
	ds    []*convoy.Delivery
	encs  [][]byte
	// claim, when set, leases the new Scheduled deliveries (see
	// InsertEventClaim).
	claim *convoy.ClaimRequest
}

// prepareInsert checks what InsertEvent can check without reading the
// store, and copies and encodes the records.
func prepareInsert(ev *convoy.Event, deliveries []*convoy.Delivery) (*insert, error) {
	if err := ev.Validate(0); err != nil {
		return nil, err
	}
	in := &insert{ev: ev.Clone(), ds: make([]*convoy.Delivery, len(deliveries)), encs: make([][]byte, len(deliveries))}
	seen := make(map[string]bool, len(deliveries))
	for i, d := range deliveries {
		if err := d.Validate(); err != nil {
			return nil, err
		}
		if d.EventID != ev.ID || d.AppID != ev.AppID {
			return nil, fmt.Errorf("%w: delivery %s does not belong to event %s", convoy.ErrInvalid, d.ID, ev.ID)
		}
		if d.Status == convoy.DeliveryProcessing {
			return nil, fmt.Errorf("%w: delivery %s inserted as Processing (only Claim leases)", convoy.ErrInvalidStatus, d.ID)
		}
		if seen[d.ID] {
			return nil, duplicate("delivery", d.ID)
		}
		seen[d.ID] = true
		in.ds[i] = d.Clone()
		enc, err := encodeDelivery(in.ds[i])
		if err != nil {
			return nil, err
		}
		in.encs[i] = enc
	}
	enc, err := encodeEvent(in.ev)
	if err != nil {
		return nil, err
	}
	in.evEnc = enc
	return in, nil
}

// apply runs the insert in w. It reads and checks everything before its
// first write, and leaves in as it was, so it can run again.
func (in *insert) apply(w *wtx) (convoy.InsertResult, error) {
	ev := in.ev
	if !has(w.Tx, bucketApps, ev.AppID) {
		return convoy.InsertResult{}, notFound("app", ev.AppID)
	}
	var idemKey []byte
	if ev.IdempotencyKey != "" {
		idemKey = join([]byte(ev.AppID), []byte(ev.IdempotencyKey))
		if id := w.Bucket(bucketIdempotency).Get(idemKey); id != nil {
			first, err := getEvent(w.Tx, string(id))
			if err != nil {
				return convoy.InsertResult{}, err
			}
			ds, err := eventDeliveries(w.Tx, first.ID)
			if err != nil {
				return convoy.InsertResult{}, err
			}
			return convoy.InsertResult{Event: first, Deliveries: ds}, nil
		}
	}
	if has(w.Tx, bucketEvents, ev.ID) {
		return convoy.InsertResult{}, duplicate("event", ev.ID)
	}
	keep := make([]int, 0, len(in.ds))
	for i, d := range in.ds {
		// The app's index entry exists exactly when the endpoint exists
		// and belongs to the app.
		if !has(w.Tx, bucketAppEndpoints, ev.AppID+d.EndpointID) {
			if !has(w.Tx, bucketEndpoints, d.EndpointID) {
				continue // removed since the caller listed it
			}
			return convoy.InsertResult{}, fmt.Errorf("%w: endpoint %s does not belong to app %s", convoy.ErrInvalid, d.EndpointID, ev.AppID)
		}
		if has(w.Tx, bucketDeliveries, d.ID) {
			return convoy.InsertResult{}, duplicate("delivery", d.ID)
		}
		keep = append(keep, i)
	}

	// Writes only from here on.
	if err := putEvent(w, ev, in.evEnc); err != nil {
		return convoy.InsertResult{}, err
	}
	if idemKey != nil {
		if err := w.put(bucketIdempotency, idemKey, []byte(ev.ID)); err != nil {
			return convoy.InsertResult{}, err
		}
	}
	// The result shares in's copies: nothing changes them, and the caller
	// gets them only once the insert is done (InsertEventTx: once in is
	// no longer used), so they are the caller's own.
	res := convoy.InsertResult{Event: ev, Deliveries: make([]*convoy.Delivery, 0, len(keep)), Inserted: true}
	leases, taken := in.leases(w.Tx)
	for _, i := range keep {
		d, enc := in.ds[i], in.encs[i]
		if leases > 0 && d.Status == convoy.DeliveryScheduled &&
			in.claim.Room(d.EndpointID, taken[d.EndpointID]) > 0 && w.orderedIdle(d.EndpointID) {
			// A copy, so that in stays as it was should the batch run again.
			d = d.Clone()
			in.claim.Grant(d)
			var err error
			if enc, err = encodeDelivery(d); err != nil {
				return convoy.InsertResult{}, err
			}
			taken[d.EndpointID]++
			leases--
		}
		if err := putDelivery(w, nil, d, enc); err != nil {
			return convoy.InsertResult{}, err
		}
		res.Deliveries = append(res.Deliveries, d)
	}
	return res, nil
}

// leases returns how many new deliveries the insert may lease, none
// unless it claims and nothing is due at its time in the due index or
// among the parked entries, and a count per endpoint to fill.
func (in *insert) leases(tx *bbolt.Tx) (int, map[string]int) {
	if in.claim == nil || in.claim.Limit <= 0 {
		return 0, nil
	}
	nowKey := timeKey(in.claim.Now)
	if k, _ := tx.Bucket(bucketDue).Cursor().First(); k != nil && bytes.Compare(k[:timeLen], nowKey) <= 0 {
		return 0, nil
	}
	if k, _ := tx.Bucket(bucketParkedHeads).Cursor().First(); k != nil && bytes.Compare(k[:timeLen], nowKey) <= 0 {
		return 0, nil
	}
	return in.claim.Limit, make(map[string]int)
}

// eventDeliveries returns an event's deliveries in ID order.
func eventDeliveries(tx *bbolt.Tx, eventID string) ([]*convoy.Delivery, error) {
	var out []*convoy.Delivery
	prefix := []byte(eventID)
	c := tx.Bucket(bucketEventDeliveries).Cursor()
	for k, _ := c.Seek(prefix); hasPrefix(k, prefix); k, _ = c.Next() {
		d, err := getDelivery(tx, string(k[idLen:]))
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
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

// ListEvents lists the events matching q, newest first (CreatedAt
// descending, then ID descending), a page at a time. It walks backwards the
// one creation-time index that q selects (every event, an app's, a type's,
// or an app's of a type) from the cursor or q.CreatedTo down to
// q.CreatedFrom, so a page reads O(log n + k) keys for the k events it
// returns and none that q excludes. A malformed AppID, Type or cursor is
// an error wrapping ErrInvalid.
//
// Creation times before 1678 or after 2262 are clamped to those years in
// the index (see the package documentation): events with such times sort
// among themselves by ID.
func (s *Store) ListEvents(ctx context.Context, q convoy.EventQuery, page convoy.Page) ([]*convoy.Event, string, error) {
	if q.AppID != "" {
		if err := convoy.ValidateID("event query AppID", q.AppID); err != nil {
			return nil, "", err
		}
	}
	if q.Type != "" {
		if err := convoy.ValidateEventType(q.Type); err != nil {
			return nil, "", err
		}
	}
	var (
		bucket = bucketEventCreated
		prefix []byte
	)
	switch {
	case q.AppID != "" && q.Type != "":
		bucket, prefix = bucketAppTypeEventCreated, join([]byte(q.AppID), typePrefix(q.Type))
	case q.AppID != "":
		bucket, prefix = bucketAppEventCreated, []byte(q.AppID)
	case q.Type != "":
		bucket, prefix = bucketTypeEventCreated, typePrefix(q.Type)
	}
	lo, hi := prefix, prefixEnd(prefix)
	if !q.CreatedFrom.IsZero() {
		lo = join(prefix, timeKey(q.CreatedFrom))
	}
	if !q.CreatedTo.IsZero() {
		hi = join(prefix, timeKey(q.CreatedTo))
	}
	if page.Cursor != "" {
		after, err := parseEventCursor(page.Cursor)
		if err != nil {
			return nil, "", err
		}
		if c := join(prefix, after); hi == nil || bytes.Compare(c, hi) < 0 {
			hi = c
		}
	}
	inRange := func(ev *convoy.Event) bool {
		return (q.CreatedFrom.IsZero() || !ev.CreatedAt.Before(q.CreatedFrom)) &&
			(q.CreatedTo.IsZero() || ev.CreatedAt.Before(q.CreatedTo))
	}
	limit := page.Size()
	var (
		out  []*convoy.Event
		next string
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		out, next = nil, ""
		return walkDesc(tx.Bucket(bucket), lo, hi, func(k, _ []byte) (bool, error) {
			ev, err := getEvent(tx, string(k[len(k)-idLen:]))
			if err != nil {
				return false, err
			}
			if !inRange(ev) {
				return true, nil // only for times clamped in the key
			}
			if len(out) == limit {
				next = eventCursor(out[len(out)-1])
				return false, nil
			}
			out = append(out, ev)
			return true, nil
		})
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// eventCursor is the ListEvents cursor after ev: its key suffix in the
// creation-time indexes, in hex for the time.
func eventCursor(ev *convoy.Event) string {
	return hex.EncodeToString(timeKey(ev.CreatedAt)) + ev.ID
}

// parseEventCursor returns the key suffix (time + ID) that an
// eventCursor names.
func parseEventCursor(cursor string) ([]byte, error) {
	bad := fmt.Errorf("%w: bad events cursor %q", convoy.ErrInvalid, cursor)
	if len(cursor) != 2*timeLen+idLen {
		return nil, bad
	}
	t, err := hex.DecodeString(cursor[:2*timeLen])
	if err != nil {
		return nil, bad
	}
	id := cursor[2*timeLen:]
	if convoy.ValidateID("cursor", id) != nil {
		return nil, bad
	}
	return append(t, id...), nil
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

// ListDeliveries lists deliveries matching q newest first (ID
// descending), a page at a time. With an EventID it walks the event's
// deliveries; otherwise, with an EndpointID, it merges the endpoint's
// index ranges of the wanted statuses, and with only an AppID the app's:
// one range per final status, one for the pending ones (Scheduled,
// Processing, Retry), so deliveries of unwanted final states are not read.
// A query without EventID, EndpointID and AppID, with a malformed ID or
// cursor, or with an unknown status, is an error wrapping ErrInvalid. An
// unknown event, endpoint or app lists nothing.
func (s *Store) ListDeliveries(ctx context.Context, q convoy.DeliveryQuery, page convoy.Page) ([]*convoy.Delivery, string, error) {
	if q.EventID == "" && q.EndpointID == "" && q.AppID == "" {
		return nil, "", fmt.Errorf("%w: delivery query needs an EventID, an EndpointID or an AppID", convoy.ErrInvalid)
	}
	for _, f := range [...]struct{ name, id string }{
		{"event ID", q.EventID}, {"endpoint ID", q.EndpointID}, {"app ID", q.AppID},
	} {
		if f.id == "" {
			continue
		}
		if err := convoy.ValidateID(f.name, f.id); err != nil {
			return nil, "", err
		}
	}
	if page.Cursor != "" {
		if err := convoy.ValidateID("cursor", page.Cursor); err != nil {
			return nil, "", fmt.Errorf("%w: bad deliveries cursor %q", convoy.ErrInvalid, page.Cursor)
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
		return (len(want) == 0 || want[d.Status]) &&
			(q.EndpointID == "" || d.EndpointID == q.EndpointID) &&
			(q.AppID == "" || d.AppID == q.AppID)
	}
	limit := page.Size()
	var (
		out  []*convoy.Delivery
		next string
	)
	// take visits the delivery id and reports whether to go on.
	take := func(tx *bbolt.Tx, id string) (bool, error) {
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
	}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		out, next = nil, ""
		if q.EventID != "" {
			prefix := []byte(q.EventID)
			hi := prefixEnd(prefix)
			if page.Cursor != "" {
				hi = join(prefix, []byte(page.Cursor))
			}
			return walkDesc(tx.Bucket(bucketEventDeliveries), prefix, hi, func(k, _ []byte) (bool, error) {
				return take(tx, string(k[idLen:]))
			})
		}
		bucket, owner := bucketAppDeliveries, q.AppID
		if q.EndpointID != "" {
			if q.AppID != "" {
				// An endpoint's deliveries all belong to its app.
				ep, err := getEndpoint(tx, q.EndpointID)
				if err != nil || ep.AppID != q.AppID {
					return nil
				}
			}
			bucket, owner = bucketEndpointDeliveries, q.EndpointID
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
				prefixes = append(prefixes, join([]byte(owner), []byte{c}))
			}
		}
		return mergeDesc(tx.Bucket(bucket), prefixes, page.Cursor, func(id string) (bool, error) {
			return take(tx, id)
		})
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// ListAttempts lists a delivery's attempts newest first (Number
// descending, then ID descending), a page at a time. ErrNotFound if the
// delivery is missing; a malformed cursor is an error wrapping ErrInvalid.
func (s *Store) ListAttempts(ctx context.Context, deliveryID string, page convoy.Page) ([]*convoy.Attempt, string, error) {
	if err := convoy.ValidateID("delivery ID", deliveryID); err != nil {
		return nil, "", err
	}
	prefix := []byte(deliveryID)
	hi := prefixEnd(prefix)
	if page.Cursor != "" {
		num, id, ok := strings.Cut(page.Cursor, "/")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 0 || convoy.ValidateID("cursor", id) != nil {
			return nil, "", fmt.Errorf("%w: bad attempts cursor %q", convoy.ErrInvalid, page.Cursor)
		}
		hi = attemptKey(deliveryID, n, id)
	}
	limit := page.Size()
	var (
		out  []*convoy.Attempt
		next string
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		out, next = nil, ""
		if !has(tx, bucketDeliveries, deliveryID) {
			return notFound("delivery", deliveryID)
		}
		return walkDesc(tx.Bucket(bucketAttempts), prefix, hi, func(_, v []byte) (bool, error) {
			if len(out) == limit {
				last := out[len(out)-1]
				next = strconv.Itoa(last.Number) + "/" + last.ID
				return false, nil
			}
			a, err := decodeAttempt(v)
			if err != nil {
				return false, err
			}
			out = append(out, a)
			return true, nil
		})
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}
