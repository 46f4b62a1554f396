package convoyui

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
)

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://acme.example/hooks", "https://acme.example/hooks"},
		{"https://acme.example:8443/v1/hooks/", "https://acme.example:8443/v1/hooks/"},
		{"https://acme.example/hooks?token=abc&tenant=acme", "https://acme.example/hooks?token=[REDACTED]&tenant=[REDACTED]"},
		{"https://acme.example/hooks?flag", "https://acme.example/hooks?flag"},
		{"https://user:pass@acme.example/", "https://[REDACTED]@acme.example/"},
		{"https://acme.example/hooks/invoice-notifications/", "https://acme.example/hooks/invoice-notifications/"},
		{"https://hooks.slack.com/services/T0000AAAA/B0000BBBB/AbCdEfGhIjKlMnOpQrStUvWx",
			"https://hooks.slack.com/services/T0000AAAA/B0000BBBB/[REDACTED]"},
		{"https://discord.com/api/webhooks/123456789012345678/abcDEF123ghiJKL456mnoPQR789stuVWX",
			"https://discord.com/api/webhooks/123456789012345678/[REDACTED]"},
		{"https://acme.example/h/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/x", "https://acme.example/h/[REDACTED]/x"},
		{"https://acme.example/a%2Fb0123456789abcdef/x", "https://acme.example/[REDACTED]/x"},
		{"https://acme.example/?0123456789abcdefTOKEN", "https://acme.example/?[REDACTED]"},
		{"not a url", "(unparsable URL, hidden)"},
		{"mailto:someone@example.com", "(unparsable URL, hidden)"},
		{"https://acme.example/%zz", "(unparsable URL, hidden)"},
	} {
		require.Equal(t, tc.want, redactURL(tc.in), tc.in)
	}
}

func TestRequestHeadersHideCustomValues(t *testing.T) {
	h := http.Header{
		"Authorization":        {"Bearer secret-token"},
		"X-Tenant":             {"acme"},
		"Proxy-Authorization":  {"Basic abc"},
		"X-Convoy-Signature":   {"t=1,v1=ab"},
		"X-Acme-Sig":           {"deadbeef"},
		"Content-Type":         {"application/json"},
		"X-Convoy-Delivery-Id": {"0190"},
	}
	got := map[string]string{}
	for _, l := range requestHeaders(h, "X-Acme-Sig") {
		got[l.Name] = l.Value
	}
	require.Equal(t, map[string]string{
		"Authorization": "[REDACTED]", "X-Tenant": "[REDACTED]", "Proxy-Authorization": "[REDACTED]",
		"X-Convoy-Signature": "t=1,v1=ab", "X-Acme-Sig": "deadbeef", "Content-Type": "application/json",
		"X-Convoy-Delivery-Id": "0190",
	}, got)
}

func TestResponseHeadersHideCredentials(t *testing.T) {
	h := http.Header{
		"Set-Cookie":   {"a=1", "b=2"},
		"X-Api-Key":    {"k"},
		"X-Auth-Token": {"t"},
		"Content-Type": {"text/plain"},
		"Retry-After":  {"5"},
	}
	lines := responseHeaders(h)
	require.Len(t, lines, 6)
	for _, l := range lines {
		hidden := l.Name == "Set-Cookie" || strings.HasPrefix(l.Name, "X-")
		require.Equal(t, hidden, l.Hidden, l.Name)
		if hidden {
			require.Equal(t, "[REDACTED]", l.Value)
		}
	}
	require.Equal(t, "Content-Type", lines[0].Name, "sorted by name")
}

func TestFingerprint(t *testing.T) {
	a, b := convoy.SecretValue("whsec_one"), convoy.SecretValue("whsec_two")
	require.Len(t, fingerprint(a), 8)
	require.Equal(t, fingerprint(a), fingerprint(a))
	require.NotEqual(t, fingerprint(a), fingerprint(b))
	require.NotContains(t, fingerprint(a), "one")
}
