package ssrf

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hostileCase is a webhook URL an attacker might register.
type hostileCase struct {
	name string
	url  string
	// dns marks a DNS name: CheckHost passes it and only the dial refuses
	// it. Otherwise the host is a literal or a local name that CheckHost
	// refuses without any lookup.
	dns bool
	// answers are what the test resolver returns for the host, one per
	// lookup (the last repeats). For a non-canonical literal they are what
	// libc would make of it, used only once the host is allowed.
	answers [][]string
	// dials is how many times the host is dialed (default 1); a rebinding
	// resolver answers differently each time.
	dials int
	// allow is the allow-list that lets the case through.
	allow []string
	// partial marks a name that resolves to public addresses too: by
	// default its private addresses are skipped, not the whole dial.
	partial bool
	// seesDefault lists the addresses the connect-time hook sees by
	// default (only public ones, for partial cases).
	seesDefault []string
	// sees lists the addresses the connect-time hook sees, in order, once
	// allow is on the allow-list. Off loopback the test's hook refuses
	// them, so no packet leaves the machine.
	sees []string
	// connect means that, once allowed, the last dial reaches the loopback
	// test server and an HTTP request over it gets an answer.
	connect bool
}

var hostileCases = []hostileCase{
	// IPv4 loopback in every spelling.
	{name: "loopback", url: "http://127.0.0.1/", allow: []string{"127.0.0.1/32"}, sees: []string{"127.0.0.1"}, connect: true},
	{name: "loopback top of range", url: "http://127.255.255.254/admin", allow: []string{"127.0.0.0/8"}, sees: []string{"127.255.255.254"}},
	{name: "loopback decimal integer", url: "http://2130706433/", answers: [][]string{{"127.0.0.1"}}, allow: []string{"127.0.0.1/32"}, sees: []string{"127.0.0.1"}, connect: true},
	{name: "loopback hex integer", url: "http://0x7f000001/", answers: [][]string{{"127.0.0.1"}}, allow: []string{"127.0.0.1/32"}, sees: []string{"127.0.0.1"}, connect: true},
	{name: "loopback hex first octet", url: "http://0x7f.0.0.1/", answers: [][]string{{"127.0.0.1"}}, allow: []string{"127.0.0.1/32"}, sees: []string{"127.0.0.1"}, connect: true},
	{name: "loopback octal octets", url: "http://0177.0.0.1/", answers: [][]string{{"127.0.0.1"}}, allow: []string{"127.0.0.1/32"}, sees: []string{"127.0.0.1"}, connect: true},
	{name: "loopback octal integer", url: "http://017700000001/", answers: [][]string{{"127.0.0.1"}}, allow: []string{"127.0.0.1/32"}, sees: []string{"127.0.0.1"}, connect: true},
	{name: "loopback short form", url: "http://127.1/", answers: [][]string{{"127.0.0.1"}}, allow: []string{"127.0.0.1/32"}, sees: []string{"127.0.0.1"}, connect: true},
	{name: "loopback hex short form", url: "http://0X7F.1/", answers: [][]string{{"127.0.0.1"}}, allow: []string{"127.0.0.1/32"}, sees: []string{"127.0.0.1"}, connect: true},
	{name: "loopback trailing dot", url: "http://127.0.0.1./", answers: [][]string{{"127.0.0.1"}}, allow: []string{"127.0.0.1/32"}, sees: []string{"127.0.0.1"}, connect: true},
	{name: "loopback full-width digits", url: "http://１２７.０.０.１/", answers: [][]string{{"127.0.0.1"}}, allow: []string{"127.0.0.1/32"}, sees: []string{"127.0.0.1"}, connect: true},
	{name: "loopback ideographic full stops", url: "http://127。0。0。1/", answers: [][]string{{"127.0.0.1"}}, allow: []string{"127.0.0.1/32"}, sees: []string{"127.0.0.1"}, connect: true},

	// Private, link-local (cloud metadata) and CGNAT.
	{name: "private 10/8", url: "http://10.0.0.1/", allow: []string{"10.0.0.0/8"}, sees: []string{"10.0.0.1"}},
	{name: "private 10/8 short form", url: "http://10.1/", answers: [][]string{{"10.0.0.1"}}, allow: []string{"10.0.0.0/8"}, sees: []string{"10.0.0.1"}},
	{name: "private 10/8 decimal integer", url: "http://167772161/", answers: [][]string{{"10.0.0.1"}}, allow: []string{"10.0.0.0/8"}, sees: []string{"10.0.0.1"}},
	{name: "private 10/8 octal octet", url: "http://012.0.0.1/", answers: [][]string{{"10.0.0.1"}}, allow: []string{"10.0.0.0/8"}, sees: []string{"10.0.0.1"}},
	{name: "private 10/8 leading zero read as decimal", url: "http://010.0.0.1/", answers: [][]string{{"8.0.0.1"}}, allow: []string{"10.0.0.0/8"}, sees: []string{"8.0.0.1"}},
	{name: "private 172.16/12", url: "http://172.16.0.1/", allow: []string{"172.16.0.0/12"}, sees: []string{"172.16.0.1"}},
	{name: "private 172.16/12 top", url: "http://172.31.255.255/", allow: []string{"172.16.0.0/12"}, sees: []string{"172.31.255.255"}},
	{name: "private 192.168/16", url: "http://192.168.1.1/", allow: []string{"192.168.0.0/16"}, sees: []string{"192.168.1.1"}},
	{name: "private 192.168/16 hex integer", url: "http://0xc0a80101/", answers: [][]string{{"192.168.1.1"}}, allow: []string{"192.168.0.0/16"}, sees: []string{"192.168.1.1"}},
	{name: "metadata", url: "http://169.254.169.254/latest/meta-data/", allow: []string{"169.254.0.0/16"}, sees: []string{"169.254.169.254"}},
	{name: "metadata decimal integer", url: "http://2852039166/", answers: [][]string{{"169.254.169.254"}}, allow: []string{"169.254.0.0/16"}, sees: []string{"169.254.169.254"}},
	{name: "metadata hex integer", url: "http://0xa9fea9fe/", answers: [][]string{{"169.254.169.254"}}, allow: []string{"169.254.0.0/16"}, sees: []string{"169.254.169.254"}},
	{name: "metadata octal octets", url: "http://0251.0376.0251.0376/", answers: [][]string{{"169.254.169.254"}}, allow: []string{"169.254.0.0/16"}, sees: []string{"169.254.169.254"}},
	{name: "metadata short form", url: "http://169.254.43518/", answers: [][]string{{"169.254.169.254"}}, allow: []string{"169.254.0.0/16"}, sees: []string{"169.254.169.254"}},
	{name: "CGNAT", url: "http://100.64.0.1/", allow: []string{"100.64.0.0/10"}, sees: []string{"100.64.0.1"}},
	{name: "CGNAT top", url: "http://100.127.255.254/", allow: []string{"100.64.0.0/10"}, sees: []string{"100.127.255.254"}},

	// Other special IPv4 ranges.
	{name: "unspecified", url: "http://0.0.0.0/", allow: []string{"0.0.0.0/8"}, sees: []string{"0.0.0.0"}},
	{name: "unspecified single zero", url: "http://0/", answers: [][]string{{"0.0.0.0"}}, allow: []string{"0.0.0.0/8"}, sees: []string{"0.0.0.0"}},
	{name: "this network", url: "http://0.1.2.3/", allow: []string{"0.0.0.0/8"}, sees: []string{"0.1.2.3"}},
	{name: "multicast", url: "http://224.0.0.1/", allow: []string{"224.0.0.0/4"}, sees: []string{"224.0.0.1"}},
	{name: "multicast SSDP", url: "http://239.255.255.250:1900/", allow: []string{"224.0.0.0/4"}, sees: []string{"239.255.255.250"}},
	{name: "broadcast", url: "http://255.255.255.255/", allow: []string{"255.255.255.255/32"}, sees: []string{"255.255.255.255"}},
	{name: "broadcast decimal integer", url: "http://4294967295/", answers: [][]string{{"255.255.255.255"}}, allow: []string{"255.255.255.255/32"}, sees: []string{"255.255.255.255"}},
	{name: "documentation TEST-NET-1", url: "http://192.0.2.1/", allow: []string{"192.0.2.0/24"}, sees: []string{"192.0.2.1"}},
	{name: "documentation TEST-NET-2", url: "http://198.51.100.7/", allow: []string{"198.51.100.0/24"}, sees: []string{"198.51.100.7"}},
	{name: "documentation TEST-NET-3", url: "http://203.0.113.9/", allow: []string{"203.0.113.0/24"}, sees: []string{"203.0.113.9"}},
	{name: "benchmarking", url: "http://198.18.0.1/", allow: []string{"198.18.0.0/15"}, sees: []string{"198.18.0.1"}},
	{name: "benchmarking top", url: "http://198.19.255.255/", allow: []string{"198.18.0.0/15"}, sees: []string{"198.19.255.255"}},
	{name: "reserved", url: "http://240.0.0.1/", allow: []string{"240.0.0.0/4"}, sees: []string{"240.0.0.1"}},
	{name: "IETF protocol assignments", url: "http://192.0.0.8/", allow: []string{"192.0.0.0/24"}, sees: []string{"192.0.0.8"}},
	{name: "6to4 relay anycast", url: "http://192.88.99.1/", allow: []string{"192.88.99.0/24"}, sees: []string{"192.88.99.1"}},

	// IPv6 ranges.
	{name: "IPv6 loopback", url: "http://[::1]/", allow: []string{"::1/128"}, sees: []string{"::1"}},
	{name: "IPv6 loopback long form", url: "http://[0:0:0:0:0:0:0:1]:8080/", allow: []string{"::1/128"}, sees: []string{"::1"}},
	{name: "IPv6 unspecified", url: "http://[::]/", allow: []string{"::/128"}, sees: []string{"::"}},
	{name: "IPv6 link-local", url: "http://[fe80::1]/", allow: []string{"fe80::/10"}, sees: []string{"fe80::1"}},
	{name: "IPv6 link-local with zone", url: "http://[fe80::1%25lo]/", allow: []string{"fe80::/10"}, sees: []string{"fe80::1%lo"}},
	{name: "IPv6 unique local", url: "http://[fc00::1]/", allow: []string{"fc00::/7"}, sees: []string{"fc00::1"}},
	{name: "IPv6 unique local fd", url: "http://[fd12:3456:789a::1]/", allow: []string{"fc00::/7"}, sees: []string{"fd12:3456:789a::1"}},
	{name: "IPv6 site-local", url: "http://[fec0::1]/", allow: []string{"fec0::/10"}, sees: []string{"fec0::1"}},
	{name: "IPv6 multicast", url: "http://[ff02::1]/", allow: []string{"ff00::/8"}, sees: []string{"ff02::1"}},
	{name: "IPv6 documentation", url: "http://[2001:db8::1]/", allow: []string{"2001:db8::/32"}, sees: []string{"2001:db8::1"}},
	{name: "IPv6 documentation 3fff", url: "http://[3fff::1]/", allow: []string{"3fff::/20"}, sees: []string{"3fff::1"}},
	{name: "IPv6 discard-only", url: "http://[100::1]/", allow: []string{"100::/64"}, sees: []string{"100::1"}},
	{name: "IPv6 benchmarking", url: "http://[2001:2::1]/", allow: []string{"2001:2::/48"}, sees: []string{"2001:2::1"}},
	{name: "IPv6 SRv6 SID", url: "http://[5f00::1]/", allow: []string{"5f00::/16"}, sees: []string{"5f00::1"}},
	{name: "IPv6 reserved", url: "http://[4000::1]/", allow: []string{"4000::/3"}, sees: []string{"4000::1"}},
	{name: "Teredo", url: "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", allow: []string{"2001::/32"}, sees: []string{"2001:0:4136:e378:8000:63bf:3fff:fdd2"}},

	// IPv6 forms that carry a blocked IPv4 address.
	{name: "IPv4-mapped loopback", url: "http://[::ffff:127.0.0.1]/", allow: []string{"127.0.0.1/32"}, sees: []string{"127.0.0.1"}, connect: true},
	{name: "IPv4-mapped loopback hex", url: "http://[::ffff:7f00:1]/", allow: []string{"127.0.0.1/32"}, sees: []string{"127.0.0.1"}, connect: true},
	{name: "IPv4-mapped metadata", url: "http://[::ffff:169.254.169.254]/", allow: []string{"169.254.0.0/16"}, sees: []string{"169.254.169.254"}},
	{name: "IPv4-mapped private", url: "http://[::ffff:10.0.0.1]/", allow: []string{"10.0.0.0/8"}, sees: []string{"10.0.0.1"}},
	{name: "IPv4-translated private", url: "http://[::ffff:0:a00:1]/", allow: []string{"10.0.0.0/8"}, sees: []string{"::ffff:0:a00:1"}},
	{name: "IPv4-compatible loopback", url: "http://[::127.0.0.1]/", allow: []string{"127.0.0.1/32"}, sees: []string{"::7f00:1"}},
	{name: "IPv4-compatible metadata", url: "http://[::a9fe:a9fe]/", allow: []string{"169.254.0.0/16"}, sees: []string{"::a9fe:a9fe"}},
	{name: "NAT64 loopback", url: "http://[64:ff9b::7f00:1]/", allow: []string{"127.0.0.0/8"}, sees: []string{"64:ff9b::7f00:1"}},
	{name: "NAT64 metadata", url: "http://[64:ff9b::169.254.169.254]/", allow: []string{"169.254.0.0/16"}, sees: []string{"64:ff9b::a9fe:a9fe"}},
	{name: "local-use NAT64 /96 private", url: "http://[64:ff9b:1::a00:1]/", allow: []string{"10.0.0.0/8"}, sees: []string{"64:ff9b:1::a00:1"}},
	{name: "local-use NAT64 /48 private", url: "http://[64:ff9b:1:a00:0:100::]/", allow: []string{"64:ff9b:1::/48"}, sees: []string{"64:ff9b:1:a00:0:100::"}},
	{name: "6to4 loopback", url: "http://[2002:7f00:1::1]/", allow: []string{"127.0.0.0/8"}, sees: []string{"2002:7f00:1::1"}},
	{name: "6to4 metadata", url: "http://[2002:a9fe:a9fe::]/", allow: []string{"169.254.0.0/16"}, sees: []string{"2002:a9fe:a9fe::"}},

	// Local names, refused before any lookup.
	{name: "localhost", url: "http://localhost/", answers: [][]string{{"::1", "127.0.0.1"}}, allow: []string{"127.0.0.1/32"}, sees: []string{"127.0.0.1"}, connect: true},
	{name: "localhost upper case trailing dot", url: "http://LOCALHOST./", answers: [][]string{{"127.0.0.1"}}, allow: []string{"127.0.0.1/32"}, sees: []string{"127.0.0.1"}, connect: true},
	{name: "subdomain of localhost", url: "http://api.Localhost/", answers: [][]string{{"127.0.0.1"}}, allow: []string{"127.0.0.1/32"}, sees: []string{"127.0.0.1"}, connect: true},
	{name: "ip6-localhost", url: "http://ip6-localhost/", answers: [][]string{{"::1"}}, allow: []string{"::1/128"}, sees: []string{"::1"}},

	// DNS names resolving to blocked addresses.
	{name: "name resolving to metadata", url: "http://metadata.internal/computeMetadata/v1/", dns: true, answers: [][]string{{"169.254.169.254"}}, allow: []string{"169.254.0.0/16"}, sees: []string{"169.254.169.254"}},
	{name: "name resolving to loopback", url: "http://loopback.example/", dns: true, answers: [][]string{{"127.0.0.1"}}, allow: []string{"127.0.0.1/32"}, sees: []string{"127.0.0.1"}, connect: true},
	{name: "name resolving to IPv6 loopback", url: "http://v6.loopback.example/", dns: true, answers: [][]string{{"::1"}}, allow: []string{"::1/128"}, sees: []string{"::1"}},
	{name: "name resolving to IPv4-mapped loopback", url: "http://mapped.example/", dns: true, answers: [][]string{{"::ffff:127.0.0.1"}}, allow: []string{"127.0.0.1/32"}, sees: []string{"127.0.0.1"}, connect: true},
	{name: "name resolving to two private addresses", url: "https://private.example/hook", dns: true, answers: [][]string{{"10.0.0.5", "192.168.0.5"}}, allow: []string{"10.0.0.0/8", "192.168.0.0/16"}, sees: []string{"10.0.0.5", "192.168.0.5"}},
	{name: "name resolving to unique local", url: "http://ula.example/", dns: true, answers: [][]string{{"fd00::1"}}, allow: []string{"fc00::/7"}, sees: []string{"fd00::1"}},
	{name: "name resolving to NAT64 metadata", url: "http://nat64.example/", dns: true, answers: [][]string{{"64:ff9b::a9fe:a9fe"}}, allow: []string{"169.254.0.0/16"}, sees: []string{"64:ff9b::a9fe:a9fe"}},
	{name: "name resolving to CGNAT", url: "http://cgnat.example/", dns: true, answers: [][]string{{"100.64.0.1"}}, allow: []string{"100.64.0.0/10"}, sees: []string{"100.64.0.1"}},
	{name: "name resolving to IPv6 link-local", url: "http://ll.example/", dns: true, answers: [][]string{{"fe80::1"}}, allow: []string{"fe80::/10"}, sees: []string{"fe80::1"}},
	{
		name: "name resolving to one public and one private address", url: "http://mixed.example/", dns: true,
		answers: [][]string{{"93.184.216.34", "10.0.0.1"}}, partial: true, seesDefault: []string{"93.184.216.34"},
		allow: []string{"10.0.0.0/8"}, sees: []string{"93.184.216.34", "10.0.0.1"},
	},
	{
		name: "rebinding name public then private", url: "http://rebind.example/", dns: true,
		answers: [][]string{{"93.184.216.34"}, {"10.0.0.1"}}, dials: 2, seesDefault: []string{"93.184.216.34"},
		allow: []string{"10.0.0.0/8"}, sees: []string{"93.184.216.34", "10.0.0.1"},
	},
	{
		name: "rebinding name public then loopback", url: "http://rebind-lo.example/", dns: true,
		answers: [][]string{{"93.184.216.34"}, {"127.0.0.1"}}, dials: 2, seesDefault: []string{"93.184.216.34"},
		allow: []string{"127.0.0.1/32"}, sees: []string{"93.184.216.34", "127.0.0.1"}, connect: true,
	},
}

// TestHostileURLs checks every hostile case twice: with the default guard
// it is refused (by CheckHost for literals and local names, by the dialer for
// DNS names) and nothing is dialed; with its range on the allow-list it
// passes and is dialed. No test traffic leaves loopback: the dialer's
// Control hook records and refuses every other address before connect(2).
func TestHostileURLs(t *testing.T) {
	t.Parallel()
	require.GreaterOrEqual(t, len(hostileCases), 40)

	srv := newTestServer(t, nil)
	srv.Start()
	port := srv.port(t)

	for _, tc := range hostileCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u, err := url.Parse(tc.url)
			require.NoError(t, err)
			host := u.Hostname()
			address := net.JoinHostPort(host, port)
			literal, literalErr := netip.ParseAddr(host)
			dials := max(tc.dials, 1)

			dial := func(t *testing.T, g *Guard) (*fakeResolver, *recorder, []net.Conn, []error) {
				res := newFakeResolver(nil)
				if tc.answers != nil {
					res.set(host, tc.answers...)
				}
				rec := &recorder{}
				d := &Dialer{Guard: g, Resolver: res, Dialer: &net.Dialer{Timeout: 5 * time.Second, Control: rec.control}}
				var conns []net.Conn
				var errs []error
				for range dials {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					conn, err := d.DialContext(ctx, "tcp", address)
					cancel()
					if conn != nil {
						t.Cleanup(func() { _ = conn.Close() })
					}
					conns = append(conns, conn)
					errs = append(errs, err)
				}
				return res, rec, conns, errs
			}

			t.Run("refused by default", func(t *testing.T) {
				var g *Guard // nil: the default policy
				if tc.dns {
					require.NoError(t, g.CheckHost(host), "a DNS name is checked at dial time")
				} else {
					require.ErrorIs(t, g.CheckHost(host), ErrBlocked)
				}
				if literalErr == nil {
					require.ErrorIs(t, g.Check(literal), ErrBlocked)
				}

				res, rec, conns, errs := dial(t, g)
				for _, a := range rec.addrs() {
					require.NoError(t, g.Check(netip.MustParseAddr(a)), "dialed a blocked address")
				}
				require.Equal(t, tc.seesDefault, rec.addrs())
				last := errs[len(errs)-1]
				require.Nil(t, conns[len(conns)-1])
				if tc.partial {
					require.Error(t, last)
					require.NotErrorIs(t, last, ErrBlocked)
				} else {
					require.ErrorIs(t, last, ErrBlocked)
					var be *BlockedError
					require.ErrorAs(t, last, &be)
					require.NotEmpty(t, be.Reason)
				}
				if !tc.dns {
					require.Zero(t, res.lookups(host), "a literal or local name must be refused before any lookup")
				}
			})

			t.Run("allowed by its range", func(t *testing.T) {
				g := New(prefixes(t, tc.allow...))
				require.NoError(t, g.CheckHost(host))
				if literalErr == nil {
					require.NoError(t, g.Check(literal))
				}
				for _, a := range tc.sees {
					require.NoError(t, g.Check(netip.MustParseAddr(a)))
				}

				_, rec, conns, errs := dial(t, g)
				for _, err := range errs {
					require.NotErrorIs(t, err, ErrBlocked)
				}
				require.Equal(t, tc.sees, rec.addrs())
				last := conns[len(conns)-1]
				if tc.connect {
					require.NoError(t, errs[len(errs)-1])
					require.Equal(t, http.StatusOK, httpGet(t, last))
				} else {
					require.Error(t, errs[len(errs)-1])
				}
			})
		})
	}
}
