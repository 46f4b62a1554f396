package bolt_test

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/bolt"
	"github.com/convoykit/convoy/store/storetest"
	"github.com/stretchr/testify/require"
	bbolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newStore opens a store on a fresh file, closed when the test ends.
func newStore(tb testing.TB) *bolt.Store {
	tb.Helper()
	s, err := bolt.Open(filepath.Join(tb.TempDir(), "convoy.db"), nil)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = s.Close() })
	tb.Cleanup(func() { require.NoError(tb, bolt.CheckIndexes(s)) }) // runs first
	return s
}

// TestStore runs the conformance suite on stores in temporary files.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) convoy.Store { return newStore(t) })
}

// BenchmarkInsert runs the shared insert benchmark (events/s from 1 and 64
// goroutines).
func BenchmarkInsert(b *testing.B) {
	storetest.BenchmarkInsert(b, func(b *testing.B) convoy.Store { return newStore(b) })
}

// BenchmarkClaim runs the shared claim benchmark with backlogs of 1,000
// and 1,000,000 deliveries not yet due.
func BenchmarkClaim(b *testing.B) {
	storetest.BenchmarkClaim(b, func(b *testing.B) convoy.Store { return newStore(b) })
}

// BenchmarkClaimEvents: see storetest.BenchmarkClaimEvents.
func BenchmarkClaimEvents(b *testing.B) {
	storetest.BenchmarkClaimEvents(b, func(b *testing.B) convoy.Store { return newStore(b) })
}

// BenchmarkClaimOrdered runs the shared claim benchmark beside an ordered
// endpoint with 1,000 and 100,000 deliveries held back behind its head.
func BenchmarkClaimOrdered(b *testing.B) {
	storetest.BenchmarkClaimOrdered(b, func(b *testing.B) convoy.Store { return newStore(b) })
}

// t0 is "now" in these tests.
var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// fixture is a store with one app and one endpoint.
type fixture struct {
	s   *bolt.Store
	app *convoy.App
	ep  *convoy.Endpoint
}

func setup(t *testing.T, s *bolt.Store) fixture {
	t.Helper()
	ctx := context.Background()
	f := fixture{s: s, app: storetest.NewApp()}
	require.NoError(t, s.CreateApp(ctx, f.app))
	f.ep = storetest.NewEndpoint(f.app.ID)
	require.NoError(t, s.CreateEndpoint(ctx, f.ep))
	return f
}

// delivery returns a Scheduled delivery of ev to the endpoint, due at due.
func delivery(ev *convoy.Event, endpointID string, due time.Time) *convoy.Delivery {
	d := storetest.NewDelivery(ev, endpointID)
	d.NextAttemptAt = due
	return d
}

func ids(ds []*convoy.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// openAt opens the store file at path, closed when the test ends.
func openAt(t *testing.T, path string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	t.Cleanup(func() { require.NoError(t, bolt.CheckIndexes(s)) }) // runs first
	return s
}

// TestReopen writes every kind of record in every queue state, closes the
// file, and finds all of it, indexes and leases included, after opening it
// again.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "convoy.db")
	f := setup(t, openAt(t, path))
	s := f.s
	dead := storetest.NewEndpoint(f.app.ID)
	dead.Status = convoy.EndpointInactive
	require.NoError(t, s.CreateEndpoint(ctx, dead))

	ev := storetest.NewEvent(f.app.ID, t0)
	ev.IdempotencyKey = "order-42"
	scheduled := delivery(ev, f.ep.ID, t0.Add(time.Hour))
	processing := delivery(ev, f.ep.ID, t0)
	retry := delivery(ev, f.ep.ID, t0.Add(time.Second))
	success := delivery(ev, f.ep.ID, t0.Add(2*time.Second))
	discarded := delivery(ev, dead.ID, t0)
	discarded.Status = convoy.DeliveryDiscarded
	_, err := s.InsertEvent(ctx, ev, []*convoy.Delivery{scheduled, processing, retry, success, discarded})
	require.NoError(t, err)

	claim := func(now time.Time, want *convoy.Delivery) *convoy.Delivery {
		t.Helper()
		got, err := s.Claim(ctx, convoy.ClaimRequest{Now: now, Limit: 1, Owner: "node-1", Lease: time.Minute})
		require.NoError(t, err)
		require.Equal(t, []string{want.ID}, ids(got))
		return got[0]
	}
	held := claim(t0, processing) // stays leased
	c := claim(t0.Add(time.Second), retry)
	retryAttempt := storetest.NewAttempt(c, 1, 503, t0)
	_, err = s.Record(ctx, convoy.Transition{DeliveryID: c.ID, LeaseID: c.LeaseID, Now: t0, Attempt: retryAttempt,
		Status: convoy.DeliveryRetry, NextAttemptAt: t0.Add(30 * time.Minute)})
	require.NoError(t, err)
	c = claim(t0.Add(2*time.Second), success)
	_, err = s.Record(ctx, convoy.Transition{DeliveryID: c.ID, LeaseID: c.LeaseID, Now: t0,
		Attempt: storetest.NewAttempt(c, 1, 200, t0), Status: convoy.DeliverySuccess})
	require.NoError(t, err)

	type snapshot struct {
		apps       []*convoy.App
		endpoints  []*convoy.Endpoint
		event      *convoy.Event
		deliveries []*convoy.Delivery
		attempts   map[string][]*convoy.Attempt
		nextDue    time.Time
	}
	take := func(s convoy.Store) snapshot {
		t.Helper()
		var (
			sn  snapshot
			err error
			ok  bool
		)
		sn.apps, _, err = s.ListApps(ctx, convoy.Page{})
		require.NoError(t, err)
		sn.endpoints, _, err = s.ListEndpoints(ctx, f.app.ID, convoy.Page{})
		require.NoError(t, err)
		sn.event, err = s.GetEvent(ctx, ev.ID)
		require.NoError(t, err)
		sn.deliveries, _, err = s.ListDeliveries(ctx, convoy.DeliveryQuery{EventID: ev.ID}, convoy.Page{})
		require.NoError(t, err)
		sn.attempts = map[string][]*convoy.Attempt{}
		for _, d := range sn.deliveries {
			sn.attempts[d.ID], _, err = s.ListAttempts(ctx, d.ID, convoy.Page{})
			require.NoError(t, err)
		}
		sn.nextDue, ok, err = s.NextDue(ctx)
		require.NoError(t, err)
		require.True(t, ok)
		return sn
	}
	before := take(s)
	require.Len(t, before.apps, 1)
	require.Len(t, before.endpoints, 2)
	require.Len(t, before.deliveries, 5)
	require.NoError(t, s.Close())

	s = openAt(t, path)
	after := take(s)
	require.Equal(t, before, after)
	require.Equal(t, []*convoy.Attempt{retryAttempt}, after.attempts[retry.ID])
	require.True(t, after.nextDue.Equal(t0.Add(time.Minute)), "the held lease expires first")
	for _, d := range after.deliveries {
		if d.ID == held.ID {
			require.Equal(t, held, d, "lease owner, ID and expiry are kept")
		}
	}

	// The idempotency key still answers with the first event.
	again := storetest.NewEvent(f.app.ID, t0.Add(time.Hour))
	again.IdempotencyKey = "order-42"
	res, err := s.InsertEvent(ctx, again, nil)
	require.NoError(t, err)
	require.False(t, res.Inserted)
	require.Equal(t, ev, res.Event)
	require.ElementsMatch(t, ids(after.deliveries), ids(res.Deliveries))

	// Fencing still holds: a stranger's lease is refused.
	_, err = s.Record(ctx, convoy.Transition{DeliveryID: held.ID, LeaseID: convoy.NewID(), Now: t0, Status: convoy.DeliverySuccess})
	require.ErrorIs(t, err, convoy.ErrLeaseLost)

	// The due indexes survived: claiming far ahead returns exactly the
	// pending deliveries, earliest due first, with and without capacity.
	late := t0.Add(24 * time.Hour)
	due, err := s.Claim(ctx, convoy.ClaimRequest{Now: late, Limit: 10, Owner: "node-2", Lease: time.Minute, PerEndpoint: 2})
	require.NoError(t, err)
	require.Equal(t, []string{processing.ID, retry.ID}, ids(due), "expired lease at +1m, retry at +30m")
	due, err = s.Claim(ctx, convoy.ClaimRequest{Now: late, Limit: 10, Owner: "node-2", Lease: time.Minute})
	require.NoError(t, err)
	require.Equal(t, []string{scheduled.ID}, ids(due))

	// The holder from before the restart lost its lease to node-2.
	_, err = s.Record(ctx, convoy.Transition{DeliveryID: held.ID, LeaseID: held.LeaseID, Now: late, Status: convoy.DeliverySuccess})
	require.ErrorIs(t, err, convoy.ErrLeaseLost)
}

// TestConcurrentInsertsSurviveReopen has 64 goroutines insert events at
// once, through the committer's shared transactions, and finds every one
// after reopening the file.
func TestConcurrentInsertsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "convoy.db")
	f := setup(t, openAt(t, path))

	const goroutines, perG = 64, 20
	events := make([][]string, goroutines)
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perG {
				ev := storetest.NewEvent(f.app.ID, t0)
				if _, err := f.s.InsertEvent(ctx, ev, []*convoy.Delivery{delivery(ev, f.ep.ID, t0)}); err != nil {
					errs[g] = err
					return
				}
				events[g] = append(events[g], ev.ID)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, f.s.Close())

	s := openAt(t, path)
	for _, evs := range events {
		require.Len(t, evs, perG)
		for _, id := range evs {
			_, err := s.GetEvent(ctx, id)
			require.NoError(t, err)
			ds, _, err := s.ListDeliveries(ctx, convoy.DeliveryQuery{EventID: id}, convoy.Page{})
			require.NoError(t, err)
			require.Len(t, ds, 1)
		}
	}
	var all []*convoy.Delivery
	for cursor := ""; ; {
		page, next, err := s.ListDeliveries(ctx, convoy.DeliveryQuery{EndpointID: f.ep.ID}, convoy.Page{Cursor: cursor, Limit: 300})
		require.NoError(t, err)
		all = append(all, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	require.Len(t, all, goroutines*perG)
	claimed, err := s.Claim(ctx, convoy.ClaimRequest{Now: t0, Limit: 2 * goroutines * perG, Owner: "w", Lease: time.Minute})
	require.NoError(t, err)
	require.Len(t, claimed, goroutines*perG, "every delivery is in the due index")
}

// TestClaimParksFullEndpoint checks that an endpoint at its cap does not
// hide the work of others behind a long due backlog: Claim passes over and
// parks at most MaxClaimSkip of its entries per call, after which the
// endpoint costs one step while it is full, and its parked work comes back
// in due order once it is not.
func TestClaimParksFullEndpoint(t *testing.T) {
	ctx := context.Background()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "convoy.db"), &bolt.Options{MaxClaimSkip: 100})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	t.Cleanup(func() { require.NoError(t, bolt.CheckIndexes(s)) })
	f := setup(t, s)
	other := storetest.NewEndpoint(f.app.ID)
	require.NoError(t, s.CreateEndpoint(ctx, other))

	const busy = 1000
	ev := storetest.NewEvent(f.app.ID, t0)
	ds := make([]*convoy.Delivery, busy)
	for i := range ds {
		ds[i] = delivery(ev, f.ep.ID, t0.Add(time.Duration(i)*time.Millisecond))
	}
	_, err = s.InsertEvent(ctx, ev, ds)
	require.NoError(t, err)
	ev2 := storetest.NewEvent(f.app.ID, t0)
	late := delivery(ev2, other.ID, t0.Add(time.Hour))
	_, err = s.InsertEvent(ctx, ev2, []*convoy.Delivery{late})
	require.NoError(t, err)

	now := t0.Add(2 * time.Hour)
	claim := func(limit, perEndpoint, inFlight int) []*convoy.Delivery {
		t.Helper()
		got, err := s.Claim(ctx, convoy.ClaimRequest{Now: now, Limit: limit, Owner: "w", Lease: time.Minute,
			PerEndpoint: perEndpoint, InFlight: map[string]int{f.ep.ID: inFlight}})
		require.NoError(t, err)
		require.NoError(t, bolt.CheckIndexes(s))
		return got
	}

	// Two of the busy endpoint fit; the Claim then passes over 100 more.
	first := claim(10, 3, 1)
	require.Equal(t, ids(ds[:2]), ids(first))
	// Each Claim parks up to 100 more, until the other endpoint's delivery
	// is reached.
	var got []*convoy.Delivery
	calls := 0
	for len(got) == 0 {
		got = claim(10, 3, 3)
		calls++
		require.LessOrEqual(t, calls, busy/100+1)
	}
	require.Equal(t, []string{late.ID}, ids(got))
	require.Empty(t, claim(10, 3, 3), "the full endpoint is stepped over")

	// Its parked work is due first, in due order, merged with the rest.
	at, ok, err := s.NextDue(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, at.Equal(ds[2].NextAttemptAt))
	got = claim(5, 4, 2)
	require.Equal(t, ids(ds[2:4]), ids(got), "two more fit the cap")
	got = append(got, claim(3, 0, 0)...)
	require.Equal(t, ids(ds[2:7]), ids(got))

	// A parked delivery whose lease expired can still be recorded by its
	// holder, released, and deleted with its endpoint.
	expired := now.Add(2 * time.Minute)
	now = expired
	got = claim(10, 1, 1)
	require.Equal(t, []string{late.ID}, ids(got), "the busy endpoint's expired leases are parked too")
	_, err = s.Record(ctx, convoy.Transition{DeliveryID: first[0].ID, LeaseID: first[0].LeaseID, Now: expired,
		Attempt: storetest.NewAttempt(first[0], 1, 200, expired), Status: convoy.DeliverySuccess})
	require.NoError(t, err)
	require.NoError(t, s.Release(ctx, first[1].ID, first[1].LeaseID))
	require.NoError(t, bolt.CheckIndexes(s))
	require.NoError(t, s.DeleteEndpoint(ctx, f.ep.ID))
	at, ok, err = s.NextDue(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, at.Equal(got[0].LeaseExpiresAt), "only the other endpoint's delivery is left")
	now = at
	require.Equal(t, []string{late.ID}, ids(claim(10, 1, 0)))
}

// TestParkedSurviveReopen checks that deliveries parked by a Claim are
// found again, in due order, after reopening the file.
func TestParkedSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "convoy.db")
	f := setup(t, openAt(t, path))
	ev := storetest.NewEvent(f.app.ID, t0)
	ds := []*convoy.Delivery{
		delivery(ev, f.ep.ID, t0.Add(-3*time.Second)),
		delivery(ev, f.ep.ID, t0.Add(-2*time.Second)),
		delivery(ev, f.ep.ID, t0.Add(-time.Second)),
	}
	_, err := f.s.InsertEvent(ctx, ev, ds)
	require.NoError(t, err)
	got, err := f.s.Claim(ctx, convoy.ClaimRequest{Now: t0, Limit: 10, Owner: "w", Lease: time.Minute,
		PerEndpoint: 1, InFlight: map[string]int{f.ep.ID: 1}})
	require.NoError(t, err)
	require.Empty(t, got, "all three parked")
	require.NoError(t, f.s.Close())

	s := openAt(t, path)
	at, ok, err := s.NextDue(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, at.Equal(ds[0].NextAttemptAt))
	got, err = s.Claim(ctx, convoy.ClaimRequest{Now: t0, Limit: 10, Owner: "w", Lease: time.Minute})
	require.NoError(t, err)
	require.Equal(t, ids(ds), ids(got))
}

// TestStats checks the counts, due work and oldest due time that Stats
// reports, parked deliveries included, before and after reopening.
func TestStats(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "convoy.db")
	f := setup(t, openAt(t, path))
	st, err := f.s.Stats(ctx, t0)
	require.NoError(t, err)
	require.Equal(t, convoy.StoreStats{
		Deliveries: map[convoy.DeliveryStatus]int{},
		Endpoints:  map[convoy.EndpointStatus]int{convoy.EndpointActive: 1},
	}, st)

	dead := storetest.NewEndpoint(f.app.ID)
	dead.Status = convoy.EndpointInactive
	require.NoError(t, f.s.CreateEndpoint(ctx, dead))
	ev := storetest.NewEvent(f.app.ID, t0)
	ds := make([]*convoy.Delivery, 6)
	for i := range ds {
		ds[i] = delivery(ev, f.ep.ID, t0.Add(time.Duration(i-3)*time.Minute)) // 4 due by t0
	}
	discarded := delivery(ev, dead.ID, t0)
	discarded.Status = convoy.DeliveryDiscarded
	_, err = f.s.InsertEvent(ctx, ev, append(ds, discarded))
	require.NoError(t, err)

	// One claimed (its lease runs to t0+1m), three parked, two waiting.
	got, err := f.s.Claim(ctx, convoy.ClaimRequest{Now: t0, Limit: 10, Owner: "w", Lease: time.Minute, PerEndpoint: 1})
	require.NoError(t, err)
	require.Equal(t, ids(ds[:1]), ids(got))
	want := convoy.StoreStats{
		Deliveries: map[convoy.DeliveryStatus]int{
			convoy.DeliveryScheduled: 5, convoy.DeliveryProcessing: 1, convoy.DeliveryDiscarded: 1,
		},
		Endpoints: map[convoy.EndpointStatus]int{convoy.EndpointActive: 1, convoy.EndpointInactive: 1},
		DueNow:    3,
		OldestDue: ds[1].NextAttemptAt,
	}
	check := func(s *bolt.Store, now time.Time, want convoy.StoreStats) {
		t.Helper()
		st, err := s.Stats(ctx, now)
		require.NoError(t, err)
		require.True(t, want.OldestDue.Equal(st.OldestDue), "oldest due %v, want %v", st.OldestDue, want.OldestDue)
		st.OldestDue = want.OldestDue
		require.Equal(t, want, st)
	}
	check(f.s, t0, want)
	check(f.s, t0.Add(59*time.Second), want)
	want.DueNow = 5 // the lease expires at +1m, ds[4] is due then too
	check(f.s, t0.Add(time.Minute), want)
	want.DueNow = 6
	check(f.s, t0.Add(2*time.Minute), want)

	_, err = f.s.Record(ctx, convoy.Transition{DeliveryID: got[0].ID, LeaseID: got[0].LeaseID, Now: t0,
		Attempt: storetest.NewAttempt(got[0], 1, 410, t0), Status: convoy.DeliveryFailure,
		EndpointStatus: func(convoy.Endpoint) convoy.EndpointStatus { return convoy.EndpointInactive }})
	require.NoError(t, err)
	want.Deliveries = map[convoy.DeliveryStatus]int{
		convoy.DeliveryScheduled: 5, convoy.DeliveryFailure: 1, convoy.DeliveryDiscarded: 1,
	}
	want.Endpoints = map[convoy.EndpointStatus]int{convoy.EndpointInactive: 2}
	want.DueNow = 5
	check(f.s, t0.Add(time.Hour), want)
	require.NoError(t, f.s.Close())

	s := openAt(t, path)
	check(s, t0.Add(time.Hour), want)
	require.NoError(t, s.DeleteApp(ctx, f.app.ID))
	check(s, t0.Add(time.Hour), convoy.StoreStats{
		Deliveries: map[convoy.DeliveryStatus]int{},
		Endpoints:  map[convoy.EndpointStatus]int{},
	})
}

// TestStatsDueNowBounded checks that Stats stops counting due work at
// convoy.MaxDueCount.
func TestStatsDueNowBounded(t *testing.T) {
	ctx := context.Background()
	f := setup(t, newStore(t))
	ev := storetest.NewEvent(f.app.ID, t0)
	ds := make([]*convoy.Delivery, convoy.MaxDueCount+5)
	for i := range ds {
		ds[i] = delivery(ev, f.ep.ID, t0)
	}
	_, err := f.s.InsertEvent(ctx, ev, ds)
	require.NoError(t, err)
	st, err := f.s.Stats(ctx, t0)
	require.NoError(t, err)
	require.Equal(t, convoy.MaxDueCount, st.DueNow)
	require.Equal(t, convoy.MaxDueCount+5, st.Deliveries[convoy.DeliveryScheduled])
}

// TestOpenLocked checks that a second Open of a file in use fails once its
// Timeout has passed.
func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "convoy.db")
	openAt(t, path)
	_, err := bolt.Open(path, &bolt.Options{Timeout: 100 * time.Millisecond})
	require.ErrorIs(t, err, bolt.ErrLocked)
}

// TestOpenSchemaVersion checks that Open refuses a file written with an
// unknown schema version, or a bbolt file that is not a convoy store.
func TestOpenSchemaVersion(t *testing.T) {
	t.Run("Newer", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "convoy.db")
		s, err := bolt.Open(path, nil)
		require.NoError(t, err)
		require.NoError(t, s.Close())

		db, err := bbolt.Open(path, 0o600, nil)
		require.NoError(t, err)
		require.NoError(t, db.Update(func(tx *bbolt.Tx) error {
			v := make([]byte, 8)
			binary.BigEndian.PutUint64(v, bolt.SchemaVersion+1)
			return tx.Bucket([]byte("meta")).Put([]byte("schema"), v)
		}))
		require.NoError(t, db.Close())

		_, err = bolt.Open(path, nil)
		require.ErrorIs(t, err, bolt.ErrSchemaVersion)
	})
	t.Run("Foreign", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "other.db")
		db, err := bbolt.Open(path, 0o600, nil)
		require.NoError(t, err)
		require.NoError(t, db.Update(func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucket([]byte("someone-else"))
			return err
		}))
		require.NoError(t, db.Close())

		_, err = bolt.Open(path, nil)
		require.ErrorIs(t, err, bolt.ErrSchemaVersion)
	})
}

// TestBatchFailuresIsolated sends inserts from many goroutines, half of
// them duplicates, so that batches mix failing and succeeding operations:
// each gets its own outcome, and the failures leave nothing behind.
func TestBatchFailuresIsolated(t *testing.T) {
	ctx := context.Background()
	f := setup(t, newStore(t))
	first := storetest.NewEvent(f.app.ID, t0)
	_, err := f.s.InsertEvent(ctx, first, nil)
	require.NoError(t, err)

	const n = 200
	var wg sync.WaitGroup
	results := make([]error, n)
	events := make([]*convoy.Event, n)
	for i := range n {
		ev := storetest.NewEvent(f.app.ID, t0)
		if i%2 == 1 {
			ev.ID = first.ID
		}
		events[i] = ev
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = f.s.InsertEvent(ctx, ev, []*convoy.Delivery{delivery(ev, f.ep.ID, t0)})
		}()
	}
	wg.Wait()
	for i, err := range results {
		if i%2 == 1 {
			require.ErrorIs(t, err, convoy.ErrDuplicate)
			continue
		}
		require.NoError(t, err)
		ds, _, err := f.s.ListDeliveries(ctx, convoy.DeliveryQuery{EventID: events[i].ID}, convoy.Page{})
		require.NoError(t, err)
		require.Len(t, ds, 1)
	}
	ds, _, err := f.s.ListDeliveries(ctx, convoy.DeliveryQuery{EventID: first.ID}, convoy.Page{})
	require.NoError(t, err)
	require.Empty(t, ds, "failed inserts left no delivery behind")
	claimed, err := f.s.Claim(ctx, convoy.ClaimRequest{Now: t0, Limit: n, Owner: "w", Lease: time.Minute})
	require.NoError(t, err)
	require.Len(t, claimed, n/2, "nor any due-index entry")
}

// TestOpenOptionsInvalid checks that negative options are refused.
func TestOpenOptionsInvalid(t *testing.T) {
	_, err := bolt.Open(filepath.Join(t.TempDir(), "x.db"), &bolt.Options{MaxBatchSize: -1})
	require.ErrorIs(t, err, convoy.ErrInvalidConfig)
}
