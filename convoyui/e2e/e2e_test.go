// Package e2e drives the convoyui dashboard in a real headless Chromium
// (Debian's /usr/bin/chromium, through chromedp): it clicks through the
// pages, re-sends a Discarded delivery and sees it arrive, deactivates an
// endpoint and sees its new events Discarded, checks that no page is
// wider than a phone's screen, and saves a screenshot of every page at
// laptop and phone width.
//
//	apt-get install -y chromium
//	go test ./...                          # screenshots in ./screenshots
//	go test ./... -args -screenshots /tmp/shots
//
// It is a module of its own so that the root module does not depend on
// chromedp. CONVOY_CHROMIUM names another browser binary.
package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/convoyui"
	"github.com/convoykit/convoy/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var screenshots = flag.String("screenshots", "screenshots", "directory the screenshots are written to")

// chromium is the browser binary.
func chromium(t *testing.T) string {
	path := os.Getenv("CONVOY_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no browser at %s (apt-get install -y chromium, or set CONVOY_CHROMIUM): %v", path, err)
	}
	return path
}

// receiver is a customer's endpoint: it answers 500 until healthy is set,
// and reports the delivery ID of every request it accepts.
type receiver struct {
	*httptest.Server
	healthy   atomic.Bool
	delivered chan string
}

func newReceiver(t *testing.T, healthy bool) *receiver {
	rc := &receiver{delivered: make(chan string, 100)}
	rc.healthy.Store(healthy)
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if !rc.healthy.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":"database unavailable"}`)
			return
		}
		_, _ = io.WriteString(w, `{"received":true}`)
		rc.delivered <- r.Header.Get(convoy.HeaderDeliveryID)
	}))
	t.Cleanup(rc.Server.Close)
	return rc
}

// world is a service with the dashboard at /webhooks/ and a dispatcher
// whose "billing" endpoint died: one delivery ended in Failure after two
// attempts, a later one was Discarded.
type world struct {
	d                 *convoy.Dispatcher
	base              string
	app               *convoy.App
	good, bad         *convoy.Endpoint
	goodRecv, badRecv *receiver
	failed, discarded string
	event             string
}

func newWorld(t *testing.T) *world {
	ctx := context.Background()
	store := memory.New()
	w := &world{}
	statuses := make(chan convoy.EndpointStatusEvent, 10)
	d, err := convoy.New(convoy.Config{
		Store:            store,
		Retry:            convoy.LinearRetry(20*time.Millisecond, 1),
		AllowNetworks:    []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnEndpointStatus: func(e convoy.EndpointStatusEvent) { statuses <- e },
	})
	require.NoError(t, err)
	require.NoError(t, d.Start(ctx))
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, d.Close(cctx))
		require.NoError(t, store.Close())
	})
	w.d = d
	w.goodRecv, w.badRecv = newReceiver(t, true), newReceiver(t, false)
	w.app, err = d.CreateApp(ctx, convoy.App{Name: "Acme Corp", SupportEmail: "webhooks@acme.example"})
	require.NoError(t, err)
	w.good, err = d.AddEndpoint(ctx, w.app.ID, convoy.Endpoint{URL: w.goodRecv.URL + "/hooks/orders?token=s3cr3t-token",
		Description: "Order fulfilment", Headers: map[string]string{"Authorization": "Bearer not-for-display"}})
	require.NoError(t, err)
	w.bad, err = d.AddEndpoint(ctx, w.app.ID, convoy.Endpoint{URL: w.badRecv.URL + "/billing/webhooks", Description: "Billing",
		EventTypes: []string{"invoice.*"}})
	require.NoError(t, err)

	for i, typ := range []string{"order.created", "invoice.created", "order.paid"} {
		res, err := d.Send(ctx, w.app.ID, convoy.Event{Type: typ,
			Data: json.RawMessage(fmt.Sprintf(`{"id":"evt_%d","amount":%d,"currency":"EUR","customer":{"name":"Ada Lovelace","email":"ada@example.com"}}`, i, 1000+i*250))})
		require.NoError(t, err)
		for _, dl := range res.Deliveries {
			if dl.EndpointID == w.bad.ID {
				w.failed, w.event = dl.ID, res.Event.ID
			}
		}
	}
	select {
	case e := <-statuses:
		require.Equal(t, w.bad.ID, e.EndpointID)
		require.Equal(t, convoy.EndpointInactive, e.To)
	case <-time.After(10 * time.Second):
		t.Fatal("the billing endpoint never died")
	}
	res, err := d.Send(ctx, w.app.ID, convoy.Event{Type: "invoice.paid", Data: json.RawMessage(`{"id":"evt_9","invoice":"in_42","amount":1999}`)})
	require.NoError(t, err)
	for _, dl := range res.Deliveries {
		if dl.EndpointID == w.bad.ID {
			require.Equal(t, convoy.DeliveryDiscarded, dl.Status)
			w.discarded = dl.ID
		}
	}
	for range 4 { // every event reached the orders endpoint, which has no filter
		select {
		case <-w.goodRecv.delivered:
		case <-time.After(10 * time.Second):
			t.Fatal("the orders endpoint got nothing")
		}
	}

	mux := http.NewServeMux()
	mux.Handle("/webhooks/", http.StripPrefix("/webhooks", convoyui.Handler(d, convoyui.Options{Insecure: true})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	w.base = srv.URL + "/webhooks/"
	return w
}

// browser starts Chromium on a fresh profile and returns a tab's context.
// JavaScript confirmations are accepted.
func browser(t *testing.T) context.Context {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx)) // starts the browser

	// Every error the console shows fails the test: a CSP violation (an
	// inline style or script), a script exception, a resource that did not
	// load.
	var (
		mu       sync.Mutex
		problems []string
	)
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == "error" || m.Type == "warning" {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		require.Empty(t, problems, "the browser's console")
	})

	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return // the context ended
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return ctx
}

// shot saves a full-page screenshot as NAME.png.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(*screenshots, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(*screenshots, name+".png"), png, 0o644))
}

// onPage waits for the page named name (its body's data-page).
func onPage(name string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(`body[data-page="` + name + `"]`))
}

// click clicks the element the CSS selector finds.
func click(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }

// visible waits for the element the CSS selector finds.
func visible(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(sel))
}

// text is the visible text of the first element the CSS selector finds.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(t, err)
	return s
}

// eval evaluates a JavaScript expression.
func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	require.NoError(t, err)
	return v
}

// TestClickThroughAndRepair is the tour: overview → endpoint → delivery →
// attempt, a re-send that arrives, a deactivation whose new events are
// Discarded.
func TestClickThroughAndRepair(t *testing.T) {
	w := newWorld(t)
	ctx := browser(t)
	as, _, err := w.d.ListAttempts(context.Background(), w.failed, convoy.Page{})
	require.NoError(t, err)
	require.Len(t, as, 2)

	// Overview: the dead endpoint stands out; click it.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(w.base), onPage("overview")))
	require.Contains(t, text(t, ctx, `tr.row-bad`), "/billing/webhooks")
	shot(t, ctx, "laptop-overview")
	require.NoError(t, chromedp.Do(ctx, click(`tr.row-bad a[href="endpoint?id=`+w.bad.ID+`"]`), onPage("endpoint")))
	require.Contains(t, text(t, ctx, "h1"), "inactive")
	shot(t, ctx, "laptop-endpoint")

	// Endpoint → its Failure delivery → its last attempt.
	require.NoError(t, chromedp.Do(ctx,
		click(`.chips a[href$="status=Failure#deliveries"]`),
		visible(`.chips a[aria-current][href$="status=Failure#deliveries"]`),
		click(`a[href="delivery?id=`+w.failed+`"]`), onPage("delivery")))
	require.Contains(t, text(t, ctx, "h1"), "Failure")
	require.Contains(t, text(t, ctx, ".attempt"), "database unavailable")
	shot(t, ctx, "laptop-delivery")
	require.NoError(t, chromedp.Do(ctx, click(`a[href="attempt?delivery=`+w.failed+`&id=`+as[0].ID+`"]`), onPage("attempt")))
	require.Contains(t, text(t, ctx, "h1"), "Attempt 2")
	body := text(t, ctx, ".attempt")
	require.Contains(t, body, "POST")
	require.Contains(t, body, "/billing/webhooks")
	require.Contains(t, body, `"amount": 1250`, "the request body is pretty-printed")
	shot(t, ctx, "laptop-attempt")

	// Re-send the Discarded delivery once the receiver is back: it arrives.
	w.badRecv.healthy.Store(true)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(w.base+"delivery?id="+w.discarded), onPage("delivery")))
	require.Contains(t, text(t, ctx, "h1"), "Discarded")
	require.NoError(t, chromedp.Do(ctx, click(`form[action="resend"] button`), visible(`.flash-ok`)))
	require.Contains(t, text(t, ctx, ".flash-ok"), "Delivery re-sent")
	select {
	case id := <-w.badRecv.delivered:
		require.Equal(t, w.discarded, id)
	case <-time.After(10 * time.Second):
		t.Fatal("the re-sent delivery never arrived")
	}
	require.Eventually(t, func() bool {
		if err := chromedp.Do(ctx, chromedp.Reload(), onPage("delivery")); err != nil {
			return false
		}
		h1, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
		return err == nil && strings.Contains(h1, "Success")
	}, 10*time.Second, 50*time.Millisecond, "the page shows the delivery succeeded")
	shot(t, ctx, "laptop-resent")

	// Deactivate the orders endpoint (the confirmation is accepted): its
	// new events are Discarded and nothing reaches it.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(w.base+"endpoint?id="+w.good.ID), onPage("endpoint"),
		click(`form[action="endpoint-status"] button[value="inactive"]`), visible(`.flash-ok`)))
	require.Contains(t, text(t, ctx, ".flash-ok"), "Endpoint deactivated")
	require.Contains(t, text(t, ctx, "h1"), "inactive")
	res, err := w.d.Send(context.Background(), w.app.ID, convoy.Event{Type: "order.shipped", Data: json.RawMessage(`{"id":"evt_10"}`)})
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(w.base+"endpoint?id="+w.good.ID+"&status=Discarded"), onPage("endpoint")))
	row := text(t, ctx, `tbody tr:first-child`)
	require.Contains(t, row, "Discarded")
	require.Contains(t, row, "order.shipped")
	require.NotEmpty(t, text(t, ctx, `tbody tr:first-child a[href="delivery?id=`+res.Deliveries[0].ID+`"]`))
	shot(t, ctx, "laptop-deactivated")
	select {
	case id := <-w.goodRecv.delivered:
		t.Fatalf("delivery %s reached a deactivated endpoint", id)
	default:
	}
}

// TestEveryPageFitsAPhone: at 390 px no page is wider than the screen
// (wide tables scroll inside their frame), and each is saved at laptop
// and phone width.
func TestEveryPageFitsAPhone(t *testing.T) {
	w := newWorld(t)
	ctx := browser(t)
	as, _, err := w.d.ListAttempts(context.Background(), w.failed, convoy.Page{})
	require.NoError(t, err)
	pages := []struct{ name, path string }{
		{"overview", ""},
		{"apps", "apps"},
		{"app", "app?id=" + w.app.ID},
		{"endpoint", "endpoint?id=" + w.bad.ID},
		{"events", "events"},
		{"event", "event?id=" + w.event},
		{"delivery", "delivery?id=" + w.failed},
		{"attempt", "attempt?delivery=" + w.failed + "&id=" + as[0].ID},
	}
	for _, size := range []struct {
		name    string
		emulate chromedp.Action[chromedp.Void]
	}{
		{"laptop", chromedp.EmulateViewport(1280, 900)},
		{"phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)},
	} {
		require.NoError(t, chromedp.Do(ctx, size.emulate))
		for _, p := range pages {
			require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(w.base+p.path), onPage(p.name)))
			overflow := eval[int64](t, ctx, `document.documentElement.scrollWidth - document.documentElement.clientWidth`)
			require.LessOrEqual(t, overflow, int64(0), "%s is %d px wider than a %s screen", p.name, overflow, size.name)
			shot(t, ctx, size.name+"-"+p.name)
		}
	}
}

// TestKeyboard: the first Tab reaches the skip link, with a visible focus
// outline, and Enter on a focused link follows it.
func TestKeyboard(t *testing.T) {
	w := newWorld(t)
	ctx := browser(t)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(w.base), onPage("overview"), chromedp.KeyEvent(kb.Tab)))
	require.Equal(t, "Skip to content", eval[string](t, ctx, `document.activeElement.textContent`))
	require.Equal(t, "solid", eval[string](t, ctx, `getComputedStyle(document.activeElement).outlineStyle`))
	for range 4 { // the skip link, the brand, Overview, Apps
		require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(kb.Tab)))
	}
	require.Equal(t, "Events", eval[string](t, ctx, `document.activeElement.textContent`))
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(kb.Enter), onPage("events")))
}
