package storetest

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

// badIDs are IDs every method must refuse with ErrInvalidID.
var badIDs = []string{"", "app-1", "0191d3c4-7c2e-7cc3-9b6d-8f1c5a2e4b3", "0191d3c4-7c2e-7cc3-9b6d-8f1c5a2e4b3zz"}

func testAppCRUD(t *testing.T, s convoy.Store) {
	ctx := t.Context()
	a := NewApp()
	require.NoError(t, s.CreateApp(ctx, a))
	got, err := s.GetApp(ctx, a.ID)
	require.NoError(t, err)
	requireEqual(t, a, got)

	dup := NewApp()
	dup.ID = a.ID
	dup.Name = "Someone Else"
	require.ErrorIs(t, s.CreateApp(ctx, dup), convoy.ErrDuplicate)
	got, err = s.GetApp(ctx, a.ID)
	require.NoError(t, err)
	requireEqual(t, a, got, "a duplicate create changed the app")

	_, err = s.GetApp(ctx, convoy.NewID())
	require.ErrorIs(t, err, convoy.ErrNotFound)

	a.Name = "Acme Renamed"
	a.SupportEmail = ""
	a.UpdatedAt = epoch.Add(time.Hour)
	ret, err := s.UpdateApp(ctx, a.ID, setApp(a))
	require.NoError(t, err)
	requireEqual(t, a, ret, "UpdateApp returns the app as stored")
	got, err = s.GetApp(ctx, a.ID)
	require.NoError(t, err)
	requireEqual(t, a, got)

	missing := NewApp()
	_, err = s.UpdateApp(ctx, missing.ID, setApp(missing))
	require.ErrorIs(t, err, convoy.ErrNotFound)
	_, err = s.GetApp(ctx, missing.ID)
	require.ErrorIs(t, err, convoy.ErrNotFound, "UpdateApp of a missing app created it")

	require.NoError(t, s.DeleteApp(ctx, a.ID))
	_, err = s.GetApp(ctx, a.ID)
	require.ErrorIs(t, err, convoy.ErrNotFound)
	require.ErrorIs(t, s.DeleteApp(ctx, a.ID), convoy.ErrNotFound)
	list, next, err := s.ListApps(ctx, convoy.Page{})
	require.NoError(t, err)
	require.Empty(t, list)
	require.Empty(t, next)
}

func testAppInvalid(t *testing.T, s convoy.Store) {
	ctx := t.Context()
	stored := NewApp()
	require.NoError(t, s.CreateApp(ctx, stored))
	before := snapshot(t, s)

	// UpdateApp keeps the stored ID whatever fn does, so the ID cases
	// are for CreateApp only.
	cases := []struct {
		name       string
		mod        func(*convoy.App)
		want       error
		createOnly bool
	}{
		{"empty ID", func(a *convoy.App) { a.ID = "" }, convoy.ErrInvalidID, true},
		{"malformed ID", func(a *convoy.App) { a.ID = "app-1" }, convoy.ErrInvalidID, true},
		{"empty name", func(a *convoy.App) { a.Name = "" }, convoy.ErrInvalid, false},
		{"long name", func(a *convoy.App) { a.Name = strings.Repeat("n", 257) }, convoy.ErrTooLong, false},
		{"short secret", func(a *convoy.App) { a.Secrets = []convoy.Secret{{Value: "short"}} }, convoy.ErrInvalidSecret, false},
		{"unknown scheme", func(a *convoy.App) { a.Signing.Scheme = "rot13" }, convoy.ErrUnknownScheme, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := NewApp()
			c.mod(a)
			require.ErrorIs(t, s.CreateApp(ctx, a), c.want)
			if c.createOnly {
				return
			}
			_, err := s.UpdateApp(ctx, stored.ID, func(a *convoy.App) error {
				c.mod(a)
				return nil
			})
			require.ErrorIs(t, err, c.want)
		})
	}
	require.ErrorIs(t, s.CreateApp(ctx, nil), convoy.ErrInvalid)
	for _, id := range badIDs {
		_, err := s.GetApp(ctx, id)
		require.ErrorIs(t, err, convoy.ErrInvalidID, "GetApp(%q)", id)
		_, err = s.UpdateApp(ctx, id, setApp(stored))
		require.ErrorIs(t, err, convoy.ErrInvalidID, "UpdateApp(%q)", id)
		require.ErrorIs(t, s.DeleteApp(ctx, id), convoy.ErrInvalidID, "DeleteApp(%q)", id)
		_, _, err = s.ListEndpoints(ctx, id, convoy.Page{})
		require.ErrorIs(t, err, convoy.ErrInvalidID, "ListEndpoints(%q)", id)
	}
	requireUnchanged(t, s, before)
}

func testListApps(t *testing.T, s convoy.Store) {
	ctx := t.Context()
	all := make([]string, 9)
	for i := range all {
		all[i] = convoy.NewID()
	}
	slices.Sort(all)
	// all[1] is created later, behind the cursor.
	created := slices.Concat(all[:1], all[2:])
	order := slices.Clone(created)
	rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, id := range order {
		a := NewApp()
		a.ID = id
		require.NoError(t, s.CreateApp(ctx, a))
	}

	list := func(limit int) func(string) ([]*convoy.App, string, error) {
		return func(cursor string) ([]*convoy.App, string, error) {
			return s.ListApps(ctx, convoy.Page{Cursor: cursor, Limit: limit})
		}
	}
	for _, limit := range []int{1, 3, 4, 8, 100} {
		requirePaged(t, idPages(t, appID, list(limit)), created, limit)
	}

	// The cursor holds across writes: an app created before it is not
	// seen, the app it names may be deleted, a new app shows at the end.
	first, cursor, err := s.ListApps(ctx, convoy.Page{Limit: 3})
	require.NoError(t, err)
	require.Equal(t, created[:3], []string{first[0].ID, first[1].ID, first[2].ID})
	require.NotEmpty(t, cursor)
	late := NewApp()
	late.ID = all[1]
	require.NoError(t, s.CreateApp(ctx, late))
	require.NoError(t, s.DeleteApp(ctx, created[2]))
	newest := NewApp()
	require.NoError(t, s.CreateApp(ctx, newest))
	rest := idPages(t, appID, func(c string) ([]*convoy.App, string, error) {
		if c == "" {
			c = cursor
		}
		return s.ListApps(ctx, convoy.Page{Cursor: c, Limit: 2})
	})
	requirePaged(t, rest, append(slices.Clone(created[3:]), newest.ID), 2)
}

func testDeleteAppCascades(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ep2 := e.newEndpoint(e.app.ID)
	ev := NewEvent(e.app.ID, t0)
	ev.IdempotencyKey = "order-42"
	ds := []*convoy.Delivery{NewDelivery(ev, e.ep.ID), NewDelivery(ev, ep2.ID)}
	e.insert(ev, ds...)
	e.finish(ds[0], t0, convoy.DeliveryRetry, 500)
	evEmpty := NewEvent(e.app.ID, t0)
	e.insert(evEmpty)

	other := e.newApp()
	otherEp := e.newEndpoint(other.ID)
	otherEv, otherDs := e.send(t0.Add(time.Minute), otherEp)
	e.finish(otherDs[0], t0.Add(time.Minute), convoy.DeliveryRetry, 503)

	want := snapshot(t, s, evEmpty.ID, otherEv.ID).without(e.app.ID)
	require.NoError(t, s.DeleteApp(e.ctx, e.app.ID))

	_, err := s.GetApp(e.ctx, e.app.ID)
	e.requireNotFound(err)
	for _, id := range []string{e.ep.ID, ep2.ID} {
		_, err = s.GetEndpoint(e.ctx, id)
		e.requireNotFound(err)
	}
	_, _, err = s.ListEndpoints(e.ctx, e.app.ID, convoy.Page{})
	e.requireNotFound(err)
	e.requireGone(ev.ID, ids(ds)...)
	e.requireGone(evEmpty.ID)
	require.Equal(t, want, snapshot(t, s, ev.ID, evEmpty.ID, otherEv.ID), "DeleteApp touched another app")
	got := e.claim(convoy.ClaimRequest{Now: t0.Add(1000 * time.Hour)})
	require.Equal(t, []string{otherDs[0].ID}, ids(got))

	// The ID and the idempotency key are free again.
	again := NewApp()
	again.ID = e.app.ID
	require.NoError(t, s.CreateApp(e.ctx, again))
	ev2 := NewEvent(e.app.ID, t0)
	ev2.IdempotencyKey = ev.IdempotencyKey
	e.insert(ev2)
}

func testEndpointCRUD(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ctx := e.ctx
	ep := NewEndpoint(e.app.ID)
	ep.Health = convoy.EndpointHealth{ConsecutiveFailures: 5, LastError: "HTTP 500", FailingSince: epoch}
	require.NoError(t, s.CreateEndpoint(ctx, ep))
	want := ep.Clone()
	want.Health = convoy.EndpointHealth{}
	requireEqual(t, want, e.endpoint(ep.ID), "CreateEndpoint must ignore Health")

	dup := NewEndpoint(e.app.ID)
	dup.ID = ep.ID
	dup.URL = "https://elsewhere.example/hook"
	require.ErrorIs(t, s.CreateEndpoint(ctx, dup), convoy.ErrDuplicate)
	requireEqual(t, want, e.endpoint(ep.ID))

	orphan := NewEndpoint(convoy.NewID())
	require.ErrorIs(t, s.CreateEndpoint(ctx, orphan), convoy.ErrNotFound)
	_, err := s.GetEndpoint(ctx, orphan.ID)
	e.requireNotFound(err)
	_, err = s.GetEndpoint(ctx, convoy.NewID())
	e.requireNotFound(err)

	u := want.Clone()
	u.URL = "https://hooks.acme.example/v2"
	u.Status = convoy.EndpointInactive
	u.EventTypes = nil
	u.Headers = map[string]string{"X-Tenant": "acme"}
	u.Retry = nil
	u.UpdatedAt = epoch.Add(time.Hour)
	requireEqual(t, u, e.updateEndpoint(u), "UpdateEndpoint returns the endpoint as stored")
	requireEqual(t, u, e.endpoint(ep.ID))

	missing := NewEndpoint(e.app.ID)
	_, err = s.UpdateEndpoint(ctx, missing.ID, setEndpoint(missing))
	require.ErrorIs(t, err, convoy.ErrNotFound)
	_, err = s.GetEndpoint(ctx, missing.ID)
	e.requireNotFound(err)

	require.NoError(t, s.DeleteEndpoint(ctx, ep.ID))
	_, err = s.GetEndpoint(ctx, ep.ID)
	e.requireNotFound(err)
	require.ErrorIs(t, s.DeleteEndpoint(ctx, ep.ID), convoy.ErrNotFound)
	eps, _, err := s.ListEndpoints(ctx, e.app.ID, convoy.Page{})
	require.NoError(t, err)
	require.Len(t, eps, 1)
	require.Equal(t, e.ep.ID, eps[0].ID)
}

// testEndpointFlowControl checks that the flow control settings are
// stored, listed, changed and removed.
func testEndpointFlowControl(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ep := NewEndpoint(e.app.ID)
	ep.Ordered = true
	ep.RateLimit = &convoy.RateLimit{PerSecond: 2.5, Burst: 3}
	require.NoError(t, s.CreateEndpoint(e.ctx, ep))
	requireEqual(t, ep, e.endpoint(ep.ID))
	eps, _, err := s.ListEndpoints(e.ctx, e.app.ID, convoy.Page{})
	require.NoError(t, err)
	require.Len(t, eps, 2)
	requireEqual(t, ep, eps[1], "listed with its settings")

	u := ep.Clone()
	u.RateLimit = &convoy.RateLimit{PerSecond: 0.5}
	requireEqual(t, u, e.updateEndpoint(u))
	requireEqual(t, u, e.endpoint(ep.ID))
	u.Ordered, u.RateLimit = false, nil
	requireEqual(t, u, e.updateEndpoint(u))
	requireEqual(t, u, e.endpoint(ep.ID))

	bad := NewEndpoint(e.app.ID)
	bad.RateLimit = &convoy.RateLimit{PerSecond: -1}
	require.ErrorIs(t, s.CreateEndpoint(e.ctx, bad), convoy.ErrInvalid)
}

func testEndpointInvalid(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ctx := e.ctx
	before := snapshot(t, s)
	cases := []struct {
		name       string
		mod        func(*convoy.Endpoint)
		want       error
		createOnly bool
	}{
		{"empty ID", func(ep *convoy.Endpoint) { ep.ID = "" }, convoy.ErrInvalidID, true},
		{"malformed ID", func(ep *convoy.Endpoint) { ep.ID = "ep_1" }, convoy.ErrInvalidID, true},
		{"malformed app ID", func(ep *convoy.Endpoint) { ep.AppID = "acme" }, convoy.ErrInvalidID, true},
		{"unknown status", func(ep *convoy.Endpoint) { ep.Status = "paused" }, convoy.ErrInvalidStatus, false},
		{"bad URL", func(ep *convoy.Endpoint) { ep.URL = "ftp://hooks.acme.example/" }, convoy.ErrInvalidURL, false},
		{"reserved header", func(ep *convoy.Endpoint) { ep.Headers = map[string]string{"X-Convoy-Signature": "forged"} }, convoy.ErrInvalidHeader, false},
		{"bad event type", func(ep *convoy.Endpoint) { ep.EventTypes = []string{"invoice paid"} }, convoy.ErrInvalidEventType, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ep := NewEndpoint(e.app.ID)
			c.mod(ep)
			require.ErrorIs(t, s.CreateEndpoint(ctx, ep), c.want)
			if c.createOnly {
				return
			}
			_, err := s.UpdateEndpoint(ctx, e.ep.ID, func(ep *convoy.Endpoint) error {
				c.mod(ep)
				return nil
			})
			require.ErrorIs(t, err, c.want)
		})
	}
	require.ErrorIs(t, s.CreateEndpoint(ctx, nil), convoy.ErrInvalid)
	for _, id := range badIDs {
		_, err := s.GetEndpoint(ctx, id)
		require.ErrorIs(t, err, convoy.ErrInvalidID, "GetEndpoint(%q)", id)
		_, err = s.UpdateEndpoint(ctx, id, setEndpoint(e.ep))
		require.ErrorIs(t, err, convoy.ErrInvalidID, "UpdateEndpoint(%q)", id)
		require.ErrorIs(t, s.DeleteEndpoint(ctx, id), convoy.ErrInvalidID, "DeleteEndpoint(%q)", id)
	}
	requireUnchanged(t, s, before)
}

func testListEndpoints(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	other := e.newApp()
	e.newEndpoint(other.ID)
	want := []string{e.ep.ID}
	for range 6 {
		want = append(want, e.newEndpoint(e.app.ID).ID)
	}
	slices.Sort(want)
	for _, limit := range []int{1, 2, 7, 50} {
		got := idPages(t, endpointID, func(c string) ([]*convoy.Endpoint, string, error) {
			return s.ListEndpoints(e.ctx, e.app.ID, convoy.Page{Cursor: c, Limit: limit})
		})
		requirePaged(t, got, want, limit)
	}
	_, _, err := s.ListEndpoints(e.ctx, convoy.NewID(), convoy.Page{})
	e.requireNotFound(err)
}

func testDeleteEndpoint(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ep2 := e.newEndpoint(e.app.ID)
	ev1, ds1 := e.send(t0, e.ep, ep2)
	ev2, ds2 := e.send(t0.Add(time.Second), e.ep)
	e.finish(ds1[0], t0.Add(time.Second), convoy.DeliveryRetry, 500)
	e.finish(ds2[0], t0.Add(time.Second), convoy.DeliverySuccess, 200)
	want := snapshot(t, s, ev1.ID, ev2.ID)
	kept := e.get(ds1[1].ID)

	require.NoError(t, s.DeleteEndpoint(e.ctx, e.ep.ID))
	e.requireGone("", ds1[0].ID, ds2[0].ID)
	for _, ev := range []*convoy.Event{ev1, ev2} {
		got, err := s.GetEvent(e.ctx, ev.ID)
		require.NoError(t, err, "DeleteEndpoint must keep the events")
		requireEqual(t, ev, got)
	}
	got := e.deliveries(convoy.DeliveryQuery{EventID: ev1.ID})
	requireEqual(t, []*convoy.Delivery{kept}, got)
	require.Empty(t, e.deliveries(convoy.DeliveryQuery{EventID: ev2.ID}))
	require.Empty(t, e.deliveries(convoy.DeliveryQuery{EndpointID: e.ep.ID}))

	// Everything else reads as before.
	want.Endpoints = slices.DeleteFunc(want.Endpoints, func(ep *convoy.Endpoint) bool { return ep.ID == e.ep.ID })
	want.Deliveries = slices.DeleteFunc(want.Deliveries, func(d *convoy.Delivery) bool { return d.EndpointID == e.ep.ID })
	delete(want.Attempts, ds1[0].ID)
	delete(want.Attempts, ds2[0].ID)
	want.NextDue = t0
	require.Equal(t, want, snapshot(t, s, ev1.ID, ev2.ID))
	claimed := e.claim(convoy.ClaimRequest{Now: t0.Add(1000 * time.Hour)})
	require.Equal(t, []string{ds1[1].ID}, ids(claimed))
}
