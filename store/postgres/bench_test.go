package postgres_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/postgres"
	"github.com/convoykit/convoy/store/storetest"
)

// BenchmarkInsert runs the shared insert benchmark (events/s from 1 and 64
// goroutines).
func BenchmarkInsert(b *testing.B) {
	storetest.BenchmarkInsert(b, func(b *testing.B) convoy.Store { return newStore(b, nil) })
}

// BenchmarkClaim runs the shared claim benchmark with backlogs of 1,000
// and 1,000,000 deliveries not yet due.
func BenchmarkClaim(b *testing.B) {
	storetest.BenchmarkClaim(b, func(b *testing.B) convoy.Store { return newStore(b, nil) })
}

// BenchmarkClaimEvents: see storetest.BenchmarkClaimEvents.
func BenchmarkClaimEvents(b *testing.B) {
	storetest.BenchmarkClaimEvents(b, func(b *testing.B) convoy.Store { return newStore(b, nil) })
}

// BenchmarkClaimOrdered runs the shared claim benchmark beside an ordered
// endpoint with 1,000 and 100,000 deliveries held back behind its head.
func BenchmarkClaimOrdered(b *testing.B) {
	storetest.BenchmarkClaimOrdered(b, func(b *testing.B) convoy.Store { return newStore(b, nil) })
}

// recorders is how many goroutines call Record at once in the Record
// benchmarks, as a Dispatcher's recorder does with that many workers.
const recorders = 64

// claimedTransitions stores n deliveries spread over `endpoints`
// endpoints of s, claims them, and returns a successful transition of
// each, with the attempt, health update and status callback the
// Dispatcher's would have.
func claimedTransitions(b *testing.B, s *postgres.Store, endpoints, n int) []convoy.Transition {
	b.Helper()
	f := setup(b, s, endpoints)
	for sent := 0; sent < n; sent += 5000 {
		f.send(t0, min(5000, n-sent))
	}
	var claimed []*convoy.Delivery
	for len(claimed) < n {
		ds := f.claim(t0, convoy.MaxPageSize)
		if len(ds) == 0 {
			b.Fatalf("claimed %d of %d", len(claimed), n)
		}
		claimed = append(claimed, ds...)
	}
	trs := make([]convoy.Transition, n)
	for i, c := range claimed {
		trs[i] = succeeded(c, t0)
		trs[i].Attempt.RequestBody = nil // the Dispatcher strips it
		trs[i].EndpointStatus = func(ep convoy.Endpoint) convoy.EndpointStatus { return ep.Status }
	}
	return trs
}

// recordAll records trs from `recorders` goroutines and returns how long
// that took.
func recordAll(b *testing.B, s *postgres.Store, trs []convoy.Transition) time.Duration {
	b.Helper()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, recorders)
	)
	start := time.Now()
	for range recorders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(trs)); i = next.Add(1) - 1 {
				if _, err := s.Record(b.Context(), trs[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return elapsed
}

var groupCommit = []struct {
	name  string
	batch int
}{{"batched", 0}, {"unbatched", 1}}

// BenchmarkRecord measures Records/s from 64 goroutines with group commit
// on (the default) and off, to one endpoint and spread over 50.
func BenchmarkRecord(b *testing.B) {
	for _, gc := range groupCommit {
		for _, endpoints := range []int{1, 50} {
			b.Run(fmt.Sprintf("%s/endpoints=%d", gc.name, endpoints), func(b *testing.B) {
				s := newStore(b, &postgres.Options{RecordBatch: gc.batch})
				b.StopTimer()
				trs := claimedTransitions(b, s, endpoints, max(b.N, 1000))
				b.StartTimer()
				elapsed := recordAll(b, s, trs)
				b.ReportMetric(float64(len(trs))/elapsed.Seconds(), "records/s")
			})
		}
	}
}

// BenchmarkRecordHotEndpoint compares Records/s to one busy endpoint with
// Records/s spread over 50 endpoints and reports the ratio (one/fifty; 1
// means a busy endpoint costs nothing more). Each run records 4,000
// deliveries of each kind in alternating chunks of 500, so both see the
// same machine load. The endpoint's row is written once per group
// commit, not once per Record, so with group commit on the ratio stays
// near 1; the unbatched run shows what the row lock costs without it.
func BenchmarkRecordHotEndpoint(b *testing.B) {
	const (
		n     = 4000
		chunk = 500
	)
	for _, gc := range groupCommit {
		b.Run(gc.name, func(b *testing.B) {
			var one, fifty time.Duration
			for range b.N {
				b.StopTimer()
				hot := newStore(b, &postgres.Options{RecordBatch: gc.batch})
				spread := newStore(b, &postgres.Options{RecordBatch: gc.batch})
				hotTrs, spreadTrs := claimedTransitions(b, hot, 1, n), claimedTransitions(b, spread, 50, n)
				b.StartTimer()
				for i := 0; i < n; i += chunk {
					one += recordAll(b, hot, hotTrs[i:i+chunk])
					fifty += recordAll(b, spread, spreadTrs[i:i+chunk])
				}
			}
			oneRate := float64(n*b.N) / one.Seconds()
			fiftyRate := float64(n*b.N) / fifty.Seconds()
			b.ReportMetric(oneRate, "one-records/s")
			b.ReportMetric(fiftyRate, "fifty-records/s")
			b.ReportMetric(oneRate/fiftyRate, "one/fifty")
			b.Logf("%s: one endpoint %.0f records/s, 50 endpoints %.0f records/s, ratio %.2f",
				gc.name, oneRate, fiftyRate, oneRate/fiftyRate)
		})
	}
}
