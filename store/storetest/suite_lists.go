package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

// listDeliveries follows ListDeliveries to the end with pages of limit
// and returns the pages of delivery IDs.
func (e *env) listDeliveries(q convoy.DeliveryQuery, limit int) [][]string {
	e.t.Helper()
	return idPages(e.t, deliveryID, func(c string) ([]*convoy.Delivery, string, error) {
		return e.s.ListDeliveries(e.ctx, q, convoy.Page{Cursor: c, Limit: limit})
	})
}

// testListDeliveriesByApp: DeliveryQuery.AppID selects an app's
// deliveries across its endpoints, newest first, alone or with the other
// fields, and never another app's.
func testListDeliveriesByApp(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	ep2 := e.newEndpoint(e.app.ID)
	other := e.newApp()
	otherEp := e.newEndpoint(other.ID)

	var mine, onEp1, onEp2 []*convoy.Delivery
	var evs []*convoy.Event
	for i := range 3 {
		at := t0.Add(time.Duration(i) * time.Second)
		ev, ds := e.send(at, e.ep, ep2)
		evs = append(evs, ev)
		mine = append(mine, ds...)
		onEp1, onEp2 = append(onEp1, ds[0]), append(onEp2, ds[1])
		e.send(at, otherEp) // another app's, interleaved
	}
	e.finish(onEp1[0], t0.Add(time.Minute), convoy.DeliverySuccess, 200)
	e.finish(onEp2[1], t0.Add(time.Minute), convoy.DeliveryFailure, 500)
	_, disc := e.sendStatus(t0.Add(time.Minute), convoy.DeliveryDiscarded, ep2)
	mine = append(mine, disc[0])
	onEp2 = append(onEp2, disc[0])
	for _, ds := range [][]*convoy.Delivery{mine, onEp1, onEp2} {
		for i, d := range ds {
			ds[i] = e.get(d.ID)
		}
	}

	app := convoy.DeliveryQuery{AppID: e.app.ID}
	requireEqual(t, newest(mine...), e.deliveries(app))
	require.Equal(t, [][]string{newestIDs(mine...)[:2], newestIDs(mine...)[2:4], newestIDs(mine...)[4:6], newestIDs(mine...)[6:]},
		e.listDeliveries(app, 2), "7 deliveries in pages of 2")
	for _, limit := range []int{1, 3, 7, 100} {
		requirePaged(t, e.listDeliveries(app, limit), newestIDs(mine...), limit)
	}

	failedOrDiscarded := []convoy.DeliveryStatus{convoy.DeliveryFailure, convoy.DeliveryDiscarded}
	for _, c := range []struct {
		name string
		q    convoy.DeliveryQuery
		want []*convoy.Delivery
	}{
		{"statuses", convoy.DeliveryQuery{AppID: e.app.ID, Statuses: failedOrDiscarded}, []*convoy.Delivery{onEp2[1], onEp2[3]}},
		{"one status", convoy.DeliveryQuery{AppID: e.app.ID, Statuses: []convoy.DeliveryStatus{convoy.DeliveryScheduled}},
			[]*convoy.Delivery{onEp1[1], onEp1[2], onEp2[0], onEp2[2]}},
		{"a status repeated", convoy.DeliveryQuery{AppID: e.app.ID, Statuses: []convoy.DeliveryStatus{convoy.DeliverySuccess, convoy.DeliverySuccess}},
			[]*convoy.Delivery{onEp1[0]}},
		{"endpoint", convoy.DeliveryQuery{AppID: e.app.ID, EndpointID: ep2.ID}, onEp2},
		{"endpoint and statuses", convoy.DeliveryQuery{AppID: e.app.ID, EndpointID: ep2.ID, Statuses: failedOrDiscarded}, []*convoy.Delivery{onEp2[1], onEp2[3]}},
		{"event", convoy.DeliveryQuery{AppID: e.app.ID, EventID: evs[1].ID}, []*convoy.Delivery{onEp1[1], onEp2[1]}},
		{"event, endpoint and status", convoy.DeliveryQuery{
			AppID: e.app.ID, EventID: evs[1].ID, EndpointID: ep2.ID, Statuses: []convoy.DeliveryStatus{convoy.DeliveryFailure},
		}, []*convoy.Delivery{onEp2[1]}},
		{"another app's endpoint", convoy.DeliveryQuery{AppID: e.app.ID, EndpointID: otherEp.ID}, nil},
		{"another app's event", convoy.DeliveryQuery{AppID: other.ID, EventID: evs[0].ID}, nil},
		{"status with none", convoy.DeliveryQuery{AppID: e.app.ID, Statuses: []convoy.DeliveryStatus{convoy.DeliveryRetry}}, nil},
	} {
		requireEqual(t, newest(c.want...), e.deliveries(c.q), c.name)
		requirePaged(t, e.listDeliveries(c.q, 1), newestIDs(c.want...), 1)
	}
	otherDs := e.deliveries(convoy.DeliveryQuery{AppID: other.ID})
	require.Len(t, otherDs, 3)
	for _, d := range otherDs {
		require.Equal(t, other.ID, d.AppID)
	}

	_, _, err := s.ListDeliveries(e.ctx, convoy.DeliveryQuery{Statuses: failedOrDiscarded}, convoy.Page{})
	require.ErrorIs(t, err, convoy.ErrInvalid, "statuses alone select nothing")
	for _, id := range badIDs[1:] {
		_, _, err = s.ListDeliveries(e.ctx, convoy.DeliveryQuery{AppID: id}, convoy.Page{})
		require.ErrorIs(t, err, convoy.ErrInvalidID, "AppID %q", id)
	}

	// The app's index follows deletions.
	require.NoError(t, s.DeleteEndpoint(e.ctx, ep2.ID))
	requireEqual(t, newest(onEp1...), e.deliveries(app))
	require.NoError(t, s.DeleteApp(e.ctx, other.ID))
	again := NewApp()
	again.ID = other.ID
	require.NoError(t, s.CreateApp(e.ctx, again))
	require.Empty(t, e.deliveries(convoy.DeliveryQuery{AppID: other.ID}), "a re-created app starts with no deliveries")
}

// testListDeliveriesCursor: a cursor keeps its place while the
// deliveries listed change status, and while newer ones arrive.
func testListDeliveriesCursor(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	for _, byApp := range []bool{true, false} {
		// A fresh app each round, so the rounds do not see each other.
		app := e.newApp()
		ep1 := e.newEndpoint(app.ID)
		ep2 := e.newEndpoint(app.ID)
		q := convoy.DeliveryQuery{EndpointID: ep1.ID}
		if byApp {
			q = convoy.DeliveryQuery{AppID: app.ID}
		}
		var listed []*convoy.Delivery
		for i := range 4 {
			_, ds := e.send(t0.Add(time.Duration(i)*time.Second), ep1, ep2)
			listed = append(listed, ds[0])
			if byApp {
				listed = append(listed, ds[1])
			}
		}
		want := newestIDs(listed...)
		first, cursor, err := s.ListDeliveries(e.ctx, q, convoy.Page{Limit: 2})
		require.NoError(t, err)
		require.Equal(t, want[:2], ids(first))
		require.NotEmpty(t, cursor)

		// Deliveries on both sides of the cursor change status, and newer
		// ones arrive.
		now := t0.Add(time.Minute)
		e.finish(e.get(want[0]), now, convoy.DeliveryRetry, 500)
		e.finish(e.get(want[len(want)-1]), now, convoy.DeliverySuccess, 200)
		c := e.take(want[2], now)
		e.send(t0.Add(time.Hour), ep1, ep2)

		rest := collect(t, func(c string) ([]*convoy.Delivery, string, error) {
			if c == "" {
				c = cursor
			}
			return s.ListDeliveries(e.ctx, q, convoy.Page{Cursor: c, Limit: 2})
		})
		require.Equal(t, want[2:], ids(rest), "%+v", q)
		require.NoError(t, s.Release(e.ctx, c.ID, c.LeaseID))
	}
}

// testListAttemptsNewestFirst: attempts list by Number descending, so the
// last attempt is one call with Limit 1, and pages follow each other.
func testListAttemptsNewestFirst(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	d := e.one(t0)
	var made []*convoy.Attempt
	now := t0
	for range 5 {
		made = append(made, e.finish(d, now, convoy.DeliveryRetry, 500))
		now = now.Add(2 * time.Hour)
	}
	last, next, err := s.ListAttempts(e.ctx, d.ID, convoy.Page{Limit: 1})
	require.NoError(t, err)
	requireEqual(t, []*convoy.Attempt{made[4]}, last, "the last attempt")
	require.NotEmpty(t, next)
	require.Equal(t, 5, last[0].Number)

	var want []string
	for i := len(made) - 1; i >= 0; i-- {
		want = append(want, made[i].ID)
	}
	attemptID := func(a *convoy.Attempt) string { return a.ID }
	fetch := func(limit int) func(string) ([]*convoy.Attempt, string, error) {
		return func(c string) ([]*convoy.Attempt, string, error) {
			return s.ListAttempts(e.ctx, d.ID, convoy.Page{Cursor: c, Limit: limit})
		}
	}
	require.Equal(t, [][]string{want[0:2], want[2:4], want[4:5]}, idPages(t, attemptID, fetch(2)), "5 attempts in pages of 2")
	for _, limit := range []int{1, 3, 5, 100} {
		requirePaged(t, idPages(t, attemptID, fetch(limit)), want, limit)
	}
}
