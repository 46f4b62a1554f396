package memory

import (
	"context"
	"time"

	"github.com/convoykit/convoy"
)

// count moves dr's tally in s.counts, and its place in its endpoint's and
// app's status indexes, to its current status.
func (s *Store) count(dr *deliveryRec) {
	st := dr.d.Status
	if dr.counted == st {
		return
	}
	s.uncount(dr)
	s.counts[st]++
	dr.ep.deliveries.add(st, dr.d.ID)
	dr.ep.app.deliveries.add(st, dr.d.ID)
	dr.counted = st
}

// uncount takes dr out of s.counts and of the status indexes.
func (s *Store) uncount(dr *deliveryRec) {
	if dr == nil || dr.counted == "" {
		return
	}
	st := dr.counted
	if s.counts[st]--; s.counts[st] == 0 {
		delete(s.counts, st)
	}
	dr.ep.deliveries.remove(st, dr.d.ID)
	dr.ep.app.deliveries.remove(st, dr.d.ID)
	dr.counted = ""
}

// Stats implements [convoy.Store]. Delivery and endpoint counts are kept
// as they change; due work is counted by walking only the due part of the
// heaps, up to convoy.MaxDueCount.
func (s *Store) Stats(ctx context.Context, now time.Time) (convoy.StoreStats, error) {
	if err := s.lock(ctx); err != nil {
		return convoy.StoreStats{}, err
	}
	defer s.mu.Unlock()
	st := convoy.StoreStats{
		Deliveries: make(map[convoy.DeliveryStatus]int, len(s.counts)),
		Endpoints:  make(map[convoy.EndpointStatus]int, len(s.endpointCounts)),
	}
	for k, v := range s.counts {
		st.Deliveries[k] = v
	}
	for k, v := range s.endpointCounts {
		st.Endpoints[k] = v
	}
	if len(s.due) > 0 {
		st.OldestDue = s.due[0].queue[0].due
	}
	// A heap's children are never due before their parent: prune there.
	var walkEndpoints func(i int)
	var walkQueue func(q deliveryHeap, i int)
	walkQueue = func(q deliveryHeap, i int) {
		if i >= len(q) || st.DueNow >= convoy.MaxDueCount || q[i].due.After(now) {
			return
		}
		st.DueNow++
		walkQueue(q, 2*i+1)
		walkQueue(q, 2*i+2)
	}
	walkEndpoints = func(i int) {
		if i >= len(s.due) || st.DueNow >= convoy.MaxDueCount || s.due[i].queue[0].due.After(now) {
			return
		}
		walkQueue(s.due[i].queue, 0)
		walkEndpoints(2*i + 1)
		walkEndpoints(2*i + 2)
	}
	walkEndpoints(0)
	return st, nil
}
