package bolt_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/bolt"
	"github.com/convoykit/convoy/store/storetest"
	"github.com/stretchr/testify/require"
	bbolt "go.etcd.io/bbolt"
)

// v1ID is the fixed ID number n of a kind of record in testdata/v1.db (see
// testdata/genv1.go).
func v1ID(kind byte, n int) string {
	return fmt.Sprintf("01900000-0000-7000-8000-%02x%010x", kind, n)
}

func v1App(n int) string      { return v1ID(0xa1, n) }
func v1Endpoint(n int) string { return v1ID(0xe9, n) }
func v1Event(n int) string    { return v1ID(0xee, n) }
func v1Delivery(n int) string { return v1ID(0xde, n) }
func v1Attempt(n int) string  { return v1ID(0xa7, n) }

// copyV1 copies testdata/v1.db, written by convoy v0.1.0, to a temporary
// file and returns its path.
func copyV1(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "v1.db"))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "convoy.db")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// fileSchema returns the schema version of the closed store file at path
// and whether it has the bucket named bucket.
func fileSchema(t *testing.T, path, bucket string) (version uint64, hasBucket bool) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.View(func(tx *bbolt.Tx) error {
		version = binary.BigEndian.Uint64(tx.Bucket([]byte("meta")).Get([]byte("schema")))
		hasBucket = tx.Bucket([]byte(bucket)) != nil
		return nil
	}))
	return version, hasBucket
}

// TestMigrateV1 opens a file written by convoy v0.1.0 and finds every
// record, the indexes of schema 2 built from them, and the queue as it was;
// the migrated file then opens as a current one.
func TestMigrateV1(t *testing.T) {
	ctx := context.Background()
	path := copyV1(t)
	v, had := fileSchema(t, path, "idx_app_events")
	require.Equal(t, uint64(1), v)
	require.True(t, had)

	s := openAt(t, path)
	require.NoError(t, bolt.CheckIndexes(s), "the new indexes match the records")
	checkV1Records(t, s)
	require.NoError(t, s.Close())

	v, had = fileSchema(t, path, "idx_app_events")
	require.Equal(t, uint64(bolt.SchemaVersion), v)
	require.False(t, had, "schema 1's app-event index is dropped")

	s = openAt(t, path)
	checkV1Records(t, s)

	// The queue is as v0.1.0 left it: claiming late takes the pending
	// deliveries in due order, the expired lease and the retry last.
	late := time.Date(2030, 6, 1, 14, 0, 0, 0, time.UTC)
	got, err := s.Claim(ctx, convoy.ClaimRequest{Now: late, Limit: 100, Owner: "node-2", Lease: time.Minute})
	require.NoError(t, err)
	require.Equal(t, []string{v1Delivery(7), v1Delivery(9), v1Delivery(11), v1Delivery(13), v1Delivery(14),
		v1Delivery(3), v1Delivery(5)}, ids(got))

	// The idempotency key still answers with the first event and its
	// deliveries.
	again := storetest.NewEvent(v1App(1), late)
	again.IdempotencyKey = "order-42"
	res, err := s.InsertEvent(ctx, again, nil)
	require.NoError(t, err)
	require.False(t, res.Inserted)
	require.Equal(t, v1Event(1), res.Event.ID)
	require.Equal(t, []string{v1Delivery(1), v1Delivery(2)}, ids(res.Deliveries))
}

// checkV1Records reads the records of testdata/v1.db through the queries
// that schema 2's indexes serve.
func checkV1Records(t *testing.T, s *bolt.Store) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	events := func(q convoy.EventQuery) []string {
		t.Helper()
		var out []string
		for page := (convoy.Page{Limit: 2}); ; {
			evs, next, err := s.ListEvents(ctx, q, page)
			require.NoError(t, err)
			for _, ev := range evs {
				out = append(out, ev.ID)
			}
			if next == "" {
				return out
			}
			page.Cursor = next
		}
	}
	evs := func(ns ...int) []string {
		out := make([]string, len(ns))
		for i, n := range ns {
			out[i] = v1Event(n)
		}
		return out
	}
	require.Equal(t, evs(8, 7, 6, 5, 4, 3, 2, 1), events(convoy.EventQuery{}))
	require.Equal(t, evs(6, 5, 4, 3, 2, 1), events(convoy.EventQuery{AppID: v1App(1)}))
	require.Equal(t, evs(8, 7, 6, 3, 1), events(convoy.EventQuery{Type: "invoice.paid"}))
	require.Equal(t, evs(5, 2), events(convoy.EventQuery{AppID: v1App(1), Type: "invoice.created"}))
	require.Equal(t, evs(3, 2), events(convoy.EventQuery{AppID: v1App(1),
		CreatedFrom: t0.Add(time.Minute), CreatedTo: t0.Add(3 * time.Minute)}))

	deliveries := func(q convoy.DeliveryQuery) []string {
		t.Helper()
		ds, next, err := s.ListDeliveries(ctx, q, convoy.Page{})
		require.NoError(t, err)
		require.Empty(t, next)
		return ids(ds)
	}
	dls := func(ns ...int) []string {
		out := make([]string, len(ns))
		for i, n := range ns {
			out[i] = v1Delivery(n)
		}
		return out
	}
	require.Equal(t, dls(12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1), deliveries(convoy.DeliveryQuery{AppID: v1App(1)}))
	require.Equal(t, dls(12, 10, 8, 6, 4, 2), deliveries(convoy.DeliveryQuery{AppID: v1App(1),
		Statuses: []convoy.DeliveryStatus{convoy.DeliveryDiscarded}}))
	require.Equal(t, dls(3), deliveries(convoy.DeliveryQuery{AppID: v1App(1),
		Statuses: []convoy.DeliveryStatus{convoy.DeliveryRetry}}))
	require.Equal(t, dls(14, 13), deliveries(convoy.DeliveryQuery{AppID: v1App(2)}))
	require.Equal(t, dls(11, 9, 7, 5, 3, 1), deliveries(convoy.DeliveryQuery{EndpointID: v1Endpoint(1)}))

	held, err := s.GetDelivery(ctx, v1Delivery(5))
	require.NoError(t, err)
	require.Equal(t, convoy.DeliveryProcessing, held.Status)
	require.Equal(t, "node-1", held.LeaseOwner)
	for n, want := range map[int]int{1: 200, 3: 503} {
		as, _, err := s.ListAttempts(ctx, v1Delivery(n), convoy.Page{})
		require.NoError(t, err)
		require.Len(t, as, 1)
		require.Equal(t, want, as[0].StatusCode)
		require.Equal(t, v1Attempt(n/2+1), as[0].ID)
	}
	ep, err := s.GetEndpoint(ctx, v1Endpoint(2))
	require.NoError(t, err)
	require.Equal(t, convoy.EndpointInactive, ep.Status)

	st, err := s.Stats(ctx, t0)
	require.NoError(t, err)
	require.Equal(t, map[convoy.DeliveryStatus]int{
		convoy.DeliveryScheduled: 5, convoy.DeliveryProcessing: 1, convoy.DeliveryRetry: 1,
		convoy.DeliverySuccess: 1, convoy.DeliveryDiscarded: 6,
	}, st.Deliveries)
	require.Equal(t, map[convoy.EndpointStatus]int{convoy.EndpointActive: 2, convoy.EndpointInactive: 1}, st.Endpoints)
}

// TestMigrateV1Interrupted opens a schema 1 file on which a migration was
// interrupted, leaving partial (here: wrong) schema 2 indexes: the
// migration starts again and builds them right.
func TestMigrateV1Interrupted(t *testing.T) {
	path := copyV1(t)
	db, err := bbolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("idx_app_deliveries"))
		if err != nil {
			return err
		}
		return b.Put([]byte(v1App(1)+"p"+v1Delivery(99)), nil)
	}))
	require.NoError(t, db.Close())

	s := openAt(t, path)
	require.NoError(t, bolt.CheckIndexes(s))
	checkV1Records(t, s)
}
