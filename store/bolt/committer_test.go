package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/storetest"
	"github.com/stretchr/testify/require"
	bbolt "go.etcd.io/bbolt"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "convoy.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// dueDeliveries stores one app with one endpoint and an event with n
// deliveries to it, the i-th due at at(i).
func dueDeliveries(t *testing.T, s *Store, now time.Time, n int, at func(i int) time.Time) (*convoy.Endpoint, []*convoy.Delivery) {
	t.Helper()
	ctx := context.Background()
	app := storetest.NewApp()
	require.NoError(t, s.CreateApp(ctx, app))
	ep := storetest.NewEndpoint(app.ID)
	require.NoError(t, s.CreateEndpoint(ctx, ep))
	ev := storetest.NewEvent(app.ID, now)
	ds := make([]*convoy.Delivery, n)
	for i := range ds {
		ds[i] = storetest.NewDelivery(ev, ep.ID)
		ds[i].NextAttemptAt = at(i)
	}
	_, err := s.InsertEvent(ctx, ev, ds)
	require.NoError(t, err)
	return ep, ds
}

// holdCommitter makes the committer run an operation that blocks until the
// returned function is called, so that the operations queued meanwhile
// share the next batch.
func holdCommitter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.write(context.Background(), func(*wtx) error {
			close(started)
			<-unblock
			return nil
		})
	}()
	<-started
	return func() {
		close(unblock)
		require.NoError(t, <-done)
	}
}

// waitQueued yields until n operations wait in the queue.
func waitQueued(s *Store, n int) {
	for {
		s.mu.Lock()
		l := len(s.queue)
		s.mu.Unlock()
		if l >= n {
			return
		}
		runtime.Gosched()
	}
}

func getKey(t *testing.T, s *Store, k string) []byte {
	t.Helper()
	var v []byte
	require.NoError(t, s.db.View(func(tx *bbolt.Tx) error {
		v = clone(tx.Bucket(bucketMeta).Get([]byte(k)))
		return nil
	}))
	return v
}

// TestBatchRollsBackHalfDoneOperation queues, in one batch, operations
// that succeed, one that fails before writing, one that fails after
// writing and one that panics after writing: only the successful writes
// are kept, and each caller gets its own outcome.
func TestBatchRollsBackHalfDoneOperation(t *testing.T) {
	s := openTest(t)
	release := holdCommitter(t, s)

	errBoom := errors.New("boom")
	type result struct {
		err      error
		panicked any
	}
	kinds := []string{"ok-1", "clean-fail", "dirty-fail", "ok-2", "dirty-panic", "ok-3"}
	results := make([]result, len(kinds))
	var wg sync.WaitGroup
	for i, kind := range kinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { results[i].panicked = recover() }()
			results[i].err = s.write(context.Background(), func(w *wtx) error {
				switch kind {
				case "clean-fail":
					return errBoom
				case "dirty-fail":
					if err := w.put(bucketMeta, []byte(kind), []byte("x")); err != nil {
						return err
					}
					return errBoom
				case "dirty-panic":
					if err := w.put(bucketMeta, []byte(kind), []byte("x")); err != nil {
						return err
					}
					panic("kaboom")
				}
				return w.put(bucketMeta, []byte(kind), []byte("x"))
			})
		}()
		waitQueued(s, i+1)
	}
	release()
	wg.Wait()

	for i, kind := range kinds {
		switch kind {
		case "clean-fail", "dirty-fail":
			require.ErrorIs(t, results[i].err, errBoom, kind)
			require.Nil(t, getKey(t, s, kind), kind)
		case "dirty-panic":
			require.Equal(t, "kaboom", results[i].panicked)
			require.Nil(t, getKey(t, s, kind))
		default:
			require.NoError(t, results[i].err, kind)
			require.Nil(t, results[i].panicked, kind)
			require.Equal(t, []byte("x"), getKey(t, s, kind), kind)
		}
	}
}

// TestWriteContextCanceled checks that a caller whose context ends while
// its write waits gets ctx.Err(), and that the committer then skips the
// write.
func TestWriteContextCanceled(t *testing.T) {
	s := openTest(t)
	release := holdCommitter(t, s)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.write(ctx, func(w *wtx) error {
			return w.put(bucketMeta, []byte("canceled"), []byte("x"))
		})
	}()
	waitQueued(s, 1)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	release()

	// A later write commits after the canceled one was dropped.
	require.NoError(t, s.write(context.Background(), func(w *wtx) error {
		return w.put(bucketMeta, []byte("later"), []byte("x"))
	}))
	require.Nil(t, getKey(t, s, "canceled"))
}

// TestCloseRunsQueuedWrites checks that Close lets queued writes finish,
// then refuses new calls.
func TestCloseRunsQueuedWrites(t *testing.T) {
	s := openTest(t)
	path := s.db.Path()
	release := holdCommitter(t, s)

	done := make(chan error, 1)
	go func() {
		done <- s.write(context.Background(), func(w *wtx) error {
			return w.put(bucketMeta, []byte("queued"), []byte("x"))
		})
	}()
	waitQueued(s, 1)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	release()
	require.NoError(t, <-done)
	require.NoError(t, <-closed)

	ctx := context.Background()
	require.ErrorIs(t, s.Close(), convoy.ErrClosed)
	_, err := s.GetApp(ctx, convoy.NewID())
	require.ErrorIs(t, err, convoy.ErrClosed)
	require.ErrorIs(t, s.DeleteApp(ctx, convoy.NewID()), convoy.ErrClosed)

	s, err = Open(path, nil)
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, []byte("x"), getKey(t, s, "queued"))
}

// TestBatchRecordsShareEndpoint queues, in one batch, records for
// deliveries of one endpoint mixed with operations that fail before and
// after writing and with other operations on the endpoint: each sees the
// health and status the earlier ones left, and the endpoint ends as if
// every successful operation had run alone.
func TestBatchRecordsShareEndpoint(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	ep, ds := dueDeliveries(t, s, now, 5, func(int) time.Time { return now })
	claimed, err := s.Claim(ctx, convoy.ClaimRequest{Now: now, Limit: len(ds), Owner: "w", Lease: time.Minute})
	require.NoError(t, err)
	require.Len(t, claimed, len(ds))

	errBoom := errors.New("boom")
	failed := func(d *convoy.Delivery, status func(convoy.Endpoint) convoy.EndpointStatus) convoy.Transition {
		return convoy.Transition{
			DeliveryID: d.ID, LeaseID: d.LeaseID, Now: now,
			Attempt: storetest.NewAttempt(d, 1, 500, now),
			Status:  convoy.DeliveryRetry, NextAttemptAt: now.Add(time.Hour),
			EndpointStatus: status,
		}
	}
	var seen []int // ConsecutiveFailures as each EndpointStatus saw it
	keep := func(ep convoy.Endpoint) convoy.EndpointStatus {
		seen = append(seen, ep.Health.ConsecutiveFailures)
		return ep.Status
	}
	type step struct {
		name string
		run  func() error
		want error
	}
	steps := []step{
		{"record 0", func() error { _, err := s.Record(ctx, failed(claimed[0], keep)); return err }, nil},
		{"record 1", func() error { _, err := s.Record(ctx, failed(claimed[1], keep)); return err }, nil},
		{"record 2, bad status", func() error {
			_, err := s.Record(ctx, failed(claimed[2], func(convoy.Endpoint) convoy.EndpointStatus { return "bogus" }))
			return err
		}, convoy.ErrInvalidStatus},
		{"update", func() error {
			_, err := s.UpdateEndpoint(ctx, ep.ID, func(e *convoy.Endpoint) error {
				if e.Health.ConsecutiveFailures != 2 {
					return fmt.Errorf("update saw %d failures", e.Health.ConsecutiveFailures)
				}
				e.Status = convoy.EndpointPending
				return nil
			})
			return err
		}, nil},
		{"record 3, to inactive", func() error {
			_, err := s.Record(ctx, failed(claimed[3], func(e convoy.Endpoint) convoy.EndpointStatus {
				seen = append(seen, e.Health.ConsecutiveFailures)
				if e.Status != convoy.EndpointPending {
					return "bogus"
				}
				return convoy.EndpointInactive
			}))
			return err
		}, nil},
		{"dirty fail", func() error {
			return s.write(ctx, func(w *wtx) error {
				if err := w.put(bucketMeta, []byte("dirty"), []byte("x")); err != nil {
					return err
				}
				return errBoom
			})
		}, errBoom},
		{"record 4", func() error { _, err := s.Record(ctx, failed(claimed[4], keep)); return err }, nil},
	}
	release := holdCommitter(t, s)
	errs := make([]error, len(steps))
	var wg sync.WaitGroup
	for i, st := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = st.run()
		}()
		waitQueued(s, i+1)
	}
	release()
	wg.Wait()
	for i, st := range steps {
		if st.want == nil {
			require.NoError(t, errs[i], st.name)
		} else {
			require.ErrorIs(t, errs[i], st.want, st.name)
		}
	}
	// The batch ran twice (the dirty failure aborted the first run); the
	// second run saw 1, 2, (2 for the bad status), 3, 4 failures.
	require.Equal(t, []int{1, 2, 3, 4}, seen[len(seen)-4:])

	got, err := s.GetEndpoint(ctx, ep.ID)
	require.NoError(t, err)
	require.Equal(t, 4, got.Health.ConsecutiveFailures)
	require.Equal(t, convoy.EndpointInactive, got.Status)
	require.NoError(t, CheckIndexes(s))
	stats, err := s.Stats(ctx, now)
	require.NoError(t, err)
	require.Equal(t, 1, stats.Endpoints[convoy.EndpointInactive])
	require.Zero(t, stats.Endpoints[convoy.EndpointActive])
	require.Zero(t, stats.Endpoints[convoy.EndpointPending])
	d, err := s.GetDelivery(ctx, claimed[2].ID)
	require.NoError(t, err)
	require.Equal(t, convoy.DeliveryProcessing, d.Status, "the failed record changed nothing")
}

// TestBatchClaimTakesWhatItParked runs two Claims in one batch: the first
// finds the endpoint full and parks its due entries, the second has room
// and takes one of them. The entry leaves the parked list with its claim:
// bbolt reports a key put with a nil value in the same transaction as
// missing, so an index entry written that way would stay behind, and the
// next Claim would find it out of step with its leased delivery.
func TestBatchClaimTakesWhatItParked(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	ep, ds := dueDeliveries(t, s, now, 3, func(i int) time.Time { return now.Add(time.Duration(i-5) * time.Second) })

	claim := func(perEndpoint int) ([]*convoy.Delivery, error) {
		return s.Claim(ctx, convoy.ClaimRequest{
			Now: now, Limit: 10, Owner: "w", Lease: time.Minute,
			PerEndpoint: perEndpoint, InFlight: map[string]int{ep.ID: 1},
		})
	}
	release := holdCommitter(t, s)
	var full, room []*convoy.Delivery
	var errFull, errRoom error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); full, errFull = claim(1) }()
	waitQueued(s, 1)
	go func() { defer wg.Done(); room, errRoom = claim(2) }()
	waitQueued(s, 2)
	release()
	wg.Wait()
	require.NoError(t, errFull)
	require.NoError(t, errRoom)
	require.Empty(t, full, "the endpoint is full for the first claim")
	require.Len(t, room, 1, "the second claim has room for one")
	require.Equal(t, ds[0].ID, room[0].ID, "earliest first")
	require.NoError(t, CheckIndexes(s))

	// The parked entries left are the two not claimed, and a claim with
	// room takes them, not the leased one again.
	rest, err := claim(10)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{ds[1].ID, ds[2].ID}, []string{rest[0].ID, rest[1].ID})
	require.NoError(t, CheckIndexes(s))
}

// TestBatchInsertForNewEndpoint sends to an endpoint created in the same
// batch: the event gets its delivery, not an error saying the endpoint
// belongs to another app.
func TestBatchInsertForNewEndpoint(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	app := storetest.NewApp()
	require.NoError(t, s.CreateApp(ctx, app))
	ep := storetest.NewEndpoint(app.ID)
	ev := storetest.NewEvent(app.ID, now)
	d := storetest.NewDelivery(ev, ep.ID)

	release := holdCommitter(t, s)
	var errCreate, errInsert error
	var res convoy.InsertResult
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); errCreate = s.CreateEndpoint(ctx, ep) }()
	waitQueued(s, 1)
	go func() { defer wg.Done(); res, errInsert = s.InsertEvent(ctx, ev, []*convoy.Delivery{d}) }()
	waitQueued(s, 2)
	release()
	wg.Wait()
	require.NoError(t, errCreate)
	require.NoError(t, errInsert)
	require.Len(t, res.Deliveries, 1)
	require.NoError(t, CheckIndexes(s))
}
