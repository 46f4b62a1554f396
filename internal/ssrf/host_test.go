package ssrf

import (
	"net/netip"
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
