package storetest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

func testInsertEvent(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ep2 := e.newEndpoint(e.app.ID)
	ev := NewEvent(e.app.ID, t0)
	ev.IdempotencyKey = "invoice-1042"
	d1 := NewDelivery(ev, e.ep.ID)
	d2 := NewDelivery(ev, ep2.ID)
	d2.Status = convoy.DeliveryDiscarded
	e.insert(ev, d1, d2)

	got, err := s.GetEvent(e.ctx, ev.ID)
	require.NoError(t, err)
	requireEqual(t, ev, got)
	requireEqual(t, d1, e.get(d1.ID))
	requireEqual(t, d2, e.get(d2.ID))
	requireEqual(t, newest(d1, d2), e.deliveries(convoy.DeliveryQuery{EventID: ev.ID}))

	// An event may have no delivery (no endpoint accepts its type).
	lone := NewEvent(e.app.ID, t0)
	e.insert(lone)
	got, err = s.GetEvent(e.ctx, lone.ID)
	require.NoError(t, err)
	requireEqual(t, lone, got)
	require.Empty(t, e.deliveries(convoy.DeliveryQuery{EventID: lone.ID}))

	_, err = s.GetEvent(e.ctx, convoy.NewID())
	e.requireNotFound(err)
	_, err = s.GetDelivery(e.ctx, convoy.NewID())
	e.requireNotFound(err)
	for _, id := range badIDs {
		_, err = s.GetEvent(e.ctx, id)
		require.ErrorIs(t, err, convoy.ErrInvalidID, "GetEvent(%q)", id)
		_, err = s.GetDelivery(e.ctx, id)
		require.ErrorIs(t, err, convoy.ErrInvalidID, "GetDelivery(%q)", id)
	}
}

// testInsertSkipsRemovedEndpoint: a delivery whose endpoint no longer
// exists is skipped, the rest of the event is stored, and the result tells
// what was. Only an unknown app is ErrNotFound.
func testInsertSkipsRemovedEndpoint(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	removed := e.newEndpoint(e.app.ID)
	kept := e.newEndpoint(e.app.ID)
	require.NoError(t, s.DeleteEndpoint(e.ctx, removed.ID))

	ev := NewEvent(e.app.ID, t0)
	ev.IdempotencyKey = "order-9"
	ds := []*convoy.Delivery{
		NewDelivery(ev, e.ep.ID), NewDelivery(ev, removed.ID),
		NewDelivery(ev, kept.ID), NewDelivery(ev, convoy.NewID()),
	}
	stored := []*convoy.Delivery{ds[0], ds[2]}
	res, err := s.InsertEvent(e.ctx, ev, ds)
	require.NoError(t, err)
	require.True(t, res.Inserted)
	requireEqual(t, ev, res.Event)
	requireEqual(t, byID(stored...), byID(res.Deliveries...))
	requireEqual(t, newest(stored...), e.deliveries(convoy.DeliveryQuery{EventID: ev.ID}))
	e.requireGone("", ds[1].ID, ds[3].ID)
	require.Equal(t, map[convoy.DeliveryStatus]int{convoy.DeliveryScheduled: 2}, e.deliveryStats())
	got := e.claim(convoy.ClaimRequest{Now: t0})
	require.ElementsMatch(t, ids(stored), ids(got))

	// A repeat answers with what the first call stored.
	res, err = s.InsertEvent(e.ctx, ev, ds)
	require.NoError(t, err)
	require.False(t, res.Inserted)
	require.ElementsMatch(t, ids(stored), ids(res.Deliveries))

	// Every endpoint gone: the event is stored without deliveries.
	lone := NewEvent(e.app.ID, t0)
	res, err = s.InsertEvent(e.ctx, lone, []*convoy.Delivery{NewDelivery(lone, removed.ID)})
	require.NoError(t, err)
	require.True(t, res.Inserted)
	require.Empty(t, res.Deliveries)
	gotEv, err := s.GetEvent(e.ctx, lone.ID)
	require.NoError(t, err)
	requireEqual(t, lone, gotEv)

	// An unknown app is an error, with or without deliveries.
	orphan := NewEvent(convoy.NewID(), t0)
	_, err = s.InsertEvent(e.ctx, orphan, []*convoy.Delivery{NewDelivery(orphan, removed.ID)})
	e.requireNotFound(err)
	_, err = s.GetEvent(e.ctx, orphan.ID)
	e.requireNotFound(err)
}

func testInsertDuplicates(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ev, ds := e.send(t0, e.ep)
	before := snapshot(t, s)

	dupEvent := NewEvent(e.app.ID, t0)
	dupEvent.ID = ev.ID
	dupEvent.Type = "invoice.voided"
	_, err := s.InsertEvent(e.ctx, dupEvent, []*convoy.Delivery{NewDelivery(dupEvent, e.ep.ID)})
	require.ErrorIs(t, err, convoy.ErrDuplicate)
	requireUnchanged(t, s, before)

	ev2 := NewEvent(e.app.ID, t0)
	fresh := NewDelivery(ev2, e.ep.ID)
	reused := NewDelivery(ev2, e.ep.ID)
	reused.ID = ds[0].ID
	_, err = s.InsertEvent(e.ctx, ev2, []*convoy.Delivery{fresh, reused})
	require.ErrorIs(t, err, convoy.ErrDuplicate)
	e.requireGone(ev2.ID, fresh.ID)
	requireUnchanged(t, s, before)

	ev3 := NewEvent(e.app.ID, t0)
	a := NewDelivery(ev3, e.ep.ID)
	b := NewDelivery(ev3, e.ep.ID)
	b.ID = a.ID
	_, err = s.InsertEvent(e.ctx, ev3, []*convoy.Delivery{a, b})
	require.ErrorIs(t, err, convoy.ErrDuplicate, "two deliveries with one ID in one call")
	e.requireGone(ev3.ID, a.ID)
	requireUnchanged(t, s, before)
}

func testInsertAtomic(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ep2 := e.newEndpoint(e.app.ID)
	other := e.newApp()
	otherEp := e.newEndpoint(other.ID)
	before := snapshot(t, s)
	ev := NewEvent(e.app.ID, t0)
	ev.IdempotencyKey = "charge-7"
	ds := []*convoy.Delivery{NewDelivery(ev, e.ep.ID), NewDelivery(ev, ep2.ID), NewDelivery(ev, otherEp.ID)}
	_, err := s.InsertEvent(e.ctx, ev, ds)
	require.ErrorIs(t, err, convoy.ErrInvalid, "a delivery to another app's endpoint")
	e.requireGone(ev.ID, ids(ds)...)
	require.Empty(t, e.deliveries(convoy.DeliveryQuery{EndpointID: e.ep.ID}))
	requireUnchanged(t, s, before, ev.ID)
	_, ok := e.nextDue()
	require.False(t, ok)

	// Nothing was kept, not even the idempotency key.
	e.insert(ev, ds[:2]...)
	requireEqual(t, newest(ds[:2]...), e.deliveries(convoy.DeliveryQuery{EventID: ev.ID}))
}

func testInsertInvalid(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	other := e.newApp()
	otherEp := e.newEndpoint(other.ID)
	before := snapshot(t, s)

	// Each case starts from a valid event with one valid delivery.
	cases := []struct {
		name string
		mod  func(ev *convoy.Event, ds []*convoy.Delivery) (*convoy.Event, []*convoy.Delivery)
		want error
	}{
		{"nil event", func(*convoy.Event, []*convoy.Delivery) (*convoy.Event, []*convoy.Delivery) {
			return nil, nil
		}, convoy.ErrInvalid},
		{"empty event ID", func(ev *convoy.Event, ds []*convoy.Delivery) (*convoy.Event, []*convoy.Delivery) {
			ev.ID = ""
			return ev, ds
		}, convoy.ErrInvalidID},
		{"malformed app ID", func(ev *convoy.Event, _ []*convoy.Delivery) (*convoy.Event, []*convoy.Delivery) {
			ev.AppID = "acme"
			return ev, nil
		}, convoy.ErrInvalidID},
		{"unknown app", func(ev *convoy.Event, _ []*convoy.Delivery) (*convoy.Event, []*convoy.Delivery) {
			ev.AppID = convoy.NewID()
			return ev, nil
		}, convoy.ErrNotFound},
		{"bad type", func(ev *convoy.Event, ds []*convoy.Delivery) (*convoy.Event, []*convoy.Delivery) {
			ev.Type = "invoice paid"
			return ev, ds
		}, convoy.ErrInvalidEventType},
		{"invalid JSON", func(ev *convoy.Event, ds []*convoy.Delivery) (*convoy.Event, []*convoy.Delivery) {
			ev.Data = json.RawMessage(`{"invoice":`)
			return ev, ds
		}, convoy.ErrInvalidJSON},
		{"empty data", func(ev *convoy.Event, ds []*convoy.Delivery) (*convoy.Event, []*convoy.Delivery) {
			ev.Data = nil
			return ev, ds
		}, convoy.ErrInvalidJSON},
		{"long idempotency key", func(ev *convoy.Event, ds []*convoy.Delivery) (*convoy.Event, []*convoy.Delivery) {
			ev.IdempotencyKey = strings.Repeat("k", 257)
			return ev, ds
		}, convoy.ErrTooLong},
		{"long trace parent", func(ev *convoy.Event, ds []*convoy.Delivery) (*convoy.Event, []*convoy.Delivery) {
			ev.TraceParent = strings.Repeat("0", convoy.MaxTraceParentLen+1)
			return ev, ds
		}, convoy.ErrTooLong},
		{"trace parent with a line break", func(ev *convoy.Event, ds []*convoy.Delivery) (*convoy.Event, []*convoy.Delivery) {
			ev.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nX-Injected: 1"
			return ev, ds
		}, convoy.ErrInvalid},
		{"nil delivery", func(ev *convoy.Event, ds []*convoy.Delivery) (*convoy.Event, []*convoy.Delivery) {
			return ev, append(ds, nil)
		}, convoy.ErrInvalid},
		{"malformed delivery ID", func(ev *convoy.Event, ds []*convoy.Delivery) (*convoy.Event, []*convoy.Delivery) {
			d := NewDelivery(ev, e.ep.ID)
			d.ID = "dlv_1"
			return ev, append(ds, d)
		}, convoy.ErrInvalidID},
		{"unknown delivery status", func(ev *convoy.Event, ds []*convoy.Delivery) (*convoy.Event, []*convoy.Delivery) {
			d := NewDelivery(ev, e.ep.ID)
			d.Status = "Queued"
			return ev, append(ds, d)
		}, convoy.ErrInvalidStatus},
		{"delivery inserted Processing", func(ev *convoy.Event, ds []*convoy.Delivery) (*convoy.Event, []*convoy.Delivery) {
			d := NewDelivery(ev, e.ep.ID)
			d.Status = convoy.DeliveryProcessing
			d.LeaseID, d.LeaseOwner, d.LeaseExpiresAt = convoy.NewID(), "intruder", t0.Add(time.Hour)
			return ev, append(ds, d)
		}, convoy.ErrInvalidStatus},
		{"delivery of another event", func(ev *convoy.Event, ds []*convoy.Delivery) (*convoy.Event, []*convoy.Delivery) {
			d := NewDelivery(ev, e.ep.ID)
			d.EventID = convoy.NewID()
			return ev, append(ds, d)
		}, convoy.ErrInvalid},
		{"delivery of another app", func(ev *convoy.Event, ds []*convoy.Delivery) (*convoy.Event, []*convoy.Delivery) {
			d := NewDelivery(ev, e.ep.ID)
			d.AppID = other.ID
			return ev, append(ds, d)
		}, convoy.ErrInvalid},
		{"delivery to another app's endpoint", func(ev *convoy.Event, ds []*convoy.Delivery) (*convoy.Event, []*convoy.Delivery) {
			return ev, append(ds, NewDelivery(ev, otherEp.ID))
		}, convoy.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := NewEvent(e.app.ID, t0)
			ev.IdempotencyKey = "k-" + c.name
			valid := NewDelivery(ev, e.ep.ID)
			ev, ds := c.mod(ev, []*convoy.Delivery{valid})
			_, err := s.InsertEvent(e.ctx, ev, ds)
			require.ErrorIs(t, err, c.want)
			_, err = s.GetDelivery(e.ctx, valid.ID)
			require.ErrorIs(t, err, convoy.ErrNotFound)
			if ev != nil && convoy.ValidateID("", ev.ID) == nil {
				_, err = s.GetEvent(e.ctx, ev.ID)
				require.ErrorIs(t, err, convoy.ErrNotFound)
			}
		})
	}
	requireUnchanged(t, s, before)
}

func testIdempotency(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	first := NewEvent(e.app.ID, t0)
	first.IdempotencyKey = "order-42"
	ep2 := e.newEndpoint(e.app.ID)
	firstDs := []*convoy.Delivery{NewDelivery(first, e.ep.ID), NewDelivery(first, ep2.ID)}
	e.insert(first, firstDs...)
	// The first event's deliveries come back as they are now.
	e.finish(firstDs[0], t0, convoy.DeliverySuccess, 200)
	firstDs[0] = e.get(firstDs[0].ID)
	before := snapshot(t, s)

	again := NewEvent(e.app.ID, t0.Add(time.Minute))
	again.IdempotencyKey = first.IdempotencyKey
	again.Type = "order.created"
	d := NewDelivery(again, e.ep.ID)
	res, err := s.InsertEvent(e.ctx, again, []*convoy.Delivery{d})
	require.NoError(t, err)
	require.False(t, res.Inserted)
	requireEqual(t, first, res.Event, "the first event comes back")
	requireEqual(t, byID(firstDs...), byID(res.Deliveries...), "with its deliveries")
	e.requireGone(again.ID, d.ID)
	requireUnchanged(t, s, before)

	// The same event sent twice (a retried Send) is answered the same way.
	res, err = s.InsertEvent(e.ctx, first, []*convoy.Delivery{NewDelivery(first, e.ep.ID)})
	require.NoError(t, err)
	require.False(t, res.Inserted)
	requireEqual(t, first, res.Event)
	requireEqual(t, byID(firstDs...), byID(res.Deliveries...))
	requireUnchanged(t, s, before)

	// A repeat without deliveries still returns the first event's.
	res, err = s.InsertEvent(e.ctx, again, nil)
	require.NoError(t, err)
	require.False(t, res.Inserted)
	requireEqual(t, byID(firstDs...), byID(res.Deliveries...))
	requireUnchanged(t, s, before)

	// Keys are per app.
	other := e.newApp()
	otherEp := e.newEndpoint(other.ID)
	theirs := NewEvent(other.ID, t0)
	theirs.IdempotencyKey = first.IdempotencyKey
	e.insert(theirs, NewDelivery(theirs, otherEp.ID))

	// No key, no deduplication.
	for range 2 {
		e.insert(NewEvent(e.app.ID, t0))
	}
}

func testListDeliveries(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ep2 := e.newEndpoint(e.app.ID)
	var evs []*convoy.Event
	var mine, theirs []*convoy.Delivery
	for i := range 3 {
		ev, ds := e.send(t0.Add(time.Duration(i)*time.Second), e.ep, ep2)
		evs = append(evs, ev)
		mine, theirs = append(mine, ds[0]), append(theirs, ds[1])
	}
	_, disc := e.sendStatus(t0, convoy.DeliveryDiscarded, e.ep)
	mine = append(mine, disc[0])
	e.finish(mine[0], t0.Add(time.Minute), convoy.DeliverySuccess, 200)
	e.finish(mine[1], t0.Add(time.Minute), convoy.DeliveryFailure, 500)
	for i, d := range mine {
		mine[i] = e.get(d.ID)
	}
	for i, d := range theirs {
		theirs[i] = e.get(d.ID)
	}
	requireEqual(t, newest(mine[0], theirs[0]), e.deliveries(convoy.DeliveryQuery{EventID: evs[0].ID}))
	requireEqual(t, newest(mine...), e.deliveries(convoy.DeliveryQuery{EndpointID: e.ep.ID}))
	requireEqual(t, newest(theirs...), e.deliveries(convoy.DeliveryQuery{EndpointID: ep2.ID}))
	requireEqual(t, []*convoy.Delivery{mine[0]}, e.deliveries(convoy.DeliveryQuery{EventID: evs[0].ID, EndpointID: e.ep.ID}))
	requireEqual(t, []*convoy.Delivery{mine[3]}, e.deliveries(convoy.DeliveryQuery{
		EndpointID: e.ep.ID, Statuses: []convoy.DeliveryStatus{convoy.DeliveryDiscarded},
	}))
	requireEqual(t, newest(mine[1], mine[3]), e.deliveries(convoy.DeliveryQuery{
		EndpointID: e.ep.ID, Statuses: []convoy.DeliveryStatus{convoy.DeliveryFailure, convoy.DeliveryDiscarded},
	}))
	require.Empty(t, e.deliveries(convoy.DeliveryQuery{
		EventID: evs[1].ID, Statuses: []convoy.DeliveryStatus{convoy.DeliveryRetry},
	}))

	for _, limit := range []int{1, 2, 3} {
		got := idPages(t, deliveryID, func(c string) ([]*convoy.Delivery, string, error) {
			return s.ListDeliveries(e.ctx, convoy.DeliveryQuery{EndpointID: e.ep.ID}, convoy.Page{Cursor: c, Limit: limit})
		})
		requirePaged(t, got, newestIDs(mine...), limit)
		got = idPages(t, deliveryID, func(c string) ([]*convoy.Delivery, string, error) {
			return s.ListDeliveries(e.ctx, convoy.DeliveryQuery{
				EndpointID: e.ep.ID,
				Statuses:   []convoy.DeliveryStatus{convoy.DeliveryScheduled, convoy.DeliveryDiscarded},
			}, convoy.Page{Cursor: c, Limit: limit})
		})
		requirePaged(t, got, newestIDs(mine[2], mine[3]), limit)
	}

	_, _, err := s.ListDeliveries(e.ctx, convoy.DeliveryQuery{}, convoy.Page{})
	require.ErrorIs(t, err, convoy.ErrInvalid, "a query needs an event or an endpoint")
	for _, id := range badIDs[1:] {
		_, _, err = s.ListDeliveries(e.ctx, convoy.DeliveryQuery{EventID: id}, convoy.Page{})
		require.ErrorIs(t, err, convoy.ErrInvalidID, "EventID %q", id)
		_, _, err = s.ListDeliveries(e.ctx, convoy.DeliveryQuery{EndpointID: id}, convoy.Page{})
		require.ErrorIs(t, err, convoy.ErrInvalidID, "EndpointID %q", id)
	}
}

func testPageSizes(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ev := NewEvent(e.app.ID, t0)
	ds := make([]*convoy.Delivery, convoy.MaxPageSize+1)
	for i := range ds {
		ds[i] = NewDelivery(ev, e.ep.ID)
	}
	e.insert(ev, ds...)
	want := newestIDs(ds...)

	for _, q := range []convoy.DeliveryQuery{{EventID: ev.ID}, {EndpointID: e.ep.ID}} {
		for _, c := range []struct {
			limit, size int
		}{
			{0, convoy.DefaultPageSize},
			{-1, convoy.DefaultPageSize},
			{17, 17},
			{convoy.MaxPageSize + 1, convoy.MaxPageSize},
			{1 << 30, convoy.MaxPageSize},
		} {
			got, next, err := s.ListDeliveries(e.ctx, q, convoy.Page{Limit: c.limit})
			require.NoError(t, err)
			require.Equal(t, want[:c.size], ids(got), "Limit %d", c.limit)
			require.NotEmpty(t, next, "Limit %d", c.limit)
			require.Equal(t, c.size, convoy.Page{Limit: c.limit}.Size())
		}
		got := idPages(t, deliveryID, func(c string) ([]*convoy.Delivery, string, error) {
			return s.ListDeliveries(e.ctx, q, convoy.Page{Cursor: c, Limit: convoy.MaxPageSize})
		})
		requirePaged(t, got, want, convoy.MaxPageSize)
		got = idPages(t, deliveryID, func(c string) ([]*convoy.Delivery, string, error) {
			return s.ListDeliveries(e.ctx, q, convoy.Page{Cursor: c, Limit: 64})
		})
		requirePaged(t, got, want, 64)
	}
}

func testListAttempts(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	d := e.one(t0)
	got, next, err := s.ListAttempts(e.ctx, d.ID, convoy.Page{})
	require.NoError(t, err)
	require.Empty(t, got)
	require.Empty(t, next)

	// IDs in reverse order, to tell ordering by Number from ordering by ID.
	attemptIDs := []string{convoy.NewID(), convoy.NewID(), convoy.NewID()}
	var want []*convoy.Attempt
	now := t0
	for i, st := range []convoy.DeliveryStatus{convoy.DeliveryRetry, convoy.DeliveryRetry, convoy.DeliverySuccess} {
		c := e.claimOne(now)
		code := 500
		if st == convoy.DeliverySuccess {
			code = 200
		}
		a := NewAttempt(c, i+1, code, now)
		a.ID = attemptIDs[len(attemptIDs)-1-i]
		want = append(want, a)
		e.record(convoy.Transition{
			DeliveryID: c.ID, LeaseID: c.LeaseID, Now: now, Attempt: a,
			Status: st, NextAttemptAt: now.Add(time.Minute),
		})
		now = now.Add(time.Minute)
	}
	slices.Reverse(want) // newest first
	requireEqual(t, want, e.attempts(d.ID))
	got, next, err = s.ListAttempts(e.ctx, d.ID, convoy.Page{Limit: 2})
	require.NoError(t, err)
	requireEqual(t, want[:2], got)
	require.NotEmpty(t, next)
	got, next, err = s.ListAttempts(e.ctx, d.ID, convoy.Page{Cursor: next, Limit: 2})
	require.NoError(t, err)
	requireEqual(t, want[2:], got)
	require.Empty(t, next)

	_, _, err = s.ListAttempts(e.ctx, convoy.NewID(), convoy.Page{})
	e.requireNotFound(err)
	for _, id := range badIDs {
		_, _, err = s.ListAttempts(e.ctx, id, convoy.Page{})
		require.ErrorIs(t, err, convoy.ErrInvalidID, "ListAttempts(%q)", id)
	}
}

// testEventTraceParent: an event's trace context is stored with it and
// read back by every call that returns the event (an attempt made later,
// by another process, links to its Send through it); an event without
// one reads as empty, and a repeated idempotency key answers with the
// first event's.
func testEventTraceParent(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	var want []*convoy.Event
	if ci, ok := s.(convoy.ClaimingInserter); ok {
		// First, while nothing else is due, so that it leases.
		leased := NewEvent(e.app.ID, t0)
		leased.TraceParent = tp
		res, got := e.insertClaim(ci, convoy.ClaimRequest{Now: t0, Limit: 1}, leased, NewDelivery(leased, e.ep.ID))
		require.Len(t, got, 1)
		require.Equal(t, tp, res.Event.TraceParent)
		stored, err := s.GetEvent(e.ctx, leased.ID)
		require.NoError(t, err)
		requireEqual(t, leased, stored)
		want = append(want, leased)
	}

	ev := NewEvent(e.app.ID, t0.Add(time.Second))
	ev.TraceParent = tp
	ev.IdempotencyKey = "traced-1"
	e.insert(ev, NewDelivery(ev, e.ep.ID))
	plain := NewEvent(e.app.ID, t0.Add(2*time.Second))
	e.insert(plain, NewDelivery(plain, e.ep.ID))
	want = append([]*convoy.Event{plain, ev}, want...)

	got, err := s.GetEvent(e.ctx, ev.ID)
	require.NoError(t, err)
	require.Equal(t, tp, got.TraceParent)
	requireEqual(t, ev, got)
	got, err = s.GetEvent(e.ctx, plain.ID)
	require.NoError(t, err)
	require.Empty(t, got.TraceParent)

	listed, _, err := s.ListEvents(e.ctx, convoy.EventQuery{AppID: e.app.ID}, convoy.Page{})
	require.NoError(t, err)
	requireEqual(t, want, listed)

	repeat := NewEvent(e.app.ID, t0.Add(3*time.Second))
	repeat.IdempotencyKey = ev.IdempotencyKey
	repeat.TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	res, err := s.InsertEvent(e.ctx, repeat, []*convoy.Delivery{NewDelivery(repeat, e.ep.ID)})
	require.NoError(t, err)
	require.False(t, res.Inserted)
	require.Equal(t, tp, res.Event.TraceParent, "the first event's")
}
