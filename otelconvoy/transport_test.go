package otelconvoy

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRedacted: what client spans record of a URL keeps its host and
// shape, not what may be a credential.
func TestRedacted(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://hooks.example/", "https://hooks.example/"},
		{"https://hooks.example", "https://hooks.example"},
		{"https://hooks.example:8443/webhooks/convoy", "https://hooks.example:8443/webhooks/convoy"},
		{"https://hooks.slack.example/services/T0000000/B0000000/a1B2c3D4e5F6g7H8i9J0k1L2",
			"https://hooks.slack.example/services/T0000000/B0000000/REDACTED"},
		{"https://h.example/in/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/x", "https://h.example/in/REDACTED/x"},
		{"https://h.example/cb?token=abc&id=7&flag", "https://h.example/cb?token=REDACTED&id=REDACTED&flag"},
		{"https://user:pass@h.example/p#frag", "https://h.example/p"},
		{"https://h.example/a%20b/c", "https://h.example/a%20b/c"},
		{"https://h.example/sig?AbCdEfGhIjKlMnOpQrStUvWx=1", "https://h.example/sig?REDACTED=REDACTED"},
	} {
		u, err := url.Parse(tc.in)
		require.NoError(t, err)
		require.Equal(t, tc.want, redacted(u).String(), tc.in)
	}
}
