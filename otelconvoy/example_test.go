package otelconvoy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/otelconvoy"
	"github.com/convoykit/convoy/store/memory"
)

// instrument makes the dispatcher of cfg report to OpenTelemetry, as a
// service would.
func instrument(cfg convoy.Config, mp metric.MeterProvider, tp trace.TracerProvider) (*convoy.Dispatcher, error) {
	tel, err := otelconvoy.New(otelconvoy.Options{MeterProvider: mp, TracerProvider: tp})
	if err != nil {
		return nil, err
	}
	cfg.Observer = tel                    // metrics and spans of every Send and attempt
	cfg.WrapTransport = tel.WrapTransport // a client span per request; the SSRF guard stays underneath
	d, err := convoy.New(cfg)
	if err != nil {
		return nil, err
	}
	tel.SetDispatcher(d) // the queue gauges read d.Stats at each collection
	return d, nil
}

// Wire a Telemetry into a Dispatcher: as its Observer, around its
// transport, and as the source of the queue gauges. Here the providers
// are read in memory; in a service they export to a collector.
func ExampleNew() {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer mp.Shutdown(ctx)
	defer tp.Shutdown(ctx)

	st := memory.New()
	defer st.Close()
	d, err := instrument(convoy.Config{
		Store:         st,
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, // the local receiver
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, mp, tp)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = d.Start(ctx)
	defer d.Close(ctx)

	receiver := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer receiver.Close()
	app, _ := d.CreateApp(ctx, convoy.App{Name: "Acme"})
	_, _ = d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: receiver.URL})
	_, _ = d.Send(ctx, app.ID, convoy.Event{Type: "invoice.paid", Data: json.RawMessage(`{}`)})

	// Wait for the delivery to end, as the counter says.
	var rm metricdata.ResourceMetrics
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		_ = reader.Collect(ctx, &rm)
		if m, ok := findMetric(rm, otelconvoy.ScopeName, "convoy.deliveries"); ok {
			p := m.Data.(metricdata.Sum[int64]).DataPoints[0]
			v, _ := p.Attributes.Value(otelconvoy.AttrDeliveryStatus)
			fmt.Println("convoy.deliveries", v.AsString(), p.Value)
			break
		}
	}
	for _, s := range spans.Ended() {
		fmt.Println("span", s.Name(), s.SpanKind())
	}
	// Unordered output:
	// convoy.deliveries success 1
	// span convoy.Send producer
	// span HTTP POST client
	// span convoy.attempt consumer
}
