// Package memory provides an in-memory [convoy.Store]: maps, sorted
// indexes and a min-heap of due deliveries, all guarded by one mutex.
//
// Nothing it holds survives the process. Use it in tests, and in processes
// that accept losing the queue, with every event not yet delivered, on
// exit. Use store/bolt when deliveries must survive a restart.
package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/convoykit/convoy"
)

// Store is an in-memory [convoy.Store]. The zero value is not usable; call
// [New]. A Store is safe for concurrent use: every method holds one mutex
// for its whole duration, so each call is atomic. Values passed in are
// copied and values returned are copies.
//
// The functions given to UpdateApp and UpdateEndpoint, and
// Transition.EndpointStatus, run with that mutex held: they must not call
// the Store.
type Store struct {
	mu     sync.Mutex
	closed bool

	apps       map[string]*appRec
	appIndex   idIndex
	endpoints  map[string]*endpointRec
	events     map[string]*eventRec
	deliveries map[string]*deliveryRec
	// eventIndex orders every event by (CreatedAt, ID); eventsByType does
	// the same for each event type.
	eventIndex   *sortedSet[eventKey]
	eventsByType map[string]*sortedSet[eventKey]
	// due holds the endpoints that have claimable deliveries (see heap.go).
	due endpointHeap
	// counts holds deliveries by status and endpointCounts endpoints by
	// status, kept as they change (see stats.go).
	counts         map[convoy.DeliveryStatus]int
	endpointCounts map[convoy.EndpointStatus]int
}

var _ convoy.Store = (*Store)(nil)

type appRec struct {
	app       *convoy.App
	endpoints idIndex
	// events orders the app's events by (CreatedAt, ID); eventsByType
	// does the same for each event type.
	events       *sortedSet[eventKey]
	eventsByType map[string]*sortedSet[eventKey]
	// deliveries holds the IDs of the app's deliveries by status.
	deliveries statusSets
	// idem maps an idempotency key to the ID of the event that used it.
	idem map[string]string
}

type endpointRec struct {
	ep  *convoy.Endpoint
	app *appRec
	// deliveries holds the IDs of the endpoint's deliveries by status.
	deliveries statusSets
	// queue holds the endpoint's claimable deliveries by due time; for an
	// ordered endpoint, its head alone (see gate).
	queue deliveryHeap
	// heapIdx is the endpoint's position in Store.due, -1 when absent.
	heapIdx int
}

type eventRec struct {
	ev         *convoy.Event
	key        eventKey
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
	// counted is the status this delivery is counted and indexed under
	// ("" before it is first counted).
	counted convoy.DeliveryStatus
}

// New returns an empty Store.
func New() *Store {
	return &Store{
		apps:           make(map[string]*appRec),
		endpoints:      make(map[string]*endpointRec),
		events:         make(map[string]*eventRec),
		deliveries:     make(map[string]*deliveryRec),
		eventIndex:     newEventSet(),
		eventsByType:   make(map[string]*sortedSet[eventKey]),
		counts:         make(map[convoy.DeliveryStatus]int),
		endpointCounts: make(map[convoy.EndpointStatus]int),
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
		app:          app.Clone(),
		events:       newEventSet(),
		eventsByType: make(map[string]*sortedSet[eventKey]),
		idem:         make(map[string]string),
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

// UpdateApp implements [convoy.Store]. fn runs once, with the store's
// mutex held.
func (s *Store) UpdateApp(ctx context.Context, id string, fn func(*convoy.App) error) (*convoy.App, error) {
	if err := convoy.ValidateID("app ID", id); err != nil {
		return nil, err
	}
	if fn == nil {
		return nil, fmt.Errorf("%w: UpdateApp needs a function", convoy.ErrInvalid)
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	ar, ok := s.apps[id]
	if !ok {
		return nil, notFound("app", id)
	}
	c := ar.app.Clone()
	if err := fn(c); err != nil {
		return nil, err
	}
	c.ID, c.CreatedAt = ar.app.ID, ar.app.CreatedAt
	if err := c.Validate(); err != nil {
		return nil, err
	}
	ar.app = c.Clone()
	return c, nil
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
		s.removeEndpoint(s.endpoints[epID], false)
	}
	// The app's own event indexes go with it; the store-wide ones lose
	// its events.
	ar.events.ascend(func(k eventKey) bool {
		evr := s.events[k.id]
		s.eventIndex.delete(k)
		untype(s.eventsByType, evr)
		delete(s.events, k.id)
		return true
	})
	delete(s.apps, id)
	s.appIndex.remove(id)
	return nil
}

// ListApps implements [convoy.Store].
func (s *Store) ListApps(ctx context.Context, page convoy.Page) ([]*convoy.App, string, error) {
	if err := idCursor(page); err != nil {
		return nil, "", err
	}
	if err := s.lock(ctx); err != nil {
		return nil, "", err
	}
	defer s.mu.Unlock()
	ids, next := s.appIndex.page(page)
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
	s.endpoints[ep.ID] = &endpointRec{ep: c, app: ar, heapIdx: -1}
	ar.endpoints.insert(ep.ID)
	s.endpointCounts[c.Status]++
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

// UpdateEndpoint implements [convoy.Store]. fn runs once, with the store's
// mutex held.
func (s *Store) UpdateEndpoint(ctx context.Context, id string, fn func(*convoy.Endpoint) error) (*convoy.Endpoint, error) {
	if err := convoy.ValidateID("endpoint ID", id); err != nil {
		return nil, err
	}
	if fn == nil {
		return nil, fmt.Errorf("%w: UpdateEndpoint needs a function", convoy.ErrInvalid)
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	er, ok := s.endpoints[id]
	if !ok {
		return nil, notFound("endpoint", id)
	}
	cur := er.ep
	c := cur.Clone()
	if err := fn(c); err != nil {
		return nil, err
	}
	c.ID, c.AppID, c.CreatedAt, c.Health = cur.ID, cur.AppID, cur.CreatedAt, cur.Health
	if err := c.Validate(); err != nil {
		return nil, err
	}
	s.setEndpointStatus(er, c.Status)
	was := cur.Ordered
	er.ep = c.Clone()
	switch {
	case c.Ordered && !was:
		s.gate(er)
	case was && !c.Ordered:
		s.ungate(er)
	}
	return c, nil
}

// setEndpointStatus moves er's tally in s.endpointCounts to st. The
// caller then stores st in er.ep.
func (s *Store) setEndpointStatus(er *endpointRec, st convoy.EndpointStatus) {
	if old := er.ep.Status; old != st {
		s.uncountEndpoint(old)
		s.endpointCounts[st]++
	}
}

func (s *Store) uncountEndpoint(st convoy.EndpointStatus) {
	if s.endpointCounts[st]--; s.endpointCounts[st] <= 0 {
		delete(s.endpointCounts, st)
	}
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
	s.removeEndpoint(er, true)
	er.app.endpoints.remove(id)
	return nil
}

// removeEndpoint drops er and its deliveries from the store's maps and
// indexes; with fixEvents it also drops the deliveries from their events'
// indexes (DeleteApp, which drops the events, need not). The caller
// removes er from its app's endpoint index.
func (s *Store) removeEndpoint(er *endpointRec, fixEvents bool) {
	ids := er.deliveries.all()
	gone := make(map[*eventRec]map[string]struct{})
	for _, dID := range ids {
		dr := s.deliveries[dID]
		if fixEvents {
			if evr, ok := s.events[dr.d.EventID]; ok {
				set := gone[evr]
				if set == nil {
					set = make(map[string]struct{})
					gone[evr] = set
				}
				set[dID] = struct{}{}
			}
		}
		s.uncount(dr)
		delete(s.deliveries, dID)
	}
	for evr, set := range gone {
		evr.deliveries.removeSet(set)
	}
	er.queue = nil
	s.fixEndpoint(er)
	s.uncountEndpoint(er.ep.Status)
	delete(s.endpoints, er.ep.ID)
}

// ListEndpoints implements [convoy.Store].
func (s *Store) ListEndpoints(ctx context.Context, appID string, page convoy.Page) ([]*convoy.Endpoint, string, error) {
	if err := convoy.ValidateID("app ID", appID); err != nil {
		return nil, "", err
	}
	if err := idCursor(page); err != nil {
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
	ids, next := ar.endpoints.page(page)
	out := make([]*convoy.Endpoint, len(ids))
	for i, id := range ids {
		out[i] = s.endpoints[id].ep.Clone()
	}
	return out, next, nil
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
	s.eventIndex, s.eventsByType = nil, nil
	s.appIndex = idIndex{}
	s.due = nil
	return nil
}

// idCursor checks the cursor of a list ordered by ID: an ID, or empty.
func idCursor(page convoy.Page) error {
	if page.Cursor == "" {
		return nil
	}
	return convoy.ValidateID("Page.Cursor", page.Cursor)
}
