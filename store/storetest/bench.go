package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convoykit/convoy"
)

// BenchmarkInsert measures InsertEvent of events with one delivery each,
// as Send does, from one goroutine and from 64 at once (sub-benchmarks
// goroutines=1 and goroutines=64), and reports events/s. A store that
// groups commits shows it in the second case. Each run uses a fresh store
// from newStore.
func BenchmarkInsert(b *testing.B, newStore func(b *testing.B) convoy.Store) {
	for _, workers := range []int{1, 64} {
		b.Run(fmt.Sprintf("goroutines=%d", workers), func(b *testing.B) {
			s := newStore(b)
			ctx := b.Context()
			app := NewApp()
			ep := NewEndpoint(app.ID)
			if err := s.CreateApp(ctx, app); err != nil {
				b.Fatal(err)
			}
			if err := s.CreateEndpoint(ctx, ep); err != nil {
				b.Fatal(err)
			}
			var (
				next atomic.Int64
				errs = make(chan error, workers)
				wg   sync.WaitGroup
			)
			b.ReportAllocs()
			b.ResetTimer()
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						ev := NewEvent(app.ID, epoch)
						_, err := s.InsertEvent(ctx, ev, []*convoy.Delivery{NewDelivery(ev, ep.ID)})
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// Shape of the BenchmarkClaim store.
const (
	claimBatch     = 10     // deliveries claimed per iteration
	claimDue       = 20     // deliveries due at any time
	claimEndpoints = 8      // endpoints the backlog is spread over
	claimChunk     = 10_000 // deliveries per InsertEvent while filling
	// claimPerEndpoint is the cap of the capped runs: a Dispatcher's
	// default for 64 workers, above what the batch takes of any endpoint.
	claimPerEndpoint = 16
)

// BenchmarkClaim measures claiming a batch of 10 due deliveries (then
// releasing them, so the loop can go on) in a store that also holds a
// backlog of deliveries not yet due, with sub-benchmarks backlog=1000 and
// backlog=1000000. Claim must cost O(log n + k), so both should report
// about the same time: ns/op covers the claim and the ten releases,
// claim-ns/op the claim alone. Each runs uncapped (PerEndpoint=0) and
// with a cap per endpoint (PerEndpoint=16) that the batch stays below,
// so the second shows what counting the endpoints' leases adds, against
// the first in the same run.
//
// The store is filled once per sub-benchmark, in InsertEvent calls of
// 10,000 deliveries each, and shared by that sub-benchmark's runs; it is
// made with newStore(b) on the parent b, so it lives until BenchmarkClaim
// returns. The 1,000,000 case is skipped in -short mode.
func BenchmarkClaim(b *testing.B, newStore func(b *testing.B) convoy.Store) {
	parent := b
	for _, backlog := range []int{1000, 1_000_000} {
		var s convoy.Store
		b.Run(fmt.Sprintf("backlog=%d", backlog), func(b *testing.B) {
			if backlog > 1000 && testing.Short() {
				b.Skip("backlog of 1,000,000 skipped in -short mode")
			}
			if s == nil {
				b.StopTimer()
				start := time.Now()
				s = newStore(parent)
				if err := fillBacklog(b, s, backlog); err != nil {
					b.Fatal(err)
				}
				b.Logf("stored a backlog of %d deliveries in %v", backlog, time.Since(start).Round(time.Millisecond))
				b.StartTimer()
			}
			for _, perEndpoint := range []int{0, claimPerEndpoint} {
				b.Run(fmt.Sprintf("PerEndpoint=%d", perEndpoint), func(b *testing.B) {
					benchmarkClaimBatch(b, s, perEndpoint)
				})
			}
		})
	}
}

// benchmarkClaimBatch is BenchmarkClaim's loop on a filled store: claim
// claimBatch deliveries, under a cap of perEndpoint in flight to each
// endpoint (0 for none), and release them.
func benchmarkClaimBatch(b *testing.B, s convoy.Store, perEndpoint int) {
	ctx := b.Context()
	req := convoy.ClaimRequest{Now: epoch, Limit: claimBatch, Owner: "bench", Lease: time.Minute, PerEndpoint: perEndpoint}
	var claiming time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		ds, err := s.Claim(ctx, req)
		claiming += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if len(ds) != claimBatch {
			b.Fatalf("claimed %d deliveries, want %d", len(ds), claimBatch)
		}
		if err := releaseAll(ctx, s, ds); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(claiming.Nanoseconds())/float64(b.N), "claim-ns/op")
}

// fillBacklog stores backlog deliveries due in a hundred years, spread
// over several endpoints, and claimDue deliveries already due at epoch.
func fillBacklog(b *testing.B, s convoy.Store, backlog int) error {
	ctx := b.Context()
	app := NewApp()
	if err := s.CreateApp(ctx, app); err != nil {
		return err
	}
	eps := make([]*convoy.Endpoint, claimEndpoints)
	for i := range eps {
		eps[i] = NewEndpoint(app.ID)
		if err := s.CreateEndpoint(ctx, eps[i]); err != nil {
			return err
		}
	}
	insert := func(n int, due func(i int) time.Time) error {
		ev := NewEvent(app.ID, epoch)
		ds := make([]*convoy.Delivery, n)
		for i := range ds {
			ds[i] = NewDelivery(ev, eps[i%len(eps)].ID)
			ds[i].NextAttemptAt = due(i)
		}
		_, err := s.InsertEvent(ctx, ev, ds)
		return err
	}
	far := epoch.AddDate(100, 0, 0)
	for filled := 0; filled < backlog; filled += claimChunk {
		n := min(claimChunk, backlog-filled)
		if err := insert(n, func(i int) time.Time {
			return far.Add(time.Duration(filled+i) * time.Millisecond)
		}); err != nil {
			return fmt.Errorf("filling the backlog: %w", err)
		}
	}
	return insert(claimDue, func(i int) time.Time {
		return epoch.Add(-time.Hour + time.Duration(i)*time.Second)
	})
}

// BenchmarkClaimOrdered measures claiming a batch of 10 due deliveries
// (then releasing them) beside an ordered endpoint whose head is in
// flight, with sub-benchmarks for 1,000 and 100,000 deliveries due and
// held back behind that head. Claim must not scan the held back queue, so
// both should report about the same time (claim-ns/op is the claim alone,
// ns/op adds the ten releases). The first Claims, before the
// timer starts, pass over the queue once (store/postgres then sets it
// aside); the measured ones are those a dispatcher polls with afterwards.
// The 100,000 case is skipped in -short mode.
func BenchmarkClaimOrdered(b *testing.B, newStore func(b *testing.B) convoy.Store) {
	parent := b
	for _, backlog := range []int{1000, 100_000} {
		var s convoy.Store
		b.Run(fmt.Sprintf("held=%d", backlog), func(b *testing.B) {
			if backlog > 1000 && testing.Short() {
				b.Skip("queue of 100,000 skipped in -short mode")
			}
			ctx := b.Context()
			req := convoy.ClaimRequest{Now: epoch, Limit: claimBatch, Owner: "bench", Lease: time.Minute}
			if s == nil {
				b.StopTimer()
				start := time.Now()
				s = newStore(parent)
				if err := fillOrdered(b, s, backlog); err != nil {
					b.Fatal(err)
				}
				for i := 0; ; i++ {
					if i%64 == 0 { // Stats counts up to 10,000 due: not every time
						st, err := s.Stats(ctx, epoch)
						if err != nil {
							b.Fatal(err)
						}
						if st.DueNow <= claimDue {
							break
						}
					}
					if err := claimRelease(ctx, s, req, new(time.Duration)); err != nil {
						b.Fatal(err)
					}
				}
				b.Logf("stored and passed over a queue of %d in %v", backlog, time.Since(start).Round(time.Millisecond))
				b.StartTimer()
			}
			var claiming time.Duration
			b.ResetTimer()
			for range b.N {
				if err := claimRelease(ctx, s, req, &claiming); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(claiming.Nanoseconds())/float64(b.N), "claim-ns/op")
		})
	}
}

// claimRelease claims req.Limit deliveries, requires that many, and
// releases them; it adds the time the claim took to claiming.
func claimRelease(ctx context.Context, s convoy.Store, req convoy.ClaimRequest, claiming *time.Duration) error {
	start := time.Now()
	ds, err := s.Claim(ctx, req)
	*claiming += time.Since(start)
	if err != nil {
		return err
	}
	if len(ds) != req.Limit {
		return fmt.Errorf("claimed %d deliveries, want %d", len(ds), req.Limit)
	}
	return releaseAll(ctx, s, ds)
}

// releaseAll releases the claimed deliveries ds.
func releaseAll(ctx context.Context, s convoy.Store, ds []*convoy.Delivery) error {
	for _, d := range ds {
		if err := s.Release(ctx, d.ID, d.LeaseID); err != nil {
			return err
		}
	}
	return nil
}

// fillOrdered stores queue deliveries of an ordered endpoint, due before
// epoch, claims the first under a lease of a century, and adds claimDue
// deliveries of another endpoint, due at epoch.
func fillOrdered(b *testing.B, s convoy.Store, queue int) error {
	ctx := b.Context()
	app := NewApp()
	if err := s.CreateApp(ctx, app); err != nil {
		return err
	}
	ord, free := NewEndpoint(app.ID), NewEndpoint(app.ID)
	ord.Ordered = true
	for _, ep := range []*convoy.Endpoint{ord, free} {
		if err := s.CreateEndpoint(ctx, ep); err != nil {
			return err
		}
	}
	insert := func(ep *convoy.Endpoint, n int, due time.Time) error {
		ev := NewEvent(app.ID, epoch)
		ds := make([]*convoy.Delivery, n)
		for i := range ds {
			ds[i] = NewDelivery(ev, ep.ID)
			ds[i].NextAttemptAt = due.Add(time.Duration(i) * time.Microsecond)
		}
		_, err := s.InsertEvent(ctx, ev, ds)
		return err
	}
	for filled := 0; filled < queue; filled += claimChunk {
		if err := insert(ord, min(claimChunk, queue-filled), epoch.Add(-2*time.Hour)); err != nil {
			return fmt.Errorf("filling the queue: %w", err)
		}
	}
	head, err := s.Claim(ctx, convoy.ClaimRequest{Now: epoch, Limit: 10, Owner: "head", Lease: 100 * 365 * 24 * time.Hour})
	if err != nil {
		return err
	}
	if len(head) != 1 {
		return fmt.Errorf("claimed %d deliveries of the ordered endpoint, want its head", len(head))
	}
	return insert(free, claimDue, epoch.Add(-time.Hour))
}

// BenchmarkClaimEvents compares the two ways a worker gets a claimed
// delivery's event, on one store holding 100 due deliveries of 100
// events: Claim then one GetEvent per delivery ("claim+get"), and
// ClaimEvents ("claim-events"). Each op claims 10, has their events and
// releases them; claim-ns/op is the time to have the deliveries and their
// events, ratio the claim-events row's over the claim+get row's measured
// in the same run. It is skipped for a store without EventClaimer.
func BenchmarkClaimEvents(b *testing.B, newStore func(b *testing.B) convoy.Store) {
	s := newStore(b)
	ec, ok := s.(convoy.EventClaimer)
	if !ok {
		b.Skipf("%T does not implement convoy.EventClaimer", s)
	}
	ctx := b.Context()
	app := NewApp()
	if err := s.CreateApp(ctx, app); err != nil {
		b.Fatal(err)
	}
	ep := NewEndpoint(app.ID)
	if err := s.CreateEndpoint(ctx, ep); err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		ev := NewEvent(app.ID, epoch)
		d := NewDelivery(ev, ep.ID)
		d.NextAttemptAt = epoch.Add(-time.Hour + time.Duration(i)*time.Millisecond)
		if _, err := s.InsertEvent(ctx, ev, []*convoy.Delivery{d}); err != nil {
			b.Fatal(err)
		}
	}
	req := convoy.ClaimRequest{Now: epoch, Limit: claimBatch, Owner: "bench", Lease: time.Minute}
	var baseline float64
	for _, way := range []string{"claim+get", "claim-events"} {
		b.Run(way, func(b *testing.B) {
			var claiming time.Duration
			for range b.N {
				start := time.Now()
				var ds []*convoy.Delivery
				var err error
				if way == "claim-events" {
					ds, _, err = ec.ClaimEvents(ctx, req)
				} else if ds, err = s.Claim(ctx, req); err == nil {
					for _, d := range ds {
						if _, err = s.GetEvent(ctx, d.EventID); err != nil {
							break
						}
					}
				}
				claiming += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				if len(ds) != claimBatch {
					b.Fatalf("claimed %d deliveries, want %d", len(ds), claimBatch)
				}
				if err := releaseAll(ctx, s, ds); err != nil {
					b.Fatal(err)
				}
			}
			ns := float64(claiming.Nanoseconds()) / float64(b.N)
			b.ReportMetric(ns, "claim-ns/op")
			if way == "claim+get" {
				baseline = ns
			} else if baseline > 0 {
				b.ReportMetric(ns/baseline, "ratio")
			}
		})
	}
}
