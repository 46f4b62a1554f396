package convoyui_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/convoyui"
	"github.com/convoykit/convoy/internal/testutil"
	"github.com/convoykit/convoy/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The values below must never appear in a page: secrets, a custom header
// value, URL tokens and a cookie the receiver set. Each contains "SEKRIT"
// so that a page can be searched for all of them at once.
const (
	endpointSecret = "whsec_U0VLUklULWVuZHBvaW50LXNlY3JldC0wMTIzNDU2Nzg5"
	headerValue    = "Bearer hdr-SEKRIT-456"
	queryToken     = "tok-SEKRIT-123"
	pathToken      = "SEKRIT0123456789abcdefXYZ"
	cookieValue    = "ck-SEKRIT-000"
)

// Payloads that must be rendered inert.
const (
	xssData   = `{"name":"<script>alert('data')</script>","amount":42}`
	xssName   = `Acme <script>alert('name')</script>`
	xssDesc   = `billing <img src=x onerror=alert('desc')>`
	xssKey    = `key-<script>alert('key')</script>`
	xssBody   = `<script>alert('response')</script>`
	xssHeader = `<script>alert('header')</script>`
)

// fixture is a service with the dashboard mounted at /webhooks/ and a
// dispatcher that has delivered, failed and discarded a few events.
type fixture struct {
	t      *testing.T
	d      *convoy.Dispatcher
	srv    *httptest.Server
	base   string       // srv.URL + "/webhooks/"
	client *http.Client // authorised; keeps cookies; follows redirects

	app       *convoy.App
	good, bad *convoy.Endpoint
	goodRecv  *testutil.Receiver
	badRecv   *testutil.Receiver
	// badHealthy makes badRecv answer 200.
	badHealthy atomic.Bool

	event     *convoy.Event    // to both endpoints: Success on good, Failure on bad
	delivered *convoy.Delivery // on good
	failed    *convoy.Delivery // on bad, 2 attempts
	discarded *convoy.Delivery // on bad, after it died
	secrets   []string         // what no page may contain
}

// adminHeader authorises a request in the fixture's default Authorize.
const adminHeader = "X-Test-Admin"

// newFixture builds the fixture; opts.Authorize, when nil and Insecure
// unset, accepts requests carrying adminHeader.
func newFixture(t *testing.T, opts convoyui.Options) *fixture {
	t.Helper()
	ctx := context.Background()
	store := memory.New()
	d, err := convoy.New(convoy.Config{
		Store:         store,
		Retry:         convoy.LinearRetry(10*time.Millisecond, 1),
		AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Logger:        testutil.Logger(t),
		PollInterval:  10 * time.Millisecond,
	})
	require.NoError(t, err)
	require.NoError(t, d.Start(ctx))
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, d.Close(cctx))
		require.NoError(t, store.Close())
	})

	f := &fixture{t: t, d: d}
	f.goodRecv = testutil.NewReceiver(t, nil)
	f.badRecv = testutil.NewReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if f.badHealthy.Load() {
			return
		}
		w.Header().Set("Set-Cookie", "session="+cookieValue)
		w.Header().Set("X-Debug", xssHeader)
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, xssBody)
	})

	f.app, err = d.CreateApp(ctx, convoy.App{Name: xssName, SupportEmail: "ops@acme.test"})
	require.NoError(t, err)
	f.good, err = d.AddEndpoint(ctx, f.app.ID, convoy.Endpoint{
		URL:         f.goodRecv.URL + "/hooks?token=" + queryToken,
		Description: xssDesc,
		Headers:     map[string]string{"Authorization": headerValue},
		Secrets:     []convoy.Secret{{Value: endpointSecret}},
	})
	require.NoError(t, err)
	f.bad, err = d.AddEndpoint(ctx, f.app.ID, convoy.Endpoint{URL: f.badRecv.URL + "/fail/" + pathToken})
	require.NoError(t, err)

	res, err := d.Send(ctx, f.app.ID, convoy.Event{Type: "invoice.paid", Data: json.RawMessage(xssData), IdempotencyKey: xssKey})
	require.NoError(t, err)
	f.event = res.Event
	for _, dl := range res.Deliveries {
		if dl.EndpointID == f.good.ID {
			f.delivered = f.waitStatus(dl.ID, convoy.DeliverySuccess)
		}
	}
	for _, dl := range res.Deliveries {
		if dl.EndpointID == f.bad.ID {
			f.failed = f.waitStatus(dl.ID, convoy.DeliveryFailure)
		}
	}
	require.Eventually(t, func() bool {
		ep, err := d.GetEndpoint(ctx, f.bad.ID)
		return err == nil && ep.Status == convoy.EndpointInactive
	}, 10*time.Second, 5*time.Millisecond, "the failing endpoint never died")
	res, err = d.Send(ctx, f.app.ID, convoy.Event{Type: "invoice.refunded", Data: json.RawMessage(`{"amount":7}`)})
	require.NoError(t, err)
	for _, dl := range res.Deliveries {
		if dl.EndpointID == f.bad.ID {
			require.Equal(t, convoy.DeliveryDiscarded, dl.Status)
			f.discarded = dl
		} else {
			f.waitStatus(dl.ID, convoy.DeliverySuccess)
		}
	}

	f.secrets = []string{"SEKRIT", endpointSecret, string(f.app.Secrets[0].Value),
		strings.TrimPrefix(string(f.app.Secrets[0].Value), "whsec_"), headerValue, queryToken, pathToken, cookieValue}

	if opts.Authorize == nil && !opts.Insecure {
		opts.Authorize = func(r *http.Request) bool { return r.Header.Get(adminHeader) == "yes" }
	}
	if opts.Logger == nil {
		opts.Logger = testutil.Logger(t)
	}
	mux := http.NewServeMux()
	mux.Handle("/webhooks/", http.StripPrefix("/webhooks", convoyui.Handler(d, opts)))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.base = f.srv.URL + "/webhooks/"
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	f.client = &http.Client{Jar: jar, Transport: adminTransport{}}
	t.Cleanup(f.client.CloseIdleConnections)
	return f
}

// adminTransport sends every request as a same-origin browser request of
// an authorised user would be sent.
type adminTransport struct{}

func (adminTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(adminHeader, "yes")
	if r.Header.Get("Sec-Fetch-Site") == "" {
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (f *fixture) waitStatus(id string, status convoy.DeliveryStatus) *convoy.Delivery {
	f.t.Helper()
	var last *convoy.Delivery
	require.Eventually(f.t, func() bool {
		dl, err := f.d.GetDelivery(context.Background(), id)
		if err != nil {
			return false
		}
		last = dl
		return dl.Status == status
	}, 10*time.Second, 5*time.Millisecond, "delivery %s never reached %s", id, status)
	return last
}

// response is what a request to the dashboard got.
type response struct {
	Status int
	Header http.Header
	Body   string
	URL    *url.URL // after redirects
}

// get fetches a page relative to the mount point, following redirects.
func (f *fixture) get(path string) response {
	f.t.Helper()
	resp, err := f.client.Get(f.base + path)
	require.NoError(f.t, err)
	return read(f.t, resp)
}

// post submits a form relative to the mount point, as the browser would
// from one of the dashboard's pages, following the redirect.
func (f *fixture) post(path string, form url.Values) response {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.base+path, strings.NewReader(form.Encode()))
	require.NoError(f.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.srv.URL)
	resp, err := f.client.Do(req)
	require.NoError(f.t, err)
	return read(f.t, resp)
}

func read(t *testing.T, resp *http.Response) response {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: string(b), URL: resp.Request.URL}
}

// attempts lists a delivery's attempts, newest first.
func (f *fixture) attempts(deliveryID string) []*convoy.Attempt {
	f.t.Helper()
	as, _, err := f.d.ListAttempts(context.Background(), deliveryID, convoy.Page{})
	require.NoError(f.t, err)
	return as
}

// pages lists every page of the fixture's data, relative to the mount
// point.
func (f *fixture) pages() []string {
	f.t.Helper()
	ps := []string{"", "apps", "app?id=" + f.app.ID, "events", "events?app=" + f.app.ID + "&type=invoice.paid",
		"event?id=" + f.event.ID}
	for _, ep := range []*convoy.Endpoint{f.good, f.bad} {
		ps = append(ps, "endpoint?id="+ep.ID)
		for _, s := range convoy.DeliveryStatuses {
			ps = append(ps, "endpoint?id="+ep.ID+"&status="+string(s))
		}
	}
	for _, dl := range []*convoy.Delivery{f.delivered, f.failed, f.discarded} {
		ps = append(ps, "delivery?id="+dl.ID)
		for _, a := range f.attempts(dl.ID) {
			ps = append(ps, "attempt?delivery="+dl.ID+"&id="+a.ID)
		}
	}
	return ps
}
