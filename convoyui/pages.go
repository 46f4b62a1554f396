package convoyui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/convoykit/convoy"
)

// maxOverviewEndpoints bounds the endpoints the overview looks up: the
// most failing of those the dispatcher attempted recently.
const maxOverviewEndpoints = 10

// maxEventApps bounds the apps an events page looks up to name them.
const maxEventApps = 10

// maxEventEndpoints bounds the endpoints an event page looks up to show
// their URLs beside the deliveries.
const maxEventEndpoints = 20

// statusCount is one status with its count.
type statusCount struct {
	Status string
	Count  int
}

type overviewData struct {
	Stats           convoy.Stats
	DueAtLeast      bool
	Deliveries      []statusCount
	TotalDeliveries int
	Endpoints       []statusCount
	TotalEndpoints  int
	RecentRate      float64
	Recent          []recentRow
	Failing         int
}

// recentRow is an endpoint the dispatcher attempted within the window.
type recentRow struct {
	Activity convoy.EndpointActivity
	// Endpoint is nil when it was removed meanwhile.
	Endpoint *convoy.Endpoint
	Failing  bool
}

// overview: Stats (counters, not records) and a point lookup of each of
// the few endpoints it lists.
func (h *handler) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	st, err := h.d.Stats(ctx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	data := overviewData{Stats: st, DueAtLeast: st.DueNow >= convoy.MaxDueCount}
	for _, s := range convoy.DeliveryStatuses {
		data.Deliveries = append(data.Deliveries, statusCount{string(s), st.Deliveries[s]})
		data.TotalDeliveries += st.Deliveries[s]
	}
	for _, s := range []convoy.EndpointStatus{convoy.EndpointActive, convoy.EndpointPending, convoy.EndpointInactive} {
		data.Endpoints = append(data.Endpoints, statusCount{string(s), st.Endpoints[s]})
		data.TotalEndpoints += st.Endpoints[s]
	}
	if st.RecentAttempts > 0 {
		data.RecentRate = float64(st.RecentAttempts-st.RecentFailures) / float64(st.RecentAttempts)
	}
	for i, a := range st.Recent {
		if i == maxOverviewEndpoints {
			break
		}
		row := recentRow{Activity: a, Failing: a.Failures > 0}
		ep, err := h.d.GetEndpoint(ctx, a.EndpointID)
		switch {
		case err == nil:
			row.Endpoint = ep
			row.Failing = row.Failing || ep.Status != convoy.EndpointActive || ep.Health.ConsecutiveFailures > 0
		case !errors.Is(err, convoy.ErrNotFound):
			h.fail(w, r, err)
			return
		}
		if row.Failing {
			data.Failing++
		}
		data.Recent = append(data.Recent, row)
	}
	h.render(w, r, http.StatusOK, "overview", page{Title: "Overview", Nav: "overview", Data: data})
}

type appsData struct {
	Apps  []*convoy.App
	Pager pager
}

// pager links a list to its next and first pages.
type pager struct {
	// Next is the URL of the next page, "" on the last.
	Next string
	// First is the URL of the first page, "" on the first.
	First string
}

// newPager builds the links of a list at path whose query is q (with its
// cursor) and whose next cursor is next.
func newPager(path string, q url.Values, next string) pager {
	var p pager
	if q.Get("cursor") != "" {
		first := cloneValues(q)
		first.Del("cursor")
		p.First = link(path, first)
	}
	if next != "" {
		n := cloneValues(q)
		n.Set("cursor", next)
		p.Next = link(path, n)
	}
	return p
}

func cloneValues(q url.Values) url.Values {
	c := url.Values{}
	for k, v := range q {
		if len(v) > 0 && v[0] != "" {
			c[k] = append([]string(nil), v...)
		}
	}
	return c
}

// link is a relative URL: path and query.
func link(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

func (h *handler) page(r *http.Request) convoy.Page {
	return convoy.Page{Cursor: r.URL.Query().Get("cursor"), Limit: h.opts.PageSize}
}

// apps: one page of ListApps.
func (h *handler) apps(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	apps, next, err := h.d.ListApps(ctx, h.page(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "apps", page{Title: "Apps", Nav: "apps",
		Data: appsData{Apps: apps, Pager: newPager("apps", r.URL.Query(), next)}})
}

type appData struct {
	App       *convoy.App
	Endpoints []*convoy.Endpoint
	Pager     pager
	Signing   convoy.Signing
}

// app: GetApp and one page of its endpoints, each with its health.
func (h *handler) app(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	id := r.URL.Query().Get("id")
	app, err := h.d.GetApp(ctx, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	eps, next, err := h.d.ListEndpoints(ctx, id, h.page(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, r, http.StatusOK, "app", page{Title: app.Name, Nav: "apps",
		Crumbs: []crumb{{"Apps", "apps"}, {app.Name, ""}},
		Data:   appData{App: app, Endpoints: eps, Pager: newPager("app", r.URL.Query(), next), Signing: withDefaults(app.Signing)}})
}

type endpointData struct {
	Endpoint   *convoy.Endpoint
	App        *convoy.App
	Activity   convoy.EndpointActivity
	Signing    convoy.Signing
	OwnSigning bool
	Deliveries []*convoy.Delivery
	Pager      pager
	Status     string
	Filters    []filterLink
	HeaderKeys []string
	TestData   string
}

// filterLink is one choice of a status filter.
type filterLink struct {
	Label, Href string
	Active      bool
}

// defaultTestData is the payload the test-event form offers.
const defaultTestData = `{"message": "a test event from the dashboard"}`

// endpoint: GetEndpoint, GetApp, and one page of its deliveries, by status
// when one is chosen (an indexed query either way).
func (h *handler) endpoint(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	q := r.URL.Query()
	ep, err := h.d.GetEndpoint(ctx, q.Get("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	app, err := h.d.GetApp(ctx, ep.AppID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := q.Get("status")
	dq := convoy.DeliveryQuery{EndpointID: ep.ID}
	if status != "" {
		s := convoy.DeliveryStatus(status)
		if !s.Valid() {
			h.fail(w, r, badRequest("unknown delivery status %q", status))
			return
		}
		dq.Statuses = []convoy.DeliveryStatus{s}
	}
	ds, next, err := h.d.ListDeliveries(ctx, dq, h.page(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	data := endpointData{
		Endpoint: ep, App: app, Activity: h.d.EndpointActivity(ep.ID), Deliveries: ds,
		Pager: newPager("endpoint", q, next), Status: status, TestData: defaultTestData,
		OwnSigning: ep.Signing.Scheme != "",
	}
	data.Signing = withDefaults(effectiveSigning(app, ep))
	for k := range ep.Headers {
		data.HeaderKeys = append(data.HeaderKeys, k)
	}
	sortStrings(data.HeaderKeys)
	base := url.Values{"id": {ep.ID}}
	data.Filters = append(data.Filters, filterLink{"All", link("endpoint", base), status == ""})
	for _, s := range convoy.DeliveryStatuses {
		v := cloneValues(base)
		v.Set("status", string(s))
		data.Filters = append(data.Filters, filterLink{string(s), link("endpoint", v), status == string(s)})
	}
	h.render(w, r, http.StatusOK, "endpoint", page{Title: "Endpoint " + redactURL(ep.URL), Nav: "apps",
		Crumbs: []crumb{{"Apps", "apps"}, {app.Name, link("app", url.Values{"id": {app.ID}})}, {"Endpoint " + shortID(ep.ID), ""}},
		Data:   data})
}

type eventsData struct {
	ID, App, Type, From, To string
	Events                  []*convoy.Event
	// AppNames names the apps of the events listed (the first few).
	AppNames map[string]string
	Pager    pager
	Searched bool
	Message  string
}

// events: the search form and one page of ListEvents (indexed by app,
// type and time). An ID goes straight to its event, or its delivery.
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	q := r.URL.Query()
	data := eventsData{
		ID: strings.TrimSpace(q.Get("id")), App: strings.TrimSpace(q.Get("app")),
		Type: strings.TrimSpace(q.Get("type")), From: q.Get("from"), To: q.Get("to"),
	}
	p := page{Title: "Events", Nav: "events"}
	if data.ID != "" {
		to, err := h.findID(ctx, data.ID)
		if err == nil {
			redirect(w, to)
			return
		}
		status, msg := h.describe(r, err)
		if status == http.StatusNotFound {
			msg = "No event or delivery has the ID " + data.ID + "."
		}
		data.Message = msg
		p.Data = data
		h.render(w, r, status, "events", p)
		return
	}
	eq := convoy.EventQuery{AppID: data.App, Type: data.Type}
	var err error
	if eq.CreatedFrom, err = parseTime("from", data.From); err == nil {
		eq.CreatedTo, err = parseTime("to", data.To)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	events, next, err := h.d.ListEvents(ctx, eq, h.page(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	data.Events, data.Pager = events, newPager("events", q, next)
	data.AppNames = map[string]string{}
	for _, ev := range events {
		if _, ok := data.AppNames[ev.AppID]; ok || len(data.AppNames) == maxEventApps {
			continue
		}
		app, err := h.d.GetApp(ctx, ev.AppID)
		switch {
		case err == nil:
			data.AppNames[ev.AppID] = app.Name
		case errors.Is(err, convoy.ErrNotFound):
			data.AppNames[ev.AppID] = ""
		default:
			h.fail(w, r, err)
			return
		}
	}
	data.Searched = data.App != "" || data.Type != "" || data.From != "" || data.To != ""
	p.Data = data
	h.render(w, r, http.StatusOK, "events", p)
}

// findID returns the page of the event, or else the delivery, with id.
func (h *handler) findID(ctx context.Context, id string) (string, error) {
	if err := convoy.ValidateID("ID", id); err != nil {
		return "", err
	}
	id = strings.ToLower(id) // the Dispatcher folds case; links show the ID as stored
	if _, err := h.d.GetDelivery(ctx, id); err == nil {
		return link("delivery", url.Values{"id": {id}}), nil
	} else if !errors.Is(err, convoy.ErrNotFound) {
		return "", err
	}
	if _, _, err := h.d.GetEvent(ctx, id); err != nil {
		return "", err
	}
	return link("event", url.Values{"id": {id}}), nil
}

// parseTime reads a time from a form: a datetime-local value (taken as
// UTC) or RFC 3339. Empty is the zero time.
func parseTime(field, v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, badRequest("%s: %q is not a time such as 2026-01-02T15:04 (UTC)", field, v)
}

type eventData struct {
	Event      *convoy.Event
	App        *convoy.App
	Deliveries []deliveryRow
}

// deliveryRow is a delivery with its endpoint, when looked up.
type deliveryRow struct {
	Delivery *convoy.Delivery
	Endpoint *convoy.Endpoint
}

// event: GetEvent (with its deliveries, one per endpoint), its app, and
// the endpoints of the first few deliveries.
func (h *handler) event(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	ev, ds, err := h.d.GetEvent(ctx, r.URL.Query().Get("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	app, err := h.d.GetApp(ctx, ev.AppID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	data := eventData{Event: ev, App: app}
	for i, dl := range ds {
		row := deliveryRow{Delivery: dl}
		if i < maxEventEndpoints {
			if row.Endpoint, err = h.d.GetEndpoint(ctx, dl.EndpointID); err != nil && !errors.Is(err, convoy.ErrNotFound) {
				h.fail(w, r, err)
				return
			}
		}
		data.Deliveries = append(data.Deliveries, row)
	}
	h.render(w, r, http.StatusOK, "event", page{Title: "Event " + ev.Type, Nav: "events",
		Crumbs: []crumb{{"Apps", "apps"}, {app.Name, link("app", url.Values{"id": {app.ID}})},
			{"Events", link("events", url.Values{"app": {app.ID}})}, {"Event " + shortID(ev.ID), ""}},
		Data: data})
}

type deliveryData struct {
	Delivery  *convoy.Delivery
	Endpoint  *convoy.Endpoint
	App       *convoy.App
	Attempts  []*convoy.Attempt
	Last      *convoy.Attempt
	Pager     pager
	SigHeader string
	CanResend bool
}

// delivery: GetDelivery, its endpoint and app, and one page of its
// attempts, newest first; the first page shows the last attempt in full.
func (h *handler) delivery(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	q := r.URL.Query()
	dl, ep, app, err := h.loadDelivery(ctx, q.Get("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	as, next, err := h.d.ListAttempts(ctx, dl.ID, convoy.Page{Cursor: q.Get("cursor"), Limit: min(h.opts.PageSize, 20)})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	data := deliveryData{
		Delivery: dl, Endpoint: ep, App: app, Attempts: as, Pager: newPager("delivery", q, next),
		SigHeader: signatureHeader(app, ep),
		CanResend: dl.Status == convoy.DeliveryFailure || dl.Status == convoy.DeliveryDiscarded,
	}
	if q.Get("cursor") == "" && len(as) > 0 {
		data.Last = as[0]
	}
	h.render(w, r, http.StatusOK, "delivery", page{Title: "Delivery " + shortID(dl.ID), Nav: "apps",
		Crumbs: deliveryCrumbs(dl, ep, app, ""), Data: data})
}

// loadDelivery returns a delivery with its endpoint and app; either may be
// nil when it was removed.
func (h *handler) loadDelivery(ctx context.Context, id string) (*convoy.Delivery, *convoy.Endpoint, *convoy.App, error) {
	dl, err := h.d.GetDelivery(ctx, id)
	if err != nil {
		return nil, nil, nil, err
	}
	ep, err := h.d.GetEndpoint(ctx, dl.EndpointID)
	if err != nil && !errors.Is(err, convoy.ErrNotFound) {
		return nil, nil, nil, err
	}
	app, err := h.d.GetApp(ctx, dl.AppID)
	if err != nil && !errors.Is(err, convoy.ErrNotFound) {
		return nil, nil, nil, err
	}
	return dl, ep, app, nil
}

func deliveryCrumbs(dl *convoy.Delivery, ep *convoy.Endpoint, app *convoy.App, last string) []crumb {
	cs := []crumb{{"Apps", "apps"}}
	if app != nil {
		cs = append(cs, crumb{app.Name, link("app", url.Values{"id": {app.ID}})})
	}
	if ep != nil {
		cs = append(cs, crumb{"Endpoint " + shortID(ep.ID), link("endpoint", url.Values{"id": {ep.ID}})})
	}
	if last == "" {
		return append(cs, crumb{"Delivery " + shortID(dl.ID), ""})
	}
	return append(cs, crumb{"Delivery " + shortID(dl.ID), link("delivery", url.Values{"id": {dl.ID}})}, crumb{last, ""})
}

type attemptData struct {
	Delivery  *convoy.Delivery
	Endpoint  *convoy.Endpoint
	App       *convoy.App
	Attempt   *convoy.Attempt
	SigHeader string
}

// attempt: one attempt of a delivery, found in its attempts list (newest
// first; a delivery has few).
func (h *handler) attempt(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	q := r.URL.Query()
	id := q.Get("id")
	if err := convoy.ValidateID("attempt ID", id); err != nil {
		h.fail(w, r, err)
		return
	}
	dl, ep, app, err := h.loadDelivery(ctx, q.Get("delivery"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var found *convoy.Attempt
	for p := (convoy.Page{Limit: 100}); found == nil; {
		as, next, err := h.d.ListAttempts(ctx, dl.ID, p)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		for _, a := range as {
			if a.ID == id {
				found = a
			}
		}
		if next == "" {
			break
		}
		p.Cursor = next
	}
	if found == nil {
		h.fail(w, r, convoy.ErrNotFound)
		return
	}
	h.render(w, r, http.StatusOK, "attempt", page{Title: "Attempt " + itoa(found.Number), Nav: "apps",
		Crumbs: deliveryCrumbs(dl, ep, app, "Attempt "+itoa(found.Number)),
		Data:   attemptData{Delivery: dl, Endpoint: ep, App: app, Attempt: found, SigHeader: signatureHeader(app, ep)}})
}

// effectiveSigning is how requests to ep are signed: its own choice, or
// its app's.
func effectiveSigning(app *convoy.App, ep *convoy.Endpoint) convoy.Signing {
	if ep != nil && ep.Signing.Scheme != "" {
		return ep.Signing
	}
	if app != nil {
		return app.Signing
	}
	return convoy.Signing{}
}

// withDefaults fills the defaults of a Signing in, for display.
func withDefaults(s convoy.Signing) convoy.Signing {
	if s.Scheme == "" {
		s.Scheme = convoy.SchemeConvoyAdvanced
	}
	if s.Scheme == convoy.SchemeStandardWebhooks {
		s.Hash, s.Encoding, s.Header = convoy.SHA256, convoy.Base64, "webhook-signature"
		return s
	}
	if s.Hash == "" {
		s.Hash = convoy.SHA256
	}
	if s.Encoding == "" {
		s.Encoding = convoy.Hex
	}
	if s.Header == "" {
		s.Header = convoy.DefaultSignatureHeader
	}
	return s
}

// signatureHeader names the header that carries the signature of requests
// to ep.
func signatureHeader(app *convoy.App, ep *convoy.Endpoint) string {
	return withDefaults(effectiveSigning(app, ep)).Header
}
