package convoy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

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
