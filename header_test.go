package convoy_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil"
	"github.com/convoykit/convoy/store/memory"
)

func TestIsReservedHeader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		reserved bool
	}{
		{"Content-Type", true},
		{"content-type", true},
		{"Content_Type", true},
		{"CONTENT_LENGTH", true},
		{"Host", true},
		{"Transfer_Encoding", true},
		{"User_Agent", true},
		{"X-Convoy-Signature", true},
		{"X_Convoy_Signature", true},
		{"x_convoy_signature", true},
		{"X-Convoy_Event-ID", true},
		{"X-Convoy-Anything", true},
		{"webhook-id", true},
		{"webhook_id", true},
		{"Webhook_Signature", true},
		{"Idempotency_Key", true},
		{"X-Idempotency-Key", true},
		{"Proxy-Authorization", true},
		{"Proxy_Anything", true},
		{"Keep_Alive", true},
		{"X-Custom", false},
		{"X_Custom", false},
		{"Authorization", false},
		{"X-Convoy", false},
		{"XConvoy-Signature", false},
		{"Webhook", false},
		{"Content", false},
	} {
		require.Equal(t, tc.reserved, convoy.IsReservedHeader(tc.name), tc.name)
	}
}

// refusedSignatureHeaders are Signing.Header names that cannot carry a
// signature to the receiver intact: HTTP drops, rewrites or reads them
// itself, or convoy sets them to something else.
var refusedSignatureHeaders = []string{
	// Framing and hop-by-hop: net/http writes its own or drops them, and
	// proxies strip them.
	"Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
	"Te", "Trailer", "Upgrade", "Proxy-Authorization", "Proxy-Connection", "Proxy-Foo",
	// Convoy's own headers.
	"Content-Type", "User-Agent", "X-Convoy-Event-ID", "X-Convoy-Delivery-ID",
	"X-Convoy-Event-Type", "X-Convoy-Attempt", "X-Convoy-Idempotency-Key",
	"X-Convoy-Other", "webhook-id", "webhook-timestamp", "webhook-signature",
	"Idempotency-Key",
	// Headers HTTP gives a meaning of its own, or intermediaries rewrite.
	"Cookie", "Expect", "Content-Encoding", "Content-Range", "Via", "Forwarded",
	"Max-Forwards", "X-Forwarded-For",
	// Other spellings.
	"host", "CONTENT-LENGTH", "content_length", "X_Convoy_Event_ID", "webhook_id",
	// Underscores: nginx and Apache drop such headers by default.
	"X_Acme_Signature", "X_Convoy_Signature",
	// Not a token.
	"X Sig", "X:Sig", "X-Sig\r\nX-Evil", "Sig\x00", "Sïg", "(Sig)",
	strings.Repeat("x", 257),
}

// TestSigningRefusesUnsafeHeaders: a Signing.Header that would send the
// signature nowhere, or in another header's place, is refused by
// Signing.Validate, and so by every call that stores one and by the
// Verifier.
func TestSigningRefusesUnsafeHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t, memory.New(), nil)
	ctx := context.Background()
	ep, err := b.d.AddEndpoint(ctx, b.app.ID, convoy.Endpoint{URL: "https://receiver.example/hook"})
	require.NoError(t, err)
	requireRefused := func(t *testing.T, name string, err error) {
		t.Helper()
		require.ErrorIs(t, err, convoy.ErrInvalidHeader, "%q", name)
		require.ErrorIs(t, err, convoy.ErrInvalid, "%q", name)
		var he *convoy.HeaderError
		require.ErrorAs(t, err, &he, "%q", name)
		require.Equal(t, name, he.Name)
		require.Equal(t, "signing.Header", he.Field)
		require.NotEmpty(t, he.Reason)
	}
	for _, name := range refusedSignatureHeaders {
		for _, scheme := range []convoy.Scheme{"", convoy.SchemeConvoyAdvanced, convoy.SchemeConvoySimple} {
			s := convoy.Signing{Scheme: scheme, Header: name}
			requireRefused(t, name, s.Validate())

			_, err := b.d.CreateApp(ctx, convoy.App{Name: "x", Signing: s})
			requireRefused(t, name, err)
			_, err = b.d.UpdateApp(ctx, b.app.ID, convoy.AppUpdate{Signing: &s})
			requireRefused(t, name, err)
			_, err = b.d.AddEndpoint(ctx, b.app.ID, convoy.Endpoint{URL: "https://receiver.example/", Signing: s})
			requireRefused(t, name, err)
			_, err = b.d.UpdateEndpoint(ctx, ep.ID, convoy.EndpointUpdate{Signing: &s})
			requireRefused(t, name, err)

			v := &convoy.Verifier{Signing: s, Secrets: []convoy.SecretValue{"hand-set-secret-0123456789"}}
			requireRefused(t, name, v.Verify(http.Header{name: {"x"}}, nil))
		}
	}
	got, err := b.d.GetApp(ctx, b.app.ID)
	require.NoError(t, err)
	require.Equal(t, b.app.Signing, got.Signing, "nothing was stored")
}

// TestSigningHeaderIsSentAndVerifies sends a real request for each
// accepted signature header, set on the app or on the endpoint, and checks
// that it arrives in that header and verifies.
func TestSigningHeaderIsSentAndVerifies(t *testing.T) {
	t.Parallel()
	names := []string{
		"", convoy.DefaultSignatureHeader, "x-convoy-signature", "X-Acme-Signature",
		"Signature", "Authorization", "X-Hub-Signature-256", "Stripe-Signature",
		"X-Sig.v1", "x~sig",
	}
	schemes := []convoy.Scheme{convoy.SchemeConvoyAdvanced, convoy.SchemeConvoySimple}
	for _, name := range names {
		for _, scheme := range schemes {
			for _, onApp := range []bool{false, true} {
				where := "endpoint"
				if onApp {
					where = "app"
				}
				t.Run(where+"/"+string(scheme)+"/"+name, func(t *testing.T) {
					t.Parallel()
					s := convoy.Signing{Scheme: scheme, Header: name}
					require.NoError(t, s.Validate())
					b := setup(t, memory.New(), nil)
					ctx := context.Background()
					if onApp {
						app, err := b.d.UpdateApp(ctx, b.app.ID, convoy.AppUpdate{Signing: &s})
						require.NoError(t, err)
						b.app = app
					}
					rc := testutil.NewReceiver(t, nil)
					b.endpoint(t, rc.URL, func(e *convoy.Endpoint) {
						e.Headers = map[string]string{"X-Custom": "kept"}
						if !onApp {
							e.Signing = s
						}
					})
					b.send(t, "x", `{"n":1}`)
					var req testutil.Request
					select {
					case req = <-rc.Requests:
					case <-time.After(10 * time.Second):
						t.Fatal("no request")
					}
					want := name
					if want == "" {
						want = convoy.DefaultSignatureHeader
					}
					require.Len(t, req.Header.Values(want), 1, "one signature in %s", want)
					require.NotEmpty(t, req.Header.Get(want))
					require.Equal(t, "application/json", req.Header.Get("Content-Type"))
					require.Equal(t, convoy.UserAgent, req.Header.Get("User-Agent"))
					require.NotEmpty(t, req.Header.Get(convoy.HeaderEventID))
					require.Equal(t, "kept", req.Header.Get("X-Custom"))
					v := &convoy.Verifier{Signing: s, Secrets: []convoy.SecretValue{b.app.Secrets[0].Value}, Now: b.clock.Now}
					require.NoError(t, v.Verify(req.Header, req.Body))
				})
			}
		}
	}
}

// TestEndpointHeadersRefuseReservedSpellings: custom headers whose names
// CGI, WSGI, Rack and PHP receivers would read as a reserved header, or as
// the scheme's signature header, are refused whatever the case and however
// - and _ are mixed.
func TestEndpointHeadersRefuseReservedSpellings(t *testing.T) {
	t.Parallel()
	b := setup(t, memory.New(), nil)
	ctx := context.Background()
	ep, err := b.d.AddEndpoint(ctx, b.app.ID, convoy.Endpoint{URL: "https://receiver.example/hook"})
	require.NoError(t, err)
	acme := convoy.Signing{Scheme: convoy.SchemeConvoySimple, Header: "X-Acme-Signature"}
	for _, tc := range []struct {
		header  string
		signing convoy.Signing
	}{
		{"X_Convoy_Signature", convoy.Signing{}},
		{"x_convoy_signature", convoy.Signing{}},
		{"X_CONVOY_EVENT_ID", convoy.Signing{}},
		{"webhook_id", convoy.Signing{}},
		{"Webhook_Timestamp", convoy.Signing{}},
		{"Content_Type", convoy.Signing{}},
		{"content_length", convoy.Signing{}},
		{"User_Agent", convoy.Signing{}},
		{"Proxy_Authorization", convoy.Signing{}},
		{"Transfer_encoding", convoy.Signing{}},
		// The scheme's own signature header, in another spelling.
		{"x_acme_signature", acme},
		{"X-ACME_SIGNATURE", acme},
		{"x-acme-signature", acme},
	} {
		e := convoy.Endpoint{URL: "https://receiver.example/", Headers: map[string]string{tc.header: "v"}, Signing: tc.signing}
		_, err := b.d.AddEndpoint(ctx, b.app.ID, e)
		require.ErrorIs(t, err, convoy.ErrInvalidHeader, tc.header)
		require.ErrorIs(t, err, convoy.ErrInvalid, tc.header)
		var he *convoy.HeaderError
		require.ErrorAs(t, err, &he, tc.header)
		require.Equal(t, tc.header, he.Name)
		require.Equal(t, "endpoint.Headers", he.Field)

		_, err = b.d.UpdateEndpoint(ctx, ep.ID, convoy.EndpointUpdate{Headers: &e.Headers, Signing: &e.Signing})
		require.ErrorIs(t, err, convoy.ErrInvalidHeader, tc.header)
	}
	// A header that only looks like the app's signature header is fine
	// when the endpoint signs into another one.
	_, err = b.d.AddEndpoint(ctx, b.app.ID, convoy.Endpoint{
		URL: "https://receiver.example/", Signing: acme,
		Headers: map[string]string{"X_Custom": "v", "Authorization": "Bearer t"},
	})
	require.NoError(t, err)
}

// tamperedStore returns endpoints as an older release (or a store written
// by hand) may hold them: with settings today's validation refuses.
type tamperedStore struct {
	convoy.Store
	tamper func(*convoy.Endpoint)
}

func (s tamperedStore) GetEndpoint(ctx context.Context, id string) (*convoy.Endpoint, error) {
	ep, err := s.Store.GetEndpoint(ctx, id)
	if err == nil {
		s.tamper(ep)
	}
	return ep, err
}

// TestStoredUnsafeHeadersNeverReachTheWire: settings that validation
// refuses but a store still holds never send a request without its
// signature, nor a custom header in a reserved or signature header's
// place.
func TestStoredUnsafeHeadersNeverReachTheWire(t *testing.T) {
	t.Parallel()
	t.Run("signature header", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{"Host", "Content-Length", "Transfer-Encoding", "Content-Type", "X-Convoy-Event-ID"} {
			st := tamperedStore{Store: memory.New(), tamper: func(e *convoy.Endpoint) {
				e.Signing = convoy.Signing{Scheme: convoy.SchemeConvoySimple, Header: name}
			}}
			b := setup(t, st, nil)
			rc := testutil.NewReceiver(t, nil)
			b.endpoint(t, rc.URL, nil)
			dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
			got := b.waitStatus(t, dl.ID, convoy.DeliveryRetry)
			require.Contains(t, got.LastError, "sign", name)
			require.Zero(t, rc.Count(), "%s: a request went out", name)
		}
	})
	t.Run("custom headers", func(t *testing.T) {
		t.Parallel()
		acme := convoy.Signing{Scheme: convoy.SchemeConvoySimple, Header: "X-Acme-Signature"}
		st := tamperedStore{Store: memory.New(), tamper: func(e *convoy.Endpoint) {
			e.Headers = map[string]string{
				"X_Convoy_Signature": "forged", "Content_Type": "text/plain",
				"x_acme_signature": "forged", "X-Custom": "kept",
			}
		}}
		b := setup(t, st, nil)
		rc := testutil.NewReceiver(t, nil)
		b.endpoint(t, rc.URL, func(e *convoy.Endpoint) { e.Signing = acme })
		dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
		b.waitStatus(t, dl.ID, convoy.DeliverySuccess)
		req := <-rc.Requests
		require.Equal(t, "kept", req.Header.Get("X-Custom"))
		for k, vs := range req.Header {
			require.NotContains(t, vs, "forged", k)
			require.NotEqual(t, "content_type", strings.ToLower(k))
		}
		v := &convoy.Verifier{Signing: acme, Secrets: []convoy.SecretValue{b.app.Secrets[0].Value}, Now: b.clock.Now}
		require.NoError(t, v.Verify(req.Header, req.Body))
	})
}
