package convoy_test

import (
	"bytes"
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
