package storetest

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

// t0 is "now" in the suite: deliveries are due around it.
var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// lease is the suite's default claim lease.
const lease = time.Minute

// env bundles a store under test with one app and one endpoint.
type env struct {
	t   *testing.T
	s   convoy.Store
	ctx context.Context
	app *convoy.App
	ep  *convoy.Endpoint
	// claims counts claim calls: with an EventClaimer, every other one
	// goes through ClaimEvents, so the whole suite covers both.
	claims int
}

// setup returns an env whose store holds one app with one endpoint.
func setup(t *testing.T, s convoy.Store) *env {
	t.Helper()
	e := &env{t: t, s: s, ctx: t.Context()}
	e.app = e.newApp()
	e.ep = e.newEndpoint(e.app.ID)
	return e
}

func (e *env) newApp() *convoy.App {
	e.t.Helper()
	a := NewApp()
	require.NoError(e.t, e.s.CreateApp(e.ctx, a))
	return a
}

func (e *env) newEndpoint(appID string, mods ...func(*convoy.Endpoint)) *convoy.Endpoint {
	e.t.Helper()
	ep := NewEndpoint(appID)
	for _, m := range mods {
		m(ep)
	}
	require.NoError(e.t, e.s.CreateEndpoint(e.ctx, ep))
	return ep
}

// insert stores ev with ds and requires it to be a new event stored with
// every delivery.
func (e *env) insert(ev *convoy.Event, ds ...*convoy.Delivery) {
	e.t.Helper()
	res, err := e.s.InsertEvent(e.ctx, ev, ds)
	require.NoError(e.t, err)
	require.True(e.t, res.Inserted)
	requireEqual(e.t, ev, res.Event)
	requireEqual(e.t, byID(ds...), byID(res.Deliveries...), "InsertResult.Deliveries")
}

// setApp returns an UpdateApp function that sets every field to u's.
func setApp(u *convoy.App) func(*convoy.App) error {
	return func(a *convoy.App) error {
		*a = *u.Clone()
		return nil
	}
}

// setEndpoint returns an UpdateEndpoint function that sets every field to
// u's.
func setEndpoint(u *convoy.Endpoint) func(*convoy.Endpoint) error {
	return func(ep *convoy.Endpoint) error {
		*ep = *u.Clone()
		return nil
	}
}

// updateEndpoint stores u's fields in the endpoint u.ID and returns the
// endpoint as stored.
func (e *env) updateEndpoint(u *convoy.Endpoint) *convoy.Endpoint {
	e.t.Helper()
	got, err := e.s.UpdateEndpoint(e.ctx, u.ID, setEndpoint(u))
	require.NoError(e.t, err)
	return got
}

// send inserts an event of the env's app created at `at`, with one
// Scheduled delivery per endpoint, due at `at`.
func (e *env) send(at time.Time, eps ...*convoy.Endpoint) (*convoy.Event, []*convoy.Delivery) {
	e.t.Helper()
	return e.sendStatus(at, convoy.DeliveryScheduled, eps...)
}

// sendStatus is send with the deliveries inserted in status st.
func (e *env) sendStatus(at time.Time, st convoy.DeliveryStatus, eps ...*convoy.Endpoint) (*convoy.Event, []*convoy.Delivery) {
	e.t.Helper()
	appID := e.app.ID
	if len(eps) > 0 {
		appID = eps[0].AppID
	}
	ev := NewEvent(appID, at)
	ds := make([]*convoy.Delivery, len(eps))
	for i, ep := range eps {
		ds[i] = NewDelivery(ev, ep.ID)
		ds[i].Status = st
	}
	e.insert(ev, ds...)
	return ev, ds
}

// one inserts a single Scheduled delivery to the env's endpoint, due at.
func (e *env) one(at time.Time) *convoy.Delivery {
	e.t.Helper()
	_, ds := e.send(at, e.ep)
	return ds[0]
}

func (e *env) get(id string) *convoy.Delivery {
	e.t.Helper()
	d, err := e.s.GetDelivery(e.ctx, id)
	require.NoError(e.t, err)
	return d
}

func (e *env) endpoint(id string) *convoy.Endpoint {
	e.t.Helper()
	ep, err := e.s.GetEndpoint(e.ctx, id)
	require.NoError(e.t, err)
	return ep
}

// claim claims with the suite's defaults for the zero fields of req:
// Owner "worker-1", Lease one minute, Limit 1000.
func (e *env) claim(req convoy.ClaimRequest) []*convoy.Delivery {
	e.t.Helper()
	if req.Owner == "" {
		req.Owner = "worker-1"
	}
	if req.Lease == 0 {
		req.Lease = lease
	}
	if req.Limit == 0 {
		req.Limit = 1000
	}
	var ds []*convoy.Delivery
	var err error
	e.claims++
	if ec, ok := e.s.(convoy.EventClaimer); ok && e.claims%2 == 0 {
		var evs []*convoy.Event
		ds, evs, err = ec.ClaimEvents(e.ctx, req)
		require.NoError(e.t, err)
		e.checkClaimedEvents(ds, evs)
	} else {
		ds, err = e.s.Claim(e.ctx, req)
		require.NoError(e.t, err)
	}
	for _, d := range ds {
		require.Equal(e.t, convoy.DeliveryProcessing, d.Status)
		require.Equal(e.t, req.Owner, d.LeaseOwner)
		require.NotEmpty(e.t, d.LeaseID)
		require.True(e.t, d.LeaseExpiresAt.Equal(req.Now.Add(req.Lease)), "LeaseExpiresAt %v, want %v", d.LeaseExpiresAt, req.Now.Add(req.Lease))
	}
	return ds
}

// checkClaimedEvents checks what ClaimEvents returned: the event of each
// delivery, as GetEvent has it, and the caller's own.
func (e *env) checkClaimedEvents(ds []*convoy.Delivery, evs []*convoy.Event) {
	e.t.Helper()
	require.Len(e.t, evs, len(ds), "one event per claimed delivery")
	for i, d := range ds {
		require.NotNil(e.t, evs[i], "event of delivery %s", d.ID)
		stored, err := e.s.GetEvent(e.ctx, d.EventID)
		require.NoError(e.t, err)
		requireEqual(e.t, stored, evs[i], "event of delivery %s", d.ID)
	}
	// Changing what was returned changes nothing stored.
	changed := make(map[*convoy.Event]bool)
	for _, ev := range evs {
		if changed[ev] {
			continue // deliveries of one event may share it
		}
		changed[ev] = true
		if len(ev.Data) > 0 {
			ev.Data[0] ^= 0xff
		}
		ev.Type += "-changed"
	}
	for i, d := range ds {
		stored, err := e.s.GetEvent(e.ctx, d.EventID)
		require.NoError(e.t, err)
		require.NotEqual(e.t, evs[i].Type, stored.Type, "ClaimEvents returned the store's own event")
		if len(stored.Data) > 0 {
			require.NotEqual(e.t, evs[i].Data[0], stored.Data[0], "ClaimEvents returned the store's own event data")
		}
	}
}

// claimOne claims at now and requires exactly one delivery.
func (e *env) claimOne(now time.Time) *convoy.Delivery {
	e.t.Helper()
	ds := e.claim(convoy.ClaimRequest{Now: now})
	require.Len(e.t, ds, 1)
	return ds[0]
}

// take claims the delivery id at now: it claims everything due, keeps id
// and releases the rest.
func (e *env) take(id string, now time.Time) *convoy.Delivery {
	e.t.Helper()
	var got *convoy.Delivery
	for _, d := range e.claim(convoy.ClaimRequest{Now: now}) {
		if d.ID == id {
			got = d
			continue
		}
		require.NoError(e.t, e.s.Release(e.ctx, d.ID, d.LeaseID))
	}
	require.NotNil(e.t, got, "delivery %s not claimable at %v", id, now)
	return got
}

// finish claims d at now and records status, with an attempt answered by
// code unless code is negative. It returns the attempt.
func (e *env) finish(d *convoy.Delivery, now time.Time, st convoy.DeliveryStatus, code int) *convoy.Attempt {
	e.t.Helper()
	c := e.take(d.ID, now)
	tr := convoy.Transition{DeliveryID: c.ID, LeaseID: c.LeaseID, Now: now, Status: st}
	if code >= 0 {
		tr.Attempt = NewAttempt(c, c.Attempts+1, code, now)
	}
	if st == convoy.DeliveryRetry {
		tr.NextAttemptAt = now.Add(time.Hour)
	}
	e.record(tr)
	return tr.Attempt
}

func (e *env) record(tr convoy.Transition) convoy.RecordResult {
	e.t.Helper()
	res, err := e.s.Record(e.ctx, tr)
	require.NoError(e.t, err)
	return res
}

func (e *env) attempts(deliveryID string) []*convoy.Attempt {
	e.t.Helper()
	return collect(e.t, func(cursor string) ([]*convoy.Attempt, string, error) {
		return e.s.ListAttempts(e.ctx, deliveryID, convoy.Page{Cursor: cursor, Limit: convoy.MaxPageSize})
	})
}

func (e *env) deliveries(q convoy.DeliveryQuery) []*convoy.Delivery {
	e.t.Helper()
	return collect(e.t, func(cursor string) ([]*convoy.Delivery, string, error) {
		return e.s.ListDeliveries(e.ctx, q, convoy.Page{Cursor: cursor, Limit: convoy.MaxPageSize})
	})
}

func (e *env) nextDue() (time.Time, bool) {
	e.t.Helper()
	at, ok, err := e.s.NextDue(e.ctx)
	require.NoError(e.t, err)
	return at, ok
}

func (e *env) requireNotFound(err error) {
	e.t.Helper()
	require.ErrorIs(e.t, err, convoy.ErrNotFound)
}

// requireGone checks that a delivery, its attempts and (when eventID is
// not empty) its event no longer exist.
func (e *env) requireGone(eventID string, deliveryIDs ...string) {
	e.t.Helper()
	if eventID != "" {
		_, err := e.s.GetEvent(e.ctx, eventID)
		e.requireNotFound(err)
	}
	for _, id := range deliveryIDs {
		_, err := e.s.GetDelivery(e.ctx, id)
		e.requireNotFound(err)
		_, _, err = e.s.ListAttempts(e.ctx, id, convoy.Page{})
		e.requireNotFound(err)
	}
}

// collect follows a list's cursor to the end and returns every item.
func collect[T any](t *testing.T, fetch func(cursor string) ([]T, string, error)) []T {
	t.Helper()
	var all []T
	for _, page := range pages(t, fetch) {
		all = append(all, page...)
	}
	return all
}

// pages follows a list's cursor to the end and returns its pages.
func pages[T any](t *testing.T, fetch func(cursor string) ([]T, string, error)) [][]T {
	t.Helper()
	var out [][]T
	cursor := ""
	for {
		items, next, err := fetch(cursor)
		require.NoError(t, err)
		out = append(out, items)
		if next == "" {
			return out
		}
		require.NotEqual(t, cursor, next, "cursor did not advance")
		require.Less(t, len(out), 1_000_000, "runaway pagination")
		cursor = next
	}
}

// requirePaged checks pages of IDs against want, in order: no duplicate,
// no gap, every page but the last full. The last page may be empty: a store
// need not know that a full page is the last.
func requirePaged(t *testing.T, got [][]string, want []string, limit int) {
	t.Helper()
	var flat []string
	for i, p := range got {
		require.LessOrEqual(t, len(p), limit, "page %d larger than the limit", i)
		if i < len(got)-1 {
			require.Len(t, p, limit, "page %d of %d is short", i, len(got))
		}
		flat = append(flat, p...)
	}
	if len(want) == 0 {
		require.Empty(t, flat)
	} else {
		require.Equal(t, want, flat)
	}
	require.LessOrEqual(t, len(got), len(want)/limit+1, "too many pages")
}

// idPages lists pages of IDs.
func idPages[T any](t *testing.T, id func(T) string, fetch func(cursor string) ([]T, string, error)) [][]string {
	t.Helper()
	var out [][]string
	for _, p := range pages(t, fetch) {
		ids := make([]string, len(p))
		for i, x := range p {
			ids[i] = id(x)
		}
		out = append(out, ids)
	}
	return out
}

func appID(a *convoy.App) string            { return a.ID }
func endpointID(ep *convoy.Endpoint) string { return ep.ID }
func deliveryID(d *convoy.Delivery) string  { return d.ID }

// ids returns the IDs of ds.
func ids(ds []*convoy.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// sortedIDs returns the IDs of ds in ascending order.
func sortedIDs(ds ...*convoy.Delivery) []string {
	out := ids(ds)
	slices.Sort(out)
	return out
}

// newestIDs returns the IDs of ds newest first (descending), the order
// of ListDeliveries.
func newestIDs(ds ...*convoy.Delivery) []string {
	out := sortedIDs(ds...)
	slices.Reverse(out)
	return out
}

// byID returns ds sorted by ID, for comparing lists whose order is not
// part of the contract.
func byID(ds ...*convoy.Delivery) []*convoy.Delivery {
	out := slices.Clone(ds)
	slices.SortFunc(out, func(a, b *convoy.Delivery) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// newest returns ds newest first (ID descending), the order of
// ListDeliveries.
func newest(ds ...*convoy.Delivery) []*convoy.Delivery {
	out := byID(ds...)
	slices.Reverse(out)
	return out
}

// state is everything a store holds, as far as its read methods show:
// lists are followed to the end, events are those of the deliveries (plus
// any asked for), and the next due time is included.
type state struct {
	Apps       []*convoy.App
	Endpoints  []*convoy.Endpoint
	Events     []*convoy.Event
	Deliveries []*convoy.Delivery
	Attempts   map[string][]*convoy.Attempt
	NextDue    time.Time
	HasNextDue bool
}

// snapshot reads the whole store; events without deliveries are included
// only when named in eventIDs.
func snapshot(t *testing.T, s convoy.Store, eventIDs ...string) state {
	t.Helper()
	ctx := t.Context()
	var st state
	st.Attempts = make(map[string][]*convoy.Attempt)
	full := func(cursor string) convoy.Page { return convoy.Page{Cursor: cursor, Limit: convoy.MaxPageSize} }
	st.Apps = normAll(collect(t, func(c string) ([]*convoy.App, string, error) {
		return s.ListApps(ctx, full(c))
	}), normApp)
	evIDs := slices.Clone(eventIDs)
	for _, a := range st.Apps {
		eps := normAll(collect(t, func(c string) ([]*convoy.Endpoint, string, error) {
			return s.ListEndpoints(ctx, a.ID, full(c))
		}), normEndpoint)
		st.Endpoints = append(st.Endpoints, eps...)
		for _, ep := range eps {
			ds := normAll(collect(t, func(c string) ([]*convoy.Delivery, string, error) {
				return s.ListDeliveries(ctx, convoy.DeliveryQuery{EndpointID: ep.ID}, full(c))
			}), normDelivery)
			st.Deliveries = append(st.Deliveries, ds...)
			for _, d := range ds {
				evIDs = append(evIDs, d.EventID)
				as := normAll(collect(t, func(c string) ([]*convoy.Attempt, string, error) {
					return s.ListAttempts(ctx, d.ID, full(c))
				}), normAttempt)
				if len(as) > 0 {
					st.Attempts[d.ID] = as
				}
			}
		}
	}
	slices.SortFunc(st.Endpoints, func(a, b *convoy.Endpoint) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(st.Deliveries, func(a, b *convoy.Delivery) int { return strings.Compare(a.ID, b.ID) })
	slices.Sort(evIDs)
	for _, id := range slices.Compact(evIDs) {
		ev, err := s.GetEvent(ctx, id)
		if err != nil {
			require.ErrorIs(t, err, convoy.ErrNotFound)
			continue
		}
		st.Events = append(st.Events, normEvent(ev))
	}
	at, ok, err := s.NextDue(ctx)
	require.NoError(t, err)
	st.NextDue, st.HasNextDue = at.UTC(), ok
	return st
}

// requireUnchanged checks that the store still reads as before.
func requireUnchanged(t *testing.T, s convoy.Store, before state, eventIDs ...string) {
	t.Helper()
	require.Equal(t, before, snapshot(t, s, eventIDs...), "a failed call changed the store")
}

// without returns st minus the app appID (if not empty) and the events
// eventIDs, with everything that belongs to them, and the next due time
// of what is left.
func (st state) without(appID string, eventIDs ...string) state {
	out := state{Attempts: make(map[string][]*convoy.Attempt)}
	dropEvent := func(ev *convoy.Event) bool { return ev.AppID == appID || slices.Contains(eventIDs, ev.ID) }
	for _, a := range st.Apps {
		if a.ID != appID {
			out.Apps = append(out.Apps, a)
		}
	}
	for _, ep := range st.Endpoints {
		if ep.AppID != appID {
			out.Endpoints = append(out.Endpoints, ep)
		}
	}
	for _, ev := range st.Events {
		if !dropEvent(ev) {
			out.Events = append(out.Events, ev)
		}
	}
	for _, d := range st.Deliveries {
		if d.AppID == appID || slices.Contains(eventIDs, d.EventID) {
			continue
		}
		out.Deliveries = append(out.Deliveries, d)
		if as, ok := st.Attempts[d.ID]; ok {
			out.Attempts[d.ID] = as
		}
		if at, ok := d.DueAt(); ok && (!out.HasNextDue || at.Before(out.NextDue)) {
			out.NextDue, out.HasNextDue = at, true
		}
	}
	return out
}

// requireEqual compares records after normalising what a store may
// legitimately change: time zones and monotonic readings, and empty
// slices or maps against nil.
func requireEqual(t *testing.T, want, got any, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, norm(want), norm(got), msgAndArgs...)
}

func norm(v any) any {
	switch v := v.(type) {
	case *convoy.App:
		return normApp(v)
	case []*convoy.App:
		return normAll(v, normApp)
	case *convoy.Endpoint:
		return normEndpoint(v)
	case []*convoy.Endpoint:
		return normAll(v, normEndpoint)
	case *convoy.Event:
		return normEvent(v)
	case *convoy.Delivery:
		return normDelivery(v)
	case []*convoy.Delivery:
		return normAll(v, normDelivery)
	case *convoy.Attempt:
		return normAttempt(v)
	case []*convoy.Attempt:
		return normAll(v, normAttempt)
	case convoy.EndpointHealth:
		return normHealth(v)
	}
	return v
}

func normAll[T any](xs []*T, f func(*T) *T) []*T {
	if len(xs) == 0 {
		return nil
	}
	out := make([]*T, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

func normTime(t time.Time) time.Time { return t.UTC() }

func normSecrets(s []convoy.Secret) []convoy.Secret {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	for i := range out {
		out[i].CreatedAt = normTime(out[i].CreatedAt)
		out[i].ExpiresAt = normTime(out[i].ExpiresAt)
	}
	return out
}

func normApp(a *convoy.App) *convoy.App {
	if a == nil {
		return nil
	}
	c := a.Clone()
	c.Secrets = normSecrets(c.Secrets)
	c.CreatedAt, c.UpdatedAt = normTime(c.CreatedAt), normTime(c.UpdatedAt)
	return c
}

func normHealth(h convoy.EndpointHealth) convoy.EndpointHealth {
	h.LastAttemptAt = normTime(h.LastAttemptAt)
	h.FailingSince = normTime(h.FailingSince)
	h.LastSuccessAt = normTime(h.LastSuccessAt)
	return h
}

func normEndpoint(ep *convoy.Endpoint) *convoy.Endpoint {
	if ep == nil {
		return nil
	}
	c := ep.Clone()
	if len(c.EventTypes) == 0 {
		c.EventTypes = nil
	}
	if len(c.Headers) == 0 {
		c.Headers = nil
	}
	c.Secrets = normSecrets(c.Secrets)
	if c.Retry != nil && len(c.Retry.Schedule) == 0 {
		c.Retry.Schedule = nil
	}
	c.Health = normHealth(c.Health)
	c.CreatedAt, c.UpdatedAt = normTime(c.CreatedAt), normTime(c.UpdatedAt)
	return c
}

func normEvent(ev *convoy.Event) *convoy.Event {
	if ev == nil {
		return nil
	}
	c := ev.Clone()
	c.CreatedAt = normTime(c.CreatedAt)
	return c
}

func normDelivery(d *convoy.Delivery) *convoy.Delivery {
	if d == nil {
		return nil
	}
	c := d.Clone()
	c.NextAttemptAt = normTime(c.NextAttemptAt)
	c.LeaseExpiresAt = normTime(c.LeaseExpiresAt)
	c.CreatedAt, c.UpdatedAt = normTime(c.CreatedAt), normTime(c.UpdatedAt)
	return c
}

func normHeader(h http.Header) http.Header {
	if len(h) == 0 {
		return nil
	}
	return h
}

func normBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func normAttempt(a *convoy.Attempt) *convoy.Attempt {
	if a == nil {
		return nil
	}
	c := a.Clone()
	c.RequestHeaders, c.ResponseHeaders = normHeader(c.RequestHeaders), normHeader(c.ResponseHeaders)
	c.RequestBody, c.ResponseBody = normBytes(c.RequestBody), normBytes(c.ResponseBody)
	c.StartedAt = normTime(c.StartedAt)
	return c
}
