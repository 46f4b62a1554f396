package bolt_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/bolt"
	"github.com/convoykit/convoy/store/storetest"
)

// TestOrderedQueueSurvivesReopen checks that an ordered endpoint's queue,
// with its head in flight, reads the same after the file is closed and
// opened again, and that deleting the endpoint's app with a queue leaves
// no index entry behind (CheckIndexes runs at cleanup).
func TestOrderedQueueSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "convoy.db")
	s := openAt(t, path)
	f := setup(t, s)
	ep := storetest.NewEndpoint(f.app.ID)
	ep.Ordered = true
	require.NoError(t, s.CreateEndpoint(ctx, ep))
	var ds []*convoy.Delivery
	for i := range 3 {
		ev := storetest.NewEvent(f.app.ID, t0.Add(-time.Duration(3-i)*time.Second))
		d := delivery(ev, ep.ID, ev.CreatedAt)
		_, err := s.InsertEvent(ctx, ev, []*convoy.Delivery{d})
		require.NoError(t, err)
		ds = append(ds, d)
	}
	claim := func(s convoy.Store, now time.Time) []*convoy.Delivery {
		t.Helper()
		got, err := s.Claim(ctx, convoy.ClaimRequest{Now: now, Limit: 10, Owner: "w", Lease: time.Minute})
		require.NoError(t, err)
		return got
	}
	require.Equal(t, []string{ds[0].ID}, ids(claim(s, t0)))
	require.NoError(t, bolt.CheckIndexes(s))
	require.NoError(t, s.Close())

	s = openAt(t, path)
	require.Empty(t, claim(s, t0.Add(30*time.Second)), "the head's lease holds the queue after reopening")
	at, ok, err := s.NextDue(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, at.Equal(t0.Add(time.Minute)), "NextDue %v", at)
	got := claim(s, t0.Add(time.Minute))
	require.Equal(t, []string{ds[0].ID}, ids(got), "the expired head first")
	_, err = s.Record(ctx, convoy.Transition{DeliveryID: got[0].ID, LeaseID: got[0].LeaseID, Now: t0.Add(time.Minute), Status: convoy.DeliveryDiscarded})
	require.NoError(t, err)
	require.Equal(t, []string{ds[1].ID}, ids(claim(s, t0.Add(time.Minute))))
	require.NoError(t, s.DeleteApp(ctx, f.app.ID))
	_, ok, err = s.NextDue(ctx)
	require.NoError(t, err)
	require.False(t, ok)
}
