package memory

import (
	"container/heap"
	"time"

	"github.com/convoykit/convoy"
)

// The due index has two levels so that Claim can skip an endpoint that is
// at its capacity at the cost of one heap operation, however much due work
// that endpoint has:
//
//   - each endpoint keeps a min-heap of its claimable deliveries (Scheduled,
//     Retry and Processing), keyed by due time then ID;
//   - Store.due is a min-heap of the endpoints whose heap is not empty,
//     keyed by their earliest delivery.
//
// Claiming k deliveries among n therefore costs O((k + e) log n), e being
// the number of endpoints skipped for capacity, and finding the next due
// time is O(1).
//
// The heap of an ordered endpoint (Endpoint.Ordered) holds one delivery at
// most, its head: the pending delivery with the lowest ID, found in the
// endpoint's status sets. It is keyed by when the endpoint may next hand
// it out (see gate), so the deliveries held back behind it cost Claim,
// NextDue and Stats nothing.

// deliveryHeap orders an endpoint's claimable deliveries by due time.
type deliveryHeap []*deliveryRec

func (h deliveryHeap) Len() int { return len(h) }

func (h deliveryHeap) Less(i, j int) bool { return dueBefore(h[i], h[j]) }

func (h deliveryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}

func (h *deliveryHeap) Push(x any) {
	d := x.(*deliveryRec)
	d.heapIdx = len(*h)
	*h = append(*h, d)
}

func (h *deliveryHeap) Pop() any {
	old := *h
	n := len(old) - 1
	d := old[n]
	old[n] = nil
	d.heapIdx = -1
	*h = old[:n]
	return d
}

// endpointHeap orders endpoints by their earliest due delivery.
type endpointHeap []*endpointRec

func (h endpointHeap) Len() int { return len(h) }

func (h endpointHeap) Less(i, j int) bool { return dueBefore(h[i].queue[0], h[j].queue[0]) }

func (h endpointHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}

func (h *endpointHeap) Push(x any) {
	e := x.(*endpointRec)
	e.heapIdx = len(*h)
	*h = append(*h, e)
}

func (h *endpointHeap) Pop() any {
	old := *h
	n := len(old) - 1
	e := old[n]
	old[n] = nil
	e.heapIdx = -1
	*h = old[:n]
	return e
}

// dueKey is a due time reduced to two integers, cheaper to compare than a
// time.Time in the heaps' inner loops.
type dueKey struct {
	sec  int64
	nsec int32
}

func keyOf(t time.Time) dueKey { return dueKey{sec: t.Unix(), nsec: int32(t.Nanosecond())} }

// after reports whether k is later than o.
func (k dueKey) after(o dueKey) bool {
	return k.sec > o.sec || (k.sec == o.sec && k.nsec > o.nsec)
}

// dueBefore orders deliveries by due time, then by ID for a stable order.
func dueBefore(a, b *deliveryRec) bool {
	if a.key != b.key {
		return b.key.after(a.key)
	}
	return a.d.ID < b.d.ID
}

// schedule puts dr in the due index under its current due time, or takes
// it out when its status is final. Call it after every change of dr's
// status, NextAttemptAt or lease.
func (s *Store) schedule(dr *deliveryRec) {
	s.count(dr)
	if dr.ep.ep.Ordered {
		s.gate(dr.ep)
		return
	}
	due, ok := dr.d.DueAt()
	switch {
	case !ok:
		if dr.heapIdx >= 0 {
			heap.Remove(&dr.ep.queue, dr.heapIdx)
		}
	case dr.heapIdx >= 0:
		dr.due, dr.key = due, keyOf(due)
		heap.Fix(&dr.ep.queue, dr.heapIdx)
	default:
		dr.due, dr.key = due, keyOf(due)
		heap.Push(&dr.ep.queue, dr)
	}
	s.fixEndpoint(dr.ep)
}

// unschedule takes dr out of the due index, before it is deleted.
func (s *Store) unschedule(dr *deliveryRec) {
	if dr.ep.ep.Ordered {
		s.uncount(dr) // out of the status sets, so it is not the head
		s.gate(dr.ep)
		return
	}
	if dr.heapIdx >= 0 {
		heap.Remove(&dr.ep.queue, dr.heapIdx)
		s.fixEndpoint(dr.ep)
	}
}

// fixEndpoint restores ep's place in Store.due after its heap changed.
func (s *Store) fixEndpoint(ep *endpointRec) {
	switch {
	case len(ep.queue) == 0:
		if ep.heapIdx >= 0 {
			heap.Remove(&s.due, ep.heapIdx)
		}
	case ep.heapIdx >= 0:
		heap.Fix(&s.due, ep.heapIdx)
	default:
		heap.Push(&s.due, ep)
	}
}

// pendingSlots are the statusSets slots of the pending statuses.
var pendingSlots = [...]int{
	statusSlot(convoy.DeliveryScheduled),
	statusSlot(convoy.DeliveryProcessing),
	statusSlot(convoy.DeliveryRetry),
}

// head returns the pending delivery of er with the lowest ID, or nil.
func (s *Store) head(er *endpointRec) *deliveryRec {
	first := ""
	for _, i := range pendingSlots {
		if set := er.deliveries[i]; set != nil {
			if id, ok := set.min(); ok && (first == "" || id < first) {
				first = id
			}
		}
	}
	if first == "" {
		return nil
	}
	return s.deliveries[first]
}

// pending returns how many deliveries of er are pending.
func (er *endpointRec) pending() int {
	n := 0
	for _, i := range pendingSlots {
		if set := er.deliveries[i]; set != nil {
			n += set.len()
		}
	}
	return n
}

// gate makes the heap of the ordered endpoint er hold its head alone,
// keyed by when the head may be handed out: when it is due, and not
// before the lease of any delivery of er Processing ends. The others
// leave the heap. It costs O(p + log n) for p deliveries of er
// Processing (one, but after a crash or a change of Ordered).
func (s *Store) gate(er *endpointRec) {
	h := s.head(er)
	for _, dr := range er.queue {
		if dr != h {
			dr.heapIdx = -1
		}
	}
	clear(er.queue)
	er.queue = er.queue[:0]
	if h != nil {
		due, _ := h.d.DueAt()
		if set := er.deliveries[statusSlot(convoy.DeliveryProcessing)]; set != nil {
			set.ascend(func(id string) bool {
				if exp := s.deliveries[id].d.LeaseExpiresAt; exp.After(due) {
					due = exp
				}
				return true
			})
		}
		h.due, h.key = due, keyOf(due)
		h.heapIdx = 0
		er.queue = append(er.queue, h)
	}
	s.fixEndpoint(er)
}

// ungate puts every pending delivery of er back in its heap by its own
// due time, after Ordered was turned off.
func (s *Store) ungate(er *endpointRec) {
	for _, dr := range er.queue {
		dr.heapIdx = -1
	}
	clear(er.queue)
	er.queue = er.queue[:0]
	for _, i := range pendingSlots {
		if set := er.deliveries[i]; set != nil {
			set.ascend(func(id string) bool {
				dr := s.deliveries[id]
				due, _ := dr.d.DueAt()
				dr.due, dr.key = due, keyOf(due)
				dr.heapIdx = len(er.queue)
				er.queue = append(er.queue, dr)
				return true
			})
		}
	}
	heap.Init(&er.queue)
	s.fixEndpoint(er)
}
