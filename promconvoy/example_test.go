package promconvoy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/promconvoy"
	"github.com/convoykit/convoy/store/memory"
)

// Wire a Collector into a Dispatcher, register it and serve it: here the
// scrape is made in-process.
func ExampleNew() {
	ctx := context.Background()
	metrics := promconvoy.New(promconvoy.Options{})
	st := memory.New()
	defer st.Close()
	d, err := convoy.New(convoy.Config{
		Store:         st,
		Observer:      metrics,
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, // the local receiver
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	metrics.SetDispatcher(d)
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics)
	handler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})

	_ = d.Start(ctx)
	defer d.Close(ctx)
	receiver := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer receiver.Close()
	app, _ := d.CreateApp(ctx, convoy.App{Name: "Acme"})
	_, _ = d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: receiver.URL})
	_, _ = d.Send(ctx, app.ID, convoy.Event{Type: "invoice.paid", Data: json.RawMessage(`{}`)})

	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		// One scrape reads the metrics one after the other, while the
		// dispatcher counts: wait for both.
		text := rec.Body.String()
		if strings.Contains(text, `convoy_deliveries_total{status="success"} 1`) &&
			strings.Contains(text, `convoy_attempts_total{status_class="2xx",success="true"} 1`) {
			for _, line := range strings.Split(text, "\n") {
				if strings.HasPrefix(line, "convoy_deliveries_total") || strings.HasPrefix(line, "convoy_endpoints") ||
					strings.HasPrefix(line, `convoy_attempts_total{status_class="2xx"`) {
					fmt.Println(line)
				}
			}
			break
		}
	}
	// Output:
	// convoy_attempts_total{status_class="2xx",success="false"} 0
	// convoy_attempts_total{status_class="2xx",success="true"} 1
	// convoy_deliveries_total{status="discarded"} 0
	// convoy_deliveries_total{status="failure"} 0
	// convoy_deliveries_total{status="success"} 1
	// convoy_endpoints{status="active"} 1
	// convoy_endpoints{status="inactive"} 0
	// convoy_endpoints{status="pending"} 0
}
