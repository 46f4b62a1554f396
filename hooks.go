package convoy

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// AttemptEvent is passed to Config.OnAttempt after each recorded attempt
// (and after a delivery is Discarded or abandoned without one).
type AttemptEvent struct {
	// Delivery is the delivery in its new state.
	Delivery Delivery
	// Attempt is the attempt made, nil when none was: the delivery was
	// Discarded (its endpoint is inactive) or Abandoned.
	Attempt *Attempt
	// Abandoned reports a delivery ended in Failure without a request of
	// this dispatcher's: it had been claimed Config.MaxClaims times without
	// an attempt being recorded, which happens when the processes that
	// claimed it kept crashing (or being killed) mid-attempt. A receiver's
	// failure always comes with an Attempt.
	Abandoned bool
}

// StatusReason says why an endpoint's status changed.
type StatusReason string

// Reasons for endpoint status changes.
const (
	// ReasonFailing: the DeadEndpoint policy declared it dead (by default,
	// a delivery exhausted its retries).
	ReasonFailing StatusReason = "retries-exhausted"
	// ReasonGone: the endpoint answered 410 Gone.
	ReasonGone StatusReason = "gone"
	// ReasonRecovered: a pending endpoint answered with success.
	ReasonRecovered StatusReason = "recovered"
	// ReasonManual: set by hand through SetEndpointStatus.
	ReasonManual StatusReason = "manual"
	// ReasonResend: re-sending to an inactive endpoint made it pending.
	ReasonResend StatusReason = "resend"
)

// EndpointStatusEvent is passed to Config.OnEndpointStatus after an
// endpoint's status changed.
type EndpointStatusEvent struct {
	// EndpointID and AppID name the endpoint and its app.
	EndpointID string
	AppID      string
	// From and To are the status before and after the change.
	From, To EndpointStatus
	// Reason says why it changed.
	Reason StatusReason
	// At is when it changed, by the dispatcher's clock.
	At time.Time
}

// hookQueue bounds the attempt events waiting for a slow OnAttempt; past
// it, attempt events are dropped (and logged) rather than stalling
// deliveries. Endpoint status events have a queue of their own that never
// drops: they are rare, and they are what tells support an endpoint died.
const hookQueue = 4096

// hookRunner calls the user's hooks on goroutines of its own, so a slow
// hook cannot stall workers and a panicking one cannot crash the
// dispatcher. OnAttempt and OnEndpointStatus run on separate goroutines,
// so a backlog of attempt events never delays a status change.
type hookRunner struct {
	d  *Dispatcher
	ch chan func() // attempt events; nil when not running
	wg sync.WaitGroup

	mu      sync.Mutex // guards closed, sends on ch and status
	closed  bool
	status  []func()      // status events waiting, never dropped
	pending chan struct{} // capacity 1: status has entries
}

func (d *Dispatcher) startHooks() *hookRunner {
	h := &hookRunner{d: d}
	if d.cfg.OnAttempt == nil && d.cfg.OnEndpointStatus == nil {
		return h
	}
	h.ch = make(chan func(), hookQueue)
	h.pending = make(chan struct{}, 1)
	h.wg.Add(2)
	go func() {
		defer h.wg.Done()
		for f := range h.ch {
			h.call(f)
		}
	}()
	go func() {
		defer h.wg.Done()
		h.runStatus()
	}()
	d.mu.Lock()
	d.hooks = h
	d.mu.Unlock()
	return h
}

// runStatus calls the queued status hooks until the runner is closed and
// the queue is empty.
func (h *hookRunner) runStatus() {
	for {
		h.mu.Lock()
		fs := h.status
		h.status = nil
		closed := h.closed
		h.mu.Unlock()
		for _, f := range fs {
			h.call(f)
		}
		if len(fs) > 0 {
			continue
		}
		if closed {
			return
		}
		<-h.pending
	}
}

// close lets queued hooks run, then stops the goroutines. If abort closes
// first (Close's context ended), it returns without waiting: a hook that
// never returns keeps its goroutine, but never holds up Close.
func (h *hookRunner) close(abort <-chan struct{}) {
	h.d.mu.Lock()
	if h.d.hooks == h {
		h.d.hooks = nil
	}
	h.d.mu.Unlock()
	h.mu.Lock()
	if h.ch != nil && !h.closed {
		close(h.ch)
		h.kick()
	}
	h.closed = true
	h.mu.Unlock()
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-abort:
	}
}

// kick wakes runStatus; h.mu is held.
func (h *hookRunner) kick() {
	select {
	case h.pending <- struct{}{}:
	default:
	}
}

func (h *hookRunner) call(f func()) {
	defer func() {
		if r := recover(); r != nil {
			h.d.log.LogAttrs(context.Background(), slog.LevelError, "convoy: hook panicked",
				slog.String("panic", fmt.Sprint(r)))
		}
	}()
	f()
}

// enqueue queues an attempt event, dropping it when the queue is full.
func (h *hookRunner) enqueue(f func()) {
	h.mu.Lock()
	if h.ch == nil || h.closed { // not running (or just stopped): call in place
		h.mu.Unlock()
		h.call(f)
		return
	}
	select {
	case h.ch <- f:
		h.mu.Unlock()
	default:
		h.mu.Unlock()
		h.d.counts.hooksDropped.Add(1)
		h.d.log.LogAttrs(context.Background(), slog.LevelWarn, "convoy: OnAttempt queue full, attempt event dropped")
	}
}

// enqueueStatus queues a status event; it is never dropped.
func (h *hookRunner) enqueueStatus(f func()) {
	h.mu.Lock()
	if h.ch == nil || h.closed {
		h.mu.Unlock()
		h.call(f)
		return
	}
	h.status = append(h.status, f)
	h.kick()
	h.mu.Unlock()
}

func (h *hookRunner) attempt(e AttemptEvent) {
	if fn := h.d.cfg.OnAttempt; fn != nil {
		h.enqueue(func() { fn(e) })
	}
}

func (h *hookRunner) endpoint(e EndpointStatusEvent) {
	if fn := h.d.cfg.OnEndpointStatus; fn != nil {
		h.enqueueStatus(func() { fn(e) })
	}
}

// currentHooks returns the running hook runner, or one that calls hooks
// synchronously when the dispatcher is not running.
func (d *Dispatcher) currentHooks() *hookRunner {
	d.mu.Lock()
	h := d.hooks
	d.mu.Unlock()
	if h != nil {
		return h
	}
	return &hookRunner{d: d, ch: nil}
}
