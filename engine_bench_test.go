package convoy_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil"
	"github.com/convoykit/convoy/store/bolt"
	"github.com/convoykit/convoy/store/memory"
)

// BenchmarkDelivery measures one delivery end to end, Send to recorded
// success, sender and receiver in this process: its B/op and allocs/op
// are what a delivery costs the garbage collector, which on a busy
// machine is much of its CPU. The ceiling sub-benchmark is a bare
// net/http loop POSTing the same body to the same receiver, measured in
// the same run: read each store's figures as a ratio to it.
//
//	go test -run '^$' -bench Delivery -benchmem
func BenchmarkDelivery(b *testing.B) {
	body := []byte(`{"pad":"` + strings.Repeat("x", 1000) + `"}`)
	b.Run("ceiling", func(b *testing.B) {
		srv := benchReceiver(b)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		b.ReportAllocs()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(string(body)))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	})
	b.Run("memory", func(b *testing.B) { benchDeliveries(b, memory.New(), body) })
	b.Run("bolt", func(b *testing.B) {
		st, err := bolt.Open(b.TempDir()+"/convoy.db", nil)
		require.NoError(b, err)
		b.Cleanup(func() { st.Close() })
		benchDeliveries(b, st, body)
	})
}

// benchReceiver is a receiver that reads the body and answers 200.
func benchReceiver(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// benchDeliveries sends b.N events from 64 goroutines to one endpoint and
// waits until every one is recorded delivered.
func benchDeliveries(b *testing.B, st convoy.Store, body []byte) {
	srv := benchReceiver(b)
	rec := &countRecords{want: int64(b.N), done: make(chan struct{})}
	d, err := convoy.New(convoy.Config{
		Store: st, Workers: 64, PerEndpoint: 64, AllowNetworks: loopback,
		Logger: testutil.LoggerAt(b, slog.LevelWarn), Observer: rec,
	})
	require.NoError(b, err)
	ctx := context.Background()
	app, err := d.CreateApp(ctx, convoy.App{Name: "bench"})
	require.NoError(b, err)
	_, err = d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: srv.URL})
	require.NoError(b, err)
	require.NoError(b, d.Start(ctx))
	b.Cleanup(func() { _ = d.Close(ctx) })

	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, err := d.Send(ctx, app.ID, convoy.Event{Type: "bench", Data: body}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-rec.done:
	case <-time.After(time.Minute):
		b.Fatalf("%d of %d recorded after a minute", rec.n.Load(), b.N)
	}
	b.StopTimer()
}

// countRecords closes done once want deliveries were recorded delivered.
type countRecords struct {
	convoy.NopObserver
	want int64
	n    atomic.Int64
	done chan struct{}
}

func (c *countRecords) Recorded(_ context.Context, r convoy.RecordInfo) {
	if r.Status == convoy.DeliverySuccess && c.n.Add(1) == c.want {
		close(c.done)
	}
}
