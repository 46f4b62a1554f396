package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/convoykit/convoy"
	bbolt "go.etcd.io/bbolt"
)

// CheckIndexes verifies that every index of the store agrees with the
// records, and that no Claim had to repair a stale entry: each test that
// opens a store runs it before closing it. A closed store passes.
func CheckIndexes(s *Store) error {
	if n := s.repairs.Load(); n > 0 {
		return fmt.Errorf("Claim repaired %d stale index entries", n)
	}
	err := s.view(context.Background(), func(tx *bbolt.Tx) error { return checkIndexes(tx) })
	if errors.Is(err, convoy.ErrClosed) {
		return nil
	}
	return err
}

func checkIndexes(tx *bbolt.Tx) error {
	b := tx.Bucket
	counts := map[string]int64{}
	pending := map[string]string{} // delivery ID → expected due-index key
	endpointOf := map[string]string{}
	// Ordered endpoints: their head (first pending by ID), the latest
	// lease of their Processing deliveries, and the lease entries due.
	type gate struct {
		head  *convoy.Delivery
		lease []byte
	}
	gates := map[string]*gate{}
	if err := b(bucketOrdered).ForEach(func(k, _ []byte) error {
		gates[string(k)] = &gate{}
		return nil
	}); err != nil {
		return err
	}
	leases := 0
	if err := b(bucketDeliveries).ForEach(func(k, v []byte) error {
		d, err := decodeDelivery(v)
		if err != nil {
			return err
		}
		if string(k) != d.ID {
			return fmt.Errorf("delivery %s stored under %s", d.ID, k)
		}
		counts[countDelivery+string(d.Status)]++
		endpointOf[d.ID] = d.EndpointID
		if b(bucketEndpointDeliveries).Get(endpointDeliveryKey(d.EndpointID, d.Status, d.ID)) == nil {
			return fmt.Errorf("delivery %s missing from the endpoint index", d.ID)
		}
		if b(bucketAppDeliveries).Get(appDeliveryKey(d.AppID, d.Status, d.ID)) == nil {
			return fmt.Errorf("delivery %s missing from the app index", d.ID)
		}
		if b(bucketEventDeliveries).Get(join([]byte(d.EventID), []byte(d.ID))) == nil {
			return fmt.Errorf("delivery %s missing from the event index", d.ID)
		}
		if !has(tx, bucketEvents, d.EventID) || !has(tx, bucketEndpoints, d.EndpointID) {
			return fmt.Errorf("delivery %s outlived its event or endpoint", d.ID)
		}
		if g := gates[d.EndpointID]; g != nil && !d.Status.Final() {
			if g.head == nil {
				g.head = d
			}
			if d.Status == convoy.DeliveryProcessing {
				leases++
				lk := timeKey(d.LeaseExpiresAt)
				if !bytes.Equal(b(bucketOrderedLeases).Get(orderedLeaseKey(d.EndpointID, d.ID)), lk) {
					return fmt.Errorf("lease of %s (ordered endpoint) missing or stale", d.ID)
				}
				if bytes.Compare(lk, g.lease) > 0 {
					g.lease = lk
				}
			}
			return nil
		}
		if t, ok := d.DueAt(); ok {
			k := dueKey(t, d.ID)
			inDue := b(bucketDue).Get(k)
			inParked := b(bucketParked).Get(parkedKey(d.EndpointID, k)) != nil
			switch {
			case inDue != nil && inParked:
				return fmt.Errorf("delivery %s both due and parked", d.ID)
			case inDue == nil && !inParked:
				return fmt.Errorf("pending delivery %s has no due entry", d.ID)
			case inDue != nil && string(inDue) != d.EndpointID:
				return fmt.Errorf("due entry of %s names endpoint %s", d.ID, inDue)
			}
			pending[d.ID] = string(k)
		}
		return nil
	}); err != nil {
		return err
	}
	for ep, g := range gates {
		v := b(bucketOrdered).Get([]byte(ep))
		if g.head == nil {
			if !bytes.Equal(v, noGate) {
				return fmt.Errorf("ordered endpoint %s has a gate and nothing pending", ep)
			}
			continue
		}
		due, _ := g.head.DueAt()
		at := timeKey(due)
		if bytes.Compare(g.lease, at) > 0 {
			at = g.lease
		}
		k := dueKey(keyTime(at), g.head.ID)
		if !bytes.Equal(v, k) {
			return fmt.Errorf("gate of ordered endpoint %s out of step", ep)
		}
		inDue := b(bucketDue).Get(k)
		inParked := b(bucketParked).Get(parkedKey(ep, k)) != nil
		if (inDue != nil) == inParked || inDue != nil && string(inDue) != ep {
			return fmt.Errorf("gate of ordered endpoint %s not due or parked once", ep)
		}
		pending[g.head.ID] = string(k)
	}
	if b(bucketOrderedLeases).Stats().KeyN != leases {
		return fmt.Errorf("%d ordered leases for %d Processing deliveries of ordered endpoints", b(bucketOrderedLeases).Stats().KeyN, leases)
	}
	n := 0
	if err := b(bucketDue).ForEach(func(k, _ []byte) error {
		n++
		if pending[string(k[timeLen:])] != string(k) {
			return fmt.Errorf("stale due entry for %s", k[timeLen:])
		}
		return nil
	}); err != nil {
		return err
	}
	heads := map[string][]byte{}
	if err := b(bucketParked).ForEach(func(k, _ []byte) error {
		n++
		ep, dk := string(k[:idLen]), k[idLen:]
		if pending[string(dk[timeLen:])] != string(dk) || endpointOf[string(dk[timeLen:])] != ep {
			return fmt.Errorf("stale parked entry for %s", dk[timeLen:])
		}
		if _, ok := heads[ep]; !ok {
			heads[ep] = clone(dk[:timeLen])
		}
		return nil
	}); err != nil {
		return err
	}
	if n != len(pending) {
		return fmt.Errorf("%d due and parked entries for %d pending deliveries", n, len(pending))
	}
	nh := 0
	if err := b(bucketParkedHeads).ForEach(func(k, _ []byte) error {
		nh++
		ep := string(k[timeLen:])
		if !bytes.Equal(heads[ep], k[:timeLen]) || !bytes.Equal(b(bucketParkedHead).Get([]byte(ep)), k[:timeLen]) {
			return fmt.Errorf("parked head of endpoint %s out of step", ep)
		}
		return nil
	}); err != nil {
		return err
	}
	if nh != len(heads) || b(bucketParkedHead).Stats().KeyN != len(heads) {
		return fmt.Errorf("%d parked heads for %d endpoints with parked entries", nh, len(heads))
	}
	if err := b(bucketEndpointDeliveries).ForEach(func(k, _ []byte) error {
		id := string(k[idLen+1:])
		if endpointOf[id] != string(k[:idLen]) {
			return fmt.Errorf("stale endpoint index entry for %s", id)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, idx := range [][]byte{bucketEndpointDeliveries, bucketAppDeliveries, bucketEventDeliveries} {
		if b(idx).Stats().KeyN != b(bucketDeliveries).Stats().KeyN {
			return fmt.Errorf("%s has stale entries", idx)
		}
	}
	orderedEndpoints := 0
	if err := b(bucketEndpoints).ForEach(func(k, v []byte) error {
		ep, err := decodeEndpoint(v)
		if err != nil {
			return err
		}
		counts[countEndpoint+string(ep.Status)]++
		if _, ok := gates[ep.ID]; ok != ep.Ordered {
			return fmt.Errorf("endpoint %s: Ordered %v, in the ordered index %v", k, ep.Ordered, ok)
		}
		if ep.Ordered {
			orderedEndpoints++
		}
		if b(bucketAppEndpoints).Get(join([]byte(ep.AppID), k)) == nil || !has(tx, bucketApps, ep.AppID) {
			return fmt.Errorf("endpoint %s missing from its app's index", k)
		}
		return nil
	}); err != nil {
		return err
	}
	if orderedEndpoints != len(gates) {
		return fmt.Errorf("stale entries in %s", bucketOrdered)
	}
	if err := b(bucketEvents).ForEach(func(k, v []byte) error {
		ev, err := decodeEvent(v)
		if err != nil {
			return err
		}
		for _, ik := range eventIndexKeys(ev) {
			if b(ik.bucket).Get(ik.key) == nil {
				return fmt.Errorf("event %s missing from %s", k, ik.bucket)
			}
		}
		if ev.IdempotencyKey != "" && b(bucketIdempotency).Get(join([]byte(ev.AppID), []byte(ev.IdempotencyKey))) == nil {
			return fmt.Errorf("idempotency key of event %s missing", k)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, idx := range [][]byte{bucketEventCreated, bucketAppEventCreated, bucketTypeEventCreated, bucketAppTypeEventCreated} {
		if b(idx).Stats().KeyN != b(bucketEvents).Stats().KeyN {
			return fmt.Errorf("%s has stale entries", idx)
		}
	}
	if err := b(bucketIdempotency).ForEach(func(_, v []byte) error {
		if !has(tx, bucketEvents, string(v)) {
			return fmt.Errorf("idempotency key of missing event %s", v)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := b(bucketCounts).ForEach(func(k, v []byte) error {
		got := int64(binary.BigEndian.Uint64(v))
		if want := counts[string(k)]; got != want || !strings.Contains(string(k), ":") {
			return fmt.Errorf("count %s is %d, want %d", k, got, want)
		}
		delete(counts, string(k))
		return nil
	}); err != nil {
		return err
	}
	for k, n := range counts {
		return fmt.Errorf("count %s missing, want %d", k, n)
	}
	return nil
}
