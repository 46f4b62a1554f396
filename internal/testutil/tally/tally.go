// Package tally does the bookkeeping of convoy's delivery-guarantee tests
// (the crash test, the store-fault test and the soak): it counts what a
// receiver accepted, reads the final state of every delivery from a
// convoy.Store, and sets both against the events Send acknowledged.
//
// It lives apart from package testutil because it imports convoy, which
// testutil must not (convoy's in-package tests may use testutil).
package tally

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/convoykit/convoy"
)

// Received counts the requests a receiver answered with a 2xx, by event and
// by delivery. It is safe for concurrent use, so handlers call Add
// directly.
type Received struct {
	mu         sync.Mutex
	byEvent    map[string]int
	byDelivery map[string]int
	total      int
}

// NewReceived returns an empty count.
func NewReceived() *Received {
	return &Received{byEvent: make(map[string]int), byDelivery: make(map[string]int)}
}

// Add counts one request answered with a 2xx, from its X-Convoy-Event-ID
// and X-Convoy-Delivery-ID headers. Call it before writing the answer: once
// the answer may have reached the dispatcher, the receipt must be counted.
func (r *Received) Add(h http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byEvent[h.Get(convoy.HeaderEventID)]++
	r.byDelivery[h.Get(convoy.HeaderDeliveryID)]++
	r.total++
}

// Event returns how many 2xx answers the event got, over all its
// deliveries.
func (r *Received) Event(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byEvent[id]
}

// Delivery returns how many 2xx answers the delivery got.
func (r *Received) Delivery(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byDelivery[id]
}

// Events returns how many distinct events got at least one 2xx answer.
func (r *Received) Events() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byEvent)
}

// Total returns how many 2xx answers were given.
func (r *Received) Total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// Duplicates returns how many 2xx answers went to a delivery that had
// already got one: the redeliveries at-least-once allows.
func (r *Received) Duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total - len(r.byDelivery)
}

// Final is what a store holds once the dispatcher stopped: every delivery,
// indexed by event, with a count per status.
type Final struct {
	Deliveries []*convoy.Delivery
	ByEvent    map[string][]*convoy.Delivery
	ByStatus   map[convoy.DeliveryStatus]int
}

// Walk reads every delivery of every endpoint of every app through the
// Store interface (ListApps, ListEndpoints, ListDeliveries), keeping only
// the given statuses when some are given.
func Walk(ctx context.Context, st convoy.Store, statuses ...convoy.DeliveryStatus) (*Final, error) {
	f := &Final{ByEvent: make(map[string][]*convoy.Delivery), ByStatus: make(map[convoy.DeliveryStatus]int)}
	apps, err := all(func(p convoy.Page) ([]*convoy.App, string, error) { return st.ListApps(ctx, p) })
	if err != nil {
		return nil, fmt.Errorf("tally: list apps: %w", err)
	}
	for _, app := range apps {
		eps, err := all(func(p convoy.Page) ([]*convoy.Endpoint, string, error) {
			return st.ListEndpoints(ctx, app.ID, p)
		})
		if err != nil {
			return nil, fmt.Errorf("tally: list endpoints of app %s: %w", app.ID, err)
		}
		for _, ep := range eps {
			q := convoy.DeliveryQuery{EndpointID: ep.ID, Statuses: statuses}
			ds, err := all(func(p convoy.Page) ([]*convoy.Delivery, string, error) {
				return st.ListDeliveries(ctx, q, p)
			})
			if err != nil {
				return nil, fmt.Errorf("tally: list deliveries of endpoint %s: %w", ep.ID, err)
			}
			for _, d := range ds {
				f.Deliveries = append(f.Deliveries, d)
				f.ByEvent[d.EventID] = append(f.ByEvent[d.EventID], d)
				f.ByStatus[d.Status]++
			}
		}
	}
	return f, nil
}

// all reads every page of a list.
func all[T any](list func(convoy.Page) ([]T, string, error)) ([]T, error) {
	var out []T
	page := convoy.Page{Limit: convoy.MaxPageSize}
	for {
		xs, next, err := list(page)
		if err != nil {
			return nil, err
		}
		out = append(out, xs...)
		if next == "" {
			return out, nil
		}
		page.Cursor = next
	}
}

// NotFinal returns the deliveries that are not in a final state.
func (f *Final) NotFinal() []*convoy.Delivery {
	var out []*convoy.Delivery
	for _, d := range f.Deliveries {
		if !d.Status.Final() {
			out = append(out, d)
		}
	}
	return out
}

// With returns the deliveries in status s.
func (f *Final) With(s convoy.DeliveryStatus) []*convoy.Delivery {
	var out []*convoy.Delivery
	for _, d := range f.Deliveries {
		if d.Status == s {
			out = append(out, d)
		}
	}
	return out
}

// Result sets acknowledged events against receipts and final states.
type Result struct {
	// Acknowledged is how many distinct events Send returned without error.
	Acknowledged int
	// Received is how many distinct events got at least one 2xx answer
	// (acknowledged or not: an event whose Send was cut short may still
	// have been stored, and is then delivered).
	Received int
	// Lost lists the acknowledged events that no receiver accepted, or that
	// the store does not hold.
	Lost []string
	// Unsettled lists the deliveries of acknowledged events that are not
	// Success: not final, Failure or Discarded.
	Unsettled []*convoy.Delivery
	// Duplicates is how many 2xx answers went to a delivery that already
	// had one.
	Duplicates int
}

// Count checks acked against rec and f: an acknowledged event must be in
// the store, each of its deliveries must have ended Success, and a
// receiver must have accepted it at least once.
func Count(acked []string, rec *Received, f *Final) Result {
	ids := slices.Clone(acked)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	res := Result{Acknowledged: len(ids), Received: rec.Events(), Duplicates: rec.Duplicates()}
	for _, id := range ids {
		ds := f.ByEvent[id]
		if len(ds) == 0 || rec.Event(id) == 0 {
			res.Lost = append(res.Lost, id)
		}
		for _, d := range ds {
			if d.Status != convoy.DeliverySuccess {
				res.Unsettled = append(res.Unsettled, d)
			}
		}
	}
	return res
}

// String describes r on one line.
func (r Result) String() string {
	return fmt.Sprintf("acknowledged=%d received=%d lost=%d duplicates=%d", r.Acknowledged, r.Received, len(r.Lost), r.Duplicates)
}
