package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"time"

	"github.com/convoykit/convoy"
	bbolt "go.etcd.io/bbolt"
)

// Stats returns the number of deliveries and endpoints in each status,
// read from counters kept in the transactions that change them; how many
// deliveries are due at now, counted by walking the due index and the
// parked entries up to convoy.MaxDueCount; and the earliest due time, as
// NextDue finds it. Its cost does not grow with the number of deliveries
// stored.
func (s *Store) Stats(ctx context.Context, now time.Time) (convoy.StoreStats, error) {
	st := convoy.StoreStats{
		Deliveries: make(map[convoy.DeliveryStatus]int),
		Endpoints:  make(map[convoy.EndpointStatus]int),
	}
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketCounts).ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				return nil
			}
			n := int(binary.BigEndian.Uint64(v))
			if n == 0 {
				return nil
			}
			switch key := string(k); {
			case strings.HasPrefix(key, countDelivery):
				st.Deliveries[convoy.DeliveryStatus(key[len(countDelivery):])] = n
			case strings.HasPrefix(key, countEndpoint):
				st.Endpoints[convoy.EndpointStatus(key[len(countEndpoint):])] = n
			}
			return nil
		}); err != nil {
			return err
		}
		at, ok, err := firstDue(tx)
		if err != nil || !ok {
			return err
		}
		st.OldestDue = at
		nowKey := timeKey(now)
		c := tx.Bucket(bucketDue).Cursor()
		for k, _ := c.First(); k != nil && st.DueNow < convoy.MaxDueCount && bytes.Compare(k[:timeLen], nowKey) <= 0; k, _ = c.Next() {
			st.DueNow++
		}
		parked := tx.Bucket(bucketParked).Cursor()
		heads := tx.Bucket(bucketParkedHeads).Cursor()
		for hk, _ := heads.First(); hk != nil && st.DueNow < convoy.MaxDueCount && bytes.Compare(hk[:timeLen], nowKey) <= 0; hk, _ = heads.Next() {
			ep := hk[timeLen:]
			for k, _ := parked.Seek(ep); hasPrefix(k, ep) && st.DueNow < convoy.MaxDueCount && bytes.Compare(k[idLen:idLen+timeLen], nowKey) <= 0; k, _ = parked.Next() {
				st.DueNow++
			}
		}
		return nil
	})
	if err != nil {
		return convoy.StoreStats{}, err
	}
	return st, nil
}
