package bolt

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/storetest"
	"github.com/stretchr/testify/require"
	bbolt "go.etcd.io/bbolt"
)

// txid returns the ID of the last committed write transaction of s's
// file: it changes with every commit, empty ones included.
func txid(t *testing.T, s *Store) int {
	t.Helper()
	var id int
	require.NoError(t, s.db.View(func(tx *bbolt.Tx) error {
		id = tx.ID()
		return nil
	}))
	return id
}

// TestIdleWritesNothing checks that the calls an idle dispatcher makes
// (Claim and NextDue with nothing due, or with everything due parked behind
// full endpoints), and calls that fail or change nothing, commit no
// transaction: bbolt's transaction ID stays the same.
func TestIdleWritesNothing(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	claim := func(req convoy.ClaimRequest) []*convoy.Delivery {
		t.Helper()
		req.Now, req.Owner, req.Lease = now, "w", time.Minute
		if req.Limit == 0 {
			req.Limit = 10
		}
		got, err := s.Claim(ctx, req)
		require.NoError(t, err)
		return got
	}
	poll := func(req convoy.ClaimRequest) {
		t.Helper()
		before := txid(t, s)
		for range 500 {
			require.Empty(t, claim(req))
			_, _, err := s.NextDue(ctx)
			require.NoError(t, err)
		}
		require.Equal(t, before, txid(t, s), "idle polling committed")
	}

	poll(convoy.ClaimRequest{}) // empty store

	app := storetest.NewApp()
	require.NoError(t, s.CreateApp(ctx, app))
	ep := storetest.NewEndpoint(app.ID)
	ep.Headers = map[string]string{"Authorization": "Bearer x", "X-Team": "billing", "X-Env": "prod"}
	require.NoError(t, s.CreateEndpoint(ctx, ep))
	ev := storetest.NewEvent(app.ID, now)
	ds := make([]*convoy.Delivery, 5)
	for i := range ds {
		ds[i] = storetest.NewDelivery(ev, ep.ID)
		ds[i].NextAttemptAt = now.Add(time.Duration(i-2) * time.Second) // 3 due now
	}
	_, err := s.InsertEvent(ctx, ev, ds)
	require.NoError(t, err)

	// Due work behind a full endpoint: the first Claim parks it (a write),
	// the next ones step over it without writing.
	full := convoy.ClaimRequest{PerEndpoint: 1, InFlight: map[string]int{ep.ID: 1}}
	before := txid(t, s)
	require.Empty(t, claim(full))
	require.Greater(t, txid(t, s), before, "the entries were parked")
	poll(full)

	// Claiming what is due, then polling with the rest not yet due.
	got := claim(convoy.ClaimRequest{})
	require.Len(t, got, 3)
	poll(convoy.ClaimRequest{})

	// Calls that fail or change nothing.
	before = txid(t, s)
	errStop := errors.New("stop")
	_, err = s.UpdateEndpoint(ctx, ep.ID, func(*convoy.Endpoint) error { return errStop })
	require.ErrorIs(t, err, errStop)
	_, err = s.UpdateEndpoint(ctx, ep.ID, func(*convoy.Endpoint) error { return nil })
	require.NoError(t, err)
	_, err = s.UpdateApp(ctx, app.ID, func(*convoy.App) error { return nil })
	require.NoError(t, err)
	require.ErrorIs(t, s.Release(ctx, got[0].ID, convoy.NewID()), convoy.ErrLeaseLost)
	n, err := s.DeleteBefore(ctx, now.Add(time.Hour), 0)
	require.NoError(t, err)
	require.Zero(t, n, "every event is pending")
	again := storetest.NewEvent(app.ID, now)
	again.ID = ev.ID
	_, err = s.InsertEvent(ctx, again, nil)
	require.ErrorIs(t, err, convoy.ErrDuplicate)
	require.Equal(t, before, txid(t, s))
}
