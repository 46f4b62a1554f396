package convoy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

func TestGeneratedSecretsAreRandomAndWellFormed(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		v, err := convoy.GenerateSecret()
		require.NoError(t, err)
		s := string(v)
		require.True(t, strings.HasPrefix(s, "whsec_"))
		require.Len(t, s, len("whsec_")+44, "32 bytes in base64")
		require.False(t, seen[s])
		seen[s] = true
	}
}

func TestSecretValueNeverPrints(t *testing.T) {
	t.Parallel()
	v, err := convoy.GenerateSecret()
	require.NoError(t, err)
	raw := string(v)
	app := convoy.App{Name: "a", Secrets: []convoy.Secret{{Value: v}}}
	var out []string
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		out = append(out, fmt.Sprintf(f, v), fmt.Sprintf(f, app), fmt.Sprintf(f, &app))
	}
	js, err := json.Marshal(app)
	require.NoError(t, err)
	out = append(out, string(js))
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		slog.New(h).Info("x", "secret", v, "app", app, "secrets", app.Secrets)
	}
	out = append(out, buf.String())
	for _, s := range out {
		require.NotContains(t, s, raw)
		require.NotContains(t, s, raw[len("whsec_"):])
	}
}

// TestSchemeSecretsMismatchIsRefused: a Standard Webhooks app or endpoint
// must sign with whsec_ secrets; anything else would fail every attempt.
func TestSchemeSecretsMismatchIsRefused(t *testing.T) {
	b := setup(t, memoryStore(), nil)
	ctx := context.Background()
	plain := []convoy.Secret{{Value: "a-plain-text-secret-0123456789"}}
	sw := convoy.Signing{Scheme: convoy.SchemeStandardWebhooks}
	_, err := b.d.CreateApp(ctx, convoy.App{Name: "a", Secrets: plain, Signing: sw})
	require.ErrorIs(t, err, convoy.ErrInvalidSecret)

	app, err := b.d.CreateApp(ctx, convoy.App{Name: "plain", Secrets: plain})
	require.NoError(t, err, "Convoy schemes take any secret")
	_, err = b.d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: "https://example.com/", Signing: sw})
	require.ErrorIs(t, err, convoy.ErrInvalidSecret, "the endpoint would sign with its app's plain secret")
	_, err = b.d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: "https://example.com/", Signing: sw, Secrets: plain})
	require.ErrorIs(t, err, convoy.ErrInvalidSecret)
	own, err := convoy.GenerateSecret()
	require.NoError(t, err)
	_, err = b.d.AddEndpoint(ctx, app.ID, convoy.Endpoint{URL: "https://example.com/", Signing: sw, Secrets: []convoy.Secret{{Value: own}}})
	require.NoError(t, err)
}

// TestAppChangesKeepItsEndpointsSigning: an endpoint that signs with its
// app's secrets or scheme keeps working through UpdateApp and
// RotateAppSecret; a change it could not sign with is refused.
func TestAppChangesKeepItsEndpointsSigning(t *testing.T) {
	b := setup(t, memoryStore(), nil)
	ctx := context.Background()
	plain := []convoy.Secret{{Value: "a-plain-text-secret-0123456789"}}
	sw := convoy.Signing{Scheme: convoy.SchemeStandardWebhooks}
	_, err := b.d.AddEndpoint(ctx, b.app.ID, convoy.Endpoint{URL: "https://example.com/", Signing: sw})
	require.NoError(t, err)

	_, err = b.d.UpdateApp(ctx, b.app.ID, convoy.AppUpdate{Secrets: &plain})
	require.ErrorIs(t, err, convoy.ErrInvalidSecret)
	fresh, err := convoy.GenerateSecret()
	require.NoError(t, err)
	_, err = b.d.UpdateApp(ctx, b.app.ID, convoy.AppUpdate{Secrets: &[]convoy.Secret{{Value: fresh}}})
	require.NoError(t, err, "a whsec_ secret serves the endpoint")
	_, err = b.d.RotateAppSecret(ctx, b.app.ID, "", time.Hour)
	require.NoError(t, err, "a generated secret serves every scheme")

	// An endpoint with a plain secret of its own and no scheme of its own
	// follows the app's scheme: the app cannot switch to Standard Webhooks.
	other, err := b.d.CreateApp(ctx, convoy.App{Name: "other", Secrets: plain})
	require.NoError(t, err)
	_, err = b.d.AddEndpoint(ctx, other.ID, convoy.Endpoint{URL: "https://example.com/", Secrets: plain})
	require.NoError(t, err)
	ownSW, err := convoy.GenerateSecret()
	require.NoError(t, err)
	_, err = b.d.UpdateApp(ctx, other.ID, convoy.AppUpdate{Signing: &sw, Secrets: &[]convoy.Secret{{Value: ownSW}}})
	require.ErrorIs(t, err, convoy.ErrInvalidSecret)
	got, err := b.d.GetApp(ctx, other.ID)
	require.NoError(t, err)
	require.Equal(t, convoy.Scheme(""), got.Signing.Scheme, "refused, the change stored nothing")
}

// TestAppSecretsServeAnEndpointWhoseOwnExpired: an endpoint whose own
// secrets have all expired signs with its app's again, so the app's
// secrets must suit its scheme as they would with none of its own.
func TestAppSecretsServeAnEndpointWhoseOwnExpired(t *testing.T) {
	b := setup(t, memoryStore(), nil)
	ctx := context.Background()
	own, err := convoy.GenerateSecret()
	require.NoError(t, err)
	sw := convoy.Signing{Scheme: convoy.SchemeStandardWebhooks}
	_, err = b.d.AddEndpoint(ctx, b.app.ID, convoy.Endpoint{
		URL: "https://example.com/", Signing: sw,
		Secrets: []convoy.Secret{{Value: own, ExpiresAt: b.clock.Now().Add(time.Hour)}},
	})
	require.NoError(t, err)
	plain := []convoy.Secret{{Value: "a-plain-text-secret-0123456789"}}
	b.clock.Advance(2 * time.Hour)
	_, err = b.d.UpdateApp(ctx, b.app.ID, convoy.AppUpdate{Secrets: &plain})
	require.ErrorIs(t, err, convoy.ErrInvalidSecret)
}
