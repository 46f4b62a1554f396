package convoy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/convoykit/convoy/internal/ssrf"
)

// EndpointStatus is the state of an endpoint, one of the seed's three.
type EndpointStatus string

// Endpoint states.
const (
	// EndpointActive endpoints receive events.
	EndpointActive EndpointStatus = "active"
	// EndpointInactive (dead) endpoints receive nothing: events for them are
	// saved as Discarded, ready to be re-sent when the endpoint is back.
	EndpointInactive EndpointStatus = "inactive"
	// EndpointPending endpoints are on probation after a re-send to a dead
	// endpoint: the next success makes them active, the next delivery that
	// exhausts its retries makes them inactive again.
	EndpointPending EndpointStatus = "pending"
)

// Valid reports whether s is one of the three endpoint states.
func (s EndpointStatus) Valid() bool {
	switch s {
	case EndpointActive, EndpointInactive, EndpointPending:
		return true
	}
	return false
}

// Endpoint is a target URL of an app that receives events.
//
// Endpoint values returned by a Dispatcher or a Store are copies.
type Endpoint struct {
	// ID is a UUIDv7, set by AddEndpoint when empty. An ID given here may
	// be any UUID in canonical form, stored in lower case (see
	// ValidateID); lists order endpoints by ID, so only time-ordered IDs
	// list in creation order.
	ID string
	// AppID is the app the endpoint belongs to.
	AppID string
	// URL is the absolute http or https URL events are POSTed to.
	URL string
	// Description is free text, at most 1024 bytes.
	Description string
	// Status is active, inactive or pending; empty means active on create.
	Status EndpointStatus
	// EventTypes filters what the endpoint receives: empty or "*" means
	// every event type, otherwise only the types listed; an entry ending
	// in ".*" takes every type under that prefix ("order.*" takes
	// "order.paid" and "order.refund.created").
	EventTypes []string
	// Headers are sent with every request to the endpoint. They cannot
	// replace the headers convoy sets itself (signature, IDs, Content-Type,
	// User-Agent) or HTTP's own (see IsReservedHeader); names are compared
	// case-insensitively, with - and _ alike.
	Headers map[string]string
	// Secrets, when set, sign requests to this endpoint instead of the app's.
	Secrets []Secret
	// Signing, when its Scheme is set, overrides the app's choice.
	Signing Signing
	// Retry, when not nil, overrides the dispatcher's retry strategy.
	Retry *RetryPolicy
	// RateLimit, when not nil, bounds how fast requests to the endpoint
	// start; deliveries beyond it wait in the queue without holding a
	// worker or a lease. See RateLimit.
	RateLimit *RateLimit
	// Ordered delivers the endpoint's events one at a time, in the order
	// they were sent: a delivery is not attempted while an earlier one to
	// the endpoint is still pending (Scheduled, Processing or Retry), so a
	// retry holds back the events after it; one that ends in Failure or
	// Discarded lets the next go. See "Ordered delivery" in the package
	// documentation for its cost and for crashes.
	Ordered bool
	// Health records how delivery to the endpoint has gone. The store keeps
	// it up to date; it is ignored on create and update.
	Health EndpointHealth
	// CreatedAt and UpdatedAt are set by the Dispatcher.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// EndpointHealth is the delivery record of an endpoint, updated in the same
// store transaction as each attempt.
type EndpointHealth struct {
	// LastAttemptAt is the start time of the latest attempt.
	LastAttemptAt time.Time
	// LastStatusCode is the HTTP status of the latest attempt, 0 when it got
	// no response.
	LastStatusCode int
	// LastError is the error text of the latest failed attempt.
	LastError string
	// ConsecutiveFailures counts failed attempts since the last success.
	ConsecutiveFailures int
	// ConsecutiveFailedDeliveries counts deliveries that ended in Failure
	// since the last successful attempt.
	ConsecutiveFailedDeliveries int
	// FailingSince is the time of the first failed attempt after the last
	// success; zero while the endpoint is healthy.
	FailingSince time.Time
	// LastSuccessAt is the start time of the latest successful attempt.
	LastSuccessAt time.Time
	// Circuit is the state of the endpoint's circuit breaker in the
	// Dispatcher that read the endpoint (see Config.Breaker); empty
	// without one. Stores do not keep it.
	Circuit CircuitState
}

// Limits on endpoint fields.
const (
	// MaxURLLen is the longest endpoint URL accepted.
	MaxURLLen         = 2048
	maxHeaders        = 32
	maxHeaderNameLen  = 256
	maxHeaderValueLen = 4096
	maxEventTypes     = 256
)

// Validate reports whether e is well formed: IDs, URL shape (http or https,
// a host, no credentials, at most MaxURLLen bytes), status, event-type
// filter, headers and secrets. It does not check the URL's address against
// the SSRF guard; the Dispatcher does that too.
func (e *Endpoint) Validate() error {
	if e == nil {
		return invalid(ErrInvalid, "endpoint", "nil")
	}
	if err := ValidateID("endpoint.ID", e.ID); err != nil {
		return err
	}
	if err := ValidateID("endpoint.AppID", e.AppID); err != nil {
		return err
	}
	if _, err := ParseEndpointURL(e.URL, false); err != nil {
		return err
	}
	if len(e.Description) > maxDescLen {
		return invalid(ErrTooLong, "endpoint.Description", "")
	}
	if !e.Status.Valid() {
		return invalid(ErrInvalidStatus, "endpoint.Status", string(e.Status))
	}
	if len(e.EventTypes) > maxEventTypes {
		return invalid(ErrInvalidEventType, "endpoint.EventTypes", "too many")
	}
	for _, t := range e.EventTypes {
		if err := ValidateEventFilter(t); err != nil {
			return err
		}
	}
	if err := validateHeaders(e.Headers); err != nil {
		return err
	}
	if len(e.Secrets) > maxSecrets {
		return invalid(ErrInvalidSecret, "endpoint.Secrets", "too many")
	}
	if err := validateSecrets("endpoint.Secrets", e.Secrets); err != nil {
		return err
	}
	if err := checkSchemeSecrets("endpoint.Secrets", e.Signing.Scheme, e.Secrets); err != nil {
		return err
	}
	if err := e.Signing.Validate(); err != nil {
		return err
	}
	if e.Signing.Scheme == "" && e.Signing != (Signing{}) {
		// Without a Scheme the endpoint signs as its app does, so a Hash,
		// Encoding or Header set here would be shown but never used.
		return invalid(ErrUnknownScheme, "endpoint.Signing", "set Scheme to override the app's signing, or leave Signing empty")
	}
	if e.Retry != nil {
		if err := e.Retry.Validate(); err != nil {
			return err
		}
	}
	if e.RateLimit != nil {
		if err := e.RateLimit.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// ParseEndpointURL parses raw as an endpoint URL: absolute, http or https
// (https only when httpsOnly), with a host, without user info or fragment,
// at most MaxURLLen bytes. The host must be an IP literal or a name that a
// browser's URL parser maps to a valid host (IDNA UTS #46, as the WHATWG
// URL Standard does): international names such as bücher.example pass.
// Errors wrap ErrInvalidURL.
func ParseEndpointURL(raw string, httpsOnly bool) (*url.URL, error) {
	if raw == "" {
		return nil, invalid(ErrInvalidURL, "URL", "empty")
	}
	if len(raw) > MaxURLLen {
		return nil, invalid(ErrInvalidURL, "URL", "too long")
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] <= ' ' || raw[i] == 0x7f {
			return nil, invalid(ErrInvalidURL, "URL", "contains spaces or control characters")
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, invalid(ErrInvalidURL, "URL", "does not parse")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if httpsOnly {
			return nil, invalid(ErrInvalidURL, "URL", "https required")
		}
	default:
		return nil, invalid(ErrInvalidURL, "URL", "scheme must be http or https")
	}
	if u.Opaque != "" {
		return nil, invalid(ErrInvalidURL, "URL", "not a hierarchical URL")
	}
	if u.User != nil {
		return nil, invalid(ErrInvalidURL, "URL", "credentials in URL")
	}
	if u.Hostname() == "" {
		return nil, invalid(ErrInvalidURL, "URL", "no host")
	}
	if _, err := ssrf.ASCIIHost(u.Hostname()); err != nil {
		return nil, invalid(ErrInvalidURL, "URL", err.Error())
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, invalid(ErrInvalidURL, "URL", "fragment not allowed")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, invalid(ErrInvalidURL, "URL", "port outside 1-65535")
		}
	}
	return u, nil
}

// Accepts reports whether the endpoint's event-type filter lets eventType
// through. A filter entry matches its type exactly, or, ending in ".*",
// every type under that prefix: "order.*" takes "order.paid" and
// "order.refund.created", not "order" or "orders.paid".
func (e *Endpoint) Accepts(eventType string) bool {
	if len(e.EventTypes) == 0 {
		return true
	}
	for _, t := range e.EventTypes {
		if matchType(t, eventType) {
			return true
		}
	}
	return false
}

// matchType reports whether the filter entry f matches eventType.
func matchType(f, eventType string) bool {
	if f == "*" || f == eventType {
		return true
	}
	if prefix, ok := strings.CutSuffix(f, "*"); ok && strings.HasSuffix(prefix, ".") {
		return strings.HasPrefix(eventType, prefix)
	}
	return false
}

// ValidateEventFilter reports whether f is a valid entry of
// Endpoint.EventTypes: "*", an event type, or an event type prefix ending
// in ".*" ("order.*"). Errors wrap ErrInvalidEventType.
func ValidateEventFilter(f string) error {
	if f == "*" {
		return nil
	}
	if prefix, ok := strings.CutSuffix(f, ".*"); ok {
		if err := ValidateEventType(prefix); err != nil {
			return invalid(ErrInvalidEventType, "endpoint.EventTypes", "bad wildcard "+strconv.Quote(f))
		}
		return nil
	}
	if err := ValidateEventType(f); err != nil {
		return invalid(ErrInvalidEventType, "endpoint.EventTypes", "bad entry "+strconv.Quote(f))
	}
	return nil
}

// Clone returns a deep copy of e.
func (e *Endpoint) Clone() *Endpoint {
	if e == nil {
		return nil
	}
	c := *e
	c.EventTypes = slices.Clone(e.EventTypes)
	if e.Headers != nil {
		c.Headers = make(map[string]string, len(e.Headers))
		for k, v := range e.Headers {
			c.Headers[k] = v
		}
	}
	c.Secrets = cloneSecrets(e.Secrets)
	if e.Retry != nil {
		r := e.Retry.clone()
		c.Retry = &r
	}
	if e.RateLimit != nil {
		r := *e.RateLimit
		c.RateLimit = &r
	}
	return &c
}

// checkURL validates an endpoint URL against the dispatcher's rules: shape,
// https-only mode and, for literal addresses and local names, the SSRF
// guard. Errors wrap ErrInvalidURL (and ErrBlockedAddress when blocked).
func (d *Dispatcher) checkURL(raw string) error {
	u, err := ParseEndpointURL(raw, d.cfg.HTTPSOnly)
	if err != nil {
		return err
	}
	if err := d.guard.CheckHost(u.Hostname()); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	return nil
}

// checkSignatureHeader refuses endpoint headers that would collide with
// the signature header of the endpoint's scheme (its own or its app's), and
// a scheme the secrets it would sign with cannot serve.
func (d *Dispatcher) checkSignatureHeader(ctx context.Context, e *Endpoint) error {
	s := e.Signing
	if s.Scheme == "" || len(e.Secrets) == 0 {
		app, err := d.store.GetApp(ctx, e.AppID)
		if err != nil {
			return err
		}
		if s.Scheme == "" {
			s = app.Signing
		}
		if len(e.Secrets) == 0 {
			// The endpoint signs with its app's secrets.
			if err := checkSchemeSecrets("app.Secrets", s.Scheme, app.Secrets); err != nil {
				return err
			}
		}
	}
	name := s.withDefaults().Header
	for k := range e.Headers {
		if sameHeader(k, name) {
			return &HeaderError{Field: "endpoint.Headers", Name: k, Reason: "the signature header"}
		}
	}
	return nil
}

// AddEndpoint adds an endpoint to an app and returns it as stored. ID,
// AppID, CreatedAt and UpdatedAt are set here; an empty Status means
// active. Errors wrap ErrInvalid (ErrInvalidURL, ErrBlockedAddress, …) for
// bad input and ErrNotFound for an unknown app.
func (d *Dispatcher) AddEndpoint(ctx context.Context, appID string, ep Endpoint) (*Endpoint, error) {
	if err := checkID("appID", &appID); err != nil {
		return nil, err
	}
	e := ep.Clone()
	if e.ID == "" {
		e.ID = NewID()
	}
	e.ID = strings.ToLower(e.ID) // see ValidateID
	e.AppID = appID
	if e.Status == "" {
		e.Status = EndpointActive
	}
	now := d.clock.Now()
	e.CreatedAt, e.UpdatedAt, e.Health = now, now, EndpointHealth{}
	stampSecrets(e.Secrets, now)
	if err := e.Validate(); err != nil {
		return nil, err
	}
	if err := d.checkURL(e.URL); err != nil {
		return nil, err
	}
	if err := d.checkSignatureHeader(ctx, e); err != nil {
		return nil, err
	}
	if err := d.store.CreateEndpoint(ctx, e); err != nil {
		return nil, err
	}
	return e, nil
}

// GetEndpoint returns the endpoint with the ID, its Health included.
func (d *Dispatcher) GetEndpoint(ctx context.Context, id string) (*Endpoint, error) {
	if err := checkID("endpointID", &id); err != nil {
		return nil, err
	}
	ep, err := d.store.GetEndpoint(ctx, id)
	if err != nil {
		return nil, err
	}
	d.withCircuit(ep)
	return ep, nil
}

// withCircuit sets ep.Health.Circuit from this dispatcher's breaker.
func (d *Dispatcher) withCircuit(ep *Endpoint) {
	if d.flow.breaker != nil {
		ep.Health.Circuit = d.EndpointFlow(ep.ID).Circuit
		if ep.Health.Circuit == "" {
			ep.Health.Circuit = CircuitClosed
		}
	}
}

// EndpointUpdate names the endpoint settings UpdateEndpoint changes. A nil
// field keeps the stored value, so an update cannot wipe what it does not
// mention. Status is not a setting: change it with SetEndpointStatus.
//
//	d.UpdateEndpoint(ctx, id, convoy.EndpointUpdate{URL: convoy.Ptr("https://acme.example/v2/hooks")})
type EndpointUpdate struct {
	// URL, when set, is the new target URL.
	URL *string
	// Description, when set, replaces the description.
	Description *string
	// EventTypes, when set, replaces the filter; an empty list or "*"
	// means every type.
	EventTypes *[]string
	// Headers, when set, replaces all custom headers; an empty map
	// removes them.
	Headers *map[string]string
	// Secrets, when set, replaces the endpoint's own secrets; an empty
	// list makes it sign with its app's secrets again.
	Secrets *[]Secret
	// Signing, when set, replaces the endpoint's scheme choice; &Signing{}
	// makes it use its app's.
	Signing *Signing
	// Retry, when set, replaces the endpoint's retry policy;
	// &RetryPolicy{} (no Kind) removes the override, so the dispatcher's
	// Config.Retry applies.
	Retry *RetryPolicy
	// RateLimit, when set, replaces the endpoint's rate limit;
	// &RateLimit{} removes it.
	RateLimit *RateLimit
	// Ordered, when set, turns ordered delivery on or off.
	Ordered *bool
}

// check refuses updates whose meaning is unclear: a retry policy without
// a Kind but with parameters (only &RetryPolicy{} removes the override),
// and own secrets that are all expired already (they would be dropped,
// and the endpoint would quietly sign with its app's).
func (u EndpointUpdate) check(now time.Time) error {
	if r := u.Retry; r != nil && r.Kind == "" &&
		(r.Interval != 0 || r.Multiplier != 0 || r.MaxInterval != 0 || r.Jitter != 0 || r.Limit != 0 || len(r.Schedule) > 0) {
		return invalid(ErrInvalidRetry, "EndpointUpdate.Retry", "no Kind; &RetryPolicy{} removes the override")
	}
	if r := u.RateLimit; r != nil && *r != (RateLimit{}) {
		if err := r.Validate(); err != nil {
			return err
		}
	}
	if u.Secrets != nil && len(*u.Secrets) > 0 && len(liveSecrets(*u.Secrets, now)) == 0 {
		return invalid(ErrInvalidSecret, "EndpointUpdate.Secrets", "every secret given has expired")
	}
	return nil
}

// apply sets the fields u names on e, as of now.
func (u EndpointUpdate) apply(e *Endpoint, now time.Time) {
	if u.URL != nil {
		e.URL = *u.URL
	}
	if u.Description != nil {
		e.Description = *u.Description
	}
	if u.EventTypes != nil {
		e.EventTypes = slices.Clone(*u.EventTypes)
	}
	if u.Headers != nil {
		e.Headers = maps.Clone(*u.Headers)
	}
	if u.Secrets != nil {
		e.Secrets = cloneSecrets(*u.Secrets)
		stampSecrets(e.Secrets, now)
	}
	e.Secrets = dropExpired(e.Secrets, now)
	if u.Signing != nil {
		e.Signing = *u.Signing
	}
	if u.Retry != nil {
		if u.Retry.Kind == "" {
			e.Retry = nil
		} else {
			r := u.Retry.clone()
			e.Retry = &r
		}
	}
	if u.RateLimit != nil {
		if *u.RateLimit == (RateLimit{}) {
			e.RateLimit = nil
		} else {
			r := *u.RateLimit
			e.RateLimit = &r
		}
	}
	if u.Ordered != nil {
		e.Ordered = *u.Ordered
	}
	e.UpdatedAt = now
}

// UpdateEndpoint changes the settings u names on the endpoint with the
// ID, in one store transaction, and returns the endpoint as stored. Fields
// u leaves nil keep their stored values; status and health are never
// changed by it (a status a worker set meanwhile stays). Errors wrap
// ErrInvalid (ErrInvalidURL, ErrInvalidHeader, …) for bad input, with
// nothing changed, and ErrNotFound for an unknown endpoint.
func (d *Dispatcher) UpdateEndpoint(ctx context.Context, id string, u EndpointUpdate) (*Endpoint, error) {
	if err := checkID("endpointID", &id); err != nil {
		return nil, err
	}
	if err := u.check(d.clock.Now()); err != nil {
		return nil, err
	}
	cur, err := d.store.GetEndpoint(ctx, id)
	if err != nil {
		return nil, err
	}
	// Check the result against the rules that need more than the
	// endpoint (the SSRF guard, the app's scheme) before the transaction,
	// which then re-applies u to the endpoint as it is by then.
	now := d.clock.Now()
	u.apply(cur, now)
	if err := cur.Validate(); err != nil {
		return nil, err
	}
	if err := d.checkURL(cur.URL); err != nil {
		return nil, err
	}
	if err := d.checkSignatureHeader(ctx, cur); err != nil {
		return nil, err
	}
	e, err := d.store.UpdateEndpoint(ctx, id, func(e *Endpoint) error {
		u.apply(e, now)
		return e.Validate()
	})
	if err != nil {
		return nil, err
	}
	d.cache.forgetEndpoint(id)
	return e, nil
}

// SetEndpointStatus sets an endpoint's status by hand: re-activate a dead
// endpoint, or take one out of service. Deliveries Discarded while it was
// inactive are not re-sent by this; call ResendEndpoint for that.
func (d *Dispatcher) SetEndpointStatus(ctx context.Context, id string, status EndpointStatus) (*Endpoint, error) {
	return d.setStatus(ctx, id, status, ReasonManual)
}

// errUnchanged aborts a store update that would change nothing.
var errUnchanged = errors.New("convoy: unchanged")

func (d *Dispatcher) setStatus(ctx context.Context, id string, status EndpointStatus, reason StatusReason) (*Endpoint, error) {
	if err := checkID("endpointID", &id); err != nil {
		return nil, err
	}
	if !status.Valid() {
		return nil, invalid(ErrInvalidStatus, "status", string(status))
	}
	now := d.clock.Now()
	var before EndpointStatus
	e, err := d.store.UpdateEndpoint(ctx, id, func(e *Endpoint) error {
		before = e.Status
		if e.Status == status {
			return errUnchanged
		}
		e.Status, e.UpdatedAt = status, now
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return d.store.GetEndpoint(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	d.cache.forgetEndpoint(id)
	d.statusChanged(ctx, e, before, reason, now)
	return e, nil
}

func (d *Dispatcher) statusChanged(ctx context.Context, e *Endpoint, from EndpointStatus, reason StatusReason, at time.Time) {
	d.endpointChanged(ctx, d.currentHooks(), EndpointStatusEvent{
		EndpointID: e.ID, AppID: e.AppID, From: from, To: e.Status, Reason: reason, At: at,
	})
	if e.Status != EndpointInactive {
		d.notify()
	}
}

// RotateEndpointSecret gives an endpoint its own new secret (generated
// when secret is empty), keeping its current own secrets signing for
// keepOld more. An endpoint with its own secrets signs with them instead of
// its app's. As with RotateAppSecret, Convoy simple keeps signing with the
// oldest live secret until it expires, then with the new one.
func (d *Dispatcher) RotateEndpointSecret(ctx context.Context, id string, secret SecretValue, keepOld time.Duration) (*Endpoint, error) {
	if err := checkID("endpointID", &id); err != nil {
		return nil, err
	}
	if keepOld < 0 {
		return nil, invalid(ErrInvalid, "keepOld", "negative")
	}
	if secret == "" {
		g, err := GenerateSecret()
		if err != nil {
			return nil, err
		}
		secret = g
	}
	now := d.clock.Now()
	e, err := d.store.UpdateEndpoint(ctx, id, func(e *Endpoint) error {
		e.Secrets = rotate(e.Secrets, secret, keepOld, now)
		e.UpdatedAt = now
		return e.Validate()
	})
	if err != nil {
		return nil, err
	}
	d.cache.forgetEndpoint(id)
	return e, nil
}

// RemoveEndpoint deletes an endpoint with its deliveries and their
// attempts. ErrNotFound if there is none.
func (d *Dispatcher) RemoveEndpoint(ctx context.Context, id string) error {
	if err := checkID("endpointID", &id); err != nil {
		return err
	}
	defer d.cache.forgetEndpoint(id)
	return d.store.DeleteEndpoint(ctx, id)
}

// ListEndpoints returns one page of an app's endpoints in ID order, which
// is creation order for the IDs AddEndpoint makes (UUIDv7s), and the
// cursor of the next page ("" at the end). An ID given in Endpoint.ID
// sorts where its text does.
func (d *Dispatcher) ListEndpoints(ctx context.Context, appID string, page Page) ([]*Endpoint, string, error) {
	if err := checkID("appID", &appID); err != nil {
		return nil, "", err
	}
	eps, next, err := d.store.ListEndpoints(ctx, appID, page)
	for _, ep := range eps {
		d.withCircuit(ep)
	}
	return eps, next, err
}
