package memory

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/convoykit/convoy"
)

// Claim implements [convoy.Store]. It costs O((k + e) log n) for k
// deliveries claimed among n claimable ones, e being the endpoints skipped
// because they are at req.PerEndpoint; an ordered endpoint is one entry of
// the due index whatever its backlog (see heap.go). req.Lease must be
// positive.
func (s *Store) Claim(ctx context.Context, req convoy.ClaimRequest) ([]*convoy.Delivery, error) {
	ds, _, err := s.claim(ctx, req, false)
	return ds, err
}

// ClaimEvents implements [convoy.EventClaimer]: Claim, with a copy of each
// claimed delivery's event taken under the same lock, one per event.
func (s *Store) ClaimEvents(ctx context.Context, req convoy.ClaimRequest) ([]*convoy.Delivery, []*convoy.Event, error) {
	return s.claim(ctx, req, true)
}

// claim is Claim, and ClaimEvents with withEvents.
func (s *Store) claim(ctx context.Context, req convoy.ClaimRequest, withEvents bool) ([]*convoy.Delivery, []*convoy.Event, error) {
	if req.Lease <= 0 {
		return nil, nil, fmt.Errorf("%w: claim lease must be positive", convoy.ErrInvalid)
	}
	if err := s.lock(ctx); err != nil {
		return nil, nil, err
	}
	defer s.mu.Unlock()
	if req.Limit <= 0 {
		return nil, nil, nil
	}

	var (
		claimed []*deliveryRec
		full    []*endpointRec // endpoints at capacity, out of s.due meanwhile
		taken   map[*endpointRec]int
	)
	if req.Capped() {
		taken = make(map[*endpointRec]int)
	}
	now := keyOf(req.Now)
	for len(claimed) < req.Limit && len(s.due) > 0 {
		er := s.due[0]
		dr := er.queue[0]
		if dr.key.after(now) {
			break
		}
		if taken != nil && req.Room(er.ep.ID, taken[er]) <= 0 {
			heap.Pop(&s.due)
			full = append(full, er)
			continue
		}
		req.Grant(dr.d)
		// Now due at its lease expiry, after req.Now since the lease is
		// positive: this call will not meet it again.
		s.schedule(dr)
		claimed = append(claimed, dr)
		if taken != nil {
			taken[er]++
		}
	}
	for _, er := range full {
		s.fixEndpoint(er)
	}
	out := make([]*convoy.Delivery, len(claimed))
	for i, dr := range claimed {
		out[i] = dr.d.Clone()
	}
	if !withEvents {
		return out, nil, nil
	}
	evs := make([]*convoy.Event, len(claimed))
	for i, d := range out {
		if i > 0 && out[i-1].EventID == d.EventID {
			evs[i] = evs[i-1] // a fan-out's deliveries come together
		} else if evr, ok := s.events[d.EventID]; ok {
			evs[i] = evr.ev.Clone()
		}
	}
	return out, evs, nil
}

// holds returns the delivery when leaseID is its current lease.
func (s *Store) holds(deliveryID, leaseID string) (*deliveryRec, error) {
	dr, ok := s.deliveries[deliveryID]
	if !ok {
		return nil, notFound("delivery", deliveryID)
	}
	d := dr.d
	if d.Status != convoy.DeliveryProcessing || leaseID == "" || d.LeaseID != leaseID {
		return nil, fmt.Errorf("%w: delivery %s", convoy.ErrLeaseLost, deliveryID)
	}
	return dr, nil
}

// Record implements [convoy.Store]. t.EndpointStatus is called with the
// store's mutex held.
func (s *Store) Record(ctx context.Context, t convoy.Transition) (convoy.RecordResult, error) {
	var res convoy.RecordResult
	if err := convoy.ValidateID("delivery ID", t.DeliveryID); err != nil {
		return res, err
	}
	switch t.Status {
	case convoy.DeliverySuccess, convoy.DeliveryRetry, convoy.DeliveryFailure, convoy.DeliveryDiscarded:
	default:
		return res, fmt.Errorf("%w: delivery cannot move to %q", convoy.ErrInvalidStatus, t.Status)
	}
	if a := t.Attempt; a != nil {
		if err := a.Validate(); err != nil {
			return res, err
		}
		if a.DeliveryID != t.DeliveryID {
			return res, fmt.Errorf("%w: attempt %s is for delivery %s, not %s", convoy.ErrInvalid, a.ID, a.DeliveryID, t.DeliveryID)
		}
	}
	if err := s.lock(ctx); err != nil {
		return res, err
	}
	defer s.mu.Unlock()
	dr, err := s.holds(t.DeliveryID, t.LeaseID)
	if err != nil {
		return res, err
	}

	// Compute everything that can fail before changing anything.
	ep := dr.ep.ep
	health := ep.Health
	t.UpdateHealth(&health)
	res.EndpointBefore, res.EndpointAfter = ep.Status, ep.Status
	if t.EndpointStatus != nil {
		view := ep.Clone()
		view.Health = health
		res.EndpointAfter = t.EndpointStatus(*view)
		if !res.EndpointAfter.Valid() {
			return convoy.RecordResult{}, fmt.Errorf("%w: endpoint status %q", convoy.ErrInvalidStatus, res.EndpointAfter)
		}
	}

	d := dr.d
	if a := t.Attempt; a != nil {
		c := a.Clone()
		i, _ := slices.BinarySearchFunc(dr.attempts, c, func(x, y *convoy.Attempt) int {
			return compareAttempt(x, y.Number, y.ID)
		})
		dr.attempts = slices.Insert(dr.attempts, i, c)
		d.Attempts++
		d.RoundAttempts++
		d.Claims = 0
		if !a.Success() {
			d.LastError = a.Error
		}
	}
	d.Status = t.Status
	if t.Status == convoy.DeliveryRetry {
		d.NextAttemptAt = t.NextAttemptAt
	}
	clearLease(d)
	d.UpdatedAt = t.Now
	s.schedule(dr)
	ep.Health = health
	s.setEndpointStatus(dr.ep, res.EndpointAfter)
	ep.Status = res.EndpointAfter
	return res, nil
}

func clearLease(d *convoy.Delivery) {
	d.LeaseOwner = ""
	d.LeaseID = ""
	d.LeaseExpiresAt = time.Time{}
}

// Release implements [convoy.Store].
func (s *Store) Release(ctx context.Context, deliveryID, leaseID string) error {
	if err := convoy.ValidateID("delivery ID", deliveryID); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	dr, err := s.holds(deliveryID, leaseID)
	if err != nil {
		return err
	}
	d := dr.d
	d.Status = convoy.DeliveryScheduled
	if d.Attempts > 0 {
		d.Status = convoy.DeliveryRetry
	}
	if d.Claims > 0 {
		d.Claims--
	}
	clearLease(d)
	s.schedule(dr)
	return nil
}

// NextDue implements [convoy.Store] in O(1).
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	if err := s.lock(ctx); err != nil {
		return time.Time{}, false, err
	}
	defer s.mu.Unlock()
	if len(s.due) == 0 {
		return time.Time{}, false, nil
	}
	return s.due[0].queue[0].due, true, nil
}

// Requeue implements [convoy.Store]. Selecting by endpoint walks that
// endpoint's deliveries in the statuses asked.
func (s *Store) Requeue(ctx context.Context, r convoy.RequeueRequest) (int, error) {
	statuses := r.Statuses
	for _, st := range statuses {
		if st != convoy.DeliveryFailure && st != convoy.DeliveryDiscarded {
			return 0, fmt.Errorf("%w: cannot re-send %q deliveries", convoy.ErrInvalidStatus, st)
		}
	}
	if len(statuses) == 0 {
		statuses = []convoy.DeliveryStatus{convoy.DeliveryDiscarded}
	}
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
		return 0, fmt.Errorf("%w: requeue needs a delivery or endpoint ID", convoy.ErrInvalid)
	}
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()

	if r.DeliveryID != "" {
		dr, ok := s.deliveries[r.DeliveryID]
		if !ok {
			return 0, notFound("delivery", r.DeliveryID)
		}
		if st := dr.d.Status; st != convoy.DeliveryFailure && st != convoy.DeliveryDiscarded {
			return 0, fmt.Errorf("%w: cannot re-send a %s delivery", convoy.ErrInvalidStatus, st)
		}
		s.requeue(dr, r.Now)
		return 1, nil
	}
	er, ok := s.endpoints[r.EndpointID]
	if !ok {
		return 0, notFound("endpoint", r.EndpointID)
	}
	n := 0
	// Collect first: requeueing moves deliveries between the sets walked.
	var picked []*deliveryRec
	for _, set := range er.deliveries.of(statuses) {
		set.ascend(func(id string) bool {
			dr := s.deliveries[id]
			d := dr.d
			if (r.CreatedFrom.IsZero() || !d.CreatedAt.Before(r.CreatedFrom)) &&
				(r.CreatedTo.IsZero() || d.CreatedAt.Before(r.CreatedTo)) {
				picked = append(picked, dr)
			}
			return true
		})
	}
	for _, dr := range picked {
		s.requeue(dr, r.Now)
		n++
	}
	return n, nil
}

func (s *Store) requeue(dr *deliveryRec, now time.Time) {
	d := dr.d
	d.Status = convoy.DeliveryScheduled
	d.NextAttemptAt = now
	d.RoundAttempts = 0
	d.Claims = 0
	clearLease(d)
	d.UpdatedAt = now
	s.schedule(dr)
}

// DeleteBefore implements [convoy.Store]. It walks the events from the
// oldest, stepping over those still pending.
func (s *Store) DeleteBefore(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if limit <= 0 {
		limit = convoy.DefaultDeleteBatch
	}
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	end := keyOf(cutoff)
	var batch []*eventRec
	s.eventIndex.ascend(func(k eventKey) bool {
		if !end.after(k.at) {
			return false
		}
		if evr := s.events[k.id]; !s.pending(evr) {
			batch = append(batch, evr)
		}
		return len(batch) < limit
	})
	for _, evr := range batch {
		s.removeEvent(evr)
	}
	return len(batch), nil
}

// pending reports whether an event still has a delivery to make.
func (s *Store) pending(evr *eventRec) bool {
	for _, id := range evr.deliveries.ids {
		if !s.deliveries[id].d.Status.Final() {
			return true
		}
	}
	return false
}
