package convoy_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil"
)

// fullEndpoint is an endpoint with every setting away from its default.
func fullEndpoint(url string) convoy.Endpoint {
	r := convoy.LinearRetry(time.Second, 2)
	return convoy.Endpoint{
		URL:         url,
		Description: "billing",
		EventTypes:  []string{"invoice.paid", "order.*"},
		Headers:     map[string]string{"X-Tenant": "acme"},
		Secrets:     []convoy.Secret{{Value: "endpoint-own-secret-0123456789"}},
		Signing:     convoy.Signing{Scheme: convoy.SchemeConvoyAdvanced, Hash: "SHA512"},
		Retry:       &r,
		RateLimit:   &convoy.RateLimit{PerSecond: 50, Burst: 10},
		Ordered:     true,
	}
}

// TestUpdateEndpointChangesOnlyWhatItNames: each field of EndpointUpdate
// alone changes that setting and keeps every other one, the status
// included.
func TestUpdateEndpointChangesOnlyWhatItNames(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			b := setup(t, kind.open(t), nil)
			ctx := context.Background()
			orig := b.endpoint(t, "https://example.com/hooks", func(e *convoy.Endpoint) { *e = fullEndpoint(e.URL) })
			newRetry := convoy.LinearRetry(time.Minute, 9)
			cases := []struct {
				name  string
				u     convoy.EndpointUpdate
				check func(t *testing.T, got *convoy.Endpoint)
			}{
				{"URL", convoy.EndpointUpdate{URL: convoy.Ptr("https://example.com/v2")}, func(t *testing.T, e *convoy.Endpoint) { require.Equal(t, "https://example.com/v2", e.URL) }},
				{"Description", convoy.EndpointUpdate{Description: convoy.Ptr("")}, func(t *testing.T, e *convoy.Endpoint) { require.Empty(t, e.Description) }},
				{"EventTypes", convoy.EndpointUpdate{EventTypes: &[]string{"user.*"}}, func(t *testing.T, e *convoy.Endpoint) { require.Equal(t, []string{"user.*"}, e.EventTypes) }},
				{"Headers", convoy.EndpointUpdate{Headers: &map[string]string{}}, func(t *testing.T, e *convoy.Endpoint) { require.Empty(t, e.Headers) }},
				{"Secrets", convoy.EndpointUpdate{Secrets: &[]convoy.Secret{}}, func(t *testing.T, e *convoy.Endpoint) { require.Empty(t, e.Secrets) }},
				{"Signing", convoy.EndpointUpdate{Signing: &convoy.Signing{}}, func(t *testing.T, e *convoy.Endpoint) { require.Equal(t, convoy.Signing{}, e.Signing) }},
				{"Retry", convoy.EndpointUpdate{Retry: &newRetry}, func(t *testing.T, e *convoy.Endpoint) { require.Equal(t, &newRetry, e.Retry) }},
				{"RetryCleared", convoy.EndpointUpdate{Retry: &convoy.RetryPolicy{}}, func(t *testing.T, e *convoy.Endpoint) { require.Nil(t, e.Retry) }},
				{"RateLimit", convoy.EndpointUpdate{RateLimit: &convoy.RateLimit{PerSecond: 0.5}}, func(t *testing.T, e *convoy.Endpoint) {
					require.Equal(t, &convoy.RateLimit{PerSecond: 0.5}, e.RateLimit)
				}},
				{"RateLimitCleared", convoy.EndpointUpdate{RateLimit: &convoy.RateLimit{}}, func(t *testing.T, e *convoy.Endpoint) { require.Nil(t, e.RateLimit) }},
				{"Ordered", convoy.EndpointUpdate{Ordered: convoy.Ptr(false)}, func(t *testing.T, e *convoy.Endpoint) { require.False(t, e.Ordered) }},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					ep, err := b.d.AddEndpoint(ctx, b.app.ID, fullEndpoint("https://example.com/hooks"))
					require.NoError(t, err)
					_, err = b.d.SetEndpointStatus(ctx, ep.ID, convoy.EndpointPending)
					require.NoError(t, err)
					got, err := b.d.UpdateEndpoint(ctx, ep.ID, c.u)
					require.NoError(t, err)
					c.check(t, got)
					stored, err := b.d.GetEndpoint(ctx, ep.ID)
					require.NoError(t, err)
					require.Equal(t, got, stored, "UpdateEndpoint returns what is stored")
					c.check(t, stored)
					require.Equal(t, convoy.EndpointPending, stored.Status, "a settings update never changes the status")
					// Everything the update did not name is as it was.
					want := ep.Clone()
					want.Status = convoy.EndpointPending
					keep := stored.Clone()
					for _, e := range []*convoy.Endpoint{want, keep} {
						e.UpdatedAt = time.Time{}
						switch c.name {
						case "URL":
							e.URL = ""
						case "Description":
							e.Description = ""
						case "EventTypes":
							e.EventTypes = nil
						case "Headers":
							e.Headers = nil
						case "Secrets":
							e.Secrets = nil
						case "Signing":
							e.Signing = convoy.Signing{}
						case "Retry", "RetryCleared":
							e.Retry = nil
						case "RateLimit", "RateLimitCleared":
							e.RateLimit = nil
						case "Ordered":
							e.Ordered = false
						}
					}
					require.Equal(t, want, keep)
				})
			}
			_ = orig
		})
	}
}

// TestUpdateEndpointCannotReactivate: an update built from an endpoint
// read before a worker killed it leaves it dead.
func TestUpdateEndpointCannotReactivate(t *testing.T) {
	rc := newStatusReceiver(t, http.StatusGone)
	b := setup(t, memoryStore(), nil)
	ctx := context.Background()
	ep := b.endpoint(t, rc.URL, nil)
	read, err := b.d.GetEndpoint(ctx, ep.ID) // active
	require.NoError(t, err)
	ev := b.send(t, "x", `{}`)
	b.waitStatus(t, b.deliveries(t, ev.ID)[0].ID, convoy.DeliveryFailure)
	require.Eventually(t, func() bool {
		e, err := b.d.GetEndpoint(ctx, ep.ID)
		require.NoError(t, err)
		return e.Status == convoy.EndpointInactive
	}, 10*time.Second, 5*time.Millisecond)

	got, err := b.d.UpdateEndpoint(ctx, read.ID, convoy.EndpointUpdate{Description: convoy.Ptr("renamed"), URL: &read.URL})
	require.NoError(t, err)
	require.Equal(t, convoy.EndpointInactive, got.Status, "the worker's verdict stays")
	require.Equal(t, "renamed", got.Description)
}

// TestUpdateEndpointRefusesBadInputAndChangesNothing: a bad field fails
// the whole update.
func TestUpdateEndpointRefusesBadInputAndChangesNothing(t *testing.T) {
	b := setup(t, memoryStore(), nil)
	ctx := context.Background()
	ep := b.endpoint(t, "https://example.com/hooks", func(e *convoy.Endpoint) { *e = fullEndpoint(e.URL) })
	_, err := b.d.UpdateEndpoint(ctx, ep.ID, convoy.EndpointUpdate{
		Description: convoy.Ptr("new"),
		EventTypes:  &[]string{"bad type"},
	})
	require.ErrorIs(t, err, convoy.ErrInvalidEventType)
	for _, rl := range []convoy.RateLimit{{PerSecond: -1}, {PerSecond: 0, Burst: 5}, {PerSecond: 1, Burst: -1}, {PerSecond: 2e6}} {
		_, err = b.d.UpdateEndpoint(ctx, ep.ID, convoy.EndpointUpdate{Description: convoy.Ptr("new"), RateLimit: &rl})
		require.ErrorIs(t, err, convoy.ErrInvalidRateLimit, "%+v", rl)
	}
	_, err = b.d.AddEndpoint(ctx, b.app.ID, convoy.Endpoint{URL: "https://example.com/x", RateLimit: &convoy.RateLimit{}})
	require.ErrorIs(t, err, convoy.ErrInvalidRateLimit, "a zero rate limit on create")
	got, err := b.d.GetEndpoint(ctx, ep.ID)
	require.NoError(t, err)
	require.Equal(t, ep, got)
}

// TestConcurrentUpdatesOfDifferentFieldsKeepBoth: two updates of
// different fields racing each other both land.
func TestConcurrentUpdatesOfDifferentFieldsKeepBoth(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			b := setup(t, kind.open(t), nil)
			ctx := context.Background()
			for range 10 {
				ep := b.endpoint(t, "https://example.com/hooks", nil)
				var wg sync.WaitGroup
				wg.Add(2)
				go func() {
					defer wg.Done()
					_, err := b.d.UpdateEndpoint(ctx, ep.ID, convoy.EndpointUpdate{Description: convoy.Ptr("described")})
					require.NoError(t, err)
				}()
				go func() {
					defer wg.Done()
					_, err := b.d.UpdateEndpoint(ctx, ep.ID, convoy.EndpointUpdate{Headers: &map[string]string{"X-A": "1"}})
					require.NoError(t, err)
				}()
				wg.Wait()
				got, err := b.d.GetEndpoint(ctx, ep.ID)
				require.NoError(t, err)
				require.Equal(t, "described", got.Description)
				require.Equal(t, map[string]string{"X-A": "1"}, got.Headers)
			}
		})
	}
}

// TestUpdateAppChangesOnlyWhatItNames: renaming an app keeps its scheme,
// support email and secrets.
func TestUpdateAppChangesOnlyWhatItNames(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			b := setup(t, kind.open(t), nil)
			ctx := context.Background()
			app, err := b.d.CreateApp(ctx, convoy.App{
				Name: "Acme", SupportEmail: "ops@acme.test",
				Signing: convoy.Signing{Scheme: convoy.SchemeConvoySimple, Hash: "SHA512", Encoding: convoy.Base64},
			})
			require.NoError(t, err)

			got, err := b.d.UpdateApp(ctx, app.ID, convoy.AppUpdate{Name: convoy.Ptr("Acme Inc")})
			require.NoError(t, err)
			require.Equal(t, "Acme Inc", got.Name)
			require.Equal(t, app.SupportEmail, got.SupportEmail)
			require.Equal(t, app.Signing, got.Signing)
			require.Equal(t, app.Secrets, got.Secrets)

			got, err = b.d.UpdateApp(ctx, app.ID, convoy.AppUpdate{SupportEmail: convoy.Ptr("")})
			require.NoError(t, err)
			require.Empty(t, got.SupportEmail)
			require.Equal(t, "Acme Inc", got.Name)

			got, err = b.d.UpdateApp(ctx, app.ID, convoy.AppUpdate{Signing: &convoy.Signing{}})
			require.NoError(t, err)
			require.Equal(t, convoy.Signing{}, got.Signing)
			require.Equal(t, app.Secrets, got.Secrets)

			secret := []convoy.Secret{{Value: "hand-set-secret-0123456789"}}
			got, err = b.d.UpdateApp(ctx, app.ID, convoy.AppUpdate{Secrets: &secret})
			require.NoError(t, err)
			require.Len(t, got.Secrets, 1)
			require.Equal(t, secret[0].Value, got.Secrets[0].Value)

			stored, err := b.d.GetApp(ctx, app.ID)
			require.NoError(t, err)
			require.Equal(t, got, stored)
		})
	}
}

// TestEventTypeWildcardFilter: "order.*" takes every type under order.
func TestEventTypeWildcardFilter(t *testing.T) {
	ep := convoy.Endpoint{EventTypes: []string{"order.*", "invoice.paid"}}
	for typ, want := range map[string]bool{
		"order.paid": true, "order.refund.created": true, "invoice.paid": true,
		"order": false, "orders.paid": false, "invoice.sent": false, "xorder.paid": false,
	} {
		require.Equal(t, want, ep.Accepts(typ), typ)
	}
	for _, f := range []string{"*", "order.*", "a.b.*", "invoice.paid"} {
		require.NoError(t, convoy.ValidateEventFilter(f), f)
	}
	for _, f := range []string{"order*", ".*", "or der.*", "order.**", "*.paid", ""} {
		require.ErrorIs(t, convoy.ValidateEventFilter(f), convoy.ErrInvalidEventType, f)
	}
}

// newStatusReceiver answers every request with status.
func newStatusReceiver(t *testing.T, status int) *testutil.Receiver {
	return testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) })
}

// TestEndpointSettingsThatWouldMislead: settings that would be stored but
// act otherwise than they read are refused.
func TestEndpointSettingsThatWouldMislead(t *testing.T) {
	b := setup(t, memoryStore(), nil)
	ctx := context.Background()
	ep := b.endpoint(t, "https://example.com/hooks", nil)
	expired := []convoy.Secret{{Value: "endpoint-own-secret-0123456789", ExpiresAt: b.clock.Now().Add(-time.Hour)}}
	for name, c := range map[string]struct {
		add  convoy.Endpoint
		upd  convoy.EndpointUpdate
		want error
	}{
		// Two spellings of one header: which one a receiver reads is chance.
		"headers differing in case": {
			add: convoy.Endpoint{Headers: map[string]string{"X-Tenant": "a", "x-tenant": "b"}},
			upd: convoy.EndpointUpdate{Headers: &map[string]string{"X-Tenant": "a", "x-tenant": "b"}}, want: convoy.ErrInvalidHeader},
		"headers differing in - and _": {
			add: convoy.Endpoint{Headers: map[string]string{"X-Tenant": "a", "X_Tenant": "b"}},
			upd: convoy.EndpointUpdate{Headers: &map[string]string{"X-Tenant": "a", "X_Tenant": "b"}}, want: convoy.ErrInvalidHeader},
		// A hash without a scheme would be shown and never used.
		"hash without scheme": {
			add: convoy.Endpoint{Signing: convoy.Signing{Hash: "MD5"}},
			upd: convoy.EndpointUpdate{Signing: &convoy.Signing{Hash: "MD5"}}, want: convoy.ErrUnknownScheme},
		"port out of range": {
			add: convoy.Endpoint{URL: "http://example.com:99999/"},
			upd: convoy.EndpointUpdate{URL: convoy.Ptr("http://example.com:0/")}, want: convoy.ErrInvalidURL},
	} {
		add := c.add
		if add.URL == "" {
			add.URL = "https://example.com/hooks"
		}
		_, err := b.d.AddEndpoint(ctx, b.app.ID, add)
		require.ErrorIs(t, err, c.want, name)
		_, err = b.d.UpdateEndpoint(ctx, ep.ID, c.upd)
		require.ErrorIs(t, err, c.want, name)
	}
	// A retry policy without a Kind but with parameters is ambiguous: only
	// &RetryPolicy{} removes the override.
	_, err := b.d.UpdateEndpoint(ctx, ep.ID, convoy.EndpointUpdate{Retry: &convoy.RetryPolicy{Limit: 3}})
	require.ErrorIs(t, err, convoy.ErrInvalidRetry)
	// Own secrets that are all expired would be dropped, and the endpoint
	// would sign with its app's secret without a word.
	_, err = b.d.UpdateEndpoint(ctx, ep.ID, convoy.EndpointUpdate{Secrets: &expired})
	require.ErrorIs(t, err, convoy.ErrInvalidSecret)
	got, err := b.d.GetEndpoint(ctx, ep.ID)
	require.NoError(t, err)
	require.Equal(t, ep, got, "nothing changed")

	_, _, err = b.d.ListEvents(ctx, convoy.EventQuery{CreatedFrom: b.clock.Now(), CreatedTo: b.clock.Now().Add(-time.Hour)}, convoy.Page{})
	require.ErrorIs(t, err, convoy.ErrInvalid, "an inverted time range")
}
