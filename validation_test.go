package convoy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil"
	"github.com/convoykit/convoy/store/memory"
)

// dump renders everything reachable through the dispatcher: apps (with
// raw secrets), endpoints, deliveries, their events and attempts.
func dump(t *testing.T, d *convoy.Dispatcher) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	put := func(v any) {
		js, err := json.Marshal(v)
		require.NoError(t, err)
		b.Write(js)
		b.WriteByte('\n')
	}
	apps, _, err := d.ListApps(ctx, convoy.Page{Limit: convoy.MaxPageSize})
	require.NoError(t, err)
	for _, a := range apps {
		put(a)
		for _, s := range a.Secrets {
			b.WriteString(string(s.Value) + "\n")
		}
		eps, _, err := d.ListEndpoints(ctx, a.ID, convoy.Page{Limit: convoy.MaxPageSize})
		require.NoError(t, err)
		for _, ep := range eps {
			put(ep)
			for _, s := range ep.Secrets {
				b.WriteString(string(s.Value) + "\n")
			}
			ds, _, err := d.ListDeliveries(ctx, convoy.DeliveryQuery{EndpointID: ep.ID}, convoy.Page{Limit: convoy.MaxPageSize})
			require.NoError(t, err)
			for _, dl := range ds {
				put(dl)
				ev, _, err := d.GetEvent(ctx, dl.EventID)
				require.NoError(t, err)
				put(ev)
				as, _, err := d.ListAttempts(ctx, dl.ID, convoy.Page{})
				require.NoError(t, err)
				for _, a := range as {
					put(a)
				}
			}
		}
	}
	return b.String()
}

// TestBadInputIsRefusedAndChangesNothing calls every public method with bad
// input and checks the typed error and that the stores are unchanged.
func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			b := setup(t, sk.open(t), nil)
			ctx := context.Background()
			rc := testutil.NewReceiver(t, nil)
			ep := b.endpoint(t, rc.URL, func(e *convoy.Endpoint) {
				e.Signing = convoy.Signing{Scheme: convoy.SchemeConvoySimple, Header: "X-Acme-Signature"}
			})
			ev := b.send(t, "invoice.paid", `{"n":1}`)
			done := b.waitStatus(t, b.deliveries(t, ev.ID)[0].ID, convoy.DeliverySuccess)
			// Signs with the app's (generated, whsec_) secrets.
			b.endpoint(t, rc.URL, func(e *convoy.Endpoint) {
				e.Signing = convoy.Signing{Scheme: convoy.SchemeStandardWebhooks}
				e.EventTypes = []string{"never.sent"}
			})
			before := dump(t, b.d)
			const plain = convoy.SecretValue("a-plain-text-secret-0123456789")

			long := strings.Repeat("a", 5000)
			okData := json.RawMessage(`{}`)
			cases := []struct {
				name string
				call func() error
				want error
			}{
				{"app without name", func() error { _, err := b.d.CreateApp(ctx, convoy.App{}); return err }, convoy.ErrInvalid},
				{"app name too long", func() error { _, err := b.d.CreateApp(ctx, convoy.App{Name: long}); return err }, convoy.ErrTooLong},
				{"app email too long", func() error { _, err := b.d.CreateApp(ctx, convoy.App{Name: "a", SupportEmail: long}); return err }, convoy.ErrTooLong},
				{"app secret too short", func() error {
					_, err := b.d.CreateApp(ctx, convoy.App{Name: "a", Secrets: []convoy.Secret{{Value: "short"}}})
					return err
				}, convoy.ErrInvalidSecret},
				{"app unknown hash", func() error {
					_, err := b.d.CreateApp(ctx, convoy.App{Name: "a", Signing: convoy.Signing{Hash: "SHA999"}})
					return err
				}, convoy.ErrUnknownHash},
				{"app unknown scheme", func() error {
					_, err := b.d.CreateApp(ctx, convoy.App{Name: "a", Signing: convoy.Signing{Scheme: "rot13"}})
					return err
				}, convoy.ErrUnknownScheme},
				{"app malformed ID", func() error { _, err := b.d.CreateApp(ctx, convoy.App{ID: "x", Name: "a"}); return err }, convoy.ErrInvalidID},
				{"app duplicate ID", func() error { _, err := b.d.CreateApp(ctx, convoy.App{ID: b.app.ID, Name: "a"}); return err }, convoy.ErrDuplicate},
				{"update unknown app", func() error {
					_, err := b.d.UpdateApp(ctx, convoy.NewID(), convoy.AppUpdate{Name: convoy.Ptr("a")})
					return err
				}, convoy.ErrNotFound},
				{"update app empty name", func() error {
					_, err := b.d.UpdateApp(ctx, b.app.ID, convoy.AppUpdate{Name: convoy.Ptr("")})
					return err
				}, convoy.ErrInvalid},
				{"update app to no secret", func() error {
					_, err := b.d.UpdateApp(ctx, b.app.ID, convoy.AppUpdate{Secrets: &[]convoy.Secret{}})
					return err
				}, convoy.ErrInvalidSecret},
				{"rotate to a short secret", func() error { _, err := b.d.RotateAppSecret(ctx, b.app.ID, "tiny", time.Hour); return err }, convoy.ErrInvalidSecret},
				{"app ID that is another's in upper case", func() error {
					_, err := b.d.CreateApp(ctx, convoy.App{ID: strings.ToUpper(b.app.ID), Name: "a"})
					return err
				}, convoy.ErrDuplicate},
				{"app blank name", func() error { _, err := b.d.CreateApp(ctx, convoy.App{Name: "  "}); return err }, convoy.ErrInvalid},
				{"app name with NUL", func() error { _, err := b.d.CreateApp(ctx, convoy.App{Name: "a\x00b"}); return err }, convoy.ErrInvalid},
				{"app email with CRLF", func() error {
					_, err := b.d.CreateApp(ctx, convoy.App{Name: "a", SupportEmail: "ops@example.com\r\nBcc: x@example.com"})
					return err
				}, convoy.ErrInvalid},
				{"app email not an address", func() error { _, err := b.d.CreateApp(ctx, convoy.App{Name: "a", SupportEmail: "ops"}); return err }, convoy.ErrInvalid},
				{"update app email with a display name", func() error {
					_, err := b.d.UpdateApp(ctx, b.app.ID, convoy.AppUpdate{SupportEmail: convoy.Ptr("Ops <ops@example.com>")})
					return err
				}, convoy.ErrInvalid},
				{"update app to secrets a Standard Webhooks endpoint cannot sign with", func() error {
					_, err := b.d.UpdateApp(ctx, b.app.ID, convoy.AppUpdate{Secrets: &[]convoy.Secret{{Value: plain}}})
					return err
				}, convoy.ErrInvalidSecret},
				{"rotate app to a secret a Standard Webhooks endpoint cannot sign with", func() error {
					_, err := b.d.RotateAppSecret(ctx, b.app.ID, plain, time.Hour)
					return err
				}, convoy.ErrInvalidSecret},
				{"rotate app secret keeping old ones for a negative time", func() error {
					_, err := b.d.RotateAppSecret(ctx, b.app.ID, "", -time.Hour)
					return namesField(err, "keepOld")
				}, convoy.ErrInvalid},
				{"rotate endpoint secret keeping old ones for a negative time", func() error {
					_, err := b.d.RotateEndpointSecret(ctx, ep.ID, "", -time.Hour)
					return namesField(err, "keepOld")
				}, convoy.ErrInvalid},
				{"delete unknown app", func() error { return b.d.DeleteApp(ctx, convoy.NewID()) }, convoy.ErrNotFound},
				{"delete app malformed ID", func() error { return b.d.DeleteApp(ctx, "../etc") }, convoy.ErrInvalidID},

				{"endpoint ftp URL", addEP(b, convoy.Endpoint{URL: "ftp://example.com/x"}), convoy.ErrInvalidURL},
				{"endpoint URL without host", addEP(b, convoy.Endpoint{URL: "http:///path"}), convoy.ErrInvalidURL},
				{"endpoint URL with credentials", addEP(b, convoy.Endpoint{URL: "https://user:s3cr3t-passw0rd@example.com/"}), convoy.ErrInvalidURL},
				{"endpoint URL too long", addEP(b, convoy.Endpoint{URL: "https://example.com/" + long}), convoy.ErrInvalidURL},
				{"endpoint relative URL", addEP(b, convoy.Endpoint{URL: "/hooks"}), convoy.ErrInvalidURL},
				{"endpoint URL with spaces", addEP(b, convoy.Endpoint{URL: "https://exa mple.com/"}), convoy.ErrInvalidURL},
				{"endpoint metadata address", addEP(b, convoy.Endpoint{URL: "http://169.254.169.254/latest/meta-data"}), convoy.ErrBlockedAddress},
				{"endpoint private address", addEP(b, convoy.Endpoint{URL: "http://10.0.0.7:8080/"}), convoy.ErrBlockedAddress},
				{"endpoint decimal loopback", addEP(b, convoy.Endpoint{URL: "http://2130706434/"}), convoy.ErrBlockedAddress},
				{"endpoint hex metadata address", addEP(b, convoy.Endpoint{URL: "http://0xa9fea9fe/"}), convoy.ErrBlockedAddress},
				{"endpoint bad status", addEP(b, convoy.Endpoint{URL: "https://example.com/", Status: "dead"}), convoy.ErrInvalidStatus},
				{"endpoint bad event type", addEP(b, convoy.Endpoint{URL: "https://example.com/", EventTypes: []string{"a b"}}), convoy.ErrInvalidEventType},
				{"endpoint overrides Content-Type", addEP(b, convoy.Endpoint{URL: "https://example.com/", Headers: map[string]string{"content-type": "text/plain"}}), convoy.ErrInvalidHeader},
				{"endpoint overrides signature", addEP(b, convoy.Endpoint{URL: "https://example.com/", Headers: map[string]string{"X-Convoy-Signature": "x"}}), convoy.ErrInvalidHeader},
				{"endpoint overrides delivery ID", addEP(b, convoy.Endpoint{URL: "https://example.com/", Headers: map[string]string{convoy.HeaderDeliveryID: "x"}}), convoy.ErrInvalidHeader},
				{"endpoint overrides webhook-id", addEP(b, convoy.Endpoint{URL: "https://example.com/", Headers: map[string]string{"webhook-id": "x"}}), convoy.ErrInvalidHeader},
				{"endpoint header with CRLF", addEP(b, convoy.Endpoint{URL: "https://example.com/", Headers: map[string]string{"X-A": "a\r\nX-B: b"}}), convoy.ErrInvalidHeader},
				{"endpoint header value too long", addEP(b, convoy.Endpoint{URL: "https://example.com/", Headers: map[string]string{"X-A": long}}), convoy.ErrInvalidHeader},
				{"endpoint bad retry", addEP(b, convoy.Endpoint{URL: "https://example.com/", Retry: &convoy.RetryPolicy{Kind: "forever"}}), convoy.ErrInvalidRetry},
				{"endpoint for unknown app", func() error {
					_, err := b.d.AddEndpoint(ctx, convoy.NewID(), convoy.Endpoint{URL: "https://example.com/"})
					return err
				}, convoy.ErrNotFound},
				{"update endpoint to custom signature header", func() error {
					_, err := b.d.UpdateEndpoint(ctx, ep.ID, convoy.EndpointUpdate{Headers: &map[string]string{"x-acme-signature": "forged"}})
					return err
				}, convoy.ErrInvalidHeader},
				{"update endpoint to blocked URL", func() error {
					_, err := b.d.UpdateEndpoint(ctx, ep.ID, convoy.EndpointUpdate{URL: convoy.Ptr("http://[::ffff:127.0.0.2]/")})
					return err
				}, convoy.ErrBlockedAddress},
				{"update unknown endpoint", func() error {
					_, err := b.d.UpdateEndpoint(ctx, convoy.NewID(), convoy.EndpointUpdate{URL: convoy.Ptr("https://example.com/")})
					return err
				}, convoy.ErrNotFound},
				{"set status outside the three", func() error { _, err := b.d.SetEndpointStatus(ctx, ep.ID, "dead"); return err }, convoy.ErrInvalidStatus},
				{"remove unknown endpoint", func() error { return b.d.RemoveEndpoint(ctx, convoy.NewID()) }, convoy.ErrNotFound},

				{"send invalid JSON", sendEv(b, convoy.Event{Type: "x", Data: json.RawMessage(`{"a":`)}), convoy.ErrInvalidJSON},
				{"send two JSON values", sendEv(b, convoy.Event{Type: "x", Data: json.RawMessage(`{} {}`)}), convoy.ErrInvalidJSON},
				{"send no data", sendEv(b, convoy.Event{Type: "x"}), convoy.ErrInvalidJSON},
				{"send payload too large", sendEv(b, convoy.Event{Type: "x", Data: json.RawMessage(`"` + strings.Repeat("a", 1<<20) + `"`)}), convoy.ErrPayloadTooLarge},
				{"send type with slash", sendEv(b, convoy.Event{Type: "a/b", Data: okData}), convoy.ErrInvalidEventType},
				{"send empty type", sendEv(b, convoy.Event{Data: okData}), convoy.ErrInvalidEventType},
				{"send type too long", sendEv(b, convoy.Event{Type: long, Data: okData}), convoy.ErrInvalidEventType},
				{"send idempotency key too long", sendEv(b, convoy.Event{Type: "x", Data: okData, IdempotencyKey: long}), convoy.ErrTooLong},
				{"send to unknown app", func() error {
					_, err := b.d.Send(ctx, convoy.NewID(), convoy.Event{Type: "x", Data: okData})
					return err
				}, convoy.ErrNotFound},
				{"send to malformed app ID", func() error { _, err := b.d.Send(ctx, "", convoy.Event{Type: "x", Data: okData}); return err }, convoy.ErrInvalidID},

				{"resend a successful delivery", func() error { return b.d.Resend(ctx, done.ID) }, convoy.ErrInvalidStatus},
				{"resend unknown delivery", func() error { return b.d.Resend(ctx, convoy.NewID()) }, convoy.ErrNotFound},
				{"resend endpoint with bad status", func() error {
					_, err := b.d.ResendEndpoint(ctx, ep.ID, &convoy.ResendOptions{Statuses: []convoy.DeliveryStatus{convoy.DeliverySuccess}})
					return err
				}, convoy.ErrInvalidStatus},
				{"resend endpoint over an empty time range", func() error {
					now := time.Now()
					_, err := b.d.ResendEndpoint(ctx, ep.ID, &convoy.ResendOptions{CreatedFrom: now, CreatedTo: now.Add(-time.Hour)})
					return namesField(err, "CreatedFrom")
				}, convoy.ErrInvalid},
				{"list deliveries without filter", func() error { _, _, err := b.d.ListDeliveries(ctx, convoy.DeliveryQuery{}, convoy.Page{}); return err }, convoy.ErrInvalid},
				{"attempts of unknown delivery", func() error { _, _, err := b.d.ListAttempts(ctx, convoy.NewID(), convoy.Page{}); return err }, convoy.ErrNotFound},
				{"get event malformed ID", func() error { _, _, err := b.d.GetEvent(ctx, "1"); return err }, convoy.ErrInvalidID},
			}
			for _, c := range cases {
				err := c.call()
				require.ErrorIs(t, err, c.want, c.name)
				require.ErrorIs(t, err, errorRoot(c.want), c.name)
				require.NotContains(t, err.Error(), "s3cr3t-passw0rd", c.name)
				require.Equal(t, before, dump(t, b.d), "%s changed the store", c.name)
			}
		})
	}
}

// errorRoot returns the family a sentinel belongs to: every bad-input
// error also matches ErrInvalid.
func errorRoot(err error) error {
	switch err {
	case convoy.ErrNotFound, convoy.ErrDuplicate:
		return err
	}
	return convoy.ErrInvalid
}

// namesField returns err when its message names field, and an error that
// matches no sentinel otherwise: a case then fails for a refusal of some
// other input.
func namesField(err error, field string) error {
	if err != nil && !strings.Contains(err.Error(), field) {
		return fmt.Errorf("refused, but not for %s: %s", field, err.Error())
	}
	return err
}

func addEP(b *bundle, ep convoy.Endpoint) func() error {
	return func() error {
		_, err := b.d.AddEndpoint(context.Background(), b.app.ID, ep)
		return err
	}
}

func sendEv(b *bundle, ev convoy.Event) func() error {
	return func() error {
		_, err := b.d.Send(context.Background(), b.app.ID, ev)
		return err
	}
}

func TestHTTPSOnly(t *testing.T) {
	b := setup(t, memoryStore(), func(c *convoy.Config) { c.HTTPSOnly = true })
	_, err := b.d.AddEndpoint(context.Background(), b.app.ID, convoy.Endpoint{URL: "http://example.com/"})
	require.ErrorIs(t, err, convoy.ErrInvalidURL)
	_, err = b.d.AddEndpoint(context.Background(), b.app.ID, convoy.Endpoint{URL: "https://example.com/"})
	require.NoError(t, err)
}

// TestHostileReceiversFreeTheWorker: receivers that trickle, flood, send a
// huge header or never answer each cost one failed attempt within the
// timeout, and the single worker is free again for a healthy endpoint.
func TestHostileReceiversFreeTheWorker(t *testing.T) {
	const timeout = time.Second
	cases := []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request)
		check   func(t *testing.T, a *convoy.Attempt)
	}{
		{"trickles one byte a second", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-tick.C:
				}
			}
		}, func(t *testing.T, a *convoy.Attempt) { require.Contains(t, a.Error, "timed out") }},
		{"sends 100 MiB", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			chunk := make([]byte, 1<<20)
			for range 100 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, func(t *testing.T, a *convoy.Attempt) {
			require.Equal(t, 500, a.StatusCode)
			require.True(t, a.ResponseTruncated)
			require.LessOrEqual(t, len(a.ResponseBody), convoy.DefaultMaxResponseBytes)
		}},
		{"sends a 1 MiB header", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Huge", strings.Repeat("h", 1<<20))
			w.WriteHeader(http.StatusOK)
		}, func(t *testing.T, a *convoy.Attempt) {
			require.Equal(t, 0, a.StatusCode)
			require.Contains(t, a.Error, "header")
		}},
		{"never answers", func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			func(t *testing.T, a *convoy.Attempt) { require.Contains(t, a.Error, "timed out") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, memoryStore(), func(cfg *convoy.Config) { cfg.Workers, cfg.Timeout = 1, timeout })
			hostile := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) { c.handler(w, r) })
			healthy := testutil.NewReceiver(t, nil)
			b.endpoint(t, hostile.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"hostile"} })
			b.endpoint(t, healthy.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"healthy"} })

			bad := b.deliveries(t, b.send(t, "hostile", `{}`).ID)[0]
			start := time.Now()
			got := b.waitStatus(t, bad.ID, convoy.DeliveryRetry)
			require.Less(t, time.Since(start), timeout+3*time.Second)
			as := b.attempts(t, got.ID)
			require.Len(t, as, 1)
			require.NotEmpty(t, as[0].Error)
			require.LessOrEqual(t, as[0].Duration, timeout+time.Second)
			c.check(t, as[0])

			// The only worker is free again.
			good := b.deliveries(t, b.send(t, "healthy", `{}`).ID)[0]
			b.waitStatus(t, good.ID, convoy.DeliverySuccess)
		})
	}
}

// TestAppsStoredBeforeTheChecksStillUpdate: an app stored with a name or
// support address that CreateApp refuses now (written before the checks,
// or by another tool) still rotates its secrets and takes updates of its
// other settings; only setting such a name or address again is refused.
func TestAppsStoredBeforeTheChecksStillUpdate(t *testing.T) {
	st := memory.New()
	b := setup(t, st, nil)
	ctx := context.Background()
	secret, err := convoy.GenerateSecret()
	require.NoError(t, err)
	legacy := &convoy.App{
		ID: convoy.NewID(), Name: " ", SupportEmail: "Ops <ops@example.com>",
		Secrets: []convoy.Secret{{Value: secret}}, CreatedAt: b.clock.Now(), UpdatedAt: b.clock.Now(),
	}
	require.NoError(t, st.CreateApp(ctx, legacy))

	_, err = b.d.RotateAppSecret(ctx, legacy.ID, "", time.Hour)
	require.NoError(t, err)
	fresh, err := convoy.GenerateSecret()
	require.NoError(t, err)
	_, err = b.d.UpdateApp(ctx, legacy.ID, convoy.AppUpdate{Secrets: &[]convoy.Secret{{Value: fresh}}})
	require.NoError(t, err)
	_, err = b.d.UpdateApp(ctx, legacy.ID, convoy.AppUpdate{SupportEmail: convoy.Ptr("Ops <ops@example.com>")})
	require.ErrorIs(t, err, convoy.ErrInvalid)
	got, err := b.d.UpdateApp(ctx, legacy.ID, convoy.AppUpdate{Name: convoy.Ptr("Legacy"), SupportEmail: convoy.Ptr("ops@example.com")})
	require.NoError(t, err)
	require.Equal(t, "ops@example.com", got.SupportEmail)
}
