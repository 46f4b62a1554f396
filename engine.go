package convoy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// claimCoalesce is the longest the scheduler waits for more free workers
// before claiming for the few it has.
const claimCoalesce = time.Millisecond

// run owns the scheduler and the worker pool; it returns when both are
// gone. runCtx stops claiming; workCtx cancels attempts in flight.
func (d *Dispatcher) run(runCtx, workCtx context.Context) {
	defer close(d.done)
	hooks := d.startHooks()
	defer hooks.close(workCtx.Done())
	if w, ok := d.store.(Waker); ok {
		// Work made due by other processes on a shared store.
		unsubscribe := w.SubscribeWake(d.notify)
		defer unsubscribe()
	}
	if d.cfg.Retention > 0 {
		var retained sync.WaitGroup
		retained.Add(1)
		go func() {
			defer retained.Done()
			d.retain(runCtx)
		}()
		defer retained.Wait()
	}

	jobs := make(chan job)
	rec := d.startRecorder(workCtx, hooks)
	var wg sync.WaitGroup
	for range d.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var j job
				select {
				case next, ok := <-jobs:
					if !ok {
						return
					}
					j = next
				case j = <-d.ready:
				}
				d.deliver(workCtx, rec, j)
				d.release(j.dl.EndpointID)
			}
		}()
	}
	d.schedule(runCtx, jobs)
	close(jobs)
	wg.Wait()
	// Sends that leased deliveries to this dispatcher before Close hand
	// them over; nobody attempts them now, so they go back to the queue.
	d.sending.Wait()
	for {
		select {
		case j := <-d.ready:
			d.releaseLease(j.dl)
			d.release(j.dl.EndpointID)
			continue
		default:
		}
		break
	}
	rec.close()
}

// job is a leased delivery for a worker, with what Send already read for
// it when it leased the delivery itself (ep and ev are nil otherwise).
type job struct {
	dl *Delivery
	ep *Endpoint
	ev *Event
	// blind is set when the delivery was admitted before its endpoint
	// was known here: its rate limit, if any, is applied once it is.
	blind bool
}

// recorder stores the results of attempts off the workers: a worker hands
// its transition over and takes the next delivery while the store commits
// (with bolt, an fsync shared by the whole batch). The delivery keeps its
// lease until the record lands, so nothing can claim it meanwhile. A
// fixed pool of Workers goroutines takes records from a queue that holds
// Workers more; past that, workers wait too.
type recorder struct {
	queue chan recordJob
	wg    sync.WaitGroup
}

// recordJob is a transition waiting for the recorder.
type recordJob struct {
	dl *Delivery
	ep *Endpoint
	t  Transition
}

// startRecorder starts the recording goroutines; close stops them once
// the queue is empty.
func (d *Dispatcher) startRecorder(ctx context.Context, hooks *hookRunner) *recorder {
	r := &recorder{queue: make(chan recordJob, d.cfg.Workers)}
	// Records outlive ctx by recordGrace: one that lands spares the
	// delivery a second attempt once its lease expires, and a store that
	// hangs cannot hold Close for longer.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(recordGrace, cancel) })
	deadlines := newRecordDeadlines(rctx)
	var running sync.WaitGroup
	for range d.cfg.Workers {
		running.Add(1)
		go func() {
			defer running.Done()
			for rj := range r.queue {
				d.record(ctx, deadlines, hooks, rj.dl, rj.ep, rj.t)
			}
		}()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		running.Wait()
		stop()
		cancel()
	}()
	return r
}

// recordGrace is how long records still in flight may take once Close
// has given up waiting.
const recordGrace = 30 * time.Second

// recordCallTimeout bounds one Record call of the recorder, give or take
// recordDeadlineStep (see recordDeadlines).
const recordCallTimeout = 30 * time.Second

// recordDeadlineStep is how long one context of recordDeadlines serves
// the Record calls that start.
const recordDeadlineStep = time.Second

// recordDeadlines hands out the contexts that bound Record calls: one
// context for all the calls that start within the same step, ending
// timeout after the step does. A record then costs no context and no
// timer of its own, and each call still ends between timeout and
// timeout+step after it began (or when parent ends).
type recordDeadlines struct {
	parent        context.Context
	step, timeout time.Duration
	now           func() time.Time

	mu    sync.Mutex
	cur   context.Context
	until time.Time // the last start time cur serves
	// cancel is cur's, kept but never called: calls may still run under
	// cur when the next step begins, so every step's context ends at its
	// own deadline, or with parent (which the recorder cancels when it
	// stops).
	cancel context.CancelFunc
}

func newRecordDeadlines(parent context.Context) *recordDeadlines {
	return &recordDeadlines{parent: parent, step: recordDeadlineStep, timeout: recordCallTimeout, now: time.Now}
}

// get returns the context for a Record call starting now.
func (r *recordDeadlines) get() context.Context {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil || now.After(r.until) {
		r.until = now.Add(r.step)
		r.cur, r.cancel = context.WithDeadline(r.parent, r.until.Add(r.timeout))
	}
	return r.cur
}

func (r *recorder) record(dl *Delivery, ep *Endpoint, t Transition) {
	r.queue <- recordJob{dl, ep, t}
}

// close waits for every queued record to be stored (or given up).
func (r *recorder) close() {
	close(r.queue)
	r.wg.Wait()
}

// schedule claims due work while there is free capacity and sleeps until
// the next due time, a Send, a finished attempt or the poll interval.
//
// Claims run on goroutines of their own, up to maxClaims at once: with
// bolt a claim waits for a group commit, and workers that finish
// meanwhile would otherwise wait for it to land before a claim could
// start for them. A claim started while another is in flight asks only
// for the workers the other may not fill, and for PerEndpoint (and every
// flow-control cap) less them, so that no endpoint gets more than its
// share, whichever endpoints the claim in flight leases.
func (d *Dispatcher) schedule(ctx context.Context, jobs chan<- job) {
	var errWait time.Duration
	batch := max(1, d.cfg.Workers/8)
	coalesce := time.NewTimer(0)
	defer coalesce.Stop()
	var coalesceUntil time.Time
	results := make(chan claimResult, maxClaims)
	var order claimOrder
	// inflight claims, asking for reserved workers in all.
	inflight, reserved := 0, 0
	// drained: the last claim found less than it asked for and nothing
	// woke the scheduler since it started, so claiming again now would
	// find nothing either.
	// drainedAt is the time that claim looked at: the sleep that follows
	// counts from it, so that work coming due since then (a clock moved
	// meanwhile) is claimed at once.
	drained, woken := false, false
	var drainedAt time.Time
	handle := func(r claimResult) {
		inflight--
		reserved -= r.n
		if ctx.Err() != nil || d.isClosed() {
			// Close began while the claim was in flight: no new attempt
			// starts, so what it leased goes back to the queue. Close
			// refuses Sends a moment before it stops the scheduler, and
			// a claim landing in between must not start attempts either.
			for _, dl := range r.ds {
				d.releaseLease(dl)
			}
			return
		}
		d.handOut(r, jobs)
		if r.err == nil && order.latest(r.seq) {
			d.backlog.Store(len(r.ds) >= r.n)
		}
		if r.err == nil && len(r.ds) < r.n && !woken {
			drained, drainedAt = true, r.now
		}
	}
	defer func() {
		// Claims that complete give their deliveries back: none stays
		// leased for nothing.
		for inflight > 0 {
			handle(<-results)
		}
	}()
	for ctx.Err() == nil {
		if d.storeBad.active() {
			// Results cannot be stored: every new claim would send a
			// request whose record is lost, and the restart that follows
			// would send it again. Claim nothing until a record lands
			// (which wakes us) or a poll interval passes.
			if inflight > 0 {
				handle(<-results)
				continue
			}
			d.sleepRecordsFailing(ctx)
			continue
		}
		free := d.freeWorkers()
		// Workers that the claims in flight may fill are not free for
		// another claim. They are not counted busy either: a Send may
		// still lease for an idle worker meanwhile (workers then take
		// the claims' deliveries as they finish).
		free -= reserved
		if inflight > 0 && (free < batch || drained || inflight == maxClaims || d.cfg.PerEndpoint-reserved < 1) {
			// Wait for a claim in flight, or for more free workers.
			select {
			case <-ctx.Done():
				return
			case r := <-results:
				handle(r)
				if r.err != nil {
					if !d.claimFailed(ctx, r.err, &errWait) {
						return
					}
				} else {
					errWait = 0
				}
			case <-d.wake:
				woken, drained = true, false
			case <-d.freed:
				// More free workers, or room under an endpoint's cap that
				// the claim in flight may have found full: what it finds
				// does not show that nothing is left to claim.
				woken, drained = true, false
			}
			continue
		}
		// While most workers are busy, let a few more finish so that one
		// claim (one store transaction) serves several of them; wait at
		// most claimCoalesce for that.
		if inflight == 0 && free > 0 && free < batch && free < d.cfg.Workers && !drained {
			if coalesceUntil.IsZero() {
				coalesceUntil = time.Now().Add(claimCoalesce)
			}
			if wait := time.Until(coalesceUntil); wait > 0 {
				coalesce.Reset(wait)
				select {
				case <-ctx.Done():
					return
				case <-d.wake:
					woken = true
				case <-d.freed:
					woken = true
				case <-coalesce.C:
				}
				coalesce.Stop()
				continue
			}
		}
		coalesceUntil = time.Time{}
		now := d.clock.Now()
		if free > 0 && !drained {
			inFlight := d.inFlightNow()
			req := ClaimRequest{
				Now:         now,
				Limit:       free,
				Owner:       d.owner,
				Lease:       d.cfg.Lease,
				PerEndpoint: d.cfg.PerEndpoint - reserved, // ≥ 1, checked above
				InFlight:    inFlight,
				Caps:        d.flow.caps(inFlight, now),
			}
			for id, c := range req.Caps {
				req.Caps[id] = max(0, c-reserved)
			}
			inflight++
			reserved += free
			woken = false
			seq := order.start()
			go func() {
				// Not ctx: a claim cut short by Close may still have leased
				// deliveries (a store cannot always tell), which would then
				// sit leased until their lease ends.
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				var r claimResult
				if ec, ok := d.store.(EventClaimer); ok {
					r.ds, r.evs, r.err = ec.ClaimEvents(cctx, req)
				} else {
					r.ds, r.err = d.store.Claim(cctx, req)
				}
				cancel()
				r.n, r.now, r.seq = req.Limit, now, seq
				results <- r
			}()
			continue
		}
		since := now
		if drained {
			since = drainedAt
		}
		d.sleep(ctx, free > 0, since)
		drained = false
	}
}

// maxClaims is how many claims the scheduler keeps in flight at once.
const maxClaims = 2

// claimResult is what one of the scheduler's claims returned; n is the
// workers it asked for, seq its place in the order claims started (see
// claimOrder). evs, from an EventClaimer, holds the event of each
// delivery (nil where the worker reads it itself).
type claimResult struct {
	n   int
	seq uint64
	ds  []*Delivery
	evs []*Event
	err error
	now time.Time
}

// claimOrder numbers the scheduler's claims as they start, so that what
// a result says of the store (the backlog) is taken from the latest
// claim only: with two in flight, the older one can land after a newer
// one that saw less due work (the older took it).
type claimOrder struct{ started, applied uint64 }

// start numbers a claim that starts now.
func (o *claimOrder) start() uint64 {
	o.started++
	return o.started
}

// latest reports whether claim seq started after every claim whose
// result was taken so far, and takes it.
func (o *claimOrder) latest(seq uint64) bool {
	if seq <= o.applied {
		return false
	}
	o.applied = seq
	return true
}

// claimFailed logs a failed claim and waits before the next one; it
// reports false when ctx ended meanwhile.
func (d *Dispatcher) claimFailed(ctx context.Context, err error, errWait *time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	*errWait = min(max(2**errWait, 10*time.Millisecond), d.cfg.PollInterval)
	d.log.LogAttrs(ctx, slog.LevelWarn, "convoy: claim failed, will retry",
		slog.String("error", err.Error()), slog.Duration("retry_in", *errWait))
	return sleepCtx(ctx, *errWait)
}

// handOut gives a claim's deliveries to workers.
func (d *Dispatcher) handOut(r claimResult, jobs chan<- job) {
	for i, dl := range r.ds {
		blind := !d.flow.known(dl.EndpointID)
		if !d.admitClaimed(dl.EndpointID, r.now) {
			// Back to the queue, with no attempt spent.
			d.releaseLease(dl)
			continue
		}
		var ev *Event
		if i < len(r.evs) {
			ev = r.evs[i]
		}
		jobs <- job{dl: dl, ev: ev, blind: blind}
	}
}

// admitClaimed takes a worker for a claimed delivery of endpoint id (busy
// and in flight until release), unless the endpoint has PerEndpoint
// attempts in flight or its flow limits refuse one more. Either can
// happen although the claim asked for no more: its leases count in
// inFlight only from here, so a Send that leased while the claim was in
// flight did not see them; and the claim may have run before the
// endpoint's limits were known here.
func (d *Dispatcher) admitClaimed(id string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.inFlight[id]
	if n >= d.cfg.PerEndpoint || !d.flow.admit(id, n, now) {
		return false
	}
	d.busy++
	d.inFlight[id]++
	return true
}

// sleep waits for a wake-up, the next due time (when there is capacity to
// use it) or the poll interval, counted from since, the time the claim
// looked at.
func (d *Dispatcher) sleep(ctx context.Context, haveCapacity bool, since time.Time) {
	wait := d.cfg.PollInterval
	if next := d.flow.next(since); !next.IsZero() {
		// A rate token or the end of a cool-down may release due work.
		wait = min(wait, next.Sub(since))
	}
	// freed matters only while something is due: with nothing due, a
	// worker that finishes has nothing to take.
	freed := d.freed
	if haveCapacity {
		next, ok, err := d.store.NextDue(ctx)
		if err == nil && (!ok || next.After(since)) {
			freed = nil
			d.backlog.Store(false) // nothing due: Sends may lease again
		}
		if err == nil && ok {
			switch dt := next.Sub(since); {
			case dt > 0:
				wait = min(wait, dt)
			default:
				// Due already, yet not claimed: it belongs to an endpoint
				// at its cap. NextDue is store-wide, so it can hide other
				// endpoints' work coming due sooner (a retry recorded
				// meanwhile, or entries bolt set aside past its claim
				// bound): look again soon rather than a whole poll later.
				wait = min(wait, max(10*time.Millisecond, d.cfg.PollInterval/10))
			}
		}
	}
	t := d.clock.NewTimer(wait)
	defer t.Stop()
	// The timer counts from when it was armed. If the clock passed
	// since+wait in the meantime (a slow store, or a test moving a fake
	// clock), what we meant to wake for is due already: look again now.
	if d.clock.Now().Sub(since) >= wait {
		return
	}
	select {
	case <-ctx.Done():
	case <-d.wake:
	case <-freed:
	case <-t.C():
	}
}

// sleepRecordsFailing waits for a wake-up or a poll interval.
func (d *Dispatcher) sleepRecordsFailing(ctx context.Context) {
	t := d.clock.NewTimer(d.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-d.wake:
	case <-t.C():
	}
}

// freeWorkers is how many workers are neither busy nor reserved by Send.
func (d *Dispatcher) freeWorkers() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg.Workers - d.busy
}

// inFlightNow is a copy of the attempts running or reserved, by endpoint,
// for a claim (taken only when one is made: the scheduler's other turns
// need the free count alone).
func (d *Dispatcher) inFlightNow() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.inFlight)
}

func (d *Dispatcher) release(endpointID string) {
	d.mu.Lock()
	d.busy--
	if d.inFlight[endpointID]--; d.inFlight[endpointID] <= 0 {
		delete(d.inFlight, endpointID)
	}
	d.mu.Unlock()
	d.freedUp()
}

// deliver runs one claimed delivery to its end: exactly one Record or
// Release.
func (d *Dispatcher) deliver(ctx context.Context, rec *recorder, j job) {
	dl := j.dl
	ep, app, ev, err := d.loadRetrying(ctx, j)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			// The endpoint or event was deleted while the delivery was due;
			// deletion removes the delivery too.
			d.log.LogAttrs(ctx, slog.LevelInfo, "convoy: delivery target gone",
				slog.String("delivery_id", dl.ID), slog.String("error", err.Error()))
			return
		}
		if ctx.Err() != nil { // Close gave up waiting: hand it back now
			d.releaseLease(dl)
			return
		}
		d.log.LogAttrs(ctx, slog.LevelWarn, "convoy: loading delivery failed; its lease will expire and it will be retried",
			slog.String("delivery_id", dl.ID), slog.String("error", err.Error()))
		return
	}

	now := d.clock.Now()
	d.flow.observe(ep, now)
	if j.blind && !d.flow.admitKnown(dl.EndpointID, now) {
		// Its endpoint has a rate limit, learnt only now, and no token
		// left: back to the queue, with no attempt spent.
		d.releaseLease(dl)
		return
	}
	t := Transition{DeliveryID: dl.ID, LeaseID: dl.LeaseID, Now: now}
	switch {
	case dl.Claims > d.cfg.MaxClaims:
		t.Status = DeliveryFailure
		t.EndpointStatus = d.failurePolicy(false, now)
		d.log.LogAttrs(ctx, slog.LevelWarn, "convoy: delivery claimed too often without an attempt (its processes kept crashing); abandoned in Failure",
			slog.String("delivery_id", dl.ID), slog.Int("claims", dl.Claims))
	case ep.Status == EndpointInactive:
		t.Status = DeliveryDiscarded
	case !now.Add(d.cfg.Timeout).Before(dl.LeaseExpiresAt):
		// Loading took so long (a slow store) that the attempt could
		// outlive the lease: another dispatcher could take the delivery
		// over and send it at the same time. Give it back to be claimed
		// afresh instead.
		d.log.LogAttrs(ctx, slog.LevelWarn, "convoy: too little of the lease left for an attempt after a slow load; released to be claimed again",
			slog.String("delivery_id", dl.ID), slog.Time("lease_expires_at", dl.LeaseExpiresAt))
		d.releaseLease(dl)
		return
	default:
		actx := d.obs.attemptStart(ctx, dl, ev)
		a, out := d.attempt(actx, dl, ep, app, ev)
		if out.shutdown {
			d.obs.attemptEnd(actx, dl, ev, a, nil)
			d.releaseLease(dl)
			return
		}
		// Counted before the record lands, so a Stats that sees the new
		// status has counted its attempt.
		d.counts.attempts.Add(1)
		if !a.Success() {
			d.counts.failures.Add(1)
		}
		now = d.clock.Now()
		t.Now, t.Attempt = now, a
		d.decide(&t, dl, ep, out, now)
		d.obs.attemptEnd(actx, dl, ev, a, &t)
		d.recent.add(dl.EndpointID, now, !a.Success())
		if before, after := d.flow.result(dl.EndpointID, a, out.overload, now); before != after {
			d.log.LogAttrs(ctx, slog.LevelWarn, "convoy: endpoint circuit "+string(after),
				slog.String("endpoint_id", dl.EndpointID), slog.String("was", string(before)))
		}
	}
	rec.record(dl, ep, t)
}

// stored returns what Record stores of an attempt: all of it but the
// request body, which is the event's data (ListAttempts fills it back).
func stored(t Transition) Transition {
	if t.Attempt != nil && t.Attempt.RequestBody != nil {
		a := *t.Attempt
		a.RequestBody = nil
		t.Attempt = &a
	}
	return t
}

// decide fills in the delivery's next state and the endpoint rule after an
// attempt.
func (d *Dispatcher) decide(t *Transition, dl *Delivery, ep *Endpoint, out outcome, now time.Time) {
	if t.Attempt.Success() {
		t.Status = DeliverySuccess
		t.EndpointStatus = func(e Endpoint) EndpointStatus {
			if e.Status == EndpointPending {
				return EndpointActive
			}
			return e.Status
		}
		return
	}
	var strategy = d.cfg.Retry
	if ep.Retry != nil {
		strategy = *ep.Retry
	}
	wait, again := d.nextRetry(strategy, dl)
	if out.gone || out.blocked {
		again = false
	}
	if again {
		// Retry-After, capped at MaxRetryAfter, may put the retry later
		// than the strategy's wait, never sooner.
		wait = max(wait, min(out.retryAfter, d.cfg.MaxRetryAfter))
		t.Status = DeliveryRetry
		t.NextAttemptAt = now.Add(wait)
	} else {
		t.Status = DeliveryFailure
	}
	if out.gone {
		t.EndpointStatus = func(Endpoint) EndpointStatus { return EndpointInactive }
		return
	}
	t.EndpointStatus = d.failurePolicy(t.Status == DeliveryFailure, now)
}

// nextRetry asks the strategy for the next wait. A panicking strategy (a
// bug in user code) ends the delivery in Failure, from where it can be
// re-sent, rather than crashing the process.
func (d *Dispatcher) nextRetry(s RetryStrategy, dl *Delivery) (wait time.Duration, again bool) {
	defer func() {
		if r := recover(); r != nil {
			wait, again = 0, false
			d.log.LogAttrs(context.Background(), slog.LevelError, "convoy: the RetryStrategy panicked; the delivery ends in Failure",
				slog.String("delivery_id", dl.ID), slog.String("panic", fmt.Sprint(r)))
		}
	}()
	return s.NextRetry(dl.RoundAttempts + 1)
}

// dead asks the DeadEndpoint policy; a panicking policy keeps the endpoint
// as it is.
func (d *Dispatcher) dead(h EndpointHealth, exhausted bool, now time.Time) (dead bool) {
	defer func() {
		if r := recover(); r != nil {
			dead = false
			d.log.LogAttrs(context.Background(), slog.LevelError, "convoy: the DeadEndpoint policy panicked; the endpoint keeps its status",
				slog.String("panic", fmt.Sprint(r)))
		}
	}()
	return d.cfg.DeadEndpoint.Dead(h, exhausted, now)
}

// failurePolicy returns the endpoint rule after a failure: a pending
// endpoint dies with its next exhausted delivery, others as the
// DeadEndpoint policy says.
func (d *Dispatcher) failurePolicy(exhausted bool, now time.Time) func(Endpoint) EndpointStatus {
	return func(e Endpoint) EndpointStatus {
		switch {
		case e.Status == EndpointInactive:
			return e.Status
		case e.Status == EndpointPending && exhausted:
			return EndpointInactive
		case d.dead(e.Health, exhausted, now):
			return EndpointInactive
		}
		return e.Status
	}
}

// loadRetrying is load, retrying transient store errors with backoff while
// the lease leaves time for the attempt. Without it a store that fails for
// a moment would cost the delivery a lease and count as a crashed claim,
// and MaxClaims of those end it in Failure without a request.
func (d *Dispatcher) loadRetrying(ctx context.Context, j job) (*Endpoint, *App, *Event, error) {
	dl := j.dl
	wait := 10 * time.Millisecond
	for {
		ep, app, ev, err := d.load(ctx, j)
		if err == nil || errors.Is(err, ErrNotFound) ||
			!d.clock.Now().Add(d.cfg.Timeout).Before(dl.LeaseExpiresAt) {
			return ep, app, ev, err
		}
		d.log.LogAttrs(ctx, slog.LevelWarn, "convoy: loading delivery failed, will retry",
			slog.String("delivery_id", dl.ID), slog.String("error", err.Error()))
		if !sleepCtx(ctx, wait) {
			return nil, nil, nil, err
		}
		wait = min(2*wait, time.Second)
	}
}

// load reads what an attempt needs: the event from the store, the endpoint
// and app through the settings cache (see settingsTTL), unless the job
// carries them from Send.
func (d *Dispatcher) load(ctx context.Context, j job) (*Endpoint, *App, *Event, error) {
	dl := j.dl
	ep := j.ep
	if ep == nil {
		var tok readToken
		ep, tok = d.cache.endpoint(dl.EndpointID)
		if ep == nil {
			var err error
			if ep, err = d.store.GetEndpoint(ctx, dl.EndpointID); err != nil {
				return nil, nil, nil, fmt.Errorf("convoy: load endpoint: %w", err)
			}
			d.cache.putEndpoint(ep, tok)
		}
	}
	app, gen := d.cache.app(dl.AppID)
	if app == nil {
		var err error
		if app, err = d.store.GetApp(ctx, dl.AppID); err != nil {
			return nil, nil, nil, fmt.Errorf("convoy: load app: %w", err)
		}
		d.cache.putApp(app, gen)
	}
	if j.ev != nil {
		return ep, app, j.ev, nil
	}
	ev, err := d.store.GetEvent(ctx, dl.EventID)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("convoy: load event: %w", err)
	}
	return ep, app, ev, nil
}

// record stores the transition, retrying transient store errors until the
// dispatcher is aborted; if it never lands, the lease expires and the
// delivery is attempted again (at least once, never lost).
//
// ctx ends when Close gives up waiting, and stops the retries; the store
// is called with a context of deadlines, which end recordGrace later, so
// that a record already on its way is not cut short. Each call is also
// bounded by about recordCallTimeout, so that a store call that hangs (a
// network store's dead connection) is retried rather than holding its
// goroutine.
func (d *Dispatcher) record(ctx context.Context, deadlines *recordDeadlines, hooks *hookRunner, dl *Delivery, ep *Endpoint, t Transition) {
	wait := 10 * time.Millisecond
	st := stored(t)
	failed := false
	defer func() {
		if failed {
			d.storeBad.done(ctx, d.log)
			d.notify() // the scheduler may be paused on this record
		}
	}()
	for {
		res, err := d.store.Record(deadlines.get(), st)
		if err == nil {
			if t.Status == DeliveryRetry || ep.Ordered {
				// Work came due, or will: a retry (the scheduler may be
				// sleeping until the old lease expiry, later than it), or
				// the next head of an ordered endpoint.
				d.notify()
			} else {
				// The lease no longer counts against the endpoint's cap.
				d.freedUp()
			}
			d.afterRecord(ctx, hooks, dl, ep, t, res)
			return
		}
		if errors.Is(err, ErrLeaseLost) || errors.Is(err, ErrNotFound) {
			d.log.LogAttrs(ctx, slog.LevelWarn, "convoy: result not recorded: lease lost",
				slog.String("delivery_id", dl.ID), slog.String("error", err.Error()))
			return
		}
		if errors.Is(err, ErrInvalid) { // retrying cannot help
			d.log.LogAttrs(ctx, slog.LevelError, "convoy: result refused by the store; its lease will expire",
				slog.String("delivery_id", dl.ID), slog.String("error", err.Error()))
			return
		}
		d.storeBad.fail(ctx, d.log, d.clock.Now(), err, !failed)
		failed = true
		if !sleepCtx(ctx, wait) {
			return
		}
		wait = min(2*wait, time.Second)
	}
}

// releaseLease gives back a delivery whose attempt was cut short by Close.
func (d *Dispatcher) releaseLease(dl *Delivery) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.store.Release(ctx, dl.ID, dl.LeaseID); err != nil {
		d.log.LogAttrs(ctx, slog.LevelWarn, "convoy: release failed; the lease will expire",
			slog.String("delivery_id", dl.ID), slog.String("error", err.Error()))
	}
}

// afterRecord logs the outcome and queues the hooks.
func (d *Dispatcher) afterRecord(ctx context.Context, hooks *hookRunner, dl *Delivery, ep *Endpoint, t Transition, res RecordResult) {
	next := *dl
	next.Status = t.Status
	next.NextAttemptAt = t.NextAttemptAt
	next.LeaseID, next.LeaseOwner, next.LeaseExpiresAt = "", "", time.Time{}
	if a := t.Attempt; a != nil {
		next.Attempts++
		next.RoundAttempts++
		next.Claims = 0
		if !a.Success() {
			next.LastError = a.Error
		}
		level := slog.LevelWarn
		if a.Success() {
			level = slog.LevelDebug
		}
		// No attributes are built for a record nobody reads.
		if d.log.Enabled(ctx, level) {
			attrs := []slog.Attr{
				slog.String("delivery_id", dl.ID), slog.String("event_id", dl.EventID),
				slog.String("endpoint_id", dl.EndpointID), slog.Int("attempt", a.Number),
				slog.Int("status_code", a.StatusCode), slog.Duration("duration", a.Duration),
				slog.String("next", string(t.Status)),
			}
			msg := "convoy: attempt succeeded"
			if !a.Success() {
				msg = "convoy: attempt failed"
				attrs = append(attrs, slog.String("error", a.Error))
				if t.Status == DeliveryRetry {
					attrs = append(attrs, slog.Time("next_attempt_at", t.NextAttemptAt))
				}
			}
			d.log.LogAttrs(ctx, level, msg, attrs...)
		}
	}
	abandoned := t.Attempt == nil && t.Status == DeliveryFailure
	if abandoned {
		d.counts.abandoned.Add(1)
	}
	d.obs.recorded(ctx, dl, t, res, abandoned)
	hooks.attempt(AttemptEvent{Delivery: next, Attempt: t.Attempt, Abandoned: abandoned})
	if res.EndpointBefore != res.EndpointAfter {
		d.cache.forgetEndpoint(ep.ID)
		reason := ReasonRecovered
		switch {
		case res.EndpointAfter == EndpointInactive && t.Attempt != nil && t.Attempt.StatusCode == 410:
			reason = ReasonGone
		case res.EndpointAfter == EndpointInactive:
			reason = ReasonFailing
		}
		d.endpointChanged(ctx, hooks, EndpointStatusEvent{
			EndpointID: ep.ID, AppID: ep.AppID, From: res.EndpointBefore, To: res.EndpointAfter,
			Reason: reason, At: t.Now,
		})
	}
}

func (d *Dispatcher) endpointChanged(ctx context.Context, hooks *hookRunner, e EndpointStatusEvent) {
	d.log.LogAttrs(ctx, slog.LevelInfo, "convoy: endpoint status changed",
		slog.String("endpoint_id", e.EndpointID), slog.String("app_id", e.AppID),
		slog.String("from", string(e.From)), slog.String("to", string(e.To)),
		slog.String("reason", string(e.Reason)))
	hooks.endpoint(e)
}

// sleepCtx waits d of real time; it reports false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// recordFailing tracks the records the store is refusing (a full disk, a
// database down): while any record is being retried after a failure, the
// scheduler claims nothing, and the condition is logged once per
// recordFailLogEvery.
type recordFailing struct {
	mu      sync.Mutex
	retries int       // records being retried after a failure
	since   time.Time // when retries became positive
	logged  time.Time // real time of the last log line
	errors  int64
	lastErr string
	flag    atomic.Bool // retries > 0
}

// recordFailLogEvery is how often a lasting record failure is logged.
const recordFailLogEvery = 30 * time.Second

// fail notes a failed record call; first is true on the first failure of
// this record, which then counts until done is called.
func (r *recordFailing) fail(ctx context.Context, log *slog.Logger, now time.Time, err error, first bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors++
	r.lastErr = err.Error()
	if first {
		if r.retries == 0 {
			r.since = now
		}
		r.retries++
		r.flag.Store(true)
	}
	if time.Since(r.logged) >= recordFailLogEvery {
		r.logged = time.Now()
		log.LogAttrs(ctx, slog.LevelError, "convoy: attempt results cannot be stored; claiming paused until they can",
			slog.String("error", r.lastErr), slog.Int64("record_errors", r.errors),
			slog.Time("failing_since", r.since))
	}
}

// done ends the count of a record that had failed, however it ended.
func (r *recordFailing) done(ctx context.Context, log *slog.Logger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retries--; r.retries > 0 {
		return
	}
	r.retries = 0
	r.flag.Store(false)
	log.LogAttrs(ctx, slog.LevelInfo, "convoy: attempt results are stored again; claiming resumed",
		slog.Time("failing_since", r.since))
}

func (r *recordFailing) active() bool { return r.flag.Load() }

func (r *recordFailing) snapshot() (failing bool, since time.Time, errors int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retries == 0 {
		return false, time.Time{}, r.errors
	}
	return true, r.since, r.errors
}

// retain deletes events older than Config.Retention, at start and then
// every tenth of it (at least a second, at most an hour), until ctx ends.
func (d *Dispatcher) retain(ctx context.Context) {
	every := min(max(d.cfg.Retention/10, time.Second), time.Hour)
	for {
		cutoff := d.clock.Now().Add(-d.cfg.Retention)
		n, err := d.DeleteEventsBefore(ctx, cutoff)
		switch {
		case err != nil && ctx.Err() == nil:
			d.log.LogAttrs(ctx, slog.LevelWarn, "convoy: retention failed, will retry",
				slog.String("error", err.Error()), slog.Int("deleted", n))
		case n > 0:
			d.log.LogAttrs(ctx, slog.LevelInfo, "convoy: retention deleted old events",
				slog.Int("deleted", n), slog.Time("cutoff", cutoff))
		}
		t := d.clock.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}
