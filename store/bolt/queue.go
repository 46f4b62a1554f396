package bolt

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/convoykit/convoy"
	bbolt "go.etcd.io/bbolt"
)

// Claim leases up to req.Limit due deliveries, earliest due first, and
// returns them Processing under fresh leases. Claims run in the committer,
// one after the other, so no delivery is handed out twice while its lease
// is valid.
//
// It walks the due index from its first key while the key's time is not
// after req.Now: O(log n + k) for the k entries examined, however large
// the backlog that is not due. With req.PerEndpoint set, an entry whose
// endpoint is at its cap is passed over and parked: moved out of the due
// index to a per-endpoint list, where later Claims step over the whole
// endpoint in one move while it is full, and take its entries, in due order
// with the others, once it is not. One Claim examines at most req.Limit +
// Options.MaxClaimSkip + 1 entries of the due index and O(req.Limit +
// Options.MaxClaimSkip + F) entries of the parked lists and their index,
// where F ≤ len(req.InFlight) counts the full endpoints stepped over; each
// costs O(log n). An ordered endpoint is one entry, its gate (see
// ordered.go), whatever its backlog.
//
// A Claim first looks in a read-only transaction whether it would claim
// or park anything, and returns at once, without queueing for the
// committer or writing, when it would not: an idle dispatcher polling
// costs no commit. A Claim that hands out nothing still writes when it
// parks entries of full endpoints; each entry is parked once, so polling
// while the endpoints stay full soon writes nothing again.
//
// req.Limit ≤ 0 claims nothing; req.Lease ≤ 0 is an error wrapping
// ErrInvalid.
func (s *Store) Claim(ctx context.Context, req convoy.ClaimRequest) ([]*convoy.Delivery, error) {
	if req.Lease <= 0 {
		return nil, fmt.Errorf("%w: claim lease must be positive", convoy.ErrInvalid)
	}
	if req.Limit <= 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if s.closedFlag.Load() {
			return nil, errClosed()
		}
		return nil, nil
	}
	req.InFlight = maps.Clone(req.InFlight)
	maxSkip := s.opts.MaxClaimSkip
	var work bool
	if err := s.view(ctx, func(tx *bbolt.Tx) error {
		// The first pick or park is enough to know that the Claim writes.
		one := req
		one.Limit = 1
		picks, parks := pickDue(tx, one, 1)
		work = len(picks) > 0 || len(parks) > 0
		return nil
	}); err != nil {
		return nil, err
	}
	if !work {
		return nil, nil
	}
	var out []*convoy.Delivery
	var repaired int // stale entries dropped, counted once the claim commits
	err := s.write(ctx, func(w *wtx) error {
		out, repaired = nil, 0
		picks, parks := pickDue(w.Tx, req, maxSkip)

		type claim struct {
			old, d *convoy.Delivery
			enc    []byte
		}
		claims := make([]claim, 0, len(picks))
		var stale []staleEntry
		for _, p := range picks {
			old, err := getDelivery(w.Tx, string(p.key[timeLen:]))
			if err != nil {
				return err
			}
			due, ok := old.DueAt()
			if !ok || old.EndpointID != p.ep ||
				!bytes.Equal(p.key, dueKey(due, old.ID)) && !bytes.Equal(p.key, gateOf(w.Bucket(bucketOrdered).Get([]byte(p.ep)))) {
				if w.isOrdered(p.ep) || w.isOrdered(old.EndpointID) {
					return fmt.Errorf("convoy: bolt: due index out of step with delivery %s", old.ID)
				}
				// An entry left behind by a bug of an earlier version:
				// dropped below, rather than stopping every Claim here.
				stale = append(stale, staleEntry{p, old})
				continue
			}
			if due.After(req.Now) {
				continue // only when both times are clamped in the key
			}
			d := new(convoy.Delivery)
			*d = *old // old is this run's own decoding; d is a copy to change
			req.Grant(d)
			enc, err := encodeDelivery(d)
			if err != nil {
				return err
			}
			claims = append(claims, claim{old, d, enc})
		}

		// Writes only from here on.
		for _, p := range parks {
			if err := park(w, p.ep, p.key); err != nil {
				return err
			}
		}
		for _, st := range stale {
			if err := st.repair(w); err != nil {
				return err
			}
		}
		repaired = len(stale)
		out = make([]*convoy.Delivery, 0, len(claims))
		for _, cl := range claims {
			if err := putDelivery(w, cl.old, cl.d, cl.enc); err != nil {
				return err
			}
			out = append(out, cl.d) // this run's own, handed to the caller
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.repairs.Add(int64(repaired))
	return out, nil
}

// ClaimEvents implements [convoy.EventClaimer]: Claim, then one read-only
// transaction for the claimed deliveries' events, one decoding per event,
// instead of a GetEvent transaction per delivery. The events are read
// once the claim has committed, outside the committer's batch, so they
// add nothing to the batch's time.
func (s *Store) ClaimEvents(ctx context.Context, req convoy.ClaimRequest) ([]*convoy.Delivery, []*convoy.Event, error) {
	ds, err := s.Claim(ctx, req)
	if err != nil || len(ds) == 0 {
		return ds, nil, err
	}
	evs := make([]*convoy.Event, len(ds))
	err = s.view(ctx, func(tx *bbolt.Tx) error {
		for i, d := range ds {
			if i > 0 && ds[i-1].EventID == d.EventID {
				evs[i] = evs[i-1] // a fan-out's deliveries come together
				continue
			}
			ev, err := getEvent(tx, d.EventID)
			if errors.Is(err, convoy.ErrNotFound) {
				continue // deleted with its endpoint or app meanwhile
			}
			if err != nil {
				return err
			}
			evs[i] = ev
		}
		return nil
	})
	if err != nil {
		// The deliveries are leased: hand them over without their events,
		// which the caller then reads with GetEvent.
		return ds, make([]*convoy.Event, len(ds)), nil
	}
	return ds, evs, nil
}

// staleEntry is an entry of the due index or of the parked lists that
// Claim found out of step with its delivery (old, as stored).
type staleEntry struct {
	p   duePick
	old *convoy.Delivery
}

// repair removes the stale entry and, when the delivery is pending and
// its own entry is missing, puts that in the due index, so that it is
// claimed when due and nothing is lost.
func (st staleEntry) repair(w *wtx) error {
	if err := unschedule(w, st.p.ep, st.p.key); err != nil {
		return err
	}
	due, ok := st.old.DueAt()
	if !ok {
		return nil
	}
	k := dueKey(due, st.old.ID)
	if w.Bucket(bucketDue).Get(k) != nil || w.Bucket(bucketParked).Get(parkedKey(st.old.EndpointID, k)) != nil {
		return nil
	}
	return w.put(bucketDue, k, []byte(st.old.EndpointID))
}

// duePick is an entry Claim chose: its due-index key (time + delivery ID,
// copied out of the transaction's memory) and its endpoint.
type duePick struct {
	key []byte
	ep  string
}

// dueStream is one source of due entries merged by Claim: the due index,
// or the parked entries of one endpoint.
type dueStream struct {
	c      *bbolt.Cursor
	parked []byte // the endpoint ID for parked entries, nil for the due index
	k, v   []byte // the current entry
}

// key returns the current entry as a due-index key: time + delivery ID.
func (s *dueStream) key() []byte { return s.k[len(s.parked):] }

func (s *dueStream) endpoint() string {
	if s.parked != nil {
		return string(s.parked)
	}
	return string(s.v)
}

// next moves to the following entry and reports whether it is due by
// nowKey.
func (s *dueStream) next(nowKey []byte) bool {
	s.k, s.v = s.c.Next()
	return s.valid(nowKey)
}

func (s *dueStream) valid(nowKey []byte) bool {
	return hasPrefix(s.k, s.parked) && len(s.k) >= len(s.parked)+timeLen &&
		bytes.Compare(s.key()[:timeLen], nowKey) <= 0
}

// streamHeap orders streams by their current entry's time, then delivery
// ID.
type streamHeap []*dueStream

func (h streamHeap) Len() int           { return len(h) }
func (h streamHeap) Less(i, j int) bool { return bytes.Compare(h[i].key(), h[j].key()) < 0 }
func (h streamHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *streamHeap) Push(x any)        { *h = append(*h, x.(*dueStream)) }
func (h *streamHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// pickDue chooses the deliveries a Claim takes: up to req.Limit entries due
// by req.Now, earliest first, from the due index merged with the parked
// entries of the endpoints that are not full, taking no more from an
// endpoint than req.PerEndpoint - req.InFlight[endpoint] when PerEndpoint
// is set. It also returns the due-index entries it passed over because
// their endpoint was full (at most maxSkip), for Claim to park. It only
// reads.
func pickDue(tx *bbolt.Tx, req convoy.ClaimRequest, maxSkip int) (picks, parks []duePick) {
	nowKey := timeKey(req.Now)
	taken := make(map[string]int)
	full := func(ep string) bool { return req.Room(ep, taken[ep]) <= 0 }
	var h streamHeap
	due := &dueStream{c: tx.Bucket(bucketDue).Cursor()}
	if due.k, due.v = due.c.First(); due.valid(nowKey) {
		heap.Push(&h, due)
	}
	parked := tx.Bucket(bucketParked)
	heads := tx.Bucket(bucketParkedHeads).Cursor()
	hk, _ := heads.First()
	for len(picks) < req.Limit {
		// Open the parked entries of the next endpoint by earliest parked
		// time when they come strictly before the best stream open. Heads
		// are walked in time order, so this opens one endpoint per step at
		// most, besides the full ones stepped over.
		for hk != nil && bytes.Compare(hk[:timeLen], nowKey) <= 0 &&
			(len(h) == 0 || bytes.Compare(hk[:timeLen], h[0].key()[:timeLen]) < 0) {
			ep := clone(hk[timeLen:])
			hk, _ = heads.Next()
			if full(string(ep)) {
				continue
			}
			st := &dueStream{c: parked.Cursor(), parked: ep}
			if st.k, st.v = st.c.Seek(ep); st.valid(nowKey) {
				heap.Push(&h, st)
			}
		}
		if len(h) == 0 {
			break
		}
		st := h[0]
		ep := st.endpoint()
		switch {
		case !full(ep):
			picks = append(picks, duePick{key: clone(st.key()), ep: ep})
			taken[ep]++
			if st.parked != nil && full(ep) {
				heap.Pop(&h)
				continue
			}
		case st.parked != nil:
			heap.Pop(&h)
			continue
		default:
			parks = append(parks, duePick{key: clone(st.key()), ep: ep})
			if len(parks) >= maxSkip {
				heap.Pop(&h) // stop walking the due index
				continue
			}
		}
		if st.next(nowKey) {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	return picks, parks
}

// Record ends a claim in one transaction: it stores t.Attempt (if any),
// moves the delivery to t.Status, applies t.UpdateHealth and
// t.EndpointStatus to the endpoint, and returns the endpoint's status
// before and after. With an attempt it increments Attempts and
// RoundAttempts and resets Claims; a failed attempt sets LastError. The
// lease is cleared. Errors: ErrLeaseLost if the delivery is not Processing
// under t.LeaseID, ErrNotFound if it is missing, ErrInvalidStatus for a
// Status other than Success, Retry, Failure and Discarded or an
// EndpointStatus result that is not a valid status, ErrInvalid for an
// attempt that does not validate or belongs to another delivery,
// ErrDuplicate if the delivery already has this attempt (same Number and
// ID). Nothing is changed on error.
//
// t.EndpointStatus runs on the committer goroutine inside the batch
// transaction, and runs again if the batch is retried after another
// operation failed, so it must be quick and pure, as the contract asks.
func (s *Store) Record(ctx context.Context, t convoy.Transition) (convoy.RecordResult, error) {
	if err := convoy.ValidateID("delivery ID", t.DeliveryID); err != nil {
		return convoy.RecordResult{}, err
	}
	switch t.Status {
	case convoy.DeliverySuccess, convoy.DeliveryRetry, convoy.DeliveryFailure, convoy.DeliveryDiscarded:
	default:
		return convoy.RecordResult{}, fmt.Errorf("%w: cannot record delivery status %q", convoy.ErrInvalidStatus, t.Status)
	}
	var attEnc []byte
	if t.Attempt != nil {
		if err := t.Attempt.Validate(); err != nil {
			return convoy.RecordResult{}, err
		}
		if t.Attempt.DeliveryID != t.DeliveryID {
			return convoy.RecordResult{}, fmt.Errorf("%w: attempt of delivery %s recorded for %s", convoy.ErrInvalid, t.Attempt.DeliveryID, t.DeliveryID)
		}
		var err error
		if attEnc, err = encodeAttempt(t.Attempt); err != nil {
			return convoy.RecordResult{}, err
		}
		// The batch reads the attempt's scalar fields, possibly after Record
		// returned (when ctx ends first) and the caller reused the attempt:
		// a shallow copy without the headers and bodies, which the
		// encoding holds.
		a := *t.Attempt
		a.RequestHeaders, a.ResponseHeaders, a.RequestBody, a.ResponseBody = nil, nil, nil, nil
		t.Attempt = &a
	}
	var res convoy.RecordResult
	err := s.write(ctx, func(w *wtx) error {
		res = convoy.RecordResult{}
		old, err := getDelivery(w.Tx, t.DeliveryID)
		if err != nil {
			return err
		}
		if old.Status != convoy.DeliveryProcessing || t.LeaseID == "" || old.LeaseID != t.LeaseID {
			return fmt.Errorf("%w: delivery %s", convoy.ErrLeaseLost, t.DeliveryID)
		}
		var attKey []byte
		if t.Attempt != nil {
			attKey = attemptKey(t.DeliveryID, t.Attempt.Number, t.Attempt.ID)
			if w.Bucket(bucketAttempts).Get(attKey) != nil {
				return duplicate("attempt", t.Attempt.ID)
			}
		}
		cur, err := w.endpoint(old.EndpointID)
		if err != nil {
			return err
		}
		// A copy, so that the batch's version stays as it was should this
		// operation fail. Record changes only Health and Status, which
		// hold no references.
		ep := new(convoy.Endpoint)
		*ep = *cur

		d := new(convoy.Delivery)
		*d = *old // old is this run's own decoding; d is a copy to change
		d.Status = t.Status
		if t.Status == convoy.DeliveryRetry {
			d.NextAttemptAt = t.NextAttemptAt
		}
		d.LeaseID, d.LeaseOwner, d.LeaseExpiresAt = "", "", time.Time{}
		d.UpdatedAt = t.Now
		if a := t.Attempt; a != nil {
			d.Attempts++
			d.RoundAttempts++
			d.Claims = 0
			if !a.Success() {
				d.LastError = a.Error
				if d.LastError == "" {
					d.LastError = "HTTP " + strconv.Itoa(a.StatusCode)
				}
			}
		}
		dEnc, err := encodeDelivery(d)
		if err != nil {
			return err
		}

		res.EndpointBefore = ep.Status
		t.UpdateHealth(&ep.Health)
		if t.EndpointStatus != nil {
			st := t.EndpointStatus(*ep.Clone())
			if !st.Valid() {
				return fmt.Errorf("%w: endpoint status %q", convoy.ErrInvalidStatus, st)
			}
			ep.Status = st
		}
		res.EndpointAfter = ep.Status
		epEnc, err := encodeEndpoint(ep)
		if err != nil {
			return err
		}

		// Writes only from here on.
		if attKey != nil {
			if err := w.put(bucketAttempts, attKey, attEnc); err != nil {
				return err
			}
		}
		if err := putDelivery(w, old, d, dEnc); err != nil {
			return err
		}
		if res.EndpointBefore != res.EndpointAfter {
			w.count(countEndpoint+string(res.EndpointBefore), -1)
			w.count(countEndpoint+string(res.EndpointAfter), 1)
		}
		w.setEndpoint(ep, epEnc)
		return nil
	})
	if err != nil {
		return convoy.RecordResult{}, err
	}
	return res, nil
}

// Release gives a claimed delivery back without an attempt: it returns to
// Scheduled (Retry if it has attempts) with NextAttemptAt unchanged, its
// lease cleared and Claims decremented. ErrLeaseLost if the delivery is not
// Processing under leaseID, ErrNotFound if it is missing.
func (s *Store) Release(ctx context.Context, deliveryID, leaseID string) error {
	if err := convoy.ValidateID("delivery ID", deliveryID); err != nil {
		return err
	}
	return s.write(ctx, func(w *wtx) error {
		old, err := getDelivery(w.Tx, deliveryID)
		if err != nil {
			return err
		}
		if old.Status != convoy.DeliveryProcessing || leaseID == "" || old.LeaseID != leaseID {
			return fmt.Errorf("%w: delivery %s", convoy.ErrLeaseLost, deliveryID)
		}
		d := old.Clone()
		d.Status = convoy.DeliveryScheduled
		if d.Attempts > 0 {
			d.Status = convoy.DeliveryRetry
		}
		d.LeaseID, d.LeaseOwner, d.LeaseExpiresAt = "", "", time.Time{}
		if d.Claims > 0 {
			d.Claims--
		}
		enc, err := encodeDelivery(d)
		if err != nil {
			return err
		}
		return putDelivery(w, old, d, enc)
	})
}

// NextDue returns when the earliest pending delivery becomes claimable;
// ok is false when nothing is pending. It reads the first key of the due
// index and of the parked entries' heads.
func (s *Store) NextDue(ctx context.Context) (t time.Time, ok bool, err error) {
	err = s.view(ctx, func(tx *bbolt.Tx) (err error) {
		t, ok, err = firstDue(tx)
		return err
	})
	if err != nil {
		return time.Time{}, false, err
	}
	return t, ok, nil
}

// firstDue returns when the first entry of the due index or the parked
// entries is due: its delivery's due time, or the later time of an
// ordered endpoint's gate. ok is false when there is none.
func firstDue(tx *bbolt.Tx) (t time.Time, ok bool, err error) {
	k, _ := tx.Bucket(bucketDue).Cursor().First()
	if hk, _ := tx.Bucket(bucketParkedHeads).Cursor().First(); hk != nil &&
		(k == nil || bytes.Compare(hk[:timeLen], k[:timeLen]) < 0) {
		ep := hk[timeLen:]
		if k, _ = tx.Bucket(bucketParked).Cursor().Seek(ep); !hasPrefix(k, ep) {
			return time.Time{}, false, fmt.Errorf("convoy: bolt: parked entries out of step for endpoint %s", ep)
		}
		k = k[len(ep):]
	}
	if k == nil {
		return time.Time{}, false, nil
	}
	d, err := getDelivery(tx, string(k[timeLen:]))
	if err != nil {
		return time.Time{}, false, err
	}
	t, ok = d.DueAt()
	if ok && bytes.Compare(k[:timeLen], timeKey(t)) > 0 {
		t = keyTime(k) // a gate, held back by a lease
	}
	return t, ok, nil
}

// Requeue moves matching Failure or Discarded deliveries back to
// Scheduled, due at r.Now, with RoundAttempts and Claims reset, and returns
// how many moved. A named delivery is moved if it is Failure or Discarded,
// whatever r.Statuses and the creation bounds say. With an EndpointID it
// walks only the endpoint's index ranges of the requested statuses.
// Errors: ErrNotFound for a missing delivery or endpoint, ErrInvalidStatus
// for a requested status other than Failure and Discarded or a named
// delivery in another state, ErrInvalid when r names neither a delivery
// nor an endpoint or names one with a malformed ID.
func (s *Store) Requeue(ctx context.Context, r convoy.RequeueRequest) (int, error) {
	statuses := slices.Clone(r.Statuses)
	for _, st := range statuses {
		if st != convoy.DeliveryFailure && st != convoy.DeliveryDiscarded {
			return 0, fmt.Errorf("%w: cannot re-send %q deliveries", convoy.ErrInvalidStatus, st)
		}
	}
	if len(statuses) == 0 {
		statuses = []convoy.DeliveryStatus{convoy.DeliveryDiscarded}
	}
	slices.Sort(statuses)
	statuses = slices.Compact(statuses)
	switch {
	case r.DeliveryID != "":
		if err := convoy.ValidateID("delivery ID", r.DeliveryID); err != nil {
			return 0, err
		}
	case r.EndpointID != "":
		if err := convoy.ValidateID("endpoint ID", r.EndpointID); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("%w: requeue needs a DeliveryID or an EndpointID", convoy.ErrInvalid)
	}
	inRange := func(d *convoy.Delivery) bool {
		return (r.CreatedFrom.IsZero() || !d.CreatedAt.Before(r.CreatedFrom)) &&
			(r.CreatedTo.IsZero() || d.CreatedAt.Before(r.CreatedTo))
	}
	requeue := func(w *wtx, old *convoy.Delivery) error {
		d := old.Clone()
		d.Status = convoy.DeliveryScheduled
		d.NextAttemptAt = r.Now
		d.RoundAttempts, d.Claims = 0, 0
		d.LeaseID, d.LeaseOwner, d.LeaseExpiresAt = "", "", time.Time{}
		d.UpdatedAt = r.Now
		enc, err := encodeDelivery(d)
		if err != nil {
			return err
		}
		return putDelivery(w, old, d, enc)
	}
	var n int
	err := s.write(ctx, func(w *wtx) error {
		n = 0
		if r.DeliveryID != "" {
			d, err := getDelivery(w.Tx, r.DeliveryID)
			if err != nil {
				return err
			}
			if d.Status != convoy.DeliveryFailure && d.Status != convoy.DeliveryDiscarded {
				return fmt.Errorf("%w: cannot re-send a %s delivery", convoy.ErrInvalidStatus, d.Status)
			}
			n = 1
			return requeue(w, d)
		}
		if !has(w.Tx, bucketEndpoints, r.EndpointID) {
			return notFound("endpoint", r.EndpointID)
		}
		for _, st := range statuses {
			prefix := join([]byte(r.EndpointID), []byte{statusClass(st)})
			pos := prefix
			for {
				// Re-seek after every write, as bbolt requires; a moved
				// delivery leaves this range, one out of range stays and
				// is stepped over.
				k, _ := w.Bucket(bucketEndpointDeliveries).Cursor().Seek(pos)
				if !hasPrefix(k, prefix) {
					break
				}
				pos = successor(k)
				d, err := getDelivery(w.Tx, string(k[len(prefix):]))
				if err != nil {
					return err
				}
				if d.Status != st || !inRange(d) {
					continue
				}
				if err := requeue(w, d); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// DeleteBefore removes up to limit events created before cutoff, oldest
// first, with their deliveries, attempts and index entries, except events
// that still have a delivery Scheduled, Processing or Retry (those are
// skipped and do not count). limit ≤ 0 means convoy.DefaultDeleteBatch. It
// returns how many events it removed; repeat while that equals limit.
//
// It first walks the creation-time index in a read-only transaction,
// which does not hold up writers, to pick the events to remove and read
// their deliveries and the keys to delete; then one committer operation
// checks that each picked event and delivery is still stored as read
// (one lookup per record), and deletes the keys. Writers wait only for
// that operation, whose cost is proportional to limit and the deliveries
// and attempts of the events removed, not to the number of old events
// still pending before them. An event that changed in between (a delivery
// re-sent, or removed) is checked again from the records; when one can no
// longer go, the operation looks for as many others after the last one
// picked, reading at most limit more index keys.
func (s *Store) DeleteBefore(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if limit <= 0 {
		limit = convoy.DefaultDeleteBatch
	}
	cutKey := timeKey(cutoff)
	var picked []*doomedEvent
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		picked = nil
		return walkDeletable(tx, nil, cutoff, cutKey, math.MaxInt, func(de *doomedEvent) (bool, error) {
			if err := de.planKeys(tx); err != nil {
				return false, err
			}
			picked = append(picked, de)
			return len(picked) < limit, nil
		})
	})
	if err != nil || len(picked) == 0 {
		return 0, err
	}
	var n int
	err = s.write(ctx, func(w *wtx) error {
		n = 0
		for _, de := range picked {
			ok, err := de.delete(w)
			if err != nil {
				return err
			}
			if ok {
				n++
			}
		}
		if n == len(picked) || len(picked) < limit {
			return nil
		}
		// Some picked events could not go: make up for them with events
		// after the last one picked, so that a full batch still means
		// "maybe more". Deleting moves no key of the walk, which re-seeks
		// after each removal.
		want := len(picked) - n
		return walkDeletable(w.Tx, successor(picked[len(picked)-1].key), cutoff, cutKey, limit, func(de *doomedEvent) (bool, error) {
			if err := deleteEventRecords(w, de.ev, de.deliveries(), de.stale); err != nil {
				return false, err
			}
			n++
			want--
			return want > 0, nil
		})
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// doomedEvent is an event DeleteBefore found deletable, with what it read.
type doomedEvent struct {
	key   []byte        // in bucketEventCreated
	ev    *convoy.Event // without Data
	ds    []doomedDelivery
	stale [][]byte // keys of bucketEventDeliveries whose delivery is missing
}

// doomedDelivery is a delivery of a doomedEvent.
type doomedDelivery struct {
	d        *convoy.Delivery
	raw      []byte   // the record as read; nil until planKeys
	attempts [][]byte // the keys of its attempts
}

func (de *doomedEvent) deliveries() []*convoy.Delivery {
	out := make([]*convoy.Delivery, len(de.ds))
	for i, dd := range de.ds {
		out[i] = dd.d
	}
	return out
}

// planKeys reads, in the read-only transaction tx, what delete needs: the
// deliveries' records as stored and the keys of their attempts. Attempts
// are only added to a delivery that is Processing, so they stay as read
// while the record does.
func (de *doomedEvent) planKeys(tx *bbolt.Tx) error {
	for i := range de.ds {
		dd := &de.ds[i]
		dd.raw = clone(tx.Bucket(bucketDeliveries).Get([]byte(dd.d.ID)))
		dd.attempts = prefixKeys(tx, bucketAttempts, []byte(dd.d.ID))
	}
	return nil
}

// delete removes the event if it is still as planKeys read it, or, if it
// changed, if it can still go by its records. It reports whether it
// removed it.
func (de *doomedEvent) delete(w *wtx) (bool, error) {
	if w.Bucket(bucketEvents).Get([]byte(de.ev.ID)) == nil {
		return false, nil // removed meanwhile
	}
	same := true
	for _, dd := range de.ds {
		if !bytes.Equal(w.Bucket(bucketDeliveries).Get([]byte(dd.d.ID)), dd.raw) {
			same = false
			break
		}
	}
	if !same {
		ds, stale, err := eventDeliveryRecords(w.Tx, de.ev.ID)
		if err != nil {
			return false, err
		}
		if slices.ContainsFunc(ds, func(d *convoy.Delivery) bool { return !d.Status.Final() }) {
			return false, nil // re-sent meanwhile
		}
		return true, deleteEventRecords(w, de.ev, ds, stale)
	}
	// A delivery is only added to an event with it, so there is none
	// besides those read.
	for _, dd := range de.ds {
		if err := deleteDeliveryKeys(w, dd.d, dd.attempts); err != nil {
			return false, err
		}
	}
	return true, deleteEventKeys(w, de.ev, de.stale)
}

// walkDeletable visits, oldest first from the key from (nil: the first),
// the events created before cutoff (whose time key is cutKey) that have
// no pending delivery, with their deliveries, until visit returns false or
// maxKeys keys of the index have been read. visit may write: the walk
// re-seeks after each call.
func walkDeletable(tx *bbolt.Tx, from []byte, cutoff time.Time, cutKey []byte, maxKeys int,
	visit func(de *doomedEvent) (bool, error)) error {
	pos := from
	for range maxKeys {
		c := tx.Bucket(bucketEventCreated).Cursor()
		var k []byte
		if pos == nil {
			k, _ = c.First()
		} else {
			k, _ = c.Seek(pos)
		}
		if k == nil || bytes.Compare(k[:timeLen], cutKey) > 0 {
			return nil
		}
		k = clone(k)
		pos = successor(k)
		ev, err := getEventMeta(tx, string(k[timeLen:]))
		if err != nil {
			return err
		}
		if !ev.CreatedAt.Before(cutoff) {
			continue // only when both times are clamped in the key
		}
		pending, err := hasPending(tx, ev.ID)
		if err != nil {
			return err
		}
		if pending {
			continue
		}
		ds, stale, err := eventDeliveryRecords(tx, ev.ID)
		if err != nil {
			return err
		}
		de := &doomedEvent{key: k, ev: ev, ds: make([]doomedDelivery, len(ds)), stale: stale}
		for i, d := range ds {
			de.ds[i].d = d
		}
		if more, err := visit(de); err != nil || !more {
			return err
		}
	}
	return nil
}

// hasPending reports whether an event has a delivery that is not final.
func hasPending(tx *bbolt.Tx, eventID string) (bool, error) {
	prefix := []byte(eventID)
	c := tx.Bucket(bucketEventDeliveries).Cursor()
	for k, _ := c.Seek(prefix); hasPrefix(k, prefix); k, _ = c.Next() {
		v := tx.Bucket(bucketDeliveries).Get(k[idLen:])
		if v == nil {
			continue // a stale entry, removed with the event
		}
		final, err := deliveryFinal(v)
		if err != nil || !final {
			return !final, err
		}
	}
	return false, nil
}
