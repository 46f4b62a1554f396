package convoyui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/convoykit/convoy"
)

// actionFunc performs one action. It returns the page to go to next and
// the message to show there; on error, the page to go back to ("" for an
// error page of its own).
type actionFunc func(ctx context.Context, r *http.Request) (to, msg string, err error)

// action turns an actionFunc into a POST handler: refused in read-only
// mode, then post, redirect (303) and get, with the outcome in a flash.
func (h *handler) action(fn actionFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.opts.ReadOnly {
			h.render(w, r, http.StatusForbidden, "error", page{Title: "Read-only",
				Data: errorPage{http.StatusForbidden, "This dashboard is read-only: it takes no action."}})
			return
		}
		if err := r.ParseForm(); err != nil {
			h.fail(w, r, badRequest("the form could not be read"))
			return
		}
		ctx, cancel := h.ctx(r)
		defer cancel()
		to, msg, err := fn(ctx, r)
		if err != nil {
			if to == "" {
				h.fail(w, r, err)
				return
			}
			_, text := h.describe(r, err)
			setFlash(w, r, flash{Error: true, Text: text})
			redirect(w, to)
			return
		}
		setFlash(w, r, flash{Text: msg})
		redirect(w, to)
	}
}

// redirect sends the browser to a relative URL, resolved against the
// action's own URL: the dashboard's mount point, whatever it is.
// (http.Redirect would make it absolute from the path after StripPrefix.)
func redirect(w http.ResponseWriter, to string) {
	w.Header().Set("Location", to)
	w.WriteHeader(http.StatusSeeOther)
}

// resend re-sends one Failure or Discarded delivery.
func (h *handler) resend(ctx context.Context, r *http.Request) (string, string, error) {
	id := r.PostForm.Get("delivery")
	if err := convoy.ValidateID("delivery", id); err != nil {
		return "", "", err
	}
	back := link("delivery", url.Values{"id": {id}})
	dl, err := h.d.GetDelivery(ctx, id)
	if err != nil {
		return "", "", err
	}
	wasInactive := h.inactive(ctx, dl.EndpointID)
	if err := h.d.Resend(ctx, id); err != nil {
		if errors.Is(err, convoy.ErrInvalidStatus) {
			err = badRequest("only a Failure or Discarded delivery can be re-sent; this one is %s", dl.Status)
		}
		return back, "", err
	}
	msg := "Delivery re-sent: it is Scheduled for now, with a fresh round of retries."
	if wasInactive {
		msg += " Its endpoint was inactive and is pending now: the next success makes it active again."
	}
	return back, msg, nil
}

// resendEndpoint re-sends an endpoint's Discarded deliveries, and its
// Failure ones when ticked, optionally within a creation-time range.
func (h *handler) resendEndpoint(ctx context.Context, r *http.Request) (string, string, error) {
	id := r.PostForm.Get("endpoint")
	if err := convoy.ValidateID("endpoint", id); err != nil {
		return "", "", err
	}
	back := link("endpoint", url.Values{"id": {id}})
	var opts convoy.ResendOptions
	for _, s := range r.PostForm["status"] {
		st := convoy.DeliveryStatus(s)
		if st != convoy.DeliveryDiscarded && st != convoy.DeliveryFailure {
			return back, "", badRequest("only Discarded and Failure deliveries can be re-sent, not %q", s)
		}
		if !slices.Contains(opts.Statuses, st) {
			opts.Statuses = append(opts.Statuses, st)
		}
	}
	if len(opts.Statuses) == 0 {
		return back, "", badRequest("choose Discarded, Failure or both")
	}
	var err error
	if opts.CreatedFrom, err = parseTime("from", r.PostForm.Get("from")); err != nil {
		return back, "", err
	}
	if opts.CreatedTo, err = parseTime("to", r.PostForm.Get("to")); err != nil {
		return back, "", err
	}
	if !opts.CreatedFrom.IsZero() && !opts.CreatedTo.IsZero() && !opts.CreatedFrom.Before(opts.CreatedTo) {
		return back, "", badRequest("the start of the range must come before its end")
	}
	wasInactive := h.inactive(ctx, id)
	n, err := h.d.ResendEndpoint(ctx, id, &opts)
	if err != nil {
		return back, "", err
	}
	names := make([]string, len(opts.Statuses))
	for i, s := range opts.Statuses {
		names[i] = string(s)
	}
	msg := fmt.Sprintf("Re-sent %s (%s)", plural(n, "delivery", "deliveries"), strings.Join(names, " and "))
	switch {
	case !opts.CreatedFrom.IsZero() && !opts.CreatedTo.IsZero():
		msg += " created from " + formatTime(opts.CreatedFrom) + " to " + formatTime(opts.CreatedTo)
	case !opts.CreatedFrom.IsZero():
		msg += " created from " + formatTime(opts.CreatedFrom)
	case !opts.CreatedTo.IsZero():
		msg += " created before " + formatTime(opts.CreatedTo)
	}
	msg += "."
	if wasInactive {
		// ResendEndpoint puts an inactive endpoint on probation even when
		// nothing matched.
		msg += " The endpoint was inactive and is pending now: it receives new events again, and the next success makes it active."
	}
	return back, msg, nil
}

// endpointStatus activates or deactivates an endpoint.
func (h *handler) endpointStatus(ctx context.Context, r *http.Request) (string, string, error) {
	id := r.PostForm.Get("endpoint")
	if err := convoy.ValidateID("endpoint", id); err != nil {
		return "", "", err
	}
	back := link("endpoint", url.Values{"id": {id}})
	status := convoy.EndpointStatus(r.PostForm.Get("status"))
	if status != convoy.EndpointActive && status != convoy.EndpointInactive {
		return back, "", badRequest("an endpoint can be set active or inactive, not %q", status)
	}
	before, err := h.d.GetEndpoint(ctx, id)
	if err != nil {
		return "", "", err
	}
	if _, err := h.d.SetEndpointStatus(ctx, id, status); err != nil {
		return back, "", err
	}
	if status == convoy.EndpointInactive {
		return back, "Endpoint deactivated: it receives nothing, and its new events are kept as Discarded.", nil
	}
	msg := "Endpoint activated: new events are delivered again."
	if before.Status == convoy.EndpointInactive {
		msg = "Endpoint re-activated: new events are delivered again. Deliveries Discarded meanwhile stay so until you re-send them."
	}
	return back, msg, nil
}

// testEventType is the type the test-event form offers.
const testEventType = "convoy.test"

// testEvent sends a test event to one endpoint and shows its delivery.
func (h *handler) testEvent(ctx context.Context, r *http.Request) (string, string, error) {
	id := r.PostForm.Get("endpoint")
	if err := convoy.ValidateID("endpoint", id); err != nil {
		return "", "", err
	}
	back := link("endpoint", url.Values{"id": {id}})
	typ := strings.TrimSpace(r.PostForm.Get("type"))
	if typ == "" {
		typ = testEventType
	}
	data := strings.TrimSpace(r.PostForm.Get("data"))
	if data == "" {
		data = defaultTestData
	}
	res, err := h.d.SendToEndpoint(ctx, id, convoy.Event{Type: typ, Data: json.RawMessage(data)})
	if err != nil {
		return back, "", err
	}
	if len(res.Deliveries) == 0 {
		return back, "", badRequest("the endpoint was removed before the event was stored")
	}
	dl := res.Deliveries[0]
	msg := "Test event " + typ + " sent: the delivery below is " + string(dl.Status) + "."
	if dl.Status == convoy.DeliveryDiscarded {
		msg += " The endpoint is inactive: activate it, then re-send this delivery."
	}
	return link("delivery", url.Values{"id": {dl.ID}}), msg, nil
}

// inactive reports whether the endpoint is inactive, so that a re-send
// says it put the endpoint on probation (the re-sent delivery may succeed
// and end the probation before the page could look).
func (h *handler) inactive(ctx context.Context, endpointID string) bool {
	ep, err := h.d.GetEndpoint(ctx, endpointID)
	return err == nil && ep.Status == convoy.EndpointInactive
}

func itoa(n int) string { return strconv.Itoa(n) }

func sortStrings(s []string) { slices.Sort(s) }
