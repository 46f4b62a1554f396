package ssrf

import (
	"net"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// CheckHost validates the host of a URL, as returned by url.URL.Hostname
// (brackets around an IPv6 literal are accepted too), before the URL is
// saved. It returns a *[BlockedError] wrapping [ErrBlocked] when:
//
//   - host is an IP literal in any spelling a resolver, libc or browser
//     would accept — dotted decimal, IPv6 with or without brackets and zone
//     ("%eth0" or "%25eth0"), a single integer (2130706433), hexadecimal
//     (0x7f000001, 0x7f.0.0.1), octal (0177.0.0.1, 017700000001), short
//     forms (127.1, 10.1), a trailing dot (127.0.0.1.), full-width digits
//     and ideographic full stops — and [Guard.Check] refuses the address it
//     means. A part with a leading zero is read both as octal (libc) and as
//     decimal (some other parsers), and refused if either reading is;
//   - host is a local name — localhost, any name under .localhost,
//     localhost.localdomain, ip6-localhost or ip6-loopback, in any case,
//     with or without a trailing dot — and the guard allows neither
//     127.0.0.1 nor ::1;
//   - host is empty, which net.Dial takes as the local system, and the guard
//     refuses 0.0.0.0.
//
// A "host:port" is accepted too; its host part is checked as above.
// Any other host is a DNS name and CheckHost returns nil: a name can resolve
// anywhere, and only the dial-time check of [Dialer] sees where. CheckHost
// does not validate DNS name syntax.
func (g *Guard) CheckHost(host string) error {
	if h, _, err := net.SplitHostPort(host); err == nil {
		// A host:port passed by mistake: check the host part too.
		if err := g.checkHost(h); err != nil {
			return err
		}
	}
	return g.checkHost(host)
}

func (g *Guard) checkHost(host string) error {
	if host == "" {
		return g.Check(netip.IPv4Unspecified())
	}
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	candidates := []string{host}
	if folded := foldWide(host); folded != host {
		candidates = append(candidates, folded)
	}
	for _, c := range candidates {
		if err := g.checkLiteral(host, c); err != nil {
			return err
		}
	}
	for _, c := range candidates {
		if isLocalName(c) && !g.loopbackAllowed() {
			return &BlockedError{Host: host, Reason: "a loopback name"}
		}
	}
	return nil
}

// checkLiteral checks every address that the spelling c of host may mean.
func (g *Guard) checkLiteral(host, c string) error {
	if a, err := netip.ParseAddr(strings.Replace(c, "%25", "%", 1)); err == nil {
		return withHost(host, g.Check(a))
	}
	if a, err := netip.ParseAddr(c); err == nil {
		return withHost(host, g.Check(a))
	}
	// Older libc inet_aton stopped at the first space: "127.0.0.1 x".
	if i := strings.IndexAny(c, " \t\n\v\f\r"); i >= 0 {
		c = c[:i]
	}
	for _, a := range parseLegacyIPv4(c) {
		if err := withHost(host, g.Check(a)); err != nil {
			return err
		}
	}
	return nil
}

// withHost records host on a *BlockedError.
func withHost(host string, err error) error {
	if be, ok := err.(*BlockedError); ok {
		be.Host = host
	}
	return err
}

// isLocalName reports whether host names the local system by convention
// (RFC 6761 and the usual /etc/hosts entries).
func isLocalName(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	switch {
	case h == "localhost", strings.HasSuffix(h, ".localhost"),
		h == "localhost.localdomain", h == "ip6-localhost", h == "ip6-loopback":
		return true
	}
	return false
}

// foldWide maps the full-width ASCII forms (U+FF01-U+FF5E), the ideographic
// and half-width full stops and the mathematical digits to ASCII, as IDNA
// mapping does before a host is resolved, so "１２７．０．０．１" is seen
// as 127.0.0.1. Other characters are kept.
func foldWide(s string) string {
	if isASCII(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E:
			r -= 0xFF01 - 0x21
		case r == 0x3002 || r == 0xFF61:
			r = '.'
		case r >= 0x1D7CE && r <= 0x1D7FF:
			r = '0' + (r-0x1D7CE)%10
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// parseLegacyIPv4 returns the IPv4 addresses s may mean as a BSD inet_aton
// or WHATWG URL IPv4 literal: one to four parts separated by dots, each
// decimal, hexadecimal (0x) or octal (leading 0), the last part filling the
// remaining bytes, with one optional trailing dot. Parts with a leading zero
// are also read as decimal, the way some parsers do; both readings are
// returned when they differ. It returns nil when s is no such literal.
func parseLegacyIPv4(s string) []netip.Addr {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 64 {
		return nil
	}
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return nil
	}
	var out []netip.Addr
	for _, octal := range []bool{true, false} {
		a, ok := legacyIPv4(parts, octal)
		if ok && (len(out) == 0 || out[0] != a) {
			out = append(out, a)
		}
	}
	return out
}

// legacyIPv4 combines parts into an address; octal selects how a leading
// zero is read.
func legacyIPv4(parts []string, octal bool) (netip.Addr, bool) {
	var v uint64
	for i, p := range parts {
		n, ok := parseLegacyPart(p, octal)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 0xff {
				return netip.Addr{}, false
			}
			v |= n << (8 * (3 - i))
			continue
		}
		bits := 8 * (4 - i)
		if n >= 1<<bits {
			return netip.Addr{}, false
		}
		v |= n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// parseLegacyPart parses one part: 0x or 0X and hex digits (none means 0),
// a leading 0 and octal digits when octal is set, or decimal digits.
func parseLegacyPart(p string, octal bool) (uint64, bool) {
	if p == "" {
		return 0, false
	}
	base := uint64(10)
	switch {
	case len(p) >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
		base, p = 16, p[2:]
	case len(p) >= 2 && p[0] == '0' && octal:
		base, p = 8, p[1:]
	}
	var n uint64
	for i := 0; i < len(p); i++ {
		d, ok := digitValue(p[i])
		if !ok || d >= base {
			return 0, false
		}
		n = n*base + d
		if n > 0xffffffff {
			return 0, false
		}
	}
	return n, true
}

func digitValue(c byte) (uint64, bool) {
	switch {
	case c >= '0' && c <= '9':
		return uint64(c - '0'), true
	case c >= 'a' && c <= 'f':
		return uint64(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return uint64(c-'A') + 10, true
	}
	return 0, false
}
