package ssrf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// CheckHost validates the host of a URL, as returned by url.URL.Hostname
// (brackets around an IPv6 literal are accepted too), before the URL is
// saved. It returns a *[BlockedError] wrapping [ErrBlocked] when:
//
//   - host is an IP literal in any spelling a resolver, libc or browser
//     would accept — dotted decimal, IPv6 with or without brackets and zone
//     ("%eth0" or "%25eth0"), a single integer (2130706433), hexadecimal
//     (0x7f000001, 0x7f.0.0.1), octal (0177.0.0.1, 017700000001), short
//     forms (127.1, 10.1), a trailing dot (127.0.0.1.), or any Unicode
//     spelling that the UTS #46 mapping of a browser's URL parser turns
//     into one of those (full-width and circled digits, ideographic full
//     stops, ignored characters such as U+200B and U+00AD) — and
//     [Guard.Check] refuses the address it means. A part with a leading
//     zero is read both as octal (libc) and as decimal (some other
//     parsers), and refused if either reading is;
//   - host is a local name — localhost, any name under .localhost,
//     localhost.localdomain, ip6-localhost or ip6-loopback, in any case,
//     with or without a trailing dot, in any spelling that maps to one —
//     and the guard allows neither 127.0.0.1 nor ::1;
//   - host is empty, which net.Dial takes as the local system, and the guard
//     refuses 0.0.0.0.
//
// A "host:port" is accepted too; its host part is checked as above.
// Any other host is a DNS name and CheckHost returns nil: a name can resolve
// anywhere, and only the dial-time check of [Dialer] sees where. CheckHost
// does not validate DNS name syntax; [ASCIIHost] does.
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
	if !isASCII(host) {
		// What a URL parser or resolver would look up instead. A mapping
		// that fails still yields its partial result, checked too.
		for _, p := range []*idna.Profile{whatwgProfile, transitionalProfile} {
			if mapped, _ := p.ToASCII(host); mapped != "" && mapped != host {
				candidates = append(candidates, mapped)
			}
		}
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

// ErrInvalidHost reports a host that is neither an IP literal nor a host
// name a browser's URL parser would accept.
var ErrInvalidHost = errors.New("convoy: invalid host")

// whatwgProfile is the UTS #46 processing of the WHATWG URL Standard's
// "domain to ASCII" (with beStrict false), which browsers apply to every
// URL host: non-transitional mapping, CheckBidi and CheckJoiners on,
// CheckHyphens, UseSTD3ASCIIRules and VerifyDnsLength off. Profiles are
// immutable and safe for concurrent use.
var whatwgProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.CheckHyphens(false),
	idna.StrictDomainName(false),
	idna.VerifyDNSLength(false),
)

// transitionalProfile is whatwgProfile with the transitional mapping (ß to
// ss, joiners removed) of IDNA2003-era resolvers; CheckHost checks its
// result too.
var transitionalProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(true),
	idna.BidiRule(),
	idna.CheckHyphens(false),
	idna.StrictDomainName(false),
	idna.VerifyDNSLength(false),
)

// Limits of a host name in DNS (RFC 1035).
const (
	maxLabelLen = 63
	maxNameLen  = 253
)

// ASCIIHost returns the ASCII form of host, as returned by url.URL.Hostname,
// the way a browser's URL parser computes it (WHATWG URL "domain to
// ASCII"): an IPv6 literal (host contains a colon) as it is; any other host
// mapped by UTS #46 (case folded, compatibility forms such as full-width or
// circled characters mapped, ignored characters such as U+200B and U+00AD
// dropped, Unicode labels turned into xn-- punycode).
//
// It returns an error wrapping [ErrInvalidHost] when the result is not a
// usable host: the IPv6 literal does not parse or has a zone that is no
// interface name; host is not UTF-8; the
// mapping fails (a
// disallowed character, a joiner out of context, a label breaking the Bidi
// rule, an xn-- label that is not the punycode of a valid label); a label
// is empty (but for one trailing dot) or longer than 63 bytes, or the name
// longer than 253; a character other than a letter, digit, - or _
// remains; or the last label is a number (decimal, or hexadecimal with 0x)
// and the host is not then a valid IPv4 address, as browsers require.
//
// ASCIIHost does not tell whether the address is allowed; [Guard.CheckHost]
// does, for every spelling.
func ASCIIHost(host string) (string, error) {
	if strings.Contains(host, ":") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || !validZone(a.Zone()) {
			return "", invalidHost(host, "not an IPv6 address")
		}
		return host, nil
	}
	if !utf8.ValidString(host) {
		// The mapping would read each bad byte as U+FFFD.
		return "", invalidHost(host, "not UTF-8")
	}
	ascii, err := whatwgProfile.ToASCII(host)
	if err != nil {
		return "", invalidHost(host, "no IDNA mapping")
	}
	if reason := checkHostName(host, ascii); reason != "" {
		return "", invalidHost(host, reason)
	}
	return ascii, nil
}

func invalidHost(host, reason string) error {
	return fmt.Errorf("%w %q: %s", ErrInvalidHost, host, reason)
}

// checkHostName returns why ascii, the mapping of host, is not a usable
// host name, or "".
func checkHostName(host, ascii string) string {
	name := strings.TrimSuffix(ascii, ".")
	if name == "" {
		return "empty"
	}
	if len(name) > maxNameLen {
		return "longer than 253 bytes"
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" {
			return "empty label"
		}
		if len(l) > maxLabelLen {
			return "label longer than 63 bytes"
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "character not allowed in a host name"
			}
		}
	}
	// The mapping decodes xn-- labels and may re-encode them differently
	// (an empty or all-ASCII decoding): every xn-- label given must come
	// out as it went in.
	in := strings.FieldsFunc(host, isLabelSeparator)
	if len(in) == len(labels) {
		for i, l := range in {
			if strings.HasPrefix(strings.ToLower(l), "xn--") && strings.ToLower(l) != labels[i] {
				return "bad punycode label"
			}
		}
	} else if strings.Contains(strings.ToLower(host), "xn--") {
		return "bad punycode label"
	}
	if last := labels[len(labels)-1]; isNumber(last) {
		if len(labels) > 4 {
			return "ends in a number but is not an IPv4 address"
		}
		if _, ok := legacyIPv4(labels, true); !ok {
			return "ends in a number but is not an IPv4 address"
		}
	}
	return ""
}

// validZone reports whether an IPv6 zone is empty or looks like an
// interface name or index: letters, digits, '-', '_' and '.'.
func validZone(z string) bool {
	for i := 0; i < len(z); i++ {
		c := z[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// isLabelSeparator reports whether r separates labels in UTS #46: the full
// stop and its ideographic, full-width and half-width forms.
func isLabelSeparator(r rune) bool {
	return r == '.' || r == 0x3002 || r == 0xFF0E || r == 0xFF61
}

// isNumber reports whether a label is a number to the WHATWG IPv4 parser:
// decimal digits, or 0x or 0X followed by hexadecimal digits (or none).
func isNumber(l string) bool {
	if len(l) >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X') {
		for i := 2; i < len(l); i++ {
			if _, ok := digitValue(l[i]); !ok {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return l != ""
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
	if len(parts) == 0 || len(parts) > 4 {
		return netip.Addr{}, false
	}
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
