package convoyui_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/convoyui"
)

// TestResendDelivery: re-sending a Discarded delivery of a dead endpoint
// schedules it, puts the endpoint on probation, and it arrives; the page
// says so. A delivery that is not Failure or Discarded cannot be re-sent.
func TestResendDelivery(t *testing.T) {
	f := newFixture(t, convoyui.Options{})
	f.badHealthy.Store(true) // the receiver recovers
	before := f.badRecv.Count()
	r := f.post("resend", url.Values{"delivery": {f.discarded.ID}})
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "/webhooks/delivery", r.URL.Path)
	require.Equal(t, f.discarded.ID, r.URL.Query().Get("id"))
	require.Contains(t, r.Body, "Delivery re-sent")
	require.Contains(t, r.Body, "Its endpoint was inactive and is pending now")
	f.waitStatus(f.discarded.ID, convoy.DeliverySuccess)
	require.Equal(t, before+1, f.badRecv.Count())
	require.Eventually(t, func() bool {
		ep, err := f.d.GetEndpoint(context.Background(), f.bad.ID)
		return err == nil && ep.Status == convoy.EndpointActive
	}, 10*time.Second, 5*time.Millisecond, "the success ends the probation")

	r = f.post("resend", url.Values{"delivery": {f.delivered.ID}})
	require.Equal(t, http.StatusOK, r.Status)
	require.Contains(t, r.Body, "only a Failure or Discarded delivery can be re-sent; this one is Success")
	require.Contains(t, r.Body, "flash-error")

	r = f.post("resend", url.Values{"delivery": {convoy.NewID()}})
	require.Equal(t, http.StatusNotFound, r.Status)
	r = f.post("resend", url.Values{"delivery": {"x"}})
	require.Equal(t, http.StatusBadRequest, r.Status)
}

// TestResendEndpoint: Discarded only by default, Failure when chosen,
// within a creation-time range when given.
func TestResendEndpoint(t *testing.T) {
	f := newFixture(t, convoyui.Options{})
	f.badHealthy.Store(true)
	ctx := context.Background()

	// A range that ends before the deliveries were made re-sends nothing.
	r := f.post("resend-endpoint", url.Values{"endpoint": {f.bad.ID}, "status": {"Discarded", "Failure"},
		"to": {f.failed.CreatedAt.Add(-time.Hour).UTC().Format("2006-01-02T15:04:05")}})
	require.Equal(t, http.StatusOK, r.Status)
	require.Contains(t, r.Body, "Re-sent 0 deliveries (Discarded and Failure) created before")
	require.Contains(t, r.Body, "The endpoint was inactive and is pending now", "even with nothing re-sent")
	dl, err := f.d.GetDelivery(ctx, f.discarded.ID)
	require.NoError(t, err)
	require.Equal(t, convoy.DeliveryDiscarded, dl.Status)

	r = f.post("resend-endpoint", url.Values{"endpoint": {f.bad.ID}, "status": {"Discarded"}})
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "/webhooks/endpoint", r.URL.Path)
	require.Contains(t, r.Body, "Re-sent 1 delivery (Discarded).")
	f.waitStatus(f.discarded.ID, convoy.DeliverySuccess)
	dl, err = f.d.GetDelivery(ctx, f.failed.ID)
	require.NoError(t, err)
	require.Equal(t, convoy.DeliveryFailure, dl.Status, "Failure is re-sent only when chosen")

	r = f.post("resend-endpoint", url.Values{"endpoint": {f.bad.ID}, "status": {"Failure"},
		"from": {f.failed.CreatedAt.Add(-time.Minute).UTC().Format(time.RFC3339)},
		"to":   {f.failed.CreatedAt.Add(time.Minute).UTC().Format(time.RFC3339)}})
	require.Contains(t, r.Body, "Re-sent 1 delivery (Failure) created from")
	f.waitStatus(f.failed.ID, convoy.DeliverySuccess)

	for name, form := range map[string]url.Values{
		"no status":    {"endpoint": {f.bad.ID}},
		"wrong status": {"endpoint": {f.bad.ID}, "status": {"Success"}},
		"bad time":     {"endpoint": {f.bad.ID}, "status": {"Discarded"}, "from": {"soon"}},
		"empty range":  {"endpoint": {f.bad.ID}, "status": {"Discarded"}, "from": {"2030-01-02T00:00"}, "to": {"2030-01-01T00:00"}},
	} {
		r := f.post("resend-endpoint", form)
		require.Equal(t, http.StatusOK, r.Status, name)
		require.Contains(t, r.Body, "flash-error", name)
	}
}

// TestDeactivateThenActivate: a deactivated endpoint's new events are
// Discarded and no request is made; re-activated, new events arrive.
func TestDeactivateThenActivate(t *testing.T) {
	f := newFixture(t, convoyui.Options{})
	ctx := context.Background()
	r := f.post("endpoint-status", url.Values{"endpoint": {f.good.ID}, "status": {"inactive"}})
	require.Contains(t, r.Body, "Endpoint deactivated")
	require.Contains(t, r.Body, "Re-activate")
	before := f.goodRecv.Count()
	res, err := f.d.Send(ctx, f.app.ID, convoy.Event{Type: "invoice.paid", Data: []byte(`{}`)})
	require.NoError(t, err)
	for _, dl := range res.Deliveries {
		require.Equal(t, convoy.DeliveryDiscarded, dl.Status)
	}
	require.Equal(t, before, f.goodRecv.Count())

	r = f.post("endpoint-status", url.Values{"endpoint": {f.good.ID}, "status": {"active"}})
	require.Contains(t, r.Body, "Endpoint re-activated")
	res, err = f.d.Send(ctx, f.app.ID, convoy.Event{Type: "invoice.paid", Data: []byte(`{}`)})
	require.NoError(t, err)
	for _, dl := range res.Deliveries {
		if dl.EndpointID == f.good.ID {
			f.waitStatus(dl.ID, convoy.DeliverySuccess)
		}
	}

	r = f.post("endpoint-status", url.Values{"endpoint": {f.good.ID}, "status": {"pending"}})
	require.Contains(t, r.Body, "flash-error")
	r = f.post("endpoint-status", url.Values{"endpoint": {convoy.NewID()}, "status": {"active"}})
	require.Equal(t, http.StatusNotFound, r.Status)
}

// TestSendTestEvent: the test event goes to the one endpoint, whatever its
// filter, and the page of its delivery shows next.
func TestSendTestEvent(t *testing.T) {
	f := newFixture(t, convoyui.Options{})
	ctx := context.Background()
	_, err := f.d.UpdateEndpoint(ctx, f.good.ID, convoy.EndpointUpdate{EventTypes: &[]string{"invoice.*"}})
	require.NoError(t, err)
	goodBefore, badBefore := f.goodRecv.Count(), f.badRecv.Count()
	r := f.post("test-event", url.Values{"endpoint": {f.good.ID}, "type": {"convoy.test"}, "data": {`{"hello":"world"}`}})
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "/webhooks/delivery", r.URL.Path)
	require.Contains(t, r.Body, "Test event convoy.test sent")
	id := r.URL.Query().Get("id")
	f.waitStatus(id, convoy.DeliverySuccess)
	require.Equal(t, goodBefore+1, f.goodRecv.Count())
	require.Equal(t, badBefore, f.badRecv.Count())
	var got []byte
	for range goodBefore + 1 {
		got = (<-f.goodRecv.Requests).Body
	}
	require.JSONEq(t, `{"hello":"world"}`, string(got))

	// The defaults: type convoy.test, the form's JSON.
	r = f.post("test-event", url.Values{"endpoint": {f.good.ID}})
	require.Contains(t, r.Body, "Test event convoy.test sent")
	// To an inactive endpoint it is Discarded, and the page says what to do.
	r = f.post("test-event", url.Values{"endpoint": {f.bad.ID}})
	require.Contains(t, r.Body, "The endpoint is inactive")
	require.Contains(t, r.Body, "Re-send this delivery")

	r = f.post("test-event", url.Values{"endpoint": {f.good.ID}, "data": {`{not json`}})
	require.Equal(t, "/webhooks/endpoint", r.URL.Path)
	require.Contains(t, r.Body, "flash-error")
	require.Contains(t, r.Body, "not valid JSON")
	r = f.post("test-event", url.Values{"endpoint": {f.good.ID}, "type": {"bad type!"}})
	require.Contains(t, r.Body, "bad event type")
}
