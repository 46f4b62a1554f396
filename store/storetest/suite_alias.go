package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

// The no-aliasing cases mutate every slice, map, byte and pointer of values
// given to or received from the store, and check the store did not see it.

func scribbleApp(a *convoy.App) {
	a.Name = "scribbled"
	a.Secrets[0].Value = "scribbled-secret-value"
	a.Secrets[0].ExpiresAt = epoch
	a.Secrets = append(a.Secrets, convoy.Secret{Value: "another-scribbled-secret"})
}

func scribbleEndpoint(ep *convoy.Endpoint) {
	ep.URL = "https://scribbled.example/"
	ep.EventTypes[0] = "scribbled"
	ep.Headers["Authorization"] = "scribbled"
	ep.Headers["X-Scribbled"] = "1"
	ep.Secrets[0].Value = "scribbled-secret-value"
	ep.Retry.Schedule[0] = time.Nanosecond
	ep.Retry.Limit = 99
}

func scribbleEvent(ev *convoy.Event) {
	ev.Data[2] = 'X'
	ev.Type = "scribbled"
}

func scribbleDelivery(d *convoy.Delivery) {
	d.Status = convoy.DeliverySuccess
	d.EndpointID = convoy.NewID()
	d.LeaseID = "scribbled"
}

func scribbleAttempt(a *convoy.Attempt) {
	a.RequestHeaders.Set("X-Convoy-Signature", "scribbled")
	a.RequestHeaders["Content-Type"][0] = "scribbled"
	a.ResponseHeaders.Add("X-Scribbled", "1")
	a.RequestBody[0] = 'X'
	a.ResponseBody[0] = 'X'
	a.Error = "scribbled"
}

func testAliasApp(t *testing.T, s convoy.Store) {
	ctx := t.Context()
	a := NewApp()
	require.NoError(t, s.CreateApp(ctx, a))
	want := a.Clone()
	check := func() {
		t.Helper()
		got, err := s.GetApp(ctx, a.ID)
		require.NoError(t, err)
		requireEqual(t, want, got)
	}
	scribbleApp(a)
	check()

	got, err := s.GetApp(ctx, want.ID)
	require.NoError(t, err)
	scribbleApp(got)
	check()
	list, _, err := s.ListApps(ctx, convoy.Page{})
	require.NoError(t, err)
	scribbleApp(list[0])
	check()

	// UpdateApp keeps neither the function's argument nor what it
	// returns.
	u := want.Clone()
	u.Name = "Acme Updated"
	var arg *convoy.App
	ret, err := s.UpdateApp(ctx, a.ID, func(a *convoy.App) error {
		arg = a
		return setApp(u)(a)
	})
	require.NoError(t, err)
	want = u.Clone()
	requireEqual(t, want, ret)
	check()
	scribbleApp(u)
	scribbleApp(arg)
	check()
	scribbleApp(ret)
	check()
}

func testAliasEndpoint(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	v, err := convoy.GenerateSecret()
	require.NoError(t, err)
	withSecret := func(ep *convoy.Endpoint) { ep.Secrets = []convoy.Secret{{Value: v, CreatedAt: epoch}} }
	ep := NewEndpoint(e.app.ID)
	withSecret(ep)
	require.NoError(t, s.CreateEndpoint(e.ctx, ep))
	want := ep.Clone()
	check := func() {
		t.Helper()
		requireEqual(t, want, e.endpoint(want.ID))
	}
	scribbleEndpoint(ep)
	check()

	got := e.endpoint(want.ID)
	scribbleEndpoint(got)
	check()
	list, _, err := s.ListEndpoints(e.ctx, e.app.ID, convoy.Page{})
	require.NoError(t, err)
	for _, x := range list {
		if x.ID == want.ID {
			scribbleEndpoint(x)
		}
	}
	check()

	u := want.Clone()
	u.Description = "updated"
	var arg *convoy.Endpoint
	ret, err := s.UpdateEndpoint(e.ctx, want.ID, func(ep *convoy.Endpoint) error {
		arg = ep
		return setEndpoint(u)(ep)
	})
	require.NoError(t, err)
	want = u.Clone()
	requireEqual(t, want, ret)
	check()
	scribbleEndpoint(u)
	scribbleEndpoint(arg)
	check()
	scribbleEndpoint(ret)
	check()

	// Record hands EndpointStatus a copy too.
	_, ds := e.send(t0, want)
	c := e.claimOne(t0)
	require.Equal(t, ds[0].ID, c.ID)
	tr := transition(c, t0, convoy.DeliverySuccess, 200)
	tr.EndpointStatus = func(ep convoy.Endpoint) convoy.EndpointStatus {
		scribbleEndpoint(&ep)
		return ep.Status
	}
	wantHealth := e.expectHealth(want.ID, tr)
	e.record(tr)
	want.Health = wantHealth
	check()
}

func testAliasEvent(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ev := NewEvent(e.app.ID, t0)
	ev.IdempotencyKey = "order-7"
	want := ev.Clone()
	res, err := s.InsertEvent(e.ctx, ev, nil)
	require.NoError(t, err)
	stored := res.Event
	check := func() {
		t.Helper()
		got, err := s.GetEvent(e.ctx, want.ID)
		require.NoError(t, err)
		requireEqual(t, want, got)
	}
	scribbleEvent(ev)
	check()
	scribbleEvent(stored)
	check()
	got, err := s.GetEvent(e.ctx, want.ID)
	require.NoError(t, err)
	scribbleEvent(got)
	check()
	dup := want.Clone()
	dup.ID = convoy.NewID()
	again, err := s.InsertEvent(e.ctx, dup, nil)
	require.NoError(t, err)
	require.False(t, again.Inserted)
	scribbleEvent(again.Event)
	check()
}

func testAliasDelivery(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ev := NewEvent(e.app.ID, t0)
	ev.IdempotencyKey = "order-8"
	d := NewDelivery(ev, e.ep.ID)
	in := []*convoy.Delivery{d}
	res, err := s.InsertEvent(e.ctx, ev, in)
	require.NoError(t, err)
	want := d.Clone()
	check := func() {
		t.Helper()
		requireEqual(t, want, e.get(want.ID))
	}
	scribbleDelivery(d)
	in[0] = nil
	check()
	scribbleDelivery(res.Deliveries[0])
	check()
	// An idempotent repeat returns copies too.
	dup := NewEvent(e.app.ID, t0)
	dup.IdempotencyKey = ev.IdempotencyKey
	res, err = s.InsertEvent(e.ctx, dup, []*convoy.Delivery{NewDelivery(dup, e.ep.ID)})
	require.NoError(t, err)
	require.False(t, res.Inserted)
	require.Len(t, res.Deliveries, 1)
	scribbleDelivery(res.Deliveries[0])
	check()
	got := e.get(want.ID)
	scribbleDelivery(got)
	check()
	for _, x := range e.deliveries(convoy.DeliveryQuery{EventID: ev.ID}) {
		scribbleDelivery(x)
	}
	check()

	c := e.claimOne(t0)
	want = c.Clone()
	scribbleDelivery(c)
	check()
	// The capacity map is read, not kept.
	e.one(t0)
	e.one(t0)
	inFlight := map[string]int{e.ep.ID: 4}
	claimed, err := s.Claim(e.ctx, convoy.ClaimRequest{Now: t0, Limit: 10, Owner: "worker-1", Lease: lease, PerEndpoint: 5, InFlight: inFlight})
	require.NoError(t, err)
	require.Len(t, claimed, 1, "PerEndpoint - InFlight")
	inFlight[e.ep.ID] = 0
	scribbleDelivery(claimed[0])
	check()
}

func testAliasAttempt(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	d := e.one(t0)
	c := e.claimOne(t0)
	tr := transition(c, t0, convoy.DeliveryRetry, 500)
	tr.NextAttemptAt = t0.Add(time.Hour)
	want := tr.Attempt.Clone()
	e.record(tr)
	check := func() {
		t.Helper()
		requireEqual(t, []*convoy.Attempt{want}, e.attempts(d.ID))
	}
	scribbleAttempt(tr.Attempt)
	check()
	got := e.attempts(d.ID)
	scribbleAttempt(got[0])
	check()
}

func testClose(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ev, ds := e.send(t0, e.ep)
	c := e.claimOne(t0)
	ctx := e.ctx
	require.NoError(t, s.Close())

	calls := map[string]func() error{
		"CreateApp": func() error { return s.CreateApp(ctx, NewApp()) },
		"GetApp":    func() error { _, err := s.GetApp(ctx, e.app.ID); return err },
		"UpdateApp": func() error { _, err := s.UpdateApp(ctx, e.app.ID, setApp(e.app)); return err },
		"DeleteApp": func() error { return s.DeleteApp(ctx, e.app.ID) },
		"ListApps":  func() error { _, _, err := s.ListApps(ctx, convoy.Page{}); return err },
		"CreateEndpoint": func() error {
			return s.CreateEndpoint(ctx, NewEndpoint(e.app.ID))
		},
		"GetEndpoint": func() error { _, err := s.GetEndpoint(ctx, e.ep.ID); return err },
		"UpdateEndpoint": func() error {
			_, err := s.UpdateEndpoint(ctx, e.ep.ID, setEndpoint(e.ep))
			return err
		},
		"DeleteEndpoint": func() error { return s.DeleteEndpoint(ctx, e.ep.ID) },
		"ListEndpoints": func() error {
			_, _, err := s.ListEndpoints(ctx, e.app.ID, convoy.Page{})
			return err
		},
		"InsertEvent": func() error {
			ev := NewEvent(e.app.ID, t0)
			_, err := s.InsertEvent(ctx, ev, []*convoy.Delivery{NewDelivery(ev, e.ep.ID)})
			return err
		},
		"ListEvents":  func() error { _, _, err := s.ListEvents(ctx, convoy.EventQuery{}, convoy.Page{}); return err },
		"GetEvent":    func() error { _, err := s.GetEvent(ctx, ev.ID); return err },
		"GetDelivery": func() error { _, err := s.GetDelivery(ctx, ds[0].ID); return err },
		"ListDeliveries": func() error {
			_, _, err := s.ListDeliveries(ctx, convoy.DeliveryQuery{EventID: ev.ID}, convoy.Page{})
			return err
		},
		"ListAttempts": func() error { _, _, err := s.ListAttempts(ctx, ds[0].ID, convoy.Page{}); return err },
		"Claim": func() error {
			_, err := s.Claim(ctx, convoy.ClaimRequest{Now: t0.Add(time.Hour), Limit: 1, Owner: "worker-1", Lease: lease})
			return err
		},
		"Record": func() error {
			_, err := s.Record(ctx, transition(c, t0, convoy.DeliverySuccess, 200))
			return err
		},
		"Release": func() error { return s.Release(ctx, c.ID, c.LeaseID) },
		"NextDue": func() error { _, _, err := s.NextDue(ctx); return err },
		"Requeue": func() error {
			_, err := s.Requeue(ctx, convoy.RequeueRequest{Now: t0, EndpointID: e.ep.ID})
			return err
		},
		"DeleteBefore": func() error { _, err := s.DeleteBefore(ctx, t0, 0); return err },
		"Stats":        func() error { _, err := s.Stats(ctx, t0); return err },
	}
	for name, call := range calls {
		require.ErrorIs(t, call(), convoy.ErrClosed, name)
	}
	if err := s.Close(); err != nil {
		require.ErrorIs(t, err, convoy.ErrClosed, "a second Close")
	}
}
