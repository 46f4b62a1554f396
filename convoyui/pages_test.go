package convoyui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/convoyui"
)

// TestEveryPageRenders: each page answers 200 with HTML, the security
// headers, and what it is there to show.
func TestEveryPageRenders(t *testing.T) {
	f := newFixture(t, convoyui.Options{})
	lastGood := f.attempts(f.delivered.ID)[0]
	lastBad := f.attempts(f.failed.ID)[0]
	for _, tc := range []struct {
		name, path string
		want       []string
	}{
		{"overview", "", []string{"Due now", "Retries scheduled", "Deliveries by status", "Endpoints by status",
			"failing", "endpoint?id=" + f.bad.ID, "endpoint?id=" + f.good.ID}},
		{"apps", "apps", []string{"app?id=" + f.app.ID, "ops@acme.test"}},
		{"app", "app?id=" + f.app.ID, []string{"endpoint?id=" + f.good.ID, "endpoint?id=" + f.bad.ID,
			"inactive", "events?app=" + f.app.ID, "SHA-256 "}},
		{"endpoint", "endpoint?id=" + f.bad.ID, []string{"delivery?id=" + f.failed.ID, "delivery?id=" + f.discarded.ID,
			"Re-activate", "Re-send", "Send a test event", "Failed attempts in a row", "500"}},
		{"endpoint filtered", "endpoint?id=" + f.bad.ID + "&status=Discarded", []string{"delivery?id=" + f.discarded.ID}},
		{"events", "events", []string{"event?id=" + f.event.ID, "invoice.paid", "invoice.refunded"}},
		{"events by type", "events?type=invoice.refunded", []string{"invoice.refunded"}},
		{"event", "event?id=" + f.event.ID, []string{"delivery?id=" + f.delivered.ID, "delivery?id=" + f.failed.ID,
			"&#34;amount&#34;: 42"}},
		{"delivery", "delivery?id=" + f.failed.ID, []string{"Attempt 2", "Attempt 1", "Last attempt", "Re-send this delivery",
			"attempt?delivery=" + f.failed.ID + "&amp;id=" + lastBad.ID, "Internal Server Error", "X-Convoy-Delivery-Id"}},
		{"attempt", "attempt?delivery=" + f.delivered.ID + "&id=" + lastGood.ID, []string{"Attempt 1", "127.0.0.1",
			"POST", "X-Convoy-Signature", "t=", "200", "Authorization"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.get(tc.path)
			require.Equal(t, http.StatusOK, r.Status, r.Body)
			require.Equal(t, "text/html; charset=utf-8", r.Header.Get("Content-Type"))
			for _, w := range tc.want {
				require.Contains(t, r.Body, w)
			}
		})
	}

	// The endpoint's filter shows only the status chosen.
	r := f.get("endpoint?id=" + f.bad.ID + "&status=Failure")
	require.Contains(t, r.Body, "delivery?id="+f.failed.ID)
	require.NotContains(t, r.Body, "delivery?id="+f.discarded.ID)
	r = f.get("events?type=invoice.refunded")
	require.NotContains(t, r.Body, "event?id="+f.event.ID)
	// A delivery never attempted says so.
	r = f.get("delivery?id=" + f.discarded.ID)
	require.Contains(t, r.Body, "No attempt yet: the endpoint was inactive")
}

// TestAttemptsLastFirst: a delivery lists its attempts newest first, and
// shows the newest in full.
func TestAttemptsLastFirst(t *testing.T) {
	f := newFixture(t, convoyui.Options{})
	body := f.get("delivery?id=" + f.failed.ID).Body
	two, one := strings.Index(body, ">Attempt 2<"), strings.Index(body, ">Attempt 1<")
	require.Positive(t, two)
	require.Less(t, two, one, "attempt 2 comes before attempt 1")
	require.Contains(t, body, "Last attempt <span class=\"muted small\">attempt 2</span>")
}

// TestPagination: lists follow the store's cursor, newest first, without
// repeating or skipping a row.
func TestPagination(t *testing.T) {
	f := newFixture(t, convoyui.Options{PageSize: 2})
	ctx := context.Background()
	var want []string
	for i := range 5 {
		res, err := f.d.Send(ctx, f.app.ID, convoy.Event{Type: "page.test", Data: json.RawMessage(fmt.Sprint(i))})
		require.NoError(t, err)
		want = append([]string{res.Event.ID}, want...)
	}
	link := regexp.MustCompile(`href="event\?id=([0-9a-f-]{36})"`)
	next := regexp.MustCompile(`href="(events\?[^"]*cursor=[^"]*)" rel="next"`)
	var got []string
	path := "events?type=page.test"
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		body := f.get(path).Body
		for _, m := range link.FindAllStringSubmatch(body, -1) {
			got = append(got, m[1])
		}
		m := next.FindStringSubmatch(body)
		if m == nil {
			break
		}
		path = strings.ReplaceAll(m[1], "&amp;", "&")
		require.Contains(t, path, "type=page.test", "the next page keeps the query")
		require.Contains(t, f.get(path).Body, "« Newest")
	}
	require.Equal(t, want, got)
}

// TestEventsSearch: by ID (an event or a delivery), app, type and time.
func TestEventsSearch(t *testing.T) {
	f := newFixture(t, convoyui.Options{})
	r := f.get("events?id=" + f.event.ID)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "/webhooks/event", r.URL.Path, "an event ID goes to the event")
	r = f.get("events?id=" + f.failed.ID)
	require.Equal(t, "/webhooks/delivery", r.URL.Path, "a delivery ID goes to the delivery")
	r = f.get("events?id=" + convoy.NewID())
	require.Equal(t, http.StatusNotFound, r.Status)
	require.Contains(t, r.Body, "No event or delivery has the ID")
	r = f.get("events?id=nonsense")
	require.Equal(t, http.StatusBadRequest, r.Status)

	r = f.get("events?app=" + f.app.ID)
	require.Contains(t, r.Body, "event?id="+f.event.ID)
	r = f.get("events?app=" + convoy.NewID())
	require.NotContains(t, r.Body, "event?id=")
	require.Contains(t, r.Body, "No event matches")

	created := f.event.CreatedAt.UTC()
	r = f.get("events?" + url.Values{
		"from": {created.Add(-time.Minute).Format("2006-01-02T15:04:05")},
		"to":   {created.Add(time.Second).Format(time.RFC3339)},
		"type": {"invoice.paid"},
	}.Encode())
	require.Contains(t, r.Body, "event?id="+f.event.ID)
	r = f.get("events?" + url.Values{"to": {created.Add(-time.Minute).Format("2006-01-02T15:04")}}.Encode())
	require.NotContains(t, r.Body, "event?id="+f.event.ID)
	r = f.get("events?from=yesterday")
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Contains(t, r.Body, "is not a time")
}

// TestPayloadsRenderedInert: every value a user or a receiver controls
// (event data, names, descriptions, keys, response bodies and headers)
// reaches the page escaped; the only script element is the dashboard's.
func TestPayloadsRenderedInert(t *testing.T) {
	f := newFixture(t, convoyui.Options{})
	script := regexp.MustCompile(`(?i)<script`)
	img := regexp.MustCompile(`(?i)<img`)
	seen := map[string]bool{}
	for _, p := range f.pages() {
		body := f.get(p).Body
		for _, loc := range script.FindAllStringIndex(body, -1) {
			require.True(t, strings.HasPrefix(body[loc[0]:], `<script src="static/app.js?v=`),
				"page %s has a script element of its own: %q", p, body[loc[0]:min(len(body), loc[0]+80)])
		}
		require.False(t, img.MatchString(strings.ReplaceAll(body, `<img src="static/icon.svg`, "")),
			"page %s has an img element from data", p)
		for _, s := range []string{"&lt;script&gt;alert(&#39;data&#39;)", "Acme &lt;script&gt;alert(&#39;name&#39;)",
			"&lt;img src=x onerror=alert(&#39;desc&#39;)&gt;", "key-&lt;script&gt;alert(&#39;key&#39;)",
			"&lt;script&gt;alert(&#39;response&#39;)", "&lt;script&gt;alert(&#39;header&#39;)"} {
			if strings.Contains(body, s) {
				seen[s] = true
			}
		}
	}
	require.Len(t, seen, 6, "each payload was shown somewhere, escaped: %v", seen)
}

// TestSecretsNeverRendered: no page shows a signing secret, a custom
// header's value, a URL token or a credential header of a response; a
// secret shows as its fingerprint.
func TestSecretsNeverRendered(t *testing.T) {
	f := newFixture(t, convoyui.Options{})
	for _, p := range f.pages() {
		r := f.get(p)
		require.Equal(t, http.StatusOK, r.Status, p)
		for _, s := range f.secrets {
			require.NotContains(t, r.Body, s, "page %s", p)
		}
	}
	app := f.get("app?id=" + f.app.ID).Body
	require.Regexp(t, `SHA-256 [0-9a-f]{8}…`, app)
	ep := f.get("endpoint?id=" + f.good.ID).Body
	require.Contains(t, ep, "token=[REDACTED]")
	require.Contains(t, ep, "<code>Authorization</code>")
	bad := f.get("endpoint?id=" + f.bad.ID).Body
	require.Contains(t, bad, "/fail/[REDACTED]")
	attempt := f.get("delivery?id=" + f.failed.ID).Body
	require.Contains(t, attempt, "Set-Cookie")
}

// TestNotFoundAndBadInput: unknown IDs are 404 pages, malformed ones 400.
func TestNotFoundAndBadInput(t *testing.T) {
	f := newFixture(t, convoyui.Options{})
	for path, status := range map[string]int{
		"app?id=" + convoy.NewID():                                  http.StatusNotFound,
		"endpoint?id=" + convoy.NewID():                             http.StatusNotFound,
		"event?id=" + convoy.NewID():                                http.StatusNotFound,
		"delivery?id=" + convoy.NewID():                             http.StatusNotFound,
		"attempt?delivery=" + f.failed.ID + "&id=" + convoy.NewID(): http.StatusNotFound,
		"nowhere":  http.StatusNotFound,
		"app?id=x": http.StatusBadRequest,
		"endpoint?id=" + f.good.ID + "&status=Lost": http.StatusBadRequest,
		"events?cursor=garbage":                     http.StatusBadRequest,
		"static/nothing.css":                        http.StatusNotFound,
	} {
		r := f.get(path)
		require.Equal(t, status, r.Status, path)
		require.NotContains(t, r.Body, "SEKRIT")
	}
	r := f.get("delivery")
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Contains(t, r.Body, "malformed ID")
}

// TestAssets: the stylesheet and script are served with their type and
// cached for good under their hashed URL; no page refers to anything else.
func TestAssets(t *testing.T) {
	f := newFixture(t, convoyui.Options{})
	body := f.get("").Body
	ref := regexp.MustCompile(`(?:href|src)="(static/[^"]+)"`)
	refs := ref.FindAllStringSubmatch(body, -1)
	require.Len(t, refs, 4) // stylesheet, icon (twice), script
	types := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
	for _, m := range refs {
		u := strings.ReplaceAll(m[1], "&amp;", "&")
		r := f.get(u)
		require.Equal(t, http.StatusOK, r.Status, u)
		require.Equal(t, "public, max-age=31536000, immutable", r.Header.Get("Cache-Control"), u)
		for ext, typ := range types {
			if strings.Contains(u, ext+"?") {
				require.Equal(t, typ, r.Header.Get("Content-Type"), u)
			}
		}
	}
	r := f.get("static/style.css")
	require.Equal(t, "no-cache", r.Header.Get("Cache-Control"), "without its hash it must be revalidated")
}
