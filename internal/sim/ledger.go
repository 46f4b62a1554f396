package sim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/convoykit/convoy"
)

// settingsTTL is how long a dispatcher may use an endpoint it read before
// (convoy's settings cache): a change made through another dispatcher
// applies within it.
const settingsTTL = time.Second

// ledger is the simulation's own account of what happened: every
// delivery's state as the store changed it, every lease handed out,
// every request the receivers saw. The store wrapper and the network
// report to it as things happen, and it checks each report against the
// rules; the checks between steps compare it with what the store says.
//
// The tracked store calls (those that change deliveries or endpoints) run
// under mu together with the ledger's update, so the ledger sees them in
// the order the store applied them.
type ledger struct {
	w  *world
	mu sync.Mutex

	eps   map[string]*epRec
	epSeq []*epRec // in creation order
	dls   map[string]*dlRec
	dlSeq []*dlRec
	evs   map[string]*evRec
	// keys maps an app's idempotency key to the event stored with it.
	keys map[string]*evRec
	// apps names the apps by ID.
	apps map[string]string
	// send is the number of the send the driver is making, for naming
	// what InsertEvent stores.
	send int

	events []traceEvent // this step's, sorted when it ends
	fail   *Failure
	n      counts
}

// counts are figures of a run, for the report.
type counts struct {
	Sends, Acked, Requests, Recorded, Cut, LeaseLost, Released, Claims int
	Faults, Crashes, Restarts                                          int
}

type epRec struct {
	id, name string
	app      int
	status   convoy.EndpointStatus
	health   convoy.EndpointHealth
	// versions are the endpoint's settings over time, oldest first.
	versions []epVersion
	// rate is its rate limit, set at creation and never changed.
	rate    *convoy.RateLimit
	removed bool
	// hooks counts the status events expected from each dispatcher and
	// not yet seen, by "from>to".
	hooks map[*incarnation]map[string]int
}

type epVersion struct {
	at      time.Time
	status  convoy.EndpointStatus
	retry   *convoy.RetryPolicy
	types   []string
	ordered bool
}

type evRec struct {
	id, name string
	send     int
	appID    string
}

type dlRec struct {
	id, name string
	ep       *epRec
	ev       *evRec
	// The delivery as the store should hold it.
	status                  convoy.DeliveryStatus
	attempts, round, claims int
	nextAt                  time.Time
	leases                  []*lease
	reqs                    []*request
	deleted                 bool
	// dirty is set when the delivery changed since the last check of its
	// attempts.
	dirty bool
}

type lease struct {
	id      string
	dl      *dlRec
	inc     *incarnation
	n       int
	at      time.Time
	expires time.Time
	claimed convoy.Delivery
	// ended says how the lease ended: "recorded", "released", "taken"
	// (expired and claimed again); empty while held.
	ended string
	// orphan: the claim landed but its caller was told it failed.
	orphan bool
	// fast: leased by InsertEventClaim.
	fast bool
	// faultsAtClaim is the incarnation's count of injected faults when
	// the lease was handed out.
	faultsAtClaim int
}

type reqState int

const (
	reqInFlight reqState = iota
	reqRecorded
	reqCut       // its process crashed before the record landed
	reqLeaseLost // its record came after the lease was taken over
	reqReleased  // cut short by Close, the delivery given back
	reqDeleted   // its endpoint was removed
)

type request struct {
	dl     *dlRec
	inc    *incarnation
	lease  *lease
	number int
	// occurrence counts the earlier requests of the same attempt (after
	// a crash or a lapsed lease).
	occurrence int
	receiver   int
	start      time.Time
	end        time.Time
	a          answer
	// status is the status the dispatcher got (0: no response).
	status     int
	retryAfter int
	done, ok   bool
	state      reqState
	// faultsAt is its dispatcher's count of injected faults when it
	// started.
	faultsAt int
	// leaseAt is when its lease was taken: its rate token was spent
	// within [leaseAt, start].
	leaseAt time.Time
}

func leaseState(ls *lease) string {
	if ls.ended == "" {
		return "held"
	}
	return ls.ended
}

// traceEvent is one line of a step's trace, at the instant it happened.
type traceEvent struct {
	at   time.Time
	text string
}

// Failure is the first rule a run found broken.
type Failure struct {
	Step  int // -1: during setup; len(Steps): while draining
	Check string
	Msg   string
	// Subjects name the deliveries and endpoints involved, to pick their
	// lines out of the trace.
	Subjects []string
	// Also lists the other rules broken at the same instant.
	Also  []string
	at    time.Time
	noted bool
}

// Checks lists the rules broken: Check, then those of Also.
func (f *Failure) Checks() []string {
	out := []string{f.Check}
	for _, a := range f.Also {
		c, _, _ := strings.Cut(a, ":")
		out = append(out, c)
	}
	return out
}

func (f *Failure) String() string {
	s := fmt.Sprintf("step %d: %s: %s", f.Step, f.Check, f.Msg)
	for _, a := range f.Also {
		s += "; and " + a
	}
	return s
}

func newLedger(w *world) *ledger {
	return &ledger{
		w: w, eps: make(map[string]*epRec), dls: make(map[string]*dlRec),
		evs: make(map[string]*evRec), keys: make(map[string]*evRec), apps: make(map[string]string), send: -1,
	}
}

// violate records a broken rule; the first one fails the run. The caller
// holds mu.
//
// Several rules may break at one instant, in goroutines racing each
// other: the failure kept is the first by time, then by text, so that it
// does not depend on the race.
func (l *ledger) violate(check string, subjects []string, format string, args ...any) {
	f := &Failure{Step: l.w.step, Check: check, Msg: fmt.Sprintf(format, args...), Subjects: subjects, at: time.Now()}
	switch {
	case l.fail == nil || f.at.Before(l.fail.at):
		l.fail = f
	case f.at.After(l.fail.at):
	case f.String() < l.fail.String():
		f.Also = append(l.fail.Also, l.fail.Check+": "+l.fail.Msg)
		f.Subjects = append(f.Subjects, l.fail.Subjects...)
		l.fail = f
	case f.String() > l.fail.String():
		l.fail.Also = append(l.fail.Also, f.Check+": "+f.Msg)
		l.fail.Subjects = append(l.fail.Subjects, f.Subjects...)
	}
}

// note adds a line to the step's trace. The caller holds mu.
func (l *ledger) note(at time.Time, text string) {
	l.events = append(l.events, traceEvent{at: at, text: text})
}

// flush returns the step's lines in a canonical order: by instant, then
// by text, so goroutines racing within an instant do not change it.
func (l *ledger) flush() []string {
	l.mu.Lock()
	if f := l.fail; f != nil && !f.noted {
		f.noted = true
		l.note(f.at, "VIOLATION "+f.Check+": "+f.Msg)
		for _, a := range f.Also {
			l.note(f.at, "VIOLATION "+a)
		}
	}
	evs := l.events
	l.events = nil
	l.mu.Unlock()
	sort.Slice(evs, func(i, j int) bool {
		if !evs[i].at.Equal(evs[j].at) {
			return evs[i].at.Before(evs[j].at)
		}
		return evs[i].text < evs[j].text
	})
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = "  " + l.w.stamp(e.at) + " " + e.text
	}
	return out
}

func (l *ledger) failed() *Failure {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fail
}

// addEndpoint registers an endpoint the driver created.
func (l *ledger) addEndpoint(ep *convoy.Endpoint, app int) *epRec {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &epRec{id: ep.ID, name: fmt.Sprintf("ep%d", len(l.epSeq)+1), app: app, status: ep.Status,
		hooks: make(map[*incarnation]map[string]int)}
	if ep.RateLimit != nil {
		rl := *ep.RateLimit
		r.rate = &rl
	}
	r.versions = []epVersion{versionOf(ep, time.Now())}
	l.eps[ep.ID] = r
	l.epSeq = append(l.epSeq, r)
	l.note(time.Now(), fmt.Sprintf("%s added (app%d, %s, %v)", r.name, app, receiverName(ep.URL), ep.EventTypes))
	return r
}

func receiverName(url string) string {
	s := strings.TrimPrefix(url, "http://")
	h, _, _ := strings.Cut(s, ".")
	return h
}

func versionOf(ep *convoy.Endpoint, at time.Time) epVersion {
	v := epVersion{at: at, status: ep.Status, types: slices.Clone(ep.EventTypes), ordered: ep.Ordered}
	if ep.Retry != nil {
		r := *ep.Retry
		v.retry = &r
	}
	return v
}

// window returns the endpoint's versions in effect at some time in
// [from, to].
func (r *epRec) window(from, to time.Time) []epVersion {
	var out []epVersion
	for i, v := range r.versions {
		next := time.Time{}
		if i+1 < len(r.versions) {
			next = r.versions[i+1].at
		}
		if v.at.After(to) {
			break
		}
		if !next.IsZero() && !next.After(from) {
			continue // replaced before the window
		}
		out = append(out, v)
	}
	return out
}

func (l *ledger) strategy(v epVersion) convoy.RetryStrategy {
	if v.retry != nil {
		return *v.retry
	}
	return l.w.sc.Retry
}

// expectHook notes a status event the dispatcher inc must report. The
// caller holds mu.
func (l *ledger) expectHook(ep *epRec, inc *incarnation, from, to convoy.EndpointStatus) {
	if inc == nil || from == to {
		return
	}
	m := ep.hooks[inc]
	if m == nil {
		m = make(map[string]int)
		ep.hooks[inc] = m
	}
	m[string(from)+">"+string(to)]++
}

// hook is the OnEndpointStatus of dispatcher inc.
func (l *ledger) hook(inc *incarnation, e convoy.EndpointStatusEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ep := l.eps[e.EndpointID]
	if ep == nil {
		l.violate("status-event", nil, "%s reported a status change of an unknown endpoint", inc.name)
		return
	}
	l.note(time.Now(), fmt.Sprintf("%s event %s %s>%s (%s)", inc.name, ep.name, e.From, e.To, e.Reason))
	m := ep.hooks[inc]
	k := string(e.From) + ">" + string(e.To)
	if m == nil || m[k] <= 0 {
		if !inc.fenced() {
			l.violate("status-event", []string{ep.name}, "%s reported %s %s, which the store did not make", inc.name, ep.name, k)
		}
		return
	}
	m[k]--
}

// statusChanged applies an endpoint status change the store made. The
// caller holds mu.
func (l *ledger) statusChanged(ep *epRec, to convoy.EndpointStatus, at time.Time) {
	if ep.status == to {
		return
	}
	l.note(at, fmt.Sprintf("%s %s -> %s", ep.name, ep.status, to))
	ep.status = to
	v := ep.versions[len(ep.versions)-1]
	v.at, v.status = at, to
	ep.versions = append(ep.versions, v)
}

// endpointUpdated records an UpdateEndpoint that landed, made by inc
// (nil for the driver's direct calls).
func (l *ledger) endpointUpdated(inc *incarnation, ep *convoy.Endpoint, before convoy.EndpointStatus) {
	r := l.eps[ep.ID]
	if r == nil {
		return
	}
	now := time.Now()
	if before != r.status {
		l.violate("endpoint-status", []string{r.name}, "UpdateEndpoint saw %s %s, the ledger %s", r.name, before, r.status)
	}
	l.expectHook(r, inc, before, ep.Status)
	if ep.Status != r.status {
		l.note(now, fmt.Sprintf("%s %s -> %s (set)", r.name, r.status, ep.Status))
	}
	r.status = ep.Status
	if !ep.Health.LastAttemptAt.Equal(r.health.LastAttemptAt) || ep.Health.ConsecutiveFailures != r.health.ConsecutiveFailures {
		l.violate("endpoint-health", []string{r.name}, "UpdateEndpoint changed %s's health", r.name)
	}
	r.versions = append(r.versions, versionOf(ep, now))
}

// insert records an InsertEvent that reached the store.
func (l *ledger) insert(ev *convoy.Event, res convoy.InsertResult) {
	if !res.Inserted {
		return
	}
	now := time.Now()
	e := &evRec{id: ev.ID, name: fmt.Sprintf("e%d", l.send), send: l.send, appID: ev.AppID}
	l.evs[ev.ID] = e
	if ev.IdempotencyKey != "" {
		l.keys[ev.AppID+"\x00"+ev.IdempotencyKey] = e
	}
	names := make([]string, 0, len(res.Deliveries))
	for _, d := range res.Deliveries {
		ep := l.eps[d.EndpointID]
		if ep == nil {
			l.violate("insert", nil, "a delivery to an unknown endpoint was stored")
			continue
		}
		r := &dlRec{id: d.ID, name: fmt.Sprintf("d%d.%s", l.send, strings.TrimPrefix(ep.name, "ep")),
			ep: ep, ev: e, status: d.Status, nextAt: d.NextAttemptAt, dirty: true}
		l.dls[d.ID] = r
		l.dlSeq = append(l.dlSeq, r)
		names = append(names, r.name+" "+string(d.Status))
	}
	l.note(now, fmt.Sprintf("stored %s [%s]", e.name, strings.Join(names, ", ")))
}

// claim records a Claim that reached the store; orphan is set when its
// caller is told it failed.
func (l *ledger) claim(inc *incarnation, req convoy.ClaimRequest, ds []*convoy.Delivery, fast bool) {
	taken := make(map[*epRec]int)
	for _, d := range ds {
		l.n.Claims++
		r := l.dls[d.ID]
		if r == nil {
			l.violate("claim", nil, "%s claimed a delivery the ledger does not know", inc.name)
			continue
		}
		subj := []string{r.name, r.ep.name}
		if r.deleted {
			l.violate("claim", subj, "%s claimed %s, whose endpoint was removed", inc.name, r.name)
		}
		var prev *lease
		if len(r.leases) > 0 {
			prev = r.leases[len(r.leases)-1]
		}
		l.checkFlowClaim(inc, req, r, fast, taken)
		switch r.status {
		case convoy.DeliveryScheduled, convoy.DeliveryRetry:
			if r.nextAt.After(req.Now) {
				l.violate("retry-timing", subj, "%s claimed %s at %s, before it was due at %s",
					inc.name, r.name, l.w.stamp(req.Now), l.w.stamp(r.nextAt))
			}
		case convoy.DeliveryProcessing:
			if prev != nil && prev.expires.After(req.Now) {
				l.violate("lease", subj, "%s claimed %s while %s's lease ran until %s: two attempts under valid leases",
					inc.name, r.name, prev.inc.name, l.w.stamp(prev.expires))
			}
		default:
			l.violate("claim", subj, "%s claimed %s, which is %s", inc.name, r.name, r.status)
		}
		if prev != nil && prev.ended == "" {
			prev.ended = "taken"
		}
		switch {
		case d.Status != convoy.DeliveryProcessing:
			l.violate("claim", subj, "%s claimed %s, which the store returned %s", inc.name, r.name, d.Status)
		case d.LeaseOwner != req.Owner || d.LeaseID == "":
			l.violate("claim", subj, "%s claimed %s, which the store leased to another owner or without a lease ID", inc.name, r.name)
		case !d.LeaseExpiresAt.Equal(req.Now.Add(req.Lease)):
			l.violate("claim", subj, "%s's lease of %s ends at %s, not now + lease", inc.name, r.name, l.w.stamp(d.LeaseExpiresAt))
		case d.Attempts != r.attempts || d.RoundAttempts != r.round || d.Claims != r.claims+1:
			l.violate("claim", subj, "%s claimed %s with %d attempts (%d this round) and %d claims; the ledger expected %d (%d) and %d",
				inc.name, r.name, d.Attempts, d.RoundAttempts, d.Claims, r.attempts, r.round, r.claims+1)
		}
		ls := &lease{id: d.LeaseID, dl: r, inc: inc, n: len(r.leases) + 1, at: req.Now, expires: d.LeaseExpiresAt,
			claimed: *d.Clone(), faultsAtClaim: inc.faults, fast: fast}
		r.leases = append(r.leases, ls)
		r.status, r.claims, r.dirty = convoy.DeliveryProcessing, r.claims+1, true
		l.note(req.Now, fmt.Sprintf("%s claims %s lease %d until %s", inc.name, r.name, ls.n, l.w.stamp(ls.expires)))
	}
}

// orphaned marks the leases of a claim whose caller was told it failed.
// The caller holds mu.
func (l *ledger) orphaned(ds []*convoy.Delivery) {
	for _, d := range ds {
		if r := l.dls[d.ID]; r != nil {
			if ls := r.leaseByID(d.LeaseID); ls != nil {
				ls.orphan = true
				l.note(time.Now(), fmt.Sprintf("%s's claim of %s (lease %d) is lost on its way back", ls.inc.name, r.name, ls.n))
			}
		}
	}
}

func (r *dlRec) leaseByID(id string) *lease {
	for i := len(r.leases) - 1; i >= 0; i-- {
		if r.leases[i].id == id {
			return r.leases[i]
		}
	}
	return nil
}

func (r *dlRec) lastLease() *lease {
	if len(r.leases) == 0 {
		return nil
	}
	return r.leases[len(r.leases)-1]
}

// recordObs is what a Record call saw inside the store's transaction.
type recordObs struct {
	called bool
	view   convoy.Endpoint // as passed to Transition.EndpointStatus
	chose  convoy.EndpointStatus
	// The status change the record made, which the dispatcher must
	// report once it learns that the record landed.
	ep       *epRec
	from, to convoy.EndpointStatus
}

// record checks a Record call that reached the store: err is the
// store's answer; afterFault is set when the caller is told it failed
// although it landed.
func (l *ledger) record(inc *incarnation, t convoy.Transition, res convoy.RecordResult, err error, obs *recordObs, afterFault bool) {
	r := l.dls[t.DeliveryID]
	if r == nil {
		if err == nil {
			l.violate("record", nil, "%s recorded a delivery the ledger does not know", inc.name)
		}
		return
	}
	subj := []string{r.name, r.ep.name}
	now := time.Now()
	ls := r.leaseByID(t.LeaseID)
	var rq *request
	if t.Attempt != nil {
		// The request of this attempt: the same dispatcher, attempt
		// number and start (an attempt's StartedAt is the instant its
		// request went out).
		for i := len(r.reqs) - 1; i >= 0; i-- {
			if q := r.reqs[i]; q.inc == inc && q.number == t.Attempt.Number && q.start.Equal(t.Attempt.StartedAt) && q.state == reqInFlight {
				rq = q
				break
			}
		}
	}
	switch {
	case errors.Is(err, convoy.ErrLeaseLost):
		if ls != nil && ls == r.lastLease() && ls.ended == "" && !r.deleted {
			l.violate("lost-record", subj, "the store refused %s's record of %s (ErrLeaseLost) though its lease %d was held: the result is lost",
				inc.name, r.name, ls.n)
		}
		if rq != nil {
			rq.state = reqLeaseLost
			l.n.LeaseLost++
			l.note(now, fmt.Sprintf("%s's record of %s#%d refused: its lease was lost", inc.name, r.name, rq.number))
		}
		return
	case errors.Is(err, convoy.ErrNotFound):
		if !r.deleted {
			l.violate("lost-record", subj, "the store says %s is gone (ErrNotFound) but its endpoint was not removed", r.name)
		}
		if rq != nil {
			rq.state = reqDeleted // sent after the removal, from a cached endpoint
		}
		return
	case err != nil:
		return
	}

	// The record landed.
	if ls == nil {
		l.violate("lease", subj, "%s's record of %s landed under a lease no claim handed out", inc.name, r.name)
		return
	}
	if ls != r.lastLease() || ls.ended != "" {
		l.violate("stale-lease", subj, "%s's record of %s under lease %d landed although lease %d (%s) had taken over: a stale lease overwrote a newer result",
			inc.name, r.name, ls.n, r.lastLease().n, r.lastLease().inc.name)
		return
	}
	if ls.inc != inc {
		l.violate("lease", subj, "%s recorded %s under %s's lease", inc.name, r.name, ls.inc.name)
	}
	ls.ended = "recorded"
	r.dirty = true
	cfg := l.w.sc
	round := ls.claimed.RoundAttempts
	// The endpoint as the dispatcher may have read it: from its cache
	// (up to settingsTTL old) when it claimed, up to now (a load retried
	// or stalled).
	versions := r.ep.window(ls.at.Add(-settingsTTL), now)
	desc := string(t.Status)

	if a := t.Attempt; a != nil {
		if rq == nil {
			l.violate("attempts", subj, "%s recorded attempt %d of %s, which no receiver saw", inc.name, a.Number, r.name)
			return
		}
		rq.state, rq.lease = reqRecorded, ls
		l.n.Recorded++
		if a.Number != r.attempts+1 {
			l.violate("attempts", subj, "%s recorded attempt %d of %s, which had %d", inc.name, a.Number, r.name, r.attempts)
		}
		if !rq.done {
			l.violate("attempts", subj, "%s recorded attempt %d of %s before its answer ended", inc.name, a.Number, r.name)
		}
		if a.StatusCode != rq.status {
			l.violate("attempts", subj, "attempt %d of %s recorded status %d, the receiver answered %d", a.Number, r.name, a.StatusCode, rq.status)
		}
		if rq.ok != (t.Status == convoy.DeliverySuccess) || rq.ok != a.Success() {
			l.violate("transition", subj, "attempt %d of %s: the receiver's answer (%s, read to the end: %v) ended in %s",
				a.Number, r.name, rq.a, rq.ok, t.Status)
		}
		if !rq.ok {
			okRetry, okFail := false, false
			minWait := time.Duration(1<<63 - 1)
			for _, v := range versions {
				wait, again := l.strategy(v).NextRetry(round + 1)
				if rq.status == 410 {
					again = false
				}
				if !again {
					okFail = true
					continue
				}
				okRetry = true
				if rq.retryAfter > 0 {
					wait = max(wait, min(time.Duration(rq.retryAfter)*time.Second, cfg.MaxRetryAfter))
				}
				minWait = min(minWait, wait)
			}
			switch t.Status {
			case convoy.DeliveryRetry:
				if !okRetry {
					l.violate("transition", subj, "%s retried after attempt %d (round %d) though the strategy had none left", r.name, a.Number, round+1)
				}
				if got := t.NextAttemptAt.Sub(t.Now); okRetry && got < minWait {
					l.violate("retry-timing", subj, "%s's retry after attempt %d is due %s after it, earlier than the strategy and Retry-After (%ds) allow: %s",
						r.name, a.Number, got, rq.retryAfter, minWait)
				}
				desc += " at " + l.w.stamp(t.NextAttemptAt)
			case convoy.DeliveryFailure:
				if !okFail {
					l.violate("transition", subj, "%s failed after attempt %d (round %d) though the strategy had retries left", r.name, a.Number, round+1)
				}
			default:
				l.violate("transition", subj, "%s moved to %s after a failed attempt", r.name, t.Status)
			}
		}
		r.attempts++
		r.round++
		r.claims = 0
		desc = fmt.Sprintf("attempt %d, %s", a.Number, desc)
	} else {
		switch t.Status {
		case convoy.DeliveryDiscarded:
			inactive := false
			for _, v := range versions {
				inactive = inactive || v.status == convoy.EndpointInactive
			}
			if !inactive {
				l.violate("transition", subj, "%s was Discarded although %s was not inactive when it was claimed", r.name, r.ep.name)
			}
		case convoy.DeliveryFailure:
			if ls.claimed.Claims <= cfg.MaxClaims {
				l.violate("transition", subj, "%s ended in Failure without an attempt after %d claims (MaxClaims %d)", r.name, ls.claimed.Claims, cfg.MaxClaims)
			}
			desc = "abandoned, " + desc
		default:
			l.violate("transition", subj, "%s moved to %s without an attempt", r.name, t.Status)
		}
	}
	r.status = t.Status
	if t.Status == convoy.DeliveryRetry {
		r.nextAt = t.NextAttemptAt
	}
	l.note(now, fmt.Sprintf("%s records %s: %s", inc.name, r.name, desc))
	l.checkEndpointRule(inc, r, t, res, obs, afterFault)
}

// checkEndpointRule checks the endpoint status a Record chose against
// the rules: 410 kills the endpoint at once; a success makes a pending
// endpoint active; a failure kills a pending endpoint when the delivery
// is exhausted and any endpoint when the DeadEndpoint policy says so;
// nothing else moves it. It checks too the endpoint's health as the store
// updated it.
func (l *ledger) checkEndpointRule(inc *incarnation, r *dlRec, t convoy.Transition, res convoy.RecordResult, obs *recordObs, afterFault bool) {
	ep := r.ep
	subj := []string{r.name, ep.name}
	before := ep.status
	if res.EndpointBefore != before {
		l.violate("endpoint-status", subj, "Record saw %s %s, the ledger %s", ep.name, res.EndpointBefore, before)
	}
	t.UpdateHealth(&ep.health)
	want := before
	a := t.Attempt
	switch {
	case t.Status == convoy.DeliveryDiscarded:
	case a != nil && a.Success():
		if before == convoy.EndpointPending {
			want = convoy.EndpointActive
		}
	case a != nil && a.StatusCode == 410:
		want = convoy.EndpointInactive
	case before == convoy.EndpointInactive:
	default:
		exhausted := t.Status == convoy.DeliveryFailure && a != nil
		if before == convoy.EndpointPending && exhausted {
			want = convoy.EndpointInactive
		} else if l.w.sc.Dead.Policy().Dead(ep.health, exhausted, t.Now) {
			want = convoy.EndpointInactive
		}
	}
	if obs.called {
		if !obs.view.Health.FailingSince.Equal(ep.health.FailingSince) ||
			obs.view.Health.ConsecutiveFailures != ep.health.ConsecutiveFailures ||
			obs.view.Health.ConsecutiveFailedDeliveries != ep.health.ConsecutiveFailedDeliveries {
			l.violate("endpoint-health", subj, "the store's health of %s after %s's record is %+v, the ledger's %+v",
				ep.name, r.name, obs.view.Health, ep.health)
		}
		ep.health = obs.view.Health
	}
	if res.EndpointAfter != want {
		l.violate("endpoint-status", subj, "after %s's %s record (attempt status %d) %s went %s -> %s; the rules say %s",
			r.name, t.Status, statusOf(a), ep.name, before, res.EndpointAfter, want)
	}
	if !afterFault {
		obs.ep, obs.from, obs.to = ep, res.EndpointBefore, res.EndpointAfter
	}
	l.statusChanged(ep, res.EndpointAfter, time.Now())
}

func statusOf(a *convoy.Attempt) int {
	if a == nil {
		return 0
	}
	return a.StatusCode
}

// release records a Release that reached the store.
func (l *ledger) release(inc *incarnation, deliveryID, leaseID string, err error) {
	r := l.dls[deliveryID]
	if r == nil {
		return
	}
	ls := r.leaseByID(leaseID)
	subj := []string{r.name, r.ep.name}
	if errors.Is(err, convoy.ErrLeaseLost) {
		if ls != nil && ls == r.lastLease() && ls.ended == "" {
			l.violate("lease", subj, "the store refused %s's release of %s though its lease was held", inc.name, r.name)
		}
		return
	}
	if err != nil {
		return
	}
	if ls == nil || ls != r.lastLease() || ls.ended != "" {
		l.violate("stale-lease", subj, "%s released %s under a lease that was not held", inc.name, r.name)
		return
	}
	ls.ended = "released"
	// The request cut short by Close, if any: the dispatcher's latest in
	// flight since the claim.
	for i := len(r.reqs) - 1; i >= 0; i-- {
		if q := r.reqs[i]; q.inc == inc && q.state == reqInFlight && !q.start.Before(ls.at) {
			q.state, q.lease = reqReleased, ls
			l.n.Released++
			break
		}
	}
	r.status = convoy.DeliveryScheduled
	if r.attempts > 0 {
		r.status = convoy.DeliveryRetry
	}
	if r.claims > 0 {
		r.claims--
	}
	r.dirty = true
	l.note(time.Now(), fmt.Sprintf("%s releases %s", inc.name, r.name))
}

// requeue records a Requeue that reached the store.
func (l *ledger) requeue(req convoy.RequeueRequest, n int) {
	statuses := req.Statuses
	if len(statuses) == 0 {
		statuses = []convoy.DeliveryStatus{convoy.DeliveryDiscarded}
	}
	var picked []*dlRec
	for _, r := range l.dlSeq {
		if r.deleted || !slices.Contains(statuses, r.status) && req.DeliveryID == "" {
			continue
		}
		switch {
		case req.DeliveryID != "" && r.id == req.DeliveryID:
			picked = append(picked, r)
		case req.DeliveryID == "" && r.ep.id == req.EndpointID:
			picked = append(picked, r)
		}
	}
	if n != len(picked) {
		l.violate("requeue", nil, "Requeue moved %d deliveries, the ledger counts %d", n, len(picked))
	}
	names := make([]string, 0, len(picked))
	for _, r := range picked {
		r.status, r.nextAt, r.round, r.claims, r.dirty = convoy.DeliveryScheduled, req.Now, 0, 0, true
		names = append(names, r.name)
	}
	l.note(time.Now(), fmt.Sprintf("re-sent [%s]", strings.Join(names, ", ")))
}

// endpointRemoved records a DeleteEndpoint that landed.
func (l *ledger) endpointRemoved(id string) {
	ep := l.eps[id]
	if ep == nil {
		return
	}
	ep.removed = true
	for _, r := range l.dlSeq {
		if r.ep != ep || r.deleted {
			continue
		}
		r.deleted = true
		for _, q := range r.reqs {
			if q.state == reqInFlight {
				q.state = reqDeleted
			}
		}
	}
	l.note(time.Now(), ep.name+" removed")
}

// requestStart records a request arriving at receiver rcv and returns
// the receiver's answer.
func (l *ledger) requestStart(inc *incarnation, deliveryID string, number, rcv int) (*request, answer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.n.Requests++
	r := l.dls[deliveryID]
	if r == nil {
		l.violate("request", nil, "%s sent a request for a delivery the ledger does not know", inc.name)
		return &request{inc: inc}, answer{mode: ModeRefuse}
	}
	subj := []string{r.name, r.ep.name}
	// The attempt must be made under the delivery's current lease, held
	// by this dispatcher, and be sure to end before the lease does:
	// otherwise another dispatcher may take the delivery over and send it
	// too while this request is in flight.
	ls := r.lastLease()
	switch {
	case ls == nil || ls.inc != inc && !slices.ContainsFunc(r.leases, func(x *lease) bool { return x.inc == inc }):
		l.violate("request", subj, "%s sent %s without claiming it", inc.name, r.name)
		return &request{dl: r, inc: inc}, answer{mode: ModeRefuse}
	case ls.inc != inc || ls.ended != "":
		l.violate("lease", subj, "%s sent %s#%d after its lease was taken over or ended (the current lease is %s's, %s)",
			inc.name, r.name, number, ls.inc.name, leaseState(ls))
	case !now.Add(l.w.sc.Timeout).Before(ls.expires):
		l.violate("lease", subj, "%s sent %s#%d at %s under lease %d, which ends at %s, before the attempt's %s timeout can: another dispatcher may take it over mid-attempt",
			inc.name, r.name, number, l.w.stamp(now), ls.n, l.w.stamp(ls.expires), l.w.sc.Timeout)
	case number != r.attempts+1:
		l.violate("attempts", subj, "%s sent attempt %d of %s, which has %d", inc.name, number, r.name, r.attempts)
	}
	alive := false
	for _, v := range r.ep.window(ls.at.Add(-settingsTTL), now) {
		alive = alive || v.status != convoy.EndpointInactive
	}
	if !alive {
		l.violate("endpoint-status", subj, "%s attempted %s although %s was inactive", inc.name, r.name, r.ep.name)
	}
	occurrence := 0
	for _, q := range r.reqs {
		if q.number == number {
			occurrence++
		}
	}
	a := l.w.net.decide(rcv, r.name, number, occurrence, l.w.sc.Timeout)
	l.checkFlowRequest(inc, r, ls, now)
	q := &request{dl: r, inc: inc, number: number, occurrence: occurrence, receiver: rcv, start: now, a: a, faultsAt: inc.faults, leaseAt: ls.at}
	r.reqs = append(r.reqs, q)
	l.note(now, fmt.Sprintf("%s sends %s#%d to r%d: %s", inc.name, r.name, number, rcv, a))
	return q, a
}

// requestEnd records that the dispatcher has the answer to q: ok when it
// was a 2xx read to its end.
func (l *ledger) requestEnd(q *request, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if q.done {
		return
	}
	q.done, q.ok, q.end = true, ok, time.Now()
}

// responded notes the status and Retry-After the dispatcher received.
func (l *ledger) responded(q *request, status, retryAfter int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	q.status, q.retryAfter = status, retryAfter
}

// crashed marks inc's requests whose records have not landed as cut.
func (l *ledger) crashed(inc *incarnation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.dlSeq {
		for _, q := range r.reqs {
			if q.inc == inc && q.state == reqInFlight {
				q.state = reqCut
				l.n.Cut++
				n++
			}
		}
	}
	l.note(time.Now(), fmt.Sprintf("%s crashed, %d attempts cut", inc.name, n))
}

// hooksMissing returns the status events a live dispatcher still owes.
// The caller holds mu.
func (l *ledger) hooksMissing() string {
	var out []string
	for _, ep := range l.epSeq {
		for inc, m := range ep.hooks {
			if inc.fenced() {
				continue
			}
			for _, k := range slices.Sorted(maps.Keys(m)) {
				if m[k] > 0 {
					out = append(out, fmt.Sprintf("%s %s %s x%d", inc.name, ep.name, k, m[k]))
				}
			}
		}
	}
	return strings.Join(out, "; ")
}

// name returns the ledger's name of the record of kind with the ID, for
// sequencer tickets: "app", "endpoint", "event", "delivery", or "send"
// (the send being made).
func (l *ledger) name(kind, id string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch kind {
	case "app":
		if n, ok := l.apps[id]; ok {
			return n
		}
	case "endpoint":
		if r := l.eps[id]; r != nil {
			return r.name
		}
	case "event":
		if r := l.evs[id]; r != nil {
			return r.name
		}
	case "delivery":
		if r := l.dls[id]; r != nil {
			return r.name
		}
	case "send":
		return fmt.Sprintf("s%d", l.send)
	}
	if id == "" {
		return ""
	}
	return "?"
}

// recordName names a Record or Release for the sequencer: the delivery,
// the attempt and the lease.
func (l *ledger) recordName(deliveryID, leaseID string, a *convoy.Attempt) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.dls[deliveryID]
	if r == nil {
		return "?"
	}
	n := 0
	if ls := r.leaseByID(leaseID); ls != nil {
		n = ls.n
	}
	if a == nil {
		return fmt.Sprintf("%s lease %d", r.name, n)
	}
	return fmt.Sprintf("%s#%d lease %d", r.name, a.Number, n)
}

// ticket names a wake-up of the request for the sequencer.
func (q *request) ticket(phase string) string {
	if q.dl == nil {
		return q.inc.name + " net ? " + phase
	}
	return fmt.Sprintf("%s net %s#%d.%d %s", q.inc.name, q.dl.name, q.number, q.occurrence, phase)
}
