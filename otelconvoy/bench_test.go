package otelconvoy_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/otelconvoy"
	"github.com/convoykit/convoy/store/memory"
)

// benchDispatcher is a started dispatcher on a memory store with one
// endpoint on a local receiver, and how many deliveries it has finished.
type benchDispatcher struct {
	d    *convoy.Dispatcher
	app  string
	done int
}

func newBenchDispatcher(b *testing.B, url string, tweak func(*convoy.Config)) *benchDispatcher {
	b.Helper()
	st := memory.New()
	cfg := convoy.Config{
		Store: st, Workers: 32, PerEndpoint: 32,
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	d, err := convoy.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = d.Close(context.Background())
		_ = st.Close()
	})
	app, err := d.CreateApp(ctx, convoy.App{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: url}); err != nil {
		b.Fatal(err)
	}
	return &benchDispatcher{d: d, app: app.ID}
}

// round sends n events from 8 goroutines and waits until their
// deliveries have succeeded; it returns how long that took.
func (bd *benchDispatcher) round(b *testing.B, n int) time.Duration {
	ctx := context.Background()
	data := json.RawMessage(`{"invoice":"in_1042","amount":4200,"currency":"EUR"}`)
	start := time.Now()
	var wg sync.WaitGroup
	const senders = 8
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := s; i < n; i += senders {
				if _, err := bd.d.Send(ctx, bd.app, convoy.Event{Type: "invoice.paid", Data: data}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	bd.done += n
	for {
		s, err := bd.d.Stats(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if s.Deliveries[convoy.DeliverySuccess] >= bd.done {
			return time.Since(start)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// BenchmarkOverhead measures delivery throughput without telemetry and
// with otelconvoy, in alternating rounds of the same run, so that every
// configuration sees the same machine: "none-again" is none once more,
// to show the noise of the machine; "metrics" is the Observer alone
// with metrics read by a manual reader (no tracer provider, no otelhttp);
// "full" adds traces, every span sampled and exported through a batch
// processor to an exporter that drops them, and otelhttp around the
// transport. It reports the deliveries per second of each and their
// ratios to none. b.N is the number of deliveries per configuration. The
// memory store makes this a worst case: with bolt or PostgreSQL a
// delivery costs more and the same telemetry weighs less.
func BenchmarkOverhead(b *testing.B) {
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer receiver.Close()

	newTel := func(o otelconvoy.Options) *otelconvoy.Telemetry {
		tel, err := otelconvoy.New(o)
		if err != nil {
			b.Fatal(err)
		}
		return tel
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	mpFull := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer func() {
		_ = mp.Shutdown(context.Background())
		_ = mpFull.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
	}()
	metricsOnly := newTel(otelconvoy.Options{MeterProvider: mp, TracerProvider: noop.NewTracerProvider()})
	full := newTel(otelconvoy.Options{MeterProvider: mpFull, TracerProvider: tp})

	configs := []struct {
		name string
		bd   *benchDispatcher
		took time.Duration
	}{
		{name: "none", bd: newBenchDispatcher(b, receiver.URL, nil)},
		// The same as none: how far apart two equal configurations land
		// is the noise of the machine.
		{name: "none-again", bd: newBenchDispatcher(b, receiver.URL, nil)},
		{name: "metrics", bd: newBenchDispatcher(b, receiver.URL, func(c *convoy.Config) { c.Observer = metricsOnly })},
		{name: "full", bd: newBenchDispatcher(b, receiver.URL, func(c *convoy.Config) {
			c.Observer = full
			c.WrapTransport = full.WrapTransport
		})},
	}
	metricsOnly.SetDispatcher(configs[2].bd.d)
	full.SetDispatcher(configs[3].bd.d)

	// Warm them up (connections, allocations) outside the measure.
	for _, c := range configs {
		c.bd.round(b, 200)
	}
	b.ResetTimer()
	ratios := make([][]float64, len(configs)) // per round: rate over none's
	for round, left := 0, b.N; left > 0; round++ {
		n := min(left, 500)
		took := make([]time.Duration, len(configs))
		// Each goes first in turn, so none gains by its place.
		for k := range configs {
			i := (round + k) % len(configs)
			took[i] = configs[i].bd.round(b, n)
			configs[i].took += took[i]
		}
		for i := range configs {
			ratios[i] = append(ratios[i], took[0].Seconds()/took[i].Seconds())
		}
		left -= n
	}
	b.StopTimer()
	for i, c := range configs {
		b.ReportMetric(float64(b.N)/c.took.Seconds(), c.name+"-deliveries/s")
		if i > 0 {
			// The median of the rounds' ratios: a round disturbed by the
			// rest of the machine moves it less than it moves the totals.
			b.ReportMetric(median(ratios[i]), c.name+"/none")
		}
	}
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}
