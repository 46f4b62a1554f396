package ssrf

import "net/netip"

// specialRange is a range refused by default. embedded, when set, means
// the range is not refused as such: the IPv4 addresses embedded returns
// are checked instead.
type specialRange struct {
	prefix   netip.Prefix
	name     string
	embedded func(netip.Addr) []netip.Addr
}

// ipv4Ranges is searched in order; the first match names the range.
var ipv4Ranges = []specialRange{
	{prefix: mustPrefix("0.0.0.0/8"), name: "unspecified"},
	{prefix: mustPrefix("10.0.0.0/8"), name: "private"},
	{prefix: mustPrefix("100.64.0.0/10"), name: "CGNAT (shared address space)"},
	{prefix: mustPrefix("127.0.0.0/8"), name: "loopback"},
	{prefix: mustPrefix("169.254.0.0/16"), name: "link-local"},
	{prefix: mustPrefix("172.16.0.0/12"), name: "private"},
	{prefix: mustPrefix("192.0.0.0/24"), name: "IETF protocol assignments"},
	{prefix: mustPrefix("192.0.2.0/24"), name: "documentation"},
	{prefix: mustPrefix("192.88.99.0/24"), name: "6to4 relay anycast"},
	{prefix: mustPrefix("192.168.0.0/16"), name: "private"},
	{prefix: mustPrefix("198.18.0.0/15"), name: "benchmarking"},
	{prefix: mustPrefix("198.51.100.0/24"), name: "documentation"},
	{prefix: mustPrefix("203.0.113.0/24"), name: "documentation"},
	{prefix: mustPrefix("224.0.0.0/4"), name: "multicast"},
	{prefix: mustPrefix("255.255.255.255/32"), name: "broadcast"},
	{prefix: mustPrefix("240.0.0.0/4"), name: "reserved"},
}

// ipv6Ranges is searched in order, more specific prefixes first; the first
// match decides. IPv4-mapped addresses never get here (Guard.check unmaps
// them), and an address matching none is refused unless it is in
// globalUnicast.
var ipv6Ranges = []specialRange{
	{prefix: mustPrefix("::/128"), name: "unspecified"},
	{prefix: mustPrefix("::1/128"), name: "loopback"},
	{prefix: mustPrefix("::ffff:0:0:0/96"), name: "IPv4-translated", embedded: last32},
	{prefix: mustPrefix("::/96"), name: "IPv4-compatible", embedded: last32},
	{prefix: mustPrefix("64:ff9b::/96"), name: "NAT64", embedded: last32},
	{prefix: mustPrefix("64:ff9b:1::/48"), name: "local-use NAT64", embedded: localNAT64},
	{prefix: mustPrefix("100::/64"), name: "discard-only"},
	{prefix: mustPrefix("2001::/32"), name: "Teredo"},
	{prefix: mustPrefix("2001:2::/48"), name: "benchmarking"},
	{prefix: mustPrefix("2001:10::/28"), name: "ORCHID"},
	{prefix: mustPrefix("2001:20::/28"), name: "ORCHIDv2"},
	{prefix: mustPrefix("2001:db8::/32"), name: "documentation"},
	{prefix: mustPrefix("2002::/16"), name: "6to4", embedded: sixToFour},
	{prefix: mustPrefix("3fff::/20"), name: "documentation"},
	{prefix: mustPrefix("5f00::/16"), name: "SRv6 segment identifiers"},
	{prefix: mustPrefix("fc00::/7"), name: "private (unique local)"},
	{prefix: mustPrefix("fe80::/10"), name: "link-local"},
	{prefix: mustPrefix("fec0::/10"), name: "site-local"},
	{prefix: mustPrefix("ff00::/8"), name: "multicast"},
}

// globalUnicast is the only part of the IPv6 space IANA allocates for
// ordinary hosts; addresses outside it that no other range names are refused
// as reserved.
var globalUnicast = mustPrefix("2000::/3")

func mustPrefix(s string) netip.Prefix {
	return netip.MustParsePrefix(s)
}

// last32 returns the IPv4 address in the last 32 bits of a.
func last32(a netip.Addr) []netip.Addr {
	b := a.As16()
	return []netip.Addr{netip.AddrFrom4([4]byte(b[12:16]))}
}

// sixToFour returns the IPv4 address of a 6to4 address 2002:aabb:ccdd::/48.
func sixToFour(a netip.Addr) []netip.Addr {
	b := a.As16()
	return []netip.Addr{netip.AddrFrom4([4]byte(b[2:6]))}
}

// localNAT64 returns the IPv4 address a local-use NAT64 address carries
// under each RFC 6052 layout that fits it. The prefix length of a
// 64:ff9b:1::/48 network is a local choice the address does not reveal, so
// every layout whose reserved octet (bits 64-71) and suffix are zero is a
// possible reading, and the /96 layout always is; the address is allowed
// only if every reading is.
func localNAT64(a netip.Addr) []netip.Addr {
	b := a.As16()
	out := []netip.Addr{netip.AddrFrom4([4]byte(b[12:16]))}
	if b[8] != 0 {
		return out
	}
	// Byte positions of the IPv4 address for prefix lengths 48, 56 and 64;
	// the suffix is every byte after the last one, up to 15.
	for _, pos := range [][4]int{{6, 7, 9, 10}, {7, 9, 10, 11}, {9, 10, 11, 12}} {
		zero := true
		for i := pos[3] + 1; i < 16; i++ {
			if b[i] != 0 {
				zero = false
				break
			}
		}
		if zero {
			out = append(out, netip.AddrFrom4([4]byte{b[pos[0]], b[pos[1]], b[pos[2]], b[pos[3]]}))
		}
	}
	return out
}
