package sim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/convoykit/convoy"
)

// Options tune a run.
type Options struct {
	// Backend opens the store; nil means the scenario's: Memory, or Bolt
	// in a temporary directory of the test.
	Backend Backend
	// Skip leaves steps out: Skip[i] skips Steps[i] (the shrinker's).
	Skip []bool
	// Logger receives the dispatchers' logs; nil discards them.
	Logger *slog.Logger
}

// Result is what a run did.
type Result struct {
	Scenario *Scenario
	// Trace is the canonical account of the run, one line per step and
	// per thing that happened in it, in an order that does not depend on
	// how goroutines were scheduled: the same seed gives the same trace.
	Trace []string
	// Hash is the SHA-256 of the trace, in hex.
	Hash string
	// Failure is the first rule the run found broken, nil when none.
	Failure *Failure
	// Counts are figures of the run.
	Counts counts
	// SimTime is how much fake time the run covered.
	SimTime time.Duration
}

// Run executes sc in a testing/synctest bubble: the clock is fake and
// moves only when every goroutine of the run is blocked, and each step is
// followed by synctest.Wait, so the checks see the dispatchers at rest.
// It fails t only when the run itself cannot go on (a store that will not
// open); broken rules are reported in the Result.
func Run(t *testing.T, sc *Scenario, o Options) *Result {
	res := &Result{Scenario: sc}
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, sc, o)
		w.run()
		res.Trace = w.trace
		res.Failure = w.led.fail
		res.Counts = w.led.n
		res.SimTime = time.Since(w.start)
		h := sha256.New()
		for _, line := range w.trace {
			h.Write([]byte(line))
			h.Write([]byte{'\n'})
		}
		res.Hash = hex.EncodeToString(h.Sum(nil))
	})
	return res
}

// world is one run: the store, the dispatchers that come and go on it,
// the network, the ledger, and the driver (the bubble's root goroutine)
// that takes the steps.
type world struct {
	t       *testing.T
	sc      *Scenario
	o       Options
	backend Backend
	ctx     context.Context
	log     *slog.Logger
	start   time.Time

	led    *ledger
	seq    *sequencer
	net    *network
	faults faults
	store  convoy.Store

	incs  []*incarnation // every dispatcher ever, in order
	admin *incarnation   // never started: management when none runs
	apps  []*convoy.App
	keys  []string // idempotency keys used, in order
	sends int

	step  int
	trace []string
}

// incarnation is one dispatcher: a process, as far as the store and the
// network can tell.
type incarnation struct {
	n    int
	name string
	d    *convoy.Dispatcher
	st   *faultStore
	tr   *transport
	live bool
	// dead is closed when the dispatcher crashes: its store and network
	// refuse everything from then on.
	dead chan struct{}
	// faults counts the faults injected into its calls (under led.mu).
	faults int
}

func (i *incarnation) fenced() bool {
	select {
	case <-i.dead:
		return true
	default:
		return false
	}
}

// skewClock is the system clock (fake, in the bubble) whose timers fire
// a little late, by an amount of its own per dispatcher: two dispatchers
// sleeping until the same due time wake one after the other, not at the
// same instant, so which one claims is the seed's choice, not the
// scheduler's.
type skewClock struct{ skew time.Duration }

func (skewClock) Now() time.Time { return time.Now() }

func (c skewClock) NewTimer(d time.Duration) convoy.Timer { return sysTimer{time.NewTimer(d + c.skew)} }

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time { return t.t.C }
func (t sysTimer) Stop() bool          { return t.t.Stop() }

func newWorld(t *testing.T, sc *Scenario, o Options) *world {
	w := &world{t: t, sc: sc, o: o, ctx: context.Background(), step: -1}
	w.backend = o.Backend
	if w.backend == nil {
		switch sc.Backend {
		case "bolt":
			w.backend = Bolt{}
		default:
			w.backend = Memory{}
		}
	}
	w.log = o.Logger
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.led = newLedger(w)
	w.net = newNetwork(w, sc.Receivers)
	return w
}

// stamp formats an instant of the run.
func (w *world) stamp(t time.Time) string {
	return "+" + t.Sub(w.start).String()
}

func (w *world) injected(inc *incarnation) {
	w.led.mu.Lock()
	defer w.led.mu.Unlock()
	inc.faults++
	w.led.n.Faults++
}

func (w *world) run() {
	w.start = time.Now()
	w.trace = append(w.trace, "scenario "+w.sc.String())
	st, err := w.backend.Open(w.t)
	if err != nil {
		w.t.Fatalf("sim: open %s: %v", w.backend.Name(), err)
	}
	w.store = st
	w.seq = newSequencer()
	defer w.teardown()
	w.admin = w.newIncarnation("adm")
	w.setup()
	w.seq.settled()
	w.endStep("setup")
	for i, s := range w.sc.Steps {
		if w.led.failed() != nil {
			break
		}
		if i < len(w.o.Skip) && w.o.Skip[i] {
			continue
		}
		w.step = i
		line := w.do(s)
		w.seq.settled()
		w.endStep(fmt.Sprintf("#%d %s", i, line))
	}
	if w.led.failed() == nil {
		w.drain()
	}
}

// setup creates the apps and endpoints and starts the first dispatchers.
func (w *world) setup() {
	for i := range w.sc.Apps {
		app, err := w.admin.d.CreateApp(w.ctx, convoy.App{Name: fmt.Sprintf("app%d", i)})
		if err != nil {
			w.t.Fatalf("sim: create app: %v", err)
		}
		w.apps = append(w.apps, app)
		w.led.mu.Lock()
		w.led.apps[app.ID] = fmt.Sprintf("app%d", i)
		w.led.mu.Unlock()
	}
	for i, e := range w.sc.Endpoints {
		var f FlowSpec
		if i < len(w.sc.Flows) {
			f = w.sc.Flows[i]
		}
		w.addEndpoint(w.admin, e.App, e.Receiver, e.Filter, f)
	}
	for range w.sc.Initial {
		w.startOne()
	}
}

// newIncarnation makes a dispatcher on the current store, not started.
func (w *world) newIncarnation(name string) *incarnation {
	n := len(w.incs)
	if name == "" {
		name = fmt.Sprintf("p%d", n)
	}
	inc := &incarnation{n: n, name: name, dead: make(chan struct{})}
	inc.st = &faultStore{st: w.store, w: w, inc: inc}
	var st convoy.Store = inc.st
	if ci, ok := w.store.(convoy.ClaimingInserter); ok && w.sc.ClaimInsert {
		st = &claimingStore{faultStore: inc.st, ci: ci}
	}
	inc.tr = &transport{nw: w.net, inc: inc}
	sc := w.sc
	skew := time.Duration(1+hash(sc.Seed, "skew", uint64(n))%997) * time.Microsecond
	var adaptive *convoy.AdaptiveConcurrency
	if sc.Adaptive {
		adaptive = &convoy.AdaptiveConcurrency{}
	}
	d, err := convoy.New(convoy.Config{
		Store: st, Workers: sc.Workers, PerEndpoint: sc.PerEndpoint,
		HTTPClient: &http.Client{Transport: inc.tr},
		Timeout:    sc.Timeout, Lease: sc.Lease, Retry: sc.Retry, MaxRetryAfter: sc.MaxRetryAfter,
		DeadEndpoint: sc.Dead.Policy(), MaxClaims: sc.MaxClaims, Logger: w.log.With("dispatcher", name),
		PollInterval: sc.PollInterval, Clock: skewClock{skew},
		OnEndpointStatus: func(e convoy.EndpointStatusEvent) { w.led.hook(inc, e) },
		Breaker:          sc.Breaker.Config(),
		Adaptive:         adaptive,
	})
	if err != nil {
		w.t.Fatalf("sim: new dispatcher: %v", err)
	}
	inc.d = d
	w.incs = append(w.incs, inc)
	return inc
}

// startOne starts a new dispatcher; it reports what happened.
func (w *world) startOne() string {
	inc := w.newIncarnation("")
	if err := inc.d.Start(w.ctx); err != nil {
		_ = inc.d.Close(w.ctx)
		close(inc.dead)
		return fmt.Sprintf("start %s failed: %s", inc.name, errClass(err))
	}
	inc.live = true
	w.led.mu.Lock()
	w.led.n.Restarts++
	w.led.mu.Unlock()
	return "start " + inc.name
}

// live returns the dispatchers running.
func (w *world) live() []*incarnation {
	var out []*incarnation
	for _, inc := range w.incs {
		if inc.live {
			out = append(out, inc)
		}
	}
	return out
}

// via returns the n-th running dispatcher, or the admin one when none
// runs.
func (w *world) via(n int) *incarnation {
	l := w.live()
	if len(l) == 0 {
		return w.admin
	}
	return l[n%len(l)]
}

// endpoints returns the endpoints not removed, in creation order.
func (w *world) endpoints() []*epRec {
	w.led.mu.Lock()
	defer w.led.mu.Unlock()
	var out []*epRec
	for _, ep := range w.led.epSeq {
		if !ep.removed {
			out = append(out, ep)
		}
	}
	return out
}

func (w *world) addEndpoint(via *incarnation, app, rcv, filter int, f FlowSpec) string {
	a := w.apps[app%len(w.apps)]
	w.led.mu.Lock()
	name := fmt.Sprintf("ep%d", len(w.led.epSeq)+1)
	w.led.mu.Unlock()
	spec := convoy.Endpoint{
		URL: receiverURL(rcv%w.sc.Receivers, name), EventTypes: filters[filter%len(filters)],
		Ordered: f.Ordered,
	}
	if f.Rate > 0 {
		spec.RateLimit = &rateLimits[(f.Rate-1)%len(rateLimits)]
	}
	ep, err := via.d.AddEndpoint(w.ctx, a.ID, spec)
	if err != nil {
		return "add failed: " + errClass(err)
	}
	w.led.addEndpoint(ep, app%len(w.apps))
	return fmt.Sprintf("add %s to app%d on r%d", name, app%len(w.apps), rcv%w.sc.Receivers)
}

// errClass names an error without the IDs it may carry.
func errClass(err error) string {
	var f *faultError
	switch {
	case errors.As(err, &f):
		return "injected fault"
	case errors.Is(err, errCrashed):
		return "crashed"
	case errors.Is(err, convoy.ErrNotFound):
		return "not found"
	case errors.Is(err, convoy.ErrClosed):
		return "closed"
	case errors.Is(err, convoy.ErrInvalidStatus):
		return "invalid status"
	case errors.Is(err, convoy.ErrInvalid):
		return "invalid"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline exceeded"
	}
	return "error"
}

// do takes one step and describes it.
func (w *world) do(s Step) string {
	switch s.Op {
	case OpAdvance:
		time.Sleep(s.D)
		return "advance " + s.D.String()
	case OpSend:
		return w.send(s)
	case OpReceiver:
		r := s.A % w.sc.Receivers
		m := Mode(s.B % len(modeNames))
		w.net.set(r, m, s.C)
		return fmt.Sprintf("r%d answers %s (%d)", r, m, s.C)
	case OpFault:
		op := faultOps[s.A%len(faultOps)]
		f := fault{op: op, kind: FaultKind(s.B % 4), until: time.Now().Add(s.D), stall: s.D}
		where := "every dispatcher"
		if s.C > 0 {
			if l := w.live(); len(l) > 0 {
				f.target = l[(s.C-1)%len(l)]
				where = f.target.name
			}
		}
		w.faults.add(f)
		return fmt.Sprintf("fault: %s %s for %s in %s", op, f.kind, s.D, where)
	case OpCrash:
		return w.crash(s.A)
	case OpStart:
		if len(w.live()) >= w.sc.Dispatchers {
			return "start: enough running"
		}
		return w.startOne()
	case OpStop:
		l := w.live()
		if len(l) == 0 {
			return "stop: nothing running"
		}
		return w.stop(l[s.A%len(l)], s.D)
	case OpStatus:
		eps := w.endpoints()
		if len(eps) == 0 {
			return "status: no endpoint"
		}
		ep := eps[s.A%len(eps)]
		st := endpointStatuses[s.B%len(endpointStatuses)]
		via := w.via(s.C)
		if _, err := via.d.SetEndpointStatus(w.ctx, ep.id, st); err != nil {
			return fmt.Sprintf("set %s %s via %s failed: %s", ep.name, st, via.name, errClass(err))
		}
		return fmt.Sprintf("set %s %s via %s", ep.name, st, via.name)
	case OpResend:
		w.led.mu.Lock()
		var final []*dlRec
		for _, r := range w.led.dlSeq {
			if !r.deleted && (r.status == convoy.DeliveryFailure || r.status == convoy.DeliveryDiscarded) {
				final = append(final, r)
			}
		}
		w.led.mu.Unlock()
		if len(final) == 0 {
			return "resend: nothing to re-send"
		}
		r := final[s.A%len(final)]
		via := w.via(s.C)
		if err := via.d.Resend(w.ctx, r.id); err != nil {
			return fmt.Sprintf("resend %s via %s failed: %s", r.name, via.name, errClass(err))
		}
		return fmt.Sprintf("resend %s via %s", r.name, via.name)
	case OpResendEndpoint:
		eps := w.endpoints()
		if len(eps) == 0 {
			return "resend-endpoint: no endpoint"
		}
		ep := eps[s.A%len(eps)]
		var opts *convoy.ResendOptions
		what := "Discarded"
		if s.B%2 == 1 {
			opts = &convoy.ResendOptions{Statuses: []convoy.DeliveryStatus{convoy.DeliveryDiscarded, convoy.DeliveryFailure}}
			what = "Discarded and Failure"
		}
		via := w.via(s.C)
		n, err := via.d.ResendEndpoint(w.ctx, ep.id, opts)
		if err != nil {
			return fmt.Sprintf("resend %s's %s via %s failed: %s", ep.name, what, via.name, errClass(err))
		}
		return fmt.Sprintf("resend %s's %s via %s: %d", ep.name, what, via.name, n)
	case OpUpdate:
		return w.update(s)
	case OpRemove:
		eps := w.endpoints()
		if len(eps) <= 1 {
			return "remove: keeping the last endpoint"
		}
		ep := eps[s.A%len(eps)]
		via := w.via(s.C)
		if err := via.d.RemoveEndpoint(w.ctx, ep.id); err != nil {
			return fmt.Sprintf("remove %s via %s failed: %s", ep.name, via.name, errClass(err))
		}
		return fmt.Sprintf("remove %s via %s", ep.name, via.name)
	case OpAdd:
		return w.addEndpoint(w.via(s.C), s.A, s.B, s.C, FlowSpec{})
	}
	return "?"
}

func (w *world) update(s Step) string {
	eps := w.endpoints()
	if len(eps) == 0 {
		return "update: no endpoint"
	}
	ep := eps[s.A%len(eps)]
	var u convoy.EndpointUpdate
	var what string
	switch s.B % 4 {
	case 3:
		on := s.C%2 == 1
		u.Ordered = &on
		what = fmt.Sprintf("ordered %t", on)
	case 0:
		r := s.C % w.sc.Receivers
		u.URL = convoy.Ptr(receiverURL(r, ep.name))
		what = fmt.Sprintf("to r%d", r)
	case 1:
		f := filters[s.C%len(filters)]
		u.EventTypes = &f
		what = fmt.Sprintf("filter %v", f)
	default:
		p := endpointRetries[s.C%len(endpointRetries)]
		u.Retry = &p
		what = "retry " + retryString(p)
	}
	via := w.via(s.C)
	if _, err := via.d.UpdateEndpoint(w.ctx, ep.id, u); err != nil {
		return fmt.Sprintf("update %s %s via %s failed: %s", ep.name, what, via.name, errClass(err))
	}
	return fmt.Sprintf("update %s %s via %s", ep.name, what, via.name)
}

func (w *world) send(s Step) string {
	w.sends++
	n := w.sends
	appIdx := s.A % len(w.apps)
	app := w.apps[appIdx]
	typ := eventTypes[s.B%len(eventTypes)]
	key := ""
	switch {
	case s.D == 2 && len(w.keys) > 0:
		key = w.keys[s.C%len(w.keys)]
	case s.D >= 1:
		key = fmt.Sprintf("k%d", n)
		w.keys = append(w.keys, key)
	}
	via := w.via(s.C)
	w.led.mu.Lock()
	w.led.send = n
	w.led.n.Sends++
	prior := w.led.keys[app.ID+"\x00"+key]
	w.led.mu.Unlock()
	start := time.Now()
	res, err := via.d.Send(w.ctx, app.ID, convoy.Event{
		Type: typ, Data: []byte(fmt.Sprintf(`{"send":%d}`, n)), IdempotencyKey: key,
	})
	w.led.mu.Lock()
	defer w.led.mu.Unlock()
	w.led.send = -1
	desc := fmt.Sprintf("send s%d app%d %s", n, appIdx, typ)
	if key != "" {
		desc += " key " + key
	}
	desc += " via " + via.name
	if err != nil {
		return desc + " failed: " + errClass(err)
	}
	w.led.n.Acked++
	return desc + " -> " + w.led.checkSend(appIdx, typ, key, prior, res, start)
}

// checkSend checks what an acknowledged Send returned against the
// ledger: a repeated idempotency key returns the first event; a new
// event has one delivery per endpoint of the app whose filter takes its
// type, Discarded for an inactive endpoint. The caller holds mu.
//
// An endpoint changed while the Send ran (a stalled store call) may have
// been read before or after the change: either is right.
func (l *ledger) checkSend(app int, typ, key string, prior *evRec, res *convoy.SendResult, start time.Time) string {
	ev := l.evs[res.Event.ID]
	if ev == nil {
		l.violate("send", nil, "Send returned an event the store was not seen storing")
		return "?"
	}
	if prior != nil {
		if !res.Duplicate || res.Event.ID != prior.id {
			l.violate("idempotency", nil, "a Send with key %s returned %s (duplicate %v), not %s", key, ev.name, res.Duplicate, prior.name)
		}
		return "duplicate of " + prior.name
	}
	if res.Duplicate {
		l.violate("idempotency", nil, "a Send with the new key %q was taken for a duplicate of %s", key, ev.name)
	}
	type expect struct {
		must     bool
		statuses []convoy.DeliveryStatus
	}
	want := make(map[string]*expect)
	for _, ep := range l.epSeq {
		if ep.app != app || !ep.versions[0].at.Before(start) && !ep.versions[0].at.Equal(start) {
			continue
		}
		vs := ep.window(start, time.Now())
		if len(vs) == 0 {
			continue
		}
		e := &expect{must: !ep.removed}
		for _, v := range vs {
			if !(&convoy.Endpoint{EventTypes: v.types}).Accepts(typ) {
				e.must = false
				continue
			}
			st := convoy.DeliveryScheduled
			if v.status == convoy.EndpointInactive {
				st = convoy.DeliveryDiscarded
			}
			e.statuses = append(e.statuses, st)
		}
		if len(e.statuses) > 0 {
			want[ep.id] = e
		}
	}
	var names []string
	for _, d := range res.Deliveries {
		r := l.dls[d.ID]
		if r == nil {
			l.violate("send", nil, "Send returned a delivery the store was not seen storing")
			continue
		}
		st := d.Status
		if ls := r.leaseByID(d.LeaseID); st == convoy.DeliveryProcessing && ls != nil && ls.n == 1 && ls.fast {
			st = convoy.DeliveryScheduled // stored so, and leased by InsertEventClaim
		}
		e, ok := want[d.EndpointID]
		if !ok {
			l.violate("send", []string{r.name}, "%s was created for %s, whose filter should have kept it out", r.name, r.ep.name)
		} else if !slices.Contains(e.statuses, st) {
			l.violate("send", []string{r.name}, "%s was created %s, expected %v (%s is %s)", r.name, d.Status, e.statuses, r.ep.name, r.ep.status)
		}
		delete(want, d.EndpointID)
		names = append(names, r.name+" "+string(d.Status))
	}
	for _, ep := range l.epSeq {
		if e := want[ep.id]; e != nil && e.must {
			l.violate("send", []string{ep.name}, "%s got no delivery to %s", ev.name, ep.name)
		}
	}
	return ev.name + " [" + strings.Join(names, ", ") + "]"
}

// crash drops dispatcher n without Close. With a store that restarts, the
// whole process goes: every dispatcher, and the store is reopened.
func (w *world) crash(n int) string {
	l := w.live()
	if len(l) == 0 {
		return "crash: nothing running"
	}
	victims := []*incarnation{l[n%len(l)]}
	if w.backend.Restarts() {
		victims = l
	}
	var names []string
	for _, inc := range victims {
		w.kill(inc)
		names = append(names, inc.name)
	}
	if w.backend.Restarts() {
		st, err := w.backend.Reopen(w.t, w.store)
		if err != nil {
			w.t.Fatalf("sim: reopen %s: %v", w.backend.Name(), err)
		}
		w.store = st
		w.admin.st.st = st
		return "crash the process (" + strings.Join(names, ", ") + ") and reopen the store"
	}
	return "crash " + strings.Join(names, ", ")
}

// kill fences a dispatcher off (its store and network refuse everything
// from now on, so nothing it does lands) and then closes it out of band,
// so that its goroutines end.
func (w *world) kill(inc *incarnation) {
	close(inc.dead)
	inc.live = false
	w.led.crashed(inc)
	w.led.mu.Lock()
	w.led.n.Crashes++
	w.led.mu.Unlock()
	ctx, cancel := context.WithCancel(w.ctx)
	cancel()
	_ = inc.d.Close(ctx)
}

// stop closes dispatcher n, giving its attempts grace to finish, and
// checks that Close finished or released every claim it held.
func (w *world) stop(inc *incarnation, grace time.Duration) string {
	ctx, cancel := context.WithTimeout(w.ctx, grace)
	defer cancel()
	err := inc.d.Close(ctx)
	inc.live = false
	close(inc.dead) // nothing of it runs any more
	desc := fmt.Sprintf("stop %s with %s of grace", inc.name, grace)
	if err != nil {
		desc += ": " + errClass(err)
	}
	led := w.led
	led.mu.Lock()
	defer led.mu.Unlock()
	for _, r := range led.dlSeq {
		if r.deleted {
			continue
		}
		for _, ls := range r.leases {
			if ls.inc != inc || ls.ended != "" || ls.orphan || inc.faults > ls.faultsAtClaim {
				continue
			}
			led.violate("close", []string{r.name, r.ep.name}, "%s's Close left %s claimed (lease %d), neither finished nor released", inc.name, r.name, ls.n)
		}
		for _, q := range r.reqs {
			if q.inc == inc && q.state == reqInFlight {
				if inc.faults <= q.faultsAt {
					led.violate("close", []string{r.name, r.ep.name}, "%s's Close left attempt %d of %s neither recorded nor released", inc.name, q.number, r.name)
				}
				q.state = reqCut
				led.n.Cut++
			}
		}
	}
	return desc
}

// endStep checks the rules at rest and appends the step to the trace.
func (w *world) endStep(line string) {
	w.check()
	w.trace = append(w.trace, w.stamp(time.Now())+" "+line)
	w.trace = append(w.trace, w.led.flush()...)
	w.trace = append(w.trace, "  = "+w.summary())
}

// drain lets the run settle: faults stop, receivers answer 200, a
// dispatcher runs; every delivery must end. Then everything Failure or
// Discarded is re-sent, and must succeed.
func (w *world) drain() {
	w.step = len(w.sc.Steps)
	w.faults.clear()
	w.net.healAll()
	if len(w.live()) == 0 {
		w.startOne()
	}
	if !w.settle("drain") {
		return
	}
	via := w.via(0)
	for _, ep := range w.endpoints() {
		if _, err := via.d.ResendEndpoint(w.ctx, ep.id, &convoy.ResendOptions{
			Statuses: []convoy.DeliveryStatus{convoy.DeliveryDiscarded, convoy.DeliveryFailure},
		}); err != nil {
			w.led.mu.Lock()
			w.led.violate("resend", []string{ep.name}, "re-sending %s's deliveries failed: %v", ep.name, err)
			w.led.mu.Unlock()
			return
		}
	}
	w.seq.settled()
	w.endStep("re-send every Failure and Discarded delivery")
	if !w.settle("drain after re-send") {
		return
	}
	w.led.mu.Lock()
	for _, r := range w.led.dlSeq {
		if !r.deleted && r.status != convoy.DeliverySuccess {
			w.led.violate("resend", []string{r.name, r.ep.name}, "%s is %s after being re-sent to a healthy receiver", r.name, r.status)
		}
	}
	w.led.mu.Unlock()
	// Close every dispatcher, so that records still on their way (a
	// stalled store call) land or give up, then count.
	var stops []string
	for _, inc := range w.live() {
		stops = append(stops, w.stop(inc, 10*time.Minute))
	}
	w.seq.settled()
	w.endStep(strings.Join(stops, "; "))
	l := w.led
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.dlSeq {
		for _, q := range r.reqs {
			if q.state == reqInFlight {
				l.violate("attempts", []string{r.name, r.ep.name}, "attempt %d of %s by %s was seen by the receiver but neither recorded nor cut by a crash",
					q.number, r.name, q.inc.name)
			}
		}
	}
	if n := l.n; n.Requests != n.Recorded+n.Cut+n.LeaseLost+n.Released+n.deleted(l) {
		l.violate("attempts", nil, "%d requests seen, %d recorded, %d cut by crashes, %d refused with lost leases, %d released, %d of removed endpoints",
			n.Requests, n.Recorded, n.Cut, n.LeaseLost, n.Released, n.deleted(l))
	}
}

func (n counts) deleted(l *ledger) int {
	c := 0
	for _, r := range l.dlSeq {
		for _, q := range r.reqs {
			if q.state == reqDeleted {
				c++
			}
		}
	}
	return c
}

// settle advances time until every delivery has ended, checking after
// each move.
func (w *world) settle(what string) bool {
	for _, d := range []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute,
		10 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour} {
		time.Sleep(d)
		w.seq.settled()
		w.endStep(what + " " + d.String())
		if w.led.failed() != nil {
			return false
		}
		if w.pending() == "" {
			return true
		}
	}
	w.led.mu.Lock()
	defer w.led.mu.Unlock()
	w.led.violate("lost", nil, "after draining, deliveries have not ended: %s", w.pendingLocked())
	return false
}

func (w *world) pending() string {
	w.led.mu.Lock()
	defer w.led.mu.Unlock()
	return w.pendingLocked()
}

func (w *world) pendingLocked() string {
	var out []string
	for _, r := range w.led.dlSeq {
		if !r.deleted && !r.status.Final() {
			out = append(out, r.name+" "+string(r.status))
		}
	}
	return strings.Join(out, ", ")
}

// teardown closes every dispatcher and the store, whatever state the run
// ended in, so that no goroutine outlives it.
func (w *world) teardown() {
	for _, inc := range w.incs {
		if !inc.live {
			continue
		}
		ctx, cancel := context.WithTimeout(w.ctx, time.Minute)
		_ = inc.d.Close(ctx)
		cancel()
		inc.live = false
	}
	_ = w.admin.d.Close(w.ctx)
	w.seq.stop()
	if err := w.store.Close(); err != nil {
		w.t.Errorf("sim: close the store: %v", err)
	}
}
