package memory

import (
	"container/heap"
	"time"
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
