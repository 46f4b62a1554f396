// Package memory provides an in-memory [convoy.Store]: maps, ID-ordered
// indexes and a min-heap of due deliveries, all guarded by one mutex.
//
// Nothing it holds survives the process. Use it in tests, and in processes
// that accept losing the queue, with every event not yet delivered, on
// exit. Use store/bolt when deliveries must survive a restart.
package memory

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/convoykit/convoy"
)

// Store is an in-memory [convoy.Store]. The zero value is not usable; call
// [New]. A Store is safe for concurrent use: every method holds one mutex
// for its whole duration, so each call is atomic. Values passed in are
// copied and values returned are copies.
type Store struct {
	mu     sync.Mutex
	closed bool

	apps       map[string]*appRec
	appIndex   idIndex
	endpoints  map[string]*endpointRec
	events     map[string]*eventRec
	deliveries map[string]*deliveryRec
	// due holds the endpoints that have claimable deliveries (see heap.go).
	due endpointHeap
	// counts holds deliveries by status, kept by count (see stats.go).
	counts map[convoy.DeliveryStatus]int
}

var _ convoy.Store = (*Store)(nil)

type appRec struct {
	app       *convoy.App
	endpoints idIndex
	events    map[string]struct{}
	// idem maps an idempotency key to the ID of the event that used it.
	idem map[string]string
}

type endpointRec struct {
	ep         *convoy.Endpoint
	deliveries idIndex
	// queue holds the endpoint's claimable deliveries by due time.
	queue deliveryHeap
	// heapIdx is the endpoint's position in Store.due, -1 when absent.
	heapIdx int
}

type eventRec struct {
	ev         *convoy.Event
	deliveries idIndex
}

type deliveryRec struct {
	d  *convoy.Delivery
	ep *endpointRec
	// attempts are ordered by Number, then ID.
	attempts []*convoy.Attempt
	// due is when the delivery is next claimable and key the same time
	// as ep.queue orders it; heapIdx is its position there, -1 when the
	// delivery is final.
	due     time.Time
	key     dueKey
	heapIdx int
	// counted is the status this delivery is counted under in
	// Store.counts ("" before it is first counted).
	counted convoy.DeliveryStatus
}

// New returns an empty Store.
func New() *Store {
	return &Store{
		apps:       make(map[string]*appRec),
		endpoints:  make(map[string]*endpointRec),
		events:     make(map[string]*eventRec),
		deliveries: make(map[string]*deliveryRec),
		counts:     make(map[convoy.DeliveryStatus]int),
	}
}

// lock takes the store's mutex, failing when ctx is done or the store is
// closed. On success the caller must unlock s.mu.
func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return convoy.ErrClosed
	}
	return nil
}

func notFound(kind, id string) error {
	return fmt.Errorf("%w: %s %s", convoy.ErrNotFound, kind, id)
}

func duplicate(kind, id string) error {
	return fmt.Errorf("%w: %s %s", convoy.ErrDuplicate, kind, id)
}

// CreateApp implements [convoy.Store].
func (s *Store) CreateApp(ctx context.Context, app *convoy.App) error {
	if err := app.Validate(); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.apps[app.ID]; ok {
		return duplicate("app", app.ID)
	}
	s.apps[app.ID] = &appRec{
		app:    app.Clone(),
		events: make(map[string]struct{}),
		idem:   make(map[string]string),
	}
	s.appIndex.insert(app.ID)
	return nil
}

// GetApp implements [convoy.Store].
func (s *Store) GetApp(ctx context.Context, id string) (*convoy.App, error) {
	if err := convoy.ValidateID("app ID", id); err != nil {
		return nil, err
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	ar, ok := s.apps[id]
	if !ok {
		return nil, notFound("app", id)
	}
	return ar.app.Clone(), nil
}

// UpdateApp implements [convoy.Store].
func (s *Store) UpdateApp(ctx context.Context, app *convoy.App) error {
	if err := app.Validate(); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	ar, ok := s.apps[app.ID]
	if !ok {
		return notFound("app", app.ID)
	}
	ar.app = app.Clone()
	return nil
}

// DeleteApp implements [convoy.Store].
func (s *Store) DeleteApp(ctx context.Context, id string) error {
	if err := convoy.ValidateID("app ID", id); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	ar, ok := s.apps[id]
	if !ok {
		return notFound("app", id)
	}
	// Every delivery of the app's events goes to one of its endpoints
	// (InsertEvent checks it), so dropping the endpoints drops them all.
	for _, epID := range ar.endpoints.ids {
		s.removeEndpoint(s.endpoints[epID])
	}
	for evID := range ar.events {
		delete(s.events, evID)
	}
	delete(s.apps, id)
	s.appIndex.remove(id)
	return nil
}

// ListApps implements [convoy.Store].
func (s *Store) ListApps(ctx context.Context, page convoy.Page) ([]*convoy.App, string, error) {
	if err := s.lock(ctx); err != nil {
		return nil, "", err
	}
	defer s.mu.Unlock()
	ids, next := s.appIndex.page(page, nil)
	out := make([]*convoy.App, len(ids))
	for i, id := range ids {
		out[i] = s.apps[id].app.Clone()
	}
	return out, next, nil
}

// CreateEndpoint implements [convoy.Store]. The endpoint's Health is not
// taken from ep: a new endpoint starts with none.
func (s *Store) CreateEndpoint(ctx context.Context, ep *convoy.Endpoint) error {
	if err := ep.Validate(); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	ar, ok := s.apps[ep.AppID]
	if !ok {
		return notFound("app", ep.AppID)
	}
	if _, ok := s.endpoints[ep.ID]; ok {
		return duplicate("endpoint", ep.ID)
	}
	c := ep.Clone()
	c.Health = convoy.EndpointHealth{}
	s.endpoints[ep.ID] = &endpointRec{ep: c, heapIdx: -1}
	ar.endpoints.insert(ep.ID)
	return nil
}

// GetEndpoint implements [convoy.Store].
func (s *Store) GetEndpoint(ctx context.Context, id string) (*convoy.Endpoint, error) {
	if err := convoy.ValidateID("endpoint ID", id); err != nil {
		return nil, err
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	er, ok := s.endpoints[id]
	if !ok {
		return nil, notFound("endpoint", id)
	}
	return er.ep.Clone(), nil
}

// UpdateEndpoint implements [convoy.Store].
func (s *Store) UpdateEndpoint(ctx context.Context, ep *convoy.Endpoint) error {
	if ep == nil {
		return (*convoy.Endpoint)(nil).Validate()
	}
	c := ep.Clone()
	keepStatus := c.Status == ""
	if keepStatus {
		c.Status = convoy.EndpointActive // validated below with the stored one
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	er, ok := s.endpoints[ep.ID]
	if !ok {
		return notFound("endpoint", ep.ID)
	}
	c.AppID = er.ep.AppID
	c.Health = er.ep.Health
	if keepStatus {
		c.Status = er.ep.Status
	}
	er.ep = c
	return nil
}

// DeleteEndpoint implements [convoy.Store].
func (s *Store) DeleteEndpoint(ctx context.Context, id string) error {
	if err := convoy.ValidateID("endpoint ID", id); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	er, ok := s.endpoints[id]
	if !ok {
		return notFound("endpoint", id)
	}
	for _, dID := range er.deliveries.ids {
		dr := s.deliveries[dID]
		if ev, ok := s.events[dr.d.EventID]; ok {
			ev.deliveries.remove(dID)
		}
	}
	s.removeEndpoint(er)
	s.apps[er.ep.AppID].endpoints.remove(id)
	return nil
}

// removeEndpoint drops er and its deliveries from the store-wide maps and
// the due index. The caller fixes the app's and events' indexes.
func (s *Store) removeEndpoint(er *endpointRec) {
	for _, dID := range er.deliveries.ids {
		s.uncount(s.deliveries[dID])
		delete(s.deliveries, dID)
	}
	er.queue = nil
	s.fixEndpoint(er)
	delete(s.endpoints, er.ep.ID)
}

// removeEvent drops an event with its deliveries and their attempts, and
// frees its idempotency key. The deliveries' IDs are added to
// gone[endpoint] for the caller to remove from the endpoints' indexes in
// one pass each.
func (s *Store) removeEvent(ar *appRec, evr *eventRec, gone map[*endpointRec]map[string]struct{}) {
	for _, dID := range evr.deliveries.ids {
		dr := s.deliveries[dID]
		s.unschedule(dr)
		set := gone[dr.ep]
		if set == nil {
			set = make(map[string]struct{})
			gone[dr.ep] = set
		}
		set[dID] = struct{}{}
		s.uncount(dr)
		delete(s.deliveries, dID)
	}
	id := evr.ev.ID
	if k := evr.ev.IdempotencyKey; k != "" && ar.idem[k] == id {
		delete(ar.idem, k)
	}
	delete(ar.events, id)
	delete(s.events, id)
}

// ListEndpoints implements [convoy.Store].
func (s *Store) ListEndpoints(ctx context.Context, appID string, page convoy.Page) ([]*convoy.Endpoint, string, error) {
	if err := convoy.ValidateID("app ID", appID); err != nil {
		return nil, "", err
	}
	if err := s.lock(ctx); err != nil {
		return nil, "", err
	}
	defer s.mu.Unlock()
	ar, ok := s.apps[appID]
	if !ok {
		return nil, "", notFound("app", appID)
	}
	ids, next := ar.endpoints.page(page, nil)
	out := make([]*convoy.Endpoint, len(ids))
	for i, id := range ids {
		out[i] = s.endpoints[id].ep.Clone()
	}
	return out, next, nil
}

// InsertEvent implements [convoy.Store]. Besides the checks of the
// contract, every delivery must have the event's AppID, go to an endpoint
// of that app, and not be Processing (only Claim hands out leases).
func (s *Store) InsertEvent(ctx context.Context, ev *convoy.Event, deliveries []*convoy.Delivery) (*convoy.Event, bool, error) {
	if err := ev.Validate(0); err != nil {
		return nil, false, err
	}
	for _, d := range deliveries {
		if err := d.Validate(); err != nil {
			return nil, false, err
		}
		if d.EventID != ev.ID {
			return nil, false, fmt.Errorf("%w: delivery %s is for event %s, not %s", convoy.ErrInvalid, d.ID, d.EventID, ev.ID)
		}
		if d.AppID != ev.AppID {
			return nil, false, fmt.Errorf("%w: delivery %s is for app %s, not %s", convoy.ErrInvalid, d.ID, d.AppID, ev.AppID)
		}
		if d.Status == convoy.DeliveryProcessing {
			return nil, false, fmt.Errorf("%w: delivery %s inserted as Processing", convoy.ErrInvalidStatus, d.ID)
		}
	}
	if err := s.lock(ctx); err != nil {
		return nil, false, err
	}
	defer s.mu.Unlock()
	ar, ok := s.apps[ev.AppID]
	if !ok {
		return nil, false, notFound("app", ev.AppID)
	}
	if k := ev.IdempotencyKey; k != "" {
		if first, ok := ar.idem[k]; ok {
			return s.events[first].ev.Clone(), false, nil
		}
	}
	if _, ok := s.events[ev.ID]; ok {
		return nil, false, duplicate("event", ev.ID)
	}
	eps := make([]*endpointRec, len(deliveries))
	seen := make(map[string]struct{}, len(deliveries))
	for i, d := range deliveries {
		er, ok := s.endpoints[d.EndpointID]
		if !ok {
			return nil, false, notFound("endpoint", d.EndpointID)
		}
		if er.ep.AppID != ev.AppID {
			return nil, false, fmt.Errorf("%w: delivery %s goes to endpoint %s of another app", convoy.ErrInvalid, d.ID, d.EndpointID)
		}
		if _, ok := s.deliveries[d.ID]; ok {
			return nil, false, duplicate("delivery", d.ID)
		}
		if _, ok := seen[d.ID]; ok {
			return nil, false, duplicate("delivery", d.ID)
		}
		seen[d.ID] = struct{}{}
		eps[i] = er
	}

	evr := &eventRec{ev: ev.Clone()}
	s.events[ev.ID] = evr
	ar.events[ev.ID] = struct{}{}
	if k := ev.IdempotencyKey; k != "" {
		ar.idem[k] = ev.ID
	}
	for i, d := range deliveries {
		dr := &deliveryRec{d: d.Clone(), ep: eps[i], heapIdx: -1}
		s.deliveries[d.ID] = dr
		evr.deliveries.insert(d.ID)
		eps[i].deliveries.insert(d.ID)
		s.schedule(dr)
	}
	return ev.Clone(), true, nil
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

// ListDeliveries implements [convoy.Store]. A query naming an event or
// endpoint that does not exist gives an empty list. It walks the event's
// or the endpoint's index; with a Statuses filter, deliveries in other
// states are stepped over.
func (s *Store) ListDeliveries(ctx context.Context, q convoy.DeliveryQuery, page convoy.Page) ([]*convoy.Delivery, string, error) {
	if q.EventID == "" && q.EndpointID == "" {
		return nil, "", fmt.Errorf("%w: delivery query needs an event or endpoint ID", convoy.ErrInvalid)
	}
	if q.EventID != "" {
		if err := convoy.ValidateID("event ID", q.EventID); err != nil {
			return nil, "", err
		}
	}
	if q.EndpointID != "" {
		if err := convoy.ValidateID("endpoint ID", q.EndpointID); err != nil {
			return nil, "", err
		}
	}
	for _, st := range q.Statuses {
		if !st.Valid() {
			return nil, "", fmt.Errorf("%w: %q", convoy.ErrInvalidStatus, st)
		}
	}
	if err := s.lock(ctx); err != nil {
		return nil, "", err
	}
	defer s.mu.Unlock()
	var idx *idIndex
	if q.EventID != "" {
		evr, ok := s.events[q.EventID]
		if !ok {
			return nil, "", nil
		}
		idx = &evr.deliveries
	} else {
		er, ok := s.endpoints[q.EndpointID]
		if !ok {
			return nil, "", nil
		}
		idx = &er.deliveries
	}
	var keep func(string) bool
	if (q.EventID != "" && q.EndpointID != "") || len(q.Statuses) > 0 {
		keep = func(id string) bool {
			d := s.deliveries[id].d
			if q.EndpointID != "" && d.EndpointID != q.EndpointID {
				return false
			}
			return len(q.Statuses) == 0 || slices.Contains(q.Statuses, d.Status)
		}
	}
	ids, next := idx.page(page, keep)
	out := make([]*convoy.Delivery, len(ids))
	for i, id := range ids {
		out[i] = s.deliveries[id].d.Clone()
	}
	return out, next, nil
}

// ListAttempts implements [convoy.Store]. Attempts are ordered by Number.
func (s *Store) ListAttempts(ctx context.Context, deliveryID string, page convoy.Page) ([]*convoy.Attempt, string, error) {
	if err := convoy.ValidateID("delivery ID", deliveryID); err != nil {
		return nil, "", err
	}
	var (
		after    bool
		afterNum int
		afterID  string
	)
	if page.Cursor != "" {
		n, id, ok := strings.Cut(page.Cursor, "/")
		num, err := strconv.Atoi(n)
		if !ok || err != nil {
			return nil, "", fmt.Errorf("%w: bad attempts cursor", convoy.ErrInvalid)
		}
		after, afterNum, afterID = true, num, id
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
	if after {
		rest = rest[sort.Search(len(rest), func(i int) bool {
			return compareAttempt(rest[i], afterNum, afterID) > 0
		}):]
	}
	size := page.Size()
	next := ""
	if len(rest) > size {
		rest = rest[:size]
		last := rest[size-1]
		next = strconv.Itoa(last.Number) + "/" + last.ID
	}
	out := make([]*convoy.Attempt, len(rest))
	for i, a := range rest {
		out[i] = a.Clone()
	}
	return out, next, nil
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

// Close implements [convoy.Store]. It drops everything stored; a second
// Close returns ErrClosed like every other call after the first.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return convoy.ErrClosed
	}
	s.closed = true
	s.apps, s.endpoints, s.events, s.deliveries = nil, nil, nil, nil
	s.appIndex = idIndex{}
	s.due = nil
	return nil
}
