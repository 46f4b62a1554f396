package ssrf

import (
	"fmt"
	"net/netip"
	"syscall"
)

// Guard decides which IP addresses outbound connections may reach: every
// address except those in the special-purpose ranges listed in the package
// documentation, plus whatever its allow-list opts back in.
//
// A Guard is immutable and safe for concurrent use. A nil *Guard behaves like
// New(nil): it refuses every special-purpose range.
type Guard struct {
	allow []netip.Prefix
}

// New returns a Guard that refuses the special-purpose ranges except the
// addresses inside one of the allow prefixes. A nil or empty allow refuses
// them all.
//
// Prefixes are masked (10.1.2.3/8 means 10.0.0.0/8), invalid prefixes are
// ignored, and a prefix inside ::ffff:0:0/96 is taken as the IPv4 prefix it
// maps, because an IPv4-mapped address is its IPv4 address on the wire.
// Allowing an IPv4 prefix also allows the IPv4-mapped, IPv4-compatible,
// NAT64 and 6to4 forms of its addresses; allowing an IPv6 prefix allows the
// addresses inside it whatever IPv4 address they carry. New copies allow.
func New(allow []netip.Prefix) *Guard {
	g := &Guard{allow: make([]netip.Prefix, 0, len(allow))}
	for _, p := range allow {
		if !p.IsValid() {
			continue
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		g.allow = append(g.allow, p.Masked())
	}
	return g
}

// Check returns nil if addr may be connected to, or else a *[BlockedError]
// (wrapping [ErrBlocked]) that names the range, such as
// "convoy: blocked address: 10.0.0.1 is private". The zone of an IPv6
// address is ignored; the zero Addr is refused.
func (g *Guard) Check(addr netip.Addr) error {
	if !addr.IsValid() {
		return &BlockedError{Reason: "not an IP address"}
	}
	if e := g.check(addr.WithZone("")); e != nil {
		e.Addr = addr
		return e
	}
	return nil
}

// Control has the signature of net.Dialer.Control. It parses address, the
// "ip:port" a socket is about to connect to, and refuses it unless [Guard.Check]
// allows the IP, so a net.Dialer with Control set to it never connects to a
// blocked address, however the address was obtained. [Dialer] installs it on
// every connection it makes.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot check %s address %q: %v", ErrBlocked, network, address, err)
	}
	return g.Check(ap.Addr())
}

// allows reports whether a (no zone) is on the allow-list.
func (g *Guard) allows(a netip.Addr) bool {
	if g == nil {
		return false
	}
	for _, p := range g.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// check returns the refusal of a, which has no zone, or nil. The returned
// error's Addr is a; Check replaces it with the address as given.
func (g *Guard) check(a netip.Addr) *BlockedError {
	if a.Is4In6() {
		v4 := a.Unmap()
		if e := g.check(v4); e != nil {
			return embeddedError(a, "IPv4-mapped", v4, e)
		}
		return nil
	}
	if g.allows(a) {
		return nil
	}
	if a.Is4() {
		for _, r := range ipv4Ranges {
			if r.prefix.Contains(a) {
				return &BlockedError{Addr: a, Range: r.prefix, Reason: r.name}
			}
		}
		return nil
	}
	for _, r := range ipv6Ranges {
		if !r.prefix.Contains(a) {
			continue
		}
		if r.embedded == nil {
			return &BlockedError{Addr: a, Range: r.prefix, Reason: r.name}
		}
		for _, v4 := range r.embedded(a) {
			if e := g.check(v4); e != nil {
				return embeddedError(a, r.name, v4, e)
			}
		}
		return nil
	}
	if !globalUnicast.Contains(a) {
		return &BlockedError{Addr: a, Range: globalUnicast, Reason: "reserved (outside global unicast 2000::/3)"}
	}
	return nil
}

// embeddedError reports a refused because the IPv4 address v4 it carries in
// the given form was refused with inner.
func embeddedError(a netip.Addr, form string, v4 netip.Addr, inner *BlockedError) *BlockedError {
	return &BlockedError{
		Addr:   a,
		Range:  inner.Range,
		Reason: "the " + form + " form of " + v4.String() + ", which is " + inner.Reason,
	}
}

// loopbackAllowed reports whether the allow-list lets either loopback
// address through, the condition for accepting local names like localhost.
func (g *Guard) loopbackAllowed() bool {
	return g.Check(netip.AddrFrom4([4]byte{127, 0, 0, 1})) == nil ||
		g.Check(netip.IPv6Loopback()) == nil
}
