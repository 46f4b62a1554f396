package convoy

import (
	"context"
	"math"
	"time"
)

// Store persists apps, endpoints, events, deliveries and attempts, and is
// the delivery queue. The Dispatcher reaches storage only through it;
// store/memory and store/bolt implement it, and store/storetest holds the
// conformance suite every implementation must pass.
//
// The contract is written so that a SQL store shared by several processes
// (claiming with FOR UPDATE SKIP LOCKED) is natural:
//
//   - Every method is safe for concurrent use.
//   - Values passed in are not retained and values returned are copies:
//     mutating either never changes what is stored.
//   - Errors wrap the package sentinels: ErrNotFound, ErrDuplicate,
//     ErrLeaseLost, ErrInvalid (and its children), ErrClosed.
//   - A failed call changes nothing.
//   - Time comes from the caller (Now fields), never from the store's clock,
//     so tests drive time and processes agree on what is due.
//   - Lists are paginated with an opaque cursor: pass Page.Cursor = the
//     next value returned by the previous call, with the same query; an
//     empty next means the end, and a malformed cursor is ErrInvalid. A
//     query naming an app, endpoint or event that does not exist lists
//     nothing (ListAttempts excepted: ErrNotFound). Configuration (apps, endpoints) lists in ID order, which is
//     creation order; what happened (events, deliveries, attempts) lists
//     newest first, so the first page is the recent past.
//   - A call that finds nothing to change writes nothing: an idle
//     dispatcher polling Claim and NextDue must not cost a commit.
type Store interface {
	// CreateApp stores a new app. ErrDuplicate if the ID exists.
	CreateApp(ctx context.Context, app *App) error
	// GetApp returns the app with the ID, or ErrNotFound.
	GetApp(ctx context.Context, id string) (*App, error)
	// UpdateApp changes a stored app in one transaction: it calls fn with a
	// copy of the app as stored, validates what fn leaves (App.Validate)
	// and stores it, keeping ID and CreatedAt as stored. It returns the app
	// as stored. An error from fn is returned as is, with nothing changed.
	// fn may run more than once (a store may retry a conflicting
	// transaction), so it must only modify its argument, and it runs
	// inside the store's transaction, so it must be quick. fn is not
	// called for a missing app: ErrNotFound.
	UpdateApp(ctx context.Context, id string, fn func(*App) error) (*App, error)
	// DeleteApp removes an app with its endpoints, events, deliveries and
	// attempts. ErrNotFound if missing.
	DeleteApp(ctx context.Context, id string) error
	// ListApps lists apps in ID order.
	ListApps(ctx context.Context, page Page) ([]*App, string, error)

	// CreateEndpoint stores a new endpoint. ErrNotFound if its app is
	// missing, ErrDuplicate if the ID exists.
	CreateEndpoint(ctx context.Context, ep *Endpoint) error
	// GetEndpoint returns the endpoint with the ID, or ErrNotFound.
	GetEndpoint(ctx context.Context, id string) (*Endpoint, error)
	// UpdateEndpoint changes a stored endpoint in one transaction, as
	// UpdateApp does: fn gets a copy of the endpoint as stored (Status and
	// Health included) and what it leaves is validated and stored, keeping
	// ID, AppID, CreatedAt and Health as stored. Because fn sees the status
	// of the same transaction, a settings change that leaves Status alone
	// cannot undo a status change a worker made meanwhile. ErrNotFound if
	// the endpoint is missing.
	UpdateEndpoint(ctx context.Context, id string, fn func(*Endpoint) error) (*Endpoint, error)
	// DeleteEndpoint removes an endpoint with its deliveries and their
	// attempts. ErrNotFound if missing.
	DeleteEndpoint(ctx context.Context, id string) error
	// ListEndpoints lists an app's endpoints in ID order. ErrNotFound if the
	// app is missing.
	ListEndpoints(ctx context.Context, appID string, page Page) ([]*Endpoint, string, error)

	// InsertEvent stores an event and its deliveries in one transaction.
	// A delivery whose endpoint no longer exists (removed after the caller
	// listed the app's endpoints) is skipped, not an error: the result
	// holds the deliveries stored. When the event has an IdempotencyKey
	// already used by an event of the same app, it stores nothing and
	// returns that first event and its deliveries with Inserted false.
	// ErrNotFound if the app is missing; ErrDuplicate if an ID exists;
	// ErrInvalid if a delivery does not belong to the event and its app.
	InsertEvent(ctx context.Context, ev *Event, deliveries []*Delivery) (InsertResult, error)
	// GetEvent returns the event with the ID, or ErrNotFound.
	GetEvent(ctx context.Context, id string) (*Event, error)
	// ListEvents lists events matching q, newest first: by CreatedAt
	// descending, then ID descending. A page costs O(log n + k) for the
	// k events examined, through indexes on (CreatedAt), (AppID,
	// CreatedAt), (Type, CreatedAt) and (AppID, Type, CreatedAt), never a
	// scan of events the query excludes.
	ListEvents(ctx context.Context, q EventQuery, page Page) ([]*Event, string, error)
	// GetDelivery returns the delivery with the ID, or ErrNotFound.
	GetDelivery(ctx context.Context, id string) (*Delivery, error)
	// ListDeliveries lists deliveries matching q, newest first (ID
	// descending). With Statuses set, a page costs O(log n + k) through an
	// index on the status, not a scan of the other deliveries.
	ListDeliveries(ctx context.Context, q DeliveryQuery, page Page) ([]*Delivery, string, error)
	// ListAttempts lists a delivery's attempts, newest first (Number
	// descending), so the last attempt is one call with Page.Limit 1.
	// ErrNotFound if the delivery is missing.
	ListAttempts(ctx context.Context, deliveryID string, page Page) ([]*Attempt, string, error)

	// Claim leases up to req.Limit due deliveries, earliest due first: those
	// Scheduled or Retry with NextAttemptAt ≤ req.Now, and those Processing
	// whose lease expired by req.Now. Each is returned Processing, with
	// LeaseOwner = req.Owner, a fresh LeaseID, LeaseExpiresAt = req.Now +
	// req.Lease and Claims incremented. No delivery is handed out twice
	// while its lease is valid, whatever number of callers claim at once.
	// Per-endpoint capacity is honoured (see ClaimRequest). Claim costs
	// O(log n + k) for n stored deliveries and k examined, never a scan of
	// the backlog that is not due. A Claim that finds nothing due writes
	// nothing (a store may keep bookkeeping when it passes over due work
	// of endpoints at their cap, as store/bolt parks it).
	//
	// For an endpoint with Ordered set, Claim hands out only the
	// endpoint's head, the earliest of its pending deliveries (pending:
	// Scheduled, Retry or Processing; earliest: lowest ID), only when the
	// head is due, and only while no delivery of the endpoint is
	// Processing under a valid lease (one leased before Ordered was
	// turned on included). So the endpoint has one delivery in flight at
	// most, and a head waiting for its retry holds back every later
	// delivery, due or not (head-of-line blocking); a head whose lease
	// expired is handed out again before any other. A delivery that ends
	// in Success, Failure or Discarded is no longer pending: the next one
	// becomes the head. Delivery IDs are time-ordered (NewID), so ID
	// order is Send order: strictly so for Sends of one process that
	// follow each other, by the processes' clocks across processes (see
	// "Ordered delivery" in the package documentation). A delivery that
	// becomes pending with a lower ID than the head (a re-sent Failure, or
	// a Send whose commit came late) becomes the head in its turn, once
	// the delivery in flight is over. Deliveries held back behind a head
	// are not due: NextDue and Stats leave them out (a store may count
	// them until a Claim has passed over them once, as store/postgres
	// does), and the cost bound above holds however long the queue behind
	// a head is. Turning Ordered off makes them due again by their own
	// NextAttemptAt; turning it on holds back all but the head from the
	// next Claim on.
	Claim(ctx context.Context, req ClaimRequest) ([]*Delivery, error)
	// Record ends a claim: it stores t.Attempt (if any), moves the
	// delivery to t.Status, updates the endpoint's health and applies
	// t.EndpointStatus, all in one transaction. ErrLeaseLost, with nothing
	// changed, if the delivery is not Processing under t.LeaseID.
	Record(ctx context.Context, t Transition) (RecordResult, error)
	// Release gives a claimed delivery back without an attempt: it returns
	// to Scheduled (or Retry if it has attempts) with its NextAttemptAt
	// unchanged and Claims decremented. ErrLeaseLost if the lease is not
	// held.
	Release(ctx context.Context, deliveryID, leaseID string) error
	// NextDue returns the earliest time a delivery becomes claimable (its
	// NextAttemptAt, or its lease expiry when Processing; for an ordered
	// endpoint, when its head does, as Claim says); ok is false when
	// nothing is pending. It may be early, never late: a Claim at that
	// time may find nothing (see Claim on ordered endpoints).
	NextDue(ctx context.Context) (t time.Time, ok bool, err error)

	// Requeue moves matching Failure or Discarded deliveries back to
	// Scheduled, due at r.Now, with RoundAttempts and Claims reset, and
	// returns how many moved. ErrNotFound if r names a missing delivery or
	// endpoint.
	Requeue(ctx context.Context, r RequeueRequest) (int, error)
	// DeleteBefore removes up to limit events created before cutoff, oldest
	// first, with their deliveries and attempts, except events that still
	// have a delivery Scheduled, Processing or Retry (those are skipped and
	// do not count). It returns how many events it removed; callers repeat
	// until that is below limit. One call is one short transaction, so
	// other writers wait at most for one batch; limit ≤ 0 means
	// DefaultDeleteBatch.
	DeleteBefore(ctx context.Context, cutoff time.Time, limit int) (int, error)

	// Stats returns the store's counts at time now: deliveries and
	// endpoints by status, due work (up to MaxDueCount) and the oldest due
	// time. It must not scan every record: stores keep the counts in the
	// transactions that change them.
	Stats(ctx context.Context, now time.Time) (StoreStats, error)

	// Close releases the store's resources. Calls after Close return
	// ErrClosed.
	Close() error
}

// Page selects one page of a list.
type Page struct {
	// Cursor is the next value of the previous page; empty for the first.
	Cursor string
	// Limit is the page size; zero or less means DefaultPageSize, and it is capped
	// at MaxPageSize.
	Limit int
}

// Page sizes.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Size returns the effective page size of p.
func (p Page) Size() int {
	switch {
	case p.Limit <= 0:
		return DefaultPageSize
	case p.Limit > MaxPageSize:
		return MaxPageSize
	}
	return p.Limit
}

// DefaultDeleteBatch is the batch size of Store.DeleteBefore when the
// caller gives none.
const DefaultDeleteBatch = 500

// InsertResult is what Store.InsertEvent stored, or found.
type InsertResult struct {
	// Event is the event as stored: the new one, or the first event sent
	// with the same idempotency key. When Inserted, it may be the ev passed
	// to InsertEvent itself, which the caller owns already: a store need
	// not copy it back.
	Event *Event
	// Deliveries are the event's deliveries as stored.
	Deliveries []*Delivery
	// Inserted is false when the idempotency key matched an earlier event
	// and nothing was stored.
	Inserted bool
}

// EventQuery selects events. The zero value selects every event.
type EventQuery struct {
	// AppID, when set, keeps one app's events.
	AppID string
	// Type, when set, keeps events of this type.
	Type string
	// CreatedFrom and CreatedTo, when not zero, bound the events' creation
	// time: From ≤ CreatedAt < To.
	CreatedFrom time.Time
	CreatedTo   time.Time
}

// DeliveryQuery selects deliveries. At least one of EventID, EndpointID and
// AppID is set; when several are, a delivery must match all of them.
type DeliveryQuery struct {
	// EventID selects one event's deliveries.
	EventID string
	// EndpointID selects one endpoint's deliveries.
	EndpointID string
	// AppID selects an app's deliveries, across its endpoints.
	AppID string
	// Statuses, when not empty, keeps only deliveries in these states.
	Statuses []DeliveryStatus
}

// ClaimRequest asks Store.Claim for due work.
type ClaimRequest struct {
	// Now is the caller's current time.
	Now time.Time
	// Limit is the most deliveries to claim (the caller's free workers).
	Limit int
	// Owner names the claiming dispatcher; it is stored as LeaseOwner.
	Owner string
	// Lease is how long the claim lasts; it must outlive an attempt.
	Lease time.Duration
	// PerEndpoint, when positive, caps deliveries of one endpoint in flight:
	// the store hands out at most PerEndpoint - InFlight[endpointID] for
	// each endpoint and skips the rest, leaving them due. A store shared by
	// several processes may count instead every delivery of the endpoint
	// Processing under a valid lease, whoever holds it, so the cap holds
	// across processes (store/postgres does; see its documentation).
	PerEndpoint int
	// InFlight is how many deliveries of each endpoint the caller already
	// has in flight.
	InFlight map[string]int
	// Caps, when set, overrides PerEndpoint for the endpoints it lists:
	// at most Caps[id] - InFlight[id] deliveries of endpoint id are handed
	// out (none when that is zero or less), whether or not PerEndpoint is
	// set. The Dispatcher lists the endpoints whose flow control (rate
	// limit, adaptive concurrency, circuit breaker) allows fewer than
	// PerEndpoint at the moment. Stores read it through Cap.
	Caps map[string]int
}

// Cap returns the most deliveries of an endpoint that may be in flight
// under r, counting InFlight (Caps[endpointID], else PerEndpoint), and
// whether there is such a bound at all.
func (r ClaimRequest) Cap(endpointID string) (n int, capped bool) {
	if c, ok := r.Caps[endpointID]; ok {
		return c, true
	}
	if r.PerEndpoint > 0 {
		return r.PerEndpoint, true
	}
	return 0, false
}

// Grant leases d under r, as Claim and InsertEventClaim must: Processing,
// LeaseOwner r.Owner, a fresh LeaseID, LeaseExpiresAt r.Now + r.Lease,
// one claim more, UpdatedAt r.Now. Store implementations call it;
// applications need not.
func (r ClaimRequest) Grant(d *Delivery) {
	d.Status = DeliveryProcessing
	d.LeaseOwner = r.Owner
	d.LeaseID = NewID()
	d.LeaseExpiresAt = r.Now.Add(r.Lease)
	d.Claims++
	d.UpdatedAt = r.Now
}

// Capped reports whether r bounds any endpoint.
func (r ClaimRequest) Capped() bool { return r.PerEndpoint > 0 || len(r.Caps) > 0 }

// Room returns how many more deliveries of an endpoint r lets a store
// hand out, given taken already handed out by this call: Cap - InFlight -
// taken, or math.MaxInt when the endpoint has no bound.
func (r ClaimRequest) Room(endpointID string, taken int) int {
	c, ok := r.Cap(endpointID)
	if !ok {
		return math.MaxInt
	}
	return c - r.InFlight[endpointID] - taken
}

// Transition ends a claim with exactly one store call (see Store.Record).
type Transition struct {
	// DeliveryID names the claimed delivery.
	DeliveryID string
	// LeaseID is the lease the caller holds, from the claimed Delivery.
	LeaseID string
	// Now is the caller's current time.
	Now time.Time
	// Attempt is the attempt made, or nil when none was (Discarded, or a
	// delivery abandoned after too many claims).
	Attempt *Attempt
	// Status is the delivery's next state: Success, Retry, Failure or
	// Discarded.
	Status DeliveryStatus
	// NextAttemptAt is when a Retry is due.
	NextAttemptAt time.Time
	// EndpointStatus, when set, decides the endpoint's status in the same
	// transaction: it is called with the endpoint as stored, its Health
	// already updated for this outcome, and returns the status to store
	// (return ep.Status for no change). It must be quick and pure.
	EndpointStatus func(ep Endpoint) EndpointStatus
}

// RecordResult tells what Record did to the endpoint.
type RecordResult struct {
	// EndpointBefore and EndpointAfter are the endpoint's status before and
	// after the transaction; they differ when it changed.
	EndpointBefore EndpointStatus
	EndpointAfter  EndpointStatus
}

// UpdateHealth applies the outcome of t to an endpoint's health, as every
// Store must inside Record: a successful attempt clears the failure
// counters, a failed one counts, and a delivery ending in Failure counts as
// a failed delivery. Store implementations call it; applications need not.
func (t *Transition) UpdateHealth(h *EndpointHealth) {
	if a := t.Attempt; a != nil {
		h.LastAttemptAt = a.StartedAt
		h.LastStatusCode = a.StatusCode
		if t.Status == DeliverySuccess {
			h.LastError = ""
			h.LastSuccessAt = a.StartedAt
			h.ConsecutiveFailures = 0
			h.ConsecutiveFailedDeliveries = 0
			h.FailingSince = time.Time{}
		} else {
			h.LastError = a.Error
			h.ConsecutiveFailures++
			if h.FailingSince.IsZero() {
				h.FailingSince = a.StartedAt
			}
		}
	}
	if t.Status == DeliveryFailure {
		h.ConsecutiveFailedDeliveries++
	}
}

// RequeueRequest selects deliveries to re-send.
type RequeueRequest struct {
	// Now is when the re-sent deliveries become due.
	Now time.Time
	// DeliveryID re-sends one delivery (which must be Failure or
	// Discarded). Otherwise EndpointID selects an endpoint's deliveries.
	DeliveryID string
	EndpointID string
	// Statuses to re-send; empty means Discarded only. Only Failure and
	// Discarded are allowed.
	Statuses []DeliveryStatus
	// CreatedFrom and CreatedTo, when not zero, bound the deliveries'
	// creation time: From ≤ CreatedAt < To.
	CreatedFrom time.Time
	CreatedTo   time.Time
}

// TxInserter is a Store capability: inserting an event inside a
// transaction the caller owns, of type Tx (pgx.Tx for store/postgres,
// *bbolt.Tx for store/bolt), so that the event and its deliveries commit or
// roll back with the caller's own writes. [SendTx] uses it; the root
// package names no driver type.
type TxInserter[Tx any] interface {
	// InsertEventTx is InsertEvent inside tx: nothing it writes is visible
	// to Claim before tx commits, and a rollback leaves no trace. The
	// store wakes dispatchers (its own and other processes') when tx
	// commits.
	InsertEventTx(ctx context.Context, tx Tx, ev *Event, deliveries []*Delivery) (InsertResult, error)
}

// ClaimingInserter is a Store capability: InsertEvent that also claims
// the new deliveries for the caller, in the same transaction. When a
// Dispatcher has idle workers, Send uses it so that a fresh event goes
// straight to a worker: no Claim, one store transaction fewer per
// delivery, and no wait for the scheduler. store/memory, store/bolt and
// store/postgres implement it; store/storetest checks every store that
// does.
type ClaimingInserter interface {
	// InsertEventClaim is InsertEvent, and then leases up to req.Limit of
	// the Scheduled deliveries it stored, in the order given, exactly as
	// Claim(req) would lease them (Processing, LeaseOwner req.Owner, a
	// fresh LeaseID, LeaseExpiresAt req.Now + req.Lease, Claims 1, and
	// req.PerEndpoint honoured with req.InFlight), in the same
	// transaction. The result holds the leased deliveries as leased and
	// the others as stored.
	//
	// It leases nothing while another delivery is due at req.Now
	// (Scheduled or Retry with NextAttemptAt ≤ req.Now, or Processing
	// under an expired lease, whether or not its endpoint is at its cap),
	// so a new event never overtakes work that waits, and nothing for a
	// repeated idempotency key. Deliveries held back behind an ordered
	// endpoint's head are not due in this sense (a store may count them,
	// as Claim allows). It never leases a delivery of an ordered endpoint
	// (Endpoint.Ordered) that has another delivery pending, earlier or
	// later, so only a Send to an idle ordered endpoint goes straight to a
	// worker, and what Claim promises for ordered endpoints holds for its
	// leases too. req.Lease ≤ 0 is ErrInvalid; req.Limit ≤ 0 leases
	// nothing.
	InsertEventClaim(ctx context.Context, ev *Event, deliveries []*Delivery, req ClaimRequest) (InsertResult, error)
}

// EventClaimer is a Store capability: Claim that also returns the event
// of each delivery it leased, so that the worker need not read it back
// with GetEvent, one store call per delivery fewer. The Dispatcher's
// scheduler uses it when the store has it. store/memory, store/bolt and
// store/postgres implement it; store/storetest checks every store that
// does.
type EventClaimer interface {
	// ClaimEvents is Claim(req), returning besides the deliveries it
	// leased events[i], the event of ds[i] (deliveries of one event may
	// share one *Event, which is the caller's own, as GetEvent's is), or
	// nil where the store did not read it: the event was deleted with its
	// endpoint or app meanwhile, or reading it failed once the claim had
	// committed. The caller reads a nil event with GetEvent. It fails as
	// Claim does.
	ClaimEvents(ctx context.Context, req ClaimRequest) (ds []*Delivery, events []*Event, err error)
}

// Waker is a Store capability for stores that several processes share:
// they learn there of work that another process made due (a Send, a
// re-send, a retry recorded or a claim released) and tell the
// dispatchers subscribed, which then claim at once instead of waiting for
// Config.PollInterval.
type Waker interface {
	// SubscribeWake arranges for fn to be called, from a goroutine of the
	// store's, whenever work may have become due. fn must not block. The
	// returned function ends the subscription; after it returns fn is not
	// called again.
	SubscribeWake(fn func()) (unsubscribe func())
}
