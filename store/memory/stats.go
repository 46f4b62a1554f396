package memory

import (
	"context"
	"time"

	"github.com/convoykit/convoy"
)

// count moves dr's tally in s.counts to its current status.
func (s *Store) count(dr *deliveryRec) {
	if dr.counted == dr.d.Status {
		return
	}
	s.uncount(dr)
	s.counts[dr.d.Status]++
	dr.counted = dr.d.Status
}

// uncount removes dr from s.counts.
func (s *Store) uncount(dr *deliveryRec) {
	if dr == nil || dr.counted == "" {
		return
	}
	if s.counts[dr.counted]--; s.counts[dr.counted] == 0 {
		delete(s.counts, dr.counted)
	}
	dr.counted = ""
}

// Stats implements [convoy.Store]. Delivery counts are kept as they
// change; endpoints are counted by walking them (there are few); due work
// is counted by walking only the due part of the heaps, up to
// convoy.MaxDueCount.
func (s *Store) Stats(ctx context.Context, now time.Time) (convoy.StoreStats, error) {
	if err := s.lock(ctx); err != nil {
		return convoy.StoreStats{}, err
	}
	defer s.mu.Unlock()
	st := convoy.StoreStats{
		Deliveries: make(map[convoy.DeliveryStatus]int, len(s.counts)),
		Endpoints:  make(map[convoy.EndpointStatus]int, 3),
	}
	for k, v := range s.counts {
		st.Deliveries[k] = v
	}
	for _, er := range s.endpoints {
		st.Endpoints[er.ep.Status]++
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
