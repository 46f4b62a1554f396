package storetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

// The ListEvents cases: newest first by (CreatedAt, ID), every filter and
// their combinations, pagination, and the indexes kept through deletions.

// Event types of the ListEvents fixtures.
const (
	typePaid    = "invoice.paid"
	typeCreated = "invoice.created"
)

// event inserts an event without deliveries of app appID, of type typ,
// created at `at`, with the ID id (a fresh one when empty).
func (e *env) event(appID, typ string, at time.Time, id string) *convoy.Event {
	e.t.Helper()
	ev := NewEvent(appID, at)
	ev.Type = typ
	if id != "" {
		ev.ID = id
	}
	e.insert(ev)
	return ev
}

// listEvents follows ListEvents to the end with pages of limit and
// returns the pages of event IDs.
func (e *env) listEvents(q convoy.EventQuery, limit int) [][]string {
	e.t.Helper()
	return idPages(e.t, eventID, func(c string) ([]*convoy.Event, string, error) {
		return e.s.ListEvents(e.ctx, q, convoy.Page{Cursor: c, Limit: limit})
	})
}

func eventID(ev *convoy.Event) string { return ev.ID }

// newestEvents returns the IDs of evs in list order: CreatedAt descending,
// then ID descending.
func newestEvents(evs ...*convoy.Event) []string {
	if len(evs) == 0 {
		return nil
	}
	evs = slices.Clone(evs)
	slices.SortFunc(evs, func(a, b *convoy.Event) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// eventFixture is two apps with events of two types, with creation times
// that tie in threes and IDs whose order is not the creation order.
type eventFixture struct {
	*env
	a, b, idle *convoy.App
	all        []*convoy.Event
}

// eventTimes is how many distinct creation times the fixture uses; three
// events share each.
const eventTimes = 5

func newEventFixture(t *testing.T, s convoy.Store) *eventFixture {
	e := setup(t, s)
	f := &eventFixture{env: e, a: e.app, b: e.newApp(), idle: e.newApp()}
	n := 3 * eventTimes
	ids := make([]string, n)
	for i := range ids {
		ids[i] = convoy.NewID()
	}
	slices.Sort(ids)
	slices.Reverse(ids) // the newest event gets the smallest ID
	order := rand.Perm(n)
	for _, i := range order {
		app := []*convoy.App{f.a, f.b}[i%2]
		typ := []string{typePaid, typeCreated}[(i/2)%2]
		at := t0.Add(time.Duration(i/3) * time.Minute)
		f.all = append(f.all, e.event(app.ID, typ, at, ids[i]))
	}
	return f
}

// want returns the IDs of the fixture's events q selects, in list order.
func (f *eventFixture) want(q convoy.EventQuery) []string {
	var sel []*convoy.Event
	for _, ev := range f.all {
		if (q.AppID == "" || ev.AppID == q.AppID) &&
			(q.Type == "" || ev.Type == q.Type) &&
			(q.CreatedFrom.IsZero() || !ev.CreatedAt.Before(q.CreatedFrom)) &&
			(q.CreatedTo.IsZero() || ev.CreatedAt.Before(q.CreatedTo)) {
			sel = append(sel, ev)
		}
	}
	return newestEvents(sel...)
}

// testListEventsNewestFirst: events list by CreatedAt descending, then ID
// descending, whatever the order they were inserted in.
func testListEventsNewestFirst(t *testing.T, s convoy.Store) {
	f := newEventFixture(t, s)
	want := newestEvents(f.all...)
	got := f.listEvents(convoy.EventQuery{}, convoy.MaxPageSize)
	require.Equal(t, [][]string{want}, got)

	// Against the IDs alone the order differs: the creation time rules.
	byID := slices.Clone(want)
	slices.Sort(byID)
	slices.Reverse(byID)
	require.NotEqual(t, byID, want, "the fixture must tell the two orders apart")

	list, next, err := s.ListEvents(f.ctx, convoy.EventQuery{}, convoy.Page{})
	require.NoError(t, err)
	require.Empty(t, next)
	for i, ev := range list {
		requireEqual(t, f.byID(ev.ID), ev, "event %d", i)
	}
}

func (f *eventFixture) byID(id string) *convoy.Event {
	for _, ev := range f.all {
		if ev.ID == id {
			return ev
		}
	}
	return nil
}

// testListEventsPagination: pages follow each other with no duplicate
// and no gap, each full but the last.
func testListEventsPagination(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	var evs []*convoy.Event
	for i := range 5 {
		evs = append(evs, e.event(e.app.ID, typePaid, t0.Add(time.Duration(i)*time.Second), ""))
	}
	want := newestEvents(evs...)
	got := e.listEvents(convoy.EventQuery{}, 2)
	require.Equal(t, [][]string{want[0:2], want[2:4], want[4:5]}, got, "5 events in pages of 2")
	for _, limit := range []int{1, 3, 4, 5, 6, 100} {
		requirePaged(t, e.listEvents(convoy.EventQuery{}, limit), want, limit)
		requirePaged(t, e.listEvents(convoy.EventQuery{AppID: e.app.ID}, limit), want, limit)
		requirePaged(t, e.listEvents(convoy.EventQuery{Type: typePaid}, limit), want, limit)
		requirePaged(t, e.listEvents(convoy.EventQuery{AppID: e.app.ID, Type: typePaid}, limit), want, limit)
	}

	// Limit 0 is DefaultPageSize: one page here.
	list, next, err := s.ListEvents(e.ctx, convoy.EventQuery{}, convoy.Page{})
	require.NoError(t, err)
	require.Equal(t, want, eventIDs(list))
	require.Empty(t, next)
}

// eventIDs returns the IDs of evs.
func eventIDs(evs []*convoy.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// testListEventsFilters: every combination of app, type and time range
// selects exactly the matching events, in order, page after page.
func testListEventsFilters(t *testing.T, s convoy.Store) {
	f := newEventFixture(t, s)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	ranges := []struct {
		name     string
		from, to time.Time
	}{
		{"any time", time.Time{}, time.Time{}},
		{"from, inclusive", at(1), time.Time{}},
		{"to, exclusive", time.Time{}, at(2)},
		{"from and to", at(1), at(3)},
		{"from = to", at(2), at(2)},
		{"from after to", at(3), at(1)},
		{"between times", at(1).Add(time.Second), at(3).Add(-time.Second)},
		{"after the last", at(eventTimes), time.Time{}},
		{"before the first", time.Time{}, at(0)},
		{"around everything", at(-60), at(60)},
	}
	apps := map[string]string{"any app": "", "app a": f.a.ID, "app b": f.b.ID, "app without events": f.idle.ID}
	types := map[string]string{"any type": "", "paid": typePaid, "created": typeCreated, "type never sent": "order.refunded"}
	nonEmpty := 0
	for appName, appID := range apps {
		for typeName, typ := range types {
			for _, r := range ranges {
				q := convoy.EventQuery{AppID: appID, Type: typ, CreatedFrom: r.from, CreatedTo: r.to}
				name := fmt.Sprintf("%s, %s, %s", appName, typeName, r.name)
				want := f.want(q)
				if len(want) > 0 {
					nonEmpty++
				}
				got := f.listEvents(q, 2)
				var flat []string
				for _, p := range got {
					flat = append(flat, p...)
				}
				require.Equal(t, want, flat, name)
				requirePaged(t, got, want, 2)
			}
		}
	}
	require.Greater(t, nonEmpty, 50, "the fixture must make most queries select something")
}

// testListEventsCursor: a cursor keeps its place while events are
// inserted before and after it and while the event it names is deleted.
func testListEventsCursor(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	// Five events a minute apart, each but the second newest with a
	// pending delivery, so that DeleteBefore can remove that one alone.
	var evs []*convoy.Event
	for i := range 5 {
		at := t0.Add(time.Duration(i) * time.Minute)
		if i == 3 {
			evs = append(evs, e.event(e.app.ID, typePaid, at, ""))
			continue
		}
		ev, _ := e.send(at, e.ep)
		evs = append(evs, ev)
	}
	want := newestEvents(evs...)
	first, cursor, err := s.ListEvents(e.ctx, convoy.EventQuery{}, convoy.Page{Limit: 2})
	require.NoError(t, err)
	require.Equal(t, want[:2], eventIDs(first))
	require.NotEmpty(t, cursor)

	e.send(t0.Add(time.Hour), e.ep)                           // newer: before the cursor
	oldest, _ := e.send(t0.Add(-time.Hour), e.ep)             // older: after it
	n, err := s.DeleteBefore(e.ctx, t0.Add(4*time.Minute), 0) // the event the cursor names
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = s.GetEvent(e.ctx, evs[3].ID)
	e.requireNotFound(err)

	var rest []string
	for c := cursor; c != ""; {
		list, next, err := s.ListEvents(e.ctx, convoy.EventQuery{}, convoy.Page{Cursor: c, Limit: 2})
		require.NoError(t, err)
		rest = append(rest, eventIDs(list)...)
		c = next
	}
	require.Equal(t, append(slices.Clone(want[2:]), oldest.ID), rest)
}

// testListEventsAfterDeletes: events removed by DeleteBefore and DeleteApp
// are gone from every index: by time, app, type, and app and type.
func testListEventsAfterDeletes(t *testing.T, s convoy.Store) {
	f := newEventFixture(t, s)
	queries := func(appIDs ...string) []convoy.EventQuery {
		qs := []convoy.EventQuery{{}, {Type: typePaid}, {Type: typeCreated}, {CreatedFrom: t0.Add(time.Minute)}}
		for _, id := range appIDs {
			qs = append(qs,
				convoy.EventQuery{AppID: id},
				convoy.EventQuery{AppID: id, Type: typePaid},
				convoy.EventQuery{AppID: id, Type: typeCreated, CreatedTo: t0.Add(3 * time.Minute)})
		}
		return qs
	}
	check := func(msg string, appIDs ...string) {
		t.Helper()
		for _, q := range queries(appIDs...) {
			require.Equal(t, f.want(q), slices.Concat(f.listEvents(q, 4)...), "%s: %+v", msg, q)
		}
	}
	check("before any deletion", f.a.ID, f.b.ID)

	// The events of the first two minutes go (none has a delivery).
	cutoff := t0.Add(2 * time.Minute)
	n, err := s.DeleteBefore(f.ctx, cutoff, 0)
	require.NoError(t, err)
	require.Equal(t, 6, n)
	f.all = slices.DeleteFunc(f.all, func(ev *convoy.Event) bool { return ev.CreatedAt.Before(cutoff) })
	check("after DeleteBefore", f.a.ID, f.b.ID)

	require.NoError(t, s.DeleteApp(f.ctx, f.a.ID))
	f.all = slices.DeleteFunc(f.all, func(ev *convoy.Event) bool { return ev.AppID == f.a.ID })
	check("after DeleteApp", f.b.ID)

	// An app created again under the deleted one's ID starts empty.
	again := NewApp()
	again.ID = f.a.ID
	require.NoError(t, s.CreateApp(f.ctx, again))
	for _, q := range queries(again.ID) {
		require.Equal(t, f.want(q), slices.Concat(f.listEvents(q, 4)...), "after re-creating the app: %+v", q)
	}
	fresh := f.event(again.ID, typePaid, t0, "")
	require.Equal(t, [][]string{{fresh.ID}}, f.listEvents(convoy.EventQuery{AppID: again.ID}, 4))
}

// testListEventsInvalid: malformed filters are refused.
func testListEventsInvalid(t *testing.T, s convoy.Store) {
	e := setup(t, s)
	for _, id := range badIDs[1:] {
		_, _, err := s.ListEvents(e.ctx, convoy.EventQuery{AppID: id}, convoy.Page{})
		require.ErrorIs(t, err, convoy.ErrInvalidID, "AppID %q", id)
	}
	_, _, err := s.ListEvents(e.ctx, convoy.EventQuery{Type: "invoice paid"}, convoy.Page{})
	require.ErrorIs(t, err, convoy.ErrInvalid, "a malformed type")
}
