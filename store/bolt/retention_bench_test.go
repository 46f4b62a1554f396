package bolt

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/storetest"
	"github.com/stretchr/testify/require"
)

// fillFinished stores n events of the endpoint's app created from at on,
// one per millisecond, each with a delivery that succeeded after one
// attempt, in committer operations of 5,000 events: the fastest way to a
// large history.
func fillFinished(tb testing.TB, s *Store, ep *convoy.Endpoint, n int, at time.Time) {
	tb.Helper()
	data := []byte(`{"object":"invoice","lines":[` + `{"sku":"plan-001","qty":1,"amount":4200}` + `],"total":4200}`)
	const perOp = 5000
	for done := 0; done < n; done += perOp {
		require.NoError(tb, s.write(context.Background(), func(w *wtx) error {
			for i := done; i < min(done+perOp, n); i++ {
				created := at.Add(time.Duration(i) * time.Millisecond)
				ev := storetest.NewEvent(ep.AppID, created)
				ev.Data = data
				d := storetest.NewDelivery(ev, ep.ID)
				d.Status, d.Attempts, d.RoundAttempts = convoy.DeliverySuccess, 1, 1
				in, err := prepareInsert(ev, []*convoy.Delivery{d})
				if err != nil {
					return err
				}
				if _, err := in.apply(w); err != nil {
					return err
				}
				a := storetest.NewAttempt(d, 1, http.StatusOK, created)
				a.RequestHeaders = http.Header{
					"Content-Type": {"application/json"}, "User-Agent": {convoy.UserAgent},
					"X-Convoy-Event-Id": {ev.ID}, "X-Convoy-Delivery-Id": {d.ID},
					"X-Convoy-Signature": {"t=1780272000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"},
				}
				a.ResponseHeaders = http.Header{"Content-Type": {"application/json"}, "Date": {"Mon, 01 Jun 2030 12:00:00 GMT"}}
				a.ResponseBody = []byte(`{"received":true}`)
				enc, err := encodeAttempt(a)
				if err != nil {
					return err
				}
				if err := w.put(bucketAttempts, attemptKey(d.ID, 1, a.ID), enc); err != nil {
					return err
				}
			}
			return nil
		}))
	}
}

// retentionRun is what one deletion of a whole history measured.
type retentionRun struct {
	worst, p99, p50 time.Duration // of InsertEvent while it ran
	inserts         int
	batches         int
	longestBatch    time.Duration // of one DeleteBefore call
	total           time.Duration // of the whole deletion
}

// measureRetention fills a new store with events finished events, then
// deletes all of them with DeleteBefore calls of limit each, while one
// goroutine inserts events as Send does, one at a time, timing each.
func measureRetention(b *testing.B, events, limit int) retentionRun {
	b.Helper()
	ctx := context.Background()
	s, err := Open(filepath.Join(b.TempDir(), "convoy.db"), nil)
	require.NoError(b, err)
	defer s.Close()
	app := storetest.NewApp()
	require.NoError(b, s.CreateApp(ctx, app))
	ep := storetest.NewEndpoint(app.ID)
	require.NoError(b, s.CreateEndpoint(ctx, ep))
	old := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	fillFinished(b, s, ep, events, old)
	cutoff := old.Add(time.Duration(events) * time.Millisecond)

	stop := make(chan struct{})
	var (
		wg        sync.WaitGroup
		latencies []time.Duration
		insertErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		now := cutoff.Add(time.Hour) // newer than the cutoff: kept
		for {
			select {
			case <-stop:
				return
			default:
			}
			ev := storetest.NewEvent(app.ID, now)
			d := storetest.NewDelivery(ev, ep.ID)
			start := time.Now()
			if _, err := s.InsertEvent(ctx, ev, []*convoy.Delivery{d}); err != nil {
				insertErr = err
				return
			}
			latencies = append(latencies, time.Since(start))
		}
	}()

	var run retentionRun
	start := time.Now()
	for deleted := 0; ; {
		t := time.Now()
		n, err := s.DeleteBefore(ctx, cutoff, limit)
		require.NoError(b, err)
		run.longestBatch = max(run.longestBatch, time.Since(t))
		run.batches++
		deleted += n
		if n < limit {
			require.Equal(b, events, deleted)
			break
		}
	}
	run.total = time.Since(start)
	close(stop)
	wg.Wait()
	require.NoError(b, insertErr)
	require.NotEmpty(b, latencies)
	slices.Sort(latencies)
	run.inserts = len(latencies)
	run.worst = latencies[len(latencies)-1]
	run.p99 = latencies[len(latencies)*99/100]
	run.p50 = latencies[len(latencies)/2]
	return run
}

// BenchmarkRetentionStall deletes a history of finished events (50,000 by
// default; CONVOY_RETENTION_EVENTS sets another number) while a goroutine
// inserts events one at a time, and compares the InsertEvent latency seen
// meanwhile when everything goes in one DeleteBefore transaction (the
// behaviour before v0.2) and when it goes in batches of
// convoy.DefaultDeleteBatch. It reports the worst and p99 latency of each
// in milliseconds, the longest DeleteBefore call of the batched run and
// the ratio of the worst latencies.
func BenchmarkRetentionStall(b *testing.B) {
	events := 50000
	if v := os.Getenv("CONVOY_RETENTION_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err)
		events = n
	}
	var one, batched retentionRun
	for range b.N {
		one = measureRetention(b, events, math.MaxInt)
		batched = measureRetention(b, events, convoy.DefaultDeleteBatch)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(one.worst), "worst-ms/one-tx")
	b.ReportMetric(ms(one.p99), "p99-ms/one-tx")
	b.ReportMetric(ms(batched.worst), "worst-ms/batched")
	b.ReportMetric(ms(batched.p99), "p99-ms/batched")
	b.ReportMetric(ms(batched.longestBatch), "longest-batch-ms")
	b.ReportMetric(float64(one.worst)/float64(batched.worst), "worst-ratio")
	for _, r := range []struct {
		name string
		run  retentionRun
	}{{"one transaction", one}, {fmt.Sprintf("batches of %d", convoy.DefaultDeleteBatch), batched}} {
		b.Logf("%s: %d events deleted in %v (%d calls, longest %v); %d inserts meanwhile: p50 %v, p99 %v, worst %v",
			r.name, events, r.run.total.Round(time.Millisecond), r.run.batches, r.run.longestBatch.Round(time.Microsecond),
			r.run.inserts, r.run.p50.Round(time.Microsecond), r.run.p99.Round(time.Microsecond), r.run.worst.Round(time.Microsecond))
	}
}
