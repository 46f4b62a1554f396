package ssrf

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzCheckHost checks that CheckHost never panics, only ever refuses with
// ErrBlocked, refuses every host that netip.ParseAddr reads as a blocked
// address (bracketed or not), and refuses nothing when everything is
// allowed. It also checks that ASCIIHost only ever fails with
// ErrInvalidHost, returns a fixed point of itself, and that CheckHost
// refuses every host whose ASCII form it refuses: no spelling of a blocked
// host gets through. Seeds live in testdata/fuzz/FuzzCheckHost.
func FuzzCheckHost(f *testing.F) {
	f.Add("0x7f000001")
	f.Add("[::1]")
	f.Add("017700000001")
	f.Add("①②⑦.⓪.⓪.①")
	f.Add("ⓛⓞⓒⓐⓛⓗⓞⓢⓣ")
	f.Add("lo\u200bcalhost")
	f.Add("bücher.example")

	def := New(nil)
	all := New([]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")})
	f.Fuzz(func(t *testing.T, host string) {
		err := def.CheckHost(host)
		if err != nil {
			require.ErrorIs(t, err, ErrBlocked)
		}
		inner := host
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") && len(host) >= 2 {
			inner = host[1 : len(host)-1]
		}
		if a, perr := netip.ParseAddr(inner); perr == nil && def.Check(a) != nil {
			require.ErrorIs(t, err, ErrBlocked, "%q parses as blocked %s", host, a)
		}
		for _, a := range parseLegacyIPv4(host) {
			if def.Check(a) != nil {
				require.ErrorIs(t, err, ErrBlocked, "%q reads as blocked %s", host, a)
			}
		}
		require.NoError(t, all.CheckHost(host))

		ascii, aerr := ASCIIHost(host)
		if aerr != nil {
			require.ErrorIs(t, aerr, ErrInvalidHost)
			return
		}
		require.True(t, isASCII(ascii), "%q maps to %q", host, ascii)
		again, aerr := ASCIIHost(ascii)
		require.NoError(t, aerr, "%q maps to %q", host, ascii)
		require.Equal(t, ascii, again, "%q", host)
		if def.CheckHost(ascii) != nil {
			require.ErrorIs(t, err, ErrBlocked, "%q maps to blocked %q", host, ascii)
		}
	})
}
