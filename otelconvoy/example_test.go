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

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/otelconvoy"
	"github.com/convoykit/convoy/store/memory"
)

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

	tel, err := otelconvoy.New(otelconvoy.Options{MeterProvider: mp, TracerProvider: tp})
	if err != nil {
		fmt.Println(err)
		return
	}
	st := memory.New()
	defer st.Close()
	d, err := convoy.New(convoy.Config{
		Store:         st,
		Observer:      tel,
		WrapTransport: tel.WrapTransport,
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, // the local receiver
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	tel.SetDispatcher(d)
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
