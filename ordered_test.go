package convoy_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/convoytest"
	"github.com/convoykit/convoy/internal/testutil"
	"github.com/convoykit/convoy/store/bolt"
	"github.com/convoykit/convoy/store/memory"
)

// seqReceiver is a receiver for ordered delivery tests: each request
// carries a number as its data; the receiver reports it on arrived and
// holds the request until the test answers it, and counts how many
// requests it serves at once.
type seqReceiver struct {
	*httptest.Server
	arrived chan seqRequest

	mu       sync.Mutex
	inFlight int
	most     int
}

// seqRequest is one request a seqReceiver holds: n is its event's data;
// send the status code to answer with on reply.
type seqRequest struct {
	n     int
	reply chan int
}

func newSeqReceiver(t *testing.T) *seqReceiver {
	rc := &seqReceiver{arrived: make(chan seqRequest, 100)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n, err := strconv.Atoi(string(body))
		if err != nil {
			n = -1
		}
		rc.mu.Lock()
		rc.inFlight++
		rc.most = max(rc.most, rc.inFlight)
		rc.mu.Unlock()
		req := seqRequest{n: n, reply: make(chan int, 1)}
		rc.arrived <- req
		code := http.StatusServiceUnavailable
		select {
		case code = <-req.reply:
		case <-r.Context().Done():
		}
		// Down before the response leaves: the next request can only
		// follow it.
		rc.mu.Lock()
		rc.inFlight--
		rc.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// next returns the next request to arrive.
func (rc *seqReceiver) next(t *testing.T) seqRequest {
	t.Helper()
	select {
	case r := <-rc.arrived:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no request arrived")
		return seqRequest{}
	}
}

// busy returns how many requests the receiver serves now, and the most it
// served at once.
func (rc *seqReceiver) busy() (now, most int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.inFlight, rc.most
}

// sendNumbers sends n events whose data are 0 … n-1 and returns their
// deliveries to the endpoint epID, in Send order.
func sendNumbers(t *testing.T, d *convoy.Dispatcher, appID, epID string, n int) []*convoy.Delivery {
	t.Helper()
	var out []*convoy.Delivery
	for i := range n {
		res, err := d.Send(context.Background(), appID, convoy.Event{Type: "counter.moved", Data: json.RawMessage(strconv.Itoa(i))})
		require.NoError(t, err)
		for _, dl := range res.Deliveries {
			if dl.EndpointID == epID {
				out = append(out, dl)
			}
		}
	}
	require.Len(t, out, n)
	return out
}

// requireOneProcessing checks that the endpoint has exactly one delivery
// Processing: the one the receiver holds.
func requireOneProcessing(t *testing.T, d *convoy.Dispatcher, epID string) {
	t.Helper()
	ds, _, err := d.ListDeliveries(context.Background(), convoy.DeliveryQuery{
		EndpointID: epID, Statuses: []convoy.DeliveryStatus{convoy.DeliveryProcessing},
	}, convoy.Page{})
	require.NoError(t, err)
	require.Len(t, ds, 1, "deliveries of the ordered endpoint in flight")
}

// requireWaiting checks that none of ds has been attempted or claimed.
func requireWaiting(t *testing.T, d *convoy.Dispatcher, ds []*convoy.Delivery) {
	t.Helper()
	for _, dl := range ds {
		got, err := d.GetDelivery(context.Background(), dl.ID)
		require.NoError(t, err)
		require.Equal(t, convoy.DeliveryScheduled, got.Status, "delivery %s went ahead of an earlier one", dl.ID)
		require.Zero(t, got.Attempts)
	}
}

// TestOrderedEndpointGetsSendOrderOneAtATime: events sent to an ordered
// endpoint arrive in Send order, one request at a time though workers and
// PerEndpoint would allow eight, and a failed attempt holds the later
// events back until its retry has gone; an unordered endpoint of the
// same app gets its copies at once meanwhile.
func TestOrderedEndpointGetsSendOrderOneAtATime(t *testing.T) {
	const n = 10
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			b := setup(t, sk.open(t), func(cfg *convoy.Config) { cfg.PerEndpoint = 8 })
			rc := newSeqReceiver(t)
			free := testutil.NewReceiver(t, nil)
			ep := b.endpoint(t, rc.URL, func(e *convoy.Endpoint) { e.Ordered = true })
			b.endpoint(t, free.URL, nil)
			ds := sendNumbers(t, b.d, b.app.ID, ep.ID, n)
			require.Eventually(t, func() bool { return free.Count() == n }, 10*time.Second, 5*time.Millisecond,
				"the unordered endpoint waits for the ordered one")

			for i := 0; i < n; i++ {
				r := rc.next(t)
				require.Equal(t, i, r.n, "arrival order")
				requireOneProcessing(t, b.d, ep.ID)
				if i != 3 {
					r.reply <- http.StatusOK
					continue
				}
				// The fourth fails: the others wait for its retry, due in a
				// minute (LinearRetry), though they are due now.
				r.reply <- http.StatusInternalServerError
				b.waitStatus(t, ds[3].ID, convoy.DeliveryRetry)
				requireWaiting(t, b.d, ds[4:])
				require.NoError(t, b.clock.WaitForTimers(t.Context(), 1))
				b.clock.Advance(time.Minute)
				r = rc.next(t)
				require.Equal(t, 3, r.n, "the retry comes before the later events")
				requireOneProcessing(t, b.d, ep.ID)
				r.reply <- http.StatusOK
			}
			for _, dl := range ds {
				b.waitStatus(t, dl.ID, convoy.DeliverySuccess)
			}
			_, most := rc.busy()
			require.Equal(t, 1, most, "requests to the ordered endpoint at once")
		})
	}
}

// TestOrderedEndpointKeepsOrderAcrossACrash: a dispatcher dies (no Close,
// no more store writes) while the ordered endpoint's second event is in
// flight; another dispatcher on the same store sends nothing until that
// lease expires, then that event again, then the rest in Send order.
func TestOrderedEndpointKeepsOrderAcrossACrash(t *testing.T) {
	const n = 5
	for _, sk := range []struct {
		name string
		// open returns a store, and how to open it again after the
		// crash: the same memory, or the bolt file closed and reopened.
		open func(t *testing.T) (convoy.Store, func() convoy.Store)
	}{
		{"memory", func(*testing.T) (convoy.Store, func() convoy.Store) {
			st := memory.New()
			return st, func() convoy.Store { return st }
		}},
		{"bolt", func(t *testing.T) (convoy.Store, func() convoy.Store) {
			path := filepath.Join(t.TempDir(), "convoy.db")
			st, err := bolt.Open(path, nil)
			require.NoError(t, err)
			return st, func() convoy.Store {
				require.NoError(t, st.Close())
				st2, err := bolt.Open(path, nil)
				require.NoError(t, err)
				return st2
			}
		}},
	} {
		t.Run(sk.name, func(t *testing.T) {
			ctx := context.Background()
			st1, reopen := sk.open(t)
			cs := &crashable{Store: st1}
			clk := convoytest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			cfg := convoy.Config{Store: cs, Workers: 8, PerEndpoint: 8, Timeout: 2 * time.Second, Lease: time.Minute,
				Logger: testutil.Logger(t), AllowNetworks: loopback, Clock: clk, Retry: convoy.LinearRetry(time.Second, 5)}
			d1, err := convoy.New(cfg)
			require.NoError(t, err)
			require.NoError(t, d1.Start(ctx))
			rc := newSeqReceiver(t)
			app, err := d1.CreateApp(ctx, convoy.App{Name: "a"})
			require.NoError(t, err)
			ep, err := d1.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: rc.URL, Ordered: true})
			require.NoError(t, err)
			ds := sendNumbers(t, d1, app.ID, ep.ID, n)

			r := rc.next(t)
			require.Equal(t, 0, r.n)
			r.reply <- http.StatusOK
			r = rc.next(t)
			require.Equal(t, 1, r.n)
			b1 := &bundle{d: d1}
			b1.waitStatus(t, ds[0].ID, convoy.DeliverySuccess)

			// The process dies with the second event in flight; the
			// receiver's answer is never recorded.
			cs.crash()
			r.reply <- http.StatusOK
			require.Eventually(t, func() bool { now, _ := rc.busy(); return now == 0 }, 10*time.Second, 5*time.Millisecond)
			st2 := reopen()
			cfg.Store = st2
			d2, err := convoy.New(cfg)
			require.NoError(t, err)
			require.NoError(t, d2.Start(ctx))
			t.Cleanup(func() {
				closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				require.NoError(t, d2.Close(closeCtx))
				require.NoError(t, st2.Close())
				// The abandoned dispatcher still has goroutines; stop them.
				require.Error(t, d1.Close(func() context.Context { c, cl := context.WithCancel(ctx); cl(); return c }()))
			})
			b2 := &bundle{d: d2}
			held, err := d2.GetDelivery(ctx, ds[1].ID)
			require.NoError(t, err)
			require.Equal(t, convoy.DeliveryProcessing, held.Status, "under the dead process's lease")
			require.NoError(t, clk.WaitForTimers(ctx, 1))
			requireWaiting(t, d2, ds[2:])

			clk.Advance(2 * time.Minute) // the dead process's lease expires
			for i := 1; i < n; i++ {
				r := rc.next(t)
				require.Equal(t, i, r.n, "arrival order after the crash")
				requireOneProcessing(t, d2, ep.ID)
				r.reply <- http.StatusOK
			}
			for _, dl := range ds {
				b2.waitStatus(t, dl.ID, convoy.DeliverySuccess)
			}
			as, _, err := d2.ListAttempts(ctx, ds[1].ID, convoy.Page{})
			require.NoError(t, err)
			require.Len(t, as, 1, "the dead process's attempt was never recorded")
			_, most := rc.busy()
			require.Equal(t, 1, most)
		})
	}
}

// BenchmarkOrderedDelivery measures what head-of-line blocking costs: the
// deliveries/s to one ordered endpoint and to one unordered endpoint, in
// the same run, with 32 workers and a receiver that takes about a
// millisecond per request, and reports their ratio (ordered/unordered).
// The events are queued before the dispatcher starts, so the rates are
// the delivery's, not the sender's.
func BenchmarkOrderedDelivery(b *testing.B) {
	const n = 300
	for _, sk := range []struct {
		name string
		open func(b *testing.B) convoy.Store
	}{
		{"memory", func(*testing.B) convoy.Store { return memory.New() }},
		{"bolt", func(b *testing.B) convoy.Store {
			st, err := bolt.Open(filepath.Join(b.TempDir(), "convoy.db"), nil)
			require.NoError(b, err)
			return st
		}},
	} {
		b.Run(sk.name, func(b *testing.B) {
			var ordered, unordered []float64
			for range b.N {
				ordered = append(ordered, orderedRate(b, sk.open(b), n, true))
				unordered = append(unordered, orderedRate(b, sk.open(b), n, false))
			}
			b.ReportMetric(median(ordered)/median(unordered), "ordered/unordered")
			b.ReportMetric(median(ordered), "ordered/s")
			b.ReportMetric(median(unordered), "unordered/s")
		})
	}
}

// orderedRate returns the deliveries/s of n events to one endpoint,
// ordered or not, whose receiver takes a millisecond per request.
func orderedRate(b *testing.B, st convoy.Store, n int, ordered bool) float64 {
	d, err := convoy.New(convoy.Config{
		Store: st, Workers: 32, PerEndpoint: 32, Timeout: 5 * time.Second,
		AllowNetworks: loopback, Logger: testutil.LoggerAt(b, slog.LevelError),
	})
	require.NoError(b, err)
	ctx := context.Background()
	defer func() {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_ = d.Close(cctx)
		_ = st.Close()
	}()
	var (
		mu     sync.Mutex
		served int
		done   = make(chan struct{})
	)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(time.Millisecond) // the receiver's own work
		mu.Lock()
		if served++; served == n {
			close(done)
		}
		mu.Unlock()
	}))
	defer rc.Close()
	app, err := d.CreateApp(ctx, convoy.App{Name: "bench"})
	require.NoError(b, err)
	_, err = d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: rc.URL, Ordered: ordered})
	require.NoError(b, err)
	// Queue the events first, so that the rate is the delivery's alone,
	// not bounded by how fast one goroutine sends.
	for i := range n {
		_, err := d.Send(ctx, app.ID, convoy.Event{Type: "counter.moved", Data: json.RawMessage(strconv.Itoa(i))})
		require.NoError(b, err)
	}
	start := time.Now()
	require.NoError(b, d.Start(ctx))
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatal("deliveries did not finish")
	}
	return float64(n) / time.Since(start).Seconds()
}
