package convoy_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/store/memory"
)

// TestAddEndpointRefusesUnicodeHostSpellings: hosts that a browser's URL
// parser maps to a blocked address or a local name are refused at
// AddEndpoint, with ErrInvalidURL and ErrBlockedAddress; hosts that no
// parser maps to a host are refused with ErrInvalidURL; international
// names are accepted.
func TestAddEndpointRefusesUnicodeHostSpellings(t *testing.T) {
	t.Parallel()
	b := setup(t, memory.New(), func(c *convoy.Config) { c.AllowNetworks = nil })
	ctx := context.Background()
	add := func(url string) error {
		_, err := b.d.AddEndpoint(ctx, b.app.ID, convoy.Endpoint{URL: url})
		return err
	}
	for _, url := range []string{
		"http://①②⑦.⓪.⓪.①/",
		"http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/",
		"http://⑯⑨.②⑤④.⑯⑨.②⑤④/latest/meta-data/",
		"http://127.0.0.\u200b1/",
		"http://loc\u00adalhost:8080/",
		"http://lo\u200bcalhost/",
		"http://①⓪.⓪.⓪.①/",
		"https://①②⑦。⓪。⓪。①/",
		"http://%E2%91%A0%E2%91%A1%E2%91%A6.0.0.1/", // ①②⑦ percent-encoded
	} {
		err := add(url)
		require.ErrorIs(t, err, convoy.ErrInvalidURL, url)
		require.ErrorIs(t, err, convoy.ErrBlockedAddress, url)
		require.ErrorIs(t, err, convoy.ErrInvalid, url)
	}
	for _, url := range []string{
		"http://a\u200cb.example/",    // joiner out of context
		"http://\ufffd.example/",      // disallowed
		"http://xn--zz-.example/",     // punycode that decodes to ASCII
		"http://xn--a.example/",       // undecodable punycode
		"http://\u200b/",              // nothing left once mapped
		"http://example.123/",         // ends in a number, not IPv4
		"http://1.2.3.4.5/",           // five parts
		"http://a..example/",          // empty label
		"http://a%3Cb.example/",       // '<' in the host
		"http://\u05d0a.example/hook", // breaks the Bidi rule
	} {
		err := add(url)
		require.ErrorIs(t, err, convoy.ErrInvalidURL, url)
		require.NotErrorIs(t, err, convoy.ErrBlockedAddress, url)
	}
	for _, url := range []string{
		"https://bücher.example/",
		"https://xn--bcher-kva.example/",
		"https://BÜCHER.example/hooks?x=1",
		"https://例え.テスト/",
		"https://exam\u00adple.com/",
		"https://my_service.example/",
		"https://ｅｘａｍｐｌｅ.com/",
		"https://93.184.216.34/",
		"https://[2606:4700::1]:8443/",
	} {
		require.NoError(t, add(url), url)
	}
}

// TestAddEndpointWithManyNumericLabels: a host of more than four numeric
// labels is refused as an invalid host (it once panicked the check).
func TestAddEndpointWithManyNumericLabels(t *testing.T) {
	b := setup(t, memory.New(), nil)
	for _, u := range []string{"http://0.0.0.0.0.0/", "http://1.2.3.4.5/", "https://example.1.2.3.4.5/"} {
		_, err := b.d.AddEndpoint(context.Background(), b.app.ID, convoy.Endpoint{URL: u})
		require.ErrorIs(t, err, convoy.ErrInvalidURL, u)
	}
}
