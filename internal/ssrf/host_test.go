package ssrf

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseLegacyIPv4(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"127.0.0.1", []string{"127.0.0.1"}},
		{"2130706433", []string{"127.0.0.1"}},
		{"0x7f000001", []string{"127.0.0.1"}},
		{"0X7F000001", []string{"127.0.0.1"}},
		{"0x7f.0.0.1", []string{"127.0.0.1"}},
		{"0x7f.0x0.0x0.0x1", []string{"127.0.0.1"}},
		{"0177.0.0.1", []string{"127.0.0.1", "177.0.0.1"}},
		{"017700000001", []string{"127.0.0.1"}}, // read as decimal it overflows
		{"127.1", []string{"127.0.0.1"}},
		{"127.0.1", []string{"127.0.0.1"}},
		{"10.1", []string{"10.0.0.1"}},
		{"169.254.43518", []string{"169.254.169.254"}},
		{"127.0.0.1.", []string{"127.0.0.1"}},
		{"010.0.0.1", []string{"8.0.0.1", "10.0.0.1"}},
		{"09.0.0.1", []string{"9.0.0.1"}},
		{"0x", []string{"0.0.0.0"}},
		{"0", []string{"0.0.0.0"}},
		{"4294967295", []string{"255.255.255.255"}},
		{"4294967296", nil},
		{"256.0.0.1", nil},
		{"1.2.3.4.5", nil},
		{"1..2", nil},
		{".1.2", nil},
		{"1.2.3.4..", nil},
		{"", nil},
		{"example.com", nil},
		{"0x1g", nil},
		{"1.2.65536", nil},
		{"99999999999999999999999", nil},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			var want []netip.Addr
			if tc.want != nil {
				want = parseAddrs(tc.want...)
			}
			require.Equal(t, want, parseLegacyIPv4(tc.in))
		})
	}
}

func TestCheckHostPassesNamesAndPublicLiterals(t *testing.T) {
	t.Parallel()
	g := New(nil)
	for _, host := range []string{
		"example.com", "hooks.example.com.", "93.184.216.34", "[2606:4700::1]", "2606:4700::1",
		"1.1", "0x5db8d822", "1572395042", // 93.184.216.34 spelled as integers
		"10.0.0.1.nip.io", "localhost.example.com", "mylocalhost", "localhostx",
		"xn--nxasmq6b.example", "ｅｘａｍｐｌｅ.com",
	} {
		require.NoError(t, g.CheckHost(host), host)
	}
}

func TestCheckHostRefusesOddSpellings(t *testing.T) {
	t.Parallel()
	g := New(nil)
	for _, host := range []string{
		"", "[::1]", "[127.0.0.1]", "127.0.0.1 extra", "127.0.0.1\tx", "０ｘ７ｆ.１",
		"[fe80::1%25eth0]", "fe80::1%eth0", "ＬＯＣＡＬＨＯＳＴ", "localhost.localdomain",
		"ip6-loopback", "𝟏𝟐𝟕.𝟎.𝟎.𝟏",
		// host:port passed where a host was expected.
		"127.0.0.1:8080", "[::1]:443", ":80", "localhost:80", "0x7f.1:80",
	} {
		err := g.CheckHost(host)
		require.ErrorIs(t, err, ErrBlocked, "%q", host)
		var be *BlockedError
		require.ErrorAs(t, err, &be)
	}
}

func TestCheckHostLocalNamesFollowLoopback(t *testing.T) {
	t.Parallel()
	for _, allow := range [][]string{{"127.0.0.1/32"}, {"::1/128"}, {"127.0.0.0/8"}} {
		g := New(prefixes(t, allow...))
		require.NoError(t, g.CheckHost("localhost"), allow)
		require.NoError(t, g.CheckHost("a.b.localhost."), allow)
	}
	g := New(prefixes(t, "127.0.0.2/32", "10.0.0.0/8"))
	require.ErrorIs(t, g.CheckHost("localhost"), ErrBlocked)
}

// TestCheckHostRefusesUnicodeSpellings: hosts that a browser's URL parser
// (UTS #46 mapping) turns into a blocked literal or a local name are
// refused as that address or name, naming the host as given.
func TestCheckHostRefusesUnicodeSpellings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		host string
		addr string // "" for a local name
	}{
		{"①②⑦.⓪.⓪.①", "127.0.0.1"},
		{"①②⑦。⓪。⓪。①", "127.0.0.1"},
		{"⑯⑨.②⑤④.⑯⑨.②⑤④", "169.254.169.254"},
		{"①⓪.⓪.⓪.①", "10.0.0.1"},
		{"⓪ⓧ⑦ⓕ.①", "127.0.0.1"},
		{"127.0.0.\u200b1", "127.0.0.1"}, // zero-width space
		{"127.0.0\u00ad.1", "127.0.0.1"}, // soft hyphen
		{"127.0.0.1\ufe0f", "127.0.0.1"}, // variation selector
		{"ⓛⓞⓒⓐⓛⓗⓞⓢⓣ", ""},
		{"lo\u200bcalhost", ""},
		{"loc\u00adalhost", ""},
		{"localhost\u3002", ""},
		{"ⓐ.ⓛⓞⓒⓐⓛⓗⓞⓢⓣ", ""},
		{"ⅰp6-ⓛⓞⓞⓟⓑⓐⓒⓚ", ""},
	} {
		t.Run(tc.host, func(t *testing.T) {
			t.Parallel()
			err := New(nil).CheckHost(tc.host)
			require.ErrorIs(t, err, ErrBlocked)
			var be *BlockedError
			require.ErrorAs(t, err, &be)
			require.Equal(t, tc.host, be.Host)
			if tc.addr != "" {
				require.Equal(t, netip.MustParseAddr(tc.addr), be.Addr)
			} else {
				require.False(t, be.Addr.IsValid())
			}
			// Allowing what it maps to lets it through.
			allowed := New(prefixes(t, "0.0.0.0/0", "::1/128"))
			require.NoError(t, allowed.CheckHost(tc.host))
		})
	}
}

func TestASCIIHost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"example.com", "example.com"},
		{"EXAMPLE.com.", "example.com."},
		{"bücher.example", "xn--bcher-kva.example"},
		{"BÜCHER.example", "xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"XN--BCHER-KVA.example", "xn--bcher-kva.example"},
		{"faß.de", "xn--fa-hia.de"}, // non-transitional: ß stays
		{"ｅｘａｍｐｌｅ.com", "example.com"},
		{"exam\u00adple.com", "example.com"},
		{"例え.テスト", "xn--r8jz45g.xn--zckzah"},
		{"my_service.internal", "my_service.internal"},
		{"r3---sn-apo3qvuoxuxbt-j5pe.googlevideo.com", "r3---sn-apo3qvuoxuxbt-j5pe.googlevideo.com"},
		{"a-.example", "a-.example"},
		{"①②⑦.⓪.⓪.①", "127.0.0.1"},
		{"ⓛⓞⓒⓐⓛⓗⓞⓢⓣ", "localhost"},
		{"1572395042", "1572395042"},
		{"0x7f.1", "0x7f.1"},
		{"93.184.216.34", "93.184.216.34"},
		{"::1", "::1"},
		{"2606:4700::1", "2606:4700::1"},
		{"fe80::1%eth0", "fe80::1%eth0"},
		{strings.Repeat("a", 63) + ".example", strings.Repeat("a", 63) + ".example"},
	} {
		got, err := ASCIIHost(tc.in)
		require.NoError(t, err, "%q", tc.in)
		require.Equal(t, tc.want, got, "%q", tc.in)
	}
}

func TestASCIIHostRefusesWhatIsNotAHost(t *testing.T) {
	t.Parallel()
	for _, host := range []string{
		"",
		"\u200b", "\u00ad", // nothing left once mapped
		"a\u200cb.example",           // ZWNJ out of context (CheckJoiners)
		"\u05d0a.example",            // right-to-left and left-to-right mixed (Bidi rule)
		"\ufffd.example", "a\u2028b", // disallowed
		"⒈⒉⒊⒋",                     // disallowed (maps to a dot)
		"xn--u-ccb.example",        // punycode of an invalid label
		"xn--a.example",            // undecodable punycode
		"xn--zz-.example",          // punycode decoding to ASCII
		"xn--.example", "a.xn--.b", // empty punycode
		"ex ample.com", "a<b.example", "a%b.example", "a\tb", "a*b.example", "a!b.example",
		"a..b", ".example", "example..", "..",
		strings.Repeat("a", 64) + ".example",
		strings.Repeat("abcdefghi.", 26) + "com",
		"1.2.3.4.5", "256.0.0.1", "example.123", "example.0x7f", "09.0.0.1",
		"::g", "[::1]", "1::2::3", "fe80::1%",
	} {
		_, err := ASCIIHost(host)
		require.ErrorIs(t, err, ErrInvalidHost, "%q", host)
		require.NotErrorIs(t, err, ErrBlocked, "%q", host)
	}
}
