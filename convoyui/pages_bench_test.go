package convoyui_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/convoyui"
	"github.com/convoykit/convoy/store/bolt"
)

// benchDeliveries is the size of the store BenchmarkPages renders from.
// The store is filled once per run, when the benchmark runs (go test
// -bench Pages); filling 1,000,000 deliveries takes a few minutes.
var benchDeliveries = flag.Int("convoyui.deliveries", 1_000_000, "deliveries in the store of BenchmarkPages")

// BenchmarkPages renders each page of the dashboard from a bolt store
// holding -convoyui.deliveries deliveries (by default 1,000,000): one app
// with 10 endpoints, each event sent to all of them, created over 30 days,
// 70% Success, 10% each Failure, Discarded and Scheduled (an hour ahead),
// plus one delivery with two real attempts. Every page is a few indexed
// store calls, so its cost does not grow with the store.
func BenchmarkPages(b *testing.B) {
	if testing.Short() {
		b.Skip("fills a large store")
	}
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "pages.db")
	st, err := bolt.Open(path, &bolt.Options{InitialMmapSize: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	fill := time.Now()
	big := fillStore(b, st, *benchDeliveries)
	b.Logf("filled %d deliveries in %s", *benchDeliveries, time.Since(fill).Round(time.Second))
	attempted := attemptOne(b, st)

	d, err := convoy.New(convoy.Config{Store: st, Logger: quiet}) // not started: reads only
	if err != nil {
		b.Fatal(err)
	}
	h := convoyui.Handler(d, convoyui.Options{Authorize: func(*http.Request) bool { return true }, Logger: quiet})
	render := func(b *testing.B, path string) string {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/"+path, nil))
		if w.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", path, w.Code, w.Body.String())
		}
		return w.Body.String()
	}
	endpoint := big.endpoints[3]
	first := render(b, "endpoint?id="+endpoint)
	m := regexp.MustCompile(`href="(endpoint\?[^"]*cursor=[^"]*)" rel="next"`).FindStringSubmatch(first)
	if m == nil {
		b.Fatal("no next page")
	}
	page2 := html(m[1])
	as, _, err := d.ListAttempts(ctx, attempted, convoy.Page{})
	if err != nil || len(as) != 2 {
		b.Fatalf("attempts %v %v", len(as), err)
	}
	mid := big.base.Add(15 * 24 * time.Hour)
	for _, p := range []struct{ name, path string }{
		{"overview", ""},
		{"apps", "apps"},
		{"app", "app?id=" + big.app},
		{"endpoint", "endpoint?id=" + endpoint},
		{"endpoint-page2", page2},
		{"endpoint-Discarded", "endpoint?id=" + endpoint + "&status=Discarded"},
		{"endpoint-Scheduled", "endpoint?id=" + endpoint + "&status=Scheduled"},
		{"events", "events"},
		{"events-app-type", "events?app=" + big.app + "&type=invoice.paid"},
		{"events-time-range", "events?" + url.Values{"from": {mid.Format(time.RFC3339)}, "to": {mid.Add(time.Hour).Format(time.RFC3339)}}.Encode()},
		{"event", "event?id=" + big.event},
		{"delivery", "delivery?id=" + attempted},
		{"attempt", "attempt?delivery=" + attempted + "&id=" + as[1].ID},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				render(b, p.path)
			}
		})
	}
}

func html(s string) string { return regexp.MustCompile(`&amp;`).ReplaceAllString(s, "&") }

// bigStore names what fillStore created.
type bigStore struct {
	app       string
	endpoints []string
	event     string // one event in the middle
	base      time.Time
}

// fillStore inserts n deliveries through Store.InsertEvent from several
// writers (bolt commits their inserts together).
func fillStore(b *testing.B, st convoy.Store, n int) bigStore {
	ctx := context.Background()
	const perEvent = 10
	d, err := convoy.New(convoy.Config{Store: st, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	app, err := d.CreateApp(ctx, convoy.App{Name: "Big Corp"})
	if err != nil {
		b.Fatal(err)
	}
	big := bigStore{app: app.ID, base: time.Now().Add(-30 * 24 * time.Hour)}
	for i := range perEvent {
		ep, err := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: fmt.Sprintf("https://big%d.example/hooks?token=t%d", i, i)})
		if err != nil {
			b.Fatal(err)
		}
		big.endpoints = append(big.endpoints, ep.ID)
	}
	events := n / perEvent
	step := 30 * 24 * time.Hour / time.Duration(max(events, 1))
	types := []string{"invoice.created", "invoice.paid", "customer.updated", "subscription.renewed"}
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
		middle   = events / 2
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= events {
					return
				}
				created := big.base.Add(time.Duration(i) * step)
				ev := &convoy.Event{ID: convoy.NewID(), AppID: app.ID, Type: types[i%len(types)], CreatedAt: created,
					Data: json.RawMessage(fmt.Sprintf(`{"id":"evt_%08d","customer":"cus_%06d","amount":%d,"currency":"EUR","lines":[{"sku":"plan-pro","qty":1}]}`, i, i%997, 100+i%9900))}
				if i == middle {
					big.event = ev.ID
				}
				ds := make([]*convoy.Delivery, perEvent)
				for j := range ds {
					status := convoy.DeliverySuccess
					switch (i + j) % 10 {
					case 7:
						status = convoy.DeliveryFailure
					case 8:
						status = convoy.DeliveryDiscarded
					case 9:
						status = convoy.DeliveryScheduled
					}
					ds[j] = &convoy.Delivery{ID: convoy.NewID(), EventID: ev.ID, AppID: app.ID, EndpointID: big.endpoints[j],
						EventType: ev.Type, Status: status, Attempts: 1, RoundAttempts: 1,
						NextAttemptAt: time.Now().Add(time.Hour), CreatedAt: created, UpdatedAt: created}
				}
				if _, err := st.InsertEvent(ctx, ev, ds); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	return big
}

// attemptOne delivers one event through a started dispatcher to a
// receiver that fails once, and returns the delivery: two attempts.
func attemptOne(b *testing.B, st convoy.Store) string {
	ctx := context.Background()
	var calls atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer recv.Close()
	succeeded := make(chan string, 1)
	d, err := convoy.New(convoy.Config{Store: st, Logger: quiet, Retry: convoy.LinearRetry(time.Millisecond, 3),
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		OnAttempt: func(e convoy.AttemptEvent) {
			if e.Delivery.Status == convoy.DeliverySuccess {
				succeeded <- e.Delivery.ID
			}
		}})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer d.Close(ctx)
	app, err := d.CreateApp(ctx, convoy.App{Name: "Small"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: recv.URL}); err != nil {
		b.Fatal(err)
	}
	if _, err := d.Send(ctx, app.ID, convoy.Event{Type: "invoice.paid", Data: json.RawMessage(`{"n":1}`)}); err != nil {
		b.Fatal(err)
	}
	select {
	case id := <-succeeded:
		return id
	case <-time.After(30 * time.Second):
		b.Fatal("the delivery did not succeed")
		return ""
	}
}
