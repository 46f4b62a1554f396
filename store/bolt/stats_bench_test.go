package bolt_test

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/bolt"
	"github.com/convoykit/convoy/store/storetest"
)

// BenchmarkStats: Stats reads counters kept by the transactions, so its
// cost does not depend on how many deliveries are stored. The
// sub-benchmarks hold 1,000 and 1,000,000 deliveries (one endpoint, most
// scheduled an hour ahead, 100 due now) and compare in one run.
func BenchmarkStats(b *testing.B) {
	for _, n := range []int{1000, 1000000} {
		b.Run("deliveries="+strconv.Itoa(n), func(b *testing.B) {
			st, err := bolt.Open(filepath.Join(b.TempDir(), "stats.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			ctx := b.Context()
			app := storetest.NewApp()
			ep := storetest.NewEndpoint(app.ID)
			if err := st.CreateApp(ctx, app); err != nil {
				b.Fatal(err)
			}
			if err := st.CreateEndpoint(ctx, ep); err != nil {
				b.Fatal(err)
			}
			now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			const perEvent = 10000
			for done := 0; done < n; done += perEvent {
				ev := storetest.NewEvent(app.ID, now)
				ds := make([]*convoy.Delivery, 0, perEvent)
				for i := 0; i < perEvent && done+i < n; i++ {
					d := storetest.NewDelivery(ev, ep.ID)
					d.NextAttemptAt = now.Add(time.Hour)
					if done+i < 100 {
						d.NextAttemptAt = now
					}
					ds = append(ds, d)
				}
				if _, err := st.InsertEvent(ctx, ev, ds); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for range b.N {
				s, err := st.Stats(ctx, now)
				if err != nil {
					b.Fatal(err)
				}
				if s.Deliveries[convoy.DeliveryScheduled] != n || s.DueNow != 100 {
					b.Fatalf("stats %+v", s)
				}
			}
		})
	}
}
