// Package ssrf guards outbound connections against server-side request
// forgery: it refuses to connect to loopback, private, link-local and other
// special-purpose addresses unless they are on an allow-list.
//
// Webhook URLs come from the customers of convoy's users, so a URL is
// untrusted input: it may name the sender's own loopback interface, a cloud
// metadata service (169.254.169.254) or a host on a private network, directly
// or through a DNS name that resolves there. The package checks at three
// points:
//
//   - [Guard.CheckHost] validates the host of a URL when it is saved: an IP
//     literal in any spelling a resolver or libc accepts (2130706433,
//     0x7f.1, 0177.0.0.1, [::ffff:127.0.0.1]) or that IDNA mapping turns
//     into one (①②⑦.⓪.⓪.①), and local names such as localhost (or
//     ⓛⓞⓒⓐⓛⓗⓞⓢⓣ) are refused; other DNS names pass and are checked at
//     dial time. [ASCIIHost] tells whether a host is a valid host at all.
//   - [Dialer.DialContext] resolves the host itself, drops every resolved
//     address the guard refuses and connects only to the rest, so a DNS name
//     pointing at a private address is refused without a packet being sent.
//   - The same dialer re-checks the address of each socket in
//     net.Dialer.ControlContext, just before connect(2), so whatever path an
//     address takes to the socket it is checked once more ([Guard.Control]).
//
// [NewTransport] builds an http.Transport on that dialer.
//
// # Refused ranges
//
// By default a [Guard] refuses these ranges (IANA special-purpose registries,
// RFC 6890 and successors):
//
//	IPv4
//	  0.0.0.0/8          unspecified ("this network")
//	  10.0.0.0/8         private
//	  100.64.0.0/10      CGNAT (shared address space)
//	  127.0.0.0/8        loopback
//	  169.254.0.0/16     link-local (includes 169.254.169.254, cloud metadata)
//	  172.16.0.0/12      private
//	  192.0.0.0/24       IETF protocol assignments
//	  192.0.2.0/24       documentation
//	  192.88.99.0/24     6to4 relay anycast
//	  192.168.0.0/16     private
//	  198.18.0.0/15      benchmarking
//	  198.51.100.0/24    documentation
//	  203.0.113.0/24     documentation
//	  224.0.0.0/4        multicast
//	  240.0.0.0/4        reserved
//	  255.255.255.255/32 broadcast
//	IPv6
//	  ::/128             unspecified
//	  ::1/128            loopback
//	  100::/64           discard-only
//	  2001::/32          Teredo
//	  2001:2::/48        benchmarking
//	  2001:10::/28       ORCHID
//	  2001:20::/28       ORCHIDv2
//	  2001:db8::/32      documentation
//	  3fff::/20          documentation
//	  5f00::/16          SRv6 segment identifiers
//	  fc00::/7           private (unique local)
//	  fe80::/10          link-local
//	  fec0::/10          site-local
//	  ff00::/8           multicast
//	  everything else outside 2000::/3 (global unicast), as reserved
//
// IPv6 addresses that carry an IPv4 address are judged by the IPv4 address
// they carry: IPv4-mapped ::ffff:a.b.c.d (treated exactly as a.b.c.d),
// IPv4-translated ::ffff:0:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64
// 64:ff9b::a.b.c.d, local-use NAT64 in 64:ff9b:1::/48 (every RFC 6052 layout
// that fits the address is checked) and 6to4 2002:aabb:ccdd::/48. So
// 64:ff9b::a9fe:a9fe is refused as link-local, and allowing 127.0.0.1/32 also
// allows ::ffff:127.0.0.1.
package ssrf

import (
	"errors"
	"net/netip"
	"strings"
)

// ErrBlocked reports an address in a range the guard refuses. Every refusal
// this package returns wraps it, so errors.Is(err, ErrBlocked) holds through
// a net.OpError, a url.Error or an http.Client error.
var ErrBlocked = errors.New("convoy: blocked address")

// BlockedError describes one refused address or local host name. It wraps
// [ErrBlocked], so callers test for it with errors.Is(err, ErrBlocked) and
// reach the details with errors.As.
type BlockedError struct {
	// Host is the host name or non-canonical literal that led to Addr
	// ("metadata.internal", "0x7f.1"), or empty when an address was checked
	// directly.
	Host string
	// Addr is the refused address as given, zone included. It is the zero
	// Addr when a local host name (localhost) was refused without resolving.
	Addr netip.Addr
	// Range is the special-purpose range that matched. For an IPv6 address
	// refused because of the IPv4 address it carries, it is the IPv4 range.
	Range netip.Prefix
	// Reason says why, completing "<address> is ...": "private",
	// "link-local", "the NAT64 form of 10.0.0.1, which is private".
	Reason string
}

// Error returns "convoy: blocked address: <what> is <Reason>", for example
// "convoy: blocked address: 169.254.169.254 is link-local".
func (e *BlockedError) Error() string {
	return ErrBlocked.Error() + ": " + e.detail()
}

// detail is the message without the "convoy: blocked address: " prefix.
func (e *BlockedError) detail() string {
	var b strings.Builder
	switch {
	case !e.Addr.IsValid() && e.Host == "":
		b.WriteString("invalid address")
	case !e.Addr.IsValid():
		b.WriteString(e.Host)
	case e.Host != "" && e.Host != e.Addr.String():
		b.WriteString(e.Host + " (" + e.Addr.String() + ")")
	default:
		b.WriteString(e.Addr.String())
	}
	b.WriteString(" is ")
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap returns [ErrBlocked].
func (e *BlockedError) Unwrap() error { return ErrBlocked }

// blockedAddrsError reports a host name all of whose addresses were refused.
type blockedAddrsError struct {
	host string
	errs []*BlockedError
}

func (e *blockedAddrsError) Error() string {
	parts := make([]string, len(e.errs))
	for i, be := range e.errs {
		parts[i] = be.Addr.String() + " is " + be.Reason
	}
	return ErrBlocked.Error() + ": " + e.host + " resolves only to blocked addresses: " + strings.Join(parts, "; ")
}

// Unwrap returns the refusal of each address, each of which wraps ErrBlocked.
func (e *blockedAddrsError) Unwrap() []error {
	errs := make([]error, len(e.errs))
	for i, be := range e.errs {
		errs[i] = be
	}
	return errs
}
