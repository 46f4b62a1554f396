package convoy_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil"
	"github.com/convoykit/convoy/store/memory"
)

// TestEveryDeliveryVerifiesForEachScheme: a receiver that checks each
// request with our Verifier accepts every delivery, for each scheme.
func TestEveryDeliveryVerifiesForEachScheme(t *testing.T) {
	schemes := []convoy.Signing{
		{}, // the default: Convoy advanced, SHA256, hex
		{Scheme: convoy.SchemeConvoyAdvanced, Hash: convoy.SHA3_512, Encoding: convoy.Base64},
		{Scheme: convoy.SchemeConvoySimple, Hash: convoy.SHA512, Header: "X-Acme-Signature"},
		{Scheme: convoy.SchemeConvoySimple, Hash: convoy.MD5, Encoding: convoy.Base64},
		{Scheme: convoy.SchemeStandardWebhooks},
	}
	for _, s := range schemes {
		t.Run(string(s.Scheme)+"/"+string(s.Hash)+"/"+string(s.Encoding), func(t *testing.T) {
			b := setup(t, memory.New(), nil)
			verifier := &convoy.Verifier{Signing: s, Secrets: []convoy.SecretValue{b.app.Secrets[0].Value}, Now: b.clock.Now}
			rc := testutil.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				if _, err := verifier.VerifyRequest(r); err != nil {
					http.Error(w, "bad signature", http.StatusUnauthorized)
				}
			})
			b.endpoint(t, rc.URL, func(e *convoy.Endpoint) { e.Signing = s })
			var ids []string
			for range 5 {
				ids = append(ids, b.deliveries(t, b.send(t, "x", `{"n":1}`).ID)[0].ID)
			}
			for _, id := range ids {
				b.waitStatus(t, id, convoy.DeliverySuccess)
			}
		})
	}
}

// TestSecretRotation: during rotation both secrets sign, so receivers with
// either verify; after the old one expires only the new one does.
func TestSecretRotation(t *testing.T) {
	b := setup(t, memory.New(), nil)
	rc := testutil.NewReceiver(t, nil)
	b.endpoint(t, rc.URL, nil)
	ctx := context.Background()
	old := b.app.Secrets[0].Value
	app, err := b.d.RotateAppSecret(ctx, b.app.ID, "", time.Hour)
	require.NoError(t, err)
	require.Len(t, app.Secrets, 2)
	fresh := app.Secrets[1].Value
	require.NotEqual(t, string(old), string(fresh))

	verify := func(secret convoy.SecretValue, req testutil.Request) error {
		v := &convoy.Verifier{Secrets: []convoy.SecretValue{secret}, Now: b.clock.Now}
		return v.Verify(req.Header, req.Body)
	}
	b.send(t, "x", `{}`)
	req := <-rc.Requests
	require.NoError(t, verify(old, req))
	require.NoError(t, verify(fresh, req))

	b.clock.Advance(time.Hour)
	b.send(t, "x", `{}`)
	req = <-rc.Requests
	require.ErrorIs(t, verify(old, req), convoy.ErrSignatureMismatch)
	require.NoError(t, verify(fresh, req))
}

// TestConvoySimpleRotationKeepsTheOldSecret: the Convoy simple header has
// room for one signature, so during a rotation it is made with the oldest
// live secret: a receiver that knows only the old secret keeps verifying
// until that secret expires, and from then on only the new one verifies.
// It holds for an app's secrets and for an endpoint's own.
func TestConvoySimpleRotationKeepsTheOldSecret(t *testing.T) {
	simple := convoy.Signing{Scheme: convoy.SchemeConvoySimple, Hash: convoy.SHA512}
	for _, own := range []bool{false, true} {
		name := "app secrets"
		if own {
			name = "endpoint secrets"
		}
		t.Run(name, func(t *testing.T) {
			b := setup(t, memory.New(), nil)
			ctx := context.Background()
			rc := testutil.NewReceiver(t, nil)
			ep := b.endpoint(t, rc.URL, func(e *convoy.Endpoint) {
				e.Signing = simple
				if own {
					e.Secrets = []convoy.Secret{{Value: "hand-set-secret-0123456789"}}
				}
			})
			old := b.app.Secrets[0].Value
			if own {
				old = ep.Secrets[0].Value
			}
			verify := func(req testutil.Request, secrets ...convoy.SecretValue) error {
				v := &convoy.Verifier{Signing: simple, Secrets: secrets, Now: b.clock.Now}
				return v.Verify(req.Header, req.Body)
			}
			// next sends an event and returns its request once its
			// delivery is recorded, so moving the clock afterwards cannot
			// expire its lease and have it sent again.
			next := func() testutil.Request {
				dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
				b.waitStatus(t, dl.ID, convoy.DeliverySuccess)
				for {
					select {
					case req := <-rc.Requests:
						if req.Header.Get(convoy.HeaderDeliveryID) == dl.ID {
							return req
						}
					case <-time.After(10 * time.Second):
						t.Fatal("no request")
					}
				}
			}

			var fresh convoy.SecretValue
			if own {
				e, err := b.d.RotateEndpointSecret(ctx, ep.ID, "", 24*time.Hour)
				require.NoError(t, err)
				require.Len(t, e.Secrets, 2)
				fresh = e.Secrets[1].Value
			} else {
				app, err := b.d.RotateAppSecret(ctx, b.app.ID, "", 24*time.Hour)
				require.NoError(t, err)
				require.Len(t, app.Secrets, 2)
				fresh = app.Secrets[1].Value
			}
			require.NotEqual(t, string(old), string(fresh))

			// Right after the rotation and until just before expiry, the
			// receiver that knows only the old secret verifies.
			for _, wait := range []time.Duration{0, 12 * time.Hour, 12*time.Hour - time.Second} {
				b.clock.Advance(wait)
				req := next()
				require.NoError(t, verify(req, old), "after %s", wait)
				require.NoError(t, verify(req, fresh, old))
				require.ErrorIs(t, verify(req, fresh), convoy.ErrSignatureMismatch)
			}

			// Once the old secret expires, the new one signs.
			b.clock.Advance(time.Second)
			req := next()
			require.NoError(t, verify(req, fresh))
			require.ErrorIs(t, verify(req, old), convoy.ErrSignatureMismatch)
		})
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	b := setup(t, memory.New(), nil)
	secret := string(b.app.Secrets[0].Value)
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		require.NotContains(t, sprintf(format, b.app), secret)
		require.NotContains(t, sprintf(format, *b.app), secret)
	}
}

func sprintf(format string, v any) string { return fmt.Sprintf(format, v) }
