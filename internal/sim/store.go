package sim

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/convoykit/convoy"
)

// fault disturbs one store operation for a while.
type fault struct {
	op     string
	kind   FaultKind
	until  time.Time
	stall  time.Duration
	target *incarnation // nil: every dispatcher
}

// faults is the table of disturbances in force, shared by the wrappers
// of every dispatcher of a run.
type faults struct {
	mu   sync.Mutex
	list []fault
}

func (f *faults) add(x fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list = append(f.list, x)
}

func (f *faults) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list = nil
}

// active returns the fault in force for op in inc now, if any.
func (f *faults) active(op string, inc *incarnation, now time.Time) (fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	keep := f.list[:0]
	var hit fault
	found := false
	for _, x := range f.list {
		if !x.until.After(now) {
			continue
		}
		keep = append(keep, x)
		if !found && x.op == op && (x.target == nil || x.target == inc) {
			hit, found = x, true
		}
	}
	f.list = keep
	return hit, found
}

// faultError is the error of an injected fault.
type faultError struct {
	op   string
	kind FaultKind
}

func (e *faultError) Error() string { return fmt.Sprintf("sim: injected fault: %s %s", e.op, e.kind) }

// faultStore is the store as one dispatcher sees it: it injects the
// faults in force, reports the calls that change deliveries and endpoints
// to the ledger, and after its dispatcher's crash refuses every call, so
// that nothing a dead process does lands.
type faultStore struct {
	st  convoy.Store
	w   *world
	inc *incarnation
}

var _ convoy.Store = (*faultStore)(nil)

// enter applies the fault in force for op before the call: it returns
// the fault to apply after the call, or an error to return at once.
//
// Before anything, the call takes its ticket from the sequencer, named
// after the dispatcher, the operation and its subject, so that calls
// made at the same instant go in a canonical order.
func (s *faultStore) enter(ctx context.Context, op, subject string) (after FaultKind, stallAfter time.Duration, err error) {
	after = -1
	if s.inc.fenced() {
		return after, 0, errCrashed
	}
	name := s.inc.name + " " + op + " " + subject
	s.w.seq.wait(name)
	if s.inc.fenced() {
		return after, 0, errCrashed
	}
	f, ok := s.w.faults.active(op, s.inc, time.Now())
	if !ok {
		return after, 0, nil
	}
	s.w.injected(s.inc)
	switch f.kind {
	case FailBefore:
		return after, 0, &faultError{op: op, kind: f.kind}
	case Stall:
		if err := s.stall(ctx, f.stall); err != nil {
			return after, 0, err
		}
		s.w.seq.wait(name + " after stall")
	case FailAfter:
		return FailAfter, 0, nil
	case StallAfter:
		return StallAfter, f.stall, nil
	}
	return after, 0, nil
}

// leave applies the fault after the call.
func (s *faultStore) leave(ctx context.Context, op, subject string, kind FaultKind, stall time.Duration, err error) error {
	switch kind {
	case FailAfter:
		if err == nil {
			return &faultError{op: op, kind: FailAfter}
		}
	case StallAfter:
		if e := s.stall(ctx, stall); e != nil {
			return e
		}
		s.w.seq.wait(s.inc.name + " " + op + " " + subject + " answer")
	}
	return err
}

// stall waits d, or until ctx ends or the dispatcher crashes.
func (s *faultStore) stall(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.inc.dead:
		return errCrashed
	}
}

// call runs one untracked operation with its faults.
func call[T any](s *faultStore, ctx context.Context, op, subject string, f func() (T, error)) (T, error) {
	var zero T
	kind, stall, err := s.enter(ctx, op, subject)
	if err != nil {
		return zero, err
	}
	v, err := f()
	if err = s.leave(ctx, op, subject, kind, stall, err); err != nil {
		return zero, err
	}
	return v, nil
}

func (s *faultStore) CreateApp(ctx context.Context, app *convoy.App) error {
	_, err := call(s, ctx, "CreateApp", app.Name, func() (struct{}, error) { return struct{}{}, s.st.CreateApp(ctx, app) })
	return err
}

func (s *faultStore) GetApp(ctx context.Context, id string) (*convoy.App, error) {
	return call(s, ctx, "GetApp", s.w.led.name("app", id), func() (*convoy.App, error) { return s.st.GetApp(ctx, id) })
}

func (s *faultStore) UpdateApp(ctx context.Context, id string, fn func(*convoy.App) error) (*convoy.App, error) {
	return call(s, ctx, "UpdateApp", s.w.led.name("app", id), func() (*convoy.App, error) { return s.st.UpdateApp(ctx, id, fn) })
}

func (s *faultStore) DeleteApp(ctx context.Context, id string) error {
	_, err := call(s, ctx, "DeleteApp", s.w.led.name("app", id), func() (struct{}, error) { return struct{}{}, s.st.DeleteApp(ctx, id) })
	return err
}

func (s *faultStore) ListApps(ctx context.Context, page convoy.Page) ([]*convoy.App, string, error) {
	type r struct {
		a    []*convoy.App
		next string
	}
	v, err := call(s, ctx, "ListApps", page.Cursor, func() (r, error) { a, n, err := s.st.ListApps(ctx, page); return r{a, n}, err })
	return v.a, v.next, err
}

func (s *faultStore) CreateEndpoint(ctx context.Context, ep *convoy.Endpoint) error {
	_, err := call(s, ctx, "CreateEndpoint", ep.URL, func() (struct{}, error) { return struct{}{}, s.st.CreateEndpoint(ctx, ep) })
	return err
}

func (s *faultStore) GetEndpoint(ctx context.Context, id string) (*convoy.Endpoint, error) {
	return call(s, ctx, "GetEndpoint", s.w.led.name("endpoint", id), func() (*convoy.Endpoint, error) { return s.st.GetEndpoint(ctx, id) })
}

func (s *faultStore) UpdateEndpoint(ctx context.Context, id string, fn func(*convoy.Endpoint) error) (*convoy.Endpoint, error) {
	return call(s, ctx, "UpdateEndpoint", s.w.led.name("endpoint", id), func() (*convoy.Endpoint, error) {
		l := s.w.led
		l.mu.Lock()
		defer l.mu.Unlock()
		var before convoy.EndpointStatus
		ep, err := s.st.UpdateEndpoint(ctx, id, func(e *convoy.Endpoint) error {
			before = e.Status
			return fn(e)
		})
		if err == nil {
			l.endpointUpdated(s.inc, ep, before)
		}
		return ep, err
	})
}

func (s *faultStore) DeleteEndpoint(ctx context.Context, id string) error {
	_, err := call(s, ctx, "DeleteEndpoint", s.w.led.name("endpoint", id), func() (struct{}, error) {
		l := s.w.led
		l.mu.Lock()
		defer l.mu.Unlock()
		err := s.st.DeleteEndpoint(ctx, id)
		if err == nil {
			l.endpointRemoved(id)
		}
		return struct{}{}, err
	})
	return err
}

func (s *faultStore) ListEndpoints(ctx context.Context, appID string, page convoy.Page) ([]*convoy.Endpoint, string, error) {
	type r struct {
		e    []*convoy.Endpoint
		next string
	}
	v, err := call(s, ctx, "ListEndpoints", s.w.led.name("app", appID)+" "+page.Cursor, func() (r, error) {
		e, n, err := s.st.ListEndpoints(ctx, appID, page)
		return r{e, n}, err
	})
	return v.e, v.next, err
}

func (s *faultStore) InsertEvent(ctx context.Context, ev *convoy.Event, ds []*convoy.Delivery) (convoy.InsertResult, error) {
	return call(s, ctx, "InsertEvent", s.w.led.name("send", ""), func() (convoy.InsertResult, error) {
		l := s.w.led
		l.mu.Lock()
		defer l.mu.Unlock()
		res, err := s.st.InsertEvent(ctx, ev, ds)
		if err == nil {
			l.insert(ev, res)
		}
		return res, err
	})
}

func (s *faultStore) GetEvent(ctx context.Context, id string) (*convoy.Event, error) {
	return call(s, ctx, "GetEvent", s.w.led.name("event", id), func() (*convoy.Event, error) { return s.st.GetEvent(ctx, id) })
}

func (s *faultStore) ListEvents(ctx context.Context, q convoy.EventQuery, page convoy.Page) ([]*convoy.Event, string, error) {
	type r struct {
		e    []*convoy.Event
		next string
	}
	v, err := call(s, ctx, "ListEvents", page.Cursor, func() (r, error) { e, n, err := s.st.ListEvents(ctx, q, page); return r{e, n}, err })
	return v.e, v.next, err
}

func (s *faultStore) GetDelivery(ctx context.Context, id string) (*convoy.Delivery, error) {
	return call(s, ctx, "GetDelivery", s.w.led.name("delivery", id), func() (*convoy.Delivery, error) { return s.st.GetDelivery(ctx, id) })
}

func (s *faultStore) ListDeliveries(ctx context.Context, q convoy.DeliveryQuery, page convoy.Page) ([]*convoy.Delivery, string, error) {
	type r struct {
		d    []*convoy.Delivery
		next string
	}
	v, err := call(s, ctx, "ListDeliveries", page.Cursor, func() (r, error) {
		d, n, err := s.st.ListDeliveries(ctx, q, page)
		return r{d, n}, err
	})
	return v.d, v.next, err
}

func (s *faultStore) ListAttempts(ctx context.Context, id string, page convoy.Page) ([]*convoy.Attempt, string, error) {
	type r struct {
		a    []*convoy.Attempt
		next string
	}
	v, err := call(s, ctx, "ListAttempts", s.w.led.name("delivery", id)+" "+page.Cursor, func() (r, error) { a, n, err := s.st.ListAttempts(ctx, id, page); return r{a, n}, err })
	return v.a, v.next, err
}

func (s *faultStore) Claim(ctx context.Context, req convoy.ClaimRequest) ([]*convoy.Delivery, error) {
	ds, _, err := s.claim(ctx, req, func() ([]*convoy.Delivery, []*convoy.Event, error) {
		ds, err := s.st.Claim(ctx, req)
		return ds, nil, err
	})
	return ds, err
}

// ClaimEvents implements convoy.EventClaimer over a store that has it, and
// over one that does not with no events (the workers read them).
func (s *faultStore) ClaimEvents(ctx context.Context, req convoy.ClaimRequest) ([]*convoy.Delivery, []*convoy.Event, error) {
	return s.claim(ctx, req, func() ([]*convoy.Delivery, []*convoy.Event, error) {
		if ec, ok := s.st.(convoy.EventClaimer); ok {
			return ec.ClaimEvents(ctx, req)
		}
		ds, err := s.st.Claim(ctx, req)
		return ds, nil, err
	})
}

// claim runs a Claim or ClaimEvents call, fn, under the world's faults.
func (s *faultStore) claim(ctx context.Context, req convoy.ClaimRequest, fn func() ([]*convoy.Delivery, []*convoy.Event, error)) ([]*convoy.Delivery, []*convoy.Event, error) {
	kind, stall, err := s.enter(ctx, "Claim", "")
	if err != nil {
		return nil, nil, err
	}
	l := s.w.led
	l.mu.Lock()
	ds, evs, err := fn()
	if err == nil {
		l.claim(s.inc, req, ds, false)
	}
	l.mu.Unlock()
	if err = s.leave(ctx, "Claim", "", kind, stall, err); err != nil {
		if len(ds) > 0 {
			// The claim landed and its caller is told it failed: nobody
			// works on what it leased until the leases expire.
			l.mu.Lock()
			l.orphaned(ds)
			l.mu.Unlock()
		}
		return nil, nil, err
	}
	return ds, evs, nil
}

func (s *faultStore) Record(ctx context.Context, t convoy.Transition) (convoy.RecordResult, error) {
	subject := s.w.led.recordName(t.DeliveryID, t.LeaseID, t.Attempt)
	kind, stall, err := s.enter(ctx, "Record", subject)
	if err != nil {
		return convoy.RecordResult{}, err
	}
	obs := &recordObs{}
	if f := t.EndpointStatus; f != nil {
		t.EndpointStatus = func(ep convoy.Endpoint) convoy.EndpointStatus {
			st := f(ep)
			obs.called, obs.view, obs.chose = true, ep, st
			return st
		}
	}
	l := s.w.led
	l.mu.Lock()
	res, err := s.st.Record(ctx, t)
	l.record(s.inc, t, res, err, obs, kind == FailAfter)
	l.mu.Unlock()
	if err = s.leave(ctx, "Record", subject, kind, stall, err); err != nil {
		return convoy.RecordResult{}, err
	}
	if obs.ep != nil {
		// The dispatcher learns now that the record changed the
		// endpoint's status: it must report it.
		l.mu.Lock()
		l.expectHook(obs.ep, s.inc, obs.from, obs.to)
		l.mu.Unlock()
	}
	return res, nil
}

func (s *faultStore) Release(ctx context.Context, deliveryID, leaseID string) error {
	subject := s.w.led.recordName(deliveryID, leaseID, nil)
	kind, stall, err := s.enter(ctx, "Release", subject)
	if err != nil {
		return err
	}
	l := s.w.led
	l.mu.Lock()
	err = s.st.Release(ctx, deliveryID, leaseID)
	l.release(s.inc, deliveryID, leaseID, err)
	l.mu.Unlock()
	return s.leave(ctx, "Release", subject, kind, stall, err)
}

func (s *faultStore) NextDue(ctx context.Context) (time.Time, bool, error) {
	type r struct {
		t  time.Time
		ok bool
	}
	v, err := call(s, ctx, "NextDue", "", func() (r, error) { t, ok, err := s.st.NextDue(ctx); return r{t, ok}, err })
	return v.t, v.ok, err
}

func (s *faultStore) Requeue(ctx context.Context, req convoy.RequeueRequest) (int, error) {
	subject := s.w.led.name("delivery", req.DeliveryID) + s.w.led.name("endpoint", req.EndpointID)
	kind, stall, err := s.enter(ctx, "Requeue", subject)
	if err != nil {
		return 0, err
	}
	l := s.w.led
	l.mu.Lock()
	n, err := s.st.Requeue(ctx, req)
	if err == nil {
		l.requeue(req, n)
	}
	l.mu.Unlock()
	if err = s.leave(ctx, "Requeue", subject, kind, stall, err); err != nil {
		return 0, err
	}
	return n, nil
}

func (s *faultStore) DeleteBefore(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	return call(s, ctx, "DeleteBefore", "", func() (int, error) { return s.st.DeleteBefore(ctx, cutoff, limit) })
}

// Stats goes straight to the store: the checks call it while everything
// is at rest, and the dispatchers never do.
func (s *faultStore) Stats(ctx context.Context, now time.Time) (convoy.StoreStats, error) {
	if s.inc.fenced() {
		return convoy.StoreStats{}, errCrashed
	}
	return s.st.Stats(ctx, now)
}

// claimingStore is a faultStore that forwards the store's
// convoy.ClaimingInserter, so that Send's fast path runs: it is what the
// dispatchers of a scenario with ClaimInsert see.
type claimingStore struct {
	*faultStore
	ci convoy.ClaimingInserter
}

var _ convoy.ClaimingInserter = (*claimingStore)(nil)

// InsertEventClaim is InsertEvent and a Claim in one: it takes
// InsertEvent's faults, and the ledger learns of the event as of an
// InsertEvent and of the leases as of a Claim.
func (s *claimingStore) InsertEventClaim(ctx context.Context, ev *convoy.Event, ds []*convoy.Delivery, req convoy.ClaimRequest) (convoy.InsertResult, error) {
	subject := s.w.led.name("send", "")
	kind, stall, err := s.enter(ctx, "InsertEvent", subject)
	if err != nil {
		return convoy.InsertResult{}, err
	}
	l := s.w.led
	l.mu.Lock()
	res, err := s.ci.InsertEventClaim(ctx, ev, ds, req)
	var leased []*convoy.Delivery
	if err == nil {
		leased = l.insertClaim(s.inc, ev, res, req)
	}
	l.mu.Unlock()
	if err = s.leave(ctx, "InsertEvent", subject, kind, stall, err); err != nil {
		if len(leased) > 0 {
			l.mu.Lock()
			l.orphaned(leased)
			l.mu.Unlock()
		}
		return convoy.InsertResult{}, err
	}
	return res, nil
}

// Close does nothing: the run closes the store it shares.
func (s *faultStore) Close() error { return nil }
