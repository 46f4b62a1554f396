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

func TestSecretsNeverPrinted(t *testing.T) {
	b := setup(t, memory.New(), nil)
	secret := string(b.app.Secrets[0].Value)
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		require.NotContains(t, sprintf(format, b.app), secret)
		require.NotContains(t, sprintf(format, *b.app), secret)
	}
}

func sprintf(format string, v any) string { return fmt.Sprintf(format, v) }
