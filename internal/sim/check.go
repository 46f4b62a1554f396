package sim

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/convoykit/convoy"
)

// check compares the store with the ledger while everything is at rest
// (after synctest.Wait): every delivery the store was seen storing is
// there, in the state the ledger expects, with as many attempts as
// recorded; nothing else is; Stats counts what the listings show; the
// endpoints have the statuses the rules gave them; every status change is
// reported to OnEndpointStatus.
func (w *world) check() {
	l := w.led
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return
	}
	ctx := w.ctx
	st := w.store
	now := time.Now()

	listed := make(map[string]*convoy.Delivery)
	for _, app := range w.apps {
		for page := (convoy.Page{Limit: convoy.MaxPageSize}); ; {
			ds, next, err := st.ListDeliveries(ctx, convoy.DeliveryQuery{AppID: app.ID}, page)
			if err != nil {
				l.violate("store", nil, "ListDeliveries: %v", err)
				return
			}
			for _, d := range ds {
				if listed[d.ID] != nil {
					l.violate("listing", nil, "a delivery is listed twice")
				}
				listed[d.ID] = d
			}
			if next == "" {
				break
			}
			page.Cursor = next
		}
	}
	byStatus := make(map[convoy.DeliveryStatus]int)
	// due counts what is due; of an ordered endpoint's deliveries only
	// the head may be (those held back behind it are not due, though a
	// store may count them until a Claim passes over them): dueMin is
	// the count without them.
	due, dueMin := 0, 0
	heads := make(map[string]*convoy.Delivery) // by ordered endpoint
	busy := make(map[string]bool)              // ordered endpoints with a valid lease
	for _, d := range listed {
		ep := l.eps[d.EndpointID]
		if ep == nil || len(ep.versions) == 0 || !ep.versions[len(ep.versions)-1].ordered {
			continue
		}
		switch d.Status {
		case convoy.DeliveryScheduled, convoy.DeliveryRetry, convoy.DeliveryProcessing:
			if h := heads[d.EndpointID]; h == nil || d.ID < h.ID {
				heads[d.EndpointID] = d
			}
			if d.Status == convoy.DeliveryProcessing && d.LeaseExpiresAt.After(now) {
				busy[d.EndpointID] = true
			}
		}
	}
	for _, d := range listed {
		byStatus[d.Status]++
		if t, ok := d.DueAt(); ok && !t.After(now) {
			due++
			if h, ordered := heads[d.EndpointID]; !ordered || h == d && !busy[d.EndpointID] {
				dueMin++
			}
		}
		r := l.dls[d.ID]
		switch {
		case r == nil:
			l.violate("listing", nil, "the store lists a delivery (%s) that no InsertEvent stored", d.Status)
			return
		case r.deleted:
			l.violate("listing", []string{r.name, r.ep.name}, "%s is listed although %s was removed", r.name, r.ep.name)
			return
		}
	}
	for _, r := range l.dlSeq {
		if r.deleted {
			continue
		}
		subj := []string{r.name, r.ep.name}
		d := listed[r.id]
		if d == nil {
			if _, err := st.GetDelivery(ctx, r.id); err != nil {
				l.violate("lost", subj, "%s (%s) is gone from the store: %v", r.name, r.status, err)
			} else {
				l.violate("listing", subj, "%s is in the store but not in its app's listing", r.name)
			}
			return
		}
		if d.Status != r.status || d.Attempts != r.attempts || d.RoundAttempts != r.round || d.Claims != r.claims {
			l.violate("state", subj, "the store has %s %s with %d attempts (%d this round, %d claims), the ledger %s with %d (%d, %d)",
				r.name, d.Status, d.Attempts, d.RoundAttempts, d.Claims, r.status, r.attempts, r.round, r.claims)
			return
		}
		switch d.Status {
		case convoy.DeliveryScheduled, convoy.DeliveryRetry:
			if !d.NextAttemptAt.Equal(r.nextAt) {
				l.violate("state", subj, "the store has %s due at %s, the ledger at %s", r.name, w.stamp(d.NextAttemptAt), w.stamp(r.nextAt))
				return
			}
			if d.LeaseID != "" {
				l.violate("state", subj, "%s is %s with a lease", r.name, d.Status)
			}
		case convoy.DeliveryProcessing:
			if ls := r.lastLease(); ls == nil || d.LeaseID != ls.id || !d.LeaseExpiresAt.Equal(ls.expires) {
				l.violate("state", subj, "%s is Processing under a lease other than the last one handed out", r.name)
				return
			}
		default:
			if d.LeaseID != "" {
				l.violate("state", subj, "%s is %s with a lease", r.name, d.Status)
			}
		}
		if r.dirty {
			if !w.checkAttempts(r) {
				return
			}
			r.dirty = false
		}
	}

	// Stats against the listings.
	var ss convoy.StoreStats
	var stats *convoy.Stats
	if running := w.live(); len(running) > 0 {
		s, err := running[0].d.Stats(ctx)
		if err != nil {
			l.violate("store", nil, "Stats: %v", err)
			return
		}
		stats = &s
		ss = convoy.StoreStats{Deliveries: s.Deliveries, Endpoints: s.Endpoints, DueNow: s.DueNow}
	} else {
		var err error
		if ss, err = st.Stats(ctx, now); err != nil {
			l.violate("store", nil, "Stats: %v", err)
			return
		}
	}
	if !sameCounts(ss.Deliveries, byStatus) {
		l.violate("stats", nil, "Stats counts deliveries %v, the listings %v", ss.Deliveries, byStatus)
		return
	}
	if ss.DueNow < dueMin || ss.DueNow > due || dueMin == due && ss.DueNow != due {
		l.violate("stats", nil, "Stats counts %d due now, the listings %d (%d without those held back behind an ordered head)", ss.DueNow, due, dueMin)
		return
	}
	if stats != nil && stats.RetriesScheduled != byStatus[convoy.DeliveryRetry] {
		l.violate("stats", nil, "Stats counts %d retries scheduled, the listings %d Retry", stats.RetriesScheduled, byStatus[convoy.DeliveryRetry])
		return
	}

	epStatus := make(map[convoy.EndpointStatus]int)
	seen := make(map[string]bool)
	for _, app := range w.apps {
		for page := (convoy.Page{Limit: convoy.MaxPageSize}); ; {
			eps, next, err := st.ListEndpoints(ctx, app.ID, page)
			if err != nil {
				l.violate("store", nil, "ListEndpoints: %v", err)
				return
			}
			for _, e := range eps {
				epStatus[e.Status]++
				seen[e.ID] = true
				r := l.eps[e.ID]
				switch {
				case r == nil:
					l.violate("listing", nil, "the store lists an endpoint nobody added")
					return
				case r.removed:
					l.violate("listing", []string{r.name}, "%s is listed after its removal", r.name)
					return
				case e.Status != r.status:
					l.violate("endpoint-status", []string{r.name}, "the store has %s %s, the ledger %s", r.name, e.Status, r.status)
					return
				}
			}
			if next == "" {
				break
			}
			page.Cursor = next
		}
	}
	for _, r := range l.epSeq {
		if !r.removed && !seen[r.id] {
			l.violate("listing", []string{r.name}, "%s is missing from the store", r.name)
			return
		}
	}
	if !sameCounts(ss.Endpoints, epStatus) {
		l.violate("stats", nil, "Stats counts endpoints %v, the listings %v", ss.Endpoints, epStatus)
		return
	}
	if m := l.hooksMissing(); m != "" {
		l.violate("status-event", nil, "status changes not reported to OnEndpointStatus: %s", m)
	}
}

// checkAttempts compares a delivery's recorded attempts with the ledger.
// The caller holds mu.
func (w *world) checkAttempts(r *dlRec) bool {
	l := w.led
	subj := []string{r.name, r.ep.name}
	var nums []int
	for page := (convoy.Page{Limit: convoy.MaxPageSize}); ; {
		as, next, err := w.store.ListAttempts(w.ctx, r.id, page)
		if err != nil {
			l.violate("store", subj, "ListAttempts(%s): %v", r.name, err)
			return false
		}
		for _, a := range as {
			nums = append(nums, a.Number)
		}
		if next == "" {
			break
		}
		page.Cursor = next
	}
	recorded := 0
	for _, q := range r.reqs {
		if q.state == reqRecorded {
			recorded++
		}
	}
	slices.Sort(nums)
	want := make([]int, r.attempts)
	for i := range want {
		want[i] = i + 1
	}
	if !slices.Equal(nums, want) || recorded != r.attempts {
		l.violate("attempts", subj, "the store holds attempts %v of %s; the ledger saw %d recorded of %d requests",
			nums, r.name, recorded, len(r.reqs))
		return false
	}
	return true
}

func sameCounts[K comparable](a, b map[K]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

// summary is the state at the end of a step: deliveries and endpoints by
// status, from the ledger (which the checks hold equal to the store).
func (w *world) summary() string {
	l := w.led
	l.mu.Lock()
	defer l.mu.Unlock()
	ds := make(map[string]int)
	for _, r := range l.dlSeq {
		if !r.deleted {
			ds[string(r.status)]++
		}
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(ds)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, ds[k]))
	}
	var eps []string
	for _, r := range l.epSeq {
		if !r.removed {
			eps = append(eps, r.name+"="+string(r.status))
		}
	}
	var live []string
	for _, inc := range w.live() {
		live = append(live, inc.name)
	}
	return fmt.Sprintf("deliveries %s; endpoints %s; running %s",
		strings.Join(parts, " "), strings.Join(eps, " "), strings.Join(live, " "))
}
