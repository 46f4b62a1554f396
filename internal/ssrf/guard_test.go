package ssrf

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCheckAllowsPublicAddresses(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"93.184.216.34", "8.8.8.8", "1.1.1.1", "1.0.0.0", "223.255.255.255",
		// Just outside the refused ranges.
		"9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0",
		"126.255.255.255", "128.0.0.0", "169.253.255.255", "169.255.0.0",
		"172.15.255.255", "172.32.0.0", "192.0.1.255", "192.0.3.0",
		"192.167.255.255", "192.169.0.0", "198.17.255.255", "198.20.0.0",
		"198.51.99.255", "203.0.112.255", "223.255.255.254",
		"2606:4700::1", "2a00:1450:4001:82b::200e", "2001:4860:4860::8888",
		"2001:1::1", "2001:db7:ffff::1", "2001:db9::1", "2003::1", "3ffe::1",
		// IPv6 forms of public IPv4 addresses.
		"::ffff:93.184.216.34", "64:ff9b::5db8:d822", "64:ff9b:1::5db8:d822", "2002:5db8:d822::1",
	} {
		t.Run(s, func(t *testing.T) {
			t.Parallel()
			a := netip.MustParseAddr(s)
			require.NoError(t, New(nil).Check(a))
			var nilGuard *Guard
			require.NoError(t, nilGuard.Check(a))
			require.NoError(t, nilGuard.CheckHost(s))
		})
	}
}

func TestCheckNamesTheRange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr, prefix, reason string
	}{
		{"10.0.0.1", "10.0.0.0/8", "private"},
		{"169.254.169.254", "169.254.0.0/16", "link-local"},
		{"255.255.255.255", "255.255.255.255/32", "broadcast"},
		{"255.255.255.254", "240.0.0.0/4", "reserved"},
		{"fe80::1%eth0", "fe80::/10", "link-local"},
		{"::ffff:10.0.0.1", "10.0.0.0/8", "the IPv4-mapped form of 10.0.0.1, which is private"},
		{"64:ff9b::a9fe:a9fe", "169.254.0.0/16", "the NAT64 form of 169.254.169.254, which is link-local"},
		{"2002:7f00:1::", "127.0.0.0/8", "the 6to4 form of 127.0.0.1, which is loopback"},
		{"::2", "0.0.0.0/8", "the IPv4-compatible form of 0.0.0.2, which is unspecified"},
		{"6000::1", "2000::/3", "reserved (outside global unicast 2000::/3)"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			t.Parallel()
			a := netip.MustParseAddr(tc.addr)
			err := New(nil).Check(a)
			var be *BlockedError
			require.ErrorAs(t, err, &be)
			require.ErrorIs(t, err, ErrBlocked)
			require.Equal(t, a, be.Addr)
			require.Equal(t, netip.MustParsePrefix(tc.prefix), be.Range)
			require.Equal(t, tc.reason, be.Reason)
		})
	}
}

// TestBlockedErrorMessage pins the message format callers show to users.
func TestBlockedErrorMessage(t *testing.T) {
	t.Parallel()
	g := New(nil)
	require.Equal(t, "convoy: blocked address: 169.254.169.254 is link-local",
		g.Check(netip.MustParseAddr("169.254.169.254")).Error())
	require.Equal(t, "convoy: blocked address: 0x7f.1 (127.0.0.1) is loopback",
		g.CheckHost("0x7f.1").Error())
	require.Equal(t, "convoy: blocked address: localhost is a loopback name",
		g.CheckHost("localhost").Error())

	res := newFakeResolver(map[string][]string{"internal.example": {"10.0.0.1", "169.254.169.254"}})
	_, err := (&Dialer{Resolver: res}).DialContext(context.Background(), "tcp", "internal.example:80")
	require.Equal(t, "convoy: blocked address: internal.example resolves only to blocked addresses: "+
		"10.0.0.1 is private; 169.254.169.254 is link-local", err.Error())
}

func TestCheckRefusesInvalidAddress(t *testing.T) {
	t.Parallel()
	require.ErrorIs(t, New(nil).Check(netip.Addr{}), ErrBlocked)
	all := New(prefixes(t, "0.0.0.0/0", "::/0"))
	require.ErrorIs(t, all.Check(netip.Addr{}), ErrBlocked)
}

// TestCheckIPv4FormsAgree checks that an IPv4 address and its IPv4-mapped,
// IPv4-compatible, NAT64 and 6to4 forms get the same answer under the same
// allow-list.
func TestCheckIPv4FormsAgree(t *testing.T) {
	t.Parallel()
	var addrs []netip.Addr
	for _, r := range ipv4Ranges {
		first := r.prefix.Addr()
		addrs = append(addrs, first, first.Prev(), lastAddr(r.prefix), lastAddr(r.prefix).Next())
	}
	addrs = append(addrs, parseAddrs("93.184.216.34", "8.8.8.8")...)

	guards := map[string]*Guard{
		"default":         New(nil),
		"127.0.0.1/32":    New(prefixes(t, "127.0.0.1/32")),
		"10/8 and 100.64": New(prefixes(t, "10.0.0.0/8", "100.64.0.0/10")),
		"all IPv4":        New(prefixes(t, "0.0.0.0/0")),
	}
	for name, g := range guards {
		for _, v4 := range addrs {
			if !v4.IsValid() || !v4.Is4() {
				continue
			}
			b := v4.As4()
			want := g.Check(v4) == nil
			forms := map[string]netip.Addr{
				"mapped":     netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}),
				"NAT64":      netip.AddrFrom16([16]byte{1: 0x64, 2: 0xff, 3: 0x9b, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}),
				"6to4":       netip.AddrFrom16([16]byte{0: 0x20, 1: 0x02, 2: b[0], 3: b[1], 4: b[2], 5: b[3], 15: 1}),
				"compatible": netip.AddrFrom16([16]byte{12: b[0], 13: b[1], 14: b[2], 15: b[3]}),
			}
			for form, a := range forms {
				if form == "compatible" && (v4 == netip.IPv4Unspecified() || v4 == netip.AddrFrom4([4]byte{0, 0, 0, 1})) {
					continue // :: and ::1 are IPv6's own unspecified and loopback
				}
				got := g.Check(a)
				require.Equal(t, want, got == nil, "guard %s: %s and its %s form %s: %v", name, v4, form, a, got)
				if got != nil {
					require.ErrorIs(t, got, ErrBlocked)
				}
			}
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func TestNewNormalizesAllowList(t *testing.T) {
	t.Parallel()
	g := New([]netip.Prefix{
		netip.MustParsePrefix("::ffff:127.0.0.1/128"), // the IPv4-mapped spelling of 127.0.0.1/32
		netip.MustParsePrefix("10.1.2.3/8"),           // host bits set
		{},                                            // invalid: ignored
	})
	require.NoError(t, g.Check(netip.MustParseAddr("127.0.0.1")))
	require.NoError(t, g.Check(netip.MustParseAddr("::ffff:127.0.0.1")))
	require.NoError(t, g.Check(netip.MustParseAddr("10.200.0.1")))
	require.ErrorIs(t, g.Check(netip.MustParseAddr("127.0.0.2")), ErrBlocked)
	require.ErrorIs(t, g.Check(netip.MustParseAddr("192.168.0.1")), ErrBlocked)
}

func TestAllowListIsPrecise(t *testing.T) {
	t.Parallel()
	g := New(prefixes(t, "127.0.0.1/32", "fd00:1::/32"))
	for _, s := range []string{"127.0.0.1", "::ffff:127.0.0.1", "::127.0.0.1", "64:ff9b::7f00:1", "fd00:1::5"} {
		require.NoError(t, g.Check(netip.MustParseAddr(s)), s)
	}
	for _, s := range []string{"127.0.0.2", "::1", "10.0.0.1", "::ffff:127.0.0.2", "fd00:2::1", "169.254.169.254"} {
		require.ErrorIs(t, g.Check(netip.MustParseAddr(s)), ErrBlocked, s)
	}
	// The allow-list does not reach through a range refused as a whole.
	require.ErrorIs(t, New(prefixes(t, "127.0.0.0/8")).Check(netip.MustParseAddr("2001::7f00:1")), ErrBlocked)
}

func TestLocalUseNAT64ChecksEveryLayout(t *testing.T) {
	t.Parallel()
	g := New(nil)
	// /64 layout carrying 10.0.0.1 (bytes 9-12), reserved octet and suffix zero.
	require.ErrorIs(t, g.Check(netip.MustParseAddr("64:ff9b:1:ffff:a:0:100::")), ErrBlocked)
	// /56 layout carrying 169.254.169.254 (bytes 7, 9-11).
	require.ErrorIs(t, g.Check(netip.MustParseAddr("64:ff9b:1:a9:fe:a9fe::")), ErrBlocked)
	// A public address under /96 whose other readings do not fit.
	require.NoError(t, g.Check(netip.MustParseAddr("64:ff9b:1:ffff:ffff:ffff:5db8:d822")))
}

func TestGuardControl(t *testing.T) {
	t.Parallel()
	g := New(nil)
	require.ErrorIs(t, g.Control("tcp4", "10.0.0.1:80", nil), ErrBlocked)
	require.ErrorIs(t, g.Control("tcp6", "[::ffff:169.254.169.254]:80", nil), ErrBlocked)
	require.ErrorIs(t, g.Control("tcp6", "[fe80::1%eth0]:443", nil), ErrBlocked)
	require.ErrorIs(t, g.Control("tcp", "not an address", nil), ErrBlocked)
	require.NoError(t, g.Control("tcp4", "93.184.216.34:443", nil))
}

// TestGuardControlOnPlainDialer shows Control refusing a real socket before
// it connects: the server never sees a connection.
func TestGuardControlOnPlainDialer(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, nil)
	srv.Start()
	addr := srv.Listener.Addr().String()

	blocked := &net.Dialer{Timeout: 5 * time.Second, Control: New(nil).Control}
	_, err := blocked.DialContext(context.Background(), "tcp", addr)
	require.ErrorIs(t, err, ErrBlocked)

	allowed := &net.Dialer{Timeout: 5 * time.Second, Control: New(prefixes(t, "127.0.0.1/32")).Control}
	conn, err := allowed.DialContext(context.Background(), "tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.Equal(t, 200, httpGet(t, conn))
	require.Equal(t, int64(1), srv.conns.Load(), "only the allowed dial reached the server")
}
