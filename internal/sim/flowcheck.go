package sim

import (
	"fmt"
	"math"
	"time"

	"github.com/convoykit/convoy"
)

// The checks of the flow controls: Endpoint.Ordered (the store's),
// Endpoint.RateLimit, Config.Adaptive and Config.Breaker (each
// dispatcher's own). They run as the ledger learns of a lease or a
// request, with the ledger's mutex held.

// insertClaim records an InsertEventClaim that reached the store: the
// event as InsertEvent, then what it leased as a Claim. It returns the
// deliveries leased to the caller.
func (l *ledger) insertClaim(inc *incarnation, ev *convoy.Event, res convoy.InsertResult, req convoy.ClaimRequest) []*convoy.Delivery {
	if !res.Inserted {
		for _, d := range res.Deliveries {
			if d.Status == convoy.DeliveryProcessing && d.LeaseOwner == req.Owner && l.dls[d.ID] == nil {
				l.violate("claim", nil, "%s's InsertEventClaim of a repeated key leased a delivery", inc.name)
			}
		}
		return nil
	}
	l.insert(ev, res)
	var leased []*convoy.Delivery
	for _, d := range res.Deliveries {
		if d.Status != convoy.DeliveryProcessing {
			continue
		}
		if r := l.dls[d.ID]; r != nil {
			// Stored Scheduled, then leased in the same transaction.
			r.status = convoy.DeliveryScheduled
		}
		leased = append(leased, d)
	}
	l.claim(inc, req, leased, true)
	return leased
}

// orderedSince reports whether ep was ordered all through [from, to].
func (ep *epRec) orderedSince(from, to time.Time) bool {
	vs := ep.window(from, to)
	if len(vs) == 0 {
		return false
	}
	for _, v := range vs {
		if !v.ordered {
			return false
		}
	}
	return true
}

// pending reports whether r waits for or is under an attempt.
func (r *dlRec) pending() bool {
	if r.deleted {
		return false
	}
	switch r.status {
	case convoy.DeliveryScheduled, convoy.DeliveryRetry, convoy.DeliveryProcessing:
		return true
	}
	return false
}

// checkFlowClaim checks a lease of r about to be recorded: an ordered
// endpoint's only to its head, and only while none of its deliveries is
// under a valid lease (none at all for InsertEventClaim, fast); none
// while the dispatcher's circuit for the endpoint is open; no more of a
// rate-limited endpoint than the dispatcher has tokens. taken counts the
// leases of this call so far, by endpoint.
func (l *ledger) checkFlowClaim(inc *incarnation, req convoy.ClaimRequest, r *dlRec, fast bool, taken map[*epRec]int) {
	ep := r.ep
	subj := []string{r.name, ep.name}
	taken[ep]++
	if len(ep.versions) > 0 && ep.versions[len(ep.versions)-1].ordered {
		for _, o := range l.dlSeq {
			if o == r || o.ep != ep || !o.pending() {
				continue
			}
			if ls := o.lastLease(); o.status == convoy.DeliveryProcessing && ls != nil && ls.ended == "" && ls.expires.After(req.Now) {
				l.violate("ordered", subj, "%s leased %s of ordered %s while %s was under %s's lease until %s: two in flight",
					inc.name, r.name, ep.name, o.name, ls.inc.name, l.w.stamp(ls.expires))
				break
			}
			if o.id < r.id {
				l.violate("ordered", subj, "%s leased %s of ordered %s before %s, pending with a lower ID: out of order",
					inc.name, r.name, ep.name, o.name)
				break
			}
			if fast {
				l.violate("ordered", subj, "%s leased %s of ordered %s in InsertEventClaim while %s was pending",
					inc.name, r.name, ep.name, o.name)
				break
			}
		}
	}
	if inc.d == nil {
		return
	}
	fl := inc.d.EndpointFlow(ep.id)
	if b := l.w.sc.Breaker; b.MinAttempts > 0 && fl.Circuit == convoy.CircuitOpen &&
		fl.OpenUntil.Add(-b.CoolDown).Before(req.Now) {
		l.violate("breaker", subj, "%s leased %s at %s while its circuit for %s was open (until %s)",
			inc.name, r.name, l.w.stamp(req.Now), ep.name, l.w.stamp(fl.OpenUntil))
	}
	if ep.rate != nil && fl.RateTokens >= 0 && taken[ep] > fl.RateTokens && !fast && l.knew(inc, ep, req.Now) {
		l.violate("rate-limit", subj, "%s leased %d of rate-limited %s with %d tokens left (%s): a delivery waiting for a token held under a lease",
			inc.name, taken[ep], ep.name, fl.RateTokens, r.name)
	}
}

// knew reports whether inc had attempted ep before now, and lately:
// then it knew the endpoint's rate limit when it asked for the claim (it
// may learn it only between asking and the store's answer otherwise).
func (l *ledger) knew(inc *incarnation, ep *epRec, now time.Time) bool {
	for _, o := range l.dlSeq {
		if o.ep != ep {
			continue
		}
		for _, q := range o.reqs {
			if q.inc == inc && q.start.Before(now) && now.Sub(q.start) < 5*time.Minute {
				return true
			}
		}
	}
	return false
}

// checkFlowRequest checks a request of r starting now under ls, before
// it is added to the ledger.
func (l *ledger) checkFlowRequest(inc *incarnation, r *dlRec, ls *lease, now time.Time) {
	ep := r.ep
	subj := []string{r.name, ep.name}
	// In flight: the requests whose answer is not in, by anyone and by
	// this dispatcher.
	var mine []*request
	var others *request
	for _, o := range l.dlSeq {
		if o.ep != ep {
			continue
		}
		for _, q := range o.reqs {
			if q.done || q.state != reqInFlight {
				continue
			}
			if q.inc == inc {
				mine = append(mine, q)
			}
			if others == nil || q.start.Before(others.start) {
				others = q
			}
		}
	}
	if others != nil && ep.orderedSince(ls.at, now) {
		l.violate("ordered", subj, "%s sent %s to ordered %s while %s's request of %s was in flight",
			inc.name, r.name, ep.name, others.inc.name, others.dl.name)
	}
	if pe := l.w.sc.PerEndpoint; len(mine)+1 > pe {
		l.violate("per-endpoint", subj, "%s sent %s with %d other requests to %s in flight; PerEndpoint is %d",
			inc.name, r.name, len(mine), ep.name, pe)
	}
	if ep.rate != nil {
		l.checkRate(inc, r, ls, now)
	}
	if inc.d == nil {
		return
	}
	fl := inc.d.EndpointFlow(ep.id)
	if l.w.sc.Adaptive && fl.Circuit != convoy.CircuitOpen && (fl.Limit < 1 || fl.Limit > l.w.sc.PerEndpoint) {
		l.violate("adaptive", subj, "%s's limit for %s is %d, outside [1, %d]", inc.name, ep.name, fl.Limit, l.w.sc.PerEndpoint)
	}
	b := l.w.sc.Breaker
	if b.MinAttempts == 0 {
		return
	}
	switch fl.Circuit {
	case convoy.CircuitOpen:
		// Open since before the lease was taken: it was open when the
		// attempt was admitted.
		if fl.OpenUntil.Add(-b.CoolDown).Before(ls.at) {
			l.violate("breaker", subj, "%s sent %s at %s while its circuit for %s was open (until %s)",
				inc.name, r.name, l.w.stamp(now), ep.name, l.w.stamp(fl.OpenUntil))
		}
	case convoy.CircuitHalfOpen:
		if len(mine) > 0 {
			l.violate("breaker", subj, "%s sent %s while its circuit for %s was half-open and %s's probe was in flight",
				inc.name, r.name, ep.name, mine[0].dl.name)
		}
	}
}

// checkRate checks that inc's requests to r's endpoint, this one
// included, keep to its rate limit: the tokens of the requests whose
// leases were taken at or after t and which started by now were spent in
// [t, now], so there are at most Burst + PerSecond × (now - t) of them.
func (l *ledger) checkRate(inc *incarnation, r *dlRec, ls *lease, now time.Time) {
	ep := r.ep
	var at []time.Time // the lease times of inc's requests to ep
	for _, o := range l.dlSeq {
		if o.ep != ep {
			continue
		}
		for _, q := range o.reqs {
			if q.inc == inc {
				at = append(at, q.leaseAt)
			}
		}
	}
	at = append(at, ls.at)
	burst := ep.rate.Burst
	if burst == 0 {
		burst = max(1, int(math.Ceil(ep.rate.PerSecond)))
	}
	for _, t := range at {
		n := 0
		for _, u := range at {
			if !u.Before(t) {
				n++
			}
		}
		bound := burst + int(math.Ceil(ep.rate.PerSecond*now.Sub(t).Seconds()))
		if n > bound {
			l.violate("rate-limit", []string{r.name, ep.name}, "%s started %d requests to %s within [%s, %s], more than its limit allows (%s)",
				inc.name, n, ep.name, l.w.stamp(t), l.w.stamp(now), fmt.Sprintf("burst %d + %g/s", burst, ep.rate.PerSecond))
			return
		}
	}
}
