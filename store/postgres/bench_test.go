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

// recorders is how many goroutines call Record at once in the Record
// benchmarks, as a Dispatcher's recorder does with that many workers.
const recorders = 64

// recordRate stores n deliveries spread over `endpoints` endpoints,
// claims them, and returns how many Records per second recorders
// goroutines then make, each a successful attempt with its endpoint's
// health update and status callback.
func recordRate(b *testing.B, s *postgres.Store, endpoints, n int) float64 {
	b.Helper()
	b.StopTimer()
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
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, recorders)
	)
	b.StartTimer()
	start := time.Now()
	for range recorders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				if _, err := s.Record(f.ctx, trs[i]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return float64(n) / elapsed.Seconds()
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
				b.ReportMetric(recordRate(b, s, endpoints, max(b.N, 1000)), "records/s")
			})
		}
	}
}

// BenchmarkRecordHotEndpoint compares Records/s to one busy endpoint with
// Records/s spread over 50 endpoints, 4,000 Records each, and reports
// the ratio (one/fifty; 1 means a busy endpoint costs nothing more). The
// endpoint's row is written once per group commit, not once per Record,
// so with group commit on the ratio stays near 1; the unbatched run
// shows what the row lock costs without it.
func BenchmarkRecordHotEndpoint(b *testing.B) {
	const n = 4000
	for _, gc := range groupCommit {
		b.Run(gc.name, func(b *testing.B) {
			var one, fifty float64
			for range b.N {
				one += recordRate(b, newStore(b, &postgres.Options{RecordBatch: gc.batch}), 1, n)
				fifty += recordRate(b, newStore(b, &postgres.Options{RecordBatch: gc.batch}), 50, n)
			}
			b.ReportMetric(one/float64(b.N), "one-records/s")
			b.ReportMetric(fifty/float64(b.N), "fifty-records/s")
			b.ReportMetric(one/fifty, "one/fifty")
			b.Logf("%s: one endpoint %.0f records/s, 50 endpoints %.0f records/s, ratio %.2f",
				gc.name, one/float64(b.N), fifty/float64(b.N), one/fifty)
		})
	}
}
