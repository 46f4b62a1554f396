package memory

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/convoykit/convoy"
)

// InsertEvent implements [convoy.Store]. Besides the checks of the
// contract, every delivery must have the event's AppID, go to an endpoint
// of that app, and not be Processing (only Claim and InsertEventClaim
// hand out leases).
func (s *Store) InsertEvent(ctx context.Context, ev *convoy.Event, deliveries []*convoy.Delivery) (convoy.InsertResult, error) {
	return s.insert(ctx, ev, deliveries, nil)
}

// InsertEventClaim implements [convoy.ClaimingInserter]: InsertEvent, then
// the new Scheduled deliveries are leased as Claim would lease them, under
// the same lock, unless other work is due at req.Now.
func (s *Store) InsertEventClaim(ctx context.Context, ev *convoy.Event, deliveries []*convoy.Delivery, req convoy.ClaimRequest) (convoy.InsertResult, error) {
	if req.Lease <= 0 {
		return convoy.InsertResult{}, fmt.Errorf("%w: claim lease must be positive", convoy.ErrInvalid)
	}
	return s.insert(ctx, ev, deliveries, &req)
}

// insert stores ev and its deliveries and, with claim set, leases the new
// Scheduled ones.
func (s *Store) insert(ctx context.Context, ev *convoy.Event, deliveries []*convoy.Delivery, claim *convoy.ClaimRequest) (convoy.InsertResult, error) {
	if err := ev.Validate(0); err != nil {
		return convoy.InsertResult{}, err
	}
	for _, d := range deliveries {
		if err := d.Validate(); err != nil {
			return convoy.InsertResult{}, err
		}
		if d.EventID != ev.ID {
			return convoy.InsertResult{}, fmt.Errorf("%w: delivery %s is for event %s, not %s", convoy.ErrInvalid, d.ID, d.EventID, ev.ID)
		}
		if d.AppID != ev.AppID {
			return convoy.InsertResult{}, fmt.Errorf("%w: delivery %s is for app %s, not %s", convoy.ErrInvalid, d.ID, d.AppID, ev.AppID)
		}
		if d.Status == convoy.DeliveryProcessing {
			return convoy.InsertResult{}, fmt.Errorf("%w: delivery %s inserted as Processing", convoy.ErrInvalidStatus, d.ID)
		}
	}
	if err := s.lock(ctx); err != nil {
		return convoy.InsertResult{}, err
	}
	defer s.mu.Unlock()
	ar, ok := s.apps[ev.AppID]
	if !ok {
		return convoy.InsertResult{}, notFound("app", ev.AppID)
	}
	if k := ev.IdempotencyKey; k != "" {
		if first, ok := ar.idem[k]; ok {
			evr := s.events[first]
			res := convoy.InsertResult{Event: evr.ev.Clone()}
			evr.deliveries.descend("", func(id string) bool {
				res.Deliveries = append(res.Deliveries, s.deliveries[id].d.Clone())
				return true
			})
			return res, nil
		}
	}
	if _, ok := s.events[ev.ID]; ok {
		return convoy.InsertResult{}, duplicate("event", ev.ID)
	}
	// Deliveries to endpoints removed since the caller listed them are
	// skipped; the others are checked before anything changes.
	kept := make([]*convoy.Delivery, 0, len(deliveries))
	eps := make([]*endpointRec, 0, len(deliveries))
	seen := make(map[string]struct{}, len(deliveries))
	for _, d := range deliveries {
		er, ok := s.endpoints[d.EndpointID]
		if !ok {
			continue
		}
		if er.ep.AppID != ev.AppID {
			return convoy.InsertResult{}, fmt.Errorf("%w: delivery %s goes to endpoint %s of another app", convoy.ErrInvalid, d.ID, d.EndpointID)
		}
		if _, ok := s.deliveries[d.ID]; ok {
			return convoy.InsertResult{}, duplicate("delivery", d.ID)
		}
		if _, ok := seen[d.ID]; ok {
			return convoy.InsertResult{}, duplicate("delivery", d.ID)
		}
		seen[d.ID] = struct{}{}
		kept = append(kept, d)
		eps = append(eps, er)
	}

	evr := &eventRec{ev: ev.Clone(), key: eventKey{at: keyOf(ev.CreatedAt), id: ev.ID}}
	s.events[ev.ID] = evr
	s.indexEvent(ar, evr)
	if k := ev.IdempotencyKey; k != "" {
		ar.idem[k] = ev.ID
	}
	// Leases are handed out only when nothing else is due: a new event
	// does not overtake work that waits (capped endpoints' included).
	leases := 0
	var taken map[string]int
	if claim != nil && claim.Limit > 0 && (len(s.due) == 0 || s.due[0].queue[0].key.after(keyOf(claim.Now))) {
		leases = claim.Limit
		taken = make(map[string]int)
	}
	res := convoy.InsertResult{Event: ev, Deliveries: make([]*convoy.Delivery, len(kept)), Inserted: true}
	for i, d := range kept {
		dr := &deliveryRec{d: d.Clone(), ep: eps[i], heapIdx: -1}
		if leases > 0 && d.Status == convoy.DeliveryScheduled &&
			claim.Room(d.EndpointID, taken[d.EndpointID]) > 0 &&
			(!eps[i].ep.Ordered || eps[i].pending() == 0) {
			claim.Grant(dr.d)
			taken[d.EndpointID]++
			leases--
		}
		s.deliveries[d.ID] = dr
		evr.deliveries.insert(d.ID)
		s.schedule(dr)
		res.Deliveries[i] = dr.d.Clone()
	}
	return res, nil
}

// indexEvent adds evr to the event indexes.
func (s *Store) indexEvent(ar *appRec, evr *eventRec) {
	s.eventIndex.insert(evr.key)
	ar.events.insert(evr.key)
	typeSet(s.eventsByType, evr.ev.Type, true).insert(evr.key)
	typeSet(ar.eventsByType, evr.ev.Type, true).insert(evr.key)
}

// unindexEvent removes evr from the event indexes.
func (s *Store) unindexEvent(evr *eventRec) {
	ar := s.apps[evr.ev.AppID]
	s.eventIndex.delete(evr.key)
	ar.events.delete(evr.key)
	untype(s.eventsByType, evr)
	untype(ar.eventsByType, evr)
}

// untype removes evr from its type's index in m, and drops the index when
// it becomes empty.
func untype(m map[string]*sortedSet[eventKey], evr *eventRec) {
	if set := m[evr.ev.Type]; set != nil {
		if set.delete(evr.key); set.len() == 0 {
			delete(m, evr.ev.Type)
		}
	}
}

// typeSet returns the index of the event type typ in m, creating it when
// create is set; nil when there is none.
func typeSet(m map[string]*sortedSet[eventKey], typ string, create bool) *sortedSet[eventKey] {
	set := m[typ]
	if set == nil && create {
		set = newEventSet()
		m[typ] = set
	}
	return set
}

// removeEvent drops an event with its deliveries and their attempts, and
// frees its idempotency key.
func (s *Store) removeEvent(evr *eventRec) {
	for _, dID := range evr.deliveries.ids {
		dr := s.deliveries[dID]
		s.unschedule(dr)
		s.uncount(dr)
		delete(s.deliveries, dID)
	}
	ar := s.apps[evr.ev.AppID]
	id := evr.ev.ID
	if k := evr.ev.IdempotencyKey; k != "" && ar.idem[k] == id {
		delete(ar.idem, k)
	}
	s.unindexEvent(evr)
	delete(s.events, id)
}

// GetEvent implements [convoy.Store].
func (s *Store) GetEvent(ctx context.Context, id string) (*convoy.Event, error) {
	if err := convoy.ValidateID("event ID", id); err != nil {
		return nil, err
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	evr, ok := s.events[id]
	if !ok {
		return nil, notFound("event", id)
	}
	return evr.ev.Clone(), nil
}

// ListEvents implements [convoy.Store]. It walks the one index that
// matches the query's AppID and Type, from the page's upper bound down to
// q.CreatedFrom. A query naming an app that does not exist gives an empty
// list.
func (s *Store) ListEvents(ctx context.Context, q convoy.EventQuery, page convoy.Page) ([]*convoy.Event, string, error) {
	if q.AppID != "" {
		if err := convoy.ValidateID("app ID", q.AppID); err != nil {
			return nil, "", err
		}
	}
	if q.Type != "" {
		if err := convoy.ValidateEventType(q.Type); err != nil {
			return nil, "", err
		}
	}
	// The page holds events strictly below its upper bound: the cursor
	// (the last event returned) or CreatedTo, whichever is lower.
	var (
		upper   eventKey
		bounded bool
	)
	if !q.CreatedTo.IsZero() {
		upper, bounded = eventKey{at: keyOf(q.CreatedTo)}, true
	}
	if page.Cursor != "" {
		k, err := parseEventCursor(page.Cursor)
		if err != nil {
			return nil, "", err
		}
		if !bounded || compareEventKey(k, upper) < 0 {
			upper, bounded = k, true
		}
	}
	from := keyOf(q.CreatedFrom)
	if err := s.lock(ctx); err != nil {
		return nil, "", err
	}
	defer s.mu.Unlock()

	var idx *sortedSet[eventKey]
	switch {
	case q.AppID != "":
		ar, ok := s.apps[q.AppID]
		if !ok {
			return nil, "", nil
		}
		idx = ar.events
		if q.Type != "" {
			idx = ar.eventsByType[q.Type]
		}
	case q.Type != "":
		idx = s.eventsByType[q.Type]
	default:
		idx = s.eventIndex
	}
	if idx == nil {
		return nil, "", nil
	}
	n := page.Size()
	keys := make([]eventKey, 0, min(n+1, idx.len()))
	idx.descend(upper, bounded, func(k eventKey) bool {
		if !q.CreatedFrom.IsZero() && from.after(k.at) {
			return false
		}
		keys = append(keys, k)
		return len(keys) <= n
	})
	next := ""
	if len(keys) > n {
		keys = keys[:n]
		next = eventCursor(keys[n-1])
	}
	out := make([]*convoy.Event, len(keys))
	for i, k := range keys {
		out[i] = s.events[k.id].ev.Clone()
	}
	return out, next, nil
}

// eventCursor encodes the position of an event in the event lists.
func eventCursor(k eventKey) string {
	return strconv.FormatInt(k.at.sec, 10) + "." + strconv.Itoa(int(k.at.nsec)) + "." + k.id
}

func parseEventCursor(c string) (eventKey, error) {
	bad := fmt.Errorf("%w: bad events cursor", convoy.ErrInvalid)
	sec, rest, ok1 := strings.Cut(c, ".")
	nsec, id, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return eventKey{}, bad
	}
	sv, err1 := strconv.ParseInt(sec, 10, 64)
	nv, err2 := strconv.Atoi(nsec)
	if err1 != nil || err2 != nil || nv < 0 || nv >= int(time.Second) || convoy.ValidateID("cursor", id) != nil {
		return eventKey{}, bad
	}
	return eventKey{at: dueKey{sec: sv, nsec: int32(nv)}, id: id}, nil
}

// GetDelivery implements [convoy.Store].
func (s *Store) GetDelivery(ctx context.Context, id string) (*convoy.Delivery, error) {
	if err := convoy.ValidateID("delivery ID", id); err != nil {
		return nil, err
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	dr, ok := s.deliveries[id]
	if !ok {
		return nil, notFound("delivery", id)
	}
	return dr.d.Clone(), nil
}

// ListDeliveries implements [convoy.Store]. A query naming an event,
// endpoint or app that does not exist gives an empty list. With EventID it
// walks the event's deliveries (one per endpoint); otherwise it walks the
// endpoint's or the app's per-status indexes of the statuses asked.
func (s *Store) ListDeliveries(ctx context.Context, q convoy.DeliveryQuery, page convoy.Page) ([]*convoy.Delivery, string, error) {
	if q.EventID == "" && q.EndpointID == "" && q.AppID == "" {
		return nil, "", fmt.Errorf("%w: delivery query needs an event, endpoint or app ID", convoy.ErrInvalid)
	}
	for _, f := range [...]struct{ name, id string }{
		{"event ID", q.EventID}, {"endpoint ID", q.EndpointID}, {"app ID", q.AppID},
	} {
		if f.id == "" {
			continue
		}
		if err := convoy.ValidateID(f.name, f.id); err != nil {
			return nil, "", err
		}
	}
	for _, st := range q.Statuses {
		if !st.Valid() {
			return nil, "", fmt.Errorf("%w: %q", convoy.ErrInvalidStatus, st)
		}
	}
	if page.Cursor != "" {
		if err := convoy.ValidateID("cursor", page.Cursor); err != nil {
			return nil, "", fmt.Errorf("%w: bad deliveries cursor", convoy.ErrInvalid)
		}
	}
	if err := s.lock(ctx); err != nil {
		return nil, "", err
	}
	defer s.mu.Unlock()

	var ids []string
	next := ""
	switch {
	case q.EventID != "":
		evr, ok := s.events[q.EventID]
		if !ok {
			return nil, "", nil
		}
		n := page.Size()
		evr.deliveries.descend(page.Cursor, func(id string) bool {
			d := s.deliveries[id].d
			if (q.EndpointID != "" && d.EndpointID != q.EndpointID) ||
				(q.AppID != "" && d.AppID != q.AppID) ||
				(len(q.Statuses) > 0 && !slices.Contains(q.Statuses, d.Status)) {
				return true
			}
			if len(ids) == n {
				next = ids[n-1]
				return false
			}
			ids = append(ids, id)
			return true
		})
	case q.EndpointID != "":
		er, ok := s.endpoints[q.EndpointID]
		if !ok || (q.AppID != "" && er.ep.AppID != q.AppID) {
			return nil, "", nil
		}
		ids, next = pageDesc(er.deliveries.of(q.Statuses), page)
	default:
		ar, ok := s.apps[q.AppID]
		if !ok {
			return nil, "", nil
		}
		ids, next = pageDesc(ar.deliveries.of(q.Statuses), page)
	}
	out := make([]*convoy.Delivery, len(ids))
	for i, id := range ids {
		out[i] = s.deliveries[id].d.Clone()
	}
	return out, next, nil
}

// ListAttempts implements [convoy.Store]. Attempts are ordered by Number,
// then ID, both descending.
func (s *Store) ListAttempts(ctx context.Context, deliveryID string, page convoy.Page) ([]*convoy.Attempt, string, error) {
	if err := convoy.ValidateID("delivery ID", deliveryID); err != nil {
		return nil, "", err
	}
	var (
		before    bool
		beforeNum int
		beforeID  string
	)
	if page.Cursor != "" {
		n, id, ok := strings.Cut(page.Cursor, "/")
		num, err := strconv.Atoi(n)
		if !ok || err != nil {
			return nil, "", fmt.Errorf("%w: bad attempts cursor", convoy.ErrInvalid)
		}
		before, beforeNum, beforeID = true, num, id
	}
	if err := s.lock(ctx); err != nil {
		return nil, "", err
	}
	defer s.mu.Unlock()
	dr, ok := s.deliveries[deliveryID]
	if !ok {
		return nil, "", notFound("delivery", deliveryID)
	}
	rest := dr.attempts
	if before {
		rest = rest[:attemptsBefore(rest, beforeNum, beforeID)]
	}
	size := page.Size()
	next := ""
	if len(rest) > size {
		rest = rest[len(rest)-size:]
		last := rest[0]
		next = strconv.Itoa(last.Number) + "/" + last.ID
	}
	out := make([]*convoy.Attempt, len(rest))
	for i, a := range rest {
		out[len(rest)-1-i] = a.Clone()
	}
	return out, next, nil
}

// attemptsBefore returns how many of the attempts as, in ascending order,
// come before the position (num, id).
func attemptsBefore(as []*convoy.Attempt, num int, id string) int {
	return sort.Search(len(as), func(i int) bool { return compareAttempt(as[i], num, id) >= 0 })
}

// compareAttempt orders a against the position (num, id).
func compareAttempt(a *convoy.Attempt, num int, id string) int {
	if a.Number != num {
		if a.Number < num {
			return -1
		}
		return 1
	}
	return strings.Compare(a.ID, id)
}
