package convoyui_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/convoyui"
	"github.com/convoykit/convoy/store/memory"
)

// quiet is a logger for handlers whose errors a test provokes.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newDispatcher(t *testing.T) *convoy.Dispatcher {
	t.Helper()
	d, err := convoy.New(convoy.Config{Store: memory.New(), Logger: quiet})
	require.NoError(t, err)
	return d
}

// TestRefusesToServeWithoutAChoice: with neither Authorize nor Insecure
// the handler serves nothing, and says what to set.
func TestRefusesToServeWithoutAChoice(t *testing.T) {
	h := convoyui.Handler(newDispatcher(t), convoyui.Options{Logger: quiet})
	for _, path := range []string{"/", "/apps", "/static/style.css"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		require.Equal(t, http.StatusInternalServerError, w.Code)
		require.Contains(t, w.Body.String(), "Options.Authorize")
		require.Contains(t, w.Body.String(), "Options.Insecure")
	}
	h = convoyui.Handler(newDispatcher(t), convoyui.Options{Insecure: true, TrustedOrigins: []string{"not an origin"}, Logger: quiet})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://localhost/", nil))
	require.Equal(t, http.StatusInternalServerError, w.Code)
	require.Contains(t, w.Body.String(), "TrustedOrigins")
}

// TestUnauthorisedRefused: Authorize false is 403 for pages, assets and
// actions alike, and the action does not happen.
func TestUnauthorisedRefused(t *testing.T) {
	f := newFixture(t, convoyui.Options{})
	anonymous := &http.Client{}
	for _, path := range []string{"", "apps", "endpoint?id=" + f.bad.ID, "static/style.css"} {
		resp, err := anonymous.Get(f.base + path)
		require.NoError(t, err)
		r := read(t, resp)
		require.Equal(t, http.StatusForbidden, r.Status, path)
		require.NotContains(t, r.Body, f.app.ID)
	}
	resp, err := anonymous.PostForm(f.base+"resend", url.Values{"delivery": {f.discarded.ID}})
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, read(t, resp).Status)
	dl, err := f.d.GetDelivery(context.Background(), f.discarded.ID)
	require.NoError(t, err)
	require.Equal(t, convoy.DeliveryDiscarded, dl.Status, "nothing was re-sent")
}

// TestForgedCrossSitePostRefused: a form another site makes the browser
// post is refused, whichever way the browser marks it, and changes nothing;
// the same form from the dashboard's own pages works.
func TestForgedCrossSitePostRefused(t *testing.T) {
	f := newFixture(t, convoyui.Options{})
	form := url.Values{"endpoint": {f.good.ID}, "status": {"inactive"}}
	for name, headers := range map[string]map[string]string{
		"Sec-Fetch-Site cross-site": {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		"Sec-Fetch-Site same-site":  {"Sec-Fetch-Site": "same-site", "Origin": "https://sub.example"},
		"Origin only":               {"Sec-Fetch-Site": "", "Origin": "https://evil.example"},
	} {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, f.base+"endpoint-status", strings.NewReader(form.Encode()))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range headers {
				if v != "" {
					req.Header.Set(k, v)
				}
			}
			resp, err := (&http.Client{Transport: rawAdmin{}}).Do(req)
			require.NoError(t, err)
			r := read(t, resp)
			require.Equal(t, http.StatusForbidden, r.Status)
			require.Contains(t, r.Body, "cross-origin request refused")
			ep, err := f.d.GetEndpoint(context.Background(), f.good.ID)
			require.NoError(t, err)
			require.Equal(t, convoy.EndpointActive, ep.Status, "the endpoint was not deactivated")
		})
	}
	r := f.post("endpoint-status", form)
	require.Equal(t, http.StatusOK, r.Status)
	ep, err := f.d.GetEndpoint(context.Background(), f.good.ID)
	require.NoError(t, err)
	require.Equal(t, convoy.EndpointInactive, ep.Status)
}

// rawAdmin authorises a request and adds nothing else.
type rawAdmin struct{}

func (rawAdmin) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(adminHeader, "yes")
	return http.DefaultTransport.RoundTrip(r)
}

// TestTrustedOrigin: a cross-origin POST from an origin in TrustedOrigins
// is accepted.
func TestTrustedOrigin(t *testing.T) {
	f := newFixture(t, convoyui.Options{TrustedOrigins: []string{"https://admin.example"}})
	req, err := http.NewRequest(http.MethodPost, f.base+"resend", strings.NewReader(url.Values{"delivery": {f.discarded.ID}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://admin.example")
	resp, err := (&http.Client{Transport: rawAdmin{}, CheckRedirect: noRedirect}).Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusSeeOther, read(t, resp).Status)
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// TestStateChangesArePostOnly: a GET to an action is refused and changes
// nothing.
func TestStateChangesArePostOnly(t *testing.T) {
	f := newFixture(t, convoyui.Options{})
	for _, path := range []string{"resend?delivery=" + f.discarded.ID, "endpoint-status?endpoint=" + f.good.ID + "&status=inactive",
		"resend-endpoint?endpoint=" + f.bad.ID + "&status=Discarded", "test-event?endpoint=" + f.good.ID} {
		r := f.get(path)
		require.Equal(t, http.StatusMethodNotAllowed, r.Status, path)
	}
	dl, err := f.d.GetDelivery(context.Background(), f.discarded.ID)
	require.NoError(t, err)
	require.Equal(t, convoy.DeliveryDiscarded, dl.Status)
	ep, err := f.d.GetEndpoint(context.Background(), f.good.ID)
	require.NoError(t, err)
	require.Equal(t, convoy.EndpointActive, ep.Status)
}

// TestSecurityHeaders: every response, pages, errors, assets and actions,
// carries the strict CSP and refuses framing.
func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t, convoyui.Options{})
	check := func(name string, h http.Header) {
		t.Helper()
		csp := h.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
			"form-action 'self'", "base-uri 'none'"} {
			require.Contains(t, csp, d, name)
		}
		require.NotContains(t, csp, "unsafe-inline", name)
		require.Equal(t, "DENY", h.Get("X-Frame-Options"), name)
		require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), name)
	}
	for _, p := range append(f.pages(), "nowhere", "static/style.css") {
		resp, err := f.client.Get(f.base + p)
		require.NoError(t, err)
		r := read(t, resp)
		check(p, r.Header)
		if !strings.HasPrefix(p, "static/") {
			require.Equal(t, "no-store", r.Header.Get("Cache-Control"), p)
		}
	}
	req, err := http.NewRequest(http.MethodPost, f.base+"resend", strings.NewReader("delivery="+f.discarded.ID))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := (&http.Client{Transport: adminTransport{}, CheckRedirect: noRedirect}).Do(req)
	require.NoError(t, err)
	check("POST resend", read(t, resp).Header)
	anonymous, err := http.Get(f.base)
	require.NoError(t, err)
	check("403", read(t, anonymous).Header)
}

// TestInsecureServesLoopbackOnly: Insecure needs no Authorize, but answers
// only requests addressed to a loopback host, so that DNS rebinding cannot
// reach it from a web page.
func TestInsecureServesLoopbackOnly(t *testing.T) {
	h := convoyui.Handler(newDispatcher(t), convoyui.Options{Insecure: true})
	for host, want := range map[string]int{
		"localhost:8080": http.StatusOK, "127.0.0.1:8080": http.StatusOK, "[::1]:8080": http.StatusOK,
		"app.localhost": http.StatusOK, "127.0.0.1": http.StatusOK,
		"evil.example:8080": http.StatusForbidden, "10.0.0.1": http.StatusForbidden, "localhost.evil.example": http.StatusForbidden,
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		require.Equal(t, want, w.Code, host)
	}
}

// TestAuthorizeWinsOverInsecure: with both set, Authorize decides.
func TestAuthorizeWinsOverInsecure(t *testing.T) {
	h := convoyui.Handler(newDispatcher(t), convoyui.Options{Insecure: true, Authorize: func(*http.Request) bool { return false }})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://localhost/", nil))
	require.Equal(t, http.StatusForbidden, w.Code)
}

// TestReadOnly: no action is offered, and their POSTs are refused.
func TestReadOnly(t *testing.T) {
	f := newFixture(t, convoyui.Options{ReadOnly: true})
	for _, p := range f.pages() {
		body := f.get(p).Body
		require.NotContains(t, body, `method="post"`, p)
	}
	require.Contains(t, f.get("").Body, "read-only")
	for path, form := range map[string]url.Values{
		"resend":          {"delivery": {f.discarded.ID}},
		"resend-endpoint": {"endpoint": {f.bad.ID}, "status": {"Discarded"}},
		"endpoint-status": {"endpoint": {f.good.ID}, "status": {"inactive"}},
		"test-event":      {"endpoint": {f.good.ID}},
	} {
		r := f.post(path, form)
		require.Equal(t, http.StatusForbidden, r.Status, path)
		require.Contains(t, r.Body, "read-only")
	}
	dl, err := f.d.GetDelivery(context.Background(), f.discarded.ID)
	require.NoError(t, err)
	require.Equal(t, convoy.DeliveryDiscarded, dl.Status)
	ep, err := f.d.GetEndpoint(context.Background(), f.good.ID)
	require.NoError(t, err)
	require.Equal(t, convoy.EndpointActive, ep.Status)
	events, _, err := f.d.ListEvents(context.Background(), convoy.EventQuery{}, convoy.Page{})
	require.NoError(t, err)
	require.Len(t, events, 2, "no test event was sent")
}

// TestMountedAnywhere: links, redirects and the flash work at the root
// and under a deeper prefix.
func TestMountedAnywhere(t *testing.T) {
	d := newDispatcher(t)
	ctx := context.Background()
	app, err := d.CreateApp(ctx, convoy.App{Name: "Acme"})
	require.NoError(t, err)
	ep, err := d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: "https://acme.example/hooks"})
	require.NoError(t, err)
	for _, prefix := range []string{"", "/admin/tools/webhooks"} {
		mux := http.NewServeMux()
		mux.Handle(prefix+"/", http.StripPrefix(prefix, convoyui.Handler(d, convoyui.Options{Insecure: true})))
		srv := httptest.NewServer(mux)
		c := &http.Client{Transport: adminTransport{}}
		c.Jar = newJar(t)
		resp, err := c.PostForm(srv.URL+prefix+"/endpoint-status", url.Values{"endpoint": {ep.ID}, "status": {"inactive"}})
		require.NoError(t, err)
		r := read(t, resp)
		require.Equal(t, http.StatusOK, r.Status, prefix)
		require.Equal(t, prefix+"/endpoint", r.URL.Path)
		require.Contains(t, r.Body, "Endpoint deactivated", "the flash shows after the redirect")
		require.Contains(t, r.Body, `href="app?id=`+app.ID+`"`)
		again := read(t, must(c.Get(r.URL.String())))
		require.NotContains(t, again.Body, "Endpoint deactivated", "the flash shows once")
		_, err = d.SetEndpointStatus(ctx, ep.ID, convoy.EndpointActive)
		require.NoError(t, err)
		srv.Close()
	}
}

func newJar(t *testing.T) http.CookieJar {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return jar
}

func must(resp *http.Response, err error) *http.Response {
	if err != nil {
		panic(err)
	}
	return resp
}
